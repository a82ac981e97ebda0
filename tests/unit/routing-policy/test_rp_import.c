/*
 * test_rp_import.c — the streaming import (rp_json_import_file): the same table as the
 * in-memory import of the parsed document (sections in any order, member_net_ids, --replace),
 * every outline error named with its section or byte offset and nothing written, a map that
 * must grow several times during the import, and memory bounded by one record: the JSON
 * allocations (counted through cJSON's allocation hooks) peak at the same size for 2,000 and
 * for 20,000 records.
 */
#include "rp_fixture.h"
#include "rp_json.h"

/* ---- cJSON allocations: live bytes and their peak ---------------------------------------- */

static size_t live, peak;

static void *count_malloc(size_t n)
{
    size_t *p = malloc(n + 16);
    if (!p)
        return NULL;
    p[0] = n;
    live += n;
    if (live > peak)
        peak = live;
    return (char *)p + 16;
}

static void count_free(void *q)
{
    if (!q)
        return;
    size_t *p = (size_t *)((char *)q - 16);
    live -= p[0];
    free(p);
}

static FILE *doc_file(const char *text)
{
    FILE *f = tmpfile();
    assert_non_null(f);
    fputs(text, f);
    rewind(f);
    return f;
}

/* A document of n DevAddr blocks (and n policies) in type-3 NetIDs, sections in a file order
 * where blocks come before the networks they depend on. */
static FILE *gen_doc(size_t n)
{
    FILE *f = tmpfile();
    assert_non_null(f);
    size_t nets = (n + 1023) / 1024;
    fputs("{\"devaddr_blocks\":[", f);
    for (size_t k = 0; k < n; k++)
        fprintf(f, "%s{\"prefix\":\"%08x/25\",\"net_id\":\"%06x\",\"tenant_id\":\"t%zu\"}",
                k ? ",\n" : "", 0xE0000000u | (unsigned)(k / 1024) << 17 | (unsigned)(k % 1024) << 7,
                0x600000u | (unsigned)(k / 1024), k % 3);
    fputs("],\n\"policies\":[", f);
    for (size_t k = 0; k < n; k++)
        fprintf(f, "%s{\"forwarder_net_id\":\"%06x\",\"home_net_id\":\"%06x\","
                   "\"uplink\":{\"mac_data\":true}}",
                k ? ",\n" : "", 0x600000u | (unsigned)(k % nets), 0x010000u + (unsigned)(k / nets));
    fputs("], \"networks\" : [", f);
    for (size_t i = 0; i < nets; i++)
        fprintf(f, "%s{\"net_id\":\"%06x\",\"name\":\"n\\u0041 %zu\"}", i ? "," : "",
                0x600000u | (unsigned)i, i);
    fputs("]}\n", f);
    rewind(f);
    return f;
}

static char *export_text(fx_t *f)
{
    cJSON *doc;
    rh_diag_t d;
    assert_int_equal(rp_json_export(f->db, &doc, &d), RH_OK);
    char *s = cJSON_PrintUnformatted(doc);
    cJSON_Delete(doc);
    return s;
}

static cJSON *parse_file(FILE *f)
{
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    char *b = malloc((size_t)n + 1);
    assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
    cJSON *doc = cJSON_ParseWithLength(b, (size_t)n);
    free(b);
    rewind(f);
    assert_non_null(doc);
    return doc;
}

