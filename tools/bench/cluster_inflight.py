#!/usr/bin/env python3
"""Cluster benchmark (issue 13, docs/SCALING.md "A dead node's in-flight transactions"): when an
async sender gets its failure answer after the node holding its transaction was killed.

Per run: 3 nats-server (JetStream cluster, tests/cluster harness) and 3 roamhubd cluster nodes
with the same imported table; forwarder A is an async sender (its answers are POSTed to its
endpoint), home network B acknowledges every request and never answers (its endpoint's
timeout_ms = the deadline). A sends REQUESTS PRStartReq to node 1 over ~0.5 s, node 1 is killed
(-9) KILL_AFTER seconds after the first, and the arrival of each failure answer at A's endpoint
is timed against the transaction's deadline (sent + timeout_ms: the hub's own deadline starts a
little later, when it forwarded). Reference in the same run: the same requests sent to node 2,
which stays alive and answers its senders itself at the deadline.
Two deadlines: 2,000 ms (passes before the holder is seen missing: presence 3 s) and 6,000 ms
(after it). Prints, per case, the median of the runs' p50 and max (ms after the deadline) and
how many answers arrived (expected: every one, exactly once).
Usage: tools/bench/cluster_inflight.py [BUILD_DIR] [RUNS] [REQUESTS]   (default: build 3 50)
"""
import os
import queue
import statistics
import sys
import time

from cluster_bench import arg  # noqa: E402 (sets ROAMHUB_BUILD and sys.path)
RUNS = arg(2, 3)
N = arg(3, 50)
KILL_AFTER = 0.8
from cluster_harness import NatsCluster, cluster_section, wait_readyz  # noqa: E402
from roamhub_harness import Hub, Member, member_records, merge, pr_start_req  # noqa: E402
from test_cluster import A, B, DATA_APP_B, table  # noqa: E402


def collect(a, want, until):
    """Arrival time of each answer at A's endpoint, by TransactionID (a list: duplicates show)."""
    got = {}
    while time.time() < until and sum(len(v) for v in got.values()) < want:
        try:
            m = a.get(timeout=0.05)
        except queue.Empty:
            continue
        if m.get("MessageType") == "PRStartAns":
            got.setdefault(m["TransactionID"], []).append((time.time(), m["Result"]["ResultCode"]))
    return got


def one_run(wait_ms):
    nats = NatsCluster(3)
    a = Member("netA", A, "key-A-0123456789", mode="async", answer_fn=lambda req: None)
    b = Member("netB", B, "key-B-0123456789", mode="async", answer_fn=lambda req: None)
    # the answers due at one moment arrive together: Python's default listen backlog (5) would
    # drop connection attempts (each retried by TCP after 1 s, 3 s...) and time that, not the hub
    a.server.socket.listen(256)
    hubs = []
    try:
        nats.wait_jetstream()
        urls = nats.urls()
        tbl = merge(member_records(a, timeout_ms=wait_ms), member_records(b, timeout_ms=wait_ms),
                    {k: v for k, v in table(a, b).items() if k in ("devaddr_blocks", "policies")})
        for node in (1, 2, 3):
            hubs.append(Hub(tbl, config={"cluster": cluster_section(
                node, urls, stream="RH_BENCH", subject_prefix="roamhub.bench")}))
        for h in hubs:
            wait_readyz(h, 200, "ready\n")
        time.sleep(1.5)  # presence and runs heard
        out = {}
        for case, holder in (("alive", hubs[1]), ("killed", hubs[0])):
            sent = {}
            t_first = time.time()
            for i in range(N):
                req = pr_start_req(A, B, DATA_APP_B)
                st, _, _ = holder.post(req, a.key)
                if st != 200:
                    raise RuntimeError("request %d: HTTP %s" % (i, st))
                sent[req["TransactionID"]] = time.time()
                time.sleep(0.5 / N)
            if case == "killed":
                time.sleep(max(0.0, t_first + KILL_AFTER - time.time()))
                holder.kill()
            got = collect(a, N, time.time() + wait_ms / 1000.0 + 12.0)
            late = [got[t][0][0] - (sent[t] + wait_ms / 1000.0) for t in sent if t in got]
            out[case] = {"received": sum(1 for t in sent if t in got),
                         "dupes": sum(len(v) - 1 for v in got.values()),
                         "codes": sorted({c for v in got.values() for _, c in v}),
                         "p50": statistics.median(late) * 1000 if late else None,
                         "max": max(late) * 1000 if late else None}
        return out
    finally:
        for h in hubs:
            h.stop(check=False)
            h.cleanup()
        a.stop()
        b.stop()
        nats.cleanup()


def main():
    print("cluster in-flight failures: %d runs x %d requests, kill -9 %.1f s after the first"
          % (RUNS, N, KILL_AFTER))
    for wait_ms in (2000, 6000):
        runs = []
        for r in range(RUNS):
            res = one_run(wait_ms)
            runs.append(res)
            print("deadline %d ms run %d: %s" % (wait_ms, r + 1, res), flush=True)
        for case in ("alive", "killed"):
            p50 = [x[case]["p50"] for x in runs if x[case]["p50"] is not None]
            mx = [x[case]["max"] for x in runs if x[case]["max"] is not None]
            rec = [x[case]["received"] for x in runs]
            print("deadline %d ms, holder %s: answers after the deadline p50 %.0f ms, max %.0f ms "
                  "(medians of the runs); received %s of %d, duplicates %d"
                  % (wait_ms, case, statistics.median(p50) if p50 else float("nan"),
                     statistics.median(mx) if mx else float("nan"), rec, N,
                     sum(x[case]["dupes"] for x in runs)))


if __name__ == "__main__":
    main()
