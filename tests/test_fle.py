"""Unit tests of the FastLeaderElection core: one rule of lookForLeader per test."""

from __future__ import annotations

import itertools
import re
from pathlib import Path
from types import ModuleType

from zkref.core.election import fle as fle_module
from zkref.core.election.fle import (
    NO_VOTE,
    Decided,
    Effect,
    FastLeaderElection,
    Notification,
    Requeue,
    Send,
    ServerState,
    Sid,
    Vote,
    better_1419,
    same_vote,
    truly_better,
)

LOOKING, FOLLOWING, LEADING, OBSERVING = (
    ServerState.LOOKING,
    ServerState.FOLLOWING,
    ServerState.LEADING,
    ServerState.OBSERVING,
)
SPEC = Path(__file__).resolve().parent.parent / "spec"


def S(i: int) -> Sid:
    return Sid(i)


def V(leader: int, zxid: int, epoch: int) -> Vote:
    return Vote(S(leader), zxid, epoch)


def N(
    sid: int, leader: int, zxid: int = 0, rnd: int = 1, state: ServerState = LOOKING, epoch: int = 0
) -> Notification:
    return Notification(
        leader=S(leader), zxid=zxid, election_epoch=rnd, state=state, sid=S(sid), peer_epoch=epoch
    )


def started(
    sid: int, zxid: int = 0, epoch: int = 0, n: int = 3, **kw: bool | int
) -> FastLeaderElection:
    e = FastLeaderElection(S(sid), [S(i) for i in range(1, n + 1)], **kw)  # type: ignore[arg-type]
    e.start_election(zxid, epoch)
    return e


def sends(effects: list[Effect]) -> list[Send]:
    return [x for x in effects if isinstance(x, Send)]


def decided(effects: list[Effect]) -> list[Decided]:
    return [x for x in effects if isinstance(x, Decided)]


def run_wait(e: FastLeaderElection) -> list[Effect]:
    out: list[Effect] = []
    for _ in range(e.finalize_wait_ticks):
        out += e.tick()
    return out


# ------------------------------------------------------------------ vote order


def test_vote_order_peer_epoch_first_then_zxid_then_sid() -> None:
    assert truly_better(V(1, 0, 2), V(3, 100, 1))  # higher epoch beats a higher zxid
    assert truly_better(V(1, 6, 1), V(3, 5, 1))  # same epoch: the zxid decides
    assert truly_better(V(3, 5, 1), V(2, 5, 1))  # same epoch and zxid: the sid decides
    assert not truly_better(V(2, 5, 1), V(3, 5, 1))


def test_vote_order_is_strict_and_total() -> None:
    votes = [V(s, z, e) for s, z, e in itertools.product((1, 2, 3), (0, 5), (0, 1))]
    for a, b in itertools.product(votes, votes):
        if a == b:
            assert not truly_better(a, b)
        else:
            assert truly_better(a, b) != truly_better(b, a), (a, b)
    for a, b, c in itertools.product(votes, votes, votes):
        if truly_better(a, b) and truly_better(b, c):
            assert truly_better(a, c)


def test_zookeeper_1419_order_is_not_antisymmetric() -> None:
    # equal zxids, different epochs: each vote is "better" than the other
    a, b = V(3, 5, 1), V(2, 5, 2)
    assert better_1419(a, b) and better_1419(b, a)
    assert truly_better(b, a) and not truly_better(a, b)
    e = started(1, bug_vote_order_1419=True)
    assert e.better(a, b) and e.better(b, a)


def test_a_vote_for_a_non_voter_is_never_better() -> None:
    e = started(1)
    assert not e.better(V(9, 100, 100), V(1, 0, 0))
    assert e.better(V(1, 0, 0), NO_VOTE)


# ------------------------------------------------------------------ start, same round


def test_start_election_votes_for_itself_and_tells_every_other_voter() -> None:
    e = FastLeaderElection(S(2), [S(1), S(2), S(3)])
    out = e.start_election(7, 1)
    assert e.logical_clock == 1 and e.state is LOOKING
    assert e.current_vote == V(2, 7, 1)
    assert sends(out) == [
        Send(S(1), N(2, 2, 7, 1, LOOKING, 1)),
        Send(S(3), N(2, 2, 7, 1, LOOKING, 1)),
    ]
    assert set(e.recv_votes) == {S(2)}


