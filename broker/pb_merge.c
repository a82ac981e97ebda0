/* pb_merge.c — a Packet Broker forwarder's per-gateway copies of one uplink gathered into one
 * TS002 ULMetaData (see pb_merge.h). */
#include "pb_merge.h"

#include "pb_xlate.h"

#include <stdlib.h>
#include <string.h>

typedef struct pm_entry {
    struct pm_entry *next; /* hash chain */
    pb_merge_t *m;
    struct event *ev;      /* the window */
    uint64_t hash;
    pb_ids_t fwd;
    uint8_t phy[BI_MAX_PHY];
    size_t phy_len;
    bi_ulmeta_t ul;        /* the first copy's; gw/fns_ul_token set at flush */
    bi_gwinfo_t gw[PB_MERGE_MAX_COPIES];
    char *tok[PB_MERGE_MAX_COPIES]; /* each copy's ULToken (owned) */
    size_t n;
    size_t first_len;
    unsigned char first[]; /* the caller's bytes */
} pm_entry_t;

struct pb_merge {
    struct event_base *base;
    unsigned window_ms;
    size_t max_pending, pending;
    size_t nbuckets;       /* a power of two */
    pm_entry_t **buckets;
    pb_merge_flush_fn flush;
    void *arg;
};

/* FNV-1a 64 over the key (identity and PHYPayload). */
static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

static uint64_t key_hash(const pb_ids_t *fwd, const uint8_t *phy, size_t len)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    h = fnv(h, &fwd->net_id, sizeof fwd->net_id);
    h = fnv(h, fwd->tenant, strlen(fwd->tenant) + 1);
    h = fnv(h, fwd->cluster, strlen(fwd->cluster) + 1);
    return fnv(h, phy, len);
}

static bool key_equal(const pm_entry_t *e, uint64_t h, const pb_ids_t *fwd, const uint8_t *phy,
                      size_t len)
{
    return e->hash == h && e->phy_len == len && e->fwd.net_id == fwd->net_id &&
           strcmp(e->fwd.tenant, fwd->tenant) == 0 && strcmp(e->fwd.cluster, fwd->cluster) == 0 &&
           memcmp(e->phy, phy, len) == 0;
}

static void unlink_entry(pb_merge_t *m, pm_entry_t *e)
{
    pm_entry_t **pp = &m->buckets[e->hash & (m->nbuckets - 1)];
    while (*pp && *pp != e)
        pp = &(*pp)->next;
    if (*pp)
        *pp = e->next;
    m->pending--;
}

static void free_entry(pm_entry_t *e)
{
    for (size_t i = 0; i < e->n; i++)
        free(e->tok[i]);
    if (e->ev)
        event_free(e->ev);
    free(e);
}

/* Orders e's GWInfo best first (stable insertion sort, n <= PB_MERGE_MAX_COPIES) and hands the
 * merged uplink to the flush callback; e is unlinked and freed. */
static void flush_entry(pb_merge_t *m, pm_entry_t *e)
{
    unlink_entry(m, e);
    for (size_t i = 1; i < e->n; i++) {
        bi_gwinfo_t g = e->gw[i];
        size_t j = i;
        while (j > 0 && pb_xlate_gw_better(&g, &e->gw[j - 1])) {
            e->gw[j] = e->gw[j - 1];
            j--;
        }
        e->gw[j] = g;
    }
    e->ul.gw = e->gw;
    e->ul.gw_count = e->n;
    e->ul.gw_cnt = (uint32_t)e->n;
    e->ul.present |= BI_UL_GW_INFO | BI_UL_GW_CNT;
    e->ul.fns_ul_token = e->gw[0].ul_token;
    if (e->ul.fns_ul_token)
        e->ul.present |= BI_UL_FNS_UL_TOKEN;
    else
        e->ul.present &= ~(uint32_t)BI_UL_FNS_UL_TOKEN;
    pb_merged_t out = {.fwd = &e->fwd, .phy = e->phy, .phy_len = e->phy_len, .ul = &e->ul,
                       .copies = e->n, .first = e->first, .first_len = e->first_len};
    m->flush(m->arg, &out);
    free_entry(e);
}

static void window_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    pm_entry_t *e = arg;
    flush_entry(e->m, e);
}

