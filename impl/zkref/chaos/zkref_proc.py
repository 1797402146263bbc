"""Launch zkref servers on loopback exactly as Apache ZooKeeper is launched (same zoo.cfg files,
same faults), so the chaos harness and differential tests can swap one for the other.

Rules:
- size 1 is a standalone server; size > 1 is a zkref ensemble (issue 4): the Apache launcher's
  zoo.cfg already holds the `server.N` lines and each dataDir its `myid`, which is what makes
  `zkref server` run as an ensemble member;
- the server runs as ``python -m zkref server --config zoo.cfg`` with this interpreter and this
  package on its path; readiness is the same ``srvr`` "Mode:" line as for ZooKeeper.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

import zkref
from zkref.chaos.zookeeper_proc import ApacheZooKeeper

__all__ = ["ZkrefEnsembleUnavailable", "ZkrefServers"]

_IMPL_DIR = str(Path(zkref.__file__).resolve().parents[1])


class ZkrefEnsembleUnavailable(RuntimeError):
    """zkref has no replicated ensemble yet."""


class ZkrefServers(ApacheZooKeeper):
    """``size`` zkref servers on 127.0.0.1. Same API as :class:`ApacheZooKeeper`."""

    def __init__(
        self,
        size: int,
        base_dir: Path,
        *,
        tick_time_ms: int = 2000,
        extra_cfg: Mapping[str, str] | None = None,
    ) -> None:
        # --- ensemble hook (issue 4): size > 1 runs zkref ensemble members
        if size < 1:
            raise ZkrefEnsembleUnavailable(f"size must be >= 1, got {size}")
        # --- end of ensemble hook
        super().__init__(size, base_dir, tick_time_ms=tick_time_ms, extra_cfg=extra_cfg)

    def _check_available(self) -> None:
        pass

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (_IMPL_DIR, env.get("PYTHONPATH")) if p)
        return env

    def _command(self, sid: int) -> list[str]:
        return [
            sys.executable,
            "-m",
            "zkref",
            "server",
            "--config",
            str(self._members[sid].cfg_path),
            "--log-level",
            "INFO",
        ]
