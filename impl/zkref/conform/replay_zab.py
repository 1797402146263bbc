"""TLC state-graph paths of spec/Zab.tla replayed on the Zab cores in the simulator.

Rules:
- The cores run inside a `ZabCluster` (per-pair FIFO links, a disk per server, the host loop
  that executes effects); a spec step is the method registered for its action, called on the
  role object that owns it (`Leader`, `LearnerHandler`, `Follower`, `SyncRequestProcessor`,
  `QuorumPeer`, `ZabCluster`), and its effects go through the simulator's host loop. The
  election oracle (ElectLeader / FollowLeader) is the simulator's, as in the spec;
  `ElectionOracle` carries the two names for the replay (in the server they are
  FastLeaderElection's).
- The environment acts around a call: a message action pops the head of the link j -> i (and
  refuses if its packet type is not the action's); NodeFsyncLog makes the host's disk durable
  first; NodeCrash crashes the host's disk and links first; LeaderProcessRequest is a client
  write whose session id is the leader's sid (the spec's txn field `v`).
- `spec_vars(cluster)` is the refinement mapping: every variable of spec/Zab.tla except
  `lastAction`, computed from the cores' fields, the links (`msgs`), the network's partitions
  and the host's ghosts and fault counters.
- Granularity (docs/conformance.md): the cores run follow-up steps eagerly in one call
  (`Follower.process_newleader` and a flush run `progress`, i.e. FollowerUpdateCurrentEpoch and
  FollowerReplyACKLD; `Leader.process_ackepoch` runs `_sync_pending`, i.e. LeaderSyncFollower).
  The spec takes each as its own step, so that anything may fall between. By default the binding
  turns the eager follow-ups off on the role objects (`split=True`) and the spec's own steps run
  them; with `split=False` the cores are replayed as they are and the first such path diverges.
- The models' bounds (MaxEpoch, MaxTxns, MaxCrashes, MaxPartitions) are `within_model`; a
  disabled-action trial that leaves them is TLC's pruning, not the spec's guard.
"""

from __future__ import annotations

import itertools
import json
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Unpack

from zkref.conform.replay import (
    ActionCall,
    Dispatch,
    ModelReport,
    ReplayResult,
    ReplayTarget,
    RunOptions,
    SpecPath,
    Step,
    cfg_constant,
    cli_parser,
    find_stored,
    load_path,
    print_stored,
    replay,
    trace_dir,
)
from zkref.conform.replay import run_model as replay_model
from zkref.conform.stategraph import ModelValue
from zkref.conform.tlc import repo_root
from zkref.core.acl import OPEN_ACL_UNSAFE
from zkref.core.spec_action import spec_action
from zkref.core.zab.effects import Effect, Trace
from zkref.core.zab.leader import Leader
from zkref.core.zab.messages import (
    Ack,
    AckEpoch,
    Commit,
    Diff,
    FollowerInfo,
    LeaderInfo,
    NewLeader,
    Proposal,
    QuorumPacket,
    Sid,
    Snap,
    Trunc,
    Txn,
    UpToDate,
)
from zkref.core.zab.zxid import zxid_counter, zxid_epoch
from zkref.sim.network import InFlight
from zkref.sim.zab_cluster import ZabCluster
from zkref.sim.zab_cluster import spec_vars as server_vars
from zkref.wire.constants import OpCode
from zkref.wire.records import CreateTxn

NO_LEADER = "none"

# the variables the cores (and the simulator's oracle) own: a spec-disabled call must leave them
CORE_VARS = frozenset(
    {
        "state",
        "zabState",
        "online",
        "leaderOf",
        "acceptedEpoch",
        "currentEpoch",
        "history",
        "disk",
        "lastCommitted",
        "nlPhase",
        "cepochRecv",
        "ackeRecv",
        "ackldRecv",
        "forwarding",
        "acks",
    }
)

# packet type that each message action consumes
MESSAGE_ACTIONS: dict[str, tuple[type, ...]] = {
    "LeaderProcessFOLLOWERINFO": (FollowerInfo,),
    "FollowerProcessLEADERINFO": (LeaderInfo,),
    "LeaderProcessACKEPOCH": (AckEpoch,),
    "FollowerProcessSyncMessage": (Diff, Trunc, Snap),
    "FollowerProcessNEWLEADER": (NewLeader,),
    "LeaderProcessACKLD": (Ack,),
    "FollowerProcessUPTODATE": (UpToDate,),
    "FollowerProcessPROPOSAL": (Proposal,),
    "LeaderProcessACK": (Ack,),
    "FollowerProcessCOMMIT": (Commit,),
}
LEADER_MESSAGE_ACTIONS = {
    "LeaderProcessFOLLOWERINFO",
    "LeaderProcessACKEPOCH",
    "LeaderProcessACKLD",
    "LeaderProcessACK",
}


