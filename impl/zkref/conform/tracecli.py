"""`zkref trace ...`: validate recorded traces against the TLA+ specs with TLC.

zkref trace validate FILE|DIR [...] [--spec Zab|FastLeaderElection|Sessions] [--no-diagnose]
zkref trace merge DIR [-o FILE]
zkref trace simulate SPEC [--depth N] [--seed N] [--vars a,b] [--out FILE]

`merge` orders the member files of a traced ensemble run (`zkref ensemble --trace-dir DIR`,
`$ZKREF_TRACE_DIR`) into one Zab trace (`zkref.conform.tracemerge`); `validate DIR` merges and
validates in one go.

Exit status of `validate`: 0 every trace ACCEPTED, 1 some trace REJECTED, 2 an ERROR (bad file,
TLC failure). `simulate` writes a trace of one random behaviour of the spec (TLC -simulate) on
the spec's small default model, for trying the checker.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from zkref.conform.trace import SPECS, TraceFormatError, dump_lines, parse_lines, read_trace
from zkref.conform.tracecheck import Status, behaviour_trace, check_trace, env_timeout, simulate
from zkref.conform.tracemerge import merge

# small models for `simulate` (the shapes of models/MC*_base.cfg, whose switches for the
# implementation-only timers are off: trace checks, by contrast, default them on)
DEFAULT_MODELS: dict[str, dict[str, object]] = {
    "FastLeaderElection": {
        "InitZxid": {"1": 1, "2": 1, "3": 0},
        "InitEpoch": {"1": 2, "2": 1, "3": 1},
        "MaxRestarts": 1,
        "MaxResends": 0,
    },
    "Zab": {
        "MaxEpoch": 2,
        "MaxTxns": 2,
        "MaxCrashes": 1,
        "MaxPartitions": 0,
        "InitLimitTimeouts": False,
    },
    "Sessions": {"MaxLog": 4, "MaxConns": 3},
}


def _validate(args: argparse.Namespace) -> int:
    worst = 0
    for name in args.files:
        path = Path(name)
        try:
            trace = parse_lines(merge(path)) if path.is_dir() else read_trace(path)
        except TraceFormatError as e:
            print(f"{path}: ERROR: {e}", file=sys.stderr)
            worst = 2
            continue
        if args.spec and args.spec != trace.header.spec:
            trace = dataclasses.replace(
                trace, header=dataclasses.replace(trace.header, spec=args.spec)
            )
        v = check_trace(trace, timeout_s=args.timeout, diagnose=not args.no_diagnose)
        print(f"{path}: {v.report()}")
        code = {Status.ACCEPTED: 0, Status.REJECTED: 1, Status.ERROR: 2}[v.status]
        worst = max(worst, code)
    return worst


def _merge(args: argparse.Namespace) -> int:
    try:
        lines = merge(Path(args.dir))
    except TraceFormatError as e:
        print(f"{args.dir}: ERROR: {e}", file=sys.stderr)
        return 2
    text = "".join(line + "\n" for line in lines)
    if args.out:
        Path(args.out).write_text(text)
        print(f"{args.out}: {len(lines) - 1} records merged from {args.dir}")
    else:
        sys.stdout.write(text)
    return 0


def _simulate(args: argparse.Namespace) -> int:
    spec = args.spec_name
    servers = (1, 2) if spec == "Sessions" else (1, 2, 3)
    clients = (1,) if spec == "Sessions" else ()
    b = simulate(
        spec,
        servers=servers,
        clients=clients,
        constants=dict(DEFAULT_MODELS[spec]),
        depth=args.depth,
        seed=args.seed,
    )
    variables = args.vars.split(",") if args.vars else None
    trace = behaviour_trace(b, variables=variables, per_node=not args.global_post)
    text = "".join(line + "\n" for line in dump_lines(trace))
    if args.out:
        Path(args.out).write_text(text)
        print(f"{args.out}: {len(trace.records)} records ({len(b.states) - 1} steps)")
    else:
        sys.stdout.write(text)
    return 0


def main(argv: list[str]) -> int:
    if argv[:1] == ["draw"]:  # zkref trace draw FILE -o OUT.svg (zkref.conform.tracedraw)
        from zkref.conform.tracedraw import main as draw_main

        return draw_main(argv[1:])
    ap = argparse.ArgumentParser(prog="zkref trace", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    v = sub.add_parser("validate", help="check NDJSON traces against the spec with TLC")
    v.add_argument("files", nargs="+", metavar="FILE", help="a trace, or a dir of member files")
    v.add_argument("--spec", choices=SPECS, help="override the header's spec")
    v.add_argument("--timeout", type=float, default=env_timeout(), help="seconds per TLC run")
    v.add_argument("--no-diagnose", action="store_true", help="skip the diagnosis run")
    g = sub.add_parser("merge", help="one Zab trace from a traced ensemble run's member files")
    g.add_argument("dir", metavar="DIR")
    g.add_argument("-o", "--out", help="write here (default: stdout)")
    s = sub.add_parser("simulate", help="write a trace of a random behaviour of a spec")
    s.add_argument("spec_name", choices=SPECS, metavar="SPEC")
    s.add_argument("--depth", type=int, default=20)
    s.add_argument("--seed", type=int, default=1)
    s.add_argument("--vars", help="comma-separated post variables (default: all)")
    s.add_argument("--global-post", action="store_true", help="whole variables, no node slices")
    s.add_argument("--out")
    try:
        args = ap.parse_args(argv)
    except SystemExit as e:
        return int(e.code or 0)
    if args.cmd == "validate":
        return _validate(args)
    if args.cmd == "simulate":
        return _simulate(args)
    if args.cmd == "merge":
        return _merge(args)
    print(json.dumps({"error": f"unknown command {args.cmd}"}), file=sys.stderr)
    return 2
