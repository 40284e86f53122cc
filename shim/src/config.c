/* Every TIMEWARP_* environment variable the shim reads, read once. The strings are copied:
 * getenv points into the process's environment block, which programs rewrite in place
 * (setproctitle, as vLLM's engine core and SGLang's scheduler call it, moves the environment and
 * writes the process title over the old block), and the shim reads them for the whole run. */
#include <stdlib.h>
#include <string.h>

#include "tw_core.h"

#define CONFIG_TEXT_BYTES 4096

static tw_config config;
static int config_loaded;
static char run_dir_text[CONFIG_TEXT_BYTES], coordinator_text[CONFIG_TEXT_BYTES],
    spec_path_text[CONFIG_TEXT_BYTES], log_path_text[CONFIG_TEXT_BYTES];

static long long env_int(const char *name, long long fallback)
{
    const char *text = getenv(name);
    if (text == NULL || *text == '\0')
        return fallback;
    char *end = NULL;
    long long value = strtoll(text, &end, 0);
    return (end != NULL && end != text) ? value : fallback;
}

/* A copy of the variable's value in `copy`, NULL when unset, empty or too long to keep. */
static const char *env_str(const char *name, char copy[CONFIG_TEXT_BYTES])
{
    const char *text = getenv(name);
    if (text == NULL || *text == '\0' || strlen(text) >= CONFIG_TEXT_BYTES)
        return NULL;
    strcpy(copy, text);
    return copy;
}

static double env_double(const char *name, double fallback)
{
    const char *text = getenv(name);
    if (text == NULL || *text == '\0')
        return fallback;
    char *end = NULL;
    double value = strtod(text, &end);
    return (end != NULL && end != text) ? value : fallback;
}

const tw_config *tw_config_get(void)
{
    /* Racing first readers compute the same values; the flag only saves the work. */
    if (TW_LIKELY(__atomic_load_n(&config_loaded, __ATOMIC_ACQUIRE)))
        return &config;
    config.run_dir = env_str("TIMEWARP_RUN_DIR", run_dir_text);
    config.coordinator = env_str("TIMEWARP_COORDINATOR", coordinator_text);
    config.spec_path = env_str("TIMEWARP_SPEC", spec_path_text);
    config.log_level = (int)env_int("TIMEWARP_LOG_LEVEL", TW_LOG_WARN);
    config.log_path = env_str("TIMEWARP_LOG", log_path_text);
    config.deadlock_grace_s = env_double("TIMEWARP_DEADLOCK_S", 3.0);
    config.allow_degraded = (int)env_int("TIMEWARP_ALLOW_DEGRADED", 0);
    config.backed_threshold = (uint64_t)env_int("TIMEWARP_BACKED_BYTES", 4LL << 20);
    config.device_count = (int)env_int("TIMEWARP_GPUS", 0);
    config.trace_api = (int)env_int("TIMEWARP_TRACE_API", 1);
    __atomic_store_n(&config_loaded, 1, __ATOMIC_RELEASE);
    return &config;
}
