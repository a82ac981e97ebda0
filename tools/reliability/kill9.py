#!/usr/bin/env python3
"""kill -9 of roamhubd during admin write bursts.

Each of --rounds (default 20) rounds: --writers (default 4) threads create networks through the
admin API (POST /api/v1/networks, a fresh NetID each) as fast as they can; after a random 0.2 to
1.5 s the hub is killed with SIGKILL, then restarted on the same LMDB directory. Every write that
was acknowledged (201) before the kill is recorded; after the restart every one of them must be
there (GET /api/v1/networks/{id}), and the hub must answer a relay as before.

Bounds: the hub restarts every time (no recovery step, no refusal); no acknowledged write is
missing; no write that was refused or cut off shows up half-made (a network that exists has the
name it was created with); the final stop is clean.

  python3 tools/reliability/kill9.py --rounds 20
"""
import argparse
import random
import threading
import time
from urllib.parse import quote

import rel_common as R


def writer(api, token, prefix, stop, acked, attempted, lock):
    n = 0
    while not stop.is_set():
        n += 1
        net_id = "%s%03x" % (prefix, n % 4096)
        if n >= 4096:
            return
        name = "kill9 %s" % net_id
        with lock:
            attempted[net_id] = name
        try:
            st, _, _ = api.call("POST", "/networks", {"net_id": net_id, "name": name}, token, timeout=5)
        except OSError:
            return      # the hub is gone
        if st == 201:
            with lock:
                acked[net_id] = name


def list_networks(api, token):
    """NetID (lower case) -> name of every stored network (all pages)."""
    out, page = {}, ""
    while True:
        st, body, _ = api.call("GET", "/networks?page_size=1000&page_token=" + quote(page), token=token)
        if st != 200:
            raise SystemExit("listing networks failed: %s %s" % (st, body))
        for n in body["items"]:
            out[n["net_id"].lower()] = n.get("name")
        page = body.get("next_page_token") or ""
        if not page:
            return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--writers", type=int, default=4)
    ap.add_argument("--seed", type=int, default=None)
    args = ap.parse_args()
    rnd = random.Random(args.seed)

    w = R.World(config={"admin": R.H.admin_config()})
    api = R.H.AdminClient(w.hub)
    acked, attempted, lock = {}, {}, threading.Lock()
    restarts_failed, missing, wrong, relay_failures = 0, [], [], 0
    per_round = []
    for rnd_i in range(args.rounds):
        token = api.token(api.operator_key())
        stop = threading.Event()
        before = len(acked)
        ts = [threading.Thread(target=writer, daemon=True,
                               args=(api, token, "%02x%x" % (rnd_i % 256, i % 16), stop, acked,
                                     attempted, lock))
              for i in range(args.writers)]
        for t in ts:
            t.start()
        time.sleep(rnd.uniform(0.2, 1.5))
        w.hub.kill()
        stop.set()
        for t in ts:
            t.join(timeout=10)
        try:
            w.hub.start()
        except RuntimeError as e:
            restarts_failed += 1
            print("restart failed: %s" % e)
            break
        token = api.token(api.operator_key())
        present = list_networks(api, token)
        missing = [n for n in acked if n not in present]
        wrong = [n for n, name in present.items() if n in attempted and name != attempted[n]]
        st, ans, _ = R.Client(w.hub, w.a.key).post(R.H.pr_start_req(R.A, R.B, R.DEVADDR_B))
        relay_failures += R.result_code(ans) != "Success"
        per_round.append(len(acked) - before)
        print("round %d: %d writes acknowledged before kill -9, %d stored after restart, %d missing"
              % (rnd_i + 1, len(acked) - before, len([n for n in acked if n in present]), len(missing)),
              flush=True)
    exit_problem = w.close()
    figures = {"rounds": len(per_round), "acknowledged_writes": len(acked),
               "attempted_writes": len(attempted), "acknowledged_per_round_min": min(per_round or [0]),
               "acknowledged_per_round_max": max(per_round or [0]), "missing_after_restart": len(missing),
               "half_made": len(wrong), "restarts_failed": restarts_failed,
               "relays_failed_after_restart": relay_failures, "hub_exit": exit_problem or "clean"}
    R.report("kill9", figures, [
        ("every restart succeeded (%d failed)" % restarts_failed, restarts_failed == 0),
        ("no acknowledged write missing (%d of %d)" % (len(missing), len(acked)),
         not missing and len(acked) > 0),
        ("no half-made record (%d)" % len(wrong), not wrong),
        ("the relay answered after every restart (%d failures)" % relay_failures, relay_failures == 0),
        ("the final stop was clean", exit_problem is None),
    ])


if __name__ == "__main__":
    main()
