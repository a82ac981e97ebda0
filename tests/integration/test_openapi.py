"""docs/openapi.yaml against the tools and the implementation: `@redocly/cli lint` (from
tests/npm, installed by deploy/bootstrap.sh with `npm ci`) passes without a warning, every
operation has a unique operationId, and a test client drives every operation of the document
against a real roamhubd, checking that each status it gets is one the document lists for that
operation and that every error body has the documented shape (Error, or RFC 6749 OAuthError for
the token endpoint). Then the conventions the document states: 400 for malformed path
parameters, 413/431 as JSON errors, Allow on 405 matching the document's methods, 415 for a
body that is not JSON (or not a form at /oauth/token), RFC 6749 §5.2 token errors, 201 with a
Location that reads back, and /audit paginated like every list."""
import json
import os
import re
import socket
import subprocess
import sys
import unittest
import urllib.parse

import yaml

sys.path.insert(0, os.path.dirname(__file__))
from roamhub_harness import AdminClient, Hub, admin_config  # noqa: E402

SOURCE = os.environ.get("ROAMHUB_SOURCE", os.path.join(os.path.dirname(__file__), "..", ".."))
DOC = os.path.join(SOURCE, "docs", "openapi.yaml")
REDOCLY = os.path.join(SOURCE, "tests", "npm", "node_modules", ".bin", "redocly")
METHODS = ("get", "put", "post", "delete")
A, B = "000013", "000505"

# sample path parameters that name the fixtures created below
PARAMS = {"net_id": A, "tenant_id": "t1", "prefix": "26000000", "length": "7",
          "join_eui": "70b3d57ed0000000", "join_eui_length": "40", "dev_eui": "0004a30b00000000",
          "dev_eui_length": "32", "forwarder_net_id": A, "home": B}
IDS = {"endpoints": "ep1", "members": "m1"}
BODIES = {
    "networks": {"net_id": A, "name": "Alpha", "listed": True},
    "tenants": {"net_id": A, "tenant_id": "t1", "name": "T1"},
    "endpoints": {"id": "ep1", "net_id": A, "url": "http://127.0.0.1:9/", "timeout_ms": 500},
    "devaddr-blocks": {"prefix": "26000000/7", "net_id": A},
    "join-routes": {"join_eui": "70b3d57ed0000000/40", "home_net_id": A},
    "policies": {"forwarder_net_id": A, "home_net_id": B, "uplink": {"join_request": True},
                 "downlink": {"join_accept": True}},
    "members": {"id": "m1", "net_ids": [A], "api_key_hashes": ["00" * 32]},
}


def load_doc():
    with open(DOC) as f:
        return yaml.safe_load(f)


def operations(doc):
    for path, item in doc["paths"].items():
        for m in METHODS:
            if m in item:
                yield path, m, item[m]


class LintTest(unittest.TestCase):
    def test_redocly_lint(self):
        self.assertTrue(os.access(REDOCLY, os.X_OK),
                        "tests/npm/node_modules missing: run deploy/bootstrap.sh (npm ci)")
        r = subprocess.run([REDOCLY, "lint", "--format=summary", DOC], capture_output=True,
                           text=True, timeout=300, cwd=SOURCE)
        out = r.stdout + r.stderr
        self.assertEqual(r.returncode, 0, out)
        self.assertNotRegex(out, r"(?m)^(error|warning)\s", out)
        self.assertIn("valid", out)

    def test_operation_ids(self):
        ids = [op.get("operationId") for _, _, op in operations(load_doc())]
        self.assertTrue(ids)
        self.assertNotIn(None, ids)
        self.assertEqual(len(ids), len(set(ids)), "duplicate operationId")


class ConformanceTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.doc = load_doc()
        cls.hub = Hub({"networks": [{"net_id": B, "name": "Beta"}]}, workers=1, config={
            "admin": admin_config(max_body_bytes=4096, max_header_bytes=4096)})
        cls.c = AdminClient(cls.hub)
        cls.op_key = cls.c.operator_key()
        cls.tok = cls.c.token(cls.op_key)

    @classmethod
    def tearDownClass(cls):
        cls.hub.cleanup()

    def documented(self, path, method):
        return self.doc["paths"][path][method]["responses"]

    def check(self, path, method, status, data, headers):
        """The status is documented for the operation; an error body has the documented shape."""
        responses = self.documented(path, method)
        self.assertIn(str(status), responses, "%s %s answered %d, not in the document (%s)"
                      % (method.upper(), path, status, data[:200] if isinstance(data, bytes) else data))
        if status >= 400:
            self.assertTrue(headers.get("content-type", "").startswith("application/json"),
                            "%s %s %d: %s" % (method, path, status, headers))
            body = data if isinstance(data, dict) else json.loads(data)
            if path == "/oauth/token" and status != 405 and status not in (413, 431):
                self.assertIsInstance(body.get("error"), str, body)
                self.assertIn(body["error"], ("invalid_request", "invalid_client",
                                              "unsupported_grant_type"))
            else:
                self.assertEqual(set(body), {"error"}, body)
                self.assertEqual(body["error"]["code"], status)
                self.assertIsInstance(body["error"]["message"], str)
                self.assertTrue(body["error"]["message"])

    def concrete(self, path):
        res = path.strip("/").split("/")[0]

        def sub(m):
            name = m.group(1)
            if name == "id":
                return IDS.get(res, self.key_id if res == "keys" else "x")
            return PARAMS[name]
        return re.sub(r"\{([a-z_]+)\}", sub, path)

    def request(self, method, path, body=None, ctype="application/json"):
        h = {"Authorization": "Bearer " + self.tok}
        if body is not None:
            if not isinstance(body, (bytes, str)):
                body = json.dumps(body)
            if ctype:
                h["Content-Type"] = ctype
        st, data, hd = self.c.raw(method, "/api/v1" + path, body, h)
        try:
            data = json.loads(data) if data else data
        except ValueError:
            pass
        return st, data, hd

    def test_every_operation(self):
        doc = self.doc
        ops = list(operations(doc))
        _, created, _ = self.c.call("POST", "/keys", {"rights": ["RIGHT_READ_NETWORK"], "net_id": B,
                                                      "name": "probe"}, self.tok)
        self.key_id = created["key"]["id"]
        order = {"post": 0, "get": 1, "put": 2, "delete": 3}
        res_order = ["networks", "tenants", "endpoints", "devaddr-blocks", "join-routes", "policies",
                     "members", "keys"]

        def sort_key(o):
            path, m, _ = o
            res = path.strip("/").split("/")[0]
            r = res_order.index(res) if res in res_order else -1
            return (order[m], -r if m == "delete" else r, path)
        seen = set()
        for path, m, op in sorted(ops, key=sort_key):
            cpath = self.concrete(path)
            res = path.strip("/").split("/")[0]
            if path == "/oauth/token":
                kid, sec = self.op_key.split(":", 1)
                form = urllib.parse.urlencode({"grant_type": "client_credentials", "client_id": kid,
                                               "client_secret": sec})
                st, data, hd = self.c.raw("POST", "/api/v1/oauth/token", form,
                                          {"Content-Type": "application/x-www-form-urlencoded"})
                self.assertEqual(st, 200)
            elif path == "/import":
                st, data, hd = self.request("POST", "/import", {"networks": [{"net_id": "000777",
                                                                             "name": "Imported"}]})
                self.assertEqual(st, 200, data)
            elif path == "/capture":
                st, data, hd = self.request("GET", "/capture?seconds=1&max_events=1")
                self.assertEqual(st, 200)
            elif m == "post":
                body = BODIES.get(res, {"rights": ["RIGHT_READ_NETWORK"], "net_id": A, "name": "k"})
                st, data, hd = self.request("POST", cpath, body)
                self.assertEqual(st, 201, "%s: %s" % (cpath, data))
                loc = hd.get("location", "")
                self.assertTrue(loc.startswith("/api/v1/"), hd)
                st2, got, _ = self.request("GET", loc[len("/api/v1"):])
                self.assertEqual(st2, 200, "Location %s does not read back: %s" % (loc, got))
            elif m == "put":
                body = dict(BODIES[res])
                if res == "join-routes" and "{dev_eui}" in path:
                    body["dev_eui"] = "0004a30b00000000/32"
                if res == "policies" and path.endswith("{forwarder_net_id}"):
                    body.pop("home_net_id")
                st, data, hd = self.request("PUT", cpath, body)
                self.assertIn(st, (200, 201), "%s: %s" % (cpath, data))
                if st == 201:
                    self.assertEqual(hd.get("location", "").split("?")[0], "/api/v1" + cpath.split("?")[0])
            elif m == "get":
                q = {"/routes": "?devaddr=26000001", "/stats": "?by=hour",
                     "/policies/effective": "?forwarder_net_id=%s&home_net_id=%s" % (A, B)}.get(path, "")
                st, data, hd = self.request("GET", cpath + q)
                # records the POST phase made read back; the default policy and the per-DevEUI
                # join route are made by the PUT phase, so they may still be missing (404)
                if path not in ("/policies/{forwarder_net_id}",
                                "/join-routes/{join_eui}/{join_eui_length}/{dev_eui}/{dev_eui_length}"):
                    self.assertLess(st, 400, "%s: %s" % (cpath, data))
            else:
                st, data, hd = self.request("DELETE", cpath)
                self.assertLess(st, 300, "%s: %s" % (cpath, data))
            self.check(path, m, st, data, hd)
            seen.add((path, m))
        self.assertEqual(seen, {(p, m) for p, m, _ in ops})

    def test_location_of_a_tenant_policy_reads_back(self):
        self.request("PUT", "/networks/000014", {"net_id": "000014", "name": "Gamma"})
        self.request("PUT", "/tenants/000014/ten-1", {"net_id": "000014", "tenant_id": "ten-1"})
        st, data, hd = self.request("POST", "/policies", {
            "forwarder_net_id": "000014", "forwarder_tenant_id": "ten-1",
            "uplink": {"join_request": True}, "downlink": {}})
        self.assertEqual(st, 201, data)
        self.assertEqual(hd["location"],
                         "/api/v1/policies/000014/default?forwarder_tenant_id=ten-1")
        st, got, _ = self.request("GET", hd["location"][len("/api/v1"):])
        self.assertEqual(st, 200, got)
        self.assertEqual(got.get("forwarder_tenant_id"), "ten-1")

    def test_malformed_path_parameters_are_400(self):
        for path, doc_path in (("/networks/zz", "/networks/{net_id}"),
                               ("/networks/0000131", "/networks/{net_id}"),
                               ("/devaddr-blocks/xyz/7", "/devaddr-blocks/{prefix}/{length}"),
                               ("/devaddr-blocks/26000000/99", "/devaddr-blocks/{prefix}/{length}"),
                               ("/join-routes/nothex/40", "/join-routes/{join_eui}/{join_eui_length}"),
                               ("/tenants/zz/t1", "/tenants/{net_id}/{tenant_id}")):
            st, data, hd = self.request("GET", path)
            self.assertEqual(st, 400, "%s: %s" % (path, data))
            self.check(doc_path, "get", st, data, hd)
        st, data, hd = self.request("GET", "/networks/00abcd")   # well-formed, names nothing
        self.assertEqual(st, 404)
        self.check("/networks/{net_id}", "get", st, data, hd)

    def test_413_and_431_are_json_errors(self):
        st, data, hd = self.request("POST", "/networks", {"net_id": "000999", "name": "x" * 5000})
        self.assertEqual(st, 413)
        self.check("/networks", "post", st, data, hd)
        with socket.create_connection(("127.0.0.1", self.hub.admin_port), timeout=5) as s:
            s.sendall(b"GET /api/v1/networks HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 6000 + b"\r\n\r\n")
            raw = b""
            while b"\r\n\r\n" not in raw or not raw.rstrip().endswith(b"}"):
                chunk = s.recv(4096)
                if not chunk:
                    break
                raw += chunk
        head, _, body = raw.partition(b"\r\n\r\n")
        self.assertTrue(head.startswith(b"HTTP/1.1 431"), head)
        self.assertIn(b"content-type: application/json", head.lower())
        self.assertEqual(json.loads(body)["error"]["code"], 431)

    def test_405_has_allow_matching_the_document(self):
        for method, path, doc_path in (("DELETE", "/networks", "/networks"),
                                       ("POST", "/whoami", "/whoami"),
                                       ("PUT", "/keys/k-1", "/keys/{id}"),
                                       ("GET", "/oauth/token", "/oauth/token"),
                                       ("DELETE", "/audit", "/audit"),
                                       ("POST", "/networks/000013", "/networks/{net_id}")):
            st, data, hd = self.request(method, path, {} if method in ("POST", "PUT") else None)
            self.assertEqual(st, 405, "%s %s: %s" % (method, path, data))
            self.assertEqual(data["error"]["code"], 405)
            allow = {m.strip().lower() for m in hd.get("allow", "").split(",") if m.strip()}
            documented = {m for m in METHODS if m in self.doc["paths"][doc_path]}
            self.assertEqual(allow, documented, "%s %s: Allow %r" % (method, path, hd.get("allow")))

    def test_415_for_bodies_that_are_not_json(self):
        for ctype in ("text/plain", None, "application/x-www-form-urlencoded"):
            st, data, hd = self.request("POST", "/networks", '{"net_id": "000998", "name": "x"}',
                                        ctype=ctype)
            self.assertEqual(st, 415, ctype)
            self.check("/networks", "post", st, data, hd)
        st, _, _ = self.request("POST", "/networks", {"net_id": "000998", "name": "x"},
                                ctype="application/json; charset=utf-8")
        self.assertEqual(st, 201)

    def test_token_errors_follow_rfc6749(self):
        kid, sec = self.op_key.split(":", 1)

        def token(form, ctype="application/x-www-form-urlencoded", **extra):
            h = dict(extra)
            if ctype:
                h["Content-Type"] = ctype
            st, data, hd = self.c.raw("POST", "/api/v1/oauth/token", form, h)
            self.check("/oauth/token", "post", st, data, hd)
            return st, json.loads(data), hd
        st, body, hd = token(urllib.parse.urlencode({"grant_type": "client_credentials",
                                                     "client_id": kid, "client_secret": sec + "x"}))
        self.assertEqual((st, body["error"]), (401, "invalid_client"))
        self.assertIn("Basic", hd.get("www-authenticate", ""))
        self.assertNotIn(sec, json.dumps(body))
        st, body, _ = token(urllib.parse.urlencode({"grant_type": "password", "client_id": kid,
                                                    "client_secret": sec}))
        self.assertEqual((st, body["error"]), (400, "unsupported_grant_type"))
        st, body, _ = token(urllib.parse.urlencode({"client_id": kid, "client_secret": sec}))
        self.assertEqual((st, body["error"]), (400, "invalid_request"))
        st, body, _ = token(json.dumps({"grant_type": "client_credentials"}), "application/json")
        self.assertEqual((st, body["error"]), (415, "invalid_request"))
        st, body, _ = token("grant_type=client_credentials")
        self.assertEqual((st, body["error"]), (401, "invalid_client"))

    def test_audit_is_paginated_like_every_list(self):
        for i in range(5):
            self.request("PUT", "/networks/00%04x" % (0x100 + i), {"net_id": "00%04x" % (0x100 + i),
                                                                    "name": "n%d" % i})
        st, full, hd = self.request("GET", "/audit?page_size=1000")
        self.assertEqual(st, 200)
        self.assertEqual(full["next_page_token"], "")
        self.assertGreaterEqual(len(full["items"]), 5)
        got, token, pages = [], "", 0
        while True:
            st, page, _ = self.request("GET", "/audit?page_size=2" + ("&page_token=" + token if token else ""))
            self.assertEqual(st, 200, page)
            self.assertLessEqual(len(page["items"]), 2)
            got += page["items"]
            pages += 1
            token = page["next_page_token"]
            if not token:
                break
        self.assertEqual(got, full["items"][:len(got)])
        self.assertGreaterEqual(len(got), len(full["items"]))
        self.assertGreater(pages, 2)
        for bad in ("x", "12", "-1.2", "5.0"):
            st, data, hd = self.request("GET", "/audit?page_token=" + bad)
            self.assertEqual(st, 400, bad)
            self.check("/audit", "get", st, data, hd)
        st, data, hd = self.request("GET", "/audit?page_size=0")
        self.assertEqual(st, 400)


if __name__ == "__main__":
    unittest.main()
