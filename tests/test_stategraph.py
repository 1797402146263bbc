"""TLC 2.15 state-graph dumps: the DOT parser, TLA+ values, the dump cfg, the path cover."""

from __future__ import annotations

from pathlib import Path

import networkx as nx
import pytest

from zkref.conform.pathcover import cover, path_edges
from zkref.conform.stategraph import (
    ModelValue,
    ValueSyntaxError,
    dump_cfg,
    dump_model,
    initial_states,
    parse_dot,
    parse_value,
    state_vars,
    stats,
)

TOY = Path(__file__).parent / "fixtures" / "toy"


def toy_graph() -> nx.MultiDiGraph:
    return parse_dot((TOY / "ToyCounter.dot").read_text())


def test_values() -> None:
    assert parse_value("42") == 42
    assert parse_value("-3") == -3
    assert parse_value('"LOOKING"') == "LOOKING"
    assert parse_value('"a \\"q\\" b"') == 'a "q" b'
    assert parse_value("TRUE") is True and parse_value("FALSE") is False
    assert parse_value("<<>>") == ()
    assert parse_value("<<1, <<2, 3>>>>") == (1, (2, 3))
    assert parse_value('[name |-> "Init", params |-> <<>>]') == {"name": "Init", "params": ()}
    assert parse_value("{}") == frozenset()
    assert parse_value("{1, 2}") == frozenset({1, 2})
    assert parse_value("1..3") == frozenset({1, 2, 3})
    assert parse_value("(s1 :> 0 @@ s2 :> <<1>>)") == {ModelValue("s1"): 0, ModelValue("s2"): (1,)}
    assert parse_value("[a |-> (1 :> TRUE)]") == {"a": {1: True}}
    # a set of records: elements are frozen so the set can hold them
    assert len(parse_value("{[a |-> 1], [a |-> 2]}")) == 2
    with pytest.raises(ValueSyntaxError):
        parse_value("<<1, 2")
    with pytest.raises(ValueSyntaxError):
        parse_value("1 2")


def test_parse_captured_dot() -> None:
    """tests/fixtures/toy/ToyCounter.dot is TLC 2.15's own output for ToyCounter.cfg without
    its VIEW: 13 states (8 spec states x last actions), 18 distinct transitions (TLC printed
    36 lines: each Increment twice, once per unused `q`), one initial state."""
    g = toy_graph()
    st = stats(g)
    assert (st.states, st.edges, st.initial) == (13, 18, 1)
    assert st.actions == ("Increment", "Pass")
    assert (st.view_states, st.view_edges) == (8, 12)  # what TLC reports with the VIEW
    assert st.max_depth == 5
    [init] = initial_states(g)
    assert state_vars(g, init) == {
        "holder": 1,
        "count": (0, 0),
        "lastAction": {"name": "Init", "params": ()},
    }
    # every edge carries the parameters of the step, read from its target's lastAction
    for u, v, d in g.edges(data=True):
        target = state_vars(g, v)
        assert d["action"] == target["lastAction"]["name"]
        assert d["params"] == target["lastAction"]["params"]
        if d["action"] == "Pass":
            p, q = d["params"]
            assert state_vars(g, u)["holder"] == p and target["holder"] == q
    assert {d["params"] for *_, d in g.out_edges(init, data=True)} == {(1,), (1, 2)}


def test_parser_rejects_a_view_dump() -> None:
    """With a VIEW hiding lastAction, TLC merges states and an edge's label disagrees with the
    state it points to: the loader says so instead of inventing parameters."""
    dot = (TOY / "ToyCounter.dot").read_text().splitlines()
    init_fp = next(line.split()[0] for line in dot if "style = filled" in line)
    # an edge Pass into the initial state (whose lastAction is Init)
    bad = [*dot[:-2], f'{init_fp} -> {init_fp} [label="Pass",color="black"];', *dot[-2:]]
    with pytest.raises(ValueError, match="lastAction is Init"):
        parse_dot("\n".join(bad))


