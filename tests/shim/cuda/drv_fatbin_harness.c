/* Test harness for shim/src/fatbin.c alone: maps a file, treats the bytes at OFFSET as an
 * image (fatbin, cubin or PTX) and prints what the parser finds, one kernel per line:
 *   kernel <name> count=<n> bytes=<b> params=<off>:<size>,... regs=<r> smem=<s> maxthreads=<t> arch=<a>
 *   global <name> size=<bytes>
 * Usage: drv_fatbin_harness FILE [OFFSET [CC_MAJOR CC_MINOR [GLOBAL...]]]
 *        drv_fatbin_harness --lz4 COMPRESSED PLAIN_BYTES   (decode a raw LZ4 block to stdout)
 *        drv_fatbin_harness --garbage   (feeds random images; must not crash)
 *        drv_fatbin_harness --mutate FILE ROUNDS  (corrupts bytes of a real image; must not crash) */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fatbin.c"

void tw_log(int level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "log%d: ", level);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static int cc_major = 9, cc_minor = 0;
static const void *current;

static void print_kernel(const char *name, void *user)
{
    (void)user;
    tw_param_layout l;
    tw_kernel_info info;
    memset(&info, 0, sizeof info);
    bool have_info = tw_fatbin_kernel_info(current, name, cc_major, cc_minor, &info);
    if (!tw_fatbin_param_layout(current, name, cc_major, cc_minor, &l)) {
        printf("kernel %s unknown regs=%d arch=%d\n", name, have_info ? info.regs : -2, info.arch);
        return;
    }
    printf("kernel %s count=%u bytes=%u params=", name, l.count, l.param_bytes);
    for (uint32_t i = 0; i < l.count; i++)
        printf("%s%u:%u", i ? "," : "", l.offset[i], l.size[i]);
    printf(" regs=%d smem=%u maxthreads=%u arch=%d\n", info.regs, info.static_smem_bytes,
           info.max_threads, info.arch);
}

static void print_kernel_quiet(const char *name, void *user)
{
    tw_param_layout l;
    tw_kernel_info info;
    (void)user;
    (void)tw_fatbin_param_layout(current, name, cc_major, cc_minor, &l);
    (void)tw_fatbin_kernel_info(current, name, cc_major, cc_minor, &info);
}

