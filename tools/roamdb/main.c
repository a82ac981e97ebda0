/*
 * roamdb — load, dump and query the routing table (routing-policy/, rp_json.h format).
 *
 *   roamdb --db DIR [--map-mib N] [--max-map-mib N] [--nosync] COMMAND ...
 *     import [--replace] [--actor NAME] FILE.json|-   atomic import (whole table with --replace,
 *                                                     else upsert; "member_net_ids" scopes it),
 *                                                     streamed: memory bounded by the largest
 *                                                     record, not the file
 *     export                                          JSON to stdout, loadable by import
 *     lookup devaddr DEVADDR                          longest-prefix match
 *     lookup join JOINEUI DEVEUI                      join route
 *     lookup netids DEVADDR                           known NetIDs whose prefix covers it
 *     policy FWD[/TENANT] HOME[/TENANT] CLASS         effective policy and verdict
 *     count                                           records per kind
 *     audit [SINCE_MS]                                audit records as JSON lines
 *     burst N ROUND                                   crash-test writer: N single-record
 *                                                     transactions, each acknowledged on stdout
 *                                                     ("ack ...") only after its commit
 * The directory is created if missing. Exit status: 0 ok, 1 error (message on stderr), 2 usage.
 */
#include "lw_netid.h"
#include "rh_hex.h"
#include "rh_version.h"
#include "rp.h"
#include "rp_json.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int usage_to(FILE *f)
{
    fprintf(f,
            "Usage: roamdb --db DIR [--map-mib N] [--max-map-mib N] [--nosync] COMMAND\n"
            "       (the options may also follow the command)\n"
            "Offline access to roamhubd's LMDB routing table (stop the hub or use a copy).\n"
            "\n"
            "Commands:\n"
            "  import [--replace] [--actor NAME] FILE.json|-\n"
            "  export\n"
            "  lookup devaddr DEVADDR | lookup join JOINEUI DEVEUI | lookup netids DEVADDR\n"
            "  policy FWD[/TENANT] HOME[/TENANT] CLASS   (CLASS: join_request uplink_mac "
            "uplink_app join_accept downlink_mac downlink_app other)\n"
            "  count | audit [SINCE_MS] | burst N ROUND\n"
            "\n"
            "Options:\n"
            "  --db DIR          the LMDB environment directory (created if missing)\n"
            "  --map-mib N       initial map size, MiB\n"
            "  --max-map-mib N   largest map size, MiB\n"
            "  --nosync          do not fsync on commit (bulk loads)\n"
            "  -h, --help        show this help and exit\n"
            "  --version         show the version and exit\n"
            "\n"
            "Exit status: 0 ok, 1 error (message on stderr), 2 usage.\n");
    return 2;
}

static int usage(void) { return usage_to(stderr); }

static int fail(const char *what, int rc, const rh_diag_t *d)
{
    fprintf(stderr, "roamdb: %s: %s%s%s\n", what, rh_strerror(rc), d && d->text[0] ? ": " : "",
            d ? d->text : "");
    return 1;
}

/* The import reads its file twice (rp_json_import_file): a pipe is copied to a temporary file
 * first. Returns NULL with errno set on failure. */
static FILE *open_seekable(const char *path)
{
    if (strcmp(path, "-") != 0)
        return fopen(path, "rb");
    FILE *t = tmpfile();
    if (!t)
        return NULL;
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, stdin)) > 0)
        if (fwrite(buf, 1, n, t) != n) {
            fclose(t);
            return NULL;
        }
    if (ferror(stdin)) {
        fclose(t);
        errno = EIO;
        return NULL;
    }
    rewind(t);
    return t;
}

static int parse_party(const char *s, rp_party_t *p, rh_diag_t *d)
{
    char net[16];
    const char *slash = strchr(s, '/');
    size_t n = slash ? (size_t)(slash - s) : strlen(s);
    if (n >= sizeof net)
        return rh_diag_fail(d, RH_EINVAL, "party \"%s\": expected NETID[/TENANT]", s);
    memcpy(net, s, n);
    net[n] = 0;
    uint32_t id;
    int rc = lw_netid_parse(net, &id, d);
    if (rc)
        return rc;
    return rp_party_set(p, id, slash ? slash + 1 : "", d);
}

