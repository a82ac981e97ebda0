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
#include "route_world.h"

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

/* ---------------------------------------------------------------- table unavailable */

/* A reader that cannot begin (here: already active) refuses with Other, never a guess. */
static void test_table_unavailable(void **state)
{
    world_t *w = *state;
    uint8_t buf[256];
    assert_int_equal(rp_reader_begin(w->f->r), RH_OK);
    route_msg_t m = msg(w->a, ROUTE_UPLINK, B, false, UP_APP("0100000a"), buf);
    route_decision_t d = decide(w, &m);
    assert_refused(&d, BI_RC_OTHER, RP_OUT_UNREACHABLE, "hub routing table unavailable");
    rp_reader_end(w->f->r);
    d = decide(w, &m);
    assert_forward(&d, "epB", A, B, RP_CLASS_UPLINK_APP);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_uplink_by_devaddr_and_policy_classes, world_setup, world_teardown),
        cmocka_unit_test_setup_teardown(test_rejoin_and_mac_downlink_classes, world_setup, world_teardown),
        cmocka_unit_test_setup_teardown(test_uplink_no_route, world_setup, world_teardown),
        cmocka_unit_test_setup_teardown(test_any_transport, world_setup, world_teardown),
        cmocka_unit_test_setup_teardown(test_uplink_malformed_frames, world_setup, world_teardown),
        cmocka_unit_test_setup_teardown(test_join_routes, world_setup, world_teardown),
        cmocka_unit_test_setup_teardown(test_downlinks, world_setup, world_teardown),
        cmocka_unit_test_setup_teardown(test_home_ns, world_setup, world_teardown),
        cmocka_unit_test_setup_teardown(test_other_by_receiver, world_setup, world_teardown),
        cmocka_unit_test_setup_teardown(test_answer_downlink_policy, world_setup, world_teardown),
        cmocka_unit_test_setup_teardown(test_table_unavailable, world_setup, world_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
