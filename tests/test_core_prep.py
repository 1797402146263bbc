"""zkref.core.prep: ZooKeeper's PrepRequestProcessor rules, checked one by one."""

from __future__ import annotations

import pytest

from zkref.core.acl import OPEN_ACL_UNSAFE, READ_ACL_UNSAFE, AuthInfo, generate_digest
from zkref.core.datatree import ApplyResult, DataTree, ttl_to_owner
from zkref.core.prep import Prep, PrepConfig
from zkref.wire.constants import CONTAINER_EPHEMERAL_OWNER, MAX_TTL_MS, Err, OpCode
from zkref.wire.records import (
    ACL,
    CheckVersionRequest,
    CheckVersionTxn,
    CloseSessionTxn,
    CreateContainerTxn,
    CreateRequest,
    CreateResponse,
    CreateSessionTxn,
    CreateTTLRequest,
    CreateTTLTxn,
    CreateTxn,
    DeleteRequest,
    DeleteTxn,
    ErrorResponse,
    ErrorTxn,
    GetDataRequest,
    Id,
    MultiRequest,
    MultiResponse,
    MultiTxn,
    ReconfigRequest,
    SetACLRequest,
    SetACLTxn,
    SetDataRequest,
    SetDataTxn,
    TxnBody,
    TxnHeader,
)

S1 = 0x0100_0000_0000_0001
S2 = 0x0100_0000_0000_0002
ANY = AuthInfo((Id("ip", "127.0.0.1"),))
BOB = Id("digest", generate_digest("bob:pw"))
AS_BOB = AuthInfo((Id("ip", "127.0.0.1"), BOB))
BOB_ONLY = (ACL(31, BOB),)


class Harness:
    def __init__(self, *, extended: bool = False, max_buffer: int = 0xFFFFF) -> None:
        self.tree = DataTree(extended_types_enabled=extended)
        self.prep = Prep(
            self.tree, PrepConfig(extended_types_enabled=extended, max_buffer=max_buffer)
        )
        self.zxid = 0

    def prep_only(
        self, op: int, request: object, auth: AuthInfo = ANY, session: int = S1
    ) -> tuple[TxnHeader, TxnBody]:
        self.zxid += 1
        return self.prep.prep(session, self.zxid, op, request, auth, 5000 + self.zxid, self.zxid)

    def apply(self, hdr: TxnHeader, txn: TxnBody) -> ApplyResult:
        r = self.tree.apply(hdr, txn)
        self.prep.applied(hdr.zxid)
        return r

    def do(
        self, op: int, request: object, auth: AuthInfo = ANY, session: int = S1
    ) -> tuple[TxnHeader, TxnBody, ApplyResult]:
        hdr, txn = self.prep_only(op, request, auth, session)
        return hdr, txn, self.apply(hdr, txn)

    def err(self, op: int, request: object, auth: AuthInfo = ANY, session: int = S1) -> int:
        hdr, txn, r = self.do(op, request, auth, session)
        if isinstance(txn, ErrorTxn):
            assert hdr.type == OpCode.error and r.err == txn.err
            return txn.err
        assert r.err == 0
        return 0

    def create(
        self,
        path: str,
        flags: int = 0,
        data: bytes | None = b"",
        acl: tuple[ACL, ...] = OPEN_ACL_UNSAFE,
        auth: AuthInfo = ANY,
        session: int = S1,
    ) -> int:
        return self.err(OpCode.create, CreateRequest(path, data, acl, flags), auth, session)


def cr(path: str, flags: int = 0, acl: tuple[ACL, ...] = OPEN_ACL_UNSAFE) -> CreateRequest:
    return CreateRequest(path, b"", acl, flags)


# --- create ----------------------------------------------------------------------------------


def test_create_txn_and_stat_values() -> None:
    h = Harness()
    hdr, txn, r = h.do(OpCode.create2, CreateRequest("/a", b"v", OPEN_ACL_UNSAFE, 0))
    assert hdr == TxnHeader(S1, 1, 1, 5001, int(OpCode.create2))
    assert txn == CreateTxn("/a", b"v", OPEN_ACL_UNSAFE, False, 1)
    assert r.response is not None
    a = h.tree.get("/a")
    assert a is not None
    assert a.stat_tuple() == (1, 1, 5001, 5001, 0, 0, 0, 0, 1, 0, 1)
    root = h.tree.get("/")
    assert root is not None and root.cversion == 1 and root.pzxid == 1


