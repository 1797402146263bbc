"""Fuzz one long-lived `zkref server` process with random and mutated frames (Hypothesis).

Inputs: a valid request frame for every client opcode (and a valid ConnectRequest), mutated --
bytes flipped, inserted, deleted, ints overwritten with nasty values, the length prefix, xid or
opcode replaced, the frame cut short -- or plain random bytes; sent on a fresh connection (after a
good handshake, or instead of it) or on one connection reused across examples.

Property, after every example: the process runs, answers `ruok`, and a separate session reads the
canary node with its bytes intact; every frame the server sent back has a sane length. At the end:
the canary is intact for a brand-new session and the server log has no internal error/Traceback.

The harness is checked too: the same property run against a toy server that crashes on an opcode it
does not know must fail.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from support.servers import standalone
from zkref.chaos.zookeeper_proc import apache_zookeeper_available, four_letter_word
from zkref.server.process import ZkrefServerProcess
from zkref.wire import codec
from zkref.wire.constants import OpCode, Xid
from zkref.wire.records import (
    ACL,
    AddWatchRequest,
    AuthPacket,
    CheckVersionRequest,
    CheckWatchesRequest,
    ConnectRequest,
    ConnectResponse,
    CreateRequest,
    CreateTTLRequest,
    DeleteRequest,
    ExistsRequest,
    GetACLRequest,
    GetAllChildrenNumberRequest,
    GetChildren2Request,
    GetChildrenRequest,
    GetDataRequest,
    GetDataResponse,
    GetEphemeralsRequest,
    GetSASLRequest,
    Id,
    MultiReadRequest,
    MultiRequest,
    ReconfigRequest,
    RemoveWatchesRequest,
    SetACLRequest,
    SetDataRequest,
    SetWatches,
    SetWatches2,
    Stat,
    SyncRequest,
)

pytestmark = pytest.mark.slow

MAX_BUFFER = 0xFFFFF
CANARY = "/canary"
CANARY_DATA = b"fuzz canary \x00\x01\xfe\xff"
OPEN_ACL = (ACL(31, Id("world", "anyone")),)
READ_ONLY_ACL = (ACL(1, Id("world", "anyone")),)
CONNECT_BODY = codec.encode_connect_request(
    ConnectRequest(0, 0, 10_000, 0, b"\x00" * 16, False, True)
)[4:]

# One valid request per client opcode: (xid, opcode, body). Writes stay under /fuzz; the canary is
# world-readable only, so no well-formed request can change it either.
VALID_REQUESTS: list[tuple[int, int, codec.Request | None]] = [
    (1, OpCode.create, CreateRequest("/fuzz/a", b"x" * 10, OPEN_ACL, 0)),
    (1, OpCode.create, CreateRequest("/fuzz/e", b"", OPEN_ACL, 1)),
    (1, OpCode.create, CreateRequest("/fuzz/s-", None, OPEN_ACL, 3)),
    (2, OpCode.delete, DeleteRequest("/fuzz/a", -1)),
    (3, OpCode.exists, ExistsRequest("/fuzz/a", True)),
    (4, OpCode.getData, GetDataRequest(CANARY, True)),
    (5, OpCode.setData, SetDataRequest("/fuzz", b"v", -1)),
    (5, OpCode.setData, SetDataRequest(CANARY, b"overwritten", -1)),
    (6, OpCode.getACL, GetACLRequest("/fuzz")),
    (7, OpCode.setACL, SetACLRequest("/fuzz/a", OPEN_ACL, -1)),
    (8, OpCode.getChildren, GetChildrenRequest("/fuzz", True)),
    (9, OpCode.sync, SyncRequest("/fuzz")),
    (Xid.PING, OpCode.ping, None),
    (12, OpCode.getChildren2, GetChildren2Request("/", True)),
    (13, OpCode.check, CheckVersionRequest("/fuzz", 0)),
    (
        14,
        OpCode.multi,
        MultiRequest(
            (
                (OpCode.create, CreateRequest("/fuzz/m", b"m", OPEN_ACL, 0)),
                (OpCode.check, CheckVersionRequest("/fuzz", -1)),
                (OpCode.setData, SetDataRequest("/fuzz/m", b"n", -1)),
                (OpCode.delete, DeleteRequest("/fuzz/m", -1)),
            )
        ),
    ),
    (15, OpCode.create2, CreateRequest("/fuzz/b", b"b", OPEN_ACL, 2)),
    (16, OpCode.reconfig, ReconfigRequest(None, None, "server.1=127.0.0.1:1:2", -1)),
    (17, OpCode.checkWatches, CheckWatchesRequest("/fuzz", 1)),
    (18, OpCode.removeWatches, RemoveWatchesRequest("/fuzz", 3)),
    (19, OpCode.createContainer, CreateRequest("/fuzz/c", b"", OPEN_ACL, 4)),
    (21, OpCode.createTTL, CreateTTLRequest("/fuzz/t", b"", OPEN_ACL, 5, 1000)),
    (
        22,
        OpCode.multiRead,
        MultiReadRequest(
            (
                (OpCode.getData, GetDataRequest(CANARY, False)),
                (OpCode.getChildren, GetChildrenRequest("/", False)),
            )
        ),
    ),
    (Xid.AUTH, OpCode.auth, AuthPacket(0, "digest", b"fuzz:pw")),
    (Xid.SET_WATCHES, OpCode.setWatches, SetWatches(0, ("/fuzz",), ("/fuzz/x",), ("/",))),
    (102, OpCode.sasl, GetSASLRequest(b"token")),
    (103, OpCode.getEphemerals, GetEphemeralsRequest("/")),
    (104, OpCode.getAllChildrenNumber, GetAllChildrenNumberRequest("/")),
    (
        Xid.SET_WATCHES,
        OpCode.setWatches2,
        SetWatches2(0, (CANARY,), (), ("/fuzz",), ("/fuzz",), ("/",)),
    ),
    (106, OpCode.addWatch, AddWatchRequest("/fuzz", 1)),
    (107, OpCode.whoAmI, None),
    (108, OpCode.closeSession, None),
]
VALID_BODIES: list[bytes] = [codec.encode_request(x, op, b)[4:] for x, op, b in VALID_REQUESTS]
KNOWN_OPS = sorted({int(op) for _, op, _ in VALID_REQUESTS})

NASTY_INTS = [-(2**31), -2, -1, 0, 1, 7, 8, 255, 0xFFFF, MAX_BUFFER, MAX_BUFFER + 1, 2**31 - 1]
int32 = st.one_of(st.sampled_from(NASTY_INTS), st.integers(-(2**31), 2**31 - 1))


@dataclass(frozen=True)
class Frame:
    body: bytes
    length: int | None = None  # a length prefix that lies about the body; None: the true one

    def wire(self) -> bytes:
        n = len(self.body) if self.length is None else self.length
        return struct.pack(">i", n) + self.body


def _put_int(body: bytes, offset: int, value: int) -> bytes:
    b = bytearray(body.ljust(offset + 4, b"\x00"))
    struct.pack_into(">i", b, offset, value)
    return bytes(b)


@st.composite
def mutated(draw: st.DrawFn, base: bytes) -> Frame:
    body = base
    length: int | None = None
    for _ in range(draw(st.integers(1, 4))):
        what = draw(
            st.sampled_from(
                ["flip", "set", "insert", "delete", "int", "length", "xid", "op", "cut", "dup"]
            )
        )
        pos = draw(st.integers(0, max(0, len(body))))
        match what:
            case "flip" if body:
                i = min(pos, len(body) - 1)
                body = body[:i] + bytes([body[i] ^ draw(st.integers(1, 255))]) + body[i + 1 :]
            case "set" if body:
                i = min(pos, len(body) - 1)
                body = body[:i] + bytes([draw(st.integers(0, 255))]) + body[i + 1 :]
            case "insert":
                body = body[:pos] + draw(st.binary(min_size=1, max_size=8)) + body[pos:]
            case "delete":
                body = body[:pos] + body[pos + draw(st.integers(1, 8)) :]
            case "int":
                # Overwrite a string/vector length or a version with a nasty value.
                body = _put_int(body, pos, draw(int32))
            case "length":
                length = draw(int32)
            case "xid":
                body = _put_int(body, 0, draw(int32))
            case "op":
                body = _put_int(body, 4, draw(st.one_of(st.sampled_from(KNOWN_OPS), int32)))
            case "cut":
                body = body[:pos]
            case "dup":
                body = body + body[: draw(st.integers(0, 16))]
            case _:
                pass
    return Frame(body, length)


def frames(base: st.SearchStrategy[bytes]) -> st.SearchStrategy[Frame]:
    return st.one_of(
        base.flatmap(mutated),
        base.map(Frame),
        st.binary(max_size=48).map(Frame),
        st.builds(Frame, st.binary(max_size=48), int32),
    )


@dataclass(frozen=True)
class Case:
    mode: str  # "fresh": handshake first | "first": fuzz the handshake | "reused": one connection
    frames: tuple[Frame, ...]


@st.composite
def cases(draw: st.DrawFn) -> Case:
    mode = draw(st.sampled_from(["fresh", "fresh", "reused", "first"]))
    requests = frames(st.sampled_from(VALID_BODIES))
    fs: list[Frame] = []
    if mode == "first":
        fs.append(draw(frames(st.just(CONNECT_BODY))))
    fs.extend(draw(st.lists(requests, min_size=1, max_size=4)))
    return Case(mode, tuple(fs))


# --- talking to a server ------------------------------------------------------------------------


def _handshake(sock: socket.socket) -> None:
    sock.sendall(struct.pack(">i", len(CONNECT_BODY)) + CONNECT_BODY)
    head = _recv_exact(sock, 4)
    assert head is not None, "handshake refused"
    body = _recv_exact(sock, struct.unpack(">i", head)[0])
    assert body is not None
    resp = codec.decode_connect_response(body)
    assert resp.session_id != 0 and resp.time_out > 0, resp


def _recv_exact(sock: socket.socket, n: int) -> bytes | None:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return bytes(buf)


def _check_framing(data: bytes, handshaken: bool) -> None:
    """Every whole frame the server sent has a sane length; replies carry a ReplyHeader."""
    off = 0
    first = not handshaken
    while len(data) - off >= 4:
        (n,) = struct.unpack_from(">i", data, off)
        assert 0 <= n <= MAX_BUFFER, f"server sent frame length {n}"
        if off + 4 + n > len(data):
            break
        if not first:
            assert n >= 16, f"reply frame of {n} bytes has no ReplyHeader: {data[off:].hex()}"
        first = False
        off += 4 + n


@dataclass
class Target:
    port: int
    extra_check: Callable[[], None] = lambda: None
    reused: socket.socket | None = None
    checker: socket.socket | None = None
    checker_xid: int = 0
    stats: dict[str, int] = field(default_factory=dict)

    def close(self) -> None:
        for s in (self.reused, self.checker):
            if s is not None:
                s.close()
        self.reused = self.checker = None

    def _connect(self) -> socket.socket:
        try:
            s = socket.create_connection(("127.0.0.1", self.port), timeout=5.0)
        except OSError as e:
            raise AssertionError(f"cannot connect to the server: {e}") from e
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return s

    def send_case(self, case: Case) -> None:
        payload = b"".join(f.wire() for f in case.frames)
        if case.mode == "reused":
            self._send_reused(payload)
            return
        with self._connect() as s:
            if case.mode == "fresh":
                _handshake(s)
            try:
                s.sendall(payload)
                s.shutdown(socket.SHUT_WR)
            except OSError:  # broken pipe, reset, or ENOTCONN: the server already closed it
                self._count("closed-while-sending")
                return
            # The server answers what it can, then closes (bad input, or our FIN). Reading to the
            # end means every frame of this example was processed before the liveness checks.
            got = bytearray()
            deadline = time.monotonic() + 10.0
            while True:
                assert time.monotonic() < deadline, "server neither finished nor closed in 10 s"
                try:
                    chunk = s.recv(65536)
                except ConnectionResetError:
                    break
                if not chunk:
                    break
                got += chunk
            _check_framing(bytes(got), handshaken=case.mode == "fresh")
            self._count(f"{case.mode}-{'answered' if got else 'silent'}")

    def _send_reused(self, payload: bytes) -> None:
        if self.reused is not None:
            # Whatever came back since last time; EOF means the server dropped us.
            self.reused.setblocking(False)
            try:
                alive = True
                while True:
                    chunk = self.reused.recv(65536)
                    if not chunk:
                        alive = False
                        break
            except BlockingIOError:
                pass
            except ConnectionResetError:
                alive = False
            self.reused.settimeout(5.0)
            if not alive:
                self.reused.close()
                self.reused = None
                self._count("reused-reconnect")
        if self.reused is None:
            self.reused = self._connect()
            _handshake(self.reused)
        try:
            self.reused.sendall(payload)
        except (BrokenPipeError, ConnectionResetError):
            self.reused.close()
            self.reused = None

    def assert_alive(self) -> None:
        self.extra_check()
        assert four_letter_word(self.port, "ruok", timeout_s=5.0) == "imok", "ruok unanswered"
        if self.checker is None:
            self.checker = self._connect()
            _handshake(self.checker)
        self.checker_xid += 1
        xid = self.checker_xid
        self.checker.sendall(
            codec.encode_request(xid, OpCode.getData, GetDataRequest(CANARY, False))
        )
        head = _recv_exact(self.checker, 4)
        assert head is not None, "the checker session's connection was closed"
        frame = _recv_exact(self.checker, struct.unpack(">i", head)[0])
        assert frame is not None
        hdr, body = codec.decode_reply(frame, OpCode.getData)
        assert (hdr.xid, hdr.err) == (xid, 0), hdr
        assert isinstance(body, GetDataResponse) and body.data == CANARY_DATA, body

    def _count(self, key: str) -> None:
        self.stats[key] = self.stats.get(key, 0) + 1


def run_fuzz(target: Target, *, max_examples: int, shrink: bool = True) -> None:
    phases = [Phase.explicit, Phase.generate] + ([Phase.shrink] if shrink else [])

    @settings(
        max_examples=max_examples,
        deadline=None,
        database=None,
        phases=phases,
        derandomize=not shrink,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(case=cases())
    def survives(case: Case) -> None:
        target.send_case(case)
        target.assert_alive()

    survives()


# --- zkref under fuzz ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def zkref_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ZkrefServerProcess]:
    proc = ZkrefServerProcess(tmp_path_factory.mktemp("fuzz") / "zkref")
    proc.start()
    try:
        with socket.create_connection(("127.0.0.1", proc.port), timeout=5.0) as s:
            _handshake(s)
            for xid, path, data, acl in (
                (1, CANARY, CANARY_DATA, READ_ONLY_ACL),
                (2, "/fuzz", b"", OPEN_ACL),
            ):
                s.sendall(
                    codec.encode_request(xid, OpCode.create, CreateRequest(path, data, acl, 0))
                )
                head = _recv_exact(s, 4)
                assert head is not None
                frame = _recv_exact(s, struct.unpack(">i", head)[0])
                assert frame is not None
                hdr, _ = codec.decode_reply(frame, OpCode.create)
                assert hdr.err == 0, hdr
        yield proc
    finally:
        proc.stop()


def test_zkref_survives_mutated_frames(zkref_server: ZkrefServerProcess) -> None:
    def running() -> None:
        assert zkref_server.is_running(), f"zkref exited:\n{zkref_server.log_tail()}"

    target = Target(zkref_server.port, extra_check=running)
    t0 = time.monotonic()
    try:
        run_fuzz(target, max_examples=300)
    finally:
        target.close()
    elapsed = time.monotonic() - t0
    # The examples really reached the server in every mode (not all refused before sending). How
    # many mutated frames still get an answer depends on Hypothesis' draws (10 of 72 in one CI
    # run), so the bound is "some", not a share: a server that dropped every fresh session's
    # frames would have none.
    stats = target.stats
    assert stats.get("fresh-answered", 0) + stats.get("fresh-silent", 0) > 10, stats
    assert stats.get("fresh-answered", 0) >= 1, stats
    assert stats.get("first-silent", 0) + stats.get("first-answered", 0) > 10, stats
    fresh = Target(zkref_server.port)
    try:
        fresh.assert_alive()  # a brand-new session still reads the canary's bytes
    finally:
        fresh.close()
    # ... and so does one after a restart: the txn log the fuzz wrote to restores cleanly.
    zkref_server.restart()
    after = Target(zkref_server.port)
    try:
        after.assert_alive()
    finally:
        after.close()
    log = zkref_server.log_path.read_text(errors="replace")
    bad = [ln for ln in log.splitlines() if "internal error" in ln or "Traceback" in ln]
    assert not bad, "zkref logged internal errors under fuzz:\n" + "\n".join(bad[:20])
    print(f"\nfuzz: 300 examples in {elapsed:.1f} s")  # a figure, not a timed assertion


# --- the harness catches a crash ----------------------------------------------------------------


class FragileServer:
    """A toy ZooKeeper-ish server with a planted bug: an opcode it does not know raises out of its
    dispatch table and takes the whole server down (listener closed, nothing answers)."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.05)  # so the accept loop sees `crashed` promptly
        self.port = int(self.listener.getsockname()[1])
        self.crashed = threading.Event()
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)
        self._thread.start()
        stat = Stat(0, 0, 0, 0, 0, 0, 0, 0, len(CANARY_DATA), 0, 0)
        canary = codec.encode_reply(0, 0, 0, GetDataResponse(CANARY_DATA, stat))[20:]
        self.handlers: dict[int, Callable[[bytes], bytes]] = {
            op: lambda _b: b"" for op in KNOWN_OPS
        }
        self.handlers[OpCode.getData] = lambda b: canary if CANARY.encode() in b else b""

    def _accept_loop(self) -> None:
        while not self.crashed.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self._conns.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(60.0)
        try:
            with conn:
                head = _recv_exact(conn, 4)
                if head is None:
                    return
                if head == b"ruok":
                    conn.sendall(b"imok")
                    return
                first = True
                while head is not None:
                    (n,) = struct.unpack(">i", head)
                    if n < 0 or n > MAX_BUFFER:
                        return
                    body = _recv_exact(conn, n)
                    if body is None:
                        return
                    if first:
                        resp = ConnectResponse(0, 10_000, 1, b"\x00" * 16, False)
                        conn.sendall(codec.encode_connect_response(resp))
                        first = False
                    else:
                        if len(body) < 8:
                            return
                        xid, op = struct.unpack_from(">ii", body)
                        try:
                            reply = self.handlers[op](body)  # the planted bug: KeyError
                        except KeyError:
                            self.crash()
                            return
                        conn.sendall(struct.pack(">iiqi", 16 + len(reply), xid, 0, 0) + reply)
                    head = _recv_exact(conn, 4)
        except OSError:
            return

    def crash(self) -> None:
        self.crashed.set()
        self.listener.close()
        with self._lock:
            for c in self._conns:
                c.close()

    def close(self) -> None:
        self.crash()
        self._thread.join(timeout=10)


