/* cuFFT (cufft.h, cufftXt.h): plans as entries of a table (a cufftHandle is an int), and
 * each execution recorded as a TW_OP_FFT (n0, n1, n2, batch, rank) on the plan's stream.
 * Work-area sizes are the out-of-place scratch a transform of that size needs. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <cufft.h>
#include <cufftXt.h>

#include "dtype_map.h"
#include "tw_core.h"

#define TW_FFT_MAX_PLANS 4096

typedef struct fft_plan {
    bool used, made;
    int rank;
    int64_t n[3];
    int64_t batch;
    uint32_t dt_in, dt_out, dt_exec;  /* enum tw_dtype */
    cudaStream_t stream;
    int auto_allocate;
    void *work_area;
    size_t work_bytes;
} fft_plan;

static fft_plan g_plans[TW_FFT_MAX_PLANS];
static pthread_mutex_t g_plans_lock = PTHREAD_MUTEX_INITIALIZER;

static fft_plan *plan_get(cufftHandle h)
{
    if (h < 1 || h > TW_FFT_MAX_PLANS || !g_plans[h - 1].used)
        return NULL;
    return &g_plans[h - 1];
}

TW_EXPORT cufftResult cufftCreate(cufftHandle *handle)
{
    if (!handle)
        return CUFFT_INVALID_VALUE;
    pthread_mutex_lock(&g_plans_lock);
    for (int i = 0; i < TW_FFT_MAX_PLANS; i++) {
        if (!g_plans[i].used) {
            memset(&g_plans[i], 0, sizeof(g_plans[i]));
            g_plans[i].used = true;
            g_plans[i].auto_allocate = 1;
            pthread_mutex_unlock(&g_plans_lock);
            *handle = i + 1;
            return CUFFT_SUCCESS;
        }
    }
    pthread_mutex_unlock(&g_plans_lock);
    TW_ERROR("cufftCreate: all %d plans in use", TW_FFT_MAX_PLANS);
    return CUFFT_ALLOC_FAILED;
}

TW_EXPORT cufftResult cufftDestroy(cufftHandle handle)
{
    pthread_mutex_lock(&g_plans_lock);
    fft_plan *p = plan_get(handle);
    if (p)
        p->used = false;
    pthread_mutex_unlock(&g_plans_lock);
    return p ? CUFFT_SUCCESS : CUFFT_INVALID_PLAN;
}

TW_EXPORT cufftResult cufftSetStream(cufftHandle handle, cudaStream_t stream)
{
    fft_plan *p = plan_get(handle);
    if (!p)
        return CUFFT_INVALID_PLAN;
    p->stream = stream;
    return CUFFT_SUCCESS;
}

TW_EXPORT cufftResult cufftSetAutoAllocation(cufftHandle handle, int auto_allocate)
{
    fft_plan *p = plan_get(handle);
    if (!p)
        return CUFFT_INVALID_PLAN;
    p->auto_allocate = auto_allocate;
    return CUFFT_SUCCESS;
}

TW_EXPORT cufftResult cufftSetWorkArea(cufftHandle handle, void *work_area)
{
    fft_plan *p = plan_get(handle);
    if (!p)
        return CUFFT_INVALID_PLAN;
    p->work_area = work_area;
    return CUFFT_SUCCESS;
}

TW_EXPORT cufftResult cufftGetSize(cufftHandle handle, size_t *work_size)
{
    fft_plan *p = plan_get(handle);
    if (!p)
        return CUFFT_INVALID_PLAN;
    if (!work_size)
        return CUFFT_INVALID_VALUE;
    *work_size = p->work_bytes;
    return CUFFT_SUCCESS;
}

TW_EXPORT cufftResult cufftGetVersion(int *version)
{
    if (!version)
        return CUFFT_INVALID_VALUE;
    *version = CUFFT_VERSION;
    return CUFFT_SUCCESS;
}

