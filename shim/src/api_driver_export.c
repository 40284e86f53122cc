/* The driver's export tables (cuGetExportTable): private interfaces that a statically linked
 * CUDA runtime asks the driver for by UUID before it serves its first call, then calls through
 * (cuda-python's cuda.bindings.runtime, nvidia-cutlass-dsl's CuTe-DSL runtime, nvcc's default
 * -cudart static). The layouts are undocumented; what each slot means was learnt from public
 * descriptions (ZLUDA's "dark API" among them) and from what these runtimes pass and expect
 * when run under the shim (docs/libraries.md, "Export tables"). A table whose slot 0 is a size
 * holds its own byte size there, as the runtime checks. Every slot is a function: one not
 * understood logs its table and index, counts as unimplemented and returns
 * CUDA_ERROR_NOT_SUPPORTED. An unknown UUID is logged, counted and refused with
 * CUDA_ERROR_NOT_SUPPORTED; the one table these runtimes ask for and run without is refused
 * the same way, logged but not counted. */
#define __CUDA_API_VERSION_INTERNAL 1
#include <cuda.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tw_core.h"

#define MAX_SLOTS 16

enum table_index {
    CUDART_INTERFACE, RUNTIME_CALLBACK_HOOKS, TOOLS_TLS, CONTEXT_LOCAL_STORAGE, CONTEXT_CHECKS,
    INTEGRITY_CHECK, CONTEXT_IDENTITY, TABLE_COUNT
};

typedef struct export_table {
    const char *name;
    unsigned char uuid[16];
    unsigned slot_count;
    bool size_header;             /* slot 0 holds the table's size in bytes */
} export_table;

static const export_table k_tables[TABLE_COUNT] = {
    [CUDART_INTERFACE] = {"cudart_interface",
        {0x6b, 0xd5, 0xfb, 0x6c, 0x5b, 0xf4, 0xe7, 0x4a, 0x89, 0x87, 0xd9, 0x39, 0x12, 0xfd, 0x9d, 0xf9}, 13, true},
    [RUNTIME_CALLBACK_HOOKS] = {"tools_runtime_callback_hooks",
        {0xa0, 0x94, 0x79, 0x8c, 0x2e, 0x74, 0x2e, 0x74, 0x93, 0xf2, 0x08, 0x00, 0x20, 0x0c, 0x0a, 0x66}, 7, true},
    [TOOLS_TLS] = {"tools_tls",
        {0x42, 0xd8, 0x5a, 0x81, 0x23, 0xf6, 0xcb, 0x47, 0x82, 0x98, 0xf6, 0xe7, 0x8a, 0x3a, 0xec, 0xdc}, 4, true},
    [CONTEXT_LOCAL_STORAGE] = {"context_local_storage",
        {0xc6, 0x93, 0x33, 0x6e, 0x11, 0x21, 0xdf, 0x11, 0xa8, 0xc3, 0x68, 0xf3, 0x55, 0xd8, 0x95, 0x93}, 4, false},
    [CONTEXT_CHECKS] = {"context_checks",
        {0x26, 0x3e, 0x88, 0x60, 0x7c, 0xd2, 0x61, 0x43, 0x92, 0xf6, 0xbb, 0xd5, 0x00, 0x6d, 0xfa, 0x7e}, 4, true},
    [INTEGRITY_CHECK] = {"integrity_check",
        {0xd4, 0x08, 0x20, 0x55, 0xbd, 0xe6, 0x70, 0x4b, 0x8d, 0x34, 0xba, 0x12, 0x3c, 0x66, 0xe1, 0xf2}, 3, true},
    [CONTEXT_IDENTITY] = {"context_identity",
        {0x21, 0x31, 0x8c, 0x60, 0x97, 0x14, 0x32, 0x48, 0x8c, 0xa6, 0x41, 0xff, 0x73, 0x24, 0xc8, 0xf2}, 16, true},
};

