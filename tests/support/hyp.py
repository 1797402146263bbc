"""Typed access to Hypothesis helpers whose annotations differ between Hypothesis versions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from hypothesis import stateful

# Untyped in older Hypothesis releases, typed in newer ones: one alias keeps mypy --strict clean
# with both (a `type: ignore` would be "unused" with the newer ones).
run_state_machine_as_test = cast(Callable[..., None], cast(Any, stateful).run_state_machine_as_test)
