/*
 * fuzz_bi_fast.c — differential libFuzzer target: the one-pass decoder (proto/bi_fast.h) against
 * the full decoder (bi_msg_decode) on the same bytes. Invariants (abort on violation):
 *  - bi_fast_decode answers only RH_OK or RH_EAGAIN, and a message only with RH_OK;
 *  - when it accepts, bi_msg_decode accepts too, with the same typed view (every field of
 *    bi_fields_t: header, presence bits, values, strings, PHYPayload bytes, ULMetaData,
 *    DLMetaData and every GWInfo element, key envelopes), the same bi_msg_is_canonical_for
 *    answer for every dialect combination, and byte-identical encodings (which parse the
 *    lazily built tree) — also after stripping GWInfo fields and after header edits; GWInfo
 *    members stripped from the bytes and spliced out hold the values the full decoder's
 *    encoding of the same strip and edits holds (frequencies as the same whole number of Hz:
 *    the encoder rounds them there, bytes forwarded as received keep the sender's digits); bytes whose hex case the one pass respells
 *    (the full decoder's message re-encodes instead) are canonical for the dialect and hold the
 *    values of that encoding;
 *  - bi_msg_decode_fast gives bi_msg_decode's decision, ResultCode, error and Description.
 * Exported for the unit test: bi_fast_differential() (same checks on one body; returns whether
 * the one pass accepted it).
 * The corpus (corpus/bi_fast/) is the bi_decode corpus, the JSON bodies of the peer_request and
 * peer_response corpora and the TS002 examples of ../shared/vectors/bi_json_examples.json, made
 * by make_bi_fast_corpus.py; it replays as ctest case fuzz_replay_bi_fast.
 */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bi_fast.h"
#include "bi_msg.h"

int bi_fast_differential(const char *body, size_t len);

static void check(int cond, const char *what)
{
    if (!cond) {
        fprintf(stderr, "fast/full decoders differ: %s\n", what);
        abort();
    }
}

static void same_str(const char *a, const char *b, const char *what)
{
    check((a == NULL) == (b == NULL), what);
    if (a)
        check(strcmp(a, b) == 0, what);
}

static void same_dbl(double a, double b, const char *what)
{
    check(memcmp(&a, &b, sizeof a) == 0, what); /* bit for bit (-0.0 too) */
}

/* Frequencies in MHz: bit for bit, or (hz) as the same whole number of Hz — the encoder writes
 * ULFreq and DLMetaData's DLFreq1/DLFreq2 rounded to whole Hz (bi_build.c), so bytes forwarded as
 * received (868.0999999999999) and the encoding of the same message (868.1) agree only there. */
static void same_freq(double a, double b, bool hz, const char *what)
{
    if (hz)
        check(round(a * 1e6) == round(b * 1e6), what);
    else
        same_dbl(a, b, what);
}

static void same_gw(const bi_gwinfo_t *a, const bi_gwinfo_t *b, size_t na, size_t nb)
{
    check(na == nb, "GWInfo count");
    check((a == NULL) == (b == NULL), "GWInfo array");
    for (size_t i = 0; i < na; i++) {
        check(a[i].present == b[i].present, "GWInfo present");
        check(a[i].id_len == b[i].id_len && a[i].id == b[i].id, "GWInfo ID");
        check(a[i].fine_recv_time == b[i].fine_recv_time, "GWInfo FineRecvTime");
        check(a[i].rf_region == b[i].rf_region, "GWInfo RFRegion");
        check(a[i].rssi == b[i].rssi, "GWInfo RSSI");
        same_dbl(a[i].snr, b[i].snr, "GWInfo SNR");
        same_dbl(a[i].lat, b[i].lat, "GWInfo Lat");
        same_dbl(a[i].lon, b[i].lon, "GWInfo Lon");
        same_str(a[i].ul_token, b[i].ul_token, "GWInfo ULToken");
        check(a[i].dl_allowed == b[i].dl_allowed, "GWInfo DLAllowed");
    }
}

