/*
 * config.c — table-driven JSON configuration (see config.h, docs/CONFIG.md).
 * One table lists every key: its JSON path, type, range and where it lands in rh_config_t, so
 * parsing, validation and "unknown key" detection all read the same list.
 */
#include "config.h"

#include "peer_addr.h"
#include "rh_fs.h"
#include "rh_json.h"
#include "rh_log.h"
#include "tls_server.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

enum kind { K_STR, K_UINT, K_BOOL, K_SIZE, K_PORT, K_RANGES, K_URLS };

typedef struct key {
    const char *section; /* NULL = top level */
    const char *name;
    enum kind kind;
    size_t off;
    unsigned long long min, max;
} key_t_;

#define CONFIG_MAX_BYTES (1u << 20) /* a configuration file larger than 1 MiB is a mistake */

#define OFF(f) offsetof(rh_config_t, f)
#define LST(l, f) (offsetof(rh_config_t, l) + offsetof(rh_listener_config_t, f))
#define TLS(l, f) (offsetof(rh_config_t, l) + offsetof(rh_listener_config_t, tls) + offsetof(rh_tls_config_t, f))

#define LISTENER_KEYS(sec, l)                                                                     \
    {sec, "address", K_STR, LST(l, address), 0, 0},                                               \
    {sec, "port", K_PORT, LST(l, port), 0, 65535},                                                \
    {sec, "tls_cert", K_STR, TLS(l, cert_file), 0, 0},                                            \
    {sec, "tls_key", K_STR, TLS(l, key_file), 0, 0},                                              \
    {sec, "tls_client_ca", K_STR, TLS(l, client_ca_file), 0, 0},                                  \
    {sec, "tls_require_client_cert", K_BOOL, TLS(l, require_client_cert), 0, 1},                  \
    {sec, "header_timeout_ms", K_UINT, LST(l, header_timeout_ms), 100, 600000},                   \
    {sec, "body_timeout_ms", K_UINT, LST(l, body_timeout_ms), 100, 600000},                       \
    {sec, "idle_timeout_ms", K_UINT, LST(l, idle_timeout_ms), 100, 3600000},                      \
    {sec, "max_header_bytes", K_SIZE, LST(l, max_header_bytes), 1024, 1048576},                   \
    {sec, "max_body_bytes", K_SIZE, LST(l, max_body_bytes), 1024, 16777216},                      \
    {sec, "max_connections", K_UINT, LST(l, max_connections), 1, 1000000}

