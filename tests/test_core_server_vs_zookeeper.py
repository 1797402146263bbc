"""Differential: ServerCore's session-level answers against Apache ZooKeeper 3.8 (Debian's).

Each probe is a short request sequence on a fresh session. It goes over a raw socket to a real
standalone ZooKeeper, and in-process to ServerCore (every write persisted at once); the frames
each side sends back (xid, err, body bytes, and whether the connection was closed) must be equal.
Zxids are compared by kind only (-1, 0 or "a zxid"): sessions of other probes interleave.
These probes pinned down, against the real server, the behaviours ZooKeeper's source left open:
ping replies carry xid -2 whatever the client sent; an unknown opcode is answered and closed;
sasl without SASL answers OK with a null token; 3.8's watch-mode and checkWatches quirks; the
hash-set order of a connection's auth ids; a standalone `check` is applied but never answered.
"""

from __future__ import annotations

import contextlib
import dataclasses
import socket
import struct
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from zkref.chaos.zookeeper_proc import ApacheZooKeeper, apache_zookeeper_available
from zkref.core.acl import generate_digest
from zkref.core.effects import Close, Effect, Notify, Persist, Reply, SendConnectResponse
from zkref.core.server import CoreConfig, ServerCore
from zkref.wire import codec
from zkref.wire.constants import OpCode
from zkref.wire.records import (
    ACL,
    AddWatchRequest,
    AuthPacket,
    CheckVersionRequest,
    CheckWatchesRequest,
    ConnectRequest,
    ConnectResponse,
    CreateRequest,
    DeleteRequest,
    ExistsRequest,
    GetChildrenRequest,
    GetDataRequest,
    GetEphemeralsRequest,
    GetSASLRequest,
    Id,
    ReconfigRequest,
    RemoveWatchesRequest,
    RequestHeader,
    SetDataRequest,
    SetWatches,
    SetWatches2,
    Stat,
    SyncRequest,
)

pytestmark = [
    pytest.mark.zookeeper,
    pytest.mark.slow,
    pytest.mark.skipif(not apache_zookeeper_available(), reason="Apache ZooKeeper not installed"),
]

END_XID = 9999
Frame = tuple[int, str, int, str] | str  # (xid, zxid kind, err, body hex) or "EOF"
Probe = list[tuple[int, int, object | None]]  # (xid, opcode, body)

