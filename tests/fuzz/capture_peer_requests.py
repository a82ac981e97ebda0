#!/usr/bin/env python3
"""Captures the HTTP requests that real network servers send to roamhubd in the e2e roaming
world (tests/e2e/roaming_world.py: roamns A as forwarder with roamsim's gateways, roamns B as
async home network with OTAA and ABP devices, roamns C sync) and writes each one as a seed of
tests/fuzz/corpus/peer_request/ for fuzz_peer_request.

How: a recording TCP proxy sits on the port the networks use for the hub and passes everything
to the real hub; the client-to-hub bytes are split into requests (Content-Length framing). The
Bearer keys (random per run) become the fuzz target's fixed keys fuzz-key-A/B/C; everything else
is kept byte for byte. Usage: python3 tests/fuzz/capture_peer_requests.py [BUILD_DIR]
(ROAMHUB_BUILD also works). Loopback only; about 20 s."""
import hashlib
import os
import re
import socket
import sys
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
if len(sys.argv) > 1:
    os.environ["ROAMHUB_BUILD"] = os.path.abspath(sys.argv[1])
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import roaming_world as rw  # noqa: E402

OUT = os.path.join(HERE, "corpus", "peer_request")
streams = []
lock = threading.Lock()


def pump(src, dst, record):
    try:
        while True:
            b = src.recv(65536)
            if not b:
                break
            if record is not None:
                record.extend(b)
            dst.sendall(b)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def proxy(listen_port, real_port):
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", listen_port))
    ls.listen(64)

    def serve():
        while True:
            c, _ = ls.accept()
            u = socket.create_connection(("127.0.0.1", real_port))
            rec = bytearray()
            with lock:
                streams.append(rec)
            threading.Thread(target=pump, args=(c, u, rec), daemon=True).start()
            threading.Thread(target=pump, args=(u, c, None), daemon=True).start()
    threading.Thread(target=serve, daemon=True).start()


class CapturingHub(rw.Hub):
    def __init__(self, table, config=None, **kw):
        real = rw.free_port()
        proxy(config["ts002"]["port"], real)
        config["ts002"]["port"] = real
        super().__init__(table, config=config, **kw)


def split(stream):
    """HTTP/1.1 requests of one client-to-server byte stream (Content-Length framing)."""
    out, data = [], bytes(stream)
    while data:
        end = data.find(b"\r\n\r\n")
        if end < 0:
            break
        head = data[:end + 4]
        m = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", head)
        n = int(m.group(1)) if m else 0
        out.append(data[:end + 4 + n])
        data = data[end + 4 + n:]
    return out


def main():
    rw.Hub = CapturingHub
    w = rw.World(with_c=True)
    try:
        keys = {n.key: "fuzz-key-" + n.name for n in w.networks()}
        abp = [d for d in rw.B_DEVICES if "dev_addr" in d][:1] + rw.C_DEVICES
        otaa = [d for d in rw.B_DEVICES if "app_key" in d][:1]
        w.roamsim(abp, uplinks=2, confirmed_ratio=1.0)
        w.roamsim(otaa, uplinks=1, confirmed_ratio=1.0)
    finally:
        w.close()
    os.makedirs(OUT, exist_ok=True)
    n = 0
    seen = set()
    for s in streams:
        for req in split(s):
            for k, v in keys.items():
                req = req.replace(k.encode(), v.encode())
            # one seed per message type and path is enough; the fuzzer mutates the rest
            mt = re.search(rb'"MessageType"\s*:\s*"(\w+)"', req)
            phy = re.search(rb'"PHYPayload"\s*:\s*"(?:0x)?(..)', req)
            kind = (req.split(b" ", 2)[1], mt.group(1) if mt else b"",
                    phy.group(1).lower() if phy else b"", b"ULMetaData" in req)
            if kind in seen:
                continue
            seen.add(kind)
            name = "e2e_%s_%s_%s" % (kind[1].decode() or "none", kind[2].decode() or "nophy",
                                     hashlib.sha1(req).hexdigest()[:12])
            with open(os.path.join(OUT, name), "wb") as f:
                f.write(req)
            n += 1
    print("wrote %d seeds to %s" % (n, OUT))
    return 0 if n else 1


if __name__ == "__main__":
    sys.exit(main())
