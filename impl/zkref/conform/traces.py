"""Counterexamples as NDJSON under `traces/`, and a readable rendering of them.

Rules:
- First line: a header (`kind`, `schema`, `spec`, `model`, `source`, `violated`, `loop_back_to`).
- Then one line per state: `seq`, `action`, `params` and `post` (the state, keyed by the spec's
  variable names, values as TLC prints them). `lastAction` is not repeated inside `post`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from zkref.conform.tlc import TlcResult


def trace_records(result: TlcResult, spec: str) -> list[dict[str, Any]]:
    """The NDJSON records of `result`'s counterexample, header first."""
    header: dict[str, Any] = {
        "kind": "header",
        "schema": 1,
        "spec": spec,
        "model": result.model,
        "source": "tlc",
        "violated": result.violated,
        "outcome": str(result.outcome),
        "loop_back_to": result.loop_back_to,
    }
    rows: list[dict[str, Any]] = [header]
    for st in result.trace:
        post = {k: v for k, v in st.variables.items() if k != "lastAction"}
        rows.append({"seq": st.index, "action": st.action, "params": st.params, "post": post})
    return rows


def write_trace(result: TlcResult, spec: str, directory: Path) -> Path:
    """Write `<directory>/<model>.ndjson` and return its path."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{result.model}.ndjson"
    with path.open("w") as f:
        for row in trace_records(result, spec):
            f.write(json.dumps(row, sort_keys=False) + "\n")
    return path


def read_trace(path: Path) -> list[dict[str, Any]]:
    """Read an NDJSON trace back (header first)."""
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def render_trace(result: TlcResult) -> str:
    """A readable counterexample: each step's action, then only the variables it changed."""
    out: list[str] = []
    prev: dict[str, str] = {}
    for st in result.trace:
        title = st.action if not st.params else f"{st.action} {st.params}"
        out.append(f"{st.index:3d}. {title}")
        for k, v in st.variables.items():
            if k == "lastAction" or prev.get(k) == v:
                continue
            if st.index == 1 and not prev:
                continue  # the initial state is long and uninteresting
            out.append(f"       {k} = {v}")
        prev = st.variables
    if result.loop_back_to is not None:
        out.append(f"     ... and back to state {result.loop_back_to}, forever")
    return "\n".join(out)
