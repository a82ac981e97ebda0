/*
 * rn_pb.c — roamns's Packet Broker mode: it connects to the hub as The Things Stack's Packet
 * Broker Agent does (docs/roamns.md "Packet Broker mode"; behaviour taken from TTS
 * pkg/packetbrokeragent as summarised in shared/reference/packet-broker-api.md):
 *   - OAuth2 client credentials first (form POST to the token URL, pba_token.h), refreshed 10 s
 *     before expiry; every RPC carries "authorization: Bearer <token>";
 *   - one HTTP/2 connection (grpc_client.h; TLS with ALPN h2, or h2c with `insecure`) to the
 *     data-plane address, re-dialled with back-off
 *     0.1 s, 1 s, 10 s (the agent's task restart delays) when it fails;
 *   - forwarder: ForwarderData/Publish of each gateway's copy of an uplink roamns does not handle
 *     itself (one request per gateway, 3 s deadline), with the gateway uplink token sealed under
 *     the token key and the forwarder identity; ForwarderData/Subscribe with 4 streams in one
 *     group (cluster ID, or "default"); each RoutedDownlinkMessage is scheduled on the gateway
 *     (RX1/RX2 as roamns schedules any downlink) and answered with
 *     ForwarderData/ReportDownlinkMessageDeliveryState (PROCESSED + success{rx1,rx2}, or the
 *     agent's errors: DOWNLINK_INTERNAL for what does not convert or open, GATEWAY_NOT_CONNECTED,
 *     DOWNLINK_UNKNOWN_ERROR for a failed scheduling such as too late);
 *   - forwarder, gateways: Mapper/UpdateGateway for each connected gateway (location when known,
 *     online with a 10 min TTL), again every 10 min +-20 % and when it goes silent, as TTS's
 *     Gateway Server does through the agent;
 *   - home network: HomeNetworkData/Subscribe with 4 streams in one group and the agent's two
 *     filters (mac: our DevAddr blocks; join_request: all), each RoutedUplinkMessage processed as
 *     a roaming uplink (embedded join server, data, ACK / queued downlink), the downlink published
 *     with HomeNetworkData/Publish carrying the forwarder's identity and both uplink tokens
 *     unchanged, then HomeNetworkData/ReportUplinkMessageDeliveryState (PROCESSED, error
 *     NOT_FOUND / DUPLICATE_PAYLOAD / UPLINK_UNKNOWN_ERROR / UPLINK_INTERNAL as the agent maps
 *     its NS's answer). Copies of one uplink from several gateways are collected for
 *     dedup_window_ms as a Network Server deduplicates: the copy with a gateway uplink token and
 *     the best SNR answers, the output line lists every gateway, the merged copies (also those
 *     up to 2 s late) are reported without error.
 */
#include "roamns.h"

#include "grpc_client.h"
#include "lw_frame.h"
#include "lw_netid.h"
#include "pb_token.h"
#include "pba_token.h"
#include "region.h"
#include "rh_hex.h"
#include "rh_log.h"
#include "rh_time.h"

#include "packetbroker/mapping_v2.pb-c.h"
#include "packetbroker/routing_v1.pb-c.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>

#define PB_STREAMS 4                 /* per role, as the agent opens */
#define PB_UNARY_TIMEOUT_MS 3000     /* the agent's publishMessageTimeout */
#define PB_SEEN_HOLD_MS 2000         /* home side: copies this late after the window are merged */
#define P_FWD "/org.packetbroker.routing.v1.ForwarderData/"
#define P_HOME "/org.packetbroker.routing.v1.HomeNetworkData/"
#define P_MAPPER "/org.packetbroker.mapping.v2.Mapper/UpdateGateway"
#define PB_GW_UPDATE_MS 600000u      /* T: UpdateGateway every 10 min +-20 % per gateway */
#define PB_GW_ONLINE_TTL_S 600       /* T: forwarder.gateway-online-ttl default 10m */
#define PB_GW_ONLINE_MS 30000u       /* a gateway heard from within this is online */

typedef Org__Packetbroker__V3__UplinkMessage UplinkMessage;
typedef Org__Packetbroker__V3__DownlinkMessage DownlinkMessage;
typedef Org__Packetbroker__V3__RoutedUplinkMessage RoutedUplink;
typedef Org__Packetbroker__V3__RoutedDownlinkMessage RoutedDownlink;
typedef Org__Packetbroker__V3__DataRate DataRate;
typedef Org__Packetbroker__V3__LoRaDataRate LoRaDataRate;

typedef struct pb_slot {
    struct rn_pb *pb;
    bool home;
    grpc_ccall_t *call;
} pb_slot_t;

struct rn_pb {
    roamns_t *ns;
    grpc_client_t *conn;
    char *token;                     /* current access token (never logged) */
    bool token_pending;
    bool token_stale;                /* a new one is wanted (refresh due, or a fetch failed) */
    struct evhttp_connection *tok_conn;
    char tok_host[256], tok_path[512];
    uint16_t tok_port;
    struct event *ensure_ev, *refresh_ev, *sweep_ev;
    unsigned backoff;                /* index into delays_ms */
    pb_slot_t slots[2 * PB_STREAMS]; /* forwarder streams, then home streams */
    tl_map_t seen;                   /* home: FNV-64 of PHYPayload -> pb_up_t* (deduplication) */
    tl_map_t gw_due;                 /* forwarder: gateway EUI -> pb_gw_due_t* (Mapper updates) */
    pb_token_key_t key;              /* gateway uplink tokens (broker/pb_token.h) */
    SSL_CTX *tls;                    /* NULL with insecure (h2c) */
    char group[128];
};

static const unsigned delays_ms[] = {100, 1000, 10000};

/* When a gateway's next Mapper/UpdateGateway is due, and what the last one said. */
typedef struct pb_gw_due {
    uint64_t due_ms;
    bool loc_sent, online_sent;
} pb_gw_due_t;

static void schedule_ensure(rn_pb_t *pb, unsigned ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    if (pb->ensure_ev && !evtimer_pending(pb->ensure_ev, NULL))
        evtimer_add(pb->ensure_ev, &tv);
}

/* After a failure: the next attempt in 0.1 s, 1 s, then 10 s (reset by any success). Several
 * failures at once (every stream of a lost connection) count as one. */
static void schedule_retry(rn_pb_t *pb)
{
    if (!pb->ensure_ev || evtimer_pending(pb->ensure_ev, NULL))
        return;
    unsigned i = pb->backoff < 2 ? pb->backoff : 2;
    if (pb->backoff < 2)
        pb->backoff++;
    schedule_ensure(pb, delays_ms[i]);
}

/* ------------------------------------------------------------------ token */

static void token_cb(struct evhttp_request *req, void *arg)
{
    rn_pb_t *pb = arg;
    pb->token_pending = false;
    int code = req ? evhttp_request_get_response_code(req) : 0;
    if (!req || code < 200 || code > 299) {
        pb->ns->st.pb_token_errors++;
        RH_LOG(RH_LOG_WARN, "pb", "token request failed status=%d", code);
        schedule_retry(pb);
        return;
    }
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t n = evbuffer_get_length(in);
    char *tok = NULL;
    uint64_t exp = 0;
    rh_diag_t d;
    rh_diag_clear(&d);
    int rc = pba_token_parse((const char *)evbuffer_pullup(in, -1), n, &tok, &exp, &d);
    if (rc < 0) {
        pb->ns->st.pb_token_errors++;
        RH_LOG(RH_LOG_WARN, "pb", "token answer refused err=\"%s\"", d.text);
        schedule_retry(pb);
        return;
    }
    if (pb->token) {
        memset(pb->token, 0, strlen(pb->token));
        free(pb->token);
    }
    pb->token = tok;
    pb->token_stale = false;
    pb->ns->st.pb_tokens++;
    RH_LOG(RH_LOG_INFO, "pb", "token received expires_in=%llu", (unsigned long long)exp);
    if (exp) { /* refresh ~10 s before expiry, as x/oauth2 does */
        uint64_t s = exp > 20 ? exp - 10 : exp / 2 + 1;
        struct timeval tv = {(time_t)s, 0};
        evtimer_add(pb->refresh_ev, &tv);
    }
    schedule_ensure(pb, 0);
}

