"""A real `zkref server` process: clean stop on SIGTERM, connection limits, restart."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from kazoo.client import KazooClient

from zkref.chaos.zookeeper_proc import four_letter_word
from zkref.server.process import ZkrefServerProcess

pytestmark = pytest.mark.slow


def _kazoo(proc: ZkrefServerProcess) -> KazooClient:
    zk = KazooClient(hosts=proc.connect_string, timeout=10.0)
    zk.start(timeout=20)
    return zk


def test_sigterm_stops_cleanly_and_keeps_every_write(tmp_path: Path) -> None:
    proc = ZkrefServerProcess(tmp_path, tick_time_ms=500)
    proc.start()
    try:
        zk = _kazoo(proc)
        zk.create("/kept", b"v")
        zk.stop()
        zk.close()
        assert proc.stop() == 0
        tail = proc.log_tail(5)
        assert "INFO    zkref.server: stopped" in tail
        proc.start()
        zk = _kazoo(proc)
        try:
            assert zk.get("/kept")[0] == b"v"
        finally:
            zk.stop()
            zk.close()
    finally:
        proc.stop()


def test_max_client_cnxns_refuses_only_the_extra_connection(tmp_path: Path) -> None:
    proc = ZkrefServerProcess(tmp_path, extra_cfg={"maxClientCnxns": "2"})
    proc.start()
    socks: list[socket.socket] = []
    try:
        for _ in range(2):
            socks.append(socket.create_connection(("127.0.0.1", proc.port), timeout=5))
        extra = socket.create_connection(("127.0.0.1", proc.port), timeout=5)
        extra.settimeout(5)
        try:
            assert extra.recv(1) == b"", "the third connection from one IP is closed at once"
        except ConnectionResetError:
            pass
        finally:
            extra.close()
        for s in socks:
            s.close()
        socks.clear()
        # the limit counts live connections: once the others are gone, a client gets in again
        zk = _kazoo(proc)
        try:
            assert zk.exists("/") is not None
        finally:
            zk.stop()
            zk.close()
    finally:
        for s in socks:
            s.close()
        proc.stop()


def test_ensemble_lines_are_reported_and_the_server_runs_standalone(tmp_path: Path) -> None:
    proc = ZkrefServerProcess(
        tmp_path,
        extra_cfg={"server.1": "127.0.0.1:2888:3888", "server.2": "127.0.0.1:2889:3889"},
    )
    proc.start()
    try:
        reply = four_letter_word(proc.port, "srvr")
        assert reply is not None and "Mode: standalone" in reply
        assert "zkref runs standalone" in proc.log_tail(40)
    finally:
        proc.stop()
