"""Snapshots, restore and purge on real files, checked against the same txns applied in memory."""

from __future__ import annotations

import logging
import random
import shutil
import struct
import zlib
from pathlib import Path

import pytest

from zkref.core.datatree import DataTree
from zkref.server._storage_jute import STAT_PERSISTED, write_acl_vector
from zkref.server.purge import purge
from zkref.server.storage import (
    SNAP_MAGIC,
    FileTxnSnapLog,
    SnapshotStore,
    StorageError,
    list_files,
    scan_log_file,
)
from zkref.wire.codec import encode_record
from zkref.wire.constants import OpCode
from zkref.wire.records import (
    ACL,
    CloseSessionTxn,
    CreateSessionTxn,
    CreateTxn,
    DeleteTxn,
    FileHeader,
    Id,
    MultiSubTxn,
    MultiTxn,
    SetACLTxn,
    SetDataTxn,
    StatPersisted,
    TxnBody,
    TxnHeader,
)

OPEN = (ACL(31, Id("world", "anyone")),)
DIGEST = (ACL(31, Id("digest", "bob:4Ad6kF5oO9xPPTwBqEddHbj3fIs=")), ACL(1, Id("world", "anyone")))
IP = (ACL(3, Id("ip", "127.0.0.1")),)
ACLS = (OPEN, DIGEST, IP)
LOGGER = "zkref.server.storage"

State = tuple[int, list[tuple[str, bytes | None, tuple[ACL, ...], StatPersisted, list[str]]]]


def tree_state(tree: DataTree) -> State:
    """Everything a snapshot must preserve; node order is the tree's business, so sorted."""
    return tree.last_processed_zxid, sorted(
        (p, n.data, n.acl, n.stat_persisted(), sorted(n.children)) for p, n in tree.export_nodes()
    )


class Workload:
    """Valid txns against an in-memory oracle tree (applied there as they are made).

    A small name space (/n0../n4, each with c0..c2) so creates, deletes and re-creates of the
    same path are frequent: that is what makes a fuzzy snapshot's replay interesting.
    """

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.oracle = DataTree()
        self.sessions: dict[int, int] = {}
        self.zxid = 0

    def _hdr(self, client_id: int, op: int) -> TxnHeader:
        self.zxid += 1
        return TxnHeader(client_id, self.zxid, self.zxid, 1_000_000 + self.zxid, op)

    def _random_path(self) -> str:
        rng = self.rng
        top = f"/n{rng.randrange(5)}"
        return top if rng.random() < 0.4 else f"{top}/c{rng.randrange(3)}"

    def _create(self, path: str, owner: int) -> tuple[int, CreateTxn] | None:
        parent = self.oracle.get(path[: path.rfind("/")] or "/")
        if parent is None or self.oracle.get(path) is not None or parent.ephemeral_owner:
            return None
        data = bytes(self.rng.randrange(256) for _ in range(self.rng.randrange(0, 40)))
        txn = CreateTxn(path, data, self.rng.choice(ACLS), owner != 0, parent.cversion + 1)
        return OpCode.create, txn

    def next_txn(self) -> tuple[TxnHeader, TxnBody]:
        rng = self.rng
        while True:
            r = rng.random()
            sid = rng.choice(sorted(self.sessions)) if self.sessions else 0
            body: TxnBody
            if r < 0.06 or not self.sessions:
                sid = 0x1000 + self.zxid + 1
                hdr, body = (
                    self._hdr(sid, OpCode.createSession),
                    CreateSessionTxn(rng.choice((4000, 30000))),
                )
            elif r < 0.09:
                eph = tuple(sorted(self.oracle.ephemerals_of(sid), reverse=True))
                hdr, body = self._hdr(sid, OpCode.closeSession), CloseSessionTxn(eph)
            elif r < 0.45:
                made = self._create(self._random_path(), sid if rng.random() < 0.3 else 0)
                if made is None:
                    continue
                hdr, body = self._hdr(sid if made[1].ephemeral else 0, made[0]), made[1]
            elif r < 0.65:
                path = self._random_path()
                node = self.oracle.get(path)
                if node is None or node.children:
                    continue
                hdr, body = self._hdr(sid, OpCode.delete), DeleteTxn(path)
            elif r < 0.85:
                path = self._random_path()
                node = self.oracle.get(path)
                if node is None:
                    continue
                hdr = self._hdr(sid, OpCode.setData)
                body = SetDataTxn(path, f"v{self.zxid}".encode(), node.version + 1)
            elif r < 0.92:
                path = self._random_path()
                node = self.oracle.get(path)
                if node is None:
                    continue
                hdr = self._hdr(sid, OpCode.setACL)
                body = SetACLTxn(path, rng.choice(ACLS), node.aversion + 1)
            else:
                made = self._create(f"/n{rng.randrange(5)}", 0)
                if made is None:
                    continue
                subs: tuple[tuple[int, MultiSubTxn], ...] = (
                    made,
                    (OpCode.setData, SetDataTxn(made[1].path, b"multi", 1)),
                )
                hdr, body = self._hdr(sid, OpCode.multi), MultiTxn(subs)
            break
        if isinstance(body, CreateSessionTxn):
            self.sessions[hdr.client_id] = body.time_out
        elif isinstance(body, CloseSessionTxn):
            self.sessions.pop(hdr.client_id, None)
        self.oracle.apply(hdr, body)
        return hdr, body


