"""FastLeaderElection (ZooKeeper 3.8 `FastLeaderElection.lookForLeader`) as a sans-I/O core.

Spec: `spec/FastLeaderElection.tla`. Each spec action is one method tagged `@spec_action`.
The host feeds notifications (`receive`) and ticks (`tick`) and executes the effects returned:
`Send(to, Notification)` and `Decided(state, leader, vote)`.

Rules:
- votes are ordered by peer epoch, then zxid, then sid (totalOrderPredicate): strict and total;
  a vote for a server that does not vote (an observer) is never better than anything;
- a LOOKING server keeps the votes of its round (`recv_votes`, its own included) and the
  notifications of decided peers (`out_of_election`); a notification of a higher round moves it
  to that round, forgets the old round's votes and votes for the better of that vote and its
  own initial vote; a notification of a lower round from a LOOKING peer is answered with our
  vote and round;
- once a quorum of `recv_votes` agrees with our vote in our round, we wait `finalize_wait_ticks`;
  a notification during the wait is its own step (`finalize_wait_notification`, the spec's
  FLEFinalizeWaitNotmsg, ZooKeeper's inner `recvqueue.poll(finalizeWait)` loop): a better one
  ends the wait and is re-queued (`Requeue`), to be handled by `process_notification` like any
  other; any other one is dropped and restarts the wait; the wait running out decides;
- a notification from a FOLLOWING/LEADING peer decides for its leader when a quorum agrees with
  it, in our round or among the decided peers, and checkLeader holds: the leader is us (in that
  round) or the leader itself told us it is LEADING; agreeing is ZooKeeper's Vote.equals
  (`same_vote`): two decided notifications agree on (leader, peer epoch) whatever their rounds
  and zxids, anything compared with a LOOKING one must match in vote and round;
- a decided server answers every LOOKING voter with its decided vote and round; a LOOKING
  non-voter (an observer) is answered at once with our current vote, whatever our state, and
  its notifications are never counted;
- while LOOKING, a vote only moves up the vote order within a round; deciding for an
  established leader may adopt a worse vote (a late server joins, it does not challenge);
- a decision is final until `start_round` (the host saw the leader go: Zab's timeouts);
- a LOOKING server outside the finalize wait that hears nothing for a while sends its vote
  again (`notification_timeout`, the spec's FLENotmsgTimeout), backing off exponentially.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import NewType, assert_never

from zkref.core.quorum import QuorumSystem
from zkref.core.spec_action import spec_action

Sid = NewType("Sid", int)

# ZooKeeper uses Long.MIN_VALUE for an observer's proposed leader, zxid and epoch.
JAVA_LONG_MIN = -(1 << 63)


class ServerState(StrEnum):
    """QuorumPeer.ServerState; the values are the spec's model values."""

    LOOKING = "LOOKING"
    FOLLOWING = "FOLLOWING"
    LEADING = "LEADING"
    OBSERVING = "OBSERVING"


@dataclass(frozen=True, slots=True)
class Vote:
    """What a server proposes: (leader, zxid, peer_epoch) = the spec's [leader, zxid, epoch]."""

    leader: Sid
    zxid: int
    peer_epoch: int


NO_VOTE = Vote(Sid(JAVA_LONG_MIN), JAVA_LONG_MIN, JAVA_LONG_MIN)


@dataclass(frozen=True, slots=True)
class Notification:
    """FastLeaderElection.Notification: a vote, the sender's round (election_epoch), state, sid."""

    leader: Sid
    zxid: int
    election_epoch: int
    state: ServerState
    sid: Sid
    peer_epoch: int

    @property
    def vote(self) -> Vote:
        return Vote(self.leader, self.zxid, self.peer_epoch)


@dataclass(frozen=True, slots=True)
class Send:
    """Put `msg` on the election link to `to`."""

    to: Sid
    msg: Notification


@dataclass(frozen=True, slots=True)
class Decided:
    """The election is over for this server: it is now `state`, following (or being) `leader`."""

    state: ServerState
    leader: Sid
    vote: Vote


@dataclass(frozen=True, slots=True)
class Requeue:
    """Put `msg` back where received notifications wait (ZooKeeper's `recvqueue.put(n)` in the
    finalize wait): it has not been handled yet. Only `finalize_wait_notification` returns it,
    and `receive` runs it, so a host never sees one."""

    msg: Notification


Effect = Send | Decided


def truly_better(a: Vote, b: Vote) -> bool:
    """The correct vote order (the spec's TrulyBetter): peer epoch, then zxid, then sid."""
    return (a.peer_epoch, a.zxid, a.leader) > (b.peer_epoch, b.zxid, b.leader)


