/* Driver API: modules, libraries, functions, occupancy and launches, as adapters onto the
 * launch registry (launch.c) and the cubin reader (fatbin.c). CUmodule and CUlibrary are
 * this file's records; CUfunction and CUkernel are the registry's tw_kernel pointers. The
 * launch entry points are the hot path: no lock and no allocation there. */
#define __CUDA_API_VERSION_INTERNAL 1
#include <cuda.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tw_core.h"


#define MODULE_MAGIC 0x4d4f444cu   /* "MODL" */
#define LIBRARY_MAGIC 0x4c494252u  /* "LIBR" */
#define DEFAULT_REGS 32            /* when the cubin does not say (PTX-only images) */

typedef struct drv_global {
    char *name;
    void *ptr;
    size_t bytes;
} drv_global;

typedef struct drv_module {
    uint32_t magic;
    void *core;                /* launch.c's module handle */
    void *image;               /* our copy: attributes and globals are read from it */
    uint64_t image_bytes;
    drv_global *globals;
    uint32_t global_count;
    void *library;             /* the drv_library that owns it, if loaded through one */
} drv_module;

typedef struct drv_library {
    uint32_t magic;
    drv_module *module;
} drv_library;

/* Per-function state the API can set (and the image it came from). Cold: found under a
 * lock by cuFunc*Attribute and friends, never by the launch path. */
typedef struct drv_func {
    const tw_kernel *kernel;
    drv_module *module;        /* NULL: a runtime-registered kernel */
    int max_dynamic_smem;      /* -1 = default */
    int carveout;
    int non_portable_cluster;
    int cache_config;
} drv_func;

static pthread_mutex_t module_lock = PTHREAD_MUTEX_INITIALIZER;
static drv_func *funcs;
static uint32_t func_count, func_capacity;

static drv_func *func_find_locked(const tw_kernel *k, bool create)
{
    for (uint32_t i = 0; i < func_count; i++)
        if (funcs[i].kernel == k)
            return &funcs[i];
    if (!create)
        return NULL;
    if (func_count == func_capacity) {
        uint32_t capacity = func_capacity ? func_capacity * 2 : 64;
        drv_func *grown = realloc(funcs, capacity * sizeof *grown);
        if (grown == NULL)
            return NULL;
        funcs = grown;
        func_capacity = capacity;
    }
    drv_func *f = &funcs[func_count++];
    *f = (drv_func){.kernel = k, .max_dynamic_smem = -1, .carveout = -1};
    return f;
}

static drv_module *as_module(CUmodule hmod)
{
    drv_module *m = (drv_module *)hmod;
    return m != NULL && m->magic == MODULE_MAGIC ? m : NULL;
}

static drv_library *as_library(CUlibrary hlib)
{
    drv_library *l = (drv_library *)hlib;
    return l != NULL && l->magic == LIBRARY_MAGIC ? l : NULL;
}

/* ---------------------------------------------------------------- modules */

