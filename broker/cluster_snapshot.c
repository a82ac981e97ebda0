/* cluster_snapshot.c — table snapshots in the JetStream object store. See cluster_snapshot.h. */
#include "cluster_snapshot.h"

#include "rh_hex.h"
#include "rh_log.h"
#include "rh_time.h"

#include <cJSON.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CHUNK (128u << 10)         /* the object store's default chunk size */
#define LOAD_BATCH 50000           /* records per LMDB transaction while loading */
#define OBJ_NAME "table"
#define OBJ_NAME_B64 "dGFibGU="    /* base64url("table"), the object store's meta subject token */
#define MAGIC "RHSNAP1"            /* + NUL: 8 bytes */
#define JS_WAIT_MS 5000

typedef struct names {
    char bucket[160], stream[170], meta[220], chunks_all[220];
} names_t;

static void names_of(const rh_config_t *cfg, names_t *n)
{
    snprintf(n->bucket, sizeof n->bucket, "%s_SNAP", cfg->cluster_stream);
    snprintf(n->stream, sizeof n->stream, "OBJ_%s", n->bucket);
    snprintf(n->meta, sizeof n->meta, "$O.%s.M.%s", n->bucket, OBJ_NAME_B64);
    snprintf(n->chunks_all, sizeof n->chunks_all, "$O.%s.C.>", n->bucket);
}

static void b64url(const unsigned char *in, int len, char *out)
{
    int n = EVP_EncodeBlock((unsigned char *)out, in, len);
    for (int i = 0; i < n; i++)
        out[i] = out[i] == '+' ? '-' : out[i] == '/' ? '_' : out[i];
}

static int ensure_bucket(jsCtx *js, const rh_config_t *cfg, const names_t *n, rh_diag_t *d)
{
    jsErrCode jerr = 0;
    jsStreamInfo *si = NULL;
    natsStatus s = js_GetStreamInfo(&si, js, n->stream, NULL, &jerr);
    if (s == NATS_OK) {
        jsStreamInfo_Destroy(si);
        return RH_OK;
    }
    if (s != NATS_NOT_FOUND)
        return rh_diag_fail(d, RH_EAGAIN, "snapshot bucket %s: %s", n->bucket,
                            natsStatus_GetText(s));
    char meta_all[220];
    snprintf(meta_all, sizeof meta_all, "$O.%s.M.>", n->bucket);
    const char *subjects[2] = {n->chunks_all, meta_all};
    jsStreamConfig sc;
    jsStreamConfig_Init(&sc);
    sc.Name = n->stream;
    sc.Subjects = subjects;
    sc.SubjectsLen = 2;
    sc.Storage = js_FileStorage;
    sc.Replicas = (int64_t)cfg->cluster_replicas;
    sc.AllowRollup = true;
    sc.Discard = js_DiscardNew;
    s = js_AddStream(&si, js, &sc, NULL, &jerr);
    if (s != NATS_OK)
        return rh_diag_fail(d, RH_EAGAIN, "creating snapshot bucket %s: %s (JetStream error %d)",
                            n->bucket, natsStatus_GetText(s), (int)jerr);
    jsStreamInfo_Destroy(si);
    return RH_OK;
}

/* The latest description (parsed), or NULL with RH_OK when there is none. */
static int read_meta(jsCtx *js, const names_t *n, cJSON **out, rh_diag_t *d)
{
    *out = NULL;
    natsMsg *m = NULL;
    jsErrCode jerr = 0;
    jsOptions o;
    jsOptions_Init(&o);
    o.Wait = JS_WAIT_MS;
    natsStatus s = js_GetLastMsg(&m, js, n->stream, n->meta, &o, &jerr);
    if (s == NATS_NOT_FOUND || jerr == JSStreamNotFoundErr || jerr == JSNoMessageFoundErr)
        return RH_OK;
    if (s != NATS_OK)
        return rh_diag_fail(d, RH_EAGAIN, "snapshot description: %s (JetStream error %d)",
                            natsStatus_GetText(s), (int)jerr);
    *out = cJSON_ParseWithLength(natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m));
    natsMsg_Destroy(m);
    if (!*out)
        return rh_diag_fail(d, RH_EINVAL, "snapshot description: not JSON");
    return RH_OK;
}

