/* gateways.c — bounded LRU store of the gateways seen in GWInfo and Packet Broker Mapper updates
 * (see gateways.h).
 * Layout: `ent[max]` entries in a doubly linked LRU list (indices), and an open-addressing hash
 * table of 2^k >= 2*max slots (entry index + 1, 0 = empty; linear probing, backward-shift
 * deletion) keyed by (NetID, ID length, ID). */
#include "gateways.h"

#include "rh_err.h"
#include "rh_id.h"
#include "rh_time.h"

#include <math.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

_Atomic(gw_store_t *) gateways_global = NULL;

#define NIL UINT32_MAX

typedef struct node {
    gw_entry_t e;
    uint32_t prev, next; /* LRU list: head = most recent */
} node_t;

struct gw_store {
    pthread_mutex_t mu;
    node_t *ent;
    uint32_t *slot; /* index + 1 */
    size_t max, used, mask;
    uint32_t head, tail;
    uint64_t evicted;
};

static uint64_t hash_key(uint32_t net_id, uint8_t id_len, uint64_t id)
{
    uint64_t h = id ^ ((uint64_t)net_id << 8) ^ id_len;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    return h ^ (h >> 33);
}

int gw_store_new(size_t max, gw_store_t **out)
{
    *out = NULL;
    if (max < 1 || max > GW_STORE_MAX_ENTRIES)
        return RH_EINVAL;
    gw_store_t *s = calloc(1, sizeof *s);
    if (!s)
        return RH_ENOMEM;
    size_t n = 4;
    while (n < 2 * max)
        n *= 2;
    s->ent = calloc(max, sizeof *s->ent);
    s->slot = calloc(n, sizeof *s->slot);
    if (!s->ent || !s->slot) {
        free(s->ent);
        free(s->slot);
        free(s);
        return RH_ENOMEM;
    }
    pthread_mutex_init(&s->mu, NULL);
    s->max = max;
    s->mask = n - 1;
    s->head = s->tail = NIL;
    *out = s;
    return RH_OK;
}

void gw_store_free(gw_store_t *s)
{
    if (!s)
        return;
    pthread_mutex_destroy(&s->mu);
    free(s->ent);
    free(s->slot);
    free(s);
}

static void lru_unlink(gw_store_t *s, uint32_t i)
{
    node_t *n = &s->ent[i];
    if (n->prev != NIL)
        s->ent[n->prev].next = n->next;
    else
        s->head = n->next;
    if (n->next != NIL)
        s->ent[n->next].prev = n->prev;
    else
        s->tail = n->prev;
    n->prev = n->next = NIL;
}

static void lru_push_front(gw_store_t *s, uint32_t i)
{
    node_t *n = &s->ent[i];
    n->prev = NIL;
    n->next = s->head;
    if (s->head != NIL)
        s->ent[s->head].prev = i;
    s->head = i;
    if (s->tail == NIL)
        s->tail = i;
}

/* Slot holding the key, or the empty slot where it would go. */
static size_t find_slot(const gw_store_t *s, uint32_t net_id, uint8_t id_len, uint64_t id)
{
    size_t p = hash_key(net_id, id_len, id) & s->mask;
    while (s->slot[p]) {
        const gw_entry_t *e = &s->ent[s->slot[p] - 1].e;
        if (e->net_id == net_id && e->id == id && e->id_len == id_len)
            return p;
        p = (p + 1) & s->mask;
    }
    return p;
}

/* Removes the slot at p, shifting later members of its probe chain back (no tombstones). */
static void slot_delete(gw_store_t *s, size_t p)
{
    s->slot[p] = 0;
    size_t q = (p + 1) & s->mask;
    while (s->slot[q]) {
        const gw_entry_t *e = &s->ent[s->slot[q] - 1].e;
        size_t home = hash_key(e->net_id, e->id_len, e->id) & s->mask;
        /* move q into the hole p unless home lies cyclically in (p, q] */
        if (((q - home) & s->mask) >= ((q - p) & s->mask)) {
            s->slot[p] = s->slot[q];
            s->slot[q] = 0;
            p = q;
        }
        q = (q + 1) & s->mask;
    }
}

