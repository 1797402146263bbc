"""The running server takes snapshots as it goes (snapCount) and restarts from them."""

from __future__ import annotations

from pathlib import Path

import pytest
from kazoo.client import KazooClient

from support.servers import wait_for
from zkref.server.process import ZkrefServerProcess

pytestmark = pytest.mark.slow


def test_snapshots_taken_under_load_and_restart_uses_them(tmp_path: Path) -> None:
    proc = ZkrefServerProcess(tmp_path, tick_time_ms=500, extra_cfg={"snapCount": "50"})
    proc.start()
    try:
        zk = KazooClient(hosts=proc.connect_string, timeout=10.0)
        zk.start(timeout=20)
        zk.create("/s")
        for i in range(300):
            zk.create(f"/s/n{i:03d}", str(i).encode())
        zk.set("/s", b"last")
        zk.stop()
        zk.close()
        version2 = proc.data_dir / "version-2"
        wait_for(
            lambda: len(list(version2.glob("snapshot.*"))) >= 3,
            what="at least 3 snapshots after 300 txns with snapCount=50",
        )
        logs = sorted(version2.glob("log.*"))
        assert len(logs) >= 3, "the txn log rolls at every snapshot"
        proc.kill()  # no clean shutdown
        proc.start()
        assert "Reading snapshot" in proc.log_tail(50), "restart must load the newest snapshot"
        zk = KazooClient(hosts=proc.connect_string, timeout=10.0)
        zk.start(timeout=20)
        try:
            children = zk.get_children("/s")
            assert len(children) == 300
            assert zk.get("/s/n299")[0] == b"299"
            data, st = zk.get("/s")
            assert data == b"last" and st.version == 1 and st.numChildren == 300
        finally:
            zk.stop()
            zk.close()
    finally:
        proc.stop()
