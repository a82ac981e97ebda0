/*
 * hub_txid.h — the layout of the TransactionIDs the hub gives the requests it forwards.
 *
 * TS002 1.0 §22.3 (Table 14): TransactionID is a 32-bit unsigned number chosen by the requester;
 * the answer repeats it. When the hub forwards a request it is the requester of the next hop, so
 * each forwarded request carries a hub-owned TransactionID toward its receiver, and the answer is
 * mapped back to the sender's own TransactionID (issue #11 item 2, docs/PEERING.md
 * "TransactionIDs"). Two forwarders that happen to use the same TransactionID therefore never
 * collide at a receiver, and nobody can block another member's traffic by guessing IDs.
 *
 *   bit 31 ........ 24 23 .................................. 0
 *       | node (8 bits) |        sequence (24 bits)           |
 *
 *  - node: the hub node that holds the transaction (0 for a single-node hub; a cluster node
 *    writes its cluster.node_id here, hub.c -> pending_set_node), so an answer arriving at any
 *    node is handed to the node that holds the transaction (cluster_txn.h) by reading these
 *    bits alone — no lookup, no broadcast;
 *  - sequence: per node, split into one range per worker (the pending table's lanes): its top
 *    bits name the worker whose lane holds the transaction (none with one worker; 1 bit for
 *    two, 2 for three or four, ...), the rest is that lane's counter, wrapping within the
 *    range. The pending table refuses a value still in use for the same receiver and takes the
 *    next one, so an ID is unique per receiver while its transaction is pending
 *    (pending_put_fresh, broker/pending.h). TransactionID 0 (node 0, sequence 0) is never issued:
 *    the fronts use 0 for "no hub TransactionID". A range (2^24 divided by the worker count
 *    rounded up to a power of two) exceeds the default pending_max per worker (65536) for up to
 *    128 workers.
 *
 * Only the hub interprets these bits: receivers see an opaque 32-bit number, as TS002 requires.
 */
#ifndef RH_HUB_TXID_H
#define RH_HUB_TXID_H

#include <stdint.h>

#define HUB_TXID_NODE_BITS 8u
#define HUB_TXID_SEQ_BITS 24u
#define HUB_TXID_SEQ_MASK ((1u << HUB_TXID_SEQ_BITS) - 1u)
#define HUB_TXID_MAX_NODE ((1u << HUB_TXID_NODE_BITS) - 1u)

/* The TransactionID of sequence number seq (only its low 24 bits are used) on node `node`
 * (0 .. HUB_TXID_MAX_NODE). */
static inline uint32_t hub_txid_make(uint8_t node, uint32_t seq)
{
    return ((uint32_t)node << HUB_TXID_SEQ_BITS) | (seq & HUB_TXID_SEQ_MASK);
}

/* The node that holds the transaction a hub-owned TransactionID names. */
static inline uint8_t hub_txid_node(uint32_t txid)
{
    return (uint8_t)(txid >> HUB_TXID_SEQ_BITS);
}

/* The per-node sequence number of a hub-owned TransactionID. */
static inline uint32_t hub_txid_seq(uint32_t txid)
{
    return txid & HUB_TXID_SEQ_MASK;
}

#endif
