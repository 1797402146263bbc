"""The txn log as the core sees it: ZooKeeper's SyncRequestProcessor, without the disk.

Rules:
- `history` is the in-memory log (what the log file holds once the host's buffers are flushed),
  `disk` what is known durable; a crash keeps `disk` only;
- appending is `AppendTxns` then, when the caller wants it durable, `FsyncLog`; the host answers
  an fsync by calling `flush` (the spec's NodeFsyncLog), which passes the newly durable txns on to
  the next processor (a follower's SendAckRequestProcessor, a leader's AckRequestProcessor);
- truncation is durable at once (ZooKeeper rewrites the file); a snapshot replaces the log in
  memory and reaches the disk at the next fsync, as in the spec.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from zkref.core.spec_action import spec_action
from zkref.core.zab.effects import (
    AppendTxns,
    Effect,
    FsyncLog,
    InstallSnapshot,
    Trace,
    TruncateLog,
)
from zkref.core.zab.messages import Txn


def last_zxid(log: Sequence[Txn]) -> int:
    return log[-1].zxid if log else 0


def trunc_to(log: Sequence[Txn], zxid: int) -> list[Txn]:
    """The spec's TruncTo: the prefix of `log` with zxids <= `zxid`."""
    return [t for t in log if t.zxid <= zxid]


NextProcessor = Callable[[list[Txn]], list[Effect]]


class SyncRequestProcessor:
    def __init__(self, disk: Iterable[Txn] = ()) -> None:
        self.disk: list[Txn] = list(disk)
        self.history: list[Txn] = list(self.disk)

    def synced(self) -> bool:
        return self.disk == self.history

    def append(self, txns: Sequence[Txn], *, fsync: bool = True) -> list[Effect]:
        if not txns:
            return []
        self.history.extend(txns)
        out: list[Effect] = [AppendTxns(tuple(txns))]
        if fsync:
            out.append(FsyncLog(self.history[-1].zxid))
        return out

    def request_fsync(self) -> list[Effect]:
        return [] if self.synced() else [FsyncLog(last_zxid(self.history))]

    def truncate(self, zxid: int) -> list[Effect]:
        self.history = trunc_to(self.history, zxid)
        self.disk = trunc_to(self.disk, zxid)
        return [TruncateLog(zxid)]

    def install_snapshot(self, zxid: int, snapshot: Sequence[Txn]) -> list[Effect]:
        self.history = list(snapshot)
        return [InstallSnapshot(zxid, tuple(snapshot))]

    def crash(self, disk: Iterable[Txn]) -> None:
        """What survives is what the host's disk holds (the core's view may lag it)."""
        self.disk = list(disk)
        self.history = list(self.disk)

    @spec_action("NodeFsyncLog")
    def flush(self, next_processor: NextProcessor) -> list[Effect]:
        """Spec: NodeFsyncLog. ZooKeeper: SyncRequestProcessor.flush (then the next processor)."""
        if self.synced():
            return []
        durable = set(self.disk)
        new = [t for t in self.history if t not in durable]
        self.disk = list(self.history)
        out = next_processor(new)
        out.append(Trace("NodeFsyncLog", {"new": [t.zxid for t in new]}))
        return out
