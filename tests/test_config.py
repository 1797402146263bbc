"""zoo.cfg parsing: ZooKeeper's keys, defaults, and clear errors that name the line."""

from __future__ import annotations

import re
import subprocess
import sys
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


# -- group.N / weight.N: hierarchical and weighted quorums, proved safe by z3 at load --------

SERVERS = [f"server.{i}=127.0.0.1:{2887 + i}:{3887 + i}" for i in range(1, 10)]


def test_no_groups_means_majority_of_participants() -> None:
    from zkref.core.quorum import QuorumMaj

    cfg = parse_zoo_cfg(["dataDir=/d", *SERVERS[:3], "server.4=h:1:2:observer"])
    assert cfg.quorum == QuorumMaj(frozenset({1, 2, 3}))
    assert (cfg.groups, cfg.weights) == ((), ())


def test_hierarchical_docs_example_loads() -> None:
    lines = ["dataDir=/d", *SERVERS, "group.1=1:2:3", "group.2=4:5:6", "group.3=7:8:9"]
    lines += [f"weight.{i}=1" for i in range(1, 10)]
    cfg = parse_zoo_cfg(lines)
    assert cfg.groups == ((1, (1, 2, 3)), (2, (4, 5, 6)), (3, (7, 8, 9)))
    assert cfg.weights == tuple((i, 1) for i in range(1, 10))
    assert cfg.quorum.contains_quorum({1, 2, 4, 5})
    assert not cfg.quorum.contains_quorum({1, 2, 3, 4})
    assert cfg.ignored_keys == ()


def test_weighted_config_with_default_weights() -> None:
    cfg = parse_zoo_cfg(["dataDir=/d", *SERVERS[:4], "group.1=1:2:3:4", "weight.1=2"])
    assert cfg.quorum.contains_quorum({1, 2})  # 3 of 5
    assert not cfg.quorum.contains_quorum({2, 3})  # 2 of 5


def test_unsafe_weights_are_refused_naming_two_disjoint_quorums() -> None:
    lines = ["dataDir=/d", *SERVERS[:3], "group.1=1:2:3", "weight.1=2", "weight.2=2", "weight.3=-1"]
    with pytest.raises(ConfigError) as ei:
        parse_zoo_cfg(lines)
    msg = str(ei.value)
    assert "unsafe quorum system" in msg
    assert "weight.3=-1 (line 8) is negative" in msg
    # The two sets named are quorums of that system and disjoint.
    from zkref.core.quorum import weighted

    q = weighted({1: 2, 2: 2, 3: -1})
    named = [
        frozenset(int(x) for x in part.split(", ")) for part in re.findall(r"\{([\d, ]+)\}", msg)
    ]
    assert len(named) == 2
    assert all(q.contains_quorum(s) for s in named)
    assert not (named[0] & named[1])


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["group.1=1:2:3", "group.2=3"], "zoo.cfg:7: group.2: server 3 is already in group.1"),
        (["group.1=1:2:3:9"], "zoo.cfg:6: group.1: server 9 has no server.9 line"),
        (["group.1=1:2"], "server 3 is not in a group"),
        (["weight.1=1"], "server 1 is not in a group"),
        (["group.1=1:2:3", "weight.7=1"], "zoo.cfg:7: weight.7: no server.7 line"),
        (["group.1=1:2:x"], "zoo.cfg:6: group.1: expected server ids separated by ':'"),
        (["group.1=1:1:2:3"], "zoo.cfg:6: group.1: server 1 is listed twice"),
        (["group.1=1:2:3", "weight.2=abc"], "zoo.cfg:7: weight.2: expected an integer"),
        # Negative but harmless (every two quorums still meet): refused all the same.
        # (an observer weighing -1 in the group: quorums still need 2 of the 3 participants).
        (["group.1=1:2:3:4", "weight.4=-1"], "zoo.cfg:7: weight.4: must be >= 0, got -1"),
        (["group.1=1:2:3", "weight.1=0", "weight.2=0", "weight.3=0"], "no set of voting servers"),
        (["group.1=1:2:3", "group.2=4"], "zoo.cfg:7: group.2: observer 4 is in a group but has"),
        (["group.1=1:2:3", "group.1=1"], "zoo.cfg:7: group.1: already set on line 6"),
        (["groupx=1"], "zoo.cfg:6: groupx: unknown key"),
    ],
)
def test_bad_groups_and_weights(extra: list[str], message: str) -> None:
    with pytest.raises(ConfigError) as ei:
        parse_zoo_cfg(["dataDir=/d", *SERVERS[:3], "server.4=h:1:2:observer", *extra])
    assert message in str(ei.value)


def test_observer_with_a_weight_may_be_grouped() -> None:
    cfg = parse_zoo_cfg(
        ["dataDir=/d", *SERVERS[:3], "server.4=h:1:2:observer", "group.1=1:2:3:4", "weight.4=1"]
    )
    assert cfg.quorum.voters == {1, 2, 3}
    assert not cfg.quorum.contains_quorum({1, 2})  # 2 of a group weighing 4
    assert cfg.quorum.contains_quorum({1, 2, 3})


def test_majority_config_does_not_load_z3() -> None:
    code = (
        "import sys; from zkref.server.config import parse_zoo_cfg; "
        "parse_zoo_cfg(['dataDir=/d', 'server.1=h:1:2', 'server.2=h:3:4', 'server.3=h:5:6']); "
        "assert 'z3' not in sys.modules, 'z3 loaded'; "
        "parse_zoo_cfg(['dataDir=/d', 'server.1=h:1:2', 'group.1=1']); "
        "assert 'z3' in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
