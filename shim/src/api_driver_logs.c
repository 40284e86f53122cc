/* Driver API: the driver's log callbacks (cuLogsRegisterCallback, CUDA 12.9+). cuda-python's
 * runtime registers one at start-up to surface driver messages. The emulated driver reports
 * every error through its return codes and emits no log messages, so a registered callback is
 * kept (its handle identifies it) and never called. */
#include <cuda.h>
#include <pthread.h>
#include <stdint.h>

#include "tw_core.h"

#define TW_LOG_CALLBACKS 64

struct CUlogsCallbackEntry_st {
    CUlogsCallback fn;
    void *user_data;
};

static struct CUlogsCallbackEntry_st callbacks[TW_LOG_CALLBACKS];
static pthread_mutex_t callbacks_lock = PTHREAD_MUTEX_INITIALIZER;

TW_EXPORT CUresult cuLogsRegisterCallback(CUlogsCallback callbackFunc, void *userData,
                                          CUlogsCallbackHandle *callback_out)
{
    if (callbackFunc == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    CUresult result = CUDA_ERROR_OUT_OF_MEMORY;
    pthread_mutex_lock(&callbacks_lock);
    for (int i = 0; i < TW_LOG_CALLBACKS; i++) {
        if (callbacks[i].fn == NULL) {
            callbacks[i] = (struct CUlogsCallbackEntry_st){callbackFunc, userData};
            if (callback_out != NULL)
                *callback_out = &callbacks[i];
            result = CUDA_SUCCESS;
            break;
        }
    }
    pthread_mutex_unlock(&callbacks_lock);
    return result;
}

TW_EXPORT CUresult cuLogsUnregisterCallback(CUlogsCallbackHandle callback)
{
    uintptr_t at = (uintptr_t)callback, first = (uintptr_t)&callbacks[0];
    if (at < first || at >= (uintptr_t)&callbacks[TW_LOG_CALLBACKS] || (at - first) % sizeof(callbacks[0]) != 0)
        return CUDA_ERROR_INVALID_VALUE;
    CUresult result = CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_lock(&callbacks_lock);
    if (callback->fn != NULL) {
        callback->fn = NULL;
        callback->user_data = NULL;
        result = CUDA_SUCCESS;
    }
    pthread_mutex_unlock(&callbacks_lock);
    return result;
}