# --------------------------------------------------------------------------- values


def sname(s: int) -> str:
    """A server id as the spec's model value name (`s1`)."""
    return f"s{s}"


def sid_of(v: Any) -> Sid:
    """A server id from a TLC value (`s2`)."""
    name = v.name if isinstance(v, ModelValue) else str(v)
    m = re.fullmatch(r"s(\d+)", name)
    if m is None:
        raise ValueError(f"not a server id of the Zab models: {v!r}")
    return Sid(int(m.group(1)))


def zxid(z: int) -> tuple[int, int]:
    return (zxid_epoch(z), zxid_counter(z))


def spec_txn(t: Txn) -> dict[str, Any]:
    """A txn as the spec's record [zxid, v]: `v` is the proposing leader, which the binding
    passes as the txn's client session id."""
    return {"zxid": zxid(t.zxid), "v": sname(t.hdr.client_id)}


def frozen_txn(t: Txn) -> tuple[tuple[str, Any], ...]:
    """A txn as an element of a set, in the parser's frozen record form."""
    return (("v", sname(t.hdr.client_id)), ("zxid", zxid(t.zxid)))


def spec_msg(m: QuorumPacket) -> dict[str, Any]:
    """A quorum packet as the spec's message record."""
    match m:
        case FollowerInfo():
            return {"mtype": "FOLLOWERINFO", "epoch": m.accepted_epoch}
        case LeaderInfo():
            return {"mtype": "LEADERINFO", "epoch": m.epoch}
        case AckEpoch():
            return {
                "mtype": "ACKEPOCH",
                "epoch": m.current_epoch,
                "zxid": zxid(m.last_zxid),
                "fresh": m.fresh,
            }
        case Diff() | Trunc():
            kind = "DIFF" if isinstance(m, Diff) else "TRUNC"
            return {"mtype": kind, "zxid": zxid(m.zxid), "txns": tuple(spec_txn(t) for t in m.txns)}
        case Snap():
            return {
                "mtype": "SNAP",
                "zxid": zxid(m.zxid),
                "txns": tuple(spec_txn(t) for t in m.snapshot),
            }
        case NewLeader():
            return {"mtype": "NEWLEADER", "epoch": m.epoch}
        case Ack() if zxid_counter(m.zxid) == 0:
            return {"mtype": "ACKLD", "epoch": zxid_epoch(m.zxid)}
        case Ack():
            return {"mtype": "ACK", "zxid": zxid(m.zxid)}
        case UpToDate():
            return {"mtype": "UPTODATE", "zxid": zxid(m.zxid)}
        case Proposal():
            return {"mtype": "PROPOSAL", "txn": spec_txn(m.txn)}
        case Commit():
            return {"mtype": "COMMIT", "zxid": zxid(m.zxid)}
    raise AssertionError(f"unknown packet {m!r}")


def _acks(a: Any) -> frozenset[tuple[str, tuple[int, int]]]:
    """The leader's ACK record as the spec's set of <<sid, zxid>>: a set of (sid, zxid) pairs,
    or a map zxid -> sids (a core that drops the ACKs of a committed zxid, see
    `project_acks`)."""
    if isinstance(a, dict):
        return frozenset((sname(j), zxid(z)) for z, js in a.items() for j in js)
    return frozenset((sname(j), zxid(z)) for j, z in a)


# Does the leader core drop the ACKs of a zxid once it commits (and ignore later ones)? Then
# the spec's `acks`, which keeps every ACK, is compared on the uncommitted zxids only.
CORE_PRUNES_ACKS = hasattr(Leader, "_add_ack")


def project_acks(state: Mapping[str, Any]) -> dict[str, Any]:
    """A spec state with each leader's `acks` cut to the zxids above its last committed one."""
    acks: dict[Any, Any] = {}
    for i, a in state["acks"].items():
        lc = state["lastCommitted"][i]
        if lc == 0:
            acks[i] = a
            continue
        top = state["history"][i][lc - 1]["zxid"]
        acks[i] = frozenset(p for p in a if tuple(p[1]) > tuple(top))
    return {**state, "acks": acks}