static const key_t_ keys[] = {
    {NULL, "log_level", K_STR, OFF(log_level), 0, 0},
    {NULL, "log_format", K_STR, OFF(log_format), 0, 0},
    {NULL, "workers", K_UINT, OFF(workers), 0, 256},
    {NULL, "import", K_STR, OFF(import_file), 0, 0},
    {"database", "path", K_STR, OFF(db_path), 0, 0},
    {"database", "map_size_mb", K_SIZE, OFF(db_map_size_mb), 1, 1048576},
    LISTENER_KEYS("ts002", ts002),
    {"ts002", "dev_loopback_unauthenticated", K_BOOL, OFF(dev_loopback), 0, 1},
    LISTENER_KEYS("admin", admin),
    {"admin", "enabled", K_BOOL, OFF(admin_enabled), 0, 1},
    {"admin", "jwt_alg", K_STR, OFF(jwt_alg), 0, 0},
    {"admin", "jwt_secret_file", K_STR, OFF(jwt_secret_file), 0, 0},
    {"admin", "jwt_public_key_file", K_STR, OFF(jwt_public_key_file), 0, 0},
    {"admin", "jwt_private_key_file", K_STR, OFF(jwt_private_key_file), 0, 0},
    {"admin", "jwt_issuer", K_STR, OFF(jwt_issuer), 0, 0},
    {"admin", "jwt_audience", K_STR, OFF(jwt_audience), 0, 0},
    {"admin", "jwt_ttl_s", K_UINT, OFF(jwt_ttl_s), 10, 86400},
    {"admin", "operator_key_file", K_STR, OFF(operator_key_file), 0, 0},
    {"admin", "metrics_max_peer_pairs", K_SIZE, OFF(metrics_max_peer_pairs), 0, 1000000},
    {"console", "enabled", K_BOOL, OFF(console_enabled), 0, 1},
    {"console", "dir", K_STR, OFF(console_dir), 0, 0},
    {"console", "tile_url", K_STR, OFF(console_tile_url), 0, 0},
    {"console", "tile_attribution", K_STR, OFF(console_tile_attribution), 0, 0},
    {"console", "gateways_max", K_UINT, OFF(console_gateways_max), 1, 1000000},
    {"grpc", "enabled", K_BOOL, OFF(grpc_enabled), 0, 1},
    {"grpc", "address", K_STR, LST(grpc, address), 0, 0},
    {"grpc", "port", K_PORT, LST(grpc, port), 0, 65535},
    {"grpc", "tls_cert", K_STR, TLS(grpc, cert_file), 0, 0},
    {"grpc", "tls_key", K_STR, TLS(grpc, key_file), 0, 0},
    {"grpc", "handshake_timeout_ms", K_UINT, LST(grpc, header_timeout_ms), 100, 600000},
    {"grpc", "idle_timeout_ms", K_UINT, LST(grpc, idle_timeout_ms), 1000, 86400000},
    {"grpc", "max_header_bytes", K_SIZE, LST(grpc, max_header_bytes), 1024, 1048576},
    {"grpc", "max_message_bytes", K_SIZE, LST(grpc, max_body_bytes), 1024, 16777216},
    {"grpc", "max_connections", K_UINT, LST(grpc, max_connections), 1, 1000000},
    {"grpc", "max_streams", K_UINT, OFF(grpc_max_streams), 100, 100000},
    {"grpc", "queue_max", K_UINT, OFF(grpc_queue_max), 1, 1000000},
    {"grpc", "hold_ms", K_UINT, OFF(grpc_hold_ms), 100, 600000},
    {"grpc", "merge_window_ms", K_UINT, OFF(grpc_merge_window_ms), 0, 1000},
    {"grpc", "merge_max", K_UINT, OFF(grpc_merge_max), 1, 1000000},
    {"grpc", "token_key_file", K_STR, OFF(grpc_token_key_file), 0, 0},
    {"relay", "request_timeout_ms", K_UINT, OFF(request_timeout_ms), 50, 60000},
    {"relay", "drain_ms", K_UINT, OFF(drain_ms), 0, 600000},
    {"relay", "stats_flush_ms", K_UINT, OFF(stats_flush_ms), 100, 60000},
    {"relay", "stats_retention_days", K_UINT, OFF(stats_retention_days), 1, 3650},
    {"relay", "stats_minute_retention_days", K_UINT, OFF(stats_minute_retention_days), 1, 3650},
    {"relay", "pending_max", K_UINT, OFF(pending_max), 16, 10000000},
    {"relay", "rate_limit_per_s", K_UINT, OFF(rate_limit_per_s), 1, 10000000},
    {"relay", "hub_latency", K_BOOL, OFF(hub_latency), 0, 1},
    {"relay", "endpoint_allow_ranges", K_RANGES, OFF(endpoint_allow), 0, 64},
    {"relay", "outbound_connections_per_endpoint", K_UINT, OFF(outbound_conns_per_endpoint), 1,
     100000},
    {"relay", "outbound_connections_total", K_UINT, OFF(outbound_conns_total), 1, 1000000},
    {"cluster", "node_id", K_UINT, OFF(cluster_node_id), 1, 255},
    {"cluster", "nats_urls", K_URLS, OFF(cluster_nats_urls), 1, 16},
    {"cluster", "credentials_file", K_STR, OFF(cluster_creds_file), 0, 0},
    {"cluster", "tls_ca", K_STR, OFF(cluster_tls_ca), 0, 0},
    {"cluster", "tls_cert", K_STR, OFF(cluster_tls_cert), 0, 0},
    {"cluster", "tls_key", K_STR, OFF(cluster_tls_key), 0, 0},
    {"cluster", "stream", K_STR, OFF(cluster_stream), 0, 0},
    {"cluster", "subject_prefix", K_STR, OFF(cluster_subject_prefix), 0, 0},
    {"cluster", "replicas", K_UINT, OFF(cluster_replicas), 1, 5},
    {"cluster", "write_timeout_ms", K_UINT, OFF(cluster_write_timeout_ms), 100, 60000},
    {"cluster", "nodes", K_UINT, OFF(cluster_nodes), 1, 255},
    {"cluster", "snapshot_every", K_UINT, OFF(cluster_snapshot_every), 0, 100000000},
};
#define NKEYS (sizeof keys / sizeof keys[0])

static const char *const sections[] = {"database", "ts002", "admin", "grpc", "relay", "console", "cluster"};

/* console.tile_url: http(s) URL with {z}, {x} and {y}, no characters that could break out of
 * the Content-Security-Policy header or an attribute (it is sent in both). */
