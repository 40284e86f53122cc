/* Fat binaries and cubins: kernel names, parameter layouts and per-kernel attributes, read
 * from the ELF's .nv.info sections (EIATTR records). Cold path: each (image, cubin) is parsed
 * once under a lock and kept as a compact table; every read is bounds-checked, so garbage in
 * means "unknown", never a crash.
 *
 * Formats, as observed in nvcc 13 output and torch's libtorch_cuda.so:
 *  - fatbin: u32 magic 0xBA55ED50, u16 version, u16 header bytes (16), u64 bytes of entries.
 *    Entry: u16 kind (1 PTX, 2 ELF), u16 version, u32 header bytes, u64 padded payload bytes,
 *    +16 u32 compressed bytes, +28 u32 sm arch (90 = sm_90), +40 u64 flags (0x2000: LZ4 block,
 *    0x8000: zstd frame), +56 u64 uncompressed bytes.
 *  - .nv.info records: u8 format (1..3: 2-byte inline value, 4: u16 size then payload),
 *    u8 attribute, u16 value-or-size. KPARAM_INFO (0x17) payload: u32 index, u16 ordinal,
 *    u16 offset, u32 whose bits 18..31 are the size in bytes. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include "tw_core.h"


#define FATBIN_MAGIC 0xBA55ED50u
#define FATBIN_WRAPPER_MAGIC 0x466243b1u
#define FB_KIND_PTX 1
#define FB_KIND_ELF 2
#define FB_FLAG_LZ4 0x2000u
#define FB_FLAG_ZSTD 0x8000u
#define FB_MAX_BYTES (1ull << 31)      /* sanity bound on any one image or payload */

#define EIATTR_PARAM_CBANK 0x0a
#define EIATTR_FRAME_SIZE 0x11
#define EIATTR_KPARAM_INFO 0x17      /* size in bits 18..31 of the last word */
#define EIATTR_KPARAM_INFO_V2 0x45   /* size in bits 0..15 (large by-value parameters) */
#define EIATTR_CBANK_PARAM_SIZE 0x19
#define EIATTR_MAX_THREADS 0x05
#define EIATTR_REQNTID 0x10
#define EIATTR_REGCOUNT 0x2f
#define EIATTR_CUDA_API_VERSION 0x37

#define STT_FUNC_ 2
#define STT_OBJECT_ 1
#define STO_CUDA_ENTRY 0x10
#define SHT_SYMTAB_ 2
#define SHT_NOBITS_ 8

/* ------------------------------------------------------------------ bounded reads */

static inline uint16_t rd16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static inline uint32_t rd32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static inline uint64_t rd64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }

/* [off, off+len) inside a buffer of n bytes, without overflow */
static inline bool in_bounds(uint64_t off, uint64_t len, uint64_t n)
{
    return off <= n && len <= n - off;
}

/* Whether [p, p+len) is readable: images come as bare pointers, so their self-described
 * size is checked against the address space before anything past the header is read.
 * process_vm_readv on ourselves reads one byte per page and fails with EFAULT on unmapped or
 * PROT_NONE pages (unbacked device ranges); mincore (mapped at all) is the fallback. */
static bool mapped(const void *p, uint64_t len)
{
    if (p == NULL)
        return false;
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t first = (uintptr_t)p & ~(page - 1);
    uintptr_t end = (uintptr_t)p + (uintptr_t)(len ? len : 1);
    if (end < (uintptr_t)p)
        return false;
    static int vm_readv_works = 1; /* benign race: every writer stores the same value */
    unsigned char sink[64];
    struct iovec local[64], remote[64];
    for (uintptr_t at = first; at < end;) {
        int n = 0;
        for (; n < 64 && at < end; n++, at += page) {
            local[n] = (struct iovec){sink + n, 1};
            remote[n] = (struct iovec){(void *)(at < (uintptr_t)p ? (uintptr_t)p : at), 1};
        }
        if (__atomic_load_n(&vm_readv_works, __ATOMIC_RELAXED)) {
            ssize_t got = process_vm_readv(getpid(), local, (unsigned long)n, remote,
                                           (unsigned long)n, 0);
            if (got == n)
                continue;
            if (got >= 0 || errno == EFAULT)
                return false;
            __atomic_store_n(&vm_readv_works, 0, __ATOMIC_RELAXED); /* ENOSYS, EPERM: seccomp */
        }
        unsigned char vec[64];
        uintptr_t start = (uintptr_t)remote[0].iov_base & ~(page - 1);
        if (mincore((void *)start, (size_t)n * page, vec) != 0)
            return false;
    }
    return true;
}

/* ------------------------------------------------------------------ image kinds and sizes */

enum { IMG_NONE = 0, IMG_FATBIN = 1, IMG_ELF = 2, IMG_PTX = 3 };

static const uint8_t *unwrap(const void *image)
{
    const uint8_t *p = image;
    if (p == NULL || !mapped(p, 16))
        return NULL;
    /* the __cudaRegisterFatBinary wrapper {magic, version, data, ...} */
    if (rd32(p) == FATBIN_WRAPPER_MAGIC) {
        const uint8_t *data;
        memcpy(&data, p + 8, sizeof data);
        if (data == NULL || !mapped(data, 16))
            return NULL;
        return data;
    }
    return p;
}

