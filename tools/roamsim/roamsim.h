/*
 * roamsim.h — internals of roamsim, the simulated GWMP gateways and LoRaWAN class A devices
 * (docs/roamsim.md; map in docs/ARCHITECTURE.md "Network server and simulator"). One thread,
 * one libevent loop:
 *   rs_gw.c      gateways: one connected UDP socket each, PULL_DATA keep-alive, PUSH_DATA of an
 *                uplink as heard by every gateway (rxpk with per-gateway tmst), PULL_RESP intake
 *                and its TX_ACK.
 *   rs_dev.c     devices: join / data uplink schedule, receive windows, the verdict on each
 *                downlink (sim_dl_check) and its decryption (tools/common/sim_dev).
 *   rs_report.c  the JSON-lines event log, RTT samples, the summary, the expectations and the
 *                --json file.
 *   rs_options.c command line and -c FILE (a JSON object turned into options), the device list.
 *   main.c       start-up, run control (start once gateways have their PULL_ACK, end, signals),
 *                clean-up.
 */
#ifndef ROAMSIM_H
#define ROAMSIM_H

#include "devcfg.h"
#include "gwmp.h"
#include "region.h"
#include "sim_dev.h"
#include "tl_util.h"

#include <cjson/cJSON.h>
#include <event2/event.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define RS_MAX_GW 64
#define RS_MAX_APP_RECORDS 10000
#define RS_RX_SLACK_MS 500 /* after RX2 opens, how long a device still waits for its downlink */

/* Settings from the command line and -c FILE (defaults in rs_options_parse). */
typedef struct rs_opts {
    char ns_host[64];
    uint16_t ns_port;
    size_t n_gw;
    uint64_t gw_eui_start;
    double lat, lon;
    unsigned uplinks;
    unsigned interval_ms;
    unsigned start_spread_ms;
    uint8_t fport;
    size_t payload_size;
    bool fixed_payload;
    uint8_t payload[242];
    double confirmed_ratio;
    double duration_s;
    unsigned keepalive_s;
    int dr;
    region_id_t region;
    uint64_t seed;
    long expect_joins, expect_acks, expect_downlinks, max_late, max_wrong; /* -1: default */
    bool no_expect;
    unsigned join_attempts;
    unsigned linger_ms;
    const char *json_out, *log_out; /* point into rs_args_t's strings or argv */
    bool quiet;
} rs_opts_t;

/* What rs_options_parse keeps for loading the devices; owns the strings rs_opts_t points to
 * (release with rs_args_fini after the run). */
typedef struct rs_args {
    const char *devices_file, *ns_config, *level;
    cJSON *gen;      /* --gen-otaa/--gen-abp/--dev-eui-start... as a devcfg "generate" object */
    bool have_gen;
    cJSON *cfg;      /* the -c FILE object (its "devices"/"generate"), or NULL */
    char *cfg_dir;   /* its directory (relative device file names) */
    char **cargs;    /* -c FILE's keys as "--key value" strings */
    int ncargs;
    char **args;     /* cargs then argv[1..] */
} rs_args_t;

struct rs_sim;

typedef struct rs_gw {
    struct rs_sim *sim;
    unsigned idx;
    uint64_t eui;
    int fd;
    struct event *ev, *keepalive;
    uint32_t tmst_offset;
    bool pull_acked;
    uint16_t token;
} rs_gw_t;

typedef enum { ST_JOIN, ST_DATA, ST_DONE } rs_dstate_t;

/* A device's last uplink, as each gateway heard it. */
typedef struct rs_last_up {
    bool valid, join, confirmed, answered;
    uint32_t fcnt;
    uint32_t freq_hz;
    uint8_t dr;
    uint32_t tmst[RS_MAX_GW];
    uint64_t sent_ns;
} rs_last_up_t;

typedef struct rs_dev {
    struct rs_sim *sim;
    size_t idx;
    sim_dev_t d;
    struct event *timer;
    rs_dstate_t st;
    unsigned sent, join_tries;
    rs_last_up_t last;
    bool awaiting;          /* join-accept, or ACK of a confirmed uplink */
    uint64_t await_until_ns;
    uint64_t next_send_ns;
} rs_dev_t;

/* An application downlink a device received (--json "app_downlinks"). */
typedef struct rs_app_rec {
    uint64_t dev_eui;
    uint32_t fcnt;
    uint8_t fport;
    size_t len;
    uint8_t data[242];
} rs_app_rec_t;

