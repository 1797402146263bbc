"""One handle for "a standalone server", whether zkref or Apache ZooKeeper 3.8.

Tests written against `StandaloneServer` run unchanged on both, which checks the tests themselves
(an assertion that Apache ZooKeeper fails is a wrong assertion) as well as zkref.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

import pytest

from zkref.chaos.zookeeper_proc import ApacheZooKeeper, apache_zookeeper_available
from zkref.server.process import ZkrefServerProcess

KINDS = ("zkref", "zookeeper")


class StandaloneServer(Protocol):
    kind: str

    @property
    def connect_string(self) -> str: ...

    @property
    def port(self) -> int: ...

    def kill(self) -> None: ...

    def restart(self) -> None: ...


class _Zkref:
    kind = "zkref"

    def __init__(self, proc: ZkrefServerProcess) -> None:
        self.proc = proc

    @property
    def connect_string(self) -> str:
        return self.proc.connect_string

    @property
    def port(self) -> int:
        return self.proc.port

    def kill(self) -> None:
        self.proc.kill()

    def restart(self) -> None:
        self.proc.stop()
        self.proc.start()


class _Apache:
    kind = "zookeeper"

    def __init__(self, zk: ApacheZooKeeper) -> None:
        self.zk = zk

    @property
    def connect_string(self) -> str:
        return self.zk.connect_string

    @property
    def port(self) -> int:
        return self.zk.client_port(1)

    def kill(self) -> None:
        self.zk.kill(1)

    def restart(self) -> None:
        self.zk.kill(1)
        self.zk.restart(1)


@contextmanager
def standalone(
    kind: str,
    base_dir: Path,
    *,
    tick_time_ms: int = 2000,
    extra_cfg: Mapping[str, str] | None = None,
    extended_types: bool = False,
) -> Iterator[StandaloneServer]:
    """Start a standalone server of `kind` on a free loopback port; always stopped on exit."""
    cfg = dict(extra_cfg or {})
    if kind == "zkref":
        if extended_types:
            cfg["extendedTypesEnabled"] = "true"
        proc = ZkrefServerProcess(base_dir / "zkref", tick_time_ms=tick_time_ms, extra_cfg=cfg)
        try:
            proc.start()
            yield _Zkref(proc)
        finally:
            proc.stop()
    elif kind == "zookeeper":
        if not apache_zookeeper_available():
            pytest.skip("Apache ZooKeeper (Debian's zookeeper package) is not installed")
        props = {"zookeeper.extendedTypesEnabled": "true"} if extended_types else {}
        zk = ApacheZooKeeper(
            1, base_dir / "apache", tick_time_ms=tick_time_ms, extra_cfg=cfg, jvm_props=props
        )
        try:
            zk.start()
            yield _Apache(zk)
        finally:
            zk.stop()
    else:
        raise ValueError(kind)


def wait_for(
    condition: Callable[[], bool], timeout_s: float = 20.0, what: str = "condition"
) -> None:
    """Poll `condition` until it holds; fail the test (naming `what`) after a generous deadline."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
