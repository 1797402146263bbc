"""ZooKeeper's four-letter words, answered on the client port before any handshake.

The server hands in a `Snapshot` of its counters; this module only formats text the way
ZooKeeper 3.8 does, so monitoring scripts that parse `srvr`/`mntr`/`stat` keep working.
`zkref 4lw WORD --server HOST:PORT` sends one (like `echo srvr | nc`).
"""

from __future__ import annotations

import argparse
import os
import platform
import socket
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from zkref import __version__
from zkref.server.config import ALL_FOUR_LETTER_WORDS

ZK_VERSION = f"3.8.0-zkref-{__version__}, built on zkref"

# A four-letter word arrives where a frame length would: the four ASCII bytes as a big-endian int.
WORD_CODES: dict[int, str] = {int.from_bytes(w.encode(), "big"): w for w in ALL_FOUR_LETTER_WORDS}


@dataclass(frozen=True, slots=True)
class ConnectionInfo:
    remote: str  # "ip:port"
    queued: int
    received: int
    sent: int
    session_id: int | None  # None: no session (yet): the short form
    timeout_ms: int = 0
    last_op: str = "NA"
    established_ms: int = 0
    last_cxid: int = -1
    last_zxid: int = -1
    last_response_ms: int = 0
    last_latency_ms: int = 0
    min_latency_ms: int = 0
    avg_latency_ms: float = 0.0
    max_latency_ms: int = 0


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What the server knows about itself at the moment a word is asked."""

    mode: str  # standalone | leader | follower | observer | read-only
    read_only: bool
    zxid: int
    node_count: int
    watch_count: int  # both tables (mntr)
    data_watch_count: int  # the data table only (wchs, as ZooKeeper)
    watched_paths: int
    watching_connections: int
    ephemerals_count: int
    data_size: int
    sessions: int
    outstanding: int
    received: int
    sent: int
    latency_min_ms: float
    latency_avg_ms: float
    latency_max_ms: float
    uptime_ms: int
    now_ms: int = 0
    connections: Sequence[ConnectionInfo] = ()
    config: Mapping[str, str] = field(default_factory=dict)
    session_ephemerals: Mapping[int, Sequence[str]] = field(default_factory=dict)
    session_buckets: Mapping[int, Sequence[int]] = field(default_factory=dict)  # expiry ms -> ids
    watches_by_session: Mapping[int, Sequence[str]] = field(default_factory=dict)
    watches_by_path: Mapping[str, Sequence[int]] = field(default_factory=dict)
    datadir_size: int = 0
    logdir_size: int = 0


def not_whitelisted(word: str) -> str:
    return f"{word} is not executed because it is not in the whitelist.\n"


def java_double(x: float) -> str:
    """ZooKeeper rounds averages to 4 decimals and prints a Java double ("0.0", "3.5")."""
    return repr(round(float(x), 4))


def _hex(n: int) -> str:
    return f"0x{n & 0xFFFFFFFFFFFFFFFF:x}"


def java_date(ms: int) -> str:
    """java.util.Date.toString in UTC: "Sun Nov 22 05:27:31 UTC 2026"."""
    import time as _time

    return _time.strftime("%a %b %d %H:%M:%S UTC %Y", _time.gmtime(ms / 1000))


def _latency(s: Snapshot) -> str:
    return (
        f"Latency min/avg/max: {s.latency_min_ms:g}/{java_double(s.latency_avg_ms)}/"
        f"{s.latency_max_ms:g}\n"
    )


def _summary(s: Snapshot) -> str:
    return (
        _latency(s) + f"Received: {s.received}\nSent: {s.sent}\nConnections: {len(s.connections)}\n"
        f"Outstanding: {s.outstanding}\nZxid: 0x{s.zxid:x}\nMode: {s.mode}\n"
        f"Node count: {s.node_count}\n"
    )


def srvr(s: Snapshot) -> str:
    return f"Zookeeper version: {ZK_VERSION}\n" + _summary(s)


def _brief(c: ConnectionInfo) -> str:
    flag = 0 if c.session_id is None else 1
    return f" /{c.remote}[{flag}](queued={c.queued},recved={c.received},sent={c.sent}"


def _cons_line(c: ConnectionInfo) -> str:
    if c.session_id is None:
        return _brief(c) + ")\n"
    return (
        _brief(c) + f",sid={_hex(c.session_id)},lop={c.last_op},est={c.established_ms},"
        f"to={c.timeout_ms},lcxid={_hex(c.last_cxid)},lzxid={_hex(c.last_zxid)},"
        f"lresp={c.last_response_ms},llat={c.last_latency_ms},minlat={c.min_latency_ms},"
        f"avglat={round(c.avg_latency_ms)},maxlat={c.max_latency_ms})\n"
    )


def stat(s: Snapshot) -> str:
    clients = "".join(_brief(c) + ")\n" for c in s.connections)
    return f"Zookeeper version: {ZK_VERSION}\nClients:\n{clients}\n" + _summary(s)


def cons(s: Snapshot) -> str:
    return "".join(_cons_line(c) for c in s.connections) + "\n"


def mntr(s: Snapshot) -> str:
    rows: list[tuple[str, object]] = [
        ("zk_version", ZK_VERSION),
        ("zk_server_state", s.mode),
        ("zk_avg_latency", java_double(s.latency_avg_ms)),
        ("zk_max_latency", f"{s.latency_max_ms:g}"),
        ("zk_min_latency", f"{s.latency_min_ms:g}"),
        ("zk_packets_received", s.received),
        ("zk_packets_sent", s.sent),
        ("zk_num_alive_connections", len(s.connections)),
        ("zk_outstanding_requests", s.outstanding),
        ("zk_znode_count", s.node_count),
        ("zk_watch_count", s.watch_count),
        ("zk_ephemerals_count", s.ephemerals_count),
        ("zk_approximate_data_size", s.data_size),
        ("zk_open_file_descriptor_count", _open_fds()),
        ("zk_max_file_descriptor_count", _max_fds()),
        ("zk_uptime", s.uptime_ms),
        ("zk_global_sessions", s.sessions),
        ("zk_local_sessions", 0),
    ]
    return "".join(f"{k}\t{v}\n" for k, v in rows)


def conf(s: Snapshot) -> str:
    return "".join(f"{k}={v}\n" for k, v in s.config.items())


def envi(s: Snapshot) -> str:
    rss_mb = _rss_mb()
    rows = [
        ("zookeeper.version", ZK_VERSION),
        ("host.name", socket.gethostname()),
        ("python.version", platform.python_version()),
        ("python.implementation", platform.python_implementation()),
        ("os.name", platform.system()),
        ("os.arch", platform.machine()),
        ("os.version", platform.release()),
        ("user.name", _user_name()),
        ("user.home", os.path.expanduser("~")),
        ("user.dir", os.getcwd()),
        # Java's heap figures have no Python twin: report the process's resident size.
        ("os.memory.free", "0MB"),
        ("os.memory.max", f"{rss_mb}MB"),
        ("os.memory.total", f"{rss_mb}MB"),
    ]
    return "Environment:\n" + "".join(f"{k}={v}\n" for k, v in rows)


def wchs(s: Snapshot) -> str:
    return (
        f"{s.watching_connections} connections watching {s.watched_paths} paths\n"
        f"Total watches:{s.data_watch_count}\n"
    )


def wchc(s: Snapshot) -> str:
    return "".join(
        f"{_hex(sid)}\n" + "".join(f"\t{p}\n" for p in paths) + "\n"
        for sid, paths in s.watches_by_session.items()
    ) + ("" if s.watches_by_session else "\n")


def wchp(s: Snapshot) -> str:
    return "".join(
        f"{path}\n" + "".join(f"\t{_hex(sid)}\n" for sid in sids) + "\n"
        for path, sids in s.watches_by_path.items()
    ) + ("" if s.watches_by_path else "\n")


def dump(s: Snapshot) -> str:
    lines = [
        "SessionTracker dump:",
        f"Session Sets ({len(s.session_buckets)})/({s.sessions}):",
    ]
    for when, sids in s.session_buckets.items():
        lines.append(f"{len(sids)} expire at {java_date(when)}:")
        lines.extend(f"\t{_hex(sid)}" for sid in sids)
    lines.append("ephemeral nodes dump:")
    lines.append(f"Sessions with Ephemerals ({len(s.session_ephemerals)}):")
    for sid in sorted(s.session_ephemerals):
        lines.append(f"{_hex(sid)}:")
        lines.extend(f"\t{p}" for p in sorted(s.session_ephemerals[sid]))
    lines.append("Connections dump:")
    # zkref has no connection-idle expiry queue: every connection is one set, expiring with the
    # longest session timeout from now (what ZooKeeper's NIO expirer would say at most).
    n = len(s.connections)
    lines.append(f"Connections Sets ({1 if n else 0})/({n}):")
    if n:
        longest = max((c.timeout_ms for c in s.connections), default=0)
        lines.append(f"{n} expire at {java_date(s.now_ms + longest)}:")
        lines.extend(
            f"\tip: /{c.remote} sessionId: {_hex(c.session_id or 0)}" for c in s.connections
        )
    return "\n".join(lines) + "\n"


def isro(s: Snapshot) -> str:
    return "ro" if s.read_only else "rw"


def dirs(s: Snapshot) -> str:
    return f"datadir_size: {s.datadir_size}\nlogdir_size: {s.logdir_size}\n"


FORMATTERS = {
    "wchc": wchc,
    "wchp": wchp,
    "srvr": srvr,
    "stat": stat,
    "cons": cons,
    "mntr": mntr,
    "conf": conf,
    "envi": envi,
    "wchs": wchs,
    "dump": dump,
    "isro": isro,
    "dirs": dirs,
}


def answer(word: str, whitelist: frozenset[str], snapshot: Snapshot) -> str:
    """The text ZooKeeper sends back for `word` (the connection is then closed)."""
    if word == "ruok":
        return "imok" if word in whitelist else not_whitelisted(word)
    if word not in whitelist:
        return not_whitelisted(word)
    fmt = FORMATTERS.get(word)
    if fmt is None:
        return f"{word} is not supported by zkref\n"
    return fmt(snapshot)


def _open_fds() -> int:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return -1


def _rss_mb() -> int:
    try:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    except (ImportError, OSError):
        return 0


def _user_name() -> str:
    try:
        import pwd

        return pwd.getpwuid(os.getuid()).pw_name
    except (ImportError, KeyError):
        return os.environ.get("USER", "?")


def _max_fds() -> int:
    try:
        import resource

        return resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    except (ImportError, OSError):
        return -1


def send_word(host: str, port: int, word: str, timeout_s: float = 5.0) -> str:
    with socket.create_connection((host, port), timeout=timeout_s) as sock:
        sock.sendall(word.encode())
        chunks: list[bytes] = []
        while True:
            b = sock.recv(65536)
            if not b:
                break
            chunks.append(b)
    return b"".join(chunks).decode(errors="replace")


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="zkref 4lw", description="send a four-letter word")
    p.add_argument("word", choices=sorted(WORD_CODES.values()))
    p.add_argument("--server", default="127.0.0.1:2181", help="host:port (default %(default)s)")
    a = p.parse_args(argv)
    host, _, port = a.server.rpartition(":")
    try:
        sys.stdout.write(send_word(host or "127.0.0.1", int(port), a.word))
    except (OSError, ValueError) as e:
        print(f"zkref 4lw: cannot reach {a.server}: {e}", file=sys.stderr)
        return 1
    return 0
