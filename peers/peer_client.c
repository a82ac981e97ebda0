/*
 * peer_client.c — per-thread outbound TS002 client: endpoint pools of keep-alive HTTP/1.1
 * connections (bufferevent_socket or bufferevent_openssl, responses parsed with http_parser),
 * preallocated request slots with a total-deadline timer each, TLS session caching, and the
 * per-endpoint circuit breaker. See peer_client.h for the contract; notes on the mechanics:
 *
 *   - Transport: a request is the pool's precomputed head ("POST path HTTP/1.1", Host,
 *     Content-Type, Connection, Authorization) + Content-Length + extra headers + body, written
 *     into the connection's bufferevent; the response is parsed incrementally as it arrives. A
 *     plain connection, once connected, reads with its own event and one recv per readiness
 *     into a stack buffer (conn_plain_read_cb): the bufferevent's read path costs an
 *     ioctl(FIONREAD), an evbuffer chain and its callbacks per response (issue #15); the
 *     bufferevent keeps connecting and writing, and TLS connections read through it. (The first
 *     version used evhttp; measured per relayed message, evhttp's request
 *     objects, header lists and its own parser cost more than the whole TS002 decode.)
 *   - A connection is never reused after it failed or closed (an SSL object cannot be reused
 *     after an error). Dead connections are freed from a per-pool "reap" event (never from
 *     inside their own callbacks), and only once their request has completed.
 *   - A connect that fails at once (e.g. EMFILE) completes the request through its timer event
 *     (deferred_status) so that callbacks never run inside peer_client_post.
 *   - Idle keep-alive connections are closed after IDLE_S seconds without traffic, or when the
 *     peer closes them (EOF).
 */
#include "peer_client.h"

#include "rh_deadlines.h"
#include "rh_dlist.h"
#include "rh_io.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <arpa/inet.h>
#include <http_parser.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "peer_internal.h"
#include "peer_tls.h"
#include "rh_log.h"
#include "rh_time.h"

typedef struct peer_pool peer_pool_t;
typedef struct peer_conn peer_conn_t;
typedef struct peer_req peer_req_t;

enum conn_state { CONN_FREE = 0, CONN_LIVE, CONN_DEAD };
enum req_state { REQ_FREE = 0, REQ_ACTIVE, REQ_CANCELLING };

struct peer_conn {
    peer_pool_t *pool;
    peer_conn_t *idle_prev, *idle_next; /* the client's idle list (LRU first), when idle */
    bool in_idle;
    struct bufferevent *bev; /* socket or TLS bufferevent, owned */
    struct event *rd;        /* plain and connected: our read event (bev reads off), owned */
    bool is_tls;
    enum conn_state state;
    peer_req_t *req;         /* outstanding request, or NULL when idle */
    unsigned uses;           /* requests completed with a response on this connection */
    bool hs_counted;         /* TLS handshake accounted in stats */
    http_parser parser;      /* HTTP_RESPONSE, re-initialised per request */
    bool done;               /* response complete (parser paused) */
    bool body_too_large;
    uint8_t *body;           /* response body accumulator */
    size_t body_len, body_cap;
};

struct peer_req {
    peer_pool_t *pool;
    peer_conn_t *conn;
    struct event *timer;         /* deferred completion (event_active only, never added) */
    rh_deadline_t dl;            /* on the pool's deadline list while active */
    peer_response_cb cb;
    void *arg;
    enum req_state state;
    int err;                     /* transport error seen before completion */
    int deferred_status;         /* != 1: complete with this status from the timer */
    bool probe;                  /* the HALF-OPEN probe */
    bool stale;                  /* failed on a reused keep-alive connection: not counted */
    peer_req_t *next_free;
    /* waiting for a connection (the endpoint's or the client's connection bound was reached):
     * the serialized request, in the pool's FIFO */
    struct evbuffer *pending;
    peer_req_t *wait_next;
};

struct peer_pool {
    peer_client_t *client;
    peer_pool_t *next;           /* hash chain, or the retired list */
    char *id;
    uint64_t id_hash;
    uint8_t digest[32];
    bool tls, host_is_ip, resolved, retired;
    bool addr_refused_logged;    /* the address policy refused this pool's address (logged) */
    char *host, *addr, *path, *host_header, *authz;
    char *head;                  /* precomputed request head up to (excluding) Content-Length */
    size_t head_len;
    struct sockaddr_storage sa;  /* resolved address */
    int sa_len;
    uint16_t port;
    uint32_t timeout_ms;
    /* Deadlines: every request of a pool has the same duration, so the active requests form
     * one FIFO on one lazily armed timer (rh_deadlines.h): a request posted or completed costs
     * no timer operation (an event_add and an event_del per request before, issue #15). */
    rh_deadlines_t dl;
    SSL_CTX *ssl_ctx;            /* reference (SSL_CTX_up_ref) */
    SSL_SESSION *session;        /* last session ticket, for resumption */
    unsigned limit, n_conn_slots;
    unsigned conn_cap;           /* connections (open or opening) at most, <= n_conn_slots */
    peer_req_t *wait_head, *wait_tail; /* requests waiting for a connection, FIFO */
    unsigned n_waiting;
    bool starved;                /* in the client's list of pools waiting for a total slot */
    peer_pool_t *starved_next;
    peer_conn_t *conns;
    peer_req_t *reqs;
    peer_req_t *free_reqs;
    unsigned in_flight, n_conns;
    struct event *reap_ev;
    /* circuit breaker */
    enum peer_circuit circuit;
    unsigned consecutive, rounds;
    uint64_t open_until_ms;
    bool probe_out;
    int last_err;
    /* counters */
    uint64_t requests, responses, failures, timeouts, rej_backoff, rej_inflight, connects,
        handshakes, resumed, stale_failures, queued, evicted;
};

struct peer_client {
    struct event_base *base;
    peer_client_opts_t o;
    peer_pool_t **buckets;
    size_t mask, n_pools;
    peer_pool_t *retired;
    uint64_t rng;
    bool closing;
    unsigned n_conns;            /* open or opening connections of every pool */
    peer_conn_t *idle_head, *idle_tail; /* idle live connections, least recently used first */
    peer_pool_t *starved_head, *starved_tail; /* pools with waiters blocked by max_conns_total */
    uint64_t rx_ns; /* peer_client_response_arrival_ns of the response being
                       delivered (0 outside a callback or unknown) */
};

#define DEFERRED_NONE 1
#define IDLE_S 60 /* idle keep-alive connections are closed after this long */

static http_parser_settings resp_settings;

/* ---- helpers ------------------------------------------------------------------------------ */

static uint64_t rng_next(peer_client_t *c)
{
    uint64_t x = c->rng; /* xorshift64* */
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    c->rng = x;
    return x * 2685821657736338717ull;
}

