/* Unit tests for the store: create/update/delete modes for every record kind, audit records,
 * atomic batches, listing with pagination, map full (fail cleanly, lookups keep working) and map
 * growth, join routes, statistics buckets, and the JSON import/export format. */
#include "rp_fixture.h"

#include "rp_json.h"

static int count_cb(void *ud, rp_kind_t kind, const ProtobufCMessage *m)
{
    (void)kind;
    (void)m;
    (*(int *)ud)++;
    return 0;
}

typedef struct audits {
    int n;
    char last_action[16], last_kind[32], last_key[64], last_actor[32];
    int last_has_before, last_has_after;
} audits_t;

static int audit_cb(void *ud, const Roamhub__V1__AuditRecord *a)
{
    audits_t *s = ud;
    s->n++;
    snprintf(s->last_action, sizeof s->last_action, "%s", a->action);
    snprintf(s->last_kind, sizeof s->last_kind, "%s", a->kind);
    snprintf(s->last_key, sizeof s->last_key, "%s", a->key);
    snprintf(s->last_actor, sizeof s->last_actor, "%s", a->actor);
    s->last_has_before = a->before.len > 0;
    s->last_has_after = a->after.len > 0;
    return 0;
}

static audits_t audit_all(fx_t *f)
{
    audits_t s;
    memset(&s, 0, sizeof s);
    assert_int_equal(rp_audit_list(f->db, 0, 0, audit_cb, &s, NULL), RH_OK);
    return s;
}

static void test_crud_modes_and_audit(void **state)
{
    fx_t *f = *state;
    rh_diag_t d;
    Roamhub__V1__Endpoint e = ROAMHUB__V1__ENDPOINT__INIT;
    e.id = "netb";
    e.url = "https://netb.example/";
    e.net_id = 0x505;
    assert_int_equal(rp_put(f->db, "alice", RP_KIND_ENDPOINT, &e.base, RP_PUT_UPDATE, &d),
                     RH_ENOTFOUND);
    assert_non_null(strstr(d.text, "endpoint netb does not exist"));
    assert_int_equal(rp_put(f->db, "alice", RP_KIND_ENDPOINT, &e.base, RP_PUT_CREATE, &d), RH_OK);
    audits_t a = audit_all(f);
    assert_int_equal(a.n, 1);
    assert_string_equal(a.last_action, "create");
    assert_string_equal(a.last_kind, "endpoint");
    assert_string_equal(a.last_key, "netb");
    assert_string_equal(a.last_actor, "alice");
    assert_false(a.last_has_before);
    assert_true(a.last_has_after);
    assert_int_equal(rp_put(f->db, "alice", RP_KIND_ENDPOINT, &e.base, RP_PUT_CREATE, &d),
                     RH_EEXIST);
    e.timeout_ms = 1500;
    assert_int_equal(rp_put(f->db, "bob", RP_KIND_ENDPOINT, &e.base, RP_PUT_UPDATE, &d), RH_OK);
    a = audit_all(f);
    assert_int_equal(a.n, 2);
    assert_string_equal(a.last_action, "update");
    assert_true(a.last_has_before);
    ProtobufCMessage *got;
    assert_int_equal(rp_get(f->db, RP_KIND_ENDPOINT, &e.base, &got, &d), RH_OK);
    assert_non_null(got);
    assert_int_equal(((Roamhub__V1__Endpoint *)(void *)got)->timeout_ms, 1500);
    protobuf_c_message_free_unpacked(got, NULL);
    int del;
    assert_int_equal(rp_delete(f->db, "bob", RP_KIND_ENDPOINT, &e.base, &del, &d), RH_OK);
    assert_int_equal(del, 1);
    a = audit_all(f);
    assert_int_equal(a.n, 3);
    assert_string_equal(a.last_action, "delete");
    assert_true(a.last_has_before);
    assert_false(a.last_has_after);
    assert_int_equal(rp_get(f->db, RP_KIND_ENDPOINT, &e.base, &got, &d), RH_OK);
    assert_null(got);
    /* validation names the field */
    e.url = "ftp://x";
    assert_int_equal(rp_put(f->db, "bob", RP_KIND_ENDPOINT, &e.base, RP_PUT_UPSERT, &d), RH_EINVAL);
    assert_non_null(strstr(d.text, "endpoint.url"));
    e.url = "https://x";
    e.id = "";
    assert_int_equal(rp_put(f->db, "bob", RP_KIND_ENDPOINT, &e.base, RP_PUT_UPSERT, &d), RH_EINVAL);
    assert_non_null(strstr(d.text, "endpoint.id"));
    /* members and API keys */
    Roamhub__V1__Member m = ROAMHUB__V1__MEMBER__INIT;
    m.id = "ttn";
    uint32_t ids[] = {0x13};
    m.net_ids = ids;
    m.n_net_ids = 1;
    ProtobufCBinaryData h = {5, (uint8_t *)"short"};
    m.api_key_hashes = &h;
    m.n_api_key_hashes = 1;
    assert_int_equal(rp_put(f->db, "op", RP_KIND_MEMBER, &m.base, RP_PUT_UPSERT, &d), RH_EINVAL);
    assert_non_null(strstr(d.text, "member.api_key_hashes[0]"));
    m.n_api_key_hashes = 0;
    assert_int_equal(rp_put(f->db, "op", RP_KIND_MEMBER, &m.base, RP_PUT_UPSERT, &d), RH_OK);
    Roamhub__V1__ApiKey k = ROAMHUB__V1__API_KEY__INIT;
    k.id = "key-1";
    k.tenant_id = "bad tenant";
    assert_int_equal(rp_put(f->db, "op", RP_KIND_API_KEY, &k.base, RP_PUT_UPSERT, &d), RH_EINVAL);
    assert_non_null(strstr(d.text, "api_key.tenant_id"));
    k.tenant_id = "";
    assert_int_equal(rp_put(f->db, "op", RP_KIND_API_KEY, &k.base, RP_PUT_UPSERT, &d), RH_OK);
    Roamhub__V1__Tenant t = ROAMHUB__V1__TENANT__INIT;
    t.net_id = 0x13;
    assert_int_equal(rp_put(f->db, "op", RP_KIND_TENANT, &t.base, RP_PUT_UPSERT, &d), RH_EINVAL);
    assert_non_null(strstr(d.text, "tenant.tenant_id"));
    size_t n;
    assert_int_equal(rp_count(f->db, RP_KIND_MEMBER, &n), RH_OK);
    assert_int_equal(n, 1);
    char txt[64];
    assert_int_equal(rp_key_text(RP_KIND_MEMBER, &m.base, txt, sizeof txt), RH_OK);
    assert_string_equal(txt, "ttn");
    assert_int_equal(rp_key_text(RP_KIND_MEMBER, &m.base, txt, 2), RH_ERANGE);
}

