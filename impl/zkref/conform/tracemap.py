"""The JSON <-> TLA+ value mapping of trace records, declared per spec.

Rules:
- Each spec variable and action parameter has a type (`Int`, `Str`, `Sid`, `Seq(...)`,
  `Fn(...)`, ...). A type turns a JSON value into TLA+ conjuncts about an expression
  (`constrain`), into a TLA+ value (`to_tla`), and a TLC-printed value back into JSON
  (`from_tla`, used to build traces from the spec's own behaviours).
- Constraints are element-wise, so what JSON leaves out stays free: keys missing from a
  function without a default, fields missing from a non-exact record. A sequence given as an
  integer is compared by length only; a txn given as a zxid is compared by zxid only.
- Server ids are positive ints in JSON; each spec says how they look in TLA+ (ints for
  FastLeaderElection, model values `s1, s2, ...` for Zab and Sessions; clients `c1, ...`).
- The tables below are the whole mapping; docs/trace-validation.md explains them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from zkref.conform.tlavalue import ModelValue, TlaFn, TlaSet, TlaValue

Json = Any


class MappingError(ValueError):
    """A JSON value does not fit the type the spec declares for it."""


@dataclass(frozen=True, slots=True)
class Ids:
    """How server and client ids are written in TLA+ for one spec."""

    servers: tuple[int, ...]
    clients: tuple[int, ...] = ()
    server_prefix: str | None = None  # None: ints; "s": model values s1, s2, ...
    client_prefix: str = "c"

    def server(self, n: int) -> str:
        return str(n) if self.server_prefix is None else f"{self.server_prefix}{n}"

    def client(self, n: int) -> str:
        return f"{self.client_prefix}{n}"

    def model_values(self) -> list[str]:
        out = [] if self.server_prefix is None else [self.server(n) for n in self.servers]
        return out + [self.client(n) for n in self.clients]


def _num(v: TlaValue, prefix: str | None) -> int:
    if isinstance(v, int) and not isinstance(v, bool):
        return v
    if isinstance(v, ModelValue) and prefix and v.name.startswith(prefix):
        return int(v.name[len(prefix) :])
    raise MappingError(f"not an id: {v!r}")


def _is_int(v: Json) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _seq_items(v: TlaValue) -> list[TlaValue]:
    if isinstance(v, tuple):
        return list(v)
    if isinstance(v, TlaFn):  # a function on 1..n printed as pairs
        return [val for _, val in sorted(v.pairs, key=lambda p: _num(p[0], None))]
    raise MappingError(f"not a sequence: {v!r}")


class T:
    """A type of the mapping."""

    name = "?"

    def to_tla(self, v: Json, ids: Ids) -> str:
        raise NotImplementedError

    def constrain(self, lhs: str, v: Json, ids: Ids) -> list[str]:
        return [f"{lhs} = {self.to_tla(v, ids)}"]

    def from_tla(self, v: TlaValue, ids: Ids) -> Json:
        raise NotImplementedError

    def keys(self, ids: Ids) -> list[Json]:
        raise MappingError(f"{self.name} is not a finite key type")

    def key_from_json(self, k: str) -> Json:
        return k

    def __repr__(self) -> str:
        return self.name


class _Int(T):
    name = "Int"

    def to_tla(self, v: Json, ids: Ids) -> str:
        if not _is_int(v):
            raise MappingError(f"expected an int, got {v!r}")
        return str(v)

    def from_tla(self, v: TlaValue, ids: Ids) -> Json:
        if not _is_int(v):
            raise MappingError(f"expected an int, got {v!r}")
        return v

    def key_from_json(self, k: str) -> Json:
        return int(k)


class _Bool(T):
    name = "Bool"

    def to_tla(self, v: Json, ids: Ids) -> str:
        if not isinstance(v, bool):
            raise MappingError(f"expected true/false, got {v!r}")
        return "TRUE" if v else "FALSE"

    def from_tla(self, v: TlaValue, ids: Ids) -> Json:
        if not isinstance(v, bool):
            raise MappingError(f"expected a boolean, got {v!r}")
        return v


def tla_string(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


class _Str(T):
    name = "Str"

    def to_tla(self, v: Json, ids: Ids) -> str:
        if not isinstance(v, str):
            raise MappingError(f"expected a string, got {v!r}")
        return tla_string(v)

    def from_tla(self, v: TlaValue, ids: Ids) -> Json:
        if not isinstance(v, str):
            raise MappingError(f"expected a string, got {v!r}")
        return v


class _Sid(T):
    name = "Sid"

    def to_tla(self, v: Json, ids: Ids) -> str:
        if not _is_int(v) or v not in ids.servers:
            raise MappingError(f"expected a server id in {list(ids.servers)}, got {v!r}")
        return ids.server(v)

    def from_tla(self, v: TlaValue, ids: Ids) -> Json:
        return _num(v, ids.server_prefix)

    def keys(self, ids: Ids) -> list[Json]:
        return list(ids.servers)

    def key_from_json(self, k: str) -> Json:
        return int(k)


class _Cid(T):
    name = "Cid"

    def to_tla(self, v: Json, ids: Ids) -> str:
        if not _is_int(v) or v not in ids.clients:
            raise MappingError(f"expected a client id in {list(ids.clients)}, got {v!r}")
        return ids.client(v)

    def from_tla(self, v: TlaValue, ids: Ids) -> Json:
        return _num(v, ids.client_prefix)

    def keys(self, ids: Ids) -> list[Json]:
        return list(ids.clients)

    def key_from_json(self, k: str) -> Json:
        return int(k)


Int: T = _Int()
Bool: T = _Bool()
Str: T = _Str()
Sid: T = _Sid()
Cid: T = _Cid()


@dataclass(repr=False)
class OrNone(T):
    """An id or the spec's "none" string (JSON null or "none")."""

    inner: T
    none: str = "none"

    def __post_init__(self) -> None:
        self.name = f"{self.inner.name}|{self.none!r}"

    def to_tla(self, v: Json, ids: Ids) -> str:
        if v is None or v == self.none:
            return tla_string(self.none)
        return self.inner.to_tla(v, ids)

    def from_tla(self, v: TlaValue, ids: Ids) -> Json:
        return self.none if v == self.none else self.inner.from_tla(v, ids)


