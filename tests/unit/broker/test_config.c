/* Unit tests for broker/config: defaults, overrides, and every refusal names the key. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

static char path[64];

static int write_cfg(const char *text)
{
    snprintf(path, sizeof path, "/tmp/roamhub-cfg-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return 0;
}

static void test_defaults(void **state)
{
    (void)state;
    rh_config_t c;
    assert_int_equal(config_defaults(&c), RH_OK);
    assert_string_equal(c.ts002.address, "127.0.0.1");
    assert_int_equal(c.ts002.max_body_bytes, 65536);
    assert_int_equal(c.ts002.header_timeout_ms, 10000);
    assert_string_equal(c.db_path, "var/roamhub-db");
    assert_string_equal(c.log_format, "logfmt");
    assert_null(c.ts002.tls.cert_file);
    assert_int_equal(c.grpc_merge_window_ms, 200); /* ChirpStack's / TTS's dedup delay */
    assert_int_equal(c.grpc_merge_max, 1024);
    config_fini(&c);
}

static void test_overrides(void **state)
{
    (void)state;
    write_cfg("{\"workers\": 2, \"log_level\": \"warning\", \"log_format\": \"json\", "
              "\"database\": {\"path\": \"/tmp/x\", "
              "\"map_size_mb\": 64}, \"ts002\": {\"port\": 0, \"max_body_bytes\": 2048, "
              "\"dev_loopback_unauthenticated\": true}, \"relay\": {\"request_timeout_ms\": 800}}");
    rh_config_t c;
    rh_diag_t d = {{0}};
    assert_int_equal(config_load(path, &c, &d), RH_OK);
    assert_int_equal(c.workers, 2);
    assert_string_equal(c.log_level, "warning");
    assert_string_equal(c.log_format, "json");
    assert_string_equal(c.db_path, "/tmp/x");
    assert_int_equal(c.db_map_size_mb, 64);
    assert_int_equal(c.ts002.port, 0);
    assert_int_equal(c.ts002.max_body_bytes, 2048);
    assert_true(c.dev_loopback);
    assert_int_equal(c.request_timeout_ms, 800);
    assert_int_equal(c.admin.port, 4271);
    assert_int_equal(c.n_endpoint_allow, 0);
    config_fini(&c);
    write_cfg("{\"relay\": {\"endpoint_allow_ranges\": [\"127.0.0.0/8\", \"::1\"]}}");
    assert_int_equal(config_load(path, &c, &d), RH_OK);
    assert_int_equal(c.n_endpoint_allow, 2);
    assert_string_equal(c.endpoint_allow[1], "::1");
    assert_false(c.cluster_enabled); /* no section: the single node, no NATS */
    config_fini(&c);
    write_cfg("{\"cluster\": {\"node_id\": 3, \"nats_urls\": [\"nats://127.0.0.1:4222\", "
              "\"tls://nats-2.example:4223\"], \"stream\": \"RH_TABLE\", "
              "\"subject_prefix\": \"rh.eu\", \"replicas\": 1, \"nodes\": 3}}");
    assert_int_equal(config_load(path, &c, &d), RH_OK);
    assert_true(c.cluster_enabled);
    assert_int_equal(c.cluster_node_id, 3);
    assert_int_equal(c.n_cluster_nats_urls, 2);
    assert_string_equal(c.cluster_nats_urls[1], "tls://nats-2.example:4223");
    assert_string_equal(c.cluster_stream, "RH_TABLE");
    assert_string_equal(c.cluster_subject_prefix, "rh.eu");
    assert_int_equal(c.cluster_replicas, 1);
    assert_int_equal(c.cluster_write_timeout_ms, 5000);
    assert_int_equal(c.cluster_nodes, 3);
    assert_null(c.cluster_creds_file);
    config_fini(&c);
    write_cfg("{\"grpc\": {\"merge_window_ms\": 0, \"merge_max\": 8}}");
    assert_int_equal(config_load(path, &c, &d), RH_OK);
    assert_int_equal(c.grpc_merge_window_ms, 0); /* merging off */
    assert_int_equal(c.grpc_merge_max, 8);
    config_fini(&c);
    unlink(path);
}

