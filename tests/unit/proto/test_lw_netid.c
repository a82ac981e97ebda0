/* Unit tests for lw_netid: every vector of ../shared/vectors/netid_devaddr_prefix.json (all eight
 * NetID types, errata widths), the reference tables, parse/format and membership. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "lw_netid.h"
#include "rh_test.h"

static void test_vectors_file(void **state)
{
    (void)state;
    cJSON *root = rh_test_load_vectors("netid_devaddr_prefix.json");
    const cJSON *nwk = cJSON_GetObjectItem(root, "nwk_id_bits_by_type");
    const cJSON *addr = cJSON_GetObjectItem(root, "nwk_addr_bits_by_type");
    for (unsigned t = 0; t < 8; t++) {
        char k[2] = {(char)('0' + t), 0};
        assert_int_equal(lw_nwkid_bits(t), cJSON_GetObjectItem(nwk, k)->valueint);
        assert_int_equal(lw_nwkaddr_bits(t), cJSON_GetObjectItem(addr, k)->valueint);
    }
    const cJSON *v;
    int n = 0;
    cJSON_ArrayForEach(v, cJSON_GetObjectItem(root, "vectors"))
    {
        uint32_t netid;
        assert_int_equal(lw_netid_parse(rh_test_str(v, "net_id"), &netid, NULL), RH_OK);
        assert_int_equal(lw_netid_type(netid), cJSON_GetObjectItem(v, "type")->valueint);
        lw_devaddr_prefix_t p, want;
        assert_int_equal(lw_netid_devaddr_prefix(netid, &p, NULL), RH_OK);
        assert_int_equal(lw_devaddr_prefix_parse(rh_test_str(v, "dev_addr_prefix"), &want, NULL),
                         RH_OK);
        if (p.value != want.value || p.len != want.len)
            fail_msg("NetID %s: got %08X/%u want %08X/%u", rh_test_str(v, "net_id"), p.value,
                     p.len, want.value, want.len);
        char txt[16];
        lw_devaddr_prefix_format(p, txt);
        assert_string_equal(txt, rh_test_str(v, "dev_addr_prefix"));
        const cJSON *ex = cJSON_GetObjectItem(v, "example_dev_addr");
        if (cJSON_IsString(ex)) {
            uint32_t da;
            assert_int_equal(lw_devaddr_parse(ex->valuestring, &da, NULL), RH_OK);
            assert_int_equal(lw_devaddr_in_netid(da, netid),
                             cJSON_IsTrue(cJSON_GetObjectItem(v, "example_matches")));
            assert_int_equal(lw_devaddr_type(da), (int)lw_netid_type(netid));
            uint32_t nwkid;
            assert_int_equal(lw_devaddr_nwkid(da, &nwkid), RH_OK);
            assert_int_equal(nwkid, lw_netid_nwkid(netid));
        }
        n++;
    }
    assert_true(n >= 11);
    cJSON_Delete(root);
}

/* Examples from the reference notes that are not in the vectors file. */
static void test_more_examples(void **state)
{
    (void)state;
    static const struct {
        uint32_t netid;
        const char *prefix;
        uint32_t inside;
    } cases[] = {
        {0x000013, "26000000/7", 0x260126B4}, {0x000002, "04000000/7", 0x04ABCDEF},
        {0x6001FE, "E3FC0000/15", 0xE3FCFF42}, {0xC00053, "FC014C00/22", 0xFC014C01},
        {0xE1FFFF, "FEFFFF80/25", 0xFEFFFFC2}, {0x6000FF, "E1FE0000/15", 0xE1FE1234},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        lw_devaddr_prefix_t p;
        char txt[16];
        assert_int_equal(lw_netid_devaddr_prefix(cases[i].netid, &p, NULL), RH_OK);
        lw_devaddr_prefix_format(p, txt);
        assert_string_equal(txt, cases[i].prefix);
        assert_true(lw_devaddr_in_netid(cases[i].inside, cases[i].netid));
        assert_false(lw_devaddr_in_netid(cases[i].inside ^ 0x80000000u, cases[i].netid));
    }
}

static void test_invalid(void **state)
{
    (void)state;
    lw_devaddr_prefix_t p;
    rh_diag_t d;
    assert_int_equal(lw_netid_devaddr_prefix(0x1000000, &p, &d), RH_EINVAL);
    assert_non_null(strstr(d.text, "wider than 24 bits"));
    assert_int_equal(lw_devaddr_type(0xFF000000u), -1);
    uint32_t x;
    assert_int_equal(lw_devaddr_nwkid(0xFF000000u, &x), RH_EINVAL);
    assert_int_equal(lw_netid_parse("00050", &x, &d), RH_EINVAL);
    assert_int_equal(lw_netid_parse("0x00050A", &x, NULL), RH_OK);
    assert_int_equal(x, 0x00050A);
    assert_int_equal(lw_devaddr_parse("0a00000g", &x, &d), RH_EINVAL);
    assert_non_null(strstr(d.text, "DevAddr"));
    assert_int_equal(lw_devaddr_prefix_parse("0A000001/7", &p, &d), RH_EINVAL);
    assert_int_equal(lw_devaddr_prefix_parse("0A000000/33", &p, &d), RH_EINVAL);
    assert_int_equal(lw_devaddr_prefix_parse("0A000000", &p, &d), RH_EINVAL);
    assert_int_equal(lw_devaddr_prefix_parse("00000000/0", &p, NULL), RH_OK);
    assert_true(lw_prefix_contains(p, 0xDEADBEEF));
    char s[9];
    lw_devaddr_format(0x0A000000, s, 0);
    assert_string_equal(s, "0a000000");
    lw_netid_format(0xC00053, s, 1);
    assert_string_equal(s, "C00053");
}

static void test_prefix_covers(void **state)
{
    (void)state;
    lw_devaddr_prefix_t outer = {0x0A000000, 7}, inner = {0x0A100000, 12}, other = {0x26000000, 7};
    assert_true(lw_prefix_covers(outer, inner));
    assert_false(lw_prefix_covers(inner, outer));
    assert_false(lw_prefix_covers(outer, other));
    assert_true(lw_prefix_covers(outer, outer));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors_file),
        cmocka_unit_test(test_more_examples),
        cmocka_unit_test(test_invalid),
        cmocka_unit_test(test_prefix_covers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
