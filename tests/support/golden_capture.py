"""Capture golden frames: Apache ZooKeeper 3.8 talking to kazoo (and to a raw client).

Run once (``python3 tests/support/golden_capture.py``) on a machine with Debian's ``zookeeper``
package; it starts ZooKeeper standalone on a free 127.0.0.1 port with a temporary data dir, puts
a recording TCP proxy in front of it, drives kazoo through the proxy (plus a raw client built on
``zkref.wire.codec`` for what kazoo cannot send: multiRead, whoAmI, addWatch, …), stops the JVM
and writes every frame (length prefix removed) to ``tests/fixtures/golden/NNN_<step>_<kind>.bin``
with an ``index.json`` naming each one. ``tests/test_wire_golden.py`` decodes every frame and
checks that re-encoding gives the same bytes.

Frames the raw client sends are our own encoding (ZooKeeper accepting them is the check); every
frame ZooKeeper sends, and every frame kazoo sends, is third-party ground truth.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zkref.chaos.zookeeper_proc import ApacheZooKeeper
from zkref.wire.codec import (
    FrameDecoder,
    Request,
    decode_reply,
    encode_connect_request,
    encode_request,
    peek_xid,
)
from zkref.wire.constants import AddWatchMode, OpCode, WatcherType
from zkref.wire.records import (
    ACL,
    AddWatchRequest,
    CheckWatchesRequest,
    ConnectRequest,
    CreateRequest,
    CreateTTLRequest,
    ExistsRequest,
    GetAllChildrenNumberRequest,
    GetChildrenRequest,
    GetDataRequest,
    GetEphemeralsRequest,
    Id,
    MultiReadRequest,
    ReconfigRequest,
    RemoveWatchesRequest,
    ReplyHeader,
    SetDataRequest,
    SetWatches,
    SetWatches2,
)

GOLDEN_DIR = Path(__file__).resolve().parent.parent / "fixtures" / "golden"
OPEN_ACL = (ACL(31, Id("world", "anyone")),)
DEADLINE_S = 20.0

_XID_OPS = {-2: int(OpCode.ping), -4: int(OpCode.auth)}


@dataclass
class Captured:
    seq: int
    conn: int
    direction: str  # "c2s" | "s2c"
    frame: bytes
    label: str


class RecordingProxy:
    """127.0.0.1:port -> 127.0.0.1:target_port; records every frame in arrival order."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.label = "start"
        self.records: list[Captured] = []
        self._seq = itertools.count()
        self._conn_ids = itertools.count(1)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._handle, "127.0.0.1", 0), self._loop
        ).result(timeout=10)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def _handle(self, creader: asyncio.StreamReader, cwriter: asyncio.StreamWriter) -> None:
        conn = next(self._conn_ids)
        sreader, swriter = await asyncio.open_connection("127.0.0.1", self.target_port)
        await asyncio.gather(
            self._pump(conn, "c2s", creader, swriter),
            self._pump(conn, "s2c", sreader, cwriter),
        )

    async def _pump(
        self, conn: int, direction: str, r: asyncio.StreamReader, w: asyncio.StreamWriter
    ) -> None:
        dec = FrameDecoder(1 << 30)
        try:
            while data := await r.read(65536):
                for f in dec.feed(data):
                    self.records.append(Captured(next(self._seq), conn, direction, f, self.label))
                w.write(data)
                await w.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            with contextlib.suppress(Exception):
                w.close()

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self._server.close)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)


