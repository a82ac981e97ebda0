/*
 * roamsim — simulated LoRaWAN gateways and class A devices for roamhub's demo, tests and load
 * generation (docs/roamsim.md).
 *
 * Gateways speak the Semtech UDP protocol (GWMP v2) to a network server: PULL_DATA keep-alive,
 * PUSH_DATA with one rxpk per heard uplink, TX_ACK for every PULL_RESP. Each gateway has a
 * simulated free-running µs counter (tmst = its random offset + real time since start), so a
 * downlink is on time when its txpk.tmst is the uplink tmst + 1 s / + 2 s (data RX1/RX2) or
 * + 5 s / + 6 s (join-accept) on the right frequency and data rate, and its PULL_RESP arrives
 * before the counter reaches that tmst. Devices (ABP or OTAA, LoRaWAN 1.0.x, real crypto from
 * proto/lw_*) join, send data at a configured rate, check and decrypt downlinks, and ACK
 * confirmed downlinks in their next uplink.
 *
 * The run ends when every device has sent its uplinks and its last receive windows are over
 * (or after --duration); a summary is printed (and written as JSON with --json). Exit status 0
 * only when every expectation holds (joins, ACKs, downlinks, no late or wrong downlink), 1
 * otherwise, 2 on bad usage or start-up errors.
 */
#include "roamsim.h"

#include "rh_log.h"
#include "rh_time.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ run control */

/* Devices start once every gateway has its PULL_ACK (downlinks can reach it), or after 2 s. */
static void start_cb(evutil_socket_t fd, short ev, void *arg)
{
    rs_sim_t *s = arg;
    (void)fd;
    (void)ev;
    bool all = true;
    for (size_t g = 0; g < s->o.n_gw; g++)
        all &= s->gw[g].pull_acked;
    if (all || rh_mono_ns() - s->start_ns > 2000000000ull) {
        if (!all)
            RH_LOG(RH_LOG_WARN, "sim", "not every gateway got a PULL_ACK; starting anyway");
        rs_dev_start_all(s);
        return;
    }
    struct timeval tv = {0, 20000};
    event_add(s->start_ev, &tv);
}

static void end_cb(evutil_socket_t fd, short ev, void *arg)
{
    rs_sim_t *s = arg;
    (void)fd;
    (void)ev;
    s->finished = true;
    event_base_loopbreak(s->base);
}

static void sig_cb(evutil_socket_t fd, short ev, void *arg)
{
    rs_sim_t *s = arg;
    (void)fd;
    (void)ev;
    s->interrupted = true;
    event_base_loopbreak(s->base);
}

/* Sets up gateways and devices (consumes `devs`), runs the loop until the end, a signal or
 * --duration, reports. Returns the exit status: 0 every expectation holds, 1 not, 2 start-up. */
static int run(rs_sim_t *s, devcfg_t *devs, size_t ndev)
{
    const rs_opts_t *o = &s->o;
    s->base = event_base_new();
    tl_rng_seed(&s->rng, o->seed);
    s->start_ns = rh_mono_ns();
    if (o->log_out && !(s->log = fopen(o->log_out, "w"))) {
        fprintf(stderr, "roamsim: %s: %s\n", o->log_out, strerror(errno));
        free(devs);
        return 2;
    }
    s->apps = calloc(RS_MAX_APP_RECORDS, sizeof *s->apps);
    s->devs = calloc(ndev ? ndev : 1, sizeof *s->devs);
    if (!s->base || !s->apps || !s->devs || tl_map_init(&s->by_addr, ndev) < 0 ||
        tl_map_init(&s->join_wait, ndev * o->n_gw) < 0) {
        fprintf(stderr, "roamsim: out of memory\n");
        return 2;
    }
    /* Gateways first, then devices: the order in which they draw from the seeded PRNG. */
    int rc = rs_gw_open(s);
    if (rc == 0)
        rc = rs_dev_init_all(s, devs, ndev);
    free(devs);
    if (rc < 0)
        return 2;
    s->end_ev = evtimer_new(s->base, end_cb, s);
    s->start_ev = evtimer_new(s->base, start_cb, s);
    s->sig_ev = evsignal_new(s->base, SIGINT, sig_cb, s);
    struct event *sig_term = evsignal_new(s->base, SIGTERM, sig_cb, s);
    struct event *limit = evtimer_new(s->base, end_cb, s);
    event_add(s->sig_ev, NULL);
    event_add(sig_term, NULL);
    struct timeval lim = {(time_t)o->duration_s,
                          (suseconds_t)((o->duration_s - (double)(time_t)o->duration_s) * 1e6)};
    event_add(limit, &lim);
    struct timeval st = {0, 20000};
    event_add(s->start_ev, &st);

    event_base_dispatch(s->base);

    bool ok = rs_report(s);

    rs_dev_fini_all(s);
    rs_gw_close(s);
    event_free(s->end_ev);
    event_free(s->start_ev);
    event_free(s->sig_ev);
    event_free(sig_term);
    event_free(limit);
    event_base_free(s->base);
    tl_map_fini(&s->by_addr);
    tl_map_fini(&s->join_wait);
    free(s->devs);
    free(s->apps);
    free(s->rtt);
    free(s->jrtt);
    if (s->log)
        fclose(s->log);
    return ok ? 0 : 1;
}

int main(int argc, char **argv)
{
    static rs_sim_t S;
    rs_args_t args = {0};
    devcfg_t *devs = NULL;
    size_t ndev = 0;
    int status = 2;
    signal(SIGPIPE, SIG_IGN);
    int rc = rs_options_parse(argc, argv, &S.o, &args);
    if (rc > 0)
        status = 0; /* --help */
    else if (rc == 0 && rs_devices_load(&args, &devs, &ndev) == 0)
        status = run(&S, devs, ndev);
    rs_args_fini(&args);
    return status;
}
