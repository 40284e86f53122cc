/* clock_gettime(CLOCK_MONOTONIC) cost: READS reads through libc (interposed under emulate),
 * timed with raw clock_gettime system calls that no interposer can see.
 * Usage: bench_clock READS   Prints: RESULT reads=N ns_per_read=X */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static long long raw_mono_ns(void) {
    struct timespec ts;
#if defined(__x86_64__)
    long ret;
    __asm__ volatile("syscall" : "=a"(ret) : "0"((long)SYS_clock_gettime), "D"((long)CLOCK_MONOTONIC_RAW),
                     "S"(&ts) : "rcx", "r11", "memory");
    if (ret != 0) return -1;
#else
    syscall(SYS_clock_gettime, CLOCK_MONOTONIC_RAW, &ts);
#endif
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char **argv) {
    long reads = argc > 1 ? atol(argv[1]) : 10000000;
    struct timespec ts;
    long long sink = 0;
    long long t0 = raw_mono_ns();
    for (long i = 0; i < reads; i++) {
        clock_gettime(CLOCK_MONOTONIC, &ts);
        sink += ts.tv_nsec;
    }
    long long t1 = raw_mono_ns();
    printf("RESULT reads=%ld ns_per_read=%.3f sink=%lld\n", reads, (double)(t1 - t0) / (double)reads,
           sink & 1);
    return 0;
}
