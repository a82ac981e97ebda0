/*
 * test_admin_scope.c — the admin API's security rules on their own (broker/admin_scope.c): the
 * owner of each record kind, what an operator, a NetID-level member key and a tenant key may
 * see and change, the member-only write rules, and conflict messages that must not leak another
 * member's records. No storage, no HTTP.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "admin_scope.h"

#define MINE 0x000013u
#define OTHER 0x000505u

static admin_principal_t principal(int op, uint32_t net, const char *tenant)
{
    admin_principal_t p;
    memset(&p, 0, sizeof p);
    snprintf(p.key_id, sizeof p.key_id, "k");
    p.is_operator = op;
    p.net_id = net;
    snprintf(p.tenant_id, sizeof p.tenant_id, "%s", tenant ? tenant : "");
    return p;
}

/* One record of every kind, owned by (net, tenant) where the kind has an owner. */
typedef struct recs {
    Roamhub__V1__Network net;
    Roamhub__V1__Tenant ten;
    Roamhub__V1__DevAddrBlock blk;
    Roamhub__V1__JoinRoute jr, jr_js;
    Roamhub__V1__RoutingPolicy pol;
    Roamhub__V1__Endpoint ep, ep_js;
    Roamhub__V1__Member mem;
    Roamhub__V1__ApiKey key, key_op;
} recs_t;

static void fill(recs_t *r, uint32_t net, const char *tenant)
{
    char *t = (char *)tenant;
    roamhub__v1__network__init(&r->net);
    r->net.net_id = net;
    roamhub__v1__tenant__init(&r->ten);
    r->ten.net_id = net;
    r->ten.tenant_id = t;
    roamhub__v1__dev_addr_block__init(&r->blk);
    r->blk.net_id = net;
    r->blk.tenant_id = t;
    roamhub__v1__join_route__init(&r->jr);
    r->jr.home_net_id = net;
    r->jr.home_tenant_id = t;
    r->jr.join_server_id = (char *)"";
    roamhub__v1__join_route__init(&r->jr_js);
    r->jr_js.home_net_id = net; /* ignored: the route names a Join Server */
    r->jr_js.join_server_id = (char *)"js1";
    roamhub__v1__routing_policy__init(&r->pol);
    r->pol.forwarder_net_id = net;
    r->pol.forwarder_tenant_id = t;
    r->pol.home_net_id = OTHER == net ? MINE : OTHER; /* the home side does not own it */
    roamhub__v1__endpoint__init(&r->ep);
    r->ep.net_id = net;
    r->ep.tenant_id = t;
    roamhub__v1__endpoint__init(&r->ep_js);
    r->ep_js.net_id = 0;
    r->ep_js.join_eui = 0x70b3d57ed0000001ull;
    roamhub__v1__member__init(&r->mem);
    r->mem.id = (char *)"m";
    roamhub__v1__api_key__init(&r->key);
    r->key.net_id = net;
    r->key.tenant_id = t;
    roamhub__v1__api_key__init(&r->key_op);
    r->key_op.operator_ = 1;
    r->key_op.net_id = net;
}

