/*
 * ns_config.c — roamns JSON configuration (see ns_config.h, docs/roamns.md).
 */
#include "ns_config.h"

#include "rh_hex.h"
#include "tl_util.h"

#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *dup_or(const char *s, const char *def)
{
    const char *v = s ? s : def;
    return v ? strdup(v) : NULL;
}

static char *resolve(const char *base, const char *p)
{
    if (!p)
        return NULL;
    if (p[0] == '/' || !base || strcmp(p, "-") == 0)
        return strdup(p);
    size_t n = strlen(base) + strlen(p) + 2;
    char *s = malloc(n);
    if (s)
        snprintf(s, n, "%s/%s", base, p);
    return s;
}

void ns_config_fini(ns_config_t *c)
{
    if (!c)
        return;
    free(c->gwmp_address);
    free(c->ts002_address);
    free(c->ts002_authorization);
    free(c->hub_url);
    free(c->hub_api_key);
    free(c->pb_host);
    free(c->pb_token_url);
    free(c->pb_tls_ca_file);
    free(c->pb_client_id);
    if (c->pb_client_secret)
        memset(c->pb_client_secret, 0, strlen(c->pb_client_secret));
    free(c->pb_client_secret);
    free(c->pb_tenant_id);
    free(c->pb_cluster_id);
    free(c->devs);
    free(c->downlinks_file);
    free(c->output);
    free(c->log_level);
    memset(c, 0, sizeof *c);
}

/* config.packet_broker: the Packet Broker Agent mode (docs/roamns.md). */
static int pb_section(const cJSON *o, const char *base_dir, ns_config_t *c, rh_diag_t *diag)
{
    static const char *const keys[] = {"data_plane_address", "token_url", "client_id",
                                       "client_secret", "tenant_id", "cluster_id", "forwarder",
                                       "home_network", "token_key", "insecure", "tls_ca_file",
                                       NULL};
    const char *w = "config.packet_broker";
    if (!o || cJSON_IsNull(o))
        return RH_OK;
    if (!cJSON_IsObject(o))
        return rh_diag_fail(diag, RH_EINVAL, "%s: expected an object", w);
    const char *addr = NULL, *url = NULL, *id = NULL, *secret = NULL, *tenant = "", *cluster = "",
               *tkey = NULL, *ca = NULL;
    bool insecure = false;
    c->pb_forwarder = c->pb_home = true;
    int rc = tl_check_keys(o, keys, w, diag);
    if (rc < 0 || (rc = tl_get_str(o, "data_plane_address", w, &addr, diag)) < 0 ||
        (rc = tl_get_str(o, "token_url", w, &url, diag)) < 0 ||
        (rc = tl_get_str(o, "client_id", w, &id, diag)) < 0 ||
        (rc = tl_get_str(o, "client_secret", w, &secret, diag)) < 0 ||
        (rc = tl_get_str(o, "tenant_id", w, &tenant, diag)) < 0 ||
        (rc = tl_get_str(o, "cluster_id", w, &cluster, diag)) < 0 ||
        (rc = tl_get_bool(o, "forwarder", w, &c->pb_forwarder, diag)) < 0 ||
        (rc = tl_get_bool(o, "home_network", w, &c->pb_home, diag)) < 0 ||
        (rc = tl_get_str(o, "token_key", w, &tkey, diag)) < 0 ||
        (rc = tl_get_bool(o, "insecure", w, &insecure, diag)) < 0 ||
        (rc = tl_get_str(o, "tls_ca_file", w, &ca, diag)) < 0)
        return rc;
    const char *colon = addr ? strrchr(addr, ':') : NULL;
    char *end = NULL;
    unsigned long port = colon ? strtoul(colon + 1, &end, 10) : 0;
    if (!colon || colon == addr || !end || *end || port == 0 || port > 65535)
        return rh_diag_fail(diag, RH_EINVAL, "%s.data_plane_address: expected \"host:port\"", w);
    if (insecure && ca)
        return rh_diag_fail(diag, RH_EINVAL, "%s.tls_ca_file: not with insecure (h2c)", w);
    c->pb_insecure = insecure;
    if (!url || strncmp(url, "http://", 7) != 0)
        return rh_diag_fail(diag, RH_EINVAL, "%s.token_url: expected an http:// URL", w);
    if (!id || !*id)
        return rh_diag_fail(diag, RH_EINVAL, "%s.client_id: missing", w);
    if (!secret || !*secret)
        return rh_diag_fail(diag, RH_EINVAL, "%s.client_secret: missing", w);
    if (!c->pb_forwarder && !c->pb_home)
        return rh_diag_fail(diag, RH_EINVAL, "%s: neither forwarder nor home_network enabled", w);
    if (tkey) {
        size_t n = 0;
        if (rh_hex_decode(tkey, strlen(tkey), c->pb_token_key, sizeof c->pb_token_key, &n,
                          "token_key", NULL) < 0 || n != 32)
            return rh_diag_fail(diag, RH_EINVAL, "%s.token_key: expected 64 hex digits", w);
        c->pb_token_key_len = n;
    }
    c->pb_host = strndup(addr, (size_t)(colon - addr));
    c->pb_port = (uint16_t)port;
    c->pb_token_url = strdup(url);
    c->pb_tls_ca_file = ca ? resolve(base_dir, ca) : NULL;
    if (ca && !c->pb_tls_ca_file)
        return rh_diag_fail(diag, RH_ENOMEM, "%s: out of memory", w);
    c->pb_client_id = strdup(id);
    c->pb_client_secret = strdup(secret);
    c->pb_tenant_id = strdup(tenant ? tenant : "");
    c->pb_cluster_id = strdup(cluster ? cluster : "");
    if (!c->pb_host || !c->pb_token_url || !c->pb_client_id || !c->pb_client_secret ||
        !c->pb_tenant_id || !c->pb_cluster_id)
        return rh_diag_fail(diag, RH_ENOMEM, "%s: out of memory", w);
    c->has_pb = true;
    return RH_OK;
}

