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

/* True when `k` (n bytes, as written) names an integer-typed TS002 field (TransactionID, FPort,
 * RSSI ...): a number written 12.0 or 1e1 under it sets BI_CANON_INT_AS_FLOAT. */
bool bi_is_int_key(const char *k, size_t n);

/* Fills err (may be NULL) with code/err/description; returns errcode. */
int bi_fail(bi_error_t *err, bi_result_code_t code, int errcode, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* ------------------------------------------------------------------ shared with bi_fast.c */

/* Where a top-level header value stands in received bytes (offset, length; len 0: not seen):
 * the TransactionID number, the SenderID / ReceiverID strings with their quotes. */
typedef struct bi_span {
    size_t off, len;
} bi_span_t;
/* A typed hex field's digits in received bytes (offset, length). */
typedef struct bi_hex_span {
    uint32_t off, len;
} bi_hex_span_t;
#define BI_HEX_SPANS 48

typedef struct bi_hdr_spans {
    bi_span_t txid, sender, receiver;
} bi_hdr_spans_t;
/* One member of a ULMetaData.GWInfo element: "Key":value from key_off to end (exclusive). */
typedef struct bi_gw_member {
    uint32_t elem;    /* element index */
    uint32_t key_off; /* the key's opening quote */
    uint32_t end;     /* just after the value */
    int8_t field;     /* index in the GWInfo field table, -1 unknown */
    bool dropped;
} bi_gw_member_t;

/* The message (bi_msg.h). Invariant: once root exists it is the truth and f is derived from it
 * (build) and kept in step by every mutation; m->canon describes the bytes received (for
 * bi_msg_is_canonical_for); m->tree the spelling now in the tree (what encoding must rewrite).
 * A message from bi_fast_decode starts without root: f was filled from the bytes in m->text by
 * the same leaf decoders, and bi_msg_tree parses the tree (and rebuilds f from it) when a
 * mutation or encoding needs it. */
struct bi_msg {
    cJSON *root;
    bi_fields_t f;
    uint32_t canon; /* BI_CANON_* of the received bytes */
    uint32_t tree;  /* BI_CANON_* of the spelling now in the tree */
    bool dirty;     /* a value changed since decoding */
    bool valid;     /* typed view matches the tree */
    char *text;     /* bi_fast_decode: the received bytes (text_len + NUL), then a copy holding the
                       view's strings, NUL-terminated in place; root is parsed from it on first
                       need (bi_msg_tree). NULL for messages decoded by bi_msg_decode. Lives
                       in the same allocation, right after the bi_msg_t (BI_MSG_TEXT_INLINE):
                       never freed on its own. */
    size_t text_len;
#define BI_MSG_TEXT_INLINE(m) ((char *)((m) + 1))
    bi_hdr_spans_t spans; /* bi_fast_decode: where the header values stand in the body */
    size_t spans_body_len; /* the body's length when spans is set, else 0 */
    /* bi_fast_decode: every member of every ULMetaData.GWInfo element as it stands in the body,
     * so bi_msg_strip_gwinfo can drop members from the bytes without a tree. */
    bi_gw_member_t *gwm;
    size_t gwm_n;
    bi_span_t *gwobj; /* element objects ('{' .. '}'), ul.gw_count of them */
    bool raw_strip;   /* members were dropped from the bytes (gwm[].dropped): not canonical,
                         bi_msg_splice_header writes the elements without them, bi_msg_tree drops
                         them from the tree */
    uint32_t hex_n;   /* bi_fast_decode: typed hex fields seen (hex[] holds BI_HEX_SPANS) */
    uint8_t phy[BI_MAX_PHY];
    /* bi_fast_decode: gwm and gwobj start here and move to the heap past these sizes (one
     * GWInfo element of up to 16 members and 4 elements need no allocation). Not zeroed. */
    bi_gw_member_t gwm_small[16];
    bi_span_t gwobj_small[4];
    /* bi_fast_decode: every typed hex field's digits as they stand in the body, in body order
     * (noted by bi_leaf.h's hex_field, which sets the case flags), so bi_msg_splice_header can
     * respell their case in the bytes; hex_n > BI_HEX_SPANS: more than recorded (no respelling
     * in the bytes). Not zeroed. */
    bi_hex_span_t hex[BI_HEX_SPANS];
};

/* The field tables of the typed pass (bi_msg.c): one entry per known member of an object. */
enum ftype {
    FT_VERSION, /* ProtocolVersion -> bi_version_t */
    FT_MSGTYPE, /* MessageType -> bi_msg_type_t */
    FT_ID,      /* hex NetID (3) or EUI-64 (8) -> bi_id_t */
    FT_EUI,     /* hex 8 bytes -> uint64_t */
    FT_NSID,    /* hex 8 bytes -> uint64_t, a 1.1 NSID field (dropped for 1.0) */
    FT_NETID,   /* hex 3 bytes -> uint32_t */
    FT_DEVADDR, /* hex 4 bytes -> uint32_t */
    FT_GWID,    /* hex 4 or 8 bytes -> bi_gwinfo_t.id/.id_len */
    FT_PHY,     /* hex 1..255 bytes -> m->phy */
    FT_FRM,     /* hex 0..255 bytes, validated only */
    FT_HEX64,   /* hex 0..64 bytes, validated only (SessionKeyID) */
    FT_HEXU8,   /* hex 1 byte -> uint8_t */
    FT_HEX16,   /* hex 16 bytes -> uint8_t[16] */
    FT_AESKEY,  /* hex 1..40 bytes -> bi_key_envelope_t.aes_key/len */
    FT_TOKEN,   /* opaque string -> const char * */
    FT_STR,     /* string -> const char * */
    FT_CLASS,   /* "A" / "B" / "C" -> char */
    FT_RCODE,   /* ResultCode -> bi_fields_t.result_code/.result_code_text */
    FT_U32,     /* integer min..max -> uint32_t */
    FT_U8,      /* integer min..max -> uint8_t */
    FT_I32,     /* integer min..max -> int32_t */
    FT_U64,     /* integer min..max -> uint64_t */
    FT_DOUBLE,  /* number min..max -> double */
    FT_BOOL,    /* true/false -> bool */
    FT_REGION,  /* RFRegion -> bi_region_t */
    FT_TIME,    /* RFC 3339 -> bi_time_t */
    FT_OBJECT,  /* opaque object -> const cJSON * */
    FT_RESULT,  /* Result object */
    FT_UL,      /* ULMetaData object */
    FT_DL,      /* DLMetaData object */
    FT_KEYENV,  /* KeyEnvelope object -> bi_key_envelope_t */
    FT_GWARRAY, /* GWInfo array -> bi_gwinfo_t *, size_t count right after */
};

/* Where a field's presence bit goes. */
enum fwhere { W_NONE, W_HDR, W_TOP, W_NESTED };

typedef struct fdesc {
    const char *name;
    uint8_t type;
    uint8_t where;
    uint16_t off;
    uint64_t bit;
    double min, max;
} fdesc_t;

typedef struct bi_tab {
    const fdesc_t *f;
    size_t n;
} bi_tab_t;
extern const bi_tab_t bi_tab_top, bi_tab_result, bi_tab_ul, bi_tab_dl, bi_tab_gw, bi_tab_keyenv;

/* Index of `key` (NUL-terminated) in tab, or -1. */
int bi_find_field(const fdesc_t *tab, size_t n, const char *key);

/* Decode context of the typed pass: the first error wins (rc), err NULL = do not describe. */
typedef struct path {
    const struct path *up;
    const char *key; /* NULL for an array element */
    int idx;
} path_t;

typedef struct dctx {
    bi_msg_t *m;
    bi_error_t *err;
    int rc;         /* first error (RH_OK while none) */
    bool from_tree; /* bi_msg_from_json: the byte scan did not run */
} dctx_t;

/* Records the first error of a decode in c (later ones are ignored): c->rc = e and, when c->err
 * is set, its code and a description "<path>: <printf fmt>" (path "body" when p is NULL).
 * Returns c->rc (e, or the earlier error). */
int bi_fail_at(dctx_t *c, const path_t *p, bi_result_code_t code, int e, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* One member value as the leaf decoders read it: a tree node's (bi_msg.c's val_of) or, in
 * bi_fast.c, straight from the bytes. type: the cJSON type (cJSON_String, cJSON_Number, cJSON_True
 * ...; 0 for a string node without a valuestring); s: a string's NUL-terminated bytes, len of them
 * (strings with "\u0000" end at it, as cJSON's do); d: a number's value; node: the tree node, which
 * container types (objects, arrays) walk — NULL from bi_fast.c, which reads containers itself. */
typedef struct bi_val {
    int type;
    const char *s;
    size_t len;
    double d;
    const cJSON *node;
} bi_val_t;

/* Decodes one member value v of descriptor fd into base (+ fd->off) and m->f / m->canon, with
 * the field's type, range and size checks. Leaf types read v's type, s/len and d; container
 * types walk v->node's children (v->node must be set for them). Returns RH_OK or the first
 * error (recorded in c). */
int bi_decode_value(dctx_t *c, const fdesc_t *fd, const bi_val_t *v, void *base, const path_t *p);

/* The per-MessageType mandatory fields of a filled view (bi_msg_decode's list). */
int bi_validate(dctx_t *c);

/* Parses m->root from m->text when the message came from bi_fast_decode and has no tree yet,
 * and rebuilds the typed view from it (same values — the fuzz target fuzz_bi_fast checks it —
 * but pointers into the tree, as after bi_msg_decode; earlier view pointers become invalid).
 * RH_OK, or RH_ENOMEM (the message is unchanged). */
int bi_msg_tree(bi_msg_t *m);

#endif
