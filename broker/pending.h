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
 * The table has one lane per worker (issue #15): a lane holds the transactions its worker created,
 * under its own mutex, count and TransactionID sequence, on cache lines of its own, so workers do
 * not write shared memory on every message. The lane of an entry is named by its TransactionID
 * (the top bits of the hub_txid.h sequence: pending_put_fresh makes IDs so), so anyone holding a
 * key finds its lane without a search. Each lane is bounded: a put fails with RH_EAGAIN beyond
 * `max` entries in that lane (relay.pending_max is per worker).
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

#define PENDING_MAX_LANES 256u /* the configuration's largest `workers` */

/* Creates a table of `lanes` lanes (1..PENDING_MAX_LANES: one per worker) of `max` (> 0) entries
 * at most each. NULL on allocation failure or an argument out of range. */
pending_table_t *pending_new(size_t max, unsigned lanes);

/* Frees the table (not the entries' values). NULL is a no-op. */
void pending_free(pending_table_t *t);

/* Inserts key -> value into the lane key->txid names (any TransactionID maps to some lane: the top
 * bits of its sequence, modulo the number of lanes). Errors: RH_EEXIST (same key pending: a
 * duplicate TransactionID from that peer's point of view), RH_EAGAIN (that lane full),
 * RH_ENOMEM. */
int pending_put(pending_table_t *t, const pending_key_t *key, void *value);

/* Inserts key -> value into lane `lane` (the calling worker's index; taken modulo the number of
 * lanes) under a fresh hub-owned TransactionID (layout in hub_txid.h): key->txid is ignored on
 * input and set on success to hub_txid_make(node, sequence): the sequence's top bits name the
 * lane, the rest is the lane's next counter value (each lane has 2^24 IDs divided by the lane
 * count rounded up to a power of two), skipping values already pending for the same (peer,
 * ans_type), so the ID is unique per receiver while pending, and never 0 (the fronts' "none",
 * e.g. a Packet Broker bridge token without a transaction). Thread-safe. Errors: RH_EAGAIN (the
 * lane full), RH_ENOMEM, RH_EEXIST (no free sequence within 64 tries: only possible when one
 * receiver has nearly the lane's whole ID range pending). */
int pending_put_fresh(pending_table_t *t, unsigned lane, pending_key_t *key, void *value);

/* Sets the node number (0 .. HUB_TXID_MAX_NODE) that pending_put_fresh writes into the IDs it
 * hands out (0 by default: a single-node hub). Call before any worker runs. */
void pending_set_node(pending_table_t *t, uint8_t node);

/* Removes and returns the value for key, or NULL when absent (never put, already taken). */
void *pending_take(pending_table_t *t, const pending_key_t *key);

/* Number of entries in all lanes (each lane's count read under its mutex). */
size_t pending_count(pending_table_t *t);

#endif
