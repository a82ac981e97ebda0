/* admin_capture.c — GET /api/v1/capture?seconds=N[&max_events=M][&download=1]: a bounded live
 * capture of the caller's TS002 traffic metadata (capture.h). The request is held for N seconds
 * (1..60) while the relay fills the capture's ring, then answered with JSON lines, one event per
 * line, gzip-compressed (Content-Encoding: gzip when accepted; download=1 answers the .jsonl.gz
 * file itself as application/gzip); a hub that starts draining answers at once with what it has.
 * The last line is a summary {"summary": {...}} with the event
 * and drop counts. An operator captures everything; a member only events whose forwarder or home
 * NetID is its own. Events never hold tokens, keys or payload bytes.
 * With follow=true the capture is a live stream instead (admin_capture_stream.c).
 */
#include "admin_internal.h"

#include "capture.h"
#include "rh_log.h"
#include "rh_time.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct admin_download {
    admin_api_t *a;
    admin_req_t r;              /* copy of the request context (r.req is the held request) */
    capture_t *cap;
    struct event *timer;
    int download;
    unsigned seconds, max_events;
    uint64_t deadline_ms;       /* monotonic */
    admin_download_t *next;
};

static void unlink_dl(admin_download_t *dl)
{
    admin_download_t **pp = &dl->a->downloads;
    while (*pp && *pp != dl)
        pp = &(*pp)->next;
    if (*pp)
        *pp = dl->next;
}

static void finish(admin_download_t *dl)
{
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    capture_event_t ev[64];
    size_t n, total = 0;
    char line[1024];
    while (buf && (n = capture_take(dl->cap, ev, 64)) > 0) {
        for (size_t i = 0; buf && i < n; i++) {
            admin_capture_event_line(dl->a, &ev[i], line, sizeof line);
            size_t l = strlen(line);
            if (len + l + 1 > cap) {
                char *nb = realloc(buf, cap * 2 + l);
                if (!nb) {
                    free(buf);
                    buf = NULL;
                    break;
                }
                buf = nb;
                cap = cap * 2 + l;
            }
            memcpy(buf + len, line, l);
            len += l;
            total++;
        }
    }
    unsigned long long dropped = (unsigned long long)capture_dropped(dl->cap);
    admin_capture_stop(dl->a, dl->cap);
    dl->cap = NULL;
    unlink_dl(dl);
    event_free(dl->timer);
    admin_req_t *r = &dl->r;
    if (!buf) {
        admin_reply_error(r, 503, "capture: out of memory");
        free(dl);
        return;
    }
    int sl = snprintf(line, sizeof line,
                      "{\"summary\":{\"events\":%zu,\"dropped\":%llu,\"seconds\":%u}}\n", total,
                      dropped, dl->seconds);
    if (len + (size_t)sl + 1 > cap) {
        char *nb = realloc(buf, len + (size_t)sl + 1);
        if (nb) {
            buf = nb;
            cap = len + (size_t)sl + 1;
        }
    }
    if (len + (size_t)sl + 1 <= cap) {
        memcpy(buf + len, line, (size_t)sl);
        len += (size_t)sl;
    }
    RH_LOG(RH_LOG_INFO, "admin", "capture done events=%zu dropped=%llu by=%s", total, dropped,
           r->p.key_id);
    if (dl->download) {
        uint8_t *z;
        size_t zl;
        if (admin_gzip(buf, len, &z, &zl) != RH_OK) {
            admin_reply_error(r, 503, "capture: out of memory");
        } else {
            hs_reply_ex(r->req, 200, "application/gzip",
                        "Content-Disposition: attachment; filename=\"capture.jsonl.gz\"\r\n"
                        "Cache-Control: no-store\r\n",
                        z, zl);
            free(z);
        }
    } else {
        admin_reply_body(r, 200, "application/x-ndjson", buf, len);
    }
    free(buf);
    free(dl);
}

/* Ticks every 100 ms: answers at the deadline, or at once when the hub starts draining (so a
 * held capture is answered before the listener's drain period closes its connection). */
static void timer_cb(evutil_socket_t fd, short ev, void *arg)
{
    admin_download_t *dl = arg;
    (void)fd;
    (void)ev;
    if (rh_mono_ms() >= dl->deadline_ms || atomic_load(&dl->a->hub->draining))
        finish(dl);
}

void admin_capture_handle(admin_req_t *r)
{
    if (strcmp(r->method, "GET") || r->nseg != 1) {
        admin_reply_error(r, 405, "capture: GET /api/v1/capture?seconds=N");
        return;
    }
    if (!admin_has_right(&r->p, ROAMHUB__V1__RIGHT__RIGHT_READ_TRAFFIC)) {
        admin_reply_error(r, 403, "capture: your key lacks RIGHT_READ_TRAFFIC");
        return;
    }
    int follow = 0;
    if (admin_query_bool(r, "follow", &follow) < 0)
        return;
    if (follow) {
        unsigned fs = 0, fm = 1000; /* live: until the client leaves; ring between reads */
        if (admin_query_uint(r, "seconds", 0, 86400, &fs) ||
            admin_query_uint(r, "max_events", 1, CAPTURE_MAX_EVENTS, &fm))
            return;
        admin_capture_follow(r, fs, fm);
        return;
    }
    unsigned seconds = 10, max_events = 10000;
    if (admin_query_uint(r, "seconds", 1, 60, &seconds) ||
        admin_query_uint(r, "max_events", 1, CAPTURE_MAX_EVENTS, &max_events))
        return;
    int download = 0;
    if (admin_query_bool(r, "download", &download) < 0)
        return;
    admin_download_t *dl = calloc(1, sizeof *dl);
    if (!dl) {
        admin_reply_error(r, 503, "capture: out of memory");
        return;
    }
    if (admin_capture_start(r, max_events, &dl->cap) != RH_OK) {
        free(dl);
        return;
    }
    dl->a = r->a;
    dl->r = *r;
    /* segments point into r->pathbuf: not used after this point */
    dl->download = download;
    dl->seconds = seconds;
    dl->max_events = max_events;
    dl->deadline_ms = rh_mono_ms() + (uint64_t)seconds * 1000u;
    dl->timer = event_new(r->a->hub->main_base, -1, EV_PERSIST, timer_cb, dl);
    struct timeval tv = {0, 100000};
    evtimer_add(dl->timer, &tv);
    dl->next = r->a->downloads;
    r->a->downloads = dl;
    r->req = NULL; /* held by the download now */
    RH_LOG(RH_LOG_INFO, "admin", "capture started seconds=%u max_events=%u by=%s", seconds,
           max_events, dl->r.p.key_id);
}

void admin_capture_fini(admin_api_t *a)
{
    while (a->downloads) {
        admin_download_t *dl = a->downloads;
        evtimer_del(dl->timer);
        finish(dl); /* answers with what was captured so far */
    }
}
