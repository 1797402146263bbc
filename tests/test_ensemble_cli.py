"""`zkref ensemble --size 3`: prints the connect string and the leader, stops every member on
SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import zkref
from zkref.server.ensemble import plan

pytestmark = pytest.mark.slow

_IMPL = str(Path(zkref.__file__).resolve().parents[1])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_ensemble_command_starts_three_members_and_stops_them(tmp_path: Path) -> None:
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join(filter(None, [_IMPL, os.environ.get("PYTHONPATH")]))
    )
    p = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "zkref",
            "ensemble",
            "--size",
            "3",
            "--data-dir",
            str(tmp_path),
            "--tick-time",
            "200",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        text=True,
    )
    lines: list[str] = []
    try:
        assert p.stdout is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = p.stdout.readline()
            if not line:
                break
            lines.append(line.rstrip())
            if line.startswith("leader: member"):
                break
        assert any(x.startswith("connect string: 127.0.0.1:") for x in lines), lines
        assert any(x.startswith("leader: member") for x in lines), lines
        members = plan(3, tmp_path)  # only for the directory names
        for m in members:
            assert (m.dir / "myid").read_text().strip() == str(m.sid)
            assert "server.3=127.0.0.1:" in (m.dir / "zoo.cfg").read_text()
    finally:
        p.send_signal(signal.SIGTERM)
        out, _ = p.communicate(timeout=60)
    assert p.returncode == 0
    assert "zkref ensemble stopped" in out
    # every member process is gone
    ps = subprocess.run(["pgrep", "-f", str(tmp_path)], capture_output=True, text=True)
    assert not [pid for pid in ps.stdout.split() if _alive(int(pid))], ps.stdout