def test_same_round_better_vote_is_adopted_and_broadcast() -> None:
    e = started(1, zxid=3)
    out = e.receive(S(2), N(2, 2, zxid=9))
    assert e.current_vote == V(2, 9, 0)
    assert sorted(s.to for s in sends(out)) == [2, 3]
    assert all(s.msg.leader == 2 for s in sends(out))
    assert e.recv_votes[S(2)].vote == V(2, 9, 0)
    assert e.recv_votes[S(1)].vote == V(2, 9, 0)
    # {1, 2} of 3 agree: the finalize wait starts
    assert e.waiting


def test_same_round_worse_vote_is_recorded_not_adopted() -> None:
    e = started(3, zxid=9)
    out = e.receive(S(1), N(1, 1, zxid=3))
    assert out == []
    assert e.current_vote == V(3, 9, 0)
    assert e.recv_votes[S(1)].vote == V(1, 3, 0)
    assert not e.waiting


def test_higher_round_resets_the_receive_set_and_revotes_from_the_initial_vote() -> None:
    e = started(1, zxid=5, n=5)
    e.receive(S(4), N(4, 4, zxid=9))  # round 1: adopt 4's vote
    e.receive(S(5), N(5, 5, zxid=2))
    assert e.current_vote == V(4, 9, 0) and set(e.recv_votes) == {1, 4, 5}
    assert not e.waiting
    # round 3 from 2, whose vote (2, zxid 1) is worse than mine: I vote for *myself* again,
    # not for the round-1 vote I held
    out = e.receive(S(2), N(2, 2, zxid=1, rnd=3))
    assert e.logical_clock == 3
    assert set(e.recv_votes) == {1, 2}
    assert e.current_vote == V(1, 5, 0)
    assert {s.msg.election_epoch for s in sends(out)} == {3}
    assert sorted(s.to for s in sends(out)) == [2, 3, 4, 5]


def test_joining_a_newer_round_starts_the_vote_monotonic_ghost_over() -> None:
    # the ghost compares votes within one round: after the drop from 4's round-1 vote to my
    # own in round 3, it holds the round-3 vote, not the round-1 one (spec: FLEHandleNotmsg)
    e = started(1, zxid=5, n=5)
    e.receive(S(4), N(4, 4, zxid=9))
    assert (e.prev_vote, e.prev_round) == (V(1, 5, 0), 1)
    e.receive(S(2), N(2, 2, zxid=1, rnd=3))
    assert e.current_vote == V(1, 5, 0)
    assert (e.prev_vote, e.prev_round) == (V(1, 5, 0), 3)
    e.receive(S(3), N(3, 3, zxid=7, rnd=3))  # then a better one in round 3 moves it up
    assert (e.prev_vote, e.prev_round, e.current_vote) == (V(1, 5, 0), 3, V(3, 7, 0))


def test_higher_round_with_a_better_vote_adopts_it() -> None:
    e = started(1, zxid=5)
    e.receive(S(2), N(2, 3, zxid=7, rnd=2))
    assert e.logical_clock == 2 and e.current_vote == V(3, 7, 0)
    # 2 and I agree in round 2: a quorum of 3, the wait starts at once
    assert e.waiting


def test_lower_round_from_a_looking_peer_is_answered_with_my_vote_and_round() -> None:
    e = started(1, zxid=5)
    e.receive(S(2), N(2, 2, zxid=1, rnd=4))
    before = (e.logical_clock, e.current_vote, dict(e.recv_votes))
    out = e.receive(S(3), N(3, 3, zxid=9, rnd=2))
    assert out == [Send(S(3), N(1, 1, 5, 4, LOOKING))]
    assert (e.logical_clock, e.current_vote, dict(e.recv_votes)) == before


# ------------------------------------------------------------------ finalize wait


def test_quorum_then_quiet_wait_decides_leading() -> None:
    e = started(3, zxid=9)
    e.receive(S(1), N(1, 3, zxid=9))
    assert e.waiting and e.state is LOOKING
    assert e.tick() == []  # wait of 2 ticks
    out = e.tick()
    assert out == [Decided(LEADING, S(3), V(3, 9, 0))]
    assert e.state is LEADING and not e.waiting


def test_quorum_then_quiet_wait_decides_following() -> None:
    e = started(1, zxid=1)
    e.receive(S(3), N(3, 3, zxid=9))
    assert run_wait(e) == [Decided(FOLLOWING, S(3), V(3, 9, 0))]


