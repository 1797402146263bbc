"""Requests become transactions (ZooKeeper: `server.PrepRequestProcessor`).

Rules:
- every check runs against the tree *plus the outstanding changes* (prepared, not yet applied),
  so pipelined writes see each other; `applied(zxid)` forgets the changes the tree now holds;
- checks run in ZooKeeper's order and the first failure wins. create: flags -> TTL disabled
  (Unimplemented) -> TTL value (BadArguments) -> slash/NUL (BadArguments) -> ACL (InvalidACL) ->
  parent exists (NoNode) -> CREATE on parent (NoAuth) -> full path incl. sequential suffix
  (BadArguments) -> NodeExists -> ephemeral parent (NoChildrenForEphemerals). delete: slash/NUL/
  system path (BadArguments) -> parent (NoNode) -> DELETE on parent (NoAuth) -> node (NoNode) ->
  version (BadVersion) -> NotEmpty. setData: path -> NoNode -> WRITE -> version. setACL: path ->
  InvalidACL -> NoNode -> ADMIN -> aversion. check: path -> NoNode -> READ -> version;
- a failed request still consumes its zxid: the txn is ErrorTxn(code) with hdr.type = error;
  a failed multi keeps hdr.type = multi; its MultiTxn holds, as ZooKeeper logs it, the real txns
  of the ops before the failing one, ErrorTxn(code) for it and ErrorTxn(-2) after it (apply
  reports 0 / code / -2 and changes nothing); it leaves no outstanding change behind;
- a create's parent record counts creates only (stored cversion + 1, the sequential suffix source,
  `%010d`, int32 wrap-around like Java); a delete only moves the parent's pzxid;
- zkref additions (documented deviations): data longer than `max_buffer` is BadArguments (ZooKeeper
  never sees such a request: the frame is refused first); createTTL with a non-TTL mode is
  BadArguments (ZooKeeper 3.8 logs a txn it cannot apply and the server dies, also on every
  restart);
- inside multi the create family is typed by its flags (3.8's MultiOperationRecord): create2 and
  createContainer with plain flags are creates, create with CONTAINER flags is a container, a
  TTL mode without a ttl fails the whole request (MarshallingError); `multi_create2` gives 3.9's
  create2.
"""

from __future__ import annotations

from dataclasses import dataclass

from zkref.core.acl import AuthInfo, check_acl, fixup_acl
from zkref.core.datatree import (
    SPECIAL_PATHS,
    DataTree,
    NodeKind,
    _OP_check,
    _OP_closeSession,
    _OP_create,
    _OP_create2,
    _OP_createContainer,
    _OP_createSession,
    _OP_createTTL,
    _OP_delete,
    _OP_deleteContainer,
    _OP_error,
    _OP_multi,
    _OP_reconfig,
    _OP_setACL,
    _OP_setData,
    classify_owner,
    ttl_to_owner,
)
from zkref.core.paths import validate_path
from zkref.wire.constants import (
    CONTAINER_EPHEMERAL_OWNER,
    MAX_TTL_MS,
    CreateMode,
    Err,
    OpCode,
    Perms,
)
from zkref.wire.records import (
    ACL,
    CheckVersionRequest,
    CheckVersionTxn,
    CloseSessionTxn,
    CreateContainerTxn,
    CreateRequest,
    CreateSessionTxn,
    CreateTTLRequest,
    CreateTTLTxn,
    CreateTxn,
    DeleteRequest,
    DeleteTxn,
    ErrorTxn,
    MultiOpRequest,
    MultiRequest,
    MultiSubTxn,
    MultiTxn,
    SetACLRequest,
    SetACLTxn,
    SetDataRequest,
    SetDataTxn,
    TxnBody,
    TxnHeader,
)

__all__ = ["WRITE_OPS", "Prep", "PrepConfig"]

# plain ints: comparing with IntEnum members costs ~4x more on the hot path (the _OP_
# constants are shared with the data tree)
_PERM_CREATE = int(Perms.CREATE)
_PERM_DELETE = int(Perms.DELETE)
_PERM_WRITE = int(Perms.WRITE)
_PERM_ADMIN = int(Perms.ADMIN)
_PERM_READ = int(Perms.READ)