static void print_flags(const rp_flags_t *f)
{
    printf("\"uplink\":{\"join_request\":%s,\"mac_data\":%s,\"application_data\":%s,"
           "\"signal_quality\":%s,\"localization\":%s},\"downlink\":{\"join_accept\":%s,"
           "\"mac_data\":%s,\"application_data\":%s}",
           f->up_join_request ? "true" : "false", f->up_mac_data ? "true" : "false",
           f->up_application_data ? "true" : "false", f->up_signal_quality ? "true" : "false",
           f->up_localization ? "true" : "false", f->down_join_accept ? "true" : "false",
           f->down_mac_data ? "true" : "false", f->down_application_data ? "true" : "false");
}

static int cmd_lookup(rp_db_t *db, int argc, char **argv)
{
    if (argc < 2)
        return usage();
    rh_diag_t d;
    rh_diag_clear(&d);
    rp_reader_t *r;
    int rc = rp_reader_new(db, &r, &d);
    if (rc)
        return fail("reader", rc, &d);
    if ((rc = rp_reader_begin(r)))
        return fail("read transaction", rc, NULL);
    int status = 0;
    if (strcmp(argv[0], "devaddr") == 0 || strcmp(argv[0], "netids") == 0) {
        uint32_t a;
        if ((rc = lw_devaddr_parse(argv[1], &a, &d))) {
            status = fail("DevAddr", rc, &d);
        } else if (argv[0][0] == 'd') {
            rp_block_match_t m;
            if ((rc = rp_lookup_devaddr(r, a, &m))) {
                status = fail("lookup", rc, NULL);
            } else if (!m.found) {
                printf("{\"found\":false}\n");
            } else {
                lw_devaddr_prefix_t p = {m.prefix, m.length};
                char pt[16], nt[7];
                lw_devaddr_prefix_format(p, pt);
                lw_netid_format(m.owner.net_id, nt, 0);
                printf("{\"found\":true,\"prefix\":\"%s\",\"net_id\":\"%s\",\"tenant_id\":\"%s\","
                       "\"cluster_id\":\"%s\"}\n",
                       pt, nt, m.owner.tenant_id, m.cluster_id);
            }
        } else {
            uint32_t ids[64], owners[64];
            size_t n;
            if ((rc = rp_lookup_netids(r, a, ids, owners, 64, &n))) {
                status = fail("lookup", rc, NULL);
            } else {
                printf("{\"net_ids\":[");
                for (size_t i = 0; i < n && i < 64; i++) {
                    char a1[7], a2[7];
                    lw_netid_format(ids[i], a1, 0);
                    lw_netid_format(owners[i], a2, 0);
                    printf("%s{\"net_id\":\"%s\",\"network\":\"%s\"}", i ? "," : "", a1, a2);
                }
                printf("]}\n");
            }
        }
    } else if (strcmp(argv[0], "join") == 0 && argc >= 3) {
        uint64_t je, de;
        if ((rc = rh_eui64_parse(argv[1], &je, &d)) || (rc = rh_eui64_parse(argv[2], &de, &d))) {
            status = fail("EUI", rc, &d);
        } else {
            rp_join_match_t m;
            if ((rc = rp_lookup_join(r, je, de, &m))) {
                status = fail("lookup", rc, NULL);
            } else if (!m.found) {
                printf("{\"found\":false}\n");
            } else {
                char a[24], b[24], nt[7];
                rh_hex_format_be(m.join_eui_prefix, 8, a, 0);
                rh_hex_format_be(m.dev_eui_prefix, 8, b, 0);
                lw_netid_format(m.home.net_id, nt, 0);
                printf("{\"found\":true,\"join_eui\":\"%s/%u\",\"dev_eui\":\"%s/%u\",", a,
                       m.join_eui_length, b, m.dev_eui_length);
                if (m.via_join_server)
                    printf("\"join_server_id\":\"%s\"}\n", m.join_server_id);
                else
                    printf("\"home_net_id\":\"%s\",\"home_tenant_id\":\"%s\"}\n", nt,
                           m.home.tenant_id);
            }
        }
    } else {
        status = usage();
    }
    rp_reader_end(r);
    rp_reader_free(r);
    return status;
}

