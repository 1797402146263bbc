"""A simulated Zab ensemble whose members serve real clients, driven from one seed.

`ClientCluster` is a `ZabCluster` in which every server runs the member client core for its
role, wired as `zkref.server.peer_host` wires it:

- one client port per (role, leader, epoch): `LeaderCore` once the peer leads in BROADCAST and
  its whole log is applied (ZooKeeper's Leader.lead sets the tree's zxid to (epoch, 0) first),
  `LearnerCore` once it follows in BROADCAST, none otherwise; when the key changes the port is
  replaced and every client connection on it closes;
- the leader's `Persist` waits in the host's input queue (a pseudo-link the scheduler delivers
  like any other) and is then proposed through Zab (`Leader.process_request`; the zxids must
  agree; dropped if its port is gone), and Zab's `Apply` of it is the core's `persisted`; a
  learner's `Apply` is `apply_committed`; the leader's `tick` expires sessions (closeSession
  txns through Zab);
- `Forward`, `Revalidate`, the leader's answers (ASSIGNED, SYNC, REVALIDATE) and the
  learners' pings with the sessions they touched travel as member packets on the same FIFO
  quorum links as Zab's packets (a SYNC never overtakes a COMMIT; a link reset loses them),
  and are handled only from the peer's current leader or a connected learner, as the host's
  `_current` check;
- clients (`SimClient`) connect to a member, send one request at a time with xids, ping on
  every tick, lose their connection when the port closes, reconnect to another member with
  their session (and last zxid seen), and give up on a request after `op_timeout_ticks`;
  their operations are recorded as a chaos history (zkref.chaos.history) and judged by the
  chaos checker (`check_history`).

Differences from the real host, on purpose: client <-> server traffic is delivered at once
(no client-side network faults), no read-only mode and no observers.

Besides the chaos checker, the clients check ZooKeeper's watch guarantee: a client that set a
data watch (every workload read sets one) sees its event before any reply showing it newer
data of that znode (`watch_violations`, the "watch-order" verdict of `check_history`).

Planted bugs (tests only, host flags): `unsafe_ack_before_commit` (the leader's host tells its
core a txn is persisted as soon as it is proposed: answers before the quorum commits it),
`unsafe_learner_sync` (a learner's host answers a forwarded `sync` itself instead of waiting for
the leader's SYNC), `unsafe_notify_after_reply` (a host sends the watch events of a batch of
effects after its replies), `unsafe_no_session_restore` (a new leader's session tracker starts
empty instead of with the log's sessions), and `leader_bugs` (LeaderCore's own planted flags).

Session checks: every new session first creates an ephemeral `/e/c<client>-<session>`; clients
close their session every `CLOSE_EVERY` operations; the leader may not let a session whose
closeSession committed re-attach, by its own handshake or a learner's REVALIDATE
("no-revived-session"); after the run every session must expire
and no member may keep an ephemeral ("sessions-end", `expire_sessions`).
"""

from __future__ import annotations

import json
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any, cast

from zkref.chaos.checker import CheckReport, Verdict, Violation, check
from zkref.chaos.history import Event, History
from zkref.chaos.history import EventType as HistoryEventType
from zkref.core.effects import (
    Close,
    Forward,
    Notify,
    Persist,
    Reply,
    Revalidate,
    SendConnectResponse,
    SyncReady,
)
from zkref.core.effects import Effect as ClientEffect
from zkref.core.member import LeaderCore, LearnerCore
from zkref.core.member_packets import (
    Assigned,
    LearnerRequest,
    RevalidateAnswer,
    RevalidateAsk,
    SyncDone,
)
from zkref.core.server import CoreConfig, ServerCore
from zkref.core.zab.effects import AppendTxns, Apply, Effect
from zkref.core.zab.messages import PacketType, QuorumPacket, Sid, Txn, ZabState
from zkref.core.zab.zxid import make_zxid
from zkref.sim.zab_cluster import SimFailure, ZabCluster
from zkref.wire.constants import CreateMode, Err, EventType, OpCode
from zkref.wire.records import (
    ACL,
    CloseSessionTxn,
    ConnectRequest,
    CreateRequest,
    CreateResponse,
    CreateSessionTxn,
    GetChildrenRequest,
    GetChildrenResponse,
    GetDataRequest,
    GetDataResponse,
    Id,
    RequestHeader,
    SetDataRequest,
    SetDataResponse,
    SyncRequest,
)

TICK_MS = 1000
SECRET = b"zkref-sim-ensemble"
OPEN_ACL = (ACL(31, Id("world", "anyone")),)
QUEUE = "/q"
EPHEMERALS = "/e"  # each new session creates /e/c<client>-<session> (ephemeral)
CLOSE_EVERY = 12  # a client closes its session after this many operations
# errors that say the request changed nothing (SESSIONMOVED: it became an ErrorTxn)
_FAIL = {
    int(Err.NONODE): "NoNode",
    int(Err.NODEEXISTS): "NodeExists",
    int(Err.BADVERSION): "BadVersion",
    int(Err.SESSIONMOVED): "SessionMoved",
}


# ---------------------------------------------------------------------- member packets


@dataclass(frozen=True, slots=True)
class Ping:
    """A learner's ping: the sessions its clients touched since the last one."""

    touches: tuple[tuple[int, int], ...]


MemberPacket = LearnerRequest | RevalidateAsk | RevalidateAnswer | SyncDone | Assigned | Ping
_MEMBER_PACKETS = (LearnerRequest, RevalidateAsk, RevalidateAnswer, SyncDone, Assigned, Ping)


# ---------------------------------------------------------------------- client ports


