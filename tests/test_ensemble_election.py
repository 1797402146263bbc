"""Real member processes on 127.0.0.1: election over TCP, `srvr` modes, fail-over after kill -9.

Every test starts its own members on free ports and stops all of them, whatever happens.
"""

from __future__ import annotations

import os
import signal
import statistics
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from zkref.server.ensemble import LocalEnsemble

pytestmark = pytest.mark.slow


@pytest.fixture
def ensemble(tmp_path: Path) -> Iterator[LocalEnsemble]:
    ens = LocalEnsemble(3, tmp_path, tick_time_ms=200)
    try:
        yield ens
    finally:
        ens.stop()


def _explain(ens: LocalEnsemble) -> str:
    return "\n".join(f"--- member {m.sid}\n{ens.log_tail(m.sid, 25)}" for m in ens.members)


def test_three_members_elect_one_leader_and_srvr_reports_modes(ensemble: LocalEnsemble) -> None:
    ensemble.start()
    try:
        leader = ensemble.wait_serving(deadline_s=30)
    except TimeoutError as e:
        raise AssertionError(f"{e}\n{_explain(ensemble)}") from e
    modes = ensemble.modes()
    assert sorted(modes.values(), key=str) == ["follower", "follower", "leader"], modes
    assert modes[leader] == "leader"


def test_killing_the_leader_elects_a_new_one(ensemble: LocalEnsemble) -> None:
    """Fail-over = from kill -9 of the leader until the two others answer `srvr` as leader and
    follower (election + discovery + sync). ZKREF_FAILOVER_RUNS sets the number of runs."""
    ensemble.start()
    times: list[float] = []
    for _ in range(int(os.environ.get("ZKREF_FAILOVER_RUNS", "3"))):
        try:
            old = ensemble.wait_serving(deadline_s=30)
        except TimeoutError as e:
            raise AssertionError(f"{e}\n{_explain(ensemble)}") from e
        t0 = time.monotonic()
        ensemble.kill(old)
        rest = [s for s in ensemble.by_sid if s != old]
        try:
            new = ensemble.wait_serving(rest, deadline_s=30)
        except TimeoutError as e:
            raise AssertionError(f"{e}\n{_explain(ensemble)}") from e
        times.append(time.monotonic() - t0)
        assert new != old
        # the old leader comes back as a follower of the new one
        ensemble.start(old)
        assert ensemble.wait_serving(deadline_s=30) == new
    print(
        f"\nleader fail-over after kill -9 (3 members, tickTime 200 ms): "
        f"{', '.join(f'{t:.3f}' for t in times)} s; median {statistics.median(times):.3f} s"
    )


def test_a_paused_leader_is_replaced_and_rejoins_when_resumed(ensemble: LocalEnsemble) -> None:
    """SIGSTOP keeps the leader's TCP links open: the followers notice only because its PINGs
    stop (syncLimit ticks of silence), then elect a new leader; SIGCONT brings the old one back
    as a follower."""
    ensemble.start()
    old = ensemble.wait_serving(deadline_s=30)
    ensemble.kill(old, signal.SIGSTOP)
    try:
        rest = [s for s in ensemble.by_sid if s != old]
        t0 = time.monotonic()
        try:
            new = ensemble.wait_serving(rest, deadline_s=30)
        except TimeoutError as e:
            raise AssertionError(f"{e}\n{_explain(ensemble)}") from e
        print(f"\nnew leader {new} {time.monotonic() - t0:.3f} s after SIGSTOP of leader {old}")
        assert new != old
    finally:
        ensemble.kill(old, signal.SIGCONT)
    try:
        assert ensemble.wait_serving(deadline_s=30) == new
    except TimeoutError as e:
        raise AssertionError(f"{e}\n{_explain(ensemble)}") from e
