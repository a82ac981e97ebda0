/*
 * tl_util.c — JSON-config, atomic write, PRNG and percentile helpers (see tl_util.h).
 */
#include "tl_util.h"

#include "rh_fs.h"
#include "rh_hex.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int tl_json_load(const char *path, cJSON **out, rh_diag_t *diag)
{
    char *buf;
    size_t len;
    int rc = rh_read_file(path, 16u << 20, &buf, &len, diag);
    if (rc < 0)
        return rc;
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(buf, len, &end, 0);
    if (!j) {
        size_t off = end && end >= buf ? (size_t)(end - buf) : 0;
        free(buf);
        return rh_diag_fail(diag, RH_EINVAL, "%s: not valid JSON (near byte %zu)", path, off);
    }
    free(buf);
    *out = j;
    return RH_OK;
}

int tl_write_file_atomic(const char *path, const char *data, size_t len)
{
    size_t pl = strlen(path);
    char *tmp = malloc(pl + 16);
    if (!tmp)
        return RH_ENOMEM;
    snprintf(tmp, pl + 16, "%s.tmp%d", path, (int)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        free(tmp);
        return RH_EIO;
    }
    int ok = fwrite(data, 1, len, f) == len;
    ok &= fclose(f) == 0;
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        free(tmp);
        return RH_EIO;
    }
    free(tmp);
    return RH_OK;
}

void tl_rng_seed(tl_rng_t *r, uint64_t seed) { r->s = seed ? seed : 0x9E3779B97F4A7C15ull; }

uint64_t tl_rng_next(tl_rng_t *r)
{
    uint64_t x = r->s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    r->s = x;
    return x * 0x2545F4914F6CDD1Dull;
}

double tl_rng_unit(tl_rng_t *r) { return (double)(tl_rng_next(r) >> 11) / 9007199254740992.0; }

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double tl_percentile(double *v, size_t n, double p)
{
    if (n == 0)
        return 0;
    qsort(v, n, sizeof *v, cmp_double);
    double exact = p / 100.0 * (double)n;
    size_t rank = (size_t)exact; /* nearest rank = ceil(exact), without libm */
    if ((double)rank < exact)
        rank++;
    size_t i = rank < 1 ? 0 : rank - 1;
    if (i >= n)
        i = n - 1;
    return v[i];
}

int tl_check_keys(const cJSON *o, const char *const *allowed, const char *where, rh_diag_t *diag)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, o) {
        bool ok = false;
        for (const char *const *a = allowed; *a; a++)
            if (it->string && strcmp(it->string, *a) == 0)
                ok = true;
        if (!ok)
            return rh_diag_fail(diag, RH_EINVAL, "%s.%s: unknown key", where,
                                it->string ? it->string : "?");
    }
    return RH_OK;
}

static const cJSON *item(const cJSON *o, const char *key)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNull(it) ? NULL : it;
}

int tl_get_str(const cJSON *o, const char *key, const char *where, const char **v, rh_diag_t *diag)
{
    const cJSON *it = item(o, key);
    if (!it)
        return RH_OK;
    if (!cJSON_IsString(it))
        return rh_diag_fail(diag, RH_EINVAL, "%s.%s: expected a string", where, key);
    *v = it->valuestring;
    return RH_OK;
}

int tl_get_bool(const cJSON *o, const char *key, const char *where, bool *v, rh_diag_t *diag)
{
    const cJSON *it = item(o, key);
    if (!it)
        return RH_OK;
    if (!cJSON_IsBool(it))
        return rh_diag_fail(diag, RH_EINVAL, "%s.%s: expected true or false", where, key);
    *v = cJSON_IsTrue(it);
    return RH_OK;
}

int tl_get_uint(const cJSON *o, const char *key, const char *where, uint64_t max, uint64_t *v,
                rh_diag_t *diag)
{
    const cJSON *it = item(o, key);
    if (!it)
        return RH_OK;
    if (!cJSON_IsNumber(it) || !(it->valuedouble >= 0) || it->valuedouble > (double)max ||
        it->valuedouble != (double)(uint64_t)it->valuedouble)
        return rh_diag_fail(diag, RH_EINVAL, "%s.%s: expected an integer 0..%llu", where, key,
                            (unsigned long long)max);
    *v = (uint64_t)it->valuedouble;
    return RH_OK;
}

int tl_get_double(const cJSON *o, const char *key, const char *where, double lo, double hi,
                  double *v, rh_diag_t *diag)
{
    const cJSON *it = item(o, key);
    if (!it)
        return RH_OK;
    if (!cJSON_IsNumber(it) || !(it->valuedouble >= lo && it->valuedouble <= hi))
        return rh_diag_fail(diag, RH_EINVAL, "%s.%s: expected a number %g..%g", where, key, lo, hi);
    *v = it->valuedouble;
    return RH_OK;
}

