"""Settings fail loudly on a value they cannot read: a typo never silently means the default."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def load_settings(**env):
    """Imports atedash.settings in a fresh interpreter with `env` (on top of a debug environment)."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("ATEDASH_")}
    environment.pop("PYTEST_VERSION", None)
    environment.update({"ATEDASH_DEBUG": "1", **env})
    return subprocess.run(
        [sys.executable, "-c", "import atedash.settings as s; print(s.ATEDASH_ALLOW_FLUSH, s.ATEDASH_SCAN_BUDGET)"],
        cwd=REPO,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    "name, value, says",
    [
        ("ATEDASH_ALLOW_FLUSH", "ture", "is not a yes/no value"),
        ("ATEDASH_HTTPS", "enabled", "is not a yes/no value"),
        ("ATEDASH_SCAN_BUDGET", "50k", "is not a whole number"),
        ("ATEDASH_SCAN_SECONDS", "half", "is not a number"),
        ("ATEDASH_REDIS_CLUSTER", "maybe", "is not one of auto, yes, no"),
        ("ATEDASH_AUDIT_MAXLEN", "100k", "is not a whole number"),
        ("ATEDASH_AUDIT_MAXLEN", "0", "is too small: at least 1"),
        ("ATEDASH_AUDIT_MAXLEN", "-5", "is too small: at least 1"),
        ("ATEDASH_FLEET_LEASE_SECONDS", "1.5", "is too small: at least 2"),
    ],
)
def test_an_unreadable_value_stops_the_process_with_its_name(name, value, says):
    result = load_settings(**{name: value})
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and name in result.stderr and says in result.stderr


@pytest.mark.parametrize("value, expected", [("yes", "True"), ("ON", "True"), ("0", "False"), ("", "False")])
def test_readable_values(value, expected):
    result = load_settings(ATEDASH_ALLOW_FLUSH=value, ATEDASH_SCAN_BUDGET="1234")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [expected, "1234"]
