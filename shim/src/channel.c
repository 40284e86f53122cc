/* The connection to the run's coordinator: a unix socket speaking the records.h wire.
 * Used on cold paths only (cache misses, registration); one connection per process, opened
 * lazily, reopened in a forked child. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "tw_core.h"

static pthread_mutex_t channel_lock = PTHREAD_MUTEX_INITIALIZER;
static int channel_fd = -1;
static int channel_pid;
static int channel_failed;

static int write_all(int fd, const void *data, size_t bytes)
{
    const char *p = data;
    while (bytes > 0) {
        ssize_t n = send(fd, p, bytes, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        bytes -= (size_t)n;
    }
    return 0;
}

static int read_all(int fd, void *data, size_t bytes)
{
    char *p = data;
    while (bytes > 0) {
        ssize_t n = tw_io_recv(fd, p, bytes, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        bytes -= (size_t)n;
    }
    return 0;
}

static int connect_locked(void)
{
    if (channel_fd >= 0 && channel_pid == getpid())
        return 0;
    if (channel_fd >= 0) {
        close(channel_fd); /* inherited across fork: the parent's connection */
        channel_fd = -1;
    }
    const char *address = tw_config_get()->coordinator;
    if (address == NULL || channel_failed)
        return -1;
    if (strncmp(address, "unix:", 5) != 0) {
        TW_ERROR("unsupported coordinator address %s (expected unix:/path)", address);
        channel_failed = 1;
        return -1;
    }
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    strncpy(sa.sun_path, address + 5, sizeof sa.sun_path - 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        TW_ERROR("cannot reach the coordinator at %s: %s", address, strerror(errno));
        if (fd >= 0)
            close(fd);
        channel_failed = 1;
        return -1;
    }
    tw_wire_header header = {TW_WIRE_MAGIC, TW_MSG_HELLO, 1, sizeof(tw_hello)};
    tw_hello hello = {getpid(), getppid(), TW_ABI_VERSION, 0};
    if (write_all(fd, &header, sizeof header) != 0 || write_all(fd, &hello, sizeof hello) != 0) {
        close(fd);
        channel_failed = 1;
        return -1;
    }
    channel_fd = fd;
    channel_pid = getpid();
    return 0;
}

int tw_channel_predict(const tw_wire_desc *descs, const char *const *names, uint32_t count,
                       tw_prediction *out)
{
    pthread_mutex_lock(&channel_lock);
    int status = -1;
    if (connect_locked() != 0)
        goto done;
    size_t payload = 0;
    for (uint32_t i = 0; i < count; i++)
        payload += sizeof(tw_wire_desc) + descs[i].name_len;
    char *buffer = malloc(sizeof(tw_wire_header) + payload);
    if (buffer == NULL)
        goto done;
    tw_wire_header header = {TW_WIRE_MAGIC, TW_MSG_PREDICT, count, (uint32_t)payload};
    memcpy(buffer, &header, sizeof header);
    size_t at = sizeof header;
    for (uint32_t i = 0; i < count; i++) {
        memcpy(buffer + at, &descs[i], sizeof descs[i]);
        at += sizeof descs[i];
        memcpy(buffer + at, names[i], descs[i].name_len);
        at += descs[i].name_len;
    }
    int sent = write_all(channel_fd, buffer, at);
    free(buffer);
    tw_wire_header reply;
    if (sent != 0 || read_all(channel_fd, &reply, sizeof reply) != 0 || reply.magic != TW_WIRE_MAGIC) {
        TW_ERROR("coordinator connection lost during a prediction request");
        close(channel_fd);
        channel_fd = -1;
        channel_failed = 1;
        goto done;
    }
    if (reply.type != TW_MSG_PREDICTIONS || reply.count != count ||
        reply.payload_bytes != count * sizeof(tw_prediction)) {
        char text[512] = {0};
        size_t take = reply.payload_bytes < sizeof text - 1 ? reply.payload_bytes : sizeof text - 1;
        if (read_all(channel_fd, text, take) == 0)
            TW_ERROR("coordinator refused a prediction batch: %s", text);
        close(channel_fd);
        channel_fd = -1;
        channel_failed = 1;
        goto done;
    }
    if (read_all(channel_fd, out, reply.payload_bytes) == 0)
        status = 0;
done:
    pthread_mutex_unlock(&channel_lock);
    return status;
}

void tw_channel_after_fork(void)
{
    pthread_mutex_init(&channel_lock, NULL);
    channel_failed = 0; /* the child opens its own connection on first need */
}
