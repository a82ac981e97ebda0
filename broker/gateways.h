/*
 * gateways.h — the gateways the hub has seen: a bounded in-memory store keyed by (forwarder
 * NetID, gateway ID) holding location, first/last seen time, uplink count, online state, the
 * forwarder tenant and where the information came from. Two sources write it:
 *
 *   - GWInfo: the ULMetaData.GWInfo elements (TS002 1.0 Table 21: ID, Lat, Lon) of the uplinks
 *     the relay routes (gw_store_note, one call in the relay through gateways_seen());
 *   - Mapper: Packet Broker `org.packetbroker.mapping.v2.Mapper/UpdateGateway` requests
 *     (gw_store_put; packetbroker/api mapping/v2/service.proto UpdateGatewayRequest, v3
 *     gateway.proto GatewayIdentifier/GatewayLocation, location.proto Location).
 *
 * It is read by the admin API's GET /api/v1/gateways (admin_gateways.c, which applies each
 * forwarder's visibility setting) for the console's map.
 *
 * Gateway identity: the key's 64-bit ID is GWInfo.ID (4 or 8 bytes) for GWInfo, and for a
 * Packet Broker GatewayIdentifier its `eui`, else the first 8 bytes (big-endian) of SHA-256 of
 * its `plain` ID (which is its `hash`) — gw_pb_id64(), the same mapping a Packet Broker to TS002
 * bridge uses for GWInfo.ID (shared/reference/packet-broker-api.md section 7), so a gateway seen
 * through both sources is one entry. The forwarder tenant is an attribute, not part of the key.
 *
 * Bounds: at most `max` entries (gw_store_new); when full, the entry seen least recently (by
 * either source) is evicted (LRU list, counted in gw_store_evicted). Entry memory is allocated
 * once at creation: nothing is allocated on the relay path. GWInfo coordinates outside
 * [-90, 90] x [-180, 180], not finite, or exactly (0, 0) (what gateways without GPS send) are not
 * recorded; a Mapper update may create an entry without a location (online state only), which
 * the map does not draw (GW_F_LOCATION clear).
 *
 * Threads: gw_store_note/gw_store_put from any thread, gw_store_snapshot from any thread; one
 * mutex per store held for a hash lookup per gateway. Not persisted: a restart starts with an
 * empty map. Nothing secret is stored (GWInfo ULToken, RSSI/SNR, the frame and the Mapper's
 * contact information are not read).
 */
#ifndef RH_GATEWAYS_H
#define RH_GATEWAYS_H

#include "bi_msg.h"
#include "rh_err.h"

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define GW_STORE_MAX_ENTRIES 1000000u

/* Where an entry's information came from (gw_entry_t.sources is a mask of these). */
typedef enum gw_source {
    GW_SOURCE_GWINFO = 1u << 0, /* TS002 ULMetaData.GWInfo of a relayed uplink */
    GW_SOURCE_MAPPER = 1u << 1, /* Packet Broker Mapper/UpdateGateway */
} gw_source_t;

/* gw_entry_t.flags */
#define GW_F_LOCATION (1u << 0) /* lat/lon hold a location (else never reported) */
#define GW_F_ALT (1u << 1)      /* alt holds an altitude */
#define GW_F_EUI (1u << 2)      /* id is a gateway EUI / GWInfo.ID (else derived from a PB ID) */
#define GW_F_RX_RATE (1u << 3)  /* rx_rate set */
#define GW_F_TX_RATE (1u << 4)  /* tx_rate set */

#define GW_PB_ID_MAX 64 /* Packet Broker GatewayIdentifier.plain, bytes (TTS IDs are <= 36) */
#define GW_TENANT_MAX 36 /* forwarder tenant ID, bytes (= RH_TENANT_MAX) */
#define GW_ONLINE_TTL_MAX_MS (7 * 24 * 3600 * 1000LL) /* longest accepted online_ttl */