def project_path(path: SpecPath) -> SpecPath:
    """The path as the cores can refine it (`project_acks` when `CORE_PRUNES_ACKS`)."""
    if not CORE_PRUNES_ACKS:
        return path
    steps = tuple(Step(st.call, project_acks(st.state)) for st in path.steps)
    return SpecPath(path.name, project_acks(path.initial), steps, path.nodes)


def _leader_name(s: Sid | None) -> str:
    return NO_LEADER if s is None else sname(s)


def spec_vars(c: ZabCluster, *, n_crashes: int = 0, n_partitions: int = 0) -> dict[str, Any]:
    """The refinement mapping: spec/Zab.tla's variables (all but lastAction) from the cluster."""
    v = server_vars(c)
    ss = list(c.sids)

    def per(f: Any) -> dict[str, Any]:
        return {sname(s): f(s) for s in ss}

    def leader_set(s: Sid, attr: str) -> Any:
        ld = c.peers[s].leader
        return getattr(ld, attr) if ld is not None else set()

    return {
        "state": per(lambda s: v.state[s]),
        "zabState": per(lambda s: v.zab_state[s]),
        "online": per(lambda s: v.online[s]),
        "leaderOf": per(lambda s: _leader_name(v.leader_of[s])),
        "acceptedEpoch": per(lambda s: v.accepted_epoch[s]),
        "currentEpoch": per(lambda s: v.current_epoch[s]),
        "history": per(lambda s: tuple(spec_txn(t) for t in v.history[s])),
        "disk": per(lambda s: tuple(spec_txn(t) for t in v.disk[s])),
        "lastCommitted": per(lambda s: v.last_committed[s]),
        "nlPhase": per(lambda s: v.nl_phase[s]),
        "cepochRecv": per(
            lambda s: frozenset((sname(j), e) for j, e in leader_set(s, "cepoch_recv"))
        ),
        "ackeRecv": per(
            lambda s: frozenset(
                (sname(j), zxid(z), fresh) for j, z, fresh in leader_set(s, "ackepoch_recv")
            )
        ),
        "ackldRecv": per(lambda s: frozenset(sname(j) for j in leader_set(s, "ackld_recv"))),
        "forwarding": per(lambda s: frozenset(sname(j) for j in leader_set(s, "forwarding"))),
        "acks": per(lambda s: _acks(leader_set(s, "acks"))),
        "msgs": {
            sname(a): {
                sname(b): ()
                if a == b
                else tuple(spec_msg(f.msg) for f in c.net.links[(a, b)].queue)
                for b in ss
            }
            for a in ss
        },
        "partition": frozenset(frozenset(sname(x) for x in p) for p in c.net.partitions),
        "proposed": frozenset(frozen_txn(t) for t in v.proposed),
        "committed": frozenset(frozen_txn(t) for t in v.committed),
        "epochLeader": frozenset((e, sname(s)) for e, s in v.epoch_leader),
        "nCrashes": n_crashes,
        "nPartitions": n_partitions,
    }


# --------------------------------------------------------------------------- the binding


class ElectionOracle:
    """The simulator's election oracle under the spec's names (the spec abstracts election the
    same way; in the server these steps are FastLeaderElection's)."""

    def __init__(self, cluster: ZabCluster) -> None:
        self.cluster = cluster

    @spec_action("ElectLeader")
    def elect_leader(self, i: Sid, q: frozenset[Sid]) -> None:
        """Spec: ElectLeader (oracle). Impl: ZabCluster.elect."""
        self.cluster.elect(i, set(q))

    @spec_action("FollowLeader")
    def follow_leader(self, i: Sid, j: Sid) -> None:
        """Spec: FollowLeader (oracle). Impl: ZabCluster.follow."""
        self.cluster.follow(i, j)


def _no_follow_up() -> list[Effect]:
    return []


@dataclass(frozen=True, slots=True)
class Bounds:
    """A model's CONSTANTS that bound its behaviours (TLC prunes what leaves them)."""

    max_epoch: int
    max_txns: int
    max_crashes: int
    max_partitions: int
    # the spec's InitLimitTimeouts switch (a definition, FALSE unless the cfg overrides it)
    init_limit_timeouts: bool = False

    @staticmethod
    def of_cfg(text: str) -> Bounds:
        def const(name: str) -> int:
            v = cfg_constant(text, name)
            if v is None:
                raise ValueError(f"the cfg sets no {name}")
            return v

        return Bounds(
            const("MaxEpoch"),
            const("MaxTxns"),
            const("MaxCrashes"),
            const("MaxPartitions"),
            re.search(r"^\s*InitLimitTimeouts\s*=\s*TRUE\s*$", text, re.MULTILINE) is not None,
        )

    def as_dict(self) -> dict[str, int]:
        return {
            "MaxEpoch": self.max_epoch,
            "MaxTxns": self.max_txns,
            "MaxCrashes": self.max_crashes,
            "MaxPartitions": self.max_partitions,
            # only when set, so the paths stored before the switch existed stay as they were
            **({"InitLimitTimeouts": 1} if self.init_limit_timeouts else {}),
        }


