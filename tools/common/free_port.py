"""free_port(): a TCP port on 127.0.0.1 that is free now — the one copy shared by the demo
(tools/demo), the relay benchmark (tools/bench/relay.sh runs this file as a script, which prints
one port) and the test harnesses (tests/integration/roamhub_harness.py, the e2e and cluster worlds).

Only for a port that must be written into another process's configuration before the process
owning it starts; a process that reports its own port (roamhubd/roamns --ports-file) binds port 0
instead, and so does a server living in the test's own process.

Racy by nature: another process may take the port before it is used. To make that unlikely the
port is drawn at random from below the kernel's ephemeral range (net.ipv4.ip_local_port_range),
where no outgoing connection and no bind to port 0 will land, and checked by binding it; a port
handed out by bind(0) (inside that range, where every test's client sockets also draw) is only the
fallback when no port below the range can be bound.
"""
import random
import socket

LOWEST = 10000  # below: ports that well-known services may be configured on


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


def free_port():
    high = _ephemeral_low()
    if high - LOWEST >= 1000:
        rnd = random.SystemRandom()
        for _ in range(64):
            port = rnd.randrange(LOWEST, high)
            if _bindable(port):
                return port
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


if __name__ == "__main__":
    print(free_port())