static void schedule_reap(peer_pool_t *p)
{
    event_active(p->reap_ev, EV_TIMEOUT, 1);
}

/* ---- connection bounds: idle list (for eviction) and waiting requests ------------------- */

static void idle_remove(peer_conn_t *k)
{
    if (!k->in_idle)
        return;
    peer_client_t *c = k->pool->client;
    RH_QUEUE_UNLINK(c->idle_head, c->idle_tail, k, idle_prev, idle_next);
    k->in_idle = false;
}

static void idle_push(peer_conn_t *k)
{
    peer_client_t *c = k->pool->client;
    idle_remove(k);
    RH_QUEUE_APPEND(c->idle_head, c->idle_tail, k, idle_prev, idle_next);
    k->in_idle = true;
}

static void conn_mark_dead(peer_conn_t *k)
{
    idle_remove(k);
    if (k->state == CONN_LIVE) {
        k->state = CONN_DEAD;
        schedule_reap(k->pool);
    }
}

static void conn_free(peer_conn_t *k)
{
    struct bufferevent *bev = k->bev;
    if (bev && k->is_tls) {
        /* libevent frees the SSL without SSL_shutdown; OpenSSL would then treat the session as
         * "bad" and mark it non-resumable (ssl_clear_bad_session), defeating the session cache.
         * The connection is over either way (idle close, peer close, or failure after the
         * handshake), so record it as shut down. */
        SSL *ssl = bufferevent_openssl_get_ssl(bev);
        if (ssl && SSL_is_init_finished(ssl))
            SSL_set_shutdown(ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
    }
    idle_remove(k);
    if (k->rd) {
        event_free(k->rd); /* before bufferevent_free closes the socket */
        k->rd = NULL;
    }
    k->bev = NULL;
    k->req = NULL;
    k->uses = 0;
    k->hs_counted = false;
    free(k->body);
    k->body = NULL;
    k->body_len = k->body_cap = 0;
    if (k->state != CONN_FREE) {
        k->pool->n_conns--;
        k->pool->client->n_conns--;
    }
    k->state = CONN_FREE;
    if (bev)
        bufferevent_free(bev);
}

/* Frees a pool, also a partly built one (pool_new's failure path: conns or reqs may be NULL). */
static void pool_free(peer_pool_t *p)
{
    for (unsigned i = 0; p->conns && i < p->n_conn_slots; i++)
        if (p->conns[i].state != CONN_FREE)
            conn_free(&p->conns[i]);
    for (unsigned i = 0; p->reqs && i < p->limit; i++) {
        if (p->reqs[i].timer)
            event_free(p->reqs[i].timer);
        if (p->reqs[i].pending)
            evbuffer_free(p->reqs[i].pending);
    }
    if (p->reap_ev)
        event_free(p->reap_ev);
    rh_deadlines_fini(&p->dl);
    SSL_SESSION_free(p->session);
    SSL_CTX_free(p->ssl_ctx);
    free(p->conns);
    free(p->reqs);
    free(p->id);
    free(p->host);
    free(p->addr);
    free(p->path);
    free(p->host_header);
    if (p->head) {
        OPENSSL_cleanse(p->head, p->head_len); /* holds the Authorization value */
        free(p->head);
    }
    if (p->authz) {
        OPENSSL_cleanse(p->authz, strlen(p->authz));
        free(p->authz);
    }
    free(p);
}

/* Waiting requests (FIFO per pool) and pools waiting for a slot under max_conns_total. */
static void wait_push(peer_pool_t *p, peer_req_t *r)
{
    r->wait_next = NULL;
    if (p->wait_tail)
        p->wait_tail->wait_next = r;
    else
        p->wait_head = r;
    p->wait_tail = r;
    p->n_waiting++;
}

static void wait_remove(peer_pool_t *p, peer_req_t *r)
{
    peer_req_t *prev = NULL;
    for (peer_req_t *q = p->wait_head; q; prev = q, q = q->wait_next) {
        if (q != r)
            continue;
        if (prev)
            prev->wait_next = r->wait_next;
        else
            p->wait_head = r->wait_next;
        if (p->wait_tail == r)
            p->wait_tail = prev;
        p->n_waiting--;
        break;
    }
    r->wait_next = NULL;
    if (r->pending) {
        evbuffer_free(r->pending);
        r->pending = NULL;
    }
}

static void starved_add(peer_client_t *c, peer_pool_t *p)
{
    if (p->starved)
        return;
    p->starved = true;
    p->starved_next = NULL;
    if (c->starved_tail)
        c->starved_tail->starved_next = p;
    else
        c->starved_head = p;
    c->starved_tail = p;
}

static void starved_remove(peer_client_t *c, peer_pool_t *p)
{
    if (!p->starved)
        return;
    peer_pool_t *prev = NULL;
    for (peer_pool_t *q = c->starved_head; q; prev = q, q = q->starved_next)
        if (q == p) {
            if (prev)
                prev->starved_next = p->starved_next;
            else
                c->starved_head = p->starved_next;
            if (c->starved_tail == p)
                c->starved_tail = prev;
            break;
        }
    p->starved = false;
    p->starved_next = NULL;
}

static void pool_pump(peer_pool_t *p);
static void req_attach(peer_req_t *r, peer_conn_t *k);

/* Gives freed total slots to the pools that waited for one, in order. */
static void client_pump_starved(peer_client_t *c)
{
    while (c->starved_head && (!c->o.max_conns_total || c->n_conns < c->o.max_conns_total)) {
        peer_pool_t *p = c->starved_head;
        starved_remove(c, p);
        unsigned before = c->n_conns;
        pool_pump(p);
        if (p->starved && c->n_conns == before)
            break; /* nothing could be opened: wait for the next freed slot */
    }
}

static void retired_remove(peer_client_t *c, peer_pool_t *p)
{
    for (peer_pool_t **pp = &c->retired; *pp; pp = &(*pp)->next)
        if (*pp == p) {
            *pp = p->next;
            return;
        }
}

static void reap_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    peer_pool_t *p = arg;
    peer_client_t *c = p->client;
    for (unsigned i = 0; i < p->n_conn_slots; i++) {
        peer_conn_t *k = &p->conns[i];
        if (k->state == CONN_DEAD && !k->req)
            conn_free(k);
    }
    if (p->retired && p->in_flight == 0) {
        retired_remove(c, p);
        pool_free(p);
    } else {
        pool_pump(p);
    }
    client_pump_starved(c);
}

/* ---- circuit breaker ---------------------------------------------------------------------- */