static uint64_t elf_extent(const uint8_t *p, uint64_t known)
{
    /* needs the 64-byte header; `known` bounds the reads when the caller knows the size */
    if (known && known < 64)
        return 0;
    if (!(p[0] == 0x7f && p[1] == 'E' && p[2] == 'L' && p[3] == 'F') || p[4] != 2 || p[5] != 1)
        return 0;
    uint64_t phoff = rd64(p + 0x20), shoff = rd64(p + 0x28);
    uint16_t phentsize = rd16(p + 0x36), phnum = rd16(p + 0x38);
    uint16_t shentsize = rd16(p + 0x3a), shnum = rd16(p + 0x3c);
    if (shentsize != 64 || shoff >= FB_MAX_BYTES || phoff >= FB_MAX_BYTES)
        return 0;
    uint64_t end = shoff + (uint64_t)shnum * shentsize;
    if (phnum && phentsize == 56 && phoff + (uint64_t)phnum * 56 > end)
        end = phoff + (uint64_t)phnum * 56;
    if ((known && end > known) || (!known && !mapped(p, end)))
        return 0;
    for (uint16_t i = 0; i < shnum; i++) {
        const uint8_t *sh = p + shoff + (uint64_t)i * 64;
        uint32_t type = rd32(sh + 4);
        uint64_t off = rd64(sh + 0x18), size = rd64(sh + 0x20);
        if (type == SHT_NOBITS_ || type == 0)
            continue;
        if (off >= FB_MAX_BYTES || size >= FB_MAX_BYTES)
            return 0;
        if (off + size > end)
            end = off + size;
    }
    if (phnum && phentsize == 56) {
        for (uint16_t i = 0; i < phnum; i++) {
            const uint8_t *ph = p + phoff + (uint64_t)i * 56;
            uint64_t off = rd64(ph + 8), filesz = rd64(ph + 0x20);
            if (off >= FB_MAX_BYTES || filesz >= FB_MAX_BYTES)
                return 0;
            if (off + filesz > end)
                end = off + filesz;
        }
    }
    if ((known && end > known) || (!known && !mapped(p, end)))
        return 0;
    return end;
}

static bool looks_like_ptx(const uint8_t *p)
{
    /* PTX text: skip leading whitespace and comments, expect a directive or a comment */
    long page = sysconf(_SC_PAGESIZE);
    for (int i = 0; i < 4096; i++) {
        if (i > 0 && (((uintptr_t)p + (uintptr_t)i) & (uintptr_t)(page - 1)) == 0 && !mapped(p + i, 1))
            return false;
        uint8_t c = p[i];
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r')
            continue;
        return c == '.' || c == '/';
    }
    return false;
}

static int classify(const uint8_t *p, uint64_t *size_out)
{
    *size_out = 0;
    if (p == NULL)
        return IMG_NONE;
    if (rd32(p) == FATBIN_MAGIC) {
        uint16_t header = rd16(p + 6);
        uint64_t body = rd64(p + 8);
        if (header < 16 || header > 256 || body >= FB_MAX_BYTES || !mapped(p, header + body))
            return IMG_NONE;
        *size_out = header + body;
        return IMG_FATBIN;
    }
    uint64_t elf = mapped(p, 64) ? elf_extent(p, 0) : 0;
    if (elf) {
        *size_out = elf;
        return IMG_ELF;
    }
    if (looks_like_ptx(p))
        return IMG_PTX;
    return IMG_NONE;
}

/* Length of a NUL-terminated text image, reading only mapped pages. */
static uint64_t text_length(const uint8_t *p)
{
    long page = sysconf(_SC_PAGESIZE);
    uint64_t at = 0;
    while (at < FB_MAX_BYTES) {
        uint64_t to_page_end = (uint64_t)page - (((uintptr_t)p + at) & (uint64_t)(page - 1));
        if (!mapped(p + at, 1))
            return 0;
        const uint8_t *nul = memchr(p + at, 0, to_page_end);
        if (nul)
            return (uint64_t)(nul - p);
        at += to_page_end;
    }
    return 0;
}

uint64_t tw_fatbin_image_size(const void *image)
{
    const uint8_t *p = unwrap(image);
    uint64_t size = 0;
    int kind = classify(p, &size);
    if (kind == IMG_PTX) {
        uint64_t len = text_length(p);
        return len ? len + 1 : 0;
    }
    return size;
}

/* ------------------------------------------------------------------ decompression */

/* LZ4 block format (what fatbinary's "speed" compression mode writes). */
static bool lz4_block_decode(const uint8_t *src, uint64_t src_len, uint8_t *dst, uint64_t dst_len)
{
    uint64_t si = 0, di = 0;
    while (si < src_len) {
        uint8_t token = src[si++];
        uint64_t lit = token >> 4;
        if (lit == 15) {
            uint8_t b;
            do {
                if (si >= src_len)
                    return false;
                b = src[si++];
                lit += b;
            } while (b == 255);
        }
        if (!in_bounds(si, lit, src_len) || !in_bounds(di, lit, dst_len))
            return false;
        memcpy(dst + di, src + si, lit);
        si += lit;
        di += lit;
        if (si == src_len)
            break; /* the last sequence has literals only */
        if (si + 2 > src_len)
            return false;
        uint64_t distance = rd16(src + si);
        si += 2;
        if (distance == 0 || distance > di)
            return false;
        uint64_t match = (token & 15u) + 4;
        if ((token & 15u) == 15) {
            uint8_t b;
            do {
                if (si >= src_len)
                    return false;
                b = src[si++];
                match += b;
            } while (b == 255);
        }
        if (!in_bounds(di, match, dst_len))
            return false;
        for (uint64_t i = 0; i < match; i++, di++) /* overlapping copies are the point */
            dst[di] = dst[di - distance];
    }
    return di == dst_len;
}

