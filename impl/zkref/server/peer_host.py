"""One ensemble member: drives a `FastLeaderElection` and a `QuorumPeer` over real links and disk.

The deterministic twin is `zkref.sim.zab_cluster` (and `election_cluster`): this host executes
the same effects in the same order, with asyncio TCP instead of the simulated network and files
instead of `SimDisk`.

Rules:
- every input (a notification, a quorum packet, a broken link, a tick) goes through one queue
  and is handed to the cores one at a time; the effects of an input run to completion, in
  order, before the next input is taken;
- durability effects are real: the txn log is ZooKeeper's `TxnLog` (fsynced), `acceptedEpoch`
  and `currentEpoch` are decimal numbers in dataDir written to a temporary file, fsynced and
  renamed; a `Send` after a durability effect leaves only once that effect is durable (effects
  run sequentially and each durability effect is awaited);
- after an `FsyncLog` the host answers with `QuorumPeer.persisted` once the list is done (the
  spec's NodeFsyncLog), as the simulator's `fsync` step does;
- the host never compares zxids or epochs: which role to take comes from `Decided`, what to
  send from `Send`; it only keeps the connections that the cores' roles call for (quorum
  links close when the peer goes LOOKING, a learner's link is read only while we lead);
- a new election round starts when the peer is LOOKING and its log is flushed
  (`QuorumPeer.ready_to_vote`), as ZooKeeper's QuorumPeer.run loop re-enters lookForLeader.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import shutil
import signal
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from zkref.core.datatree import DataTree
from zkref.core.effects import Effect as ClientEffect
from zkref.core.effects import Forward, Persist, Revalidate, SyncReady
from zkref.core.election.fle import Decided, FastLeaderElection
from zkref.core.election.fle import Effect as FleEffect
from zkref.core.election.fle import Send as FleSend
from zkref.core.election.fle import ServerState as FleState
from zkref.core.election.fle import Sid as FleSid
from zkref.core.member import LeaderCore, LearnerCore, ReadOnlyCore
from zkref.core.member_packets import (
    Assigned,
    LearnerPacket,
    LearnerRequest,
    RevalidateAnswer,
    RevalidateAsk,
    SyncDone,
)
from zkref.core.server import CoreConfig, ServerCore
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
)
from zkref.core.zab.messages import FollowerInfo, QuorumPacket, ServerState, Sid, Txn, ZabState
from zkref.core.zab.peer import Durable, QuorumPeer
from zkref.core.zab.zxid import make_zxid
from zkref.server import fourletter
from zkref.server.config import ConfigError, ZooCfg
from zkref.server.quorum import ElectionLinks, PeerAddress, QuorumConn, dial, read_frame
from zkref.server.quorum_codec import (
    PING_PACKET,
    QuorumDecodeError,
    decode_learner_packet,
    decode_notification,
    decode_packet,
    decode_ping,
    encode_learner_packet,
    encode_ping,
    is_learner_packet,
    is_ping,
)
from zkref.server.server import ZkServer
from zkref.server.storage import (
    LOG_PREFIX,
    VERSION_DIR,
    TxnLog,
    _fsync_dir,
    list_files,
    scan_log_file,
)
from zkref.server.tracing import MemberTracer
from zkref.wire.records import CloseSessionTxn, CreateSessionTxn, TxnBody, TxnHeader

log = logging.getLogger("zkref.peer")

# FastLeaderElection's clock: ZooKeeper's finalizeWait is 200 ms, its first resend 200 ms.
ELECTION_TICK_S = 0.05
FINALIZE_WAIT_TICKS = 4
MIN_NOTIFICATION_TICKS = 4
MAX_NOTIFICATION_TICKS = 64
# spec actions worth a line in the log at INFO (the sync mode chosen, a leader giving up)
_LOGGED_ACTIONS = frozenset({"LeaderSyncFollower", "LeaderTimeout"})
NOT_SERVING = "This ZooKeeper instance is not currently serving requests\n"


def read_myid(data_dir: Path) -> int:
    path = data_dir / "myid"
    try:
        return int(path.read_text().strip())
    except FileNotFoundError as e:
        raise ConfigError(f"{path} is missing: an ensemble member needs its myid") from e
    except ValueError as e:
        raise ConfigError(f"{path} does not hold a number") from e


# ---------------------------------------------------------------------- disk


class PeerDisk:
    """The durable fields of a `QuorumPeer` on real files (the asyncio twin of `SimDisk`)."""

    def __init__(self, cfg: ZooCfg) -> None:
        self.data_dir = cfg.data_dir
        self.log_dir = cfg.log_dir / VERSION_DIR
        self.force_sync = cfg.force_sync
        self.prealloc = cfg.prealloc_kb * 1024
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._recover_swap()
        self.txns: list[Txn] = self._read_log()
        self.txn_log = self._open_log()

    # --- start-up
    def _recover_swap(self) -> None:
        """A crash in the middle of `rewrite` leaves the new log beside the old one."""
        new, old = self._side(".new"), self._side(".old")
        if not self.log_dir.exists() and new.exists():
            os.replace(new, self.log_dir)
        for d in (new, old):
            if d.exists():
                shutil.rmtree(d)

    def _side(self, suffix: str) -> Path:
        return self.log_dir.with_name(self.log_dir.name + suffix)

    def _read_log(self) -> list[Txn]:
        out: list[Txn] = []
        files = list_files(self.log_dir, LOG_PREFIX) if self.log_dir.exists() else []
        for i, (_zxid, path) in enumerate(files):
            scan = scan_log_file(path)
            out.extend(Txn(h.zxid, h, b) for h, b in scan.records)
            if scan.problem is not None:
                # a torn tail: what follows was never acknowledged (ZooKeeper truncates too)
                log.warning("txn log %s: %s; truncating to %d", path, scan.problem, scan.valid_end)
                with open(path, "r+b") as f:
                    f.truncate(scan.valid_end)
                    os.fsync(f.fileno())
                for _, later in files[i + 1 :]:
                    later.unlink()
                break
        return out

    def _open_log(self) -> TxnLog:
        t = TxnLog(self.log_dir, force_sync=self.force_sync, prealloc_bytes=self.prealloc)
        t.set_last_zxid(self.txns[-1].zxid if self.txns else 0)
        return t

    def read_epoch(self, name: str) -> int:
        path = self.data_dir / name
        try:
            return int(path.read_text().strip())
        except FileNotFoundError:
            return 0

    def durable(self) -> Durable:
        return Durable(
            accepted_epoch=self.read_epoch("acceptedEpoch"),
            current_epoch=self.read_epoch("currentEpoch"),
            log=tuple(self.txns),
        )

    # --- effects
    def append(self, txns: tuple[Txn, ...]) -> None:
        for t in txns:
            self.txn_log.append(t.hdr, t.body)
        self.txns.extend(txns)

    def sync(self) -> None:
        self.txn_log.sync()

    def write_epoch(self, name: str, epoch: int) -> None:
        """ZooKeeper's writeLongToFile: AtomicFileOutputStream (temp file, fsync, rename)."""
        path = self.data_dir / name
        tmp = path.with_name(name + ".tmp")
        with open(tmp, "w") as f:
            f.write(f"{epoch}\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(self.data_dir)

    def rewrite(self, txns: list[Txn]) -> None:
        """Make the log exactly `txns`, durably (TRUNC, SNAP): a new log directory swapped in."""
        self.txn_log.close()
        new, old = self._side(".new"), self._side(".old")
        if new.exists():
            shutil.rmtree(new)
        t = TxnLog(new, force_sync=self.force_sync, prealloc_bytes=self.prealloc)
        for x in txns:
            t.append(x.hdr, x.body)
        t.close()
        _fsync_dir(new)
        if self.log_dir.exists():
            os.replace(self.log_dir, old)
        os.replace(new, self.log_dir)
        _fsync_dir(self.log_dir.parent)
        if old.exists():
            shutil.rmtree(old)
        self.txns = list(txns)
        self.txn_log = self._open_log()

    def close(self) -> None:
        self.txn_log.close()


# ---------------------------------------------------------------------- inputs


@dataclass(frozen=True, slots=True)
class ElectionIn:
    sid: int
    body: bytes


@dataclass(frozen=True, slots=True)
class QuorumIn:
    conn: QuorumConn
    msg: QuorumPacket


@dataclass(frozen=True, slots=True)
class QuorumDown:
    conn: QuorumConn


@dataclass(frozen=True, slots=True)
class LearnerArrived:
    conn: QuorumConn
    first: FollowerInfo


@dataclass(frozen=True, slots=True)
class LeaderReached:
    conn: QuorumConn | None  # None: the leader's quorum port never answered
    leader: int


@dataclass(frozen=True, slots=True)
class LearnerIn:
    """A learner's client traffic (REQUEST, REVALIDATE) at the leader, or the leader's answers
    (SYNC, REVALIDATE) at a learner: through the input queue, in order with the Zab packets of
    the same link (a SYNC must not overtake the COMMITs before it)."""

    conn: QuorumConn
    msg: LearnerPacket


@dataclass(frozen=True, slots=True)
class ElectionTick:
    zab: bool


@dataclass(frozen=True, slots=True)
class ClientPropose:
    """A txn the leader's ServerCore prepared (its `Persist`): to be proposed through Zab."""

    core: ServerCore
    hdr: TxnHeader
    txn: TxnBody


Input = (
    ElectionIn
    | QuorumIn
    | QuorumDown
    | LearnerArrived
    | LeaderReached
    | ElectionTick
    | ClientPropose
    | LearnerIn
)


class MemberClientPort(ZkServer):
    """A member's client port: the standalone server's connections around the member's core.

    - leader (`LeaderCore`): every `Persist` is proposed through Zab instead of logged here; the
      txn is applied (and answered) when Zab commits it (`Apply` -> `ServerCore.persisted`);
      `SyncReady` becomes a SYNC packet to that learner;
    - follower (`LearnerCore`): `Forward`/`Revalidate` go to the leader as REQUEST/REVALIDATE;
      committed txns arrive as `Apply` -> `LearnerCore.apply_committed`;
    - read-only (`ReadOnlyCore`): nothing leaves the member.
    """

    core: ServerCore

    def __init__(self, host: PeerHost, role: str, key: tuple[str, int, int]) -> None:
        self.host = host
        self.role = role
        self.key = key
        self._flush_scheduled = False
        super().__init__(host.cfg, server_id=host.myid)

    def _restore(self) -> ServerCore:
        h, cfg = self.host, self.host.cfg
        core_cfg = CoreConfig(
            server_id=h.myid,
            tick_time_ms=cfg.tick_time_ms,
            min_session_timeout_ms=cfg.min_session_timeout,
            max_session_timeout_ms=cfg.max_session_timeout,
            max_buffer=cfg.jute_maxbuffer,
            super_digest=cfg.super_digest,
            extended_types_enabled=cfg.extended_types_enabled,
            secret=h.secret,
            start_ms=self.now_ms(),
        )
        if self.role == "leader":
            return LeaderCore(
                core_cfg,
                tree=h.tree,
                sessions=h.sessions,
                linearizable_sync=cfg.linearizable_sync,
            )
        if self.role in ("follower", "observer"):
            return LearnerCore(core_cfg, tree=h.tree, match_by_zxid=True)
        assert self.role == "read-only", self.role
        return ReadOnlyCore(core_cfg, tree=h.tree, sessions=h.sessions)

    def run_effects(self, effects: list[ClientEffect]) -> None:
        rest: list[ClientEffect] = []
        h = self.host
        for e in effects:
            if not isinstance(e, Persist | Forward | Revalidate | SyncReady):
                rest.append(e)
                continue
            if rest:  # keep the order: what came before this effect goes first
                super().run_effects(rest)
                rest = []
            match e:
                case Persist():
                    h.queue.put_nowait(ClientPropose(self.core, e.hdr, e.txn))
                case Forward():
                    h.to_leader(LearnerRequest(e))
                case Revalidate():
                    h.to_leader(RevalidateAsk(e.session_id, e.timeout_ms))
                case SyncReady():
                    h.to_learner(e.learner, SyncDone(e.session_id, e.xid))
        if rest:
            super().run_effects(rest)

    def flush_soon(self) -> None:
        """Replies of the txns applied while the host handles its inputs leave together."""
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._scheduled_flush)

    def _scheduled_flush(self) -> None:
        self._flush_scheduled = False
        self.flush()

    def snapshot(self) -> fourletter.Snapshot:
        return replace(super().snapshot(), mode=self.role, read_only=self.role == "read-only")