static CUresult module_load(CUmodule *out, const void *image, uint64_t bytes)
{
    if (out == NULL || image == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    if (bytes == 0)
        bytes = tw_fatbin_image_size(image);
    if (bytes == 0) {
        TW_WARN("cuModuleLoad*: image is not a fatbin, cubin or PTX");
        return CUDA_ERROR_INVALID_IMAGE;
    }
    /* the program may free its buffer once loaded: keep our own copy */
    drv_module *m = calloc(1, sizeof *m);
    void *copy = malloc(bytes);
    if (m == NULL || copy == NULL) {
        free(m);
        free(copy);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    memcpy(copy, image, bytes);
    m->magic = MODULE_MAGIC;
    m->image = copy;
    m->image_bytes = bytes;
    m->core = tw_module_load(copy, bytes);
    if (m->core == NULL) {
        free(copy);
        free(m);
        return CUDA_ERROR_INVALID_IMAGE;
    }
    *out = (CUmodule)m;
    return CUDA_SUCCESS;
}

static CUresult read_file(const char *path, void **data, uint64_t *bytes)
{
    if (path == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return CUDA_ERROR_FILE_NOT_FOUND;
    CUresult status = CUDA_ERROR_INVALID_IMAGE;
    long size = -1;
    if (fseek(f, 0, SEEK_END) == 0 && (size = ftell(f)) > 0 && fseek(f, 0, SEEK_SET) == 0) {
        char *buf = malloc((size_t)size + 1);
        if (buf != NULL && fread(buf, 1, (size_t)size, f) == (size_t)size) {
            buf[size] = '\0'; /* PTX text is read as a C string */
            *data = buf;
            *bytes = (uint64_t)size + 1;
            status = CUDA_SUCCESS;
        } else {
            free(buf);
        }
    }
    fclose(f);
    return status;
}

TW_EXPORT CUresult cuModuleLoadData(CUmodule *module, const void *image)
{
    return module_load(module, image, 0);
}

TW_EXPORT CUresult cuModuleLoadDataEx(CUmodule *module, const void *image, unsigned int numOptions,
                                      CUjit_option *options, void **optionValues)
{
    /* JIT options tune ptxas; no code is generated here, so they have nothing to change */
    return module_load(module, image, 0);
}

TW_EXPORT CUresult cuModuleLoadFatBinary(CUmodule *module, const void *fatCubin)
{
    return module_load(module, fatCubin, 0);
}

TW_EXPORT CUresult cuModuleLoad(CUmodule *module, const char *fname)
{
    void *data = NULL;
    uint64_t bytes = 0;
    CUresult status = read_file(fname, &data, &bytes);
    if (status != CUDA_SUCCESS)
        return status;
    /* a file's size bounds the image; the parser still checks the self-described size */
    uint64_t described = tw_fatbin_image_size(data);
    status = described && described <= bytes ? module_load(module, data, described)
                                             : CUDA_ERROR_INVALID_IMAGE;
    free(data);
    return status;
}

static void module_free(drv_module *m)
{
    pthread_mutex_lock(&module_lock);
    for (uint32_t i = 0; i < func_count;) {
        if (funcs[i].module == m)
            funcs[i] = funcs[--func_count];
        else
            i++;
    }
    pthread_mutex_unlock(&module_lock);
    for (uint32_t i = 0; i < m->global_count; i++) {
        tw_mem_free(m->globals[i].ptr);
        free(m->globals[i].name);
    }
    free(m->globals);
    tw_fatbin_forget(m->image);
    tw_module_unload(m->core);
    m->magic = 0;
    free(m->image);
    free(m);
}

TW_EXPORT CUresult cuModuleUnload(CUmodule hmod)
{
    drv_module *m = as_module(hmod);
    if (m == NULL)
        return CUDA_ERROR_INVALID_HANDLE;
    module_free(m);
    return CUDA_SUCCESS;
}

static CUresult module_function(drv_module *m, const char *name, tw_kernel **out)
{
    if (out == NULL || name == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    tw_kernel *k = tw_module_get_function(m->core, name);
    if (k == NULL)
        return CUDA_ERROR_NOT_FOUND;
    pthread_mutex_lock(&module_lock);
    drv_func *f = func_find_locked(k, true);
    if (f != NULL)
        f->module = m;
    pthread_mutex_unlock(&module_lock);
    *out = k;
    return CUDA_SUCCESS;
}

TW_EXPORT CUresult cuModuleGetFunction(CUfunction *hfunc, CUmodule hmod, const char *name)
{
    drv_module *m = as_module(hmod);
    if (m == NULL)
        return CUDA_ERROR_INVALID_HANDLE;
    return module_function(m, name, (tw_kernel **)hfunc);
}

typedef struct name_list {
    const char **names;
    uint32_t count, capacity;
} name_list;

static void collect_name(const char *name, void *user)
{
    name_list *list = user;
    if (list->count == list->capacity) {
        uint32_t capacity = list->capacity ? list->capacity * 2 : 16;
        const char **grown = realloc(list->names, capacity * sizeof *grown);
        if (grown == NULL)
            return;
        list->names = grown;
        list->capacity = capacity;
    }
    list->names[list->count++] = strdup(name);
}

static void free_names(name_list *list)
{
    for (uint32_t i = 0; i < list->count; i++)
        free((void *)list->names[i]);
    free(list->names);
}

TW_EXPORT CUresult cuModuleGetFunctionCount(unsigned int *count, CUmodule mod)
{
    drv_module *m = as_module(mod);
    if (m == NULL || count == NULL)
        return m == NULL ? CUDA_ERROR_INVALID_HANDLE : CUDA_ERROR_INVALID_VALUE;
    name_list list = {0};
    tw_fatbin_kernel_names(m->image, collect_name, &list);
    *count = list.count;
    free_names(&list);
    return CUDA_SUCCESS;
}

static CUresult enumerate(drv_module *m, tw_kernel **out, unsigned int capacity)
{
    name_list list = {0};
    tw_fatbin_kernel_names(m->image, collect_name, &list);
    CUresult status = CUDA_SUCCESS;
    for (uint32_t i = 0; i < list.count && i < capacity && status == CUDA_SUCCESS; i++)
        status = list.names[i] ? module_function(m, list.names[i], &out[i]) : CUDA_ERROR_OUT_OF_MEMORY;
    free_names(&list);
    return status;
}

TW_EXPORT CUresult cuModuleEnumerateFunctions(CUfunction *functions, unsigned int numFunctions,
                                              CUmodule mod)
{
    drv_module *m = as_module(mod);
    if (m == NULL)
        return CUDA_ERROR_INVALID_HANDLE;
    if (functions == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    return enumerate(m, (tw_kernel **)functions, numFunctions);
}

/* A device global: a backed allocation per (module, name), sized from the ELF symbol. */
static CUresult module_global(drv_module *m, CUdeviceptr *dptr, size_t *bytes, const char *name)
{
    if (name == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    CUresult status = CUDA_SUCCESS;
    pthread_mutex_lock(&module_lock);
    drv_global *found = NULL;
    for (uint32_t i = 0; i < m->global_count && found == NULL; i++)
        if (strcmp(m->globals[i].name, name) == 0)
            found = &m->globals[i];
    if (found == NULL) {
        uint64_t size = 0;
        void *ptr = NULL;
        drv_global *grown = NULL;
        if (!tw_fatbin_global_size(m->image, name, &size)) {
            status = CUDA_ERROR_NOT_FOUND;
        } else if (tw_mem_alloc(tw_device_current(), size ? size : 1, TW_MEM_DEVICE, &ptr) != TW_OK) {
            status = CUDA_ERROR_OUT_OF_MEMORY;
        } else if ((grown = realloc(m->globals, (m->global_count + 1) * sizeof *grown)) == NULL) {
            tw_mem_free(ptr);
            status = CUDA_ERROR_OUT_OF_MEMORY;
        } else {
            tw_mem_set_data(ptr, 0, size); /* device globals start zeroed unless initialised */
            m->globals = grown;
            found = &m->globals[m->global_count++];
            *found = (drv_global){strdup(name), ptr, size};
        }
    }
    if (found != NULL) {
        if (dptr != NULL)
            *dptr = (CUdeviceptr)(uintptr_t)found->ptr;
        if (bytes != NULL)
            *bytes = found->bytes;
    }
    pthread_mutex_unlock(&module_lock);
    return status;
}

TW_EXPORT CUresult cuModuleGetGlobal_v2(CUdeviceptr *dptr, size_t *bytes, CUmodule hmod, const char *name)
{
    drv_module *m = as_module(hmod);
    if (m == NULL)
        return CUDA_ERROR_INVALID_HANDLE;
    return module_global(m, dptr, bytes, name);
}

TW_EXPORT CUresult cuModuleGetLoadingMode(CUmoduleLoadingMode *mode)
{
    if (mode == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    *mode = CU_MODULE_LAZY_LOADING; /* the default since CUDA 12.2 */
    return CUDA_SUCCESS;
}

/* ---------------------------------------------------------------- libraries */

static CUresult library_wrap(CUlibrary *library, CUmodule module, CUresult status)
{
    if (status != CUDA_SUCCESS)
        return status;
    drv_library *l = calloc(1, sizeof *l);
    if (l == NULL) {
        module_free(as_module(module));
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    l->magic = LIBRARY_MAGIC;
    l->module = as_module(module);
    l->module->library = l;
    *library = (CUlibrary)l;
    return CUDA_SUCCESS;
}

TW_EXPORT CUresult cuLibraryLoadData(CUlibrary *library, const void *code, CUjit_option *jitOptions,
                                     void **jitOptionsValues, unsigned int numJitOptions,
                                     CUlibraryOption *libraryOptions, void **libraryOptionValues,
                                     unsigned int numLibraryOptions)
{
    if (library == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    CUmodule module = NULL;
    return library_wrap(library, module, module_load(&module, code, 0));
}

TW_EXPORT CUresult cuLibraryLoadFromFile(CUlibrary *library, const char *fileName,
                                         CUjit_option *jitOptions, void **jitOptionsValues,
                                         unsigned int numJitOptions, CUlibraryOption *libraryOptions,
                                         void **libraryOptionValues, unsigned int numLibraryOptions)
{
    if (library == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    CUmodule module = NULL;
    return library_wrap(library, module, cuModuleLoad(&module, fileName));
}

TW_EXPORT CUresult cuLibraryUnload(CUlibrary library)
{
    drv_library *l = as_library(library);
    if (l == NULL)
        return CUDA_ERROR_INVALID_HANDLE;
    module_free(l->module);
    l->magic = 0;
    free(l);
    return CUDA_SUCCESS;
}

TW_EXPORT CUresult cuLibraryGetKernel(CUkernel *pKernel, CUlibrary library, const char *name)
{
    drv_library *l = as_library(library);
    if (l == NULL)
        return CUDA_ERROR_INVALID_HANDLE;
    return module_function(l->module, name, (tw_kernel **)pKernel);
}

TW_EXPORT CUresult cuLibraryGetKernelCount(unsigned int *count, CUlibrary lib)
{
    drv_library *l = as_library(lib);
    if (l == NULL)
        return CUDA_ERROR_INVALID_HANDLE;
    return cuModuleGetFunctionCount(count, (CUmodule)l->module);
}

TW_EXPORT CUresult cuLibraryEnumerateKernels(CUkernel *kernels, unsigned int numKernels, CUlibrary lib)
{
    drv_library *l = as_library(lib);
    if (l == NULL)
        return CUDA_ERROR_INVALID_HANDLE;
    if (kernels == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    return enumerate(l->module, (tw_kernel **)kernels, numKernels);
}

TW_EXPORT CUresult cuLibraryGetModule(CUmodule *pMod, CUlibrary library)
{
    drv_library *l = as_library(library);
    if (l == NULL)
        return CUDA_ERROR_INVALID_HANDLE;
    if (pMod == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    *pMod = (CUmodule)l->module;
    return CUDA_SUCCESS;
}

TW_EXPORT CUresult cuLibraryGetGlobal(CUdeviceptr *dptr, size_t *bytes, CUlibrary library, const char *name)
{
    drv_library *l = as_library(library);
    if (l == NULL)
        return CUDA_ERROR_INVALID_HANDLE;
    return module_global(l->module, dptr, bytes, name);
}

TW_EXPORT CUresult cuKernelGetFunction(CUfunction *pFunc, CUkernel kernel)
{
    if (pFunc == NULL || kernel == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    *pFunc = (CUfunction)kernel; /* one context per device: the kernel is the function */
    return CUDA_SUCCESS;
}

TW_EXPORT CUresult cuKernelGetLibrary(CUlibrary *pLib, CUkernel kernel)
{
    if (pLib == NULL || kernel == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_lock(&module_lock);
    drv_func *f = func_find_locked((const tw_kernel *)kernel, false);
    void *library = f && f->module ? f->module->library : NULL;
    pthread_mutex_unlock(&module_lock);
    if (library == NULL)
        return CUDA_ERROR_NOT_FOUND; /* a runtime-registered kernel */
    *pLib = (CUlibrary)library;
    return CUDA_SUCCESS;
}

TW_EXPORT CUresult cuKernelGetName(const char **name, CUkernel hfunc)
{
    if (name == NULL || hfunc == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    *name = tw_kernel_name((const tw_kernel *)hfunc);
    return CUDA_SUCCESS;
}

/* ---------------------------------------------------------------- function attributes */

/* What the image says about a kernel; defaults for runtime kernels and PTX-only images. */
static void kernel_info(const tw_kernel *k, drv_module *m, tw_kernel_info *info)
{
    const tw_gpu_spec *spec = tw_spec();
    memset(info, 0, sizeof *info);
    info->regs = -1;
    if (m == NULL || !tw_fatbin_kernel_info(m->image, tw_kernel_name(k), spec->cc_major,
                                            spec->cc_minor, info))
        info->arch = spec->cc_major * 10 + spec->cc_minor;
    if (info->regs < 0)
        info->regs = DEFAULT_REGS;
    if (info->arch <= 0)
        info->arch = spec->cc_major * 10 + spec->cc_minor;
}

/* Threads per block the register file allows (registers are allocated per warp in units
 * of 256), capped by the launch bounds and the device. */
static int max_threads_per_block(const tw_kernel_info *info)
{
    const tw_gpu_spec *spec = tw_spec();
    int limit = spec->max_threads_per_block > 0 ? spec->max_threads_per_block : 1024;
    int warp = spec->warp_size > 0 ? spec->warp_size : 32;
    if (info->regs > 0 && spec->regs_per_block > 0) {
        int per_warp = ((info->regs * warp + 255) / 256) * 256;
        int warps = spec->regs_per_block / per_warp;
        if (warps * warp < limit)
            limit = warps * warp;
    }
    if (info->max_threads > 0 && (int)info->max_threads < limit)
        limit = (int)info->max_threads;
    return limit;
}

static int default_dynamic_smem(const tw_kernel_info *info)
{
    int per_block = tw_spec()->smem_per_block_bytes > 0 ? tw_spec()->smem_per_block_bytes : 49152;
    int left = per_block - (int)info->static_smem_bytes;
    return left > 0 ? left : 0;
}

static CUresult func_get_attribute(int *pi, CUfunction_attribute attrib, const tw_kernel *k)
{
    if (pi == NULL || k == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_lock(&module_lock);
    drv_func *f = func_find_locked(k, false);
    drv_func state = f ? *f : (drv_func){.kernel = k, .max_dynamic_smem = -1, .carveout = -1};
    pthread_mutex_unlock(&module_lock);
    tw_kernel_info info;
    kernel_info(k, state.module, &info);
    switch (attrib) {
    case CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK: *pi = max_threads_per_block(&info); break;
    case CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES: *pi = (int)info.static_smem_bytes; break;
    case CU_FUNC_ATTRIBUTE_CONST_SIZE_BYTES: *pi = 0; break; /* user __constant__ bytes */
    case CU_FUNC_ATTRIBUTE_LOCAL_SIZE_BYTES: *pi = (int)info.local_bytes; break;
    case CU_FUNC_ATTRIBUTE_NUM_REGS: *pi = info.regs; break;
    case CU_FUNC_ATTRIBUTE_PTX_VERSION: *pi = info.arch; break;
    case CU_FUNC_ATTRIBUTE_BINARY_VERSION: *pi = info.arch; break;
    case CU_FUNC_ATTRIBUTE_CACHE_MODE_CA: *pi = 0; break;
    case CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES:
        *pi = state.max_dynamic_smem >= 0 ? state.max_dynamic_smem : default_dynamic_smem(&info);
        break;
    case CU_FUNC_ATTRIBUTE_PREFERRED_SHARED_MEMORY_CARVEOUT: *pi = state.carveout; break;
    case CU_FUNC_ATTRIBUTE_CLUSTER_SIZE_MUST_BE_SET:
    case CU_FUNC_ATTRIBUTE_REQUIRED_CLUSTER_WIDTH:
    case CU_FUNC_ATTRIBUTE_REQUIRED_CLUSTER_HEIGHT:
    case CU_FUNC_ATTRIBUTE_REQUIRED_CLUSTER_DEPTH:
    case CU_FUNC_ATTRIBUTE_CLUSTER_SCHEDULING_POLICY_PREFERENCE: *pi = 0; break;
    case CU_FUNC_ATTRIBUTE_NON_PORTABLE_CLUSTER_SIZE_ALLOWED: *pi = state.non_portable_cluster; break;
    default: return CUDA_ERROR_INVALID_VALUE;
    }
    return CUDA_SUCCESS;
}

static CUresult func_set_attribute(CUfunction_attribute attrib, int value, const tw_kernel *k)
{
    if (k == NULL)
        return CUDA_ERROR_INVALID_HANDLE;
    const tw_gpu_spec *spec = tw_spec();
    CUresult status = CUDA_SUCCESS;
    pthread_mutex_lock(&module_lock);
    drv_func *f = func_find_locked(k, true);
    if (f == NULL) {
        status = CUDA_ERROR_OUT_OF_MEMORY;
    } else if (attrib == CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES) {
        /* the opt-in limit bounds static + dynamic shared memory (what Triton asks for) */
        if (value < 0 || (spec->smem_per_block_optin_bytes > 0 && value > spec->smem_per_block_optin_bytes))
            status = CUDA_ERROR_INVALID_VALUE;
        else
            f->max_dynamic_smem = value;
    } else if (attrib == CU_FUNC_ATTRIBUTE_PREFERRED_SHARED_MEMORY_CARVEOUT) {
        if (value < -1 || value > 100)
            status = CUDA_ERROR_INVALID_VALUE;
        else
            f->carveout = value;
    } else if (attrib == CU_FUNC_ATTRIBUTE_NON_PORTABLE_CLUSTER_SIZE_ALLOWED) {
        f->non_portable_cluster = value != 0;
    } else if (attrib == CU_FUNC_ATTRIBUTE_REQUIRED_CLUSTER_WIDTH ||
               attrib == CU_FUNC_ATTRIBUTE_REQUIRED_CLUSTER_HEIGHT ||
               attrib == CU_FUNC_ATTRIBUTE_REQUIRED_CLUSTER_DEPTH ||
               attrib == CU_FUNC_ATTRIBUTE_CLUSTER_SCHEDULING_POLICY_PREFERENCE) {
        /* accepted; the timing model has no cluster term */
    } else {
        status = CUDA_ERROR_INVALID_VALUE; /* read-only attributes */
    }
    pthread_mutex_unlock(&module_lock);
    return status;
}

TW_EXPORT CUresult cuFuncGetAttribute(int *pi, CUfunction_attribute attrib, CUfunction hfunc)
{
    return func_get_attribute(pi, attrib, (const tw_kernel *)hfunc);
}

TW_EXPORT CUresult cuFuncSetAttribute(CUfunction hfunc, CUfunction_attribute attrib, int value)
{
    return func_set_attribute(attrib, value, (const tw_kernel *)hfunc);
}

TW_EXPORT CUresult cuKernelGetAttribute(int *pi, CUfunction_attribute attrib, CUkernel kernel, CUdevice dev)
{
    if (!tw_device_valid(dev))
        return CUDA_ERROR_INVALID_DEVICE;
    return func_get_attribute(pi, attrib, (const tw_kernel *)kernel);
}

TW_EXPORT CUresult cuKernelSetAttribute(CUfunction_attribute attrib, int val, CUkernel kernel, CUdevice dev)
{
    if (!tw_device_valid(dev))
        return CUDA_ERROR_INVALID_DEVICE;
    return func_set_attribute(attrib, val, (const tw_kernel *)kernel);
}

static CUresult set_cache_config(const tw_kernel *k, int config)
{
    if (k == NULL)
        return CUDA_ERROR_INVALID_HANDLE;
    pthread_mutex_lock(&module_lock);
    drv_func *f = func_find_locked(k, true);
    if (f != NULL)
        f->cache_config = config; /* a preference only: kept, not modelled */
    pthread_mutex_unlock(&module_lock);
    return f != NULL ? CUDA_SUCCESS : CUDA_ERROR_OUT_OF_MEMORY;
}

TW_EXPORT CUresult cuFuncSetCacheConfig(CUfunction hfunc, CUfunc_cache config)
{
    return set_cache_config((const tw_kernel *)hfunc, (int)config);
}

TW_EXPORT CUresult cuKernelSetCacheConfig(CUkernel kernel, CUfunc_cache config, CUdevice dev)
{
    return set_cache_config((const tw_kernel *)kernel, (int)config);
}

TW_EXPORT CUresult cuFuncSetSharedMemConfig(CUfunction hfunc, CUsharedconfig config)
{
    return hfunc != NULL ? CUDA_SUCCESS : CUDA_ERROR_INVALID_HANDLE; /* no-op since Volta */
}

TW_EXPORT CUresult cuFuncGetName(const char **name, CUfunction hfunc)
{
    if (name == NULL || hfunc == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    *name = tw_kernel_name((const tw_kernel *)hfunc);
    return CUDA_SUCCESS;
}

static CUresult param_info(tw_kernel *k, size_t index, size_t *offset, size_t *size)
{
    if (k == NULL)
        return CUDA_ERROR_INVALID_HANDLE;
    const tw_param_layout *layout = tw_kernel_layout(k);
    if (layout == NULL) {
        TW_WARN("cuFuncGetParamInfo: no parameter layout for %s", tw_kernel_name(k));
        return CUDA_ERROR_NOT_SUPPORTED;
    }
    if (index >= layout->count)
        return CUDA_ERROR_INVALID_VALUE;
    if (offset != NULL)
        *offset = layout->offset[index];
    if (size != NULL)
        *size = layout->size[index];
    return CUDA_SUCCESS;
}

TW_EXPORT CUresult cuFuncGetParamInfo(CUfunction func, size_t paramIndex, size_t *paramOffset,
                                      size_t *paramSize)
{
    return param_info((tw_kernel *)func, paramIndex, paramOffset, paramSize);
}

TW_EXPORT CUresult cuKernelGetParamInfo(CUkernel kernel, size_t paramIndex, size_t *paramOffset,
                                        size_t *paramSize)
{
    return param_info((tw_kernel *)kernel, paramIndex, paramOffset, paramSize);
}

TW_EXPORT CUresult cuFuncGetModule(CUmodule *hmod, CUfunction hfunc)
{
    if (hmod == NULL || hfunc == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_lock(&module_lock);
    drv_func *f = func_find_locked((const tw_kernel *)hfunc, false);
    drv_module *m = f ? f->module : NULL;
    pthread_mutex_unlock(&module_lock);
    if (m == NULL)
        return CUDA_ERROR_NOT_FOUND; /* a runtime-registered kernel has no driver module here */
    *hmod = (CUmodule)m;
    return CUDA_SUCCESS;
}

TW_EXPORT CUresult cuFuncIsLoaded(CUfunctionLoadingState *state, CUfunction function)
{
    if (state == NULL || function == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    *state = CU_FUNCTION_LOADING_STATE_LOADED;
    return CUDA_SUCCESS;
}

TW_EXPORT CUresult cuFuncLoad(CUfunction function)
{
    return function != NULL ? CUDA_SUCCESS : CUDA_ERROR_INVALID_HANDLE;
}

/* ---------------------------------------------------------------- occupancy */

static int occupancy_blocks(const tw_kernel *k, int block_size, size_t dynamic_smem)
{
    const tw_gpu_spec *spec = tw_spec();
    pthread_mutex_lock(&module_lock);
    drv_func *f = func_find_locked(k, false);
    drv_module *m = f ? f->module : NULL;
    pthread_mutex_unlock(&module_lock);
    tw_kernel_info info;
    kernel_info(k, m, &info);
    if (block_size <= 0 || block_size > max_threads_per_block(&info))
        return 0;
    int warp = spec->warp_size > 0 ? spec->warp_size : 32;
    int warps = (block_size + warp - 1) / warp;
    int blocks = spec->max_blocks_per_sm > 0 ? spec->max_blocks_per_sm : 32;
    if (spec->max_threads_per_sm > 0 && spec->max_threads_per_sm / (warps * warp) < blocks)
        blocks = spec->max_threads_per_sm / (warps * warp);
    if (spec->regs_per_sm > 0 && info.regs > 0) {
        int per_block = warps * (((info.regs * warp + 255) / 256) * 256);
        if (spec->regs_per_sm / per_block < blocks)
            blocks = spec->regs_per_sm / per_block;
    }
    /* each block also holds the 1 KiB the driver reserves per block (sm_80+) */
    uint64_t smem = (uint64_t)info.static_smem_bytes + dynamic_smem + (spec->cc_major >= 8 ? 1024 : 0);
    if (spec->smem_per_sm_bytes > 0 && smem > 0 && (uint64_t)spec->smem_per_sm_bytes / smem < (uint64_t)blocks)
        blocks = (int)((uint64_t)spec->smem_per_sm_bytes / smem);
    return blocks;
}

TW_EXPORT CUresult cuOccupancyMaxActiveBlocksPerMultiprocessorWithFlags(int *numBlocks, CUfunction func,
                                                                        int blockSize,
                                                                        size_t dynamicSMemSize,
                                                                        unsigned int flags)
{
    if (numBlocks == NULL || func == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    *numBlocks = occupancy_blocks((const tw_kernel *)func, blockSize, dynamicSMemSize);
    return CUDA_SUCCESS;
}

TW_EXPORT CUresult cuOccupancyMaxActiveBlocksPerMultiprocessor(int *numBlocks, CUfunction func,
                                                               int blockSize, size_t dynamicSMemSize)
{
    return cuOccupancyMaxActiveBlocksPerMultiprocessorWithFlags(numBlocks, func, blockSize,
                                                                dynamicSMemSize, 0);
}

TW_EXPORT CUresult cuOccupancyMaxPotentialClusterSize(int *clusterSize, CUfunction func, const CUlaunchConfig *config)
{
    if (clusterSize == NULL || func == NULL || config == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    int threads = (int)(config->blockDimX * config->blockDimY * config->blockDimZ);
    *clusterSize = tw_max_cluster_size(threads, config->sharedMemBytes);
    return CUDA_SUCCESS;
}

TW_EXPORT CUresult cuOccupancyMaxPotentialBlockSizeWithFlags(int *minGridSize, int *blockSize, CUfunction func,
                                                             CUoccupancyB2DSize blockSizeToDynamicSMemSize,
                                                             size_t dynamicSMemSize, int blockSizeLimit,
                                                             unsigned int flags)
{
    if (minGridSize == NULL || blockSize == NULL || func == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    const tw_gpu_spec *spec = tw_spec();
    int warp = spec->warp_size > 0 ? spec->warp_size : 32;
    int limit = spec->max_threads_per_block > 0 ? spec->max_threads_per_block : 1024;
    if (blockSizeLimit > 0 && blockSizeLimit < limit)
        limit = blockSizeLimit;
    int best_size = 0, best_threads = 0, best_blocks = 0;
    for (int size = (limit / warp) * warp; size > 0; size -= warp) {
        size_t smem = blockSizeToDynamicSMemSize ? blockSizeToDynamicSMemSize(size) : dynamicSMemSize;
        int blocks = occupancy_blocks((const tw_kernel *)func, size, smem);
        if (blocks * size > best_threads) {
            best_threads = blocks * size;
            best_size = size;
            best_blocks = blocks;
        }
    }
    *blockSize = best_size;
    *minGridSize = best_blocks * spec->sm_count;
    return CUDA_SUCCESS;
}

TW_EXPORT CUresult cuOccupancyMaxPotentialBlockSize(int *minGridSize, int *blockSize, CUfunction func,
                                                    CUoccupancyB2DSize blockSizeToDynamicSMemSize,
                                                    size_t dynamicSMemSize, int blockSizeLimit)
{
    return cuOccupancyMaxPotentialBlockSizeWithFlags(minGridSize, blockSize, func,
                                                     blockSizeToDynamicSMemSize, dynamicSMemSize,
                                                     blockSizeLimit, 0);
}

TW_EXPORT CUresult cuOccupancyAvailableDynamicSMemPerBlock(size_t *dynamicSmemSize, CUfunction func,
                                                           int numBlocks, int blockSize)
{
    if (dynamicSmemSize == NULL || func == NULL || numBlocks <= 0)
        return CUDA_ERROR_INVALID_VALUE;
    const tw_gpu_spec *spec = tw_spec();
    tw_kernel_info info;
    pthread_mutex_lock(&module_lock);
    drv_func *f = func_find_locked((const tw_kernel *)func, false);
    drv_module *m = f ? f->module : NULL;
    pthread_mutex_unlock(&module_lock);
    kernel_info((const tw_kernel *)func, m, &info);
    int64_t per_block = spec->smem_per_sm_bytes / numBlocks - 1024 - (int64_t)info.static_smem_bytes;
    if (per_block > spec->smem_per_block_optin_bytes - (int64_t)info.static_smem_bytes)
        per_block = spec->smem_per_block_optin_bytes - (int64_t)info.static_smem_bytes;
    *dynamicSmemSize = per_block > 0 ? (size_t)per_block : 0;
    return CUDA_SUCCESS;
}

/* ---------------------------------------------------------------- launches (hot path) */

/* kernelParams, or the `extra` form (one packed buffer, CU_LAUNCH_PARAM_BUFFER_POINTER),
 * turned into per-parameter pointers through the kernel's layout. */
static CUresult launch(tw_kernel *k, uint32_t gx, uint32_t gy, uint32_t gz, uint32_t bx, uint32_t by,
                       uint32_t bz, uint32_t smem, CUstream stream, bool per_thread, void **params,
                       void **extra, uint32_t flags)
{
    if (TW_UNLIKELY(k == NULL))
        return CUDA_ERROR_INVALID_HANDLE;
    const tw_gpu_spec *spec = tw_spec();
    uint64_t threads = (uint64_t)bx * by * bz;
    if (TW_UNLIKELY(gx == 0 || gy == 0 || gz == 0 || threads == 0 ||
                    threads > (uint64_t)(spec->max_threads_per_block > 0 ? spec->max_threads_per_block : 1024) ||
                    gy > 65535 || gz > 65535 || bz > 64)) {
        TW_WARN("%s: invalid launch configuration grid (%u,%u,%u) block (%u,%u,%u)",
                tw_kernel_name(k), gx, gy, gz, bx, by, bz);
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (TW_UNLIKELY(spec->smem_per_block_optin_bytes > 0 && smem > (uint32_t)spec->smem_per_block_optin_bytes))
        return CUDA_ERROR_INVALID_VALUE;
    void *packed[TW_MAX_PARAMS];
    if (TW_UNLIKELY(params == NULL && extra != NULL)) {
        char *buffer = NULL;
        for (void **e = extra; *e != CU_LAUNCH_PARAM_END; e += 2) {
            if (*e == CU_LAUNCH_PARAM_BUFFER_POINTER)
                buffer = e[1];
            else if (*e != CU_LAUNCH_PARAM_BUFFER_SIZE)
                return CUDA_ERROR_INVALID_VALUE;
        }
        const tw_param_layout *layout = buffer ? tw_kernel_layout(k) : NULL;
        if (layout != NULL) {
            for (uint32_t i = 0; i < layout->count; i++)
                packed[i] = buffer + layout->offset[i];
            params = packed;
        }
    }
    const void *handle = stream;
    if (per_thread && handle == NULL)
        handle = CU_STREAM_PER_THREAD;
    int status = tw_launch_kernel(k, (tw_dim3){gx, gy, gz}, (tw_dim3){bx, by, bz}, smem, params,
                                  tw_stream_resolve(handle), flags);
    return status == TW_OK ? CUDA_SUCCESS : CUDA_ERROR_LAUNCH_FAILED;
}

TW_EXPORT CUresult cuLaunchKernel(CUfunction f, unsigned int gridDimX, unsigned int gridDimY,
                                  unsigned int gridDimZ, unsigned int blockDimX, unsigned int blockDimY,
                                  unsigned int blockDimZ, unsigned int sharedMemBytes, CUstream hStream,
                                  void **kernelParams, void **extra)
{
    return launch((tw_kernel *)f, gridDimX, gridDimY, gridDimZ, blockDimX, blockDimY, blockDimZ,
                  sharedMemBytes, hStream, false, kernelParams, extra, 0);
}

TW_EXPORT CUresult cuLaunchKernel_ptsz(CUfunction f, unsigned int gridDimX, unsigned int gridDimY,
                                       unsigned int gridDimZ, unsigned int blockDimX, unsigned int blockDimY,
                                       unsigned int blockDimZ, unsigned int sharedMemBytes, CUstream hStream,
                                       void **kernelParams, void **extra)
{
    return launch((tw_kernel *)f, gridDimX, gridDimY, gridDimZ, blockDimX, blockDimY, blockDimZ,
                  sharedMemBytes, hStream, true, kernelParams, extra, 0);
}

static CUresult launch_ex(const CUlaunchConfig *config, CUfunction f, void **kernelParams, void **extra,
                          bool per_thread)
{
    if (config == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    uint32_t flags = 0;
    for (unsigned i = 0; i < config->numAttrs && config->attrs != NULL; i++) {
        const CUlaunchAttribute *a = &config->attrs[i];
        if (a->id == CU_LAUNCH_ATTRIBUTE_COOPERATIVE && a->value.cooperative)
            flags |= TW_FLAG_COOPERATIVE;
        /* cluster dimensions, priorities, programmatic serialisation: accepted, not modelled */
    }
    return launch((tw_kernel *)f, config->gridDimX, config->gridDimY, config->gridDimZ, config->blockDimX,
                  config->blockDimY, config->blockDimZ, config->sharedMemBytes, config->hStream, per_thread,
                  kernelParams, extra, flags);
}

TW_EXPORT CUresult cuLaunchKernelEx(const CUlaunchConfig *config, CUfunction f, void **kernelParams, void **extra)
{
    return launch_ex(config, f, kernelParams, extra, false);
}

TW_EXPORT CUresult cuLaunchKernelEx_ptsz(const CUlaunchConfig *config, CUfunction f, void **kernelParams,
                                         void **extra)
{
    return launch_ex(config, f, kernelParams, extra, true);
}

TW_EXPORT CUresult cuLaunchCooperativeKernel(CUfunction f, unsigned int gridDimX, unsigned int gridDimY,
                                             unsigned int gridDimZ, unsigned int blockDimX,
                                             unsigned int blockDimY, unsigned int blockDimZ,
                                             unsigned int sharedMemBytes, CUstream hStream, void **kernelParams)
{
    return launch((tw_kernel *)f, gridDimX, gridDimY, gridDimZ, blockDimX, blockDimY, blockDimZ,
                  sharedMemBytes, hStream, false, kernelParams, NULL, TW_FLAG_COOPERATIVE);
}

TW_EXPORT CUresult cuLaunchCooperativeKernel_ptsz(CUfunction f, unsigned int gridDimX, unsigned int gridDimY,
                                                  unsigned int gridDimZ, unsigned int blockDimX,
                                                  unsigned int blockDimY, unsigned int blockDimZ,
                                                  unsigned int sharedMemBytes, CUstream hStream,
                                                  void **kernelParams)
{
    return launch((tw_kernel *)f, gridDimX, gridDimY, gridDimZ, blockDimX, blockDimY, blockDimZ,
                  sharedMemBytes, hStream, true, kernelParams, NULL, TW_FLAG_COOPERATIVE);
}