static int cmd_policy(rp_db_t *db, int argc, char **argv)
{
    if (argc < 3)
        return usage();
    rh_diag_t d;
    rh_diag_clear(&d);
    rp_party_t f, h;
    rp_class_t cls;
    int rc;
    if ((rc = parse_party(argv[0], &f, &d)) || (rc = parse_party(argv[1], &h, &d)))
        return fail("party", rc, &d);
    if (rp_class_parse(argv[2], &cls))
        return usage();
    rp_reader_t *r;
    if ((rc = rp_reader_new(db, &r, &d)))
        return fail("reader", rc, &d);
    if ((rc = rp_reader_begin(r)))
        return fail("read transaction", rc, NULL);
    rp_policy_eff_t eff;
    rp_verdict_t v;
    rc = rp_policy_effective(r, &f, &h, &eff);
    rp_reader_end(r);
    rp_reader_free(r);
    if (rc)
        return fail("policy", rc, NULL);
    rp_policy_eval(cls, &eff, &v);
    printf("{\"allow\":%s,\"reason\":\"%s\",\"source\":\"%s\",\"strip_signal_quality\":%s,"
           "\"strip_localization\":%s,",
           v.allow ? "true" : "false", rp_deny_name(v.reason), rp_source_name(v.source),
           v.strip_signal_quality ? "true" : "false", v.strip_localization ? "true" : "false");
    print_flags(&eff.flags);
    printf("}\n");
    return 0;
}

static int audit_cb(void *ud, const Roamhub__V1__AuditRecord *a)
{
    (void)ud;
    printf("{\"at\":%lld,\"actor\":\"%s\",\"action\":\"%s\",\"kind\":\"%s\",\"key\":\"%s\"}\n",
           (long long)a->at, a->actor, a->action, a->kind, a->key);
    return 0;
}

/* Crash-test writer: alternate a DevAddr block and a policy, one transaction each, printing an
 * acknowledgement line only after the commit returned. */
