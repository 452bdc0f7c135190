"""The fleet's last consistency check, computed in a background thread, kept in the store.

A full check walks the whole store (about 2 s per 100k actors), so no request waits for one: the
check page and /metrics of every process show the stored report (atedash:fleet:{check}:result, at
most MAX_STORED_FINDINGS findings: the page says when it cut) with its age, and a new check starts
when that report is older than ATEDASH_CHECK_MAX_AGE seconds (or when an operator asks). At most one
runs in the fleet at a time (a lease, atedash/background/lease.py).

A change made through atedash (a repair, an edit, an import...) sets a new random marker in the store
(storage.keys.CHECK_EPOCH_KEY, see ``invalidate``): a report computed under another marker is due, so
/metrics never reports a repaired finding for longer than one check.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from django.conf import settings

from atedash.background.lease import LeasedComputation

if TYPE_CHECKING:
    from storage.check import CheckReport
    from storage.fleet import Lease

log = logging.getLogger(__name__)


MAX_STORED_FINDINGS = 2000  # findings kept in the stored report; the page says when it cut


class CheckCache(LeasedComputation):
    job = "check"
    thread_name = "atedash-check"
    what = "consistency check"
    step_keys = 1000  # keys per page of the check's scans (ATEDASH_STORE_STEP_KEYS)

    def current_epoch(self) -> bytes | None:
        """The store's change marker (b"" when none was set, e.g. after a flush); None when the store
        cannot say."""
        try:
            return self.store.dashboard().check_epoch()
        except Exception:  # noqa: BLE001 - an unreachable store shows up elsewhere
            return None

    def invalidate(self) -> None:
        """Marks the fleet's report stale (called after each change made through atedash)."""
        try:
            self.store.dashboard().bump_check_epoch()
        except Exception as exc:  # noqa: BLE001 - the reports age out anyway
            log.warning("could not mark consistency reports stale: %s", exc)

    def _compute(self) -> tuple[bytes | None, CheckReport]:
        from storage.check import run_check

        epoch = self.current_epoch()
        return epoch, run_check(
            self.store.persistence().on_replicas(),
            page_size=self.step_keys,
            stale_lock_s=settings.ATEDASH_STALE_LOCK_SECONDS,
        )

    def _to_stored(self, result: tuple[bytes | None, CheckReport], lease: Lease) -> dict:
        epoch, report = result
        return {
            "epoch": None if epoch is None else epoch.decode("utf-8", "replace"),
            "finished_at": time.time(),
            "report": report.to_stored(MAX_STORED_FINDINGS),
        }

    def _from_stored(self, data: dict) -> CheckReport:
        from storage.check import CheckReport

        float(data["finished_at"])  # a report without its time is not one we wrote
        return CheckReport.from_stored(data["report"])

    def _due(self, result: CheckReport, envelope: dict, stale_at: float) -> bool:
        finished_at = float(envelope.get("finished_at", 0))
        if finished_at < stale_at or time.time() - finished_at >= self.max_age:
            return True
        epoch = self.current_epoch()
        stored = envelope.get("epoch")
        return epoch is not None and stored is not None and epoch.decode("utf-8", "replace") != stored

    @property
    def report(self) -> CheckReport | None:
        """The fleet's last report (None before any, or when the store does not answer)."""
        return self.state()[0]

    @property
    def finished_at(self) -> float | None:
        return self.finished_at_of(self.state()[1])

    @staticmethod
    def finished_at_of(envelope: dict) -> float | None:
        value = envelope.get("finished_at")
        return float(value) if isinstance(value, (int, float)) else None

    def maker(self) -> str:
        return str(self.state()[1].get("maker", ""))[:200]

    def snapshot(self, *, start_if_stale: bool = True) -> tuple[CheckReport | None, str | None, bool]:
        """(report, error, running) as stored now; starts a check when due."""
        report, _envelope, error, running = self.state(start_if_due=start_if_stale)
        return report, error, running

    def age(self, envelope: dict | None = None) -> float | None:
        """Seconds since the stored report (or the given envelope's) was finished."""
        finished_at = self.finished_at if envelope is None else self.finished_at_of(envelope)
        return None if finished_at is None else max(0.0, time.time() - finished_at)
