"""ServerCore driven with plain inputs; every test asserts the exact effect list."""

from __future__ import annotations

from collections.abc import Sequence

from zkref.core.acl import generate_digest
from zkref.core.effects import Close, Effect, Notify, Persist, Reply, SendConnectResponse
from zkref.core.server import CoreConfig, ServerCore
from zkref.core.sessions import session_password
from zkref.wire.constants import (
    AddWatchMode,
    CreateMode,
    Err,
    EventType,
    KeeperState,
    OpCode,
    WatcherType,
)
from zkref.wire.records import (
    ACL,
    AddWatchRequest,
    AuthPacket,
    CheckVersionRequest,
    CheckWatchesRequest,
    ClientInfo,
    CloseSessionTxn,
    ConnectRequest,
    ConnectResponse,
    CreateRequest,
    CreateResponse,
    CreateSessionTxn,
    CreateTxn,
    DeleteRequest,
    DeleteTxn,
    ErrorResponse,
    ErrorTxn,
    ExistsRequest,
    GetChildrenRequest,
    GetDataRequest,
    GetDataResponse,
    GetSASLRequest,
    Id,
    MultiReadRequest,
    MultiRequest,
    MultiResponse,
    ReconfigRequest,
    RemoveWatchesRequest,
    RequestHeader,
    SetDataRequest,
    SetDataResponse,
    SetSASLResponse,
    SetWatches,
    SetWatches2,
    SyncRequest,
    SyncResponse,
    TxnHeader,
    WatcherEvent,
    WhoAmIResponse,
)

SECRET = b"test-secret"
CFG = CoreConfig(
    server_id=1,
    tick_time_ms=1000,
    min_session_timeout_ms=2000,
    max_session_timeout_ms=20_000,
    secret=SECRET,
    start_ms=0,
)
OPEN_ACL = (ACL(31, Id("world", "anyone")),)
IP = "127.0.0.1"


def ev(t: EventType, path: str, state: KeeperState = KeeperState.SyncConnected) -> WatcherEvent:
    return WatcherEvent(int(t), int(state), path)


def masked(effects: Sequence[Effect]) -> list[Effect]:
    """Close reasons are prose; compare everything else exactly."""
    return [Close(e.conn, "") if isinstance(e, Close) else e for e in effects]


class H:
    """A ServerCore plus shorthand for the usual inputs."""

    def __init__(self, cfg: CoreConfig = CFG, **kw: object) -> None:
        self.core = ServerCore(cfg, **kw)  # type: ignore[arg-type]
        self.now = cfg.start_ms

    def open(self, conn: int, ip: str = IP) -> None:
        assert self.core.connection_opened(conn, ip) == []

    def connect(self, conn: int, timeout: int = 10_000) -> int:
        """Open conn, create a session and complete the handshake."""
        self.open(conn)
        effects = self.core.receive_connect(conn, ConnectRequest(0, 0, timeout, 0, bytes(16)), 0)
        assert len(effects) == 1 and isinstance(effects[0], Persist), effects
        sid = effects[0].hdr.client_id
        effects = self.core.persisted(effects[0].hdr.zxid, 0)
        assert len(effects) == 1 and isinstance(effects[0], SendConnectResponse), effects
        return sid

    def req(self, conn: int, xid: int, op: OpCode, body: object | None = None) -> list[Effect]:
        return self.core.receive_request(conn, RequestHeader(xid, int(op)), body, self.now)

    def write(self, conn: int, xid: int, op: OpCode, body: object | None = None) -> Persist:
        effects = self.req(conn, xid, op, body)
        assert len(effects) == 1 and isinstance(effects[0], Persist), effects
        return effects[0]

    def commit(self) -> list[Effect]:
        return self.core.persisted(1 << 62, self.now)

    def create(self, conn: int, path: str, data: bytes = b"", flags: int = 0) -> list[Effect]:
        self.write(conn, 100, OpCode.create, CreateRequest(path, data, OPEN_ACL, flags))
        return self.commit()

    @property
    def zxid(self) -> int:
        return self.core.tree.last_processed_zxid


# =================================================================================================
# handshake
# =================================================================================================


def test_new_session_is_persisted_before_the_connect_response() -> None:
    h = H()
    h.open(1)
    sid = (1 << 56) | 0  # start_ms 0
    effects = h.core.receive_connect(1, ConnectRequest(0, 0, 10_000, 0, bytes(16)), 5)
    assert effects == [
        Persist(TxnHeader(sid, 0, 1, 5, int(OpCode.createSession)), CreateSessionTxn(10_000))
    ]
    assert h.core.persisted(0, 6) == []
    assert h.core.persisted(1, 7) == [
        SendConnectResponse(1, ConnectResponse(0, 10_000, sid, session_password(SECRET, sid)))
    ]
    assert h.zxid == 1


def test_connection_id_zero_is_a_connection_like_any_other() -> None:
    h = H()
    h.connect(0)
    h.write(0, 1, OpCode.create, CreateRequest("/a", b"", OPEN_ACL, 0))
    assert h.commit() == [Reply(0, 1, 2, 0, CreateResponse("/a"))]
    assert h.core.connections_info()[0].queued == 0


def test_requests_during_the_handshake_wait_for_the_session() -> None:
    h = H()
    h.open(1)
    (p,) = h.core.receive_connect(1, ConnectRequest(0, 0, 10_000, 0, bytes(16)), 0)
    assert isinstance(p, Persist)
    sid = p.hdr.client_id
    assert h.req(1, -2, OpCode.ping) == []
    assert h.core.persisted(1, 0) == [
        SendConnectResponse(1, ConnectResponse(0, 10_000, sid, session_password(SECRET, sid))),
        Reply(1, -2, 1, 0, None),
    ]


