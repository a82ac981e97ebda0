/*
 * grpc_frame.h — the gRPC-over-HTTP/2 wire rules that do not depend on a connection: the
 * length-prefixed message framing of DATA, status codes, the percent-encoding of `grpc-message`
 * and the `grpc-timeout` header. Pure functions, no I/O, usable by the server (grpc_server.c), a
 * client (roamns's Packet Broker Agent mode) and the fuzz target alike.
 *
 * Source: gRPC "PROTOCOL-HTTP2.md" (Length-Prefixed-Message, Status, Timeout) and
 * "statuscodes.md" of github.com/grpc/grpc; shared/reference/packet-broker-api.md section 2 for
 * what The Things Stack's agent sends (uncompressed messages, up to 16 MiB).
 */
#ifndef RH_GRPC_FRAME_H
#define RH_GRPC_FRAME_H

#include "rh_err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* gRPC status codes (statuscodes.md), sent as the decimal `grpc-status` trailer. */
typedef enum grpc_status {
    GRPC_OK = 0,
    GRPC_CANCELLED = 1,
    GRPC_UNKNOWN = 2,
    GRPC_INVALID_ARGUMENT = 3,
    GRPC_DEADLINE_EXCEEDED = 4,
    GRPC_NOT_FOUND = 5,
    GRPC_ALREADY_EXISTS = 6,
    GRPC_PERMISSION_DENIED = 7,
    GRPC_RESOURCE_EXHAUSTED = 8,
    GRPC_FAILED_PRECONDITION = 9,
    GRPC_ABORTED = 10,
    GRPC_OUT_OF_RANGE = 11,
    GRPC_UNIMPLEMENTED = 12,
    GRPC_INTERNAL = 13,
    GRPC_UNAVAILABLE = 14,
    GRPC_DATA_LOSS = 15,
    GRPC_UNAUTHENTICATED = 16,
} grpc_status_t;

/* "OK", "CANCELLED", ..., "UNAUTHENTICATED"; "UNKNOWN" for a value outside 0..16. Static. */
const char *grpc_status_name(int status);

/* Size of the Length-Prefixed-Message header: 1 byte Compressed-Flag, 4 bytes big-endian length. */
#define GRPC_FRAME_HDR 5

/* Writes the 5-byte header of an uncompressed message of `len` bytes (len < 2^32) into hdr. */
void grpc_frame_header(uint8_t hdr[GRPC_FRAME_HDR], uint32_t len);

/*
 * Incremental reader of Length-Prefixed-Messages from a stream's DATA bytes, which arrive split
 * anywhere (inside the header too). Each complete message is handed to the callback; the
 * reader buffers at most one message, and never more than `max_msg` bytes of it.
 */
typedef int (*grpc_msg_fn)(void *arg, const uint8_t *msg, size_t len);

typedef struct grpc_deframer {
    size_t max_msg;             /* largest accepted message, bytes */
    grpc_msg_fn on_msg;
    void *arg;
    /* state (zeroed by grpc_deframer_init) */
    uint8_t hdr[GRPC_FRAME_HDR];
    size_t hdr_have;
    uint8_t *buf;               /* message being assembled (malloc'd, `want` bytes) */
    size_t want, have;
    unsigned messages;          /* complete messages handed over so far */
} grpc_deframer_t;

/* Prepares a reader; nothing allocated yet. */
void grpc_deframer_init(grpc_deframer_t *r, size_t max_msg, grpc_msg_fn on_msg, void *arg);

/*
 * Feeds n bytes. Returns GRPC_OK when every byte was consumed (any complete messages were handed
 * to on_msg, in order), or the gRPC status the stream must end with, diag saying why:
 *   GRPC_UNIMPLEMENTED     Compressed-Flag set (roamhub offers no grpc-encoding),
 *                          GRPC_INTERNAL for a flag other than 0/1 (malformed);
 *   GRPC_RESOURCE_EXHAUSTED message length above max_msg (nothing allocated for it);
 *   GRPC_INTERNAL          allocation failed;
 *   any non-zero value the callback returned (it is passed on; reading stops).
 * After an error the reader must only be finished.
 */
int grpc_deframer_feed(grpc_deframer_t *r, const uint8_t *p, size_t n, rh_diag_t *diag);

/* True when no partial message is buffered (a stream may only end cleanly then). */
bool grpc_deframer_idle(const grpc_deframer_t *r);

/* Frees the partial message, if any. */
void grpc_deframer_fini(grpc_deframer_t *r);

/*
 * Percent-encodes a status message for the `grpc-message` trailer: bytes outside 0x20..0x7E and
 * '%' become %XX (upper-case hex); the text is UTF-8 bytes as given. Writes at most cap - 1
 * characters and a NUL; a message that does not fit is cut at a character boundary of the
 * encoding (never inside %XX). Returns the encoded length. cap must be >= 1.
 */
size_t grpc_percent_encode(const char *msg, char *out, size_t cap);

/* Decodes a `grpc-message` value (the inverse; a malformed %XX is kept literally, as the spec
 * asks). Writes at most cap - 1 bytes and a NUL; returns the decoded length. cap >= 1. */
size_t grpc_percent_decode(const char *in, size_t len, char *out, size_t cap);

/*
 * Parses `grpc-timeout` (TimeoutValue of at most 8 ASCII digits, then a unit: H hours, M minutes,
 * S seconds, m milliseconds, u microseconds, n nanoseconds) into milliseconds, rounded up
 * (so 1n is 1 ms, never 0 = "no deadline"). Errors: RH_EINVAL with diag "grpc-timeout: ...".
 */
int grpc_timeout_parse(const char *v, size_t len, uint64_t *ms, rh_diag_t *diag);

#endif