static void circuit_open(peer_pool_t *p, uint64_t now)
{
    peer_client_t *c = p->client;
    uint64_t d = c->o.backoff_base_ms;
    for (unsigned i = 0; i < p->rounds && d < c->o.backoff_max_ms; i++)
        d *= 2;
    if (d > c->o.backoff_max_ms)
        d = c->o.backoff_max_ms;
    if (!c->o.no_jitter && c->o.jitter_pct) {
        uint64_t span = d * c->o.jitter_pct / 100;
        if (span)
            d -= rng_next(c) % (span + 1);
    }
    if (d == 0)
        d = 1;
    p->circuit = PEER_CIRCUIT_OPEN;
    p->open_until_ms = now + d;
    p->rounds++;
    RH_LOG(RH_LOG_WARN, "peers",
           "endpoint failing, backing off peer=%s failures=%u backoff_ms=%llu err=\"%s\"", p->id,
           p->consecutive, (unsigned long long)d, rh_strerror(p->last_err));
}

static void circuit_result(peer_pool_t *p, peer_req_t *r, bool failure, int err)
{
    if (r->probe)
        p->probe_out = false;
    if (failure) {
        p->failures++;
        p->consecutive++;
        p->last_err = err;
        if (r->probe || (p->circuit == PEER_CIRCUIT_CLOSED &&
                         p->consecutive >= p->client->o.failure_threshold))
            circuit_open(p, rh_mono_ms());
        return;
    }
    if (p->circuit != PEER_CIRCUIT_CLOSED)
        RH_LOG(RH_LOG_INFO, "peers", "endpoint recovered peer=%s", p->id);
    p->consecutive = 0;
    p->rounds = 0;
    p->circuit = PEER_CIRCUIT_CLOSED;
}

/* ---- deadlines ----------------------------------------------------------------------------- */

/* Puts an active request on the pool's deadline list, timing out timeout_ms from now (the
 * pool's requests all wait as long, so the FIFO always takes it). */
static void dl_push(peer_pool_t *p, peer_req_t *r)
{
    rh_deadlines_add(&p->dl, &r->dl, rh_mono_ms() + p->timeout_ms);
}

/* ---- completion --------------------------------------------------------------------------- */

/* Ends a request: bookkeeping first (so the user callback may post again), then the callback. */
static void req_finish(peer_req_t *r, int status, int http_status, const uint8_t *body, size_t len)
{
    peer_pool_t *p = r->pool;
    peer_response_cb cb = r->cb;
    void *arg = r->arg;
    rh_deadlines_remove(&p->dl, &r->dl);
    if (r->deferred_status != DEFERRED_NONE)
        event_del(r->timer); /* a deferred completion other than the one running, if any */
    if (!r->conn)
        wait_remove(p, r); /* still waiting for a connection (deadline, retirement) */
    if (r->conn) {
        peer_conn_t *k = r->conn;
        if (k->req == r)
            k->req = NULL;
        if (k->state == CONN_DEAD) {
            schedule_reap(p); /* it can be freed now that its request is over */
        } else if (k->state == CONN_LIVE && p->retired) {
            conn_mark_dead(k);
        } else if (k->state == CONN_LIVE && !k->req) {
            if (p->wait_head) {
                /* the next waiting request takes the connection now (its bytes are queued on
                 * the bufferevent; nothing runs before this callback returns) */
                peer_req_t *w = p->wait_head;
                p->wait_head = w->wait_next;
                if (!p->wait_head)
                    p->wait_tail = NULL;
                p->n_waiting--;
                w->wait_next = NULL;
                req_attach(w, k);
            } else if (p->client->starved_head) {
                p->evicted++; /* another endpoint waits for a slot under max_conns_total */
                conn_mark_dead(k);
            } else {
                idle_push(k);
            }
        }
    }
    /* Only transport failures and timeouts count toward the breaker: an HTTP 5xx is the peer
     * refusing one message (ChirpStack answers 500 to message types it does not handle, Helium
     * 500 "Downlink Lost"), not a dead peer (issue #11 item 7). */
    bool failure = status != RH_OK;
    (void)http_status;
    if (status == RH_OK)
        p->responses++;
    if (status == RH_ETIMEDOUT)
        p->timeouts++;
    if (failure && r->stale && !r->probe) {
        /* A keep-alive connection the peer had closed (idle timeout, restart) fails the request
         * it was picked for; that says nothing about the endpoint, whose fresh connections are
         * what the breaker judges. The caller still sees RH_EIO. */
        p->stale_failures++;
    } else {
        circuit_result(p, r, failure, status != RH_OK ? status : RH_EIO);
    }
    r->state = REQ_FREE;
    r->conn = NULL;
    r->cb = NULL;
    r->arg = NULL;
    r->probe = false;
    r->stale = false;
    r->err = 0;
    r->deferred_status = DEFERRED_NONE;
    r->next_free = p->free_reqs;
    p->free_reqs = r;
    p->in_flight--;
    if (p->retired && p->in_flight == 0)
        schedule_reap(p);
    cb(status, http_status, body, len, arg);
}

/* Stops reading and writing on a connection (it will not be used again). */
static void conn_io_off(peer_conn_t *k)
{
    if (k->bev)
        bufferevent_disable(k->bev, EV_READ | EV_WRITE);
    if (k->rd)
        event_del(k->rd);
}

static void req_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    peer_req_t *r = arg;
    if (r->state == REQ_ACTIVE && r->deferred_status != DEFERRED_NONE)
        req_finish(r, r->deferred_status, 0, NULL, 0);
}

/* A request's deadline passed: the connection is in an unknown state mid-response; it will not
 * be reused. */
static void req_timeout(peer_req_t *r)
{
    r->state = REQ_CANCELLING;
    if (r->conn) {
        conn_io_off(r->conn);
        conn_mark_dead(r->conn);
    }
    RH_LOG(RH_LOG_DEBUG, "peers", "request timed out peer=%s timeout_ms=%u", r->pool->id,
           r->pool->timeout_ms);
    req_finish(r, RH_ETIMEDOUT, 0, NULL, 0);
}

/* A request's deadline passed (rh_deadlines calls this off the list, oldest first). */
static void dl_timeout(rh_deadline_t *d, void *arg)
{
    (void)arg;
    peer_req_t *r = (peer_req_t *)(void *)((char *)d - offsetof(peer_req_t, dl));
    if (r->state == REQ_ACTIVE && r->deferred_status == DEFERRED_NONE)
        req_timeout(r); /* (a deferred completion already due ends it through its timer) */
}

static void log_conn_failure(peer_req_t *r)
{
    peer_pool_t *p = r->pool;
    if (rh_log_level < RH_LOG_DEBUG)
        return;
    char tls[256] = "";
    if (r->conn && r->conn->bev && r->conn->is_tls) {
        unsigned long e;
        size_t used = 0;
        while ((e = bufferevent_get_openssl_error(r->conn->bev)) != 0 && used < sizeof tls - 1) {
            char one[128];
            ERR_error_string_n(e, one, sizeof one);
            int n = snprintf(tls + used, sizeof tls - used, "%s%s", used ? "; " : "", one);
            if (n < 0)
                break;
            used += (size_t)n;
        }
    }
    RH_LOG(RH_LOG_DEBUG, "peers", "request failed peer=%s err=%s tls=\"%s\"", p->id,
           rh_strerror(r->err ? r->err : RH_EIO), tls);
}

