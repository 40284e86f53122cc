/* timewarp shared structures: the run's clock page, the per-process trace file and the
 * prediction wire messages. One definition for C (the shim) and Python (cffi reads this file:
 * keep it to fixed-width integer fields, enums and integer #defines; the loader drops the
 * include guard and #include lines). */
#ifndef TIMEWARP_RECORDS_H
#define TIMEWARP_RECORDS_H
#include <stdint.h>

#define TW_ABI_VERSION 2

/* ---- clock page: <run>/clock.page, mmap'd MAP_SHARED by every process of a host ----
 * Virtual time is piecewise linear in host time: within the current segment
 *     virtual = base_virtual_ns + (host_mono - base_host_ns) * rate_ppm / 1e6.
 * Writers (a jump, the emulator pausing the clock, the governor changing the rate) start a new
 * segment at "now" under `lock`, with `seq` odd while they write (readers retry); a new segment
 * starts where the old one is at that moment, so the clock never goes back. shim/src/clock_page.h
 * is the one implementation of that protocol (the shim and the governor use it). */
#define TW_CLOCK_MAGIC 0x4b434c4357544954
#define TW_RATE_ONE_PPM 1000000
typedef struct tw_clock_page {
    uint64_t magic;
    uint32_t abi_version;
    uint32_t seq;                    /* seqlock: odd while a segment is being written */
    uint32_t lock;                   /* writers: 0 free, else the holder's pid (a dead holder is taken over) */
    uint32_t pause_depth;            /* run-wide pauses in progress (the clock stands still) */
    int64_t base_host_ns;            /* the current segment's start, host CLOCK_MONOTONIC */
    int64_t base_virtual_ns;         /* ... and virtual time there */
    uint32_t rate_ppm;               /* virtual ns per host ns x 1e6 in this segment (0 while paused) */
    uint32_t cpu_rate_ppm;           /* the rate outside pauses: the governor's dilation of CPU work */
    int64_t realtime_minus_mono_ns;  /* virtual realtime = virtual mono + this (fixed at run start) */
    int64_t run_start_mono_ns;       /* host CLOCK_MONOTONIC when the run started */
    uint64_t jump_count;             /* number of forward jumps taken */
    int64_t jumped_ns_total;         /* sum of all jumps */
    int64_t paused_host_ns_total;    /* host time the clock stood still for the emulator's own work */
    int64_t pause_begin_host_ns;     /* host CLOCK_MONOTONIC when the current pause began */
    uint32_t cpu_speed_ppm;          /* --cpu-speed: the emulated host's CPU time per unit of this one's */
    uint32_t host_cores;             /* --host-cores: runnable threads the emulated host runs at once */
    int64_t dilated_ns_total;        /* virtual time the governor took off running phases (< 0: added) */
    uint64_t governor_samples;       /* rate updates so far */
    int32_t governor_pid;            /* the governor process, 0 = none (rate stays at cpu_speed) */
    uint32_t sleepers_on_pause;      /* 1: a waiter sized its sleep while the clock stood still: wake it on resume */
    uint64_t reserved[4];
} tw_clock_page;

/* ---- actor table: <run>/actors.page, created zeroed by the first shim process (all-zero is
 * the valid empty table), mmap'd MAP_SHARED by every process of the run. One slot per thread
 * that has made an interposed call; the jump rule of DESIGN §3 reads it (shim/src/actors.c). */
#define TW_ACTOR_SLOTS 512
#define TW_ACTOR_LABEL_LEN 24
enum tw_actor_state {
    TW_ACTOR_FREE = 0,
    TW_ACTOR_RUNNING = 1,
    TW_ACTOR_BLOCKED = 2,          /* blocked until target_ns (or a real event) */
    TW_ACTOR_BLOCKED_FOREVER = 3,  /* blocked with no target: only a real event wakes it */
    TW_ACTOR_SPINNING = 4          /* busy-polling a clock: counts as blocked with no target */
};
typedef struct tw_actor {
    int32_t pid;                   /* 0 = free slot */
    int32_t tid;
    uint32_t state;                /* enum tw_actor_state */
    uint32_t flags;                /* TW_ACTOR_F_* */
    int64_t target_ns;             /* run virtual time (host mono + shared offset) to wake at */
    int64_t since_host_ns;         /* host CLOCK_MONOTONIC of the last state change */
    uint64_t heartbeat;            /* waits entered so far */
    char label[24];                /* what it waits in: "nanosleep", "poll", "gpu:sync", ... */
    uint64_t probe_cpu_ns;         /* running: its CPU time when a jumper last read it */
    int64_t probe_host_ns;         /* host CLOCK_MONOTONIC since which probe_cpu_ns has not moved */
} tw_actor;
#define TW_ACTOR_F_SIGNAL 1        /* the wait returns EINTR on the wake signal: signal it on a jump */
#define TW_ACTOR_F_FD 2            /* waits on file descriptors (poll, select, epoll) */
#define TW_ACTOR_F_EPOCH 4         /* a sleep or GPU wait: only a jump (or a signal) ends it */
/* A process of the run that runs without the shim (a static compiler, a child started with a
 * cleared environment): emulate lists them; while one works, the clock does not jump. */
