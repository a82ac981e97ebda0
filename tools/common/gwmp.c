/*
 * gwmp.c — Semtech UDP packet forwarder protocol codec (see gwmp.h).
 * Invariants: nothing here allocates except cJSON trees that are freed before returning, and
 * every length read from the network is checked against the buffer it indexes.
 */
#include "gwmp.h"

#include "rh_hex.h"

#include <math.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int gwmp_parse(const uint8_t *buf, size_t len, gwmp_pkt_t *p, rh_diag_t *diag)
{
    memset(p, 0, sizeof *p);
    if (len < GWMP_HDR_LEN)
        return rh_diag_fail(diag, RH_ESIZE, "GWMP header: %zu bytes, at least 4 needed", len);
    p->version = buf[0];
    if (p->version != 1 && p->version != 2)
        return rh_diag_fail(diag, RH_EVERSION, "GWMP version: %u, expected 1 or 2", buf[0]);
    p->token = (uint16_t)((buf[1] << 8) | buf[2]);
    p->ident = buf[3];
    switch (p->ident) {
    case GWMP_PUSH_DATA:
    case GWMP_PULL_DATA:
    case GWMP_TX_ACK:
        if (len < GWMP_EUI_HDR_LEN)
            return rh_diag_fail(diag, RH_ESIZE, "GWMP gateway EUI: %zu bytes, at least 12 needed",
                                len);
        p->has_eui = true;
        p->gw_eui = rh_get_be64(buf + 4);
        if (p->ident != GWMP_PULL_DATA && len > GWMP_EUI_HDR_LEN) {
            p->json = buf + GWMP_EUI_HDR_LEN;
            p->json_len = len - GWMP_EUI_HDR_LEN;
        }
        if (p->ident == GWMP_PUSH_DATA && !p->json)
            return rh_diag_fail(diag, RH_ESIZE, "PUSH_DATA: no JSON object");
        return RH_OK;
    case GWMP_PULL_RESP:
        if (len <= GWMP_HDR_LEN)
            return rh_diag_fail(diag, RH_ESIZE, "PULL_RESP: no JSON object");
        p->json = buf + GWMP_HDR_LEN;
        p->json_len = len - GWMP_HDR_LEN;
        return RH_OK;
    case GWMP_PUSH_ACK:
    case GWMP_PULL_ACK:
        return RH_OK;
    default:
        return rh_diag_fail(diag, RH_EINVAL, "GWMP identifier: 0x%02x is not a known packet type",
                            p->ident);
    }
}

size_t gwmp_write(uint8_t *out, size_t cap, uint8_t ident, uint16_t token, uint64_t gw_eui,
                  const char *json, size_t json_len)
{
    bool eui = ident == GWMP_PUSH_DATA || ident == GWMP_PULL_DATA || ident == GWMP_TX_ACK;
    size_t need = (eui ? GWMP_EUI_HDR_LEN : GWMP_HDR_LEN) + (json ? json_len : 0);
    if (need > cap)
        return 0;
    out[0] = GWMP_VERSION;
    out[1] = (uint8_t)(token >> 8);
    out[2] = (uint8_t)token;
    out[3] = ident;
    size_t off = GWMP_HDR_LEN;
    if (eui) {
        rh_put_be64(out + 4, gw_eui);
        off = GWMP_EUI_HDR_LEN;
    }
    if (json && json_len)
        memcpy(out + off, json, json_len);
    return need;
}

/* ---------------------------------------------------------------- helpers */

uint32_t gwmp_mhz_to_hz(double mhz)
{
    if (!(mhz > 0) || mhz > 4294.0)
        return 0;
    return (uint32_t)(mhz * 1e6 + 0.5);
}

double gwmp_hz_to_mhz(uint32_t hz) { return (double)hz / 1e6; }

int gwmp_datr_parse(const char *s, uint8_t *sf, uint16_t *bw_khz)
{
    unsigned a, b;
    int n = 0;
    if (!s || sscanf(s, "SF%uBW%u%n", &a, &b, &n) != 2 || s[n] != '\0')
        return RH_EINVAL;
    if (a < 5 || a > 12 || (b != 125 && b != 250 && b != 500))
        return RH_EINVAL;
    *sf = (uint8_t)a;
    *bw_khz = (uint16_t)b;
    return RH_OK;
}

