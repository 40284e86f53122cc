/* Kernel registry and launch. Fat binaries and __cudaRegisterFunction map host stubs to
 * mangled names; driver modules (Triton, JIT) give names through cuModuleGetFunction. A
 * launch builds the kernel's descriptor once per (grid, block, shared memory, parameter
 * values) and submits it: kernels of a known family are described from their arguments
 * (kernel_shapes.c), every other kernel by the bytes its pointer parameters reach (from the
 * memory core), capped by an element count found among its parameters. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernel_data.h"
#include "kernel_shapes.h"
#include "timeline_internal.h"

#define KERNEL_MAGIC 0x4b524e4c
#define SHAPE_CACHE 4
#define MAX_PEERS 16

typedef struct shape_entry {
    uint32_t grid[3];
    uint32_t block[3];
    uint32_t smem_bytes;
    uint32_t flags;
    uint64_t args_key;         /* hash of the scalar and pointer parameter values */
    tw_prediction_slot *slot;
    uint32_t peer_count;       /* owners of IPC-opened memory the arguments reach (kernel_sync.c) */
    int32_t peer_pids[MAX_PEERS];
} shape_entry;

struct tw_kernel {
    uint32_t magic;
    const void *stub;          /* host stub, NULL for module kernels */
    const char *mangled;
    const void *image;         /* fatbin data or cubin: parameter layouts */
    uint32_t name_id;          /* interned at first launch */
    int layout_state;          /* 0 not parsed, 1 parsed, -1 unavailable */
    tw_param_layout layout;
    tw_kernel_shape shape;     /* family, template facts, parameter types (kernel_shapes.c) */
    tw_kernel_data data;       /* evaluated on the host when its buffers are (kernel_data.c) */
    shape_entry shapes[SHAPE_CACHE];
    uint32_t next_shape;
    bool unmet_reported;       /* a peer all-reduce kernel that met no peer: said once */
};

typedef struct fatbin_handle {
    const void *wrapper;
    const void *image;
} fatbin_handle;

typedef struct module {
    void *image;               /* owned copy */
    uint64_t image_bytes;
    tw_kernel **kernels;
    uint32_t kernel_count;
} module;

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static tw_kernel **by_stub;    /* open addressing on the stub address */
static uint64_t by_stub_capacity;
static uint64_t stub_count;

/* ---- fat binaries and host stubs ---- */

void **tw_register_fatbin(void *fatbin_wrapper)
{
    fatbin_handle *handle = calloc(1, sizeof *handle);
    if (handle == NULL)
        abort();
    handle->wrapper = fatbin_wrapper;
    /* __fatBinC_Wrapper_t: int magic, int version, const unsigned long long *data, ... */
    const struct { int magic; int version; const void *data; } *wrapper = fatbin_wrapper;
    handle->image = wrapper != NULL ? wrapper->data : NULL;
    return (void **)handle;
}

void tw_unregister_fatbin(void **handle)
{
    (void)handle; /* kernels registered from it may still be referenced by queued launches */
}

static uint64_t stub_hash(const void *stub)
{
    uint64_t h = (uint64_t)(uintptr_t)stub;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    return h ^ (h >> 33);
}

static void grow_stubs(void)
{
    uint64_t capacity = by_stub_capacity ? by_stub_capacity * 2 : 65536;
    tw_kernel **fresh = calloc(capacity, sizeof *fresh);
    if (fresh == NULL)
        abort();
    for (uint64_t i = 0; i < by_stub_capacity; i++) {
        tw_kernel *k = by_stub[i];
        if (k == NULL)
            continue;
        uint64_t at = stub_hash(k->stub) & (capacity - 1);
        while (fresh[at] != NULL)
            at = (at + 1) & (capacity - 1);
        fresh[at] = k;
    }
    /* readers take registry_lock too, so the old table can go */
    free(by_stub);
    by_stub = fresh;
    by_stub_capacity = capacity;
}