static void test_batch_atomic(void **state)
{
    fx_t *f = *state;
    rh_diag_t d;
    rp_txn_t *t;
    assert_int_equal(rp_txn_begin(f->db, "import", 0, &t, &d), RH_OK);
    Roamhub__V1__DevAddrBlock b = ROAMHUB__V1__DEV_ADDR_BLOCK__INIT;
    b.prefix = 0x26000000;
    b.length = 8;
    b.net_id = 0x13;
    assert_int_equal(rp_txn_put(t, RP_KIND_BLOCK, &b.base, RP_PUT_CREATE, &d), RH_OK);
    /* the transaction sees its own write */
    ProtobufCMessage *got;
    assert_int_equal(rp_txn_get(t, RP_KIND_BLOCK, &b.base, &got, &d), RH_OK);
    assert_non_null(got);
    protobuf_c_message_free_unpacked(got, NULL);
    /* readers do not, until commit */
    rp_block_match_t m = fx_lookup(f, 0x26000001);
    assert_false(m.found);
    Roamhub__V1__DevAddrBlock c = b;
    c.prefix = 0x26010000;
    c.length = 16;
    c.net_id = 0x14; /* overlaps: refused, the caller aborts the batch */
    c.outside_net_id = 1;
    assert_int_equal(rp_txn_put(t, RP_KIND_BLOCK, &c.base, RP_PUT_CREATE, &d), RH_EEXIST);
    rp_txn_abort(t);
    m = fx_lookup(f, 0x26000001);
    assert_false(m.found);
    /* a good batch commits both */
    assert_int_equal(rp_txn_begin(f->db, "import", RP_TXN_AUDIT_SUMMARY, &t, &d), RH_OK);
    assert_int_equal(rp_txn_put(t, RP_KIND_BLOCK, &b.base, RP_PUT_CREATE, &d), RH_OK);
    c.net_id = 0x13;
    c.tenant_id = "x";
    assert_int_equal(rp_txn_put(t, RP_KIND_BLOCK, &c.base, RP_PUT_CREATE, &d), RH_OK);
    assert_int_equal(rp_txn_commit(t, &d), RH_OK);
    m = fx_lookup(f, 0x2601ffff);
    assert_true(m.found);
    assert_string_equal(m.owner.tenant_id, "x");
    audits_t a = audit_all(f);
    assert_int_equal(a.n, 1); /* summary */
    assert_string_equal(a.last_action, "import");
    assert_non_null(strstr(a.last_key, "puts=2"));
}

