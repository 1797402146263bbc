"""Unit tests of the Zab cores: one spec action at a time, exact effects, durability order."""

from __future__ import annotations

from typing import Any

from zkref.core.acl import OPEN_ACL_UNSAFE
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
    without_traces,
)
from zkref.core.zab.leader import choose_sync
from zkref.core.zab.messages import (
    Ack,
    AckEpoch,
    Commit,
    Diff,
    FollowerInfo,
    LeaderInfo,
    NewLeader,
    NlPhase,
    Proposal,
    ServerState,
    Sid,
    Snap,
    Trunc,
    Txn,
    UpToDate,
    ZabState,
)
from zkref.core.zab.peer import Durable, QuorumPeer
from zkref.core.zab.zxid import make_zxid
from zkref.wire.constants import OpCode
from zkref.wire.records import CreateTxn, TxnHeader

S1, S2, S3 = Sid(1), Sid(2), Sid(3)
SERVERS = (S1, S2, S3)


def txn(e: int, c: int) -> Txn:
    z = make_zxid(e, c)
    return Txn(
        z,
        TxnHeader(7, c, z, 0, int(OpCode.create)),
        CreateTxn(f"/n{e}_{c}", b"v", OPEN_ACL_UNSAFE, False, 0),
    )


def z(e: int, c: int) -> int:
    return make_zxid(e, c)


def eff(out: list[Effect] | None) -> list[Effect]:
    assert out is not None
    return without_traces(out)


def actions(out: list[Effect]) -> list[str]:
    return [e.action for e in out if isinstance(e, Trace) and e.action != "ignored"]


def phase(p: QuorumPeer) -> NlPhase:
    return p.nl_phase


def peer(sid: Sid = S2, **kw: Any) -> QuorumPeer:
    return QuorumPeer(sid, SERVERS, **kw)


def follower(
    leader: Sid = S1, *, log: tuple[Txn, ...] = (), epochs: tuple[int, int] = (0, 0), **kw: Any
) -> QuorumPeer:
    p = peer(S2, durable=Durable(epochs[0], epochs[1], log), **kw)
    out = p.follow(leader)
    assert out == [
        StateChanged(ServerState.FOLLOWING, leader),
        Send(leader, FollowerInfo(S2, epochs[0])),
    ]
    return p


def synced_follower(log: tuple[Txn, ...] = (), epoch: int = 1, **kw: Any) -> QuorumPeer:
    """A follower that took LEADERINFO(epoch) and DIFF(empty) and is about to see NEWLEADER."""
    p = follower(log=log, **kw)
    p.receive(S1, LeaderInfo(epoch))
    p.receive(S1, Diff(p.last_logged_zxid(), ()))
    return p


def leader(*, log: tuple[Txn, ...] = (), epochs: tuple[int, int] = (0, 0), **kw: Any) -> QuorumPeer:
    p = peer(S1, durable=Durable(epochs[0], epochs[1], log), **kw)
    assert p.lead() == [StateChanged(ServerState.LEADING, S1)]
    return p


def broadcasting_leader(**kw: Any) -> QuorumPeer:
    """Leader 1 of epoch 1 with follower 2 synced (BROADCAST)."""
    p = leader(**kw)
    p.receive(S2, FollowerInfo(S2, 0))
    p.receive(S2, AckEpoch(0, 0, True))
    p.receive(S2, Ack(z(1, 0)))
    assert p.zab_state is ZabState.BROADCAST
    return p


# ---------------------------------------------------------------------- discovery


def test_followerinfo_quorum_writes_accepted_epoch_before_leaderinfo() -> None:
    p = leader(epochs=(3, 3))
    out = p.receive(S2, FollowerInfo(S2, 5))
    assert eff(out) == [WriteAcceptedEpoch(6), Send(S2, LeaderInfo(6))]
    assert p.accepted_epoch == 6
    assert actions(out) == ["LeaderProcessFOLLOWERINFO"]
    # the epoch is decided: a late follower gets it at once, nothing more is written
    assert eff(p.receive(S3, FollowerInfo(S3, 1))) == [Send(S3, LeaderInfo(6))]


