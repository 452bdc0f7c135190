"""atedash next to the Go store itself: the seed's ateredis package behind the `ateref` CLI.

The Go reference lives in ATEDASH_GOREF_DIR, by default <repo>/../shared/goref, else
/work/shared/goref. Its build.sh builds `ateref` once per session (offline; ~25 s the first time,
at once afterwards). Where no reference is present (a clone elsewhere), every test here skips with
one line saying so; where one is present but does not build, they fail.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent.parent
NO_GOREF = "no Go reference (goref)"


def goref_dir() -> tuple[Path | None, str]:
    """(the goref directory, or None and why not)."""
    env = os.environ.get("ATEDASH_GOREF_DIR")
    if env:
        candidates = [Path(env)]
    else:
        candidates = [REPO.parent / "shared" / "goref", Path("/work/shared/goref")]
    for candidate in candidates:
        if (candidate / "build.sh").is_file():
            return candidate, ""
    where = " nor ".join(str(c) for c in candidates)
    return None, f"{NO_GOREF} at {where}: set ATEDASH_GOREF_DIR to run the interop tests"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    # Every test here skips for the same reason when there is no Go reference: report them all at
    # this file's location so that `-ra` shows one line, not one per test.
    outcome = yield
    report = outcome.get_result()
    if report.skipped and isinstance(report.longrepr, tuple) and NO_GOREF in str(report.longrepr[2]):
        report.longrepr = (__file__, 0, report.longrepr[2])


@pytest.fixture(scope="session")
def ateref_bin() -> str:
    """Path of the built ateref binary (skips when there is no Go reference)."""
    directory, why = goref_dir()
    if directory is None:
        pytest.skip(why)
    # One build at a time: under pytest-xdist each worker asks for the binary (build.sh reuses a fresh one).
    with open(Path(tempfile.gettempdir()) / "atedash-goref-build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        proc = subprocess.run([str(directory / "build.sh")], capture_output=True, text=True, timeout=600, check=False)
    if proc.returncode != 0:
        pytest.fail(f"{directory}/build.sh failed ({proc.returncode}):\n{proc.stderr[-3000:]}", pytrace=False)
    path = proc.stdout.strip().splitlines()[-1]
    assert os.access(path, os.X_OK), f"build.sh did not print an executable: {path!r}"
    return path


def go_text(line: str) -> str:
    """protobuf-go writes "proto:" with a U+00A0 in some binaries; ours has a plain space."""
    return line.replace("proto:\xa0", "proto: ")


class Ateref:
    """Runs `ateref ADDR OP ARGS...` against the test cluster; returns its output lines."""

    def __init__(self, binary: str, addr: str):
        self.binary = binary
        self.addr = addr

    def __call__(self, *args: str) -> list[str]:
        proc = subprocess.run([self.binary, self.addr, *args], capture_output=True, timeout=60, check=False)
        assert proc.returncode == 0, proc.stderr.decode("utf-8", "replace")
        # split("\n"), not splitlines(): Go writes U+2028 unescaped inside a line.
        lines = proc.stdout.decode("utf-8", "replace").rstrip("\n").split("\n")
        return [go_text(line) for line in lines if not line.startswith("Flushing shard:")]

    def one(self, *args: str) -> str:
        lines = self(*args)
        assert len(lines) == 1, lines
        return lines[0]


@pytest.fixture(scope="session")
def ateref(ateref_bin, cluster_port) -> Ateref:
    return Ateref(ateref_bin, f"127.0.0.1:{cluster_port}")
