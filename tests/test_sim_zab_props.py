"""Hypothesis drives the Zab simulator (deliver, fsync, elect, write, tick, crash, crash between
two durability effects, restart, partition, heal, hold/release and reset of a link); one
`@invariant` per invariant of `spec/Zab.tla`, with the spec's name, evaluated on the refinement
mapping `spec_vars(cluster)`. `ZabFleMachine` is the same machine with the FastLeaderElection
cores deciding who leads (`election="fle"`). Each machine's witnesses (support.hyp.Witnesses)
record the interesting states its runs reached; a test fails if one was never reached.

CI cost (profile `ci`, 2 cores, measured): ZabMachine 40 runs x 60 steps ~10 s, ZabFleMachine
30 x 80 ~8 s, the planted bug ~7 s."""

from __future__ import annotations

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from support.hyp import Witnesses, hunt_settings, run_machine, run_state_machine_as_test
from zkref.conform import invariants as inv
from zkref.core.zab.effects import (
    AppendTxns,
    FsyncLog,
    InstallSnapshot,
    Send,
    TruncateLog,
    WriteAcceptedEpoch,
    WriteCurrentEpoch,
)
from zkref.core.zab.messages import Sid
from zkref.sim.zab_cluster import ZabCluster, after_effect, spec_vars

IDX = st.integers(min_value=0, max_value=1_000)
MAX_WRITES = 6  # txns per run: enough to leave a follower out of a window of 2 (SNAP)

# the effects a crash can follow (the durability points, and a send for contrast)
DURABLE = (
    WriteAcceptedEpoch,
    WriteCurrentEpoch,
    AppendTxns,
    FsyncLog,
    TruncateLog,
    InstallSnapshot,
)
CRASH_AFTER = (*DURABLE, Send)
DURABLE_NAMES = frozenset(k.__name__ for k in DURABLE)

WITNESSES = (
    "txn_committed_after_leader_change",
    "synced_by_DIFF",
    "synced_by_TRUNC",
    "synced_by_SNAP",
    "crash_after_durability_effect",
    "restarted_server_synced",
)


