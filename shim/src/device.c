/* The virtual GPUs: the spec file (TIMEWARP_SPEC, key=value lines named after tw_gpu_spec's
 * fields), the device count, the current device of each thread, stable UUIDs and PCI bus ids,
 * and the driver's contexts (one primary per device plus any cuCtxCreate'd ones) with each
 * thread's context stack. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tw_core.h"

static tw_gpu_spec g_spec;
static int g_spec_device_count;
static int g_device_count;
static pthread_once_t g_once;

/* H100 SXM5 80GB: used when no spec file is given (logged). */
static void spec_set_defaults(tw_gpu_spec *s)
{
    memset(s, 0, sizeof(*s));
    snprintf(s->name, sizeof(s->name), "NVIDIA H100 80GB HBM3");
    snprintf(s->key, sizeof(s->key), "h100");
    s->cc_major = 9;
    s->cc_minor = 0;
    s->sm_count = 132;
    s->memory_bytes = 85520809984ull;   /* 81559 MiB as the driver reports it */
    s->reserved_bytes = 549453824ull;   /* ~524 MiB taken by the context */
    s->l2_bytes = 50331648;
    s->smem_per_sm_bytes = 233472;
    s->smem_per_block_bytes = 49152;
    s->smem_per_block_optin_bytes = 232448;
    s->regs_per_sm = 65536;
    s->regs_per_block = 65536;
    s->max_threads_per_sm = 2048;
    s->max_threads_per_block = 1024;
    s->max_blocks_per_sm = 32;
    s->warp_size = 32;
    s->clock_khz = 1980000;
    s->mem_clock_khz = 2619000;
    s->mem_bus_width_bits = 5120;
    s->pcie_gen = 5;
    s->pcie_width = 16;
    s->nvlink_links = 18;
    s->hbm_bytes_per_s = 3.35e12;
    s->pcie_bytes_per_s = 64e9;
    s->launch_latency_ns = 4000;
    s->kernel_floor_ns = 2000;
    s->tdp_watts = 700;
    s->nvswitch = 1;
}

#define SPEC_INT(field) {#field, offsetof(tw_gpu_spec, field), 'i'}
#define SPEC_U64(field) {#field, offsetof(tw_gpu_spec, field), 'u'}
#define SPEC_I64(field) {#field, offsetof(tw_gpu_spec, field), 'l'}
#define SPEC_DBL(field) {#field, offsetof(tw_gpu_spec, field), 'd'}

static const struct spec_key {
    const char *name;
    size_t offset;
    char type;
} k_spec_keys[] = {
    SPEC_INT(cc_major), SPEC_INT(cc_minor), SPEC_INT(sm_count), SPEC_U64(memory_bytes),
    SPEC_U64(reserved_bytes), SPEC_INT(l2_bytes), SPEC_INT(smem_per_sm_bytes),
    SPEC_INT(smem_per_block_bytes), SPEC_INT(smem_per_block_optin_bytes), SPEC_INT(regs_per_sm),
    SPEC_INT(regs_per_block), SPEC_INT(max_threads_per_sm), SPEC_INT(max_threads_per_block),
    SPEC_INT(max_blocks_per_sm), SPEC_INT(warp_size), SPEC_INT(clock_khz),
    SPEC_INT(mem_clock_khz), SPEC_INT(mem_bus_width_bits), SPEC_INT(pcie_gen),
    SPEC_INT(pcie_width), SPEC_INT(nvlink_links), SPEC_DBL(hbm_bytes_per_s),
    SPEC_DBL(pcie_bytes_per_s), SPEC_I64(launch_latency_ns), SPEC_I64(kernel_floor_ns),
    SPEC_INT(tdp_watts), SPEC_INT(nvswitch),
};

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' || s[n - 1] == '\r'))
        s[--n] = '\0';
    return s;
}

