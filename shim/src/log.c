/* One logging path for the shim: "timewarp[pid:tid] level: message", level from the env. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "tw_core.h"

static FILE *log_file;
static int log_opened;

static FILE *log_stream(void)
{
    if (__atomic_load_n(&log_opened, __ATOMIC_ACQUIRE))
        return log_file ? log_file : stderr;
    const char *pattern = tw_config_get()->log_path;
    FILE *opened = NULL;
    if (pattern != NULL) {
        char path[4096];
        size_t out = 0;
        for (const char *p = pattern; *p && out + 16 < sizeof path; p++) {
            if (p[0] == '%' && p[1] == 'p') {
                out += (size_t)snprintf(path + out, sizeof path - out, "%d", (int)getpid());
                p++;
            } else {
                path[out++] = *p;
            }
        }
        path[out] = '\0';
        opened = fopen(path, "a");
        if (opened != NULL)
            setvbuf(opened, NULL, _IOLBF, 0);
    }
    FILE *expected = NULL;
    if (!__atomic_compare_exchange_n(&log_file, &expected, opened, 0, __ATOMIC_ACQ_REL,
                                     __ATOMIC_ACQUIRE) && opened != NULL)
        fclose(opened);
    __atomic_store_n(&log_opened, 1, __ATOMIC_RELEASE);
    return log_file ? log_file : stderr;
}

void tw_log(int level, const char *fmt, ...)
{
    if (level > tw_config_get()->log_level)
        return;
    static const char *const level_names[] = {"error", "warn", "info", "debug"};
    char line[2048];
    int used = snprintf(line, sizeof line, "timewarp[%d:%u] %s: ", (int)getpid(), tw_thread_id(),
                        level_names[level < 0 ? 0 : (level > 3 ? 3 : level)]);
    va_list args;
    va_start(args, fmt);
    if (used > 0 && (size_t)used < sizeof line)
        used += vsnprintf(line + used, sizeof line - (size_t)used, fmt, args);
    va_end(args);
    if (used < 0)
        return;
    size_t length = strnlen(line, sizeof line - 2);
    line[length++] = '\n';
    line[length] = '\0';
    fputs(line, log_stream());
}

/* Names already warned about (pointer identity: generated stubs pass string literals). */
#define UNIMPL_SLOTS 1024
static const char *warned_names[UNIMPL_SLOTS];

void tw_unimplemented(const char *name)
{
    uint32_t name_id = tw_name_intern(name);
    tw_record *rec = tw_trace_claim();
    if (rec != NULL) {
        rec->name_id = name_id;
        rec->tid = tw_thread_id();
        rec->begin_ns = rec->end_ns = tw_now_ns();
        tw_trace_commit(rec, TW_REC_UNIMPLEMENTED);
    }
    uintptr_t slot = ((uintptr_t)name >> 3) % UNIMPL_SLOTS;
    for (unsigned probe = 0; probe < UNIMPL_SLOTS; probe++) {
        const char **cell = &warned_names[(slot + probe) % UNIMPL_SLOTS];
        const char *seen = __atomic_load_n(cell, __ATOMIC_ACQUIRE);
        if (seen == name)
            return;
        if (seen == NULL) {
            const char *expected = NULL;
            if (__atomic_compare_exchange_n(cell, &expected, name, 0, __ATOMIC_ACQ_REL,
                                            __ATOMIC_ACQUIRE)) {
                tw_log(TW_LOG_WARN, "unimplemented: %s (returns not-supported)", name);
                return;
            }
            if (expected == name)
                return;
        }
    }
}
