"""Run `zkref server` as a separate OS process on loopback (tests, benchmarks, the chaos harness).

Same shape as `zkref.chaos.zookeeper_proc.ApacheZooKeeper`, so a test can run one script against
either server. Rules: 127.0.0.1 only, a free port; start() waits until the server answers `srvr`;
stop() always ends the process (SIGTERM, then SIGKILL after a deadline); kill() is kill -9.
"""

from __future__ import annotations

import atexit
import os
import signal
import subprocess
import sys
import time
import weakref
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

from zkref.chaos.zookeeper_proc import four_letter_word, free_ports

_LIVE: weakref.WeakSet[ZkrefServerProcess] = weakref.WeakSet()


@atexit.register
def _stop_all_at_exit() -> None:
    for p in list(_LIVE):
        p.stop()


class ZkrefStartError(RuntimeError):
    """The server did not come up before its deadline; the message has its log tail."""


class ZkrefServerProcess:
    def __init__(
        self,
        base_dir: Path,
        *,
        tick_time_ms: int = 2000,
        extra_cfg: Mapping[str, str] | None = None,
        port: int | None = None,
    ) -> None:
        self.base_dir = base_dir
        self.data_dir = base_dir / "data"
        self.cfg_path = base_dir / "zoo.cfg"
        self.log_path = base_dir / "zkref.log"
        self.port = port if port is not None else free_ports(1)[0]
        self.tick_time_ms = tick_time_ms
        self.extra_cfg = dict(extra_cfg or {})
        self.proc: subprocess.Popen[bytes] | None = None
        self._log_file: object | None = None

    @property
    def connect_string(self) -> str:
        return f"127.0.0.1:{self.port}"

    def write_config(self) -> None:
        self.base_dir.mkdir(parents=True, exist_ok=True)
        cfg = {
            "tickTime": str(self.tick_time_ms),
            "dataDir": str(self.data_dir),
            "clientPort": str(self.port),
            "clientPortAddress": "127.0.0.1",
            "4lw.commands.whitelist": "*",
            "maxClientCnxns": "0",
        }
        cfg.update(self.extra_cfg)
        self.cfg_path.write_text("".join(f"{k}={v}\n" for k, v in cfg.items()))

    def start(self, timeout_s: float = 30.0) -> None:
        if self.proc is not None and self.proc.poll() is None:
            return
        self.write_config()
        log = open(self.log_path, "ab")  # noqa: SIM115 - kept open for the child's lifetime
        env = dict(os.environ)
        env.setdefault("PYTHONUNBUFFERED", "1")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "zkref", "server", "--config", str(self.cfg_path)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
        log.close()
        _LIVE.add(self)
        self.wait_serving(timeout_s)

    def wait_serving(self, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                raise ZkrefStartError(f"zkref server exited early:\n{self.log_tail()}")
            reply = four_letter_word(self.port, "srvr", timeout_s=1.0)
            if reply and "Mode:" in reply:
                return
            time.sleep(0.05)
        raise ZkrefStartError(f"zkref server not serving after {timeout_s}s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def is_running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """kill -9: no chance to flush anything."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)

    def pause(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGCONT)

    def restart(self, timeout_s: float = 30.0) -> None:
        self.stop()
        self.start(timeout_s)

    def stop(self, timeout_s: float = 15.0) -> int | None:
        """SIGTERM (a clean stop), SIGKILL if it is still there after the deadline."""
        p = self.proc
        if p is None:
            return None
        if p.poll() is None:
            p.send_signal(signal.SIGCONT)
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=30)
        _LIVE.discard(self)
        return p.returncode

    def __enter__(self) -> ZkrefServerProcess:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
