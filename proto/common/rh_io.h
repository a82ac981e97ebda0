/*
 * rh_io.h — socket plumbing for the outbound client pool (peers/peer_client.c), header-only so
 * only the files that include it need libevent's headers: rh_send_now, a message's head and body
 * sent at once in one sendmsg on an idle socket, the rest queued (issue #15: no epoll_ctl on/off
 * and no wait for the next loop turn per message). (The intrusive lists that lived here are in
 * rh_dlist.h.)
 */
#ifndef RH_IO_H
#define RH_IO_H

#include <event2/buffer.h>
#include <stddef.h>
#include <sys/socket.h>
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

#endif