static void token_fetch(rn_pb_t *pb)
{
    const ns_config_t *c = &pb->ns->cfg;
    if (pb->token_pending)
        return;
    struct evhttp_request *req = evhttp_request_new(token_cb, pb);
    char *body = pba_token_form(c->pb_client_id, c->pb_client_secret, "networks", c->pb_host);
    if (!req || !body) {
        if (req)
            evhttp_request_free(req);
        free(body);
        schedule_retry(pb);
        return;
    }
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    char hostport[300];
    snprintf(hostport, sizeof hostport, "%s:%u", pb->tok_host, (unsigned)pb->tok_port);
    evhttp_add_header(h, "Host", hostport);
    evhttp_add_header(h, "Content-Type", "application/x-www-form-urlencoded");
    evhttp_add_header(h, "Accept", "application/json");
    evbuffer_add(evhttp_request_get_output_buffer(req), body, strlen(body));
    memset(body, 0, strlen(body));
    free(body);
    if (evhttp_make_request(pb->tok_conn, req, EVHTTP_REQ_POST, pb->tok_path) < 0) {
        schedule_retry(pb); /* evhttp freed req */
        return;
    }
    pb->token_pending = true;
}

static void refresh_cb(evutil_socket_t fd, short ev, void *arg)
{
    (void)fd;
    (void)ev;
    rn_pb_t *pb = arg;
    pb->token_stale = true; /* until a new one arrives: a failed fetch is retried by ensure_cb */
    token_fetch(pb);
}

/* ------------------------------------------------------------------ calls */

/* Packs a message and starts a unary call; the reply is logged. */
static void unary_done(void *arg, int status, const char *msg)
{
    rn_pb_t *pb = arg;
    if (status != GRPC_OK) {
        pb->ns->st.pb_call_errors++;
        RH_LOG(RH_LOG_WARN, "pb", "call failed status=%s msg=\"%s\"", grpc_status_name(status), msg);
        if (status == GRPC_UNAUTHENTICATED) {
            pb->token_stale = true;
            token_fetch(pb);
        }
    } else {
        pb->backoff = 0;
    }
}

static bool unary(rn_pb_t *pb, const char *path, const ProtobufCMessage *m)
{
    if (!pb->token || !grpc_client_alive(pb->conn)) {
        pb->ns->st.pb_call_errors++;
        RH_LOG(RH_LOG_WARN, "pb", "not connected to the data plane, call dropped path=%s", path);
        schedule_ensure(pb, 0);
        return false;
    }
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf)
        return false;
    protobuf_c_message_pack(m, buf);
    grpc_ccall_t *k = grpc_client_call(pb->conn, path, buf, n, pb->token, PB_UNARY_TIMEOUT_MS,
                                       NULL, unary_done, pb);
    free(buf);
    if (!k) {
        pb->ns->st.pb_call_errors++;
        return false;
    }
    return true;
}

/* ------------------------------------------------------------------ data rates */

static void lora_dr(region_id_t r, uint8_t dr, DataRate *out, LoRaDataRate *lora)
{
    uint8_t sf = 0;
    uint16_t bw = 0;
    org__packetbroker__v3__data_rate__init(out);
    org__packetbroker__v3__lo_ra_data_rate__init(lora);
    if (region_dr_to_sf_bw(r, dr, &sf, &bw) < 0)
        return;
    lora->spreading_factor = sf;
    lora->bandwidth = (uint32_t)bw * 1000u;
    lora->coding_rate = "4/5";
    out->modulation_case = ORG__PACKETBROKER__V3__DATA_RATE__MODULATION_LORA;
    out->lora = lora;
}

static int dr_index(region_id_t r, const DataRate *d, bool uplink, uint8_t *dr)
{
    if (!d || d->modulation_case != ORG__PACKETBROKER__V3__DATA_RATE__MODULATION_LORA || !d->lora ||
        d->lora->spreading_factor > 12 || d->lora->bandwidth > 1000000)
        return RH_EINVAL;
    return region_dr_from_sf_bw(r, (uint8_t)d->lora->spreading_factor,
                                (uint16_t)(d->lora->bandwidth / 1000u), uplink, dr);
}

static Org__Packetbroker__V3__Region pb_region(region_id_t r)
{
    return r == REGION_US915 ? ORG__PACKETBROKER__V3__REGION__US_902_928
                             : ORG__PACKETBROKER__V3__REGION__EU_863_870;
}

static void now_ts(Google__Protobuf__Timestamp *t)
{
    google__protobuf__timestamp__init(t);
    int64_t ms = rh_real_ms();
    t->seconds = ms / 1000;
    t->nanos = (int32_t)(ms % 1000) * 1000000;
}

/* ------------------------------------------------------------------ forwarder */

bool rn_pb_forwards(const roamns_t *ns) { return ns->pb && ns->cfg.pb_forwarder; }

