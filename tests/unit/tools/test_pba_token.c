/* Unit tests for tools/common/pba_token: the Packet Broker Agent's token request form (the fields,
 * order and encoding golang.org/x/oauth2 sends with AuthStyleInParams) and the token answer (every
 * refusal names the field). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pba_token.h"
#include "rh_test.h"

static void test_form(void **state)
{
    (void)state;
    char *f = pba_token_form("k-1a2b", "s3cr&t=+ x", "networks", "localhost 127.0.0.1");
    assert_non_null(f);
    assert_string_equal(f, "grant_type=client_credentials&client_id=k-1a2b&client_secret=s3cr%26t%3D%2B+x"
                           "&scope=networks&audience=localhost+127.0.0.1");
    free(f);
    f = pba_token_form("id", "", NULL, NULL); /* empty fields stay present, as x/oauth2 sends them */
    assert_string_equal(f, "grant_type=client_credentials&client_id=id&client_secret=&scope=&audience=");
    free(f);
}

static void test_answer(void **state)
{
    (void)state;
    char *tok;
    uint64_t exp;
    rh_diag_t d;
    const char *ok = "{\"access_token\":\"eyJ.a.b\",\"token_type\":\"Bearer\",\"expires_in\":900}";
    assert_int_equal(pba_token_parse(ok, strlen(ok), &tok, &exp, &d), RH_OK);
    assert_string_equal(tok, "eyJ.a.b");
    assert_int_equal(exp, 900);
    free(tok);
    const char *noexp = "{\"access_token\":\"t\",\"token_type\":\"bearer\"}";
    assert_int_equal(pba_token_parse(noexp, strlen(noexp), &tok, &exp, &d), RH_OK);
    assert_int_equal(exp, 0); /* no expires_in: never refreshed */
    free(tok);
    static const struct {
        const char *body, *field;
    } bad[] = {
        {"{\"token_type\":\"bearer\"}", "access_token:"},
        {"{\"access_token\":\"\",\"token_type\":\"bearer\"}", "access_token:"},
        {"{\"access_token\":7,\"token_type\":\"bearer\"}", "access_token:"},
        {"{\"access_token\":\"t\",\"token_type\":\"mac\"}", "token_type:"},
        {"{\"access_token\":\"t\"}", "token_type:"},
        {"{\"access_token\":\"t\",\"token_type\":\"bearer\",\"expires_in\":\"10\"}", "expires_in:"},
        {"{\"access_token\":\"t\",\"token_type\":\"bearer\",\"expires_in\":-1}", "expires_in:"},
        {"[1]", "token answer:"},
        {"{\"access_token\":", "body:"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        rh_diag_clear(&d);
        tok = (char *)1;
        assert_int_equal(pba_token_parse(bad[i].body, strlen(bad[i].body), &tok, &exp, &d), RH_EINVAL);
        assert_null(tok);
        if (strncmp(d.text, bad[i].field, strlen(bad[i].field)) != 0)
            fail_msg("case %zu: diag \"%s\" does not start with \"%s\"", i, d.text, bad[i].field);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_form),
        cmocka_unit_test(test_answer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