static int location_ok(double lat, double lon)
{
    return isfinite(lat) && isfinite(lon) && lat >= -90.0 && lat <= 90.0 && lon >= -180.0 &&
           lon <= 180.0 && !(lat == 0.0 && lon == 0.0);
}

/* The entry for (net_id, id_len, id), created (fields zero, first_seen = now) when missing,
 * evicting the least recently seen entry when full; moved to the front of the LRU list. Called
 * with the mutex held. */
static gw_entry_t *upsert(gw_store_t *s, uint32_t net_id, uint8_t id_len, uint64_t id,
                          int64_t now_ms)
{
    size_t p = find_slot(s, net_id, id_len, id);
    uint32_t i;
    if (s->slot[p]) {
        i = s->slot[p] - 1;
        lru_unlink(s, i);
    } else {
        if (s->used < s->max) {
            i = (uint32_t)s->used++;
        } else { /* evict the least recently seen */
            i = s->tail;
            const gw_entry_t *old = &s->ent[i].e;
            slot_delete(s, find_slot(s, old->net_id, old->id_len, old->id));
            lru_unlink(s, i);
            s->evicted++;
            p = find_slot(s, net_id, id_len, id); /* the deletion may have moved it */
        }
        gw_entry_t *e = &s->ent[i].e;
        memset(e, 0, sizeof *e);
        e->net_id = net_id;
        e->id = id;
        e->id_len = id_len;
        e->online = -1;
        e->first_seen_ms = now_ms;
        s->slot[p] = i + 1;
    }
    lru_push_front(s, i);
    return &s->ent[i].e;
}

void gw_store_note(gw_store_t *s, uint32_t net_id, const bi_ulmeta_t *ul, int64_t now_ms)
{
    if (!s || !ul || !ul->gw_count)
        return;
    if (now_ms < 0)
        now_ms = rh_real_ms();
    const uint32_t need = BI_GW_ID | BI_GW_LAT | BI_GW_LON;
    pthread_mutex_lock(&s->mu);
    for (size_t k = 0; k < ul->gw_count; k++) {
        const bi_gwinfo_t *g = &ul->gw[k];
        if ((g->present & need) != need || !location_ok(g->lat, g->lon))
            continue;
        gw_entry_t *e = upsert(s, net_id, g->id_len, g->id, now_ms);
        e->lat = g->lat;
        e->lon = g->lon;
        e->flags = (uint8_t)((e->flags | GW_F_LOCATION | GW_F_EUI) & ~GW_F_ALT);
        e->last_seen_ms = now_ms;
        e->sources |= GW_SOURCE_GWINFO;
        e->last_source = GW_SOURCE_GWINFO;
        e->uplinks++;
    }
    pthread_mutex_unlock(&s->mu);
}

