"""zkref.client against Apache ZooKeeper 3.8 (Debian's package), started on a loopback port."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import itertools
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from zkref.chaos.zookeeper_proc import ApacheZooKeeper, apache_zookeeper_available
from zkref.client import (
    OPEN_ACL_UNSAFE,
    Client,
    ConnectionLost,
    Notification,
    SessionExpired,
    ZooKeeperError,
)
from zkref.client_sync import SyncClient
from zkref.wire.constants import (
    AddWatchMode,
    CreateMode,
    Err,
    EventType,
    KeeperState,
    OpCode,
    WatcherType,
)
from zkref.wire.records import (
    ACL,
    CheckVersionRequest,
    CreateRequest,
    DeleteRequest,
    ErrorResponse,
    GetChildrenRequest,
    GetDataRequest,
    GetDataResponse,
    GetSASLRequest,
    Id,
    ReconfigRequest,
    SetDataRequest,
    SetSASLResponse,
)

pytestmark = [
    pytest.mark.zookeeper,
    pytest.mark.skipif(not apache_zookeeper_available(), reason="Apache ZooKeeper not installed"),
]

T = TypeVar("T")
DEADLINE_S = 15.0
_names = itertools.count()


@pytest.fixture(scope="module")
def zk_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    base: Path = tmp_path_factory.mktemp("client-zk")
    with ApacheZooKeeper(
        1, base, tick_time_ms=500, jvm_props={"zookeeper.extendedTypesEnabled": "true"}
    ) as zk:
        zk.start()
        yield zk.client_port(1)


def run(coro: Coroutine[Any, Any, T]) -> T:
    async def bounded() -> T:
        async with asyncio.timeout(DEADLINE_S * 2):
            return await coro

    return asyncio.run(bounded())


def fresh(prefix: str = "/t") -> str:
    return f"{prefix}{next(_names)}-{id(object())}"


async def next_event(c: Client) -> Notification:
    async with asyncio.timeout(DEADLINE_S):
        return await c.events.get()


def test_connect_create_get_set_delete(zk_port: int) -> None:
    async def main() -> None:
        async with await Client.connect("127.0.0.1", zk_port, timeout_ms=6000) as c:
            assert c.session_id != 0 and len(c.passwd) == 16
            assert c.timeout_ms == 6000
            p = fresh()
            assert await c.create(p, b"v0") == p
            data, st = await c.get_data(p)
            assert data == b"v0" and st.version == 0 and st.data_length == 2
            assert st.czxid == st.mzxid == st.pzxid
            st2 = await c.set_data(p, b"v1", version=0)
            assert st2.version == 1 and st2.mzxid > st.mzxid and st2.czxid == st.czxid
            ex = await c.exists(p)
            assert ex == st2
            await c.delete(p, version=1)
            assert await c.exists(p) is None
            assert c.last_zxid >= st2.mzxid

    run(main())


def test_error_codes_raise_and_raw_request_returns_them(zk_port: int) -> None:
    async def main() -> None:
        async with await Client.connect("127.0.0.1", zk_port) as c:
            p = fresh()
            with pytest.raises(ZooKeeperError) as ei:
                await c.get_data(p)
            assert ei.value.err == Err.NONODE and ei.value.path == p
            await c.create(p)
            with pytest.raises(ZooKeeperError) as ei:
                await c.create(p)
            assert ei.value.err == Err.NODEEXISTS
            with pytest.raises(ZooKeeperError) as ei:
                await c.set_data(p, b"", version=7)
            assert ei.value.err == Err.BADVERSION
            hdr, body = await c.raw_request(OpCode.getData, GetDataRequest(p + "/x", False))
            assert hdr.err == Err.NONODE and body is None and hdr.xid > 0
            # reads do not validate the path (NoNode); writes do (BadArguments)
            hdr, body = await c.raw_request(OpCode.getData, GetDataRequest("bad", False))
            assert hdr.err == Err.NONODE
            req = CreateRequest("bad", b"", OPEN_ACL_UNSAFE, 0)
            hdr, body = await c.raw_request(OpCode.create, req)
            assert hdr.err == Err.BADARGUMENTS and body is None
            hdr, body = await c.raw_request(OpCode.getData, GetDataRequest(p, False))
            assert hdr.err == 0 and isinstance(body, GetDataResponse)

    run(main())


def test_create_modes_and_create2(zk_port: int) -> None:
    async def main() -> None:
        async with await Client.connect("127.0.0.1", zk_port) as c:
            base = fresh()
            path, st = await c.create2(base, b"abc")
            assert path == base and st.data_length == 3 and st.num_children == 0
            s1 = await c.create(base + "/s-", b"", flags=CreateMode.PERSISTENT_SEQUENTIAL)
            s2 = await c.create(base + "/s-", b"", flags=CreateMode.PERSISTENT_SEQUENTIAL)
            assert s1 == base + "/s-0000000000" and s2 == base + "/s-0000000001"
            e = await c.create(base + "/e", None, flags=CreateMode.EPHEMERAL)
            _, est = await c.get_data(e)
            assert est.ephemeral_owner == c.session_id
            with pytest.raises(ZooKeeperError) as ei:
                await c.create(e + "/child")
            assert ei.value.err == Err.NOCHILDRENFOREPHEMERALS
            cpath, cst = await c.create_container(base + "/ctr")
            assert cpath == base + "/ctr" and cst.ephemeral_owner == 0
            tpath, _ = await c.create_ttl(base + "/ttl", b"t", 60000)
            assert tpath == base + "/ttl"
            children, pst = await c.get_children2(base)
            assert sorted(children) == sorted(["s-0000000000", "s-0000000001", "e", "ctr", "ttl"])
            assert pst.num_children == 5 and pst.cversion == 5
            assert await c.get_all_children_number(base) == 5
            assert await c.get_ephemerals(base) == (e,)
            with pytest.raises(ZooKeeperError) as ei:
                await c.delete(base)
            assert ei.value.err == Err.NOTEMPTY

    run(main())


def test_pipelined_requests_resolve_in_order(zk_port: int) -> None:
    async def main() -> None:
        async with await Client.connect("127.0.0.1", zk_port) as c:
            base = await c.create(fresh())
            paths = await asyncio.gather(
                *(c.create(f"{base}/n{i}", str(i).encode()) for i in range(200))
            )
            assert paths == [f"{base}/n{i}" for i in range(200)]
            futs = [c.send_request(OpCode.getData, GetDataRequest(p, False)) for p in paths]
            replies = await asyncio.gather(*futs)
            xids = [h.xid for h, _ in replies]
            assert xids == sorted(xids) and len(set(xids)) == 200
            datas = [b.data for _, b in replies if isinstance(b, GetDataResponse)]
            assert datas == [str(i).encode() for i in range(200)]
            zxids = [h.zxid for h, _ in replies]
            assert zxids == sorted(zxids)

    run(main())


def test_data_watch_fires_before_the_setter_sees_its_reply(zk_port: int) -> None:
    async def main() -> None:
        async with await Client.connect("127.0.0.1", zk_port) as c:
            p = await c.create(fresh(), b"a")
            await c.get_data(p, watch=True)
            await c.set_data(p, b"b")
            # same session: the notification is queued before the setData reply resolves
            assert not c.events.empty()
            ev = await next_event(c)
            assert (ev.type, ev.state, ev.path) == (
                EventType.NodeDataChanged,
                KeeperState.SyncConnected,
                p,
            )
            assert ev.zxid == -1  # ZooKeeper 3.8 sends -1; 3.9 sends the firing zxid
            await c.set_data(p, b"c")  # one-shot: no second event
            await c.sync(p)
            assert c.events.empty()

    run(main())


def test_exist_and_child_watches(zk_port: int) -> None:
    async def main() -> None:
        async with (
            await Client.connect("127.0.0.1", zk_port) as watcher,
            await Client.connect("127.0.0.1", zk_port) as writer,
        ):
            base = await writer.create(fresh())
            assert await watcher.exists(base + "/x", watch=True) is None
            assert await watcher.get_children(base, watch=True) == ()
            await writer.create(base + "/x")
            got = {(e.type, e.path) for e in [await next_event(watcher), await next_event(watcher)]}
            assert got == {
                (EventType.NodeCreated, base + "/x"),
                (EventType.NodeChildrenChanged, base),
            }
            with pytest.raises(ZooKeeperError) as ei:
                await watcher.check_watches(base, WatcherType.Children)
            assert ei.value.err == Err.NOWATCHER

    run(main())


def test_persistent_recursive_watch_and_removal(zk_port: int) -> None:
    async def main() -> None:
        async with await Client.connect("127.0.0.1", zk_port) as c:
            base = await c.create(fresh())
            await c.add_watch(base, AddWatchMode.PERSISTENT_RECURSIVE)
            await c.check_watches(base, WatcherType.Any)
            await c.create(base + "/a")
            await c.set_data(base + "/a", b"x")
            await c.delete(base + "/a")
            types = [(await next_event(c)).type for _ in range(3)]
            assert types == [
                EventType.NodeCreated,
                EventType.NodeDataChanged,
                EventType.NodeDeleted,
            ]
            await c.remove_watches(base, WatcherType.Any)
            # *WatchRemoved events are made by the Java client itself; the server sends none
            with pytest.raises(ZooKeeperError) as ei:
                await c.check_watches(base, WatcherType.Any)
            assert ei.value.err == Err.NOWATCHER
            await c.create(base + "/b")
            await c.sync(base)
            assert c.events.empty()

    run(main())


def test_multi_success_failure_and_multi_read(zk_port: int) -> None:
    async def main() -> None:
        async with await Client.connect("127.0.0.1", zk_port) as c:
            base = await c.create(fresh(), b"d")
            ok = await c.multi(
                [
                    (OpCode.create, CreateRequest(base + "/m", b"1", OPEN_ACL_UNSAFE, 0)),
                    (OpCode.check, CheckVersionRequest(base, 0)),
                    (OpCode.setData, SetDataRequest(base + "/m", b"2", 0)),
                    (OpCode.delete, DeleteRequest(base + "/m", 1)),
                ]
            )
            assert [op for op, _ in ok] == [
                OpCode.create,
                OpCode.check,
                OpCode.setData,
                OpCode.delete,
            ]
            failed = await c.multi(
                [
                    (OpCode.create, CreateRequest(base + "/n", b"", OPEN_ACL_UNSAFE, 0)),
                    (OpCode.check, CheckVersionRequest(base, 5)),
                    (OpCode.delete, DeleteRequest(base, -1)),
                ]
            )
            assert failed == (
                (-1, ErrorResponse(0)),
                (-1, ErrorResponse(Err.BADVERSION)),
                (-1, ErrorResponse(Err.RUNTIMEINCONSISTENCY)),
            )
            assert await c.exists(base + "/n") is None
            results = await c.multi_read(
                [
                    (OpCode.getData, GetDataRequest(base, False)),
                    (OpCode.getChildren, GetChildrenRequest(base + "/none", False)),
                ]
            )
            (op1, r1), (op2, r2) = results
            assert op1 == OpCode.getData and isinstance(r1, GetDataResponse) and r1.data == b"d"
            assert (op2, r2) == (OpCode.error, ErrorResponse(Err.NONODE))

    run(main())


def test_acls_and_digest_auth(zk_port: int) -> None:
    async def main() -> None:
        async with (
            await Client.connect("127.0.0.1", zk_port) as owner,
            await Client.connect("127.0.0.1", zk_port) as other,
        ):
            digest = base64.b64encode(hashlib.sha1(b"alice:secret").digest()).decode()
            acl = (ACL(31, Id("digest", f"alice:{digest}")),)
            p = fresh()
            await owner.create(p, b"s", acl=acl)
            with pytest.raises(ZooKeeperError) as ei:
                await other.get_data(p)
            assert ei.value.err == Err.NOAUTH
            await owner.add_auth("digest", b"alice:secret")
            who = await owner.who_am_i()
            assert {(ci.auth_scheme, ci.user) for ci in who} >= {("digest", "alice")}
            assert (await owner.get_data(p))[0] == b"s"
            got_acl, st = await owner.get_acl(p)
            assert got_acl == acl and st.aversion == 0
            st2 = await owner.set_acl(p, OPEN_ACL_UNSAFE, version=0)
            assert st2.aversion == 1
            assert (await other.get_data(p))[0] == b"s"

    run(main())


def test_session_reattach_keeps_ephemerals_and_set_watches(zk_port: int) -> None:
    async def main() -> None:
        c1 = await Client.connect("127.0.0.1", zk_port, timeout_ms=6000)
        p = await c1.create(fresh(), b"", flags=CreateMode.EPHEMERAL)
        sid, pw, zxid = c1.session_id, c1.passwd, c1.last_zxid
        c1.disconnect()
        await c1.closed
        c2 = await Client.connect(
            "127.0.0.1", zk_port, timeout_ms=6000, session_id=sid, passwd=pw, last_zxid_seen=zxid
        )
        try:
            assert c2.session_id == sid
            assert (await c2.exists(p)) is not None
            # a change made while "disconnected" fires at once on setWatches
            async with await Client.connect("127.0.0.1", zk_port) as w:
                await w.set_data(p, b"changed")
            await c2.set_watches(zxid, data_watches=[p])
            ev = await next_event(c2)
            assert (ev.type, ev.path) == (EventType.NodeDataChanged, p)
            await c2.set_watches2(c2.last_zxid, persistent_recursive_watches=[p])
        finally:
            await c2.close()
        async with await Client.connect("127.0.0.1", zk_port) as w:
            assert await w.exists(p) is None  # closeSession deleted the ephemeral

    run(main())


def test_wrong_password_is_session_expired(zk_port: int) -> None:
    async def main() -> None:
        async with await Client.connect("127.0.0.1", zk_port) as c:
            with pytest.raises(SessionExpired):
                await Client.connect(
                    "127.0.0.1", zk_port, session_id=c.session_id, passwd=b"x" * 16
                )

    run(main())


def test_old_client_handshake_without_read_only_byte(zk_port: int) -> None:
    async def main() -> None:
        async with await Client.connect("127.0.0.1", zk_port, send_read_only_byte=False) as c:
            assert c.connect_response is not None
            assert not c.connect_response.has_read_only
            assert await c.exists("/") is not None

    run(main())


def test_idle_client_pings_and_keeps_its_session(zk_port: int) -> None:
    async def main() -> None:
        # tickTime 500 ms; a 2000 ms session pings every ~667 ms when idle
        async with await Client.connect("127.0.0.1", zk_port, timeout_ms=2000) as c:
            assert c.timeout_ms == 2000
            p = await c.create(fresh(), b"", flags=CreateMode.EPHEMERAL)
            async with asyncio.timeout(DEADLINE_S):
                while c.pings_answered < 5:  # > 1.5 session timeouts of idleness
                    await asyncio.sleep(0.05)
            assert await c.exists(p) is not None
            await c.ping()

    run(main())


def test_session_expiry_after_silence(zk_port: int) -> None:
    async def main() -> None:
        c = await Client.connect("127.0.0.1", zk_port, timeout_ms=1000)
        sid, pw = c.session_id, c.passwd
        p = await c.create(fresh(), b"", flags=CreateMode.EPHEMERAL)
        c.disconnect()
        async with await Client.connect("127.0.0.1", zk_port) as w:
            async with asyncio.timeout(DEADLINE_S):
                while await w.exists(p) is not None:
                    await asyncio.sleep(0.1)
        with pytest.raises(SessionExpired):
            await Client.connect("127.0.0.1", zk_port, session_id=sid, passwd=pw)

    run(main())


def test_malformed_body_is_marshalling_error_and_connection_stays(zk_port: int) -> None:
    async def main() -> None:
        async with await Client.connect("127.0.0.1", zk_port) as c:
            hdr, body = await c.raw_request(OpCode.sync, None)
            assert hdr.err == Err.MARSHALLINGERROR and body is None
            hdr, body = await c.raw_request(OpCode.getData, b"\x00\x00")
            assert hdr.err == Err.MARSHALLINGERROR
            assert await c.exists("/") is not None
            # a malformed write still goes through the txn pipeline: an error txn, one zxid
            _, st = await c.create2(fresh())
            hdr, _ = await c.raw_request(OpCode.setData, b"\x00\x00")
            assert (hdr.err, hdr.zxid) == (Err.MARSHALLINGERROR, st.czxid + 1)
            hdr, _ = await c.raw_request(OpCode.getData, b"\x00\x00")
            assert (hdr.err, hdr.zxid) == (Err.MARSHALLINGERROR, st.czxid + 1)

    run(main())


def test_unknown_opcode_then_connection_loss_fails_outstanding_requests(zk_port: int) -> None:
    async def main() -> None:
        c = await Client.connect("127.0.0.1", zk_port)
        bad = c.send_request(200, None)
        after = c.send_request(OpCode.getData, GetDataRequest("/", False))
        hdr, _ = await bad
        assert (hdr.err, hdr.zxid) == (Err.UNIMPLEMENTED, -1)
        with pytest.raises(ConnectionLost):
            await after
        ev = await next_event(c)
        assert (ev.type, ev.state) == (EventType.None_, KeeperState.Disconnected)
        with pytest.raises(ConnectionLost):
            await c.get_data("/")

    run(main())


def test_sync_wrapper(zk_port: int) -> None:
    with SyncClient("127.0.0.1", zk_port, timeout_ms=6000) as c:
        p = c.create(fresh(), b"a")
        data, st = c.get_data(p, watch=True)
        assert data == b"a" and st.version == 0
        assert c.set_data(p, b"b").version == 1
        ev = c.next_event(5.0)
        assert (ev.type, ev.path) == (EventType.NodeDataChanged, p)
        hdr, _ = c.raw_request(OpCode.delete, DeleteRequest(p, 0))
        assert hdr.err == Err.BADVERSION
        c.delete(p)
        assert c.exists(p) is None
        assert c.call(c.client.get_all_children_number, "/") >= 1


def test_zookeeper_answers_to_odd_opcodes(zk_port: int) -> None:
    # what Apache ZooKeeper 3.8 does, recorded for the server and differential tests
    async def main() -> None:
        async with await Client.connect("127.0.0.1", zk_port) as c:
            p, _ = await c.create_container(fresh())
            hdr, body = await c.raw_request(OpCode.deleteContainer, p.encode())
            assert hdr.err == Err.BADARGUMENTS and body is None
            assert await c.exists(p) is not None  # connection kept, container kept
            # no SASL configured: an empty token gets OK and a null token back
            hdr, body = await c.raw_request(OpCode.sasl, GetSASLRequest(b""))
            assert hdr.err == 0 and body == SetSASLResponse(None)
            hdr, _ = await c.raw_request(
                OpCode.reconfig, ReconfigRequest(None, None, "server.1=127.0.0.1:1:2", -1)
            )
            assert hdr.err == Err.RECONFIGDISABLED
            assert await c.exists(p) is not None
        async with await Client.connect("127.0.0.1", zk_port) as c:
            # ... and a null token makes it drop the connection
            with pytest.raises(ConnectionLost):
                await c.raw_request(OpCode.sasl, GetSASLRequest(None))

    run(main())


def test_handshake_timeout_closes_the_connection() -> None:
    async def main() -> None:
        got_eof = asyncio.Event()
        received: list[bytes] = []

        async def silent(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            received.append(await r.read())  # never answers; reads until the client hangs up
            got_eof.set()
            w.close()

        server = await asyncio.start_server(silent, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            with pytest.raises(TimeoutError):
                await Client.connect("127.0.0.1", port, connect_timeout_s=0.3)
            async with asyncio.timeout(DEADLINE_S):
                await got_eof.wait()
            assert len(received[0]) == 4 + 45  # the ConnectRequest, with its readOnly byte
        finally:
            server.close()
            await server.wait_closed()

    run(main())
