"""Property tests: random write sequences through `Prep` then `DataTree.apply`.

Checked after every txn: the tree's structural invariants (numChildren, parent links, side
indexes, sizes), per-path monotonicity of pzxid/cversion, and that prep and apply agree (a txn
prep accepted applies cleanly, even when several are prepared before any is applied). At the end:
replaying the log on a fresh tree, and over a snapshot taken mid-run with the log replayed from
before the snapshot (fuzzy-snapshot recovery), both give the same tree.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import zkref.core.prep as prep_mod
from zkref.core.acl import OPEN_ACL_UNSAFE, AuthInfo
from zkref.core.datatree import DataTree, NodeKind, Trigger, Znode, classify_owner
from zkref.core.prep import Prep, PrepConfig
from zkref.wire.constants import CreateMode, EventType, OpCode
from zkref.wire.records import (
    ACL,
    CheckVersionRequest,
    CloseSessionTxn,
    CreateRequest,
    CreateTTLRequest,
    DeleteRequest,
    ErrorResponse,
    ErrorTxn,
    Id,
    MultiOpRequest,
    MultiRequest,
    MultiResponse,
    MultiTxn,
    SetACLRequest,
    SetDataRequest,
    Stat,
    StatPersisted,
    TxnBody,
    TxnHeader,
)

PATHS = ("/a", "/a/b", "/a/b/c", "/a/s", "/c", "/c/d")
SESSIONS = (0x101, 0x102, 0x103)
AUTH = AuthInfo((Id("ip", "127.0.0.1"), Id("digest", "u:h")))
ACLS = (OPEN_ACL_UNSAFE, (ACL(31, Id("digest", "u:h")),), (ACL(1, Id("world", "anyone")),))


@dataclass(frozen=True)
class Write:
    session: int
    op: int
    request: object


@dataclass(frozen=True)
class CloseSession:
    session: int


@dataclass(frozen=True)
class Reap:
    pass


Step = Write | CloseSession | Reap

paths = st.sampled_from(PATHS[:1] * 3 + PATHS[4:5] * 2 + PATHS[1:2] * 2 + PATHS)
versions = st.sampled_from((-1, -1, 0, 1, 2))
datas = st.sampled_from((b"", b"x", b"yy", None))
modes = st.sampled_from(
    (
        CreateMode.PERSISTENT,
        CreateMode.EPHEMERAL,
        CreateMode.PERSISTENT_SEQUENTIAL,
        CreateMode.EPHEMERAL_SEQUENTIAL,
        CreateMode.CONTAINER,
    )
)


@st.composite
def create_ops(draw: st.DrawFn) -> tuple[int, MultiOpRequest]:
    path = draw(paths)
    mode = draw(modes)
    if path != "/a/s":  # sequential names only under /a, so other paths can be reused
        mode = {
            CreateMode.PERSISTENT_SEQUENTIAL: CreateMode.PERSISTENT,
            CreateMode.EPHEMERAL_SEQUENTIAL: CreateMode.PERSISTENT,
            CreateMode.EPHEMERAL: CreateMode.EPHEMERAL if path != "/a" else CreateMode.PERSISTENT,
        }.get(mode, mode)
    if draw(st.integers(0, 6)) == 0:
        return int(OpCode.createTTL), CreateTTLRequest(
            path,
            draw(datas),
            OPEN_ACL_UNSAFE,
            int(CreateMode.PERSISTENT_WITH_TTL),
            draw(st.sampled_from((1, 500, 5000))),
        )
    if mode is CreateMode.CONTAINER:
        return int(OpCode.createContainer), CreateRequest(path, draw(datas), OPEN_ACL_UNSAFE, 4)
    op = draw(st.sampled_from((OpCode.create, OpCode.create2)))
    return int(op), CreateRequest(path, draw(datas), OPEN_ACL_UNSAFE, int(mode))


sub_ops: st.SearchStrategy[tuple[int, MultiOpRequest]] = st.one_of(
    create_ops(),
    create_ops(),
    create_ops(),
    st.builds(lambda p, v: (int(OpCode.delete), DeleteRequest(p, v)), paths, versions),
    st.builds(
        lambda p, d, v: (int(OpCode.setData), SetDataRequest(p, d, v)), paths, datas, versions
    ),
    st.builds(lambda p, v: (int(OpCode.check), CheckVersionRequest(p, v)), paths, versions),
)


@st.composite
def steps(draw: st.DrawFn) -> Step:
    kind = draw(st.integers(0, 19))
    session = draw(st.sampled_from(SESSIONS))
    if kind == 0:
        return CloseSession(session)
    if kind == 1:
        return Reap()
    if kind <= 3:
        ops = tuple(draw(st.lists(sub_ops, min_size=0, max_size=4)))
        return Write(session, int(OpCode.multi), MultiRequest(ops))
    if kind == 4:
        return Write(
            session,
            int(OpCode.setACL),
            SetACLRequest(draw(paths), draw(st.sampled_from(ACLS)), draw(versions)),
        )
    op, req = draw(sub_ops)
    return Write(session, op, req)


Snapshot = list[tuple[str, bytes | None, tuple[ACL, ...], StatPersisted, frozenset[str]]]


def snapshot(tree: DataTree) -> Snapshot:
    return [
        (p, n.data, n.acl, n.stat_persisted(), frozenset(n.children))
        for p, n in tree.export_nodes()
    ]


def check_invariants(tree: DataTree, extended: bool) -> None:
    seen: dict[str, Znode] = {}
    ephemerals: dict[int, set[str]] = {}
    containers: set[str] = set()
    ttls: set[str] = set()
    size = 0
    for path, node in tree.export_nodes():
        assert path not in seen, path
        seen[path] = node
        assert tree.get(path) is node
        stat = node.stat()
        assert stat == Stat(*node.stat_tuple()), f"stale cached stat of {path}"
        assert stat.num_children == len(node.children)
        cap = node.child_table
        assert cap == 0 or (
            cap >= 8 and cap & (cap - 1) == 0 and len(node.children) <= cap * 3 // 4
        )
        assert stat.data_length == (len(node.data) if node.data is not None else 0)
        assert stat.pzxid >= stat.czxid and stat.mzxid >= stat.czxid, (path, stat)
        if path != "/":
            parent = tree.get(path[: path.rfind("/")] or "/")
            assert parent is not None and path.rsplit("/", 1)[1] in parent.children, path
        for child in node.children:
            assert tree.get(("" if path == "/" else path) + "/" + child) is not None
        kind = classify_owner(node.ephemeral_owner, extended)
        assert kind == node.kind
        if kind == NodeKind.NORMAL:
            assert not node.children, f"ephemeral {path} has children"
            assert stat.ephemeral_owner == node.ephemeral_owner != 0
            ephemerals.setdefault(node.ephemeral_owner, set()).add(path)
        else:
            assert stat.ephemeral_owner == 0
        if kind == NodeKind.CONTAINER:
            containers.add(path)
        if kind == NodeKind.TTL:
            ttls.add(path)
        size += len(path) + stat.data_length
    assert tree.node_count == len(seen) + 1  # "" aliases the root
    assert tree.approximate_data_size == size  # "" adds 0 and the root's data is empty
    for session in SESSIONS:
        assert tree.ephemerals_of(session) == frozenset(ephemerals.get(session, set()))
    assert tree.containers == containers
    assert tree.ttls == ttls


def check_triggers(tree: DataTree, zxid: int, triggers: tuple[Trigger, ...]) -> None:
    """Each trigger's stat effect is visible with this txn's zxid (nodes that a later op of the
    same multi removed are skipped)."""
    for trig in triggers:
        node = tree.get(trig.path)
        if node is None:
            assert trig.event in (
                EventType.NodeCreated,
                EventType.NodeDeleted,
                EventType.NodeChildrenChanged,
                EventType.NodeDataChanged,
            )
            continue
        if trig.event == EventType.NodeChildrenChanged:
            assert node.pzxid == zxid, (trig, node)
        elif trig.event == EventType.NodeCreated:
            assert node.czxid == zxid or any(
                t.path == trig.path and t.event == EventType.NodeDeleted for t in triggers
            ), (trig, node)
        elif trig.event == EventType.NodeDataChanged:
            assert node.mzxid == zxid, (trig, node)


def run(steps_: list[Step], batch: int, extended: bool) -> None:
    tree = DataTree(extended_types_enabled=extended)
    prep = Prep(tree, PrepConfig(extended_types_enabled=extended))
    log: list[tuple[TxnHeader, TxnBody]] = []
    last_seen: dict[tuple[str, int], tuple[int, int]] = {}  # (path, czxid) -> (pzxid, cversion)
    closed: set[int] = set()
    pending: list[tuple[TxnHeader, TxnBody]] = []
    zxid = 0
    mid: tuple[Snapshot, int] | None = None

    def flush() -> None:
        nonlocal mid
        for hdr, txn in pending:
            result = tree.apply(hdr, txn)
            log.append((hdr, txn))
            prep.applied(hdr.zxid)
            assert tree.last_processed_zxid == hdr.zxid
            if isinstance(txn, MultiTxn):
                failed = any(isinstance(t, ErrorTxn) for _, t in txn.txns)
                assert isinstance(result.response, MultiResponse), result
                assert result.err == 0  # a multi's errors are per op
                codes = [r.err for t, r in result.response.results if isinstance(r, ErrorResponse)]
                if failed:
                    assert len(codes) == len(txn.txns) and result.triggers == ()
                    first = next(i for i, c in enumerate(codes) if c != 0)
                    assert all(c == 0 for c in codes[:first]), codes
                    assert all(c == -2 for c in codes[first + 1 :]), codes
                else:
                    assert not codes, result
            elif isinstance(txn, ErrorTxn):
                assert result.err == txn.err
            elif isinstance(txn, CloseSessionTxn):
                assert result.session_closed == hdr.client_id
                assert not tree.ephemerals_of(hdr.client_id), "closed session kept ephemerals"
            else:
                assert result.err == 0, (hdr, txn, result)
            check_invariants(tree, extended)
            check_triggers(tree, hdr.zxid, result.triggers)
            for path, node in tree.export_nodes():
                key = (path, node.czxid)
                stat = node.stat()
                if key in last_seen:
                    old_pzxid, old_cversion = last_seen[key]
                    assert stat.pzxid >= old_pzxid and stat.cversion >= old_cversion, path
                last_seen[key] = (stat.pzxid, stat.cversion)
            if mid is None and len(log) >= len(steps_) // 2:
                mid = (snapshot(tree), len(log))
        pending.clear()
        assert prep.outstanding_count == 0

    for step in steps_:
        zxid += 1
        now = zxid * 1000
        if isinstance(step, CloseSession):
            if step.session in closed:
                zxid -= 1
                continue
            closed.add(step.session)
            pending.append(prep.close_session(step.session, zxid, now, zxid))
        elif isinstance(step, Reap):
            flush()
            candidates = tree.reapable(now)
            if not candidates:
                zxid -= 1
                continue
            for i, path in enumerate(candidates):
                pending.append(prep.delete_container(path, now, zxid + i))
            zxid += len(candidates) - 1
        else:
            if step.session in closed:
                zxid -= 1
                continue
            pending.append(prep.prep(step.session, zxid, step.op, step.request, AUTH, now, zxid))
        if len(pending) >= batch:
            flush()
    flush()
    assert prep.outstanding_count == 0

    final = snapshot(tree)
    replayed = DataTree(extended_types_enabled=extended)
    for hdr, txn in log:
        replayed.apply(hdr, txn)
    assert snapshot(replayed) == final
    for (p1, n1), (p2, n2) in zip(tree.export_nodes(), replayed.export_nodes(), strict=True):
        assert p1 == p2 and n1.children_in_order() == n2.children_in_order(), p1
    assert replayed.last_processed_zxid == tree.last_processed_zxid

    if mid is not None:
        snap, at = mid
        fuzzy = DataTree.from_nodes(
            ((p, d, a, s) for p, d, a, s, _ in snap),
            log[at - 1][0].zxid if at else 0,
            extended_types_enabled=extended,
        )
        for hdr, txn in log[max(0, at - 3) :]:
            fuzzy.apply(hdr, txn)
        assert snapshot(fuzzy) == final
        check_invariants(fuzzy, extended)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(steps(), max_size=60), st.integers(1, 4), st.booleans())
def test_prep_then_apply_keeps_invariants(steps_: list[Step], batch: int, extended: bool) -> None:
    run(steps_, batch, extended)


# --- the checks catch planted bugs -----------------------------------------------------------

SCRIPT: list[Step] = [
    Write(0x103, int(OpCode.create), CreateRequest("/d", b"", OPEN_ACL_UNSAFE, 0)),
    Write(0x103, int(OpCode.create), CreateRequest("/d", b"", OPEN_ACL_UNSAFE, 0)),
    Write(0x101, int(OpCode.create), CreateRequest("/a", b"", OPEN_ACL_UNSAFE, 0)),
    Write(0x101, int(OpCode.create), CreateRequest("/a/s", b"", OPEN_ACL_UNSAFE, 2)),
    Write(0x101, int(OpCode.create), CreateRequest("/a/s", b"", OPEN_ACL_UNSAFE, 2)),
    Write(0x102, int(OpCode.create), CreateRequest("/c", b"x", OPEN_ACL_UNSAFE, 1)),
    Write(0x101, int(OpCode.setData), SetDataRequest("/a", b"y", -1)),
    Write(0x101, int(OpCode.setData), SetDataRequest("/a", b"z", 1)),
    CloseSession(0x102),
    Write(0x101, int(OpCode.delete), DeleteRequest("/a/s0000000000", 0)),
]


def test_script_passes_unplanted() -> None:
    for batch in (1, 3):
        run(SCRIPT, batch, extended=False)


def _plant(monkeypatch: pytest.MonkeyPatch, name: str, bad: Callable[..., object]) -> None:
    monkeypatch.setattr(prep_mod.Prep, name, bad)


def test_planted_bug_prep_ignores_outstanding_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    original = prep_mod.Prep._record

    def forgetful(self: Prep, path: str) -> object:
        self._by_path.clear()
        return original(self, path)

    _plant(monkeypatch, "_record", forgetful)
    with pytest.raises(AssertionError):
        run(SCRIPT, 3, extended=False)


def test_planted_bug_close_session_forgets_ephemerals(monkeypatch: pytest.MonkeyPatch) -> None:
    import zkref.core.datatree as dt

    def no_kill(self: DataTree, *args: object) -> None:
        return None

    monkeypatch.setattr(dt.DataTree, "_kill_session", no_kill)
    with pytest.raises(AssertionError):
        run(SCRIPT, 1, extended=False)


def test_planted_bug_delete_skips_pzxid(monkeypatch: pytest.MonkeyPatch) -> None:
    import zkref.core.datatree as dt

    original = dt.DataTree._delete_node

    def sloppy(self: DataTree, path: str, zxid: int, triggers: list[Trigger]) -> None:
        parent = self.get(path[: path.rfind("/")] or "/")
        before = parent.pzxid if parent is not None else 0
        original(self, path, zxid, triggers)
        if parent is not None:
            parent.pzxid = before

    monkeypatch.setattr(dt.DataTree, "_delete_node", sloppy)
    with pytest.raises(AssertionError, match="NodeChildrenChanged"):
        run(SCRIPT, 1, extended=False)
