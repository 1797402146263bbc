"""Apache ZooKeeper's C client (Debian's libzookeeper_mt, unchanged) against zkref.

`tests/c_client/zk_c_probe.c` runs a fixed script (versioned writes, sequential and ephemeral
nodes, watches, errors, multi, ACLs) through the C client's synchronous API and prints one line
per step. The same binary runs against Apache ZooKeeper 3.8 and against zkref, standalone and as
a 3-member ensemble reached through a multi-host connect string; the lines must be equal.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from zkref.chaos.zkref_proc import ZkrefServers
from zkref.chaos.zookeeper_proc import ApacheZooKeeper, apache_zookeeper_available

SOURCE = Path(__file__).parent / "c_client" / "zk_c_probe.c"
HEADER = Path("/usr/include/zookeeper/zookeeper.h")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which("gcc") is None or not HEADER.exists(),
        reason="needs gcc and Debian's libzookeeper-mt-dev (tests/run_all.sh installs it)",
    ),
]


@pytest.fixture(scope="module")
def probe(tmp_path_factory: pytest.TempPathFactory) -> Path:
    exe = tmp_path_factory.mktemp("cprobe") / "zk_c_probe"
    cmd = ["gcc", "-O1", "-Wall", "-Wextra", "-Werror", "-o", str(exe), str(SOURCE)]
    subprocess.run([*cmd, "-lzookeeper_mt", "-lpthread"], check=True, timeout=120)
    return exe


def run_probe(probe: Path, hosts: str, root: str = "/cprobe") -> list[str]:
    r = subprocess.run(
        [str(probe), hosts, root], capture_output=True, text=True, timeout=120, check=False
    )
    assert r.returncode == 0, f"C client failed (rc={r.returncode}):\n{r.stdout}\n{r.stderr}"
    return r.stdout.splitlines()


def first_difference(want: list[str], got: list[str]) -> str | None:
    """None when equal, else the first differing step, readably."""
    for k, (a, b) in enumerate(zip(want, got, strict=False)):
        if a != b:
            return f"step {k + 1}: reference {a!r}, zkref {b!r}"
    if len(want) != len(got):
        return f"reference printed {len(want)} lines, zkref {len(got)}"
    return None


def _on(cls: type[ApacheZooKeeper], size: int, base: Path, probe: Path) -> list[str]:
    with cls(size, base) as ens:
        ens.start()
        return run_probe(probe, ens.connect_string)


@pytest.fixture(scope="module")
def reference(probe: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[str]]:
    """What the probe prints against Apache ZooKeeper 3.8 standalone."""
    if not apache_zookeeper_available():
        pytest.skip("Apache ZooKeeper (Debian package zookeeper) is not installed")
    yield _on(ApacheZooKeeper, 1, tmp_path_factory.mktemp("apache"), probe)


def _sane(lines: list[str]) -> None:
    """Independent of the reference: the script did what it says (both sides could be wrong
    in the same way only if these hold too)."""
    d = {ln.split(" ", 1)[0]: ln for ln in lines}
    assert d["create-root"] == "create-root rc=0 path=/cprobe"
    assert d["set-v0-again"] == "set-v0-again rc=-103"  # ZBADVERSION
    assert [ln for ln in lines if ln.startswith("create-seq")] == [
        f"create-seq rc=0 name=q-000000000{k}" for k in range(3)
    ]
    assert "ephemeral=mine" in d["exists-ephemeral"]
    assert d["event-1"] == "event-1 fired=1 type=created path_ok=1"
    assert d["event-2"] == "event-2 fired=1 type=deleted path_ok=1"
    assert d["multi-fail-left-nothing"] == "multi-fail-left-nothing rc=-101"
    assert d["set-read-only"] == "set-read-only rc=-102"  # ZNOAUTH
    assert lines[-1] == "close rc=0"


def test_c_client_against_zkref_standalone_equals_apache(
    probe: Path, reference: list[str], tmp_path: Path
) -> None:
    got = _on(ZkrefServers, 1, tmp_path, probe)
    _sane(reference)
    assert first_difference(reference, got) is None, (first_difference(reference, got), got)


def test_c_client_against_a_zkref_ensemble_equals_apache(
    probe: Path, reference: list[str], tmp_path: Path
) -> None:
    """Connected to a follower, which forwards the writes and serves reads and watches; then
    the whole ensemble's connect string (the C client picks a member at random)."""
    with ZkrefServers(3, tmp_path) as ens:
        ens.start()
        follower = ens.followers()[0]
        got = run_probe(probe, f"127.0.0.1:{ens.client_port(follower)}")
        assert first_difference(reference, got) is None, (first_difference(reference, got), got)
        again = run_probe(probe, ens.connect_string, root="/cprobe")
        # /cprobe exists now: the first create fails as it should, the rest is the same
        assert again[:2] == ["create-root rc=-110 path=", "create-root-again rc=-110"]


def test_a_difference_is_reported_at_its_step() -> None:
    want = ["create-root rc=0 path=/cprobe", "set-v0-again rc=-103", "close rc=0"]
    planted = ["create-root rc=0 path=/cprobe", "set-v0-again rc=0", "close rc=0"]
    assert first_difference(want, want) is None
    assert first_difference(want, planted) == (
        "step 2: reference 'set-v0-again rc=-103', zkref 'set-v0-again rc=0'"
    )
    assert first_difference(want, want[:2]) == "reference printed 3 lines, zkref 2"
