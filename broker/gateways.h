/*
 * gateways.h — the gateways the hub has seen: a bounded in-memory store of (forwarder NetID,
 * gateway ID) -> location, first/last seen time and uplink count, filled from the GWInfo
 * elements (TS002 1.0 Table 21: ID, Lat, Lon) of the uplinks the relay routes, and read by the
 * admin API's GET /api/v1/gateways (admin_gateways.c, which applies each forwarder's visibility
 * setting). Only gateways that report a location are kept: the store exists for the console's
 * map, not as an inventory.
 *
 * Bounds: at most `max` entries (gw_store_new); when full, the entry seen least recently is
 * evicted (LRU list, counted in gw_store_evicted). Memory is allocated once at creation:
 * nothing is allocated on the relay path. Coordinates outside [-90, 90] x [-180, 180], not finite,
 * or exactly (0, 0) (what gateways without GPS send) are not recorded.
 *
 * Threads: gw_store_note from any worker, gw_store_snapshot from any thread; one mutex per store
 * held for a hash lookup per GWInfo element (a message carries at most BI_MAX_GWINFO).
 * Not persisted: a restart starts with an empty map. Nothing secret is stored (GWInfo ULToken,
 * RSSI/SNR and the frame are not read).
 */
#ifndef RH_GATEWAYS_H
#define RH_GATEWAYS_H

#include "bi_msg.h"

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define GW_STORE_MAX_ENTRIES 1000000u

typedef struct gw_entry {
    uint32_t net_id;       /* forwarder NetID whose uplink carried the GWInfo */
    uint64_t id;           /* GWInfo.ID, big-endian display value */
    uint8_t id_len;        /* 4 or 8 bytes (display: 8 or 16 hex digits) */
    double lat, lon;       /* degrees, the last reported location */
    int64_t first_seen_ms; /* Unix ms */
    int64_t last_seen_ms;  /* Unix ms */
    uint64_t uplinks;      /* uplinks that carried this gateway's GWInfo */
} gw_entry_t;

typedef struct gw_store gw_store_t;

/* Creates a store for at most `max` entries (1..GW_STORE_MAX_ENTRIES). Errors: RH_EINVAL (max
 * out of range), RH_ENOMEM. Free with gw_store_free. */
int gw_store_new(size_t max, gw_store_t **out);

/* Frees the store. NULL is a no-op. No gw_store_note may run concurrently. */
void gw_store_free(gw_store_t *s);

/* Records every GWInfo element of `ul` that has ID, Lat and Lon, for forwarder `net_id`, seen at
 * `now_ms` (Unix ms). NULL store or metadata: no-op. */
void gw_store_note(gw_store_t *s, uint32_t net_id, const bi_ulmeta_t *ul, int64_t now_ms);

/* Copies the entries (most recently seen first) into a malloc'd array *out (free()); returns the
 * count. 0 with *out NULL when empty or out of memory. */
size_t gw_store_snapshot(gw_store_t *s, gw_entry_t **out);

/* Entries held now, and entries evicted to stay within the bound since creation. */
size_t gw_store_count(gw_store_t *s);
uint64_t gw_store_evicted(gw_store_t *s);

/* The process's store (roamhubd runs one hub): set by the admin API at start, cleared before it
 * is freed (after the workers stopped). The relay's only call is gateways_seen(). */
extern _Atomic(gw_store_t *) gateways_global;

/* The relay's hook: records the uplink's gateways for forwarder `fwd_net_id`. One atomic load
 * and a flag test when the message has no GWInfo or no store is set. */
static inline void gateways_seen(uint32_t fwd_net_id, const bi_fields_t *f)
{
    gw_store_t *s = atomic_load_explicit(&gateways_global, memory_order_acquire);
    if (s && (f->present & BI_F_UL_META) && f->ul.gw_count)
        gw_store_note(s, fwd_net_id, &f->ul, -1);
}

#endif