class ZabBinding:
    """A ZabCluster + the environment for one replay (see the module rules)."""

    def __init__(self, bounds: Bounds, *, split: bool = True, **peer_kw: Any) -> None:
        self.bounds = bounds
        self.split = split
        self.peer_kw = peer_kw
        self.cluster = ZabCluster(2, check=False, durability_checks=False, **peer_kw)
        self.n_crashes = 0
        self.n_partitions = 0
        self.popped: QuorumPacket | None = None  # the packet the current message action took

    # ------------------------------------------------------------------ Binding

    def reset(self, initial: Mapping[str, Any]) -> None:
        n = len(initial["state"])
        self.cluster = ZabCluster(n, check=False, durability_checks=False, **self.peer_kw)
        self.n_crashes = 0
        self.n_partitions = 0

    def _ij(self, call: ActionCall) -> tuple[Sid, Sid]:
        i, j = call.params
        return sid_of(i), sid_of(j)

    def _split_roles(self) -> None:
        if not self.split:
            return
        for p in self.cluster.peers.values():
            if p.follower is not None:
                setattr(p.follower, "progress", _no_follow_up)  # noqa: B010
            if p.leader is not None:
                setattr(p.leader, "_sync_pending", _no_follow_up)  # noqa: B010

    def dispatch(self, call: ActionCall) -> Dispatch:
        c = self.cluster
        a = call.action
        self._split_roles()
        if a in MESSAGE_ACTIONS:
            i, j = self._ij(call)
            p = c.peers[i]
            link = c.net.links[(j, i)]
            if not link.queue:
                raise IndexError(f"{call}: no packet in flight from {j} to {i}")
            msg = link.queue[0].msg
            if not isinstance(msg, MESSAGE_ACTIONS[a]) or (
                a in ("LeaderProcessACKLD", "LeaderProcessACK")
                and (zxid_counter(msg.zxid) == 0) != (a == "LeaderProcessACKLD")  # type: ignore[union-attr]
            ):
                raise TypeError(f"{call}: the packet at the head of {j}->{i} is {msg!r}")
            role = p.leader if a in LEADER_MESSAGE_ACTIONS else p.follower
            if role is None:
                raise LookupError(f"{call}: server {i} has no such role ({p!r})")
            c.net.deliver(j, i)
            self.popped = msg
            return Dispatch(role, (j, msg))
        match a:
            case "ElectLeader":
                i, q = call.params
                return Dispatch(ElectionOracle(c), (sid_of(i), frozenset(sid_of(x) for x in q)))
            case "FollowLeader":
                i, j = self._ij(call)
                return Dispatch(ElectionOracle(c), (i, j))
            case "LeaderSyncFollower":
                i, j = self._ij(call)
                ld = c.peers[i].leader
                if ld is None:
                    raise LookupError(f"{call}: server {i} is not leading")
                return Dispatch(ld._handler(j))
            case "FollowerUpdateCurrentEpoch" | "FollowerReplyACKLD":
                i = sid_of(call.params[0])
                f = c.peers[i].follower
                if f is None:
                    raise LookupError(f"{call}: server {i} is not following")
                return Dispatch(f)
            case "LeaderProcessRequest" | "LeaderTimeout" | "LeaderInitLimitTimeout":
                i = sid_of(call.params[0])
                ld = c.peers[i].leader
                if ld is None:
                    raise LookupError(f"{call}: server {i} is not leading")
                if a != "LeaderProcessRequest":
                    return Dispatch(ld)
                n = c.writes + 1
                body = CreateTxn(f"/k{n}", b"v", OPEN_ACL_UNSAFE, False, n)
                return Dispatch(ld, (int(i), n, int(OpCode.create), body))
            case "NodeFsyncLog":
                i = sid_of(call.params[0])
                p = c.peers[i]
                # the host's log file reaches the disk; the core hears of it (flush)
                c.pending_fsync.discard(i)
                c.disks[i].fsync()
                return Dispatch(p.storage, (p._next_processor,))
            case "NodeCrash":
                i = sid_of(call.params[0])
                c.net.crash(i)
                c.pending_fsync.discard(i)
                self.n_crashes += 1
                return Dispatch(c.peers[i], (c.disks[i].crash(),))
            case "NodeStart":
                i = sid_of(call.params[0])
                c.net.revive(i)
                return Dispatch(c.peers[i])
            case "PartitionStart" | "PartitionRecover":
                i, j = self._ij(call)
                if a == "PartitionStart":
                    self.n_partitions += 1
                return Dispatch(c, (i, j))
        raise ValueError(f"not an action of spec/Zab.tla the implementation has: {a}")

    def after(self, call: ActionCall, result: object) -> None:
        c = self.cluster
        a = call.action
        if a in ("ElectLeader", "FollowLeader", "PartitionStart", "PartitionRecover"):
            return  # the simulator ran the effects itself
        i = sid_of(call.params[0])
        if result is None and a == "LeaderProcessACKLD":
            # not yet (the leader's own log is not durable): the packet stays where it was
            _, j = self._ij(call)
            assert self.popped is not None
            now = c.clock.now
            c.net.links[(j, i)].queue.appendleft(InFlight(self.popped, now, now))
            return
        assert isinstance(result, list), (call, result)
        if a == "LeaderProcessRequest":
            c.writes += 1
        if a == "NodeCrash":
            c._rebuild_tree(i, [])
            for e in result:
                c._execute(i, e)
            return
        c._feed(i, result)
        self._split_roles()

    def spec_vars(self) -> dict[str, Any]:
        return spec_vars(self.cluster, n_crashes=self.n_crashes, n_partitions=self.n_partitions)

    def core_vars(self) -> frozenset[str]:
        return CORE_VARS

    def effects_empty(self, result: object) -> bool:
        if result is None:
            return True
        assert isinstance(result, list)
        return all(isinstance(e, Trace) for e in result)

    def within_model(self, v: Mapping[str, Any]) -> bool:
        b = self.bounds
        return (
            all(e <= b.max_epoch for e in v["acceptedEpoch"].values())
            and len(v["proposed"]) <= b.max_txns
            and v["nCrashes"] <= b.max_crashes
            and v["nPartitions"] <= b.max_partitions
        )

    def candidates(self) -> list[ActionCall]:
        """What the host could do now: hand the head of a link to the method the peer's role
        routes it to, flush a log, run a follower's NEWLEADER sub-step, sync an acked follower,
        let a leader's timer run out (its initLimit one only where the model's switch is on),
        a client write at a leader, crash, restart, partition, heal, and the oracle's elections
        (only those within MaxEpoch)."""
        c = self.cluster
        out: list[ActionCall] = []
        ss = list(c.sids)
        mv = {s: ModelValue(sname(s)) for s in ss}
        for i in ss:
            p = c.peers[i]
            for j in ss:
                link = c.net.links.get((j, i))
                if link is None or not link.queue or not p.online:
                    continue
                msg = link.queue[0].msg
                for a, kinds in MESSAGE_ACTIONS.items():
                    if not isinstance(msg, kinds):
                        continue
                    if isinstance(msg, Ack) and (zxid_counter(msg.zxid) == 0) != (
                        a == "LeaderProcessACKLD"
                    ):
                        continue
                    role = p.leader if a in LEADER_MESSAGE_ACTIONS else p.follower
                    if role is not None:
                        out.append(ActionCall(a, (mv[i], mv[j])))
            if p.online:
                out.append(ActionCall("NodeFsyncLog", (mv[i],)))
                out.append(ActionCall("NodeCrash", (mv[i],)))
            else:
                out.append(ActionCall("NodeStart", (mv[i],)))
            if p.follower is not None:
                out.append(ActionCall("FollowerUpdateCurrentEpoch", (mv[i],)))
                out.append(ActionCall("FollowerReplyACKLD", (mv[i],)))
            ld = p.leader
            if ld is not None and p.online:
                out.append(ActionCall("LeaderProcessRequest", (mv[i],)))
                for j in ss:
                    if j != i:
                        out.append(ActionCall("LeaderSyncFollower", (mv[i], mv[j])))
                out.append(ActionCall("LeaderTimeout", (mv[i],)))
                if self.bounds.init_limit_timeouts:
                    out.append(ActionCall("LeaderInitLimitTimeout", (mv[i],)))
            for j in ss:
                if j != i:
                    if c.net.partitioned(i, j):
                        out.append(ActionCall("PartitionRecover", (mv[i], mv[j])))
                    else:
                        out.append(ActionCall("PartitionStart", (mv[i], mv[j])))
        for i, q in c.electable().items():
            others = sorted(q - {i})
            for k in range(len(others) + 1):
                for sub in itertools.combinations(others, k):
                    quorum = frozenset((i, *sub))
                    if c.peers[i].is_quorum(quorum) and all(
                        c.peers[s].accepted_epoch < self.bounds.max_epoch for s in quorum
                    ):
                        out.append(
                            ActionCall("ElectLeader", (mv[i], frozenset(mv[s] for s in quorum)))
                        )
        out.extend(ActionCall("FollowLeader", (mv[i], mv[j])) for i, j in c.followable())
        return out


