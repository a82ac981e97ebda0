/* Unit tests for proto/common/rh_json: the JSON input policy every JSON reader uses (issue 16
 * item 5). Each refusal must name the field and the reason. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

#include "rh_json.h"

static const rh_json_limits_t small = {
    .max_bytes = 4096, .max_depth = 4, .max_array = 4, .max_members = 4, .max_string = 16,
    .max_number = 10,
};

static void refused(const char *text, size_t n, int code, const char *msg)
{
    rh_diag_t d = {{0}};
    int err = 0;
    cJSON *o = rh_json_parse(text, n, &small, &err, &d);
    if (o) {
        cJSON_Delete(o);
        fail_msg("accepted: %s", text);
    }
    if (err != code)
        fail_msg("%s: code %d, expected %d (%s)", text, err, code, d.text);
    if (!strstr(d.text, msg))
        fail_msg("%s: '%s' does not contain '%s'", text, d.text, msg);
}

#define REFUSED(lit, code, msg) refused(lit, sizeof(lit) - 1, code, msg)

static void test_refusals(void **state)
{
    (void)state;
    REFUSED("{\"net_id\":\"000111\",\"net_id\":\"000112\"}", RH_EINVAL, "net_id: duplicate key");
    REFUSED("{\"a\":{\"b\":[{\"c\":1,\"c\":2}]}}", RH_EINVAL, "a.b[0].c: duplicate key");
    REFUSED("{\"n\\u0061me\":1,\"name\":2}", RH_EINVAL, "name: duplicate key"); /* escaped */
    REFUSED("{\"name\":\"a\\u0000b\"}", RH_EINVAL, "name: \\u0000 is not allowed");
    REFUSED("{\"name\":\"\xff\"}", RH_EINVAL, "name: invalid UTF-8");
    REFUSED("{\"name\":\"\xc0\xaf\"}", RH_EINVAL, "name: invalid UTF-8");      /* overlong */
    REFUSED("{\"name\":\"\xed\xa0\x80\"}", RH_EINVAL, "name: invalid UTF-8");  /* surrogate */
    REFUSED("{\"name\":\"a\tb\"}", RH_EINVAL, "name: control character 0x09");
    REFUSED("{\"name\":1}\0", RH_EINVAL, "body: NUL byte");
    REFUSED("{\"a\":[[[[1]]]]}", RH_ERANGE, "nesting deeper than 4 levels");
    REFUSED("{\"a\":[1,2,3,4,5]}", RH_ERANGE, "a: array has more than 4 elements");
    REFUSED("{\"a\":1,\"b\":2,\"c\":3,\"d\":4,\"e\":5}", RH_ERANGE, "object has more than 4");
    REFUSED("{\"name\":\"0123456789abcdefg\"}", RH_ERANGE, "name: string of 17 bytes");
    REFUSED("{\"n\":12345678901}", RH_ERANGE, "n: number of 11 characters");
    REFUSED("{\"n\":1} x", RH_EINVAL, "trailing data");
    REFUSED("{\"n\":}", RH_EINVAL, "not valid JSON");
    REFUSED("", RH_EINVAL, "body: empty");
}

static void test_accepts_and_tree_check(void **state)
{
    (void)state;
    const char *ok = "{\"name\":\"Caf\xc3\xa9 \xf0\x9f\x93\xa1\",\"a\":[1,2.5,{\"x\":null}]} \n";
    rh_diag_t d;
    cJSON *o = rh_json_parse(ok, strlen(ok), &small, NULL, &d);
    assert_non_null(o);
    assert_string_equal(cJSON_GetObjectItem(o, "name")->valuestring, "Caf\xc3\xa9 \xf0\x9f\x93\xa1");
    cJSON_Delete(o);
    /* trees built in memory: duplicate and non-finite values are found too */
    o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "x", 1);
    cJSON_AddNumberToObject(o, "x", 2);
    assert_int_equal(rh_json_check_tree(o, &d), RH_EINVAL);
    assert_string_equal(d.text, "x: duplicate key");
    cJSON_Delete(o);
    o = cJSON_CreateArray();
    cJSON_AddItemToArray(o, cJSON_CreateNumber(1.0 / 0.0 * 0.0));
    assert_int_equal(rh_json_check_tree(o, &d), RH_EINVAL);
    assert_string_equal(d.text, "[0]: number is not finite");
    cJSON_Delete(o);
}

static void on_num(void *arg, const char *key, size_t keylen, bool nonint)
{
    if (nonint && key && keylen == 5 && !memcmp(key, "FPort", 5))
        ++*(int *)arg;
}

static void test_number_callback(void **state)
{
    (void)state;
    int n = 0;
    const char *t = "{\"FPort\":1.0,\"b\":[2.5],\"c\":{\"FPort\":3e0},\"FPort\":4}";
    assert_int_equal(rh_json_scan(t, strlen(t), &small, on_num, &n, NULL), RH_OK);
    assert_int_equal(n, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_accepts_and_tree_check),
        cmocka_unit_test(test_number_callback),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
