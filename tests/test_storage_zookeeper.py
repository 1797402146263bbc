"""Interoperability with Apache ZooKeeper 3.8's own files, both ways.

1. Apache ZooKeeper writes a data dir (snapshots with digests, preallocated logs, TxnDigests,
   several log files thanks to a small snapCount); zkref restores it to the tree kazoo saw.
2. zkref writes a data dir (snapshot + log after it); Apache ZooKeeper starts on it and kazoo
   sees the tree zkref had.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from zkref.chaos.zookeeper_proc import ApacheZooKeeper, apache_zookeeper_available
from zkref.core.acl import OPEN_ACL_UNSAFE
from zkref.core.datatree import DataTree
from zkref.server.storage import FileTxnSnapLog, list_files
from zkref.wire.constants import OpCode
from zkref.wire.records import (
    ACL,
    CreateSessionTxn,
    CreateTxn,
    DeleteTxn,
    Id,
    SetDataTxn,
    TxnBody,
    TxnHeader,
)

pytestmark = [
    pytest.mark.zookeeper,
    pytest.mark.slow,
    pytest.mark.skipif(not apache_zookeeper_available(), reason="needs java + Debian zookeeper"),
]

STAT_FIELDS = (
    "czxid",
    "mzxid",
    "ctime",
    "mtime",
    "version",
    "cversion",
    "aversion",
    "ephemeralOwner",
    "dataLength",
    "numChildren",
    "pzxid",
)


def kazoo_tree(zk: Any, path: str = "/") -> dict[str, tuple[bytes, tuple[int, ...]]]:
    """path -> (data, the 11 Stat fields) for every znode under `path`, as a client sees it."""
    out: dict[str, tuple[bytes, tuple[int, ...]]] = {}
    data, stat = zk.get(path)
    out[path] = (data or b"", tuple(getattr(stat, f) for f in STAT_FIELDS))
    for child in zk.get_children(path):
        out.update(kazoo_tree(zk, (path.rstrip("/") or "") + "/" + child))
    return out


def zkref_tree(tree: DataTree) -> dict[str, tuple[bytes, tuple[int, ...]]]:
    return {p: (n.data or b"", n.stat_tuple()) for p, n in tree.export_nodes()}


def test_zkref_restores_apache_zookeepers_data_dir(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    kazoo_client = pytest.importorskip("kazoo.client")
    zk = ApacheZooKeeper(1, tmp_path, extra_cfg={"snapCount": "20"})
    with zk:
        zk.start()
        c = kazoo_client.KazooClient(zk.connect_string)
        c.start()
        c.create("/app", b"root")
        for i in range(40):
            c.create(f"/app/n{i:02d}", f"value {i}".encode())
        for i in range(0, 40, 3):
            c.set(f"/app/n{i:02d}", b"changed")
        for i in range(0, 40, 5):
            c.delete(f"/app/n{i:02d}")
        c.create("/app/seq-", b"", sequence=True)
        c.create("/app/eph", b"mine", ephemeral=True)
        digest = ACL(31, Id("digest", "bob:4Ad6kF5oO9xPPTwBqEddHbj3fIs="))
        from kazoo.security import ACL as KACL
        from kazoo.security import Id as KId

        c.create("/acl", b"x", acl=[KACL(digest.perms, KId(digest.id.scheme, digest.id.id))])
        t = c.transaction()
        t.create("/app/m1", b"a")
        t.set_data("/app", b"multi")
        t.commit()
        seen = kazoo_tree(c, "/app")
        seen["/acl"] = (b"x", ())  # not readable without digest auth
        session_id = c.client_id[0]
        zk.kill(1)  # kill -9: the files are what a crash leaves
        c.stop()
        c.close()
    vdir = zk.base_dir / "zk1" / "data" / "version-2"
    assert len(list_files(vdir, "snapshot")) >= 2
    assert len(list_files(vdir, "log")) >= 2
    store = FileTxnSnapLog(zk.base_dir / "zk1" / "data")
    with caplog.at_level(logging.WARNING, logger="zkref.server.storage"):
        res = store.restore()
    # preallocated zero tails, TxnDigests and digest-sealed snapshots are all normal
    problems = [
        r.getMessage()
        for r in caplog.records
        if r.name == "zkref.server.storage" and r.levelno >= logging.WARNING
    ]
    assert problems == []
    assert res.txns_replayed > 0
    mine = zkref_tree(res.tree)
    for path, (data, stat) in seen.items():
        assert path in mine, path
        if path == "/acl":
            node = res.tree.get(path)
            assert node is not None and node.acl == (digest,)
            continue
        assert mine[path] == (data, stat), path
    assert {p for p in mine if p.startswith("/app")} == {p for p in seen if p.startswith("/app")}
    assert session_id in res.sessions


def test_apache_zookeeper_starts_on_zkrefs_data_dir(tmp_path: Path) -> None:
    kazoo_client = pytest.importorskip("kazoo.client")
    zk = ApacheZooKeeper(1, tmp_path)
    data_dir = zk.base_dir / "zk1" / "data"
    store = FileTxnSnapLog(data_dir)
    tree = store.restore().tree
    sessions: dict[int, int] = {}
    zxid = 0

    def apply(client_id: int, op: int, txn: TxnBody) -> None:
        nonlocal zxid
        zxid += 1
        hdr = TxnHeader(client_id, zxid, zxid, 1_700_000_000_000 + zxid, op)
        tree.apply(hdr, txn)
        store.txn_log.append(hdr, txn)

    apply(0, OpCode.create, CreateTxn("/a", b"one", OPEN_ACL_UNSAFE, False, -1))
    for i in range(10):
        apply(0, OpCode.create, CreateTxn(f"/a/c{i}", b"%d" % i, OPEN_ACL_UNSAFE, False, -1))
    apply(0, OpCode.setData, SetDataTxn("/a/c3", b"three", 1))
    apply(0, OpCode.delete, DeleteTxn("/a/c4"))
    store.save_snapshot(tree, sessions, zxid)
    apply(0x77, OpCode.createSession, CreateSessionTxn(30000))
    sessions[0x77] = 30000
    apply(0, OpCode.create, CreateTxn("/b", None, OPEN_ACL_UNSAFE, False, -1))
    apply(0, OpCode.setData, SetDataTxn("/a", b"two", 1))
    apply(0, OpCode.delete, DeleteTxn("/a/c5"))
    store.close()
    expected = {
        p: v for p, v in zkref_tree(tree).items() if p == "/a" or p.startswith(("/a/", "/b"))
    }
    with zk:
        zk.start()
        c = kazoo_client.KazooClient(zk.connect_string)
        c.start()
        got = kazoo_tree(c, "/a")
        got.update(kazoo_tree(c, "/b"))
        c.stop()
        c.close()
    assert got == expected