def test_fuzz_harness_catches_a_planted_crash() -> None:
    toy = FragileServer()
    target = Target(toy.port)
    try:
        # Sanity: the toy passes the property until something hits its bug.
        target.send_case(Case("fresh", (Frame(VALID_BODIES[0]),)))
        target.assert_alive()
        with pytest.raises(AssertionError):
            run_fuzz(target, max_examples=300, shrink=False)
        assert toy.crashed.is_set(), "the property failed, but not because of the planted bug"
    finally:
        target.close()
        toy.close()


def test_fragile_server_is_fine_without_its_trigger() -> None:
    """Control for the planted test: with only known opcodes the toy never crashes, so the
    failure above is the bug being found, not the harness failing on its own."""
    toy = FragileServer()
    target = Target(toy.port)
    try:
        for body in VALID_BODIES:
            target.send_case(Case("fresh", (Frame(body),)))
            target.assert_alive()
        assert not toy.crashed.is_set()
    finally:
        target.close()
        toy.close()


# --- differential: the same mutated frames to zkref and to Apache ZooKeeper 3.8 -----------------

MARKER_XID = 777_777


def _request_outcome(port: int, frame: Frame) -> tuple[object, ...]:
    """A fresh session sends `frame`, then a getData marker and a closeSession. The outcome: each
    reply's (xid, err, body size) -- notifications left out, their timing is not comparable --
    then how the exchange ended ("marker" answered, "closed", "timeout")."""
    with socket.create_connection(("127.0.0.1", port), timeout=5.0) as s:
        _handshake(s)
        marker = codec.encode_request(MARKER_XID, OpCode.getData, GetDataRequest(CANARY, False))
        close = codec.encode_request(MARKER_XID + 1, OpCode.closeSession, None)
        try:
            s.sendall(frame.wire() + marker + close)
        except (BrokenPipeError, ConnectionResetError):
            return ("closed",)
        replies: list[tuple[int, int, int]] = []
        end = "closed"
        s.settimeout(5.0)
        while True:
            try:
                head = _recv_exact(s, 4)
                body = None if head is None else _recv_exact(s, struct.unpack(">i", head)[0])
            except TimeoutError:
                end = "timeout"
                break
            except ConnectionResetError:
                break
            if body is None:
                break
            xid, _zxid, err = struct.unpack_from(">iqi", body)
            if xid == MARKER_XID:
                end = "marker"
                break
            if xid != -1 or len(body) == 16:  # a notification carries a WatcherEvent
                replies.append((xid, err, len(body)))
        return (*replies, end)