typedef size_t (*zstd_decompress_fn)(void *, size_t, const void *, size_t);
typedef unsigned (*zstd_is_error_fn)(size_t);
static zstd_decompress_fn zstd_decompress;
static zstd_is_error_fn zstd_is_error;
static pthread_once_t zstd_once = PTHREAD_ONCE_INIT;

static void zstd_load(void)
{
    /* CUDA 13 fatbins are zstd-compressed; the system's libzstd decodes them */
    void *lib = dlopen("libzstd.so.1", RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL) {
        TW_WARN("fatbin: libzstd.so.1 not found: compressed cubins give no parameter layouts");
        return;
    }
    zstd_decompress = (zstd_decompress_fn)dlsym(lib, "ZSTD_decompress");
    zstd_is_error = (zstd_is_error_fn)dlsym(lib, "ZSTD_isError");
    if (zstd_decompress == NULL || zstd_is_error == NULL) {
        zstd_decompress = NULL;
        TW_WARN("fatbin: libzstd.so.1 lacks ZSTD_decompress");
    }
}

bool tw_fatbin_lz4_decode(const uint8_t *src, uint64_t src_len, uint8_t *dst, uint64_t dst_len)
{
    return lz4_block_decode(src, src_len, dst, dst_len);
}

/* ------------------------------------------------------------------ parsed tables */

typedef struct fb_kernel {
    uint32_t name_off;        /* into fb_image.names */
    uint32_t hash;
    uint32_t param_count;     /* UINT32_MAX: no KPARAM_INFO seen */
    uint32_t param_bytes;
    uint32_t params_at;       /* index of the first (offset, size) pair in fb_image.params */
    tw_kernel_info info;
} fb_kernel;

typedef struct fb_global {
    uint32_t name_off;
    uint64_t size;
} fb_global;

typedef struct fb_image {
    const void *key;
    uint64_t fingerprint;
    int arch;                 /* sm of the parsed entry; 0 for PTX-only */
    char *names;
    size_t names_len, names_cap;
    fb_kernel *kernels;
    uint32_t kernel_count, kernel_cap;
    uint32_t *slots;          /* open addressing by name hash: kernel index + 1 */
    uint32_t slot_mask;
    uint16_t *params;         /* (offset, size) pairs */
    uint32_t params_len, params_cap;
    fb_global *globals;
    uint32_t global_count, global_cap;
    struct fb_image *next;
} fb_image;

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static fb_image *cache_head;

static uint32_t hash_name(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 16777619u;
    return h;
}