class ZabMachine(RuleBasedStateMachine):
    cluster: ZabCluster
    witnesses = Witnesses(WITNESSES)
    election = "oracle"

    @initialize(
        n=st.sampled_from([3, 3, 5]), window=st.sampled_from([2, 2, 500]), warm=st.booleans()
    )
    def start(self, n: int, window: int, warm: bool) -> None:
        """`warm`: start from a converged ensemble that committed one write (the host checks
        every invariant after each step of that prefix), so runs reach deeper states."""
        c = ZabCluster(n, seed=0, check=warm, commit_log_count=window, election=self.election)
        if warm:
            c.stabilize(2_000)
            c.write()
            c.stabilize(2_000)
        c.check = False  # from here the invariants below are what checks each step
        self.cluster = c
        self.witnesses.started()
        self._records_seen = 0
        self._steps_seen = 0
        self._restarted: set[Sid] = set()

    def _holds(self, name: str) -> None:
        detail = inv.INVARIANTS[name](spec_vars(self.cluster))
        assert detail is None, f"{name}: {detail}"

    # ------------------------------------------------------------------ rules

    # Preconditions keep a rule out when it would do nothing, so that the steps of a run go
    # to things that happen.

    @precondition(lambda self: bool(self.cluster.net.ready_links()))
    @rule(k=IDX)
    def deliver(self, k: int) -> None:
        ready = sorted(self.cluster.net.ready_links())
        self.cluster.deliver(*ready[k % len(ready)])

    @precondition(lambda self: bool(self.cluster.pending_fsync))
    @rule(k=IDX)
    def fsync(self, k: int) -> None:
        pending = sorted(self.cluster.pending_fsync)
        self.cluster.fsync(pending[k % len(pending)])

    @precondition(lambda self: self.cluster.election == "oracle" and bool(self.cluster.electable()))
    @rule(k=IDX)
    def elect(self, k: int) -> None:
        cands = sorted(self.cluster.electable())
        self.cluster.elect(cands[k % len(cands)])

    @precondition(
        lambda self: self.cluster.election == "oracle" and bool(self.cluster.followable())
    )
    @rule(k=IDX)
    def follow(self, k: int) -> None:
        options = self.cluster.followable()
        self.cluster.follow(*options[k % len(options)])

    @precondition(lambda self: self.cluster.busy())
    @rule()
    def settle(self) -> None:
        """Deliver and fsync everything, in a fixed order."""
        self.cluster.run_until_quiet()

    @precondition(lambda self: self.cluster.writes < MAX_WRITES and self.cluster.leader())
    @rule(n=st.integers(min_value=1, max_value=3))
    def write(self, n: int) -> None:
        """n client writes at the leader, one after the other (no delivery between)."""
        for _ in range(min(n, MAX_WRITES - self.cluster.writes)):
            self.cluster.write()

    @rule()
    def tick(self) -> None:
        self.cluster.tick()

    @rule(n=st.integers(min_value=2, max_value=12))
    def time_passes(self, n: int) -> None:
        """n ticks, the network settling after each (timeouts fire, elections finish; with
        the oracle, the best electable server is elected as soon as one is)."""
        c = self.cluster
        for _ in range(n):
            c.tick()
            c.run_until_quiet()
            if c.election == "oracle" and c.leader() is None and c.electable():
                c.elect()
                c.run_until_quiet()

    @rule(k=IDX)
    def crash(self, k: int) -> None:
        up = [s for s in self.cluster.sids if self.cluster.peers[s].online]
        if up:
            self.cluster.crash(up[k % len(up)])

    @precondition(lambda self: self.cluster.leader() is not None)
    @rule()
    def crash_leader(self) -> None:
        ld = self.cluster.leader()
        assert ld is not None
        self.cluster.crash(ld)

    @precondition(lambda self: self.cluster.leader() is not None)
    @rule()
    def isolate_leader(self) -> None:
        """Partition the leader from every other server."""
        ld = self.cluster.leader()
        assert ld is not None
        self.isolate_leader_of(ld)

    @rule(k=IDX)
    def isolate(self, k: int) -> None:
        """Partition one server from every other (a follower that then misses writes)."""
        c = self.cluster
        self.isolate_leader_of(c.sids[k % len(c.sids)])

    @precondition(lambda self: self.cluster.writes < MAX_WRITES and self.cluster.leader())
    @rule()
    def leader_keeps_a_lone_proposal(self) -> None:
        """The leader proposes, is cut off before any follower logs the proposal, and fsyncs
        it: a txn only it holds (what a later TRUNC removes)."""
        c = self.cluster
        ld = c.leader()
        assert ld is not None
        c.write()
        self.isolate_leader_of(ld)
        if ld in c.pending_fsync:
            c.fsync(ld)

    def isolate_leader_of(self, ld: Sid) -> None:
        for s in self.cluster.sids:
            if s != ld and not self.cluster.net.partitioned(ld, s):
                self.cluster.partition(ld, s)

    @rule(k=IDX, kind=st.sampled_from(CRASH_AFTER))
    def crash_after(self, k: int, kind: type) -> None:
        """Arm a crash of a live server right after its next effect of this kind (so between
        it and the effects after it in the same step: e.g. acceptedEpoch written, LEADERINFO
        not sent; a txn appended, not fsynced)."""
        up = [s for s in self.cluster.sids if self.cluster.peers[s].online]
        if up and len(self.cluster.crash_hooks) < 2:
            self.cluster.crash_after(up[k % len(up)], after_effect(kind), kind.__name__)

    @precondition(lambda self: not all(p.online for p in self.cluster.peers.values()))
    @rule(k=IDX)
    def restart(self, k: int) -> None:
        down = [s for s in self.cluster.sids if not self.cluster.peers[s].online]
        s = down[k % len(down)]
        self.cluster.restart(s)
        self._restarted.add(s)

    @rule(a=IDX, b=IDX)
    def partition(self, a: int, b: int) -> None:
        sids = self.cluster.sids
        x, y = sids[a % len(sids)], sids[b % len(sids)]
        if x != y and not self.cluster.net.partitioned(x, y):
            self.cluster.partition(x, y)

    @precondition(lambda self: bool(self.cluster.net.partitions))
    @rule()
    def heal(self) -> None:
        for p in sorted(sorted(q) for q in self.cluster.net.partitions):
            self.cluster.heal(Sid(p[0]), Sid(p[1]))

    @rule(a=IDX, b=IDX)
    def reset_link(self, a: int, b: int) -> None:
        """A TCP reset: the connection a-b breaks (what it carried is lost, both ends notice)
        and can be reopened at once."""
        sids = self.cluster.sids
        x, y = sids[a % len(sids)], sids[b % len(sids)]
        if x != y and not self.cluster.net.partitioned(x, y):
            self.cluster.partition(x, y)
            self.cluster.heal(x, y)

    @rule(a=IDX, b=IDX)
    def hold(self, a: int, b: int) -> None:
        """The link a -> b stalls (FIFO kept; nothing lost)."""
        sids = self.cluster.sids
        x, y = sids[a % len(sids)], sids[b % len(sids)]
        if x != y:
            self.cluster.hold(x, y)

    @precondition(lambda self: any(x.held for x in self.cluster.net.links.values()))
    @rule()
    def release(self) -> None:
        for a, b in sorted(self.cluster.net.links):
            self.cluster.release(a, b)

    @precondition(
        lambda self: (
            bool(self.cluster.net.partitions)
            or not all(p.online for p in self.cluster.peers.values())
        )
    )
    @rule()
    def recover(self) -> None:
        """Every fault heals (partitions, holds, crashed servers restart), then the ensemble
        must converge (swarm's heal phase): rejoining servers sync by DIFF, TRUNC or SNAP."""
        c = self.cluster
        down = [s for s in c.sids if not c.peers[s].online]
        c.heal_all()
        self._restarted.update(down)
        c.stabilize(3_000)

    # ------------------------------------------------------------------ witnesses

    @invariant()
    def witness(self) -> None:
        c, w = self.cluster, self.witnesses
        for r in c.records[self._records_seen :]:
            if r["action"] == "FollowerProcessSyncMessage":
                w.saw(f"synced_by_{r['params']['mode']}")
                if r["node"] in self._restarted:
                    w.saw("restarted_server_synced")
        self._records_seen = len(c.records)
        for line in c.steps[self._steps_seen :]:
            what = line.partition(" after ")[2]
            if " crash " in line and what in DURABLE_NAMES:
                w.saw("crash_after_durability_effect")
        self._steps_seen = len(c.steps)
        if c.committed and c.epoch_leader:
            first = min(e for e, _ in c.epoch_leader)
            if any(t.epoch > first for t in c.committed):
                w.saw("txn_committed_after_leader_change")

    # ------------------------------------------------------------------ the spec's invariants

    @invariant()
    def host_view_matches_disk(self) -> None:
        self.cluster.verify()  # also the core/disk/tree agreement

    @invariant()
    def Leadership(self) -> None:
        self._holds("Leadership")

    @invariant()
    def PrefixConsistency(self) -> None:
        self._holds("PrefixConsistency")

    @invariant()
    def Integrity(self) -> None:
        self._holds("Integrity")

    @invariant()
    def Agreement(self) -> None:
        self._holds("Agreement")

    @invariant()
    def TotalOrder(self) -> None:
        self._holds("TotalOrder")

    @invariant()
    def LocalPrimaryOrder(self) -> None:
        self._holds("LocalPrimaryOrder")

    @invariant()
    def GlobalPrimaryOrder(self) -> None:
        self._holds("GlobalPrimaryOrder")

    @invariant()
    def PrimaryIntegrity(self) -> None:
        self._holds("PrimaryIntegrity")

    @invariant()
    def CommittedLogDurability(self) -> None:
        self._holds("CommittedLogDurability")

    @invariant()
    def ProcessConsistency(self) -> None:
        self._holds("ProcessConsistency")