static uint64_t meta_seq(const cJSON *meta)
{
    const cJSON *desc = cJSON_GetObjectItemCaseSensitive(meta, "description");
    unsigned long long seq = 0;
    if (cJSON_IsString(desc) && sscanf(desc->valuestring, "roamhub table at stream sequence %llu",
                                       &seq) == 1)
        return seq;
    return 0;
}

int cluster_snapshot_seq(jsCtx *js, const rh_config_t *cfg, uint64_t *seq, rh_diag_t *d)
{
    *seq = 0;
    names_t n;
    names_of(cfg, &n);
    cJSON *meta = NULL;
    int rc = read_meta(js, &n, &meta, d);
    if (rc == RH_OK && meta)
        *seq = meta_seq(meta);
    cJSON_Delete(meta);
    return rc;
}

/* ---- writing --------------------------------------------------------------------------------- */

typedef struct writer {
    jsCtx *js;
    char subject[260];
    uint8_t *buf;
    size_t len;
    uint64_t size, chunks;
    EVP_MD_CTX *sha;
    int failed;
    rh_diag_t *d;
} writer_t;

static int flush_chunk(writer_t *w)
{
    if (!w->len || w->failed)
        return w->failed;
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = JS_WAIT_MS;
    jsErrCode jerr = 0;
    natsStatus s = js_Publish(NULL, w->js, w->subject, w->buf, (int)w->len, &po, &jerr);
    if (s != NATS_OK) {
        rh_diag_fail(w->d, RH_EAGAIN, "snapshot chunk %llu: %s (JetStream error %d)",
                     (unsigned long long)w->chunks, natsStatus_GetText(s), (int)jerr);
        return w->failed = 1;
    }
    EVP_DigestUpdate(w->sha, w->buf, w->len);
    w->size += w->len;
    w->chunks++;
    w->len = 0;
    return 0;
}

static int put_bytes(writer_t *w, const void *p, size_t n)
{
    const uint8_t *b = p;
    while (n && !w->failed) {
        size_t k = CHUNK - w->len < n ? CHUNK - w->len : n;
        memcpy(w->buf + w->len, b, k);
        w->len += k;
        b += k;
        n -= k;
        if (w->len == CHUNK)
            flush_chunk(w);
    }
    return w->failed;
}

/* Whether a packed record is an API key local to its node (TABLE_LOCAL_KEY_NAME). */
static int local_key(rp_kind_t kind, const void *packed, size_t len)
{
    if (kind != RP_KIND_API_KEY)
        return 0;
    Roamhub__V1__ApiKey *k = roamhub__v1__api_key__unpack(NULL, len, packed);
    int local = k && k->name && !strcmp(k->name, TABLE_LOCAL_KEY_NAME);
    if (k)
        roamhub__v1__api_key__free_unpacked(k, NULL);
    return local;
}

static int dump_cb(void *ud, rp_kind_t kind, const void *packed, size_t len)
{
    writer_t *w = ud;
    if (local_key(kind, packed, len))
        return 0; /* this node's own: never in another node's table */
    uint8_t h[5] = {(uint8_t)kind};
    rh_put_be32(h + 1, (uint32_t)len);
    return put_bytes(w, h, sizeof h) || put_bytes(w, packed, len);
}