class Port:
    """A member's client port for one (role, leader, epoch)."""

    def __init__(self, key: tuple[str, int, int], core: ServerCore) -> None:
        self.key = key
        self.role = key[0]
        self.core = core
        self.conns: set[int] = set()
        self.core_zxids: set[int] = set()  # txns this leader's core handed to Zab
        self.early: set[int] = set()  # unsafe_ack_before_commit: applied at proposal


# ---------------------------------------------------------------------- clients


@dataclass(slots=True)
class Request:
    f: str  # history op ("" for a request not recorded)
    path: str
    op: int
    body: object
    value: str | None = None
    version: int | None = None


@dataclass(slots=True)
class SimClient:
    """A client with one request outstanding at a time (kazoo-like, in ticks)."""

    cid: int
    process: int
    timeout_ms: int = 6_000
    session: int = 0
    passwd: bytes = bytes(16)
    last_zxid: int = 0
    server: Sid | None = None
    conn: int | None = None
    connected: bool = False
    since: int = 0  # tick the connection attempt or the outstanding request started
    xid: int = 0
    outstanding: tuple[int, Request] | None = None
    script: deque[Request] = field(default_factory=deque)
    versions: dict[str, int] = field(default_factory=dict)
    counter: int = 0
    done: list[tuple[Request, int, int, object]] = field(default_factory=list)  # unrecorded
    # path -> the version seen when this connection's data watch on it was set (not fired yet)
    watches: dict[str, int] = field(default_factory=dict)
    fresh: bool = False  # a new session: its ephemeral comes first
    closing: bool = False  # closeSession sent for the current `counter`


def make_request(
    f: str, path: str, value: str | None = None, version: int = -1, *, watch: bool = False
) -> Request:
    """A recorded operation (history vocabulary `f`) as the request that does it."""
    data = None if value is None else value.encode()
    match f:
        case "read" | "final-read":
            return Request(f, path, int(OpCode.getData), GetDataRequest(path, watch))
        case "sync":
            return Request(f, path, int(OpCode.sync), SyncRequest(path))
        case "write" | "cas":
            body = SetDataRequest(path, data, version)
            return Request(f, path, int(OpCode.setData), body, value, version)
        case "enqueue":
            mode = int(CreateMode.PERSISTENT_SEQUENTIAL)
            body_c = CreateRequest(path + "/q-", data, OPEN_ACL, mode)
            return Request(f, path, int(OpCode.create), body_c, value)
        case "final-list":
            return Request(f, path, int(OpCode.getChildren), GetChildrenRequest(path, False))
    raise ValueError(f"unknown operation {f!r}")


