/* A process of the run dies inside the clock page's critical section: it holds the lock (its pid
 * in the lock word) with seq odd, as a writer between its two seq increments, when SIGKILL ends
 * it. Its parent does not reap it (it stays a zombie) and goes on: a GPU memset, a sync, a
 * sleep. The lock must be taken over (the holder is dead) and seq made even, or every reader of
 * the clock and every writer spins for ever.
 *
 *   clock_lock_holder_dies BYTES SLEEP_US
 * prints RESULT memset_ns=... sleep_ns=... child_signal=... */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "timewarp/records.h"

typedef int (*malloc_fn)(void **, size_t);
typedef int (*memset_fn)(void *, int, size_t);
typedef int (*sync_fn)(void);

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void die_holding_the_lock(const char *page_path, int ready_fd)
{
    int fd = open(page_path, O_RDWR);
    tw_clock_page *page = fd >= 0 ? mmap(NULL, sizeof *page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) : MAP_FAILED;
    if (page == MAP_FAILED)
        _exit(3);
    uint32_t me = (uint32_t)getpid(), free_word = 0;
    while (!__atomic_compare_exchange_n(&page->lock, &free_word, me, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
        free_word = 0;
    __atomic_fetch_add(&page->seq, 1, __ATOMIC_ACQ_REL);   /* a write begun: readers must wait */
    if (write(ready_fd, "x", 1) != 1)
        _exit(4);
    raise(SIGKILL);
}

int main(int argc, char **argv)
{
    if (argc < 3 || getenv("TIMEWARP_RUN_DIR") == NULL) {
        fprintf(stderr, "usage: clock_lock_holder_dies BYTES SLEEP_US (under emulate)\n");
        return 2;
    }
    size_t bytes = strtoull(argv[1], NULL, 10);
    long sleep_us = strtol(argv[2], NULL, 10);
    malloc_fn cuda_malloc = (malloc_fn)dlsym(RTLD_DEFAULT, "cudaMalloc");
    memset_fn cuda_memset = (memset_fn)dlsym(RTLD_DEFAULT, "cudaMemset");
    sync_fn cuda_sync = (sync_fn)dlsym(RTLD_DEFAULT, "cudaDeviceSynchronize");
    if (cuda_malloc == NULL || cuda_memset == NULL || cuda_sync == NULL)
        return 3;
    void *buffer = NULL;
    if (cuda_malloc(&buffer, bytes) != 0 || cuda_sync() != 0)   /* the shim and its first prediction */
        return 4;
    char page_path[4200];
    snprintf(page_path, sizeof page_path, "%s/clock.page", getenv("TIMEWARP_RUN_DIR"));
    int ready[2];
    if (pipe(ready) != 0)
        return 5;
    pid_t child = fork();
    if (child == 0)
        die_holding_the_lock(page_path, ready[1]);
    char c;
    if (read(ready[0], &c, 1) != 1)
        return 6;
    int64_t t0 = now_ns();
    if (cuda_memset(buffer, 0, bytes) != 0 || cuda_sync() != 0)
        return 7;
    int64_t t1 = now_ns();
    usleep((useconds_t)sleep_us);
    int64_t t2 = now_ns();
    int status = 0;
    waitpid(child, &status, 0);   /* only now: it was a zombie all along */
    printf("RESULT memset_ns=%lld sleep_ns=%lld child_signal=%d\n", (long long)(t1 - t0), (long long)(t2 - t1),
           WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    return 0;
}
