"""Launch Apache ZooKeeper 3.8 (Debian's package) on loopback for chaos and differential tests.

Rules:
- every process listens on 127.0.0.1 only, on ports found free by binding to port 0;
- every process this module starts is stopped by ``stop()``, by the context manager, or at
  interpreter exit (atexit), whichever comes first; ``stop()`` is idempotent;
- conditions (a member serving, a process gone) are waited on with deadlines, never bare sleeps;
- a member "serves" when it answers the ``srvr`` four-letter word with a ``Mode:`` line, which
  ZooKeeper only does once it is in a quorum (or standalone).

Peer links can be routed through a proxy (see ``route_peers``): member *i*'s ``zoo.cfg`` then
names, for every other member *j*, the proxy's ports for the link i→j instead of j's real ports.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Mapping
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from zkref.server.ports import free_ports

__all__ = [
    "ZOOKEEPER_JAR",
    "ApacheZooKeeper",
    "ZooKeeperStartError",
    "apache_zookeeper_available",
    "four_letter_word",
    "free_ports",
]

ZOOKEEPER_JAR = Path("/usr/share/java/zookeeper.jar")
MAIN_CLASS = "org.apache.zookeeper.server.quorum.QuorumPeerMain"
# zookeeper.jar's manifest Class-Path names its dependencies but no slf4j binding; slf4j-simple
# writes to stderr, which we send to a file per member.
_LOG_BINDING = Path("/usr/share/java/slf4j-simple.jar")


def _java() -> str | None:
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").exists():
        return str(Path(java_home) / "bin" / "java")
    return shutil.which("java")


def apache_zookeeper_available() -> bool:
    """True if a ``java`` binary and Debian's ``zookeeper.jar`` are both present."""
    return _java() is not None and ZOOKEEPER_JAR.is_file()


class ZooKeeperStartError(RuntimeError):
    """A member did not come up (or come back) before its deadline; the message names its log."""


def four_letter_word(port: int, word: str, *, timeout_s: float = 2.0) -> str | None:
    """Send a four-letter word to 127.0.0.1:port; the reply, or None if nobody answered in time."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as s:
            s.settimeout(timeout_s)
            s.sendall(word.encode("ascii"))
            chunks: list[bytes] = []
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline:
                chunk = s.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
            return b"".join(chunks).decode("utf-8", "replace")
    except OSError:
        return None


def _srvr_mode(reply: str | None) -> str | None:
    if reply is None:
        return None
    for line in reply.splitlines():
        if line.startswith("Mode:"):
            return line.split(":", 1)[1].strip()
    return None


@dataclass(slots=True)
class _Member:
    sid: int
    client_port: int
    quorum_port: int
    election_port: int
    data_dir: Path
    cfg_path: Path
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    paused: bool = False
    starts: int = 0


_LIVE: weakref.WeakSet[ApacheZooKeeper] = weakref.WeakSet()
_LIVE_LOCK = threading.Lock()


@atexit.register
def _stop_all_at_exit() -> None:
    with _LIVE_LOCK:
        live = list(_LIVE)
    for zk in live:
        zk.stop()


PeerRoute = Callable[[int, int], tuple[int, int]]
"""(from_sid, to_sid) -> (quorum_port, election_port) that from_sid's zoo.cfg names for to_sid."""


