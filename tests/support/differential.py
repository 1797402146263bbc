"""Differential harness: one scripted operation sequence, run against two servers, compared.

A script is a list of steps (`Connect`, `Req`, `AwaitEvents`, `AwaitClose`, `Cut`, `Reattach`,
`SetWatchesStep`, `Abandon`, `Handshake`). `run_script` plays it on one server with our raw client
and returns a `Transcript`: per step, an ordered map of fields (reply header, every field of the
reply record, watch events before/after the reply on every session, connection state). Values
that necessarily differ between servers are kept tagged (`Z` zxid, `T` time, `S` session id) and
`normalise` maps them to labels that only keep what ZooKeeper's semantics fix:

- zxids -> their rank among the distinct zxids of the transcript (0 and -1 stay literal), so
  equality and order are compared, absolute values are not;
- ctime/mtime -> the label of the zxid they belong to (ctime of czxid, mtime of mzxid), after
  checking within the transcript that one zxid has one time and that the time lies in the
  wall-clock window of the step that produced that zxid; a failed check shows in the label;
- session ids -> S1, S2, ... by first appearance; the container sentinel and TTL owners are named.

`compare` then reports every field that differs, naming the step, the field and both values.

Rules:
- steps run one at a time; after each step every connected session is pinged, so watch events
  caused by the step have arrived (ZooKeeper queues a notification on the watcher's connection
  before it answers the write, and answers a later ping after it) and are recorded at that step;
- the order of events relative to replies is recorded per connection (`before` the reply,
  `after.<session>` the step), never across connections, where it is not defined;
- every wait has a deadline; a reply that does not come is recorded as `timeout`, a connection
  that drops as `connection-lost`, so a script never hangs and both sides are still compared.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import time
from base64 import b64encode
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from support.proxy import CuttableProxy
from zkref.client import Client, ConnectionLost, Notification
from zkref.wire.codec import (
    DecodeError,
    FrameDecoder,
    Request,
    Response,
    decode_connect_response,
    decode_notification,
    encode_connect_request,
    encode_request,
    peek_xid,
)
from zkref.wire.constants import (
    CONTAINER_EPHEMERAL_OWNER,
    PROTOCOL_VERSION,
    SESSION_PASSWORD_LEN,
    Err,
    EventType,
    KeeperState,
    OpCode,
)
from zkref.wire.records import (
    ACL,
    ConnectRequest,
    ConnectResponse,
    GetChildren2Response,
    GetChildrenResponse,
    GetEphemeralsResponse,
    Id,
    ReplyHeader,
    SetWatches,
    SetWatches2,
    Stat,
    WatcherEvent,
)

__all__ = [
    "OPEN",
    "Abandon",
    "AwaitClose",
    "AwaitEvents",
    "Connect",
    "Cut",
    "Handshake",
    "Mismatch",
    "Move",
    "Pipeline",
    "Raw",
    "Reattach",
    "Reclaim",
    "Req",
    "SetWatchesStep",
    "Step",
    "StepRecord",
    "Transcript",
    "compare",
    "digest_id",
    "format_mismatches",
    "normalise",
    "run_pair",
    "run_script",
]

OPEN: tuple[ACL, ...] = (ACL(31, Id("world", "anyone")),)

REQUEST_TIMEOUT_S = 5.0
CLOSE_WAIT_S = 2.0
TIME_SLACK_MS = 5

WRITE_OPS = frozenset(
    int(o)
    for o in (
        OpCode.create,
        OpCode.create2,
        OpCode.createContainer,
        OpCode.createTTL,
        OpCode.delete,
        OpCode.setData,
        OpCode.setACL,
        OpCode.multi,
    )
)


def digest_id(user: str, password: str) -> str:
    """The id of a digest ACL, `user:base64(sha1(user:password))`."""
    return f"{user}:{b64encode(hashlib.sha1(f'{user}:{password}'.encode()).digest()).decode()}"


# --- steps -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Connect:
    """Open session `session` (a new session), directly or through a cuttable proxy."""

    session: str
    timeout_ms: int = 10_000
    via_proxy: bool = False


@dataclass(frozen=True, slots=True)
class Req:
    """One request on `session`; its reply is recorded. `closes`: then wait for the server to
    close the connection and record whether it did. `unordered`: sort this step's events (for
    one txn that fires several paths in an order ZooKeeper leaves to a hash set)."""

    op: int
    body: Request | bytes | None
    session: str = "a"
    closes: bool = False
    unordered: bool = False
    timeout_s: float = 5.0
    xid: int | None = None  # None: the client's next xid (or the reserved one of the opcode)


@dataclass(frozen=True, slots=True)
class Pipeline:
    """Several requests on `session` sent at once (one write), replies awaited together; each
    reply and the events between replies are recorded under `r<k>.`."""

    session: str
    reqs: tuple[tuple[int, Request | bytes | None], ...]


@dataclass(frozen=True, slots=True)
class AwaitEvents:
    """Wait (with a deadline) until `count` events arrived on `session` since the last step."""

    session: str
    count: int
    timeout_s: float = 15.0
    unordered: bool = False


@dataclass(frozen=True, slots=True)
class AwaitClose:
    """Wait (with a deadline) for the server to close `session`'s connection."""

    session: str
    timeout_s: float = CLOSE_WAIT_S