static int cmd_burst(rp_db_t *db, int argc, char **argv)
{
    if (argc < 2)
        return usage();
    long n = strtol(argv[0], NULL, 10), round = strtol(argv[1], NULL, 10);
    char tenant[16];
    snprintf(tenant, sizeof tenant, "r%ld", round);
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (long i = 0; i < n; i++) {
        rh_diag_t d;
        rh_diag_clear(&d);
        int rc;
        if (i % 2 == 0) {
            Roamhub__V1__DevAddrBlock b = ROAMHUB__V1__DEV_ADDR_BLOCK__INIT;
            b.prefix = 0x26000000u | ((uint32_t)(i / 2 % 131072) << 8);
            b.length = 24;
            b.net_id = 0x000013;
            b.tenant_id = tenant;
            rc = rp_put(db, "burst", RP_KIND_BLOCK, &b.base, RP_PUT_UPSERT, &d);
            if (rc)
                return fail("burst block", rc, &d);
            printf("ack devaddr_block %08x/24 %s\n", b.prefix, tenant);
        } else {
            Roamhub__V1__RoutingPolicy p = ROAMHUB__V1__ROUTING_POLICY__INIT;
            Roamhub__V1__UplinkPolicy up = ROAMHUB__V1__UPLINK_POLICY__INIT;
            p.forwarder_net_id = 0x000013;
            p.has_home = 1;
            p.home_net_id = (uint32_t)(i / 2 % 4096);
            p.forwarder_tenant_id = tenant;
            up.join_request = (i / 2 + round) % 2;
            up.mac_data = 1;
            p.uplink = &up;
            rc = rp_put(db, "burst", RP_KIND_POLICY, &p.base, RP_PUT_UPSERT, &d);
            if (rc)
                return fail("burst policy", rc, &d);
            printf("ack policy 000013/%s %06x %d\n", tenant, p.home_net_id, up.join_request);
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *dir = NULL;
    rp_db_opts_t o = {0};
    o.no_index = 1; /* one-shot process: no compiled index, no builder thread */
    int i = 1;
    /* --help and --version anywhere; the database options before or after the command (taken
     * out of argv, the command's own arguments keep their order) */
    for (int k = 1; k < argc; k++) {
        if (rh_version_arg(argv[k], "roamdb"))
            return 0;
        if (!strcmp(argv[k], "-h") || !strcmp(argv[k], "--help")) {
            usage_to(stdout);
            return 0;
        }
    }
    int kept = 1;
    for (int k = 1; k < argc; k++) {
        const char *a = argv[k], *v = k + 1 < argc ? argv[k + 1] : NULL;
        int takes = !strcmp(a, "--db") || !strcmp(a, "--map-mib") || !strcmp(a, "--max-map-mib");
        if (takes && !v) {
            fprintf(stderr, "roamdb: %s: missing value\n", a);
            return usage();
        }
        if (!strcmp(a, "--db"))
            dir = argv[++k];
        else if (!strcmp(a, "--map-mib"))
            o.map_size = (size_t)strtoull(argv[++k], NULL, 10) << 20;
        else if (!strcmp(a, "--max-map-mib"))
            o.max_map_size = (size_t)strtoull(argv[++k], NULL, 10) << 20;
        else if (!strcmp(a, "--nosync"))
            o.no_sync = 1;
        else if (kept == 1 && a[0] == '-' && strcmp(a, "-")) {
            fprintf(stderr, "roamdb: %s: unknown option (see roamdb --help)\n", a);
            return usage();
        } else
            argv[kept++] = argv[k];
    }
    argc = kept;
    if (!dir) {
        fprintf(stderr, "roamdb: --db DIR is required\n");
        return usage();
    }
    if (i >= argc)
        return usage();
    for (int k = i + 1; k < argc; k++) { /* the commands' own options: import's only */
        const char *a = argv[k];
        if (a[0] == '-' && a[1] == '-' &&
            !(strcmp(argv[i], "import") == 0 &&
              (strcmp(a, "--replace") == 0 || strcmp(a, "--actor") == 0))) {
            fprintf(stderr, "roamdb: %s: %s: unknown option (see roamdb --help)\n", argv[i], a);
            return usage();
        }
    }
    const char *cmd = argv[i++];
    if (mkdir(dir, 0750) != 0 && errno != EEXIST) {
        perror(dir);
        return 1;
    }
    rh_diag_t d;
    rh_diag_clear(&d);
    rp_db_t *db;
    int rc = rp_db_open(dir, &o, &db, &d);
    if (rc)
        return fail("open", rc, &d);
    int status = 0;
    if (strcmp(cmd, "import") == 0) {
        unsigned flags = 0;
        const char *actor = "roamdb", *file = NULL;
        for (; i < argc; i++) {
            if (strcmp(argv[i], "--replace") == 0)
                flags |= RP_IMPORT_REPLACE;
            else if (strcmp(argv[i], "--actor") == 0 && i + 1 < argc)
                actor = argv[++i];
            else
                file = argv[i];
        }
        FILE *in = file ? open_seekable(file) : NULL;
        if (!file) {
            status = usage();
        } else if (!in) {
            perror(file);
            status = 1;
        } else {
            size_t n;
            rc = rp_json_import_file(db, actor, in, flags, &n, &d);
            if (rc)
                status = fail("import", rc, &d);
            else
                fprintf(stderr, "roamdb: imported %zu records\n", n);
            fclose(in);
        }
    } else if (strcmp(cmd, "export") == 0) {
        cJSON *doc;
        rc = rp_json_export(db, &doc, &d);
        if (rc) {
            status = fail("export", rc, &d);
        } else {
            char *s = cJSON_Print(doc);
            if (s) {
                fputs(s, stdout);
                fputc('\n', stdout);
                free(s);
            } else {
                status = fail("export", RH_ENOMEM, NULL);
            }
            cJSON_Delete(doc);
        }
    } else if (strcmp(cmd, "lookup") == 0) {
        status = cmd_lookup(db, argc - i, argv + i);
    } else if (strcmp(cmd, "policy") == 0) {
        status = cmd_policy(db, argc - i, argv + i);
    } else if (strcmp(cmd, "count") == 0) {
        for (int k = 0; k < RP_KIND_COUNT; k++) {
            size_t n = 0;
            rp_count(db, (rp_kind_t)k, &n);
            printf("%s %zu\n", rp_kind_name((rp_kind_t)k), n);
        }
    } else if (strcmp(cmd, "audit") == 0) {
        int64_t since = i < argc ? strtoll(argv[i], NULL, 10) : 0;
        rc = rp_audit_list(db, since, 0, audit_cb, NULL, &d);
        if (rc)
            status = fail("audit", rc, &d);
    } else if (strcmp(cmd, "burst") == 0) {
        status = cmd_burst(db, argc - i, argv + i);
    } else {
        status = usage();
    }
    rp_db_close(db);
    return status;
}
