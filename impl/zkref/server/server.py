"""The standalone zkref server: an asyncio shell around `zkref.core.server.ServerCore`.

Rules of this shell (it never decides a protocol question):
- bytes become frames (`FrameDecoder`), frames become records (codec), records become core inputs;
  the effects the core returns are executed in order.
- `Persist` effects are appended to the txn log; one fsync covers every txn appended before it
  (group commit), and only then is the core told `persisted(zxid)` -- so no reply, watch event or
  read of a write leaves the server before the write is on disk.
- a connection whose first four bytes are a four-letter word gets the answer and is closed.
- a client that sends garbage loses its own connection, never the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import struct
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, assert_never, cast

from zkref.core.effects import (
    Close,
    Effect,
    Forward,
    Notify,
    Persist,
    Reply,
    Revalidate,
    SendConnectResponse,
    SyncReady,
)
from zkref.core.server import CoreConfig, ServerCore
from zkref.server import fourletter
from zkref.server.config import ZooCfg
from zkref.server.purge import purge
from zkref.server.storage import FileTxnSnapLog, StorageError
from zkref.wire import codec
from zkref.wire.records import RequestHeader

log = logging.getLogger("zkref.server")

_LEN = struct.Struct(">i")
_XID_OP = struct.Struct(">ii")


class _Conn(asyncio.Protocol):
    """One client connection. Lives on the event loop thread only."""

    __slots__ = (
        "closing",
        "conn_id",
        "decoder",
        "first",
        "handshaken",
        "out",
        "peer",
        "server",
        "transport",
    )

    def __init__(self, server: ZkServer, conn_id: int) -> None:
        self.server = server
        self.conn_id = conn_id
        self.decoder = codec.FrameDecoder(server.cfg.jute_maxbuffer)
        self.handshaken = False
        self.out: list[bytes] = []
        self.transport: asyncio.Transport | None = None
        self.peer = ("?", 0)
        self.closing = False
        self.first = True

    # --- asyncio.Protocol -------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple) and len(peer) >= 2:
            self.peer = (str(peer[0]), int(peer[1]))
        if not self.server.admit(self):
            log.warning("too many connections from %s (maxClientCnxns)", self.peer[0])
            self.transport.abort()
            return
        self.server.core_call(
            self.server.core.connection_opened, self.conn_id, self.peer[0], conn=self.conn_id
        )

    def data_received(self, data: bytes) -> None:
        if self.closing:
            return
        if self.first:
            self.first = False
            if len(data) >= 4:
                word = fourletter.WORD_CODES.get(_LEN.unpack_from(data)[0] & 0xFFFFFFFF)
                if word is not None:
                    self.server.answer_four_letter_word(self, word)
                    return
        too_large: codec.FrameTooLarge | None = None
        try:
            frames = self.decoder.feed(data)
        except codec.FrameTooLarge as e:
            # ZooKeeper serves the complete frames that came before the bad length, then closes.
            frames, too_large = e.frames, e
        server = self.server
        core = server.core
        now = server.now_ms()  # one clock read per batch of pipelined frames
        cid = self.conn_id
        for frame in frames:
            if self.is_closing():
                break
            if not self.handshaken:
                try:
                    req = codec.decode_connect_request(frame)
                except codec.DecodeError as e:
                    log.warning("closing %s:%d: bad connect request: %s", *self.peer, e)
                    self.abort()
                    break
                self.handshaken = True
                server.core_call(core.receive_connect, cid, req, now, conn=cid)
                continue
            try:
                hdr, body = codec.decode_request(frame)
            except codec.UnknownOpCode as e:
                hdr, body = e.header, None
            except codec.DecodeError as e:
                if len(frame) < 8:  # not even a RequestHeader
                    log.warning("closing %s:%d: malformed request: %s", *self.peer, e)
                    self.abort()
                    break
                # ZooKeeper answers MarshallingError and keeps the connection.
                log.info("malformed request from %s:%d: %s", *self.peer, e)
                xid, op = _XID_OP.unpack_from(frame)
                multi = isinstance(e, codec.NullPathInMulti)
                server.core_call(
                    core.receive_malformed, cid, RequestHeader(xid, op), now, multi, conn=cid
                )
                continue
            try:
                effects = core.receive_request(cid, hdr, body, now)
            except Exception:
                server.internal_error(cid, "receive_request", hdr)
                break
            server.run_effects(effects)
        server.flush()
        if too_large is not None and not self.is_closing():
            log.warning("closing %s:%d: %s (jute.maxbuffer)", *self.peer, too_large)
            self.closing = True
            if self.transport is not None:
                self.transport.close()  # after what was already written

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        self.server.forget(self)

    # --- used by the server -------------------------------------------------------------
    def is_closing(self) -> bool:
        return self.closing

    def abort(self) -> None:
        self.closing = True
        if self.transport is not None:
            self.transport.abort()


class ZkServer:
    """A standalone server. `await start()`, then `await stop()` (or `serve_forever`)."""

    def __init__(self, cfg: ZooCfg, *, server_id: int = 0) -> None:
        self.cfg = cfg
        self.server_id = server_id
        self.conns: dict[int, _Conn] = {}
        self.per_ip: dict[str, int] = {}
        self._next_conn = 1
        self._dirty: set[_Conn] = set()
        self.started_ms = self.now_ms()
        self._tcp: asyncio.base_events.Server | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._sync_wanted = asyncio.Event()
        self._pending_zxid = 0
        self._txns_since_snapshot = 0
        self._snapshotting = False
        self._stopping = False
        self.failed = asyncio.Event()  # set when the server cannot go on (storage failure)
        self.storage = FileTxnSnapLog(
            cfg.data_dir,
            cfg.data_log_dir,
            force_sync=cfg.force_sync,
            prealloc_bytes=cfg.prealloc_kb * 1024,
        )
        self.core: ServerCore = self._restore()
        for key in cfg.unsafe_modes:  # planted bugs for the chaos harness (docs/chaos.md)
            log.warning("UNSAFE TEST-ONLY MODE %s=true: acknowledged writes can be LOST", key)

    # --- start-up -----------------------------------------------------------------------
    def _restore(self) -> ServerCore:
        t0 = time.monotonic()
        restored = self.storage.restore(extended_types_enabled=self.cfg.extended_types_enabled)
        log.info(
            "restored zxid 0x%x (%d txns replayed, %d sessions) from %s in %.2fs",
            restored.last_zxid,
            restored.txns_replayed,
            len(restored.sessions),
            self.cfg.data_dir,
            time.monotonic() - t0,
        )
        core_cfg = CoreConfig(
            server_id=self.server_id,
            tick_time_ms=self.cfg.tick_time_ms,
            min_session_timeout_ms=self.cfg.min_session_timeout,
            max_session_timeout_ms=self.cfg.max_session_timeout,
            max_buffer=self.cfg.jute_maxbuffer,
            super_digest=self.cfg.super_digest,
            extended_types_enabled=self.cfg.extended_types_enabled,
            secret=_secret(self.cfg.data_dir),
            start_ms=self.now_ms(),
        )
        return ServerCore(core_cfg, tree=restored.tree, sessions=restored.sessions)

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tcp = await loop.create_server(
            self._new_conn,
            host=self.cfg.client_port_address,
            port=self.cfg.client_port,
            reuse_address=True,
        )
        self._tasks = [
            asyncio.create_task(self._syncer(), name="zkref-syncer"),
            asyncio.create_task(self._ticker(), name="zkref-ticker"),
        ]
        if self.cfg.autopurge_purge_interval_h > 0:
            self._tasks.append(asyncio.create_task(self._purger(), name="zkref-purger"))
        log.info("serving clients on %s:%d", self.cfg.client_port_address, self.port)

    @property
    def port(self) -> int:
        assert self._tcp is not None
        sock = self._tcp.sockets[0]
        return int(sock.getsockname()[1])

    async def stop(self) -> None:
        if self._stopping:
            return
        self._stopping = True
        if self._tcp is not None:
            self._tcp.close()
        for c in list(self.conns.values()):
            c.abort()
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        # Whatever was appended is made durable before we go: nothing acknowledged is lost anyway,
        # but a clean stop leaves a clean log.
        await asyncio.get_running_loop().run_in_executor(None, self.storage.txn_log.sync)
        self.storage.close()
        log.info("stopped")

    # --- connections ----------------------------------------------------------------------
    def _new_conn(self) -> _Conn:
        cid = self._next_conn
        self._next_conn += 1
        return _Conn(self, cid)

    def admit(self, conn: _Conn) -> bool:
        ip = conn.peer[0]
        n = self.per_ip.get(ip, 0)
        if self.cfg.max_client_cnxns and n >= self.cfg.max_client_cnxns:
            return False
        self.per_ip[ip] = n + 1
        self.conns[conn.conn_id] = conn
        return True

    def forget(self, conn: _Conn) -> None:
        if self.conns.pop(conn.conn_id, None) is None:
            return
        ip = conn.peer[0]
        self.per_ip[ip] -= 1
        if not self.per_ip[ip]:
            del self.per_ip[ip]
        if not self._stopping:
            self.core_call(
                self.core.connection_lost, conn.conn_id, self.now_ms(), conn=conn.conn_id
            )
            self.flush()

    # --- effects ----------------------------------------------------------------------------
    def core_call(self, fn: Callable[..., list[Effect]], *args: Any, conn: int = 0) -> None:
        """Run one core input (about connection `conn`, if any); execute its effects in order."""
        try:
            effects = fn(*args)
        except Exception:
            self.internal_error(conn, getattr(fn, "__name__", "?"), args[:2])
            return
        self.run_effects(effects)

    def internal_error(self, conn: int, what: str, detail: object) -> None:
        """A core bug must not take the server down with every other client: log it loudly and
        drop the connection the input came from."""
        log.exception("internal error in %s for connection %d (%r)", what, conn, detail)
        c = self.conns.get(conn)
        if c is not None:
            c.abort()

    def run_effects(self, effects: list[Effect]) -> None:
        conns = self.conns
        for eff in effects:
            t = type(eff)
            if t is Reply:  # the hot one first
                assert isinstance(eff, Reply)
                c = conns.get(eff.conn)
                if c is not None and not c.closing:
                    c.out.append(
                        codec.encode_reply(
                            eff.xid, eff.zxid, eff.err, cast(codec.Response | None, eff.body)
                        )
                    )
                    self._dirty.add(c)
                continue
            match eff:
                case Notify(conn=cid, event=event, zxid=zxid):
                    c = conns.get(cid)
                    if c is not None and not c.closing:
                        c.out.append(codec.encode_notification(event, zxid))
                        self._dirty.add(c)
                case Persist(hdr=hdr, txn=txn):
                    self.storage.txn_log.append(hdr, txn)
                    self._pending_zxid = hdr.zxid
                    self._txns_since_snapshot += 1
                    self._sync_wanted.set()
                case SendConnectResponse(conn=cid, resp=resp):
                    c = conns.get(cid)
                    if c is not None and not c.closing:
                        c.out.append(codec.encode_connect_response(resp))
                        self._dirty.add(c)
                case Close(conn=cid, reason=reason):
                    c = conns.get(cid)
                    if c is not None and not c.closing:
                        log.debug("closing connection %d: %s", cid, reason)
                        self._flush_one(c)
                        c.closing = True
                        if c.transport is not None:
                            c.transport.close()
                case Reply():
                    raise AssertionError("unreachable: handled above")
                case Forward() | Revalidate() | SyncReady():
                    # an ensemble member's client port executes these (peer_host.MemberClientPort)
                    raise AssertionError(f"{eff!r} reached a standalone server")
                case _:
                    assert_never(eff)

    def _flush_one(self, c: _Conn) -> None:
        if c.out and c.transport is not None:
            c.transport.write(b"".join(c.out) if len(c.out) > 1 else c.out[0])
        c.out.clear()

    def flush(self) -> None:
        if self._dirty:
            for c in self._dirty:
                if not c.closing:
                    self._flush_one(c)
                else:
                    c.out.clear()
            self._dirty.clear()

    # --- durability -------------------------------------------------------------------------
    async def _syncer(self) -> None:
        """Group commit: one fsync for everything appended since the last one."""
        loop = asyncio.get_running_loop()
        while True:
            await self._sync_wanted.wait()
            self._sync_wanted.clear()
            upto = self._pending_zxid
            t0 = time.monotonic()
            try:
                await loop.run_in_executor(None, self.storage.txn_log.sync)
            except StorageError:
                # What was appended may be half on disk: nothing after it can be acknowledged.
                # ZooKeeper exits here; so do we (the log on disk is repaired on restart).
                log.critical("cannot write the txn log; stopping", exc_info=True)
                self.failed.set()
                return
            ms = (time.monotonic() - t0) * 1000
            if ms > 1000:
                log.warning("fsync of the txn log took %.0f ms", ms)
            elif log.isEnabledFor(logging.DEBUG):
                log.debug("group commit: txns up to 0x%x durable after %.1f ms", upto, ms)
            self.core_call(self.core.persisted, upto, self.now_ms())
            self.flush()
            if self._txns_since_snapshot >= self.cfg.snap_count and not self._snapshotting:
                self._txns_since_snapshot = 0
                self._tasks.append(asyncio.create_task(self._snapshot(), name="zkref-snapshot"))

    async def _snapshot(self) -> None:
        """A fuzzy snapshot, walked a slice at a time between requests, published off-loop."""
        self._snapshotting = True
        try:
            writer = self.storage.begin_snapshot(self.core.tree, self.core.session_timeouts())
            t0 = time.monotonic()
            try:
                while not writer.walk_done:
                    writer.step(2000)
                    await asyncio.sleep(0)  # serve requests between slices of the walk
                # Publishing (write, fsync, rename) never reads the tree: off the event loop.
                path = await asyncio.get_running_loop().run_in_executor(None, writer.finish)
            except BaseException:
                writer.abort()
                raise
            log.info("snapshot %s written in %.2fs", path, time.monotonic() - t0)
        except Exception:
            log.exception("snapshot failed; the txn log still holds every txn")
        finally:
            self._snapshotting = False

    async def _purger(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.cfg.autopurge_purge_interval_h * 3600)
            removed = await loop.run_in_executor(
                None,
                purge,
                self.cfg.data_dir,
                self.cfg.data_log_dir,
                max(3, self.cfg.autopurge_snap_retain_count),
            )
            log.info("autopurge removed %d files", len(removed))

    async def _ticker(self) -> None:
        period = max(0.01, min(self.cfg.tick_time_ms, 1000) / 2000)
        while True:
            await asyncio.sleep(period)
            self.core_call(self.core.tick, self.now_ms())
            self.flush()

    # --- four-letter words ------------------------------------------------------------------
    def answer_four_letter_word(self, conn: _Conn, word: str) -> None:
        text = fourletter.answer(word, self.cfg.four_letter_words, self.snapshot())
        conn.closing = True
        if conn.transport is not None:
            conn.transport.write(text.encode())
            conn.transport.close()

    def snapshot(self) -> fourletter.Snapshot:
        core = self.core
        st = core.stats()
        summary = core.watch_summary()
        conns = []
        for info in core.connections_info():
            c = self.conns.get(info.conn)
            if c is None or (c.closing and not c.first):
                continue
            conns.append(
                fourletter.ConnectionInfo(
                    remote=f"{c.peer[0]}:{c.peer[1]}",
                    queued=info.queued,
                    received=info.received,
                    sent=info.sent,
                    session_id=info.session_id,
                    timeout_ms=info.timeout_ms,
                    last_op=info.last_op,
                    established_ms=info.established_ms,
                    last_cxid=info.last_cxid,
                    last_zxid=info.last_zxid,
                    last_response_ms=info.last_response_ms,
                    last_latency_ms=info.last_latency_ms,
                    min_latency_ms=info.min_latency_ms,
                    avg_latency_ms=info.avg_latency_ms,
                    max_latency_ms=info.max_latency_ms,
                )
            )
        cfg = self.cfg
        snap_dir = cfg.data_dir / "version-2"
        log_dir = cfg.log_dir / "version-2"
        datadir_size, logdir_size = _dir_size(snap_dir), _dir_size(log_dir)
        return fourletter.Snapshot(
            mode="standalone",
            read_only=False,
            zxid=st.zxid,
            node_count=st.node_count,
            watch_count=st.watch_count,
            data_watch_count=summary.total,
            watched_paths=summary.paths,
            watching_connections=summary.connections,
            ephemerals_count=st.ephemerals_count,
            data_size=st.data_size,
            sessions=st.sessions,
            outstanding=st.outstanding,
            received=st.packets_received,
            sent=st.packets_sent,
            latency_min_ms=st.min_latency_ms,
            latency_avg_ms=st.avg_latency_ms,
            latency_max_ms=st.max_latency_ms,
            uptime_ms=self.now_ms() - self.started_ms,
            now_ms=self.now_ms(),
            connections=conns,
            config={  # ZooKeeper's standalone dumpConf, in its order
                "clientPort": str(self.port),
                "secureClientPort": "-1",
                "dataDir": str(snap_dir),
                "dataDirSize": str(datadir_size),
                "dataLogDir": str(log_dir),
                "dataLogSize": str(logdir_size),
                "tickTime": str(cfg.tick_time_ms),
                "maxClientCnxns": str(cfg.max_client_cnxns),
                "minSessionTimeout": str(cfg.min_session_timeout),
                "maxSessionTimeout": str(cfg.max_session_timeout),
                "clientPortListenBacklog": "-1",
                "serverId": str(self.server_id),
            },
            session_ephemerals=st.session_ephemerals,
            session_buckets=core.session_expiry_buckets(),
            watches_by_session=core.watches_by_session(),
            watches_by_path=core.watches_by_path(),
            datadir_size=datadir_size,
            logdir_size=logdir_size,
        )

    @staticmethod
    def now_ms() -> int:
        return time.time_ns() // 1_000_000


def _dir_size(path: Path) -> int:
    """Bytes in the files of one directory (ZooKeeper's dataDirSize/dataLogSize)."""
    try:
        return sum(e.stat().st_size for e in os.scandir(path) if e.is_file())
    except OSError:
        return 0


def _secret(data_dir: Path) -> bytes:
    """Per-data-dir secret from which session passwords are derived (kept across restarts)."""
    path = data_dir / "zkref.secret"
    try:
        return path.read_bytes()
    except FileNotFoundError:
        data_dir.mkdir(parents=True, exist_ok=True)
        secret = os.urandom(32)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(secret)
        os.replace(tmp, path)
        return secret


def install_event_loop_policy() -> str:
    """uvloop when installed (it roughly doubles request throughput), asyncio otherwise."""
    try:
        import uvloop
    except ImportError:
        return "asyncio"
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return "uvloop"


async def serve(
    cfg: ZooCfg, *, server_id: int = 0, ready: Callable[[int], None] | None = None
) -> None:
    """Run until SIGTERM/SIGINT, then stop cleanly."""
    server = ZkServer(cfg, server_id=server_id)
    await server.start()
    if ready is not None:
        ready(server.port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await asyncio.wait(
            [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(server.failed.wait())],
            return_when=asyncio.FIRST_COMPLETED,
        )
    finally:
        await server.stop()
    if server.failed.is_set():
        raise SystemExit(1)
