/*
 * rp_fixture.h — shared helpers for the routing-policy unit tests: a fresh LMDB environment in
 * its own mkdtemp directory per test (removed afterwards), and record builders. No fork.
 */
#ifndef RP_FIXTURE_H
#define RP_FIXTURE_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "rp.h"

typedef struct fx {
    char dir[64];
    rp_db_t *db;
    rp_reader_t *r;  /* uses the compiled index when it matches the snapshot */
    rp_reader_t *r2; /* index disabled: always LMDB */
} fx_t;

static inline void fx_rmdir(const char *dir)
{
    char p[128];
    snprintf(p, sizeof p, "%s/data.mdb", dir);
    unlink(p);
    snprintf(p, sizeof p, "%s/lock.mdb", dir);
    unlink(p);
    rmdir(dir);
}

static inline fx_t *fx_open_opts(const rp_db_opts_t *o)
{
    fx_t *f = calloc(1, sizeof *f);
    assert_non_null(f);
    const char *tmp = getenv("TMPDIR");
    snprintf(f->dir, sizeof f->dir, "%s/rp-test-XXXXXX", tmp && strlen(tmp) < 40 ? tmp : "/tmp");
    assert_non_null(mkdtemp(f->dir));
    rp_db_opts_t d = {0};
    d.no_sync = 1;
    d.no_builder = 1; /* index refreshed explicitly: deterministic */
    rh_diag_t diag;
    int rc = rp_db_open(f->dir, o ? o : &d, &f->db, &diag);
    if (rc)
        fail_msg("rp_db_open: %s", diag.text);
    assert_int_equal(rp_reader_new(f->db, &f->r, NULL), RH_OK);
    assert_int_equal(rp_reader_new(f->db, &f->r2, NULL), RH_OK);
    rp_reader_use_index(f->r2, 0);
    return f;
}

static inline int fx_setup(void **state)
{
    *state = fx_open_opts(NULL);
    return 0;
}

static inline int fx_teardown(void **state)
{
    fx_t *f = *state;
    rp_reader_free(f->r);
    rp_reader_free(f->r2);
    rp_db_close(f->db);
    fx_rmdir(f->dir);
    free(f);
    return 0;
}

static inline int fx_block(fx_t *f, uint32_t prefix, unsigned len, uint32_t net_id,
                           const char *tenant, int outside, rh_diag_t *diag)
{
    Roamhub__V1__DevAddrBlock b = ROAMHUB__V1__DEV_ADDR_BLOCK__INIT;
    b.prefix = prefix;
    b.length = len;
    b.net_id = net_id;
    b.tenant_id = (char *)(tenant ? tenant : "");
    b.outside_net_id = outside;
    return rp_put(f->db, "test", RP_KIND_BLOCK, &b.base, RP_PUT_UPSERT, diag);
}

/* flags: bit0..4 uplink jr, mac, app, sq, loc; bit5..7 downlink ja, mac, app. */
static inline int fx_policy(fx_t *f, uint32_t fnet, const char *ften, int has_home,
                            uint32_t hnet, const char *hten, unsigned flags)
{
    Roamhub__V1__RoutingPolicy p = ROAMHUB__V1__ROUTING_POLICY__INIT;
    Roamhub__V1__UplinkPolicy up = ROAMHUB__V1__UPLINK_POLICY__INIT;
    Roamhub__V1__DownlinkPolicy down = ROAMHUB__V1__DOWNLINK_POLICY__INIT;
    p.forwarder_net_id = fnet;
    p.forwarder_tenant_id = (char *)(ften ? ften : "");
    p.has_home = has_home;
    p.home_net_id = hnet;
    p.home_tenant_id = (char *)(hten ? hten : "");
    up.join_request = flags & 1;
    up.mac_data = (flags >> 1) & 1;
    up.application_data = (flags >> 2) & 1;
    up.signal_quality = (flags >> 3) & 1;
    up.localization = (flags >> 4) & 1;
    down.join_accept = (flags >> 5) & 1;
    down.mac_data = (flags >> 6) & 1;
    down.application_data = (flags >> 7) & 1;
    p.uplink = &up;
    p.downlink = &down;
    rh_diag_t d;
    int rc = rp_put(f->db, "test", RP_KIND_POLICY, &p.base, RP_PUT_UPSERT, &d);
    if (rc)
        print_error("policy put: %s\n", d.text);
    return rc;
}

/* DevAddr lookup through the compiled index (refreshed first) and through LMDB: both must
 * agree; returns the result. */
static inline rp_block_match_t fx_lookup(fx_t *f, uint32_t a)
{
    rp_block_match_t m, m2;
    assert_int_equal(rp_db_refresh(f->db), RH_OK);
    assert_int_equal(rp_reader_begin(f->r), RH_OK);
    assert_true(rp_reader_uses_index(f->r));
    assert_int_equal(rp_lookup_devaddr(f->r, a, &m), RH_OK);
    rp_reader_end(f->r);
    assert_int_equal(rp_reader_begin(f->r2), RH_OK);
    assert_false(rp_reader_uses_index(f->r2));
    assert_int_equal(rp_lookup_devaddr(f->r2, a, &m2), RH_OK);
    rp_reader_end(f->r2);
    assert_int_equal(m.found, m2.found);
    if (m.found) {
        assert_int_equal(m.prefix, m2.prefix);
        assert_int_equal(m.length, m2.length);
        assert_int_equal(m.owner.net_id, m2.owner.net_id);
        assert_string_equal(m.owner.tenant_id, m2.owner.tenant_id);
        assert_string_equal(m.cluster_id, m2.cluster_id);
    }
    return m;
}

/* Effective policy through both paths; they must agree. */
static inline rp_policy_eff_t fx_effective(fx_t *f, const rp_party_t *fw, const rp_party_t *hm)
{
    rp_policy_eff_t e, e2;
    assert_int_equal(rp_db_refresh(f->db), RH_OK);
    assert_int_equal(rp_reader_begin(f->r), RH_OK);
    assert_true(rp_reader_uses_index(f->r));
    assert_int_equal(rp_policy_effective(f->r, fw, hm, &e), RH_OK);
    rp_reader_end(f->r);
    assert_int_equal(rp_reader_begin(f->r2), RH_OK);
    assert_int_equal(rp_policy_effective(f->r2, fw, hm, &e2), RH_OK);
    rp_reader_end(f->r2);
    assert_int_equal(e.source, e2.source);
    assert_memory_equal(&e.flags, &e2.flags, sizeof e.flags);
    return e;
}

#endif
