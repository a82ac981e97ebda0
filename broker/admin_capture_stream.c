/* admin_capture_stream.c — GET /api/v1/capture?follow=true[&seconds=N][&max_events=M]: the live
 * capture as a stream from the hub's own HTTP server (hs_stream_*, chunked transfer coding), for
 * the console's live traffic page and `roamctl capture --follow`.
 *
 * Format by the request's Accept header:
 *   - text/event-stream (Server-Sent Events): `event: start` with {"max_events": M}, then one
 *     `data: {event}` message per relayed-message event (the same object as a capture line),
 *     `: keep-alive` comments every 15 s, and at the end `event: end` with the summary;
 *   - otherwise JSON lines (application/x-ndjson): {"start": {...}}, one event per line, empty
 *     lines as keep-alives, and {"summary": {...}} last.
 * Events are sent every 200 ms. The stream ends when the client goes away, after N seconds
 * (0 = no limit, at most 86400), or when the hub drains; the capture ring (M events between two
 * sends) drops and counts when full, and so does a client that stops reading (more than 1 MiB
 * waiting): a slow reader never holds relay memory or blocks a worker, and one that has not
 * read for 60 s while events wait is ended ("client_not_reading"). Scope as in
 * admin_capture.c: an operator sees every event, a member those of its own NetID. At most
 * CAPTURE_MAX_ACTIVE captures (held and live together) run at once.
 * Also the helpers both capture modes use (admin_capture_start, admin_capture_event_line), so
 * admin_capture.c (held captures, and the dispatch to follow) calls this file, never back.
 */
#include "admin_internal.h"

#include "bi_types.h"
#include "capture.h"
#include "lw_netid.h"
#include "rh_log.h"
#include "rh_time.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- shared by both modes */

void admin_capture_event_line(admin_api_t *a, const capture_event_t *e, char *out, size_t cap)
{
    char t[ADMIN_TIME_TEXT], f[7], h[7];
    admin_time_text(e->time_ms, t);
    lw_netid_format(e->fwd_net_id, f, 0);
    lw_netid_format(e->home_net_id, h, 0);
    char sender[RP_ID_MAX + 1];
    snprintf(sender, sizeof sender, "%s", e->sender);
    if (!sender[0]) {
        /* failures answered before a transaction existed: the member owning the forwarder */
        peer_registry_view_t v = PEER_REGISTRY_VIEW_INIT;
        const peer_registry_t *reg = peer_registry_view_get(&a->hub->registry, &v);
        const peer_member_t *m = NULL;
        if (reg && peer_registry_member_by_netid(reg, e->fwd_net_id, NULL, &m) == RH_OK && m)
            snprintf(sender, sizeof sender, "%s", m->id);
        peer_registry_view_release(&v);
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "time", t);
    cJSON_AddNumberToObject(o, "worker", e->worker);
    cJSON_AddStringToObject(o, "forwarder", f);
    cJSON_AddStringToObject(o, "home", h);
    cJSON_AddStringToObject(o, "message_type",
                            e->msg_type == BI_MT_UNKNOWN ? "" : bi_msg_type_name(e->msg_type));
    cJSON_AddNumberToObject(o, "transaction_id", e->transaction_id);
    cJSON_AddStringToObject(o, "class", rp_class_name(e->cls));
    cJSON_AddStringToObject(o, "outcome", rp_outcome_name(e->outcome));
    if (e->result_code[0])
        cJSON_AddStringToObject(o, "result_code", e->result_code);
    cJSON_AddNumberToObject(o, "latency_us", (double)e->latency_us);
    cJSON_AddStringToObject(o, "sender", sender);
    if (e->node || a->hub->cview) /* cluster: the node that relayed it */
        cJSON_AddNumberToObject(o, "node", e->node ? e->node : a->hub->cfg.cluster_node_id);
    if (!cJSON_PrintPreallocated(o, out, (int)cap - 2, 0))
        snprintf(out, cap, "{}");
    cJSON_Delete(o);
    strcat(out, "\n");
}

void admin_capture_stop(admin_api_t *a, capture_t *cap)
{
    if (!cap)
        return;
    cluster_view_capture_close(a->hub->cview, cap);
    capture_stop(cap);
}