void gwmp_datr_format(uint8_t sf, uint16_t bw_khz, char out[16])
{
    snprintf(out, 16, "SF%uBW%u", (unsigned)sf, (unsigned)bw_khz);
}

int gwmp_b64_decode(const char *s, size_t slen, uint8_t *out, size_t cap, size_t *outlen)
{
    /* EVP_DecodeBlock needs a multiple of 4 characters and reports padding as zero bytes. */
    if (slen > 4 * ((GWMP_MAX_DATAGRAM + 2) / 3))
        return RH_ERANGE;
    size_t padded = (slen + 3) / 4 * 4;
    unsigned char stackbuf[400];
    unsigned char *tmp = padded + 1 <= sizeof stackbuf ? stackbuf : malloc(padded + 1);
    unsigned char *dec = NULL;
    unsigned char decstack[300];
    int rc = RH_OK;
    if (!tmp)
        return RH_ENOMEM;
    memcpy(tmp, s, slen);
    for (size_t i = slen; i < padded; i++)
        tmp[i] = '=';
    tmp[padded] = '\0';
    size_t pad = 0;
    if (padded >= 1 && tmp[padded - 1] == '=')
        pad++;
    if (padded >= 2 && tmp[padded - 2] == '=')
        pad++;
    if (padded == 0) {
        *outlen = 0;
        goto done;
    }
    size_t maxdec = padded / 4 * 3;
    dec = maxdec <= sizeof decstack ? decstack : malloc(maxdec);
    if (!dec) {
        rc = RH_ENOMEM;
        goto done;
    }
    int n = EVP_DecodeBlock(dec, tmp, (int)padded);
    if (n < 0 || (size_t)n < pad) {
        rc = RH_EINVAL;
        goto done;
    }
    size_t got = (size_t)n - pad;
    if (got > cap) {
        rc = RH_ERANGE;
        goto done;
    }
    memcpy(out, dec, got);
    *outlen = got;
done:
    if (dec && dec != decstack)
        free(dec);
    if (tmp != stackbuf)
        free(tmp);
    return rc;
}

size_t gwmp_b64_encode(const uint8_t *in, size_t n, char *out)
{
    if (n == 0) {
        out[0] = '\0';
        return 0;
    }
    return (size_t)EVP_EncodeBlock((unsigned char *)out, in, (int)n);
}

/* Integer JSON number in [lo, hi]. */
static int get_num(const cJSON *o, const char *key, double lo, double hi, bool required,
                   double *v, const char *obj, rh_diag_t *diag)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!it) {
        if (required)
            return rh_diag_fail(diag, RH_EINVAL, "%s.%s: missing", obj, key);
        return 1;
    }
    if (!cJSON_IsNumber(it) || !isfinite(it->valuedouble))
        return rh_diag_fail(diag, RH_EINVAL, "%s.%s: expected a number", obj, key);
    if (it->valuedouble < lo || it->valuedouble > hi)
        return rh_diag_fail(diag, RH_EINVAL, "%s.%s: %g out of range %g..%g", obj, key,
                            it->valuedouble, lo, hi);
    *v = it->valuedouble;
    return 0;
}

/* ---------------------------------------------------------------- rxpk */

