"""The Apache ZooKeeper launcher: start, serve, fault, and always stop."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from zkref.chaos.zookeeper_proc import (
    ApacheZooKeeper,
    apache_zookeeper_available,
    four_letter_word,
    free_ports,
)

needs_zk = pytest.mark.skipif(
    not apache_zookeeper_available(), reason="Debian's zookeeper.jar or java not installed"
)


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # A zombie still answers kill(0); our Popen reaps, so alive here means really alive.
    return False


def test_free_ports_are_distinct_and_bindable() -> None:
    ports = free_ports(20)
    assert len(set(ports)) == 20
    assert all(1024 <= p < 65536 for p in ports)


def test_four_letter_word_to_nobody_is_none() -> None:
    (port,) = free_ports(1)
    assert four_letter_word(port, "srvr", timeout_s=0.5) is None


@needs_zk
@pytest.mark.zookeeper
def test_standalone_serves_and_stops(tmp_path: Path) -> None:
    with ApacheZooKeeper(1, tmp_path) as zk:
        zk.start()
        assert zk.mode(1) == "standalone"
        assert zk.leader() == 1
        assert zk.four_letter(1, "ruok") == "imok"
        pid = zk.pid(1)
        assert pid is not None
    assert _gone(pid)


@needs_zk
@pytest.mark.zookeeper
def test_ensemble_faults(tmp_path: Path) -> None:
    kazoo_client = pytest.importorskip("kazoo.client")
    zk = ApacheZooKeeper(3, tmp_path, tick_time_ms=500)
    try:
        zk.start()
        pids = [zk.pid(s) for s in zk.sids]
        leader = zk.leader()
        assert leader in zk.sids
        assert sorted(m for s in zk.sids if (m := zk.mode(s))) == ["follower", "follower", "leader"]

        c = kazoo_client.KazooClient(zk.connect_string, timeout=10.0)
        c.start(timeout=20)
        try:
            c.create("/launcher", b"v1")
            # Kill the leader: the two others elect a new one (bounded wait, not a sleep).
            zk.kill(leader)
            assert zk.mode(leader) is None
            deadline = time.monotonic() + 30
            new_leader = zk.leader()
            while new_leader is None and time.monotonic() < deadline:
                time.sleep(0.1)
                new_leader = zk.leader()
            assert new_leader is not None and new_leader != leader
            zk.restart(leader)
            assert zk.mode(leader) == "follower"
            assert c.get("/launcher")[0] == b"v1"

            follower = zk.followers()[0]
            zk.pause(follower)
            assert zk.is_paused(follower)
            assert zk.mode(follower) is None
            zk.resume(follower)
            zk.wait_serving([follower], 30)
        finally:
            c.stop()
            c.close()
    finally:
        zk.stop()
    for pid in pids:
        assert pid is not None and _gone(pid)


def test_free_ports_avoid_the_ephemeral_range_and_are_never_handed_out_twice() -> None:
    # Outgoing connections take their source port from the ephemeral range; a listening port
    # chosen there can be taken before the server binds it (CI saw EADDRINUSE for that reason).
    low, high = (int(x) for x in Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    first = free_ports(30)
    second = free_ports(30)
    assert not set(first) & set(second)
    assert all(not (low <= p <= high) for p in first + second)
