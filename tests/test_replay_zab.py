"""TLC state-graph paths of spec/Zab.tla replayed on the Zab cores in the simulator.

The CI model is models/MCZab_replay.cfg (2 servers, 1 txn, 1 crash, epochs <= 2): TLC dumps it
in a few seconds (1,199 states, 1,662 edges, 20 actions without VIEW/SYMMETRY), every edge is
covered and replayed with the refinement mapping compared after every step. The disabled-action
check (a deep copy of the cluster per spec-disabled call) runs on the 2-server, no-crash
tests/fixtures/zab/MCZab_2srv.cfg. Planted divergences: a wrong mapping, core bug flags (a
removed guard among them), the cores' eager follow-ups. Cost: about 35 s on this machine.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import networkx as nx
import pytest

from zkref.conform.pathcover import cover
from zkref.conform.replay import load_path, path_from_graph, replay, trace_dir
from zkref.conform.replay_zab import Bounds, ZabBinding, project_path, replay_stored, run_model
from zkref.conform.stategraph import load_model_graph, stats
from zkref.conform.tlc import repo_root
from zkref.core.zab.effects import Effect
from zkref.core.zab.follower import Follower
from zkref.core.zab.leader import Leader
from zkref.core.zab.messages import NlPhase, ServerState

MODEL = repo_root() / "models" / "MCZab_replay.cfg"
SMALL = Path(__file__).parent / "fixtures" / "zab" / "MCZab_2srv.cfg"
# the same with the spec's InitLimitTimeouts switch on (LeaderInitLimitTimeout explored)
SMALL_INITLIMIT = SMALL.with_name("MCZab_2srv_initlimit.cfg")

pytestmark = pytest.mark.java


@functools.cache
def graph() -> nx.MultiDiGraph:
    return load_model_graph("MCZab", "MCZab_replay", cfg_file=MODEL)


@functools.cache
def small_graph() -> nx.MultiDiGraph:
    return load_model_graph("MCZab", "MCZab_2srv", cfg_file=SMALL)


def test_model_graph() -> None:
    st = stats(graph())
    assert st.initial == 1
    # every action of the correct protocol but the partition ones (MaxPartitions = 0)
    assert set(st.actions) == {
        "ElectLeader",
        "FollowLeader",
        "LeaderProcessFOLLOWERINFO",
        "FollowerProcessLEADERINFO",
        "LeaderProcessACKEPOCH",
        "LeaderSyncFollower",
        "FollowerProcessSyncMessage",
        "FollowerProcessNEWLEADER",
        "FollowerUpdateCurrentEpoch",
        "FollowerReplyACKLD",
        "LeaderProcessACKLD",
        "FollowerProcessUPTODATE",
        "LeaderProcessRequest",
        "FollowerProcessPROPOSAL",
        "NodeFsyncLog",
        "LeaderProcessACK",
        "FollowerProcessCOMMIT",
        "NodeCrash",
        "NodeStart",
        "LeaderTimeout",
    }
    assert st.states >= st.view_states > 400
    assert Bounds.of_cfg(MODEL.read_text()) == Bounds(2, 1, 1, 0)


def test_every_edge_replays_cleanly(tmp_path: Path) -> None:
    report = run_model(str(MODEL), graph=graph(), check_disabled=False, store=2, out_dir=tmp_path)
    assert report.cover["edge_coverage"] == 1.0
    assert report.cover["actions_covered"] == report.cover["actions_total"] == 20
    assert report.clean == report.replayed > 200, report.divergences[:3]
    assert report.validated_edges == report.graph["edges"]
    for name in report.stored:
        f = tmp_path / "MCZab_replay" / f"{name}.json"
        assert f.stat().st_size < 60_000
        assert replay_stored(str(f)).ok


def test_small_model_with_disabled_checks() -> None:
    """Every call the host could make that the spec disables leaves the cores alone."""
    report = run_model(str(SMALL), graph=small_graph(), check_disabled=True, store=0)
    assert report.cover["edge_coverage"] == 1.0
    assert report.clean == report.replayed > 5, report.divergences[:3]
    assert report.disabled_checked > 300


def _first_divergence(
    g: nx.MultiDiGraph, make: Any, name: str, check_disabled: bool = False
) -> str:
    checked: set[str] = set()
    for k, nodes in enumerate(cover(g, max_len=80).paths):
        path = project_path(path_from_graph(g, nodes, f"{name}-{k:05d}"))
        r = replay(path, make(), graph=g, check_disabled=check_disabled, checked_nodes=checked)
        if r.divergence is not None:
            return str(r.divergence)
    raise AssertionError("the planted divergence was not caught")


BOUNDS = Bounds.of_cfg(MODEL.read_text())
SMALL_BOUNDS = Bounds.of_cfg(SMALL.read_text())


def test_wrong_mapping_is_rejected() -> None:
    """A mapping that reports the in-memory log as the disk (forgets the fsync point)."""

    class DiskIsHistory(ZabBinding):
        def spec_vars(self) -> dict[str, Any]:
            v = super().spec_vars()
            v["disk"] = v["history"]
            return v

    msg = _first_divergence(graph(), lambda: DiskIsHistory(BOUNDS), "MCZab_replay")
    assert "step " in msg and "variable disk.s" in msg, msg
    assert "spec []" in msg, msg


def test_wrong_message_mapping_is_rejected() -> None:
    """A mapping that writes ACKEPOCH's `fresh` the wrong way round."""

    class FreshInverted(ZabBinding):
        def spec_vars(self) -> dict[str, Any]:
            v = super().spec_vars()
            for row in v["msgs"].values():
                for k, ch in row.items():
                    row[k] = tuple(
                        m | {"fresh": not m["fresh"]} if m["mtype"] == "ACKEPOCH" else m for m in ch
                    )
            return v

    msg = _first_divergence(small_graph(), lambda: FreshInverted(SMALL_BOUNDS), "MCZab_2srv")
    assert "step 3 FollowerProcessLEADERINFO" in msg, msg
    assert "variable msgs.s" in msg and ".fresh differs: spec true, implementation false" in msg


