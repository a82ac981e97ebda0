/*
 * devcfg.c — device list parsing and generation (see devcfg.h).
 */
#include "devcfg.h"

#include "rh_hex.h"
#include "tl_util.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int devcfg_parse_one(const cJSON *o, const char *where, devcfg_t *d, rh_diag_t *diag)
{
    static const char *const keys[] = {"name", "dev_eui", "join_eui", "app_key", "dev_addr",
                                       "nwk_s_key", "app_s_key", "fcnt_up", "fcnt_down",
                                       "mac_version", NULL};
    memset(d, 0, sizeof *d);
    if (!cJSON_IsObject(o))
        return rh_diag_fail(diag, RH_EINVAL, "%s: expected an object", where);
    int rc = tl_check_keys(o, keys, where, diag);
    if (rc < 0)
        return rc;
    const char *name = NULL, *mac = NULL;
    bool f_eui, f_join, f_app, f_addr, f_nwks, f_apps;
    uint64_t v = 0;
    if ((rc = tl_get_str(o, "name", where, &name, diag)) < 0 ||
        (rc = tl_get_str(o, "mac_version", where, &mac, diag)) < 0 ||
        (rc = tl_get_be(o, "dev_eui", where, 8, &d->dev_eui, &f_eui, diag)) < 0 ||
        (rc = tl_get_be(o, "join_eui", where, 8, &d->join_eui, &f_join, diag)) < 0 ||
        (rc = tl_get_hex(o, "app_key", where, d->app_key, 16, &f_app, diag)) < 0 ||
        (rc = tl_get_be(o, "dev_addr", where, 4, &v, &f_addr, diag)) < 0 ||
        (rc = tl_get_hex(o, "nwk_s_key", where, d->nwk_s_key, 16, &f_nwks, diag)) < 0 ||
        (rc = tl_get_hex(o, "app_s_key", where, d->app_s_key, 16, &f_apps, diag)) < 0)
        return rc;
    d->dev_addr = (uint32_t)v;
    if (mac && strncmp(mac, "1.0", 3) != 0)
        return rh_diag_fail(diag, RH_EINVAL, "%s.mac_version: only LoRaWAN 1.0.x is supported",
                            where);
    if (!f_eui)
        return rh_diag_fail(diag, RH_EINVAL, "%s.dev_eui: missing", where);
    bool otaa = f_join || f_app, abp = f_addr || f_nwks || f_apps;
    if (otaa == abp)
        return rh_diag_fail(diag, RH_EINVAL,
                            "%s: give either join_eui + app_key (OTAA) or dev_addr + nwk_s_key + "
                            "app_s_key (ABP)", where);
    if (otaa && !(f_join && f_app))
        return rh_diag_fail(diag, RH_EINVAL, "%s.%s: missing (OTAA device)", where,
                            f_join ? "app_key" : "join_eui");
    if (abp && !(f_addr && f_nwks && f_apps))
        return rh_diag_fail(diag, RH_EINVAL, "%s.%s: missing (ABP device)", where,
                            !f_addr ? "dev_addr" : !f_nwks ? "nwk_s_key" : "app_s_key");
    d->otaa = otaa;
    uint64_t fu = 0, fd = 0;
    if ((rc = tl_get_uint(o, "fcnt_up", where, 0xFFFFFFFFu, &fu, diag)) < 0 ||
        (rc = tl_get_uint(o, "fcnt_down", where, 0xFFFFFFFFu, &fd, diag)) < 0)
        return rc;
    if (otaa && (fu || fd))
        return rh_diag_fail(diag, RH_EINVAL, "%s.fcnt_up: counters are for ABP devices only",
                            where);
    d->fcnt_up = (uint32_t)fu;
    d->fcnt_down = (uint32_t)fd;
    if (name)
        snprintf(d->name, sizeof d->name, "%s", name);
    else
        rh_eui64_format(d->dev_eui, d->name);
    return RH_OK;
}

