/*
 * bi_types.h — LoRaWAN Backend Interfaces (TS002 1.0 §22, TS002-1.1.0) enumerations and the
 * small value codecs of the JSON binding: protocol versions, MessageType, ResultCode (1.0 Table 24
 * plus the 1.1 additions), RFRegion names and RFC 3339 times.
 *
 * Input is lenient the way real peers differ; output is one strict spelling per peer dialect:
 *  - ResultCode: parsed case-insensitively; the spec's "UnkownReceiver" and the corrected
 *    "UnknownReceiver" both mean BI_RC_UNKNOWN_RECEIVER, emitter typos seen in the wild
 *    ("RoamingActDisallowedA", "UnknownReceiverID") map to their code, anything else is
 *    BI_RC_OTHER. MalformedRequest (1.0) and MalformedMessage (1.1) are distinct values but are
 *    emitted in the spelling of the output protocol version.
 *  - RFRegion: spec names (US902, Australia915, China470, China779), RP002 common names (US915,
 *    AU915, CN470, CN779, AS923-2 ...) and RP002 band names (US902-928, AS923-1 ...) are
 *    accepted case-insensitively with '-' and '_' interchangeable.
 *  - Times: full RFC 3339 (optional fraction, 'Z' or +-hh:mm offset) in; UTC 'Z' out with three
 *    fraction digits (six or nine when the value carries sub-millisecond precision, so no value
 *    is lost).
 * All functions are pure: no global mutable state, thread-safe.
 */
#ifndef BI_TYPES_H
#define BI_TYPES_H

#include "rh_err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ProtocolVersion. BI_VERSION_UNKNOWN doubles as "keep the message's version" in dialects. */
typedef enum bi_version {
    BI_VERSION_UNKNOWN = 0,
    BI_VERSION_1_0 = 1, /* "1.0" */
    BI_VERSION_1_1 = 2, /* "1.1" */
} bi_version_t;

typedef enum bi_msg_type {
    BI_MT_UNKNOWN = 0,
    BI_MT_PR_START_REQ,
    BI_MT_PR_START_ANS,
    BI_MT_PR_STOP_REQ,
    BI_MT_PR_STOP_ANS,
    BI_MT_XMIT_DATA_REQ,
    BI_MT_XMIT_DATA_ANS,
    BI_MT_PROFILE_REQ,
    BI_MT_PROFILE_ANS,
    BI_MT_HOME_NS_REQ,
    BI_MT_HOME_NS_ANS,
    BI_MT_JOIN_REQ,
    BI_MT_JOIN_ANS,
    BI_MT_PR_START_NOTIF,
    BI_MT_ERROR_NOTIF,
    /* Known by name so they can be relayed; only their header is typed, the body passes as-is. */
    BI_MT_REJOIN_REQ,
    BI_MT_REJOIN_ANS,
    BI_MT_APP_SKEY_REQ,
    BI_MT_APP_SKEY_ANS,
    BI_MT_HR_START_REQ,
    BI_MT_HR_START_ANS,
    BI_MT_HR_STOP_REQ,
    BI_MT_HR_STOP_ANS,
    BI_MT_COUNT
} bi_msg_type_t;

typedef enum bi_result_code {
    BI_RC_SUCCESS = 0,
    BI_RC_MIC_FAILED,
    BI_RC_FRAME_REPLAYED, /* 1.1 */
    BI_RC_JOIN_REQ_FAILED,
    BI_RC_NO_ROAMING_AGREEMENT,
    BI_RC_DEV_ROAMING_DISALLOWED,
    BI_RC_ROAMING_ACT_DISALLOWED,
    BI_RC_ACTIVATION_DISALLOWED,
    BI_RC_UNKNOWN_DEV_EUI,
    BI_RC_UNKNOWN_DEV_ADDR,
    BI_RC_UNKNOWN_SENDER,
    BI_RC_UNKNOWN_RECEIVER, /* spec spelling "UnkownReceiver" */
    BI_RC_DEFERRED,
    BI_RC_XMIT_FAILED,
    BI_RC_INVALID_FPORT,
    BI_RC_INVALID_PROTOCOL_VERSION,
    BI_RC_STALE_DEVICE_PROFILE,
    BI_RC_MALFORMED_REQUEST, /* 1.0 */
    BI_RC_MALFORMED_MESSAGE, /* 1.1 */
    BI_RC_FRAME_SIZE_ERROR,
    BI_RC_NO_ACTION, /* 1.1 */
    BI_RC_OTHER,
    BI_RC_COUNT
} bi_result_code_t;