static int tile_url_check(const char *u, rh_diag_t *d)
{
    size_t sch = !strncmp(u, "https://", 8) ? 8 : !strncmp(u, "http://", 7) ? 7 : 0;
    if (!sch || strlen(u) > 512)
        return rh_diag_fail(d, RH_EINVAL, "console.tile_url: expected an http(s) URL of at most "
                                          "512 characters");
    for (const char *p = u; *p; p++)
        if (*p <= ' ' || *p >= 127 || strchr("\"'<>;,\\`", *p))
            return rh_diag_fail(d, RH_EINVAL, "console.tile_url: character '%c' not allowed",
                                *p > ' ' && *p < 127 ? *p : '?');
    if (!strstr(u, "{z}") || !strstr(u, "{x}") || !strstr(u, "{y}"))
        return rh_diag_fail(d, RH_EINVAL, "console.tile_url: needs {z}, {x} and {y}");
    const char *host = u + sch;
    if (*host == '/' || *host == '{' || *host == '\0')
        return rh_diag_fail(d, RH_EINVAL, "console.tile_url: no host");
    return RH_OK;
}

static void str_list_free(char ***list, size_t *n)
{
    for (size_t i = 0; i < *n; i++)
        free((*list)[i]);
    free(*list);
    *list = NULL;
    *n = 0;
}

static void config_ranges_free(rh_config_t *c)
{
    str_list_free(&c->endpoint_allow, &c->n_endpoint_allow);
}

/* A NATS server URL as the C client takes it: nats:// or tls:// scheme, a host, a port
 * 1..65535, nothing else (credentials belong in cluster.credentials_file, not in a URL that
 * ends up in logs). */
static int nats_url_check(const char *u, const char *where, rh_diag_t *d)
{
    const char *rest = !strncmp(u, "nats://", 7) ? u + 7 : !strncmp(u, "tls://", 6) ? u + 6 : NULL;
    if (!rest)
        return rh_diag_fail(d, RH_EINVAL, "%s: expected nats://HOST:PORT or tls://HOST:PORT",
                            where);
    if (strchr(rest, '@') || strchr(rest, '/') || strchr(rest, '?'))
        return rh_diag_fail(d, RH_EINVAL, "%s: only HOST:PORT after the scheme (credentials go "
                            "in cluster.credentials_file)", where);
    const char *colon = strrchr(rest, ':');
    char *end = NULL;
    long port = colon ? strtol(colon + 1, &end, 10) : 0;
    if (!colon || colon == rest || !end || *end || end == colon + 1 || port < 1 || port > 65535)
        return rh_diag_fail(d, RH_EINVAL, "%s: expected HOST:PORT with a port in 1..65535",
                            where);
    for (const char *p = rest; p < colon; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '.' || *p == '-' || *p == '[' || *p == ']' || *p == ':'))
            return rh_diag_fail(d, RH_EINVAL, "%s: the host has a character a host name or "
                                "address cannot have", where);
    return RH_OK;
}

/* JetStream stream names: 1..32 of [A-Za-z0-9_-] (no '.', '*', '>', space: NATS refuses
 * them). Subject prefixes: dot-separated tokens of the same characters, 1..64 bytes, no
 * wildcard. */
static int name_chars_ok(const char *s, int dots)
{
    if (!*s || *s == '.')
        return 0;
    for (const char *p = s; *p; p++) {
        int ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                 (*p >= '0' && *p <= '9') || *p == '_' || *p == '-' ||
                 (dots && *p == '.' && p[1] && p[1] != '.');
        if (!ok)
            return 0;
    }
    return 1;
}

static int set_str(char **dst, const char *v)
{
    char *d = strdup(v);
    if (!d)
        return RH_ENOMEM;
    free(*dst);
    *dst = d;
    return RH_OK;
}

static void listener_defaults(rh_listener_config_t *l, uint16_t port)
{
    l->port = port;
    l->header_timeout_ms = 10000;
    l->body_timeout_ms = 30000;
    l->idle_timeout_ms = 60000;
    l->max_header_bytes = 8192;
    l->max_body_bytes = 65536;
    l->max_connections = 8192;
}