def test_create_ephemeral_owner_and_no_children() -> None:
    h = Harness()
    assert h.create("/e", 1, session=S2) == 0
    e = h.tree.get("/e")
    assert e is not None and e.stat().ephemeral_owner == S2
    assert h.tree.ephemerals_of(S2) == {"/e"}
    assert h.create("/e/c") == Err.NOCHILDRENFOREPHEMERALS
    # a container or TTL parent is fine
    assert h.err(OpCode.createContainer, cr("/box", 4)) == 0
    assert h.create("/box/c", 1) == 0


@pytest.mark.parametrize(
    ("setup", "request_", "expected"),
    [
        # invalid flags first of all
        ([], cr("bad", 7), Err.BADARGUMENTS),
        # TTL modes are Unimplemented when disabled, before any path or ACL check
        ([], cr("no-slash", 5, acl=()), Err.UNIMPLEMENTED),
        # slash / NUL before the ACL
        ([], cr("no-slash", 0, acl=()), Err.BADARGUMENTS),
        ([], cr("/a\0b", 0, acl=()), Err.BADARGUMENTS),
        # InvalidACL before NoNode of the parent
        ([], cr("/missing/x", 0, acl=()), Err.INVALIDACL),
        ([], cr("/missing/x", 0, acl=(ACL(31, Id("world", "x")),)), Err.INVALIDACL),
        # NoNode of the parent before the full path check (ZooKeeper's order)
        ([], cr("/missing/.", 0), Err.NONODE),
        (["/a"], cr("/a/.", 0), Err.BADARGUMENTS),
        (["/a"], cr("/a/", 0), Err.BADARGUMENTS),
        (["/a"], cr("/a//b", 0), Err.NONODE),  # parent "/a/" does not exist
        (["/a"], cr("/a", 0), Err.NODEEXISTS),
        (["/a"], cr("/zookeeper", 0), Err.NODEEXISTS),
    ],
)
def test_create_error_order(setup: list[str], request_: CreateRequest, expected: Err) -> None:
    h = Harness()
    for path in setup:
        assert h.create(path) == 0
    assert h.err(OpCode.create, request_) == expected


def test_create_root_is_node_exists_in_zookeeper_order() -> None:
    # "/" -> parent "" (root alias), full path "/" valid -> NodeExists
    h = Harness()
    assert h.err(OpCode.create, cr("/")) == Err.NODEEXISTS


def test_create_noauth_on_parent_before_node_exists() -> None:
    h = Harness()
    assert h.create("/p", acl=BOB_ONLY, auth=AS_BOB) == 0
    assert h.create("/p/c", auth=AS_BOB) == 0
    assert h.create("/p/c") == Err.NOAUTH
    assert h.create("/p/d") == Err.NOAUTH
    # CREATE bit alone is enough
    assert h.create("/q", acl=(ACL(4, Id("world", "anyone")),)) == 0
    assert h.create("/q/c") == 0
    assert h.err(OpCode.setData, SetDataRequest("/q", b"", -1)) == Err.NOAUTH


def test_create_with_auth_acl_expands() -> None:
    h = Harness()
    assert h.create("/x", acl=(ACL(31, Id("auth", "")),)) == Err.INVALIDACL
    assert h.create("/x", acl=(ACL(31, Id("auth", "")),), auth=AS_BOB) == 0
    x = h.tree.get("/x")
    assert x is not None and x.acl == BOB_ONLY


def test_create_consumes_zxid_even_on_error() -> None:
    h = Harness()
    hdr, txn = h.prep_only(OpCode.create, cr("/a/b"))
    assert hdr.type == OpCode.error and hdr.zxid == 1 and txn == ErrorTxn(int(Err.NONODE))
    r = h.apply(hdr, txn)
    assert r.err == Err.NONODE and r.response is None and r.triggers == ()
    assert h.tree.last_processed_zxid == 1


def test_data_limit() -> None:
    h = Harness(max_buffer=10)
    assert h.create("/a", data=b"x" * 10) == 0
    assert h.create("/b", data=b"x" * 11) == Err.BADARGUMENTS
    assert h.err(OpCode.setData, SetDataRequest("/a", b"x" * 11, -1)) == Err.BADARGUMENTS


