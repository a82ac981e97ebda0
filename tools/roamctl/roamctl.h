/*
 * roamctl.h — shared declarations of roamctl, the admin API command-line client (docs/roamctl.md).
 * Exit codes: 0 ok, 1 the server refused (HTTP >= 400), 2 usage error, 3 connection failure.
 */
#ifndef ROAMCTL_H
#define ROAMCTL_H

#include <stddef.h>

enum { RC_OK = 0, RC_REFUSED = 1, RC_USAGE = 2, RC_CONN = 3 };

typedef struct rc_conf {
    const char *url;      /* admin API base, e.g. http://127.0.0.1:4271 */
    char *key;            /* "id:secret" (secret: never printed) */
    const char *token;    /* a ready JWT instead of a key */
    const char *ca_file;  /* CA bundle for https */
    int json;             /* --json: print the server's JSON */
    int timeout_s;
} rc_conf_t;

typedef struct rc_resp {
    int status;           /* HTTP status; 0 = no response (error says why) */
    char *body;           /* NUL-terminated (inflated unless raw gzip was asked) */
    size_t len;
    int gzip;             /* body is still gzip-compressed */
    char content_type[128];
    char next_page_token[256]; /* X-Next-Page-Token header ("" when absent): paged answers */
    char error[256];
} rc_resp_t;

struct evhttp_uri;

/* Parses the server URL: "http[s]://host[:port][/prefix]", or "host[:port]" which means
 * http://host[:port]. Returns a new evhttp URI (caller evhttp_uri_free) or NULL with `err` (cap
 * bytes) saying what is wrong; never crashes on any input. */
struct evhttp_uri *rc_url_parse(const char *url, char *err, size_t errcap);

/* One request. path includes /api/v1 and the query. authorization: header value or NULL.
 * raw_gzip: ask for and keep a gzip body as is (downloads). Returns 0 when a response came. */
int rc_http(const rc_conf_t *cf, const char *method, const char *path, const char *ctype,
            const char *body, size_t len, const char *authorization, int raw_gzip, rc_resp_t *out);
void rc_resp_free(rc_resp_t *r);

/* A streamed GET (chunked response, e.g. the live capture): `fn` gets each piece of the body as
 * it arrives (not split on lines: the caller reassembles), until the server ends the stream or
 * the connection drops. `accept`: the Accept header. A non-200 answer is read whole into *out
 * (fn is not called). Returns 0 when a response came; out->status as rc_http. */
typedef void (*rc_stream_fn)(const char *data, size_t len, void *arg);
int rc_http_stream(const rc_conf_t *cf, const char *path, const char *authorization,
                   const char *accept, rc_stream_fn fn, void *arg, rc_resp_t *out);
int rc_gunzip(const char *in, size_t len, char **out, size_t *outlen);

#endif