def test_timeout_is_negotiated_into_bounds() -> None:
    h = H()
    h.open(1)
    (p,) = h.core.receive_connect(1, ConnectRequest(0, 0, 1, 0, bytes(16)), 0)
    assert isinstance(p, Persist) and p.txn == CreateSessionTxn(2000)
    (r,) = h.core.persisted(1, 0)
    assert isinstance(r, SendConnectResponse) and r.resp.time_out == 2000


def test_old_client_gets_no_read_only_byte() -> None:
    h = H()
    h.open(1)
    req = ConnectRequest(0, 0, 5000, 0, bytes(16), has_read_only=False)
    h.core.receive_connect(1, req, 0)
    (r,) = h.core.persisted(1, 0)
    assert isinstance(r, SendConnectResponse) and r.resp.has_read_only is False


def test_client_zxid_ahead_is_closed_without_answer() -> None:
    h = H()
    h.connect(1)
    h.open(2)
    effects = h.core.receive_connect(2, ConnectRequest(0, h.zxid + 1, 10_000, 0, bytes(16)), 0)
    assert masked(effects) == [Close(2, "")]
    assert h.req(2, 1, OpCode.ping) == []  # the connection is gone


def test_request_before_handshake_closes() -> None:
    h = H()
    h.open(1)
    assert masked(h.req(1, 1, OpCode.getData, GetDataRequest("/", False))) == [Close(1, "")]


def test_second_connect_request_closes() -> None:
    h = H()
    h.connect(1)
    effects = h.core.receive_connect(1, ConnectRequest(0, 0, 10_000, 0, bytes(16)), 0)
    assert masked(effects) == [Close(1, "")]


def test_reattach_moves_the_session_and_closes_the_old_connection() -> None:
    h = H()
    sid = h.connect(1)
    pw = session_password(SECRET, sid)
    h.open(2)
    effects = h.core.receive_connect(2, ConnectRequest(0, h.zxid, 6000, sid, pw), 0)
    assert masked(effects) == [
        Close(1, ""),
        SendConnectResponse(2, ConnectResponse(0, 6000, sid, pw)),
    ]
    # the old connection no longer executes anything
    assert h.req(1, 5, OpCode.setData, SetDataRequest("/", b"x", -1)) == []
    assert h.req(2, 1, OpCode.ping) == [Reply(2, -2, h.zxid, 0, None)]


def test_reattach_while_the_new_session_is_being_persisted() -> None:
    h = H()
    h.open(1)
    (p,) = h.core.receive_connect(1, ConnectRequest(0, 0, 10_000, 0, bytes(16)), 0)
    assert isinstance(p, Persist)
    sid = p.hdr.client_id
    pw = session_password(SECRET, sid)
    h.open(2)
    assert masked(h.core.receive_connect(2, ConnectRequest(0, 0, 10_000, sid, pw), 0)) == [
        Close(1, ""),
        SendConnectResponse(2, ConnectResponse(0, 10_000, sid, pw)),
    ]
    assert h.core.persisted(1, 0) == []
    assert h.req(2, 1, OpCode.whoAmI) == [
        Reply(2, 1, 1, 0, WhoAmIResponse((ClientInfo("ip", IP),)))
    ]


def test_write_in_flight_on_the_old_connection_still_orders_the_new_ones_reads() -> None:
    h = H()
    sid = h.connect(1)
    h.create(1, "/a", b"0")
    h.write(1, 1, OpCode.setData, SetDataRequest("/a", b"1", -1))
    h.open(2)
    pw = session_password(SECRET, sid)
    h.core.receive_connect(2, ConnectRequest(0, h.zxid, 10_000, sid, pw), 0)
    # same session: the read waits for the write sent on the old connection
    assert h.req(2, 1, OpCode.getData, GetDataRequest("/a", False)) == []
    (r,) = h.commit()  # the old connection's reply has nowhere to go
    assert isinstance(r, Reply) and r.conn == 2 and r.xid == 1
    assert isinstance(r.body, GetDataResponse) and r.body.data == b"1"


def test_lost_connection_write_is_applied_without_reply() -> None:
    h = H()
    h.connect(1)
    h.write(1, 1, OpCode.create, CreateRequest("/a", b"", OPEN_ACL, 0))
    h.req(1, 2, OpCode.exists, ExistsRequest("/a", False))
    h.core.connection_lost(1, 0)
    assert h.commit() == []
    assert h.core.tree.get("/a") is not None
    assert h.core.outstanding == 0


def test_reattach_with_wrong_password_is_answered_as_expired() -> None:
    h = H()
    sid = h.connect(1)
    h.open(2)
    effects = h.core.receive_connect(2, ConnectRequest(0, 0, 6000, sid, bytes(16)), 0)
    # ZooKeeper closes the session's current connection before it checks the password
    assert masked(effects) == [
        Close(1, ""),
        SendConnectResponse(2, ConnectResponse(0, 0, 0, bytes(16))),
        Close(2, ""),
    ]
    # the session itself is still alive: the right password gets it back
    h.open(3)
    effects = h.core.receive_connect(
        3, ConnectRequest(0, 0, 6000, sid, h.core.sessions.password(sid)), 0
    )
    assert isinstance(effects[0], SendConnectResponse) and effects[0].resp.session_id == sid


def test_reattach_to_unknown_session() -> None:
    h = H()
    h.open(1)
    sid = 12345
    effects = h.core.receive_connect(
        1, ConnectRequest(0, 0, 6000, sid, session_password(SECRET, sid)), 0
    )
    assert masked(effects) == [
        SendConnectResponse(1, ConnectResponse(0, 0, 0, bytes(16))),
        Close(1, ""),
    ]


