"""The FLE binding: replay spec/FastLeaderElection.tla paths on `FastLeaderElection` cores.

Rules:
- One core per server of the model, started with the model's InitZxid/InitEpoch (read from the
  initial state's self votes) and `start_election`, whose sends fill the channels: that is the
  spec's Init.
- The binding is the environment the spec abstracts: the channels `msgs` (FIFO per ordered
  pair), the restart bound `nRestarts`, and time. `FLEHandleNotmsg(i, j)` and
  `FLEReplyDecided(i, j)` pop the head of `msgs[j][i]` and hand it to core i;
  `FLEWaitNewNotmsg(i)` lets i's finalize wait run out (the spec's "nothing in flight to me" is
  the timing assumption finalizeWait > message delay, so the environment never lets the wait
  expire while a notification to i is in flight); `FLERestart(i)` is the host seeing Zab lose
  its leader.
- Refinement mapping (`spec_vars`): state, logicalClock, currentVote, recvVotes, outOfElection,
  waiting and prevVote from each core's `spec_vars()` (an absent vote is the spec's Nil);
  msgs and nRestarts from the environment. The core's `last_action` is not compared: it names
  the ZooKeeper step, which need not be the spec's (see docs/conformance.md).
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import re
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import networkx as nx

from zkref.conform.pathcover import cover
from zkref.conform.replay import (
    ActionCall,
    Dispatch,
    ReplayResult,
    load_path,
    path_from_graph,
    replay,
    save_path,
)
from zkref.conform.stategraph import load_model_graph, stats
from zkref.conform.tlc import repo_root
from zkref.core.election import FastLeaderElection, Notification, Send, ServerState, Sid

NIL: dict[str, Any] = {"leader": 0, "zxid": 0, "epoch": 0, "round": 0, "state": "NONE"}

ENV_VARS = frozenset({"msgs", "nRestarts"})
CORE_VARS = frozenset(
    {
        "state",
        "logicalClock",
        "currentVote",
        "recvVotes",
        "outOfElection",
        "waiting",
        "prevVote",
    }
)
CHANNEL_BOUND = 3  # spec/FastLeaderElection.tla ChannelBound, the CONSTRAINT of every MCFLE model
ACTIONS = ("FLEHandleNotmsg", "FLEReplyDecided", "FLEWaitNewNotmsg", "FLERestart")


def spec_notification(n: Notification) -> dict[str, Any]:
    """A notification as the spec's record [leader, zxid, epoch, round, state]."""
    return {
        "leader": int(n.leader),
        "zxid": n.zxid,
        "epoch": n.peer_epoch,
        "round": n.election_epoch,
        "state": str(n.state),
    }


def spec_vars(cores: Mapping[int, FastLeaderElection]) -> dict[str, Any]:
    """The spec's per-server variables of spec/FastLeaderElection.tla from the cores."""
    servers = sorted(cores)
    per = {i: cores[i].spec_vars() for i in servers}

    def votes(i: int, key: str) -> dict[int, Any]:
        got: dict[Any, Any] = per[i][key]  # type: ignore[assignment]
        return {j: got.get(j, got.get(Sid(j), NIL)) for j in servers}

    return {
        "state": {i: per[i]["state"] for i in servers},
        "logicalClock": {i: per[i]["logicalClock"] for i in servers},
        "currentVote": {i: per[i]["currentVote"] for i in servers},
        "recvVotes": {i: votes(i, "recvVotes") for i in servers},
        "outOfElection": {i: votes(i, "outOfElection") for i in servers},
        "waiting": {i: per[i]["waiting"] for i in servers},
        "prevVote": {i: per[i]["prevVote"] for i in servers},
    }


def _int_params(call: ActionCall) -> list[int]:
    out = []
    for p in call.params:
        if not isinstance(p, int):
            raise ValueError(f"{call}: expected server ids, got {p!r}")
        out.append(p)
    return out


