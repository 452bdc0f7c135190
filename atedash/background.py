"""A result computed in a background thread, at most one computation at a time per process.

Whole-store walks (the overview's counts, the consistency check) take seconds at a million records,
so no request waits for one: pages show the last result with its age and start a new computation
when it is due. A reset (the store's URL changed) discards a computation that started before it.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

log = logging.getLogger(__name__)


class BackgroundComputation:
    thread_name = "atedash-background"
    what = "background computation"  # for the log line when it fails

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.error: str | None = None  # why the last run failed
        self.error_at: float | None = None  # time.time() of that failure
        self.generation = 0  # bumped by reset(): a run started before a reset is discarded
        self._clear_result()

    # Subclasses: what is computed, and how its result is kept.
    def _compute(self) -> Any:
        raise NotImplementedError

    def _keep_result(self, result: Any) -> None:
        """Store a successful run's result (called with the lock held)."""
        raise NotImplementedError

    def _clear_result(self) -> None:
        raise NotImplementedError

    def _running_locked(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _failed_recently_locked(self, now: float, max_age: float) -> bool:
        """The store just failed: do not hammer it."""
        return self.error_at is not None and now - self.error_at < min(max_age, 5)

    def refresh(self) -> threading.Thread | None:
        """Start a computation now unless one is running; returns the thread running it."""
        with self._lock:
            if not self._running_locked():
                self._start_locked()
            return self._thread

    def wait(self, timeout: float | None = None) -> None:
        """Block until the running computation (if any) is done."""
        with self._lock:
            thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def reset(self) -> None:
        with self._lock:
            self.generation += 1
            self._clear_result()
            self.error = None
            self.error_at = None

    def _start_locked(self) -> None:
        thread = threading.Thread(target=self._run, args=(self.generation,), name=self.thread_name, daemon=True)
        self._thread = thread
        thread.start()

    def _run(self, generation: int) -> None:
        try:
            result = self._compute()
        except Exception as exc:  # noqa: BLE001 - reported on the page that shows the result
            log.warning("%s failed: %s", self.what, exc)
            with self._lock:
                if generation == self.generation:
                    self.error = f"{type(exc).__name__}: {exc}"
                    self.error_at = time.time()
            return
        with self._lock:
            if generation == self.generation:
                self._keep_result(result)
                self.error = None
                self.error_at = None
