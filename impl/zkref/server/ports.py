"""Free TCP ports on 127.0.0.1 for servers that tests and launchers start.

A port the kernel hands out for ``bind(0)`` comes from the ephemeral range
(``/proc/sys/net/ipv4/ip_local_port_range``, 32768-60999 on Linux).  The same range supplies the
source port of every outgoing connection, so between "this port was free" and "the server binds
it" any client connect in the machine may take it: a member then dies with EADDRINUSE (CI saw
exactly that while a chaos run's proxies were connecting).  Ports below the ephemeral range are
never chosen as source ports, so we pick there: at random, each one checked by binding it, and
never a port this process has handed out before.
"""

from __future__ import annotations

import random
import socket
import threading
from contextlib import ExitStack, closing
from pathlib import Path

__all__ = ["free_ports"]

_EPHEMERAL_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_LOWEST = 10000
_lock = threading.Lock()
_handed_out: set[int] = set()
_rng = random.Random()


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = (int(x) for x in _EPHEMERAL_RANGE_FILE.read_text().split())
        return low, high
    except (OSError, ValueError):
        return 32768, 60999


def _candidates() -> list[int]:
    low, high = _ephemeral_range()
    ranges = []
    if low - _LOWEST >= 1000:
        ranges.append(range(_LOWEST, low))
    if 65535 - high >= 1000:
        ranges.append(range(high + 1, 65536))
    return [p for r in ranges for p in r]


def _bindable(stack: ExitStack, port: int) -> bool:
    s = stack.enter_context(closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)))
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        return False
    return True


def free_ports(n: int) -> list[int]:
    """``n`` distinct TCP ports on 127.0.0.1, each bindable now and outside the ephemeral range.

    Each port is handed out once per process, so two ensembles of one test run never share a
    port even after the first one stopped (its sockets may linger in TIME_WAIT).  Where the
    machine leaves no room outside the ephemeral range, falls back to ports the kernel picks.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    with _lock, ExitStack() as stack:
        candidates = _candidates()
        ports: list[int] = []
        tries = 0
        while len(ports) < n and candidates and tries < 50 * n + 1000:
            tries += 1
            port = _rng.choice(candidates)
            if port in _handed_out or port in ports:
                continue
            # The socket stays open until all n are chosen: the n ports are distinct.
            if _bindable(stack, port):
                ports.append(port)
        while len(ports) < n:
            s = stack.enter_context(closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)))
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
            if port not in _handed_out and port not in ports:
                ports.append(port)
        _handed_out.update(ports)
        return ports
