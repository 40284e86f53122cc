/* The duration cache: canonical descriptor -> predicted duration. A miss creates a pending
 * slot; all pending slots are answered in one batch when a time is needed (timeline flush).
 * Without a coordinator (outside emulate), durations come from the spec's floor (model
 * "floor"); a run's coordinator that cannot answer ends the run (predictions_unavailable). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "timeline_internal.h"

static tw_prediction_slot **table;   /* open addressing over slot pointers */
static uint64_t table_capacity;
static uint64_t slot_count;
static tw_prediction_slot *pending_head;
static uint32_t pending_count;

static uint64_t hash_desc(const tw_desc *desc)
{
    const uint64_t *words = (const uint64_t *)desc;
    uint64_t h = 0x9e3779b97f4a7c15ULL;
    for (size_t i = 0; i < sizeof(tw_desc) / sizeof(uint64_t); i++) {
        h ^= words[i];
        h *= 0xbf58476d1ce4e5b9ULL;
        h ^= h >> 31;
    }
    return h;
}

static void grow_table(void)
{
    uint64_t capacity = table_capacity ? table_capacity * 2 : 8192;
    tw_prediction_slot **fresh = calloc(capacity, sizeof *fresh);
    if (fresh == NULL)
        abort();
    for (uint64_t i = 0; i < table_capacity; i++) {
        tw_prediction_slot *slot = table[i];
        if (slot == NULL)
            continue;
        uint64_t at = slot->hash & (capacity - 1);
        while (fresh[at] != NULL)
            at = (at + 1) & (capacity - 1);
        fresh[at] = slot;
    }
    free(table);
    table = fresh;
    table_capacity = capacity;
}

/* Duration without a coordinator: the per-launch floor, or the bytes at the link's rate. */
static int64_t floor_duration_ns(const tw_desc *desc)
{
    const tw_gpu_spec *spec = tw_spec();
    double bandwidth = spec->hbm_bytes_per_s;
    if (desc->kind == TW_OP_MEMCPY && desc->dims[0] != TW_COPY_D2D)
        bandwidth = spec->pcie_bytes_per_s;
    int64_t moved = bandwidth > 0 ? (int64_t)((double)desc->bytes / bandwidth * 1e9) : 0;
    return moved > spec->kernel_floor_ns ? moved : spec->kernel_floor_ns;
}

/* No answer from the coordinator. A run's coordinator that stopped answering ends the run with
 * the cause named, unless the user allowed a degraded run (then the summary and emulate's
 * closing line say so). A process given no coordinator at all (started by hand, outside
 * emulate) uses the floor, with a warning and, when it traces, a mark the summary lists. */
static void predictions_unavailable(void)
{
    static int reported;
    const tw_config *config = tw_config_get();
    char cause[400];
    snprintf(cause, sizeof cause, "predictions unavailable: %s", tw_channel_failure());
    if (config->coordinator != NULL && !config->allow_degraded)
        tw_fatal(cause);
    if (reported++)
        return;
    if (config->coordinator == NULL)
        TW_WARN("no coordinator (TIMEWARP_COORDINATOR unset: not started by emulate): durations are the "
                "spec's per-launch floor");
    else
        TW_ERROR("DEGRADED RUN: %s; every later prediction is the spec's per-launch floor", cause);
    char mark[420];
    snprintf(mark, sizeof mark, "degraded: %s", cause);
    tw_trace_mark(mark);   /* the summary lists these marks under "degraded" */
}

tw_prediction_slot *tw_predict_slot_locked(const tw_desc *desc)
{
    uint64_t hash = hash_desc(desc);
    if (TW_UNLIKELY((slot_count + 1) * 2 > table_capacity))
        grow_table();
    uint64_t at = hash & (table_capacity - 1);
    for (tw_prediction_slot *slot; (slot = table[at]) != NULL; at = (at + 1) & (table_capacity - 1))
        if (slot->hash == hash && memcmp(&slot->desc, desc, sizeof *desc) == 0)
            return slot;
    tw_prediction_slot *slot = calloc(1, sizeof *slot);
    if (slot == NULL)
        abort();
    slot->desc = *desc;
    slot->hash = hash;
    table[at] = slot;
    slot_count++;
    if (tw_config_get()->coordinator == NULL) {
        predictions_unavailable();   /* says so once */
        slot->duration_ns = floor_duration_ns(desc);
        slot->model = TW_MODEL_FLOOR;
        slot->ready = 1;
    } else {
        slot->next_pending = pending_head;
        pending_head = slot;
        pending_count++;
    }
    return slot;
}

tw_prediction_slot *tw_predict_lookup(const tw_desc *desc, const char *name)
{
    (void)name; /* the name travels by desc->name_id */
    return tw_predict_slot_locked(desc);
}

bool tw_predict_ready(const tw_prediction_slot *slot, int64_t *duration_ns, int *model)
{
    if (!slot->ready)
        return false;
    *duration_ns = slot->duration_ns;
    *model = (int)slot->model;
    return true;
}

#define BATCH_MAX 4096

void tw_predict_resolve_locked(void)
{
    while (pending_head != NULL) {
        tw_wire_desc *descs = calloc(BATCH_MAX, sizeof *descs);
        const char **names = calloc(BATCH_MAX, sizeof *names);
        tw_prediction *answers = calloc(BATCH_MAX, sizeof *answers);
        tw_prediction_slot **slots = calloc(BATCH_MAX, sizeof *slots);
        if (!descs || !names || !answers || !slots)
            abort();
        uint32_t count = 0;
        while (pending_head != NULL && count < BATCH_MAX) {
            tw_prediction_slot *slot = pending_head;
            pending_head = slot->next_pending;
            slot->next_pending = NULL;
            slots[count] = slot;
            descs[count].desc = slot->desc;
            names[count] = tw_name_get(slot->desc.name_id);
            descs[count].name_len = (uint32_t)strlen(names[count]);
            count++;
        }
        pending_count -= count;
        int64_t paused = tw_clock_pause_begin();
        bool answered = tw_channel_predict(descs, names, count, answers) == 0;
        tw_clock_pause_end(paused);
        if (!answered)
            predictions_unavailable();
        for (uint32_t i = 0; i < count; i++) {
            tw_prediction_slot *slot = slots[i];
            if (answered && answers[i].duration_ns >= 0) {
                slot->duration_ns = answers[i].duration_ns;
                slot->model = answers[i].model;
                slot->contention = answers[i].contention;
            } else {
                slot->duration_ns = floor_duration_ns(&slot->desc);
                slot->model = TW_MODEL_FLOOR;
            }
            slot->ready = 1;
        }
        free(descs);
        free(names);
        free(answers);
        free(slots);
    }
}

void tw_predict_resolve_pending(void)
{
    pthread_mutex_lock(&tw_timeline_lock);
    tw_predict_resolve_locked();
    pthread_mutex_unlock(&tw_timeline_lock);
}
