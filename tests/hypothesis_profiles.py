"""How hard hypothesis tries, chosen by HYPOTHESIS_PROFILE: `ci` (the default; `make test`) runs every
property test at its full count, `dev` (`make check`) at most about a hundred examples, for a fast loop.

tests/conftest.py imports this module first, so the profile is loaded before any test module is.
A test that needs its own count says both: `@settings(max_examples=examples(1500, dev=100))`.
"""

from __future__ import annotations

import os

from hypothesis import settings

PROFILES = ("ci", "dev")
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")
if PROFILE not in PROFILES:
    raise RuntimeError(f"HYPOTHESIS_PROFILE={PROFILE!r} is not one of {', '.join(PROFILES)}")

# Tests with no count of their own: hypothesis' default in both.
settings.register_profile("ci", max_examples=100)
settings.register_profile("dev", max_examples=100)
settings.load_profile(PROFILE)


def examples(ci: int, dev: int = 100) -> int:
    """A property test's example count: `ci` under the ci profile, at most `dev` under dev."""
    return ci if PROFILE == "ci" else min(ci, dev)
