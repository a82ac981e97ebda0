/*
 * fuzz_peer_request.c — libFuzzer target for the relay's intake (DESIGN.md "fuzz_peer_request",
 * issue #16): raw HTTP request bytes -> the hub's HTTP server parser (broker/http_server.c) ->
 * the relay's request handling (authentication, TS002 decode, SenderID check, rate limit,
 * answers vs requests, the routing decision, transactions, failure answers), against an
 * in-memory routing table (LMDB in a temp directory) and member registry.
 *
 * Nothing is sent on the network: the bytes go through a socketpair adopted by the server
 * (hs_server_adopt), and every member endpoint has a host name under .invalid that is never
 * resolved (PEER_ENDPOINT_NO_RESOLVE), so each forward fails inside the client pool and the
 * relay answers the sender with its failure answer. The listener exists (the server needs one)
 * but nothing connects to it.
 *
 * World: the e2e roaming world (tests/e2e/roaming_world.py) — A 000013 (forwarder, sync,
 * 26000000/7), B 000505 (home, async answers, 0A000000/7, JoinEUI 70b3d57ed0000505), C 000707
 * (sync, 0E000000/7), a Join Server js1 (JoinEUI 70b3d57ed000aaaa), policies A->B, A->C. Bearer
 * keys "fuzz-key-A", "fuzz-key-B", "fuzz-key-C", "fuzz-key-JS" (the corpus uses them; see
 * tests/fuzz/capture_peer_requests.py). Development loopback identity is on for A, so requests
 * without credentials from the (fake) loopback peer reach the SenderID path too.
 *
 * Checked after every input, besides the sanitizers: the connection is gone once the client
 * closed, and no relay transaction, pending entry or inbox item is left behind.
 */
#include "arena.h"
#include "http_server.h"
#include "peer_client.h"
#include "peer_registry.h"
#include "pending.h"
#include "relay.h"
#include "relay_ts002.h"
#include "rh_log.h"
#include "rp.h"
#include "rp_json.h"
#include "worker.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/sha.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static const char *TABLE =
    "{\"networks\":[{\"net_id\":\"000013\",\"name\":\"A\"},{\"net_id\":\"000505\",\"name\":\"B\"},"
    "{\"net_id\":\"000707\",\"name\":\"C\"},{\"net_id\":\"000808\",\"name\":\"JS operator\"}],"
    "\"devaddr_blocks\":[{\"prefix\":\"26000000/7\",\"net_id\":\"000013\"},"
    "{\"prefix\":\"0A000000/7\",\"net_id\":\"000505\"},{\"prefix\":\"0E000000/"
    "7\",\"net_id\":\"000707\"}],"
    "\"join_routes\":[{\"join_eui\":\"70b3d57ed0000505/64\",\"home_net_id\":\"000505\"},"
    "{\"join_eui\":\"70b3d57ed000aaaa/64\",\"join_server_id\":\"js1\"}],"
    "\"policies\":[{\"forwarder_net_id\":\"000013\",\"home_net_id\":\"000505\","
    "\"uplink\":{\"join_request\":true,\"mac_data\":true,\"application_data\":true},"
    "\"downlink\":{\"join_accept\":true,\"mac_data\":true,\"application_data\":true}},"
    "{\"forwarder_net_id\":\"000013\",\"home_net_id\":\"000707\","
    "\"uplink\":{\"application_data\":true,\"signal_quality\":true},\"downlink\":{}}]}";

/* name, NetID, endpoint URL, async, JoinEUI (Join Server) */
static const struct {
    const char *id, *net, *url;
    int async;
    const char *join_eui;
} MEMBERS[] = {
    {"A", "000013", "http://a.invalid/", 0, NULL},
    {"B", "000505", "http://b.invalid/sns", 1, NULL},
    {"C", "000707", "https://c.invalid/", 0, NULL},
    {"JS", "000808", "http://js.invalid/", 0, "70b3d57ed000aaaa"},
};

static struct event_base *base;
static hs_server_t *srv;
static worker_t w;
static peer_registry_slot_t slot;
static atomic_int draining;
static rp_db_t *db;
static char dir[64];

