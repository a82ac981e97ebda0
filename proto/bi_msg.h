/*
 * bi_msg.h — LoRaWAN Backend Interfaces (TS002 1.0 §11-12, §16-22; TS002-1.1.0) JSON messages
 * for passive roaming: decode + validate, typed read access, the mutations a relay makes, the
 * answer builder, and encoding for a receiver's dialect.
 *
 * Representation (docs/ARCHITECTURE.md, "TS002 JSON codec" > "Representation"): a decoded
 * message keeps the cJSON tree of the body, which carries every field — known, unknown and
 * opaque (tokens, VSExtension, ServiceProfile ...) — plus a typed view (bi_fields_t) of the known
 * fields, filled in one pass during validation.
 * Re-encoding prints the tree after rewriting only what the dialect spells differently (hex
 * case and "0x", RFRegion names, RecvTime format, ResultCode spelling, ProtocolVersion, NSID
 * fields), so a relay never loses a field it does not understand. Opaque tokens (SenderToken,
 * ReceiverToken, FNSULToken, GWInfo[].ULToken) and VSExtension are never rewritten.
 *
 * Invariants after a successful decode:
 *  - the body was at most BI_MAX_BODY bytes of valid UTF-8 JSON, one object at the top, nesting
 *    at most BI_MAX_DEPTH, no array longer than BI_MAX_ARRAY (GWInfo <= BI_MAX_GWINFO), no
 *    object with more than BI_MAX_MEMBERS members, no string longer than BI_MAX_STRING bytes,
 *    no duplicate key in any object, no "\u0000" escape, every number finite — all checked by a
 *    scan of the raw bytes BEFORE cJSON allocates anything;
 *  - every known field has its type and range (integers may be written 12.0), hex fields their
 *    byte lengths, and each message type its mandatory fields (see bi_msg_decode).
 *
 * Memory: a bi_msg_t owns its tree and typed view; pointers in bi_fields_t (strings, GWInfo
 * arrays, cJSON nodes) stay valid until the next mutating call on the message or bi_msg_free.
 * The codec never keeps the caller's body buffer. Encoded buffers from bi_msg_encode are freed
 * with bi_buf_free.
 * Threads: a bi_msg_t is used by one thread at a time; the codec has no global mutable state
 * and never calls cJSON_InitHooks.
 */
#ifndef BI_MSG_H
#define BI_MSG_H

#include "bi_types.h"
#include "rh_err.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Limits (all checked before allocation grows). */
#define BI_MAX_BODY (64 * 1024) /* bytes of JSON body */
#define BI_MAX_DEPTH 32         /* nested objects/arrays */
#define BI_MAX_ARRAY 256        /* elements of any array */
#define BI_MAX_GWINFO 256       /* ULMetaData/DLMetaData GWInfo elements */
#define BI_MAX_MEMBERS 128      /* members of any object */
#define BI_MAX_STRING 4096      /* bytes of any string or key as written (escapes included) */
#define BI_MAX_PHY 255          /* PHYPayload bytes (LoRaWAN maximum); larger: FrameSizeError */

typedef struct bi_msg bi_msg_t;

/* SenderID / ReceiverID: a NetID (3 bytes, 24-bit value) or an EUI-64 (8 bytes: JoinEUI of a JS). */
typedef enum bi_id_kind { BI_ID_NONE = 0, BI_ID_NETID = 3, BI_ID_EUI64 = 8 } bi_id_kind_t;
typedef struct bi_id {
    bi_id_kind_t kind;
    uint64_t value; /* display (big-endian) value: NetID 0x000505, EUI 0x0102030405060708 */
} bi_id_t;

/* bi_header_t.present bits. */
#define BI_H_VERSION (1u << 0)
#define BI_H_SENDER_ID (1u << 1)
#define BI_H_RECEIVER_ID (1u << 2)
#define BI_H_TRANSACTION_ID (1u << 3)
#define BI_H_MESSAGE_TYPE (1u << 4)
#define BI_H_SENDER_NSID (1u << 5)
#define BI_H_RECEIVER_NSID (1u << 6)

