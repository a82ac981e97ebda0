/*
 * rh_io.h — socket plumbing for the outbound client pool (peers/peer_client.c) and the server's
 * connections (broker/conn_io.c), header-only so only the files that include it need libevent's
 * headers: rh_send_now, a message's head and body sent at once in one sendmsg on an idle socket,
 * the rest queued (issue #15: no epoll_ctl on/off and no wait for the next loop turn per
 * message); rh_rx_stamps_on / rh_recv_stamped, the kernel's receive timestamp of what a recv
 * returned (relay.hub_latency: the time a message waited in the socket counts as the hub's).
 * (The intrusive lists that lived here are in rh_dlist.h.)
 */
#ifndef RH_IO_H
#define RH_IO_H

#include <event2/buffer.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <sys/uio.h>

/* Sends head (hn bytes) and body (len bytes, may be 0) in one non-blocking sendmsg on fd when
 * fd >= 0 (callers pass -1 unless the socket is a plain one with nothing queued: bytes must stay
 * in order), and appends whatever the socket did not take to `out`. A send error is not
 * reported here: the bytes are queued and the connection's own I/O then reports it. Returns 0,
 * or -1 when `out` could not take the rest (out of memory). */
static inline int rh_send_now(int fd, struct evbuffer *out, const void *head, size_t hn,
                              const void *body, size_t len)
{
    size_t sent = 0;
    if (fd >= 0) {
        struct iovec iov[2] = {{(void *)head, hn}, {(void *)body, len}};
        struct msghdr mh = {.msg_iov = iov, .msg_iovlen = len ? 2 : 1};
        ssize_t w = sendmsg(fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w > 0)
            sent = (size_t)w;
    }
    int bad = 0;
    if (sent < hn)
        bad |= evbuffer_add(out, (const char *)head + sent, hn - sent) != 0;
    size_t bsent = sent > hn ? sent - hn : 0;
    if (len > bsent)
        bad |= evbuffer_add(out, (const char *)body + bsent, len - bsent) != 0;
    return bad ? -1 : 0;
}

/* Asks the kernel to timestamp what fd receives (SO_TIMESTAMPNS: software receive timestamps,
 * CLOCK_REALTIME, taken when a packet reaches the host; man 7 socket). Enabling it on any socket
 * makes the kernel timestamp every received packet of the host (a clock read each). Returns 0 or
 * -1 (errno from setsockopt). */
static inline int rh_rx_stamps_on(int fd)
{
    int one = 1;
    return setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one);
}

/* recv(2) of at most len bytes into buf, flags 0, that also returns in *stamp_ns the receive
 * timestamp (CLOCK_REALTIME ns since the epoch, comparable with rh_real_ns) of the last packet
 * whose bytes it returned, when the socket has rh_rx_stamps_on and the kernel gave one; *stamp_ns
 * is left unchanged otherwise (TCP: the last packet's, tcp(7) with SO_TIMESTAMPNS). Returns
 * what recv returns (errno set on -1). */
static inline ssize_t rh_recv_stamped(int fd, void *buf, size_t len, uint64_t *stamp_ns)
{
    struct iovec iov = {buf, len};
    union {
        struct cmsghdr align;
        char b[CMSG_SPACE(sizeof(struct timespec))];
    } ctl;
    struct msghdr mh = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.b, .msg_controllen = sizeof ctl.b};
    ssize_t r = recvmsg(fd, &mh, 0);
    if (r <= 0)
        return r;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS &&
            c->cmsg_len >= CMSG_LEN(sizeof(struct timespec))) {
            struct timespec ts;
            memcpy(&ts, CMSG_DATA(c), sizeof ts);
            *stamp_ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
        }
    return r;
}

#endif