int config_defaults(rh_config_t *c)
{
    memset(c, 0, sizeof *c);
    listener_defaults(&c->ts002, 4270);
    listener_defaults(&c->admin, 4271);
    listener_defaults(&c->grpc, 4272);
    c->grpc.idle_timeout_ms = 300000;      /* the agent pings after 5 min idle only with a stream */
    c->grpc.max_header_bytes = 16384;
    c->grpc.max_body_bytes = 1u << 20;
    c->grpc.max_connections = 1024;
    c->grpc_max_streams = 100;
    c->grpc_queue_max = 1024;
    c->grpc_hold_ms = 5000;
    c->grpc_merge_window_ms = 200; /* ChirpStack's and The Things Stack's deduplication delay */
    c->grpc_merge_max = 1024;
    c->admin_enabled = 1;
    c->db_map_size_mb = 256;
    c->request_timeout_ms = 3000;
    c->drain_ms = 5000;
    c->stats_flush_ms = 1000;
    c->stats_retention_days = 30;
    c->stats_minute_retention_days = 2;
    c->outbound_conns_per_endpoint = 256;
    c->outbound_conns_total = 8192;
    c->pending_max = 65536;
    c->rate_limit_per_s = 5000;
    c->jwt_ttl_s = 900;
    c->metrics_max_peer_pairs = 10000;
    c->console_enabled = 1;
    c->console_gateways_max = 10000;
    c->cluster_replicas = 3;
    c->cluster_write_timeout_ms = 5000;
    c->cluster_nodes = 1;
    if (set_str(&c->log_level, "info") || set_str(&c->log_format, "logfmt") ||
        set_str(&c->db_path, "var/roamhub-db") ||
        set_str(&c->ts002.address, "127.0.0.1") || set_str(&c->admin.address, "127.0.0.1") ||
        set_str(&c->grpc.address, "127.0.0.1") ||
        set_str(&c->operator_key_file, "var/operator.key") ||
        set_str(&c->jwt_alg, "HS256") || set_str(&c->jwt_issuer, "roamhub") ||
        set_str(&c->jwt_audience, "roamhub-admin") || set_str(&c->cluster_stream, "ROAMHUB") ||
        set_str(&c->cluster_subject_prefix, "roamhub")) {
        config_fini(c);
        return RH_ENOMEM;
    }
    return RH_OK;
}

static const key_t_ *find_key(const char *section, const char *name)
{
    for (size_t i = 0; i < NKEYS; i++) {
        if (((section == NULL && keys[i].section == NULL) ||
             (section && keys[i].section && strcmp(section, keys[i].section) == 0)) &&
            strcmp(name, keys[i].name) == 0)
            return &keys[i];
    }
    return NULL;
}

static int apply(rh_config_t *c, const key_t_ *k, const cJSON *v, const char *where, rh_diag_t *d)
{
    char *base = (char *)c;
    switch (k->kind) {
    case K_STR:
        if (!cJSON_IsString(v) && !cJSON_IsNull(v))
            return rh_diag_fail(d, RH_EINVAL, "%s: expected a string", where);
        if (cJSON_IsNull(v)) {
            free(*(char **)(base + k->off));
            *(char **)(base + k->off) = NULL;
            return RH_OK;
        }
        return set_str((char **)(base + k->off), v->valuestring);
    case K_RANGES: {
        /* ["127.0.0.0/8", "::1/128"]: address ranges the relay may connect to although they
         * are loopback/private/... (peer_addr.h); each checked here so a typo stops the start */
        if (!cJSON_IsArray(v) || (unsigned long long)cJSON_GetArraySize(v) > k->max)
            return rh_diag_fail(d, RH_EINVAL, "%s: expected an array of at most %llu address "
                                "ranges", where, k->max);
        config_ranges_free(c);
        size_t n = (size_t)cJSON_GetArraySize(v), i = 0;
        c->endpoint_allow = calloc(n ? n : 1, sizeof *c->endpoint_allow);
        if (!c->endpoint_allow)
            return RH_ENOMEM;
        const cJSON *e;
        cJSON_ArrayForEach(e, v)
        {
            char f[160];
            snprintf(f, sizeof f, "%s[%zu]", where, i);
            peer_addr_range_t r;
            if (!cJSON_IsString(e))
                return rh_diag_fail(d, RH_EINVAL, "%s: expected a string", f);
            int rc = peer_addr_range_parse(e->valuestring, f, &r, d);
            if (rc)
                return rc;
            if (!(c->endpoint_allow[i] = strdup(e->valuestring)))
                return RH_ENOMEM;
            c->n_endpoint_allow = ++i;
        }
        return RH_OK;
    }
    case K_URLS: {
        /* ["nats://10.0.0.1:4222", ...]: the NATS servers to connect to (any one suffices) */
        char ***list = (char ***)(base + k->off);
        size_t *n = &c->n_cluster_nats_urls;
        if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) < 1 ||
            (unsigned long long)cJSON_GetArraySize(v) > k->max)
            return rh_diag_fail(d, RH_EINVAL, "%s: expected an array of 1..%llu NATS server URLs",
                                where, k->max);
        str_list_free(list, n);
        if (!(*list = calloc((size_t)cJSON_GetArraySize(v), sizeof **list)))
            return RH_ENOMEM;
        const cJSON *e;
        cJSON_ArrayForEach(e, v)
        {
            char f[160];
            snprintf(f, sizeof f, "%s[%zu]", where, *n);
            if (!cJSON_IsString(e))
                return rh_diag_fail(d, RH_EINVAL, "%s: expected a string", f);
            int rc = nats_url_check(e->valuestring, f, d);
            if (rc)
                return rc;
            if (!((*list)[*n] = strdup(e->valuestring)))
                return RH_ENOMEM;
            (*n)++;
        }
        return RH_OK;
    }
    case K_BOOL:
        if (!cJSON_IsBool(v))
            return rh_diag_fail(d, RH_EINVAL, "%s: expected true or false", where);
        *(int *)(base + k->off) = cJSON_IsTrue(v);
        return RH_OK;
    default: {
        /* Range first: converting a double outside long long's range (1e300, NaN) is
         * undefined behaviour; every max here is far below 2^53, so the conversion after the
         * range check is exact. */
        double x0 = cJSON_IsNumber(v) ? v->valuedouble : -1.0;
        if (!cJSON_IsNumber(v) || !(x0 >= (double)k->min && x0 <= (double)k->max) ||
            x0 != (double)(unsigned long long)x0)
            return rh_diag_fail(d, RH_EINVAL, "%s: expected an integer in %llu..%llu", where,
                                k->min, k->max);
        unsigned long long x = (unsigned long long)v->valuedouble;
        if (k->kind == K_UINT)
            *(unsigned *)(base + k->off) = (unsigned)x;
        else if (k->kind == K_PORT)
            *(uint16_t *)(base + k->off) = (uint16_t)x;
        else
            *(size_t *)(base + k->off) = (size_t)x;
        return RH_OK;
    }
    }
}

