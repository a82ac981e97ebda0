/*
 * test_grpc_frame.c — gRPC framing, status names, grpc-message encoding and grpc-timeout
 * (broker/grpc_frame.c), including the DATA payload of pb_messages.json's first vector split
 * at every byte boundary.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "grpc_frame.h"
#include "rh_test.h"

typedef struct {
    unsigned count;
    size_t lens[8];
    uint8_t *last;
    size_t last_len;
    int fail_with; /* returned by the callback when non-zero */
} sink_t;

static int on_msg(void *arg, const uint8_t *msg, size_t len)
{
    sink_t *s = arg;
    if (s->count < 8)
        s->lens[s->count] = len;
    s->count++;
    free(s->last);
    s->last = malloc(len ? len : 1);
    assert_non_null(s->last);
    memcpy(s->last, msg, len);
    s->last_len = len;
    return s->fail_with;
}

static void test_status_names(void **state)
{
    (void)state;
    assert_string_equal(grpc_status_name(GRPC_OK), "OK");
    assert_string_equal(grpc_status_name(GRPC_PERMISSION_DENIED), "PERMISSION_DENIED");
    assert_string_equal(grpc_status_name(GRPC_UNIMPLEMENTED), "UNIMPLEMENTED");
    assert_string_equal(grpc_status_name(GRPC_UNAUTHENTICATED), "UNAUTHENTICATED");
    assert_int_equal(GRPC_UNAVAILABLE, 14);
    assert_int_equal(GRPC_DEADLINE_EXCEEDED, 4);
    assert_string_equal(grpc_status_name(17), "UNKNOWN");
    assert_string_equal(grpc_status_name(-1), "UNKNOWN");
}

/* The vector's grpc_frame_hex is header(len(hex)) + hex, and the reader reassembles it from
 * any split. */
static void test_vector_frame_any_split(void **state)
{
    (void)state;
    cJSON *root = rh_test_load_vectors("pb_messages.json");
    const cJSON *v = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(root, "vectors"), 0);
    const char *fhex = rh_test_str(v, "grpc_frame_hex");
    const char *mhex = rh_test_str(v, "hex");
    uint8_t frame[1024], msg[1024];
    size_t fn = rh_test_hex(fhex, frame, sizeof frame);
    size_t mn = rh_test_hex(mhex, msg, sizeof msg);
    assert_int_equal(fn, mn + GRPC_FRAME_HDR);

    uint8_t hdr[GRPC_FRAME_HDR];
    grpc_frame_header(hdr, (uint32_t)mn);
    assert_memory_equal(hdr, frame, GRPC_FRAME_HDR);

    for (size_t cut = 0; cut <= fn; cut++) {
        sink_t s = {0};
        grpc_deframer_t r;
        grpc_deframer_init(&r, 4096, on_msg, &s);
        assert_int_equal(grpc_deframer_feed(&r, frame, cut, NULL), GRPC_OK);
        assert_int_equal(s.count, 0 + (cut == fn));
        assert_int_equal(grpc_deframer_idle(&r), cut == 0 || cut == fn);
        assert_int_equal(grpc_deframer_feed(&r, frame + cut, fn - cut, NULL), GRPC_OK);
        assert_int_equal(s.count, 1);
        assert_int_equal(s.last_len, mn);
        assert_memory_equal(s.last, msg, mn);
        assert_true(grpc_deframer_idle(&r));
        grpc_deframer_fini(&r);
        free(s.last);
    }
    cJSON_Delete(root);
}

/* Several messages (one empty) in one DATA payload, then fed one byte at a time. */
static void test_several_messages(void **state)
{
    (void)state;
    uint8_t buf[64];
    size_t n = 0;
    const char *parts[] = {"abc", "", "hello world"};
    for (int i = 0; i < 3; i++) {
        grpc_frame_header(buf + n, (uint32_t)strlen(parts[i]));
        n += GRPC_FRAME_HDR;
        memcpy(buf + n, parts[i], strlen(parts[i]));
        n += strlen(parts[i]);
    }
    for (int bytewise = 0; bytewise < 2; bytewise++) {
        sink_t s = {0};
        grpc_deframer_t r;
        grpc_deframer_init(&r, 64, on_msg, &s);
        if (bytewise)
            for (size_t i = 0; i < n; i++)
                assert_int_equal(grpc_deframer_feed(&r, buf + i, 1, NULL), GRPC_OK);
        else
            assert_int_equal(grpc_deframer_feed(&r, buf, n, NULL), GRPC_OK);
        assert_int_equal(s.count, 3);
        assert_int_equal(s.lens[0], 3);
        assert_int_equal(s.lens[1], 0);
        assert_int_equal(s.lens[2], 11);
        assert_memory_equal(s.last, "hello world", 11);
        assert_int_equal(r.messages, 3);
        grpc_deframer_fini(&r);
        free(s.last);
    }
}