static void test_same_as_in_memory(void **state)
{
    (void)state;
    fx_t *a = fx_open_opts(NULL), *b = fx_open_opts(NULL);
    const char *docs[] = {
        "{\"devaddr_blocks\":[{\"prefix\":\"26010000/16\",\"net_id\":\"000505\"}],"
        " \"networks\": [{\"net_id\":\"000505\",\"delegated_net_ids\":[\"000013\"]},"
        "                {\"net_id\":\"000013\",\"name\":\"x\\\"]}y\"}],"
        " \"join_routes\":[{\"join_eui\":\"70b3d57ed0000000/40\",\"home_net_id\":\"000013\"}],"
        " \"policies\":[{\"forwarder_net_id\":\"000505\",\"uplink\":{\"join_request\":true},"
        "               \"updated_at\":5}],"
        " \"members\":[{\"id\":\"m1\",\"net_ids\":[\"000505\"]}],"
        " \"tenants\":[], \"endpoints\":[{\"id\":\"e\",\"url\":\"http://a/\"}]}",
        "{\"member_net_ids\":[\"000505\"],"
        " \"devaddr_blocks\":[{\"prefix\":\"26020000/16\",\"net_id\":\"000505\",\"tenant_id\":\"t\"}],"
        " \"tenants\":[{\"net_id\":\"000505\",\"tenant_id\":\"t\"}]}",
        "{}",
    };
    for (size_t i = 0; i < sizeof docs / sizeof *docs; i++) {
        FILE *f = doc_file(docs[i]);
        cJSON *doc = parse_file(f);
        size_t n1, n2;
        rh_diag_t d;
        if (rp_json_import_file(a->db, "t", f, 0, &n1, &d))
            fail_msg("doc %zu: %s", i, d.text);
        assert_int_equal(rp_json_import(b->db, "t", doc, 0, &n2, &d), RH_OK);
        assert_int_equal(n1, n2);
        char *ea = export_text(a), *eb = export_text(b);
        assert_string_equal(ea, eb);
        free(ea);
        free(eb);
        cJSON_Delete(doc);
        fclose(f);
    }
    /* --replace: the document is the whole table */
    FILE *f = doc_file("{\"networks\":[{\"net_id\":\"000042\"}]}");
    size_t n;
    rh_diag_t d;
    assert_int_equal(rp_json_import_file(a->db, "t", f, RP_IMPORT_REPLACE, &n, &d), RH_OK);
    fclose(f);
    size_t c;
    assert_int_equal(rp_count(a->db, RP_KIND_NETWORK, &c), RH_OK);
    assert_int_equal(c, 1);
    assert_int_equal(rp_count(a->db, RP_KIND_BLOCK, &c), RH_OK);
    assert_int_equal(c, 0);
    void *sa = a, *sb = b;
    fx_teardown(&sa);
    fx_teardown(&sb);
}

