/*
 * roamns — a minimal LoRaWAN 1.0.x class A network server for roamhub's demo and tests
 * (docs/roamns.md): gateways over the Semtech UDP protocol, ABP/OTAA devices with an embedded
 * join server, decoded uplinks as JSON lines, downlinks (ACKs, queued application data) in
 * RX1/RX2, and TS002 passive roaming through a hub as forwarder and as home network.
 *
 *   roamns -c roamns.json [--ports-file FILE] [--output FILE] [--log-level LEVEL]
 *
 * Exit status: 0 after SIGTERM/SIGINT, 1 on a configuration or start-up error, 2 on bad usage.
 */
#include "roamns.h"

#include "rh_log.h"
#include "rh_version.h"

#include <errno.h>
#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
    fprintf(f, "Usage: roamns -c CONFIG.json [--ports-file FILE] [--output FILE|-] "
               "[--log-level err|warn|info|debug]\n"
               "Minimal LoRaWAN network server for tests and demos: GWMP gateways, OTAA/ABP\n"
               "devices, TS002 passive roaming through a hub, or Packet Broker's gRPC data plane\n"
               "as The Things Stack's Packet Broker Agent.\n"
               "\n"
               "Options:\n"
               "  -c, --config FILE  the JSON configuration (see docs/roamns.md)\n"
               "  --ports-file FILE  write {\"gwmp\":PORT,\"ts002\":PORT} once listening\n"
               "  --output FILE|-    application uplinks as JSON lines\n"
               "  --log-level LEVEL  err, warn, info or debug\n"
               "  -h, --help         show this help and exit\n"
               "  --version          show the version and exit\n"
               "\n"
               "Exit status: 0 after SIGTERM/SIGINT, 1 on a configuration or start-up error,\n"
               "2 on bad usage.\n");
}

static void on_signal(evutil_socket_t sig, short ev, void *arg)
{
    roamns_t *ns = arg;
    (void)ev;
    RH_LOG(RH_LOG_INFO, "roamns", "stopping signal=%d", (int)sig);
    ns->stopping = true;
    event_base_loopbreak(ns->base);
}

/* Reads complete new lines of the downlinks file and queues them. */
static void dl_file_poll(roamns_t *ns)
{
    FILE *f = fopen(ns->cfg.downlinks_file, "rb");
    if (!f)
        return;
    if (fseek(f, 0, SEEK_END) == 0) {
        long size = ftell(f);
        if (size < ns->dl_offset)
            ns->dl_offset = 0; /* truncated or replaced */
    }
    if (fseek(f, ns->dl_offset, SEEK_SET) != 0) {
        fclose(f);
        return;
    }
    char line[4096];
    while (fgets(line, sizeof line, f)) {
        size_t n = strlen(line);
        if (n == 0 || line[n - 1] != '\n') {
            if (n == sizeof line - 1) { /* overlong line: skip it */
                RH_LOG(RH_LOG_WARN, "downlink", "downlinks file line too long, skipped");
                ns->dl_offset += (long)n;
                continue;
            }
            break; /* incomplete last line: read it next time */
        }
        ns->dl_offset += (long)n;
        char *s = line;
        while (*s == ' ' || *s == '\t')
            s++;
        if (*s == '\n' || *s == '#')
            continue;
        cJSON *o = cJSON_Parse(s);
        rh_diag_t d;
        if (!o) {
            RH_LOG(RH_LOG_WARN, "downlink", "downlinks file: line is not JSON");
            continue;
        }
        if (rn_queue_downlink_json(ns, o, &d) < 0)
            RH_LOG(RH_LOG_WARN, "downlink", "downlinks file: line refused err=\"%s\"", d.text);
        cJSON_Delete(o);
    }
    fclose(f);
}

static void dl_timer_cb(evutil_socket_t fd, short ev, void *arg)
{
    (void)fd;
    (void)ev;
    dl_file_poll(arg);
}

