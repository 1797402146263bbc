"""``zkref chaos run|check``: dispatched here by the top-level ``zkref`` CLI.

Exit codes: 0 valid, 1 a property was violated, 2 unknown (budget exhausted) or bad input,
3 the target could not be started.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from zkref.chaos.checker import CheckReport, check_file, render_text
from zkref.chaos.harness import (
    FAULT_KINDS,
    PLANTS,
    UNBOUNDED_OPS,
    RunConfig,
    TargetUnavailable,
    run,
)
from zkref.chaos.history import HistoryError
from zkref.chaos.timeline import render_html
from zkref.chaos.zookeeper_proc import ZooKeeperStartError

__all__ = ["main", "parser", "run_config"]


def _exit_code(report: CheckReport) -> int:
    return {True: 0, False: 1, None: 2}[report.valid]


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="zkref chaos", description=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)

    r = sub.add_parser("run", help="run a fault-injecting workload, record and check a history")
    r.add_argument("--target", choices=("zookeeper", "zkref"), default="zookeeper")
    r.add_argument("--nodes", type=int, default=3, help="ensemble size (1, 3, 5, 7)")
    r.add_argument("--connect", help="connect string of an ensemble this run does not manage")
    r.add_argument("--faults-config", help="JSON of fault commands for --connect (see docs)")
    r.add_argument("--clients", type=int, default=5)
    r.add_argument("--keys", type=int, default=5)
    r.add_argument("--duration", type=float, default=40.0, help="seconds of workload")
    r.add_argument(
        "--max-ops",
        type=int,
        default=0,
        help="stop once the clients made this many operations in all (default 0: no bound, "
        "--duration ends the run, so every scheduled fault happens)",
    )
    r.add_argument(
        "--faults",
        default="kill-leader,pause-follower,isolate-leader",
        help=f"comma-separated schedule, cycled; from: {', '.join(FAULT_KINDS)}; '' for none",
    )
    r.add_argument("--fault-duration", type=float, default=5.0)
    r.add_argument("--quiet", type=float, default=3.0, help="seconds between faults")
    r.add_argument("--sync-reads", action="store_true", help="sync before reads; check them")
    r.add_argument("--seed", type=int, default=1)
    r.add_argument("--tick-time-ms", type=int, default=500)
    r.add_argument("--out", type=Path, default=None, help="report dir (default chaos-<time>)")
    r.add_argument(
        "--plant",
        choices=sorted(PLANTS),
        help="TEST-ONLY: run zkref with a planted bug (an UNSAFE zoo.cfg mode, docs/chaos.md); "
        "the check must fail",
    )

    c = sub.add_parser("check", help="check a recorded history.ndjson")
    c.add_argument("history", type=Path)
    c.add_argument("--sync-reads", action="store_true", help="also check reads after a sync")
    c.add_argument("--html", type=Path, help="write the verdicts and timelines here")
    c.add_argument("--json", action="store_true", help="print verdicts as JSON")
    c.add_argument("--budget", type=int, default=5_000_000, help="search steps per znode")
    return ap


def run_config(a: argparse.Namespace, out: Path, faults: tuple[str, ...]) -> RunConfig:
    """The harness configuration of a parsed ``zkref chaos run`` command line."""
    return RunConfig(
        out_dir=out,
        target=a.target,
        nodes=a.nodes,
        connect=a.connect,
        faults_config=a.faults_config,
        clients=a.clients,
        keys=a.keys,
        duration_s=a.duration,
        max_ops=a.max_ops if a.max_ops > 0 else UNBOUNDED_OPS,
        faults=faults,
        fault_duration_s=a.fault_duration,
        quiet_s=a.quiet,
        sync_reads=a.sync_reads,
        seed=a.seed,
        tick_time_ms=a.tick_time_ms,
        plant=a.plant,
    )


def main(argv: list[str]) -> int:
    a = parser().parse_args(argv)
    if a.cmd == "check":
        try:
            report = check_file(a.history, sync_reads=a.sync_reads, budget=a.budget)
        except (OSError, HistoryError) as e:
            print(f"zkref chaos check: {e}", file=sys.stderr)
            return 2
        try:
            print(json.dumps(report.to_json(), indent=2) if a.json else render_text(report))
        except BrokenPipeError:  # `| head`: the reader has seen enough; the exit code stands
            sys.stderr.close()
        if a.html:
            render_html(report, a.html)
            print(f"timeline: {a.html}")
        return _exit_code(report)

    out = a.out or Path(f"chaos-{time.strftime('%Y%m%d-%H%M%S')}")
    faults = tuple(f for f in a.faults.split(",") if f)
    unknown = [f for f in faults if f not in FAULT_KINDS]
    if unknown:
        print(f"unknown faults {unknown}; known: {', '.join(FAULT_KINDS)}", file=sys.stderr)
        return 2
    cfg = run_config(a, out, faults)
    try:
        res = run(cfg)
    except (TargetUnavailable, ZooKeeperStartError) as e:
        print(f"zkref chaos run: {e}", file=sys.stderr)
        return 3
    print(render_text(res.report))
    print(
        f"run: {res.seconds:.1f}s, {res.n_ops} ops ({res.n_events} events), "
        f"{len(res.faults)} faults{' (interrupted)' if res.interrupted else ''}; report in {out}/"
    )
    return _exit_code(res.report)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