void tw_register_function(void **fatbin_handle_ptr, const void *host_stub, const char *mangled_name)
{
    tw_kernel *k = calloc(1, sizeof *k);
    if (k == NULL)
        abort();
    k->magic = KERNEL_MAGIC;
    k->stub = host_stub;
    k->mangled = mangled_name; /* lives in the registering binary's rodata */
    k->image = fatbin_handle_ptr ? ((fatbin_handle *)fatbin_handle_ptr)->image : NULL;
    pthread_mutex_lock(&registry_lock);
    if ((stub_count + 1) * 2 > by_stub_capacity)
        grow_stubs();
    uint64_t at = stub_hash(host_stub) & (by_stub_capacity - 1);
    while (by_stub[at] != NULL && by_stub[at]->stub != host_stub)
        at = (at + 1) & (by_stub_capacity - 1);
    if (by_stub[at] == NULL)
        stub_count++;
    by_stub[at] = k;
    pthread_mutex_unlock(&registry_lock);
}

tw_kernel *tw_kernel_from_stub(const void *host_stub)
{
    tw_kernel *found = NULL;
    pthread_mutex_lock(&registry_lock);
    if (by_stub_capacity > 0) {
        uint64_t at = stub_hash(host_stub) & (by_stub_capacity - 1);
        for (tw_kernel *k; (k = by_stub[at]) != NULL; at = (at + 1) & (by_stub_capacity - 1))
            if (k->stub == host_stub) {
                found = k;
                break;
            }
    }
    pthread_mutex_unlock(&registry_lock);
    if (found == NULL && host_stub != NULL && ((const tw_kernel *)host_stub)->magic == KERNEL_MAGIC)
        found = (tw_kernel *)host_stub; /* a cudaKernel_t handed back to us */
    return found;
}

const char *tw_kernel_name(const tw_kernel *k) { return k->mangled; }

uint32_t tw_kernel_name_id(const tw_kernel *k)
{
    return k->name_id ? k->name_id : tw_name_intern(k->mangled);
}

/* ---- driver modules ---- */

void *tw_module_load(const void *image, uint64_t image_bytes)
{
    if (image == NULL)
        return NULL;
    uint32_t magic;
    memcpy(&magic, image, sizeof magic);
    if (magic == 0x466243b1u)
        image = ((const struct { int magic; int version; const void *data; } *)image)->data;
    if (image_bytes == 0)
        image_bytes = tw_fatbin_image_size(image);
    if (image_bytes == 0)
        return NULL;
    module *m = calloc(1, sizeof *m);
    if (m == NULL)
        return NULL;
    m->image = malloc(image_bytes);
    if (m->image == NULL) {
        free(m);
        return NULL;
    }
    memcpy(m->image, image, image_bytes); /* the caller may free its buffer after loading */
    m->image_bytes = image_bytes;
    return m;
}

void tw_module_unload(void *handle)
{
    (void)handle; /* functions of the module may still be queued */
}

typedef struct name_search {
    const char *wanted;
    bool found;
    bool any;
} name_search;

static void match_name(const char *name, void *user)
{
    name_search *search = user;
    search->any = true;
    if (strcmp(name, search->wanted) == 0)
        search->found = true;
}

