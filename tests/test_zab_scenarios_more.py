"""More historical ZooKeeper bugs as scripted simulator scenarios: ZOOKEEPER-1154, 4712, 4394
(with 4712) and 1419 (FastLeaderElection composed in). Each runs once with the bug planted in the
core (a `bug_*` flag re-creating the old behaviour), where a named invariant of spec/Zab.tla
breaks, and once without, where the same script converges with no txn lost or applied twice.

The older ones (ZOOKEEPER-2845, 3911/4646, 4643) are in tests/test_sim_zab.py."""

from __future__ import annotations

import pytest

from zkref.core.zab.messages import PacketType, ServerState, Sid, Txn
from zkref.sim.zab_cluster import InvariantViolation, ZabCluster

S1, S2, S3 = Sid(1), Sid(2), Sid(3)


def written(t: Txn | None) -> Txn:
    assert t is not None
    return t


def applied_once_everywhere(c: ZabCluster, *txns: Txn) -> None:
    for s in c.sids:
        for t in txns:
            assert c.applied[s].count(t) == 1, (s, t, c.applied[s])


# ---------------------------------------------------------------------- ZOOKEEPER-1154


def zk1154(bug: bool) -> tuple[ZabCluster, Txn, Txn, Txn]:
    """ZOOKEEPER-1154: the server with the highest zxid misses the election and joins later.
    (1,1) is committed everywhere; (1,2) reaches only leader 1's log. 1 crashes, 2 leads epoch 2
    and commits (2,1). 1 rejoins reporting (1,2), which lies in the new leader's committed range
    but is not in its log: it must be cut (ZooKeeper's TRUNC, here SNAP across the epoch). The
    3.3 leader sent a DIFF of (2,1) only, and 1's log became (1,1),(1,2),(2,1)."""
    c = ZabCluster(3, seed=21, bug_diff_without_trunc=bug)
    c.elect(S1)
    c.run_until_quiet()
    t1 = written(c.write())
    c.run_until_quiet()
    c.hold(S1, S2)
    c.hold(S1, S3)
    t2 = written(c.write())
    c.fsync(S1)  # (1,2) durable on 1 only, committed nowhere
    c.crash(S1)
    c.release(S1, S2)
    c.release(S1, S3)
    c.elect(S2, {S2, S3})
    c.run_until_quiet()
    t3 = written(c.write())
    c.run_until_quiet()  # (2,1) committed by 2 and 3
    c.restart(S1)
    c.follow(S1, S2)
    c.run_until_quiet()
    return c, t1, t2, t3


def test_zookeeper_1154_diff_without_trunc() -> None:
    with pytest.raises(InvariantViolation) as bad:
        zk1154(bug=True)
    assert bad.value.name == "ProcessConsistency"
    assert "reproduce with seed=21" in str(bad.value)
    c, t1, t2, t3 = zk1154(bug=False)
    modes = [r["params"]["mode"] for r in c.records if r["action"] == "LeaderSyncFollower"]
    assert modes[-1] == "SNAP"
    assert c.peers[S1].storage.history == [t1, t3] and t2 not in c.disks[S1].durable_log
    assert c.stabilize() == S2
    applied_once_everywhere(c, t1, t3)
    assert all(t2 not in c.applied[s] for s in c.sids)


# ---------------------------------------------------------------------- ZOOKEEPER-4712


def vote_as_soon_as_possible(c: ZabCluster) -> Sid:
    """Elect the moment some quorum can vote; flush a disk only while none can."""
    while not c.electable():
        c.fsync(min(c.pending_fsync))
    return c.elect()


def zk4712(bug: bool) -> tuple[ZabCluster, Txn, Txn]:
    """ZOOKEEPER-4712: Follower.shutdown leaves its SyncRequestProcessor running. Follower 2 has
    (1,2) queued, not yet written, when leader 1 crashes; it votes with (1,1), 3 wins (equal
    votes, higher sid) and syncs 2 with an empty DIFF; then the old processor writes (1,2) into
    2's log, which is no longer a prefix of its new leader's."""
    c = ZabCluster(3, seed=22, bug_vote_before_flush=bug)
    c.elect(S1)
    c.run_until_quiet()
    t1 = written(c.write())
    c.run_until_quiet()
    c.hold(S1, S3)
    t2 = written(c.write())
    c.deliver(S1, S2, PacketType.PROPOSAL)  # appended by 2, its fsync still pending
    c.crash(S1)
    c.release(S1, S3)
    assert c.peers[S2].state is ServerState.LOOKING
    vote_as_soon_as_possible(c)
    c.run_until_quiet()
    return c, t1, t2


def test_zookeeper_4712_queued_txns_written_after_the_vote() -> None:
    with pytest.raises(InvariantViolation) as bad:
        zk4712(bug=True)
    assert bad.value.name == "ProcessConsistency"
    c, t1, t2 = zk4712(bug=False)
    # 2 could vote only once (1,2) was durable, so its vote was the best and it leads
    assert c.leader() == S2 and c.peers[S2].storage.history == [t1, t2]
    c.restart(S1)
    c.stabilize()
    applied_once_everywhere(c, t1, t2)


# ---------------------------------------------------------------------- ZOOKEEPER-4394


def zk4394(npe: bool, vote_before_flush: bool) -> tuple[ZabCluster, Txn, Txn]:
    """ZOOKEEPER-4394: a learner gets DIFF, PROPOSAL..., NEWLEADER, then the COMMIT of a
    proposal still outstanding at sync time, before UPTODATE. Learner.syncWithLeader had cleared
    packetsNotCommitted at NEWLEADER, so that COMMIT hit a NullPointerException and the server
    went back to LOOKING with the synced txns still queued for its log; with ZOOKEEPER-4712's
    unstopped SyncRequestProcessor they were written after it had synced again."""
    c = ZabCluster(
        3,
        seed=23,
        bug_commit_in_sync_npe=npe,
        bug_vote_before_flush=vote_before_flush,
    )
    c.crash(S3)
    c.elect(S1, {S1, S2})
    c.run_until_quiet()
    t1 = written(c.write())
    c.run_until_quiet()
    c.hold(S2, S1)  # 2's ACKs wait: (1,2) stays outstanding
    t2 = written(c.write())
    c.run_until_quiet()
    c.restart(S3)
    c.follow(S3, S1)
    c.run_until_quiet(fsync=False)  # 3 holds DIFF (1,1),(1,2) and NEWLEADER; its disk is slow
    c.release(S2, S1)
    c.run_until_quiet(fsync=False)  # (1,2) commits; COMMIT reaches 3 before UPTODATE
    if c.peers[S3].state is ServerState.LOOKING:
        while not c.peers[S3].ready_to_vote():
            c.fsync(S3)
        c.follow(S3, S1)
        c.run_until_quiet(fsync=False)
    c.run_until_quiet()
    return c, t1, t2


@pytest.mark.parametrize(
    ("npe", "vote_before_flush"), [(True, True), (True, False), (False, True), (False, False)]
)
def test_zookeeper_4394_commit_in_sync_after_newleader(npe: bool, vote_before_flush: bool) -> None:
    if npe and vote_before_flush:
        with pytest.raises(InvariantViolation) as bad:
            zk4394(npe, vote_before_flush)
        assert bad.value.name == "ProcessConsistency"
        return
    c, t1, t2 = zk4394(npe, vote_before_flush)
    npes = [r for r in c.records if r["action"] == "FollowerProcessCOMMIT" and "npe" in r["params"]]
    assert bool(npes) == npe  # the script does reach 4394's window
    assert c.stabilize() == S1
    applied_once_everywhere(c, t1, t2)
