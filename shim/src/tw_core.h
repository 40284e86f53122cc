/* The shim's semantic core: the internal API every API-family adapter translates onto.
 * One section per core file. Adapters (api_*.c) include this and the vendor headers they
 * mirror; the core files include only this. Times are virtual nanoseconds unless named
 * otherwise. */
#ifndef TW_CORE_H
#define TW_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <signal.h>
#include <stdint.h>
#include <sys/types.h>

#include "timewarp/records.h"

#define TW_EXPORT __attribute__((visibility("default")))
#define TW_LIKELY(x) __builtin_expect(!!(x), 1)
#define TW_UNLIKELY(x) __builtin_expect(!!(x), 0)

/* ---------------------------------------------------------------- config.c
 * Every TIMEWARP_* environment variable is read here, once, at load. */
typedef struct tw_config {
    const char *run_dir;          /* TIMEWARP_RUN_DIR: where proc/<pid>.trace goes; NULL = no trace */
    const char *coordinator;      /* TIMEWARP_COORDINATOR: "unix:/path"; NULL = floor predictions */
    const char *spec_path;        /* TIMEWARP_SPEC: key=value GPU spec file written by emulate */
    int log_level;                /* TIMEWARP_LOG_LEVEL: 0 error .. 3 debug (default 1) */
    const char *log_path;         /* TIMEWARP_LOG: file for the log (%p = pid); default stderr */
    uint64_t backed_threshold;    /* TIMEWARP_BACKED_BYTES: allocations up to this are host-backed (4 MiB) */
    int device_count;             /* TIMEWARP_GPUS (default from spec, else 1) */
    int trace_api;                /* TIMEWARP_TRACE_API: CPU API spans: 0 none, 1 syncs, copies,
                                     allocations (default), 2 also every launch */
    double deadlock_grace_s;      /* TIMEWARP_DEADLOCK_S: all threads blocked forever this long
                                     is a deadlock (default 3; 0 disables) */
    int allow_degraded;           /* TIMEWARP_ALLOW_DEGRADED=1: predictions unavailable fall back
                                     to the floor (said in the summary) instead of ending the run */
} tw_config;

const tw_config *tw_config_get(void);

/* ---------------------------------------------------------------- log.c */
enum { TW_LOG_ERROR = 0, TW_LOG_WARN = 1, TW_LOG_INFO = 2, TW_LOG_DEBUG = 3 };
void tw_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define TW_ERROR(...) tw_log(TW_LOG_ERROR, __VA_ARGS__)
#define TW_WARN(...) tw_log(TW_LOG_WARN, __VA_ARGS__)
#define TW_INFO(...) tw_log(TW_LOG_INFO, __VA_ARGS__)
#define TW_DEBUG(...) tw_log(TW_LOG_DEBUG, __VA_ARGS__)

/* Every generated stub calls this: logs the name once per process (warn level) and records
 * a TW_REC_UNIMPLEMENTED record per call so the summary can count them. */
void tw_unimplemented(const char *name);

/* ---------------------------------------------------------------- names.c
 * Interned strings (kernel names, library routine names, API names). Ids are stable for the
 * process and written to <run>/proc/<pid>.names as "id\tname" lines on first use. */
uint32_t tw_name_intern(const char *name);
const char *tw_name_get(uint32_t name_id);

/* ---------------------------------------------------------------- device.c
 * The virtual GPUs: properties from the spec file, current device per thread. */
typedef struct tw_gpu_spec {
    char name[96];                /* e.g. "NVIDIA H100 80GB HBM3" */
    char key[32];                 /* catalog key, e.g. "h100" */
    int cc_major, cc_minor;
    int sm_count;
    uint64_t memory_bytes;        /* total device memory */
    uint64_t reserved_bytes;      /* taken by the driver/context: free = total - reserved - used */
    int l2_bytes;
    int smem_per_sm_bytes;
    int smem_per_block_bytes;     /* default per-block limit (48 KiB) */
    int smem_per_block_optin_bytes;
    int regs_per_sm;
    int regs_per_block;
    int max_threads_per_sm;
    int max_threads_per_block;
    int max_blocks_per_sm;
    int warp_size;
    int clock_khz;
    int mem_clock_khz;
    int mem_bus_width_bits;
    int pcie_gen;
    int pcie_width;
    int nvlink_links;             /* per GPU, 0 = PCIe only */
    double hbm_bytes_per_s;
    double pcie_bytes_per_s;
    int64_t launch_latency_ns;    /* issue -> earliest start on an idle stream */
    int64_t kernel_floor_ns;      /* shortest kernel: used when no coordinator answers */
    int tdp_watts;
    int nvswitch;                 /* 1: the node's GPUs meet in NVSwitches (NVLink multicast) */
} tw_gpu_spec;

