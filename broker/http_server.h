/*
 * http_server.h — the hub's HTTP/1.1 server: plain and TLS connections on conn_io.h's own I/O
 * (TLS: OpenSSL), with the http_parser library (Debian libhttp-parser-dev) for parsing. One hs_server_t per worker thread and event_base; every worker
 * binds the same port with SO_REUSEPORT.
 *
 * Why not evhttp: libevent 2.1's evhttp has only an idle timeout (a sender trickling one byte at a
 * time holds a connection forever), no connection cap, and no per-connection hook before the first
 * request; measured on this machine it also answers ~35% fewer requests/s than nginx.
 *
 * Protections (each a documented config value, docs/CONFIG.md):
 *   - header deadline: from accept (including the TLS handshake) or from the end of the previous
 *     request, until the request headers are complete; then a body deadline until the body is
 *     complete. Missing either closes the connection (slowloris, slow POST).
 *   - header bytes cap (431), body size cap (413, checked against Content-Length before reading
 *     the body, and while reading chunked bodies), malformed requests (400), then close.
 *   - connection cap per worker: at the cap the listener stops accepting (the kernel backlog holds
 *     new connections) until a connection closes.
 *   - one connection accepted per event-loop turn (as nginx's multi_accept off): requests on open
 *     connections are served before a burst of new connections (TLS handshakes) is let in.
 *   - accept() failures (out of file descriptors: EMFILE/ENFILE, ENOBUFS, ...) pause accepting for
 *     100 ms, doubling up to 1 s while they continue, instead of a busy retry loop; logged
 *     (rate-limited) and counted (hs_server_accept_errors).
 *   - keep-alive idle timeout.
 * One request per connection is handled at a time: pipelined requests wait unparsed in the
 * connection's input buffer (at most 64 KiB read ahead; reading then pauses) while a request
 * awaits its reply, so they are answered in order; a client that half-closes after its request
 * is still answered (on TLS too: a TCP EOF without close_notify counts as the client's EOF). A
 * keep-alive reply is written at once when nothing is queued — plain: one sendmsg of head + body;
 * TLS: one SSL_write (conn_io.h, not libevent's bufferevents) — and queued otherwise.
 *
 * Lifetime: an hs_req_t belongs to the server until the handler calls hs_reply*() exactly once;
 * the reply frees it. If the client goes away first, the request is orphaned (hs_req_gone() is
 * true) and the reply only frees it. All functions must be called on the server's thread.
 */
#ifndef RH_HTTP_SERVER_H
#define RH_HTTP_SERVER_H

#include <event2/event.h>
#include <openssl/ssl.h>
#include <stddef.h>
#include <stdint.h>

typedef struct hs_server hs_server_t;
typedef struct hs_conn hs_conn_t;
typedef struct hs_req hs_req_t;

typedef void (*hs_handler_fn)(hs_req_t *req, void *arg);

/* Supplies the SSL_CTX for a new TLS connection (called on accept; may change after a reload).
 * Must return a new reference (SSL_CTX_up_ref) or NULL to refuse the connection. */
typedef SSL_CTX *(*hs_tls_ctx_fn)(void *arg);

typedef struct hs_opts {
    const char *bind_addr;       /* numeric IPv4/IPv6 address, e.g. "127.0.0.1" */
    uint16_t port;               /* 0 = ephemeral (see hs_server_port) */
    int reuse_port;              /* SO_REUSEPORT, so several workers share the port */
    int listen_fd;               /* >= 0: use this already-bound listening socket instead */
    hs_tls_ctx_fn tls_ctx;       /* NULL = plain HTTP */
    void *tls_ctx_arg;
    unsigned header_timeout_ms;  /* default 10000 */
    unsigned body_timeout_ms;    /* default 30000 */
    unsigned idle_timeout_ms;    /* keep-alive idle, default 60000 */
    size_t max_header_bytes;     /* default 8192 */
    size_t max_body_bytes;       /* default 65536 */
    unsigned max_connections;    /* per server (worker); default 4096 */
    hs_handler_fn handler;
    void *handler_arg;
    int json_errors;             /* errors the server answers itself (400, 408, 413, 431, 503)
                                    as {"error": {"code": N, "message": "..."}} JSON (the admin
                                    API's shape) instead of text/plain */
    int rx_stamps;               /* plain connections read with the kernel's receive
                                    timestamps (conn_io_rx_stamps): hs_req_arrival_ns */
} hs_opts_t;

/* Creates the server and starts listening. Errors: NULL (logged with the reason: bind failure,
 * out of memory). The returned server must be freed with hs_server_free on the same thread. */
hs_server_t *hs_server_new(struct event_base *base, const hs_opts_t *opts);

/* Serves an already-connected stream socket fd as if the listener had accepted it from `peer`
 * (AF_INET or AF_INET6; decides loopback and the peer text). Takes ownership of fd (closed on
 * failure). For in-process drivers such as the fuzz target fuzz_peer_request, which feeds
 * requests through a socketpair. Same thread as the server. */
void hs_server_adopt(hs_server_t *srv, evutil_socket_t fd, const struct sockaddr *peer);

/* Changes the limits of a running server (SIGHUP reload): timeouts and sizes as in hs_opts_t,
 * 0 keeps the current value. Each applies from its next check on (a new timer, the next header
 * or body bytes, the next accept); raising max_connections resumes a paused accept, lowering it
 * below the open connections pauses it (nothing is closed). Call on the server's thread. */
