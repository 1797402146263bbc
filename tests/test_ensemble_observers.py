"""Observers and configured (weighted) quorums on real zkref ensembles.

An observer (`server.N=...:observer`, `peerType=observer`) is a learner that serves clients but
never votes: it never leads, and its ACKs never make a quorum. With `group.N`/`weight.N` the
cores count quorums by weight, as ZooKeeper's QuorumHierarchical does.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import KazooException
from kazoo.handlers.threading import KazooTimeoutError

from zkref.core.election.fle import FastLeaderElection, Sid
from zkref.core.quorum import QuorumHierarchical, QuorumMaj
from zkref.core.zab.messages import Sid as ZSid
from zkref.core.zab.peer import QuorumPeer
from zkref.server.ensemble import LocalEnsemble

OP_S = 10.0


def _explain(ens: LocalEnsemble) -> str:
    return "\n".join(f"--- member {m.sid}\n{ens.log_tail(m.sid, 30)}" for m in ens.members)


def _serving(ens: LocalEnsemble, sids: list[int] | None = None) -> int:
    try:
        return ens.wait_serving(sids, deadline_s=40)
    except TimeoutError as e:
        raise AssertionError(f"{e}\n{_explain(ens)}") from e


def _client(ens: LocalEnsemble, sid: int) -> KazooClient:
    zk = KazooClient(
        hosts=f"127.0.0.1:{ens.by_sid[sid].client_port}",
        timeout=10.0,
        connection_retry={"max_tries": -1},
    )
    zk.start(timeout=30)
    return zk


def _close(zk: KazooClient) -> None:
    try:
        zk.stop()
    finally:
        zk.close()


def _write_until(zk: KazooClient, path: str, deadline_s: float = 40) -> None:
    end = time.monotonic() + deadline_s
    while True:
        try:
            zk.create_async(path, b"").get(timeout=OP_S)
            return
        except (KazooException, KazooTimeoutError):
            if time.monotonic() > end:
                raise
            time.sleep(0.1)


def test_quorum_counting_in_the_cores() -> None:
    """Voters only; weights when configured."""
    peer = QuorumPeer(ZSid(4), [ZSid(1), ZSid(2), ZSid(3)])
    assert peer.is_observer
    assert not peer.is_quorum([ZSid(1), ZSid(4)]), "an observer's ACK never makes a quorum"
    assert peer.is_quorum([ZSid(1), ZSid(2)])
    weighted = QuorumHierarchical.of(groups={1: (1, 2, 3)}, weights={1: 2, 2: 1, 3: 1})
    peer_w = QuorumPeer(ZSid(2), [ZSid(1), ZSid(2), ZSid(3)], quorum=weighted)
    assert peer_w.is_quorum([ZSid(1), ZSid(2)])
    assert not peer_w.is_quorum([ZSid(2), ZSid(3)]), "2 of 4 votes is not more than half"
    fle = FastLeaderElection(Sid(3), [Sid(1), Sid(2), Sid(3)], quorum=weighted)
    assert not fle.is_quorum([Sid(2), Sid(3)]) and fle.is_quorum([Sid(1), Sid(3)])
    maj = FastLeaderElection(
        Sid(3), [Sid(1), Sid(2), Sid(3)], quorum=QuorumMaj(frozenset({1, 2, 3}))
    )
    assert maj.is_quorum([Sid(2), Sid(3)])


@pytest.fixture
def with_observer(tmp_path: Path) -> Iterator[LocalEnsemble]:
    e = LocalEnsemble(4, tmp_path, tick_time_ms=200, observers=1)
    try:
        e.start()
        _serving(e)
        yield e
    finally:
        e.stop()


@pytest.mark.slow
def test_an_observer_serves_but_never_votes(with_observer: LocalEnsemble) -> None:
    ens = with_observer
    leader = _serving(ens)
    assert leader != 4 and ens.modes()[4] == "observer"
    zk = _client(ens, 4)
    try:
        zk.create_async("/via-observer", b"x").get(timeout=OP_S)
        # kill the leader: a voter takes over, never the observer
        ens.kill(leader)
        new = _serving(ens, [s for s in (1, 2, 3, 4) if s != leader])
        assert new not in (leader, 4)
        _write_until(zk, "/after-failover")
        # stop one more voter: the observer and one voter are up, but that is no quorum
        other = next(s for s in (1, 2, 3) if s not in (leader, new))
        ens.stop(new)
        ens.stop(other)
        with pytest.raises((KazooException, KazooTimeoutError)):
            zk.create_async("/observer-is-no-voter", b"").get(timeout=4)
        ens.start(other)
        ens.start(leader)
        _serving(ens, [leader, other, 4])
        _write_until(zk, "/quorum-back")
        zk.sync_async("/").get(timeout=OP_S)
        assert zk.exists_async("/via-observer").get(timeout=OP_S) is not None
        # the timed-out create may still run once the quorum is back (kazoo keeps it queued:
        # its outcome was unknown), but never before: not in the epoch that lost its quorum
        before = zk.exists_async("/after-failover").get(timeout=OP_S)
        late = zk.exists_async("/observer-is-no-voter").get(timeout=OP_S)
        assert late is None or late.czxid >> 32 > before.czxid >> 32, (late, before)
    finally:
        _close(zk)


@pytest.mark.slow
def test_weighted_quorum_decides_who_may_be_down(tmp_path: Path) -> None:
    """group.1=1:2:3, weights 2/1/1: members 2 and 3 together hold half the weight, not more."""
    ens = LocalEnsemble(
        3,
        tmp_path,
        tick_time_ms=200,
        extra_cfg={"group.1": "1:2:3", "weight.1": "2", "weight.2": "1", "weight.3": "1"},
    )
    try:
        ens.start()
        _serving(ens)
        ens.stop(3)  # {1, 2}: weight 3 of 4 -> still a quorum
        _serving(ens, [1, 2])
        zk = _client(ens, 2)
        try:
            _write_until(zk, "/one-light-member-down")
            ens.start(3)
            _serving(ens)
            ens.stop(1)  # {2, 3}: weight 2 of 4 -> no quorum, though two of three run
            with pytest.raises((KazooException, KazooTimeoutError)):
                _write_until(zk, "/heavy-member-down", deadline_s=6)
        finally:
            _close(zk)
    finally:
        ens.stop()
