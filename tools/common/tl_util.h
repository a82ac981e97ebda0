/*
 * tl_util.h — small helpers shared by roamns and roamsim: JSON files (read by rh_fs.h), a
 * deterministic PRNG, percentiles, and typed getters for config objects that refuse unknown
 * keys and name the offending key ("devices[2].app_key: expected 32 hex digits").
 * No global state; thread-safe.
 */
#ifndef TL_UTIL_H
#define TL_UTIL_H

#include "rh_err.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Parses a JSON file (at most 16 MiB, read with rh_read_file). Errors: as rh_read_file, RH_EINVAL (not JSON, with the
 * byte offset of the error). Caller frees with cJSON_Delete. */
int tl_json_load(const char *path, cJSON **out, rh_diag_t *diag);

/* Writes `len` bytes to path atomically (temp file + rename). Errors: RH_EIO. */
int tl_write_file_atomic(const char *path, const char *data, size_t len);

/* xorshift64* PRNG. A zero seed is replaced by a constant. */
typedef struct tl_rng {
    uint64_t s;
} tl_rng_t;
void tl_rng_seed(tl_rng_t *r, uint64_t seed);
uint64_t tl_rng_next(tl_rng_t *r);
/* Uniform double in [0, 1). */
double tl_rng_unit(tl_rng_t *r);

/* The p-th percentile (0..100, nearest rank) of n values; sorts v in place. 0 when n == 0. */
double tl_percentile(double *v, size_t n, double p);

/* Config object checking: every key of `o` must be in the NULL-terminated `allowed` list.
 * Errors: RH_EINVAL "<where>.<key>: unknown key". */
int tl_check_keys(const cJSON *o, const char *const *allowed, const char *where, rh_diag_t *diag);

/* Typed getters: *found false (and RH_OK) when the key is absent or null.
 * Errors: RH_EINVAL naming "<where>.<key>" and the expected type/range. */
int tl_get_str(const cJSON *o, const char *key, const char *where, const char **v, rh_diag_t *diag);
int tl_get_bool(const cJSON *o, const char *key, const char *where, bool *v, rh_diag_t *diag);
int tl_get_uint(const cJSON *o, const char *key, const char *where, uint64_t max, uint64_t *v,
                rh_diag_t *diag);
int tl_get_double(const cJSON *o, const char *key, const char *where, double lo, double hi,
                  double *v, rh_diag_t *diag);
/* Exactly n bytes of hex (e.g. a 16-byte key). */
int tl_get_hex(const cJSON *o, const char *key, const char *where, uint8_t *out, size_t n,
               bool *found, rh_diag_t *diag);
/* An EUI-64 / NetID / DevAddr in display hex. */
int tl_get_be(const cJSON *o, const char *key, const char *where, unsigned nbytes, uint64_t *v,
              bool *found, rh_diag_t *diag);

/* A uint64_t -> non-NULL pointer hash map: open addressing, linear probing, power-of-two
 * capacity kept at load <= 1/2, backward-shift deletion (no tombstones). Zero-initialise or
 * tl_map_init; tl_map_fini frees the table (not the values). */
typedef struct tl_map {
    uint64_t *keys;
    void **vals; /* NULL = empty slot */
    size_t cap, n;
} tl_map_t;
/* Errors: RH_ENOMEM. `expect` sizes the initial table. */
int tl_map_init(tl_map_t *m, size_t expect);
void tl_map_fini(tl_map_t *m);
/* The value for k, or NULL. */
void *tl_map_get(const tl_map_t *m, uint64_t k);
/* Inserts or replaces (v must not be NULL). Errors: RH_EINVAL (NULL v), RH_ENOMEM. */
int tl_map_put(tl_map_t *m, uint64_t k, void *v);
/* Removes k if present. */
void tl_map_del(tl_map_t *m, uint64_t k);

#endif