TW_EXPORT cufftResult cufftGetProperty(libraryPropertyType type, int *value)
{
    if (!value)
        return CUFFT_INVALID_VALUE;
    switch (type) {
    case MAJOR_VERSION: *value = CUFFT_VER_MAJOR; return CUFFT_SUCCESS;
    case MINOR_VERSION: *value = CUFFT_VER_MINOR; return CUFFT_SUCCESS;
    case PATCH_LEVEL: *value = CUFFT_VER_PATCH; return CUFFT_SUCCESS;
    default: return CUFFT_INVALID_TYPE;
    }
}

/* cufftType -> (input, output) element types; false for an unknown type */
static bool fft_types(cufftType type, uint32_t *in, uint32_t *out)
{
    switch (type) {
    case CUFFT_R2C: *in = TW_DT_F32; *out = TW_DT_C64; return true;
    case CUFFT_C2R: *in = TW_DT_C64; *out = TW_DT_F32; return true;
    case CUFFT_C2C: *in = TW_DT_C64; *out = TW_DT_C64; return true;
    case CUFFT_D2Z: *in = TW_DT_F64; *out = TW_DT_C128; return true;
    case CUFFT_Z2D: *in = TW_DT_C128; *out = TW_DT_F64; return true;
    case CUFFT_Z2Z: *in = TW_DT_C128; *out = TW_DT_C128; return true;
    default: return false;
    }
}

static uint64_t plan_points(const fft_plan *p)
{
    uint64_t points = 1;
    for (int i = 0; i < p->rank; i++)
        points *= (uint64_t)p->n[i];
    return points;
}

/* The scratch an out-of-place pass needs: one batch of the complex side. */
static size_t plan_work_bytes(const fft_plan *p)
{
    uint32_t cbytes = tw_dtype_bytes(p->dt_in == TW_DT_C128 || p->dt_out == TW_DT_C128 ? TW_DT_C128 : TW_DT_C64);
    return (size_t)(plan_points(p) * (uint64_t)p->batch * cbytes);
}

static cufftResult make_plan(cufftHandle handle, int rank, const long long *n, long long batch,
                             uint32_t dt_in, uint32_t dt_out, uint32_t dt_exec, size_t *work_size)
{
    fft_plan *p = plan_get(handle);
    if (!p)
        return CUFFT_INVALID_PLAN;
    if (rank < 1 || rank > 3 || !n || batch < 1)
        return CUFFT_INVALID_SIZE;
    for (int i = 0; i < rank; i++)
        if (n[i] < 1)
            return CUFFT_INVALID_SIZE;
    p->rank = rank;
    for (int i = 0; i < 3; i++)
        p->n[i] = i < rank ? n[i] : 1;
    p->batch = batch;
    p->dt_in = dt_in;
    p->dt_out = dt_out;
    p->dt_exec = dt_exec;
    p->work_bytes = plan_work_bytes(p);
    p->made = true;
    if (work_size)
        *work_size = p->work_bytes;
    return CUFFT_SUCCESS;
}

static cufftResult make_plan_typed(cufftHandle handle, int rank, const long long *n, long long batch,
                                   cufftType type, size_t *work_size)
{
    uint32_t in, out;
    if (!fft_types(type, &in, &out))
        return CUFFT_INVALID_TYPE;
    return make_plan(handle, rank, n, batch, in, out, in == TW_DT_C128 || out == TW_DT_C128 ? TW_DT_F64 : TW_DT_F32,
                     work_size);
}

TW_EXPORT cufftResult cufftMakePlanMany64(cufftHandle plan, int rank, long long *n, long long *inembed,
                                          long long istride, long long idist, long long *onembed,
                                          long long ostride, long long odist, cufftType type,
                                          long long batch, size_t *work_size)
{
    return make_plan_typed(plan, rank, n, batch, type, work_size);
}

TW_EXPORT cufftResult cufftMakePlanMany(cufftHandle plan, int rank, int *n, int *inembed, int istride,
                                        int idist, int *onembed, int ostride, int odist,
                                        cufftType type, int batch, size_t *work_size)
{
    long long n64[3] = {1, 1, 1};
    for (int i = 0; n && i < rank && i < 3; i++)
        n64[i] = n[i];
    return make_plan_typed(plan, rank, n ? n64 : NULL, batch, type, work_size);
}

