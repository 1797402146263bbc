"""`zkref ensemble --size N`: N member processes on 127.0.0.1, for development and teaching.

Writes one zoo.cfg and one myid per member under the data directory, starts
`python -m zkref server --config <member>/zoo.cfg` for each, prints the connect string and the
leader once one is elected, and stops every member on Ctrl-C or SIGTERM.

With `--trace-dir DIR` every member records its spec actions in `DIR/member-<sid>.ndjson`
(`zkref.server.tracing`); `zkref trace merge DIR` makes one trace of them.

Ports: with `--base-port P`, member i (1-based) has client port P+i-1, quorum port P+100+i-1
and election port P+200+i-1; without it, free ports are picked.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import zkref
from zkref.server.fourletter import send_word
from zkref.server.ports import free_ports
from zkref.server.tracing import TRACE_DIR_ENV

_IMPL_DIR = str(Path(zkref.__file__).resolve().parents[1])


@dataclass(frozen=True, slots=True)
class Member:
    sid: int
    client_port: int
    quorum_port: int
    election_port: int
    dir: Path
    role: str = "participant"  # or "observer"

    @property
    def cfg_path(self) -> Path:
        return self.dir / "zoo.cfg"


def plan(
    size: int, data_dir: Path, base_port: int | None = None, observers: int = 0
) -> list[Member]:
    """`size` members; the last `observers` of them are observers."""
    if base_port is None:
        ports = free_ports(3 * size)
        cp, qp, ep = ports[:size], ports[size : 2 * size], ports[2 * size :]
    else:
        cp = [base_port + i for i in range(size)]
        qp = [base_port + 100 + i for i in range(size)]
        ep = [base_port + 200 + i for i in range(size)]
    return [
        Member(
            i + 1,
            cp[i],
            qp[i],
            ep[i],
            data_dir / f"member{i + 1}",
            "observer" if i >= size - observers else "participant",
        )
        for i in range(size)
    ]


def write_configs(
    members: list[Member],
    *,
    tick_time_ms: int = 500,
    init_limit: int = 10,
    sync_limit: int = 5,
    extra: dict[str, str] | None = None,
) -> None:
    """zoo.cfg + myid per member, as ZooKeeper's own ensemble layout."""
    lines = [
        f"server.{m.sid}=127.0.0.1:{m.quorum_port}:{m.election_port}"
        + (":observer" if m.role == "observer" else "")
        for m in members
    ]
    for m in members:
        m.dir.mkdir(parents=True, exist_ok=True)
        (m.dir / "myid").write_text(f"{m.sid}\n")
        cfg = [
            f"tickTime={tick_time_ms}",
            f"initLimit={init_limit}",
            f"syncLimit={sync_limit}",
            f"dataDir={m.dir}",
            f"clientPort={m.client_port}",
            "clientPortAddress=127.0.0.1",
            "4lw.commands.whitelist=*",
            *(f"{k}={v}" for k, v in (extra or {}).items()),
            *(["peerType=observer"] if m.role == "observer" else []),
            *lines,
        ]
        m.cfg_path.write_text("\n".join(cfg) + "\n")


def connect_string(members: list[Member]) -> str:
    return ",".join(f"127.0.0.1:{m.client_port}" for m in members)


def member_command(m: Member, log_level: str = "INFO") -> list[str]:
    return [
        sys.executable,
        "-m",
        "zkref",
        "server",
        "--config",
        str(m.cfg_path),
        "--log-level",
        log_level,
    ]


def member_env(trace_dir: Path | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (_IMPL_DIR, env.get("PYTHONPATH")) if p)
    env.pop(TRACE_DIR_ENV, None)
    if trace_dir is not None:
        env[TRACE_DIR_ENV] = str(trace_dir)
    return env


def mode_of(m: Member, timeout_s: float = 2.0) -> str | None:
    """The member's `srvr` Mode (leader/follower), None while it is not serving or down."""
    try:
        text = send_word("127.0.0.1", m.client_port, "srvr", timeout_s)
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("Mode: "):
            return line[len("Mode: ") :].strip()
    return None