typedef struct hs_limits {
    unsigned header_timeout_ms, body_timeout_ms, idle_timeout_ms;
    size_t max_header_bytes, max_body_bytes;
    unsigned max_connections;
} hs_limits_t;
void hs_server_set_limits(hs_server_t *srv, const hs_limits_t *l);

/* The bound port (useful with port 0). */
uint16_t hs_server_port(const hs_server_t *srv);

/* The listening socket (to share with other workers when not using SO_REUSEPORT). */
int hs_server_listen_fd(const hs_server_t *srv);

/* Stops accepting, closes idle connections, and lets requests in progress finish. `done` is
 * called (once) when no connection is left or after drain_ms, whichever is first; remaining
 * connections are then closed. */
void hs_server_drain(hs_server_t *srv, unsigned drain_ms, void (*done)(void *arg), void *arg);

/* Closes every connection and frees the server. NULL is a no-op. */
void hs_server_free(hs_server_t *srv);

/* Number of open connections and requests awaiting a reply. */
unsigned hs_server_connections(const hs_server_t *srv);

/* Number of failed accept() calls (each one paused accepting) since the server started. */
unsigned long hs_server_accept_errors(const hs_server_t *srv);

/* --- requests --- */

/* Method name ("POST"), request target path without query ("/sns"), and query ("a=1&b=2" or ""). */
const char *hs_req_method(const hs_req_t *req);
const char *hs_req_path(const hs_req_t *req);
const char *hs_req_query(const hs_req_t *req);

/* Header value by case-insensitive name, or NULL. The first occurrence wins; a request with two
 * Authorization, Host or Content-Type headers never reaches a handler (400 and close). */
const char *hs_req_header(const hs_req_t *req, const char *name);

/* The body (NUL-terminated for convenience; len excludes the NUL). Owned by the request. */
const char *hs_req_body(const hs_req_t *req, size_t *len);

/* Connection facts: TLS session (NULL for plain), whether the peer address is loopback, the
 * peer address as text, and a per-connection slot for the handler's cached data (e.g. the
 * authenticated member), released with `free_fn` when the connection closes. */
SSL *hs_req_ssl(const hs_req_t *req);
int hs_req_peer_is_loopback(const hs_req_t *req);
const char *hs_req_peer_addr(const hs_req_t *req);
void *hs_req_conn_data(const hs_req_t *req);
void hs_req_set_conn_data(hs_req_t *req, void *data, void (*free_fn)(void *));

/* Monotonic time (ns, rh_mono_ns) of the request's arrival: read when the server began parsing
 * the bytes that completed it (one clock read per read event), for latency accounting and the
 * members' rate limits. */
uint64_t hs_req_received_ns(const hs_req_t *req);

/* With hs_opts_t.rx_stamps on a plain connection: when the kernel received the request's last
 * bytes (CLOCK_REALTIME ns, as rh_real_ns; the receive timestamp of the read that completed it),
 * so the time the request waited in the socket before the server read it is known. 0 on TLS
 * connections, without rx_stamps, or when the kernel gave no timestamp. */
uint64_t hs_req_arrival_ns(const hs_req_t *req);

/* Whether the client has gone away (the reply will be discarded). */
int hs_req_gone(const hs_req_t *req);

/* Sends the response; req (its headers and body included) is no longer the caller's: on a
 * keep-alive connection it is reset and kept for the connection's next request, otherwise freed.
 * `extra_headers` is NULL or CRLF-terminated header
 * lines ("Content-Encoding: gzip\r\n"). content_type may be NULL when len == 0. After a reply
 * with status >= 400 to a request whose body was not fully read, the connection closes. */
void hs_reply(hs_req_t *req, int status, const char *content_type, const void *body, size_t len);
void hs_reply_ex(hs_req_t *req, int status, const char *content_type, const char *extra_headers,
                 const void *body, size_t len);

/* --- streamed responses (chunked transfer coding, RFC 9112 §7.1) ---
 * For long-lived answers such as the admin API's live capture (Server-Sent Events or JSON lines):
 * hs_stream_begin() sends the status line and headers with `Transfer-Encoding: chunked` and
 * `Connection: close`; the request then stays owned by the handler, which sends chunks with
 * hs_stream_write() and finishes with hs_stream_end() (terminating chunk; the connection closes
 * after the flush and the request is freed). While streaming, the connection has no deadline;
 * bytes the client sends are read and discarded, so a client that closes its side is noticed
 * at once: the request becomes orphaned (hs_req_gone() is true) and the handler must still call
 * hs_stream_end() (or hs_reply) to free it. Only for HTTP/1.1 requests.
 *
 * hs_stream_begin errors: RH_EINVAL (already replied or streaming, HTTP/1.0 client: the caller
 * should hs_reply instead), RH_EIO (client gone; the request is still owned).
 * hs_stream_write: `len` 0 is a no-op; RH_EIO when the client is gone; RH_EAGAIN when more than
 * `max_buffered` bytes already wait in the output buffer (a client that does not read: the chunk
 * is not queued, the caller drops it or ends the stream). */
int hs_stream_begin(hs_req_t *req, int status, const char *content_type, const char *extra_headers);
int hs_stream_write(hs_req_t *req, const void *data, size_t len, size_t max_buffered);
void hs_stream_end(hs_req_t *req);

/* Standard reason phrase for a status code. */
const char *hs_status_text(int status);

#endif
