"""docs/fleet.md lists every key the dashboard keeps in the store: each atedash: name of storage/keys.py
and each part of a fleet job's keys that the code writes or reads."""

import re
from pathlib import Path

from storage import keys

REPO = Path(__file__).resolve().parents[2]
DOC = (REPO / "docs" / "fleet.md").read_text()
FLEET_CODE = [
    REPO / "storage" / "fleet.py",
    REPO / "atedash" / "background" / "lease.py",
    REPO / "atedash" / "background" / "matches.py",
]


def test_every_dashboard_key_of_storage_keys_is_documented():
    names = {
        value
        for name, value in vars(keys).items()
        if isinstance(value, str) and value.startswith(keys.DASHBOARD_PREFIX) and name.isupper()
    }
    names -= {keys.DASHBOARD_PREFIX, keys.FLEET_PREFIX}  # prefixes of the keys below
    assert len(names) >= 9, names
    missing = sorted(n for n in names if f"`{n}" not in DOC)
    assert not missing, f"docs/fleet.md does not list {missing}"


def fleet_parts():
    """Quoted part names passed with a job to the fleet's calls, and the *_part functions' names."""
    parts = set()
    for path in FLEET_CODE:
        text = path.read_text()
        jobs = r"(?:fleet_key|\.set|\.read|\.delete)\(\s*(?:self\.job|WALKS|job), ([^)]*)\)"
        for call in re.finditer(jobs + r"|self\._key\(([^)]*)\)", text):
            parts.update(re.findall(r'(?<![\[\w])"([a-z-]+)"', call.group(1) or call.group(2)))  # not x["kind"]
        parts.update(re.findall(r'return f"([a-z-]+):\{', text))  # walk:<id>, keys:<id>...
        parts.update(re.findall(r'_PART = "([a-z-]+)"', text))
    parts.discard("none")  # a placeholder key no script writes (storage/fleet.py, Lease.beat)
    return parts


def test_every_part_of_the_fleet_jobs_keys_is_documented():
    parts = fleet_parts()
    assert {"lease", "fence", "result", "error", "attempt", "interrupted", "stale"} <= parts
    assert {"walk", "keys", "index", "cancel", "recent"} <= parts
    documented = set(re.findall(r"`atedash:fleet:\{\w+\}:([a-z-]+)", DOC))
    assert parts <= documented, f"docs/fleet.md does not list the parts {sorted(parts - documented)}"