def _racy_tail(frame: Frame, outcome: tuple[object, ...]) -> tuple[object, ...]:
    """After Unimplemented, or after closeSession, ZooKeeper closes the connection -- but the close
    is queued behind the requests it has already read, so whether our marker is answered first is
    a race there (seen about 1 time in 15 for closeSession)."""
    first = outcome[0]
    op = struct.unpack_from(">i", frame.body, 4)[0] if len(frame.body) >= 8 else None
    if op == OpCode.sasl:
        # Known zkref bug, a strict xfail in test_bad_input.py (test_malformed_sasl_packet_closes):
        # ZooKeeper closes on a sasl packet that does not decode. Folded here so this test stays
        # about new divergences.
        return ("sasl",)
    if op == OpCode.checkWatches and isinstance(first, tuple) and first[1] in (-5, -121):
        # ZooKeeper's own quirk, not copied: checkWatches on a non-empty path without any "/"
        # fails inside its PathParentIterator and is answered MarshallingError (-5) instead of
        # NoWatcher (-121).
        return ((first[0], "-5|-121", first[2]), *outcome[1:])
    is_close = op == OpCode.closeSession
    if isinstance(first, tuple) and (first[1] == -6 or (is_close and first[1] == 0)):
        return (first, "then closed, racily")
    return outcome