/* TLS options that need the certificate: a client CA or required client certificates on a
 * listener without tls_cert would silently serve plain HTTP. */
static int listener_tls_consistent(const char *sec, const rh_tls_config_t *t, rh_diag_t *d)
{
    if (t->client_ca_file && !t->cert_file)
        return rh_diag_fail(d, RH_EINVAL, "%s.tls_client_ca: needs %s.tls_cert and %s.tls_key",
                            sec, sec, sec);
    if (t->require_client_cert && !t->cert_file)
        return rh_diag_fail(d, RH_EINVAL,
                            "%s.tls_require_client_cert: needs %s.tls_cert and %s.tls_key", sec,
                            sec, sec);
    if (t->require_client_cert && !t->client_ca_file)
        return rh_diag_fail(d, RH_EINVAL, "%s.tls_require_client_cert needs %s.tls_client_ca",
                            sec, sec);
    return RH_OK;
}

static int is_loopback(const char *addr)
{
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, addr, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, addr, &a6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&a6);
    return 0;
}

/* 1-based line and column (in bytes) of `at` inside `text`; `at` NULL = the start. */
static void text_position(const char *text, const char *at, unsigned *line, unsigned *col)
{
    *line = 1;
    *col = 1;
    for (const char *p = text; at && p < at && *p; p++) {
        if (*p == '\n') {
            (*line)++;
            *col = 1;
        } else {
            (*col)++;
        }
    }
}

/* The cluster section once read whole: what must be there and what goes together. */
static int cluster_check(rh_config_t *c, rh_diag_t *d)
{
    if (!c->cluster_node_id)
        return rh_diag_fail(d, RH_EINVAL, "cluster.node_id: required (1..255, unique per node)");
    if (!c->n_cluster_nats_urls)
        return rh_diag_fail(d, RH_EINVAL, "cluster.nats_urls: required (at least one NATS "
                            "server URL)");
    if ((c->cluster_tls_cert != NULL) != (c->cluster_tls_key != NULL))
        return rh_diag_fail(d, RH_EINVAL, "cluster.tls_cert and cluster.tls_key go together");
    if (!c->cluster_stream || strlen(c->cluster_stream) > 32 || !name_chars_ok(c->cluster_stream, 0))
        return rh_diag_fail(d, RH_EINVAL, "cluster.stream: expected 1..32 of A-Z a-z 0-9 _ - "
                            "(a JetStream stream name)");
    if (!c->cluster_subject_prefix || strlen(c->cluster_subject_prefix) > 64 || !name_chars_ok(c->cluster_subject_prefix, 1))
        return rh_diag_fail(d, RH_EINVAL, "cluster.subject_prefix: expected dot-separated tokens "
                            "of A-Z a-z 0-9 _ -, at most 64 bytes, no wildcard");
    return RH_OK;
}