PROBES: dict[str, Probe] = {
    "ping with xid 5": [(5, 11, None)],
    "sasl without sasl": [(1, 102, GetSASLRequest(b""))],
    "unknown opcode": [(1, 999, None)],
    "notification opcode": [(1, 0, None)],
    "addWatch": [(1, 106, AddWatchRequest("/", 0))],
    "addWatch bad mode": [(1, 106, AddWatchRequest("/", 5))],
    "removeWatches Persistent": [
        (1, 106, AddWatchRequest("/", 0)),
        (2, 18, RemoveWatchesRequest("/", 4)),
    ],
    "removeWatches Data takes a persistent watch": [
        (1, 106, AddWatchRequest("/", 0)),
        (2, 18, RemoveWatchesRequest("/", 2)),
        (3, 17, CheckWatchesRequest("/", 2)),
        (4, 17, CheckWatchesRequest("/", 1)),
    ],
    "removeWatches Any": [
        (1, 106, AddWatchRequest("/", 0)),
        (2, 18, RemoveWatchesRequest("/", 3)),
        (3, 18, RemoveWatchesRequest("/", 3)),
    ],
    "removeWatches bad type": [(1, 18, RemoveWatchesRequest("/", 9))],
    "checkWatches without watch": [(1, 17, CheckWatchesRequest("/", 2))],
    "whoAmI": [(1, 107, None)],
    "auth unknown scheme": [(-4, 100, AuthPacket(0, "foo", b"x")), (2, 11, None)],
    "auth digest": [(-4, 100, AuthPacket(0, "digest", b"a:b")), (2, 107, None)],
    "auth ip": [(-4, 100, AuthPacket(0, "ip", b"")), (2, 107, None)],
    "auth many": [
        (-4, 100, AuthPacket(0, "digest", b"a:b")),
        (-4, 100, AuthPacket(0, "digest", b"c:d")),
        (-4, 100, AuthPacket(0, "digest", b"eve:x")),
        (-4, 100, AuthPacket(0, "digest", b"a:b")),
        (-4, 100, AuthPacket(0, "digest", b"zed")),
        (2, 107, None),
    ],
    "check outside multi": [(1, 13, CheckVersionRequest("/", -1)), (2, 11, None)],
    "check outside multi, bad version": [(1, 13, CheckVersionRequest("/", 3))],
    "sync": [(1, 9, SyncRequest("/nope"))],
    "reconfig": [(1, 16, ReconfigRequest(None, None, "server.1=127.0.0.1:1:2", -1))],
    "closeSession": [(7, -11, None), (8, 11, None)],
    "setWatches": [
        (-8, 101, SetWatches(0, ("/zookeeper", "/nope"), ("/zookeeper",), ("/", "/nope")))
    ],
    "setWatches2": [
        (-8, 105, SetWatches2(0, ("/nope",), (), (), ("/zookeeper",), ("/",))),
        (2, 17, CheckWatchesRequest("/", 1)),
        (3, 17, CheckWatchesRequest("/zookeeper", 2)),
    ],
    "getData watch, then setWatches of it": [
        (1, 4, GetDataRequest("/zookeeper", True)),
        (-8, 101, SetWatches(0, ("/zookeeper",), (), ())),
        (3, 17, CheckWatchesRequest("/zookeeper", 2)),
    ],
    "getData watch, then addWatch": [
        (1, 4, GetDataRequest("/zookeeper", True)),
        (2, 106, AddWatchRequest("/zookeeper", 0)),
        (3, 17, CheckWatchesRequest("/zookeeper", 2)),
        (4, 17, CheckWatchesRequest("/zookeeper", 1)),
    ],
    "addWatch recursive, then check children": [
        (1, 106, AddWatchRequest("/zookeeper", 1)),
        (2, 17, CheckWatchesRequest("/zookeeper", 1)),
        (3, 18, RemoveWatchesRequest("/zookeeper", 1)),
        (4, 17, CheckWatchesRequest("/zookeeper", 1)),
        (5, 17, CheckWatchesRequest("/zookeeper", 2)),
    ],
}


def zxid_kind(z: int) -> str:
    return str(z) if z in (-1, 0) else "z"


def parse(buf: bytes) -> list[Frame]:
    out: list[Frame] = []
    while len(buf) >= 4:
        (n,) = struct.unpack_from(">i", buf)
        if len(buf) < 4 + n:
            break  # the rest of this frame has not arrived yet (a split TCP read)
        f, buf = buf[4 : 4 + n], buf[4 + n :]
        xid, zxid, err = struct.unpack_from(">iqi", f)
        out.append((xid, zxid_kind(zxid), err, f[16:].hex()))
    return out


def done(frames: list[Frame]) -> bool:
    return any(isinstance(f, tuple) and f[0] == END_XID for f in frames)


def run_zookeeper(port: int, probe: Probe) -> list[Frame]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(codec.encode_connect_request(ConnectRequest(0, 0, 10_000, 0, bytes(16))))
        (n,) = struct.unpack(">i", s.recv(4))
        while n > 0:
            n -= len(s.recv(n))
        for xid, op, body in [*probe, (END_XID, int(OpCode.sync), SyncRequest("/end"))]:
            try:
                s.sendall(codec.encode_request(xid, op, body))  # type: ignore[arg-type]
            except (BrokenPipeError, ConnectionResetError):
                break  # closed by the server: what it sent is still to be read
            time.sleep(0.02)  # let ZooKeeper answer in order before the next one arrives
        buf = b""
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                d = s.recv(65536)
            except TimeoutError:
                break
            except ConnectionResetError:
                d = b""
            if not d:
                return [*parse(buf), "EOF"]
            buf += d
            if done(parse(buf)):
                break
        frames = parse(buf)
        s.sendall(codec.encode_request(END_XID + 1, int(OpCode.closeSession), None))
        return frames


