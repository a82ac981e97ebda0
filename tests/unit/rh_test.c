/* rh_test.c — see rh_test.h. */
#include "rh_test.h"

#include "rh_fs.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

char *rh_test_read_file(const char *path, size_t *len)
{
    char *buf;
    return rh_read_file(path, 64u << 20, &buf, len, NULL) == RH_OK ? buf : NULL;
}

static cJSON *load(const char *envvar, const char *name)
{
    const char *dir = getenv(envvar);
    if (!dir)
        fail_msg("%s is not set (run the tests through ctest)", envvar);
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    char *text = rh_test_read_file(path, NULL);
    if (!text)
        fail_msg("cannot read %s", path);
    cJSON *j = cJSON_Parse(text);
    free(text);
    if (!j)
        fail_msg("%s is not valid JSON", path);
    return j;
}

cJSON *rh_test_load_vectors(const char *name) { return load("ROAMHUB_VECTORS", name); }
cJSON *rh_test_load_testdata(const char *name) { return load("ROAMHUB_TESTDATA", name); }

size_t rh_test_hex(const char *hex, uint8_t *out, size_t cap)
{
    size_t n = 0;
    int hi = -1;
    for (const char *p = hex; *p; p++) {
        int v = 0;
        if (*p == ' ')
            continue;
        if (*p >= '0' && *p <= '9') v = *p - '0';
        else if (*p >= 'a' && *p <= 'f') v = *p - 'a' + 10;
        else if (*p >= 'A' && *p <= 'F') v = *p - 'A' + 10;
        else fail_msg("bad hex in test data: %s", hex);
        if (hi < 0) {
            hi = v;
        } else {
            if (n >= cap)
                fail_msg("hex longer than %zu bytes: %s", cap, hex);
            out[n++] = (uint8_t)(hi << 4 | v);
            hi = -1;
        }
    }
    if (hi >= 0)
        fail_msg("odd hex in test data: %s", hex);
    return n;
}

const char *rh_test_str(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!cJSON_IsString(v))
        fail_msg("test data: missing string '%s'", key);
    return v->valuestring;
}
