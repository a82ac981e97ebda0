/*
 * grpc_server.h — the hub's gRPC server: HTTP/2 (nghttp2, Debian libnghttp2-dev) on libevent
 * bufferevents, one grpc_server_t per worker thread and event_base; every worker binds the same
 * port with SO_REUSEPORT. Serves The Things Stack's Packet Broker Agent (issue 12; what the agent
 * sends: shared/reference/packet-broker-api.md section 2).
 *
 * Transport:
 *   - TLS with ALPN: the context must come through grpc_server_tls_prepare(), which installs an
 *     ALPN callback selecting "h2" (grpc-go >= 1.67 refuses a server that selects none) and
 *     failing the handshake for a client that offers no h2;
 *   - without TLS: h2c with prior knowledge (the connection starts with the HTTP/2 preface; an
 *     HTTP/1.1 request is answered with a GOAWAY and closed).
 * gRPC: POST only, content-type application/grpc[+proto], Length-Prefixed-Messages (grpc_frame.h),
 *   replies `:status 200` + content-type, messages, then trailers grpc-status / grpc-message
 *   (percent-encoded); a call refused before any reply message gets a trailers-only response.
 *   `grpc-timeout` sets the call's deadline: when it passes before the handler finished, the call
 *   ends with DEADLINE_EXCEEDED (the handler is told through its cancel callback).
 *   An unknown :path answers UNIMPLEMENTED ("unknown method <path>").
 * Protections (docs/CONFIG.md, section "grpc"):
 *   - SETTINGS_MAX_CONCURRENT_STREAMS = max_streams (>= 100; the agent multiplexes up to 4096
 *     workers on one connection); nghttp2 refuses streams beyond it;
 *   - header list cap (SETTINGS_MAX_HEADER_LIST_SIZE, enforced on receipt: RST_STREAM);
 *   - message cap: a Length-Prefixed-Message above max_msg_bytes ends the call with
 *     RESOURCE_EXHAUSTED before anything is allocated for it; a second request message, or
 *     none at END_STREAM, ends the call with INTERNAL (every served method takes exactly one);
 *   - connection cap per worker: at the cap the listener stops accepting until one closes;
 *   - request deadline: a call without grpc-timeout must bring its whole request (the one
 *     message and END_STREAM) within handshake_timeout_ms, else DEADLINE_EXCEEDED;
 *   - handshake/preface deadline and idle timeout: a connection without open streams for
 *     idle_timeout_ms gets GOAWAY and is closed (PINGs are answered by nghttp2 and do not count
 *     as activity); flow control is nghttp2's (windows are opened as data is consumed).
 *
 * Threads: everything runs on the server's event_base thread. A grpc_call_t belongs to the server;
 * the handler may keep it until it calls grpc_call_finish() (or until its cancel callback ran,
 * after which it must not be used).
 */
#ifndef RH_GRPC_SERVER_H
#define RH_GRPC_SERVER_H

#include "grpc_frame.h"
#include "rh_err.h"

#include <event2/event.h>
#include <event2/util.h>
#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct grpc_server grpc_server_t;
typedef struct grpc_call grpc_call_t;

/*
 * A method: its full path and what to do with the request. `on_request` runs once the request
 * message is complete (unary and server-streaming methods carry exactly one request message);
 * the handler replies with grpc_call_send() (zero, one or, for server streams, many messages) and
 * ends the call with grpc_call_finish(), now or later on the same thread. `on_cancel`, if set,
 * runs when the call ends without the handler (client reset, deadline, connection gone); the
 * call must not be used after it.
 */
typedef struct grpc_method {
    const char *path; /* "/org.packetbroker.routing.v1.ForwarderData/Publish" */
    void (*on_request)(grpc_call_t *call, const uint8_t *msg, size_t len, void *arg);
    void (*on_cancel)(grpc_call_t *call, void *arg);
} grpc_method_t;

/* Supplies the SSL_CTX for a new TLS connection (a new reference; called on accept). */
typedef SSL_CTX *(*grpc_tls_ctx_fn)(void *arg);

