"""Hypothesis explores FastLeaderElection schedules the spec allows: it picks which link delivers
next, when time passes (only when nothing is in flight: the spec's timing assumption) and which
decided server restarts (at most once, as models/MCFLE_epochs.cfg). One @invariant per
invariant of spec/FastLeaderElection.tla, same names."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from support.hyp import run_state_machine_as_test
from zkref.core.election.fle import ServerState, Sid
from zkref.sim.election_cluster import (
    ElectionCluster,
    election_agreement,
    leader_has_best_vote,
    vote_monotonic,
)


class FLESchedules(RuleBasedStateMachine):
    cluster: ElectionCluster
    planted = False  # BUG_NO_FINALIZE_WAIT

    @initialize(
        n=st.sampled_from([3, 5]),
        zxids=st.lists(st.integers(0, 2), min_size=5, max_size=5),
        epochs=st.lists(st.integers(0, 1), min_size=5, max_size=5),
    )
    def start(self, n: int, zxids: list[int], epochs: list[int]) -> None:
        self.cluster = ElectionCluster(
            n, seed=0, zxids=zxids[:n], epochs=epochs[:n], bug_no_finalize_wait=self.planted
        )
        self.cluster.restarts_left = 1

    @precondition(lambda self: bool(self.cluster.network.ready_links()))
    @rule(data=st.data())
    def deliver(self, data: st.DataObject) -> None:
        frm, to = data.draw(st.sampled_from(sorted(self.cluster.network.ready_links())))
        self.cluster.deliver(frm, to)

    @precondition(lambda self: self.cluster.network.idle())
    @rule()
    def tick(self) -> None:
        self.cluster.tick()

    @precondition(
        lambda self: (
            self.cluster.restarts_left != 0
            and any(e.state is not ServerState.LOOKING for e in self.cluster.live().values())
        )
    )
    @rule(data=st.data())
    def restart_round(self, data: st.DataObject) -> None:
        decided = sorted(
            s for s, e in self.cluster.live().items() if e.state is not ServerState.LOOKING
        )
        self.cluster.new_round(Sid(data.draw(st.sampled_from(decided))))

    @invariant()
    def ElectionAgreement(self) -> None:  # the spec's names
        assert election_agreement(self.cluster.live()) is None

    @invariant()
    def VoteMonotonic(self) -> None:
        assert vote_monotonic(self.cluster.live()) is None

    @invariant()
    def LeaderHasBestVote(self) -> None:
        assert leader_has_best_vote(self.cluster.live()) is None


FLESchedules.TestCase.settings = settings(
    max_examples=100,
    stateful_step_count=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestFLESchedules = FLESchedules.TestCase


class PlantedNoFinalizeWait(FLESchedules):
    planted = True


def test_the_machine_catches_the_planted_no_finalize_wait_bug() -> None:
    # one of the spec invariants fails (one failure, or a group of distinct ones)
    with pytest.raises((AssertionError, BaseExceptionGroup)):
        run_state_machine_as_test(
            PlantedNoFinalizeWait,
            settings=settings(
                max_examples=300,
                stateful_step_count=60,
                deadline=None,
                derandomize=True,
                database=None,
                phases=[Phase.generate],  # found is enough; no shrinking
                suppress_health_check=[HealthCheck.too_slow],
            ),
        )