# --------------------------------------------------------------------------- models, storage

# Stored paths per model: the first STORE_CAP of the cover (the action-first ones come first),
# plus up to STORE_DIVERGING of the paths that diverge (findings, replayable by name).
STORE_CAP = 12
STORE_DIVERGING = 8
SPEC_MODULE = "MCZab"


def model_cfg(name: str) -> Path:
    """A model's cfg: `models/<name>.cfg`, or a path to a .cfg file."""
    p = Path(name)
    if p.suffix == ".cfg":
        return p
    return repo_root() / "models" / f"{name}.cfg"


def run_model(
    model: str,
    *,
    split: bool = True,
    peer_kw: Mapping[str, Any] | None = None,
    **opts: Unpack[RunOptions],
) -> ModelReport:
    """Dump a Zab model's graph, cover it, replay every path; store up to `store` paths
    (default STORE_CAP) of at most `max_len` steps (default 80). `peer_kw` goes to every
    `QuorumPeer` (core bug flags)."""
    cfg = model_cfg(model)
    bounds = Bounds.of_cfg(cfg.read_text())
    target = ReplayTarget(
        SPEC_MODULE,
        "Zab",
        lambda: ZabBinding(bounds, split=split, **(peer_kw or {})),
        {"bounds": bounds.as_dict(), "split": split},
        "zkref spec replay",
        STORE_DIVERGING,
        project_path,
    )
    opts.setdefault("max_len", 80)
    opts.setdefault("store", STORE_CAP)
    return replay_model(cfg, target, **opts)


