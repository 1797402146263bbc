"""Hypothesis profiles, witness tallies, and typed access to Hypothesis helpers.

Profiles (one place; `tests/conftest.py` imports this module, which loads the profile named by
the environment variable HYPOTHESIS_PROFILE, default `ci`):

- `ci`: bounded and deterministic (`derandomize=True`, no example database), so the witness
  (vacuity) checks below see the same runs every time and CI cannot flake;
- `nightly`: `NIGHTLY_FACTOR` times the examples of `ci` (per machine, so the machines keep
  their proportions), twice the steps, random seeds:
  `HYPOTHESIS_PROFILE=nightly python -m pytest -q --timeout=0 tests/test_sim_zab_props.py ...`
  (`--timeout=0`: the 300 s per-test limit of pyproject would stop a nightly machine).

A state machine takes its settings from `machine_settings(examples, steps)`, which scales the
machine's own `ci` figures by the loaded profile.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any, cast

from hypothesis import HealthCheck, Phase, event, seed, settings, stateful

# Untyped in older Hypothesis releases, typed in newer ones: one alias keeps mypy --strict clean
# with both (a `type: ignore` would be "unused" with the newer ones).
run_state_machine_as_test = cast(Callable[..., None], cast(Any, stateful).run_state_machine_as_test)
_get_state_machine_test = cast(Callable[..., Any], cast(Any, stateful).get_state_machine_test)

NIGHTLY_FACTOR = 25
_SCALE = {"ci": (1, 1), "nightly": (NIGHTLY_FACTOR, 2)}  # (examples, steps) multipliers

settings.register_profile(
    "ci",
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "nightly",
    deadline=None,
    derandomize=False,
    print_blob=True,
    max_examples=100 * NIGHTLY_FACTOR,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")
assert PROFILE in _SCALE, f"HYPOTHESIS_PROFILE={PROFILE!r}: expected one of {sorted(_SCALE)}"
settings.load_profile(PROFILE)


def machine_settings(examples: int, steps: int, **kw: Any) -> settings:
    """A machine's settings: its `ci` example and step counts, scaled by the loaded profile."""
    fx, fs = _SCALE[PROFILE]
    return settings(
        settings.get_profile(PROFILE),
        max_examples=examples * fx,
        stateful_step_count=steps * fs,
        **kw,
    )


CI_SEEDS = (1, 2, 3, 4)


def run_machine(
    factory: Callable[[], stateful.RuleBasedStateMachine], examples: int, steps: int
) -> None:
    """Run a state machine for `examples` runs of up to `steps` steps (scaled by the profile).

    In `ci` the runs are split over the fixed seeds `CI_SEEDS`: deterministic (no flakes, and
    the witness checks see the same runs every time) yet not one derandomized stream, whose
    runs Hypothesis draws as near-copies of each other. Elsewhere: random seeds."""
    if PROFILE != "ci":
        run_state_machine_as_test(factory, settings=machine_settings(examples, steps))
        return
    per_seed = -(-examples // len(CI_SEEDS))
    for s in CI_SEEDS:
        test = _get_state_machine_test(factory, settings=machine_settings(per_seed, steps))
        seed(s)(test)()


def hunt(
    factory: Callable[[], stateful.RuleBasedStateMachine],
    examples: int,
    steps: int,
    seeds: tuple[int, ...] = CI_SEEDS,
) -> None:
    """Search for a planted bug: up to `examples` runs on each of `seeds` in turn
    (deterministic, generate only); raises the first failure found, returns if none is."""
    for s in seeds:
        test = _get_state_machine_test(factory, settings=hunt_settings(examples, steps))
        seed(s)(test)()


def hunt_settings(examples: int, steps: int) -> settings:
    """For a test that a machine finds a planted bug: generate only (found is enough, no
    shrinking), deterministic in every profile so that the test itself never flakes."""
    return settings(
        machine_settings(examples, steps),
        derandomize=True,
        database=None,
        phases=[Phase.generate],
    )


class Witnesses:
    """Which interesting states a machine's runs reached (over the whole pytest session).

    A machine calls `saw(name)` when it reaches one (also a Hypothesis `event`, shown by
    `--hypothesis-show-statistics`); a later test calls `check()`, which fails naming the
    witnesses never reached: the machine's invariants held vacuously there."""

    def __init__(self, names: Iterable[str]) -> None:
        self.names = tuple(names)
        self.counts: dict[str, int] = dict.fromkeys(self.names, 0)
        self.runs = 0

    def saw(self, name: str) -> None:
        assert name in self.counts, name
        self.counts[name] += 1
        event(f"witness: {name}")

    def started(self) -> None:
        """One more run of the machine (its @initialize calls this)."""
        self.runs += 1

    def missing(self) -> list[str]:
        return [n for n in self.names if self.counts[n] == 0]

    def check(self, run: Callable[[], None]) -> None:
        """`run` runs the machine's TestCase when this session has not (e.g. `-k witness`)."""
        if self.runs == 0:
            run()
        assert self.runs > 0
        missing = self.missing()
        assert not missing, (
            f"never reached in {self.runs} runs (the invariants held vacuously there):"
            f" {missing}; reached: {self.counts}"
        )
