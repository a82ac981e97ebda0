/*
 * peer_registry.c — the immutable member/endpoint snapshot: build-time validation and indexes
 * (sorted arrays searched with bsearch, an open-addressing table for API key hashes), lock-free
 * lookups, GCRA rate limiting, and the refcounted publication slot. See peer_registry.h.
 */
#include "peer_registry.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "rh_log.h"

typedef struct fp_entry {
    uint8_t fp[PEER_SHA256_LEN];
    peer_member_t *m;
} fp_entry_t;

typedef struct str_entry {
    const char *s;
    peer_member_t *m;
} str_entry_t;

typedef struct key_slot {
    uint8_t hash[PEER_SHA256_LEN];
    peer_member_t *m; /* NULL = empty slot */
} key_slot_t;

typedef struct netid_entry {
    uint32_t net_id;
    const char *tenant; /* "" = NetID level */
    void *obj;          /* peer_member_t* or peer_endpoint_t* */
} netid_entry_t;

typedef struct eui_entry {
    uint64_t eui;
    peer_endpoint_t *ep;
} eui_entry_t;

struct peer_registry {
    _Atomic long refs;
    peer_member_t **members; /* sorted by id */
    size_t n_members;
    fp_entry_t *fps;         /* sorted by fp */
    size_t n_fps;
    str_entry_t *subjects;   /* sorted by subject */
    size_t n_subjects;
    key_slot_t *keys;        /* open addressing, key_mask + 1 slots */
    size_t key_mask;
    netid_entry_t *member_nets; /* sorted by (net_id, tenant) */
    size_t n_member_nets;
    peer_member_t **dev;     /* dev loopback members */
    size_t n_dev;
    peer_endpoint_t **endpoints; /* sorted by id */
    size_t n_endpoints;
    netid_entry_t *ep_nets;  /* sorted by (net_id, tenant) */
    size_t n_ep_nets;
    eui_entry_t *ep_euis;    /* sorted by eui */
    size_t n_ep_euis;
};

/* ------------------------------------------------------------------------------------------ */

static void member_free(peer_member_t *m)
{
    if (!m)
        return;
    free(m->id);
    free(m->net_ids);
    for (size_t i = 0; i < m->n_tenant_ids; i++)
        free(m->tenant_ids[i]);
    free(m->tenant_ids);
    free(m);
}

static void registry_free(peer_registry_t *r)
{
    for (size_t i = 0; i < r->n_members; i++)
        member_free(r->members[i]);
    for (size_t i = 0; i < r->n_endpoints; i++)
        peer_endpoint_free(r->endpoints[i]);
    free(r->members);
    free(r->fps);
    for (size_t i = 0; i < r->n_subjects; i++)
        free((char *)r->subjects[i].s);
    free(r->subjects);
    if (r->keys)
        OPENSSL_cleanse(r->keys, (r->key_mask + 1) * sizeof *r->keys);
    free(r->keys);
    free(r->member_nets);
    free(r->dev);
    free(r->endpoints);
    free(r->ep_nets);
    free(r->ep_euis);
    free(r);
}

peer_registry_t *peer_registry_ref(peer_registry_t *reg)
{
    if (reg)
        atomic_fetch_add_explicit(&reg->refs, 1, memory_order_relaxed);
    return reg;
}

void peer_registry_unref(peer_registry_t *reg)
{
    if (reg && atomic_fetch_sub_explicit(&reg->refs, 1, memory_order_acq_rel) == 1)
        registry_free(reg);
}

size_t peer_registry_member_count(const peer_registry_t *reg) { return reg ? reg->n_members : 0; }
size_t peer_registry_endpoint_count(const peer_registry_t *reg)
{
    return reg ? reg->n_endpoints : 0;
}

/* qsort that accepts an empty (possibly NULL) array. */
static void sort_n(void *base, size_t n, size_t size, int (*cmp)(const void *, const void *))
{
    if (n > 1)
        qsort(base, n, size, cmp);
}

