"""``zkref chaos check``: judge a recorded history, property by property.

Rules:
- properties are independent; each gets a verdict ``valid`` = True / False / None (unknown:
  search budget exhausted, or nothing to judge);
- writes are checked for linearizability per znode (P-compositionality); plain reads are not,
  because ZooKeeper promises only sequential consistency for them; reads that follow a ``sync`` by
  the same process on the same path are included when ``sync_reads`` is asked, with their call
  moved back to the sync's call; final reads (after heal, through sync) are always included;
- a violation comes with a window of operations that cannot be linearized from any state the
  znode was seen in, as text and as a timeline (``timeline.render_html``).
"""

from __future__ import annotations

import itertools
import json
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from zkref.chaos.history import History, Op, complete_ops, read_history
from zkref.chaos.linearizability import ABSENT, RegisterState, check_register, minimal_window

__all__ = ["CheckReport", "Verdict", "check", "check_file", "render_text"]

REGISTER_FS = frozenset({"read", "final-read", "write", "cas", "create", "delete"})
WRITE_FS = frozenset({"write", "cas", "create", "delete"})


@dataclass(slots=True)
class Violation:
    key: str
    message: str
    ops: list[Op]
    culprit: Op | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "message": self.message,
            "culprit": None if self.culprit is None else self.culprit.invoke_index,
            "ops": [_op_json(o) for o in self.ops],
        }


@dataclass(slots=True)
class Verdict:
    property: str
    valid: bool | None
    summary: str
    violations: list[Violation] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)
    checked: bool = True  # False: the history holds nothing this property applies to

    def to_json(self) -> dict[str, Any]:
        return {
            "property": self.property,
            "valid": self.valid,
            "checked": self.checked,
            "summary": self.summary,
            "stats": self.stats,
            "violations": [v.to_json() for v in self.violations],
        }


@dataclass(slots=True)
class CheckReport:
    verdicts: list[Verdict]
    n_events: int
    n_ops: int
    seconds: float
    header: dict[str, Any]

    @property
    def valid(self) -> bool | None:
        vals = [v.valid for v in self.verdicts if v.checked]
        if any(v is False for v in vals):
            return False
        if any(v is None for v in vals):
            return None
        return True

    def to_json(self) -> dict[str, Any]:
        return {
            "valid": self.valid,
            "events": self.n_events,
            "ops": self.n_ops,
            "check_seconds": round(self.seconds, 4),
            "verdicts": [v.to_json() for v in self.verdicts],
        }

    def violations(self) -> list[Violation]:
        return [x for v in self.verdicts for x in v.violations]


def _op_json(o: Op) -> dict[str, Any]:
    return {
        "invoke_index": o.invoke_index,
        "complete_index": o.complete_index,
        "process": o.process,
        "f": o.f,
        "path": o.path,
        "status": o.status,
        "call": o.call,
        "ret": o.ret,
        "describe": o.describe(),
    }


def check_file(path: Path | str, **kw: Any) -> CheckReport:
    return check(read_history(path), **kw)


def check(
    history: History, *, sync_reads: bool = False, budget: int = 5_000_000, queue_prefix: str = ""
) -> CheckReport:
    t0 = time.perf_counter()
    ops = complete_ops(history.events)
    initial = _initial_states(history.header)
    queue_prefix = queue_prefix or str(history.header.get("queue", ""))
    verdicts = [
        check_linearizable_writes(ops, initial, sync_reads=sync_reads, budget=budget),
        check_session_order(ops),
        check_no_lost_writes(ops, initial),
        check_sequential_names(ops, queue_prefix),
    ]
    return CheckReport(
        verdicts=verdicts,
        n_events=len(history.events),
        n_ops=len(ops),
        seconds=time.perf_counter() - t0,
        header=history.header,
    )


def _initial_states(header: dict[str, Any]) -> dict[str, RegisterState]:
    out: dict[str, RegisterState] = {}
    init = header.get("initial") or {}
    for path, v in init.items():
        out[str(path)] = ABSENT if v is None else (True, str(v[0]), int(v[1]))
    return out


# -- linearizability ------------------------------------------------------------------------


def _register_ops(ops: Sequence[Op], sync_reads: bool) -> dict[str, list[Op]]:
    per_key: dict[str, list[Op]] = defaultdict(list)
    last_by_process: dict[int, Op] = {}
    for op in sorted(ops, key=lambda o: o.invoke_index):
        prev = last_by_process.get(op.process)
        last_by_process[op.process] = op
        if op.f not in REGISTER_FS:
            continue
        if op.f == "read":
            if op.status != "ok" or not sync_reads:
                continue
            if prev is None or prev.f != "sync" or prev.path != op.path or prev.status != "ok":
                continue
            # sync then read: the read may reflect any state from the sync's start on.
            op = replace(op, call=prev.call)
        elif op.f == "final-read" and op.status != "ok":
            continue
        per_key[op.path].append(op)
    return per_key


