"""Four-letter words on the client port: the whitelist logic and the answers' format, zkref against
Apache ZooKeeper 3.8 run side by side (each expectation is checked on Apache too).

- default whitelist (no `4lw.commands.whitelist` key at all): `srvr` only; every other word gets
  "<word> is not executed because it is not in the whitelist.\\n";
- an explicit list (spaces allowed) enables exactly its words, `*` enables all 18;
- with everything enabled, one scripted state (a data watch, a child watch, an ephemeral, 3 znodes)
  and the answers of srvr/stat/mntr/conf/cons/envi/wchs/dump/isro/ruok compared line by line: the
  same keys in the same order, values compared where both servers must agree (counts, zxid, mode),
  normalised elsewhere (versions, addresses, session ids, times, latencies).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from kazoo.client import KazooClient

from zkref.chaos.zookeeper_proc import (
    ApacheZooKeeper,
    apache_zookeeper_available,
    four_letter_word,
)
from zkref.server.config import ALL_FOUR_LETTER_WORDS
from zkref.server.process import ZkrefServerProcess

pytestmark = pytest.mark.slow

KINDS = ("zkref", "zookeeper")
WORDS = sorted(ALL_FOUR_LETTER_WORDS)
WHITELIST_KEY = "4lw.commands.whitelist"


def refusal(word: str) -> str:
    return f"{word} is not executed because it is not in the whitelist.\n"


def _drop_whitelist_line(cfg: Path) -> None:
    lines = cfg.read_text().splitlines()
    cfg.write_text("".join(f"{ln}\n" for ln in lines if not ln.startswith(f"{WHITELIST_KEY}=")))


class _ZkrefDefaultWhitelist(ZkrefServerProcess):
    """zkref with a zoo.cfg that does not mention the whitelist at all."""

    def write_config(self) -> None:
        super().write_config()
        _drop_whitelist_line(self.cfg_path)


class _ApacheDefaultWhitelist(ApacheZooKeeper):
    """Apache ZooKeeper with neither the zoo.cfg key nor the system property set."""

    def _write_config(self, sid: int) -> None:
        super()._write_config(sid)
        _drop_whitelist_line(self._members[sid].cfg_path)

    def _command(self, sid: int) -> list[str]:
        prop = f"-Dzookeeper.{WHITELIST_KEY}="
        return [a for a in super()._command(sid) if not a.startswith(prop)]


@contextmanager
def server(kind: str, base: Path, whitelist: str | None) -> Iterator[int]:
    """A standalone server of `kind` with `whitelist` (None: the key absent); yields its port."""
    cfg = {} if whitelist is None else {WHITELIST_KEY: whitelist}
    if kind == "zkref":
        cls = ZkrefServerProcess if whitelist is not None else _ZkrefDefaultWhitelist
        proc = cls(base / "zkref", extra_cfg=cfg)
        try:
            proc.start()
            yield proc.port
        finally:
            proc.stop()
        return
    if not apache_zookeeper_available():
        pytest.skip("Apache ZooKeeper (Debian's zookeeper package) is not installed")
    acls = ApacheZooKeeper if whitelist is not None else _ApacheDefaultWhitelist
    zk = acls(1, base / "apache", extra_cfg=cfg)
    try:
        zk.start()
        yield zk.client_port(1)
    finally:
        zk.stop()


def ask(port: int, word: str) -> str:
    reply = four_letter_word(port, word, timeout_s=5.0)
    assert reply is not None, f"no answer to {word}"
    return reply


# --- the whitelist ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_default_whitelist_is_srvr_only(kind: str, tmp_path: Path) -> None:
    with server(kind, tmp_path, None) as port:
        assert ask(port, "srvr").startswith("Zookeeper version: ")
        for word in WORDS:
            if word != "srvr":
                assert ask(port, word) == refusal(word), word


@pytest.mark.parametrize("kind", KINDS)
def test_explicit_whitelist_enables_exactly_its_words(kind: str, tmp_path: Path) -> None:
    # srvr stays in: both launchers wait for a srvr answer before they return.
    with server(kind, tmp_path, " ruok ,stat,  srvr") as port:
        assert ask(port, "ruok") == "imok"
        assert ask(port, "stat").startswith("Zookeeper version: ")
        for word in sorted(set(WORDS) - {"ruok", "stat", "srvr"}):
            assert ask(port, word) == refusal(word), word


@pytest.mark.parametrize("kind", KINDS)
def test_star_enables_every_word(kind: str, tmp_path: Path) -> None:
    with server(kind, tmp_path, "*") as port:
        for word in WORDS:
            assert "whitelist" not in ask(port, word), word


# --- the answers, side by side ------------------------------------------------------------------


def _scripted_state(port: int) -> KazooClient:
    """Node count 8 (ZooKeeper counts the root twice, as "" and "/"; /zookeeper, /zookeeper/config,
    /zookeeper/quota; /w, /d, /e), one data
    watch on /w, one child watch on /d, one ephemeral; the client stays connected."""
    zk = KazooClient(hosts=f"127.0.0.1:{port}", timeout=10.0)
    zk.start(timeout=30)
    zk.create("/w", b"watched")
    zk.create("/d", b"")
    zk.get("/w", watch=lambda _e: None)
    zk.get_children("/d", watch=lambda _e: None)
    zk.create("/e", b"ephemeral", ephemeral=True)
    return zk


@pytest.fixture(scope="module")
def answers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, str]]:
    """{kind: {word: answer}} for one scripted state, all words enabled."""
    out: dict[str, dict[str, str]] = {}
    for kind in KINDS:
        with server(kind, tmp_path_factory.mktemp(f"4lw-{kind}"), "*") as port:
            fresh = ask(port, "srvr")  # before any client request
            zk = _scripted_state(port)
            try:
                out[kind] = {w: ask(port, w) for w in WORDS}
                out[kind]["session"] = f"0x{zk.client_id[0]:x}"
                out[kind]["srvr-fresh"] = fresh
            finally:
                zk.stop()
                zk.close()
    return out


def _colon_lines(text: str) -> dict[str, str]:
    rows = [ln.split(": ", 1) for ln in text.splitlines() if ": " in ln]
    return {k: v for k, v in rows}


def _keys(text: str, sep: str) -> list[str]:
    return [ln.split(sep, 1)[0] for ln in text.splitlines() if sep in ln]


_CLIENT = re.compile(r"^ /127\.0\.0\.1:\d+\[(\d)\]\((.*)\)$")


def _client_fields(text: str) -> list[tuple[str, tuple[str, ...]]]:
    """Each connection line of stat/cons as (interest flag, field names)."""
    rows = []
    for ln in text.splitlines():
        m = _CLIENT.match(ln)
        if m:
            rows.append((m.group(1), tuple(f.split("=", 1)[0] for f in m.group(2).split(","))))
    return sorted(rows)


def test_ruok_and_isro(answers: dict[str, dict[str, str]]) -> None:
    for kind in KINDS:
        assert answers[kind]["ruok"] == "imok", kind
        assert answers[kind]["isro"] == "rw", kind


SRVR_KEYS = [
    "Zookeeper version",
    "Latency min/avg/max",
    "Received",
    "Sent",
    "Connections",
    "Outstanding",
    "Zxid",
    "Mode",
    "Node count",
]
# Values both servers must agree on for the scripted state (the 4lw connection counts itself).
SRVR_EQUAL = {"Connections": "2", "Outstanding": "0", "Zxid": "0x4", "Mode": "standalone"}


def test_srvr(answers: dict[str, dict[str, str]]) -> None:
    for kind in KINDS:
        text = answers[kind]["srvr"]
        assert _keys(text, ": ") == SRVR_KEYS, (kind, text)
        rows = _colon_lines(text)
        assert rows["Zookeeper version"].startswith("3.8.0"), (kind, text)
        assert re.fullmatch(r"\d+/\d+(\.\d+)?/\d+", rows["Latency min/avg/max"]), (kind, text)
        assert {k: rows[k] for k in SRVR_EQUAL} == SRVR_EQUAL, (kind, text)
        assert rows["Node count"] == "8", (kind, text)
        assert int(rows["Received"]) > 0 and int(rows["Sent"]) > 0, (kind, text)


def test_stat_structure(answers: dict[str, dict[str, str]]) -> None:
    for kind in KINDS:
        text = answers[kind]["stat"]
        lines = text.splitlines()
        assert lines[0].startswith("Zookeeper version: ") and lines[1] == "Clients:", text
        blank = lines.index("")
        assert all(_CLIENT.match(ln) for ln in lines[2:blank]), text
        assert len(lines[2:blank]) == 2, text  # the kazoo session and this 4lw connection
        assert _keys("\n".join(lines[blank + 1 :]), ": ") == SRVR_KEYS[1:], text
        assert _colon_lines(text)["Node count"] == "8"


def test_stat_lists_clients_briefly_like_zookeeper(answers: dict[str, dict[str, str]]) -> None:
    """`stat` lists each connection in brief form: (queued, recved, sent) only."""
    assert _client_fields(answers["zkref"]["stat"]) == _client_fields(answers["zookeeper"]["stat"])


# The keys `mntr` must carry (ZOOKEEPER-FACTS "Metrics"), and the values both servers must agree on.
MNTR_REQUIRED = [
    "zk_version",
    "zk_server_state",
    "zk_avg_latency",
    "zk_max_latency",
    "zk_min_latency",
    "zk_packets_received",
    "zk_packets_sent",
    "zk_num_alive_connections",
    "zk_outstanding_requests",
    "zk_znode_count",
    "zk_watch_count",
    "zk_ephemerals_count",
    "zk_approximate_data_size",
    "zk_open_file_descriptor_count",
    "zk_max_file_descriptor_count",
    "zk_uptime",
    "zk_global_sessions",
    "zk_local_sessions",
]
MNTR_EQUAL = [
    "zk_server_state",
    "zk_num_alive_connections",
    "zk_outstanding_requests",
    "zk_znode_count",
    "zk_watch_count",
    "zk_ephemerals_count",
    "zk_approximate_data_size",
    "zk_global_sessions",
    "zk_local_sessions",
]


def _mntr(text: str) -> dict[str, str]:
    assert text.endswith("\n")
    rows = [ln.split("\t") for ln in text.splitlines()]
    assert all(len(r) == 2 for r in rows), text
    return {k: v for k, v in rows}


def test_mntr(answers: dict[str, dict[str, str]]) -> None:
    ours, theirs = _mntr(answers["zkref"]["mntr"]), _mntr(answers["zookeeper"]["mntr"])
    for kind, rows in (("zkref", ours), ("zookeeper", theirs)):
        assert set(MNTR_REQUIRED) <= set(rows), (kind, set(MNTR_REQUIRED) - set(rows))
        assert list(rows)[:2] == ["zk_version", "zk_server_state"], kind
        for k in MNTR_REQUIRED[2:]:
            assert re.fullmatch(r"-?\d+(\.\d+)?", rows[k]), (kind, k, rows[k])
    assert set(ours) <= set(theirs), f"keys ZooKeeper does not have: {set(ours) - set(theirs)}"
    assert {k: ours[k] for k in MNTR_EQUAL} == {k: theirs[k] for k in MNTR_EQUAL}
    assert ours["zk_watch_count"] == "2" and ours["zk_ephemerals_count"] == "1"


def test_conf_structure(answers: dict[str, dict[str, str]]) -> None:
    for kind in KINDS:
        text = answers[kind]["conf"]
        assert all(re.fullmatch(r"[A-Za-z.]+=.*", ln) for ln in text.splitlines()), text
        rows = dict(ln.split("=", 1) for ln in text.splitlines())
        assert rows["tickTime"] == "2000" and rows["maxClientCnxns"] == "0", (kind, text)
        assert rows["minSessionTimeout"] == "4000", (kind, text)
        assert rows["maxSessionTimeout"] == "40000", (kind, text)
        assert rows["dataDir"].endswith("/version-2"), (kind, text)
        assert rows["serverId"] == "0", (kind, text)


def test_conf_keys_like_zookeeper(answers: dict[str, dict[str, str]]) -> None:
    assert _keys(answers["zkref"]["conf"], "=") == _keys(answers["zookeeper"]["conf"], "=")


def test_cons_structure(answers: dict[str, dict[str, str]]) -> None:
    for kind in KINDS:
        text = answers[kind]["cons"]
        lines = text.splitlines()
        assert text.endswith("\n\n") and lines[-1] == "", text
        assert all(_CLIENT.match(ln) for ln in lines[:-1]) and len(lines) == 3, text
        flags = sorted(flag for flag, _ in _client_fields(text))
        assert flags == ["0", "1"], text  # this 4lw connection, and the kazoo session
        session = answers[kind]["session"]
        assert f"sid={session}," in text and "lop=" in text, (kind, text)


def test_cons_fields_like_zookeeper(answers: dict[str, dict[str, str]]) -> None:
    assert _client_fields(answers["zkref"]["cons"]) == _client_fields(answers["zookeeper"]["cons"])


def test_envi(answers: dict[str, dict[str, str]]) -> None:
    for kind in KINDS:
        text = answers[kind]["envi"]
        lines = text.splitlines()
        assert lines[0] == "Environment:", text
        keys = [ln.split("=", 1)[0] for ln in lines[1:]]
        assert all("=" in ln for ln in lines[1:]), text
        # The platform-neutral keys (the java.* ones have no meaning for zkref).
        for key in ("zookeeper.version", "host.name", "os.name", "os.arch", "os.version"):
            assert key in keys, (kind, key)
        assert keys[0] == "zookeeper.version", text
        assert dict(ln.split("=", 1) for ln in lines[1:])["os.name"] == "Linux"


@pytest.mark.parametrize("kind", KINDS)
def test_envi_user_and_memory_keys_like_zookeeper(
    answers: dict[str, dict[str, str]], kind: str
) -> None:
    keys = {ln.split("=", 1)[0] for ln in answers[kind]["envi"].splitlines()[1:]}
    wanted = {"user.name", "user.home", "user.dir", "os.memory.free", "os.memory.max"}
    assert wanted <= keys, wanted - keys


WCHS = re.compile(r"(\d+) connections watching (\d+) paths\nTotal watches:(\d+)\n")


def test_wchs_format(answers: dict[str, dict[str, str]]) -> None:
    for kind in KINDS:
        assert WCHS.fullmatch(answers[kind]["wchs"]), (kind, answers[kind]["wchs"])


@pytest.mark.parametrize("kind", KINDS)
def test_wchs_counts_like_zookeeper(answers: dict[str, dict[str, str]], kind: str) -> None:
    """ZooKeeper 3.8's wchs (and wchc/wchp) summarise the data watches only: with one data watch
    on /w and one child watch on /d it says '1 connections watching 1 paths / Total watches:1'
    (mntr's zk_watch_count, 2, counts both)."""
    assert answers[kind]["wchs"] == "1 connections watching 1 paths\nTotal watches:1\n"


def _ephemerals_section(text: str, session: str) -> list[str]:
    lines = text.splitlines()
    start = lines.index("ephemeral nodes dump:")
    end = lines.index("Connections dump:") if "Connections dump:" in lines else len(lines)
    return [ln.replace(session, "SESSION") for ln in lines[start:end]]


def test_dump_ephemerals(answers: dict[str, dict[str, str]]) -> None:
    for kind in KINDS:
        text = answers[kind]["dump"]
        assert text.startswith("SessionTracker dump:\nSession Sets ("), text
        assert _ephemerals_section(text, answers[kind]["session"]) == [
            "ephemeral nodes dump:",
            "Sessions with Ephemerals (1):",
            "SESSION:",
            "\t/e",
        ], text


def _dump_shape(text: str, session: str) -> list[str]:
    text = re.sub(r"expire at [^\n]*:", "expire at DATE:", text.replace(session, "SESSION"))
    text = re.sub(r"/127\.0\.0\.1:\d+", "/ADDR", text)
    return re.sub(r"\d+", "N", text).splitlines()


def test_dump_like_zookeeper(answers: dict[str, dict[str, str]]) -> None:
    z, a = answers["zkref"], answers["zookeeper"]
    assert _dump_shape(z["dump"], z["session"]) == _dump_shape(a["dump"], a["session"])


@pytest.mark.parametrize("kind", KINDS)
def test_latency_average_printed_like_java(answers: dict[str, dict[str, str]], kind: str) -> None:
    """ZooKeeper prints the average latency with Java's Double.toString: before any request,
    'Latency min/avg/max: 0/0.0/0'."""
    assert _colon_lines(answers[kind]["srvr-fresh"])["Latency min/avg/max"] == "0/0.0/0"
    avg = _colon_lines(answers[kind]["srvr"])["Latency min/avg/max"].split("/")[1]
    assert re.fullmatch(r"\d+\.\d+", avg), avg


@pytest.mark.parametrize("kind", KINDS)
def test_dirs_like_zookeeper(answers: dict[str, dict[str, str]], kind: str) -> None:
    assert re.fullmatch(r"datadir_size: \d+\nlogdir_size: \d+\n", answers[kind]["dirs"])
