"""The benchmarks stay runnable: each script in bench/ starts (--help), and the one that needs no Redis
(rows_bench: listing.py against its template loops, markup compared before timing) runs through.

They are not timed tests; this only keeps a refactor from breaking their imports unnoticed."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.process
SCRIPTS = sorted(p.name for p in (REPO / "bench").glob("*.py"))


def _run(*args):
    env = dict(os.environ, ATEDASH_SECRET_KEY=secrets.token_urlsafe(50), DJANGO_SETTINGS_MODULE="atedash.settings")
    env.pop("ATEDASH_DEBUG", None)
    return subprocess.run([sys.executable, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)


def test_there_are_benchmarks():
    assert "storage_bench.py" in SCRIPTS and "http_bench.py" in SCRIPTS and "rows_bench.py" in SCRIPTS


@pytest.mark.parametrize("script", SCRIPTS)
def test_a_benchmark_starts(script):
    done = _run(f"bench/{script}", "--help")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "usage:" in done.stdout


def test_rows_bench_runs_and_its_templates_still_match_the_listing():
    done = _run("bench/rows_bench.py", "--rows", "20", "--renders", "1", "--repeat", "1")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "actors" in done.stdout and "workers" in done.stdout
