/* Unit tests for peers/peer_addr: the outbound address policy (issue 16 item 7). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "peer_addr.h"

static void expect(const peer_addr_policy_t *p, const char *addr, uint16_t port, int want,
                   const char *msg)
{
    rh_diag_t d = {{0}};
    int rc = peer_addr_check_text(p, addr, port, &d);
    if (rc != want)
        fail_msg("%s:%u: rc %d, expected %d (%s)", addr, port, rc, want, d.text);
    if (msg && !strstr(d.text, msg))
        fail_msg("%s: '%s' does not contain '%s'", addr, d.text, msg);
}

static void test_default_policy(void **state)
{
    (void)state;
    peer_addr_policy_t *p;
    assert_int_equal(peer_addr_policy_new(NULL, 0, "ranges", &p, NULL), RH_OK);
    expect(p, "8.8.8.8", 443, RH_OK, NULL);
    expect(p, "2001:db8::1", 443, RH_OK, NULL);
    expect(p, "127.0.0.1", 80, RH_EPERM, "127.0.0.1 is a loopback address");
    expect(p, "127.255.0.9", 80, RH_EPERM, "loopback");
    expect(p, "0.0.0.0", 80, RH_EPERM, "unspecified");
    expect(p, "10.0.0.1", 80, RH_EPERM, "private");
    expect(p, "172.31.255.255", 80, RH_EPERM, "private");
    expect(p, "172.32.0.1", 80, RH_OK, NULL);
    expect(p, "192.168.0.1", 80, RH_EPERM, "private");
    expect(p, "100.64.0.1", 80, RH_EPERM, "shared");
    expect(p, "169.254.169.254", 80, RH_EPERM, "link-local");
    expect(p, "239.1.2.3", 80, RH_EPERM, "multicast");
    expect(p, "255.255.255.255", 80, RH_EPERM, "broadcast");
    expect(p, "::", 80, RH_EPERM, "unspecified");
    expect(p, "::1", 80, RH_EPERM, "loopback");
    expect(p, "::ffff:127.0.0.1", 80, RH_EPERM, "127.0.0.1 is a loopback");
    expect(p, "64:ff9b::a00:1", 80, RH_EPERM, "10.0.0.1 is a private");
    expect(p, "::7f00:1", 80, RH_EPERM, "IPv4-compatible");
    expect(p, "fe80::1", 80, RH_EPERM, "link-local");
    expect(p, "fd12::1", 80, RH_EPERM, "unique local");
    expect(p, "ff02::1", 80, RH_EPERM, "multicast");
    expect(p, "localhost", 80, RH_EINVAL, "not numeric");
    peer_addr_policy_free(p);
    /* no policy: everything (tools reaching the hub on loopback) */
    expect(NULL, "127.0.0.1", 80, RH_OK, NULL);
}

static void test_allow_ranges_and_self(void **state)
{
    (void)state;
    const char *ranges[] = {"127.0.0.0/8", "fd00::/8", "10.1.0.0/16"};
    peer_addr_policy_t *p;
    assert_int_equal(peer_addr_policy_new(ranges, 3, "ranges", &p, NULL), RH_OK);
    expect(p, "127.0.0.1", 8080, RH_OK, NULL);
    expect(p, "::ffff:127.0.0.2", 8080, RH_OK, NULL);
    expect(p, "fd12::1", 80, RH_OK, NULL);
    expect(p, "10.1.200.3", 80, RH_OK, NULL);
    expect(p, "10.2.0.1", 80, RH_EPERM, "private");
    expect(p, "::1", 80, RH_EPERM, "loopback");
    assert_int_equal(peer_addr_policy_add_self(p, "127.0.0.1", 4271), RH_OK);
    assert_int_equal(peer_addr_policy_add_self(p, "0.0.0.0", 4270), RH_OK);
    expect(p, "127.0.0.1", 4271, RH_EPERM, "127.0.0.1:4271 is the hub's own listener");
    expect(p, "0.0.0.0", 4271, RH_EPERM, "own listener"); /* connect(0.0.0.0) = loopback */
    expect(p, "127.0.0.2", 4271, RH_OK, NULL);             /* not bound there */
    expect(p, "127.0.0.9", 4270, RH_EPERM, "own listener"); /* any-address listener */
    expect(p, "::1", 4270, RH_EPERM, "[::1]:4270 is the hub's own listener");
    expect(p, "127.0.0.1", 4272, RH_OK, NULL);
    peer_addr_policy_free(p);
}

static void test_range_parse(void **state)
{
    (void)state;
    peer_addr_range_t r;
    rh_diag_t d;
    assert_int_equal(peer_addr_range_parse("10.0.0.0/8", "f", &r, &d), RH_OK);
    assert_int_equal(r.bits, 8);
    assert_int_equal(peer_addr_range_parse("::1", "f", &r, &d), RH_OK);
    assert_int_equal(r.bits, 128);
    assert_int_equal(peer_addr_range_parse("10.0.0.1/8", "f", &r, &d), RH_EINVAL);
    assert_non_null(strstr(d.text, "bits set beyond /8"));
    assert_int_equal(peer_addr_range_parse("10.0.0.0/33", "f", &r, &d), RH_EINVAL);
    assert_int_equal(peer_addr_range_parse("localhost", "f", &r, &d), RH_EINVAL);
    assert_non_null(strstr(d.text, "f: localhost is not a numeric"));
    const char *bad[] = {"127.0.0.0/8", "nope"};
    peer_addr_policy_t *p = NULL;
    assert_int_equal(peer_addr_policy_new(bad, 2, "relay.endpoint_allow_ranges", &p, &d),
                     RH_EINVAL);
    assert_null(p);
    assert_non_null(strstr(d.text, "relay.endpoint_allow_ranges[1]"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_policy),
        cmocka_unit_test(test_allow_ranges_and_self),
        cmocka_unit_test(test_range_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