def replay_stored(
    name: str, *, root: Path | None = None, split: bool | None = None, **peer_kw: Any
) -> ReplayResult:
    """Replay a stored path on a fresh cluster (no graph: enabled steps and the mapping only)."""
    f = find_stored(name, root)
    doc = json.loads(f.read_text())
    b = doc["bounds"]
    bounds = Bounds(
        b["MaxEpoch"],
        b["MaxTxns"],
        b["MaxCrashes"],
        b["MaxPartitions"],
        bool(b.get("InitLimitTimeouts", 0)),
    )
    binding = ZabBinding(
        bounds, split=doc.get("split", True) if split is None else split, **peer_kw
    )
    return replay(project_path(load_path(f)), binding)


def main(argv: list[str] | None = None) -> int:
    ap, run_p, rep_p = cli_parser(
        "zkref spec replay",
        "Replay TLC state-graph paths of spec/Zab.tla on the Zab cores "
        "(`run MODEL`: dump, cover, replay, store; `NAME ...`: replay stored paths).",
        "a models/MCZab_*.cfg name, or a .cfg path",
        max_len=80,
        store=STORE_CAP,
    )
    run_p.add_argument("--eager", action="store_true", help="keep the cores' eager follow-ups")
    run_p.add_argument("--no-disabled", action="store_true", help="skip the disabled checks")
    rep_p.add_argument("--eager", action="store_true")
    args = ap.parse_args(argv)
    if args.cmd == "run":
        report = run_model(
            args.model,
            max_len=args.max_len,
            max_paths=args.max_paths,
            store=0 if args.eager else args.store,
            out_dir=trace_dir(),
            split=not args.eager,
            check_disabled=not args.no_disabled,
        )
        d = report.as_dict()
        d["divergences"] = report.divergences[:20]
        print(json.dumps(d, indent=1))
        return 0 if report.clean == report.replayed else 1
    return print_stored(args.names, lambda n: replay_stored(n, split=False if args.eager else None))


if __name__ == "__main__":
    sys.exit(main())
