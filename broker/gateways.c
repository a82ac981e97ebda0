/* gateways.c — bounded LRU store of the gateway locations seen in GWInfo (see gateways.h).
 * Layout: `ent[max]` entries in a doubly linked LRU list (indices), and an open-addressing hash
 * table of 2^k >= 2*max slots (entry index + 1, 0 = empty; linear probing, backward-shift
 * deletion) keyed by (NetID, ID length, ID). */
#include "gateways.h"

#include "rh_err.h"
#include "rh_time.h"

#include <math.h>
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
        size_t p = find_slot(s, net_id, g->id_len, g->id);
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
                p = find_slot(s, net_id, g->id_len, g->id); /* the deletion may have moved it */
            }
            gw_entry_t *e = &s->ent[i].e;
            memset(e, 0, sizeof *e);
            e->net_id = net_id;
            e->id = g->id;
            e->id_len = g->id_len;
            e->first_seen_ms = now_ms;
            s->slot[p] = i + 1;
        }
        gw_entry_t *e = &s->ent[i].e;
        e->lat = g->lat;
        e->lon = g->lon;
        e->last_seen_ms = now_ms;
        e->uplinks++;
        lru_push_front(s, i);
    }
    pthread_mutex_unlock(&s->mu);
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

uint64_t gw_store_evicted(gw_store_t *s)
{
    pthread_mutex_lock(&s->mu);
    uint64_t n = s->evicted;
    pthread_mutex_unlock(&s->mu);
    return n;
}
