"""Property tests for the linearizability search.

1. Histories generated from a sequential model (linearizable by construction) always pass.
2. On small histories, linearizable or mutated, the search agrees with brute force over every
   order that respects real time (so it neither misses violations nor invents them).
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Sequence

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from zkref.chaos.checker import check
from zkref.chaos.gen import generate
from zkref.chaos.history import Op, complete_ops
from zkref.chaos.linearizability import ABSENT, RegisterState, check_register, step


def per_key(ops: Sequence[Op]) -> dict[str, list[Op]]:
    out: dict[str, list[Op]] = defaultdict(list)
    for o in ops:
        out[o.path].append(o)
    return {k: [dataclasses.replace(o, id=i) for i, o in enumerate(v)] for k, v in out.items()}


def brute_force(ops: Sequence[Op], state: RegisterState = ABSENT) -> bool:
    """Exhaustive: some sequence containing every completed op (and any subset of info ops),
    each placed after all ops that returned before it was called, is legal in the model."""
    n = len(ops)

    def rec(done: frozenset[int], s: RegisterState) -> bool:
        if all(i in done or ops[i].ret is None for i in range(n)):
            return True
        for i in range(n):
            if i in done:
                continue
            o = ops[i]
            # o can go next only if no other pending completed op returned before o's call.
            if any(j not in done and j != i and (ops[j].ret or o.call) < o.call for j in range(n)):
                continue
            s2 = step(s, o)
            if s2 is not None and rec(done | {i}, s2):
                return True
        return False

    return rec(frozenset(), state)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    n_ops=st.integers(1, 300),
    processes=st.integers(1, 6),
    keys=st.integers(1, 3),
    info_rate=st.sampled_from([0.0, 0.01, 0.03, 0.2]),
)
def test_generated_histories_are_linearizable(
    seed: int, n_ops: int, processes: int, keys: int, info_rate: float
) -> None:
    # Every info op can take effect at any later point, so the search is exponential in the
    # number of info ops per znode (as for Knossos and Porcupine); real runs have a handful per
    # fault. Keep the lossy setting for short histories.
    if info_rate > 0.05:
        n_ops = min(n_ops, 40)
    h = generate(seed, n_ops=n_ops, processes=processes, keys=keys, info_rate=info_rate)
    ops = complete_ops(h.events)
    for key, kops in per_key(ops).items():
        # Plain reads included: the generator's reads are linearizable.
        r = check_register(kops)
        assert r.ok is True, (key, seed)
        # The witness is a legal sequential run of every completed op.
        s = ABSENT
        for o in r.linearization:
            nxt = step(s, o)
            assert nxt is not None
            s = nxt
        done = {o.id for o in r.linearization}
        assert all(o.id in done for o in kops if o.ret is not None)
    report = check(h)
    assert report.valid is True, report.to_json()


MUTATIONS = ("version+1", "version-1", "value", "fail", "ok", "reorder")


def mutate(ops: list[Op], which: int, how: str) -> list[Op]:
    done = [o for o in ops if o.ret is not None]
    if not done:
        return ops
    o = done[which % len(done)]
    ret = o.ret
    assert ret is not None
    if how == "version+1":
        new = dataclasses.replace(o, out_version=(o.out_version or 0) + 1)
    elif how == "version-1":
        new = dataclasses.replace(o, out_version=(o.out_version or 0) - 1)
    elif how == "value":
        new = dataclasses.replace(o, out_value="zzz", value="zzz" if o.value else None)
    elif how == "fail":
        err = {"create": "NodeExists", "cas": "BadVersion"}.get(o.f, "NoNode")
        new = dataclasses.replace(o, status="fail", error=err)
    elif how == "ok":
        new = dataclasses.replace(o, status="ok", error=None)
    else:  # shift the op to the end of the history, so real-time order changes
        end = max((x.ret or x.call) for x in ops)
        new = dataclasses.replace(o, call=end + 1, ret=end + 2)
    return [new if x is o else x for x in ops]


@settings(max_examples=400, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n_ops=st.integers(1, 7),
    processes=st.integers(1, 4),
    info_rate=st.sampled_from([0.0, 0.2]),
    which=st.integers(0, 100),
    how=st.sampled_from((*MUTATIONS, "none")),
)
def test_search_agrees_with_brute_force(
    seed: int, n_ops: int, processes: int, info_rate: float, which: int, how: str
) -> None:
    h = generate(seed, n_ops=n_ops, processes=processes, keys=1, info_rate=info_rate,
                 final_reads=False)  # fmt: skip
    ops = complete_ops(h.events)
    if how != "none":
        ops = mutate(ops, which, how)
    ops = [dataclasses.replace(o, id=i) for i, o in enumerate(ops)]
    expected = brute_force(ops)
    assert check_register(ops).ok is expected
    if how == "none":
        assert expected is True


def test_some_mutations_are_violations() -> None:
    """The agreement test above is only meaningful if mutated histories often fail."""
    failing = 0
    for seed in range(200):
        h = generate(seed, n_ops=6, processes=3, keys=1, final_reads=False)
        ops = mutate(complete_ops(h.events), seed, MUTATIONS[seed % len(MUTATIONS)])
        ops = [dataclasses.replace(o, id=i) for i, o in enumerate(ops)]
        if check_register(ops).ok is False:
            failing += 1
    assert failing >= 50