class ClientCluster(ZabCluster):
    """A `ZabCluster` whose servers run the member client cores and serve `SimClient`s.

    Randomised use: `client_swarm` (returns the checker's report). Scripted use: `setup`,
    `connect`, `send`, `hold`/`release`, `partition`, `elect`, `run_until_quiet`, `tick`,
    `check_history`. The abstract `write` of `ZabCluster` is refused: every txn comes from a
    member core, whose zxid counter must stay Zab's."""

    def __init__(
        self,
        n: int = 3,
        seed: int = 0,
        *,
        clients: int = 3,
        keys: tuple[str, ...] = ("/k0", "/k1"),
        linearizable_sync: bool = False,
        unsafe_ack_before_commit: bool = False,
        unsafe_learner_sync: bool = False,
        xid_per_connection: bool = False,
        match_by_zxid: bool = True,
        weights: tuple[int, int, int, int] = (35, 20, 30, 15),
        unsafe_notify_after_reply: bool = False,
        leader_bugs: tuple[str, ...] = (),
        unsafe_no_session_restore: bool = False,
        op_timeout_ticks: int = 6,
        invariants_every: int = 1,
        **kw: Any,
    ) -> None:
        super().__init__(n, seed, **kw)
        # the spec's invariants cost O(history^2) per step: every k-th step (and at the end),
        # the host's own checks after every step
        self.invariants_every = invariants_every
        self._verifies = 0
        self.keys = keys
        self.linearizable_sync = linearizable_sync
        self.unsafe_ack_before_commit = unsafe_ack_before_commit
        self.unsafe_learner_sync = unsafe_learner_sync
        # True: a client numbers its requests from 1 on every connection (as kazoo does);
        # False: one xid counter per client for its whole life (as ZooKeeper's Java client)
        self.xid_per_connection = xid_per_connection
        # True: learners match commits to forwarded requests by the zxid the leader names in
        # ASSIGNED (peer_host); False: ZooKeeper's CommitProcessor rule (session id, cxid)
        self.match_by_zxid = match_by_zxid
        self.weights = weights  # of read (sync + getData), write, cas, enqueue
        self.unsafe_notify_after_reply = unsafe_notify_after_reply
        # LeaderCore's planted bugs to switch on (e.g. "bug_revive_expired"), tests only
        self.leader_bugs = leader_bugs
        self.unsafe_no_session_restore = unsafe_no_session_restore
        # sessions whose closeSession committed: the leader must never let one re-attach
        self.closed_sessions: set[int] = set()
        self.revived: list[str] = []
        # ZooKeeper's watch guarantee, checked at the client: a client sees the event of its
        # watch on a znode before any reply that shows it the znode's newer data
        self.watch_violations: list[str] = []
        self.watch_events = 0
        # after the run (`expire_sessions`): sessions still tracked or ephemerals still there
        self.session_leftovers: list[str] | None = None
        self.op_timeout_ticks = op_timeout_ticks
        self.ports: dict[Sid, Port] = {}
        self.sessions: dict[Sid, dict[int, int]] = {s: {} for s in self.sids}
        self.backlog: dict[Sid, list[tuple[Sid, MemberPacket]]] = {s: [] for s in self.sids}
        # the leader host's input queue of ClientPropose items: a `Persist` is proposed in a
        # later step of its own (the pseudo-link (False, s, s) of `_ready`)
        self.proposals: dict[Sid, deque[tuple[Port, Persist]]] = {s: deque() for s in self.sids}
        self.n_clients = clients
        self.clients = [SimClient(c, c) for c in range(clients)]
        self.conn_client: dict[int, SimClient] = {}
        self.events: list[Event] = []
        self.recording = False
        self._conn_seq = 0
        self._port_seq = 0
        self._time = 0
        self.port_restarts = 0
        self.client_steps = 0
        self.stats: Counter[str] = Counter()  # what the run exercised (member packets, errors)

    def write(self, data: bytes = b"v", at: Sid | None = None) -> Txn | None:
        raise NotImplementedError("ClientCluster: txns come from clients (client_swarm, send)")

    # ------------------------------------------------------------------ member packets

    def _send_member(self, frm: Sid, to: Sid, m: MemberPacket) -> None:
        # member packets ride the quorum link frm -> to, in FIFO order with Zab's packets (the
        # network does not look at what it carries)
        self.net.send(frm, to, cast(QuorumPacket, m))

    def deliver(self, frm: Sid, to: Sid, expect: PacketType | None = None) -> QuorumPacket:
        link = self.net.links[(frm, to)]
        head: object = link.queue[0].msg if link.queue else None
        if not isinstance(head, _MEMBER_PACKETS):
            return super().deliver(frm, to, expect)
        assert expect is None, (head, expect)
        self.net.deliver(frm, to)
        self.stats[type(head).__name__] += 1
        self._member_packet(frm, to, head)
        self._step(f"deliver {type(head).__name__} {frm}->{to}")
        return cast(QuorumPacket, head)

    def _member_packet(self, frm: Sid, to: Sid, m: MemberPacket) -> None:
        p = self.peers[to]
        if not p.online:
            return
        port = self.ports.get(to)
        now = self.now_ms()
        ld = p.leader
        if ld is not None:
            if frm not in ld.learners:
                return  # not (or no longer) a connected learner: its link is gone
            if port is None or not isinstance(port.core, LeaderCore):
                self.backlog[to].append((frm, m))  # served once our client port opens
                return
            core = port.core
            match m:
                case LearnerRequest():
                    effects = core.receive_forwarded(frm, m.fwd, now)
                    if self.match_by_zxid:
                        for e in effects:
                            if isinstance(e, Persist):
                                # before its PROPOSAL, on the same link
                                h = e.hdr
                                self._send_member(to, frm, Assigned(h.client_id, h.cxid, h.zxid))
                    self._run(to, port, effects)
                case RevalidateAsk():
                    ok = core.revalidate(frm, m.session_id, m.timeout_ms, now)
                    self._check_revived(ok, m.session_id, f"REVALIDATE from {frm}")
                    self._send_member(to, frm, RevalidateAnswer(m.session_id, ok))
                case Ping():
                    core.touch_sessions(dict(m.touches), now)
                case _:
                    raise SimFailure(self.fail(f"server {to}: unexpected {m} from learner {frm}"))
            return
        if p.leader_of != frm or port is None or not isinstance(port.core, LearnerCore):
            return  # our clients are gone (we stopped serving): so are their requests
        match m:
            case RevalidateAnswer():
                self._run(to, port, port.core.revalidated(m.session_id, m.valid, now))
            case SyncDone():
                self._run(to, port, port.core.sync_done(m.session_id, m.xid, now))
            case Assigned():
                self._run(to, port, port.core.assigned(m.session_id, m.xid, m.zxid))
            case _:
                raise SimFailure(self.fail(f"server {to}: unexpected {m} from leader {frm}"))

    # ------------------------------------------------------------------ client effects

    def now_ms(self) -> int:
        return self.clock.now * TICK_MS

    def _run(self, s: Sid, port: Port, effects: list[ClientEffect]) -> None:
        """A port's core effects, in order (MemberClientPort.run_effects)."""
        if self.unsafe_notify_after_reply:
            # PLANTED BUG: watch events go out after the replies of the same batch
            effects = [e for e in effects if not isinstance(e, Notify)] + [
                e for e in effects if isinstance(e, Notify)
            ]
        for e in effects:
            if self.ports.get(s) is not port or not self.peers[s].online:
                return  # the port closed (or the server crashed) in the middle
            match e:
                case Persist():
                    self.proposals[s].append((port, e))
                case Forward():
                    f = self.peers[s].follower
                    if self.unsafe_learner_sync and e.op == int(OpCode.sync):
                        # PLANTED BUG: answer the sync here, before the leader's SYNC
                        assert isinstance(port.core, LearnerCore)
                        self._run(s, port, port.core.sync_done(e.session_id, e.xid, self.now_ms()))
                    elif f is not None:
                        self._send_member(s, f.leader, LearnerRequest(e))
                case Revalidate():
                    f = self.peers[s].follower
                    if f is not None:
                        self._send_member(s, f.leader, RevalidateAsk(e.session_id, e.timeout_ms))
                case SyncReady():
                    ld = self.peers[s].leader
                    if ld is not None and Sid(e.learner) in ld.learners:
                        self._send_member(s, Sid(e.learner), SyncDone(e.session_id, e.xid))
                case SendConnectResponse() if port.role == "leader":
                    self._check_revived(e.resp.session_id != 0, e.resp.session_id, "a handshake")
                    c = self.conn_client.get(e.conn)
                    if c is not None:
                        self._client_receive(c, e)
                case SendConnectResponse() | Reply() | Notify():
                    c = self.conn_client.get(e.conn)
                    if c is not None:
                        self._client_receive(c, e)
                case Close():
                    self.stats["close: " + e.reason.split(" 0x")[0].split(",")[0][:40]] += 1
                    port.conns.discard(e.conn)
                    c = self.conn_client.pop(e.conn, None)
                    if c is not None:
                        self._connection_lost(c, f"closed by server: {e.reason}")

    def _ready(self) -> list[tuple[bool, Sid, Sid]]:
        out = super()._ready()
        out += [(False, s, s) for s in self.sids if self.proposals[s]]
        return sorted(out)

    def _deliver_ready(self, link: tuple[bool, Sid, Sid]) -> None:
        if link[0] or link[1] != link[2]:
            super()._deliver_ready(link)
            return
        s = link[1]
        port, e = self.proposals[s].popleft()
        self._propose(s, port, e)
        self._step(f"propose {e.hdr.zxid:#x} at {s}")

    def _check_revived(self, valid: bool, session_id: int, how: str) -> None:
        """The leader decides whether a session may re-attach (its own handshake, or a
        learner's REVALIDATE): never yes for one whose closeSession committed. (A learner may
        still open a session the leader closes right after answering; the closeSession then
        follows the answer on the same link and closes the connection.)"""
        if valid and session_id in self.closed_sessions:
            self.revived.append(
                f"the leader let session {session_id:x} re-attach ({how}) after its "
                f"closeSession committed (t={self.clock.now})"
            )

    def _propose(self, s: Sid, port: Port, e: Persist) -> None:
        """ClientPropose: the leader's core prepared a txn; Zab proposes it (dropped when that
        core is gone with its port, as peer_host._propose)."""
        ld = self.peers[s].leader
        if ld is None or self.ports.get(s) is not port or not self.peers[s].online:
            return
        h = e.hdr
        out = ld.process_request(h.client_id, h.cxid, h.type, e.txn, h.time)
        zxids = [t.zxid for x in out if isinstance(x, AppendTxns) for t in x.txns]
        if zxids != [h.zxid]:
            raise SimFailure(self.fail(f"server {s}: core zxid {h.zxid:#x}, Zab proposed {zxids}"))
        port.core_zxids.add(h.zxid)
        self._feed(s, out)
        if self.unsafe_ack_before_commit and self.ports.get(s) is port and self.peers[s].online:
            # PLANTED BUG: the core applies and answers the txn before a quorum has it
            port.early.add(h.zxid)
            self._run(s, port, port.core.persisted(h.zxid, self.now_ms()))

    # ------------------------------------------------------------------ Zab effects

    def _execute(self, s: Sid, e: Effect) -> None:
        if isinstance(e, Apply):
            self._apply(s, e.txn)
        else:
            super()._execute(s, e)

    def _apply(self, s: Sid, t: Txn) -> None:
        port = self.ports.get(s)
        if port is not None and t.zxid in port.core_zxids:
            # the leader's own txn: its core applies it to the tree and answers
            port.core_zxids.discard(t.zxid)
            if t.zxid in port.early:
                port.early.discard(t.zxid)
            else:
                self._run(s, port, port.core.persisted(t.zxid, self.now_ms()))
        elif port is not None and isinstance(port.core, LearnerCore):
            self._run(s, port, port.core.apply_committed(t.hdr, t.body, self.now_ms()))
        else:
            if port is not None:
                raise SimFailure(self.fail(f"server {s}: leader port applies foreign {t}"))
            self.trees[s].apply(t.hdr, t.body)
        self.applied[s].append(t)
        self._track_session(s, t)

    def _track_session(self, s: Sid, t: Txn) -> None:
        if isinstance(t.body, CreateSessionTxn):
            self.sessions[s][t.hdr.client_id] = t.body.time_out
        elif isinstance(t.body, CloseSessionTxn):
            self.sessions[s].pop(t.hdr.client_id, None)
            self.closed_sessions.add(t.hdr.client_id)

    def _rebuild_tree(self, s: Sid, txns: list[Txn]) -> None:
        self._close_port(s)
        super()._rebuild_tree(s, txns)
        self.sessions[s] = {}
        for t in txns:
            self._track_session(s, t)

    def _crash(self, s: Sid) -> None:
        self._close_port(s)
        self.proposals[s].clear()  # the host's input queue dies with it
        super()._crash(s)

    # ------------------------------------------------------------------ ports

    def _wanted_key(self, s: Sid) -> tuple[str, int, int] | None:
        """peer_host._wanted_port / _wanted_role (no read-only mode, no observers)."""
        p = self.peers[s]
        if not p.online or p.zab_state is not ZabState.BROADCAST:
            return None
        if p.leader is not None:
            cp = self.ports.get(s)
            serving = cp is not None and cp.role == "leader" and cp.key[2] == p.current_epoch
            caught_up = p.last_committed == len(p.storage.history)
            return ("leader", int(s), p.current_epoch) if serving or caught_up else None
        if p.follower is not None:
            return ("follower", int(p.follower.leader), p.current_epoch)
        return None

    def _close_port(self, s: Sid) -> None:
        port = self.ports.pop(s, None)
        if port is None:
            return
        for conn in sorted(port.conns):
            c = self.conn_client.pop(conn, None)
            if c is not None:
                self._connection_lost(c, f"server {s} stopped serving as {port.role}")
        if port.early:
            # the planted bug's uncommitted txns leave the tree with the port
            applied = list(self.applied[s])
            self._rebuild_tree(s, applied)
        self.port_restarts += 1

    def _sync_ports(self) -> None:
        for s in self.sids:
            key = self._wanted_key(s)
            port = self.ports.get(s)
            if port is not None and port.key == key:
                continue
            self._close_port(s)
            if key is None:
                continue
            self._open_port(s, key)

    def _open_port(self, s: Sid, key: tuple[str, int, int]) -> None:
        p = self.peers[s]
        tree = self.trees[s]
        self._port_seq += 1
        cfg = CoreConfig(
            server_id=int(s),
            tick_time_ms=TICK_MS,
            min_session_timeout_ms=2 * TICK_MS,
            max_session_timeout_ms=20 * TICK_MS,
            secret=SECRET,
            # distinct per port, so a port opened in the same tick numbers sessions apart
            start_ms=self.now_ms() + self._port_seq,
        )
        core: ServerCore
        if key[0] == "leader":
            tree.last_processed_zxid = max(tree.last_processed_zxid, make_zxid(p.current_epoch, 0))
            # PLANTED BUG (unsafe_no_session_restore): the new leader forgets the log's sessions
            restored = {} if self.unsafe_no_session_restore else self.sessions[s]
            core = LeaderCore(
                cfg, tree=tree, sessions=restored, linearizable_sync=self.linearizable_sync
            )
            for bug in self.leader_bugs:
                assert hasattr(core, bug) and bug.startswith("bug_"), bug
                setattr(core, bug, True)
        else:
            core = LearnerCore(cfg, tree=tree, match_by_zxid=self.match_by_zxid)
        port = Port(key, core)
        self.ports[s] = port
        self.steps.append(f"t={self.clock.now} server {s} serves clients as {key}")
        if key[0] == "leader":
            backlog, self.backlog[s] = self.backlog[s], []
            for frm, m in backlog:
                self._member_packet(frm, s, m)

    def _step(self, label: str) -> None:
        for s in self.sids:
            p = self.peers[s]
            if p.leader is None or not p.online:
                self.backlog[s].clear()
        self._sync_ports()
        super()._step(label)

    def verify(self) -> None:
        self._verifies += 1
        if self._verifies % self.invariants_every == 0:
            super().verify()
            return
        for s, p in self.peers.items():
            d = self.disks[s]
            if p.storage.disk != d.durable_log or p.storage.history != d.log:
                raise SimFailure(self.fail(f"server {s}: core's log view differs from its disk"))
            if self.applied[s] != p.storage.history[: p.last_committed]:
                raise SimFailure(self.fail(f"server {s}: data tree applied != delivered"))

    def _heal_step(self) -> None:
        # time passes even while messages keep coming: a server that keeps re-following a
        # leader it rejects (`locked_out`) must not stop the clock that releases delayed links
        if self.rng.random() < 0.05:
            self.tick()
        else:
            super()._heal_step()

    def tick(self) -> None:
        # the leader's session tracker, the learners' pings, the clients' pings and timeouts
        for s in self.sids:
            port = self.ports.get(s)
            f = self.peers[s].follower
            if port is None:
                continue
            if isinstance(port.core, LeaderCore):
                self._run(s, port, port.core.tick(self.now_ms()))
            elif isinstance(port.core, LearnerCore) and f is not None:
                touches = tuple(sorted(port.core.take_touches().items()))
                self._send_member(s, f.leader, Ping(touches))
        for c in self.clients:
            self._client_tick(c)
        super().tick()

    # ------------------------------------------------------------------ history

    def _record(self, c: SimClient, type_: HistoryEventType, r: Request, **kw: Any) -> None:
        if not self.recording or not r.f:
            return
        self._time += 1_000_000  # one event per simulated millisecond (for the timeline)
        sess = f"{c.session:x}" if c.session else None
        self.events.append(
            Event(
                index=len(self.events),
                process=c.process,
                type=type_,
                f=r.f,
                path=r.path,
                time=self._time,
                session=sess,
                **kw,
            )
        )

    def history(self) -> History:
        header = {
            "kind": "header",
            "schema": 1,
            "source": "sim",
            "seed": self.seed,
            "servers": [int(s) for s in self.sids],
            "clients": self.n_clients,
            "keys": list(self.keys),
            "queue": QUEUE,
            "initial": {k: ["init", 0] for k in self.keys},
        }
        return History(header=header, events=list(self.events))

    def history_lines(self) -> list[str]:
        h = self.history()
        return [json.dumps(h.header)] + [e.to_json() for e in h.events]

    def check_history(self) -> CheckReport:
        """The chaos checker's verdicts (synced reads included) plus the watch-order check."""
        rep = check(self.history(), sync_reads=True)
        v = self.watch_violations
        rep.verdicts.append(
            Verdict(
                "watch-order",
                not v,
                f"{len(v)} replies showed newer data before the watch event"
                if v
                else f"every watch event came before newer data ({self.watch_events} events)",
                [Violation(key="watch", message=m, ops=[]) for m in v[:20]],
                {"events": self.watch_events, "violations": len(v)},
            )
        )
        rv = self.revived
        rep.verdicts.append(
            Verdict(
                "no-revived-session",
                not rv,
                f"{len(rv)} closed sessions opened again" if rv else "no closed session reopened",
                [Violation(key="sessions", message=m, ops=[]) for m in rv[:20]],
            )
        )
        left = self.session_leftovers
        if left is not None:
            rep.verdicts.append(
                Verdict(
                    "sessions-end",
                    not left,
                    "; ".join(left) if left else "every session expired, no ephemeral left",
                    [Violation(key="sessions", message=m, ops=[]) for m in left],
                )
            )
        return rep

    # ------------------------------------------------------------------ clients

    def _connection_lost(self, c: SimClient, why: str) -> None:
        """The client's connection broke: its outstanding request may or may not happen."""
        if c.conn is not None:
            self.conn_client.pop(c.conn, None)
        c.conn = None
        c.server = None
        c.connected = False
        c.watches.clear()  # no SetWatches on reconnect: the client forgets them
        if c.outstanding is not None:
            _, r = c.outstanding
            c.outstanding = None
            self._record(c, "info", r, error=f"ConnectionLoss ({why})")
            self._new_process(c)

    def _new_process(self, c: SimClient) -> None:
        c.process += self.n_clients
        c.script.clear()

    def _disconnect(self, c: SimClient, why: str) -> None:
        """The client gives up on its connection (a timeout)."""
        conn, s = c.conn, c.server
        self._connection_lost(c, why)
        if conn is not None and s is not None:
            port = self.ports.get(s)
            if port is not None and conn in port.conns:
                port.conns.discard(conn)
                self._run(s, port, port.core.connection_lost(conn, self.now_ms()))

    def _client_tick(self, c: SimClient) -> None:
        now = self.clock.now
        if c.conn is None:
            return
        if not c.connected or c.outstanding is not None:
            if now - c.since >= self.op_timeout_ticks:
                self._disconnect(c, "timeout")
            return
        self._send(c, -2, int(OpCode.ping), None)  # keeps the session alive

    def _send(self, c: SimClient, xid: int, op: int, body: object) -> None:
        assert c.server is not None and c.conn is not None
        port = self.ports[c.server]
        effects = port.core.receive_request(c.conn, RequestHeader(xid, op), body, self.now_ms())
        self._run(c.server, port, effects)

    def _connect(self, c: SimClient, s: Sid) -> bool:
        port = self.ports.get(s)
        if port is None:
            return False  # connection refused: nobody serves clients there
        self._conn_seq += 1
        conn = self._conn_seq
        c.conn, c.server, c.connected, c.since = conn, s, False, self.clock.now
        if self.xid_per_connection:
            c.xid = 0
        port.conns.add(conn)
        self.conn_client[conn] = c
        self._run(s, port, port.core.connection_opened(conn, f"10.0.0.{c.cid}"))
        req = ConnectRequest(0, c.last_zxid, c.timeout_ms, c.session, c.passwd)
        self._run(s, port, port.core.receive_connect(conn, req, self.now_ms()))
        return True

    def _client_receive(self, c: SimClient, e: SendConnectResponse | Reply | Notify) -> None:
        match e:
            case SendConnectResponse():
                if e.resp.session_id == 0:
                    c.session, c.passwd = 0, bytes(16)  # expired: a new session next time
                    self._new_process(c)
                else:
                    c.fresh = c.session != e.resp.session_id
                    c.session, c.passwd = e.resp.session_id, e.resp.passwd
                    c.connected = True
            case Reply():
                if e.zxid > 0:
                    c.last_zxid = max(c.last_zxid, e.zxid)
                self._check_watch_order(c, e)
                if e.xid < 0 or c.outstanding is None or c.outstanding[0] != e.xid:
                    return
                _, r = c.outstanding
                c.outstanding = None
                self._complete(c, r, e)
            case Notify():
                if e.event.type in (int(EventType.NodeDataChanged), int(EventType.NodeDeleted)):
                    self.watch_events += 1
                    c.watches.pop(e.event.path, None)

    def _check_watch_order(self, c: SimClient, e: Reply) -> None:
        b = e.body
        if not isinstance(b, GetDataResponse | SetDataResponse) or c.outstanding is None:
            return
        path = c.outstanding[1].path
        seen = c.watches.get(path)
        if seen is not None and b.stat.version > seen:
            self.watch_violations.append(
                f"client {c.cid} (session {c.session:x}) saw version {b.stat.version} of {path} "
                f"before the event of its watch set at version {seen} (t={self.clock.now})"
            )
            c.watches.pop(path)
        req = c.outstanding[1].body
        if isinstance(b, GetDataResponse) and isinstance(req, GetDataRequest) and req.watch:
            c.watches.setdefault(path, b.stat.version)

    def _complete(self, c: SimClient, r: Request, e: Reply) -> None:
        if r.op == int(OpCode.closeSession):
            if e.err == 0:
                self.stats["closeSession"] += 1
                c.session, c.passwd = 0, bytes(16)
            return
        if not r.f:
            c.done.append((r, e.err, e.zxid, e.body))
            return
        seen = c.last_zxid
        if e.err == 0:
            kw: dict[str, Any] = {}
            b = e.body
            if isinstance(b, SetDataResponse):
                kw = {"version": b.stat.version, "zxid": b.stat.mzxid}
                c.versions[r.path] = b.stat.version
            elif isinstance(b, GetDataResponse):
                v = None if b.data is None else b.data.decode()
                kw = {"value": v, "version": b.stat.version, "zxid": b.stat.mzxid}
                c.versions[r.path] = b.stat.version
            elif isinstance(b, CreateResponse) and r.f == "create":
                kw = {"version": 0, "zxid": e.zxid}
            elif isinstance(b, CreateResponse):
                kw = {"name": b.path, "zxid": e.zxid}
            elif isinstance(b, GetChildrenResponse):
                kw = {"value": json.dumps(sorted(b.children))}
            self._record(c, "ok", r, seen_zxid=seen, **kw)
        elif e.err == int(Err.NONODE) and r.f in ("read", "final-read"):
            self._record(c, "ok", r, value=None, version=-1, seen_zxid=seen)
        elif e.err in _FAIL:
            self.stats[f"fail {_FAIL[e.err]}"] += 1
            self._record(c, "fail", r, error=_FAIL[e.err], seen_zxid=seen)
            if e.err == int(Err.BADVERSION):
                c.versions.pop(r.path, None)
        else:
            self.stats[f"error {Err(e.err).name}"] += 1
            self._record(c, "info", r, error=f"error {e.err}")
            self._new_process(c)

    def _next_request(self, c: SimClient) -> Request:
        if c.fresh:
            c.fresh = False
            path = f"{EPHEMERALS}/c{c.cid}-{c.session & 0xFFFFFFFFFFFFFFFF:x}"
            mode = int(CreateMode.EPHEMERAL)
            body = CreateRequest(path, b"", OPEN_ACL, mode)
            return Request("create", path, int(OpCode.create), body, "")
        if c.script:
            return c.script.popleft()
        if c.counter and c.counter % CLOSE_EVERY == 0 and not c.closing:
            c.closing = True
            return Request("", "", int(OpCode.closeSession), None)
        c.closing = False
        r = self.rng
        c.counter += 1
        key = r.choice(self.keys)
        value = f"{c.cid}-{c.counter}"
        f = r.choices(["read", "write", "cas", "enqueue"], weights=self.weights)[0]
        if f == "read":
            c.script.append(make_request("read", key, watch=True))
            return make_request("sync", key)
        if f == "cas":
            return make_request("cas", key, value, c.versions.get(key, 0))
        return make_request(f, QUEUE if f == "enqueue" else key, value)

    def client_step(self, c: SimClient) -> None:
        """The client acts: connect somewhere if it has no connection, else send its next
        request if none is outstanding."""
        self.client_steps += 1
        if c.conn is None:
            s = self.rng.choice(self.sids)
            if self._connect(c, s):
                self._step(f"client {c.cid} connects to {s}")
            return
        if not c.connected or c.outstanding is not None:
            return
        r = self._next_request(c)
        self._issue(c, r)
        self._step(f"client {c.cid} p{c.process} {r.f or r.op} {r.path}")

    def _issue(self, c: SimClient, r: Request) -> None:
        c.xid += 1
        c.outstanding = (c.xid, r)
        c.since = self.clock.now
        self._record(c, "invoke", r, value=r.value, version=r.version)
        self._send(c, c.xid, r.op, r.body)

    # ------------------------------------------------------------------ scripted clients

    def connect(self, c: SimClient, s: Sid) -> bool:
        """Scripted: c opens a connection to s (False: s serves no clients now)."""
        assert c.conn is None, c
        ok = self._connect(c, s)
        self._step(f"client {c.cid} connects to {s}")
        return ok

    def send(self, c: SimClient, r: Request) -> None:
        """Scripted: c sends r (recorded when `recording`); the answer comes as the run goes."""
        assert c.connected and c.outstanding is None, c
        self._issue(c, r)
        self._step(f"client {c.cid} {r.f} {r.path}")

    def call(self, c: SimClient, r: Request, max_steps: int = 2_000) -> tuple[int, object]:
        """Run one unrecorded request of `c` to its answer with no faults (connecting to the
        leader first; sent again if the connection broke); returns (err, body)."""
        assert not r.f, r
        for _ in range(max_steps):
            if c.done:
                _, err, _, body = c.done.pop()
                return err, body
            ld = self.leader()
            if c.conn is None and ld is not None and self._connect(c, ld):
                self._step(f"client {c.cid} connects to {ld}")
            elif c.conn is not None and c.connected and c.outstanding is None:
                self._issue(c, r)
                self._step(f"client {c.cid} op {r.op} {r.path}")
            else:
                self._heal_step()
        raise SimFailure(self.fail(f"client {c.cid}: no answer to {r}"))

    def setup(self, converge_steps: int = 3_000) -> None:
        """Stabilize, then create the keys and the queue parent (not recorded)."""
        self.stabilize(converge_steps)
        c = SimClient(-1, -1)
        for path in (*self.keys, QUEUE, EPHEMERALS):
            body = CreateRequest(path, b"init", OPEN_ACL, int(CreateMode.PERSISTENT))
            err, _ = self.call(c, Request("", path, int(OpCode.create), body))
            assert err in (0, int(Err.NODEEXISTS)), (path, err)
        self._disconnect(c, "setup done")

    def final_reads(self, converge_steps: int = 3_000) -> None:
        """After heal: a fresh client at the leader syncs and reads every key and the queue."""
        c = SimClient(10_000, 10_000)
        for path in (*self.keys, QUEUE):
            self.stabilize(converge_steps)
            self.call(c, Request("", path, int(OpCode.sync), SyncRequest(path)))
            r = make_request("final-list" if path == QUEUE else "final-read", path)
            self._issue_and_wait(c, r, converge_steps)
        self._disconnect(c, "final reads done")

    def expire_sessions(self, max_ticks: int = 60, converge_steps: int = 3_000) -> list[str]:
        """After the run, every client gone: tick until the leader tracks no session; then no
        member may hold an ephemeral (a `locked_out` one is not in the ensemble). Returns what
        is left (sessions, ephemerals)."""
        left: list[str] = []
        for _ in range(max_ticks):
            ld = self.stabilize(converge_steps)
            port = self.ports.get(ld)
            if port is not None and len(port.core.sessions) == 0:
                break
            self.tick()
        else:
            port = self.ports.get(self.stabilize(converge_steps))
            live = [] if port is None else sorted(port.core.session_timeouts())
            left.append(f"sessions never expired after {max_ticks} ticks: {live}")
        for s in self.sids:
            if self.locked_out(s):
                continue  # cannot rejoin until the leader changes (ZabCluster.locked_out)
            node = self.trees[s].get(EPHEMERALS)
            if node is not None and node.children:
                left.append(f"server {s} still holds ephemerals {sorted(node.children)}")
        self.session_leftovers = left
        return left

    def _issue_and_wait(self, c: SimClient, r: Request, max_steps: int) -> None:
        assert c.connected and c.outstanding is None, c
        self._issue(c, r)
        self._step(f"client {c.cid} {r.f} {r.path}")
        for _ in range(max_steps):
            if not self._waiting(c):
                return
            self._heal_step()
        raise SimFailure(self.fail(f"client {c.cid}: no answer to {r.f} {r.path}"))

    @staticmethod
    def _waiting(c: SimClient) -> bool:
        return c.outstanding is not None

    # ------------------------------------------------------------------ swarm

    def client_swarm(
        self,
        steps: int = 600,
        converge_steps: int = 3_000,
        client_rate: float = 0.35,
        fault_rate: float = 0.02,
        calm_steps: int = 100,
        heal_every: int = 0,
    ) -> CheckReport:
        """Setup, then `steps` steps drawn from the seed (a fault with `fault_rate`, a client's
        step with `client_rate`, else progress: a delivery, an fsync, an election, a tick),
        heal (also every `heal_every` steps, if set), calm traffic, final reads, session
        expiry; returns the checks' report on the recorded history (spec invariants are
        checked after every step, or every `invariants_every`, as in `ZabCluster`)."""
        self.setup(converge_steps)
        self.recording = True
        r = self.rng
        for i in range(steps):
            if heal_every and i and i % heal_every == 0:
                self.heal_all()  # long runs: crashed servers would otherwise pile up
            roll = r.random()
            if roll < fault_rate:
                self._random_fault()
            elif roll < fault_rate + client_rate:
                self.client_step(r.choice(self.clients))
            else:
                self._heal_step()
        self.heal_all()
        self.stabilize(converge_steps)
        for _ in range(calm_steps):
            if r.random() < client_rate:
                self.client_step(r.choice(self.clients))
            else:
                self._heal_step()
        for c in self.clients:
            self._disconnect(c, "run over")
        self.final_reads(converge_steps)
        self.recording = False
        self.expire_sessions(converge_steps=converge_steps)
        if self.check:
            ZabCluster.verify(self)
        return self.check_history()


