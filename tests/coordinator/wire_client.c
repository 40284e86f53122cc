/* A C client of the prediction wire, framed exactly as the shim's channel frames it: checks
 * that gcc's layout of records.h and the coordinator's cffi reading agree.
 * usage: wire_client SOCKET_PATH  -> one "duration_ns model" line per descriptor */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "timewarp/records.h"

static int write_all(int fd, const void *data, size_t n)
{
    const char *p = data;
    while (n > 0) {
        ssize_t k = write(fd, p, n);
        if (k <= 0)
            return -1;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

static int read_all(int fd, void *data, size_t n)
{
    char *p = data;
    while (n > 0) {
        ssize_t k = read(fd, p, n);
        if (k <= 0)
            return -1;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 2)
        return 2;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    strncpy(sa.sun_path, argv[1], sizeof sa.sun_path - 1);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        perror("connect");
        return 1;
    }
    tw_wire_header hello_header = {TW_WIRE_MAGIC, TW_MSG_HELLO, 1, sizeof(tw_hello)};
    tw_hello hello = {getpid(), getppid(), TW_ABI_VERSION, 0};
    write_all(fd, &hello_header, sizeof hello_header);
    write_all(fd, &hello, sizeof hello);

    enum { N = 3 };
    tw_wire_desc descs[N];
    memset(descs, 0, sizeof descs);
    const char *names[N] = {"_Z5saxpyifPfS_", "cublasLtMatmul", "cudaMemcpyAsync"};
    descs[0].desc.kind = TW_OP_KERNEL;
    descs[0].desc.grid[0] = 4096; descs[0].desc.grid[1] = 1; descs[0].desc.grid[2] = 1;
    descs[0].desc.block[0] = 256; descs[0].desc.block[1] = 1; descs[0].desc.block[2] = 1;
    descs[0].desc.bytes = 12u << 20;
    descs[1].desc.kind = TW_OP_GEMM;
    descs[1].desc.dtype_a = descs[1].desc.dtype_b = descs[1].desc.dtype_out = TW_DT_BF16;
    descs[1].desc.dtype_compute = TW_DT_F32;
    descs[1].desc.dims[0] = 2048; descs[1].desc.dims[1] = 4096; descs[1].desc.dims[2] = 1024;
    descs[1].desc.dims[3] = 1;
    descs[2].desc.kind = TW_OP_MEMCPY;
    descs[2].desc.dims[0] = TW_COPY_H2D_PINNED;
    descs[2].desc.bytes = 1u << 26;
    size_t payload = 0;
    for (int i = 0; i < N; i++) {
        descs[i].name_len = (uint32_t)strlen(names[i]);
        payload += sizeof(tw_wire_desc) + descs[i].name_len;
    }
    tw_wire_header header = {TW_WIRE_MAGIC, TW_MSG_PREDICT, N, (uint32_t)payload};
    write_all(fd, &header, sizeof header);
    for (int i = 0; i < N; i++) {
        write_all(fd, &descs[i], sizeof descs[i]);
        write_all(fd, names[i], descs[i].name_len);
    }
    tw_wire_header reply;
    tw_prediction out[N];
    if (read_all(fd, &reply, sizeof reply) != 0 || reply.magic != TW_WIRE_MAGIC ||
        reply.type != TW_MSG_PREDICTIONS || reply.count != N ||
        reply.payload_bytes != sizeof out || read_all(fd, out, sizeof out) != 0) {
        fprintf(stderr, "bad reply type %u count %u\n", reply.type, reply.count);
        return 1;
    }
    for (int i = 0; i < N; i++)
        printf("%lld %u %u\n", (long long)out[i].duration_ns, out[i].model, out[i].contention);
    tw_wire_header bye = {TW_WIRE_MAGIC, TW_MSG_BYE, 0, 0};
    write_all(fd, &bye, sizeof bye);
    close(fd);
    return 0;
}
