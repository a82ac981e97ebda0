/*
 * ns_core.c — registry, join server, uplink verification, downlink building (see ns_core.h).
 *
 * The registry indexes devices in two tl_map_t hash tables: DevEUI -> device and DevAddr -> the
 * first device of its chain.
 */
#include "ns_core.h"

#include "bi_types.h"
#include "region.h"
#include "rh_hex.h"
#include "tl_util.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- registry */

struct ns_registry {
    ns_opts_t o;
    ns_device_t *devs;
    size_t n;
    tl_map_t by_eui, by_addr;
    uint32_t next_nwkaddr; /* allocation cursor inside the blocks */
};

int ns_eui_prefix_parse(const char *s, ns_eui_prefix_t *p, rh_diag_t *diag)
{
    const char *slash = strchr(s, '/');
    size_t hl = slash ? (size_t)(slash - s) : strlen(s);
    uint64_t v;
    unsigned len = 64;
    if (rh_hex_parse_be(s, hl, 8, &v, "JoinEUI", NULL) < 0)
        return rh_diag_fail(diag, RH_EINVAL, "JoinEUI: \"%.40s\" is not 16 hex digits[/len]", s);
    if (slash) {
        char *end;
        unsigned long l = strtoul(slash + 1, &end, 10);
        if (*end || end == slash + 1 || l > 64)
            return rh_diag_fail(diag, RH_EINVAL, "JoinEUI: prefix length must be 0..64");
        len = (unsigned)l;
    }
    if (len < 64 && len > 0 && (v << len) != 0)
        return rh_diag_fail(diag, RH_EINVAL, "JoinEUI: bits beyond the prefix length are set");
    if (len == 0 && v != 0)
        return rh_diag_fail(diag, RH_EINVAL, "JoinEUI: bits beyond the prefix length are set");
    p->value = v;
    p->len = (uint8_t)len;
    return RH_OK;
}

static void dev_fini(ns_device_t *d)
{
    lw_aes128_key_fini(&d->app_key);
    lw_aes128_key_fini(&d->nwk_s_key);
    lw_aes128_key_fini(&d->app_s_key);
    free(d->nonces);
    for (ns_dl_item_t *it = d->dlq, *nx; it; it = nx) {
        nx = it->next;
        free(it);
    }
}

static int addr_link(ns_registry_t *r, ns_device_t *d)
{
    ns_device_t *head = tl_map_get(&r->by_addr, d->devaddr);
    d->addr_next = head;
    return tl_map_put(&r->by_addr, d->devaddr, d);
}

static void addr_unlink(ns_registry_t *r, ns_device_t *d)
{
    ns_device_t *head = tl_map_get(&r->by_addr, d->devaddr);
    if (head == d) {
        if (d->addr_next)
            tl_map_put(&r->by_addr, d->devaddr, d->addr_next);
        else
            tl_map_del(&r->by_addr, d->devaddr);
    } else {
        for (ns_device_t *p = head; p; p = p->addr_next)
            if (p->addr_next == d) {
                p->addr_next = d->addr_next;
                break;
            }
    }
    d->addr_next = NULL;
}

int ns_registry_new(const ns_opts_t *opts, const devcfg_t *devs, size_t n, ns_registry_t **out,
                    rh_diag_t *diag)
{
    *out = NULL;
    if (opts->n_blocks == 0 || opts->n_blocks > NS_MAX_BLOCKS)
        return rh_diag_fail(diag, RH_EINVAL, "dev_addr_blocks: 1..%d blocks needed", NS_MAX_BLOCKS);
    if (opts->net_id > 0xFFFFFF)
        return rh_diag_fail(diag, RH_EINVAL, "net_id: more than 24 bits");
    if (opts->n_join_euis > NS_MAX_JOIN_EUIS || opts->rx1_dr_offset > 7 || opts->rx2_dr > 15)
        return rh_diag_fail(diag, RH_EINVAL, "join settings: out of range");
    ns_registry_t *r = calloc(1, sizeof *r);
    if (!r)
        return RH_ENOMEM;
    r->o = *opts;
    if (r->o.rx_delay == 0)
        r->o.rx_delay = 1;
    r->devs = calloc(n ? n : 1, sizeof *r->devs);
    if (!r->devs || tl_map_init(&r->by_eui, n) < 0 || tl_map_init(&r->by_addr, n) < 0) {
        free(r->devs);
        free(r);
        return RH_ENOMEM;
    }
    r->next_nwkaddr = 1;
    int rc = RH_OK;
    for (size_t i = 0; i < n; i++) {
        ns_device_t *d = &r->devs[i];
        r->n = i + 1;
        d->cfg = devs[i];
        if (devs[i].otaa) {
            if ((rc = lw_aes128_key_init(&d->app_key, devs[i].app_key)) < 0)
                goto fail;
        } else {
            d->active = true;
            d->devaddr = devs[i].dev_addr;
            d->fcnt_up = devs[i].fcnt_up;
            d->fcnt_down = devs[i].fcnt_down;
            if ((rc = lw_aes128_key_init(&d->nwk_s_key, devs[i].nwk_s_key)) < 0 ||
                (rc = lw_aes128_key_init(&d->app_s_key, devs[i].app_s_key)) < 0)
                goto fail;
            if ((rc = addr_link(r, d)) < 0)
                goto fail;
        }
        if ((rc = tl_map_put(&r->by_eui, devs[i].dev_eui, d)) < 0)
            goto fail;
    }
    *out = r;
    return RH_OK;
fail:
    ns_registry_free(r);
    return rc == RH_ECRYPTO ? rh_diag_fail(diag, rc, "device keys: OpenSSL failed") : rc;
}

