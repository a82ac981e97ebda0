#!/usr/bin/env python3
"""Gateway-to-gateway round trip through the hub (issue: end-to-end demo), with the no-hub
reference measured in the same run.

roamsim's gateways send a confirmed uplink (PUSH_DATA) to network A's roamns; for a device of
network B it crosses roamhubd to B's roamns (async), whose ACK comes back as XmitDataReq through
the hub to A and out as PULL_RESP. roamsim timestamps PUSH_DATA and PULL_RESP. The reference is a
device homed in A itself (same gateways, same roamns, no hub). Both use A's deduplication window
(--dedup-ms, default 0 here so that it does not hide the hub's share).

Usage: tools/bench/roundtrip.py [BUILD_DIR] [--runs N] [--uplinks N] [--dedup-ms MS]
"""
import argparse
import copy
import os
import statistics
import sys

ap = argparse.ArgumentParser()
ap.add_argument("build", nargs="?", default="build")
ap.add_argument("--runs", type=int, default=3)
ap.add_argument("--uplinks", type=int, default=40)
ap.add_argument("--dedup-ms", type=int, default=0)
args = ap.parse_args()
os.environ["ROAMHUB_BUILD"] = os.path.abspath(args.build)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "e2e"))
from roaming_world import A_DEVICES, B_DEVICES, World  # noqa: E402

w = World(a_devices=A_DEVICES, dedup_ms=args.dedup_ms)
results = {"roaming (via hub)": [], "local (no hub)": []}
try:
    for run in range(args.runs):
        for label, dev in (("roaming (via hub)", B_DEVICES[0]), ("local (no hub)", A_DEVICES[0])):
            d = copy.deepcopy(dev)
            d["fcnt_up"] = 10000 * (run + 1)
            rc, s, ev = w.roamsim([d], uplinks=args.uplinks, interval_ms=150, confirmed_ratio=1.0,
                                  timeout=300)
            if rc != 0:
                sys.exit("roamsim failed (%s): %s" % (label, s.get("failures")))
            results[label].append((s["rtt_ms"]["p50"], s["rtt_ms"]["p99"], s["rtt_ms"]["count"]))
finally:
    w.close()

print("gateway round trip, confirmed uplink PUSH_DATA -> ACK PULL_RESP; %d runs x %d uplinks; "
      "dedup window %d ms; median of the runs" % (args.runs, args.uplinks, args.dedup_ms))
print()
print("| path | p50 ms | p99 ms | samples per run |")
print("|---|---:|---:|---:|")
for label, rs in results.items():
    print("| %s | %.2f | %.2f | %d |" % (label, statistics.median(r[0] for r in rs),
                                       statistics.median(r[1] for r in rs), rs[0][2]))