/* RFRegion, by RP002 common name. */
typedef enum bi_region {
    BI_REGION_UNKNOWN = 0,
    BI_REGION_EU868,
    BI_REGION_US915,
    BI_REGION_CN779,
    BI_REGION_EU433,
    BI_REGION_AU915,
    BI_REGION_CN470,
    BI_REGION_AS923, /* AS923-1 */
    BI_REGION_AS923_2,
    BI_REGION_AS923_3,
    BI_REGION_AS923_4,
    BI_REGION_KR920,
    BI_REGION_IN865,
    BI_REGION_RU864,
    BI_REGION_ISM2400,
    BI_REGION_COUNT
} bi_region_t;

/* How RFRegion is written on output. */
typedef enum bi_region_names {
    BI_REGION_NAMES_RP002 = 0, /* "US915", "AU915", "AS923-2" (ChirpStack, Helium) */
    BI_REGION_NAMES_SPEC = 1,  /* TS002 1.0 names "US902", "Australia915", "China470", "China779";
                                  RP002 names for regions the spec does not list */
} bi_region_names_t;

/* "1.0" / "1.1" / NULL for BI_VERSION_UNKNOWN. */
const char *bi_version_name(bi_version_t v);
/* Exact "1.0" or "1.1" (len bytes of s); BI_VERSION_UNKNOWN otherwise. */
bi_version_t bi_version_parse(const char *s, size_t len);

/* "PRStartReq" ...; NULL for BI_MT_UNKNOWN or out of range. */
const char *bi_msg_type_name(bi_msg_type_t t);
/* Exact, case-sensitive MessageType name; BI_MT_UNKNOWN when not known. */
bi_msg_type_t bi_msg_type_parse(const char *s);
bool bi_msg_type_is_request(bi_msg_type_t t);
bool bi_msg_type_is_answer(bi_msg_type_t t);
/* The answer type of a request type (PRStartReq -> PRStartAns); BI_MT_UNKNOWN when t is not a
 * request (answers, notifications, unknown). */
bi_msg_type_t bi_msg_type_answer_for(bi_msg_type_t t);

/* Output spelling of a ResultCode for protocol version v (BI_VERSION_UNKNOWN = 1.0):
 * MalformedRequest/MalformedMessage follow v; BI_RC_UNKNOWN_RECEIVER is the spec's
 * "UnkownReceiver" unless correct_spelling. NULL when rc is out of range. */
const char *bi_result_code_name(bi_result_code_t rc, bi_version_t v, bool correct_spelling);
/* Lenient parse (see file header). Never fails: unknown strings give BI_RC_OTHER. If `exact` is
 * non-NULL it is set to true when s is the canonical spelling of one of the names above. */
bi_result_code_t bi_result_code_parse(const char *s, bool *exact);
/* MalformedRequest or MalformedMessage, whichever version v uses (UNKNOWN = 1.0). */
bi_result_code_t bi_result_code_malformed(bi_version_t v);

/* Name of a region in the given naming; NULL for BI_REGION_UNKNOWN or out of range. */
const char *bi_region_name(bi_region_t r, bi_region_names_t names);
/* Lenient parse (see file header); BI_REGION_UNKNOWN when not recognised. */
bi_region_t bi_region_parse(const char *s);

/* A point in time: seconds since the Unix epoch (UTC) and nanoseconds 0..999999999. */
typedef struct bi_time {
    int64_t sec;
    uint32_t nsec;
} bi_time_t;

/* Parses RFC 3339 "YYYY-MM-DDTHH:MM:SS[.fraction](Z|+hh:mm|-hh:mm)" ('t', 'z' and a space for
 * 'T' accepted; fraction digits beyond 9 ignored; second 60 accepted as a leap second).
 * Errors: RH_EINVAL with a diagnostic naming `what` (e.g. "ULMetaData.RecvTime"). */
int bi_time_parse(const char *s, bi_time_t *t, const char *what, rh_diag_t *diag);
/* Formats t as RFC 3339 UTC "YYYY-MM-DDTHH:MM:SS.mmmZ" (6 or 9 fraction digits when needed to
 * keep the value). out must hold BI_TIME_MAX bytes. Returns the length. Years outside
 * 0000..9999 are clamped. */
#define BI_TIME_MAX 32
size_t bi_time_format(bi_time_t t, char out[BI_TIME_MAX]);
/* True when s (NUL-terminated), a text bi_time_parse accepted, is already what bi_time_format
 * writes for its value: "YYYY-MM-DDTHH:MM:SS.mmmZ" exactly (upper-case 'T' and 'Z', three fraction
 * digits, no leap second). False says nothing: compare with bi_time_format's text. */
bool bi_time_text_canonical(const char *s);

#endif