void ns_registry_free(ns_registry_t *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++)
        dev_fini(&r->devs[i]);
    free(r->devs);
    tl_map_fini(&r->by_eui);
    tl_map_fini(&r->by_addr);
    free(r);
}

const ns_opts_t *ns_registry_opts(const ns_registry_t *r) { return &r->o; }
size_t ns_registry_count(const ns_registry_t *r) { return r->n; }
ns_device_t *ns_registry_device(ns_registry_t *r, size_t i) { return i < r->n ? &r->devs[i] : NULL; }
ns_device_t *ns_find_eui(ns_registry_t *r, uint64_t e) { return tl_map_get(&r->by_eui, e); }
ns_device_t *ns_find_addr(ns_registry_t *r, uint32_t a) { return tl_map_get(&r->by_addr, a); }

bool ns_owns_devaddr(const ns_registry_t *r, uint32_t a)
{
    for (size_t i = 0; i < r->o.n_blocks; i++)
        if (lw_prefix_contains(r->o.blocks[i], a))
            return true;
    return false;
}

bool ns_serves_join_eui(const ns_registry_t *r, uint64_t e)
{
    for (size_t i = 0; i < r->o.n_join_euis; i++) {
        ns_eui_prefix_t p = r->o.join_euis[i];
        if (p.len == 0 || ((e ^ p.value) >> (64 - p.len)) == 0)
            return true;
    }
    return false;
}

/* ---------------------------------------------------------------- join */

/* Inserts a DevNonce into the sorted set; RH_EEXIST when present. */
static int nonce_add(ns_device_t *d, uint16_t nonce)
{
    size_t lo = 0, hi = d->n_nonces;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (d->nonces[mid] == nonce)
            return RH_EEXIST;
        if (d->nonces[mid] < nonce)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (d->n_nonces == d->cap_nonces) {
        size_t nc = d->cap_nonces ? d->cap_nonces * 2 : 8;
        uint16_t *nn = realloc(d->nonces, nc * sizeof *nn);
        if (!nn)
            return RH_ENOMEM;
        d->nonces = nn;
        d->cap_nonces = nc;
    }
    memmove(d->nonces + lo + 1, d->nonces + lo, (d->n_nonces - lo) * sizeof *d->nonces);
    d->nonces[lo] = nonce;
    d->n_nonces++;
    return RH_OK;
}

static int alloc_devaddr(ns_registry_t *r, uint32_t *out)
{
    /* Walk the blocks' NwkAddr space from the cursor; every address is tried at most once. */
    uint64_t total = 0;
    for (size_t b = 0; b < r->o.n_blocks; b++)
        total += r->o.blocks[b].len == 0 ? (1ull << 32) : (1ull << (32 - r->o.blocks[b].len));
    for (uint64_t tries = 0; tries < total && tries < (1u << 24); tries++) {
        uint64_t k = (r->next_nwkaddr++) % total;
        for (size_t b = 0; b < r->o.n_blocks; b++) {
            lw_devaddr_prefix_t p = r->o.blocks[b];
            uint64_t size = p.len == 0 ? (1ull << 32) : (1ull << (32 - p.len));
            if (k < size) {
                uint32_t a = p.value | (uint32_t)k;
                if (!ns_find_addr(r, a)) {
                    *out = a;
                    return RH_OK;
                }
                break;
            }
            k -= size;
        }
    }
    return RH_EFULL;
}

