/* A program that rewrites its environment block in place before its first CUDA call (the
 * shim has read it at load), as setproctitle does in vLLM's engine core and SGLang's
 * scheduler: its predictions must still reach the run's coordinator. Plain C: the runtime
 * entry points come from the shim. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

extern char **environ;

typedef int (*malloc_fn)(void **, size_t);
typedef int (*memset_fn)(void *, int, size_t);
typedef int (*sync_fn)(void);

int main(void)
{
    malloc_fn cuda_malloc = (malloc_fn)dlsym(RTLD_DEFAULT, "cudaMalloc");
    memset_fn cuda_memset = (memset_fn)dlsym(RTLD_DEFAULT, "cudaMemset");
    sync_fn cuda_sync = (sync_fn)dlsym(RTLD_DEFAULT, "cudaDeviceSynchronize");
    if (!cuda_malloc || !cuda_memset || !cuda_sync) {
        fprintf(stderr, "the CUDA runtime entry points are missing (run under emulate)\n");
        return 1;
    }
    for (char **entry = environ; *entry != NULL; entry++)
        memset(*entry, 'x', strlen(*entry));
    void *buffer = NULL;
    if (cuda_malloc(&buffer, 64u << 20) != 0)
        return 2;
    cuda_memset(buffer, 1, 1u << 20);
    cuda_sync();
    cuda_memset(buffer, 2, 48u << 20); /* a new shape: another prediction */
    cuda_sync();
    printf("done 1\n");
    return 0;
}
