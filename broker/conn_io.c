/*
 * conn_io.c — a server-side connection's I/O, plain or TLS, on our own events (see conn_io.h).
 *
 * Invariants:
 *  - the read event is added iff reading can progress: the handshake waits for the client, a
 *    write waits for a read (write_wants_read), or the owner reads (read_on) below read_max; never
 *    while an operation waits for the socket to become writable (a level-triggered read event
 *    would fire without progress);
 *  - the write event is added iff an operation waits for the socket to become writable
 *    (hs_wants_write, read_wants_write, wblocked); a write with nothing blocked is tried at once
 *    or from an event_active turn, never by adding the event (no epoll_ctl per answer);
 *  - the output buffer starts with the bytes of the last SSL_write that wanted a retry, and a
 *    retry passes at least as many (<= CONN_IO_CHUNK, pulled up contiguous): OpenSSL's retry
 *    rule with SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER;
 *  - plain (ssl == NULL): handshaken from the start; reads go straight into the input buffer
 *    (one recv per readable event, sized to the buffer's free space, no ioctl(FIONREAD) as
 *    libevent's evbuffer_read does), answers with nothing queued leave with one sendmsg, and
 *    what the socket does not take is queued and written with writev when writable;
 *  - user callbacks run only from deliver() at the end of an event handler; conn_io_free inside
 *    one marks the connection dead and the handler frees it when it unwinds (busy == 0).
 */
#include "conn_io.h"

#include "rh_io.h"

#include <errno.h>
#include <openssl/err.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define CONN_IO_CHUNK 16384 /* plaintext bytes per SSL_write (one TLS record); plain: per recv */

struct conn_io {
    struct event_base *base;
    int fd;
    SSL *ssl;
    struct event *rev, *wev;
    struct evbuffer *in, *out;
    size_t read_max;
    conn_io_cbs_t cbs;
    void *arg;
    unsigned long err;
    int busy;
    unsigned handshaken : 1, read_on : 1, wm_paused : 1, eof : 1, failed : 1, dead : 1;
    unsigned hs_wants_write : 1, read_wants_write : 1, write_wants_read : 1, wblocked : 1;
    unsigned rev_on : 1, wev_on : 1, got : 1, drained : 1, stamps : 1;
    uint64_t rx_ns; /* stamps: receive timestamp of the last bytes read (0: none yet) */
    int report; /* CONN_IO_EOF / CONN_IO_ERROR not yet delivered */
};

static void update_events(conn_io_t *t)
{
    int live = !t->dead && !t->failed;
    int want_w = live && (t->hs_wants_write || t->read_wants_write || t->wblocked);
    int want_r = live && !t->eof && !t->hs_wants_write && !t->read_wants_write &&
                 (!t->handshaken || t->write_wants_read || (t->read_on && !t->wm_paused));
    if (want_r != t->rev_on) {
        if (want_r)
            event_add(t->rev, NULL);
        else
            event_del(t->rev);
        t->rev_on = (unsigned)want_r;
    }
    if (want_w != t->wev_on) {
        if (want_w)
            event_add(t->wev, NULL);
        else
            event_del(t->wev);
        t->wev_on = (unsigned)want_w;
    }
}

static void fail(conn_io_t *t, unsigned long code)
{
    if (!t->failed) {
        t->failed = 1;
        t->err = code;
        t->report |= CONN_IO_ERROR;
    }
    ERR_clear_error();
}

/* Classifies a failed SSL call that is neither WANT_READ nor WANT_WRITE: the client's EOF (TCP
 * EOF without close_notify included) or an error. */
static void fail_or_eof(conn_io_t *t, int e, int r)
{
    unsigned long code = ERR_peek_error();
    if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && code == 0 && r == 0) ||
        (e == SSL_ERROR_SSL && ERR_GET_REASON(code) == SSL_R_UNEXPECTED_EOF_WHILE_READING)) {
        t->eof = 1;
        t->report |= CONN_IO_EOF;
        ERR_clear_error();
        return;
    }
    fail(t, code);
}

/* Plain: writes what is queued (writev through the buffer's chains) until the socket is full. */
static void do_write_plain(conn_io_t *t)
{
    t->wblocked = 0;
    while (!t->failed && evbuffer_get_length(t->out)) {
        int r = evbuffer_write(t->out, t->fd);
        if (r > 0) {
            if (evbuffer_get_length(t->out) == 0)
                t->drained = 1;
            continue;
        }
        if (r < 0 && errno == EINTR)
            continue;
        if (r == 0 || errno == EAGAIN || errno == EWOULDBLOCK)
            t->wblocked = 1;
        else
            fail(t, 0);
        break;
    }
    update_events(t);
}

