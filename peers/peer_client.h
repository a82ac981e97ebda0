/*
 * peer_client.h — the outbound TS002 client pool: JSON bodies POSTed to member endpoints over
 * persistent HTTP/1.1 (optionally TLS) connections (TS002 1.0 §20: "persistent connections are
 * recommended"). One peer_client_t per worker thread, bound to that thread's event_base; it is
 * not thread-safe and every call and callback happens on that thread.
 *
 * Per endpoint (keyed by endpoint id; a pool survives registry rebuilds while the endpoint's
 * digest is unchanged, and is retired — drained, then freed — when it changes):
 *   - Connections: HTTP/1.1 keep-alive, at most ONE request at a time on a connection (HTTP/1.1
 *     without pipelining, like nginx upstream keepalive), so concurrency = connections. An idle
 *     connection is reused first (lowest slot first, so a small hot set stays warm and the rest
 *     age out when the peer closes them); a new one is opened only when none is idle.
 *   - Bound: at most L = ceil(max_in_flight / opts.inflight_divisor) outstanding requests per
 *     endpoint per client (divisor = number of worker threads gives ~max_in_flight overall).
 *     Beyond L, peer_client_post fails at once with RH_EAGAIN: nothing queues without bound.
 *   - Connection bounds (issue 18 item 5): at most C = min(L, opts.max_conns_per_endpoint)
 *     connections per endpoint and opts.max_conns_total for all endpoints of the client
 *     (counting connections open, opening, or closed but not yet reaped). A request that finds
 *     no idle connection and no room for a new one waits, in FIFO order per endpoint, for a
 *     connection of its endpoint to become idle; it still counts against L, so at most L - C
 *     wait, and beyond L the post fails with RH_EAGAIN (stats: rejected_inflight). Its deadline
 *     runs while it waits (RH_ETIMEDOUT). At the total bound, the least recently used idle
 *     connection of another endpoint is closed to make room (stats: evicted) and the endpoint
 *     waits for that slot; when no connection is idle it waits for any connection to close.
 *   - TLS: one SSL per connection from the endpoint's SSL_CTX, host name checked, SNI for DNS
 *     names; the last session ticket received is cached per pool and offered on the next
 *     connection (SSL_set_session), so reconnects resume instead of doing a full handshake.
 *   - Deadline: each request has a total deadline of the endpoint's timeout_ms from
 *     peer_client_post (connect + TLS + send + response). At the deadline the request is
 *     cancelled, its connection closed, and the callback gets RH_ETIMEDOUT (within a few ms:
 *     one timer per pool, armed for the earliest deadline — rh_deadlines.h; posting or
 *     completing a request does no timer operation).
 *   - Failures that count (consecutive, reset by any response): connect/TLS/HTTP errors
 *     (RH_EIO) and timeouts (RH_ETIMEDOUT) — transport failures only. Any HTTP response,
 *     5xx included, shows a live peer: a 5xx is its refusal of one message (ChirpStack answers
 *     500 to types it does not handle, Helium 500 "Downlink Lost"), delivered as RH_OK with
 *     the status and not counted (issue #11 item 7). Not counted either: RH_EIO on a reused
 *     keep-alive connection (the peer closed it while idle — a restart or its idle timeout);
 *     the caller still gets RH_EIO, is not retried (POST), and the next request opens a fresh
 *     connection, which is counted if it fails too.
 *   - Back-off (circuit breaker): after opts.failure_threshold consecutive failures the endpoint
 *     is OPEN for d = min(backoff_max_ms, backoff_base_ms * 2^k) ms scaled by a random factor in
 *     [1 - jitter_pct/100, 1], where k counts the back-off rounds since the last success. While
 *     OPEN, posts fail at once with RH_EAGAIN. When d has passed the endpoint is HALF-OPEN: ONE
 *     probe request is sent, others get RH_EAGAIN; the probe's success closes the circuit (k = 0,
 *     failures = 0), its failure reopens it with k + 1. Defaults: 3 failures, 100 ms, 30 s, 20 %.
 *   Endpoints are independent: a slow or dead endpoint only consumes its own L slots, so it
 *   never delays traffic to others (everything is asynchronous on the event loop).
 * Transport (libevent bufferevents + http_parser; no evhttp): a connection is a
 * bufferevent_socket, or a bufferevent_openssl for https, to the address the endpoint resolved
 * at build time (no DNS per request). peer_client_post writes the request at once — the pool's
 * precomputed head (request line, Host, Content-Type, Connection, Authorization), the caller's
 * extra headers, Content-Length, then the body — into the connection's output buffer, or, for a
 * request that waits for a connection, into an evbuffer of its own that moves onto the
 * connection later; either way the caller's path, headers and body may be freed as soon as it
 * returns. The response is parsed incrementally with http_parser (as the hub's own HTTP server
 * does; a plain connection reads it with its own event and recv, not through the bufferevent)
 * into a per-connection body buffer, at most opts.max_body bytes (more fails the request
 * with RH_EIO). A connection is not reused after a response with "Connection: close", bytes
 * following a response, an error or a timeout. Per request the pool allocates nothing of its own
 * (request slots with their completion events and connection slots are preallocated per pool)
 * except the evbuffer of a waiting request; only libevent's buffers and the body buffer grow with the bytes
 * sent and received.
 * Headers sent: Host, Content-Type: application/json, Connection: keep-alive, Content-Length,
 * Authorization (the endpoint's configured value, never logged), plus caller extras.
 */
