/*
 * rn_hub.c — roamns's outbound TS002 side: every POST to the hub goes through the project's
 * client pool (peers/peer_client.h: persistent connections, deadline, back-off) to one
 * endpoint built from the configuration (peers/peer_endpoint.h). Sync hub: the answer is the
 * HTTP response body. Async hub: an empty 2xx acknowledges, the answer arrives later as a POST
 * to our TS002 server (rn_ts002.c) and is matched here by TransactionID.
 * Invariant: a TransactionID is pending from the POST of a request until its answer arrives,
 * the POST fails, or hub.timeout_ms + 5 s have passed (swept).
 */
#include "roamns.h"

#include "peer_client.h"
#include "peer_endpoint.h"
#include "rh_log.h"
#include "rh_time.h"

#include <stdlib.h>
#include <string.h>

typedef struct rn_pending {
    uint32_t txid;
    bi_msg_type_t type;
    uint64_t expires_ms;
} rn_pending_t;

typedef struct post_ctx {
    roamns_t *ns;
    uint32_t txid;
    bi_msg_type_t type;
    bool is_answer;
} post_ctx_t;

bi_dialect_t rn_hub_dialect(const roamns_t *ns)
{
    bi_dialect_t d = {ns->cfg.hub_protocol ? BI_VERSION_1_1 : BI_VERSION_1_0,
                      ns->cfg.hub_dialect == NS_DIALECT_HELIUM ? BI_HEX_UPPER : BI_HEX_LOWER,
                      BI_REGION_NAMES_RP002, false, ns->cfg.hub_dialect == NS_DIALECT_CHIRPSTACK};
    return d;
}

int rn_hub_start(roamns_t *ns, rh_diag_t *diag)
{
    ns->next_txid = (uint32_t)(rh_real_ns() & 0x3FFFFFFF) | 1u;
    if (!ns->cfg.has_hub)
        return RH_OK;
    Roamhub__V1__Endpoint rec;
    roamhub__v1__endpoint__init(&rec);
    char auth[512];
    rec.id = "hub";
    /* NetID the endpoint "serves": metadata only for this client; the hub serves every NetID. */
    rec.net_id = ns->cfg.hub_receiver_id ? ns->cfg.hub_receiver_id
                                         : (ns->cfg.net_id ? ns->cfg.net_id : 1);
    rec.url = ns->cfg.hub_url;
    rec.protocol_version = ns->cfg.hub_protocol ? ROAMHUB__V1__PROTOCOL_VERSION__PROTOCOL_VERSION_1_1
                                                : ROAMHUB__V1__PROTOCOL_VERSION__PROTOCOL_VERSION_1_0;
    rec.async_answers = ns->cfg.hub_async;
    rec.timeout_ms = ns->cfg.hub_timeout_ms;
    if (ns->cfg.hub_api_key) {
        snprintf(auth, sizeof auth, "Bearer %s", ns->cfg.hub_api_key);
        rec.authorization = auth;
    }
    int rc = peer_endpoint_new(&rec, 0, &ns->hub_ep, diag);
    memset(auth, 0, sizeof auth);
    if (rc < 0)
        return rc;
    peer_client_opts_t o = {0};
    o.failure_threshold = 5;
    o.backoff_base_ms = 100;
    o.backoff_max_ms = 2000;
    if ((rc = peer_client_new(ns->base, &o, &ns->client)) < 0)
        return rh_diag_fail(diag, rc, "hub: client pool could not be created");
    return RH_OK;
}

void rn_hub_stop(roamns_t *ns)
{
    peer_client_free(ns->client); /* outstanding callbacks run now with RH_EIO */
    ns->client = NULL;
    peer_endpoint_free(ns->hub_ep);
    ns->hub_ep = NULL;
    for (size_t i = 0; i < ns->pending.cap; i++)
        if (ns->pending.vals && ns->pending.vals[i])
            free(ns->pending.vals[i]);
    tl_map_fini(&ns->pending);
}

void rn_hub_sweep(roamns_t *ns)
{
    uint64_t now = rh_mono_ms();
    uint32_t kill[64];
    size_t n = 0;
    for (size_t i = 0; i < ns->pending.cap && n < 64; i++) {
        rn_pending_t *p = ns->pending.vals ? ns->pending.vals[i] : NULL;
        if (p && p->expires_ms <= now)
            kill[n++] = p->txid;
    }
    for (size_t i = 0; i < n; i++) {
        rn_pending_t *p = tl_map_get(&ns->pending, kill[i]);
        tl_map_del(&ns->pending, kill[i]);
        if (p)
            RH_LOG(RH_LOG_WARN, "hub", "no answer from the hub type=%s txid=%u",
                   bi_msg_type_name(p->type), p->txid);
        free(p);
    }
}

bool rn_hub_pending(roamns_t *ns, uint32_t txid, bool take)
{
    rn_pending_t *p = tl_map_get(&ns->pending, txid);
    if (!p)
        return false;
    if (take) {
        tl_map_del(&ns->pending, txid);
        free(p);
    }
    return true;
}