/* ---- comparators ------------------------------------------------------------------------- */

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}
static int cmp_strp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}
static int cmp_member_id(const void *a, const void *b)
{
    return strcmp((*(peer_member_t *const *)a)->id, (*(peer_member_t *const *)b)->id);
}
static int cmp_ep_id(const void *a, const void *b)
{
    return strcmp((*(peer_endpoint_t *const *)a)->id, (*(peer_endpoint_t *const *)b)->id);
}
static int cmp_fp(const void *a, const void *b)
{
    return memcmp(((const fp_entry_t *)a)->fp, ((const fp_entry_t *)b)->fp, PEER_SHA256_LEN);
}
static int cmp_str_entry(const void *a, const void *b)
{
    return strcmp(((const str_entry_t *)a)->s, ((const str_entry_t *)b)->s);
}
static int cmp_netid_entry(const void *a, const void *b)
{
    const netid_entry_t *x = a, *y = b;
    if (x->net_id != y->net_id)
        return x->net_id < y->net_id ? -1 : 1;
    return strcmp(x->tenant, y->tenant);
}
static int cmp_eui_entry(const void *a, const void *b)
{
    uint64_t x = ((const eui_entry_t *)a)->eui, y = ((const eui_entry_t *)b)->eui;
    return x < y ? -1 : x > y;
}

/* ---- build ------------------------------------------------------------------------------- */

static int parse_fingerprint(const char *s, uint8_t out[PEER_SHA256_LEN])
{
    size_t n = 0;
    int hi = -1;
    for (; *s; s++) {
        int v;
        char c = *s;
        if (c == ':')
            continue;
        if (c >= '0' && c <= '9')
            v = c - '0';
        else if (c >= 'a' && c <= 'f')
            v = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            v = c - 'A' + 10;
        else
            return RH_EINVAL;
        if (hi < 0) {
            hi = v;
        } else {
            if (n == PEER_SHA256_LEN)
                return RH_EINVAL;
            out[n++] = (uint8_t)(hi << 4 | v);
            hi = -1;
        }
    }
    return (n == PEER_SHA256_LEN && hi < 0) ? RH_OK : RH_EINVAL;
}

static int member_new(const Roamhub__V1__Member *rec, peer_member_t **out, rh_diag_t *diag)
{
    *out = NULL;
    if (!rec || !rec->id || !*rec->id)
        return rh_diag_fail(diag, RH_EINVAL, "Member.id: missing");
    const char *id = rec->id;
    if (strlen(id) > 128)
        return rh_diag_fail(diag, RH_EINVAL, "Member.id: longer than 128 bytes");
    if (rec->n_net_ids == 0)
        return rh_diag_fail(diag, RH_EINVAL, "Member[%s].net_ids: a member needs a NetID", id);
    peer_member_t *m = calloc(1, sizeof *m);
    if (!m)
        return RH_ENOMEM;
    m->id = strdup(id);
    m->net_ids = malloc(rec->n_net_ids * sizeof *m->net_ids);
    if (rec->n_tenant_ids)
        m->tenant_ids = calloc(rec->n_tenant_ids, sizeof *m->tenant_ids);
    if (!m->id || !m->net_ids || (rec->n_tenant_ids && !m->tenant_ids)) {
        member_free(m);
        return RH_ENOMEM;
    }
    for (size_t i = 0; i < rec->n_net_ids; i++) {
        if (rec->net_ids[i] > 0xffffffu) {
            member_free(m);
            return rh_diag_fail(diag, RH_EINVAL, "Member[%s].net_ids[%zu]: %08X is wider than 24 bits",
                                id, i, rec->net_ids[i]);
        }
        m->net_ids[i] = rec->net_ids[i];
    }
    sort_n(m->net_ids, rec->n_net_ids, sizeof *m->net_ids, cmp_u32);
    size_t k = 0;
    for (size_t i = 0; i < rec->n_net_ids; i++)
        if (k == 0 || m->net_ids[k - 1] != m->net_ids[i])
            m->net_ids[k++] = m->net_ids[i];
    m->n_net_ids = k;
    for (size_t i = 0; i < rec->n_tenant_ids; i++) {
        const char *t = rec->tenant_ids[i];
        if (!t || !*t) {
            member_free(m);
            return rh_diag_fail(diag, RH_EINVAL, "Member[%s].tenant_ids[%zu]: empty tenant id", id, i);
        }
        if (!(m->tenant_ids[m->n_tenant_ids++] = strdup(t))) {
            member_free(m);
            return RH_ENOMEM;
        }
    }
    sort_n(m->tenant_ids, m->n_tenant_ids, sizeof *m->tenant_ids, cmp_strp);
    k = 0;
    for (size_t i = 0; i < m->n_tenant_ids; i++) {
        if (k && strcmp(m->tenant_ids[k - 1], m->tenant_ids[i]) == 0)
            free(m->tenant_ids[i]);
        else
            m->tenant_ids[k++] = m->tenant_ids[i];
    }
    m->n_tenant_ids = k;
    m->rate_per_s = rec->rate_limit_per_s ? rec->rate_limit_per_s : PEER_MEMBER_DEFAULT_RATE;
    m->rate_interval_ns = 1000000000ull / m->rate_per_s;
    if (m->rate_interval_ns == 0)
        m->rate_interval_ns = 1;
    m->rate_tolerance_ns = ((uint64_t)m->rate_per_s * PEER_MEMBER_BURST_FACTOR - 1) * m->rate_interval_ns;
    atomic_init(&m->rate_tat_ns, 0);
    *out = m;
    return RH_OK;
}

