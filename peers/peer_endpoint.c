/*
 * peer_endpoint.c — builds validated, immutable endpoint configurations from Endpoint records:
 * URL parsing (evhttp_uri), one-time address resolution, the client SSL_CTX, and the digest that
 * tells the client pools whether a rebuilt endpoint is still the same connection target.
 * See peer_endpoint.h for the invariants.
 */
#include "peer_endpoint.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <event2/http.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>

#include "peer_internal.h"
#include "peer_tls.h"
#include "rh_log.h"

uint64_t peer_hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) {
        h ^= (uint8_t)*s;
        h *= 1099511628211ull;
    }
    return h;
}

static pthread_once_t ssl_index_once = PTHREAD_ONCE_INIT;
static int ssl_index = -1;

static void ssl_index_init(void)
{
    ssl_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
}

int peer_ssl_conn_index(void)
{
    pthread_once(&ssl_index_once, ssl_index_init);
    return ssl_index;
}

void peer_endpoint_free(peer_endpoint_t *ep)
{
    if (!ep)
        return;
    free(ep->id);
    free(ep->tenant_id);
    free(ep->host);
    free(ep->path);
    free(ep->host_header);
    if (ep->authorization) {
        OPENSSL_cleanse(ep->authorization, strlen(ep->authorization));
        free(ep->authorization);
    }
    SSL_CTX_free(ep->ssl_ctx);
    free(ep);
}

static atomic_uint_least32_t default_timeout_ms;

void peer_endpoint_set_default_timeout_ms(uint32_t ms)
{
    atomic_store(&default_timeout_ms, ms);
}

static bool has_crlf(const char *s)
{
    return strpbrk(s, "\r\n") != NULL;
}

/* Parses rec->url into ep. */
static int parse_url(peer_endpoint_t *ep, const char *url, rh_diag_t *diag)
{
    const char *id = ep->id;
    if (!url || !*url)
        return rh_diag_fail(diag, RH_EINVAL, "Endpoint[%s].url: missing", id);
    if (strlen(url) > 2048 || has_crlf(url))
        return rh_diag_fail(diag, RH_EINVAL, "Endpoint[%s].url: too long or contains CR/LF", id);
    struct evhttp_uri *u = evhttp_uri_parse_with_flags(url, 0);
    if (!u)
        return rh_diag_fail(diag, RH_EINVAL, "Endpoint[%s].url: not a valid URL", id);
    int rc = RH_OK;
    const char *scheme = evhttp_uri_get_scheme(u);
    const char *host = evhttp_uri_get_host(u);
    if (!scheme || (strcasecmp(scheme, "http") != 0 && strcasecmp(scheme, "https") != 0)) {
        rc = rh_diag_fail(diag, RH_EINVAL, "Endpoint[%s].url: scheme must be http or https",
                          id);
        goto out;
    }
    ep->tls = strcasecmp(scheme, "https") == 0;
    if (!host || !*host) {
        rc = rh_diag_fail(diag, RH_EINVAL, "Endpoint[%s].url: missing host", id);
        goto out;
    }
    if (evhttp_uri_get_userinfo(u)) {
        rc = rh_diag_fail(diag, RH_EINVAL,
                          "Endpoint[%s].url: credentials in the URL are not allowed (use "
                          "authorization)", id);
        goto out;
    }
    if (evhttp_uri_get_fragment(u)) {
        rc = rh_diag_fail(diag, RH_EINVAL, "Endpoint[%s].url: fragment not allowed", id);
        goto out;
    }
    int port = evhttp_uri_get_port(u);
    if (port == 0 || port > 65535) {
        rc = rh_diag_fail(diag, RH_EINVAL, "Endpoint[%s].url: port %d out of range", id, port);
        goto out;
    }
    bool default_port = port < 0;
    ep->port = (uint16_t)(port < 0 ? (ep->tls ? 443 : 80) : port);

    size_t hl = strlen(host);
    bool bracketed = hl >= 2 && host[0] == '[' && host[hl - 1] == ']';
    ep->host = bracketed ? strndup(host + 1, hl - 2) : strdup(host);
    if (!ep->host) {
        rc = RH_ENOMEM;
        goto out;
    }
    unsigned char tmp[sizeof(struct in6_addr)];
    ep->host_is_ip = inet_pton(AF_INET, ep->host, tmp) == 1 || inet_pton(AF_INET6, ep->host, tmp) == 1;
    if (bracketed && !ep->host_is_ip) {
        rc = rh_diag_fail(diag, RH_EINVAL, "Endpoint[%s].url: bad IPv6 literal", id);
        goto out;
    }

    char hh[300];
    const char *lb = bracketed ? "[" : "", *rb = bracketed ? "]" : "";
    int n = default_port ? snprintf(hh, sizeof hh, "%s%s%s", lb, ep->host, rb)
                         : snprintf(hh, sizeof hh, "%s%s%s:%u", lb, ep->host, rb, ep->port);
    if (n < 0 || (size_t)n >= sizeof hh) {
        rc = rh_diag_fail(diag, RH_EINVAL, "Endpoint[%s].url: host too long", id);
        goto out;
    }
    ep->host_header = strdup(hh);

    const char *path = evhttp_uri_get_path(u);
    const char *query = evhttp_uri_get_query(u);
    if (!path || !*path)
        path = "/";
    if (path[0] != '/') {
        rc = rh_diag_fail(diag, RH_EINVAL, "Endpoint[%s].url: path must be absolute", id);
        goto out;
    }
    size_t pl = strlen(path) + (query ? strlen(query) + 1 : 0) + 1;
    ep->path = malloc(pl);
    if (!ep->host_header || !ep->path) {
        rc = RH_ENOMEM;
        goto out;
    }
    snprintf(ep->path, pl, "%s%s%s", path, query ? "?" : "", query ? query : "");
out:
    evhttp_uri_free(u);
    return rc;
}