static void die(const char *what, const char *why)
{
    fprintf(stderr, "fuzz_peer_request: %s: %s\n", what, why ? why : "");
    abort();
}

static void cleanup(void)
{
    hs_server_free(srv);
    peer_client_free(w.client);
    event_base_loop(base, EVLOOP_NONBLOCK); /* client callbacks of the last input */
    peer_registry_view_release(&w.view);
    peer_registry_slot_fini(&slot);
    worker_inbox_fini(&w);
    metrics_free(w.metrics);
    pending_free(w.pending);
    rp_reader_free(w.reader);
    rp_db_close(db);
    relay_worker_free(&w);
    event_base_free(base);
    char p[128];
    snprintf(p, sizeof p, "%s/data.mdb", dir);
    unlink(p);
    snprintf(p, sizeof p, "%s/lock.mdb", dir);
    unlink(p);
    rmdir(dir);
}

/* The registry from Member/Endpoint records written as JSON, like the admin API would store. */
static peer_registry_t *build_registry(void)
{
    static ProtobufCMessage *recs[16];
    static const Roamhub__V1__Member *mem[8];
    static const Roamhub__V1__Endpoint *eps[8];
    size_t nm = 0, ne = 0, nr = 0;
    char json[512];
    rh_diag_t d;
    for (size_t i = 0; i < sizeof MEMBERS / sizeof MEMBERS[0]; i++) {
        char key[32];
        unsigned char h[SHA256_DIGEST_LENGTH];
        char hex[2 * SHA256_DIGEST_LENGTH + 1];
        snprintf(key, sizeof key, "fuzz-key-%s", MEMBERS[i].id);
        SHA256((const unsigned char *)key, strlen(key), h);
        for (int k = 0; k < SHA256_DIGEST_LENGTH; k++)
            sprintf(hex + 2 * k, "%02x", h[k]);
        snprintf(json, sizeof json,
                 "{\"id\":\"%s\",\"net_ids\":[\"%s\"],\"api_key_hashes\":[\"%s\"],"
                 "\"rate_limit_per_s\":1000000}",
                 MEMBERS[i].id, MEMBERS[i].net, hex);
        cJSON *o = cJSON_Parse(json);
        if (!o || rp_json_to_record(RP_KIND_MEMBER, o, "member", &recs[nr], &d))
            die("member record", d.text);
        cJSON_Delete(o);
        mem[nm++] = (const Roamhub__V1__Member *)recs[nr++];
        if (MEMBERS[i].join_eui)
            snprintf(json, sizeof json,
                     "{\"id\":\"js1\",\"net_id\":\"%s\",\"join_eui\":\"%s\",\"url\":\"%s\","
                     "\"timeout_ms\":1000}",
                     MEMBERS[i].net, MEMBERS[i].join_eui, MEMBERS[i].url);
        else
            snprintf(json, sizeof json,
                     "{\"id\":\"%s\",\"net_id\":\"%s\",\"url\":\"%s\",\"async_answers\":%s,"
                     "\"timeout_ms\":1000,\"protocol_version\":\"PROTOCOL_VERSION_1_0\"}",
                     MEMBERS[i].id, MEMBERS[i].net, MEMBERS[i].url,
                     MEMBERS[i].async ? "true" : "false");
        o = cJSON_Parse(json);
        if (!o || rp_json_to_record(RP_KIND_ENDPOINT, o, "endpoint", &recs[nr], &d))
            die("endpoint record", d.text);
        cJSON_Delete(o);
        eps[ne++] = (const Roamhub__V1__Endpoint *)recs[nr++];
    }
    static const char *dev[] = {"A"};
    peer_registry_config_t cfg = {.members = mem,
                                  .n_members = nm,
                                  .endpoints = eps,
                                  .n_endpoints = ne,
                                  .dev_loopback_members = dev,
                                  .n_dev_loopback_members = 1,
                                  .endpoint_flags = PEER_ENDPOINT_NO_RESOLVE};
    peer_registry_t *reg = NULL;
    if (peer_registry_new(&cfg, &reg, &d) != RH_OK)
        die("registry", d.text);
    for (size_t i = 0; i < nr; i++)
        protobuf_c_message_free_unpacked(recs[i], NULL);
    return reg;
}

