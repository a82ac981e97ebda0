/* Unit tests for proto/common/rh_id: one character set and length per identifier kind (issue 16
 * item 6), each refusal naming the field and the reason. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "rh_id.h"

static void expect(rh_id_kind_t k, const char *s, int want, const char *msg)
{
    rh_diag_t d = {{0}};
    int rc = rh_id_check(k, s, "endpoint.id", &d);
    if (rc != want)
        fail_msg("'%s': rc %d, expected %d (%s)", s ? s : "(null)", rc, want, d.text);
    if (msg && !strstr(d.text, msg))
        fail_msg("'%s': '%s' does not contain '%s'", s, d.text, msg);
}

static void test_record_ids(void **state)
{
    (void)state;
    char long_id[RH_ID_MAX + 2];
    memset(long_id, 'a', sizeof long_id - 1);
    long_id[sizeof long_id - 1] = '\0';
    expect(RH_ID_RECORD, "netB", RH_OK, NULL);
    expect(RH_ID_RECORD, "k-0a1b2c.x_y", RH_OK, NULL);
    long_id[RH_ID_MAX] = '\0';
    expect(RH_ID_RECORD, long_id, RH_OK, NULL);
    long_id[RH_ID_MAX] = 'a';
    expect(RH_ID_RECORD, long_id, RH_EINVAL, "endpoint.id: ID is 129 characters, at most 128");
    expect(RH_ID_RECORD, "", RH_EINVAL, "endpoint.id: an ID is required");
    expect(RH_ID_RECORD, NULL, RH_EINVAL, "an ID is required");
    expect(RH_ID_RECORD, "a b", RH_EINVAL, "character 2 (byte 0x20)");
    expect(RH_ID_RECORD, "\xc3\xa9", RH_EINVAL, "start with a letter or digit");
    expect(RH_ID_RECORD, "a\xc3\xa9", RH_EINVAL, "character 2 (byte 0xc3)");
    expect(RH_ID_RECORD, "a/b", RH_EINVAL, "character 2 ('/') of the ID is not one of");
    expect(RH_ID_RECORD, "a\"b", RH_EINVAL, "('\"')");
    expect(RH_ID_RECORD, "a%2F", RH_EINVAL, "('%')");
    expect(RH_ID_RECORD, "id:x", RH_EINVAL, "(':')");
    expect(RH_ID_RECORD, "..", RH_EINVAL, "start with a letter or digit");
    expect(RH_ID_RECORD, "-rf", RH_EINVAL, "start with a letter or digit");
}

static void test_tenants_and_names(void **state)
{
    (void)state;
    expect(RH_ID_TENANT, "", RH_OK, NULL); /* no tenant */
    expect(RH_ID_TENANT, NULL, RH_OK, NULL);
    expect(RH_ID_TENANT, "acme.eu-1", RH_OK, NULL);
    expect(RH_ID_TENANT, "0123456789012345678901234567890123456", RH_EINVAL,
           "tenant ID is 37 characters, at most 36");
    expect(RH_ID_TENANT, "a/b", RH_EINVAL, "('/') of the tenant ID");
    expect(RH_ID_NAME, "Caf\xc3\xa9 \"Alpha\" / 100%", RH_OK, NULL);
    expect(RH_ID_NAME, "", RH_OK, NULL);
    expect(RH_ID_NAME, "a\nb", RH_EINVAL, "byte 2 is a control character (0x0a)");
    expect(RH_ID_NAME, "a\x7f", RH_EINVAL, "control character (0x7f)");
    char name[RH_NAME_MAX + 2];
    memset(name, 'n', sizeof name - 1);
    name[sizeof name - 1] = '\0';
    expect(RH_ID_NAME, name, RH_EINVAL, "257 bytes, at most 256");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_record_ids),
        cmocka_unit_test(test_tenants_and_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
