"""Bad input over a raw socket against a real server process: zkref, and Apache ZooKeeper 3.8.

Every case sends bytes that a well-behaved client never sends, then checks three things:
1. the connection gets ZooKeeper's answer (decoded and compared field by field) or is closed;
2. the server keeps serving another client (a fresh session reads the canary node, `ruok` answers);
3. no data is lost (the canary node written at the start still holds its bytes).

Each case runs against both servers, so an expectation that Apache ZooKeeper 3.8 does not meet is a
wrong expectation. What Apache ZooKeeper 3.8 does, as observed here:
- a malformed body of a known opcode -> ReplyHeader(xid, lastZxid, MarshallingError -5), and the
  connection stays usable (`auth` and `sasl` excepted: their packets are read by the connection
  itself, which closes); a null path (length -1) inside a multi fails the whole multi with
  MarshallingError; deleteContainer (20, server-internal) from a client -> BadArguments;
- an unknown opcode -> ReplyHeader(xid, -1, Unimplemented -6), then the connection is closed
  (`UnimplementedRequestProcessor` ends with `sendCloseSession()`); the session itself survives;
- a frame length < 0 or > jute.maxbuffer, a body shorter than a RequestHeader, a first frame that is
  not a ConnectRequest (a request before the handshake), a ConnectRequest whose lastZxidSeen is
  ahead of the server -> closed, with no answer;
- an unknown session or a wrong password -> ConnectResponse(timeOut 0, sessionId 0, 16 zero bytes),
  then closed (a wrong password also drops the session's current connection, but not the session);
- a ConnectRequest without its trailing readOnly byte -> a ConnectResponse without it (36 bytes).
"""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from support.servers import KINDS, StandaloneServer, standalone, wait_for
from zkref.chaos.zookeeper_proc import four_letter_word
from zkref.server.process import ZkrefServerProcess
from zkref.wire import codec
from zkref.wire.constants import Err, OpCode
from zkref.wire.records import (
    ACL,
    ConnectRequest,
    ConnectResponse,
    CreateRequest,
    ErrorResponse,
    GetDataRequest,
    GetDataResponse,
    Id,
    MultiResponse,
    ReplyHeader,
)

pytestmark = pytest.mark.slow

MAX_BUFFER = 0xFFFFF  # jute.maxbuffer default, both servers
CANARY = "/canary"
CANARY_DATA = b"canary \x00\xff\x01 data that must survive every case"
OPEN_ACL = (ACL(31, Id("world", "anyone")),)
ZERO_PASSWD = b"\x00" * 16


def _i(v: int) -> bytes:
    return struct.pack(">i", v)


def _s(v: bytes) -> bytes:
    return _i(len(v)) + v


def connect_request(
    *,
    session_id: int = 0,
    passwd: bytes = ZERO_PASSWD,
    last_zxid_seen: int = 0,
    timeout_ms: int = 10_000,
    has_read_only: bool = True,
) -> bytes:
    return codec.encode_connect_request(
        ConnectRequest(0, last_zxid_seen, timeout_ms, session_id, passwd, False, has_read_only)
    )


