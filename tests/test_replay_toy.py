"""The replay engine on a toy spec+core pair (tests/fixtures/toy/ToyCounter.tla), with planted
bugs it must reject naming the first diverging step and variable (issue 5, section 4)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import networkx as nx
import pytest

from zkref.conform.pathcover import cover
from zkref.conform.replay import (
    ActionCall,
    Dispatch,
    DispatchError,
    SpecPath,
    load_path,
    path_from_graph,
    registered_method,
    replay,
    save_path,
)
from zkref.conform.stategraph import parse_dot
from zkref.core.spec_action import spec_action

TOY = Path(__file__).parent / "fixtures" / "toy"


@dataclass(frozen=True, slots=True)
class GiveToken:
    to: int


class ToyNode:
    """One process of ToyCounter: a counter bounded by `max_count`, incremented only while the
    node holds the token. Test-only flags remove a guard or corrupt an update."""

    def __init__(
        self,
        pid: int,
        procs: list[int],
        max_count: int,
        *,
        bug_no_max_guard: bool = False,
        bug_pass_to_self: bool = False,
        bug_pass_increments: bool = False,
    ) -> None:
        self.pid, self.procs, self.max_count = pid, procs, max_count
        self.count = 0
        self.holds = pid == 1
        self.bug_no_max_guard = bug_no_max_guard
        self.bug_pass_to_self = bug_pass_to_self
        self.bug_pass_increments = bug_pass_increments

    @spec_action("Increment")
    def increment(self) -> list[GiveToken]:
        if not self.holds:
            return []
        if self.count >= self.max_count and not self.bug_no_max_guard:
            return []
        self.count += 1
        return []

    @spec_action("Pass")
    def pass_token(self, to: int) -> list[GiveToken]:
        if not self.holds or (to == self.pid and not self.bug_pass_to_self):
            return []
        self.holds = False
        if self.bug_pass_increments:
            self.count += 1
        return [GiveToken(to)]

    def receive_token(self) -> None:
        self.holds = True


class ToyBinding:
    def __init__(self, *, wrong_mapping: bool = False, **bugs: bool) -> None:
        self.wrong_mapping = wrong_mapping
        self.bugs = bugs
        self.nodes: dict[int, ToyNode] = {}

    def reset(self, initial: Mapping[str, Any]) -> None:
        procs = list(range(1, len(initial["count"]) + 1))
        self.nodes = {p: ToyNode(p, procs, 1, **self.bugs) for p in procs}

    def dispatch(self, call: ActionCall) -> Dispatch:
        match call.action:
            case "Increment":
                return Dispatch(self.nodes[call.params[0]])
            case "Pass":
                p, q = call.params
                return Dispatch(self.nodes[p], (q,))
        raise ValueError(call.action)

    def after(self, call: ActionCall, result: object) -> None:
        assert isinstance(result, list)
        for e in result:
            self.nodes[e.to].receive_token()

    def spec_vars(self) -> dict[str, Any]:
        holders = [p for p, n in self.nodes.items() if n.holds]
        assert len(holders) == 1, holders
        holder = holders[0]
        if self.wrong_mapping and self.nodes[holder].count > 0:
            holder = 3 - holder  # the planted mistake: "the holder" read from the wrong node
        return {"count": {p: n.count for p, n in self.nodes.items()}, "holder": holder}

    def candidates(self) -> list[ActionCall]:
        ps = sorted(self.nodes)
        return [ActionCall("Increment", (p,)) for p in ps] + [
            ActionCall("Pass", (p, q)) for p in ps for q in ps
        ]

    def core_vars(self) -> frozenset[str]:
        return frozenset({"count", "holder"})

    def effects_empty(self, result: object) -> bool:
        return result == []


def graph() -> nx.MultiDiGraph:
    return parse_dot((TOY / "ToyCounter.dot").read_text())


def paths() -> list[SpecPath]:
    g = graph()
    return [path_from_graph(g, p, f"toy-{k}") for k, p in enumerate(cover(g, max_len=10).paths)]


def test_dispatch_goes_through_the_registry() -> None:
    node = ToyNode(1, [1, 2], 1)
    assert registered_method("Increment", node) == node.increment
    assert registered_method("Pass", node) == node.pass_token
    with pytest.raises(DispatchError, match="FLEHandleNotmsg"):
        registered_method("FLEHandleNotmsg", node)
    with pytest.raises(DispatchError, match="Nope"):
        registered_method("Nope", node)


def test_correct_core_replays_every_path_with_disabled_checks() -> None:
    g = graph()
    results = [replay(p, ToyBinding(), graph=g, check_disabled=True) for p in paths()]
    assert results and all(r.ok for r in results), [str(r.divergence) for r in results]
    assert sum(r.steps for r in results) >= 18  # every edge was taken
    assert all(r.disabled_checked > 0 for r in results)


def _first_failure(**kw: bool) -> str:
    g = graph()
    wrong = kw.pop("wrong_mapping", False)
    for p in paths():
        r = replay(p, ToyBinding(wrong_mapping=wrong, **kw), graph=g, check_disabled=True)
        if r.divergence is not None:
            return str(r.divergence)
    raise AssertionError("the planted bug was not caught")


def test_removed_guard_is_rejected_by_the_disabled_check() -> None:
    """Without the `count < Max` guard the core increments where the spec cannot: no enabled
    step shows it, the disabled-action check does."""
    # replaying the enabled steps alone does not see it
    assert all(r.ok for r in (replay(p, ToyBinding(bug_no_max_guard=True)) for p in paths()))
    msg = _first_failure(bug_no_max_guard=True)
    assert "Increment(1) is disabled in the spec" in msg
    assert "changed count[1]: 1 -> 2" in msg
    assert msg.startswith("toy-0: at step 1,")


def test_removed_self_pass_guard_is_rejected() -> None:
    msg = _first_failure(bug_pass_to_self=True)
    assert "Pass(1, 1) is disabled in the spec" in msg


def test_wrong_update_is_rejected_at_the_step() -> None:
    msg = _first_failure(bug_pass_increments=True)
    assert msg == "toy-0: step 2 Pass(1, 2): variable count[1] differs: spec 1, implementation 2"


def test_wrong_refinement_mapping_is_rejected() -> None:
    msg = _first_failure(wrong_mapping=True)
    assert msg == "toy-0: step 1 Increment(1): variable holder differs: spec 1, implementation 2"


def test_stored_path_round_trips(tmp_path: Path) -> None:
    g = graph()
    nodes = cover(g, max_len=10).paths[0]
    f = tmp_path / "toy-0.json"
    save_path(g, nodes, f, {"name": "toy-0", "model": "ToyCounter"})
    loaded = load_path(f)
    direct = path_from_graph(g, nodes, "toy-0")
    assert loaded.name == "toy-0"
    assert loaded.initial == direct.initial
    assert loaded.steps == direct.steps
    assert loaded.nodes == tuple(nodes)
    assert replay(loaded, ToyBinding(), graph=g, check_disabled=True).ok


def test_mutated_stored_path_is_rejected(tmp_path: Path) -> None:
    """A stored path edited by hand (step 2 claims count[1] = 0) is rejected at that step."""
    g = graph()
    nodes = cover(g, max_len=10).paths[0]
    f = tmp_path / "toy-0.json"
    save_path(g, nodes, f, {"name": "toy-0", "model": "ToyCounter"})
    doc = json.loads(f.read_text())
    assert doc["steps"][1]["action"] == "Pass"
    doc["steps"][1]["changed"]["count"] = "<<0, 0>>"
    f.write_text(json.dumps(doc))
    r = replay(load_path(f), ToyBinding())
    assert str(r.divergence) == (
        "toy-0: step 2 Pass(1, 2): variable count[1] differs: spec 0, implementation 1"
    )
    assert r.steps == 1