static void init(void)
{
    rh_log_set_level_name("err"); /* the relay logs refusals; not what is fuzzed */
    arena_install_cjson_hooks();
    snprintf(dir, sizeof dir, "/tmp/fuzz-peer-XXXXXX");
    if (!mkdtemp(dir))
        die("mkdtemp", dir);
    rp_db_opts_t o = {0};
    o.no_sync = 1;
    o.map_size = 16 << 20;
    o.no_builder = 1;
    rh_diag_t d;
    if (rp_db_open(dir, &o, &db, &d))
        die("rp_db_open", d.text);
    cJSON *doc = cJSON_Parse(TABLE);
    size_t n = 0;
    if (!doc || rp_json_import(db, "fuzz", doc, 0, &n, &d))
        die("import", d.text);
    cJSON_Delete(doc);
    rp_db_refresh(db);

    base = event_base_new();
    if (!base)
        die("event_base_new", NULL);
    w.base = base;
    w.index = 0;
    w.pending = pending_new(1024, 1);
    w.metrics = metrics_new();
    w.draining = &draining;
    w.dev_loopback = true;
    w.registry = &slot;
    peer_client_opts_t po = {.inflight_divisor = 1};
    if (!w.pending || !w.metrics || worker_inbox_init(&w) != RH_OK ||
        peer_client_new(base, &po, &w.client) != RH_OK || rp_reader_new(db, &w.reader, &d))
        die("worker", d.text);
    if (peer_registry_slot_init(&slot, build_registry()) != RH_OK)
        die("registry slot", NULL);
    worker_set_self(&w);
    hs_opts_t ho = {.bind_addr = "127.0.0.1",
                    .port = 0,
                    .listen_fd = -1,
                    .max_body_bytes = 65536,
                    .handler = relay_ts002_handle_request,
                    .handler_arg = &w};
    srv = hs_server_new(base, &ho);
    if (!srv)
        die("hs_server_new", NULL);
    atexit(cleanup);
}

static int echo = -1; /* FUZZ_PEER_REQUEST_ECHO=1: copy the hub's responses to stderr */

static void drain(int fd)
{
    char sink[4096];
    ssize_t k;
    while ((k = read(fd, sink, sizeof sink)) > 0)
        if (echo)
            fwrite(sink, 1, (size_t)k, stderr);
}

static void run_loop(int rounds)
{
    for (int i = 0; i < rounds; i++)
        event_base_loop(base, EVLOOP_NONBLOCK);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!base)
        init();
    if (echo < 0)
        echo = getenv("FUZZ_PEER_REQUEST_ECHO") != NULL;
    if (size > 70000)
        return 0; /* beyond the body cap plus headers: nothing new to see */
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
        die("socketpair", NULL);
    int bufsz = 1 << 18;
    setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &bufsz, sizeof bufsz);
    setsockopt(sv[0], SOL_SOCKET, SO_RCVBUF, &bufsz, sizeof bufsz);
    fcntl(sv[0], F_SETFL, O_NONBLOCK);
    fcntl(sv[1], F_SETFL, O_NONBLOCK);
    struct sockaddr_in peer = {
        .sin_family = AF_INET, .sin_port = htons(40000), .sin_addr.s_addr = htonl(0x7f000001)};
    hs_server_adopt(srv, sv[0], (struct sockaddr *)&peer);
    size_t off = 0;
    for (int i = 0; i < 64 && off < size; i++) {
        ssize_t k = write(sv[1], data + off, size - off);
        if (k > 0)
            off += (size_t)k;
        run_loop(2);
        drain(sv[1]);
    }
    /* let the relay finish: forwards fail in the client pool on the next loop turns */
    run_loop(16);
    drain(sv[1]);
    close(sv[1]); /* the client goes away: the server closes its side */
    run_loop(16);
    if (hs_server_connections(srv) != 0)
        die("invariant", "a connection outlived its client");
    if (atomic_load(&w.in_flight) != 0)
        die("invariant", "a relay transaction was not freed");
    if (pending_count(w.pending) != 0)
        die("invariant", "a pending-table entry was left behind");
    return 0;
}
