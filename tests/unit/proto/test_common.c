/* Unit tests for the shared runtime (proto/common): errors, diagnostics, hex/EUI helpers, whole-file
 * reading. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "rh_err.h"
#include "rh_fs.h"
#include "rh_hex.h"
#include "rh_log.h"

static void test_hex_decode_lenient(void **state)
{
    (void)state;
    uint8_t out[8];
    size_t n = 0;
    assert_int_equal(rh_hex_decode("0xC00053", 8, out, sizeof out, &n, "SenderID", NULL), RH_OK);
    assert_int_equal(n, 3);
    assert_memory_equal(out, "\xc0\x00\x53", 3);
    assert_int_equal(rh_hex_decode("c00053", 6, out, sizeof out, &n, "SenderID", NULL), RH_OK);
    assert_memory_equal(out, "\xc0\x00\x53", 3);
    assert_int_equal(rh_hex_decode("0X0a0B", 6, out, sizeof out, &n, "x", NULL), RH_OK);
    assert_memory_equal(out, "\x0a\x0b", 2);
    assert_int_equal(rh_hex_decode("", 0, out, sizeof out, &n, "x", NULL), RH_OK);
    assert_int_equal(n, 0);
}

static void test_hex_decode_errors(void **state)
{
    (void)state;
    uint8_t out[4];
    size_t n;
    rh_diag_t d;
    assert_int_equal(rh_hex_decode("abc", 3, out, sizeof out, &n, "DevAddr", &d), RH_EINVAL);
    assert_string_equal(d.text, "DevAddr: odd number of hex digits (3)");
    assert_int_equal(rh_hex_decode("zz", 2, out, sizeof out, &n, "DevAddr", &d), RH_EINVAL);
    assert_non_null(strstr(d.text, "non-hex character at position 0"));
    assert_int_equal(rh_hex_decode("0011223344", 10, out, sizeof out, &n, "DevAddr", &d),
                     RH_ERANGE);
    assert_non_null(strstr(d.text, "DevAddr: 5 bytes"));
}

static void test_parse_be_and_eui(void **state)
{
    (void)state;
    uint64_t v = 0;
    rh_diag_t d;
    assert_int_equal(rh_hex_parse_be("000505", 6, 3, &v, "NetID", NULL), RH_OK);
    assert_int_equal(v, 0x000505);
    assert_int_equal(rh_hex_parse_be("00050", 5, 3, &v, "NetID", &d), RH_EINVAL);
    assert_int_equal(rh_hex_parse_be("00000505", 8, 3, &v, "NetID", &d), RH_EINVAL);
    assert_non_null(strstr(d.text, "NetID: expected 3 bytes"));
    assert_int_equal(rh_eui64_parse("0x70B3D57ED0000000", &v, NULL), RH_OK);
    assert_true(v == 0x70B3D57ED0000000ull);
    char s[17];
    rh_eui64_format(v, s);
    assert_string_equal(s, "70b3d57ed0000000");
    char h[9];
    assert_int_equal(rh_hex_format_be(0x0a000000, 4, h, 1), 8);
    assert_string_equal(h, "0A000000");
}

static void test_byte_order_helpers(void **state)
{
    (void)state;
    uint8_t b[8];
    rh_put_le32(b, 0x01020304);
    assert_memory_equal(b, "\x04\x03\x02\x01", 4);
    assert_int_equal(rh_get_le32(b), 0x01020304);
    rh_put_be64(b, 0x0102030405060708ull);
    assert_memory_equal(b, "\x01\x02\x03\x04\x05\x06\x07\x08", 8);
    assert_true(rh_get_le64(b) == 0x0807060504030201ull);
}

static void test_strerror_and_diag(void **state)
{
    (void)state;
    assert_string_equal(rh_strerror(RH_EMIC), "MIC verification failed");
    assert_string_equal(rh_strerror(-999), "unknown error");
    rh_diag_t d;
    assert_int_equal(rh_diag_fail(&d, RH_ESIZE, "PHYPayload: %d bytes", 300), RH_ESIZE);
    assert_string_equal(d.text, "PHYPayload: 300 bytes");
    assert_int_equal(rh_diag_fail(NULL, RH_EINVAL, "ignored"), RH_EINVAL);
    assert_int_equal(rh_log_set_level_name("debug"), RH_OK);
    assert_int_equal(rh_log_level, RH_LOG_DEBUG);
    assert_int_equal(rh_log_set_level_name("loud"), RH_EINVAL);
}

/* Writes n bytes of a letter pattern into a new temporary file named into path; returns path. */
static const char *temp_file(char *path, size_t n)
{
    strcpy(path, "/tmp/rh_read_file_XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    for (size_t i = 0; i < n; i++) {
        char c = (char)('a' + i % 26);
        assert_int_equal(write(fd, &c, 1), 1);
    }
    close(fd);
    return path;
}