TW_EXPORT cufftResult cufftMakePlan1d(cufftHandle plan, int nx, cufftType type, int batch, size_t *ws)
{
    long long n[1] = {nx};
    return make_plan_typed(plan, 1, n, batch, type, ws);
}

TW_EXPORT cufftResult cufftMakePlan2d(cufftHandle plan, int nx, int ny, cufftType type, size_t *ws)
{
    long long n[2] = {nx, ny};
    return make_plan_typed(plan, 2, n, 1, type, ws);
}

TW_EXPORT cufftResult cufftMakePlan3d(cufftHandle plan, int nx, int ny, int nz, cufftType type, size_t *ws)
{
    long long n[3] = {nx, ny, nz};
    return make_plan_typed(plan, 3, n, 1, type, ws);
}

/* The one-call planners: create, then make; on failure nothing is left behind. */
static cufftResult plan_new(cufftHandle *plan, int rank, const long long *n, long long batch, cufftType type)
{
    if (!plan)
        return CUFFT_INVALID_VALUE;
    cufftResult r = cufftCreate(plan);
    if (r != CUFFT_SUCCESS)
        return r;
    r = make_plan_typed(*plan, rank, n, batch, type, NULL);
    if (r != CUFFT_SUCCESS)
        cufftDestroy(*plan);
    return r;
}

TW_EXPORT cufftResult cufftPlan1d(cufftHandle *plan, int nx, cufftType type, int batch)
{
    long long n[1] = {nx};
    return plan_new(plan, 1, n, batch, type);
}

TW_EXPORT cufftResult cufftPlan2d(cufftHandle *plan, int nx, int ny, cufftType type)
{
    long long n[2] = {nx, ny};
    return plan_new(plan, 2, n, 1, type);
}

TW_EXPORT cufftResult cufftPlan3d(cufftHandle *plan, int nx, int ny, int nz, cufftType type)
{
    long long n[3] = {nx, ny, nz};
    return plan_new(plan, 3, n, 1, type);
}

TW_EXPORT cufftResult cufftPlanMany(cufftHandle *plan, int rank, int *n, int *inembed, int istride,
                                    int idist, int *onembed, int ostride, int odist, cufftType type,
                                    int batch)
{
    long long n64[3] = {1, 1, 1};
    for (int i = 0; n && i < rank && i < 3; i++)
        n64[i] = n[i];
    return plan_new(plan, rank, n ? n64 : NULL, batch, type);
}

TW_EXPORT cufftResult cufftGetSizeMany64(cufftHandle plan, int rank, long long *n, long long *inembed,
                                         long long istride, long long idist, long long *onembed,
                                         long long ostride, long long odist, cufftType type,
                                         long long batch, size_t *work_size)
{
    fft_plan probe = {0};
    uint32_t in, out;
    if (!fft_types(type, &in, &out))
        return CUFFT_INVALID_TYPE;
    if (rank < 1 || rank > 3 || !n || batch < 1 || !work_size)
        return CUFFT_INVALID_VALUE;
    probe.rank = rank;
    for (int i = 0; i < rank; i++)
        probe.n[i] = n[i];
    probe.batch = batch;
    probe.dt_in = in;
    probe.dt_out = out;
    *work_size = plan_work_bytes(&probe);
    return CUFFT_SUCCESS;
}

TW_EXPORT cufftResult cufftXtMakePlanMany(cufftHandle plan, int rank, long long *n, long long *inembed,
                                          long long istride, long long idist, cudaDataType in_type,
                                          long long *onembed, long long ostride, long long odist,
                                          cudaDataType out_type, long long batch, size_t *work_size,
                                          cudaDataType exec_type)
{
    uint32_t in = tw_dtype_from_cuda(in_type), out = tw_dtype_from_cuda(out_type);
    /* half-precision complex (CUDA_C_16F/BF) has no tw_dtype: carry the real half type */
    if (in == TW_DT_UNKNOWN)
        in = in_type == CUDA_C_16F ? TW_DT_F16 : in_type == CUDA_C_16BF ? TW_DT_BF16 : in;
    if (out == TW_DT_UNKNOWN)
        out = out_type == CUDA_C_16F ? TW_DT_F16 : out_type == CUDA_C_16BF ? TW_DT_BF16 : out;
    if (in == TW_DT_UNKNOWN || out == TW_DT_UNKNOWN)
        return CUFFT_INVALID_TYPE;
    return make_plan(plan, rank, n, batch, in, out, tw_dtype_from_cuda(exec_type), work_size);
}