int gwmp_rxpk_from_json(const cJSON *o, gwmp_rxpk_t *r, rh_diag_t *diag)
{
    memset(r, 0, sizeof *r);
    double v;
    int rc;
    if (!cJSON_IsObject(o))
        return rh_diag_fail(diag, RH_EINVAL, "rxpk: expected an object");
    const cJSON *modu = cJSON_GetObjectItemCaseSensitive(o, "modu");
    if (modu && cJSON_IsString(modu) && strcmp(modu->valuestring, "LORA") != 0)
        return rh_diag_fail(diag, RH_EUNSUPPORTED, "rxpk.modu: %.16s is not supported",
                            modu->valuestring);
    if ((rc = get_num(o, "tmst", 0, 4294967295.0, true, &v, "rxpk", diag)) < 0)
        return rc;
    r->tmst = (uint32_t)v;
    if ((rc = get_num(o, "freq", 1, 4294, true, &v, "rxpk", diag)) < 0)
        return rc;
    r->freq_hz = gwmp_mhz_to_hz(v);
    if ((rc = get_num(o, "chan", 0, 255, false, &v, "rxpk", diag)) < 0)
        return rc;
    if (rc == 0)
        r->chan = (uint8_t)v;
    if ((rc = get_num(o, "rfch", 0, 255, false, &v, "rxpk", diag)) < 0)
        return rc;
    if (rc == 0)
        r->rfch = (uint8_t)v;
    r->stat = 1;
    if ((rc = get_num(o, "stat", -1, 1, false, &v, "rxpk", diag)) < 0)
        return rc;
    if (rc == 0)
        r->stat = (int)v;
    const cJSON *datr = cJSON_GetObjectItemCaseSensitive(o, "datr");
    if (!cJSON_IsString(datr))
        return rh_diag_fail(diag, RH_EINVAL, "rxpk.datr: expected a string like \"SF7BW125\"");
    if (gwmp_datr_parse(datr->valuestring, &r->sf, &r->bw_khz) < 0)
        return rh_diag_fail(diag, RH_EINVAL, "rxpk.datr: \"%.20s\" is not SF5..12 BW125/250/500",
                            datr->valuestring);
    const cJSON *codr = cJSON_GetObjectItemCaseSensitive(o, "codr");
    snprintf(r->codr, sizeof r->codr, "%s",
             cJSON_IsString(codr) && strlen(codr->valuestring) < sizeof r->codr
                 ? codr->valuestring : "4/5");
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(o, "time");
    if (cJSON_IsString(t) && strlen(t->valuestring) < sizeof r->time) {
        r->has_time = true;
        snprintf(r->time, sizeof r->time, "%s", t->valuestring);
    }
    /* RSSI/SNR: top level (SX1301 HAL) or the first rsig entry (SX1302 forwarders). */
    const cJSON *rsig = cJSON_GetObjectItemCaseSensitive(o, "rsig");
    const cJSON *sig = o;
    const char *rssi_key = "rssi";
    if (!cJSON_GetObjectItemCaseSensitive(o, "rssi") && cJSON_IsArray(rsig) &&
        cJSON_GetArraySize(rsig) > 0) {
        sig = cJSON_GetArrayItem(rsig, 0);
        rssi_key = "rssic";
    }
    if ((rc = get_num(sig, rssi_key, -200, 50, false, &v, "rxpk", diag)) < 0)
        return rc;
    r->rssi = rc == 0 ? (int)v : 0;
    if ((rc = get_num(sig, "lsnr", -50, 50, false, &v, "rxpk", diag)) < 0)
        return rc;
    r->lsnr = rc == 0 ? v : 0;
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(o, "data");
    if (!cJSON_IsString(data))
        return rh_diag_fail(diag, RH_EINVAL, "rxpk.data: expected a base64 string");
    rc = gwmp_b64_decode(data->valuestring, strlen(data->valuestring), r->data, sizeof r->data,
                         &r->size);
    if (rc == RH_ERANGE)
        return rh_diag_fail(diag, RH_EINVAL, "rxpk.data: more than 255 bytes");
    if (rc < 0)
        return rh_diag_fail(diag, RH_EINVAL, "rxpk.data: not valid base64");
    if ((rc = get_num(o, "size", 0, 255, false, &v, "rxpk", diag)) < 0)
        return rc;
    if (rc == 0 && (size_t)v != r->size)
        return rh_diag_fail(diag, RH_EINVAL, "rxpk.size: %u but data holds %zu bytes",
                            (unsigned)v, r->size);
    return RH_OK;
}