def test_followerinfo_without_quorum_waits() -> None:
    p = QuorumPeer(S1, (S1, S2, S3, Sid(4), Sid(5)))
    p.lead()
    assert eff(p.receive(S2, FollowerInfo(S2, 0))) == []
    out = eff(p.receive(S3, FollowerInfo(S3, 2)))
    assert out == [WriteAcceptedEpoch(3), Send(S2, LeaderInfo(3)), Send(S3, LeaderInfo(3))]


def test_leaderinfo_fresh_epoch_written_before_ackepoch() -> None:
    p = follower(log=(txn(1, 1), txn(1, 2)), epochs=(1, 1))
    out = p.receive(S1, LeaderInfo(2))
    assert eff(out) == [WriteAcceptedEpoch(2), Send(S1, AckEpoch(1, z(1, 2), True))]
    assert p.zab_state is ZabState.SYNCHRONIZATION and p.accepted_epoch == 2


def test_leaderinfo_same_epoch_is_not_fresh_and_writes_nothing() -> None:
    p = follower(epochs=(2, 1))
    assert eff(p.receive(S1, LeaderInfo(2))) == [Send(S1, AckEpoch(1, 0, False))]


def test_leaderinfo_older_epoch_sends_follower_back_to_election() -> None:
    p = follower(epochs=(4, 4))
    out = eff(p.receive(S1, LeaderInfo(3)))
    assert out == [StateChanged(ServerState.LOOKING, None)]
    assert p.state is ServerState.LOOKING and p.accepted_epoch == 4


def test_ackepoch_reports_last_logged_zxid_not_processed() -> None:
    log = (txn(1, 1), txn(1, 2))
    p = follower(log=log, epochs=(1, 1))
    p.last_committed = 1
    assert eff(p.receive(S1, LeaderInfo(2)))[-1] == Send(S1, AckEpoch(1, z(1, 2), True))
    bug = follower(log=log, epochs=(1, 1), bug_report_processed_zxid=True)
    bug.last_committed = 1
    assert eff(bug.receive(S1, LeaderInfo(2)))[-1] == Send(S1, AckEpoch(1, z(1, 1), True))


def test_ackepoch_quorum_writes_current_epoch_then_syncs() -> None:
    p = leader(log=(txn(1, 1),), epochs=(1, 1))
    p.receive(S2, FollowerInfo(S2, 1))
    out = p.receive(S2, AckEpoch(1, 0, True))
    assert eff(out) == [
        WriteCurrentEpoch(2),
        Send(S2, Diff(0, (txn(1, 1),))),
        Send(S2, NewLeader(2)),
    ]
    assert actions(out) == ["LeaderProcessACKEPOCH", "LeaderSyncFollower"]
    assert p.zab_state is ZabState.SYNCHRONIZATION and p.current_epoch == 2
    assert p.leader is not None and p.leader.forwarding == {S2}


def test_stale_ackepoch_does_not_count_towards_the_epoch_quorum() -> None:
    p = leader()
    p.receive(S2, FollowerInfo(S2, 1))
    assert eff(p.receive(S2, AckEpoch(0, 0, False))) == []
    assert p.zab_state is ZabState.DISCOVERY
    bug = leader(bug_count_stale_ackepoch=True)
    bug.receive(S2, FollowerInfo(S2, 1))
    assert eff(bug.receive(S2, AckEpoch(0, 0, False)))[0] == WriteCurrentEpoch(2)


def test_ackepoch_from_a_more_recent_follower_ends_leadership() -> None:
    p = leader(log=(txn(1, 1),), epochs=(1, 1))
    p.receive(S2, FollowerInfo(S2, 1))
    out = eff(p.receive(S2, AckEpoch(1, z(1, 2), True)))
    assert out == [StateChanged(ServerState.LOOKING, None)]
    assert p.state is ServerState.LOOKING and p.current_epoch == 1


# ---------------------------------------------------------------------- sync mode choice