def run(w: Workload, store: FileTxnSnapLog, n: int, sync_every: int = 7) -> None:
    for i in range(n):
        store.txn_log.append(*w.next_txn())
        if i % sync_every == 0:
            store.txn_log.sync()
    store.txn_log.sync()


def restored(data_dir: Path, log_dir: Path | None = None) -> tuple[State, dict[int, int], int]:
    store = FileTxnSnapLog(data_dir, log_dir)
    res = store.restore()
    store.close()
    assert res.last_zxid == res.tree.last_processed_zxid
    return tree_state(res.tree), res.sessions, res.txns_replayed


# --- round trips ----------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(4))
def test_log_round_trip_equals_in_memory_apply(tmp_path: Path, seed: int) -> None:
    w = Workload(seed)
    store = FileTxnSnapLog(tmp_path)
    assert store.restore().txns_replayed == 0
    run(w, store, 300)
    store.close()
    state, sessions, replayed = restored(tmp_path)
    assert replayed == 300
    assert state == tree_state(w.oracle)
    assert sessions == w.sessions


def test_oracle_is_not_vacuous(tmp_path: Path) -> None:
    # A planted difference (one lost setData) must show in the comparison.
    w = Workload(1)
    store = FileTxnSnapLog(tmp_path)
    for _ in range(50):
        hdr, txn = w.next_txn()
        if not isinstance(txn, SetDataTxn) or hdr.zxid < 40:
            store.txn_log.append(hdr, txn)
    store.close()
    assert restored(tmp_path)[0] != tree_state(w.oracle)


def test_separate_data_log_dir(tmp_path: Path) -> None:
    w = Workload(5)
    store = FileTxnSnapLog(tmp_path / "data", tmp_path / "logs")
    store.restore()
    run(w, store, 60)
    store.save_snapshot(w.oracle, w.sessions, w.zxid)
    run(w, store, 60)
    store.close()
    assert {p.name for p in (tmp_path / "data" / "version-2").iterdir()} == {"snapshot.3c"}
    assert [z for z, _ in list_files(tmp_path / "logs" / "version-2", "log")] == [1, 61]
    state, sessions, replayed = restored(tmp_path / "data", tmp_path / "logs")
    assert (state, sessions, replayed) == (tree_state(w.oracle), w.sessions, 60)


def test_snapshot_then_log_replay(tmp_path: Path) -> None:
    w = Workload(2)
    store = FileTxnSnapLog(tmp_path)
    store.restore()
    run(w, store, 100)
    snap = store.save_snapshot(w.oracle, w.sessions, w.zxid)
    assert snap.name == "snapshot.64"
    run(w, store, 80)
    store.close()
    # The log rolled at the snapshot: the txns after it start a new file.
    assert [z for z, _ in list_files(tmp_path / "version-2", "log")] == [1, 101]
    state, sessions, replayed = restored(tmp_path)
    assert replayed == 80
    assert state == tree_state(w.oracle)
    assert sessions == w.sessions