@dataclass(repr=False)
class Tuple(T):
    items: tuple[T, ...]

    def __post_init__(self) -> None:
        self.name = "<<" + ", ".join(t.name for t in self.items) + ">>"

    def to_tla(self, v: Json, ids: Ids) -> str:
        if not isinstance(v, list) or len(v) != len(self.items):
            raise MappingError(f"expected a list of {len(self.items)} for {self.name}, got {v!r}")
        return "<<" + ", ".join(t.to_tla(x, ids) for t, x in zip(self.items, v, strict=True)) + ">>"

    def from_tla(self, v: TlaValue, ids: Ids) -> Json:
        xs = _seq_items(v)
        return [t.from_tla(x, ids) for t, x in zip(self.items, xs, strict=True)]


class _Zxid(T):
    """<<epoch, counter>>; JSON [epoch, counter] or ZooKeeper's 64-bit int epoch<<32|counter."""

    name = "Zxid"

    def to_tla(self, v: Json, ids: Ids) -> str:
        if _is_int(v):
            return f"<<{v >> 32}, {v & 0xFFFFFFFF}>>"
        return Tuple((Int, Int)).to_tla(v, ids)

    def from_tla(self, v: TlaValue, ids: Ids) -> Json:
        return Tuple((Int, Int)).from_tla(v, ids)


Zxid: T = _Zxid()


