"""``zkref chaos run``: a fault-injecting workload against a ZooKeeper ensemble, then a check.

Rules:
- the harness only needs a connect string and a :class:`Target` that can fault members; the
  Apache launcher, a future zkref launcher and an unmanaged ensemble all fit behind it;
- client *processes* (multiprocessing, spawn) each own one kazoo session and write their own
  event file, line by line, flushed: a run stopped by Ctrl-C or a crash keeps what it recorded;
- a worker never retries a write: a lost reply is recorded as ``info`` and the worker continues
  as a new process id (Jepsen's rule), because the op may still take effect later;
- faults follow a schedule with bounded durations; at the end everything is healed, every member
  restarted and resumed, and a fresh session reads every key after ``sync`` (final reads);
- bounded: stops at ``max_ops`` or ``duration_s``, whichever comes first; every process the
  harness starts is stopped on every exit path.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing as mp
import multiprocessing.synchronize
import os
import random
import shlex
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from zkref.chaos.checker import CheckReport, check_file, render_text
from zkref.chaos.history import Event, complete_ops, merge_files, read_history
from zkref.chaos.proxy import LinkProxy, kill_direct_election_links, pairs_between
from zkref.chaos.timeline import FaultWindow, render_html, render_run_plots
from zkref.chaos.zkref_proc import ZkrefEnsembleUnavailable, ZkrefServers
from zkref.chaos.zookeeper_proc import ApacheZooKeeper

__all__ = [
    "FAULT_KINDS",
    "UNBOUNDED_OPS",
    "ApacheTarget",
    "RunConfig",
    "RunResult",
    "Target",
    "TargetUnavailable",
    "UnmanagedTarget",
    "ZkrefTarget",
    "make_target",
    "run",
]

# A max_ops no run reaches: the run is bounded by its duration only.
UNBOUNDED_OPS = 2**62

FAULT_KINDS = (
    "kill-leader",  # kill -9 the leader, restart it after the fault window
    "isolate-kill-leader",  # cut the leader off, let it run a moment, kill -9 it; heal, restart
    "kill-follower",  # kill -9 a follower, restart it
    "pause-leader",  # SIGSTOP the leader, SIGCONT after the window
    "pause-follower",
    "isolate-leader",  # partition {leader} | {rest}
    "partition-random",  # random majority | minority
    "bridge",  # two halves that only the bridge member links (needs >= 5 members)
)


class TargetUnavailable(RuntimeError):
    """The requested target cannot be started here (message says why)."""


class Target(Protocol):
    """What the harness needs from an ensemble. ``partition``/``heal`` may raise
    NotImplementedError when the target has no proxy on its peer links."""

    @property
    def connect_string(self) -> str: ...
    @property
    def sids(self) -> list[int]: ...
    def start(self, timeout_s: float = 60.0) -> None: ...
    def stop(self) -> None: ...
    def leader(self) -> int | None: ...
    def kill(self, sid: int) -> None: ...
    def restart(self, sid: int, timeout_s: float = 60.0) -> None: ...
    def pause(self, sid: int) -> None: ...
    def resume(self, sid: int) -> None: ...
    def partition(self, groups: Sequence[Sequence[int]]) -> None: ...
    def cut(self, pairs: Sequence[tuple[int, int]]) -> None: ...
    def heal(self) -> None: ...
    def wait_serving(self, sids: list[int], timeout_s: float = 60.0) -> None: ...
    def zxid(self, sid: int) -> int | None: ...


# Test-only planted server bugs (zoo.cfg keys of zkref's UNSAFE modes, docs/chaos.md): a run
# with one of them must be flagged by the checker.
PLANTS: dict[str, dict[str, str]] = {
    "ack-before-quorum": {"zkref.unsafe.ackBeforeQuorum": "true"},  # zkref ensemble leader
}


def _srvr_zxid(reply: str | None) -> int | None:
    for line in (reply or "").splitlines():
        if line.startswith("Zxid:"):
            with contextlib.suppress(ValueError):
                return int(line.split(":", 1)[1].strip(), 16)
    return None


class ApacheTarget:
    """N Apache ZooKeeper 3.8 processes with a link proxy on their quorum/election ports."""

    def __init__(
        self,
        size: int,
        base_dir: Path,
        *,
        tick_time_ms: int = 500,
        extra_cfg: dict[str, str] | None = None,
    ) -> None:
        self.zk = self._launcher(size, base_dir, tick_time_ms, extra_cfg or {})
        self.proxy: LinkProxy | None = None
        self.direct_links_cut: bool | None = None  # None: no cut yet
        if size > 1:
            self.proxy = LinkProxy(self.zk.sids, {s: self.zk.peer_ports(s) for s in self.zk.sids})
            self.zk.route_peers(self.proxy.route)

    def _launcher(
        self, size: int, base_dir: Path, tick_time_ms: int, extra_cfg: dict[str, str]
    ) -> ApacheZooKeeper:
        return ApacheZooKeeper(size, base_dir, tick_time_ms=tick_time_ms, extra_cfg=extra_cfg)

    @property
    def connect_string(self) -> str:
        return self.zk.connect_string

    @property
    def sids(self) -> list[int]:
        return self.zk.sids

    def start(self, timeout_s: float = 60.0) -> None:
        if self.proxy is not None:
            self.proxy.start()
        self.zk.start(timeout_s)

    def stop(self) -> None:
        self.zk.stop()
        if self.proxy is not None:
            self.proxy.stop()

    def leader(self) -> int | None:
        return self.zk.leader()

    def kill(self, sid: int) -> None:
        self.zk.kill(sid)

    def restart(self, sid: int, timeout_s: float = 60.0) -> None:
        self.zk.restart(sid, timeout_s)

    def pause(self, sid: int) -> None:
        self.zk.pause(sid)

    def resume(self, sid: int) -> None:
        self.zk.resume(sid)

    def partition(self, groups: Sequence[Sequence[int]]) -> None:
        self.cut(pairs_between(self.sids, groups))

    def cut(self, pairs: Sequence[tuple[int, int]]) -> None:
        if self.proxy is None:
            raise NotImplementedError("a single server has no peer links to cut")
        self.proxy.block(pairs)
        self.direct_links_cut = kill_direct_election_links(
            pairs, lambda sid: self.zk.peer_ports(sid)[1]
        )

    def heal(self) -> None:
        if self.proxy is not None:
            self.proxy.heal()

    def wait_serving(self, sids: list[int], timeout_s: float = 60.0) -> None:
        self.zk.wait_serving(sids, timeout_s)

    def zxid(self, sid: int) -> int | None:
        """The last zxid member ``sid`` applied (``srvr``), None if it does not answer."""
        if self.zk.is_paused(sid) or not self.zk.is_running(sid):
            return None
        return _srvr_zxid(self.zk.four_letter(sid, "srvr", timeout_s=1.0))


class ZkrefTarget(ApacheTarget):
    """zkref servers, launched and faulted exactly like :class:`ApacheTarget`'s (same zoo.cfg,
    same link proxy): a standalone server (1 member) or a replicated ensemble."""

    def _launcher(
        self, size: int, base_dir: Path, tick_time_ms: int, extra_cfg: dict[str, str]
    ) -> ApacheZooKeeper:
        try:
            return ZkrefServers(size, base_dir, tick_time_ms=tick_time_ms, extra_cfg=extra_cfg)
        except ZkrefEnsembleUnavailable as e:
            raise TargetUnavailable(
                f"--target zkref --nodes {size} is not yet available: needs the replicated "
                "ensemble (issue 4); use --nodes 1, --target zookeeper or --connect"
            ) from e


class UnmanagedTarget:
    """An ensemble the harness does not run. Faults come from a JSON config of shell commands
    with ``{sid}`` placeholders, e.g. ``{"members": [1,2,3], "kill": "docker kill zk{sid}",
    "restart": "docker start zk{sid}", "pause": "...", "resume": "...", "leader": "..."}``
    (``leader`` prints the leader's sid); missing commands make those faults unavailable."""

    def __init__(self, connect: str, faults: dict[str, Any] | None) -> None:
        self._connect = connect
        self.cfg = dict(faults or {})
        n = len(connect.split(","))
        self._sids = [int(s) for s in self.cfg.get("members", range(1, n + 1))]

    @property
    def connect_string(self) -> str:
        return self._connect

    @property
    def sids(self) -> list[int]:
        return list(self._sids)

    def _run(self, what: str, sid: int | None = None) -> str:
        cmd = self.cfg.get(what)
        if not cmd:
            raise NotImplementedError(f"no {what!r} command in the faults config")
        argv = shlex.split(str(cmd).format(sid=sid if sid is not None else ""))
        return subprocess.run(argv, check=True, capture_output=True, text=True, timeout=60).stdout

    def start(self, timeout_s: float = 60.0) -> None:
        pass

    def stop(self) -> None:
        pass

    def leader(self) -> int | None:
        try:
            out = self._run("leader").strip()
        except NotImplementedError:
            return None
        return int(out) if out.isdigit() else None

    def kill(self, sid: int) -> None:
        self._run("kill", sid)

    def restart(self, sid: int, timeout_s: float = 60.0) -> None:
        self._run("restart", sid)

    def pause(self, sid: int) -> None:
        self._run("pause", sid)

    def resume(self, sid: int) -> None:
        self._run("resume", sid)

    def partition(self, groups: Sequence[Sequence[int]]) -> None:
        raise NotImplementedError("partitions need a managed target (the harness's proxy)")

    def cut(self, pairs: Sequence[tuple[int, int]]) -> None:
        raise NotImplementedError("partitions need a managed target (the harness's proxy)")

    def heal(self) -> None:
        pass

    def wait_serving(self, sids: list[int], timeout_s: float = 60.0) -> None:
        pass

    def zxid(self, sid: int) -> int | None:
        return None


def make_target(cfg: RunConfig, base_dir: Path) -> Target:
    if cfg.connect:
        faults = json.loads(Path(cfg.faults_config).read_text()) if cfg.faults_config else None
        return UnmanagedTarget(cfg.connect, faults)
    if cfg.plant is not None:
        if cfg.plant not in PLANTS:
            raise TargetUnavailable(f"unknown plant {cfg.plant!r}; known: {', '.join(PLANTS)}")
        if cfg.target != "zkref" or cfg.nodes < 2:
            raise TargetUnavailable(f"--plant {cfg.plant} needs --target zkref --nodes 3 (or 5)")
    if cfg.target == "zookeeper":
        return ApacheTarget(cfg.nodes, base_dir, tick_time_ms=cfg.tick_time_ms)
    if cfg.target == "zkref":
        extra = PLANTS[cfg.plant] if cfg.plant is not None else None
        return ZkrefTarget(cfg.nodes, base_dir, tick_time_ms=cfg.tick_time_ms, extra_cfg=extra)
    raise TargetUnavailable(f"unknown target {cfg.target!r}")


# -- configuration and results ---------------------------------------------------------------


@dataclass(slots=True)
class RunConfig:
    out_dir: Path
    target: str = "zookeeper"
    nodes: int = 3
    connect: str | None = None
    faults_config: str | None = None
    clients: int = 5
    keys: int = 5
    duration_s: float = 40.0
    max_ops: int = UNBOUNDED_OPS  # by default only duration_s ends the run
    faults: tuple[str, ...] = ("kill-leader", "pause-follower", "isolate-leader")
    fault_duration_s: float = 5.0
    quiet_s: float = 3.0
    sync_reads: bool = False
    seed: int = 1
    tick_time_ms: int = 500
    session_timeout_s: float = 8.0
    op_timeout_s: float = 5.0
    root: str = "/zkref-chaos"
    plant: str | None = None  # test-only planted server bug, a key of PLANTS


@dataclass(slots=True)
class RunResult:
    out_dir: Path
    report: CheckReport
    n_events: int
    n_ops: int
    seconds: float
    faults: list[FaultWindow] = field(default_factory=list)
    interrupted: bool = False


# -- client worker (runs in its own process) ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class _WorkerArgs:
    worker: int
    clients: int
    hosts: str
    keys: tuple[str, ...]
    queue: str
    seed: int
    duration_s: float
    max_ops: int
    out: str
    sync_reads: bool
    session_timeout_s: float
    op_timeout_s: float
    log: str


_FAIL_ERRORS = {
    "NoNodeError": "NoNode",
    "NodeExistsError": "NodeExists",
    "BadVersionError": "BadVersion",
    "NotEmptyError": "NotEmpty",
    "NoAuthError": "NoAuth",
    "BadArgumentsError": "BadArguments",
}


def _worker_main(
    a: _WorkerArgs, stop: multiprocessing.synchronize.Event, start: threading.Barrier
) -> None:
    # Ctrl-C goes to the harness; it tells workers to stop through ``stop``.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    import logging

    logging.basicConfig(
        filename=a.log, level=logging.INFO, format="%(asctime)s %(name)s %(message)s"
    )
    from kazoo.client import KazooClient, KazooState
    from kazoo.handlers.threading import KazooTimeoutError
    from kazoo.protocol.states import ZnodeStat

    rng = random.Random(a.seed * 1000 + a.worker)
    out = open(a.out, "w", encoding="utf-8")  # noqa: SIM115 - closed in finally
    process = a.worker
    counter = 0
    connected = threading.Event()

    def listener(state: str) -> None:
        if state == KazooState.CONNECTED:
            connected.set()
        else:
            connected.clear()

    def new_client() -> Any:
        c = KazooClient(
            hosts=a.hosts,
            timeout=a.session_timeout_s,
            connection_retry={"max_tries": -1, "delay": 0.1, "max_delay": 1.0},
            command_retry=None,
        )
        c.add_listener(listener)
        c.start(timeout=60)
        connected.set()
        return c

    def emit(**kw: Any) -> None:
        e = Event(index=-1, time=time.monotonic_ns(), **kw)
        out.write(e.to_json() + "\n")
        out.flush()

    versions: dict[str, int] = {}
    client = new_client()
    # every worker connected: the workload (and the harness's fault clock) starts now
    with contextlib.suppress(threading.BrokenBarrierError):
        start.wait(timeout=120)
    deadline = time.monotonic() + a.duration_s
    try:
        while not stop.is_set() and time.monotonic() < deadline and counter < a.max_ops:
            if not connected.wait(timeout=0.5):
                # While disconnected every op would only produce an ``info``: wait, bounded by
                # the run's deadline (checked by the loop).
                if client.state == KazooState.LOST or client.client_id is None:
                    with contextlib.suppress(Exception):
                        client.stop()
                        client.close()
                    client = new_client()
                continue
            counter += 1
            key = rng.choice(a.keys)
            f = rng.choices(
                ["read", "write", "cas", "create", "delete", "enqueue"],
                weights=[30, 15, 30, 6, 4, 15],
            )[0]
            ops: list[tuple[str, str, str | None, int | None]] = []
            value = f"{a.worker}-{counter}"
            if f == "read":
                if a.sync_reads:
                    ops.append(("sync", key, None, None))
                ops.append(("read", key, None, None))
            elif f == "write":
                ops.append(("write", key, value, -1))
            elif f == "cas":
                ops.append(("cas", key, value, versions.get(key, 0)))
            elif f == "create":
                ops.append(("create", key, value, None))
            elif f == "delete":
                ops.append(("delete", key, None, rng.choice([-1, versions.get(key, 0)])))
            else:
                ops.append(("enqueue", a.queue, value, None))
            for fn, path, val, ver in ops:
                session = f"{client.client_id[0]:x}" if client.client_id else None
                emit(process=process, type="invoke", f=fn, path=path, value=val, version=ver,
                     session=session)  # fmt: skip
                res: dict[str, Any] = {}
                try:
                    if fn == "read":
                        data, stat = client.get_async(path).get(timeout=a.op_timeout_s)
                        res = {"value": data.decode(), "version": stat.version, "zxid": stat.mzxid}
                        versions[path] = stat.version
                    elif fn == "sync":
                        client.sync_async(path).get(timeout=a.op_timeout_s)
                    elif fn in ("write", "cas"):
                        stat = client.set_async(path, (val or "").encode(), ver).get(
                            timeout=a.op_timeout_s
                        )
                        assert isinstance(stat, ZnodeStat)
                        res = {"version": stat.version, "zxid": stat.mzxid}
                        versions[path] = stat.version
                    elif fn == "create":
                        _, stat = client.create_async(
                            path, (val or "").encode(), include_data=True
                        ).get(timeout=a.op_timeout_s)
                        res = {"version": 0, "zxid": stat.czxid}
                        versions[path] = 0
                    elif fn == "delete":
                        client.delete_async(path, ver if ver is not None else -1).get(
                            timeout=a.op_timeout_s
                        )
                        versions.pop(path, None)
                    elif fn == "enqueue":
                        name, stat = client.create_async(
                            path + "/q-", (val or "").encode(), sequence=True, include_data=True
                        ).get(timeout=a.op_timeout_s)
                        res = {"name": name, "zxid": stat.czxid}
                    emit(process=process, type="ok", f=fn, path=path, seen_zxid=client.last_zxid,
                         session=session, **res)  # fmt: skip
                except KazooTimeoutError:
                    emit(process=process, type="info", f=fn, path=path, error="Timeout",
                         session=session)  # fmt: skip
                    process += a.clients
                    break
                except Exception as e:
                    name = type(e).__name__
                    if name == "NoNodeError" and fn == "read":
                        emit(process=process, type="ok", f=fn, path=path, value=None, version=-1,
                             seen_zxid=client.last_zxid, session=session)  # fmt: skip
                        versions.pop(path, None)
                        continue
                    if name in _FAIL_ERRORS:
                        emit(process=process, type="fail", f=fn, path=path,
                             error=_FAIL_ERRORS[name], seen_zxid=client.last_zxid,
                             session=session)  # fmt: skip
                        if name == "BadVersionError":
                            versions.pop(path, None)
                        continue
                    # ConnectionLoss, SessionExpired, OperationTimeout, closed, anything else:
                    # the op may or may not have happened.
                    emit(process=process, type="info", f=fn, path=path, error=name,
                         session=session)  # fmt: skip
                    process += a.clients
                    if name in ("SessionExpiredError", "ConnectionClosedError"):
                        with contextlib.suppress(Exception):
                            client.stop()
                            client.close()
                        client = new_client()
                    break
    finally:
        out.close()
        with contextlib.suppress(Exception):
            client.stop()
            client.close()


# -- faults ------------------------------------------------------------------------------------


class _Nemesis:
    """Applies faults to a target; remembers what to undo so ``heal_all`` leaves it whole."""

    def __init__(
        self,
        target: Target,
        rng: random.Random,
        log: Callable[[str], None],
        *,
        isolated_run_s: float = 1.0,
    ) -> None:
        self.t = target
        self.isolated_run_s = isolated_run_s
        self.rng = rng
        self.log = log
        self.killed: set[int] = set()
        self.paused: set[int] = set()
        self.partitioned = False

    def _leader_or_any(self, wait_s: float = 0.0) -> int:
        """The leader; waits up to ``wait_s`` for one (an election may be under way), then
        picks any member."""
        deadline = time.monotonic() + wait_s
        leader = self.t.leader()
        while leader is None and time.monotonic() < deadline:
            time.sleep(0.1)  # a poll of a condition, bounded by the deadline
            leader = self.t.leader()
        return leader if leader is not None else self.rng.choice(self.t.sids)

    def _follower(self) -> int:
        leader = self.t.leader()
        return self.rng.choice([s for s in self.t.sids if s != leader] or self.t.sids)

    def begin(self, kind: str) -> str:
        sids = self.t.sids
        if kind == "kill-leader" or kind == "kill-follower":
            sid = self._leader_or_any() if kind == "kill-leader" else self._follower()
            self.t.kill(sid)
            self.killed.add(sid)
            return f"{kind} {sid}"
        if kind == "pause-leader" or kind == "pause-follower":
            sid = self._leader_or_any() if kind == "pause-leader" else self._follower()
            self.t.pause(sid)
            self.paused.add(sid)
            return f"{kind} {sid}"
        if kind == "isolate-kill-leader":
            # Writes in flight at a leader that cannot reach a quorum must never be acknowledged;
            # if the leader acks them anyway (zkref.unsafe.ackBeforeQuorum) its zxid moves on
            # while it is cut off, and the kill then loses those writes.
            sid = self._leader_or_any(wait_s=10.0)
            before = self.t.zxid(sid)
            self.t.partition([[sid], [s for s in sids if s != sid]])
            self.partitioned = True
            ahead = self._wait_zxid_past(sid, before, 20)
            self.t.kill(sid)
            self.killed.add(sid)
            return f"{kind} {sid} (+{ahead} txns applied while cut off)"
        if kind == "isolate-leader":
            sid = self._leader_or_any()
            self.t.partition([[sid], [s for s in sids if s != sid]])
            self.partitioned = True
            return f"{kind} {sid}"
        if kind == "partition-random":
            shuffled = self.rng.sample(sids, len(sids))
            k = len(sids) // 2
            groups = [shuffled[:k], shuffled[k:]]
            self.t.partition(groups)
            self.partitioned = True
            return f"{kind} {groups[0]}|{groups[1]}"
        if kind == "bridge":
            if len(sids) < 5:
                raise NotImplementedError("bridge needs at least 5 members")
            shuffled = self.rng.sample(sids, len(sids))
            bridge, rest = shuffled[0], shuffled[1:]
            half = len(rest) // 2
            a, b = rest[:half], rest[half:]
            # The bridge talks to both halves; only links between the halves are cut.
            self.t.cut([(min(x, y), max(x, y)) for x in a for y in b])
            self.partitioned = True
            return f"bridge {a}-{bridge}-{b}"
        raise ValueError(f"unknown fault {kind!r}; known: {', '.join(FAULT_KINDS)}")

    def _wait_zxid_past(self, sid: int, before: int | None, want: int) -> int:
        """Poll member ``sid``'s applied zxid for ``isolated_run_s`` (less than the time it
        takes to notice it lost its quorum), or until it moved ``want`` txns past ``before``;
        return how far it moved (0 if unknown)."""
        deadline = time.monotonic() + self.isolated_run_s
        ahead = 0
        while True:
            z = self.t.zxid(sid)
            if before is not None and z is not None and z >> 32 == before >> 32:
                ahead = max(ahead, (z & 0xFFFFFFFF) - (before & 0xFFFFFFFF))
            if ahead >= want or time.monotonic() >= deadline:
                return ahead
            time.sleep(0.05)  # a poll of a condition, bounded by the deadline above

    def end(self) -> None:
        for sid in sorted(self.paused):
            self.t.resume(sid)
        self.paused.clear()
        if self.partitioned:
            self.t.heal()
            self.partitioned = False
        for sid in sorted(self.killed):
            self.t.restart(sid, 90)
        self.killed.clear()

    def heal_all(self) -> None:
        with contextlib.suppress(Exception):
            self.end()


# -- the run -----------------------------------------------------------------------------------


def _final_reads(
    hosts: str, keys: Sequence[str], queue: str, out: Path, process: int, timeout_s: float
) -> None:
    from kazoo.client import KazooClient

    c = KazooClient(hosts=hosts, timeout=10.0, command_retry={"max_tries": 5, "delay": 0.2})
    c.start(timeout=timeout_s)
    try:
        with open(out, "w", encoding="utf-8") as fh:

            def emit(**kw: Any) -> None:
                e = Event(index=-1, time=time.monotonic_ns(), process=process, **kw)
                fh.write(e.to_json() + "\n")

            for path in (*keys, queue):
                f = "final-list" if path == queue else "final-read"
                emit(type="invoke", f=f, path=path)
                c.sync(path)
                if path == queue:
                    children = sorted(c.get_children(path))
                    emit(type="ok", f=f, path=path, value=json.dumps(children))
                    continue
                try:
                    data, stat = c.get(path)
                    emit(type="ok", f=f, path=path, value=data.decode(), version=stat.version,
                         zxid=stat.mzxid)  # fmt: skip
                except Exception as e:
                    if type(e).__name__ != "NoNodeError":
                        raise
                    emit(type="ok", f=f, path=path, value=None, version=-1)
    finally:
        c.stop()
        c.close()


def _setup_root(hosts: str, root: str, queue: str, timeout_s: float) -> None:
    from kazoo.client import KazooClient

    c = KazooClient(hosts=hosts, timeout=10.0, command_retry={"max_tries": 10, "delay": 0.2})
    c.start(timeout=timeout_s)
    try:
        c.ensure_path(root)
        c.ensure_path(queue)
    finally:
        c.stop()
        c.close()


def run(
    cfg: RunConfig,
    *,
    log: Callable[[str], None] = print,
    target: Target | None = None,
) -> RunResult:
    # absolute: servers run with their own working directory and are given zoo.cfg paths
    out = Path(cfg.out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    parts = out / "parts"
    parts.mkdir(exist_ok=True)
    if threading.current_thread() is threading.main_thread():
        # Ctrl-C must stop the run even when SIGINT was inherited ignored (a background job of a
        # non-interactive shell, e.g. CI): Python then installs no KeyboardInterrupt handler
        signal.signal(signal.SIGINT, signal.default_int_handler)
    rng = random.Random(cfg.seed)
    tgt = target if target is not None else make_target(cfg, out / "servers")
    run_root = f"{cfg.root}-{cfg.seed}-{os.getpid()}-{int(time.time())}"
    keys = tuple(f"{run_root}/k{i}" for i in range(cfg.keys))
    queue = f"{run_root}/queue"
    faults: list[FaultWindow] = []
    interrupted = False
    t0_ns: int | None = None
    procs: list[mp.process.BaseProcess] = []
    ctx = mp.get_context("spawn")
    stop = ctx.Event()
    start = ctx.Barrier(cfg.clients + 1)
    t_start = time.monotonic()
    # the cut-off leader of isolate-kill-leader runs for 2 ticks: it notices the lost quorum
    # after syncLimit (5) ticks at the earliest
    nemesis = _Nemesis(tgt, rng, log, isolated_run_s=2 * cfg.tick_time_ms / 1000)
    try:
        log(f"starting target ({cfg.target if not cfg.connect else 'unmanaged'}, "
            f"{len(tgt.sids)} members)")  # fmt: skip
        tgt.start(90)
        _setup_root(tgt.connect_string, run_root, queue, 60)
        per_worker = max(1, cfg.max_ops // cfg.clients)
        for w in range(cfg.clients):
            args = _WorkerArgs(
                worker=w,
                clients=cfg.clients,
                hosts=tgt.connect_string,
                keys=keys,
                queue=queue,
                seed=cfg.seed,
                duration_s=cfg.duration_s,
                max_ops=per_worker,
                out=str(parts / f"worker-{w}.ndjson"),
                sync_reads=cfg.sync_reads,
                session_timeout_s=cfg.session_timeout_s,
                op_timeout_s=cfg.op_timeout_s,
                log=str(parts / f"worker-{w}.log"),
            )
            proc = ctx.Process(
                target=_worker_main, args=(args, stop, start), name=f"chaos-worker-{w}"
            )
            proc.start()
            procs.append(proc)
        # Spawned workers take seconds to import kazoo and connect on a loaded machine: the clock
        # (and so the first fault) starts once all are connected, or a worker died trying.
        give_up = time.monotonic() + 120
        while (
            start.n_waiting < cfg.clients
            and time.monotonic() < give_up
            and all(p.is_alive() for p in procs)
        ):
            time.sleep(0.05)  # a poll of a condition, bounded by give_up
        try:
            if start.n_waiting < cfg.clients:
                raise threading.BrokenBarrierError
            start.wait(timeout=30)
        except threading.BrokenBarrierError:
            start.abort()
            log("not every client process connected; starting with those that did")
        t0 = time.monotonic()
        t0_ns = time.monotonic_ns()
        deadline = t0 + cfg.duration_s
        bound = "" if cfg.max_ops >= UNBOUNDED_OPS else f" / {cfg.max_ops} ops"
        log(f"{cfg.clients} client processes for {cfg.duration_s:.0f}s{bound}")
        schedule = list(cfg.faults)
        k = 0
        # Fault loop: quiet, fault window, heal; the last window ends before the deadline so the
        # workers see a healed ensemble for a while (the "heal and converge" phase).
        while schedule and any(p.is_alive() for p in procs):
            if not _wait_until(t0, time.monotonic() + cfg.quiet_s, procs, deadline):
                break
            if time.monotonic() + cfg.fault_duration_s + cfg.quiet_s > deadline:
                break
            kind = schedule[k % len(schedule)]
            k += 1
            try:
                s = time.monotonic() - t0
                label = nemesis.begin(kind)
            except NotImplementedError as e:
                log(f"skip {kind}: {e}")
                continue
            log(f"t={s:5.1f}s fault: {label}")
            _wait_until(t0, time.monotonic() + cfg.fault_duration_s, procs, deadline)
            nemesis.end()
            e_ = time.monotonic() - t0
            faults.append((s, e_, label))
            log(f"t={e_:5.1f}s healed: {label}")
        for p in procs:
            p.join(timeout=max(0.0, deadline - time.monotonic()) + cfg.op_timeout_s + 30)
    except KeyboardInterrupt:
        interrupted = True
        log("interrupted: stopping clients, healing, checking what was recorded")
    finally:
        stop.set()
        start.abort()  # workers still waiting for the start (Ctrl-C, an error) go on to stop
        for p in procs:
            p.join(timeout=cfg.op_timeout_s + 15)
            if p.is_alive():
                p.kill()
                p.join(timeout=10)
        nemesis.heal_all()
    try:
        with contextlib.suppress(Exception):
            tgt.wait_serving(tgt.sids, 90)
        final = parts / "final.ndjson"
        try:
            _final_reads(tgt.connect_string, keys, queue, final, 100_000, 60)
        except Exception as e:  # the check still runs; no-lost-writes becomes N/A
            log(f"final reads failed: {type(e).__name__}: {e}")
    finally:
        tgt.stop()
    header = {
        "source": "chaos",
        "target": "unmanaged" if cfg.connect else cfg.target,
        "servers": tgt.sids,
        "seed": cfg.seed,
        "clients": cfg.clients,
        "keys": list(keys),
        "queue": queue,
        "faults": [list(f) for f in faults],
        "t0_ns": t0_ns,  # time origin of "faults" (seconds after it), same clock as events
        "client": f"kazoo {_kazoo_version()}",
        # True: cuts also closed ZooKeeper's direct election connect-back links (ss -K, root);
        # False: proxy only; null: no partition happened or the target has no proxy.
        "direct_links_cut": getattr(tgt, "direct_links_cut", None),
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(cfg).items()},
    }
    history = out / "history.ndjson"
    n_events = merge_files(sorted(parts.glob("*.ndjson")), history, header)
    log(f"history: {n_events} events in {history}; checking")
    report = check_file(history, sync_reads=cfg.sync_reads)
    ops = complete_ops(read_history(history).events)
    (out / "verdicts.json").write_text(json.dumps(report.to_json(), indent=2) + "\n")
    (out / "faults.json").write_text(json.dumps(faults, indent=2) + "\n")
    (out / "check.txt").write_text(render_text(report) + "\n")
    render_html(report, out / "check.html")
    render_run_plots(
        [o for o in ops if not o.f.startswith("final")],
        faults,
        out / "plots.html",
        t0_ns=t0_ns,
        title=f"zkref chaos run: {header['target']} x{len(tgt.sids)}",
    )
    return RunResult(
        out_dir=out,
        report=report,
        n_events=n_events,
        n_ops=len(ops),
        seconds=time.monotonic() - t_start,
        faults=faults,
        interrupted=interrupted,
    )


def _kazoo_version() -> str:
    try:
        from importlib.metadata import version

        return version("kazoo")
    except Exception:
        return "?"


def _wait_until(
    t0: float, until: float, procs: Sequence[mp.process.BaseProcess], deadline: float
) -> bool:
    """Wait until ``until`` (capped at ``deadline``) while workers run; False if all exited."""
    end = min(until, deadline)
    while time.monotonic() < end:
        if not any(p.is_alive() for p in procs):
            return False
        # Bounded join on one worker: wakes early if it exits, else after 0.2 s.
        procs[0].join(timeout=min(0.2, max(0.0, end - time.monotonic())))
    return True
