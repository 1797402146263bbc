"""Throughput benchmark: getData and setData against zkref and Apache ZooKeeper, same client.

    python -m zkref.bench                      # both servers, default load
    python -m zkref.bench --target zkref --seconds 10 --sessions 8 --outstanding 32

The load generator is deliberately lean so that it measures the server, not the client: it runs
in separate processes, opens raw sessions with the real handshake, and keeps `outstanding`
requests in flight per session by re-sending one prebuilt frame per reply (fixed xid; the
server only echoes it). Replies are counted by their length prefix; the first reply of each kind
is decoded and checked. It prints ops/s per workload and server. Not a test: figures vary with
the machine and its load, so they are printed, never asserted.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import selectors
import socket
import struct
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from zkref.wire import codec
from zkref.wire.constants import OpCode
from zkref.wire.records import (
    ACL,
    ConnectRequest,
    CreateRequest,
    GetDataRequest,
    Id,
    SetDataRequest,
)

_LEN = struct.Struct(">i")
_HDR = struct.Struct(">iiqi")  # length, xid, zxid, err
OPEN_ACL = (ACL(31, Id("world", "anyone")),)


def _recv_frame(sock: socket.socket) -> bytes:
    buf = b""
    while len(buf) < 4:
        chunk = sock.recv(4 - len(buf))
        if not chunk:
            raise ConnectionError("server closed the connection")
        buf += chunk
    (n,) = _LEN.unpack(buf)
    body = b""
    while len(body) < n:
        chunk = sock.recv(n - len(body))
        if not chunk:
            raise ConnectionError("server closed the connection")
        body += chunk
    return body


def _session(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.sendall(codec.encode_connect_request(ConnectRequest(0, 0, 30000, 0, b"\0" * 16, False)))
    resp = codec.decode_connect_response(_recv_frame(sock))
    if resp.session_id == 0:
        raise ConnectionError("handshake refused")
    return sock


def _call(sock: socket.socket, xid: int, op: int, body: object) -> int:
    sock.sendall(codec.encode_request(xid, op, body))  # type: ignore[arg-type]
    frame = _recv_frame(sock)
    _, _, err = struct.unpack_from(">iqi", frame)
    return int(err)


def _worker(
    port: int,
    sessions: int,
    outstanding: int,
    kind: str,
    seconds: float,
    wid: int,
    out: mp.Queue[tuple[int, int, float]],
) -> None:
    socks = [_session(port) for _ in range(sessions)]
    frames: list[bytes] = []
    for i, s in enumerate(socks):
        path = f"/bench/w{wid}s{i}"
        err = _call(s, 1, OpCode.create, CreateRequest(path, b"v" * 100, OPEN_ACL, 0))
        if err not in (0, -110):
            raise RuntimeError(f"create {path}: err {err}")
        if kind == "get":
            frames.append(codec.encode_request(7, OpCode.getData, GetDataRequest(path, False)))
        else:
            frames.append(
                codec.encode_request(7, OpCode.setData, SetDataRequest(path, b"x" * 100, -1))
            )
        # check one reply of the kind properly before the blast
        s.sendall(frames[-1])
        hdr, _ = codec.decode_reply(
            _recv_frame(s), OpCode.getData if kind == "get" else OpCode.setData
        )
        if hdr.err != 0:
            raise RuntimeError(f"{kind} {path}: err {hdr.err}")
    sel = selectors.DefaultSelector()
    bufs: dict[socket.socket, bytearray] = {}
    for s, f in zip(socks, frames, strict=True):
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ, f)
        bufs[s] = bytearray()
        s.sendall(f * outstanding)
    done = 0
    errors = 0
    t0 = time.perf_counter()
    deadline = t0 + seconds
    while True:
        now = time.perf_counter()
        if now >= deadline:
            break
        for key, _ in sel.select(timeout=deadline - now):
            s = cast(socket.socket, key.fileobj)
            try:
                data = s.recv(1 << 20)
            except BlockingIOError:
                continue
            if not data:
                raise ConnectionError("server closed a benchmark session")
            buf = bufs[s]
            buf += data
            n = 0
            pos = 0
            while len(buf) - pos >= 4:
                (ln,) = _LEN.unpack_from(buf, pos)
                if len(buf) - pos - 4 < ln:
                    break
                if _HDR.unpack_from(buf, pos)[3] != 0:
                    errors += 1
                pos += 4 + ln
                n += 1
            del buf[:pos]
            if n:
                done += n
                s.sendall(key.data * n)
    elapsed = time.perf_counter() - t0
    for s in socks:
        s.close()
    out.put((done, errors, elapsed))


def run_load(
    ports: list[int], kind: str, *, seconds: float, sessions: int, outstanding: int, procs: int
) -> tuple[float, int]:
    """ops/s of `kind` ("get" or "set") against 127.0.0.1:ports (load process i uses
    ports[i % len(ports)]), and the error count."""
    ctx = mp.get_context("fork")
    q: mp.Queue[tuple[int, int, float]] = ctx.Queue()
    per = [sessions // procs + (1 if i < sessions % procs else 0) for i in range(procs)]
    ps = [
        ctx.Process(
            target=_worker, args=(ports[i % len(ports)], n, outstanding, kind, seconds, i, q)
        )
        for i, n in enumerate(per)
        if n
    ]
    for p in ps:
        p.start()
    results = [q.get(timeout=seconds + 120) for _ in ps]
    for p in ps:
        p.join(timeout=30)
    total = sum(r[0] for r in results)
    errors = sum(r[1] for r in results)
    elapsed = max(r[2] for r in results)
    return total / elapsed, errors


def _ensure_parent(port: int) -> None:
    s = _session(port)
    err = _call(s, 1, OpCode.create, CreateRequest("/bench", b"", OPEN_ACL, 0))
    s.close()
    if err not in (0, -110):
        raise RuntimeError(f"create /bench: err {err}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def _server(target: str, base: Path, members: int) -> Iterator[tuple[list[int], list[int]]]:
    """(client ports, server pids): the leader first for an ensemble."""
    if target == "zkref" and members > 1:
        from zkref.server.ensemble import LocalEnsemble

        ens = LocalEnsemble(members, base / "zkref-ensemble", log_level="WARNING")
        ens.start()
        try:
            leader = ens.wait_serving(deadline_s=60)
            order = [leader] + [m.sid for m in ens.members if m.sid != leader]
            yield (
                [ens.by_sid[s].client_port for s in order],
                [ens.procs[s].pid for s in order],
            )
        finally:
            ens.stop()
    elif target == "zkref":
        from zkref.server.process import ZkrefServerProcess

        zp = ZkrefServerProcess(base / "zkref")
        zp.start()
        try:
            assert zp.proc is not None
            yield [zp.port], [zp.proc.pid]
        finally:
            zp.stop()
    else:
        from zkref.chaos.zookeeper_proc import ApacheZooKeeper

        zk = ApacheZooKeeper(members, base / "apache", heap_mb=1024)
        zk.start()
        try:
            sids = list(range(1, members + 1))
            leader = (zk.leader() or 1) if members > 1 else 1
            order = [leader] + [s for s in sids if s != leader]
            pids = [zk.pid(s) for s in order]
            assert all(p is not None for p in pids)
            yield [zk.client_port(s) for s in order], [p for p in pids if p is not None]
        finally:
            zk.stop()


@dataclass
class Figure:
    target: str
    kind: str
    ops_per_s: float
    cpu_us_per_op: float
    errors: int


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m zkref.bench", description=__doc__.split("\n")[0])
    p.add_argument("--target", choices=["zkref", "zookeeper", "both"], default="both")
    p.add_argument("--seconds", type=float, default=8.0)
    p.add_argument("--sessions", type=int, default=8)
    p.add_argument("--outstanding", type=int, default=32)
    p.add_argument("--procs", type=int, default=2, help="load-generator processes")
    p.add_argument("--warmup", type=float, default=2.0)
    p.add_argument("--members", type=int, default=1, help="ensemble size (1: standalone)")
    p.add_argument(
        "--via",
        choices=["leader", "all"],
        default="leader",
        help="ensemble: load on the leader only, or spread over every member",
    )
    a = p.parse_args(argv)
    figures: list[Figure] = []
    targets = ["zkref", "zookeeper"] if a.target == "both" else [a.target]
    with tempfile.TemporaryDirectory(prefix="zkref-bench-") as tmp:
        for target in targets:
            with _server(target, Path(tmp), a.members) as (ports, pids):
                _ensure_parent(ports[0])
                if a.via == "leader":
                    ports = ports[:1]
                for kind in ("get", "set"):
                    load = dict(sessions=a.sessions, outstanding=a.outstanding, procs=a.procs)
                    run_load(ports, kind, seconds=a.warmup, **load)
                    cpu0 = sum(cpu_seconds(p) for p in pids)
                    ops, errors = run_load(ports, kind, seconds=a.seconds, **load)
                    cpu = sum(cpu_seconds(p) for p in pids) - cpu0
                    cpu_us = cpu * 1e6 / max(1.0, ops * a.seconds)
                    figures.append(Figure(target, kind, ops, cpu_us, errors))
                    print(
                        f"{target:10s} {kind}Data {ops:10,.0f} ops/s "
                        f"{cpu_us:6.1f} us server CPU/op  errors={errors}",
                        flush=True,
                    )
    print(
        f"\n{a.sessions} sessions x {a.outstanding} outstanding, 100-byte values, "
        f"{a.seconds:g}s per run, {a.procs} load processes, {os.cpu_count()} cores, "
        f"{a.members} member(s), load via {a.via if a.members > 1 else 'the server'}"
    )
    by = {(f.target, f.kind): f.ops_per_s for f in figures}
    if ("zkref", "get") in by and ("zookeeper", "get") in by:
        for kind in ("get", "set"):
            print(f"zkref/zookeeper {kind}Data: {by['zkref', kind] / by['zookeeper', kind]:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