def test_choose_sync_modes_as_zookeeper() -> None:
    h = [txn(1, 1), txn(1, 2), txn(2, 1), txn(2, 2)]
    kw: dict[str, Any] = {"commit_log_count": 500, "force_snap": False}
    assert choose_sync(h, z(2, 2), **kw) == Diff(z(2, 2), ())
    assert choose_sync(h, z(1, 2), **kw) == Diff(z(1, 2), (txn(2, 1), txn(2, 2)))
    assert choose_sync(h, 0, **kw) == Diff(0, tuple(h))
    # ahead of the leader: TRUNC to the leader's last zxid
    assert choose_sync(h, z(3, 1), **kw) == Trunc(z(2, 2), ())
    # off the leader's log ((1,3) was never committed), the leader's next txn is of a newer
    # epoch: ZooKeeper's queueCommittedProposals gives up and the follower gets a SNAP
    assert choose_sync(h, z(1, 3), **kw) == Snap(z(2, 2), tuple(h))
    # off the leader's log within one epoch: TRUNC to the txn before it, then the rest
    g = [txn(1, 1), txn(1, 3), txn(2, 1)]
    assert choose_sync(g, z(1, 2), **kw) == Trunc(z(1, 1), (txn(1, 3), txn(2, 1)))
    # below the committed-log window: SNAP
    assert choose_sync(h, z(1, 1), commit_log_count=2, force_snap=False) == Snap(z(2, 2), tuple(h))
    assert choose_sync(h, z(2, 1), commit_log_count=2, force_snap=False) == Diff(
        z(2, 1), (txn(2, 2),)
    )
    assert choose_sync(h, z(2, 2), commit_log_count=500, force_snap=True) == Snap(z(2, 2), tuple(h))


# ---------------------------------------------------------------------- synchronization


def test_newleader_fsync_then_current_epoch_then_ack() -> None:
    p = follower(epochs=(0, 0))
    p.receive(S1, LeaderInfo(1))
    out = p.receive(S1, Diff(0, (txn(0, 1),)))
    assert eff(out) == [AppendTxns((txn(0, 1),))]  # logged, not yet durable
    # a proposal of the new epoch arrives behind NEWLEADER
    out = p.receive(S1, NewLeader(1)) + p.receive(S1, Proposal(txn(1, 1)))
    assert eff(out) == [
        FsyncLog(z(0, 1)),
        AppendTxns((txn(1, 1),)),
        FsyncLog(z(1, 1)),
    ]
    assert p.nl_phase is NlPhase.RECEIVED and p.current_epoch == 0
    out = p.persisted()
    assert eff(out) == [
        WriteCurrentEpoch(1),
        Send(S1, Ack(z(1, 0))),
        Send(S1, Ack(z(1, 1))),
    ]
    assert actions(out) == ["NodeFsyncLog", "FollowerUpdateCurrentEpoch", "FollowerReplyACKLD"]
    assert phase(p) is NlPhase.ACKED and p.current_epoch == 1


def test_newleader_with_nothing_to_log_goes_straight_through() -> None:
    p = synced_follower()
    out = p.receive(S1, NewLeader(1))
    assert eff(out) == [WriteCurrentEpoch(1), Send(S1, Ack(z(1, 0)))]
    assert actions(out) == [
        "FollowerProcessNEWLEADER",
        "FollowerUpdateCurrentEpoch",
        "FollowerReplyACKLD",
    ]


def test_bug_ackld_before_fsync_acks_newleader_before_the_log_is_durable() -> None:
    p = follower(bug_ackld_before_fsync=True)
    p.receive(S1, LeaderInfo(1))
    p.receive(S1, Diff(0, (txn(0, 1),)))
    out = eff(p.receive(S1, NewLeader(1)))
    assert out == [WriteCurrentEpoch(1), Send(S1, Ack(z(1, 0))), FsyncLog(z(0, 1))]


def test_bug_epoch_before_log_writes_epoch_before_the_fsync() -> None:
    p = follower(bug_epoch_before_log=True)
    p.receive(S1, LeaderInfo(1))
    p.receive(S1, Diff(0, (txn(0, 1),)))
    assert eff(p.receive(S1, NewLeader(1))) == [WriteCurrentEpoch(1), FsyncLog(z(0, 1))]
    assert eff(p.persisted()) == [Send(S1, Ack(z(1, 0)))]


