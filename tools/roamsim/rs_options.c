/*
 * rs_options.c — roamsim's command line (usage below, docs/roamsim.md) and -c FILE, a JSON object
 * whose scalar keys become "--key value" options placed before the command line; and the device
 * list (devcfg: -c FILE "devices"/"generate", --devices FILE, --devices-from-ns FILE, --gen-*).
 */
#include "roamsim.h"

#include "rh_hex.h"
#include "rh_log.h"
#include "rh_version.h"

#include <libgen.h>
#include <stdlib.h>
#include <string.h>

static int parse_hostport(const char *v, rs_opts_t *o)
{
    const char *c = strrchr(v, ':');
    if (!c || (size_t)(c - v) >= sizeof o->ns_host || c == v)
        return -1;
    memcpy(o->ns_host, v, (size_t)(c - v));
    o->ns_host[c - v] = '\0';
    char *end;
    unsigned long p = strtoul(c + 1, &end, 10);
    if (*end || p == 0 || p > 65535)
        return -1;
    o->ns_port = (uint16_t)p;
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f,
        "usage: roamsim --ns HOST:PORT [options]   (docs/roamsim.md)\n"
        "  -c FILE                 JSON configuration (same keys as the long options, '_' for '-')\n"
        "  --ns HOST:PORT          GWMP (UDP) address of the network server\n"
        "  --gateways N            simulated gateways (default 1), --gateway-eui-start EUI\n"
        "  --lat DEG --lon DEG     gateway location reported in stat\n"
        "  --devices FILE          JSON array of devices (roamns format)\n"
        "  --devices-from-ns FILE  the devices of a roamns configuration file\n"
        "  --gen-otaa N | --gen-abp N  generate devices (--dev-eui-start, --join-eui,\n"
        "                          --dev-addr-start, --seed-keys TEXT; same rule as roamns)\n"
        "  --uplinks N             data uplinks per device (default 3)\n"
        "  --interval MS           between a device's uplinks (default 1000)\n"
        "  --start-spread MS       random start offset per device (default 0)\n"
        "  --fport P --payload-size B --payload-hex HEX --confirmed-ratio R (0..1)\n"
        "  --dr DR --region EU868|US915\n"
        "  --duration S            stop after S seconds at most (default 120)\n"
        "  --keepalive S           PULL_DATA period (default 5)\n"
        "  --join-attempts N       join-requests per OTAA device before giving up (default 3)\n"
        "  --expect-joins N --expect-acks N --expect-downlinks N --max-late N --max-wrong N\n"
        "  --no-expect             no default expectations (all joins, all ACKs, none late/wrong)\n"
        "  --json FILE             summary as JSON;  --log FILE  events as JSON lines\n"
        "  --seed N --linger MS --log-level LEVEL --quiet\n"
        "  -h, --help              show this help and exit\n"
        "  --version               show the version and exit\n");
}

/* Turns the scalar keys of a -c FILE object into "--key value" arguments (placed before the
 * command line, which therefore overrides them); "devices"/"generate" stay structured. */
static int config_to_args(const char *path, char ***out, int *n, cJSON **keep, char **dir)
{
    cJSON *j = NULL;
    rh_diag_t d;
    rh_diag_clear(&d);
    if (tl_json_load(path, &j, &d) < 0 || !cJSON_IsObject(j)) {
        fprintf(stderr, "roamsim: %s\n", d.text[0] ? d.text : "config: expected a JSON object");
        cJSON_Delete(j);
        return -1;
    }
    char *copy = strdup(path);
    *dir = copy ? strdup(dirname(copy)) : NULL;
    free(copy);
    int cnt = cJSON_GetArraySize(j);
    char **a = calloc((size_t)cnt * 2 + 1, sizeof *a);
    if (!a) {
        cJSON_Delete(j);
        return -1;
    }
    int k = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, j) {
        char key[64];
        char val[256];
        if (!strcmp(it->string, "devices") || !strcmp(it->string, "generate"))
            continue;
        snprintf(key, sizeof key, "--%s", it->string);
        for (char *p = key; *p; p++)
            if (*p == '_')
                *p = '-';
        if (cJSON_IsString(it))
            snprintf(val, sizeof val, "%s", it->valuestring);
        else if (cJSON_IsNumber(it))
            snprintf(val, sizeof val, "%.17g", it->valuedouble);
        else if (cJSON_IsBool(it))
            snprintf(val, sizeof val, "%s", cJSON_IsTrue(it) ? "true" : "false");
        else {
            fprintf(stderr, "roamsim: config.%s: expected a string, number or boolean\n", it->string);
            for (int i = 0; i < k; i++)
                free(a[i]);
            free(a);
            cJSON_Delete(j);
            return -1;
        }
        a[k++] = strdup(key);
        a[k++] = strdup(val);
    }
    *out = a;
    *n = k;
    *keep = j;
    return 0;
}