#ifndef PEER_CLIENT_H
#define PEER_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "peer_addr.h"
#include "peer_endpoint.h"
#include "rh_err.h"

struct event_base;

typedef struct peer_client peer_client_t;

typedef struct peer_client_opts {
    unsigned failure_threshold;   /* consecutive failures that open the circuit; 0 = 3 */
    unsigned backoff_base_ms;     /* first back-off period; 0 = 100 */
    unsigned backoff_max_ms;      /* cap; 0 = 30000 */
    unsigned jitter_pct;          /* 0..100 (values > 100 clamp); default 20 (use 0 via
                                     no_jitter) */
    bool no_jitter;               /* deterministic back-off (tests) */
    unsigned inflight_divisor;    /* worker threads sharing max_in_flight; 0 = 1 */
    unsigned max_conns_per_endpoint; /* connections per endpoint (this client); 0 = the
                                        endpoint's in-flight bound L */
    unsigned max_conns_total;     /* connections of every endpoint together (this client);
                                     0 = unlimited */
    size_t max_body;              /* largest accepted response body, bytes; 0 = 1 MiB */
    const peer_addr_policy_t *addr_policy; /* NULL = connect anywhere; else every connection's
                                              address (after DNS) is checked with
                                              peer_addr_check and a refused one fails the request
                                              with RH_EIO (counted). Must outlive the client. */
    bool rx_stamps;                        /* plain connections read with the kernel's receive
                                              timestamps: peer_client_response_arrival_ns */
} peer_client_opts_t;

/* One extra request header: "name: value" is written into the request during peer_client_post
 * (nothing is kept). Neither may contain CR or LF; name may not be empty. */
typedef struct peer_header {
    const char *name;
    const char *value;
} peer_header_t;

/* Completion of a posted request, called exactly once, never from inside peer_client_post.
 *   status: RH_OK        an HTTP response arrived (any code, including 4xx/5xx);
 *           RH_ETIMEDOUT the deadline passed;
 *           RH_EIO       connect, TLS, or HTTP protocol error (http_parser refused the response),
 *                        response body larger than opts.max_body, endpoint unresolved, its
 *                        address refused by opts.addr_policy, the connection closed before the
 *                        response was complete, or the client is being freed;
 *   http_status: the response code for RH_OK, else 0;
 *   body/len: the response body (contiguous), valid only during the callback; NULL/0 if none.
 * The callback may call peer_client_post (also for the same endpoint). */
typedef void (*peer_response_cb)(int status, int http_status, const uint8_t *body, size_t len,
                                 void *arg);

/* Creates a client on `base` (must outlive the client). opts NULL = defaults.
 * Errors: RH_EINVAL (base NULL), RH_ENOMEM. */
int peer_client_new(struct event_base *base, const peer_client_opts_t *opts,
                    peer_client_t **out);

/* Frees the client: closes every connection and calls the callback of every outstanding
 * request with RH_EIO (posts from those callbacks fail with RH_EAGAIN). Must not be called from
 * inside one of this client's callbacks. NULL is a no-op. */
void peer_client_free(peer_client_t *c);