static void test_errors_name_the_place(void **state)
{
    fx_t *f = *state;
    static const struct {
        const char *doc, *diag;
        int rc;
    } cases[] = {
        {"", "document: byte 0: expected a JSON object", RH_EINVAL},
        {"[1]", "document: byte 0: expected a JSON object", RH_EINVAL},
        {"{\"networks\":[{\"net_id\":\"000013\"}],\"foo\":[]}", "document.foo: unknown section",
         RH_EINVAL},
        {"{\"networks\":{}}", "document.networks: expected an array", RH_EINVAL},
        {"{\"networks\":[],\"networks\":[]}", "document.networks: section appears twice",
         RH_EINVAL},
        {"{\"networks\":[]} x", "document: byte 16: data after the end of the object", RH_EINVAL},
        {"{\"networks\":[{\"net_id\":\"000013\"}", "document.networks: byte 32: unexpected end",
         RH_EINVAL},
        {"{\"networks\":[{\"net_id\":\"000013\"}] \"tenants\":[]}",
         "document.networks: byte 34: expected ',' or '}'", RH_EINVAL},
        {"{\"networks\":[{\"net_id\":}]}", "networks[0]: not valid JSON", RH_EINVAL},
        {"{\"networks\":[{\"net_id\":\"000013\"},,{}]}", "networks[1]: not valid JSON", RH_EINVAL},
        {"{\"networks\":[{\"net_id\":\"000013\"}],\"devaddr_blocks\":[{\"prefix\":\"zz\"}]}",
         "devaddr_blocks[0].prefix", RH_EINVAL},
        {"{\"networks\":[{\"net_id\":\"000013\"}],"
         "\"devaddr_blocks\":[{\"prefix\":\"26000000/7\",\"net_id\":\"000013\",\"tenant_id\":\"a\"},"
         "{\"prefix\":\"26010000/16\",\"net_id\":\"000013\",\"tenant_id\":\"x\"}]}",
         "devaddr_blocks[1]: devaddr_block 26010000/16", RH_EEXIST},
        {"{\"member_net_ids\":[12]}", "member_net_ids[0]: expected 6 hex digits", RH_EINVAL},
        /* the JSON input policy, per record */
        {"{\"networks\":[{\"net_id\":\"000013\",\"net_id\":\"000014\"}]}",
         "networks[0].net_id: duplicate key", RH_EINVAL},
        {"{\"networks\":[{\"net_id\":\"000013\",\"name\":\"a\xff\"}]}",
         "networks[0].name: invalid UTF-8", RH_EINVAL},
        {"{\"networks\":[{\"net_id\":\"000013\",\"name\":\"a\\u0000b\"}]}",
         "networks[0].name: \\u0000 is not allowed", RH_EINVAL},
        {"{\"net\\u0000works\":[]}", "document: section name: \\u0000", RH_EINVAL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        FILE *in = doc_file(cases[i].doc);
        rh_diag_t d;
        rh_diag_clear(&d);
        size_t n = 99;
        int rc = rp_json_import_file(f->db, "t", in, 0, &n, &d);
        fclose(in);
        if (rc != cases[i].rc || strncmp(d.text, cases[i].diag, strlen(cases[i].diag)) != 0)
            fail_msg("case %zu: rc %d diag \"%s\", expected %d \"%s...\"", i, rc, d.text,
                     cases[i].rc, cases[i].diag);
        assert_int_equal(n, 0);
        size_t c;
        assert_int_equal(rp_count(f->db, RP_KIND_NETWORK, &c), RH_OK);
        assert_int_equal(c, 0); /* all or nothing */
    }
    /* a record beyond RP_IMPORT_RECORD_MAX */
    FILE *in = tmpfile();
    fputs("{\"networks\":[{\"net_id\":\"000013\",\"name\":\"", in);
    for (int i = 0; i < RP_IMPORT_RECORD_MAX / 64 + 1; i++)
        fputs("0123456789012345678901234567890123456789012345678901234567890123", in);
    fputs("\"}]}", in);
    rewind(in);
    rh_diag_t d;
    size_t n;
    assert_int_equal(rp_json_import_file(f->db, "t", in, 0, &n, &d), RH_EINVAL);
    assert_string_equal(d.text, "networks[0]: larger than 1048576 bytes");
    fclose(in);
}

static size_t peak_for(size_t records, size_t *map_after)
{
    rp_db_opts_t o = {0};
    o.no_sync = 1;
    o.no_builder = 1;
    o.map_size = 1 << 20; /* must grow several times: the import restarts each time */
    o.max_map_size = (size_t)1 << 30;
    fx_t *f = fx_open_opts(&o);
    FILE *in = gen_doc(records);
    cJSON_Hooks h = {count_malloc, count_free};
    live = peak = 0;
    cJSON_InitHooks(&h);
    size_t n;
    rh_diag_t d;
    int rc = rp_json_import_file(f->db, "t", in, 0, &n, &d);
    cJSON_InitHooks(NULL);
    if (rc)
        fail_msg("import: %s", d.text);
    assert_int_equal(live, 0);
    assert_int_equal(n, 2 * records + (records + 1023) / 1024);
    size_t c;
    assert_int_equal(rp_count(f->db, RP_KIND_BLOCK, &c), RH_OK);
    assert_int_equal(c, records);
    assert_int_equal(rp_count(f->db, RP_KIND_POLICY, &c), RH_OK);
    assert_int_equal(c, records);
    *map_after = rp_db_map_size(f->db);
    fclose(in);
    void *s = f;
    fx_teardown(&s);
    return peak;
}

static void test_memory_bounded_by_one_record(void **state)
{
    (void)state;
    size_t m1, m2;
    size_t p1 = peak_for(2000, &m1);
    size_t p2 = peak_for(20000, &m2);
    print_message("cJSON peak live bytes: %zu for 2,000 records, %zu for 20,000\n", p1, p2);
    assert_true(m2 > (size_t)4 << 20); /* the map grew: the import ran again from the start */
    assert_true(p1 > 0);
    assert_true(p2 < 4096); /* one record's tree, not the document's (~1.6 MB of JSON) */
    assert_true(p2 <= p1 + 256);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_as_in_memory),
        cmocka_unit_test_setup_teardown(test_errors_name_the_place, fx_setup, fx_teardown),
        cmocka_unit_test(test_memory_bounded_by_one_record),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