/* What can only be checked once every option is known; sets the log level and the default DR. */
static int check_options(rs_opts_t *o, const char *level)
{
    if (!o->ns_port) {
        fprintf(stderr, "roamsim: --ns HOST:PORT is required\n");
        return -1;
    }
    if (rh_log_set_level_name(level) < 0) {
        fprintf(stderr, "roamsim: --log-level: expected err, warn, info or debug\n");
        return -1;
    }
    if (o->dr < 0)
        o->dr = o->region == REGION_US915 ? 3 : 5;
    uint8_t sf, updr;
    uint16_t bw;
    if (o->dr > 15 || region_dr_to_sf_bw(o->region, (uint8_t)o->dr, &sf, &bw) < 0 ||
        region_dr_from_sf_bw(o->region, sf, bw, true, &updr) < 0) {
        fprintf(stderr, "roamsim: --dr %d is not an uplink data rate of %s\n", o->dr,
                region_name(o->region));
        return -1;
    }
    return 0;
}

int rs_options_parse(int argc, char **argv, rs_opts_t *o, rs_args_t *ra)
{
    o->n_gw = 1;
    o->gw_eui_start = 0x00800000A0000001ull;
    o->uplinks = 3;
    o->interval_ms = 1000;
    o->fport = 1;
    o->payload_size = 8;
    o->duration_s = 120;
    o->keepalive_s = 5;
    o->dr = -1;
    o->region = REGION_EU868;
    o->seed = 1;
    o->expect_joins = o->expect_acks = o->expect_downlinks = o->max_late = o->max_wrong = -1;
    o->join_attempts = 3;
    o->linger_ms = 300;
    ra->level = "warn";
    ra->gen = cJSON_CreateObject();

    /* -c FILE first: its keys come before the command line, which overrides them. */
    for (int i = 1; i + 1 < argc; i++)
        if (!strcmp(argv[i], "-c") && !ra->cfg) {
            if (config_to_args(argv[i + 1], &ra->cargs, &ra->ncargs, &ra->cfg, &ra->cfg_dir) < 0)
                return -1;
        }
    int ncargs = ra->ncargs;
    int total = ncargs + argc - 1;
    char **args = ra->args = calloc((size_t)total + 1, sizeof *args);
    if (!args)
        return -1;
    for (int i = 0; i < ncargs; i++)
        args[i] = ra->cargs[i];
    for (int i = 1; i < argc; i++)
        args[ncargs + i - 1] = argv[i];

    for (int i = 0; i < total; i++) {
        const char *a = args[i];
        const char *v = i + 1 < total ? args[i + 1] : NULL;
#define ARG(name) (!strcmp(a, name) && v && (++i, 1))
        char *end = NULL;
        if (ARG("-c")) {
        } else if (ARG("--ns")) {
            if (parse_hostport(v, o) < 0)
                goto bad;
        } else if (ARG("--gateways")) {
            o->n_gw = strtoul(v, &end, 10);
            if (*end || o->n_gw < 1 || o->n_gw > RS_MAX_GW)
                goto bad;
        } else if (ARG("--gateway-eui-start")) {
            if (rh_eui64_parse(v, &o->gw_eui_start, NULL) < 0)
                goto bad;
        } else if (ARG("--lat")) {
            o->lat = strtod(v, &end);
        } else if (ARG("--lon")) {
            o->lon = strtod(v, &end);
        } else if (ARG("--devices")) {
            ra->devices_file = v;
        } else if (ARG("--devices-from-ns")) {
            ra->ns_config = v;
        } else if (ARG("--gen-otaa") || ARG("--gen-abp")) {
            cJSON_AddNumberToObject(ra->gen, "count", strtod(v, &end));
            cJSON_AddStringToObject(ra->gen, "activation", strstr(a, "otaa") ? "otaa" : "abp");
            ra->have_gen = true;
        } else if (ARG("--dev-eui-start")) {
            cJSON_AddStringToObject(ra->gen, "dev_eui_start", v);
        } else if (ARG("--join-eui")) {
            cJSON_AddStringToObject(ra->gen, "join_eui", v);
        } else if (ARG("--dev-addr-start")) {
            cJSON_AddStringToObject(ra->gen, "dev_addr_start", v);
        } else if (ARG("--seed-keys")) {
            cJSON_AddStringToObject(ra->gen, "seed", v);
        } else if (ARG("--uplinks")) {
            o->uplinks = (unsigned)strtoul(v, &end, 10);
        } else if (ARG("--interval")) {
            o->interval_ms = (unsigned)strtoul(v, &end, 10);
        } else if (ARG("--start-spread")) {
            o->start_spread_ms = (unsigned)strtoul(v, &end, 10);
        } else if (ARG("--fport")) {
            unsigned long p = strtoul(v, &end, 10);
            if (p > 223)
                goto bad;
            o->fport = (uint8_t)p;
        } else if (ARG("--payload-size")) {
            o->payload_size = strtoul(v, &end, 10);
            if (o->payload_size > 222)
                goto bad;
        } else if (ARG("--payload-hex")) {
            if (rh_hex_decode(v, strlen(v), o->payload, sizeof o->payload, &o->payload_size,
                              "payload", NULL) < 0 || o->payload_size > 222)
                goto bad;
            o->fixed_payload = true;
        } else if (ARG("--confirmed-ratio")) {
            o->confirmed_ratio = strtod(v, &end);
            if (o->confirmed_ratio < 0 || o->confirmed_ratio > 1)
                goto bad;
        } else if (ARG("--dr")) {
            o->dr = (int)strtol(v, &end, 10);
        } else if (ARG("--region")) {
            if (region_parse(v, &o->region) < 0)
                goto bad;
        } else if (ARG("--duration")) {
            o->duration_s = strtod(v, &end);
            if (!(o->duration_s > 0) || o->duration_s > 1e6)
                goto bad;
        } else if (ARG("--keepalive")) {
            o->keepalive_s = (unsigned)strtoul(v, &end, 10);
            if (!o->keepalive_s)
                goto bad;
        } else if (ARG("--join-attempts")) {
            o->join_attempts = (unsigned)strtoul(v, &end, 10);
            if (!o->join_attempts)
                goto bad;
        } else if (ARG("--expect-joins")) {
            o->expect_joins = strtol(v, &end, 10);
        } else if (ARG("--expect-acks")) {
            o->expect_acks = strtol(v, &end, 10);
        } else if (ARG("--expect-downlinks")) {
            o->expect_downlinks = strtol(v, &end, 10);
        } else if (ARG("--max-late")) {
            o->max_late = strtol(v, &end, 10);
        } else if (ARG("--max-wrong")) {
            o->max_wrong = strtol(v, &end, 10);
        } else if (!strcmp(a, "--no-expect") || !strcmp(a, "--quiet")) {
            bool val = true;
            if (v && (!strcmp(v, "true") || !strcmp(v, "false")))
                val = !strcmp(args[++i], "true");
            if (!strcmp(a, "--quiet"))
                o->quiet = val;
            else
                o->no_expect = val;
        } else if (ARG("--json")) {
            o->json_out = v;
        } else if (ARG("--log")) {
            o->log_out = v;
        } else if (ARG("--seed")) {
            o->seed = strtoull(v, &end, 10);
        } else if (ARG("--linger")) {
            o->linger_ms = (unsigned)strtoul(v, &end, 10);
        } else if (ARG("--log-level")) {
            ra->level = v;
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 1;
        } else if (rh_version_arg(a, "roamsim")) {
            return 1;
        } else {
            fprintf(stderr, "roamsim: unknown or incomplete option %s\n", a);
            usage(stderr);
            return -1;
        }
        if (end && *end) {
        bad:
            fprintf(stderr, "roamsim: bad value for %s\n", a);
            return -1;
        }
#undef ARG
    }
    return check_options(o, ra->level);
}

