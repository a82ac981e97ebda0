/*
 * fuzz_config.c — libFuzzer target over roamhubd's configuration loader (broker/config.c through
 * the JSON input policy): the input is the file's content. A refused file must say why and leave
 * nothing allocated; an accepted one must hold values inside every documented range (the same
 * bounds as docs/CONFIG.md) and consistent pairs, and free cleanly.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char path[64];
static int fd = -1;

static void cleanup(void)
{
    if (fd >= 0)
        close(fd);
    unlink(path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (fd < 0) {
        snprintf(path, sizeof path, "/tmp/fuzz-config-XXXXXX");
        fd = mkstemp(path);
        if (fd < 0)
            abort();
        atexit(cleanup);
    }
    if (ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != (ssize_t)size)
        abort();
    rh_config_t c;
    rh_diag_t d = {{0}};
    int rc = config_load(path, &c, &d);
    if (rc) {
        if (!d.text[0] && rc != RH_ENOMEM)
            abort();
        return 0;
    }
    if (c.workers > 256 || c.db_map_size_mb < 1 || c.db_map_size_mb > 1048576 ||
        c.ts002.max_body_bytes < 1024 || c.ts002.max_body_bytes > 16777216 ||
        c.admin.header_timeout_ms < 100 || c.jwt_ttl_s < 10 || c.jwt_ttl_s > 86400 ||
        c.n_endpoint_allow > 64 || !c.log_level || !c.db_path || !c.jwt_alg ||
        (c.ts002.tls.cert_file != NULL) != (c.ts002.tls.key_file != NULL))
        abort();
    config_fini(&c);
    return 0;
}