def test_a_better_vote_during_the_wait_changes_the_decision() -> None:
    e = started(2, zxid=5)
    e.receive(S(1), N(1, 2, zxid=5))  # 1 votes for me: {1, 2} is a quorum
    assert e.waiting
    e.tick()
    out = e.receive(S(3), N(3, 3, zxid=9))  # better: the wait ends, the vote is handled
    assert e.current_vote == V(3, 9, 0)
    assert sorted(s.to for s in sends(out)) == [1, 3]
    assert e.waiting  # {2, 3} agree on 3: a new wait, from the start
    assert e.tick() == []
    assert e.tick() == [Decided(FOLLOWING, S(3), V(3, 9, 0))]


def test_a_better_vote_ends_the_wait_in_its_own_step_and_stays_queued() -> None:
    """Spec FLEFinalizeWaitNotmsg then FLEHandleNotmsg: ZooKeeper's `recvqueue.put(n); break`
    out of the finalize wait, then the outer loop takes n again. Each action has its guard."""
    e = started(2, zxid=5)
    e.receive(S(1), N(1, 2, zxid=5))
    snapshot = e.spec_vars()
    assert snapshot["waiting"] is True
    better = N(3, 3, zxid=9)
    # FLEHandleNotmsg is disabled during the wait: nothing happens, nothing is consumed
    assert e.process_notification(better) == []
    assert e.spec_vars() == snapshot
    # FLEFinalizeWaitNotmsg: the wait ends, the vote and the tables are untouched
    assert e.finalize_wait_notification(better) == [Requeue(better)]
    assert e.current_vote == V(2, 5, 0) and e.last_action == "FLEFinalizeWaitNotmsg"
    assert e.spec_vars() == snapshot | {"waiting": False}
    # now FLEFinalizeWaitNotmsg is disabled, and FLEHandleNotmsg handles the re-queued vote
    assert e.finalize_wait_notification(better) == []
    out = e.process_notification(better)
    assert e.current_vote == V(3, 9, 0) and e.waiting
    assert sorted(s.to for s in sends(out)) == [1, 3]


def test_a_worse_notification_during_the_wait_is_dropped_and_restarts_the_wait() -> None:
    e = started(3, zxid=9)
    e.receive(S(1), N(1, 3, zxid=9))
    e.tick()
    before = dict(e.recv_votes)
    assert e.receive(S(2), N(2, 2, zxid=1)) == []
    assert e.recv_votes == before  # dropped, not recorded
    assert e.tick() == []  # the wait started over
    assert decided(e.tick()) == [Decided(LEADING, S(3), V(3, 9, 0))]


def test_planted_no_finalize_wait_decides_at_once() -> None:
    e = started(3, zxid=9, bug_no_finalize_wait=True)
    assert e.receive(S(1), N(1, 3, zxid=9)) == [Decided(LEADING, S(3), V(3, 9, 0))]


def test_finalize_timeout_guard() -> None:
    e = started(1)
    assert e.finalize_timeout() == []  # not waiting
    e.receive(S(3), N(3, 3))
    assert e.finalize_timeout() == []  # waiting, but the wait has not run out
    assert e.state is LOOKING


# ------------------------------------------------------------------ decided peers


def test_out_of_election_quorum_and_leader_confirmation_make_me_follow() -> None:
    e = started(4, zxid=50, n=5)  # my vote is better than the leader's: I still follow
    assert e.receive(S(1), N(1, 3, zxid=9, rnd=7, state=FOLLOWING)) == []
    assert e.receive(S(2), N(2, 3, zxid=9, rnd=7, state=FOLLOWING)) == []
    # a quorum would be {1, 2, 3}; 3 has not told me it leads yet
    assert e.receive(S(5), N(5, 3, zxid=9, rnd=7, state=FOLLOWING)) == []
    assert e.state is LOOKING, "checkLeader: a quorum of followers is not enough"
    out = e.receive(S(3), N(3, 3, zxid=9, rnd=7, state=LEADING))
    assert out == [Decided(FOLLOWING, S(3), V(3, 9, 0))]
    assert e.logical_clock == 7 and e.current_vote == V(3, 9, 0)


