"""Leader fail-over time, zkref beside Apache ZooKeeper, measured the same way for both.

``python -m zkref.chaos.failover [--target zkref|zookeeper|both] [--size 3] [--runs 5]
[--tick-ms 2000]``

One run: find the leader (`srvr` says ``Mode: leader``), kill -9 it, then poll `srvr` on the
others every few milliseconds until one answers ``leader`` and every other live member
``follower``: that interval (election + discovery + sync) is the fail-over time. The old leader
is restarted and must rejoin as a follower before the next run. Prints one line per run and the
median; it asserts nothing about time (a benchmark, not a test).
"""

from __future__ import annotations

import argparse
import functools
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from zkref.chaos.zkref_proc import ZkrefServers
from zkref.chaos.zookeeper_proc import ApacheZooKeeper, apache_zookeeper_available

POLL_S = 0.005


@dataclass(frozen=True, slots=True)
class Failover:
    old: int
    new: int
    seconds: float


def _settled(ens: ApacheZooKeeper, sids: list[int]) -> int | None:
    """The leader among `sids` once one answers leader and all others follower, else None."""
    modes = {s: ens.mode(s, timeout_s=1.0) for s in sids}
    leaders = [s for s, m in modes.items() if m == "leader"]
    if len(leaders) == 1 and all(m == "follower" for s, m in modes.items() if s != leaders[0]):
        return leaders[0]
    return None


def _wait(cond: Callable[[], int | None], deadline_s: float, what: str) -> int:
    end = time.monotonic() + deadline_s
    while True:
        v = cond()
        if v is not None:
            return v
        if time.monotonic() > end:
            raise TimeoutError(f"{what}: not within {deadline_s:.0f} s")
        time.sleep(POLL_S)


def measure(ens: ApacheZooKeeper, runs: int, *, deadline_s: float = 60.0) -> list[Failover]:
    """`runs` fail-overs on a started ensemble (see the module docstring)."""
    out: list[Failover] = []
    for _ in range(runs):
        old = _wait(lambda: _settled(ens, ens.sids), deadline_s, "a leader and followers")
        rest = [s for s in ens.sids if s != old]
        t0 = time.monotonic()
        ens.kill(old)
        new = _wait(functools.partial(_settled, ens, rest), deadline_s, "a new leader")
        out.append(Failover(old, new, time.monotonic() - t0))
        ens.restart(old, timeout_s=deadline_s)
    _wait(lambda: _settled(ens, ens.sids), deadline_s, "the old leader back as a follower")
    return out


def make_ensemble(target: str, size: int, base: Path, tick_ms: int) -> ApacheZooKeeper:
    if target == "zookeeper":
        return ApacheZooKeeper(size, base, tick_time_ms=tick_ms)
    return ZkrefServers(size, base, tick_time_ms=tick_ms)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m zkref.chaos.failover", description=__doc__.split("\n\n")[0]
    )
    ap.add_argument("--target", choices=("zkref", "zookeeper", "both"), default="both")
    ap.add_argument("--size", type=int, default=3)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--tick-ms", type=int, default=2000, help="tickTime (ZooKeeper's default)")
    a = ap.parse_args(argv)
    if a.size < 3 or a.size % 2 == 0:
        ap.error("--size must be an odd number >= 3 (a leader to fail over)")
    if a.runs < 1:
        ap.error("--runs must be >= 1")
    targets = ["zkref", "zookeeper"] if a.target == "both" else [a.target]
    if "zookeeper" in targets and not apache_zookeeper_available():
        print("Apache ZooKeeper is not installed (Debian package `zookeeper`); skipping it")
        targets.remove("zookeeper")
    for target in targets:
        with tempfile.TemporaryDirectory(prefix=f"zkref-failover-{target}-") as d:
            ens = make_ensemble(target, a.size, Path(d), a.tick_ms)
            with ens:
                ens.start()
                res = measure(ens, a.runs)
        secs = [r.seconds for r in res]
        print(
            f"{target:9} {a.size} members, tickTime {a.tick_ms} ms: "
            + ", ".join(f"{s:.3f}" for s in secs)
            + f" s; median {statistics.median(secs):.3f} s"
            f" (min {min(secs):.3f}, max {max(secs):.3f})",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
