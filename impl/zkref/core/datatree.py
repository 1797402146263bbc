"""The replicated state: ZooKeeper's data tree (ZooKeeper: `server.DataTree`, `server.DataNode`).

Rules:
- `apply(hdr, txn)` is the only mutator. It is deterministic (time comes from `hdr.time`) and is
  also used to replay the log over a fuzzy snapshot, so a txn whose effect is already present
  yields an error result (NodeExists, NoNode), never an exception;
- a znode stores `cversion` as ZooKeeper's StatPersisted does: the number of child creates. The
  client-visible cversion is `2 * cversion - numChildren` (creates + deletes), which is why a fresh
  root reports cversion -1 and /zookeeper -2; sequential suffixes use the stored value;
- a create bumps the parent's cversion/pzxid only upwards (replay of a create of a node that the
  snapshot no longer holds must not roll them back); a delete raises the parent's pzxid only
  upwards and removes the child name even when the child itself is already gone;
- containers (ephemeralOwner = Long.MIN_VALUE) and TTL nodes (high byte 0xFF, only recognised when
  extended types are enabled) report ephemeralOwner 0 to clients and are tracked in side sets so
  `reapable` never walks the tree;
- the root is also reachable as "" (ZooKeeper keeps both keys; `node_count` counts both);
- `/zookeeper`, `/zookeeper/quota` and `/zookeeper/config` exist from the start with all-zero stats;
  /zookeeper/config is READ-only for world with aversion -1 (set through setACL(version=-1));
- quotas: a `zookeeper_limits` node under /zookeeper/quota/<path> puts <path> under quota; the
  server rewrites /zookeeper/quota/<path>/zookeeper_stats ("count=..,bytes=..") in place (no
  version or mzxid change) on every create/delete/setData below the deepest quota path, and
  recomputes it when the stats node is created or a snapshot is loaded;
- children and session ephemerals iterate in the order ZooKeeper's java.util.HashSet would
  (`java_set_order`), so listings, closeSession deletes and their watch events come out alike.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from zkref.core.acl import OPEN_ACL_UNSAFE, READ_ACL_UNSAFE
from zkref.wire.constants import (
    CONTAINER_EPHEMERAL_OWNER,
    MAX_TTL_MS,
    TTL_EPHEMERAL_OWNER_MASK,
    Err,
    EventType,
    OpCode,
)
from zkref.wire.records import (
    ACL,
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
    MultiOpResult,
    MultiResponse,
    MultiSubTxn,
    MultiTxn,
    SetACLResponse,
    SetACLTxn,
    SetDataResponse,
    SetDataTxn,
    Stat,
    StatPersisted,
    TxnBody,
    TxnHeader,
)

__all__ = [
    "CONFIG_PATH",
    "QUOTA_PATH",
    "SPECIAL_PATHS",
    "SYSTEM_PATH",
    "ApplyResult",
    "DataTree",
    "NodeKind",
    "Trigger",
    "Znode",
    "classify_owner",
    "ttl_of_owner",
    "ttl_to_owner",
]

# plain ints: comparing with IntEnum members costs ~4x more on the hot path
_OP_check = int(OpCode.check)
_OP_closeSession = int(OpCode.closeSession)
_OP_create = int(OpCode.create)
_OP_create2 = int(OpCode.create2)
_OP_createContainer = int(OpCode.createContainer)
_OP_createSession = int(OpCode.createSession)
_OP_createTTL = int(OpCode.createTTL)
_OP_delete = int(OpCode.delete)
_OP_deleteContainer = int(OpCode.deleteContainer)
_OP_error = int(OpCode.error)
_OP_multi = int(OpCode.multi)
_OP_reconfig = int(OpCode.reconfig)
_OP_setACL = int(OpCode.setACL)
_OP_setData = int(OpCode.setData)


SYSTEM_PATH = "/zookeeper"
QUOTA_PATH = "/zookeeper/quota"
CONFIG_PATH = "/zookeeper/config"
SPECIAL_PATHS = frozenset({"/", SYSTEM_PATH, QUOTA_PATH, CONFIG_PATH})

_RESERVED_BITS_MASK = 0x00FFFF0000000000
_TTL_VALUE_MASK = MAX_TTL_MS  # low 40 bits


def _i64(v: int) -> int:
    """Interpret `v` as a Java long (two's complement)."""
    v &= (1 << 64) - 1
    return v - (1 << 64) if v >= (1 << 63) else v


def ttl_to_owner(ttl_ms: int) -> int:
    """EphemeralType.TTL.toEphemeralOwner: the signed ephemeralOwner of a TTL node."""
    if not 0 < ttl_ms <= MAX_TTL_MS:
        raise ValueError(f"ttl must be positive and cannot be larger than: {MAX_TTL_MS}")
    return _i64(TTL_EPHEMERAL_OWNER_MASK | ttl_ms)


def ttl_of_owner(owner: int) -> int:
    return owner & _TTL_VALUE_MASK


class NodeKind:
    """EphemeralType, decided once when a znode is created."""

    VOID = 0  # persistent
    NORMAL = 1  # ephemeral, owned by a session
    CONTAINER = 2
    TTL = 3


def java_hash(name: str) -> int:
    """HashMap.hash(name): String.hashCode over UTF-16 units, high half folded into the low."""
    h = 0
    if name.isascii() or max(name) <= "\uffff":
        for c in name:
            h = (h * 31 + ord(c)) & 0xFFFFFFFF
    else:
        for c in name:
            o = ord(c)
            if o > 0xFFFF:  # a surrogate pair in Java
                o -= 0x10000
                h = (h * 31 + 0xD800 + (o >> 10)) & 0xFFFFFFFF
                o = 0xDC00 + (o & 0x3FF)
            h = (h * 31 + o) & 0xFFFFFFFF
    return h ^ (h >> 16)


def java_set_add(items: dict[str, int], cap: int, name: str) -> int:
    """Add `name` to `items` (name -> java_hash, insertion ordered) as java.util.HashMap.putVal
    would to a table of `cap` buckets; return the capacity afterwards. The table doubles when the
    size passes 3/4 of it, or when a bucket already chaining 8 names gets another while the table
    is under 64 (treeifyBin resizes instead of building a tree)."""
    if name in items:
        return cap
    h = java_hash(name)
    if len(items) >= 8 and cap < 64:
        b = h & (cap - 1)
        if sum(1 for v in items.values() if v & (cap - 1) == b) >= 8:
            cap *= 2
    items[name] = h
    if len(items) > cap * 3 // 4:
        cap *= 2
    return cap


def java_set_order(items: dict[str, int], cap: int) -> list[str]:
    """The order a HashSet holding `items` in a table of `cap` iterates: by bucket, then by
    insertion within a bucket (exact unless a bucket of a table >= 64 held 8+ names and was
    turned into a tree)."""
    if len(items) < 2:
        return list(items)
    mask = cap - 1
    return [n for n, _ in sorted(items.items(), key=lambda kv: kv[1] & mask)]


class JavaHashSet:
    """A set of strings that also knows the order ZooKeeper's `java.util.HashSet` would iterate
    it in (insertion order is kept; `java_order()` derives the rest). ZooKeeper's per-session
    ephemeral sets are `new HashSet<String>()` (16 buckets at first)."""

    __slots__ = ("cap", "initial_cap", "items")

    def __init__(self, initial_cap: int = 16) -> None:
        self.items: dict[str, int] = {}
        self.cap = 0
        self.initial_cap = initial_cap

    def __len__(self) -> int:
        return len(self.items)

    def __contains__(self, name: object) -> bool:
        return name in self.items

    def add(self, name: str) -> None:
        self.cap = java_set_add(self.items, self.cap or self.initial_cap, name)

    def discard(self, name: str) -> None:
        self.items.pop(name, None)

    def java_order(self) -> list[str]:
        return java_set_order(self.items, self.cap)

    def java_clone(self) -> JavaHashSet:
        """HashSet.clone(): a table sized for the current size, filled in iteration order."""
        clone = JavaHashSet()
        size = len(self.items)
        if size:
            wanted = int(size / 0.75 + 1.0)
            clone.initial_cap = 1 << (wanted - 1).bit_length()  # HashMap.tableSizeFor
            for name in self.java_order():
                clone.add(name)
        return clone


def classify_owner(owner: int, extended_types_enabled: bool) -> int:
    """EphemeralType.get: TTL only when extended types are enabled (else it is a session id)."""
    if (
        extended_types_enabled
        and (owner & TTL_EPHEMERAL_OWNER_MASK) == TTL_EPHEMERAL_OWNER_MASK
        and owner & _RESERVED_BITS_MASK == 0
    ):
        return NodeKind.TTL
    if owner == CONTAINER_EPHEMERAL_OWNER:
        return NodeKind.CONTAINER
    return NodeKind.VOID if owner == 0 else NodeKind.NORMAL


class Znode:
    """One znode. `cversion` is the stored (StatPersisted) value; `stat()` converts it."""

    __slots__ = (
        "_stat",
        "acl",
        "aversion",
        "child_table",
        "children",
        "ctime",
        "cversion",
        "czxid",
        "data",
        "ephemeral_owner",
        "kind",
        "mtime",
        "mzxid",
        "pzxid",
        "version",
    )

    def __init__(
        self,
        data: bytes | None,
        acl: tuple[ACL, ...],
        czxid: int,
        mzxid: int,
        ctime: int,
        mtime: int,
        version: int,
        cversion: int,
        aversion: int,
        ephemeral_owner: int,
        pzxid: int,
        kind: int,
    ) -> None:
        self.data = data
        self.acl = acl
        self.czxid = czxid
        self.mzxid = mzxid
        self.ctime = ctime
        self.mtime = mtime
        self.version = version
        self.cversion = cversion
        self.aversion = aversion
        self.ephemeral_owner = ephemeral_owner
        self.pzxid = pzxid
        self.kind = kind
        # child name -> its spread Java hash, in insertion order (see `add_child`)
        self.children: dict[str, int] = {}
        # capacity of the Java HashSet ZooKeeper would hold the names in (0: not created yet)
        self.child_table = 0
        # The last Stat built, shared by reads until the tree changes this node (Stat is
        # immutable). Whoever writes a field outside DataTree.apply must call `changed()`.
        self._stat: Stat | None = None

    def changed(self) -> None:
        self._stat = None

    def add_child(self, name: str) -> None:
        """DataNode.addChild, tracking the capacity of ZooKeeper's `HashSet<String>(8)`: it
        doubles when the size passes 3/4 of it, or when a bucket that already chains 8 names
        gets another while the table is under 64 (HashMap.treeifyBin resizes instead)."""
        self.child_table = java_set_add(self.children, self.child_table or 8, name)

    def children_in_order(self) -> list[str]:
        """The names in the order ZooKeeper's HashSet iterates them: by bucket, then by
        insertion within a bucket (exact unless a bucket of a table >= 64 held 8+ names)."""
        return java_set_order(self.children, self.child_table)

    def stat_tuple(self) -> tuple[int, int, int, int, int, int, int, int, int, int, int]:
        """The 11 Stat values in jute order, as a client sees them."""
        n = len(self.children)
        data = self.data
        return (
            self.czxid,
            self.mzxid,
            self.ctime,
            self.mtime,
            self.version,
            self.cversion * 2 - n,
            self.aversion,
            self.ephemeral_owner if self.kind <= NodeKind.NORMAL else 0,
            len(data) if data is not None else 0,
            n,
            self.pzxid,
        )

    def stat(self) -> Stat:
        s = self._stat
        if s is None:
            s = self._stat = Stat(*self.stat_tuple())
        return s

    def stat_persisted(self) -> StatPersisted:
        """The snapshot form: stored cversion and the raw ephemeralOwner."""
        return StatPersisted(
            czxid=self.czxid,
            mzxid=self.mzxid,
            ctime=self.ctime,
            mtime=self.mtime,
            version=self.version,
            cversion=self.cversion,
            aversion=self.aversion,
            ephemeral_owner=self.ephemeral_owner,
            pzxid=self.pzxid,
        )

    def __repr__(self) -> str:
        return (
            f"Znode(stat={self.stat_tuple()}, children={sorted(self.children)}, data={self.data!r})"
        )


@dataclass(slots=True)
class Trigger:
    """A watch trigger, in ZooKeeper's firing order. NodeDeleted fires data watches then child
    watches of `path` (a watcher in both gets one event); NodeChildrenChanged is for the parent.

    Treat as immutable; not `frozen` for speed (see ApplyResult)."""

    path: str
    event: EventType


@dataclass(slots=True)
class ApplyResult:
    """What applying one txn did. `err` is the reply header's err (0 for multi: the per-op codes
    are in the MultiResponse, as FinalRequestProcessor does); `response` the reply body on
    success; `session_closed` the session id of a closeSession txn.

    Treat as immutable. Not `frozen` on purpose: one (and a Trigger or two) is built per txn and
    a frozen dataclass costs about 4x as much to construct on the 2-core dev machine."""

    zxid: int
    err: int
    response: object | None
    triggers: tuple[Trigger, ...]
    session_closed: int | None = None


class _TxnError(Exception):
    def __init__(self, err: Err) -> None:
        super().__init__(err)
        self.err = err


_NO_TRIGGERS: tuple[Trigger, ...] = ()


class DataTree:
    """ZooKeeper's DataTree without watches (the watch manager consumes `ApplyResult.triggers`)."""

    __slots__ = (
        "_approx_size",
        "_containers",
        "_ephemerals",
        "_nodes",
        "_quotas",
        "_ttls",
        "extended_types_enabled",
        "last_processed_zxid",
    )

    def __init__(self, *, extended_types_enabled: bool = False) -> None:
        self.extended_types_enabled = extended_types_enabled
        self.last_processed_zxid = 0
        self._nodes: dict[str, Znode] = {}
        # session -> its ephemerals; kept (maybe empty) until the session is killed, as ZooKeeper
        # keeps the HashSet (and its capacity, which decides iteration order)
        self._ephemerals: dict[int, JavaHashSet] = {}
        self._containers: set[str] = set()
        self._ttls: set[str] = set()
        # paths with a quota (a zookeeper_limits node under /zookeeper/quota): ZooKeeper's pTrie
        self._quotas: set[str] = set()
        root = self._system_node(OPEN_ACL_UNSAFE)
        self._nodes[""] = root
        self._nodes["/"] = root
        system = self._system_node(OPEN_ACL_UNSAFE)
        root.add_child("zookeeper")
        self._nodes[SYSTEM_PATH] = system
        system.add_child("quota")
        self._nodes[QUOTA_PATH] = self._system_node(OPEN_ACL_UNSAFE)
        system.add_child("config")
        config = self._system_node(READ_ACL_UNSAFE)
        config.aversion = -1
        self._nodes[CONFIG_PATH] = config
        self._approx_size = self._full_data_size()

    @staticmethod
    def _system_node(acl: tuple[ACL, ...]) -> Znode:
        return Znode(b"", acl, 0, 0, 0, 0, 0, 0, 0, 0, 0, NodeKind.VOID)

    # --- queries -------------------------------------------------------------------------

    def get(self, path: str) -> Znode | None:
        return self._nodes.get(path)

    def __contains__(self, path: str) -> bool:
        return path in self._nodes

    @property
    def node_count(self) -> int:
        """ZooKeeper's getNodeCount (mntr zk_znode_count): the root counts twice ("" and "/")."""
        return len(self._nodes)

    @property
    def approximate_data_size(self) -> int:
        """ZooKeeper's cachedApproximateDataSize: sum of path length + data length, kept
        incrementally."""
        return self._approx_size

    def ephemerals_of(self, session_id: int) -> frozenset[str]:
        paths = self._ephemerals.get(session_id)
        return frozenset(paths.items) if paths is not None else frozenset()

    def ephemerals_clone(self, session_id: int) -> JavaHashSet:
        """DataTree.getEphemerals: a clone of the session's set (its iteration order is what
        getEphemerals and closeSession report)."""
        paths = self._ephemerals.get(session_id)
        return paths.java_clone() if paths is not None else JavaHashSet()

    def sessions_with_ephemerals(self) -> frozenset[int]:
        return frozenset(s for s, paths in self._ephemerals.items() if paths)

    @property
    def ephemerals_count(self) -> int:
        return sum(len(p) for p in self._ephemerals.values())

    @property
    def containers(self) -> frozenset[str]:
        return frozenset(self._containers)

    @property
    def ttls(self) -> frozenset[str]:
        return frozenset(self._ttls)

    def all_children_number(self, path: str) -> int:
        """getAllChildrenNumber: every descendant of `path` (a scan, as ZooKeeper does)."""
        if path == "/":
            return len(self._nodes) - 2
        prefix = path + "/"
        return sum(1 for p in self._nodes if p.startswith(prefix))

    def reapable(self, now_ms: int, max_never_used_interval_ms: int = 0) -> list[str]:
        """ContainerManager.getCandidates: empty containers that ever had a child (or, with
        `max_never_used_interval_ms`, unused for longer than that) and childless TTL nodes not
        modified for longer than their TTL. Sorted, for determinism."""
        out: list[str] = []
        for path in self._containers:
            node = self._nodes[path]
            if node.children:
                continue
            if node.cversion > 0 or (
                max_never_used_interval_ms != 0 and now_ms - node.mtime > max_never_used_interval_ms
            ):
                out.append(path)
        for path in self._ttls:
            node = self._nodes[path]
            if node.children:
                continue
            ttl = ttl_of_owner(node.ephemeral_owner)
            if ttl != 0 and now_ms - node.mtime > ttl:
                out.append(path)
        out.sort()
        return out

    def _full_data_size(self) -> int:
        total = 0
        for path, node in self._nodes.items():
            total += len(path) + (len(node.data) if node.data is not None else 0)
        return total

    # --- snapshots -----------------------------------------------------------------------

    def export_nodes(self) -> Iterator[tuple[str, Znode]]:
        """Every znode once, parents before children (depth first, children in ZooKeeper's
        order, as its snapshots are written); the root is yielded as "/"."""
        stack = ["/"]
        nodes = self._nodes
        while stack:
            path = stack.pop()
            node = nodes[path]
            yield path, node
            base = "" if path == "/" else path
            for name in reversed(node.children_in_order()):
                stack.append(base + "/" + name)

    @classmethod
    def from_nodes(
        cls,
        nodes: Iterable[tuple[str, bytes | None, tuple[ACL, ...], StatPersisted]],
        last_processed_zxid: int,
        *,
        extended_types_enabled: bool = False,
    ) -> DataTree:
        """Rebuild a tree from a snapshot (root as "" or "/"; parents before children)."""
        tree = cls(extended_types_enabled=extended_types_enabled)
        tree._nodes.clear()
        for path, data, acl, sp in nodes:
            kind = classify_owner(sp.ephemeral_owner, extended_types_enabled)
            node = Znode(
                data,
                tuple(acl),
                sp.czxid,
                sp.mzxid,
                sp.ctime,
                sp.mtime,
                sp.version,
                sp.cversion,
                sp.aversion,
                sp.ephemeral_owner,
                sp.pzxid,
                kind,
            )
            if path in ("", "/"):
                tree._nodes[""] = node
                tree._nodes["/"] = node
                continue
            slash = path.rfind("/")
            parent = tree._nodes.get(path[:slash])
            if slash < 0 or parent is None:
                raise ValueError(f"snapshot node {path!r} comes before its parent")
            parent.add_child(path[slash + 1 :])
            tree._nodes[path] = node
            tree._index_add(path, node)
        if "/" not in tree._nodes:
            raise ValueError("snapshot has no root")
        tree.last_processed_zxid = last_processed_zxid
        tree._setup_quota()
        tree._approx_size = tree._full_data_size()
        return tree

    def _index_add(self, path: str, node: Znode) -> None:
        kind = node.kind
        if kind == NodeKind.CONTAINER:
            self._containers.add(path)
        elif kind == NodeKind.TTL:
            self._ttls.add(path)
        elif kind == NodeKind.NORMAL:
            paths = self._ephemerals.get(node.ephemeral_owner)
            if paths is None:
                paths = self._ephemerals[node.ephemeral_owner] = JavaHashSet()
            paths.add(path)

    def _index_remove(self, path: str, node: Znode) -> None:
        kind = node.kind
        if kind == NodeKind.CONTAINER:
            self._containers.discard(path)
        elif kind == NodeKind.TTL:
            self._ttls.discard(path)
        elif kind == NodeKind.NORMAL:
            paths = self._ephemerals.get(node.ephemeral_owner)
            if paths is not None:
                paths.discard(path)

    # --- the mutator ---------------------------------------------------------------------

    def apply(self, hdr: TxnHeader, txn: TxnBody) -> ApplyResult:
        """DataTree.processTxn: apply one txn (a whole multi at once) and report its result."""
        triggers: list[Trigger] = []
        zxid = hdr.zxid
        err = 0
        response: object | None = None
        session_closed: int | None = None
        t = hdr.type
        try:
            if t == _OP_multi:
                assert isinstance(txn, MultiTxn), txn
                response = self._apply_multi(hdr, txn, triggers)
            elif t == _OP_closeSession:
                session_closed = hdr.client_id
                paths = txn.paths2_delete if isinstance(txn, CloseSessionTxn) else None
                self._kill_session(hdr.client_id, zxid, paths, triggers)
            elif t == _OP_createSession:
                assert isinstance(txn, CreateSessionTxn), txn
            else:
                response = self._apply_one(hdr, t, txn, triggers)
        except _TxnError as e:
            err = int(e.err)
            response = None
        if zxid > self.last_processed_zxid:
            self.last_processed_zxid = zxid
        return ApplyResult(
            zxid, err, response, tuple(triggers) if triggers else _NO_TRIGGERS, session_closed
        )

    def _apply_one(
        self, hdr: TxnHeader, t: int, txn: TxnBody | MultiSubTxn, triggers: list[Trigger]
    ) -> object | None:
        """One non-multi txn; raises _TxnError. Returns the success response body."""
        zxid = hdr.zxid
        if t in (_OP_create, _OP_create2):
            assert isinstance(txn, CreateTxn), txn
            owner = hdr.client_id if txn.ephemeral else 0
            node = self._create_or_fix(
                t,
                txn.path,
                txn.data,
                txn.acl,
                owner,
                txn.parent_c_version,
                zxid,
                hdr.time,
                triggers,
            )
            if t == _OP_create:
                return CreateResponse(txn.path)
            return Create2Response(txn.path, node.stat())
        if t == _OP_createContainer:
            assert isinstance(txn, CreateContainerTxn), txn
            node = self._create_node(
                txn.path,
                txn.data,
                txn.acl,
                CONTAINER_EPHEMERAL_OWNER,
                txn.parent_c_version,
                zxid,
                hdr.time,
                triggers,
            )
            return Create2Response(txn.path, node.stat())
        if t == _OP_createTTL:
            assert isinstance(txn, CreateTTLTxn), txn
            if not 0 < txn.ttl <= MAX_TTL_MS:
                raise _TxnError(Err.BADARGUMENTS)
            node = self._create_node(
                txn.path,
                txn.data,
                txn.acl,
                ttl_to_owner(txn.ttl),
                txn.parent_c_version,
                zxid,
                hdr.time,
                triggers,
            )
            return Create2Response(txn.path, node.stat())
        if t in (_OP_delete, _OP_deleteContainer):
            assert isinstance(txn, DeleteTxn), txn
            self._delete_node(txn.path, zxid, triggers)
            return None
        if t in (_OP_setData, _OP_reconfig):
            assert isinstance(txn, SetDataTxn), txn
            return SetDataResponse(
                self._set_data(txn.path, txn.data, txn.version, zxid, hdr.time, triggers)
            )
        if t == _OP_setACL:
            assert isinstance(txn, SetACLTxn), txn
            target = self._nodes.get(txn.path)
            if target is None:
                raise _TxnError(Err.NONODE)
            target.aversion = txn.version
            target.acl = txn.acl
            target._stat = None
            return SetACLResponse(target.stat())
        if t == _OP_check:
            assert isinstance(txn, CheckVersionTxn), txn
            return None
        if t == _OP_error:
            assert isinstance(txn, ErrorTxn), txn
            if txn.err != 0:
                raise _TxnError(Err(txn.err))
            return None
        raise ValueError(f"txn type {t} cannot be applied")

    def _create_or_fix(
        self,
        t: int,
        path: str,
        data: bytes | None,
        acl: tuple[ACL, ...],
        owner: int,
        parent_c_version: int,
        zxid: int,
        time: int,
        triggers: list[Trigger],
    ) -> Znode:
        try:
            return self._create_node(path, data, acl, owner, parent_c_version, zxid, time, triggers)
        except _TxnError as e:
            # Replay over a fuzzy snapshot: the node may have been re-created by another
            # session after its parent was serialized. Bring the parent's cversion/pzxid forward.
            if t == _OP_create and e.err == Err.NODEEXISTS:
                parent = self._nodes.get(path[: path.rfind("/")])
                if parent is None:
                    raise _TxnError(Err.NONODE) from None
                new_cversion = parent.cversion + 1 if parent_c_version == -1 else parent_c_version
                if new_cversion > parent.cversion:
                    parent.cversion = new_cversion
                    parent.pzxid = zxid
                    parent._stat = None
            raise

    def _create_node(
        self,
        path: str,
        data: bytes | None,
        acl: tuple[ACL, ...],
        owner: int,
        parent_c_version: int,
        zxid: int,
        time: int,
        triggers: list[Trigger],
    ) -> Znode:
        slash = path.rfind("/")
        parent_name = path[:slash]
        child_name = path[slash + 1 :]
        parent = self._nodes.get(parent_name) if slash >= 0 else None
        if parent is None:
            raise _TxnError(Err.NONODE)
        if child_name in parent.children or not child_name:  # "/" is the root: it exists
            raise _TxnError(Err.NODEEXISTS)
        if parent_c_version == -1:
            parent_c_version = parent.cversion + 1
        if parent_c_version > parent.cversion:
            parent.cversion = parent_c_version
            parent.pzxid = zxid
        node = Znode(
            data,
            acl,
            zxid,
            zxid,
            time,
            time,
            0,
            0,
            0,
            owner,
            zxid,
            classify_owner(owner, self.extended_types_enabled),
        )
        parent.add_child(child_name)
        parent._stat = None
        self._nodes[path] = node
        self._approx_size += len(path) + (len(data) if data is not None else 0)
        self._index_add(path, node)
        if parent_name.startswith(QUOTA_PATH):
            if child_name == _LIMIT_NODE:
                real = parent_name[len(QUOTA_PATH) :]
                if real:
                    self._quotas.add(real)
            elif child_name == _STAT_NODE:
                self._update_quota_for_path(parent_name[len(QUOTA_PATH) :])
        if self._quotas:
            prefix = self._quota_prefix(path)
            if prefix is not None:
                self._update_quota_stat(prefix, len(data) if data is not None else 0, 1)
        triggers.append(Trigger(path, EventType.NodeCreated))
        triggers.append(Trigger(parent_name or "/", EventType.NodeChildrenChanged))
        return node

    def _delete_node(self, path: str, zxid: int, triggers: list[Trigger]) -> None:
        slash = path.rfind("/")
        parent_name = path[:slash]
        parent = self._nodes.get(parent_name) if slash >= 0 else None
        if parent is None or path == "/":  # never the root (prep refuses it too)
            raise _TxnError(Err.NONODE)
        # Done before looking at the child: on replay it may already be gone, yet the
        # parent's pzxid must still move forward.
        parent.children.pop(path[slash + 1 :], None)
        parent._stat = None
        if zxid > parent.pzxid:
            parent.pzxid = zxid
        node = self._nodes.pop(path, None)
        if node is None:
            raise _TxnError(Err.NONODE)
        self._approx_size -= len(path) + (len(node.data) if node.data is not None else 0)
        self._index_remove(path, node)
        if path[slash + 1 :] == _LIMIT_NODE and parent_name.startswith(SYSTEM_PATH):
            self._quotas.discard(parent_name[len(QUOTA_PATH) :])
        if self._quotas:
            prefix = self._quota_prefix(path)
            if prefix is not None:
                self._update_quota_stat(prefix, -len(node.data) if node.data is not None else 0, -1)
        triggers.append(Trigger(path, EventType.NodeDeleted))
        triggers.append(Trigger(parent_name or "/", EventType.NodeChildrenChanged))

    def _set_data(
        self,
        path: str,
        data: bytes | None,
        version: int,
        zxid: int,
        time: int,
        triggers: list[Trigger],
    ) -> Stat:
        node = self._nodes.get(path)
        if node is None:
            raise _TxnError(Err.NONODE)
        old = node.data
        node.data = data
        node.mtime = time
        node.mzxid = zxid
        node.version = version
        node._stat = None
        diff = (len(data) if data is not None else 0) - (len(old) if old is not None else 0)
        self._approx_size += diff
        if self._quotas:
            prefix = self._quota_prefix(path)
            if prefix is not None:
                self._update_quota_stat(prefix, diff, 0)
        triggers.append(Trigger(path, EventType.NodeDataChanged))
        return node.stat()

    # --- quotas (ZooKeeper: DataTree.updateQuotaStat / updateQuotaForPath / setupQuota) ------

    def _quota_prefix(self, path: str) -> str | None:
        """PathTrie.findMaxPrefix: the deepest quota path that is `path` or an ancestor."""
        found: str | None = None
        prefix = ""
        for part in path.split("/"):
            if part:
                prefix = prefix + "/" + part
                if prefix in self._quotas:
                    found = prefix
        return found

    def _update_quota_stat(self, prefix: str, bytes_diff: int, count_diff: int) -> None:
        # The stats node's data is rewritten in place: no version, mzxid or size-cache change.
        node = self._nodes.get(QUOTA_PATH + prefix + "/" + _STAT_NODE)
        if node is None:
            return
        stats = _parse_stats(node.data)
        if stats is None:
            return  # ZooKeeper would fail on unparsable stats; leave them alone
        stats["count"] = stats.get("count", -1) + count_diff
        stats["bytes"] = stats.get("bytes", -1) + bytes_diff
        node.data = _format_stats(stats)
        node._stat = None

    def _update_quota_for_path(self, path: str) -> None:
        count = size = 0
        stack = [path]
        while stack:  # DataTree.getCounts: the node itself and every descendant
            at = stack.pop()
            node = self._nodes.get(at)
            if node is None:
                continue
            count += 1
            size += len(node.data) if node.data is not None else 0
            stack.extend(at + "/" + child for child in node.children)
        node = self._nodes.get(QUOTA_PATH + path + "/" + _STAT_NODE)
        if node is not None:
            node.data = _format_stats({"count": count, "bytes": size})
            node._stat = None

    def _setup_quota(self) -> None:
        """After a snapshot load: every leaf zookeeper_limits node under /zookeeper/quota names a
        quota path, whose stats are recomputed."""
        end = "/" + _LIMIT_NODE
        for path, node in list(self._nodes.items()):
            if path.startswith(QUOTA_PATH + "/") and path.endswith(end) and not node.children:
                real = path[len(QUOTA_PATH) : path.index(end)]
                if real:
                    self._update_quota_for_path(real)
                    self._quotas.add(real)

    def _kill_session(
        self, session_id: int, zxid: int, in_txn: tuple[str, ...] | None, triggers: list[Trigger]
    ) -> None:
        local = self._ephemerals.pop(session_id, None)
        if in_txn is not None:
            for path in in_txn:
                self._delete_quietly(path, zxid, triggers)
                if local is not None:
                    local.discard(path)
        if local is not None:
            for path in local.java_order():
                self._delete_quietly(path, zxid, triggers)

    def _delete_quietly(self, path: str, zxid: int, triggers: list[Trigger]) -> None:
        # already gone (replay): ZooKeeper logs and ignores NoNode here
        with contextlib.suppress(_TxnError):
            self._delete_node(path, zxid, triggers)

    def _apply_multi(self, hdr: TxnHeader, txn: MultiTxn, triggers: list[Trigger]) -> MultiResponse:
        failed = any(t == _OP_error for t, _ in txn.txns)
        post_failed = False
        results: list[tuple[int, MultiOpResult]] = []
        for t, sub in txn.txns:
            if t == _OP_error:
                post_failed = True
            elif failed:
                # a failed multi applies nothing: earlier ops report 0, later ones -2
                sub = ErrorTxn(int(Err.RUNTIMEINCONSISTENCY) if post_failed else 0)
                t = _OP_error
            if t == _OP_error:
                assert isinstance(sub, ErrorTxn), sub
                results.append((_OP_error, ErrorResponse(sub.err)))
                continue
            try:
                body = self._apply_one(hdr, t, sub, triggers)
            except _TxnError as e:
                results.append((_OP_error, ErrorResponse(int(e.err))))
                continue
            results.append(_multi_result(t, body))
        return MultiResponse(tuple(results))


_LIMIT_NODE = "zookeeper_limits"
_STAT_NODE = "zookeeper_stats"


def _parse_stats(data: bytes | None) -> dict[str, int] | None:
    """StatsTrack(String): "count=1,bytes=2=;countHardLimit=5" -> {count: 1, bytes: 2, ...}."""
    out: dict[str, int] = {}
    text = (data or b"").decode("utf-8", "replace")
    if not text:
        return out
    pairs = re.split("[,;]+", text)
    while pairs and pairs[-1] == "":
        pairs.pop()  # Java's split drops trailing empty strings
    for pair in pairs:
        kv = pair.split("=")
        while kv and kv[-1] == "":
            kv.pop()
        if len(kv) < 2:
            return None
        try:
            out[kv[0]] = int(kv[1] or "-1")
        except ValueError:
            return None
    return out


def _format_stats(stats: dict[str, int]) -> bytes:
    """StatsTrack.toString: count and bytes first; other keys sorted after an extra "="."""
    text = f"count={stats.get('count', -1)},bytes={stats.get('bytes', -1)}"
    extra = sorted(k for k in stats if k not in ("count", "bytes"))
    if extra:
        text += "=" + "".join(f";{k}={stats[k]}" for k in extra)
    return text.encode("utf-8")


def _multi_result(t: int, body: object | None) -> tuple[int, MultiOpResult]:
    """(MultiHeader type, body) as ZooKeeper's OpResult writes it: a create with a stat (create2,
    createContainer, createTTL) is typed create2, a deleteContainer is typed delete."""
    if t == _OP_check:
        return _OP_check, CheckResult()
    if t in (_OP_delete, _OP_deleteContainer):
        return _OP_delete, DeleteResult()
    if isinstance(body, Create2Response):
        return _OP_create2, body
    assert isinstance(body, CreateResponse | SetDataResponse), body
    return int(t), body