/* The header fields needed to address an answer. */
typedef struct bi_header {
    uint32_t present; /* BI_H_* */
    bi_version_t version;
    bi_msg_type_t type;
    bi_id_t sender_id, receiver_id;
    uint32_t transaction_id;
    uint64_t sender_nsid, receiver_nsid; /* EUI-64, TS002-1.1 */
} bi_header_t;

/* Why a body was refused: the ResultCode to answer with, one sentence naming the field
 * ("ULMetaData.GWInfo[0].RSSI: expected integer"), and whatever header fields could be read. */
typedef struct bi_error {
    bi_result_code_t code; /* MalformedRequest (1.0 or unknown version) / MalformedMessage (1.1),
                              FrameSizeError, InvalidProtocolVersion; BI_RC_SUCCESS if no error */
    int err;               /* RH_EINVAL, RH_ERANGE, RH_ESIZE, RH_EVERSION, RH_EEXIST, RH_ENOMEM */
    char description[256];
    bi_header_t hdr;
} bi_error_t;

/* GWInfo element (TS002 1.0 Table 21). */
#define BI_GW_ID (1u << 0)
#define BI_GW_FINE_RECV_TIME (1u << 1)
#define BI_GW_RF_REGION (1u << 2)
#define BI_GW_RSSI (1u << 3)
#define BI_GW_SNR (1u << 4)
#define BI_GW_LAT (1u << 5)
#define BI_GW_LON (1u << 6)
#define BI_GW_UL_TOKEN (1u << 7)
#define BI_GW_DL_ALLOWED (1u << 8)
typedef struct bi_gwinfo {
    uint32_t present;       /* BI_GW_* */
    uint8_t id_len;         /* 4 (ChirpStack: last 4 bytes of the EUI) or 8 (Helium) */
    uint64_t id;            /* big-endian display value */
    uint64_t fine_recv_time; /* ns (within RecvTime), 0 .. 999999999999999 */
    bi_region_t rf_region;  /* BI_REGION_UNKNOWN when the name is not recognised (kept verbatim) */
    int32_t rssi;           /* dBm */
    double snr;             /* dB */
    double lat, lon;        /* degrees */
    const char *ul_token;   /* opaque, exactly as received */
    bool dl_allowed;
} bi_gwinfo_t;

/* ULMetaData (Table 20). */
#define BI_UL_DEV_EUI (1u << 0)
#define BI_UL_DEV_ADDR (1u << 1)
#define BI_UL_FPORT (1u << 2)
#define BI_UL_FCNT_UP (1u << 3)
#define BI_UL_FCNT_DOWN (1u << 4)
#define BI_UL_CONFIRMED (1u << 5)
#define BI_UL_DATA_RATE (1u << 6)
#define BI_UL_UL_FREQ (1u << 7)
#define BI_UL_MARGIN (1u << 8)
#define BI_UL_BATTERY (1u << 9)
#define BI_UL_FNS_UL_TOKEN (1u << 10)
#define BI_UL_RECV_TIME (1u << 11)
#define BI_UL_RF_REGION (1u << 12)
#define BI_UL_GW_CNT (1u << 13)
#define BI_UL_GW_INFO (1u << 14)
typedef struct bi_ulmeta {
    uint32_t present; /* BI_UL_* */
    uint64_t dev_eui;
    uint32_t dev_addr; /* host-order, display 8 hex digits */
    uint32_t fport, fcnt_up, fcnt_down;
    bool confirmed;
    uint32_t data_rate; /* DR index 0..15 */
    double ul_freq;     /* MHz */
    int32_t margin;
    uint32_t battery;
    const char *fns_ul_token; /* opaque */
    bi_time_t recv_time;
    bi_region_t rf_region;
    uint32_t gw_cnt;
    bi_gwinfo_t *gw; /* gw_count elements (GWInfo array) */
    size_t gw_count;
} bi_ulmeta_t;