#define TW_OUTSIDERS 32
typedef struct tw_outsider {
    int32_t pid;                   /* 0 = none */
    uint32_t reserved;
    uint64_t probe_cpu_ns;         /* its CPU time when a jumper last read it */
    int64_t probe_host_ns;         /* since when that has not moved */
} tw_outsider;
typedef struct tw_actor_table {
    uint32_t epoch;                /* futex word: bumped by every jump and every kick */
    uint32_t generation;           /* bumped by every state change (quiescence check) */
    uint32_t high_water;           /* every used slot index is below this */
    uint32_t deadlock;             /* 1 once a deadlock has been reported */
    uint64_t jumps;                /* jumps taken under the causal rule */
    uint32_t outsiders;            /* live processes of the run without a shim (emulate counts) */
    uint32_t wake_pause;           /* 1: the clock stands still until a thread woken by a jump acts */
    uint64_t refusals[12];         /* TW_REFUSAL_COUNT: why a blocked thread's jump did not happen */
    tw_outsider outsider[32];      /* TW_OUTSIDERS: processes of the run without the shim (emulate) */
    tw_actor slots[512];           /* TW_ACTOR_SLOTS */
} tw_actor_table;
/* Why a jump was refused (actors.c tw_actors_try_jump), counted per reason in refusals[]. */
enum tw_jump_refusal {
    TW_REFUSED_RUNNING = 0,        /* another thread ran within the last 20 ms */
    TW_REFUSED_RUNNABLE = 1,       /* another thread has run longer, and is runnable in the kernel */
    TW_REFUSED_GETS_CPU = 2,       /* ... asleep in the kernel now, but it got CPU within 20 ms */
    TW_REFUSED_STARTING = 3,       /* a thread or child process is starting */
    TW_REFUSED_NO_TARGET = 4,      /* every thread waits with no target */
    TW_REFUSED_CATCHING_UP = 5,    /* a process recomputes its timeline after a rendezvous */
    TW_REFUSED_REACHED = 6,        /* a target is reached: its thread is woken, and runs next */
    TW_REFUSED_NOT_QUIESCENT = 7,  /* a blocked thread was woken by a real event (it is runnable) */
    TW_REFUSED_SELF = 8,           /* the caller itself counts as running (spinning, say) */
    TW_REFUSED_OUTSIDER = 9,       /* a process of the run without the shim works */
    TW_REFUSED_PAUSED = 10,        /* the clock stands still for the emulator's own work (a prediction) */
    TW_REFUSAL_COUNT = 12
};

/* ---- collectives: <run>/collectives.page, created zeroed by the first shim process that
 * joins a communicator of more than one rank (all-zero is the valid empty page), mmap'd
 * MAP_SHARED by every process of the run (shim/src/collectives.c). A communicator is a record
 * keyed by its unique id; each collective, point-to-point pair and split is a rendezvous entry
 * keyed by (communicator, op): ranks post their arrival (the virtual time their stream reaches
 * the op) and their send data (host-backed buffers), and the entry completes when every
 * participant has arrived: start = the latest arrival. Cross-host runs will complete the same
 * entries through the coordinator. */