/* Resolves ep->host once into ep->addr_text; IPv4 preferred. */
static void resolve(peer_endpoint_t *ep, unsigned flags)
{
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = ep->host_is_ip ? AI_NUMERICHOST : 0;
    if (!ep->host_is_ip && (flags & PEER_ENDPOINT_NO_RESOLVE))
        return;
    int e = getaddrinfo(ep->host, NULL, &hints, &res);
    if (e != 0 || !res) {
        RH_LOG(RH_LOG_WARN, "peers", "endpoint host did not resolve peer=%s host=%s err=\"%s\"",
               ep->id, ep->host, gai_strerror(e));
        return;
    }
    const struct addrinfo *pick = res;
    for (const struct addrinfo *a = res; a; a = a->ai_next)
        if (a->ai_family == AF_INET) {
            pick = a;
            break;
        }
    const void *src = pick->ai_family == AF_INET
                          ? (const void *)&((const struct sockaddr_in *)pick->ai_addr)->sin_addr
                          : (const void *)&((const struct sockaddr_in6 *)pick->ai_addr)->sin6_addr;
    if (inet_ntop(pick->ai_family, src, ep->addr_text, sizeof ep->addr_text))
        ep->resolved = true;
    freeaddrinfo(res);
}

static int build_ssl_ctx(peer_endpoint_t *ep, const Roamhub__V1__Endpoint *rec, rh_diag_t *diag)
{
    char err[256];
    const char *id = ep->id;
    ERR_clear_error();
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx)
        return RH_ENOMEM;
    ep->ssl_ctx = ctx;
    if (!SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION))
        return rh_diag_fail(diag, RH_ECRYPTO, "Endpoint[%s]: cannot require TLS 1.2", id);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    if (rec->ca_file && *rec->ca_file) {
        if (SSL_CTX_load_verify_locations(ctx, rec->ca_file, NULL) != 1)
            return rh_diag_fail(diag, RH_ECRYPTO, "Endpoint[%s].ca_file: cannot load %s (%s)", id,
                                rec->ca_file, peer_tls_errors(err, sizeof err));
    } else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
        return rh_diag_fail(diag, RH_ECRYPTO, "Endpoint[%s].ca_file: no system trust store (%s)",
                            id, peer_tls_errors(err, sizeof err));
    }
    bool has_cert = rec->client_cert_file && *rec->client_cert_file;
    bool has_key = rec->client_key_file && *rec->client_key_file;
    if (has_cert != has_key)
        return rh_diag_fail(diag, RH_EINVAL,
                            "Endpoint[%s].%s: client certificate and key go together", id,
                            has_cert ? "client_key_file" : "client_cert_file");
    if (has_cert) {
        if (SSL_CTX_use_certificate_chain_file(ctx, rec->client_cert_file) != 1)
            return rh_diag_fail(diag, RH_ECRYPTO, "Endpoint[%s].client_cert_file: cannot load %s (%s)",
                                id, rec->client_cert_file, peer_tls_errors(err, sizeof err));
        if (SSL_CTX_use_PrivateKey_file(ctx, rec->client_key_file, SSL_FILETYPE_PEM) != 1)
            return rh_diag_fail(diag, RH_ECRYPTO, "Endpoint[%s].client_key_file: cannot load %s (%s)",
                                id, rec->client_key_file, peer_tls_errors(err, sizeof err));
        if (SSL_CTX_check_private_key(ctx) != 1)
            return rh_diag_fail(diag, RH_ECRYPTO,
                                "Endpoint[%s].client_key_file: key does not match the certificate",
                                id);
    }
    /* Client-side session caching: sessions are handed to the pool by the new-session callback
     * and offered again with SSL_set_session; OpenSSL keeps no internal client cache. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(ctx, peer_client_new_session_cb);
    if (peer_ssl_conn_index() < 0)
        return rh_diag_fail(diag, RH_ECRYPTO, "Endpoint[%s]: SSL ex_data index unavailable", id);
    return RH_OK;
}

static void digest_str(EVP_MD_CTX *md, const char *s)
{
    uint32_t n = s ? (uint32_t)strlen(s) : 0xffffffffu;
    EVP_DigestUpdate(md, &n, sizeof n);
    if (s)
        EVP_DigestUpdate(md, s, strlen(s));
}

static void digest_file(EVP_MD_CTX *md, const char *path)
{
    digest_str(md, path);
    struct stat st;
    memset(&st, 0, sizeof st);
    if (path && *path && stat(path, &st) == 0) {
        uint64_t v[4] = {(uint64_t)st.st_ino, (uint64_t)st.st_size, (uint64_t)st.st_mtim.tv_sec,
                         (uint64_t)st.st_mtim.tv_nsec};
        EVP_DigestUpdate(md, v, sizeof v);
    }
}

static int compute_digest(peer_endpoint_t *ep, const Roamhub__V1__Endpoint *rec)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (!md)
        return RH_ENOMEM;
    int ok = EVP_DigestInit_ex(md, EVP_sha256(), NULL);
    digest_str(md, ep->tls ? "https" : "http");
    digest_str(md, ep->host);
    digest_str(md, ep->addr_text);
    digest_str(md, ep->path);
    digest_str(md, ep->authorization);
    uint32_t nums[4] = {ep->port, ep->timeout_ms, ep->max_in_flight, ep->resolved};
    EVP_DigestUpdate(md, nums, sizeof nums);
    digest_file(md, rec->ca_file);
    digest_file(md, rec->client_cert_file);
    digest_file(md, rec->client_key_file);
    unsigned int len = 0;
    ok = ok && EVP_DigestFinal_ex(md, ep->digest, &len) == 1 && len == sizeof ep->digest;
    EVP_MD_CTX_free(md);
    return ok ? RH_OK : RH_ECRYPTO;
}

int peer_endpoint_new(const Roamhub__V1__Endpoint *rec, unsigned flags, peer_endpoint_t **out,
                      rh_diag_t *diag)
{
    if (!rec || !out)
        return rh_diag_fail(diag, RH_EINVAL, "Endpoint: NULL record");
    *out = NULL;
    if (!rec->id || !*rec->id)
        return rh_diag_fail(diag, RH_EINVAL, "Endpoint.id: missing");
    if (strlen(rec->id) > 128 || has_crlf(rec->id))
        return rh_diag_fail(diag, RH_EINVAL, "Endpoint.id: longer than 128 bytes or has CR/LF");
    peer_endpoint_t *ep = calloc(1, sizeof *ep);
    if (!ep)
        return RH_ENOMEM;
    int rc = RH_ENOMEM;
    ep->id = strdup(rec->id);
    ep->tenant_id = strdup(rec->tenant_id ? rec->tenant_id : "");
    if (!ep->id || !ep->tenant_id)
        goto fail;
    const char *id = ep->id;
    if (rec->net_id > 0xffffffu) {
        rc = rh_diag_fail(diag, RH_ERANGE, "Endpoint[%s].net_id: %08X is wider than 24 bits", id,
                          rec->net_id);
        goto fail;
    }
    if (rec->net_id == 0 && rec->join_eui == 0) {
        /* NetID 000000 is a valid (experimental) NetID, but 0 also means "unset" in proto3;
         * an endpoint must serve a NetID or a JoinEUI. */
        rc = rh_diag_fail(diag, RH_EINVAL, "Endpoint[%s].net_id: neither net_id nor join_eui set",
                          id);
        goto fail;
    }
    ep->net_id = rec->net_id;
    ep->join_eui = rec->join_eui;
    if (rec->protocol_version != ROAMHUB__V1__PROTOCOL_VERSION__PROTOCOL_VERSION_1_0 &&
        rec->protocol_version != ROAMHUB__V1__PROTOCOL_VERSION__PROTOCOL_VERSION_1_1) {
        rc = rh_diag_fail(diag, RH_EINVAL, "Endpoint[%s].protocol_version: unknown value %d", id,
                          (int)rec->protocol_version);
        goto fail;
    }
    ep->protocol = rec->protocol_version == ROAMHUB__V1__PROTOCOL_VERSION__PROTOCOL_VERSION_1_1
                       ? PEER_PROTOCOL_1_1
                       : PEER_PROTOCOL_1_0;
    ep->async_answers = rec->async_answers;
    ep->upper_case_hex = rec->upper_case_hex;
    ep->spec_region_names = rec->spec_region_names;
    ep->strict_enums = rec->strict_enums;
    ep->answer_async = rec->answer_mode == ROAMHUB__V1__ANSWER_MODE__ANSWER_MODE_UNSPECIFIED
                           ? rec->async_answers
                           : rec->answer_mode == ROAMHUB__V1__ANSWER_MODE__ANSWER_MODE_ASYNC;
    ep->answer_async_js = rec->js_answer_mode == ROAMHUB__V1__ANSWER_MODE__ANSWER_MODE_UNSPECIFIED
                              ? ep->answer_async
                              : rec->js_answer_mode == ROAMHUB__V1__ANSWER_MODE__ANSWER_MODE_ASYNC;
    if (rec->timeout_ms > PEER_ENDPOINT_MAX_TIMEOUT_MS) {
        rc = rh_diag_fail(diag, RH_ERANGE, "Endpoint[%s].timeout_ms: %u exceeds %u", id,
                          rec->timeout_ms, PEER_ENDPOINT_MAX_TIMEOUT_MS);
        goto fail;
    }
    uint32_t dflt = atomic_load(&default_timeout_ms);
    ep->timeout_ms = rec->timeout_ms ? rec->timeout_ms : dflt ? dflt : PEER_ENDPOINT_DEFAULT_TIMEOUT_MS;
    if (rec->max_in_flight > PEER_ENDPOINT_MAX_MAX_IN_FLIGHT) {
        rc = rh_diag_fail(diag, RH_ERANGE, "Endpoint[%s].max_in_flight: %u exceeds %u", id,
                          rec->max_in_flight, PEER_ENDPOINT_MAX_MAX_IN_FLIGHT);
        goto fail;
    }
    ep->max_in_flight = rec->max_in_flight ? rec->max_in_flight : PEER_ENDPOINT_DEFAULT_MAX_IN_FLIGHT;
    if (rec->authorization && *rec->authorization) {
        if (has_crlf(rec->authorization) || strlen(rec->authorization) > 8192) {
            rc = rh_diag_fail(diag, RH_EINVAL,
                              "Endpoint[%s].authorization: contains CR/LF or is longer than 8192 "
                              "bytes", id);
            goto fail;
        }
        if (!(ep->authorization = strdup(rec->authorization)))
            goto fail;
    }
    if ((rc = parse_url(ep, rec->url, diag)) != RH_OK)
        goto fail;
    if (ep->tls) {
        if ((rc = build_ssl_ctx(ep, rec, diag)) != RH_OK)
            goto fail;
    } else {
        const char *field = (rec->ca_file && *rec->ca_file)                   ? "ca_file"
                            : (rec->client_cert_file && *rec->client_cert_file) ? "client_cert_file"
                            : (rec->client_key_file && *rec->client_key_file)   ? "client_key_file"
                                                                               : NULL;
        if (field) {
            rc = rh_diag_fail(diag, RH_EINVAL, "Endpoint[%s].%s: set but the URL is plain http",
                              id, field);
            goto fail;
        }
    }
    resolve(ep, flags);
    ep->id_hash = peer_hash_str(ep->id);
    if ((rc = compute_digest(ep, rec)) != RH_OK)
        goto fail;
    *out = ep;
    return RH_OK;
fail:
    peer_endpoint_free(ep);
    return rc;
}
