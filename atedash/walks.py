"""The "show all matches" walks: full-store walks (storage/walk.py) run in the background, one at a time per process.

The registry belongs to the application object (atedash/app.py). A walk is identified by its list
and filters: an operator asking for the same filters while it runs (or after, while its result is
kept) gets the same walk, so that ten operators clicking the same button cost one walk. At most one
walk runs per process; asking for other filters meanwhile says which walk is running, and anyone
who may edit can cancel it. Finished results (at most ``max_results`` keys each) are kept for
``keep_s`` seconds, the last ``keep`` of them.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from storage.walk import FullWalk, WalkFilter, WalkResult

if TYPE_CHECKING:
    from storage import Persistence

log = logging.getLogger(__name__)


@dataclass
class WalkJob:
    id: str
    kind: str  # "actors" | "workers"
    filters: tuple  # WalkFilter.description
    walk: FullWalk
    started_by: str
    started_at: float = field(default_factory=time.time)
    thread: threading.Thread | None = None
    result: WalkResult | None = None
    error: str | None = None
    finished_at: float | None = None

    @property
    def running(self) -> bool:
        return self.finished_at is None

    def state(self) -> tuple[str, WalkResult | None, str | None]:
        """("running" | "failed" | "done", result, error), read once: a page that asked `running` and
        then `result` could see the walk finish in between and show a result that is not there."""
        result, error = self.result, self.error  # set before finished_at (WalkRegistry._run)
        if result is not None:
            return "done", result, None
        if error is not None:
            return "failed", None, error
        return "running", None, None

    @property
    def identity(self) -> tuple:
        return (self.kind, self.filters)


class WalkRegistry:
    def __init__(
        self,
        persistence: Callable[[], Persistence],
        *,
        max_results: int = 100_000,
        keep: int = 4,
        keep_s: float = 600.0,
    ) -> None:
        self._persistence = persistence  # the process's storage.Persistence, when a walk starts
        self.max_results = max_results
        self.keep, self.keep_s = keep, keep_s
        self._lock = threading.Lock()
        self._jobs: list[WalkJob] = []  # newest last

    def _expire_locked(self) -> None:
        now = time.time()
        done = [j for j in self._jobs if not j.running]
        stale = {j.id for j in done if j.finished_at is not None and now - j.finished_at > self.keep_s}
        stale |= {j.id for j in done[: max(0, len(done) - self.keep)]}
        self._jobs = [j for j in self._jobs if j.id not in stale]

    def find(self, kind: str, wanted: WalkFilter) -> WalkJob | None:
        with self._lock:
            self._expire_locked()
            for job in reversed(self._jobs):
                if job.identity == (kind, wanted.description):
                    return job
        return None

    def get(self, job_id: str) -> WalkJob | None:
        with self._lock:
            self._expire_locked()
            return next((j for j in self._jobs if j.id == job_id), None)

    def running(self) -> WalkJob | None:
        with self._lock:
            return next((j for j in self._jobs if j.running), None)

    def start(
        self,
        kind: str,
        wanted: WalkFilter,
        operator: str,
        *,
        fresh: bool = False,
        may_start: Callable[[], bool] | None = None,
    ) -> tuple[WalkJob | None, bool]:
        """(job, True) for the walk of these filters (running, or kept and not cancelled unless
        `fresh`), started if need be; (the running job, False) when another walk is running;
        (None, False) when a new walk would start and `may_start()` says no (a rate limit)."""
        with self._lock:
            self._expire_locked()
            for job in reversed(self._jobs):
                if job.identity == (kind, wanted.description) and (
                    job.running or (not fresh and job.result is not None and not job.result.cancelled)
                ):
                    return job, True
            busy = next((j for j in self._jobs if j.running), None)
            if busy is not None:
                return busy, False
            if may_start is not None and not may_start():
                return None, False
            walk = FullWalk(self._persistence().topology, wanted, max_results=self.max_results)
            job = WalkJob(secrets.token_hex(8), kind, wanted.description, walk, operator)
            self._jobs = [j for j in self._jobs if j.identity != job.identity] + [job]
            job.thread = threading.Thread(target=self._run, args=(job,), name="atedash-walk", daemon=True)
            job.thread.start()
            return job, True

    def _run(self, job: WalkJob) -> None:
        try:
            result = job.walk.run()
        except Exception as exc:  # noqa: BLE001 - shown on the page that follows the walk
            log.warning("walk %s failed: %s", job.id, exc)
            with self._lock:
                job.error = f"{type(exc).__name__}: {exc}"
                job.finished_at = time.time()
            return
        with self._lock:
            job.result = result
            job.finished_at = time.time()

    def cancel(self, job_id: str) -> bool:
        job = self.get(job_id)
        if job is None or not job.running:
            return False
        job.walk.cancel()
        return True

    def close(self, timeout: float) -> None:
        with self._lock:
            jobs = [j for j in self._jobs if j.running]
        for job in jobs:
            job.walk.cancel()
        for job in jobs:
            if job.thread is not None:
                job.thread.join(timeout)