tw_kernel *tw_module_get_function(void *handle, const char *name)
{
    module *m = handle;
    if (m == NULL || name == NULL)
        return NULL;
    pthread_mutex_lock(&registry_lock);
    for (uint32_t i = 0; i < m->kernel_count; i++)
        if (strcmp(m->kernels[i]->mangled, name) == 0) {
            tw_kernel *k = m->kernels[i];
            pthread_mutex_unlock(&registry_lock);
            return k;
        }
    pthread_mutex_unlock(&registry_lock);
    name_search search = {name, false, false};
    tw_fatbin_kernel_names(m->image, match_name, &search);
    if (search.any && !search.found)
        return NULL; /* the image lists its kernels and this is not one of them */
    tw_kernel *k = calloc(1, sizeof *k);
    char *copy = strdup(name);
    if (k == NULL || copy == NULL)
        abort();
    k->magic = KERNEL_MAGIC;
    k->mangled = copy;
    k->image = m->image;
    pthread_mutex_lock(&registry_lock);
    tw_kernel **grown = realloc(m->kernels, (m->kernel_count + 1) * sizeof *grown);
    if (grown == NULL)
        abort();
    m->kernels = grown;
    m->kernels[m->kernel_count++] = k;
    pthread_mutex_unlock(&registry_lock);
    return k;
}

/* ---- launch ---- */

static void load_layout(tw_kernel *k)
{
    const tw_gpu_spec *spec = tw_spec();
    bool ok = k->image != NULL &&
              tw_fatbin_param_layout(k->image, k->mangled, spec->cc_major, spec->cc_minor, &k->layout);
    /* no cubin for this arch or below (a V100 under a library built for sm_75+): a kernel's
     * parameter layout follows its signature, not its arch, so any cubin of it will do */
    if (!ok && k->image != NULL)
        ok = tw_fatbin_param_layout(k->image, k->mangled, 99, 0, &k->layout);
    if (ok) {
        tw_kernel_shape_init(k->mangled, &k->shape);
        tw_kernel_data_init(k->mangled, &k->data);
    }
    k->layout_state = ok ? 1 : -1;
    if (!ok)
        TW_DEBUG("no parameter layout for %s: its pointer arguments are not sized", k->mangled);
}

#define KEY_PARAM_BYTES 64      /* parameters up to this size take part in the shape key */
#define SCAN_PARAM_BYTES 1024    /* by-value structs are searched for pointers up to this size */
#define POINTER_TABLE_BYTES 256  /* ... and buffers they point to, for a table of peers' pointers */
#define ELEMENT_BYTES_CAP 8      /* widest common element (fp64, int64): keeps bytes an upper bound */
#define THREAD_BYTES_CAP 128     /* no element count: what one launched thread reaches at most */

/* Hash of the launch's parameter values (pointers, counts, small by-value structs): a launch
 * of the same shape with other tensors or another element count gets its own descriptor. */
static uint64_t args_key(const tw_kernel *k, void **args)
{
    if (k->layout_state != 1 || args == NULL)
        return 0;
    uint64_t key = 0x9e3779b97f4a7c15ULL;
    for (uint32_t i = 0; i < k->layout.count; i++) {
        uint32_t size = k->layout.size[i];
        if (size > KEY_PARAM_BYTES || args[i] == NULL)
            continue;
        for (uint32_t at = 0; at < size; at += sizeof(uint64_t)) {
            uint64_t word = 0;
            memcpy(&word, (const char *)args[i] + at, size - at < sizeof word ? size - at : sizeof word);
            key = (key ^ word) * 0xbf58476d1ce4e5b9ULL;
            key ^= key >> 29;
        }
    }
    return key;
}

static bool device_allocation(uint64_t pointer, tw_alloc *alloc)
{
    return pointer != 0 && tw_mem_lookup((const void *)(uintptr_t)pointer, alloc) &&
           alloc->kind != TW_MEM_HOST_PINNED && alloc->kind != TW_MEM_HOST_REGISTERED;
}

/* The element count a launch's integer parameters suggest: the largest 64-bit one, else the
 * largest 32-bit one. With a C++ signature only integer-typed parameters count; without one
 * (extern "C", Triton) any 4-byte parameter may be a float, so 64-bit values win. */
