/* pending.c — the pending-transaction table (see pending.h): one lane per worker, each a chained
 * hash under its own mutex on its own cache lines, with its own count and TransactionID sequence.
 * A worker's puts and takes touch only its lane, so two workers relaying at full speed share no
 * written memory here (issue #15: the single counter and 64 shared shards cost about 1 % of the
 * hub's CPU in cache-line transfers); an async answer taken on another worker locks the owner's
 * lane once. */
#include "pending.h"

#include "hub_txid.h"
#include "rh_err.h"

#include <pthread.h>
#include <stdalign.h>
#include <stdlib.h>
#include <string.h>

typedef struct entry {
    pending_key_t key;
    void *value;
    struct entry *next;
} entry_t;

typedef struct lane {
    alignas(64) pthread_mutex_t mu;
    entry_t **buckets;
    size_t mask;    /* buckets - 1 (a power of two minus one) */
    size_t count;   /* under mu */
    uint32_t next;  /* under mu: the next sequence offset within the lane's range */
} lane_t;

struct pending_table {
    lane_t *lane;
    unsigned lanes;
    unsigned lane_shift; /* sequence bits below the lane number: HUB_TXID_SEQ_BITS - lane bits */
    size_t max;          /* per lane */
    uint8_t node;
};

/* The bucket index before masking: the TransactionID plus an offset per (peer, answer type), so
 * the consecutive IDs a lane hands out fall into neighbouring buckets (the few hundred in flight
 * stay in a few cache lines, where a mixing hash would miss the cache on every put and take);
 * fresh IDs are the hub's own, not chosen by a peer. */
static size_t key_slot(const pending_key_t *k)
{
    uint64_t off = (k->peer ^ (uint64_t)k->ans_type << 56) * 0x9E3779B97F4A7C15ull;
    return (size_t)(k->txid + (uint32_t)(off >> 40));
}

static int key_eq(const pending_key_t *a, const pending_key_t *b)
{
    return a->peer == b->peer && a->txid == b->txid && a->ans_type == b->ans_type;
}

/* The lane a TransactionID belongs to: the top bits of its sequence (fresh IDs are made so). */
static lane_t *lane_of(pending_table_t *t, uint32_t txid)
{
    return &t->lane[(hub_txid_seq(txid) >> t->lane_shift) % t->lanes];
}

pending_table_t *pending_new(size_t max, unsigned lanes)
{
    if (lanes == 0 || lanes > PENDING_MAX_LANES || max == 0)
        return NULL;
    pending_table_t *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    unsigned bits = 0;
    while ((1u << bits) < lanes)
        bits++;
    t->lanes = lanes;
    t->lane_shift = HUB_TXID_SEQ_BITS - bits;
    t->max = max;
    /* buckets per lane: the bound rounded up to a power of two, at most 2^18 over all lanes
     * (2 MiB of heads, touched only as entries arrive), at least 64 */
    size_t cap = (size_t)1 << 18, nb = 64;
    cap = cap / lanes < 64 ? 64 : cap / lanes;
    while (nb < max && nb < cap)
        nb *= 2;
    t->lane = aligned_alloc(64, lanes * sizeof(lane_t));
    if (!t->lane) {
        free(t);
        return NULL;
    }
    memset(t->lane, 0, lanes * sizeof(lane_t));
    for (unsigned i = 0; i < lanes; i++) {
        lane_t *l = &t->lane[i];
        pthread_mutex_init(&l->mu, NULL);
        l->mask = nb - 1;
        l->buckets = calloc(nb, sizeof(entry_t *));
        if (!l->buckets) {
            pending_free(t);
            return NULL;
        }
    }
    return t;
}

void pending_free(pending_table_t *t)
{
    if (!t)
        return;
    for (unsigned i = 0; i < t->lanes; i++) {
        lane_t *l = &t->lane[i];
        if (l->buckets) {
            for (size_t b = 0; b <= l->mask; b++) {
                entry_t *e = l->buckets[b];
                while (e) {
                    entry_t *n = e->next;
                    free(e);
                    e = n;
                }
            }
            free(l->buckets);
        }
        pthread_mutex_destroy(&l->mu);
    }
    free(t->lane);
    free(t);
}

/* Inserts e into lane l (mu held). RH_EEXIST, RH_EAGAIN (the lane is full) or RH_OK. */
static int insert_locked(pending_table_t *t, lane_t *l, entry_t *e)
{
    entry_t **b = &l->buckets[key_slot(&e->key) & l->mask];
    for (entry_t *x = *b; x; x = x->next)
        if (key_eq(&x->key, &e->key))
            return RH_EEXIST;
    if (l->count >= t->max)
        return RH_EAGAIN;
    e->next = *b;
    *b = e;
    l->count++;
    return RH_OK;
}

/* A new entry for key -> value (not linked), or NULL when out of memory. */
static entry_t *entry_new(const pending_key_t *key, void *value)
{
    entry_t *e = malloc(sizeof *e);
    if (e) {
        e->key = *key;
        e->value = value;
    }
    return e;
}

int pending_put(pending_table_t *t, const pending_key_t *key, void *value)
{
    entry_t *e = entry_new(key, value);
    if (!e)
        return RH_ENOMEM;
    lane_t *l = lane_of(t, key->txid);
    pthread_mutex_lock(&l->mu);
    int rc = insert_locked(t, l, e);
    pthread_mutex_unlock(&l->mu);
    if (rc != RH_OK)
        free(e);
    return rc;
}

int pending_put_fresh(pending_table_t *t, unsigned lane, pending_key_t *key, void *value)
{
    entry_t *e = entry_new(key, value);
    if (!e)
        return RH_ENOMEM;
    lane %= t->lanes;
    lane_t *l = &t->lane[lane];
    uint32_t base = lane << t->lane_shift, span = 1u << t->lane_shift;
    int rc = RH_EEXIST;
    pthread_mutex_lock(&l->mu);
    for (int i = 0; i < 64 && rc == RH_EEXIST; i++) {
        do /* 0 means "no hub TransactionID" to the fronts: never issued */
            e->key.txid = hub_txid_make(t->node, base | (l->next++ & (span - 1)));
        while (e->key.txid == 0);
        rc = insert_locked(t, l, e);
    }
    pthread_mutex_unlock(&l->mu);
    if (rc != RH_OK) {
        free(e);
        return rc;
    }
    key->txid = e->key.txid;
    return RH_OK;
}

void pending_set_node(pending_table_t *t, uint8_t node) { t->node = node; }

void *pending_take(pending_table_t *t, const pending_key_t *key)
{
    lane_t *l = lane_of(t, key->txid);
    void *v = NULL;
    entry_t *e = NULL;
    pthread_mutex_lock(&l->mu);
    for (entry_t **pp = &l->buckets[key_slot(key) & l->mask]; *pp; pp = &(*pp)->next) {
        if (key_eq(&(*pp)->key, key)) {
            e = *pp;
            *pp = e->next;
            v = e->value;
            l->count--;
            break;
        }
    }
    pthread_mutex_unlock(&l->mu);
    free(e);
    return v;
}

size_t pending_count(pending_table_t *t)
{
    size_t n = 0;
    for (unsigned i = 0; i < t->lanes; i++) {
        pthread_mutex_lock(&t->lane[i].mu);
        n += t->lane[i].count;
        pthread_mutex_unlock(&t->lane[i].mu);
    }
    return n;
}