def test_decided_peers_in_my_round_count_with_looking_votes() -> None:
    e = started(1, zxid=1)
    e.receive(S(2), N(2, 2, zxid=1, rnd=1, state=LEADING))
    assert e.state is LOOKING  # only 2 says so
    out = e.receive(S(3), N(3, 2, zxid=1, rnd=1, state=FOLLOWING))
    assert out == [Decided(FOLLOWING, S(2), V(2, 1, 0))]


def test_same_vote_is_zookeepers_vote_equals() -> None:
    """Vote.equals: with a LOOKING side, vote and round; both decided, leader and peer epoch."""
    looking = N(1, 3, zxid=9, rnd=2, epoch=1)
    assert same_vote(looking, N(2, 3, zxid=9, rnd=2, epoch=1))
    assert not same_vote(looking, N(2, 3, zxid=9, rnd=1, epoch=1))
    assert not same_vote(looking, N(2, 3, zxid=8, rnd=2, epoch=1))
    # one LOOKING side is enough for the full comparison, in either order
    follower = N(2, 3, zxid=9, rnd=1, state=FOLLOWING, epoch=1)
    assert not same_vote(looking, follower) and not same_vote(follower, looking)
    assert same_vote(N(2, 3, zxid=9, rnd=2, state=FOLLOWING, epoch=1), looking)
    # both decided: rounds and zxids may differ, leader and peer epoch may not
    leader = N(3, 3, zxid=12, rnd=2, state=LEADING, epoch=1)
    assert same_vote(follower, leader) and same_vote(leader, follower)
    assert not same_vote(follower, N(3, 3, zxid=9, rnd=1, state=LEADING, epoch=2))
    assert not same_vote(follower, N(3, 2, zxid=9, rnd=1, state=LEADING, epoch=1))


def test_decided_peers_of_different_rounds_agree_on_their_leader() -> None:
    """A restarted server hears FOLLOWING 3 (round 1, an older zxid) and LEADING 3 (round 2):
    they agree on (leader, peer epoch), 3 says it leads, so it follows 3 in 3's round."""
    e = started(1, zxid=5, epoch=1)
    assert e.receive(S(2), N(2, 3, zxid=9, rnd=1, state=FOLLOWING, epoch=1)) == []
    assert e.agreeing(e.out_of_election, N(3, 3, zxid=12, rnd=2, state=LEADING, epoch=1)) == {S(2)}
    out = e.receive(S(3), N(3, 3, zxid=12, rnd=2, state=LEADING, epoch=1))
    assert out == [Decided(FOLLOWING, S(3), V(3, 12, 1))]
    assert e.logical_clock == 2
    # a LOOKING vote never agrees with a decided one of another round or zxid
    f = started(1, zxid=9, epoch=1)
    f.receive(S(2), N(2, 3, zxid=9, rnd=1, epoch=1))  # 2 LOOKING, votes 3 in my round
    assert f.agreeing(f.recv_votes, N(3, 3, zxid=12, rnd=1, state=LEADING, epoch=1)) == set()
    # decided peers with another peer epoch are a different leadership: no quorum
    g = started(1, zxid=5, epoch=1)
    g.receive(S(2), N(2, 3, zxid=9, rnd=1, state=FOLLOWING, epoch=1))
    assert g.receive(S(3), N(3, 3, zxid=12, rnd=2, state=LEADING, epoch=2)) == []
    assert g.state is LOOKING


def test_a_stale_leadership_of_mine_is_not_taken_up_again() -> None:
    # a quorum follows me from round 1, but I have moved on to round 2: checkLeader refuses
    e = started(1, zxid=9)
    e.receive(S(2), N(2, 2, rnd=2))
    assert e.logical_clock == 2
    e.receive(S(2), N(2, 1, zxid=9, rnd=1, state=FOLLOWING))
    e.receive(S(3), N(3, 1, zxid=9, rnd=1, state=FOLLOWING))
    assert e.state is LOOKING


def test_my_leadership_in_my_round_is_taken_up() -> None:
    # 2 follows me in my round; with my own vote that is a quorum of 3
    e = started(1, zxid=9)
    out = e.receive(S(2), N(2, 1, zxid=9, rnd=1, state=FOLLOWING))
    assert out == [Decided(LEADING, S(1), V(1, 9, 0))]