def run_core(probe: Probe) -> list[Frame]:
    core = ServerCore(CoreConfig(server_id=1, secret=b"d", start_ms=1000))
    core.connection_opened(1, "127.0.0.1")
    (p,) = core.receive_connect(1, ConnectRequest(0, 0, 10_000, 0, bytes(16)), 1000)
    assert isinstance(p, Persist)
    assert isinstance(core.persisted(p.hdr.zxid, 1000)[0], SendConnectResponse)
    frames: list[Frame] = []

    def take(effects: list[Effect]) -> bool:
        persisted = [e for e in effects if isinstance(e, Persist)]
        if persisted:
            effects = effects + core.persisted(persisted[-1].hdr.zxid, 1000)
        for e in effects:
            if isinstance(e, Reply):
                frames.extend(parse(codec.encode_reply(e.xid, e.zxid, e.err, e.body)))  # type: ignore[arg-type]
            elif isinstance(e, Notify):
                frames.extend(parse(codec.encode_notification(e.event, e.zxid)))
            elif isinstance(e, Close):
                frames.append("EOF")
                return False
        return True

    for xid, op, body in [*probe, (END_XID, int(OpCode.sync), SyncRequest("/end"))]:
        if not take(core.receive_request(1, RequestHeader(xid, op), body, 1000)):
            break
    return frames


@pytest.fixture(scope="module")
def zk_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    base: Path = tmp_path_factory.mktemp("server-diff-zk")
    with ApacheZooKeeper(1, base, tick_time_ms=500) as zk:
        zk.start()
        yield zk.client_port(1)


@pytest.mark.parametrize("name", list(PROBES))
def test_same_frames_as_zookeeper(zk_port: int, name: str) -> None:
    probe = PROBES[name]
    assert run_core(probe) == run_zookeeper(zk_port, probe)


# =================================================================================================
# multi-connection scenarios: handshakes, re-attach, watches across connections
# =================================================================================================

# A step: ("connect", conn, how, other) with how in new | reattach | badpw | ahead (other: the
# connection whose session is re-used), or ("req", conn, (xid, opcode, body)).
Step = tuple[str, int, object, int]
OPEN = (ACL(31, Id("world", "anyone")),)

