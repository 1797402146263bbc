"""A Zab server: the durable fields, the log, and the role of the moment (leader or follower).

Spec: `spec/Zab.tla` (NodeCrash, NodeStart; GoLooking is `go_looking`). ZooKeeper: QuorumPeer.

Rules:
- `accepted_epoch`, `current_epoch` and the log's `disk` are durable; everything else is lost on
  `crash`, which reloads the durable fields from what the host's disk really holds;
- a server that goes LOOKING drops its role and every connection (`StateChanged(LOOKING)`), asks
  for its queued log writes to be flushed, and takes no part in an election until they are
  (`ready_to_vote`): nothing it queued is written after its vote is cast;
- packets from one peer are handled in order; a packet whose action is not yet enabled (an ACK of
  NEWLEADER before the leader's own log is durable) waits, and so does everything behind it;
- `deliver` is the only place lastCommitted moves up, and it applies each txn once, in order.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from zkref.core.quorum import QuorumSystem
from zkref.core.spec_action import spec_action
from zkref.core.zab.effects import Apply, Effect, FsyncLog, Send, StateChanged, Trace
from zkref.core.zab.follower import Follower
from zkref.core.zab.leader import COMMIT_LOG_COUNT, Leader
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
    QuorumPacket,
    ServerState,
    Sid,
    Snap,
    Trunc,
    Txn,
    UpToDate,
    ZabState,
)
from zkref.core.zab.storage import SyncRequestProcessor, last_zxid
from zkref.core.zab.zxid import zxid_counter


@dataclass(frozen=True, slots=True)
class Durable:
    """What a server's disk holds: the epoch files and the fsynced log."""

    accepted_epoch: int = 0
    current_epoch: int = 0
    log: tuple[Txn, ...] = ()