/* DLMetaData (Table 22). */
#define BI_DL_DEV_EUI (1u << 0)
#define BI_DL_FPORT (1u << 1)
#define BI_DL_FCNT_DOWN (1u << 2)
#define BI_DL_CONFIRMED (1u << 3)
#define BI_DL_DL_FREQ1 (1u << 4)
#define BI_DL_DL_FREQ2 (1u << 5)
#define BI_DL_RX_DELAY1 (1u << 6)
#define BI_DL_CLASS_MODE (1u << 7)
#define BI_DL_DATA_RATE1 (1u << 8)
#define BI_DL_DATA_RATE2 (1u << 9)
#define BI_DL_FNS_UL_TOKEN (1u << 10)
#define BI_DL_GW_INFO (1u << 11)
#define BI_DL_HI_PRIORITY (1u << 12)
typedef struct bi_dlmeta {
    uint32_t present; /* BI_DL_* */
    uint64_t dev_eui;
    uint32_t fport, fcnt_down;
    bool confirmed;
    double dl_freq1, dl_freq2; /* MHz */
    uint32_t rx_delay1;        /* s, 0..15 */
    char class_mode;           /* 'A', 'B' or 'C' */
    uint32_t data_rate1, data_rate2;
    const char *fns_ul_token; /* opaque */
    bi_gwinfo_t *gw;
    size_t gw_count;
    bool hi_priority;
} bi_dlmeta_t;

/* KeyEnvelope (Tables 11/16): kek_label NULL when absent, "" when empty (key in clear). */
typedef struct bi_key_envelope {
    const char *kek_label;
    uint8_t aes_key[24]; /* 16 bytes in clear, 24 RFC 3394-wrapped */
    uint8_t aes_key_len;
} bi_key_envelope_t;

/* bi_fields_t.present bits (top-level fields other than the header of bi_header_t). */
#define BI_F_SENDER_TOKEN (1ull << 0)
#define BI_F_RECEIVER_TOKEN (1ull << 1)
#define BI_F_VS_EXTENSION (1ull << 2)
#define BI_F_RESULT (1ull << 3)
#define BI_F_RESULT_DESCRIPTION (1ull << 4)
#define BI_F_PHY_PAYLOAD (1ull << 5)
#define BI_F_FRM_PAYLOAD (1ull << 6)
#define BI_F_UL_META (1ull << 7)
#define BI_F_DL_META (1ull << 8)
#define BI_F_LIFETIME (1ull << 9)
#define BI_F_DEV_EUI (1ull << 10)
#define BI_F_DEV_ADDR (1ull << 11)
#define BI_F_FCNT_UP (1ull << 12)
#define BI_F_NWK_S_KEY (1ull << 13)
#define BI_F_F_NWK_S_INT_KEY (1ull << 14)
#define BI_F_S_NWK_S_INT_KEY (1ull << 15)
#define BI_F_NWK_S_ENC_KEY (1ull << 16)
#define BI_F_APP_S_KEY (1ull << 17)
#define BI_F_SESSION_KEY_ID (1ull << 18)
#define BI_F_HNETID (1ull << 19)
#define BI_F_HNSID (1ull << 20)
#define BI_F_SERVICE_PROFILE (1ull << 21)
#define BI_F_DEVICE_PROFILE (1ull << 22)
#define BI_F_DEVICE_PROFILE_TS (1ull << 23)
#define BI_F_ROAMING_ACT_TYPE (1ull << 24)
#define BI_F_DL_FREQ1 (1ull << 25)
#define BI_F_DL_FREQ2 (1ull << 26)
#define BI_F_MAC_VERSION (1ull << 27)
#define BI_F_DL_SETTINGS (1ull << 28)
#define BI_F_RX_DELAY (1ull << 29)
#define BI_F_CF_LIST (1ull << 30)

/* The typed view of a message. Absent optional fields have their bit clear and zero values;
 * a missing Lifetime reads as 0 (stateless) with BI_F_LIFETIME clear. */
