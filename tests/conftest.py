"""Loads the Hypothesis profile named by HYPOTHESIS_PROFILE (default `ci`; see support/hyp.py)."""

import support.hyp  # noqa: F401  (registers and loads the profiles)
