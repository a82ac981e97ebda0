"""deploy/cluster/ (issue 13): the 3-node example run as a user would — its own NATS, roamhubd and
HAProxy files on 127.0.0.1 (tests/cluster/deploy_example.py templates only addresses, ports and
state directories) — and its systemd units, Kubernetes manifests and container definition checked
mechanically (they are documented, not run here)."""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from cluster_harness import readyz, wait_readyz  # noqa: E402
from deploy_example import (HAPROXY, HOSTS, LB, NATS_SERVER, ROOT, ExampleCluster,  # noqa: E402
                            env_file, example, read)
from roamhub_harness import (ALL_DOWN, ALL_UP, BUILD, ROAMHUBD, AdminClient, Hub,  # noqa: E402
                             Member, assert_no_sanitizer_report, member_records, merge, pr_start_req)

A, B = "000202", "000505"
DATA_APP_B = "40" "0100000a" "00" "0100" "01" "aabb" "01020304"


def run(argv, **kw):
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, **kw)


class ExampleRunsTest(unittest.TestCase):
    """3 nats-server, 3 roamhubd, HAProxy: a member relays through HAProxy; kill -9 of a node;
    a live but not ready node gets nothing; the node back and caught up gets traffic again."""

    def setUp(self):
        self.a = Member("netA", A, "key-A-0123456789")
        self.b = Member("netB", B, "key-B-0123456789")
        self.ex = ExampleCluster()
        self.addCleanup(self.b.stop)
        self.addCleanup(self.a.stop)
        self.addCleanup(self.ex.cleanup)

    def seed_through_lb(self):
        """The table of members A and B, written through HAProxy's admin frontend as the README
        says: node 1's bootstrap operator key (local to node 1) creates an operator API key (a
        table record: on every node), whose token is then valid on any node (they share
        admin.jwt_secret_file)."""
        n1 = self.ex.nodes[0]
        n1.api = AdminClient(n1)
        api_key, _ = n1.api.create_key(n1.api.token(n1.api.operator_key()), operator=True,
                                       name="operator")
        deadline = time.time() + 10
        for n in self.ex.nodes:  # the key reaches every node through the stream
            while True:
                try:
                    AdminClient(n).token(api_key)
                    break
                except AssertionError:
                    self.assertLess(time.time(), deadline, n.logs()[-2000:])
                    time.sleep(0.05)
        lb = AdminClient(type("LB", (), {"admin_port": self.ex.lb_admin})())
        token = lb.token(api_key)
        recs = merge(member_records(self.a), member_records(self.b))
        writes = [("POST", "/networks", n) for n in recs["networks"]]
        writes += [("POST", "/members", m) for m in recs["members"]]
        writes += [("POST", "/endpoints", e) for e in recs["endpoints"]]
        writes += [("POST", "/devaddr-blocks", {"prefix": "0A000000/7", "net_id": B}),
                   ("PUT", "/policies/%s/%s" % (A, B), {"uplink": ALL_UP, "downlink": ALL_DOWN})]
        for method, path, body in writes:
            st, data, _ = lb.call(method, path, body, token, timeout=25.0)
            self.assertIn(st, (200, 201), (method, path, data))
        # visible on every node (each applies the stream): poll the last write
        for n in self.ex.nodes:
            api = AdminClient(n)
            deadline = time.time() + 10
            while api.call("GET", "/policies/%s/%s" % (A, B), token=token)[0] != 200:
                self.assertLess(time.time(), deadline, n.logs()[-3000:])
                time.sleep(0.05)

    def relay_through_lb(self, count):
        """count PRStartReq from A through HAProxy (a new connection each): all answered Success
        and delivered to B."""
        front = type("Front", (), {"port": self.ex.lb_ts002, "post": Hub.post})()
        for i in range(count):
            st, ans, _ = front.post(pr_start_req(A, B, DATA_APP_B), self.a.key)
            self.assertEqual(st, 200, (i, ans, self.ex.lb.output()[-2000:]))
            self.assertEqual(ans["Result"]["ResultCode"], "Success", (i, ans))
            self.assertEqual(self.b.get(timeout=5)["PHYPayload"].lower(), DATA_APP_B)

    def relayed(self, node):
        return node.metric("roamhub_messages_total")

    def test_member_relays_through_haproxy_and_a_killed_node_is_routed_around(self):
        ex = self.ex
        ex.start()
        for n in ex.nodes:
            wait_readyz(n, 200, "ready\n")
        for s in ("rh1", "rh2", "rh3"):
            ex.wait_lb(s, "UP")
        self.seed_through_lb()

        # spread over the three nodes (leastconn: equal load -> round robin)
        self.relay_through_lb(12)
        counts = [self.relayed(n) for n in ex.nodes]
        self.assertTrue(all(c > 0 for c in counts), counts)
        self.assertEqual(sum(counts), 12, counts)

        # kill -9 of node 2: the very next messages go to the others (a refused connection is
        # redispatched), then HAProxy's readiness check takes rh2 out
        ex.nodes[1].daemon.kill()
        before = [self.relayed(ex.nodes[0]), self.relayed(ex.nodes[2])]
        self.relay_through_lb(10)
        ex.wait_lb("rh2", "DOWN")
        self.relay_through_lb(10)
        after = [self.relayed(ex.nodes[0]), self.relayed(ex.nodes[2])]
        self.assertEqual(sum(after) - sum(before), 20, (before, after))

        # node 2 back but NOT ready (its NATS is unreachable): alive (/healthz 200, TS002 port
        # open) yet HAProxy sends it nothing — the check is readiness, not liveness
        dead = "nats://127.0.0.1:%d" % ex.nats_client[1]
        ex.nats[1].stop()  # its own NATS server, stopped cleanly
        n2 = ex.start_node(1, nats_urls=[dead])
        st, body = wait_readyz(n2, 503, "not ready: cluster")
        self.assertEqual(n2.get_admin("/healthz"), (200, "ok\n"))
        time.sleep(3.0)  # > rise (2) x inter (1 s): HAProxy would have taken it back by now
        self.assertEqual(ex.lb_status()[("roamhubd_ts002", "rh2")], "DOWN", ex.lb_status())
        self.relay_through_lb(10)
        self.assertEqual(self.relayed(n2), 0)
        self.assertEqual(readyz(n2)[0], 503)
        n2.daemon.stop()

        # node 2 with its example configuration (NATS server 2 back too): it catches up from
        # the stream, becomes ready, HAProxy takes it back and it relays
        ex.start_nats(1)
        n2 = ex.start_node(1)
        wait_readyz(n2, 200, "ready\n", timeout=30)
        ex.wait_lb("rh2", "UP")
        self.relay_through_lb(12)
        self.assertGreater(self.relayed(n2), 0)
        ex.stop()  # every process still running exits cleanly (status 0, no sanitizer report)
        self.assertIn("is DOWN", ex.lb.output())