class Raw:
    """One TCP connection that sends exactly the bytes it is given (no client library)."""

    def __init__(self, port: int, timeout_s: float = 10.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout_s)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.timeout_s = timeout_s

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _recv_exact(self, n: int, deadline: float) -> bytes | None:
        buf = bytearray()
        while len(buf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(
                    f"the server neither answered nor closed within {self.timeout_s}s"
                )
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(n - len(buf))
            except TimeoutError:
                continue
            except ConnectionResetError:
                return None
            if not chunk:
                return None
            buf += chunk
        return bytes(buf)

    def recv_frame(self) -> bytes | None:
        """The next frame's body, or None once the server has closed the connection."""
        deadline = time.monotonic() + self.timeout_s
        head = self._recv_exact(4, deadline)
        if head is None:
            return None
        (n,) = struct.unpack(">i", head)
        assert 0 <= n <= MAX_BUFFER, f"server sent a frame length of {n}"
        body = self._recv_exact(n, deadline)
        assert body is not None, "connection closed in the middle of a frame"
        return body

    def expect_closed(self) -> None:
        frame = self.recv_frame()
        assert frame is None, f"expected the connection closed, got a frame {frame.hex()}"

    def handshake(self, **kw: object) -> ConnectResponse:
        self.send(connect_request(**kw))  # type: ignore[arg-type]
        frame = self.recv_frame()
        assert frame is not None, "connection closed instead of a ConnectResponse"
        return codec.decode_connect_response(frame)

    def call(self, xid: int, op: int, body: codec.Request | bytes | None) -> Reply:
        self.send(codec.encode_request(xid, op, body))
        frame = self.recv_frame()
        if frame is None:
            return CLOSED
        hdr, rec = codec.decode_reply(frame, op)
        return Answer(hdr.xid, hdr.err, rec)

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Raw:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class Answer:
    xid: int
    err: int
    body: object = None


@dataclass(frozen=True)
class Closed:
    pass


Reply = Answer | Closed
CLOSED = Closed()


def session(port: int) -> Raw:
    raw = Raw(port)
    resp = raw.handshake()
    assert resp.session_id != 0 and resp.time_out > 0, resp
    return raw


def read_canary(raw: Raw, xid: int = 1000) -> None:
    reply = raw.call(xid, OpCode.getData, GetDataRequest(CANARY, False))
    assert isinstance(reply, Answer) and reply.xid == xid and reply.err == 0, reply
    assert isinstance(reply.body, GetDataResponse)
    assert reply.body.data == CANARY_DATA


def assert_still_serving(server: StandaloneServer) -> None:
    """Another client is served and the canary is intact; zkref logged no internal error."""
    with session(server.port) as raw:
        read_canary(raw)
        assert raw.call(1001, OpCode.closeSession, None) == Answer(1001, 0)
    assert four_letter_word(server.port, "ruok", timeout_s=5.0) == "imok"
    proc = getattr(server, "proc", None)
    if isinstance(proc, ZkrefServerProcess):
        text = proc.log_path.read_text(errors="replace")
        bad = [ln for ln in text.splitlines() if "internal error" in ln or "Traceback" in ln]
        assert not bad, f"zkref logged an internal error:\n{proc.log_tail(60)}"


@pytest.fixture(scope="module", params=KINDS)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[StandaloneServer]:
    kind: str = request.param
    base: Path = tmp_path_factory.mktemp(f"bad-input-{kind}")
    with standalone(kind, base) as s:
        with session(s.port) as raw:
            reply = raw.call(1, OpCode.create, CreateRequest(CANARY, CANARY_DATA, OPEN_ACL, 0))
            assert isinstance(reply, Answer) and (reply.xid, reply.err) == (1, 0), reply
            raw.call(2, OpCode.closeSession, None)
        yield s
        assert_still_serving(s)


# --- malformed frames after the handshake -------------------------------------------------------

# A known opcode whose body does not decode: ZooKeeper answers MarshallingError and carries on.
MALFORMED_BODIES: dict[str, tuple[int, int, bytes]] = {
    "getData-garbage": (7, OpCode.getData, b"\xff\xff"),
    "getData-path-past-end": (7, OpCode.getData, _i(100) + b"/a"),
    "getData-negative-path-length": (7, OpCode.getData, _i(-5) + b"/a\x00"),
    "getData-no-watch-byte": (7, OpCode.getData, _s(CANARY.encode())),
    "exists-negative-path-length": (7, OpCode.exists, _i(-1) + b"\x00"),
    "getChildren-empty-body": (7, OpCode.getChildren, b""),
    "create-path-past-end": (7, OpCode.create, _i(1000) + b"/x"),
    "create-negative-data-length": (7, OpCode.create, _s(b"/x") + _i(-7) + _i(0) + _i(0)),
    "create-truncated-acl": (7, OpCode.create, _s(b"/x") + _s(b"d") + _i(1)),
    "setData-negative-data-length": (7, OpCode.setData, _s(CANARY.encode()) + _i(-7) + _i(-1)),
    "setData-data-past-end": (7, OpCode.setData, _s(CANARY.encode()) + _i(70) + _i(-1)),
    "setData-no-version": (7, OpCode.setData, _s(CANARY.encode()) + _s(b"lost")),
    "delete-no-version": (7, OpCode.delete, _s(CANARY.encode())),
    "multi-garbage": (7, OpCode.multi, _i(1) + _i(1) + b"\x00"),
    "sync-path-past-end": (7, OpCode.sync, _i(5) + b"/"),
    "setWatches-garbage": (-8, OpCode.setWatches, b"\x00"),
}


@pytest.mark.parametrize("case", list(MALFORMED_BODIES))
def test_malformed_body_answers_marshalling_error_like_zookeeper(
    server: StandaloneServer, case: str
) -> None:
    xid, op, body = MALFORMED_BODIES[case]
    with session(server.port) as raw:
        assert raw.call(xid, op, body) == Answer(xid, Err.MARSHALLINGERROR)
        read_canary(raw, xid=8)
    assert_still_serving(server)


_MULTI_END = _i(-1) + b"\x01" + _i(-1)  # MultiHeader{type -1, done true, err -1}


def _multi_op(op: int, body: bytes) -> bytes:
    return _i(op) + b"\x00" + _i(-1) + body


NULL_PATH_MULTIS: dict[str, bytes] = {
    "check": _multi_op(OpCode.check, _i(-1) + _i(5)) + _MULTI_END,
    "create": _multi_op(OpCode.create, _i(-1) + _s(b"d") + _i(1) + _i(31))
    + _s(b"world")
    + _s(b"anyone")
    + _i(0)
    + _MULTI_END,
    "setData": _multi_op(OpCode.setData, _i(-1) + _s(b"d") + _i(-1)) + _MULTI_END,
    "delete": _multi_op(OpCode.delete, _i(-1) + _i(-1)) + _MULTI_END,
}


@pytest.mark.parametrize("case", list(NULL_PATH_MULTIS))
def test_multi_op_with_null_path_is_a_marshalling_error(
    server: StandaloneServer, case: str
) -> None:
    """A path of length -1 (null) inside a multi: ZooKeeper fails the whole multi with
    MarshallingError (ReplyHeader err -5, a MultiResponse with no results) and keeps the
    connection; an empty path ("") is a per-op BadArguments instead (checked below)."""
    with session(server.port) as raw:
        reply = raw.call(11, OpCode.multi, NULL_PATH_MULTIS[case])
        assert isinstance(reply, Answer) and (reply.xid, reply.err) == (11, -5), reply
        assert reply.body == MultiResponse(()), reply
        read_canary(raw)
    assert_still_serving(server)


def test_multi_op_with_empty_path_is_bad_arguments(server: StandaloneServer) -> None:
    with session(server.port) as raw:
        body = _multi_op(OpCode.check, _s(b"") + _i(5)) + _MULTI_END
        reply = raw.call(12, OpCode.multi, body)
        assert reply == Answer(12, 0, MultiResponse(((-1, ErrorResponse(Err.BADARGUMENTS)),))), (
            reply
        )
    assert_still_serving(server)


def test_delete_container_from_a_client(server: StandaloneServer) -> None:
    """deleteContainer (20) is meant for the server itself, but ZooKeeper 3.8 takes it from a
    client too: it reads the raw request bytes as the path, which never validates, so the answer
    is BadArguments and the connection stays."""
    with session(server.port) as raw:
        assert raw.call(13, OpCode.deleteContainer, CANARY.encode()) == Answer(13, Err.BADARGUMENTS)
        read_canary(raw)
    assert_still_serving(server)


def test_malformed_auth_packet_closes(server: StandaloneServer) -> None:
    with session(server.port) as raw:
        assert raw.call(-4, OpCode.auth, b"\x00") == CLOSED
    assert_still_serving(server)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(_i(1000) + b"tok", id="token-length-past-end"),
        pytest.param(b"\x00\x00", id="truncated"),
    ],
)
def test_malformed_sasl_packet_closes(server: StandaloneServer, body: bytes) -> None:
    """Like auth, a sasl packet is read by the connection itself (processSasl): one that does not
    decode closes the connection, where any other opcode would get MarshallingError."""
    with session(server.port) as raw:
        assert raw.call(102, OpCode.sasl, body) == CLOSED
    assert_still_serving(server)