def test_a_decided_server_answers_looking_peers_with_its_decided_vote() -> None:
    e = started(1, zxid=1)
    e.receive(S(3), N(3, 3, zxid=9))
    run_wait(e)
    assert e.state is FOLLOWING
    out = e.receive(S(2), N(2, 2, zxid=5, rnd=6))
    assert out == [Send(S(2), N(1, 3, 9, 1, FOLLOWING))]
    assert e.logical_clock == 1 and e.state is FOLLOWING
    assert e.receive(S(2), N(2, 3, zxid=9, rnd=1, state=FOLLOWING)) == []


def test_action_guards() -> None:
    e = started(1, zxid=1)
    assert e.reply_decided(N(2, 2)) == []  # only a decided server replies
    assert e.start_round() == []  # only a decided server restarts
    e.receive(S(3), N(3, 3, zxid=9))
    run_wait(e)
    assert e.process_notification(N(2, 2, zxid=99)) == []
    assert e.current_vote == V(3, 9, 0)


def test_start_round_forgets_the_election_and_votes_for_itself() -> None:
    e = started(1, zxid=1)
    e.receive(S(3), N(3, 3, zxid=9))
    run_wait(e)
    out = e.start_round(last_zxid=4, current_epoch=1)
    assert e.state is LOOKING and e.logical_clock == 2
    assert e.current_vote == V(1, 4, 1)
    assert set(e.recv_votes) == {1} and e.out_of_election == {}
    assert sorted(s.to for s in sends(out)) == [2, 3]
    assert all(s.msg == N(1, 1, 4, 2, LOOKING, 1) for s in sends(out))


def test_planted_restart_same_round_keeps_the_round() -> None:
    e = started(1, zxid=1, bug_restart_same_round=True)
    e.receive(S(3), N(3, 3, zxid=9))
    run_wait(e)
    out = e.start_round()
    assert e.state is LOOKING and e.logical_clock == 1  # correct: 2
    assert all(s.msg.election_epoch == 1 for s in sends(out))


# ------------------------------------------------------------------ timers


def test_notifications_are_sent_again_with_backoff_when_nothing_arrives() -> None:
    e = started(3, min_notification_interval_ticks=2, max_notification_interval_ticks=4)
    assert e.tick() == []
    assert sorted(s.to for s in sends(e.tick())) == [1, 2]  # after 2 quiet ticks
    assert [len(e.tick()) for _ in range(4)] == [0, 0, 0, 2]  # doubled to 4
    assert [len(e.tick()) for _ in range(4)] == [0, 0, 0, 2]  # capped at 4
    e.tick()
    e.receive(S(2), N(2, 2, rnd=1))  # a (worse) arrival resets the quiet count
    assert not e.waiting
    assert [len(e.tick()) for _ in range(4)] == [0, 0, 0, 2]


# ------------------------------------------------------------------ observers


def test_voters_answer_observers_at_once_and_never_count_them() -> None:
    voter = FastLeaderElection(S(1), [S(1), S(2), S(3)])
    voter.start_election(5, 0)
    out = voter.receive(S(4), N(4, 2, zxid=99))
    assert out == [Send(S(4), N(1, 1, 5, 1, LOOKING))]
    assert set(voter.recv_votes) == {1} and voter.current_vote == V(1, 5, 0)


def test_an_observer_proposes_nobody_and_asks_only_voters() -> None:
    obs = FastLeaderElection(S(4), [S(1), S(2), S(3)])
    out = obs.start_election(5, 3)
    assert obs.is_observer and obs.current_vote == NO_VOTE
    assert sorted(s.to for s in sends(out)) == [1, 2, 3]
    assert obs.recv_votes == {}


def test_an_observer_adopts_voters_votes_and_observes() -> None:
    obs = FastLeaderElection(S(4), [S(1), S(2), S(3)])
    obs.start_election(0, 0)
    obs.receive(S(1), N(1, 3, zxid=9))
    waiting_after_one = obs.waiting  # the observer's own vote does not count
    assert obs.current_vote == V(3, 9, 0) and not waiting_after_one
    obs.receive(S(2), N(2, 3, zxid=9))
    assert obs.waiting
    assert run_wait(obs) == [Decided(OBSERVING, S(3), V(3, 9, 0))]


def test_an_observer_follows_an_established_leader_as_observer() -> None:
    obs = FastLeaderElection(S(4), [S(1), S(2), S(3)])
    obs.start_election(0, 0)
    obs.receive(S(1), N(1, 2, zxid=3, rnd=4, state=FOLLOWING))
    out = obs.receive(S(2), N(2, 2, zxid=3, rnd=4, state=LEADING))
    assert out == [Decided(OBSERVING, S(2), V(2, 3, 0))]