#define TW_COLL_MAGIC 0x4c4c4f4357544954
#define TW_COLL_VERSION 1
#define TW_COLL_MAX_RANKS 64
#define TW_COLL_COMMS 256
#define TW_COLL_ENTRIES 2048
#define TW_COLL_PROCS 256
#define TW_COLL_DATA_BYTES 268435456     /* <run>/collectives.data: staging for host-backed data */
enum tw_coll_kind {
    TW_COLL_NONE = 0,
    TW_COLL_ALLREDUCE = 1, TW_COLL_ALLGATHER = 2, TW_COLL_REDUCESCATTER = 3, TW_COLL_BROADCAST = 4,
    TW_COLL_REDUCE = 5, TW_COLL_SEND = 6, TW_COLL_RECV = 7, TW_COLL_ALLTOALL = 8, TW_COLL_GATHER = 9,
    TW_COLL_SCATTER = 10,
    TW_COLL_P2P = 11,          /* an entry that pairs one send with one receive */
    TW_COLL_SPLIT = 12,        /* ncclCommSplit: aux = (color << 32) | key per rank */
    TW_COLL_KERNEL = 13        /* a kernel launch that synchronises GPUs over IPC memory */
};
typedef struct tw_coll_comm {
    uint64_t key;                  /* hash of the unique id; 0 = free */
    uint32_t nranks;
    uint32_t joined;               /* ranks that have called init */
    uint32_t left;                 /* ranks that have destroyed or aborted it */
    uint32_t reserved;
    int32_t pid[64];               /* TW_COLL_MAX_RANKS: the process of each rank, 0 = not yet */
    int32_t device[64];
} tw_coll_comm;
typedef struct tw_coll_entry {
    uint64_t comm_key;             /* 0 = free */
    uint64_t op_key;               /* collective: sequence number; p2p / split: see collectives.c */
    uint32_t kind;                 /* enum tw_coll_kind */
    uint32_t dtype;                /* NCCL's ncclDataType_t */
    uint64_t count;                /* elements, as the API counts them */
    int32_t root;                  /* root rank, or the sender of a p2p pair */
    int32_t peer;                  /* the receiver of a p2p pair */
    uint32_t redop;                /* NCCL's ncclRedOp_t */
    uint32_t expected;             /* participants */
    uint32_t arrived;              /* participants whose arrival is posted */
    uint32_t deposited;            /* participants whose send data is staged (or who have none) */
    uint32_t released;             /* participants done with the entry: freed when all are */
    uint32_t created_by_rank;
    uint64_t arrived_mask;
    uint64_t deposited_mask;
    uint64_t released_mask;
    int64_t start_ns;              /* run axis: the latest arrival, once all arrived */
    uint64_t data_offset;          /* staging area in collectives.data, stride bytes per rank */
    uint64_t data_stride;          /* 0 = no data staged */
    int64_t created_host_ns;       /* host CLOCK_MONOTONIC when the first participant created it */
    int64_t arrival_ns[64];        /* TW_COLL_MAX_RANKS, run axis */
    int64_t aux[64];               /* per-rank values of the op (split color/key, dtype/count seen) */
} tw_coll_entry;
typedef struct tw_coll_proc {
    int32_t pid;                   /* 0 = free */
    uint32_t dirty;                /* futex word: bumped when a rendezvous of this process completes */
    uint32_t serviced;             /* the dirty value its progress thread last caught up with */
    uint32_t paused;               /* 1 while the run's clock is paused for its catch-up */
} tw_coll_proc;
typedef struct tw_coll_page {
    uint64_t magic;                /* TW_COLL_MAGIC once initialised (by CAS from 0) */
    uint32_t version;
    uint32_t lock;                 /* 0 free, else the holder's pid (a dead holder is taken over) */
    uint32_t progress;             /* futex word: bumped by every join, arrival, deposit and release */
    uint32_t proc_high_water;      /* every used procs[] index is below this */
    uint64_t data_head;            /* next staging byte (wraps at TW_COLL_DATA_BYTES) */
    uint64_t completed;            /* rendezvous completed so far */
    uint32_t error;                /* 1 once a mismatch or a dead participant was reported */
    uint32_t reserved32;
    char error_text[512];          /* what went wrong, for emulate's ended_by */
    uint64_t reserved[8];
    tw_coll_proc procs[256];       /* TW_COLL_PROCS */
    tw_coll_comm comms[256];       /* TW_COLL_COMMS */
    tw_coll_entry entries[2048];   /* TW_COLL_ENTRIES */
} tw_coll_page;

