#!/usr/bin/env python3
"""Soak: mixed sync/async relay traffic through roamhubd for --minutes (default 60), sampling the
hub's RSS and open descriptors every 10 s.

Traffic: forwarder A sends PRStartReq alternately to home B (sync answers) and home C (async:
acknowledges, then POSTs the answer to the hub) at --rate messages/s in total.
Bounds (after the warm-up, the first --warmup-minutes, default 20 % of the run, at least 1 min):
RSS grows by less than --rss-bound-kb (default 1024 KiB) from the first sample after warm-up to the
highest later one; the open descriptor count varies by at most --fd-bound (default 8); every
request is answered Success; roamhubd exits 0 with no sanitizer report.

  python3 tools/reliability/soak.py --minutes 10
"""
import argparse
import time

import rel_common as R


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=60)
    ap.add_argument("--rate", type=float, default=150, help="messages/s in total (default 150)")
    ap.add_argument("--warmup-minutes", type=float, default=None)
    ap.add_argument("--sample-s", type=float, default=10)
    ap.add_argument("--rss-bound-kb", type=int, default=1024)
    ap.add_argument("--fd-bound", type=int, default=8)
    args = ap.parse_args()
    warmup = args.warmup_minutes if args.warmup_minutes is not None else max(1.0, args.minutes * 0.2)
    if warmup >= args.minutes:
        ap.error("--warmup-minutes must be shorter than --minutes")

    w = R.World()
    pid = w.hub.proc.pid
    load = R.Load(w, [(R.B, R.DEVADDR_B), (R.C, R.DEVADDR_C)], args.rate).start()
    t0 = time.monotonic()
    samples = []
    try:
        while True:
            el = time.monotonic() - t0
            samples.append({"t_s": round(el), "rss_kb": R.rss_kb(pid), "fds": R.open_fds(pid),
                            "sent": load.sent})
            print("t=%5ds rss=%6d KiB fds=%4d sent=%d" % (samples[-1]["t_s"], samples[-1]["rss_kb"],
                                                          samples[-1]["fds"], load.sent), flush=True)
            if el >= args.minutes * 60:
                break
            time.sleep(min(args.sample_s, max(0.0, args.minutes * 60 - el)))
    finally:
        load.stop()
    time.sleep(1.5)   # async answers in flight
    exit_problem = w.close()

    after = [s for s in samples if s["t_s"] >= warmup * 60]
    base = after[0]
    rss_growth = max(s["rss_kb"] for s in after) - base["rss_kb"]
    fd_span = max(s["fds"] for s in after) - min(s["fds"] for s in after)
    summary = load.summary()
    figures = {
        "minutes": args.minutes, "warmup_minutes": warmup, "target_rate_per_s": args.rate,
        "achieved_rate_per_s": round(summary["sent"] / (args.minutes * 60), 1),
        "traffic": summary,
        "rss_kb": {"start": samples[0]["rss_kb"], "after_warmup": base["rss_kb"],
                   "end": samples[-1]["rss_kb"], "max_after_warmup": max(s["rss_kb"] for s in after),
                   "growth_after_warmup": rss_growth},
        "fds": {"after_warmup_min": min(s["fds"] for s in after),
                "after_warmup_max": max(s["fds"] for s in after)},
        "samples": len(samples), "hub_exit": exit_problem or "clean (status 0, no sanitizer report)",
    }
    R.report("soak", figures, [
        ("RSS growth after warm-up %d KiB < %d KiB" % (rss_growth, args.rss_bound_kb),
         rss_growth < args.rss_bound_kb),
        ("open descriptors after warm-up vary by %d <= %d" % (fd_span, args.fd_bound),
         fd_span <= args.fd_bound),
        ("every request answered Success (%d of %d lost)" % (load.lost(), summary["sent"]),
         load.lost() == 0 and summary["sent"] > 0),
        ("roamhubd exited cleanly", exit_problem is None),
    ])


if __name__ == "__main__":
    main()
