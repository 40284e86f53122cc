/* Blocking reads on pipes and sockets (read, recv, recvfrom, recvmsg, accept, accept4): a thread
 * inside one would be "running" to the causal rule until the 20 ms uninterposed-sleep rule
 * catches it, holding every jump back meanwhile and letting its own clock run in real time.
 * When the call would block, it first waits for readability as an interposed poll (blocked, no
 * target; the receive timeout SO_RCVTIMEO as virtual target), then makes the real call.
 * Non-blocking descriptors and ready data pass straight through: for recv* at the cost of a
 * MSG_DONTWAIT attempt, for read and accept of one zero-timeout poll. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "actors.h"
#include "tw_core.h"

typedef ssize_t (*read_fn)(int, void *, size_t);
typedef ssize_t (*recv_fn)(int, void *, size_t, int);
typedef ssize_t (*recvfrom_fn)(int, void *, size_t, int, struct sockaddr *, socklen_t *);
typedef ssize_t (*recvmsg_fn)(int, struct msghdr *, int);
typedef int (*accept_fn)(int, struct sockaddr *, socklen_t *);
typedef int (*accept4_fn)(int, struct sockaddr *, socklen_t *, int);
typedef int (*ppoll_fn)(struct pollfd *, nfds_t, const struct timespec *, const sigset_t *);

static struct {
    read_fn read;
    recv_fn recv;
    recvfrom_fn recvfrom;
    recvmsg_fn recvmsg;
    accept_fn accept;
    accept4_fn accept4;
    ppoll_fn ppoll;
} real;
static pthread_once_t resolve_once = PTHREAD_ONCE_INIT;

static void resolve_real(void)
{
    real.read = (read_fn)dlsym(RTLD_NEXT, "read");
    real.recv = (recv_fn)dlsym(RTLD_NEXT, "recv");
    real.recvfrom = (recvfrom_fn)dlsym(RTLD_NEXT, "recvfrom");
    real.recvmsg = (recvmsg_fn)dlsym(RTLD_NEXT, "recvmsg");
    real.accept = (accept_fn)dlsym(RTLD_NEXT, "accept");
    real.accept4 = (accept4_fn)dlsym(RTLD_NEXT, "accept4");
    real.ppoll = (ppoll_fn)dlsym(RTLD_NEXT, "ppoll");
}

static inline void ensure_real(void)
{
    pthread_once(&resolve_once, resolve_real);
}

/* The shim's own I/O (the coordinator channel, /proc reads) is not the program waiting: it
 * must not mark the thread blocked (a prediction round trip is paused time, not a wait). */
ssize_t tw_io_read(int fd, void *buf, size_t count)
{
    ensure_real();
    return real.read(fd, buf, count);
}

ssize_t tw_io_recv(int fd, void *buf, size_t len, int flags)
{
    ensure_real();
    return real.recv(fd, buf, len, flags);
}

static bool nonblocking(int fd)
{
    int flags = fcntl(fd, F_GETFL);
    return flags < 0 || (flags & O_NONBLOCK);
}

static bool readable_now(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    struct timespec zero = {0, 0};
    return real.ppoll(&p, 1, &zero, NULL) != 0;   /* ready, hung up, invalid, or an error: go */
}

/* The socket's receive timeout in ns (-1: none; a non-socket has none). */
static int64_t receive_timeout_ns(int fd)
{
    struct timeval tv;
    socklen_t len = sizeof tv;
    if (getsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, &len) != 0 || (tv.tv_sec == 0 && tv.tv_usec == 0))
        return -1;
    return (int64_t)tv.tv_sec * 1000000000LL + (int64_t)tv.tv_usec * 1000LL;
}

/* Before a call that would block on fd: wait as a blocked actor. False when the wait timed out
 * (errno EAGAIN set: what the real call returns at its SO_RCVTIMEO). A real signal ends the
 * wait and the real call then blocks as it would have (its restart rules are the kernel's). */
static bool await_readable(int fd, const char *label)
{
    int64_t timeout = receive_timeout_ns(fd);
    int saved = errno;
    int r = tw_wait_fd_readable(fd, timeout, label);
    if (r == 0 && timeout >= 0) {
        errno = EAGAIN;
        return false;
    }
    errno = saved;
    return true;
}