static uint64_t fingerprint(const uint8_t *p, uint64_t size)
{
    uint64_t h = 1469598103934665603ull ^ size;
    uint64_t n = size < 4096 ? size : 4096;
    for (uint64_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    for (uint64_t i = size - n; i < size; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

static bool grow(void **buf, uint32_t *cap, uint32_t need, size_t elem)
{
    if (need <= *cap)
        return true;
    uint32_t next = *cap ? *cap * 2 : 16;
    while (next < need)
        next *= 2;
    void *p = realloc(*buf, (size_t)next * elem);
    if (p == NULL)
        return false;
    *buf = p;
    *cap = next;
    return true;
}

static int64_t add_name(fb_image *img, const char *name, size_t len)
{
    if (img->names_len + len + 1 > UINT32_MAX)
        return -1;
    if (img->names_len + len + 1 > img->names_cap) {
        size_t cap = img->names_cap ? img->names_cap * 2 : 4096;
        while (cap < img->names_len + len + 1)
            cap *= 2;
        char *p = realloc(img->names, cap);
        if (p == NULL)
            return -1;
        img->names = p;
        img->names_cap = cap;
    }
    size_t at = img->names_len;
    memcpy(img->names + at, name, len);
    img->names[at + len] = '\0';
    img->names_len += len + 1;
    return (int64_t)at;
}

static fb_kernel *find_kernel(const fb_image *img, const char *name)
{
    if (img->slots == NULL)
        return NULL;
    uint32_t h = hash_name(name);
    for (uint32_t i = h & img->slot_mask;; i = (i + 1) & img->slot_mask) {
        uint32_t slot = img->slots[i];
        if (slot == 0)
            return NULL;
        fb_kernel *k = &img->kernels[slot - 1];
        if (k->hash == h && strcmp(img->names + k->name_off, name) == 0)
            return k;
    }
}

static fb_kernel *add_kernel(fb_image *img, const char *name, size_t len)
{
    if (!grow((void **)&img->kernels, &img->kernel_cap, img->kernel_count + 1, sizeof(fb_kernel)))
        return NULL;
    int64_t off = add_name(img, name, len);
    if (off < 0)
        return NULL;
    fb_kernel *k = &img->kernels[img->kernel_count++];
    memset(k, 0, sizeof *k);
    k->name_off = (uint32_t)off;
    k->hash = hash_name(img->names + off);
    k->param_count = UINT32_MAX;
    k->info.regs = -1;
    return k;
}

static bool build_slots(fb_image *img)
{
    uint32_t n = 16;
    while (n < img->kernel_count * 2u + 2)
        n *= 2;
    img->slots = calloc(n, sizeof(uint32_t));
    if (img->slots == NULL)
        return false;
    img->slot_mask = n - 1;
    for (uint32_t k = 0; k < img->kernel_count; k++) {
        uint32_t i = img->kernels[k].hash & img->slot_mask;
        while (img->slots[i] != 0)
            i = (i + 1) & img->slot_mask;
        img->slots[i] = k + 1;
    }
    return true;
}

static void free_image(fb_image *img)
{
    if (img == NULL)
        return;
    free(img->names);
    free(img->kernels);
    free(img->slots);
    free(img->params);
    free(img->globals);
    free(img);
}

/* ------------------------------------------------------------------ ELF (cubin) */

typedef struct elf_view {
    const uint8_t *p;
    uint64_t n;
    uint64_t shoff;
    uint16_t shnum;
    const uint8_t *shstr;
    uint64_t shstr_len;
} elf_view;

static const uint8_t *section(const elf_view *e, uint32_t i)
{
    return i < e->shnum ? e->p + e->shoff + (uint64_t)i * 64 : NULL;
}

/* The section's bytes, or NULL when it lies outside the image. */
static const uint8_t *section_data(const elf_view *e, const uint8_t *sh, uint64_t *len)
{
    uint64_t off = rd64(sh + 0x18), size = rd64(sh + 0x20);
    if (rd32(sh + 4) == SHT_NOBITS_ || !in_bounds(off, size, e->n))
        return NULL;
    *len = size;
    return e->p + off;
}

/* A NUL-terminated string at off inside [base, base+len), or NULL. */
static const char *str_at(const uint8_t *base, uint64_t len, uint64_t off, size_t *out_len)
{
    if (base == NULL || off >= len)
        return NULL;
    const uint8_t *nul = memchr(base + off, 0, len - off);
    if (nul == NULL)
        return NULL;
    *out_len = (size_t)(nul - (base + off));
    return (const char *)base + off;
}

static const char *section_name(const elf_view *e, const uint8_t *sh, size_t *len)
{
    return str_at(e->shstr, e->shstr_len, rd32(sh), len);
}

static bool has_prefix(const char *s, size_t len, const char *prefix, size_t plen)
{
    return len > plen && memcmp(s, prefix, plen) == 0;
}

/* Find the kernel whose name is the suffix of a section name like ".nv.info.<kernel>". */
static fb_kernel *kernel_by_suffix(fb_image *img, const char *name, size_t len, size_t plen)
{
    char buf[4096];
    size_t n = len - plen;
    if (n >= sizeof buf)
        return NULL;
    memcpy(buf, name + plen, n);
    buf[n] = '\0';
    return find_kernel(img, buf);
}

static void parse_kernel_info(fb_image *img, fb_kernel *k, const uint8_t *d, uint64_t len)
{
    /* KPARAM_INFO records come in any ordinal order: collect, then place by ordinal */
    uint16_t off[TW_MAX_PARAMS], size[TW_MAX_PARAMS];
    uint32_t count = 0, cbank_size = 0, cbank_param = 0;
    bool seen = false, overflow = false;
    for (uint64_t at = 0; at + 4 <= len;) {
        uint8_t format = d[at], attr = d[at + 1];
        uint16_t value = rd16(d + at + 2);
        const uint8_t *payload = d + at + 4;
        uint64_t payload_len = 0;
        if (format == 4) {
            payload_len = value;
            if (!in_bounds(at + 4, payload_len, len))
                break;
        } else if (format < 1 || format > 3) {
            break; /* unknown format: the rest cannot be framed */
        }
        if (format == 4 && (attr == EIATTR_KPARAM_INFO || attr == EIATTR_KPARAM_INFO_V2) &&
            payload_len >= 12) {
            uint16_t ordinal = rd16(payload + 4), offset = rd16(payload + 6);
            uint32_t bits = rd32(payload + 8);
            seen = true;
            if (ordinal >= TW_MAX_PARAMS) {
                overflow = true;
            } else {
                while (count <= ordinal) {
                    off[count] = 0;
                    size[count] = 0;
                    count++;
                }
                off[ordinal] = offset;
                size[ordinal] = (uint16_t)(attr == EIATTR_KPARAM_INFO ? (bits >> 18) & 0x3fff
                                                                      : bits & 0xffff);
            }
        } else if (format == 4 && attr == EIATTR_PARAM_CBANK && payload_len >= 8) {
            cbank_param = rd32(payload + 4) >> 16;
        } else if (format == 3 && attr == EIATTR_CBANK_PARAM_SIZE) {
            cbank_size = value;
        } else if (format == 4 && (attr == EIATTR_MAX_THREADS || attr == EIATTR_REQNTID) &&
                   payload_len >= 12) {
            uint64_t t = (uint64_t)rd32(payload) * rd32(payload + 4) * rd32(payload + 8);
            if (t > 0 && t <= 65536 && (attr == EIATTR_MAX_THREADS || k->info.max_threads == 0))
                k->info.max_threads = (uint32_t)t;
        } else if (format == 4 && attr == EIATTR_CUDA_API_VERSION && payload_len >= 4) {
            k->info.cuda_api_version = rd32(payload);
        }
        at += 4 + payload_len;
    }
    if (overflow) {
        TW_WARN("fatbin: %s has more than %d parameters: layout unknown",
                img->names + k->name_off, TW_MAX_PARAMS);
        return;
    }
    uint32_t computed = 0;
    for (uint32_t i = 0; i < count; i++)
        if ((uint32_t)off[i] + size[i] > computed)
            computed = (uint32_t)off[i] + size[i];
    k->param_bytes = cbank_size ? cbank_size : (cbank_param ? cbank_param : computed);
    if (!seen) {
        /* no KPARAM_INFO: a kernel without parameters has no CBANK size either */
        k->param_count = cbank_size || cbank_param ? UINT32_MAX : 0;
        return;
    }
    if (!grow((void **)&img->params, &img->params_cap, img->params_len + count * 2, sizeof(uint16_t)))
        return;
    k->params_at = img->params_len;
    for (uint32_t i = 0; i < count; i++) {
        img->params[img->params_len++] = off[i];
        img->params[img->params_len++] = size[i];
    }
    k->param_count = count;
}

static bool parse_elf(fb_image *img, const uint8_t *p, uint64_t n)
{
    if (n < 64 || elf_extent(p, n) == 0)
        return false;
    elf_view e = {.p = p, .n = n, .shoff = rd64(p + 0x28), .shnum = rd16(p + 0x3c)};
    uint16_t shstrndx = rd16(p + 0x3e);
    const uint8_t *shs = section(&e, shstrndx);
    if (shs == NULL || (e.shstr = section_data(&e, shs, &e.shstr_len)) == NULL)
        return false;
    /* e_flags holds the sm arch: bits 8..15 from ELF ABI version 8 (CUDA 13), else bits 0..7 */
    uint32_t e_flags = rd32(p + 0x30);
    img->arch = (int)(p[8] >= 8 ? (e_flags >> 8) & 0xff : e_flags & 0xff);

    /* 1. entry functions and globals from the symbol table */
    for (uint32_t i = 0; i < e.shnum; i++) {
        const uint8_t *sh = section(&e, i);
        if (rd32(sh + 4) != SHT_SYMTAB_ || rd64(sh + 0x38) != 24)
            continue;
        uint64_t sym_len = 0, str_len = 0;
        const uint8_t *syms = section_data(&e, sh, &sym_len);
        const uint8_t *strsh = section(&e, rd32(sh + 0x28));
        const uint8_t *strs = strsh ? section_data(&e, strsh, &str_len) : NULL;
        if (syms == NULL || strs == NULL)
            continue;
        for (uint64_t at = 24; at + 24 <= sym_len; at += 24) {
            const uint8_t *s = syms + at;
            uint8_t type = s[4] & 0xf, other = s[5];
            size_t len = 0;
            const char *name = str_at(strs, str_len, rd32(s), &len);
            if (name == NULL || len == 0)
                continue;
            if (type == STT_FUNC_ && (other & STO_CUDA_ENTRY)) {
                char buf[4096];
                if (len >= sizeof buf)
                    continue;
                memcpy(buf, name, len);
                buf[len] = '\0';
                if (img->kernel_count && img->slots == NULL) {
                    /* duplicates are rare; a linear check keeps the build single-pass */
                    bool dup = false;
                    for (uint32_t k = 0; k < img->kernel_count && !dup; k++)
                        dup = strcmp(img->names + img->kernels[k].name_off, buf) == 0;
                    if (dup)
                        continue;
                }
                if (add_kernel(img, name, len) == NULL)
                    return false;
            } else if (type == STT_OBJECT_) {
                if (!grow((void **)&img->globals, &img->global_cap, img->global_count + 1,
                          sizeof(fb_global)))
                    return false;
                int64_t off = add_name(img, name, len);
                if (off < 0)
                    return false;
                img->globals[img->global_count].name_off = (uint32_t)off;
                img->globals[img->global_count].size = rd64(s + 16);
                img->global_count++;
            }
        }
    }
    if (!build_slots(img))
        return false;

    /* 2. per-kernel sections: .nv.info.<k>, .nv.shared.<k>, .nv.constant0.<k>, .nv.local.<k> */
    /* sm_90+ cubins with a .nv.shared.reserved.0 section count the driver's 1 KiB reserved
     * area in every .nv.shared.<k>; the API reports static shared memory without it */
    uint32_t reserved_smem = 0;
    for (uint32_t i = 0; i < e.shnum; i++) {
        size_t len = 0;
        const char *name = section_name(&e, section(&e, i), &len);
        if (name && len == 21 && memcmp(name, ".nv.shared.reserved.0", 21) == 0)
            reserved_smem = 1024;
    }
    static const char info_prefix[] = ".nv.info.", shared_prefix[] = ".nv.shared.",
                      const_prefix[] = ".nv.constant0.", local_prefix[] = ".nv.local.";
    for (uint32_t i = 0; i < e.shnum; i++) {
        const uint8_t *sh = section(&e, i);
        size_t len = 0;
        const char *name = section_name(&e, sh, &len);
        if (name == NULL)
            continue;
        uint64_t size = rd64(sh + 0x20);
        fb_kernel *k;
        if (has_prefix(name, len, info_prefix, sizeof info_prefix - 1)) {
            k = kernel_by_suffix(img, name, len, sizeof info_prefix - 1);
            uint64_t dlen = 0;
            const uint8_t *d = k ? section_data(&e, sh, &dlen) : NULL;
            if (d)
                parse_kernel_info(img, k, d, dlen);
        } else if (has_prefix(name, len, shared_prefix, sizeof shared_prefix - 1)) {
            if ((k = kernel_by_suffix(img, name, len, sizeof shared_prefix - 1)) && size < UINT32_MAX)
                k->info.static_smem_bytes =
                    (uint32_t)(size >= reserved_smem ? size - reserved_smem : size);
        } else if (has_prefix(name, len, const_prefix, sizeof const_prefix - 1)) {
            if ((k = kernel_by_suffix(img, name, len, sizeof const_prefix - 1)) && size < UINT32_MAX)
                k->info.const_bytes = (uint32_t)size;
        } else if (has_prefix(name, len, local_prefix, sizeof local_prefix - 1)) {
            if ((k = kernel_by_suffix(img, name, len, sizeof local_prefix - 1)) && size < UINT32_MAX)
                k->info.local_bytes = (uint32_t)size;
        }
    }

    /* 3. the global .nv.info: REGCOUNT and FRAME_SIZE keyed by symbol index */
    const uint8_t *symsh = NULL;
    uint64_t sym_len = 0, str_len = 0;
    const uint8_t *syms = NULL, *strs = NULL;
    for (uint32_t i = 0; i < e.shnum && symsh == NULL; i++) {
        const uint8_t *sh = section(&e, i);
        if (rd32(sh + 4) == SHT_SYMTAB_) {
            symsh = sh;
            syms = section_data(&e, sh, &sym_len);
            const uint8_t *strsh = section(&e, rd32(sh + 0x28));
            strs = strsh ? section_data(&e, strsh, &str_len) : NULL;
        }
    }
    for (uint32_t i = 0; i < e.shnum && syms && strs; i++) {
        const uint8_t *sh = section(&e, i);
        size_t len = 0;
        const char *name = section_name(&e, sh, &len);
        if (name == NULL || len != 8 || memcmp(name, ".nv.info", 8) != 0)
            continue;
        uint64_t dlen = 0;
        const uint8_t *d = section_data(&e, sh, &dlen);
        for (uint64_t at = 0; d && at + 4 <= dlen;) {
            uint8_t format = d[at], attr = d[at + 1];
            uint64_t payload_len = format == 4 ? rd16(d + at + 2) : 0;
            if (format < 1 || format > 4 || !in_bounds(at + 4, payload_len, dlen))
                break;
            if (format == 4 && payload_len >= 8 &&
                (attr == EIATTR_REGCOUNT || attr == EIATTR_FRAME_SIZE)) {
                uint64_t sym = rd32(d + at + 4);
                uint32_t value = rd32(d + at + 8);
                size_t nlen = 0;
                const char *sname = in_bounds(sym * 24, 24, sym_len)
                                        ? str_at(strs, str_len, rd32(syms + sym * 24), &nlen)
                                        : NULL;
                char buf[4096];
                fb_kernel *k = NULL;
                if (sname && nlen < sizeof buf) {
                    memcpy(buf, sname, nlen);
                    buf[nlen] = '\0';
                    k = find_kernel(img, buf);
                }
                if (k && attr == EIATTR_REGCOUNT)
                    k->info.regs = (int32_t)value;
                else if (k && attr == EIATTR_FRAME_SIZE && k->info.local_bytes == 0)
                    k->info.local_bytes = value;
            }
            at += 4 + payload_len;
        }
    }
    for (uint32_t k = 0; k < img->kernel_count; k++)
        img->kernels[k].info.arch = img->arch;
    return true;
}

/* ------------------------------------------------------------------ PTX (text) */

static bool ptx_word(const char **s, const char *end, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(end - *s) >= n && memcmp(*s, word, n) == 0) {
        *s += n;
        return true;
    }
    return false;
}

static void ptx_skip_space(const char **s, const char *end)
{
    while (*s < end) {
        char c = **s;
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
            (*s)++;
        } else if (c == '/' && *s + 1 < end && (*s)[1] == '/') {
            while (*s < end && **s != '\n')
                (*s)++;
        } else if (c == '/' && *s + 1 < end && (*s)[1] == '*') {
            *s += 2;
            while (*s + 1 < end && !((*s)[0] == '*' && (*s)[1] == '/'))
                (*s)++;
            *s = *s + 2 <= end ? *s + 2 : end;
        } else {
            return;
        }
    }
}

static uint32_t ptx_type_bytes(const char *t, size_t n)
{
    /* .u8 .s16 .f32 .b64 .pred ... : the digits give the width */
    if (n == 5 && memcmp(t, ".pred", 5) == 0)
        return 1;
    uint32_t bits = 0;
    for (size_t i = 2; i < n; i++) {
        if (t[i] < '0' || t[i] > '9')
            return 0;
        bits = bits * 10 + (uint32_t)(t[i] - '0');
    }
    return bits >= 8 && bits <= 128 ? bits / 8 : 0;
}

/* One `.entry NAME ( .param ... , ... )`: offsets follow the PTX ABI (each parameter aligned
 * to its .align or element size). */
static void ptx_parse_entry(fb_image *img, const char **cursor, const char *end)
{
    const char *s = *cursor;
    ptx_skip_space(&s, end);
    const char *name = s;
    while (s < end && *s != '(' && *s != ' ' && *s != '\t' && *s != '\n' && *s != '\r' && *s != '{')
        s++;
    size_t name_len = (size_t)(s - name);
    *cursor = s;
    if (name_len == 0 || name_len >= 4096)
        return;
    char buf[4096];
    memcpy(buf, name, name_len);
    buf[name_len] = '\0';
    if (find_kernel(img, buf) != NULL)
        return;
    fb_kernel *k = add_kernel(img, name, name_len);
    if (k == NULL)
        return;
    free(img->slots); /* rebuilt after each add: PTX modules hold few entries */
    img->slots = NULL;
    if (!build_slots(img))
        return;
    k = find_kernel(img, buf);
    ptx_skip_space(&s, end);
    uint16_t off[TW_MAX_PARAMS], size[TW_MAX_PARAMS];
    uint32_t count = 0, at = 0;
    if (s < end && *s == '(') {
        s++;
        for (;;) {
            ptx_skip_space(&s, end);
            if (s >= end || *s == ')')
                break;
            if (!ptx_word(&s, end, ".param"))
                return;
            uint32_t align = 0, elem = 0, array = 1;
            for (;;) {
                ptx_skip_space(&s, end);
                if (ptx_word(&s, end, ".align")) {
                    ptx_skip_space(&s, end);
                    align = (uint32_t)strtoul(s, (char **)&s, 10);
                } else if (ptx_word(&s, end, ".ptr") || ptx_word(&s, end, ".global") ||
                           ptx_word(&s, end, ".const") || ptx_word(&s, end, ".shared") ||
                           ptx_word(&s, end, ".local")) {
                } else if (s < end && *s == '.') {
                    const char *t = s;
                    while (s < end && *s != ' ' && *s != '\t' && *s != '\n')
                        s++;
                    elem = ptx_type_bytes(t, (size_t)(s - t));
                } else {
                    break;
                }
            }
            while (s < end && *s != ',' && *s != ')' && *s != '[')
                s++;
            if (s < end && *s == '[') {
                array = (uint32_t)strtoul(s + 1, (char **)&s, 10);
                while (s < end && *s != ',' && *s != ')')
                    s++;
            }
            if (elem == 0 || count >= TW_MAX_PARAMS)
                return; /* unknown type or too many: leave the layout unknown */
            if (align == 0)
                align = elem;
            at = (at + align - 1) / align * align;
            uint64_t bytes = (uint64_t)elem * array;
            if (at + bytes > 0xffff)
                return;
            off[count] = (uint16_t)at;
            size[count] = (uint16_t)bytes;
            count++;
            at += (uint32_t)bytes;
            if (s < end && *s == ',')
                s++;
        }
    }
    *cursor = s;
    if (!grow((void **)&img->params, &img->params_cap, img->params_len + count * 2, sizeof(uint16_t)))
        return;
    k->params_at = img->params_len;
    for (uint32_t i = 0; i < count; i++) {
        img->params[img->params_len++] = off[i];
        img->params[img->params_len++] = size[i];
    }
    k->param_count = count;
    k->param_bytes = at;
}

static bool parse_ptx(fb_image *img, const uint8_t *p, uint64_t n)
{
    const char *s = (const char *)p, *end = s + n;
    if (!build_slots(img))
        return false;
    while (s < end) {
        const char *hit = memmem(s, (size_t)(end - s), ".entry", 6);
        if (hit == NULL)
            break;
        s = hit + 6;
        bool word_start = hit == (const char *)p || hit[-1] == ' ' || hit[-1] == '\n' ||
                          hit[-1] == '\t';
        if (word_start && s < end && (*s == ' ' || *s == '\t'))
            ptx_parse_entry(img, &s, end);
    }
    return true;
}

/* ------------------------------------------------------------------ fatbin entries */

typedef struct fb_entry {
    uint16_t kind;
    int arch;
    uint64_t flags;
    const uint8_t *payload;
    uint64_t payload_len;     /* stored bytes (compressed when flagged) */
    uint64_t plain_len;       /* uncompressed bytes */
} fb_entry;

/* Best entry of `kind` for target arch `want`: exact, else the highest lower, else the
 * lowest higher (layouts do not depend on the arch; attributes do, a little). */
static bool pick_entry(const uint8_t *fb, uint64_t size, int kind, int want, fb_entry *out)
{
    uint16_t header = rd16(fb + 6);
    bool found = false;
    int64_t best_rank = INT64_MAX;
    for (uint64_t at = header; at + 64 <= size;) {
        const uint8_t *h = fb + at;
        uint16_t ekind = rd16(h);
        uint32_t ehs = rd32(h + 4);
        uint64_t padded = rd64(h + 8);
        if (ehs < 64 || !in_bounds(at, ehs, size) || !in_bounds(at + ehs, padded, size))
            break;
        int arch = (int)rd32(h + 28);
        uint64_t flags = rd64(h + 40);
        uint64_t stored = padded, plain = padded;
        if (flags & (FB_FLAG_LZ4 | FB_FLAG_ZSTD)) {
            stored = rd32(h + 16);
            plain = rd64(h + 56);
        }
        if (ekind == kind && stored <= padded && plain < FB_MAX_BYTES) {
            int64_t rank = arch == want ? 0
                           : (arch < want ? 1000 + ((int64_t)want - arch) : ((int64_t)1 << 40) + arch);
            if (rank < best_rank) {
                best_rank = rank;
                found = true;
                *out = (fb_entry){ekind, arch, flags, h + ehs, stored, plain};
            }
        }
        at += ehs + padded;
    }
    return found;
}

/* The entry's plain bytes: the payload itself, or a malloc'd decompressed copy (*owned). */
static const uint8_t *entry_bytes(const fb_entry *e, uint8_t **owned, uint64_t *len)
{
    *owned = NULL;
    if (!(e->flags & (FB_FLAG_LZ4 | FB_FLAG_ZSTD))) {
        *len = e->payload_len;
        return e->payload;
    }
    uint8_t *dst = malloc(e->plain_len + 1);
    if (dst == NULL)
        return NULL;
    bool ok = false;
    if (e->flags & FB_FLAG_ZSTD) {
        pthread_once(&zstd_once, zstd_load);
        if (zstd_decompress != NULL) {
            size_t r = zstd_decompress(dst, e->plain_len, e->payload, e->payload_len);
            ok = !zstd_is_error(r) && r == e->plain_len;
        }
    } else {
        ok = lz4_block_decode(e->payload, e->payload_len, dst, e->plain_len);
    }
    if (!ok) {
        TW_DEBUG("fatbin: could not decompress a sm_%d entry (flags 0x%llx)", e->arch,
                 (unsigned long long)e->flags);
        free(dst);
        return NULL;
    }
    dst[e->plain_len] = 0;
    *owned = dst;
    *len = e->plain_len;
    return dst;
}

/* ------------------------------------------------------------------ cache */

/* The parsed table for image at arch `want` (INT_MAX: any). Caller holds cache_lock. */
static fb_image *lookup_locked(const void *image, int want)
{
    const uint8_t *p = unwrap(image);
    uint64_t size = 0;
    int kind = classify(p, &size);
    if (kind == IMG_NONE)
        return NULL;
    if (kind == IMG_PTX) {
        size = text_length(p);
        if (size == 0)
            return NULL;
    }
    uint64_t fp = fingerprint(p, size);
    fb_entry entry = {0};
    const uint8_t *bytes = p;
    uint64_t len = size;
    int parse_kind = kind;
    if (kind == IMG_FATBIN) {
        if (pick_entry(p, size, FB_KIND_ELF, want, &entry)) {
            parse_kind = IMG_ELF;
        } else if (pick_entry(p, size, FB_KIND_PTX, want, &entry)) {
            parse_kind = IMG_PTX;
        } else {
            return NULL;
        }
    }
    int arch = kind == IMG_FATBIN ? entry.arch : -1;
    for (fb_image *img = cache_head; img; img = img->next)
        if (img->key == p && img->fingerprint == fp && (want == INT_MAX || arch == -1 ||
                                                         img->arch == arch))
            return img;
    uint8_t *owned = NULL;
    if (kind == IMG_FATBIN) {
        bytes = entry_bytes(&entry, &owned, &len);
        if (bytes == NULL)
            return NULL;
    }
    fb_image *img = calloc(1, sizeof *img);
    if (img == NULL) {
        free(owned);
        return NULL;
    }
    img->key = p;
    img->fingerprint = fp;
    bool ok = parse_kind == IMG_ELF ? parse_elf(img, bytes, len) : parse_ptx(img, bytes, len);
    free(owned);
    if (!ok) {
        free_image(img);
        return NULL;
    }
    if (kind == IMG_FATBIN)
        img->arch = entry.arch;
    else if (parse_kind == IMG_PTX)
        img->arch = 0;
    img->next = cache_head;
    cache_head = img;
    return img;
}

static int cc_arch(int cc_major, int cc_minor)
{
    return cc_major > 0 ? cc_major * 10 + cc_minor : INT_MAX;
}

bool tw_fatbin_param_layout(const void *image, const char *kernel_name, int cc_major,
                            int cc_minor, tw_param_layout *out)
{
    if (kernel_name == NULL || out == NULL)
        return false;
    bool found = false;
    pthread_mutex_lock(&cache_lock);
    fb_image *img = lookup_locked(image, cc_arch(cc_major, cc_minor));
    fb_kernel *k = img ? find_kernel(img, kernel_name) : NULL;
    if (k && k->param_count <= TW_MAX_PARAMS) {
        memset(out, 0, sizeof *out);
        out->count = k->param_count;
        out->param_bytes = k->param_bytes;
        for (uint32_t i = 0; i < k->param_count; i++) {
            out->offset[i] = img->params[k->params_at + 2 * i];
            out->size[i] = img->params[k->params_at + 2 * i + 1];
        }
        found = true;
    }
    pthread_mutex_unlock(&cache_lock);
    return found;
}

bool tw_fatbin_kernel_info(const void *image, const char *kernel_name, int cc_major,
                           int cc_minor, tw_kernel_info *out)
{
    if (kernel_name == NULL || out == NULL)
        return false;
    bool found = false;
    pthread_mutex_lock(&cache_lock);
    fb_image *img = lookup_locked(image, cc_arch(cc_major, cc_minor));
    fb_kernel *k = img ? find_kernel(img, kernel_name) : NULL;
    if (k) {
        *out = k->info;
        found = true;
    }
    pthread_mutex_unlock(&cache_lock);
    return found;
}

void tw_fatbin_kernel_names(const void *image, void (*fn)(const char *name, void *user), void *user)
{
    if (fn == NULL)
        return;
    /* names are the same in every arch's cubin: reuse whichever was parsed, else the best
     * for the highest arch. Names are copied out under the lock, then reported without it. */
    pthread_mutex_lock(&cache_lock);
    fb_image *img = lookup_locked(image, INT_MAX);
    char *names = NULL;
    uint32_t *offs = NULL, count = 0;
    if (img && img->kernel_count) {
        names = malloc(img->names_len);
        offs = malloc(sizeof(uint32_t) * img->kernel_count);
        if (names && offs) {
            memcpy(names, img->names, img->names_len);
            count = img->kernel_count;
            for (uint32_t i = 0; i < count; i++)
                offs[i] = img->kernels[i].name_off;
        }
    }
    pthread_mutex_unlock(&cache_lock);
    for (uint32_t i = 0; i < count; i++)
        fn(names + offs[i], user);
    free(names);
    free(offs);
}

bool tw_fatbin_global_size(const void *image, const char *name, uint64_t *size_out)
{
    if (name == NULL || size_out == NULL)
        return false;
    bool found = false;
    pthread_mutex_lock(&cache_lock);
    fb_image *img = lookup_locked(image, INT_MAX);
    for (uint32_t i = 0; img && i < img->global_count && !found; i++) {
        if (strcmp(img->names + img->globals[i].name_off, name) == 0) {
            *size_out = img->globals[i].size;
            found = true;
        }
    }
    pthread_mutex_unlock(&cache_lock);
    return found;
}

void tw_fatbin_forget(const void *image)
{
    const uint8_t *p = unwrap(image);
    pthread_mutex_lock(&cache_lock);
    for (fb_image **link = &cache_head; *link;) {
        fb_image *img = *link;
        if (img->key == p || img->key == image) {
            *link = img->next;
            free_image(img);
        } else {
            link = &img->next;
        }
    }
    pthread_mutex_unlock(&cache_lock);
}
