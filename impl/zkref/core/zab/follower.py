"""The Zab follower as a pure core.

Spec: `spec/Zab.tla` (FollowerProcessLEADERINFO, FollowerProcessSyncMessage,
FollowerProcessNEWLEADER, FollowerUpdateCurrentEpoch, FollowerReplyACKLD, FollowerProcessUPTODATE,
FollowerProcessPROPOSAL, FollowerProcessCOMMIT). ZooKeeper: Learner.registerWithLeader,
Learner.syncWithLeader, Follower.processPacket.

Rules:
- a follower only ever sends to its leader, and only handles packets from it;
- acceptedEpoch is written before ACKEPOCH leaves;
- NEWLEADER is three steps, in ZooKeeper's fixed order: the txns received during sync are
  fsynced, *then* currentEpoch is written, *then* NEWLEADER is ACKed (with ACKs for the synced
  txns of this epoch);
- a proposal is ACKed only once it is durable (after the ACK of NEWLEADER);
- a commit raises lastCommitted and applies each txn once: proposals and commits that arrive
  between NEWLEADER and UPTODATE are applied exactly once, in zxid order.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from zkref.core.spec_action import spec_action
from zkref.core.zab.effects import Effect, Send, WriteAcceptedEpoch, WriteCurrentEpoch
from zkref.core.zab.messages import (
    Ack,
    AckEpoch,
    Commit,
    Diff,
    LeaderInfo,
    NewLeader,
    NlPhase,
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
from zkref.core.zab.zxid import make_zxid

if TYPE_CHECKING:
    from zkref.core.zab.peer import QuorumPeer


def index_of(history: list[Txn], zxid: int, hint: int = -1) -> int:
    """The spec's IndexOf: 1-based position of `zxid` in `history`, 0 when absent. `hint`: the
    0-based index where it probably is (a COMMIT names the first uncommitted txn)."""
    if 0 <= hint < len(history) and history[hint].zxid == zxid:
        return hint + 1
    for k in range(len(history) - 1, -1, -1):
        if history[k].zxid == zxid:
            return k + 1
    return 0


class Follower:
    def __init__(self, peer: QuorumPeer, leader: Sid) -> None:
        self.peer = peer
        self.leader = leader
        self.nl_phase = NlPhase.NONE
        self.proposals_since_newleader = 0

    def _from_leader(self, j: Sid) -> bool:
        return self.peer.state is ServerState.FOLLOWING and j == self.leader

    def _acks_of_epoch(self, txns: list[Txn]) -> list[Effect]:
        e = self.peer.accepted_epoch
        return [Send(self.leader, Ack(t.zxid)) for t in txns if t.epoch == e]

    # ------------------------------------------------------------------ discovery

    @spec_action("FollowerProcessLEADERINFO")
    def process_leaderinfo(self, j: Sid, m: LeaderInfo) -> list[Effect]:
        """Spec: FollowerProcessLEADERINFO. ZooKeeper: Learner.registerWithLeader."""
        peer = self.peer
        if not self._from_leader(j) or peer.zab_state is not ZabState.DISCOVERY:
            return peer.ignore("leaderinfo-unexpected", j)
        e = m.epoch
        if e < peer.accepted_epoch:
            # the leader is behind what this follower accepted: elect again
            gone = peer.go_looking()
            gone.append(peer.trace("FollowerProcessLEADERINFO", j=j, rejected=e))
            return gone
        history = peer.storage.history
        reported = (
            last_zxid(history[: peer.last_committed])
            if peer.bug_report_processed_zxid
            else last_zxid(history)
        )
        fresh = e > peer.accepted_epoch
        out: list[Effect] = []
        if fresh:
            peer.accepted_epoch = e
            out.append(WriteAcceptedEpoch(e))
        peer.zab_state = ZabState.SYNCHRONIZATION
        out.append(Send(j, AckEpoch(peer.current_epoch, reported, fresh)))
        out.append(peer.trace("FollowerProcessLEADERINFO", j=j))
        return out

    # ------------------------------------------------------------------ synchronization

    @spec_action("FollowerProcessSyncMessage")
    def process_sync_message(self, j: Sid, m: SyncMessage) -> list[Effect]:
        """Spec: FollowerProcessSyncMessage. ZooKeeper: Learner.syncWithLeader (DIFF/TRUNC/SNAP)."""
        peer = self.peer
        if (
            not self._from_leader(j)
            or peer.zab_state is not ZabState.SYNCHRONIZATION
            or self.nl_phase is not NlPhase.NONE
        ):
            return peer.ignore("sync-unexpected", j)
        st = peer.storage
        out: list[Effect] = []
        match m:
            case Diff():
                out.extend(st.append(m.txns, fsync=False))
            case Trunc():
                kept = len(trunc_to(st.history, m.zxid))
                out.extend(st.truncate(m.zxid))
                peer.last_committed = min(peer.last_committed, kept)
                out.extend(st.append(m.txns, fsync=False))
            case Snap():
                out.extend(st.install_snapshot(m.zxid, m.snapshot))
                peer.last_committed = 0
        out.append(peer.trace("FollowerProcessSyncMessage", j=j, mode=type(m).__name__.upper()))
        return out

    @spec_action("FollowerProcessNEWLEADER")
    def process_newleader(self, j: Sid, m: NewLeader) -> list[Effect]:
        """Spec: FollowerProcessNEWLEADER. ZooKeeper: Learner.syncWithLeader (NEWLEADER)."""
        peer = self.peer
        if (
            not self._from_leader(j)
            or peer.zab_state is not ZabState.SYNCHRONIZATION
            or self.nl_phase is not NlPhase.NONE
        ):
            return peer.ignore("newleader-unexpected", j)
        out: list[Effect] = []
        if peer.bug_ackld_before_fsync:
            # ZOOKEEPER-3911/4646: epoch written and NEWLEADER ACKed; the txns are logged later
            peer.current_epoch = m.epoch
            self.nl_phase = NlPhase.ACKED
            out += [WriteCurrentEpoch(m.epoch), Send(j, Ack(make_zxid(m.epoch, 0)))]
            out.extend(peer.storage.request_fsync())
        elif peer.bug_epoch_before_log:
            # ZOOKEEPER-4643: currentEpoch written before the synced txns are logged
            peer.current_epoch = m.epoch
            self.nl_phase = NlPhase.EPOCH_WRITTEN
            out.append(WriteCurrentEpoch(m.epoch))
            out.extend(peer.storage.request_fsync())
        else:
            self.nl_phase = NlPhase.RECEIVED
            out.extend(peer.storage.request_fsync())
        out.append(peer.trace("FollowerProcessNEWLEADER", j=j))
        out.extend(self.progress())
        return out

    @spec_action("FollowerUpdateCurrentEpoch")
    def update_current_epoch(self) -> list[Effect]:
        """Spec: FollowerUpdateCurrentEpoch. ZooKeeper: Learner.syncWithLeader, after the
        txns of the sync are logged (ZOOKEEPER-4643 fix)."""
        peer = self.peer
        if (
            peer.state is not ServerState.FOLLOWING
            or self.nl_phase is not NlPhase.RECEIVED
            or not peer.storage.synced()
        ):
            return []
        peer.current_epoch = peer.accepted_epoch
        self.nl_phase = NlPhase.EPOCH_WRITTEN
        return [
            WriteCurrentEpoch(peer.current_epoch),
            peer.trace("FollowerUpdateCurrentEpoch"),
        ]

    @spec_action("FollowerReplyACKLD")
    def reply_ackld(self) -> list[Effect]:
        """Spec: FollowerReplyACKLD. ZooKeeper: Learner.syncWithLeader writes ACK(NEWLEADER)."""
        peer = self.peer
        if (
            peer.state is not ServerState.FOLLOWING
            or self.nl_phase is not NlPhase.EPOCH_WRITTEN
            or not peer.storage.synced()
        ):
            return []
        # durability order: the synced txns are on disk, then currentEpoch, then this ACK
        assert peer.storage.synced(), peer
        if not peer.bug_epoch_before_log:
            assert peer.current_epoch == peer.accepted_epoch, (peer.current_epoch, peer)
        self.nl_phase = NlPhase.ACKED
        out: list[Effect] = [Send(self.leader, Ack(make_zxid(peer.accepted_epoch, 0)))]
        out.extend(self._acks_of_epoch(peer.storage.disk))
        out.append(peer.trace("FollowerReplyACKLD"))
        return out

    def progress(self) -> list[Effect]:
        """Run the NEWLEADER sub-steps that became enabled (after a flush)."""
        return self.update_current_epoch() + self.reply_ackld()

    @spec_action("FollowerProcessUPTODATE")
    def process_uptodate(self, j: Sid, m: UpToDate) -> list[Effect]:
        """Spec: FollowerProcessUPTODATE. ZooKeeper: Learner.syncWithLeader (UPTODATE)."""
        peer = self.peer
        if not self._from_leader(j):
            return peer.ignore("uptodate-unexpected", j)
        k = index_of(peer.storage.history, m.zxid)
        out = peer.deliver(max(k, peer.last_committed))
        peer.zab_state = ZabState.BROADCAST
        out.append(peer.trace("FollowerProcessUPTODATE", j=j))
        return out

    # ------------------------------------------------------------------ broadcast

    @spec_action("FollowerProcessPROPOSAL")
    def process_proposal(self, j: Sid, m: Proposal) -> list[Effect]:
        """Spec: FollowerProcessPROPOSAL. ZooKeeper: Follower.processPacket(PROPOSAL)."""
        peer = self.peer
        if not self._from_leader(j):
            return peer.ignore("proposal-not-from-my-leader", j)
        last = peer.storage.history[-1].zxid if peer.storage.history else 0
        assert m.txn.zxid > last or peer.planted_bug, (m.txn.zxid, last)
        out = peer.storage.append([m.txn])
        if self.nl_phase is not NlPhase.NONE:
            self.proposals_since_newleader += 1
        if peer.bug_ack_before_fsync:
            out.insert(1, Send(j, Ack(m.txn.zxid)))
        out.append(peer.trace("FollowerProcessPROPOSAL", j=j, zxid=m.txn.zxid))
        return out

    def logged(self, new: list[Txn]) -> list[Effect]:
        """SendAckRequestProcessor: ACK what just became durable, once NEWLEADER is ACKed."""
        assert all(map(self.peer.storage.is_durable, new)), "ACK of a txn that is not durable"
        if (
            self.peer.state is not ServerState.FOLLOWING
            or self.nl_phase is not NlPhase.ACKED
            or self.peer.bug_ack_before_fsync
        ):
            return []
        return self._acks_of_epoch(new)

    @spec_action("FollowerProcessCOMMIT")
    def process_commit(self, j: Sid, m: Commit) -> list[Effect]:
        """Spec: FollowerProcessCOMMIT. ZooKeeper: Follower.processPacket(COMMIT)."""
        peer = self.peer
        if not self._from_leader(j):
            return peer.ignore("commit-not-from-my-leader", j)
        if peer.bug_commit_in_sync_npe and self.commit_finds_no_pending_proposal():
            # ZOOKEEPER-4394 (planted): Learner.syncWithLeader cleared packetsNotCommitted at
            # NEWLEADER; this COMMIT's peekFirst() is null, the NullPointerException ends the
            # sync and the server goes back to LOOKING
            gone = peer.go_looking()
            gone.append(peer.trace("FollowerProcessCOMMIT", j=j, zxid=m.zxid, npe=True))
            return gone
        k = index_of(peer.storage.history, m.zxid, peer.last_committed)
        out = peer.deliver(max(k, peer.last_committed))
        out.append(peer.trace("FollowerProcessCOMMIT", j=j, zxid=m.zxid))
        return out

    def commit_finds_no_pending_proposal(self) -> bool:
        """ZOOKEEPER-4394's window: NEWLEADER was handled, UPTODATE not yet, and no PROPOSAL
        arrived since NEWLEADER (ZooKeeper's packetsNotCommitted is empty)."""
        return (
            self.peer.zab_state is ZabState.SYNCHRONIZATION
            and self.nl_phase is not NlPhase.NONE
            and not self.proposals_since_newleader
        )
