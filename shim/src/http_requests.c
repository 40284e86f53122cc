/* HTTP on the run's clock, as MARK records at virtual times (emulator/outputs/serving.py):
 *
 * - client side: each request a process sends on a TCP connection it opened (connect) is
 *   "http request METHOD PATH" when its request line is written. A benchmark client whose
 *   result file keeps no send times (SGLang's bench_serving) still has them in the records.
 * - server side, on connections a process accepted: "http received METHOD PATH" when a request
 *   line is read, "http response STATUS" when a status line is written, "http chunk" for each
 *   write that carries a server-sent event ("data: ", within the first bytes of a chunked
 *   body's piece). Each has the connection's number (per process, from 1) in its value: a
 *   request's timeline as the server saw it, arrival to last streamed token.
 *
 * Only bytes that start a request line, a status line or an event are marked, on descriptors
 * this process connected or accepted; any other read or write pays one bit test. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "tw_core.h"

#define MAX_FDS 65536
#define MAX_PATH 96

typedef int (*connect_fn)(int, const struct sockaddr *, socklen_t);
typedef ssize_t (*write_fn)(int, const void *, size_t);
typedef ssize_t (*writev_fn)(int, const struct iovec *, int);
typedef ssize_t (*send_fn)(int, const void *, size_t, int);
typedef ssize_t (*sendto_fn)(int, const void *, size_t, int, const struct sockaddr *, socklen_t);
typedef ssize_t (*sendmsg_fn)(int, const struct msghdr *, int);

static struct {
    connect_fn connect;
    write_fn write;
    writev_fn writev;
    send_fn send;
    sendto_fn sendto;
    sendmsg_fn sendmsg;
} real;
static pthread_once_t resolve_once = PTHREAD_ONCE_INIT;

/* descriptors this process connected over TCP (IPv4 or IPv6), and those it accepted: a bit each */
static uint64_t tcp_clients[MAX_FDS / 64];
static uint64_t accepted[MAX_FDS / 64];
static uint32_t connection_of[MAX_FDS];   /* the accepted connection a descriptor holds now */
static uint32_t connections;

static void resolve_real(void)
{
    real.connect = (connect_fn)dlsym(RTLD_NEXT, "connect");
    real.write = (write_fn)dlsym(RTLD_NEXT, "write");
    real.writev = (writev_fn)dlsym(RTLD_NEXT, "writev");
    real.send = (send_fn)dlsym(RTLD_NEXT, "send");
    real.sendto = (sendto_fn)dlsym(RTLD_NEXT, "sendto");
    real.sendmsg = (sendmsg_fn)dlsym(RTLD_NEXT, "sendmsg");
}

static inline void ensure_real(void)
{
    pthread_once(&resolve_once, resolve_real);
}

static inline bool bit_set(const uint64_t *bits, int fd)
{
    return fd >= 0 && fd < MAX_FDS && (__atomic_load_n(&bits[fd / 64], __ATOMIC_RELAXED) >> (fd % 64)) & 1;
}

static void set_bit(uint64_t *bits, int fd, bool on)
{
    if (fd < 0 || fd >= MAX_FDS)
        return;
    uint64_t bit = 1ULL << (fd % 64);
    if (on)
        __atomic_fetch_or(&bits[fd / 64], bit, __ATOMIC_RELAXED);
    else
        __atomic_fetch_and(&bits[fd / 64], ~bit, __ATOMIC_RELAXED);
}

/* Still a stream socket (a descriptor closed and reused for a file or a pipe is not). */
static bool stream_socket(int fd)
{
    int type = 0;
    socklen_t type_len = sizeof type;
    return getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &type_len) == 0 && type == SOCK_STREAM;
}

/* "METHOD /path HTTP/1.x": `prefix` METHOD /path (the path up to its query), or false. */
static bool request_line(const char *prefix, const char *p, size_t n, char *out, size_t out_len)
{
    static const char *const METHODS[] = {"GET ", "POST ", "PUT ", "DELETE ", "PATCH ", "HEAD ", "OPTIONS "};
    for (size_t i = 0; i < sizeof METHODS / sizeof METHODS[0]; i++) {
        size_t m = strlen(METHODS[i]);
        if (n <= m || memcmp(p, METHODS[i], m) != 0 || p[m] != '/')
            continue;
        size_t end = m;
        while (end < n && end - m < MAX_PATH && p[end] != ' ' && p[end] != '?' && p[end] != '\r' && p[end] != '\n' &&
               p[end] != '\t')
            end++;
        snprintf(out, out_len, "%s%.*s", prefix, (int)end, p);
        return true;
    }
    return false;
}

