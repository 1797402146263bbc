"""The Zab leader as a pure core: discovery, synchronization and broadcast on the leader side.

Spec: `spec/Zab.tla` (LeaderProcessFOLLOWERINFO, LeaderProcessACKEPOCH, LeaderSyncFollower,
LeaderProcessACKLD, LeaderProcessRequest, LeaderProcessACK, LeaderTimeout). ZooKeeper: Leader,
LearnerHandler.

Rules:
- acceptedEpoch is written (`WriteAcceptedEpoch`) before any LEADERINFO of that epoch leaves;
  currentEpoch is written before the first follower is synced;
- a follower is synced (sync packet + NEWLEADER) only after its ACKEPOCH and only once per term;
  from then on it gets every PROPOSAL and COMMIT (`forwarding`);
- the sync mode is ZooKeeper's: DIFF when the follower's last zxid is in the leader's committed
  log window, TRUNC (+ DIFF) when the follower is ahead or off the leader's log, SNAP below the
  window or when `force_snap_sync`;
- an ACK of NEWLEADER is counted only once the leader's own log is durable (else it waits);
- a proposal commits, in zxid order, once a quorum (the leader's own fsync included) ACKed it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from zkref.core.spec_action import spec_action
from zkref.core.zab.effects import (
    Effect,
    FsyncLog,
    Send,
    WriteAcceptedEpoch,
    WriteCurrentEpoch,
)
from zkref.core.zab.messages import (
    Ack,
    AckEpoch,
    Commit,
    Diff,
    FollowerInfo,
    LeaderInfo,
    NewLeader,
    Proposal,
    ServerState,
    Sid,
    Snap,
    SyncMessage,
    Trunc,
    Txn,
    UpToDate,
    ZabState,
)
from zkref.core.zab.storage import last_zxid, trunc_to
from zkref.core.zab.zxid import make_zxid, zxid_epoch
from zkref.wire.records import TxnBody, TxnHeader

if TYPE_CHECKING:
    from zkref.core.zab.peer import QuorumPeer

# ZooKeeper's zookeeper.commitLogCount default: how many committed txns the leader keeps in memory
COMMIT_LOG_COUNT = 500


def choose_sync(
    history: list[Txn],
    peer_last_zxid: int,
    *,
    commit_log_count: int,
    force_snap: bool,
    bug_diff_without_trunc: bool = False,
) -> SyncMessage:
    """LearnerHandler.syncFollower's choice. The committed log is the last `commit_log_count`
    txns of the leader's log (as ZKDatabase.loadDataBase fills it); when it holds the whole log,
    a follower below it is served from the txn log (txnLogSyncEnabled), else it gets a SNAP."""
    leader_last = last_zxid(history)
    start = max(0, len(history) - commit_log_count)
    snap = Snap(leader_last, tuple(history))
    if force_snap:
        return snap
    if peer_last_zxid == leader_last:
        return Diff(peer_last_zxid, ())
    if peer_last_zxid > leader_last:
        return Trunc(leader_last, ())
    if start > 0 and peer_last_zxid < history[start].zxid:
        return snap
    # queueCommittedProposals
    kept = len(trunc_to(history, peer_last_zxid))
    rest = tuple(history[kept:])
    if bug_diff_without_trunc:
        # ZOOKEEPER-1154 (planted): ZooKeeper 3.3's LearnerHandler sent a DIFF of every txn
        # above the follower's last zxid whenever that zxid lay in the committed log's range,
        # without checking that the follower's txn is in the leader's log (no TRUNC first)
        return Diff(peer_last_zxid, rest)
    if peer_last_zxid == 0 or (kept > 0 and history[kept - 1].zxid == peer_last_zxid):
        return Diff(peer_last_zxid, rest)
    if zxid_epoch(rest[0].zxid) != zxid_epoch(peer_last_zxid):
        # the follower's last txn is off the leader's log and the leader moved to a newer epoch
        # right after its predecessor: ZooKeeper queues nothing and falls back to SNAP
        return snap
    return Trunc(history[kept - 1].zxid if kept else 0, rest)


class LearnerHandler:
    """The leader's side of one follower's connection."""

    def __init__(self, leader: Leader, sid: Sid) -> None:
        self.leader = leader
        self.sid = sid

    @spec_action("LeaderSyncFollower")
    def sync_follower(self) -> list[Effect]:
        """Spec: LeaderSyncFollower. ZooKeeper: LearnerHandler.syncFollower + NEWLEADER."""
        ld = self.leader
        peer = ld.peer
        reported = [p for p in ld.ackepoch_recv if p[0] == self.sid]
        if (
            peer.state is not ServerState.LEADING
            or peer.zab_state not in (ZabState.SYNCHRONIZATION, ZabState.BROADCAST)
            or self.sid in ld.forwarding
            or not reported
        ):
            return []
        peer_last = min(p[1] for p in reported)
        pkt = choose_sync(
            peer.storage.history,
            peer_last,
            commit_log_count=peer.commit_log_count,
            force_snap=peer.force_snap_sync,
            bug_diff_without_trunc=peer.bug_diff_without_trunc,
        )
        ld.forwarding.add(self.sid)
        return [
            Send(self.sid, pkt),
            Send(self.sid, NewLeader(peer.accepted_epoch)),
            peer.trace("LeaderSyncFollower", j=self.sid, mode=type(pkt).__name__.upper()),
        ]


class Leader:
    def __init__(self, peer: QuorumPeer) -> None:
        self.peer = peer
        self.cepoch_recv: set[tuple[Sid, int]] = set()
        self.ackepoch_recv: set[tuple[Sid, int, bool]] = set()
        self.ackld_recv: set[Sid] = set()
        self.forwarding: set[Sid] = set()
        # zxid -> the sids that ACKed it; entries leave once the zxid commits
        self.acks: dict[int, set[Sid]] = {}
        # learners whose connection is up (sent FOLLOWERINFO this term): what check_quorum counts
        self.learners: set[Sid] = set()
        self.handlers: dict[Sid, LearnerHandler] = {}
        self.ticks_without_quorum = 0
        self.ticks_establishing = 0

    # ------------------------------------------------------------------ helpers

    def _quorum_with_me(self, sids: set[Sid]) -> bool:
        return self.peer.is_quorum(sids | {self.peer.sid})

    def _handler(self, j: Sid) -> LearnerHandler:
        h = self.handlers.get(j)
        if h is None:
            h = self.handlers[j] = LearnerHandler(self, j)
        return h

    def _can_commit(self, zxid: int) -> bool:
        by = self.acks.get(zxid, set())
        if self.peer.bug_commit_no_quorum:
            return bool(by)
        return self.peer.is_quorum(by)

    def _commit_point(self) -> int:
        h = self.peer.storage.history
        n = self.peer.last_committed
        while n < len(h) and self._can_commit(h[n].zxid):
            n += 1
        return n

    def _add_ack(self, j: Sid, zxid: int) -> None:
        h, lc = self.peer.storage.history, self.peer.last_committed
        if lc and zxid <= h[lc - 1].zxid:
            return  # committed already (or older): it can no longer matter
        self.acks.setdefault(zxid, set()).add(j)

    def _commit_upto(self, n: int) -> list[Effect]:
        """Commit history[lastCommitted:n]: COMMIT to every forwarded follower, then apply."""
        peer = self.peer
        h = peer.storage.history
        out: list[Effect] = []
        for t in h[peer.last_committed : n]:
            out.extend(Send(j, Commit(t.zxid)) for j in sorted(self.forwarding))
            self.acks.pop(t.zxid, None)
        out.extend(peer.deliver(n))
        return out

    def _sync_pending(self) -> list[Effect]:
        if self.peer.zab_state not in (ZabState.SYNCHRONIZATION, ZabState.BROADCAST):
            return []
        out: list[Effect] = []
        for j in sorted({p[0] for p in self.ackepoch_recv} - self.forwarding):
            out.extend(self._handler(j).sync_follower())
        return out

    def forget(self, j: Sid) -> None:
        """j's connection broke (spec GoLooking of a follower: removed from this leader)."""
        self.learners.discard(j)
        self.ackepoch_recv = {p for p in self.ackepoch_recv if p[0] != j}
        self.ackld_recv.discard(j)
        self.forwarding.discard(j)
        self.handlers.pop(j, None)

    # ------------------------------------------------------------------ discovery

    @spec_action("LeaderProcessFOLLOWERINFO")
    def process_followerinfo(self, j: Sid, m: FollowerInfo) -> list[Effect]:
        """Spec: LeaderProcessFOLLOWERINFO. ZooKeeper: LearnerHandler.run + getEpochToPropose."""
        peer = self.peer
        decided = self._quorum_with_me({s for s, _ in self.cepoch_recv})
        self.cepoch_recv.add((j, m.accepted_epoch))
        self.learners.add(j)
        self._handler(j)
        out: list[Effect] = []
        if decided:
            out.append(Send(j, LeaderInfo(peer.accepted_epoch)))
        elif self._quorum_with_me({s for s, _ in self.cepoch_recv}):
            new_epoch = max({e for _, e in self.cepoch_recv} | {peer.accepted_epoch}) + 1
            assert new_epoch > peer.current_epoch, (new_epoch, peer)
            peer.accepted_epoch = new_epoch
            out.append(WriteAcceptedEpoch(new_epoch))
            out.extend(
                Send(s, LeaderInfo(new_epoch)) for s in sorted({s for s, _ in self.cepoch_recv})
            )
        out.append(peer.trace("LeaderProcessFOLLOWERINFO", j=j))
        return out

    @spec_action("LeaderProcessACKEPOCH")
    def process_ackepoch(self, j: Sid, m: AckEpoch) -> list[Effect]:
        """Spec: LeaderProcessACKEPOCH. ZooKeeper: LearnerHandler.run + waitForEpochAck."""
        peer = self.peer
        discovery = peer.zab_state is ZabState.DISCOVERY
        ahead = (
            discovery
            and m.fresh
            and (
                m.current_epoch > peer.current_epoch
                or (
                    m.current_epoch == peer.current_epoch
                    and last_zxid(peer.storage.history) < m.last_zxid
                )
            )
        )
        if ahead:
            # waitForEpochAck: a follower is more recent than this leader; give up leadership
            out = peer.go_looking()
            out.append(peer.trace("LeaderProcessACKEPOCH", j=j, ahead=True))
            return out
        self.ackepoch_recv.add((j, m.last_zxid, m.fresh))
        electing = {
            s for s, _, fresh in self.ackepoch_recv if fresh or peer.bug_count_stale_ackepoch
        }
        out = []
        established = discovery and self._quorum_with_me(electing)
        if established:
            peer.zab_state = ZabState.SYNCHRONIZATION
            peer.current_epoch = peer.accepted_epoch
            out.append(WriteCurrentEpoch(peer.current_epoch))
        out.append(
            peer.trace(
                "LeaderProcessACKEPOCH",
                j=j,
                established=peer.current_epoch if established else None,
            )
        )
        out.extend(self._sync_pending())
        return out

    # ------------------------------------------------------------------ synchronization

    @spec_action("LeaderProcessACKLD")
    def process_ackld(self, j: Sid, m: Ack) -> list[Effect] | None:
        """Spec: LeaderProcessACKLD. ZooKeeper: LearnerHandler (ACK of NEWLEADER) +
        waitForNewLeaderAck. None: not yet (the leader's own log is not durable), keep it."""
        peer = self.peer
        if peer.zab_state not in (ZabState.SYNCHRONIZATION, ZabState.BROADCAST):
            return peer.ignore("ackld-outside-sync", j)
        if not peer.storage.synced():
            return None
        self.ackld_recv.add(j)
        out: list[Effect] = []
        committed: list[int] = []
        if peer.zab_state is ZabState.SYNCHRONIZATION:
            if self._quorum_with_me(self.ackld_recv):
                peer.zab_state = ZabState.BROADCAST
                h = peer.storage.history
                committed = [t.zxid for t in h[peer.last_committed :]]
                out.extend(peer.deliver(len(h)))
                out.extend(Send(s, UpToDate(last_zxid(h))) for s in sorted(self.ackld_recv))
        else:
            delivered = peer.storage.history[: peer.last_committed]
            out.append(Send(j, UpToDate(last_zxid(delivered))))
        out.append(peer.trace("LeaderProcessACKLD", j=j, committed=committed))
        return out

    # ------------------------------------------------------------------ broadcast

    @spec_action("LeaderProcessRequest")
    def process_request(
        self, client_id: int, cxid: int, op_type: int, body: TxnBody, time_ms: int = 0
    ) -> list[Effect]:
        """Spec: LeaderProcessRequest. ZooKeeper: Leader.propose (after PrepRequestProcessor)."""
        peer = self.peer
        if peer.state is not ServerState.LEADING or peer.zab_state is not ZabState.BROADCAST:
            return peer.ignore("request-not-broadcasting", peer.sid)
        e = peer.current_epoch
        c = peer.storage.count_of_epoch(e)
        zxid = make_zxid(e, c + 1)
        txn = Txn(zxid, TxnHeader(client_id, cxid, zxid, time_ms, op_type), body)
        out = peer.storage.append([txn], fsync=False)
        out.extend(Send(j, Proposal(txn)) for j in sorted(self.forwarding))
        out.append(FsyncLog(zxid))
        out.append(peer.trace("LeaderProcessRequest", txn=txn))
        return out

    def logged(self, new: list[Txn]) -> list[Effect]:
        """AckRequestProcessor: the leader's own ACK of what just became durable."""
        peer = self.peer
        if peer.zab_state is not ZabState.BROADCAST:
            return []
        assert all(map(peer.storage.is_durable, new)), "ACK of a txn that is not durable"
        for t in new:
            if t.epoch == peer.accepted_epoch:
                self._add_ack(peer.sid, t.zxid)
        return self._commit_upto(self._commit_point())

    @spec_action("LeaderProcessACK")
    def process_ack(self, j: Sid, m: Ack) -> list[Effect]:
        """Spec: LeaderProcessACK. ZooKeeper: Leader.processAck + tryToCommit."""
        peer = self.peer
        before = peer.last_committed
        out: list[Effect] = []
        if peer.zab_state is ZabState.BROADCAST:
            self._add_ack(j, m.zxid)
            out = self._commit_upto(self._commit_point())
        h = peer.storage.history
        out.append(
            peer.trace(
                "LeaderProcessACK",
                j=j,
                zxid=m.zxid,
                committed=[t.zxid for t in h[before : peer.last_committed]],
            )
        )
        return out

    @spec_action("LeaderTimeout")
    def check_quorum(self) -> list[Effect]:
        """Spec: LeaderTimeout. ZooKeeper: Leader.lead's ping loop ("Not sufficient followers
        synced, only synced with sids")."""
        peer = self.peer
        if peer.state is not ServerState.LEADING or self._quorum_with_me(self.learners):
            return []
        out = peer.go_looking()
        out.append(peer.trace("LeaderTimeout"))
        return out

    @spec_action("LeaderInitLimitTimeout")
    def init_limit_timeout(self) -> list[Effect]:
        """Spec: LeaderInitLimitTimeout. ZooKeeper: Leader.getEpochToPropose / waitForEpochAck /
        waitForNewLeaderAck time out after initLimit: a leader that did not reach BROADCAST
        gives up, whoever it heard from (LeaderTimeout, by contrast, needs a follower quorum to
        be missing)."""
        peer = self.peer
        if peer.state is not ServerState.LEADING or peer.zab_state is ZabState.BROADCAST:
            return []
        out = peer.go_looking()
        out.append(peer.trace("LeaderInitLimitTimeout"))
        return out

    def tick(self) -> list[Effect]:
        peer = self.peer
        if peer.zab_state is not ZabState.BROADCAST:
            # Leader.lead: before BROADCAST only the initLimit waits apply; the syncLimit
            # quorum check is the ping loop's, which starts once the leader is established
            self.ticks_establishing += 1
            if self.ticks_establishing > peer.init_limit_ticks:
                return self.init_limit_timeout()
            return []
        if self._quorum_with_me(self.learners):
            self.ticks_without_quorum = 0
            return []
        self.ticks_without_quorum += 1
        if self.ticks_without_quorum > peer.sync_limit_ticks:
            return self.check_quorum()
        return []