typedef struct bi_fields {
    bi_header_t hdr;
    uint64_t present; /* BI_F_* */
    const char *sender_token, *receiver_token; /* opaque, exactly as received */
    const cJSON *vs_extension;                 /* opaque object */
    bi_result_code_t result_code;              /* BI_RC_OTHER for unknown strings */
    const char *result_code_text;              /* the ResultCode string as received */
    const char *result_description;
    const uint8_t *phy_payload; /* decoded bytes */
    size_t phy_payload_len;
    bi_ulmeta_t ul;
    bi_dlmeta_t dl;
    uint32_t lifetime; /* s */
    uint64_t dev_eui;
    uint32_t dev_addr;
    uint32_t fcnt_up;
    bi_key_envelope_t nwk_s_key, f_nwk_s_int_key, s_nwk_s_int_key, nwk_s_enc_key, app_s_key;
    uint32_t hnetid;
    uint64_t hnsid;
    const cJSON *service_profile, *device_profile; /* opaque objects */
    const char *device_profile_timestamp, *roaming_activation_type, *mac_version;
    double dl_freq1, dl_freq2; /* XmitDataAns, MHz */
    uint8_t dl_settings, rx_delay;
    uint8_t cf_list[16];
} bi_fields_t;

/* Output dialect of a receiving peer. */
typedef enum bi_hex_case { BI_HEX_LOWER = 0, BI_HEX_UPPER = 1 } bi_hex_case_t;
typedef struct bi_dialect {
    bi_version_t version;           /* ProtocolVersion to emit; BI_VERSION_UNKNOWN keeps the message's.
                                       1.0 drops SenderNSID/ReceiverNSID/HNSID, 1.1 keeps them;
                                       Malformed* is spelt per version */
    bi_hex_case_t hex_case;         /* case of hex digits in typed hex fields (never "0x") */
    bi_region_names_t region_names; /* RFRegion spelling (unrecognised names are kept as received) */
    bool unknown_receiver_correct;  /* emit "UnknownReceiver" instead of the spec's "UnkownReceiver"
                                       (default false: every implementation seen accepts the spec's) */
    bool strict_enums;              /* the receiver rejects a whole message whose ResultCode is not
                                       in TS002 1.0 Table 24 (ChirpStack's closed enum): 1.1-only
                                       codes (FrameReplayed, NoAction) and unrecognised strings
                                       are sent as Other, MalformedMessage as MalformedRequest,
                                       with "ResultCode <original>: " prefixed to Description
                                       (issue #11 item 6). Region names follow region_names. */
} bi_dialect_t;

/* Dialects of the implementations in the reference notes. */
/* ChirpStack as the receiver of an answer: its ResultCode enum is closed (strict_enums). */
#define BI_DIALECT_CHIRPSTACK_STRICT ((bi_dialect_t){BI_VERSION_1_0, BI_HEX_LOWER, BI_REGION_NAMES_RP002, false, true})
#define BI_DIALECT_CHIRPSTACK ((bi_dialect_t){BI_VERSION_1_0, BI_HEX_LOWER, BI_REGION_NAMES_RP002, false, false})
#define BI_DIALECT_HELIUM ((bi_dialect_t){BI_VERSION_1_0, BI_HEX_UPPER, BI_REGION_NAMES_RP002, false, false})
#define BI_DIALECT_TTS_1_1 ((bi_dialect_t){BI_VERSION_1_1, BI_HEX_UPPER, BI_REGION_NAMES_RP002, false, false})

/* ------------------------------------------------------------------ decode */

