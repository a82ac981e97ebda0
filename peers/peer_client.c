/*
 * peer_client.c — per-thread outbound TS002 client: endpoint pools of keep-alive evhttp
 * connections (plain or bufferevent_openssl), preallocated request slots with a total-deadline
 * timer each, TLS session caching, and the per-endpoint circuit breaker. See peer_client.h for
 * the contract; the notes here are about libevent mechanics:
 *
 *   - A connection is never reused after it failed or closed: evhttp would reconnect it with
 *     the same SSL object, which OpenSSL cannot reuse. Dead connections are freed from a
 *     per-pool "reap" event (never from inside their own callbacks), and only once their request
 *     has completed (evhttp_connection_free drops queued requests without calling back).
 *   - evhttp can call a request's callback synchronously from evhttp_make_request (a connect
 *     that fails at once, e.g. EMFILE); the `in_make` guard defers such a completion through the
 *     request's timer event so that callbacks never run inside peer_client_post.
 *   - Cancelling at the deadline: evhttp_cancel_request resets the connection and calls the
 *     error callback with EVREQ_HTTP_REQUEST_CANCEL (ignored: the slot is already CANCELLING).
 *   - evhttp_connection_free calls the close callback; conn->evcon is cleared first so that
 *     the callback recognises it and does nothing.
 */
#include "peer_client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

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
    struct evhttp_connection *evcon;
    struct bufferevent *bev; /* TLS only (owned by evcon) */
    enum conn_state state;
    peer_req_t *req;         /* outstanding request, or NULL when idle */
    unsigned uses;           /* requests completed with a response on this connection */
    bool hs_counted;         /* TLS handshake accounted in stats */
};

struct peer_req {
    peer_pool_t *pool;
    peer_conn_t *conn;
    struct evhttp_request *http; /* NULL once evhttp completed or freed it */
    struct event *timer;         /* deadline, or deferred completion */
    peer_response_cb cb;
    void *arg;
    enum req_state state;
    int err;                     /* from the evhttp error callback */
    int deferred_status;         /* != 1: complete with this status from the timer */
    bool probe;                  /* the HALF-OPEN probe */
    bool stale;                  /* failed on a reused keep-alive connection: not counted */
    bool in_make;                /* inside evhttp_make_request */
    peer_req_t *next_free;
};

struct peer_pool {
    peer_client_t *client;
    peer_pool_t *next;           /* hash chain, or the retired list */
    char *id;
    uint64_t id_hash;
    uint8_t digest[32];
    bool tls, host_is_ip, resolved, retired;
    char *host, *addr, *path, *host_header, *authz;
    uint16_t port;
    uint32_t timeout_ms;
    const struct timeval *deadline_tv; /* libevent "common timeout" for timeout_ms */
    SSL_CTX *ssl_ctx;            /* reference (SSL_CTX_up_ref) */
    SSL_SESSION *session;        /* last session ticket, for resumption */
    unsigned limit, n_conn_slots;
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
        handshakes, resumed, stale_failures;
};

struct peer_client {
    struct event_base *base;
    peer_client_opts_t o;
    peer_pool_t **buckets;
    size_t mask, n_pools;
    peer_pool_t *retired;
    uint64_t rng;
    bool closing;
};

#define DEFERRED_NONE 1

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

static void conn_mark_dead(peer_conn_t *k)
{
    if (k->state == CONN_LIVE) {
        k->state = CONN_DEAD;
        schedule_reap(k->pool);
    }
}

