/*
 * pb_merge.h — one TS002 uplink from a Packet Broker forwarder's per-gateway copies (issue 12,
 * "Bridging"; docs/PEERING.md, "Copies of one uplink"). The Things Stack's agent publishes an
 * uplink once per gateway that heard it (ForwarderData/Publish, one request per gateway:
 * shared/reference/packet-broker-api.md section 3); a TS002 home network expects ONE PRStartReq
 * with a GWInfo per gateway and refuses later ones with the same PHYPayload as replays
 * (ChirpStack: MICFailed, chirpstack issue 813). The bridge (pb_bridge.c) therefore holds the
 * first copy for a short window and gathers the others into it here:
 *
 *   key:    forwarder NetID + tenant ID + cluster ID (byte for byte) + PHYPayload (bytes equal);
 *   window: opened by the first copy (merge_window_ms, a timer on the worker's event_base: no
 *           blocking); when it ends, or when a merge holds PB_MERGE_MAX_COPIES copies, the flush
 *           callback gets the first copy's ULMetaData carrying every copy's GWInfo (each with its
 *           own ULToken as the caller sealed it), ordered best signal first (SNR, then RSSI:
 *           pb_xlate_gw_better; copies without signal quality keep their arrival order after
 *           those with it), GWCnt = the number of copies, FNSULToken = the first GWInfo's ULToken,
 *           RecvTime = the first copy's;
 *   bounds: at most max_pending open merges (then pb_merge_add says PB_MERGE_FULL: the caller
 *           sends that copy un-merged rather than growing), at most PB_MERGE_MAX_COPIES copies
 *           each, PHYPayloads of at most BI_MAX_PHY bytes (larger ones are never held).
 *
 * Packet Broker home networks get every copy as Packet Broker sends them (they deduplicate
 * themselves): only the TS002 bridge uses this.
 *
 * Threads: a pb_merge_t belongs to one worker (its event_base thread); copies arriving on other
 * workers (other connections) are merged there, separately — the agent publishes on one
 * connection, so its copies meet on one worker.
 */
#ifndef RH_PB_MERGE_H
#define RH_PB_MERGE_H

#include "bi_msg.h"
#include "pb_router.h"

#include <event2/event.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PB_MERGE_MAX_COPIES 16 /* GWInfo elements of one merged uplink */
#define PB_MERGE_WINDOW_MAX_MS 1000 /* the window must end well inside RX1 (1 s data, 5 s join) */

typedef struct pb_merge pb_merge_t;

/* A merged uplink, as the flush callback gets it (valid during the call only). */
typedef struct pb_merged {
    const pb_ids_t *fwd;        /* the forwarder identity, as the first copy named it */
    const uint8_t *phy;         /* the PHYPayload */
    size_t phy_len;
    bi_ulmeta_t *ul;            /* the first copy's ULMetaData with every copy's GWInfo */
    size_t copies;              /* ul->gw_count */
    const void *first;          /* the caller's bytes given with the first copy */
    size_t first_len;
} pb_merged_t;

/* Called once per merge when its window ends (or it is full): send it. arg as given. */
typedef void (*pb_merge_flush_fn)(void *arg, const pb_merged_t *m);

/* A merge table on event_base `base` (the worker's): window_ms (1..PB_MERGE_WINDOW_MAX_MS),
 * max_pending open merges (>= 1). Returns NULL on RH_ENOMEM (or a bad argument). */
pb_merge_t *pb_merge_new(struct event_base *base, unsigned window_ms, size_t max_pending,
                         pb_merge_flush_fn flush, void *arg);

/* Frees the table and its open merges WITHOUT flushing them (shutdown: their Publish calls were
 * answered; the copies are dropped). Returns how many copies were dropped. NULL is a no-op. */
size_t pb_merge_free(pb_merge_t *m);

/* What pb_merge_add did. */
typedef enum pb_merge_res {
    PB_MERGE_OPENED = 0,  /* first copy: a merge opened, its window runs */
    PB_MERGE_JOINED = 1,  /* a copy joined the open merge of its key */
    PB_MERGE_SENT = 2,    /* it joined and filled the merge: flushed (the callback ran) now */
    PB_MERGE_FULL = -1,   /* max_pending merges are open: not held, send it alone */
    PB_MERGE_NOMEM = -2,  /* out of memory: not held, send it alone */
    PB_MERGE_INVALID = -3 /* not mergeable (PHYPayload empty or > BI_MAX_PHY, no GWInfo) */
} pb_merge_res_t;

/* Adds one copy: fwd (identity), phy (phy_len bytes), ul = its ULMetaData with exactly one GWInfo
 * (ul->gw[0]; its ul_token is the copy's own sealed token, hex). Everything is copied. first
 * (first_len bytes, may be 0) is kept when this copy opens a merge and handed to the flush
 * callback. */
pb_merge_res_t pb_merge_add(pb_merge_t *m, const pb_ids_t *fwd, const uint8_t *phy,
                            size_t phy_len, const bi_ulmeta_t *ul, const void *first,
                            size_t first_len);

/* Sends every open merge now (the flush callback runs for each; their timers are cancelled):
 * the hub's drain, so the copies become transactions the drain then handles. Returns how many
 * merges were sent. NULL is a no-op. */
size_t pb_merge_flush_all(pb_merge_t *m);

/* Open merges (for /metrics and tests). */
size_t pb_merge_pending(const pb_merge_t *m);

#endif
