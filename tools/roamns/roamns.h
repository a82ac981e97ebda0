/*
 * roamns.h — internals of roamns, the minimal LoRaWAN network server (docs/roamns.md,
 * docs/ARCHITECTURE.md "Network server and simulator"). One thread, one libevent loop:
 *   rn_gw.c     GWMP UDP server: gateways, PUSH_DATA -> deduplication -> rn_uplink();
 *               PULL_DATA keeps each gateway's downlink address; rn_send_txpk() sends PULL_RESP.
 *   rn_uplink.c what happens to a deduplicated uplink: local join / data (ns_core), local
 *               downlink scheduling, or forwarding to the hub (fNS) as PRStartReq.
 *   rn_ts002.c  the HTTP server (broker/http_server): TS002 messages from the hub (PRStartReq /
 *               XmitDataReq as home network, PRStartAns / XmitDataReq / XmitDataAns as
 *               forwarder, async answers), POST /downlink, GET /stats, GET /healthz.
 *   rn_hub.c    outbound TS002 POSTs to the hub through peers/peer_client (sync or async),
 *               the pending-transaction table.
 *   rn_pb.c     Packet Broker mode: the hub's gRPC data plane as The Things Stack's Packet
 *               Broker Agent uses it (OAuth2 token, Publish/Subscribe/Report as forwarder and
 *               as home network), on tools/common/grpc_client and pb_token.
 *   main.c      options, configuration, output file, downlinks file, signals, ports file.
 */
#ifndef ROAMNS_H
#define ROAMNS_H

#include "bi_msg.h"
#include "gwmp.h"
#include "http_server.h"
#include "lw_frame.h"
#include "ns_config.h"
#include "ns_core.h"
#include "ns_sched.h"
#include "tl_util.h"

#include <event2/event.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#define RN_MAX_GW_PER_UPLINK 16

typedef struct peer_client peer_client_t;
typedef struct peer_endpoint peer_endpoint_t;

/* A gateway seen on the GWMP socket. */
typedef struct rn_gw {
    uint64_t eui;
    struct sockaddr_storage pull_addr; /* where PULL_RESP goes (source of its PULL_DATA) */
    socklen_t pull_len;
    bool has_pull;
    uint64_t last_seen_ms;
    bool has_loc;
    double lat, lon;
} rn_gw_t;

/* One gateway's reception of an uplink. */
typedef struct rn_rx {
    uint64_t gw_eui;
    uint32_t tmst;
    uint32_t freq_hz;
    uint8_t dr;
    int rssi;
    double snr;
    uint32_t rx_ms; /* local monotonic ms (mod 2^32) when the PUSH_DATA arrived */
} rn_rx_t;

/* An uplink being deduplicated (keyed by a hash of its PHYPayload). */
typedef struct rn_up {
    uint64_t key;
    uint8_t phy[255];
    size_t len;
    rn_rx_t rx[RN_MAX_GW_PER_UPLINK];
    size_t nrx;
    uint64_t first_ms;
    bool done;
    struct event *timer;
    struct roamns *ns;
} rn_up_t;

/* Counters (GET /stats). */
typedef struct rn_stats {
    uint64_t push_data, pull_data, tx_ack, tx_ack_errors, gwmp_bad;
    uint64_t uplinks_received, duplicates;
    uint64_t joins_accepted, joins_refused, dev_nonce_replays;
    uint64_t data_up, replays, mic_failures, unknown_devaddr;
    uint64_t downlinks_sent, downlinks_too_late, acks_sent, app_downlinks_sent;
    uint64_t roaming_forwarded, roaming_forward_errors, roaming_answers;
    uint64_t roaming_home_uplinks, roaming_home_joins, roaming_home_refused;
    uint64_t xmit_req_sent, xmit_req_received, xmit_failed;
    /* Packet Broker mode */
    uint64_t pb_tokens, pb_token_errors, pb_connects, pb_subscribe_ends, pb_call_errors;
    uint64_t pb_published, pb_downlinks_received, pb_downlink_failures;
    uint64_t pb_uplinks_received, pb_downlinks_published, pb_reports_sent, pb_gateway_updates;
} rn_stats_t;

typedef struct rn_pb rn_pb_t;

typedef struct roamns {
    struct event_base *base;
    ns_config_t cfg;
    ns_registry_t *reg;
    /* GWMP */
    int udp_fd;
    struct event *udp_ev;
    uint16_t gwmp_port;
    uint16_t gw_token;      /* next PULL_RESP token */
    rn_gw_t *gws;
    size_t ngws, capgws;
    tl_map_t ups;           /* key -> rn_up_t* */
    struct event *sweep_ev;
    /* HTTP */
    hs_server_t *http;
    /* hub */
    peer_client_t *client;
    peer_endpoint_t *hub_ep;
    uint32_t next_txid;
    tl_map_t pending;       /* TransactionID -> rn_pending_t* */
    /* Packet Broker mode (NULL without config.packet_broker) */
    rn_pb_t *pb;
    /* output */
    FILE *out;
    /* downlinks file tail */
    char *dl_buf;
    size_t dl_len;
    long dl_offset;
    struct event *dl_ev;
    rn_stats_t st;
    struct event *sig_term, *sig_int;
    bool stopping;
} roamns_t;

/* Local monotonic ms, truncated to 32 bits (the clock of ns_sched). */
uint32_t rn_now_ms32(void);