class RawClient:
    """A blocking client speaking frames built by zkref's codec (for what kazoo cannot send)."""

    def __init__(self, port: int, *, read_only_byte: bool = True) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=DEADLINE_S)
        self.dec = FrameDecoder(1 << 30)
        self.frames: list[bytes] = []
        self.notifications: list[bytes] = []
        self.sock.sendall(
            encode_connect_request(
                ConnectRequest(0, 0, 10000, 0, b"\0" * 16, False, read_only_byte)
            )
        )
        self.connect_response = self._next_frame()
        self._xids = itertools.count(1)

    def _next_frame(self) -> bytes:
        while not self.frames:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("server closed the connection")
            self.frames.extend(self.dec.feed(data))
        return self.frames.pop(0)

    def call(
        self, op: int, body: Request | None, *, xid: int | None = None
    ) -> tuple[ReplyHeader, Any]:
        x = next(self._xids) if xid is None else xid
        self.sock.sendall(encode_request(x, op, body))
        while True:
            f = self._next_frame()
            if peek_xid(f) == -1:
                self.notifications.append(f)
                continue
            if peek_xid(f) == x:
                return decode_reply(f, op)

    def wait_notification(self) -> bytes:
        if not self.notifications:
            f = self._next_frame()
            assert peek_xid(f) == -1, f
            self.notifications.append(f)
        return self.notifications.pop(0)

    def close(self) -> None:
        self.sock.close()


def _wait(cond: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not cond():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.01)


def drive(proxy: RecordingProxy) -> None:
    from kazoo.client import KazooClient
    from kazoo.exceptions import (
        BadVersionError,
        NoAuthError,
        NodeExistsError,
        NoNodeError,
        NotEmptyError,
    )
    from kazoo.security import OPEN_ACL_UNSAFE, make_digest_acl

    def step(name: str) -> None:
        proxy.label = name

    events: list[Any] = []
    step("connect")
    zk = KazooClient(hosts=f"127.0.0.1:{proxy.port}", timeout=10.0)
    zk.start(timeout=DEADLINE_S)
    try:
        step("create")
        zk.create("/golden", b"v0")
        step("create_nodeexists")
        with contextlib.suppress(NodeExistsError):
            zk.create("/golden", b"")
        step("create2")
        zk.create("/golden/c2", b"x", include_data=True)
        step("create_ephemeral")
        zk.create("/golden/eph", b"", ephemeral=True)
        step("create_sequential")
        zk.create("/golden/seq-", b"s", sequence=True)
        step("create_ephemeral_sequential")
        eseq = zk.create("/golden/eseq-", None, ephemeral=True, sequence=True)
        step("create_digest_acl")
        zk.create("/golden/acl", b"secret", acl=[make_digest_acl("user", "pw", all=True)])
        step("get_data_watch")
        zk.get("/golden", watch=events.append)
        step("set_data_notify")
        zk.set("/golden", b"v1")
        _wait(lambda: len(events) == 1, "NodeDataChanged")
        step("set_data_badversion")
        with contextlib.suppress(BadVersionError):
            zk.set("/golden", b"x", version=99)
        step("exists")
        zk.exists("/golden")
        step("exists_nonode_watch")
        zk.exists("/golden/new", watch=events.append)
        step("get_children_watch")
        zk.get_children("/golden", watch=events.append)
        step("create_notify")
        zk.create("/golden/new", b"")
        _wait(lambda: len(events) == 3, "NodeCreated + NodeChildrenChanged")
        step("get_children2")
        zk.get_children("/golden", include_data=True)
        step("get_children_nonode")
        with contextlib.suppress(NoNodeError):
            zk.get_children("/nope")
        step("get_data_watch_2")
        zk.get("/golden/new", watch=events.append)
        step("delete_notify")
        zk.delete("/golden/new")
        _wait(lambda: len(events) == 4, "NodeDeleted")
        step("get_acl_noauth")
        with contextlib.suppress(NoAuthError):
            zk.get_acls("/golden/acl")
        step("set_acl")
        zk.set_acls("/golden/c2", OPEN_ACL_UNSAFE)
        step("get_data_noauth")
        with contextlib.suppress(NoAuthError):
            zk.get("/golden/acl")
        step("add_auth")
        zk.add_auth("digest", "user:pw")
        step("get_data_auth")
        zk.get("/golden/acl")
        step("get_acl")
        zk.get_acls("/golden/acl")
        step("multi_ok")
        t = zk.transaction()
        t.create("/golden/m1", b"a")
        t.check("/golden", 1)
        t.set_data("/golden/m1", b"b")
        t.delete("/golden/c2")
        t.commit()
        step("multi_fail")
        t = zk.transaction()
        t.create("/golden/m2", b"")
        t.check("/golden", 99)
        t.delete("/golden/m1")
        t.commit()
        step("sync")
        zk.sync("/golden")
        step("delete")
        zk.delete("/golden/m1")
        step("delete_notempty")
        with contextlib.suppress(NotEmptyError):
            zk.delete("/golden")
        step("get_data_null")
        zk.get(eseq)

        drive_raw(proxy)
        drive_zkcli(proxy)

        step("close_session")
    finally:
        zk.stop()
        zk.close()