class FleBinding:
    """Cores + environment for one replay (see the module rules)."""

    def __init__(
        self,
        *,
        max_restarts: int | None = None,
        finalize_wait_ticks: int = 2,
        bug_no_finalize_wait: bool = False,
        merge_unwait: bool = False,
    ) -> None:
        self.merge_unwait = merge_unwait
        self.max_restarts = max_restarts  # the model's MaxRestarts (bounds `candidates`)
        self.finalize_wait_ticks = finalize_wait_ticks
        self.bug_no_finalize_wait = bug_no_finalize_wait
        self.cores: dict[int, FastLeaderElection] = {}
        self.msgs: dict[int, dict[int, list[Notification]]] = {}
        self.n_restarts = 0

    # ------------------------------------------------------------------ Binding

    def reset(self, initial: Mapping[str, Any]) -> None:
        votes = initial["currentVote"]
        servers = list(range(1, len(votes) + 1)) if isinstance(votes, tuple) else sorted(votes)
        vote_of = {i: votes[i - 1] if isinstance(votes, tuple) else votes[i] for i in servers}
        voters = [Sid(i) for i in servers]
        self.cores = {
            i: FastLeaderElection(
                Sid(i),
                voters,
                finalize_wait_ticks=self.finalize_wait_ticks,
                bug_no_finalize_wait=self.bug_no_finalize_wait,
            )
            for i in servers
        }
        self.msgs = {i: {j: [] for j in servers} for i in servers}
        self.n_restarts = 0
        for i in servers:
            v = vote_of[i]
            self._route(i, self.cores[i].start_election(v["zxid"], v["epoch"]))

    def dispatch(self, call: ActionCall) -> Dispatch:
        ps = _int_params(call)
        match call.action:
            case "FLEHandleNotmsg" | "FLEReplyDecided":
                i, j = ps
                channel = self.msgs[j][i]
                if not channel:
                    raise IndexError(f"{call}: no notification in flight from {j} to {i}")
                return Dispatch(self.cores[i], (channel.pop(0),))
            case "FLEWaitNewNotmsg":
                (i,) = ps
                # the finalize wait runs out: the environment advances i's timer
                self.cores[i].wait_ticks_left = 0
                return Dispatch(self.cores[i])
            case "FLERestart":
                (i,) = ps
                if self.cores[i].state is not ServerState.LOOKING:
                    self.n_restarts += 1
                return Dispatch(self.cores[i])
            case _:
                raise ValueError(f"not an action of spec/FastLeaderElection.tla: {call.action}")

    def after(self, call: ActionCall, result: object) -> None:
        (i, *_) = _int_params(call)
        assert isinstance(result, list)
        self._route(i, result)

    def spec_vars(self) -> dict[str, Any]:
        out = spec_vars(self.cores)
        servers = sorted(self.cores)
        out["msgs"] = {
            i: {j: tuple(spec_notification(n) for n in self.msgs[i][j]) for j in servers}
            for i in servers
        }
        out["nRestarts"] = self.n_restarts
        return out

    def candidates(self) -> list[ActionCall]:
        """What the environment can do now: deliver a channel's head (to either handler), let
        a wait expire when nothing is in flight to the server, restart a server."""
        out: list[ActionCall] = []
        servers = sorted(self.cores)
        for i in servers:
            for j in servers:
                if self.msgs[j][i]:
                    out.append(ActionCall("FLEHandleNotmsg", (i, j)))
                    out.append(ActionCall("FLEReplyDecided", (i, j)))
            if not any(self.msgs[j][i] for j in servers):
                out.append(ActionCall("FLEWaitNewNotmsg", (i,)))
            if self.max_restarts is None or self.n_restarts < self.max_restarts:
                out.append(ActionCall("FLERestart", (i,)))
        return out

    def core_vars(self) -> frozenset[str]:
        return CORE_VARS

    def within_model(self, state: Mapping[str, Any]) -> bool:
        """The models' CONSTRAINT ChannelBound: at most CHANNEL_BOUND notifications a channel."""
        return all(
            len(ch) <= CHANNEL_BOUND for row in state["msgs"].values() for ch in row.values()
        )

    def merges_next(self, call: ActionCall) -> bool:
        """With `merge_unwait`: a better notification during the finalize wait. The spec takes
        two FLEHandleNotmsg(i, j) steps (end the wait, leaving it queued; then handle it); the
        core's process_notification does both in one call (see docs/conformance.md)."""
        if not self.merge_unwait or call.action != "FLEHandleNotmsg":
            return False
        i, j = _int_params(call)
        core, channel = self.cores[i], self.msgs[j][i]
        return (
            core.state is ServerState.LOOKING
            and core.waiting
            and bool(channel)
            and core.better(channel[0].vote, core.current_vote)
        )

    def effects_empty(self, result: object) -> bool:
        return result == []

    # ------------------------------------------------------------------ helpers

    def _route(self, frm: int, effects: list[Any]) -> None:
        for e in effects:
            if isinstance(e, Send):
                self.msgs[frm][int(e.to)].append(e.msg)