static void spec_set(tw_gpu_spec *s, const char *key, const char *value, const char *path)
{
    if (strcmp(key, "name") == 0) {
        snprintf(s->name, sizeof(s->name), "%s", value);
        return;
    }
    if (strcmp(key, "key") == 0) {
        snprintf(s->key, sizeof(s->key), "%s", value);
        return;
    }
    if (strcmp(key, "device_count") == 0) {
        g_spec_device_count = atoi(value);
        return;
    }
    for (size_t i = 0; i < sizeof(k_spec_keys) / sizeof(k_spec_keys[0]); i++) {
        const struct spec_key *k = &k_spec_keys[i];
        if (strcmp(key, k->name) != 0)
            continue;
        char *field = (char *)s + k->offset;
        switch (k->type) {
        case 'i': *(int *)(void *)field = (int)strtol(value, NULL, 0); break;
        case 'u': *(uint64_t *)(void *)field = strtoull(value, NULL, 0); break;
        case 'l': *(int64_t *)(void *)field = strtoll(value, NULL, 0); break;
        default: *(double *)(void *)field = strtod(value, NULL); break;
        }
        return;
    }
    TW_DEBUG("spec %s: key %s not used by the shim", path, key);
}

static void device_init(void)
{
    spec_set_defaults(&g_spec);
    const char *path = tw_config_get()->spec_path;
    FILE *f = path ? fopen(path, "r") : NULL;
    if (f == NULL) {
        if (path)
            TW_WARN("cannot read spec %s (%s): using the H100 defaults", path, strerror(errno));
        else
            TW_INFO("no TIMEWARP_SPEC: using the H100 defaults");
    } else {
        char line[512];
        while (fgets(line, sizeof(line), f)) {
            char *s = trim(line);
            if (*s == '#' || *s == '\0')
                continue;
            char *eq = strchr(s, '=');
            if (eq == NULL)
                continue;
            *eq = '\0';
            spec_set(&g_spec, trim(s), trim(eq + 1), path);
        }
        fclose(f);
    }
    int n = tw_config_get()->device_count;
    if (n <= 0)
        n = g_spec_device_count;
    g_device_count = n > 0 ? n : 1;
    TW_INFO("%d x %s (%s, sm_%d%d, %d SMs, %llu bytes)", g_device_count, g_spec.name, g_spec.key,
            g_spec.cc_major, g_spec.cc_minor, g_spec.sm_count,
            (unsigned long long)g_spec.memory_bytes);
}

static inline void ensure_init(void)
{
    pthread_once(&g_once, device_init);
}

const tw_gpu_spec *tw_spec(void)
{
    ensure_init();
    return &g_spec;
}

bool tw_multicast_supported(void)
{
    const tw_gpu_spec *s = tw_spec();
    return s->nvswitch && s->nvlink_links > 0 && s->cc_major >= 9;
}

int tw_device_count(void)
{
    ensure_init();
    return g_device_count;
}

bool tw_device_valid(int device)
{
    return device >= 0 && device < tw_device_count();
}

static __thread int t_current_device;

int tw_device_current(void)
{
    return t_current_device;
}

int tw_device_set_current(int device)
{
    if (!tw_device_valid(device))
        return -1;
    t_current_device = device;
    return 0;
}

static uint64_t fnv1a64(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 0x100000001b3ull;
    }
    return h;
}

/* emulator/bin/nvidia-smi computes the same bytes: keep the two in step. */
void tw_device_uuid(int device, unsigned char out_uuid[16])
{
    char seed[256];
    for (int half = 0; half < 2; half++) {
        snprintf(seed, sizeof(seed), "timewarp:%s:%d:%d", tw_spec()->key, device, half);
        uint64_t h = fnv1a64(seed);
        for (int i = 0; i < 8; i++)
            out_uuid[half * 8 + i] = (unsigned char)(h >> (8 * i));
    }
}

/* Bus numbers of a DGX H100's eight GPUs; more devices continue past them. Shared with
 * emulator/bin/nvidia-smi. */