int rn_hub_new_req(roamns_t *ns, bi_msg_type_t type, bi_id_t receiver, bi_msg_t **out)
{
    bi_dialect_t d = rn_hub_dialect(ns);
    uint32_t txid = ns->next_txid++;
    if (!txid)
        txid = ns->next_txid++;
    return bi_msg_new(type, d.version, (bi_id_t){BI_ID_NETID, ns->cfg.net_id}, receiver, txid, out);
}

static void post_cb(int status, int http_status, const uint8_t *body, size_t len, void *arg)
{
    post_ctx_t *c = arg;
    roamns_t *ns = c->ns;
    const char *tn = bi_msg_type_name(c->type);
    if (status != RH_OK) {
        RH_LOG(RH_LOG_WARN, "hub", "POST to the hub failed type=%s txid=%u err=%s", tn, c->txid,
               rh_strerror(status));
        if (!c->is_answer)
            rn_hub_pending(ns, c->txid, true);
        free(c);
        return;
    }
    if (http_status < 200 || http_status > 299) {
        RH_LOG(RH_LOG_WARN, "hub", "hub refused the message type=%s txid=%u status=%d body=\"%.120s\"",
               tn, c->txid, http_status, body ? (const char *)body : "");
        if (!c->is_answer)
            rn_hub_pending(ns, c->txid, true);
        free(c);
        return;
    }
    if (c->is_answer || len == 0) { /* delivered; an async answer comes later as a POST */
        free(c);
        return;
    }
    bi_msg_t *m = NULL;
    bi_error_t err;
    if (bi_msg_decode((const char *)body, len, &m, &err) < 0) {
        RH_LOG(RH_LOG_WARN, "hub", "unreadable answer from the hub type=%s txid=%u err=\"%s\"", tn,
               c->txid, err.description);
        rn_hub_pending(ns, c->txid, true);
        free(c);
        return;
    }
    if (bi_msg_transaction_id(m) != c->txid || !bi_msg_type_is_answer(bi_msg_type(m))) {
        RH_LOG(RH_LOG_WARN, "hub", "answer does not match the request type=%s txid=%u got=%s/%u", tn,
               c->txid, bi_msg_type_name(bi_msg_type(m)), bi_msg_transaction_id(m));
    } else if (rn_hub_pending(ns, c->txid, true)) {
        rn_handle_answer(ns, m);
    }
    bi_msg_free(m);
    free(c);
}

static int post(roamns_t *ns, bi_msg_t *msg, bool is_answer)
{
    if (!ns->client || !ns->hub_ep) {
        bi_msg_free(msg);
        return RH_EINVAL;
    }
    char *buf;
    size_t len;
    bi_dialect_t d = rn_hub_dialect(ns);
    post_ctx_t *c = calloc(1, sizeof *c);
    int rc = c ? bi_msg_encode(msg, &d, &buf, &len) : RH_ENOMEM;
    if (rc < 0) {
        free(c);
        bi_msg_free(msg);
        return rc;
    }
    c->ns = ns;
    c->txid = bi_msg_transaction_id(msg);
    c->type = bi_msg_type(msg);
    /* ChirpStack's use_target_role_suffix: the target role after the configured URL (which ends
     * in '/' here, so "//sns"); HomeNSReq goes to its Join Server client without a suffix */
    char path[300];
    const char *req_path = NULL;
    if (ns->cfg.hub_dialect == NS_DIALECT_CHIRPSTACK && c->type != BI_MT_HOME_NS_REQ) {
        bool to_sns = c->type == BI_MT_PR_START_REQ ||
                      (c->type == BI_MT_XMIT_DATA_REQ && (bi_msg_fields(msg)->present & BI_F_UL_META));
        snprintf(path, sizeof path, "%s%s", ns->hub_ep->path, to_sns ? "/sns" : "/fns");
        req_path = path;
    }
    c->is_answer = is_answer;
    bi_msg_free(msg);
    if (!is_answer) {
        rn_pending_t *p = calloc(1, sizeof *p);
        if (p) {
            p->txid = c->txid;
            p->type = c->type;
            p->expires_ms = rh_mono_ms() + ns->cfg.hub_timeout_ms + 5000;
            rn_pending_t *old = tl_map_get(&ns->pending, p->txid);
            if (tl_map_put(&ns->pending, p->txid, p) < 0) {
                free(p);
            } else {
                free(old);
            }
        }
    }
    rc = peer_client_post(ns->client, ns->hub_ep, req_path, buf, len, NULL, 0, post_cb, c);
    bi_buf_free(buf);
    if (rc < 0) {
        RH_LOG(RH_LOG_WARN, "hub", "POST to the hub not sent type=%s txid=%u err=%s",
               bi_msg_type_name(c->type), c->txid, rh_strerror(rc));
        if (!is_answer)
            rn_hub_pending(ns, c->txid, true);
        free(c);
    }
    return rc;
}

int rn_hub_post(roamns_t *ns, bi_msg_t *msg) { return post(ns, msg, false); }
int rn_hub_post_answer(roamns_t *ns, bi_msg_t *msg) { return post(ns, msg, true); }