void rn_pb_publish_uplink(roamns_t *ns, const rn_up_t *up, const lw_frame_t *f)
{
    rn_pb_t *pb = ns->pb;
    const ns_config_t *c = &ns->cfg;
    /* The teaser (T sets it; the home side ignores it): hash of PHYPayload without the MIC. */
    uint8_t hash[SHA256_DIGEST_LENGTH];
    SHA256(up->phy, up->len >= 4 ? up->len - 4 : 0, hash);
    Org__Packetbroker__V3__PHYPayloadTeaser teaser = ORG__PACKETBROKER__V3__PHYPAYLOAD_TEASER__INIT;
    Org__Packetbroker__V3__PHYPayloadTeaser__JoinRequestTeaser jt =
        ORG__PACKETBROKER__V3__PHYPAYLOAD_TEASER__JOIN_REQUEST_TEASER__INIT;
    Org__Packetbroker__V3__PHYPayloadTeaser__MACPayloadTeaser mt =
        ORG__PACKETBROKER__V3__PHYPAYLOAD_TEASER__MACPAYLOAD_TEASER__INIT;
    teaser.hash = (ProtobufCBinaryData){sizeof hash, hash};
    teaser.length = (uint32_t)up->len;
    if (f->mtype == LW_MTYPE_JOIN_REQUEST) {
        jt.join_eui = f->u.join_request.join_eui;
        jt.dev_eui = f->u.join_request.dev_eui;
        jt.dev_nonce = f->u.join_request.dev_nonce;
        teaser.payload_case = ORG__PACKETBROKER__V3__PHYPAYLOAD_TEASER__PAYLOAD_JOIN_REQUEST;
        teaser.join_request = &jt;
    } else {
        mt.confirmed = f->u.data.fctrl.ack; /* T: the ACK bit, not the MType */
        mt.dev_addr = f->u.data.devaddr;
        mt.f_opts = f->u.data.fopts_len > 0;
        mt.f_cnt = f->u.data.fcnt;
        mt.f_port = f->u.data.has_fport ? f->u.data.fport : 0;
        mt.frm_payload_length = (uint32_t)f->u.data.frm_payload_len;
        teaser.payload_case = ORG__PACKETBROKER__V3__PHYPAYLOAD_TEASER__PAYLOAD_MAC;
        teaser.mac = &mt;
    }
    Org__Packetbroker__V3__UplinkMessage__PHYPayload phy =
        ORG__PACKETBROKER__V3__UPLINK_MESSAGE__PHYPAYLOAD__INIT;
    phy.teaser = &teaser;
    phy.value_case = ORG__PACKETBROKER__V3__UPLINK_MESSAGE__PHYPAYLOAD__VALUE_PLAIN;
    phy.plain = (ProtobufCBinaryData){up->len, (uint8_t *)up->phy};
    Google__Protobuf__Timestamp ts;
    now_ts(&ts);
    size_t sent = 0;
    for (size_t i = 0; i < up->nrx; i++) {
        const rn_rx_t *r = &up->rx[i];
        rn_gw_t *gw = rn_gw_find(ns, r->gw_eui);
        char gwid[24];
        snprintf(gwid, sizeof gwid, "eui-%016llx", (unsigned long long)r->gw_eui);
        Google__Protobuf__UInt64Value eui = GOOGLE__PROTOBUF__UINT64_VALUE__INIT;
        eui.value = r->gw_eui;
        Org__Packetbroker__V3__GatewayIdentifier gid = ORG__PACKETBROKER__V3__GATEWAY_IDENTIFIER__INIT;
        gid.eui = &eui;
        gid.id_case = ORG__PACKETBROKER__V3__GATEWAY_IDENTIFIER__ID_PLAIN;
        gid.plain = gwid;
        DataRate dr;
        LoRaDataRate lora;
        lora_dr(c->region, r->dr, &dr, &lora);
        /* gateway metadata: one antenna, signal quality, location when known */
        Org__Packetbroker__V3__GatewayMetadataTeaser__Terrestrial tt =
            ORG__PACKETBROKER__V3__GATEWAY_METADATA_TEASER__TERRESTRIAL__INIT;
        Org__Packetbroker__V3__GatewayMetadataTeaser gmt = ORG__PACKETBROKER__V3__GATEWAY_METADATA_TEASER__INIT;
        gmt.value_case = ORG__PACKETBROKER__V3__GATEWAY_METADATA_TEASER__VALUE_TERRESTRIAL;
        gmt.terrestrial = &tt;
        Org__Packetbroker__V3__TerrestrialGatewayAntennaSignalQuality sq =
            ORG__PACKETBROKER__V3__TERRESTRIAL_GATEWAY_ANTENNA_SIGNAL_QUALITY__INIT;
        sq.channel_rssi = (float)r->rssi;
        sq.snr = (float)r->snr;
        Org__Packetbroker__V3__GatewayMetadataSignalQuality__Terrestrial__Antenna sqa =
            ORG__PACKETBROKER__V3__GATEWAY_METADATA_SIGNAL_QUALITY__TERRESTRIAL__ANTENNA__INIT;
        sqa.value = &sq;
        Org__Packetbroker__V3__GatewayMetadataSignalQuality__Terrestrial__Antenna *sqas[1] = {&sqa};
        Org__Packetbroker__V3__GatewayMetadataSignalQuality__Terrestrial sqt =
            ORG__PACKETBROKER__V3__GATEWAY_METADATA_SIGNAL_QUALITY__TERRESTRIAL__INIT;
        sqt.n_antennas = 1;
        sqt.antennas = sqas;
        Org__Packetbroker__V3__GatewayMetadataSignalQuality gsq =
            ORG__PACKETBROKER__V3__GATEWAY_METADATA_SIGNAL_QUALITY__INIT;
        gsq.value_case = ORG__PACKETBROKER__V3__GATEWAY_METADATA_SIGNAL_QUALITY__VALUE_TERRESTRIAL;
        gsq.terrestrial = &sqt;
        Org__Packetbroker__V3__Location loc = ORG__PACKETBROKER__V3__LOCATION__INIT;
        Org__Packetbroker__V3__GatewayMetadataLocalization__Terrestrial__Antenna la =
            ORG__PACKETBROKER__V3__GATEWAY_METADATA_LOCALIZATION__TERRESTRIAL__ANTENNA__INIT;
        Org__Packetbroker__V3__GatewayMetadataLocalization__Terrestrial__Antenna *las[1] = {&la};
        Org__Packetbroker__V3__GatewayMetadataLocalization__Terrestrial lt =
            ORG__PACKETBROKER__V3__GATEWAY_METADATA_LOCALIZATION__TERRESTRIAL__INIT;
        Org__Packetbroker__V3__GatewayMetadataLocalization gl =
            ORG__PACKETBROKER__V3__GATEWAY_METADATA_LOCALIZATION__INIT;
        Org__Packetbroker__V3__UplinkMessage__GatewayMetadata gm =
            ORG__PACKETBROKER__V3__UPLINK_MESSAGE__GATEWAY_METADATA__INIT;
        gm.teaser = &gmt;
        gm.signal_quality_case =
            ORG__PACKETBROKER__V3__UPLINK_MESSAGE__GATEWAY_METADATA__SIGNAL_QUALITY_PLAIN_SIGNAL_QUALITY;
        gm.plain_signal_quality = &gsq;
        if (gw && gw->has_loc) {
            loc.latitude = gw->lat;
            loc.longitude = gw->lon;
            la.location = &loc;
            lt.n_antennas = 1;
            lt.antennas = las;
            gl.value_case = ORG__PACKETBROKER__V3__GATEWAY_METADATA_LOCALIZATION__VALUE_TERRESTRIAL;
            gl.terrestrial = &lt;
            gm.localization_case =
                ORG__PACKETBROKER__V3__UPLINK_MESSAGE__GATEWAY_METADATA__LOCALIZATION_PLAIN_LOCALIZATION;
            gm.plain_localization = &gl;
        }
        /* gateway uplink token: only for a gateway that can take a downlink (T leaves it empty) */
        uint8_t tok[NS_TOKEN_HEX + PB_TOKEN_OVERHEAD];
        size_t toklen = 0;
        if (gw && gw->has_pull) {
            char hex[NS_TOKEN_HEX + 1], aad[320];
            ns_token_t t = {(uint8_t)c->region, r->gw_eui, r->tmst, r->freq_hz, r->dr, r->rx_ms};
            ns_token_encode(&t, hex);
            pb_token_aad(aad, sizeof aad, c->net_id, c->pb_tenant_id, c->pb_cluster_id);
            if (pb_token_seal(&pb->key, (const uint8_t *)hex, NS_TOKEN_HEX, aad,
                              rh_real_ms() / 1000 + PB_TOKEN_TTL_S, tok, sizeof tok, &toklen) < 0)
                toklen = 0;
        }
        UplinkMessage m = ORG__PACKETBROKER__V3__UPLINK_MESSAGE__INIT;
        m.gateway_id = &gid;
        m.phy_payload = &phy;
        m.forwarder_receive_time = &ts;
        m.gateway_receive_time = &ts;
        m.gateway_region = pb_region(c->region);
        m.data_rate = &dr;
        m.frequency = r->freq_hz;
        m.gateway_metadata = &gm;
        m.gateway_uplink_token = (ProtobufCBinaryData){toklen, tok};
        Org__Packetbroker__Routing__V1__PublishUplinkMessageRequest req =
            ORG__PACKETBROKER__ROUTING__V1__PUBLISH_UPLINK_MESSAGE_REQUEST__INIT;
        req.forwarder_net_id = c->net_id;
        req.forwarder_cluster_id = c->pb_cluster_id;
        req.forwarder_tenant_id = c->pb_tenant_id;
        req.message = &m;
        if (unary(pb, P_FWD "Publish", &req.base))
            sent++;
    }
    ns->st.pb_published += sent;
    RH_LOG(RH_LOG_INFO, "pb", "uplink published kind=%s gws=%zu published=%zu",
           f->mtype == LW_MTYPE_JOIN_REQUEST ? "join-request" : "data", up->nrx, sent);
}

static void report_downlink(rn_pb_t *pb, const RoutedDownlink *rd, uint64_t gw_eui,
                            const char *gwid, int window, int error)
{
    Org__Packetbroker__V3__DownlinkMessageDeliveryStateChange sc =
        ORG__PACKETBROKER__V3__DOWNLINK_MESSAGE_DELIVERY_STATE_CHANGE__INIT;
    Org__Packetbroker__V3__DownlinkMessageDeliveryStateChange__TransmissionResult ok =
        ORG__PACKETBROKER__V3__DOWNLINK_MESSAGE_DELIVERY_STATE_CHANGE__TRANSMISSION_RESULT__INIT;
    Org__Packetbroker__V3__GatewayIdentifier gid = ORG__PACKETBROKER__V3__GATEWAY_IDENTIFIER__INIT;
    sc.id = rd->id;
    sc.home_network_net_id = rd->home_network_net_id;
    sc.home_network_cluster_id = rd->home_network_cluster_id;
    sc.home_network_tenant_id = rd->home_network_tenant_id;
    sc.forwarder_net_id = rd->forwarder_net_id;
    sc.forwarder_cluster_id = rd->forwarder_cluster_id;
    sc.forwarder_tenant_id = rd->forwarder_tenant_id;
    if (rd->message)
        sc.downlink_token = rd->message->downlink_token;
    Google__Protobuf__UInt64Value eui = GOOGLE__PROTOBUF__UINT64_VALUE__INIT;
    if (gwid) { /* T: the gateway's EUI and ID, once the message converted */
        eui.value = gw_eui;
        gid.eui = &eui;
        gid.id_case = ORG__PACKETBROKER__V3__GATEWAY_IDENTIFIER__ID_PLAIN;
        gid.plain = (char *)gwid;
        sc.forwarder_gateway_id = &gid;
    }
    sc.state = ORG__PACKETBROKER__V3__MESSAGE_DELIVERY_STATE__PROCESSED;
    if (error >= 0) {
        sc.result_case = ORG__PACKETBROKER__V3__DOWNLINK_MESSAGE_DELIVERY_STATE_CHANGE__RESULT_ERROR;
        sc.error = (Org__Packetbroker__V3__DownlinkMessageProcessingError)error;
    } else {
        ok.rx1 = window == 1;
        ok.rx2 = window == 2;
        sc.result_case = ORG__PACKETBROKER__V3__DOWNLINK_MESSAGE_DELIVERY_STATE_CHANGE__RESULT_SUCCESS;
        sc.success = &ok;
    }
    Org__Packetbroker__Routing__V1__DownlinkMessageDeliveryStateChangeRequest req =
        ORG__PACKETBROKER__ROUTING__V1__DOWNLINK_MESSAGE_DELIVERY_STATE_CHANGE_REQUEST__INIT;
    req.state_change = &sc;
    if (unary(pb, P_FWD "ReportDownlinkMessageDeliveryState", &req.base))
        pb->ns->st.pb_reports_sent++;
}