def test_connection_lost_keeps_the_session_and_drops_watches() -> None:
    h = H()
    sid = h.connect(1)
    h.create(1, "/a")
    h.req(1, 1, OpCode.getData, GetDataRequest("/a", True))
    assert h.core.watches.count == 1
    assert h.core.connection_lost(1, 0) == []
    assert h.core.watches.count == 0
    h.open(2)
    pw = session_password(SECRET, sid)
    effects = h.core.receive_connect(2, ConnectRequest(0, h.zxid, 10_000, sid, pw), 100)
    assert effects == [SendConnectResponse(2, ConnectResponse(0, 10_000, sid, pw))]


def test_restored_sessions_can_reattach_after_restart() -> None:
    h = H()
    sid = h.connect(1)
    h.create(1, "/e", flags=int(CreateMode.EPHEMERAL))
    tree = h.core.tree
    h2 = H(
        CoreConfig(server_id=1, secret=SECRET, start_ms=50_000), tree=tree, sessions={sid: 10_000}
    )
    h2.open(9)
    pw = session_password(SECRET, sid)
    effects = h2.core.receive_connect(
        9, ConnectRequest(0, tree.last_processed_zxid, 10_000, sid, pw), 50_000
    )
    assert effects == [SendConnectResponse(9, ConnectResponse(0, 10_000, sid, pw))]
    # new writes continue the zxid sequence of the restored tree
    h2.now = 50_000
    p = h2.write(9, 1, OpCode.setData, SetDataRequest("/e", b"1", -1))
    assert p.hdr.zxid == tree.last_processed_zxid + 1


# =================================================================================================
# requests
# =================================================================================================


def test_ping_and_hot_read_are_answered_at_once() -> None:
    h = H()
    h.connect(1)
    h.create(1, "/a", b"v")
    z = h.zxid
    assert h.req(1, -2, OpCode.ping) == [Reply(1, -2, z, 0, None)]
    (r,) = h.req(1, 7, OpCode.getData, GetDataRequest("/a", False))
    assert isinstance(r, Reply) and (r.conn, r.xid, r.zxid, r.err) == (1, 7, z, 0)
    assert isinstance(r.body, GetDataResponse) and r.body.data == b"v"


def test_read_error_has_no_body_and_tree_zxid() -> None:
    h = H()
    h.connect(1)
    assert h.req(1, 3, OpCode.getData, GetDataRequest("/nope", False)) == [
        Reply(1, 3, h.zxid, int(Err.NONODE), None)
    ]


def test_write_is_persisted_then_answered_with_its_zxid() -> None:
    h = H()
    sid = h.connect(1)
    h.now = 42
    p = h.write(1, 9, OpCode.create, CreateRequest("/a", b"x", OPEN_ACL, 0))
    assert p == Persist(
        TxnHeader(sid, 9, 2, 42, int(OpCode.create)), CreateTxn("/a", b"x", OPEN_ACL, False, 1)
    )
    assert h.core.persisted(1, 42) == []  # not yet durable
    assert h.core.persisted(2, 43) == [Reply(1, 9, 2, 0, CreateResponse("/a"))]


def test_failed_write_uses_a_zxid_and_answers_its_error() -> None:
    h = H()
    sid = h.connect(1)
    p = h.write(1, 4, OpCode.create, CreateRequest("/x/y", b"", OPEN_ACL, 0))
    assert p == Persist(TxnHeader(sid, 4, 2, 0, int(OpCode.error)), ErrorTxn(int(Err.NONODE)))
    assert h.commit() == [Reply(1, 4, 2, int(Err.NONODE), None)]


def test_failed_multi_answers_ok_header_with_error_results() -> None:
    h = H()
    h.connect(1)
    ops = MultiRequest(
        (
            (int(OpCode.create), CreateRequest("/m", b"", OPEN_ACL, 0)),
            (int(OpCode.check), CheckVersionRequest("/m", 5)),
            (int(OpCode.delete), DeleteRequest("/zz", -1)),
        )
    )
    h.write(1, 6, OpCode.multi, ops)
    assert h.commit() == [
        Reply(
            1,
            6,
            2,
            0,
            MultiResponse(
                (
                    (-1, ErrorResponse(0)),
                    (-1, ErrorResponse(int(Err.BADVERSION))),
                    (-1, ErrorResponse(int(Err.RUNTIMEINCONSISTENCY))),
                )
            ),
        )
    ]
    assert h.core.tree.get("/m") is None


def test_reads_wait_behind_the_sessions_pending_writes_only() -> None:
    h = H()
    h.connect(1)
    h.connect(2)
    h.create(1, "/a", b"0")
    z0 = h.zxid
    h.write(1, 1, OpCode.setData, SetDataRequest("/a", b"1", -1))
    assert h.req(1, 2, OpCode.getData, GetDataRequest("/a", False)) == []
    assert h.req(1, -2, OpCode.ping) == []
    # another session is not held up, and sees the applied state
    (other,) = h.req(2, 1, OpCode.getData, GetDataRequest("/a", False))
    assert isinstance(other, Reply) and isinstance(other.body, GetDataResponse)
    assert other.body.data == b"0" and other.zxid == z0
    effects = h.commit()
    assert [(type(e).__name__, getattr(e, "xid", None)) for e in effects] == [
        ("Reply", 1),
        ("Reply", 2),
        ("Reply", -2),
    ]
    read = effects[1]
    assert isinstance(read, Reply) and isinstance(read.body, GetDataResponse)
    assert read.body.data == b"1" and read.zxid == z0 + 1