TW_EXPORT ssize_t read(int fd, void *buf, size_t count)
{
    ensure_real();
    if (!readable_now(fd) && !nonblocking(fd) && !await_readable(fd, "read"))
        return -1;
    ssize_t n = real.read(fd, buf, count);
    tw_http_received(fd, buf, n);
    return n;
}

TW_EXPORT ssize_t __read_chk(int fd, void *buf, size_t count, size_t buflen)
{
    (void)buflen;
    return read(fd, buf, count);
}

/* recv*: one non-blocking attempt first; EAGAIN on a blocking socket means wait, then retry.
 * MSG_WAITALL must not be cut short by MSG_DONTWAIT: wait for the first bytes, then block. */
#define RECV_WITH_WAIT(label, attempt_call, blocking_call)                             \
    do {                                                                               \
        ensure_real();                                                                 \
        if (flags & MSG_WAITALL) {                                                     \
            if (!(flags & MSG_DONTWAIT) && !readable_now(fd) && !nonblocking(fd) &&    \
                !await_readable(fd, label))                                            \
                return -1;                                                             \
            return (blocking_call);                                                    \
        }                                                                              \
        for (;;) {                                                                     \
            ssize_t n = (attempt_call);                                                \
            if (n >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK) ||                 \
                (flags & MSG_DONTWAIT) || nonblocking(fd))                             \
                return n;                                                              \
            if (!await_readable(fd, label))                                            \
                return -1;                                                             \
        }                                                                              \
    } while (0)

static ssize_t recv_waiting(int fd, void *buf, size_t len, int flags)
{
    RECV_WITH_WAIT("recv", real.recv(fd, buf, len, flags | MSG_DONTWAIT), real.recv(fd, buf, len, flags));
}

static ssize_t recvfrom_waiting(int fd, void *buf, size_t len, int flags, struct sockaddr *addr, socklen_t *addrlen)
{
    RECV_WITH_WAIT("recvfrom", real.recvfrom(fd, buf, len, flags | MSG_DONTWAIT, addr, addrlen),
                   real.recvfrom(fd, buf, len, flags, addr, addrlen));
}

static ssize_t recvmsg_waiting(int fd, struct msghdr *msg, int flags)
{
    RECV_WITH_WAIT("recvmsg", real.recvmsg(fd, msg, flags | MSG_DONTWAIT), real.recvmsg(fd, msg, flags));
}

TW_EXPORT ssize_t recv(int fd, void *buf, size_t len, int flags)
{
    ssize_t n = recv_waiting(fd, buf, len, flags);
    if (!(flags & MSG_PEEK))
        tw_http_received(fd, buf, n);
    return n;
}

TW_EXPORT ssize_t recvfrom(int fd, void *buf, size_t len, int flags, struct sockaddr *addr, socklen_t *addrlen)
{
    ssize_t n = recvfrom_waiting(fd, buf, len, flags, addr, addrlen);
    if (!(flags & MSG_PEEK))
        tw_http_received(fd, buf, n);
    return n;
}

TW_EXPORT ssize_t recvmsg(int fd, struct msghdr *msg, int flags)
{
    ssize_t n = recvmsg_waiting(fd, msg, flags);
    if (n > 0 && !(flags & MSG_PEEK) && msg != NULL && msg->msg_iov != NULL && msg->msg_iovlen > 0)
        tw_http_received(fd, msg->msg_iov[0].iov_base, n < (ssize_t)msg->msg_iov[0].iov_len ? n
                                                                                         : (ssize_t)msg->msg_iov[0].iov_len);
    return n;
}

TW_EXPORT int accept(int fd, struct sockaddr *addr, socklen_t *addrlen)
{
    ensure_real();
    if (!readable_now(fd) && !nonblocking(fd) && !await_readable(fd, "accept"))
        return -1;
    int conn = real.accept(fd, addr, addrlen);
    tw_http_accepted(conn);
    return conn;
}

TW_EXPORT int accept4(int fd, struct sockaddr *addr, socklen_t *addrlen, int flags)
{
    ensure_real();
    if (!readable_now(fd) && !nonblocking(fd) && !await_readable(fd, "accept"))
        return -1;
    int conn = real.accept4(fd, addr, addrlen, flags);
    tw_http_accepted(conn);
    return conn;
}