static const int k_pci_bus[8] = {0x18, 0x2a, 0x3a, 0x5d, 0x9a, 0xab, 0xba, 0xdb};

int tw_device_pci_bus(int device)
{
    if (device >= 0 && device < 8)
        return k_pci_bus[device];
    return 0xdc + device - 8;
}

int tw_device_from_pci_bus(int bus)
{
    for (int d = 0; d < tw_device_count(); d++)
        if (tw_device_pci_bus(d) == bus)
            return d;
    return -1;
}

/* ---- contexts: primary per device, created ones, a stack per thread ---- */
#define TW_CTX_MAGIC 0x54574358u
#define TW_MAX_PRIMARY 256
#define TW_CTX_STACK 32

typedef struct tw_ctx {
    uint32_t magic;
    int device;
    bool primary;
    atomic_int retain_count;     /* primary: cuDevicePrimaryCtxRetain - Release */
    atomic_bool active;          /* primary: made current by the runtime or retained */
    atomic_uint flags;
} tw_ctx;

static tw_ctx g_primary[TW_MAX_PRIMARY];

void *tw_ctx_primary(int device)
{
    if (!tw_device_valid(device) || device >= TW_MAX_PRIMARY)
        return NULL;
    tw_ctx *c = &g_primary[device];
    if (c->magic != TW_CTX_MAGIC) {
        /* benign race: every writer stores the same values */
        c->device = device;
        c->primary = true;
        c->magic = TW_CTX_MAGIC;
    }
    return c;
}

int tw_ctx_device(const void *ctx)
{
    const tw_ctx *c = ctx;
    if (c == NULL || c->magic != TW_CTX_MAGIC)
        return -1;
    return c->device;
}

void tw_ctx_primary_activate(int device)
{
    tw_ctx *c = tw_ctx_primary(device);
    if (c)
        atomic_store(&c->active, true);
}

void tw_ctx_primary_retain(int device)
{
    tw_ctx *c = tw_ctx_primary(device);
    if (c) {
        atomic_fetch_add(&c->retain_count, 1);
        atomic_store(&c->active, true);
    }
}

void tw_ctx_primary_release(int device)
{
    tw_ctx *c = tw_ctx_primary(device);
    if (c && atomic_load(&c->retain_count) > 0)
        atomic_fetch_sub(&c->retain_count, 1);
}

void tw_ctx_primary_reset(int device)
{
    tw_ctx *c = tw_ctx_primary(device);
    if (c)
        atomic_store(&c->active, false);
}

bool tw_ctx_primary_active(int device)
{
    tw_ctx *c = tw_ctx_primary(device);
    return c && atomic_load(&c->active);
}

unsigned tw_ctx_flags(const void *ctx)
{
    const tw_ctx *c = ctx;
    return c ? atomic_load(&c->flags) : 0;
}

void tw_ctx_set_flags(void *ctx, unsigned flags)
{
    tw_ctx *c = ctx;
    if (c)
        atomic_store(&c->flags, flags);
}

void *tw_ctx_create(int device, unsigned flags)
{
    if (!tw_device_valid(device))
        return NULL;
    tw_ctx *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->device = device;
    c->magic = TW_CTX_MAGIC;
    atomic_store(&c->flags, flags);
    atomic_store(&c->active, true);
    return c;
}

int tw_ctx_destroy(void *ctx)
{
    tw_ctx *c = ctx;
    if (tw_ctx_device(c) < 0)
        return -1;
    if (c->primary)
        return -1;  /* primary contexts are reset, not destroyed */
    c->magic = 0;   /* later use is detected; the few bytes stay allocated */
    return 0;
}

static __thread void *t_ctx_stack[TW_CTX_STACK];
static __thread int t_ctx_depth;

/* The thread's current context: the top of its stack, else the primary context of its
 * current device once the runtime (or a retain) has made it active, else none. */