# ---------------------------------------------------------------------- the host


class PeerHost:
    def __init__(self, cfg: ZooCfg, myid: int) -> None:
        self.cfg = cfg
        self.myid = myid
        self.addrs = {
            s.sid: PeerAddress(s.sid, s.host, s.quorum_port, s.election_port) for s in cfg.servers
        }
        if myid not in self.addrs:
            raise ConfigError(f"myid {myid} has no server.{myid} line")
        sids = sorted(self.addrs)
        voters = sorted(s.sid for s in cfg.servers if s.role == "participant")
        me_spec = next(s for s in cfg.servers if s.sid == myid)
        if (me_spec.role == "observer") != (cfg.peer_type == "observer"):
            raise ConfigError(
                f"server.{myid} is a{'n' if me_spec.role == 'observer' else ''} {me_spec.role} "
                f"but peerType is {cfg.peer_type}"
            )
        self.observer = me_spec.role == "observer"
        self.disk = PeerDisk(cfg)
        self.peer = QuorumPeer(
            Sid(myid),
            [Sid(s) for s in voters],
            durable=self.disk.durable(),
            sync_limit_ticks=cfg.sync_limit_ticks,
            quorum=cfg.quorum,
        )
        self.fle = FastLeaderElection(
            FleSid(myid),
            [FleSid(s) for s in voters],
            quorum=cfg.quorum,
            finalize_wait_ticks=FINALIZE_WAIT_TICKS,
            min_notification_interval_ticks=MIN_NOTIFICATION_TICKS,
            max_notification_interval_ticks=MAX_NOTIFICATION_TICKS,
        )
        self.tracer = MemberTracer.from_env(myid, voters, self.peer.post())  # ZKREF_TRACE_DIR
        self.peer.post_states = self.tracer.out is not None
        self.tree = DataTree(extended_types_enabled=cfg.extended_types_enabled)
        self.applied: list[Txn] = []
        self.sessions: dict[int, int] = {}  # from the applied createSession/closeSession txns
        # session passwords must verify on whichever member leads next: one secret per ensemble
        # (ZooKeeper uses a constant)
        self.secret = hashlib.sha256(
            ("zkref-ensemble:" + ",".join(map(str, sids))).encode()
        ).digest()
        self.client_port: MemberClientPort | None = None
        # learner packets that reached us before our client port opened (leader)
        self.learner_backlog: list[LearnerIn] = []
        self.core_zxids: set[int] = set()  # txns the leader's ServerCore handed to Zab
        self.acked_early: set[int] = set()  # zkref.unsafe.ackBeforeQuorum (test-only)
        self._listener: asyncio.Server | None = None
        self._fsync_pending = False  # a deferred FsyncLog (group commit)
        self._since_fsync = 0
        self.queue: asyncio.Queue[Input] = asyncio.Queue()
        me = self.addrs[myid]
        self.election = ElectionLinks(
            myid, self.addrs, me.host, me.election_port, self._on_election_frame
        )
        self.learners: dict[int, QuorumConn] = {}
        self.waiting_learners: dict[int, tuple[QuorumConn, FollowerInfo]] = {}
        self.leader_conn: QuorumConn | None = None
        self.leader_out: list[bytes] = []
        self._dialing: asyncio.Task[None] | None = None
        self._servers: list[asyncio.Server] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._conn_tasks: set[asyncio.Task[None]] = set()
        self.failed = asyncio.Event()
        self.started_ms = _now_ms()
        self.leader_sid: int | None = None
        self.elections = 0
        self.looking_since = time.monotonic()

    # --- life cycle
    async def start(self) -> int:
        me = self.addrs[self.myid]
        self._servers.append(
            await asyncio.start_server(
                self._accept_learner, me.host, me.quorum_port, reuse_address=True
            )
        )
        await self._open_listener()
        await self.election.start()
        self._tasks = [
            asyncio.create_task(self._run(), name="zkref-peer"),
            asyncio.create_task(self._ticker(), name="zkref-peer-ticker"),
        ]
        self._run_fle(
            self.fle.start_election(self.peer.last_logged_zxid(), self.peer.current_epoch)
        )
        log.info(
            "member %d of %s: election %s:%d, quorum %s:%d",
            self.myid,
            sorted(self.addrs),
            me.host,
            me.election_port,
            me.host,
            me.quorum_port,
        )
        return self.cfg.client_port

    async def stop(self) -> None:
        for s in self._servers:
            s.close()
        if self._listener is not None:
            self._listener.close()
        if self.client_port is not None:
            await self.client_port.stop()
        await self.election.stop()
        self._close_quorum_links()
        for c, _ in self.waiting_learners.values():
            c.close()
        tasks = [*self._tasks, *self._conn_tasks]
        if self._dialing is not None:
            tasks.append(self._dialing)
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        self.disk.close()
        self.tracer.close()
        log.info("stopped")

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        t = asyncio.create_task(coro, name=name)
        self._conn_tasks.add(t)
        t.add_done_callback(self._conn_tasks.discard)

    @property
    def _link_timeout_s(self) -> float:
        return self.cfg.sync_limit_ticks * self.cfg.tick_time_ms / 1000

    def _ping_links(self) -> None:
        """Straight from the timer, not through the input queue: a member busy with a long
        fsync still shows it is alive (as ZooKeeper's separate socket threads do). A learner's
        ping carries the sessions its clients touched (Learner.ping's session list)."""
        for c in self.learners.values():
            c.send(PING_PACKET)
        if self.leader_conn is not None:
            cp = self.client_port
            if cp is not None and isinstance(cp.core, LearnerCore):
                self.leader_conn.send(encode_ping(cp.core.take_touches()))
            else:
                self.leader_conn.send(PING_PACKET)

    async def _ticker(self) -> None:
        per_zab = max(1, round(self.cfg.tick_time_ms / 1000 / ELECTION_TICK_S))
        per_ping = max(1, per_zab // 2)
        n = 0
        while True:
            await asyncio.sleep(ELECTION_TICK_S)
            n += 1
            if n % per_ping == 0:
                self._ping_links()
            self.queue.put_nowait(ElectionTick(zab=n % per_zab == 0))

    async def _run(self) -> None:
        try:
            while True:
                item = await self.queue.get()
                await self._handle(item)
                if self._fsync_pending and (self.queue.empty() or self._since_fsync >= 500):
                    await self._group_commit()
                else:
                    self._since_fsync += 1
                await self._maybe_start_round()
                await self._sync_client_port()
        except asyncio.CancelledError:
            raise
        except Exception:
            # A storage failure or a core assertion: ZooKeeper exits; so do we.
            log.exception("member %d cannot go on", self.myid)
            self.failed.set()

    # --- inputs
    async def _handle(self, item: Input) -> None:
        match item:
            case ElectionIn():
                try:
                    n = decode_notification(item.body, item.sid)
                except QuorumDecodeError as e:
                    log.warning("bad notification from %d: %s", item.sid, e)
                    return
                if self.fle.logical_clock > 0:
                    await self._run_fle_async(self.fle.receive(FleSid(item.sid), n))
            case ElectionTick():
                await self._run_fle_async(self.fle.tick())
                if item.zab:
                    await self._run_zab(self.peer.tick())
            case QuorumIn():
                if self._current(item.conn):
                    await self._run_zab(self.peer.receive(Sid(item.conn.sid), item.msg))
            case QuorumDown():
                if self._current(item.conn):
                    await self._drop(item.conn)
            case LearnerArrived():
                await self._learner_arrived(item.conn, item.first)
            case LeaderReached():
                await self._leader_reached(item)
            case ClientPropose():
                await self._propose(item)
            case LearnerIn():
                if self._current(item.conn):
                    self._learner_packet(item)

    def _learner_packet(self, item: LearnerIn) -> None:
        cp = self.client_port
        m = item.msg
        now = _now_ms()
        if self.peer.leader is not None:
            if cp is None or not isinstance(cp.core, LeaderCore):
                self.learner_backlog.append(item)  # served once our client port opens
                return
            core = cp.core
            match m:
                case LearnerRequest():
                    try:
                        effects = core.receive_forwarded(item.conn.sid, m.fwd, now)
                    except Exception:
                        log.exception("forwarded request %r from %d", m.fwd, item.conn.sid)
                        return
                    for e in effects:
                        if isinstance(e, Persist):
                            # before its PROPOSAL, on the same link (LearnerCore.assigned)
                            a = Assigned(e.hdr.client_id, e.hdr.cxid, e.hdr.zxid)
                            item.conn.send(encode_learner_packet(a))
                    cp.run_effects(effects)
                case RevalidateAsk():
                    ok = core.revalidate(item.conn.sid, m.session_id, m.timeout_ms, now)
                    item.conn.send(encode_learner_packet(RevalidateAnswer(m.session_id, ok)))
                case _:
                    log.warning("unexpected %r from learner %d", m, item.conn.sid)
        elif cp is not None and isinstance(cp.core, LearnerCore):
            core_l = cp.core
            match m:
                case RevalidateAnswer():
                    cp.core_call(core_l.revalidated, m.session_id, m.valid, now)
                case SyncDone():
                    cp.core_call(core_l.sync_done, m.session_id, m.xid, now)
                case Assigned():
                    core_l.assigned(m.session_id, m.xid, m.zxid)
                case _:
                    log.warning("unexpected %r from the leader", m)
        else:
            return  # our clients are gone (we stopped serving): so are their requests
        cp.flush_soon()

    def to_leader(self, m: LearnerPacket) -> None:
        fl = self.peer.follower
        if fl is not None:
            self._send_quorum(fl.leader, encode_learner_packet(m))

    def to_learner(self, sid: int, m: LearnerPacket) -> None:
        conn = self.learners.get(sid)
        if conn is not None:
            conn.send(encode_learner_packet(m))

    async def _propose(self, item: ClientPropose) -> None:
        ld = self.peer.leader
        cp = self.client_port
        if ld is None or cp is None or cp.core is not item.core:
            return  # that ServerCore is gone with its clients (the leader stepped down)
        effects = ld.process_request(
            item.hdr.client_id, item.hdr.cxid, item.hdr.type, item.txn, item.hdr.time
        )
        zxids = [t.zxid for e in effects if isinstance(e, AppendTxns) for t in e.txns]
        # ServerCore numbers its txns from make_zxid(epoch, 0), as Zab does: they must agree
        assert zxids == [item.hdr.zxid], (zxids, item.hdr)
        if self.cfg.unsafe_ack_before_quorum:
            self._unsafe_ack_now(cp, item.hdr.zxid)
        else:
            self.core_zxids.add(item.hdr.zxid)
        await self._run_zab(effects)

    def _current(self, conn: QuorumConn) -> bool:
        return self.learners.get(conn.sid) is conn or self.leader_conn is conn

    async def _drop(self, conn: QuorumConn) -> None:
        if self.learners.get(conn.sid) is conn:
            del self.learners[conn.sid]
        if self.leader_conn is conn:
            self.leader_conn = None
        conn.close()
        await self._run_zab(self.peer.link_down(Sid(conn.sid)))

    async def _learner_arrived(self, conn: QuorumConn, first: FollowerInfo) -> None:
        if self.peer.leader is None:
            # not leading (yet): as in ZooKeeper's accept backlog, the learner waits
            old = self.waiting_learners.pop(conn.sid, None)
            if old is not None:
                old[0].close()
            self.waiting_learners[conn.sid] = (conn, first)
            return
        old_conn = self.learners.get(conn.sid)
        if old_conn is not None:
            await self._drop(old_conn)
        self.learners[conn.sid] = conn
        conn.reading.set()
        await self._run_zab(self.peer.receive(Sid(conn.sid), first))

    async def _leader_reached(self, item: LeaderReached) -> None:
        fl = self.peer.follower
        wanted = fl is not None and fl.leader == item.leader and self.leader_conn is None
        if item.conn is None:
            if wanted:
                log.info("leader %d's quorum port did not answer", item.leader)
                await self._run_zab(self.peer.link_down(Sid(item.leader)))
            return
        if not wanted:
            item.conn.close()
            return
        self.leader_conn = item.conn
        for body in self.leader_out:
            item.conn.send(body)
        self.leader_out.clear()
        item.conn.reading.set()

    # --- election effects
    def _run_fle(self, effects: list[FleEffect]) -> None:
        """Sends only (start_election): no decision can come out of it."""
        for e in effects:
            assert isinstance(e, FleSend), e
            self.election.send(e.to, self.tracer.notification(e.msg))

    async def _run_fle_async(self, effects: list[FleEffect]) -> None:
        for e in effects:
            match e:
                case FleSend():
                    self.election.send(e.to, self.tracer.notification(e.msg))
                case Decided():
                    await self._decided(e)

    async def _decided(self, d: Decided) -> None:
        took = time.monotonic() - self.looking_since
        log.info("election decided: %s, leader %d (%.3f s)", d.state, d.leader, took)
        if d.state is FleState.LEADING:
            await self._run_zab(self.peer.lead())
        elif d.state in (FleState.FOLLOWING, FleState.OBSERVING):
            # an observer follows too; the leader never counts its ACKs (QuorumPeer.is_quorum)
            await self._run_zab(self.peer.follow(Sid(d.leader)))
        else:
            raise AssertionError(f"unexpected decision {d}")

    async def _maybe_start_round(self) -> None:
        if (
            self.peer.state is ServerState.LOOKING
            and self.fle.state is not FleState.LOOKING
            and self.peer.ready_to_vote()
        ):
            self.looking_since = time.monotonic()
            self.elections += 1
            await self._run_fle_async(
                self.fle.start_round(self.peer.last_logged_zxid(), self.peer.current_epoch)
            )

    # --- Zab effects, in order
    async def _group_commit(self) -> None:
        """The deferred `FsyncLog`s of the inputs handled since the last one: one fsync, then
        NodeFsyncLog (the simulator's `fsync` step, which may also come inputs later)."""
        self._fsync_pending = False
        self._since_fsync = 0
        await asyncio.get_running_loop().run_in_executor(None, self.disk.sync)
        await self._run_zab(self.peer.persisted())

    async def _run_zab(self, effects: list[Effect]) -> None:
        loop = asyncio.get_running_loop()
        write = self.disk.write_epoch
        fsynced = False
        self.tracer.effects(effects, self.peer.post)
        for i, e in enumerate(effects):
            match e:
                case Send():
                    self._send_quorum(e.to, self.tracer.packet(e.msg))
                case AppendTxns():
                    self.disk.append(e.txns)
                case FsyncLog() if not any(
                    not isinstance(x, (Trace, AppendTxns, FsyncLog)) for x in effects[i + 1 :]
                ):
                    # nothing after it in this list waits for it: group commit with the
                    # inputs queued behind this one
                    self._fsync_pending = True
                case FsyncLog():
                    await loop.run_in_executor(None, self.disk.sync)
                    fsynced = True
                case TruncateLog():
                    kept = [t for t in self.disk.txns if t.zxid <= e.zxid]
                    await loop.run_in_executor(None, self.disk.rewrite, kept)
                    if any(t.zxid > e.zxid for t in self.applied):
                        self._rebuild_tree([t for t in self.applied if t.zxid <= e.zxid])
                case WriteAcceptedEpoch():
                    await loop.run_in_executor(None, write, "acceptedEpoch", e.epoch)
                case WriteCurrentEpoch():
                    await loop.run_in_executor(None, write, "currentEpoch", e.epoch)
                case InstallSnapshot():
                    await loop.run_in_executor(None, self.disk.rewrite, list(e.snapshot))
                    self._rebuild_tree([])
                case Apply():
                    self._apply(e.txn)
                case StateChanged():
                    self._state_changed(e)
                case Trace() if e.action in _LOGGED_ACTIONS:
                    log.info("%s %s", e.action, e.params)
                case Trace():
                    if log.isEnabledFor(logging.DEBUG):
                        log.debug("%s %s", e.action, e.params)
        if fsynced:
            # whatever was appended after the FsyncLog in this list is made durable too, so the
            # answer (NodeFsyncLog) covers the whole log, as the core assumes
            await loop.run_in_executor(None, self.disk.sync)
            await self._run_zab(self.peer.persisted())

    def _apply(self, t: Txn) -> None:
        cp = self.client_port
        if cp is not None and t.zxid in self.core_zxids:
            # the leader's own txn: its ServerCore applies it to the tree and answers
            self.core_zxids.discard(t.zxid)
            cp.core_call(cp.core.persisted, t.zxid, cp.now_ms())
            cp.flush_soon()
        elif t.zxid in self.acked_early:
            self.acked_early.discard(t.zxid)  # applied (and answered) by _unsafe_ack_now
        elif cp is not None and isinstance(cp.core, LearnerCore):
            # a follower: apply, fire watches, answer the request if it was forwarded from here
            cp.core_call(cp.core.apply_committed, t.hdr, t.body, cp.now_ms())
            cp.flush_soon()
        else:
            self.tree.apply(t.hdr, t.body)
        self.applied.append(t)
        self._track_session(t)

    def _unsafe_ack_now(self, cp: MemberClientPort, zxid: int) -> None:
        """PLANTED BUG, test-only (zoo.cfg `zkref.unsafe.ackBeforeQuorum=true`, docs/chaos.md):
        apply the leader's own txn to the tree and answer the client now, before any quorum
        ACK or fsync. A leader killed before its followers log the txn loses an acknowledged
        write. (A leader that steps down alive keeps such txns in its tree: not repaired.)"""
        self.acked_early.add(zxid)
        cp.core_call(cp.core.persisted, zxid, cp.now_ms())
        cp.flush()

    def _track_session(self, t: Txn) -> None:
        if isinstance(t.body, CreateSessionTxn):
            self.sessions[t.hdr.client_id] = t.body.time_out
        elif isinstance(t.body, CloseSessionTxn):
            self.sessions.pop(t.hdr.client_id, None)

    def _rebuild_tree(self, txns: list[Txn]) -> None:
        self.tree = DataTree(extended_types_enabled=self.cfg.extended_types_enabled)
        self.sessions = {}
        for t in txns:
            self.tree.apply(t.hdr, t.body)
            self._track_session(t)
        self.applied = list(txns)

    # --- the client port: the leader serves clients; otherwise four-letter words only
    async def _open_listener(self) -> None:
        self._listener = await asyncio.start_server(
            self._accept_client,
            self.cfg.client_port_address,
            self.cfg.client_port,
            reuse_address=True,
        )

    def _wanted_port(self) -> tuple[str, int, int] | None:
        """(role, leader, epoch): a new leader or epoch means a new client port, as ZooKeeper
        shuts its ZooKeeperServer down whenever the peer leaves its role."""
        role = self._wanted_role()
        if role is None:
            return None
        return role, -1 if self.leader_sid is None else self.leader_sid, self.peer.current_epoch

    def _wanted_role(self) -> str | None:
        """Which client port this member should run now (ZooKeeper: which ZooKeeperServer
        QuorumPeer.run has started): leader/follower once Zab is in BROADCAST, read-only after
        max(2 s, tickTime) of LOOKING when readonlymode.enabled, else none."""
        p = self.peer
        if p.zab_state is ZabState.BROADCAST:
            if p.leader is not None:
                # the previous epoch's txns must all be applied before we start serving
                cp = self.client_port
                serving = cp is not None and cp.key[0] == "leader" and cp.key[2] == p.current_epoch
                caught_up = p.last_committed == len(p.storage.history)
                return "leader" if serving or caught_up else None
            if p.follower is not None:
                return "observer" if self.observer else "follower"
        if (
            self.cfg.read_only_mode_enabled
            and p.state is ServerState.LOOKING
            and time.monotonic() - self.looking_since >= max(2.0, self.cfg.tick_time_ms / 1000)
        ):
            return "read-only"
        return None

    async def _sync_client_port(self) -> None:
        key = self._wanted_port()
        want = None if key is None else key[0]
        cp = self.client_port
        if cp is not None and cp.key == key:
            return
        if cp is not None:
            self.client_port = None
            await cp.stop()
            log.info("member %d stopped serving clients as %s", self.myid, cp.role)
        if want is None:
            if self._listener is None:
                await self._open_listener()
            return
        if self._listener is not None:
            self._listener.close()
            await self._listener.wait_closed()
            self._listener = None
        p = self.peer
        if want == "leader":
            # ZooKeeper's Leader.lead: zk.setZxid(makeZxid(epoch, 0)) before serving
            self.tree.last_processed_zxid = max(
                self.tree.last_processed_zxid, make_zxid(p.current_epoch, 0)
            )
            self.core_zxids = set()
        assert key is not None
        cp = MemberClientPort(self, want, key)
        await cp.start()
        self.client_port = cp
        log.info("member %d serves clients as %s (epoch %d)", self.myid, want, p.current_epoch)
        if want == "leader":
            backlog, self.learner_backlog = self.learner_backlog, []
            for item in backlog:
                if self._current(item.conn):
                    self._learner_packet(item)

    def _send_quorum(self, to: Sid, body: bytes) -> None:
        if self.peer.leader is not None:
            conn = self.learners.get(int(to))
            if conn is not None:
                conn.send(body)
            return  # a learner without a link: the core hears link_down
        if self.leader_conn is not None and self.leader_conn.sid == to:
            self.leader_conn.send(body)
        else:
            self.leader_out.append(body)

    def _state_changed(self, e: StateChanged) -> None:
        log.info("member %d is now %s (leader %s)", self.myid, e.state, e.leader)
        self.leader_sid = None if e.leader is None else int(e.leader)
        match e.state:
            case ServerState.LOOKING:
                self._close_quorum_links()
                self.learner_backlog.clear()
            case ServerState.LEADING:
                waiting = list(self.waiting_learners.values())
                self.waiting_learners.clear()
                for conn, first in waiting:
                    self.queue.put_nowait(LearnerArrived(conn, first))
            case ServerState.FOLLOWING:
                assert e.leader is not None
                for conn, _ in self.waiting_learners.values():
                    conn.close()
                self.waiting_learners.clear()
                self._dialing = asyncio.create_task(
                    self._dial_leader(int(e.leader)), name="zkref-dial-leader"
                )

    def _close_quorum_links(self) -> None:
        for c in self.learners.values():
            c.close()
        self.learners.clear()
        if self.leader_conn is not None:
            self.leader_conn.close()
            self.leader_conn = None
        self.leader_out.clear()
        if self._dialing is not None:
            self._dialing.cancel()
            self._dialing = None

    # --- links
    def _on_election_frame(self, sid: int, body: bytes) -> None:
        self.tracer.on_notification(body)
        self.queue.put_nowait(ElectionIn(sid, body))

    def _on_quorum_frame(self, conn: QuorumConn, body: bytes) -> None:
        if is_ping(body):
            # the link is alive; a learner's ping also names the sessions it kept alive
            cp = self.client_port
            if cp is not None and isinstance(cp.core, LeaderCore) and self._current(conn):
                try:
                    touches = decode_ping(body)
                except QuorumDecodeError as e:
                    log.warning("bad ping from %d: %s", conn.sid, e)
                    return
                if touches:
                    cp.core.touch_sessions(touches, _now_ms())
            return
        if is_learner_packet(body):
            try:
                lp = decode_learner_packet(body)
            except QuorumDecodeError as e:
                log.warning("bad learner packet from %d: %s", conn.sid, e)
                conn.close()
                return
            self.queue.put_nowait(LearnerIn(conn, lp))
            return
        self.tracer.on_packet(body)
        try:
            msg = decode_packet(body)
        except QuorumDecodeError as e:
            log.warning("bad quorum packet from %d: %s", conn.sid, e)
            conn.close()
            return
        self.queue.put_nowait(QuorumIn(conn, msg))

    async def _pump(self, conn: QuorumConn) -> None:
        try:
            await conn.pump(self._on_quorum_frame, self._link_timeout_s)
        finally:
            self.queue.put_nowait(QuorumDown(conn))

    async def _accept_learner(self, reader: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        try:
            body = await asyncio.wait_for(
                read_frame(reader), self.cfg.init_limit_ticks * self.cfg.tick_time_ms / 1000
            )
            first = decode_packet(body) if body is not None else None
            self.tracer.on_packet(body)
        except (OSError, TimeoutError, QuorumDecodeError) as e:
            log.info("learner connection refused: %s", e)
            w.close()
            return
        if not isinstance(first, FollowerInfo) or int(first.sid) not in self.addrs:
            log.info("learner connection without a FOLLOWERINFO from a member: %r", first)
            w.close()
            return
        conn = QuorumConn(int(first.sid), reader, w)
        self.queue.put_nowait(LearnerArrived(conn, first))
        await self._pump(conn)

    async def _dial_leader(self, leader: int) -> None:
        a = self.addrs[leader]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.cfg.init_limit_ticks * self.cfg.tick_time_ms / 1000
        got = await dial(a.host, a.quorum_port, deadline)
        if got is None:
            self.queue.put_nowait(LeaderReached(None, leader))
            return
        conn = QuorumConn(leader, *got)
        self.queue.put_nowait(LeaderReached(conn, leader))
        self._spawn(self._pump(conn), f"zkref-leader-link-{leader}")

    # --- the client port while no client port runs: four-letter words only
    async def _accept_client(self, reader: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readexactly(4), 10)
        except (OSError, TimeoutError, asyncio.IncompleteReadError):
            w.close()
            return
        word = fourletter.WORD_CODES.get(int.from_bytes(head, "big"))
        if word is not None:
            with contextlib.suppress(OSError, RuntimeError):
                w.write(self.four_letter(word).encode())
                await w.drain()
        w.close()

    @property
    def mode(self) -> str | None:
        p = self.peer
        if p.zab_state is not ZabState.BROADCAST:
            return None
        if p.state is ServerState.FOLLOWING and self.observer:
            return "observer"
        return {ServerState.LEADING: "leader", ServerState.FOLLOWING: "follower"}.get(p.state)

    def four_letter(self, word: str) -> str:
        mode = self.mode
        if mode is None and word in ("srvr", "stat", "mntr", "cons", "dump", "wchs", "wchc"):
            return NOT_SERVING
        return fourletter.answer(word, self.cfg.four_letter_words, self.snapshot(mode or ""))

    def snapshot(self, mode: str) -> fourletter.Snapshot:
        now = _now_ms()
        return fourletter.Snapshot(
            mode=mode,
            read_only=False,
            zxid=self.applied[-1].zxid if self.applied else 0,
            node_count=self.tree.node_count,
            watch_count=0,
            data_watch_count=0,
            watched_paths=0,
            watching_connections=0,
            ephemerals_count=self.tree.ephemerals_count,
            data_size=self.tree.approximate_data_size,
            sessions=0,
            outstanding=0,
            received=0,
            sent=0,
            latency_min_ms=0,
            latency_avg_ms=0,
            latency_max_ms=0,
            uptime_ms=now - self.started_ms,
            now_ms=now,
            config={
                "clientPort": str(self.cfg.client_port),
                "dataDir": str(self.cfg.data_dir),
                "tickTime": str(self.cfg.tick_time_ms),
                "initLimit": str(self.cfg.init_limit_ticks),
                "syncLimit": str(self.cfg.sync_limit_ticks),
                "serverId": str(self.myid),
            },
        )


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


async def serve_member(
    cfg: ZooCfg, myid: int, *, ready: Callable[[int], None] | None = None
) -> None:
    """Run one ensemble member until SIGTERM/SIGINT (or a fatal error), then stop cleanly."""
    host = PeerHost(cfg, myid)
    port = await host.start()
    if ready is not None:
        ready(port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await asyncio.wait(
            [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(host.failed.wait())],
            return_when=asyncio.FIRST_COMPLETED,
        )
    finally:
        await host.stop()
    if host.failed.is_set():
        raise SystemExit(1)
