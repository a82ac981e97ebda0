/*
 * conn_io.h — a server-side connection's I/O on one event_base, plain TCP or TLS (OpenSSL, socket
 * BIO, read ahead), driven by two events of our own instead of libevent's bufferevents (issue
 * #15).
 *
 * Why not bufferevent_socket / bufferevent_openssl: every answer queued there turns the write
 * event on and off (two epoll_ctl) and waits for the next loop turn; every plain read is sized with
 * an ioctl(FIONREAD) and every TLS read ends in an extra read() that returns EAGAIN. Here:
 *   - a write with nothing queued leaves at once: plain, one sendmsg of the caller's buffers;
 *     TLS, one SSL_write (one record, one write(2)). What the socket does not take waits in the
 *     output buffer and is written when writable (TLS: OpenSSL's rule for a retried SSL_write —
 *     the same bytes, at least as many — holds because the output buffer keeps them first and
 *     only grows: SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
 *   - plain reading is one recv (up to 16 KiB) into the input buffer per readable event; TLS
 *     reading asks OpenSSL for records while it still has buffered bytes (SSL_has_pending), so
 *     one read(2) serves every record it brought; no read(2) just to learn there is nothing more
 *     (the level-triggered event says so).
 * TLS itself is OpenSSL's: the handshake (SSL_do_handshake, non-blocking, WANT_READ/WANT_WRITE),
 * records, alerts, close_notify on close. Renegotiation is refused by the SSL_CTX
 * (tls_server_ctx_new: SSL_OP_NO_RENEGOTIATION); deadlines (handshake included) are the owner's.
 *
 * Callbacks run on the event loop's thread, never from inside conn_io_send/read_enable, so the
 * owner may conn_io_free the connection from any callback. All functions: the base's thread.
 * SIGPIPE: plain writes pass MSG_NOSIGNAL except the queued path (writev): the process ignores
 * SIGPIPE (hub.c).
 */
#ifndef RH_CONN_IO_H
#define RH_CONN_IO_H

#include <event2/buffer.h>
#include <event2/event.h>
#include <openssl/ssl.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

typedef struct conn_io conn_io_t;

enum {
    CONN_IO_EOF = 1,   /* the client closed (close_notify or TCP EOF); reading has stopped */
    CONN_IO_ERROR = 2, /* handshake, record or socket error; see conn_io_error */
};

typedef struct conn_io_cbs {
    void (*read)(conn_io_t *t, void *arg);             /* new plaintext in conn_io_input */
    void (*drained)(conn_io_t *t, void *arg);          /* queued output fully written */
    void (*event)(conn_io_t *t, int what, void *arg);  /* CONN_IO_EOF or CONN_IO_ERROR */
} conn_io_cbs_t;

/* Starts the server side of a connection on the connected non-blocking socket fd: ssl NULL for
 * plain TCP; otherwise TLS, whose handshake begins when the client's first bytes arrive. Takes
 * ownership of fd and ssl (both released by conn_io_free, also on failure here). read_max: reading pauses while this many
 * plaintext bytes wait unconsumed in the input buffer (it resumes once the owner drains below).
 * Errors: NULL (out of memory). */
conn_io_t *conn_io_new(struct event_base *base, int fd, SSL *ssl, size_t read_max,
                         const conn_io_cbs_t *cbs, void *arg);

/* Plaintext received and not yet consumed (drain what you use). */
struct evbuffer *conn_io_input(conn_io_t *t);

/* Bytes queued for writing (not yet taken by the socket). */
size_t conn_io_output_len(const conn_io_t *t);

/* Sends the n buffers in order. now != 0 and nothing queued and the handshake done: written at
 * once (plain: one sendmsg; TLS: one SSL_write of at most 16 KiB), the rest queued; now == 0: queued and written
 * from the event loop (the `drained` callback then fires; use it for close-after-write).
 * A write error is reported through the `event` callback, not here. Returns 0, or -1 when the
 * output buffer could not take the bytes (out of memory). */
int conn_io_send(conn_io_t *t, const struct iovec *iov, int n, int now);

/* Turns reading on or off (off: the client's bytes stay in the socket). */
void conn_io_read_enable(conn_io_t *t, int on);

/* The first OpenSSL error code recorded with CONN_IO_ERROR (0: a socket error, plain, or none). */
unsigned long conn_io_error(const conn_io_t *t);

/* Plain connections: reads from now on also take the kernel's receive timestamp
 * (rh_rx_stamps_on, rh_recv_stamped in rh_io.h), for conn_io_rx_ns. Returns 0, or -1 for a TLS
 * connection (OpenSSL reads the socket) or when setsockopt fails (nothing changes then). */
int conn_io_rx_stamps(conn_io_t *t);

/* With conn_io_rx_stamps: the receive timestamp (CLOCK_REALTIME ns, as rh_real_ns) of the
 * last packet whose bytes the latest read returned; 0 before the first read, when that read
 * came without a timestamp, or without stamps. */
uint64_t conn_io_rx_ns(const conn_io_t *t);

/* TLS: sends close_notify (best effort, once the handshake is done). Closes the socket and frees
 * everything but the SSL object's owner-visible pointer, which dies with it. NULL is a no-op. */
void conn_io_free(conn_io_t *t);

#endif
