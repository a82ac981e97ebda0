/* pending.c — sharded chained hash of pending transactions (see pending.h). 64 shards, each
 * with its own mutex, so workers inserting and async answers matching rarely contend. */
#include "pending.h"

#include "hub_txid.h"
#include "rh_err.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#define NSHARDS 64
#define NBUCKETS 4096 /* per shard */

typedef struct entry {
    pending_key_t key;
    void *value;
    struct entry *next;
} entry_t;

typedef struct shard {
    pthread_mutex_t mu;
    entry_t **buckets;
} shard_t;

struct pending_table {
    shard_t shards[NSHARDS];
    size_t max;
    atomic_size_t count;
    atomic_uint_fast32_t seq; /* next hub TransactionID sequence (hub_txid.h) */
    uint8_t node;
};

static uint64_t key_hash(const pending_key_t *k)
{
    uint64_t h = k->peer * 0x9E3779B97F4A7C15ull;
    h ^= ((uint64_t)k->txid << 8 | k->ans_type) * 0xC2B2AE3D27D4EB4Full;
    h ^= h >> 29;
    return h;
}

static int key_eq(const pending_key_t *a, const pending_key_t *b)
{
    return a->peer == b->peer && a->txid == b->txid && a->ans_type == b->ans_type;
}

pending_table_t *pending_new(size_t max)
{
    pending_table_t *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->max = max;
    for (int i = 0; i < NSHARDS; i++) {
        pthread_mutex_init(&t->shards[i].mu, NULL);
        t->shards[i].buckets = calloc(NBUCKETS, sizeof(entry_t *));
        if (!t->shards[i].buckets) {
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
    for (int i = 0; i < NSHARDS; i++) {
        shard_t *s = &t->shards[i];
        if (s->buckets) {
            for (int b = 0; b < NBUCKETS; b++) {
                entry_t *e = s->buckets[b];
                while (e) {
                    entry_t *n = e->next;
                    free(e);
                    e = n;
                }
            }
            free(s->buckets);
        }
        pthread_mutex_destroy(&s->mu);
    }
    free(t);
}

int pending_put(pending_table_t *t, const pending_key_t *key, void *value)
{
    if (atomic_fetch_add(&t->count, 1) >= t->max) {
        atomic_fetch_sub(&t->count, 1);
        return RH_EAGAIN;
    }
    uint64_t h = key_hash(key);
    shard_t *s = &t->shards[h % NSHARDS];
    size_t b = (h / NSHARDS) % NBUCKETS;
    entry_t *e = malloc(sizeof *e);
    if (!e) {
        atomic_fetch_sub(&t->count, 1);
        return RH_ENOMEM;
    }
    e->key = *key;
    e->value = value;
    pthread_mutex_lock(&s->mu);
    for (entry_t *x = s->buckets[b]; x; x = x->next) {
        if (key_eq(&x->key, key)) {
            pthread_mutex_unlock(&s->mu);
            free(e);
            atomic_fetch_sub(&t->count, 1);
            return RH_EEXIST;
        }
    }
    e->next = s->buckets[b];
    s->buckets[b] = e;
    pthread_mutex_unlock(&s->mu);
    return RH_OK;
}

int pending_put_fresh(pending_table_t *t, pending_key_t *key, void *value)
{
    for (int i = 0; i < 64; i++) {
        uint32_t seq = (uint32_t)atomic_fetch_add_explicit(&t->seq, 1, memory_order_relaxed);
        key->txid = hub_txid_make(t->node, seq);
        int rc = pending_put(t, key, value);
        if (rc != RH_EEXIST)
            return rc;
    }
    return RH_EEXIST;
}

void pending_set_node(pending_table_t *t, uint8_t node) { t->node = node; }

void *pending_take(pending_table_t *t, const pending_key_t *key)
{
    uint64_t h = key_hash(key);
    shard_t *s = &t->shards[h % NSHARDS];
    size_t b = (h / NSHARDS) % NBUCKETS;
    void *v = NULL;
    pthread_mutex_lock(&s->mu);
    for (entry_t **pp = &s->buckets[b]; *pp; pp = &(*pp)->next) {
        if (key_eq(&(*pp)->key, key)) {
            entry_t *e = *pp;
            *pp = e->next;
            v = e->value;
            free(e);
            atomic_fetch_sub(&t->count, 1);
            break;
        }
    }
    pthread_mutex_unlock(&s->mu);
    return v;
}

size_t pending_count(pending_table_t *t) { return atomic_load(&t->count); }
