"""The standalone ZooKeeper server as a sans-I/O core (ZooKeeper: ZooKeeperServer's request path
from processConnectRequest/processPacket through Prep-, Sync- and FinalRequestProcessor).

The shell feeds inputs (`connection_opened`, `receive_connect`, `receive_request`, `persisted`,
`connection_lost`, `tick`) and executes the returned effects in order.

Rules:
- a write is prepared at once against the tree plus the outstanding changes (`prep`), gets the
  next zxid and goes out as `Persist`; it is applied, and answered, only when the shell reports it
  `persisted`; failed writes are error txns and use a zxid too, as in ZooKeeper;
- per session FIFO: a read (and ping, sync, setWatches, check/remove/addWatch, whoAmI) waits behind
  that session's earlier writes; with none pending it is answered at once from the applied tree;
- when a txn is applied its watch notifications go out before its reply and before any read
  released by it, so a client sees the event before the data;
- reply zxid: the txn's zxid for writes, the tree's last processed zxid otherwise; auth and sasl
  replies carry 0, Unimplemented -1; notifications carry -1 (ZooKeeper 3.8);
- a packet on a closing or unknown session is dropped without a reply (ZooKeeper's
  MissingSessionException in submitRequest); so is anything on a connection already closed;
- watches belong to the connection (ZooKeeper's ServerCnxn is the watcher): they are dropped when
  the connection goes and re-sent by the client with setWatches;
- auth ids belong to the connection too, start as ("ip", remote address) and are kept in the
  iteration order of ZooKeeper's hash set (whoAmI, "auth" ACL expansion); a failed auth is
  answered AUTHFAILED and closed (the client raises its own AuthFailed event; the server sends
  none); auth and sasl are answered at once, outside the session's FIFO, as processPacket does;
- a re-attach closes the connection holding the session before the password is checked; a bad
  password or an unknown/closing session gets ConnectResponse(0, 0, 0, zeros) and a close; a
  client whose last zxid is ahead of the tree is closed without an answer;
- an unknown opcode is answered Unimplemented and the connection closed; a successful `check`
  outside multi is applied but never answered (3.8 fails to serialize its reply);
- where 3.8 and 3.9 differ (watch modes, removeWatches types, notification zxid) we behave as
  3.8 unless `CoreConfig.compat_3_9`. tests/test_core_server_vs_zookeeper.py pins these against
  Apache ZooKeeper 3.8.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field

from zkref.core.acl import AuthInfo, generate_digest
from zkref.core.datatree import DataTree
from zkref.core.effects import Close, Effect, Notify, Persist, Reply, SendConnectResponse
from zkref.core.prep import WRITE_OPS, Prep, PrepConfig
from zkref.core.reads import process_read
from zkref.core.sessions import SessionTracker
from zkref.core.watches import WatchesSummary, WatchManager
from zkref.wire.constants import (
    DEFAULT_JUTE_MAXBUFFER,
    SESSION_PASSWORD_LEN,
    AddWatchMode,
    Err,
    EventType,
    KeeperState,
    OpCode,
    WatcherType,
    Xid,
)
from zkref.wire.records import (
    AddWatchRequest,
    AuthPacket,
    CheckWatchesRequest,
    ClientInfo,
    ConnectRequest,
    ConnectResponse,
    ErrorResponse,
    ErrorTxn,
    ExistsRequest,
    GetACLRequest,
    GetAllChildrenNumberRequest,
    GetChildren2Request,
    GetChildrenRequest,
    GetDataRequest,
    GetEphemeralsRequest,
    Id,
    MultiReadRequest,
    MultiResponse,
    RemoveWatchesRequest,
    RequestHeader,
    SetSASLResponse,
    SetWatches,
    SetWatches2,
    SyncRequest,
    SyncResponse,
    TxnBody,
    TxnHeader,
    WatcherEvent,
    WhoAmIResponse,
)

# ZooKeeper 3.8; 3.9 sends the zxid that fired the watch (ZOOKEEPER-4655; `compat_3_9`)
NOTIFICATION_ZXID = -1

# Requests that become txns (prep's, plus closeSession).
_WRITE_OPS = frozenset(int(op) for op in WRITE_OPS) | {int(OpCode.closeSession)}
# Requests served from the applied tree, in session order.
_READ_OPS = frozenset(
    int(op)
    for op in (
        OpCode.exists,
        OpCode.getData,
        OpCode.getACL,
        OpCode.getChildren,
        OpCode.getChildren2,
        OpCode.getEphemerals,
        OpCode.getAllChildrenNumber,
        OpCode.multiRead,
    )
)
_ORDERED_OPS = _READ_OPS | frozenset(
    int(op)
    for op in (
        OpCode.ping,
        OpCode.sync,
        OpCode.setWatches,
        OpCode.setWatches2,
        OpCode.checkWatches,
        OpCode.removeWatches,
        OpCode.addWatch,
        OpCode.whoAmI,
    )
)

_WATCH_CHECK_ERR = {True: 0, False: int(Err.NOWATCHER), None: int(Err.MARSHALLINGERROR)}
_AUTH = int(OpCode.auth)
_CHECK = int(OpCode.check)
_SASL = int(OpCode.sasl)
_MALFORMED = -1000  # internal: a queued request whose body does not fit its opcode
_EXPIRED = -1001  # internal: a request that came after its session's closeSession

# What the codec hands over for each ordered opcode.
_BODY_TYPES: dict[int, type | tuple[type, ...]] = {
    int(OpCode.exists): ExistsRequest,
    int(OpCode.getData): GetDataRequest,
    int(OpCode.getACL): GetACLRequest,
    int(OpCode.getChildren): GetChildrenRequest,
    int(OpCode.getChildren2): GetChildren2Request,
    int(OpCode.getEphemerals): GetEphemeralsRequest,
    int(OpCode.getAllChildrenNumber): GetAllChildrenNumberRequest,
    int(OpCode.multiRead): MultiReadRequest,
    int(OpCode.ping): object,
    int(OpCode.sync): SyncRequest,
    int(OpCode.setWatches): SetWatches,
    int(OpCode.setWatches2): SetWatches2,
    int(OpCode.checkWatches): CheckWatchesRequest,
    int(OpCode.removeWatches): RemoveWatchesRequest,
    int(OpCode.addWatch): AddWatchRequest,
    int(OpCode.whoAmI): object,
}

assert set(_BODY_TYPES) == _ORDERED_OPS

# FinalRequestProcessor's lastOp names (cons/stat output).
_LAST_OP = {
    int(OpCode.create): "CREA",
    int(OpCode.create2): "CREA",
    int(OpCode.createContainer): "CREA",
    int(OpCode.createTTL): "CREA",
    int(OpCode.delete): "DELE",
    int(OpCode.deleteContainer): "DELE",
    int(OpCode.setData): "SETD",
    int(OpCode.setACL): "SETA",
    int(OpCode.check): "CHEC",
    int(OpCode.multi): "MULT",
    int(OpCode.multiRead): "MLTR",
    int(OpCode.reconfig): "RECO",
    int(OpCode.closeSession): "CLOS",
    int(OpCode.createSession): "SESS",
    int(OpCode.sync): "SYNC",
    int(OpCode.ping): "PING",
    int(OpCode.exists): "EXIS",
    int(OpCode.getData): "GETD",
    int(OpCode.getACL): "GETA",
    int(OpCode.getChildren): "GETC",
    int(OpCode.getChildren2): "GETC",
    int(OpCode.getEphemerals): "GETE",
    int(OpCode.getAllChildrenNumber): "GETACN",
    int(OpCode.setWatches): "SETW",
    int(OpCode.setWatches2): "STW2",
    int(OpCode.addWatch): "ADDW",
    int(OpCode.checkWatches): "CHKW",
    int(OpCode.removeWatches): "REMW",
    int(OpCode.whoAmI): "HOMI",
}

_NEW, _CONNECTING, _OPEN, _REVALIDATING = 0, 1, 2, 3
_K_REQUEST, _K_CREATE_SESSION, _K_CLOSE_SESSION, _K_EXPIRE, _K_REAP, _K_REMOTE, _K_SYNC = range(7)
_SYNC = int(OpCode.sync)


@dataclass(frozen=True, slots=True)
class CoreConfig:
    server_id: int = 0
    tick_time_ms: int = 2000
    min_session_timeout_ms: int = -1  # -1: 2 x tickTime
    max_session_timeout_ms: int = -1  # -1: 20 x tickTime
    max_buffer: int = DEFAULT_JUTE_MAXBUFFER
    super_digest: str | None = None  # "super:base64(sha1(super:pw))"
    extended_types_enabled: bool = False
    secret: bytes = b""
    start_ms: int = 0
    # ContainerManager: znode.container.checkIntervalMs
    container_check_interval_ms: int = 60_000
    # Where 3.8 and 3.9 differ visibly (watch modes and removeWatches types, notification zxid),
    # behave as 3.9; the default is 3.8, the version the differential tests run against.
    compat_3_9: bool = False


@dataclass(frozen=True, slots=True)
class ConnectionInfo:
    """One client connection, for `cons`/`stat`."""

    conn: int
    remote_ip: str
    session_id: int | None
    timeout_ms: int
    queued: int
    received: int
    sent: int
    established_ms: int
    last_op: str
    last_cxid: int
    last_zxid: int
    last_response_ms: int
    last_latency_ms: int
    min_latency_ms: int
    avg_latency_ms: float
    max_latency_ms: int


@dataclass(frozen=True, slots=True)
class CoreStats:
    """Counts for srvr/stat/mntr."""

    zxid: int
    connections: int
    sessions: int
    outstanding: int
    node_count: int
    watch_count: int
    watched_paths: int
    watching_sessions: int
    ephemerals_count: int
    data_size: int
    packets_received: int
    packets_sent: int
    min_latency_ms: int
    avg_latency_ms: float
    max_latency_ms: int
    session_of: dict[int, int] = field(default_factory=dict)  # conn -> session id
    timeout_of: dict[int, int] = field(default_factory=dict)  # conn -> negotiated timeout
    session_ephemerals: dict[int, tuple[str, ...]] = field(default_factory=dict)


class _Conn:
    __slots__ = (
        "auth",
        "conn",
        "count",
        "established_ms",
        "has_read_only",
        "last_cxid",
        "last_latency_ms",
        "last_op",
        "last_response_ms",
        "last_zxid",
        "max_latency_ms",
        "min_latency_ms",
        "received",
        "remote_ip",
        "sent",
        "session_id",
        "state",
        "timeout_ms",
        "total_latency_ms",
    )

    def __init__(self, conn: int, remote_ip: str) -> None:
        self.conn = conn
        self.remote_ip = remote_ip
        self.auth = AuthInfo.for_ip(remote_ip)
        self.session_id = 0
        self.timeout_ms = 0
        self.state = _NEW
        self.has_read_only = True
        self.received = 0
        self.sent = 0
        self.established_ms = 0
        self.last_op = "NA"
        self.last_cxid = -1
        self.last_zxid = -1
        self.last_response_ms = 0
        self.last_latency_ms = 0
        self.min_latency_ms = 0
        self.max_latency_ms = 0
        self.total_latency_ms = 0
        self.count = 0


class _Inflight:
    """A txn handed out as Persist and not yet applied (and, for a session, a FIFO marker)."""

    __slots__ = (
        "conn",
        "extra",
        "hdr",
        "kind",
        "op",
        "received_ms",
        "session_id",
        "txn",
        "xid",
        "zxid",
    )

    def __init__(
        self,
        kind: int,
        hdr: TxnHeader,
        txn: TxnBody,
        conn: int | None,
        xid: int,
        op: int,
        session_id: int,
        received_ms: int,
        extra: object | None = None,
    ) -> None:
        self.kind = kind
        self.hdr = hdr
        self.txn = txn
        self.zxid = hdr.zxid
        self.conn = conn
        self.xid = xid
        self.op = op
        self.session_id = session_id
        self.received_ms = received_ms
        # _K_SYNC: the SyncRequest; _K_REMOTE: the learner's sid; _K_REQUEST: the body of an
        # error reply (None but for a multi that decoded with a null path)
        self.extra = extra


class _Pending:
    """A request whose outcome another server decides (an ensemble member's forwarded write or
    sync): like a write in flight, it holds back its session's later requests."""

    __slots__ = ("body", "conn", "op", "received_ms", "session_id", "xid", "zxid")

    def __init__(
        self, conn: int, xid: int, op: int, body: object | None, session_id: int, received_ms: int
    ) -> None:
        self.conn = conn
        self.xid = xid
        self.op = op
        self.body = body
        self.session_id = session_id
        self.received_ms = received_ms
        self.zxid: int | None = None  # the txn the leader made of it, once it says so