# --------------------------------------------------------------------------- models, storage

# Stored paths per model: the first STORE_CAP of the cover (the action-first ones come first),
# plus up to STORE_DIVERGING of the paths that diverge (the findings, replayable by name).
STORE_CAP = 20
STORE_DIVERGING = 10


def cfg_constant(cfg_text: str, name: str) -> int | None:
    """An integer constant assigned in a cfg (`MaxRestarts = 1`)."""
    m = re.search(rf"^\s*{name}\s*=\s*(\d+)\s*$", cfg_text, re.MULTILINE)
    return int(m.group(1)) if m else None


def trace_dir(root: Path | None = None) -> Path:
    return (root or repo_root()) / "traces" / "tlc"


@dataclass(frozen=True, slots=True)
class ModelReport:
    model: str
    graph: dict[str, object]
    cover: dict[str, object]
    replayed: int
    clean: int
    validated_edges: int  # distinct edges replayed with the mapping equal after them
    merged: int  # spec-step pairs done by one core call (only with merge_unwait)
    divergences: tuple[str, ...]
    stored: tuple[str, ...]
    seconds: dict[str, float]

    def as_dict(self) -> dict[str, object]:
        return {
            "model": self.model,
            "graph": self.graph,
            "cover": self.cover,
            "replayed": self.replayed,
            "clean": self.clean,
            "validated_edges": self.validated_edges,
            "merged": self.merged,
            "divergences": list(self.divergences),
            "stored": list(self.stored),
            "seconds": self.seconds,
        }


def run_model(
    config: str,
    *,
    cfg_file: Path | None = None,
    max_len: int = 60,
    max_paths: int | None = None,
    store: int = STORE_CAP,
    out_dir: Path | None = None,
    check_disabled: bool = True,
    graph: nx.MultiDiGraph | None = None,
    merge_unwait: bool = False,
) -> ModelReport:
    """Dump an FLE model's graph, cover it, replay every path; store up to `store` paths."""
    name = config.removesuffix(".cfg")
    cfg_path = cfg_file or repo_root() / "models" / f"{name}.cfg"
    spec_text = (repo_root() / "spec" / "FastLeaderElection.tla").read_bytes()
    max_restarts = cfg_constant(cfg_path.read_text(), "MaxRestarts")
    t0 = time.monotonic()
    g = graph if graph is not None else load_model_graph("MCFLE", name, cfg_file=cfg_path)
    t1 = time.monotonic()
    c = cover(g, max_len=max_len, max_paths=max_paths)
    t2 = time.monotonic()
    clean = 0
    divergences: list[str] = []
    checked: set[str] = set()
    found: dict[int, str] = {}
    merged = 0
    validated: set[tuple[str, str]] = set()  # edges replayed before any divergence
    keep: list[int] = list(range(min(store, len(c.paths))))
    for k, nodes in enumerate(c.paths):
        path = path_from_graph(g, nodes, f"{name}-{k:05d}")
        binding = FleBinding(max_restarts=max_restarts, merge_unwait=merge_unwait)
        r = replay(path, binding, graph=g, check_disabled=check_disabled, checked_nodes=checked)
        validated.update(itertools.pairwise(nodes[: r.steps + 1]))
        merged += r.merged
        if r.ok:
            clean += 1
        else:
            divergences.append(str(r.divergence))
            found[k] = str(r.divergence)
            if k not in keep and len(keep) < store + STORE_DIVERGING:
                keep.append(k)
    t3 = time.monotonic()
    stored: list[str] = []
    if store and out_dir is not None:
        folder = out_dir / name
        for old in folder.glob(f"{name}-*.json"):
            old.unlink()
        for k in keep:
            pname = f"{name}-{k:05d}"
            meta = {
                "name": pname,
                "model": name,
                "spec": "FastLeaderElection",
                "index": k,
                "max_restarts": max_restarts,
                "replay": f"python -m zkref.conform.replay_fle replay {pname}",
                "divergence": found.get(k),
            }
            save_path(g, c.paths[k], folder / f"{pname}.json", meta)
            stored.append(pname)
    return ModelReport(
        model=name,
        graph=stats(g).as_dict() | {"spec_sha256": hashlib.sha256(spec_text).hexdigest()[:16]},
        cover=c.as_dict(),
        replayed=len(c.paths),
        clean=clean,
        validated_edges=len(validated),
        merged=merged,
        divergences=tuple(divergences),
        stored=tuple(stored),
        seconds={
            "dump_and_parse": round(t1 - t0, 1),
            "cover": round(t2 - t1, 1),
            "replay": round(t3 - t2, 1),
        },
    )