def _no_zxid_near_now(frame: Frame) -> Frame:
    """A lastZxidSeen just ahead of one server but not the other is no divergence: keep only 0
    and values far ahead of both."""
    body = frame.body
    if len(body) >= 12:
        (zxid,) = struct.unpack_from(">q", body, 4)
        if 0 < zxid < 1 << 40:
            body = body[:4] + bytes(8) + body[12:]
    return Frame(body)


def _handshake_outcome(port: int, frame: Frame) -> tuple[object, ...]:
    with socket.create_connection(("127.0.0.1", port), timeout=5.0) as s:
        try:
            s.sendall(frame.wire())
        except (BrokenPipeError, ConnectionResetError):
            return ("closed",)
        try:
            head = _recv_exact(s, 4)
            body = None if head is None else _recv_exact(s, struct.unpack(">i", head)[0])
        except ConnectionResetError:
            return ("closed",)
        except TimeoutError:
            return ("timeout",)
        if body is None:
            return ("closed",)
        resp = codec.decode_connect_response(body)
        if resp.session_id:
            # Close it now, so that both servers' zxids move in step.
            s.sendall(codec.encode_request(1, OpCode.closeSession, None))
            _recv_exact(s, 4)
        return (
            "answered",
            len(body),
            resp.time_out,
            resp.session_id != 0,
            resp.passwd != bytes(16),
        )