static void same_key(const bi_key_envelope_t *a, const bi_key_envelope_t *b)
{
    same_str(a->kek_label, b->kek_label, "KEKLabel");
    check(a->aes_key_len == b->aes_key_len && memcmp(a->aes_key, b->aes_key, sizeof a->aes_key) == 0,
          "AESKey");
}

/* hz: frequencies compared in whole Hz (same_freq), for bytes against an encoding. */
static void same_fields(const bi_fields_t *a, const bi_fields_t *b, bool hz)
{
    const bi_header_t *x = &a->hdr, *y = &b->hdr;
    check(x->present == y->present && x->version == y->version && x->type == y->type, "header");
    check(x->sender_id.kind == y->sender_id.kind && x->sender_id.value == y->sender_id.value,
          "SenderID");
    check(x->receiver_id.kind == y->receiver_id.kind && x->receiver_id.value == y->receiver_id.value,
          "ReceiverID");
    check(x->transaction_id == y->transaction_id, "TransactionID");
    check(x->sender_nsid == y->sender_nsid && x->receiver_nsid == y->receiver_nsid, "NSIDs");
    check(a->present == b->present, "present");
    same_str(a->sender_token, b->sender_token, "SenderToken");
    same_str(a->receiver_token, b->receiver_token, "ReceiverToken");
    check((a->vs_extension == NULL) == (b->vs_extension == NULL), "VSExtension");
    check(a->result_code == b->result_code, "ResultCode");
    same_str(a->result_code_text, b->result_code_text, "ResultCode text");
    same_str(a->result_description, b->result_description, "Description");
    check(a->phy_payload_len == b->phy_payload_len &&
              (a->phy_payload == NULL) == (b->phy_payload == NULL) &&
              (!a->phy_payload_len || memcmp(a->phy_payload, b->phy_payload, a->phy_payload_len) == 0),
          "PHYPayload");
    const bi_ulmeta_t *u = &a->ul, *v = &b->ul;
    check(u->present == v->present && u->dev_eui == v->dev_eui && u->dev_addr == v->dev_addr &&
              u->fport == v->fport && u->fcnt_up == v->fcnt_up && u->fcnt_down == v->fcnt_down &&
              u->confirmed == v->confirmed && u->data_rate == v->data_rate &&
              u->margin == v->margin && u->battery == v->battery && u->rf_region == v->rf_region &&
              u->gw_cnt == v->gw_cnt,
          "ULMetaData");
    same_freq(u->ul_freq, v->ul_freq, hz, "ULFreq");
    same_str(u->fns_ul_token, v->fns_ul_token, "ULMetaData.FNSULToken");
    check(memcmp(&u->recv_time, &v->recv_time, sizeof u->recv_time) == 0, "RecvTime");
    same_gw(u->gw, v->gw, u->gw_count, v->gw_count);
    const bi_dlmeta_t *d = &a->dl, *e = &b->dl;
    check(d->present == e->present && d->dev_eui == e->dev_eui && d->fport == e->fport &&
              d->fcnt_down == e->fcnt_down && d->confirmed == e->confirmed &&
              d->rx_delay1 == e->rx_delay1 && d->class_mode == e->class_mode &&
              d->data_rate1 == e->data_rate1 && d->data_rate2 == e->data_rate2 &&
              d->hi_priority == e->hi_priority,
          "DLMetaData");
    same_freq(d->dl_freq1, e->dl_freq1, hz, "DLMetaData.DLFreq1");
    same_freq(d->dl_freq2, e->dl_freq2, hz, "DLMetaData.DLFreq2");
    same_str(d->fns_ul_token, e->fns_ul_token, "DLMetaData.FNSULToken");
    same_gw(d->gw, e->gw, d->gw_count, e->gw_count);
    check(a->lifetime == b->lifetime && a->dev_eui == b->dev_eui && a->dev_addr == b->dev_addr &&
              a->fcnt_up == b->fcnt_up && a->hnetid == b->hnetid && a->hnsid == b->hnsid,
          "body integers");
    same_key(&a->nwk_s_key, &b->nwk_s_key);
    same_key(&a->f_nwk_s_int_key, &b->f_nwk_s_int_key);
    same_key(&a->s_nwk_s_int_key, &b->s_nwk_s_int_key);
    same_key(&a->nwk_s_enc_key, &b->nwk_s_enc_key);
    same_key(&a->app_s_key, &b->app_s_key);
    check((a->service_profile == NULL) == (b->service_profile == NULL) &&
              (a->device_profile == NULL) == (b->device_profile == NULL),
          "profiles");
    same_str(a->device_profile_timestamp, b->device_profile_timestamp, "DeviceProfileTimestamp");
    same_str(a->roaming_activation_type, b->roaming_activation_type, "RoamingActivationType");
    same_str(a->mac_version, b->mac_version, "MACVersion");
    same_dbl(a->dl_freq1, b->dl_freq1, "DLFreq1");
    same_dbl(a->dl_freq2, b->dl_freq2, "DLFreq2");
    check(a->dl_settings == b->dl_settings && a->rx_delay == b->rx_delay &&
              memcmp(a->cf_list, b->cf_list, sizeof a->cf_list) == 0,
          "join fields");
}