typedef struct gw_entry {
    uint32_t net_id;        /* forwarder NetID */
    uint64_t id;            /* key: GWInfo.ID or gw_pb_id64(), big-endian display value */
    uint8_t id_len;         /* 4 or 8 bytes (display: 8 or 16 hex digits) */
    uint8_t flags;          /* GW_F_* */
    uint8_t sources;        /* gw_source_t mask: every source that reported it */
    uint8_t last_source;    /* gw_source_t of the latest report */
    int8_t online;          /* Mapper online state: -1 never reported, 0 offline, 1 online
                             * until online_until_ms (read it with gw_entry_online) */
    double lat, lon;        /* degrees, the last reported location (GW_F_LOCATION) */
    double alt;             /* metres above mean sea level (GW_F_ALT; Mapper only) */
    int64_t first_seen_ms;  /* Unix ms, first report by any source */
    int64_t last_seen_ms;   /* Unix ms, latest report by any source */
    int64_t online_until_ms; /* Unix ms: online == 1 expires then (update time + online_ttl) */
    uint64_t uplinks;       /* uplinks that carried this gateway's GWInfo */
    float rx_rate, tx_rate; /* Mapper packets per hour (GW_F_RX_RATE / GW_F_TX_RATE) */
    char tenant_id[GW_TENANT_MAX + 1]; /* Mapper forwarder_tenant_id, "" = none/GWInfo only */
    char pb_id[GW_PB_ID_MAX + 1];      /* Mapper GatewayIdentifier.plain, "" = none */
} gw_entry_t;

/* One Mapper/UpdateGateway request (or any other non-GWInfo report), as gw_store_put reads it.
 * Field names follow UpdateGatewayRequest; "not set" means the request left the optional field
 * out, and the stored value is then kept ("This field gets updated when a value is set"). All
 * pointers are borrowed for the call only. Zero-initialise and fill what the request has. */
typedef struct gw_put {
    uint32_t net_id;       /* forwarder_net_id: a NetID, <= 0xFFFFFF */
    const char *tenant_id; /* forwarder_tenant_id: NULL or "" = none (kept as stored then);
                            * else the tenant ID rules of rh_id.h (RH_ID_TENANT, <= 36 bytes) */
    /* forwarder_gateway_id (GatewayIdentifier): eui and/or one of plain / hash; required */
    int has_eui;           /* eui (google.protobuf.UInt64Value) set */
    uint64_t eui;
    const char *plain;     /* id.plain: NULL = not set; 1..GW_PB_ID_MAX bytes of [A-Za-z0-9._-] */
    const uint8_t *hash;   /* id.hash = SHA-256(plain): NULL = not set; hash_len must be 32 */
    size_t hash_len;
    /* gateway_location (terrestrial or satellite Location) */
    int has_location;      /* set: lat/lon replace the stored location; (0, 0) = no fix:
                            * the stored location is kept */
    double lat, lon;       /* degrees: latitude -90..90, longitude -180..180, finite */
    int has_alt;           /* altitude set (with has_location) */
    double alt;            /* metres above mean sea level, finite, -1000..100000 */
    int online;            /* online (BoolValue): -1 not set, 0 offline, 1 online */
    int64_t online_ttl_ms; /* online_ttl: required (1..GW_ONLINE_TTL_MAX_MS) when online == 1;
                            * the gateway counts as offline after now_ms + online_ttl_ms */
    int has_rx_rate, has_tx_rate; /* rx_rate / tx_rate (FloatValue) set */
    float rx_rate, tx_rate;       /* packets per hour, finite, >= 0 */
    gw_source_t source;    /* GW_SOURCE_MAPPER (GW_SOURCE_GWINFO reports use gw_store_note) */
    int64_t now_ms;        /* time of the update, Unix ms; < 0 = the current time */
} gw_put_t;

typedef struct gw_store gw_store_t;

/* Creates a store for at most `max` entries (1..GW_STORE_MAX_ENTRIES). Errors: RH_EINVAL (max
 * out of range), RH_ENOMEM. Free with gw_store_free. */
int gw_store_new(size_t max, gw_store_t **out);