def test_snapshot_in_the_middle_of_a_log_file_replays_only_later_txns(tmp_path: Path) -> None:
    # A snapshot taken without a roll (or a log written by ZooKeeper's learner path): its
    # log file starts before it; the txns up to the snapshot zxid must be skipped, not re-applied.
    w = Workload(21)
    store = FileTxnSnapLog(tmp_path)
    store.restore()
    run(w, store, 70)
    writer = store.snapshots.begin(w.oracle, w.sessions, w.zxid)
    while not writer.step(5):
        pass
    writer.finish()
    run(w, store, 30)
    store.close()
    assert [z for z, _ in list_files(tmp_path / "version-2", "log")] == [1]
    state, sessions, replayed = restored(tmp_path)
    assert (state, sessions, replayed) == (tree_state(w.oracle), w.sessions, 30)


def test_snapshot_alone_restores_exactly(tmp_path: Path) -> None:
    w = Workload(3)
    for _ in range(200):
        w.next_txn()
    store = FileTxnSnapLog(tmp_path)
    store.save_snapshot(w.oracle, w.sessions, w.zxid)
    store.close()
    loaded = SnapshotStore(tmp_path / "version-2").load(tmp_path / "version-2" / "snapshot.c8")
    assert loaded.sessions == w.sessions
    state, sessions, replayed = restored(tmp_path)
    assert (state, sessions, replayed) == (tree_state(w.oracle), w.sessions, 0)


def test_snapshot_bytes_are_zookeepers_layout(tmp_path: Path) -> None:
    tree = DataTree()
    hdr = TxnHeader(0, 1, 1, 5, OpCode.create)
    tree.apply(hdr, CreateTxn("/a", b"xy", DIGEST, False, 1))
    store = FileTxnSnapLog(tmp_path)
    path = store.save_snapshot(tree, {0x77: 30000}, 1)
    store.close()
    raw = path.read_bytes()
    assert (
        raw[:16]
        == encode_record(FileHeader(SNAP_MAGIC, 2, 0))
        == b"ZKSN" + struct.pack(">iq", 2, 0)
    )
    pos = 16
    assert raw[pos : pos + 16] == struct.pack(">iqi", 1, 0x77, 30000)  # sessions
    pos += 16
    # the non-OPEN acl lists in the order met: /a's (id 1), /zookeeper/config's READ (id 2)
    acl_map = bytearray(struct.pack(">iq", 2, 1))
    write_acl_vector(acl_map, DIGEST)
    acl_map += struct.pack(">q", 2)
    write_acl_vector(acl_map, (ACL(1, Id("world", "anyone")),))
    assert raw[pos : pos + len(acl_map)] == acl_map
    pos += len(acl_map)
    # the root, as "", OPEN_ACL_UNSAFE as acl id -1
    root = tree.get("/")
    assert root is not None
    expect = struct.pack(">i", 0) + struct.pack(">i", 0) + struct.pack(">q", -1)
    expect += encode_record(root.stat_persisted())
    assert raw[pos : pos + len(expect)] == expect
    # "/a" follows the root (pre-order, names sorted) with acl id 1
    a = tree.get("/a")
    assert a is not None
    expect_a = struct.pack(">i", 2) + b"/a" + struct.pack(">i", 2) + b"xy" + struct.pack(">q", 1)
    expect_a += STAT_PERSISTED.pack(
        *[getattr(a.stat_persisted(), f) for f in StatPersisted.__slots__]
    )
    assert raw.find(expect_a) > pos
    assert encode_record(a.stat_persisted()) == expect_a[-STAT_PERSISTED.size :]
    # "/" terminator, Adler32 of everything before the seal, then the sealing "/"
    assert raw[-5 - 8 - 5 : -13] == struct.pack(">i", 1) + b"/"
    (crc,) = struct.unpack(">q", raw[-13:-5])
    assert crc == zlib.adler32(raw[:-13])
    assert raw[-5:] == struct.pack(">i", 1) + b"/"
    for acl in DIGEST:
        assert encode_record(acl) in raw