static uint64_t count_hint(const tw_kernel *k, void **args)
{
    uint64_t hint64 = 0, hint32 = 0;
    bool typed = k->shape.int_params != 0 || k->shape.pointer_params != 0;
    for (uint32_t i = 0; i < k->layout.count; i++) {
        uint32_t size = k->layout.size[i];
        if (args[i] == NULL || (typed && (i >= 64 || !(k->shape.int_params >> i & 1))))
            continue;
        if (size == sizeof(uint32_t)) {
            uint32_t value;
            memcpy(&value, args[i], sizeof value);
            if (value > hint32 && value < (1u << 31))
                hint32 = value;
        } else if (size == sizeof(uint64_t)) {
            uint64_t value;
            memcpy(&value, args[i], sizeof value);
            if (value > hint64 && value < (1ull << 40))
                hint64 = value;
        }
    }
    return hint64 ? hint64 : hint32;
}

/* The generic estimate: the device memory the launch's pointers reach. Pointers are found
 * among the parameters and inside by-value structs (torch passes arrays of data pointers);
 * each counts from the pointer to the end of its allocation (a cudaMalloc block or a mapped
 * VMM chunk), at most an element count's worth of its type (the widest the name mentions,
 * else 8 bytes) when an integer parameter gives one, else at most THREAD_BYTES_CAP per
 * launched thread. dims[0] gets the uncapped reach, dims[1] how bytes were capped. */
static void measure_params(tw_kernel *k, void **args, tw_desc *desc)
{
    uint64_t hint = count_hint(k, args);
    uint64_t pointers[TW_MAX_PARAMS];
    uint32_t pointer_passes[TW_MAX_PARAMS]; /* 2 = read and written */
    uint32_t pointer_elems[TW_MAX_PARAMS];
    uint32_t pointer_count = 0;
    tw_alloc alloc;
    for (uint32_t i = 0; i < k->layout.count; i++) {
        uint32_t size = k->layout.size[i];
        if (args[i] == NULL || size < sizeof(uint64_t))
            continue;
        for (uint32_t at = 0; at + sizeof(uint64_t) <= size && at < SCAN_PARAM_BYTES; at += sizeof(uint64_t)) {
            uint64_t word;
            memcpy(&word, (const char *)args[i] + at, sizeof word);
            if (pointer_count < TW_MAX_PARAMS && device_allocation(word, &alloc)) {
                bool plain = size == sizeof(uint64_t) && i < TW_MAX_PARAMS;
                pointer_passes[pointer_count] = plain && i < 64 && (k->shape.written_params >> i & 1) ? 2 : 1;
                pointer_elems[pointer_count] = plain && k->shape.elem_bytes[i] ? k->shape.elem_bytes[i]
                                               : k->shape.name_elem_bytes ? k->shape.name_elem_bytes
                                                                          : ELEMENT_BYTES_CAP;
                pointers[pointer_count++] = word;
            }
        }
    }
    uint64_t threads = (uint64_t)desc->grid[0] * desc->grid[1] * desc->grid[2] * desc->block[0] *
                       desc->block[1] * desc->block[2];
    uint64_t seen[TW_MAX_PARAMS], reachable = 0;
    uint32_t seen_count = 0;
    for (uint32_t i = 0; i < pointer_count; i++) {
        if (!device_allocation(pointers[i], &alloc))
            continue;
        bool duplicate = false;
        for (uint32_t s = 0; s < seen_count; s++)
            duplicate |= seen[s] == alloc.base;
        if (duplicate)
            continue;
        seen[seen_count++] = alloc.base;
        uint64_t reach = alloc.base + alloc.size - pointers[i];
        reachable += reach;
        if (hint > 0 && reach > hint * pointer_elems[i])
            reach = hint * pointer_elems[i];
        /* a kernel whose parameters are one struct gives no count: a pointer into a large pool
         * (vLLM's KV cache) must not count the whole pool */
        if (hint == 0 && threads > 0 && reach > threads * THREAD_BYTES_CAP)
            reach = threads * THREAD_BYTES_CAP;
        desc->bytes += reach * pointer_passes[i];
        desc->pointer_params++;
    }
    desc->dims[0] = (int64_t)reachable;
    desc->dims[1] = desc->pointer_params == 0 ? TW_DESCRIBED_NONE : hint > 0 ? TW_DESCRIBED_COUNT
                                                                             : TW_DESCRIBED_THREADS;
}