int main(int argc, char **argv)
{
    const char *cfg_path = NULL, *ports_file = NULL, *output = NULL, *level = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *next = i + 1 < argc ? argv[i + 1] : NULL;
        if ((!strcmp(a, "-c") || !strcmp(a, "--config")) && next) {
            cfg_path = argv[++i];
        } else if (!strcmp(a, "--ports-file") && next) {
            ports_file = argv[++i];
        } else if (!strcmp(a, "--output") && next) {
            output = argv[++i];
        } else if (!strcmp(a, "--log-level") && next) {
            level = argv[++i];
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (rh_version_arg(a, "roamns")) {
            return 0;
        } else {
            fprintf(stderr, "roamns: %s: unknown option or missing value\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (!cfg_path) {
        usage(stderr);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    static roamns_t ns0;
    roamns_t *ns = &ns0;
    ns->udp_fd = -1;
    rh_diag_t d;
    int rc = ns_config_load(cfg_path, &ns->cfg, &d);
    if (rc < 0) {
        fprintf(stderr, "roamns: %s\n", d.text);
        return 1;
    }
    if (rh_log_set_level_name(level ? level : ns->cfg.log_level) < 0) {
        fprintf(stderr, "roamns: --log-level: expected err, warn, info or debug\n");
        ns_config_fini(&ns->cfg);
        return 2;
    }
    int status = 1;
    const char *out = output ? output : ns->cfg.output;
    if (strcmp(out, "-") == 0) {
        ns->out = stdout;
    } else if (!(ns->out = fopen(out, "a"))) {
        fprintf(stderr, "roamns: output %s: %s\n", out, strerror(errno));
        goto done;
    }
    if ((rc = ns_registry_new(&ns->cfg.core, ns->cfg.devs, ns->cfg.n_devs, &ns->reg, &d)) < 0) {
        fprintf(stderr, "roamns: devices: %s\n", d.text[0] ? d.text : rh_strerror(rc));
        goto done;
    }
    ns->base = event_base_new();
    if (!ns->base)
        goto done;
    if (rn_gw_start(ns) < 0) {
        fprintf(stderr, "roamns: GWMP listener could not start (see log)\n");
        goto done;
    }
    if (rn_http_start(ns) < 0) {
        fprintf(stderr, "roamns: TS002/HTTP listener could not start (see log)\n");
        goto done;
    }
    rh_diag_clear(&d);
    if (rn_hub_start(ns, &d) < 0) {
        fprintf(stderr, "roamns: hub: %s\n", d.text);
        goto done;
    }
    rh_diag_clear(&d);
    if (rn_pb_start(ns, &d) < 0) {
        fprintf(stderr, "roamns: packet_broker: %s\n", d.text);
        goto done;
    }
    if (ns->cfg.downlinks_file) {
        dl_file_poll(ns);
        ns->dl_ev = event_new(ns->base, -1, EV_PERSIST, dl_timer_cb, ns);
        struct timeval tv = {0, 250000};
        if (ns->dl_ev)
            event_add(ns->dl_ev, &tv);
    }
    ns->sig_term = evsignal_new(ns->base, SIGTERM, on_signal, ns);
    ns->sig_int = evsignal_new(ns->base, SIGINT, on_signal, ns);
    if (!ns->sig_term || !ns->sig_int)
        goto done;
    event_add(ns->sig_term, NULL);
    event_add(ns->sig_int, NULL);
    uint16_t http_port = hs_server_port(ns->http);
    char net[7];
    lw_netid_format(ns->cfg.net_id, net, 0);
    RH_LOG(RH_LOG_INFO, "roamns", "listening netid=%s gwmp=%s:%u ts002=%s:%u devices=%zu hub=%s pb=%s", net,
           ns->cfg.gwmp_address, ns->gwmp_port, ns->cfg.ts002_address, http_port,
           ns_registry_count(ns->reg), ns->cfg.has_hub ? (ns->cfg.hub_async ? "async" : "sync") : "none",
           !ns->cfg.has_pb ? "none"
           : ns->cfg.pb_forwarder && ns->cfg.pb_home ? "forwarder+home"
           : ns->cfg.pb_forwarder ? "forwarder" : "home");
    if (ports_file) {
        char buf[64];
        int n = snprintf(buf, sizeof buf, "{\"gwmp\":%u,\"ts002\":%u}\n", ns->gwmp_port, http_port);
        if (tl_write_file_atomic(ports_file, buf, (size_t)n) < 0) {
            fprintf(stderr, "roamns: cannot write %s\n", ports_file);
            goto done;
        }
    }
    event_base_dispatch(ns->base);
    status = 0;
done:
    rn_pb_stop(ns);
    rn_hub_stop(ns);
    rn_http_stop(ns);
    rn_gw_stop(ns);
    if (ns->dl_ev)
        event_free(ns->dl_ev);
    if (ns->sig_term)
        event_free(ns->sig_term);
    if (ns->sig_int)
        event_free(ns->sig_int);
    if (ns->base)
        event_base_free(ns->base);
    ns_registry_free(ns->reg);
    if (ns->out && ns->out != stdout)
        fclose(ns->out);
    else if (ns->out)
        fflush(ns->out);
    ns_config_fini(&ns->cfg);
    RH_LOG(RH_LOG_INFO, "roamns", "stopped status=%d", status);
    return status;
}
