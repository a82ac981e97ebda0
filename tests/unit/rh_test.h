/*
 * rh_test.h — helpers shared by the cmocka unit tests: load a JSON vector file from
 * $ROAMHUB_VECTORS (../shared/vectors) or $ROAMHUB_TESTDATA (tests/data), and hex conversion.
 * Not a test framework: assertions are cmocka's.
 */
#ifndef RH_TEST_H
#define RH_TEST_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

/* Parses $ROAMHUB_VECTORS/<name>; fails the test (cmocka fail_msg) when missing or invalid.
 * Caller frees with cJSON_Delete. */
cJSON *rh_test_load_vectors(const char *name);

/* Same for $ROAMHUB_TESTDATA/<name>. */
cJSON *rh_test_load_testdata(const char *name);

/* Reads a whole file (rh_read_file, at most 64 MiB); returns a malloc'd NUL-terminated buffer
 * (caller frees), length in *len (len may be NULL); NULL when unreadable. */
char *rh_test_read_file(const char *path, size_t *len);

/* Decodes hex (spaces allowed and ignored) into out; fails the test on bad hex or overflow.
 * Returns the byte count. */
size_t rh_test_hex(const char *hex, uint8_t *out, size_t cap);

/* String member of a cJSON object or fail the test. */
const char *rh_test_str(const cJSON *obj, const char *key);

#endif
