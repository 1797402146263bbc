"""Peer links over asyncio TCP: the election port and the quorum port.

Rules:
- election links: one TCP connection per pair of servers; as in ZooKeeper's QuorumCnxManager
  the connection that stays is the one the higher sid opened, so a server dials every lower sid
  (with backoff, again whenever the connection breaks) and accepts only higher sids;
- while an election link is down the last notification for that peer is kept (ZooKeeper's
  send queue of capacity one) and sent when it comes up; the FLE core resends on its timer;
- quorum links: a follower dials its leader's quorum port, the leader accepts; a link is one
  `QuorumConn` with a generation number, so the host can tell inputs of a dead link from a new
  one; the first frame a learner sends is FOLLOWERINFO, which names it;
- this module moves frames; what they mean and what to do about a broken link is the host's.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from zkref.server.quorum_codec import (
    HELLO_SIZE,
    LEN,
    MAX_FRAME,
    QuorumDecodeError,
    decode_hello,
    encode_hello,
    frame,
)

log = logging.getLogger("zkref.quorum")

BACKOFF_MIN_S = 0.02
BACKOFF_MAX_S = 1.0
_gen = itertools.count(1)


@dataclass(frozen=True, slots=True)
class PeerAddress:
    sid: int
    host: str
    quorum_port: int
    election_port: int


async def read_frame(reader: asyncio.StreamReader) -> bytes | None:
    """One frame body, or None at a clean end of stream."""
    try:
        head = await reader.readexactly(LEN.size)
    except asyncio.IncompleteReadError:
        return None
    (n,) = LEN.unpack(head)
    if n < 0 or n > MAX_FRAME:
        raise QuorumDecodeError(f"frame length {n}")
    try:
        return await reader.readexactly(n)
    except asyncio.IncompleteReadError:
        return None


def _write(writer: asyncio.StreamWriter, data: bytes) -> None:
    """Write unless the peer already closed the link (uvloop raises on a closed transport);
    a broken link is reported by its reader, not here."""
    if writer.is_closing():
        return
    try:
        writer.write(data)
    except (RuntimeError, OSError) as e:
        log.info("write on a broken link dropped: %s", e)


def _close(writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(Exception):
        writer.close()


# ---------------------------------------------------------------------- election


class ElectionLinks:
    """The election port of one server: `send(sid, body)`; bodies arrive via `on_message`."""

    def __init__(
        self,
        my_sid: int,
        peers: dict[int, PeerAddress],
        host: str,
        port: int,
        on_message: Callable[[int, bytes], None],
    ) -> None:
        self.my_sid = my_sid
        self.peers = {s: a for s, a in peers.items() if s != my_sid}
        self.host, self.port = host, port
        self.on_message = on_message
        self.writers: dict[int, asyncio.StreamWriter] = {}
        self.pending: dict[int, bytes] = {}
        self._server: asyncio.Server | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._conn_tasks: set[asyncio.Task[None]] = set()
        self._accepted: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._accept, self.host, self.port, reuse_address=True
        )
        for sid in sorted(self.peers):
            if sid < self.my_sid:
                self._tasks.append(
                    asyncio.create_task(self._dial_loop(sid), name=f"zkref-election-dial-{sid}")
                )

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        # accepted connections end by being closed (cancelling a server's handler is noisy)
        for w in list(self._accepted):
            _close(w)
        if self._conn_tasks:
            await asyncio.wait(list(self._conn_tasks), timeout=2)

    def send(self, sid: int, body: bytes) -> None:
        w = self.writers.get(sid)
        if w is None or w.is_closing():
            self.pending[sid] = body
            return
        _write(w, frame(body))

    def connected(self, sid: int) -> bool:
        return sid in self.writers

    async def _serve(self, sid: int, reader: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        old = self.writers.get(sid)
        if old is not None and old is not w:
            _close(old)
        self.writers[sid] = w
        body = self.pending.pop(sid, None)
        if body is not None:
            _write(w, frame(body))
        try:
            while True:
                msg = await read_frame(reader)
                if msg is None:
                    return
                self.on_message(sid, msg)
        except (OSError, QuorumDecodeError) as e:
            log.info("election link to %d: %s", sid, e)
        finally:
            if self.writers.get(sid) is w:
                del self.writers[sid]
            _close(w)

    async def _accept(self, reader: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._conn_tasks.add(task)
        self._accepted.add(w)
        try:
            sid = decode_hello(await asyncio.wait_for(reader.readexactly(HELLO_SIZE), 10))
            if sid not in self.peers or sid < self.my_sid:
                # the higher sid keeps the connection: a lower one is dialled by us instead
                _close(w)
                return
            await self._serve(sid, reader, w)
        except (OSError, TimeoutError, asyncio.IncompleteReadError, QuorumDecodeError) as e:
            log.info("election connection refused: %s", e)
            _close(w)
        finally:
            self._accepted.discard(w)
            if task is not None:
                self._conn_tasks.discard(task)

    async def _dial_loop(self, sid: int) -> None:
        a = self.peers[sid]
        backoff = BACKOFF_MIN_S
        while True:
            try:
                reader, w = await asyncio.open_connection(a.host, a.election_port)
            except OSError:
                await asyncio.sleep(backoff)
                backoff = min(2 * backoff, BACKOFF_MAX_S)
                continue
            backoff = BACKOFF_MIN_S
            _write(w, encode_hello(self.my_sid))
            await self._serve(sid, reader, w)
            await asyncio.sleep(BACKOFF_MIN_S)


# ---------------------------------------------------------------------- quorum


class QuorumConn:
    """One quorum link (leader <-> one learner). `sid` is the peer's."""

    def __init__(self, sid: int, reader: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        self.sid = sid
        self.gen = next(_gen)
        self.reader = reader
        self.writer = w
        self.reading = asyncio.Event()  # set when the host wants this link's packets
        self.closed = False
        self._out: list[bytes] = []

    def send(self, body: bytes) -> None:
        """Queue a frame; the frames queued while the host handles its inputs leave together
        (one write) when the event loop next runs callbacks, in order."""
        if self.closed:
            return
        if not self._out:
            asyncio.get_running_loop().call_soon(self._flush)
        self._out.append(LEN.pack(len(body)))
        self._out.append(body)

    def _flush(self) -> None:
        out, self._out = self._out, []
        if out and not self.closed:
            _write(self.writer, b"".join(out))

    def is_closed(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True
        self.reading.set()
        _close(self.writer)

    async def pump(
        self, on_frame: Callable[[QuorumConn, bytes], None], idle_timeout_s: float | None = None
    ) -> None:
        """Read frames until the link ends (after the host set `reading`). A link silent for
        `idle_timeout_s` counts as broken: both ends send PINGs more often than that (as
        ZooKeeper's sockets time out after syncLimit ticks without a packet)."""
        await self.reading.wait()
        buf = bytearray()
        unpack = LEN.unpack_from
        try:
            while not self.closed:
                async with asyncio.timeout(idle_timeout_s):
                    chunk = await self.reader.read(1 << 16)
                if not chunk:
                    return
                buf += chunk
                at = 0
                end = len(buf)
                while end - at >= 4:
                    (n,) = unpack(buf, at)
                    if n < 0 or n > MAX_FRAME:
                        raise QuorumDecodeError(f"frame length {n}")
                    if end - at - 4 < n:
                        break
                    body = bytes(buf[at + 4 : at + 4 + n])
                    at += 4 + n
                    on_frame(self, body)
                    if self.is_closed():
                        return  # the host closed the link in on_frame
                del buf[:at]
        except TimeoutError:
            log.info("quorum link to %d: silent for %.1f s, closing it", self.sid, idle_timeout_s)
        except (OSError, QuorumDecodeError) as e:
            log.info("quorum link to %d: %s", self.sid, e)


LearnerHandler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def dial(
    host: str, port: int, deadline_s: float
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
    """Connect, retrying with backoff until `deadline_s` (loop time); None if it never worked."""
    loop = asyncio.get_running_loop()
    backoff = BACKOFF_MIN_S
    while True:
        try:
            return await asyncio.open_connection(host, port)
        except OSError:
            if loop.time() + backoff > deadline_s:
                return None
            await asyncio.sleep(backoff)
            backoff = min(2 * backoff, BACKOFF_MAX_S)