int config_load(const char *path, rh_config_t *c, rh_diag_t *d)
{
    int rc = config_defaults(c);
    if (rc)
        return rc;
    char *text = NULL;
    size_t len = 0;
    rc = rh_read_file(path, CONFIG_MAX_BYTES, &text, &len, d);
    if (rc || len == 0) {
        free(text);
        config_fini(c);
        return rc ? rc : rh_diag_fail(d, RH_EINVAL, "%s: empty file", path);
    }
    rh_diag_t jd;
    cJSON *root = rh_json_parse(text, len, &rh_json_limits_config, NULL, &jd);
    if (!root) {
        /* a grammar error says where in bytes: name the line and column instead */
        const char *nb = strstr(jd.text, "near byte ");
        if (nb) {
            size_t off = (size_t)strtoull(nb + 10, NULL, 10);
            unsigned line, col;
            text_position(text, text + (off < len ? off : len), &line, &col);
            rc = rh_diag_fail(d, RH_EINVAL, "%s:%u:%u: JSON syntax error", path, line, col);
        } else {
            rc = rh_diag_fail(d, RH_EINVAL, "%s: %s", path, jd.text);
        }
        free(text);
        config_fini(c);
        return rc;
    }
    free(text);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        config_fini(c);
        return rh_diag_fail(d, RH_EINVAL, "%s: not a JSON object", path);
    }
    rc = RH_OK;
    const cJSON *item;
    cJSON_ArrayForEach(item, root)
    {
        if (rc)
            break;
        int is_section = 0;
        for (size_t s = 0; s < sizeof sections / sizeof sections[0]; s++)
            is_section |= strcmp(item->string, sections[s]) == 0;
        if (is_section) {
            if (!cJSON_IsObject(item)) {
                rc = rh_diag_fail(d, RH_EINVAL, "%s: expected an object", item->string);
                break;
            }
            if (strcmp(item->string, "grpc") == 0)
                c->grpc_enabled = 1; /* the section turns the listener on ("enabled": false off) */
            if (!strcmp(item->string, "cluster"))
                c->cluster_enabled = 1;
            const cJSON *sub;
            cJSON_ArrayForEach(sub, item)
            {
                char where[128];
                snprintf(where, sizeof where, "%s.%s", item->string, sub->string);
                const key_t_ *k = find_key(item->string, sub->string);
                rc = k ? apply(c, k, sub, where, d)
                       : rh_diag_fail(d, RH_EINVAL, "%s: unknown key", where);
                if (rc)
                    break;
            }
        } else {
            const key_t_ *k = find_key(NULL, item->string);
            rc = k ? apply(c, k, item, item->string, d)
                   : rh_diag_fail(d, RH_EINVAL, "%s: unknown key", item->string);
        }
    }
    cJSON_Delete(root);
    if (!rc && c->dev_loopback && !is_loopback(c->ts002.address))
        rc = rh_diag_fail(d, RH_EINVAL,
                          "ts002.dev_loopback_unauthenticated: only allowed when ts002.address "
                          "is a loopback address, not %s", c->ts002.address);
    if (!rc && (c->ts002.tls.cert_file != NULL) != (c->ts002.tls.key_file != NULL))
        rc = rh_diag_fail(d, RH_EINVAL, "ts002.tls_cert and ts002.tls_key go together");
    if (!rc && (c->grpc.tls.cert_file != NULL) != (c->grpc.tls.key_file != NULL))
        rc = rh_diag_fail(d, RH_EINVAL, "grpc.tls_cert and grpc.tls_key go together");
    if (!rc && (c->admin.tls.cert_file != NULL) != (c->admin.tls.key_file != NULL))
        rc = rh_diag_fail(d, RH_EINVAL, "admin.tls_cert and admin.tls_key go together");
    if (!rc)
        rc = listener_tls_consistent("ts002", &c->ts002.tls, d);
    if (!rc)
        rc = listener_tls_consistent("admin", &c->admin.tls, d);
    if (!rc) {
        if (rh_log_level_from_name(c->log_level) < 0)
            rc = rh_diag_fail(d, RH_EINVAL,
                              "log_level: expected err (or error), warn (or warning), info or debug");
        else if (rh_log_format_from_name(c->log_format) < 0)
            rc = rh_diag_fail(d, RH_EINVAL, "log_format: expected logfmt or json");
    }
    if (!rc) {
        const char *a = c->jwt_alg;
        if (strcmp(a, "HS256") && strcmp(a, "ES256") && strcmp(a, "RS256"))
            rc = rh_diag_fail(d, RH_EINVAL, "admin.jwt_alg: expected HS256, ES256 or RS256");
    }
    if (!rc && c->console_tile_url)
        rc = tile_url_check(c->console_tile_url, d);
    if (!rc && c->console_tile_attribution && strlen(c->console_tile_attribution) > 256)
        rc = rh_diag_fail(d, RH_EINVAL, "console.tile_attribution: at most 256 characters");
    if (!rc && strcmp(c->jwt_alg, "HS256") && !c->jwt_public_key_file)
        rc = rh_diag_fail(d, RH_EINVAL, "admin.jwt_public_key_file: required with jwt_alg %s",
                          c->jwt_alg);
    if (!rc && c->cluster_enabled)
        rc = cluster_check(c, d);
    if (rc) {
        config_fini(c);
        return rc;
    }
    if (set_str(&c->path, path)) {
        config_fini(c);
        return RH_ENOMEM;
    }
    return RH_OK;
}