int admin_capture_start(admin_req_t *r, unsigned max_events, capture_t **out)
{
    int rc = capture_start(r->p.is_operator, r->p.net_id, max_events, out);
    if (rc == RH_OK && cluster_view_capture_open(r->a->hub->cview, *out) != RH_OK) {
        capture_stop(*out); /* the other nodes could not feed it: refused like a full set */
        *out = NULL;
        rc = RH_EAGAIN;
    }
    if (rc)
        admin_reply_error(r, rc == RH_EAGAIN ? 503 : 400, "capture: %s",
                          rc == RH_EAGAIN ? "too many captures in progress, retry later"
                                          : rh_strerror(rc));
    return rc;
}

/* ---------------------------------------------------------------- live streams */

#define FOLLOW_TICK_MS 200
#define FOLLOW_KEEPALIVE_MS 15000
#define FOLLOW_MAX_BUFFERED (1u << 20)
#define FOLLOW_STALL_MS 60000

struct admin_follow {
    admin_api_t *a;
    hs_req_t *req;
    char key_id[RP_ID_MAX + 1];
    capture_t *cap;
    struct event *timer;
    int sse;
    uint64_t deadline_ms; /* monotonic; 0 = none */
    uint64_t last_send_ms;
    uint64_t sent, slow_dropped;
    uint64_t stalled_since_ms; /* monotonic; 0 = the client reads */
    admin_follow_t *next;
};

static void unlink_follow(admin_follow_t *fl)
{
    admin_follow_t **pp = &fl->a->follows;
    while (*pp && *pp != fl)
        pp = &(*pp)->next;
    if (*pp)
        *pp = fl->next;
}

/* Appends s to the growing chunk (bounded by the caller's batch size). */
typedef struct chunk {
    char *buf;
    size_t len, cap;
} chunk_t;

static int chunk_add(chunk_t *c, const char *s, size_t n)
{
    if (c->len + n + 1 > c->cap) {
        size_t nc = c->cap ? c->cap * 2 : 8192;
        while (nc < c->len + n + 1)
            nc *= 2;
        char *b = realloc(c->buf, nc);
        if (!b)
            return -1;
        c->buf = b;
        c->cap = nc;
    }
    memcpy(c->buf + c->len, s, n);
    c->len += n;
    return 0;
}

static void send_chunk(admin_follow_t *fl, chunk_t *c, size_t events)
{
    if (!c->len)
        return;
    int rc = hs_stream_write(fl->req, c->buf, c->len, FOLLOW_MAX_BUFFERED);
    if (rc == RH_EAGAIN) {
        fl->slow_dropped += events;
        if (!fl->stalled_since_ms)
            fl->stalled_since_ms = rh_mono_ms();
    } else if (rc == RH_OK) {
        fl->sent += events;
        fl->stalled_since_ms = 0;
    }
    fl->last_send_ms = rh_mono_ms();
    c->len = 0;
}

static void finish(admin_follow_t *fl, const char *why)
{
    unsigned long long dropped = (unsigned long long)capture_dropped(fl->cap);
    admin_capture_stop(fl->a, fl->cap);
    unlink_follow(fl);
    event_free(fl->timer);
    if (!hs_req_gone(fl->req)) {
        char line[256];
        int n = snprintf(line, sizeof line,
                         "%s{\"summary\":{\"events\":%llu,\"dropped\":%llu,\"reason\":\"%s\"}}\n%s",
                         fl->sse ? "event: end\ndata: " : "", (unsigned long long)fl->sent,
                         dropped + (unsigned long long)fl->slow_dropped, why, fl->sse ? "\n" : "");
        hs_stream_write(fl->req, line, (size_t)n, FOLLOW_MAX_BUFFERED);
    }
    hs_stream_end(fl->req);
    RH_LOG(RH_LOG_INFO, "admin", "live capture ended events=%llu dropped=%llu reason=%s by=%s",
           (unsigned long long)fl->sent, dropped + (unsigned long long)fl->slow_dropped, why,
           fl->key_id);
    free(fl);
}