const tw_gpu_spec *tw_spec(void);
/* NVLink multicast objects (cuMulticast*): NVSwitch nodes of Hopper and later. */
bool tw_multicast_supported(void);
/* api_runtime_exec.c: the runtime's per-thread last error. Every cudart adapter returns
 * through this so cudaGetLastError / cudaPeekAtLastError see failures. */
int tw_runtime_status(int status);
int tw_device_count(void);
int tw_device_current(void);          /* per thread; default 0 */
int tw_max_cluster_size(int block_size, size_t dynamic_smem);   /* api_runtime_exec.c: 0 before sm_90 */
int tw_device_set_current(int device); /* 0 or the runtime's invalid-device status as -1 */
bool tw_device_valid(int device);
void tw_device_uuid(int device, unsigned char out_uuid[16]); /* stable per (spec key, device) */
int tw_device_pci_bus(int device);    /* PCI bus id of the device (domain 0, device 0) */


/* Contexts (one primary per device, created ones, a per-thread stack), device helpers
 * shared by the runtime, driver and NVML adapters. */
void *tw_ctx_create(int device, unsigned flags);
void *tw_ctx_current(void);
int tw_ctx_destroy(void *ctx);
int tw_ctx_device(const void *ctx);
unsigned tw_ctx_flags(const void *ctx);
int tw_ctx_pop(void **out_ctx);
void *tw_ctx_primary(int device);
void tw_ctx_primary_activate(int device);
bool tw_ctx_primary_active(int device);
void tw_ctx_primary_release(int device);
void tw_ctx_primary_reset(int device);
void tw_ctx_primary_retain(int device);
int tw_ctx_push(void *ctx);
int tw_ctx_set_current(void *ctx);
void tw_ctx_set_flags(void *ctx, unsigned flags);
bool tw_device_attribute(int device, int attr, int *value);
int tw_device_cache_config(int set_to);
bool tw_device_can_access_peer(int device, int peer);
int tw_device_from_pci_bus(int bus);
int tw_device_limit_get(int limit, uint64_t *value);
int tw_device_limit_set(int limit, uint64_t value);
int tw_device_parse_pci_bus_id(const char *id);
uint32_t tw_device_pci_id(void);
int tw_device_select(int device);

/* ---------------------------------------------------------------- memory.c
 * Split-state device memory. Allocations up to backed_threshold are host-backed (RW), larger
 * ones are reserved PROT_NONE so a host dereference faults (the SIGSEGV handler names the
 * allocation). Capacity per device from the spec. Host pinned and managed memory is real. */
enum tw_mem_kind {
    TW_MEM_DEVICE = 1,       /* cudaMalloc / cuMemAlloc / async pools */
    TW_MEM_HOST_PINNED = 2,  /* cudaHostAlloc / cudaMallocHost: real host memory */
    TW_MEM_HOST_REGISTERED = 3, /* cudaHostRegister: caller's memory, tracked only */
    TW_MEM_MANAGED = 4,      /* cudaMallocManaged: real host memory, counts as device memory */
    TW_MEM_VMM_RESERVE = 5,  /* cuMemAddressReserve: VA only */
    TW_MEM_VMM_PHYSICAL = 6  /* cuMemCreate: capacity only, mapped into reserves */
};

typedef struct tw_alloc {
    uint64_t base;
    uint64_t size;
    int device;
    int kind;                /* enum tw_mem_kind */
    bool backed;             /* host dereference is valid */
    uint64_t id;             /* allocation serial, for messages */
    int32_t owner_pid;       /* opened from another process's IPC handle: that process; else 0 */
    uint64_t owner_base;     /* ... and the allocation's address there */
} tw_alloc;

/* Status codes of the memory core (adapters translate to their library's codes). */
enum { TW_OK = 0, TW_ERR_NOMEM = 1, TW_ERR_INVALID = 2, TW_ERR_NOT_FOUND = 3 };

int tw_mem_alloc(int device, uint64_t size, int kind, void **out_ptr);
int tw_mem_free(void *ptr);                       /* any kind but VMM */
/* The allocation containing ptr (device, pinned, managed or mapped VMM range): copies *out
 * and returns true. Lock-light; safe from any thread. */
bool tw_mem_lookup(const void *ptr, tw_alloc *out);
void tw_mem_info(int device, uint64_t *free_bytes, uint64_t *total_bytes);
uint64_t tw_mem_used(int device);
uint64_t tw_mem_peak(int device);
int tw_mem_host_register(void *ptr, uint64_t size);
int tw_mem_host_unregister(void *ptr);
/* Copy kind for a (dst, src) pair from what the pointers are (cudaMemcpyDefault semantics). */
int tw_mem_copy_kind(const void *dst, const void *src); /* enum tw_copy_kind */
/* Move the bytes for real where both sides are host-addressable (backed device, host);
 * an unbacked side makes it a no-op (unbacked D2H leaves the destination untouched). */