# --- sequential --------------------------------------------------------------------------------


def test_sequential_suffix_from_stored_cversion() -> None:
    h = Harness()
    assert h.create("/q") == 0
    names = []
    for _ in range(3):
        _, txn, _ = h.do(OpCode.create, cr("/q/n-", 2))
        assert isinstance(txn, CreateTxn)
        names.append(txn.path)
    assert names == ["/q/n-0000000000", "/q/n-0000000001", "/q/n-0000000002"]
    assert h.err(OpCode.delete, DeleteRequest("/q/n-0000000002", -1)) == 0
    # a delete does not bump the stored cversion: the next suffix is 3, never reused
    _, txn, _ = h.do(OpCode.create, cr("/q/", 3))
    assert isinstance(txn, CreateTxn) and txn.path == "/q/0000000003" and txn.ephemeral
    q = h.tree.get("/q")
    assert q is not None and q.cversion == 4 and q.stat().cversion == 2 * 4 - 3


def test_sequential_under_root_counts_root_creates() -> None:
    h = Harness()
    _, txn, _ = h.do(OpCode.create, cr("/s", 2))
    assert isinstance(txn, CreateTxn) and txn.path == "/s0000000000"


def test_sequential_suffix_wraps_like_java_int() -> None:
    h = Harness()
    assert h.create("/q") == 0
    q = h.tree.get("/q")
    assert q is not None
    q.cversion = 2**31 - 1
    q.changed()
    _, txn, _ = h.do(OpCode.create, cr("/q/n", 2))
    assert isinstance(txn, CreateTxn)
    assert txn.path == "/q/n2147483647" and txn.parent_c_version == -(2**31)
    _, txn, _ = h.do(OpCode.create, cr("/q/n", 2))
    # the applied cversion did not move (wrapped value is smaller), so the name repeats -> exists
    assert isinstance(txn, ErrorTxn) and txn.err == Err.NODEEXISTS


def test_pipelined_sequential_creates_see_outstanding_changes() -> None:
    h = Harness()
    assert h.create("/q") == 0
    p1 = h.prep_only(OpCode.create, cr("/q/n", 2))
    p2 = h.prep_only(OpCode.create, cr("/q/n", 2))
    assert isinstance(p1[1], CreateTxn) and p1[1].path == "/q/n0000000000"
    assert isinstance(p2[1], CreateTxn) and p2[1].path == "/q/n0000000001"
    assert h.prep.outstanding_count == 4
    assert h.apply(*p1).err == 0
    assert h.apply(*p2).err == 0
    assert h.prep.outstanding_count == 0


def test_pipelined_create_then_child_then_delete() -> None:
    h = Harness()
    p1 = h.prep_only(OpCode.create, cr("/a"))
    p2 = h.prep_only(OpCode.create, cr("/a/b"))
    p3 = h.prep_only(OpCode.delete, DeleteRequest("/a", -1))  # not empty (pending child)
    p4 = h.prep_only(OpCode.delete, DeleteRequest("/a/b", 0))
    p5 = h.prep_only(OpCode.create, cr("/a/b"))  # pending delete: may be created again
    p6 = h.prep_only(OpCode.setData, SetDataRequest("/a/b", b"", 0))
    p7 = h.prep_only(OpCode.setData, SetDataRequest("/a/b", b"", 0))  # version is 1 by now
    assert p3[1] == ErrorTxn(int(Err.NOTEMPTY))
    assert p4[1] == DeleteTxn("/a/b")
    assert isinstance(p5[1], CreateTxn)
    assert p6[1] == SetDataTxn("/a/b", b"", 1)
    assert p7[1] == ErrorTxn(int(Err.BADVERSION))
    for p in (p1, p2, p3, p4, p5, p6, p7):
        h.apply(*p)
    b = h.tree.get("/a/b")
    assert b is not None and b.version == 1


# --- TTL and containers ----------------------------------------------------------------------


def ttl_req(path: str, ttl: int, flags: int = 5) -> CreateTTLRequest:
    return CreateTTLRequest(path, b"", OPEN_ACL_UNSAFE, flags, ttl)