def test_core_counting_stale_ackepoch_is_rejected() -> None:
    """`bug_count_stale_ackepoch` removes the leader's guard that only an ACKEPOCH for a newly
    accepted epoch counts towards establishing it (ZooKeeper's -1): after a crash the leader
    establishes on a stale one, the spec does not."""
    msg = _first_divergence(
        graph(), lambda: ZabBinding(BOUNDS, bug_count_stale_ackepoch=True), "MCZab_replay"
    )
    assert "LeaderProcessACKEPOCH" in msg, msg
    assert "variable currentEpoch.s" in msg and "spec 0, implementation 1" in msg, msg


def test_core_acking_before_fsync_is_rejected() -> None:
    msg = _first_divergence(
        small_graph(), lambda: ZabBinding(SMALL_BOUNDS, bug_ack_before_fsync=True), "MCZab_2srv"
    )
    assert "FollowerProcessPROPOSAL" in msg and "variable msgs.s" in msg, msg
    assert '"mtype": "ACK"' in msg, msg


def test_core_committing_without_quorum_is_rejected() -> None:
    msg = _first_divergence(
        small_graph(), lambda: ZabBinding(SMALL_BOUNDS, bug_commit_no_quorum=True), "MCZab_2srv"
    )
    # the leader's own ACK commits at once: `committed` (or, on a core that drops the ACKs of
    # committed zxids, `acks`, which sorts first) differs at that flush
    assert "NodeFsyncLog" in msg, msg
    assert "variable committed differs: spec []" in msg or "variable acks.s" in msg, msg


def test_eager_follow_ups_are_a_reported_divergence() -> None:
    """The cores as they are (no split): LeaderProcessACKEPOCH also syncs the follower, which
    the spec does as its own step LeaderSyncFollower."""
    msg = _first_divergence(
        small_graph(), lambda: ZabBinding(SMALL_BOUNDS, split=False), "MCZab_2srv"
    )
    assert "step 4 LeaderProcessACKEPOCH" in msg, msg
    assert "variable forwarding.s" in msg and "differs: spec []" in msg, msg


