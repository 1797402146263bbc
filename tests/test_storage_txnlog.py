"""The txn log on real files: framing, group commit, torn tails, corruption, crash loss."""

from __future__ import annotations

import logging
import struct
import threading
import zlib
from pathlib import Path

import pytest

from zkref.server import storage
from zkref.server._storage_jute import FILE_HEADER
from zkref.server.storage import (
    EOR,
    TXNLOG_MAGIC,
    TxnLog,
    list_files,
    logs_needed_from,
    make_log_name,
    scan_log_file,
    zxid_from_name,
)
from zkref.wire.codec import encode_txn
from zkref.wire.constants import OpCode
from zkref.wire.records import (
    ACL,
    CreateSessionTxn,
    CreateTxn,
    Id,
    SetDataTxn,
    TxnBody,
    TxnHeader,
)

OPEN = (ACL(31, Id("world", "anyone")),)


def txn(zxid: int) -> tuple[TxnHeader, TxnBody]:
    if zxid == 1:
        return TxnHeader(0x1234, 0, 1, 1000, OpCode.createSession), CreateSessionTxn(30000)
    if zxid == 2:
        return (
            TxnHeader(0x1234, 1, 2, 1001, OpCode.create),
            CreateTxn("/a", b"x", OPEN, False, 1),
        )
    return (
        TxnHeader(0x1234, zxid, zxid, 1000 + zxid, OpCode.setData),
        SetDataTxn("/a", f"v{zxid}".encode(), zxid - 2),
    )


def write_log(log_dir: Path, zxids: range) -> TxnLog:
    tlog = TxnLog(log_dir)
    for z in zxids:
        tlog.append(*txn(z))
    tlog.sync()
    return tlog


def test_file_name_and_framing_match_zookeeper(tmp_path: Path) -> None:
    tlog = write_log(tmp_path, range(1, 3))
    tlog.close()
    assert [p.name for _, p in list_files(tmp_path, "log")] == ["log.1"]
    raw = (tmp_path / "log.1").read_bytes()
    # FileHeader{magic "ZKLG", version 2, dbid 0}
    assert raw[:16] == b"ZKLG" + struct.pack(">iq", 2, 0)
    assert TXNLOG_MAGIC == 0x5A4B4C47
    pos = 16
    for z in (1, 2):
        payload = encode_txn(*txn(z))
        crc, length = struct.unpack_from(">qi", raw, pos)
        assert crc == zlib.adler32(payload) and length == len(payload)
        assert raw[pos + 12 : pos + 12 + length] == payload
        assert raw[pos + 12 + length] == EOR == ord("B")
        pos += 12 + length + 1
    assert pos == len(raw)


def test_names_are_lowercase_hex_without_padding() -> None:
    assert make_log_name(0x1_0000_00AB) == "log.1000000ab"
    assert zxid_from_name("log.1000000ab", "log") == 0x1_0000_00AB
    assert zxid_from_name("log.1a.corrupt", "log") is None
    assert zxid_from_name("snapshot.1a", "log") is None


def test_round_trip(tmp_path: Path) -> None:
    write_log(tmp_path, range(1, 50)).close()
    scan = scan_log_file(tmp_path / "log.1")
    assert scan.problem is None
    assert scan.records == [txn(z) for z in range(1, 50)]


def test_nothing_on_disk_before_sync(tmp_path: Path) -> None:
    tlog = TxnLog(tmp_path)
    tlog.append(*txn(1))
    assert list_files(tmp_path, "log") == []
    tlog.sync()
    assert scan_log_file(tmp_path / "log.1").records == [txn(1)]
    tlog.append(*txn(2))
    assert scan_log_file(tmp_path / "log.1").records == [txn(1)]
    assert tlog.last_synced_zxid == 1 and tlog.last_appended_zxid == 2
    tlog.sync()
    assert tlog.last_synced_zxid == 2
    tlog.close()


def test_group_commit_one_fsync_for_a_batch(tmp_path: Path) -> None:
    tlog = TxnLog(tmp_path)
    for z in range(1, 101):
        tlog.append(*txn(z))
    tlog.sync()
    assert tlog.fsync_count == 1
    tlog.sync()  # nothing new: no fsync
    assert tlog.fsync_count == 1
    tlog.close()
    assert len(scan_log_file(tmp_path / "log.1").records) == 100


