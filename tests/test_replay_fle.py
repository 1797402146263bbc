"""TLC state-graph paths of spec/FastLeaderElection.tla replayed on the FastLeaderElection cores.

The CI model is tests/fixtures/fle/MCFLE_2srv.cfg (2 servers, 1 restart): TLC dumps it in a few
seconds, every edge is covered and replayed with the disabled-action check. The large models
(MCFLE_epochs, MCFLE_liveness) are run by `python -m zkref.conform.replay_fle run` and their
figures kept in docs/conformance.md; their stored paths are replayed here by name, strictly
(one core call per spec step, the finalize wait's end included).
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import networkx as nx
import pytest

from zkref.conform.pathcover import cover
from zkref.conform.replay import cfg_constant, load_path, path_from_graph, replay, trace_dir
from zkref.conform.replay_fle import FleBinding, replay_stored, run_model
from zkref.conform.stategraph import load_model_graph, stats
from zkref.core.election import Effect, FastLeaderElection, Notification, Requeue

FIXTURE = Path(__file__).parent / "fixtures" / "fle" / "MCFLE_2srv.cfg"
# the same model with vote resends (FLENotmsgTimeout, MaxResends = 2)
RESEND_FIXTURE = Path(__file__).parent / "fixtures" / "fle" / "MCFLE_2srv_resend.cfg"

pytestmark = pytest.mark.java


@functools.cache
def graph() -> nx.MultiDiGraph:
    return load_model_graph("MCFLE", "MCFLE_2srv", cfg_file=FIXTURE)


def test_small_model_graph() -> None:
    st = stats(graph())
    assert st.initial == 1
    assert set(st.actions) == {
        "FLEHandleNotmsg",
        "FLEFinalizeWaitNotmsg",
        "FLEReplyDecided",
        "FLEWaitNewNotmsg",
        "FLERestart",
    }
    assert st.states >= st.view_states > 10
    assert cfg_constant(FIXTURE.read_text(), "MaxRestarts") == 1


def test_every_edge_replays_cleanly_with_disabled_checks(tmp_path: Path) -> None:
    report = run_model("MCFLE_2srv", cfg_file=FIXTURE, graph=graph(), store=3, out_dir=tmp_path)
    assert report.cover["edge_coverage"] == 1.0
    assert report.cover["actions_covered"] == 5
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


def _interrupted_waits() -> list[tuple[str, int]]:
    """Stored paths with a better vote during a finalize wait: a FLEFinalizeWaitNotmsg step
    that changes `waiting` and leaves `msgs` alone (the notification stays queued)."""
    out = []
    for name in STORED:
        doc = json.loads((trace_dir() / name.rsplit("-", 1)[0] / f"{name}.json").read_text())
        for k, st in enumerate(doc["steps"], 1):
            if st["action"] == "FLEFinalizeWaitNotmsg" and set(st["changed"]) == {"waiting"}:
                out.append((name, k))
                break
    return out


class _OneCallCore(FastLeaderElection):
    """The planted granularity mistake (the core before 2026-11): a better vote during the
    finalize wait is handled in the same call that ends the wait."""

    def finalize_wait_notification(self, n: Notification) -> list[Effect | Requeue]:
        out = super().finalize_wait_notification(n)
        if out == [Requeue(n)]:
            return list(self.process_notification(n))
        return out


class _OneCallBinding(FleBinding):
    def reset(self, initial: Any) -> None:
        super().reset(initial)
        for core in self.cores.values():
            core.__class__ = _OneCallCore


def test_better_vote_during_the_wait_is_two_steps_in_core_and_spec() -> None:
    """Spec FLEFinalizeWaitNotmsg (the wait ends, the notification stays queued) then a later
    FLEHandleNotmsg: the core takes the same two steps, so the strict replay passes; a core that
    does both in one call is rejected at the first of them."""
    found = _interrupted_waits()
    assert found, "no stored path has a better vote during the finalize wait"
    for name, _ in found:
        assert replay_stored(name).ok
    name, k = found[0]
    doc = json.loads((trace_dir() / name.rsplit("-", 1)[0] / f"{name}.json").read_text())
    r = replay(load_path(trace_dir() / doc["model"] / f"{name}.json"), _OneCallBinding())
    assert r.divergence is not None and r.divergence.step == k, str(r.divergence)
    assert str(r.divergence.call).startswith("FLEFinalizeWaitNotmsg(")


# ------------------------------------------------------------------ resends (FLENotmsgTimeout)


@functools.cache
def resend_graph() -> nx.MultiDiGraph:
    return load_model_graph("MCFLE", "MCFLE_2srv_resend", cfg_file=RESEND_FIXTURE)


def test_resend_model_replays_cleanly_with_disabled_checks(tmp_path: Path) -> None:
    """FLENotmsgTimeout is reachable (the model's graph has it) and every edge replays on the
    cores: the binding lets i's resend timer run out only while nothing is in flight to i and
    MaxResends is not used up, and the disabled check finds the core silent elsewhere (in the
    finalize wait, decided)."""
    assert cfg_constant(RESEND_FIXTURE.read_text(), "MaxResends") == 2
    g = resend_graph()
    assert "FLENotmsgTimeout" in stats(g).actions
    report = run_model(
        "MCFLE_2srv_resend", cfg_file=RESEND_FIXTURE, graph=g, store=1, out_dir=tmp_path
    )
    assert report.cover["edge_coverage"] == 1.0
    assert report.cover["actions_covered"] == 6
    assert report.clean == report.replayed > 0, report.divergences[:3]
    assert report.validated_edges == report.graph["edges"]
    (name,) = report.stored
    doc = json.loads((tmp_path / "MCFLE_2srv_resend" / f"{name}.json").read_text())
    assert doc["max_resends"] == 2
    assert replay_stored(str(tmp_path / "MCFLE_2srv_resend" / f"{name}.json")).ok


class _ResendWhileWaitingCore(FastLeaderElection):
    """The planted bug: the resend timer also runs during the finalize wait (ZooKeeper's inner
    loop polls with finalizeWait and never resends)."""

    def notification_timeout(self) -> list[Effect]:
        waiting, self.waiting = self.waiting, False
        out = super().notification_timeout()
        self.waiting = waiting
        return out


class _ResendWhileWaitingBinding(FleBinding):
    def reset(self, initial: Any) -> None:
        super().reset(initial)
        for core in self.cores.values():
            core.__class__ = _ResendWhileWaitingCore


def test_resend_during_the_finalize_wait_is_rejected() -> None:
    g = resend_graph()
    checked: set[str] = set()
    for k, nodes in enumerate(cover(g, max_len=40).paths):
        path = path_from_graph(g, nodes, f"MCFLE_2srv_resend-{k:05d}")
        binding = _ResendWhileWaitingBinding(max_restarts=1, max_resends=2)
        r = replay(path, binding, graph=g, check_disabled=True, checked_nodes=checked)
        if r.divergence is not None:
            assert "FLENotmsgTimeout" in str(r.divergence), str(r.divergence)
            return
    raise AssertionError("a resend during the finalize wait was not caught")