static int check_address(const char *key, const char *addr, rh_diag_t *d)
{
    struct in_addr a4;
    struct in6_addr a6;
    if (!addr || (inet_pton(AF_INET, addr, &a4) != 1 && inet_pton(AF_INET6, addr, &a6) != 1))
        return rh_diag_fail(d, RH_EINVAL, "%s: \"%s\" is not a numeric IPv4 or IPv6 address",
                            key, addr ? addr : "");
    return RH_OK;
}

static int check_readable(const char *key, const char *file, rh_diag_t *d)
{
    if (!file)
        return RH_OK;
    FILE *f = fopen(file, "rb");
    if (!f)
        return rh_diag_fail(d, RH_EIO, "%s: %s: %s", key, file, strerror(errno));
    fclose(f);
    return RH_OK;
}

static int check_tls(const char *sec, const rh_tls_config_t *t, rh_diag_t *d)
{
    if (!t->cert_file)
        return RH_OK;
    rh_diag_t td = {{0}};
    SSL_CTX *ctx = tls_server_ctx_new(t, &td);
    if (!ctx)
        return rh_diag_fail(d, RH_EINVAL, "%s TLS: %s", sec, td.text);
    SSL_CTX_free(ctx);
    return RH_OK;
}

int config_check(const rh_config_t *c, rh_diag_t *d)
{
    int rc = check_address("ts002.address", c->ts002.address, d);
    if (!rc && c->admin_enabled)
        rc = check_address("admin.address", c->admin.address, d);
    if (!rc)
        rc = check_tls("ts002", &c->ts002.tls, d);
    if (!rc && c->admin_enabled)
        rc = check_tls("admin", &c->admin.tls, d);
    if (!rc)
        rc = check_readable("import", c->import_file, d);
    if (!rc && c->admin_enabled)
        rc = check_readable("admin.jwt_secret_file", c->jwt_secret_file, d);
    if (!rc && c->grpc_enabled)
        rc = check_readable("grpc.token_key_file", c->grpc_token_key_file, d);
    if (!rc && c->admin_enabled)
        rc = check_readable("admin.jwt_public_key_file", c->jwt_public_key_file, d);
    if (!rc && c->admin_enabled)
        rc = check_readable("admin.jwt_private_key_file", c->jwt_private_key_file, d);
    struct stat st;
    /* as the start: an operator key file others can read is refused; a missing one is created */
    if (!rc && c->admin_enabled && c->operator_key_file &&
        stat(c->operator_key_file, &st) == 0 && (st.st_mode & 077))
        rc = rh_diag_fail(d, RH_EINVAL, "admin.operator_key_file %s: readable by group or "
                          "others (chmod 600)", c->operator_key_file);
    if (!rc && c->db_path && stat(c->db_path, &st) == 0 && !S_ISDIR(st.st_mode))
        rc = rh_diag_fail(d, RH_EINVAL, "database.path %s: not a directory", c->db_path);
    return rc;
}

/* Keys applied by a SIGHUP reload (broker/reload.c); every other key needs a restart. */
static const char *const reloadable_keys[] = {
    "log_level", "log_format", "import",
    "ts002.tls_cert", "ts002.tls_key", "ts002.tls_client_ca", "ts002.tls_require_client_cert",
    "ts002.header_timeout_ms", "ts002.body_timeout_ms", "ts002.idle_timeout_ms",
    "ts002.max_header_bytes", "ts002.max_body_bytes", "ts002.max_connections",
    "admin.tls_cert", "admin.tls_key", "admin.tls_client_ca", "admin.tls_require_client_cert",
    "admin.header_timeout_ms", "admin.body_timeout_ms", "admin.idle_timeout_ms",
    "admin.max_header_bytes", "admin.max_body_bytes", "admin.max_connections",
    "admin.metrics_max_peer_pairs",
    "relay.request_timeout_ms", "relay.drain_ms", "relay.stats_retention_days",
    "relay.stats_minute_retention_days",
    "relay.rate_limit_per_s",
    "console.enabled", "console.dir", "console.tile_url", "console.tile_attribution",
    "console.gateways_max",
};

static void key_name(const key_t_ *k, char *out, size_t n)
{
    if (k->section)
        snprintf(out, n, "%s.%s", k->section, k->name);
    else
        snprintf(out, n, "%s", k->name);
}

int config_key_reloadable(const char *key)
{
    for (size_t i = 0; i < sizeof reloadable_keys / sizeof reloadable_keys[0]; i++)
        if (strcmp(key, reloadable_keys[i]) == 0)
            return 1;
    return 0;
}

