#!/usr/bin/env python3
"""TransactionID collisions and answer injection through roamhubd.

Forwarders A and X relay PRStartReq to homes B (sync) and C (async). The homes answer with a
DevEUI that carries the NetID of the forwarder that asked (the SenderID they received), so a
forwarder can tell an answer meant for someone else. Each of --rounds (default 200) rounds picks
one random TransactionID and, at the same moment:
  1. A and X both send it to C (same home, same TransactionID: the hub's pending key collides);
  2. A sends it to B as well (same TransactionID, another home: no collision);
  3. B, an authenticated member, POSTs a forged PRStartAns to A with that TransactionID (answer
     injection) while A's requests are pending.

Bounds: every request gets an answer (HTTP 200 with a ResultCode) within its timeout; no
forwarder ever receives a Success answer meant for the other (DevEUI marker, ReceiverID); at most
one of the two colliding requests of a round fails, and it fails with a TS002 answer naming the
reason; the request to B always succeeds; no injected answer is delivered; roamhubd exits cleanly.

  python3 tools/reliability/txid_collision.py --rounds 200
"""
import argparse
import random
import threading

import rel_common as R

X = "000404"


def marked_answer(req):
    """Success, DevEUI = 10 zeros + the SenderID the home received (the forwarder's NetID)."""
    return R.H.answer(req, "Success", DevEUI="0000000000" + req["SenderID"].lower()[-6:], FCntUp=1,
                      Lifetime=0)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=200)
    ap.add_argument("--seed", type=int, default=None)
    args = ap.parse_args()
    rnd = random.Random(args.seed)

    x = R.quiet_member("netX", X, "key-X-0123456789")
    extra = R.H.merge(R.H.member_records(x, endpoint=False),
                      {"policies": [R.World.policy(X, R.B), R.World.policy(X, R.C)]})
    w = R.World(extra_table=extra)
    w.b.answer_fn = marked_answer
    w.c.answer_fn = marked_answer
    w.members.append(x)
    x.hub = w.hub

    counts = {"requests": 0, "answered": 0, "success": 0, "misdelivered": 0, "unanswered": 0,
              "collision_refused": 0, "both_colliding_failed": 0, "b_failed": 0,
              "injected_delivered": 0, "injections": 0}
    reasons = {}

    def send(key, sender, receiver, phy, txid, out, i):
        req = R.H.pr_start_req(sender, receiver, phy)
        req["TransactionID"] = txid
        out[i] = R.Client(w.hub, key, timeout=10).post(req) + (sender,)

    for _ in range(args.rounds):
        txid = rnd.randrange(1, 2 ** 32)
        out = [None] * 3
        jobs = [(w.a.key, R.A, R.C, R.DEVADDR_C), (x.key, X, R.C, R.DEVADDR_C),
                (w.a.key, R.A, R.B, R.DEVADDR_B)]
        ts = [threading.Thread(target=send, args=job + (txid, out, i)) for i, job in enumerate(jobs)]
        for t in ts:
            t.start()
        forged = {"ProtocolVersion": "1.0", "SenderID": R.B, "ReceiverID": R.A,
                  "TransactionID": txid, "MessageType": "PRStartAns",
                  "Result": {"ResultCode": "Success"}, "DevEUI": "ffffffffffffffff"}
        w.hub.post(forged, w.b.key)
        counts["injections"] += 1
        for t in ts:
            t.join()
        colliding_failed = 0
        for i, (st, ans, el, sender) in enumerate(out):
            counts["requests"] += 1
            code = R.result_code(ans)
            if st != 200 or not code:
                counts["unanswered"] += 1
                continue
            counts["answered"] += 1
            if code == "Success":
                counts["success"] += 1
                if ans.get("DevEUI") == "ffffffffffffffff":
                    counts["injected_delivered"] += 1
                elif (ans.get("ReceiverID", "").lower() != sender
                      or ans.get("DevEUI", "")[-6:].lower() != sender
                      or ans.get("TransactionID") != txid):
                    counts["misdelivered"] += 1
            else:
                desc = (ans.get("Result") or {}).get("Description", "")
                reasons["%s: %s" % (code, desc)] = reasons.get("%s: %s" % (code, desc), 0) + 1
                if i < 2:
                    colliding_failed += 1
                    counts["collision_refused"] += 1
                else:
                    counts["b_failed"] += 1
        counts["both_colliding_failed"] += colliding_failed == 2
    exit_problem = w.close()
    figures = {"rounds": args.rounds, "counts": counts, "failure_answers": reasons,
               "hub_exit": exit_problem or "clean"}
    R.report("txid_collision", figures, [
        ("every request answered (%d of %d without a TS002 answer)"
         % (counts["unanswered"], counts["requests"]), counts["unanswered"] == 0),
        ("no Success answer delivered to the wrong forwarder (%d)" % counts["misdelivered"],
         counts["misdelivered"] == 0),
        ("no injected answer delivered (%d of %d)" % (counts["injected_delivered"], counts["injections"]),
         counts["injected_delivered"] == 0),
        ("never both colliding requests refused (%d rounds)" % counts["both_colliding_failed"],
         counts["both_colliding_failed"] == 0),
        ("refused colliding requests name a reason", all(": " in r and r.split(": ", 1)[1] for r in reasons)),
        ("the same TransactionID towards B always succeeded (%d failed)" % counts["b_failed"],
         counts["b_failed"] == 0),
        ("roamhubd exited cleanly", exit_problem is None),
    ])


if __name__ == "__main__":
    main()