# Client opcodes that `Prep.prep` turns into txns (closeSession has its own method).
WRITE_OPS = frozenset(
    {
        OpCode.create,
        OpCode.delete,
        OpCode.setData,
        OpCode.setACL,
        OpCode.check,
        OpCode.multi,
        OpCode.create2,
        OpCode.reconfig,
        OpCode.createContainer,
        OpCode.createTTL,
    }
)

_MULTI_OPS = frozenset(
    {
        OpCode.create,
        OpCode.create2,
        OpCode.createContainer,
        OpCode.createTTL,
        OpCode.delete,
        OpCode.setData,
        OpCode.check,
    }
)


_CREATE_OPS = frozenset({OpCode.create, OpCode.create2, OpCode.createContainer})


def _mode_or_persistent(flags: int) -> CreateMode:
    """CreateMode.fromFlag(flags, PERSISTENT)."""
    try:
        return CreateMode(flags)
    except ValueError:
        return CreateMode.PERSISTENT


def _i32(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v >= (1 << 31) else v


@dataclass(frozen=True, slots=True)
class PrepConfig:
    extended_types_enabled: bool = False  # zookeeper.extendedTypesEnabled (TTL nodes)
    max_buffer: int = 0xFFFFF  # jute.maxbuffer
    skip_acl: bool = False  # zookeeper.skipACL
    reconfig_enabled: bool = False  # reconfigEnabled (not implemented: always ReconfigDisabled)
    # ZooKeeper 3.9 (ZOOKEEPER-4026): a create2 inside multi stays create2 (its result carries a
    # stat). 3.8 reads it as a plain create.
    multi_create2: bool = False


class _Failed(Exception):
    def __init__(self, err: Err) -> None:
        super().__init__(err)
        self.err = err


class _Rec:
    """ZooKeeper's ChangeRecord: the view of one path after the outstanding changes.
    `exists` False is a pending delete."""

    __slots__ = (
        "acl",
        "aversion",
        "child_count",
        "cversion",
        "ephemeral_owner",
        "exists",
        "path",
        "version",
        "zxid",
    )

    def __init__(
        self,
        zxid: int,
        path: str,
        exists: bool,
        version: int,
        cversion: int,
        aversion: int,
        ephemeral_owner: int,
        child_count: int,
        acl: tuple[ACL, ...],
    ) -> None:
        self.zxid = zxid
        self.path = path
        self.exists = exists
        self.version = version
        self.cversion = cversion
        self.aversion = aversion
        self.ephemeral_owner = ephemeral_owner
        self.child_count = child_count
        self.acl = acl

    def duplicate(self, zxid: int) -> _Rec:
        return _Rec(
            zxid,
            self.path,
            self.exists,
            self.version,
            self.cversion,
            self.aversion,
            self.ephemeral_owner,
            self.child_count,
            self.acl,
        )

    @staticmethod
    def deleted(zxid: int, path: str) -> _Rec:
        return _Rec(zxid, path, False, 0, 0, 0, 0, 0, ())


class Prep:
    """PrepRequestProcessor over a `DataTree` (which it only reads)."""

    def __init__(self, tree: DataTree, config: PrepConfig) -> None:
        self.tree = tree
        self.config = config
        self._outstanding: list[_Rec] = []  # in zxid order (ZooKeeper's outstandingChanges)
        self._head = 0  # index of the oldest change not yet forgotten
        self._by_path: dict[str, _Rec] = {}  # outstandingChangesForPath
        # set while a multi is being prepared: path -> record before the multi touched it
        self._saved: dict[str, _Rec | None] | None = None

    # --- outstanding changes -------------------------------------------------------------

    def _record(self, path: str) -> _Rec:
        """getRecordForPath: the latest view, NoNode if absent or pending delete."""
        rec = self._by_path.get(path)
        if rec is None:
            node = self.tree.get(path)
            if node is None:
                raise _Failed(Err.NONODE)
            return _Rec(
                -1,
                path,
                True,
                node.version,
                node.cversion,
                node.aversion,
                node.ephemeral_owner,
                len(node.children),
                node.acl,
            )
        if not rec.exists:
            raise _Failed(Err.NONODE)
        return rec

    def _exists(self, path: str) -> bool:
        rec = self._by_path.get(path)
        if rec is None:
            return self.tree.get(path) is not None
        return rec.exists

    def _add(self, rec: _Rec) -> None:
        saved = self._saved
        if saved is not None and rec.path not in saved:
            saved[rec.path] = self._by_path.get(rec.path)
        self._outstanding.append(rec)
        self._by_path[rec.path] = rec

    def applied(self, zxid: int) -> None:
        """The tree now holds every txn up to `zxid`: forget their change records."""
        out = self._outstanding
        i = self._head
        n = len(out)
        by_path = self._by_path
        while i < n and out[i].zxid <= zxid:
            rec = out[i]
            if by_path.get(rec.path) is rec:
                del by_path[rec.path]
            i += 1
        if i == n:
            out.clear()
            self._head = 0
        elif i > 1024 and i * 2 > n:
            del out[:i]
            self._head = 0
        else:
            self._head = i

    def reset(self) -> None:
        """Drop every outstanding change (e.g. after a restart or losing leadership)."""
        self._outstanding.clear()
        self._head = 0
        self._by_path.clear()
        self._saved = None

    @property
    def outstanding_count(self) -> int:
        return len(self._outstanding) - self._head

    def _check_acl(self, acl: tuple[ACL, ...], perm: int, auth: AuthInfo) -> None:
        if not self.config.skip_acl and not check_acl(acl, perm, auth):
            raise _Failed(Err.NOAUTH)

    # --- entry points ----------------------------------------------------------------------

    def prep(
        self,
        session_id: int,
        cxid: int,
        op: int,
        request: object,
        auth: AuthInfo,
        now_ms: int,
        zxid: int,
    ) -> tuple[TxnHeader, TxnBody]:
        """Turn a write request into the txn to log and apply (an ErrorTxn on failure)."""
        if op == _OP_multi:
            if not isinstance(request, MultiRequest):
                raise TypeError(f"multi needs a MultiRequest, got {type(request).__name__}")
            if any(sub_op not in _MULTI_OPS for sub_op, _ in request.ops):
                # ZooKeeper cannot even deserialize such a multi
                return (
                    TxnHeader(session_id, cxid, zxid, now_ms, _OP_error),
                    ErrorTxn(int(Err.MARSHALLINGERROR)),
                )
            multi = self._prep_multi(session_id, request, auth, now_ms, zxid)
            if multi is None:
                return (
                    TxnHeader(session_id, cxid, zxid, now_ms, _OP_error),
                    ErrorTxn(int(Err.MARSHALLINGERROR)),
                )
            return TxnHeader(session_id, cxid, zxid, now_ms, _OP_multi), multi
        if op not in WRITE_OPS:
            raise ValueError(f"opcode {op} is not a write")
        try:
            txn = self._prep_one(session_id, op, request, auth, now_ms, zxid)
        except _Failed as e:
            return (
                TxnHeader(session_id, cxid, zxid, now_ms, _OP_error),
                ErrorTxn(int(e.err)),
            )
        return TxnHeader(session_id, cxid, zxid, now_ms, int(op)), txn

    def create_session(
        self, session_id: int, timeout_ms: int, now_ms: int, zxid: int
    ) -> tuple[TxnHeader, TxnBody]:
        return (
            TxnHeader(session_id, 0, zxid, now_ms, _OP_createSession),
            CreateSessionTxn(timeout_ms),
        )

    def close_session(
        self, session_id: int, cxid: int, now_ms: int, zxid: int
    ) -> tuple[TxnHeader, TxnBody]:
        """A CloseSessionTxn listing the session's ephemerals, outstanding creates included and
        outstanding deletes excluded, in ZooKeeper's order (its HashSet's; it decides the order
        of the deletes and so of the watch events)."""
        es = self.tree.ephemerals_clone(session_id)
        for i in range(self._head, len(self._outstanding)):
            rec = self._outstanding[i]
            if not rec.exists:
                es.discard(rec.path)
            elif rec.ephemeral_owner == session_id:
                es.add(rec.path)
        paths = tuple(es.java_order())
        for path in paths:
            # As ZooKeeper with digests on (the default): the parent's record only gets the
            # new pzxid; its child count is left as is.
            slash = path.rfind("/")
            if slash >= 0:
                try:
                    parent = self._record(path[:slash]).duplicate(zxid)
                except _Failed:
                    parent = None
                if parent is not None:
                    self._add(parent)
            self._add(_Rec.deleted(zxid, path))
        return (
            TxnHeader(session_id, cxid, zxid, now_ms, _OP_closeSession),
            CloseSessionTxn(paths),
        )

    def delete_container(self, path: str, now_ms: int, zxid: int) -> tuple[TxnHeader, TxnBody]:
        """The reaper's deleteContainer (session 0, cxid 0): refused (ErrorTxn) if the node is
        gone, has children (NotEmpty) or is a session's ephemeral (BadVersion)."""
        try:
            parent_path = self._parent_for_delete(path)
            rec = self._record(path)
            if rec.child_count > 0:
                raise _Failed(Err.NOTEMPTY)
            if (
                classify_owner(rec.ephemeral_owner, self.config.extended_types_enabled)
                == NodeKind.NORMAL
            ):
                raise _Failed(Err.BADVERSION)
            parent = self._record(parent_path).duplicate(zxid)
        except _Failed as e:
            return TxnHeader(0, 0, zxid, now_ms, _OP_error), ErrorTxn(int(e.err))
        parent.child_count -= 1
        self._add(parent)
        self._add(_Rec.deleted(zxid, path))
        return TxnHeader(0, 0, zxid, now_ms, _OP_deleteContainer), DeleteTxn(path)

    # --- single ops ----------------------------------------------------------------------

    def _prep_one(
        self, session_id: int, op: int, request: object, auth: AuthInfo, now_ms: int, zxid: int
    ) -> TxnBody:
        if op in (_OP_create, _OP_create2, _OP_createContainer):
            if not isinstance(request, CreateRequest):
                raise TypeError(f"create needs a CreateRequest, got {type(request).__name__}")
            return self._prep_create(
                session_id,
                op,
                request.path,
                request.data,
                request.acl,
                request.flags,
                -1,
                auth,
                zxid,
            )
        if op == _OP_createTTL:
            if not isinstance(request, CreateTTLRequest):
                raise TypeError(f"createTTL needs a CreateTTLRequest, got {type(request).__name__}")
            return self._prep_create(
                session_id,
                op,
                request.path,
                request.data,
                request.acl,
                request.flags,
                request.ttl,
                auth,
                zxid,
            )
        if op == _OP_delete:
            if not isinstance(request, DeleteRequest):
                raise TypeError(f"delete needs a DeleteRequest, got {type(request).__name__}")
            return self._prep_delete(request, auth, zxid)
        if op == _OP_setData:
            if not isinstance(request, SetDataRequest):
                raise TypeError(f"setData needs a SetDataRequest, got {type(request).__name__}")
            return self._prep_set_data(request, auth, zxid)
        if op == _OP_setACL:
            if not isinstance(request, SetACLRequest):
                raise TypeError(f"setACL needs a SetACLRequest, got {type(request).__name__}")
            return self._prep_set_acl(request, auth, zxid)
        if op == _OP_check:
            if not isinstance(request, CheckVersionRequest):
                raise TypeError(f"check needs a CheckVersionRequest, got {type(request).__name__}")
            return self._prep_check(request, auth)
        if op == _OP_reconfig:
            raise _Failed(Err.RECONFIGDISABLED)
        raise ValueError(f"opcode {op} is not a write")

    def _prep_create(
        self,
        session_id: int,
        op: int,
        path: str,
        data: bytes | None,
        acl: tuple[ACL, ...],
        flags: int,
        ttl: int,
        auth: AuthInfo,
        zxid: int,
    ) -> TxnBody:
        if data is not None and len(data) > self.config.max_buffer:
            raise _Failed(Err.BADARGUMENTS)
        try:
            mode = CreateMode(flags)
        except ValueError:
            raise _Failed(Err.BADARGUMENTS) from None
        if mode.is_ttl and not self.config.extended_types_enabled:
            raise _Failed(Err.UNIMPLEMENTED)
        if mode.is_ttl:
            if not 0 < ttl <= MAX_TTL_MS:
                raise _Failed(Err.BADARGUMENTS)
        elif ttl >= 0 or op == _OP_createTTL:
            raise _Failed(Err.BADARGUMENTS)
        slash = path.rfind("/")
        if slash < 0 or "\0" in path:
            raise _Failed(Err.BADARGUMENTS)
        parent_path = path[:slash]
        fixed = fixup_acl(acl, auth)
        if fixed is None:
            raise _Failed(Err.INVALIDACL)
        parent = self._record(parent_path)
        self._check_acl(parent.acl, _PERM_CREATE, auth)
        stored_cversion = parent.cversion
        if mode.is_sequential:
            path = f"{path}{stored_cversion:010d}"
        if validate_path(path) is not None:
            raise _Failed(Err.BADARGUMENTS)
        if self._exists(path):
            raise _Failed(Err.NODEEXISTS)
        if (
            classify_owner(parent.ephemeral_owner, self.config.extended_types_enabled)
            == NodeKind.NORMAL
        ):
            raise _Failed(Err.NOCHILDRENFOREPHEMERALS)
        new_cversion = _i32(stored_cversion + 1)
        txn: TxnBody
        if op == _OP_createContainer:
            txn = CreateContainerTxn(path, data, fixed, new_cversion)
        elif op == _OP_createTTL:
            txn = CreateTTLTxn(path, data, fixed, new_cversion, ttl)
        else:
            txn = CreateTxn(path, data, fixed, mode.is_ephemeral, new_cversion)
        if mode.is_container:
            owner = CONTAINER_EPHEMERAL_OWNER
        elif mode.is_ttl:
            owner = ttl_to_owner(ttl)
        elif mode.is_ephemeral:
            owner = session_id
        else:
            owner = 0
        prec = parent.duplicate(zxid)
        prec.child_count += 1
        prec.cversion = new_cversion
        self._add(prec)
        self._add(_Rec(zxid, path, True, 0, 0, 0, owner, 0, fixed))
        return txn

    def _parent_for_delete(self, path: str) -> str:
        """getParentPathAndValidate."""
        slash = path.rfind("/")
        if slash < 0 or "\0" in path or path in SPECIAL_PATHS:
            raise _Failed(Err.BADARGUMENTS)
        return path[:slash]

    def _prep_delete(self, request: DeleteRequest, auth: AuthInfo, zxid: int) -> TxnBody:
        path = request.path
        parent_path = self._parent_for_delete(path)
        parent = self._record(parent_path)
        self._check_acl(parent.acl, _PERM_DELETE, auth)
        rec = self._record(path)
        if request.version != -1 and request.version != rec.version:
            raise _Failed(Err.BADVERSION)
        if rec.child_count > 0:
            raise _Failed(Err.NOTEMPTY)
        prec = parent.duplicate(zxid)
        prec.child_count -= 1
        self._add(prec)
        self._add(_Rec.deleted(zxid, path))
        return DeleteTxn(path)

    def _prep_set_data(self, request: SetDataRequest, auth: AuthInfo, zxid: int) -> TxnBody:
        path = request.path
        data = request.data
        if data is not None and len(data) > self.config.max_buffer:
            raise _Failed(Err.BADARGUMENTS)
        if validate_path(path) is not None:
            raise _Failed(Err.BADARGUMENTS)
        rec = self._record(path)
        self._check_acl(rec.acl, _PERM_WRITE, auth)
        if request.version != -1 and request.version != rec.version:
            raise _Failed(Err.BADVERSION)
        new_version = _i32(rec.version + 1)
        nrec = rec.duplicate(zxid)
        nrec.version = new_version
        self._add(nrec)
        return SetDataTxn(path, data, new_version)

    def _prep_set_acl(self, request: SetACLRequest, auth: AuthInfo, zxid: int) -> TxnBody:
        path = request.path
        if validate_path(path) is not None:
            raise _Failed(Err.BADARGUMENTS)
        fixed = fixup_acl(request.acl, auth)
        if fixed is None:
            raise _Failed(Err.INVALIDACL)
        rec = self._record(path)
        self._check_acl(rec.acl, _PERM_ADMIN, auth)
        if request.version != -1 and request.version != rec.aversion:
            raise _Failed(Err.BADVERSION)
        new_aversion = _i32(rec.aversion + 1)
        nrec = rec.duplicate(zxid)
        nrec.aversion = new_aversion
        nrec.acl = fixed
        self._add(nrec)
        return SetACLTxn(path, fixed, new_aversion)

    def _prep_check(self, request: CheckVersionRequest, auth: AuthInfo) -> TxnBody:
        path = request.path
        if validate_path(path) is not None:
            raise _Failed(Err.BADARGUMENTS)
        rec = self._record(path)
        self._check_acl(rec.acl, _PERM_READ, auth)
        if request.version != -1 and request.version != rec.version:
            raise _Failed(Err.BADVERSION)
        return CheckVersionTxn(path, _i32(rec.version + 1))

    # --- multi ---------------------------------------------------------------------------

    def _multi_op(self, op: int, sub: MultiOpRequest) -> tuple[int, MultiOpRequest]:
        """How ZooKeeper's MultiOperationRecord reads a sub-op: for the create family the flags,
        not the wire opcode, decide between create, createContainer and createTTL (invalid flags
        count as PERSISTENT here and fail later); a createTTL whose flags are not a TTL mode
        becomes a plain create (its ttl dropped)."""
        if isinstance(sub, CreateRequest) and op in _CREATE_OPS:
            mode = _mode_or_persistent(sub.flags)
            if mode.is_ttl:
                return _OP_createTTL, sub  # prep cannot read it: MarshallingError
            if mode.is_container:
                return _OP_createContainer, sub
            if op == _OP_create2 and self.config.multi_create2:
                return _OP_create2, sub
            return _OP_create, sub
        if isinstance(sub, CreateTTLRequest) and op == _OP_createTTL:
            mode = _mode_or_persistent(sub.flags)
            if not mode.is_ttl:
                plain = CreateRequest(sub.path, sub.data, sub.acl, sub.flags)
                return self._multi_op(_OP_create, plain)
        return op, sub

    def _prep_multi(
        self, session_id: int, request: MultiRequest, auth: AuthInfo, now_ms: int, zxid: int
    ) -> MultiTxn | None:
        """The MultiTxn, or None when ZooKeeper fails the whole request (MarshallingError)."""
        mark = len(self._outstanding)
        self._saved = {}
        txns: list[tuple[int, MultiSubTxn]] = []
        failed: Err | None = None
        try:
            for wire_op, wire_sub in request.ops:
                if failed is not None:
                    txns.append((_OP_error, ErrorTxn(int(Err.RUNTIMEINCONSISTENCY))))
                    continue
                op, sub = self._multi_op(wire_op, wire_sub)
                if op == _OP_createTTL and not isinstance(sub, CreateTTLRequest):
                    # ZooKeeper's prep casts the CreateRequest to CreateTTLRequest and fails the
                    # whole request (ClassCastException -> MarshallingError)
                    self._rollback(mark)
                    return None
                try:
                    body = self._prep_one(session_id, op, sub, auth, now_ms, zxid)
                except _Failed as e:
                    failed = e.err
                    txns.append((_OP_error, ErrorTxn(int(e.err))))
                    continue
                assert not isinstance(
                    body, SetACLTxn | CreateSessionTxn | CloseSessionTxn | ErrorTxn | MultiTxn
                ), body
                txns.append((int(op), body))
            if failed is not None:
                # As ZooKeeper logs it: the ops before the failing one keep their txns; apply
                # turns the whole multi into errors (0 before, the code, -2 after).
                self._rollback(mark)
        finally:
            self._saved = None
        return MultiTxn(tuple(txns))

    def _rollback(self, mark: int) -> None:
        saved = self._saved
        assert saved is not None
        del self._outstanding[mark:]
        for path, rec in saved.items():
            if rec is None:
                self._by_path.pop(path, None)
            else:
                self._by_path[path] = rec