@dataclass(repr=False)
class Seq(T):
    item: T

    def __post_init__(self) -> None:
        self.name = f"Seq({self.item.name})"

    def to_tla(self, v: Json, ids: Ids) -> str:
        if not isinstance(v, list):
            raise MappingError(f"expected a list for {self.name}, got {v!r}")
        return "<<" + ", ".join(self.item.to_tla(x, ids) for x in v) + ">>"

    def constrain(self, lhs: str, v: Json, ids: Ids) -> list[str]:
        if _is_int(v):  # only the length is known
            return [f"Len({lhs}) = {v}"]
        if isinstance(v, dict):
            return self._constrain_kept(lhs, v, ids)
        if not isinstance(v, list):
            raise MappingError(f"expected a list (or a length) for {self.name}, got {v!r}")
        out = [f"Len({lhs}) = {len(v)}"]
        for k, x in enumerate(v, start=1):
            out += self.item.constrain(f"{lhs}[{k}]", x, ids)
        return out

    def _constrain_kept(self, lhs: str, v: dict[str, Json], ids: Ids) -> list[str]:
        """`{"keep": p, "tail": [...]}` (a step's record): the first p elements are those of
        the state before the step, then `tail`. Exactly the full list's constraints when the
        previous record gave the full list, in O(len(tail)) text (long real runs)."""
        keep, tail = v.get("keep"), v.get("tail")
        if set(v) != {"keep", "tail"} or not _is_int(keep) or not isinstance(tail, list):
            raise MappingError(f'expected {{"keep": n, "tail": [...]}} for {self.name}, got {v!r}')
        assert isinstance(keep, int)
        if "'" not in lhs:
            raise MappingError(f'"keep" needs a state before the step ({self.name} of {lhs})')
        before = lhs.replace("'", "")
        out = [f"Len({lhs}) = {keep + len(tail)}"]
        if keep > 0:
            out.append(f"Len({before}) >= {keep}")
            out.append(f"SubSeq({lhs}, 1, {keep}) = SubSeq({before}, 1, {keep})")
        for k, x in enumerate(tail, start=keep + 1):
            out += self.item.constrain(f"{lhs}[{k}]", x, ids)
        return out

    def from_tla(self, v: TlaValue, ids: Ids) -> Json:
        return [self.item.from_tla(x, ids) for x in _seq_items(v)]


def _sort_key(x: Json) -> str:
    return json.dumps(x, sort_keys=True)


@dataclass(repr=False)
class Set(T):
    """JSON list in any order (written sorted)."""

    item: T

    def __post_init__(self) -> None:
        self.name = f"Set({self.item.name})"

    def to_tla(self, v: Json, ids: Ids) -> str:
        if not isinstance(v, list):
            raise MappingError(f"expected a list for {self.name}, got {v!r}")
        return "{" + ", ".join(self.item.to_tla(x, ids) for x in v) + "}"

    def constrain(self, lhs: str, v: Json, ids: Ids) -> list[str]:
        if isinstance(self.item, _Txn) and isinstance(v, list) and any(_is_zxid_only(x) for x in v):
            zs = ", ".join(Zxid.to_tla(x, ids) for x in v)
            return [f"{{x.zxid : x \\in {lhs}}} = {{{zs}}}"]
        if _is_int(v):
            return [f"Cardinality({lhs}) = {v}"]
        return [f"{lhs} = {self.to_tla(v, ids)}"]

    def from_tla(self, v: TlaValue, ids: Ids) -> Json:
        if isinstance(v, tuple) and not v:
            return []
        if not isinstance(v, TlaSet):
            raise MappingError(f"expected a set, got {v!r}")
        return sorted((self.item.from_tla(x, ids) for x in v.items), key=_sort_key)


