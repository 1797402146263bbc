"""FastLeaderElection over the deterministic simulator: many seeds, the spec's invariants after
every step (same names as spec/FastLeaderElection.tla), termination, and planted bugs caught."""

from __future__ import annotations

from pathlib import Path

import pytest

from zkref.core.election.fle import ServerState, Sid
from zkref.sim.election_cluster import (
    INVARIANTS,
    ElectionCluster,
    InvariantViolation,
    SimFailure,
)

SEEDS = range(300)
SIZES = (3, 5)


def best_voter(c: ElectionCluster) -> Sid:
    return max(c.voters, key=lambda s: (c.epochs[s], c.zxids[s], s))


def state_of(c: ElectionCluster, sid: int) -> ServerState | None:
    core = c.nodes[Sid(sid)]
    return None if core is None else core.state


def leaders(c: ElectionCluster) -> list[Sid]:
    return [s for s, e in c.live().items() if e.state is ServerState.LEADING]


def test_the_checked_invariants_are_the_spec_invariants() -> None:
    spec = (Path(__file__).resolve().parent.parent / "spec" / "FastLeaderElection.tla").read_text()
    for name in INVARIANTS:
        assert f"\n{name} ==" in spec, name


@pytest.mark.parametrize("n", SIZES)
def test_spec_timing_elects_the_best_vote_and_keeps_the_invariants(n: int) -> None:
    for seed in SEEDS:
        c = ElectionCluster(n, seed)
        c.run_until_stable(2_000)  # checks every invariant after every step
        assert leaders(c) == [best_voter(c)], f"seed={seed}"
        assert all(e.current_vote.leader == best_voter(c) for e in c.live().values())


@pytest.mark.parametrize("n", SIZES)
def test_spec_timing_with_two_restarts_keeps_the_invariants_then_converges(n: int) -> None:
    # MaxRestarts = 2, as models/MCFLE_restarts2.cfg; afterwards the leader-loss stand-in may
    # start as many rounds as it needs
    restarted = 0
    for seed in SEEDS:
        c = ElectionCluster(n, seed)
        c.run_spec(150, max_restarts=2, restart_chance=0.1)
        restarted += c.restarts_done == 2
        c.run_until_stable(5_000, check=False)
        assert len(leaders(c)) == 1
    assert restarted > len(SEEDS) // 2  # both restarts really happened in most runs


def test_two_restarts_can_leave_two_leaders_of_different_rounds() -> None:
    # Not a violation: FLE alone never deposes a leader (Zab's leader timeout does). Two
    # followers start a new round and elect one of themselves while the old leader still
    # LEADS its round; ElectionAgreement speaks of one round (TLC: models/MCFLE_restarts2).
    two_rounds = 0
    for seed in range(100):
        c = ElectionCluster(3, seed)
        c.restarts_left = 2
        for _ in range(300):
            decided = [s for s, e in c.live().items() if e.state is not ServerState.LOOKING]
            if c.restarts_left and decided and c.rng.random() < 0.05:
                followers = [s for s in decided if state_of(c, s) is ServerState.FOLLOWING]
                c.new_round(c.rng.choice(followers or decided))
            else:
                c.step()
            c.check()  # every invariant after every step
            rounds = {c.live()[s].logical_clock for s in leaders(c)}
            if len(leaders(c)) == 2:
                assert len(rounds) == 2, f"seed={seed}"
                two_rounds += 1
                break
    assert two_rounds > 0


@pytest.mark.parametrize("n", SIZES)
def test_swarm_faults_then_heal_converges(n: int) -> None:
    longest = 0
    for seed in SEEDS:
        c = ElectionCluster(n, seed)
        longest = max(longest, c.swarm(fault_steps=300, converge_steps=5_000))
        assert len(leaders(c)) == 1
        assert sum(e is None for e in c.nodes.values()) <= (n - 1) // 2
    assert longest > 0


@pytest.mark.parametrize("n", SIZES)
def test_swarm_with_an_observer_converges_and_the_observer_observes(n: int) -> None:
    for seed in range(100):
        c = ElectionCluster(n, seed, observers=1)
        c.swarm(fault_steps=300, converge_steps=5_000)
        obs = c.nodes[c.observers[0]]
        assert obs is not None and obs.state is ServerState.OBSERVING, f"seed={seed}"
        assert obs.current_vote.leader == leaders(c)[0]


def test_same_seed_same_run() -> None:
    def run(seed: int) -> tuple[object, ...]:
        c = ElectionCluster(5, seed)
        c.swarm(fault_steps=200, converge_steps=5_000)
        return (c.steps, c.clock.now, tuple(c.decisions), c.describe())

    assert run(11) == run(11)
    assert run(11) != run(12)


def test_leader_crash_then_a_new_leader_then_the_old_one_rejoins_as_follower() -> None:
    c = ElectionCluster(3, seed=1, zxids=[1, 2, 3], epochs=[1, 1, 1])
    c.run_until_stable(1_000)
    assert leaders(c) == [3]
    c.crash(Sid(3))
    c.run_until_stable(1_000)
    assert leaders(c) == [2]
    c.restart(Sid(3))
    # 3 comes back with the best vote and joins the established ensemble (it adopts a worse
    # vote as it decides, and did not vote for its leader): every invariant still holds
    c.run_until_stable(1_000)
    three = c.nodes[Sid(3)]
    assert three is not None and three.state is ServerState.FOLLOWING
    assert three.self_vote().zxid == 3  # its zxid input survived the crash
    assert leaders(c) == [2]


