"""Trace recording for one real ensemble member: its cores' spec actions as NDJSON, Lamport-stamped.

Enabled by the environment variable `ZKREF_TRACE_DIR` (`zkref ensemble --trace-dir DIR` and
`LocalEnsemble(trace_dir=...)` set it): member n appends to `DIR/member-n.ndjson`. Off, every
method here is a no-op and the wire bytes are exactly the untraced ones.

A member file (the input of `zkref trace merge`, see `zkref.conform.tracemerge`):
- `{"kind": "member", "schema": 1, "spec": "Zab", "sid": n, "servers": [voters],
  "observer": false}` once, first;
- per start of the process: `{"lamport": L, "node": n, "event": "start", "post": {...}}` (the
  peer's spec variables as loaded from disk);
- one record per `Trace` effect of the Zab cores: `{"lamport", "node", "action", "params",
  "post"}`, exactly what the simulator records (`zkref.sim.zab_cluster`);
- one event per role change the election causes (`StateChanged`): `"event": "LEADING"`,
  `"FOLLOWING"` (with `"leader"`) or `"LOOKING"`; the merger maps them to the spec's oracle
  actions (ElectLeader, FollowLeader) and to NodeCrash / PartitionStart;
- `{"event": "stop"}` when the member stops cleanly; a file whose last incarnation has no stop
  was killed.

Rules:
- the Lamport clock goes up by one per line written; it rides on every quorum packet and every
  election notification this member sends (a 12-byte trailer after the jute record,
  `quorum_codec.with_lamport`) and a receipt sets it to max(local, carried) + 1;
- the records of a list of effects are written before the list runs, so every packet the list
  sends carries a clock at least as large as the records of the actions that sent it (a
  receiver's records sort after them); the file is flushed per line, so a `kill -9` loses only
  the line being written;
- this module decides nothing about the protocol: it copies what the cores report.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, Final

from zkref.core.election.fle import Notification
from zkref.core.zab.effects import Effect, StateChanged, Trace
from zkref.core.zab.messages import QuorumPacket, ServerState, Txn
from zkref.core.zab.storage import HistoryView
from zkref.server.quorum_codec import (
    encode_notification,
    encode_packet,
    notification_lamport,
    packet_lamport,
    with_lamport,
)

TRACE_DIR_ENV: Final = "ZKREF_TRACE_DIR"
MEMBER_SCHEMA: Final = 1


def member_file(trace_dir: Path, sid: int) -> Path:
    return trace_dir / f"member-{sid}.ndjson"


def _json_default(o: object) -> object:
    if isinstance(o, Txn):
        return [o.epoch, o.counter]
    if isinstance(o, HistoryView):
        return o.tolist()
    if isinstance(o, (set, frozenset)):
        return sorted(o)
    return str(o)


def _last_lamport(path: Path) -> int:
    """The largest clock in an existing member file (a restarted member continues from it)."""
    best = 0
    try:
        with open(path) as f:
            for line in f:
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line cut by kill -9
                if isinstance(obj, dict) and isinstance(obj.get("lamport"), int):
                    best = max(best, obj["lamport"])
    except FileNotFoundError:
        pass
    return best


class MemberTracer:
    """The recorder of one member; `MemberTracer.off()` when tracing is disabled."""

    def __init__(self, out: IO[str] | None, sid: int, clock: int = 0) -> None:
        self.out = out
        self.sid = sid
        self.clock = clock

    @classmethod
    def off(cls) -> MemberTracer:
        return cls(None, 0)

    @classmethod
    def from_env(cls, sid: int, servers: list[int], post: dict[str, Any]) -> MemberTracer:
        d = os.environ.get(TRACE_DIR_ENV)
        if not d:
            return cls.off()
        return cls.open(Path(d), sid, servers, post)

    @classmethod
    def open(
        cls, trace_dir: Path, sid: int, servers: list[int], post: dict[str, Any]
    ) -> MemberTracer:
        trace_dir.mkdir(parents=True, exist_ok=True)
        path = member_file(trace_dir, sid)
        fresh = not path.exists() or path.stat().st_size == 0
        clock = 0 if fresh else _last_lamport(path)
        # line-buffered (one write(2) per record); open for the life of the member
        out = open(path, "a", buffering=1)  # noqa: SIM115
        t = cls(out, sid, clock)
        if fresh:
            head = {"kind": "member", "schema": MEMBER_SCHEMA, "spec": "Zab", "sid": sid}
            # `servers` are the voting members (Zab.tla's Server); an observer is not one
            t._write(head | {"servers": sorted(servers), "observer": sid not in servers})
        t._line({"event": "start", "post": post})
        return t

    @property
    def enabled(self) -> bool:
        return self.out is not None

    # --- the file
    def _write(self, obj: dict[str, Any]) -> None:
        assert self.out is not None
        self.out.write(json.dumps(obj, default=_json_default) + "\n")

    def _line(self, obj: dict[str, Any]) -> None:
        self.clock += 1
        self._write({"lamport": self.clock, "node": self.sid, **obj})

    def close(self) -> None:
        if self.out is not None:
            self._line({"event": "stop"})
            self.out.close()
            self.out = None

    # --- hooks of the host
    def effects(self, effects: list[Effect], post: Callable[[], dict[str, Any]]) -> None:
        """Before a list of Zab effects runs: its records and role changes, in list order.
        `post()` gives the peer's spec variables now (for the role-change events)."""
        if self.out is None:
            return
        for e in effects:
            if isinstance(e, Trace):
                self._line({"action": e.action, "params": e.params, "post": e.post})
            elif isinstance(e, StateChanged):
                ev: dict[str, Any] = {"event": str(e.state)}
                if e.state is ServerState.FOLLOWING:
                    ev["leader"] = e.leader
                if e.state is not ServerState.LOOKING:
                    ev["post"] = post()
                self._line(ev)

    def packet(self, msg: QuorumPacket) -> bytes:
        body = encode_packet(msg)
        return body if self.out is None else with_lamport(body, self.clock)

    def notification(self, msg: Notification) -> bytes:
        body = encode_notification(msg)
        return body if self.out is None else with_lamport(body, self.clock)

    def on_packet(self, body: bytes | None) -> None:
        if self.out is not None and body is not None:
            self._received(packet_lamport(body))

    def on_notification(self, body: bytes) -> None:
        if self.out is not None:
            self._received(notification_lamport(body))

    def _received(self, carried: int | None) -> None:
        if carried is not None:
            self.clock = max(self.clock, carried) + 1