/* ---- device memory across processes: <run>/devices.page, created zeroed by the first shim
 * (all-zero is the empty table), mmap'd MAP_SHARED by every process of the run (shim/src/ipc.c).
 * Each process that holds device memory has a slot with its bytes in use per device, its
 * context's reserve included: a device's free memory is its total less every live process's
 * use, so two processes on one virtual GPU share its capacity and over-subscription is OOM. */
#define TW_USAGE_PROCS 256
#define TW_USAGE_DEVICES 64
typedef struct tw_device_usage {
    int32_t pid;                   /* 0 = free slot */
    uint32_t reserved;
    uint64_t used_bytes[64];       /* TW_USAGE_DEVICES */
} tw_device_usage;
typedef struct tw_devices_page {
    uint32_t lock;                 /* 0 free, else the holder's pid (a dead holder is taken over) */
    uint32_t high_water;           /* every used slot index is below this */
    uint64_t reserved[7];
    tw_device_usage procs[256];    /* TW_USAGE_PROCS */
} tw_devices_page;

/* ---- operation kinds: what a GPU-timeline op or a prediction descriptor is ---- */
enum tw_op_kind {
    TW_OP_NONE = 0,
    TW_OP_KERNEL = 1,        /* a __global__ function launch (runtime or driver API); dims[0] =
                              * bytes its pointer arguments reach (to their allocations' ends),
                              * dims[1] = enum tw_described (how `bytes` was found) */
    TW_OP_MEMCPY = 2,        /* dims[0] = copy kind (TW_COPY_*) */
    TW_OP_MEMSET = 3,
    TW_OP_GEMM = 4,          /* cuBLAS / cuBLASLt: dims = m, n, k, batch, lda, ldb, ldc */
    TW_OP_CONV = 5,          /* cuDNN conv: dims = n, c, h, w, k, r, s, groups; flags: TW_CONV_* */
    TW_OP_ATTENTION = 6,     /* cuDNN SDPA, FlashAttention kernels: dims = batch, heads_q, heads_kv,
                              * seq_q, seq_kv (the longest), head_dim, total_q, total_kv (tokens over
                              * the batch, 0 = batch x seq); flops counts the masked work exactly */
    TW_OP_FFT = 7,           /* dims = n0, n1, n2, batch, rank */
    TW_OP_SOLVER = 8,        /* dims = m, n, nrhs, batch; name says the routine */
    TW_OP_COLLECTIVE = 9,    /* dims = ranks, count, (p2p) bytes received, peers, tw_coll_algorithm,
                              * CTAs; name says the collective (an all-reduce kernel: its own name) */
    TW_OP_LIBRARY = 10,      /* any other library call recorded by name and bytes */
    TW_OP_EVENT_RECORD = 11, /* timeline markers: zero duration */
    TW_OP_EVENT_WAIT = 12,
    TW_OP_HOST_FUNC = 13,    /* cudaLaunchHostFunc / stream callbacks */
    TW_OP_KIND_COUNT = 14
};

/* How a collective runs (TW_OP_COLLECTIVE dims[4]): NCCL's own choice, or an all-reduce kernel
 * that writes into its peers' buffers (vLLM's custom all-reduce, FlashInfer's Lamport all-reduce)
 * in one exchange phase or two (reduce-scatter, then all-gather), or through multicast memory. */
enum tw_coll_algorithm {
    TW_COLL_ALGO_NCCL = 0,
    TW_COLL_ALGO_IPC_ONESHOT = 1,
    TW_COLL_ALGO_IPC_TWOSHOT = 2,
    TW_COLL_ALGO_IPC_MULTIMEM = 3  /* torch symmetric memory: reduce in the NVSwitch, store to all */
};

enum tw_copy_kind {
    TW_COPY_H2D_PAGEABLE = 1,
    TW_COPY_H2D_PINNED = 2,
    TW_COPY_D2H_PAGEABLE = 3,
    TW_COPY_D2H_PINNED = 4,
    TW_COPY_D2D = 5,
    TW_COPY_H2H = 6,
    TW_COPY_PEER = 7
};

/* element types as predictors see them (independent of each vendor's enum numbering) */
enum tw_dtype {
    TW_DT_UNKNOWN = 0, TW_DT_F64 = 1, TW_DT_F32 = 2, TW_DT_TF32 = 3, TW_DT_F16 = 4,
    TW_DT_BF16 = 5, TW_DT_F8E4M3 = 6, TW_DT_F8E5M2 = 7, TW_DT_I8 = 8, TW_DT_I32 = 9,
    TW_DT_C64 = 10, TW_DT_C128 = 11, TW_DT_I64 = 12, TW_DT_F4 = 13
};

