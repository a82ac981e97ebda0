/* Unit tests for broker/pb_router: Packet Broker shared subscription groups on a real worker
 * inbox and event loop, with the gRPC calls replaced by recording fakes (grpc_call_send and
 * grpc_call_queued_bytes are defined here, so the linker takes them instead of grpc_server.o's).
 * Checked: one copy per group balanced round-robin over its streams; a congested stream is
 * skipped without losing messages; filters and tenant scoping choose the home groups; downlinks
 * reach only the forwarder groups with identical IDs; a full queue fails at once and a held
 * message fails after the hold time; a closed stream's share goes to the others; the cluster
 * hooks (cluster_pb.h): a group's queue joined on its first stream and left on its last, a routed
 * message handed on with the local groups named as served, a copy from another node delivered
 * into its group unless that group was served. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pb_router.h"
#include "rh_err.h"

/* ------------------------------------------------------------------ fake calls */

struct grpc_call {
    int sent;         /* messages taken */
    size_t queued;    /* what grpc_call_queued_bytes reports */
    uint8_t last[64]; /* the last message */
    size_t last_len;
};

int grpc_call_send(grpc_call_t *call, const uint8_t *msg, size_t len)
{
    call->sent++;
    call->last_len = len < sizeof call->last ? len : sizeof call->last;
    memcpy(call->last, msg, call->last_len);
    return RH_OK;
}

size_t grpc_call_queued_bytes(const grpc_call_t *call)
{
    return call->queued;
}

/* ------------------------------------------------------------------ world */

static int n_sent, n_full, n_expired;

static void on_sent(worker_t *w, const pb_item_meta_t *m)
{
    (void)w;
    (void)m;
    n_sent++;
}

static void on_fail(worker_t *w, const pb_item_meta_t *m, rp_outcome_t o, const char *why)
{
    (void)w;
    (void)m;
    (void)why;
    if (o == RP_OUT_UNREACHABLE)
        n_full++;
    else if (o == RP_OUT_TIMEOUT)
        n_expired++;
}

typedef struct world {
    struct event_base *base;
    worker_t w;
    pb_router_t *r;
} world_t;

static int setup(void **st)
{
    world_t *x = calloc(1, sizeof *x);
    x->base = event_base_new();
    x->w.base = x->base;
    assert_int_equal(worker_inbox_init(&x->w), RH_OK);
    pb_router_hooks_t hooks = {.on_sent = on_sent, .on_fail = on_fail};
    x->r = pb_router_new(16, 150, &hooks);
    assert_non_null(x->r);
    assert_int_equal(pb_router_worker_start(x->r, &x->w), RH_OK);
    n_sent = n_full = n_expired = 0;
    *st = x;
    return 0;
}

static int teardown(void **st)
{
    world_t *x = *st;
    pb_router_worker_stop(x->r, &x->w);
    worker_inbox_fini(&x->w);
    pb_router_free(x->r);
    event_base_free(x->base);
    free(x);
    return 0;
}

/* Runs the worker's loop for ms milliseconds (inbox wakes, sweeps). */
static void run(world_t *x, unsigned ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    event_base_loopexit(x->base, &tv);
    event_base_dispatch(x->base);
}

static pb_ids_t ids(uint32_t net, const char *tenant, const char *cluster)
{
    pb_ids_t i;
    memset(&i, 0, sizeof i);
    i.net_id = net;
    strcpy(i.tenant, tenant);
    strcpy(i.cluster, cluster);
    return i;
}

static pb_stream_t *sub(world_t *x, grpc_call_t *c, pb_role_t role, pb_ids_t i, const char *g,
                        pb_filter_set_t *fs)
{
    pb_stream_t *s = NULL;
    assert_int_equal(pb_router_subscribe(x->r, &x->w, c, role, &i, g, fs, &s), RH_OK);
    assert_ptr_equal(pb_stream_call(s), c);
    return s;
}

static uint8_t *enc(bool meta, void *arg, size_t *len)
{
    const char *text = arg;
    *len = strlen(text) + 1;
    uint8_t *b = malloc(*len);
    memcpy(b, text, *len);
    b[0] = meta ? b[0] : (uint8_t)'-'; /* marks a copy encoded without metadata */
    return b;
}

