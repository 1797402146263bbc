"""Benchmark the checker: ``python -m zkref.chaos.bench [--ops 10000] [--clients 5]``.

Generates linearizable histories (``zkref.chaos.gen``) and times (a) the full ``check`` (writes,
final reads, session order, durability) and (b) the register search over *every* op, plain reads
included, which is the harder instance. Prints one line per configuration.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from collections import defaultdict

from zkref.chaos.checker import check
from zkref.chaos.gen import generate
from zkref.chaos.history import Op, complete_ops
from zkref.chaos.linearizability import check_register


def _all_ops_search(ops: list[Op]) -> tuple[bool | None, int]:
    per_key: dict[str, list[Op]] = defaultdict(list)
    for o in ops:
        per_key[o.path].append(o)
    verdict: bool | None = True
    explored = 0
    for kops in per_key.values():
        r = check_register([dataclasses.replace(o, id=i) for i, o in enumerate(kops)])
        explored += r.explored
        if r.ok is not True:
            verdict = r.ok
    return verdict, explored


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--ops", type=int, default=10_000)
    ap.add_argument("--clients", type=int, default=5)
    ap.add_argument("--keys", type=int, nargs="*", default=[1, 5])
    ap.add_argument("--info-rate", type=float, default=0.005)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args(argv)
    print(f"{'keys':>4} {'ops':>6} {'events':>7} {'info':>5} {'check s':>8} {'all-ops s':>9} valid")
    for keys in a.keys:
        h = generate(a.seed, n_ops=a.ops, processes=a.clients, keys=keys, info_rate=a.info_rate)
        ops = complete_ops(h.events)
        n_info = sum(1 for o in ops if o.status == "info")
        t = time.perf_counter()
        report = check(h)
        t_check = time.perf_counter() - t
        t = time.perf_counter()
        ok, _ = _all_ops_search(ops)
        t_all = time.perf_counter() - t
        print(
            f"{keys:>4} {len(ops):>6} {len(h.events):>7} {n_info:>5} {t_check:>8.3f} "
            f"{t_all:>9.3f} {report.valid} / {ok}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
