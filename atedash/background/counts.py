"""Store statistics for the overview and /metrics: one count for the whole fleet, kept in the store.

`store_stats()` walks the whole store, so a request never waits for it: every process shows the
stored result (atedash:fleet:{stats}:result) with its age and maker, and starts a new computation
when that result is older than ATEDASH_STATS_MAX_AGE seconds, or than RECOUNT_FACTOR times the last
count's duration when that is longer. At most one computation runs in the fleet at a time (a lease,
atedash/background/lease.py); "Recount now" from any process starts at most one.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Any

from atedash.background.lease import LeasedComputation

if TYPE_CHECKING:
    from atedash.core.store import StoreConnection
    from storage import StoreStats
    from storage.fleet import Lease

Pool = tuple[str, str]  # (namespace, pool)

RECOUNT_FACTOR = 10
MAX_POOLS = 10_000  # pools kept in the stored counts


class StatsCache(LeasedComputation):
    job = "stats"
    thread_name = "atedash-stats"
    what = "store statistics"
    step_keys = 1000  # keys per SCAN step (ATEDASH_STORE_STEP_KEYS)
    parallel = 2  # shards counted at once, 0: all (ATEDASH_COUNT_PARALLEL)

    def __init__(self, store: StoreConnection, max_age: float) -> None:
        super().__init__(store, max_age)  # ATEDASH_STATS_MAX_AGE
        # (the StoreStats they were built from, {name: value})
        self._derived: tuple[StoreStats | None, dict[Hashable, Any]] = (None, {})

    def _compute(self) -> StoreStats:
        return self.store.persistence().on_replicas().store_stats(self.step_keys, self.parallel)

    def _to_stored(self, result: StoreStats, lease: Lease) -> dict:
        return {"stats": result.to_dict(MAX_POOLS)}

    def _from_stored(self, data: dict) -> StoreStats:
        from storage import StoreStats

        return StoreStats.from_dict(data["stats"])

    def _due(self, result: StoreStats, envelope: dict, stale_at: float) -> bool:
        age = time.time() - result.computed_at
        return result.computed_at < stale_at or age >= max(self.max_age, RECOUNT_FACTOR * result.duration_s)

    @property
    def result(self) -> StoreStats | None:
        """The fleet's last counts (None before any, or when the store does not answer)."""
        return self.state()[0]

    @property
    def error(self) -> str | None:
        return self.state()[2]

    def snapshot(self) -> tuple[StoreStats | None, str | None, bool]:
        """(result, error, running) as stored now, starting a computation when due."""
        result, _envelope, error, running = self.state(start_if_due=True)
        return result, error, running

    def maker(self) -> str:
        """host:pid of the process that made the stored counts ("" when unknown)."""
        return str(self.state()[1].get("maker", ""))[:200]

    def interval(self, result: StoreStats) -> float:
        """How old counts may get before a recount is due: past it, they are stale."""
        return max(self.max_age, RECOUNT_FACTOR * result.duration_s)

    def ensure_started_after(self, since: float) -> None:
        """Start a computation unless one is running or the stored counts started after ``since``."""
        result, _envelope, _error, running = self.state()
        if running or (result is not None and result.computed_at >= since):
            return
        self._start()

    def known_pools(self, namespace: str | None = None) -> list[Pool] | None:
        """(namespace, pool) pairs the fleet's last count saw, for one namespace or all; None before
        any count (unknown, as opposed to [] for a namespace without pools).

        Used to read a worker directly by key (worker:<ns>:<pool>:<pod>) instead of scanning for it.
        """
        result = self.result
        if result is None:
            return None
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