def check_linearizable_writes(
    ops: Sequence[Op],
    initial: dict[str, RegisterState],
    *,
    sync_reads: bool = False,
    budget: int = 5_000_000,
) -> Verdict:
    per_key = _register_ops(ops, sync_reads)
    violations: list[Violation] = []
    unknown: list[str] = []
    explored = 0
    for key in sorted(per_key):
        key_ops = per_key[key]
        # Op ids are unique across the history; the search numbers its bitset per key itself.
        renum = key_ops
        res = check_register(renum, initial.get(key, ABSENT), budget=budget)
        explored += res.explored
        if res.ok is None:
            unknown.append(key)
        elif res.ok is False:
            assert res.culprit is not None
            window, states, proven = minimal_window(renum, res.culprit)
            msg = (
                f"{key}: no linearization of {len(renum)} ops gets past "
                f"[{res.culprit.invoke_index}] {res.culprit.describe()}; "
                + (
                    f"these {len(window)} ops cannot be linearized from any of the "
                    f"{len(states)} states the znode was seen in"
                    if proven
                    else f"the {len(window)} ops before it (no shorter self-contained window found)"
                )
            )
            violations.append(Violation(key=key, message=msg, ops=window, culprit=res.culprit))
    n_ops = sum(len(v) for v in per_key.values())
    stats = {"keys": len(per_key), "ops": n_ops, "explored": explored, "unknown_keys": unknown}
    what = "writes" + (" and synced reads" if sync_reads else "") + " (+ final reads)"
    if violations:
        return Verdict(
            "linearizable",
            False,
            f"{what}: NOT linearizable on {len(violations)} of {len(per_key)} znodes",
            violations,
            stats,
        )
    if unknown:
        return Verdict(
            "linearizable", None, f"{what}: search budget exhausted on {unknown}", [], stats
        )
    if not per_key:
        return Verdict("linearizable", None, "no register operations", [], stats, checked=False)
    return Verdict(
        "linearizable", True, f"{what}: linearizable on all {len(per_key)} znodes", [], stats
    )


# -- per-session order ----------------------------------------------------------------------


def check_session_order(ops: Sequence[Op]) -> Verdict:
    """ZooKeeper's FIFO client order and single system image, as far as a client can see them:
    within a session, reply zxids never go backwards, and per znode the zxid a session has
    observed (mzxid/czxid) never goes backwards either (read-your-writes, monotonic reads)."""
    by_session: dict[str, list[Op]] = defaultdict(list)
    for op in ops:
        sess = op.session if op.session is not None else f"process-{op.process}"
        by_session[sess].append(op)
    violations: list[Violation] = []
    checked = 0
    for sess, sops in sorted(by_session.items()):
        sops.sort(key=lambda o: o.invoke_index)
        last_seen: Op | None = None
        last_key: dict[str, Op] = {}
        for op in sops:
            if op.status == "info":
                continue
            if op.seen_zxid is not None:
                checked += 1
                if (
                    last_seen is not None
                    and last_seen.seen_zxid is not None
                    and op.seen_zxid < last_seen.seen_zxid
                ):
                    violations.append(
                        Violation(
                            key=sess,
                            message=(
                                f"session {sess}: reply zxid went back from "
                                f"{_zx(last_seen.seen_zxid)} ([{last_seen.invoke_index}]) to "
                                f"{_zx(op.seen_zxid)} ([{op.invoke_index}])"
                            ),
                            ops=[last_seen, op],
                            culprit=op,
                        )
                    )
                last_seen = op
            if op.zxid is not None and op.status == "ok" and op.f in REGISTER_FS:
                prev = last_key.get(op.path)
                if prev is not None and prev.zxid is not None and op.zxid < prev.zxid:
                    violations.append(
                        Violation(
                            key=op.path,
                            message=(
                                f"session {sess} on {op.path}: saw zxid {_zx(prev.zxid)} at "
                                f"[{prev.invoke_index}] {prev.describe()}, then older "
                                f"{_zx(op.zxid)} at [{op.invoke_index}] {op.describe()}"
                            ),
                            ops=[prev, op],
                            culprit=op,
                        )
                    )
                last_key[op.path] = op
    stats = {"sessions": len(by_session), "ops_with_zxid": checked}
    if violations:
        return Verdict(
            "session-order",
            False,
            f"{len(violations)} per-session order violations",
            violations[:20],
            stats,
        )
    return Verdict(
        "session-order", True, f"FIFO/monotonic in all {len(by_session)} sessions", [], stats
    )


