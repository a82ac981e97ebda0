"""The web console in a real browser (Debian's chromium, headless, driven by playwright-core from
npm) against the demo world — roamhubd, roamns A (gateways) and B (devices), bystander C, all on
127.0.0.1 with ephemeral ports — while roamsim keeps B's devices sending through A's gateways.
The browser part is tests/e2e/console/console_test.mjs: sign in as operator and as members, the
traffic chart shows the relayed uplinks, a policy change in the peering matrix makes the next
uplinks denied and the chart shows it, live traffic shows events as they happen, the gateway map
shows the demo gateways, a member's hidden gateways disappear for another member, hostile names
stay text, no CSP violation. With ROAMHUB_CONSOLE_SCREENSHOTS=DIR it also saves the screenshots
shown in the README (docs/console/)."""
import http.server
import json
import os
import struct
import subprocess
import sys
import threading
import unittest
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
from roaming_world import B_DEVICES, World  # noqa: E402
from roamhub_harness import (AdminClient, Hub, Member, admin_config,  # noqa: E402
                             member_records, pr_start_req)

SOURCE = os.environ.get("ROAMHUB_SOURCE", os.path.join(HERE, "..", ".."))
PLAYWRIGHT = os.path.join(SOURCE, "broker", "console", "node_modules", "playwright-core")
CHROMIUM = "/usr/bin/chromium"
HOSTILE = "<script>alert(1)</script>\"'&<img src=x onerror=alert(2)>"


def png_tile():
    """A 256x256 PNG: light land colour with a darker border, so tiles are visible."""
    rows = []
    for y in range(256):
        row = bytearray(b"\x00")
        for x in range(256):
            edge = x == 0 or y == 0
            row += bytes((170, 190, 160) if edge else (232, 236, 222))
        rows.append(bytes(row))
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 256, 256, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"".join(rows))) + chunk(b"IEND", b""))


