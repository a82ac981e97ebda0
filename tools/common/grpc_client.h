/*
 * grpc_client.h — a small gRPC client over HTTP/2 (nghttp2, Debian libnghttp2-dev) on a libevent
 * event_base: what roamns needs to speak to the hub as The Things Stack's Packet Broker Agent
 * does (docs/roamns.md "Packet Broker mode"; shared/reference/packet-broker-api.md section 2).
 *
 * One grpc_client_t is one HTTP/2 connection (TCP_NODELAY, as grpc-go's): plaintext h2c with
 * prior knowledge (the agent's `pba.insecure` mode), or TLS (bufferevent_openssl) offering ALPN
 * "h2" only and refusing a server that does not select it, as grpc-go >= 1.67 does; the server's
 * certificate is checked against the host name or IP address (the trust store is the caller's
 * SSL_CTX). Calls are unary or server-streaming: exactly one request message, any number of
 * reply messages, then the status from the trailers (grpc-status, percent-decoded
 * grpc-message). Framing, status codes and grpc-message coding are broker/grpc_frame.h, shared
 * with the hub's server; HTTP/2 (HPACK, SETTINGS, PING answers, flow control) is nghttp2's.
 *
 * Request headers as grpc-go sends them: :method POST, :scheme http|https, :path, :authority
 * host:port, content-type application/grpc, te trailers, user-agent, authorization
 * "Bearer <token>" when a token is given, grpc-timeout when the call has a deadline.
 *
 * A connection that fails (connect refused, reset, GOAWAY, protocol error) ends every open call
 * with GRPC_UNAVAILABLE and stays dead (grpc_client_alive() false): the owner frees it — never
 * from inside one of its callbacks — and makes a new one (the agent re-dials with back-off).
 *
 * Threads: everything on the event_base's thread; callbacks run from the event loop.
 */
#ifndef TOOLS_GRPC_CLIENT_H
#define TOOLS_GRPC_CLIENT_H

#include "grpc_frame.h"
#include "rh_err.h"

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;

typedef struct grpc_client grpc_client_t;
typedef struct grpc_ccall grpc_ccall_t;

/* A reply message of a call (the bytes are valid during the callback only). */
typedef void (*grpc_reply_fn)(void *arg, const uint8_t *msg, size_t len);
/* The call's end: `status` from grpc-status (GRPC_UNAVAILABLE when the connection failed,
 * GRPC_DEADLINE_EXCEEDED at the local deadline, GRPC_INTERNAL for a malformed reply or a stream
 * closed without trailers), `message` the decoded grpc-message or a local reason ("" if none;
 * valid during the callback). The call is freed after this returns. */
typedef void (*grpc_done_fn)(void *arg, int status, const char *message);

/*
 * Connects to host:port (numeric IPv4/IPv6 address or a name resolved here, blocking, once) and
 * starts the HTTP/2 session; calls may be started at once (they are sent when connected).
 * tls: NULL = h2c; else a client context (see grpc_client_tls_ctx) the client keeps a reference
 * to. max_msg: the largest reply message accepted (0 = 16 MiB, the agent's limit). A TLS
 * handshake failure, a certificate that does not verify or a server that selects no "h2" fails
 * the connection: its calls end GRPC_UNAVAILABLE with the reason.
 * Errors: NULL with diag ("host: ...", socket or allocation failure).
 */
grpc_client_t *grpc_client_new(struct event_base *base, const char *host, uint16_t port,
                               SSL_CTX *tls, size_t max_msg, rh_diag_t *diag);

/* A client TLS context for grpc_client_new: TLS 1.2+, peer verification against ca_file (PEM), or
 * the system trust store when ca_file is NULL (as the agent's Go client: system roots plus
 * `tls.root-ca`). Returns a new context (SSL_CTX_free) or NULL with diag naming `what`
 * ("packet_broker.tls_ca_file: cannot load ..."). */
SSL_CTX *grpc_client_tls_ctx(const char *ca_file, const char *what, rh_diag_t *diag);

/* Whether the connection is usable (not failed, not closed by the server). */
bool grpc_client_alive(const grpc_client_t *c);

/* Open calls on the connection. */
unsigned grpc_client_calls(const grpc_client_t *c);

/*
 * Starts a call: `path` ("/org.packetbroker.routing.v1.ForwarderData/Publish"), the serialized
 * request message (copied), bearer token (NULL = no authorization header), timeout_ms (0 = no
 * deadline: a subscription; else sent as grpc-timeout and enforced here too, ending the call with
 * GRPC_DEADLINE_EXCEEDED and RST_STREAM CANCEL). on_reply may be NULL (replies ignored); on_done
 * is called exactly once unless the call is cancelled first.
 * Errors: NULL (connection dead, allocation failure, nghttp2 refused the stream); nothing is
 * called back then.
 */
grpc_ccall_t *grpc_client_call(grpc_client_t *c, const char *path, const uint8_t *req, size_t len,
                               const char *bearer, unsigned timeout_ms, grpc_reply_fn on_reply,
                               grpc_done_fn on_done, void *arg);

/* Cancels a call (RST_STREAM CANCEL): no callback of it runs afterwards. May be called from the
 * call's own on_reply. */
void grpc_client_cancel(grpc_ccall_t *call);

/* Closes the connection; open calls are dropped without callbacks. NULL is a no-op. Must not be
 * called from one of this client's callbacks. */
void grpc_client_free(grpc_client_t *c);

#endif