static int key_insert(peer_registry_t *r, const uint8_t *hash, peer_member_t *m, rh_diag_t *diag)
{
    uint64_t h;
    memcpy(&h, hash, sizeof h);
    for (size_t i = h & r->key_mask;; i = (i + 1) & r->key_mask) {
        key_slot_t *s = &r->keys[i];
        if (!s->m) {
            memcpy(s->hash, hash, PEER_SHA256_LEN);
            s->m = m;
            return RH_OK;
        }
        if (memcmp(s->hash, hash, PEER_SHA256_LEN) == 0)
            return rh_diag_fail(diag, RH_EEXIST,
                                "Member[%s].api_key_hashes: the same key is already held by "
                                "Member[%s]", m->id, s->m->id);
    }
}

/* Builds every member index; validates cross-member uniqueness. */
static int build_members(peer_registry_t *r, const peer_registry_config_t *cfg, rh_diag_t *diag)
{
    int rc;
    size_t n = cfg->n_members, n_fp = 0, n_subj = 0, n_keys = 0, n_nets = 0;
    if (n && !(r->members = calloc(n, sizeof *r->members)))
        return RH_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const Roamhub__V1__Member *rec = cfg->members[i];
        if ((rc = member_new(rec, &r->members[i], diag)) != RH_OK)
            return rc;
        r->n_members++;
        n_fp += rec->n_cert_fingerprints;
        n_subj += rec->n_cert_subjects;
        n_keys += rec->n_api_key_hashes;
        n_nets += r->members[i]->n_net_ids *
                  (r->members[i]->n_tenant_ids ? r->members[i]->n_tenant_ids : 1);
    }
    sort_n(r->members, n, sizeof *r->members, cmp_member_id);
    for (size_t i = 1; i < n; i++)
        if (strcmp(r->members[i - 1]->id, r->members[i]->id) == 0)
            return rh_diag_fail(diag, RH_EEXIST, "Member[%s].id: duplicate member id",
                                r->members[i]->id);

    r->fps = n_fp ? calloc(n_fp, sizeof *r->fps) : NULL;
    r->subjects = n_subj ? calloc(n_subj, sizeof *r->subjects) : NULL;
    size_t cap = 16;
    while (cap < 2 * n_keys)
        cap <<= 1;
    r->keys = calloc(cap, sizeof *r->keys);
    r->key_mask = cap - 1;
    r->member_nets = n_nets ? calloc(n_nets, sizeof *r->member_nets) : NULL;
    if ((n_fp && !r->fps) || (n_subj && !r->subjects) || !r->keys || (n_nets && !r->member_nets))
        return RH_ENOMEM;

    /* Records in input order (the member array is sorted; find each record's member). */
    for (size_t i = 0; i < n; i++) {
        const Roamhub__V1__Member *rec = cfg->members[i];
        peer_member_t key = {.id = rec->id}, *kp = &key;
        peer_member_t **mp = bsearch(&kp, r->members, n, sizeof *r->members, cmp_member_id);
        peer_member_t *m = *mp;
        for (size_t j = 0; j < rec->n_cert_fingerprints; j++) {
            const char *f = rec->cert_fingerprints[j];
            if (!f || parse_fingerprint(f, r->fps[r->n_fps].fp) != RH_OK)
                return rh_diag_fail(diag, RH_EINVAL,
                                    "Member[%s].cert_fingerprints[%zu]: expected a SHA-256 "
                                    "fingerprint, 64 hex digits (colons allowed)", m->id, j);
            r->fps[r->n_fps++].m = m;
        }
        for (size_t j = 0; j < rec->n_cert_subjects; j++) {
            const char *s = rec->cert_subjects[j];
            if (!s || !*s || strlen(s) >= sizeof(((peer_tls_identity_t *)0)->subject))
                return rh_diag_fail(diag, RH_EINVAL,
                                    "Member[%s].cert_subjects[%zu]: empty or longer than 511 "
                                    "bytes", m->id, j);
            if (!(r->subjects[r->n_subjects].s = strdup(s)))
                return RH_ENOMEM;
            r->subjects[r->n_subjects++].m = m;
        }
        for (size_t j = 0; j < rec->n_api_key_hashes; j++) {
            if (rec->api_key_hashes[j].len != PEER_SHA256_LEN)
                return rh_diag_fail(diag, RH_EINVAL,
                                    "Member[%s].api_key_hashes[%zu]: %zu bytes, expected a "
                                    "32-byte SHA-256", m->id, j, rec->api_key_hashes[j].len);
            if ((rc = key_insert(r, rec->api_key_hashes[j].data, m, diag)) != RH_OK)
                return rc;
        }
    }
    sort_n(r->fps, r->n_fps, sizeof *r->fps, cmp_fp);
    for (size_t i = 1; i < r->n_fps; i++)
        if (memcmp(r->fps[i - 1].fp, r->fps[i].fp, PEER_SHA256_LEN) == 0)
            return rh_diag_fail(diag, RH_EEXIST,
                                "Member[%s].cert_fingerprints: certificate also mapped to "
                                "Member[%s]", r->fps[i].m->id, r->fps[i - 1].m->id);
    sort_n(r->subjects, r->n_subjects, sizeof *r->subjects, cmp_str_entry);
    for (size_t i = 1; i < r->n_subjects; i++)
        if (strcmp(r->subjects[i - 1].s, r->subjects[i].s) == 0)
            return rh_diag_fail(diag, RH_EEXIST,
                                "Member[%s].cert_subjects: subject \"%s\" also mapped to "
                                "Member[%s]", r->subjects[i].m->id, r->subjects[i].s,
                                r->subjects[i - 1].m->id);

    /* NetID claims. */
    for (size_t i = 0; i < n; i++) {
        peer_member_t *m = r->members[i];
        for (size_t j = 0; j < m->n_net_ids; j++) {
            if (!m->n_tenant_ids) {
                r->member_nets[r->n_member_nets++] = (netid_entry_t){m->net_ids[j], "", m};
                continue;
            }
            for (size_t t = 0; t < m->n_tenant_ids; t++)
                r->member_nets[r->n_member_nets++] =
                    (netid_entry_t){m->net_ids[j], m->tenant_ids[t], m};
        }
    }
    sort_n(r->member_nets, r->n_member_nets, sizeof *r->member_nets, cmp_netid_entry);
    for (size_t i = 1; i < r->n_member_nets; i++) {
        const netid_entry_t *a = &r->member_nets[i - 1], *b = &r->member_nets[i];
        if (a->net_id != b->net_id)
            continue;
        /* "" sorts first: an unscoped member followed by any other claim on its NetID, or two
         * claims on one (NetID, tenant), is an overlap. */
        if (!*a->tenant || strcmp(a->tenant, b->tenant) == 0)
            return rh_diag_fail(diag, RH_EEXIST,
                                "Member[%s].net_ids: NetID %06X%s%s is already claimed by "
                                "Member[%s]", ((peer_member_t *)b->obj)->id, b->net_id,
                                *b->tenant ? " tenant " : "", b->tenant,
                                ((peer_member_t *)a->obj)->id);
    }

    /* Dev loopback members. */
    if (cfg->n_dev_loopback_members &&
        !(r->dev = calloc(cfg->n_dev_loopback_members, sizeof *r->dev)))
        return RH_ENOMEM;
    for (size_t i = 0; i < cfg->n_dev_loopback_members; i++) {
        const char *id = cfg->dev_loopback_members[i];
        const peer_member_t *m = NULL;
        if (id)
            peer_registry_member_by_id(r, id, &m);
        if (!m)
            return rh_diag_fail(diag, RH_EINVAL, "dev_loopback_members[%zu]: no member \"%s\"",
                                i, id ? id : "(null)");
        if (!m->dev_loopback) {
            ((peer_member_t *)m)->dev_loopback = true;
            r->dev[r->n_dev++] = (peer_member_t *)m;
        }
    }
    return RH_OK;
}

