"""z3 proof that every two quorums of a quorum system intersect, or two disjoint quorums.

The encoding is written from the system's parameters (voters, groups, weights), not by calling
``contains_quorum``, so the two can check each other:

- two quorums Q1, Q2 are membership vectors over the voters (``q1_<sid>``, ``q2_<sid>``, 0 or 1);
- majority: ``Sum(q_s) > len(voters) // 2``;
- hierarchical: per group, ``won_g = Sum(q_s for s in g) >= 1 And Sum(w_s * q_s) > half(G_g)``
  with ``half`` Java's truncating division of the group's total weight, and
  ``Sum(If(won_g, 1, 0)) > numGroups // 2``;
- the query asserts both quorum predicates and ``q1_s + q2_s <= 1`` for every voter:
  *unsat* is the proof that no two quorums are disjoint; *sat* gives a model, read back as two
  disjoint quorums.

The SMT-LIB text of the query is kept with the verdict, so the proof can be re-run by any solver.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import z3

from zkref.core.quorum import QuorumHierarchical, QuorumMaj, QuorumSystem, java_half

__all__ = [
    "DisjointQuorums",
    "IntersectionProof",
    "NoQuorum",
    "Verdict",
    "check_intersection",
    "describe",
]


@dataclass(frozen=True, slots=True)
class IntersectionProof:
    """z3 answered unsat: every two quorums share a voter."""

    system: QuorumSystem
    seconds: float
    smt2: str  # the refuted query, SMT-LIB 2

    @property
    def safe(self) -> bool:
        return True


@dataclass(frozen=True, slots=True)
class DisjointQuorums:
    """A counterexample: two quorums with no voter in common."""

    system: QuorumSystem
    q1: frozenset[int]
    q2: frozenset[int]
    seconds: float

    @property
    def safe(self) -> bool:
        return False


@dataclass(frozen=True, slots=True)
class NoQuorum:
    """Not even one set of voters is a quorum: intersection holds vacuously, nothing can commit."""

    system: QuorumSystem
    seconds: float

    @property
    def safe(self) -> bool:
        return True


Verdict = IntersectionProof | DisjointQuorums | NoQuorum


def _quorum_predicate(system: QuorumSystem, q: dict[int, Any]) -> Any:
    match system:
        case QuorumMaj():
            return z3.Sum([q[s] for s in sorted(system.voters)]) > system.half
        case QuorumHierarchical():
            w = dict(system.weights)
            won = []
            for _, members in system.groups:
                voting = sorted(members & system.voters)
                total = sum(w[s] for s in members)
                if not voting:
                    continue  # no voter can ever win this group
                got = z3.Sum([w[s] * q[s] for s in voting])
                present = z3.Sum([q[s] for s in voting]) >= 1
                won.append(z3.And(present, got > java_half(total)))
            num_groups = sum(1 for _, m in system.groups if sum(w[s] for s in m) != 0)
            if not won:
                return z3.BoolVal(False)
            return z3.Sum([z3.If(g, 1, 0) for g in won]) > num_groups // 2
    raise AssertionError(system)  # pragma: no cover


def _vars(system: QuorumSystem, name: str) -> tuple[dict[int, Any], list[Any]]:
    """Membership as 0/1 integers (not booleans): then "disjoint" is ``q1_s + q2_s <= 1``, and
    the simplex refutes two majorities at once by adding those up (as booleans under ``If``,
    51 voters took z3 past 20 s: a pigeonhole for the SAT core)."""
    q = {s: z3.Int(f"{name}_{s}") for s in sorted(system.voters)}
    return q, [c for v in q.values() for c in (v >= 0, v <= 1)]


def _read(model: Any, q: dict[int, Any]) -> frozenset[int]:
    return frozenset(s for s, v in q.items() if model.eval(v, model_completion=True).as_long())


def _solver() -> Any:
    # The plain "smt" tactic: the default solver's preprocessing may turn the 0/1 integers back
    # into booleans (pseudo-boolean encoding), and with them the easy linear refutation into a
    # hard pigeonhole (majority of 51: unknown after 10 s with SolverFor("QF_LIA"), 0.02 s here).
    return z3.Tactic("smt").solver()


def check_intersection(system: QuorumSystem, *, timeout_ms: int = 20_000) -> Verdict:
    """Prove that every two quorums of ``system`` intersect, or return two disjoint ones."""
    t0 = time.perf_counter()
    (q1, bounds1), (q2, bounds2) = _vars(system, "q1"), _vars(system, "q2")
    one = _solver()
    one.set("timeout", timeout_ms)
    one.add(*bounds1, _quorum_predicate(system, q1))
    r = one.check()
    if r == z3.unsat:
        return NoQuorum(system, time.perf_counter() - t0)
    if r != z3.sat:
        raise RuntimeError(f"z3 gave {r} on the quorum-exists query: {one.reason_unknown()}")
    s = _solver()
    s.set("timeout", timeout_ms)
    s.add(*bounds1, *bounds2, _quorum_predicate(system, q1), _quorum_predicate(system, q2))
    s.add([q1[v] + q2[v] <= 1 for v in sorted(system.voters)])
    r = s.check()
    if r == z3.unsat:
        return IntersectionProof(system, time.perf_counter() - t0, s.to_smt2())
    if r != z3.sat:
        raise RuntimeError(f"z3 gave {r} on the intersection query: {s.reason_unknown()}")
    m = s.model()
    a, b = sorted((_read(m, q1), _read(m, q2)), key=sorted)  # a stable message for operators
    return DisjointQuorums(system, a, b, time.perf_counter() - t0)


def describe(verdict: Verdict) -> str:
    """One line for an operator."""
    match verdict:
        case IntersectionProof():
            return (
                f"every two quorums of the {len(verdict.system.voters)} voters intersect "
                f"(z3: unsat in {verdict.seconds * 1000:.1f} ms)"
            )
        case DisjointQuorums():
            a = ", ".join(str(s) for s in sorted(verdict.q1))
            b = ", ".join(str(s) for s in sorted(verdict.q2))
            return (
                f"quorums {{{a}}} and {{{b}}} share no server: two leaders could each commit "
                f"with one of them"
            )
        case NoQuorum():
            return "no set of voting servers is a quorum: no leader can ever be elected"
    raise AssertionError(verdict)  # pragma: no cover
