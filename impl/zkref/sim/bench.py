"""What one txn costs the Zab cores (and the simulator host) as the log grows.

`python -m zkref.sim.bench --txns 20000` drives that many writes through a 3-server `ZabCluster`
(oracle election, invariant checks off: they read whole histories by design) and prints the
cost per txn in windows of the run. Flat windows mean O(1) amortised cost per txn; growing
windows mean some step still walks the log.
"""

from __future__ import annotations

import argparse
import sys
import time

from zkref.sim.zab_cluster import ZabCluster


def run(txns: int, *, n: int = 3, seed: int = 0, windows: int = 5) -> list[tuple[int, float]]:
    """(txns done at the window's end, mean microseconds per txn in the window)."""
    c = ZabCluster(n, seed=seed, check=False)
    c.elect()
    c.run_until_quiet()
    per = max(1, txns // windows)
    out: list[tuple[int, float]] = []
    done = 0
    while done < txns:
        k = min(per, txns - done)
        t0 = time.perf_counter()
        for _ in range(k):
            c.write()
            c.run_until_quiet()
        dt = time.perf_counter() - t0
        done += k
        out.append((done, dt / k * 1e6))
    assert c.converged(), "the run did not end converged"
    assert all(len(c.applied[s]) == txns for s in c.sids)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m zkref.sim.bench", description=__doc__)
    ap.add_argument("--txns", type=int, default=20_000)
    ap.add_argument("--servers", type=int, default=3)
    ap.add_argument("--windows", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    t0 = time.perf_counter()
    rows = run(a.txns, n=a.servers, seed=a.seed, windows=a.windows)
    total = time.perf_counter() - t0
    print(f"{a.txns} txns through {a.servers} servers in {total:.1f} s")
    for done, us in rows:
        print(f"  up to txn {done:>7}: {us:8.1f} us/txn")
    first, last = rows[0][1], rows[-1][1]
    print(f"last window / first window: {last / first:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