/* ---- rn_gw.c ---- */
int rn_gw_start(roamns_t *ns);
void rn_gw_stop(roamns_t *ns);
rn_gw_t *rn_gw_find(roamns_t *ns, uint64_t eui);
void rn_sweep(roamns_t *ns);
/* Sends a PULL_RESP with `phy` to gateway `gw_eui` at gateway time tmst on freq/dr.
 * Errors: RH_ENOTFOUND (gateway unknown or never sent PULL_DATA), RH_EINVAL, RH_EIO. */
int rn_send_txpk(roamns_t *ns, uint64_t gw_eui, uint32_t tmst, uint32_t freq_hz, uint8_t dr,
                 const uint8_t *phy, size_t len);

/* ---- rn_uplink.c ---- */
/* A deduplicated uplink with its receptions (rx[0] the first). */
void rn_uplink(roamns_t *ns, rn_up_t *up);
/* Writes one line to the output (flushes). */
void rn_output_line(roamns_t *ns, const char *line);
/* Sends a frame in the best window of an uplink heard by `rx` (local scheduling):
 * rx_delay_s 1 (data) or 5 (join-accept). Returns the window used (1/2) or a negative error. */
int rn_send_class_a(roamns_t *ns, const rn_rx_t *rx, unsigned rx_delay_s, const uint8_t *phy,
                    size_t len, region_win_t *used);
/* The largest application payload a class A downlink answering an uplink on ul_freq_hz / ul_dr
 * may carry in both RX1 and RX2 (bytes). */
size_t rn_dl_max_payload(const roamns_t *ns, uint32_t ul_freq_hz, uint8_t ul_dr);
/* Home network: verifies and decrypts a roaming data uplink (ns_data_up), counts it (data_up +
 * roaming_home_uplinks, or roaming_home_refused + unknown_devaddr / mic_failures / replays) and
 * writes its output line (via "roaming", forwarder NetID `fwd`, gateways gw[0..ngw)). Returns
 * ns_data_up's result: RH_OK with u filled, or its error with d saying why. */
int rn_home_data(roamns_t *ns, const uint8_t *phy, size_t len, const ns_rxinfo_t *gw, size_t ngw,
                 const char *fwd, ns_up_t *u, rh_diag_t *d);
/* Queues a downlink from a JSON object {"dev_eui","fport","payload_hex","confirmed"}.
 * Errors: RH_EINVAL (field named in diag), RH_ENOTFOUND (unknown DevEUI), RH_EFULL, RH_ERANGE. */
int rn_queue_downlink_json(roamns_t *ns, const cJSON *o, rh_diag_t *diag);

/* ---- rn_ts002.c ---- */
int rn_http_start(roamns_t *ns);
void rn_http_stop(roamns_t *ns);
/* Handles a TS002 answer (PRStartAns, XmitDataAns), whether it came in an HTTP response (sync)
 * or as a POST (async). Takes nothing over; msg stays the caller's. */
void rn_handle_answer(roamns_t *ns, bi_msg_t *msg);
/* Home network: processes a PRStartReq / XmitDataReq(ULMetaData); returns the answer (new
 * message) or NULL when none can be built. */
bi_msg_t *rn_home_uplink(roamns_t *ns, bi_msg_t *req);
/* Forwarder: sends the PHYPayload of msg (PRStartAns or XmitDataReq) per its DLMetaData.
 * Returns RH_OK with *used filled, or RH_ETIMEDOUT (too late), RH_ENOTFOUND (token or gateway
 * unknown), RH_EINVAL. */
int rn_fwd_downlink(roamns_t *ns, const bi_msg_t *msg, double *freq_mhz, int *window,
                    rh_diag_t *diag);

/* ---- rn_hub.c ---- */
int rn_hub_start(roamns_t *ns, rh_diag_t *diag);
void rn_hub_stop(roamns_t *ns);
/* A new request message from us to the hub (SenderID = our NetID, a fresh TransactionID). */
int rn_hub_new_req(roamns_t *ns, bi_msg_type_t type, bi_id_t receiver, bi_msg_t **out);
/* POSTs msg (taken over: freed here) to the hub; answers come back to rn_handle_answer. */
int rn_hub_post(roamns_t *ns, bi_msg_t *msg);
/* POSTs an answer (async mode) to the hub; msg taken over. */
int rn_hub_post_answer(roamns_t *ns, bi_msg_t *msg);
/* Drops pending transactions whose answer did not come in time. */
void rn_hub_sweep(roamns_t *ns);
/* Whether a TransactionID is pending (and removes it when `take`). */
bool rn_hub_pending(roamns_t *ns, uint32_t txid, bool take);
/* The dialect used towards the hub. */
bi_dialect_t rn_hub_dialect(const roamns_t *ns);

/* ---- rn_pb.c ---- */
/* Starts the Packet Broker mode when configured: token request, then connection and the
 * subscriptions (all asynchronous, retried with back-off). Errors: RH_EINVAL (token_url),
 * RH_ENOMEM, RH_ECRYPTO (no random token key). */
int rn_pb_start(roamns_t *ns, rh_diag_t *diag);
/* Closes the connection and frees the mode's state. No-op without it. */
void rn_pb_stop(roamns_t *ns);
/* Whether uplinks not handled here are published to Packet Broker (forwarder role on). */
bool rn_pb_forwards(const roamns_t *ns);
/* Forwarder: publishes one PublishUplinkMessageRequest per gateway reception of up (f: its
 * decoded frame). Failures are counted (pb_call_errors) and logged. */
void rn_pb_publish_uplink(roamns_t *ns, const rn_up_t *up, const lw_frame_t *f);

#endif