int ns_join(ns_registry_t *r, const uint8_t *phy, size_t len, ns_join_result_t *out,
            rh_diag_t *diag)
{
    memset(out, 0, sizeof *out);
    lw_frame_t f;
    int rc = lw_frame_decode(phy, len, &f, diag);
    if (rc < 0)
        return rc;
    if (f.mtype != LW_MTYPE_JOIN_REQUEST)
        return rh_diag_fail(diag, RH_EINVAL, "MHDR.MType: %s is not a join-request",
                            lw_mtype_name(f.mtype));
    char eui[17];
    out->dev_eui = f.u.join_request.dev_eui;
    out->join_eui = f.u.join_request.join_eui;
    out->dev_nonce = f.u.join_request.dev_nonce;
    rh_eui64_format(out->dev_eui, eui);
    ns_device_t *d = ns_find_eui(r, out->dev_eui);
    if (!d || !d->cfg.otaa)
        return rh_diag_fail(diag, RH_ENOTFOUND, "DevEUI: %s is not an OTAA device of this network",
                            eui);
    if (d->cfg.join_eui != out->join_eui)
        return rh_diag_fail(diag, RH_ENOTFOUND, "JoinEUI: not the JoinEUI of device %s", eui);
    rc = lw_cmac_mic_verify(&d->app_key, phy, len);
    if (rc == RH_EMIC)
        return rh_diag_fail(diag, RH_EMIC, "MIC: join-request MIC does not match (device %s)", eui);
    if (rc < 0)
        return rh_diag_fail(diag, rc, "MIC: join-request MIC check failed");
    rc = nonce_add(d, out->dev_nonce);
    if (rc == RH_EEXIST)
        return rh_diag_fail(diag, RH_EEXIST, "DevNonce: %u was already used by device %s",
                            (unsigned)out->dev_nonce, eui);
    if (rc < 0)
        return rc;
    uint32_t addr = d->devaddr;
    if (!d->devaddr || !ns_owns_devaddr(r, addr)) {
        if ((rc = alloc_devaddr(r, &addr)) < 0)
            return rh_diag_fail(diag, RH_EFULL, "DevAddr: no free address in the DevAddr blocks");
    }
    uint32_t jn = d->join_nonce & 0xFFFFFF;
    d->join_nonce = (jn + 1) & 0xFFFFFF;
    lw_join_accept_t ja = {.join_nonce = jn, .home_netid = r->o.net_id, .devaddr = addr,
                           .dl_settings = (uint8_t)((r->o.rx1_dr_offset & 7) << 4 | (r->o.rx2_dr & 15)),
                           .rx_delay = r->o.rx_delay};
    uint8_t plain[LW_JOIN_ACCEPT_LEN];
    size_t plen;
    if ((rc = lw_join_accept_encode(&ja, plain, sizeof plain, &plen, diag)) < 0)
        return rc;
    if ((rc = lw_cmac_mic(&d->app_key, plain, plen - 4, plain + plen - 4)) < 0 ||
        (rc = lw_join_accept_encrypt(&d->app_key, plain, plen, out->accept)) < 0)
        return rh_diag_fail(diag, RH_ECRYPTO, "join-accept: OpenSSL failed");
    out->accept_len = plen;
    if ((rc = lw_session_keys_1_0_init(&d->app_key, jn, r->o.net_id, out->dev_nonce,
                                       &d->nwk_s_key, &d->app_s_key)) < 0) {
        d->active = false;
        return rh_diag_fail(diag, rc, "session keys: derivation failed");
    }
    if (d->devaddr && d->active)
        addr_unlink(r, d);
    d->devaddr = addr;
    if ((rc = addr_link(r, d)) < 0) {
        d->active = false;
        return rc;
    }
    d->active = true;
    d->fcnt_seen = false;
    d->fcnt_up = 0;
    d->fcnt_down = 0;
    d->joins++;
    out->dev = d;
    out->devaddr = addr;
    return RH_OK;
}

/* ---------------------------------------------------------------- data uplinks */