def test_reads_between_writes_see_the_state_after_their_predecessor() -> None:
    h = H()
    h.connect(1)
    h.create(1, "/a", b"0")
    h.write(1, 1, OpCode.setData, SetDataRequest("/a", b"1", -1))
    h.req(1, 2, OpCode.getData, GetDataRequest("/a", False))
    h.write(1, 3, OpCode.setData, SetDataRequest("/a", b"2", -1))
    h.req(1, 4, OpCode.getData, GetDataRequest("/a", False))
    effects = h.commit()
    bodies = [e.body for e in effects if isinstance(e, Reply)]
    assert [e.xid for e in effects if isinstance(e, Reply)] == [1, 2, 3, 4]
    assert isinstance(bodies[1], GetDataResponse) and bodies[1].data == b"1"
    assert isinstance(bodies[3], GetDataResponse) and bodies[3].data == b"2"


def test_partial_persist_releases_only_what_it_covers() -> None:
    h = H()
    h.connect(1)
    p1 = h.write(1, 1, OpCode.create, CreateRequest("/a", b"", OPEN_ACL, 0))
    h.req(1, 2, OpCode.exists, ExistsRequest("/a", False))
    h.write(1, 3, OpCode.create, CreateRequest("/b", b"", OPEN_ACL, 0))
    h.req(1, 4, OpCode.exists, ExistsRequest("/b", False))
    first = h.core.persisted(p1.hdr.zxid, 0)
    z = p1.hdr.zxid
    assert [(e.xid, e.zxid) for e in first if isinstance(e, Reply)] == [(1, z), (2, z)]
    rest = h.commit()
    assert [(e.xid, e.zxid) for e in rest if isinstance(e, Reply)] == [(3, z + 1), (4, z + 1)]
    assert h.core.outstanding == 0


def test_multi_read_sets_no_watches_as_zookeeper_3_8() -> None:
    h = H()
    h.connect(1)
    h.connect(2)
    h.create(1, "/a")
    h.create(1, "/b")
    mr = MultiReadRequest(
        (
            (int(OpCode.getData), GetDataRequest("/a", True)),
            (int(OpCode.getChildren), GetChildrenRequest("/b", True)),
        )
    )
    (r,) = h.req(2, 1, OpCode.multiRead, mr)
    assert isinstance(r, Reply) and r.err == 0
    h.write(1, 2, OpCode.setData, SetDataRequest("/a", b"x", -1))
    assert not any(isinstance(e, Notify) for e in h.commit())
    assert not any(isinstance(e, Notify) for e in h.create(1, "/b/c"))


def test_queued_request_with_a_body_of_the_wrong_type_is_a_marshalling_error() -> None:
    h = H()
    h.connect(1)
    h.write(1, 1, OpCode.create, CreateRequest("/a", b"", OPEN_ACL, 0))
    assert h.req(1, 2, OpCode.getData, SyncRequest("/a")) == []
    assert h.commit() == [
        Reply(1, 1, 2, 0, CreateResponse("/a")),
        Reply(1, 2, 2, int(Err.MARSHALLINGERROR), None),
    ]


def test_sync_waits_for_earlier_writes() -> None:
    h = H()
    h.connect(1)
    h.write(1, 1, OpCode.create, CreateRequest("/a", b"", OPEN_ACL, 0))
    assert h.req(1, 2, OpCode.sync, SyncRequest("/a")) == []
    assert h.commit() == [
        Reply(1, 1, 2, 0, CreateResponse("/a")),
        Reply(1, 2, 2, 0, SyncResponse("/a")),
    ]
    assert h.req(1, 3, OpCode.sync, SyncRequest("/q")) == [Reply(1, 3, 2, 0, SyncResponse("/q"))]


def test_unknown_opcode_is_unimplemented() -> None:
    h = H()
    h.connect(1)
    # UnimplementedRequestProcessor answers and closes (Apache ZooKeeper 3.8 does the same)
    assert masked(h.core.receive_request(1, RequestHeader(5, 999), None, 0)) == [
        Reply(1, 5, -1, int(Err.UNIMPLEMENTED), None),
        Close(1, ""),
    ]


def test_check_outside_multi_is_applied_but_never_answered() -> None:
    # Apache ZooKeeper 3.8 applies the CheckVersionTxn, then fails to serialize its reply
    h = H()
    h.connect(1)
    h.write(1, 1, OpCode.check, CheckVersionRequest("/", -1))
    assert h.commit() == []
    assert h.zxid == 2
    h.write(1, 2, OpCode.check, CheckVersionRequest("/", 7))
    assert h.commit() == [Reply(1, 2, 3, int(Err.BADVERSION), None)]


def test_reconfig_is_disabled() -> None:
    h = H()
    sid = h.connect(1)
    p = h.write(1, 5, OpCode.reconfig, ReconfigRequest(None, None, "server.1=x:1:2", -1))
    assert p == Persist(
        TxnHeader(sid, 5, 2, 0, int(OpCode.error)), ErrorTxn(int(Err.RECONFIGDISABLED))
    )
    assert h.commit() == [Reply(1, 5, 2, int(Err.RECONFIGDISABLED), None)]


def test_sasl_without_sasl_configured() -> None:
    h = H()
    h.connect(1)
    assert h.req(1, 3, OpCode.sasl, GetSASLRequest(b"")) == [
        Reply(1, 3, 0, 0, SetSASLResponse(None))
    ]


# =================================================================================================
# watches through the server
# =================================================================================================


def test_watch_event_goes_out_before_the_writes_reply() -> None:
    h = H()
    h.connect(1)
    h.connect(2)
    h.create(1, "/a")
    h.req(2, 1, OpCode.getData, GetDataRequest("/a", True))
    h.write(1, 2, OpCode.setData, SetDataRequest("/a", b"n", -1))
    effects = h.commit()
    assert effects[0] == Notify(2, ev(EventType.NodeDataChanged, "/a"), -1)
    assert isinstance(effects[1], Reply) and effects[1].conn == 1 and effects[1].xid == 2
    assert len(effects) == 2
    # one-shot
    h.write(1, 3, OpCode.setData, SetDataRequest("/a", b"m", -1))
    assert [type(e) for e in h.commit()] == [Reply]