static void test_list_pagination(void **state)
{
    fx_t *f = *state;
    for (uint32_t i = 0; i < 25; i++) {
        Roamhub__V1__Network n = ROAMHUB__V1__NETWORK__INIT;
        n.net_id = 0x100 + i;
        n.name = "net";
        assert_int_equal(rp_put(f->db, "t", RP_KIND_NETWORK, &n.base, RP_PUT_CREATE, NULL), RH_OK);
    }
    char tok[RP_PAGE_TOKEN_MAX] = "";
    int total = 0, pages = 0;
    do {
        int c = 0;
        char next[RP_PAGE_TOKEN_MAX];
        assert_int_equal(rp_list(f->db, RP_KIND_NETWORK, tok, 10, count_cb, &c, next, sizeof next,
                                 NULL),
                         RH_OK);
        assert_true(c == 10 || c == 5);
        total += c;
        pages++;
        memcpy(tok, next, sizeof tok);
    } while (tok[0] && pages < 10);
    assert_int_equal(total, 25);
    assert_int_equal(pages, 3);
    int c = 0;
    char next[RP_PAGE_TOKEN_MAX];
    rh_diag_t d;
    assert_int_equal(rp_list(f->db, RP_KIND_NETWORK, "zz", 10, count_cb, &c, next, sizeof next, &d),
                     RH_EINVAL);
    assert_int_equal(rp_list(f->db, RP_KIND_NETWORK, NULL, 0, count_cb, &c, next, sizeof next, &d),
                     RH_OK);
    assert_int_equal(c, 25);
    assert_string_equal(next, "");
}

static void test_map_full_no_growth(void **state)
{
    (void)state;
    rp_db_opts_t o = {0};
    o.no_sync = 1;
    o.map_size = 1 << 20;
    o.max_map_size = 1 << 20;
    fx_t *f = fx_open_opts(&o);
    rh_diag_t d;
    assert_int_equal(fx_block(f, 0x26000000, 7, 0x13, "", 0, &d), RH_OK);
    int rc = RH_OK, i;
    char cluster[65];
    memset(cluster, 'c', 64);
    cluster[64] = 0;
    for (i = 0; i < 100000 && rc == RH_OK; i++) {
        rp_txn_t *t;
        assert_int_equal(rp_txn_begin(f->db, "t", 0, &t, &d), RH_OK);
        for (int k = 0; k < 100 && rc == RH_OK; k++) {
            Roamhub__V1__DevAddrBlock b = ROAMHUB__V1__DEV_ADDR_BLOCK__INIT;
            b.prefix = 0x26000000u | (uint32_t)(i * 100 + k) << 4;
            b.length = 28;
            b.net_id = 0x13;
            b.cluster_id = cluster;
            rc = rp_txn_put(t, RP_KIND_BLOCK, &b.base, RP_PUT_UPSERT, &d);
        }
        if (rc == RH_OK)
            rc = rp_txn_commit(t, &d);
        else {
            /* later calls keep failing; the batch is aborted */
            Roamhub__V1__Network n = ROAMHUB__V1__NETWORK__INIT;
            assert_int_equal(rp_txn_put(t, RP_KIND_NETWORK, &n.base, RP_PUT_UPSERT, NULL),
                             RH_EFULL);
            rp_txn_abort(t);
        }
    }
    assert_int_equal(rc, RH_EFULL);
    assert_non_null(strstr(d.text, "storage full"));
    assert_int_equal(rp_db_map_size(f->db), 1 << 20);
    /* lookups keep working on committed data */
    rp_block_match_t m = fx_lookup(f, 0x26000010);
    assert_true(m.found);
    assert_int_equal(m.length, 28);
    m = fx_lookup(f, 0x27ffffff);
    assert_true(m.found);
    assert_int_equal(m.length, 7);
    /* deleting frees room: small writes work again */
    Roamhub__V1__DevAddrBlock b = ROAMHUB__V1__DEV_ADDR_BLOCK__INIT;
    b.prefix = 0x26000010;
    b.length = 28;
    assert_int_equal(rp_delete(f->db, "t", RP_KIND_BLOCK, &b.base, NULL, &d), RH_OK);
    fx_teardown((void **)&f);
}

