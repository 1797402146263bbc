"""`zkref spec ...`: model-check the TLA+ specs with TLC and compare with the manifest.

    zkref spec check [MODEL ...] [--all] [--jobs N] [--update] [--traces DIR] [--quiet]
    zkref spec list
    zkref spec replay run MODEL [--max-paths N] | zkref spec replay replay NAME ...

`check` runs the named models (default: every CI model of `models/manifest.json`; `--all` adds
the researcher-sized ones), several TLC processes at once (`--jobs`, default 2, one TLC worker
each), prints progress while they run and one line per model at the end. A result that differs
from the manifest fails (exit 1); `--update` writes the measured numbers into the manifest
instead. A counterexample is saved as `traces/<model>.ndjson` and printed step by step.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TextIO

from zkref.conform.manifest import Manifest, ModelEntry, load_manifest
from zkref.conform.tlc import Outcome, Progress, TlcResult, repo_root, run_tlc
from zkref.conform.traces import render_trace, write_trace


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="zkref spec", description="Model-check the TLA+ specs.")
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("check", help="run TLC on models and compare with the manifest")
    c.add_argument("models", nargs="*", metavar="MODEL", help="model names (default: CI models)")
    c.add_argument("--all", action="store_true", help="also run the models not run in CI")
    c.add_argument("--list", action="store_true", help="list the models instead of running them")
    c.add_argument("--jobs", type=int, default=2, help="TLC processes at once (default 2)")
    c.add_argument("--update", action="store_true", help="write measured numbers to the manifest")
    c.add_argument("--traces", type=Path, default=None, help="directory for counterexamples")
    c.add_argument("--quiet", action="store_true", help="no progress and no trace printing")
    sub.add_parser("list", help="list the models of the manifest")
    sub.add_parser(
        "replay",
        help="replay TLC state-graph paths on the cores: `run MODEL` or `replay NAME ...` "
        "(Zab: zkref.conform.replay_zab; MCFLE_*: zkref.conform.replay_fle)",
        add_help=False,
    )
    return p


def replay(argv: list[str]) -> int:
    """`zkref spec replay ...`: the state-graph replay of the model's spec."""
    names = [a for a in argv[1:] if not a.startswith("-")]
    if names and Path(names[0]).name.startswith("MCFLE"):
        from zkref.conform.replay_fle import main as fle_main

        return fle_main(argv)
    from zkref.conform.replay_zab import main as zab_main

    return zab_main(argv)


def _list(manifest: Manifest, out: TextIO) -> None:
    for m in manifest.models:
        expect = m.expect.value if m.violated is None else f"{m.expect.value}:{m.violated}"
        ci = "ci " if m.ci else "   "
        out.write(
            f"{ci}{m.name:48s} {expect:36s} {m.distinct_states:>10,d} states "
            f"depth {m.depth:>3d}  ~{m.seconds:.0f}s\n"
        )


class _Board:
    """Serialises progress lines from several TLC runs."""

    def __init__(self, out: TextIO, quiet: bool) -> None:
        self.out = out
        self.quiet = quiet
        self.lock = threading.Lock()

    def say(self, text: str) -> None:
        if self.quiet:
            return
        with self.lock:
            self.out.write(text + "\n")
            self.out.flush()


def _run_one(entry: ModelEntry, board: _Board) -> TlcResult:
    start = time.monotonic()
    board.say(f"[{entry.name}] started")

    def progress(p: Progress) -> None:
        board.say(
            f"[{entry.name}] {time.monotonic() - start:5.0f}s  {p.distinct:,} distinct states, "
            f"{p.queue:,} on queue"
        )

    try:
        result = run_tlc(entry.module, entry.config, on_progress=progress)
    except (OSError, ValueError) as err:  # a missing file or jar must not sink the other runs
        result = TlcResult(
            model=entry.name,
            outcome=Outcome.ERROR,
            distinct_states=0,
            states_generated=0,
            depth=0,
            seconds=time.monotonic() - start,
            error=str(err),
        )
    board.say(f"[{entry.name}] finished in {result.seconds:.0f}s")
    return result


def _summary_line(entry: ModelEntry, r: TlcResult, diffs: list[str]) -> str:
    what = r.outcome.value if r.violated is None else f"{r.outcome.value}:{r.violated}"
    verdict = "ok" if not diffs else "MISMATCH: " + "; ".join(diffs)
    if r.outcome is Outcome.ERROR:
        verdict = f"ERROR: {r.error}"
    return (
        f"{entry.name:48s} {what:36s} {r.distinct_states:>10,d} states  depth {r.depth:>3d}  "
        f"{r.seconds:6.1f}s ({r.cpu_seconds:.0f}s cpu)  {verdict}"
    )


def _update_manifest(manifest: Manifest, results: dict[str, TlcResult]) -> None:
    data = json.loads(manifest.path.read_text())
    for raw in data["models"]:
        r = results.get(raw["name"])
        if r is None or r.outcome is Outcome.ERROR:
            continue
        raw["expect"] = r.outcome.value
        raw["violated"] = r.violated
        raw["distinct_states"] = r.distinct_states
        raw["depth"] = r.depth
        raw["seconds"] = r.seconds
        raw["cpu_seconds"] = r.cpu_seconds
    manifest.path.write_text(json.dumps(data, indent=2) + "\n")


def check(args: argparse.Namespace, out: TextIO) -> int:
    manifest = load_manifest()
    if args.models:
        try:
            entries = [manifest.get(n.removesuffix(".cfg")) for n in args.models]
        except KeyError as err:
            out.write(f"unknown model {err.args[0]!r}; try `zkref spec list`\n")
            return 2
    elif args.all:
        entries = list(manifest.models)
    else:
        entries = list(manifest.ci_models())
    if args.list:
        _list(Manifest(manifest.path, tuple(entries)), out)
        return 0
    board = _Board(out, args.quiet)
    wall = time.monotonic()
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        futures = {e.name: pool.submit(_run_one, e, board) for e in entries}
        results = {name: f.result() for name, f in futures.items()}
    traces_dir = args.traces or repo_root() / "traces"
    failed = False
    lines: list[str] = []
    for e in entries:
        r = results[e.name]
        diffs = e.mismatches(r)
        if r.outcome is Outcome.ERROR or (diffs and not args.update):
            failed = True
        if r.trace:
            path = write_trace(r, e.spec, traces_dir)
            if not args.quiet:
                out.write(f"\n--- counterexample of {e.name} ({r.violated}), saved to {path}\n")
                out.write(render_trace(r) + "\n")
        lines.append(_summary_line(e, r, diffs))
    out.write("\n")
    for line in lines:
        out.write(line + "\n")
    out.write(f"{len(entries)} models in {time.monotonic() - wall:.0f}s wall clock\n")
    if args.update:
        _update_manifest(manifest, results)
        out.write(f"manifest updated: {manifest.path}\n")
    return 1 if failed else 0


def main(argv: list[str]) -> int:
    """Entry point for `zkref spec ...` (argv excludes `zkref spec`)."""
    if argv[:1] == ["replay"]:
        return replay(argv[1:])
    args = _parser().parse_args(argv)
    if args.command == "list":
        _list(load_manifest(), sys.stdout)
        return 0
    return check(args, sys.stdout)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