def better_1419(a: Vote, b: Vote) -> bool:
    """ZOOKEEPER-1419's predicate: the sid clause forgets to require equal epochs."""
    return (
        a.peer_epoch > b.peer_epoch
        or (a.peer_epoch == b.peer_epoch and a.zxid > b.zxid)
        or (a.zxid == b.zxid and a.leader > b.leader)
    )


def same_vote(a: Notification, b: Notification) -> bool:
    """ZooKeeper's Vote.equals (the spec's SameVote), the equality quorums are counted with.

    If either side is LOOKING: same leader, zxid, peer epoch and round. If both have decided
    (FOLLOWING/LEADING): same leader and peer epoch only -- servers that decided in different
    rounds, or whose zxid moved on since (QuorumPeer.updateElectionVote), still agree on an
    established leader (ZOOKEEPER-1805). The mixed-version clause (ZOOKEEPER-1732) has no
    counterpart here: zkref speaks one notification version."""
    if a.state is ServerState.LOOKING or b.state is ServerState.LOOKING:
        return a.vote == b.vote and a.election_epoch == b.election_epoch
    return a.leader == b.leader and a.peer_epoch == b.peer_epoch


class FastLeaderElection:
    """One server's election state (spec variables: state, logicalClock, currentVote,
    recvVotes, outOfElection, waiting; the ghost prevVote)."""

    def __init__(
        self,
        sid: Sid,
        voters: Iterable[Sid],
        *,
        finalize_wait_ticks: int = 2,
        min_notification_interval_ticks: int = 4,
        max_notification_interval_ticks: int = 64,
        bug_vote_order_1419: bool = False,
        bug_no_finalize_wait: bool = False,
        bug_restart_same_round: bool = False,
        quorum: QuorumSystem | None = None,
    ) -> None:
        assert finalize_wait_ticks >= 1
        assert 1 <= min_notification_interval_ticks <= max_notification_interval_ticks
        self.sid = sid
        self.voters: frozenset[Sid] = frozenset(voters)
        assert self.voters, "an ensemble needs voters"
        self.is_observer = sid not in self.voters
        # weighted / hierarchical quorums from zoo.cfg; None: a majority of `voters`
        self.quorum = quorum
        self.finalize_wait_ticks = finalize_wait_ticks
        self.min_notification_interval_ticks = min_notification_interval_ticks
        self.max_notification_interval_ticks = max_notification_interval_ticks
        self.bug_vote_order_1419 = bug_vote_order_1419
        self.bug_no_finalize_wait = bug_no_finalize_wait
        self.bug_restart_same_round = bug_restart_same_round  # planted: no new round
        # inputs from the peer (spec constants InitZxid, InitEpoch)
        self.last_zxid = 0
        self.current_epoch = 0
        # spec variables
        self.state = ServerState.LOOKING
        self.logical_clock = 0  # 0: start_election not called yet
        self.current_vote = NO_VOTE
        self.recv_votes: dict[Sid, Notification] = {}
        self.out_of_election: dict[Sid, Notification] = {}
        self.waiting = False
        # ghost (VoteMonotonic): the vote held before the last change, and in which round
        self.prev_vote = NO_VOTE
        self.prev_round = 0
        # timers, in ticks
        self.wait_ticks_left = 0
        self.idle_ticks = 0
        self.notification_interval_ticks = min_notification_interval_ticks
        self.last_action = "Init"

    # ---------------------------------------------------------------- helpers

    def self_vote(self) -> Vote:
        """getInitId/getInitLastLoggedZxid/getPeerEpoch (the spec's SelfVote)."""
        if self.is_observer:
            return NO_VOTE
        return Vote(self.sid, self.last_zxid, self.current_epoch)

    def better(self, a: Vote, b: Vote) -> bool:
        """totalOrderPredicate(a, b): is `a` strictly better than `b`?"""
        if a.leader not in self.voters:
            return False
        if self.bug_vote_order_1419:
            return better_1419(a, b)
        return truly_better(a, b)

    def is_quorum(self, sids: Iterable[Sid]) -> bool:
        if self.quorum is not None:
            return self.quorum.contains_quorum(sids)
        return 2 * len(set(sids) & self.voters) > len(self.voters)

    def _notification(self, vote: Vote) -> Notification:
        return Notification(
            leader=vote.leader,
            zxid=vote.zxid,
            election_epoch=self.logical_clock,
            state=self.state,
            sid=self.sid,
            peer_epoch=vote.peer_epoch,
        )

    def _broadcast(self) -> list[Effect]:
        """sendNotifications: our vote to every voter but us (ours is recorded directly)."""
        n = self._notification(self.current_vote)
        return [Send(to, n) for to in sorted(self.voters) if to != self.sid]

    def _record_self(self) -> None:
        """The notification ZooKeeper sends itself, delivered at once (as the spec does)."""
        if not self.is_observer:
            self.recv_votes[self.sid] = self._notification(self.current_vote)

    def _set_vote(self, vote: Vote, round_: int) -> None:
        if vote != self.current_vote:
            self.prev_vote, self.prev_round = self.current_vote, round_
        self.current_vote = vote

    @staticmethod
    def agreeing(votes: dict[Sid, Notification], n: Notification) -> set[Sid]:
        """The spec's Agreeing: senders whose notification `same_vote`s n (getVoteTracker)."""
        return {j for j, m in votes.items() if same_vote(m, n)}

    def check_leader(self, votes: dict[Sid, Notification], leader: Sid, round_: int) -> bool:
        """checkLeader: the leader is us in this round, or it told us it is LEADING."""
        if leader == self.sid:
            return self.logical_clock == round_
        m = votes.get(leader)
        return m is not None and m.state is ServerState.LEADING

    def _reset_round_timers(self) -> None:
        self.waiting = False
        self.wait_ticks_left = 0
        self.idle_ticks = 0
        self.notification_interval_ticks = self.min_notification_interval_ticks

    def _start_waiting(self) -> None:
        self.waiting = True
        self.wait_ticks_left = self.finalize_wait_ticks

    def spec_vars(self) -> dict[str, object]:
        """This server's slice of the spec's variables, keyed by the spec's names (the `post` of
        a trace record). Votes as the spec's records: [leader, zxid, epoch (, round, state)]."""

        def vote(v: Vote) -> dict[str, object]:
            return {"leader": v.leader, "zxid": v.zxid, "epoch": v.peer_epoch}

        def notif(n: Notification) -> dict[str, object]:
            return vote(n.vote) | {"round": n.election_epoch, "state": str(n.state)}

        return {
            "state": str(self.state),
            "logicalClock": self.logical_clock,
            "currentVote": vote(self.current_vote),
            "recvVotes": {j: notif(n) for j, n in sorted(self.recv_votes.items())},
            "outOfElection": {j: notif(n) for j, n in sorted(self.out_of_election.items())},
            "waiting": self.waiting,
            "prevVote": {"vote": vote(self.prev_vote), "round": self.prev_round},
        }

    # ----------------------------------------------------------------- inputs

    def start_election(self, last_zxid: int, current_epoch: int) -> list[Effect]:
        """lookForLeader entered for the first time (the spec's Init for this server)."""
        assert self.logical_clock == 0, "start_election once per instance; then start_round"
        self.last_zxid, self.current_epoch = last_zxid, current_epoch
        self.logical_clock = 1
        self.current_vote = self.self_vote()
        self.prev_vote, self.prev_round = self.current_vote, 1
        self.recv_votes = {}
        self.out_of_election = {}
        self._record_self()
        self._reset_round_timers()
        self.last_action = "Init"
        return self._broadcast()

    def receive(self, frm: Sid, msg: Notification) -> list[Effect]:
        """A notification arrived on the link from `frm`: dispatch to the enabled action.

        A better notification during the finalize wait takes two actions, as in the spec and in
        ZooKeeper: the wait ends and re-queues it, then it is handled. The host hands the core
        one notification at a time and holds the rest, so the re-queued one is the oldest the
        core has and is handled at once: one of the spec's orders (ZooKeeper puts it back at
        the tail of its receive queue, behind any that arrived meanwhile)."""
        assert msg.sid == frm, (frm, msg)
        assert self.logical_clock > 0, "receive before start_election"
        if self.state is not ServerState.LOOKING:
            return self.reply_decided(msg)
        if not self.waiting:
            return self.process_notification(msg)
        out: list[Effect] = []
        for e in self.finalize_wait_notification(msg):
            if isinstance(e, Requeue):
                out += self.process_notification(e.msg)
            else:
                out.append(e)
        return out

    def tick(self) -> list[Effect]:
        """One tick: the finalize wait and the notification resend timer run down."""
        if self.logical_clock == 0 or self.state is not ServerState.LOOKING:
            return []
        if self.waiting:
            self.wait_ticks_left -= 1
            if self.wait_ticks_left <= 0:
                return self.finalize_timeout()
            return []
        self.idle_ticks += 1
        if self.idle_ticks >= self.notification_interval_ticks:
            return self.notification_timeout()
        return []

    # ---------------------------------------------------------------- actions

    @spec_action("FLEHandleNotmsg")
    def process_notification(self, n: Notification) -> list[Effect]:
        """Spec: FLEHandleNotmsg. ZooKeeper: lookForLeader's outer loop body (and
        WorkerReceiver). Not during the finalize wait: that is `finalize_wait_notification`."""
        if self.state is not ServerState.LOOKING or self.waiting:
            return []
        self.last_action = "FLEHandleNotmsg"
        if n.sid not in self.voters:
            return self._answer_non_voter(n)
        self.idle_ticks = 0
        if n.leader not in self.voters:
            return []
        match n.state:
            case ServerState.LOOKING:
                return self._process_looking(n)
            case ServerState.FOLLOWING | ServerState.LEADING:
                return self.process_out_of_election(n)
            case ServerState.OBSERVING:
                return []
            case _:
                assert_never(n.state)

    def _process_looking(self, n: Notification) -> list[Effect]:
        if n.election_epoch > self.logical_clock:
            # a newer round: join it, forget the old votes, vote the better of n and me
            self.logical_clock = n.election_epoch
            mine = self.self_vote()
            vote = n.vote if self.better(n.vote, mine) else mine
            # the ghost starts over: VoteMonotonic compares votes within one round
            self.prev_vote, self.prev_round = vote, n.election_epoch
            self.current_vote = vote
            self.recv_votes = {n.sid: n}
            self._record_self()
            joined = self._broadcast()
            if self.is_quorum(self.agreeing(self.recv_votes, self._notification(vote))):
                self._start_waiting()
            return joined
        if n.election_epoch < self.logical_clock:
            if self.is_observer:
                # voters ignore what observers say; answering would only ping-pong
                return []
            return [Send(n.sid, self._notification(self.current_vote))]
        effects: list[Effect] = []
        if self.better(n.vote, self.current_vote):
            self._set_vote(n.vote, self.logical_clock)
            effects = self._broadcast()
        self.recv_votes[n.sid] = n
        self._record_self()
        if self.is_quorum(self.agreeing(self.recv_votes, self._notification(self.current_vote))):
            if self.bug_no_finalize_wait:
                return effects + self.decide(self.current_vote)
            self._start_waiting()
        return effects

    @spec_action("FollowLeader")
    def process_out_of_election(self, n: Notification) -> list[Effect]:
        """Zab spec: FollowLeader (the FLE spec's FLEHandleNotmsg, decided-peer branch).
        ZooKeeper: receivedFollowingNotification / receivedLeadingNotification."""
        if self.state is not ServerState.LOOKING or n.state not in (
            ServerState.FOLLOWING,
            ServerState.LEADING,
        ):
            return []
        self.last_action = "FLEHandleNotmsg"
        in_round = False
        if n.election_epoch == self.logical_clock:
            self.recv_votes[n.sid] = n
            in_round = self.is_quorum(self.agreeing(self.recv_votes, n)) and self.check_leader(
                self.recv_votes, n.leader, n.election_epoch
            )
        self.out_of_election[n.sid] = n
        outside = self.is_quorum(self.agreeing(self.out_of_election, n)) and self.check_leader(
            self.out_of_election, n.leader, n.election_epoch
        )
        if not (in_round or outside):
            return []
        if n.vote != self.current_vote:
            self.prev_vote, self.prev_round = self.current_vote, n.election_epoch
        self.current_vote = n.vote
        self.logical_clock = n.election_epoch
        return self.decide(n.vote)

    @spec_action("ElectLeader")
    def decide(self, vote: Vote) -> list[Effect]:
        """Zab spec: ElectLeader (the oracle; here one server's decision).
        ZooKeeper: setPeerState + leaveInstance."""
        assert self.state is ServerState.LOOKING
        assert vote.leader in self.voters, vote
        if vote.leader == self.sid:
            self.state = ServerState.LEADING
        elif self.is_observer:
            self.state = ServerState.OBSERVING
        else:
            self.state = ServerState.FOLLOWING
        self.current_vote = vote
        self.waiting = False
        self.wait_ticks_left = 0
        return [Decided(self.state, vote.leader, vote)]

    @spec_action("FLEFinalizeWaitNotmsg")
    def finalize_wait_notification(self, n: Notification) -> list[Effect | Requeue]:
        """Spec: FLEFinalizeWaitNotmsg. ZooKeeper: lookForLeader's inner loop
        `while ((n = recvqueue.poll(finalizeWait)) != null)` after a quorum agreed with our vote.

        Why a step of its own rather than part of `process_notification`: in ZooKeeper a better
        notification only breaks out of the wait (`recvqueue.put(n); break`) and is taken again
        by a later iteration of the outer loop, after whatever else is queued; the spec keeps
        the two apart so that other notifications may be handled in between."""
        if self.state is not ServerState.LOOKING or not self.waiting:
            return []
        self.last_action = "FLEFinalizeWaitNotmsg"
        if n.sid not in self.voters:
            return list(self._answer_non_voter(n))  # WorkerReceiver answers, whatever we do
        self.idle_ticks = 0
        if self.better(n.vote, self.current_vote):
            self.waiting = False
            self.wait_ticks_left = 0
            return [Requeue(n)]
        # poll(finalizeWait) starts its timeout again
        self.wait_ticks_left = self.finalize_wait_ticks
        return []

    @spec_action("FLEReplyDecided")
    def reply_decided(self, n: Notification) -> list[Effect]:
        """Spec: FLEReplyDecided. ZooKeeper: WorkerReceiver when our state is not LOOKING."""
        if self.state is ServerState.LOOKING:
            return []
        self.last_action = "FLEReplyDecided"
        if n.sid not in self.voters:
            return self._answer_non_voter(n)
        if n.state is ServerState.LOOKING:
            return [Send(n.sid, self._notification(self.current_vote))]
        return []

    def _answer_non_voter(self, n: Notification) -> list[Effect]:
        """WorkerReceiver: a non-voter (observer) gets our current vote at once and is never
        counted. Unlike ZooKeeper 3.8 we answer only a LOOKING one: answering an OBSERVING
        observer, which answers every LOOKING voter, ping-pongs for as long as we look."""
        if n.state is not ServerState.LOOKING:
            return []
        return [Send(n.sid, self._notification(self.current_vote))]

    @spec_action("FLEWaitNewNotmsg")
    def finalize_timeout(self) -> list[Effect]:
        """Spec: FLEWaitNewNotmsg. ZooKeeper: `recvqueue.poll(finalizeWait)` returned null.

        The spec's guard "no notification in flight to me" is, in time, "nothing arrived for
        finalize_wait_ticks": the host must keep message delays below the finalize wait for
        the spec's assumption to hold (the simulator's spec mode does)."""
        if self.state is not ServerState.LOOKING or not self.waiting:
            return []
        if self.wait_ticks_left > 0:
            return []
        self.last_action = "FLEWaitNewNotmsg"
        return self.decide(self.current_vote)

    @spec_action("FLERestart")
    def start_round(
        self, last_zxid: int | None = None, current_epoch: int | None = None
    ) -> list[Effect]:
        """Spec: FLERestart. ZooKeeper: lookForLeader entered again (QuorumPeer back to LOOKING
        after Zab lost its leader or quorum). The peer may pass its newer zxid/epoch."""
        if self.state is ServerState.LOOKING:
            return []
        self.last_action = "FLERestart"
        if last_zxid is not None:
            self.last_zxid = last_zxid
        if current_epoch is not None:
            self.current_epoch = current_epoch
        if not self.bug_restart_same_round:
            self.logical_clock += 1
        self.state = ServerState.LOOKING
        self.current_vote = self.self_vote()
        self.prev_vote, self.prev_round = self.current_vote, self.logical_clock
        self.recv_votes = {}
        self.out_of_election = {}
        self._record_self()
        self._reset_round_timers()
        return self._broadcast()

    @spec_action("FLENotmsgTimeout")
    def notification_timeout(self) -> list[Effect]:
        """Spec: FLENotmsgTimeout. ZooKeeper: the outer loop's `recvqueue.poll(notTimeout)`
        returned null: send our vote again (sendNotifications), back off (notTimeout doubles, up
        to maxNotificationInterval).

        The spec's guard is LOOKING and not in the finalize wait (checked here); when is the
        host's: `tick` calls this once no notification came for `notification_interval_ticks`
        (one may be in flight: the spec allows that too). The spec's bound MaxResends is the
        model's, not ours. Needed for liveness when links reset, and for observers, whom
        voters never notify; the spec's channels lose nothing, so there a resend only adds
        duplicates."""
        if self.state is not ServerState.LOOKING or self.waiting:
            return []
        self.last_action = "FLENotmsgTimeout"
        self.idle_ticks = 0
        self.notification_interval_ticks = min(
            2 * self.notification_interval_ticks, self.max_notification_interval_ticks
        )
        return self._broadcast()