/* The launch's descriptor: its family's decoding of the arguments when it validates, else
 * the generic estimate. A launch of a recognised family that its decoder could not read (no
 * layout, arguments that do not validate) keeps the generic estimate with dims[2] = the family
 * (kernel_shapes.c), so that the run reports it (summary.json underdescribed) instead of
 * passing the estimate off silently. */
static void describe_launch(tw_kernel *k, void **args, tw_desc *desc)
{
    desc->dims[1] = TW_DESCRIBED_NONE;
    if (k->layout_state != 1 || args == NULL) {
        desc->dims[2] = k->shape.family;
        return;
    }
    desc->param_bytes = k->layout.param_bytes;
    if (tw_kernel_shape_describe(&k->shape, &k->layout, args, desc)) {
        if (desc->kind == TW_OP_KERNEL)
            desc->dims[0] = (int64_t)desc->bytes;
        return;
    }
    measure_params(k, args, desc);
    desc->dims[2] = k->shape.family;
}

static void launch_desc(tw_kernel *k, tw_dim3 grid, tw_dim3 block, uint32_t smem_bytes, uint32_t flags,
                        uint32_t device, void **args, tw_desc *desc)
{
    memset(desc, 0, sizeof *desc);
    desc->kind = TW_OP_KERNEL;
    desc->device = device;
    desc->grid[0] = grid.x, desc->grid[1] = grid.y, desc->grid[2] = grid.z;
    desc->block[0] = block.x, desc->block[1] = block.y, desc->block[2] = block.z;
    desc->smem_bytes = smem_bytes;
    desc->flags = flags;
    desc->name_id = k->name_id;
    describe_launch(k, args, desc);
}

/* Folds what a content-described launch decoded into its shape key. */
static uint64_t desc_key(uint64_t key, const tw_desc *d)
{
    const uint64_t words[] = {d->kind, d->flags, d->bytes, d->flops, (uint64_t)d->dims[0], (uint64_t)d->dims[1],
                              (uint64_t)d->dims[2], (uint64_t)d->dims[3], (uint64_t)d->dims[4],
                              (uint64_t)d->dims[5], (uint64_t)d->dims[6], (uint64_t)d->dims[7]};
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
        key = (key ^ words[i]) * 0xbf58476d1ce4e5b9ULL;
        key ^= key >> 29;
    }
    return key;
}

/* Adds the owner of the allocation `word` points into, if another process's (IPC-opened or
 * imported VMM memory). Returns whether word points into a local host-backed allocation. */
static bool add_peer_owner(uint64_t word, int32_t *pids, uint32_t *count)
{
    tw_alloc alloc;
    if (!device_allocation(word, &alloc))
        return false;
    if (alloc.owner_pid == 0)
        return alloc.backed;
    bool seen = false;
    for (uint32_t p = 0; p < *count; p++)
        seen |= pids[p] == alloc.owner_pid;
    if (!seen && *count < MAX_PEERS)
        pids[(*count)++] = alloc.owner_pid;
    return false;
}

/* The processes whose memory the arguments reach: pointers in parameters and by-value structs
 * (vLLM's RankSignals), and one level further through a small table of pointers in this
 * process's device memory (FlashInfer's and TensorRT-LLM's all-reduce workspace, torch symmetric
 * memory's buffer list) where the kernel takes such tables (a T** parameter, or a known peer
 * all-reduce kernel): any other kernel's buffer may sit just before a table in the same
 * allocator block. The launch synchronises with their kernels. Runs once per launch shape. */