def test_well_formed_sasl_packet_without_sasl_is_answered(server: StandaloneServer) -> None:
    """Without a SASL provider both answer a GetSASLRequest with err 0 and a null token."""
    with session(server.port) as raw:
        reply = raw.call(102, OpCode.sasl, _s(b"token"))
        assert isinstance(reply, Answer) and (reply.xid, reply.err) == (102, 0), reply
        read_canary(raw)
    assert_still_serving(server)


# Frames both servers answer by closing the connection, sent after a good handshake.
CLOSING_FRAMES: dict[str, bytes] = {
    "empty-frame": _i(0),
    "header-4-bytes": _i(4) + b"abcd",
    "header-7-bytes": _i(7) + b"\x00" * 7,
    "length-over-maxbuffer": _i(MAX_BUFFER + 1) + b"x" * 64,
    "length-2GiB": _i(0x7FFFFFFF) + b"x" * 64,
    "length-minus-1": _i(-1) + b"x" * 64,
    "length-minus-5": _i(-5) + b"x" * 64,
    "length-int-min": _i(-(2**31)) + b"x" * 64,
}


@pytest.mark.parametrize("case", list(CLOSING_FRAMES))
def test_bad_frame_after_handshake_closes(server: StandaloneServer, case: str) -> None:
    with session(server.port) as raw:
        raw.send(CLOSING_FRAMES[case])
        raw.expect_closed()
    assert_still_serving(server)


