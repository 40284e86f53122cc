/* A first-fit allocator of address ranges: a sorted, coalesced list of free extents inside one
 * reserved span. The device arenas (memory.c: unbacked ranges; ipc.c: host-backed memory shared
 * with other processes) carve their allocations from one each. Callers serialise. */
#include <stdlib.h>
#include <string.h>

#include "tw_core.h"

int tw_extents_init(tw_extents *x, uint64_t base, uint64_t bytes)
{
    x->capacity = 64;
    x->free = malloc(x->capacity * sizeof *x->free);
    if (x->free == NULL)
        return TW_ERR_NOMEM;
    x->free[0] = (tw_extent){base, bytes};
    x->count = 1;
    x->base = base;
    x->bytes = bytes;
    return TW_OK;
}

uint64_t tw_extents_take(tw_extents *x, uint64_t bytes)
{
    for (size_t i = 0; i < x->count; i++) {
        tw_extent *e = &x->free[i];
        if (e->size < bytes)
            continue;
        uint64_t base = e->base;
        e->base += bytes;
        e->size -= bytes;
        if (e->size == 0) {
            memmove(e, e + 1, (x->count - i - 1) * sizeof(*e));
            x->count--;
        }
        return base;
    }
    return 0;
}

void tw_extents_give(tw_extents *x, uint64_t base, uint64_t bytes)
{
    size_t i = 0;
    while (i < x->count && x->free[i].base < base)
        i++;
    bool join_prev = i > 0 && x->free[i - 1].base + x->free[i - 1].size == base;
    bool join_next = i < x->count && base + bytes == x->free[i].base;
    if (join_prev && join_next) {
        x->free[i - 1].size += bytes + x->free[i].size;
        memmove(&x->free[i], &x->free[i + 1], (x->count - i - 1) * sizeof(tw_extent));
        x->count--;
    } else if (join_prev) {
        x->free[i - 1].size += bytes;
    } else if (join_next) {
        x->free[i].base = base;
        x->free[i].size += bytes;
    } else {
        if (x->count == x->capacity) {
            tw_extent *grown = realloc(x->free, 2 * x->capacity * sizeof(tw_extent));
            if (grown == NULL) {
                TW_WARN("device arena: lost %llu bytes of address space", (unsigned long long)bytes);
                return;
            }
            x->free = grown;
            x->capacity *= 2;
        }
        memmove(&x->free[i + 1], &x->free[i], (x->count - i) * sizeof(tw_extent));
        x->free[i] = (tw_extent){base, bytes};
        x->count++;
    }
}

bool tw_extents_contains(const tw_extents *x, uint64_t addr)
{
    return x->bytes != 0 && addr - x->base < x->bytes;
}
