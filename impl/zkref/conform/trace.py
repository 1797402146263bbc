"""Implementation traces as NDJSON: reading, header validation, writing.

Rules:
- First line: a header `{"kind":"header","schema":1,"spec":...,"servers":[...],...}`; then one
  record per spec action, in the order the checker must consume them (a Lamport order when
  several processes contributed).
- A record is `{"seq","node","action","params","post"}`: `action` names the spec action taken,
  `params` its parameters (an object keyed by the spec's parameter names, or a list),
  `post` the spec variables after the step, keyed by the spec's variable names. Everything but
  `action` may be left out.
- Errors name the line (1-based) so a user can find the bad record.
- This module knows nothing about TLA+; `zkref.conform.tracecheck` maps values to TLA+.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SCHEMA = 1
SPECS = ("FastLeaderElection", "Zab", "Sessions")


class TraceFormatError(ValueError):
    """The file is not a well-formed trace; the message names the line."""


@dataclass(frozen=True, slots=True)
class Header:
    spec: str
    servers: tuple[int, ...]
    clients: tuple[int, ...] = ()
    # values for the spec's CONSTANTS (JSON, mapped per spec); missing ones get defaults
    constants: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)  # seed, source, ...: kept, not used

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": "header", "schema": SCHEMA, "spec": self.spec}
        out["servers"] = list(self.servers)
        if self.clients:
            out["clients"] = list(self.clients)
        if self.constants:
            out["constants"] = self.constants
        return out | self.extra


@dataclass(frozen=True, slots=True)
class Record:
    action: str
    line: int = 0  # line in the file (1-based), 0 when built in memory
    seq: int | None = None
    node: int | None = None
    params: dict[str, Any] | list[Any] | None = None
    post: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.seq is not None:
            out["seq"] = self.seq
        if self.node is not None:
            out["node"] = self.node
        out["action"] = self.action
        if self.params is not None:
            out["params"] = self.params
        out["post"] = self.post
        return out

    def where(self) -> str:
        parts = [f"line {self.line}"] if self.line else []
        if self.seq is not None:
            parts.append(f"seq {self.seq}")
        if self.node is not None:
            parts.append(f"node {self.node}")
        return ", ".join(parts)


@dataclass(frozen=True, slots=True)
class Trace:
    header: Header
    records: tuple[Record, ...]


def _ids(value: object, what: str, line: int) -> tuple[int, ...]:
    if not isinstance(value, list) or not all(
        isinstance(x, int) and not isinstance(x, bool) and x > 0 for x in value
    ):
        raise TraceFormatError(f"line {line}: header {what!r} must be a list of positive ints")
    if len(set(value)) != len(value):
        raise TraceFormatError(f"line {line}: header {what!r} has duplicates")
    return tuple(value)


def parse_header(obj: object, line: int = 1) -> Header:
    if not isinstance(obj, dict) or obj.get("kind") != "header":
        raise TraceFormatError(f'line {line}: the first line must be a header ("kind": "header")')
    if obj.get("schema") != SCHEMA:
        raise TraceFormatError(f"line {line}: unsupported schema {obj.get('schema')!r}")
    spec = obj.get("spec")
    if spec not in SPECS:
        raise TraceFormatError(f"line {line}: unknown spec {spec!r} (known: {', '.join(SPECS)})")
    if "servers" not in obj:
        raise TraceFormatError(f"line {line}: header lacks 'servers'")
    servers = _ids(obj["servers"], "servers", line)
    if not servers:
        raise TraceFormatError(f"line {line}: header 'servers' is empty")
    clients = _ids(obj.get("clients", []), "clients", line)
    constants = obj.get("constants", {})
    if not isinstance(constants, dict):
        raise TraceFormatError(f"line {line}: header 'constants' must be an object")
    known = {"kind", "schema", "spec", "servers", "clients", "constants"}
    extra = {k: v for k, v in obj.items() if k not in known}
    return Header(str(spec), servers, clients, constants, extra)


def parse_record(obj: object, line: int, servers: Iterable[int] = ()) -> Record:
    if not isinstance(obj, dict):
        raise TraceFormatError(f"line {line}: a record must be a JSON object")
    action = obj.get("action")
    if not isinstance(action, str) or not action:
        raise TraceFormatError(f"line {line}: record lacks an 'action' name")
    seq = obj.get("seq")
    if seq is not None and (not isinstance(seq, int) or isinstance(seq, bool)):
        raise TraceFormatError(f"line {line}: 'seq' must be an int")
    node = obj.get("node")
    if node is not None:
        if not isinstance(node, int) or isinstance(node, bool):
            raise TraceFormatError(f"line {line}: 'node' must be an int")
        known = set(servers)
        if known and node not in known:
            raise TraceFormatError(f"line {line}: node {node} is not in the header's servers")
    params = obj.get("params")
    if params is not None and not isinstance(params, (dict, list)):
        raise TraceFormatError(f"line {line}: 'params' must be an object or a list")
    post = obj.get("post", {})
    if post is None:
        post = {}
    if not isinstance(post, dict):
        raise TraceFormatError(f"line {line}: 'post' must be an object")
    return Record(action, line, seq, node, params, post)


def parse_lines(lines: Iterable[str]) -> Trace:
    """Parse NDJSON lines (blank lines are skipped)."""
    header: Header | None = None
    records: list[Record] = []
    for n, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as e:
            raise TraceFormatError(f"line {n}: not JSON ({e.msg})") from None
        if header is None:
            header = parse_header(obj, n)
        else:
            records.append(parse_record(obj, n, header.servers + header.clients))
    if header is None:
        raise TraceFormatError("empty trace: no header line")
    return Trace(header, tuple(records))


def read_trace(path: Path) -> Trace:
    try:
        text = path.read_text()
    except OSError as e:
        raise TraceFormatError(f"cannot read {path}: {e.strerror}") from None
    return parse_lines(text.splitlines())


def dump_lines(trace: Trace) -> list[str]:
    return [json.dumps(trace.header.to_json())] + [json.dumps(r.to_json()) for r in trace.records]


def write_trace(trace: Trace, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in dump_lines(trace)))
    return path
