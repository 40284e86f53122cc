// Launch an empty kernel LAUNCHES times (the cached launch path) and report the host cost per
// launch, timed with raw system calls that the shim's virtual clock does not touch.
// Usage: app_empty_launch LAUNCHES   Prints: RESULT launches=N ns_per_launch=X sync_err=E
#include <cstdio>
#include <cstdlib>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <cuda_runtime.h>

static long long raw_mono_ns(void) {
    struct timespec ts;
#if defined(__x86_64__)
    long ret;  // a raw system call: no libc symbol the shim could interpose
    __asm__ volatile("syscall" : "=a"(ret) : "0"((long)SYS_clock_gettime), "D"((long)CLOCK_MONOTONIC_RAW),
                     "S"(&ts) : "rcx", "r11", "memory");
    if (ret != 0) return -1;
#else
    syscall(SYS_clock_gettime, CLOCK_MONOTONIC_RAW, &ts);
#endif
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

__global__ void empty_kernel(int *unused) {
    if (unused) *unused = 0;
}

int main(int argc, char **argv) {
    long launches = argc > 1 ? atol(argv[1]) : 1000000;
    cudaFree(0);                              // create the context outside the measured loop
    empty_kernel<<<1, 32>>>(nullptr);         // first launch registers and caches the kernel
    cudaDeviceSynchronize();
    long long t0 = raw_mono_ns();
    for (long i = 0; i < launches; i++) empty_kernel<<<1, 32>>>(nullptr);
    long long t1 = raw_mono_ns();
    cudaError_t err = cudaDeviceSynchronize();
    printf("RESULT launches=%ld ns_per_launch=%.3f sync_err=%d\n", launches,
           (double)(t1 - t0) / (double)launches, (int)err);
    return err == cudaSuccess ? 0 : 1;
}