static void test_owner_of_each_kind(void **state)
{
    (void)state;
    recs_t r;
    fill(&r, MINE, "acme");
    uint32_t net = 0;
    const char *t = NULL;
    struct {
        rp_kind_t kind;
        const ProtobufCMessage *m;
        int owned;
        const char *tenant;
    } cases[] = {
        {RP_KIND_NETWORK, &r.net.base, 1, ""},        {RP_KIND_TENANT, &r.ten.base, 1, "acme"},
        {RP_KIND_BLOCK, &r.blk.base, 1, "acme"},      {RP_KIND_JOIN_ROUTE, &r.jr.base, 1, "acme"},
        {RP_KIND_JOIN_ROUTE, &r.jr_js.base, 0, NULL}, {RP_KIND_POLICY, &r.pol.base, 1, "acme"},
        {RP_KIND_ENDPOINT, &r.ep.base, 1, "acme"},    {RP_KIND_ENDPOINT, &r.ep_js.base, 0, NULL},
        {RP_KIND_MEMBER, &r.mem.base, 0, NULL},       {RP_KIND_API_KEY, &r.key.base, 1, "acme"},
        {RP_KIND_API_KEY, &r.key_op.base, 0, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        net = 0;
        int owned = admin_record_owner(cases[i].kind, cases[i].m, &net, &t);
        if (owned != cases[i].owned)
            fail_msg("case %zu (%s): owned %d, want %d", i, rp_kind_name(cases[i].kind), owned,
                     cases[i].owned);
        if (owned) {
            assert_int_equal(net, MINE);
            assert_string_equal(t, cases[i].tenant);
        }
    }
    /* a policy is the forwarder's, never the home network's */
    assert_int_equal(admin_record_owner(RP_KIND_POLICY, &r.pol.base, &net, &t), 1);
    assert_int_equal(net, MINE);
}

/* Visibility (write = 0) and change (write = 1) for each principal over each record kind. */
static void test_operator_member_tenant_keys(void **state)
{
    (void)state;
    recs_t mine_net, mine_acme, mine_other_tenant, theirs;
    fill(&mine_net, MINE, "");
    fill(&mine_acme, MINE, "acme");
    fill(&mine_other_tenant, MINE, "beta");
    fill(&theirs, OTHER, "");
    admin_principal_t op = principal(1, 0, NULL), member = principal(0, MINE, NULL),
                      tenant = principal(0, MINE, "acme"), stranger = principal(0, 0x000909, NULL);
    recs_t *all[] = {&mine_net, &mine_acme, &mine_other_tenant, &theirs};
    for (int i = 0; i < 4; i++) {
        recs_t *r = all[i];
        const ProtobufCMessage *owned[] = {&r->net.base, &r->ten.base, &r->blk.base, &r->jr.base,
                                           &r->pol.base, &r->ep.base,  &r->key.base};
        rp_kind_t kinds[] = {RP_KIND_NETWORK, RP_KIND_TENANT,   RP_KIND_BLOCK,  RP_KIND_JOIN_ROUTE,
                             RP_KIND_POLICY,  RP_KIND_ENDPOINT, RP_KIND_API_KEY};
        for (int k = 0; k < 7; k++) {
            for (int w = 0; w <= 1; w++) {
                /* the operator reaches everything */
                assert_true(admin_may_touch(&op, kinds[k], owned[k], w));
                /* a stranger nothing of these */
                assert_false(admin_may_touch(&stranger, kinds[k], owned[k], w));
                /* a NetID-level member key: every tenant of its NetID, nothing of others */
                assert_int_equal(admin_may_touch(&member, kinds[k], owned[k], w), r != &theirs);
                /* a tenant key: its tenant's records; its NetID's network record (which has
                 * no tenant) read-only */
                int want = kinds[k] == RP_KIND_NETWORK ? (r != &theirs && !w) : r == &mine_acme;
                if (admin_may_touch(&tenant, kinds[k], owned[k], w) != want)
                    fail_msg("tenant key, record set %d, %s, write %d: want %d", i,
                             rp_kind_name(kinds[k]), w, want);
            }
        }
        /* operator-only records: members, Join Server endpoints and routes, operator keys */
        const ProtobufCMessage *oponly[] = {&r->mem.base, &r->ep_js.base, &r->jr_js.base,
                                            &r->key_op.base};
        rp_kind_t okinds[] = {RP_KIND_MEMBER, RP_KIND_ENDPOINT, RP_KIND_JOIN_ROUTE,
                              RP_KIND_API_KEY};
        for (int k = 0; k < 4; k++) {
            assert_true(admin_may_touch(&op, okinds[k], oponly[k], 1));
            assert_false(admin_may_touch(&member, okinds[k], oponly[k], 0));
            assert_false(admin_may_touch(&tenant, okinds[k], oponly[k], 0));
        }
    }
    /* traffic scope (statistics, capture) */
    assert_true(admin_scope_net(&op, OTHER));
    assert_true(admin_scope_net(&member, MINE));
    assert_false(admin_scope_net(&member, OTHER));
}

static void test_member_write_rules(void **state)
{
    (void)state;
    admin_principal_t op = principal(1, 0, NULL), member = principal(0, MINE, NULL);
    char why[200];
    recs_t r, old;
    fill(&r, MINE, "");
    fill(&old, MINE, "");
    /* networks: created by the operator only; delegated NetIDs are the operator's */
    assert_int_equal(
        admin_member_write_check(&member, RP_KIND_NETWORK, &r.net.base, NULL, why, sizeof why),
        403);
    assert_non_null(strstr(why, "networks are created by the operator"));
    assert_int_equal(
        admin_member_write_check(&op, RP_KIND_NETWORK, &r.net.base, NULL, why, sizeof why), 0);
    assert_int_equal(admin_member_write_check(&member, RP_KIND_NETWORK, &r.net.base, &old.net.base,
                                              why, sizeof why),
                     0);
    uint32_t del[] = {0x600013};
    r.net.delegated_net_ids = del;
    r.net.n_delegated_net_ids = 1;
    assert_int_equal(admin_member_write_check(&member, RP_KIND_NETWORK, &r.net.base, &old.net.base,
                                              why, sizeof why),
                     403);
    assert_non_null(strstr(why, "network.delegated_net_ids"));
    /* blocks outside the NetID: operator only */
    r.blk.outside_net_id = 1;
    assert_int_equal(
        admin_member_write_check(&member, RP_KIND_BLOCK, &r.blk.base, NULL, why, sizeof why), 403);
    assert_non_null(strstr(why, "devaddr_block.outside_net_id"));
    assert_int_equal(
        admin_member_write_check(&op, RP_KIND_BLOCK, &r.blk.base, NULL, why, sizeof why), 0);
    /* TLS file paths: only unchanged ones */
    r.ep.ca_file = (char *)"/etc/passwd";
    r.ep.client_cert_file = (char *)"";
    r.ep.client_key_file = (char *)"";
    old.ep.ca_file = (char *)"";
    old.ep.client_cert_file = (char *)"";
    old.ep.client_key_file = (char *)"";
    assert_int_equal(admin_member_write_check(&member, RP_KIND_ENDPOINT, &r.ep.base, &old.ep.base,
                                              why, sizeof why),
                     403);
    assert_non_null(strstr(why, "TLS file paths are set by the operator"));
    old.ep.ca_file = (char *)"/etc/passwd";
    assert_int_equal(admin_member_write_check(&member, RP_KIND_ENDPOINT, &r.ep.base, &old.ep.base,
                                              why, sizeof why),
                     0);
    /* JoinEUI prefixes of at least 24 bits */
    r.jr.join_eui_length = 16;
    assert_int_equal(
        admin_member_write_check(&member, RP_KIND_JOIN_ROUTE, &r.jr.base, NULL, why, sizeof why),
        403);
    assert_non_null(strstr(why, "at least 24 bits"));
    r.jr.join_eui_length = 24;
    assert_int_equal(
        admin_member_write_check(&member, RP_KIND_JOIN_ROUTE, &r.jr.base, NULL, why, sizeof why),
        0);
}

static void test_conflict_text_hides_other_owners(void **state)
{
    (void)state;
    admin_principal_t op = principal(1, 0, NULL), member = principal(0, MINE, NULL);
    char t[256];
    const char *theirs = "devaddr_block 26010000/17 (owner 000013): overlaps block 26010000/16 "
                         "owned by 000505/acme; ...";
    snprintf(t, sizeof t, "%s", theirs);
    admin_scope_conflict_text(&member, t, sizeof t);
    assert_string_equal(t, "conflicts with an existing record that is not yours");
    snprintf(t, sizeof t, "%s", theirs);
    admin_scope_conflict_text(&op, t, sizeof t);
    assert_string_equal(t, theirs);
    const char *own = "devaddr_block 26010000/17: overlaps block 26010000/16 owned by 000013/acme";
    snprintf(t, sizeof t, "%s", own);
    admin_scope_conflict_text(&member, t, sizeof t);
    assert_string_equal(t, own);
    snprintf(t, sizeof t, "name: too long");
    admin_scope_conflict_text(&member, t, sizeof t);
    assert_string_equal(t, "name: too long");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_owner_of_each_kind),
        cmocka_unit_test(test_operator_member_tenant_keys),
        cmocka_unit_test(test_member_write_rules),
        cmocka_unit_test(test_conflict_text_hides_other_owners),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