static void same_encoding(bi_msg_t *a, bi_msg_t *b, const bi_dialect_t *d)
{
    char *x = NULL, *y = NULL;
    size_t lx = 0, ly = 0;
    int rx = bi_msg_encode(a, d, &x, &lx), ry = bi_msg_encode(b, d, &y, &ly);
    if (rx == RH_OK && ry == RH_OK)
        check(lx == ly && memcmp(x, y, lx) == 0, "encoding");
    bi_buf_free(x);
    bi_buf_free(y);
}

static bi_msg_t *decode_or_die(const char *text, size_t len, const char *what)
{
    bi_msg_t *m = NULL;
    bi_error_t err;
    if (bi_msg_decode(text, len, &m, &err) != RH_OK) {
        fprintf(stderr, "%s does not decode: %s\n%.*s\n", what, err.description, (int)len, text);
        check(0, what);
    }
    return m;
}

/* GWInfo members dropped from the bytes (no tree yet; what 0: none) and hex case respelled: the
 * spliced bytes hold the same values as the full decoder's encoding of the same strip and header
 * edits. */
static void spliced_after_strip(bi_msg_t *fast, const char *body, size_t size, unsigned what,
                                const bi_header_edit_t *e)
{
    bi_dialect_t cs = BI_DIALECT_CHIRPSTACK;
    char *y = NULL;
    size_t ly = 0;
    if (bi_msg_splice_header(fast, body, size, &cs, e, &y, &ly) != RH_OK)
        return;
    check(strlen(y) == ly, "spliced length");
    bi_msg_t *ref = decode_or_die(body, size, "body");
    bi_msg_strip_gwinfo(ref, what);
    check(bi_msg_apply_header_edit(ref, e) == RH_OK, "reference edit");
    char *x = NULL;
    size_t lx = 0;
    if (bi_msg_encode(ref, &cs, &x, &lx) == RH_OK && lx <= BI_MAX_BODY) {
        bi_msg_t *a = decode_or_die(y, ly, "spliced bytes"), *b = decode_or_die(x, lx, "encoding");
        same_fields(bi_msg_fields(a), bi_msg_fields(b), true);
        same_encoding(a, b, &cs);
        bi_msg_free(a);
        bi_msg_free(b);
    }
    bi_buf_free(x);
    bi_buf_free(y);
    bi_msg_free(ref);
}