static void gen_key(const char *seed, uint64_t dev_eui, const char *label, uint8_t out[16])
{
    uint8_t md[32], eui[8];
    unsigned mdlen = 0;
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    rh_put_be64(eui, dev_eui);
    if (c && EVP_DigestInit_ex(c, EVP_sha256(), NULL) &&
        EVP_DigestUpdate(c, seed, strlen(seed)) && EVP_DigestUpdate(c, eui, 8) &&
        EVP_DigestUpdate(c, label, strlen(label)) && EVP_DigestFinal_ex(c, md, &mdlen)) {
        memcpy(out, md, 16);
    } else {
        memset(out, 0, 16);
    }
    EVP_MD_CTX_free(c);
}

static int cmp_eui(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static int generate(const cJSON *g, devcfg_t *out, size_t cap, size_t *n, rh_diag_t *diag)
{
    static const char *const keys[] = {"count", "activation", "dev_eui_start", "join_eui",
                                       "dev_addr_start", "seed", NULL};
    const char *w = "generate";
    int rc = tl_check_keys(g, keys, w, diag);
    if (rc < 0)
        return rc;
    uint64_t count = 0, eui0 = 0, join = 0, addr0 = 0;
    const char *act = "otaa", *seed = "roamhub";
    bool f;
    if ((rc = tl_get_uint(g, "count", w, DEVCFG_MAX_DEVICES, &count, diag)) < 0 ||
        (rc = tl_get_str(g, "activation", w, &act, diag)) < 0 ||
        (rc = tl_get_str(g, "seed", w, &seed, diag)) < 0 ||
        (rc = tl_get_be(g, "dev_eui_start", w, 8, &eui0, &f, diag)) < 0)
        return rc;
    if (!f)
        return rh_diag_fail(diag, RH_EINVAL, "generate.dev_eui_start: missing");
    bool otaa = strcmp(act, "otaa") == 0;
    if (!otaa && strcmp(act, "abp") != 0)
        return rh_diag_fail(diag, RH_EINVAL, "generate.activation: expected \"otaa\" or \"abp\"");
    if ((rc = tl_get_be(g, otaa ? "join_eui" : "dev_addr_start", w, otaa ? 8 : 4,
                        otaa ? &join : &addr0, &f, diag)) < 0)
        return rc;
    if (!f)
        return rh_diag_fail(diag, RH_EINVAL, "generate.%s: missing",
                            otaa ? "join_eui" : "dev_addr_start");
    if (*n + count > cap)
        return rh_diag_fail(diag, RH_ERANGE, "generate.count: more than %zu devices in total", cap);
    for (uint64_t i = 0; i < count; i++) {
        devcfg_t *d = &out[(*n)++];
        memset(d, 0, sizeof *d);
        d->otaa = otaa;
        d->dev_eui = eui0 + i;
        rh_eui64_format(d->dev_eui, d->name);
        if (otaa) {
            d->join_eui = join;
            gen_key(seed, d->dev_eui, "app", d->app_key);
        } else {
            d->dev_addr = (uint32_t)(addr0 + i);
            gen_key(seed, d->dev_eui, "nwks", d->nwk_s_key);
            gen_key(seed, d->dev_eui, "apps", d->app_s_key);
        }
    }
    return RH_OK;
}

int devcfg_load(const cJSON *devices, const cJSON *gen, const char *base_dir, devcfg_t **out,
                size_t *n, rh_diag_t *diag)
{
    cJSON *owned = NULL;
    int rc = RH_OK;
    *out = NULL;
    *n = 0;
    if (cJSON_IsString(devices)) {
        char path[4096];
        const char *p = devices->valuestring;
        if (p[0] != '/' && base_dir)
            snprintf(path, sizeof path, "%s/%s", base_dir, p);
        else
            snprintf(path, sizeof path, "%s", p);
        if ((rc = tl_json_load(path, &owned, diag)) < 0)
            return rc;
        devices = owned;
    }
    if (devices && !cJSON_IsNull(devices) && !cJSON_IsArray(devices)) {
        cJSON_Delete(owned);
        return rh_diag_fail(diag, RH_EINVAL, "devices: expected an array or a file name");
    }
    if (gen && !cJSON_IsNull(gen) && !cJSON_IsObject(gen)) {
        cJSON_Delete(owned);
        return rh_diag_fail(diag, RH_EINVAL, "generate: expected an object");
    }
    size_t listed = devices ? (size_t)cJSON_GetArraySize(devices) : 0;
    uint64_t gcount = 0;
    if (cJSON_IsObject(gen)) {
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(gen, "count");
        if (cJSON_IsNumber(c) && c->valuedouble > 0 && c->valuedouble <= DEVCFG_MAX_DEVICES)
            gcount = (uint64_t)c->valuedouble;
    }
    size_t cap = listed + gcount;
    if (cap > DEVCFG_MAX_DEVICES) {
        cJSON_Delete(owned);
        return rh_diag_fail(diag, RH_ERANGE, "devices: more than %u", DEVCFG_MAX_DEVICES);
    }
    devcfg_t *arr = calloc(cap ? cap : 1, sizeof *arr);
    uint64_t *euis = NULL;
    if (!arr) {
        cJSON_Delete(owned);
        return RH_ENOMEM;
    }
    size_t k = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, devices) {
        char where[32];
        snprintf(where, sizeof where, "devices[%zu]", k);
        if ((rc = devcfg_parse_one(it, where, &arr[k], diag)) < 0)
            goto fail;
        k++;
    }
    if (cJSON_IsObject(gen) && (rc = generate(gen, arr, cap, &k, diag)) < 0)
        goto fail;
    euis = malloc((k ? k : 1) * sizeof *euis);
    if (!euis) {
        rc = RH_ENOMEM;
        goto fail;
    }
    for (size_t i = 0; i < k; i++)
        euis[i] = arr[i].dev_eui;
    qsort(euis, k, sizeof *euis, cmp_eui);
    for (size_t i = 1; i < k; i++) {
        if (euis[i] == euis[i - 1]) {
            char e[17];
            rh_eui64_format(euis[i], e);
            rc = rh_diag_fail(diag, RH_EINVAL, "devices: DevEUI %s appears twice", e);
            goto fail;
        }
    }
    free(euis);
    cJSON_Delete(owned);
    *out = arr;
    *n = k;
    return RH_OK;
fail:
    free(euis);
    free(arr);
    cJSON_Delete(owned);
    return rc;
}