def test_zab_machine() -> None:
    run_machine(ZabMachine, 60, 60)


def test_machine_invariants_are_the_spec_invariants() -> None:
    names = {n for n in vars(ZabMachine) if n in inv.INVARIANTS}
    assert names == set(inv.INVARIANTS)


def test_zab_machine_witnesses() -> None:
    ZabMachine.witnesses.check(test_zab_machine)


FLE_WITNESSES = (
    "fle_leader_decided",
    "txn_committed_after_leader_change",
    "synced_by_DIFF",
    "crash_after_durability_effect",
    "restarted_server_synced",
)


class ZabFleMachine(ZabMachine):
    """The FastLeaderElection cores decide who leads (their notifications are delivered by
    `deliver_vote`); elect/follow, the spec's oracle, are off."""

    witnesses = Witnesses(FLE_WITNESSES)
    election = "fle"

    @precondition(lambda self: bool(self.cluster.enet.ready_links()))
    @rule(k=IDX)
    def deliver_vote(self, k: int) -> None:
        ready = sorted(self.cluster.enet.ready_links())
        self.cluster.deliver_vote(*ready[k % len(ready)])

    @invariant()
    def witness(self) -> None:
        c, w = self.cluster, self.witnesses
        for r in c.records[self._records_seen :]:
            if r["action"] == "FollowerProcessSyncMessage":
                if r["params"]["mode"] == "DIFF":
                    w.saw("synced_by_DIFF")
                if r["node"] in self._restarted:
                    w.saw("restarted_server_synced")
        self._records_seen = len(c.records)
        for line in c.steps[self._steps_seen :]:
            what = line.partition(" after ")[2]
            if " crash " in line and what in DURABLE_NAMES:
                w.saw("crash_after_durability_effect")
            if "decided LEADING" in line:
                w.saw("fle_leader_decided")
        self._steps_seen = len(c.steps)
        if c.committed and c.epoch_leader:
            first = min(e for e, _ in c.epoch_leader)
            if any(t.epoch > first for t in c.committed):
                w.saw("txn_committed_after_leader_change")


