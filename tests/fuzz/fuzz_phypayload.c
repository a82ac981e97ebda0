/* fuzz_phypayload.c — libFuzzer target for the LoRaWAN PHYPayload codec (proto/lw_frame.h).
 * Properties checked on every input:
 *   - decode never crashes or reads out of bounds (ASan/UBSan builds);
 *   - a refused input always carries a diagnostic naming a field;
 *   - an accepted input re-encodes to exactly the same bytes, and the class is defined;
 *   - a join-accept-sized input also goes through the plaintext join-accept codec the same way. */
#include "lw_frame.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lw_frame_t f;
    rh_diag_t d;
    rh_diag_clear(&d);
    int rc = lw_frame_decode(data, size, &f, &d);
    if (rc != RH_OK) {
        if (d.text[0] == '\0' || strchr(d.text, ':') == NULL)
            abort(); /* every refusal names its field: "Field: reason" */
        return 0;
    }
    uint8_t out[LW_PHY_MAX];
    size_t len = 0;
    if (lw_frame_encode(&f, out, sizeof out, &len, &d) != RH_OK)
        abort();
    if (len != size || memcmp(out, data, size) != 0)
        abort();
    lw_class_t c = lw_frame_class(&f);
    if (c < LW_CLASS_UP_JOIN_REQUEST || c > LW_CLASS_PROPRIETARY)
        abort();
    if (f.mtype == LW_MTYPE_JOIN_ACCEPT && (data[0] & 0x1C) == 0) {
        /* treat the bytes as a decrypted join-accept: decode/encode must round-trip too */
        lw_join_accept_t ja;
        if (lw_join_accept_decode(data, size, &ja, &d) != RH_OK)
            abort();
        if (lw_join_accept_encode(&ja, out, sizeof out, &len, &d) != RH_OK || len != size ||
            memcmp(out, data, size) != 0)
            abort();
    }
    return 0;
}