# --- fuzzy snapshot -------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(8))
def test_fuzzy_snapshot_while_txns_apply(tmp_path: Path, seed: int) -> None:
    w = Workload(100 + seed)
    store = FileTxnSnapLog(tmp_path)
    store.restore()
    run(w, store, 150)
    start = w.zxid
    writer = store.begin_snapshot(w.oracle, w.sessions)
    assert writer.zxid == start
    rng = random.Random(seed)
    done = False
    while not done:
        done = writer.step(rng.randrange(1, 3))
        for _ in range(rng.randrange(1, 5)):
            store.txn_log.append(*w.next_txn())  # the live tree changes under the walk
    assert w.zxid > start + 5
    snap = writer.finish()
    assert snap.name == f"snapshot.{start:x}"
    run(w, store, 30)
    store.close()
    state, sessions, replayed = restored(tmp_path)
    assert replayed == w.zxid - start
    assert state == tree_state(w.oracle)
    assert sessions == w.sessions
    # ... and a straight replay of the whole log agrees.
    snap.unlink()
    assert restored(tmp_path)[:2] == (tree_state(w.oracle), w.sessions)


def test_snapshot_publishes_only_after_the_log_is_synced(tmp_path: Path) -> None:
    w = Workload(9)
    store = FileTxnSnapLog(tmp_path)
    store.restore()
    run(w, store, 20)
    writer = store.begin_snapshot(w.oracle, w.sessions)
    store.txn_log.append(*w.next_txn())  # applied to the tree, not yet synced
    while not writer.walk_done:
        assert not writer.step(2)
    assert store.txn_log.last_synced_zxid == 20
    assert not writer.path.exists()
    writer.finish()
    assert writer.step(1) and writer.path.exists()
    assert store.txn_log.last_synced_zxid == 21


def test_step_publishes_in_a_thread_then_reports_done(tmp_path: Path) -> None:
    w = Workload(10)
    store = FileTxnSnapLog(tmp_path)
    store.restore()
    run(w, store, 30)
    writer = store.begin_snapshot(w.oracle, w.sessions)
    steps = 0
    while not writer.step(4):
        steps += 1
        store.txn_log.append(*w.next_txn())
    assert writer.published and writer.path.exists()
    assert writer.finish() == writer.path
    store.close()
    assert restored(tmp_path)[:2] == (tree_state(w.oracle), w.sessions)


def test_aborted_snapshot_leaves_nothing(tmp_path: Path) -> None:
    w = Workload(19)
    store = FileTxnSnapLog(tmp_path)
    store.restore()
    run(w, store, 30)
    writer = store.begin_snapshot(w.oracle, w.sessions)
    writer.step(5)
    writer.abort()
    with pytest.raises(StorageError):
        writer.finish()
    store.close()
    assert sorted(p.name for p in (tmp_path / "version-2").iterdir()) == ["log.1"]


def test_unfinished_snapshot_is_ignored_and_cleaned(tmp_path: Path) -> None:
    w = Workload(4)
    store = FileTxnSnapLog(tmp_path)
    store.restore()
    run(w, store, 40)
    writer = store.begin_snapshot(w.oracle, w.sessions)
    writer.step(3)  # crash: never finished
    store.close()
    state, _, replayed = restored(tmp_path)
    assert state == tree_state(w.oracle) and replayed == 40
    assert not list((tmp_path / "version-2").glob("*.tmp"))


# --- invalid snapshots ----------------------------------------------------------------------


def _two_snapshots(tmp_path: Path) -> tuple[Workload, Path, Path]:
    w = Workload(7)
    store = FileTxnSnapLog(tmp_path)
    store.restore()
    run(w, store, 50)
    old = store.save_snapshot(w.oracle, w.sessions, w.zxid)
    run(w, store, 50)
    new = store.save_snapshot(w.oracle, w.sessions, w.zxid)
    run(w, store, 20)
    store.close()
    return w, old, new


