/*
 * admin_internal.h — what the admin API's files share (internal to broker/admin*.c): the API
 * state, the per-request context, and the reply helpers that give every response the same shape:
 * JSON, errors as {"error": {"code": N, "message": "..."}}, gzip when the client accepts it.
 *
 * Everything here runs on the main thread (the admin listener's event loop).
 */
#ifndef RH_ADMIN_INTERNAL_H
#define RH_ADMIN_INTERNAL_H

#include "admin.h"
#include "admin_auth.h"
#include "admin_jwt.h"
#include "hub.h"

#include <cjson/cJSON.h>
#include <stdint.h>

#define ADMIN_MAX_SEGS 8

typedef struct admin_download admin_download_t;

struct admin_api {
    hub_t *hub;
    hs_server_t *srv;
    admin_jwt_t *jwt;
    rp_reader_t *reader;          /* route table view (main thread only) */
    admin_download_t *downloads;  /* captures awaiting their end (admin_capture.c) */
};

typedef struct admin_req {
    admin_api_t *a;
    hs_req_t *req;
    const char *method;
    char pathbuf[1024];
    char *seg[ADMIN_MAX_SEGS];    /* percent-decoded path segments after /api/v1/ */
    int nseg;
    admin_principal_t p;
    int64_t now_s;
} admin_req_t;

/* Routes one /api/v1/ request (admin.c calls it). */
void admin_api_handle(admin_api_t *a, hs_req_t *req);

/* Replies (and frees the hs request). JSON bodies are consumed. Responses are gzip-compressed
 * when the request's Accept-Encoding allows gzip. */
void admin_reply_json(admin_req_t *r, int status, cJSON *body);
void admin_reply_error(admin_req_t *r, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void admin_reply_body(admin_req_t *r, int status, const char *ctype, const void *body,
                      size_t len);

/* HTTP status for an RH_E* code from storage/validation. */
int admin_status_of(int rc);

/* Query parameter `name`, percent-decoded, into out. 1 = present, 0 = absent, -1 = too long or
 * malformed. */
int admin_query(const admin_req_t *r, const char *name, char *out, size_t cap);

/* Parses the request body as a JSON object. On failure replies 400 itself and returns NULL. */
cJSON *admin_body_json(admin_req_t *r);

/* Whether the client accepts gzip; gzip (RFC 1952) compression of a buffer (malloc'd). */
int admin_accepts_gzip(const admin_req_t *r);
int admin_gzip(const void *in, size_t len, uint8_t **out, size_t *outlen);

/* Whether the principal may see traffic/records of NetID n (operator: always). */
int admin_scope_net(const admin_principal_t *p, uint32_t n);

/* Handlers by area. */
void admin_resources_handle(admin_req_t *r);   /* networks ... keys, import, catalog, routes,
                                                  audit, policies/effective */
void admin_stats_handle(admin_req_t *r);       /* GET /stats */
void admin_capture_handle(admin_req_t *r);     /* GET /capture */
void admin_capture_fini(admin_api_t *a);       /* ends captures in progress (shutdown) */

#endif
