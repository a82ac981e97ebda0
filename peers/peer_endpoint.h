/*
 * peer_endpoint.h — where and how the hub reaches a member: one immutable, validated TS002
 * endpoint configuration built from a roamhub.v1 Endpoint record (TS002 1.0 §20 / 1.1 §22.1:
 * JSON over HTTP/1.1 POST to a Target URL agreed out of band; HTTPS with optional client
 * certificates and an optional Authorization header, as ChirpStack and TTS do).
 *
 * Invariants of a peer_endpoint_t (all established by peer_endpoint_new and never changed):
 *   - the URL is http:// or https://, has a host, no userinfo, no fragment; `port` is set
 *     (default 80/443) and `path` starts with '/' (default "/"), query kept verbatim;
 *   - https endpoints own an SSL_CTX: TLS 1.2 or newer, peer verification on (ca_file, or the
 *     system trust store when ca_file is empty), renegotiation off, our client certificate and
 *     key loaded and matched when configured; every connection also checks the URL host against
 *     the server certificate (SSL_set1_host / IP SAN) and sends SNI for DNS names;
 *   - http endpoints carry no TLS material (ca/cert/key on an http URL is a configuration
 *     error, not silently ignored);
 *   - the host name is resolved ONCE, here (getaddrinfo, IPv4 preferred); connections use the
 *     numeric address, so no DNS happens per request or per connection. A failed resolution is
 *     not a build error (DNS is transient): `resolved` is false and the client fails requests
 *     to the endpoint fast (RH_EIO, counted towards back-off) until the next registry rebuild;
 *   - `digest` is a SHA-256 over every field that affects connections (URL, TLS files and their
 *     inode/size/mtime, authorization, limits): the per-thread client pools keep their
 *     connections across registry rebuilds while the digest is unchanged.
 * The Authorization value is a secret: it is sent to the peer and never logged.
 */
#ifndef PEER_ENDPOINT_H
#define PEER_ENDPOINT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <netinet/in.h>
#include <sys/socket.h>

#include "rh_err.h"
#include "roamhub.pb-c.h"

typedef struct ssl_ctx_st SSL_CTX;

#define PEER_ENDPOINT_DEFAULT_TIMEOUT_MS 5000u   /* HTTP request deadline when timeout_ms = 0 */
#define PEER_ENDPOINT_DEFAULT_MAX_IN_FLIGHT 64u  /* when max_in_flight = 0 */
#define PEER_ENDPOINT_MAX_MAX_IN_FLIGHT 4096u    /* larger configured values are an error */
#define PEER_ENDPOINT_MAX_TIMEOUT_MS 300000u     /* larger configured values are an error */

enum peer_protocol {
    PEER_PROTOCOL_1_0 = 0, /* TS002 1.0 (BI 1.0) */
    PEER_PROTOCOL_1_1 = 1, /* TS002 1.1 */
};

/* Flags for peer_endpoint_new. */
enum peer_endpoint_flags {
    PEER_ENDPOINT_NO_RESOLVE = 1u << 0, /* do not resolve host names (validation only, e.g. the
                                           admin API checking a record); numeric hosts are still
                                           converted */
};

/* Read-only after construction; shared by every worker thread. */
typedef struct peer_endpoint {
    char *id;                      /* Endpoint.id, non-empty */
    uint32_t net_id;               /* NetID served; 0 for a Join Server endpoint */
    char *tenant_id;               /* "" when not tenant-scoped (never NULL) */
    uint64_t join_eui;             /* Join Server JoinEUI (host order), 0 if none */
    enum peer_protocol protocol;   /* TS002 version spoken by the peer */
    bool async_answers;            /* peer acknowledges with an empty 2xx, answers later */
    bool upper_case_hex;           /* dialect: emit upper-case hex to this peer */
    bool spec_region_names;        /* dialect: TS002 1.0 region names instead of RP002 */
    bool strict_enums;             /* dialect: only TS002 1.0 ResultCodes (ChirpStack's enum) */
    bool answer_async;             /* hub answers this peer's NS requests by a later POST */
    bool answer_async_js;          /* same for its requests to a Join Server (HomeNSReq, JoinReq,
                                      RejoinReq, AppSKeyReq): ChirpStack configures them apart */
    uint32_t timeout_ms;           /* HTTP request deadline (connect+TLS+send+answer), ms */
    uint32_t max_in_flight;        /* bound on outstanding requests (see peer_client.h) */

    /* URL, parsed. */
    bool tls;                      /* https */
    char *host;                    /* URL host, IPv6 without brackets */
    uint16_t port;                 /* TCP port, host order */
    char *path;                    /* request path incl. query, starts with '/' */
    char *host_header;             /* value of the Host header ("host" or "host:port") */
    bool host_is_ip;               /* host is an IPv4/IPv6 literal (no SNI, IP SAN check) */

    /* Resolved address (see invariants). */
    bool resolved;
    char addr_text[INET6_ADDRSTRLEN]; /* numeric address connections are made to */

    char *authorization;           /* Authorization header value or NULL. SECRET: never log */
    SSL_CTX *ssl_ctx;              /* https only, else NULL; owned (SSL_CTX_up_ref to keep) */

    uint8_t digest[32];            /* connection-relevant configuration digest */
    uint64_t id_hash;              /* hash of id, for the client pools' tables */
    _Atomic long registry_refs;    /* registries sharing this endpoint (peer_registry.c only; 0
                                      for an endpoint no registry holds) */
} peer_endpoint_t;

/* The HTTP request deadline of endpoints whose record sets no timeout_ms (the hub's
 * relay.request_timeout_ms, docs/CONFIG.md), in ms (0 restores PEER_ENDPOINT_DEFAULT_TIMEOUT_MS).
 * Read by peer_endpoint_new; set it before building a registry. Thread-safe. */
void peer_endpoint_set_default_timeout_ms(uint32_t ms);

/* Builds an endpoint from an Endpoint record (copied; the record is not referenced after).
 * flags: enum peer_endpoint_flags. On success *out is a new endpoint (free with
 * peer_endpoint_free). Errors, each with `diag` naming the field ("Endpoint[id].url: ..."):
 *   RH_EINVAL  missing id, NetID 0 without join_eui, bad URL (scheme, host, userinfo, port),
 *              TLS files on an http URL, client cert without key or vice versa;
 *   RH_ERANGE  timeout_ms > PEER_ENDPOINT_MAX_TIMEOUT_MS, max_in_flight > ..._MAX_IN_FLIGHT,
 *              NetID above 24 bits;
 *   RH_ECRYPTO a TLS file cannot be loaded or the key does not match the certificate;
 *   RH_ENOMEM. */
int peer_endpoint_new(const Roamhub__V1__Endpoint *rec, unsigned flags, peer_endpoint_t **out,
                      rh_diag_t *diag);

/* Frees an endpoint; NULL is a no-op. Only the owner (normally the registry) calls this. */
void peer_endpoint_free(peer_endpoint_t *ep);

/* 64-bit FNV-1a of a NUL-terminated string (the hash used for id_hash). */
uint64_t peer_hash_str(const char *s);

#endif