/* The tables handed out: their addresses are part of the integrity check's input. */
static const void *g_slots[TABLE_COUNT][MAX_SLOTS];
static char g_slot_names[TABLE_COUNT][MAX_SLOTS][64];

/* ---------------------------------------------------------------- slots not understood */

static uintptr_t slot_unimplemented(unsigned table, unsigned slot, uintptr_t a0, uintptr_t a1,
                                    uintptr_t a2, uintptr_t a3)
{
    TW_DEBUG("%s(%#" PRIxPTR ", %#" PRIxPTR ", %#" PRIxPTR ", %#" PRIxPTR ")",
             g_slot_names[table][slot], a0, a1, a2, a3);
    tw_unimplemented(g_slot_names[table][slot]);
    return CUDA_ERROR_NOT_SUPPORTED;
}

/* One function per (table, slot), so the log names the slot that was called; the first four
 * integer arguments are logged at debug level (what a caller passed, for the next step). */
#define SLOT_STUB(t, i)                                                                          \
    static uintptr_t stub_##t##_##i(uintptr_t a0, uintptr_t a1, uintptr_t a2, uintptr_t a3)      \
    {                                                                                            \
        return slot_unimplemented(t, i, a0, a1, a2, a3);                                         \
    }
#define SLOT_STUB_PTR(t, i) (const void *)stub_##t##_##i,
#define EACH_SLOT(X, t) X(t, 0) X(t, 1) X(t, 2) X(t, 3) X(t, 4) X(t, 5) X(t, 6) X(t, 7) X(t, 8) \
    X(t, 9) X(t, 10) X(t, 11) X(t, 12) X(t, 13) X(t, 14) X(t, 15)

EACH_SLOT(SLOT_STUB, 0)
EACH_SLOT(SLOT_STUB, 1)
EACH_SLOT(SLOT_STUB, 2)
EACH_SLOT(SLOT_STUB, 3)
EACH_SLOT(SLOT_STUB, 4)
EACH_SLOT(SLOT_STUB, 5)
EACH_SLOT(SLOT_STUB, 6)
_Static_assert(TABLE_COUNT == 7, "one EACH_SLOT line per table");
static const void *const k_stubs[TABLE_COUNT][MAX_SLOTS] = {
    {EACH_SLOT(SLOT_STUB_PTR, 0)}, {EACH_SLOT(SLOT_STUB_PTR, 1)}, {EACH_SLOT(SLOT_STUB_PTR, 2)},
    {EACH_SLOT(SLOT_STUB_PTR, 3)}, {EACH_SLOT(SLOT_STUB_PTR, 4)}, {EACH_SLOT(SLOT_STUB_PTR, 5)},
    {EACH_SLOT(SLOT_STUB_PTR, 6)},
};

/* ---------------------------------------------------------------- cudart interface */

/* Slot 2: the device's primary context, without retaining it (the runtime retains it through
 * cuDevicePrimaryCtxRetain when it initialises the device). */
