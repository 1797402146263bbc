"""The three rings of STYLE.md, kept honest: pure cores import no I/O, no clock, no randomness,
and nothing from the rings outside them."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

IMPL = Path(__file__).resolve().parent.parent / "impl" / "zkref"

PURE_PACKAGES = ("wire", "core")
# Modules of the pure rings that are tools, not cores (they run on the command line).
PURE_EXEMPT = {"wire/bench.py"}
FORBIDDEN_STDLIB = {
    "asyncio",
    "socket",
    "selectors",
    "select",
    "time",
    "random",
    "secrets",
    "os",
    "pathlib",
    "io",
    "threading",
    "subprocess",
    "multiprocessing",
    "signal",
    "datetime",
    "uuid",
    "tempfile",
    "shutil",
    "logging",
}
OUTER_RINGS = (
    "zkref.server",
    "zkref.client",
    "zkref.cli",
    "zkref.chaos",
    "zkref.conform",
    "zkref.sim",
)


def imported_modules(source: str) -> set[str]:
    tree = ast.parse(source)
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def violations(source: str) -> list[str]:
    bad: list[str] = []
    for name in sorted(imported_modules(source)):
        top = name.split(".")[0]
        if top in FORBIDDEN_STDLIB:
            bad.append(f"imports {name} (I/O, clock or randomness)")
        if name.startswith(OUTER_RINGS):
            bad.append(f"imports {name} (an outer ring)")
    return bad


def pure_modules() -> list[Path]:
    files = []
    for pkg in PURE_PACKAGES:
        for f in sorted((IMPL / pkg).rglob("*.py")):
            if str(f.relative_to(IMPL)) not in PURE_EXEMPT:
                files.append(f)
    return files


@pytest.mark.parametrize("path", pure_modules(), ids=lambda p: str(p.relative_to(IMPL)))
def test_pure_cores_import_no_io_clock_or_outer_ring(path: Path) -> None:
    assert violations(path.read_text()) == []


def test_there_are_pure_modules_to_check() -> None:
    names = {str(p.relative_to(IMPL)) for p in pure_modules()}
    assert {"wire/codec.py", "core/datatree.py", "core/server.py"} <= names


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import time\n", ["imports time (I/O, clock or randomness)"]),
        ("from asyncio import Queue\n", ["imports asyncio (I/O, clock or randomness)"]),
        ("import os.path\n", ["imports os.path (I/O, clock or randomness)"]),
        (
            "from zkref.server.storage import TxnLog\n",
            ["imports zkref.server.storage (an outer ring)"],
        ),
        ("def f():\n    import random\n", ["imports random (I/O, clock or randomness)"]),
        ("from zkref.wire import codec\nimport struct\n", []),
    ],
)
def test_checker_catches_planted_violations(source: str, expected: list[str]) -> None:
    assert violations(source) == expected