@dataclass(repr=False)
class Rec(T):
    """A record. `exact`: compare the whole value; else only the fields given."""

    fields: dict[str, T]
    exact: bool = True
    name: str = "Rec"

    def to_tla(self, v: Json, ids: Ids) -> str:
        if not isinstance(v, dict):
            raise MappingError(f"expected an object for {self.name}, got {v!r}")
        parts = []
        for k, x in v.items():
            if k not in self.fields:
                raise MappingError(f"{self.name} has no field {k!r}")
            parts.append(f"{k} |-> {self.fields[k].to_tla(x, ids)}")
        return "[" + ", ".join(parts) + "]"

    def constrain(self, lhs: str, v: Json, ids: Ids) -> list[str]:
        if self.exact:
            return [f"{lhs} = {self.to_tla(v, ids)}"]
        if not isinstance(v, dict):
            raise MappingError(f"expected an object for {self.name}, got {v!r}")
        out = []
        for k, x in v.items():
            if k not in self.fields:
                raise MappingError(f"{self.name} has no field {k!r}")
            out += self.fields[k].constrain(f"{lhs}.{k}", x, ids)
        return out

    def from_tla(self, v: TlaValue, ids: Ids) -> Json:
        if not isinstance(v, dict):
            raise MappingError(f"expected a record, got {v!r}")
        return {k: self.fields[k].from_tla(x, ids) for k, x in v.items()}


def _is_zxid_only(v: Json) -> bool:
    return _is_int(v) or (isinstance(v, list) and len(v) == 2)


class _Txn(T):
    """Zab's txn [zxid, v]; JSON {"zxid": z, "v": sid}, or just the zxid (compared by zxid)."""

    name = "Txn"
    full = Rec({"zxid": Zxid, "v": Sid}, name="Txn")

    def to_tla(self, v: Json, ids: Ids) -> str:
        if _is_zxid_only(v):
            raise MappingError("a txn given by its zxid only cannot be rebuilt as a value here")
        return self.full.to_tla(v, ids)

    def constrain(self, lhs: str, v: Json, ids: Ids) -> list[str]:
        if _is_zxid_only(v):
            return [f"{lhs}.zxid = {Zxid.to_tla(v, ids)}"]
        return [f"{lhs} = {self.full.to_tla(v, ids)}"]

    def from_tla(self, v: TlaValue, ids: Ids) -> Json:
        return self.full.from_tla(v, ids)


Txn: T = _Txn()


@dataclass(repr=False)
class Fn(T):
    """A function, JSON object keyed by the key's JSON text ("1", "2"...).

    `default`: the TLA+ value of keys the JSON leaves out (else they stay free);
    `exact_domain`: the JSON keys are the whole domain (for functions on a growing domain).
    """

    key: T
    value: T
    default: str | None = None
    default_json: Json = None
    exact_domain: bool = False

    def __post_init__(self) -> None:
        self.name = f"Fn({self.key.name} -> {self.value.name})"

    def _items(self, v: Json) -> list[tuple[Json, Json]]:
        if isinstance(v, dict):
            return [(self.key.key_from_json(k), x) for k, x in v.items()]
        raise MappingError(f"expected an object keyed by {self.key.name} for {self.name}")

    def to_tla(self, v: Json, ids: Ids) -> str:
        items = dict(self._items(v))
        if self.default is not None and not self.exact_domain:
            for k in self.key.keys(ids):
                items.setdefault(k, None)
        if not items:
            return "<<>>"
        parts = []
        for k, x in items.items():
            val = self.default if x is None and self.default else self.value.to_tla(x, ids)
            parts.append(f"{self.key.to_tla(k, ids)} :> {val}")
        return "(" + " @@ ".join(parts) + ")"

    def constrain(self, lhs: str, v: Json, ids: Ids) -> list[str]:
        items = self._items(v)
        out: list[str] = []
        if self.exact_domain:
            dom = ", ".join(self.key.to_tla(k, ids) for k, _ in items)
            out.append(f"DOMAIN {lhs} = {{{dom}}}")
        for k, x in items:
            out += self.value.constrain(f"{lhs}[{self.key.to_tla(k, ids)}]", x, ids)
        if self.default is not None and not self.exact_domain:
            given = {k for k, _ in items}
            out += [
                f"{lhs}[{self.key.to_tla(k, ids)}] = {self.default}"
                for k in self.key.keys(ids)
                if k not in given
            ]
        return out

    def from_tla(self, v: TlaValue, ids: Ids) -> Json:
        if isinstance(v, tuple):
            pairs: list[tuple[TlaValue, TlaValue]] = [(i + 1, x) for i, x in enumerate(v)]
        elif isinstance(v, TlaFn):
            pairs = list(v.pairs)
        else:
            raise MappingError(f"expected a function, got {v!r}")
        out: dict[str, Json] = {}
        for k, x in pairs:
            val = self.value.from_tla(x, ids)
            if self.default is not None and val == self.default_json:
                continue
            out[str(self.key.from_tla(k, ids))] = val
        return out