def test_ttl_disabled_is_unimplemented() -> None:
    h = Harness()
    assert h.err(OpCode.createTTL, ttl_req("/t", 100)) == Err.UNIMPLEMENTED
    assert h.err(OpCode.createTTL, ttl_req("/t", 100, 6)) == Err.UNIMPLEMENTED
    assert h.err(OpCode.create, cr("/t", 5)) == Err.UNIMPLEMENTED


def test_ttl_enabled() -> None:
    h = Harness(extended=True)
    assert h.err(OpCode.createTTL, ttl_req("/t", 0)) == Err.BADARGUMENTS
    assert h.err(OpCode.createTTL, ttl_req("/t", -1)) == Err.BADARGUMENTS
    assert h.err(OpCode.createTTL, ttl_req("/t", MAX_TTL_MS + 1)) == Err.BADARGUMENTS
    assert h.err(OpCode.createTTL, ttl_req("/t", 100, 0)) == Err.BADARGUMENTS  # ttl, not TTL mode
    assert h.err(OpCode.createTTL, ttl_req("/t", -1, 0)) == Err.BADARGUMENTS  # zkref: see prep.py
    assert h.err(OpCode.create, cr("/t", 5)) == Err.BADARGUMENTS  # TTL mode without a ttl
    hdr, txn, _r = h.do(OpCode.createTTL, ttl_req("/t", MAX_TTL_MS))
    assert hdr.type == OpCode.createTTL
    assert txn == CreateTTLTxn("/t", b"", OPEN_ACL_UNSAFE, 1, MAX_TTL_MS)
    t = h.tree.get("/t")
    assert t is not None and t.ephemeral_owner == ttl_to_owner(MAX_TTL_MS) < 0
    assert t.stat().ephemeral_owner == 0
    _, txn, _ = h.do(OpCode.createTTL, ttl_req("/t/s", 5, 6))
    assert isinstance(txn, CreateTTLTxn) and txn.path == "/t/s0000000000"


def test_container_txn() -> None:
    h = Harness()
    hdr, txn, _r = h.do(OpCode.createContainer, cr("/c", 4))
    assert hdr.type == OpCode.createContainer
    assert txn == CreateContainerTxn("/c", b"", OPEN_ACL_UNSAFE, 1)
    c = h.tree.get("/c")
    assert c is not None and c.ephemeral_owner == CONTAINER_EPHEMERAL_OWNER


def test_delete_container_rules() -> None:
    h = Harness()
    assert h.err(OpCode.createContainer, cr("/c", 4)) == 0
    assert h.create("/c/x") == 0
    assert h.create("/e", 1) == 0
    assert h.create("/p") == 0
    hdr, txn = h.prep.delete_container("/c", 1, 100)
    assert hdr == TxnHeader(0, 0, 100, 1, int(OpCode.error)) and txn == ErrorTxn(int(Err.NOTEMPTY))
    hdr, txn = h.prep.delete_container("/e", 1, 101)
    assert txn == ErrorTxn(int(Err.BADVERSION))
    hdr, txn = h.prep.delete_container("/nope", 1, 102)
    assert txn == ErrorTxn(int(Err.NONODE))
    hdr, txn = h.prep.delete_container("/zookeeper", 1, 103)
    assert txn == ErrorTxn(int(Err.BADARGUMENTS))
    # ZooKeeper only refuses session ephemerals: a plain persistent node would go
    hdr, txn = h.prep.delete_container("/p", 1, 104)
    assert hdr.type == OpCode.deleteContainer and txn == DeleteTxn("/p")
    assert h.apply(hdr, txn).err == 0
    assert h.err(OpCode.delete, DeleteRequest("/c/x", -1)) == 0
    hdr, txn = h.prep.delete_container("/c", 1, 200)
    assert hdr == TxnHeader(0, 0, 200, 1, int(OpCode.deleteContainer))
    r = h.apply(hdr, txn)
    assert r.err == 0 and h.tree.get("/c") is None and not h.tree.containers


# --- delete, setData, setACL, check ----------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/zookeeper", "/zookeeper/quota", "/zookeeper/config"])
def test_delete_system_paths_bad_arguments(path: str) -> None:
    assert Harness().err(OpCode.delete, DeleteRequest(path, -1)) == Err.BADARGUMENTS


