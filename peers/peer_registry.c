/*
 * peer_registry.c — the immutable member/endpoint snapshot: build-time validation and indexes
 * (sorted arrays searched with bsearch, an open-addressing table for API key hashes), lock-free
 * lookups, GCRA rate limiting, and the refcounted publication slot. See peer_registry.h.
 */
#include "peer_registry.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stddef.h>
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
    unsigned rate_share;     /* peer_registry_config_t.rate_share (>= 1) */
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
    free(m->fps);
    for (size_t i = 0; i < m->n_subjects; i++)
        free(m->subjects[i]);
    free(m->subjects);
    if (m->keys)
        OPENSSL_cleanse(m->keys, m->n_keys * sizeof *m->keys);
    free(m->keys);
    free(m);
}

/* Members and endpoints are shared by the registries built from each other (peer_registry_apply):
 * each registry holding one counts once. A new object starts at 0 and is counted when a registry
 * adopts it. */
static peer_member_t *member_ref(peer_member_t *m)
{
    atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
    return m;
}
static void member_unref(peer_member_t *m)
{
    if (m && atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) == 1)
        member_free(m);
}
static peer_endpoint_t *ep_ref(peer_endpoint_t *e)
{
    atomic_fetch_add_explicit(&e->registry_refs, 1, memory_order_relaxed);
    return e;
}
static void ep_unref(peer_endpoint_t *e)
{
    if (e && atomic_fetch_sub_explicit(&e->registry_refs, 1, memory_order_acq_rel) == 1)
        peer_endpoint_free(e);
}

