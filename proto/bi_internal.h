/*
 * bi_internal.h — private to proto/bi_*.c: the pre-parse byte scan and the representation
 * flags a decode records for bi_msg_is_canonical_for. Not installed, not for other modules.
 */
#ifndef BI_INTERNAL_H
#define BI_INTERNAL_H

#include "bi_msg.h"

#include <stdarg.h>

/* Representation features of the received bytes (bi_msg.canon). */
#define BI_CANON_HEX_PREFIX (1u << 0)        /* some typed hex field had "0x" */
#define BI_CANON_HEX_LOWER (1u << 1)         /* ... had a-f */
#define BI_CANON_HEX_UPPER (1u << 2)         /* ... had A-F */
#define BI_CANON_REGION_NOT_RP002 (1u << 3)  /* a recognised RFRegion not spelt as RP002 */
#define BI_CANON_REGION_NOT_SPEC (1u << 4)   /* a recognised RFRegion not spelt as the spec */
#define BI_CANON_TIME (1u << 5)              /* RecvTime not in bi_time_format form */
#define BI_CANON_INT_AS_FLOAT (1u << 6)      /* an integer field written 12.0 / 1e1 */
#define BI_CANON_RC_ALIAS (1u << 7)          /* ResultCode not in a canonical spelling */
#define BI_CANON_RC_UNKOWN (1u << 8)         /* "UnkownReceiver" */
#define BI_CANON_RC_UNKNOWN (1u << 9)        /* "UnknownReceiver" */
#define BI_CANON_RC_MALFORMED_REQ (1u << 10) /* "MalformedRequest" */
#define BI_CANON_RC_MALFORMED_MSG (1u << 11) /* "MalformedMessage" */
#define BI_CANON_NSID (1u << 12)             /* SenderNSID/ReceiverNSID/HNSID present */
#define BI_CANON_NOT_RECEIVED (1u << 13)     /* not decoded from bytes */

/* Scans the raw body before cJSON sees it: size, UTF-8, NUL bytes and control characters in
 * strings, "\u0000", nesting depth, array and object sizes, string and number lengths, and
 * integer fields written as non-integers (sets BI_CANON_INT_AS_FLOAT in *canon). Does not
 * check the JSON grammar (cJSON does). Returns RH_OK or fills err and returns RH_E*. */
int bi_scan(const char *p, size_t n, uint32_t *canon, bi_error_t *err);

/* Fills err (may be NULL) with code/err/description; returns errcode. */
int bi_fail(bi_error_t *err, bi_result_code_t code, int errcode, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