typedef struct grpc_opts {
    const char *bind_addr;      /* numeric IP; NULL = no listener (grpc_server_adopt only) */
    uint16_t port;              /* 0 = ephemeral */
    int reuse_port;             /* SO_REUSEPORT */
    grpc_tls_ctx_fn tls_ctx;    /* NULL = h2c; contexts must be grpc_server_tls_prepare()d */
    void *tls_ctx_arg;
    unsigned handshake_timeout_ms; /* accept -> HTTP/2 preface (incl. TLS), and a call's
                                      HEADERS -> complete request; default 10000 */
    unsigned idle_timeout_ms;   /* no open stream for this long -> GOAWAY, close; default 300000 */
    unsigned max_streams;       /* SETTINGS_MAX_CONCURRENT_STREAMS; default 100 */
    size_t max_header_bytes;    /* header list, per stream; default 16384 */
    size_t max_msg_bytes;       /* one request message; default 1 MiB */
    unsigned max_connections;   /* per server (worker); default 1024 */
    const grpc_method_t *methods;
    size_t n_methods;
    void *arg;                  /* passed to the method callbacks */
} grpc_opts_t;

/* Creates the server and starts listening (when bind_addr is set). Errors: NULL with diag
 * (bind failure, out of memory). Free with grpc_server_free on the same thread. */
grpc_server_t *grpc_server_new(struct event_base *base, const grpc_opts_t *opts, rh_diag_t *diag);

/* Serves an already-connected stream socket as if accepted (takes ownership of fd; closed on
 * failure). For in-process drivers such as the fuzz target fuzz_grpc_intake. */
void grpc_server_adopt(grpc_server_t *srv, evutil_socket_t fd);

/* The bound port (useful with port 0); 0 without a listener. */
uint16_t grpc_server_port(const grpc_server_t *srv);

/* Open connections. */
unsigned grpc_server_connections(const grpc_server_t *srv);

/* Stops accepting and ends every call with UNAVAILABLE ("server shutting down"), sends GOAWAY
 * and closes each connection once its output is written. */
void grpc_server_shutdown(grpc_server_t *srv);

/* Closes every connection (cancelling their calls) and frees the server. NULL is a no-op. */
void grpc_server_free(grpc_server_t *srv);

/* Makes ctx fit for gRPC: ALPN "h2" selected, anything else refused. Returns ctx. */
SSL_CTX *grpc_server_tls_prepare(SSL_CTX *ctx);

/* --- calls --- */

/* A request header by lower-case name ("authorization"), or NULL. Valid for the call's life. */
const char *grpc_call_header(const grpc_call_t *call, const char *name);

/* The call's :path. */
const char *grpc_call_path(const grpc_call_t *call);

/* Milliseconds left until the grpc-timeout deadline, or UINT64_MAX without one. */
uint64_t grpc_call_remaining_ms(const grpc_call_t *call);

/* Queues one reply message (copied; sends the response headers first if not yet sent). Errors:
 * RH_ENOMEM; RH_EAGAIN when more than the per-call output cap (1 MiB) is waiting for the client
 * to open its flow-control window (a subscriber that does not read); RH_EINVAL after finish. */
int grpc_call_send(grpc_call_t *call, const uint8_t *msg, size_t len);

/* The handler's own pointer for the call (NULL until set), e.g. to find its state again in
 * on_cancel. */
void grpc_call_set_user(grpc_call_t *call, void *user);
void *grpc_call_user(const grpc_call_t *call);

/* The client's address "ip:port" ("[ip6]:port"), "" when unknown (a socketpair). */
const char *grpc_call_peer(const grpc_call_t *call);

/* Bytes of reply messages waiting for the client's flow-control window. */
size_t grpc_call_queued_bytes(const grpc_call_t *call);

/* Ends the call with `status` and `message` (plain text, percent-encoded here; NULL = none).
 * The call must not be used afterwards. */
void grpc_call_finish(grpc_call_t *call, grpc_status_t status, const char *message);

#endif