def drive_raw(proxy: RecordingProxy) -> None:
    def step(name: str) -> None:
        proxy.label = name

    step("raw_connect")
    raw = RawClient(proxy.port)
    try:
        step("multi_read")
        raw.call(
            OpCode.multiRead,
            MultiReadRequest(
                (
                    (OpCode.getData, GetDataRequest("/golden", False)),
                    (OpCode.getChildren, GetChildrenRequest("/golden", False)),
                    (OpCode.getData, GetDataRequest("/nope", False)),
                )
            ),
        )
        step("who_am_i")
        raw.call(OpCode.whoAmI, None)
        step("ping")
        raw.call(OpCode.ping, None, xid=-2)
        step("create_ephemeral_raw")
        raw.call(OpCode.create, CreateRequest("/golden/reph", b"r", OPEN_ACL, 1))
        step("get_ephemerals")
        raw.call(OpCode.getEphemerals, GetEphemeralsRequest("/"))
        step("get_all_children_number")
        raw.call(OpCode.getAllChildrenNumber, GetAllChildrenNumberRequest("/golden"))
        step("add_watch_persistent")
        raw.call(OpCode.addWatch, AddWatchRequest("/golden", AddWatchMode.PERSISTENT))
        step("add_watch_recursive")
        raw.call(OpCode.addWatch, AddWatchRequest("/golden", AddWatchMode.PERSISTENT_RECURSIVE))
        step("persistent_notify")
        raw.call(OpCode.setData, SetDataRequest("/golden/reph", b"r2", -1))
        raw.wait_notification()
        step("check_watches")
        raw.call(OpCode.checkWatches, CheckWatchesRequest("/golden", WatcherType.Any))
        step("check_watches_nowatcher")
        raw.call(OpCode.checkWatches, CheckWatchesRequest("/golden/reph", WatcherType.Data))
        step("remove_watches")
        raw.call(OpCode.removeWatches, RemoveWatchesRequest("/golden", WatcherType.Any))
        step("set_watches")
        raw.call(
            OpCode.setWatches,
            SetWatches(1, ("/golden",), ("/golden/none",), ("/golden",)),
            xid=-8,
        )
        step("set_watches2")
        raw.call(
            OpCode.setWatches2,
            SetWatches2(1, ("/golden",), (), ("/golden",), ("/golden/reph",), ("/",)),
            xid=-8,
        )
        step("create_container")
        raw.call(OpCode.createContainer, CreateRequest("/golden/ctr", b"c", OPEN_ACL, 4))
        step("create_ttl")
        raw.call(OpCode.createTTL, CreateTTLRequest("/golden/ttl", b"t", OPEN_ACL, 5, 60000))
        step("reconfig_disabled")
        raw.call(OpCode.reconfig, ReconfigRequest(None, None, "server.1=x", -1))
        step("get_data_nowatch")
        raw.call(OpCode.getData, GetDataRequest("/golden/ttl", False))
        step("raw_close_session")
        raw.call(OpCode.closeSession, None)
    finally:
        raw.close()

    step("old_client_connect")
    old = RawClient(proxy.port, read_only_byte=False)
    try:
        step("old_client_exists")
        old.call(OpCode.exists, ExistsRequest("/golden", False))
        step("old_client_close_session")
        old.call(OpCode.closeSession, None)
    finally:
        old.close()


ZKCLI = Path("/usr/share/zookeeper/bin/zkCli.sh")
ZKCLI_SCRIPT = """\
create /golden/java hello
create -e -s /golden/java/e- x
create -c /golden/java-ctr
create -t 60000 /golden/java-ttl t
get -s -w /golden/java
set /golden/java bye
ls -s /golden
ls -w /golden/java
stat /golden/nope
getAcl /golden/java
setAcl /golden/java world:anyone:cdrwa
addauth digest bob:pw
whoami
getAllChildrenNumber /golden
getEphemerals /golden
addWatch -m PERSISTENT_RECURSIVE /golden/java
removewatches /golden/java
sync /golden/java
config
delete /golden/java-ttl
deleteall /golden/java
quit
"""