cJSON *gwmp_rxpk_to_json(const gwmp_rxpk_t *r)
{
    cJSON *o = cJSON_CreateObject();
    char datr[16], b64[360];
    if (!o)
        return NULL;
    gwmp_datr_format(r->sf, r->bw_khz, datr);
    gwmp_b64_encode(r->data, r->size, b64);
    if (r->has_time)
        cJSON_AddStringToObject(o, "time", r->time);
    cJSON_AddNumberToObject(o, "tmst", r->tmst);
    cJSON_AddNumberToObject(o, "chan", r->chan);
    cJSON_AddNumberToObject(o, "rfch", r->rfch);
    cJSON_AddNumberToObject(o, "freq", gwmp_hz_to_mhz(r->freq_hz));
    cJSON_AddNumberToObject(o, "stat", r->stat);
    cJSON_AddStringToObject(o, "modu", "LORA");
    cJSON_AddStringToObject(o, "datr", datr);
    cJSON_AddStringToObject(o, "codr", r->codr[0] ? r->codr : "4/5");
    cJSON_AddNumberToObject(o, "rssi", r->rssi);
    cJSON_AddNumberToObject(o, "lsnr", r->lsnr);
    cJSON_AddNumberToObject(o, "size", (double)r->size);
    if (!cJSON_AddStringToObject(o, "data", b64)) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

int gwmp_push_parse(const uint8_t *json, size_t len, gwmp_rxpk_t *out, size_t cap, size_t *n,
                    size_t *skipped, bool *has_loc, double *lat, double *lon, rh_diag_t *diag)
{
    *n = 0;
    if (skipped)
        *skipped = 0;
    if (has_loc)
        *has_loc = false;
    cJSON *root = cJSON_ParseWithLength((const char *)json, len);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return rh_diag_fail(diag, RH_EINVAL, "PUSH_DATA: payload is not a JSON object");
    }
    const cJSON *stat = cJSON_GetObjectItemCaseSensitive(root, "stat");
    if (cJSON_IsObject(stat)) {
        const cJSON *la = cJSON_GetObjectItemCaseSensitive(stat, "lati");
        const cJSON *lo = cJSON_GetObjectItemCaseSensitive(stat, "long");
        if (cJSON_IsNumber(la) && cJSON_IsNumber(lo) && has_loc && lat && lon) {
            *has_loc = true;
            *lat = la->valuedouble;
            *lon = lo->valuedouble;
        }
    }
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(root, "rxpk");
    bool first_bad = true;
    const cJSON *it;
    if (arr && !cJSON_IsArray(arr)) {
        cJSON_Delete(root);
        return rh_diag_fail(diag, RH_EINVAL, "rxpk: expected an array");
    }
    int idx = 0;
    cJSON_ArrayForEach(it, arr) {
        rh_diag_t d1;
        int rc = *n < cap ? gwmp_rxpk_from_json(it, &out[*n], &d1)
                          : rh_diag_fail(&d1, RH_ERANGE, "more than %zu entries", cap);
        if (rc == RH_OK && out[*n].stat != 1)
            rc = rh_diag_fail(&d1, RH_EUNSUPPORTED, "rxpk.stat: CRC not OK");
        if (rc == RH_OK) {
            (*n)++;
        } else {
            if (skipped)
                (*skipped)++;
            if (first_bad && rc != RH_EUNSUPPORTED) {
                first_bad = false;
                /* d1 text starts with "rxpk."; insert the index. */
                const char *rest = strncmp(d1.text, "rxpk", 4) == 0 ? d1.text + 4 : d1.text;
                rh_diag_fail(diag, RH_EINVAL, "rxpk[%d]%s%s", idx, rest[0] == '.' ? "" : ": ",
                             rest);
            }
        }
        idx++;
    }
    cJSON_Delete(root);
    return RH_OK;
}

/* ---------------------------------------------------------------- txpk */

int gwmp_txpk_build(const gwmp_txpk_t *t, char **out, size_t *len)
{
    char datr[16], b64[360];
    if (t->size > 255 || t->sf == 0 || t->bw_khz == 0)
        return RH_EINVAL;
    gwmp_datr_format(t->sf, t->bw_khz, datr);
    gwmp_b64_encode(t->data, t->size, b64);
    cJSON *root = cJSON_CreateObject();
    cJSON *o = cJSON_AddObjectToObject(root, "txpk");
    if (!o) {
        cJSON_Delete(root);
        return RH_ENOMEM;
    }
    cJSON_AddBoolToObject(o, "imme", t->imme);
    if (!t->imme)
        cJSON_AddNumberToObject(o, "tmst", t->tmst);
    cJSON_AddNumberToObject(o, "freq", gwmp_hz_to_mhz(t->freq_hz));
    cJSON_AddNumberToObject(o, "rfch", t->rfch);
    cJSON_AddNumberToObject(o, "powe", t->powe);
    cJSON_AddStringToObject(o, "modu", "LORA");
    cJSON_AddStringToObject(o, "datr", datr);
    cJSON_AddStringToObject(o, "codr", t->codr[0] ? t->codr : "4/5");
    cJSON_AddBoolToObject(o, "ipol", t->ipol);
    cJSON_AddNumberToObject(o, "size", (double)t->size);
    cJSON_AddStringToObject(o, "data", b64);
    char *s = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!s)
        return RH_ENOMEM;
    *out = s;
    *len = strlen(s);
    return RH_OK;
}