/* The connection failed or closed: its request (if any) fails with `status`. */
static void conn_fail(peer_conn_t *k, int status)
{
    peer_req_t *r = k->req;
    conn_mark_dead(k);
    conn_io_off(k);
    if (!r || r->state != REQ_ACTIVE)
        return;
    r->err = status;
    log_conn_failure(r);
    r->stale = k->uses > 0 && status == RH_EIO;
    req_finish(r, status, 0, NULL, 0);
}

/* ---- response parsing (http_parser, HTTP_RESPONSE) ----------------------------------------- */

static int on_resp_body(http_parser *hp, const char *at, size_t len)
{
    peer_conn_t *k = hp->data;
    size_t max = k->pool->client->o.max_body;
    if (k->body_len + len > max) {
        k->body_too_large = true;
        return -1;
    }
    if (k->body_len + len > k->body_cap) {
        size_t nc = k->body_cap ? k->body_cap * 2 : 1024;
        while (nc < k->body_len + len)
            nc *= 2;
        if (nc > max)
            nc = max;
        uint8_t *nb = realloc(k->body, nc);
        if (!nb)
            return -1;
        k->body = nb;
        k->body_cap = nc;
    }
    memcpy(k->body + k->body_len, at, len);
    k->body_len += len;
    return 0;
}

static int on_resp_complete(http_parser *hp)
{
    peer_conn_t *k = hp->data;
    k->done = true;
    http_parser_pause(hp, 1);
    return 0;
}

/* Delivers a complete response to the connection's request; extra: bytes followed it. */
static void conn_response(peer_conn_t *k, bool extra)
{
    peer_req_t *r = k->req;
    int code = k->parser.status_code;
    if (code < 100 || code > 599) {
        /* http_parser takes "HTTP/1.1 20 OK" as status 20; RFC 9110 §15: three digits, 1xx-5xx */
        RH_LOG(RH_LOG_DEBUG, "peers", "bad HTTP response peer=%s err=\"status code %d\"",
               k->pool->id, code);
        conn_fail(k, RH_EIO);
        return;
    }
    bool keep = http_should_keep_alive(&k->parser);
    k->uses++;
    if (k->is_tls && !k->hs_counted) {
        SSL *ssl = bufferevent_openssl_get_ssl(k->bev);
        k->hs_counted = true;
        k->pool->handshakes++;
        if (ssl && SSL_session_reused(ssl))
            k->pool->resumed++;
    }
    if (!keep || extra)
        conn_mark_dead(k); /* closing, or bytes beyond the response: do not reuse */
    if (r && r->state == REQ_ACTIVE)
        req_finish(r, RH_OK, code, k->body_len ? k->body : NULL, k->body_len);
    k->body_len = 0;
}

/* Feeds len bytes to the response parser. Returns the bytes it took (fewer when the response
 * completed: k->done), or -1 after failing the connection on a malformed response. */
static long conn_feed(peer_conn_t *k, const char *data, size_t len)
{
    size_t n = http_parser_execute(&k->parser, &resp_settings, data, len);
    enum http_errno e = HTTP_PARSER_ERRNO(&k->parser);
    if (e != HPE_OK && e != HPE_PAUSED) {
        RH_LOG(RH_LOG_DEBUG, "peers", "bad HTTP response peer=%s err=%s", k->pool->id,
               k->body_too_large ? "body too large" : http_errno_name(e));
        conn_fail(k, RH_EIO);
        return -1;
    }
    return (long)n;
}

/* The bufferevent's input (TLS connections, and plain ones until connected). */
static void conn_parse(peer_conn_t *k)
{
    struct evbuffer *in = bufferevent_get_input(k->bev);
    while (!k->done && evbuffer_get_length(in) > 0) {
        struct evbuffer_iovec v;
        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
            break;
        long n = conn_feed(k, v.iov_base, v.iov_len);
        if (n < 0)
            return;
        evbuffer_drain(in, (size_t)n);
    }
    if (k->done)
        conn_response(k, evbuffer_get_length(in) > 0);
}

static void conn_read_cb(struct bufferevent *bev, void *arg)
{
    peer_conn_t *k = arg;
    (void)bev;
    if (!k->req) {
        /* bytes on an idle connection: the peer is confused; drop the connection */
        conn_fail(k, RH_EIO);
        return;
    }
    conn_parse(k);
}

/* The connection ended (what: BEV_EVENT_EOF, _ERROR or _TIMEOUT; input_left: unparsed bytes were
 * still buffered): a response delimited by connection close completes, else the request fails. */
static void conn_closed(peer_conn_t *k, short what, bool input_left)
{
    if ((what & BEV_EVENT_EOF) && k->req && !k->done && !input_left) {
        http_parser_execute(&k->parser, &resp_settings, NULL, 0);
        if (k->done) {
            conn_mark_dead(k);
            conn_response(k, false);
            return;
        }
    }
    conn_fail(k, (what & BEV_EVENT_TIMEOUT) && k->req ? RH_ETIMEDOUT : RH_EIO);
}

/* Read size of a plain connection: a TS002 answer fits many times; a longer one takes more reads. */
#define PLAIN_READ 16384

/* A plain connection's own read event (EV_PERSIST, with the idle timeout the bufferevent had). */
static void conn_plain_read_cb(evutil_socket_t fd, short what, void *arg)
{
    peer_conn_t *k = arg;
    if (what & EV_TIMEOUT) {
        conn_closed(k, BEV_EVENT_READING | BEV_EVENT_TIMEOUT, false);
        return;
    }
    char buf[PLAIN_READ];
    peer_client_t *c = k->pool->client;
    uint64_t stamp = 0;
    ssize_t n = c->o.rx_stamps ? rh_recv_stamped(fd, buf, sizeof buf, &stamp)
                               : recv(fd, buf, sizeof buf, 0);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n <= 0) {
        conn_closed(k, n == 0 ? BEV_EVENT_EOF : BEV_EVENT_ERROR, false);
        return;
    }
    if (!k->req || k->done) {
        conn_fail(k, RH_EIO); /* bytes on an idle connection: the peer is confused */
        return;
    }
    long used = conn_feed(k, buf, (size_t)n);
    if (used >= 0 && k->done) {
        c->rx_ns = stamp;
        conn_response(k, (size_t)used < (size_t)n);
        c->rx_ns = 0;
    }
}