/* POSTs body (len bytes, copied) to endpoint `ep`. path: NULL = the URL's path (and query);
 * else the absolute request path to use ("/sns"), which must start with '/'. extra: n_extra
 * additional headers (may be NULL when n_extra = 0); they must not repeat Host, Content-Type,
 * Content-Length, Connection or Authorization.
 * Returns RH_OK: `cb` will be called exactly once, later. Any error: `cb` is never called:
 *   RH_EAGAIN  endpoint in back-off (OPEN, or HALF-OPEN with its probe outstanding), or its
 *              in-flight bound reached (requests on connections plus requests waiting for
 *              one: the wait queue is full), or the client is being freed;
 *   RH_EINVAL  NULL c/ep/cb, path not starting with '/', body NULL with len > 0, a header
 *              name/value with CR or LF;
 *   RH_ENOMEM  creating the endpoint's pool, a connection's bufferevent or SSL object, or
 *              writing the request into the connection's output buffer (or, when it waits for
 *              a connection, into its own evbuffer). */
int peer_client_post(peer_client_t *c, const peer_endpoint_t *ep, const char *path,
                     const void *body, size_t len, const peer_header_t *extra, size_t n_extra,
                     peer_response_cb cb, void *arg);

/* During a response callback (status RH_OK) of a client made with opts.rx_stamps: when the
 * kernel received the response's last bytes (CLOCK_REALTIME ns, as rh_real_ns; rh_recv_stamped
 * in rh_io.h), so the time it waited in the socket before the client read it is known. 0 on TLS
 * connections, for a response read before the connection's own read event took over, without
 * rx_stamps, outside a callback, or when the kernel gave no timestamp. */
uint64_t peer_client_response_arrival_ns(const peer_client_t *c);

/* Closes every idle connection now (e.g. after a configuration reload, or to force the next
 * request through a new connection). Outstanding requests are not affected. */
void peer_client_close_idle(peer_client_t *c);

enum peer_circuit {
    PEER_CIRCUIT_CLOSED = 0,   /* normal */
    PEER_CIRCUIT_OPEN = 1,     /* backing off: posts fail fast */
    PEER_CIRCUIT_HALF_OPEN = 2 /* back-off over: one probe allowed */
};

typedef struct peer_endpoint_stats {
    const char *endpoint_id;       /* valid until the next call into the client */
    unsigned in_flight;            /* outstanding requests */
    unsigned limit;                /* L, the per-client in-flight bound */
    unsigned connections;          /* open (or opening) connections */
    unsigned connection_limit;     /* C, the per-client connection bound of this endpoint */
    unsigned waiting;              /* requests waiting for a connection now */
    uint64_t queued;               /* requests that had to wait for a connection */
    uint64_t evicted;              /* idle connections closed to make room for another
                                      endpoint's (max_conns_total) */
    unsigned consecutive_failures;
    enum peer_circuit circuit;
    uint64_t backoff_remaining_ms; /* OPEN: time until HALF-OPEN, else 0 */
    uint64_t requests;             /* accepted by peer_client_post */
    uint64_t responses;            /* completed with RH_OK (any HTTP status) */
    uint64_t failures;             /* counted failures (transport errors, timeouts) */
    uint64_t stale_failures;       /* RH_EIO on a reused keep-alive connection the peer had
                                      closed: reported to the caller, not counted */
    uint64_t timeouts;
    uint64_t rejected_backoff;     /* RH_EAGAIN because of the circuit */
    uint64_t rejected_inflight;    /* RH_EAGAIN because of the bound */
    uint64_t connects;             /* connections opened */
    uint64_t tls_handshakes;       /* completed TLS handshakes */
    uint64_t tls_resumed;          /* ... of which resumed a cached session */
} peer_endpoint_stats_t;

/* Stats of the (current, non-retired) pool for `endpoint_id`. Returns RH_OK and *found;
 * RH_EINVAL for NULL arguments. A never-used endpoint is not found. */
int peer_client_stats(peer_client_t *c, const char *endpoint_id, peer_endpoint_stats_t *out,
                      bool *found);

/* Calls fn for every current pool (metrics). */
void peer_client_foreach_stats(peer_client_t *c,
                               void (*fn)(const peer_endpoint_stats_t *st, void *arg),
                               void *arg);

#endif