#define TW_FLAG_TRANS_A 0x1
#define TW_FLAG_TRANS_B 0x2
#define TW_FLAG_CAUSAL 0x4
#define TW_FLAG_BACKWARD_DATA 0x8
#define TW_FLAG_BACKWARD_FILTER 0x10
#define TW_FLAG_BIAS_EPILOGUE 0x20
#define TW_FLAG_GELU_EPILOGUE 0x40
#define TW_FLAG_COOPERATIVE 0x80
#define TW_FLAG_BACKWARD 0x100
#define TW_FLAG_PAGED_KV 0x200   /* attention reading a paged KV cache */
#define TW_FLAG_RENDEZVOUS 0x400      /* record of an op that met other processes' ops (collectives,
                                         kernels through peers' memory): addr = the rendezvous' id
                                         (the same on every participant), value = this one's arrival */
#define TW_FLAG_BESIDE_COLLECTIVE 0x800 /* record of a kernel slowed by a collective running on its
                                           GPU (contention.c): value = the ns it was slowed by */

/* How a kernel launch's `bytes` were found (dims[1] of a TW_OP_KERNEL descriptor). */
enum tw_described {
    TW_DESCRIBED_NONE = 0,       /* no parameter layout: only the launch shape is known */
    TW_DESCRIBED_THREADS = 1,    /* pointers found, no element count: capped per launched thread */
    TW_DESCRIBED_COUNT = 2,      /* pointers capped by an element count among the parameters */
    TW_DESCRIBED_FAMILY = 3      /* the kernel's family decoded its arguments (kernel_shapes.c) */
};

/* A prediction descriptor: everything a predictor may use. Canonical (no pointers, no
 * addresses) so that it can key a cache. The kernel or routine name travels beside it. */
typedef struct tw_desc {
    uint32_t kind;            /* enum tw_op_kind */
    uint32_t device;          /* device ordinal (predictors may ignore) */
    uint32_t dtype_a;         /* enum tw_dtype: input element type */
    uint32_t dtype_b;
    uint32_t dtype_out;
    uint32_t dtype_compute;
    uint32_t flags;           /* TW_FLAG_* */
    uint32_t smem_bytes;      /* dynamic shared memory of a launch */
    uint32_t grid[3];
    uint32_t block[3];
    uint32_t param_bytes;     /* size of the kernel's parameter block, when known */
    uint32_t pointer_params;  /* parameters that point into device allocations */
    int64_t dims[8];          /* per-kind meaning, see enum tw_op_kind */
    uint64_t bytes;           /* bytes moved (copies, memsets) or referenced (kernels) */
    uint64_t flops;           /* when the caller knows it (libraries); 0 = derive */
    uint32_t name_id;         /* process-local name id; the name itself travels on the wire */
    uint32_t reserved;
} tw_desc;

/* Which model answered a prediction. */
enum tw_model {
    TW_MODEL_NONE = 0,
    TW_MODEL_ROOFLINE = 1,
    TW_MODEL_TABLE = 2,
    TW_MODEL_XGB = 3,
    TW_MODEL_FLOOR = 4,       /* no coordinator reachable: the spec's per-launch floor */
    TW_MODEL_REAL = 5         /* a real duration substituted (validate's ablation) */
};

/* ---- per-process trace: <run>/proc/<pid>.trace, a header then fixed-size records ---- */
#define TW_TRACE_MAGIC 0x4543415254575457
enum tw_record_kind {
    TW_REC_EMPTY = 0,         /* slot claimed but not written (crash mid-write): skip */
    TW_REC_GPU_OP = 1,        /* an op on a virtual stream: op_kind says which */
    TW_REC_API = 2,           /* a CPU-side API call span on a thread */
    TW_REC_JUMP = 3,          /* virtual time jumped: begin = from, end = to */
    TW_REC_ALLOC = 4,         /* device memory: bytes, addr; value = bytes in use after */
    TW_REC_FREE = 5,
    TW_REC_UNIMPLEMENTED = 6, /* a call to an API the shim does not implement */
    TW_REC_STREAM = 7,        /* stream created: stream_id, value = priority */
    TW_REC_GRAPH_LAUNCH = 8,  /* graph_id launched: begin/end of its replay on the stream */
    TW_REC_WAIT = 9,          /* a thread blocked on the GPU or a sleep: begin = issue, end = wake */
    TW_REC_MARK = 10          /* a named instant (process start/exit, phase markers) */
};