class ApacheZooKeeper:
    """An Apache ZooKeeper standalone server (size 1) or ensemble (3, 5, ...) on 127.0.0.1.

    >>> with ApacheZooKeeper(3, tmp_path) as zk:   # doctest: +SKIP
    ...     zk.start()
    ...     KazooClient(zk.connect_string)
    """

    def __init__(
        self,
        size: int,
        base_dir: Path,
        *,
        tick_time_ms: int = 2000,
        extra_cfg: Mapping[str, str] | None = None,
        jvm_props: Mapping[str, str] | None = None,
        heap_mb: int = 256,
    ) -> None:
        if size < 1:
            raise ValueError(f"size must be >= 1, got {size}")
        self.size = size
        self.base_dir = Path(base_dir)
        self.tick_time_ms = tick_time_ms
        self.extra_cfg = dict(extra_cfg or {})
        self.jvm_props = dict(jvm_props or {})
        self.heap_mb = heap_mb
        self._route: PeerRoute | None = None
        self._lock = threading.RLock()
        self._stopped = False
        ports = free_ports(3 * size)
        self._members: dict[int, _Member] = {}
        for i in range(size):
            sid = i + 1
            d = self.base_dir / f"zk{sid}"
            self._members[sid] = _Member(
                sid=sid,
                client_port=ports[3 * i],
                quorum_port=ports[3 * i + 1],
                election_port=ports[3 * i + 2],
                data_dir=d / "data",
                cfg_path=d / "zoo.cfg",
                log_path=d / "zookeeper.log",
            )
        with _LIVE_LOCK:
            _LIVE.add(self)

    # -- topology ---------------------------------------------------------------------------

    @property
    def sids(self) -> list[int]:
        return sorted(self._members)

    @property
    def connect_string(self) -> str:
        return ",".join(f"127.0.0.1:{m.client_port}" for m in self._members.values())

    def client_port(self, sid: int) -> int:
        return self._members[sid].client_port

    def peer_ports(self, sid: int) -> tuple[int, int]:
        """The real (quorum_port, election_port) member ``sid`` listens on."""
        m = self._members[sid]
        return m.quorum_port, m.election_port

    def log_path(self, sid: int) -> Path:
        return self._members[sid].log_path

    def route_peers(self, route: PeerRoute) -> None:
        """Before ``start``: make member i reach member j at ``route(i, j)`` (a proxy) instead."""
        if any(m.starts for m in self._members.values()):
            raise RuntimeError("route_peers must be called before start()")
        self._route = route

    # -- lifecycle --------------------------------------------------------------------------

    def _check_available(self) -> None:
        if not apache_zookeeper_available():
            raise ZooKeeperStartError(f"java or {ZOOKEEPER_JAR} not found")

    def _env(self) -> dict[str, str] | None:
        return None

    def start(self, timeout_s: float = 60.0) -> None:
        """Start every member; return once each answers ``srvr`` with a Mode (a quorum serves)."""
        self._check_available()
        with self._lock:
            if self._stopped:
                raise RuntimeError("this ensemble was stopped; make a new one")
            for sid in self.sids:
                self._write_config(sid)
                self._spawn(sid)
        self.wait_serving(self.sids, timeout_s)

    def _write_config(self, sid: int) -> None:
        m = self._members[sid]
        m.data_dir.mkdir(parents=True, exist_ok=True)
        (m.data_dir / "myid").write_text(f"{sid}\n")
        cfg: dict[str, str] = {
            "tickTime": str(self.tick_time_ms),
            "initLimit": "10",
            "syncLimit": "5",
            "dataDir": str(m.data_dir),
            "clientPort": str(m.client_port),
            "clientPortAddress": "127.0.0.1",
            "maxClientCnxns": "0",
            "4lw.commands.whitelist": "*",
            "admin.enableServer": "false",
            "reconfigEnabled": "false",
            "standaloneEnabled": "true",
            "autopurge.purgeInterval": "0",
        }
        if self.size > 1:
            for j, other in self._members.items():
                if j == sid or self._route is None:
                    q, e = other.quorum_port, other.election_port
                else:
                    q, e = self._route(sid, j)
                cfg[f"server.{j}"] = f"127.0.0.1:{q}:{e}"
        cfg.update(self.extra_cfg)
        m.cfg_path.write_text("".join(f"{k}={v}\n" for k, v in cfg.items()))

    def _command(self, sid: int) -> list[str]:
        m = self._members[sid]
        java = _java()
        assert java is not None
        cp = [str(ZOOKEEPER_JAR)]
        if _LOG_BINDING.is_file():
            cp.append(str(_LOG_BINDING))
        props = {
            "zookeeper.admin.enableServer": "false",
            "zookeeper.4lw.commands.whitelist": "*",
            "zookeeper.jmx.log4j.disable": "true",
            "java.net.preferIPv4Stack": "true",
            "org.slf4j.simpleLogger.defaultLogLevel": "info",
            "org.slf4j.simpleLogger.showDateTime": "true",
            "org.slf4j.simpleLogger.dateTimeFormat": "HH:mm:ss.SSS",
            "zookeeper.log.dir": str(m.log_path.parent),
        }
        props.update(self.jvm_props)
        return [
            java,
            f"-Xmx{self.heap_mb}m",
            "-Xms32m",
            "-XX:+UseSerialGC",
            "-XX:TieredStopAtLevel=1",
            "-Xss512k",
            *(f"-D{k}={v}" for k, v in props.items()),
            "-cp",
            ":".join(cp),
            MAIN_CLASS,
            str(m.cfg_path),
        ]

    def _spawn(self, sid: int) -> None:
        m = self._members[sid]
        assert m.proc is None or m.proc.poll() is not None, f"member {sid} already running"
        m.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(m.log_path, "ab") as log:
            log.write(f"=== zkref launcher: start #{m.starts + 1} of member {sid} ===\n".encode())
            log.flush()
            m.proc = subprocess.Popen(
                self._command(sid),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=m.log_path.parent,
                env=self._env(),
                # Own session: a Ctrl-C in the terminal reaches the harness, not the JVMs, so
                # the harness decides when they die (and can still check the history).
                start_new_session=True,
            )
        m.paused = False
        m.starts += 1

    def is_running(self, sid: int) -> bool:
        p = self._members[sid].proc
        return p is not None and p.poll() is None

    def is_paused(self, sid: int) -> bool:
        return self._members[sid].paused

    def pid(self, sid: int) -> int | None:
        p = self._members[sid].proc
        return p.pid if p is not None and p.poll() is None else None

    def mode(self, sid: int, *, timeout_s: float = 2.0) -> str | None:
        """``leader``, ``follower``, ``standalone`` …, or None if not serving / not answering."""
        m = self._members[sid]
        if m.paused or not self.is_running(sid):
            return None
        return _srvr_mode(four_letter_word(m.client_port, "srvr", timeout_s=timeout_s))

    def four_letter(self, sid: int, word: str, *, timeout_s: float = 2.0) -> str | None:
        return four_letter_word(self._members[sid].client_port, word, timeout_s=timeout_s)

    def wait_serving(self, sids: list[int], timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        pending = list(sids)
        delay = 0.05
        while pending:
            for sid in list(pending):
                if not self.is_running(sid):
                    raise ZooKeeperStartError(
                        f"member {sid} exited (rc={self._rc(sid)}); see {self.log_path(sid)}"
                        f"\n{self._log_tail(sid)}"
                    )
                if self.mode(sid, timeout_s=1.0) is not None:
                    pending.remove(sid)
            if not pending:
                return
            if time.monotonic() >= deadline:
                raise ZooKeeperStartError(
                    f"members {pending} not serving after {timeout_s:.0f}s; logs: "
                    + ", ".join(str(self.log_path(s)) for s in pending)
                    + f"\n{self._log_tail(pending[0])}"
                )
            # Poll with back-off; the condition is re-checked, this is not a wait-for-luck sleep.
            time.sleep(delay)
            delay = min(delay * 1.5, 0.5)

    def _rc(self, sid: int) -> int | None:
        p = self._members[sid].proc
        return None if p is None else p.poll()

    def _log_tail(self, sid: int, lines: int = 15) -> str:
        try:
            text = self.log_path(sid).read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    # -- faults -----------------------------------------------------------------------------

    def kill(self, sid: int) -> None:
        """kill -9 member ``sid`` and reap it (a paused member is killed too)."""
        with self._lock:
            m = self._members[sid]
            p = m.proc
            if p is None:
                return
            if p.poll() is None:
                with suppress(ProcessLookupError):
                    os.kill(p.pid, signal.SIGKILL)
                p.wait(timeout=30)
            m.paused = False

    def restart(self, sid: int, timeout_s: float = 60.0) -> None:
        """Start member ``sid`` again (after ``kill``; kills it first if alive) and wait until
        it serves."""
        with self._lock:
            if self._stopped:
                raise RuntimeError("this ensemble was stopped")
            self.kill(sid)
            self._write_config(sid)
            self._spawn(sid)
        self.wait_serving([sid], timeout_s)

    def pause(self, sid: int) -> None:
        """SIGSTOP member ``sid``: it keeps its sockets but answers nothing."""
        with self._lock:
            p = self._members[sid].proc
            if p is None or p.poll() is not None:
                raise RuntimeError(f"member {sid} is not running")
            os.kill(p.pid, signal.SIGSTOP)
            self._members[sid].paused = True

    def resume(self, sid: int) -> None:
        """SIGCONT member ``sid``."""
        with self._lock:
            p = self._members[sid].proc
            if p is not None and p.poll() is None:
                os.kill(p.pid, signal.SIGCONT)
            self._members[sid].paused = False

    def leader(self) -> int | None:
        """The sid whose ``srvr`` says ``Mode: leader`` (or the standalone server), else None."""
        for sid in self.sids:
            if self.mode(sid) in ("leader", "standalone"):
                return sid
        return None

    def followers(self) -> list[int]:
        return [sid for sid in self.sids if self.mode(sid) == "follower"]

    def stop(self) -> None:
        """Kill every member (SIGCONT first so a paused JVM dies promptly). Idempotent."""
        with self._lock:
            self._stopped = True
            for m in self._members.values():
                p = m.proc
                if p is None or p.poll() is not None:
                    continue
                for sig in (signal.SIGCONT, signal.SIGKILL):
                    try:
                        os.kill(p.pid, sig)
                    except ProcessLookupError:
                        break
                with suppress(subprocess.TimeoutExpired):
                    p.wait(timeout=30)
                m.paused = False
        with _LIVE_LOCK:
            _LIVE.discard(self)

    def __iter__(self) -> Iterator[int]:
        return iter(self.sids)

    def __enter__(self) -> ApacheZooKeeper:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __del__(self) -> None:
        # Last resort: never leave a JVM behind because someone forgot stop().
        with suppress(Exception):
            self.stop()