def test_over_maxbuffer_closes_even_with_the_whole_body_sent(server: StandaloneServer) -> None:
    """The length alone decides: the server does not wait for (or buffer) a too-large body."""
    with session(server.port) as raw:
        raw.send(_i(MAX_BUFFER + 1) + _i(7) + _i(OpCode.getData))
        raw.expect_closed()
    assert_still_serving(server)


def test_frame_of_exactly_maxbuffer_is_read(server: StandaloneServer) -> None:
    """jute.maxbuffer itself is allowed (ZooKeeper refuses only len > maxBuffer)."""
    with session(server.port) as raw:
        body = b"\x00" * (MAX_BUFFER - 8)
        assert raw.call(9, 555, body) == Answer(9, Err.UNIMPLEMENTED)
    assert_still_serving(server)


# --- unknown opcodes ----------------------------------------------------------------------------

UNKNOWN_OPS = {
    "op-55": (7, 55, None),
    "op-999-with-body": (123, 999, b"\xff" * 9),
    "op-0": (5, 0, b""),
}


@pytest.mark.parametrize("case", list(UNKNOWN_OPS))
def test_unknown_opcode_answers_unimplemented(server: StandaloneServer, case: str) -> None:
    """ReplyHeader(xid, -1, Unimplemented) with the request's xid; the session is not lost."""
    xid, op, body = UNKNOWN_OPS[case]
    with Raw(server.port) as raw:
        resp = raw.handshake()
        raw.send(codec.encode_request(xid, op, body))
        frame = raw.recv_frame()
        assert frame is not None, "closed without an answer"
        hdr, rec = codec.decode_reply(frame, op)
        assert hdr == ReplyHeader(xid, -1, Err.UNIMPLEMENTED) and rec is None, (hdr, rec)
    # The session outlives whatever happened to the connection: re-attach and read.
    with Raw(server.port) as again:
        back = again.handshake(session_id=resp.session_id, passwd=resp.passwd)
        assert back.session_id == resp.session_id and back.time_out > 0
        read_canary(again)
        assert again.call(3, OpCode.closeSession, None) == Answer(3, 0)
    assert_still_serving(server)


@pytest.mark.parametrize("case", list(UNKNOWN_OPS))
def test_unknown_opcode_then_closed_like_zookeeper(server: StandaloneServer, case: str) -> None:
    """UnimplementedRequestProcessor ends with cnxn.sendCloseSession(): the connection goes."""
    xid, op, body = UNKNOWN_OPS[case]
    with session(server.port) as raw:
        assert raw.call(xid, op, body) == Answer(xid, Err.UNIMPLEMENTED)
        raw.expect_closed()
    assert_still_serving(server)