static CUresult cudart_primary_context(CUcontext *pctx, CUdevice dev)
{
    if (pctx == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    if (!tw_device_valid(dev))
        return CUDA_ERROR_INVALID_DEVICE;
    *pctx = (CUcontext)tw_ctx_primary(dev);
    return CUDA_SUCCESS;
}

/* ---------------------------------------------------------------- tools callback hooks */

/* Slots 2 and 6: buffers where a profiler would switch the runtime's callbacks on; all zero,
 * none is on. Sized as the runtime indexes them (32-bit entries). */
static uint32_t g_callback_flags[1024];
static uint32_t g_callback_flags_extra[14];

static void hooks_callback_flags(void **buffer, size_t *entries)
{
    if (buffer != NULL)
        *buffer = g_callback_flags;
    if (entries != NULL)
        *entries = sizeof g_callback_flags / sizeof g_callback_flags[0];
}

static void hooks_callback_flags_extra(void **buffer, size_t *entries)
{
    if (buffer != NULL)
        *buffer = g_callback_flags_extra;
    if (entries != NULL)
        *entries = sizeof g_callback_flags_extra / sizeof g_callback_flags_extra[0];
}

/* ---------------------------------------------------------------- context-local storage */

/* The runtime keeps its per-context state here: a value per (context, key), NULL naming the
 * thread's current context. The destructor would run when the context is destroyed; the
 * shim's contexts are never freed (device.c), so it is kept but not called. */
typedef void (*cls_destructor)(CUcontext ctx, void *key, void *value);
typedef struct cls_entry {
    void *ctx, *key, *value;
    cls_destructor destructor;
} cls_entry;

#define CLS_MAX 256
static pthread_mutex_t g_cls_lock = PTHREAD_MUTEX_INITIALIZER;
static cls_entry g_cls[CLS_MAX];
static unsigned g_cls_count;

static void *cls_context(CUcontext ctx)
{
    return ctx != NULL ? (void *)ctx : tw_ctx_current();
}

static cls_entry *cls_find_locked(void *ctx, void *key)
{
    for (unsigned i = 0; i < g_cls_count; i++)
        if (g_cls[i].ctx == ctx && g_cls[i].key == key)
            return &g_cls[i];
    return NULL;
}

static CUresult cls_put(CUcontext ctx, void *key, void *value, cls_destructor destructor)
{
    void *c = cls_context(ctx);
    if (c == NULL)
        return CUDA_ERROR_INVALID_CONTEXT;
    CUresult status = CUDA_SUCCESS;
    pthread_mutex_lock(&g_cls_lock);
    cls_entry *e = cls_find_locked(c, key);
    if (e == NULL && g_cls_count < CLS_MAX)
        e = &g_cls[g_cls_count++];
    if (e != NULL)
        *e = (cls_entry){c, key, value, destructor};
    else
        status = CUDA_ERROR_OUT_OF_MEMORY;
    pthread_mutex_unlock(&g_cls_lock);
    return status;
}

static CUresult cls_delete(CUcontext ctx, void *key)
{
    void *c = cls_context(ctx);
    if (c == NULL)
        return CUDA_ERROR_INVALID_CONTEXT;
    pthread_mutex_lock(&g_cls_lock);
    cls_entry *e = cls_find_locked(c, key);
    if (e != NULL)
        *e = g_cls[--g_cls_count];
    pthread_mutex_unlock(&g_cls_lock);
    return e != NULL ? CUDA_SUCCESS : CUDA_ERROR_NOT_FOUND;
}

static CUresult cls_get(void **value, CUcontext ctx, void *key)
{
    if (value == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    *value = NULL;
    void *c = cls_context(ctx);
    if (c == NULL)
        return CUDA_ERROR_INVALID_CONTEXT;
    pthread_mutex_lock(&g_cls_lock);
    cls_entry *e = cls_find_locked(c, key);
    if (e != NULL)
        *value = e->value;
    pthread_mutex_unlock(&g_cls_lock);
    return e != NULL ? CUDA_SUCCESS : CUDA_ERROR_NOT_FOUND;
}

/* ---------------------------------------------------------------- context checks */

/* Slot 2: whether a context is usable by the runtime; no condition applies here. */
static CUresult checks_context(CUcontext ctx, uint32_t *flags, const void **detail)
{
    if (flags != NULL)
        *flags = 0;
    if (detail != NULL)
        *detail = NULL;
    return CUDA_SUCCESS;
}

/* Slot 3: process-wide conditions, none. */
static uint32_t checks_global(void)
{
    return 0;
}

/* ---------------------------------------------------------------- integrity check */

/* MD2 (RFC 1319): the integrity check is HMAC-MD2 (RFC 2104, 16-byte blocks). */
static const uint8_t k_md2_pi[256] = {
    41, 46, 67, 201, 162, 216, 124, 1, 61, 54, 84, 161, 236, 240, 6, 19,
    98, 167, 5, 243, 192, 199, 115, 140, 152, 147, 43, 217, 188, 76, 130, 202,
    30, 155, 87, 60, 253, 212, 224, 22, 103, 66, 111, 24, 138, 23, 229, 18,
    190, 78, 196, 214, 218, 158, 222, 73, 160, 251, 245, 142, 187, 47, 238, 122,
    169, 104, 121, 145, 21, 178, 7, 63, 148, 194, 16, 137, 11, 34, 95, 33,
    128, 127, 93, 154, 90, 144, 50, 39, 53, 62, 204, 231, 191, 247, 151, 3,
    255, 25, 48, 179, 72, 165, 181, 209, 215, 94, 146, 42, 172, 86, 170, 198,
    79, 184, 56, 210, 150, 164, 125, 182, 118, 252, 107, 226, 156, 116, 4, 241,
    69, 157, 112, 89, 100, 113, 135, 32, 134, 91, 207, 101, 230, 45, 168, 2,
    27, 96, 37, 173, 174, 176, 185, 246, 28, 70, 97, 105, 52, 64, 126, 15,
    85, 71, 163, 35, 221, 81, 175, 58, 195, 92, 249, 206, 186, 197, 234, 38,
    44, 83, 13, 110, 133, 40, 132, 9, 211, 223, 205, 244, 65, 129, 77, 82,
    106, 220, 55, 200, 108, 193, 171, 250, 36, 225, 123, 8, 12, 189, 177, 74,
    120, 136, 149, 139, 227, 99, 232, 109, 233, 203, 213, 254, 59, 0, 29, 57,
    242, 239, 183, 14, 102, 88, 208, 228, 166, 119, 114, 248, 235, 117, 75, 10,
    49, 68, 80, 180, 143, 237, 31, 26, 219, 153, 141, 51, 159, 17, 131, 20,
};

typedef struct md2_state {
    uint8_t x[48], checksum[16], block[16];
    unsigned used;
} md2_state;

static void md2_compress(md2_state *m)
{
    uint8_t last = m->checksum[15];
    for (int j = 0; j < 16; j++) {
        m->x[16 + j] = m->block[j];
        m->x[32 + j] = m->block[j] ^ m->x[j];
        last = m->checksum[j] ^= k_md2_pi[m->block[j] ^ last];
    }
    uint8_t t = 0;
    for (int round = 0; round < 18; round++) {
        for (int k = 0; k < 48; k++)
            t = m->x[k] ^= k_md2_pi[t];
        t = (uint8_t)(t + round);
    }
}

static void md2_update(md2_state *m, const void *data, size_t bytes, uint8_t xor_mask)
{
    const uint8_t *p = data;
    for (size_t i = 0; i < bytes; i++) {
        m->block[m->used++] = p[i] ^ xor_mask;
        if (m->used == 16) {
            md2_compress(m);
            m->used = 0;
        }
    }
}

static void md2_final(md2_state *m, uint8_t digest[16])
{
    uint8_t pad = (uint8_t)(16 - m->used);
    for (uint8_t i = 0; i < pad; i++)
        md2_update(m, &pad, 1, 0);
    uint8_t checksum[16];
    memcpy(checksum, m->checksum, sizeof checksum);
    md2_update(m, checksum, sizeof checksum, 0);
    memcpy(digest, m->x, 16);
}

/* What the runtime expects hashed, in this order. */
typedef struct integrity_input {
    uint32_t driver_version;      /* cuDriverGetVersion */
    uint32_t request;             /* the runtime's argument */
    uint32_t pid;
    uint32_t thread;              /* pthread_self, truncated */
    const void *cudart_table;
    const void *integrity_table;
    const void *integrity_fn;
    uint64_t unix_seconds;        /* the runtime's argument */
} integrity_input;

typedef struct integrity_device {
    CUuuid uuid;
    int32_t pci_domain, pci_bus, pci_device;
} integrity_device;

static const uint8_t k_integrity_key[16] = {0x14, 0x6a, 0xdd, 0xae, 0x53, 0xa9, 0xa7, 0x52,
                                            0xaa, 0x08, 0x41, 0x36, 0x0b, 0xf5, 0x5a, 0x9f};

static CUresult integrity_check(uint32_t request, uint64_t unix_seconds, uint64_t result[2]);

/* The inner hash's message: the call and the process, then each device as the driver reports it. */
static CUresult integrity_message(md2_state *m, uint32_t request, uint64_t unix_seconds)
{
    int driver_version = 0, count = 0;
    cuDriverGetVersion(&driver_version);
    integrity_input in = {(uint32_t)driver_version, request, (uint32_t)getpid(),
                          (uint32_t)(uintptr_t)pthread_self(), g_slots[CUDART_INTERFACE],
                          g_slots[INTEGRITY_CHECK], (const void *)integrity_check, unix_seconds};
    md2_update(m, &in, sizeof in, 0);
    if (cuDeviceGetCount(&count) != CUDA_SUCCESS)
        return CUDA_ERROR_INVALID_DEVICE;
    for (int d = 0; d < count; d++) {
        integrity_device dev;
        memset(&dev, 0, sizeof dev);
        if (cuDeviceGetUuid_v2(&dev.uuid, d) != CUDA_SUCCESS ||
            cuDeviceGetAttribute(&dev.pci_domain, CU_DEVICE_ATTRIBUTE_PCI_DOMAIN_ID, d) != CUDA_SUCCESS ||
            cuDeviceGetAttribute(&dev.pci_bus, CU_DEVICE_ATTRIBUTE_PCI_BUS_ID, d) != CUDA_SUCCESS ||
            cuDeviceGetAttribute(&dev.pci_device, CU_DEVICE_ATTRIBUTE_PCI_DEVICE_ID, d) != CUDA_SUCCESS)
            return CUDA_ERROR_INVALID_DEVICE;
        md2_update(m, &dev, sizeof dev, 0);
    }
    return CUDA_SUCCESS;
}

/* Slot 1: the runtime's check that it talks to a driver (cudaErrorSoftwareValidityNotEstablished
 * when the answer is wrong). Requests ending in 0 and 1 have fixed answers; the others are
 * HMAC-MD2 of the message above. */
static CUresult integrity_check(uint32_t request, uint64_t unix_seconds, uint64_t result[2])
{
    if (result == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    if (request % 10 == 0 || request % 10 == 1) {
        result[0] = request % 10 == 0 ? 0x3341181c03cb675cull : 0x1841181c03cb675cull;
        result[1] = 0x8ed383aa1f4cd1e8ull;
        return CUDA_SUCCESS;
    }
    md2_state inner = {0}, outer = {0};
    md2_update(&inner, k_integrity_key, sizeof k_integrity_key, 0x36);
    CUresult status = integrity_message(&inner, request, unix_seconds);
    if (status != CUDA_SUCCESS)
        return status;
    uint8_t digest[16];
    md2_final(&inner, digest);
    md2_update(&outer, k_integrity_key, sizeof k_integrity_key, 0x5c);
    md2_update(&outer, digest, sizeof digest, 0);
    md2_final(&outer, digest);
    memcpy(result, digest, sizeof digest);
    return CUDA_SUCCESS;
}

/* ---------------------------------------------------------------- the tables */

static void set_slot(int table, unsigned slot, const void *fn)
{
    g_slots[table][slot] = fn;
}

static void tables_init(void)
{
    for (unsigned t = 0; t < TABLE_COUNT; t++)
        for (unsigned i = 0; i < k_tables[t].slot_count; i++) {
            snprintf(g_slot_names[t][i], sizeof g_slot_names[t][i], "cuGetExportTable %s[%u]",
                     k_tables[t].name, i);
            g_slots[t][i] = i == 0 && k_tables[t].size_header
                                ? (const void *)(uintptr_t)(k_tables[t].slot_count * sizeof(void *))
                                : k_stubs[t][i];
        }
    set_slot(CUDART_INTERFACE, 2, (const void *)cudart_primary_context);
    set_slot(RUNTIME_CALLBACK_HOOKS, 2, (const void *)hooks_callback_flags);
    set_slot(RUNTIME_CALLBACK_HOOKS, 6, (const void *)hooks_callback_flags_extra);
    set_slot(CONTEXT_LOCAL_STORAGE, 0, (const void *)cls_put);
    set_slot(CONTEXT_LOCAL_STORAGE, 1, (const void *)cls_delete);
    set_slot(CONTEXT_LOCAL_STORAGE, 2, (const void *)cls_get);
    set_slot(CONTEXT_CHECKS, 2, (const void *)checks_context);
    set_slot(CONTEXT_CHECKS, 3, (const void *)checks_global);
    set_slot(INTEGRITY_CHECK, 1, (const void *)integrity_check);
}

/* ---------------------------------------------------------------- tables not provided */

/* Asked for before cuInit by CUDA 13 runtimes, which go on without it (every call of
 * tests/shim/test_export_tables.py and SGLang's serving run as well when it is refused); its
 * layout is not known well enough to serve it. */
static const unsigned char k_declined_uuid[16] = {0xf8, 0xcf, 0xf9, 0x51, 0x21, 0x46, 0x8b, 0x4e,
                                                  0xb9, 0xe2, 0xfb, 0x46, 0x9e, 0x7c, 0x0d, 0xd9};
static int g_declined_logged;

#define MAX_UNKNOWN 32
static pthread_mutex_t g_unknown_lock = PTHREAD_MUTEX_INITIALIZER;
static char g_unknown_names[MAX_UNKNOWN][64];
static unsigned g_unknown_count;

/* A stable name per unknown UUID (tw_unimplemented keys its warning on the pointer). */
static const char *unknown_name(const char *uuid_text)
{
    pthread_mutex_lock(&g_unknown_lock);
    const char *name = "cuGetExportTable (more unknown tables)";
    unsigned i = 0;
    while (i < g_unknown_count && strstr(g_unknown_names[i], uuid_text) == NULL)
        i++;
    if (i < g_unknown_count) {
        name = g_unknown_names[i];
    } else if (g_unknown_count < MAX_UNKNOWN) {
        snprintf(g_unknown_names[i], sizeof g_unknown_names[i], "cuGetExportTable {%s}", uuid_text);
        name = g_unknown_names[g_unknown_count++];
    }
    pthread_mutex_unlock(&g_unknown_lock);
    return name;
}

static void uuid_text(const unsigned char *u, char out[37])
{
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0], u[1],
             u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]);
}