static uint32_t peer_owners(const tw_kernel *k, void **args, int32_t *pids)
{
    /* ATen's kernels never wait on peers' flags, and their by-value structs hold words the
     * launch left unset (ReduceOp's dst[1], acc_buf: the issuing thread's stack, which may
     * hold a pointer into a peer's buffer from an all-reduce just before). A copy from a peer's
     * memory is a plain read of it, not a meeting. */
    if (k->layout_state != 1 || args == NULL || strncmp(k->mangled, "_ZN2at6native", 13) == 0)
        return 0;
    uint32_t count = 0;
    for (uint32_t i = 0; i < k->layout.count; i++) {
        uint32_t size = k->layout.size[i];
        for (uint32_t at = 0; args[i] != NULL && at + sizeof(uint64_t) <= size && at < SCAN_PARAM_BYTES;
             at += sizeof(uint64_t)) {
            uint64_t word;
            memcpy(&word, (const char *)args[i] + at, sizeof word);
            if (!add_peer_owner(word, pids, &count) || !k->shape.pointer_tables || word % sizeof(uint64_t) != 0)
                continue;
            /* a local backed buffer: the first words of it may be a table of peers' pointers */
            uint64_t words = tw_mem_host_bytes((const void *)(uintptr_t)word, POINTER_TABLE_BYTES) / sizeof(uint64_t);
            const uint64_t *table = (const uint64_t *)(uintptr_t)word;
            for (uint64_t w = 0; w < words; w++)
                add_peer_owner(table[w], pids, &count);
        }
    }
    return count;
}

/* An all-reduce kernel through peers' memory (kernel_shapes_comm.c) whose arguments reach no
 * other process's memory: it is timed alone, not met with its peers. Said once per kernel, in
 * the log and in the summary ("collectives_not_met"). */
static void report_unmet(tw_kernel *k)
{
    if (k->unmet_reported)
        return;
    k->unmet_reported = true;
    const char *name = tw_name_get(k->name_id);
    TW_WARN("%s: an all-reduce kernel whose arguments reach no other process's memory: timed alone, "
            "not met with its peers' launches", name);
    char mark[512];
    snprintf(mark, sizeof mark, "collective not met: %s", name);
    tw_trace_mark(mark);
}

/* The outputs of a kernel that kernel_data.c evaluates, written at issue like a copy's bytes
 * (not while capturing: a graph's kernels do not run at capture). Lock not held: it may wait for
 * a collective's data. */
static void write_outputs(const tw_kernel *k, tw_dim3 grid, tw_dim3 block, void **args, const tw_stream *s)
{
    if (TW_LIKELY(k->data.op == 0) || args == NULL || tw_stream_capture_graph(s) != NULL)
        return;
    tw_kernel_data_run(&k->data, &k->layout, args, grid, block);
}

