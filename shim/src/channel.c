/* The connection to the run's coordinator: a unix socket speaking the records.h wire.
 * Used on cold paths only (cache misses, registration); one connection per process, opened
 * lazily, reopened in a forked child, retried with back-off when lost. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
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

/* A lost or refused coordinator is retried for this long (back-off 10 ms doubling to 500 ms)
 * before predictions count as unavailable: a coordinator restarting or slow to accept under
 * load is not a reason to end a run, a dead one is. */
#define RETRY_BUDGET_NS (5 * 1000000000LL)
#define RETRY_FIRST_NS (10 * 1000000LL)
#define RETRY_MAX_NS (500 * 1000000LL)

static char failure_cause[256];

static void set_failure(const char *fmt, const char *detail)
{
    snprintf(failure_cause, sizeof failure_cause, fmt, detail);
}

static void close_locked(void)
{
    if (channel_fd >= 0)
        close(channel_fd);
    channel_fd = -1;
}

/* One connection attempt; on failure failure_cause says why. */
static int connect_once_locked(void)
{
    if (channel_fd >= 0 && channel_pid == getpid())
        return 0;
    if (channel_fd >= 0)
        close_locked(); /* inherited across fork: the parent's connection */
    const char *address = tw_config_get()->coordinator;
    if (address == NULL) {
        set_failure("%s", "no coordinator: TIMEWARP_COORDINATOR is unset");
        return -1;
    }
    if (strncmp(address, "unix:", 5) != 0) {
        set_failure("unsupported coordinator address %s (expected unix:/path)", address);
        return -1;
    }
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    strncpy(sa.sun_path, address + 5, sizeof sa.sun_path - 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        char detail[200];
        snprintf(detail, sizeof detail, "%.120s: %.60s", address, strerror(errno));
        set_failure("cannot reach the coordinator at %s", detail);
        if (fd >= 0)
            close(fd);
        return -1;
    }
    tw_wire_header header = {TW_WIRE_MAGIC, TW_MSG_HELLO, 1, sizeof(tw_hello)};
    tw_hello hello = {getpid(), getppid(), TW_ABI_VERSION, 0};
    if (write_all(fd, &header, sizeof header) != 0 || write_all(fd, &hello, sizeof hello) != 0) {
        set_failure("the coordinator at %s closed the connection at hello", address);
        close(fd);
        return -1;
    }
    channel_fd = fd;
    channel_pid = getpid();
    return 0;
}

/* 0 answered, -1 the connection failed (retry), -2 the coordinator refused (do not retry). */
static int request_once_locked(const char *buffer, size_t bytes, uint32_t count, tw_prediction *out)
{
    tw_wire_header reply;
    if (write_all(channel_fd, buffer, bytes) != 0 || read_all(channel_fd, &reply, sizeof reply) != 0 ||
        reply.magic != TW_WIRE_MAGIC) {
        set_failure("%s", "the coordinator connection was lost during a prediction request");
        close_locked();
        return -1;
    }
    if (reply.type != TW_MSG_PREDICTIONS || reply.count != count ||
        reply.payload_bytes != count * sizeof(tw_prediction)) {
        char text[200] = {0};
        size_t take = reply.payload_bytes < sizeof text - 1 ? reply.payload_bytes : sizeof text - 1;
        if (read_all(channel_fd, text, take) != 0)
            snprintf(text, sizeof text, "(no reason given)");
        set_failure("the coordinator refused a prediction batch: %s", text);
        close_locked();
        return -2;
    }
    if (read_all(channel_fd, out, reply.payload_bytes) != 0) {
        set_failure("%s", "the coordinator connection was lost during a prediction reply");
        close_locked();
        return -1;
    }
    return 0;
}

static void sleep_host_ns(int64_t ns)
{
    struct timespec ts = {ns / 1000000000LL, ns % 1000000000LL};
    while (syscall(SYS_nanosleep, &ts, &ts) != 0 && errno == EINTR) {
    }
}

int tw_channel_predict(const tw_wire_desc *descs, const char *const *names, uint32_t count,
                       tw_prediction *out)
{
    pthread_mutex_lock(&channel_lock);
    int status = -1;
    if (channel_failed)
        goto done;
    size_t payload = 0;
    for (uint32_t i = 0; i < count; i++)
        payload += sizeof(tw_wire_desc) + descs[i].name_len;
    char *buffer = malloc(sizeof(tw_wire_header) + payload);
    if (buffer == NULL) {
        set_failure("%s", "out of memory for a prediction batch");
        channel_failed = 1;
        goto done;
    }
    tw_wire_header header = {TW_WIRE_MAGIC, TW_MSG_PREDICT, count, (uint32_t)payload};
    memcpy(buffer, &header, sizeof header);
    size_t at = sizeof header;
    for (uint32_t i = 0; i < count; i++) {
        memcpy(buffer + at, &descs[i], sizeof descs[i]);
        at += sizeof descs[i];
        memcpy(buffer + at, names[i], descs[i].name_len);
        at += descs[i].name_len;
    }
    int64_t deadline = tw_host_mono_ns() + RETRY_BUDGET_NS;
    int64_t backoff = RETRY_FIRST_NS;
    for (int attempt = 0;; attempt++) {
        int rc = connect_once_locked();
        if (rc == 0)
            rc = request_once_locked(buffer, at, count, out);
        if (rc == 0) {
            if (attempt > 0)
                TW_WARN("coordinator answered again after %d retries", attempt);
            status = 0;
            break;
        }
        if (rc == -2 || tw_config_get()->coordinator == NULL ||
            strncmp(tw_config_get()->coordinator, "unix:", 5) != 0 || tw_host_mono_ns() + backoff > deadline) {
            channel_failed = 1;
            break;
        }
        sleep_host_ns(backoff);
        backoff = backoff * 2 > RETRY_MAX_NS ? RETRY_MAX_NS : backoff * 2;
    }
    free(buffer);
done:
    pthread_mutex_unlock(&channel_lock);
    return status;
}

const char *tw_channel_failure(void)
{
    return failure_cause[0] != '\0' ? failure_cause : "no coordinator";
}

void tw_channel_after_fork(void)
{
    pthread_mutex_init(&channel_lock, NULL);
    channel_failed = 0; /* the child opens its own connection on first need */
}
