"""Paths from the initial states of a TLC state graph that together cover its edges.

Rules:
- Deterministic: ties are broken by (action, params, node id); node ids are TLC fingerprints,
  fixed by `-fp 1`. The same graph always gives the same paths in the same order.
- Every path starts at an initial state and has at most `max_len` edges. An edge whose source is
  more than `max_len - 1` steps from every initial state cannot be covered and is reported.
- Greedy: a path goes by a shortest route to the source of the first uncovered edge (in BFS
  order), takes it, then keeps taking uncovered edges, walking (within the length budget) to the
  nearest uncovered edge when the current state has none left.
- With `max_paths`, the first paths are chosen to cover every action label (one path per
  uncovered label, in name order), then edges as above until the cap: the cover then states the
  fraction of edges it reached.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

import networkx as nx

from zkref.conform.stategraph import initial_states

Edge = tuple[str, str]  # (source, target): the loader keeps one edge per pair


@dataclass(frozen=True, slots=True)
class Cover:
    paths: tuple[tuple[str, ...], ...]  # node ids, first one initial
    edges_total: int
    edges_covered: int
    actions_total: int
    actions_covered: int
    unreachable_within_bound: int  # edges that no path of max_len edges can take
    max_len: int

    @property
    def edge_fraction(self) -> float:
        return self.edges_covered / self.edges_total if self.edges_total else 1.0

    @property
    def action_fraction(self) -> float:
        return self.actions_covered / self.actions_total if self.actions_total else 1.0

    def as_dict(self) -> dict[str, object]:
        return {
            "paths": len(self.paths),
            "edges_total": self.edges_total,
            "edges_covered": self.edges_covered,
            "edge_coverage": round(self.edge_fraction, 4),
            "actions_total": self.actions_total,
            "actions_covered": self.actions_covered,
            "unreachable_within_bound": self.unreachable_within_bound,
            "max_len": self.max_len,
            "longest_path": max((len(p) - 1 for p in self.paths), default=0),
        }


def _edge_sort_key(g: nx.MultiDiGraph, u: str, v: str) -> tuple[str, str, str]:
    d = g[u][v][0]
    return (d["action"], repr(d["params"]), v)


def path_edges(path: Iterable[str]) -> list[Edge]:
    p = list(path)
    return list(itertools.pairwise(p))


class _Coverer:
    def __init__(self, g: nx.MultiDiGraph, max_len: int) -> None:
        self.g = g
        self.max_len = max_len
        self.out: dict[str, list[str]] = {u: self._sorted_successors(u) for u in g}
        # BFS from the initial states: distance and a deterministic parent
        self.dist: dict[str, int] = {}
        self.parent: dict[str, str | None] = {}
        queue: deque[str] = deque()
        for s in initial_states(g):
            self.dist[s], self.parent[s] = 0, None
            queue.append(s)
        while queue:
            u = queue.popleft()
            for v in self.out[u]:
                if v not in self.dist:
                    self.dist[v], self.parent[v] = self.dist[u] + 1, u
                    queue.append(v)
        self.covered: set[Edge] = set()
        self.actions_covered: set[str] = set()

    def _sorted_successors(self, u: str) -> list[str]:
        return sorted(self.g.successors(u), key=lambda v: _edge_sort_key(self.g, u, v))

    def route_to(self, node: str) -> list[str]:
        path: list[str] = []
        cur: str | None = node
        while cur is not None:
            path.append(cur)
            cur = self.parent[cur]
        return path[::-1]

    def take(self, u: str, v: str) -> None:
        self.covered.add((u, v))
        self.actions_covered.add(self.g[u][v][0]["action"])

    def uncovered_out(self, u: str) -> str | None:
        for v in self.out[u]:
            if (u, v) not in self.covered:
                return v
        return None

    def walk_to_uncovered(self, start: str, budget: int) -> list[str] | None:
        """Shortest route (< budget edges) from start to a state with an uncovered out-edge."""
        seen = {start: None}
        queue: deque[tuple[str, int]] = deque([(start, 0)])
        prev: dict[str, str] = {}
        while queue:
            u, d = queue.popleft()
            if d > 0 and self.uncovered_out(u) is not None:
                route = [u]
                while route[-1] != start:
                    route.append(prev[route[-1]])
                return route[::-1][1:]
            if d + 1 >= budget:
                continue
            for v in self.out[u]:
                if v not in seen:
                    seen[v] = None
                    prev[v] = u
                    queue.append((v, d + 1))
        return None

    def path_through(self, u: str, v: str) -> tuple[str, ...]:
        path = self.route_to(u)
        for a, b in path_edges(path):
            self.take(a, b)
        path.append(v)
        self.take(u, v)
        while len(path) - 1 < self.max_len:
            cur = path[-1]
            nxt = self.uncovered_out(cur)
            if nxt is not None:
                path.append(nxt)
                self.take(cur, nxt)
                continue
            budget = self.max_len - (len(path) - 1)
            route = self.walk_to_uncovered(cur, budget)
            if route is None:
                break
            for node in route:
                self.take(path[-1], node)
                path.append(node)
        return tuple(path)

    def coverable(self, u: str) -> bool:
        return u in self.dist and self.dist[u] + 1 <= self.max_len


def cover(g: nx.MultiDiGraph, *, max_len: int = 40, max_paths: int | None = None) -> Cover:
    """A deterministic edge cover of `g` by paths from its initial states (see module rules)."""
    c = _Coverer(g, max_len)
    all_edges = sorted(
        ((u, v) for u, v, _ in g.edges(keys=True)),
        key=lambda e: (c.dist.get(e[0], 1 << 30), e[0], _edge_sort_key(g, *e)),
    )
    by_action: dict[str, Edge] = {}
    for u, v in all_edges:
        by_action.setdefault(g[u][v][0]["action"], (u, v))
    paths: list[tuple[str, ...]] = []

    def room() -> bool:
        return max_paths is None or len(paths) < max_paths

    for action in sorted(by_action):
        u, v = by_action[action]
        if not room():
            break
        if action not in c.actions_covered and c.coverable(u):
            paths.append(c.path_through(u, v))
    for u, v in all_edges:
        if not room():
            break
        if (u, v) not in c.covered and c.coverable(u):
            paths.append(c.path_through(u, v))
    unreachable = sum(1 for u, _ in all_edges if not c.coverable(u))
    return Cover(
        paths=tuple(paths),
        edges_total=len(all_edges),
        edges_covered=len(c.covered),
        actions_total=len(by_action),
        actions_covered=len(c.actions_covered),
        unreachable_within_bound=unreachable,
        max_len=max_len,
    )