def test_a_cut_off_server_then_follows_the_leader_the_others_elected() -> None:
    c = ElectionCluster(5, seed=3, zxids=[1, 1, 1, 1, 9], epochs=[1] * 5)
    for other in (1, 2, 3, 4):
        c.network.partition(Sid(5), Sid(other))
    for _ in range(2_000):
        c.step()
        c.check()
    assert leaders(c) == [4]
    assert [state_of(c, s) for s in (1, 2, 3, 5)] == [ServerState.FOLLOWING] * 3 + [
        ServerState.LOOKING
    ]
    c.network.heal()
    # 5 has the best vote, yet joins the established ensemble: it did not vote for 4, so
    # LeaderHasBestVote (which counts the servers that elected the leader) still holds
    c.run_until_stable(2_000)
    five = c.nodes[Sid(5)]
    assert five is not None and five.state is ServerState.FOLLOWING
    assert five.current_vote.leader == 4
    assert leaders(c) == [4]


def test_planted_zookeeper_1419_is_caught_by_the_invariants() -> None:
    caught: dict[str, int] = {}
    for seed in range(20):
        c = ElectionCluster(3, seed, zxids=[5, 5, 5], epochs=[2, 1, 1], bug_vote_order_1419=True)
        try:
            c.run_until_stable(2_000)
        except InvariantViolation as e:
            caught[e.name] = caught.get(e.name, 0) + 1
            assert "reproduce with seed=" in str(e)
    assert caught, "the checker missed ZOOKEEPER-1419"
    # the correct order on the same inputs: nothing to catch
    for seed in range(20):
        ElectionCluster(3, seed, zxids=[5, 5, 5], epochs=[2, 1, 1]).run_until_stable(2_000)


def test_planted_zookeeper_1419_breaks_termination() -> None:
    for seed in range(8):
        c = ElectionCluster(
            5, seed, zxids=[5] * 5, epochs=[2, 1, 1, 1, 1], bug_vote_order_1419=True
        )
        c.checked, c.check_steps = [], False
        with pytest.raises(SimFailure, match=r"no stable leader(.|\n)*reproduce with seed="):
            c.run_until_stable(3_000)


def test_planted_no_finalize_wait_is_caught() -> None:
    names = set()
    for seed in SEEDS:
        c = ElectionCluster(5, seed, bug_no_finalize_wait=True)
        try:
            c.run_until_stable(3_000)
        except InvariantViolation as e:
            names.add(e.name)
    assert "ElectionAgreement" in names


def test_planted_restart_same_round_is_caught() -> None:
    # a server back to LOOKING keeps its round: a new election reuses the old one's round,
    # and two leaders share it (models/MCFLE_BUG_RESTART_SAME_ROUND)
    caught: dict[str, int] = {}
    for seed in range(100):
        c = ElectionCluster(3, seed, bug_restart_same_round=True)
        try:
            c.run_spec(300, max_restarts=2, restart_chance=0.1)
        except InvariantViolation as e:
            caught[e.name] = caught.get(e.name, 0) + 1
    assert set(caught) == {"ElectionAgreement"}
    # the same seeds with the round incremented: nothing to catch
    for seed in range(100):
        ElectionCluster(3, seed).run_spec(300, max_restarts=2, restart_chance=0.1)


def test_a_recorded_run_is_an_ndjson_trace_of_spec_actions() -> None:
    import json

    c = ElectionCluster(3, seed=5, record=True)
    c.run_until_stable(2_000)
    c.crash(Sid(1))
    c.restart(Sid(1))
    c.run_until_stable(2_000, check=False)
    lines = [json.loads(x) for x in c.trace_ndjson().splitlines()]
    assert lines[0] == {
        "kind": "header",
        "schema": 1,
        "spec": "FastLeaderElection",
        "servers": [1, 2, 3],
        "seed": 5,
        "source": "sim",
    }
    records = lines[1:]
    assert [r["seq"] for r in records] == list(range(len(records)))
    actions = {r["action"] for r in records}
    assert {"Init", "FLEHandleNotmsg", "FLEReplyDecided", "FLEWaitNewNotmsg"} <= actions
    assert actions <= {"Init", "FLEHandleNotmsg", "FLEFinalizeWaitNotmsg", "FLEReplyDecided",
                       "FLEWaitNewNotmsg", "FLERestart", "FLENotmsgTimeout"}  # fmt: skip
    # the last record of each server is its state now
    for sid, core in c.live().items():
        last = [r for r in records if r["node"] == sid][-1]
        assert last["post"] == json.loads(json.dumps(core.spec_vars()))
    decided_by_wait = [r for r in records if r["action"] == "FLEWaitNewNotmsg"]
    assert all(r["post"]["state"] != "LOOKING" for r in decided_by_wait)