static pthread_once_t g_tables_once = PTHREAD_ONCE_INIT;

TW_EXPORT CUresult cuGetExportTable(const void **ppExportTable, const CUuuid *pExportTableId)
{
    if (ppExportTable == NULL || pExportTableId == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    pthread_once(&g_tables_once, tables_init);
    const unsigned char *id = (const unsigned char *)pExportTableId->bytes;
    char text[37];
    uuid_text(id, text);
    for (unsigned t = 0; t < TABLE_COUNT; t++)
        if (memcmp(k_tables[t].uuid, id, 16) == 0) {
            TW_DEBUG("cuGetExportTable {%s}: %s", text, k_tables[t].name);
            *ppExportTable = g_slots[t];
            return CUDA_SUCCESS;
        }
    *ppExportTable = NULL;
    if (memcmp(k_declined_uuid, id, 16) == 0) {
        if (!__atomic_exchange_n(&g_declined_logged, 1, __ATOMIC_RELAXED))
            TW_INFO("cuGetExportTable {%s}: not provided (the runtime goes on without it)", text);
        return CUDA_ERROR_NOT_SUPPORTED;
    }
    TW_WARN("cuGetExportTable {%s}: unknown table, refused", text);
    tw_unimplemented(unknown_name(text));
    return CUDA_ERROR_NOT_SUPPORTED;
}