static int build_endpoints(peer_registry_t *r, const peer_registry_config_t *cfg, rh_diag_t *diag)
{
    int rc;
    size_t n = cfg->n_endpoints;
    if (!n)
        return RH_OK;
    r->endpoints = calloc(n, sizeof *r->endpoints);
    r->ep_nets = calloc(n, sizeof *r->ep_nets);
    r->ep_euis = calloc(n, sizeof *r->ep_euis);
    if (!r->endpoints || !r->ep_nets || !r->ep_euis)
        return RH_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        peer_endpoint_t *ep = NULL;
        if ((rc = peer_endpoint_new(cfg->endpoints[i], cfg->endpoint_flags, &ep, diag)) != RH_OK)
            return rc;
        r->endpoints[r->n_endpoints++] = ep;
        if (ep->net_id != 0)
            r->ep_nets[r->n_ep_nets++] = (netid_entry_t){ep->net_id, ep->tenant_id, ep};
        if (ep->join_eui != 0)
            r->ep_euis[r->n_ep_euis++] = (eui_entry_t){ep->join_eui, ep};
    }
    sort_n(r->endpoints, n, sizeof *r->endpoints, cmp_ep_id);
    for (size_t i = 1; i < n; i++)
        if (strcmp(r->endpoints[i - 1]->id, r->endpoints[i]->id) == 0)
            return rh_diag_fail(diag, RH_EEXIST, "Endpoint[%s].id: duplicate endpoint id",
                                r->endpoints[i]->id);
    sort_n(r->ep_nets, r->n_ep_nets, sizeof *r->ep_nets, cmp_netid_entry);
    for (size_t i = 1; i < r->n_ep_nets; i++)
        if (cmp_netid_entry(&r->ep_nets[i - 1], &r->ep_nets[i]) == 0)
            return rh_diag_fail(diag, RH_EEXIST,
                                "Endpoint[%s].net_id: NetID %06X%s%s is already served by "
                                "Endpoint[%s]", ((peer_endpoint_t *)r->ep_nets[i].obj)->id,
                                r->ep_nets[i].net_id, *r->ep_nets[i].tenant ? " tenant " : "",
                                r->ep_nets[i].tenant,
                                ((peer_endpoint_t *)r->ep_nets[i - 1].obj)->id);
    sort_n(r->ep_euis, r->n_ep_euis, sizeof *r->ep_euis, cmp_eui_entry);
    for (size_t i = 1; i < r->n_ep_euis; i++)
        if (r->ep_euis[i - 1].eui == r->ep_euis[i].eui)
            return rh_diag_fail(diag, RH_EEXIST,
                                "Endpoint[%s].join_eui: %016llX is already served by "
                                "Endpoint[%s]", r->ep_euis[i].ep->id,
                                (unsigned long long)r->ep_euis[i].eui, r->ep_euis[i - 1].ep->id);
    return RH_OK;
}

