"""zoo.cfg, read as Apache ZooKeeper reads it.

Keys are ZooKeeper's own. A key zkref implements is parsed and checked; a key of ZooKeeper's
that zkref does not implement is accepted and reported (so an operator's existing zoo.cfg loads);
anything else, or a malformed value, is a `ConfigError` naming the file and line.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

from zkref.core.quorum import QuorumHierarchical, QuorumMaj, QuorumSystem
from zkref.wire.constants import DEFAULT_JUTE_MAXBUFFER

ALL_FOUR_LETTER_WORDS = frozenset(
    {"conf", "cons", "crst", "dirs", "dump", "envi", "gtmk", "hash", "isro"}
    | {"mntr", "ruok", "srst", "srvr", "stat", "stmk", "wchc", "wchp", "wchs"}
)

# ZooKeeper keys that zkref accepts but does not act on (yet). Listed so that a real zoo.cfg loads.
KNOWN_UNIMPLEMENTED = frozenset(
    {
        "admin.enableServer",
        "admin.serverAddress",
        "admin.serverPort",
        "admin.commandURL",
        "admin.idleTimeout",
        "metricsProvider.className",
        "metricsProvider.httpPort",
        "metricsProvider.exportJvmInfo",
        "standaloneEnabled",
        "reconfigEnabled",
        "dynamicConfigFile",
        "globalOutstandingLimit",
        "commitLogCount",
        "snapSizeLimitInKb",
        "txnLogSizeLimitInKb",
        "syncEnabled",
        "leaderServes",
        "electionAlg",
        "quorumListenOnAllIPs",
        "maxCnxns",
        "cnxTimeout",
        "electionPortBindRetry",
        "clientPortListenBacklog",
        "fsync.warningthresholdms",
        "skipACL",
        "enforceQuota",
        "digest.enabled",
        "localSessionsEnabled",
        "localSessionsUpgradingEnabled",
        "serverCnxnFactory",
        "sslQuorum",
        "portUnification",
        "multiAddress.enabled",
        "quorum.auth.enableSasl",
        "requestThrottleLimit",
        "requestThrottleStallTime",
        "maxResponseCacheSize",
        "connectToLearnerMasterLimit",
        "observerMasterPort",
        "secureClientPort",
        "secureClientPortAddress",
    }
)


class ConfigError(ValueError):
    """A zoo.cfg problem, with the place it was found."""


@dataclass(frozen=True, slots=True)
class ServerSpec:
    """One `server.N=host:quorumPort:electionPort[:role][;[clientAddr:]clientPort]` line."""

    sid: int
    host: str
    quorum_port: int
    election_port: int
    role: str = "participant"
    client_address: str | None = None
    client_port: int | None = None


@dataclass(frozen=True, slots=True)
class ZooCfg:
    data_dir: Path
    data_log_dir: Path | None = None
    tick_time_ms: int = 3000
    client_port: int = 2181
    client_port_address: str = "0.0.0.0"
    max_client_cnxns: int = 60
    min_session_timeout_ms: int = -1  # -1: 2 x tickTime
    max_session_timeout_ms: int = -1  # -1: 20 x tickTime
    snap_count: int = 100_000
    autopurge_snap_retain_count: int = 3
    autopurge_purge_interval_h: int = 0
    four_letter_words: frozenset[str] = frozenset({"srvr"})
    super_digest: str | None = None
    extended_types_enabled: bool = False
    jute_maxbuffer: int = DEFAULT_JUTE_MAXBUFFER
    prealloc_kb: int = 4096  # preAllocSize (ZooKeeper: 65536, sparse; zkref zero-fills)
    force_sync: bool = True
    init_limit_ticks: int = 10
    sync_limit_ticks: int = 5
    servers: tuple[ServerSpec, ...] = ()
    peer_type: str = "participant"
    read_only_mode_enabled: bool = False
    # zkref's own: `sync` as a quorum round through the leader (docs/ensemble.md)
    linearizable_sync: bool = False
    # -- quorum hook (zkref.core.quorum, zkref.conform.quorum_z3) -----------------------------
    # group.G=a:b:c as (G, (a, b, c)) and weight.N as (N, w), in file order; empty: majority.
    groups: tuple[tuple[int, tuple[int, ...]], ...] = ()
    weights: tuple[tuple[int, int], ...] = ()
    # -- end quorum hook --------------------------------------------------------------------
    # -- UNSAFE, test-only planted bug (docs/chaos.md): off by default, never in production --
    # zkref.unsafe.ackBeforeQuorum: an ensemble leader answers a write when it proposes it.
    unsafe_ack_before_quorum: bool = False
    ignored_keys: tuple[str, ...] = field(default=(), compare=False)

    @property
    def quorum(self) -> QuorumSystem:
        """QuorumHierarchical when any group.N/weight.N line is present (ZooKeeper's rule),
        else QuorumMaj over the participants."""
        voters = frozenset(s.sid for s in self.servers if s.role == "participant")
        if not self.groups and not self.weights:
            return QuorumMaj(voters)
        return QuorumHierarchical.of(
            {g: members for g, members in self.groups}, dict(self.weights), voters
        )

    @property
    def unsafe_modes(self) -> list[str]:
        """The zoo.cfg keys of the planted bugs that are on (to be logged loudly)."""
        return ["zkref.unsafe.ackBeforeQuorum"] if self.unsafe_ack_before_quorum else []

    @property
    def min_session_timeout(self) -> int:
        return (
            self.min_session_timeout_ms
            if self.min_session_timeout_ms > 0
            else 2 * self.tick_time_ms
        )

    @property
    def max_session_timeout(self) -> int:
        return (
            self.max_session_timeout_ms
            if self.max_session_timeout_ms > 0
            else 20 * self.tick_time_ms
        )

    @property
    def log_dir(self) -> Path:
        return self.data_log_dir if self.data_log_dir is not None else self.data_dir


def _int(lo: int | None = None, hi: int | None = None) -> Callable[[str], int]:
    def parse(v: str) -> int:
        try:
            n = int(v)
        except ValueError:
            raise ValueError(f"expected an integer, got {v!r}") from None
        if lo is not None and n < lo:
            raise ValueError(f"must be >= {lo}, got {n}")
        if hi is not None and n > hi:
            raise ValueError(f"must be <= {hi}, got {n}")
        return n

    return parse


def _bool(v: str) -> bool:
    low = v.strip().lower()
    if low in ("true", "yes", "1"):
        return True
    if low in ("false", "no", "0"):
        return False
    raise ValueError(f"expected true or false, got {v!r}")


def _port(v: str) -> int:
    return _int(0, 65535)(v)


def _words(v: str) -> frozenset[str]:
    items = {w.strip() for w in v.split(",") if w.strip()}
    if "*" in items:
        return ALL_FOUR_LETTER_WORDS
    unknown = items - ALL_FOUR_LETTER_WORDS
    if unknown:
        raise ValueError(f"unknown four-letter word(s): {', '.join(sorted(unknown))}")
    return frozenset(items)


def _super_digest(v: str) -> str:
    if ":" not in v:
        raise ValueError("expected user:base64digest")
    return v


_SERVER_RE = re.compile(r"^server\.(\d+)$")
_GROUP_RE = re.compile(r"^group\.(\d+)$")  # quorum hook
_WEIGHT_RE = re.compile(r"^weight\.(\d+)$")  # quorum hook


def parse_server_line(sid: int, value: str) -> ServerSpec:
    addr, _, client = value.partition(";")
    parts = addr.split(":")
    if len(parts) < 3 or len(parts) > 4:
        raise ValueError("expected host:quorumPort:electionPort[:participant|observer]")
    host, qport, eport = parts[0], _port(parts[1]), _port(parts[2])
    role = parts[3] if len(parts) == 4 else "participant"
    if role not in ("participant", "observer"):
        raise ValueError(f"role must be participant or observer, got {role!r}")
    client_address: str | None = None
    client_port: int | None = None
    if client:
        caddr, sep, cport = client.rpartition(":")
        client_port = _port(cport)
        client_address = caddr if sep else None
    return ServerSpec(sid, host, qport, eport, role, client_address, client_port)


_FIELDS: dict[str, tuple[str, Callable[[str], object]]] = {
    "tickTime": ("tick_time_ms", _int(1)),
    "dataDir": ("data_dir", Path),
    "dataLogDir": ("data_log_dir", Path),
    "clientPort": ("client_port", _port),
    "clientPortAddress": ("client_port_address", str),
    "maxClientCnxns": ("max_client_cnxns", _int(0)),
    "minSessionTimeout": ("min_session_timeout_ms", _int()),
    "maxSessionTimeout": ("max_session_timeout_ms", _int()),
    "snapCount": ("snap_count", _int(2)),
    "autopurge.snapRetainCount": ("autopurge_snap_retain_count", _int(0)),
    "autopurge.purgeInterval": ("autopurge_purge_interval_h", _int(0)),
    "4lw.commands.whitelist": ("four_letter_words", _words),
    "superDigest": ("super_digest", _super_digest),
    "DigestAuthenticationProvider.superDigest": ("super_digest", _super_digest),
    "zookeeper.DigestAuthenticationProvider.superDigest": ("super_digest", _super_digest),
    "extendedTypesEnabled": ("extended_types_enabled", _bool),
    "zookeeper.extendedTypesEnabled": ("extended_types_enabled", _bool),
    "jute.maxbuffer": ("jute_maxbuffer", _int(1)),
    "preAllocSize": ("prealloc_kb", _int(0)),
    "forceSync": ("force_sync", _bool),
    "initLimit": ("init_limit_ticks", _int(1)),
    "syncLimit": ("sync_limit_ticks", _int(1)),
    "peerType": ("peer_type", str),
    "readonlymode.enabled": ("read_only_mode_enabled", _bool),
    "linearizableSync": ("linearizable_sync", _bool),
    # UNSAFE, test-only (the chaos harness's planted bug); not a ZooKeeper key
    "zkref.unsafe.ackBeforeQuorum": ("unsafe_ack_before_quorum", _bool),
}


def parse_zoo_cfg(lines: Iterable[str], source: str = "zoo.cfg") -> ZooCfg:
    values: dict[str, object] = {}
    servers: dict[int, ServerSpec] = {}
    groups: dict[int, tuple[tuple[int, ...], int]] = {}  # quorum hook: gid -> (sids, line)
    weights: dict[int, tuple[int, int]] = {}  # quorum hook: sid -> (weight, line)
    ignored: list[str] = []
    seen: dict[str, int] = {}
    for lineno, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if "=" not in line:
            raise ConfigError(f"{source}:{lineno}: expected key=value, got {line!r}")
        key, _, value = (s.strip() for s in line.partition("="))
        where = f"{source}:{lineno}: {key}"
        if key in seen:
            raise ConfigError(f"{where}: already set on line {seen[key]}")
        seen[key] = lineno
        m = _SERVER_RE.match(key)
        try:
            if m:
                sid = int(m.group(1))
                servers[sid] = parse_server_line(sid, value)
            elif g := _GROUP_RE.match(key):  # quorum hook
                groups[int(g.group(1))] = (_group_members(value), lineno)
            elif w := _WEIGHT_RE.match(key):  # quorum hook
                weights[int(w.group(1))] = (_int()(value), lineno)
            elif key in _FIELDS:
                name, conv = _FIELDS[key]
                values[name] = conv(value)
            elif key in KNOWN_UNIMPLEMENTED or key.startswith("ssl."):
                ignored.append(key)
            else:
                raise ConfigError(f"{where}: unknown key")
        except ValueError as e:
            if isinstance(e, ConfigError):
                raise
            raise ConfigError(f"{where}: {e}") from None
    if "data_dir" not in values:
        raise ConfigError(f"{source}: dataDir is not set")
    if values.get("peer_type", "participant") not in ("participant", "observer"):
        raise ConfigError(f"{source}: peerType must be participant or observer")
    cfg = ZooCfg(**values)  # type: ignore[arg-type]
    cfg = replace(
        cfg, servers=tuple(servers[k] for k in sorted(servers)), ignored_keys=tuple(ignored)
    )
    if cfg.min_session_timeout > cfg.max_session_timeout:
        raise ConfigError(
            f"{source}: minSessionTimeout ({cfg.min_session_timeout}) must not be larger than "
            f"maxSessionTimeout ({cfg.max_session_timeout})"
        )
    if groups or weights:  # quorum hook
        cfg = _check_quorum(cfg, groups, weights, source)
    return cfg


# -- quorum hook: group.N / weight.N (zkref.core.quorum, zkref.conform.quorum_z3) ----------


def _group_members(value: str) -> tuple[int, ...]:
    parts = value.split(":")
    try:
        sids = tuple(int(p.strip()) for p in parts)
    except ValueError:
        raise ValueError(f"expected server ids separated by ':', got {value!r}") from None
    dup = sorted({s for s in sids if sids.count(s) > 1})
    if dup:
        raise ValueError(f"server {dup[0]} is listed twice")
    return sids


def _check_quorum(
    cfg: ZooCfg,
    groups: dict[int, tuple[tuple[int, ...], int]],
    weights: dict[int, tuple[int, int]],
    source: str,
) -> ZooCfg:
    """ZooKeeper's QuorumHierarchical checks (every participant in exactly one group), ours
    (known ids only; an observer in a group needs a weight, where ZooKeeper 3.8 dies of a
    NullPointerException; weights >= 0), and a z3 proof that every two quorums intersect."""
    known = {s.sid: s for s in cfg.servers}
    owner: dict[int, int] = {}
    for gid, (sids, lineno) in sorted(groups.items(), key=lambda kv: kv[1][1]):
        where = f"{source}:{lineno}: group.{gid}"
        for sid in sids:
            if sid not in known:
                raise ConfigError(f"{where}: server {sid} has no server.{sid} line")
            if sid in owner:
                raise ConfigError(f"{where}: server {sid} is already in group.{owner[sid]}")
            owner[sid] = gid
            if known[sid].role == "observer" and sid not in weights:
                raise ConfigError(f"{where}: observer {sid} is in a group but has no weight.{sid}")
    for sid, (_, lineno) in weights.items():
        if sid not in known:
            raise ConfigError(f"{source}:{lineno}: weight.{sid}: no server.{sid} line")
    for s in cfg.servers:
        if s.role == "participant" and s.sid not in owner:
            raise ConfigError(
                f"{source}: server {s.sid} is not in a group (with group.N or weight.N lines, "
                f"every participant must be in one group)"
            )
    cfg = replace(
        cfg,
        groups=tuple((g, sids) for g, (sids, _) in sorted(groups.items())),
        weights=tuple((s, w) for s, (w, _) in sorted(weights.items())),
    )
    # z3 is imported only here: a majority config never loads it.
    from zkref.conform.quorum_z3 import DisjointQuorums, NoQuorum, check_intersection, describe

    verdict = check_intersection(cfg.quorum)
    negative = [(s, w, ln) for s, (w, ln) in sorted(weights.items()) if w < 0]
    if isinstance(verdict, DisjointQuorums):
        why = "".join(f"; weight.{s}={w} (line {ln}) is negative" for s, w, ln in negative)
        raise ConfigError(f"{source}: unsafe quorum system: {describe(verdict)}{why}")
    # A negative weight that happens not to break intersection is still refused (after the
    # check above, so an unsafe one gets the stronger diagnosis: the two disjoint quorums).
    if negative:
        sid, w, ln = negative[0]
        raise ConfigError(f"{source}:{ln}: weight.{sid}: must be >= 0, got {w}")
    if isinstance(verdict, NoQuorum):
        raise ConfigError(f"{source}: {describe(verdict)}")
    return cfg


# -- end quorum hook ---------------------------------------------------------------------


def load_zoo_cfg(path: Path) -> ZooCfg:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror}") from None
    cfg = parse_zoo_cfg(text.splitlines(), source=str(path))
    # Relative data dirs are relative to the config file, as an operator expects.
    base = path.parent
    data_dir = cfg.data_dir if cfg.data_dir.is_absolute() else base / cfg.data_dir
    log_dir = cfg.data_log_dir
    if log_dir is not None and not log_dir.is_absolute():
        log_dir = base / log_dir
    return replace(cfg, data_dir=data_dir, data_log_dir=log_dir)