def test_dump_cfg_drops_view_symmetry_and_checks() -> None:
    cfg = (Path(__file__).parents[1] / "models" / "MCZab_base.cfg").read_text()
    out = dump_cfg(cfg)
    for gone in ("VIEW", "SYMMETRY", "INVARIANTS", "Leadership", "ProcessConsistency"):
        assert gone not in out
    for kept in ("CONSTANTS", "MaxTxns = 1", "INIT Init", "NEXT Next"):
        assert kept in out


@pytest.mark.java
def test_dump_toy_with_tlc_matches_the_captured_sample(tmp_path: Path) -> None:
    """Run TLC 2.15 with -dump dot,actionlabels: same graph as the committed sample, and
    nothing written next to the model."""
    before = sorted(p.name for p in TOY.iterdir())
    d = dump_model("ToyCounter", "ToyCounter", model_dir=TOY, spec_dir=TOY)
    g = parse_dot(d.dot)
    ref = toy_graph()
    assert sorted(g.nodes) == sorted(ref.nodes)
    assert sorted((u, v, a["action"]) for u, v, a in g.edges(data=True)) == sorted(
        (u, v, a["action"]) for u, v, a in ref.edges(data=True)
    )
    assert sorted(p.name for p in TOY.iterdir()) == before


def test_cover_all_edges_deterministically() -> None:
    g = toy_graph()
    c = cover(g, max_len=10)
    assert c.edges_covered == c.edges_total == 18
    assert c.actions_covered == c.actions_total == 2
    assert c.edge_fraction == 1.0
    inits = set(initial_states(g))
    seen = set()
    for p in c.paths:
        assert p[0] in inits
        assert len(p) - 1 <= 10
        for u, v in path_edges(p):
            assert g.has_edge(u, v)
            seen.add((u, v))
    assert len(seen) == 18
    assert cover(toy_graph(), max_len=10).paths == c.paths  # deterministic


def test_cover_bounds_length_and_paths() -> None:
    g = toy_graph()
    short = cover(g, max_len=2)
    assert all(len(p) - 1 <= 2 for p in short.paths)
    # edges leaving depth >= 2 cannot be reached by a 2-edge path
    assert short.unreachable_within_bound > 0
    assert short.edges_covered + short.unreachable_within_bound == short.edges_total
    capped = cover(g, max_len=10, max_paths=1)
    assert len(capped.paths) == 1
    # the action-first phase: the single path still takes every action label
    assert capped.actions_covered == 2
    assert 0 < capped.edge_fraction < 1


ZAB_2SRV = Path(__file__).parent / "fixtures" / "zab" / "MCZab_2srv.cfg"


@pytest.mark.java
def test_dump_small_zab_model() -> None:
    """A 2-server Zab model (tests/fixtures/zab): model values, functions over them, every
    edge's parameters from lastAction, a complete cover. (The repository's Zab models are far
    larger without VIEW/SYMMETRY: see docs/conformance.md.)"""
    g = parse_dot(dump_model("MCZab", "MCZab_2srv", cfg_file=ZAB_2SRV).dot)
    st = stats(g)
    assert st.initial == 1
    assert {"ElectLeader", "LeaderProcessRequest", "FollowerProcessPROPOSAL"} <= set(st.actions)
    assert st.states > st.view_states > 20
    s1, s2 = ModelValue("s1"), ModelValue("s2")
    for *_, d in g.edges(data=True):
        assert d["params"] is not None and d["params"][0] in {s1, s2}
    # ElectLeader(i, Q): a server and a quorum (a set of model values)
    elect = [d["params"] for *_, d in g.edges(data=True) if d["action"] == "ElectLeader"]
    assert (s1, frozenset({s1, s2})) in elect
    [init] = initial_states(g)
    assert set(state_vars(g, init)["history"]) == {s1, s2}  # a function s1 :> .. @@ s2 :> ..
    c = cover(g, max_len=60)
    assert c.edge_fraction == 1.0 and c.actions_covered == len(st.actions)