/* Opens the routed downlink's gateway_uplink_token with the forwarder identity the message names
 * (it must be the one we published with, byte for byte, as in TTS). */
static int open_gwtoken(rn_pb_t *pb, const RoutedDownlink *rd, uint8_t *pt, size_t cap, size_t *len,
                        rh_diag_t *d)
{
    char aad[320];
    pb_token_aad(aad, sizeof aad, rd->forwarder_net_id, rd->forwarder_tenant_id,
                 rd->forwarder_cluster_id);
    return pb_token_open(&pb->key, rd->message->gateway_uplink_token.data,
                         rd->message->gateway_uplink_token.len, aad, rh_real_ms() / 1000, pt, cap,
                         len, d);
}

/* A RoutedDownlinkMessage on a forwarder stream: schedule it on our gateway, report. */
static void on_downlink(rn_pb_t *pb, const uint8_t *buf, size_t len)
{
    roamns_t *ns = pb->ns;
    RoutedDownlink *rd = org__packetbroker__v3__routed_downlink_message__unpack(NULL, len, buf);
    if (!rd) {
        RH_LOG(RH_LOG_WARN, "pb", "undecodable RoutedDownlinkMessage dropped len=%zu", len);
        return;
    }
    ns->st.pb_downlinks_received++;
    const DownlinkMessage *m = rd->message;
    if (!m) { /* T: nothing to do and nothing reported */
        org__packetbroker__v3__routed_downlink_message__free_unpacked(rd, NULL);
        return;
    }
    char gwid[24] = "";
    uint8_t plain[NS_TOKEN_HEX + 1];
    size_t pl = 0;
    ns_token_t t = {0};
    rh_diag_t d;
    rh_diag_clear(&d);
    int err = -1, window = 0;
    const char *why = "";
    if (!m->phy_payload.len || m->phy_payload.len > LW_PHY_MAX) {
        err = ORG__PACKETBROKER__V3__DOWNLINK_MESSAGE_PROCESSING_ERROR__DOWNLINK_INTERNAL;
        why = "no PHYPayload";
    } else if (open_gwtoken(pb, rd, plain, sizeof plain - 1, &pl, &d) < 0 || pl != NS_TOKEN_HEX) {
        /* T: token/conversion error -> DOWNLINK_INTERNAL */
        err = ORG__PACKETBROKER__V3__DOWNLINK_MESSAGE_PROCESSING_ERROR__DOWNLINK_INTERNAL;
        why = d.text[0] ? d.text : "gateway_uplink_token: not ours";
    } else if ((plain[pl] = 0, ns_token_decode((const char *)plain, &t, "gateway_uplink_token", &d)) < 0) {
        err = ORG__PACKETBROKER__V3__DOWNLINK_MESSAGE_PROCESSING_ERROR__DOWNLINK_INTERNAL;
        why = d.text;
    } else if (m->class_ != ORG__PACKETBROKER__V3__DOWNLINK_MESSAGE_CLASS__CLASS_A) {
        err = ORG__PACKETBROKER__V3__DOWNLINK_MESSAGE_PROCESSING_ERROR__DOWNLINK_UNKNOWN_ERROR;
        why = "only class A is supported";
    } else {
        snprintf(gwid, sizeof gwid, "eui-%016llx", (unsigned long long)t.gw_eui);
        rn_gw_t *g = rn_gw_find(ns, t.gw_eui);
        ns_dl_offer_t o = {0};
        uint8_t dr;
        if (m->rx1 && m->rx1->frequency && dr_index(ns->cfg.region, m->rx1->data_rate, false, &dr) == RH_OK) {
            o.rx1_ok = true;
            o.rx1_freq_hz = (uint32_t)m->rx1->frequency;
            o.rx1_dr = dr;
        }
        if (m->rx2 && m->rx2->frequency && dr_index(ns->cfg.region, m->rx2->data_rate, false, &dr) == RH_OK) {
            o.rx2_ok = true;
            o.rx2_freq_hz = (uint32_t)m->rx2->frequency;
            o.rx2_dr = dr;
        }
        /* T forwarder: rx1_delay in whole seconds, absent = 0 = 1 s */
        o.rx_delay1_s = m->rx1_delay && m->rx1_delay->seconds > 0 && m->rx1_delay->seconds <= 15
                            ? (unsigned)m->rx1_delay->seconds
                            : 1;
        ns_dl_plan_t p;
        int rc;
        if (!g || !g->has_pull) {
            err = ORG__PACKETBROKER__V3__DOWNLINK_MESSAGE_PROCESSING_ERROR__GATEWAY_NOT_CONNECTED;
            why = "gateway not connected";
        } else if (!o.rx1_ok && !o.rx2_ok) {
            /* T: a message that does not convert (no known data rate) -> DOWNLINK_INTERNAL */
            err = ORG__PACKETBROKER__V3__DOWNLINK_MESSAGE_PROCESSING_ERROR__DOWNLINK_INTERNAL;
            why = "neither rx1 nor rx2 has a frequency and a LoRa data rate of the region";
        } else if ((rc = ns_dl_choose(t.tmst, t.rx_ms, rn_now_ms32(), &o, ns->cfg.dl_margin_ms, &p)) < 0) {
            ns->st.downlinks_too_late++;
            /* T: any ScheduleDownlink failure is reported DOWNLINK_UNKNOWN_ERROR */
            err = ORG__PACKETBROKER__V3__DOWNLINK_MESSAGE_PROCESSING_ERROR__DOWNLINK_UNKNOWN_ERROR;
            why = "too late for RX1 and RX2";
        } else if ((rc = rn_send_txpk(ns, t.gw_eui, p.tmst, p.freq_hz, p.dr, m->phy_payload.data,
                                      m->phy_payload.len)) < 0) {
            err = ORG__PACKETBROKER__V3__DOWNLINK_MESSAGE_PROCESSING_ERROR__GATEWAY_NOT_CONNECTED;
            why = rh_strerror(rc);
        } else {
            window = p.window;
        }
    }
    char hn[7];
    lw_netid_format(rd->home_network_net_id, hn, 0);
    if (err >= 0) {
        ns->st.pb_downlink_failures++;
        RH_LOG(RH_LOG_WARN, "pb", "downlink not sent id=%s home=%s err=\"%s\"", rd->id, hn, why);
    } else {
        RH_LOG(RH_LOG_INFO, "pb", "downlink sent id=%s home=%s gw=%s rx=%d", rd->id, hn, gwid, window);
    }
    report_downlink(pb, rd, t.gw_eui, gwid[0] ? gwid : NULL, window, err);
    org__packetbroker__v3__routed_downlink_message__free_unpacked(rd, NULL);
}

/* ------------------------------------------------------------------ home network */

static void report_uplink(rn_pb_t *pb, const RoutedUplink *ru, int error)
{
    Org__Packetbroker__V3__UplinkMessageDeliveryStateChange sc =
        ORG__PACKETBROKER__V3__UPLINK_MESSAGE_DELIVERY_STATE_CHANGE__INIT;
    Org__Packetbroker__V3__UplinkMessageProcessingErrorValue ev =
        ORG__PACKETBROKER__V3__UPLINK_MESSAGE_PROCESSING_ERROR_VALUE__INIT;
    sc.id = ru->id;
    sc.home_network_net_id = ru->home_network_net_id;
    sc.home_network_cluster_id = ru->home_network_cluster_id;
    sc.home_network_tenant_id = ru->home_network_tenant_id;
    sc.forwarder_net_id = ru->forwarder_net_id;
    sc.forwarder_cluster_id = ru->forwarder_cluster_id;
    sc.forwarder_tenant_id = ru->forwarder_tenant_id;
    if (ru->message)
        sc.forwarder_uplink_token = ru->message->forwarder_uplink_token;
    sc.state = ORG__PACKETBROKER__V3__MESSAGE_DELIVERY_STATE__PROCESSED;
    if (error >= 0) {
        ev.value = (Org__Packetbroker__V3__UplinkMessageProcessingError)error;
        sc.error = &ev;
    }
    Org__Packetbroker__Routing__V1__UplinkMessageDeliveryStateChangeRequest req =
        ORG__PACKETBROKER__ROUTING__V1__UPLINK_MESSAGE_DELIVERY_STATE_CHANGE_REQUEST__INIT;
    req.state_change = &sc;
    if (unary(pb, P_HOME "ReportUplinkMessageDeliveryState", &req.base))
        pb->ns->st.pb_reports_sent++;
}

