"""The last consistency check of this process, computed in a background thread.

A full check walks the whole store (about 2 s per 100k actors), so no request waits for one: the
check page and /metrics show the last report with its age, and a new check starts when that report is
older than ATEDASH_CHECK_MAX_AGE seconds (or when an operator asks). At most one runs at a time.

Every gunicorn worker process has its own cache, so a change made through atedash (a repair, an edit,
an import...) sets a new random marker in the store (``atedash:check-epoch``, see ``invalidate``): a
process whose report was computed under another marker treats it as stale, so /metrics never reports
a finding that was repaired through another process for longer than one scrape. The Consistency page
itself starts a fresh check whenever it is opened.
"""

import logging
import threading
import time
import uuid

from django.conf import settings

from atedash import store

log = logging.getLogger(__name__)

EPOCH_KEY = "atedash:check-epoch"


def current_epoch():
    """The store's change marker (b"" when none was set, e.g. after a flush); None when the store
    cannot say."""
    try:
        value = store.get_persistence().client.get(EPOCH_KEY)
    except Exception:  # noqa: BLE001 - an unreachable store shows up elsewhere
        return None
    return value or b""


def invalidate():
    """Marks every process's last report stale (called after each change made through atedash).

    A fresh random marker rather than a counter: a counter would start again after a flush and could
    match the marker of a report computed before it."""
    try:
        store.get_persistence().client.set(EPOCH_KEY, uuid.uuid4().hex)
    except Exception as exc:  # noqa: BLE001 - the reports age out anyway
        log.warning("could not mark consistency reports stale: %s", exc)


class CheckCache:
    def __init__(self):
        self._lock = threading.Lock()
        self._thread = None
        self.report = None  # storage.consistency.CheckReport of the last successful run
        self.epoch = None  # the store's change counter when that run started
        self.finished_at = None
        self.error = None
        self.error_at = None
        self.generation = 0

    def snapshot(self, *, start_if_stale=True):
        """(report, error, running) as they are now; starts a check when due."""
        if start_if_stale:
            self.ensure_fresh()
        with self._lock:
            running = self._thread is not None and self._thread.is_alive()
            return self.report, self.error, running

    def age(self):
        return None if self.finished_at is None else time.time() - self.finished_at

    def ensure_fresh(self):
        max_age = settings.ATEDASH_CHECK_MAX_AGE
        epoch = current_epoch() if self.report is not None else None
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            now = time.time()
            if (
                self.report is not None
                and self.error is None
                and now - self.finished_at < max_age
                and (epoch is None or epoch == self.epoch)
            ):
                return
            if self.error_at is not None and now - self.error_at < min(max_age, 5):
                return
            self._start_locked()

    def refresh(self):
        """Start a check now unless one is running; returns its thread."""
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._start_locked()
            return self._thread

    def wait(self, timeout=None):
        with self._lock:
            thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def reset(self):
        with self._lock:
            self.generation += 1
            self.report = None
            self.epoch = None
            self.finished_at = None
            self.error = None
            self.error_at = None

    def _start_locked(self):
        thread = threading.Thread(target=self._run, args=(self.generation,), name="atedash-check", daemon=True)
        self._thread = thread
        thread.start()

    def _run(self, generation):
        from storage.consistency import run_check

        try:
            epoch = current_epoch()
            report = run_check(store.get_persistence())
        except Exception as exc:  # noqa: BLE001 - shown on the check page
            log.warning("consistency check failed: %s", exc)
            with self._lock:
                if generation == self.generation:
                    self.error = f"{type(exc).__name__}: {exc}"
                    self.error_at = time.time()
            return
        with self._lock:
            if generation == self.generation:
                self.report = report
                self.epoch = epoch
                self.finished_at = time.time()
                self.error = None
                self.error_at = None


cache = CheckCache()


def _on_setting_changed(setting, **kwargs):
    if setting in {"ATEDASH_REDIS_URL", "ATEDASH_REDIS_CLUSTER"}:
        cache.wait(timeout=30)
        cache.reset()


from django.core.signals import setting_changed  # noqa: E402

setting_changed.connect(_on_setting_changed, dispatch_uid="atedash.ops.checks")