def _zx(z: int) -> str:
    return f"0x{z:x}"


# -- durability at the end ------------------------------------------------------------------


def _strictly_followed(w: Op, latest_calls: list[tuple[int, int]]) -> bool:
    """Was another acknowledged write called after ``w`` returned? (two latest (call, id))"""
    if w.ret is None:
        return False
    later = next((c for c, i in latest_calls if i != w.id), None)
    return later is not None and later > w.ret


def _writes_value(op: Op) -> str | None:
    return None if op.f == "delete" else op.value


def check_no_lost_writes(ops: Sequence[Op], initial: dict[str, RegisterState]) -> Verdict:
    """After heal, each znode's final value must come from a write no acknowledged write
    strictly followed; every acknowledged enqueue must still be listed."""
    finals = [o for o in ops if o.f == "final-read" and o.status == "ok"]
    violations: list[Violation] = []
    for fr in finals:
        writes = [
            o
            for o in ops
            if o.path == fr.path
            and o.f in WRITE_FS
            and o.status in ("ok", "info")
            and o.call < (fr.ret or fr.call)
        ]
        acked = [o for o in writes if o.status == "ok"]
        if not acked:
            continue
        # Writes that could be the last: not strictly followed by an acknowledged write.
        # w survives unless some other acknowledged write was called after w returned; only the
        # two latest calls matter (the latest may be w itself).
        calls = sorted(((a.call, a.id) for a in acked), reverse=True)[:2]
        survivors = [w for w in writes if not _strictly_followed(w, calls)]
        final_value = fr.out_value
        # Versions only grow while no create/delete can intervene: an acknowledged setData of
        # version v that no create/delete can follow means the final version is at least v.
        inf = float("inf")
        last_reset = max(
            (
                inf if d.ret is None else d.ret
                for d in writes
                if d.f in ("create", "delete") and d.status != "fail"
            ),
            default=-inf,
        )
        floor = [
            w
            for w in acked
            if w.f in ("write", "cas") and w.out_version is not None and last_reset <= w.call
        ]
        behind = [
            w
            for w in floor
            if final_value is None
            or (fr.out_version is not None and 0 <= fr.out_version < (w.out_version or 0))
        ]
        if not behind and any(_writes_value(w) == final_value for w in survivors):
            continue
        lost = behind or [w for w in survivors if w.status == "ok"]
        violations.append(
            Violation(
                key=fr.path,
                message=(
                    f"{fr.path}: final read {fr.describe()} matches none of the "
                    f"{len(survivors)} writes that could have been last; acknowledged and lost: "
                    + "; ".join(f"[{w.invoke_index}] {w.describe()}" for w in lost)
                ),
                ops=[*sorted(survivors, key=lambda o: o.call), fr],
                culprit=fr,
            )
        )
    lists = [o for o in ops if o.f == "final-list" and o.status == "ok"]
    enq_checked = 0
    for fl in lists:
        try:
            names = set(json.loads(fl.out_value or "[]"))
        except json.JSONDecodeError:
            names = set()
        acked = [
            o for o in ops if o.f == "enqueue" and o.status == "ok" and o.path == fl.path and o.name
        ]
        enq_checked += len(acked)
        missing = [
            o for o in acked if o.name is not None and o.name.rsplit("/", 1)[-1] not in names
        ]
        if missing:
            violations.append(
                Violation(
                    key=fl.path,
                    message=(
                        f"{fl.path}: {len(missing)} acknowledged sequential creates missing from "
                        f"the final listing: " + ", ".join(str(o.name) for o in missing[:10])
                    ),
                    ops=[*missing[:10], fl],
                    culprit=fl,
                )
            )
    stats = {"final_reads": len(finals), "final_lists": len(lists), "enqueues": enq_checked}
    if violations:
        return Verdict(
            "no-lost-writes",
            False,
            f"{len(violations)} acknowledged writes lost",
            violations,
            stats,
        )
    if not finals and not lists:
        return Verdict("no-lost-writes", None, "no final reads", [], stats, checked=False)
    return Verdict(
        "no-lost-writes",
        True,
        f"all acknowledged writes survive ({len(finals)} znodes, {enq_checked} enqueues)",
        [],
        stats,
    )


# -- sequential names -----------------------------------------------------------------------