/* Decodes and validates a TS002 JSON body of `len` bytes (need not be NUL-terminated).
 * On success *out is a new message (free with bi_msg_free) and returns RH_OK.
 * On failure *out is NULL, returns a negative RH_E* code, and fills `err` (may be NULL) with the
 * ResultCode to answer, a description naming the field, and the header fields that could be read:
 *  - MalformedRequest/MalformedMessage: not JSON, bad UTF-8, limits exceeded (RH_ERANGE),
 *    duplicate key (RH_EEXIST), wrong type, bad hex, out-of-range number, missing mandatory
 *    field, unknown MessageType (RH_EINVAL);
 *  - InvalidProtocolVersion (RH_EVERSION): ProtocolVersion other than "1.0"/"1.1";
 *  - FrameSizeError (RH_ESIZE): PHYPayload empty or longer than BI_MAX_PHY bytes;
 *  - RH_ENOMEM (code Other).
 * Mandatory fields: the header (ProtocolVersion, SenderID, ReceiverID, TransactionID,
 * MessageType), Result.ResultCode in every *Ans; PRStartReq: PHYPayload, ULMetaData;
 * XmitDataReq: one of PHYPayload/FRMPayload and exactly one of ULMetaData/DLMetaData;
 * PRStopReq/ProfileReq/HomeNSReq: DevEUI; HomeNSAns with Success: HNetID; JoinReq: MACVersion,
 * PHYPayload, DevEUI, DevAddr, DLSettings, RxDelay; DLMetaData: DLFreq1 or DLFreq2.
 * A JSON null counts as an absent field (and is kept in the tree). */
int bi_msg_decode(const char *body, size_t len, bi_msg_t **out, bi_error_t *err);

/* Same validation on a tree built by the caller (e.g. a network server composing a message);
 * takes ownership of `root` in every case. The limits of the byte scan do not apply except
 * duplicate keys and the GWInfo length. Errors as bi_msg_decode. */
int bi_msg_from_json(cJSON *root, bi_msg_t **out, bi_error_t *err);

/* Frees the message and everything it owns. NULL is a no-op. */
void bi_msg_free(bi_msg_t *m);

/* ------------------------------------------------------------------ typed access */

/* The typed view (never NULL for a valid m). */
const bi_fields_t *bi_msg_fields(const bi_msg_t *m);
static inline const bi_header_t *bi_msg_header(const bi_msg_t *m) { return &bi_msg_fields(m)->hdr; }
static inline bi_msg_type_t bi_msg_type(const bi_msg_t *m) { return bi_msg_fields(m)->hdr.type; }
static inline uint32_t bi_msg_transaction_id(const bi_msg_t *m)
{
    return bi_msg_fields(m)->hdr.transaction_id;
}
/* PHYPayload bytes (NULL, 0 when absent). */
static inline const uint8_t *bi_msg_phy_payload(const bi_msg_t *m, size_t *len)
{
    *len = bi_msg_fields(m)->phy_payload_len;
    return bi_msg_fields(m)->phy_payload;
}

/* The tree that carries the message (read-only use; to edit, see bi_msg_json_mut). For a message
 * from bi_fast_decode (bi_fast.h) the first call parses it and rebuilds the typed view from it
 * (same values; view pointers taken before become invalid); NULL if that runs out of memory. */
const cJSON *bi_msg_json(const bi_msg_t *m);

/* ------------------------------------------------------------------ mutations */

/* What bi_msg_strip_gwinfo removes from every ULMetaData.GWInfo element. */
#define BI_STRIP_SIGNAL 1u   /* RSSI, SNR */
#define BI_STRIP_LOCATION 2u /* Lat, Lon, FineRecvTime */
/* Removes the selected GWInfo fields of ULMetaData (tree and typed view). The message counts as
 * mutated only if something was removed. Returns the number of fields removed (>= 0).
 * A message from bi_fast_decode (bi_fast.h) that has no tree yet loses them from its received
 * bytes instead: bi_msg_splice_header then writes those GWInfo elements without them, and a
 * tree parsed later (bi_msg_encode ...) lacks them too. */
int bi_msg_strip_gwinfo(bi_msg_t *m, unsigned what);

/* Header setters (tree and typed view). Errors: RH_EINVAL (unknown version, kind not NETID or
 * EUI64 or value too wide, unknown type, code out of range), RH_ENOMEM. */