# --------------------------------------------------------------------------- per-spec tables


@dataclass(frozen=True)
class Param:
    name: str
    type: T


@dataclass(frozen=True)
class SpecMap:
    """Everything the translator knows about one spec."""

    spec: str  # the spec module, e.g. "Zab"
    wrapper: str  # the hand-written trace module in spec/trace/, e.g. "TraceZab"
    server_prefix: str | None
    variables: dict[str, T]
    actions: dict[str, tuple[Param, ...]]
    # CONSTANT name -> (type, default JSON or None: required unless `derive` finds it)
    constants: dict[str, tuple[T, Json]]
    # fills in constants the header leaves out, from the records (e.g. FLE's InitZxid)
    derive: Callable[[Sequence[Any], Ids], dict[str, Json]] | None = None
    # implementation records that are not spec steps (skipped, counted)
    skip: frozenset[str] = field(default_factory=lambda: frozenset({"ignored"}))
    has_view: bool = True  # the spec defines `view` (all variables but lastAction)

    def ids(self, servers: Sequence[int], clients: Sequence[int] = ()) -> Ids:
        return Ids(tuple(servers), tuple(clients), self.server_prefix)

    def per_node(self, var: str) -> bool:
        t = self.variables[var]
        return isinstance(t, Fn) and isinstance(t.key, _Sid)


# FastLeaderElection ---------------------------------------------------------------

_NIL = '[leader |-> 0, zxid |-> 0, epoch |-> 0, round |-> 0, state |-> "NONE"]'
_NIL_JSON = {"leader": 0, "zxid": 0, "epoch": 0, "round": 0, "state": "NONE"}
_VOTE = Rec({"leader": Int, "zxid": Int, "epoch": Int}, name="Vote")
_NOTIF = Rec({"leader": Int, "zxid": Int, "epoch": Int, "round": Int, "state": Str}, name="Notif")


def _fle_derive(records: Sequence[Any], ids: Ids) -> dict[str, Json]:
    """InitZxid/InitEpoch from the leading Init records' currentVote (the self vote)."""
    zx: dict[str, Json] = {}
    ep: dict[str, Json] = {}
    for r in records:
        if r.action != "Init":
            break
        cv = r.post.get("currentVote")
        if r.node is not None and isinstance(cv, dict) and "zxid" in cv and "epoch" in cv:
            zx[str(r.node)], ep[str(r.node)] = cv["zxid"], cv["epoch"]
        elif r.node is None and isinstance(cv, dict):
            for k, v in cv.items():
                if isinstance(v, dict) and "zxid" in v and "epoch" in v:
                    zx[str(k)], ep[str(k)] = v["zxid"], v["epoch"]
    out: dict[str, Json] = {}
    if len(zx) == len(ids.servers):
        out["InitZxid"], out["InitEpoch"] = zx, ep
    return out


_I, _J = Param("i", Sid), Param("j", Sid)

