#!/usr/bin/env python3
"""Cluster benchmark (issue 13, docs/SCALING.md): failover time after kill -9 of a roamhubd node.

Per run: the deploy/cluster/ example on 127.0.0.1 (tests/cluster/deploy_example.py: 3 nats-server,
3 roamhubd, HAProxy with its readiness checks), members A (forwarder) and B (home, sync). A
member sends PRStartReq through HAProxy on one kept-alive connection; the node holding that
connection (the one whose relayed count grows) is killed with SIGKILL; the member goes on
sending, reconnecting at once when its connection fails. Reported:
  - failover: from the kill to the first Success answer relayed by another node;
  - lost: requests that failed in between (connection reset; the member re-sends them);
  - down: from the kill until HAProxy's readiness check marks the node DOWN (new connections
    never reach it anyway: a refused connect is redispatched).
Reference in the same run: a single node without cluster or HAProxy, killed the same way and
restarted at once (what systemd's Restart= gives a single node): kill to first Success.
Usage: tools/bench/cluster_failover.py [BUILD_DIR] [RUNS]
"""
import http.client
import json
import os
import statistics
import sys
import time

from cluster_bench import arg  # noqa: E402 (sets ROAMHUB_BUILD and sys.path)
RUNS = arg(2, 5)
from deploy_example import ExampleCluster  # noqa: E402
from roamhub_harness import ALL_DOWN, ALL_UP, AdminClient, Hub, Member, pr_start_req  # noqa: E402
from test_cluster import A, B, DATA_APP_B as DATA, table  # noqa: E402  (members A, B and their table)


class Sender:
    """One member connection to host:port, kept alive; send() reconnects after a failure."""

    def __init__(self, port, key):
        self.port, self.key, self.conn = port, key, None

    def send(self):
        """True when the answer was 200 Success."""
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            self.conn.request("POST", "/", json.dumps(pr_start_req(A, B, DATA)),
                              {"Content-Type": "application/json",
                               "Authorization": "Bearer " + self.key})
            r = self.conn.getresponse()
            ans = json.loads(r.read() or b"{}")
            return r.status == 200 and ans.get("Result", {}).get("ResultCode") == "Success"
        except (OSError, http.client.HTTPException, ValueError):
            self.conn.close()
            self.conn = None
            return False


def seed(ex, a, b):
    n1 = ex.nodes[0]
    api = AdminClient(n1)
    tok = api.token(api.operator_key())
    recs = table(a, b)
    for kind, path in (("networks", "/networks"), ("members", "/members"),
                       ("endpoints", "/endpoints"), ("devaddr_blocks", "/devaddr-blocks")):
        for r in recs[kind]:
            st, data, _ = api.call("POST", path, r, tok, timeout=25)
            assert st == 201, (path, data)
    st, data, _ = api.call("PUT", "/policies/%s/%s" % (A, B), {"uplink": ALL_UP,
                                                               "downlink": ALL_DOWN}, tok)
    assert st in (200, 201), data
    for n in ex.nodes:  # each node's own operator key: bootstrap keys are local to a node
        api = AdminClient(n)
        tok = api.token(api.operator_key())
        deadline = time.time() + 20
        while api.call("GET", "/policies/%s/%s" % (A, B), token=tok)[0] != 200:
            assert time.time() < deadline, n.logs()[-2000:]
            time.sleep(0.02)


def cluster_run():
    a, b = Member("netA", A, "key-A-0123456789"), Member("netB", B, "key-B-0123456789")
    ex = ExampleCluster(log_level="warn")
    try:
        ex.start()
        for s in ("rh1", "rh2", "rh3"):
            ex.wait_lb(s, "UP")
        seed(ex, a, b)
        snd = Sender(ex.lb_ts002, a.key)
        for _ in range(20):
            assert snd.send()
        counts = [n.metric("roamhub_messages_total") for n in ex.nodes]
        victim = max(range(3), key=lambda i: counts[i])  # holds the member's connection
        t_kill = time.time()
        ex.nodes[victim].daemon.kill()
        lost = 0
        while not snd.send():
            lost += 1
        failover = time.time() - t_kill
        down = ex.wait_lb("rh%d" % (victim + 1), "DOWN", timeout=30) - t_kill
        snd.conn.close()  # HAProxy's soft stop waits for open connections
        ex.stop()
        return failover, lost, down
    finally:
        ex.cleanup()
        a.stop()
        b.stop()


def single_run():
    a, b = Member("netA", A, "key-A-0123456789"), Member("netB", B, "key-B-0123456789")
    h = Hub(table(a, b), config={"log_level": "warn"})
    try:
        snd = Sender(h.port, a.key)
        for _ in range(20):
            assert snd.send()
        t_kill = time.time()
        h.kill()
        h.config["ts002"]["port"] = h.port  # restarted on its address (systemd Restart=)
        h.config["admin"]["port"] = h.admin_port
        h.start()
        while not snd.send():
            pass
        return time.time() - t_kill
    finally:
        h.cleanup()
        a.stop()
        b.stop()


def main():
    print("failover after kill -9 (median of %d runs; machine shared with other work)" % RUNS)
    res, ref = [], []
    for r in range(RUNS):
        f, lost, down = cluster_run()
        s = single_run()
        res.append((f, lost, down))
        ref.append(s)
        print("run %d: failover %.1f ms (requests failed meanwhile %d), HAProxy DOWN after "
              "%.2f s; single node restarted: %.1f ms" % (r, f * 1e3, lost, down, s * 1e3),
              flush=True)
    print("median: failover %.1f ms, failed requests %d, DOWN after %.2f s; single-node restart "
          "%.1f ms" % (statistics.median(x[0] for x in res) * 1e3,
                       statistics.median(x[1] for x in res),
                       statistics.median(x[2] for x in res), statistics.median(ref) * 1e3))


if __name__ == "__main__":
    main()
