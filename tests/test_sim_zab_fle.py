"""The Zab simulator with FastLeaderElection composed in (`ZabCluster(..., election="fle")`):
each server runs the FLE core over its own simulated links and its `Decided` drives
`QuorumPeer.lead()` / `follow()`, as zkref.server.peer_host does. The spec's invariants are
checked after every step; after the faults heal every live server must converge.

CI cost: about 6 s on one core (130 three-server seeds, 8 five-server seeds, planted bugs)."""

from __future__ import annotations

from typing import Any

import pytest

from zkref.core.election.fle import ServerState as FleState
from zkref.core.election.fle import Vote, truly_better
from zkref.core.zab.messages import PacketType, ServerState, Sid
from zkref.sim.zab_cluster import InvariantViolation, SimFailure, ZabCluster

S1, S2, S3 = Sid(1), Sid(2), Sid(3)


def vote_of(c: ZabCluster, s: Sid) -> Vote:
    p = c.peers[s]
    return Vote(s, p.last_logged_zxid(), p.current_epoch)  # type: ignore[arg-type]


def test_oracle_is_the_default_and_fle_mode_emits_no_oracle_records() -> None:
    assert ZabCluster(3).election == "oracle"
    c = ZabCluster(3, seed=1, election="fle")
    ld = c.stabilize()
    assert not any(r["action"] in ("ElectLeader", "FollowLeader") for r in c.records)
    assert {(s, st) for _, s, st, _ in c.decisions} >= {(ld, "LEADING")}
    assert all(leader == ld for _, _, _, leader in c.decisions)


def test_fle_elects_the_highest_sid_on_a_fresh_ensemble_and_writes_commit() -> None:
    c = ZabCluster(3, seed=2, election="fle")
    assert c.stabilize() == S3  # equal votes: the highest sid wins
    ts = [c.write() for _ in range(3)]
    c.run_until_quiet()
    assert c.converged()
    assert all(c.applied[s] == ts for s in c.sids)


def test_fle_never_elects_a_server_lacking_a_committed_txn() -> None:
    """(1,1) is committed by 1 and 2 only; 1 crashes. 3 has the higher sid but a shorter log:
    FLE must pick 2, whose vote (zxid) is better."""
    c = ZabCluster(3, seed=3, election="fle")
    assert c.stabilize() == S3
    c.hold(S3, S1)
    t = c.write()
    c.deliver(S3, S2, PacketType.PROPOSAL)
    c.fsync(S2)
    c.fsync(S3)
    c.deliver(S2, S3, PacketType.ACK)  # committed by 3 and 2; 1 never saw the proposal
    assert t is not None and t in c.committed and t not in c.peers[S1].storage.history
    c.crash(S3)
    c.release(S3, S1)
    ld = c.stabilize(allow_down=True)
    assert ld == S2
    assert all(truly_better(vote_of(c, S2), vote_of(c, s)) or s == S2 for s in (S1, S2))
    c.restart(S3)
    c.stabilize()
    assert all(c.applied[s].count(t) == 1 for s in c.sids)


def test_a_follower_that_loses_its_leader_votes_after_its_log_is_flushed() -> None:
    c = ZabCluster(3, seed=4, election="fle")
    assert c.stabilize() == S3
    t = c.write()
    c.deliver(S3, S2, PacketType.PROPOSAL)  # appended by 2, fsync pending
    c.crash(S3)
    assert c.peers[S2].state is ServerState.LOOKING
    assert c.fles[S2].state is FleState.FOLLOWING  # still its old decision: no round yet
    c.fsync(S2)
    assert c.fles[S2].state is FleState.LOOKING  # the round starts once the log is durable
    assert c.fles[S2].current_vote.zxid == c.peers[S2].last_logged_zxid()
    assert c.stabilize(allow_down=True) == S2 and t is not None and t in c.applied[S1]


SWARM_SEEDS = 130


@pytest.mark.parametrize("chunk", range(2))
def test_swarm_fle_three_servers(chunk: int) -> None:
    per = SWARM_SEEDS // 2
    for seed in range(chunk * per, (chunk + 1) * per):
        ZabCluster(3, seed=seed, election="fle").swarm()


def test_swarm_fle_five_servers() -> None:
    for seed in range(3000, 3008):
        ZabCluster(5, seed=seed, election="fle").swarm(fault_steps=200)


@pytest.mark.parametrize(
    ("flag", "invariant"),
    [
        ("bug_commit_no_quorum", "CommittedLogDurability"),
        ("bug_ack_before_fsync", "CommittedLogDurability"),
        ("bug_ackld_before_fsync", "CommittedLogDurability"),
        ("bug_report_processed_zxid", "ProcessConsistency"),
    ],
)
def test_swarm_fle_catches_planted_bugs(flag: str, invariant: str) -> None:
    bug: dict[str, Any] = {flag: True}
    for seed in range(60):
        try:
            ZabCluster(3, seed=seed, election="fle", **bug).swarm()
        except InvariantViolation as e:
            assert e.name == invariant, str(e)
            assert f"reproduce with seed={seed}" in str(e)
            ZabCluster(3, seed=seed, election="fle").swarm()  # same seed, no bug: passes
            return
    raise AssertionError(f"{flag}: no violation in 60 seeds")


def test_a_seed_replays_exactly_in_fle_mode() -> None:
    a = ZabCluster(3, seed=99, election="fle")
    a.swarm()
    b = ZabCluster(3, seed=99, election="fle")
    b.swarm()
    assert a.steps == b.steps and a.decisions == b.decisions


def test_zookeeper_1419_vote_order_cannot_cost_zab_a_committed_write() -> None:
    """ZOOKEEPER-1419's broken clause ranks votes by sid when zxids are equal, whatever their
    epochs. Equal last zxids mean equal logs, so the leader it may pick lacks nothing committed:
    Zab's invariants hold and the ensemble still converges (the election bug itself is caught in
    the FLE tests: ElectionTerminates, VoteMonotonic, LeaderHasBestVote). A run may instead end
    with the bug's own symptom, an election that never settles (seed 1: every live server
    LOOKING, voting in circles); Zab's invariants were checked at every step up to there."""
    unsettled = []
    for seed in range(20):
        c = ZabCluster(3, seed=seed, election="fle", fle_kw={"bug_vote_order_1419": True})
        try:
            c.swarm()
        except SimFailure as e:
            assert "no convergence" in str(e), str(e)
            live = [p for p in c.peers.values() if p.online]
            assert live and all(p.state is ServerState.LOOKING for p in live), str(e)
            unsettled.append(seed)
    assert len(unsettled) <= 3, unsettled
    for seed in unsettled:  # the same seeds settle without the bug
        ZabCluster(3, seed=seed, election="fle").swarm()