void tw_mem_copy_data(void *dst, const void *src, uint64_t bytes);
void tw_mem_set_data(void *dst, int value, uint64_t bytes);
/* How many of `bytes` at p the host may touch: all of host memory, a backed allocation up to its
 * end, nothing of an unbacked one. */
uint64_t tw_mem_host_bytes(const void *p, uint64_t bytes);
/* VMM (cuMem*): physical handles are opaque nonzero ids. */
int tw_vmm_reserve(uint64_t size, uint64_t alignment, uint64_t addr_hint, void **out_ptr);
int tw_vmm_release(void *ptr, uint64_t size);
int tw_vmm_create(int device, uint64_t size, uint64_t *out_handle);
int tw_vmm_release_handle(uint64_t handle);
int tw_vmm_map(void *ptr, uint64_t size, uint64_t offset, uint64_t handle);
int tw_vmm_unmap(void *ptr, uint64_t size);
uint64_t tw_vmm_granularity(void);                /* 2 MiB */

/* extents.c: first-fit ranges inside one reserved span (the device arenas) */
typedef struct tw_extent {
    uint64_t base, size;
} tw_extent;
typedef struct tw_extents {
    uint64_t base, bytes;         /* the span */
    tw_extent *free;              /* sorted by base, coalesced */
    size_t count, capacity;
} tw_extents;
int tw_extents_init(tw_extents *x, uint64_t base, uint64_t bytes);
uint64_t tw_extents_take(tw_extents *x, uint64_t bytes);   /* 0 when nothing fits */
void tw_extents_give(tw_extents *x, uint64_t base, uint64_t bytes);
bool tw_extents_contains(const tw_extents *x, uint64_t addr);

/* Shared by the runtime and driver memory adapters: foreign (IPC) mappings, host-alloc
 * flags, VMM handle details, IPC handles and the default pool. */
bool tw_mem_get_flags(const void *ptr, uint32_t *flags);
/* An allocation of another process opened here: its owner, and its bytes when they are mapped. */
typedef struct tw_foreign {
    int32_t owner_pid;
    uint64_t owner_base;
    void *host;                   /* the owner's bytes mapped here, NULL: unbacked */
    uint64_t map_base, map_bytes; /* the page-aligned mapping around them */
} tw_foreign;
int tw_mem_map_foreign(int device, uint64_t size, const tw_foreign *f, void **out_ptr);
void tw_mem_after_fork(void);

/* ipc.c: device memory shared across processes: the memfd-backed arena of host-backed device
 * allocations, and CUDA IPC handles (64 bytes) naming them */
void *tw_ipc_backed_alloc(uint64_t bytes);
void tw_ipc_backed_free(void *p, uint64_t bytes);
bool tw_ipc_backed_contains(const void *p);
void *tw_ipc_backed_alloc_pages(uint64_t bytes, void **taken, int *fd, uint64_t *offset);
void tw_ipc_backed_free_pages(void *taken, uint64_t bytes);
int tw_ipc_open_peer_arena(int32_t pid, int32_t fd_there);
int tw_ipc_get(const void *ptr, void *out_handle_bytes);
int tw_ipc_open(const void *handle_bytes, void **out_ptr);
void tw_ipc_after_fork(void);
/* a device's capacity shared by the run's processes (records.h tw_devices_page): bytes in use by
 * all of them, each process's context reserve included */
int tw_ipc_capacity_charge(int device, uint64_t bytes, uint64_t capacity); /* TW_ERR_NOMEM past it */
void tw_ipc_capacity_uncharge(int device, uint64_t bytes);
uint64_t tw_ipc_device_used(int device);
int tw_ipc_device_processes(int device, int32_t *pids, uint64_t *bytes, int max);
int tw_mem_pool_default(int device, void **out_pool);
int tw_mem_set_flags(const void *ptr, uint32_t flags);
int tw_vmm_handle_info(uint64_t handle, int *device, uint64_t *size);
/* A VMM handle as another process imports it (cuMemExportToShareableHandle): its maker, and where
 * its bytes are (the memfd of a process's backed arena and the offset in it; fd -1: unbacked). */
