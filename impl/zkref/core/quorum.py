"""Quorum systems: ZooKeeper's QuorumMaj and QuorumHierarchical (weighted = one group).

Rules:
- a quorum is a set of *voting* server ids (participants); ids of observers or unknown servers in
  the argument are ignored, as ZooKeeper's callers never put them in an ack set
  (SyncedLearnerTracker.addAck only records voting members);
- majority (QuorumMaj): more than ``len(voters) // 2`` voters;
- hierarchical (QuorumHierarchical, zoo.cfg ``group.G=a:b:c`` and ``weight.N``): per group, add
  the weights of the set's members; a group is won when that sum exceeds ``groupWeight / 2``
  (Java's ``long`` division, which truncates toward zero); the set is a quorum when the number of
  groups won exceeds ``numGroups / 2``, where numGroups counts the ``group`` lines minus the groups
  of total weight exactly 0; a participant without ``weight.N`` weighs 1;
- a group only counts as won if at least one of its servers is in the set (ZooKeeper adds up
  weights only for groups it meets), and the empty set is never a quorum;
- weighted: ZooKeeper has no separate weighted verifier (``weight.N`` alone makes the config
  hierarchical and then every participant must be in a group): a weighted quorum system is the
  hierarchical one with a single group holding every participant;
- nothing here rejects a bad configuration: the rules are evaluated as ZooKeeper evaluates them,
  even when (negative weights) two disjoint sets are both quorums; ``zkref.conform.quorum_z3``
  decides whether every two quorums intersect, and the zoo.cfg loader refuses those that do not.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

__all__ = [
    "QuorumHierarchical",
    "QuorumMaj",
    "QuorumSystem",
    "java_half",
    "weighted",
]


def java_half(x: int) -> int:
    """``x / 2`` on a Java ``long``: truncation toward zero (-3 / 2 == -1, not -2)."""
    return x // 2 if x >= 0 else -((-x) // 2)


@dataclass(frozen=True, slots=True)
class QuorumMaj:
    """ZooKeeper's QuorumMaj over the participants (``server.N`` lines not marked observer)."""

    voters: frozenset[int]

    @property
    def half(self) -> int:
        return len(self.voters) // 2

    def contains_quorum(self, ids: Iterable[int]) -> bool:
        return len(self.voters.intersection(ids)) > self.half


@dataclass(frozen=True, slots=True)
class QuorumHierarchical:
    """ZooKeeper's QuorumHierarchical.

    ``groups`` maps a group id to its servers (disjoint); ``weights`` gives every grouped server's
    weight (the zoo.cfg loader fills in ZooKeeper's default of 1 for participants); ``voters`` are
    the participants, the only ids a quorum may contain.
    """

    groups: tuple[tuple[int, frozenset[int]], ...]
    weights: tuple[tuple[int, int], ...]
    voters: frozenset[int]

    def __post_init__(self) -> None:
        seen: set[int] = set()
        for gid, members in self.groups:
            assert not (members & seen), f"group {gid} shares servers with another group"
            assert members, f"group {gid} is empty"
            seen |= members
        w = dict(self.weights)
        assert seen <= w.keys(), f"grouped servers without a weight: {sorted(seen - w.keys())}"

    @staticmethod
    def of(
        groups: Mapping[int, Iterable[int]],
        weights: Mapping[int, int],
        voters: Iterable[int] | None = None,
    ) -> QuorumHierarchical:
        """Build from plain mappings; ``voters`` defaults to every grouped server; a voter
        without a weight weighs 1 (ZooKeeper's default for participants)."""
        gs = tuple(sorted((g, frozenset(m)) for g, m in groups.items()))
        grouped = frozenset(s for _, m in gs for s in m)
        vs = grouped if voters is None else frozenset(voters)
        ws = {s: 1 for s in vs} | dict(weights)
        return QuorumHierarchical(gs, tuple(sorted(ws.items())), vs)

    def weight(self, sid: int) -> int:
        return dict(self.weights).get(sid, 0)

    def group_of(self, sid: int) -> int | None:
        for gid, members in self.groups:
            if sid in members:
                return gid
        return None

    def group_weight(self, gid: int) -> int:
        w = dict(self.weights)
        members = dict(self.groups)[gid]
        return sum(w[s] for s in members)

    @property
    def num_groups(self) -> int:
        """``numGroups``: the group lines minus the groups whose total weight is exactly 0."""
        return sum(1 for gid, _ in self.groups if self.group_weight(gid) != 0)

    def contains_quorum(self, ids: Iterable[int]) -> bool:
        members = self.voters.intersection(ids)
        if not members:
            return False
        w = dict(self.weights)
        expansion: dict[int, int] = {}
        for sid in members:
            gid = self.group_of(sid)
            if gid is None:
                continue
            expansion[gid] = expansion.get(gid, 0) + w[sid]
        won = sum(1 for gid, got in expansion.items() if got > java_half(self.group_weight(gid)))
        return won > self.num_groups // 2


QuorumSystem = QuorumMaj | QuorumHierarchical


def weighted(weights: Mapping[int, int], gid: int = 1) -> QuorumHierarchical:
    """A weighted-majority system as ZooKeeper builds it: one group of every weighted voter."""
    return QuorumHierarchical.of({gid: weights.keys()}, weights, weights.keys())