SCENARIOS: dict[str, list[Step]] = {
    "watch event reaches the other connection before the writer's reply is read": [
        ("connect", 0, "new", 0),
        ("connect", 1, "new", 0),
        ("req", 0, (1, 1, CreateRequest("/w", b"a", OPEN, 0)), 0),
        ("req", 1, (1, 4, GetDataRequest("/w", True)), 0),
        ("req", 1, (2, 8, GetChildrenRequest("/w", True)), 0),
        ("req", 0, (2, 1, CreateRequest("/w/c", b"", OPEN, 1)), 0),
        ("req", 0, (3, 5, SetDataRequest("/w", b"b", -1)), 0),
        ("req", 0, (4, 2, DeleteRequest("/w/c", -1)), 0),
        ("req", 1, (3, 3, ExistsRequest("/w/c", True)), 0),
        ("req", 0, (5, -11, None), 0),
        ("req", 1, (4, 2, DeleteRequest("/w", -1)), 0),
    ],
    "re-attach moves the session; the old connection is closed": [
        ("connect", 0, "new", 0),
        ("req", 0, (1, 1, CreateRequest("/e", b"", OPEN, 1)), 0),
        ("req", 0, (2, 4, GetDataRequest("/e", True)), 0),
        ("connect", 1, "reattach", 0),
        ("req", 1, (1, 103, GetEphemeralsRequest("/")), 0),
        ("req", 1, (2, 17, CheckWatchesRequest("/e", 2)), 0),
        ("req", 1, (3, 2, DeleteRequest("/e", -1)), 0),
    ],
    "wrong password: zero response and close, the session's connection closed too": [
        ("connect", 0, "new", 0),
        ("connect", 1, "badpw", 0),
    ],
    "client zxid ahead: closed without answer": [
        ("connect", 0, "new", 0),
        ("connect", 1, "ahead", 0),
    ],
    "closed session cannot be re-attached": [
        ("connect", 0, "new", 0),
        ("req", 0, (1, -11, None), 0),
        ("connect", 1, "reattach", 0),
    ],
    "persistent and recursive watches": [
        ("connect", 0, "new", 0),
        ("connect", 1, "new", 0),
        ("req", 1, (1, 106, AddWatchRequest("/p", 0)), 0),
        ("req", 1, (2, 106, AddWatchRequest("/r", 1)), 0),
        ("req", 0, (1, 1, CreateRequest("/p", b"", OPEN, 0)), 0),
        ("req", 0, (2, 1, CreateRequest("/p/x", b"", OPEN, 0)), 0),
        ("req", 0, (3, 1, CreateRequest("/r", b"", OPEN, 0)), 0),
        ("req", 0, (4, 1, CreateRequest("/r/x", b"", OPEN, 0)), 0),
        ("req", 0, (5, 5, SetDataRequest("/r/x", b"1", -1)), 0),
        ("req", 1, (3, 4, GetDataRequest("/p", True)), 0),
        ("req", 0, (6, 5, SetDataRequest("/p", b"1", -1)), 0),
        ("req", 0, (7, 5, SetDataRequest("/p", b"2", -1)), 0),
        ("req", 0, (8, 2, DeleteRequest("/p/x", -1)), 0),
        ("req", 0, (9, 2, DeleteRequest("/r/x", -1)), 0),
        ("req", 0, (10, 2, DeleteRequest("/r", -1)), 0),
    ],
    "setWatches with a relative zxid": [
        ("connect", 0, "new", 0),
        ("req", 0, (1, 1, CreateRequest("/s", b"", OPEN, 0)), 0),
        ("req", 0, (2, 1, CreateRequest("/t", b"", OPEN, 0)), 0),
        ("req", 0, (3, 5, SetDataRequest("/t", b"x", -1)), 0),
        ("connect", 1, "new", 0),
        ("setwatches", 1, ("/s", "/t"), 0),  # relative zxid: the reply zxid of conn 0, xid 2
        ("req", 0, (4, 5, SetDataRequest("/s", b"y", -1)), 0),
    ],
}


class Normalizer:
    """Zxids by order of first appearance, times zeroed: both servers' other sessions differ."""

    def __init__(self) -> None:
        self.ranks: dict[int, int] = {}

    def z(self, zxid: int) -> int:
        if zxid in (-1, 0):
            return zxid
        return self.ranks.setdefault(zxid, len(self.ranks) + 1)

    def value(self, v: object) -> object:
        if isinstance(v, Stat):
            return dataclasses.replace(
                v,
                czxid=self.z(v.czxid),
                mzxid=self.z(v.mzxid),
                pzxid=self.z(v.pzxid),
                ctime=0,
                mtime=0,
                ephemeral_owner=int(v.ephemeral_owner != 0),
            )
        if isinstance(v, tuple):
            return tuple(self.value(x) for x in v)
        if dataclasses.is_dataclass(v) and not isinstance(v, type):
            return type(v)(*(self.value(getattr(v, f.name)) for f in dataclasses.fields(v)))
        return v


def decode(frame: bytes, ops: dict[int, int], norm: Normalizer) -> object:
    xid, zxid, err = struct.unpack_from(">iqi", frame)
    if xid == -1:
        _, event = codec.decode_notification(frame)
        return ("event", event.type, event.state, event.path)
    op = int(OpCode.ping) if xid == -2 else ops[xid]
    _, body = codec.decode_reply(frame, op)
    return ("reply", xid, norm.z(zxid), err, norm.value(body))


def connect_request(how: object, sid: int, pw: bytes, last_zxid: int) -> ConnectRequest:
    if how == "new":
        return ConnectRequest(0, 0, 10_000, 0, bytes(16))
    if how == "reattach":
        return ConnectRequest(0, last_zxid, 10_000, sid, pw)
    if how == "badpw":
        return ConnectRequest(0, last_zxid, 10_000, sid, bytes(16))
    assert how == "ahead", how
    return ConnectRequest(0, last_zxid + 1000, 10_000, 0, bytes(16))