class TileServer:
    """A base-map tile server on 127.0.0.1 (ephemeral port) counting the tiles it served."""

    def __init__(self):
        self.served = []
        tile, served = png_tile(), self.served

        class H(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                served.append(self.path)
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Content-Length", str(len(tile)))
                self.end_headers()
                self.wfile.write(tile)
        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.port = self.srv.server_address[1]
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def stop(self):
        self.srv.shutdown()
        self.srv.server_close()


class ConsoleInBrowser(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        for need in (PLAYWRIGHT, CHROMIUM):
            if not os.path.exists(need):
                raise RuntimeError("missing %s (deploy/bootstrap.sh installs chromium and runs npm ci "
                                   "in broker/console)" % need)
        cls.w = World(with_c=True)
        cls.api = AdminClient(cls.w.hub)
        cls.op_key = cls.api.operator_key()
        op = cls.api.token(cls.op_key)
        cls.keys = {}
        for n in (cls.w.a, cls.w.b):
            cls.keys[n.net_id], _ = cls.api.create_key(op, net_id=n.net_id, rights=["RIGHT_ADMIN"],
                                                       name="console " + n.name)
        st, rec, _ = cls.api.call("GET", "/networks/" + cls.w.c.net_id, token=op)
        rec["name"] = HOSTILE
        st, data, _ = cls.api.call("PUT", "/networks/" + cls.w.c.net_id, rec, token=op)
        assert st == 200, (st, data)
        # invalid UTF-8 in a name: refused by the API (400), or, if stored, shown with
        # replacement characters without breaking the page (checked in the browser)
        st, data, _ = cls.api.call("POST", "/tenants",
                                   b'{"net_id": "%s", "tenant_id": "t-bad", "name": "bad \xff\xfe name"}'
                                   % cls.w.c.net_id.encode(), token=op,
                                   headers={"Content-Type": "application/json"})
        assert st in (201, 400), (st, data)
        cls.invalid_utf8_stored = st == 201
        # peering: C's default policy (C -> B inherits it) and a tenant-level record, so the
        # matrix shows inheritance and the tenant records are listed
        st, data, _ = cls.api.call("PUT", "/policies/%s/default" % cls.w.c.net_id,
                                   {"uplink": {"application_data": True}, "downlink": {}}, token=op)
        assert st in (200, 201), (st, data)
        st, data, _ = cls.api.call("POST", "/tenants", {"net_id": cls.w.c.net_id, "tenant_id": "t-one",
                                                       "name": "tenant one"}, token=op)
        assert st == 201, (st, data)
        st, data, _ = cls.api.call("PUT", "/policies/%s/%s?forwarder_tenant_id=t-one" % (cls.w.c.net_id, cls.w.b.net_id),
                                   {"uplink": {"join_request": True}, "downlink": {"join_accept": True}}, token=op)
        assert st in (200, 201), (st, data)
        cls.op_token = op
        # a tenant key of B: the peering page shows and edits its tenant's policies
        st, data, _ = cls.api.call("POST", "/tenants", {"net_id": cls.w.b.net_id, "tenant_id": "tb",
                                                       "name": "B's tenant"}, token=op)
        assert st == 201, (st, data)
        cls.key_b_tenant, _ = cls.api.create_key(op, net_id=cls.w.b.net_id, tenant="tb",
                                                 rights=["RIGHT_ADMIN"], name="console B/tb")
        cls.policy_ba_before = cls.api.call("GET", "/policies/%s/%s" % (cls.w.b.net_id, cls.w.a.net_id), token=op)[:2]
        # traffic keeps flowing during the whole browser session
        cls.stop = threading.Event()
        cls.sim_runs = []

        def traffic():
            while not cls.stop.is_set():
                rc, summary, _ = cls.w.roamsim(B_DEVICES, uplinks=4, interval_ms=700, timeout=120)
                cls.sim_runs.append(rc)
        cls.sim = threading.Thread(target=traffic, daemon=True)
        cls.sim.start()
        # a second hub with a base map configured: tiles from a local tile server, one gateway
        cls.tiles = TileServer()
        cls.member_t = Member("netT", "000202", "key-T-0123456789")
        recs_t = member_records(cls.member_t)
        recs_t["members"][0]["rate_limit_per_s"] = 1   # a burst below goes over it
        cls.hub2 = Hub(recs_t,
                       config={"admin": admin_config(),
                               "console": {"tile_url": "http://127.0.0.1:%d/{z}/{x}/{y}.png" % cls.tiles.port,
                                           "tile_attribution": "test tiles"}})
        msg = pr_start_req("000202", "000505", "40" "0100000a" "00" "0100" "01" "aabb" "01020304")
        msg["ULMetaData"]["GWInfo"][0].update({"ID": "7A7A7A7A7A7A7A7A", "Lat": 46.2044, "Lon": 6.1432})
        st, _, _ = cls.hub2.post(msg, cls.member_t.key)   # no route to 000505 here: the gateway counts
        assert st == 200, st
        # member T over its rate limit (1/s, burst 2): refused as rate_limited (issue 14)
        cls.rate_limited = 0
        for _ in range(8):
            st, ans, _ = cls.hub2.post(pr_start_req("000202", "000505", "40" "0100000a" "00" "0100" "01" "aabb" "01020304"),
                                       cls.member_t.key)
            assert st == 200, st
            if ans and ans.get("Result", {}).get("Description", "").startswith("rate limit"):
                cls.rate_limited += 1
        assert cls.rate_limited > 0

    @classmethod
    def tearDownClass(cls):
        cls.stop.set()
        cls.sim.join(timeout=120)
        cls.member_t.stop()
        cls.tiles.stop()
        rc2 = cls.hub2.stop()
        logs2 = cls.hub2.logs()
        cls.hub2.cleanup()
        if rc2 != 0 or "Sanitizer" in logs2:
            raise AssertionError("second roamhubd exited %s:\n%s" % (rc2, logs2[-4000:]))
        rc = cls.w.hub.stop()
        logs = cls.w.hub.logs()
        cls.w.close()
        if rc != 0 or "Sanitizer" in logs or "runtime error:" in logs:
            at = max(logs.find("==ERROR"), logs.find("runtime error:"), 0)
            raise AssertionError("roamhubd exited %s:\n%s" % (rc, logs[at:at + 6000] if at else logs[-4000:]))

    def test_console_in_chromium(self):
        cfg_path = os.path.join(self.w.dir, "console-test.json")
        results = os.path.join(self.w.dir, "console-results.json")
        shots = os.environ.get("ROAMHUB_CONSOLE_SCREENSHOTS", "")
        if shots:
            os.makedirs(shots, exist_ok=True)
        with open(cfg_path, "w") as f:
            json.dump({"url": "http://127.0.0.1:%d" % self.w.hub.admin_port,
                       "operator_key": self.op_key, "key_a": self.keys[self.w.a.net_id],
                       "key_b": self.keys[self.w.b.net_id], "key_b_tenant": self.key_b_tenant,
                       "net_a": self.w.a.net_id,
                       "net_b": self.w.b.net_id, "net_c": self.w.c.net_id,
                       "hostile_name": HOSTILE, "invalid_utf8_stored": self.invalid_utf8_stored,
                       "screenshots": shots, "results": results,
                       "playwright": PLAYWRIGHT, "tmp": self.w.dir,
                       "tiles_url": "http://127.0.0.1:%d" % self.hub2.admin_port,
                       "tiles_rate_limited": self.rate_limited,
                       "tiles_ts002_url": "http://127.0.0.1:%d/" % self.hub2.port,
                       "tiles_member_key": self.member_t.key,
                       "tiles_uplink": pr_start_req("000202", "000505", "40" "0100000a" "00" "0100" "01" "aabb" "01020304"),
                       "tiles_key": AdminClient(self.hub2).operator_key()}, f)
        r = subprocess.run(["node", os.path.join(HERE, "console", "console_test.mjs"), cfg_path],
                           capture_output=True, text=True, timeout=400)
        sys.stderr.write(r.stdout)
        if not os.path.exists(results):
            self.fail("the browser test did not run: %s" % r.stderr[-3000:])
        with open(results) as f:
            res = json.load(f)
        self.assertEqual(r.returncode, 0, "%s\n%s\n%s\n%s" % (res.get("error"), json.dumps(res.get("shown"), indent=1),
                                                             r.stderr[-3000:],
                                                         self.w.hub.logs()[-3000:]))
        self.assertTrue(res["ok"])
        names = [c["name"] for c in res["checks"]]
        for want in ("unauthenticated visitor", "traffic chart shows the relayed uplinks",
                     "policy change in the matrix", "live traffic shows events",
                     "gateway map shows the demo gateways", "member: sees only its own",
                     "hidden gateways disappear", "base map tiles", "rate-limited",
                     "Packet Broker Mapper gateway", "period (hour, day, 30 days)",
                     "a column per protocol path",
                     "defaults and tenant records", "accessibility", "tenant key",
                     "no CSP violations"):
            self.assertTrue(any(want in n for n in names), want)
        sys.stderr.write("console timings (ms): %s\n" % json.dumps(res["timings_ms"]))
        self.assertTrue(any(p.endswith(".png") for p in self.tiles.served), self.tiles.served)
        # the hub agrees with what the browser showed: the policy edit was written through the API
        st, audit, _ = self.api.call("GET", "/audit", token=self.op_token)
        self.assertEqual(st, 200)
        self.assertTrue(any(a["kind"] == "policy" for a in audit["items"]))
        # the tenant key's edit wrote B/tb's record, not B's NetID-level one
        st, rec, _ = self.api.call("GET", "/policies/%s/%s?forwarder_tenant_id=tb" % (self.w.b.net_id, self.w.a.net_id),
                                   token=self.op_token)
        self.assertEqual(st, 200, rec)
        self.assertTrue(rec["uplink"].get("join_request") and not rec["uplink"].get("application_data"), rec)
        after = self.api.call("GET", "/policies/%s/%s" % (self.w.b.net_id, self.w.a.net_id), token=self.op_token)[:2]
        self.assertEqual(after, self.policy_ba_before)
        self.assertEqual(self.w.hub.proc.poll(), None, "roamhubd still running")


if __name__ == "__main__":
    unittest.main()