static void test_refusals(void **state)
{
    (void)state;
    rh_diag_t d;
    sink_t s = {0};
    grpc_deframer_t r;

    /* over the cap: refused on the header, nothing allocated or delivered */
    uint8_t big[GRPC_FRAME_HDR];
    grpc_frame_header(big, 65);
    grpc_deframer_init(&r, 64, on_msg, &s);
    assert_int_equal(grpc_deframer_feed(&r, big, sizeof big, &d), GRPC_RESOURCE_EXHAUSTED);
    assert_non_null(strstr(d.text, "65 bytes, at most 64"));
    assert_null(r.buf);
    grpc_deframer_fini(&r);

    /* 4 GiB - 1 announced: same */
    uint8_t huge[] = {0, 0xff, 0xff, 0xff, 0xff};
    grpc_deframer_init(&r, 16u << 20, on_msg, &s);
    assert_int_equal(grpc_deframer_feed(&r, huge, sizeof huge, &d), GRPC_RESOURCE_EXHAUSTED);
    grpc_deframer_fini(&r);

    /* compressed without an encoding */
    uint8_t comp[] = {1, 0, 0, 0, 1, 'x'};
    grpc_deframer_init(&r, 64, on_msg, &s);
    assert_int_equal(grpc_deframer_feed(&r, comp, sizeof comp, &d), GRPC_UNIMPLEMENTED);
    assert_non_null(strstr(d.text, "compressed"));
    grpc_deframer_fini(&r);

    /* flag 2 is malformed */
    uint8_t bad[] = {2, 0, 0, 0, 0};
    grpc_deframer_init(&r, 64, on_msg, &s);
    assert_int_equal(grpc_deframer_feed(&r, bad, sizeof bad, &d), GRPC_INTERNAL);
    assert_non_null(strstr(d.text, "Compressed-Flag 2"));
    grpc_deframer_fini(&r);

    assert_int_equal(s.count, 0);

    /* the callback's status stops reading and is passed on */
    uint8_t two[] = {0, 0, 0, 0, 1, 'a', 0, 0, 0, 0, 1, 'b'};
    s.fail_with = GRPC_PERMISSION_DENIED;
    grpc_deframer_init(&r, 64, on_msg, &s);
    assert_int_equal(grpc_deframer_feed(&r, two, sizeof two, NULL), GRPC_PERMISSION_DENIED);
    assert_int_equal(s.count, 1);
    grpc_deframer_fini(&r);
    free(s.last);
}

static void test_percent_encoding(void **state)
{
    (void)state;
    char out[64], back[64];
    assert_int_equal(grpc_percent_encode("plain text: ok", out, sizeof out), 14);
    assert_string_equal(out, "plain text: ok");
    grpc_percent_encode("50% d\xc3\xa9j\xc3\xa0\n", out, sizeof out);
    assert_string_equal(out, "50%25 d%C3%A9j%C3%A0%0A");
    size_t n = grpc_percent_decode(out, strlen(out), back, sizeof back);
    assert_int_equal(n, strlen("50% d\xc3\xa9j\xc3\xa0\n"));
    assert_string_equal(back, "50% d\xc3\xa9j\xc3\xa0\n");
    /* never cut inside %XX */
    assert_int_equal(grpc_percent_encode("ab\n", out, 5), 2);
    assert_string_equal(out, "ab");
    assert_int_equal(grpc_percent_encode("ab\n", out, 6), 5);
    /* malformed escapes are kept literally */
    grpc_percent_decode("100%zz%4", 8, back, sizeof back);
    assert_string_equal(back, "100%zz%4");
}

static void test_timeout(void **state)
{
    (void)state;
    uint64_t ms = 0;
    rh_diag_t d;
    assert_int_equal(grpc_timeout_parse("3S", 2, &ms, NULL), RH_OK);
    assert_int_equal(ms, 3000);
    assert_int_equal(grpc_timeout_parse("2999871u", 8, &ms, NULL), RH_OK);
    assert_int_equal(ms, 3000);
    assert_int_equal(grpc_timeout_parse("1n", 2, &ms, NULL), RH_OK);
    assert_int_equal(ms, 1);
    assert_int_equal(grpc_timeout_parse("0m", 2, &ms, NULL), RH_OK);
    assert_int_equal(ms, 0);
    assert_int_equal(grpc_timeout_parse("99999999H", 9, &ms, NULL), RH_OK);
    assert_int_equal(ms, 99999999ull * 3600000ull);
    assert_int_equal(grpc_timeout_parse("2M", 2, &ms, NULL), RH_OK);
    assert_int_equal(ms, 120000);
    assert_int_equal(grpc_timeout_parse("123456789S", 10, &ms, &d), RH_EINVAL);
    assert_non_null(strstr(d.text, "grpc-timeout"));
    assert_int_equal(grpc_timeout_parse("3s", 2, &ms, &d), RH_EINVAL);
    assert_non_null(strstr(d.text, "unit 's'"));
    assert_int_equal(grpc_timeout_parse("-1S", 3, &ms, &d), RH_EINVAL);
    assert_int_equal(grpc_timeout_parse("S", 1, &ms, &d), RH_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_status_names),     cmocka_unit_test(test_vector_frame_any_split),
        cmocka_unit_test(test_several_messages), cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_percent_encoding), cmocka_unit_test(test_timeout),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