def masked_connect(resp: ConnectResponse, sids: dict[int, int]) -> object:
    return ("connected", resp.time_out, sids.get(resp.session_id, "?"), resp.passwd == bytes(16))


def run_scenario_zookeeper(
    port: int, steps: list[Step], expect_len: dict[int, int] | None = None
) -> dict[int, list[object]]:
    """Run the steps against Apache ZooKeeper; what each connection received, in order.

    Watch events reach a connection asynchronously. At the end, each open connection is read
    until it has ``expect_len[conn]`` frames (the core's count: a wait with a deadline, which a
    slow machine only lengthens; a ZooKeeper that sends fewer still fails the comparison), then
    for a short silence that catches any frame more."""
    socks: dict[int, socket.socket] = {}
    sids: dict[int, int] = {0: 0}
    creds: dict[int, tuple[int, bytes]] = {}
    ops: dict[int, dict[int, int]] = {}
    out: dict[int, list[object]] = {}
    last_zxid = 0
    reply_zxid: dict[tuple[int, int], int] = {}
    norm = Normalizer()
    bufs: dict[int, bytes] = {}

    def pump(conn: int, until_xid: int | None, wait_s: float) -> None:
        s = socks[conn]
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            s.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                d = s.recv(65536)
            except TimeoutError:
                return
            except ConnectionResetError:
                d = b""
            if not d:
                flush(conn)
                out[conn].append("EOF")
                socks.pop(conn).close()
                return
            bufs[conn] += d
            if flush(conn, until_xid):
                return

    def flush(conn: int, until_xid: int | None = None) -> bool:
        nonlocal last_zxid
        buf = bufs[conn]
        hit = False
        while len(buf) >= 4:
            (n,) = struct.unpack_from(">i", buf)
            if len(buf) < 4 + n:
                break
            f, buf = buf[4 : 4 + n], buf[4 + n :]
            xid, zxid, _ = struct.unpack_from(">iqi", f)
            if zxid > 0:
                last_zxid = max(last_zxid, zxid)
                reply_zxid[(conn, xid)] = zxid
            out[conn].append(decode(f, ops[conn], norm))
            hit = hit or xid == until_xid
        bufs[conn] = buf
        return hit

    for kind, conn, arg, other in steps:
        if kind == "connect":
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            socks[conn], out[conn], ops[conn], bufs[conn] = s, [], {}, b""
            sid, pw = creds.get(other, (0, bytes(16)))
            s.sendall(codec.encode_connect_request(connect_request(arg, sid, pw, last_zxid)))
            time.sleep(0.05)
            for c in list(socks):
                if c != conn:
                    pump(c, None, 0.05)
            raw = b""
            s.settimeout(2)
            try:
                raw = s.recv(4)
                (n,) = struct.unpack(">i", raw)
                body = b""
                while len(body) < n:
                    body += s.recv(n - len(body))
            except (TimeoutError, ConnectionResetError, struct.error):
                out[conn].append("EOF")
                socks.pop(conn).close()
                continue
            resp = codec.decode_connect_response(body)
            if resp.session_id and resp.session_id not in sids:
                sids[resp.session_id] = len(sids)
            creds[conn] = (resp.session_id, resp.passwd)
            out[conn].append(masked_connect(resp, sids))
            if resp.session_id == 0:
                pump(conn, None, 0.5)
        elif kind == "setwatches":
            assert isinstance(arg, tuple)
            rel = reply_zxid[(other, 2)]
            ops[conn][-8] = int(OpCode.setWatches)
            if conn in socks:
                socks[conn].sendall(codec.encode_request(-8, 101, SetWatches(rel, arg, (), ())))
                pump(conn, -8, 2)
        else:
            assert isinstance(arg, tuple)
            xid, op, body = arg
            ops[conn][xid] = op
            if conn in socks:
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    socks[conn].sendall(codec.encode_request(xid, op, body))
                if conn in socks:
                    pump(conn, xid, 2)
        for c in list(socks):
            pump(c, None, 0.05)
    for c in list(socks):
        deadline = time.monotonic() + 10
        while c in socks and len(out[c]) < (expect_len or {}).get(c, 0):
            if time.monotonic() > deadline:
                break
            pump(c, None, 0.2)
        if c in socks:
            pump(c, None, 0.2)
        if c in socks:
            socks.pop(c).close()
    return out


