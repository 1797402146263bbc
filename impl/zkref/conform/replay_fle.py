"""The FLE binding: replay spec/FastLeaderElection.tla paths on `FastLeaderElection` cores.

Rules:
- One core per server of the model, started with the model's InitZxid/InitEpoch (read from the
  initial state's self votes) and `start_election`, whose sends fill the channels: that is the
  spec's Init.
- The binding is the environment the spec abstracts: the channels `msgs` (FIFO per ordered
  pair), the restart and resend bounds `nRestarts` and `nResends`, and time.
  `FLEHandleNotmsg(i, j)`, `FLEFinalizeWaitNotmsg(i, j)` and `FLEReplyDecided(i, j)` pop the
  head of `msgs[j][i]` and hand it to core i; a `Requeue` the core returns (a better vote ended
  its finalize wait) puts the notification back at the head of `msgs[j][i]`, where the spec
  leaves it;
  `FLEWaitNewNotmsg(i)` lets i's finalize wait run out (the spec's "nothing in flight to me" is
  the timing assumption finalizeWait > message delay, so the environment never lets the wait
  expire while a notification to i is in flight); `FLERestart(i)` is the host seeing Zab lose
  its leader; `FLENotmsgTimeout(i)` lets i's resend timer run out (ZooKeeper's
  `recvqueue.poll(notTimeout)` returning null, which sees only what has arrived), issued
  while the model's MaxResends (0 unless its cfg says otherwise) is not used up.
- Refinement mapping (`spec_vars`): state, logicalClock, currentVote, recvVotes, outOfElection,
  waiting and prevVote from each core's `spec_vars()` (an absent vote is the spec's Nil);
  msgs, nRestarts and nResends from the environment. The core's `last_action` is not compared:
  it names the ZooKeeper step, which need not be the spec's (see docs/conformance.md).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Unpack

from zkref.conform.replay import (
    ActionCall,
    Dispatch,
    ModelReport,
    ReplayResult,
    ReplayTarget,
    RunOptions,
    cfg_constant,
    cli_parser,
    find_stored,
    load_path,
    print_stored,
    replay,
    trace_dir,
)
from zkref.conform.replay import run_model as replay_model
from zkref.conform.tlc import repo_root
from zkref.core.election import FastLeaderElection, Notification, Requeue, Send, ServerState, Sid

NIL: dict[str, Any] = {"leader": 0, "zxid": 0, "epoch": 0, "round": 0, "state": "NONE"}

ENV_VARS = frozenset({"msgs", "nRestarts", "nResends"})
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
ACTIONS = (
    "FLEHandleNotmsg",
    "FLEFinalizeWaitNotmsg",
    "FLEReplyDecided",
    "FLEWaitNewNotmsg",
    "FLERestart",
    "FLENotmsgTimeout",
)


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
        max_resends: int = 0,
        finalize_wait_ticks: int = 2,
        bug_no_finalize_wait: bool = False,
    ) -> None:
        self.max_restarts = max_restarts  # the model's MaxRestarts (bounds `candidates`)
        self.max_resends = max_resends  # the model's MaxResends (the spec's default: 0)
        self.finalize_wait_ticks = finalize_wait_ticks
        self.bug_no_finalize_wait = bug_no_finalize_wait
        self.cores: dict[int, FastLeaderElection] = {}
        self.msgs: dict[int, dict[int, list[Notification]]] = {}
        self.n_restarts = 0
        self.n_resends = 0

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
        self.n_resends = 0
        for i in servers:
            v = vote_of[i]
            self._route(i, self.cores[i].start_election(v["zxid"], v["epoch"]))

    def dispatch(self, call: ActionCall) -> Dispatch:
        ps = _int_params(call)
        match call.action:
            case "FLEHandleNotmsg" | "FLEFinalizeWaitNotmsg" | "FLEReplyDecided":
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
            case "FLENotmsgTimeout":
                (i,) = ps
                core = self.cores[i]
                # the resend timer runs out: the environment advances i's idle time
                core.idle_ticks = core.notification_interval_ticks
                if core.state is ServerState.LOOKING and not core.waiting:
                    self.n_resends += 1
                return Dispatch(core)
            case _:
                raise ValueError(f"not an action of spec/FastLeaderElection.tla: {call.action}")

    def after(self, call: ActionCall, result: object) -> None:
        i, *j = _int_params(call)
        assert isinstance(result, list)
        for e in result:
            if isinstance(e, Requeue):
                self.msgs[j[0]][i].insert(0, e.msg)  # not taken after all: still in flight
        self._route(i, result)

    def spec_vars(self) -> dict[str, Any]:
        out = spec_vars(self.cores)
        servers = sorted(self.cores)
        out["msgs"] = {
            i: {j: tuple(spec_notification(n) for n in self.msgs[i][j]) for j in servers}
            for i in servers
        }
        out["nRestarts"] = self.n_restarts
        out["nResends"] = self.n_resends
        return out

    def candidates(self) -> list[ActionCall]:
        """What the environment can do now: deliver a channel's head (to any of the three
        handlers), let a finalize wait expire when nothing is in flight to the server, let the
        resend timer expire (in flight or not, as the spec's FLENotmsgTimeout), restart a
        server."""
        out: list[ActionCall] = []
        servers = sorted(self.cores)
        for i in servers:
            for j in servers:
                if self.msgs[j][i]:
                    out.append(ActionCall("FLEHandleNotmsg", (i, j)))
                    out.append(ActionCall("FLEFinalizeWaitNotmsg", (i, j)))
                    out.append(ActionCall("FLEReplyDecided", (i, j)))
            if not any(self.msgs[j][i] for j in servers):
                out.append(ActionCall("FLEWaitNewNotmsg", (i,)))
            if self.n_resends < self.max_resends:
                out.append(ActionCall("FLENotmsgTimeout", (i,)))
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


def run_model(
    config: str,
    *,
    cfg_file: Path | None = None,
    **opts: Unpack[RunOptions],
) -> ModelReport:
    """Dump an FLE model's graph, cover it, replay every path; store up to `store` paths
    (default STORE_CAP) of at most `max_len` steps (default 60)."""
    name = config.removesuffix(".cfg")
    cfg_path = cfg_file or repo_root() / "models" / f"{name}.cfg"
    cfg_text = cfg_path.read_text()
    max_restarts = cfg_constant(cfg_text, "MaxRestarts")
    max_resends = cfg_constant(cfg_text, "MaxResends") or 0
    target = ReplayTarget(
        "MCFLE",
        "FastLeaderElection",
        lambda: FleBinding(max_restarts=max_restarts, max_resends=max_resends),
        {"max_restarts": max_restarts, "max_resends": max_resends},
        "python -m zkref.conform.replay_fle replay",
        STORE_DIVERGING,
    )
    opts.setdefault("max_len", 60)
    opts.setdefault("store", STORE_CAP)
    return replay_model(cfg_path, target, name=name, **opts)


def replay_stored(name: str, *, root: Path | None = None) -> ReplayResult:
    """Replay a stored path on fresh cores (no graph: enabled steps and the mapping only)."""
    f = find_stored(name, root)
    doc = json.loads(f.read_text())
    binding = FleBinding(
        max_restarts=doc.get("max_restarts"), max_resends=doc.get("max_resends") or 0
    )
    return replay(load_path(f), binding)


def main(argv: list[str] | None = None) -> int:
    ap, _, _ = cli_parser(
        "python -m zkref.conform.replay_fle",
        "Replay TLC state-graph paths of spec/FastLeaderElection.tla on the FLE cores.",
        "a models/MCFLE_*.cfg name, or a .cfg path",
        max_len=60,
        store=STORE_CAP,
    )
    args = ap.parse_args(argv)
    if args.cmd == "run":
        cfg = Path(args.model)
        report = run_model(
            cfg.stem,
            cfg_file=cfg if cfg.suffix == ".cfg" else None,
            max_len=args.max_len,
            max_paths=args.max_paths,
            store=args.store,
            out_dir=trace_dir(),
        )
        print(json.dumps(report.as_dict(), indent=1))
        return 0 if report.clean == report.replayed else 1
    return print_stored(args.names, replay_stored)


if __name__ == "__main__":
    sys.exit(main())