def _seq_no(name: str) -> int | None:
    tail = name.rsplit("/", 1)[-1]
    digits = tail[-10:]
    return int(digits) if len(digits) == 10 and digits.lstrip("-").isdigit() else None


def check_sequential_names(ops: Sequence[Op], queue_prefix: str = "") -> Verdict:
    """Sequential creates under one parent: names unique; suffix order = zxid order; and an
    enqueue that finished before another started got the smaller suffix."""
    enq = [o for o in ops if o.f == "enqueue" and o.status == "ok" and o.name is not None]
    violations: list[Violation] = []
    by_parent: dict[str, list[Op]] = defaultdict(list)
    for o in enq:
        by_parent[o.path].append(o)
    for parent, pops in sorted(by_parent.items()):
        seen: dict[str, Op] = {}
        for o in pops:
            assert o.name is not None
            if o.name in seen:
                violations.append(
                    Violation(
                        key=parent,
                        message=(
                            f"{parent}: name {o.name} given twice: [{seen[o.name].invoke_index}] "
                            f"and [{o.invoke_index}]"
                        ),
                        ops=[seen[o.name], o],
                        culprit=o,
                    )
                )
            seen[o.name] = o
        with_zxid = sorted((o for o in pops if o.zxid is not None), key=lambda o: o.zxid or 0)
        for a, b in itertools.pairwise(with_zxid):
            sa, sb = _seq_no(a.name or ""), _seq_no(b.name or "")
            if sa is not None and sb is not None and sa >= sb and a.name != b.name:
                violations.append(
                    Violation(
                        key=parent,
                        message=(
                            f"{parent}: {a.name} (zxid {_zx(a.zxid or 0)}) was created before "
                            f"{b.name} (zxid {_zx(b.zxid or 0)}) but has the larger suffix"
                        ),
                        ops=[a, b],
                        culprit=b,
                    )
                )
        # Real-time order: sort by return; any later-called op must have a larger suffix.
        by_ret = sorted(pops, key=lambda o: o.ret or 0)
        max_seq: tuple[int, Op] | None = None
        j = 0
        for o in sorted(pops, key=lambda o: o.call):
            while j < len(by_ret) and (by_ret[j].ret or 0) < o.call:
                s = _seq_no(by_ret[j].name or "")
                if s is not None and (max_seq is None or s > max_seq[0]):
                    max_seq = (s, by_ret[j])
                j += 1
            s = _seq_no(o.name or "")
            if max_seq is not None and s is not None and s <= max_seq[0]:
                violations.append(
                    Violation(
                        key=parent,
                        message=(
                            f"{parent}: {o.name} started after {max_seq[1].name} finished "
                            f"but has a suffix not larger"
                        ),
                        ops=[max_seq[1], o],
                        culprit=o,
                    )
                )
    stats = {"enqueues": len(enq), "parents": len(by_parent)}
    if violations:
        return Verdict(
            "sequential-names",
            False,
            f"{len(violations)} sequential-name violations",
            violations[:20],
            stats,
        )
    if not enq:
        return Verdict("sequential-names", None, "no sequential creates", [], stats, checked=False)
    return Verdict(
        "sequential-names",
        True,
        f"{len(enq)} sequential names unique and in zxid and real-time order",
        [],
        stats,
    )


# -- text -----------------------------------------------------------------------------------


def render_text(report: CheckReport, *, max_window: int = 40) -> str:
    mark = {True: "PASS", False: "FAIL", None: "UNKNOWN"}
    lines = [
        f"history: {report.n_events} events, {report.n_ops} operations; "
        f"checked in {report.seconds:.3f} s",
    ]
    for v in report.verdicts:
        m = mark[v.valid] if v.checked else "N/A"
        lines.append(f"  [{m:7}] {v.property:16} {v.summary}")
    for v in report.verdicts:
        for viol in v.violations:
            lines.append("")
            lines.append(f"{v.property} violation: {viol.message}")
            t_base = min((o.call for o in viol.ops), default=0)
            for o in sorted(viol.ops, key=lambda o: (o.call, o.invoke_index))[:max_window]:
                ret = "      ∞" if o.ret is None else f"{(o.ret - t_base) / 1e6:9.3f}"
                star = (
                    "»"
                    if viol.culprit is not None and o.invoke_index == viol.culprit.invoke_index
                    else " "
                )
                lines.append(
                    f"  {star} [{o.invoke_index:6}] {(o.call - t_base) / 1e6:9.3f} .. {ret} ms"
                    f"  {o.describe()}"
                )
    verdict = mark[report.valid]
    lines.append("")
    lines.append(f"verdict: {verdict}")
    return "\n".join(lines)
