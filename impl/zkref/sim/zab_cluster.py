"""A whole Zab ensemble in one process, driven from one seed.

`ZabCluster(n, seed)` runs n `QuorumPeer` cores over `zkref.sim.network` (per-pair FIFO links,
partitions, holds), a `SimDisk` and a `DataTree` per server, and a tick clock. The host loop
executes each core's effects in order; a crash can fall between any two of them (`crash_after`).
Election is the spec's oracle (ElectLeader / FollowLeader) until the FastLeaderElection core is
composed in: a quorum of LOOKING servers whose logs are flushed picks a member with a maximal
vote (currentEpoch, last zxid).

After every step the refinement mapping `spec_vars` gives the spec's variables from the cores'
fields, and every invariant of `spec/Zab.tla` (`zkref.conform.invariants`) is evaluated on them;
the host also checks that each core's view of its disk is what the disk holds and that the data
tree applied exactly the delivered txns. A failure raises `SimFailure` ending in
"reproduce with seed=N".

Scripted use: `elect`, `deliver`, `hold`/`release`, `fsync`, `crash`, `crash_after`, `restart`,
`partition`/`heal`, `write`, `run_until_quiet`. Randomised use: `swarm` (faults drawn from the
seed, then heal, then convergence within a step budget).
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from zkref.conform.invariants import ZabVars, violations
from zkref.core.acl import OPEN_ACL_UNSAFE
from zkref.core.datatree import DataTree
from zkref.core.election.fle import Decided as FleDecided
from zkref.core.election.fle import Effect as FleEffect
from zkref.core.election.fle import FastLeaderElection, Notification
from zkref.core.election.fle import Send as FleSend
from zkref.core.election.fle import ServerState as FleState
from zkref.core.election.fle import Sid as FleSid
from zkref.core.spec_action import spec_action
from zkref.core.zab.effects import (
    AppendTxns,
    Apply,
    Effect,
    FsyncLog,
    InstallSnapshot,
    Send,
    StateChanged,
    Trace,
    TruncateLog,
    WriteAcceptedEpoch,
    WriteCurrentEpoch,
)
from zkref.core.zab.messages import (
    Ack,
    AckEpoch,
    LeaderInfo,
    NlPhase,
    PacketType,
    QuorumPacket,
    ServerState,
    Sid,
    Txn,
    ZabState,
)
from zkref.core.zab.peer import QuorumPeer
from zkref.core.zab.storage import HistoryView
from zkref.core.zab.zxid import zxid_counter, zxid_epoch
from zkref.sim.clock import SimClock
from zkref.sim.disk import SimDisk
from zkref.sim.network import Network
from zkref.wire.constants import OpCode
from zkref.wire.records import CreateTxn


class SimFailure(AssertionError):
    """A simulated run broke an invariant or did not converge."""


class InvariantViolation(SimFailure):
    def __init__(self, name: str, detail: str, message: str) -> None:
        super().__init__(message)
        self.name = name
        self.detail = detail


EffectPredicate = Callable[[Effect], bool]


@dataclass(slots=True)
class CrashHook:
    sid: Sid
    pred: EffectPredicate
    what: str


def after_effect(kind: type) -> EffectPredicate:
    """Match the first effect of this type (e.g. `WriteCurrentEpoch`)."""
    return lambda e: isinstance(e, kind)


def after_action(name: str) -> EffectPredicate:
    """Match the trace record of this spec action, i.e. right after the action's effects that
    come before it."""
    return lambda e: isinstance(e, Trace) and e.action == name


def spec_vars(c: ZabCluster) -> ZabVars:
    """The refinement mapping: the spec's variables from the cores' fields (and the ghost
    variables the host keeps)."""
    ps = c.peers
    return ZabVars(
        servers=tuple(c.sids),
        state={s: str(p.state) for s, p in ps.items()},
        zab_state={s: str(p.zab_state) for s, p in ps.items()},
        online={s: p.online for s, p in ps.items()},
        leader_of={s: p.leader_of for s, p in ps.items()},
        accepted_epoch={s: p.accepted_epoch for s, p in ps.items()},
        current_epoch={s: p.current_epoch for s, p in ps.items()},
        history={s: tuple(p.storage.history) for s, p in ps.items()},
        disk={s: tuple(p.storage.disk) for s, p in ps.items()},
        last_committed={s: p.last_committed for s, p in ps.items()},
        nl_phase={s: str(p.nl_phase) for s, p in ps.items()},
        proposed=frozenset(c.proposed),
        committed=frozenset(c.committed),
        epoch_leader=frozenset(c.epoch_leader),
    )


def tree_fingerprint(tree: DataTree) -> tuple[tuple[str, bytes | None], ...]:
    return tuple(sorted((path, node.data) for path, node in tree.export_nodes()))


class ZabCluster:
    def __init__(
        self,
        n: int = 3,
        seed: int = 0,
        *,
        check: bool = True,
        durability_checks: bool | None = None,
        **peer_kw: Any,
    ) -> None:
        # election="oracle" (the spec's ElectLeader/FollowLeader, the default) or "fle" (a
        # FastLeaderElection core per server, configured by fle_kw); taken out of **peer_kw
        # so that callers passing **{"bug_x": True} still type-check
        election: str = peer_kw.pop("election", "oracle")
        fle_kw: dict[str, Any] | None = peer_kw.pop("fle_kw", None)
        assert election in ("oracle", "fle"), election
        self.seed = seed
        self.election = election
        # the host's own check of ZooKeeper's durability order (off by default when a bug is
        # planted, so that the spec's invariants are what catches it)
        self.durability_checks = (
            not any(v for k, v in peer_kw.items() if k.startswith("bug_"))
            if durability_checks is None
            else durability_checks
        )
        self.rng = random.Random(seed)
        self.clock = SimClock()
        self.sids = [Sid(i) for i in range(1, n + 1)]
        self.net: Network[Sid, QuorumPacket] = Network(self.sids, self.clock, self.rng)
        self.peers = {s: QuorumPeer(s, self.sids, **peer_kw) for s in self.sids}
        self.disks = {s: SimDisk() for s in self.sids}
        self.trees = {s: DataTree() for s in self.sids}
        self.applied: dict[Sid, list[Txn]] = {s: [] for s in self.sids}
        self.pending_fsync: set[Sid] = set()
        self.proposed: set[Txn] = set()
        self.committed: set[Txn] = set()
        self.epoch_leader: set[tuple[int, Sid]] = set()
        self._committed_mark: dict[Sid, tuple[int, Txn | None]] = {}
        self.crash_hooks: list[CrashHook] = []
        self.records: list[dict[str, Any]] = []
        self.steps: list[str] = []
        self.check = check
        self.writes = 0
        # election="fle": each server runs the FastLeaderElection core over its own links
        self.fle_kw = dict(fle_kw or {})
        self.enet: Network[Sid, Notification] = Network(self.sids, self.clock, self.rng)
        self.fles: dict[Sid, FastLeaderElection] = {}
        self.connecting: dict[Sid, tuple[Sid, int]] = {}
        self.decisions: list[tuple[int, Sid, str, Sid]] = []
        if election == "fle":
            for s in self.sids:
                self._fle_boot(s)

    # ------------------------------------------------------------------ reporting

    def fail(self, what: str) -> str:
        recent = "\n  ".join(self.steps[-25:])
        return f"{what}\n last steps:\n  {recent}\nreproduce with seed={self.seed}"

    def verify(self) -> None:
        v = spec_vars(self)
        bad = violations(v)
        if bad:
            name, detail = next(iter(bad.items()))
            raise InvariantViolation(
                name, detail, self.fail(f"invariant {name} violated: {detail}")
            )
        for s, p in self.peers.items():
            d = self.disks[s]
            if p.storage.disk != d.durable_log or p.storage.history != d.log:
                raise SimFailure(self.fail(f"server {s}: core's log view differs from its disk"))
            if (p.accepted_epoch, p.current_epoch) != (d.accepted_epoch, d.current_epoch):
                raise SimFailure(self.fail(f"server {s}: core's epochs differ from its disk"))
            if self.applied[s] != p.storage.history[: p.last_committed]:
                raise SimFailure(self.fail(f"server {s}: data tree applied != delivered"))

    def _step(self, label: str) -> None:
        self.steps.append(f"t={self.clock.now} {label}")
        if self.election == "fle":
            self._start_rounds()
        if self.check:
            self.verify()

    # ------------------------------------------------------------------ the host loop

    def _ghosts(self, s: Sid, effects: list[Effect]) -> None:
        p = self.peers[s]
        if p.state is ServerState.LEADING:
            # only what this leader committed since last time (O(1) amortised): the mark is
            # the length already added and the txn at its end, still there if nothing was cut
            h, lc = p.storage.history, p.last_committed
            n, last = self._committed_mark.get(s, (0, None))
            if not (n <= lc and (n == 0 or h[n - 1] is last)):
                n = 0
            self.committed.update(h[n:lc])
            self._committed_mark[s] = (lc, h[lc - 1] if lc else None)
        for e in effects:
            if not isinstance(e, Trace):
                continue
            if e.action == "LeaderProcessRequest":
                self.proposed.add(e.params["txn"])
            elif e.action == "LeaderProcessACKEPOCH" and e.params.get("established") is not None:
                self.epoch_leader.add((e.params["established"], s))

    def _feed(self, s: Sid, effects: list[Effect]) -> None:
        self._ghosts(s, effects)
        for k, e in enumerate(effects):
            if not self.peers[s].online:
                return  # crashed in the middle: the rest never happens
            self._execute(s, e)
            for hook in self.crash_hooks:
                if hook.sid == s and hook.pred(e):
                    self.crash_hooks.remove(hook)
                    self.steps.append(f"t={self.clock.now} crash {s} after {hook.what}")
                    self._record_step_in_progress(s, effects[k + 1 :])
                    self._crash(s)
                    break

    def _record_step_in_progress(self, s: Sid, rest: list[Effect]) -> None:
        """A crash inside a step's effects: write the step's record first if the step already
        happened as far as anything that survives can tell.

        A spec step is atomic; in the host it is effects then a record (the next `Trace` in the
        list), and a trace record is an observation, not an effect. If no durability effect of
        the step is still to come, what the crash cuts off -- sends (the crash empties the
        links, as the spec's NodeCrash does), unsynced appends, applies -- is exactly what the
        spec's NodeCrash undoes after the step. So the step is recorded, then the crash:
        without this, a crash between an fsync (or an epoch file) and its record left a disk
        that no recorded step explains, and the trace was rejected at the NodeCrash. If a
        durability effect is still to come, the step did not happen durably: no record."""
        for e in rest:
            if isinstance(e, Trace):
                self._execute(s, e)
                return
            if isinstance(e, (WriteAcceptedEpoch, WriteCurrentEpoch, TruncateLog)):
                return

    def _execute(self, s: Sid, e: Effect) -> None:
        d = self.disks[s]
        match e:
            case Send():
                if self.durability_checks:
                    self._check_durable_before_send(s, e)
                self.net.send(s, e.to, e.msg)
            case AppendTxns():
                d.append(e.txns)
            case FsyncLog():
                self.pending_fsync.add(s)
            case TruncateLog():
                d.truncate(e.zxid)
                if any(t.zxid > e.zxid for t in self.applied[s]):
                    self._rebuild_tree(s, [t for t in self.applied[s] if t.zxid <= e.zxid])
            case WriteAcceptedEpoch():
                d.accepted_epoch = e.epoch
            case WriteCurrentEpoch():
                d.current_epoch = e.epoch
            case InstallSnapshot():
                d.replace(e.snapshot)
                self._rebuild_tree(s, [])
            case Apply():
                self.trees[s].apply(e.txn.hdr, e.txn.body)
                self.applied[s].append(e.txn)
            case StateChanged():
                if e.state is ServerState.LOOKING:
                    self._cut(s)
            case Trace():
                self.records.append(
                    {"node": s, "action": e.action, "params": e.params, "post": e.post}
                )

    def _check_durable_before_send(self, s: Sid, e: Send) -> None:
        """ZooKeeper's fixed order, checked on what really reached the disk: acceptedEpoch before
        LEADERINFO/ACKEPOCH, log then currentEpoch before the ACK of NEWLEADER, a proposal
        before its ACK."""
        d, m = self.disks[s], e.msg
        bad: str | None = None
        match m:
            case LeaderInfo() if d.accepted_epoch != m.epoch:
                bad = f"LEADERINFO({m.epoch}) before acceptedEpoch was written"
            case AckEpoch() if d.accepted_epoch != self.peers[s].accepted_epoch:
                bad = "ACKEPOCH before acceptedEpoch was written"
            case Ack() if zxid_counter(m.zxid) == 0 and not (
                d.synced() and d.current_epoch == zxid_epoch(m.zxid)
            ):
                bad = "ACK of NEWLEADER before the log and currentEpoch were durable"
            case Ack() if zxid_counter(m.zxid) > 0 and not any(
                t.zxid == m.zxid for t in reversed(d.durable_log)
            ):
                bad = f"ACK of {m.zxid:#x} before the proposal was durable"
            case _:
                pass
        if bad is not None:
            raise SimFailure(self.fail(f"server {s}: DurabilityOrder: {bad}"))

    def trace_lines(self) -> list[str]:
        """The run as NDJSON: a header, then one record per spec action (txns as [epoch,
        counter])."""

        def enc(o: object) -> object:
            if isinstance(o, Txn):
                return [o.epoch, o.counter]
            if isinstance(o, HistoryView):
                return o.tolist()
            if isinstance(o, (set, frozenset)):
                return sorted(o)
            return str(o)

        head = {
            "kind": "header",
            "schema": 1,
            "spec": "Zab",
            "servers": list(self.sids),
            "seed": self.seed,
            "source": "sim",
        }
        lines = [json.dumps(head)]
        for seq, r in enumerate(self.records):
            lines.append(json.dumps({"seq": seq, **r}, default=enc))
        return lines

    def _rebuild_tree(self, s: Sid, txns: list[Txn]) -> None:
        tree = DataTree()
        for t in txns:
            tree.apply(t.hdr, t.body)
        self.trees[s] = tree
        self.applied[s] = list(txns)

    def _cut(self, s: Sid) -> None:
        """s dropped every connection: links lose what they carried, peers notice."""
        for o in self.sids:
            if o != s:
                self.net.reset(s, o)
                self.net.reset(o, s)
        for o in self.sids:
            if o != s and self.peers[o].online:
                self._feed(o, self.peers[o].link_down(s))

    def _crash(self, s: Sid) -> None:
        self.net.crash(s)
        self.enet.crash(s)
        self.fles.pop(s, None)
        self.connecting.pop(s, None)
        self.pending_fsync.discard(s)
        durable = self.disks[s].crash()
        out = self.peers[s].crash(durable)
        self._rebuild_tree(s, [])
        for e in out:
            self._execute(s, e)

    # ------------------------------------------------------------------ scripted steps

    def deliver(self, frm: Sid, to: Sid, expect: PacketType | None = None) -> QuorumPacket:
        msg = self.net.deliver(frm, to)
        if expect is not None:
            assert msg.type is expect, (msg, expect)
        self._feed(to, self.peers[to].receive(frm, msg))
        self._step(f"deliver {msg.type.name} {frm}->{to}")
        return msg

    def fsync(self, s: Sid) -> None:
        assert s in self.pending_fsync, s
        self.pending_fsync.discard(s)
        self.disks[s].fsync()
        self._feed(s, self.peers[s].persisted())
        self._step(f"fsync {s}")

    def tick(self) -> None:
        self.clock.advance()
        for s in self.sids:
            self._feed(s, self.peers[s].tick())
        if self.election == "fle":
            self._fle_tick()
        self._step("tick")

    def crash(self, s: Sid) -> None:
        self._crash(s)
        self._step(f"crash {s}")

    def crash_after(self, s: Sid, pred: EffectPredicate, what: str = "") -> None:
        """Crash s right after it executes the first effect matching `pred`."""
        self.crash_hooks.append(CrashHook(s, pred, what or "a matching effect"))

    def restart(self, s: Sid) -> None:
        self.net.revive(s)
        self._feed(s, self.peers[s].restart())
        if self.election == "fle":
            self.enet.revive(s)
            self._fle_boot(s)
        self._step(f"restart {s}")

    @spec_action("PartitionStart")
    def partition(self, a: Sid, b: Sid) -> None:
        """Spec: PartitionStart. The link a-b fails; a follower across it loses its leader."""
        self.net.partition(a, b)
        self.enet.partition(a, b)
        # the spec's one step (its GoLooking of a follower across the link included), recorded
        # before the cores' own reaction to the broken link
        self.records.append({"node": a, "action": "PartitionStart", "params": [b]})
        for x, y in ((a, b), (b, a)):
            if self.peers[x].online:
                self._feed(x, self.peers[x].link_down(y))
        self._step(f"partition {a}|{b}")

    @spec_action("PartitionRecover")
    def heal(self, a: Sid, b: Sid) -> None:
        """Spec: PartitionRecover."""
        self.net.heal(a, b)
        self.enet.heal(a, b)
        self.records.append({"node": a, "action": "PartitionRecover", "params": [b]})
        self._step(f"heal {a}|{b}")

    def hold(self, frm: Sid, to: Sid) -> None:
        self.net.hold(frm, to)

    def release(self, frm: Sid, to: Sid) -> None:
        self.net.release(frm, to)

    def write(self, data: bytes = b"v", at: Sid | None = None) -> Txn | None:
        """A client write at the broadcasting leader (`at`, or the only one); None when there
        is none."""
        for s, p in self.peers.items():
            if at is None and self.leader() is None:
                return None
            if at is not None and s != at:
                continue
            if p.online and p.state is ServerState.LEADING and p.zab_state is ZabState.BROADCAST:
                self.writes += 1
                n = self.writes
                body = CreateTxn(f"/k{n}", data, OPEN_ACL_UNSAFE, False, n)
                out = p.request(1, n, int(OpCode.create), body)
                self._feed(s, out)
                self._step(f"write /k{n} at {s}")
                return next(e.txns[0] for e in out if isinstance(e, AppendTxns))
        return None

    # ------------------------------------------------------------------ the election oracle

    def vote_geq(self, i: Sid, j: Sid) -> bool:
        pi, pj = self.peers[i], self.peers[j]
        return pi.current_epoch > pj.current_epoch or (
            pi.current_epoch == pj.current_epoch and pj.last_logged_zxid() <= pi.last_logged_zxid()
        )

    def electable(self) -> dict[Sid, set[Sid]]:
        """Spec ElectLeader's guard: i -> the largest Q it can lead."""
        looking = [s for s in self.sids if self.peers[s].ready_to_vote()]
        out: dict[Sid, set[Sid]] = {}
        for i in looking:
            q = {j for j in looking if (j == i or self.net.connected(i, j)) and self.vote_geq(i, j)}
            if self.peers[i].is_quorum(q):
                out[i] = q
        return out

    def followable(self) -> list[tuple[Sid, Sid]]:
        """Spec FollowLeader's guard."""
        return [
            (i, j)
            for i in self.sids
            if self.peers[i].ready_to_vote()
            for j in self.sids
            if i != j
            and self.peers[j].online
            and self.peers[j].state is ServerState.LEADING
            and self.net.connected(i, j)
        ]

    def elect(self, leader: Sid | None = None, quorum: set[Sid] | None = None) -> Sid:
        """Spec ElectLeader (oracle): `leader` (default: the best electable) leads `quorum`."""
        cands = self.electable()
        if leader is None:
            assert cands, "no server can be elected"
            leader = max(cands, key=lambda s: (len(cands[s]), s))
        assert leader in cands, (leader, cands)
        q = cands[leader] if quorum is None else set(quorum)
        assert leader in q and q <= cands[leader] and self.peers[leader].is_quorum(q), q
        n = len(self.records)
        self._feed(leader, self.peers[leader].lead())
        for j in sorted(q - {leader}):
            self._feed(j, self.peers[j].follow(leader))
        self._record_at(n, {"node": leader, "action": "ElectLeader", "params": sorted(q)})
        self._step(f"ElectLeader {leader} by {sorted(q)}")
        return leader

    def _record_at(self, n: int, rec: dict[str, Any]) -> None:
        """Record an oracle step whose effects ran before it: at the end, or, if the effects
        recorded something (a crash hook fired inside them), before those records."""
        if n == len(self.records):
            self.records.append(rec)
        else:
            self.records.insert(n, rec)

    def follow(self, i: Sid, j: Sid) -> None:
        """Spec FollowLeader (oracle)."""
        assert (i, j) in self.followable(), (i, j)
        n = len(self.records)
        self._feed(i, self.peers[i].follow(j))
        self._record_at(n, {"node": i, "action": "FollowLeader", "params": [j]})
        self._step(f"FollowLeader {i}->{j}")

    # ------------------------------------------------------------------ FastLeaderElection

    def _fle_boot(self, s: Sid) -> None:
        """A (re)started server's election core: lookForLeader with its durable vote."""
        p = self.peers[s]
        fle = FastLeaderElection(FleSid(s), [FleSid(x) for x in self.sids], **self.fle_kw)
        self.fles[s] = fle
        self._run_fle(s, fle.start_election(p.last_logged_zxid(), p.current_epoch))

    def _run_fle(self, s: Sid, effects: list[FleEffect]) -> None:
        for e in effects:
            match e:
                case FleSend():
                    self.enet.send(s, Sid(e.to), e.msg)
                case FleDecided():
                    self._decided(s, e)

    def _decided(self, s: Sid, d: FleDecided) -> None:
        """As zkref.server.peer_host: LEADING leads at once; FOLLOWING connects to the leader,
        which takes until the next tick (a TCP connect), and gives up after initLimit ticks."""
        self.decisions.append((self.clock.now, s, str(d.state), Sid(d.leader)))
        self.steps.append(f"t={self.clock.now} FLE {s} decided {d.state} {d.leader}")
        if d.state is FleState.LEADING:
            self._feed(s, self.peers[s].lead())
        else:
            assert d.state is FleState.FOLLOWING, d
            self.connecting[s] = (Sid(d.leader), self.clock.now + self.peers[s].init_limit_ticks)

    def _fle_tick(self) -> None:
        for s in self.sids:
            fle = self.fles.get(s)
            if fle is not None and self.peers[s].online:
                self._run_fle(s, fle.tick())
        for s, (ld, deadline) in sorted(self.connecting.items()):
            lp = self.peers[ld]
            if (
                lp.online
                and lp.state is ServerState.LEADING
                and self.net.connected(s, ld)
                and self.peers[s].ready_to_vote()
            ):
                del self.connecting[s]
                self._feed(s, self.peers[s].follow(ld))
            elif self.clock.now >= deadline:
                del self.connecting[s]  # Learner.connectToLeader gave up: LOOKING again

    def _start_rounds(self) -> None:
        """QuorumPeer back to LOOKING (its role ended, its log flushed): a new election round
        with its current vote (peer_host._maybe_start_round)."""
        for s in self.sids:
            p, fle = self.peers[s], self.fles.get(s)
            if (
                fle is not None
                and s not in self.connecting
                and p.state is ServerState.LOOKING
                and fle.state is not FleState.LOOKING
                and p.ready_to_vote()
            ):
                self._run_fle(s, fle.start_round(p.last_logged_zxid(), p.current_epoch))

    def deliver_vote(self, frm: Sid, to: Sid) -> Notification:
        """Deliver the next election notification on the link frm -> to."""
        msg = self.enet.deliver(frm, to)
        fle = self.fles.get(to)
        if fle is not None and self.peers[to].online:
            self._run_fle(to, fle.receive(FleSid(frm), msg))
        self._step(f"vote {frm}->{to} {msg.leader}/{msg.state}")
        return msg

    def _ready(self) -> list[tuple[bool, Sid, Sid]]:
        """Ready links of both networks: (is_election, from, to)."""
        out = [(False, a, b) for a, b in self.net.ready_links()]
        out += [(True, a, b) for a, b in self.enet.ready_links()]
        return sorted(out)

    def _deliver_ready(self, link: tuple[bool, Sid, Sid]) -> None:
        if link[0]:
            self.deliver_vote(link[1], link[2])
        else:
            self.deliver(link[1], link[2])

    # ------------------------------------------------------------------ running

    def busy(self) -> bool:
        return bool(self._ready() or self.pending_fsync)

    def run_until_quiet(self, max_steps: int = 10_000, *, fsync: bool = True) -> None:
        """Deliver every ready message and run every fsync, in a fixed order, until none is
        left (no elections, no ticks). `fsync=False`: messages only, the disks never catch up
        (what a slow disk looks like to the protocol)."""
        for _ in range(max_steps):
            ready = self._ready()
            if ready:
                self._deliver_ready(ready[0])
            elif fsync and self.pending_fsync:
                self.fsync(min(self.pending_fsync))
            else:
                return
        raise SimFailure(self.fail("run_until_quiet did not settle"))

    def leader(self) -> Sid | None:
        live = [
            s
            for s, p in self.peers.items()
            if p.online and p.state is ServerState.LEADING and p.zab_state is ZabState.BROADCAST
        ]
        return live[0] if len(live) == 1 else None

    def locked_out(self, s: Sid) -> bool:
        """s accepted a newer epoch (from an aspiring leader that then gave up) than the one
        the established leader runs: it rejects that leader's LEADERINFO and goes back to
        LOOKING each time, as ZooKeeper's Learner.registerWithLeader does, until the leader
        changes."""
        ld = self.leader()
        p = self.peers[s]
        return (
            ld is not None
            and s != ld
            and p.online
            and p.follower is None
            and p.accepted_epoch > self.peers[ld].current_epoch
        )

    def converged(self, *, allow_down: bool = False) -> bool:
        """Quiet, one broadcasting leader, every live server following it with the same log,
        all of it delivered, and equal data trees; servers that are `locked_out` (and, with
        `allow_down`, crashed ones) are left out, but the rest must be a quorum."""
        if self.busy():
            return False
        ld = self.leader()
        if ld is None:
            return False
        lp = self.peers[ld]
        fp = tree_fingerprint(self.trees[ld])
        synced = set()
        for s, p in self.peers.items():
            if not p.online:
                if allow_down:
                    continue
                return False
            if self.locked_out(s):
                continue
            if s != ld and (
                p.leader_of != ld
                or p.zab_state is not ZabState.BROADCAST
                or p.nl_phase is not NlPhase.ACKED
            ):
                return False
            if p.storage.history != lp.storage.history:
                return False
            if p.last_committed != len(p.storage.history):
                return False
            if tree_fingerprint(self.trees[s]) != fp:
                return False
            synced.add(s)
        return lp.is_quorum(synced)

    def stabilize(self, max_steps: int = 5_000, *, allow_down: bool = False) -> Sid:
        """No faults: deliver, fsync, elect, follow, tick until converged."""
        for _ in range(max_steps):
            if self.converged(allow_down=allow_down):
                ld = self.leader()
                assert ld is not None
                return ld
            self._heal_step()
        raise SimFailure(self.fail(f"no convergence within {max_steps} steps"))

    def _heal_step(self) -> None:
        ready = self._ready()
        if ready or self.pending_fsync:
            if ready and (not self.pending_fsync or self.rng.random() < 0.7):
                self._deliver_ready(self.rng.choice(ready))
            else:
                self.fsync(self.rng.choice(sorted(self.pending_fsync)))
            return
        if not self._elect_or_follow(random_quorum=False):
            self.tick()

    # ------------------------------------------------------------------ swarm

    def _elect_or_follow(self, random_quorum: bool) -> bool:
        if self.election == "fle":
            return False  # the FastLeaderElection cores decide, from their messages
        r = self.rng
        cands = self.electable()
        if cands:
            i = r.choice(sorted(cands))
            q = {i}
            if random_quorum:
                others = sorted(cands[i] - {i})
                need = len(self.sids) // 2  # others needed besides i
                q.update(r.sample(others, r.randint(need, len(others))))
            else:
                q = cands[i]
            self.elect(i, q)
            return True
        fol = self.followable()
        if fol:
            self.follow(*r.choice(fol))
            return True
        return False

    def _random_step(self, max_txns: int) -> None:
        r = self.rng
        roll = r.random()
        if roll < 0.08:
            self._random_fault()
            return
        if roll < 0.16 and self.writes < max_txns and self.leader() is not None:
            self.write()
            return
        if roll < 0.22 and self._elect_or_follow(random_quorum=True):
            return
        if roll < 0.25:
            self.tick()
            return
        ready = self._ready()
        if self.pending_fsync and (not ready or r.random() < 0.3):
            self.fsync(r.choice(sorted(self.pending_fsync)))
        elif ready:
            self._deliver_ready(r.choice(ready))
        elif not self._elect_or_follow(random_quorum=True):
            self.tick()

    def _random_fault(self) -> None:
        r = self.rng
        online = [s for s in self.sids if self.peers[s].online]
        offline = [s for s in self.sids if not self.peers[s].online]
        kind = r.choice(
            ["crash", "crash_after", "restart", "partition", "heal", "hold", "release", "delay"]
        )
        if kind == "crash" and online:
            self.crash(r.choice(online))
        elif kind == "crash_after" and online:
            s = r.choice(online)
            kinds: list[type] = [
                FsyncLog,
                AppendTxns,
                WriteAcceptedEpoch,
                WriteCurrentEpoch,
                Send,
                TruncateLog,
            ]
            k = r.choice(kinds)
            self.crash_after(s, after_effect(k), k.__name__)
        elif kind == "restart" and offline:
            self.restart(r.choice(offline))
        elif kind == "partition":
            a, b = r.sample(self.sids, 2)
            if not self.net.partitioned(a, b):
                self.partition(a, b)
        elif kind == "heal" and self.net.partitions:
            a, b = sorted(r.choice(sorted(sorted(p) for p in self.net.partitions)))
            self.heal(a, b)
        elif kind == "hold":
            a, b = r.sample(self.sids, 2)
            self.hold(a, b)
        elif kind == "release":
            a, b = r.sample(self.sids, 2)
            self.release(a, b)
        elif kind == "delay":
            a, b = r.sample(self.sids, 2)
            self.net.set_delay(a, b, r.randint(0, 3))

    def heal_all(self) -> None:
        self.crash_hooks.clear()
        for p in sorted(sorted(x) for x in self.net.partitions):
            self.heal(p[0], p[1])
        self.net.heal()
        self.enet.heal()
        for s in self.sids:
            if not self.peers[s].online:
                self.restart(s)

    def swarm(self, fault_steps: int = 300, converge_steps: int = 3_000, max_txns: int = 6) -> Sid:
        """Random faults from the seed, then heal; every live server must converge."""
        for _ in range(fault_steps):
            self._random_step(max_txns)
        self.heal_all()
        ld = self.stabilize(converge_steps)
        # and the converged ensemble still commits a write everywhere
        t = self.write()
        assert t is not None
        self.stabilize(converge_steps)
        for s in self.sids:
            if t not in self.applied[s] and not self.locked_out(s):
                raise SimFailure(self.fail(f"server {s} did not apply the final write"))
        return ld
