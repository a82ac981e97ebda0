/*
 * bi_fast.h — one-pass decoding of a TS002 JSON body (TS002 1.0 §11-12, §16-22; TS002-1.1.0)
 * for the relay's fast path (issue #15).
 *
 * bi_msg_decode (bi_msg.h) checks the bytes (bi_scan), builds a cJSON tree and walks it to fill
 * the typed view; most of a relayed message's CPU went to that tree, which the relay only needs
 * when it re-encodes or edits the message. bi_fast_decode reads the bytes once, checks the JSON
 * grammar and the codec's limits as it goes, and fills the same typed view through the same leaf
 * decoders (bi_leaf.h: hex sizes, integer ranges, RecvTime, RFRegion, ResultCode ...) and
 * the same per-MessageType mandatory-field check; the tree is parsed later, only if a mutation
 * or an encoding needs it (bi_msg_strip_gwinfo with something to strip, bi_msg_set_*,
 * bi_msg_encode, bi_msg_json ...). bi_msg_is_canonical_for and bi_msg_splice_header work
 * without it, so a message forwarded as received never gets a tree. The pass also records where
 * the header values and every typed hex field stand in the bytes, so bi_msg_splice_header can
 * write the relay's header values and respell hex case there (bi_msg.h).
 *
 * Contract: bi_fast_decode accepts a body only when bi_msg_decode accepts it, and then with the
 * same typed view and the same representation flags (so the same bi_msg_is_canonical_for answers
 * and the same encodings). It decides nothing else: whatever it does not handle on its single
 * pass — any refusal, and also backslash escapes, bytes >= 0x80, whitespace other than the four
 * JSON ones, numbers outside the strict JSON grammar or not finite, duplicate keys, nesting
 * deeper than BI_FAST_MAX_DEPTH, objects over 127 members or arrays over 255 elements, strings
 * over 4000 bytes, opaque object fields (VSExtension, ServiceProfile, DeviceProfile) — returns
 * RH_EAGAIN, and bi_msg_decode_fast then runs bi_msg_decode, whose refusal (ResultCode,
 * Description, header fields read) is the answer. Refusals therefore cost two passes; accepted
 * ordinary messages one. The differential fuzz target tests/fuzz/fuzz_bi_fast.c checks the
 * contract (replayed by ctest as fuzz_replay_bi_fast; unit_proto_bi_fast runs it on the shared
 * vectors).
 *
 * Speed: each thread remembers, per field table, which member followed which in the previous
 * message it decoded, and first compares the bytes with the predicted key ("Name":) before
 * reading and looking up the key; senders write their members in a fixed order. A miss takes
 * the ordinary path, so the prediction changes no decision and no value. Numbers without an
 * exponent are converted while their grammar is checked (up to 15 significant digits; others
 * through strtod, as cJSON).
 *
 * Memory: the message keeps two copies of the body (one to parse the tree from, one holding the
 * view's strings); free with bi_msg_free. Threads: as bi_msg.h (the key-order memory is
 * thread-local: 390 bytes per thread).
 */
#ifndef BI_FAST_H
#define BI_FAST_H

#include "bi_msg.h"

#define BI_FAST_MAX_DEPTH 8 /* nested objects/arrays handled in one pass (TS002 needs 4) */

/* One pass over `len` bytes at `body` (need not be NUL-terminated). RH_OK: *out is a new
 * message, exactly as bi_msg_decode would have decoded it (free with bi_msg_free). RH_EAGAIN:
 * *out is NULL and the one pass cannot decide (see above: refusals included) — call
 * bi_msg_decode. Never another code (allocation failure also answers RH_EAGAIN). */
int bi_fast_decode(const char *body, size_t len, bi_msg_t **out);

/* bi_fast_decode, then bi_msg_decode when it answers RH_EAGAIN: bi_msg_decode's contract
 * (arguments, errors, err filled on refusal), with one pass for ordinary accepted messages. */
int bi_msg_decode_fast(const char *body, size_t len, bi_msg_t **out, bi_error_t *err);

#endif