# ------------------------------------------------------------------ the spec's action names


def spec_next_actions(path: Path) -> set[str]:
    text = path.read_text()
    body = text.split("\nNext ==", 1)[1]
    body = re.split(r"\n\s*\n|\n\S", body, maxsplit=1)[0]
    return set(re.findall(r":\s*(\w+)\(", body))


def impl_comments(path: Path, impl_file: str) -> set[tuple[str, str]]:
    """(action, Class.method) for each `\\* Impl: <impl_file> Class.method` before an action."""
    pairs = re.findall(r"\\\* Impl: (\S+) (\S+)\n(?:\\\*.*\n)*(\w+)\(", path.read_text())
    return {(action, method) for f, method, action in pairs if f == impl_file}


def registered(module: ModuleType) -> set[tuple[str, str]]:
    out: set[tuple[str, str]] = set()
    for cls in vars(module).values():
        if isinstance(cls, type) and cls.__module__ == module.__name__:
            for name, fn in vars(cls).items():
                action = getattr(fn, "__spec_action__", None)
                if action is not None:
                    out.add((action, f"{cls.__name__}.{name}"))
    return out


def test_spec_next_parser_reads_the_disjuncts() -> None:
    assert spec_next_actions(SPEC / "FastLeaderElection.tla") >= {"FLEHandleNotmsg"}


def test_registered_actions_are_the_fle_spec_next_and_the_zab_election_oracle() -> None:
    impl = "zkref/core/election/fle.py"
    fle_spec = SPEC / "FastLeaderElection.tla"
    reg = registered(fle_module)
    fle_actions = spec_next_actions(fle_spec)
    # every action of FastLeaderElection.tla's Next is implemented here, by the method its
    # `\* Impl:` comment names
    assert {a for a, _ in reg} >= fle_actions
    assert impl_comments(fle_spec, impl) == {p for p in reg if p[0] in fle_actions}
    # the rest are the Zab spec's election oracle actions that name this module
    zab_spec = SPEC / "Zab.tla"
    assert {p for p in reg if p[0] not in fle_actions} == impl_comments(zab_spec, impl)
    assert {a for a, _ in impl_comments(zab_spec, impl)} <= spec_next_actions(zab_spec)


def test_an_observing_observer_is_not_answered_so_nothing_ping_pongs() -> None:
    voter = started(1, zxid=5)
    assert voter.receive(S(4), N(4, 3, zxid=9, rnd=2, state=OBSERVING)) == []
    obs = FastLeaderElection(S(4), [S(1), S(2), S(3)])
    obs.start_election(0, 0)
    obs.receive(S(1), N(1, 2, zxid=3, rnd=4, state=FOLLOWING))
    obs.receive(S(2), N(2, 2, zxid=3, rnd=4, state=LEADING))
    # the OBSERVING observer answers a LOOKING voter (as ZooKeeper); the voter stays quiet
    out = obs.receive(S(1), N(1, 1, zxid=5, rnd=5))
    assert out == [Send(S(1), N(4, 2, 3, 4, OBSERVING))]
    assert voter.receive(S(4), out[0].msg) == []  # type: ignore[union-attr]


def test_spec_vars_use_the_spec_names_and_records() -> None:
    e = started(1, zxid=3, epoch=1)
    e.receive(S(3), N(3, 3, zxid=9, epoch=1))
    v = e.spec_vars()
    assert set(v) == {
        "state",
        "logicalClock",
        "currentVote",
        "recvVotes",
        "outOfElection",
        "waiting",
        "prevVote",
    }
    spec = (SPEC / "FastLeaderElection.tla").read_text()
    assert all(re.search(rf"^\s+{name},?\s+\\\*", spec, re.M) for name in v)
    assert v["currentVote"] == {"leader": 3, "zxid": 9, "epoch": 1}
    assert v["recvVotes"] == {
        1: {"leader": 3, "zxid": 9, "epoch": 1, "round": 1, "state": "LOOKING"},
        3: {"leader": 3, "zxid": 9, "epoch": 1, "round": 1, "state": "LOOKING"},
    }
    assert v["waiting"] is True and v["state"] == "LOOKING"
    assert v["prevVote"] == {"vote": {"leader": 1, "zxid": 3, "epoch": 1}, "round": 1}
