/* Interned names: kernel, routine and API names get small ids; each new name is appended to
 * <run>/proc/<pid>.names so the records can stay fixed-size. Cold path (first use only). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tw_core.h"

typedef struct name_slot {
    uint64_t hash;
    uint32_t id;
    const char *text;
} name_slot;

static pthread_mutex_t names_lock = PTHREAD_MUTEX_INITIALIZER;
static name_slot *slots;          /* open addressing, capacity a power of two */
static uint32_t slot_capacity;
static const char **by_id;        /* id -> text; id 0 is "" */
static uint32_t name_count;
static uint32_t by_id_capacity;
static FILE *names_file;
static int names_file_pid;

static uint64_t hash_text(const char *text)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)text; *p; p++)
        h = (h ^ *p) * 1099511628211ULL;
    return h;
}

static FILE *names_output(void)
{
    const char *run_dir = tw_config_get()->run_dir;
    if (run_dir == NULL)
        return NULL;
    if (names_file != NULL && names_file_pid == getpid())
        return names_file;
    char path[4096];
    snprintf(path, sizeof path, "%s/proc", run_dir);
    mkdir(path, 0755); /* the first name may come before the trace file exists */
    snprintf(path, sizeof path, "%s/proc/%d.names", run_dir, (int)getpid());
    names_file = fopen(path, "a");
    names_file_pid = getpid();
    return names_file;
}

static void grow_slots(void)
{
    uint32_t capacity = slot_capacity ? slot_capacity * 2 : 4096;
    name_slot *fresh = calloc(capacity, sizeof *fresh);
    if (fresh == NULL)
        abort();
    for (uint32_t i = 0; i < slot_capacity; i++) {
        if (slots[i].text == NULL)
            continue;
        uint32_t at = (uint32_t)slots[i].hash & (capacity - 1);
        while (fresh[at].text != NULL)
            at = (at + 1) & (capacity - 1);
        fresh[at] = slots[i];
    }
    free(slots);
    slots = fresh;
    slot_capacity = capacity;
}

uint32_t tw_name_intern(const char *name)
{
    if (name == NULL)
        name = "";
    uint64_t hash = hash_text(name);
    pthread_mutex_lock(&names_lock);
    if (name_count * 2 + 2 >= slot_capacity)
        grow_slots();
    uint32_t at = (uint32_t)hash & (slot_capacity - 1);
    while (slots[at].text != NULL) {
        if (slots[at].hash == hash && strcmp(slots[at].text, name) == 0) {
            uint32_t id = slots[at].id;
            pthread_mutex_unlock(&names_lock);
            return id;
        }
        at = (at + 1) & (slot_capacity - 1);
    }
    if (name_count + 2 >= by_id_capacity) {
        uint32_t capacity = by_id_capacity ? by_id_capacity * 2 : 4096;
        const char **fresh = realloc(by_id, capacity * sizeof *fresh);
        if (fresh == NULL)
            abort();
        by_id = fresh;
        by_id_capacity = capacity;
        if (name_count == 0)
            by_id[name_count++] = "";
    }
    char *copy = strdup(name);
    if (copy == NULL)
        abort();
    uint32_t id = name_count++;
    by_id[id] = copy;
    slots[at] = (name_slot){hash, id, copy};
    FILE *out = names_output();
    if (out != NULL) {
        fprintf(out, "%u\t%s\n", id, copy);
        fflush(out);
    }
    pthread_mutex_unlock(&names_lock);
    return id;
}

const char *tw_name_get(uint32_t name_id)
{
    pthread_mutex_lock(&names_lock);
    const char *text = name_id < name_count ? by_id[name_id] : "";
    pthread_mutex_unlock(&names_lock);
    return text;
}

void tw_names_after_fork(void)
{
    /* The child has a new pid: its names file must hold every id it may still use. */
    pthread_mutex_init(&names_lock, NULL);
    names_file = NULL;
    FILE *out = names_output();
    if (out == NULL)
        return;
    for (uint32_t id = 1; id < name_count; id++)
        fprintf(out, "%u\t%s\n", id, by_id[id]);
    fflush(out);
}
