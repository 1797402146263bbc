"""TLC state-graph paths of spec/FastLeaderElection.tla replayed on the FastLeaderElection cores.

The CI model is tests/fixtures/fle/MCFLE_2srv.cfg (2 servers, 1 restart): TLC dumps it in a few
seconds, every edge is covered and replayed with the disabled-action check. The large models
(MCFLE_epochs, MCFLE_liveness) are run by `python -m zkref.conform.replay_fle run` and their
figures kept in docs/conformance.md; their stored paths are replayed here by name.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import networkx as nx
import pytest

from zkref.conform.pathcover import cover
from zkref.conform.replay import load_path, path_from_graph, replay
from zkref.conform.replay_fle import (
    FleBinding,
    cfg_constant,
    replay_stored,
    run_model,
    trace_dir,
)
from zkref.conform.stategraph import load_model_graph, stats

FIXTURE = Path(__file__).parent / "fixtures" / "fle" / "MCFLE_2srv.cfg"

pytestmark = pytest.mark.java


@functools.cache
def graph() -> nx.MultiDiGraph:
    return load_model_graph("MCFLE", "MCFLE_2srv", cfg_file=FIXTURE)


def test_small_model_graph() -> None:
    st = stats(graph())
    assert st.initial == 1
    assert set(st.actions) == {
        "FLEHandleNotmsg",
        "FLEReplyDecided",
        "FLEWaitNewNotmsg",
        "FLERestart",
    }
    assert st.states >= st.view_states > 10
    assert cfg_constant(FIXTURE.read_text(), "MaxRestarts") == 1


def test_every_edge_replays_cleanly_with_disabled_checks(tmp_path: Path) -> None:
    report = run_model("MCFLE_2srv", cfg_file=FIXTURE, graph=graph(), store=3, out_dir=tmp_path)
    assert report.cover["edge_coverage"] == 1.0
    assert report.cover["actions_covered"] == 4
    assert report.clean == report.replayed > 0, report.divergences[:3]
    assert report.validated_edges == report.graph["edges"]
    # stored paths replay by name, from their small JSON files
    assert len(report.stored) == 3
    for name in report.stored:
        f = tmp_path / "MCFLE_2srv" / f"{name}.json"
        assert f.stat().st_size < 40_000
        assert json.loads(f.read_text())["max_restarts"] == 1
        assert replay_stored(str(f)).ok


def _first_divergence(make: Any, check_disabled: bool = True) -> str:
    g = graph()
    checked: set[str] = set()
    for k, nodes in enumerate(cover(g, max_len=40).paths):
        path = path_from_graph(g, nodes, f"MCFLE_2srv-{k:05d}")
        r = replay(path, make(), graph=g, check_disabled=check_disabled, checked_nodes=checked)
        if r.divergence is not None:
            return str(r.divergence)
    raise AssertionError("the planted divergence was not caught")


def test_core_without_finalize_wait_is_rejected() -> None:
    """The core's `bug_no_finalize_wait` removes the finalize-wait guard: it decides at once
    where the (correct) spec waits."""
    msg = _first_divergence(lambda: FleBinding(max_restarts=1, bug_no_finalize_wait=True))
    assert msg == (
        "MCFLE_2srv-00000: step 2 FLEHandleNotmsg(2, 1): variable state[2] differs: "
        'spec "LOOKING", implementation "FOLLOWING"'
    )


class _WrongMapping(FleBinding):
    """The planted mistake: recvVotes without a server's own vote."""

    def spec_vars(self) -> dict[str, Any]:
        out = super().spec_vars()
        nil = {"leader": 0, "zxid": 0, "epoch": 0, "round": 0, "state": "NONE"}
        out["recvVotes"] = {i: {**row, i: nil} for i, row in out["recvVotes"].items()}
        return out


def test_wrong_refinement_mapping_is_rejected() -> None:
    msg = _first_divergence(lambda: _WrongMapping(max_restarts=1))
    assert msg.startswith("MCFLE_2srv-00000: initial state: variable recvVotes[1][1].epoch")


class _NoChannelPop(FleBinding):
    """The planted mistake in the environment: a handled notification stays in flight."""

    def dispatch(self, call: Any) -> Any:
        d = super().dispatch(call)
        if d.args:
            i, j = call.params
            self.msgs[j][i].insert(0, d.args[0])
        return d


def test_environment_mistake_is_rejected() -> None:
    msg = _first_divergence(lambda: _NoChannelPop(max_restarts=1), check_disabled=False)
    assert "step 1 FLEHandleNotmsg" in msg and "variable msgs[" in msg


STORED = sorted(p.stem for p in trace_dir().glob("MCFLE_*/*.json"))


@pytest.mark.parametrize("name", STORED)
def test_stored_paths_replay_by_name(name: str) -> None:
    """Every stored path replays to its recorded verdict: clean, or the recorded finding."""
    model = name.rsplit("-", 1)[0]
    doc = json.loads((trace_dir() / model / f"{name}.json").read_text())
    r = replay_stored(name)
    expected = doc.get("divergence")
    if expected is None:
        assert r.ok, str(r.divergence)
    else:
        # a recorded finding (docs/conformance.md): the same step and variable diverge
        assert r.divergence is not None, f"{name}: the recorded divergence is gone: {expected}"
        assert str(r.divergence) == expected


@pytest.mark.skipif("MCFLE_liveness-00005" not in STORED, reason="stored path not present")
def test_finding_unwait_is_one_core_call_for_two_spec_steps() -> None:
    """Finding (docs/conformance.md): during the finalize wait a better notification takes two
    spec steps (FLEHandleNotmsg ends the wait and leaves it queued; the next FLEHandleNotmsg of
    the same pair handles it); the core does both in one call. Strictly, step 9 diverges; with
    the binding told about the coarser step (`merge_unwait`), the whole path refines the spec."""
    name = "MCFLE_liveness-00005"
    strict = replay_stored(name)
    assert strict.divergence is not None
    assert str(strict.divergence).startswith(f"{name}: step 9 FLEHandleNotmsg(3, 1): variable ")
    f = trace_dir() / "MCFLE_liveness" / f"{name}.json"
    merged = replay(load_path(f), FleBinding(max_restarts=0, merge_unwait=True))
    assert merged.ok, str(merged.divergence)
    assert merged.merged == 1