/* Marks the request whose first bytes this write carries. A descriptor reused for something
 * other than a socket since its connect stops being a client. */
static void note_request(int fd, const void *buf, size_t len)
{
    char what[32 + MAX_PATH];
    if (!request_line("http request ", buf, len, what, sizeof what))
        return;
    int saved = errno;
    if (!stream_socket(fd))
        set_bit(tcp_clients, fd, false);
    else
        tw_trace_mark(what);
    errno = saved;
}

/* What a server writes on an accepted connection: a status line, or a piece of a streamed
 * body holding an event ("data: " after at most a chunk-size line). */
static void note_response(int fd, const char *p, size_t len)
{
    char what[32];
    if (len > 12 && memcmp(p, "HTTP/1.", 7) == 0 && p[8] == ' ')
        snprintf(what, sizeof what, "http response %.3s", p + 9);
    else if (memmem(p, len < 24 ? len : 24, "data:", 5) != NULL)
        snprintf(what, sizeof what, "http chunk");
    else
        return;
    int saved = errno;
    if (!stream_socket(fd))
        set_bit(accepted, fd, false);
    else
        tw_trace_mark_value(what, connection_of[fd]);
    errno = saved;
}

static void note_write(int fd, const void *buf, size_t len)
{
    if (TW_LIKELY(!bit_set(tcp_clients, fd) && !bit_set(accepted, fd)) || buf == NULL)
        return;
    if (bit_set(tcp_clients, fd))
        note_request(fd, buf, len);
    else
        note_response(fd, buf, len);
}

void tw_http_accepted(int fd)
{
    if (fd < 0 || fd >= MAX_FDS)
        return;
    connection_of[fd] = __atomic_add_fetch(&connections, 1, __ATOMIC_RELAXED);
    set_bit(tcp_clients, fd, false);
    set_bit(accepted, fd, true);
}

void tw_http_received(int fd, const void *buf, ssize_t bytes)
{
    if (TW_LIKELY(!bit_set(accepted, fd)) || bytes <= 0 || buf == NULL)
        return;
    char what[32 + MAX_PATH];
    if (request_line("http received ", buf, (size_t)bytes, what, sizeof what)) {
        int saved = errno;
        tw_trace_mark_value(what, connection_of[fd]);
        errno = saved;
    }
}

TW_EXPORT int connect(int fd, const struct sockaddr *addr, socklen_t len)
{
    ensure_real();
    int r = real.connect(fd, addr, len);
    int saved = errno;
    bool tcp = addr != NULL && (addr->sa_family == AF_INET || addr->sa_family == AF_INET6);
    set_bit(tcp_clients, fd, tcp && (r == 0 || saved == EINPROGRESS));
    set_bit(accepted, fd, false);
    errno = saved;
    return r;
}

TW_EXPORT ssize_t write(int fd, const void *buf, size_t count)
{
    ensure_real();
    note_write(fd, buf, count);
    return real.write(fd, buf, count);
}

TW_EXPORT ssize_t writev(int fd, const struct iovec *iov, int iovcnt)
{
    ensure_real();
    if (iov != NULL && iovcnt > 0)
        note_write(fd, iov[0].iov_base, iov[0].iov_len);
    return real.writev(fd, iov, iovcnt);
}

TW_EXPORT ssize_t send(int fd, const void *buf, size_t len, int flags)
{
    ensure_real();
    note_write(fd, buf, len);
    return real.send(fd, buf, len, flags);
}

TW_EXPORT ssize_t sendto(int fd, const void *buf, size_t len, int flags, const struct sockaddr *addr, socklen_t addr_len)
{
    ensure_real();
    note_write(fd, buf, len);
    return real.sendto(fd, buf, len, flags, addr, addr_len);
}

TW_EXPORT ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
    ensure_real();
    if (msg != NULL && msg->msg_iov != NULL && msg->msg_iovlen > 0)
        note_write(fd, msg->msg_iov[0].iov_base, msg->msg_iov[0].iov_len);
    return real.sendmsg(fd, msg, flags);
}
