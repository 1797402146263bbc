"""`models/manifest.json`: every model, what TLC must report for it, and whether CI runs it.

Rules:
- A correct model expects `pass` with exact `distinct_states` and `depth` (whole state space).
- A bug model expects `invariant` (or `property`) with the exact name in `violated`; its
  `distinct_states`/`depth` are where single-worker BFS finds the first violation.
- A changed count is a failure until the manifest is updated on purpose.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zkref.conform.tlc import Outcome, TlcResult, repo_root


@dataclass(frozen=True, slots=True)
class ModelEntry:
    """One model of `models/manifest.json`."""

    name: str
    module: str
    spec: str
    kind: str  # "correct" | "planted" | "historical" | "witness" (the correct spec must violate
    # `violated`: a behaviour the spec allows is reachable)
    ci: bool
    expect: Outcome
    violated: str | None
    distinct_states: int
    depth: int
    seconds: float
    cpu_seconds: float
    description: str

    @property
    def config(self) -> str:
        return f"{self.name}.cfg"

    def mismatches(self, result: TlcResult) -> list[str]:
        """How `result` differs from what the manifest expects (empty: it matches)."""
        diffs: list[str] = []
        if result.outcome is not self.expect:
            diffs.append(f"outcome {result.outcome} != expected {self.expect}")
        if result.violated != self.violated:
            diffs.append(f"violated {result.violated} != expected {self.violated}")
        if result.distinct_states != self.distinct_states:
            diffs.append(f"distinct states {result.distinct_states} != {self.distinct_states}")
        if result.depth != self.depth:
            diffs.append(f"depth {result.depth} != {self.depth}")
        return diffs


@dataclass(frozen=True, slots=True)
class Manifest:
    """All models, in manifest order."""

    path: Path
    models: tuple[ModelEntry, ...]

    def get(self, name: str) -> ModelEntry:
        for m in self.models:
            if m.name == name:
                return m
        raise KeyError(name)

    def ci_models(self) -> tuple[ModelEntry, ...]:
        return tuple(m for m in self.models if m.ci)


def _entry(raw: dict[str, Any]) -> ModelEntry:
    return ModelEntry(
        name=str(raw["name"]),
        module=str(raw["module"]),
        spec=str(raw["spec"]),
        kind=str(raw["kind"]),
        ci=bool(raw["ci"]),
        expect=Outcome(raw["expect"]),
        violated=None if raw.get("violated") is None else str(raw["violated"]),
        distinct_states=int(raw["distinct_states"]),
        depth=int(raw["depth"]),
        seconds=float(raw["seconds"]),
        cpu_seconds=float(raw.get("cpu_seconds", 0.0)),
        description=str(raw.get("description", "")),
    )


def load_manifest(path: Path | None = None) -> Manifest:
    """Read `models/manifest.json` (or `path`)."""
    p = path or repo_root() / "models" / "manifest.json"
    data = json.loads(p.read_text())
    return Manifest(path=p, models=tuple(_entry(r) for r in data["models"]))