typedef struct tw_vmm_share {
    int32_t owner_pid;
    int32_t storage_pid;
    int32_t storage_fd;
    uint64_t storage_offset;
} tw_vmm_share;
int tw_vmm_share_info(uint64_t handle, tw_vmm_share *out);
/* multicast.c: NVLink multicast objects shared by the run's processes (one shared page each) */
typedef struct tw_mcast_group tw_mcast_group;
int tw_mcast_create(uint64_t size, uint32_t devices, int *out_fd, tw_mcast_group **out_group);
int tw_mcast_open(int fd, int *out_fd, tw_mcast_group **out_group, uint64_t *size);
void tw_mcast_close(int fd, tw_mcast_group *g);
int tw_mcast_add_device(tw_mcast_group *g, int device);
uint64_t tw_mcast_size(const tw_mcast_group *g);
int tw_vmm_multicast_create(int device, uint64_t size, uint32_t devices, uint64_t *out_handle);
int tw_vmm_multicast_import(int device, int fd, uint64_t *out_handle);
tw_mcast_group *tw_vmm_multicast(uint64_t handle, int *fd);
int tw_vmm_import(int device, uint64_t size, const tw_vmm_share *share, uint64_t *out_handle);
int tw_vmm_retain_at(const void *ptr, uint64_t *out_handle);

/* ---------------------------------------------------------------- clock.c
 * Virtual time (DESIGN §3). virtual_mono = host_mono * scale + offset (offset in the shared
 * clock page). The libc time and sleep entry points are interposed in clock.c. */
int64_t tw_now_ns(void);                   /* virtual CLOCK_MONOTONIC in ns */
int64_t tw_realtime_ns(void);              /* virtual CLOCK_REALTIME in ns */
/* Block the calling thread until virtual time reaches target_ns under the causal rule
 * (docs/design.md, actors.c): time jumps there once every thread of the run is blocked.
 * Records a TW_REC_WAIT span. */
enum tw_wait_reason { TW_WAIT_GPU = 1, TW_WAIT_SLEEP = 2, TW_WAIT_EVENT = 3 };
void tw_wait_until(int64_t target_ns, int reason, uint32_t what_name_id);
/* Emulator-internal waits (prediction round trips) do not count as the program's time. */
int64_t tw_clock_pause_begin(void);
void tw_clock_pause_end(int64_t begin_host_ns);
bool tw_clock_paused(void);
/* Real (host) monotonic time, for wall-time accounting only. */
int64_t tw_host_mono_ns(void);

/* ---------------------------------------------------------------- trace.c
 * The per-process record file. Claim a slot, fill it, commit (writes kind last). */
void tw_trace_start(void);                 /* open the file now: the process's start time */
tw_record *tw_trace_claim(void);           /* zeroed slot, or NULL when tracing is off */
void tw_trace_commit(tw_record *rec, uint16_t kind);
void tw_trace_api(uint32_t api_name_id, int64_t begin_ns, int64_t end_ns);
void tw_trace_mark(const char *what);
void tw_trace_mark_value(const char *what, int64_t value);   /* a mark with a number (value field) */
/* http_requests.c: a connection this process accepted, and bytes it read from one */
void tw_http_accepted(int fd);
void tw_http_received(int fd, const void *buf, ssize_t bytes);
/* waits_io.c: read and recv that bypass the interposed (waiting) ones: the shim's own I/O */
ssize_t tw_io_read(int fd, void *buf, size_t count);
ssize_t tw_io_recv(int fd, void *buf, size_t len, int flags);
/* crash.c: <run>/crash/<pid>.txt for a fatal signal (async-signal-safe; diagnosis may be NULL) */
void tw_crash_report(int sig, const siginfo_t *info, const char *diagnosis);
/* crash.c: the emulation cannot go on in this process (predictions unavailable, a collective
 * that cannot match): writes <run>/crash/<pid>.txt headed "ended by timewarp: CAUSE", logs it
 * and exits with status 70; emulate ends the run with the cause named. */
__attribute__((noreturn)) void tw_fatal(const char *cause);
void tw_trace_set_exit(int status, int signal_number); /* at exit / fatal signal */
uint32_t tw_thread_id(void);               /* cached gettid() */

/* ---------------------------------------------------------------- timeline.c
 * Streams, events and the ops on them. cudaStream_t / CUstream values handed to the program
 * are tw_stream pointers; 0, cudaStreamLegacy (0x1) and cudaStreamPerThread (0x2) resolve to
 * the current device's legacy / per-thread default streams. */
typedef struct tw_stream tw_stream;
typedef struct tw_event tw_event;
typedef struct tw_graph tw_graph;
typedef struct tw_graph_exec tw_graph_exec;

#define TW_STREAM_NON_BLOCKING 0x1

tw_stream *tw_stream_resolve(const void *handle);  /* never NULL */
tw_stream *tw_stream_resolve_legacy(int device);   /* the legacy default stream of a device */
tw_stream *tw_stream_create(int device, unsigned flags, int priority);
void tw_stream_destroy(tw_stream *s);
int tw_stream_device(const tw_stream *s);
uint32_t tw_stream_id(const tw_stream *s);
int tw_stream_priority(const tw_stream *s);
unsigned tw_stream_flags(const tw_stream *s);
void tw_stream_synchronize(tw_stream *s);          /* jumps to the stream's tail */
bool tw_stream_query_done(tw_stream *s);           /* tail <= now */
void tw_device_synchronize(int device);            /* every stream of the device */

