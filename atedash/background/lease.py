"""Fleet-wide results computed in a background thread, at most one computation in the whole fleet.

Whole-store walks (the overview's counts, the consistency check) take seconds at a million records,
so no request waits for one: pages show the stored result with its age and who made it, and start a
new computation when it is due. The result, the error of the last failed run and the lease of the
running computation live in the store (storage/fleet.py, keys in docs/fleet.md); this process keeps
only its own thread (if it is the one computing) and a parsed copy of the stored bytes.

A computation runs under the job's lease, renewed every storage.fleet.BEAT_S by a heartbeat thread;
its result is written only while the lease is still this one (fencing), and the lease ends with it.
A process that dies mid-run stops renewing: its lease lapses within LEASE_TTL_S and the next page
that finds the result due starts a new run.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from storage.errors import is_store_unreachable
from storage.fleet import BEAT_S, dumps, loads_object

if TYPE_CHECKING:
    from atedash.core.store import StoreConnection
    from storage.fleet import Fleet, Lease, LeaseInfo

log = logging.getLogger(__name__)

RESULT_TTL_S = 86400  # a result nobody refreshes goes away after a day
ERROR_TTL_S = 300
STALE_TTL_S = 86400
FAILED_PAUSE_S = 5  # after a failure, no new run for this long (do not hammer a failing store)
WAIT_POLL_S = 0.05
MIN_BEAT_GAP_S = 0.1  # a woken heartbeat (run_with_heartbeat's wake) beats at most this often
# A count or a check of a million records pauses its process for many seconds on a loaded machine
# (its heap's garbage collections, a small share of a core): a walk's 6 s lease would lapse and
# another process would start the same run (bench/RESULTS.md, "fleet"). 15 s rides out the pauses
# of an ordinarily loaded machine (a lapsed lease nobody took is taken back at the next beat), and a
# dead holder still shows as interrupted within seconds.
LEASE_TTL_S = 15.0


def run_with_heartbeat(
    lease: Lease,
    work: Callable[[], Any],
    *,
    beat: Callable[[], tuple[tuple[str, str, float] | None, str | None]] | None = None,
    on_lost: Callable[[], None] | None = None,
    on_flag: Callable[[], None] | None = None,
    wake: threading.Event | None = None,
) -> Any:
    """work() while another thread renews ``lease`` every BEAT_S (writing beat()'s (state, flag key)
    with it); on_lost() when the lease is lost, on_flag() when the flag key is set. Setting ``wake``
    beats at once (news a page waits for), at most every MIN_BEAT_GAP_S."""
    stop = threading.Event()
    nudge = wake if wake is not None else stop

    def heart() -> None:
        last = time.monotonic()
        while True:
            nudge.wait(max(0.0, BEAT_S - (time.monotonic() - last)))
            if stop.is_set():
                return
            if wake is not None:
                if stop.wait(max(0.0, MIN_BEAT_GAP_S - (time.monotonic() - last))):  # bounds the writes
                    return
                wake.clear()
            last = time.monotonic()
            if lease.released:
                return
            state, flag = beat() if beat is not None else (None, None)
            lapses = lease.lapses
            try:
                ours, flagged = lease.beat(state, flag)
            except Exception as exc:  # noqa: BLE001 - a store hiccup: try again next beat
                log.warning("lease %s: renewal failed: %s", lease.job, exc)
                continue
            if lease.lapses > lapses:
                log.warning("lease %s: lapsed while this process paused; nobody took it, taken back", lease.job)
            if not ours:
                if lease.released:
                    return
                log.warning("lease %s: lost (token %s); its result will not be written", lease.job, lease.token)
                if on_lost is not None:
                    on_lost()
                return
            if flagged and on_flag is not None:
                on_flag()

    heartbeat = threading.Thread(target=heart, name=f"atedash-beat-{lease.job}", daemon=True)
    heartbeat.start()
    try:
        return work()
    finally:
        stop.set()
        if wake is not None:
            wake.set()
        heartbeat.join(5)


class _Waiter(threading.Thread):
    """A thread that ends when the fleet's computation does (for callers that join() a refresh)."""

    def __init__(self, computation: LeasedComputation, timeout: float = 600) -> None:
        super().__init__(name="atedash-wait", daemon=True)
        self.computation, self.timeout = computation, timeout

    def run(self) -> None:
        self.computation.wait(self.timeout)