int peer_registry_new(const peer_registry_config_t *cfg, peer_registry_t **out, rh_diag_t *diag)
{
    if (!cfg || !out || (cfg->n_members && !cfg->members) ||
        (cfg->n_endpoints && !cfg->endpoints) ||
        (cfg->n_dev_loopback_members && !cfg->dev_loopback_members))
        return rh_diag_fail(diag, RH_EINVAL, "registry: NULL configuration");
    *out = NULL;
    for (size_t i = 0; i < cfg->n_members; i++)
        if (!cfg->members[i])
            return rh_diag_fail(diag, RH_EINVAL, "members[%zu]: NULL record", i);
    for (size_t i = 0; i < cfg->n_endpoints; i++)
        if (!cfg->endpoints[i])
            return rh_diag_fail(diag, RH_EINVAL, "endpoints[%zu]: NULL record", i);
    peer_registry_t *r = calloc(1, sizeof *r);
    if (!r)
        return RH_ENOMEM;
    atomic_init(&r->refs, 1);
    int rc = build_members(r, cfg, diag);
    if (rc == RH_OK)
        rc = build_endpoints(r, cfg, diag);
    if (rc != RH_OK) {
        registry_free(r);
        return rc;
    }
    *out = r;
    return RH_OK;
}

/* ---- authentication ---------------------------------------------------------------------- */