static void tick(evutil_socket_t fd, short what, void *arg)
{
    admin_follow_t *fl = arg;
    (void)fd;
    (void)what;
    if (hs_req_gone(fl->req)) {
        finish(fl, "client_gone");
        return;
    }
    if (atomic_load(&fl->a->hub->draining)) {
        finish(fl, "hub_draining");
        return;
    }
    capture_event_t ev[64];
    size_t n;
    chunk_t c = {0};
    size_t batch = 0;
    char line[1100];
    while ((n = capture_take(fl->cap, ev, 64)) > 0) {
        for (size_t i = 0; i < n; i++) {
            admin_capture_event_line(fl->a, &ev[i], line, sizeof line - 16);
            if (fl->sse) {
                size_t l = strlen(line); /* ends with "\n": one data line, then a blank line */
                if (chunk_add(&c, "data: ", 6) || chunk_add(&c, line, l) || chunk_add(&c, "\n", 1))
                    fl->slow_dropped++;
                else
                    batch++;
            } else if (chunk_add(&c, line, strlen(line))) {
                fl->slow_dropped++;
            } else {
                batch++;
            }
        }
        if (c.len > 256 * 1024) {
            send_chunk(fl, &c, batch);
            batch = 0;
        }
    }
    send_chunk(fl, &c, batch);
    free(c.buf);
    uint64_t now = rh_mono_ms();
    if (now - fl->last_send_ms >= FOLLOW_KEEPALIVE_MS) {
        if (fl->sse)
            hs_stream_write(fl->req, ": keep-alive\n\n", 14, FOLLOW_MAX_BUFFERED);
        else
            hs_stream_write(fl->req, "\n", 1, FOLLOW_MAX_BUFFERED);
        fl->last_send_ms = now;
    }
    if (fl->deadline_ms && now >= fl->deadline_ms)
        finish(fl, "time_limit");
    else if (fl->stalled_since_ms && now - fl->stalled_since_ms >= FOLLOW_STALL_MS)
        finish(fl, "client_not_reading"); /* frees the capture slot a silent client holds */
}

void admin_capture_follow(admin_req_t *r, unsigned seconds, unsigned max_events)
{
    const char *acc = hs_req_header(r->req, "accept");
    int sse = acc && strstr(acc, "text/event-stream") != NULL;
    admin_follow_t *fl = calloc(1, sizeof *fl);
    if (!fl) {
        admin_reply_error(r, 503, "capture: out of memory");
        return;
    }
    if (admin_capture_start(r, max_events, &fl->cap) != RH_OK) {
        free(fl);
        return;
    }
    int rc = hs_stream_begin(r->req, 200, sse ? "text/event-stream" : "application/x-ndjson",
                             "Cache-Control: no-store\r\nX-Accel-Buffering: no\r\n");
    if (rc) {
        admin_capture_stop(r->a, fl->cap);
        free(fl);
        if (rc == RH_EINVAL)
            admin_reply_error(r, 505, "capture: follow needs HTTP/1.1 (chunked responses)");
        else
            admin_reply_error(r, 400, "capture: client gone");
        return;
    }
    fl->a = r->a;
    fl->req = r->req;
    r->req = NULL; /* the stream owns the request now */
    fl->sse = sse;
    snprintf(fl->key_id, sizeof fl->key_id, "%s", r->p.key_id);
    fl->last_send_ms = rh_mono_ms();
    fl->deadline_ms = seconds ? fl->last_send_ms + (uint64_t)seconds * 1000u : 0;
    char start[160];
    int n = snprintf(start, sizeof start, "%s{\"start\":{\"max_events\":%u,\"seconds\":%u}}\n%s",
                     sse ? "event: start\ndata: " : "", max_events, seconds, sse ? "\n" : "");
    hs_stream_write(fl->req, start, (size_t)n, FOLLOW_MAX_BUFFERED);
    fl->timer = event_new(r->a->hub->main_base, -1, EV_PERSIST, tick, fl);
    struct timeval tv = {0, FOLLOW_TICK_MS * 1000};
    evtimer_add(fl->timer, &tv);
    fl->next = r->a->follows;
    r->a->follows = fl;
    RH_LOG(RH_LOG_INFO, "admin", "live capture started format=%s seconds=%u max_events=%u by=%s",
           sse ? "sse" : "ndjson", seconds, max_events, fl->key_id);
}

void admin_capture_follow_fini(admin_api_t *a)
{
    while (a->follows)
        finish(a->follows, "hub_stopping");
}
