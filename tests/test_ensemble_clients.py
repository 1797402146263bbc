"""Clients on every member of a real 3-member zkref ensemble (kazoo and zkCli.sh).

Followers serve reads from their own tree and forward writes, sessions and syncs to the leader;
a client that loses its member moves to another and keeps its session; a paused follower does
not stop writes; without a quorum nothing is written; read-only mode; linearizableSync.
Every wait is a condition with a generous deadline.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import KazooException, NotReadOnlyCallError
from kazoo.handlers.threading import KazooTimeoutError
from kazoo.protocol.states import KeeperState, WatchedEvent

from zkref.client import ZooKeeperError
from zkref.client_sync import SyncClient
from zkref.server.ensemble import LocalEnsemble
from zkref.server.fourletter import send_word
from zkref.wire.constants import CreateMode, Err

pytestmark = pytest.mark.slow

T = TypeVar("T")
ZKCLI = Path("/usr/share/zookeeper/bin/zkCli.sh")
OP_S = 10.0  # per-operation deadline (kazoo calls without one can wait forever)


def _explain(ens: LocalEnsemble) -> str:
    return "\n".join(f"--- member {m.sid}\n{ens.log_tail(m.sid, 30)}" for m in ens.members)


def _serving(ens: LocalEnsemble, sids: list[int] | None = None) -> int:
    try:
        return ens.wait_serving(sids, deadline_s=40)
    except TimeoutError as e:
        raise AssertionError(f"{e}\n{_explain(ens)}") from e


def _client(hosts: str, **kw: object) -> KazooClient:
    zk = KazooClient(
        hosts=hosts,
        timeout=10.0,
        randomize_hosts=False,
        connection_retry={"max_tries": -1},
        **kw,
    )
    zk.start(timeout=30)
    return zk


def _on(ens: LocalEnsemble, sid: int) -> str:
    return f"127.0.0.1:{ens.by_sid[sid].client_port}"


def _close(*zks: KazooClient) -> None:
    for zk in zks:
        try:
            zk.stop()
        finally:
            zk.close()


def _eventually(what: str, fn: Callable[[], T | None], deadline_s: float = 30) -> T:
    end = time.monotonic() + deadline_s
    last: BaseException | None = None
    while time.monotonic() < end:
        try:
            got = fn()
        except (KazooException, KazooTimeoutError) as e:  # a member coming back
            last = e
            got = None
        if got is not None:
            return got
        time.sleep(0.05)
    raise AssertionError(f"{what}: not within {deadline_s}s (last error {last!r})")


def _zxid(ens: LocalEnsemble, sid: int) -> int | None:
    try:
        text = send_word("127.0.0.1", ens.by_sid[sid].client_port, "srvr", 2.0)
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("Zxid: "):
            return int(line.split()[1], 16)
    return None


@pytest.fixture(scope="module")
def ens(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalEnsemble]:
    e = LocalEnsemble(3, tmp_path_factory.mktemp("ens"), tick_time_ms=200)
    try:
        e.start()
        _serving(e)
        yield e
    finally:
        e.stop()


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[LocalEnsemble]:
    e = LocalEnsemble(
        3,
        tmp_path,
        tick_time_ms=200,
        extra_cfg={"readonlymode.enabled": "true", "linearizableSync": "true"},
    )
    try:
        e.start()
        _serving(e)
        yield e
    finally:
        e.stop()


def test_every_member_takes_writes_and_serves_reads(ens: LocalEnsemble) -> None:
    leader = _serving(ens)
    zks = {m.sid: _client(_on(ens, m.sid)) for m in ens.members}
    try:
        for sid, zk in zks.items():
            zk.create_async(f"/from{sid}", str(sid).encode()).get(timeout=OP_S)
        for sid, zk in zks.items():
            zk.sync_async("/").get(timeout=OP_S)  # then this member has every write above
            for other in zks:
                data, _stat = zk.get_async(f"/from{other}").get(timeout=OP_S)
                assert data == str(other).encode(), (sid, other)
        # srvr says which member is what
        modes = ens.modes()
        assert modes[leader] == "leader"
        assert [m for s, m in sorted(modes.items()) if s != leader] == ["follower", "follower"]
    finally:
        _close(*zks.values())


def test_a_watch_on_one_follower_fires_for_a_write_through_another(ens: LocalEnsemble) -> None:
    leader = _serving(ens)
    f1, f2 = [m.sid for m in ens.members if m.sid != leader]
    a, b = _client(_on(ens, f1)), _client(_on(ens, f2))
    try:
        a.create_async("/watched", b"0").get(timeout=OP_S)
        fired = threading.Event()
        got: list[WatchedEvent] = []

        def watcher(ev: WatchedEvent) -> None:
            got.append(ev)
            fired.set()

        b.sync_async("/watched").get(timeout=OP_S)
        b.get_async("/watched", watch=watcher).get(timeout=OP_S)
        a.set_async("/watched", b"1").get(timeout=OP_S)
        assert fired.wait(OP_S), "the watch set on one follower must fire"
        assert got[0].type == "CHANGED" and got[0].path == "/watched"
        assert b.get_async("/watched").get(timeout=OP_S)[0] == b"1", "event before data"
    finally:
        _close(a, b)


def test_ephemerals_of_a_closed_session_are_gone_on_every_member(ens: LocalEnsemble) -> None:
    leader = _serving(ens)
    f1 = next(m.sid for m in ens.members if m.sid != leader)
    zk = _client(_on(ens, f1))
    zk.create_async("/eph", b"", ephemeral=True).get(timeout=OP_S)
    _close(zk)
    for m in ens.members:
        other = _client(_on(ens, m.sid))
        try:
            other.sync_async("/").get(timeout=OP_S)
            assert other.exists_async("/eph").get(timeout=OP_S) is None, m.sid
        finally:
            _close(other)


@pytest.mark.skipif(not ZKCLI.exists(), reason="zkCli.sh needs Debian's zookeeper package")
def test_zkcli_on_a_follower(ens: LocalEnsemble) -> None:
    leader = _serving(ens)
    f1 = next(m.sid for m in ens.members if m.sid != leader)
    env = dict(os.environ, ZOO_LOG_DIR=os.environ.get("TMPDIR", "/tmp"))
    commands = "create /cli hello\nget /cli\nset /cli world\nget /cli\nls /\nquit\n"
    proc = subprocess.run(
        [str(ZKCLI), "-server", _on(ens, f1)],
        input=commands,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    out = proc.stdout + proc.stderr  # zkCli.sh prints "Created" on stderr
    assert "Created /cli" in out, out
    assert "hello" in out and "world" in out, out
    zk = _client(_on(ens, leader))
    try:
        assert zk.get_async("/cli").get(timeout=OP_S)[0] == b"world"
    finally:
        _close(zk)


def test_a_client_whose_member_dies_moves_and_keeps_its_session(fresh: LocalEnsemble) -> None:
    leader = _serving(fresh)
    f1, f2 = [m.sid for m in fresh.members if m.sid != leader]
    zk = _client(f"{_on(fresh, f1)},{_on(fresh, f2)}")
    try:
        sid_before = zk.client_id[0]
        zk.create_async("/mine", b"", ephemeral=True).get(timeout=OP_S)
        fresh.kill(f1)
        # kazoo reconnects to f2 with the same session
        _eventually(
            "write after the move",
            lambda: zk.create_async("/after-move", b"").get(timeout=OP_S) or True,
        )
        assert zk.client_id[0] == sid_before, "the session survived the move"
        assert zk.exists_async("/mine").get(timeout=OP_S) is not None, "its ephemeral too"
        assert zk.client_state == KeeperState.CONNECTED
    finally:
        _close(zk)


def test_paused_follower_does_not_stop_writes_and_catches_up(fresh: LocalEnsemble) -> None:
    leader = _serving(fresh)
    paused = next(m.sid for m in fresh.members if m.sid != leader)
    zk = _client(_on(fresh, leader))
    fresh.kill(paused, signal.SIGSTOP)
    try:
        for i in range(20):
            zk.create_async(f"/p{i}", b"x").get(timeout=OP_S)
    finally:
        fresh.kill(paused, signal.SIGCONT)
    try:
        want = _zxid(fresh, leader)
        assert want is not None
        _eventually("paused follower catches up", lambda: _zxid(fresh, paused) == want or None)
        follower = _client(_on(fresh, paused))
        try:
            assert follower.exists_async("/p19").get(timeout=OP_S) is not None
        finally:
            _close(follower)
    finally:
        _close(zk)


def test_linearizable_sync_is_a_txn(fresh: LocalEnsemble) -> None:
    leader = _serving(fresh)
    f1 = next(m.sid for m in fresh.members if m.sid != leader)
    zk = _client(_on(fresh, f1))
    try:
        zk.create_async("/ls", b"").get(timeout=OP_S)
        before = _zxid(fresh, f1)
        assert before is not None
        zk.sync_async("/ls").get(timeout=OP_S)
        after = _zxid(fresh, f1)
        assert after == before + 1, "linearizableSync: the sync took a zxid (a quorum round)"
    finally:
        _close(zk)


def test_without_a_quorum_nothing_is_written_then_writes_resume(fresh: LocalEnsemble) -> None:
    leader = _serving(fresh)
    survivor = next(m.sid for m in fresh.members if m.sid != leader)
    others = [m.sid for m in fresh.members if m.sid != survivor]
    zk = _client(_on(fresh, survivor))
    zk.create_async("/before", b"").get(timeout=OP_S)
    for s in others:
        fresh.stop(s)
    try:
        with pytest.raises((KazooException, KazooTimeoutError)):
            # the survivor is LOOKING: no write can be acknowledged
            zk.create_async("/during", b"").get(timeout=5)
        # read-only mode: a client that allows it reads the last committed state
        ro = _client(_on(fresh, survivor), read_only=True)
        try:
            assert ro.client_state == KeeperState.CONNECTED_RO
            assert ro.exists_async("/before").get(timeout=OP_S) is not None
            with pytest.raises(NotReadOnlyCallError):
                ro.create_async("/ro-write", b"").get(timeout=OP_S)
        finally:
            _close(ro)
        fresh.start(others[0])
        _serving(fresh, [survivor, others[0]])
        _eventually(
            "write after the quorum is back",
            lambda: zk.create_async("/after", b"").get(timeout=OP_S) or True,
            deadline_s=40,
        )
        zk.sync_async("/").get(timeout=OP_S)
        assert zk.exists_async("/before").get(timeout=OP_S) is not None
        assert zk.exists_async("/ro-write").get(timeout=OP_S) is None
    finally:
        _close(zk)


def test_an_abandoned_sessions_ephemerals_go_everywhere_across_a_leader_kill(
    fresh: LocalEnsemble,
) -> None:
    """A client goes silent (no close, no pings) after creating an ephemeral through a follower;
    the leader is killed; the new leader's tracker (seeded from the applied createSession txns)
    expires the session and its closeSession removes the ephemeral on every member."""
    leader = _serving(fresh)
    f1 = next(m.sid for m in fresh.members if m.sid != leader)
    gone = SyncClient("127.0.0.1", fresh.by_sid[f1].client_port, timeout_ms=1000)
    gone.create("/abandoned", b"", flags=CreateMode.EPHEMERAL)
    gone._stop_loop()  # silent from now on: the session must expire
    fresh.kill(leader)
    _serving(fresh, [m.sid for m in fresh.members if m.sid != leader])
    for m in fresh.members:
        if m.sid == leader:
            continue
        zk = _client(_on(fresh, m.sid))
        try:

            def vanished(zk: KazooClient = zk) -> bool | None:
                zk.sync_async("/").get(timeout=OP_S)
                return True if zk.exists_async("/abandoned").get(timeout=OP_S) is None else None

            _eventually(f"ephemeral gone on member {m.sid}", vanished)
        finally:
            _close(zk)


def test_a_write_on_the_connection_a_session_left_gets_session_moved(ens: LocalEnsemble) -> None:
    """The session re-attaches through another follower (REVALIDATE makes that member its
    owner); a write still arriving on the old connection is answered SESSIONMOVED and changes
    nothing (ZooKeeper's PrepRequestProcessor.checkSession)."""
    leader = _serving(ens)
    f1, f2 = [m.sid for m in ens.members if m.sid != leader]
    old = SyncClient("127.0.0.1", ens.by_sid[f1].client_port)
    try:
        new = SyncClient(
            "127.0.0.1",
            ens.by_sid[f2].client_port,
            session_id=old.session_id,
            passwd=old.client.passwd,
        )
        try:
            assert new.session_id == old.session_id
            with pytest.raises(ZooKeeperError) as e:
                old.create("/written-on-the-old-connection")
            assert e.value.err == int(Err.SESSIONMOVED)
            new.create("/written-on-the-new-one")
            new.call(new.client.sync, "/")
            assert new.exists("/written-on-the-old-connection") is None
            assert new.exists("/written-on-the-new-one") is not None
        finally:
            new.close()
    finally:
        old._stop_loop()  # its session now lives on `new` (closed above)