static void registry_free(peer_registry_t *r)
{
    for (size_t i = 0; i < r->n_members; i++)
        member_unref(r->members[i]);
    for (size_t i = 0; i < r->n_endpoints; i++)
        ep_unref(r->endpoints[i]);
    free(r->members);
    free(r->fps);
    free(r->subjects); /* strings belong to the members */
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

/* A member from its record: fields and its own credentials parsed and validated (uniqueness
 * across members is the registry's job); its rate is the 1/rate_share part (>= 1). refs = 0. */
static int member_new(const Roamhub__V1__Member *rec, unsigned rate_share, peer_member_t **out,
                      rh_diag_t *diag)
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
    int rc = RH_ENOMEM;
    m->id = strdup(id);
    m->net_ids = malloc(rec->n_net_ids * sizeof *m->net_ids);
    if (rec->n_tenant_ids)
        m->tenant_ids = calloc(rec->n_tenant_ids, sizeof *m->tenant_ids);
    if (rec->n_cert_fingerprints)
        m->fps = calloc(rec->n_cert_fingerprints, sizeof *m->fps);
    if (rec->n_cert_subjects)
        m->subjects = calloc(rec->n_cert_subjects, sizeof *m->subjects);
    if (rec->n_api_key_hashes)
        m->keys = calloc(rec->n_api_key_hashes, sizeof *m->keys);
    if (!m->id || !m->net_ids || (rec->n_tenant_ids && !m->tenant_ids) ||
        (rec->n_cert_fingerprints && !m->fps) || (rec->n_cert_subjects && !m->subjects) ||
        (rec->n_api_key_hashes && !m->keys))
        goto fail;
    for (size_t i = 0; i < rec->n_net_ids; i++) {
        if (rec->net_ids[i] > 0xffffffu) {
            rc = rh_diag_fail(diag, RH_EINVAL, "Member[%s].net_ids[%zu]: %08X is wider than 24 bits",
                              id, i, rec->net_ids[i]);
            goto fail;
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
            rc = rh_diag_fail(diag, RH_EINVAL, "Member[%s].tenant_ids[%zu]: empty tenant id", id, i);
            goto fail;
        }
        if (!(m->tenant_ids[m->n_tenant_ids++] = strdup(t)))
            goto fail;
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
    for (size_t j = 0; j < rec->n_cert_fingerprints; j++) {
        const char *f = rec->cert_fingerprints[j];
        if (!f || parse_fingerprint(f, m->fps[m->n_fps]) != RH_OK) {
            rc = rh_diag_fail(diag, RH_EINVAL,
                              "Member[%s].cert_fingerprints[%zu]: expected a SHA-256 "
                              "fingerprint, 64 hex digits (colons allowed)", id, j);
            goto fail;
        }
        m->n_fps++;
    }
    for (size_t j = 0; j < rec->n_cert_subjects; j++) {
        const char *sj = rec->cert_subjects[j];
        if (!sj || !*sj || strlen(sj) >= sizeof(((peer_tls_identity_t *)0)->subject)) {
            rc = rh_diag_fail(diag, RH_EINVAL,
                              "Member[%s].cert_subjects[%zu]: empty or longer than 511 bytes", id, j);
            goto fail;
        }
        if (!(m->subjects[m->n_subjects] = strdup(sj)))
            goto fail;
        m->n_subjects++;
    }
    for (size_t j = 0; j < rec->n_api_key_hashes; j++) {
        if (rec->api_key_hashes[j].len != PEER_SHA256_LEN) {
            rc = rh_diag_fail(diag, RH_EINVAL,
                              "Member[%s].api_key_hashes[%zu]: %zu bytes, expected a 32-byte "
                              "SHA-256", id, j, rec->api_key_hashes[j].len);
            goto fail;
        }
        memcpy(m->keys[m->n_keys++], rec->api_key_hashes[j].data, PEER_SHA256_LEN);
    }
    m->rate_per_s = rec->rate_limit_per_s ? rec->rate_limit_per_s : PEER_MEMBER_DEFAULT_RATE;
    if (rate_share > 1)
        m->rate_per_s = (uint32_t)(((uint64_t)m->rate_per_s + rate_share - 1) / rate_share);
    m->rate_interval_ns = 1000000000ull / m->rate_per_s;
    if (m->rate_interval_ns == 0)
        m->rate_interval_ns = 1;
    m->rate_tolerance_ns = ((uint64_t)m->rate_per_s * PEER_MEMBER_BURST_FACTOR - 1) * m->rate_interval_ns;
    atomic_init(&m->rate_tat_ns, 0);
    atomic_init(&m->refs, 0);
    *out = m;
    return RH_OK;
fail:
    member_free(m);
    return rc;
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

/* The API key table of r->members (open addressing, at most half full). */
static int build_keys(peer_registry_t *r, rh_diag_t *diag)
{
    size_t n_keys = 0, cap = 16;
    for (size_t i = 0; i < r->n_members; i++)
        n_keys += r->members[i]->n_keys;
    while (cap < 2 * n_keys)
        cap <<= 1;
    if (!(r->keys = calloc(cap, sizeof *r->keys)))
        return RH_ENOMEM;
    r->key_mask = cap - 1;
    for (size_t i = 0; i < r->n_members; i++) {
        peer_member_t *m = r->members[i];
        for (size_t j = 0; j < m->n_keys; j++) {
            int rc = key_insert(r, m->keys[j], m, diag);
            if (rc)
                return rc;
        }
    }
    return RH_OK;
}

/* ---- uniqueness diagnostics, shared by the full build and the incremental apply ---- */

static int fp_dup(const fp_entry_t *a, const fp_entry_t *b, rh_diag_t *diag)
{
    return rh_diag_fail(diag, RH_EEXIST,
                        "Member[%s].cert_fingerprints: certificate also mapped to Member[%s]",
                        b->m->id, a->m->id);
}
static int subject_dup(const str_entry_t *a, const str_entry_t *b, rh_diag_t *diag)
{
    return rh_diag_fail(diag, RH_EEXIST,
                        "Member[%s].cert_subjects: subject \"%s\" also mapped to Member[%s]",
                        b->m->id, b->s, a->m->id);
}
/* Two member claims on one NetID conflict unless both are tenant-scoped to different tenants
 * ("" = NetID level sorts first). */
static int claims_conflict(const netid_entry_t *a, const netid_entry_t *b)
{
    return a->net_id == b->net_id && (!*a->tenant || !*b->tenant || strcmp(a->tenant, b->tenant) == 0);
}
static int claim_dup(const netid_entry_t *a, const netid_entry_t *b, rh_diag_t *diag)
{
    return rh_diag_fail(diag, RH_EEXIST,
                        "Member[%s].net_ids: NetID %06X%s%s is already claimed by Member[%s]",
                        ((peer_member_t *)b->obj)->id, b->net_id, *b->tenant ? " tenant " : "",
                        b->tenant, ((peer_member_t *)a->obj)->id);
}
static int ep_net_dup(const netid_entry_t *a, const netid_entry_t *b, rh_diag_t *diag)
{
    return rh_diag_fail(diag, RH_EEXIST,
                        "Endpoint[%s].net_id: NetID %06X%s%s is already served by Endpoint[%s]",
                        ((peer_endpoint_t *)b->obj)->id, b->net_id, *b->tenant ? " tenant " : "",
                        b->tenant, ((peer_endpoint_t *)a->obj)->id);
}
static int ep_eui_dup(const eui_entry_t *a, const eui_entry_t *b, rh_diag_t *diag)
{
    return rh_diag_fail(diag, RH_EEXIST,
                        "Endpoint[%s].join_eui: %016llX is already served by Endpoint[%s]",
                        b->ep->id, (unsigned long long)b->eui, a->ep->id);
}

/* Builds every member index; validates cross-member uniqueness. */
static int build_members(peer_registry_t *r, const peer_registry_config_t *cfg, rh_diag_t *diag)
{
    int rc;
    size_t n = cfg->n_members, n_fp = 0, n_subj = 0, n_nets = 0;
    if (n && !(r->members = calloc(n, sizeof *r->members)))
        return RH_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        peer_member_t *m;
        if ((rc = member_new(cfg->members[i], r->rate_share, &m, diag)) != RH_OK)
            return rc;
        r->members[r->n_members++] = member_ref(m);
        n_fp += m->n_fps;
        n_subj += m->n_subjects;
        n_nets += m->n_net_ids * (m->n_tenant_ids ? m->n_tenant_ids : 1);
    }
    sort_n(r->members, n, sizeof *r->members, cmp_member_id);
    for (size_t i = 1; i < n; i++)
        if (strcmp(r->members[i - 1]->id, r->members[i]->id) == 0)
            return rh_diag_fail(diag, RH_EEXIST, "Member[%s].id: duplicate member id",
                                r->members[i]->id);

    r->fps = n_fp ? calloc(n_fp, sizeof *r->fps) : NULL;
    r->subjects = n_subj ? calloc(n_subj, sizeof *r->subjects) : NULL;
    r->member_nets = n_nets ? calloc(n_nets, sizeof *r->member_nets) : NULL;
    if ((n_fp && !r->fps) || (n_subj && !r->subjects) || (n_nets && !r->member_nets))
        return RH_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        peer_member_t *m = r->members[i];
        for (size_t j = 0; j < m->n_fps; j++) {
            memcpy(r->fps[r->n_fps].fp, m->fps[j], PEER_SHA256_LEN);
            r->fps[r->n_fps++].m = m;
        }
        for (size_t j = 0; j < m->n_subjects; j++)
            r->subjects[r->n_subjects++] = (str_entry_t){m->subjects[j], m};
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
    if ((rc = build_keys(r, diag)) != RH_OK)
        return rc;
    sort_n(r->fps, r->n_fps, sizeof *r->fps, cmp_fp);
    for (size_t i = 1; i < r->n_fps; i++)
        if (cmp_fp(&r->fps[i - 1], &r->fps[i]) == 0)
            return fp_dup(&r->fps[i - 1], &r->fps[i], diag);
    sort_n(r->subjects, r->n_subjects, sizeof *r->subjects, cmp_str_entry);
    for (size_t i = 1; i < r->n_subjects; i++)
        if (cmp_str_entry(&r->subjects[i - 1], &r->subjects[i]) == 0)
            return subject_dup(&r->subjects[i - 1], &r->subjects[i], diag);
    sort_n(r->member_nets, r->n_member_nets, sizeof *r->member_nets, cmp_netid_entry);
    for (size_t i = 1; i < r->n_member_nets; i++)
        /* sorted: an unscoped claim comes first on its NetID, so adjacent pairs suffice */
        if (claims_conflict(&r->member_nets[i - 1], &r->member_nets[i]))
            return claim_dup(&r->member_nets[i - 1], &r->member_nets[i], diag);

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
        r->endpoints[r->n_endpoints++] = ep_ref(ep);
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
            return ep_net_dup(&r->ep_nets[i - 1], &r->ep_nets[i], diag);
    sort_n(r->ep_euis, r->n_ep_euis, sizeof *r->ep_euis, cmp_eui_entry);
    for (size_t i = 1; i < r->n_ep_euis; i++)
        if (r->ep_euis[i - 1].eui == r->ep_euis[i].eui)
            return ep_eui_dup(&r->ep_euis[i - 1], &r->ep_euis[i], diag);
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
    r->rate_share = cfg->rate_share > 1 ? cfg->rate_share : 1;
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

/* ---- incremental apply ------------------------------------------------------------------- */

/* A copy of a sorted array with room for `extra` more elements. */
static void *arr_copy(const void *src, size_t n, size_t extra, size_t size)
{
    if (n + extra == 0)
        return NULL;
    void *d = malloc((n + extra) * size);
    if (d && n)
        memcpy(d, src, n * size);
    return d;
}

/* Removes the elements whose pointer at `off` equals obj (order kept). */
static void arr_drop(void *v, size_t *n, size_t size, size_t off, const void *obj)
{
    uint8_t *b = v;
    size_t k = 0;
    for (size_t i = 0; i < *n; i++) {
        void *p;
        memcpy(&p, b + i * size + off, sizeof p);
        if (p == obj)
            continue;
        if (k != i)
            memcpy(b + k * size, b + i * size, size);
        k++;
    }
    *n = k;
}

/* Lower bound of e in sorted v. */
static size_t arr_lower(const void *v, size_t n, size_t size, const void *e,
                        int (*cmp)(const void *, const void *))
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cmp((const uint8_t *)v + mid * size, e) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static void arr_insert_at(void *v, size_t *n, size_t size, size_t at, const void *e)
{
    uint8_t *b = v;
    memmove(b + (at + 1) * size, b + at * size, (*n - at) * size);
    memcpy(b + at * size, e, size);
    (*n)++;
}

typedef struct apply_cap {
    size_t members, fps, subjects, nets, endpoints;
} apply_cap_t;

static void member_unindex(peer_registry_t *r, const peer_member_t *m)
{
    arr_drop(r->fps, &r->n_fps, sizeof *r->fps, offsetof(fp_entry_t, m), m);
    arr_drop(r->subjects, &r->n_subjects, sizeof *r->subjects, offsetof(str_entry_t, m), m);
    arr_drop(r->member_nets, &r->n_member_nets, sizeof *r->member_nets,
             offsetof(netid_entry_t, obj), m);
    arr_drop(r->dev, &r->n_dev, sizeof *r->dev, 0, m);
}

/* Inserts m's index entries, checking uniqueness against the neighbours. */
static int member_index(peer_registry_t *r, peer_member_t *m, rh_diag_t *diag)
{
    for (size_t j = 0; j < m->n_fps; j++) {
        fp_entry_t e = {.m = m};
        memcpy(e.fp, m->fps[j], PEER_SHA256_LEN);
        size_t at = arr_lower(r->fps, r->n_fps, sizeof e, &e, cmp_fp);
        if (at < r->n_fps && cmp_fp(&r->fps[at], &e) == 0)
            return fp_dup(&r->fps[at], &e, diag);
        arr_insert_at(r->fps, &r->n_fps, sizeof e, at, &e);
    }
    for (size_t j = 0; j < m->n_subjects; j++) {
        str_entry_t e = {m->subjects[j], m};
        size_t at = arr_lower(r->subjects, r->n_subjects, sizeof e, &e, cmp_str_entry);
        if (at < r->n_subjects && cmp_str_entry(&r->subjects[at], &e) == 0)
            return subject_dup(&r->subjects[at], &e, diag);
        arr_insert_at(r->subjects, &r->n_subjects, sizeof e, at, &e);
    }
    for (size_t j = 0; j < m->n_net_ids; j++) {
        size_t nt = m->n_tenant_ids ? m->n_tenant_ids : 1;
        for (size_t t = 0; t < nt; t++) {
            netid_entry_t e = {m->net_ids[j], m->n_tenant_ids ? m->tenant_ids[t] : "", m};
            /* every existing claim on this NetID (a short run) */
            netid_entry_t lo = {e.net_id, "", NULL};
            size_t at = arr_lower(r->member_nets, r->n_member_nets, sizeof e, &lo, cmp_netid_entry);
            for (size_t i = at; i < r->n_member_nets && r->member_nets[i].net_id == e.net_id; i++)
                if (claims_conflict(&r->member_nets[i], &e))
                    return claim_dup(&r->member_nets[i], &e, diag);
            at = arr_lower(r->member_nets, r->n_member_nets, sizeof e, &e, cmp_netid_entry);
            arr_insert_at(r->member_nets, &r->n_member_nets, sizeof e, at, &e);
        }
    }
    return RH_OK;
}

static void endpoint_unindex(peer_registry_t *r, const peer_endpoint_t *ep)
{
    arr_drop(r->ep_nets, &r->n_ep_nets, sizeof *r->ep_nets, offsetof(netid_entry_t, obj), ep);
    arr_drop(r->ep_euis, &r->n_ep_euis, sizeof *r->ep_euis, offsetof(eui_entry_t, ep), ep);
}

static int endpoint_index(peer_registry_t *r, peer_endpoint_t *ep, rh_diag_t *diag)
{
    if (ep->net_id != 0) {
        netid_entry_t e = {ep->net_id, ep->tenant_id, ep};
        size_t at = arr_lower(r->ep_nets, r->n_ep_nets, sizeof e, &e, cmp_netid_entry);
        if (at < r->n_ep_nets && cmp_netid_entry(&r->ep_nets[at], &e) == 0)
            return ep_net_dup(&r->ep_nets[at], &e, diag);
        arr_insert_at(r->ep_nets, &r->n_ep_nets, sizeof e, at, &e);
    }
    if (ep->join_eui != 0) {
        eui_entry_t e = {ep->join_eui, ep};
        size_t at = arr_lower(r->ep_euis, r->n_ep_euis, sizeof e, &e, cmp_eui_entry);
        if (at < r->n_ep_euis && r->ep_euis[at].eui == e.eui)
            return ep_eui_dup(&r->ep_euis[at], &e, diag);
        arr_insert_at(r->ep_euis, &r->n_ep_euis, sizeof e, at, &e);
    }
    return RH_OK;
}

static int apply_member(peer_registry_t *r, const peer_registry_change_t *c, rh_diag_t *diag)
{
    const char *id = c->op == PEER_CHANGE_DELETE ? c->member_id : c->member->id;
    peer_member_t *nm = NULL;
    int rc;
    if (c->op == PEER_CHANGE_UPSERT &&
        (rc = member_new(c->member, r->rate_share, &nm, diag)) != RH_OK)
        return rc;
    peer_member_t key = {.id = (char *)(id ? id : "")}, *kp = &key;
    size_t at = arr_lower(r->members, r->n_members, sizeof kp, &kp, cmp_member_id);
    peer_member_t *old = at < r->n_members && !strcmp(r->members[at]->id, key.id) ? r->members[at]
                                                                                   : NULL;
    if (old) {
        member_unindex(r, old);
        memmove(&r->members[at], &r->members[at + 1], (r->n_members - at - 1) * sizeof kp);
        r->n_members--;
        member_unref(old);
    }
    if (!nm)
        return RH_OK;
    arr_insert_at(r->members, &r->n_members, sizeof kp, at, &nm);
    member_ref(nm);
    if (c->dev_loopback) {
        nm->dev_loopback = true;
        r->dev[r->n_dev++] = nm;
    }
    return member_index(r, nm, diag);
}

static int apply_endpoint(peer_registry_t *r, const peer_registry_change_t *c, unsigned flags,
                          rh_diag_t *diag)
{
    const char *id = c->op == PEER_CHANGE_DELETE ? c->endpoint_id : c->endpoint->id;
    peer_endpoint_t *ne = NULL;
    int rc;
    if (c->op == PEER_CHANGE_UPSERT && (rc = peer_endpoint_new(c->endpoint, flags, &ne, diag)))
        return rc;
    peer_endpoint_t key = {.id = (char *)(id ? id : "")}, *kp = &key;
    size_t at = arr_lower(r->endpoints, r->n_endpoints, sizeof kp, &kp, cmp_ep_id);
    peer_endpoint_t *old =
        at < r->n_endpoints && !strcmp(r->endpoints[at]->id, key.id) ? r->endpoints[at] : NULL;
    if (old) {
        endpoint_unindex(r, old);
        memmove(&r->endpoints[at], &r->endpoints[at + 1], (r->n_endpoints - at - 1) * sizeof kp);
        r->n_endpoints--;
        ep_unref(old);
    }
    if (!ne)
        return RH_OK;
    arr_insert_at(r->endpoints, &r->n_endpoints, sizeof kp, at, &ne);
    ep_ref(ne);
    return endpoint_index(r, ne, diag);
}

int peer_registry_apply(const peer_registry_t *base, const peer_registry_change_t *changes,
                        size_t n_changes, unsigned endpoint_flags, peer_registry_t **out,
                        rh_diag_t *diag)
{
    if (!out || (n_changes && !changes))
        return rh_diag_fail(diag, RH_EINVAL, "registry: NULL change list");
    *out = NULL;
    static const peer_registry_t empty;
    if (!base)
        base = &empty;
    /* Room for what the changes may add. */
    apply_cap_t x = {0};
    for (size_t i = 0; i < n_changes; i++) {
        const peer_registry_change_t *c = &changes[i];
        int is_m = c->member || c->member_id, is_e = c->endpoint || c->endpoint_id;
        if (is_m == is_e || (c->op == PEER_CHANGE_UPSERT ? !(c->member || c->endpoint)
                                                         : !(c->member_id || c->endpoint_id)))
            return rh_diag_fail(diag, RH_EINVAL, "changes[%zu]: names no record (or two)", i);
        if (c->member) {
            const Roamhub__V1__Member *m = c->member;
            x.members++;
            x.fps += m->n_cert_fingerprints;
            x.subjects += m->n_cert_subjects;
            x.nets += m->n_net_ids * (m->n_tenant_ids ? m->n_tenant_ids : 1);
        }
        if (c->endpoint)
            x.endpoints++;
    }
    peer_registry_t *r = calloc(1, sizeof *r);
    if (!r)
        return RH_ENOMEM;
    atomic_init(&r->refs, 1);
    r->rate_share = base->rate_share;
    r->members = arr_copy(base->members, base->n_members, x.members, sizeof *r->members);
    r->fps = arr_copy(base->fps, base->n_fps, x.fps, sizeof *r->fps);
    r->subjects = arr_copy(base->subjects, base->n_subjects, x.subjects, sizeof *r->subjects);
    r->member_nets = arr_copy(base->member_nets, base->n_member_nets, x.nets, sizeof *r->member_nets);
    r->dev = arr_copy(base->dev, base->n_dev, x.members, sizeof *r->dev);
    r->endpoints = arr_copy(base->endpoints, base->n_endpoints, x.endpoints, sizeof *r->endpoints);
    r->ep_nets = arr_copy(base->ep_nets, base->n_ep_nets, x.endpoints, sizeof *r->ep_nets);
    r->ep_euis = arr_copy(base->ep_euis, base->n_ep_euis, x.endpoints, sizeof *r->ep_euis);
    int rc = RH_OK;
    if ((base->n_members + x.members && !r->members) || (base->n_fps + x.fps && !r->fps) ||
        (base->n_subjects + x.subjects && !r->subjects) ||
        (base->n_member_nets + x.nets && !r->member_nets) ||
        (base->n_dev + x.members && !r->dev) ||
        (base->n_endpoints + x.endpoints && !r->endpoints) ||
        (base->n_ep_nets + x.endpoints && !r->ep_nets) ||
        (base->n_ep_euis + x.endpoints && !r->ep_euis)) {
        registry_free(r); /* nothing adopted yet (counts are 0): frees the arrays */
        return RH_ENOMEM;
    }
    for (size_t i = 0; i < base->n_members; i++)
        member_ref(base->members[i]);
    r->n_members = base->n_members;
    for (size_t i = 0; i < base->n_endpoints; i++)
        ep_ref(base->endpoints[i]);
    r->n_endpoints = base->n_endpoints;
    r->n_fps = base->n_fps;
    r->n_subjects = base->n_subjects;
    r->n_member_nets = base->n_member_nets;
    r->n_dev = base->n_dev;
    r->n_ep_nets = base->n_ep_nets;
    r->n_ep_euis = base->n_ep_euis;
    for (size_t i = 0; i < n_changes && rc == RH_OK; i++) {
        const peer_registry_change_t *c = &changes[i];
        rc = c->member || c->member_id ? apply_member(r, c, diag)
                                       : apply_endpoint(r, c, endpoint_flags, diag);
    }
    if (rc == RH_OK)
        rc = build_keys(r, diag);
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

bool peer_registry_slot_publish_if(peer_registry_slot_t *slot, peer_registry_t *reg,
                                   uint64_t gen)
{
    pthread_mutex_lock(&slot->mu);
    if (atomic_load_explicit(&slot->gen, memory_order_relaxed) != gen) {
        pthread_mutex_unlock(&slot->mu);
        return false;
    }
    peer_registry_t *old = slot->cur;
    slot->cur = reg;
    atomic_fetch_add_explicit(&slot->gen, 1, memory_order_release);
    pthread_mutex_unlock(&slot->mu);
    peer_registry_unref(old);
    return true;
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
