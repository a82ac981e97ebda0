/*
 * fuzz_gwmp.c — libFuzzer target for roamns's gateway input (Semtech UDP protocol, GWMP v2):
 * a datagram is parsed as a gateway would send it; PUSH_DATA JSON goes through the rxpk parser,
 * PULL_RESP/TX_ACK JSON through the txpk and TX_ACK parsers. Every refusal must carry a
 * diagnostic; every accepted rxpk must hold a PHYPayload within its declared bounds.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gwmp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gwmp_pkt_t p;
    rh_diag_t d = {{0}};
    if (gwmp_parse(data, size, &p, &d) != RH_OK) {
        if (!d.text[0])
            abort(); /* a refusal without a reason */
        return 0;
    }
    if (!p.json)
        return 0;
    if (p.ident == GWMP_PUSH_DATA) {
        static gwmp_rxpk_t rx[GWMP_MAX_RXPK];
        size_t n = 0, skipped = 0;
        bool has_loc = false;
        double lat = 0, lon = 0;
        rh_diag_clear(&d);
        if (gwmp_push_parse(p.json, p.json_len, rx, GWMP_MAX_RXPK, &n, &skipped, &has_loc, &lat,
                            &lon, &d) == RH_OK) {
            if (n > GWMP_MAX_RXPK)
                abort();
            for (size_t i = 0; i < n; i++)
                if (rx[i].size > sizeof rx[i].data)
                    abort();
        } else if (!d.text[0]) {
            abort();
        }
    } else if (p.ident == GWMP_PULL_RESP) {
        gwmp_txpk_t t;
        gwmp_txpk_parse(p.json, p.json_len, &t, NULL);
    } else if (p.ident == GWMP_TX_ACK) {
        char err[64];
        gwmp_txack_parse(p.json, p.json_len, err, sizeof err);
    }
    return 0;
}