def test_own_watch_event_precedes_own_reply_and_queued_read() -> None:
    h = H()
    h.connect(1)
    h.create(1, "/a")
    h.req(1, 1, OpCode.exists, ExistsRequest("/a", True))
    h.write(1, 2, OpCode.delete, DeleteRequest("/a", -1))
    h.req(1, 3, OpCode.exists, ExistsRequest("/a", False))
    z = h.zxid + 1
    assert h.commit() == [
        Notify(1, ev(EventType.NodeDeleted, "/a"), -1),
        Reply(1, 2, z, 0, None),
        Reply(1, 3, z, int(Err.NONODE), None),
    ]


def test_create_fires_exist_watch_and_parent_child_watch() -> None:
    h = H()
    h.connect(1)
    h.connect(2)
    h.create(1, "/p")
    assert h.req(2, 1, OpCode.exists, ExistsRequest("/p/c", True)) == [
        Reply(2, 1, h.zxid, int(Err.NONODE), None)
    ]
    h.req(2, 2, OpCode.getChildren, GetChildrenRequest("/p", True))
    h.write(1, 3, OpCode.create, CreateRequest("/p/c", b"", OPEN_ACL, 0))
    assert h.commit() == [
        Notify(2, ev(EventType.NodeCreated, "/p/c"), -1),
        Notify(2, ev(EventType.NodeChildrenChanged, "/p"), -1),
        Reply(1, 3, h.zxid, 0, CreateResponse("/p/c")),
    ]


def test_add_watch_persistent_recursive_through_the_server() -> None:
    h = H()
    h.connect(1)
    h.connect(2)
    assert h.req(
        2, 1, OpCode.addWatch, AddWatchRequest("/r", int(AddWatchMode.PERSISTENT_RECURSIVE))
    ) == [Reply(2, 1, h.zxid, 0, ErrorResponse(0))]
    effects = h.create(1, "/r")
    assert effects[0] == Notify(2, ev(EventType.NodeCreated, "/r"), -1)
    effects = h.create(1, "/r/x")
    # NodeCreated for the child; never NodeChildrenChanged for /r
    assert effects[:-1] == [Notify(2, ev(EventType.NodeCreated, "/r/x"), -1)]
    effects = h.create(1, "/r/x/y")
    assert effects[:-1] == [Notify(2, ev(EventType.NodeCreated, "/r/x/y"), -1)]
    assert h.req(2, 2, OpCode.addWatch, AddWatchRequest("/r", 7)) == [
        Reply(2, 2, h.zxid, int(Err.MARSHALLINGERROR), None)
    ]


def test_add_watch_persistent_sees_children_and_stays() -> None:
    h = H()
    h.connect(1)
    h.connect(2)
    h.create(1, "/p")
    h.req(2, 1, OpCode.addWatch, AddWatchRequest("/p", int(AddWatchMode.PERSISTENT)))
    for name in ("a", "b"):
        effects = h.create(1, f"/p/{name}")
        assert effects[:-1] == [Notify(2, ev(EventType.NodeChildrenChanged, "/p"), -1)]


def test_check_and_remove_watches() -> None:
    h = H()
    h.connect(1)
    h.create(1, "/a")
    z = h.zxid
    data = int(WatcherType.Data)
    assert h.req(1, 1, OpCode.checkWatches, CheckWatchesRequest("/a", data)) == [
        Reply(1, 1, z, int(Err.NOWATCHER), None)
    ]
    h.req(1, 2, OpCode.getData, GetDataRequest("/a", True))
    assert h.req(1, 3, OpCode.checkWatches, CheckWatchesRequest("/a", data)) == [
        Reply(1, 3, z, 0, None)
    ]
    children = int(WatcherType.Children)
    assert h.req(1, 4, OpCode.removeWatches, RemoveWatchesRequest("/a", children)) == [
        Reply(1, 4, z, int(Err.NOWATCHER), None)
    ]
    assert h.req(1, 5, OpCode.removeWatches, RemoveWatchesRequest("/a", data)) == [
        Reply(1, 5, z, 0, None)
    ]
    assert h.req(1, 6, OpCode.removeWatches, RemoveWatchesRequest("/a", data)) == [
        Reply(1, 6, z, int(Err.NOWATCHER), None)
    ]
    assert h.req(1, 7, OpCode.removeWatches, RemoveWatchesRequest("/a", 9)) == [
        Reply(1, 7, z, int(Err.MARSHALLINGERROR), None)
    ]
    # removed: the next change notifies nobody
    h.write(1, 8, OpCode.setData, SetDataRequest("/a", b"x", -1))
    assert [type(e) for e in h.commit()] == [Reply]


def test_watches_are_per_connection() -> None:
    h = H()
    h.connect(1)
    h.connect(2)
    h.create(1, "/a")
    h.req(1, 1, OpCode.getData, GetDataRequest("/a", True))
    z = h.zxid
    # 3.8's containsWatcher answers for the path, whoever holds the watch
    assert h.req(2, 2, OpCode.checkWatches, CheckWatchesRequest("/a", int(WatcherType.Any))) == [
        Reply(2, 2, z, 0, None)
    ]
    # but removal only takes the caller's own
    assert h.req(2, 3, OpCode.removeWatches, RemoveWatchesRequest("/a", int(WatcherType.Any))) == [
        Reply(2, 3, z, int(Err.NOWATCHER), None)
    ]
    h.write(2, 4, OpCode.setData, SetDataRequest("/a", b"x", -1))
    assert h.commit()[0] == Notify(1, ev(EventType.NodeDataChanged, "/a"), -1)


