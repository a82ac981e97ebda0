/*
 * tls_conn.h — a server-side TLS connection's I/O on one event_base: OpenSSL (socket BIO, read
 * ahead) driven by two events of our own instead of libevent's bufferevent_openssl (issue #15).
 *
 * Why not bufferevent_openssl: every answer queued there turns the write event on and off (two
 * epoll_ctl) and waits for the next loop turn, and every read ends in an extra read() that
 * returns EAGAIN. Here:
 *   - a write with nothing queued is one SSL_write (one record, one write(2)) at once; what the
 *     socket does not take waits in the output buffer and is retried when writable (OpenSSL's
 *     rule for a retried SSL_write — the same bytes, at least as many — holds because the output
 *     buffer keeps them first and only grows: SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
 *   - reading asks OpenSSL for records while it still has buffered bytes (SSL_has_pending), so
 *     one read(2) (read ahead, up to OpenSSL's 16 KiB+ buffer) serves every record it brought;
 *     no read(2) just to learn there is nothing more (the level-triggered event says so).
 * TLS itself is OpenSSL's: the handshake (SSL_do_handshake, non-blocking, WANT_READ/WANT_WRITE),
 * records, alerts, close_notify on close. Renegotiation is refused by the SSL_CTX
 * (tls_server_ctx_new: SSL_OP_NO_RENEGOTIATION); deadlines (handshake included) are the owner's.
 *
 * Callbacks run on the event loop's thread, never from inside tls_conn_send/read_enable, so the
 * owner may tls_conn_free the connection from any callback. All functions: the base's thread.
 */
#ifndef RH_TLS_CONN_H
#define RH_TLS_CONN_H

#include <event2/buffer.h>
#include <event2/event.h>
#include <openssl/ssl.h>
#include <stddef.h>
#include <sys/uio.h>

typedef struct tls_conn tls_conn_t;

enum {
    TLS_CONN_EOF = 1,   /* the client closed (close_notify or TCP EOF); reading has stopped */
    TLS_CONN_ERROR = 2, /* handshake, record or socket error; see tls_conn_error */
};

typedef struct tls_conn_cbs {
    void (*read)(tls_conn_t *t, void *arg);             /* new plaintext in tls_conn_input */
    void (*drained)(tls_conn_t *t, void *arg);          /* queued output fully written */
    void (*event)(tls_conn_t *t, int what, void *arg);  /* TLS_CONN_EOF or TLS_CONN_ERROR */
} tls_conn_cbs_t;

/* Starts the server side of a TLS connection on the connected non-blocking socket fd: the
 * handshake begins when the client's first bytes arrive. Takes ownership of fd and ssl (both
 * released by tls_conn_free, also on failure here). read_max: reading pauses while this many
 * plaintext bytes wait unconsumed in the input buffer (it resumes once the owner drains below).
 * Errors: NULL (out of memory). */
tls_conn_t *tls_conn_new(struct event_base *base, int fd, SSL *ssl, size_t read_max,
                         const tls_conn_cbs_t *cbs, void *arg);

/* Plaintext received and not yet consumed (drain what you use). */
struct evbuffer *tls_conn_input(tls_conn_t *t);

/* Bytes queued for writing (not yet taken by the socket). */
size_t tls_conn_output_len(const tls_conn_t *t);

/* Sends the n buffers in order. now != 0 and nothing queued and the handshake done: encrypted
 * and written at once (one SSL_write per 16 KiB), the rest queued; now == 0: queued and written
 * from the event loop (the `drained` callback then fires; use it for close-after-write).
 * A write error is reported through the `event` callback, not here. Returns 0, or -1 when the
 * output buffer could not take the bytes (out of memory). */
int tls_conn_send(tls_conn_t *t, const struct iovec *iov, int n, int now);

/* Turns reading on or off (off: the client's bytes stay in the socket). */
void tls_conn_read_enable(tls_conn_t *t, int on);

/* The first OpenSSL error code recorded with TLS_CONN_ERROR (0: a socket error or none). */
unsigned long tls_conn_error(const tls_conn_t *t);

/* Sends close_notify (best effort, once the handshake is done), closes the socket and frees
 * everything but the SSL object's owner-visible pointer, which dies with it. NULL is a no-op. */
void tls_conn_free(tls_conn_t *t);

#endif
