"""A TCP proxy on the quorum and election links between ensemble members, to cut them.

Rules:
- one listening port per ordered pair (i, j) and link kind: member i's zoo.cfg names that port
  for member j, and the proxy forwards to j's real port; all on 127.0.0.1;
- a partition is a set of blocked unordered pairs {i, j}: blocking closes the pair's open
  connections in both directions and refuses new ones until healed; nothing else is delayed;
- the proxy runs an asyncio loop in a daemon thread of the harness process and is controlled
  from other threads through thread-safe calls; ``stop()`` closes every socket.

ZooKeeper's election "connect back" (the higher sid drops an incoming election connection from a
lower sid and dials the lower sid's *advertised*, i.e. real, address) bypasses the proxy. Such a
connection can only be made while the pair is not cut (it is triggered by a dial through the
proxy), so at cut time ``kill_direct_election_links`` closes the existing ones (``ss -K``, root).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import threading
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import Future

from zkref.chaos.zookeeper_proc import free_ports

__all__ = ["LinkProxy", "kill_direct_election_links", "pairs_between"]

Pair = frozenset[int]


def pairs_between(sids: Iterable[int], groups: Iterable[Iterable[int]]) -> list[tuple[int, int]]:
    """The pairs (i < j) that a partition into ``groups`` cuts (a member in no group is alone)."""
    side = {s: k for k, g in enumerate(groups) for s in g}
    ss = sorted(sids)
    return [(i, j) for i in ss for j in ss if i < j and side.get(i, -1 - i) != side.get(j, -1 - j)]


def kill_direct_election_links(
    pairs: Iterable[tuple[int, int]], election_port: Callable[[int], int]
) -> bool:
    """Close established TCP connections to the *real* election port of the lower sid of each
    cut pair (``ss -K``, root only). Those are ZooKeeper's election "connect back" connections,
    which bypass the proxy; once closed they can only be re-made through the proxy (blocked).
    Connections of uncut pairs to the same port are closed too and simply re-made. Returns
    False when this is not possible here (not root, no ``ss``)."""
    if os.geteuid() != 0 or shutil.which("ss") is None:
        return False
    for low in sorted({min(p) for p in pairs}):
        port = election_port(low)
        subprocess.run(
            [
                "ss",
                "-K",
                "-t",
                "state",
                "established",
                "dst",
                "127.0.0.1",
                "dport",
                "=",
                f":{port}",
            ],
            capture_output=True,
            timeout=10,
            check=False,
        )
    return True


class LinkProxy:
    def __init__(self, sids: Iterable[int], real_ports: dict[int, tuple[int, int]]) -> None:
        """``real_ports[j] = (quorum_port, election_port)`` that member j listens on."""
        self.sids = sorted(sids)
        self.real_ports = dict(real_ports)
        pairs = [(i, j) for i in self.sids for j in self.sids if i != j]
        ports = free_ports(2 * len(pairs))
        # (i, j) -> (quorum proxy port, election proxy port) for i dialling j.
        self.ports: dict[tuple[int, int], tuple[int, int]] = {
            p: (ports[2 * k], ports[2 * k + 1]) for k, p in enumerate(pairs)
        }
        self._blocked: set[Pair] = set()
        self._conns: dict[Pair, set[asyncio.StreamWriter]] = {}
        self._loop = asyncio.new_event_loop()
        self._servers: list[asyncio.Server] = []
        self._thread = threading.Thread(target=self._run, name="zkref-link-proxy", daemon=True)
        self._ready = threading.Event()
        self.bytes_forwarded = 0
        self.refused = 0
        self.quorum_hold_s = 3.0

    # The route zoo.cfg should use: (from_sid, to_sid) -> (quorum_port, election_port).
    def route(self, i: int, j: int) -> tuple[int, int]:
        return self.ports[(i, j)]

    def start(self) -> None:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("link proxy did not start")

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._listen())
        self._ready.set()
        self._loop.run_forever()

    async def _listen(self) -> None:
        for (i, j), (qp, ep) in self.ports.items():
            rq, re_ = self.real_ports[j]
            for port, target, hold_s in ((qp, rq, self.quorum_hold_s), (ep, re_, 0.0)):
                srv = await asyncio.start_server(
                    self._handler(i, j, target, hold_s), host="127.0.0.1", port=port
                )
                self._servers.append(srv)

    def _handler(
        self, i: int, j: int, target: int, hold_s: float
    ) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]:
        pair: Pair = frozenset((i, j))
        loop = self._loop

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            if pair in self._blocked:
                self.refused += 1
                writer.close()
                return
            # The proxy has already accepted, so the dialler believes it is connected. A
            # learner that dials a leader a few ms before the leader listens would get EOF
            # here where it would have got ECONNREFUSED and retried; so hold quorum-link
            # connections for a while until the leader's port opens.
            give_up = loop.time() + hold_s
            while True:
                try:
                    up_r, up_w = await asyncio.open_connection("127.0.0.1", target)
                    break
                except OSError:
                    if loop.time() >= give_up or pair in self._blocked:
                        writer.close()
                        return
                    await asyncio.sleep(0.05)
            conns = self._conns.setdefault(pair, set())
            conns.update((writer, up_w))
            try:
                await asyncio.gather(self._pipe(reader, up_w), self._pipe(up_r, writer))
            finally:
                conns.discard(writer)
                conns.discard(up_w)
                for w in (writer, up_w):
                    w.close()

        return handle

    async def _pipe(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        try:
            while True:
                data = await r.read(65536)
                if not data:
                    break
                w.write(data)
                self.bytes_forwarded += len(data)
                await w.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            w.close()

    def _call(self, fn: Callable[[], None]) -> None:
        fut: Future[None] = Future()

        def run() -> None:
            try:
                fn()
                fut.set_result(None)
            except BaseException as e:  # pragma: no cover - surfaced to the caller
                fut.set_exception(e)

        self._loop.call_soon_threadsafe(run)
        fut.result(timeout=10)

    def block(self, pairs: Iterable[tuple[int, int]]) -> None:
        """Cut the links between each pair (both directions, quorum and election)."""
        new = {frozenset(p) for p in pairs}

        def do() -> None:
            self._blocked |= new
            for pair in new:
                for w in list(self._conns.get(pair, ())):
                    w.transport.abort()

        self._call(do)

    def partition(self, groups: Iterable[Iterable[int]]) -> None:
        """Members talk only within their group."""
        self.block(pairs_between(self.sids, groups))

    def heal(self) -> None:
        def do() -> None:
            self._blocked.clear()

        self._call(do)

    @property
    def blocked(self) -> set[Pair]:
        return set(self._blocked)

    def stop(self) -> None:
        if not self._thread.is_alive():
            return

        async def close_all() -> None:
            for srv in self._servers:
                srv.close()
            for conns in self._conns.values():
                for w in list(conns):
                    w.transport.abort()

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(close_all(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