static void conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
    peer_conn_t *k = arg;
    if (what & BEV_EVENT_CONNECTED) {
        int one = 1;
        evutil_socket_t fd = bufferevent_getfd(bev);
        if (fd >= 0)
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (!k->is_tls && fd >= 0 && k->pool->client->o.rx_stamps)
            rh_rx_stamps_on(fd); /* on failure responses carry no arrival time, nothing else */
        if (!k->is_tls && fd >= 0 && evbuffer_get_length(bufferevent_get_input(bev)) == 0) {
            /* from now on this connection reads with its own event (see the file comment); if
             * it cannot be made, the bufferevent goes on reading */
            struct timeval idle = {IDLE_S, 0};
            k->rd = event_new(k->pool->client->base, fd, EV_READ | EV_PERSIST,
                              conn_plain_read_cb, k);
            if (k->rd && event_add(k->rd, &idle) == 0) {
                bufferevent_disable(bev, EV_READ);
            } else if (k->rd) {
                event_free(k->rd);
                k->rd = NULL;
            }
        }
        return;
    }
    conn_closed(k, what, evbuffer_get_length(bufferevent_get_input(bev)) > 0);
}

/* ---- TLS session cache -------------------------------------------------------------------- */

int peer_client_new_session_cb(SSL *ssl, SSL_SESSION *sess)
{
    int idx = peer_ssl_conn_index();
    peer_conn_t *k = idx >= 0 ? SSL_get_ex_data(ssl, idx) : NULL;
    if (!k || !k->pool)
        return 0;
    if (!SSL_SESSION_is_resumable(sess))
        return 0;
    SSL_SESSION_free(k->pool->session);
    k->pool->session = sess; /* returning 1 transfers the reference to us */
    return 1;
}

/* ---- pools -------------------------------------------------------------------------------- */

static peer_pool_t *pool_new(peer_client_t *c, const peer_endpoint_t *ep)
{
    peer_pool_t *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->client = c;
    unsigned div = c->o.inflight_divisor;
    p->limit = (ep->max_in_flight + div - 1) / div;
    if (p->limit == 0)
        p->limit = 1;
    /* Connections: at most conn_cap (max_conns_per_endpoint, else the in-flight bound), open,
     * opening or dead awaiting their reap; requests beyond wait for one (up to the in-flight
     * bound). */
    p->conn_cap = c->o.max_conns_per_endpoint && c->o.max_conns_per_endpoint < p->limit
                      ? c->o.max_conns_per_endpoint
                      : p->limit;
    p->n_conn_slots = p->conn_cap;
    p->id = strdup(ep->id);
    p->id_hash = ep->id_hash;
    memcpy(p->digest, ep->digest, sizeof p->digest);
    p->tls = ep->tls;
    p->host_is_ip = ep->host_is_ip;
    p->resolved = ep->resolved;
    p->host = strdup(ep->host);
    p->addr = strdup(ep->addr_text);
    p->path = strdup(ep->path);
    p->host_header = strdup(ep->host_header);
    p->authz = ep->authorization ? strdup(ep->authorization) : NULL;
    p->port = ep->port;
    p->timeout_ms = ep->timeout_ms;
    {
        /* Request head without Content-Length: the same bytes for every request of the pool. */
        size_t cap = 128 + strlen(ep->path) + strlen(ep->host_header) +
                     (ep->authorization ? strlen(ep->authorization) : 0);
        p->head = malloc(cap);
        if (p->head) {
            int n = snprintf(p->head, cap,
                             "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                             "Connection: keep-alive\r\n%s%s%s",
                             ep->path, ep->host_header, ep->authorization ? "Authorization: " : "",
                             ep->authorization ? ep->authorization : "",
                             ep->authorization ? "\r\n" : "");
            p->head_len = n > 0 ? (size_t)n : 0;
        }
        p->sa_len = 0;
        if (ep->resolved) {
            struct sockaddr_in *in4 = (struct sockaddr_in *)&p->sa;
            struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&p->sa;
            memset(&p->sa, 0, sizeof p->sa);
            if (inet_pton(AF_INET, ep->addr_text, &in4->sin_addr) == 1) {
                in4->sin_family = AF_INET;
                in4->sin_port = htons(ep->port);
                p->sa_len = sizeof *in4;
            } else if (inet_pton(AF_INET6, ep->addr_text, &in6->sin6_addr) == 1) {
                in6->sin6_family = AF_INET6;
                in6->sin6_port = htons(ep->port);
                p->sa_len = sizeof *in6;
            }
        }
        if (!p->sa_len)
            p->resolved = false;
    }
    p->conns = calloc(p->n_conn_slots, sizeof *p->conns);
    p->reqs = calloc(p->limit, sizeof *p->reqs);
    p->reap_ev = event_new(c->base, -1, 0, reap_cb, p);
    int dl_err = rh_deadlines_init(&p->dl, c->base, dl_timeout, p);
    p->circuit = PEER_CIRCUIT_CLOSED;
    if (!p->id || !p->host || !p->addr || !p->path || !p->host_header ||
        (ep->authorization && !p->authz) || !p->head || !p->conns || !p->reqs || !p->reap_ev ||
        dl_err != RH_OK)
        goto fail;
    if (ep->tls && ep->ssl_ctx) {
        if (!SSL_CTX_up_ref(ep->ssl_ctx))
            goto fail;
        p->ssl_ctx = ep->ssl_ctx;
    }
    for (unsigned i = 0; i < p->n_conn_slots; i++)
        p->conns[i].pool = p;
    for (unsigned i = p->limit; i-- > 0;) {
        peer_req_t *r = &p->reqs[i];
        r->pool = p;
        r->deferred_status = DEFERRED_NONE;
        if (!(r->timer = evtimer_new(c->base, req_timer_cb, r)))
            goto fail;
        r->next_free = p->free_reqs;
        p->free_reqs = r;
    }
    return p;
fail:
    pool_free(p);
    return NULL;
}

static void pool_retire(peer_client_t *c, peer_pool_t *p)
{
    p->retired = true;
    starved_remove(c, p);
    while (p->wait_head) { /* waiting requests fail (asynchronously, through their timer) */
        peer_req_t *r = p->wait_head;
        wait_remove(p, r);
        r->deferred_status = RH_EIO;
        event_active(r->timer, EV_TIMEOUT, 1);
    }
    for (unsigned i = 0; i < p->n_conn_slots; i++)
        if (p->conns[i].state == CONN_LIVE && !p->conns[i].req)
            conn_mark_dead(&p->conns[i]);
    p->next = c->retired;
    c->retired = p;
    schedule_reap(p);
}

static int table_grow(peer_client_t *c)
{
    size_t nb = (c->mask + 1) * 2;
    peer_pool_t **b = calloc(nb, sizeof *b);
    if (!b)
        return RH_ENOMEM;
    for (size_t i = 0; i <= c->mask; i++)
        for (peer_pool_t *p = c->buckets[i], *nx; p; p = nx) {
            nx = p->next;
            p->next = b[p->id_hash & (nb - 1)];
            b[p->id_hash & (nb - 1)] = p;
        }
    free(c->buckets);
    c->buckets = b;
    c->mask = nb - 1;
    return RH_OK;
}

