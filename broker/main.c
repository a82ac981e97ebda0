/*
 * main.c — roamhubd: the LoRaWAN passive-roaming relay daemon.
 *   roamhubd [-c CONFIG.json] [--ports-file FILE] [--check]
 * Without -c the embedded defaults apply (LMDB under var/roamhub-db, loopback listeners); see
 * docs/CONFIG.md. --check validates the configuration and exits. --ports-file writes the bound
 * ports as JSON once listening (for scripts using port 0).
 */
#include "arena.h"
#include "config.h"
#include "hub.h"
#include "rh_log.h"

#include <stdio.h>
#include <string.h>

extern const char *hub_ports_file;

static void usage(void)
{
    fprintf(stderr, "usage: roamhubd [-c CONFIG.json] [--ports-file FILE] [--check]\n"
                    "  see docs/CONFIG.md for the configuration keys and their defaults\n");
}

int main(int argc, char **argv)
{
    const char *path = NULL;
    int check = 0;
    arena_install_cjson_hooks(); /* before any thread uses cJSON */
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-c") && i + 1 < argc) {
            path = argv[++i];
        } else if (!strcmp(argv[i], "--ports-file") && i + 1 < argc) {
            hub_ports_file = argv[++i];
        } else if (!strcmp(argv[i], "--check")) {
            check = 1;
        } else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage();
            return 0;
        } else {
            usage();
            return 2;
        }
    }
    rh_config_t cfg;
    rh_diag_t d = {{0}};
    int rc = path ? config_load(path, &cfg, &d) : config_defaults(&cfg);
    if (rc != RH_OK) {
        fprintf(stderr, "roamhubd: %s\n", d.text[0] ? d.text : rh_strerror(rc));
        return 2;
    }
    if (check) {
        printf("roamhubd: configuration OK\n");
        config_fini(&cfg);
        return 0;
    }
    int code = hub_run(&cfg);
    config_fini(&cfg);
    return code;
}