static int garbage(void)
{
    /* truncated/corrupted copies of a valid image in an exactly-sized mapping followed by a
     * PROT_NONE guard page: any out-of-bounds read faults */
    static const unsigned char seeds[][16] = {
        {0x50, 0xed, 0x55, 0xba, 1, 0, 16, 0, 0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0},
        {0x7f, 'E', 'L', 'F', 2, 1, 1, 0x41, 8, 0, 0, 0, 0, 0, 0, 0},
        {0xb1, 0x43, 0x62, 0x46, 1, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0},
    };
    long page = sysconf(_SC_PAGESIZE);
    unsigned char *map = mmap(NULL, (size_t)page * 2, PROT_READ | PROT_WRITE,
                              MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (map == MAP_FAILED)
        return 1;
    mprotect(map + page, (size_t)page, PROT_NONE);
    srand(1234);
    unsigned found = 0;
    for (int round = 0; round < 20000; round++) {
        size_t len = 16 + (size_t)(rand() % (int)(page - 16));
        unsigned char *img = map + page - len;
        for (size_t i = 0; i < len; i++)
            img[i] = (unsigned char)rand();
        memcpy(img, seeds[round % 3], 16);
        if (round % 3 == 0) { /* plausible fatbin body length */
            uint64_t body = len - 16;
            memcpy(img + 8, &body, 8);
            uint16_t kind = 2; uint32_t hs = 64; uint64_t pad = (uint64_t)(rand() % 4096);
            if (len > 16 + 64) { memcpy(img + 16, &kind, 2); memcpy(img + 20, &hs, 4); memcpy(img + 24, &pad, 8); }
        } else if (round % 3 == 1 && len >= 64) { /* plausible ELF section table position */
            uint64_t shoff = (uint64_t)(rand() % (int)len);
            uint16_t shent = 64, shnum = (uint16_t)(rand() % 8);
            memcpy(img + 0x28, &shoff, 8); memcpy(img + 0x3a, &shent, 2); memcpy(img + 0x3c, &shnum, 2);
        } else if (round % 3 == 2) { /* wrapper pointing at the image itself */
            void *self = img;
            if (len >= 16) memcpy(img + 8, &self, sizeof self);
        }
        tw_param_layout l;
        tw_kernel_info info;
        uint64_t gsize;
        found += tw_fatbin_param_layout(img, "k", 9, 0, &l);
        found += tw_fatbin_kernel_info(img, "k", 9, 0, &info);
        found += tw_fatbin_global_size(img, "g", &gsize);
        (void)tw_fatbin_image_size(img);
        tw_fatbin_forget(img);
    }
    printf("garbage ok found=%u\n", found);
    return 0;
}

static int mutate(const char *path, int rounds)
{
    /* the image ends exactly at a PROT_NONE guard page: reading past it faults */
    int fd = open(path, O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || st.st_size <= 0)
        return 2;
    size_t len = (size_t)st.st_size;
    long page = sysconf(_SC_PAGESIZE);
    size_t span = (len + (size_t)page - 1) / (size_t)page * (size_t)page;
    unsigned char *map = mmap(NULL, span + (size_t)page, PROT_READ | PROT_WRITE,
                              MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    unsigned char *orig = malloc(len);
    if (map == MAP_FAILED || orig == NULL || read(fd, orig, len) != (ssize_t)len)
        return 2;
    mprotect(map + span, (size_t)page, PROT_NONE);
    unsigned char *img = map + span - len;
    srand(99);
    unsigned found = 0;
    for (int round = 0; round < rounds; round++) {
        memcpy(img, orig, len);
        int flips = 1 + rand() % 8;
        for (int i = 0; i < flips; i++) {
            /* headers and tables matter most: bias half the flips to the first 256 bytes */
            size_t at = (rand() & 1) ? (size_t)rand() % (len < 256 ? len : 256) : (size_t)rand() % len;
            img[at] = (unsigned char)rand();
        }
        current = img;
        tw_param_layout l;
        found += tw_fatbin_param_layout(img, "_Z2k1PfidcP6float4", 9, 0, &l);
        tw_fatbin_kernel_names(img, print_kernel_quiet, NULL);
        uint64_t gsize;
        found += tw_fatbin_global_size(img, "gvar", &gsize);
        tw_fatbin_forget(img);
    }
    free(orig);
    printf("mutate ok found=%u\n", found);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 4 && strcmp(argv[1], "--mutate") == 0)
        return mutate(argv[2], atoi(argv[3]));
    if (argc >= 2 && strcmp(argv[1], "--garbage") == 0)
        return garbage();
    if (argc < 2)
        return 2;
    int fd = open(argv[argc >= 4 && strcmp(argv[1], "--lz4") == 0 ? 2 : 1], O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0)
        return 2;
    unsigned char *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map == MAP_FAILED)
        return 2;
    if (strcmp(argv[1], "--lz4") == 0) {
        uint64_t plain = strtoull(argv[3], NULL, 0);
        unsigned char *out = malloc(plain);
        if (!tw_fatbin_lz4_decode(map, (uint64_t)st.st_size, out, plain))
            return 3;
        fwrite(out, 1, plain, stdout);
        return 0;
    }
    uint64_t offset = argc > 2 ? strtoull(argv[2], NULL, 0) : 0;
    if (argc > 4) {
        cc_major = atoi(argv[3]);
        cc_minor = atoi(argv[4]);
    }
    current = map + offset;
    printf("image_size %llu\n", (unsigned long long)tw_fatbin_image_size(current));
    tw_fatbin_kernel_names(current, print_kernel, NULL);
    for (int i = 5; i < argc; i++) {
        uint64_t size = 0;
        if (tw_fatbin_global_size(current, argv[i], &size))
            printf("global %s size=%llu\n", argv[i], (unsigned long long)size);
        else
            printf("global %s missing\n", argv[i]);
    }
    return 0;
}