static peer_pool_t *pool_get(peer_client_t *c, const peer_endpoint_t *ep)
{
    peer_pool_t **pp = &c->buckets[ep->id_hash & c->mask];
    for (; *pp; pp = &(*pp)->next) {
        peer_pool_t *p = *pp;
        if (p->id_hash != ep->id_hash || strcmp(p->id, ep->id) != 0)
            continue;
        if (memcmp(p->digest, ep->digest, sizeof p->digest) == 0)
            return p;
        *pp = p->next; /* configuration changed: retire, replace */
        c->n_pools--;
        pool_retire(c, p);
        break;
    }
    if (c->n_pools + 1 > c->mask + 1 && table_grow(c) != RH_OK)
        return NULL;
    peer_pool_t *p = pool_new(c, ep);
    if (!p)
        return NULL;
    size_t b = p->id_hash & c->mask;
    p->next = c->buckets[b];
    c->buckets[b] = p;
    c->n_pools++;
    return p;
}

/* ---- connections -------------------------------------------------------------------------- */

static int conn_open(peer_pool_t *p, peer_conn_t *k)
{
    peer_client_t *c = p->client;
    struct bufferevent *bev = NULL;
    /* The address actually connected to (resolved by the endpoint, after DNS) must be one the
     * hub may reach on a member's behalf (peer_addr.h). Logged once per pool: a member cannot
     * make this line repeat by sending more traffic. */
    rh_diag_t ad;
    if (c->o.addr_policy && peer_addr_check(c->o.addr_policy, (struct sockaddr *)&p->sa, &ad)) {
        if (!p->addr_refused_logged) {
            p->addr_refused_logged = true;
            RH_LOG(RH_LOG_WARN, "peers", "connection refused by the address policy peer=%s "
                   "err=\"%s\"", p->id, ad.text);
        }
        return RH_EIO;
    }
    if (p->tls) {
        SSL *ssl = SSL_new(p->ssl_ctx);
        if (!ssl)
            return RH_ENOMEM;
        int ok = SSL_set_ex_data(ssl, peer_ssl_conn_index(), k) == 1;
        if (p->host_is_ip) {
            ok = ok && X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), p->host) == 1;
        } else {
            ok = ok && SSL_set_tlsext_host_name(ssl, p->host) == 1;
            ok = ok && SSL_set1_host(ssl, p->host) == 1;
            SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        }
        if (ok && p->session)
            ok = SSL_set_session(ssl, p->session) == 1;
        if (!ok) {
            SSL_free(ssl);
            return RH_ECRYPTO;
        }
        bev = bufferevent_openssl_socket_new(c->base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
                                             BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
        if (!bev)
            return RH_ENOMEM; /* libevent 2.1.12 frees the SSL on this path (CLOSE_ON_FREE) */
        /* Peers often close keep-alive connections without close_notify. */
        bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    } else {
        bev = bufferevent_socket_new(c->base, -1, BEV_OPT_CLOSE_ON_FREE);
        if (!bev)
            return RH_ENOMEM;
    }
    k->bev = bev;
    k->is_tls = p->tls;
    k->state = CONN_LIVE;
    k->req = NULL;
    k->uses = 0;
    k->hs_counted = false;
    k->body_len = 0;
    p->n_conns++;
    c->n_conns++;
    p->connects++;
    bufferevent_setcb(bev, conn_read_cb, NULL, conn_event_cb, k);
    struct timeval idle = {IDLE_S, 0};
    bufferevent_set_timeouts(bev, &idle, NULL);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
    if (bufferevent_socket_connect(bev, (struct sockaddr *)&p->sa, p->sa_len) != 0) {
        conn_free(k);
        return RH_EIO;
    }
    return RH_OK;
}

/* An idle live connection (lowest slot first), else a newly opened one within the bounds; NULL
 * with *err = RH_EAGAIN when the request must wait (the endpoint's connection bound, or the
 * client's: then the least recently used idle connection of another endpoint is closed to make
 * room and the pool waits for its slot), or another error when a connect failed at once. */
static peer_conn_t *conn_get(peer_pool_t *p, int *err)
{
    peer_client_t *c = p->client;
    peer_conn_t *free_slot = NULL;
    for (unsigned i = 0; i < p->n_conn_slots; i++) {
        peer_conn_t *k = &p->conns[i];
        if (k->state == CONN_LIVE && !k->req) {
            idle_remove(k);
            return k;
        }
        if (k->state == CONN_FREE && !free_slot)
            free_slot = k;
    }
    *err = RH_EAGAIN;
    if (!free_slot || p->n_conns >= p->conn_cap)
        return NULL;
    if (c->o.max_conns_total && c->n_conns >= c->o.max_conns_total) {
        peer_conn_t *victim = c->idle_head;
        if (victim) {
            victim->pool->evicted++;
            conn_mark_dead(victim); /* freed by its pool's reap, which pumps the starved pools */
        }
        starved_add(c, p);
        return NULL;
    }
    if ((*err = conn_open(p, free_slot)) != RH_OK)
        return NULL;
    return free_slot;
}

/* Writes a request (head, extras, Content-Length, body) into `out`. Returns 0 or -1. */
/* Writes a request (head, extra headers, Content-Length, body) to `out`. fd >= 0: an idle plain
 * keep-alive connection with nothing queued — head and body are first sent at once in one
 * sendmsg (head assembled in one buffer) instead of being queued for the next loop turn: two
 * epoll_ctl and an epoll_wait per request saved, and no wait behind the turn's other callbacks
 * (issue #15). What the socket does not take now, or an error (which the bufferevent then
 * reports), goes to `out`. Returns 0, or -1 when `out` could not take the bytes. */