int peer_registry_auth_tls(const peer_registry_t *reg, const peer_tls_identity_t *id,
                           const peer_member_t **out)
{
    if (!reg || !id || !out)
        return RH_EINVAL;
    *out = NULL;
    if (!id->present)
        return RH_OK;
    fp_entry_t key;
    memcpy(key.fp, id->fingerprint, PEER_SHA256_LEN);
    const fp_entry_t *f = reg->n_fps ? bsearch(&key, reg->fps, reg->n_fps, sizeof key, cmp_fp) : NULL;
    if (f) {
        *out = f->m;
        return RH_OK;
    }
    if (!id->subject[0] || !reg->n_subjects)
        return RH_OK;
    str_entry_t sk = {.s = id->subject};
    const str_entry_t *s = bsearch(&sk, reg->subjects, reg->n_subjects, sizeof sk, cmp_str_entry);
    if (s)
        *out = s->m;
    return RH_OK;
}

/* OpenSSL 3 looks an algorithm up on every EVP_sha256() use unless it is fetched once. */
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;
static EVP_MD *sha256_md;

static void sha256_fetch(void)
{
    sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

int peer_api_key_hash(const char *key, size_t len, uint8_t out[PEER_SHA256_LEN])
{
    unsigned int n = 0;
    if (!key || !out)
        return RH_EINVAL;
    pthread_once(&sha256_once, sha256_fetch);
    const EVP_MD *md = sha256_md ? sha256_md : EVP_sha256();
    if (EVP_Digest(key, len, out, &n, md, NULL) != 1 || n != PEER_SHA256_LEN)
        return RH_ECRYPTO;
    return RH_OK;
}

int peer_registry_auth_bearer(const peer_registry_t *reg, const char *authorization,
                              const peer_member_t **out)
{
    if (!reg || !out)
        return RH_EINVAL;
    *out = NULL;
    if (!authorization)
        return RH_EINVAL;
    const char *p = authorization;
    while (*p == ' ' || *p == '\t')
        p++;
    if (strncasecmp(p, "Bearer", 6) != 0 || (p[6] != ' ' && p[6] != '\t'))
        return RH_EINVAL;
    p += 6;
    while (*p == ' ' || *p == '\t')
        p++;
    size_t len = 0;
    while (p[len] && p[len] != ' ' && p[len] != '\t')
        len++;
    for (const char *q = p + len; *q; q++)
        if (*q != ' ' && *q != '\t')
            return RH_EINVAL; /* more than one token */
    if (len == 0 || len > 4096)
        return RH_EINVAL;
    uint8_t h[PEER_SHA256_LEN];
    int rc = peer_api_key_hash(p, len, h);
    if (rc != RH_OK)
        return rc;
    uint64_t idx;
    memcpy(&idx, h, sizeof idx);
    const peer_member_t *found = NULL;
    /* Walk the whole probe chain and compare every occupied slot in full. */
    for (size_t i = idx & reg->key_mask;; i = (i + 1) & reg->key_mask) {
        const key_slot_t *s = &reg->keys[i];
        if (!s->m)
            break;
        int diff = CRYPTO_memcmp(s->hash, h, PEER_SHA256_LEN);
        if (diff == 0)
            found = s->m;
    }
    OPENSSL_cleanse(h, sizeof h);
    *out = found;
    return RH_OK;
}

static bool is_loopback(const struct sockaddr *sa)
{
    if (!sa)
        return false;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    }
    if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        if (IN6_IS_ADDR_LOOPBACK(a))
            return true;
        return IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127;
    }
    return false;
}