/* Publishes a class A downlink answering ru (rx1 from the uplink, rx2 the region's). */
static bool publish_downlink(rn_pb_t *pb, const RoutedUplink *ru, uint8_t ul_dr, unsigned delay_s,
                             bool highest, const uint8_t *phy, size_t len)
{
    roamns_t *ns = pb->ns;
    const UplinkMessage *um = ru->message;
    region_win_t w1, w2 = region_rx2(ns->cfg.region);
    DataRate d1, d2;
    LoRaDataRate l1, l2;
    Org__Packetbroker__V3__DownlinkMessage__RXSettings rx1 =
        ORG__PACKETBROKER__V3__DOWNLINK_MESSAGE__RXSETTINGS__INIT;
    Org__Packetbroker__V3__DownlinkMessage__RXSettings rx2 =
        ORG__PACKETBROKER__V3__DOWNLINK_MESSAGE__RXSETTINGS__INIT;
    DownlinkMessage m = ORG__PACKETBROKER__V3__DOWNLINK_MESSAGE__INIT;
    if (region_rx1(ns->cfg.region, (uint32_t)um->frequency, ul_dr, ns->cfg.core.rx1_dr_offset, &w1) ==
        RH_OK) {
        lora_dr(ns->cfg.region, w1.dr, &d1, &l1);
        rx1.frequency = w1.freq_hz;
        rx1.data_rate = &d1;
        m.rx1 = &rx1;
    }
    lora_dr(ns->cfg.region, w2.dr, &d2, &l2);
    rx2.frequency = w2.freq_hz;
    rx2.data_rate = &d2;
    m.rx2 = &rx2;
    Google__Protobuf__Duration delay = GOOGLE__PROTOBUF__DURATION__INIT;
    delay.seconds = delay_s;
    m.rx1_delay = &delay;
    m.region = pb_region(ns->cfg.region);
    m.phy_payload = (ProtobufCBinaryData){len, (uint8_t *)phy};
    m.class_ = ORG__PACKETBROKER__V3__DOWNLINK_MESSAGE_CLASS__CLASS_A;
    m.priority = highest ? ORG__PACKETBROKER__V3__DOWNLINK_MESSAGE_PRIORITY__HIGHEST
                         : ORG__PACKETBROKER__V3__DOWNLINK_MESSAGE_PRIORITY__HIGH;
    m.forwarder_uplink_token = um->forwarder_uplink_token;
    m.gateway_uplink_token = um->gateway_uplink_token;
    Org__Packetbroker__Routing__V1__PublishDownlinkMessageRequest req =
        ORG__PACKETBROKER__ROUTING__V1__PUBLISH_DOWNLINK_MESSAGE_REQUEST__INIT;
    req.home_network_net_id = ns->cfg.net_id;
    req.home_network_cluster_id = ns->cfg.pb_cluster_id;
    req.home_network_tenant_id = ns->cfg.pb_tenant_id;
    /* the forwarder's identity exactly as routed: its agent opens its token with it */
    req.forwarder_net_id = ru->forwarder_net_id;
    req.forwarder_cluster_id = ru->forwarder_cluster_id;
    req.forwarder_tenant_id = ru->forwarder_tenant_id;
    req.message = &m;
    bool ok = unary(pb, P_HOME "Publish", &req.base);
    if (ok)
        ns->st.pb_downlinks_published++;
    return ok;
}

/* The gateway as the output line shows it: EUI hex, else the plain ID. */
static void rxinfo_pb(const UplinkMessage *um, ns_rxinfo_t *o)
{
    memset(o, 0, sizeof *o);
    const Org__Packetbroker__V3__GatewayIdentifier *g = um->gateway_id;
    if (g && g->eui)
        rh_eui64_format(g->eui->value, o->id);
    else if (g && g->id_case == ORG__PACKETBROKER__V3__GATEWAY_IDENTIFIER__ID_PLAIN)
        snprintf(o->id, sizeof o->id, "%s", g->plain);
    const Org__Packetbroker__V3__UplinkMessage__GatewayMetadata *gm = um->gateway_metadata;
    if (!gm)
        return;
    if (gm->signal_quality_case ==
            ORG__PACKETBROKER__V3__UPLINK_MESSAGE__GATEWAY_METADATA__SIGNAL_QUALITY_PLAIN_SIGNAL_QUALITY &&
        gm->plain_signal_quality &&
        gm->plain_signal_quality->value_case == ORG__PACKETBROKER__V3__GATEWAY_METADATA_SIGNAL_QUALITY__VALUE_TERRESTRIAL &&
        gm->plain_signal_quality->terrestrial && gm->plain_signal_quality->terrestrial->n_antennas &&
        gm->plain_signal_quality->terrestrial->antennas[0]->value) {
        const Org__Packetbroker__V3__TerrestrialGatewayAntennaSignalQuality *q =
            gm->plain_signal_quality->terrestrial->antennas[0]->value;
        o->rssi = (int)(q->channel_rssi < 0 ? q->channel_rssi - 0.5f : q->channel_rssi + 0.5f);
        o->snr = q->snr;
        o->has_rssi = o->has_snr = true;
    }
    if (gm->localization_case ==
            ORG__PACKETBROKER__V3__UPLINK_MESSAGE__GATEWAY_METADATA__LOCALIZATION_PLAIN_LOCALIZATION &&
        gm->plain_localization &&
        gm->plain_localization->value_case == ORG__PACKETBROKER__V3__GATEWAY_METADATA_LOCALIZATION__VALUE_TERRESTRIAL &&
        gm->plain_localization->terrestrial && gm->plain_localization->terrestrial->n_antennas &&
        gm->plain_localization->terrestrial->antennas[0]->location) {
        o->has_loc = true;
        o->lat = gm->plain_localization->terrestrial->antennas[0]->location->latitude;
        o->lon = gm->plain_localization->terrestrial->antennas[0]->location->longitude;
    }
}

static uint64_t fnv64(const uint8_t *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    return h ? h : 1;
}

/* Copies of one uplink (same PHYPayload) from several gateways or forwarders, collected for
 * dedup_window_ms as a Network Server deduplicates; kept PB_SEEN_HOLD_MS after processing so
 * that late copies are recognised. */
typedef struct pb_up {
    rn_pb_t *pb;
    uint64_t key;
    RoutedUplink *copies[RN_MAX_GW_PER_UPLINK];
    size_t n;
    struct event *timer;
    bool done;
    uint64_t expires_ms;
} pb_up_t;

static double copy_snr(const UplinkMessage *um)
{
    ns_rxinfo_t g;
    rxinfo_pb(um, &g);
    return g.has_snr ? g.snr : -1000.0;
}

/* Processes the uplink through copy `ru` (the one whose gateway answers), with the gateways of
 * every copy for the output line. Returns the UplinkMessageProcessingError to report, -1 = none. */