tw_event *tw_event_create(unsigned flags);
void tw_event_destroy(tw_event *e);
void tw_event_record(tw_event *e, tw_stream *s);
void tw_stream_wait_event(tw_stream *s, tw_event *e);
void tw_event_synchronize(tw_event *e);
bool tw_event_query_done(tw_event *e);
bool tw_event_recorded(const tw_event *e);
int64_t tw_event_time_ns(tw_event *e);             /* resolves pending predictions */

/* Submit one op to a stream (or to the graph the stream is capturing). `desc` is copied;
 * its name_id must be set (tw_name_intern). Returns the op's sequence number. */
uint64_t tw_submit(tw_stream *s, const tw_desc *desc);
uint64_t tw_issued_seq(void);   /* the seq of the process's latest issued op (0: none yet) */
/* Host functions run for real, in issue order, when the stream reaches them in virtual
 * time: at the next sync that covers them (documented limitation). */
void tw_submit_host_func(tw_stream *s, void (*fn)(void *), void *user_data);

/* A copy on a stream: the bytes move now (nothing on the device writes them), the stream gets
 * a TW_OP_MEMCPY (none host to host), a synchronous copy waits for its end, and a captured
 * copy only becomes a graph node. copy_kind 0 = from what the pointers are. */
void tw_copy(void *dst, const void *src, uint64_t bytes, tw_stream *s, int copy_kind, bool synchronous);
void tw_submit_copy_op(tw_stream *s, int copy_kind, uint64_t bytes);

/* Resolve every pending prediction and compute op times (called at syncs and queries). */
void tw_timeline_flush(void);

/* ---------------------------------------------------------------- launch.c
 * Kernel registry and launch: fat binaries, host stubs, driver modules and functions. */
typedef struct tw_kernel tw_kernel;
typedef struct tw_dim3 { uint32_t x, y, z; } tw_dim3;

void **tw_register_fatbin(void *fatbin_wrapper);
void tw_unregister_fatbin(void **handle);
void tw_register_function(void **fatbin_handle, const void *host_stub, const char *mangled_name);
tw_kernel *tw_kernel_from_stub(const void *host_stub);  /* NULL if unknown */
/* Driver modules (cuModuleLoad*, cuLibraryLoad*): image is a cubin, fatbin or PTX. */
void *tw_module_load(const void *image, uint64_t image_bytes); /* opaque module handle */
void tw_module_unload(void *module);
tw_kernel *tw_module_get_function(void *module, const char *name); /* NULL if absent */
const char *tw_kernel_name(const tw_kernel *k);     /* mangled */
uint32_t tw_kernel_name_id(const tw_kernel *k);
/* Launch: builds the descriptor (cached per kernel and shape) and submits it. */
int tw_launch_kernel(tw_kernel *k, tw_dim3 grid, tw_dim3 block, uint32_t smem_bytes,
                     void **args, tw_stream *s, uint32_t flags);

/* __cudaRegisterVar bookkeeping: device variables get backed memory on first use. */
void tw_register_var(const void *host_var, const char *name, uint64_t size);
void *tw_symbol_address(const void *host_var, uint64_t *size);

/* ---------------------------------------------------------------- fatbin.c
 * Parameter layouts from a cubin's .nv.info (EIATTR_KPARAM_INFO), via the fat binary. */
#define TW_MAX_PARAMS 64
typedef struct tw_param_layout {
    uint32_t count;
    uint32_t param_bytes;
    uint16_t offset[TW_MAX_PARAMS];
    uint16_t size[TW_MAX_PARAMS];
} tw_param_layout;
/* image: a fatbin (wrapper's data, magic 0xBA55ED50), a cubin (ELF) or anything else (fails).
 * Picks the cubin for sm_<cc_major><cc_minor> (else the closest lower). Returns true when the
 * kernel was found. */
bool tw_fatbin_param_layout(const void *image, const char *kernel_name, int cc_major,
                            int cc_minor, tw_param_layout *out);
/* Names of all kernels (entry functions) in a cubin/fatbin image; calls fn for each. */
void tw_fatbin_kernel_names(const void *image, void (*fn)(const char *name, void *user),
                            void *user);

/* Parameter layout of a kernel (parsed on first need), NULL when unavailable. */
const tw_param_layout *tw_kernel_layout(tw_kernel *k);

