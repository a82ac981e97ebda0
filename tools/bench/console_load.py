#!/usr/bin/env python3
"""Web console load time in a real browser (issue: "the first page is usable within 1 s on
loopback"), with a reference measured in the same run: the same browser loading the admin
listener's /healthz.

Starts the demo world (roamhubd, roamns A and B on ephemeral ports) and one roamsim run so the
Traffic page has statistics to draw, then runs tools/bench/console_load.mjs (playwright-core from
broker/console/node_modules, Debian's chromium headless) RUNS times and prints the medians.

Usage: tools/bench/console_load.py [BUILD_DIR] [--runs N]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ap = argparse.ArgumentParser()
ap.add_argument("build", nargs="?", default="build")
ap.add_argument("--runs", type=int, default=7)
args = ap.parse_args()
os.environ["ROAMHUB_BUILD"] = os.path.abspath(args.build)
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "e2e"))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "integration"))
from roaming_world import B_DEVICES, World  # noqa: E402

w = World()
try:
    w.roamsim(B_DEVICES, uplinks=2, interval_ms=500)
    with open(w.hub.config["admin"]["operator_key_file"]) as f:
        key = f.read().strip()
    cfg = os.path.join(w.dir, "bench.json")
    with open(cfg, "w") as f:
        json.dump({"url": "http://127.0.0.1:%d" % w.hub.admin_port, "key": key, "runs": args.runs,
                   "playwright": os.path.join(HERE, "..", "..", "broker", "console", "node_modules",
                                              "playwright-core"), "tmp": w.dir}, f)
    r = subprocess.run(["node", os.path.join(HERE, "console_load.mjs"), cfg], capture_output=True,
                       text=True, timeout=600)
    if r.returncode != 0:
        sys.exit(r.stderr)
    res = json.loads(r.stdout.strip().splitlines()[-1])
    print("runs: %d (median, min..max in ms)" % args.runs)
    for k, v in res.items():
        print("%-26s %7.1f   %.1f..%.1f" % (k, statistics.median(v), min(v), max(v)))
finally:
    w.close()
