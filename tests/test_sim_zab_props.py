"""Hypothesis drives the Zab simulator (deliver, fsync, elect, write, crash, restart, partition,
heal); one `@invariant` per invariant of `spec/Zab.tla`, with the spec's name."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
)

from support.hyp import run_state_machine_as_test
from zkref.conform import invariants as inv
from zkref.core.zab.messages import Sid
from zkref.sim.zab_cluster import ZabCluster, spec_vars

IDX = st.integers(min_value=0, max_value=1_000)


class ZabMachine(RuleBasedStateMachine):
    cluster: ZabCluster

    @initialize(n=st.sampled_from([3, 3, 5]), window=st.sampled_from([2, 500]))
    def start(self, n: int, window: int) -> None:
        # check=False: the invariants below are what checks each step
        self.cluster = ZabCluster(n, seed=0, check=False, commit_log_count=window)

    def _holds(self, name: str) -> None:
        detail = inv.INVARIANTS[name](spec_vars(self.cluster))
        assert detail is None, f"{name}: {detail}"

    @rule(k=IDX)
    def deliver(self, k: int) -> None:
        ready = sorted(self.cluster.net.ready_links())
        if ready:
            self.cluster.deliver(*ready[k % len(ready)])

    @rule(k=IDX)
    def fsync(self, k: int) -> None:
        pending = sorted(self.cluster.pending_fsync)
        if pending:
            self.cluster.fsync(pending[k % len(pending)])

    @rule(k=IDX)
    def elect(self, k: int) -> None:
        cands = sorted(self.cluster.electable())
        if cands:
            self.cluster.elect(cands[k % len(cands)])

    @rule(k=IDX)
    def follow(self, k: int) -> None:
        options = self.cluster.followable()
        if options:
            self.cluster.follow(*options[k % len(options)])

    @rule()
    def settle(self) -> None:
        self.cluster.run_until_quiet()

    @rule()
    def write(self) -> None:
        if self.cluster.writes < 5:
            self.cluster.write()

    @rule()
    def tick(self) -> None:
        self.cluster.tick()

    @rule(k=IDX)
    def crash(self, k: int) -> None:
        up = [s for s in self.cluster.sids if self.cluster.peers[s].online]
        if up:
            self.cluster.crash(up[k % len(up)])

    @rule(k=IDX)
    def restart(self, k: int) -> None:
        down = [s for s in self.cluster.sids if not self.cluster.peers[s].online]
        if down:
            self.cluster.restart(down[k % len(down)])

    @rule(a=IDX, b=IDX)
    def partition(self, a: int, b: int) -> None:
        sids = self.cluster.sids
        x, y = sids[a % len(sids)], sids[b % len(sids)]
        if x != y and not self.cluster.net.partitioned(x, y):
            self.cluster.partition(x, y)

    @rule()
    def heal(self) -> None:
        for p in sorted(sorted(q) for q in self.cluster.net.partitions):
            self.cluster.heal(Sid(p[0]), Sid(p[1]))

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


ZabMachine.TestCase.settings = settings(
    max_examples=40,
    stateful_step_count=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestZab = ZabMachine.TestCase


def test_machine_invariants_are_the_spec_invariants() -> None:
    names = {n for n in vars(ZabMachine) if n in inv.INVARIANTS}
    assert names == set(inv.INVARIANTS)


class CommitNoQuorumMachine(ZabMachine):
    @initialize(n=st.just(3), window=st.just(500))
    def start(self, n: int, window: int) -> None:
        self.cluster = ZabCluster(n, seed=0, check=False, bug_commit_no_quorum=True)


def test_machine_catches_a_planted_bug() -> None:
    with pytest.raises(AssertionError, match="CommittedLogDurability"):
        run_state_machine_as_test(
            CommitNoQuorumMachine,
            settings=settings(
                max_examples=300,
                stateful_step_count=60,
                deadline=None,
                phases=[Phase.generate],
                suppress_health_check=[HealthCheck.too_slow],
                database=None,
            ),
        )