def drive_zkcli(proxy: RecordingProxy) -> None:
    """The Java client (zkCli.sh, ZooKeeper's own) through the proxy."""
    import subprocess

    proxy.label = "zkcli"
    subprocess.run(
        [str(ZKCLI), "-server", f"127.0.0.1:{proxy.port}"],
        input=ZKCLI_SCRIPT.encode(),
        capture_output=True,
        timeout=120,
        check=True,
    )


def classify(records: list[Captured]) -> list[dict[str, Any]]:
    """One index entry per frame: kind, op (requests and replies), xid, err."""
    ops: dict[tuple[int, int], int] = {}
    seen_first: set[tuple[int, str]] = set()
    out: list[dict[str, Any]] = []
    for r in records:
        entry: dict[str, Any] = {"conn": r.conn, "direction": r.direction, "label": r.label}
        first = (r.conn, r.direction) not in seen_first
        seen_first.add((r.conn, r.direction))
        if first:
            entry["kind"] = "connect_request" if r.direction == "c2s" else "connect_response"
        elif r.direction == "c2s":
            xid = int.from_bytes(r.frame[0:4], "big", signed=True)
            op = int.from_bytes(r.frame[4:8], "big", signed=True)
            ops[(r.conn, xid)] = op
            entry.update(kind="request", xid=xid, op=op)
        else:
            xid = peek_xid(r.frame)
            err = int.from_bytes(r.frame[12:16], "big", signed=True)
            if xid == -1:
                entry.update(kind="notification", xid=xid, err=err)
            else:
                op = ops.get((r.conn, xid), _XID_OPS.get(xid, -999))
                entry.update(kind="reply", xid=xid, op=op, err=err)
        out.append(entry)
    return out


def _op_name(op: int | None) -> str:
    if op is None:
        return ""
    try:
        return OpCode(op).name
    except ValueError:
        return f"op{op}"


def write_fixtures(records: list[Captured], dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    for old in dest.glob("*.bin"):
        old.unlink()
    index = classify(records)
    for i, (r, e) in enumerate(zip(records, index, strict=True)):
        name = f"{i:03d}_{r.label}_{e['kind']}"
        if "op" in e:
            name += f"_{_op_name(e['op'])}"
        if e.get("err"):
            name += f"_err{-e['err']}"
        e["file"] = name + ".bin"
        (dest / e["file"]).write_bytes(r.frame)
    meta = {
        "source": "Apache ZooKeeper 3.8.0 (Debian zookeeper 3.8.0) standalone, kazoo client"
        " plus zkref raw client, captured by tests/support/golden_capture.py",
        "frames": index,
    }
    (dest / "index.json").write_text(json.dumps(meta, indent=1) + "\n")


def capture(dest: Path = GOLDEN_DIR) -> int:
    with tempfile.TemporaryDirectory(prefix="zkref-golden-") as tmp:
        zk = ApacheZooKeeper(1, Path(tmp), jvm_props={"zookeeper.extendedTypesEnabled": "true"})
        with zk:
            zk.start()
            proxy = RecordingProxy(zk.client_port(1))
            try:
                drive(proxy)
                # the close reply reaches the proxy before kazoo returns; give the socket
                # a moment to settle so the record list is complete
                _wait(
                    lambda: any(
                        r.label == "close_session" and r.direction == "s2c" for r in proxy.records
                    ),
                    "closeSession reply",
                )
            finally:
                proxy.close()
        records = list(proxy.records)
    write_fixtures(records, dest)
    return len(records)


if __name__ == "__main__":
    n = capture(Path(sys.argv[1]) if len(sys.argv) > 1 else GOLDEN_DIR)
    print(f"captured {n} frames into {GOLDEN_DIR if len(sys.argv) < 2 else sys.argv[1]}")