def test_watches_are_per_connection_in_3_9() -> None:
    h = H(CoreConfig(server_id=1, secret=SECRET, compat_3_9=True))
    h.connect(1)
    h.connect(2)
    h.create(1, "/a")
    h.req(1, 1, OpCode.getData, GetDataRequest("/a", True))
    assert h.req(2, 2, OpCode.checkWatches, CheckWatchesRequest("/a", int(WatcherType.Any))) == [
        Reply(2, 2, h.zxid, int(Err.NOWATCHER), None)
    ]
    # 3.9 puts the firing zxid in the notification
    h.write(2, 3, OpCode.setData, SetDataRequest("/a", b"x", -1))
    assert h.commit()[0] == Notify(1, ev(EventType.NodeDataChanged, "/a"), h.zxid)


def test_persistent_watch_types_are_a_marshalling_error_in_3_8() -> None:
    h = H()
    h.connect(1)
    h.req(1, 1, OpCode.addWatch, AddWatchRequest("/", int(AddWatchMode.PERSISTENT)))
    for t in (WatcherType.Persistent, WatcherType.PersistentRecursive):
        assert h.req(1, 2, OpCode.removeWatches, RemoveWatchesRequest("/", int(t))) == [
            Reply(1, 2, h.zxid, int(Err.MARSHALLINGERROR), None)
        ]
        assert h.req(1, 3, OpCode.checkWatches, CheckWatchesRequest("/", int(t))) == [
            Reply(1, 3, h.zxid, int(Err.MARSHALLINGERROR), None)
        ]
    # in 3.8 a Data removal takes the persistent watch whatever its mode
    assert h.req(1, 4, OpCode.removeWatches, RemoveWatchesRequest("/", int(WatcherType.Data))) == [
        Reply(1, 4, h.zxid, 0, None)
    ]


def test_persistent_watch_types_in_3_9() -> None:
    h = H(CoreConfig(server_id=1, secret=SECRET, compat_3_9=True))
    h.connect(1)
    h.req(1, 1, OpCode.addWatch, AddWatchRequest("/", int(AddWatchMode.PERSISTENT)))
    data, pers = int(WatcherType.Data), int(WatcherType.Persistent)
    assert h.req(1, 2, OpCode.removeWatches, RemoveWatchesRequest("/", data)) == [
        Reply(1, 2, h.zxid, int(Err.NOWATCHER), None)
    ]
    assert h.req(1, 3, OpCode.removeWatches, RemoveWatchesRequest("/", pers)) == [
        Reply(1, 3, h.zxid, 0, None)
    ]


def test_set_watches_fires_for_changes_after_relative_zxid() -> None:
    h = H()
    h.connect(1)
    h.create(1, "/same")
    h.create(1, "/changed")
    h.create(1, "/kids")
    h.create(1, "/quiet")
    rel = h.zxid
    h.write(1, 1, OpCode.setData, SetDataRequest("/changed", b"x", -1))
    h.write(1, 2, OpCode.create, CreateRequest("/kids/k", b"", OPEN_ACL, 0))
    h.commit()
    h.connect(2)
    sw = SetWatches(
        rel,
        data_watches=("/same", "/changed", "/gone", "/kids"),
        exist_watches=("/same", "/absent"),
        child_watches=("/kids", "/same", "/gone2", "/quiet"),
    )
    assert h.req(2, -8, OpCode.setWatches, sw) == [
        Notify(2, ev(EventType.NodeDataChanged, "/changed"), -1),
        Notify(2, ev(EventType.NodeDeleted, "/gone"), -1),
        Notify(2, ev(EventType.NodeCreated, "/same"), -1),
        Notify(2, ev(EventType.NodeChildrenChanged, "/kids"), -1),
        Notify(2, ev(EventType.NodeDeleted, "/gone2"), -1),
        Reply(2, -8, h.zxid, 0, None),
    ]
    # the quiet ones are registered: data on /same, exist on /absent, child on /same
    h.write(1, 3, OpCode.setData, SetDataRequest("/same", b"y", -1))
    assert h.commit()[0] == Notify(2, ev(EventType.NodeDataChanged, "/same"), -1)
    h.write(1, 4, OpCode.create, CreateRequest("/absent", b"", OPEN_ACL, 0))
    assert h.commit()[0] == Notify(2, ev(EventType.NodeCreated, "/absent"), -1)
    h.write(1, 5, OpCode.create, CreateRequest("/same/c", b"", OPEN_ACL, 0))
    assert h.commit()[0] == Notify(2, ev(EventType.NodeChildrenChanged, "/same"), -1)
    # /quiet had pzxid == relative zxid: registered, not fired
    h.write(1, 7, OpCode.create, CreateRequest("/quiet/q", b"", OPEN_ACL, 0))
    assert h.commit()[0] == Notify(2, ev(EventType.NodeChildrenChanged, "/quiet"), -1)
    # /kids: data watch registered although its children changed
    h.write(1, 6, OpCode.setData, SetDataRequest("/kids", b"z", -1))
    assert h.commit()[0] == Notify(2, ev(EventType.NodeDataChanged, "/kids"), -1)