int peer_registry_auth_dev_loopback(const peer_registry_t *reg, bool listener_is_dev_loopback,
                                    const struct sockaddr *peer, uint32_t sender_net_id,
                                    const peer_member_t **out)
{
    if (!reg || !out)
        return RH_EINVAL;
    *out = NULL;
    if (!listener_is_dev_loopback || !is_loopback(peer))
        return RH_OK;
    for (size_t i = 0; i < reg->n_dev; i++)
        if (bsearch(&sender_net_id, reg->dev[i]->net_ids, reg->dev[i]->n_net_ids,
                    sizeof(uint32_t), cmp_u32)) {
            *out = reg->dev[i];
            break;
        }
    return RH_OK;
}

/* ---- member rights ----------------------------------------------------------------------- */

bool peer_member_may_send_as(const peer_member_t *m, uint32_t net_id, const char *tenant)
{
    if (!m)
        return false;
    if (!m->n_net_ids ||
        !bsearch(&net_id, m->net_ids, m->n_net_ids, sizeof(uint32_t), cmp_u32))
        return false;
    if (!m->n_tenant_ids)
        return true;
    if (!tenant || !*tenant)
        return false;
    return bsearch(&tenant, m->tenant_ids, m->n_tenant_ids, sizeof(char *), cmp_strp) != NULL;
}

int peer_member_check_sender(const peer_member_t *m, uint32_t net_id, const char *tenant,
                             const char *remote)
{
    if (peer_member_may_send_as(m, net_id, tenant))
        return RH_OK;
    /* Tenant ids are administrator-chosen names and the remote is an address: both are safe to
     * log; clip them so a hostile value cannot flood the line. */
    RH_LOG(RH_LOG_WARN, "security",
           "sender refused peer=%s netid=%06X tenant=%.64s remote=%.64s reason=%s",
           m ? m->id : "-", net_id & 0xffffffu, tenant && *tenant ? tenant : "-",
           remote ? remote : "-", !m ? "unauthenticated" : "not_member_netid_or_tenant");
    return RH_EPERM;
}

bool peer_member_rate_allow(const peer_member_t *cm, uint64_t now_ns)
{
    if (!cm)
        return false;
    peer_member_t *m = (peer_member_t *)cm; /* the rate state is the one mutable field */
    uint64_t tat = atomic_load_explicit(&m->rate_tat_ns, memory_order_relaxed);
    for (;;) {
        uint64_t base = tat > now_ns ? tat : now_ns;
        if (base - now_ns > m->rate_tolerance_ns)
            return false;
        if (atomic_compare_exchange_weak_explicit(&m->rate_tat_ns, &tat, base + m->rate_interval_ns,
                                                  memory_order_relaxed, memory_order_relaxed))
            return true;
    }
}

/* ---- lookups ----------------------------------------------------------------------------- */

int peer_registry_member_by_id(const peer_registry_t *reg, const char *id,
                               const peer_member_t **out)
{
    if (!reg || !out || !id)
        return RH_EINVAL;
    *out = NULL;
    if (!reg->n_members)
        return RH_OK;
    peer_member_t key = {.id = (char *)id}, *kp = &key;
    peer_member_t **m = bsearch(&kp, reg->members, reg->n_members, sizeof kp, cmp_member_id);
    if (m)
        *out = *m;
    return RH_OK;
}

static const netid_entry_t *netid_find(const netid_entry_t *v, size_t n, uint32_t net_id,
                                       const char *tenant)
{
    if (!n)
        return NULL;
    netid_entry_t key = {net_id, tenant ? tenant : "", NULL};
    const netid_entry_t *e = bsearch(&key, v, n, sizeof key, cmp_netid_entry);
    if (!e && tenant && *tenant) {
        key.tenant = "";
        e = bsearch(&key, v, n, sizeof key, cmp_netid_entry);
    }
    return e;
}

