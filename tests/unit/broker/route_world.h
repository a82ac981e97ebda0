/*
 * route_world.h — the routing world shared by the broker's routing and relay-core unit tests
 * (test_route.c, test_relay_core.c): a real LMDB routing table (../routing-policy/rp_fixture.h)
 * and a real member registry built from records, plus frame builders. No sockets.
 *
 * World: members A 000202, B 000505, C 000707, D 000404 (no policy at all), J 000808 (operates
 * the Join Servers js1, served by a join route, and js2, reached by its JoinEUI only).
 * Blocks: 04000000/7 -> A, 0A000000/7 -> B, 0E000000/7 -> C, 12000000/7 -> 000909 (no endpoint).
 * Join routes: EUI_C -> home C; EUI_JS -> Join Server js1.
 * Policies (the forwarder's): A->B everything; A->C join_request + application_data only, no
 * signal quality, no localization, no downlink class; no other.
 */
#ifndef ROUTE_WORLD_H
#define ROUTE_WORLD_H

#include "../routing-policy/rp_fixture.h"

#include "peer_registry.h"
#include "route.h"

#include <ctype.h>

#define A 0x000202u
#define B 0x000505u
#define C 0x000707u
#define D 0x000404u
#define J 0x000808u
#define EUI_C 0x70b3d57ed0000001ull
#define EUI_JS 0x70b3d57ed000aaaaull
#define EUI_JS2 0x70b3d57ed000bbbbull
#define EUI_NONE 0x70b3d57ed000ccccull

typedef struct world {
    fx_t *f;
    peer_registry_t *reg;
    const peer_member_t *a, *b, *c, *d, *j;
} world_t;

static inline size_t unhex(const char *s, uint8_t *out)
{
    size_t n = 0;
    for (; s[0] && s[1]; s += 2) {
        unsigned v;
        sscanf(s, "%2x", &v);
        out[n++] = (uint8_t)v;
    }
    return n;
}

static inline void put_network(fx_t *f, uint32_t net_id)
{
    Roamhub__V1__Network n = ROAMHUB__V1__NETWORK__INIT;
    n.net_id = net_id;
    n.name = (char *)"n";
    rh_diag_t d;
    if (rp_put(f->db, "test", RP_KIND_NETWORK, &n.base, RP_PUT_UPSERT, &d))
        fail_msg("network: %s", d.text);
}

static inline void put_join(fx_t *f, uint64_t eui, uint32_t home, const char *js)
{
    Roamhub__V1__JoinRoute r = ROAMHUB__V1__JOIN_ROUTE__INIT;
    r.join_eui_prefix = eui;
    r.join_eui_length = 64;
    r.home_net_id = home;
    r.home_tenant_id = (char *)"";
    r.join_server_id = (char *)(js ? js : "");
    rh_diag_t d;
    if (rp_put(f->db, "test", RP_KIND_JOIN_ROUTE, &r.base, RP_PUT_UPSERT, &d))
        fail_msg("join route: %s", d.text);
}

