"""Unit tests of zkref.core.datatree: stats, system nodes, apply semantics, replay tolerance."""

from __future__ import annotations

from zkref.core.acl import OPEN_ACL_UNSAFE, READ_ACL_UNSAFE
from zkref.core.datatree import DataTree, Trigger
from zkref.wire.constants import Err, EventType, OpCode
from zkref.wire.records import (
    CreateResponse,
    CreateTxn,
    DeleteTxn,
    SetDataResponse,
    SetDataTxn,
    TxnHeader,
)

SID = 0x1_0000_0000_0001


def hdr(zxid: int, op: int, session: int = SID, time: int | None = None) -> TxnHeader:
    return TxnHeader(session, zxid, zxid, 1000 + zxid if time is None else time, int(op))


def test_fresh_tree_system_nodes() -> None:
    t = DataTree()
    root = t.get("/")
    assert root is not None and t.get("") is root
    assert root.stat_tuple() == (0, 0, 0, 0, 0, -1, 0, 0, 0, 1, 0)
    zk = t.get("/zookeeper")
    assert zk is not None and zk.stat().cversion == -2 and zk.children == {"quota", "config"}
    config = t.get("/zookeeper/config")
    assert config is not None and config.acl == READ_ACL_UNSAFE and config.aversion == -1
    quota = t.get("/zookeeper/quota")
    assert quota is not None and quota.acl == OPEN_ACL_UNSAFE and quota.data == b""
    assert t.node_count == 5
    assert t.approximate_data_size == 44
    assert t.last_processed_zxid == 0


def test_create_set_delete_basic() -> None:
    t = DataTree()
    r = t.apply(hdr(1, OpCode.create), CreateTxn("/a", b"hi", OPEN_ACL_UNSAFE, False, 1))
    assert r.err == 0 and r.response == CreateResponse("/a")
    assert r.triggers == (
        Trigger("/a", EventType.NodeCreated),
        Trigger("/", EventType.NodeChildrenChanged),
    )
    a = t.get("/a")
    assert a is not None
    assert a.stat_tuple() == (1, 1, 1001, 1001, 0, 0, 0, 0, 2, 0, 1)
    r = t.apply(hdr(2, OpCode.setData), SetDataTxn("/a", b"hello", 1))
    assert isinstance(r.response, SetDataResponse)
    assert r.response.stat.version == 1 and r.response.stat.mzxid == 2
    assert r.response.stat.mtime == 1002 and r.response.stat.data_length == 5
    r = t.apply(hdr(3, OpCode.delete), DeleteTxn("/a"))
    assert r.err == 0 and t.get("/a") is None
    root = t.get("/")
    assert root is not None
    assert root.stat().cversion == 1  # stored 1 create, 1 child (/zookeeper) -> 2*1-1
    assert root.pzxid == 3
    assert t.last_processed_zxid == 3


def test_replay_is_tolerant() -> None:
    t = DataTree()
    t.apply(hdr(1, OpCode.create), CreateTxn("/a", b"", OPEN_ACL_UNSAFE, False, 1))
    r = t.apply(hdr(1, OpCode.create), CreateTxn("/a", b"", OPEN_ACL_UNSAFE, False, 1))
    assert r.err == Err.NODEEXISTS and r.triggers == ()
    t.apply(hdr(2, OpCode.delete), DeleteTxn("/a"))
    r = t.apply(hdr(2, OpCode.delete), DeleteTxn("/a"))
    assert r.err == Err.NONODE
    r = t.apply(hdr(3, OpCode.setData), SetDataTxn("/a", b"", 1))
    assert r.err == Err.NONODE