def ops_count(h: History) -> int:
    return sum(1 for e in h.events if e.type == "invoke")


def main(argv: list[str] | None = None) -> int:
    """`python -m zkref.sim.client_cluster --seeds 0:200 [--servers 5] [--fle] ...`: client
    swarms over a range of seeds; prints the failing seeds and the figures."""
    import argparse
    import time

    from zkref.chaos.checker import render_text

    ap = argparse.ArgumentParser(prog="python -m zkref.sim.client_cluster")
    ap.add_argument("--seeds", default="0:40", help="A:B (half-open)")
    ap.add_argument("--servers", type=int, default=3)
    ap.add_argument("--clients", type=int, default=3)
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--fault-rate", type=float, default=0.02)
    ap.add_argument("--heal-every", type=int, default=0, help="heal_all every N steps (0: never)")
    ap.add_argument("--invariants-every", type=int, default=0, help="0: never (client check only)")
    ap.add_argument("--fle", action="store_true", help="FastLeaderElection instead of the oracle")
    ap.add_argument("--linearizable-sync", action="store_true")
    ap.add_argument(
        "--plant",
        choices=[
            "ack-before-commit",
            "learner-sync",
            "notify-after-reply",
            "revive-expired",
            "no-session-restore",
        ],
    )
    ap.add_argument("--verbose", action="store_true", help="print each failing report")
    a = ap.parse_args(argv)
    lo, hi = (int(x) for x in a.seeds.split(":"))
    kw: dict[str, Any] = {"clients": a.clients, "linearizable_sync": a.linearizable_sync}
    if a.fle:
        kw["election"] = "fle"
    if a.plant == "ack-before-commit":
        kw["unsafe_ack_before_commit"] = True
    elif a.plant == "learner-sync":
        kw.update(unsafe_learner_sync=True, weights=(60, 30, 10, 0), op_timeout_ticks=10)
    elif a.plant == "notify-after-reply":
        kw["unsafe_notify_after_reply"] = True
    elif a.plant == "revive-expired":
        kw["leader_bugs"] = ("bug_revive_expired",)
    elif a.plant == "no-session-restore":
        kw["unsafe_no_session_restore"] = True
    if a.invariants_every > 0:
        kw["invariants_every"] = a.invariants_every
    else:
        kw["check"] = False
    failed: list[int] = []
    ops = 0
    check_s = 0.0
    t0 = time.perf_counter()
    for seed in range(lo, hi):
        c = ClientCluster(a.servers, seed, **kw)
        try:
            rep = c.client_swarm(steps=a.steps, fault_rate=a.fault_rate, heal_every=a.heal_every)
        except SimFailure as e:
            print(f"seed {seed}: {str(e).splitlines()[0]} (reproduce with seed={seed})")
            failed.append(seed)
            continue
        ops += rep.n_ops
        check_s += rep.seconds
        if rep.valid is False:
            bad = [v.property for v in rep.verdicts if v.valid is False]
            print(f"seed {seed}: {', '.join(bad)} (reproduce with seed={seed})")
            if a.verbose:
                print(render_text(rep))
            failed.append(seed)
    n = hi - lo
    print(
        f"{n} seeds, {len(failed)} failed, {ops} operations, "
        f"{time.perf_counter() - t0:.1f} s ({check_s:.2f} s in the checker)"
    )
    return 1 if failed and a.plant is None else 0


if __name__ == "__main__":
    raise SystemExit(main())


__all__ = ["ClientCluster", "Request", "SimClient", "make_request", "ops_count"]
