"""A blocking wrapper around `zkref.client.Client` (a shell), for scripts and threaded tests.

The async client runs on its own event loop in a daemon thread; each call blocks the caller
until the reply (or `timeout_s`). Watch events are available as `events()` (drained snapshot)
or `next_event(timeout_s)`.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

from zkref.client import OPEN_ACL_UNSAFE, Client, Notification
from zkref.wire.codec import Request, Response
from zkref.wire.constants import CreateMode
from zkref.wire.records import ACL, MultiOpRequest, MultiOpResult, ReplyHeader, Stat

__all__ = ["SyncClient"]

T = TypeVar("T")


class SyncClient:
    """`SyncClient("127.0.0.1", 2181)`; every method of interest, blocking; `close()` when done."""

    def __init__(self, host: str, port: int, *, timeout_s: float = 10.0, **connect: Any) -> None:
        self.timeout_s = timeout_s
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="zkref-sync-client", daemon=True
        )
        self._thread.start()
        try:
            self.client: Client = self._run(lambda: Client.connect(host, port, **connect))
        except BaseException:
            self._stop_loop()
            raise

    def _run(self, make: Callable[[], Awaitable[T]]) -> T:
        async def bounded() -> T:
            async with asyncio.timeout(self.timeout_s):
                return await make()

        return asyncio.run_coroutine_threadsafe(bounded(), self._loop).result()

    def call(self, method: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
        """Run any coroutine method of `self.client`, e.g. `call(c.client.who_am_i)`."""
        return self._run(lambda: method(*args, **kwargs))

    @property
    def session_id(self) -> int:
        return self.client.session_id

    def create(
        self,
        path: str,
        data: bytes | None = b"",
        acl: Iterable[ACL] = OPEN_ACL_UNSAFE,
        flags: int = CreateMode.PERSISTENT,
    ) -> str:
        return self._run(lambda: self.client.create(path, data, acl, flags))

    def delete(self, path: str, version: int = -1) -> None:
        self._run(lambda: self.client.delete(path, version))

    def exists(self, path: str, watch: bool = False) -> Stat | None:
        return self._run(lambda: self.client.exists(path, watch))

    def get_data(self, path: str, watch: bool = False) -> tuple[bytes | None, Stat]:
        return self._run(lambda: self.client.get_data(path, watch))

    def set_data(self, path: str, data: bytes | None, version: int = -1) -> Stat:
        return self._run(lambda: self.client.set_data(path, data, version))

    def get_children(self, path: str, watch: bool = False) -> tuple[str, ...]:
        return self._run(lambda: self.client.get_children(path, watch))

    def multi(
        self, ops: Iterable[tuple[int, MultiOpRequest]]
    ) -> tuple[tuple[int, MultiOpResult], ...]:
        return self._run(lambda: self.client.multi(ops))

    def raw_request(
        self, op: int, body: Request | bytes | None
    ) -> tuple[ReplyHeader, Response | None]:
        return self._run(lambda: self.client.raw_request(op, body))

    def next_event(self, timeout_s: float | None = None) -> Notification:
        async def get() -> Notification:
            async with asyncio.timeout(timeout_s or self.timeout_s):
                return await self.client.events.get()

        return asyncio.run_coroutine_threadsafe(get(), self._loop).result()

    def events(self) -> list[Notification]:
        """Every event received so far and not yet taken."""

        async def drain() -> list[Notification]:
            out = []
            while not self.client.events.empty():
                out.append(self.client.events.get_nowait())
            return out

        return self._run(drain)

    def close(self) -> None:
        try:
            self._run(self.client.close)
        finally:
            self._stop_loop()

    def _stop_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        if not self._thread.is_alive():
            self._loop.close()

    def __enter__(self) -> SyncClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
