"""The "show all matches" walks: full-store walks (storage/matches.py), one at a time in the fleet,
their state, progress and results in the store so that any process shows them.

A walk is identified by its list and filters: an operator asking for the same filters while it runs
(or after, while its result is kept) gets the same walk, whichever process they reach, so that ten
operators clicking the same button cost one walk. One walk runs in the fleet at a time (the lease of
the fleet job "walks", storage/fleet.py); asking for other filters meanwhile says which walk is
running, and anyone who may edit can cancel it (a flag in the store, seen by the walking process at
its next heartbeat). The walking process writes the walk's progress with every heartbeat; when it
dies, its lease lapses within seconds and every process shows the walk as interrupted, with a button
to start it again. Finished results (at most ``max_results`` keys each) are kept ``keep_s`` seconds,
the last ``keep`` of them. Keys, sizes and TTLs: docs/fleet.md.
"""

from __future__ import annotations

import logging
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any

from atedash.background.lease import run_with_heartbeat
from storage.documents import plain_fields
from storage.fleet import (
    WALK_RECENT_PART,
    WALKS,
    LeaseInfo,
    dumps,
    loads_object,
    walk_cancel_part,
    walk_index_part,
    walk_keys_part,
    walk_state_part,
)
from storage.keys import fleet_key
from storage.matches import FullWalk, WalkFilter, WalkProgress
from storage.scanning import CorruptEntry

if TYPE_CHECKING:
    from storage import Persistence
    from storage.fleet import Fleet, Lease

log = logging.getLogger(__name__)

WALK_ID = re.compile(r"[0-9a-f]{16}")
PUSH_CHUNK = 5000  # keys per fenced RPUSH
MAX_CORRUPT_STORED = 100
FOUND_STORED = 50  # matches stored with each heartbeat of a running walk (records/matches.RUNNING_ROWS)


class StoredKeys:
    """A walk's matching keys, read from the store on demand: len(), slices and iteration."""

    def __init__(self, fleet: Fleet, walk_id: str, count: int) -> None:
        self.fleet, self.walk_id, self.count = fleet, walk_id, count

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: slice) -> list[str]:
        if not isinstance(index, slice):
            raise TypeError("StoredKeys: slices only")
        start, stop, _ = index.indices(self.count)
        if stop <= start:
            return []
        return self.fleet.list_range(WALKS, walk_keys_part(self.walk_id), start, stop - 1)

    def __iter__(self) -> Iterator[str]:
        for start in range(0, self.count, 10_000):
            yield from self[start : start + 10_000]


@dataclass
class StoredResult:
    """What the walk found, as stored (storage.matches.WalkResult's summary, keys read on demand)."""

    keys: StoredKeys
    matched: int
    corrupt: list[CorruptEntry]
    scanned: int
    total_keys: int
    truncated: bool
    cancelled: bool
    duration_s: float
    server_side: bool


def _progress(data: Any) -> WalkProgress:
    names = {f.name: f.type for f in fields(WalkProgress)}
    values: dict[str, Any] = {}
    data = data if isinstance(data, dict) else {}
    for name in names:
        value = data.get(name, 0)
        values[name] = value if isinstance(value, (int, float)) and not isinstance(value, bool) else 0
        if name in ("finished", "cancelled"):
            values[name] = bool(data.get(name))
    values["fraction"] = min(1.0, max(0.0, float(values["fraction"])))
    return WalkProgress(**values)


class _ProgressView:
    """``job.walk`` for the templates: progress() as stored by the walking process."""

    def __init__(self, job: WalkJob) -> None:
        self.job = job

    def progress(self) -> WalkProgress:
        return _progress(self.job.data.get("progress"))

    def found(self, limit: int) -> list[str]:
        """The first matches the walking process had found at its last heartbeat (stored with it)."""
        found = self.job.data.get("found")
        if not isinstance(found, list):
            return []
        return [k for k in found if isinstance(k, str) and k.startswith(("actor:", "worker:"))][:limit]