def test_delete_rules_and_order() -> None:
    h = Harness()
    assert h.err(OpCode.delete, DeleteRequest("nope", -1)) == Err.BADARGUMENTS
    assert h.err(OpCode.delete, DeleteRequest("/a/b", -1)) == Err.NONODE
    assert h.create("/a") == 0
    assert h.create("/a/b") == 0
    assert h.err(OpCode.delete, DeleteRequest("/a/", -1)) == Err.NONODE  # no path validation
    assert h.err(OpCode.delete, DeleteRequest("/a", 5)) == Err.BADVERSION  # before NotEmpty
    assert h.err(OpCode.delete, DeleteRequest("/a", 0)) == Err.NOTEMPTY
    # DELETE is checked on the parent, not on the node
    assert h.create("/locked", acl=(ACL(31 & ~8, Id("world", "anyone")),)) == 0
    assert h.create("/locked/c", acl=READ_ACL_UNSAFE) == 0
    assert h.err(OpCode.delete, DeleteRequest("/locked/c", 0)) == Err.NOAUTH
    assert h.err(OpCode.delete, DeleteRequest("/locked/nope", 0)) == Err.NOAUTH  # before NoNode
    assert h.err(OpCode.delete, DeleteRequest("/a/b", 0)) == 0
    root = h.tree.get("/")
    a = h.tree.get("/a")
    assert a is not None and root is not None
    assert a.pzxid == h.zxid and a.cversion == 1 and a.stat().cversion == 2


def test_set_data_rules() -> None:
    h = Harness()
    assert h.err(OpCode.setData, SetDataRequest("bad", b"", -1)) == Err.BADARGUMENTS
    assert h.err(OpCode.setData, SetDataRequest("/a/", b"", -1)) == Err.BADARGUMENTS
    assert h.err(OpCode.setData, SetDataRequest("/a", b"", -1)) == Err.NONODE
    assert h.create("/a", acl=READ_ACL_UNSAFE) == 0
    assert h.err(OpCode.setData, SetDataRequest("/a", b"", 7)) == Err.NOAUTH  # before version
    assert h.create("/b") == 0
    assert h.err(OpCode.setData, SetDataRequest("/b", b"", 1)) == Err.BADVERSION
    hdr, txn, _r = h.do(OpCode.setData, SetDataRequest("/b", b"new", 0))
    assert txn == SetDataTxn("/b", b"new", 1)
    b = h.tree.get("/b")
    assert b is not None and b.version == 1 and b.mzxid == hdr.zxid and b.mtime == hdr.time
    assert b.czxid < b.mzxid and b.ctime < b.mtime
    assert h.err(OpCode.setData, SetDataRequest("/b", None, -1)) == 0
    assert b.data is None and b.stat().data_length == 0 and b.version == 2


def test_set_data_version_wraps() -> None:
    h = Harness()
    assert h.create("/v") == 0
    v = h.tree.get("/v")
    assert v is not None
    v.version = 2**31 - 1
    v.changed()
    _, txn, _ = h.do(OpCode.setData, SetDataRequest("/v", b"", 2**31 - 1))
    assert txn == SetDataTxn("/v", b"", -(2**31))


def test_set_acl_rules() -> None:
    h = Harness()
    assert h.err(OpCode.setACL, SetACLRequest("/a", (), -1)) == Err.INVALIDACL  # before NoNode
    assert h.err(OpCode.setACL, SetACLRequest("/a", OPEN_ACL_UNSAFE, -1)) == Err.NONODE
    assert h.err(OpCode.setACL, SetACLRequest("a", (), -1)) == Err.BADARGUMENTS
    assert h.create("/a", acl=(ACL(31 & ~16, Id("world", "anyone")),)) == 0
    assert h.err(OpCode.setACL, SetACLRequest("/a", OPEN_ACL_UNSAFE, -1)) == Err.NOAUTH
    assert h.create("/b") == 0
    assert h.err(OpCode.setACL, SetACLRequest("/b", OPEN_ACL_UNSAFE, 1)) == Err.BADVERSION
    _hdr, txn, r = h.do(OpCode.setACL, SetACLRequest("/b", BOB_ONLY, 0))
    assert txn == SetACLTxn("/b", BOB_ONLY, 1)
    b = h.tree.get("/b")
    assert b is not None and b.aversion == 1 and b.acl == BOB_ONLY
    assert b.mzxid == b.czxid and b.version == 0  # setACL does not touch data stats
    assert r.triggers == ()
    # the new ACL is in force for the next (even pipelined) request
    assert h.err(OpCode.setData, SetDataRequest("/b", b"", -1)) == Err.NOAUTH
    assert h.err(OpCode.setData, SetDataRequest("/b", b"", -1), AS_BOB) == 0
    # the config node is read-only for world, aversion -1
    assert h.err(OpCode.setData, SetDataRequest("/zookeeper/config", b"", -1)) == Err.NOAUTH
    super_ = AuthInfo((Id("ip", "127.0.0.1"),), is_super=True)
    assert (
        h.err(OpCode.setACL, SetACLRequest("/zookeeper/config", OPEN_ACL_UNSAFE, -1), super_) == 0
    )
    config = h.tree.get("/zookeeper/config")
    assert config is not None and config.aversion == 0