def test_trunc_is_durable_at_once_and_cuts_last_committed() -> None:
    log = (txn(1, 1), txn(1, 2), txn(1, 3))
    p = follower(log=log, epochs=(1, 1))
    p.last_committed = 3
    p.receive(S1, LeaderInfo(2))
    out = eff(p.receive(S1, Trunc(z(1, 1), (txn(2, 1),))))
    assert out == [TruncateLog(z(1, 1)), AppendTxns((txn(2, 1),))]
    assert p.storage.disk == [txn(1, 1)] and p.storage.history == [txn(1, 1), txn(2, 1)]
    assert p.last_committed == 1


def test_snap_replaces_the_log_in_memory_until_the_next_fsync() -> None:
    p = follower(log=(txn(1, 1),), epochs=(1, 1))
    p.last_committed = 1
    p.receive(S1, LeaderInfo(2))
    snap = (txn(1, 1), txn(1, 2))
    assert eff(p.receive(S1, Snap(z(1, 2), snap))) == [InstallSnapshot(z(1, 2), snap)]
    assert p.storage.disk == [txn(1, 1)] and p.last_committed == 0
    p.receive(S1, NewLeader(2))
    p.persisted()
    assert p.storage.disk == list(snap)


def test_proposals_and_commits_between_newleader_and_uptodate_apply_once() -> None:
    p = synced_follower(log=())
    p.receive(S1, NewLeader(1))
    out = p.receive(S1, Proposal(txn(1, 1))) + p.receive(S1, Proposal(txn(1, 2)))
    out += p.persisted()
    out += p.receive(S1, Commit(z(1, 1)))
    out += p.receive(S1, UpToDate(z(1, 1)))
    out += p.receive(S1, Commit(z(1, 2)))
    applied = [e.txn for e in out if isinstance(e, Apply)]
    assert applied == [txn(1, 1), txn(1, 2)]
    assert p.zab_state is ZabState.BROADCAST and p.last_committed == 2


# ---------------------------------------------------------------------- broadcast


def test_proposal_is_acked_only_after_fsync() -> None:
    p = synced_follower()
    p.receive(S1, NewLeader(1))
    p.receive(S1, UpToDate(0))
    out = eff(p.receive(S1, Proposal(txn(1, 1))))
    assert out == [AppendTxns((txn(1, 1),)), FsyncLog(z(1, 1))]
    assert eff(p.persisted()) == [Send(S1, Ack(z(1, 1)))]
    assert eff(p.persisted()) == []  # nothing new became durable


def test_bug_ack_before_fsync_acks_at_once() -> None:
    p = synced_follower(bug_ack_before_fsync=True)
    p.receive(S1, NewLeader(1))
    out = eff(p.receive(S1, Proposal(txn(1, 1))))
    assert out == [AppendTxns((txn(1, 1),)), Send(S1, Ack(z(1, 1))), FsyncLog(z(1, 1))]
    assert eff(p.persisted()) == []


def test_follower_ignores_packets_from_another_server() -> None:
    p = synced_follower()
    assert eff(p.receive(S3, Proposal(txn(1, 1)))) == []
    assert p.storage.history == []


def test_leader_counts_ackld_only_once_its_log_is_durable() -> None:
    p = broadcasting_leader()
    p.request(7, 1, int(OpCode.create), txn(1, 1).body)  # appended, fsync not yet done
    p.receive(S3, FollowerInfo(S3, 0))
    p.receive(S3, AckEpoch(0, 0, True))
    assert eff(p.receive(S3, Ack(z(1, 0)))) == []  # waits
    assert eff(p.receive(S3, Ack(z(1, 1)))) == []  # behind it, in order
    out = eff(p.persisted())
    # own ACK alone is no quorum; then the ACK of NEWLEADER (nothing delivered yet), then 3's
    # ACK of (1,1) behind it makes the quorum
    assert out == [
        Send(S3, UpToDate(0)),
        Send(S2, Commit(z(1, 1))),
        Send(S3, Commit(z(1, 1))),
        Apply(p.storage.history[0]),
    ]