int tw_launch_kernel(tw_kernel *k, tw_dim3 grid, tw_dim3 block, uint32_t smem_bytes, void **args,
                     tw_stream *s, uint32_t flags)
{
    if (TW_UNLIKELY(k->name_id == 0))
        k->name_id = tw_name_intern(k->mangled);
    pthread_mutex_lock(&tw_timeline_lock);
    if (TW_UNLIKELY(k->layout_state == 0))
        load_layout(k);
    uint64_t key = args_key(k, args);
    uint32_t device = (uint32_t)tw_stream_device(s);
    tw_desc desc;
    /* lengths in device buffers and large by-value structs escape the parameter hash: such
     * launches are described every time and keyed by what they decode to */
    bool described = k->layout_state == 1 && args != NULL && tw_kernel_shape_by_content(&k->shape);
    if (described) {
        launch_desc(k, grid, block, smem_bytes, flags, device, args, &desc);
        key = desc_key(key, &desc);
    }
    tw_prediction_slot *slot = NULL;
    shape_entry *slot_peers = NULL;
    for (uint32_t i = 0; i < SHAPE_CACHE; i++) {
        shape_entry *e = &k->shapes[i];
        if (e->slot != NULL && e->args_key == key && e->grid[0] == grid.x && e->grid[1] == grid.y &&
            e->grid[2] == grid.z && e->block[0] == block.x && e->block[1] == block.y &&
            e->block[2] == block.z && e->smem_bytes == smem_bytes && e->flags == flags &&
            e->slot->desc.device == device) {
            slot = e->slot;
            if (TW_UNLIKELY(e->peer_count > 0))
                slot_peers = e;
            break;
        }
    }
    if (TW_UNLIKELY(slot == NULL)) {
        if (!described)
            launch_desc(k, grid, block, smem_bytes, flags, device, args, &desc);
        slot = tw_predict_slot_locked(&desc);
        shape_entry *e = &k->shapes[k->next_shape++ % SHAPE_CACHE];
        memcpy(e->grid, desc.grid, sizeof e->grid);
        memcpy(e->block, desc.block, sizeof e->block);
        e->smem_bytes = smem_bytes;
        e->flags = flags;
        e->args_key = key;
        e->slot = slot;
        e->peer_count = peer_owners(k, args, e->peer_pids);
        if (e->peer_count > 0)
            slot_peers = e;
        else if (desc.kind == TW_OP_COLLECTIVE)
            report_unmet(k);
    }
    if (TW_UNLIKELY(slot_peers != NULL)) {
        tw_desc desc = slot->desc;
        int32_t pids[MAX_PEERS];
        uint32_t peers = slot_peers->peer_count;
        memcpy(pids, slot_peers->peer_pids, peers * sizeof pids[0]);
        pthread_mutex_unlock(&tw_timeline_lock);
        tw_submit_peer_kernel(s, &desc, pids, (int)peers);
        write_outputs(k, grid, block, args, s);
        return TW_OK;
    }
    tw_submit_slot_locked(s, slot, 0);
    pthread_mutex_unlock(&tw_timeline_lock);
    write_outputs(k, grid, block, args, s);
    return TW_OK;
}

const tw_param_layout *tw_kernel_layout(tw_kernel *k)
{
    pthread_mutex_lock(&tw_timeline_lock);
    if (k->layout_state == 0)
        load_layout(k);
    pthread_mutex_unlock(&tw_timeline_lock);
    return k->layout_state == 1 ? &k->layout : NULL;
}

/* ---- device variables (__cudaRegisterVar): backed on first use ---- */

typedef struct device_var {
    const void *host_var;
    const char *name;
    uint64_t size;
    void *device_ptr;
} device_var;

static device_var *vars;
static uint64_t var_count;
static uint64_t var_capacity;

void tw_register_var(const void *host_var, const char *name, uint64_t size)
{
    pthread_mutex_lock(&registry_lock);
    if (var_count == var_capacity) {
        uint64_t capacity = var_capacity ? var_capacity * 2 : 1024;
        device_var *grown = realloc(vars, capacity * sizeof *grown);
        if (grown == NULL)
            abort();
        vars = grown;
        var_capacity = capacity;
    }
    vars[var_count++] = (device_var){host_var, name, size, NULL};
    pthread_mutex_unlock(&registry_lock);
}

void *tw_symbol_address(const void *host_var, uint64_t *size)
{
    void *found = NULL;
    pthread_mutex_lock(&registry_lock);
    for (uint64_t i = var_count; i-- > 0;) {
        device_var *v = &vars[i];
        if (v->host_var != host_var)
            continue;
        if (v->device_ptr == NULL && tw_mem_alloc(tw_device_current(), v->size ? v->size : 1,
                                                  TW_MEM_DEVICE, &v->device_ptr) != TW_OK)
            v->device_ptr = NULL;
        found = v->device_ptr;
        if (size != NULL)
            *size = v->size;
        break;
    }
    pthread_mutex_unlock(&registry_lock);
    return found;
}