pb_merge_t *pb_merge_new(struct event_base *base, unsigned window_ms, size_t max_pending,
                         pb_merge_flush_fn flush, void *arg)
{
    if (!base || !flush || window_ms == 0 || window_ms > PB_MERGE_WINDOW_MAX_MS ||
        max_pending == 0 || max_pending > ((size_t)1 << 24))
        return NULL;
    pb_merge_t *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->nbuckets = 16;
    while (m->nbuckets < max_pending)
        m->nbuckets <<= 1;
    m->buckets = calloc(m->nbuckets, sizeof *m->buckets);
    if (!m->buckets) {
        free(m);
        return NULL;
    }
    m->base = base;
    m->window_ms = window_ms;
    m->max_pending = max_pending;
    m->flush = flush;
    m->arg = arg;
    return m;
}

size_t pb_merge_free(pb_merge_t *m)
{
    if (!m)
        return 0;
    size_t dropped = 0;
    for (size_t b = 0; b < m->nbuckets; b++) {
        for (pm_entry_t *e = m->buckets[b], *nx; e; e = nx) {
            nx = e->next;
            dropped += e->n;
            free_entry(e);
        }
    }
    free(m->buckets);
    free(m);
    return dropped;
}

size_t pb_merge_flush_all(pb_merge_t *m)
{
    size_t n = 0;
    for (size_t b = 0; m && b < m->nbuckets; b++) {
        while (m->buckets[b]) {
            flush_entry(m, m->buckets[b]); /* unlinks it */
            n++;
        }
    }
    return n;
}

size_t pb_merge_pending(const pb_merge_t *m)
{
    return m ? m->pending : 0;
}

/* Appends the copy's one GWInfo (and a copy of its ULToken) to e. false: out of memory. */
static bool add_copy(pm_entry_t *e, const bi_gwinfo_t *g)
{
    char *tok = NULL;
    if (g->ul_token && !(tok = strdup(g->ul_token)))
        return false;
    e->gw[e->n] = *g;
    e->gw[e->n].ul_token = tok;
    e->tok[e->n] = tok;
    e->n++;
    return true;
}

pb_merge_res_t pb_merge_add(pb_merge_t *m, const pb_ids_t *fwd, const uint8_t *phy,
                            size_t phy_len, const bi_ulmeta_t *ul, const void *first,
                            size_t first_len)
{
    if (phy_len == 0 || phy_len > BI_MAX_PHY || !ul->gw || ul->gw_count != 1)
        return PB_MERGE_INVALID;
    uint64_t h = key_hash(fwd, phy, phy_len);
    pm_entry_t **bucket = &m->buckets[h & (m->nbuckets - 1)];
    for (pm_entry_t *e = *bucket; e; e = e->next) {
        if (!key_equal(e, h, fwd, phy, phy_len))
            continue;
        if (!add_copy(e, &ul->gw[0]))
            return PB_MERGE_NOMEM;
        if (e->n < PB_MERGE_MAX_COPIES)
            return PB_MERGE_JOINED;
        flush_entry(m, e); /* full: no reason to wait */
        return PB_MERGE_SENT;
    }
    if (m->pending >= m->max_pending)
        return PB_MERGE_FULL;
    pm_entry_t *e = calloc(1, sizeof *e + first_len);
    if (!e)
        return PB_MERGE_NOMEM;
    e->m = m;
    e->hash = h;
    e->fwd = *fwd;
    memcpy(e->phy, phy, phy_len);
    e->phy_len = phy_len;
    e->ul = *ul;
    e->ul.gw = NULL;
    e->ul.gw_count = 0;
    e->ul.fns_ul_token = NULL;
    e->first_len = first_len;
    if (first_len)
        memcpy(e->first, first, first_len);
    e->ev = evtimer_new(m->base, window_cb, e);
    struct timeval tv = {m->window_ms / 1000, (m->window_ms % 1000) * 1000};
    if (!e->ev || !add_copy(e, &ul->gw[0]) || evtimer_add(e->ev, &tv) != 0) {
        free_entry(e);
        return PB_MERGE_NOMEM;
    }
    e->next = *bucket;
    *bucket = e;
    m->pending++;
    return PB_MERGE_OPENED;
}