def test_fsync_really_called_per_sync(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    monkeypatch.setattr(storage, "_fdatasync", lambda fd: calls.append(fd))
    tlog = TxnLog(tmp_path)
    tlog.append(*txn(1))
    tlog.sync()
    tlog.append(*txn(2))
    tlog.append(*txn(3))
    tlog.sync()
    assert len(calls) == 2
    tlog.close()


def test_roll_starts_new_file_named_by_next_zxid(tmp_path: Path) -> None:
    tlog = TxnLog(tmp_path)
    for z in range(1, 4):
        tlog.append(*txn(z))
    tlog.roll()
    for z in range(4, 7):
        tlog.append(*txn(z))
    tlog.sync()  # one sync covering both files
    tlog.roll()
    tlog.append(*txn(7))
    tlog.close()
    logs = list_files(tmp_path, "log")
    assert [z for z, _ in logs] == [1, 4, 7]
    assert [h.zxid for h, _ in scan_log_file(tmp_path / "log.4").records] == [4, 5, 6]


def test_concurrent_append_and_sync_lose_nothing(tmp_path: Path) -> None:
    tlog = TxnLog(tmp_path, force_sync=False)
    stop = threading.Event()

    def syncer() -> None:
        while not stop.is_set():
            tlog.sync()

    th = threading.Thread(target=syncer)
    th.start()
    for z in range(1, 3001):
        tlog.append(*txn(z))
        if z % 1000 == 0:
            tlog.roll()
    stop.set()
    th.join()
    tlog.close()
    got = [h.zxid for _, p in list_files(tmp_path, "log") for h, _ in scan_log_file(p).records]
    assert got == list(range(1, 3001))


def _record_bounds(path: Path) -> list[tuple[int, int]]:
    raw = path.read_bytes()
    out = []
    pos = FILE_HEADER.size
    while pos < len(raw):
        (length,) = struct.unpack_from(">i", raw, pos + 8)
        end = pos + 12 + length + 1
        out.append((pos, end))
        pos = end
    return out


def test_torn_last_record_at_every_offset_is_detected(tmp_path: Path) -> None:
    write_log(tmp_path, range(1, 6)).close()
    path = tmp_path / "log.1"
    raw = path.read_bytes()
    start, end = _record_bounds(path)[-1]
    for cut in range(start + 1, end):
        path.write_bytes(raw[:cut])
        scan = scan_log_file(path)
        assert scan.problem is not None, cut
        assert scan.valid_end == start, cut
        assert [h.zxid for h, _ in scan.records] == [1, 2, 3, 4], cut


@pytest.mark.parametrize(
    ("what", "mutate"),
    [
        ("checksum", lambda raw, s, e: raw[:s] + bytes([raw[s] ^ 0x01]) + raw[s + 1 :]),
        ("payload", lambda raw, s, e: raw[: s + 20] + bytes([raw[s + 20] ^ 0xFF]) + raw[s + 21 :]),
        ("eor", lambda raw, s, e: raw[: e - 1] + b"A" + raw[e:]),
        ("length", lambda raw, s, e: raw[: s + 8] + struct.pack(">i", 10**6) + raw[s + 12 :]),
    ],
)
def test_corruption_in_the_middle_stops_there(tmp_path: Path, what: str, mutate: object) -> None:
    write_log(tmp_path, range(1, 8)).close()
    path = tmp_path / "log.1"
    raw = path.read_bytes()
    s, e = _record_bounds(path)[3]  # the record of zxid 4
    assert callable(mutate)
    path.write_bytes(mutate(raw, s, e))
    scan = scan_log_file(path)
    assert scan.problem is not None, what
    assert scan.valid_end == s
    assert [h.zxid for h, _ in scan.records] == [1, 2, 3]


def test_zero_padding_reads_as_end_of_log(tmp_path: Path) -> None:
    # ZooKeeper preallocates its logs with zeros; a zero entry is the end of the log.
    write_log(tmp_path, range(1, 4)).close()
    path = tmp_path / "log.1"
    path.write_bytes(path.read_bytes() + bytes(4096))
    scan = scan_log_file(path)
    assert scan.problem is None
    assert [h.zxid for h, _ in scan.records] == [1, 2, 3]


def test_bad_file_header(tmp_path: Path) -> None:
    path = tmp_path / "log.1"
    path.write_bytes(b"ZKSN" + bytes(12))
    assert scan_log_file(path).problem is not None
    path.write_bytes(b"ZKL")
    assert scan_log_file(path).problem is not None


def test_logs_needed_from_is_zookeepers_get_log_files(tmp_path: Path) -> None:
    logs = [(1, tmp_path / "log.1"), (0x10, tmp_path / "log.10"), (0x20, tmp_path / "log.20")]
    assert [z for z, _ in logs_needed_from(logs, 0x15)] == [0x10, 0x20]
    assert [z for z, _ in logs_needed_from(logs, 0x10)] == [0x10, 0x20]
    assert [z for z, _ in logs_needed_from(logs, 0x5)] == [1, 0x10, 0x20]
    assert [z for z, _ in logs_needed_from(logs, 0x30)] == [0x20]
    assert [z for z, _ in logs_needed_from(logs, 0)] == [1, 0x10, 0x20]


def test_out_of_order_zxid_warns(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    tlog = TxnLog(tmp_path)
    tlog.append(*txn(3))
    with caplog.at_level(logging.WARNING, logger="zkref.server.storage"):
        tlog.append(*txn(3))
    assert "is <= 0x3" in caplog.text
    tlog.close()