static int process_uplink(rn_pb_t *pb, const RoutedUplink *ru, const ns_rxinfo_t *gws, size_t ngw)
{
    roamns_t *ns = pb->ns;
    const UplinkMessage *um = ru->message;
    const uint8_t *phy = um->phy_payload->plain.data;
    size_t plen = um->phy_payload->plain.len;
    char fwd[7];
    lw_netid_format(ru->forwarder_net_id, fwd, 0);
    rh_diag_t d;
    rh_diag_clear(&d);
    lw_frame_t fr;
    uint8_t ul_dr = 0;
    if (lw_frame_decode(phy, plen, &fr, &d) < 0 || dr_index(ns->cfg.region, um->data_rate, true, &ul_dr) < 0)
        return ORG__PACKETBROKER__V3__UPLINK_MESSAGE_PROCESSING_ERROR__UPLINK_INTERNAL; /* checked before */
    bool can_dl = um->gateway_uplink_token.len > 0;
    if (fr.mtype == LW_MTYPE_JOIN_REQUEST) {
        ns_join_result_t jr;
        char e[17], a[9];
        if (!ns_serves_join_eui(ns->reg, fr.u.join_request.join_eui))
            return ORG__PACKETBROKER__V3__UPLINK_MESSAGE_PROCESSING_ERROR__NOT_FOUND;
        int rc = ns_join(ns->reg, phy, plen, &jr, &d);
        rh_eui64_format(jr.dev_eui, e);
        if (rc < 0) {
            ns->st.joins_refused++;
            ns->st.roaming_home_refused++;
            if (rc == RH_EEXIST)
                ns->st.dev_nonce_replays++;
            RH_LOG(RH_LOG_WARN, "pb", "join-request refused deveui=%s forwarder=%s err=\"%s\"", e,
                   fwd, d.text);
            return rc == RH_EEXIST ? ORG__PACKETBROKER__V3__UPLINK_MESSAGE_PROCESSING_ERROR__DUPLICATE_PAYLOAD
                   : rc == RH_ENOTFOUND || rc == RH_EMIC
                       ? ORG__PACKETBROKER__V3__UPLINK_MESSAGE_PROCESSING_ERROR__NOT_FOUND
                       : ORG__PACKETBROKER__V3__UPLINK_MESSAGE_PROCESSING_ERROR__UPLINK_UNKNOWN_ERROR;
        }
        lw_devaddr_format(jr.devaddr, a, 0);
        if (!can_dl) {
            RH_LOG(RH_LOG_WARN, "pb", "join accepted but no gateway_uplink_token deveui=%s", e);
        } else if (publish_downlink(pb, ru, ul_dr, REGION_JOIN_ACCEPT_DELAY1_S, true, jr.accept,
                                    jr.accept_len)) {
            ns->st.joins_accepted++;
            ns->st.roaming_home_joins++;
            RH_LOG(RH_LOG_INFO, "pb", "join accepted deveui=%s devaddr=%s forwarder=%s id=%s", e,
                   a, fwd, ru->id);
        }
        return -1;
    }
    if (fr.mtype != LW_MTYPE_UNCONFIRMED_UP && fr.mtype != LW_MTYPE_CONFIRMED_UP)
        return ORG__PACKETBROKER__V3__UPLINK_MESSAGE_PROCESSING_ERROR__NOT_FOUND;
    ns_up_t u;
    int rc = rn_home_data(ns, phy, plen, gws, ngw, fwd, &u, &d);
    char a[9];
    lw_devaddr_format(fr.u.data.devaddr, a, 0);
    if (rc < 0) {
        RH_LOG(RH_LOG_WARN, "pb", "uplink refused devaddr=%s forwarder=%s err=\"%s\"", a, fwd, d.text);
        /* the agent's mapping of its NS's answer */
        return rc == RH_EEXIST ? ORG__PACKETBROKER__V3__UPLINK_MESSAGE_PROCESSING_ERROR__DUPLICATE_PAYLOAD
               : rc == RH_ENOTFOUND || rc == RH_EMIC
                   ? ORG__PACKETBROKER__V3__UPLINK_MESSAGE_PROCESSING_ERROR__NOT_FOUND
                   : ORG__PACKETBROKER__V3__UPLINK_MESSAGE_PROCESSING_ERROR__UPLINK_UNKNOWN_ERROR;
    }
    char e[17];
    rh_eui64_format(u.dev->cfg.dev_eui, e);
    RH_LOG(RH_LOG_INFO, "pb", "uplink deveui=%s devaddr=%s fcnt=%u fport=%d confirmed=%d forwarder=%s id=%s gws=%zu",
           e, a, (unsigned)u.fcnt, u.has_fport ? u.fport : -1, u.confirmed, fwd, ru->id, ngw);
    if ((u.confirmed || u.dev->dlq) && can_dl) {
        /* The downlink decision at once: RX1 opens 1 s after the uplink at the gateway. */
        size_t maxp = rn_dl_max_payload(ns, (uint32_t)um->frequency, ul_dr);
        ns_dl_frame_t f;
        bool built;
        size_t dropped;
        if (ns_build_downlink(u.dev, u.confirmed, maxp, &f, &built, &dropped) == RH_OK && built &&
            publish_downlink(pb, ru, ul_dr, REGION_RECEIVE_DELAY1_S, !f.has_fport, f.phy, f.len)) {
            if (f.ack)
                ns->st.acks_sent++;
            if (f.has_fport)
                ns->st.app_downlinks_sent++;
            RH_LOG(RH_LOG_INFO, "pb", "downlink published deveui=%s fcnt=%u ack=%d fport=%d", e,
                   (unsigned)f.fcnt, f.ack, f.has_fport ? f.fport : -1);
        }
    }
    return -1;
}

static void free_copies(pb_up_t *e)
{
    for (size_t i = 0; i < e->n; i++)
        org__packetbroker__v3__routed_uplink_message__free_unpacked(e->copies[i], NULL);
    e->n = 0;
}

/* The window closed: the copy with a downlink path and the best SNR answers; every copy is
 * reported (the merged ones without error, as the NS accepts a duplicate it merges). */
static void window_done(evutil_socket_t fd, short ev, void *arg)
{
    (void)fd;
    (void)ev;
    pb_up_t *e = arg;
    rn_pb_t *pb = e->pb;
    size_t best = 0;
    for (size_t i = 1; i < e->n; i++) {
        const UplinkMessage *a = e->copies[i]->message, *b = e->copies[best]->message;
        bool da = a->gateway_uplink_token.len > 0, db = b->gateway_uplink_token.len > 0;
        if ((da && !db) || (da == db && copy_snr(a) > copy_snr(b)))
            best = i;
    }
    ns_rxinfo_t gws[RN_MAX_GW_PER_UPLINK];
    for (size_t i = 0; i < e->n; i++)
        rxinfo_pb(e->copies[i]->message, &gws[i]);
    int err = process_uplink(pb, e->copies[best], gws, e->n);
    for (size_t i = 0; i < e->n; i++)
        report_uplink(pb, e->copies[i], i == best ? err : -1);
    free_copies(e);
    e->done = true;
    e->expires_ms = rh_mono_ms() + PB_SEEN_HOLD_MS;
}

static void up_free(pb_up_t *e)
{
    if (!e)
        return;
    free_copies(e);
    if (e->timer)
        event_free(e->timer);
    free(e);
}

/* A RoutedUplinkMessage on a home stream: checked, then deduplicated with its copies from other
 * gateways; window_done processes it as roamns's home network and reports. */
static void on_uplink(rn_pb_t *pb, const uint8_t *buf, size_t len)
{
    roamns_t *ns = pb->ns;
    RoutedUplink *ru = org__packetbroker__v3__routed_uplink_message__unpack(NULL, len, buf);
    if (!ru) {
        RH_LOG(RH_LOG_WARN, "pb", "undecodable RoutedUplinkMessage dropped len=%zu", len);
        return;
    }
    ns->st.pb_uplinks_received++;
    const UplinkMessage *um = ru->message;
    if (!um) { /* T: nothing to do and nothing reported */
        org__packetbroker__v3__routed_uplink_message__free_unpacked(ru, NULL);
        return;
    }
    rh_diag_t d;
    rh_diag_clear(&d);
    lw_frame_t fr;
    uint8_t ul_dr = 0;
    if (!um->phy_payload ||
        um->phy_payload->value_case != ORG__PACKETBROKER__V3__UPLINK_MESSAGE__PHYPAYLOAD__VALUE_PLAIN ||
        lw_frame_decode(um->phy_payload->plain.data, um->phy_payload->plain.len, &fr, &d) < 0 ||
        dr_index(ns->cfg.region, um->data_rate, true, &ul_dr) < 0) {
        /* T: conversion failure (no plain PHYPayload, unknown data rate) -> UPLINK_INTERNAL */
        char fwd[7];
        lw_netid_format(ru->forwarder_net_id, fwd, 0);
        RH_LOG(RH_LOG_WARN, "pb", "routed uplink not usable id=%s forwarder=%s err=\"%s\"", ru->id,
               fwd, d.text[0] ? d.text : "PHYPayload.plain or LoRa data_rate missing");
        report_uplink(pb, ru, ORG__PACKETBROKER__V3__UPLINK_MESSAGE_PROCESSING_ERROR__UPLINK_INTERNAL);
        org__packetbroker__v3__routed_uplink_message__free_unpacked(ru, NULL);
        return;
    }
    uint64_t key = fnv64(um->phy_payload->plain.data, um->phy_payload->plain.len);
    pb_up_t *e = tl_map_get(&pb->seen, key);
    if (e && (e->done || e->n == RN_MAX_GW_PER_UPLINK)) {
        ns->st.duplicates++; /* a copy after the window: merged, as the NS's deduplication does */
        report_uplink(pb, ru, -1);
        org__packetbroker__v3__routed_uplink_message__free_unpacked(ru, NULL);
        return;
    }
    if (e) {
        ns->st.duplicates++;
        e->copies[e->n++] = ru;
        return;
    }
    e = calloc(1, sizeof *e);
    if (e)
        e->timer = evtimer_new(ns->base, window_done, e);
    if (!e || !e->timer || tl_map_put(&pb->seen, key, e) < 0) {
        up_free(e);
        report_uplink(pb, ru, ORG__PACKETBROKER__V3__UPLINK_MESSAGE_PROCESSING_ERROR__UPLINK_INTERNAL);
        org__packetbroker__v3__routed_uplink_message__free_unpacked(ru, NULL);
        return;
    }
    e->pb = pb;
    e->key = key;
    e->copies[e->n++] = ru;
    unsigned w = ns->cfg.dedup_window_ms;
    struct timeval tv = {w / 1000, (w % 1000) * 1000};
    evtimer_add(e->timer, &tv);
}