typedef struct tw_record {
    uint16_t kind;            /* enum tw_record_kind; written last */
    uint16_t op_kind;         /* enum tw_op_kind for GPU ops; API id for TW_REC_API */
    uint16_t device;
    uint16_t model;           /* enum tw_model that predicted the duration */
    uint32_t tid;             /* OS thread id of the issuing thread */
    uint32_t stream_id;       /* process-local stream id: 0 = legacy default, 1 = per-thread default */
    uint32_t name_id;         /* into <pid>.names */
    uint32_t graph_id;        /* nonzero: op replayed from this graph */
    uint64_t seq;             /* per-process issue order (correlation id); a WAIT: the seq of
                               * the latest op issued when it began */
    int64_t issue_ns;         /* virtual time the CPU issued it */
    int64_t begin_ns;         /* GPU ops: start; API/wait: entry */
    int64_t end_ns;
    uint32_t grid[3];
    uint32_t block[3];
    uint32_t smem_bytes;
    uint32_t flags;
    uint64_t bytes;
    uint64_t flops;
    uint64_t addr;            /* allocation address, or the stream handle */
    int64_t value;            /* kind-specific: bytes in use, priority, copy kind, ns slowed, ... */
    int64_t dims[4];          /* first dims of the descriptor (m, n, k, batch for GEMMs) */
} tw_record;                  /* 152 bytes */

typedef struct tw_trace_header {
    uint64_t magic;
    uint32_t abi_version;
    uint32_t record_bytes;    /* sizeof(tw_record) */
    uint64_t record_count;    /* slots claimed; readers skip TW_REC_EMPTY */
    int32_t pid;
    int32_t ppid;
    int64_t start_virtual_ns;
    int64_t start_wall_ns;    /* host CLOCK_REALTIME at process start */
    int64_t exit_virtual_ns;  /* 0 while running or after a crash */
    int32_t exit_status;
    int32_t exit_signal;      /* nonzero if a fatal signal ended it */
    uint64_t reserved[6];
} tw_trace_header;

#define TW_TRACE_HEADER_BYTES 4096

/* ---- prediction wire (shim <-> coordinator over the run's unix socket) ----
 * request:  tw_wire_header{type=TW_MSG_PREDICT, count=N} then N x (tw_wire_desc, name bytes[name_len]),
 *           packed back to back (no padding after the name)
 * reply:    tw_wire_header{type=TW_MSG_PREDICTIONS, count=N} then N x tw_prediction */
#define TW_WIRE_MAGIC 0x57544d47
enum tw_msg_type {
    TW_MSG_HELLO = 1,         /* count = 1; payload: tw_hello; no reply */
    TW_MSG_PREDICT = 2,
    TW_MSG_PREDICTIONS = 3,
    TW_MSG_BYE = 4,
    TW_MSG_ERROR = 5          /* payload: utf-8 text; per batch, the connection stays open */
};

typedef struct tw_wire_header {
    uint32_t magic;
    uint32_t type;            /* enum tw_msg_type */
    uint32_t count;
    uint32_t payload_bytes;   /* bytes following this header */
} tw_wire_header;

typedef struct tw_wire_desc {
    tw_desc desc;
    uint32_t name_len;        /* bytes of name following (not NUL-terminated) */
    uint32_t reserved;
} tw_wire_desc;

typedef struct tw_hello {
    int32_t pid;
    int32_t ppid;
    uint32_t abi_version;
    uint32_t reserved;
} tw_hello;

/* How an op shares its GPU (predictors/contention.py): a collective's SM share (per mille, bits
 * 0-15) and HBM share (per mille, bits 16-30); for other ops TW_CONTENTION_MEMORY_BOUND when
 * bandwidth, not math, bounds it. The timeline stretches kernels that run beside a collective. */
#define TW_CONTENTION_MEMORY_BOUND 0x80000000u

typedef struct tw_prediction {
    int64_t duration_ns;
    uint32_t model;           /* enum tw_model */
    uint32_t contention;
} tw_prediction;

#endif