int rs_devices_load(const rs_args_t *a, devcfg_t **devs, size_t *ndev)
{
    rh_diag_t d;
    cJSON *dj = NULL, *gj = a->have_gen ? a->gen : NULL, *owned = NULL;
    const char *base = NULL;
    if (a->cfg) {
        dj = cJSON_GetObjectItemCaseSensitive(a->cfg, "devices");
        if (!gj)
            gj = cJSON_GetObjectItemCaseSensitive(a->cfg, "generate");
        base = a->cfg_dir;
    }
    char *nsdir = NULL;
    if (a->ns_config) {
        if (tl_json_load(a->ns_config, &owned, &d) < 0) {
            fprintf(stderr, "roamsim: %s\n", d.text);
            return -1;
        }
        dj = cJSON_GetObjectItemCaseSensitive(owned, "devices");
        if (!gj)
            gj = cJSON_GetObjectItemCaseSensitive(owned, "generate");
        char *c = strdup(a->ns_config);
        nsdir = c ? strdup(dirname(c)) : NULL;
        free(c);
        base = nsdir;
    }
    cJSON *fileref = NULL;
    if (a->devices_file) {
        fileref = cJSON_CreateString(a->devices_file);
        dj = fileref;
        base = NULL;
    }
    int rc = devcfg_load(dj, gj, base, devs, ndev, &d);
    cJSON_Delete(fileref);
    cJSON_Delete(owned);
    free(nsdir);
    if (rc < 0) {
        fprintf(stderr, "roamsim: %s\n", d.text);
        return -1;
    }
    return 0;
}

void rs_args_fini(rs_args_t *a)
{
    cJSON_Delete(a->gen);
    cJSON_Delete(a->cfg);
    free(a->cfg_dir);
    for (int i = 0; i < a->ncargs; i++)
        free(a->cargs[i]);
    free(a->cargs);
    free(a->args);
}