class QuorumPeer:
    def __init__(
        self,
        sid: Sid,
        servers: Iterable[Sid],
        *,
        durable: Durable = Durable(),
        commit_log_count: int = COMMIT_LOG_COUNT,
        force_snap_sync: bool = False,
        sync_limit_ticks: int = 5,
        init_limit_ticks: int = 10,
        bug_ack_before_fsync: bool = False,
        bug_ackld_before_fsync: bool = False,
        bug_epoch_before_log: bool = False,
        bug_report_processed_zxid: bool = False,
        bug_count_stale_ackepoch: bool = False,
        bug_commit_no_quorum: bool = False,
        bug_diff_without_trunc: bool = False,
        bug_vote_before_flush: bool = False,
        bug_commit_in_sync_npe: bool = False,
        quorum: QuorumSystem | None = None,
    ) -> None:
        self.sid = sid
        # the voters; a server not among them is an observer: a learner whose ACKs never count
        # toward a quorum and that never leads (ZooKeeper's Observer, minus INFORM packets)
        self.servers = frozenset(servers)
        self.is_observer = sid not in self.servers
        # weighted / hierarchical quorums from zoo.cfg; None: a majority of `servers`
        self.quorum = quorum
        self.commit_log_count = commit_log_count
        self.force_snap_sync = force_snap_sync
        self.sync_limit_ticks = sync_limit_ticks
        self.init_limit_ticks = init_limit_ticks
        self.bug_ack_before_fsync = bug_ack_before_fsync
        self.bug_ackld_before_fsync = bug_ackld_before_fsync
        self.bug_epoch_before_log = bug_epoch_before_log
        self.bug_report_processed_zxid = bug_report_processed_zxid
        self.bug_count_stale_ackepoch = bug_count_stale_ackepoch
        self.bug_commit_no_quorum = bug_commit_no_quorum
        self.bug_diff_without_trunc = bug_diff_without_trunc
        self.bug_vote_before_flush = bug_vote_before_flush
        self.bug_commit_in_sync_npe = bug_commit_in_sync_npe
        # ZOOKEEPER-4712 only: txns still queued in a SyncRequestProcessor that was not shut
        # down when the server left FOLLOWING; written after its vote (`persisted`)
        self.lingering: list[Txn] = []
        self.online = True
        self.state = ServerState.LOOKING
        self.zab_state = ZabState.ELECTION
        self.accepted_epoch = durable.accepted_epoch
        self.current_epoch = durable.current_epoch
        self.storage = SyncRequestProcessor(durable.log)
        self.last_committed = 0
        self.role: Leader | Follower | None = None
        self.inbox: dict[Sid, deque[QuorumPacket]] = {}
        # Trace records carry the spec variables after their action (`post`) for the trace
        # checkers; a host that records no trace turns this off (the post-state is ~7 % of a
        # member's CPU per write)
        self.post_states = True

    def __repr__(self) -> str:
        return (
            f"QuorumPeer(sid={self.sid}, {self.state}/{self.zab_state}, "
            f"epochs={self.accepted_epoch}/{self.current_epoch}, "
            f"log={len(self.storage.history)}/{len(self.storage.disk)}, lc={self.last_committed})"
        )

    # ------------------------------------------------------------------ views

    def is_quorum(self, sids: Iterable[Sid]) -> bool:
        if self.quorum is not None:
            return self.quorum.contains_quorum(sids)
        return 2 * len(set(sids) & self.servers) > len(self.servers)

    @property
    def leader(self) -> Leader | None:
        return self.role if isinstance(self.role, Leader) else None

    @property
    def follower(self) -> Follower | None:
        return self.role if isinstance(self.role, Follower) else None

    @property
    def leader_of(self) -> Sid | None:
        f = self.follower
        return f.leader if f is not None else None

    @property
    def nl_phase(self) -> NlPhase:
        f = self.follower
        return f.nl_phase if f is not None else NlPhase.NONE

    def last_logged_zxid(self) -> int:
        return last_zxid(self.storage.history)

    @property
    def planted_bug(self) -> bool:
        return any(
            (
                self.bug_ack_before_fsync,
                self.bug_ackld_before_fsync,
                self.bug_epoch_before_log,
                self.bug_report_processed_zxid,
                self.bug_count_stale_ackepoch,
                self.bug_commit_no_quorum,
                self.bug_diff_without_trunc,
                self.bug_vote_before_flush,
                self.bug_commit_in_sync_npe,
            )
        )

    def ready_to_vote(self) -> bool:
        return self.online and self.state is ServerState.LOOKING and self.storage.synced()

    def post(self) -> dict[str, Any]:
        """This server's spec variables, for trace records."""
        return {
            "state": str(self.state),
            "zabState": str(self.zab_state),
            "acceptedEpoch": self.accepted_epoch,
            "currentEpoch": self.current_epoch,
            "history": self.storage.history_view(),
            "disk": len(self.storage.disk),
            "lastCommitted": self.last_committed,
            "nlPhase": str(self.nl_phase),
        }

    def trace(self, action: str, **params: Any) -> Trace:
        return Trace(action, {"i": self.sid, **params}, self.post() if self.post_states else {})

    def ignore(self, why: str, j: Sid) -> list[Effect]:
        """A packet whose action is disabled for good (stale or unexpected): dropped."""
        return [Trace("ignored", {"i": self.sid, "why": why, "j": j}, {})]

    # ------------------------------------------------------------------ commits

    def deliver(self, n: int) -> list[Effect]:
        """Raise lastCommitted to n, applying each newly committed txn once, in order."""
        h = self.storage.history
        assert n <= len(h), (n, len(h))
        if n <= self.last_committed:
            return []
        out: list[Effect] = [Apply(t) for t in h[self.last_committed : n]]
        self.last_committed = n
        return out

    # ------------------------------------------------------------------ roles

    def lead(self) -> list[Effect]:
        """Election chose this server (spec ElectLeader, the leader's part)."""
        assert self.ready_to_vote(), self
        assert not self.is_observer, "an observer never leads"
        self.state = ServerState.LEADING
        self.zab_state = ZabState.DISCOVERY
        self.role = Leader(self)
        return [StateChanged(ServerState.LEADING, self.sid)]

    def follow(self, leader: Sid) -> list[Effect]:
        """Election chose `leader` (spec ElectLeader / FollowLeader, this follower's part):
        connect and send FOLLOWERINFO."""
        assert self.ready_to_vote() and leader != self.sid, (self, leader)
        self.state = ServerState.FOLLOWING
        self.zab_state = ZabState.DISCOVERY
        self.role = Follower(self, leader)
        return [
            StateChanged(ServerState.FOLLOWING, leader),
            Send(leader, FollowerInfo(self.sid, self.accepted_epoch)),
        ]

    def go_looking(self) -> list[Effect]:
        """The spec's GoLooking for this server: drop the role and every connection, and have
        the log flushed before any vote (SyncRequestProcessor.shutdown)."""
        self.state = ServerState.LOOKING
        self.zab_state = ZabState.ELECTION
        self.role = None
        self.inbox.clear()
        out: list[Effect] = [StateChanged(ServerState.LOOKING, None)]
        if self.online and self.bug_vote_before_flush:
            out.extend(self._leave_queued_writes_behind())
        if self.online:
            out.extend(self.storage.request_fsync())
        return out

    def _leave_queued_writes_behind(self) -> list[Effect]:
        """ZOOKEEPER-4712 (planted): Follower.shutdown does not shut its SyncRequestProcessor
        down, so the vote is computed from what the log file holds while the txns still queued
        are written later, after whatever the next leader syncs. Modelled as: the unwritten tail
        leaves the log now (`TruncateLog` to the durable prefix) and is appended again at the
        next flush (`persisted`)."""
        st = self.storage
        if st.synced() or st.history[: len(st.disk)] != st.disk:
            return []
        self.lingering.extend(st.history[len(st.disk) :])
        kept = len(st.disk)
        out = st.truncate(last_zxid(st.disk))
        self.last_committed = min(self.last_committed, kept)
        out.append(FsyncLog(last_zxid(self.lingering)))
        return out

    def link_down(self, peer: Sid) -> list[Effect]:
        """The connection to `peer` broke (peer crashed, went LOOKING, or a partition)."""
        self.inbox.pop(peer, None)
        if self.follower is not None and self.follower.leader == peer:
            return self.go_looking()
        if self.leader is not None:
            self.leader.forget(peer)
        return []

    # ------------------------------------------------------------------ inputs

    def receive(self, frm: Sid, msg: QuorumPacket) -> list[Effect]:
        if not self.online:
            return []
        waiting = self.inbox.get(frm)
        if waiting:
            waiting.append(msg)
            return []
        out = self._dispatch(frm, msg)
        if out is None:
            self.inbox[frm] = deque([msg])
            return []
        return out

    def _dispatch(self, frm: Sid, msg: QuorumPacket) -> list[Effect] | None:
        ld, fl = self.leader, self.follower
        if ld is not None:
            match msg:
                case FollowerInfo():
                    return ld.process_followerinfo(frm, msg)
                case AckEpoch():
                    return ld.process_ackepoch(frm, msg)
                case Ack() if zxid_counter(msg.zxid) == 0:
                    return ld.process_ackld(frm, msg)
                case Ack():
                    return ld.process_ack(frm, msg)
                case _:
                    return self.ignore(f"leader-got-{type(msg).__name__}", frm)
        if fl is not None:
            match msg:
                case LeaderInfo():
                    return fl.process_leaderinfo(frm, msg)
                case Diff() | Trunc() | Snap():
                    return fl.process_sync_message(frm, msg)
                case NewLeader():
                    return fl.process_newleader(frm, msg)
                case UpToDate():
                    return fl.process_uptodate(frm, msg)
                case Proposal():
                    return fl.process_proposal(frm, msg)
                case Commit():
                    return fl.process_commit(frm, msg)
                case _:
                    return self.ignore(f"follower-got-{type(msg).__name__}", frm)
        return self.ignore(f"looking-got-{type(msg).__name__}", frm)

    def _drain(self) -> list[Effect]:
        out: list[Effect] = []
        for frm in sorted(self.inbox):
            q = self.inbox.get(frm)
            while q:
                r = self._dispatch(frm, q[0])
                if r is None:
                    break
                q.popleft()
                out.extend(r)
            if frm in self.inbox and not self.inbox[frm]:
                del self.inbox[frm]
        return out

    def _next_processor(self, new: list[Txn]) -> list[Effect]:
        if self.role is None:
            return []
        return self.role.logged(new)

    def persisted(self) -> list[Effect]:
        """The host made the whole log durable (answer to `FsyncLog`)."""
        if not self.online:
            return []
        out = self.storage.flush(self._next_processor)
        if self.lingering:
            # ZOOKEEPER-4712 (planted): the old SyncRequestProcessor writes what it had queued
            late, self.lingering = self.lingering, []
            out.extend(self.storage.append(late))
        if self.follower is not None:
            out.extend(self.follower.progress())
        out.extend(self._drain())
        return out

    def tick(self) -> list[Effect]:
        if not self.online or self.leader is None:
            return []
        return self.leader.tick()

    def request(self, client_id: int, cxid: int, op_type: int, body: Any) -> list[Effect]:
        """A client write reached this server; only a broadcasting leader proposes it."""
        if not self.online or self.leader is None:
            return []
        return self.leader.process_request(client_id, cxid, op_type, body)

    # ------------------------------------------------------------------ faults

    @spec_action("NodeCrash")
    def crash(self, durable: Durable) -> list[Effect]:
        """Spec: NodeCrash. Volatile state is lost; `durable` is what the disk really holds."""
        assert self.online, self
        self.online = False
        out = self.go_looking()
        self.accepted_epoch = durable.accepted_epoch
        self.current_epoch = durable.current_epoch
        self.storage.crash(durable.log)
        self.lingering = []
        self.last_committed = 0
        out.append(self.trace("NodeCrash"))
        return out

    @spec_action("NodeStart")
    def restart(self) -> list[Effect]:
        """Spec: NodeStart."""
        assert not self.online, self
        self.online = True
        return [self.trace("NodeStart")]
