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

import socket
import struct
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from zkref.chaos.zookeeper_proc import ApacheZooKeeper, apache_zookeeper_available
from zkref.core.effects import Close, Effect, Notify, Persist, Reply, SendConnectResponse
from zkref.core.server import CoreConfig, ServerCore
from zkref.wire import codec
from zkref.wire.constants import OpCode
from zkref.wire.records import (
    AddWatchRequest,
    AuthPacket,
    CheckVersionRequest,
    CheckWatchesRequest,
    ConnectRequest,
    GetDataRequest,
    GetSASLRequest,
    ReconfigRequest,
    RemoveWatchesRequest,
    RequestHeader,
    SetWatches,
    SetWatches2,
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