/* Per-kernel facts from the cubin (registers, static shared memory, launch bounds). */
typedef struct tw_kernel_info {
    int32_t regs;                 /* EIATTR_REGCOUNT; -1 unknown */
    uint32_t static_smem_bytes;   /* size of .nv.shared.<kernel> */
    uint32_t const_bytes;         /* size of .nv.constant0.<kernel> (driver area + params) */
    uint32_t local_bytes;         /* .nv.local.<kernel>, else EIATTR_FRAME_SIZE */
    uint32_t max_threads;         /* __launch_bounds__ / reqntid product; 0 = none */
    int32_t arch;                 /* sm of the cubin read (90 = sm_90); 0 = from PTX */
    uint32_t cuda_api_version;    /* EIATTR_CUDA_API_VERSION, e.g. 0x82 = 13.0 */
} tw_kernel_info;
/* Bytes of a cubin, fatbin or PTX image (bounds-checked), 0 if not recognised. */
uint64_t tw_fatbin_image_size(const void *image);
bool tw_fatbin_kernel_info(const void *image, const char *kernel_name, int cc_major,
                           int cc_minor, tw_kernel_info *out);
bool tw_fatbin_global_size(const void *image, const char *name, uint64_t *size_out);
void tw_fatbin_forget(const void *image);
bool tw_fatbin_lz4_decode(const uint8_t *src, uint64_t src_len, uint8_t *dst, uint64_t dst_len);

/* ---------------------------------------------------------------- graph.c
 * Stream capture and CUDA graphs. */
enum tw_capture_mode { TW_CAPTURE_GLOBAL = 0, TW_CAPTURE_THREAD_LOCAL = 1, TW_CAPTURE_RELAXED = 2 };
int tw_capture_begin(tw_stream *s, int mode);
int tw_capture_end(tw_stream *s, tw_graph **out_graph);
tw_graph *tw_stream_capture_graph(const tw_stream *s); /* NULL if not capturing */
uint64_t tw_stream_capture_id(const tw_stream *s);
tw_graph *tw_graph_create(void);
void tw_graph_destroy(tw_graph *g);
size_t tw_graph_node_count(const tw_graph *g);
int tw_graph_instantiate(tw_graph *g, tw_graph_exec **out_exec);
void tw_graph_exec_destroy(tw_graph_exec *x);
int tw_graph_launch(tw_graph_exec *x, tw_stream *s);

/* Node-level construction (graph_nodes.c): node types as cudaGraphNodeType numbers them + 1
 * (0 = a captured node, whose type follows from its op). */
enum tw_node_type {
    TW_NODE_TYPE_CAPTURED = 0, TW_NODE_TYPE_KERNEL = 1, TW_NODE_TYPE_MEMCPY = 2, TW_NODE_TYPE_MEMSET = 3,
    TW_NODE_TYPE_HOST = 4, TW_NODE_TYPE_GRAPH = 5, TW_NODE_TYPE_EMPTY = 6, TW_NODE_TYPE_WAIT_EVENT = 7,
    TW_NODE_TYPE_EVENT_RECORD = 8
};
typedef struct tw_node_params {
    int type;                               /* enum tw_node_type */
    tw_kernel *kernel;                      /* kernel: launched as given (args read at add time) */
    tw_dim3 grid, block;
    uint32_t smem;
    void **args;
    void *dst;                              /* memcpy and memset target */
    const void *src;                        /* memcpy source */
    uint64_t bytes;                         /* memcpy bytes */
    uint32_t value, elem;                   /* memset value and element size (1, 2, 4) */
    uint64_t pitch, width, height;          /* memset rows: width elements, pitch bytes apart */
    void (*fn)(void *);                     /* host */
    void *data;
    tw_event *event;                        /* event record / wait */
    tw_graph *child;                        /* child graph: copied in at add time */
} tw_node_params;
int tw_graph_node_add(tw_graph *g, const tw_node_params *p, void *const *deps, size_t dep_count, void **out_node);
int tw_graph_node_get(const void *node, tw_node_params *out);
int tw_graph_node_set(void *node, const tw_node_params *p);
int tw_graph_node_edges(const void *node, bool dependents, void **out, size_t *count);
int tw_graph_add_dependencies(tw_graph *g, void *const *from, void *const *to, size_t count);
int tw_graph_exec_node_set(tw_graph_exec *x, const void *node, const tw_node_params *p);
int tw_graph_exec_update(tw_graph_exec *x, tw_graph *g, void **error_node);
int tw_graph_dot_print(tw_graph *g, const char *path);
int tw_capture_begin_to_graph(tw_stream *s, tw_graph *g, void *const *deps, size_t dep_count, int mode);
int tw_capture_set_dependencies(tw_stream *s, void *const *deps, size_t dep_count, bool add);

/* Capture rules (CUDA programming guide, stream capture: prohibited operations and the
 * interaction modes). Each check returns TW_OK or a TW_ERR_CAPTURE_* code; a failing check
 * invalidates the captures concerned, so their cudaStreamEndCapture fails. */
