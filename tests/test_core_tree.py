"""Unit tests of zkref.core.datatree: stats, system nodes, apply semantics, replay tolerance."""

from __future__ import annotations

import pytest

from zkref.core.acl import OPEN_ACL_UNSAFE, READ_ACL_UNSAFE
from zkref.core.datatree import DataTree, NodeKind, Trigger, classify_owner, ttl_to_owner
from zkref.wire.constants import (
    CONTAINER_EPHEMERAL_OWNER,
    TTL_EPHEMERAL_OWNER_MASK,
    Err,
    EventType,
    OpCode,
)
from zkref.wire.records import (
    CheckResult,
    CheckVersionTxn,
    CloseSessionTxn,
    Create2Response,
    CreateContainerTxn,
    CreateResponse,
    CreateSessionTxn,
    CreateTTLTxn,
    CreateTxn,
    DeleteResult,
    DeleteTxn,
    ErrorResponse,
    ErrorTxn,
    MultiResponse,
    MultiTxn,
    SetACLTxn,
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
    assert zk is not None and zk.stat().cversion == -2 and set(zk.children) == {"quota", "config"}
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


def create(t: DataTree, zxid: int, path: str, owner: int = 0, pcv: int = -1, **kw: object) -> None:
    time = kw.get("time")
    r = t.apply(
        hdr(zxid, OpCode.create, session=owner, time=time if isinstance(time, int) else None),
        CreateTxn(path, b"", OPEN_ACL_UNSAFE, owner != 0, pcv),
    )
    assert r.err == 0, r


def test_container_and_ttl_owner_encodings() -> None:
    t = DataTree(extended_types_enabled=True)
    t.apply(hdr(1, OpCode.createContainer), CreateContainerTxn("/c", b"", OPEN_ACL_UNSAFE, 1))
    t.apply(hdr(2, OpCode.createTTL), CreateTTLTxn("/t", b"", OPEN_ACL_UNSAFE, 2, 1000))
    c, tt = t.get("/c"), t.get("/t")
    assert c is not None and tt is not None
    assert c.ephemeral_owner == -(2**63) == CONTAINER_EPHEMERAL_OWNER
    assert tt.ephemeral_owner == ttl_to_owner(1000) == -(2**63) + (0x7F << 56) + 1000
    assert (tt.ephemeral_owner & 0xFF << 56) == TTL_EPHEMERAL_OWNER_MASK
    # clients see 0 for both; snapshots keep the encoding
    assert c.stat().ephemeral_owner == 0 and tt.stat().ephemeral_owner == 0
    assert c.stat_persisted().ephemeral_owner == CONTAINER_EPHEMERAL_OWNER
    assert t.containers == {"/c"} and t.ttls == {"/t"} and t.ephemerals_count == 0
    # with extended types off, a TTL-shaped owner is a session id (ZooKeeper's EphemeralType)
    assert classify_owner(ttl_to_owner(5), False) == NodeKind.NORMAL
    assert classify_owner(ttl_to_owner(5), True) == NodeKind.TTL
    assert classify_owner(CONTAINER_EPHEMERAL_OWNER, False) == NodeKind.CONTAINER


def test_reapable_containers() -> None:
    t = DataTree()
    t.apply(hdr(1, OpCode.createContainer), CreateContainerTxn("/c", b"", OPEN_ACL_UNSAFE, 1))
    assert t.reapable(10**12) == []  # never had a child
    assert t.reapable(10**12, max_never_used_interval_ms=1000) == ["/c"]
    assert t.reapable(1001 + 1000, max_never_used_interval_ms=1000) == []  # not older than that
    create(t, 2, "/c/x")
    assert t.reapable(10**12) == []  # has a child
    t.apply(hdr(3, OpCode.delete), DeleteTxn("/c/x"))
    assert t.reapable(0) == ["/c"]  # emptied: reaped whatever the time
    r = t.apply(hdr(4, OpCode.deleteContainer), DeleteTxn("/c"))
    assert r.err == 0 and r.response is None and t.reapable(0) == [] and not t.containers


def test_reapable_ttl() -> None:
    t = DataTree(extended_types_enabled=True)
    t.apply(hdr(1, OpCode.createTTL, time=1000), CreateTTLTxn("/t", b"", OPEN_ACL_UNSAFE, 1, 500))
    assert t.reapable(1500) == []  # not *more* than the TTL yet
    assert t.reapable(1501) == ["/t"]
    t.apply(hdr(2, OpCode.setData, time=1400), SetDataTxn("/t", b"x", 1))
    assert t.reapable(1501) == []  # a write restarts the clock (mtime)
    assert t.reapable(1901) == ["/t"]
    create(t, 3, "/t/kid")
    assert t.reapable(10**9) == []
    t.apply(hdr(4, OpCode.delete), DeleteTxn("/t/kid"))
    assert t.reapable(10**9) == ["/t"]


def test_delete_triggers_and_parent_stats() -> None:
    t = DataTree()
    create(t, 1, "/a")
    create(t, 2, "/a/b")
    r = t.apply(hdr(3, OpCode.delete), DeleteTxn("/a/b"))
    assert r.triggers == (
        Trigger("/a/b", EventType.NodeDeleted),
        Trigger("/a", EventType.NodeChildrenChanged),
    )
    a = t.get("/a")
    assert a is not None and a.pzxid == 3 and a.cversion == 1 and a.stat().cversion == 2
    assert a.mzxid == 1  # children changes do not touch mzxid


def test_delete_replay_moves_parent_pzxid_even_if_child_is_gone() -> None:
    t = DataTree()
    create(t, 1, "/a")
    r = t.apply(hdr(5, OpCode.delete), DeleteTxn("/a/ghost"))
    a = t.get("/a")
    assert r.err == Err.NONODE and a is not None and a.pzxid == 5
    t.apply(hdr(4, OpCode.delete), DeleteTxn("/a/ghost"))
    assert a.pzxid == 5  # never backwards


def test_create_replay_only_moves_parent_forward() -> None:
    t = DataTree()
    create(t, 1, "/a")
    create(t, 2, "/a/x", pcv=5)
    a = t.get("/a")
    assert a is not None and a.cversion == 5 and a.pzxid == 2
    create(t, 3, "/a/y", pcv=3)  # an older cversion: node created, parent untouched
    assert a.cversion == 5 and a.pzxid == 2 and set(a.children) == {"x", "y"}
    # create of an existing node (fuzzy snapshot): NodeExists, parent brought forward
    r = t.apply(hdr(9, OpCode.create), CreateTxn("/a/x", b"", OPEN_ACL_UNSAFE, False, 7))
    assert r.err == Err.NODEEXISTS and a.cversion == 7 and a.pzxid == 9
    # ... but only for plain create, not create2
    r = t.apply(hdr(10, OpCode.create2), CreateTxn("/a/x", b"", OPEN_ACL_UNSAFE, False, 8))
    assert r.err == Err.NODEEXISTS and a.cversion == 7
    r = t.apply(hdr(11, OpCode.create), CreateTxn("/nope/x", b"", OPEN_ACL_UNSAFE, False, 8))
    assert r.err == Err.NONODE
    assert t.last_processed_zxid == 11
    t.apply(hdr(4, OpCode.delete), DeleteTxn("/a/y"))
    assert t.last_processed_zxid == 11  # never backwards


def test_close_session_apply_deletes_listed_and_unlisted_ephemerals() -> None:
    t = DataTree()
    create(t, 1, "/a")
    create(t, 2, "/a/e1", owner=SID)
    create(t, 3, "/e2", owner=SID)
    create(t, 4, "/o", owner=SID + 1)
    r = t.apply(hdr(5, OpCode.closeSession), CloseSessionTxn(("/e2", "/gone")))
    assert r.err == 0 and r.session_closed == SID and r.response is None
    assert t.get("/a/e1") is None and t.get("/e2") is None and t.get("/o") is not None
    assert [(x.path, x.event) for x in r.triggers] == [
        ("/e2", EventType.NodeDeleted),
        ("/", EventType.NodeChildrenChanged),
        ("/a/e1", EventType.NodeDeleted),
        ("/a", EventType.NodeChildrenChanged),
    ]
    assert t.ephemerals_of(SID) == frozenset() and t.ephemerals_of(SID + 1) == {"/o"}


def test_error_txn_and_session_txns() -> None:
    t = DataTree()
    r = t.apply(hdr(1, OpCode.error), ErrorTxn(int(Err.BADVERSION)))
    assert (r.zxid, r.err, r.response, r.triggers) == (1, -103, None, ())
    r = t.apply(hdr(2, OpCode.createSession), CreateSessionTxn(4000))
    assert r.err == 0 and r.session_closed is None and t.last_processed_zxid == 2


def test_sizes_are_incremental() -> None:
    t = DataTree()
    base = t.approximate_data_size
    t.apply(hdr(1, OpCode.create), CreateTxn("/abc", b"12345", OPEN_ACL_UNSAFE, False, -1))
    assert t.approximate_data_size == base + 4 + 5 and t.node_count == 6
    t.apply(hdr(2, OpCode.setData), SetDataTxn("/abc", None, 1))
    assert t.approximate_data_size == base + 4
    t.apply(hdr(3, OpCode.setData), SetDataTxn("/", b"xy", 1))
    assert t.approximate_data_size == base + 4 + 2  # counted once, as ZooKeeper's cache does
    t.apply(hdr(4, OpCode.delete), DeleteTxn("/abc"))
    assert t.approximate_data_size == base + 2 and t.node_count == 5


def test_export_and_from_nodes_round_trip() -> None:
    t = DataTree(extended_types_enabled=True)
    create(t, 1, "/a")
    create(t, 2, "/a/b", owner=SID)
    t.apply(hdr(3, OpCode.createContainer), CreateContainerTxn("/c", b"x", OPEN_ACL_UNSAFE, 2))
    t.apply(hdr(4, OpCode.createTTL), CreateTTLTxn("/t", None, OPEN_ACL_UNSAFE, 3, 99))
    t.apply(hdr(5, OpCode.setACL), SetACLTxn("/a", READ_ACL_UNSAFE, 1))
    exported = list(t.export_nodes())
    paths = [p for p, _ in exported]
    assert paths[0] == "/" and len(paths) == len(set(paths)) == t.node_count - 1
    for i, p in enumerate(paths[1:], start=1):
        assert p.rsplit("/", 1)[0] or "/" in paths[:i]
    rows = [(p, n.data, n.acl, n.stat_persisted()) for p, n in exported]
    u = DataTree.from_nodes([("", *rows[0][1:]), *rows[1:]], 5, extended_types_enabled=True)
    assert u.last_processed_zxid == 5
    assert [(p, n.data, n.acl, n.stat_tuple(), n.children) for p, n in u.export_nodes()] == [
        (p, n.data, n.acl, n.stat_tuple(), n.children) for p, n in exported
    ]
    assert u.get("") is u.get("/")
    assert u.ephemerals_of(SID) == {"/a/b"} and u.containers == {"/c"} and u.ttls == {"/t"}
    assert u.approximate_data_size == t.approximate_data_size
    assert u.node_count == t.node_count


def test_from_nodes_rejects_orphans() -> None:
    t = DataTree()
    rows = [(p, n.data, n.acl, n.stat_persisted()) for p, n in t.export_nodes()]
    with pytest.raises(ValueError):
        DataTree.from_nodes([rows[0], ("/x/y", b"", OPEN_ACL_UNSAFE, rows[0][3])], 0)


def test_multi_apply_rewrites_ops_after_failure() -> None:
    t = DataTree()
    txn = MultiTxn(
        (
            (1, CreateTxn("/a", b"", OPEN_ACL_UNSAFE, False, 1)),
            (-1, ErrorTxn(int(Err.NONODE))),
            (5, SetDataTxn("/zookeeper", b"", 1)),
        )
    )
    r = t.apply(hdr(1, OpCode.multi), txn)
    assert r.response == MultiResponse(
        ((-1, ErrorResponse(0)), (-1, ErrorResponse(-101)), (-1, ErrorResponse(-2)))
    )
    assert r.err == 0 and r.triggers == () and t.get("/a") is None


def test_multi_apply_success_results() -> None:
    t = DataTree()
    create(t, 1, "/a")
    txn = MultiTxn(
        (
            (15, CreateTxn("/a/b", b"", OPEN_ACL_UNSAFE, False, 2)),
            (19, CreateContainerTxn("/a/c", b"", OPEN_ACL_UNSAFE, 3)),
            (13, CheckVersionTxn("/a", 1)),
            (2, DeleteTxn("/a/c")),
            (5, SetDataTxn("/a", b"v", 1)),
        )
    )
    r = t.apply(hdr(2, OpCode.multi), txn)
    assert isinstance(r.response, MultiResponse)
    b = t.get("/a/b")
    a = t.get("/a")
    assert b is not None and a is not None
    results = r.response.results
    assert results[0] == (15, Create2Response("/a/b", b.stat()))
    # typed create2 on the wire, as ZooKeeper's OpResult.CreateResult(path, stat) is
    assert results[1][0] == 15 and isinstance(results[1][1], Create2Response)
    assert results[2] == (13, CheckResult())
    assert results[3] == (2, DeleteResult())
    assert results[4] == (5, SetDataResponse(a.stat()))


def test_unknown_txn_type_is_a_programming_error() -> None:
    with pytest.raises(ValueError):
        DataTree().apply(hdr(1, OpCode.getData), ErrorTxn(0))


def test_root_cannot_be_created_or_deleted_by_a_txn() -> None:
    t = DataTree()
    r = t.apply(hdr(1, OpCode.create), CreateTxn("/", b"", OPEN_ACL_UNSAFE, False, -1))
    assert r.err == Err.NODEEXISTS
    r = t.apply(hdr(2, OpCode.delete), DeleteTxn("/"))
    assert r.err == Err.NONODE
    root = t.get("/")
    assert root is not None and t.get("") is root and set(root.children) == {"zookeeper"}


def test_quota_stats_follow_the_subtree() -> None:
    t = DataTree()
    z = iter(range(1, 100))

    def mk(path: str, data: bytes | None = b"") -> None:
        n = next(z)
        r = t.apply(hdr(n, OpCode.create), CreateTxn(path, data, OPEN_ACL_UNSAFE, False, -1))
        assert r.err == 0

    def stats(path: str) -> bytes | None:
        node = t.get(f"/zookeeper/quota{path}/zookeeper_stats")
        assert node is not None
        return node.data

    mk("/q", b"q")
    mk("/q/x", b"abc")
    mk("/zookeeper/quota/q")
    mk("/zookeeper/quota/q/zookeeper_limits", b"count=10,bytes=-1")
    mk("/zookeeper/quota/q/zookeeper_stats", b"count=0,bytes=0")
    assert stats("/q") == b"count=2,bytes=4"  # recomputed when the stats node appears
    mk("/q/y", b"12345")
    assert stats("/q") == b"count=3,bytes=9"
    t.apply(hdr(next(z), OpCode.setData), SetDataTxn("/q/x", b"a", 1))
    assert stats("/q") == b"count=3,bytes=7"
    t.apply(hdr(next(z), OpCode.delete), DeleteTxn("/q/y"))
    assert stats("/q") == b"count=2,bytes=2"
    node = t.get("/zookeeper/quota/q/zookeeper_stats")
    assert node is not None and node.version == 0 and node.stat().data_length == 15
    mk("/other", b"zz")  # outside the quota
    assert stats("/q") == b"count=2,bytes=2"
    t.apply(
        hdr(next(z), OpCode.setData), SetDataTxn("/zookeeper/quota/q/zookeeper_stats", b"x;k=1", 1)
    )
    mk("/q/w")  # unparsable stats are left alone
    assert stats("/q") == b"x;k=1"
    t.apply(
        hdr(next(z), OpCode.setData),
        SetDataTxn("/zookeeper/quota/q/zookeeper_stats", b"count=1,bytes=2;zz=7", 2),
    )
    mk("/q/v", b"vv")
    assert stats("/q") == b"count=2,bytes=4=;zz=7"
    # a snapshot load recomputes the stats
    rows = [(p, n.data, n.acl, n.stat_persisted()) for p, n in t.export_nodes()]
    u = DataTree.from_nodes(rows, t.last_processed_zxid)
    stat_node = u.get("/zookeeper/quota/q/zookeeper_stats")
    assert stat_node is not None and stat_node.data == b"count=4,bytes=4"
    # removing the limits node ends the tracking
    u.apply(hdr(90, OpCode.delete), DeleteTxn("/zookeeper/quota/q/zookeeper_limits"))
    u.apply(hdr(91, OpCode.create), CreateTxn("/q/late", b"late", OPEN_ACL_UNSAFE, False, -1))
    assert stat_node.data == b"count=4,bytes=4"
