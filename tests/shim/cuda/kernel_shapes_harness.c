/* Test harness for shim/src/kernel_shapes.c alone: builds one launch from a script on stdin
 * and prints the descriptor the family decoder makes of it. Device memory is simulated:
 * "alloc" makes a host-backed allocation that tw_mem_lookup finds.
 *
 *   name MANGLED                 the kernel (family and template facts from its name)
 *   grid X Y Z / block X Y Z
 *   alloc ID BYTES [I32...]      an allocation, its first int32 values set
 *   param BYTES                  the next parameter (zeroed)
 *   i32|i64|u8 OFFSET VALUE      a field of the current parameter
 *   ptr OFFSET ID [DELTA]        a pointer into allocation ID
 *   describe                     prints: family=F ok=0|1 kind=K bytes=B flops=F flags=X dims=d0,..,d7
 *   shape                        prints what the name says: family dtype causal local head_dim head_dim_v
 *   lists                        multi-tensor kernels: what the name says of the tensor lists, and
 *                                the metadata's size in the 4 KB and the 32 KB layouts */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernel_shapes.c"
#include "kernel_shapes_comm.c"

void tw_log(int level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "log%d: ", level);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

#define MAX_ALLOCS 64
static struct {
    char *data;
    uint64_t size;
} allocs[MAX_ALLOCS];

bool tw_mem_lookup(const void *ptr, tw_alloc *out)
{
    for (int i = 0; i < MAX_ALLOCS; i++) {
        char *base = allocs[i].data;
        if (base != NULL && (const char *)ptr >= base && (const char *)ptr < base + allocs[i].size) {
            memset(out, 0, sizeof *out);
            out->base = (uint64_t)(uintptr_t)base;
            out->size = allocs[i].size;
            out->kind = TW_MEM_DEVICE;
            out->backed = true;
            return true;
        }
    }
    return false;
}

int main(void)
{
    static char line[1 << 16];
    static tw_kernel_shape shape;
    static tw_param_layout layout;
    static char *params[TW_MAX_PARAMS];
    static void *args[TW_MAX_PARAMS];
    tw_desc desc;
    memset(&desc, 0, sizeof desc);
    desc.kind = TW_OP_KERNEL;
    uint32_t offset = 0;
    while (fgets(line, sizeof line, stdin) != NULL) {
        char word[32];
        if (sscanf(line, "%31s", word) != 1)
            continue;
        char *rest = line + strlen(word);
        if (strcmp(word, "name") == 0) {
            char *name = strtok(rest, " \t\r\n");
            tw_kernel_shape_init(name, &shape);
        } else if (strcmp(word, "grid") == 0) {
            sscanf(rest, "%u %u %u", &desc.grid[0], &desc.grid[1], &desc.grid[2]);
        } else if (strcmp(word, "block") == 0) {
            sscanf(rest, "%u %u %u", &desc.block[0], &desc.block[1], &desc.block[2]);
        } else if (strcmp(word, "alloc") == 0) {
            int id = 0;
            unsigned long long bytes = 0;
            int used = 0;
            sscanf(rest, "%d %llu%n", &id, &bytes, &used);
            allocs[id].data = calloc(1, bytes);
            allocs[id].size = bytes;
            char *cursor = rest + used;
            int32_t value;
            for (uint32_t i = 0; sscanf(cursor, "%d%n", &value, &used) == 1 && (i + 1) * 4 <= bytes; i++) {
                memcpy(allocs[id].data + i * 4, &value, 4);
                cursor += used;
            }
        } else if (strcmp(word, "param") == 0) {
            unsigned size = 0;
            sscanf(rest, "%u", &size);
            uint32_t i = layout.count++;
            params[i] = calloc(1, size + 8);
            args[i] = params[i];
            layout.offset[i] = (uint16_t)offset;
            layout.size[i] = (uint16_t)size;
            offset += size;
            layout.param_bytes = offset;
        } else if (strcmp(word, "i32") == 0 || strcmp(word, "i64") == 0 || strcmp(word, "u8") == 0) {
            unsigned at = 0;
            long long value = 0;
            sscanf(rest, "%u %lld", &at, &value);
            char *p = params[layout.count - 1] + at;
            if (word[0] == 'u') {
                uint8_t v = (uint8_t)value;
                memcpy(p, &v, 1);
            } else if (word[1] == '3') {
                int32_t v = (int32_t)value;
                memcpy(p, &v, 4);
            } else {
                memcpy(p, &value, 8);
            }
        } else if (strcmp(word, "ptr") == 0) {
            unsigned at = 0;
            int id = 0;
            long long delta = 0;
            sscanf(rest, "%u %d %lld", &at, &id, &delta);
            uint64_t p = (uint64_t)(uintptr_t)allocs[id].data + (uint64_t)delta;
            memcpy(params[layout.count - 1] + at, &p, 8);
        } else if (strcmp(word, "shape") == 0) {
            printf("family=%u dtype=%u causal=%u local=%u head_dim=%u head_dim_v=%u block_m=%u elem=%u\n",
                   shape.family, shape.dtype, shape.causal, shape.local, shape.head_dim, shape.head_dim_v,
                   shape.block_m, shape.name_elem_bytes);
        } else if (strcmp(word, "lists") == 0) {
            const tw_tensor_lists *m = &shape.lists;
            bool known = m->layout != LISTS_UNKNOWN;
            printf("family=%u layout=%u depth=%u scalar=%u read=%u write=%u scaled=%u block_out=%u "
                   "elem=%u,%u,%u,%u,%u small=%u large=%u\n", shape.family, m->layout, m->depth, m->scalar_bytes,
                   m->read_mask, m->write_mask, m->scaled_write_mask, m->block_out_bytes, m->elem_bytes[0],
                   m->elem_bytes[1], m->elem_bytes[2], m->elem_bytes[3], m->elem_bytes[4],
                   known ? tensor_list(m, false).bytes : 0, known ? tensor_list(m, true).bytes : 0);
        } else if (strcmp(word, "describe") == 0) {
            bool ok = tw_kernel_shape_describe(&shape, &layout, args, &desc);
            printf("family=%u ok=%d kind=%u bytes=%llu flops=%llu flags=%u dims=", shape.family, ok, desc.kind,
                   (unsigned long long)desc.bytes, (unsigned long long)desc.flops, desc.flags);
            for (int i = 0; i < 8; i++)
                printf("%s%lld", i ? "," : "", (long long)desc.dims[i]);
            printf("\n");
        }
    }
    return 0;
}