enum {
    TW_ERR_CAPTURE_UNSUPPORTED = 20,  /* not permitted while capturing (900) */
    TW_ERR_CAPTURE_INVALIDATED = 21,  /* the capture was voided by an earlier error (901) */
    TW_ERR_CAPTURE_IMPLICIT = 22,     /* legacy stream vs a blocking capturing stream (906) */
    TW_ERR_CAPTURE_WRONG_THREAD = 23, /* a strict capture ended by another thread (908) */
    TW_ERR_CAPTURE_MERGE = 24         /* a wait would merge two captures (902) */
};
enum { TW_CAPTURE_STATUS_NONE = 0, TW_CAPTURE_STATUS_ACTIVE = 1, TW_CAPTURE_STATUS_INVALIDATED = 2 };
int tw_capture_status(const tw_stream *s);
int tw_capture_exchange_mode(int mode);            /* this thread's mode; returns the previous */
int tw_capture_check_unsafe(void);                 /* allocation, free, synchronous call */
int tw_capture_check_enqueue(tw_stream *s);        /* async work on s */
int tw_capture_check_sync(tw_stream *s);           /* synchronize or query s */
int tw_capture_check_event(tw_event *e);           /* synchronize or query e */
int tw_capture_check_wait(tw_stream *s, tw_event *e); /* s waits for e */
int tw_capture_check_device_sync(int device);
bool tw_capture_blocks_legacy(const tw_stream *s); /* s is the legacy stream of a device with a blocking capture */
/* Node handles (cudaGraphNode_t / CUgraphNode): stable objects naming a node of a graph. */
void *tw_graph_node_handle(tw_graph *g, uint32_t index);
bool tw_graph_node_lookup(const void *handle, tw_graph **g, uint32_t *index);
size_t tw_capture_dependencies(tw_stream *s, void *const **out_handles);
tw_graph *tw_event_capture_graph(const tw_event *e); /* timeline.c: the capture e was last recorded in */

/* ---------------------------------------------------------------- gpu_activity.c
 * Over [now - window_ns, now]: the fraction of time one or more ops of the run ran on `device`
 * and the fraction its memory was busy (bytes at the HBM bandwidth), from the run's records. */
void tw_gpu_activity(int device, int64_t window_ns, double *busy_fraction, double *memory_fraction);

/* ---------------------------------------------------------------- api_cupti.c
 * CUPTI activity collection. The timeline calls these two while tw_cupti_collecting is set
 * (timeline lock held): each enqueue on the issuing thread (seq is the correlation id; op_kind
 * TW_OP_NONE for a graph replay) and each op record once its virtual times are known. The
 * adapters bracket the API calls they want named with enter/exit (cbid: CUPTI's). */
extern int tw_cupti_collecting;
void tw_cupti_on_enqueue(uint64_t seq, int op_kind);
void tw_cupti_on_op(const tw_record *rec);
void tw_cupti_api_enter(uint32_t cbid, bool driver);
void tw_cupti_api_exit(void);

/* ---------------------------------------------------------------- predict.c / channel.c
 * Duration cache keyed by the canonical descriptor; misses are answered in batches by the
 * coordinator over the run's unix socket (records.h wire), or by the spec floor without one. */
typedef struct tw_prediction_slot tw_prediction_slot;
tw_prediction_slot *tw_predict_lookup(const tw_desc *desc, const char *name); /* never NULL */
bool tw_predict_ready(const tw_prediction_slot *slot, int64_t *duration_ns, int *model);
void tw_predict_resolve_pending(void);     /* one batch round trip for all pending slots */
int tw_channel_predict(const tw_wire_desc *descs, const char *const *names, uint32_t count,
                       tw_prediction *out); /* 0 ok, -1 unavailable after retries */
const char *tw_channel_failure(void);      /* why the last request failed */

/* ---------------------------------------------------------------- collectives.c
 * Communicators and rendezvous entries shared by the run's processes (records.h
 * tw_coll_page). An op is opened at issue (mismatches end the run), its send data staged, its
 * arrival posted when the stream reaches it, and it starts at the latest arrival. */
typedef struct tw_coll_op {
    uint64_t comm_key;
    uint64_t op_key;              /* collective: sequence number (1..); p2p and splits: see api_nccl.c */
    uint32_t kind;                /* enum tw_coll_kind */
    uint32_t dtype;               /* ncclDataType_t */
    uint64_t count;
    int32_t root, peer;           /* root; p2p: root = sender rank, peer = receiver rank */
    uint32_t redop;
    uint32_t expected;            /* participants */
    int index;                    /* this participant's index: its rank; p2p: 0 sender, 1 receiver */
    uint64_t stage_bytes_per_rank;  /* staging to reserve per participant (0 = none) */
    const char *kernel_name;      /* TW_COLL_KERNEL: the kernel launched (count holds its name's
                                   * hash), for a mismatch's message */
} tw_coll_op;
typedef struct tw_coll_ref {      /* a participant's handle on an entry */
    uint32_t entry;
    int index;
    uint64_t comm_key, op_key;
} tw_coll_ref;