static inline int world_setup(void **state)
{
    world_t *w = calloc(1, sizeof *w);
    assert_non_null(w);
    w->f = fx_open_opts(NULL);
    fx_t *f = w->f;
    rh_diag_t d;
    uint32_t nets[] = {A, B, C, D, J, 0x000909};
    for (size_t i = 0; i < 6; i++)
        put_network(f, nets[i]);
    assert_int_equal(fx_block(f, 0x04000000, 7, A, NULL, 0, &d), RH_OK);
    assert_int_equal(fx_block(f, 0x0A000000, 7, B, NULL, 0, &d), RH_OK);
    assert_int_equal(fx_block(f, 0x0E000000, 7, C, NULL, 0, &d), RH_OK);
    assert_int_equal(fx_block(f, 0x12000000, 7, 0x000909, NULL, 0, &d), RH_OK);
    put_join(f, EUI_C, C, NULL);
    put_join(f, EUI_JS, 0, "js1");
    assert_int_equal(fx_policy(f, A, NULL, 1, B, NULL, 0xff), RH_OK);
    assert_int_equal(fx_policy(f, A, NULL, 1, C, NULL, 0x05), RH_OK);
    rp_db_refresh(f->db);

    static uint32_t n_a[] = {A}, n_b[] = {B}, n_c[] = {C}, n_d[] = {D}, n_j[] = {J};
    static Roamhub__V1__Member m[5];
    const char *ids[] = {"A", "B", "C", "D", "J"};
    uint32_t *nn[] = {n_a, n_b, n_c, n_d, n_j};
    for (int i = 0; i < 5; i++) {
        roamhub__v1__member__init(&m[i]);
        m[i].id = (char *)ids[i];
        m[i].net_ids = nn[i];
        m[i].n_net_ids = 1;
    }
    static Roamhub__V1__Endpoint e[6];
    const char *eids[] = {"epA", "epB", "epC", "epD", "js1", "js2"};
    uint32_t enet[] = {A, B, C, D, J, J};
    for (int i = 0; i < 6; i++) {
        roamhub__v1__endpoint__init(&e[i]);
        e[i].id = (char *)eids[i];
        e[i].net_id = enet[i];
        e[i].url = (char *)"http://127.0.0.1:9/";
    }
    e[3].net_id = D;
    e[4].join_eui = EUI_JS;
    e[5].join_eui = EUI_JS2;
    e[5].net_id = 0; /* a Join Server with no NetID of its own (one endpoint per NetID) */
    static const Roamhub__V1__Member *mp[5];
    static const Roamhub__V1__Endpoint *ep[6];
    for (int i = 0; i < 5; i++)
        mp[i] = &m[i];
    for (int i = 0; i < 6; i++)
        ep[i] = &e[i];
    peer_registry_config_t cfg = {.members = mp, .n_members = 5, .endpoints = ep, .n_endpoints = 6};
    if (peer_registry_new(&cfg, &w->reg, &d) != RH_OK)
        fail_msg("registry: %s", d.text);
    peer_registry_member_by_netid(w->reg, A, NULL, &w->a);
    peer_registry_member_by_netid(w->reg, B, NULL, &w->b);
    peer_registry_member_by_netid(w->reg, C, NULL, &w->c);
    peer_registry_member_by_netid(w->reg, D, NULL, &w->d);
    peer_registry_member_by_netid(w->reg, J, NULL, &w->j);
    assert_non_null(w->a);
    assert_non_null(w->j);
    *state = w;
    return 0;
}

static inline int world_teardown(void **state)
{
    world_t *w = *state;
    peer_registry_unref(w->reg);
    void *f = w->f;
    fx_teardown(&f);
    free(w);
    return 0;
}

/* A message from member `from` (its NetID as sender party) of kind k to ReceiverID rcv. */
static inline route_msg_t msg(const peer_member_t *from, route_kind_t k, uint64_t rcv,
                              bool rcv_eui, const char *phy_hex, uint8_t *buf)
{
    route_msg_t m;
    memset(&m, 0, sizeof m);
    m.kind = k;
    m.sender = from;
    rp_party_set(&m.sender_party, from->net_ids[0], NULL, NULL);
    m.receiver = rcv;
    m.receiver_is_eui = rcv_eui;
    if (phy_hex) {
        m.phy_len = unhex(phy_hex, buf);
        m.phy = buf;
    }
    m.malformed = BI_RC_MALFORMED_REQUEST;
    return m;
}

#define UP_APP(devaddr_le)                                                                         \
    "40" devaddr_le "00"                                                                           \
    "0100"                                                                                         \
    "01"                                                                                           \
    "aa"                                                                                           \
    "01020304"
#define UP_MAC(devaddr_le)                                                                         \
    "40" devaddr_le "00"                                                                           \
    "0200"                                                                                         \
    "01020304"
#define DOWN_APP                                                                                   \
    "60"                                                                                           \
    "02000004"                                                                                     \
    "00"                                                                                           \
    "0500"                                                                                         \
    "0a"                                                                                           \
    "54972baa"                                                                                     \
    "8b983cd1"
#define JOIN_ACCEPT                                                                                \
    "20"                                                                                           \
    "2023cf335489aae3183c0be0baa8dee5"

static inline const char *join_req(uint64_t join_eui, char out[47])
{
    char *p = out;
    p += sprintf(p, "00");
    for (int i = 0; i < 8; i++)
        p += sprintf(p, "%02x", (unsigned)((join_eui >> (8 * i)) & 0xff));
    sprintf(p, "0807060504030201"
               "0300"
               "09b97b32");
    return out;
}

#endif