class _Queued:
    """A non-write request waiting behind its session's earlier writes."""

    __slots__ = ("auth", "body", "conn", "op", "received_ms", "xid")

    def __init__(
        self, conn: int, xid: int, op: int, body: object | None, auth: AuthInfo, received_ms: int
    ) -> None:
        self.conn = conn
        self.xid = xid
        self.op = op
        self.body = body
        self.auth = auth
        self.received_ms = received_ms


class ServerCore:
    """A standalone ZooKeeper server without I/O."""

    def __init__(
        self,
        config: CoreConfig,
        *,
        tree: DataTree | None = None,
        sessions: Mapping[int, int] | None = None,
    ) -> None:
        self.config = config
        tick = config.tick_time_ms
        self.tree = (
            tree
            if tree is not None
            else DataTree(extended_types_enabled=config.extended_types_enabled)
        )
        self.prep = Prep(
            self.tree,
            PrepConfig(
                extended_types_enabled=config.extended_types_enabled, max_buffer=config.max_buffer
            ),
        )
        self.sessions = SessionTracker(
            server_id=config.server_id,
            tick_time_ms=tick,
            min_session_timeout_ms=(
                config.min_session_timeout_ms if config.min_session_timeout_ms > 0 else 2 * tick
            ),
            max_session_timeout_ms=(
                config.max_session_timeout_ms if config.max_session_timeout_ms > 0 else 20 * tick
            ),
            secret=config.secret,
            start_ms=config.start_ms,
        )
        if sessions:
            self.sessions.restore(sessions, config.start_ms)
        self.watches = WatchManager(zk38=not config.compat_3_9)
        self._zk38 = not config.compat_3_9
        self._conns: dict[int, _Conn] = {}
        # session id -> the one connection attached to it (handshake pending or open)
        self._owner: dict[int, int] = {}
        self._inflight: deque[_Inflight] = deque()
        # session id -> its writes in flight and the requests queued behind them, in arrival order
        self._queues: dict[int, deque[_Inflight | _Pending | _Queued]] = {}
        self._last_zxid = self.tree.last_processed_zxid  # last zxid handed out
        self._reaping: set[str] = set()  # containers/TTL nodes with a deleteContainer in flight
        self._reap_zxids: dict[int, str] = {}
        self._next_container_check_ms = config.start_ms + config.container_check_interval_ms
        self.packets_received = 0
        self.packets_sent = 0
        self._lat_count = 0
        self._lat_total = 0
        self._lat_min = 0
        self._lat_max = 0

    # =============================================================================================
    # connections and handshake
    # =============================================================================================
    def connection_opened(self, conn: int, remote_ip: str) -> list[Effect]:
        assert conn not in self._conns, conn
        self._conns[conn] = _Conn(conn, remote_ip)
        return []

    def receive_connect(self, conn: int, req: ConnectRequest, now_ms: int) -> list[Effect]:
        """ZooKeeperServer.processConnectRequest."""
        c = self._conns.get(conn)
        if c is None:
            return []
        out: list[Effect] = []
        c.received += 1
        self.packets_received += 1
        if c.state != _NEW:
            self._close(c, "a second ConnectRequest", out)
            return out
        tree_zxid = self.tree.last_processed_zxid
        if req.last_zxid_seen > tree_zxid:
            # CLIENT_ZXID_AHEAD: no answer; the client must try another server.
            self._close(
                c,
                f"client has seen zxid 0x{req.last_zxid_seen:x}, our last zxid is 0x{tree_zxid:x}",
                out,
            )
            return out
        timeout = self.sessions.negotiate_timeout(req.time_out)
        c.timeout_ms = timeout
        c.has_read_only = req.has_read_only
        c.established_ms = now_ms
        if req.session_id == 0:
            self._new_session(c, timeout, now_ms, out)
            return out
        sid = req.session_id
        # The session leaves whatever connection held it, even before the password is checked.
        old = self._owner.get(sid)
        if old is not None and old != conn:
            old_c = self._conns.get(old)
            if old_c is not None:
                self._close(old_c, "session re-attached elsewhere", out)
        if not self.sessions.check_password(sid, req.passwd):
            self._invalid_session(c, sid, out)
            return out
        self._reattach(c, sid, timeout, now_ms, out)
        return out

    def _new_session(self, c: _Conn, timeout: int, now_ms: int, out: list[Effect]) -> None:
        """A client without a session: a createSession txn; the ConnectResponse waits for it."""
        conn = c.conn
        sid = self.sessions.create_session(timeout, now_ms)
        c.session_id = sid
        c.state = _CONNECTING
        self._owner[sid] = conn
        zxid = self._last_zxid + 1
        hdr, txn = self.prep.create_session(sid, timeout, now_ms, zxid)
        entry = self._hand_out(
            _Inflight(_K_CREATE_SESSION, hdr, txn, conn, 0, int(OpCode.createSession), sid, now_ms)
        )
        self._queues[sid] = deque((entry,))
        out.append(Persist(hdr, txn))

    def _reattach(self, c: _Conn, sid: int, timeout: int, now_ms: int, out: list[Effect]) -> None:
        """A client re-attaching to its session (password already checked)."""
        if self.sessions.touch(sid, timeout, now_ms):
            self._session_opened(c, sid, out)
        else:
            self._invalid_session(c, sid, out)

    def _session_opened(self, c: _Conn, sid: int, out: list[Effect]) -> None:
        c.session_id = sid
        c.state = _OPEN
        self._owner[sid] = c.conn
        self._send_connect(
            c, ConnectResponse(0, c.timeout_ms, sid, self.sessions.password(sid)), out
        )

    def _invalid_session(self, c: _Conn, sid: int, out: list[Effect]) -> None:
        self._send_connect(c, ConnectResponse(0, 0, 0, bytes(SESSION_PASSWORD_LEN)), out)
        self._close(c, f"invalid session 0x{sid & 0xFFFFFFFFFFFFFFFF:x}, probably expired", out)

    def connection_lost(self, conn: int, now_ms: int) -> list[Effect]:
        """The session outlives its connection until it expires; the watches do not."""
        c = self._conns.get(conn)
        if c is not None:
            self._forget(c)
        return []

    # =============================================================================================
    # requests
    # =============================================================================================
    def receive_request(
        self, conn: int, hdr: RequestHeader, body: object | None, now_ms: int
    ) -> list[Effect]:
        """ZooKeeperServer.processPacket + submitRequest."""
        c = self._conns.get(conn)
        if c is None:
            return []
        c.received += 1
        self.packets_received += 1
        if c.state == _NEW:
            out: list[Effect] = []
            self._close(c, "request before the session was established", out)
            return out
        op = hdr.type
        if op == _AUTH:
            return self._auth(c, hdr.xid, body)
        if op == _SASL:
            # No SASL server configured: ZooKeeper's null saslServer path answers OK, no token.
            return [self._reply(c, hdr.xid, 0, 0, SetSASLResponse(None))]
        sid = c.session_id
        if not self._touch(sid, c.timeout_ms, now_ms):
            return self._closing_session(c, hdr.xid, now_ms)
        if op == _SYNC:
            return self._sync(c, hdr.xid, body, now_ms)
        if op in _ORDERED_OPS:
            return self._ordered(c, hdr.xid, op, body, now_ms)
        if op in _WRITE_OPS:
            return self._write(c, hdr.xid, op, body, now_ms)
        if op == OpCode.createSession:
            # Not a client request: ZooKeeper's prep cannot read it as one (MarshallingError).
            return self._error_write(c, hdr.xid, op, Err.MARSHALLINGERROR, now_ms)
        if op == OpCode.deleteContainer:
            # Only the server's own ContainerManager may send it: BadArguments, as ZooKeeper.
            return self._error_write(c, hdr.xid, op, Err.BADARGUMENTS, now_ms)
        # UnimplementedRequestProcessor: answer, then close the connection
        out = [self._reply(c, hdr.xid, -1, int(Err.UNIMPLEMENTED), None)]
        self._close(c, f"unimplemented opcode {op}", out)
        return out

    def _touch(self, sid: int, timeout_ms: int, now_ms: int) -> bool:
        """Every packet of a session keeps it alive (ZooKeeper's touchSession)."""
        return self.sessions.touch(sid, timeout_ms, now_ms)

    def _sync(self, c: _Conn, xid: int, body: object | None, now_ms: int) -> list[Effect]:
        """A standalone server has nothing to catch up with: `sync` is an ordered request."""
        return self._ordered(c, xid, _SYNC, body, now_ms)

    def _ordered(
        self, c: _Conn, xid: int, op: int, body: object | None, now_ms: int
    ) -> list[Effect]:
        """A request answered from the applied tree, after its session's earlier writes."""
        q = self._queues.get(c.session_id)
        if q is not None:
            if not isinstance(body, _BODY_TYPES[op]):
                # a decoding slip must not blow up later inside `persisted`
                op = _MALFORMED
            q.append(_Queued(c.conn, xid, op, body, c.auth, now_ms))
            return []
        out: list[Effect] = []
        self._serve(c, xid, op, body, c.auth, now_ms, out)
        return out

    def _enqueue(self, sid: int, entry: _Inflight | _Pending) -> None:
        q = self._queues.get(sid)
        if q is None:
            self._queues[sid] = deque((entry,))
        else:
            q.append(entry)

    def receive_malformed(
        self, conn: int, hdr: RequestHeader, now_ms: int, multi_decoded: bool = False
    ) -> list[Effect]:
        """A request whose body did not decode. ZooKeeper keeps the connection and answers
        MarshallingError; a write still takes a zxid (PrepRequestProcessor logs an ErrorTxn for
        it), a read does not. Either way the answer keeps its place in the session's order.
        `multi_decoded`: a multi whose jute decoded with a null op path; ZooKeeper's answer then
        carries an empty MultiResponse (FinalRequestProcessor builds one from no results)."""
        c = self._conns.get(conn)
        if c is None:
            return []
        out: list[Effect] = []
        if c.state == _NEW or hdr.type == _AUTH or hdr.type == _SASL:
            # no session to answer on / a broken auth or sasl packet: ZooKeeper drops the
            # connection (both are read in processPacket, before the request pipeline)
            self._close(c, "malformed packet", out)
            return out
        c.received += 1
        self.packets_received += 1
        sid = c.session_id
        if not self._touch(sid, c.timeout_ms, now_ms):
            return []
        if hdr.type in _WRITE_OPS and hdr.type != OpCode.closeSession:
            body = MultiResponse(()) if multi_decoded and hdr.type == OpCode.multi else None
            return self._error_write(c, hdr.xid, hdr.type, Err.MARSHALLINGERROR, now_ms, body)
        q = self._queues.get(sid)
        if q is not None:
            q.append(_Queued(conn, hdr.xid, _MALFORMED, None, c.auth, now_ms))
        else:
            self._serve(c, hdr.xid, _MALFORMED, None, c.auth, now_ms, out)
        return out

    def _closing_session(self, c: _Conn, xid: int, now_ms: int) -> list[Effect]:
        """A request on a session that is closing. Behind its own closeSession it gets
        SessionExpired in order, before the connection closes: what ZooKeeper answers when the
        request passed submitRequest before prep marked the session closing (the usual case for
        a pipelined request; ZooKeeper drops it when it comes later, a race zkref resolves)."""
        sid = c.session_id
        if self._owner.get(sid) != c.conn or sid not in self.sessions:
            return []  # not (or no longer) this connection's session: dropped, as ZooKeeper
        q = self._queues.get(sid)
        if q is None:
            # expiring (the tracker closes it; nothing of the session's is in flight): dropped,
            # as ZooKeeper's submitRequest does when touchSession fails
            return []
        # behind the session's own closeSession: answered SessionExpired after its reply
        q.append(_Queued(c.conn, xid, _EXPIRED, None, c.auth, now_ms))
        return []

    def _error_write(
        self,
        c: _Conn,
        xid: int,
        op: int,
        err: Err,
        now_ms: int,
        reply_body: object | None = None,
    ) -> list[Effect]:
        """A request PrepRequestProcessor turns into an ErrorTxn: it takes a zxid, is logged,
        and is answered with `err` (and `reply_body`, if any) in the session's order."""
        sid = c.session_id
        txn_hdr = TxnHeader(sid, xid, self._last_zxid + 1, now_ms, int(OpCode.error))
        entry = self._hand_out(
            _Inflight(
                _K_REQUEST, txn_hdr, ErrorTxn(int(err)), c.conn, xid, op, sid, now_ms, reply_body
            )
        )
        q = self._queues.get(sid)
        if q is None:
            self._queues[sid] = deque((entry,))
        else:
            q.append(entry)
        return [Persist(txn_hdr, entry.txn)]

    def _write(self, c: _Conn, xid: int, op: int, body: object | None, now_ms: int) -> list[Effect]:
        sid = c.session_id
        zxid = self._last_zxid + 1
        if op == OpCode.closeSession:
            hdr, txn = self.prep.close_session(sid, xid, now_ms, zxid)
            self.sessions.set_closing(sid)
            kind = _K_CLOSE_SESSION
        else:
            hdr, txn = self.prep.prep(sid, xid, op, body, c.auth, now_ms, zxid)
            kind = _K_REQUEST
        entry = self._hand_out(_Inflight(kind, hdr, txn, c.conn, xid, op, sid, now_ms))
        q = self._queues.get(sid)
        if q is None:
            self._queues[sid] = deque((entry,))
        else:
            q.append(entry)
        return [Persist(hdr, txn)]

    def _hand_out(self, entry: _Inflight) -> _Inflight:
        assert entry.zxid == self._last_zxid + 1, (entry.zxid, self._last_zxid)
        self._last_zxid = entry.zxid
        self._inflight.append(entry)
        return entry

    def _auth(self, c: _Conn, xid: int, body: object | None) -> list[Effect]:
        """processPacket(auth): providers "digest" and "ip"; anything else fails and closes."""
        assert isinstance(body, AuthPacket), body
        ids = list(c.auth.ids)
        is_super = c.auth.is_super
        if body.scheme == "digest":
            digest = generate_digest(body.auth.decode("utf-8", "replace"))
            new = [Id("digest", digest)]
            if self.config.super_digest is not None and digest == self.config.super_digest:
                new.insert(0, Id("super", ""))
                is_super = True
        elif body.scheme == "ip":
            new = [Id("ip", c.remote_ip)]
        else:
            # The client turns this reply into its AuthFailed state; the server sends no event.
            out: list[Effect] = [self._reply(c, xid, 0, int(Err.AUTHFAILED), None)]
            self._close(c, f"authentication failed for scheme {body.scheme!r}", out)
            return out
        for i in new:
            if i not in ids:
                ids.append(i)
        c.auth = AuthInfo(_java_set_order(ids), is_super)
        return [self._reply(c, xid, 0, 0, None)]

    def _serve(
        self,
        c: _Conn,
        xid: int,
        op: int,
        body: object | None,
        auth: AuthInfo,
        received_ms: int,
        out: list[Effect],
    ) -> None:
        """Answer a non-write request from the applied tree (FinalRequestProcessor)."""
        last = self.tree.last_processed_zxid
        if op in _READ_OPS:
            res = process_read(self.tree, op, body, auth, c.session_id)
            if res.watch is not None:
                self.watches.add_watch(res.watch.path, c.conn, res.watch.kind)
            err = res.err
            out.append(self._reply(c, xid, last, err, res.response if err == 0 else None, op))
        elif op == OpCode.ping:
            # FinalRequestProcessor answers with the constant PING_XID, whatever the client sent
            out.append(self._reply(c, int(Xid.PING), last, 0, None, op))
        elif op == OpCode.sync:
            assert isinstance(body, SyncRequest), body
            out.append(self._reply(c, xid, last, 0, SyncResponse(body.path), op))
        elif op == OpCode.setWatches or op == OpCode.setWatches2:
            assert isinstance(body, SetWatches | SetWatches2), body
            self._set_watches(c, body, out)
            out.append(self._reply(c, xid, last, 0, None, op))
        elif op == OpCode.checkWatches or op == OpCode.removeWatches:
            assert isinstance(body, CheckWatchesRequest | RemoveWatchesRequest), body
            try:
                wtype = WatcherType(body.type)
            except ValueError:
                err = int(Err.MARSHALLINGERROR)  # WatcherType.fromInt throws
            else:
                if op == OpCode.checkWatches:
                    ok = self.watches.contains(body.path, c.conn, wtype)
                else:
                    ok = self.watches.remove(body.path, c.conn, wtype)
                # None: 3.8 has no such WatcherType (WatcherType.fromInt throws)
                err = _WATCH_CHECK_ERR[ok]
            out.append(self._reply(c, xid, last, err, None, op))
        elif op == OpCode.addWatch:
            assert isinstance(body, AddWatchRequest), body
            if (
                body.mode == AddWatchMode.PERSISTENT
                or body.mode == AddWatchMode.PERSISTENT_RECURSIVE
            ):
                self.watches.add_persistent(
                    body.path, c.conn, recursive=body.mode == AddWatchMode.PERSISTENT_RECURSIVE
                )
                out.append(self._reply(c, xid, last, 0, ErrorResponse(0), op))
            else:
                out.append(self._reply(c, xid, last, int(Err.MARSHALLINGERROR), None, op))
        elif op == OpCode.whoAmI:
            out.append(self._reply(c, xid, last, 0, WhoAmIResponse(_client_infos(auth)), op))
        elif op == _MALFORMED:
            out.append(self._reply(c, xid, last, int(Err.MARSHALLINGERROR), None))
        elif op == _EXPIRED:
            out.append(self._reply(c, xid, last, int(Err.SESSIONEXPIRED), None))
        else:
            raise AssertionError(f"not an ordered op: {op}")

    def _set_watches(self, c: _Conn, body: SetWatches | SetWatches2, out: list[Effect]) -> None:
        """DataTree.setWatches: fire at once for what changed after relative_zxid."""
        rel = body.relative_zxid
        tree = self.tree
        w = c.conn
        for path in body.data_watches:
            node = tree.get(path)
            if node is None:
                self._notify_now(c, EventType.NodeDeleted, path, out)
            elif node.mzxid > rel:
                self._notify_now(c, EventType.NodeDataChanged, path, out)
            else:
                self.watches.add_data_watch(path, w)
        for path in body.exist_watches:
            if tree.get(path) is not None:
                self._notify_now(c, EventType.NodeCreated, path, out)
            else:
                self.watches.add_data_watch(path, w)
        for path in body.child_watches:
            node = tree.get(path)
            if node is None:
                self._notify_now(c, EventType.NodeDeleted, path, out)
            elif node.pzxid > rel:
                self._notify_now(c, EventType.NodeChildrenChanged, path, out)
            else:
                self.watches.add_child_watch(path, w)
        if isinstance(body, SetWatches2):
            for path in body.persistent_watches:
                self.watches.add_persistent(path, w, recursive=False)
            for path in body.persistent_recursive_watches:
                self.watches.add_persistent(path, w, recursive=True)

    def _notify_now(self, c: _Conn, event_type: EventType, path: str, out: list[Effect]) -> None:
        c.sent += 1
        self.packets_sent += 1
        out.append(
            Notify(
                c.conn,
                WatcherEvent(int(event_type), int(KeeperState.SyncConnected), path),
                NOTIFICATION_ZXID,
            )
        )

    # =============================================================================================
    # durability: apply what reached the disk
    # =============================================================================================
    def persisted(self, upto_zxid: int, now_ms: int) -> list[Effect]:
        """Apply every handed-out txn with zxid <= upto_zxid, in order, and answer it."""
        out: list[Effect] = []
        inflight = self._inflight
        conns = self._conns
        while inflight and inflight[0].zxid <= upto_zxid:
            e = inflight.popleft()
            res = self.tree.apply(e.hdr, e.txn)
            self.prep.applied(e.zxid)
            if res.triggers:
                nz = NOTIFICATION_ZXID if self._zk38 else res.zxid
                for trig in res.triggers:
                    for w, event in self.watches.trigger(trig.path, trig.event):
                        wc = conns.get(w)
                        if wc is not None:
                            wc.sent += 1
                            self.packets_sent += 1
                            out.append(Notify(w, event, nz))
            kind = e.kind
            c = conns.get(e.conn) if e.conn is not None else None
            if kind == _K_REQUEST:
                if e.op == _CHECK and res.err == 0:
                    # A successful check outside multi: 3.8's FinalRequestProcessor builds
                    # SetDataResponse(null stat), whose serialization throws, so no reply is sent.
                    pass
                elif c is not None:
                    body = res.response if res.err == 0 else e.extra
                    out.append(self._reply(c, e.xid, res.zxid, res.err, body, e.op))
                    self._latency(c, now_ms - e.received_ms)
            elif kind == _K_CREATE_SESSION:
                if c is not None and c.state == _CONNECTING:
                    c.state = _OPEN
                    pw = self.sessions.password(e.session_id)
                    self._send_connect(c, ConnectResponse(0, c.timeout_ms, e.session_id, pw), out)
            elif kind == _K_CLOSE_SESSION:
                if c is not None:
                    out.append(self._reply(c, e.xid, res.zxid, res.err, None, e.op))
                    self._latency(c, now_ms - e.received_ms)
            elif kind == _K_REAP:
                self._reaping.discard(self._reap_zxids.pop(e.zxid, ""))
            elif kind == _K_SYNC and c is not None:
                # an ensemble leader's quorum-round sync (linearizableSync): answered as a sync
                assert isinstance(e.extra, SyncRequest), e.extra
                out.append(self._reply(c, e.xid, res.zxid, 0, SyncResponse(e.extra.path), e.op))
                self._latency(c, now_ms - e.received_ms)
            if kind < _K_EXPIRE or kind == _K_SYNC:
                # answer what queued behind it first (after a closeSession: SessionExpired),
                # then close the session's connection
                self._release(e, now_ms, out)
            if res.session_closed is not None:
                self._session_closed(res.session_closed, out)
        return out

    def _session_closed(self, sid: int, out: list[Effect]) -> None:
        self.sessions.remove(sid)
        owner = self._owner.pop(sid, None)
        if owner is not None:
            c = self._conns.get(owner)
            if c is not None:
                self._close(c, f"session 0x{sid & 0xFFFFFFFFFFFFFFFF:x} closed", out)

    def _release(self, e: _Inflight | _Pending, now_ms: int, out: list[Effect]) -> None:
        """Pop the session's marker for `e`, then answer what queued behind it up to the next
        write of that session."""
        sid = e.session_id
        q = self._queues.get(sid)
        if q is None:
            return
        head = q.popleft()
        assert head is e, (sid, e.xid)
        conns = self._conns
        while q:
            item = q[0]
            if not isinstance(item, _Queued):
                return
            q.popleft()
            c = conns.get(item.conn)
            if c is not None:
                self._serve(c, item.xid, item.op, item.body, item.auth, item.received_ms, out)
                self._latency(c, now_ms - item.received_ms)
        del self._queues[sid]

    # =============================================================================================
    # time
    # =============================================================================================
    def tick(self, now_ms: int) -> list[Effect]:
        """Expire sessions (closeSession txns) and reap empty containers / expired TTL nodes."""
        out: list[Effect] = []
        for sid in self.sessions.expired(now_ms):
            zxid = self._last_zxid + 1
            hdr, txn = self.prep.close_session(sid, 0, now_ms, zxid)
            self._hand_out(
                _Inflight(_K_EXPIRE, hdr, txn, None, 0, int(OpCode.closeSession), sid, now_ms)
            )
            out.append(Persist(hdr, txn))
        if now_ms >= self._next_container_check_ms:
            self._next_container_check_ms = now_ms + self.config.container_check_interval_ms
            for path in self.tree.reapable(now_ms):
                if path in self._reaping:
                    continue
                zxid = self._last_zxid + 1
                hdr, txn = self.prep.delete_container(path, now_ms, zxid)
                self._reaping.add(path)
                self._reap_zxids[zxid] = path
                self._hand_out(
                    _Inflight(_K_REAP, hdr, txn, None, 0, int(OpCode.deleteContainer), 0, now_ms)
                )
                out.append(Persist(hdr, txn))
        return out

    # =============================================================================================
    # helpers
    # =============================================================================================
    def _reply(
        self, c: _Conn, xid: int, zxid: int, err: int, body: object | None, op: int = -1
    ) -> Reply:
        c.sent += 1
        self.packets_sent += 1
        if op != -1:
            c.last_op = _LAST_OP.get(op, "NA")
            c.last_cxid = xid
            c.last_zxid = zxid
        return Reply(c.conn, xid, zxid, err, body)

    def _send_connect(self, c: _Conn, resp: ConnectResponse, out: list[Effect]) -> None:
        if not c.has_read_only:
            resp = ConnectResponse(
                resp.protocol_version,
                resp.time_out,
                resp.session_id,
                resp.passwd,
                resp.read_only,
                has_read_only=False,
            )
        c.sent += 1
        self.packets_sent += 1
        out.append(SendConnectResponse(c.conn, resp))

    def _latency(self, c: _Conn, ms: int) -> None:
        if ms < 0:
            ms = 0
        c.last_latency_ms = ms
        if c.count == 0 or ms < c.min_latency_ms:
            c.min_latency_ms = ms
        if ms > c.max_latency_ms:
            c.max_latency_ms = ms
        c.count += 1
        c.total_latency_ms += ms
        if self._lat_count == 0 or ms < self._lat_min:
            self._lat_min = ms
        if ms > self._lat_max:
            self._lat_max = ms
        self._lat_count += 1
        self._lat_total += ms

    def _close(self, c: _Conn, reason: str, out: list[Effect]) -> None:
        self._forget(c)
        out.append(Close(c.conn, reason))

    def _forget(self, c: _Conn) -> None:
        del self._conns[c.conn]
        self.watches.remove_watcher(c.conn)
        sid = c.session_id
        if sid and self._owner.get(sid) == c.conn:
            del self._owner[sid]

    # =============================================================================================
    # introspection (four-letter words)
    # =============================================================================================
    def session_timeouts(self) -> dict[int, int]:
        """{session id: timeout}: the session part of a snapshot."""
        return self.sessions.session_timeouts()

    @property
    def outstanding(self) -> int:
        return len(self._inflight) + sum(
            sum(1 for i in q if not isinstance(i, _Inflight)) for q in self._queues.values()
        )

    def stats(self) -> CoreStats:
        summary = self.watches.summary()
        tree = self.tree
        return CoreStats(
            zxid=tree.last_processed_zxid,
            connections=len(self._conns),
            sessions=len(self.sessions),
            outstanding=self.outstanding,
            node_count=tree.node_count,
            watch_count=self.watches.count,
            watched_paths=summary.paths,
            watching_sessions=summary.connections,
            ephemerals_count=tree.ephemerals_count,
            data_size=tree.approximate_data_size,
            packets_received=self.packets_received,
            packets_sent=self.packets_sent,
            min_latency_ms=self._lat_min,
            avg_latency_ms=self._lat_total / self._lat_count if self._lat_count else 0.0,
            max_latency_ms=self._lat_max,
            session_of={c.conn: c.session_id for c in self._conns.values() if c.session_id},
            timeout_of={c.conn: c.timeout_ms for c in self._conns.values() if c.session_id},
            session_ephemerals=self.sessions_dump(),
        )

    def connections_info(self) -> list[ConnectionInfo]:
        queued: dict[int, int] = {}
        for e in self._inflight:
            if e.conn is not None:
                queued[e.conn] = queued.get(e.conn, 0) + 1
        for q in self._queues.values():
            for i in q:
                if not isinstance(i, _Inflight):
                    queued[i.conn] = queued.get(i.conn, 0) + 1
        return [
            ConnectionInfo(
                conn=c.conn,
                remote_ip=c.remote_ip,
                session_id=c.session_id if c.state == _OPEN else None,
                timeout_ms=c.timeout_ms,
                queued=queued.get(c.conn, 0),
                received=c.received,
                sent=c.sent,
                established_ms=c.established_ms,
                last_op=c.last_op,
                last_cxid=c.last_cxid,
                last_zxid=c.last_zxid,
                last_response_ms=c.last_response_ms,
                last_latency_ms=c.last_latency_ms,
                min_latency_ms=c.min_latency_ms,
                avg_latency_ms=c.total_latency_ms / c.count if c.count else 0.0,
                max_latency_ms=c.max_latency_ms,
            )
            for c in sorted(self._conns.values(), key=lambda c: c.conn)
        ]

    def sessions_dump(self) -> dict[int, tuple[str, ...]]:
        """`dump`: every session that owns ephemerals -> its ephemeral paths, sorted."""
        tree = self.tree
        return {
            sid: tuple(sorted(tree.ephemerals_of(sid)))
            for sid in sorted(tree.sessions_with_ephemerals())
        }

    def session_expiry_buckets(self) -> dict[int, tuple[int, ...]]:
        return self.sessions.expiry_buckets()

    def watch_summary(self) -> WatchesSummary:
        return self.watches.summary()

    def watches_by_session(self) -> dict[int, tuple[str, ...]]:
        """`wchc`: session id -> watched paths (data table, as ZooKeeper)."""
        out: dict[int, tuple[str, ...]] = {}
        for conn, paths in self.watches.by_watcher().items():
            c = self._conns.get(conn)
            if c is not None:
                out[c.session_id] = paths
        return out

    def watches_by_path(self) -> dict[str, tuple[int, ...]]:
        """`wchp`: path -> session ids (data table, as ZooKeeper)."""
        out: dict[str, tuple[int, ...]] = {}
        for path, conns in self.watches.by_path().items():
            out[path] = tuple(sorted(self._conns[w].session_id for w in conns if w in self._conns))
        return out


