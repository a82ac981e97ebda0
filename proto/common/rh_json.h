/*
 * rh_json.h — the one JSON input policy every JSON body the hub reads goes through: TS002
 * messages (proto/bi_msg, via its pre-parse scan), admin API bodies, the configuration file and
 * routing-table imports (issue 16 item 5). cJSON stays the parser; this is the check around it:
 *
 *   1. rh_json_scan: one pass over the raw bytes before cJSON allocates anything — size, valid
 *      UTF-8 (no overlong forms, surrogates or code points above U+10FFFF), no NUL byte or raw
 *      control character in a string, no "\u0000" escape (cJSON would silently cut the string
 *      there), nesting depth, array and object sizes, string/key and number lengths. It tracks
 *      the key path, so a refusal names the field ("ULMetaData.GWInfo[3].ID: invalid UTF-8 at
 *      byte 210"). It is not a parser: grammar errors are left to cJSON.
 *   2. cJSON_ParseWithLengthOpts (no trailing data beyond whitespace).
 *   3. rh_json_check_tree: no object has the same key twice (cJSON would keep both and lookups
 *      would see the first), and no number is infinite or NaN.
 * rh_json_parse does all three. The TS002 codec runs step 1 itself (it has its own table-driven
 * duplicate check and needs the number callback for its canonical-form flags).
 */
#ifndef RH_JSON_H
#define RH_JSON_H

#include "rh_err.h"

#include <stdbool.h>
#include <stddef.h>

typedef struct cJSON cJSON;

/* Limits; 0 in any field means "no limit of this kind" (max_bytes 0: SIZE_MAX). */
typedef struct rh_json_limits {
    size_t max_bytes;      /* whole document, bytes */
    unsigned max_depth;    /* nested objects/arrays (at most 255) */
    unsigned max_array;    /* elements of any array */
    unsigned max_members;  /* members of any object */
    size_t max_string;     /* bytes of any string or key as written (escapes included) */
    size_t max_number;     /* characters of a number token */
} rh_json_limits_t;

/* Limits used by the admin API for request bodies (the listener's max_body_bytes bounds the
 * size), the configuration file, and routing-table import files (up to 256 MiB). */
extern const rh_json_limits_t rh_json_limits_admin;
extern const rh_json_limits_t rh_json_limits_config;
extern const rh_json_limits_t rh_json_limits_import;

/* Called by rh_json_scan for every number token: `key`/`keylen` is the raw key (as written) of
 * the member it is the value of (NULL/0 inside an array or at the top), `nonint` whether it has
 * a fraction or an exponent. */
typedef void (*rh_json_number_fn)(void *arg, const char *key, size_t keylen, bool nonint);

/* Step 1 over `n` bytes at `p` (need not be NUL-terminated). on_number may be NULL.
 * Errors (diag: "<path>: <reason>", path "body" at the top level):
 *   RH_EINVAL empty input, invalid UTF-8, NUL or control character, "\u0000", stray byte;
 *   RH_ERANGE a limit exceeded. */
int rh_json_scan(const char *p, size_t n, const rh_json_limits_t *lim, rh_json_number_fn on_number,
                 void *arg, rh_diag_t *diag);

/* Step 3 on a parsed tree. Errors: RH_EINVAL "<path>: duplicate key" or "<path>: number is not
 * finite"; RH_ERANGE nesting deeper than 255 (trees built in memory). */
int rh_json_check_tree(const cJSON *root, rh_diag_t *diag);

/* Steps 1-3: returns the new tree (caller cJSON_Delete) or NULL with diag set and *err (may be
 * NULL) = RH_EINVAL / RH_ERANGE / RH_ENOMEM. Grammar errors: "body: not valid JSON (near byte N)";
 * trailing data: "body: trailing data after the JSON value". */
cJSON *rh_json_parse(const char *p, size_t n, const rh_json_limits_t *lim, int *err,
                     rh_diag_t *diag);

#endif
