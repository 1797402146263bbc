"""Client writes on a real 3-member ensemble: the leader serves, Zab replicates.

After each scenario every member is stopped and its txn log read back from disk: every write a
client saw acknowledged must be in every member's log, and all logs must agree.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import KazooException, NodeExistsError

from zkref.core.datatree import DataTree
from zkref.server.config import load_zoo_cfg
from zkref.server.ensemble import LocalEnsemble
from zkref.server.fourletter import send_word
from zkref.server.peer_host import PeerDisk

pytestmark = pytest.mark.slow


@pytest.fixture
def ensemble(tmp_path: Path) -> Iterator[LocalEnsemble]:
    ens = LocalEnsemble(3, tmp_path, tick_time_ms=200)
    try:
        yield ens
    finally:
        ens.stop()


def _explain(ens: LocalEnsemble) -> str:
    return "\n".join(f"--- member {m.sid}\n{ens.log_tail(m.sid, 30)}" for m in ens.members)


def _serving(ens: LocalEnsemble, sids: list[int] | None = None) -> int:
    try:
        return ens.wait_serving(sids, deadline_s=30)
    except TimeoutError as e:
        raise AssertionError(f"{e}\n{_explain(ens)}") from e


def _client(ens: LocalEnsemble) -> KazooClient:
    zk = KazooClient(hosts=ens.connect_string, timeout=10.0, connection_retry={"max_tries": -1})
    zk.start(timeout=30)
    return zk


def _srvr(ens: LocalEnsemble, sid: int) -> dict[str, str]:
    try:
        text = send_word("127.0.0.1", ens.by_sid[sid].client_port, "srvr", 2.0)
    except OSError:
        return {}
    return dict(line.split(": ", 1) for line in text.splitlines() if ": " in line)


def _wait_converged(ens: LocalEnsemble, deadline_s: float = 30) -> str:
    """All members serve with the same last zxid; that zxid."""
    end = time.monotonic() + deadline_s
    seen: list[dict[str, str]] = []
    while time.monotonic() < end:
        seen = [_srvr(ens, m.sid) for m in ens.members]
        zxids = {s.get("Zxid") for s in seen}
        if len(zxids) == 1 and None not in zxids and all("Mode" in s for s in seen):
            return str(zxids.pop())
        time.sleep(0.05)
    raise AssertionError(f"members did not converge: {seen}\n{_explain(ens)}")


def _logs_on_disk(ens: LocalEnsemble) -> dict[int, DataTree]:
    """Stop every member and replay each one's txn log."""
    ens.stop()
    trees: dict[int, DataTree] = {}
    logs = {}
    for m in ens.members:
        disk = PeerDisk(load_zoo_cfg(m.cfg_path))
        tree = DataTree()
        for t in disk.txns:
            tree.apply(t.hdr, t.body)
        disk.close()
        trees[m.sid] = tree
        logs[m.sid] = [t.zxid for t in disk.txns]
    first = next(iter(logs.values()))
    assert all(v == first for v in logs.values()), "the members' logs differ"
    return trees


def _write_until(
    zk: KazooClient, acked: list[str], n: int, prefix: str, deadline_s: float = 90
) -> None:
    i = 0
    end = time.monotonic() + deadline_s
    while len(acked) < n:
        if time.monotonic() > end:
            raise AssertionError(f"only {len(acked)} of {n} writes acknowledged in {deadline_s}s")
        path = f"/{prefix}{i}"
        i += 1
        try:
            zk.create(path, path.encode())
        except NodeExistsError:
            acked.append(path)  # an earlier attempt went through after all
        except KazooException:
            continue  # connection loss: unknown outcome, not counted as acknowledged
        else:
            acked.append(path)