static void test_map_growth(void **state)
{
    (void)state;
    rp_db_opts_t o = {0};
    o.no_sync = 1;
    o.map_size = 1 << 20;
    o.max_map_size = 64 << 20;
    fx_t *f = fx_open_opts(&o);
    rh_diag_t d;
    /* an idle reader of another "thread" exists during growth */
    rp_reader_t *idle;
    assert_int_equal(rp_reader_new(f->db, &idle, NULL), RH_OK);
    assert_int_equal(rp_reader_begin(idle), RH_OK);
    rp_reader_end(idle);
    rp_txn_t *t;
    assert_int_equal(rp_txn_begin(f->db, "t", RP_TXN_AUDIT_SUMMARY, &t, &d), RH_OK);
    for (uint32_t i = 0; i < 20000; i++) {
        Roamhub__V1__DevAddrBlock b = ROAMHUB__V1__DEV_ADDR_BLOCK__INIT;
        b.prefix = 0x26000000u | i << 8;
        b.length = 24;
        b.net_id = 0x13;
        b.cluster_id = "cluster-with-a-longish-name-to-fill-pages";
        if (rp_txn_put(t, RP_KIND_BLOCK, &b.base, RP_PUT_UPSERT, &d))
            fail_msg("put %u: %s", i, d.text);
    }
    assert_int_equal(rp_txn_commit(t, &d), RH_OK);
    assert_true(rp_db_map_size(f->db) > (1u << 20));
    size_t n;
    assert_int_equal(rp_count(f->db, RP_KIND_BLOCK, &n), RH_OK);
    assert_int_equal(n, 20000);
    assert_int_equal(rp_reader_begin(idle), RH_OK);
    rp_block_match_t m;
    assert_int_equal(rp_lookup_devaddr(idle, 0x26004e1f, &m), RH_OK);
    assert_true(m.found);
    assert_int_equal(m.prefix, 0x26004e00);
    rp_reader_end(idle);
    rp_reader_free(idle);
    fx_teardown((void **)&f);
}

static int put_join(fx_t *f, uint64_t jp, unsigned jl, uint64_t dp, unsigned dl, uint32_t home,
                    const char *js, rh_diag_t *d)
{
    Roamhub__V1__JoinRoute r = ROAMHUB__V1__JOIN_ROUTE__INIT;
    r.join_eui_prefix = jp;
    r.join_eui_length = jl;
    r.dev_eui_prefix = dp;
    r.dev_eui_length = dl;
    r.home_net_id = home;
    r.join_server_id = (char *)(js ? js : "");
    return rp_put(f->db, "t", RP_KIND_JOIN_ROUTE, &r.base, RP_PUT_UPSERT, d);
}

static rp_join_match_t join(fx_t *f, uint64_t je, uint64_t de)
{
    rp_join_match_t m;
    assert_int_equal(rp_reader_begin(f->r), RH_OK);
    assert_int_equal(rp_lookup_join(f->r, je, de, &m), RH_OK);
    rp_reader_end(f->r);
    return m;
}