def test_check_op() -> None:
    h = Harness()
    assert h.create("/a") == 0
    _, txn = h.prep_only(OpCode.check, CheckVersionRequest("/a", 0))
    assert txn == CheckVersionTxn("/a", 1)
    _, txn = h.prep_only(OpCode.check, CheckVersionRequest("/a", 3))
    assert txn == ErrorTxn(int(Err.BADVERSION))
    assert h.create("/s", acl=(ACL(2, Id("world", "anyone")),)) == 0
    _, txn = h.prep_only(OpCode.check, CheckVersionRequest("/s", -1))
    assert txn == ErrorTxn(int(Err.NOAUTH))  # check needs READ


def test_reconfig_is_disabled() -> None:
    h = Harness()
    hdr, txn = h.prep_only(OpCode.reconfig, ReconfigRequest(None, None, "server.1=x", -1))
    assert hdr.type == OpCode.error and txn == ErrorTxn(int(Err.RECONFIGDISABLED))


def test_reads_are_refused() -> None:
    h = Harness()
    with pytest.raises(ValueError):
        h.prep_only(OpCode.getData, GetDataRequest("/", False))


# --- multi -----------------------------------------------------------------------------------


def test_multi_success_one_zxid_results_and_triggers() -> None:
    h = Harness()
    assert h.create("/a") == 0
    ops = (
        (int(OpCode.create), cr("/a/b")),
        (int(OpCode.create), cr("/a/b/s", 2)),
        (int(OpCode.setData), SetDataRequest("/a", b"z", 0)),
        (int(OpCode.check), CheckVersionRequest("/a", 1)),
        (int(OpCode.createContainer), cr("/a/c", 4)),
        (int(OpCode.delete), DeleteRequest("/a/c", 0)),
    )
    hdr, txn, r = h.do(OpCode.multi, MultiRequest(ops))
    assert hdr.type == OpCode.multi
    assert isinstance(txn, MultiTxn)
    assert [t for t, _ in txn.txns] == [1, 1, 5, 13, 19, 2]
    assert r.err == 0 and isinstance(r.response, MultiResponse)
    kinds = [type(res).__name__ for _, res in r.response.results]
    assert kinds == [
        "CreateResponse",
        "CreateResponse",
        "SetDataResponse",
        "CheckResult",
        "Create2Response",
        "DeleteResult",
    ]
    assert r.response.results[1][1] == CreateResponse("/a/b/s0000000000")
    for path in ("/a/b", "/a/b/s0000000000"):
        node = h.tree.get(path)
        assert node is not None and node.czxid == hdr.zxid
    assert [(t.path, int(t.event)) for t in r.triggers] == [
        ("/a/b", 1),
        ("/a", 4),
        ("/a/b/s0000000000", 1),
        ("/a/b", 4),
        ("/a", 3),
        ("/a/c", 1),
        ("/a", 4),
        ("/a/c", 2),
        ("/a", 4),
    ]