def test_writes_survive_leader_kill_and_every_member_logs_them(ensemble: LocalEnsemble) -> None:
    ensemble.start()
    leader = _serving(ensemble)
    zk = _client(ensemble)
    acked: list[str] = []
    try:
        _write_until(zk, acked, 100, "w")
        t0 = time.monotonic()
        ensemble.kill(leader)
        _write_until(zk, acked, 200, "x")
        took = time.monotonic() - t0
        new = _serving(ensemble, [s for s in ensemble.by_sid if s != leader])
        assert new != leader
        print(f"\nwrites resumed {took:.3f} s after kill -9 of leader {leader}")
        ensemble.start(leader)  # rejoins as a follower and syncs
        _serving(ensemble)
        zk.create("/last", b"")
        acked.append("/last")
        _wait_converged(ensemble)
    finally:
        zk.stop()
        zk.close()
    trees = _logs_on_disk(ensemble)
    for sid, tree in trees.items():
        missing = [p for p in acked if tree.get(p) is None]
        assert not missing, f"member {sid} lacks acknowledged writes {missing[:5]}"


def test_a_member_that_missed_many_writes_rejoins_by_snap(ensemble: LocalEnsemble) -> None:
    ensemble.start()
    leader = _serving(ensemble)
    follower = next(s for s in ensemble.by_sid if s != leader)
    zk = _client(ensemble)
    acked: list[str] = []
    try:
        _write_until(zk, acked, 20, "a")
        ensemble.kill(follower)
        # more than the leader's committed log (500) while it is down: it needs a SNAP
        _write_until(zk, acked, 620, "b")
        ensemble.start(follower)
        _serving(ensemble)
        _wait_converged(ensemble)
        assert "'mode': 'SNAP'" in ensemble.log_tail(leader, 400), _explain(ensemble)
        ensemble.kill(follower)
        _write_until(zk, acked, 630, "c")
        ensemble.start(follower)  # a few behind: DIFF
        _serving(ensemble)
        _wait_converged(ensemble)
        assert "'mode': 'DIFF'" in ensemble.log_tail(leader, 100), _explain(ensemble)
    finally:
        zk.stop()
        zk.close()
    trees = _logs_on_disk(ensemble)
    for sid, tree in trees.items():
        missing = [p for p in acked if tree.get(p) is None]
        assert not missing, f"member {sid} lacks acknowledged writes {missing[:5]}"


def test_without_a_quorum_no_write_is_acknowledged(ensemble: LocalEnsemble) -> None:
    ensemble.start()
    leader = _serving(ensemble)
    zk = KazooClient(hosts=ensemble.connect_string, timeout=4.0)
    zk.start(timeout=30)
    try:
        zk.create("/before", b"")
        others = [s for s in ensemble.by_sid if s != leader]
        for s in others:
            ensemble.kill(s)
        with pytest.raises(KazooException):
            zk.create("/during", b"")
            # if the leader had not noticed yet, it must step down before acknowledging more
            for i in range(50):
                zk.create(f"/during{i}", b"")
        ensemble.start(others[0])
        _serving(ensemble, [leader, others[0]])
    finally:
        zk.stop()
        zk.close()
    zk = _client(ensemble)
    try:
        zk.create("/after", b"")
        assert zk.exists("/before") is not None
        assert zk.exists("/during1") is None
    finally:
        zk.stop()
        zk.close()


def test_rolling_restart_loses_no_acknowledged_write(ensemble: LocalEnsemble) -> None:
    """Each member in turn is stopped (SIGTERM) and started again while a client writes."""
    ensemble.start()
    _serving(ensemble)
    zk = _client(ensemble)
    acked: list[str] = []
    try:
        for k, m in enumerate(ensemble.members):
            _write_until(zk, acked, 30 * (k + 1), f"r{m.sid}-")
            ensemble.stop(m.sid)
            _write_until(zk, acked, 30 * (k + 1) + 15, f"d{m.sid}-")
            ensemble.start(m.sid)
            _serving(ensemble)
            _wait_converged(ensemble)
    finally:
        zk.stop()
        zk.close()
    trees = _logs_on_disk(ensemble)
    for sid, tree in trees.items():
        missing = [p for p in acked if tree.get(p) is None]
        assert not missing, f"member {sid} lacks acknowledged writes {missing[:5]}"