static void test_refusals(void **state)
{
    (void)state;
    static const struct {
        const char *json, *msg;
    } cases[] = {
        {"{\"wrokers\": 2}", "wrokers: unknown key"},
        {"{\"ts002\": {\"prot\": 1}}", "ts002.prot: unknown key"},
        {"{\"ts002\": {\"port\": 70000}}", "ts002.port: expected an integer in 0..65535"},
        {"{\"ts002\": {\"port\": 1.5}}", "ts002.port: expected an integer"},
        {"{\"ts002\": {\"address\": 5}}", "ts002.address: expected a string"},
        {"{\"ts002\": 5}", "ts002: expected an object"},
        {"{\"ts002\": {\"address\": \"0.0.0.0\", \"dev_loopback_unauthenticated\": true}}",
         "only allowed when ts002.address is a loopback address"},
        {"{\"ts002\": {\"tls_cert\": \"a.pem\"}}", "ts002.tls_cert and ts002.tls_key go together"},
        {"{\"log_level\": \"loud\"}",
         "log_level: expected err (or error), warn (or warning), info or debug"},
        {"{\"log_format\": \"xml\"}", "log_format: expected logfmt or json"},
        {"{\"admin\": {\"jwt_alg\": \"none\"}}", "admin.jwt_alg: expected HS256, ES256 or RS256"},
        {"[1]", "not a JSON object"},
        {"{\"grpc\": {\"merge_window_ms\": 1001}}",
         "grpc.merge_window_ms: expected an integer in 0..1000"},
        {"{\"grpc\": {\"merge_max\": 0}}", "grpc.merge_max: expected an integer in 1..1000000"},
        {"{", ":1:"},
        {"{\n  \"workers\": 1,\n  \"ts002\": {,}\n}", ":3:14: JSON syntax error"},
        {"{\"ts002\": {\"tls_client_ca\": \"ca.pem\"}}",
         "ts002.tls_client_ca: needs ts002.tls_cert and ts002.tls_key"},
        {"{\"admin\": {\"tls_require_client_cert\": true}}",
         "admin.tls_require_client_cert: needs admin.tls_cert"},
        /* issue 16 items 5 and 9: the JSON input policy, and numbers out of every range */
        {"{\"workers\": 2, \"workers\": 3}", "workers: duplicate key"},
        {"{\"ts002\": {\"port\": 1, \"port\": 2}}", "ts002.port: duplicate key"},
        {"{\"log_level\": \"info\\u0000x\"}", "log_level: \\u0000 is not allowed"},
        {"{\"log_level\": \"\xff\"}", "log_level: invalid UTF-8"},
        {"{\"workers\": 1e300}", "workers: expected an integer in 0..256"},
        {"{\"workers\": -1e300}", "workers: expected an integer in 0..256"},
        {"{\"database\": {\"map_size_mb\": 1e19}}", "database.map_size_mb: expected an integer"},
        {"{\"a\": [[[[[[[[[[1]]]]]]]]]]}", "nesting deeper than 8 levels"},
        {"{\"relay\": {\"endpoint_allow_ranges\": [\"nope\"]}}",
         "relay.endpoint_allow_ranges[0]: nope is not a numeric"},
        {"{\"relay\": {\"endpoint_allow_ranges\": \"127.0.0.0/8\"}}",
         "relay.endpoint_allow_ranges: expected an array"},
        /* issue 13: the cluster section */
        {"{\"cluster\": {}}", "cluster.node_id: required"},
        {"{\"cluster\": {\"node_id\": 1}}", "cluster.nats_urls: required"},
        {"{\"cluster\": {\"node_id\": 0, \"nats_urls\": [\"nats://a:1\"]}}",
         "cluster.node_id: expected an integer in 1..255"},
        {"{\"cluster\": {\"node_id\": 256}}", "cluster.node_id: expected an integer in 1..255"},
        {"{\"cluster\": {\"node_id\": 1, \"nats_urls\": [\"nats://a:1\"], \"nodes\": 0}}",
         "cluster.nodes: expected an integer in 1..255"},
        {"{\"cluster\": {\"node_id\": 1, \"nats_urls\": []}}",
         "cluster.nats_urls: expected an array of 1..16"},
        {"{\"cluster\": {\"node_id\": 1, \"nats_urls\": \"nats://a:1\"}}",
         "cluster.nats_urls: expected an array"},
        {"{\"cluster\": {\"node_id\": 1, \"nats_urls\": [\"http://a:1\"]}}",
         "cluster.nats_urls[0]: expected nats://HOST:PORT or tls://HOST:PORT"},
        {"{\"cluster\": {\"node_id\": 1, \"nats_urls\": [\"nats://a:1\", \"nats://u:p@a:1\"]}}",
         "cluster.nats_urls[1]: only HOST:PORT after the scheme"},
        {"{\"cluster\": {\"node_id\": 1, \"nats_urls\": [\"nats://a\"]}}",
         "cluster.nats_urls[0]: expected HOST:PORT with a port in 1..65535"},
        {"{\"cluster\": {\"node_id\": 1, \"nats_urls\": [\"nats://a:0\"]}}",
         "cluster.nats_urls[0]: expected HOST:PORT with a port"},
        {"{\"cluster\": {\"node_id\": 1, \"nats_urls\": [\"nats://a b:1\"]}}",
         "cluster.nats_urls[0]: the host has a character"},
        {"{\"cluster\": {\"node_id\": 1, \"nats_urls\": [\"nats://a:1\"], \"stream\": \"a.b\"}}",
         "cluster.stream: expected 1..32"},
        {"{\"cluster\": {\"node_id\": 1, \"nats_urls\": [\"nats://a:1\"], \"stream\": null}}",
         "cluster.stream: expected 1..32"},
        {"{\"cluster\": {\"node_id\": 1, \"nats_urls\": [\"nats://a:1\"], "
         "\"subject_prefix\": \"rh.*\"}}", "cluster.subject_prefix: expected dot-separated"},
        {"{\"cluster\": {\"node_id\": 1, \"nats_urls\": [\"nats://a:1\"], "
         "\"subject_prefix\": \"rh..x\"}}", "cluster.subject_prefix: expected dot-separated"},
        {"{\"cluster\": {\"node_id\": 1, \"nats_urls\": [\"nats://a:1\"], "
         "\"tls_cert\": \"c.pem\"}}", "cluster.tls_cert and cluster.tls_key go together"},
        {"{\"cluster\": {\"node_id\": 1, \"nats_urls\": [\"nats://a:1\"], \"replicas\": 7}}",
         "cluster.replicas: expected an integer in 1..5"},
        {"{\"cluster\": {\"nodeid\": 1}}", "cluster.nodeid: unknown key"},
        {"{\"cluster\": true}", "cluster: expected an object"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        write_cfg(cases[i].json);
        rh_config_t c;
        rh_diag_t d = {{0}};
        assert_int_equal(config_load(path, &c, &d), RH_EINVAL);
        if (!strstr(d.text, cases[i].msg))
            fail_msg("case %zu: '%s' does not contain '%s'", i, d.text, cases[i].msg);
        unlink(path);
    }
    rh_config_t c;
    rh_diag_t d;
    assert_int_equal(config_load("/nonexistent/roamhub.json", &c, &d), RH_EIO);
}

/* config_diff names changed keys by reloadability; config_adopt_reloadable moves exactly the
 * reloadable ones (strings change owner, so both configs free cleanly: ASan checks). */
static void test_diff_and_adopt(void **state)
{
    (void)state;
    rh_config_t run, next;
    rh_diag_t d = {{0}};
    write_cfg("{\"ts002\": {\"port\": 1000, \"max_body_bytes\": 65536}, \"log_level\": \"info\"}");
    assert_int_equal(config_load(path, &run, &d), RH_OK);
    write_cfg("{\"ts002\": {\"port\": 2000, \"max_body_bytes\": 4096}, \"log_level\": \"debug\", "
              "\"admin\": {\"metrics_max_peer_pairs\": 5}, \"workers\": 3}");
    assert_int_equal(config_load(path, &next, &d), RH_OK);
    char changed[256], restart[256];
    config_diff(&run, &next, changed, sizeof changed, restart, sizeof restart);
    assert_string_equal(changed, "log_level,ts002.max_body_bytes,admin.metrics_max_peer_pairs");
    assert_string_equal(restart, "workers,ts002.port");
    assert_true(config_key_reloadable("admin.max_body_bytes"));
    assert_false(config_key_reloadable("database.path"));
    config_adopt_reloadable(&run, &next);
    assert_string_equal(run.log_level, "debug");
    assert_string_equal(next.log_level, "info"); /* the old string now belongs to next */
    assert_int_equal(run.ts002.max_body_bytes, 4096);
    assert_int_equal(run.metrics_max_peer_pairs, 5);
    assert_int_equal(run.ts002.port, 1000); /* restart-only keys stay */
    assert_int_equal(run.workers, 0);
    config_diff(&run, &next, changed, sizeof changed, restart, sizeof restart);
    assert_string_equal(restart, "workers,ts002.port");
    char tiny[12];
    config_diff(&next, &run, tiny, sizeof tiny, restart, sizeof restart);
    assert_non_null(strstr(tiny, "..."));   /* truncated, and says so */
    config_fini(&next);
    config_fini(&run);
    unlink(path);
}

/* config_check: what only the start notices, without binding or opening anything. */
static void test_check(void **state)
{
    (void)state;
    rh_config_t c;
    rh_diag_t d = {{0}};
    write_cfg("{\"ts002\": {\"address\": \"localhost\"}}");
    assert_int_equal(config_load(path, &c, &d), RH_OK);
    assert_int_equal(config_check(&c, &d), RH_EINVAL);
    assert_non_null(strstr(d.text, "ts002.address"));
    config_fini(&c);
    write_cfg("{\"import\": \"/nonexistent/table.json\"}");
    assert_int_equal(config_load(path, &c, &d), RH_OK);
    assert_int_equal(config_check(&c, &d), RH_EIO);
    assert_non_null(strstr(d.text, "import: /nonexistent/table.json"));
    config_fini(&c);
    write_cfg("{\"ts002\": {\"address\": \"::1\"}}");
    assert_int_equal(config_load(path, &c, &d), RH_OK);
    assert_int_equal(config_check(&c, &d), RH_OK);
    config_fini(&c);
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_overrides),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_diff_and_adopt),
        cmocka_unit_test(test_check),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