def test_set_watches2_registers_persistent_watches_without_replay() -> None:
    h = H()
    h.connect(1)
    h.create(1, "/p")
    h.connect(2)
    sw = SetWatches2(
        0, (), (), (), persistent_watches=("/p",), persistent_recursive_watches=("/r",)
    )
    assert h.req(2, -8, OpCode.setWatches2, sw) == [Reply(2, -8, h.zxid, 0, None)]
    effects = h.create(1, "/p/c")
    assert effects[0] == Notify(2, ev(EventType.NodeChildrenChanged, "/p"), -1)
    h.create(1, "/r")
    effects = h.create(1, "/r/c")
    assert effects[0] == Notify(2, ev(EventType.NodeCreated, "/r/c"), -1)


def test_set_watches_waits_behind_pending_writes() -> None:
    h = H()
    h.connect(1)
    h.create(1, "/a")
    rel = h.zxid
    h.write(1, 1, OpCode.setData, SetDataRequest("/a", b"x", -1))
    assert h.req(1, -8, OpCode.setWatches, SetWatches(rel, ("/a",), (), ())) == []
    assert h.commit() == [
        Reply(1, 1, h.zxid, 0, SetDataResponse(h.core.tree.get("/a").stat())),  # type: ignore[union-attr]
        Notify(1, ev(EventType.NodeDataChanged, "/a"), -1),
        Reply(1, -8, h.zxid, 0, None),
    ]


# =================================================================================================
# close and expiry
# =================================================================================================


def test_close_session_deletes_ephemerals_notifies_then_replies_and_closes() -> None:
    h = H()
    sid = h.connect(1)
    h.connect(2)
    h.create(1, "/e", flags=int(CreateMode.EPHEMERAL))
    h.req(2, 1, OpCode.exists, ExistsRequest("/e", True))
    p = h.write(1, 9, OpCode.closeSession)
    assert p == Persist(
        TxnHeader(sid, 9, h.zxid + 1, 0, int(OpCode.closeSession)), CloseSessionTxn(("/e",))
    )
    # nothing more executes on a closing session, ephemeral creates included: what follows the
    # closeSession is answered SessionExpired, in order, before the connection closes
    assert h.req(1, 10, OpCode.create, CreateRequest("/e2", b"", OPEN_ACL, 1)) == []
    assert h.req(1, 11, OpCode.ping) == []
    z = h.zxid + 1
    assert masked(h.commit()) == [
        Notify(2, ev(EventType.NodeDeleted, "/e"), -1),
        Reply(1, 9, z, 0, None),
        Reply(1, 10, z, int(Err.SESSIONEXPIRED), None),
        Reply(1, 11, z, int(Err.SESSIONEXPIRED), None),
        Close(1, ""),
    ]
    assert sid not in h.core.sessions
    assert h.core.tree.get("/e") is None


def test_expiry_closes_the_session_through_a_txn() -> None:
    h = H()
    sid = h.connect(1, timeout=2000)  # bucket at 3000
    h.connect(2, timeout=20_000)
    h.create(1, "/e", flags=int(CreateMode.EPHEMERAL))
    h.req(2, 1, OpCode.exists, ExistsRequest("/e", True))
    assert h.core.tick(2999) == []
    z = h.zxid + 1
    assert h.core.tick(3000) == [
        Persist(TxnHeader(sid, 0, z, 3000, int(OpCode.closeSession)), CloseSessionTxn(("/e",)))
    ]
    # the expiring session's packets are dropped, and it cannot be re-attached
    h.now = 3000
    assert h.req(1, 5, OpCode.ping) == []
    assert masked(h.core.persisted(z, 3001)) == [
        Notify(2, ev(EventType.NodeDeleted, "/e"), -1),
        Close(1, ""),
    ]
    h.open(3)
    effects = h.core.receive_connect(
        3, ConnectRequest(0, 0, 2000, sid, session_password(SECRET, sid)), 3002
    )
    assert masked(effects) == [
        SendConnectResponse(3, ConnectResponse(0, 0, 0, bytes(16))),
        Close(3, ""),
    ]


def test_packets_keep_a_session_alive() -> None:
    h = H()
    h.connect(1, timeout=2000)  # bucket 3000
    h.now = 2500
    assert h.req(1, -2, OpCode.ping) == [Reply(1, -2, h.zxid, 0, None)]  # -> bucket 5000
    assert h.core.tick(3000) == []
    assert len(h.core.tick(5000)) == 1


def test_session_outlives_lost_connection_until_expiry() -> None:
    h = H()
    sid = h.connect(1, timeout=2000)
    h.core.connection_lost(1, 10)
    (p,) = h.core.tick(3000)
    assert isinstance(p, Persist) and p.hdr.client_id == sid
    assert h.core.persisted(p.hdr.zxid, 3000) == []


def test_containers_are_reaped_on_the_check_interval() -> None:
    cfg = CoreConfig(
        server_id=1,
        tick_time_ms=1000,
        min_session_timeout_ms=2000,
        max_session_timeout_ms=100_000,
        secret=SECRET,
        container_check_interval_ms=10_000,
    )
    h = H(cfg)
    h.connect(1, timeout=100_000)
    h.write(
        1, 1, OpCode.createContainer, CreateRequest("/c", b"", OPEN_ACL, int(CreateMode.CONTAINER))
    )
    h.create(1, "/c/x")
    h.write(1, 2, OpCode.delete, DeleteRequest("/c/x", -1))
    h.commit()
    assert h.core.tick(9_999) == []
    z = h.zxid + 1
    assert h.core.tick(10_000) == [
        Persist(TxnHeader(0, 0, z, 10_000, int(OpCode.deleteContainer)), DeleteTxn("/c"))
    ]
    assert h.core.tick(20_000) == []  # already on its way
    assert h.core.persisted(z, 20_001) == []
    assert h.core.tree.get("/c") is None


# =================================================================================================
# auth
# =================================================================================================


