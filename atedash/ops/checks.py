"""The last consistency check of this process, computed in a background thread.

A full check walks the whole store (about 2 s per 100k actors), so no request waits for one: the
check page and /metrics show the last report with its age, and a new check starts when that report is
older than ATEDASH_CHECK_MAX_AGE seconds (or when an operator asks). At most one runs at a time.

Every gunicorn worker process has its own cache, so a change made through atedash (a repair, an edit,
an import...) sets a new random marker in the store (storage.keys.CHECK_EPOCH_KEY, see ``invalidate``): a
process whose report was computed under another marker treats it as stale, so /metrics never reports
a finding that was repaired through another process for longer than one scrape. The Consistency page
itself starts a fresh check whenever it is opened.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from atedash.background import BackgroundComputation

if TYPE_CHECKING:
    from atedash.store import StoreConnection
    from storage.consistency import CheckReport

log = logging.getLogger(__name__)


class CheckCache(BackgroundComputation):
    thread_name = "atedash-check"
    what = "consistency check"
    report: CheckReport | None  # of the last successful run
    epoch: bytes | None  # the store's change marker when that run started
    finished_at: float | None

    def __init__(self, store: StoreConnection, max_age: float) -> None:
        self.store = store  # atedash.store.StoreConnection
        self.max_age = max_age  # ATEDASH_CHECK_MAX_AGE
        super().__init__()

    def current_epoch(self) -> bytes | None:
        """The store's change marker (b"" when none was set, e.g. after a flush); None when the store
        cannot say."""
        try:
            return self.store.persistence().check_epoch()
        except Exception:  # noqa: BLE001 - an unreachable store shows up elsewhere
            return None

    def invalidate(self) -> None:
        """Marks every process's last report stale (called after each change made through atedash)."""
        try:
            self.store.persistence().bump_check_epoch()
        except Exception as exc:  # noqa: BLE001 - the reports age out anyway
            log.warning("could not mark consistency reports stale: %s", exc)

    def _compute(self) -> tuple[bytes | None, CheckReport]:
        from storage.consistency import run_check

        epoch = self.current_epoch()
        return epoch, run_check(self.store.persistence())

    def _keep_result(self, result: tuple[bytes | None, CheckReport]) -> None:
        self.epoch, self.report = result
        self.finished_at = time.time()

    def _clear_result(self) -> None:
        self.report = None
        self.epoch = None
        self.finished_at = None

    def snapshot(self, *, start_if_stale: bool = True) -> tuple[CheckReport | None, str | None, bool]:
        """(report, error, running) as they are now; starts a check when due."""
        if start_if_stale:
            self.ensure_fresh()
        with self._lock:
            return self.report, self.error, self._running_locked()

    def age(self) -> float | None:
        return None if self.finished_at is None else time.time() - self.finished_at

    def ensure_fresh(self) -> None:
        max_age = self.max_age
        epoch = self.current_epoch() if self.report is not None else None
        with self._lock:
            if self._running_locked():
                return
            now = time.time()
            if (
                self.report is not None
                and self.error is None
                and self.finished_at is not None
                and now - self.finished_at < max_age
                and (epoch is None or epoch == self.epoch)
            ):
                return
            if self._failed_recently_locked(now, max_age):
                return
            self._start_locked()