static int up(world_t *x, uint32_t home, const char *tenant, const pb_uplink_facts_t *f,
              const char *text)
{
    pb_item_meta_t m = {.fwd_net_id = 0x14, .home_net_id = home, .cls = RP_CLASS_UPLINK_APP};
    pb_router_new_id(x->r, m.id);
    return pb_router_route_uplink(x->r, &x->w, home, tenant, f, enc, (void *)text, &m);
}

static const pb_uplink_facts_t DATA = {.is_data = true, .dev_addr = 0x26011234, .f_port = 1};

static void test_one_copy_per_group_balanced(void **st)
{
    world_t *x = *st;
    grpc_call_t c[5];
    memset(c, 0, sizeof c);
    pb_ids_t h = ids(0x13, "", "nam1");
    for (int i = 0; i < 4; i++)
        sub(x, &c[i], PB_ROLE_HOME, h, "nam1", NULL);
    sub(x, &c[4], PB_ROLE_HOME, h, "other", NULL);
    for (int i = 0; i < 12; i++)
        assert_int_equal(up(x, 0x13, "", &DATA, "msg"), 2); /* two groups */
    run(x, 50);
    for (int i = 0; i < 4; i++)
        assert_int_equal(c[i].sent, 3);
    assert_int_equal(c[4].sent, 12);
    assert_int_equal(n_sent, 24);
    pb_router_stats_t ps;
    pb_router_stats(x->r, &ps);
    assert_int_equal(ps.groups, 2);
    assert_int_equal(ps.streams, 5);
    assert_int_equal(ps.queued, 0);
    /* another NetID's uplinks reach none of them */
    assert_int_equal(up(x, 0x99, "", &DATA, "msg"), 0);

    /* a congested stream is skipped; nothing is lost */
    c[0].queued = PB_STREAM_HIGH_WATER + 1;
    for (int i = 0; i < 8; i++)
        up(x, 0x13, "", &DATA, "msg");
    run(x, 50);
    assert_int_equal(c[0].sent, 3);
    assert_int_equal(c[1].sent + c[2].sent + c[3].sent, 9 + 8);
    /* it reads again: the sweep takes it back into the rotation */
    c[0].queued = 0;
    run(x, 250);
    for (int i = 0; i < 6; i++)
        up(x, 0x13, "", &DATA, "msg");
    run(x, 50);
    assert_true(c[0].sent > 3);
    assert_int_equal(c[0].sent + c[1].sent + c[2].sent + c[3].sent, 12 + 8 + 6);
}

static void test_closed_stream_share_goes_to_others(void **st)
{
    world_t *x = *st;
    grpc_call_t c[2];
    memset(c, 0, sizeof c);
    pb_ids_t h = ids(0x13, "", "");
    pb_stream_t *s0 = sub(x, &c[0], PB_ROLE_HOME, h, "default", NULL);
    sub(x, &c[1], PB_ROLE_HOME, h, "default", NULL);
    for (int i = 0; i < 4; i++)
        up(x, 0x13, "", &DATA, "msg");
    pb_router_stream_closed(x->r, s0); /* before its wake ran: its tokens move */
    run(x, 50);
    assert_int_equal(c[0].sent, 0);
    assert_int_equal(c[1].sent, 4);
    assert_int_equal(n_sent, 4);
}