/* ------------------------------------------------------------------ subscriptions */

static void sub_reply(void *arg, const uint8_t *msg, size_t len)
{
    pb_slot_t *s = arg;
    s->pb->backoff = 0;
    if (s->home)
        on_uplink(s->pb, msg, len);
    else
        on_downlink(s->pb, msg, len);
}

static void sub_done(void *arg, int status, const char *msg)
{
    pb_slot_t *s = arg;
    s->call = NULL;
    s->pb->ns->st.pb_subscribe_ends++;
    RH_LOG(RH_LOG_INFO, "pb", "subscription ended role=%s status=%s msg=\"%s\"",
           s->home ? "home" : "forwarder", grpc_status_name(status), msg);
    if (status == GRPC_UNAUTHENTICATED) {
        s->pb->token_stale = true;
        token_fetch(s->pb);
    }
    schedule_retry(s->pb); /* T: any stream end makes the agent re-subscribe with back-off */
}

static grpc_ccall_t *subscribe(rn_pb_t *pb, pb_slot_t *s)
{
    const ns_config_t *c = &pb->ns->cfg;
    uint8_t *buf;
    size_t n;
    if (!s->home) {
        Org__Packetbroker__Routing__V1__SubscribeForwarderRequest r =
            ORG__PACKETBROKER__ROUTING__V1__SUBSCRIBE_FORWARDER_REQUEST__INIT;
        r.forwarder_net_id = c->net_id;
        r.forwarder_cluster_id = c->pb_cluster_id;
        r.forwarder_tenant_id = c->pb_tenant_id;
        r.group = pb->group;
        n = protobuf_c_message_get_packed_size(&r.base);
        if (!(buf = malloc(n + 1)))
            return NULL;
        protobuf_c_message_pack(&r.base, buf);
    } else {
        /* T getSubscriptionFilters: mac{dev_addr_prefixes = home-network.dev-addr-prefixes},
         * then join_request{eui_prefixes = [{}]} (all join-requests) */
        Org__Packetbroker__V3__DevAddrPrefix pfx[NS_MAX_BLOCKS], *ppfx[NS_MAX_BLOCKS];
        for (size_t i = 0; i < c->core.n_blocks; i++) {
            org__packetbroker__v3__dev_addr_prefix__init(&pfx[i]);
            pfx[i].value = c->core.blocks[i].value;
            pfx[i].length = c->core.blocks[i].len;
            ppfx[i] = &pfx[i];
        }
        Org__Packetbroker__V3__RoutingFilter__MACPayload mac =
            ORG__PACKETBROKER__V3__ROUTING_FILTER__MACPAYLOAD__INIT;
        mac.n_dev_addr_prefixes = c->core.n_blocks;
        mac.dev_addr_prefixes = ppfx;
        Org__Packetbroker__V3__RoutingFilter f1 = ORG__PACKETBROKER__V3__ROUTING_FILTER__INIT;
        f1.message_case = ORG__PACKETBROKER__V3__ROUTING_FILTER__MESSAGE_MAC;
        f1.mac = &mac;
        Org__Packetbroker__V3__RoutingFilter__JoinRequest__EUIPrefixes all =
            ORG__PACKETBROKER__V3__ROUTING_FILTER__JOIN_REQUEST__EUIPREFIXES__INIT;
        Org__Packetbroker__V3__RoutingFilter__JoinRequest__EUIPrefixes *pall[1] = {&all};
        Org__Packetbroker__V3__RoutingFilter__JoinRequest jr =
            ORG__PACKETBROKER__V3__ROUTING_FILTER__JOIN_REQUEST__INIT;
        jr.n_eui_prefixes = 1;
        jr.eui_prefixes = pall;
        Org__Packetbroker__V3__RoutingFilter f2 = ORG__PACKETBROKER__V3__ROUTING_FILTER__INIT;
        f2.message_case = ORG__PACKETBROKER__V3__ROUTING_FILTER__MESSAGE_JOIN_REQUEST;
        f2.join_request = &jr;
        Org__Packetbroker__V3__RoutingFilter *filters[2] = {&f1, &f2};
        Org__Packetbroker__Routing__V1__SubscribeHomeNetworkRequest r =
            ORG__PACKETBROKER__ROUTING__V1__SUBSCRIBE_HOME_NETWORK_REQUEST__INIT;
        r.home_network_net_id = c->net_id;
        r.home_network_cluster_id = c->pb_cluster_id;
        r.home_network_tenant_id = c->pb_tenant_id;
        r.n_filters = 2;
        r.filters = filters;
        r.group = pb->group;
        n = protobuf_c_message_get_packed_size(&r.base);
        if (!(buf = malloc(n + 1)))
            return NULL;
        protobuf_c_message_pack(&r.base, buf);
    }
    grpc_ccall_t *k = grpc_client_call(pb->conn, s->home ? P_HOME "Subscribe" : P_FWD "Subscribe",
                                       buf, n, pb->token, 0, sub_reply, sub_done, s);
    free(buf);
    return k;
}

/* Makes sure there is a token, a live connection and every subscription stream. */
static void ensure_cb(evutil_socket_t fd, short ev, void *arg)
{
    (void)fd;
    (void)ev;
    rn_pb_t *pb = arg;
    roamns_t *ns = pb->ns;
    if (ns->stopping)
        return;
    if (!pb->token || pb->token_stale)
        token_fetch(pb); /* the current token (if any) serves until the new one arrives */
    if (!pb->token)
        return;
    if (pb->conn && !grpc_client_alive(pb->conn) && grpc_client_calls(pb->conn) == 0) {
        grpc_client_free(pb->conn);
        pb->conn = NULL;
    }
    if (!pb->conn) {
        for (size_t i = 0; i < 2 * PB_STREAMS; i++)
            pb->slots[i].call = NULL;
        rh_diag_t d;
        rh_diag_clear(&d);
        pb->conn = grpc_client_new(ns->base, ns->cfg.pb_host, ns->cfg.pb_port, pb->tls, 0, &d);
        if (!pb->conn) {
            RH_LOG(RH_LOG_WARN, "pb", "data plane not reachable err=\"%s\"", d.text);
            schedule_retry(pb);
            return;
        }
        ns->st.pb_connects++;
    }
    if (!grpc_client_alive(pb->conn)) { /* GOAWAY: wait for its calls to end, then re-dial */
        schedule_retry(pb);
        return;
    }
    for (size_t i = 0; i < 2 * PB_STREAMS; i++) {
        pb_slot_t *s = &pb->slots[i];
        if (s->call || (s->home ? !ns->cfg.pb_home : !ns->cfg.pb_forwarder))
            continue;
        if (!(s->call = subscribe(pb, s))) {
            schedule_retry(pb);
            return;
        }
    }
}

/* Forwarder: Mapper/UpdateGateway for a gateway (its EUI and plain ID, location when known,
 * online with the TTL), as TTS's Gateway Server does through the agent for each connected
 * gateway. */