int bi_fast_differential(const char *body, size_t size)
{
    bi_msg_t *fast = NULL, *full = NULL, *wrap = NULL;
    bi_error_t efull, ewrap;
    int rf = bi_fast_decode(body, size, &fast);
    check(rf == RH_OK || rf == RH_EAGAIN, "bi_fast_decode answers RH_OK or RH_EAGAIN");
    check((rf == RH_OK) == (fast != NULL), "a message exactly when accepted");
    int rfull = bi_msg_decode(body, size, &full, &efull);
    int rwrap = bi_msg_decode_fast(body, size, &wrap, &ewrap);
    check(rwrap == rfull, "bi_msg_decode_fast decides as bi_msg_decode");
    if (rfull != RH_OK) {
        check(rf != RH_OK, "the one pass never accepts what bi_msg_decode refuses");
        check(ewrap.code == efull.code && ewrap.err == efull.err &&
                  strcmp(ewrap.description, efull.description) == 0 &&
                  memcmp(&ewrap.hdr, &efull.hdr, sizeof efull.hdr) == 0,
              "the same refusal");
        return 0;
    }
    same_fields(bi_msg_fields(wrap), bi_msg_fields(full), false);
    bi_msg_free(wrap);
    if (rf != RH_OK) {
        bi_msg_free(full);
        return 0;
    }
    same_fields(bi_msg_fields(fast), bi_msg_fields(full), false);
    /* Every dialect combination the relay can ask for. */
    for (int v = 0; v < 3; v++)
        for (int hc = 0; hc < 2; hc++)
            for (int names = 0; names < 2; names++)
                for (int flags = 0; flags < 4; flags++) {
                    bi_dialect_t d = {(bi_version_t)(v == 0   ? BI_VERSION_UNKNOWN
                                                     : v == 1 ? BI_VERSION_1_0
                                                              : BI_VERSION_1_1),
                                      (bi_hex_case_t)hc, (bi_region_names_t)names, flags & 1,
                                      (flags & 2) != 0};
                    check(bi_msg_is_canonical_for(fast, &d) == bi_msg_is_canonical_for(full, &d),
                          "is_canonical_for");
                }
    /* The raw-bytes header splice, then encodings (the lazily parsed tree), strip, edits. */
    bi_header_edit_t e = {true, 0x01020304u, false, {BI_ID_NONE, 0}, true, {BI_ID_NETID, 0x000013}};
    bi_dialect_t cs = BI_DIALECT_CHIRPSTACK;
    char *sa = NULL, *sb = NULL;
    size_t la = 0, lb = 0;
    int ra = bi_msg_splice_header(fast, body, size, &cs, &e, &sa, &la);
    int rb = bi_msg_splice_header(full, body, size, &cs, &e, &sb, &lb);
    if (ra == RH_OK && rb == RH_EAGAIN && !bi_msg_is_canonical_for(full, &cs)) {
        /* hex case respelled in the bytes (only the one pass records where the hex fields are):
         * canonical for the dialect, the values of the full decoder's encoding */
        bi_msg_t *a = decode_or_die(sa, la, "respelled bytes");
        check(strlen(sa) == la, "respelled length");
        check(bi_msg_is_canonical_for(a, &cs), "respelled bytes canonical");
        bi_msg_free(a);
        spliced_after_strip(fast, body, size, 0, &e);
    } else {
        check(ra == rb && (ra != RH_OK || (la == lb && memcmp(sa, sb, la) == 0)), "splice");
    }
    bi_buf_free(sa);
    bi_buf_free(sb);
    unsigned what = (unsigned)size & 3;
    check(bi_msg_strip_gwinfo(fast, what) == bi_msg_strip_gwinfo(full, what), "strip count");
    same_fields(bi_msg_fields(fast), bi_msg_fields(full), false);
    spliced_after_strip(fast, body, size, what, &e);
    same_encoding(fast, full, &cs);
    bi_dialect_t tts = BI_DIALECT_TTS_1_1;
    same_encoding(fast, full, &tts);
    check(bi_msg_apply_header_edit(fast, &e) == bi_msg_apply_header_edit(full, &e), "header edit");
    same_encoding(fast, full, &cs);
    check(bi_msg_drop_downlink(fast) == bi_msg_drop_downlink(full), "drop downlink");
    same_fields(bi_msg_fields(fast), bi_msg_fields(full), false);
    same_encoding(fast, full, &tts);
    bi_msg_free(fast);
    bi_msg_free(full);
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    bi_fast_differential((const char *)data, size);
    return 0;
}
