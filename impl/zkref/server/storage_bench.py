"""Txn-log throughput: appends/s and fsyncs/s with group commit.

    python -m zkref.server.storage_bench [--dir DIR] [--txns N] [--value-bytes B] [--znodes N]

Two runs per batch size: `serial` (append a batch on this thread, then `sync()`), and
`concurrent` (one thread appends as fast as it can while another loops on `sync()`, as the
asyncio shell does with its executor), which shows how many txns one fsync covers. Then a
snapshot of a tree of `--znodes` znodes: write time, and restore time (load + replay).
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path

from zkref.core.acl import OPEN_ACL_UNSAFE
from zkref.server.storage import FileTxnSnapLog, TxnLog
from zkref.wire.constants import OpCode
from zkref.wire.records import CreateTxn, SetDataTxn, TxnHeader


def _txn(zxid: int, value: bytes) -> tuple[TxnHeader, SetDataTxn]:
    hdr = TxnHeader(
        client_id=0x100, cxid=zxid, zxid=zxid, time=1_700_000_000_000, type=OpCode.setData
    )
    return hdr, SetDataTxn(path="/bench/key-0001", data=value, version=zxid)


def serial(directory: Path, txns: int, batch: int, value: bytes) -> tuple[float, float]:
    tlog = TxnLog(directory)
    t0 = time.perf_counter()
    zxid = 0
    while zxid < txns:
        for _ in range(batch):
            zxid += 1
            tlog.append(*_txn(zxid, value))
        tlog.sync()
    dt = time.perf_counter() - t0
    fsyncs = tlog.fsync_count
    tlog.close()
    return txns / dt, fsyncs / dt


def concurrent(directory: Path, txns: int, value: bytes) -> tuple[float, float, float]:
    tlog = TxnLog(directory)
    done = threading.Event()

    def syncer() -> None:
        while not done.is_set():
            tlog.sync()

    th = threading.Thread(target=syncer)
    t0 = time.perf_counter()
    th.start()
    for zxid in range(1, txns + 1):
        tlog.append(*_txn(zxid, value))
    done.set()
    th.join()
    tlog.sync()
    dt = time.perf_counter() - t0
    fsyncs = max(tlog.fsync_count, 1)
    tlog.close()
    return txns / dt, fsyncs / dt, txns / fsyncs


def snapshot(directory: Path, znodes: int, value: bytes) -> None:
    store = FileTxnSnapLog(directory)
    tree = store.restore().tree
    zxid = 0
    for i in range(znodes):
        zxid += 1
        zpath = f"/k{i // 1000:04d}" if i % 1000 == 0 else f"/k{i // 1000:04d}/n{i % 1000:03d}"
        hdr = TxnHeader(0x100, zxid, zxid, 1_700_000_000_000, OpCode.create)
        txn = CreateTxn(zpath, value, OPEN_ACL_UNSAFE, False, -1)
        tree.apply(hdr, txn)
        store.txn_log.append(hdr, txn)
    store.txn_log.sync()
    t0 = time.perf_counter()
    path = store.save_snapshot(tree, {}, zxid)
    t_snap = time.perf_counter() - t0
    store.close()
    t0 = time.perf_counter()
    res = FileTxnSnapLog(directory).restore()
    t_load = time.perf_counter() - t0
    assert res.tree.node_count == tree.node_count and res.txns_replayed == 0
    size_mb = path.stat().st_size / 1e6
    (directory / "version-2" / path.name).unlink()
    t0 = time.perf_counter()
    res = FileTxnSnapLog(directory).restore()
    t_replay = time.perf_counter() - t0
    assert res.tree.node_count == tree.node_count and res.txns_replayed == znodes
    print(
        f"snapshot   znodes={znodes:,} ({size_mb:.1f} MB)  write={t_snap:.2f}s"
        f" ({znodes / t_snap:,.0f} znodes/s)  restore from it={t_load:.2f}s"
        f" ({znodes / t_load:,.0f} znodes/s)  restore by log replay={t_replay:.2f}s"
        f" ({znodes / t_replay:,.0f} txns/s)"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", type=Path, default=None, help="directory on the disk to measure")
    ap.add_argument("--txns", type=int, default=20_000)
    ap.add_argument("--value-bytes", type=int, default=100)
    ap.add_argument("--znodes", type=int, default=100_000)
    args = ap.parse_args()
    value = b"v" * args.value_bytes
    with tempfile.TemporaryDirectory(dir=args.dir) as d:
        root = Path(d)
        print(f"txn log in {root} ({args.txns} setData txns, {args.value_bytes}-byte values)")
        for batch in (1, 10, 100, 1000):
            n = min(args.txns, 2000 * batch)
            a, f = serial(root / f"serial-{batch}", n, batch, value)
            print(f"serial     batch={batch:<5d} appends/s={a:>10,.0f}  fsyncs/s={f:>8,.0f}")
        a, f, per = concurrent(root / "concurrent", args.txns, value)
        print(
            f"concurrent appender+syncer appends/s={a:>10,.0f}  fsyncs/s={f:>8,.0f}"
            f"  txns/fsync={per:,.1f}"
        )
        snapshot(root / "snapshot", args.znodes, value)


if __name__ == "__main__":
    main()