/* Frees the store. NULL is a no-op. No gw_store_note/gw_store_put may run concurrently. */
void gw_store_free(gw_store_t *s);

/* Records every GWInfo element of `ul` that has ID, Lat and Lon (a valid location, see above),
 * for forwarder `net_id`, seen at `now_ms` (Unix ms; < 0 = now): location, last seen, uplinks + 1,
 * GW_SOURCE_GWINFO; tenant, online state and Mapper fields of an existing entry are kept. NULL
 * store or metadata: no-op. */
void gw_store_note(gw_store_t *s, uint32_t net_id, const bi_ulmeta_t *ul, int64_t now_ms);

/* Copies the entries (most recently seen first) into a malloc'd array *out (free()); returns the
 * count. 0 with *out NULL when empty or out of memory. */
size_t gw_store_snapshot(gw_store_t *s, gw_entry_t **out);

/* Checks `u` and records it: creates the entry (even without a location) or updates the set
 * fields of the existing one, moves it to the front of the LRU order, sets GW_SOURCE_MAPPER in
 * its sources. The key is (u->net_id, 8, gw_pb_id64(...)); an entry created by GWInfo with the
 * same EUI is the same entry (its uplink count and GWInfo location are kept unless the update
 * sets a location). Evicts the least recently seen entry when full.
 *
 * Returns RH_OK (also when `s` is NULL — the console is disabled — after the checks), or
 * RH_EINVAL with `diag` naming the request field and the reason ("forwarder_gateway_id: neither
 * eui nor plain nor hash is set", "gateway_location.latitude: 95 is outside -90..90", "online_ttl:
 * required when online is true", ...) — a caller answering gRPC maps it to INVALID_ARGUMENT;
 * RH_ECRYPTO when SHA-256 fails. Nothing is stored on error. `diag` may be NULL. */
int gw_store_put(gw_store_t *s, const gw_put_t *u, rh_diag_t *diag);

/* The store key's 64-bit gateway ID for a Packet Broker GatewayIdentifier: `eui` when set
 * (has_eui), else the first 8 bytes, big-endian, of `hash` (32 bytes) when set, else of
 * SHA-256(`plain`). Errors: RH_EINVAL (none set; hash not 32 bytes; plain empty), RH_ECRYPTO;
 * `diag` (may be NULL) names the field. Use it wherever a Packet Broker gateway becomes a
 * GWInfo.ID, so the same gateway keeps one ID. */
int gw_pb_id64(int has_eui, uint64_t eui, const char *plain, const uint8_t *hash,
               size_t hash_len, uint64_t *out, rh_diag_t *diag);

/* The entry's online state at `now_ms` (Unix ms): -1 unknown (no Mapper online state), 0 offline
 * (reported offline, or its online_ttl ran out), 1 online. */
int gw_entry_online(const gw_entry_t *e, int64_t now_ms);

/* Entries held now, entries evicted to stay within the bound since creation, and the bound. */
size_t gw_store_count(gw_store_t *s);
uint64_t gw_store_evicted(gw_store_t *s);
size_t gw_store_max(gw_store_t *s);

/* Resizes `s` to the bound of `fresh` (an empty store from gw_store_new, not shared with any
 * thread) without allocating: under s's mutex, s's most recently seen entries (at most
 * fresh's max, in the same LRU order) move into fresh's arrays, which s then takes; entries
 * that do not fit count as evicted. `fresh` is freed (with s's old arrays). Readers and writers
 * of `s` may run concurrently (they wait for the mutex). Used by a configuration reload
 * (console.gateways_max): the allocation happens before the reload is accepted. */
void gw_store_take(gw_store_t *s, gw_store_t *fresh);

/* The process's store (roamhubd runs one hub): set by the admin API at start when
 * console.enabled, cleared before it is freed (after the workers stopped). The relay's only call
 * is gateways_seen(); a Mapper handler calls gw_store_put(atomic_load(&gateways_global), ...)
 * (NULL = console disabled: the request is still checked, nothing stored) on a thread that ends
 * before the admin API is freed (the workers). */
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