static void do_write(conn_io_t *t)
{
    if (!t->ssl) {
        do_write_plain(t);
        return;
    }
    t->wblocked = 0;
    while (!t->failed && !t->write_wants_read) {
        size_t len = evbuffer_get_length(t->out);
        if (len == 0)
            break;
        size_t n = len < CONN_IO_CHUNK ? len : CONN_IO_CHUNK;
        unsigned char *p = evbuffer_pullup(t->out, (ev_ssize_t)n);
        if (!p) {
            fail(t, 0);
            break;
        }
        ERR_clear_error();
        int r = SSL_write(t->ssl, p, (int)n);
        if (r > 0) {
            evbuffer_drain(t->out, (size_t)r);
            if (evbuffer_get_length(t->out) == 0)
                t->drained = 1;
            continue;
        }
        int e = SSL_get_error(t->ssl, r);
        if (e == SSL_ERROR_WANT_WRITE)
            t->wblocked = 1;
        else if (e == SSL_ERROR_WANT_READ)
            t->write_wants_read = 1;
        else
            fail(t, ERR_peek_error());
        break;
    }
    update_events(t);
}

/* Plain: one recv into the input buffer's free space; a full read leaves the rest to the next
 * (level-triggered) event, so one connection cannot hold the loop. */
static void do_read_plain(conn_io_t *t)
{
    while (!t->eof && !t->failed && t->read_on) {
        if (evbuffer_get_length(t->in) >= t->read_max) {
            t->wm_paused = 1;
            break;
        }
        struct evbuffer_iovec v;
        if (evbuffer_reserve_space(t->in, CONN_IO_CHUNK, &v, 1) < 1) {
            fail(t, 0);
            break;
        }
        size_t want = v.iov_len > CONN_IO_CHUNK ? CONN_IO_CHUNK : v.iov_len;
        uint64_t stamp = 0;
        ssize_t r = t->stamps ? rh_recv_stamped(t->fd, v.iov_base, want, &stamp)
                              : recv(t->fd, v.iov_base, want, 0);
        if (r > 0) {
            t->rx_ns = stamp; /* 0 when this read came without one: never a stale stamp */
            v.iov_len = (size_t)r;
            evbuffer_commit_space(t->in, &v, 1);
            t->got = 1;
            break;
        }
        evbuffer_commit_space(t->in, &v, 0);
        if (r == 0) {
            t->eof = 1;
            t->report |= CONN_IO_EOF;
        } else if (errno == EINTR) {
            continue;
        } else if (errno != EAGAIN && errno != EWOULDBLOCK) {
            fail(t, 0);
        }
        break;
    }
    update_events(t);
}

static void do_read(conn_io_t *t)
{
    if (!t->ssl) {
        do_read_plain(t);
        return;
    }
    unsigned char buf[CONN_IO_CHUNK];
    while (!t->eof && !t->failed && t->read_on && !t->read_wants_write) {
        if (evbuffer_get_length(t->in) >= t->read_max) {
            t->wm_paused = 1;
            break;
        }
        ERR_clear_error();
        int r = SSL_read(t->ssl, buf, sizeof buf);
        if (r > 0) {
            if (evbuffer_add(t->in, buf, (size_t)r) != 0) {
                fail(t, 0);
                break;
            }
            t->got = 1;
            /* Bytes OpenSSL already holds (read ahead brought several records, or a record
             * larger than buf) are taken now; otherwise the level-triggered read event says
             * when the socket has more — no read(2) that would only return EAGAIN. */
            if (!SSL_has_pending(t->ssl))
                break;
            continue;
        }
        int e = SSL_get_error(t->ssl, r);
        if (e == SSL_ERROR_WANT_READ)
            break;
        if (e == SSL_ERROR_WANT_WRITE) {
            t->read_wants_write = 1;
            break;
        }
        fail_or_eof(t, e, r);
        break;
    }
    update_events(t);
}

static void do_handshake(conn_io_t *t)
{
    ERR_clear_error();
    int r = SSL_do_handshake(t->ssl);
    t->hs_wants_write = 0;
    if (r == 1) {
        t->handshaken = 1;
        if (evbuffer_get_length(t->out))
            do_write(t);
        do_read(t); /* the client's first request may have come with its Finished */
        return;
    }
    int e = SSL_get_error(t->ssl, r);
    if (e == SSL_ERROR_WANT_WRITE)
        t->hs_wants_write = 1;
    else if (e != SSL_ERROR_WANT_READ)
        fail_or_eof(t, e, r);
    update_events(t);
}

