"""Linearizability of a short single-znode history as one SMT query (z3).

An independent oracle for ``zkref.chaos.linearizability`` (a Wing & Gong search over states):
this one never runs the register. It asks z3 for an order and checks every observation against
"the latest write before it", declaratively. Meant for histories of about a dozen operations.

Encoding (ops of one path; ``n`` of them):

- ``p_i`` an integer position, ``0 <= p_i < n``, all distinct;
- ``lin_i`` "op i took effect": true for ``ok`` and ``fail`` ops (they are linearized inside
  ``[call, ret]`` with the outcome they reported), free for ``info`` ops (maybe happened, at any
  point after their call); ``info`` reads and syncs observe nothing and are left out;
- real time: ``ret_i < call_j`` (strictly: equal timestamps are concurrent) and both took effect
  implies ``p_i < p_j``;
- the state an op sees is never stored, only read off the order: with ``before(w, i) = lin_w And
  p_w < p_i`` over the writers (write, cas, create, delete with ``ok`` or ``info``), ``reset_i``
  is the position of the latest create/delete before i (-1 if none) and ``set_i`` that of the
  latest write/cas/create (each pinned by "equals some earlier one's position, or -1" and "not
  below any earlier one's"); then *exists* is "the op at ``reset_i`` is a create" (the initial
  state if -1), *value* is the value written at ``set_i`` (initial if -1), and *version* is the
  number of write/cas before i and after ``reset_i``, plus 0 after a create or the initial
  version when ``reset_i`` is -1;
- each op that took effect must fit what it saw: a read returns (value, version) or "no node"; a
  write needs the node, a cas also ``version == expected``; ok replies carrying a version say
  ``version + 1``; create needs no node, delete needs the node (and the version if one is
  given); a ``fail`` is an observation: NoNode = no node, NodeExists = node, BadVersion on
  cas/delete = node with another version; other errors say nothing.

sat: linearizable (the model's positions are a witness); unsat: not linearizable.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import z3

from zkref.chaos.history import History, Op, complete_ops

__all__ = ["ABSENT", "Register", "SmtResult", "check", "check_ops", "register_ops"]

# (exists, value, version): the znode's state before the history.
Register = tuple[bool, str | None, int]
ABSENT: Register = (False, None, -1)

_READS = frozenset({"read", "final-read"})
_WRITERS = frozenset({"write", "cas", "create", "delete"})
REGISTER_FS = _READS | _WRITERS


@dataclass(frozen=True, slots=True)
class SmtResult:
    linearizable: bool
    order: list[Op] | None  # the ops that took effect, in the witness order (sat only)
    ops: int
    seconds: float


def register_ops(history: History) -> dict[str, list[Op]]:
    """Every register operation of the history, per path (plain reads included)."""
    out: dict[str, list[Op]] = {}
    for op in complete_ops(history.events):
        if op.f in REGISTER_FS:
            out.setdefault(op.path, []).append(op)
    return out


def _initial(history: History, path: str) -> Register:
    init = (history.header.get("initial") or {}).get(path)
    return ABSENT if init is None else (True, str(init[0]), int(init[1]))


def check(history: History) -> bool:
    """Is every znode's register history linearizable (each checked alone: locality)?"""
    return all(
        check_ops(ops, _initial(history, path)).linearizable
        for path, ops in sorted(register_ops(history).items())
    )