def _java_string_hash(s: str) -> int:
    h = 0
    b = s.encode("utf-16-be")
    for i in range(0, len(b), 2):
        h = (31 * h + ((b[i] << 8) | b[i + 1])) & 0xFFFFFFFF
    return h


def _java_set_order(ids: list[Id]) -> tuple[Id, ...]:
    """The iteration order of ZooKeeper's `cnxn.authInfo` (a ConcurrentHashMap-backed set of
    Ids, jute's hashCode): whoAmI lists the ids and the "auth" ACL scheme expands them in it."""
    n = 16
    while len(ids) >= n - (n >> 2):  # CHM resizes once size reaches 3/4 of the table
        n <<= 1

    def bin_of(i: Id) -> int:
        h = (37 * 17 + _java_string_hash(i.scheme)) & 0xFFFFFFFF
        h = (37 * h + _java_string_hash(i.id)) & 0xFFFFFFFF
        return ((h ^ (h >> 16)) & 0x7FFFFFFF) & (n - 1)

    return tuple(sorted(ids, key=bin_of))  # stable: insertion order within a bin


def _client_infos(auth: AuthInfo) -> tuple[ClientInfo, ...]:
    """AuthUtil.getClientInfos: user name from the scheme's provider, "" when it has none."""
    out = []
    for i in auth.ids:
        if i.scheme == "digest":
            user = i.id.split(":")[0]
        elif i.scheme == "ip":
            user = i.id
        else:
            user = ""
        out.append(ClientInfo(i.scheme, user))
    return tuple(out)