def run_scenario_core(steps: list[Step]) -> dict[int, list[object]]:
    core = ServerCore(CoreConfig(server_id=1, secret=b"d", start_ms=1000))
    sids: dict[int, int] = {0: 0}
    creds: dict[int, tuple[int, bytes]] = {}
    ops: dict[int, dict[int, int]] = {}
    out: dict[int, list[object]] = {}
    closed: set[int] = set()
    reply_zxid: dict[tuple[int, int], int] = {}
    norm = Normalizer()

    def take(effects: list[Effect]) -> None:
        persisted = [e for e in effects if isinstance(e, Persist)]
        if persisted:
            effects = effects + take_persist(persisted[-1].hdr.zxid)
        for e in effects:
            if isinstance(e, SendConnectResponse):
                r = e.resp
                if r.session_id and r.session_id not in sids:
                    sids[r.session_id] = len(sids)
                creds[e.conn] = (r.session_id, r.passwd)
                out[e.conn].append(masked_connect(r, sids))
            elif isinstance(e, Reply):
                if e.zxid > 0:
                    reply_zxid[(e.conn, e.xid)] = e.zxid
                frame = codec.encode_reply(e.xid, e.zxid, e.err, e.body)  # type: ignore[arg-type]
                out[e.conn].append(decode(frame[4:], ops[e.conn], norm))
            elif isinstance(e, Notify):
                frame = codec.encode_notification(e.event, e.zxid)
                out[e.conn].append(decode(frame[4:], ops[e.conn], norm))
            elif isinstance(e, Close):
                out[e.conn].append("EOF")
                closed.add(e.conn)

    def take_persist(upto: int) -> list[Effect]:
        return core.persisted(upto, 1000)

    for kind, conn, arg, other in steps:
        if kind == "connect":
            out[conn], ops[conn] = [], {}
            core.connection_opened(conn, "127.0.0.1")
            sid, pw = creds.get(other, (0, bytes(16)))
            req = connect_request(arg, sid, pw, core.tree.last_processed_zxid)
            take(core.receive_connect(conn, req, 1000))
        elif kind == "setwatches":
            assert isinstance(arg, tuple)
            ops[conn][-8] = int(OpCode.setWatches)
            rel = reply_zxid[(other, 2)]
            hdr = RequestHeader(-8, 101)
            take(core.receive_request(conn, hdr, SetWatches(rel, arg, (), ()), 1000))
        else:
            assert isinstance(arg, tuple)
            xid, op, body = arg
            ops[conn][xid] = op
            if conn not in closed:
                take(core.receive_request(conn, RequestHeader(xid, op), body, 1000))
    return out


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_same_session_behaviour_as_zookeeper(zk_port: int, name: str) -> None:
    steps = SCENARIOS[name]
    core = run_scenario_core(steps)
    expect_len = {conn: len(frames) for conn, frames in core.items()}
    assert core == run_scenario_zookeeper(zk_port, steps, expect_len)