def test_second_connect_request_is_an_unknown_request(server: StandaloneServer) -> None:
    """After the handshake a ConnectRequest is read as a RequestHeader: xid 0 (protocolVersion),
    type 0 (high half of lastZxidSeen) -- an unknown opcode."""
    with session(server.port) as raw:
        raw.send(connect_request())
        frame = raw.recv_frame()
        assert frame is not None
        hdr, _ = codec.decode_reply(frame, 0)
        assert (hdr.xid, hdr.err) == (0, Err.UNIMPLEMENTED)
    assert_still_serving(server)


# --- the handshake ------------------------------------------------------------------------------

_GOOD_CONNECT = connect_request()[4:]

BAD_FIRST_FRAMES: dict[str, bytes] = {
    # A request before the handshake is read as a ConnectRequest: too short, or its
    # "lastZxidSeen" (xid/type/path bytes) is far ahead of the server.
    "getData-before-handshake": codec.encode_request(1, OpCode.getData, GetDataRequest("/", False)),
    "create-before-handshake": codec.encode_request(
        1, OpCode.create, CreateRequest(CANARY + "x", b"", OPEN_ACL, 0)
    ),
    "ping-before-handshake": codec.encode_request(-2, OpCode.ping, None),
    "truncated-connect-request": _i(20) + _GOOD_CONNECT[:20],
    "connect-passwd-length-past-end": _i(28) + struct.pack(">iqiqi", 0, 0, 10_000, 0, 1000),
    "garbage-3-bytes": _i(3) + b"abc",
    "empty-first-frame": _i(0),
    "first-length-over-maxbuffer": _i(MAX_BUFFER + 1) + b"x" * 100,
    "first-length-negative": _i(-5) + b"x" * 100,
}


@pytest.mark.parametrize("case", list(BAD_FIRST_FRAMES))
def test_bad_first_frame_closes(server: StandaloneServer, case: str) -> None:
    with Raw(server.port) as raw:
        raw.send(BAD_FIRST_FRAMES[case])
        raw.expect_closed()
    assert_still_serving(server)


def test_handshake_with_last_zxid_ahead_closes(server: StandaloneServer) -> None:
    with Raw(server.port) as raw:
        raw.send(connect_request(last_zxid_seen=1 << 40))
        raw.expect_closed()
    assert_still_serving(server)


EXPIRED = ConnectResponse(0, 0, 0, ZERO_PASSWD)


def test_handshake_for_unknown_session_is_refused(server: StandaloneServer) -> None:
    with Raw(server.port) as raw:
        resp = raw.handshake(session_id=0x0123_4567_89AB_CDEF, passwd=b"\x07" * 16)
        assert resp == EXPIRED and resp.has_read_only
        raw.expect_closed()
    assert_still_serving(server)


def test_handshake_with_wrong_password_is_refused_and_session_kept(
    server: StandaloneServer,
) -> None:
    with Raw(server.port) as owner:
        owner_resp = owner.handshake()
        read_canary(owner)
        with Raw(server.port) as thief:
            resp = thief.handshake(session_id=owner_resp.session_id, passwd=b"\x01" * 16)
            assert resp == EXPIRED
            thief.expect_closed()
        # ZooKeeper drops the session's current connection before it checks the password
        # (closeSession(sessionId, CLIENT_RECONNECT) in processConnectRequest) ...
        owner.expect_closed()
    # ... but a wrong password neither expires nor takes the session: the owner re-attaches.
    with Raw(server.port) as back:
        again = back.handshake(session_id=owner_resp.session_id, passwd=owner_resp.passwd)
        assert again.session_id == owner_resp.session_id and again.time_out > 0
        read_canary(back)
        assert back.call(2, OpCode.closeSession, None) == Answer(2, 0)
    assert_still_serving(server)


