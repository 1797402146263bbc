"""Property test: ServerCore under random interleavings of requests and partial persists.

Oracles (ZooKeeper's client guarantees, as seen from the effect stream):
- every request gets exactly one reply, on its own connection, in request order (FIFO per session);
- reply zxids never go backwards on a connection (a client never sees older state than it did);
- a read answered after the same session's write sees that write (read your writes);
- a watch notification precedes, on the watcher's connection, every reply that could show the
  change: a getData reply carrying mzxid > the watch's registration point comes after the event;
- persisting in any batching gives the same tree as persisting one by one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import example, given, settings
from hypothesis import strategies as st

from zkref.core.effects import Effect, Notify, Persist, Reply, SendConnectResponse
from zkref.core.server import CoreConfig, ServerCore
from zkref.wire.constants import EventType, OpCode
from zkref.wire.records import (
    ACL,
    ConnectRequest,
    CreateRequest,
    DeleteRequest,
    ExistsRequest,
    GetDataRequest,
    GetDataResponse,
    Id,
    RequestHeader,
    SetDataRequest,
    SetDataResponse,
    SyncRequest,
)

OPEN_ACL = (ACL(31, Id("world", "anyone")),)
KEYS = ("/k0", "/k1")
CONNS = (1, 2, 3)

Action = tuple[str, int, int]  # (kind, conn index, key index / batch size)

actions = st.lists(
    st.tuples(
        st.sampled_from(["get", "getw", "set", "create", "delete", "exists", "sync", "persist"]),
        st.integers(0, len(CONNS) - 1),
        st.integers(0, 3),
    ),
    max_size=60,
)


@dataclass
class ConnLog:
    next_xid: int = 1
    sent: list[tuple[int, str, str]] = field(default_factory=list)  # (xid, kind, key)
    events: list[Effect] = field(default_factory=list)


def run(script: list[Action], batch: bool) -> tuple[ServerCore, dict[int, ConnLog]]:
    core = ServerCore(CoreConfig(server_id=1, secret=b"p", max_session_timeout_ms=10**9))
    logs: dict[int, ConnLog] = {}
    for conn in CONNS:
        core.connection_opened(conn, "10.0.0.1")
        (p,) = core.receive_connect(conn, ConnectRequest(0, 0, 10**8, 0, bytes(16)), 0)
        assert isinstance(p, Persist)
        assert isinstance(core.persisted(p.hdr.zxid, 0)[0], SendConnectResponse)
        logs[conn] = ConnLog()
    handed_out: list[int] = []

    def deliver(effects: list[Effect]) -> None:
        for e in effects:
            if isinstance(e, Persist):
                handed_out.append(e.hdr.zxid)
            elif isinstance(e, Reply | Notify):
                logs[e.conn].events.append(e)
            else:
                raise AssertionError(e)

    for kind, ci, n in script:
        if kind == "persist":
            if handed_out:
                upto = handed_out[min(n, len(handed_out) - 1)] if batch else handed_out[0]
                del handed_out[: handed_out.index(upto) + 1]
                deliver(core.persisted(upto, 1))
            continue
        conn = CONNS[ci]
        log = logs[conn]
        key = KEYS[n % len(KEYS)]
        xid = log.next_xid
        log.next_xid += 1
        body: object
        if kind in ("get", "getw"):
            op, body = OpCode.getData, GetDataRequest(key, kind == "getw")
        elif kind == "set":
            op, body = OpCode.setData, SetDataRequest(key, f"{conn}:{xid}".encode(), -1)
        elif kind == "create":
            op, body = OpCode.create, CreateRequest(key, b"", OPEN_ACL, 0)
        elif kind == "delete":
            op, body = OpCode.delete, DeleteRequest(key, -1)
        elif kind == "exists":
            op, body = OpCode.exists, ExistsRequest(key, True)
        else:
            op, body = OpCode.sync, SyncRequest(key)
        log.sent.append((xid, kind, key))
        deliver(core.receive_request(conn, RequestHeader(xid, int(op)), body, 1))
    while handed_out:
        upto = handed_out[-1] if batch else handed_out[0]
        del handed_out[: handed_out.index(upto) + 1]
        deliver(core.persisted(upto, 2))
    return core, logs


def check(logs: dict[int, ConnLog]) -> None:
    for conn, log in logs.items():
        replies = [e for e in log.events if isinstance(e, Reply)]
        # exactly one reply per request, in request order
        assert [r.xid for r in replies] == [x for x, _, _ in log.sent], conn
        zxids = [r.zxid for r in replies]
        assert zxids == sorted(zxids), (conn, zxids)
        # read your writes: a get after my successful set returns at least that version
        last_write_zxid: dict[str, int] = {}
        for (_, kind, key), r in zip(log.sent, replies, strict=True):
            if kind == "set" and r.err == 0:
                assert isinstance(r.body, SetDataResponse)
                last_write_zxid[key] = r.body.stat.mzxid
            if kind in ("get", "getw") and r.err == 0:
                assert isinstance(r.body, GetDataResponse)
                assert r.body.stat.mzxid >= last_write_zxid.get(key, 0)
        # a data watch set by getw fires before any later reply showing newer data of that key
        armed: dict[str, int] = {}  # key -> mzxid seen when the watch was set
        for e in log.events:
            if isinstance(e, Notify):
                armed.pop(e.event.path, None)
            elif isinstance(e, Reply) and isinstance(e.body, GetDataResponse | SetDataResponse):
                # a setData reply shows the new stat as much as a getData does
                idx = [x for x, _, _ in log.sent].index(e.xid)
                _, kind, key = log.sent[idx]
                if key in armed:
                    assert e.body.stat.mzxid <= armed[key], (conn, key)
                if kind == "getw" and key not in armed:
                    armed[key] = e.body.stat.mzxid


@settings(max_examples=300, deadline=None)
@given(actions)
@example([("create", 0, 0), ("persist", 0, 3), ("getw", 0, 0), ("set", 0, 0), ("persist", 0, 3)])
@example(
    [
        ("create", 0, 0),
        ("persist", 0, 3),
        ("getw", 1, 0),
        ("set", 1, 1),
        ("set", 0, 0),
        ("get", 1, 0),
        ("persist", 0, 3),
    ]
)
def test_fifo_monotonic_zxids_and_event_before_data(script: list[Action]) -> None:
    core, logs = run(script, batch=True)
    check(logs)
    assert core.outstanding == 0


@settings(max_examples=150, deadline=None)
@given(actions)
def test_batching_does_not_change_the_outcome(script: list[Action]) -> None:
    a, la = run(script, batch=True)
    b, lb = run(script, batch=False)
    check(lb)
    for key in KEYS:
        na, nb = a.tree.get(key), b.tree.get(key)
        assert (na is None) == (nb is None)
        if na is not None and nb is not None:
            assert na.stat() == nb.stat() and na.data == nb.data
    # what each session did is the same; only other sessions' reads may see more or less
    for c in CONNS:
        ra = [(r.xid, r.err) for r in la[c].events if isinstance(r, Reply) and r.xid > 0]
        rb = [(r.xid, r.err) for r in lb[c].events if isinstance(r, Reply) and r.xid > 0]
        assert [x for x, _ in ra] == [x for x, _ in rb]


def test_event_types_seen_are_data_events() -> None:
    # smoke: a watched key that is set, deleted and re-created yields the expected events
    core, logs = run(
        [("create", 0, 0), ("persist", 0, 3), ("getw", 1, 0), ("set", 0, 0), ("persist", 0, 3)],
        batch=True,
    )
    notes = [e for e in logs[2].events if isinstance(e, Notify)]
    assert [n.event.type for n in notes] == [int(EventType.NodeDataChanged)]
    assert core.outstanding == 0