static void test_join_routes(void **state)
{
    fx_t *f = *state;
    rh_diag_t d;
    rp_join_match_t m = join(f, 1, 1);
    assert_false(m.found);
    assert_int_equal(put_join(f, 0, 0, 0, 0, 0, "js-any", &d), RH_OK);
    assert_int_equal(put_join(f, 0x70B3D57ED0000000ull, 40, 0, 0, 0x13, NULL, &d), RH_OK);
    assert_int_equal(put_join(f, 0x70B3D57ED0000000ull, 40, 0x0004A30B00000000ull, 32, 0x505,
                              NULL, &d),
                     RH_OK);
    assert_int_equal(put_join(f, 0x70B3D57ED0001000ull, 52, 0x1122000000000000ull, 16, 0x600,
                              NULL, &d),
                     RH_OK);
    m = join(f, 0x70B3D57ED0000001ull, 0x0004A30B00000042ull);
    assert_true(m.found && !m.via_join_server);
    assert_int_equal(m.home.net_id, 0x505);
    assert_int_equal(m.dev_eui_length, 32);
    m = join(f, 0x70B3D57ED0000001ull, 0x0004A30C00000042ull);
    assert_int_equal(m.home.net_id, 0x13);
    assert_int_equal(m.join_eui_length, 40);
    /* the /52 JoinEUI route only serves DevEUIs 1122...; others fall back to the /40 */
    m = join(f, 0x70B3D57ED0001FFFull, 0x1122334455667788ull);
    assert_int_equal(m.home.net_id, 0x600);
    m = join(f, 0x70B3D57ED0001FFFull, 0x9922334455667788ull);
    assert_int_equal(m.home.net_id, 0x13);
    assert_int_equal(m.join_eui_length, 40);
    m = join(f, 0x0011223344556677ull, 0);
    assert_true(m.found && m.via_join_server);
    assert_string_equal(m.join_server_id, "js-any");
    /* validation */
    assert_int_equal(put_join(f, 0x70B3D57ED0000001ull, 40, 0, 0, 0x13, NULL, &d), RH_EINVAL);
    assert_non_null(strstr(d.text, "join_eui_prefix"));
    assert_int_equal(put_join(f, 0, 65, 0, 0, 0x13, NULL, &d), RH_EINVAL);
    assert_int_equal(put_join(f, 0x7000000000000000ull, 4, 0, 0, 0x13, "js", &d), RH_EINVAL);
    assert_non_null(strstr(d.text, "either"));
}

static int stats_cb(void *ud, const rp_stats_item_t *it)
{
    rp_stats_item_t *out = ud;
    int i = 0;
    while (out[i].count)
        i++;
    out[i] = *it;
    out[i].result_code = NULL; /* not kept */
    return 0;
}

static void test_stats(void **state)
{
    fx_t *f = *state;
    rh_diag_t d;
    rp_stats_item_t it[3];
    memset(it, 0, sizeof it);
    it[0].minute = 1000;
    it[0].forwarder_net_id = 0x13;
    it[0].home_net_id = 0x505;
    it[0].cls = RP_CLASS_UPLINK_APP;
    it[0].outcome = RP_OUT_FORWARDED;
    it[0].count = 3;
    it[0].latency_us_sum = 900;
    it[0].latency_hist[rp_stats_hist_index(300)] = 3;
    it[1] = it[0];
    it[1].minute = 1001;
    it[2] = it[0];
    it[2].outcome = RP_OUT_RECEIVER_ERROR;
    it[2].result_code = "UnknownDevAddr";
    it[2].count = 1;
    assert_int_equal(rp_stats_add(f->db, it, 3, &d), RH_OK);
    assert_int_equal(rp_stats_add(f->db, it, 1, &d), RH_OK); /* merges into minute 1000 */
    rp_stats_item_t out[8];
    memset(out, 0, sizeof out);
    assert_int_equal(rp_stats_query(f->db, 0, 2000, NULL, RP_AGG_MINUTE, stats_cb, out, &d), RH_OK);
    assert_int_equal(out[0].minute, 1000);
    assert_int_equal(out[0].count, 6);
    assert_int_equal(out[0].latency_us_sum, 1800);
    assert_int_equal(out[0].latency_hist[rp_stats_hist_index(300)], 6);
    assert_int_equal(out[1].outcome, RP_OUT_RECEIVER_ERROR);
    assert_int_equal(out[2].minute, 1001);
    assert_int_equal(out[3].count, 0);
    memset(out, 0, sizeof out);
    rp_stats_filter_t flt = {RP_ANY, RP_ANY, RP_ANY, RP_OUT_FORWARDED, false, 0, 0, 0, 0};
    assert_int_equal(rp_stats_query(f->db, 0, 2000, &flt, RP_AGG_HOUR, stats_cb, out, &d), RH_OK);
    assert_int_equal(out[0].minute, 960);
    assert_int_equal(out[0].count, 9);
    assert_int_equal(out[1].count, 0);
    size_t removed;
    /* minute buckets age out; the day roll-up keeps their totals */
    assert_int_equal(rp_stats_prune_res(f->db, RP_AGG_MINUTE, 1001, 0, &removed, &d), RH_OK);
    assert_int_equal(removed, 2);
    memset(out, 0, sizeof out);
    assert_int_equal(rp_stats_query(f->db, 0, 2000, NULL, RP_AGG_DAY, stats_cb, out, &d), RH_OK);
    assert_int_equal(out[0].count, 9);
    assert_int_equal(out[0].minute, 0);
    assert_int_equal(out[1].count, 1);
    assert_int_equal(out[1].outcome, RP_OUT_RECEIVER_ERROR);
    memset(out, 0, sizeof out);
    assert_int_equal(rp_stats_query(f->db, 0, 2000, NULL, RP_AGG_MINUTE, stats_cb, out, &d), RH_OK);
    assert_int_equal(out[0].minute, 1001);
    assert_int_equal(out[0].count, 3);
    assert_int_equal(out[1].count, 0);
    /* all resolutions */
    assert_int_equal(rp_stats_prune(f->db, 2000, &removed, &d), RH_OK);
    assert_int_equal(removed, 1 + 2 + 2);
    memset(out, 0, sizeof out);
    assert_int_equal(rp_stats_query(f->db, 0, 2000, NULL, RP_AGG_DAY, stats_cb, out, &d), RH_OK);
    assert_int_equal(out[0].count, 0);
    it[0].cls = RP_CLASS_COUNT;
    assert_int_equal(rp_stats_add(f->db, it, 1, &d), RH_EINVAL);
    assert_non_null(strstr(d.text, "class"));
    assert_int_equal(rp_stats_hist_index(0), 0);
    assert_int_equal(rp_stats_hist_index(1), 1);
    assert_int_equal(rp_stats_hist_index(1ull << 60), RP_STATS_HIST - 1);
}