int tl_get_hex(const cJSON *o, const char *key, const char *where, uint8_t *out, size_t n,
               bool *found, rh_diag_t *diag)
{
    const cJSON *it = item(o, key);
    size_t got = 0;
    uint8_t tmp[64];
    if (found)
        *found = false;
    if (!it)
        return RH_OK;
    if (!cJSON_IsString(it) ||
        rh_hex_decode(it->valuestring, strlen(it->valuestring), tmp, sizeof tmp, &got, key, NULL) < 0 ||
        got != n)
        return rh_diag_fail(diag, RH_EINVAL, "%s.%s: expected %zu hex digits", where, key, 2 * n);
    memcpy(out, tmp, n);
    if (found)
        *found = true;
    return RH_OK;
}

int tl_get_be(const cJSON *o, const char *key, const char *where, unsigned nbytes, uint64_t *v,
              bool *found, rh_diag_t *diag)
{
    const cJSON *it = item(o, key);
    if (found)
        *found = false;
    if (!it)
        return RH_OK;
    if (!cJSON_IsString(it) ||
        rh_hex_parse_be(it->valuestring, strlen(it->valuestring), nbytes, v, key, NULL) < 0)
        return rh_diag_fail(diag, RH_EINVAL, "%s.%s: expected %u hex digits", where, key,
                            2 * nbytes);
    if (found)
        *found = true;
    return RH_OK;
}

/* ---------------------------------------------------------------- u64 -> pointer map */

static int map_grow(tl_map_t *m);

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

int tl_map_init(tl_map_t *m, size_t expect)
{
    size_t cap = 16;
    while (cap < expect * 2 + 2)
        cap *= 2;
    uint64_t *keys = calloc(cap, sizeof *keys);
    void **vals = calloc(cap, sizeof *vals);
    if (!keys || !vals) {
        free(keys);
        free(vals);
        return RH_ENOMEM;
    }
    m->keys = keys;
    m->vals = vals;
    m->cap = cap;
    m->n = 0;
    return RH_OK;
}

void tl_map_fini(tl_map_t *m)
{
    free(m->keys);
    free(m->vals);
    m->keys = NULL;
    m->vals = NULL;
    m->cap = m->n = 0;
}

void *tl_map_get(const tl_map_t *m, uint64_t k)
{
    if (!m->cap)
        return NULL;
    for (size_t i = mix64(k) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        if (!m->vals[i])
            return NULL;
        if (m->keys[i] == k)
            return m->vals[i];
    }
}


static int map_grow(tl_map_t *m)
{
    tl_map_t g;
    if (tl_map_init(&g, m->cap) < 0)
        return RH_ENOMEM;
    for (size_t i = 0; i < m->cap; i++)
        if (m->vals[i])
            tl_map_put(&g, m->keys[i], m->vals[i]);
    tl_map_fini(m);
    *m = g;
    return RH_OK;
}

/* Inserts or replaces. */
int tl_map_put(tl_map_t *m, uint64_t k, void *v)
{
    if (!v)
        return RH_EINVAL;
    if (!m->cap && tl_map_init(m, 8) < 0)
        return RH_ENOMEM;
    if ((m->n + 1) * 2 > m->cap && map_grow(m) < 0)
        return RH_ENOMEM;
    for (size_t i = mix64(k) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        if (!m->vals[i]) {
            m->keys[i] = k;
            m->vals[i] = v;
            m->n++;
            return RH_OK;
        }
        if (m->keys[i] == k) {
            m->vals[i] = v;
            return RH_OK;
        }
    }
}

/* Removes k (backward-shift deletion keeps probe chains intact). */
void tl_map_del(tl_map_t *m, uint64_t k)
{
    if (!m->cap)
        return;
    size_t mask = m->cap - 1, i = mix64(k) & mask;
    for (;; i = (i + 1) & mask) {
        if (!m->vals[i])
            return;
        if (m->keys[i] == k)
            break;
    }
    m->vals[i] = NULL;
    m->n--;
    for (size_t j = (i + 1) & mask; m->vals[j]; j = (j + 1) & mask) {
        size_t home = mix64(m->keys[j]) & mask;
        /* Move j back to i if its home is not in (i, j]. */
        bool in = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (!in) {
            m->keys[i] = m->keys[j];
            m->vals[i] = m->vals[j];
            m->vals[j] = NULL;
            i = j;
        }
    }
}