@dataclass(frozen=True, slots=True)
class Cut:
    """Cut `session`'s proxy and wait until the client sees the connection gone."""

    session: str


@dataclass(frozen=True, slots=True)
class Reattach:
    """Restore `session`'s proxy and re-attach the session (id, password, last zxid seen)."""

    session: str


@dataclass(frozen=True, slots=True)
class SetWatchesStep:
    """setWatches (101) or setWatches2 (105) with the relative zxid the session last saw."""

    session: str
    op: Literal[101, 105] = 101
    data: tuple[str, ...] = ()
    exist: tuple[str, ...] = ()
    child: tuple[str, ...] = ()
    persistent: tuple[str, ...] = ()
    recursive: tuple[str, ...] = ()
    relative: Literal["last", "zero", "ahead"] = "last"


@dataclass(frozen=True, slots=True)
class Reclaim:
    """Re-attach `session` (whose connection the server closed) directly and close it, so it
    does not expire at a time the script does not fix; the handshake and the reply are recorded."""

    session: str


@dataclass(frozen=True, slots=True)
class Abandon:
    """Stop pinging: drop `session`'s connection without closing the session."""

    session: str


@dataclass(frozen=True, slots=True)
class Handshake:
    """A bare ConnectRequest on a fresh socket; records the ConnectResponse (or its absence)
    and whether the server then closes the connection. A session it creates is closed again."""

    label: str
    session_of: str | None = None
    passwd: Literal["own", "wrong"] = "own"
    session_id: int = 0
    last_zxid: Literal["zero", "ahead"] = "zero"
    timeout_ms: int = 10_000
    read_only: bool = False
    send_read_only_byte: bool = True
    passwd_len: int = SESSION_PASSWORD_LEN


@dataclass(frozen=True, slots=True)
class Move:
    """Re-attach `session` on a second connection while its first is still open (the server
    closes the first); later steps on `session` use the new connection."""

    session: str


Step = (
    Connect
    | Req
    | Pipeline
    | AwaitEvents
    | AwaitClose
    | Cut
    | Reattach
    | SetWatchesStep
    | Reclaim
    | Move
    | Abandon
    | Handshake
)


# --- tagged raw values -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Z:
    """A zxid."""

    v: int


@dataclass(frozen=True, slots=True)
class T:
    """A time (ms) and the zxid of the txn it is the time of."""

    v: int
    z: int


@dataclass(frozen=True, slots=True)
class S:
    """A session id (or an ephemeralOwner)."""

    v: int


Raw = int | str | bool | None | Z | T | S
Norm = int | str | bool | None


@dataclass(slots=True)
class StepRecord:
    index: int
    label: str
    fields: dict[str, Raw] = field(default_factory=dict)