void *tw_ctx_current(void)
{
    if (t_ctx_depth > 0)
        return t_ctx_stack[t_ctx_depth - 1];
    int d = tw_device_current();
    return tw_ctx_primary_active(d) ? tw_ctx_primary(d) : NULL;
}

int tw_ctx_set_current(void *ctx)
{
    if (ctx == NULL) {
        if (t_ctx_depth > 0)
            t_ctx_depth--;
        return 0;
    }
    int d = tw_ctx_device(ctx);
    if (d < 0)
        return -1;
    if (t_ctx_depth == 0)
        t_ctx_stack[t_ctx_depth++] = ctx;
    else
        t_ctx_stack[t_ctx_depth - 1] = ctx;
    tw_device_set_current(d);
    return 0;
}

int tw_ctx_push(void *ctx)
{
    int d = tw_ctx_device(ctx);
    if (d < 0 || t_ctx_depth >= TW_CTX_STACK)
        return -1;
    t_ctx_stack[t_ctx_depth++] = ctx;
    tw_device_set_current(d);
    return 0;
}

int tw_ctx_pop(void **out_ctx)
{
    if (t_ctx_depth == 0)
        return -1;
    void *c = t_ctx_stack[--t_ctx_depth];
    if (out_ctx)
        *out_ctx = c;
    if (t_ctx_depth > 0)
        tw_device_set_current(tw_ctx_device(t_ctx_stack[t_ctx_depth - 1]));
    return 0;
}

/* The runtime's cudaSetDevice: the device's primary context becomes the thread's current
 * one (replacing a driver-set context on top of the stack, as the runtime does). */
int tw_device_select(int device)
{
    if (tw_device_set_current(device) != 0)
        return -1;
    tw_ctx_primary_activate(device);
    if (t_ctx_depth > 0)
        t_ctx_stack[t_ctx_depth - 1] = tw_ctx_primary(device);
    return 0;
}

/* PCI device id (high 16 bits) and vendor 0x10de (low), by catalog key; unknown keys get the
 * H100 SXM's. Shared with NVML and emulator/bin/nvidia-smi. */
uint32_t tw_device_pci_id(void)
{
    static const struct { const char *key; uint32_t id; } ids[] = {
        {"a100", 0x20b2}, {"h100", 0x2330}, {"h200", 0x2335}, {"b200", 0x2901},
        {"l40s", 0x26b9}, {"l4", 0x27b8},
    };
    const char *key = tw_spec()->key;
    for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++)
        if (strncmp(key, ids[i].key, strlen(ids[i].key)) == 0 &&
            (key[strlen(ids[i].key)] == '\0' || key[strlen(ids[i].key)] == '-' ||
             key[strlen(ids[i].key)] == '_'))
            return ids[i].id << 16 | 0x10de;
    return 0x2330u << 16 | 0x10de;
}

/* Context limits, numbered as cudaLimit / CUlimit (the two enums agree): stack, printf FIFO,
 * malloc heap, device-runtime sync depth, pending launches, L2 fetch granularity, persisting
 * L2. Process-wide: one primary context per device and every device alike. */
#define TW_LIMIT_COUNT 7
static _Atomic uint64_t g_limits[TW_LIMIT_COUNT] = {1024, 1048576, 8388608, 2, 2048, 32, 0};

int tw_device_limit_get(int limit, uint64_t *value)
{
    if (limit < 0 || limit >= TW_LIMIT_COUNT)
        return -1;
    *value = atomic_load(&g_limits[limit]);
    return 0;
}

int tw_device_limit_set(int limit, uint64_t value)
{
    if (limit < 0 || limit >= TW_LIMIT_COUNT)
        return -1;
    if (limit == 6 && value > (uint64_t)tw_spec()->l2_bytes * 3 / 4)
        value = (uint64_t)tw_spec()->l2_bytes * 3 / 4;  /* the driver clamps to the maximum */
    atomic_store(&g_limits[limit], value);
    return 0;
}
