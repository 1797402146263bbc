"""The link proxy: forwards per ordered pair, cuts and heals pairs, holds quorum dials."""

from __future__ import annotations

import socket
import socketserver
import threading
import time
from collections.abc import Iterator

import pytest

from zkref.chaos.proxy import LinkProxy
from zkref.chaos.zookeeper_proc import free_ports


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while data := self.request.recv(4096):
            self.request.sendall(data)


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


@pytest.fixture
def echo_servers() -> Iterator[dict[int, tuple[int, int]]]:
    """Members 1..3, each an echo server on its 'quorum' and 'election' port."""
    servers: list[_Server] = []
    ports: dict[int, tuple[int, int]] = {}
    for sid in (1, 2, 3):
        pair = []
        for _ in range(2):
            s = _Server(("127.0.0.1", 0), _Echo)
            threading.Thread(target=s.serve_forever, daemon=True).start()
            servers.append(s)
            pair.append(int(s.server_address[1]))
        ports[sid] = (pair[0], pair[1])
    yield ports
    for s in servers:
        s.shutdown()
        s.server_close()


def _roundtrip(port: int, payload: bytes = b"ping") -> bytes | None:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
            c.settimeout(5)
            c.sendall(payload)
            return c.recv(4096) or None
    except OSError:
        return None


def test_forward_cut_heal(echo_servers: dict[int, tuple[int, int]]) -> None:
    px = LinkProxy([1, 2, 3], echo_servers)
    px.start()
    try:
        q12, e12 = px.route(1, 2)
        assert len({*px.ports.values()}) == 6
        assert _roundtrip(q12) == b"ping" and _roundtrip(e12) == b"ping"
        # An open connection is cut when its pair is blocked.
        live = socket.create_connection(("127.0.0.1", q12), timeout=5)
        live.settimeout(5)
        live.sendall(b"a")
        assert live.recv(10) == b"a"
        px.partition([[1], [2, 3]])
        assert px.blocked == {frozenset((1, 2)), frozenset((1, 3))}
        assert live.recv(10) == b""  # closed by the proxy
        live.close()
        assert _roundtrip(q12) is None
        assert _roundtrip(px.route(2, 1)[1]) is None
        assert _roundtrip(px.route(2, 3)[0]) == b"ping"  # same side: untouched
        px.heal()
        assert _roundtrip(q12) == b"ping"
        assert px.refused >= 2
    finally:
        px.stop()


def test_quorum_dial_is_held_until_the_port_opens() -> None:
    (late,) = free_ports(1)
    (unused,) = free_ports(1)
    px = LinkProxy([1, 2], {1: (unused, unused), 2: (late, unused)})
    # far longer than any scheduling delay, so "not held" below is told apart without timing luck
    px.quorum_hold_s = 30.0
    px.start()
    srv: _Server | None = None
    try:
        result: list[bytes | None] = []
        t = threading.Thread(target=lambda: result.append(_roundtrip(px.route(1, 2)[0])))
        t.start()
        # The leader's quorum port opens shortly after the learner dialled.
        time.sleep(0.3)  # the race being tested is "dial first, listen later"
        srv = _Server(("127.0.0.1", late), _Echo)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        t.join(timeout=10)
        assert result == [b"ping"]
        # Election links are not held: nobody listens there, so the dial fails fast.
        t0 = time.monotonic()
        assert _roundtrip(px.route(1, 2)[1]) is None
        assert time.monotonic() - t0 < 10.0  # a held dial would take quorum_hold_s (30 s)
    finally:
        px.stop()
        if srv is not None:
            srv.shutdown()
            srv.server_close()


def test_pairs_between() -> None:
    from zkref.chaos.proxy import pairs_between

    assert pairs_between([1, 2, 3], [[1], [2, 3]]) == [(1, 2), (1, 3)]
    assert pairs_between([1, 2, 3, 4, 5], [[1, 2], [3, 4, 5]]) == [
        (1, 3), (1, 4), (1, 5), (2, 3), (2, 4), (2, 5)
    ]  # fmt: skip
    # A member in no group is cut from everyone.
    assert pairs_between([1, 2, 3], [[1, 2]]) == [(1, 3), (2, 3)]
