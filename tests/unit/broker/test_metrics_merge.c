/* Unit tests for metrics_text_merge (broker/metrics.h), the text of GET /metrics/cluster: each
 * family's HELP/TYPE once, every node's samples of it together with node="N" first among the
 * labels (also on samples without labels and on a histogram's _bucket/_sum/_count), other
 * comments dropped, families in first-seen order (one only some node has included). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "metrics.h"

static const char N1[] =
    "# HELP a_total A.\n# TYPE a_total counter\na_total{k=\"x\"} 1\na_total{k=\"y\"} 2\n"
    "# HELP h_seconds H.\n# TYPE h_seconds histogram\nh_seconds_bucket{le=\"1\"} 3\n"
    "h_seconds_sum 0.5\nh_seconds_count 3\n"
    "# a free comment\n"
    "# HELP g G.\n# TYPE g gauge\ng 7\n";
static const char N3[] =
    "# HELP a_total A.\n# TYPE a_total counter\na_total{k=\"x\"} 10\n"
    "# HELP only3 Only on node 3.\n# TYPE only3 gauge\nonly3 1\n"
    "# HELP g G.\n# TYPE g gauge\ng 8\n";

static void test_merge(void **state)
{
    (void)state;
    const char *texts[2] = {N1, N3};
    unsigned nodes[2] = {1, 3};
    char *out = metrics_text_merge(texts, nodes, 2);
    assert_non_null(out);
    static const char want[] =
        "# HELP a_total A.\n# TYPE a_total counter\n"
        "a_total{node=\"1\",k=\"x\"} 1\na_total{node=\"1\",k=\"y\"} 2\na_total{node=\"3\",k=\"x\"} 10\n"
        "# HELP h_seconds H.\n# TYPE h_seconds histogram\n"
        "h_seconds_bucket{node=\"1\",le=\"1\"} 3\nh_seconds_sum{node=\"1\"} 0.5\n"
        "h_seconds_count{node=\"1\"} 3\n"
        "# HELP g G.\n# TYPE g gauge\ng{node=\"1\"} 7\ng{node=\"3\"} 8\n"
        "# HELP only3 Only on node 3.\n# TYPE only3 gauge\nonly3{node=\"3\"} 1\n";
    assert_string_equal(out, want);
    free(out);
}

static void test_one_and_empty(void **state)
{
    (void)state;
    const char *texts[2] = {"", "x 1\n"}; /* a sample without HELP/TYPE still gets its label */
    unsigned nodes[2] = {2, 5};
    char *out = metrics_text_merge(texts, nodes, 2);
    assert_non_null(out);
    assert_string_equal(out, "x{node=\"5\"} 1\n");
    free(out);
    out = metrics_text_merge(texts, nodes, 0);
    assert_non_null(out);
    assert_string_equal(out, "");
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_merge),
        cmocka_unit_test(test_one_and_empty),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
