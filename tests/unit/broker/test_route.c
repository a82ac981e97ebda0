/*
 * test_route.c — the relay's routing decision (broker/route.c) on its own: no sockets, no event
 * loop, no transaction. A real LMDB routing table (tests/unit/routing-policy/rp_fixture.h) and a
 * real member registry built from records; each case builds a protocol-neutral route_msg_t and
 * checks the decision or the refusal (ResultCode, outcome, description).
 *
 * World: members A 000202, B 000505, C 000707, D 000404 (no policy at all), J 000808 (operates
 * the Join Servers js1, served by a join route, and js2, reached by its JoinEUI only).
 * Blocks: 04000000/7 -> A, 0A000000/7 -> B, 0E000000/7 -> C, 12000000/7 -> 000909 (no endpoint).
 * Join routes: EUI_C -> home C; EUI_JS -> Join Server js1.
 * Policies (the forwarder's): A->B everything; A->C join_request + application_data only, no
 * signal quality, no localization, no downlink class; no other.
 */
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

static size_t unhex(const char *s, uint8_t *out)
{
    size_t n = 0;
    for (; s[0] && s[1]; s += 2) {
        unsigned v;
        sscanf(s, "%2x", &v);
        out[n++] = (uint8_t)v;
    }
    return n;
}

static void put_network(fx_t *f, uint32_t net_id)
{
    Roamhub__V1__Network n = ROAMHUB__V1__NETWORK__INIT;
    n.net_id = net_id;
    n.name = (char *)"n";
    rh_diag_t d;
    if (rp_put(f->db, "test", RP_KIND_NETWORK, &n.base, RP_PUT_UPSERT, &d))
        fail_msg("network: %s", d.text);
}

static void put_join(fx_t *f, uint64_t eui, uint32_t home, const char *js)
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

static int setup(void **state)
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

static int teardown(void **state)
{
    world_t *w = *state;
    peer_registry_unref(w->reg);
    void *f = w->f;
    fx_teardown(&f);
    free(w);
    return 0;
}

/* A message from member `from` (its NetID as sender party) of kind k to ReceiverID rcv. */
static route_msg_t msg(const peer_member_t *from, route_kind_t k, uint64_t rcv, bool rcv_eui,
                       const char *phy_hex, uint8_t *buf)
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

static route_decision_t decide(world_t *w, const route_msg_t *m)
{
    route_decision_t d;
    memset(&d, 0x5a, sizeof d); /* route_decide must fill everything */
    route_decide(m, w->f->r, w->reg, &d);
    return d;
}

static void assert_refused(const route_decision_t *d, bi_result_code_t code, rp_outcome_t out,
                           const char *desc_part)
{
    assert_int_equal(d->action, ROUTE_REFUSE);
    assert_int_equal(d->code, code);
    assert_int_equal(d->outcome, out);
    if (!strstr(d->description, desc_part))
        fail_msg("description \"%s\" lacks \"%s\"", d->description, desc_part);
    assert_null(d->recv_ep);
}