class ExampleFilesTest(unittest.TestCase):
    """The example's files are consistent with each other and accepted by the programs that read
    them: nats-server -t, roamhubd --check, haproxy -c, systemd-analyze verify, YAML parsers."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="roamhub-example-files-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.secret = os.path.join(self.dir, "jwt.secret")
        with open(self.secret, "w") as f:
            f.write("s" * 64 + "\n")

    def check_roamhubd_config(self, name, cfg):
        """roamhubd --check on cfg with only its secret-file path replaced (it must exist)."""
        cfg = json.loads(json.dumps(cfg))
        cfg["admin"]["jwt_secret_file"] = self.secret
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            json.dump(cfg, f)
        p = run([ROAMHUBD, "--check", "-c", path])
        assert_no_sanitizer_report("roamhubd --check", p.stdout + p.stderr)
        self.assertEqual(p.returncode, 0, (name, p.stdout + p.stderr))

    def test_nats_configuration_valid_on_each_host(self):
        for i in range(3):
            env = env_file(example("nats", "rh%d.env" % (i + 1)))
            self.assertEqual(env, {"NATS_SERVER_NAME": "rh%d" % (i + 1), "NATS_ADDRESS": HOSTS[i]})
            p = run([NATS_SERVER, "-c", example("nats", "nats.conf"), "-t"],
                    env=dict(os.environ, **env))
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            self.assertIn("valid", p.stdout + p.stderr)
        conf = read(example("nats", "nats.conf"))
        routes = re.findall(r"nats-route://([\d.]+):6222", conf)
        self.assertEqual(sorted(routes), list(HOSTS))
        self.assertIn("jetstream", conf)

    def test_roamhubd_configurations_checked_and_consistent(self):
        ids = []
        for i in range(3):
            cfg = json.loads(read(example("roamhubd", "rh%d.json" % (i + 1))))
            self.check_roamhubd_config("rh%d.json" % (i + 1), cfg)
            c = cfg["cluster"]
            ids.append(c["node_id"])
            self.assertEqual(sorted(c["nats_urls"]), ["nats://%s:4222" % h for h in HOSTS])
            self.assertEqual(c["nats_urls"][0], "nats://%s:4222" % HOSTS[i])  # own host first
            self.assertEqual(c["replicas"], 3)
            self.assertEqual(c["nodes"], 3)  # members' rate limits hold for the 3 together
            self.assertEqual((cfg["ts002"]["address"], cfg["admin"]["address"]), (HOSTS[i],) * 2)
        self.assertEqual(sorted(ids), [1, 2, 3])

    def test_haproxy_configuration_valid_and_checks_readiness(self):
        path = example("haproxy", "haproxy.cfg")
        p = run([HAPROXY, "-c", "-f", path])
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        text = read(path)
        self.assertIn("option httpchk GET /readyz", text)
        self.assertIn("http-check expect status 200", text)
        self.assertIn("bind %s:4270" % LB, text)
        servers = re.findall(r"^\s*server (rh\d) ([\d.]+):(\d+) check(?: port (\d+))?", text, re.M)
        ts = [(s, h) for s, h, port, chk in servers if port == "4270" and chk == "4271"]
        adm = [(s, h) for s, h, port, chk in servers if port == "4271" and not chk]
        want = [("rh%d" % (i + 1), HOSTS[i]) for i in range(3)]
        self.assertEqual((ts, adm), (want, want), servers)

    def test_systemd_units_verify(self):
        if not shutil.which("systemd-analyze"):
            self.fail("systemd-analyze not installed (deploy/bootstrap.sh installs systemd)")
        units = os.path.join(self.dir, "units")
        shutil.copytree(example("systemd"), units)
        # the installed roamhubd.service (as cmake --install writes it) with the example's drop-in
        text = read(os.path.join(ROOT, "deploy", "systemd", "roamhubd.service.in"))
        text = text.replace("@ROAMHUB_SBINDIR@", os.path.abspath(os.path.join(BUILD, "broker")))
        text = text.replace("@ROAMHUB_DOCDIR@", os.path.join(ROOT, "docs"))
        with open(os.path.join(units, "roamhubd.service"), "w") as f:
            f.write(text)
        man = os.path.join(self.dir, "man", "man8")  # Documentation=man:roamhubd(8)
        os.makedirs(man)
        shutil.copy(os.path.join(BUILD, "deploy", "man", "roamhubd.8"), man)
        env = dict(os.environ, SYSTEMD_UNIT_PATH=units + ":", MANPATH=os.path.join(self.dir, "man"))
        names = ["roamhub-nats.service", "roamhub-lb.service", "roamhubd.service"]
        p = run(["systemd-analyze", "verify"] + names, env=env, cwd=units)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertEqual(p.stderr.strip(), "", p.stderr)
        # the drop-in is read (a bad key in it is reported), so the check above covered it
        with open(os.path.join(units, "roamhubd.service.d", "cluster.conf"), "a") as f:
            f.write("NotAKey=1\n")
        p = run(["systemd-analyze", "verify", "roamhubd.service"], env=env, cwd=units)
        self.assertIn("NotAKey", p.stderr)
        lb = read(example("systemd", "roamhub-lb.service"))
        self.assertIn("ExecStart=/usr/sbin/haproxy -Ws -f $CONFIG", lb)
        self.assertIn("KillSignal=SIGUSR1", lb)
        nats = read(example("systemd", "roamhub-nats.service"))
        self.assertIn("EnvironmentFile=/etc/roamhub/nats.env", nats)
        self.assertIn("KillSignal=SIGINT", nats)

    def test_kubernetes_manifests(self):
        docs = []
        for name in ("nats.yaml", "roamhubd.yaml"):
            with open(example("kubernetes", name)) as f:
                docs += [d for d in yaml.safe_load_all(f) if d]
        for d in docs:
            for key in ("apiVersion", "kind", "metadata"):
                self.assertIn(key, d, d)
            self.assertIn("name", d["metadata"])
        by = {}
        for d in docs:
            by.setdefault(d["kind"], {})[d["metadata"]["name"]] = d

        # NATS: a StatefulSet of 3 behind a headless Service, JetStream on a volume per server
        sts = by["StatefulSet"]["nats"]
        self.assertEqual(sts["spec"]["replicas"], 3)
        self.assertEqual(sts["spec"]["serviceName"], "nats")
        self.assertEqual(by["Service"]["nats"]["spec"]["clusterIP"], "None")
        self.assertTrue(sts["spec"]["volumeClaimTemplates"])
        nats_conf = by["ConfigMap"]["nats-config"]["data"]["nats.conf"]
        path = os.path.join(self.dir, "k8s-nats.conf")
        with open(path, "w") as f:
            f.write(nats_conf.replace('"/data/jetstream"', '"%s"' % os.path.join(self.dir, "js")))
        p = run([NATS_SERVER, "-c", path, "-t"], env=dict(os.environ, POD_NAME="nats-0"))
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        for i in range(3):
            self.assertIn("nats-route://nats-%d.nats:6222" % i, nats_conf)

        # roamhubd: one single-replica Deployment per node ID, each with its own configuration
        cm = by["ConfigMap"]["roamhubd-config"]["data"]
        svc = by["Service"]["roamhub"]["spec"]
        self.assertEqual(sorted(p["port"] for p in svc["ports"]), [4270, 4271])
        ids = []
        for i in range(1, 4):
            dep = by["Deployment"]["roamhubd-%d" % i]["spec"]
            self.assertEqual(dep["replicas"], 1)
            self.assertEqual(dep["strategy"]["type"], "Recreate")
            pod = dep["template"]
            labels = pod["metadata"]["labels"]
            self.assertTrue(all(labels.get(k) == v for k, v in svc["selector"].items()))
            self.assertTrue(all(labels.get(k) == v for k, v in dep["selector"]["matchLabels"].items()))
            c = pod["spec"]["containers"][0]
            self.assertEqual(c["readinessProbe"]["httpGet"], {"path": "/readyz", "port": 4271})
            self.assertEqual(c["livenessProbe"]["httpGet"], {"path": "/healthz", "port": 4271})
            mount = [m for m in c["volumeMounts"] if m["name"] == "config"][0]
            self.assertEqual(c["args"], ["-c", mount["mountPath"]])
            cfg = json.loads(cm[mount["subPath"]])
            ids.append(cfg["cluster"]["node_id"])
            self.assertEqual(cfg["cluster"]["node_id"], i)
            self.assertEqual(cfg["cluster"]["nodes"], 3)
            self.assertEqual(sorted(cfg["cluster"]["nats_urls"]),
                             ["nats://nats-%d.nats:4222" % k for k in range(3)])
            secret = [m for m in c["volumeMounts"] if m["name"] == "jwt"][0]["mountPath"]
            self.assertEqual(os.path.dirname(cfg["admin"]["jwt_secret_file"]), secret)
            self.check_roamhubd_config("k8s-node-%d.json" % i, cfg)
        self.assertEqual(ids, [1, 2, 3])

    def test_container_definition(self):
        """The image the manifests name is the one deploy/container/Dockerfile builds."""
        text = read(os.path.join(ROOT, "deploy", "container", "Dockerfile"))
        self.assertRegex(text, r"(?m)^FROM debian:12")
        self.assertRegex(text, r'(?m)^ENTRYPOINT \["/usr/sbin/roamhubd"\]')
        self.assertRegex(text, r"(?m)^USER roamhub$")
        self.assertRegex(text, r"(?m)^EXPOSE 4270 4271$")
        readme = read(example("README.md"))
        self.assertIn("deploy/container/Dockerfile", readme)
        self.assertIn("deploy/container/Dockerfile", read(example("kubernetes", "roamhubd.yaml")))


if __name__ == "__main__":
    unittest.main()