int cluster_snapshot_write(jsCtx *js, const rh_config_t *cfg, rp_db_t *db, const char *mark,
                           uint64_t *seq, rh_diag_t *d)
{
    *seq = 0;
    names_t n;
    names_of(cfg, &n);
    int rc = ensure_bucket(js, cfg, &n, d);
    if (rc)
        return rc;
    cJSON *old = NULL;
    if ((rc = read_meta(js, &n, &old, d)) == RH_EINVAL)
        rc = RH_OK; /* an unreadable description is replaced */
    if (rc)
        return rc;
    char old_nuid[64] = "";
    const cJSON *on = cJSON_GetObjectItemCaseSensitive(old, "nuid");
    if (cJSON_IsString(on))
        snprintf(old_nuid, sizeof old_nuid, "%s", on->valuestring);
    cJSON_Delete(old);

    static const char alnum[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    unsigned char rnd[22];
    char nuid[23];
    if (RAND_bytes(rnd, sizeof rnd) != 1)
        return rh_diag_fail(d, RH_EIO, "snapshot: no random bytes");
    for (size_t i = 0; i < sizeof rnd; i++)
        nuid[i] = alnum[rnd[i] % (sizeof alnum - 1)];
    nuid[22] = '\0';
    writer_t w = {.js = js, .d = d};
    snprintf(w.subject, sizeof w.subject, "$O.%s.C.%s", n.bucket, nuid);
    w.buf = malloc(CHUNK);
    w.sha = EVP_MD_CTX_new();
    if (!w.buf || !w.sha || EVP_DigestInit_ex(w.sha, EVP_sha256(), NULL) != 1) {
        free(w.buf);
        EVP_MD_CTX_free(w.sha);
        return rh_diag_fail(d, RH_ENOMEM, "snapshot: out of memory");
    }
    uint8_t head[8] = MAGIC; /* the sequence is in the description (rp_dump reads it) */
    put_bytes(&w, head, sizeof head);
    rh_diag_t dd;
    rc = rp_dump(db, mark, seq, dump_cb, &w, &dd);
    if (rc == RH_OK)
        flush_chunk(&w);
    uint8_t md[32];
    unsigned mdl = 0;
    EVP_DigestFinal_ex(w.sha, md, &mdl);
    EVP_MD_CTX_free(w.sha);
    free(w.buf);
    if (rc)
        return rh_diag_fail(d, rc, "snapshot: %s", dd.text);
    if (w.failed)
        return RH_EAGAIN; /* the chunks written are orphans, purged by the next snapshot */
    char dig[64] = "SHA-256=", mtime[40];
    b64url(md, 32, dig + 8);
    time_t now = (time_t)(rh_real_ms() / 1000);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(mtime, sizeof mtime, "%Y-%m-%dT%H:%M:%SZ", &tm);
    char desc[96];
    snprintf(desc, sizeof desc, "roamhub table at stream sequence %llu", (unsigned long long)*seq);
    cJSON *meta = cJSON_CreateObject();
    cJSON_AddStringToObject(meta, "name", OBJ_NAME);
    cJSON_AddStringToObject(meta, "description", desc);
    cJSON_AddStringToObject(meta, "bucket", n.bucket);
    cJSON_AddStringToObject(meta, "nuid", nuid);
    cJSON_AddNumberToObject(meta, "size", (double)w.size);
    cJSON_AddNumberToObject(meta, "chunks", (double)w.chunks);
    cJSON_AddStringToObject(meta, "mtime", mtime);
    cJSON_AddStringToObject(meta, "digest", dig);
    cJSON *opts = cJSON_AddObjectToObject(meta, "options");
    if (opts)
        cJSON_AddNumberToObject(opts, "max_chunk_size", CHUNK);
    char *text = cJSON_PrintUnformatted(meta);
    cJSON_Delete(meta);
    if (!text)
        return rh_diag_fail(d, RH_ENOMEM, "snapshot: out of memory");
    natsMsg *m = NULL;
    natsStatus s = natsMsg_Create(&m, n.meta, NULL, text, (int)strlen(text));
    free(text);
    if (s == NATS_OK)
        s = natsMsgHeader_Set(m, "Nats-Rollup", "sub"); /* keep only the latest description */
    jsErrCode jerr = 0;
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = JS_WAIT_MS;
    if (s == NATS_OK)
        s = js_PublishMsg(NULL, js, m, &po, &jerr);
    natsMsg_Destroy(m);
    if (s != NATS_OK)
        return rh_diag_fail(d, RH_EAGAIN, "snapshot description: %s (JetStream error %d)",
                            natsStatus_GetText(s), (int)jerr);
    if (old_nuid[0] && strcmp(old_nuid, nuid)) { /* the previous snapshot's chunks */
        char old_subj[260];
        snprintf(old_subj, sizeof old_subj, "$O.%s.C.%s", n.bucket, old_nuid);
        jsOptions o;
        jsOptions_Init(&o);
        o.Stream.Purge.Subject = old_subj;
        js_PurgeStream(js, n.stream, &o, &jerr);
    }
    RH_LOG(RH_LOG_INFO, "cluster", "table snapshot written seq=%llu bytes=%llu chunks=%llu",
           (unsigned long long)*seq, (unsigned long long)w.size, (unsigned long long)w.chunks);
    return RH_OK;
}

/* ---- loading --------------------------------------------------------------------------------- */

/* This node's local API keys (TABLE_LOCAL_KEY_NAME), kept across a replacing load. */
typedef struct local_keys {
    ProtobufCMessage *keys[16];
    size_t n;
} local_keys_t;

static int keep_cb(void *ud, rp_kind_t kind, const ProtobufCMessage *msg)
{
    local_keys_t *k = ud;
    const Roamhub__V1__ApiKey *key = (const Roamhub__V1__ApiKey *)msg;
    if (kind != RP_KIND_API_KEY || !key->name || strcmp(key->name, TABLE_LOCAL_KEY_NAME) ||
        k->n == sizeof k->keys / sizeof k->keys[0])
        return 0;
    size_t l = protobuf_c_message_get_packed_size(msg);
    uint8_t *b = malloc(l ? l : 1);
    if (!b)
        return 1;
    protobuf_c_message_pack(msg, b);
    k->keys[k->n] = protobuf_c_message_unpack(&roamhub__v1__api_key__descriptor, NULL, l, b);
    free(b);
    if (!k->keys[k->n])
        return 1;
    k->n++;
    return 0;
}

/* Applies the records of buf[off..len) in batches; the last commit sets the mark. replace: one
 * transaction that first clears every record kind (the table becomes the snapshot's at once:
 * readers see the old table until the commit), run again when the map had to grow. */
static int load_records(rp_db_t *db, const uint8_t *buf, size_t len, size_t off, const char *mark,
                        uint64_t seq, int replace, const local_keys_t *keep, size_t *count,
                        rh_diag_t *d)
{
    *count = 0;
    const size_t start = off;
    do { /* at least one transaction: an empty table's snapshot still sets the mark */
        rp_txn_t *t = NULL;
        int rc = rp_txn_begin(db, "snapshot",
                              RP_TXN_AUDIT_SUMMARY | (replace ? RP_TXN_NO_OP_LOG : 0u), &t, d);
        if (rc)
            return rc;
        for (int k = 0; replace && k < RP_KIND_COUNT && rc == RH_OK; k++)
            rc = rp_txn_clear(t, (rp_kind_t)k, d);
        size_t in_batch = 0;
        while (off < len && (replace || in_batch < LOAD_BATCH) && rc == RH_OK) {
            if (len - off < 5) {
                rc = rh_diag_fail(d, RH_EINVAL, "snapshot: record header cut at byte %zu", off);
                break;
            }
            unsigned kind = buf[off];
            size_t rl = rh_get_be32(buf + off + 1);
            const ProtobufCMessageDescriptor *desc =
                kind < RP_KIND_COUNT ? rp_kind_descriptor((rp_kind_t)kind) : NULL;
            if (!desc || rl > len - off - 5) {
                rc = rh_diag_fail(d, RH_EINVAL, "snapshot: bad record at byte %zu", off);
                break;
            }
            ProtobufCMessage *m = protobuf_c_message_unpack(desc, NULL, rl, buf + off + 5);
            if (!m) {
                rc = rh_diag_fail(d, RH_EINVAL, "snapshot: a %s record does not unpack at byte %zu",
                                  rp_kind_name((rp_kind_t)kind), off);
                break;
            }
            rc = rp_txn_put(t, (rp_kind_t)kind, m, RP_PUT_UPSERT, d);
            protobuf_c_message_free_unpacked(m, NULL);
            off += 5 + rl;
            in_batch++;
        }
        for (size_t i = 0; replace && off >= len && rc == RH_OK && i < keep->n; i++)
            rc = rp_txn_put(t, RP_KIND_API_KEY, keep->keys[i], RP_PUT_UPSERT, d);
        if (rc == RH_OK && off >= len)
            rc = rp_txn_set_mark(t, mark, seq, d);
        if (rc == RH_OK)
            rc = rp_txn_commit(t, d);
        else
            rp_txn_abort(t);
        if (rc == RH_EAGAIN && replace) { /* the map grew (no op log): the whole load again */
            off = start;
            *count = 0;
            continue;
        }
        if (rc)
            return rc;
        *count += in_batch;
    } while (off < len);
    return RH_OK;
}

int cluster_snapshot_load(natsConnection *nc, jsCtx *js, const rh_config_t *cfg, rp_db_t *db,
                          const char *mark, int replace, table_registry_fn reg, void *reg_arg,
                          uint64_t *seq, rh_diag_t *d)
{
    (void)nc;
    *seq = 0;
    names_t n;
    names_of(cfg, &n);
    cJSON *meta = NULL;
    int rc = read_meta(js, &n, &meta, d);
    if (rc || !meta)
        return rc;
    const cJSON *jn = cJSON_GetObjectItemCaseSensitive(meta, "nuid"),
                *js_ = cJSON_GetObjectItemCaseSensitive(meta, "size"),
                *jc = cJSON_GetObjectItemCaseSensitive(meta, "chunks"),
                *jd = cJSON_GetObjectItemCaseSensitive(meta, "digest");
    uint64_t want_seq = meta_seq(meta);
    if (!cJSON_IsString(jn) || !cJSON_IsNumber(js_) || !cJSON_IsNumber(jc) ||
        !cJSON_IsString(jd) || js_->valuedouble < 8 || js_->valuedouble > (double)CLUSTER_SNAPSHOT_MAX ||
        jc->valuedouble < 1 || !want_seq) {
        cJSON_Delete(meta);
        return rh_diag_fail(d, RH_EINVAL, "snapshot description: nuid, size (8..%llu), chunks, "
                            "digest or sequence missing or out of range", (unsigned long long)CLUSTER_SNAPSHOT_MAX);
    }
    size_t size = (size_t)js_->valuedouble;
    uint64_t chunks = (uint64_t)jc->valuedouble;
    char subj[260], digest[64];
    snprintf(subj, sizeof subj, "$O.%s.C.%s", n.bucket, jn->valuestring);
    snprintf(digest, sizeof digest, "%s", jd->valuestring);
    cJSON_Delete(meta);
    uint8_t *buf = malloc(size);
    if (!buf)
        return rh_diag_fail(d, RH_ENOMEM, "snapshot: %zu bytes: out of memory", size);
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = n.stream;
    so.Ordered = true;
    jsErrCode jerr = 0;
    natsSubscription *sub = NULL;
    natsStatus s = js_SubscribeSync(&sub, js, subj, NULL, &so, &jerr);
    size_t got = 0;
    uint64_t nchunks = 0;
    while (s == NATS_OK && nchunks < chunks) {
        natsMsg *m = NULL;
        s = natsSubscription_NextMsg(&m, sub, JS_WAIT_MS);
        if (s != NATS_OK)
            break;
        size_t l = (size_t)natsMsg_GetDataLength(m);
        if (l > size - got) {
            natsMsg_Destroy(m);
            s = NATS_ERR;
            break;
        }
        memcpy(buf + got, natsMsg_GetData(m), l);
        got += l;
        nchunks++;
        natsMsg_Destroy(m);
    }
    if (sub) {
        natsSubscription_Unsubscribe(sub);
        natsSubscription_Destroy(sub);
    }
    if (s != NATS_OK || got != size) {
        free(buf);
        return rh_diag_fail(d, s == NATS_ERR || (s == NATS_OK && got != size) ? RH_EINVAL : RH_EAGAIN,
                            "snapshot: read %zu of %zu bytes in %llu of %llu chunks (%s)", got, size,
                            (unsigned long long)nchunks, (unsigned long long)chunks,
                            natsStatus_GetText(s));
    }
    uint8_t md[32];
    unsigned mdl = 0;
    char dig[64] = "SHA-256=";
    EVP_Digest(buf, size, md, &mdl, EVP_sha256(), NULL);
    b64url(md, 32, dig + 8);
    if (strcmp(dig, digest) || memcmp(buf, MAGIC, 8)) {
        free(buf);
        return rh_diag_fail(d, RH_EINVAL, "snapshot: digest or magic mismatch (%s)", digest);
    }
    uint64_t t0 = rh_mono_ms();
    size_t count = 0;
    local_keys_t keep = {{0}, 0};
    if (replace) {
        char next[RP_PAGE_TOKEN_MAX];
        rc = rp_list(db, RP_KIND_API_KEY, NULL, 0, keep_cb, &keep, next, sizeof next, d);
    }
    if (rc == RH_OK)
        rc = load_records(db, buf, size, 8, mark, want_seq, replace, &keep, &count, d);
    for (size_t i = 0; i < keep.n; i++)
        protobuf_c_message_free_unpacked(keep.keys[i], NULL);
    free(buf);
    if (rc)
        return rc;
    if (reg) {
        rh_diag_t rd;
        if (reg(reg_arg, RP_KIND_MEMBER, NULL, NULL, &rd) != RH_OK)
            RH_LOG(RH_LOG_WARN, "cluster", "registry not rebuilt after the snapshot err=\"%s\"",
                   rd.text);
    }
    *seq = want_seq;
    RH_LOG(RH_LOG_INFO, "cluster", "table snapshot loaded seq=%llu records=%zu bytes=%zu ms=%llu",
           (unsigned long long)want_seq, count, size, (unsigned long long)(rh_mono_ms() - t0));
    return RH_OK;
}