int tw_coll_comm_join(uint64_t key, int nranks, int rank, int device, char *why, size_t why_len);
void tw_coll_comm_wait_joined(uint64_t key);       /* blocks (an actor wait) until all ranks joined */
void tw_coll_comm_leave(uint64_t key);
int tw_coll_comm_device(uint64_t key, int rank);
int tw_coll_open(const tw_coll_op *op, tw_coll_ref *out);   /* TW_OK, TW_ERR_NOMEM; mismatch: fatal */
void *tw_coll_stage(const tw_coll_ref *ref, uint64_t *bytes); /* this participant's staging, or NULL */
void tw_coll_deposit(const tw_coll_ref *ref, int64_t aux);  /* staged (or nothing to stage) */
bool tw_coll_all_deposited(const tw_coll_ref *ref);
const void *tw_coll_staged(const tw_coll_ref *ref, int index);
int64_t tw_coll_aux(const tw_coll_ref *ref, int index);
bool tw_coll_arrive(const tw_coll_ref *ref, int64_t arrival_ns);  /* true: this arrival completed it */
bool tw_coll_start(const tw_coll_ref *ref, int64_t *start_ns);     /* false until all arrived */
void tw_coll_release(const tw_coll_ref *ref);
uint64_t tw_coll_completed_count(void);
uint32_t *tw_coll_progress_word(void);   /* bumped by every join, arrival and deposit */
bool tw_coll_any_dirty(void);      /* a process must recompute before the clock may jump */
const char *tw_coll_kind_name(int kind);
size_t tw_coll_describe_pending(char *out, size_t len);

/* collective_data.c: received data of host-backed buffers, written once every participant's
 * send data is staged; reads and writes of an overlapping range first wait for it. */
typedef struct tw_coll_result {
    tw_coll_ref ref;
    void *recv;
    uint64_t recv_bytes;
    uint32_t kind, dtype, redop;
    uint64_t count;
    int nranks, rank, root;
} tw_coll_result;
/* What a participant deposits beside its data: whether it staged any, and its pre-multiplied
 * sum scale (1 for the static operators). */
int64_t tw_coll_deposit_aux(bool has_data, double scale);
void tw_coll_expect_result(const tw_coll_result *result);
void tw_coll_materialize_range(const void *p, uint64_t bytes);
void tw_coll_materialize_ref(const tw_coll_ref *ref);   /* the op completed: write its results now */

/* reduce.c: NCCL's data types and reduction operators on host memory */
size_t tw_nccl_dtype_bytes(int dtype);
void tw_reduce(int dtype, int op, const double *scales, void *out, const void *const *inputs, int input_count,
               uint64_t count);
double tw_nccl_scalar(const void *p, int dtype);
void tw_nccl_store_scalar(void *p, int dtype, double value);

/* timeline.c: a collective op on a stream (one per stream and NCCL group): its members'
 * entries and durations; it starts when every member's rendezvous is complete. */
typedef struct tw_coll_member {
    tw_coll_ref ref;
    tw_prediction_slot *slot;     /* this member's duration (NULL: counted in the launch's p2p slot) */
} tw_coll_member;
typedef struct tw_coll_launch tw_coll_launch;
tw_coll_launch *tw_coll_launch_new(uint32_t member_count, uint32_t name_id);
void tw_coll_launch_set(tw_coll_launch *l, uint32_t i, const tw_coll_ref *ref, const tw_desc *desc);
void tw_coll_launch_set_p2p(tw_coll_launch *l, const tw_desc *desc); /* combined send/recv duration */
void tw_submit_collective(tw_stream *s, tw_coll_launch *l);
/* While s captures a graph, a collective becomes a node that bind(template) turns into a launch
 * at every replay; false when s is not capturing. */
bool tw_capture_collective(tw_stream *s, const void *coll_template,
                           tw_coll_launch *(*bind)(const void *coll_template));
/* kernel_sync.c: a kernel reaching into other processes' IPC memory is a collective among them */
void tw_submit_peer_kernel(tw_stream *s, const tw_desc *desc, const int32_t *peer_pids, int peer_count);
/* Recompute what can be computed now (the progress thread, after a rendezvous completed). */
void tw_timeline_progress(void);

/* waits.c: block the calling thread (no target) until ready(arg), re-checked whenever the
 * futex word changes and between slices; a deadlock check runs while it waits. */
void tw_wait_for(bool (*ready)(void *), void *arg, uint32_t *futex_word, const char *label);

/* ---------------------------------------------------------------- init.c
 * fork: each core file resets what a child must not share with its parent. */
void tw_names_after_fork(void);
void tw_trace_after_fork(void);
void tw_timeline_after_fork(void);
void tw_channel_after_fork(void);
void tw_coll_after_fork(void);

#endif