@dataclass
class WalkJob:
    """A walk as read from the store (a snapshot: read it again for news)."""

    id: str
    data: dict  # the stored state (hostile: read leniently)
    lease: LeaseInfo | None  # the fleet's walk lease when read
    fleet: Fleet
    thread: threading.Thread | None = None  # this process's, when it runs the walk
    read_at: float = field(default_factory=time.time)

    @property
    def kind(self) -> str:
        return "workers" if self.data.get("kind") == "workers" else "actors"

    @property
    def filters(self) -> tuple:
        pairs = self.data.get("filters")
        if not isinstance(pairs, list):
            return ()
        return tuple((str(p[0]), str(p[1])) for p in pairs if isinstance(p, list) and len(p) == 2)

    @property
    def identity(self) -> tuple:
        return (self.kind, self.filters)

    @property
    def started_by(self) -> str:
        return str(self.data.get("started_by", ""))[:200]

    @property
    def maker(self) -> str:
        return str(self.data.get("maker", ""))[:200]

    @property
    def started_at(self) -> float:
        value = self.data.get("started_at")
        return float(value) if isinstance(value, (int, float)) else 0.0

    @property
    def walk(self) -> _ProgressView:
        return _ProgressView(self)

    @property
    def interrupted(self) -> bool:
        """Stored as running, but no live lease of this walk: its process died (or lost the store)."""
        return self.data.get("status") == "running" and (self.lease is None or self.lease.note != self.id)

    @property
    def running(self) -> bool:
        return self.data.get("status") == "running" and not self.interrupted

    @property
    def result(self) -> StoredResult | None:
        return self.state()[1]

    def state(self) -> tuple[str, StoredResult | None, str | None]:
        """("running" | "interrupted" | "failed" | "done", result, error)."""
        status = self.data.get("status")
        if status == "running":
            return ("interrupted" if self.interrupted else "running"), None, None
        if status == "failed":
            return "failed", None, str(self.data.get("error", ""))[:2000]
        summary = self.data.get("result")
        if status != "done" or not isinstance(summary, dict):
            return "failed", None, "the stored walk is unreadable"
        try:
            corrupt = [
                CorruptEntry(str(k)[:1000], str(e)[:1000], "")
                for k, e in list(summary.get("corrupt", []))[:MAX_CORRUPT_STORED]
            ]
            result = StoredResult(
                keys=StoredKeys(self.fleet, self.id, max(0, int(summary["keys"]))),
                corrupt=corrupt,
                **plain_fields(StoredResult, summary),
            )
        except (KeyError, TypeError, ValueError):
            return "failed", None, "the stored walk is unreadable"
        return "done", result, None


