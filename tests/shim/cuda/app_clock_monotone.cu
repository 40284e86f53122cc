// Virtual time never goes backward: READS clock_gettime(CLOCK_MONOTONIC) calls on each of two
// threads, interleaved with short sleeps (which make the clock jump). Usage: app_clock_monotone READS
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <pthread.h>
#include <cuda_runtime.h>

struct reader {
    long reads;
    long backwards;
    long long first_ns, last_ns;
};

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void *read_loop(void *arg) {
    reader *r = (reader *)arg;
    long long prev = now_ns();
    r->first_ns = prev;
    for (long i = 0; i < r->reads; i++) {
        long long t = now_ns();
        if (t < prev) r->backwards++;
        prev = t;
        if (i % 10000 == 9999) {
            struct timespec nap = {0, 1000000};  // 1 ms
            nanosleep(&nap, NULL);
        }
    }
    r->last_ns = prev;
    return NULL;
}

int main(int argc, char **argv) {
    long reads = argc > 1 ? atol(argv[1]) : 1000000;
    int count = 0;
    cudaGetDeviceCount(&count);  // load the runtime as a CUDA program would
    reader a = {reads, 0, 0, 0}, b = {reads, 0, 0, 0};
    pthread_t t;
    pthread_create(&t, NULL, read_loop, &b);
    read_loop(&a);
    pthread_join(t, NULL);
    printf("RESULT reads=%ld\n", a.reads + b.reads);
    printf("RESULT backwards=%ld\n", a.backwards + b.backwards);
    printf("RESULT span_a_ns=%lld\n", a.last_ns - a.first_ns);
    printf("RESULT span_b_ns=%lld\n", b.last_ns - b.first_ns);
    printf("RESULT sleeps_per_thread=%ld\n", reads / 10000);
    return 0;
}