def test_expiry_notifies_watchers_and_closes_like_zookeeper(zk_port: int) -> None:
    """A silent session expires: its ephemeral goes, a watcher on another connection hears of
    it, and the expired session's own connection is closed; re-attach then answers zeros."""
    # Apache ZooKeeper (tickTime 500: timeouts between 1000 and 10000 ms)
    a = socket.create_connection(("127.0.0.1", zk_port), timeout=10)
    b = socket.create_connection(("127.0.0.1", zk_port), timeout=10)

    def handshake(s: socket.socket, req: ConnectRequest) -> ConnectResponse:
        s.sendall(codec.encode_connect_request(req))
        (n,) = struct.unpack(">i", s.recv(4))
        body = b""
        while len(body) < n:
            body += s.recv(n - len(body))
        return codec.decode_connect_response(body)

    def read_until(
        s: socket.socket, buf: bytearray, stop: Callable[[list[object]], bool]
    ) -> list[object]:
        """Frames read so far (a frame split across reads stays in ``buf``), once ``stop``
        holds for them or the server closed; a generous deadline, not a bare sleep."""
        s.settimeout(0.2)
        deadline = time.monotonic() + 30
        while True:
            frames: list[object] = [f[:3] for f in parse(bytes(buf)) if isinstance(f, tuple)]
            if stop(frames):
                return frames
            if time.monotonic() > deadline:
                raise AssertionError(f"ZooKeeper did not answer in 30 s; so far {frames}")
            try:
                d = s.recv(65536)
            except TimeoutError:
                continue
            if not d:
                return [*frames, "EOF"]
            buf += d

    def xids(frames: list[object]) -> list[object]:
        return [f[0] for f in frames if isinstance(f, tuple)]

    ra = handshake(a, ConnectRequest(0, 0, 1000, 0, bytes(16)))
    handshake(b, ConnectRequest(0, 0, 10_000, 0, bytes(16)))
    a.sendall(codec.encode_request(1, 1, CreateRequest("/x-exp", b"", OPEN, 1)))
    buf_a, buf_b = bytearray(), bytearray()
    read_until(a, buf_a, lambda fs: 1 in xids(fs))  # created before b looks at it
    b.sendall(codec.encode_request(1, 3, ExistsRequest("/x-exp", True)))
    # no pings from a: its session expires within 1000 ms + a tick or two, and ZooKeeper closes
    zk_a = read_until(a, buf_a, lambda fs: False)
    # the watch fires with the expiry, before a's connection closes; then a ping is answered
    read_until(b, buf_b, lambda fs: -1 in xids(fs))
    b.sendall(codec.encode_request(2, 11, None))
    zk_b = read_until(b, buf_b, lambda fs: -2 in xids(fs))
    c = socket.create_connection(("127.0.0.1", zk_port), timeout=10)
    rc = handshake(c, ConnectRequest(0, 0, 1000, ra.session_id, ra.passwd))
    zk_reattach = (rc.time_out, rc.session_id, rc.passwd == bytes(16))
    for s in (a, b, c):
        s.close()

    # ServerCore, the same story on its clock
    core = ServerCore(CoreConfig(server_id=1, tick_time_ms=500, secret=b"d", start_ms=0))
    out: dict[int, list[object]] = {1: [], 2: [], 3: []}

    def run(effects: list[Effect], now: int) -> None:
        persisted = [e for e in effects if isinstance(e, Persist)]
        if persisted:
            effects = effects + core.persisted(persisted[-1].hdr.zxid, now)
        for e in effects:
            if isinstance(e, Reply):
                out[e.conn].append((e.xid, "-2" if e.xid == -2 else "z", e.err))
            elif isinstance(e, Notify):
                out[e.conn].append((-1, "-1", 0))
            elif isinstance(e, Close):
                out[e.conn].append("EOF")
            elif isinstance(e, SendConnectResponse):
                out[e.conn].append(e.resp)

    for conn, timeout in ((1, 1000), (2, 10_000)):
        core.connection_opened(conn, "127.0.0.1")
        run(core.receive_connect(conn, ConnectRequest(0, 0, timeout, 0, bytes(16)), 0), 0)
    sid_a = core.stats().session_of[1]
    run(core.receive_request(1, RequestHeader(1, 1), CreateRequest("/x-exp", b"", OPEN, 1), 0), 0)
    run(core.receive_request(2, RequestHeader(1, 3), ExistsRequest("/x-exp", True), 200), 200)
    for now in range(0, 3500, 250):
        run(core.tick(now), now)
    run(core.receive_request(2, RequestHeader(2, 11), None, 3500), 3500)
    core.connection_opened(3, "127.0.0.1")
    run(
        core.receive_connect(
            3, ConnectRequest(0, 0, 1000, sid_a, core.sessions.password(sid_a)), 3600
        ),
        3600,
    )
    resp = out[3][0]
    assert isinstance(resp, ConnectResponse)

    def norm(frames: list[object]) -> list[object]:
        return [
            (f[0], "-1" if f[1] in (-1, "-1") else "-2" if f[0] == -2 else "z", f[2])
            if isinstance(f, tuple)
            else f
            for f in frames
            if not isinstance(f, ConnectResponse)
        ]

    assert norm(out[1]) == norm(zk_a) == [(1, "z", 0), "EOF"]
    assert norm(out[2]) == norm(zk_b) == [(1, "z", 0), (-1, "-1", 0), (-2, "-2", 0)]
    assert (resp.time_out, resp.session_id, resp.passwd == bytes(16)) == zk_reattach == (0, 0, True)