int peer_registry_member_by_netid(const peer_registry_t *reg, uint32_t net_id,
                                  const char *tenant, const peer_member_t **out)
{
    if (!reg || !out)
        return RH_EINVAL;
    const netid_entry_t *e = netid_find(reg->member_nets, reg->n_member_nets, net_id, tenant);
    *out = e ? e->obj : NULL;
    return RH_OK;
}

int peer_registry_endpoint_by_id(const peer_registry_t *reg, const char *id,
                                 const peer_endpoint_t **out)
{
    if (!reg || !out || !id)
        return RH_EINVAL;
    *out = NULL;
    if (!reg->n_endpoints)
        return RH_OK;
    peer_endpoint_t key = {.id = (char *)id}, *kp = &key;
    peer_endpoint_t **e = bsearch(&kp, reg->endpoints, reg->n_endpoints, sizeof kp, cmp_ep_id);
    if (e)
        *out = *e;
    return RH_OK;
}

int peer_registry_endpoint_by_netid(const peer_registry_t *reg, uint32_t net_id,
                                    const char *tenant, const peer_endpoint_t **out)
{
    if (!reg || !out)
        return RH_EINVAL;
    const netid_entry_t *e = netid_find(reg->ep_nets, reg->n_ep_nets, net_id, tenant);
    *out = e ? e->obj : NULL;
    return RH_OK;
}

int peer_registry_endpoint_by_join_eui(const peer_registry_t *reg, uint64_t join_eui,
                                       const peer_endpoint_t **out)
{
    if (!reg || !out)
        return RH_EINVAL;
    *out = NULL;
    if (!reg->n_ep_euis)
        return RH_OK;
    eui_entry_t key = {join_eui, NULL};
    const eui_entry_t *e = bsearch(&key, reg->ep_euis, reg->n_ep_euis, sizeof key, cmp_eui_entry);
    if (e)
        *out = e->ep;
    return RH_OK;
}

const peer_endpoint_t *peer_registry_endpoint_at(const peer_registry_t *reg, size_t i)
{
    return reg && i < reg->n_endpoints ? reg->endpoints[i] : NULL;
}

/* ---- publication ------------------------------------------------------------------------- */

int peer_registry_slot_init(peer_registry_slot_t *slot, peer_registry_t *initial)
{
    if (!slot)
        return RH_EINVAL;
    if (pthread_mutex_init(&slot->mu, NULL) != 0)
        return RH_ENOMEM;
    slot->cur = initial;
    atomic_init(&slot->gen, 1);
    return RH_OK;
}

void peer_registry_slot_fini(peer_registry_slot_t *slot)
{
    if (!slot)
        return;
    peer_registry_unref(slot->cur);
    slot->cur = NULL;
    pthread_mutex_destroy(&slot->mu);
}

void peer_registry_slot_publish(peer_registry_slot_t *slot, peer_registry_t *reg)
{
    pthread_mutex_lock(&slot->mu);
    peer_registry_t *old = slot->cur;
    slot->cur = reg;
    atomic_fetch_add_explicit(&slot->gen, 1, memory_order_release);
    pthread_mutex_unlock(&slot->mu);
    peer_registry_unref(old);
}

const peer_registry_t *peer_registry_view_get(peer_registry_slot_t *slot,
                                              peer_registry_view_t *view)
{
    uint64_t g = atomic_load_explicit(&slot->gen, memory_order_acquire);
    if (g == view->gen)
        return view->reg;
    pthread_mutex_lock(&slot->mu);
    peer_registry_t *old = view->reg;
    view->reg = peer_registry_ref(slot->cur);
    view->gen = atomic_load_explicit(&slot->gen, memory_order_relaxed);
    pthread_mutex_unlock(&slot->mu);
    peer_registry_unref(old);
    return view->reg;
}

void peer_registry_view_release(peer_registry_view_t *view)
{
    if (!view)
        return;
    peer_registry_unref(view->reg);
    view->reg = NULL;
    view->gen = 0;
}