static void assert_forward(const route_decision_t *d, const char *ep_id, uint32_t fwd,
                           uint32_t home, rp_class_t cls)
{
    if (d->action != ROUTE_FORWARD)
        fail_msg("refused: %s", d->description);
    assert_non_null(d->recv_ep);
    assert_string_equal(d->recv_ep->id, ep_id);
    assert_int_equal(d->fwd.net_id, fwd);
    assert_int_equal(d->home.net_id, home);
    assert_int_equal(d->cls, cls);
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

static const char *join_req(uint64_t join_eui, char out[47])
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

/* ---------------------------------------------------------------- uplinks */

static void test_uplink_by_devaddr_and_policy_classes(void **state)
{
    world_t *w = *state;
    uint8_t buf[256];
    route_msg_t m = msg(w->a, ROUTE_UPLINK, C, false, UP_APP("0100000a"), buf); /* ReceiverID C */
    route_decision_t d = decide(w, &m);
    assert_forward(&d, "epB", A, B, RP_CLASS_UPLINK_APP); /* the frame decides, not ReceiverID */
    assert_int_equal(d.strip, 0);
    m = msg(w->a, ROUTE_UPLINK, B, false, UP_MAC("0100000a"), buf);
    d = decide(w, &m);
    assert_forward(&d, "epB", A, B, RP_CLASS_UPLINK_MAC);
    /* A->C: application data allowed, stripped of signal quality and localization */
    m = msg(w->a, ROUTE_UPLINK, C, false, UP_APP("0100000e"), buf);
    d = decide(w, &m);
    assert_forward(&d, "epC", A, C, RP_CLASS_UPLINK_APP);
    assert_int_equal(d.strip, ROUTE_STRIP_SIGNAL | ROUTE_STRIP_LOCATION);
    /* A->C: MAC data refused by the flag */
    m = msg(w->a, ROUTE_UPLINK, C, false, UP_MAC("0100000e"), buf);
    d = decide(w, &m);
    assert_refused(&d, BI_RC_NO_ROAMING_AGREEMENT, RP_OUT_POLICY_DENIED,
                   "routing policy 000202 -> 000707 does not allow uplink mac_data");
    assert_int_equal(d.cls, RP_CLASS_UPLINK_MAC);
    assert_int_equal(d.home.net_id, C); /* parties known for the statistics */
    /* D has no policy at all */
    m = msg(w->d, ROUTE_UPLINK, B, false, UP_APP("0100000a"), buf);
    d = decide(w, &m);
    assert_refused(&d, BI_RC_NO_ROAMING_AGREEMENT, RP_OUT_POLICY_DENIED,
                   "no routing policy from forwarder 000404 to home network 000505");
}

/* Rejoin-requests are join-requests for the policy and go by ReceiverID; MAC downlinks have
 * their own downlink class. */
static void test_rejoin_and_mac_downlink_classes(void **state)
{
    world_t *w = *state;
    uint8_t buf[256];
    route_msg_t m = msg(w->a, ROUTE_UPLINK, B, false,
                        "c0"
                        "00"
                        "050500"
                        "0807060504030201"
                        "0000"
                        "01020304",
                        buf);
    route_decision_t d = decide(w, &m);
    assert_forward(&d, "epB", A, B, RP_CLASS_JOIN_REQUEST);
    m = msg(w->b, ROUTE_DOWNLINK, A, false,
            "60"
            "02000004"
            "00"
            "0600"
            "8b983cd1",
            buf);
    d = decide(w, &m);
    assert_forward(&d, "epA", A, B, RP_CLASS_DOWNLINK_MAC);
    m = msg(w->c, ROUTE_DOWNLINK, A, false,
            "60"
            "02000004"
            "00"
            "0600"
            "8b983cd1",
            buf);
    d = decide(w, &m);
    assert_refused(&d, BI_RC_NO_ROAMING_AGREEMENT, RP_OUT_POLICY_DENIED,
                   "routing policy 000202 -> 000707 does not allow downlink mac_data");
}

static void test_uplink_no_route(void **state)
{
    world_t *w = *state;
    uint8_t buf[256];
    route_msg_t m = msg(w->a, ROUTE_UPLINK, B, false, UP_APP("01000016"), buf);
    route_decision_t d = decide(w, &m);
    assert_refused(&d, BI_RC_UNKNOWN_DEV_ADDR, RP_OUT_NO_ROUTE,
                   "DevAddr 16000001 is in no DevAddr block at this hub");
    m = msg(w->a, ROUTE_UPLINK, B, false, UP_APP("01000012"), buf);
    d = decide(w, &m);
    assert_refused(&d, BI_RC_UNKNOWN_DEV_ADDR, RP_OUT_NO_ROUTE,
                   "network 000909 has no endpoint at this hub");
    /* never back to the sender: A's own block */
    m = msg(w->a, ROUTE_UPLINK, B, false, UP_APP("01000004"), buf);
    d = decide(w, &m);
    assert_refused(&d, BI_RC_UNKNOWN_DEV_ADDR, RP_OUT_NO_ROUTE,
                   "the destination 000202 is the sender's own network: not routed back");
    /* no PHYPayload: by ReceiverID, which must be a NetID and not the sender's */
    m = msg(w->a, ROUTE_UPLINK, B, false, NULL, buf);
    d = decide(w, &m);
    assert_forward(&d, "epB", A, B, RP_CLASS_OTHER);
    m = msg(w->a, ROUTE_UPLINK, EUI_C, true, NULL, buf);
    d = decide(w, &m);
    assert_refused(&d, BI_RC_UNKNOWN_RECEIVER, RP_OUT_NO_ROUTE, "ReceiverID is not a NetID");
    m = msg(w->a, ROUTE_UPLINK, A, false, NULL, buf);
    d = decide(w, &m);
    assert_refused(&d, BI_RC_UNKNOWN_RECEIVER, RP_OUT_NO_ROUTE, "not routed back");
}

/* A front end that reaches parties itself (Packet Broker gRPC subscriptions): a destination
 * without a TS002 endpoint is decided (recv_ep NULL) instead of refused, policy still applies,
 * and without a sender member the sender's own NetID is never the destination. */
static void test_any_transport(void **state)
{
    world_t *w = *state;
    uint8_t buf[256];
    route_msg_t m = msg(w->a, ROUTE_UPLINK, B, false, UP_APP("01000012"), buf);
    m.any_transport = true;
    route_decision_t d = decide(w, &m);
    assert_refused(&d, BI_RC_NO_ROAMING_AGREEMENT, RP_OUT_POLICY_DENIED,
                   "no routing policy from forwarder 000202 to home network 000909");
    assert_int_equal(fx_policy(w->f, A, NULL, 1, 0x000909, NULL, 0xff), RH_OK);
    rp_db_refresh(w->f->db);
    d = decide(w, &m);
    assert_int_equal(d.action, ROUTE_FORWARD);
    assert_null(d.recv_ep);
    assert_int_equal(d.home.net_id, 0x000909);
    assert_int_equal(d.cls, RP_CLASS_UPLINK_APP);
    /* a party that has an endpoint still gets it */
    m = msg(w->a, ROUTE_UPLINK, B, false, UP_APP("0100000a"), buf);
    m.any_transport = true;
    d = decide(w, &m);
    assert_forward(&d, "epB", A, B, RP_CLASS_UPLINK_APP);
    /* no member for the sender (a gRPC caller known only by its token): its own block */
    m = msg(w->a, ROUTE_UPLINK, B, false, UP_APP("01000012"), buf);
    m.any_transport = true;
    m.sender = NULL;
    rp_party_set(&m.sender_party, 0x000909, NULL, NULL);
    d = decide(w, &m);
    assert_refused(&d, BI_RC_UNKNOWN_DEV_ADDR, RP_OUT_NO_ROUTE, "not routed back");
    /* without the flag the TS002 rule stands */
    m = msg(w->a, ROUTE_UPLINK, B, false, UP_APP("01000012"), buf);
    d = decide(w, &m);
    assert_refused(&d, BI_RC_UNKNOWN_DEV_ADDR, RP_OUT_NO_ROUTE,
                   "network 000909 has no endpoint at this hub");
}

static void test_uplink_malformed_frames(void **state)
{
    world_t *w = *state;
    uint8_t buf[256];
    route_msg_t m = msg(w->a, ROUTE_UPLINK, B, false, "4001", buf); /* too short */
    route_decision_t d = decide(w, &m);
    assert_refused(&d, BI_RC_FRAME_SIZE_ERROR, RP_OUT_MALFORMED, "PHYPayload: ");
    m = msg(w->a, ROUTE_UPLINK, B, false, DOWN_APP, buf); /* a downlink frame in an uplink */
    m.malformed = BI_RC_MALFORMED_MESSAGE;                /* the sender spoke 1.1 */
    d = decide(w, &m);
    assert_refused(&d, BI_RC_MALFORMED_MESSAGE, RP_OUT_MALFORMED, "is not an uplink frame");
}

static void test_join_routes(void **state)
{
    world_t *w = *state;
    uint8_t buf[256];
    char jr[47];
    /* join route to a home network (ReceiverID ignored) */
    route_msg_t m = msg(w->a, ROUTE_UPLINK, EUI_C, true, join_req(EUI_C, jr), buf);
    route_decision_t d = decide(w, &m);
    assert_forward(&d, "epC", A, C, RP_CLASS_JOIN_REQUEST);
    /* no join route: the ReceiverID NetID the forwarder resolved (HomeNSReq) */
    m = msg(w->a, ROUTE_UPLINK, B, false, join_req(EUI_NONE, jr), buf);
    d = decide(w, &m);
    assert_forward(&d, "epB", A, B, RP_CLASS_JOIN_REQUEST);
    /* a route via a Join Server cannot carry the join-request itself: ReceiverID again */
    m = msg(w->a, ROUTE_UPLINK, EUI_JS, true, join_req(EUI_JS, jr), buf);
    d = decide(w, &m);
    assert_refused(&d, BI_RC_UNKNOWN_DEV_EUI, RP_OUT_NO_ROUTE,
                   "no join route for JoinEUI 70b3d57ed000aaaa DevEUI 0102030405060708");
    /* D: join route found, but no policy */
    m = msg(w->d, ROUTE_UPLINK, EUI_C, true, join_req(EUI_C, jr), buf);
    d = decide(w, &m);
    assert_refused(&d, BI_RC_NO_ROAMING_AGREEMENT, RP_OUT_POLICY_DENIED, "no routing policy");
    /* C's own devices come back to C: never routed back */
    m = msg(w->c, ROUTE_UPLINK, B, false, join_req(EUI_C, jr), buf);
    d = decide(w, &m);
    assert_refused(&d, BI_RC_UNKNOWN_DEV_EUI, RP_OUT_NO_ROUTE, "not routed back");
}

/* ---------------------------------------------------------------- downlinks */

static void test_downlinks(void **state)
{
    world_t *w = *state;
    uint8_t buf[256];
    /* B (home) -> A (forwarder): policy(A -> B).downlink */
    route_msg_t m = msg(w->b, ROUTE_DOWNLINK, A, false, DOWN_APP, buf);
    route_decision_t d = decide(w, &m);
    assert_forward(&d, "epA", A, B, RP_CLASS_DOWNLINK_APP);
    assert_int_equal(d.strip, 0);
    /* C -> A: A's policy towards C allows no downlink class */
    m = msg(w->c, ROUTE_DOWNLINK, A, false, JOIN_ACCEPT, buf);
    d = decide(w, &m);
    assert_refused(&d, BI_RC_NO_ROAMING_AGREEMENT, RP_OUT_POLICY_DENIED,
                   "routing policy 000202 -> 000707 does not allow downlink join_accept");
    m = msg(w->b, ROUTE_DOWNLINK, EUI_C, true, DOWN_APP, buf);
    d = decide(w, &m);
    assert_refused(&d, BI_RC_UNKNOWN_RECEIVER, RP_OUT_NO_ROUTE, "ReceiverID is not a NetID");
    m = msg(w->b, ROUTE_DOWNLINK, A, false, UP_APP("0100000a"), buf);
    d = decide(w, &m);
    assert_refused(&d, BI_RC_MALFORMED_REQUEST, RP_OUT_MALFORMED, "is not a downlink frame");
    m = msg(w->b, ROUTE_DOWNLINK, B, false, DOWN_APP, buf);
    d = decide(w, &m);
    assert_refused(&d, BI_RC_UNKNOWN_RECEIVER, RP_OUT_NO_ROUTE, "not routed back");
    m = msg(w->b, ROUTE_DOWNLINK, 0x000909, false, DOWN_APP, buf);
    d = decide(w, &m);
    assert_refused(&d, BI_RC_UNKNOWN_RECEIVER, RP_OUT_NO_ROUTE, "has no endpoint");
}

/* ---------------------------------------------------------------- HomeNSReq */

static void test_home_ns(void **state)
{
    world_t *w = *state;
    uint8_t buf[256];
    /* a join route to a home network: the hub answers with HNetID */
    route_msg_t m = msg(w->a, ROUTE_HOME_NS, EUI_C, true, NULL, buf);
    m.dev_eui = 0x0102030405060708ull;
    route_decision_t d = decide(w, &m);
    assert_int_equal(d.action, ROUTE_ANSWER);
    assert_int_equal(d.hnet_id, C);
    assert_int_equal(d.cls, RP_CLASS_JOIN_REQUEST);
    assert_null(d.recv_ep);
    /* ... only when A's policy allows join-requests to that home network */
    m.sender = w->d;
    rp_party_set(&m.sender_party, D, NULL, NULL);
    d = decide(w, &m);
    assert_refused(&d, BI_RC_NO_ROAMING_AGREEMENT, RP_OUT_POLICY_DENIED, "no routing policy");
    /* a join route naming a Join Server: relayed to it */
    m = msg(w->a, ROUTE_HOME_NS, EUI_JS, true, NULL, buf);
    d = decide(w, &m);
    assert_int_equal(d.action, ROUTE_FORWARD);
    assert_string_equal(d.recv_ep->id, "js1");
    /* no route, but a member Join Server serves that JoinEUI */
    m = msg(w->a, ROUTE_HOME_NS, EUI_JS2, true, NULL, buf);
    d = decide(w, &m);
    assert_int_equal(d.action, ROUTE_FORWARD);
    assert_string_equal(d.recv_ep->id, "js2");
    m = msg(w->a, ROUTE_HOME_NS, EUI_NONE, true, NULL, buf);
    m.dev_eui = 0x0102030405060708ull;
    d = decide(w, &m);
    assert_refused(&d, BI_RC_UNKNOWN_DEV_EUI, RP_OUT_NO_ROUTE,
                   "no join route for JoinEUI 70b3d57ed000cccc DevEUI 0102030405060708");
    m = msg(w->a, ROUTE_HOME_NS, B, false, NULL, buf);
    d = decide(w, &m);
    assert_refused(&d, BI_RC_UNKNOWN_RECEIVER, RP_OUT_NO_ROUTE,
                   "HomeNSReq: ReceiverID must be a JoinEUI");
}

/* ---------------------------------------------------------------- other messages */

static void test_other_by_receiver(void **state)
{
    world_t *w = *state;
    uint8_t buf[256];
    route_msg_t m = msg(w->a, ROUTE_OTHER, B, false, NULL, buf);
    route_decision_t d = decide(w, &m);
    assert_forward(&d, "epB", A, B, RP_CLASS_OTHER);
    /* B -> A: allowed because A's policy towards B allows something (either direction) */
    m = msg(w->b, ROUTE_OTHER, A, false, NULL, buf);
    d = decide(w, &m);
    assert_forward(&d, "epA", B, A, RP_CLASS_OTHER);
    /* D <-> B: nothing either way */
    m = msg(w->d, ROUTE_OTHER, B, false, NULL, buf);
    d = decide(w, &m);
    assert_refused(&d, BI_RC_NO_ROAMING_AGREEMENT, RP_OUT_POLICY_DENIED, "no routing policy");
    m = msg(w->a, ROUTE_OTHER, EUI_JS, true, NULL, buf);
    d = decide(w, &m);
    assert_int_equal(d.action, ROUTE_FORWARD);
    assert_string_equal(d.recv_ep->id, "js1");
    assert_int_equal(d.home.net_id, J);
    m = msg(w->a, ROUTE_OTHER, EUI_NONE, true, NULL, buf);
    d = decide(w, &m);
    assert_refused(&d, BI_RC_UNKNOWN_RECEIVER, RP_OUT_NO_ROUTE,
                   "no Join Server 70b3d57ed000cccc at this hub");
    m = msg(w->a, ROUTE_OTHER, A, false, NULL, buf);
    d = decide(w, &m);
    assert_refused(&d, BI_RC_UNKNOWN_RECEIVER, RP_OUT_NO_ROUTE, "not routed back");
    m = msg(w->a, ROUTE_OTHER, 0x000909, false, NULL, buf);
    d = decide(w, &m);
    assert_refused(&d, BI_RC_UNKNOWN_RECEIVER, RP_OUT_NO_ROUTE, "has no endpoint");
}

/* ---------------------------------------------------------------- answers carrying downlinks */

static void test_answer_downlink_policy(void **state)
{
    world_t *w = *state;
    uint8_t buf[256], ja[64];
    size_t ja_len = unhex(JOIN_ACCEPT, ja);
    char jr[47], desc[160];
    route_msg_t m = msg(w->a, ROUTE_UPLINK, EUI_C, true, join_req(EUI_C, jr), buf);
    route_decision_t d = decide(w, &m);
    assert_int_equal(d.action, ROUTE_FORWARD);
    assert_true(route_answer_downlink_refused(&d, ja, ja_len, w->f->r, desc, sizeof desc));
    assert_string_equal(desc,
                        "routing policy 000202 -> 000707 does not allow downlink join_accept");
    assert_false(route_answer_downlink_refused(&d, NULL, 0, w->f->r, desc, sizeof desc));
    m = msg(w->a, ROUTE_UPLINK, B, false, join_req(EUI_NONE, jr), buf); /* A -> B: allowed */
    d = decide(w, &m);
    assert_false(route_answer_downlink_refused(&d, ja, ja_len, w->f->r, desc, sizeof desc));
    m = msg(w->c, ROUTE_DOWNLINK, A, false, DOWN_APP, buf); /* not an uplink decision */
    d = decide(w, &m);
    assert_false(route_answer_downlink_refused(&d, ja, ja_len, w->f->r, desc, sizeof desc));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_uplink_by_devaddr_and_policy_classes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rejoin_and_mac_downlink_classes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_uplink_no_route, setup, teardown),
        cmocka_unit_test_setup_teardown(test_any_transport, setup, teardown),
        cmocka_unit_test_setup_teardown(test_uplink_malformed_frames, setup, teardown),
        cmocka_unit_test_setup_teardown(test_join_routes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_downlinks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_home_ns, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_by_receiver, setup, teardown),
        cmocka_unit_test_setup_teardown(test_answer_downlink_policy, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
