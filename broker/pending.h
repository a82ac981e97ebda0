/*
 * pending.h — transactions awaiting an answer, shared by all worker threads.
 *
 * An entry is keyed by (peer ID, TransactionID, expected answer MessageType): the peer is the
 * party that must answer (NetID for a network server, JoinEUI for a Join Server), so an answer
 * from any other authenticated peer, or of another type, matches nothing (reliability-security
 * §1.1 "Async correlation": ChirpStack keys by TransactionID alone; we must not).
 * Entries are created by the worker that holds the request ("owner"); an async answer may
 * arrive on any worker, which takes the entry out under the shard lock and hands it to the owner
 * through the owner's inbox. Expiry is the owner's job (its own timer): pending_take() by the
 * owner on timeout returns NULL if an answer already claimed the entry.
 * The table is bounded: pending_put() fails with RH_EAGAIN beyond `max` entries.
 */
#ifndef RH_PENDING_H
#define RH_PENDING_H

#include <stddef.h>
#include <stdint.h>

typedef struct pending_table pending_table_t;

typedef struct pending_key {
    uint64_t peer;     /* NetID (24 bits) or JoinEUI of the party expected to answer */
    uint32_t txid;     /* TransactionID */
    uint32_t ans_type; /* expected answer MessageType (bi_ enum value) */
} pending_key_t;

/* Creates a table with `max` entries at most. NULL on allocation failure. */
pending_table_t *pending_new(size_t max);

/* Frees the table (not the entries' values). NULL is a no-op. */
void pending_free(pending_table_t *t);

/* Inserts key -> value. Errors: RH_EEXIST (same key pending: a duplicate TransactionID from that
 * peer's point of view), RH_EAGAIN (table full), RH_ENOMEM. */
int pending_put(pending_table_t *t, const pending_key_t *key, void *value);

/* Inserts key -> value under a fresh hub-owned TransactionID (layout in hub_txid.h): key->txid
 * is ignored on input and set on success to hub_txid_make(node, next sequence), skipping values
 * already pending for the same (peer, ans_type), so the ID is unique per receiver while pending.
 * Thread-safe (one atomic counter per table). Errors: RH_EAGAIN (table full), RH_ENOMEM,
 * RH_EEXIST (no free sequence within 64 tries: only possible with > 2^24 entries). */
int pending_put_fresh(pending_table_t *t, pending_key_t *key, void *value);

/* Sets the node number (0 .. HUB_TXID_MAX_NODE) that pending_put_fresh writes into the IDs it
 * hands out (0 by default: a single-node hub). Call before any worker runs. */
void pending_set_node(pending_table_t *t, uint8_t node);

/* Removes and returns the value for key, or NULL when absent (never put, already taken). */
void *pending_take(pending_table_t *t, const pending_key_t *key);

/* Number of entries. */
size_t pending_count(pending_table_t *t);

#endif