int ns_data_up(ns_registry_t *r, const uint8_t *phy, size_t len, ns_up_t *out, rh_diag_t *diag)
{
    memset(out, 0, sizeof *out);
    lw_frame_t f;
    int rc = lw_frame_decode(phy, len, &f, diag);
    if (rc < 0)
        return rc;
    if (f.mtype != LW_MTYPE_UNCONFIRMED_UP && f.mtype != LW_MTYPE_CONFIRMED_UP)
        return rh_diag_fail(diag, RH_EINVAL, "MHDR.MType: %s is not a data uplink",
                            lw_mtype_name(f.mtype));
    const lw_data_t *dd = &f.u.data;
    out->devaddr = dd->devaddr;
    char a[9];
    lw_devaddr_format(dd->devaddr, a, 0);
    ns_device_t *d = ns_find_addr(r, dd->devaddr);
    if (!d)
        return rh_diag_fail(diag, RH_ENOTFOUND, "DevAddr: %s is not an active device here", a);
    bool replay = false;
    ns_device_t *match = NULL;
    uint32_t fcnt = 0;
    for (; d && !match; d = d->addr_next) {
        if (!d->active)
            continue;
        uint32_t cand = lw_fcnt_extend(d->fcnt_up, dd->fcnt);
        bool stale = d->fcnt_seen && cand == d->fcnt_up; /* same counter again */
        rc = lw_data_mic_verify_1_0(&d->nwk_s_key, LW_UPLINK, dd->devaddr, cand, phy, len);
        if (rc == RH_OK) {
            if (stale) {
                replay = true;
                continue;
            }
            match = d;
            fcnt = cand;
            break;
        }
        if (rc != RH_EMIC)
            return rh_diag_fail(diag, rc, "MIC: check failed");
        /* A counter below the last accepted one (in its 65536 window) is a replay when its MIC
         * verifies with that older value. */
        uint32_t past = (d->fcnt_up & 0xFFFF0000u) | dd->fcnt;
        if (past > d->fcnt_up && past >= 0x10000u)
            past -= 0x10000u;
        if (past != cand && (past < d->fcnt_up || (d->fcnt_seen && past == d->fcnt_up)) &&
            lw_data_mic_verify_1_0(&d->nwk_s_key, LW_UPLINK, dd->devaddr, past, phy, len) == RH_OK)
            replay = true;
    }
    if (!match) {
        if (replay)
            return rh_diag_fail(diag, RH_EEXIST, "FCnt: %u was already used by device %s (replay)",
                                (unsigned)dd->fcnt, a);
        return rh_diag_fail(diag, RH_EMIC, "MIC: no device with DevAddr %s matches", a);
    }
    out->dev = match;
    out->fcnt = fcnt;
    out->confirmed = f.mtype == LW_MTYPE_CONFIRMED_UP;
    out->ack = dd->fctrl.ack;
    out->adr = dd->fctrl.adr;
    out->fopts_len = dd->fopts_len;
    out->has_fport = dd->has_fport;
    out->fport = dd->fport;
    if (dd->has_fport && dd->frm_payload_len) {
        lw_aes128_key_t *k = dd->fport == 0 ? &match->nwk_s_key : &match->app_s_key;
        if ((rc = lw_frm_payload_crypt(k, LW_UPLINK, dd->devaddr, fcnt, dd->frm_payload,
                                       dd->frm_payload_len, out->payload)) < 0)
            return rh_diag_fail(diag, rc, "FRMPayload: decryption failed");
        out->payload_len = dd->frm_payload_len;
    }
    match->fcnt_up = fcnt;
    match->fcnt_seen = true;
    match->uplinks++;
    return RH_OK;
}

/* ---------------------------------------------------------------- downlinks */

int ns_enqueue(ns_device_t *d, uint8_t fport, const uint8_t *data, size_t len, bool confirmed)
{
    if (fport == 0 || fport > 223)
        return RH_EINVAL;
    if (len > NS_MAX_APP_PAYLOAD)
        return RH_ERANGE;
    if (d->dlq_len >= NS_MAX_QUEUE)
        return RH_EFULL;
    ns_dl_item_t *it = calloc(1, sizeof *it);
    if (!it)
        return RH_ENOMEM;
    it->fport = fport;
    it->confirmed = confirmed;
    it->len = (uint8_t)len;
    if (len)
        memcpy(it->data, data, len);
    if (d->dlq_tail)
        d->dlq_tail->next = it;
    else
        d->dlq = it;
    d->dlq_tail = it;
    d->dlq_len++;
    return RH_OK;
}

static ns_dl_item_t *dequeue(ns_device_t *d)
{
    ns_dl_item_t *it = d->dlq;
    if (it) {
        d->dlq = it->next;
        if (!d->dlq)
            d->dlq_tail = NULL;
        d->dlq_len--;
    }
    return it;
}

size_t ns_max_payload(int region, uint8_t dr)
{
    if (region == REGION_US915)
        return dr == 8 ? 53 : dr == 9 ? 129 : dr >= 10 ? 222 : 11;
    return dr <= 2 ? 51 : dr == 3 ? 115 : 222;
}