@pytest.mark.parametrize("damage", ["flip", "truncate", "empty"])
def test_invalid_newest_snapshot_is_skipped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, damage: str
) -> None:
    w, _old, new = _two_snapshots(tmp_path)
    raw = new.read_bytes()
    if damage == "flip":
        i = len(raw) // 2
        new.write_bytes(raw[:i] + bytes([raw[i] ^ 0x10]) + raw[i + 1 :])
    elif damage == "truncate":
        new.write_bytes(raw[: len(raw) - 7])
    else:
        new.write_bytes(b"")
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        state, sessions, replayed = restored(tmp_path)
    assert f"Skipping invalid snapshot {new}" in caplog.text
    assert replayed == 70
    assert (state, sessions) == (tree_state(w.oracle), w.sessions)


def test_no_valid_snapshot_at_all_is_an_error(tmp_path: Path) -> None:
    _, old, new = _two_snapshots(tmp_path)
    for p in (old, new):
        p.write_bytes(p.read_bytes()[:-1])
    with pytest.raises(StorageError, match="Not able to find valid snapshots"):
        FileTxnSnapLog(tmp_path).restore()


# --- torn and corrupt logs ------------------------------------------------------------------


def _record_starts(path: Path) -> list[int]:
    raw = path.read_bytes()
    out, pos = [], 16
    while pos < len(raw):
        out.append(pos)
        (length,) = struct.unpack_from(">i", raw, pos + 8)
        pos += 12 + length + 1
    return out


def test_torn_tail_at_every_offset_is_cut_back(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    w = Workload(11)
    src = tmp_path / "src"
    store = FileTxnSnapLog(src)
    store.restore()
    run(w, store, 29)
    before_last = tree_state(w.oracle), dict(w.sessions)
    run(w, store, 1)
    store.close()
    log1 = src / "version-2" / "log.1"
    raw = log1.read_bytes()
    last = _record_starts(log1)[-1]
    for cut in range(last + 1, len(raw)):
        d = tmp_path / f"cut{cut}"
        shutil.copytree(src, d)
        (d / "version-2" / "log.1").write_bytes(raw[:cut])
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger=LOGGER):
            store = FileTxnSnapLog(d)
            res = store.restore()
        assert "truncating from" in caplog.text, cut
        assert (tree_state(res.tree), res.sessions) == before_last, cut
        assert res.last_zxid == 29
        assert (d / "version-2" / "log.1").read_bytes() == raw[:last], cut
        # the server goes on: the next txn lands in a new file and survives the next restore
        hdr, txn = TxnHeader(0, 0, 30, 0, OpCode.createSession), CreateSessionTxn(5000)
        store.txn_log.append(hdr, txn)
        store.close()
        _state, sessions, _ = restored(d)
        assert sessions == {**before_last[1], 0: 5000}
        shutil.rmtree(d)