SUPER = generate_digest("super:secret")

SUPER_PROBES: dict[str, Probe] = {
    "super digest": [
        (1, 1, CreateRequest("/locked", b"x", (ACL(31, Id("digest", "x:y")),), 0)),
        (2, 4, GetDataRequest("/locked", False)),
        (-4, 100, AuthPacket(0, "digest", b"super:secret")),
        (4, 4, GetDataRequest("/locked", False)),
        (5, 107, None),
        (6, 2, DeleteRequest("/locked", -1)),
    ],
    "wrong super password": [
        (-4, 100, AuthPacket(0, "digest", b"super:nope")),
        (2, 107, None),
    ],
}


@pytest.fixture(scope="module")
def zk_super_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    base: Path = tmp_path_factory.mktemp("server-diff-zk-super")
    props = {"zookeeper.DigestAuthenticationProvider.superDigest": SUPER}
    with ApacheZooKeeper(1, base, tick_time_ms=500, jvm_props=props) as zk:
        zk.start()
        yield zk.client_port(1)


def run_core_decoded(probe: Probe, config: CoreConfig) -> list[object]:
    core = ServerCore(config)
    core.connection_opened(1, "127.0.0.1")
    (p,) = core.receive_connect(1, ConnectRequest(0, 0, 10_000, 0, bytes(16)), 1000)
    assert isinstance(p, Persist)
    core.persisted(p.hdr.zxid, 1000)
    ops = {xid: op for xid, op, _ in probe}
    norm = Normalizer()
    out: list[object] = []
    for xid, op, body in probe:
        effects = core.receive_request(1, RequestHeader(xid, op), body, 1000)
        persisted = [e for e in effects if isinstance(e, Persist)]
        if persisted:
            effects = effects + core.persisted(persisted[-1].hdr.zxid, 1000)
        for e in effects:
            if isinstance(e, Reply):
                frame = codec.encode_reply(e.xid, e.zxid, e.err, e.body)  # type: ignore[arg-type]
                out.append(decode(frame[4:], ops, norm))
            elif isinstance(e, Close):
                out.append("EOF")
    return out


def run_zookeeper_decoded(port: int, probe: Probe) -> list[object]:
    ops = {xid: op for xid, op, _ in probe}
    ops[END_XID] = int(OpCode.sync)
    norm = Normalizer()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(codec.encode_connect_request(ConnectRequest(0, 0, 10_000, 0, bytes(16))))
        (n,) = struct.unpack(">i", s.recv(4))
        while n > 0:
            n -= len(s.recv(n))
        buf = b""
        for xid, op, body in [*probe, (END_XID, int(OpCode.sync), SyncRequest("/end"))]:
            s.sendall(codec.encode_request(xid, op, body))  # type: ignore[arg-type]
            # wait for the answer: auth is served at once and could overtake queued requests
            while not any(isinstance(f, tuple) and f[0] == xid for f in parse(buf)):
                buf += s.recv(65536)
    out: list[object] = []
    while buf:
        (n,) = struct.unpack_from(">i", buf)
        f, buf = buf[4 : 4 + n], buf[4 + n :]
        if struct.unpack_from(">i", f)[0] != END_XID:
            out.append(decode(f, ops, norm))
    return out


@pytest.mark.parametrize("name", list(SUPER_PROBES))
def test_super_digest_like_zookeeper(zk_super_port: int, name: str) -> None:
    probe = SUPER_PROBES[name]
    config = CoreConfig(server_id=1, secret=b"d", start_ms=1000, super_digest=SUPER)
    assert run_core_decoded(probe, config) == run_zookeeper_decoded(zk_super_port, probe)