static int key_differs(const key_t_ *k, const rh_config_t *a, const rh_config_t *b)
{
    const char *pa = (const char *)a + k->off, *pb = (const char *)b + k->off;
    switch (k->kind) {
    case K_STR: {
        const char *x = *(char *const *)pa, *y = *(char *const *)pb;
        return (x == NULL) != (y == NULL) || (x && strcmp(x, y) != 0);
    }
    case K_BOOL:
        return *(const int *)pa != *(const int *)pb;
    case K_UINT:
        return *(const unsigned *)pa != *(const unsigned *)pb;
    case K_PORT:
        return *(const uint16_t *)pa != *(const uint16_t *)pb;
    case K_RANGES: {
        if (a->n_endpoint_allow != b->n_endpoint_allow)
            return 1;
        for (size_t i = 0; i < a->n_endpoint_allow; i++)
            if (strcmp(a->endpoint_allow[i], b->endpoint_allow[i]) != 0)
                return 1;
        return 0;
    }
    case K_SIZE:
        return *(const size_t *)pa != *(const size_t *)pb;
    case K_URLS: {
        if (a->n_cluster_nats_urls != b->n_cluster_nats_urls)
            return 1;
        for (size_t i = 0; i < a->n_cluster_nats_urls; i++)
            if (strcmp(a->cluster_nats_urls[i], b->cluster_nats_urls[i]) != 0)
                return 1;
        return 0;
    }
    }
    return 1; /* a kind this function does not know: report it rather than guess */
}

static void list_add(char *buf, size_t len, const char *name)
{
    size_t used = strlen(buf);
    if (strstr(buf, ",...") || len == 0)
        return;
    if (used + strlen(name) + 2 + 4 >= len) {
        snprintf(buf + used, len - used, "%s...", used ? "," : "");
        return;
    }
    snprintf(buf + used, len - used, "%s%s", used ? "," : "", name);
}

void config_diff(const rh_config_t *running, const rh_config_t *next, char *changed,
                 size_t changed_len, char *restart, size_t restart_len)
{
    if (changed_len)
        changed[0] = '\0';
    if (restart_len)
        restart[0] = '\0';
    for (size_t i = 0; i < NKEYS; i++) {
        if (!key_differs(&keys[i], running, next))
            continue;
        char name[96];
        key_name(&keys[i], name, sizeof name);
        if (config_key_reloadable(name))
            list_add(changed, changed_len, name);
        else
            list_add(restart, restart_len, name);
    }
}

void config_adopt_reloadable(rh_config_t *running, rh_config_t *next)
{
    for (size_t i = 0; i < NKEYS; i++) {
        const key_t_ *k = &keys[i];
        char name[96];
        key_name(k, name, sizeof name);
        if (!config_key_reloadable(name))
            continue;
        char *pr = (char *)running + k->off, *pn = (char *)next + k->off;
        switch (k->kind) {
        case K_STR: {
            char *t = *(char **)pr;
            *(char **)pr = *(char **)pn;
            *(char **)pn = t;
            break;
        }
        case K_BOOL:
            *(int *)pr = *(int *)pn;
            break;
        case K_UINT:
            *(unsigned *)pr = *(unsigned *)pn;
            break;
        case K_PORT:
            *(uint16_t *)pr = *(uint16_t *)pn;
            break;
        case K_SIZE:
            *(size_t *)pr = *(size_t *)pn;
            break;
        case K_RANGES: /* restart-only (never in reloadable_keys) */
        case K_URLS:
            break;
        }
    }
}

static void listener_fini(rh_listener_config_t *l)
{
    free(l->address);
    free(l->tls.cert_file);
    free(l->tls.key_file);
    free(l->tls.client_ca_file);
}

void config_fini(rh_config_t *c)
{
    if (!c)
        return;
    free(c->path);
    free(c->log_level);
    free(c->log_format);
    free(c->db_path);
    free(c->import_file);
    listener_fini(&c->ts002);
    listener_fini(&c->admin);
    listener_fini(&c->grpc);
    free(c->jwt_alg);
    free(c->jwt_secret_file);
    free(c->grpc_token_key_file);
    free(c->jwt_public_key_file);
    free(c->jwt_private_key_file);
    free(c->jwt_issuer);
    free(c->jwt_audience);
    free(c->operator_key_file);
    config_ranges_free(c);
    free(c->console_dir);
    free(c->console_tile_url);
    free(c->console_tile_attribution);
    str_list_free(&c->cluster_nats_urls, &c->n_cluster_nats_urls);
    free(c->cluster_creds_file);
    free(c->cluster_tls_ca);
    free(c->cluster_tls_cert);
    free(c->cluster_tls_key);
    free(c->cluster_stream);
    free(c->cluster_subject_prefix);
    memset(c, 0, sizeof *c);
}