static cufftResult exec_plan(cufftHandle handle, uint32_t name_id, int direction)
{
    fft_plan *p = plan_get(handle);
    if (!p || !p->made)
        return CUFFT_INVALID_PLAN;
    if (!p->auto_allocate && !p->work_area && p->work_bytes)
        return CUFFT_NO_WORKSPACE; /* as cuFFT: auto allocation off and no work area given */
    tw_stream *s = tw_stream_resolve(p->stream);
    tw_desc d = {0};
    d.kind = TW_OP_FFT;
    d.device = (uint32_t)tw_stream_device(s);
    d.dtype_a = p->dt_in;
    d.dtype_out = p->dt_out;
    d.dtype_compute = p->dt_exec;
    if (direction == CUFFT_INVERSE)
        d.flags |= TW_FLAG_BACKWARD;
    d.dims[0] = p->n[0];
    d.dims[1] = p->n[1];
    d.dims[2] = p->n[2];
    d.dims[3] = p->batch;
    d.dims[4] = p->rank;
    uint64_t points = plan_points(p) * (uint64_t)p->batch;
    d.bytes = points * (tw_dtype_bytes(p->dt_in) + tw_dtype_bytes(p->dt_out));
    d.name_id = name_id;
    tw_submit(s, &d);
    return CUFFT_SUCCESS;
}

#define FFT_NAME(str)                                                                          \
    ({                                                                                         \
        static uint32_t id_;                                                                   \
        uint32_t v_ = __atomic_load_n(&id_, __ATOMIC_RELAXED);                                 \
        if (TW_UNLIKELY(!v_)) {                                                                \
            v_ = tw_name_intern(str);                                                          \
            __atomic_store_n(&id_, v_, __ATOMIC_RELAXED);                                      \
        }                                                                                      \
        v_;                                                                                    \
    })

TW_EXPORT cufftResult cufftXtExec(cufftHandle plan, void *in, void *out, int direction)
{
    return exec_plan(plan, FFT_NAME("cufftXtExec"), direction);
}

TW_EXPORT cufftResult cufftExecC2C(cufftHandle plan, cufftComplex *in, cufftComplex *out, int direction)
{
    return exec_plan(plan, FFT_NAME("cufftExecC2C"), direction);
}

TW_EXPORT cufftResult cufftExecZ2Z(cufftHandle plan, cufftDoubleComplex *in, cufftDoubleComplex *out,
                                   int direction)
{
    return exec_plan(plan, FFT_NAME("cufftExecZ2Z"), direction);
}

TW_EXPORT cufftResult cufftExecR2C(cufftHandle plan, cufftReal *in, cufftComplex *out)
{
    return exec_plan(plan, FFT_NAME("cufftExecR2C"), CUFFT_FORWARD);
}

TW_EXPORT cufftResult cufftExecD2Z(cufftHandle plan, cufftDoubleReal *in, cufftDoubleComplex *out)
{
    return exec_plan(plan, FFT_NAME("cufftExecD2Z"), CUFFT_FORWARD);
}

TW_EXPORT cufftResult cufftExecC2R(cufftHandle plan, cufftComplex *in, cufftReal *out)
{
    return exec_plan(plan, FFT_NAME("cufftExecC2R"), CUFFT_INVERSE);
}

TW_EXPORT cufftResult cufftExecZ2D(cufftHandle plan, cufftDoubleComplex *in, cufftDoubleReal *out)
{
    return exec_plan(plan, FFT_NAME("cufftExecZ2D"), CUFFT_INVERSE);
}
