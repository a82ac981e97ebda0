/*
 * devcfg.h — the device list shared by roamns (its registry) and roamsim (its simulated
 * devices): LoRaWAN 1.0.x class A devices, ABP (DevAddr, NwkSKey, AppSKey, counters) or OTAA
 * (JoinEUI, DevEUI, AppKey), from JSON, plus a deterministic generator for many devices.
 *
 * JSON (docs/roamns.md): "devices" is an array of objects, or a string naming a JSON file that
 * holds such an array; "generate" is optional:
 *   {"name": "abp-1", "dev_eui": "0101..", "dev_addr": "26000001", "nwk_s_key": "..",
 *    "app_s_key": "..", "fcnt_up": 0, "fcnt_down": 0}
 *   {"name": "otaa-1", "dev_eui": "..", "join_eui": "..", "app_key": ".."}
 *   "generate": {"count": 100, "activation": "otaa"|"abp", "dev_eui_start": "..",
 *                "join_eui": "..", "dev_addr_start": "..", "seed": "text"}
 * Generated keys are the first 16 bytes of SHA-256(seed | DevEUI (8 bytes BE) | label), label
 * "app" (AppKey), "nwks" (NwkSKey), "apps" (AppSKey); DevEUIs (and ABP DevAddrs) count up from
 * their start. Both tools given the same "generate" object get the same devices.
 * Keys are secrets: never logged.
 */
#ifndef DEVCFG_H
#define DEVCFG_H

#include "rh_err.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DEVCFG_MAX_DEVICES 1000000u

typedef struct devcfg {
    char name[48];
    bool otaa;
    uint64_t dev_eui;
    uint64_t join_eui;      /* OTAA */
    uint8_t app_key[16];    /* OTAA */
    uint32_t dev_addr;      /* ABP */
    uint8_t nwk_s_key[16];  /* ABP */
    uint8_t app_s_key[16];  /* ABP */
    uint32_t fcnt_up;       /* ABP: next uplink counter (roamns: lowest accepted) */
    uint32_t fcnt_down;     /* ABP: next downlink counter */
} devcfg_t;

/* Builds the device list from `devices` (array, string path, or NULL) and `generate` (object or
 * NULL). `base_dir` resolves a relative path (NULL = current directory). *out is a new array
 * (free()) of *n devices. Errors: RH_EINVAL naming the entry and key ("devices[1].app_key:
 * ..."; an entry must be exactly one of ABP/OTAA; duplicate DevEUIs are refused), RH_EIO
 * (file), RH_ERANGE (more than DEVCFG_MAX_DEVICES), RH_ENOMEM. */
int devcfg_load(const cJSON *devices, const cJSON *generate, const char *base_dir, devcfg_t **out,
                size_t *n, rh_diag_t *diag);

/* Parses one device object (`where` names it in diagnostics). Errors: RH_EINVAL. */
int devcfg_parse_one(const cJSON *o, const char *where, devcfg_t *d, rh_diag_t *diag);

/* The device list as a JSON array (keys included: it is configuration), e.g. for roamsim to
 * write the devices it generated. NULL on allocation failure. */
cJSON *devcfg_to_json(const devcfg_t *d, size_t n);

#endif