def test_disabled_check_catches_a_removed_guard() -> None:
    """A follower whose FollowerUpdateCurrentEpoch lacks the guard `nlPhase = "received"` (it
    writes currentEpoch without having had NEWLEADER): planted on the core's role object by a
    test-only binding. A replay of enabled steps never calls it where the spec disables it;
    the disabled-action check does."""

    class NoNewLeaderGuard(ZabBinding):
        def _split_roles(self) -> None:
            super()._split_roles()
            for p in self.cluster.peers.values():
                f = p.follower
                if f is None or "update_current_epoch" in vars(f):
                    continue

                def unguarded(f: Follower = f) -> list[Effect]:
                    f.nl_phase = NlPhase.RECEIVED  # as if the phase were not checked
                    return Follower.update_current_epoch(f)

                setattr(f, "update_current_epoch", unguarded)  # noqa: B010

    msg = _first_divergence(
        small_graph(), lambda: NoNewLeaderGuard(SMALL_BOUNDS), "MCZab_2srv", check_disabled=True
    )
    assert "FollowerUpdateCurrentEpoch" in msg and "is disabled in the spec" in msg, msg
    assert "but the implementation changed nlPhase.s" in msg, msg


def test_stored_paths_replay_by_name() -> None:
    """Every stored traces/tlc/MCZab_* path replays to its recorded verdict."""
    files = sorted(trace_dir().glob("MCZab_*/MCZab_*.json"))
    assert len(files) >= 10
    for f in files:
        doc = json.loads(f.read_text())
        r = replay_stored(doc["name"])
        assert (r.divergence is None) == (doc["divergence"] is None), (f, r.divergence)
        if r.divergence is not None:
            assert str(r.divergence).split(": ", 1)[1] == doc["divergence"].split(": ", 1)[1]
        assert len(load_path(f).steps) == r.steps or r.divergence is not None


@functools.cache
def initlimit_graph() -> nx.MultiDiGraph:
    return load_model_graph("MCZab", "MCZab_2srv_initlimit", cfg_file=SMALL_INITLIMIT)


def test_init_limit_timeout_replays_with_disabled_checks() -> None:
    """LeaderInitLimitTimeout (trace-validation.md, finding 5): with the switch on, every edge
    replays on Leader.init_limit_timeout, and the disabled-action trials call it wherever the
    spec disables it (a leader in BROADCAST, a follower, a LOOKING server)."""
    bounds = Bounds.of_cfg(SMALL_INITLIMIT.read_text())
    assert bounds.init_limit_timeouts and not SMALL_BOUNDS.init_limit_timeouts
    assert "LeaderInitLimitTimeout" in stats(initlimit_graph()).actions
    report = run_model(str(SMALL_INITLIMIT), graph=initlimit_graph(), check_disabled=True, store=0)
    assert report.cover["edge_coverage"] == 1.0
    assert report.clean == report.replayed > 20, report.divergences[:3]
    assert report.disabled_checked > 500


def test_disabled_check_catches_an_init_limit_timeout_in_broadcast() -> None:
    """A leader whose initLimit timeout lacks the guard "not yet BROADCAST" (it would depose an
    established leader): caught by the disabled-action check, naming the action."""

    class TimesOutInBroadcast(ZabBinding):
        def _split_roles(self) -> None:
            super()._split_roles()
            for p in self.cluster.peers.values():
                ld = p.leader
                if ld is None or "init_limit_timeout" in vars(ld):
                    continue

                def unguarded(ld: Leader = ld) -> list[Effect]:
                    peer = ld.peer
                    if peer.state is not ServerState.LEADING:
                        return []
                    out = peer.go_looking()
                    out.append(peer.trace("LeaderInitLimitTimeout"))
                    return out

                setattr(ld, "init_limit_timeout", unguarded)  # noqa: B010

    bounds = Bounds.of_cfg(SMALL_INITLIMIT.read_text())
    msg = _first_divergence(
        initlimit_graph(),
        lambda: TimesOutInBroadcast(bounds),
        "MCZab_2srv_initlimit",
        check_disabled=True,
    )
    assert "LeaderInitLimitTimeout" in msg and "is disabled in the spec" in msg, msg
