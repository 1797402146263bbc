"""kazoo, an independent client, against a real `zkref server` process -- and the same tests against
Apache ZooKeeper 3.8, so every assertion here is one that the real ZooKeeper also passes."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from itertools import count
from pathlib import Path

import pytest
from kazoo.client import KazooClient, KazooState
from kazoo.exceptions import (
    BadArgumentsError,
    BadVersionError,
    ConnectionLoss,
    KazooException,
    NoAuthError,
    NoChildrenForEphemeralsError,
    NodeExistsError,
    NoNodeError,
    NotEmptyError,
    RolledBackError,
    RuntimeInconsistency,
)
from kazoo.protocol.states import EventType, WatchedEvent
from kazoo.security import ACL, OPEN_ACL_UNSAFE, READ_ACL_UNSAFE, Id, Permissions, make_digest_acl

from support.servers import KINDS, StandaloneServer, standalone, wait_for

pytestmark = pytest.mark.slow

TICK_MS = 500  # min session timeout 1 s, max 10 s
_n = count()


def unique(prefix: str = "/t") -> str:
    return f"{prefix}{next(_n)}"


@pytest.fixture(scope="module", params=KINDS)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[StandaloneServer]:
    kind: str = request.param
    with standalone(kind, tmp_path_factory.mktemp(kind), tick_time_ms=TICK_MS) as s:
        yield s


def connect(hosts: str, **kw: object) -> KazooClient:
    client = KazooClient(hosts=hosts, timeout=10.0, **kw)
    client.start(timeout=20)
    return client


@pytest.fixture
def zk(server: StandaloneServer) -> Iterator[KazooClient]:
    client = connect(server.connect_string)
    try:
        yield client
    finally:
        client.stop()
        client.close()


def test_create_get_set_delete_with_stats(zk: KazooClient) -> None:
    p = unique()
    assert zk.create(p, b"v1") == p
    data, st = zk.get(p)
    assert data == b"v1"
    assert (st.version, st.cversion, st.aversion) == (0, 0, 0)
    assert (st.dataLength, st.numChildren, st.ephemeralOwner) == (2, 0, 0)
    assert st.czxid == st.mzxid == st.pzxid
    assert st.ctime == st.mtime > 0
    st2 = zk.set(p, b"v22")
    assert st2.version == 1 and st2.dataLength == 3
    assert st2.mzxid > st.mzxid and st2.czxid == st.czxid
    with pytest.raises(BadVersionError):
        zk.set(p, b"x", version=0)
    assert zk.set(p, b"v333", version=1).version == 2
    with pytest.raises(BadVersionError):
        zk.delete(p, version=7)
    zk.delete(p, version=2)
    assert zk.exists(p) is None
    with pytest.raises(NoNodeError):
        zk.get(p)


def test_create2_and_get_children2_return_stats(zk: KazooClient) -> None:
    p = unique()
    path, st = zk.create(p, b"abc", include_data=True)
    assert path == p and st.dataLength == 3 and st.version == 0
    zk.create(p + "/a")
    zk.create(p + "/b")
    children, pst = zk.get_children(p, include_data=True)
    assert sorted(children) == ["a", "b"]
    assert pst.numChildren == 2 and pst.cversion == 2


def test_error_codes(zk: KazooClient) -> None:
    p = unique()
    zk.create(p)
    with pytest.raises(NodeExistsError):
        zk.create(p)
    with pytest.raises(NoNodeError):
        zk.create(p + "/missing/child")
    zk.create(p + "/c")
    with pytest.raises(NotEmptyError):
        zk.delete(p)
    e = zk.create(p + "/eph", ephemeral=True)
    with pytest.raises(NoChildrenForEphemeralsError):
        zk.create(e + "/child")
    # kazoo normalises "//" and trailing "/" and refuses "." itself: what reaches the server here
    # is a control character (raw-path validation is covered with zkref's own client).
    for bad in (p + "/x\u0000y", p + "/\u0001", p + "/\u007f", p + "/\ufff5"):
        with pytest.raises(BadArgumentsError):
            zk.create(bad)
    with pytest.raises(NoNodeError):
        zk.delete(p + "/nope")
    with pytest.raises(NoNodeError):
        zk.set(p + "/nope", b"")


def test_parent_stat_tracks_children(zk: KazooClient) -> None:
    p = unique()
    zk.create(p)
    _, c1 = zk.create(p + "/a", include_data=True)
    st = zk.exists(p)
    assert st is not None
    assert (st.numChildren, st.cversion, st.pzxid) == (1, 1, c1.czxid)
    assert st.version == 0  # a child does not change the parent's data version
    zk.delete(p + "/a")
    st2 = zk.exists(p)
    assert st2 is not None
    assert (st2.numChildren, st2.cversion) == (0, 2)
    assert st2.pzxid > c1.czxid and st2.mzxid == st.mzxid


def test_sequential_names_follow_parent_cversion(zk: KazooClient) -> None:
    p = unique()
    zk.create(p)
    assert zk.create(p + "/q-", sequence=True) == p + "/q-0000000000"
    assert zk.create(p + "/q-", sequence=True) == p + "/q-0000000001"
    zk.create(p + "/plain")
    assert zk.create(p + "/q-", sequence=True) == p + "/q-0000000003"
    zk.delete(p + "/plain")
    # The suffix counts creates only; the Stat's cversion (creates + deletes) is reported as
    # 2 * creates - numChildren, which is how ZooKeeper stores it.
    st = zk.exists(p)
    assert st is not None and (st.cversion, st.numChildren) == (5, 3)
    e = zk.create(p + "/e-", sequence=True, ephemeral=True)
    assert e == p + "/e-0000000004"
    st = zk.exists(p)
    assert st is not None and (st.cversion, st.numChildren) == (6, 4)


def test_ephemeral_owner_close_and_watch(server: StandaloneServer, zk: KazooClient) -> None:
    other = connect(server.connect_string)
    p = unique()
    other.create(p, b"x", ephemeral=True)
    st = zk.exists(p)
    assert st is not None and st.ephemeralOwner == other.client_id[0]
    events: list[WatchedEvent] = []
    assert zk.exists(p, watch=events.append) is not None
    other.stop()
    other.close()
    wait_for(lambda: bool(events), what="NodeDeleted after the owner closed its session")
    assert [(e.type, e.path) for e in events] == [(EventType.DELETED, p)]
    assert zk.exists(p) is None


_OWNER_SCRIPT = """
import sys, time
from kazoo.client import KazooClient
zk = KazooClient(hosts=sys.argv[1], timeout=1.0)
zk.start(timeout=20)
zk.create(sys.argv[2], b"mine", ephemeral=True)
print(zk.client_id[0], flush=True)
time.sleep(600)
"""


def test_session_expiry_removes_ephemerals_and_notifies(
    server: StandaloneServer, zk: KazooClient
) -> None:
    p = unique()
    owner = subprocess.Popen(
        [sys.executable, "-c", _OWNER_SCRIPT, server.connect_string, p],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert owner.stdout is not None
        session_id = int(owner.stdout.readline())
        st = zk.exists(p)
        assert st is not None and st.ephemeralOwner == session_id
        events: list[WatchedEvent] = []
        zk.get(p, watch=events.append)
        owner.kill()  # the client dies without closing its session
        owner.wait(timeout=30)
        wait_for(lambda: bool(events), timeout_s=30, what="the session to expire")
        assert [(e.type, e.path) for e in events] == [(EventType.DELETED, p)]
        assert zk.exists(p) is None
    finally:
        owner.kill()
        owner.wait(timeout=30)


def test_data_watch_is_one_shot(zk: KazooClient) -> None:
    p = unique()
    zk.create(p, b"0")
    events: list[WatchedEvent] = []
    zk.get(p, watch=events.append)
    zk.set(p, b"1")
    zk.set(p, b"2")
    zk.sync(p)
    wait_for(lambda: bool(events), what="NodeDataChanged")
    zk.sync(p)
    assert [(e.type, e.path) for e in events] == [(EventType.CHANGED, p)]


def test_child_and_exists_watches(zk: KazooClient) -> None:
    p = unique()
    zk.create(p)
    child_events: list[WatchedEvent] = []
    exist_events: list[WatchedEvent] = []
    assert zk.get_children(p, watch=child_events.append) == []
    assert zk.exists(p + "/n", watch=exist_events.append) is None
    zk.create(p + "/n")
    wait_for(lambda: bool(child_events) and bool(exist_events), what="both watches")
    assert [(e.type, e.path) for e in child_events] == [(EventType.CHILD, p)]
    assert [(e.type, e.path) for e in exist_events] == [(EventType.CREATED, p + "/n")]


def test_watch_event_arrives_before_the_reply_that_follows_it(
    server: StandaloneServer, zk: KazooClient
) -> None:
    """A client sees the event for a change before it can see the changed data."""
    p = unique()
    zk.create(p, b"old")
    seen_at_event: list[bool] = []
    got: list[bytes] = []

    def on_event(_: WatchedEvent) -> None:
        seen_at_event.append(bool(got))

    zk.get(p, watch=on_event)
    writer = connect(server.connect_string)
    try:
        writer.set(p, b"new")
    finally:
        writer.stop()
        writer.close()
    data, _ = zk.get(p)
    got.append(data)
    wait_for(lambda: bool(seen_at_event), what="the watch event")
    assert data == b"new"
    assert seen_at_event == [False]


def test_multi_commits_atomically(zk: KazooClient) -> None:
    p = unique()
    zk.create(p, b"")
    t = zk.transaction()
    t.create(p + "/a", b"1")
    t.set_data(p, b"parent", version=0)
    t.check(p + "/a", 0)
    t.delete(p + "/a")
    results = t.commit()
    assert results[0] == p + "/a"
    assert results[1].version == 1
    assert results[2:] == [True, True]
    assert zk.get(p)[0] == b"parent"
    assert zk.exists(p + "/a") is None


def test_failed_multi_changes_nothing(zk: KazooClient) -> None:
    p = unique()
    zk.create(p)
    t = zk.transaction()
    t.create(p + "/a")
    t.delete(p + "/missing")
    t.create(p + "/b")
    results = t.commit()
    assert isinstance(results[0], RolledBackError)
    assert isinstance(results[1], NoNodeError)
    assert isinstance(results[2], RuntimeInconsistency)
    assert zk.get_children(p) == []
    st = zk.exists(p)
    assert st is not None and st.cversion == 0


def test_digest_acl_and_auth(server: StandaloneServer, zk: KazooClient) -> None:
    p = unique()
    acl = make_digest_acl("alice", "secret", all=True)
    zk.create(p, b"private", acl=[acl])
    with pytest.raises(NoAuthError):
        zk.get(p)
    with pytest.raises(NoAuthError):
        zk.set(p, b"x")
    alice = connect(server.connect_string, auth_data=[("digest", "alice:secret")])
    try:
        assert alice.get(p)[0] == b"private"
        acls, st = alice.get_acls(p)
        assert [(a.perms, a.id.scheme, a.id.id) for a in acls] == [
            (Permissions.ALL, "digest", acl.id.id)
        ]
        assert st.aversion == 0
    finally:
        alice.stop()
        alice.close()
    mallory = connect(server.connect_string, auth_data=[("digest", "alice:wrong")])
    try:
        with pytest.raises(NoAuthError):
            mallory.get(p)
    finally:
        mallory.stop()
        mallory.close()


def test_auth_scheme_acl_becomes_the_creators_digest(server: StandaloneServer) -> None:
    bob = connect(server.connect_string, auth_data=[("digest", "bob:pw")])
    try:
        p = unique()
        bob.create(p, b"", acl=[ACL(Permissions.ALL, Id("auth", ""))])
        acls, _ = bob.get_acls(p)
        assert [(a.id.scheme, a.id.id.split(":")[0]) for a in acls] == [("digest", "bob")]
    finally:
        bob.stop()
        bob.close()


def test_set_acl_checks_aversion_and_read_only_acl_blocks_writes(zk: KazooClient) -> None:
    p = unique()
    zk.create(p, b"")
    assert zk.set_acls(p, OPEN_ACL_UNSAFE, version=0).aversion == 1
    with pytest.raises(BadVersionError):
        zk.set_acls(p, OPEN_ACL_UNSAFE, version=0)
    assert zk.set_acls(p, READ_ACL_UNSAFE, version=1).aversion == 2
    with pytest.raises(NoAuthError):
        zk.set(p, b"x")
    with pytest.raises(NoAuthError):  # the ACL is checked before the version
        zk.set_acls(p, OPEN_ACL_UNSAFE, version=0)
    assert zk.get(p)[0] == b""


def test_sync_and_four_letter_words(zk: KazooClient) -> None:
    p = unique()
    zk.create(p)
    assert zk.sync(p) == p
    assert zk.command(b"ruok") == "imok"
    srvr = zk.command(b"srvr")
    assert "Mode: standalone" in srvr and "Zxid: 0x" in srvr and "Node count:" in srvr
    mntr = zk.command(b"mntr")
    assert "zk_znode_count\t" in mntr and "zk_server_state\tstandalone" in mntr
    assert zk.command(b"isro").strip() == "rw"


def test_oversized_request_drops_only_that_connection(
    server: StandaloneServer, zk: KazooClient
) -> None:
    p = unique()
    with pytest.raises((ConnectionLoss, KazooException)):
        zk.create(p, b"x" * (1024 * 1024 + 100))
    wait_for(lambda: zk.state == KazooState.CONNECTED, what="kazoo to reconnect")
    assert zk.exists(p) is None
    other = connect(server.connect_string)
    try:
        assert other.create(p + "ok") == p + "ok"
    finally:
        other.stop()
        other.close()


@pytest.mark.parametrize("kind", KINDS)
def test_kill_9_loses_no_acknowledged_write(kind: str, tmp_path: Path) -> None:
    with standalone(kind, tmp_path, tick_time_ms=TICK_MS) as server:
        zk = connect(server.connect_string)
        zk.create("/dur")
        acked: list[int] = []
        stop = threading.Event()

        def writer() -> None:
            i = 0
            while not stop.is_set() and i < 5000:
                try:
                    # bounded: a request issued while kazoo reconnects would otherwise wait forever
                    zk.create_async(f"/dur/n{i:05d}", str(i).encode()).get(timeout=10)
                except Exception:
                    return
                acked.append(i)
                i += 1

        t = threading.Thread(target=writer)
        t.start()
        wait_for(lambda: len(acked) >= 150, timeout_s=60, what="150 acknowledged writes")
        server.kill()
        t.join(timeout=60)
        stop.set()
        assert not t.is_alive()
        zk.stop()
        zk.close()
        server.restart()
        check = connect(server.connect_string)
        try:
            present = set(check.get_children("/dur"))
            missing = [i for i in acked if f"n{i:05d}" not in present]
            assert not missing, f"acknowledged writes lost after kill -9: {missing[:10]}"
            assert check.get(f"/dur/n{acked[-1]:05d}")[0] == str(acked[-1]).encode()
        finally:
            check.stop()
            check.close()