def find_stored(name: str, root: Path | None = None) -> Path:
    """A stored path by name (`MCFLE_liveness-00012`) or file."""
    p = Path(name)
    if p.is_file():
        return p
    model = name.rsplit("-", 1)[0]
    f = trace_dir(root) / model / f"{name}.json"
    if not f.is_file():
        raise FileNotFoundError(f"no stored path {name} (looked for {f})")
    return f


def replay_stored(
    name: str, *, root: Path | None = None, merge_unwait: bool = False
) -> ReplayResult:
    """Replay a stored path on fresh cores (no graph: enabled steps and the mapping only)."""
    f = find_stored(name, root)
    doc = json.loads(f.read_text())
    binding = FleBinding(max_restarts=doc.get("max_restarts"), merge_unwait=merge_unwait)
    return replay(load_path(f), binding)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m zkref.conform.replay_fle",
        description="Replay TLC state-graph paths of spec/FastLeaderElection.tla on the FLE cores.",
    )
    sub = ap.add_subparsers(dest="cmd", required=True)
    run_p = sub.add_parser("run", help="dump, cover, replay a model; store paths")
    run_p.add_argument("model", help="a models/MCFLE_*.cfg name, or a .cfg path")
    run_p.add_argument("--max-len", type=int, default=60)
    run_p.add_argument("--max-paths", type=int, default=None)
    run_p.add_argument("--store", type=int, default=STORE_CAP)
    run_p.add_argument(
        "--merge-unwait",
        action="store_true",
        help="accept the core's one-call handling of a better vote during the finalize wait",
    )
    rep_p = sub.add_parser("replay", help="replay stored paths by name")
    rep_p.add_argument("names", nargs="+")
    rep_p.add_argument("--merge-unwait", action="store_true")
    args = ap.parse_args(argv)
    if args.cmd == "run":
        cfg = Path(args.model)
        report = run_model(
            cfg.stem,
            cfg_file=cfg if cfg.suffix == ".cfg" else None,
            max_len=args.max_len,
            max_paths=args.max_paths,
            store=0 if args.merge_unwait else args.store,
            out_dir=trace_dir(),
            merge_unwait=args.merge_unwait,
        )
        print(json.dumps(report.as_dict(), indent=1))
        return 0 if report.clean == report.replayed else 1
    status = 0
    for name in args.names:
        r = replay_stored(name, merge_unwait=args.merge_unwait)
        print(f"{name}: {'ok' if r.ok else 'DIVERGES'} ({r.steps} steps)")
        if r.divergence is not None:
            print(f"  {r.divergence}")
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