static const char *doc_text =
    "{\"networks\":[{\"net_id\":\"000013\",\"name\":\"TTN\",\"listed\":true,"
    "\"contacts\":[{\"name\":\"ops\",\"email\":\"o@x\"}],\"delegated_net_ids\":[\"600013\"]}],"
    "\"tenants\":[{\"net_id\":\"000013\",\"tenant_id\":\"acme\"}],"
    "\"devaddr_blocks\":[{\"prefix\":\"26000000/7\",\"net_id\":\"0x000013\"},"
    "{\"prefix\":\"26010000/16\",\"net_id\":\"000013\",\"tenant_id\":\"acme\",\"cluster_id\":\"eu1\"}],"
    "\"join_routes\":[{\"join_eui\":\"70B3D57ED0000000/40\",\"dev_eui\":\"0004a30b00000000/32\","
    "\"home_net_id\":\"000013\",\"home_tenant_id\":\"acme\"}],"
    "\"policies\":[{\"forwarder_net_id\":\"000505\",\"uplink\":{\"mac_data\":true}},"
    "{\"forwarder_net_id\":\"000505\",\"home_net_id\":\"000013\",\"home_tenant_id\":\"acme\","
    "\"downlink\":{\"join_accept\":true}}],"
    "\"endpoints\":[{\"id\":\"ep\",\"url\":\"https://e/\",\"protocol_version\":\"PROTOCOL_VERSION_1_1\","
    "\"join_eui\":\"70b3d57ed0000000\"}],"
    "\"members\":[{\"id\":\"m\",\"net_ids\":[\"000013\"],\"tenant_ids\":[\"acme\"]}],"
    "\"api_keys\":[{\"id\":\"k\",\"salt\":\"0102\",\"rights\":[\"RIGHT_ADMIN\",3]}]}";

static void test_json_roundtrip(void **state)
{
    fx_t *f = *state;
    rh_diag_t d;
    cJSON *doc = cJSON_Parse(doc_text);
    assert_non_null(doc);
    size_t n;
    if (rp_json_import(f->db, "op", doc, 0, &n, &d))
        fail_msg("import: %s", d.text);
    assert_int_equal(n, 10);
    cJSON_Delete(doc);
    cJSON *e1;
    assert_int_equal(rp_json_export(f->db, &e1, &d), RH_OK);
    char *s1 = cJSON_PrintUnformatted(e1);
    /* reload into a fresh table (replace) and export again: identical */
    assert_int_equal(rp_json_import(f->db, "op", e1, RP_IMPORT_REPLACE, &n, &d), RH_OK);
    cJSON *e2;
    assert_int_equal(rp_json_export(f->db, &e2, &d), RH_OK);
    char *s2 = cJSON_PrintUnformatted(e2);
    assert_string_equal(s1, s2);
    assert_non_null(strstr(s1, "\"prefix\":\"26010000/16\""));
    assert_non_null(strstr(s1, "\"join_eui\":\"70b3d57ed0000000/40\""));
    assert_non_null(strstr(s1, "\"rights\":[\"RIGHT_ADMIN\",\"RIGHT_READ_ROUTING_POLICY\"]"));
    free(s1);
    free(s2);
    cJSON_Delete(e1);
    cJSON_Delete(e2);
    rp_join_match_t m = join(f, 0x70B3D57ED0000005ull, 0x0004A30B00000001ull);
    assert_true(m.found);
    assert_string_equal(m.home.tenant_id, "acme");
    rp_block_match_t b = fx_lookup(f, 0x26010001);
    assert_string_equal(b.cluster_id, "eu1");
}

