"""A simulated disk for one server: what was written vs what is durable.

Rules:
- `log` is the txn log file as written (appends land here), `durable_log` what an fsync made
  durable; a crash keeps `durable_log` only;
- truncation rewrites the file and is durable at once; a snapshot replaces the written log and
  becomes durable at the next fsync;
- the epoch files (`acceptedEpoch`, `currentEpoch`) are separate durability points, each durable
  as soon as it is written.
"""

from __future__ import annotations

from collections.abc import Iterable

from zkref.core.zab.messages import Txn
from zkref.core.zab.peer import Durable


class SimDisk:
    def __init__(self) -> None:
        self.accepted_epoch = 0
        self.current_epoch = 0
        self.log: list[Txn] = []
        self.durable_log: list[Txn] = []
        self.fsyncs = 0
        # durable_log == log[:_prefix] when it is a prefix of the log (appends and fsyncs are
        # then O(new txns)); None after a snapshot replaced the written log
        self._prefix: int | None = 0

    def append(self, txns: Iterable[Txn]) -> None:
        self.log.extend(txns)

    def fsync(self) -> None:
        if self._prefix is None:
            self.durable_log = list(self.log)
        else:
            self.durable_log.extend(self.log[self._prefix :])
        self._prefix = len(self.log)
        self.fsyncs += 1

    def truncate(self, zxid: int) -> None:
        self.log = [t for t in self.log if t.zxid <= zxid]
        self.durable_log = [t for t in self.durable_log if t.zxid <= zxid]
        self._reprefix()

    def replace(self, txns: Iterable[Txn]) -> None:
        self.log = list(txns)
        self._reprefix()

    def _reprefix(self) -> None:
        n = len(self.durable_log)
        self._prefix = n if self.log[:n] == self.durable_log else None

    def synced(self) -> bool:
        return self._prefix is not None and self._prefix == len(self.log) == len(self.durable_log)

    def durable(self) -> Durable:
        return Durable(self.accepted_epoch, self.current_epoch, tuple(self.durable_log))

    def crash(self) -> Durable:
        """Power loss: whatever was not fsynced is gone."""
        self.log = list(self.durable_log)
        self._prefix = len(self.log)
        return self.durable()