class LeasedComputation:
    job = ""  # the fleet job: "stats" | "check"
    thread_name = "atedash-background"
    what = "background computation"

    lease_ttl_s = LEASE_TTL_S  # ATEDASH_FLEET_LEASE_SECONDS when set

    def __init__(self, store: StoreConnection, max_age: float) -> None:
        self.store = store
        self.max_age = max_age
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._parsed: tuple[bytes | None, Any] = (None, None)
        self._interrupted: dict | None = None

    # --- subclasses ----------------------------------------------------------------------------

    def _compute(self) -> Any:
        raise NotImplementedError

    def _to_stored(self, result: Any, lease: Lease) -> dict:
        raise NotImplementedError

    def _from_stored(self, data: dict) -> Any:
        raise NotImplementedError

    def _due(self, result: Any, stored: dict, stale_at: float) -> bool:
        raise NotImplementedError

    # --- reading the store ---------------------------------------------------------------------

    def _fleet(self) -> Fleet:
        return self.store.dashboard().fleet

    def read(self) -> tuple[Any, dict, dict | None, LeaseInfo | None, float]:
        """(result, its stored envelope, last error, running lease, stale marker) as stored now."""
        from storage.fleet import LeaseInfo

        fleet = self._fleet()
        raw_result, raw_error, raw_lease, raw_stale, raw_attempt, raw_seen = fleet.read(
            self.job, "result", "error", "lease", "stale", "attempt", "interrupted"
        )
        result, envelope = self._parse(raw_result)
        error = loads_object(raw_error)
        try:
            stale_at = float(raw_stale or 0)
        except ValueError:
            stale_at = 0.0
        lease = LeaseInfo.parse(raw_lease)
        ended = [envelope.get("fence"), (error or {}).get("fence")]
        self._judge_attempt(fleet, loads_object(raw_attempt), loads_object(raw_seen), lease, ended)
        return result, envelope, (error if error and error.get("error") else None), lease, stale_at

    def _parse(self, raw: bytes | None) -> tuple[Any, dict]:
        """The stored result parsed once per stored value (the same object until it changes)."""
        cached_raw, cached = self._parsed
        if raw is not None and raw == cached_raw:
            return cached
        envelope = loads_object(raw) or {}
        result = None
        if envelope:
            try:
                result = self._from_stored(envelope)
            except (ValueError, TypeError, KeyError, AttributeError) as exc:
                log.warning("%s: the stored result is not one we wrote: %s", self.what, exc)
                result, envelope = None, {}
        self._parsed = (raw, (result, envelope))
        return result, envelope

    def interrupted(self) -> dict | None:
        """The last run whose process died before writing a result or an error ({"maker",
        "started_at"}; from the last read()), else None: said until a later run ends."""
        return self._interrupted

    def _judge_attempt(
        self, fleet: Fleet, attempt: dict | None, seen: dict | None, lease: LeaseInfo | None, ended: list
    ) -> None:
        def newer(run: dict | None) -> bool:
            token = (run or {}).get("token")
            return isinstance(token, int) and not any(isinstance(t, int) and t >= token for t in ended)

        if attempt is not None and lease is None and not self._local_running() and newer(attempt):
            if seen is None or seen.get("token") != attempt.get("token"):
                try:  # kept apart from the attempt: the next run overwrites that one
                    fleet.set(self.job, "interrupted", dumps(attempt), RESULT_TTL_S)
                except Exception:  # noqa: BLE001 - only the notice depends on it
                    pass
                seen = attempt
        self._interrupted = None
        if seen is not None and newer(seen):
            self._interrupted = {"maker": str(seen.get("maker", ""))[:200], "started_at": seen.get("started_at")}

    def state(self, *, start_if_due: bool = False) -> tuple[Any, dict, str | None, bool]:
        """(result, envelope, error, running) in one read of the store, never raising (a store
        failure is the error); with ``start_if_due``, a computation is started when due."""
        try:
            result, envelope, error, lease, stale_at = self.read()
        except Exception as exc:  # noqa: BLE001 - the page says it; the store's outage shows elsewhere
            self._store_failed(exc)
            return None, {}, f"{type(exc).__name__}: {exc}", self._local_running()
        running = lease is not None or self._local_running()
        if start_if_due and not running and self._should_start(result, envelope, error, stale_at):
            running = self._start() is not None
        return result, envelope, (error or {}).get("error"), running

    def _store_failed(self, exc: Exception) -> None:
        """An unreachable store: the next requests fail at once (atedash/core/store.py) instead of each
        waiting for its socket timeout here."""
        if is_store_unreachable(exc):
            self.store.connection_lost(f"{type(exc).__name__}: {exc}")

    def _should_start(self, result: Any, envelope: dict, error: dict | None, stale_at: float) -> bool:
        if error is not None and time.time() - float(error.get("at", 0) or 0) < min(self.max_age, FAILED_PAUSE_S):
            return False
        return result is None or self._due(result, envelope, stale_at)

    @property
    def result_envelope(self) -> dict:
        return self.state()[1]

    # --- starting ------------------------------------------------------------------------------

    def _local_running(self) -> bool:
        thread = self._thread
        return thread is not None and thread.is_alive()

    def ensure_fresh(self) -> None:
        """Start a computation when the stored result is due and nobody in the fleet is computing."""
        self.state(start_if_due=True)

    def refresh(self) -> threading.Thread | None:
        """Start a computation now unless one runs in the fleet; returns a thread that ends with the
        fleet's running computation (this process's own, or one waiting for another's)."""
        with self._lock:
            if self._local_running():
                return self._thread
        thread = self._start()
        if thread is None:
            thread = _Waiter(self)
            thread.start()
        return thread

    def _start(self) -> threading.Thread | None:
        try:
            lease = self._fleet().acquire(self.job, ttl_s=self.lease_ttl_s)
        except Exception as exc:  # noqa: BLE001 - the page shows the store's trouble
            log.warning("%s: could not take the lease: %s", self.what, exc)
            return None
        if lease is None:
            return None
        try:  # who runs it, so that every process can tell when it died without a result
            attempt = {"token": lease.token, "maker": lease.fleet.holder, "started_at": time.time()}
            lease.fleet.set(self.job, "attempt", dumps(attempt), RESULT_TTL_S)
        except Exception as exc:  # noqa: BLE001 - only the "interrupted" notice depends on it
            log.warning("%s: could not note the attempt: %s", self.what, exc)
        thread = threading.Thread(target=self._run, args=(lease,), name=self.thread_name, daemon=True)
        with self._lock:
            self._thread = thread
        thread.start()
        return thread

    def _run(self, lease: Lease) -> None:
        try:
            result = run_with_heartbeat(lease, self._compute)
        except Exception as exc:  # noqa: BLE001 - reported on the page that shows the result
            log.warning("%s failed: %s", self.what, exc)
            error = dumps(
                {
                    "error": f"{type(exc).__name__}: {exc}"[:2000],
                    "at": time.time(),
                    "maker": lease.fleet.holder,
                    "fence": lease.token,
                }
            )
            self._write(lease, lambda: lease.put(self._key("error"), error, ERROR_TTL_S, release=True))
            return
        stored = dumps({**self._to_stored(result, lease), "fence": lease.token, "maker": lease.fleet.holder})
        no_error = dumps({"fence": lease.token})
        self._write(
            lease,
            lambda: lease.put_two(
                (self._key("result"), stored), (self._key("error"), no_error), RESULT_TTL_S, release=True
            ),
        )

    def _write(self, lease: Lease, put: Callable[[], bool]) -> None:
        try:
            if not put():
                log.warning("%s: lease %s lost before the result was written; discarded", self.what, lease.token)
        except Exception as exc:  # noqa: BLE001 - the lease lapses by itself
            log.warning("%s: could not store the result: %s", self.what, exc)

    def _key(self, part: str) -> str:
        from storage.keys import fleet_key

        return fleet_key(self.job, part)

    # --- waiting and invalidating --------------------------------------------------------------

    def wait(self, timeout: float | None = None) -> None:
        """Block until neither this process nor the fleet is computing (or the timeout)."""
        deadline = time.monotonic() + (timeout if timeout is not None else 3600)
        thread = self._thread
        if thread is not None:
            thread.join(max(0.0, deadline - time.monotonic()))
        while time.monotonic() < deadline:
            try:
                if self._fleet().lease(self.job) is None:
                    return
            except Exception:  # noqa: BLE001 - nothing to wait for on a store that does not answer
                return
            time.sleep(WAIT_POLL_S)

    def join_local(self, timeout: float) -> None:
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def reset(self) -> None:
        """The stored result predates a change: due for every process (kept on show until then)."""
        try:
            self._fleet().set(self.job, "stale", repr(time.time()), STALE_TTL_S)
        except Exception as exc:  # noqa: BLE001 - results age out anyway
            log.warning("%s: could not mark the result stale: %s", self.what, exc)