@pytest.fixture(scope="module")
def both_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, int]]:
    if not apache_zookeeper_available():
        pytest.skip("Apache ZooKeeper (Debian's zookeeper package) is not installed")
    base = tmp_path_factory.mktemp("fuzz-diff")
    with standalone("zkref", base / "z") as ours, standalone("zookeeper", base / "a") as theirs:
        for srv in (ours, theirs):
            with socket.create_connection(("127.0.0.1", srv.port), timeout=5.0) as s:
                _handshake(s)
                for xid, path, data, acl in (
                    (1, CANARY, CANARY_DATA, READ_ONLY_ACL),
                    (2, "/fuzz", b"", OPEN_ACL),
                ):
                    req = CreateRequest(path, data, acl, 0)
                    s.sendall(codec.encode_request(xid, OpCode.create, req))
                    head = _recv_exact(s, 4)
                    assert head is not None
                    assert _recv_exact(s, struct.unpack(">i", head)[0]) is not None
        yield {"zkref": ours.port, "zookeeper": theirs.port}


# Derandomised: the same 100 examples every run, so CI never flakes on a divergence that is
# already known (each found one is a strict xfail in test_bad_input.py). Wider exploration (a few
# thousand random examples) is how those were found; rerun it with derandomize=False.
DIFF_SETTINGS = settings(
    max_examples=100,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def test_handshake_fuzz_same_outcome_as_zookeeper(both_servers: dict[str, int]) -> None:
    @DIFF_SETTINGS
    @given(frame=frames(st.just(CONNECT_BODY)).map(_no_zxid_near_now))
    def same(frame: Frame) -> None:
        ours = _handshake_outcome(both_servers["zkref"], frame)
        theirs = _handshake_outcome(both_servers["zookeeper"], frame)
        assert ours == theirs, frame.body.hex()

    same()


def test_request_fuzz_same_outcome_as_zookeeper(both_servers: dict[str, int]) -> None:
    # True length prefixes only: a prefix that promises more bytes swallows the marker, and
    # frame-length handling has its own cases in test_bad_input.py.
    @DIFF_SETTINGS
    @given(frame=frames(st.sampled_from(VALID_BODIES)).map(lambda f: Frame(f.body)))
    def same(frame: Frame) -> None:
        ours = _request_outcome(both_servers["zkref"], frame)
        theirs = _request_outcome(both_servers["zookeeper"], frame)
        assert _racy_tail(frame, ours) == _racy_tail(frame, theirs), (
            frame.body.hex(),
            ours,
            theirs,
        )

    same()