static void test_read_file(void **state)
{
    (void)state;
    char path[64];
    char *buf = NULL;
    size_t len = 99;
    rh_diag_t d;

    /* Exactly max bytes: accepted, NUL-terminated, one allocation from fstat. */
    temp_file(path, 5000);
    assert_int_equal(rh_read_file(path, 5000, &buf, &len, &d), RH_OK);
    assert_int_equal(len, 5000);
    assert_int_equal(strlen(buf), 5000);
    assert_int_equal(buf[25], 'z');
    free(buf);
    buf = NULL;
    /* One byte over: refused, naming the file and the cap, nothing returned. */
    assert_int_equal(rh_read_file(path, 4999, &buf, &len, &d), RH_ERANGE);
    assert_null(buf);
    assert_non_null(strstr(d.text, path));
    assert_non_null(strstr(d.text, "larger than 4999 bytes"));
    /* len may be NULL. */
    assert_int_equal(rh_read_file(path, 1 << 20, &buf, NULL, NULL), RH_OK);
    free(buf);
    buf = NULL;
    /* The same through rh_read_input, and "-" reads standard input. */
    assert_int_equal(rh_read_input(path, 1 << 20, &buf, &len, &d), RH_OK);
    assert_int_equal(len, 5000);
    free(buf);
    buf = NULL;
    assert_non_null(freopen(path, "rb", stdin));
    assert_int_equal(rh_read_input("-", 1 << 20, &buf, &len, &d), RH_OK);
    assert_int_equal(len, 5000);
    assert_memory_equal(buf, "abcdef", 6);
    free(buf);
    buf = NULL;
    assert_non_null(freopen(path, "rb", stdin));
    assert_int_equal(rh_read_input("-", 10, &buf, &len, &d), RH_ERANGE);
    assert_string_equal(d.text, "-: larger than 10 bytes");
    unlink(path);

    /* Empty file: RH_OK with length 0 and an empty string. */
    temp_file(path, 0);
    assert_int_equal(rh_read_file(path, 0, &buf, &len, &d), RH_OK);
    assert_int_equal(len, 0);
    assert_string_equal(buf, "");
    free(buf);
    buf = NULL;
    unlink(path);

    /* Missing file, a directory, and an endless non-regular file (growth path, capped). */
    assert_int_equal(rh_read_file("/nonexistent/x.json", 100, &buf, &len, &d), RH_EIO);
    assert_string_equal(d.text, "/nonexistent/x.json: No such file or directory");
    assert_null(buf);
    assert_int_equal(rh_read_file("/tmp", 100, &buf, &len, &d), RH_EIO);
    assert_non_null(strstr(d.text, "/tmp: read error"));
    assert_int_equal(rh_read_file("/dev/zero", 100000, &buf, &len, &d), RH_ERANGE);
    assert_string_equal(d.text, "/dev/zero: larger than 100000 bytes");
    assert_null(buf);
}

/* rh_read_file_nofollow: a regular file reads as rh_read_file; a symlink to it, a directory and
 * a device are refused, naming the path. */
static void test_read_file_nofollow(void **state)
{
    (void)state;
    char path[64], link[80];
    char *buf = NULL;
    size_t len = 0;
    rh_diag_t d;
    temp_file(path, 100);
    assert_int_equal(rh_read_file_nofollow(path, 100, &buf, &len, &d), RH_OK);
    assert_int_equal(len, 100);
    assert_memory_equal(buf, "abc", 3);
    free(buf);
    buf = NULL;
    assert_int_equal(rh_read_file_nofollow(path, 99, &buf, &len, &d), RH_ERANGE);
    snprintf(link, sizeof link, "%s.lnk", path);
    assert_int_equal(symlink(path, link), 0);
    assert_int_equal(rh_read_file(link, 100, &buf, &len, &d), RH_OK); /* follows */
    free(buf);
    buf = NULL;
    assert_int_equal(rh_read_file_nofollow(link, 100, &buf, &len, &d), RH_EIO);
    assert_non_null(strstr(d.text, link));
    assert_null(buf);
    assert_int_equal(rh_read_file_nofollow("/tmp", 100, &buf, &len, &d), RH_EIO);
    assert_string_equal(d.text, "/tmp: not a regular file");
    assert_int_equal(rh_read_file_nofollow("/dev/zero", 100, &buf, &len, &d), RH_EIO);
    assert_string_equal(d.text, "/dev/zero: not a regular file");
    assert_null(buf);
    unlink(link);
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hex_decode_lenient), cmocka_unit_test(test_hex_decode_errors),
        cmocka_unit_test(test_parse_be_and_eui),   cmocka_unit_test(test_byte_order_helpers),
        cmocka_unit_test(test_strerror_and_diag),  cmocka_unit_test(test_read_file),
        cmocka_unit_test(test_read_file_nofollow),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
