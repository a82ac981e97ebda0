"""free_port(): a TCP port on 127.0.0.1 that is free now — the one copy shared by the demo
(tools/demo), the relay benchmark (tools/bench/relay.sh runs this file as a script, which prints
one port) and the test harnesses (tests/integration/roamhub_harness.py, the e2e and cluster worlds).

Only for a port that must be written into another process's configuration before the process
owning it starts; a process that reports its own port (roamhubd/roamns --ports-file) binds port 0
instead, and so does a server living in the test's own process.

Racy by nature: another process may take the port before its owner binds it. Two measures make
that unlikely while tests run side by side (ctest -j2):
- the port is drawn at random from below the kernel's ephemeral range
  (net.ipv4.ip_local_port_range), where no outgoing connection and no bind to port 0 lands, and
  checked by binding it;
- every port handed out is written, under an flock, to a registry file in the temporary
  directory and not handed out again, by any process, for HOLD_S seconds (long enough for its
  owner to start and bind it).
A port handed out by bind(0) is only the fallback when no port below the range can be bound.
"""
import fcntl
import os
import random
import socket
import tempfile
import time

LOWEST = 10000  # below: ports that well-known services may be configured on
HOLD_S = 300
REGISTRY = os.path.join(tempfile.gettempdir(), "roamhub-free-ports")


def _ephemeral_low():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _bindable(port):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def _draw(taken):
    high = _ephemeral_low()
    if high - LOWEST >= 1000:
        rnd = random.SystemRandom()
        for _ in range(64):
            port = rnd.randrange(LOWEST, high)
            if port not in taken and _bindable(port):
                return port
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


def _read_registry(f, now):
    f.seek(0)
    taken = {}
    for line in f:
        parts = line.split()
        try:
            port, t = int(parts[0]), float(parts[1])
        except (IndexError, ValueError):
            continue
        if -1 < now - t < HOLD_S:  # (written rounded to ms: may lie just after now)
            taken[port] = t
    return taken


def free_port():
    try:
        f = open(REGISTRY, "a+")
    except OSError:  # no writable temporary directory: the random draw alone
        return _draw(set())
    with f:
        fcntl.flock(f, fcntl.LOCK_EX)
        now = time.time()
        taken = _read_registry(f, now)
        port = _draw(taken)
        taken[port] = now
        f.seek(0)
        f.truncate()
        f.write("".join("%d %.3f\n" % kv for kv in taken.items()))
    return port


if __name__ == "__main__":
    print(free_port())