static void test_filters_and_tenants(void **st)
{
    world_t *x = *st;
    grpc_call_t c[4];
    memset(c, 0, sizeof c);
    /* group A: FPort 2..5 with metadata off; group B: no filter; tenants t1 / t2 / "" */
    Org__Packetbroker__V3__RoutingFilter f = ORG__PACKETBROKER__V3__ROUTING_FILTER__INIT;
    Org__Packetbroker__V3__RoutingFilter__MACPayload mac =
        ORG__PACKETBROKER__V3__ROUTING_FILTER__MACPAYLOAD__INIT;
    Org__Packetbroker__V3__RoutingFilter__MACPayload__FPortRange r =
        ORG__PACKETBROKER__V3__ROUTING_FILTER__MACPAYLOAD__FPORT_RANGE__INIT;
    Org__Packetbroker__V3__RoutingFilter__MACPayload__FPortRange *rr[] = {&r};
    Google__Protobuf__BoolValue off = GOOGLE__PROTOBUF__BOOL_VALUE__INIT;
    r.low = 2;
    r.high = 5;
    mac.f_port_ranges = rr;
    mac.n_f_port_ranges = 1;
    f.message_case = ORG__PACKETBROKER__V3__ROUTING_FILTER__MESSAGE_MAC;
    f.mac = &mac;
    f.gateway_metadata = &off;
    Org__Packetbroker__V3__RoutingFilter *fs[] = {&f};
    pb_filter_set_t *set = NULL;
    assert_int_equal(pb_filter_set_new(fs, 1, &set, NULL), RH_OK);
    sub(x, &c[0], PB_ROLE_HOME, ids(0x13, "", ""), "filtered", set);
    sub(x, &c[1], PB_ROLE_HOME, ids(0x13, "t1", ""), "default", NULL);
    sub(x, &c[2], PB_ROLE_HOME, ids(0x13, "t2", ""), "default", NULL);
    sub(x, &c[3], PB_ROLE_FORWARDER, ids(0x13, "", ""), "default", NULL); /* wrong role */
    pb_uplink_facts_t p3 = DATA;
    p3.f_port = 3;
    assert_int_equal(up(x, 0x13, "t1", &DATA, "fport1"), 1); /* t1 only: FPort 1 filtered */
    assert_int_equal(up(x, 0x13, "t1", &p3, "fport3"), 2);   /* t1 and the NetID-wide group */
    assert_int_equal(up(x, 0x13, "", &p3, "fport3"), 1);     /* a NetID-wide block: "" only */
    run(x, 50);
    assert_int_equal(c[0].sent, 2);
    assert_string_equal((char *)c[0].last, "-port3"); /* encoded without metadata */
    assert_int_equal(c[1].sent, 2);
    assert_string_equal((char *)c[1].last, "fport3");
    assert_int_equal(c[2].sent, 0);
    assert_int_equal(c[3].sent, 0);
}

static void test_downlink_exact_ids(void **st)
{
    world_t *x = *st;
    grpc_call_t c[3];
    memset(c, 0, sizeof c);
    sub(x, &c[0], PB_ROLE_FORWARDER, ids(0x14, "tenant-a", "eu1"), "eu1", NULL);
    sub(x, &c[1], PB_ROLE_FORWARDER, ids(0x14, "tenant-a", "eu2"), "eu2", NULL);
    sub(x, &c[2], PB_ROLE_HOME, ids(0x14, "tenant-a", "eu1"), "eu1", NULL);
    pb_item_meta_t m = {.fwd_net_id = 0x14, .home_net_id = 0x13, .cls = RP_CLASS_DOWNLINK_APP};
    pb_ids_t want = ids(0x14, "tenant-a", "eu1");
    assert_int_equal(pb_router_route_downlink(x->r, &x->w, &want, (const uint8_t *)"dl", 3, &m), 1);
    pb_ids_t other = ids(0x14, "tenant-A", "eu1"); /* byte for byte: case matters */
    assert_int_equal(pb_router_route_downlink(x->r, &x->w, &other, (const uint8_t *)"x", 2, &m), 0);
    run(x, 50);
    assert_int_equal(c[0].sent, 1);
    assert_string_equal((char *)c[0].last, "dl");
    assert_int_equal(c[1].sent + c[2].sent, 0);
}