cJSON *devcfg_to_json(const devcfg_t *d, size_t n)
{
    cJSON *a = cJSON_CreateArray();
    char h[40];
    for (size_t i = 0; a && i < n; i++) {
        cJSON *o = cJSON_CreateObject();
        if (!o || !cJSON_AddItemToArray(a, o)) {
            cJSON_Delete(o);
            cJSON_Delete(a);
            return NULL;
        }
        cJSON_AddStringToObject(o, "name", d[i].name);
        rh_eui64_format(d[i].dev_eui, h);
        cJSON_AddStringToObject(o, "dev_eui", h);
        if (d[i].otaa) {
            rh_eui64_format(d[i].join_eui, h);
            cJSON_AddStringToObject(o, "join_eui", h);
            rh_hex_encode(d[i].app_key, 16, h, 0);
            cJSON_AddStringToObject(o, "app_key", h);
        } else {
            rh_hex_format_be(d[i].dev_addr, 4, h, 0);
            cJSON_AddStringToObject(o, "dev_addr", h);
            rh_hex_encode(d[i].nwk_s_key, 16, h, 0);
            cJSON_AddStringToObject(o, "nwk_s_key", h);
            rh_hex_encode(d[i].app_s_key, 16, h, 0);
            cJSON_AddStringToObject(o, "app_s_key", h);
            cJSON_AddNumberToObject(o, "fcnt_up", d[i].fcnt_up);
            cJSON_AddNumberToObject(o, "fcnt_down", d[i].fcnt_down);
        }
    }
    return a;
}
