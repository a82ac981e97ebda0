"""Issue 16 (hardening) against the real roamhubd: the JSON input policy on every body (item 5),
identifier rules and their statuses (item 6), endpoint addresses the hub may not reach (item 7),
duplicate Authorization headers and %00 in query parameters (item 8), and strict, guarded
destructive imports (item 10)."""
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from roamhub_harness import (ROAMHUBD, AdminClient, Hub, Member, admin_config, member_records,  # noqa: E402
                             merge, pr_start_req)

DATA_APP_B = "40" "0100000a" "00" "0100" "01" "aabb" "01020304"   # DevAddr 0A000001

A, B = "000013", "000505"


def raw_request(port, data, timeout=5.0):
    """Sends raw bytes on a fresh connection; returns the status code of the answer (0: none)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(data)
        buf = b""
        while b"\r\n" not in buf:
            chunk = s.recv(4096)
            if not chunk:
                break
            buf += chunk
    finally:
        s.close()
    line = buf.split(b"\r\n", 1)[0].split()
    return int(line[1]) if len(line) > 1 else 0


class Hardening(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.hub = Hub({"networks": [{"net_id": A, "name": "Alpha", "listed": True}]},
                      config={"admin": admin_config()}, workers=1)
        cls.c = AdminClient(cls.hub)
        cls.op = cls.c.token(cls.c.operator_key())

    @classmethod
    def tearDownClass(cls):
        rc = cls.hub.stop()
        cls.hub.cleanup()
        if rc != 0:
            raise AssertionError("roamhubd exited %s" % rc)

    def call(self, method, path, body=None, token=None):
        return self.c.call(method, path, body, token or self.op)

    # ---- item 5 ------------------------------------------------------------------------------
    def test_json_input_policy_on_admin_bodies(self):
        cases = [
            (b'{"net_id":"000111","name":"\xff\xfe"}', "name: invalid UTF-8"),
            (b'{"net_id":"000111","net_id":"000112"}', "net_id: duplicate key"),
            (b'{"net_id":"000111","name":"a\\u0000b"}', "name: \\u0000 is not allowed"),
            (b'{"net_id":"000111","name":"a\tb"}', "name: control character"),
            (b'{"net_id":"000111","name":' + b"[" * 40 + b"]" * 40 + b"}", "nesting deeper"),
        ]
        for body, msg in cases:
            st, data, _ = self.c.raw("POST", "/api/v1/networks", body,
                                     {"Authorization": "Bearer " + self.op,
                                      "Content-Type": "application/json"})
            self.assertEqual(st, 400, (body, data))
            self.assertIn(msg, json.loads(data)["error"]["message"], body)
        for nid in ("000111", "000112"):   # nothing was stored
            st, _, _ = self.call("GET", "/networks/" + nid)
            self.assertEqual(st, 404)
        # imports go through the same policy
        st, data, _ = self.c.raw("POST", "/api/v1/import",
                                 b'{"networks":[{"net_id":"000111","name":"x","name":"y"}]}',
                                 {"Authorization": "Bearer " + self.op,
                                  "Content-Type": "application/json"})  # else 415 (issue 17)
        self.assertEqual(st, 400, data)
        self.assertIn("networks[0].name: duplicate key", json.loads(data)["error"]["message"])
        # the catalog stays valid JSON for everyone
        st, cat, _ = self.call("GET", "/catalog")
        self.assertEqual(st, 200, cat)

    # ---- item 6 ------------------------------------------------------------------------------
    def test_identifier_statuses(self):
        bad = ["a b", "\u00e9", "", "x" * 129, "a/b", 'a"b', "a%41", "..", "id:x"]
        for i, ident in enumerate(bad):
            body = {"id": ident, "net_id": A, "url": "http://127.0.0.1:9/"}
            st, data, _ = self.call("POST", "/endpoints", body)
            self.assertEqual(st, 400, (ident, data))
            self.assertIn("id", data["error"]["message"])
            st, data, _ = self.call("POST", "/members", {"id": ident, "net_ids": [A]})
            self.assertEqual(st, 400, (ident, data))
            st, data, _ = self.call("POST", "/keys", {"id": ident, "operator": True,
                                                      "rights": ["RIGHT_ADMIN"]})
            self.assertEqual(st, 400, (ident, data))
        for seg in ("a%20b", "%C3%A9", "a%2Fb", "a%22b", "a%25b"):
            st, data, _ = self.call("GET", "/endpoints/" + seg)
            self.assertEqual(st, 400, (seg, data))
            st, data, _ = self.call("PUT", "/endpoints/" + seg,
                                    {"net_id": A, "url": "http://127.0.0.1:9/"})
            self.assertEqual(st, 400, (seg, data))
        st, data, _ = self.call("POST", "/tenants", {"net_id": A, "tenant_id": "a/b"})
        self.assertEqual(st, 400, data)
        # a well-formed record whose name the rules refuse: 422 naming the field
        st, data, _ = self.call("POST", "/networks", {"net_id": "000999", "name": "a\nb"})
        self.assertEqual(st, 422, data)
        self.assertIn("network.name", data["error"]["message"])
        # the good ones still work
        st, data, _ = self.call("POST", "/endpoints", {"id": "ep-ok.1_x", "net_id": A,
                                                       "url": "http://127.0.0.1:9/"})
        self.assertEqual(st, 201, data)
        st, data, _ = self.call("POST", "/keys", {"id": "k.ok-1", "operator": True,
                                                  "rights": ["RIGHT_ADMIN"]})
        self.assertEqual(st, 201, data)

    # ---- item 8 ------------------------------------------------------------------------------
    def test_two_authorization_headers_refused(self):
        for port, path in ((self.hub.admin_port, "/api/v1/whoami"), (self.hub.port, "/")):
            req = ("GET %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                   "Authorization: Bearer other\r\n\r\n" % (path, self.op)).encode()
            self.assertEqual(raw_request(port, req), 400, path)
        # one header still works
        req = ("GET /api/v1/whoami HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
               "Connection: close\r\n\r\n" % self.op).encode()
        self.assertEqual(raw_request(self.hub.admin_port, req), 200)

    def test_chunked_trailers_do_not_crash(self):
        """Found by fuzz_http_request: a chunked body's trailer fields were stored after the
        header pointers were fixed up (the buffer moved under them, a NULL name was read)."""
        for port, path in ((self.hub.port, "/"), (self.hub.admin_port, "/api/v1/whoami")):
            req = ("POST %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                   "Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n"
                   "X-Trailer: %s\r\nAuthorization: Bearer x\r\n\r\n"
                   % (path, self.op, "t" * 3000)).encode()
            self.assertIn(raw_request(port, req), (200, 400, 401, 404, 405), path)
        self.assertIsNone(self.hub.proc.poll())   # still running
        st, _, _ = self.call("GET", "/whoami")
        self.assertEqual(st, 200)

    def test_nul_in_query_refused(self):
        st, body, _ = self.call("GET", "/networks?net_id=%00")
        self.assertEqual(st, 400, body)
        self.assertIn("net_id", body["error"]["message"])
        st, body, _ = self.call("GET", "/policies/%s/default?forwarder_tenant_id=a%%00b" % A)
        self.assertEqual(st, 400, body)
        st, body, _ = self.call("GET", "/networks?x=%0")
        self.assertEqual(st, 400, body)
        # a tenant parameter too long for any tenant ID is refused, not ignored
        st, body, _ = self.call("GET", "/policies/%s/default?forwarder_tenant_id=%s" % (A, "t" * 100))
        self.assertEqual(st, 400, body)
        self.assertIn("forwarder_tenant_id", body["error"]["message"])
        st, body, _ = self.call("GET", "/policies/effective?forwarder_net_id=%s&forwarder_tenant_id=%s"
                                % (A, "t" * 100))
        self.assertEqual(st, 400, body)
        st, body, _ = self.call("GET", "/networks/%s%%00" % A)   # the path, as before
        self.assertEqual(st, 400, body)

    # ---- item 10 -----------------------------------------------------------------------------
    def test_boolean_query_parameters_are_strict(self):
        for v in ("maybe", "1", "0", "", "TRUE", "yes"):
            st, body, _ = self.call("POST", "/import?replace=" + v, {})
            self.assertEqual(st, 400, (v, body))
            self.assertIn("replace", body["error"]["message"])
        st, body, _ = self.call("GET", "/capture?seconds=1&download=1")
        self.assertEqual(st, 400, body)
        self.assertIn("download", body["error"]["message"])
        # the table is intact and the caller still authenticated
        st, body, _ = self.call("GET", "/networks/" + A)
        self.assertEqual(st, 200, body)

    def test_replace_that_would_delete_the_caller_is_refused(self):
        st, body, _ = self.call("POST", "/import?replace=true", {})
        self.assertEqual(st, 422, body)
        self.assertIn("calling key", body["error"]["message"])
        st, body, _ = self.call("GET", "/networks/" + A)
        self.assertEqual(st, 200, body)

    def test_destructive_import_is_logged_and_audited_once(self):
        st, exp, _ = self.call("GET", "/audit?limit=10000")
        self.assertEqual(st, 200, exp)
        n_audit = len(exp["items"])
        # export = the operator key record via roamdb (hashes only), then replace with it
        out = self.hub.roamdb("export")
        self.assertEqual(out.returncode, 0, out.stderr)
        doc = json.loads(out.stdout)
        doc["networks"].append({"net_id": B, "name": "Beta"})
        st, body, _ = self.call("POST", "/import?replace=true", doc)
        self.assertEqual(st, 200, body)
        st, body, _ = self.call("GET", "/networks/" + B)   # caller still works
        self.assertEqual(st, 200, body)
        st, aud, _ = self.call("GET", "/audit?limit=10000")
        new = aud["items"][n_audit:]
        self.assertEqual(len(new), 1, new)
        self.assertEqual(new[0]["action"], "import")
        self.assertIn("clears=8", new[0]["key"])
        warn = [l for l in self.hub.logs().splitlines()
                if "level=warn" in l and "import replaced the routing table" in l]
        self.assertEqual(len(warn), 1, warn)
        self.assertIn("removed_networks=1", warn[0])
        self.assertIn("removed_api_keys=1", warn[0])


class EndpointAddresses(unittest.TestCase):
    """Issue 16 item 7: the hub does not POST to loopback/private/link-local/... addresses or to
    its own listeners on a member's behalf, unless the operator allows a range; the address
    actually connected to (after DNS) is checked, and literal addresses already when written."""

    def start(self, allow):
        self.a = Member("netA", A, "key-A-0123456789", mode="sync")
        self.b = Member("netB", B, "key-B-0123456789", mode="sync")
        recs_b = member_records(self.b)
        # a host NAME that resolves to loopback: accepted when written, refused at connect time
        recs_b["endpoints"][0]["url"] = "http://localhost:%d/" % self.b.port
        table = merge(member_records(self.a), recs_b,
                      {"devaddr_blocks": [{"prefix": "0A000000/7", "net_id": B}],
                       "policies": [{"forwarder_net_id": A, "home_net_id": B,
                                     "uplink": {"application_data": True}, "downlink": {}}]})
        self.hub = Hub(table, config={"admin": admin_config(),
                                      "relay": {"endpoint_allow_ranges": allow}}, workers=1)
        self.a.hub = self.b.hub = self.hub
        self.c = AdminClient(self.hub)
        self.op = self.c.token(self.c.operator_key())

    def tearDown(self):
        rc = self.hub.stop()
        self.a.stop()
        self.b.stop()
        self.hub.cleanup()
        self.assertEqual(rc, 0)

    def endpoint(self, url, ident="netB"):
        return self.c.call("PUT", "/endpoints/" + ident,
                           {"net_id": B, "url": url, "timeout_ms": 800}, self.op)

    def relay_refused(self, reason):
        st, ans, _ = self.hub.post(pr_start_req(A, B, DATA_APP_B), self.a.key)
        self.assertEqual(st, 200, ans)
        self.assertNotEqual(ans["Result"]["ResultCode"], "Success", ans)
        self.b.assert_nothing(0.3)
        lines = [l for l in self.hub.logs().splitlines() if "refused by the address policy" in l]
        self.assertTrue(lines, self.hub.logs()[-2000:])
        self.assertIn(reason, lines[-1])

    def test_default_refuses_loopback_and_private(self):
        self.start([])
        self.relay_refused("is a loopback address")
        for url, what in (("http://127.0.0.1:%d/" % self.b.port, "loopback"),
                          ("http://10.1.2.3/", "private"), ("http://192.168.1.1/", "private"),
                          ("http://169.254.169.254/latest", "link-local"),
                          ("http://0.0.0.0:%d/" % self.hub.admin_port, "hub's own listener"),
                          ("http://[::1]:80/", "loopback"),
                          ("http://[::ffff:127.0.0.1]/", "loopback"),
                          ("http://[fe80::1]/", "link-local"), ("http://224.0.0.1/", "multicast")):
            st, body, _ = self.endpoint(url)
            self.assertEqual(st, 422, (url, body))
            msg = body["error"]["message"]
            self.assertIn("endpoint.url", msg)
            self.assertIn(what, msg, url)
        st, body, _ = self.endpoint("https://8.8.8.8/")   # a public address is fine
        self.assertEqual(st, 200, body)

    def test_allowed_range_but_never_the_hub_itself(self):
        self.start(["127.0.0.0/8"])
        st, ans, _ = self.hub.post(pr_start_req(A, B, DATA_APP_B), self.a.key)
        self.assertEqual(ans["Result"]["ResultCode"], "Success", ans)   # localhost: allowed
        self.assertEqual(self.b.get()["MessageType"], "PRStartReq")
        for port in (self.hub.admin_port, self.hub.port):
            st, body, _ = self.endpoint("http://127.0.0.1:%d/api/v1/keys" % port)
            self.assertEqual(st, 422, body)
            self.assertIn("hub's own listener", body["error"]["message"])
        # by name: written, then refused where the connection is made
        st, body, _ = self.endpoint("http://localhost:%d/api/v1/keys" % self.hub.admin_port)
        self.assertEqual(st, 200, body)
        self.relay_refused("hub's own listener")


class StartFailures(unittest.TestCase):
    """Issue 16 item 9: hub_run's error paths after the database opened released nothing (the
    LMDB environment stayed open and leaked). Each failure must exit 1 with its reason and, under
    the sanitizers, without a leak report."""

    def run_hub(self, cfg):
        d = tempfile.mkdtemp(prefix="roamhub-start-")
        try:
            base = {"workers": 1, "database": {"path": os.path.join(d, "db"), "map_size_mb": 8},
                    "ts002": {"address": "127.0.0.1", "port": 0},
                    "admin": {"address": "127.0.0.1", "port": 0,
                              "operator_key_file": os.path.join(d, "op.key")}}
            for k, v in cfg(d).items():
                if isinstance(v, dict):
                    base.setdefault(k, {}).update(v)
                else:
                    base[k] = v
            path = os.path.join(d, "roamhub.json")
            with open(path, "w") as f:
                json.dump(base, f)
            p = subprocess.run([ROAMHUBD, "-c", path], capture_output=True, text=True, timeout=30)
            return p.returncode, p.stdout + p.stderr
        finally:
            shutil.rmtree(d, ignore_errors=True)

    def check(self, cfg, reason):
        rc, out = self.run_hub(cfg)
        self.assertEqual(rc, 1, out)
        self.assertIn(reason, out)
        self.assertNotIn("Sanitizer", out)

    def test_bad_import_file(self):
        def cfg(d):
            with open(os.path.join(d, "t.json"), "w") as f:
                f.write('{"networks": [{"net_id": "000013", "net_id": "000014"}]}')
            return {"import": os.path.join(d, "t.json")}
        self.check(cfg, "duplicate key")

    def test_missing_tls_material(self):
        self.check(lambda d: {"ts002": {"tls_cert": os.path.join(d, "none.pem"),
                                        "tls_key": os.path.join(d, "none.key")}}, "TS002 TLS")


if __name__ == "__main__":
    unittest.main()