static void test_json_errors_atomic(void **state)
{
    fx_t *f = *state;
    rh_diag_t d;
    static const struct {
        const char *doc, *want;
    } bad[] = {
        {"{\"networks\":[{\"net_id\":\"13\"}]}", "networks[0].net_id"},
        {"{\"networks\":[{\"net_id\":\"000013\",\"bogus\":1}]}", "networks[0].bogus: unknown field"},
        {"{\"devaddr_blocks\":[{\"net_id\":\"000013\"}]}", "devaddr_blocks[0].prefix: required"},
        {"{\"devaddr_blocks\":[{\"prefix\":\"26000000/99\",\"net_id\":\"000013\"}]}",
         "devaddr_blocks[0].prefix"},
        {"{\"join_routes\":[{\"join_eui\":\"70b3/40\"}]}", "join_routes[0].join_eui"},
        {"{\"policies\":[{\"forwarder_net_id\":\"000013\",\"uplink\":{\"mac_data\":1}}]}",
         "policies[0].uplink.mac_data"},
        {"{\"policies\":[{\"forwarder_net_id\":\"000013\",\"home_tenant_id\":\"x\"}]}",
         "needs home_net_id"},
        {"{\"endpoints\":[{\"id\":\"e\",\"url\":\"https://x\",\"protocol_version\":\"V9\"}]}",
         "endpoints[0].protocol_version"},
        {"{\"api_keys\":[{\"id\":\"k\",\"salt\":\"zz\"}]}", "api_keys[0].salt"},
        {"{\"what\":[]}", "document.what: unknown section"},
        {"{\"networks\":{}}", "expected an array"},
        {"[]", "expected a JSON object"},
        {"{\"member_net_ids\":[\"x\"]}", "member_net_ids[0]"},
        /* a valid first record, an invalid second: nothing is written */
        {"{\"networks\":[{\"net_id\":\"000099\"}],\"devaddr_blocks\":[{\"prefix\":\"0a000000/7\","
         "\"net_id\":\"000013\"}]}",
         "devaddr_blocks[0]: devaddr_block 0A000000/7: not inside"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cJSON *doc = cJSON_Parse(bad[i].doc);
        assert_non_null(doc);
        rh_diag_clear(&d);
        int rc = rp_json_import(f->db, "op", doc, 0, NULL, &d);
        cJSON_Delete(doc);
        if (rc == RH_OK || !strstr(d.text, bad[i].want))
            fail_msg("case %zu: rc %d diag \"%s\" (want \"%s\")", i, rc, d.text, bad[i].want);
    }
    size_t n;
    assert_int_equal(rp_count(f->db, RP_KIND_NETWORK, &n), RH_OK);
    assert_int_equal(n, 0);
}

static void test_member_scope_import(void **state)
{
    fx_t *f = *state;
    rh_diag_t d;
    cJSON *doc = cJSON_Parse(doc_text);
    assert_int_equal(rp_json_import(f->db, "op", doc, 0, NULL, &d), RH_OK);
    cJSON_Delete(doc);
    /* re-import 000013's configuration with only the /7 block: the tenant block, the tenant and
     * the join route of 000013 go; 000505's policies stay */
    doc = cJSON_Parse("{\"member_net_ids\":[\"000013\"],\"devaddr_blocks\":[{\"prefix\":"
                      "\"26000000/7\",\"net_id\":\"000013\"}]}");
    assert_int_equal(rp_json_import(f->db, "op", doc, 0, NULL, &d), RH_OK);
    cJSON_Delete(doc);
    size_t n;
    rp_count(f->db, RP_KIND_BLOCK, &n);
    assert_int_equal(n, 1);
    rp_count(f->db, RP_KIND_TENANT, &n);
    assert_int_equal(n, 0);
    rp_count(f->db, RP_KIND_JOIN_ROUTE, &n);
    assert_int_equal(n, 0);
    rp_count(f->db, RP_KIND_POLICY, &n);
    assert_int_equal(n, 2);
    rp_count(f->db, RP_KIND_NETWORK, &n);
    assert_int_equal(n, 1);
}

static int count_dump(void *ud, rp_kind_t kind, const void *packed, size_t len)
{
    size_t *n = ud;
    (void)packed;
    (void)len;
    n[kind]++;
    return 0;
}

/* Named marks (a cluster node's applied stream sequence) go with their transaction's records:
 * committed together, or neither; rp_dump reads records and mark from one snapshot. */
static void test_marks(void **state)
{
    fx_t *f = *state;
    rh_diag_t d;
    uint64_t v = 7;
    int found = 1;
    assert_int_equal(rp_get_mark(f->db, "cluster_applied", &v, &found, &d), RH_OK);
    assert_int_equal(v, 0);
    assert_false(found);
    assert_int_equal(rp_get_mark(f->db, "Bad Name", &v, NULL, &d), RH_EINVAL);
    rp_txn_t *t;
    Roamhub__V1__DevAddrBlock b = ROAMHUB__V1__DEV_ADDR_BLOCK__INIT;
    b.prefix = 0x26000000;
    b.length = 8;
    b.net_id = 0x13;
    /* aborted: neither the block nor the mark */
    assert_int_equal(rp_txn_begin(f->db, "cluster", 0, &t, &d), RH_OK);
    assert_int_equal(rp_txn_put(t, RP_KIND_BLOCK, &b.base, RP_PUT_CREATE, &d), RH_OK);
    assert_int_equal(rp_txn_set_mark(t, "x y", 1, &d), RH_EINVAL);
    assert_int_equal(rp_txn_set_mark(t, "cluster_applied", 41, &d), RH_OK);
    rp_txn_abort(t);
    assert_int_equal(rp_get_mark(f->db, "cluster_applied", &v, &found, &d), RH_OK);
    assert_false(found);
    assert_false(fx_lookup(f, 0x26000001).found);
    /* committed: both; the last value set in the transaction wins */
    assert_int_equal(rp_txn_begin(f->db, "cluster", 0, &t, &d), RH_OK);
    assert_int_equal(rp_txn_put(t, RP_KIND_BLOCK, &b.base, RP_PUT_CREATE, &d), RH_OK);
    assert_int_equal(rp_txn_set_mark(t, "cluster_applied", 41, &d), RH_OK);
    assert_int_equal(rp_txn_set_mark(t, "cluster_applied", 42, &d), RH_OK);
    assert_int_equal(rp_txn_commit(t, &d), RH_OK);
    assert_int_equal(rp_get_mark(f->db, "cluster_applied", &v, &found, &d), RH_OK);
    assert_int_equal(v, 42);
    assert_true(found);
    assert_true(fx_lookup(f, 0x26000001).found);
    /* statistics rows with their own mark, also alone (n = 0) */
    assert_int_equal(rp_stats_add_marked(f->db, NULL, 0, "cluster_stats", 9, &d), RH_OK);
    assert_int_equal(rp_get_mark(f->db, "cluster_stats", &v, NULL, &d), RH_OK);
    assert_int_equal(v, 9);
    assert_int_equal(rp_get_mark(f->db, "cluster_applied", &v, NULL, &d), RH_OK);
    assert_int_equal(v, 42);
    /* the dump: every record, and the mark of the same snapshot */
    size_t n[RP_KIND_COUNT] = {0};
    assert_int_equal(rp_dump(f->db, "cluster_applied", &v, count_dump, n, &d), RH_OK);
    assert_int_equal(v, 42);
    assert_int_equal(n[RP_KIND_BLOCK], 1);
    assert_int_equal(n[RP_KIND_NETWORK], 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_crud_modes_and_audit, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_batch_atomic, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_list_pagination, fx_setup, fx_teardown),
        cmocka_unit_test(test_map_full_no_growth),
        cmocka_unit_test(test_map_growth),
        cmocka_unit_test_setup_teardown(test_join_routes, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_stats, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_json_roundtrip, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_json_errors_atomic, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_member_scope_import, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_marks, fx_setup, fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
