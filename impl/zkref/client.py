"""A small asyncio ZooKeeper client on top of `zkref.wire.codec` (a shell).

Used by our tests, differential tests and tools, against zkref and Apache ZooKeeper alike.

Rules:
- one connection, one session; requests are pipelined, each tagged with the next xid, and the
  server answers in order, so replies are matched to requests by xid (reserved xids -2 ping,
  -4 auth and -8 setWatches may be outstanding several times: they are matched FIFO);
- typed methods raise `ZooKeeperError` for a non-zero error code; `raw_request` never does
  (differential tests compare codes); a lost connection fails every outstanding request with
  `ConnectionLost` (the request may or may not have happened);
- a ping goes out whenever nothing was sent for a third of the negotiated session timeout;
- watch notifications, and a Disconnected state event on an unexpected connection loss, go to
  `events` in arrival order (an event before the reply that follows it, as ZooKeeper orders them);
- no retries, no reconnects: a new `Client.connect(session_id=..., passwd=...)` re-attaches.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from zkref.wire.codec import (
    DecodeError,
    FrameDecoder,
    Request,
    Response,
    decode_connect_response,
    decode_notification,
    decode_reply,
    encode_connect_request,
    encode_request,
)
from zkref.wire.constants import (
    DEFAULT_JUTE_MAXBUFFER,
    PROTOCOL_VERSION,
    SESSION_PASSWORD_LEN,
    AddWatchMode,
    CreateMode,
    Err,
    EventType,
    KeeperState,
    OpCode,
    WatcherType,
    Xid,
)
from zkref.wire.records import (
    ACL,
    AddWatchRequest,
    AuthPacket,
    CheckVersionRequest,
    CheckWatchesRequest,
    ClientInfo,
    ConnectRequest,
    ConnectResponse,
    Create2Response,
    CreateRequest,
    CreateResponse,
    CreateTTLRequest,
    DeleteRequest,
    ExistsRequest,
    ExistsResponse,
    GetACLRequest,
    GetACLResponse,
    GetAllChildrenNumberRequest,
    GetAllChildrenNumberResponse,
    GetChildren2Request,
    GetChildren2Response,
    GetChildrenRequest,
    GetChildrenResponse,
    GetDataRequest,
    GetDataResponse,
    GetEphemeralsRequest,
    GetEphemeralsResponse,
    Id,
    MultiOpRequest,
    MultiOpResult,
    MultiReadOpRequest,
    MultiReadOpResult,
    MultiReadRequest,
    MultiReadResponse,
    MultiRequest,
    MultiResponse,
    RemoveWatchesRequest,
    ReplyHeader,
    SetACLRequest,
    SetACLResponse,
    SetDataRequest,
    SetDataResponse,
    SetWatches,
    SetWatches2,
    Stat,
    SyncRequest,
    SyncResponse,
    WatcherEvent,
    WhoAmIResponse,
)

__all__ = [
    "OPEN_ACL_UNSAFE",
    "Client",
    "ConnectionLost",
    "Notification",
    "SessionExpired",
    "ZooKeeperError",
]

OPEN_ACL_UNSAFE: tuple[ACL, ...] = (ACL(31, Id("world", "anyone")),)

T = TypeVar("T")


class ZooKeeperError(Exception):
    """The server answered with a non-zero error code."""

    def __init__(self, err: int, op: int, path: str | None = None) -> None:
        try:
            name = Err(err).name
        except ValueError:
            name = str(err)
        try:
            op_name = OpCode(op).name
        except ValueError:
            op_name = str(op)
        super().__init__(f"{op_name}{'' if path is None else ' ' + path}: {name} ({err})")
        self.err = err
        self.op = op
        self.path = path


class ConnectionLost(Exception):
    """The connection closed before the reply arrived (the request may have happened)."""


class SessionExpired(ConnectionLost):
    """The server refused to re-attach the session (ConnectResponse with timeOut 0)."""


@dataclass(frozen=True, slots=True)
class Notification:
    """A watch event (or a connection state change, type None_) and the zxid its header held."""

    zxid: int
    event: WatcherEvent

    @property
    def type(self) -> int:
        return self.event.type

    @property
    def state(self) -> int:
        return self.event.state

    @property
    def path(self) -> str:
        return self.event.path


# Requests that ZooKeeper's clients send with a reserved xid instead of the next one.
_RESERVED_XIDS: dict[int, int] = {
    int(OpCode.ping): int(Xid.PING),
    int(OpCode.auth): int(Xid.AUTH),
    int(OpCode.setWatches): int(Xid.SET_WATCHES),
    int(OpCode.setWatches2): int(Xid.SET_WATCHES),
}
_NOTIFICATION_XID = int(Xid.NOTIFICATION)
_PING_XID = int(Xid.PING)

_Pending = tuple[int, "asyncio.Future[tuple[ReplyHeader, Response | None]] | None"]


class _Protocol(asyncio.Protocol):
    def __init__(self, client: Client) -> None:
        self.client = client

    def data_received(self, data: bytes) -> None:
        self.client._on_data(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.client._on_lost(exc)


class Client:
    """One ZooKeeper session over one TCP connection. Create with `await Client.connect(...)`."""

    def __init__(self) -> None:
        self.events: asyncio.Queue[Notification] = asyncio.Queue()
        self.session_id = 0
        self.passwd = b""
        self.timeout_ms = 0
        self.read_only = False
        self.last_zxid = 0
        self.pings_answered = 0
        self.connect_response: ConnectResponse | None = None
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._decoder = FrameDecoder(DEFAULT_JUTE_MAXBUFFER)
        self._handshake: asyncio.Future[ConnectResponse] = self._loop.create_future()
        self._pending: dict[int, collections.deque[_Pending]] = {}
        self._next_xid = 1
        self._wbuf: list[bytes] = []
        self._last_send = 0.0
        self._ping_handle: asyncio.TimerHandle | None = None
        self._closing = False
        self._lost: BaseException | None = None
        self.closed: asyncio.Future[None] = self._loop.create_future()

    # -- connection ---------------------------------------------------------------------------

    @classmethod
    async def connect(
        cls,
        host: str,
        port: int,
        *,
        timeout_ms: int = 10000,
        session_id: int = 0,
        passwd: bytes = b"",
        read_only: bool = False,
        last_zxid_seen: int = 0,
        send_read_only_byte: bool = True,
        connect_timeout_s: float = 10.0,
    ) -> Client:
        """Open a connection and establish (or re-attach) a session."""
        self = cls()
        self.last_zxid = last_zxid_seen
        req = ConnectRequest(
            PROTOCOL_VERSION,
            last_zxid_seen,
            timeout_ms,
            session_id,
            passwd or b"\0" * SESSION_PASSWORD_LEN,
            read_only,
            send_read_only_byte,
        )
        try:
            async with asyncio.timeout(connect_timeout_s):
                transport, _ = await self._loop.create_connection(
                    lambda: _Protocol(self), host, port
                )
                self._transport = transport
                transport.write(encode_connect_request(req))
                resp = await self._handshake
        except BaseException:
            self.disconnect()
            raise
        self.connect_response = resp
        if resp.time_out <= 0:
            transport.close()
            raise SessionExpired(f"session 0x{session_id:x} expired or unknown")
        self.session_id = resp.session_id
        self.passwd = resp.passwd
        self.timeout_ms = resp.time_out
        self.read_only = resp.read_only
        self._last_send = self._loop.time()
        self._schedule_ping()
        return self

    @property
    def connected(self) -> bool:
        return self._transport is not None and self._lost is None and not self._closing

    def _on_data(self, data: bytes) -> None:
        try:
            frames = self._decoder.feed(data)
        except DecodeError as e:
            self._abort(e)
            return
        for f in frames:
            if not self._handshake.done():
                try:
                    self._handshake.set_result(decode_connect_response(f))
                except DecodeError as e:
                    self._handshake.set_exception(e)
                continue
            self._on_frame(f)

    def _on_frame(self, f: bytes) -> None:
        xid = int.from_bytes(f[0:4], "big", signed=True)
        if xid == _NOTIFICATION_XID:
            try:
                hdr, event = decode_notification(f)
            except DecodeError as e:
                self._abort(e)
                return
            self.events.put_nowait(Notification(hdr.zxid, event))
            return
        q = self._pending.get(xid)
        if not q:
            self._abort(DecodeError(f"reply with unexpected xid {xid}"))
            return
        op, fut = q.popleft()
        if not q:
            del self._pending[xid]
        try:
            reply = decode_reply(f, op)
        except DecodeError as e:
            if fut is not None and not fut.done():
                fut.set_exception(e)
            return
        if reply[0].zxid > self.last_zxid:
            self.last_zxid = reply[0].zxid
        if xid == _PING_XID:
            self.pings_answered += 1
        if fut is not None and not fut.done():
            fut.set_result(reply)

    def _on_lost(self, exc: Exception | None) -> None:
        if self._lost is None:
            self._lost = exc or ConnectionLost("connection closed")
        if self._ping_handle is not None:
            self._ping_handle.cancel()
        if not self._handshake.done():
            self._handshake.set_exception(ConnectionLost("closed during the handshake"))
        pending, self._pending = self._pending, {}
        for q in pending.values():
            for _, fut in q:
                if fut is not None and not fut.done():
                    fut.set_exception(ConnectionLost(str(self._lost)))
        if not self._closing:
            self.events.put_nowait(
                Notification(-1, WatcherEvent(EventType.None_, KeeperState.Disconnected, ""))
            )
        if not self.closed.done():
            self.closed.set_result(None)

    def _abort(self, exc: BaseException) -> None:
        self._lost = exc
        if self._transport is not None:
            self._transport.abort()

    def _schedule_ping(self) -> None:
        interval = self.timeout_ms / 3000.0
        self._ping_handle = self._loop.call_at(self._last_send + interval, self._ping_due)

    def _ping_due(self) -> None:
        if not self.connected:
            return
        if self._loop.time() - self._last_send >= self.timeout_ms / 3000.0 - 0.001:
            self._send(Xid.PING, OpCode.ping, None, None)
        self._schedule_ping()

    def _send(
        self,
        xid: int,
        op: int,
        body: Request | bytes | None,
        fut: asyncio.Future[tuple[ReplyHeader, Response | None]] | None,
    ) -> None:
        if self._transport is None or self._lost is not None:
            raise ConnectionLost(str(self._lost or "not connected"))
        frame = encode_request(xid, op, body)
        q = self._pending.get(xid)
        if q is None:
            q = self._pending[xid] = collections.deque()
        q.append((op, fut))
        # Frames sent in one loop iteration go out in one write (one syscall for a pipeline).
        if not self._wbuf:
            self._loop.call_soon(self._flush)
        self._wbuf.append(frame)
        self._last_send = self._loop.time()

    def _flush(self) -> None:
        buf, self._wbuf = self._wbuf, []
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(b"".join(buf))

    # -- requests -----------------------------------------------------------------------------

    def _xid_for(self, op: int) -> int:
        xid = _RESERVED_XIDS.get(op)
        if xid is not None:
            return xid
        xid = self._next_xid
        self._next_xid = xid + 1 if xid < 0x7FFFFFFF else 1
        return xid

    def send_request(
        self, op: int, body: Request | bytes | None, *, xid: int | None = None
    ) -> asyncio.Future[tuple[ReplyHeader, Response | None]]:
        """Send now; the future resolves to (ReplyHeader, body). For pipelining without awaits."""
        fut: asyncio.Future[tuple[ReplyHeader, Response | None]] = self._loop.create_future()
        self._send(self._xid_for(op) if xid is None else xid, op, body, fut)
        return fut

    async def raw_request(
        self, op: int, body: Request | bytes | None, *, xid: int | None = None
    ) -> tuple[ReplyHeader, Response | None]:
        """One request; the reply's header and body, error codes returned, never raised."""
        return await self.send_request(op, body, xid=xid)

    async def _call(self, op: int, body: Request | None, path: str | None, cls: type[T]) -> T:
        hdr, resp = await self.send_request(op, body)
        if hdr.err != 0:
            raise ZooKeeperError(hdr.err, op, path)
        if not isinstance(resp, cls):
            raise DecodeError(f"{OpCode(op).name}: expected {cls.__name__}, got {resp!r}")
        return resp

    async def _call_empty(self, op: int, body: Request | None, path: str | None) -> None:
        hdr, _ = await self.send_request(op, body)
        if hdr.err != 0:
            raise ZooKeeperError(hdr.err, op, path)

    async def create(
        self,
        path: str,
        data: bytes | None = b"",
        acl: Iterable[ACL] = OPEN_ACL_UNSAFE,
        flags: int = CreateMode.PERSISTENT,
    ) -> str:
        req = CreateRequest(path, data, tuple(acl), int(flags))
        return (await self._call(OpCode.create, req, path, CreateResponse)).path

    async def create2(
        self,
        path: str,
        data: bytes | None = b"",
        acl: Iterable[ACL] = OPEN_ACL_UNSAFE,
        flags: int = CreateMode.PERSISTENT,
    ) -> tuple[str, Stat]:
        req = CreateRequest(path, data, tuple(acl), int(flags))
        r = await self._call(OpCode.create2, req, path, Create2Response)
        return r.path, r.stat

    async def create_container(
        self, path: str, data: bytes | None = b"", acl: Iterable[ACL] = OPEN_ACL_UNSAFE
    ) -> tuple[str, Stat]:
        req = CreateRequest(path, data, tuple(acl), int(CreateMode.CONTAINER))
        r = await self._call(OpCode.createContainer, req, path, Create2Response)
        return r.path, r.stat

    async def create_ttl(
        self,
        path: str,
        data: bytes | None,
        ttl_ms: int,
        acl: Iterable[ACL] = OPEN_ACL_UNSAFE,
        flags: int = CreateMode.PERSISTENT_WITH_TTL,
    ) -> tuple[str, Stat]:
        req = CreateTTLRequest(path, data, tuple(acl), int(flags), ttl_ms)
        r = await self._call(OpCode.createTTL, req, path, Create2Response)
        return r.path, r.stat

    async def delete(self, path: str, version: int = -1) -> None:
        await self._call_empty(OpCode.delete, DeleteRequest(path, version), path)

    async def exists(self, path: str, watch: bool = False) -> Stat | None:
        """The node's Stat, or None if there is no such node (an exist watch is still set)."""
        hdr, resp = await self.send_request(OpCode.exists, ExistsRequest(path, watch))
        if hdr.err == Err.NONODE:
            return None
        if hdr.err != 0:
            raise ZooKeeperError(hdr.err, OpCode.exists, path)
        assert isinstance(resp, ExistsResponse), resp
        return resp.stat

    async def get_data(self, path: str, watch: bool = False) -> tuple[bytes | None, Stat]:
        r = await self._call(OpCode.getData, GetDataRequest(path, watch), path, GetDataResponse)
        return r.data, r.stat

    async def set_data(self, path: str, data: bytes | None, version: int = -1) -> Stat:
        req = SetDataRequest(path, data, version)
        return (await self._call(OpCode.setData, req, path, SetDataResponse)).stat

    async def get_acl(self, path: str) -> tuple[tuple[ACL, ...], Stat]:
        r = await self._call(OpCode.getACL, GetACLRequest(path), path, GetACLResponse)
        return r.acl, r.stat

    async def set_acl(self, path: str, acl: Iterable[ACL], version: int = -1) -> Stat:
        req = SetACLRequest(path, tuple(acl), version)
        return (await self._call(OpCode.setACL, req, path, SetACLResponse)).stat

    async def get_children(self, path: str, watch: bool = False) -> tuple[str, ...]:
        req = GetChildrenRequest(path, watch)
        return (await self._call(OpCode.getChildren, req, path, GetChildrenResponse)).children

    async def get_children2(self, path: str, watch: bool = False) -> tuple[tuple[str, ...], Stat]:
        req = GetChildren2Request(path, watch)
        r = await self._call(OpCode.getChildren2, req, path, GetChildren2Response)
        return r.children, r.stat

    async def sync(self, path: str) -> str:
        return (await self._call(OpCode.sync, SyncRequest(path), path, SyncResponse)).path

    async def multi(
        self, ops: Iterable[tuple[int, MultiOpRequest]]
    ) -> tuple[tuple[int, MultiOpResult], ...]:
        """All-or-nothing; a failed multi returns its error results (type -1), it does not raise.

        `ops` are (opcode, request), e.g. (OpCode.check, CheckVersionRequest(path, 3)).
        """
        r = await self._call(OpCode.multi, MultiRequest(tuple(ops)), None, MultiResponse)
        return r.results

    async def multi_read(
        self, ops: Iterable[tuple[int, MultiReadOpRequest]]
    ) -> tuple[tuple[int, MultiReadOpResult], ...]:
        req = MultiReadRequest(tuple(ops))
        return (await self._call(OpCode.multiRead, req, None, MultiReadResponse)).results

    async def check_watches(self, path: str, watcher_type: int = WatcherType.Any) -> None:
        req = CheckWatchesRequest(path, int(watcher_type))
        await self._call_empty(OpCode.checkWatches, req, path)

    async def remove_watches(self, path: str, watcher_type: int = WatcherType.Any) -> None:
        req = RemoveWatchesRequest(path, int(watcher_type))
        await self._call_empty(OpCode.removeWatches, req, path)

    async def add_watch(self, path: str, mode: int = AddWatchMode.PERSISTENT_RECURSIVE) -> None:
        await self._call_empty(OpCode.addWatch, AddWatchRequest(path, int(mode)), path)

    async def set_watches(
        self,
        relative_zxid: int,
        data_watches: Iterable[str] = (),
        exist_watches: Iterable[str] = (),
        child_watches: Iterable[str] = (),
    ) -> None:
        req = SetWatches(
            relative_zxid, tuple(data_watches), tuple(exist_watches), tuple(child_watches)
        )
        await self._call_empty(OpCode.setWatches, req, None)

    async def set_watches2(
        self,
        relative_zxid: int,
        data_watches: Iterable[str] = (),
        exist_watches: Iterable[str] = (),
        child_watches: Iterable[str] = (),
        persistent_watches: Iterable[str] = (),
        persistent_recursive_watches: Iterable[str] = (),
    ) -> None:
        req = SetWatches2(
            relative_zxid,
            tuple(data_watches),
            tuple(exist_watches),
            tuple(child_watches),
            tuple(persistent_watches),
            tuple(persistent_recursive_watches),
        )
        await self._call_empty(OpCode.setWatches2, req, None)

    async def get_ephemerals(self, prefix_path: str = "/") -> tuple[str, ...]:
        req = GetEphemeralsRequest(prefix_path)
        r = await self._call(OpCode.getEphemerals, req, prefix_path, GetEphemeralsResponse)
        return r.ephemerals

    async def get_all_children_number(self, path: str) -> int:
        req = GetAllChildrenNumberRequest(path)
        r = await self._call(OpCode.getAllChildrenNumber, req, path, GetAllChildrenNumberResponse)
        return r.total_number

    async def who_am_i(self) -> tuple[ClientInfo, ...]:
        return (await self._call(OpCode.whoAmI, None, None, WhoAmIResponse)).client_info

    async def add_auth(self, scheme: str, auth: bytes) -> None:
        """Raises ZooKeeperError(AUTHFAILED) if refused (the server then closes the connection)."""
        await self._call_empty(OpCode.auth, AuthPacket(0, scheme, auth), None)

    async def ping(self) -> None:
        await self._call_empty(OpCode.ping, None, None)

    async def check(self, path: str, version: int) -> None:
        """A top-level check (opcode 13); normally used inside multi."""
        await self._call_empty(OpCode.check, CheckVersionRequest(path, version), path)

    async def close(self, timeout_s: float = 5.0) -> None:
        """Close the session (closeSession, awaiting its reply) and the connection."""
        if self._transport is None:
            return
        try:
            if self.connected:
                fut = self.send_request(OpCode.closeSession, None)
                self._closing = True
                async with asyncio.timeout(timeout_s):
                    await fut
        except (ConnectionLost, TimeoutError):
            pass
        finally:
            self._closing = True
            self.disconnect()
            async with asyncio.timeout(timeout_s):
                await self.closed

    def disconnect(self) -> None:
        """Drop the connection without closing the session (to test re-attach and expiry)."""
        self._closing = True
        if self._ping_handle is not None:
            self._ping_handle.cancel()
        if self._transport is not None:
            self._transport.close()

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()
