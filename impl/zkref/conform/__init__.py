"""zkref.conform: the bridge between the TLA+ specs and Python (TLC runner, manifest, traces)."""

from zkref.conform.manifest import Manifest, ModelEntry, load_manifest
from zkref.conform.tlc import Outcome, Progress, TlcResult, TraceState, run_tlc

__all__ = [
    "Manifest",
    "ModelEntry",
    "Outcome",
    "Progress",
    "TlcResult",
    "TraceState",
    "load_manifest",
    "run_tlc",
]