int ns_build_downlink(ns_device_t *d, bool ack, size_t max_payload, ns_dl_frame_t *out,
                      bool *built, size_t *dropped)
{
    memset(out, 0, sizeof *out);
    *built = false;
    if (dropped)
        *dropped = 0;
    if (!d->active)
        return RH_EINVAL;
    ns_dl_item_t *it;
    while (d->dlq && d->dlq->len > max_payload) {
        free(dequeue(d));
        if (dropped)
            (*dropped)++;
    }
    it = dequeue(d);
    if (!ack && !it)
        return RH_OK;
    uint8_t enc[NS_MAX_APP_PAYLOAD];
    lw_frame_t f = {.mtype = it && it->confirmed ? LW_MTYPE_CONFIRMED_DOWN : LW_MTYPE_UNCONFIRMED_DOWN};
    f.u.data.devaddr = d->devaddr;
    f.u.data.fctrl.ack = ack;
    f.u.data.fctrl.f_pending = d->dlq != NULL;
    f.u.data.fcnt = (uint16_t)d->fcnt_down;
    int rc = RH_OK;
    if (it) {
        f.u.data.has_fport = true;
        f.u.data.fport = it->fport;
        if (it->len &&
            (rc = lw_frm_payload_crypt(&d->app_s_key, LW_DOWNLINK, d->devaddr, d->fcnt_down,
                                       it->data, it->len, enc)) < 0)
            goto out;
        f.u.data.frm_payload = it->len ? enc : NULL;
        f.u.data.frm_payload_len = it->len;
    }
    if ((rc = lw_frame_encode(&f, out->phy, sizeof out->phy, &out->len, NULL)) < 0)
        goto out;
    if ((rc = lw_data_mic_1_0(&d->nwk_s_key, LW_DOWNLINK, d->devaddr, d->fcnt_down, out->phy,
                              out->len - 4, out->phy + out->len - 4)) < 0)
        goto out;
    out->fcnt = d->fcnt_down++;
    out->ack = ack;
    out->confirmed = it && it->confirmed;
    out->has_fport = it != NULL;
    out->fport = it ? it->fport : 0;
    out->app_len = it ? it->len : 0;
    *built = true;
out:
    free(it);
    return rc;
}

/* ---------------------------------------------------------------- output */

char *ns_uplink_json(const ns_up_t *u, const ns_rxinfo_t *gw, size_t ngw, bool roaming,
                     const char *fwd, int64_t real_ms)
{
    cJSON *o = cJSON_CreateObject();
    char buf[2 * LW_PHY_MAX + 1], ts[BI_TIME_MAX];
    if (!o)
        return NULL;
    bi_time_t t = {real_ms / 1000, (uint32_t)(real_ms % 1000) * 1000000u};
    bi_time_format(t, ts);
    cJSON_AddStringToObject(o, "time", ts);
    rh_eui64_format(u->dev ? u->dev->cfg.dev_eui : 0, buf);
    cJSON_AddStringToObject(o, "dev_eui", buf);
    lw_devaddr_format(u->devaddr, buf, 0);
    cJSON_AddStringToObject(o, "dev_addr", buf);
    cJSON_AddNumberToObject(o, "fcnt", u->fcnt);
    if (u->has_fport)
        cJSON_AddNumberToObject(o, "fport", u->fport);
    else
        cJSON_AddNullToObject(o, "fport");
    rh_hex_encode(u->payload, u->payload_len, buf, 0);
    cJSON_AddStringToObject(o, "payload_hex", buf);
    cJSON_AddBoolToObject(o, "confirmed", u->confirmed);
    cJSON *arr = cJSON_AddArrayToObject(o, "gateways");
    for (size_t i = 0; arr && i < ngw; i++) {
        cJSON *g = cJSON_CreateObject();
        if (!g || !cJSON_AddItemToArray(arr, g)) {
            cJSON_Delete(g);
            break;
        }
        cJSON_AddStringToObject(g, "id", gw[i].id);
        if (gw[i].has_rssi)
            cJSON_AddNumberToObject(g, "rssi", gw[i].rssi);
        else
            cJSON_AddNullToObject(g, "rssi");
        if (gw[i].has_snr)
            cJSON_AddNumberToObject(g, "snr", gw[i].snr);
        else
            cJSON_AddNullToObject(g, "snr");
        if (gw[i].has_loc) {
            cJSON_AddNumberToObject(g, "lat", gw[i].lat);
            cJSON_AddNumberToObject(g, "lon", gw[i].lon);
        } else {
            cJSON_AddNullToObject(g, "lat");
            cJSON_AddNullToObject(g, "lon");
        }
    }
    cJSON_AddStringToObject(o, "via", roaming ? "roaming" : "local");
    if (fwd)
        cJSON_AddStringToObject(o, "forwarder_net_id", fwd);
    else
        cJSON_AddNullToObject(o, "forwarder_net_id");
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}