static int req_write(peer_pool_t *p, struct evbuffer *out, int fd, const char *path,
                     const void *body, size_t len, const peer_header_t *extra, size_t n_extra)
{
    int bad = 0;
    char hb[2048];
    size_t hn = 0;
    const char *rest = NULL;
    if (path && strcmp(path, p->path) != 0) /* another path than the URL's: new request line */
        rest = strstr(p->head, "\r\n");
    size_t need = (rest ? 5 + strlen(path) + 9 + p->head_len - (size_t)(rest - p->head)
                        : p->head_len) + 48;
    for (size_t i = 0; i < n_extra; i++)
        need += strlen(extra[i].name) + 2 + strlen(extra[i].value) + 2;
    const bool fits = need <= sizeof hb;
    if (!fits) { /* unusual: very long path or extra headers */
        if (rest) {
            bad |= evbuffer_add_printf(out, "POST %s HTTP/1.1", path) < 0;
            bad |= evbuffer_add(out, rest, p->head_len - (size_t)(rest - p->head));
        } else {
            bad |= evbuffer_add(out, p->head, p->head_len);
        }
        for (size_t i = 0; i < n_extra; i++)
            bad |= evbuffer_add_printf(out, "%s: %s\r\n", extra[i].name, extra[i].value) < 0;
    } else {
#define HB_PUT(s_, n_) (memcpy(hb + hn, (s_), (n_)), hn += (n_))
        if (rest) {
            HB_PUT("POST ", 5);
            HB_PUT(path, strlen(path));
            HB_PUT(" HTTP/1.1", 9);
            HB_PUT(rest, p->head_len - (size_t)(rest - p->head));
        } else {
            HB_PUT(p->head, p->head_len);
        }
        for (size_t i = 0; i < n_extra; i++) {
            HB_PUT(extra[i].name, strlen(extra[i].name));
            HB_PUT(": ", 2);
            HB_PUT(extra[i].value, strlen(extra[i].value));
            HB_PUT("\r\n", 2);
        }
#undef HB_PUT
    }
    char cl_own[48], digits[24];
    char *cl = fits ? hb + hn : cl_own; /* `need` reserved 48 bytes for it */
    memcpy(cl, "Content-Length: ", 16);
    size_t nd = 0, v = len;
    do { /* no printf on the per-request path */
        digits[sizeof digits - 1 - nd++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    memcpy(cl + 16, digits + sizeof digits - nd, nd);
    memcpy(cl + 16 + nd, "\r\n\r\n", 4);
    if (!fits) {
        bad |= evbuffer_add(out, cl, 16 + nd + 4) != 0;
        if (len)
            bad |= evbuffer_add(out, body, len);
        return bad ? -1 : 0;
    }
    hn += 16 + nd + 4;
    bad |= rh_send_now(fd, out, hb, hn, body, len);
    return bad ? -1 : 0;
}

/* Puts request r on connection k: parser reset, then its bytes (already written to k's output
 * buffer when `pending` is NULL). */
static void req_attach(peer_req_t *r, peer_conn_t *k)
{
    http_parser_init(&k->parser, HTTP_RESPONSE);
    k->parser.data = k;
    k->done = false;
    k->body_too_large = false;
    k->body_len = 0;
    idle_remove(k);
    r->conn = k;
    k->req = r;
    if (r->pending) {
        evbuffer_add_buffer(bufferevent_get_output(k->bev), r->pending);
        evbuffer_free(r->pending);
        r->pending = NULL;
    }
}

/* Moves waiting requests onto connections while the bounds allow. */
static void pool_pump(peer_pool_t *p)
{
    while (p->wait_head && !p->retired) {
        int err = RH_OK;
        peer_conn_t *k = conn_get(p, &err);
        peer_req_t *r = p->wait_head;
        if (!k && err == RH_EAGAIN)
            return;
        p->wait_head = r->wait_next;
        if (!p->wait_head)
            p->wait_tail = NULL;
        p->n_waiting--;
        r->wait_next = NULL;
        if (!k) { /* the connect failed at once: the request fails through its timer */
            evbuffer_free(r->pending);
            r->pending = NULL;
            r->deferred_status = RH_EIO;
            event_active(r->timer, EV_TIMEOUT, 1);
            continue;
        }
        req_attach(r, k);
    }
}

/* ---- public API --------------------------------------------------------------------------- */

int peer_client_new(struct event_base *base, const peer_client_opts_t *opts, peer_client_t **out)
{
    if (!base || !out)
        return RH_EINVAL;
    *out = NULL;
    peer_client_t *c = calloc(1, sizeof *c);
    if (!c)
        return RH_ENOMEM;
    c->base = base;
    if (!resp_settings.on_message_complete) { /* constant table; same values from any thread */
        http_parser_settings st;
        http_parser_settings_init(&st);
        st.on_body = on_resp_body;
        st.on_message_complete = on_resp_complete;
        resp_settings = st;
    }
    if (opts)
        c->o = *opts;
    if (!c->o.failure_threshold)
        c->o.failure_threshold = 3;
    if (!c->o.backoff_base_ms)
        c->o.backoff_base_ms = 100;
    if (!c->o.backoff_max_ms)
        c->o.backoff_max_ms = 30000;
    if (c->o.backoff_max_ms < c->o.backoff_base_ms)
        c->o.backoff_max_ms = c->o.backoff_base_ms;
    if (!c->o.jitter_pct)
        c->o.jitter_pct = 20;
    if (c->o.jitter_pct > 100)
        c->o.jitter_pct = 100;
    if (!c->o.inflight_divisor)
        c->o.inflight_divisor = 1;
    if (!c->o.max_body)
        c->o.max_body = 1u << 20;
    c->mask = 15;
    c->buckets = calloc(c->mask + 1, sizeof *c->buckets);
    if (!c->buckets) {
        free(c);
        return RH_ENOMEM;
    }
    c->rng = rh_mono_ns() ^ (uint64_t)(uintptr_t)c ^ 0x9e3779b97f4a7c15ull;
    if (!c->rng)
        c->rng = 1;
    *out = c;
    return RH_OK;
}

static void pool_abort(peer_pool_t *p)
{
    starved_remove(p->client, p);
    while (p->wait_head)
        wait_remove(p, p->wait_head);
    /* Connections first (quietly), then our slots with their callbacks. */
    for (unsigned i = 0; i < p->n_conn_slots; i++)
        if (p->conns[i].state != CONN_FREE)
            conn_free(&p->conns[i]);
    for (unsigned i = 0; i < p->limit; i++) {
        peer_req_t *r = &p->reqs[i];
        if (r->state == REQ_FREE)
            continue;
        evtimer_del(r->timer);
        rh_deadlines_remove(&p->dl, &r->dl);
        peer_response_cb cb = r->cb;
        void *arg = r->arg;
        r->state = REQ_FREE;
        r->conn = NULL;
        p->in_flight--;
        if (cb)
            cb(RH_EIO, 0, NULL, 0, arg);
    }
}

void peer_client_free(peer_client_t *c)
{
    if (!c)
        return;
    c->closing = true;
    for (size_t i = 0; i <= c->mask; i++)
        for (peer_pool_t *p = c->buckets[i]; p; p = p->next)
            pool_abort(p);
    for (peer_pool_t *p = c->retired; p; p = p->next)
        pool_abort(p);
    for (size_t i = 0; i <= c->mask; i++)
        for (peer_pool_t *p = c->buckets[i], *nx; p; p = nx) {
            nx = p->next;
            pool_free(p);
        }
    for (peer_pool_t *p = c->retired, *nx; p; p = nx) {
        nx = p->next;
        pool_free(p);
    }
    free(c->buckets);
    free(c);
}

/* Takes slot r for a request that fails with `status` without reaching the network: it counts
 * like any request and completes through its timer event, never inside peer_client_post. */
static int req_fail_later(peer_pool_t *p, peer_req_t *r, bool probe, int status)
{
    p->free_reqs = r->next_free;
    p->in_flight++;
    p->requests++;
    r->state = REQ_ACTIVE;
    r->probe = probe;
    if (probe)
        p->probe_out = true;
    r->deferred_status = status;
    event_active(r->timer, EV_TIMEOUT, 1);
    return RH_OK;
}

static bool header_ok(const char *s)
{
    return s && !strpbrk(s, "\r\n");
}

int peer_client_post(peer_client_t *c, const peer_endpoint_t *ep, const char *path,
                     const void *body, size_t len, const peer_header_t *extra, size_t n_extra,
                     peer_response_cb cb, void *arg)
{
    if (!c || !ep || !cb || (len && !body) || (n_extra && !extra) || (path && path[0] != '/'))
        return RH_EINVAL;
    if (path && !header_ok(path))
        return RH_EINVAL;
    for (size_t i = 0; i < n_extra; i++)
        if (!header_ok(extra[i].name) || !*extra[i].name || !header_ok(extra[i].value))
            return RH_EINVAL;
    if (c->closing)
        return RH_EAGAIN;
    peer_pool_t *p = pool_get(c, ep);
    if (!p)
        return RH_ENOMEM;

    /* Circuit breaker. */
    bool probe = false;
    if (p->circuit == PEER_CIRCUIT_OPEN) {
        if (rh_mono_ms() < p->open_until_ms) {
            p->rej_backoff++;
            return RH_EAGAIN;
        }
        p->circuit = PEER_CIRCUIT_HALF_OPEN;
        p->probe_out = false;
    }
    if (p->circuit == PEER_CIRCUIT_HALF_OPEN) {
        if (p->probe_out) {
            p->rej_backoff++;
            return RH_EAGAIN;
        }
        probe = true;
    }
    if (p->in_flight >= p->limit || !p->free_reqs) {
        p->rej_inflight++;
        return RH_EAGAIN;
    }

    peer_req_t *r = p->free_reqs;
    r->cb = cb;
    r->arg = arg;
    r->err = 0;
    r->deferred_status = DEFERRED_NONE;
    r->conn = NULL;

    if (!p->resolved) /* unresolvable host: fail (asynchronously) and count it */
        return req_fail_later(p, r, probe, RH_EIO);

    int err = RH_EAGAIN;
    peer_conn_t *k = p->wait_head ? NULL : conn_get(p, &err); /* FIFO: no overtaking */
    if (!k && err == RH_EIO) /* connect failed at once: fail asynchronously and count it */
        return req_fail_later(p, r, probe, RH_EIO);
    if (!k && err != RH_EAGAIN)
        return err;
    if (k) {
        struct evbuffer *out = bufferevent_get_output(k->bev);
        int fd = !k->is_tls && k->uses > 0 && evbuffer_get_length(out) == 0
                     ? (int)bufferevent_getfd(k->bev)
                     : -1;
        if (req_write(p, out, fd, path, body, len, extra, n_extra)) {
            conn_mark_dead(k); /* partial request written: never reuse */
            return RH_ENOMEM;
        }
    } else {
        /* No connection within the bounds: wait for one (bounded by the in-flight slots). */
        if (!(r->pending = evbuffer_new()))
            return RH_ENOMEM;
        if (req_write(p, r->pending, -1, path, body, len, extra, n_extra)) {
            evbuffer_free(r->pending);
            r->pending = NULL;
            return RH_ENOMEM;
        }
    }

    /* Commit the slot. */
    p->free_reqs = r->next_free;
    r->next_free = NULL;
    p->in_flight++;
    p->requests++;
    r->state = REQ_ACTIVE;
    r->probe = probe;
    if (probe)
        p->probe_out = true;
    dl_push(p, r);
    if (k) {
        req_attach(r, k);
    } else {
        p->queued++;
        wait_push(p, r);
    }
    return RH_OK;
}

uint64_t peer_client_response_arrival_ns(const peer_client_t *c)
{
    return c->rx_ns;
}

void peer_client_close_idle(peer_client_t *c)
{
    if (!c)
        return;
    for (size_t i = 0; i <= c->mask; i++)
        for (peer_pool_t *p = c->buckets[i]; p; p = p->next)
            for (unsigned j = 0; j < p->n_conn_slots; j++)
                if (p->conns[j].state == CONN_LIVE && !p->conns[j].req)
                    conn_mark_dead(&p->conns[j]);
}

static void fill_stats(const peer_pool_t *p, peer_endpoint_stats_t *st)
{
    memset(st, 0, sizeof *st);
    st->endpoint_id = p->id;
    st->in_flight = p->in_flight;
    st->limit = p->limit;
    st->connections = p->n_conns;
    st->connection_limit = p->conn_cap;
    st->waiting = p->n_waiting;
    st->queued = p->queued;
    st->evicted = p->evicted;
    st->consecutive_failures = p->consecutive;
    st->circuit = p->circuit;
    if (p->circuit == PEER_CIRCUIT_OPEN) {
        uint64_t now = rh_mono_ms();
        st->backoff_remaining_ms = p->open_until_ms > now ? p->open_until_ms - now : 0;
    }
    st->requests = p->requests;
    st->responses = p->responses;
    st->failures = p->failures;
    st->timeouts = p->timeouts;
    st->rejected_backoff = p->rej_backoff;
    st->rejected_inflight = p->rej_inflight;
    st->connects = p->connects;
    st->tls_handshakes = p->handshakes;
    st->tls_resumed = p->resumed;
    st->stale_failures = p->stale_failures;
}

int peer_client_stats(peer_client_t *c, const char *endpoint_id, peer_endpoint_stats_t *out,
                      bool *found)
{
    if (!c || !endpoint_id || !out || !found)
        return RH_EINVAL;
    *found = false;
    uint64_t h = peer_hash_str(endpoint_id);
    for (peer_pool_t *p = c->buckets[h & c->mask]; p; p = p->next)
        if (p->id_hash == h && strcmp(p->id, endpoint_id) == 0) {
            fill_stats(p, out);
            *found = true;
            break;
        }
    return RH_OK;
}

void peer_client_foreach_stats(peer_client_t *c,
                               void (*fn)(const peer_endpoint_stats_t *st, void *arg), void *arg)
{
    if (!c || !fn)
        return;
    for (size_t i = 0; i <= c->mask; i++)
        for (peer_pool_t *p = c->buckets[i]; p; p = p->next) {
            peer_endpoint_stats_t st;
            fill_stats(p, &st);
            fn(&st, arg);
        }
}
