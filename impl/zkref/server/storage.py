"""Durable storage: ZooKeeper's transaction log and fuzzy snapshots, in ZooKeeper's layout.

Layout (as `FileTxnSnapLog`): `<dataDir>/version-2/snapshot.<zxid hex>` and
`<dataLogDir>/version-2/log.<first zxid hex>`; `docs/storage.md` has the format byte by byte.

Rules:
- a txn is durable once `TxnLog.sync()` has returned after its `append()`; the shell replies only
  after that (one fsync covers every txn appended before the sync took its batch: group commit).
- `append()` never blocks on the disk; `sync()` may run in another thread concurrently with it.
- a snapshot is named by the zxid the tree had when the walk STARTED; the txns applied during the
  walk are in the log after that zxid and replaying them onto the snapshot is idempotent
  (`DataTree.apply` tolerates NodeExists/NoNode, as ZooKeeper's `processTxn` on replay).
- a snapshot becomes visible (renamed into place) only after it and the txn log are fsynced, so a
  snapshot never holds a txn the log could lose.
- restore loads the newest snapshot that passes its checksum, then replays every txn after it; the
  first bad log record (short, wrong checksum, missing 'B', undecodable) ends the log: the file is
  truncated there with a WARNING and later log files are moved aside, never loaded.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Final

from zkref.server._storage_jute import (
    FILE_HEADER,
    INT,
    LOG_RECORD_PREFIX,
    LONG,
    NODE_TAIL,
    SESSION,
    JuteError,
    Reader,
    read_nodes,
    write_acl_vector,
    write_buffer,
    write_ustring,
)
from zkref.wire.codec import decode_txn, encode_txn
from zkref.wire.records import (
    ACL,
    CloseSessionTxn,
    CreateSessionTxn,
    Id,
    StatPersisted,
    TxnBody,
    TxnHeader,
)

if TYPE_CHECKING:
    from zkref.core.datatree import DataTree

log = logging.getLogger(__name__)

VERSION_DIR: Final = "version-2"
TXNLOG_MAGIC: Final = int.from_bytes(b"ZKLG", "big")
SNAP_MAGIC: Final = int.from_bytes(b"ZKSN", "big")
FORMAT_VERSION: Final = 2
DBID: Final = 0
LOG_PREFIX: Final = "log"
SNAP_PREFIX: Final = "snapshot"
EOR: Final = 0x42  # 'B', ZooKeeper's end-of-record byte
TMP_SUFFIX: Final = ".tmp"
ASIDE_SUFFIX: Final = ".corrupt"
# ReferenceCountedACLCache.OPEN_UNSAFE_ACL_ID: world:anyone with ALL is never put in the map.
OPEN_UNSAFE_ACL_ID: Final = -1
OPEN_ACL_UNSAFE: Final = (ACL(perms=31, id=Id(scheme="world", id="anyone")),)

_fdatasync: Callable[[int], None] = getattr(os, "fdatasync", os.fsync)


# Txn log files grow by this many zero bytes at a time. ZooKeeper's preAllocSize is 64 MB, but
# sparse (one byte written at the new end); zero-filled space is what makes fdatasync cheap, and
# 4 MB of it lasts ~30k small txns while keeping a new log file cheap to start.
DEFAULT_PREALLOC: Final = 4 << 20


class StorageError(Exception):
    """The data directory cannot be used (no valid snapshot, I/O failure, closed log)."""


class SnapshotError(Exception):
    """One snapshot file is not a valid snapshot (truncated, bad checksum, bad format)."""


def make_log_name(zxid: int) -> str:
    return f"{LOG_PREFIX}.{zxid:x}"


def make_snapshot_name(zxid: int) -> str:
    return f"{SNAP_PREFIX}.{zxid:x}"


def zxid_from_name(name: str, prefix: str) -> int | None:
    """`Util.getZxidFromName`: the hex zxid after `prefix.`, or None for any other name."""
    head, dot, tail = name.partition(".")
    if head != prefix or not dot or not tail:
        return None
    try:
        return int(tail, 16)
    except ValueError:
        return None


def list_files(directory: Path, prefix: str) -> list[tuple[int, Path]]:
    """(zxid, path) of every `prefix.<hex>` file in `directory`, ascending by zxid."""
    if not directory.is_dir():
        return []
    out: list[tuple[int, Path]] = []
    for p in directory.iterdir():
        z = zxid_from_name(p.name, prefix)
        if z is not None and p.is_file():
            out.append((z, p))
    out.sort()
    return out


def logs_needed_from(logs: list[tuple[int, Path]], zxid: int) -> list[tuple[int, Path]]:
    """`FileTxnLog.getLogFiles`: the last log starting at or before `zxid`, and every later one.

    A log named below `zxid` can hold txns after it, so it is kept unless a later log also starts
    at or before `zxid`.
    """
    start = 0
    for z, _ in logs:
        if z > zxid:
            break
        start = max(start, z)
    return [(z, p) for z, p in logs if z >= start]


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes | bytearray | memoryview) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


# --- transaction log ------------------------------------------------------------------------


class _Segment:
    """Appended, not yet written bytes bound for one log file (`start_zxid` set = a new file)."""

    __slots__ = ("buf", "last_zxid", "start_zxid")

    def __init__(self, start_zxid: int | None) -> None:
        self.start_zxid = start_zxid
        self.buf = bytearray()
        self.last_zxid = -1


class TxnLog:
    """ZooKeeper's `FileTxnLog`: `log.<first zxid>` files of checksummed, 'B'-terminated records.

    `append` only encodes into memory; `sync` writes what was appended and fsyncs it, once for the
    whole batch. The file is preallocated with zeros, `prealloc_bytes` at a time (ZooKeeper's
    preAllocSize): an fdatasync of bytes written inside the file's allocated size has no size or
    block-map change to commit, which makes it about twice as fast here. A zero record prefix
    reads as the end of the log, as in ZooKeeper; a clean close trims the unused padding.
    """

    def __init__(
        self, log_dir: Path, *, force_sync: bool = True, prealloc_bytes: int = DEFAULT_PREALLOC
    ) -> None:
        self.log_dir = log_dir
        self.force_sync = force_sync
        self.prealloc_bytes = max(0, prealloc_bytes)
        self._pos = 0  # where the next record goes in the current file
        self._alloc_end = 0  # bytes of the current file already written (records + zero padding)
        log_dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()  # guards _segments, _roll, _last_appended_zxid, _closed
        self._sync_lock = threading.Lock()  # one writer of the file at a time
        self._segments: list[_Segment] = []
        # ZooKeeper starts a new log file after every restart and after every snapshot.
        self._roll = True
        self._fd: int | None = None
        self._path: Path | None = None
        self._last_appended_zxid = -1
        self._last_synced_zxid = -1
        self._closed = False
        self.fsync_count = 0

    @property
    def last_appended_zxid(self) -> int:
        return self._last_appended_zxid

    @property
    def last_synced_zxid(self) -> int:
        """Every txn appended with a zxid up to this one is on disk."""
        return self._last_synced_zxid

    @property
    def current_path(self) -> Path | None:
        return self._path

    def set_last_zxid(self, zxid: int) -> None:
        """After restore: the zxid the next append must exceed (for the out-of-order warning)."""
        with self._lock:
            self._last_appended_zxid = zxid
            self._last_synced_zxid = max(self._last_synced_zxid, zxid)

    def append(self, hdr: TxnHeader, txn: TxnBody) -> None:
        payload = encode_txn(hdr, txn)
        crc = zlib.adler32(payload)
        with self._lock:
            if self._closed:
                raise StorageError(f"txn log {self.log_dir} is closed")
            if hdr.zxid <= self._last_appended_zxid:
                log.warning(
                    "Current zxid 0x%x is <= 0x%x for type %d",
                    hdr.zxid,
                    self._last_appended_zxid,
                    hdr.type,
                )
            else:
                self._last_appended_zxid = hdr.zxid
            if self._roll or not self._segments:
                self._segments.append(_Segment(hdr.zxid if self._roll else None))
                self._roll = False
            seg = self._segments[-1]
            seg.buf += LOG_RECORD_PREFIX.pack(crc, len(payload))
            seg.buf += payload
            seg.buf.append(EOR)
            seg.last_zxid = hdr.zxid

    def sync(self) -> None:
        """Write and fsync everything appended before this call took its batch."""
        with self._sync_lock:
            with self._lock:
                segments, self._segments = self._segments, []
            for seg in segments:
                try:
                    if seg.start_zxid is not None:
                        self._close_file()
                        self._open_file(seg.start_zxid)
                    fd = self._fd
                    assert fd is not None, "a segment without a file: the first append rolls"
                    self._write_at_end(fd, seg.buf)
                    if self.force_sync:
                        _fdatasync(fd)
                        self.fsync_count += 1
                except OSError as e:
                    # The appended txns are gone from memory and maybe half on disk: nothing
                    # after this can be acknowledged. ZooKeeper exits here; the shell must too.
                    raise StorageError(f"writing {self._path}: {e}") from e
                self._last_synced_zxid = max(self._last_synced_zxid, seg.last_zxid)

    def _write_at_end(self, fd: int, data: bytes | bytearray) -> None:
        end = self._pos + len(data)
        if end > self._alloc_end and self.prealloc_bytes:
            # FilePadding: grow the file with zeros ahead of the records.
            new_end = max(end, self._alloc_end + self.prealloc_bytes)
            zeros = bytes(min(1 << 20, new_end - self._alloc_end))
            at = self._alloc_end
            while at < new_end:
                n = os.pwrite(fd, zeros[: new_end - at], at)
                at += n
            self._alloc_end = new_end
        view = memoryview(data)
        at = self._pos
        while view:
            n = os.pwrite(fd, view, at)
            view = view[n:]
            at += n
        self._pos = end
        self._alloc_end = max(self._alloc_end, end)

    def roll(self) -> None:
        """The next append starts a new `log.<its zxid>` file."""
        with self._lock:
            if self._segments or self._fd is not None:
                self._roll = True

    def close(self) -> None:
        self.sync()
        with self._sync_lock:
            self._close_file()
            with self._lock:
                self._closed = True

    def _open_file(self, zxid: int) -> None:
        path = self.log_dir / make_log_name(zxid)
        log.info("Creating new log file: %s", path.name)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError as e:
            # A crash right after creating it can leave a file with no record (at most a
            # header); it holds nothing, so it is reused. Anything longer is never overwritten.
            if path.stat().st_size > FILE_HEADER.size:
                raise StorageError(f"log file {path} already exists") from e
            log.info("Reusing empty log file %s", path.name)
            fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
        header = FILE_HEADER.pack(TXNLOG_MAGIC, FORMAT_VERSION, DBID)
        _write_all(fd, header)
        self._pos = self._alloc_end = len(header)
        if self.force_sync:
            # The new name must survive a crash as well as the records synced into it.
            _fsync_dir(self.log_dir)
        self._fd, self._path = fd, path

    def _close_file(self) -> None:
        if self._fd is not None:
            if self._alloc_end > self._pos:
                # Trim the unused padding (a crash leaves it: it reads as the end of the log).
                try:
                    os.ftruncate(self._fd, self._pos)
                except OSError as e:
                    log.warning("could not trim the padding of %s: %s", self._path, e)
            os.close(self._fd)
            self._fd, self._path = None, None
            self._pos = self._alloc_end = 0


@dataclass(frozen=True, slots=True)
class LogScan:
    """One log file read back: its good records, where they end, and why reading stopped."""

    path: Path
    records: list[tuple[TxnHeader, TxnBody]]  # the good records with zxid > after_zxid
    good: int  # all good records, including the skipped ones
    valid_end: int  # byte offset just after the last good record (or after the header)
    size: int
    problem: str | None  # None: the file ended cleanly after its last record


# TxnHeader{long clientId, int cxid, long zxid, ...}: the zxid sits 12 bytes into the payload.
_ZXID_IN_PAYLOAD: Final = 12


def scan_log_file(path: Path, after_zxid: int = -1) -> LogScan:
    """Read `path` up to its first bad record (ZooKeeper's `FileTxnIterator.next`).

    Every record is framed and checksum-checked; only those with a zxid above `after_zxid` are
    decoded and returned (restore skips what the snapshot already holds).
    """
    buf = path.read_bytes()
    size = len(buf)
    records: list[tuple[TxnHeader, TxnBody]] = []
    good = 0

    def stop(pos: int, problem: str | None) -> LogScan:
        return LogScan(path, records, good, pos, size, problem)

    if size < FILE_HEADER.size:
        return stop(0, f"short file header ({size} bytes)")
    magic, version, _dbid = FILE_HEADER.unpack_from(buf, 0)
    if magic != TXNLOG_MAGIC or version != FORMAT_VERSION:
        return stop(0, f"bad file header magic=0x{magic:x} v={version}")
    pos = FILE_HEADER.size
    prefix = LOG_RECORD_PREFIX.size
    while True:
        if pos == size:
            return stop(pos, None)
        if size - pos < prefix:
            return stop(pos, f"short record prefix at offset {pos}")
        crc, length = LOG_RECORD_PREFIX.unpack_from(buf, pos)
        if length == 0 and crc == 0 and not any(buf[pos:]):
            # ZooKeeper preallocates with zeros and reads a zero-length entry as end of log.
            return stop(pos, None)
        end = pos + prefix + length
        if length <= 0 or end + 1 > size:
            return stop(pos, f"short record at offset {pos}")
        if buf[end] != EOR:
            return stop(pos, f"missing end-of-record 'B' at offset {end}")
        payload = buf[pos + prefix : end]
        if zlib.adler32(payload) != crc:
            return stop(pos, f"checksum mismatch at offset {pos}")
        if length < _ZXID_IN_PAYLOAD + 8:
            return stop(pos, f"record too short for a TxnHeader at offset {pos}")
        (zxid,) = LONG.unpack_from(payload, _ZXID_IN_PAYLOAD)
        if zxid > after_zxid:
            try:
                records.append(decode_txn(payload))
            except Exception as e:  # the codec's own error types; any means unreadable
                return stop(pos, f"undecodable txn at offset {pos}: {e!r}")
        good += 1
        pos = end + 1


# --- snapshots ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LoadedSnapshot:
    path: Path
    zxid: int
    sessions: dict[int, int]
    nodes: list[tuple[str, bytes | None, tuple[ACL, ...], StatPersisted]]


class SnapshotWriter:
    """An incremental fuzzy snapshot: `step()` walks the live tree a few nodes at a time.

    Node records go to `snapshot.<zxid>.body.tmp` as they are visited (ACLs get cache ids as
    they are met). Once the walk is complete, publishing — assemble header, sessions, ACL map and
    body into `snapshot.<zxid>.tmp`, seal it with its Adler32, fsync, run `before_publish` (the
    txn-log sync) and rename it into place — runs in a background thread that the next `step()`
    starts, so the event loop never waits for the disk; `step()` returns True once the snapshot
    is published. `finish()` publishes (or waits for the publishing thread) and returns the path;
    it does not touch the tree, so it may also run in an executor.
    """

    def __init__(
        self,
        snap_dir: Path,
        tree: DataTree,
        sessions: Mapping[int, int],
        zxid: int,
        *,
        force_sync: bool = True,
        before_publish: Callable[[], None] | None = None,
    ) -> None:
        self.snap_dir = snap_dir
        self.zxid = zxid
        self.path = snap_dir / make_snapshot_name(zxid)
        self._tree = tree
        self._sessions = dict(sessions)  # ZooKeeper copies the session map when it starts
        self._force_sync = force_sync
        self._before_publish = before_publish
        self._acl_ids: dict[tuple[ACL, ...], int] = {}
        self._stack: list[str] = ["/"]
        self._body_path = snap_dir / (self.path.name + ".body" + TMP_SUFFIX)
        self._tmp_path = snap_dir / (self.path.name + TMP_SUFFIX)
        snap_dir.mkdir(parents=True, exist_ok=True)
        try:
            self._body: BinaryIO | None = open(self._body_path, "xb")  # noqa: SIM115
        except FileExistsError as e:
            raise StorageError(f"a snapshot at zxid 0x{zxid:x} is already being written") from e
        self.nodes_written = 0
        self._finished = False
        self._publish_lock = threading.Lock()
        self._publisher: threading.Thread | None = None
        self._publish_error: BaseException | None = None
        self._aborted = False

    @property
    def walk_done(self) -> bool:
        """Every znode is serialised; what is left is publishing (`finish`)."""
        return not self._stack

    @property
    def published(self) -> bool:
        return self._finished

    def _acl_id(self, acl: tuple[ACL, ...]) -> int:
        if acl == OPEN_ACL_UNSAFE:
            return OPEN_UNSAFE_ACL_ID
        ident = self._acl_ids.get(acl)
        if ident is None:
            ident = len(self._acl_ids) + 1  # ReferenceCountedACLCache ids start at 1
            self._acl_ids[acl] = ident
        return ident

    def step(self, max_nodes: int) -> bool:
        """Serialise up to `max_nodes` znodes in their current state; True once published.

        Pre-order walk as `DataTree.serializeNode`: a node deleted before it is visited is
        skipped with its whole subtree, so a child is never written without its parent.
        The first call after the walk completes starts the publishing thread; later calls
        return False while it runs, then True (or raise `StorageError` if it failed).
        """
        if not self._stack:
            return self._poll_publish()
        body = self._body
        assert body is not None
        tree = self._tree
        out = bytearray()
        n = 0
        stack = self._stack
        while stack and n < max_nodes:
            path = stack.pop()
            node = tree.get(path)
            if node is None:
                continue
            write_ustring(out, "" if path == "/" else path)  # ZooKeeper's root is ""
            write_buffer(out, node.data)
            out += NODE_TAIL.pack(
                self._acl_id(node.acl),
                node.czxid,
                node.mzxid,
                node.ctime,
                node.mtime,
                node.version,
                node.cversion,
                node.aversion,
                node.ephemeral_owner,
                node.pzxid,
            )
            base = "/" if path == "/" else path + "/"
            # Reverse-sorted onto the stack, so children come out in name order.
            stack.extend(base + c for c in sorted(node.children, reverse=True))
            n += 1
        body.write(out)
        self.nodes_written += n
        return False

    def _poll_publish(self) -> bool:
        if self._finished:
            return True
        if self._publisher is None:
            self._publisher = threading.Thread(
                target=self._publish_in_thread, name=f"zkref-{self.path.name}", daemon=True
            )
            self._publisher.start()
            return False
        if self._publisher.is_alive():
            return False
        if self._publish_error is not None:
            raise StorageError(f"writing {self.path}: {self._publish_error}") from (
                self._publish_error
            )
        return self._finished

    def _publish_in_thread(self) -> None:
        try:
            self._publish()
        except BaseException as e:
            self._publish_error = e
            log.error("Snapshot %s failed: %s", self.path.name, e)

    def finish(self) -> Path:
        """Publish the snapshot (blocking) and return its path. Only after the walk is done."""
        if self._stack:
            raise StorageError("SnapshotWriter.finish() before the walk is done")
        publisher = self._publisher
        if publisher is not None:
            publisher.join()
            if self._publish_error is not None:
                raise StorageError(f"writing {self.path}: {self._publish_error}") from (
                    self._publish_error
                )
            return self.path
        self._publish()
        return self.path

    def _publish(self) -> None:
        with self._publish_lock:
            if not self._finished:
                self._publish_locked()

    def _publish_locked(self) -> None:
        if self._aborted:
            raise StorageError(f"snapshot {self.path.name} was aborted")
        body = self._body
        assert body is not None
        body.close()
        self._body = None
        head = bytearray(FILE_HEADER.pack(SNAP_MAGIC, FORMAT_VERSION, DBID))
        head += INT.pack(len(self._sessions))
        for sid, timeout in self._sessions.items():
            head += SESSION.pack(sid, timeout)
        head += INT.pack(len(self._acl_ids))
        for acl, ident in self._acl_ids.items():
            head += LONG.pack(ident)
            write_acl_vector(head, acl)
        tail = bytearray()
        write_ustring(tail, "/")  # end of nodes
        with open(self._tmp_path, "wb") as f, open(self._body_path, "rb") as b:
            crc = zlib.adler32(head)
            f.write(head)
            while chunk := b.read(1 << 20):
                crc = zlib.adler32(chunk, crc)
                f.write(chunk)
            crc = zlib.adler32(tail, crc)
            f.write(tail)
            seal = bytearray(LONG.pack(crc))
            write_ustring(seal, "/")
            f.write(seal)
            f.flush()
            if self._force_sync:
                os.fsync(f.fileno())
        self._body_path.unlink()
        if self._before_publish is not None:
            self._before_publish()
        os.replace(self._tmp_path, self.path)
        if self._force_sync:
            _fsync_dir(self.snap_dir)
        self._finished = True
        log.info(
            "Snapshot %s written: %d znodes, %d sessions",
            self.path.name,
            self.nodes_written,
            len(self._sessions),
        )

    def abort(self) -> None:
        """Drop an unpublished snapshot and its temp files (a published one stays)."""
        if self._publisher is not None:
            self._publisher.join()
        with self._publish_lock:
            if self._finished:
                return
            if self._body is not None:
                self._body.close()
                self._body = None
            self._stack.clear()
            self._aborted = True
            for p in (self._body_path, self._tmp_path):
                with contextlib.suppress(FileNotFoundError):
                    p.unlink()


class SnapshotStore:
    """ZooKeeper's `FileSnap`: `snapshot.<zxid>` files in one directory."""

    def __init__(self, snap_dir: Path, *, force_sync: bool = True) -> None:
        self.snap_dir = snap_dir
        self.force_sync = force_sync
        snap_dir.mkdir(parents=True, exist_ok=True)

    def list_snapshots(self) -> list[tuple[int, Path]]:
        """Every `snapshot.<hex>` file, newest first, valid or not."""
        return list_files(self.snap_dir, SNAP_PREFIX)[::-1]

    def find_valid(self, n: int) -> list[tuple[int, Path]]:
        """The newest `n` snapshots that load (full checksum check), newest first."""
        out: list[tuple[int, Path]] = []
        for zxid, path in self.list_snapshots():
            if len(out) >= n:
                break
            try:
                self.load(path)
            except SnapshotError as e:
                log.warning("invalid snapshot %s: %s", path, e)
                continue
            out.append((zxid, path))
        return out

    def remove_temp_files(self) -> None:
        """Leftovers of a snapshot that a crash interrupted; never renamed, so never used."""
        for p in self.snap_dir.glob(f"{SNAP_PREFIX}.*{TMP_SUFFIX}"):
            log.info("removing unfinished snapshot %s", p)
            p.unlink()

    def begin(
        self,
        tree: DataTree,
        sessions: Mapping[int, int],
        zxid: int,
        *,
        before_publish: Callable[[], None] | None = None,
    ) -> SnapshotWriter:
        return SnapshotWriter(
            self.snap_dir,
            tree,
            sessions,
            zxid,
            force_sync=self.force_sync,
            before_publish=before_publish,
        )

    def load(self, path: Path) -> LoadedSnapshot:
        zxid = zxid_from_name(path.name, SNAP_PREFIX)
        if zxid is None:
            raise SnapshotError(f"{path.name} is not a snapshot name")
        try:
            buf = path.read_bytes()
        except OSError as e:
            raise SnapshotError(str(e)) from e
        try:
            return self._parse(path, zxid, buf)
        except JuteError as e:
            raise SnapshotError(f"truncated or malformed: {e}") from e

    @staticmethod
    def _parse(path: Path, zxid: int, buf: bytes) -> LoadedSnapshot:
        # SnapStream.isValidCheckedStream: at least 10 bytes and ending in the sealed "/".
        if len(buf) < 10 or buf[-5:] != INT.pack(1) + b"/":
            raise SnapshotError(f"no end-of-snapshot seal ({len(buf)} bytes)")
        r = Reader(buf)
        hdr = r.read_file_header()
        if hdr.magic != SNAP_MAGIC or hdr.version != FORMAT_VERSION:
            raise SnapshotError(f"bad file header magic=0x{hdr.magic:x} version={hdr.version}")
        sessions: dict[int, int] = {}
        for _ in range(r.read_int()):
            sid = r.read_long()
            sessions[sid] = r.read_int()
        acls: dict[int, tuple[ACL, ...]] = {OPEN_UNSAFE_ACL_ID: OPEN_ACL_UNSAFE}
        for _ in range(r.read_int()):
            ident = r.read_long()
            acls[ident] = r.read_acl_vector()
        nodes, r.pos = read_nodes(buf, r.pos, acls)
        crc = zlib.adler32(memoryview(buf)[: r.pos])
        stored = r.read_long()
        if stored != crc or r.read_ustring() != "/":
            raise SnapshotError(f"checksum mismatch (stored 0x{stored:x}, computed 0x{crc:x})")
        # Bytes after the first seal (ZooKeeper's digest and lastProcessedZxid, each sealed
        # again) are allowed and ignored.
        return LoadedSnapshot(path=path, zxid=zxid, sessions=sessions, nodes=nodes)


# --- the pair -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RestoreResult:
    tree: DataTree
    sessions: dict[int, int]  # session id -> timeout (ms)
    last_zxid: int
    txns_replayed: int
    snapshot: Path | None = None


class FileTxnSnapLog:
    """ZooKeeper's `FileTxnSnapLog`: snapshots in `data_dir`, txn logs in `data_log_dir`."""

    def __init__(
        self,
        data_dir: Path,
        data_log_dir: Path | None = None,
        *,
        force_sync: bool = True,
        prealloc_bytes: int = DEFAULT_PREALLOC,
    ) -> None:
        self.snap_dir = Path(data_dir) / VERSION_DIR
        self.log_dir = Path(data_log_dir if data_log_dir is not None else data_dir) / VERSION_DIR
        self.snapshots = SnapshotStore(self.snap_dir, force_sync=force_sync)
        self.txn_log = TxnLog(self.log_dir, force_sync=force_sync, prealloc_bytes=prealloc_bytes)

    def restore(self, *, extended_types_enabled: bool = False) -> RestoreResult:
        """Newest valid snapshot + replay of the log after it (`FileTxnSnapLog.restore`)."""
        # Imported here so the txn log (and its benchmark) do not load the data tree.
        from zkref.core.datatree import DataTree

        self.snapshots.remove_temp_files()
        tree: DataTree | None = None
        sessions: dict[int, int] = {}
        snap_path: Path | None = None
        candidates = self.snapshots.list_snapshots()
        for _zxid, path in candidates:
            try:
                loaded = self.snapshots.load(path)
            except SnapshotError as e:
                log.warning("Skipping invalid snapshot %s: %s", path, e)
                continue
            log.info("Reading snapshot %s", path)
            try:
                tree = DataTree.from_nodes(
                    loaded.nodes,
                    last_processed_zxid=loaded.zxid,
                    extended_types_enabled=extended_types_enabled,
                )
            except ValueError as e:  # e.g. a node before its parent: not a tree
                log.warning("Skipping invalid snapshot %s: %s", path, e)
                continue
            sessions = dict(loaded.sessions)
            snap_path = path
            break
        if tree is None:
            if candidates:
                raise StorageError(
                    f"Not able to find valid snapshots in {self.snap_dir} "
                    f"({len(candidates)} present, all invalid)"
                )
            logs = list_files(self.log_dir, LOG_PREFIX)
            if logs and logs[0][0] & 0xFFFFFFFF > 1:
                # Without a snapshot the log must reach back to the first txn of an epoch;
                # replaying a later part of history onto an empty tree would be silently wrong.
                raise StorageError(
                    f"no snapshot in {self.snap_dir} and the oldest txn log {logs[0][1].name} "
                    "does not start at the beginning of history"
                )
            tree = DataTree(extended_types_enabled=extended_types_enabled)
        snap_zxid = tree.last_processed_zxid
        last_zxid = snap_zxid
        replayed = 0
        for hdr, txn in self._replay_from(snap_zxid):
            if hdr.zxid >> 32 == last_zxid >> 32 and hdr.zxid != last_zxid + 1:
                # zxids of one epoch are consecutive: a jump means a missing log file.
                log.warning("Txn log gap: zxid 0x%x follows 0x%x", hdr.zxid, last_zxid)
            if isinstance(txn, CreateSessionTxn):
                sessions[hdr.client_id] = txn.time_out
            elif isinstance(txn, CloseSessionTxn):
                sessions.pop(hdr.client_id, None)
            # Errors (NodeExists/NoNode after a fuzzy snapshot) are expected and ignored.
            tree.apply(hdr, txn)
            last_zxid = max(last_zxid, hdr.zxid)
            replayed += 1
        log.info(
            "Restored to zxid 0x%x: snapshot %s + %d txns replayed",
            last_zxid,
            snap_path.name if snap_path else "(none)",
            replayed,
        )
        self.txn_log.set_last_zxid(last_zxid)
        return RestoreResult(
            tree=tree,
            sessions=sessions,
            last_zxid=last_zxid,
            txns_replayed=replayed,
            snapshot=snap_path,
        )

    def _replay_from(self, snap_zxid: int) -> Iterator[tuple[TxnHeader, TxnBody]]:
        """Txns after `snap_zxid`, file by file; repairs the first bad record it meets."""
        files = logs_needed_from(list_files(self.log_dir, LOG_PREFIX), snap_zxid + 1)
        for i, (_start, path) in enumerate(files):
            scan = scan_log_file(path, after_zxid=snap_zxid)
            yield from scan.records
            if scan.problem is not None:
                self._cut_log(scan, later=[p for _, p in files[i + 1 :]])
                return

    def _cut_log(self, scan: LogScan, later: list[Path]) -> None:
        log.warning(
            "Txn log %s: %s; truncating from %d to %d bytes (%d good records kept)",
            scan.path,
            scan.problem,
            scan.size,
            scan.valid_end,
            scan.good,
        )
        if scan.good:
            with open(scan.path, "r+b") as f:
                f.truncate(scan.valid_end)
                f.flush()
                os.fsync(f.fileno())
        else:
            log.warning("Txn log %s holds no valid record; removing it", scan.path)
            scan.path.unlink()
        for p in later:
            aside = p.with_name(p.name + ASIDE_SUFFIX)
            log.error(
                "Txn log %s follows a corrupt record and cannot be replayed; moved to %s",
                p,
                aside.name,
            )
            os.replace(p, aside)
        _fsync_dir(self.log_dir)

    def begin_snapshot(
        self, tree: DataTree, sessions: Mapping[int, int], zxid: int | None = None
    ) -> SnapshotWriter:
        """Start a fuzzy snapshot at `zxid` (default: the tree's last processed zxid).

        Rolls the txn log, as ZooKeeper's SyncRequestProcessor does when it snapshots.
        """
        self.txn_log.roll()
        return self.snapshots.begin(
            tree,
            sessions,
            tree.last_processed_zxid if zxid is None else zxid,
            before_publish=self.txn_log.sync,
        )

    def save_snapshot(self, tree: DataTree, sessions: Mapping[int, int], zxid: int) -> Path:
        writer = self.begin_snapshot(tree, sessions, zxid)
        try:
            while not writer.walk_done:
                writer.step(10_000)
            return writer.finish()
        except BaseException:
            writer.abort()
            raise

    def close(self) -> None:
        self.txn_log.close()