static int listener(const cJSON *o, const char *where, const char **addr, uint64_t *port,
                    const char **auth, rh_diag_t *diag)
{
    static const char *const keys[] = {"address", "port", "authorization", NULL};
    if (!o)
        return RH_OK;
    if (!cJSON_IsObject(o))
        return rh_diag_fail(diag, RH_EINVAL, "%s: expected an object", where);
    int rc = tl_check_keys(o, keys, where, diag);
    if (rc < 0 || (rc = tl_get_str(o, "address", where, addr, diag)) < 0 ||
        (rc = tl_get_uint(o, "port", where, 65535, port, diag)) < 0)
        return rc;
    if (auth)
        return tl_get_str(o, "authorization", where, auth, diag);
    if (cJSON_GetObjectItemCaseSensitive(o, "authorization"))
        return rh_diag_fail(diag, RH_EINVAL, "%s.authorization: unknown key", where);
    return RH_OK;
}

int ns_config_from_json(const cJSON *root, const char *base_dir, ns_config_t *c, rh_diag_t *diag)
{
    static const char *const keys[] = {"net_id", "dev_addr_blocks", "join_euis", "region",
                                       "rx1_dr_offset", "gwmp", "ts002", "hub", "devices",
                                       "generate", "downlinks_file", "output", "log_level",
                                       "dedup_window_ms", "downlink_margin_ms", "tx_power",
                                       "packet_broker", NULL};
    memset(c, 0, sizeof *c);
    if (!cJSON_IsObject(root))
        return rh_diag_fail(diag, RH_EINVAL, "config: expected a JSON object");
    int rc = tl_check_keys(root, keys, "config", diag);
    if (rc < 0)
        return rc;
    const char *w = "config";
    uint64_t v = 0;
    bool found;
    if ((rc = tl_get_be(root, "net_id", w, 3, &v, &found, diag)) < 0)
        return rc;
    if (!found)
        return rh_diag_fail(diag, RH_EINVAL, "config.net_id: missing");
    c->net_id = (uint32_t)v;
    c->core.net_id = c->net_id;

    const char *region = "EU868";
    if ((rc = tl_get_str(root, "region", w, &region, diag)) < 0)
        return rc;
    if (region_parse(region, &c->region) < 0)
        return rh_diag_fail(diag, RH_EINVAL, "config.region: \"%.20s\" is not EU868 or US915", region);

    const cJSON *blocks = cJSON_GetObjectItemCaseSensitive(root, "dev_addr_blocks");
    if (blocks && !cJSON_IsNull(blocks)) {
        const cJSON *it;
        if (!cJSON_IsArray(blocks) || cJSON_GetArraySize(blocks) < 1 ||
            cJSON_GetArraySize(blocks) > NS_MAX_BLOCKS)
            return rh_diag_fail(diag, RH_EINVAL,
                                "config.dev_addr_blocks: expected 1..%d prefixes like \"26000000/7\"",
                                NS_MAX_BLOCKS);
        cJSON_ArrayForEach(it, blocks) {
            rh_diag_t d1;
            if (!cJSON_IsString(it) ||
                lw_devaddr_prefix_parse(it->valuestring, &c->core.blocks[c->core.n_blocks], &d1) < 0)
                return rh_diag_fail(diag, RH_EINVAL,
                                    "config.dev_addr_blocks[%zu]: expected a prefix like \"26000000/7\"",
                                    c->core.n_blocks);
            c->core.n_blocks++;
        }
    } else {
        if (lw_netid_devaddr_prefix(c->net_id, &c->core.blocks[0], NULL) < 0)
            return rh_diag_fail(diag, RH_EINVAL, "config.net_id: no DevAddr prefix");
        c->core.n_blocks = 1;
    }

    if ((rc = tl_get_uint(root, "rx1_dr_offset", w, 5, &v, diag)) < 0)
        return rc;
    c->core.rx1_dr_offset = (uint8_t)(cJSON_GetObjectItemCaseSensitive(root, "rx1_dr_offset") ? v : 0);
    c->core.rx2_dr = region_rx2(c->region).dr;
    c->core.rx_delay = REGION_RECEIVE_DELAY1_S;

    const char *ga = NULL, *ta = NULL, *tauth = NULL;
    uint64_t gp = 1700, tp = 0;
    if ((rc = listener(cJSON_GetObjectItemCaseSensitive(root, "gwmp"), "config.gwmp", &ga, &gp,
                       NULL, diag)) < 0 ||
        (rc = listener(cJSON_GetObjectItemCaseSensitive(root, "ts002"), "config.ts002", &ta, &tp,
                       &tauth, diag)) < 0)
        return rc;
    c->gwmp_port = (uint16_t)gp;
    c->ts002_port = (uint16_t)tp;

    const cJSON *hub = cJSON_GetObjectItemCaseSensitive(root, "hub");
    const char *url = NULL, *proto = "1.0", *key = NULL, *recv = NULL;
    uint64_t tmo = 3000;
    uint64_t recv_id = 0;
    if (hub && !cJSON_IsNull(hub)) {
        static const char *const hkeys[] = {"url", "protocol", "async", "api_key", "timeout_ms",
                                            "receiver_id", "dialect", NULL};
        const char *dialect = "";
        const char *hw = "config.hub";
        if (!cJSON_IsObject(hub))
            return rh_diag_fail(diag, RH_EINVAL, "config.hub: expected an object");
        if ((rc = tl_check_keys(hub, hkeys, hw, diag)) < 0 ||
            (rc = tl_get_str(hub, "url", hw, &url, diag)) < 0 ||
            (rc = tl_get_str(hub, "protocol", hw, &proto, diag)) < 0 ||
            (rc = tl_get_bool(hub, "async", hw, &c->hub_async, diag)) < 0 ||
            (rc = tl_get_str(hub, "api_key", hw, &key, diag)) < 0 ||
            (rc = tl_get_uint(hub, "timeout_ms", hw, 300000, &tmo, diag)) < 0 ||
            (rc = tl_get_str(hub, "receiver_id", hw, &recv, diag)) < 0 ||
            (rc = tl_get_str(hub, "dialect", hw, &dialect, diag)) < 0)
            return rc;
        if (!dialect || !*dialect)
            c->hub_dialect = NS_DIALECT_PLAIN;
        else if (strcmp(dialect, "chirpstack") == 0)
            c->hub_dialect = NS_DIALECT_CHIRPSTACK;
        else if (strcmp(dialect, "helium") == 0)
            c->hub_dialect = NS_DIALECT_HELIUM;
        else
            return rh_diag_fail(diag, RH_EINVAL,
                                "config.hub.dialect: expected \"\", \"chirpstack\" or \"helium\"");
        if (!url || strncmp(url, "http", 4) != 0)
            return rh_diag_fail(diag, RH_EINVAL, "config.hub.url: expected an http:// or https:// URL");
        if (strcmp(proto, "1.0") == 0)
            c->hub_protocol = 0;
        else if (strcmp(proto, "1.1") == 0)
            c->hub_protocol = 1;
        else
            return rh_diag_fail(diag, RH_EINVAL, "config.hub.protocol: expected \"1.0\" or \"1.1\"");
        if (recv && rh_hex_parse_be(recv, strlen(recv), 3, &recv_id, "receiver_id", NULL) < 0)
            return rh_diag_fail(diag, RH_EINVAL, "config.hub.receiver_id: expected a NetID (6 hex digits)");
        c->hub_receiver_set = recv != NULL;
        c->has_hub = true;
    }
    c->hub_timeout_ms = (unsigned)(tmo ? tmo : 3000);
    c->hub_receiver_id = (uint32_t)recv_id;

    if ((rc = pb_section(cJSON_GetObjectItemCaseSensitive(root, "packet_broker"), base_dir, c, diag)) < 0)
        goto fail;

    const char *dl = NULL, *out = NULL, *lvl = "info";
    uint64_t dedup = 100, margin = 50, power = 0;
    bool has_power = cJSON_GetObjectItemCaseSensitive(root, "tx_power") != NULL;
    if ((rc = tl_get_str(root, "downlinks_file", w, &dl, diag)) < 0 ||
        (rc = tl_get_str(root, "output", w, &out, diag)) < 0 ||
        (rc = tl_get_str(root, "log_level", w, &lvl, diag)) < 0 ||
        (rc = tl_get_uint(root, "dedup_window_ms", w, 900, &dedup, diag)) < 0 ||
        (rc = tl_get_uint(root, "downlink_margin_ms", w, 900, &margin, diag)) < 0 ||
        (rc = tl_get_uint(root, "tx_power", w, 36, &power, diag)) < 0)
        return rc;
    if (strcmp(lvl, "err") && strcmp(lvl, "warn") && strcmp(lvl, "info") && strcmp(lvl, "debug"))
        return rh_diag_fail(diag, RH_EINVAL, "config.log_level: expected err, warn, info or debug");
    c->dedup_window_ms = (unsigned)dedup;
    c->dl_margin_ms = (unsigned)margin;
    c->tx_power = has_power ? (int)power : -1;

    if ((rc = devcfg_load(cJSON_GetObjectItemCaseSensitive(root, "devices"),
                          cJSON_GetObjectItemCaseSensitive(root, "generate"), base_dir, &c->devs,
                          &c->n_devs, diag)) < 0)
        return rc;

    /* JoinEUIs served: configured, or those of the OTAA devices. */
    const cJSON *je = cJSON_GetObjectItemCaseSensitive(root, "join_euis");
    if (je && !cJSON_IsNull(je)) {
        const cJSON *it;
        if (!cJSON_IsArray(je) || cJSON_GetArraySize(je) > NS_MAX_JOIN_EUIS) {
            rc = rh_diag_fail(diag, RH_EINVAL, "config.join_euis: expected up to %d JoinEUIs[/len]",
                              NS_MAX_JOIN_EUIS);
            goto fail;
        }
        cJSON_ArrayForEach(it, je) {
            if (!cJSON_IsString(it) ||
                ns_eui_prefix_parse(it->valuestring, &c->core.join_euis[c->core.n_join_euis], NULL) < 0) {
                rc = rh_diag_fail(diag, RH_EINVAL,
                                  "config.join_euis[%zu]: expected 16 hex digits, optionally /len",
                                  c->core.n_join_euis);
                goto fail;
            }
            c->core.n_join_euis++;
        }
    } else {
        for (size_t i = 0; i < c->n_devs; i++) {
            if (!c->devs[i].otaa)
                continue;
            bool dup = false;
            for (size_t k = 0; k < c->core.n_join_euis; k++)
                dup |= c->core.join_euis[k].value == c->devs[i].join_eui;
            if (dup)
                continue;
            if (c->core.n_join_euis == NS_MAX_JOIN_EUIS) {
                rc = rh_diag_fail(diag, RH_EINVAL,
                                  "config.join_euis: the devices use more than %d JoinEUIs; list "
                                  "prefixes explicitly", NS_MAX_JOIN_EUIS);
                goto fail;
            }
            c->core.join_euis[c->core.n_join_euis++] = (ns_eui_prefix_t){c->devs[i].join_eui, 64};
        }
    }

    c->gwmp_address = dup_or(ga, "127.0.0.1");
    c->ts002_address = dup_or(ta, "127.0.0.1");
    c->ts002_authorization = dup_or(tauth, NULL);
    c->hub_url = dup_or(url, NULL);
    c->hub_api_key = dup_or(key, NULL);
    c->downlinks_file = resolve(base_dir, dl);
    c->output = out ? resolve(base_dir, out) : strdup("-");
    c->log_level = strdup(lvl);
    if (!c->gwmp_address || !c->ts002_address || (tauth && !c->ts002_authorization) ||
        (url && !c->hub_url) || (key && !c->hub_api_key) || (dl && !c->downlinks_file) ||
        !c->output || !c->log_level) {
        rc = RH_ENOMEM;
        goto fail;
    }
    return RH_OK;
fail:
    ns_config_fini(c);
    return rc;
}

int ns_config_load(const char *path, ns_config_t *c, rh_diag_t *diag)
{
    cJSON *root;
    int rc = tl_json_load(path, &root, diag);
    if (rc < 0)
        return rc;
    char *copy = strdup(path);
    if (!copy) {
        cJSON_Delete(root);
        return RH_ENOMEM;
    }
    rc = ns_config_from_json(root, dirname(copy), c, diag);
    free(copy);
    cJSON_Delete(root);
    return rc;
}