def test_corrupt_checksum_in_the_middle_truncates_there(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    w = Workload(12)
    store = FileTxnSnapLog(tmp_path)
    store.restore()
    run(w, store, 10)
    at_10 = tree_state(w.oracle), dict(w.sessions)
    run(w, store, 10)
    store.txn_log.roll()
    run(w, store, 10)  # a second file, log.15, after the corruption
    store.close()
    log1 = tmp_path / "version-2" / "log.1"
    raw = bytearray(log1.read_bytes())
    start = _record_starts(log1)[10]  # zxid 11
    raw[start + 7] ^= 0xFF  # the checksum's low byte
    log1.write_bytes(bytes(raw))
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        state, sessions, replayed = restored(tmp_path)
    assert f"{log1}: checksum mismatch at offset {start}" in caplog.text
    assert "cannot be replayed; moved to log.15.corrupt" in caplog.text
    assert (state, sessions, replayed) == (*at_10, 10)
    assert log1.stat().st_size == start
    assert [z for z, _ in list_files(tmp_path / "version-2", "log")] == [1]
    # restart again: nothing left to repair, same state
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert restored(tmp_path)[:2] == at_10
    assert caplog.text == ""


@pytest.mark.parametrize("flushed", [0.0, 0.5, 1.0])
def test_crash_loses_only_unsynced_txns(tmp_path: Path, flushed: float) -> None:
    w = Workload(13)
    store = FileTxnSnapLog(tmp_path)
    store.restore()
    run(w, store, 40)
    states = {40: (tree_state(w.oracle), dict(w.sessions))}
    for _ in range(15):
        store.txn_log.append(*w.next_txn())
        states[w.zxid] = tree_state(w.oracle), dict(w.sessions)
    # Crash: the process dies before the next sync. Appended txns are only in memory; the OS
    # may still have written some prefix of them (a partial page): `flushed` of the bytes.
    log1 = tmp_path / "version-2" / "log.1"
    unsynced = bytes(store.txn_log._segments[0].buf)
    with open(log1, "r+b") as f:  # where the log writes next: inside its zero padding
        f.seek(store.txn_log._pos)
        f.write(unsynced[: int(len(unsynced) * flushed)])
    res = FileTxnSnapLog(tmp_path).restore()
    # every synced txn is there; of the rest, exactly a prefix of whole records
    assert 40 <= res.last_zxid <= 55
    assert (tree_state(res.tree), res.sessions) == states[res.last_zxid]
    if flushed == 0.0:
        assert res.last_zxid == 40
    if flushed == 1.0:
        assert res.last_zxid == 55


# --- purge ----------------------------------------------------------------------------------


def test_purge_keeps_what_restore_needs(tmp_path: Path) -> None:
    w = Workload(14)
    store = FileTxnSnapLog(tmp_path)
    store.restore()
    snaps = []
    for _ in range(6):
        run(w, store, 25)
        snaps.append(store.save_snapshot(w.oracle, w.sessions, w.zxid))
    run(w, store, 10)
    store.close()
    vdir = tmp_path / "version-2"
    logs_before = [z for z, _ in list_files(vdir, "log")]
    assert logs_before == [1, 26, 51, 76, 101, 126, 151]
    with pytest.raises(ValueError):
        purge(tmp_path, None, 2)
    removed = purge(tmp_path, None, 3)
    # kept: snapshot.64/.7d/.96 (zxids 100, 125, 150); logs from the one holding zxid 100+1 on,
    # plus log.4c (76), the last log that starts at or before 100 (PurgeTxnLog's rule).
    assert sorted(p.name for p in removed) == sorted(
        ["snapshot.19", "snapshot.32", "snapshot.4b", "log.1", "log.1a", "log.33"]
    )
    assert [z for z, _ in list_files(vdir, "snapshot")] == [100, 125, 150]
    assert [z for z, _ in list_files(vdir, "log")] == [76, 101, 126, 151]
    assert restored(tmp_path)[:2] == (tree_state(w.oracle), w.sessions)
    # ... and from the oldest kept snapshot too.
    for p in snaps[-2:]:
        p.unlink()
    state, sessions, replayed = restored(tmp_path)
    assert (state, sessions, replayed) == (tree_state(w.oracle), w.sessions, 60)
    # purging again removes nothing restore needs
    purge(tmp_path, None, 3)
    assert restored(tmp_path)[:2] == (tree_state(w.oracle), w.sessions)


def test_purge_with_invalid_newest_snapshot_keeps_older_valid_ones(tmp_path: Path) -> None:
    w = Workload(15)
    store = FileTxnSnapLog(tmp_path)
    store.restore()
    snaps = []
    for _ in range(5):
        run(w, store, 20)
        snaps.append(store.save_snapshot(w.oracle, w.sessions, w.zxid))
    store.close()
    snaps[-1].write_bytes(snaps[-1].read_bytes()[:-2])
    purge(tmp_path, None, 3)
    vdir = tmp_path / "version-2"
    # the 3 newest VALID ones are kept (the invalid newest is not counted, nor deleted)
    assert [z for z, _ in list_files(vdir, "snapshot")] == [40, 60, 80, 100]
    assert restored(tmp_path)[:2] == (tree_state(w.oracle), w.sessions)


def test_purge_nothing_without_snapshots(tmp_path: Path) -> None:
    w = Workload(16)
    store = FileTxnSnapLog(tmp_path)
    store.restore()
    run(w, store, 20)
    store.close()
    assert purge(tmp_path, None, 3) == []
    assert scan_log_file(tmp_path / "version-2" / "log.1").problem is None


# --- missing files --------------------------------------------------------------------------


def test_missing_log_file_is_reported_as_a_gap(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    w = Workload(17)
    store = FileTxnSnapLog(tmp_path)
    store.restore()
    run(w, store, 20)
    store.save_snapshot(w.oracle, w.sessions, w.zxid)
    run(w, store, 10)
    store.txn_log.roll()
    run(w, store, 10)
    store.close()
    (tmp_path / "version-2" / "log.15").unlink()  # zxids 21..30
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        restored(tmp_path)
    assert "Txn log gap: zxid 0x1f follows 0x14" in caplog.text


def test_logs_without_their_beginning_and_no_snapshot_is_an_error(tmp_path: Path) -> None:
    w = Workload(18)
    store = FileTxnSnapLog(tmp_path)
    store.restore()
    run(w, store, 10)
    store.txn_log.roll()
    run(w, store, 10)
    store.close()
    (tmp_path / "version-2" / "log.1").unlink()
    with pytest.raises(StorageError, match="does not start at the beginning"):
        FileTxnSnapLog(tmp_path).restore()


def test_empty_log_file_left_by_a_crash_is_reused(tmp_path: Path) -> None:
    w = Workload(20)
    store = FileTxnSnapLog(tmp_path)
    store.restore()
    run(w, store, 10)
    store.close()
    # crashed after creating log.b and writing its header, before any record
    (tmp_path / "version-2" / "log.b").write_bytes(b"ZKLG" + struct.pack(">iq", 2, 0))
    store = FileTxnSnapLog(tmp_path)
    assert store.restore().last_zxid == 10
    run(w, store, 5)
    store.close()
    assert restored(tmp_path)[:2] == (tree_state(w.oracle), w.sessions)
    # a log with records is never overwritten
    tlog = FileTxnSnapLog(tmp_path).txn_log
    tlog.append(TxnHeader(0, 0, 11, 0, OpCode.createSession), CreateSessionTxn(1))
    with pytest.raises(StorageError, match="already exists"):
        tlog.sync()


def test_snapshot_with_good_checksum_but_orphan_node_is_skipped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    w, _old, new = _two_snapshots(tmp_path)
    stat = STAT_PERSISTED.pack(1, 1, 0, 0, 0, 0, 0, 0, 1)
    body = bytearray(b"ZKSN" + struct.pack(">iq", 2, 0) + struct.pack(">ii", 0, 0))
    for path in ("", "/x/y"):  # "/x/y" without "/x"
        body += struct.pack(">i", len(path)) + path.encode() + struct.pack(">iq", 0, -1) + stat
    body += struct.pack(">i", 1) + b"/"
    body += struct.pack(">q", zlib.adler32(bytes(body))) + struct.pack(">i", 1) + b"/"
    new.write_bytes(bytes(body))
    assert SnapshotStore(new.parent).load(new).nodes[1][0] == "/x/y"  # parses fine
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        state, sessions, replayed = restored(tmp_path)
    assert f"Skipping invalid snapshot {new}" in caplog.text
    assert (state, sessions, replayed) == (tree_state(w.oracle), w.sessions, 70)


def test_one_snapshot_at_a_time_per_zxid(tmp_path: Path) -> None:
    w = Workload(22)
    store = FileTxnSnapLog(tmp_path)
    store.restore()
    run(w, store, 10)
    writer = store.begin_snapshot(w.oracle, w.sessions)
    with pytest.raises(StorageError, match="already being written"):
        store.begin_snapshot(w.oracle, w.sessions)
    writer.abort()
    store.save_snapshot(w.oracle, w.sessions, w.zxid)  # fine once the first is gone
    store.close()