def test_old_client_without_read_only_byte(server: StandaloneServer) -> None:
    """A ConnectRequest without the trailing readOnly byte gets a ConnectResponse without it."""
    with Raw(server.port) as raw:
        raw.send(connect_request(has_read_only=False))
        frame = raw.recv_frame()
        assert frame is not None
        assert len(frame) == 4 + 4 + 8 + 4 + 16, frame.hex()  # no readOnly byte
        resp = codec.decode_connect_response(frame)
        assert not resp.has_read_only and resp.session_id != 0 and resp.time_out == 10_000
        read_canary(raw)
        assert raw.call(2, OpCode.closeSession, None) == Answer(2, 0)
    assert_still_serving(server)


def test_null_password_is_a_new_session(server: StandaloneServer) -> None:
    """passwd length -1 (a null buffer) with session id 0 is an ordinary new session."""
    with Raw(server.port) as raw:
        raw.send(_i(28) + struct.pack(">iqiqi", 0, 0, 10_000, 0, -1))
        frame = raw.recv_frame()
        assert frame is not None
        resp = codec.decode_connect_response(frame)
        assert resp.session_id != 0 and len(resp.passwd) == 16 and not resp.has_read_only
        read_canary(raw)
    assert_still_serving(server)


# --- connections that go away -------------------------------------------------------------------


@pytest.mark.parametrize(
    "prefix",
    [
        pytest.param(b"\x00\x00", id="half-a-length"),
        pytest.param(_GOOD_CONNECT[:4], id="length-only"),
        pytest.param(connect_request()[:20], id="half-a-connect-request"),
        pytest.param(connect_request() + _i(100) + b"\x00" * 10, id="half-a-request"),
    ],
)
def test_half_a_frame_then_close(server: StandaloneServer, prefix: bytes) -> None:
    raw = Raw(server.port)
    raw.send(prefix)
    # Close with a RST as well as the FIN case: the server must not care how we left.
    raw.close()
    rst = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    rst.sendall(prefix)
    rst.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    rst.close()
    assert_still_serving(server)


def _connections(port: int) -> int:
    reply = four_letter_word(port, "srvr", timeout_s=5.0) or ""
    for line in reply.splitlines():
        if line.startswith("Connections:"):
            return int(line.split(":", 1)[1])
    raise AssertionError(f"no Connections line in srvr: {reply!r}")


def test_flood_of_connections_opened_and_closed(server: StandaloneServer) -> None:
    """200 connections at once -- idle, mid-handshake, handshaken, mid-frame -- then all gone."""
    baseline = _connections(server.port)
    socks: list[socket.socket] = []
    try:
        for i in range(200):
            s = socket.create_connection(("127.0.0.1", server.port), timeout=10)
            socks.append(s)
            match i % 4:
                case 0:
                    pass
                case 1:
                    s.sendall(connect_request()[:10])
                case 2:
                    s.sendall(connect_request())
                case _:
                    s.sendall(connect_request() + _i(50) + b"\x00" * 8)
        # The handshaken ones are answered while the others hang around.
        for s in socks[2::4]:
            s.settimeout(10)
            head = s.recv(4)
            assert len(head) == 4 and struct.unpack(">i", head)[0] == 37
        with session(server.port) as raw:
            read_canary(raw)
    finally:
        for s in socks:
            s.close()
    wait_for(
        lambda: _connections(server.port) <= baseline,
        timeout_s=20,
        what=f"the flood's connections to be gone (baseline {baseline})",
    )
    assert_still_serving(server)


def test_data_survives_a_restart_after_the_bad_input(server: StandaloneServer) -> None:
    """Last in the module (per server): whatever the cases above did, the canary is on disk."""
    with session(server.port) as raw:
        reply = raw.call(1, OpCode.create, CreateRequest("/after-bad-input", b"late", OPEN_ACL, 0))
        assert isinstance(reply, Answer) and (reply.xid, reply.err) == (1, 0), reply
    server.restart()
    wait_for(
        lambda: four_letter_word(server.port, "ruok", timeout_s=2.0) == "imok",
        timeout_s=60,
        what="the restarted server to answer ruok",
    )
    with session(server.port) as raw:
        read_canary(raw)
        late = raw.call(2, OpCode.getData, GetDataRequest("/after-bad-input", False))
        assert isinstance(late, Answer) and late.err == 0, late
        assert isinstance(late.body, GetDataResponse) and late.body.data == b"late"
    assert_still_serving(server)