int bi_msg_set_version(bi_msg_t *m, bi_version_t v);
int bi_msg_set_sender_id(bi_msg_t *m, bi_id_t id);
int bi_msg_set_receiver_id(bi_msg_t *m, bi_id_t id);
int bi_msg_set_transaction_id(bi_msg_t *m, uint32_t txid);
/* present=false removes the field. */
int bi_msg_set_sender_nsid(bi_msg_t *m, bool present, uint64_t nsid);
int bi_msg_set_receiver_nsid(bi_msg_t *m, bool present, uint64_t nsid);
/* Sets Result {ResultCode, Description}; description NULL or "" omits Description. */
int bi_msg_set_result(bi_msg_t *m, bi_result_code_t code, const char *description);

/* Sets HNetID (HomeNSAns, TS002 1.0 §12.1.2) to the 24-bit NetID net_id, written as 6 hex
 * digits in the tree's current case (re-spelt for each receiver's dialect on encode). Tree and
 * typed view; the message counts as mutated. Errors: RH_EINVAL (net_id wider than 24 bits),
 * RH_ENOMEM. */
int bi_msg_set_hnet_id(bi_msg_t *m, uint32_t net_id);

/* Removes the downlink a message carries — PHYPayload and DLMetaData — e.g. a join-accept in a
 * PRStartAns that the forwarder's downlink policy refuses (the relay then sets the Result). Tree
 * and typed view; mutated only if something was removed. Returns the number of fields removed
 * (0..2), or a negative error from re-validating what is left (as bi_msg_refresh). */
int bi_msg_drop_downlink(bi_msg_t *m);

/* The tree for arbitrary edits (e.g. adding body fields to a message built with bi_msg_new).
 * Invalidates the typed view until bi_msg_refresh; the message counts as mutated. */
cJSON *bi_msg_json_mut(bi_msg_t *m);
/* Re-validates the tree and rebuilds the typed view. On error the message keeps the tree (the
 * typed view is undefined until a successful refresh). Errors as bi_msg_decode. */
int bi_msg_refresh(bi_msg_t *m, bi_error_t *err);

/* ------------------------------------------------------------------ building */

/* A new header-only message (no Result). Errors: RH_EINVAL (bad version/type/ids), RH_ENOMEM. */
int bi_msg_new(bi_msg_type_t type, bi_version_t version, bi_id_t sender, bi_id_t receiver,
               uint32_t txid, bi_msg_t **out);

/* Typed setters (bi_build.c) for front ends that translate another protocol into TS002 (the
 * Packet Broker bridge): they write PHYPayload (phy, 1..BI_MAX_PHY bytes, as hex; phy NULL
 * removes it) and the whole ULMetaData / DLMetaData object from the fields whose present bit is
 * set (DevEUI/DevAddr/GWInfo.ID as hex, frequencies in MHz rounded to 1 Hz, RecvTime RFC 3339
 * UTC, RFRegion in RP002 names, tokens verbatim; GWInfo elements from gw[0..gw_count)), replacing
 * what the message had, then re-validate the message once (bi_msg_refresh: a PRStartReq needs
 * both PHYPayload and ULMetaData, DLMetaData needs DLFreq1 or DLFreq2, ranges as on decode).
 * Strings are copied. Errors: RH_ESIZE (phy empty or longer than BI_MAX_PHY; nothing changed),
 * RH_ENOMEM, or bi_msg_refresh's error with err (may be NULL) naming the field — then the tree
 * holds the new values but the typed view is undefined: free the message. */
int bi_msg_set_uplink(bi_msg_t *m, const uint8_t *phy, size_t phy_len, const bi_ulmeta_t *ul,
                      bi_error_t *err);
int bi_msg_set_downlink(bi_msg_t *m, const uint8_t *phy, size_t phy_len,
                        const bi_dlmeta_t *dl, bi_error_t *err);

/* The answer to request `req`: ProtocolVersion of the request, SenderID/ReceiverID swapped, same
 * TransactionID, the matching *Ans type, Result {code, description (omitted when NULL or "")},
 * ReceiverToken = the request's SenderToken when it had one, and for 1.1 ReceiverNSID = the
 * request's SenderNSID. Errors: RH_EINVAL if req is not a request (answers and notifications
 * have no answer), RH_ENOMEM. */