class WalkRegistry:
    def __init__(
        self,
        persistence: Callable[[], Persistence],
        fleet: Callable[[], Fleet],
        *,
        max_results: int = 100_000,
        keep: int = 4,
        keep_s: float = 600.0,
        step_keys: int = 2000,
        lease_ttl_s: float | None = None,
    ) -> None:
        self._persistence = persistence  # the process's storage.Persistence, when a walk starts
        self._fleet = fleet  # where walks are shared with the fleet (storage.DashboardState.fleet)
        self.max_results = max_results
        self.keep, self.keep_s = keep, keep_s
        self.step_keys = step_keys  # keys per SCAN step of a walk
        self.lease_ttl_s = lease_ttl_s  # None: the Fleet's (storage.fleet.LEASE_TTL_S)
        self._lock = threading.Lock()
        # This process's own running walks: id -> (FullWalk, thread); nothing else is kept here.
        self._local: dict[str, tuple[FullWalk, threading.Thread]] = {}

    # --- reading ---------------------------------------------------------------------------------

    def get(self, job_id: str) -> WalkJob | None:
        if not isinstance(job_id, str) or not WALK_ID.fullmatch(job_id):
            return None
        fleet = self._fleet()
        raw_state, raw_lease = fleet.read(WALKS, walk_state_part(job_id), "lease")
        data = loads_object(raw_state)
        if data is None:
            return None
        local = self._local.get(job_id)
        return WalkJob(job_id, data, LeaseInfo.parse(raw_lease), fleet, local[1] if local else None)

    def find(self, kind: str, wanted: WalkFilter) -> WalkJob | None:
        """The kept walk of these filters (running, interrupted or done), or None."""
        (raw_id,) = self._fleet().read(WALKS, walk_index_part(kind, wanted.description))
        job = self.get(raw_id.decode("ascii", "replace")) if raw_id else None
        return job if job is not None and job.identity == (kind, wanted.description) else None

    def running(self) -> WalkJob | None:
        """The walk running in the fleet now, if any."""
        lease = self._fleet().lease(WALKS)
        if lease is None:
            return None
        job = self.get(lease.note)
        return job if job is not None and job.running else None

    # --- starting ------------------------------------------------------------------------------

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
        job = self.find(kind, wanted)
        if job is not None:
            status, result, _ = job.state()
            if status == "running" or (not fresh and result is not None and not result.cancelled):
                return job, True
        if may_start is not None:
            busy = self.running()
            if busy is not None:
                return busy, busy.identity == (kind, wanted.description)
            if not may_start():
                return None, False
        fleet = self._fleet()
        walk_id = secrets.token_hex(8)
        state: dict[str, Any] = {
            "id": walk_id,
            "kind": kind,
            "filters": [list(pair) for pair in wanted.description],
            "started_by": operator,
            "started_at": time.time(),
            "maker": fleet.holder,
            "status": "running",
            "progress": {},
        }
        state_key = fleet_key(WALKS, walk_state_part(walk_id))
        extra = (state_key, dumps(state), self.keep_s)
        lease = fleet.acquire(WALKS, note=walk_id, extra=extra, ttl_s=self.lease_ttl_s)
        if lease is None:
            busy = self.running()
            if busy is not None and busy.identity == (kind, wanted.description):
                return busy, True  # another operator started the same filters just now
            return busy, False
        fleet.set(WALKS, walk_index_part(kind, wanted.description), walk_id, self.keep_s)
        self._forget_old(fleet, walk_id)
        topology = self._persistence().on_replicas().topology
        # The first matches wake the heartbeat, which stores them: a list page shows them at its
        # next poll rather than at the next beat (BEAT_S).
        news = threading.Event()

        def found(matched: int) -> None:
            if matched <= FOUND_STORED:
                news.set()

        walk = FullWalk(topology, wanted, max_results=self.max_results, step_count=self.step_keys, on_found=found)
        thread = threading.Thread(
            target=self._run, args=(walk_id, walk, lease, state, news), name="atedash-walk", daemon=True
        )
        with self._lock:
            self._local[walk_id] = (walk, thread)
        thread.start()
        return WalkJob(walk_id, state, LeaseInfo(lease.token, fleet.holder, walk_id), fleet, thread), True

    def _forget_old(self, fleet: Fleet, walk_id: str) -> None:
        """Keeps the last ``keep`` walks: the older ones' keys go now (the lease serialises this)."""
        old = fleet.push_capped(WALKS, WALK_RECENT_PART, walk_id, self.keep, self.keep_s + 60)
        old = [w for w in old if WALK_ID.fullmatch(w)]
        if old:
            fleet.delete(WALKS, *[part for w in old for part in (walk_state_part(w), walk_keys_part(w))])

    def _run(self, walk_id: str, walk: FullWalk, lease: Lease, state: dict, news: threading.Event) -> None:
        state_key = fleet_key(WALKS, walk_state_part(walk_id))
        cancel_key = fleet_key(WALKS, walk_cancel_part(walk_id))

        def beat() -> tuple[tuple[str, str, float], str]:
            # The first matches so far too: a list page fills in with them while the walk runs.
            found = walk.found(FOUND_STORED)
            return (
                state_key,
                dumps({**state, "progress": asdict(walk.progress()), "found": found}),
                self.keep_s,
            ), cancel_key

        def work() -> None:
            try:
                result = walk.run()
            except Exception as exc:  # noqa: BLE001 - shown on the page that follows the walk
                log.warning("walk %s failed: %s", walk_id, exc)
                failed = {**state, "status": "failed", "error": f"{type(exc).__name__}: {exc}"[:2000]}
                lease.put(state_key, dumps(failed), self.keep_s, release=True)
                return
            keys_key = fleet_key(WALKS, walk_keys_part(walk_id))
            for start in range(0, len(result.keys), PUSH_CHUNK):
                if not lease.push(keys_key, result.keys[start : start + PUSH_CHUNK], self.keep_s):
                    return  # the lease is gone: another walk may own the fleet now
            summary = {
                "keys": len(result.keys),
                "matched": result.matched,
                "corrupt": [[c.key[:1000], c.error[:1000]] for c in result.corrupt[:MAX_CORRUPT_STORED]],
                "scanned": result.scanned,
                "total_keys": result.total_keys,
                "truncated": result.truncated,
                "cancelled": result.cancelled,
                "duration_s": result.duration_s,
                "server_side": result.server_side,
            }
            done = {**state, "status": "done", "progress": asdict(walk.progress()), "result": summary}
            index = fleet_key(WALKS, walk_index_part(state["kind"], walk.wanted.description))
            lease.put_two((state_key, dumps(done)), (index, walk_id), self.keep_s, release=True)

        try:
            run_with_heartbeat(lease, work, beat=beat, on_lost=walk.cancel, on_flag=walk.cancel, wake=news)
        except Exception as exc:  # noqa: BLE001 - the lease lapses; the walk shows as interrupted
            log.warning("walk %s: could not store its result: %s", walk_id, exc)
        finally:
            with self._lock:
                self._local.pop(walk_id, None)

    # --- control -------------------------------------------------------------------------------

    def cancel(self, job_id: str) -> bool:
        job = self.get(job_id)
        if job is None or not job.running:
            return False
        self._fleet().set(WALKS, walk_cancel_part(job.id), "1", self.keep_s)
        local = self._local.get(job.id)
        if local is not None:
            local[0].cancel()
        return True

    def close(self, timeout: float) -> None:
        with self._lock:
            local = list(self._local.values())
        for walk, _thread in local:
            walk.cancel()
        for _walk, thread in local:
            thread.join(timeout)