static void conn_free(peer_conn_t *k)
{
    struct evhttp_connection *evcon = k->evcon;
    if (k->bev) {
        /* libevent frees the SSL without SSL_shutdown; OpenSSL would then treat the session as
         * "bad" and mark it non-resumable (ssl_clear_bad_session), defeating the session cache.
         * The connection is over either way (idle close, peer close, or failure after the
         * handshake), so record it as shut down. */
        SSL *ssl = bufferevent_openssl_get_ssl(k->bev);
        if (ssl && SSL_is_init_finished(ssl))
            SSL_set_shutdown(ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
    }
    k->evcon = NULL; /* the close callback fired by the free below must ignore this conn */
    k->bev = NULL;
    k->req = NULL;
    k->uses = 0;
    k->hs_counted = false;
    if (k->state != CONN_FREE)
        k->pool->n_conns--;
    k->state = CONN_FREE;
    if (evcon)
        evhttp_connection_free(evcon);
}

static void pool_free(peer_pool_t *p)
{
    for (unsigned i = 0; i < p->n_conn_slots; i++)
        if (p->conns[i].state != CONN_FREE)
            conn_free(&p->conns[i]);
    for (unsigned i = 0; i < p->limit; i++)
        if (p->reqs[i].timer)
            event_free(p->reqs[i].timer);
    if (p->reap_ev)
        event_free(p->reap_ev);
    SSL_SESSION_free(p->session);
    SSL_CTX_free(p->ssl_ctx);
    free(p->conns);
    free(p->reqs);
    free(p->id);
    free(p->host);
    free(p->addr);
    free(p->path);
    free(p->host_header);
    if (p->authz) {
        OPENSSL_cleanse(p->authz, strlen(p->authz));
        free(p->authz);
    }
    free(p);
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
    for (unsigned i = 0; i < p->n_conn_slots; i++) {
        peer_conn_t *k = &p->conns[i];
        if (k->state == CONN_DEAD && !k->req)
            conn_free(k);
    }
    if (p->retired && p->in_flight == 0) {
        retired_remove(p->client, p);
        pool_free(p);
    }
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

/* ---- completion --------------------------------------------------------------------------- */

/* Ends a request: bookkeeping first (so the user callback may post again), then the callback. */
static void req_finish(peer_req_t *r, int status, int http_status, const uint8_t *body, size_t len)
{
    peer_pool_t *p = r->pool;
    peer_response_cb cb = r->cb;
    void *arg = r->arg;
    evtimer_del(r->timer);
    if (r->conn) {
        peer_conn_t *k = r->conn;
        if (k->req == r)
            k->req = NULL;
        if (k->state == CONN_DEAD)
            schedule_reap(p); /* it can be freed now that its request is over */
        else if (k->state == CONN_LIVE && p->retired)
            conn_mark_dead(k);
    }
    bool failure = status != RH_OK || http_status >= 500;
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
    r->http = NULL;
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

static void req_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    peer_req_t *r = arg;
    if (r->state != REQ_ACTIVE)
        return;
    if (r->deferred_status != DEFERRED_NONE) {
        req_finish(r, r->deferred_status, 0, NULL, 0);
        return;
    }
    /* Deadline. */
    r->state = REQ_CANCELLING;
    struct evhttp_request *h = r->http;
    r->http = NULL;
    if (r->conn)
        conn_mark_dead(r->conn);
    if (h)
        evhttp_cancel_request(h); /* resets the connection; callbacks ignored (CANCELLING) */
    RH_LOG(RH_LOG_DEBUG, "peers", "request timed out peer=%s timeout_ms=%u", r->pool->id,
           r->pool->timeout_ms);
    req_finish(r, RH_ETIMEDOUT, 0, NULL, 0);
}

static void http_error_cb(enum evhttp_request_error e, void *arg)
{
    peer_req_t *r = arg;
    if (r->state != REQ_ACTIVE)
        return;
    r->err = e == EVREQ_HTTP_TIMEOUT ? RH_ETIMEDOUT : RH_EIO;
}

static void log_conn_failure(peer_req_t *r)
{
    peer_pool_t *p = r->pool;
    if (rh_log_level < RH_LOG_DEBUG)
        return;
    char tls[256] = "";
    if (r->conn && r->conn->bev) {
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

static void http_done_cb(struct evhttp_request *h, void *arg)
{
    peer_req_t *r = arg;
    if (r->state != REQ_ACTIVE)
        return;
    r->http = NULL; /* evhttp frees it when we return */
    peer_conn_t *k = r->conn;
    int code = h ? evhttp_request_get_response_code(h) : 0;
    if (code == 0) {
        if (k)
            conn_mark_dead(k);
        log_conn_failure(r);
        int status = r->err ? r->err : RH_EIO;
        r->stale = k && k->uses > 0 && status == RH_EIO;
        if (r->in_make) { /* called back synchronously from evhttp_make_request */
            r->deferred_status = status;
            event_active(r->timer, EV_TIMEOUT, 1);
            return;
        }
        req_finish(r, status, 0, NULL, 0);
        return;
    }
    if (k)
        k->uses++;
    if (k && k->bev && !k->hs_counted) {
        SSL *ssl = bufferevent_openssl_get_ssl(k->bev);
        k->hs_counted = true;
        r->pool->handshakes++;
        if (ssl && SSL_session_reused(ssl))
            r->pool->resumed++;
    }
    struct evbuffer *in = evhttp_request_get_input_buffer(h);
    size_t len = in ? evbuffer_get_length(in) : 0;
    const uint8_t *body = len ? evbuffer_pullup(in, -1) : NULL;
    if (len && !body) {
        if (k)
            conn_mark_dead(k);
        req_finish(r, RH_EIO, 0, NULL, 0);
        return;
    }
    req_finish(r, RH_OK, code, body, len);
}

static void conn_close_cb(struct evhttp_connection *evcon, void *arg)
{
    peer_conn_t *k = arg;
    if (k->evcon != evcon)
        return; /* being freed by us */
    conn_mark_dead(k);
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
    /* Twice the bound: dead connections wait for the reap event without starving new ones. */
    p->n_conn_slots = 2 * p->limit;
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
    p->conns = calloc(p->n_conn_slots, sizeof *p->conns);
    p->reqs = calloc(p->limit, sizeof *p->reqs);
    p->reap_ev = event_new(c->base, -1, 0, reap_cb, p);
    /* Every request of a pool has the same deadline duration: a common-timeout queue makes the
     * per-request timer add/delete O(1) instead of a heap operation. */
    struct timeval tv = {(time_t)(ep->timeout_ms / 1000), (suseconds_t)(ep->timeout_ms % 1000) * 1000};
    p->deadline_tv = event_base_init_common_timeout(c->base, &tv);
    p->circuit = PEER_CIRCUIT_CLOSED;
    if (!p->id || !p->host || !p->addr || !p->path || !p->host_header ||
        (ep->authorization && !p->authz) || !p->conns || !p->reqs || !p->reap_ev ||
        !p->deadline_tv)
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
    }
    struct evhttp_connection *evcon =
        evhttp_connection_base_bufferevent_new(c->base, NULL, bev, p->addr, p->port);
    if (!evcon) {
        if (bev)
            bufferevent_free(bev);
        return RH_ENOMEM;
    }
    /* evhttp's own read/write inactivity timeout is only a safety net behind our total
     * deadline; it also closes a keep-alive connection idle for that long. */
    int idle_s = (int)(p->timeout_ms / 1000 + 2);
    evhttp_connection_set_timeout(evcon, idle_s < 60 ? 60 : idle_s);
    evhttp_connection_set_retries(evcon, 0);
    evhttp_connection_set_max_body_size(evcon, (ev_ssize_t)c->o.max_body);
    evhttp_connection_set_max_headers_size(evcon, 64 * 1024);
    evhttp_connection_set_closecb(evcon, conn_close_cb, k);
    k->evcon = evcon;
    k->bev = bev;
    k->state = CONN_LIVE;
    k->req = NULL;
    k->uses = 0;
    k->hs_counted = false;
    p->n_conns++;
    p->connects++;
    return RH_OK;
}

/* An idle live connection (lowest slot first), else a newly opened one; NULL if none. */
static peer_conn_t *conn_pick(peer_pool_t *p, int *err)
{
    peer_conn_t *free_slot = NULL;
    for (unsigned i = 0; i < p->n_conn_slots; i++) {
        peer_conn_t *k = &p->conns[i];
        if (k->state == CONN_LIVE && !k->req)
            return k;
        if (k->state == CONN_FREE && !free_slot)
            free_slot = k;
    }
    if (!free_slot) {
        *err = RH_EAGAIN;
        return NULL;
    }
    if ((*err = conn_open(p, free_slot)) != RH_OK)
        return NULL;
    return free_slot;
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
    /* Connections first (evhttp drops their requests without callbacks), then our slots. */
    for (unsigned i = 0; i < p->n_conn_slots; i++)
        if (p->conns[i].state != CONN_FREE)
            conn_free(&p->conns[i]);
    for (unsigned i = 0; i < p->limit; i++) {
        peer_req_t *r = &p->reqs[i];
        if (r->state == REQ_FREE)
            continue;
        evtimer_del(r->timer);
        peer_response_cb cb = r->cb;
        void *arg = r->arg;
        r->state = REQ_FREE;
        r->conn = NULL;
        r->http = NULL;
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
    r->http = NULL;

    if (!p->resolved) {
        /* Unresolvable host: fail (asynchronously) and count it. */
        p->free_reqs = r->next_free;
        p->in_flight++;
        p->requests++;
        r->state = REQ_ACTIVE;
        r->probe = probe;
        if (probe)
            p->probe_out = true;
        r->deferred_status = RH_EIO;
        event_active(r->timer, EV_TIMEOUT, 1);
        return RH_OK;
    }

    int err = RH_OK;
    peer_conn_t *k = conn_pick(p, &err);
    if (!k) {
        if (err == RH_EAGAIN)
            p->rej_inflight++;
        return err;
    }
    struct evhttp_request *h = evhttp_request_new(http_done_cb, r);
    if (!h)
        return RH_ENOMEM; /* the connection (maybe just opened) stays idle for later use */
    evhttp_request_set_error_cb(h, http_error_cb);
    struct evkeyvalq *hdr = evhttp_request_get_output_headers(h);
    int bad = evhttp_add_header(hdr, "Host", p->host_header);
    bad |= evhttp_add_header(hdr, "Content-Type", "application/json");
    bad |= evhttp_add_header(hdr, "Connection", "keep-alive");
    if (p->authz)
        bad |= evhttp_add_header(hdr, "Authorization", p->authz);
    for (size_t i = 0; i < n_extra; i++)
        bad |= evhttp_add_header(hdr, extra[i].name, extra[i].value);
    if (len)
        bad |= evbuffer_add(evhttp_request_get_output_buffer(h), body, len);
    if (bad) {
        evhttp_request_free(h);
        return RH_ENOMEM;
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
    r->conn = k;
    r->http = h;
    k->req = r;
    evtimer_add(r->timer, p->deadline_tv);

    r->in_make = true;
    int mk = evhttp_make_request(k->evcon, h, EVHTTP_REQ_POST, path ? path : p->path);
    r->in_make = false;
    if (mk != 0 && r->state == REQ_ACTIVE && r->deferred_status == DEFERRED_NONE) {
        /* evhttp refused the request without calling back. Depending on the path it may or
         * may not have freed it (OOM-only paths in 2.1): forget it rather than risk a double
         * free, and fail the slot asynchronously. */
        r->http = NULL;
        conn_mark_dead(k);
        r->deferred_status = RH_EIO;
        event_active(r->timer, EV_TIMEOUT, 1);
    }
    return RH_OK;
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
