"""zoo.cfg parsing: ZooKeeper's keys, defaults, and clear errors that name the line."""

from __future__ import annotations

from pathlib import Path

import pytest

from zkref.server.config import (
    ALL_FOUR_LETTER_WORDS,
    ConfigError,
    ServerSpec,
    load_zoo_cfg,
    parse_zoo_cfg,
)


def test_sample_zoo_cfg_parses_with_zookeeper_defaults() -> None:
    cfg = parse_zoo_cfg(
        """
        # The number of milliseconds of each tick
        tickTime=2000
        initLimit=10
        syncLimit=5
        dataDir=/var/lib/zookeeper
        clientPort=2181
        """.splitlines()
    )
    assert cfg.tick_time_ms == 2000
    assert cfg.data_dir == Path("/var/lib/zookeeper")
    assert cfg.log_dir == Path("/var/lib/zookeeper")
    assert cfg.client_port == 2181
    assert cfg.min_session_timeout == 4000  # 2 x tickTime
    assert cfg.max_session_timeout == 40000  # 20 x tickTime
    assert cfg.four_letter_words == frozenset({"srvr"})
    assert cfg.jute_maxbuffer == 0xFFFFF
    assert cfg.max_client_cnxns == 60
    assert cfg.snap_count == 100_000


def test_every_implemented_key() -> None:
    cfg = parse_zoo_cfg(
        [
            "dataDir=/d",
            "dataLogDir=/l",
            "tickTime=100",
            "clientPort=3000",
            "clientPortAddress=127.0.0.1",
            "maxClientCnxns=7",
            "minSessionTimeout=300",
            "maxSessionTimeout=9000",
            "snapCount=50",
            "autopurge.snapRetainCount=5",
            "autopurge.purgeInterval=2",
            "4lw.commands.whitelist=ruok, srvr ,mntr",
            "DigestAuthenticationProvider.superDigest=super:D/InIHSb7yEEbrWz8b9l71RjZJU=",
            "extendedTypesEnabled=true",
            "jute.maxbuffer=4096",
            "preAllocSize=1024",
            "forceSync=no",
        ]
    )
    assert cfg.log_dir == Path("/l")
    assert (cfg.tick_time_ms, cfg.client_port, cfg.client_port_address) == (100, 3000, "127.0.0.1")
    assert (cfg.min_session_timeout, cfg.max_session_timeout) == (300, 9000)
    assert cfg.four_letter_words == {"ruok", "srvr", "mntr"}
    assert cfg.super_digest == "super:D/InIHSb7yEEbrWz8b9l71RjZJU="
    assert cfg.extended_types_enabled is True
    assert cfg.jute_maxbuffer == 4096
    assert (cfg.prealloc_kb, cfg.force_sync) == (1024, False)
    assert (cfg.autopurge_snap_retain_count, cfg.autopurge_purge_interval_h) == (5, 2)


def test_star_whitelist_enables_all_words() -> None:
    cfg = parse_zoo_cfg(["dataDir=/d", "4lw.commands.whitelist=*"])
    assert cfg.four_letter_words == ALL_FOUR_LETTER_WORDS


def test_server_lines() -> None:
    cfg = parse_zoo_cfg(
        [
            "dataDir=/d",
            "server.3=127.0.0.1:2890:3890;2183",
            "server.1=127.0.0.1:2888:3888",
            "server.2=host2:2889:3889:observer;0.0.0.0:2182",
        ]
    )
    assert cfg.servers == (
        ServerSpec(1, "127.0.0.1", 2888, 3888),
        ServerSpec(2, "host2", 2889, 3889, "observer", "0.0.0.0", 2182),
        ServerSpec(3, "127.0.0.1", 2890, 3890, "participant", None, 2183),
    )


def test_known_zookeeper_keys_are_accepted_and_reported() -> None:
    cfg = parse_zoo_cfg(["dataDir=/d", "admin.enableServer=false", "globalOutstandingLimit=9"])
    assert cfg.ignored_keys == ("admin.enableServer", "globalOutstandingLimit")


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (["dataDir=/d", "tickTime=abc"], "zoo.cfg:2: tickTime: expected an integer"),
        (["dataDir=/d", "clientPort=70000"], "zoo.cfg:2: clientPort: must be <= 65535"),
        (["dataDir=/d", "bogusKey=1"], "zoo.cfg:2: bogusKey: unknown key"),
        (["dataDir=/d", "just words"], "zoo.cfg:2: expected key=value"),
        (["dataDir=/d", "4lw.commands.whitelist=srvr,nope"], "unknown four-letter word(s): nope"),
        (["dataDir=/d", "server.1=h:1"], "zoo.cfg:2: server.1: expected host:quorumPort"),
        (["dataDir=/d", "tickTime=1", "tickTime=2"], "zoo.cfg:3: tickTime: already set on line 2"),
        (["clientPort=1"], "dataDir is not set"),
        (
            ["dataDir=/d", "minSessionTimeout=5000", "maxSessionTimeout=4000"],
            "minSessionTimeout (5000) must not be larger",
        ),
        (["dataDir=/d", "extendedTypesEnabled=maybe"], "expected true or false"),
    ],
)
def test_bad_config_names_the_line(lines: list[str], message: str) -> None:
    with pytest.raises(ConfigError) as ei:
        parse_zoo_cfg(lines)
    assert message in str(ei.value)


def test_relative_data_dir_is_relative_to_the_config_file(tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()
    f = tmp_path / "conf" / "zoo.cfg"
    f.write_text("dataDir=data\ndataLogDir=/abs/log\n")
    cfg = load_zoo_cfg(f)
    assert cfg.data_dir == tmp_path / "conf" / "data"
    assert cfg.data_log_dir == Path("/abs/log")


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_zoo_cfg(tmp_path / "nope.cfg")