int gw_pb_id64(int has_eui, uint64_t eui, const char *plain, const uint8_t *hash,
               size_t hash_len, uint64_t *out, rh_diag_t *diag)
{
    *out = 0;
    uint8_t md[EVP_MAX_MD_SIZE];
    if (has_eui) {
        *out = eui;
        return RH_OK;
    }
    if (hash) {
        if (hash_len != 32)
            return rh_diag_fail(diag, RH_EINVAL,
                                "forwarder_gateway_id.hash: expected 32 bytes (SHA-256), got %zu",
                                hash_len);
        memcpy(md, hash, 8);
    } else if (plain) {
        size_t n = strlen(plain);
        if (!n)
            return rh_diag_fail(diag, RH_EINVAL, "forwarder_gateway_id.plain: empty");
        unsigned mdlen = 0;
        if (EVP_Digest(plain, n, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32)
            return rh_diag_fail(diag, RH_ECRYPTO, "forwarder_gateway_id.plain: SHA-256 failed");
    } else {
        return rh_diag_fail(diag, RH_EINVAL,
                            "forwarder_gateway_id: neither eui nor plain nor hash is set");
    }
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | md[i];
    *out = v;
    return RH_OK;
}

/* The request checks of gw_store_put, field by field (names as in UpdateGatewayRequest). */
static int put_check(const gw_put_t *u, rh_diag_t *diag)
{
    if (u->net_id > 0xFFFFFFu)
        return rh_diag_fail(diag, RH_EINVAL, "forwarder_net_id: 0x%x is not a NetID (24 bits)",
                            u->net_id);
    if (u->tenant_id &&
        rh_id_check(RH_ID_TENANT, u->tenant_id, "forwarder_tenant_id", diag) != RH_OK)
        return RH_EINVAL;
    if (u->plain) {
        size_t n = strlen(u->plain);
        if (n > GW_PB_ID_MAX)
            return rh_diag_fail(diag, RH_EINVAL,
                                "forwarder_gateway_id.plain: %zu bytes, at most %d", n,
                                GW_PB_ID_MAX);
        if (n && rh_id_check(RH_ID_RECORD, u->plain, "forwarder_gateway_id.plain", diag) != RH_OK)
            return RH_EINVAL;
    }
    if (u->has_location) {
        if (!isfinite(u->lat) || u->lat < -90.0 || u->lat > 90.0)
            return rh_diag_fail(diag, RH_EINVAL,
                                "gateway_location.latitude: %g is outside -90..90", u->lat);
        if (!isfinite(u->lon) || u->lon < -180.0 || u->lon > 180.0)
            return rh_diag_fail(diag, RH_EINVAL,
                                "gateway_location.longitude: %g is outside -180..180", u->lon);
        if (u->has_alt && (!isfinite(u->alt) || u->alt < -1000.0 || u->alt > 100000.0))
            return rh_diag_fail(diag, RH_EINVAL,
                                "gateway_location.altitude: %g m is outside -1000..100000",
                                u->alt);
    }
    if (u->online < -1 || u->online > 1)
        return rh_diag_fail(diag, RH_EINVAL, "online: %d is not -1 (not set), 0 or 1", u->online);
    if (u->online == 1 && (u->online_ttl_ms <= 0 || u->online_ttl_ms > GW_ONLINE_TTL_MAX_MS))
        return rh_diag_fail(diag, RH_EINVAL,
                            u->online_ttl_ms <= 0
                                ? "online_ttl: required when online is true (got %lld ms)"
                                : "online_ttl: %lld ms is longer than 7 days",
                            (long long)u->online_ttl_ms);
    if (u->has_rx_rate && (!isfinite(u->rx_rate) || u->rx_rate < 0))
        return rh_diag_fail(diag, RH_EINVAL, "rx_rate: %g is not a finite rate >= 0",
                            (double)u->rx_rate);
    if (u->has_tx_rate && (!isfinite(u->tx_rate) || u->tx_rate < 0))
        return rh_diag_fail(diag, RH_EINVAL, "tx_rate: %g is not a finite rate >= 0",
                            (double)u->tx_rate);
    if (u->source != 0 && u->source != GW_SOURCE_MAPPER && u->source != GW_SOURCE_GWINFO)
        return rh_diag_fail(diag, RH_EINVAL, "source: %d is not a gw_source_t", (int)u->source);
    return RH_OK;
}

int gw_store_put(gw_store_t *s, const gw_put_t *u, rh_diag_t *diag)
{
    uint64_t id;
    int rc = put_check(u, diag);
    if (rc == RH_OK)
        rc = gw_pb_id64(u->has_eui, u->eui, u->plain, u->hash, u->hash_len, &id, diag);
    if (rc != RH_OK || !s)
        return rc;
    int64_t now = u->now_ms < 0 ? rh_real_ms() : u->now_ms;
    uint8_t src = (uint8_t)(u->source ? u->source : GW_SOURCE_MAPPER);
    pthread_mutex_lock(&s->mu);
    gw_entry_t *e = upsert(s, u->net_id, 8, id, now);
    if (u->has_eui)
        e->flags |= GW_F_EUI;
    if (u->tenant_id && u->tenant_id[0])
        snprintf(e->tenant_id, sizeof e->tenant_id, "%s", u->tenant_id);
    if (u->plain && u->plain[0])
        snprintf(e->pb_id, sizeof e->pb_id, "%s", u->plain);
    if (u->has_location && !(u->lat == 0.0 && u->lon == 0.0)) {
        e->lat = u->lat;
        e->lon = u->lon;
        e->alt = u->has_alt ? u->alt : 0.0;
        e->flags = (uint8_t)((e->flags | GW_F_LOCATION) & ~GW_F_ALT);
        if (u->has_alt)
            e->flags |= GW_F_ALT;
    }
    if (u->online >= 0) {
        e->online = (int8_t)u->online;
        e->online_until_ms = u->online ? now + u->online_ttl_ms : 0;
    }
    if (u->has_rx_rate) {
        e->rx_rate = u->rx_rate;
        e->flags |= GW_F_RX_RATE;
    }
    if (u->has_tx_rate) {
        e->tx_rate = u->tx_rate;
        e->flags |= GW_F_TX_RATE;
    }
    e->last_seen_ms = now;
    e->sources |= src;
    e->last_source = src;
    pthread_mutex_unlock(&s->mu);
    return RH_OK;
}

int gw_entry_online(const gw_entry_t *e, int64_t now_ms)
{
    if (e->online < 0)
        return -1;
    return e->online == 1 && now_ms < e->online_until_ms;
}

size_t gw_store_snapshot(gw_store_t *s, gw_entry_t **out)
{
    *out = NULL;
    pthread_mutex_lock(&s->mu);
    size_t n = s->used;
    gw_entry_t *a = n ? malloc(n * sizeof *a) : NULL;
    size_t k = 0;
    if (a)
        for (uint32_t i = s->head; i != NIL && k < n; i = s->ent[i].next)
            a[k++] = s->ent[i].e;
    pthread_mutex_unlock(&s->mu);
    *out = a;
    return a ? k : 0;
}

size_t gw_store_count(gw_store_t *s)
{
    pthread_mutex_lock(&s->mu);
    size_t n = s->used;
    pthread_mutex_unlock(&s->mu);
    return n;
}

size_t gw_store_max(gw_store_t *s)
{
    pthread_mutex_lock(&s->mu);
    size_t n = s->max;
    pthread_mutex_unlock(&s->mu);
    return n;
}

void gw_store_take(gw_store_t *s, gw_store_t *fresh)
{
    pthread_mutex_lock(&s->mu);
    size_t keep = s->used < fresh->max ? s->used : fresh->max;
    /* the keep-th most recent entry, then towards the head: each push_front keeps the order */
    uint32_t i = s->head;
    for (size_t k = 1; k < keep; k++)
        i = s->ent[i].next;
    for (size_t k = 0; k < keep; k++, i = s->ent[i].prev) {
        const gw_entry_t *old = &s->ent[i].e;
        gw_entry_t *e = upsert(fresh, old->net_id, old->id_len, old->id, old->first_seen_ms);
        *e = *old;
    }
#define SWAP(f)                                                                                   \
    do {                                                                                          \
        __typeof__(s->f) t_ = s->f;                                                               \
        s->f = fresh->f;                                                                          \
        fresh->f = t_;                                                                            \
    } while (0)
    SWAP(ent);
    SWAP(slot);
    SWAP(max);
    SWAP(used);
    SWAP(mask);
    SWAP(head);
    SWAP(tail);
#undef SWAP
    s->evicted += fresh->used - keep; /* fresh now holds the old count */
    pthread_mutex_unlock(&s->mu);
    gw_store_free(fresh);
}

uint64_t gw_store_evicted(gw_store_t *s)
{
    pthread_mutex_lock(&s->mu);
    uint64_t n = s->evicted;
    pthread_mutex_unlock(&s->mu);
    return n;
}