FLE = SpecMap(
    spec="FastLeaderElection",
    wrapper="TraceFLE",
    server_prefix=None,
    variables={
        "state": Fn(Sid, Str),
        "logicalClock": Fn(Sid, Int),
        "currentVote": Fn(Sid, _VOTE),
        "recvVotes": Fn(Sid, Fn(Sid, _NOTIF, _NIL, _NIL_JSON)),
        "outOfElection": Fn(Sid, Fn(Sid, _NOTIF, _NIL, _NIL_JSON)),
        "waiting": Fn(Sid, Bool),
        "msgs": Fn(Sid, Fn(Sid, Seq(_NOTIF))),
        "nRestarts": Int,
        "nResends": Int,
        "prevVote": Fn(Sid, Rec({"vote": _VOTE, "round": Int}, name="PrevVote")),
    },
    actions={
        "FLEHandleNotmsg": (_I, _J),
        "FLEFinalizeWaitNotmsg": (_I, _J),
        "FLEReplyDecided": (_I, _J),
        "FLEWaitNewNotmsg": (_I,),
        "FLERestart": (_I,),
        "FLENotmsgTimeout": (_I,),
    },
    constants={
        "InitZxid": (Fn(Sid, Int), None),
        "InitEpoch": (Fn(Sid, Int), None),
        "MaxRestarts": (Int, 100),
        # a definition in the spec (0: no resends), overridden like a constant
        "MaxResends": (Int, 100),
        "BUG_VOTE_ORDER_1419": (Bool, False),
        "BUG_NO_FINALIZE_WAIT": (Bool, False),
    },
    derive=_fle_derive,
)

# Zab ------------------------------------------------------------------------------

_MSG = Rec(
    {
        "mtype": Str,
        "epoch": Int,
        "zxid": Zxid,
        "fresh": Bool,
        "txn": Txn,
        "txns": Seq(Txn),
    },
    name="Msg",
)
_ZAB_BUGS = [
    "BUG_ACK_BEFORE_FSYNC",
    "BUG_ACKLD_BEFORE_FSYNC",
    "BUG_EPOCH_BEFORE_LOG",
    "BUG_REPORT_PROCESSED_ZXID",
    "BUG_COUNT_STALE_ACKEPOCH",
    "BUG_COMMIT_NO_QUORUM",
    "BUG_LOCAL_WRITE",
    "BUG_LOSSY_LINK",
]
_IJ = (_I, _J)
_Ii = (_I,)