static void test_queue_full_and_hold_time(void **st)
{
    world_t *x = *st;
    grpc_call_t c;
    memset(&c, 0, sizeof c);
    pb_stream_t *s = sub(x, &c, PB_ROLE_HOME, ids(0x13, "", ""), "g", NULL);
    pb_router_stream_closed(x->r, s); /* the agent is reconnecting: the group stays */
    for (int i = 0; i < 20; i++)
        assert_int_equal(up(x, 0x13, "", &DATA, "msg"), 1);
    assert_int_equal(n_full, 4); /* queue_max 16 */
    pb_router_stats_t ps;
    pb_router_stats(x->r, &ps);
    assert_int_equal(ps.queued, 16);
    assert_int_equal(ps.queued_bytes, 16 * 4);
    assert_int_equal(ps.streams, 0);
    /* a stream coming back in time takes what waits */
    grpc_call_t c2;
    memset(&c2, 0, sizeof c2);
    sub(x, &c2, PB_ROLE_HOME, ids(0x13, "", ""), "g", NULL);
    run(x, 50);
    assert_int_equal(c2.sent, 16);
    assert_int_equal(n_expired, 0);
    /* a stream that does not read: its messages fail after the hold time (150 ms) */
    c2.queued = PB_STREAM_HIGH_WATER + 1;
    for (int i = 0; i < 3; i++)
        up(x, 0x13, "", &DATA, "msg");
    run(x, 50);
    assert_int_equal(n_expired, 0);
    pb_router_stats(x->r, &ps);
    assert_int_equal(ps.queued, 3);
    run(x, 400);
    assert_int_equal(n_expired, 3);
    pb_router_stats(x->r, &ps);
    assert_int_equal(ps.queued, 0);
    assert_int_equal(n_sent, 16);
}

static void test_idle_group_forgotten(void **st)
{
    world_t *x = *st;
    grpc_call_t c;
    memset(&c, 0, sizeof c);
    pb_stream_t *s = sub(x, &c, PB_ROLE_HOME, ids(0x13, "", ""), "g", NULL);
    pb_router_stream_closed(x->r, s);
    pb_router_stats_t ps;
    pb_router_stats(x->r, &ps);
    assert_int_equal(ps.groups, 1);
    run(x, 500); /* > hold_ms after it became idle */
    pb_router_stats(x->r, &ps);
    assert_int_equal(ps.groups, 0);
    assert_int_equal(up(x, 0x13, "", &DATA, "msg"), 0); /* no group: no route */
}

static void test_ids_unique(void **st)
{
    world_t *x = *st;
    char a[40], b[40];
    pb_router_new_id(x->r, a);
    pb_router_new_id(x->r, b);
    assert_int_equal(strlen(a), 32);
    assert_string_not_equal(a, b);
    assert_memory_equal(a, b, 16); /* one process prefix */
}

/* ------------------------------------------------------------------ cluster hooks */

static struct {
    int up, down, published;
    char qname[4][PB_QNAME_LEN];
    pb_group_key_t key;
    char skip[4][PB_QNAME_LEN];
    size_t nskip;
    bool local_only_seen;
    char enc0[16], enc1[16];
} cl;

static void *cl_up(void *arg, const pb_group_key_t *k, const char *qname)
{
    (void)arg;
    snprintf(cl.qname[cl.up % 4], PB_QNAME_LEN, "%s", qname);
    cl.key = *k;
    cl.up++;
    return &cl; /* any non-NULL handle */
}

static void cl_down(void *arg, void *handle)
{
    (void)arg;
    assert_ptr_equal(handle, &cl);
    cl.down++;
}

static bool cl_publish(void *arg, worker_t *w, const pb_remote_msg_t *m)
{
    (void)arg;
    (void)w;
    cl.published++;
    cl.nskip = m->nskip;
    for (size_t i = 0; i < m->nskip && i < 4; i++)
        snprintf(cl.skip[i], PB_QNAME_LEN, "%s", m->skip[i]);
    snprintf(cl.enc0, sizeof cl.enc0, "%s", (const char *)m->enc[0]);
    snprintf(cl.enc1, sizeof cl.enc1, "%s", (const char *)m->enc[1]);
    cl.local_only_seen = m->meta->local_only;
    return true;
}

