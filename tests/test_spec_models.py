"""Every CI model of models/manifest.json, run through TLC: the numbers must match the manifest.

The TLC runs happen once, two at a time (one TLC worker each), in a module-scoped fixture;
each model then gets its own test. Correct models must pass with the exact distinct-state count
and depth; each bug model must fail with exactly its named invariant (or property).
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from zkref.conform.manifest import Manifest, ModelEntry, load_manifest
from zkref.conform.tlc import JAVA, Outcome, TlcResult, repo_root, run_tlc

MANIFEST = load_manifest()
CI = MANIFEST.ci_models()
ROOT = repo_root()

pytestmark = [
    pytest.mark.skipif(not Path(JAVA).exists(), reason="needs Java for TLC"),
    # all CI models run in the first test's fixture (~130 s on 2 quiet cores)
    pytest.mark.timeout(1200),
]


@pytest.fixture(scope="module")
def results() -> dict[str, TlcResult]:
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {m.name: pool.submit(run_tlc, m.module, m.config) for m in CI}
        return {name: f.result() for name, f in futures.items()}


@pytest.mark.parametrize("entry", CI, ids=[m.name for m in CI])
def test_model_matches_manifest(entry: ModelEntry, results: dict[str, TlcResult]) -> None:
    r = results[entry.name]
    assert r.outcome is not Outcome.ERROR, r.error
    assert r.outcome is entry.expect
    assert r.violated == entry.violated
    assert r.distinct_states == entry.distinct_states
    assert r.depth == entry.depth
    if entry.expect is not Outcome.PASS:
        # a counterexample is a path from Init whose steps all carry an action name
        assert r.trace and r.trace[0].action == "Init"
        assert all(s.action and s.action != "Init" for s in r.trace[1:])


def _cfg_invariants(cfg: Path) -> list[str]:
    text = cfg.read_text()
    m = re.search(r"^INVARIANTS?\n((?:[ \t]+\w+\n?)+)", text, re.MULTILINE)
    return m.group(1).split() if m else []


def _spec_invariants(manifest: Manifest) -> dict[str, set[str]]:
    """Invariants checked by the correct CI models, per spec (TypeOK aside)."""
    out: dict[str, set[str]] = {}
    for m in manifest.ci_models():
        if m.kind == "correct":
            invs = set(_cfg_invariants(ROOT / "models" / m.config)) - {"TypeOK"}
            out.setdefault(m.spec, set()).update(invs)
    return out


def test_every_invariant_has_a_failing_bug_model_in_ci() -> None:
    invariants = _spec_invariants(MANIFEST)
    assert invariants["Zab"] >= {
        "Leadership",
        "PrefixConsistency",
        "Integrity",
        "Agreement",
        "TotalOrder",
        "LocalPrimaryOrder",
        "GlobalPrimaryOrder",
        "PrimaryIntegrity",
        "CommittedLogDurability",
        "ProcessConsistency",
    }
    violated = {(m.spec, m.violated) for m in CI if m.kind != "correct"}
    for spec, names in invariants.items():
        for name in names:
            assert (spec, name) in violated, f"no CI bug model violates {spec}.{name}"


def test_bug_models_check_only_their_invariant() -> None:
    # so that "TLC reports exactly this invariant" means this bug, not an earlier one in the list
    for m in CI:
        if m.kind != "correct" and m.expect is Outcome.INVARIANT:
            assert _cfg_invariants(ROOT / "models" / m.config) == [m.violated], m.name


def test_historical_bugs_are_modelled() -> None:
    expected = {
        "MCFLE_ZOOKEEPER_1419": "ElectionTerminates",
        "MCZab_ZOOKEEPER_2845": "ProcessConsistency",
        "MCZab_ZOOKEEPER_3911": "CommittedLogDurability",
        "MCZab_ZOOKEEPER_4643": "CommittedLogDurability",
    }
    for name, inv in expected.items():
        entry = MANIFEST.get(name)
        assert entry.ci and entry.kind == "historical" and entry.violated == inv


def test_correct_models_enable_no_bug() -> None:
    for m in MANIFEST.models:
        text = (ROOT / "models" / m.config).read_text()
        enabled = re.findall(r"^\s*(BUG_\w+) = TRUE", text, re.MULTILINE)
        if m.kind in ("correct", "witness"):  # a witness: the correct spec reaches a behaviour
            assert enabled == [], m.name
        else:
            assert len(enabled) == 1, m.name


def test_ci_budget_in_manifest() -> None:
    # two TLC processes at a time: the CPU time of all CI models over two cores
    total_cpu = sum(m.cpu_seconds for m in CI)
    assert total_cpu / 2 < 360, total_cpu