def test_multi_failure_rules_and_rollback() -> None:
    h = Harness()
    assert h.create("/q") == 0
    ops = (
        (int(OpCode.create), cr("/q/n", 2)),
        (int(OpCode.setData), SetDataRequest("/q", b"", 0)),
        (int(OpCode.delete), DeleteRequest("/nope", -1)),
        (int(OpCode.create), cr("/q/m")),
        (int(OpCode.check), CheckVersionRequest("/q", 0)),
    )
    hdr, txn = h.prep_only(OpCode.multi, MultiRequest(ops))
    assert hdr.type == OpCode.multi
    # as ZooKeeper logs it: real txns before the failure, then its error, then -2s
    assert txn == MultiTxn(
        (
            (1, CreateTxn("/q/n0000000000", b"", OPEN_ACL_UNSAFE, False, 1)),
            (5, SetDataTxn("/q", b"", 1)),
            (-1, ErrorTxn(int(Err.NONODE))),
            (-1, ErrorTxn(int(Err.RUNTIMEINCONSISTENCY))),
            (-1, ErrorTxn(int(Err.RUNTIMEINCONSISTENCY))),
        )
    )
    # rolled back: nothing of the failed multi is outstanding
    assert h.prep.outstanding_count == 0
    _, txn2 = h.prep_only(OpCode.create, cr("/q/n", 2))
    assert isinstance(txn2, CreateTxn) and txn2.path == "/q/n0000000000"
    r = h.tree.apply(hdr, txn)
    assert r.err == 0 and r.triggers == ()
    assert r.response == MultiResponse(
        tuple((-1, ErrorResponse(e)) for e in (0, 0, int(Err.NONODE), -2, -2))
    )
    q = h.tree.get("/q")
    assert q is not None and q.version == 0 and not q.children
    assert h.tree.last_processed_zxid == hdr.zxid


def test_failed_multi_restores_earlier_outstanding_records() -> None:
    h = Harness()
    p1 = h.prep_only(OpCode.create, cr("/a"))
    p2 = h.prep_only(OpCode.setData, SetDataRequest("/a", b"", 0))
    _, bad = h.prep_only(
        OpCode.multi,
        MultiRequest(
            (
                (int(OpCode.setData), SetDataRequest("/a", b"", 1)),
                (int(OpCode.create), cr("/a/s", 2)),
                (int(OpCode.create), cr("/zz/x")),
            )
        ),
    )
    assert isinstance(bad, MultiTxn)
    # after the rollback the pending view is /a at version 1 with no children
    _, ok = h.prep_only(OpCode.setData, SetDataRequest("/a", b"", 1))
    assert ok == SetDataTxn("/a", b"", 2)
    _, seq = h.prep_only(OpCode.create, cr("/a/s", 2))
    assert isinstance(seq, CreateTxn) and seq.path == "/a/s0000000000"
    for p in (p1, p2):
        assert h.apply(*p).err == 0


def test_multi_with_a_read_op_is_marshalling_error() -> None:
    h = Harness()
    hdr, txn = h.prep_only(
        OpCode.multi, MultiRequest(((int(OpCode.getData), CheckVersionRequest("/", 0)),))
    )
    assert hdr.type == OpCode.error and txn == ErrorTxn(int(Err.MARSHALLINGERROR))


def test_empty_multi() -> None:
    h = Harness()
    _hdr, txn, r = h.do(OpCode.multi, MultiRequest(()))
    assert txn == MultiTxn(()) and r.response == MultiResponse(()) and r.err == 0


# --- sessions --------------------------------------------------------------------------------


def test_create_session_txn() -> None:
    h = Harness()
    hdr, txn = h.prep.create_session(S1, 30000, 77, 9)
    assert hdr == TxnHeader(S1, 0, 9, 77, int(OpCode.createSession))
    assert txn == CreateSessionTxn(30000)
    r = h.tree.apply(hdr, txn)
    assert r.err == 0 and r.triggers == () and h.tree.last_processed_zxid == 9


