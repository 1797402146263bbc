"""Jepsen-style client histories as NDJSON (format in docs/chaos.md and STYLE.md "Records").

Rules:
- line 1 is a header ``{"kind":"header","schema":1,...}``; every other line is one event;
- every operation is an ``invoke`` followed (later, by the same process) by exactly one of
  ``ok`` (the server replied success), ``fail`` (the server replied an error, so the operation is
  known to have had no effect other than what the error says) or ``info`` (connection loss,
  timeout, session expiry: the operation may or may not have happened, now or later);
- a process has at most one operation outstanding; after an ``info`` the worker continues as a new
  process id, because the lost operation may still take effect after its next one (Jepsen's rule);
- ``time`` is ``time.monotonic_ns()`` of the recording host, in nanoseconds: only order and
  differences matter, and all client processes of one run share one host clock.

Operation vocabulary (``f``):

======== ===================================== ==============================================
f        invoke carries                         ok carries
======== ===================================== ==============================================
read     path                                   value (null = no node), version (-1 = none)
write    path, value (setData version -1)       version (the new dataVersion)
cas      path, value, version (expected)        version (the new dataVersion)
create   path, value                            version 0
delete   path, version (-1 = any)               —
sync     path                                   —
enqueue  path (parent), value                   name (the sequential child created), zxid
final-read  path (after heal, sync + getData)   value, version
final-list  path (after heal, sync + getChildren)  value (JSON list of child names)
======== ===================================== ==============================================

``fail`` carries ``error`` (``NoNode``, ``NodeExists``, ``BadVersion`` …). Every completion may
carry ``zxid`` (the txn zxid the op created or observed: mzxid/czxid) and ``seen_zxid`` (the zxid in
the reply header, i.e. how far this session's server had got) and ``session`` (hex session id).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal, TextIO, cast

__all__ = [
    "EVENT_TYPES",
    "WRITE_FS",
    "Event",
    "EventType",
    "History",
    "HistoryError",
    "HistoryWriter",
    "Op",
    "complete_ops",
    "read_history",
]

EventType = Literal["invoke", "ok", "fail", "info"]
EVENT_TYPES: tuple[EventType, ...] = ("invoke", "ok", "fail", "info")
WRITE_FS = frozenset({"write", "cas", "create", "delete"})


class HistoryError(ValueError):
    """The history file is malformed (not a checker verdict: the input cannot be judged)."""


@dataclass(frozen=True, slots=True)
class Event:
    index: int
    process: int
    type: EventType
    f: str
    path: str
    time: int
    value: str | None = None
    version: int | None = None
    error: str | None = None
    name: str | None = None
    zxid: int | None = None
    seen_zxid: int | None = None
    session: str | None = None

    def to_json(self) -> str:
        d: dict[str, Any] = {
            "index": self.index,
            "process": self.process,
            "type": self.type,
            "f": self.f,
            "path": self.path,
            "value": self.value,
            "version": self.version,
            "time": self.time,
        }
        for k in ("error", "name", "zxid", "seen_zxid", "session"):
            v = getattr(self, k)
            if v is not None:
                d[k] = v
        return json.dumps(d, separators=(",", ":"))

    @staticmethod
    def from_json(obj: dict[str, Any]) -> Event:
        try:
            t = obj["type"]
            if t not in EVENT_TYPES:
                raise HistoryError(f"bad event type {t!r}")

            def opt_int(k: str) -> int | None:
                v = obj.get(k)
                return None if v is None else int(v)

            def opt_str(k: str) -> str | None:
                v = obj.get(k)
                return None if v is None else str(v)

            return Event(
                index=int(obj["index"]),
                process=int(obj["process"]),
                type=cast(EventType, t),
                f=str(obj["f"]),
                path=str(obj.get("path", "")),
                time=int(obj["time"]),
                value=opt_str("value"),
                version=opt_int("version"),
                error=opt_str("error"),
                name=opt_str("name"),
                zxid=opt_int("zxid"),
                seen_zxid=opt_int("seen_zxid"),
                session=opt_str("session"),
            )
        except (KeyError, TypeError, ValueError) as e:
            if isinstance(e, HistoryError):
                raise
            raise HistoryError(f"bad event {obj!r}: {e}") from e


@dataclass(slots=True)
class History:
    header: dict[str, Any]
    events: list[Event]


def read_history(path: Path | str) -> History:
    header: dict[str, Any] = {"kind": "header", "schema": 1}
    events: list[Event] = []
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            line = line.strip()
            if not line:
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                # A run killed mid-write leaves a torn last line; anything else is corruption.
                if lineno > 1 and not fh.read().strip():
                    break
                raise HistoryError(f"line {lineno}: {e}") from e
            if not isinstance(obj, dict):
                raise HistoryError(f"line {lineno}: not an object")
            if obj.get("kind") == "header":
                header = obj
                continue
            events.append(Event.from_json(obj))
    return History(header=header, events=events)


class HistoryWriter:
    """Appends events to an NDJSON file; thread-safe; indexes are assigned here, in file order.

    Client *processes* do not share one writer: each writes its own file and the harness merges
    them by time (``merge_files``), renumbering indexes.
    """

    def __init__(self, out: TextIO | IO[str], header: dict[str, Any] | None = None) -> None:
        self._out = out
        self._lock = threading.Lock()
        self._next = 0
        if header is not None:
            out.write(json.dumps({"kind": "header", "schema": 1, **header}) + "\n")
            out.flush()

    def write(self, e: Event) -> Event:
        with self._lock:
            e2 = Event(**{**_event_fields(e), "index": self._next})
            self._next += 1
            self._out.write(e2.to_json() + "\n")
            self._out.flush()
            return e2


def _event_fields(e: Event) -> dict[str, Any]:
    return {k: getattr(e, k) for k in Event.__slots__}


def merge_files(parts: Iterable[Path], out_path: Path, header: dict[str, Any]) -> int:
    """Merge per-process event files into one history ordered by (time, process); returns count."""
    keyed: list[tuple[int, int, int, Event]] = []
    for file_no, p in enumerate(parts):
        if p.exists():
            for line_no, e in enumerate(read_history(p).events):
                keyed.append((e.time, file_no, line_no, e))
    # Ties in time keep each file's own order: one process's events live in one file, in the
    # order it recorded them; across files equal times just mean concurrent.
    keyed.sort(key=lambda k: (k[0], k[1], k[2]))
    events = [k[3] for k in keyed]
    with open(out_path, "w", encoding="utf-8") as fh:
        w = HistoryWriter(fh, header)
        for e in events:
            w.write(e)
    return len(events)


@dataclass(slots=True)
class Op:
    """One operation: an invoke and its completion (``status`` "info" if none was recorded)."""

    id: int
    process: int
    f: str
    path: str
    call: int
    ret: int | None  # None: never returned (info) — open-ended
    status: Literal["ok", "fail", "info"]
    value: str | None = None  # written value (invoke)
    exp_version: int | None = None  # expected version (cas/delete invoke)
    out_value: str | None = None  # read value (ok)
    out_version: int | None = None  # version in the reply (ok)
    error: str | None = None
    name: str | None = None
    zxid: int | None = None
    seen_zxid: int | None = None
    session: str | None = None
    invoke_index: int = -1
    complete_index: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        args = self.path
        if self.f in ("write", "create", "enqueue"):
            args += f" := {self.value!r}"
        elif self.f == "cas":
            args += f" := {self.value!r} if version == {self.exp_version}"
        elif self.f == "delete" and self.exp_version not in (None, -1):
            args += f" if version == {self.exp_version}"
        if self.status == "ok":
            if self.f in ("read", "final-read"):
                res = (
                    "no node"
                    if self.out_value is None
                    else f"{self.out_value!r} v{self.out_version}"
                )
            elif self.f == "enqueue":
                res = str(self.name)
            elif self.out_version is not None and self.f != "delete":
                res = f"ok v{self.out_version}"
            else:
                res = "ok"
        elif self.status == "fail":
            res = f"error {self.error}"
        else:
            res = "unknown (info)" + (f": {self.error}" if self.error else "")
        return f"p{self.process} {self.f}({args}) -> {res}"


def complete_ops(events: Iterable[Event]) -> list[Op]:
    """Pair invokes with completions per process. A process with two outstanding invokes, or a
    completion without an invoke, is a malformed history."""
    pending: dict[int, Op] = {}
    ops: list[Op] = []
    for e in events:
        if e.type == "invoke":
            if e.process in pending:
                raise HistoryError(
                    f"process {e.process} invoked event {e.index} with op "
                    f"{pending[e.process].invoke_index} still outstanding"
                )
            op = Op(
                id=len(ops),
                process=e.process,
                f=e.f,
                path=e.path,
                call=e.time,
                ret=None,
                status="info",
                value=e.value,
                exp_version=e.version,
                invoke_index=e.index,
                session=e.session,
            )
            pending[e.process] = op
            ops.append(op)
            continue
        op2 = pending.pop(e.process, None)
        if op2 is None:
            raise HistoryError(f"event {e.index}: {e.type} for process {e.process} without invoke")
        if e.f != op2.f:
            raise HistoryError(f"event {e.index}: completes {e.f} but invoke was {op2.f}")
        op2.status = e.type
        op2.complete_index = e.index
        op2.error = e.error
        op2.zxid = e.zxid
        op2.seen_zxid = e.seen_zxid
        op2.session = e.session or op2.session
        if e.type == "info":
            op2.ret = None  # may take effect any time after its call
        else:
            op2.ret = e.time
            op2.out_value = e.value
            op2.out_version = e.version
            op2.name = e.name
    return ops


def iter_lines(path: Path) -> Iterator[str]:
    with open(path, encoding="utf-8") as fh:
        yield from fh


class HistoryBuilder:
    """Builds histories from whole operations (tests, benchmarks, generated histories).

    ``add`` takes an op's call and return times; events are ordered by time when built, with
    completions before invokes at equal times only within one process.
    """

    def __init__(self, header: dict[str, Any] | None = None) -> None:
        self.header: dict[str, Any] = {"kind": "header", "schema": 1, **(header or {})}
        self._events: list[tuple[int, int, int, Event]] = []
        self._seq = 0

    def add(
        self,
        process: int,
        f: str,
        path: str,
        call: int,
        ret: int | None,
        status: Literal["ok", "fail", "info"] = "ok",
        *,
        value: str | None = None,
        version: int | None = None,
        out_value: str | None = None,
        out_version: int | None = None,
        error: str | None = None,
        name: str | None = None,
        zxid: int | None = None,
        seen_zxid: int | None = None,
        session: str | None = None,
    ) -> HistoryBuilder:
        inv = Event(
            index=-1,
            process=process,
            type="invoke",
            f=f,
            path=path,
            time=call,
            value=value,
            version=version,
            session=session,
        )
        self._push(call, 1, inv)
        if status == "info" and ret is None:
            return self
        done = Event(
            index=-1,
            process=process,
            type=status,
            f=f,
            path=path,
            time=ret if ret is not None else call,
            value=out_value,
            version=out_version,
            error=error,
            name=name,
            zxid=zxid,
            seen_zxid=seen_zxid,
            session=session,
        )
        self._push(done.time, 0, done)
        return self

    def _push(self, t: int, kind: int, e: Event) -> None:
        self._events.append((t, kind, self._seq, e))
        self._seq += 1

    def build(self) -> History:
        ordered = sorted(self._events, key=lambda x: (x[0], x[1], x[2]))
        events = [
            Event(**{**_event_fields(e), "index": i}) for i, (_, _, _, e) in enumerate(ordered)
        ]
        return History(header=dict(self.header), events=events)

    def write(self, path: Path) -> Path:
        h = self.build()
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(json.dumps(h.header) + "\n")
            for e in h.events:
                fh.write(e.to_json() + "\n")
        return path