ZAB = SpecMap(
    spec="Zab",
    wrapper="TraceZab",
    server_prefix="s",
    variables={
        "state": Fn(Sid, Str),
        "zabState": Fn(Sid, Str),
        "online": Fn(Sid, Bool),
        "leaderOf": Fn(Sid, OrNone(Sid)),
        "acceptedEpoch": Fn(Sid, Int),
        "currentEpoch": Fn(Sid, Int),
        "history": Fn(Sid, Seq(Txn)),
        "disk": Fn(Sid, Seq(Txn)),
        "lastCommitted": Fn(Sid, Int),
        "nlPhase": Fn(Sid, Str),
        "cepochRecv": Fn(Sid, Set(Tuple((Sid, Int)))),
        "ackeRecv": Fn(Sid, Set(Tuple((Sid, Zxid, Bool)))),
        "ackldRecv": Fn(Sid, Set(Sid)),
        "forwarding": Fn(Sid, Set(Sid)),
        "acks": Fn(Sid, Set(Tuple((Sid, Zxid)))),
        "msgs": Fn(Sid, Fn(Sid, Seq(_MSG))),
        "partition": Set(Set(Sid)),
        "proposed": Set(Txn),
        "committed": Set(Txn),
        "epochLeader": Set(Tuple((Int, Sid))),
        "nCrashes": Int,
        "nPartitions": Int,
    },
    actions={
        "ElectLeader": (_I, Param("Q", Set(Sid))),
        "FollowLeader": _IJ,
        "LeaderProcessFOLLOWERINFO": _IJ,
        "FollowerProcessLEADERINFO": _IJ,
        "LeaderProcessACKEPOCH": _IJ,
        "LeaderSyncFollower": _IJ,
        "FollowerProcessSyncMessage": _IJ,
        "FollowerProcessNEWLEADER": _IJ,
        "FollowerUpdateCurrentEpoch": _Ii,
        "FollowerReplyACKLD": _Ii,
        "LeaderProcessACKLD": _IJ,
        "FollowerProcessUPTODATE": _IJ,
        "LeaderProcessRequest": _Ii,
        "FollowerProcessPROPOSAL": _IJ,
        "NodeFsyncLog": _Ii,
        "LeaderProcessACK": _IJ,
        "FollowerProcessCOMMIT": _IJ,
        "FollowerProcessRequest": _Ii,
        "NodeCrash": _Ii,
        "NodeStart": _Ii,
        "PartitionStart": _IJ,
        "PartitionRecover": _IJ,
        "LeaderTimeout": _Ii,
        "LeaderInitLimitTimeout": _Ii,
        "LoseMessage": _IJ,
    },
    constants={
        "MaxEpoch": (Int, 100),
        "MaxTxns": (Int, 100),
        "MaxCrashes": (Int, 100),
        "MaxPartitions": (Int, 100),
        "SnapAllowed": (Bool, True),
        # a definition in the spec (FALSE: not explored by the models), overridden like a
        # constant: an implementation's leader may give up before BROADCAST
        "InitLimitTimeouts": (Bool, True),
        **{b: (Bool, False) for b in _ZAB_BUGS},
    },
)

# Sessions -------------------------------------------------------------------------

_C, _S = Param("c", Cid), Param("s", Sid)
SESSIONS = SpecMap(
    spec="Sessions",
    wrapper="TraceSessions",
    server_prefix="s",
    variables={
        "log": Seq(
            Rec({"type": Str, "sid": Int, "conn": Int, "path": Str}, exact=True, name="LogTxn")
        ),
        "applied": Fn(Sid, Int),
        "tracker": Set(Int),
        "owner": Fn(Int, Int, exact_domain=True),
        "cstate": Fn(Cid, Str),
        "csid": Fn(Cid, Int),
        "cserver": Fn(Cid, OrNone(Sid)),
        "cconn": Fn(Cid, Int),
        "lastZxidSeen": Fn(Cid, Int),
        "cwatch": Fn(Cid, Int),
        "watches": Fn(Sid, Set(Cid)),
        "pending": Set(Rec({"sid": Int, "conn": Int, "op": Str}, name="Request")),
        "nConns": Int,
        "conns": Set(Rec({"id": Int, "sid": Int, "at": Int}, name="Conn")),
    },
    actions={
        "ClientCreateSession": (_C, _S),
        "ServerApply": (_S,),
        "ClientGetDataWatch": (_C,),
        "ClientCreateEphemeral": (_C,),
        "ClientClose": (_C,),
        "LeaderProcessRequest": (Param("sid", Int), Param("conn", Int), Param("op", Str)),
        "LeaderExpireSession": (Param("sid", Int),),
        "ConnectionLoss": (_C,),
        "ClientReconnect": (_C, _S),
    },
    constants={
        "MaxLog": (Int, 100),
        "MaxConns": (Int, 100),
        "BUG_NO_ZXID_CHECK": (Bool, False),
        "BUG_REVIVE_EXPIRED": (Bool, False),
        "BUG_CLOSE_KEEPS_EPHEMERALS": (Bool, False),
        "BUG_NO_OWNER_CHECK": (Bool, False),
        "BUG_SETWATCHES_IGNORES_ZXID": (Bool, False),
    },
)

SPEC_MAPS: dict[str, SpecMap] = {m.spec: m for m in (FLE, ZAB, SESSIONS)}
