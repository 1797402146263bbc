"""zkref.conform.quorum_z3: z3 proves quorum intersection or names two disjoint quorums.

The z3 encoding is written from the parameters, not from ``contains_quorum``; here the two are
checked against each other, and both against brute force over every pair of subsets.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterable

import pytest
import z3
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from zkref.conform.quorum_z3 import (
    DisjointQuorums,
    IntersectionProof,
    NoQuorum,
    Verdict,
    check_intersection,
    describe,
)
from zkref.core.quorum import QuorumHierarchical, QuorumMaj, QuorumSystem, weighted


def subsets(xs: Iterable[int]) -> list[frozenset[int]]:
    items = sorted(xs)
    return [frozenset(c) for r in range(len(items) + 1) for c in itertools.combinations(items, r)]


def brute_force(system: QuorumSystem) -> tuple[bool, bool]:
    """(some quorum exists, every two quorums intersect), by enumeration."""
    quorums = [s for s in subsets(system.voters) if system.contains_quorum(s)]
    return bool(quorums), all(a & b for a, b in itertools.combinations_with_replacement(quorums, 2))


def assert_counterexample(v: Verdict) -> None:
    assert isinstance(v, DisjointQuorums), v
    assert v.system.contains_quorum(v.q1), v
    assert v.system.contains_quorum(v.q2), v
    assert not (v.q1 & v.q2), v
    assert v.q1 <= v.system.voters and v.q2 <= v.system.voters


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 7, 9])
def test_majority_is_safe(n: int) -> None:
    v = check_intersection(QuorumMaj(frozenset(range(1, n + 1))))
    assert isinstance(v, IntersectionProof)
    # The kept query is a real refutation: any solver re-reading it says unsat.
    s = z3.Solver()
    s.from_string(v.smt2)
    assert s.check() == z3.unsat


def test_large_systems_are_proved_quickly() -> None:
    # Regression: with boolean membership, two majorities of 51 were a pigeonhole for z3's SAT
    # core (timeout); as 0/1 integers the simplex refutes them at once.
    for system in (
        QuorumMaj(frozenset(range(1, 52))),
        QuorumHierarchical.of({g: range(7 * g, 7 * g + 7) for g in range(7)}, {}),
    ):
        # generous for a loaded CI machine (proved in well under 1 s here); the pigeonhole
        # regression ran into any timeout. A timeout is not a proof; the time is not asserted.
        v = check_intersection(system, timeout_ms=60_000)
        assert isinstance(v, IntersectionProof)


ZOOKEEPER_DOC_CONFIGS = {
    # zookeeperHierarchicalQuorums.md: three groups of three, weight 1.
    "docs-3x3": ({1: [1, 2, 3], 2: [4, 5, 6], 3: [7, 8, 9]}, {s: 1 for s in range(1, 10)}),
    # The same with the third group at weight 0 (the docs: zero-weight groups are discarded).
    "docs-zero-group": (
        {1: [1, 2, 3], 2: [4, 5, 6], 3: [7, 8, 9]},
        {s: 1 for s in range(1, 7)} | {7: 0, 8: 0, 9: 0},
    ),
    # Two data centres and a tie-breaker, weights unequal.
    "two-dcs-and-a-witness": ({1: [1, 2, 3], 2: [4, 5, 6], 3: [7]}, {1: 2, 4: 2, 7: 1}),
    # A weighted majority (one group).
    "weighted-5": ({1: [1, 2, 3, 4, 5]}, {1: 3, 2: 1, 3: 1, 4: 1, 5: 0}),
}


@pytest.mark.parametrize("name", sorted(ZOOKEEPER_DOC_CONFIGS))
def test_hierarchical_configs_from_the_docs_are_safe(name: str) -> None:
    groups, weights = ZOOKEEPER_DOC_CONFIGS[name]
    q = QuorumHierarchical.of(groups, weights)
    v = check_intersection(q)
    assert isinstance(v, IntersectionProof), describe(v)
    assert brute_force(q) == (True, True)


@pytest.mark.parametrize(
    "system",
    [
        weighted({1: 2, 2: 2, 3: -1}),  # two servers each above half of a total of 3
        weighted({1: 3, 2: 3, 3: -2, 4: 0}),
        # Hierarchical: group 2's negative weight makes "won" easy there; two quorums each win
        # group 2 with a different server and group 1 with a different heavy one.
        QuorumHierarchical.of({1: [1, 2, 3], 2: [4, 5, 6]}, {1: 2, 2: 2, 3: -1, 4: 1, 5: 1, 6: -3}),
    ],
    ids=["weighted-3", "weighted-4", "hierarchical-2-groups"],
)
def test_planted_unsafe_configs_are_caught_with_two_disjoint_quorums(system: QuorumSystem) -> None:
    v = check_intersection(system)
    assert_counterexample(v)
    assert "share no server" in describe(v)
    assert brute_force(system)[1] is False


def test_no_quorum_at_all_is_reported() -> None:
    q = QuorumHierarchical.of({1: [1, 2], 2: [3]}, {1: 0, 2: 0, 3: 0})
    v = check_intersection(q)
    assert isinstance(v, NoQuorum)
    assert brute_force(q) == (False, True)


@st.composite
def quorum_systems(draw: st.DrawFn) -> QuorumSystem:
    n = draw(st.integers(1, 7))
    sids = list(range(1, n + 1))
    observers = set(draw(st.sets(st.sampled_from(sids), max_size=n - 1)))
    voters = frozenset(s for s in sids if s not in observers)
    kind = draw(st.sampled_from(["majority", "weighted", "hierarchical"]))
    if kind == "majority":
        return QuorumMaj(voters)
    # Negative weights included: they are what makes unsafe systems possible at all.
    w = st.integers(-2, 3) if draw(st.booleans()) else st.integers(0, 3)
    weights = {s: draw(w) for s in sids}
    if kind == "weighted":
        return QuorumHierarchical.of({1: sids}, weights, voters)
    k = draw(st.integers(1, n))
    assign = [draw(st.integers(0, k - 1)) for _ in sids]
    groups = {g + 1: [s for s, a in zip(sids, assign, strict=True) if a == g] for g in range(k)}
    return QuorumHierarchical.of({g: m for g, m in groups.items() if m}, weights, voters)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(quorum_systems())
def test_z3_verdict_equals_brute_force(system: QuorumSystem) -> None:
    exists, intersect = brute_force(system)
    v = check_intersection(system)
    if not exists:
        assert isinstance(v, NoQuorum)
    elif intersect:
        assert isinstance(v, IntersectionProof)
    else:
        assert_counterexample(v)


def test_the_random_systems_include_unsafe_ones() -> None:
    """The agreement test above means something only if unsafe systems are generated."""
    unsafe = 0
    for seed in range(300):
        system = _seeded_system(seed)
        if brute_force(system)[1] is False:
            unsafe += 1
    assert unsafe >= 20


def _seeded_system(seed: int) -> QuorumSystem:
    # A deterministic cousin of the strategy, for counting.
    r = random.Random(seed)
    n = r.randint(2, 7)
    sids = list(range(1, n + 1))
    weights = {s: r.randint(-2, 3) for s in sids}
    k = r.randint(1, n)
    groups: dict[int, list[int]] = {}
    for s in sids:
        groups.setdefault(r.randrange(k) + 1, []).append(s)
    return QuorumHierarchical.of(groups, weights)