def test_close_session_lists_outstanding_ephemerals() -> None:
    h = Harness()
    assert h.create("/a") == 0
    assert h.create("/a/e1", 1) == 0
    assert h.create("/a/e2", 1) == 0
    assert h.create("/other", 1, session=S2) == 0
    p_new = h.prep_only(OpCode.create, cr("/a/e3", 1))  # outstanding create
    p_del = h.prep_only(OpCode.delete, DeleteRequest("/a/e1", -1))  # outstanding delete
    hdr, txn = h.prep.close_session(S1, 42, 9999, 100)
    assert hdr == TxnHeader(S1, 42, 100, 9999, int(OpCode.closeSession))
    # ZooKeeper's order (a clone of the session's HashSet, then the outstanding changes), as
    # Java 17 iterates the same operations
    assert txn == CloseSessionTxn(("/a/e3", "/a/e2"))
    # the pending deletes are visible to later requests
    assert h.prep_only(OpCode.setData, SetDataRequest("/a/e2", b"", -1))[1] == ErrorTxn(-101)
    h.apply(*p_new)
    h.apply(*p_del)
    r = h.apply(hdr, txn)
    assert r.err == 0 and r.session_closed == S1
    assert h.tree.ephemerals_of(S1) == frozenset()
    assert h.tree.ephemerals_of(S2) == {"/other"}
    assert [(t.path, int(t.event)) for t in r.triggers] == [
        ("/a/e3", 2),
        ("/a", 4),
        ("/a/e2", 2),
        ("/a", 4),
    ]
    a = h.tree.get("/a")
    assert a is not None and a.pzxid == 100


def test_applied_and_reset() -> None:
    h = Harness()
    p1 = h.prep_only(OpCode.create, cr("/a"))
    p2 = h.prep_only(OpCode.create, cr("/b"))
    assert h.prep.outstanding_count == 4
    h.apply(*p1)
    assert h.prep.outstanding_count == 2
    h.prep.reset()
    assert h.prep.outstanding_count == 0
    # after a reset the prep only sees the tree: /b is unknown again
    assert h.prep_only(OpCode.delete, DeleteRequest("/b", -1))[1] == ErrorTxn(-101)
    h.apply(*p2)
    assert h.tree.get("/b") is not None


def test_multi_create_family_is_typed_by_flags_as_in_3_8() -> None:
    h = Harness()
    ops = (
        (int(OpCode.create2), cr("/two")),
        (int(OpCode.createContainer), cr("/notbox")),
        (int(OpCode.create), cr("/box", 4)),
        (int(OpCode.createTTL), CreateTTLRequest("/t", b"", OPEN_ACL_UNSAFE, 0, -1)),
    )
    _hdr, txn, r = h.do(OpCode.multi, MultiRequest(ops))
    assert isinstance(txn, MultiTxn) and [t for t, _ in txn.txns] == [1, 1, 19, 1]
    assert txn.txns[3][1] == CreateTxn("/t", b"", OPEN_ACL_UNSAFE, False, 4)
    assert isinstance(r.response, MultiResponse)
    assert [t for t, _ in r.response.results] == [1, 1, 15, 1]
    box, notbox = h.tree.get("/box"), h.tree.get("/notbox")
    assert box is not None and box.ephemeral_owner == CONTAINER_EPHEMERAL_OWNER
    assert notbox is not None and notbox.ephemeral_owner == 0


def test_multi_ttl_flags_without_ttl_fail_the_whole_request() -> None:
    h = Harness(extended=True)
    p0 = h.prep_only(OpCode.create, cr("/p"))
    hdr, txn = h.prep_only(
        OpCode.multi,
        MultiRequest(((int(OpCode.create), cr("/p/a")), (int(OpCode.create), cr("/x", 5)))),
    )
    assert hdr.type == OpCode.error and txn == ErrorTxn(int(Err.MARSHALLINGERROR))
    assert h.prep.outstanding_count == 2  # /p's records only: the multi left nothing behind
    h.apply(*p0)
    # an earlier failure means the TTL op is never read: an ordinary failed multi
    hdr, txn = h.prep_only(
        OpCode.multi,
        MultiRequest(((int(OpCode.create), cr("/nope/a")), (int(OpCode.create), cr("/x", 5)))),
    )
    assert hdr.type == OpCode.multi and isinstance(txn, MultiTxn)


def test_multi_create2_in_3_9_mode() -> None:
    h = Harness()
    h.prep = Prep(h.tree, PrepConfig(multi_create2=True))
    _hdr, txn, r = h.do(OpCode.multi, MultiRequest(((int(OpCode.create2), cr("/two")),)))
    assert isinstance(txn, MultiTxn) and txn.txns[0][0] == OpCode.create2
    assert isinstance(r.response, MultiResponse) and r.response.results[0][0] == 15
