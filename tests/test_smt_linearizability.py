"""The SMT encoding of linearizability against the search checker (zkref.chaos).

Two independent formulations of one question: ``zkref.chaos.linearizability.check_register`` runs
the register model over candidate orders (Wing & Gong, with Lowe's memo and two reductions);
``zkref.conform.smt_linearizability`` never runs the model and asks z3 for positions under which
every observation equals "the latest write before it". On random short histories they must give
the same verdict; where they would not, a brute force over every real-time-respecting order says
which one is wrong (and the assertion message carries the history).
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from zkref.chaos.checker import check as chaos_check
from zkref.chaos.history import History, HistoryBuilder, Op, complete_ops, read_history
from zkref.chaos.linearizability import check_register, step
from zkref.conform import smt_linearizability as smt

PATH = "/k"
Register = tuple[bool, str | None, int]
ABSENT: Register = (False, None, -1)


@dataclass(frozen=True)
class Spec:
    """One generated operation (one process each, so the history is always well formed)."""

    f: str
    call: int
    ret: int | None
    status: Literal["ok", "fail", "info"]
    value: str | None = None
    version: int | None = None  # expected version (cas, delete)
    out_value: str | None = None
    out_version: int | None = None
    error: str | None = None


def build(specs: Sequence[Spec], init: Register, read_f: str = "read") -> History:
    header = {} if not init[0] else {"initial": {PATH: [init[1], init[2]]}}
    b = HistoryBuilder(header)
    for i, s in enumerate(specs):
        b.add(
            i + 1,
            read_f if s.f == "read" else s.f,
            PATH,
            s.call,
            s.ret,
            s.status,
            value=s.value,
            version=s.version,
            out_value=s.out_value,
            out_version=s.out_version,
            error=s.error,
        )
    return b.build()


def sequential(f: str, state: Register, value: str, exp: int) -> tuple[Spec, Register]:
    """The znode as ZooKeeper keeps it: the outcome of ``f`` in ``state`` (times filled later)."""
    exists, cur, ver = state
    if f == "read":
        out = (cur, ver) if exists else (None, -1)
        return Spec("read", 0, 0, "ok", out_value=out[0], out_version=out[1]), state
    if f == "create":
        if exists:
            return Spec("create", 0, 0, "fail", value=value, error="NodeExists"), state
        return Spec("create", 0, 0, "ok", value=value, out_version=0), (True, value, 0)
    if not exists:
        v = exp if f in ("cas", "delete") else None
        return Spec(f, 0, 0, "fail", value=None if f == "delete" else value, version=v,
                    error="NoNode"), state  # fmt: skip
    if f == "write":
        return Spec("write", 0, 0, "ok", value=value, out_version=ver + 1), (True, value, ver + 1)
    if f == "cas":
        if exp != ver:
            return Spec("cas", 0, 0, "fail", value=value, version=exp, error="BadVersion"), state
        return Spec("cas", 0, 0, "ok", value=value, version=exp, out_version=ver + 1), (
            True,
            value,
            ver + 1,
        )
    assert f == "delete"
    if exp not in (-1, ver):
        return Spec("delete", 0, 0, "fail", version=exp, error="BadVersion"), state
    return Spec("delete", 0, 0, "ok", version=exp), ABSENT


MUTATIONS = (
    "none",
    "read-value",
    "version",
    "status",
    "error",
    "expected",
    "to-info",
    "shift",
    "swap",
    "drop",
)
ERRORS = ("NoNode", "NodeExists", "BadVersion", "NotEmpty")


@st.composite
def histories(draw: st.DrawFn) -> tuple[list[Spec], Register, str]:
    n = draw(st.integers(1, 10))
    init: Register = draw(st.sampled_from([ABSENT, (True, "a", 0), (True, "b", 2)]))
    state = init
    specs: list[Spec] = []
    for k in range(n):
        f = draw(st.sampled_from(["read", "read", "write", "cas", "create", "delete"]))
        # A small pool of values, so equal values written twice happen.
        value = draw(st.sampled_from(["a", "b", f"u{k}"]))
        ver = state[2]
        exp = draw(
            st.sampled_from([ver, ver, ver + 1, max(ver - 1, 0), -1 if f == "delete" else 0])
        )
        spec, after = sequential(f, state, value, exp)
        lost = f != "read" and draw(st.integers(0, 3)) == 0
        if lost:
            # Reply lost: the op took effect at its point or never did.
            took = draw(st.booleans())
            spec = dataclasses.replace(spec, status="info", out_version=None, error=None)
            if spec.f in ("cas", "delete", "write", "create") and took:
                state = after
        else:
            state = after
        # Linearization point 100k + 50; the interval around it overlaps neighbours, and a
        # 10 ns grid makes equal timestamps (a return at another's call) frequent.
        lp = 100 * k + 50
        call = lp - 10 * draw(st.integers(0, 12))
        ret = None if spec.status == "info" else lp + 10 * draw(st.integers(1, 12))
        specs.append(dataclasses.replace(spec, call=call, ret=ret))
    how = draw(st.sampled_from(MUTATIONS))
    i = draw(st.integers(0, n - 1))
    specs = mutate(specs, how, i, draw(st.integers(0, n - 1)))
    return specs, init, how


def mutate(specs: list[Spec], how: str, i: int, j: int) -> list[Spec]:
    s = specs[i]
    if how == "read-value" and s.f == "read" and s.status == "ok":
        new = dataclasses.replace(s, out_value="b" if s.out_value == "a" else "a",
                                  out_version=max(s.out_version or 0, 0))  # fmt: skip
    elif how == "version" and s.status == "ok" and s.out_version is not None:
        new = dataclasses.replace(s, out_version=s.out_version + (1 if i % 2 else -1))
    elif how == "status" and s.status == "ok" and s.f != "read":
        err = {"create": "NodeExists", "cas": "BadVersion", "delete": "BadVersion"}.get(
            s.f, "NoNode"
        )
        new = dataclasses.replace(s, status="fail", error=err, out_version=None)
    elif how == "status" and s.status == "fail":
        new = dataclasses.replace(s, status="ok", error=None)
    elif how == "error":
        # Any op failing with any error, plausible or not (NotEmpty says nothing about data).
        new = dataclasses.replace(
            s, status="fail", ret=s.ret or s.call + 10, error=ERRORS[j % len(ERRORS)]
        )
    elif how == "expected" and s.f in ("cas", "delete"):
        new = dataclasses.replace(s, version=(s.version or 0) + (1 if j % 2 else -1))
    elif how == "to-info" and s.status != "info":
        new = dataclasses.replace(s, status="info", ret=None, out_value=None, out_version=None)
    elif how == "shift":
        end = max((x.ret or x.call) for x in specs)
        new = dataclasses.replace(s, call=end + 10, ret=None if s.ret is None else end + 20)
    elif how == "swap" and i != j:
        t = specs[j]
        out = list(specs)
        out[i] = dataclasses.replace(
            s, call=t.call, ret=None if s.ret is None else t.ret or t.call + 10
        )
        out[j] = dataclasses.replace(
            t, call=s.call, ret=None if t.ret is None else s.ret or s.call + 10
        )
        return out
    elif how == "drop" and len(specs) > 1:
        return specs[:i] + specs[i + 1 :]
    else:
        return specs
    return [new if k == i else x for k, x in enumerate(specs)]


def brute_force(ops: Sequence[Op], init: Register) -> bool:
    """Every completed op, any subset of info ops, in an order where an op comes after each op
    that returned before it was called; legal in the register model (memoised on the set done)."""
    ops = [o for o in ops if not (o.status == "info" and o.f in ("read", "final-read"))]
    n = len(ops)

    @cache
    def rec(done: frozenset[int], s: Register) -> bool:
        if all(i in done or ops[i].ret is None for i in range(n)):
            return True
        for i in range(n):
            if i in done:
                continue
            o = ops[i]
            blocked = any(
                j not in done and j != i and (r := ops[j].ret) is not None and r < o.call
                for j in range(n)
            )
            if blocked:
                continue
            s2 = step(s, o)
            if s2 is not None and rec(done | {i}, s2):
                return True
        return False

    return rec(frozenset(), init)


def render(ops: Sequence[Op]) -> str:
    return "\n".join(
        f"  [{o.call}..{'∞' if o.ret is None else o.ret}] {o.describe()}"
        for o in sorted(ops, key=lambda o: o.call)
    )


def verdicts(h: History, init: Register) -> tuple[bool, bool | None, Sequence[Op]]:
    ops = complete_ops(h.events)
    return smt.check(h), check_register(ops, init).ok, ops


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories())
def test_smt_agrees_with_the_search_checker(case: tuple[list[Spec], Register, str]) -> None:
    specs, init, how = case
    h = build(specs, init)
    by_smt, by_search, ops = verdicts(h, init)
    if by_smt != by_search:
        truth = brute_force(ops, init)
        wrong = "SMT encoding" if by_smt != truth else "search checker"
        pytest.fail(
            f"disagreement ({wrong} is wrong; brute force says {truth}): smt={by_smt} "
            f"search={by_search}, initial {init}, mutation {how}\n{render(ops)}"
        )
    if how in ("none", "to-info"):
        # Generated from a sequential run (lost replies only loosen it): linearizable.
        assert by_smt is True, render(ops)
    # The whole checker, with reads as final reads (it holds plain reads only to sequential
    # consistency), gives the same verdict. By design it drops final reads that did not
    # return ok (a failed final read is not a final value), so those are left out here.
    judged = [s for s in specs if not (s.f == "read" and s.status != "ok")]
    if not judged:
        return
    hf = build(judged, init, read_f="final-read")
    report = chaos_check(hf)
    assert report.verdicts[0].property == "linearizable"
    assert report.verdicts[0].valid is smt.check(hf)


def test_the_generator_makes_both_verdicts() -> None:
    """Agreement means something only if violations are generated too (seeded sweep)."""
    rng = random.Random(7)
    results = {True: 0, False: 0}
    for _ in range(150):
        specs, init = _seeded(rng)
        h = build(specs, init)
        by_smt, by_search, _ = verdicts(h, init)
        assert by_smt == by_search
        results[by_smt] += 1
    assert results[True] >= 30 and results[False] >= 30, results


def _seeded(rng: random.Random, n_max: int = 9, info: float = 0.2) -> tuple[list[Spec], Register]:
    """A seeded cousin of ``histories`` (for sweeps outside Hypothesis), always mutated."""
    n = rng.randint(2, n_max)
    init: Register = rng.choice([ABSENT, (True, "a", 0)])
    state = init
    specs: list[Spec] = []
    for k in range(n):
        f = rng.choice(["read", "read", "write", "cas", "create", "delete"])
        spec, after = sequential(
            f, state, rng.choice(["a", "b", f"u{k}"]), rng.choice([state[2], 0, -1])
        )
        if f != "read" and rng.random() < info:
            spec = dataclasses.replace(spec, status="info", out_version=None, error=None)
            if rng.random() < 0.5:
                state = after
        else:
            state = after
        lp = 100 * k + 50
        ret = None if spec.status == "info" else lp + 10 * rng.randint(1, 12)
        specs.append(dataclasses.replace(spec, call=lp - 10 * rng.randint(0, 12), ret=ret))
    how = rng.choice(MUTATIONS[1:])
    return mutate(specs, how, rng.randrange(n), rng.randrange(n)), init


# -- hand-written non-linearizable histories: both checkers reject them ----------------------


def hand(*specs: Spec, init: Register = ABSENT) -> History:
    return build(list(specs), init, read_f="final-read")


LOST_WRITE = hand(
    Spec("write", 0, 10, "ok", value="b", out_version=1),
    Spec("read", 20, 30, "ok", out_value="a", out_version=0),  # the write is gone
    init=(True, "a", 0),
)
STALE_CAS = hand(
    Spec("cas", 0, 10, "ok", value="b", version=0, out_version=1),
    Spec("cas", 20, 30, "ok", value="c", version=0, out_version=1),  # version 0 is long gone
    init=(True, "a", 0),
)
READ_FROM_THE_FUTURE = hand(
    Spec("create", 0, 10, "ok", value="a", out_version=0),
    Spec("read", 20, 30, "ok", out_value="b", out_version=1),
    Spec("write", 40, 50, "ok", value="b", out_version=1),
)
FAILED_CAS_WITH_THE_RIGHT_VERSION = hand(
    Spec("cas", 0, 10, "fail", value="b", version=0, error="BadVersion"),
    init=(True, "a", 0),
)
DOUBLE_CREATE = hand(
    Spec("create", 0, 10, "ok", value="a", out_version=0),
    Spec("create", 20, 30, "ok", value="b", out_version=0),
)


@pytest.mark.parametrize(
    "h",
    [LOST_WRITE, STALE_CAS, READ_FROM_THE_FUTURE, FAILED_CAS_WITH_THE_RIGHT_VERSION, DOUBLE_CREATE],
    ids=[
        "lost-write",
        "stale-cas",
        "read-from-the-future",
        "failed-cas-right-version",
        "double-create",
    ],
)
def test_planted_violations_are_rejected_by_both(h: History) -> None:
    assert smt.check(h) is False
    assert chaos_check(h).verdicts[0].valid is False


def test_concurrent_ops_may_take_effect_in_either_order() -> None:
    # The two writes overlap, and the reads fix the order as "c" then "b": still linearizable.
    h = hand(
        Spec("write", 0, 50, "ok", value="b", out_version=2),
        Spec("write", 10, 40, "ok", value="c", out_version=1),
        Spec("read", 60, 70, "ok", out_value="b", out_version=2),
        init=(True, "a", 0),
    )
    r = smt.check_ops(complete_ops(h.events), (True, "a", 0))
    assert r.linearizable is True
    assert r.order is not None
    assert [o.value for o in r.order if o.f == "write"] == ["c", "b"]
    assert chaos_check(h).verdicts[0].valid is True


def test_info_write_may_take_effect_late_or_never() -> None:
    late = hand(
        Spec("cas", 0, None, "info", value="b", version=0),
        Spec("read", 20, 30, "ok", out_value="a", out_version=0),
        Spec("read", 40, 50, "ok", out_value="b", out_version=1),
        init=(True, "a", 0),
    )
    never = hand(
        Spec("cas", 0, None, "info", value="b", version=0),
        Spec("write", 20, 30, "ok", value="c", out_version=1),
        Spec("read", 40, 50, "ok", out_value="c", out_version=1),
        init=(True, "a", 0),
    )
    assert smt.check(late) is True and smt.check(never) is True
    # But not before its call: the read at 0..5 cannot see it.
    early = hand(
        Spec("read", 0, 5, "ok", out_value="b", out_version=1),
        Spec("cas", 10, None, "info", value="b", version=0),
        init=(True, "a", 0),
    )
    assert smt.check(early) is False
    assert chaos_check(early).verdicts[0].valid is False


def test_equal_timestamps_are_concurrent() -> None:
    # The write returns at 10 and the read is called at 10: either order is allowed.
    h = hand(
        Spec("write", 0, 10, "ok", value="b", out_version=1),
        Spec("read", 10, 20, "ok", out_value="a", out_version=0),
        init=(True, "a", 0),
    )
    assert smt.check(h) is True
    assert chaos_check(h).verdicts[0].valid is True


def test_delete_and_recreate_restart_the_version() -> None:
    h = hand(
        Spec("write", 0, 10, "ok", value="b", out_version=4),
        Spec("delete", 20, 30, "ok", version=4),
        Spec("create", 40, 50, "ok", value="c", out_version=0),
        Spec("cas", 60, 70, "ok", value="d", version=0, out_version=1),
        Spec("read", 80, 90, "ok", out_value="d", out_version=1),
        init=(True, "a", 3),
    )
    assert smt.check(h) is True
    bad = hand(
        Spec("delete", 20, 30, "ok", version=3),
        Spec("create", 40, 50, "ok", value="c", out_version=0),
        Spec("read", 80, 90, "ok", out_value="c", out_version=4),  # version kept across delete
        init=(True, "a", 3),
    )
    assert smt.check(bad) is False
    assert chaos_check(bad).verdicts[0].valid is False


def test_reads_recorded_ndjson_histories(tmp_path: Path) -> None:
    b = HistoryBuilder({"initial": {PATH: ["a", 0], "/other": None}})
    b.add(1, "write", PATH, 0, 10, value="b", out_version=1)
    b.add(2, "read", PATH, 20, 30, out_value="a", out_version=0)  # lost write on /k
    b.add(3, "create", "/other", 0, 10, value="x", out_version=0)
    h = read_history(b.write(tmp_path / "h.ndjson"))
    assert sorted(smt.register_ops(h)) == ["/k", "/other"]
    assert smt.check(h) is False
    assert smt.check_ops(smt.register_ops(h)["/other"]).linearizable is True