typedef struct rs_sim {
    rs_opts_t o;
    struct event_base *base;
    rs_gw_t gw[RS_MAX_GW];
    rs_dev_t *devs;
    size_t ndev, n_otaa;
    tl_map_t by_addr;       /* DevAddr -> rs_dev_t* (active devices) */
    tl_map_t join_wait;     /* (gw idx << 32 | uplink tmst) -> rs_dev_t* awaiting a join-accept */
    uint64_t start_ns;
    tl_rng_t rng;
    FILE *log;
    size_t ndone;
    struct event *end_ev, *start_ev, *sig_ev;
    bool started, finished, interrupted;
    /* counters */
    uint64_t uplinks, confirmed, acks, unacked, join_requests, joins, join_failures;
    uint64_t dl_total, dl_on_time, dl_late, dl_wrong, dl_rx1, dl_rx2, dl_app, dl_mic;
    uint64_t push_sent, push_acked, pull_sent, pull_acked, tx_ack_sent;
    double *rtt;
    size_t nrtt, caprtt;
    double *jrtt;
    size_t njrtt, capjrtt;
    rs_app_rec_t *apps;
    size_t napps;
    char first_wrong[160];
} rs_sim_t;

/* ---- rs_options.c */

/* Fills `o` with the defaults, then applies -c FILE's keys and the command line (which
 * overrides them). Returns 0 to run, 1 after --help or --version (printed; exit 0), -1 on bad
 * usage (message and usage on stderr; exit 2). `a` must be released with rs_args_fini in every case. */
int rs_options_parse(int argc, char **argv, rs_opts_t *o, rs_args_t *a);

/* Loads the devices: -c FILE "devices"/"generate", --devices FILE, --devices-from-ns FILE,
 * --gen-*. On success *devs is a calloc'd array (free()) of *ndev entries. Errors: -1 with the
 * reason on stderr. */
int rs_devices_load(const rs_args_t *a, devcfg_t **devs, size_t *ndev);

void rs_args_fini(rs_args_t *a);

/* ---- rs_gw.c */

/* Opens every gateway's UDP socket towards o.ns_host:o.ns_port, starts its keep-alive and sends
 * the first PULL_DATA (draws two numbers per gateway from s->rng). -1 with the reason on stderr. */
int rs_gw_open(rs_sim_t *s);
void rs_gw_close(rs_sim_t *s);

/* The gateway's free-running µs counter now. */
uint32_t rs_gw_tmst(const rs_gw_t *g);

/* Sends `phy` as heard by every gateway (one PUSH_DATA each, random channel); records the
 * frequency, DR, send time and each gateway's tmst in *l. */
void rs_gw_transmit(rs_sim_t *s, rs_last_up_t *l, const uint8_t *phy, size_t len);

/* ---- rs_dev.c */

/* Sets up the devices (draws one DevNonce seed per device from s->rng). -1 with the reason on
 * stderr. */
int rs_dev_init_all(rs_sim_t *s, const devcfg_t *devs, size_t ndev);
void rs_dev_fini_all(rs_sim_t *s);

/* Schedules every device's first uplink (spread over o.start_spread_ms); once. */
void rs_dev_start_all(rs_sim_t *s);

/* A downlink that gateway `gw` received in a PULL_RESP (already counted and TX_ACKed): its
 * verdict (on time / late / wrong, counted) for the device it is addressed to, which then
 * decrypts it. t: the parsed txpk, or NULL when it did not parse (reason in why->text);
 * now_tmst: the gateway's counter, now_ns: rh_mono_ns() when the datagram was read. */
void rs_dev_downlink(rs_sim_t *s, rs_gw_t *gw, const gwmp_txpk_t *t, const rh_diag_t *why,
                     uint32_t now_tmst, uint64_t now_ns);

/* ---- rs_report.c */

/* Writes one event (consumed) as a JSON line to --log; only frees it without --log. */
void rs_log_event(rs_sim_t *s, cJSON *o);
void rs_json_add_hex(cJSON *o, const char *k, const uint8_t *b, size_t n);
void rs_json_add_eui(cJSON *o, const char *k, uint64_t e);

/* Appends a sample (ms) to a growing array; dropped when memory runs out. */
void rs_sample_add(double **arr, size_t *n, size_t *cap, double v);

/* After the run: checks the expectations, prints the summary (unless --quiet) and writes --json.
 * Returns true when every expectation holds. */
bool rs_report(rs_sim_t *s);

#endif
