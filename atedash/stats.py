"""Store statistics for the overview, computed in a background thread.

`store_stats()` walks the whole store, so a request never waits for it: the overview shows the last
result with its age and starts a new computation when that result is older than
ATEDASH_STATS_MAX_AGE seconds, or than RECOUNT_FACTOR times the last count's duration when that is
longer (a count of a million records takes seconds of a worker's CPU: counting never takes more than
about a tenth of it). At most one computation runs per process at a time; "Recount now" forces one.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Any

from atedash.background import BackgroundComputation

if TYPE_CHECKING:
    from atedash.store import StoreConnection
    from storage import StoreStats

Pool = tuple[str, str]  # (namespace, pool)

RECOUNT_FACTOR = 10


class StatsCache(BackgroundComputation):
    thread_name = "atedash-stats"
    what = "store statistics"
    result: StoreStats | None  # storage.StoreStats of the last successful run

    def __init__(self, store: StoreConnection, max_age: float) -> None:
        self.store = store  # atedash.store.StoreConnection
        self.max_age = max_age  # ATEDASH_STATS_MAX_AGE
        # (the StoreStats they were built from, {name: value})
        self._derived: tuple[StoreStats | None, dict[Hashable, Any]] = (None, {})
        super().__init__()

    def _compute(self) -> StoreStats:
        return self.store.persistence().store_stats()

    def _keep_result(self, result: StoreStats) -> None:
        self.result = result

    def _clear_result(self) -> None:
        self.result = None

    def snapshot(self) -> tuple[StoreStats | None, str | None, bool]:
        """(result, error, running) as they are now, starting a computation when due."""
        self.ensure_fresh()
        with self._lock:
            return self.result, self.error, self._running_locked()

    def ensure_fresh(self) -> None:
        max_age = self.max_age
        with self._lock:
            if self._running_locked():
                return
            now = time.time()
            result = self.result
            if result is not None and self.error is None:
                if now - result.computed_at < max(max_age, RECOUNT_FACTOR * result.duration_s):
                    return
            if self._failed_recently_locked(now, max_age):
                return
            self._start_locked()

    def interval(self, result: StoreStats) -> float:
        """How old counts may get before a recount is due: past it, they are stale."""
        return max(self.max_age, RECOUNT_FACTOR * result.duration_s)

    def ensure_started_after(self, since: float) -> None:
        """Start a computation unless one is running or the last one started after ``since``.

        "Recount now" hands its time to the poll that follows it; gunicorn may route that poll to
        another worker process, whose own counts must then be at least as recent as the request.
        """
        with self._lock:
            if self._running_locked():
                return
            if self.result is not None and self.result.computed_at >= since:
                return
            self._start_locked()

    def known_pools(self, namespace: str | None = None) -> list[Pool]:
        """(namespace, pool) pairs the last count saw, for one namespace or all; [] before any count.

        Used to read a worker directly by key (worker:<ns>:<pool>:<pod>) instead of scanning for it.
        """
        result = self.result
        if result is None:
            return []
        return self.derived(result, "pools_by_namespace", _pools_by_namespace).get(namespace, [])

    def derived(self, result: StoreStats, name: Hashable, build: Callable[[StoreStats], Any]) -> Any:
        """build(result), built once per result (e.g. the overview's rows); the last result's only."""
        built_from, values = self._derived
        if built_from is not result:
            values = {}
            self._derived = (result, values)
        if name not in values:
            values[name] = build(result)
        return values[name]


def _pools_by_namespace(result: StoreStats) -> dict[str | None, list[Pool]]:
    index: dict[str | None, list[Pool]] = {}
    for ns, pool in sorted(result.workers_by_pool):
        index.setdefault(ns, []).append((ns, pool))
        index.setdefault(None, []).append((ns, pool))
    return index