def test_zab_fle_machine() -> None:
    run_machine(ZabFleMachine, 40, 60)


def test_zab_fle_machine_witnesses() -> None:
    ZabFleMachine.witnesses.check(test_zab_fle_machine)


class CommitNoQuorumMachine(ZabMachine):
    witnesses = Witnesses(WITNESSES)  # its own tally: not the real machine's

    @initialize(n=st.just(3), window=st.just(500), warm=st.just(False))
    def start(self, n: int, window: int, warm: bool) -> None:
        self.cluster = ZabCluster(n, seed=0, check=False, bug_commit_no_quorum=True)
        self._records_seen = 0
        self._steps_seen = 0
        self._restarted = set()


class CommitNoQuorumFleMachine(ZabFleMachine):
    witnesses = Witnesses(FLE_WITNESSES)  # its own tally: not the real machine's

    @initialize(n=st.just(3), window=st.just(500), warm=st.just(False))
    def start(self, n: int, window: int, warm: bool) -> None:
        self.cluster = ZabCluster(n, seed=0, check=False, bug_commit_no_quorum=True, election="fle")
        self._records_seen = 0
        self._steps_seen = 0
        self._restarted = set()


@pytest.mark.parametrize("machine", [CommitNoQuorumMachine, CommitNoQuorumFleMachine])
def test_machine_catches_a_planted_bug(machine: type[ZabMachine]) -> None:
    with pytest.raises(AssertionError, match="CommittedLogDurability"):
        run_state_machine_as_test(machine, settings=hunt_settings(300, 60))