def check_ops(ops: Sequence[Op], init: Register = ABSENT, *, timeout_ms: int = 60_000) -> SmtResult:
    t0 = time.perf_counter()
    ops = [o for o in ops if not (o.status == "info" and o.f in _READS) and o.f != "sync"]
    for o in ops:
        if o.f not in REGISTER_FS:
            raise ValueError(f"operation {o.f!r} is not a register operation")
    n = len(ops)
    values: dict[str | None, int] = {None: 0}

    def vid(v: str | None) -> int:
        return values.setdefault(v, len(values))

    s = z3.Tactic("smt").solver()  # linear integer arithmetic, no quantifiers, no preprocessing
    s.set("timeout", timeout_ms)
    p = [z3.Int(f"p{i}") for i in range(n)]
    lin: list[Any] = [
        z3.Bool(f"lin{i}") if o.status == "info" else z3.BoolVal(True) for i, o in enumerate(ops)
    ]
    for pi in p:
        s.add(pi >= 0, pi < n)
    if n > 1:
        s.add(z3.Distinct(*p))
    for i, a in enumerate(ops):
        for j, b in enumerate(ops):
            if i != j and a.ret is not None and a.ret < b.call:
                s.add(z3.Implies(z3.And(lin[i], lin[j]), p[i] < p[j]))

    writers = [i for i, o in enumerate(ops) if o.f in _WRITERS and o.status != "fail"]
    resets = [i for i in writers if ops[i].f in ("create", "delete")]
    setters = [i for i in writers if ops[i].f in ("write", "cas", "create")]
    counters = [i for i in writers if ops[i].f in ("write", "cas")]

    # before[w][i]: writer w took effect before op i. Built once per pair: constructing z3
    # terms, not solving, is most of the cost on histories this short.
    before = {
        w: {
            i: (p[w] < p[i]) if ops[w].status != "info" else z3.And(lin[w], p[w] < p[i])
            for i in range(n)
            if i != w
        }
        for w in writers
    }

    def latest_position(name: str, among: list[int], i: int) -> Any:
        """An integer that is the position of the latest op of ``among`` before i, or -1."""
        last = z3.Int(f"{name}{i}")
        cands = [w for w in among if w != i]
        s.add(z3.Or(last == -1, *[z3.And(before[w][i], last == p[w]) for w in cands]))
        s.add(*[z3.Implies(before[w][i], last >= p[w]) for w in cands])
        return last

    def is_latest(w: int, last: Any, i: int) -> Any:
        return z3.And(before[w][i], last == p[w])

    init_exists, init_value, init_version = init
    for i, o in enumerate(ops):
        if resets:
            reset = latest_position("reset", resets, i)
            no_reset = reset == -1
            created = [is_latest(c, reset, i) for c in resets if c != i and ops[c].f == "create"]
            exists = z3.If(no_reset, z3.BoolVal(init_exists), z3.Or(*created, z3.BoolVal(False)))
        else:
            reset, no_reset, exists = z3.IntVal(-1), z3.BoolVal(True), z3.BoolVal(init_exists)
        value: Any = z3.IntVal(vid(init_value))
        if setters:
            last_set = latest_position("set", setters, i)
            for w in setters:
                if w != i:
                    value = z3.If(is_latest(w, last_set, i), vid(ops[w].value), value)
        since_reset = [z3.If(z3.And(before[w][i], p[w] > reset), 1, 0) for w in counters if w != i]
        version = z3.If(no_reset, init_version, 0) + z3.Sum(*since_reset, z3.IntVal(0))
        s.add(z3.Implies(lin[i], _fits(o, exists, value, version, vid)))

    r = s.check()
    if r == z3.unknown:
        raise RuntimeError(f"z3 gave unknown after {timeout_ms} ms: {s.reason_unknown()}")
    order: list[Op] | None = None
    if r == z3.sat:
        m = s.model()
        took = [
            (m.eval(p[i], model_completion=True).as_long(), i)
            for i in range(n)
            if z3.is_true(m.eval(lin[i], model_completion=True))
        ]
        order = [ops[i] for _, i in sorted(took)]
    return SmtResult(r == z3.sat, order, n, time.perf_counter() - t0)


def _fits(o: Op, exists: Any, value: Any, version: Any, vid: Any) -> Any:
    """What op ``o``, with its recorded outcome, requires of the state it saw."""
    f = o.f
    if o.status == "fail":
        err = o.error
        if f == "create":
            return exists if err == "NodeExists" else z3.BoolVal(True)
        if err == "NoNode":
            return z3.Not(exists)
        if err == "BadVersion":
            if f not in ("cas", "delete"):
                return z3.BoolVal(False)
            if o.exp_version is None:
                return exists
            return z3.And(exists, version != o.exp_version)
        if err == "NodeExists":
            return exists
        return z3.BoolVal(True)
    done = o.status == "ok"
    if f in _READS:
        if o.out_value is None and (o.out_version is None or o.out_version < 0):
            return z3.Not(exists)
        parts = [exists, value == vid(o.out_value)]
        if o.out_version is not None and o.out_version >= 0:
            parts.append(version == o.out_version)
        return z3.And(*parts)
    if f == "create":
        return z3.Not(exists)
    if f == "delete":
        if o.exp_version is None or o.exp_version == -1:
            return exists
        return z3.And(exists, version == o.exp_version)
    parts = [exists]
    if f == "cas":
        if o.exp_version is None:
            return z3.BoolVal(False)  # a conditional setData with no condition: never recorded
        parts.append(version == o.exp_version)
    if done and o.out_version is not None:
        parts.append(o.out_version == version + 1)
    return z3.And(*parts)
