"""free_port(): a TCP port on 127.0.0.1 that the kernel has just handed out as free (bind to port
0, read it, close) — the one copy shared by the demo (tools/demo), the relay benchmark
(tools/bench/relay.sh runs this file as a script, which prints one port) and the test harness
(tests/integration/roamhub_harness.py, used by the e2e world).

Only for a port that must be written into another process's configuration before the process
owning it starts; a process that reports its own port (roamhubd/roamns --ports-file) binds port 0
instead. Racy by nature: another process may take the port before it is used.
"""
import socket


def free_port():
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


if __name__ == "__main__":
    print(free_port())