static void test_cluster_hooks_skip_and_deliver(void **st)
{
    world_t *x = *st;
    memset(&cl, 0, sizeof cl);
    pb_router_cluster_t ops = {.group_up = cl_up, .group_down = cl_down, .publish = cl_publish};
    pb_router_set_cluster(x->r, &ops);
    grpc_call_t c[3];
    memset(c, 0, sizeof c);
    pb_ids_t h = ids(0x13, "", "nam1");
    /* the first open stream of a group joins its queue; the second does not */
    pb_stream_t *s0 = sub(x, &c[0], PB_ROLE_HOME, h, "nam1", NULL);
    pb_stream_t *s1 = sub(x, &c[1], PB_ROLE_HOME, h, "nam1", NULL);
    assert_int_equal(cl.up, 1);
    assert_string_equal(cl.key.name, "nam1");
    assert_int_equal(cl.key.ids.net_id, 0x13);
    assert_int_equal(strlen(cl.qname[0]), PB_QNAME_LEN - 1);
    char q_nam1[PB_QNAME_LEN];
    memcpy(q_nam1, cl.qname[0], sizeof q_nam1);
    /* routed here: the local group takes a copy, and it is handed to the cluster with the
     * local group named as served (skipped there) and both encodings */
    assert_int_equal(up(x, 0x13, "", &DATA, "msg"), 2); /* 1 local group + the cluster */
    assert_int_equal(cl.published, 1);
    assert_int_equal(cl.nskip, 1);
    assert_string_equal(cl.skip[0], q_nam1);
    assert_string_equal(cl.enc1, "msg");
    assert_string_equal(cl.enc0, "-sg");
    /* a home network bridged when no local group takes it: not handed to the cluster */
    pb_item_meta_t lo = {.fwd_net_id = 0x14, .home_net_id = 0x77, .local_only = true};
    assert_int_equal(pb_router_route_uplink(x->r, &x->w, 0x77, "", &DATA, enc, "m", &lo), 0);
    assert_int_equal(cl.published, 1);
    /* no local group: only the cluster */
    pb_item_meta_t m = {.fwd_net_id = 0x14, .home_net_id = 0x55};
    assert_int_equal(pb_router_route_uplink(x->r, &x->w, 0x55, "", &DATA, enc, "m", &m), 1);
    assert_int_equal(cl.nskip, 0);
    run(x, 50);
    assert_int_equal(c[0].sent + c[1].sent, 1);

    /* a copy another node routed: delivered into the named group, unless skipped there or
     * for another tenant */
    const char *skip_none[1] = {"gffffffffffffffff"};
    const char *skip_it[1] = {q_nam1};
    pb_item_meta_t rm = {.fwd_net_id = 0x14, .home_net_id = 0x13, .local_only = true};
    pb_remote_msg_t r = {.role = PB_ROLE_HOME, .net_id = 0x13, .tenant = "t1", .cluster = "",
                         .skip = skip_none, .nskip = 1,
                         .enc = {(const uint8_t *)"-emote", (const uint8_t *)"remote"},
                         .enc_len = {7, 7}, .facts = &DATA, .meta = &rm};
    assert_int_equal(pb_router_deliver(x->r, &x->w, &cl.key, &r), 1);
    r.skip = skip_it;
    assert_int_equal(pb_router_deliver(x->r, &x->w, &cl.key, &r), 0);
    pb_group_key_t gone = cl.key;
    strcpy(gone.name, "gone");
    r.skip = skip_none;
    assert_int_equal(pb_router_deliver(x->r, &x->w, &gone, &r), 0);
    run(x, 50);
    assert_int_equal(c[0].sent + c[1].sent, 2);
    assert_true(!strcmp((char *)c[0].last, "remote") || !strcmp((char *)c[1].last, "remote"));
    /* the last open stream closing leaves the queue */
    pb_router_stream_closed(x->r, s0);
    assert_int_equal(cl.down, 0);
    pb_router_stream_closed(x->r, s1);
    assert_int_equal(cl.down, 1);
    /* a stream of another group on the same NetID gets another queue name */
    sub(x, &c[2], PB_ROLE_HOME, h, "other", NULL);
    assert_int_equal(cl.up, 2);
    assert_string_not_equal(cl.qname[1], q_nam1);
    pb_router_set_cluster(x->r, NULL); /* the groups forget their handles: no down at free */
    assert_int_equal(cl.down, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_one_copy_per_group_balanced, setup, teardown),
        cmocka_unit_test_setup_teardown(test_closed_stream_share_goes_to_others, setup, teardown),
        cmocka_unit_test_setup_teardown(test_filters_and_tenants, setup, teardown),
        cmocka_unit_test_setup_teardown(test_downlink_exact_ids, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_full_and_hold_time, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idle_group_forgotten, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ids_unique, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cluster_hooks_skip_and_deliver, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
