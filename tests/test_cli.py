"""The `zkref` command: dispatch, help, and clear errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from zkref import cli


def test_every_subcommand_module_exists_and_has_main() -> None:
    import importlib.util

    missing = [m for m in cli.SUBCOMMANDS.values() if importlib.util.find_spec(m) is None]
    assert missing == []
    for module in cli.SUBCOMMANDS.values():
        assert callable(importlib.import_module(module).main), module


def test_help_lists_the_subcommands(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in ("server", "ensemble", "spec", "chaos", "trace", "bench", "4lw"):
        assert f"zkref {name}" in out


def test_unknown_subcommand_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["nope"]) == 2
    assert "unknown command 'nope'" in capsys.readouterr().err


def test_no_arguments_prints_usage_and_fails(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([]) == 2
    assert "zkref server" in capsys.readouterr().out


def test_server_without_config_is_a_clear_error() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "zkref", "server"], capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 2
    assert "give --config zoo.cfg, or --data-dir DIR" in r.stderr


def test_server_with_bad_config_names_the_line(tmp_path: Path) -> None:
    cfg = tmp_path / "zoo.cfg"
    cfg.write_text("dataDir=/tmp/x\ntickTime=soon\n")
    r = subprocess.run(
        [sys.executable, "-m", "zkref", "server", "--config", str(cfg)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2
    assert f"{cfg}:2: tickTime: expected an integer" in r.stderr


def test_version() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "zkref", "--version"], capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0 and r.stdout.startswith("zkref ")
