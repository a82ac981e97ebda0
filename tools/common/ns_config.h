/*
 * ns_config.h — roamns configuration: one JSON file (docs/roamns.md documents every key).
 * Unknown keys are errors (typos must not pass silently); every refusal names the key.
 * Secrets (device keys, the hub API key, the expected Authorization value) are held here and
 * never logged.
 */
#ifndef NS_CONFIG_H
#define NS_CONFIG_H

#include "devcfg.h"
#include "ns_core.h"
#include "region.h"
#include "rh_err.h"

#include <stdbool.h>
#include <stdint.h>

/* config.hub.dialect (docs/PEERING.md; issue #11's test peers): roamns behaves as ... */
enum ns_dialect {
    NS_DIALECT_PLAIN = 0,      /* "": the project's own conventions */
    NS_DIALECT_CHIRPSTACK = 1, /* "chirpstack": role-suffixed paths after the URL ("//sns") */
    NS_DIALECT_HELIUM = 2,     /* "helium": upper-case hex; a sync downlink is acknowledged
                                  with 202 "Downlink Accepted" and no XmitDataAns */
};

typedef struct ns_config {
    uint32_t net_id;
    ns_opts_t core;            /* DevAddr blocks, JoinEUIs, join-accept settings */
    region_id_t region;
    char *gwmp_address;        /* UDP, default "127.0.0.1" */
    uint16_t gwmp_port;        /* default 1700; 0 = ephemeral */
    char *ts002_address;       /* TCP (TS002 server, /downlink, /stats), default "127.0.0.1" */
    uint16_t ts002_port;       /* default 0 = ephemeral */
    char *ts002_authorization; /* required Authorization header value on TS002 POSTs, or NULL */
    /* hub (roaming): has_hub false = no roaming */
    bool has_hub;
    char *hub_url;
    int hub_protocol;          /* 0 = TS002 1.0, 1 = 1.1 */
    int hub_dialect;           /* NS_DIALECT_*: which real product roamns behaves as toward the hub */
    bool hub_async;
    char *hub_api_key;         /* sent as "Authorization: Bearer <key>", or NULL */
    unsigned hub_timeout_ms;   /* default 3000 */
    uint32_t hub_receiver_id;  /* hub.receiver_id: ReceiverID of every PRStartReq when set
                                  (hub_receiver_set); else data frames of DevAddr types 0..2 get
                                  the NetID derived from the DevAddr and the rest 000000 */
    bool hub_receiver_set;
    /* packet_broker (docs/roamns.md "Packet Broker mode"): has_pb false = none. roamns then
       connects to the hub as The Things Stack's Packet Broker Agent (gRPC, OAuth2 token). */
    bool has_pb;
    char *pb_host;             /* data_plane_address "host:port" split */
    uint16_t pb_port;
    char *pb_token_url;        /* http://host:port/path of the hub's token endpoint */
    bool pb_insecure;          /* h2c (pba.insecure) instead of TLS with ALPN h2 */
    char *pb_tls_ca_file;      /* PEM roots for the hub's gRPC certificate; NULL = system store */
    char *pb_client_id;        /* oauth2 client ID = the hub API key's ID */
    char *pb_client_secret;    /* oauth2 client secret (never logged) */
    char *pb_tenant_id;        /* "" = none */
    char *pb_cluster_id;       /* "" = none; the subscription group is it, or "default" */
    bool pb_forwarder;         /* publish uplinks of our gateways, subscribe for downlinks */
    bool pb_home;              /* subscribe for uplinks of our DevAddr blocks / JoinEUIs */
    uint8_t pb_token_key[32];  /* AES-256-GCM key of the gateway uplink tokens (pb_token.h) */
    size_t pb_token_key_len;   /* 32, or 0 = random at start (tokens die with the process) */
    devcfg_t *devs;
    size_t n_devs;
    char *downlinks_file;      /* JSON lines of downlinks to queue (read at start, then tailed) */
    char *output;              /* uplink JSON lines: path or "-" (stdout, the default) */
    char *log_level;           /* default "info" */
    unsigned dedup_window_ms;  /* collect copies of one uplink from several gateways; default 100 */
    unsigned dl_margin_ms;     /* a window must open at least this long after sending; default 50 */
    int tx_power;              /* dBm; -1 = the region's default */
} ns_config_t;

/* Loads the file. Errors: RH_EIO, RH_EINVAL (naming the key), RH_ENOMEM; on error nothing is
 * left to free. */
int ns_config_load(const char *path, ns_config_t *c, rh_diag_t *diag);

/* Same from a parsed JSON object; base_dir resolves relative file names (NULL = cwd). */
int ns_config_from_json(const cJSON *root, const char *base_dir, ns_config_t *c, rh_diag_t *diag);

void ns_config_fini(ns_config_t *c); /* NULL is a no-op */

#endif