static void destroy(conn_io_t *t)
{
    event_free(t->rev);
    event_free(t->wev);
    if (t->ssl && t->handshaken && !t->failed) {
        /* close_notify, best effort and without waiting for the client's */
        SSL_set_shutdown(t->ssl, SSL_RECEIVED_SHUTDOWN);
        SSL_shutdown(t->ssl);
    }
    if (t->ssl) {
        ERR_clear_error();
        SSL_free(t->ssl);
    }
    close(t->fd);
    evbuffer_free(t->in);
    evbuffer_free(t->out);
    free(t);
}

/* Runs the owner's callbacks for what the handler found, then frees a connection the owner
 * released meanwhile. */
static void deliver(conn_io_t *t)
{
    if (t->got && !t->dead) {
        t->got = 0;
        t->cbs.read(t, t->arg);
    }
    if (t->drained && !t->dead) {
        t->drained = 0;
        if (evbuffer_get_length(t->out) == 0 && t->cbs.drained)
            t->cbs.drained(t, t->arg);
    }
    if (t->report && !t->dead) {
        int what = t->report;
        t->report = 0;
        t->cbs.event(t, what, t->arg);
    }
    if (--t->busy == 0 && t->dead)
        destroy(t);
}

static void on_read(evutil_socket_t fd, short what, void *arg)
{
    conn_io_t *t = arg;
    (void)fd;
    (void)what;
    t->busy++;
    if (!t->eof && !t->failed && !t->dead) {
        if (!t->handshaken) {
            do_handshake(t);
        } else {
            if (t->write_wants_read) {
                t->write_wants_read = 0;
                do_write(t);
            }
            do_read(t);
        }
    }
    deliver(t);
}

static void on_write(evutil_socket_t fd, short what, void *arg)
{
    conn_io_t *t = arg;
    (void)fd;
    (void)what;
    t->busy++;
    if (!t->failed && !t->dead) {
        if (!t->handshaken) {
            if (t->hs_wants_write)
                do_handshake(t);
        } else {
            if (t->read_wants_write) {
                t->read_wants_write = 0;
                do_read(t);
            }
            do_write(t);
        }
    }
    deliver(t);
}

/* Input drained below read_max while reading was paused there: read again, starting with what
 * OpenSSL may already hold (the socket may not become readable for it). */
static void in_cb(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
    conn_io_t *t = arg;
    if (info->n_deleted && t->wm_paused && evbuffer_get_length(buf) < t->read_max) {
        t->wm_paused = 0;
        update_events(t);
        if (t->read_on && !t->dead)
            event_active(t->rev, EV_READ, 0);
    }
}