static bool update_gateway(rn_pb_t *pb, const rn_gw_t *g, bool online)
{
    const ns_config_t *c = &pb->ns->cfg;
    char gwid[24];
    snprintf(gwid, sizeof gwid, "eui-%016llx", (unsigned long long)g->eui);
    Google__Protobuf__UInt64Value eui = GOOGLE__PROTOBUF__UINT64_VALUE__INIT;
    eui.value = g->eui;
    Org__Packetbroker__V3__GatewayIdentifier gid = ORG__PACKETBROKER__V3__GATEWAY_IDENTIFIER__INIT;
    gid.eui = &eui;
    gid.id_case = ORG__PACKETBROKER__V3__GATEWAY_IDENTIFIER__ID_PLAIN;
    gid.plain = gwid;
    Org__Packetbroker__V3__Location loc = ORG__PACKETBROKER__V3__LOCATION__INIT;
    Org__Packetbroker__V3__GatewayLocation__Terrestrial t =
        ORG__PACKETBROKER__V3__GATEWAY_LOCATION__TERRESTRIAL__INIT;
    Org__Packetbroker__V3__GatewayLocation gl = ORG__PACKETBROKER__V3__GATEWAY_LOCATION__INIT;
    Org__Packetbroker__V3__GatewayLocationValue glv = ORG__PACKETBROKER__V3__GATEWAY_LOCATION_VALUE__INIT;
    Google__Protobuf__BoolValue on = GOOGLE__PROTOBUF__BOOL_VALUE__INIT;
    Google__Protobuf__Duration ttl = GOOGLE__PROTOBUF__DURATION__INIT;
    Org__Packetbroker__Mapping__V2__UpdateGatewayRequest req =
        ORG__PACKETBROKER__MAPPING__V2__UPDATE_GATEWAY_REQUEST__INIT;
    req.forwarder_net_id = c->net_id;
    req.forwarder_tenant_id = c->pb_tenant_id;
    req.forwarder_cluster_id = c->pb_cluster_id;
    req.forwarder_gateway_id = &gid;
    if (g->has_loc) {
        loc.latitude = g->lat;
        loc.longitude = g->lon;
        t.location = &loc;
        gl.value_case = ORG__PACKETBROKER__V3__GATEWAY_LOCATION__VALUE_TERRESTRIAL;
        gl.terrestrial = &t;
        glv.location = &gl;
        req.gateway_location = &glv;
    }
    on.value = online;
    req.online = &on;
    if (online) {
        ttl.seconds = PB_GW_ONLINE_TTL_S;
        req.online_ttl = &ttl;
    }
    bool ok = unary(pb, P_MAPPER, &req.base);
    if (ok)
        pb->ns->st.pb_gateway_updates++;
    return ok;
}

/* Sends the Mapper updates that are due: a gateway newly online, a location newly known, a
 * gateway gone silent, or 10 min +-20 % after the last one. */
static void mapper_sweep(rn_pb_t *pb, uint64_t now)
{
    roamns_t *ns = pb->ns;
    if (!ns->cfg.pb_forwarder || !pb->token || !grpc_client_alive(pb->conn))
        return;
    for (size_t i = 0; i < ns->ngws; i++) {
        const rn_gw_t *g = &ns->gws[i];
        pb_gw_due_t *due = tl_map_get(&pb->gw_due, g->eui);
        if (!due) {
            if (!(due = calloc(1, sizeof *due)))
                return;
            if (tl_map_put(&pb->gw_due, g->eui, due) < 0) {
                free(due);
                return;
            }
        }
        bool online = g->has_pull && now - g->last_seen_ms < PB_GW_ONLINE_MS;
        bool send = online ? !due->online_sent || (g->has_loc && !due->loc_sent) || now >= due->due_ms
                           : due->online_sent; /* went silent: say so once */
        if (!send)
            continue;
        if (!update_gateway(pb, g, online))
            return;
        uint32_t r;
        RAND_bytes((unsigned char *)&r, sizeof r);
        due->due_ms = now + PB_GW_UPDATE_MS * 4 / 5 + (uint64_t)(r % (PB_GW_UPDATE_MS * 2 / 5));
        due->loc_sent = due->loc_sent || g->has_loc;
        due->online_sent = online;
    }
}

static void sweep_cb(evutil_socket_t fd, short ev, void *arg)
{
    (void)fd;
    (void)ev;
    rn_pb_t *pb = arg;
    uint64_t now = rh_mono_ms(), kill[64];
    size_t n = 0;
    for (size_t i = 0; i < pb->seen.cap && n < 64; i++) {
        const pb_up_t *e = pb->seen.vals ? pb->seen.vals[i] : NULL;
        if (e && e->done && e->expires_ms <= now)
            kill[n++] = pb->seen.keys[i];
    }
    for (size_t i = 0; i < n; i++) {
        pb_up_t *e = tl_map_get(&pb->seen, kill[i]);
        tl_map_del(&pb->seen, kill[i]);
        up_free(e);
    }
    mapper_sweep(pb, now);
}

/* ------------------------------------------------------------------ start / stop */

int rn_pb_start(roamns_t *ns, rh_diag_t *diag)
{
    if (!ns->cfg.has_pb)
        return RH_OK;
    rn_pb_t *pb = calloc(1, sizeof *pb);
    if (!pb)
        return rh_diag_fail(diag, RH_ENOMEM, "packet_broker: out of memory");
    ns->pb = pb;
    pb->ns = ns;
    const ns_config_t *c = &ns->cfg;
    if (c->pb_token_key_len) {
        memcpy(pb->key.k, c->pb_token_key, sizeof pb->key.k);
    } else if (pb_token_key_init(&pb->key, NULL, diag) < 0) { /* T: random when token-key unset */
        return RH_ECRYPTO;
    }
    snprintf(pb->group, sizeof pb->group, "%s", c->pb_cluster_id[0] ? c->pb_cluster_id : "default");
    if (!c->pb_insecure &&
        !(pb->tls = grpc_client_tls_ctx(c->pb_tls_ca_file, "packet_broker.tls_ca_file", diag)))
        return RH_ECRYPTO;
    for (size_t i = 0; i < 2 * PB_STREAMS; i++)
        pb->slots[i] = (pb_slot_t){pb, i >= PB_STREAMS, NULL};
    struct evhttp_uri *u = evhttp_uri_parse(c->pb_token_url);
    const char *host = u ? evhttp_uri_get_host(u) : NULL;
    if (!host || !*host) {
        evhttp_uri_free(u);
        return rh_diag_fail(diag, RH_EINVAL, "packet_broker.token_url: no host");
    }
    snprintf(pb->tok_host, sizeof pb->tok_host, "%s", host);
    int port = evhttp_uri_get_port(u);
    pb->tok_port = (uint16_t)(port > 0 ? port : 80);
    const char *path = evhttp_uri_get_path(u), *q = evhttp_uri_get_query(u);
    snprintf(pb->tok_path, sizeof pb->tok_path, "%s%s%s", path && *path ? path : "/", q ? "?" : "",
             q ? q : "");
    evhttp_uri_free(u);
    pb->tok_conn = evhttp_connection_base_new(ns->base, NULL, pb->tok_host, pb->tok_port);
    pb->ensure_ev = evtimer_new(ns->base, ensure_cb, pb);
    pb->refresh_ev = evtimer_new(ns->base, refresh_cb, pb);
    pb->sweep_ev = event_new(ns->base, -1, EV_PERSIST, sweep_cb, pb);
    if (!pb->tok_conn || !pb->ensure_ev || !pb->refresh_ev || !pb->sweep_ev)
        return rh_diag_fail(diag, RH_ENOMEM, "packet_broker: out of memory");
    evhttp_connection_set_timeout(pb->tok_conn, 5);
    struct timeval tv = {0, 500000};
    event_add(pb->sweep_ev, &tv);
    token_fetch(pb);
    return RH_OK;
}

void rn_pb_stop(roamns_t *ns)
{
    rn_pb_t *pb = ns->pb;
    if (!pb)
        return;
    grpc_client_free(pb->conn); /* open calls dropped without callbacks */
    SSL_CTX_free(pb->tls);
    if (pb->tok_conn)
        evhttp_connection_free(pb->tok_conn); /* a pending token request is cancelled */
    if (pb->ensure_ev)
        event_free(pb->ensure_ev);
    if (pb->refresh_ev)
        event_free(pb->refresh_ev);
    if (pb->sweep_ev)
        event_free(pb->sweep_ev);
    for (size_t i = 0; i < pb->seen.cap; i++) /* copies in a window: dropped unreported */
        if (pb->seen.vals && pb->seen.vals[i])
            up_free(pb->seen.vals[i]);
    tl_map_fini(&pb->seen);
    for (size_t i = 0; i < pb->gw_due.cap; i++)
        if (pb->gw_due.vals && pb->gw_due.vals[i])
            free(pb->gw_due.vals[i]);
    tl_map_fini(&pb->gw_due);
    if (pb->token) {
        memset(pb->token, 0, strlen(pb->token));
        free(pb->token);
    }
    memset(&pb->key, 0, sizeof pb->key);
    free(pb);
    ns->pb = NULL;
}