int gwmp_txpk_parse(const uint8_t *json, size_t len, gwmp_txpk_t *t, rh_diag_t *diag)
{
    memset(t, 0, sizeof *t);
    cJSON *root = cJSON_ParseWithLength((const char *)json, len);
    int rc = RH_OK;
    double v;
    const cJSON *o = cJSON_GetObjectItemCaseSensitive(root, "txpk");
    if (!cJSON_IsObject(o)) {
        rc = rh_diag_fail(diag, RH_EINVAL, "txpk: missing or not an object");
        goto out;
    }
    const cJSON *modu = cJSON_GetObjectItemCaseSensitive(o, "modu");
    if (modu && (!cJSON_IsString(modu) || strcmp(modu->valuestring, "LORA") != 0)) {
        rc = rh_diag_fail(diag, RH_EUNSUPPORTED, "txpk.modu: only LORA is supported");
        goto out;
    }
    t->imme = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "imme"));
    if ((rc = get_num(o, "tmst", 0, 4294967295.0, !t->imme, &v, "txpk", diag)) < 0)
        goto out;
    if (rc == 0)
        t->tmst = (uint32_t)v;
    if ((rc = get_num(o, "freq", 1, 4294, true, &v, "txpk", diag)) < 0)
        goto out;
    t->freq_hz = gwmp_mhz_to_hz(v);
    if ((rc = get_num(o, "rfch", 0, 255, false, &v, "txpk", diag)) < 0)
        goto out;
    if (rc == 0)
        t->rfch = (uint8_t)v;
    if ((rc = get_num(o, "powe", -30, 40, false, &v, "txpk", diag)) < 0)
        goto out;
    if (rc == 0)
        t->powe = (int)v;
    const cJSON *datr = cJSON_GetObjectItemCaseSensitive(o, "datr");
    if (!cJSON_IsString(datr) || gwmp_datr_parse(datr->valuestring, &t->sf, &t->bw_khz) < 0) {
        rc = rh_diag_fail(diag, RH_EINVAL, "txpk.datr: expected a string like \"SF7BW125\"");
        goto out;
    }
    const cJSON *codr = cJSON_GetObjectItemCaseSensitive(o, "codr");
    snprintf(t->codr, sizeof t->codr, "%s",
             cJSON_IsString(codr) && strlen(codr->valuestring) < sizeof t->codr
                 ? codr->valuestring : "4/5");
    t->ipol = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "ipol"));
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(o, "data");
    if (!cJSON_IsString(data) ||
        gwmp_b64_decode(data->valuestring, strlen(data->valuestring), t->data, sizeof t->data,
                        &t->size) < 0) {
        rc = rh_diag_fail(diag, RH_EINVAL, "txpk.data: expected base64 of at most 255 bytes");
        goto out;
    }
    if ((rc = get_num(o, "size", 0, 255, false, &v, "txpk", diag)) < 0)
        goto out;
    if (rc == 0 && (size_t)v != t->size) {
        rc = rh_diag_fail(diag, RH_EINVAL, "txpk.size: %u but data holds %zu bytes", (unsigned)v,
                          t->size);
        goto out;
    }
    rc = RH_OK;
out:
    cJSON_Delete(root);
    return rc;
}

int gwmp_txack_parse(const uint8_t *json, size_t len, char *err, size_t cap)
{
    snprintf(err, cap, "NONE");
    if (!json || len == 0)
        return RH_OK;
    cJSON *root = cJSON_ParseWithLength((const char *)json, len);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return RH_EINVAL;
    }
    const cJSON *ack = cJSON_GetObjectItemCaseSensitive(root, "txpk_ack");
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(ack, "error");
    if (cJSON_IsString(e))
        snprintf(err, cap, "%s", e->valuestring);
    cJSON_Delete(root);
    return RH_OK;
}