conn_io_t *conn_io_new(struct event_base *base, int fd, SSL *ssl, size_t read_max,
                         const conn_io_cbs_t *cbs, void *arg)
{
    conn_io_t *t = calloc(1, sizeof *t);
    if (!t) {
        SSL_free(ssl);
        close(fd);
        return NULL;
    }
    t->base = base;
    t->fd = fd;
    t->ssl = ssl;
    t->read_max = read_max;
    t->cbs = *cbs;
    t->arg = arg;
    t->read_on = 1;
    t->handshaken = ssl == NULL;
    t->rev = event_new(base, fd, EV_READ | EV_PERSIST, on_read, t);
    t->wev = event_new(base, fd, EV_WRITE | EV_PERSIST, on_write, t);
    t->in = evbuffer_new();
    t->out = evbuffer_new();
    if (!t->rev || !t->wev || !t->in || !t->out || (ssl && SSL_set_fd(ssl, fd) != 1) ||
        !evbuffer_add_cb(t->in, in_cb, t)) {
        if (t->rev)
            event_free(t->rev);
        if (t->wev)
            event_free(t->wev);
        if (t->in)
            evbuffer_free(t->in);
        if (t->out)
            evbuffer_free(t->out);
        ERR_clear_error();
        SSL_free(ssl);
        close(fd);
        free(t);
        return NULL;
    }
    if (!ssl) {
        update_events(t);
        return t;
    }
    SSL_set_accept_state(ssl);
    SSL_set_mode(ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_set_read_ahead(ssl, 1);
    /* A TCP EOF without close_notify is the client's EOF, not a fatal error (as nginx does): a
     * client that half-closes after its request still gets the answer. HTTP's own framing
     * (Content-Length, chunked) tells a truncated request, which is never handled. */
    SSL_set_options(ssl, SSL_OP_IGNORE_UNEXPECTED_EOF);
    update_events(t);
    return t;
}

struct evbuffer *conn_io_input(conn_io_t *t) { return t->in; }

size_t conn_io_output_len(const conn_io_t *t) { return evbuffer_get_length(t->out); }

unsigned long conn_io_error(const conn_io_t *t) { return t->err; }

int conn_io_rx_stamps(conn_io_t *t)
{
    if (t->ssl || rh_rx_stamps_on(t->fd) != 0)
        return -1;
    t->stamps = 1;
    return 0;
}

uint64_t conn_io_rx_ns(const conn_io_t *t)
{
    return t->rx_ns;
}

int conn_io_send(conn_io_t *t, const struct iovec *iov, int n, int now)
{
    size_t total = 0;
    for (int i = 0; i < n; i++)
        total += iov[i].iov_len;
    if (total == 0)
        return 0;
    if (!t->ssl && now && !t->failed && !t->dead && !t->wblocked &&
        evbuffer_get_length(t->out) == 0) {
        /* One sendmsg of every buffer, now; what the socket does not take is queued. */
        struct msghdr mh = {.msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)n};
        ssize_t r;
        do
            r = sendmsg(t->fd, &mh, MSG_NOSIGNAL);
        while (r < 0 && errno == EINTR);
        if (r == (ssize_t)total)
            return 0;
        int err = r < 0 ? errno : 0;
        size_t done = r > 0 ? (size_t)r : 0;
        for (int i = 0; i < n; i++) {
            size_t len = iov[i].iov_len, skip = done < len ? done : len;
            done -= skip;
            if (len > skip && evbuffer_add(t->out, (const char *)iov[i].iov_base + skip,
                                           len - skip) != 0)
                return -1;
        }
        if (r >= 0 || err == EAGAIN || err == EWOULDBLOCK) {
            t->wblocked = 1; /* the socket is full: the write event takes the rest */
        } else {
            fail(t, 0);
            event_active(t->wev, EV_WRITE, 0); /* reports the error from the loop */
        }
        update_events(t);
        return 0;
    }
    if (t->ssl && now && t->handshaken && !t->failed && !t->dead && !t->wblocked && !t->write_wants_read &&
        evbuffer_get_length(t->out) == 0 && total <= CONN_IO_CHUNK) {
        /* One record, one write(2), now. */
        unsigned char tmp[CONN_IO_CHUNK];
        const unsigned char *p = iov[0].iov_base;
        if (n > 1) {
            size_t at = 0;
            for (int i = 0; i < n; i++) {
                memcpy(tmp + at, iov[i].iov_base, iov[i].iov_len);
                at += iov[i].iov_len;
            }
            p = tmp;
        }
        ERR_clear_error();
        int r = SSL_write(t->ssl, p, (int)total);
        if (r == (int)total)
            return 0;
        size_t done = r > 0 ? (size_t)r : 0;
        /* The rest is queued as one contiguous block: a retry passes the same bytes. */
        if (evbuffer_add(t->out, p + done, total - done) != 0)
            return -1;
        int e = r > 0 ? SSL_ERROR_NONE : SSL_get_error(t->ssl, r);
        if (e == SSL_ERROR_WANT_WRITE) {
            t->wblocked = 1;
        } else if (e == SSL_ERROR_WANT_READ) {
            t->write_wants_read = 1;
        } else if (e == SSL_ERROR_NONE) {
            event_active(t->wev, EV_WRITE, 0);
        } else {
            fail(t, ERR_peek_error());
            event_active(t->wev, EV_WRITE, 0); /* reports the error from the loop */
        }
        update_events(t);
        return 0;
    }
    size_t before = evbuffer_get_length(t->out);
    for (int i = 0; i < n; i++) {
        if (iov[i].iov_len && evbuffer_add(t->out, iov[i].iov_base, iov[i].iov_len) != 0)
            return -1;
    }
    /* Nothing blocked: write from the loop's next callbacks (no epoll_ctl); blocked: the
     * added event or the handshake takes it. */
    if (before == 0 && t->handshaken && !t->wblocked && !t->write_wants_read && !t->dead)
        event_active(t->wev, EV_WRITE, 0);
    return 0;
}

void conn_io_read_enable(conn_io_t *t, int on)
{
    if (t->dead)
        return;
    if (!on) {
        t->read_on = 0;
        update_events(t);
        return;
    }
    int was = t->read_on;
    t->read_on = 1;
    if (t->eof) { /* tell the owner again: it turned reading back on after the EOF */
        t->report |= CONN_IO_EOF;
        event_active(t->rev, EV_READ, 0);
        return;
    }
    update_events(t);
    if (!was && t->ssl && t->handshaken && SSL_has_pending(t->ssl))
        event_active(t->rev, EV_READ, 0);
}

void conn_io_free(conn_io_t *t)
{
    if (!t)
        return;
    if (t->busy) {
        t->dead = 1;
        update_events(t);
        return;
    }
    destroy(t);
}
