/*
 * main.c — roamhubd: the LoRaWAN passive-roaming relay daemon.
 *   roamhubd [-c CONFIG.json] [--ports-file FILE] [--check] [--version] [--help]
 * Without -c the embedded defaults apply (LMDB under var/roamhub-db, loopback listeners); see
 * docs/CONFIG.md. --check validates the configuration as the start would (config_check) and
 * exits. --ports-file writes the bound ports as JSON once listening (for scripts using port 0).
 * The --help text is also the source of the roamhubd(8) man page (help2man, at build time).
 */
#include "arena.h"
#include "config.h"
#include "hub.h"
#include "metrics.h"
#include "metrics_process.h"
#include "rh_log.h"
#include "rh_version.h"

#include <stdio.h>
#include <string.h>

extern const char *hub_ports_file;

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: roamhubd [-c CONFIG.json] [--ports-file FILE] [--check]\n"
            "LoRaWAN roaming hub: relays TS002 passive-roaming messages between member networks\n"
            "and serves the admin API, /metrics and /healthz.\n"
            "\n"
            "Options:\n"
            "  -c, --config FILE   read the JSON configuration FILE (docs/CONFIG.md); without it\n"
            "                      the embedded defaults apply (var/roamhub-db, 127.0.0.1:4270/4271)\n"
            "  --check             check the configuration as the start would (JSON syntax with\n"
            "                      line and column, keys, listen addresses, TLS and import files),\n"
            "                      print the result and exit\n"
            "  --ports-file FILE   once listening, write {\"ts002\":P,\"admin\":P,\"pid\":N} to FILE\n"
            "  -h, --help          show this help and exit\n"
            "  --version           show the version and exit\n"
            "\n"
            "Signals: SIGHUP reloads the configuration, certificates and members (a refused\n"
            "configuration keeps the running one); SIGTERM and SIGINT drain and exit.\n"
            "Under systemd (Type=notify) it reports readiness, reloads, stopping and watchdog pings.\n"
            "\n"
            "Exit status: 0 after a drain or a passing --check, 1 on a start-up failure,\n"
            "2 on bad usage or a refused configuration.\n");
}

int main(int argc, char **argv)
{
    const char *path = NULL;
    int check = 0;
    metrics_process_mark_start();
    arena_install_cjson_hooks(); /* before any thread uses cJSON */
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if ((!strcmp(a, "-c") || !strcmp(a, "--config")) && i + 1 < argc) {
            path = argv[++i];
        } else if (!strcmp(a, "--ports-file") && i + 1 < argc) {
            hub_ports_file = argv[++i];
        } else if (!strcmp(a, "--check")) {
            check = 1;
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (rh_version_arg(a, "roamhubd")) {
            return 0;
        } else {
            fprintf(stderr, "roamhubd: %s: %s\n", a,
                    a[0] == '-' && i + 1 >= argc ? "unknown option or missing value"
                                                 : "unknown option");
            usage(stderr);
            return 2;
        }
    }
    rh_config_t cfg;
    rh_diag_t d = {{0}};
    int rc = path ? config_load(path, &cfg, &d) : config_defaults(&cfg);
    if (rc == RH_OK && check && (rc = config_check(&cfg, &d)) != RH_OK)
        config_fini(&cfg);
    if (rc != RH_OK) {
        fprintf(stderr, "roamhubd: %s\n", d.text[0] ? d.text : rh_strerror(rc));
        return 2;
    }
    if (check) {
        printf("roamhubd: configuration OK\n");
        config_fini(&cfg);
        return 0;
    }
    rh_log_set_level_name(cfg.log_level);
    rh_log_set_format(rh_log_format_from_name(cfg.log_format)); /* before the first line */
    metrics_set_max_peer_pairs(cfg.metrics_max_peer_pairs);
    RH_LOG(RH_LOG_INFO, "hub", "starting version=%s config=%s", rh_version(),
           path ? path : "(defaults)");
    int code = hub_run(&cfg);
    config_fini(&cfg);
    return code;
}