def test_digest_auth_adds_the_id_to_the_connection() -> None:
    h = H()
    h.connect(1)
    assert h.req(1, -4, OpCode.auth, AuthPacket(0, "digest", b"a:b")) == [Reply(1, -4, 0, 0, None)]
    digest = generate_digest("a:b")
    # ids in the order of ZooKeeper's hash set (Apache ZooKeeper 3.8 lists these two so)
    assert h.req(1, 2, OpCode.whoAmI) == [
        Reply(1, 2, h.zxid, 0, WhoAmIResponse((ClientInfo("digest", "a"), ClientInfo("ip", IP))))
    ]
    acl = (ACL(31, Id("digest", digest)),)
    h.write(1, 3, OpCode.create, CreateRequest("/s", b"x", acl, 0))
    h.commit()
    (r,) = h.req(1, 4, OpCode.getData, GetDataRequest("/s", False))
    assert isinstance(r, Reply) and r.err == 0
    h.connect(2)
    assert h.req(2, 5, OpCode.getData, GetDataRequest("/s", False)) == [
        Reply(2, 5, h.zxid, int(Err.NOAUTH), None)
    ]


def test_super_digest_grants_everything() -> None:
    sup = generate_digest("super:secret")
    h = H(CoreConfig(server_id=1, secret=SECRET, super_digest=sup))
    h.connect(1)
    h.write(1, 1, OpCode.create, CreateRequest("/s", b"x", (ACL(31, Id("digest", "x:y")),), 0))
    h.commit()
    h.connect(2)
    assert h.req(2, -4, OpCode.auth, AuthPacket(0, "digest", b"super:secret")) == [
        Reply(2, -4, 0, 0, None)
    ]
    (r,) = h.req(2, 2, OpCode.getData, GetDataRequest("/s", False))
    assert isinstance(r, Reply) and r.err == 0
    (w,) = h.req(2, 3, OpCode.whoAmI)
    assert isinstance(w, Reply) and isinstance(w.body, WhoAmIResponse)
    assert sorted(w.body.client_info, key=lambda i: i.auth_scheme) == [
        ClientInfo("digest", "super"),
        ClientInfo("ip", IP),
        ClientInfo("super", ""),
    ]


def test_unknown_auth_scheme_fails_and_closes() -> None:
    h = H()
    h.connect(1)
    assert masked(h.req(1, -4, OpCode.auth, AuthPacket(0, "kerberos", b"x"))) == [
        Reply(1, -4, 0, int(Err.AUTHFAILED), None),
        Close(1, ""),
    ]
    assert h.req(1, -2, OpCode.ping) == []


def test_auth_is_not_queued_behind_writes() -> None:
    h = H()
    h.connect(1)
    h.write(1, 1, OpCode.create, CreateRequest("/a", b"", OPEN_ACL, 0))
    assert h.req(1, -4, OpCode.auth, AuthPacket(0, "ip", b"")) == [Reply(1, -4, 0, 0, None)]


# =================================================================================================
# introspection
# =================================================================================================


def test_stats_and_dumps() -> None:
    h = H()
    sid = h.connect(1)
    h.connect(2)
    h.create(1, "/e", b"abc", flags=int(CreateMode.EPHEMERAL))
    h.req(2, 1, OpCode.getData, GetDataRequest("/e", True))
    h.write(1, 2, OpCode.setData, SetDataRequest("/e", b"", -1))
    h.req(1, 3, OpCode.exists, ExistsRequest("/e", False))
    st = h.core.stats()
    assert (st.connections, st.sessions, st.outstanding) == (2, 2, 2)
    assert (st.watch_count, st.watched_paths, st.watching_sessions) == (1, 1, 1)
    assert st.ephemerals_count == 1
    assert st.zxid == h.zxid
    assert st.session_of[1] == sid
    assert h.core.sessions_dump() == {sid: ("/e",)}
    info = {c.conn: c for c in h.core.connections_info()}
    assert info[1].queued == 2 and info[1].session_id == sid and info[1].last_op == "CREA"
    assert info[2].last_op == "GETD"
    assert h.core.watches_by_path() == {"/e": (h.core.stats().session_of[2],)}
    h.commit()
    assert h.core.stats().outstanding == 0


# =================================================================================================
# malformed bodies (the shell could decode the header but not the body)
# =================================================================================================


def test_malformed_write_takes_a_zxid_and_answers_marshalling_error() -> None:
    h = H()
    sid = h.connect(1)
    effects = h.core.receive_malformed(1, RequestHeader(5, int(OpCode.create)), 7)
    assert effects == [
        Persist(TxnHeader(sid, 5, 2, 7, int(OpCode.error)), ErrorTxn(int(Err.MARSHALLINGERROR)))
    ]
    assert h.commit() == [Reply(1, 5, 2, int(Err.MARSHALLINGERROR), None)]
    # the connection stays usable
    assert h.req(1, 6, OpCode.exists, ExistsRequest("/", False))[0].err == 0  # type: ignore[union-attr]


def test_malformed_read_keeps_its_place_behind_pending_writes() -> None:
    h = H()
    h.connect(1)
    h.write(1, 1, OpCode.create, CreateRequest("/a", b"", OPEN_ACL, 0))
    assert h.core.receive_malformed(1, RequestHeader(2, int(OpCode.getData)), 0) == []
    assert h.commit() == [
        Reply(1, 1, 2, 0, CreateResponse("/a")),
        Reply(1, 2, 2, int(Err.MARSHALLINGERROR), None),
    ]
    assert h.zxid == 2  # a malformed read takes no zxid


def test_malformed_request_before_handshake_closes() -> None:
    h = H()
    h.open(1)
    effects = h.core.receive_malformed(1, RequestHeader(1, int(OpCode.getData)), 0)
    assert [type(e) for e in effects] == [Close]
