/* Every TIMEWARP_* environment variable the shim reads, read once. */
#include <stdlib.h>
#include <string.h>

#include "tw_core.h"

static tw_config config;
static int config_loaded;

static long long env_int(const char *name, long long fallback)
{
    const char *text = getenv(name);
    if (text == NULL || *text == '\0')
        return fallback;
    char *end = NULL;
    long long value = strtoll(text, &end, 0);
    return (end != NULL && end != text) ? value : fallback;
}

static const char *env_str(const char *name)
{
    const char *text = getenv(name);
    return (text != NULL && *text != '\0') ? text : NULL;
}

const tw_config *tw_config_get(void)
{
    /* Racing first readers compute the same values; the flag only saves the work. */
    if (TW_LIKELY(__atomic_load_n(&config_loaded, __ATOMIC_ACQUIRE)))
        return &config;
    config.run_dir = env_str("TIMEWARP_RUN_DIR");
    config.coordinator = env_str("TIMEWARP_COORDINATOR");
    config.spec_path = env_str("TIMEWARP_SPEC");
    config.log_level = (int)env_int("TIMEWARP_LOG_LEVEL", TW_LOG_WARN);
    config.log_path = env_str("TIMEWARP_LOG");
    config.backed_threshold = (uint64_t)env_int("TIMEWARP_BACKED_BYTES", 4LL << 20);
    config.device_count = (int)env_int("TIMEWARP_GPUS", 0);
    config.trace_api = (int)env_int("TIMEWARP_TRACE_API", 1);
    __atomic_store_n(&config_loaded, 1, __ATOMIC_RELEASE);
    return &config;
}