class LocalEnsemble:
    """N member processes on 127.0.0.1: start, kill -9, stop, ask their mode. Each member's
    output goes to `<member dir>/zkref.log`. With `trace_dir`, members record traces there."""

    def __init__(
        self,
        size: int,
        data_dir: Path,
        *,
        base_port: int | None = None,
        tick_time_ms: int = 500,
        log_level: str = "INFO",
        extra_cfg: dict[str, str] | None = None,
        observers: int = 0,
        trace_dir: Path | None = None,
    ) -> None:
        self.members = plan(size, data_dir, base_port, observers)
        self.trace_dir = trace_dir
        self.by_sid = {m.sid: m for m in self.members}
        self.log_level = log_level
        write_configs(self.members, tick_time_ms=tick_time_ms, extra=extra_cfg)
        self.procs: dict[int, subprocess.Popen[bytes]] = {}

    @property
    def connect_string(self) -> str:
        return connect_string(self.members)

    def start(self, sid: int | None = None) -> None:
        for m in self.members if sid is None else [self.by_sid[sid]]:
            p = self.procs.get(m.sid)
            if p is not None and p.poll() is None:
                continue
            with open(m.dir / "zkref.log", "ab") as out:
                self.procs[m.sid] = subprocess.Popen(
                    member_command(m, self.log_level),
                    env=member_env(self.trace_dir),
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )

    def running(self, sid: int) -> bool:
        p = self.procs.get(sid)
        return p is not None and p.poll() is None

    def kill(self, sid: int, sig: int = signal.SIGKILL) -> None:
        p = self.procs[sid]
        with contextlib.suppress(ProcessLookupError):
            p.send_signal(sig)
        if sig == signal.SIGKILL:
            p.wait(timeout=10)

    def stop(self, sid: int | None = None, timeout_s: float = 10.0) -> None:
        sids = list(self.procs) if sid is None else [sid]
        for s in sids:
            p = self.procs[s]
            if p.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    p.terminate()
        for s in sids:
            p = self.procs[s]
            try:
                p.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def modes(self, timeout_s: float = 1.0, sids: list[int] | None = None) -> dict[int, str | None]:
        """`srvr` Mode of each member (of `sids`); None when down or not serving."""
        ms = self.members if sids is None else [self.by_sid[s] for s in sids]
        return {m.sid: mode_of(m, timeout_s) if self.running(m.sid) else None for m in ms}

    def leader(self) -> int | None:
        leaders = [s for s, mode in self.modes().items() if mode == "leader"]
        return leaders[0] if len(leaders) == 1 else None

    def wait_serving(self, sids: list[int] | None = None, deadline_s: float = 30.0) -> int:
        """Wait until one leader and followers among `sids` (default: the running members)
        all serve; the leader's sid. Raises TimeoutError with the modes seen last."""
        end = time.monotonic() + deadline_s
        modes: dict[int, str | None] = {}
        while time.monotonic() < end:
            want = sids if sids is not None else [s for s in self.by_sid if self.running(s)]
            modes = self.modes(sids=want)
            leaders = [s for s, m in modes.items() if m == "leader"]
            serving = ("leader", "follower", "observer")
            if len(leaders) == 1 and all(m in serving for m in modes.values()):
                return leaders[0]
            time.sleep(0.02)
        raise TimeoutError(f"no serving ensemble within {deadline_s}s: modes {modes}")

    def log_tail(self, sid: int, n: int = 40) -> str:
        path = self.by_sid[sid].dir / "zkref.log"
        try:
            return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
        except FileNotFoundError:
            return ""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="zkref ensemble",
        description="Start N zkref members on 127.0.0.1 and stop them all on Ctrl-C.",
    )
    p.add_argument("--size", type=int, default=3, help="number of members (default 3)")
    p.add_argument(
        "--observers", type=int, default=0, help="how many of them are observers (default 0)"
    )
    p.add_argument("--base-port", type=int, help="first client port (default: free ports)")
    p.add_argument("--data-dir", type=Path, help="where members keep their data (default: tmp)")
    p.add_argument("--tick-time", type=int, default=500, help="tickTime in ms (default 500)")
    p.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    p.add_argument("--trace-dir", type=Path, help="members record NDJSON traces here")
    return p


def main(argv: list[str]) -> int:
    a = _parser().parse_args(argv)
    if a.size < 2:
        print("zkref ensemble: --size must be at least 2 (use `zkref server` for one)")
        return 2
    if not 0 <= a.observers <= a.size - 2:
        print("zkref ensemble: --observers must leave at least two voting members")
        return 2
    data_dir: Path = (
        a.data_dir.resolve()
        if a.data_dir is not None
        else Path(tempfile.mkdtemp(prefix="zkref-ensemble-"))
    )
    ens = LocalEnsemble(
        a.size,
        data_dir,
        base_port=a.base_port,
        tick_time_ms=a.tick_time,
        log_level=a.log_level,
        observers=a.observers,
        trace_dir=None if a.trace_dir is None else a.trace_dir.resolve(),
    )
    stop = False

    def on_signal(_sig: int, _frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        ens.start()
        print(f"zkref ensemble of {a.size} in {data_dir}", flush=True)
        print(f"connect string: {ens.connect_string}", flush=True)
        if ens.trace_dir is not None:
            print(f"traces: {ens.trace_dir} (zkref trace merge; zkref trace validate)", flush=True)
        announced: int | None = None
        while not stop:
            for m in ens.members:
                if not ens.running(m.sid):
                    print(f"member {m.sid} exited; see {m.dir}/zkref.log", flush=True)
                    stop = True
            leader = ens.leader()
            if leader is not None and leader != announced:
                announced = leader
                print(f"leader: member {announced}", flush=True)
            time.sleep(0.5)
    finally:
        ens.stop()
        print("zkref ensemble stopped", flush=True)
    return 0
