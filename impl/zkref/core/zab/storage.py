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

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import overload

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
from zkref.core.zab.zxid import zxid_counter, zxid_epoch


def last_zxid(log: Sequence[Txn]) -> int:
    return log[-1].zxid if log else 0


def trunc_to(log: Sequence[Txn], zxid: int) -> list[Txn]:
    """The spec's TruncTo: the prefix of `log` with zxids <= `zxid`."""
    return [t for t in log if t.zxid <= zxid]


NextProcessor = Callable[[list[Txn]], list[Effect]]


class HistoryView(Sequence[list[int]]):
    """The spec's `history` of one trace record, as [epoch, counter] pairs: a prefix of a
    shared, append-only encoding, so a record costs O(1) however long the log is. Equal to
    any sequence with the same pairs (a list, as JSON gives back)."""

    __slots__ = ("_enc", "_n")

    def __init__(self, enc: list[list[int]], n: int) -> None:
        self._enc = enc
        self._n = n

    def __len__(self) -> int:
        return self._n

    @overload
    def __getitem__(self, k: int) -> list[int]: ...
    @overload
    def __getitem__(self, k: slice) -> list[list[int]]: ...
    def __getitem__(self, k: int | slice) -> list[int] | list[list[int]]:
        if isinstance(k, slice):
            return self._enc[: self._n][k]
        if not -self._n <= k < self._n:
            raise IndexError(k)
        return self._enc[k % self._n]

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self._enc[: self._n])

    def tolist(self) -> list[list[int]]:
        return [list(p) for p in self._enc[: self._n]]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, HistoryView):
            return self.tolist() == other.tolist()
        if isinstance(other, Sequence) and not isinstance(other, (str, bytes)):
            return len(other) == self._n and all(
                list(a) == b for a, b in zip(other, self._enc, strict=False)
            )
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return repr(self.tolist())

    def __deepcopy__(self, memo: dict[int, object]) -> list[list[int]]:
        return self.tolist()


def _enc(t: Txn) -> list[int]:
    return [zxid_epoch(t.zxid), zxid_counter(t.zxid)]


class SyncRequestProcessor:
    """Costs: append, fsync and the checks on them are O(new txns); truncation and snapshots
    (sync only) are O(log)."""

    def __init__(self, disk: Iterable[Txn] = ()) -> None:
        self.disk: list[Txn] = list(disk)
        self.history: list[Txn] = list(self.disk)
        self._reindex()

    def _reindex(self) -> None:
        """After a truncation, a snapshot or a crash: recompute the bookkeeping (O(log))."""
        h, d = self.history, self.disk
        # disk == history[:durable_prefix] when the disk is a prefix of the log, else None
        self._durable_prefix: int | None = len(d) if h[: len(d)] == d else None
        self._disk_set: set[Txn] = set(d)
        self._enc: list[list[int]] = [_enc(t) for t in h]
        self._epoch_count: dict[int, int] = {}
        for t in h:
            e = zxid_epoch(t.zxid)
            self._epoch_count[e] = self._epoch_count.get(e, 0) + 1

    def synced(self) -> bool:
        k = self._durable_prefix
        return k is not None and k == len(self.history) == len(self.disk)

    def is_durable(self, t: Txn) -> bool:
        return t in self._disk_set

    def history_view(self) -> HistoryView:
        return HistoryView(self._enc, len(self.history))

    def count_of_epoch(self, epoch: int) -> int:
        """How many txns of `epoch` the log holds."""
        return self._epoch_count.get(epoch, 0)

    def append(self, txns: Sequence[Txn], *, fsync: bool = True) -> list[Effect]:
        if not txns:
            return []
        self.history.extend(txns)
        for t in txns:
            self._enc.append(_enc(t))
            e = zxid_epoch(t.zxid)
            self._epoch_count[e] = self._epoch_count.get(e, 0) + 1
        out: list[Effect] = [AppendTxns(tuple(txns))]
        if fsync:
            out.append(FsyncLog(self.history[-1].zxid))
        return out

    def request_fsync(self) -> list[Effect]:
        return [] if self.synced() else [FsyncLog(last_zxid(self.history))]

    def truncate(self, zxid: int) -> list[Effect]:
        self.history = trunc_to(self.history, zxid)
        self.disk = trunc_to(self.disk, zxid)
        self._reindex()
        return [TruncateLog(zxid)]

    def install_snapshot(self, zxid: int, snapshot: Sequence[Txn]) -> list[Effect]:
        self.history = list(snapshot)
        self._reindex()
        return [InstallSnapshot(zxid, tuple(snapshot))]

    def crash(self, disk: Iterable[Txn]) -> None:
        """What survives is what the host's disk holds (the core's view may lag it)."""
        self.disk = list(disk)
        self.history = list(self.disk)
        self._reindex()

    @spec_action("NodeFsyncLog")
    def flush(self, next_processor: NextProcessor) -> list[Effect]:
        """Spec: NodeFsyncLog. ZooKeeper: SyncRequestProcessor.flush (then the next processor)."""
        if self.synced():
            return []
        k = self._durable_prefix
        if k is not None:
            # history[:k] is the disk: only the tail can be new (duplicates only with a bug)
            new = [t for t in self.history[k:] if t not in self._disk_set]
            self.disk.extend(self.history[k:])
            self._disk_set.update(new)
        else:  # after a snapshot: the disk held another log
            durable = set(self.disk)
            new = [t for t in self.history if t not in durable]
            self.disk = list(self.history)
            self._disk_set = set(self.disk)
        self._durable_prefix = len(self.history)
        out = next_processor(new)
        out.append(Trace("NodeFsyncLog", {"new": [t.zxid for t in new]}))
        return out