@dataclass(slots=True)
class Transcript:
    server: str
    steps: list[StepRecord] = field(default_factory=list)
    # zxid -> wall-clock window (ms) of the write step whose reply first carried it
    windows: dict[int, tuple[int, int]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Mismatch:
    step: int
    label: str
    field: str
    left: Norm
    right: Norm

    def __str__(self) -> str:
        return f"step {self.step} [{self.label}] {self.field}: {self.left!r} != {self.right!r}"


# --- recording client ------------------------------------------------------------------------

Arrival = Notification | int  # an event, or the xid of a reply


class RecordingClient(Client):
    """Our client, also logging every frame's arrival (events and reply xids, not pings) in
    order, and reading frames of any size (so a reply over jute.maxbuffer is still seen)."""

    def __init__(self) -> None:
        super().__init__()
        self.arrivals: list[Arrival] = []
        self._decoder = FrameDecoder(16 << 20)

    def _on_frame(self, f: bytes) -> None:
        xid = peek_xid(f)
        if xid == -1:
            try:
                hdr, ev = decode_notification(f)
            except DecodeError:
                garbled = WatcherEvent(-999, -999, "<undecodable notification>")
                self.arrivals.append(Notification(-999, garbled))
            else:
                self.arrivals.append(Notification(hdr.zxid, ev))
        elif xid != -2:
            self.arrivals.append(xid)
        super()._on_frame(f)


def _name(enum: type[EventType] | type[KeeperState] | type[Err], v: int) -> str:
    try:
        return enum(v).name
    except ValueError:
        return str(v)


def _event_str(n: Notification) -> str:
    return f"{_name(EventType, n.type)} {_name(KeeperState, n.state)} {n.path}"


# --- running a script ------------------------------------------------------------------------


@dataclass(slots=True)
class _Session:
    client: RecordingClient | None
    cursor: int = 0
    proxy: CuttableProxy | None = None
    session_id: int = 0
    passwd: bytes = b""
    last_zxid: int = 0
    timeout_ms: int = 10_000
    open: bool = True


def _now_ms() -> int:
    return int(time.time() * 1000)


def _label(step: Step) -> str:
    match step:
        case Req(op=op, body=body, session=s):
            try:
                name = OpCode(op).name
            except ValueError:
                name = f"op{op}"
            path = getattr(body, "path", None)
            if path is None:
                path = getattr(body, "prefix_path", None)
            if isinstance(body, bytes):
                path = f"<{len(body)} raw bytes>"
            return f"{s}:{name}" + ("" if path is None else f" {path!r}")
        case Connect(session=s):
            return f"{s}:connect"
        case Pipeline(session=s, reqs=reqs):
            return f"{s}:pipeline of {len(reqs)}"
        case AwaitEvents(session=s, count=c):
            return f"{s}:await {c} events"
        case AwaitClose(session=s):
            return f"{s}:await close"
        case Cut(session=s):
            return f"{s}:cut"
        case Reattach(session=s):
            return f"{s}:reattach"
        case SetWatchesStep(session=s, op=op):
            return f"{s}:setWatches{'2' if op == 105 else ''}"
        case Abandon(session=s):
            return f"{s}:abandon"
        case Reclaim(session=s):
            return f"{s}:reclaim"
        case Move(session=s):
            return f"{s}:move to a new connection"
        case Handshake(label=lbl):
            return f"handshake {lbl}"


def _flatten(prefix: str, v: object, out: dict[str, Raw]) -> None:
    if isinstance(v, Stat):
        out[f"{prefix}.czxid"] = Z(v.czxid)
        out[f"{prefix}.mzxid"] = Z(v.mzxid)
        out[f"{prefix}.pzxid"] = Z(v.pzxid)
        out[f"{prefix}.ctime"] = T(v.ctime, v.czxid)
        out[f"{prefix}.mtime"] = T(v.mtime, v.mzxid)
        out[f"{prefix}.version"] = v.version
        out[f"{prefix}.cversion"] = v.cversion
        out[f"{prefix}.aversion"] = v.aversion
        out[f"{prefix}.ephemeralOwner"] = S(v.ephemeral_owner)
        out[f"{prefix}.dataLength"] = v.data_length
        out[f"{prefix}.numChildren"] = v.num_children
        return
    if isinstance(v, GetChildrenResponse | GetChildren2Response):
        v = dataclasses.replace(v, children=tuple(sorted(v.children)))
    if isinstance(v, GetEphemeralsResponse):
        v = dataclasses.replace(v, ephemerals=tuple(sorted(v.ephemerals)))
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        if not dataclasses.fields(v):
            out[prefix] = type(v).__name__
        for f in dataclasses.fields(v):
            if f.compare:
                _flatten(f"{prefix}.{f.name}", getattr(v, f.name), out)
        return
    if isinstance(v, tuple):
        out[f"{prefix}.len"] = len(v)
        for i, x in enumerate(v):
            _flatten(f"{prefix}[{i}]", x, out)
        return
    if isinstance(v, bytes):
        if len(v) <= 48:
            out[prefix] = repr(v)
        else:
            out[prefix] = f"<{len(v)} bytes sha1 {hashlib.sha1(v).hexdigest()[:12]}>"
        return
    if v is None or isinstance(v, int | str | bool):
        out[prefix] = v
        return
    out[prefix] = repr(v)


class _Runner:
    def __init__(self, server: str, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.t = Transcript(server)
        self.sessions: dict[str, _Session] = {}
        self.max_zxid = 0

    def _record_events(
        self, out: dict[str, Raw], prefix: str, events: Sequence[Notification], unordered: bool
    ) -> None:
        items = [(_event_str(n), n.zxid) for n in events]
        if unordered:
            items.sort(key=lambda x: x[0])
        for i, (s, z) in enumerate(items):
            out[f"{prefix}[{i}]"] = s
            out[f"{prefix}[{i}].zxid"] = Z(z)

    async def _connect(
        self,
        port: int,
        *,
        timeout_ms: int,
        session_id: int = 0,
        passwd: bytes = b"",
        last_zxid: int = 0,
        out: dict[str, Raw],
        prefix: str,
    ) -> RecordingClient | None:
        try:
            c = await RecordingClient.connect(
                self.host,
                port,
                timeout_ms=timeout_ms,
                session_id=session_id,
                passwd=passwd,
                last_zxid_seen=last_zxid,
                connect_timeout_s=REQUEST_TIMEOUT_S,
            )
        except (ConnectionLost, OSError, TimeoutError) as e:
            out[f"{prefix}"] = f"failed: {type(e).__name__}"
            return None
        assert isinstance(c, RecordingClient)
        resp = c.connect_response
        assert resp is not None
        self._record_connect_response(resp, out, prefix)
        return c

    def _record_connect_response(
        self, resp: ConnectResponse, out: dict[str, Raw], prefix: str
    ) -> None:
        out[f"{prefix}.protocolVersion"] = resp.protocol_version
        out[f"{prefix}.timeOut"] = resp.time_out
        out[f"{prefix}.sessionId"] = S(resp.session_id)
        out[f"{prefix}.passwd.len"] = len(resp.passwd)
        out[f"{prefix}.readOnly"] = resp.read_only

    def _take_arrivals(self, s: _Session) -> list[Arrival]:
        if s.client is None:
            return []
        new = s.client.arrivals[s.cursor :]
        s.cursor = len(s.client.arrivals)
        return new

    async def _barrier(self, out: dict[str, Raw], unordered: bool) -> None:
        """Ping every connected session; record the events that came since its last step."""
        for name in sorted(self.sessions):
            s = self.sessions[name]
            c = s.client
            if c is None or not s.open:
                continue
            lost = False
            if c.connected:
                try:
                    async with asyncio.timeout(REQUEST_TIMEOUT_S):
                        await c.ping()
                except (ConnectionLost, TimeoutError, OSError):
                    lost = True
            else:
                lost = True
            events = [a for a in self._take_arrivals(s) if isinstance(a, Notification)]
            self._record_events(out, f"after.{name}", events, unordered)
            if lost:
                s.open = False
                out[f"conn.{name}"] = "closed"

    async def _wait_closed(self, s: _Session, timeout_s: float) -> bool:
        if s.client is None:
            return True
        try:
            async with asyncio.timeout(timeout_s):
                await asyncio.shield(s.client.closed)
        except TimeoutError:
            return False
        return True

    async def run(self, steps: Sequence[Step]) -> Transcript:
        try:
            for i, step in enumerate(steps):
                rec = StepRecord(i, _label(step))
                unordered = await self._step(step, rec.fields)
                await self._barrier(rec.fields, unordered)
                self.t.steps.append(rec)
        finally:
            await self._cleanup()
        return self.t

    async def _step(self, step: Step, out: dict[str, Raw]) -> bool:
        match step:
            case Connect(session=name, timeout_ms=tmo, via_proxy=via):
                proxy = CuttableProxy(self.port) if via else None
                port = proxy.port if proxy is not None else self.port
                c = await self._connect(port, timeout_ms=tmo, out=out, prefix="connect")
                s = _Session(c, proxy=proxy, timeout_ms=tmo, open=c is not None)
                if c is not None:
                    s.session_id, s.passwd = c.session_id, c.passwd
                self.sessions[name] = s
                return False
            case Req(op=op, body=body, session=name, closes=closes, unordered=unordered):
                await self._request(name, op, body, out, unordered, step.timeout_s, step.xid)
                if closes:
                    closed = await self._wait_closed(self.sessions[name], CLOSE_WAIT_S)
                    out["conn"] = "closed" if closed else "open"
                    if closed:
                        self.sessions[name].open = False
                return unordered
            case Pipeline(session=name, reqs=reqs):
                await self._pipeline(name, reqs, out)
                return False
            case SetWatchesStep(session=name, op=op):
                s = self.sessions[name]
                last = s.client.last_zxid if s.client is not None else s.last_zxid
                rel = {"last": last, "zero": 0, "ahead": self.max_zxid + 1_000_000}[step.relative]
                sw: Request
                if op == 101:
                    sw = SetWatches(rel, step.data, step.exist, step.child)
                else:
                    sw = SetWatches2(
                        rel,
                        step.data,
                        step.exist,
                        step.child,
                        step.persistent,
                        step.recursive,
                    )
                await self._request(name, op, sw, out, False)
                return False
            case AwaitEvents(session=name, count=count, timeout_s=tmo, unordered=unordered):
                s = self.sessions[name]
                c = s.client
                deadline = asyncio.get_running_loop().time() + tmo
                while c is not None:
                    n = sum(isinstance(a, Notification) for a in c.arrivals[s.cursor :])
                    if n >= count or asyncio.get_running_loop().time() > deadline:
                        break
                    await asyncio.sleep(0.01)
                events = [a for a in self._take_arrivals(s) if isinstance(a, Notification)]
                self._record_events(out, "events", events, unordered)
                return unordered
            case AwaitClose(session=name, timeout_s=tmo):
                s = self.sessions[name]
                closed = await self._wait_closed(s, tmo)
                out["conn"] = "closed" if closed else "open"
                if closed:
                    s.open = False
                return False
            case Cut(session=name):
                s = self.sessions[name]
                assert s.proxy is not None and s.client is not None, "Cut needs via_proxy"
                s.last_zxid = s.client.last_zxid
                s.proxy.cut()
                lost = await self._wait_closed(s, REQUEST_TIMEOUT_S)
                out["conn"] = "lost" if lost else "still-open"
                s.open = False
                return False
            case Reattach(session=name):
                s = self.sessions[name]
                assert s.proxy is not None, "Reattach needs via_proxy"
                s.proxy.restore()
                c = await self._connect(
                    s.proxy.port,
                    timeout_ms=s.timeout_ms,
                    session_id=s.session_id,
                    passwd=s.passwd,
                    last_zxid=s.last_zxid,
                    out=out,
                    prefix="connect",
                )
                s.client, s.cursor, s.open = c, 0, c is not None
                return False
            case Reclaim(session=name):
                s = self.sessions[name]
                if s.client is not None and s.client.connected:
                    s.client.disconnect()
                await self._wait_closed(s, REQUEST_TIMEOUT_S)
                c = await self._connect(
                    self.port,
                    timeout_ms=s.timeout_ms,
                    session_id=s.session_id,
                    passwd=s.passwd,
                    out=out,
                    prefix="connect",
                )
                s.client, s.cursor, s.open = c, 0, c is not None
                if c is not None:
                    await self._request(name, int(OpCode.closeSession), None, out, True)
                    out["conn"] = "closed" if await self._wait_closed(s, CLOSE_WAIT_S) else "open"
                    s.open = False
                return False
            case Move(session=name):
                s = self.sessions[name]
                old = s
                c = await self._connect(
                    self.port,
                    timeout_ms=s.timeout_ms,
                    session_id=s.session_id,
                    passwd=s.passwd,
                    out=out,
                    prefix="connect",
                )
                old_closed = await self._wait_closed(old, CLOSE_WAIT_S)
                out["old.conn"] = "closed" if old_closed else "open"
                old.open = not old_closed
                self.sessions[name] = _Session(
                    c,
                    session_id=s.session_id,
                    passwd=s.passwd,
                    timeout_ms=s.timeout_ms,
                    open=c is not None,
                )
                self.sessions[f"{name}.old"] = old
                return False
            case Abandon(session=name):
                s = self.sessions[name]
                if s.client is not None:
                    s.client.disconnect()
                    await self._wait_closed(s, REQUEST_TIMEOUT_S)
                s.open = False
                out["conn"] = "dropped"
                return False
            case Handshake():
                await self._handshake(step, out)
                return False

    async def _request(
        self,
        name: str,
        op: int,
        body: Request | bytes | None,
        out: dict[str, Raw],
        unordered: bool,
        timeout_s: float = REQUEST_TIMEOUT_S,
        xid: int | None = None,
    ) -> None:
        s = self.sessions[name]
        c = s.client
        if c is None or not s.open or not c.connected:
            out["reply"] = "not-connected"
            return
        pending = [a for a in self._take_arrivals(s) if isinstance(a, Notification)]
        self._record_events(out, "pending", pending, unordered)
        send_ms = _now_ms()
        try:
            async with asyncio.timeout(timeout_s):
                hdr, resp = await c.raw_request(op, body, xid=xid)
        except ConnectionLost:
            out["reply"] = "connection-lost"
            self._record_events(
                out,
                "before",
                [a for a in self._take_arrivals(s) if isinstance(a, Notification)],
                unordered,
            )
            return
        except TimeoutError:
            out["reply"] = "timeout"
            return
        except DecodeError as e:
            out["reply"] = f"undecodable: {e}"
            return
        recv_ms = _now_ms()
        arrivals = self._take_arrivals(s)
        before: list[Notification] = []
        after: list[Notification] = []
        seen_reply = False
        for a in arrivals:
            if isinstance(a, int):
                seen_reply = True
            elif seen_reply:
                after.append(a)
            else:
                before.append(a)
        self._record_events(out, "before", before, unordered)
        self._record_reply(out, "reply", op, hdr, resp, send_ms, recv_ms)
        self._record_events(out, "reply.then", after, unordered)

    def _record_reply(
        self,
        out: dict[str, Raw],
        prefix: str,
        op: int,
        hdr: ReplyHeader,
        resp: Response | None,
        send_ms: int,
        recv_ms: int,
    ) -> None:
        out[f"{prefix}.xid"] = hdr.xid
        out[f"{prefix}.zxid"] = Z(hdr.zxid)
        out[f"{prefix}.err"] = _name(Err, hdr.err)
        if resp is not None:
            _flatten(f"{prefix}.body", resp, out)
        if op in WRITE_OPS and hdr.err == 0 and hdr.zxid > self.max_zxid:
            self.t.windows.setdefault(hdr.zxid, (send_ms, recv_ms))
        self.max_zxid = max(self.max_zxid, hdr.zxid)

    async def _pipeline(
        self,
        name: str,
        reqs: Sequence[tuple[int, Request | bytes | None]],
        out: dict[str, Raw],
    ) -> None:
        s = self.sessions[name]
        c = s.client
        if c is None or not s.open or not c.connected:
            out["pipeline"] = "not-connected"
            return
        self._record_events(
            out,
            "pending",
            [a for a in self._take_arrivals(s) if isinstance(a, Notification)],
            False,
        )
        send_ms = _now_ms()
        futs = [c.send_request(op, body) for op, body in reqs]
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT_S):
                results = await asyncio.gather(*futs, return_exceptions=True)
        except TimeoutError:
            out["pipeline"] = "timeout"
            return
        recv_ms = _now_ms()
        segments: list[list[Notification]] = [[]]
        for a in self._take_arrivals(s):
            if isinstance(a, int):
                segments.append([])
            else:
                segments[-1].append(a)
        for k, ((op, _), res) in enumerate(zip(reqs, results, strict=True)):
            if k < len(segments):
                self._record_events(out, f"r{k}.before", segments[k], False)
            if isinstance(res, BaseException):
                out[f"r{k}.reply"] = type(res).__name__
                continue
            hdr, resp = res
            self._record_reply(out, f"r{k}.reply", op, hdr, resp, send_ms, recv_ms)
        if len(segments) > len(reqs):
            self._record_events(
                out, "then", [e for seg in segments[len(reqs) :] for e in seg], False
            )

    async def _handshake(self, step: Handshake, out: dict[str, Raw]) -> None:
        sid, passwd = step.session_id, b"\0" * step.passwd_len
        if step.session_of is not None:
            s = self.sessions[step.session_of]
            sid = s.session_id
            passwd = s.passwd if step.passwd == "own" else bytes(16 - len(b"wrong")) + b"wrong"
        last = self.max_zxid + 1_000_000 if step.last_zxid == "ahead" else 0
        req = ConnectRequest(
            PROTOCOL_VERSION,
            last,
            step.timeout_ms,
            sid,
            passwd,
            step.read_only,
            step.send_read_only_byte,
        )
        reader, writer = await asyncio.open_connection(self.host, self.port)
        try:
            writer.write(encode_connect_request(req))
            resp: ConnectResponse | None = None
            try:
                async with asyncio.timeout(REQUEST_TIMEOUT_S):
                    n = int.from_bytes(await reader.readexactly(4), "big")
                    out["response.frameLength"] = n
                    resp = decode_connect_response(await reader.readexactly(n))
            except asyncio.IncompleteReadError:
                out["response"] = "closed-without-response"
            except TimeoutError:
                out["response"] = "timeout"
            if resp is not None:
                self._record_connect_response(resp, out, "response")
            if resp is not None and resp.time_out > 0:
                # A real session: close it again (not part of the comparison's subject).
                writer.write(encode_request(1, int(OpCode.closeSession), None))
            try:
                async with asyncio.timeout(CLOSE_WAIT_S):
                    while await reader.read(65536):
                        pass
                out["conn"] = "closed"
            except TimeoutError:
                out["conn"] = "open"
            except ConnectionError:
                out["conn"] = "closed"
        finally:
            writer.close()

    async def _cleanup(self) -> None:
        """Close every session the script left (re-attaching if its connection is gone), so no
        session of one scenario expires in the middle of the next one."""
        for s in self.sessions.values():
            c = s.client
            try:
                if c is not None and c.connected:
                    await c.close(timeout_s=REQUEST_TIMEOUT_S)
                elif s.session_id:
                    try:
                        c2 = await Client.connect(
                            self.host,
                            self.port,
                            timeout_ms=s.timeout_ms,
                            session_id=s.session_id,
                            passwd=s.passwd,
                            connect_timeout_s=REQUEST_TIMEOUT_S,
                        )
                    except (ConnectionLost, OSError, TimeoutError):
                        pass
                    else:
                        await c2.close(timeout_s=REQUEST_TIMEOUT_S)
            except (ConnectionLost, OSError, TimeoutError):
                pass
            finally:
                if s.proxy is not None:
                    s.proxy.close()


async def run_script(server: str, host: str, port: int, steps: Sequence[Step]) -> Transcript:
    """Play `steps` on the server at host:port; the raw (un-normalised) transcript."""
    return await _Runner(server, host, port).run(steps)


def run_pair(
    steps: Sequence[Step], left: tuple[str, int], right: tuple[str, int]
) -> tuple[Transcript, Transcript]:
    """Play the script on both servers at once ((name, port) on 127.0.0.1 each)."""

    async def both() -> tuple[Transcript, Transcript]:
        a, b = await asyncio.gather(
            run_script(left[0], "127.0.0.1", left[1], steps),
            run_script(right[0], "127.0.0.1", right[1], steps),
        )
        return a, b

    return asyncio.run(both())


# --- normalisation and comparison ------------------------------------------------------------

_LITERAL_ZXIDS = frozenset((0, -1))
_TTL_MARK = 0xFF


def normalise(t: Transcript) -> list[tuple[int, str, dict[str, Norm]]]:
    """(step, label, fields) with zxids, times and session ids replaced by labels."""
    zxids: set[int] = set()
    times: dict[int, set[int]] = {}
    sessions: dict[int, str] = {}
    for rec in t.steps:
        for v in rec.fields.values():
            if isinstance(v, Z):
                zxids.add(v.v)
            elif isinstance(v, T):
                zxids.add(v.z)
                times.setdefault(v.z, set()).add(v.v)
            elif isinstance(v, S) and v.v not in sessions and _plain_session(v.v):
                sessions[v.v] = f"S{len(sessions) + 1}"
    rank = {z: f"z{i}" for i, z in enumerate(sorted(zxids - _LITERAL_ZXIDS), 1)}

    def zl(z: int) -> Norm:
        return z if z in _LITERAL_ZXIDS else rank[z]

    def tl(v: T) -> Norm:
        if v.v == 0 and v.z == 0:
            return 0
        label = f"t({zl(v.z)})"
        if len(times[v.z]) > 1:
            return f"{label}!several-times-for-one-zxid"
        w = t.windows.get(v.z)
        if w is not None and not (w[0] - TIME_SLACK_MS <= v.v <= w[1] + TIME_SLACK_MS):
            return f"{label}!outside-write-window({v.v - w[0]:+d}ms)"
        return label

    def sl(v: int) -> Norm:
        if v == 0:
            return 0
        if v == CONTAINER_EPHEMERAL_OWNER:
            return "container"
        if (v >> 56) & 0xFF == _TTL_MARK:
            return f"ttl:{v & ((1 << 56) - 1)}"
        return sessions[v]

    out: list[tuple[int, str, dict[str, Norm]]] = []
    for rec in t.steps:
        norm: dict[str, Norm] = {}
        for k, v in rec.fields.items():
            if isinstance(v, Z):
                norm[k] = zl(v.v)
            elif isinstance(v, T):
                norm[k] = tl(v)
            elif isinstance(v, S):
                norm[k] = sl(v.v)
            else:
                norm[k] = v
        out.append((rec.index, rec.label, norm))
    return out


def _plain_session(v: int) -> bool:
    return v != 0 and v != CONTAINER_EPHEMERAL_OWNER and (v >> 56) & 0xFF != _TTL_MARK


_ABSENT = "<absent>"


def compare(left: Transcript, right: Transcript) -> list[Mismatch]:
    """Every field (after `normalise`) that differs, step by step."""
    a, b = normalise(left), normalise(right)
    out: list[Mismatch] = []
    for i in range(max(len(a), len(b))):
        if i >= len(a) or i >= len(b):
            label = (a[i] if i < len(a) else b[i])[1]
            out.append(Mismatch(i, label, "<step>", i < len(a), i < len(b)))
            continue
        _, label, fa = a[i]
        _, _, fb = b[i]
        keys = list(fa) + [k for k in fb if k not in fa]
        for k in keys:
            va, vb = fa.get(k, _ABSENT), fb.get(k, _ABSENT)
            if va != vb:
                out.append(Mismatch(i, label, k, va, vb))
    return out


def format_mismatches(
    ms: Iterable[Mismatch], left: str = "zookeeper", right: str = "zkref", limit: int = 25
) -> str:
    ms = list(ms)
    lines = [f"{len(ms)} field(s) differ ({left} != {right}):"]
    lines += [f"  {m}" for m in ms[:limit]]
    if len(ms) > limit:
        lines.append(f"  ... and {len(ms) - limit} more")
    return "\n".join(lines)


def render(t: Transcript) -> str:
    """A normalised transcript as text (for failure messages and docs)."""
    lines = [f"# {t.server}"]
    for i, label, fields in normalise(t):
        lines.append(f"{i:3d} {label}")
        lines += [f"      {k} = {v!r}" for k, v in fields.items()]
    return "\n".join(lines)
