"""Shared start of the cluster benchmarks (tools/bench/cluster_*.py): the build directory from
argv[1] (default ROOT/build) exported as ROAMHUB_BUILD for the test harnesses they drive,
tests/cluster and tests/integration importable, integer arguments by position, and the
percentile they report. Import it before the harnesses."""
import os
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else os.path.join(ROOT, "build")
os.environ["ROAMHUB_BUILD"] = BUILD
sys.path.insert(0, os.path.join(ROOT, "tests", "cluster"))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))


def arg(i, default):
    """sys.argv[i] as an integer, or default when absent."""
    return int(sys.argv[i]) if len(sys.argv) > i else default


def pct(xs, p):
    """The p-th percentile (0..100) of xs by nearest rank."""
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]