int bi_answer_new(const bi_msg_t *req, bi_result_code_t code, const char *description,
                  bi_msg_t **out);

/* The answer to a request that failed to decode, from the header fields bi_msg_decode could read
 * (err->hdr), with err->code and err->description. Needs a known request MessageType, SenderID
 * and ReceiverID, TransactionID; a missing ProtocolVersion answers as 1.0.
 * Errors: RH_EINVAL when the answer cannot be addressed (reply with HTTP 400 instead), RH_ENOMEM. */
int bi_answer_from_error(const bi_error_t *err, bi_msg_t **out);

/* ------------------------------------------------------------------ encoding */

/* True when the bytes this message was decoded from already are what bi_msg_encode would
 * produce for dialect d, value for value (version, hex case and no "0x", region names, RecvTime
 * format, integers written as integers, ResultCode spelling, no NSID fields for 1.0), and no
 * mutation happened since. Then a relay forwards the received bytes unchanged. Always false for
 * messages built with bi_msg_new/bi_answer_new or from bi_msg_from_json. */
bool bi_msg_is_canonical_for(const bi_msg_t *m, const bi_dialect_t *d);

/* Encodes the message for dialect d (NULL = BI_DIALECT_CHIRPSTACK) as compact JSON into a new
 * NUL-terminated buffer *out of *len bytes (free with bi_buf_free). Rewrites the tree's spelling
 * in place (values never change; the typed view stays valid). Errors: RH_ENOMEM. */
int bi_msg_encode(bi_msg_t *m, const bi_dialect_t *d, char **out, size_t *len);
/* Same into a caller buffer of cap bytes (NUL-terminated on success). Errors: RH_ERANGE when the
 * text does not fit (cJSON needs a few spare bytes), RH_ENOMEM. */
int bi_msg_encode_to(bi_msg_t *m, const bi_dialect_t *d, char *buf, size_t cap, size_t *len);
/* Header edits a relay applies to a message it forwards (its own TransactionID, the ReceiverID
 * it decided, the IDs of an answer mapped back). set_* false: leave the field. */
typedef struct bi_header_edit {
    bool set_txid;
    uint32_t txid;
    bool set_sender;
    bi_id_t sender;
    bool set_receiver;
    bi_id_t receiver;
} bi_header_edit_t;

/* The bytes `raw` (raw_len, exactly the body m was decoded from) with the header edits `e`
 * written in place of the received TransactionID / SenderID / ReceiverID values — what
 * bi_msg_encode would produce after bi_msg_apply_header_edit, without re-encoding — when m is
 * canonical for d (bi_msg_is_canonical_for; d NULL = BI_DIALECT_CHIRPSTACK) and each edited
 * field was received at the top level. A message from bi_fast_decode that differs from d only in
 * the case of its typed hex fields' digits (no "0x"; at most 48 such fields) has them respelled
 * in d's case in the bytes (opaque strings such as ULToken are left as received). GWInfo members bi_msg_strip_gwinfo dropped from the
 * bytes of a message from bi_fast_decode are left out (their elements written as
 * {"Key":value,...} with the remaining members as received); that alone does not make m
 * non-canonical here. m is not changed. *out: NUL-terminated, free with
 * bi_buf_free; *len its length (len may be NULL). Errors: RH_EAGAIN (not possible: not
 * canonical, not decoded from bytes, a field missing or an ID kind not NETID/EUI64 — encode
 * instead), RH_ENOMEM. */
int bi_msg_splice_header(const bi_msg_t *m, const char *raw, size_t raw_len, const bi_dialect_t *d,
                         const bi_header_edit_t *e, char **out, size_t *len);

/* Applies the edits e through the header setters (only fields that differ; tree and typed
 * view). Errors as bi_msg_set_*; on error the fields before the failing one are set. */
int bi_msg_apply_header_edit(bi_msg_t *m, const bi_header_edit_t *e);

/* Frees a buffer from bi_msg_encode. NULL is a no-op. */
void bi_buf_free(char *buf);

#endif
