"""Store statistics for the overview, computed in a background thread.

`store_stats()` walks the whole store, so a request never waits for it: the overview shows the last
result with its age and starts a new computation when that result is older than
ATEDASH_STATS_MAX_AGE seconds, or than RECOUNT_FACTOR times the last count's duration when that is
longer (a count of a million records takes seconds of a worker's CPU: counting never takes more than
about a tenth of it). At most one computation runs per process at a time; "Recount now" forces one.
"""

import logging
import threading
import time

from django.conf import settings

from atedash import store

log = logging.getLogger(__name__)

RECOUNT_FACTOR = 10


class StatsCache:
    def __init__(self):
        self._lock = threading.Lock()
        self._thread = None
        self.result = None  # storage.StoreStats of the last successful run
        self.error = None  # str: why the last run failed
        self.error_at = None
        self.generation = 0  # bumped by reset(): a run started before a reset is discarded

    def snapshot(self):
        """(result, error, running) as they are now, starting a computation when due."""
        self.ensure_fresh()
        with self._lock:
            running = self._thread is not None and self._thread.is_alive()
            return self.result, self.error, running

    def ensure_fresh(self):
        max_age = settings.ATEDASH_STATS_MAX_AGE
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            now = time.time()
            result = self.result
            if result is not None and self.error is None:
                if now - result.computed_at < max(max_age, RECOUNT_FACTOR * result.duration_s):
                    return
            if self.error_at is not None and now - self.error_at < min(max_age, 5):
                return  # the store just failed: do not hammer it
            self._start_locked()

    def refresh(self):
        """Start a computation now unless one is running; returns the thread running it."""
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._start_locked()
            return self._thread

    def ensure_started_after(self, since):
        """Start a computation unless one is running or the last one started after ``since``.

        "Recount now" hands its time to the poll that follows it; gunicorn may route that poll to
        another worker process, whose own counts must then be at least as recent as the request.
        """
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            if self.result is not None and self.result.computed_at >= since:
                return
            self._start_locked()

    def wait(self, timeout=None):
        """Block until the running computation (if any) is done (used by tests and by ?wait)."""
        with self._lock:
            thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def reset(self):
        with self._lock:
            self.generation += 1
            self.result = None
            self.error = None
            self.error_at = None

    def _start_locked(self):
        generation = self.generation
        thread = threading.Thread(target=self._run, args=(generation,), name="atedash-stats", daemon=True)
        self._thread = thread
        thread.start()

    def _run(self, generation):
        try:
            result = store.get_persistence().store_stats()
        except Exception as exc:  # noqa: BLE001 - reported on the overview page
            log.warning("store statistics failed: %s", exc)
            with self._lock:
                if generation == self.generation:
                    self.error = f"{type(exc).__name__}: {exc}"
                    self.error_at = time.time()
            return
        with self._lock:
            if generation == self.generation:
                self.result = result
                self.error = None
                self.error_at = None


cache = StatsCache()

_pools_index = (None, {})  # (the StoreStats it was built from, {namespace: [(ns, pool), ...]})


def known_pools(namespace=None):
    """(namespace, pool) pairs the last count saw, for one namespace or all; [] before any count.

    Used to read a worker directly by key (worker:<ns>:<pool>:<pod>) instead of scanning for it.
    """
    global _pools_index
    result = cache.result
    if result is None:
        return []
    built_from, index = _pools_index
    if built_from is not result:
        index = {}
        for ns, pool in sorted(result.workers_by_pool):
            index.setdefault(ns, []).append((ns, pool))
            index.setdefault(None, []).append((ns, pool))
        _pools_index = (result, index)
    return index.get(namespace, [])


def reset():
    cache.reset()
