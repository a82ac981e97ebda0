#!/usr/bin/env python3
"""Cluster benchmark (issue 13, docs/SCALING.md "Transactions cross nodes"): what handing an
async answer to the node that holds its transaction costs.

Per run: 3 nats-server (JetStream cluster, tests/cluster harness) and 2 roamhubd cluster nodes
with the same imported table; member A sends PRStartReq (sync) to node 1; home network B answers
asynchronously (acknowledges, then POSTs PRStartAns to the hub). Timed: A's request until its
Success answer, when B posts its answers to node 1 (the holder: the reference, same run) and
when B posts them to node 2 (handed to node 1 over NATS). Requests alternate between the two.
Usage: tools/bench/cluster_handoff.py [BUILD_DIR] [RUNS] [REQUESTS]   (default: build 3 200)
"""
import os
import statistics
import sys
import time

from cluster_bench import arg, pct  # noqa: E402 (sets ROAMHUB_BUILD and sys.path)
RUNS = arg(2, 3)
N = arg(3, 200)
from cluster_harness import NatsCluster, cluster_section, wait_readyz  # noqa: E402
from roamhub_harness import Hub, Member, pr_start_req  # noqa: E402
from test_cluster import A, B, DATA_APP_B, table  # noqa: E402


def one_run():
    nats = NatsCluster(3)
    a = Member("netA", A, "key-A-0123456789")
    b = Member("netB", B, "key-B-0123456789", mode="async")
    b.post_async = lambda ans: b.hub.post(ans, b.key)  # no artificial delay
    hubs = []
    try:
        nats.wait_jetstream()
        urls = nats.urls()
        for node in (1, 2):
            hubs.append(Hub(table(a, b), config={"cluster": cluster_section(
                node, urls, stream="RH_BENCH", subject_prefix="roamhub.bench")}))
        for h in hubs:
            wait_readyz(h, 200, "ready\n")
        times = {"holder": [], "other": []}
        for i in range(N + 20):
            where = "holder" if i % 2 == 0 else "other"
            b.hub = hubs[0] if where == "holder" else hubs[1]
            t0 = time.perf_counter()
            st, ans, _ = hubs[0].post(pr_start_req(A, B, DATA_APP_B), a.key)
            dt = (time.perf_counter() - t0) * 1000
            if st != 200 or ans["Result"]["ResultCode"] != "Success":
                raise RuntimeError("request %d: %s %s" % (i, st, ans))
            b.get()
            if i >= 20:  # warm-up
                times[where].append(dt)
        return {k: (statistics.median(v), pct(v, 99)) for k, v in times.items()}
    finally:
        for h in hubs:
            h.cleanup()
        a.stop()
        b.stop()
        nats.cleanup()


def main():
    runs = [one_run() for _ in range(RUNS)]
    print("async answer hand-off: median of %d runs of %d requests; machine shared" % (RUNS, N))
    for k, label in (("holder", "answer posted to the holder (reference)"),
                     ("other", "answer posted to the other node (handed over NATS)")):
        p50 = statistics.median(r[k][0] for r in runs)
        p99 = statistics.median(r[k][1] for r in runs)
        print("%-52s p50 %.2f ms  p99 %.2f ms" % (label, p50, p99))


if __name__ == "__main__":
    main()