def test_request_proposes_then_commits_on_a_quorum() -> None:
    p = broadcasting_leader()
    out = p.request(7, 1, int(OpCode.create), txn(1, 1).body)
    t = p.storage.history[-1]
    assert t.zxid == z(1, 1) and t.hdr.zxid == t.zxid and t.hdr.client_id == 7
    assert eff(out) == [AppendTxns((t,)), Send(S2, Proposal(t)), FsyncLog(z(1, 1))]
    assert actions(out) == ["LeaderProcessRequest"]
    assert eff(p.receive(S2, Ack(z(1, 1)))) == []  # one of three: no quorum
    assert eff(p.persisted()) == [Send(S2, Commit(z(1, 1))), Apply(t)]  # own ACK: quorum


def test_commits_go_out_in_zxid_order() -> None:
    p = broadcasting_leader()
    p.request(7, 1, int(OpCode.create), txn(1, 1).body)
    p.request(7, 2, int(OpCode.create), txn(1, 2).body)
    p.persisted()
    assert eff(p.receive(S2, Ack(z(1, 2)))) == []  # (1,1) not yet acked by a quorum
    out = eff(p.receive(S2, Ack(z(1, 1))))
    assert [e.msg for e in out if isinstance(e, Send)] == [Commit(z(1, 1)), Commit(z(1, 2))]


def test_bug_commit_no_quorum_commits_on_one_ack() -> None:
    p = broadcasting_leader(bug_commit_no_quorum=True)
    p.request(7, 1, int(OpCode.create), txn(1, 1).body)
    out = eff(p.receive(S2, Ack(z(1, 1))))
    assert Send(S2, Commit(z(1, 1))) in out


def test_check_quorum_after_sync_limit() -> None:
    p = broadcasting_leader(sync_limit_ticks=2)
    assert p.tick() == [] and p.tick() == []
    p.link_down(S2)
    assert p.tick() == [] and p.tick() == []
    out = p.tick()
    assert eff(out) == [StateChanged(ServerState.LOOKING, None)]
    assert actions(out) == ["LeaderTimeout"]


def test_before_broadcast_only_the_init_limit_applies() -> None:
    """ZooKeeper's Leader.lead: getEpochToPropose / waitForEpochAck / waitForNewLeaderAck wait
    at most initLimit; the syncLimit quorum check is the ping loop's, after them. A leader with
    no learner at all gives up after initLimit ticks (LeaderInitLimitTimeout), not after
    syncLimit (LeaderTimeout); swarm seed 108's trace was rejected for the latter."""
    p = leader(sync_limit_ticks=2, init_limit_ticks=5)
    assert [p.tick() for _ in range(5)] == [[]] * 5
    out = p.tick()
    assert eff(out) == [StateChanged(ServerState.LOOKING, None)]
    assert actions(out) == ["LeaderInitLimitTimeout"]


# ---------------------------------------------------------------------- faults


def test_crash_keeps_only_what_the_disk_holds_and_restart_goes_online() -> None:
    p = synced_follower()
    p.receive(S1, NewLeader(1))
    p.receive(S1, Proposal(txn(1, 1)))
    out = p.crash(Durable(1, 1, ()))
    assert eff(out) == [StateChanged(ServerState.LOOKING, None)]
    assert not p.online and p.storage.history == [] and p.last_committed == 0
    assert p.receive(S1, Proposal(txn(1, 2))) == []
    assert actions(p.restart()) == ["NodeStart"]
    assert p.ready_to_vote()


def test_going_looking_flushes_the_log_before_voting() -> None:
    p = synced_follower()
    p.receive(S1, NewLeader(1))
    p.receive(S1, Proposal(txn(1, 1)))
    out = p.link_down(S1)
    assert out == [StateChanged(ServerState.LOOKING, None), FsyncLog(z(1, 1))]
    assert not p.ready_to_vote()
    assert eff(p.persisted()) == []  # flushed, but no ACK leaves a server that is LOOKING
    assert p.ready_to_vote()
