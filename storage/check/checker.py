"""The consistency check: one :class:`Checker` per run, one method per phase.

1. ``scan_locks``: keep the ``lock:actor:*`` locks by actor id (with when atedash first saw their
   holder: storage/check/lockage.py); other locks without expiry are findings.
2. ``scan_workers``: a compact index of every worker, by (namespace, pod) and by the actor it claims.
3. ``scan_actors``: each actor, streamed a page at a time and never kept, against its lock, the
   workers claiming it and the worker at its pod (``check_actor``).
4. ``find_orphan_claims``: claims of actors that were never seen.
5. ``resolve_elsewhere``: running actors whose worker claims another actor, now that all are seen.
6. ``report_workers``, ``report_duplicates``, ``report_locks``: the findings that needed every actor.
7. ``withhold_unreadable_repairs``: no repair rewrites a record the ate server cannot read.

Which finding says what, and with which repair: storage/check/findings.py.

The scans only feed ``take_locks``, ``take_workers`` and ``take_actors``; ``conclude`` runs phases
4-7. ``check_records`` feeds them a few records read by key instead (a record's page: the record
and its relations, storage/check/related.py): the same rules, on a subset.
"""

from __future__ import annotations

import dataclasses
import time

from storage.ateapi_pb2 import Actor
from storage.check import findings as say
from storage.check.entries import (
    DuplicateGroup,
    Elsewhere,
    LeakedClaim,
    LockEntry,
    WorkerEntry,
    WorkerIndex,
    WorkerRef,
    pick,
)
from storage.check.kinds import ACTIVE, KINDS
from storage.check.loading import JudgedCorrupt, UnreadableRecord, actor_pages, pages, worker_pages
from storage.check.lockage import DEFAULT_STALE_LOCK_S, is_stale, observe
from storage.check.repairs import ReleaseLock, Repair
from storage.check.report import CheckReport, Finding
from storage.keys import ACTOR_LOCK_PREFIX, ACTOR_PREFIX

PAGE_SIZE = 1000
_SUSPENDED = Actor.STATUS_SUSPENDED


class Checker:
    def __init__(
        self,
        persistence,
        page_size: int = PAGE_SIZE,
        *,
        stale_lock_s: float = DEFAULT_STALE_LOCK_S,
        now: float | None = None,
    ):
        self.p = persistence
        self.page_size = page_size
        self.stale_lock_s = stale_lock_s
        self.now = time.time() if now is None else now
        self.findings: list[Finding] = []
        # What the check read (keys, records, locks); findings and timings are added at the end.
        self.totals = CheckReport(findings=[], counts={}, duration_s=0.0)
        # Phase 1: lock:actor:<id> locks by actor id (popped when the actor is seen); locks without expiry.
        self.actor_locks: dict[str, LockEntry] = {}
        self.no_expiry: list[LockEntry] = []
        # Phase 2.
        self.index = WorkerIndex()
        # Phase 3: actor ids claimed by some worker that exist, and those that do not decode.
        self.seen_claimed: set[str] = set()
        self.corrupt_actor_ids: set[str] = set()
        self.leaked: dict[WorkerRef, LeakedClaim] = {}
        self.elsewhere: list[Elsewhere] = []
        self.promised: set[WorkerRef] = set()  # free workers an AssignWorker repair already takes
        self.duplicates: list[DuplicateGroup] = []
        # Records the ate server cannot read (keys): no repair may rewrite them.
        self.unreadable_keys: set[str] = set()
        # Phases 4-5: orphan claims; workers an AssignWorker repair reassigns (to which actor); the one
        # repair of each worker that some finding mends (findings about the same worker share it).
        self.orphans: dict[WorkerRef, WorkerEntry] = {}
        self.assigned_by_elsewhere: dict[WorkerRef, str] = {}
        self.worker_repairs: dict[WorkerRef, Repair] = {}

    def run(self) -> CheckReport:
        started, t0 = time.time(), time.perf_counter()
        self.scan_locks()
        self.scan_workers()
        self.scan_actors()
        return self.conclude(started, t0)

    def conclude(self, started: float, t0: float) -> CheckReport:
        """Phases 4-7, once every record of the check was taken."""
        self.find_orphan_claims()
        self.resolve_elsewhere()
        self.report_workers()
        self.report_duplicates()
        self.report_locks()
        self.withhold_unreadable_repairs()
        return self.report(started, time.perf_counter() - t0)

    # ----------------------------------------------------------------------------- scans

    def scan_locks(self) -> None:
        for page in pages(self.p.scan_locks, self.page_size):
            self.totals.keys_scanned += page.scanned
            self.take_locks(page.records)
            self.corrupt(page.corrupt)
        self.note_sightings(prune=True)

    def scan_workers(self) -> None:
        for page in worker_pages(self.p, self.page_size):
            self.totals.keys_scanned += page.scanned
            self.take_workers(page.records)
            self.corrupt(page.corrupt)

    def scan_actors(self) -> None:
        for page in actor_pages(self.p, self.page_size):
            self.totals.keys_scanned += page.scanned
            self.take_actors(page.records, page.corrupt)

    def take_locks(self, infos) -> None:
        for info in infos:
            self.totals.locks += 1
            lock = LockEntry(info.key, info.token, info.ttl_ms)
            if info.key.startswith(ACTOR_LOCK_PREFIX):
                self.actor_locks[info.key[len(ACTOR_LOCK_PREFIX) :]] = lock
            elif info.ttl_ms is None:
                self.no_expiry.append(lock)

    def note_sightings(self, *, prune: bool) -> None:
        """When atedash first saw each actor lock's holder (lockage.observe), for the stale rule."""
        locks = self.actor_locks.values()
        seen = observe(self.p.client, [(lock.key, lock.token) for lock in locks], now=self.now, prune=prune)
        for lock in locks:
            lock.first_seen = seen.get((lock.key, lock.token))

    def take_workers(self, records) -> None:
        add = self.index.add
        self.totals.workers += len(records)
        for w in records:
            if type(w) is UnreadableRecord:
                w = self.unreadable(w)
            add(w)

    def take_actors(self, records, corrupt=()) -> None:
        check_actor = self.check_actor
        self.totals.actors += len(records)
        self.corrupt(corrupt)
        for c in corrupt:
            if c.key.startswith(ACTOR_PREFIX):
                self.corrupt_actor_ids.add(c.key[len(ACTOR_PREFIX) :])
        for a in records:
            if type(a) is UnreadableRecord:
                a = self.unreadable(a)
            check_actor(a)

    def corrupt(self, entries) -> None:
        for entry in entries:
            self.findings.append(say.corrupt_record(entry))
            if isinstance(entry, JudgedCorrupt) and entry.server is not None:
                self.totals.unreadable_by_server += 1

    def unreadable(self, item: UnreadableRecord):
        """Reports a record the ate server cannot read; checks it further as atedash reads it."""
        self.findings.append(say.server_unreadable(item.key, item.why))
        self.unreadable_keys.add(item.key)
        self.totals.unreadable_by_server += 1
        return item.record

    # ----------------------------------------------------------------------------- one actor

    def check_actor(self, a: Actor) -> None:
        """The actor against its lock, the workers claiming it and the worker at its pod. The common
        cases (a suspended actor without pod, a running one whose worker points back) cost a few
        dictionary look-ups."""
        aid = a.actor_id
        lock = self.actor_locks.pop(aid, None)
        if lock is not None:
            if lock.ttl_ms is None:
                self.no_expiry.append(lock)
            elif self.stale(lock, a.status):
                self.findings.append(say.stale_lock(lock, a, self.now, ReleaseLock(lock.key, lock.token, "stale")))
        if self.index.is_claimed(aid):
            self.check_claims(a)
        if a.status == _SUSPENDED:
            if a.ateom_pod_namespace or a.ateom_pod_name or a.ateom_pod_ip:
                self.findings.append(say.suspended_with_pod(a))
        elif a.status in ACTIVE:
            self.check_running(a)

    def check_claims(self, a: Actor) -> None:
        """The workers claiming an existing actor: leaked unless at its pod (and it is not
        SUSPENDED); two or more are a duplicate claim."""
        aid = a.actor_id
        mine = self.index.claimants(aid)
        if not mine:
            return
        self.seen_claimed.add(aid)
        pod_ref = (a.ateom_pod_namespace, a.ateom_pod_name)
        suspended = a.status == _SUSPENDED
        for w in mine:
            ref = w.ref
            if suspended or (ref[0], ref[2]) != pod_ref:
                self.leaked[ref] = LeakedClaim(w, a)
        if len(mine) > 1:
            self.duplicates.append(DuplicateGroup(aid, mine, a))

    def check_running(self, a: Actor) -> None:
        """A RUNNING/RESUMING actor: its pod must have a worker that claims it."""
        if not (a.ateom_pod_namespace and a.ateom_pod_name):
            self.findings.append(say.actor_names_no_pod(a))
            return
        candidates = self.index.at_pod(a.ateom_pod_namespace, a.ateom_pod_name)
        if not candidates:
            self.findings.append(say.actor_without_worker(a))
            return
        aid = a.actor_id
        for e in candidates:
            if e.actor_id == aid:
                return  # its worker points back: consistent (duplicates are handled with the claims)
        w = pick(candidates, a.ateom_pod_ip)
        ref = w.ref
        if w.actor_id:
            self.elsewhere.append(Elsewhere(a, w, ref))
        elif ref in self.promised:
            self.findings.append(say.actor_worker_free_twice(a, w))
        else:
            self.promised.add(ref)
            self.findings.append(say.actor_worker_free(a, w))

    # ----------------------------------------------------------------------------- once every actor is seen

    def find_orphan_claims(self) -> None:
        """Workers claiming actors that were never seen (and do not merely fail to decode)."""
        for aid in self.index.claimed_ids():
            if aid in self.seen_claimed or aid in self.corrupt_actor_ids:
                continue
            group = self.index.claimants(aid)
            for w in group:
                self.orphans[w.ref] = w
            if len(group) > 1:
                self.duplicates.append(DuplicateGroup(aid, group, None))

    def resolve_elsewhere(self) -> None:
        """A running actor on a worker claiming another actor: when that claim is wrong too (an
        orphan or leaked worker), one repair reassigns the worker to this actor; else the other
        actor runs there and this one is suspended."""
        for case in self.elsewhere:
            a, w, ref = case.actor, case.worker, case.ref
            if ref not in self.leaked and ref not in self.orphans:
                self.findings.append(say.actor_worker_taken(a, w))
            elif ref in self.assigned_by_elsewhere:
                self.findings.append(say.actor_worker_contested(a, w, self.assigned_by_elsewhere[ref]))
            else:
                self.assigned_by_elsewhere[ref] = a.actor_id
                repair = self.worker_repairs[ref] = say.assign_worker(w, a)
                self.findings.append(say.actor_worker_reassigned(a, w, repair, ref in self.orphans))

    def report_workers(self) -> None:
        """Orphan, then leaked workers; each freed, unless an AssignWorker repair already mends it."""
        for ref in sorted(self.orphans):
            w = self.orphans[ref]
            repair, assigned_to = self.worker_repair(ref, w, "orphan")
            self.findings.append(say.orphan_worker(w, repair, assigned_to))
        for ref in sorted(self.leaked):
            claim = self.leaked[ref]
            repair, assigned_to = self.worker_repair(ref, claim.worker, "leaked")
            self.findings.append(say.leaked_worker(claim, repair, assigned_to))

    def worker_repair(self, ref: WorkerRef, w: WorkerEntry, reason: str) -> tuple[Repair, str | None]:
        assigned_to = self.assigned_by_elsewhere.get(ref)
        if assigned_to is None:
            self.worker_repairs[ref] = say.free_worker(w, reason)
        return self.worker_repairs[ref], assigned_to

    def report_duplicates(self) -> None:
        """Each group shares the repair of its first claimant that should not claim the actor (an
        orphan or leaked worker: that worker's own finding's repair); the next check shows others."""
        leaked = self.leaked.keys()
        for group in self.duplicates:
            shared = next((self.worker_repairs[w.ref] for w in group.workers if w.ref in self.worker_repairs), None)
            self.findings.append(say.duplicate_claim(group, shared, leaked))

    def report_locks(self) -> None:
        """Locks of actors never seen: orphans (a lock of an actor that does not decode is not), and
        every lock without expiry."""
        for aid in sorted(self.actor_locks):
            lock = self.actor_locks[aid]
            if aid in self.corrupt_actor_ids:
                if lock.ttl_ms is None:
                    self.no_expiry.append(lock)
                continue
            release = ReleaseLock(lock.key, lock.token, "orphan")
            self.findings.append(say.orphan_lock(lock, aid, release))
            if lock.ttl_ms is None:
                self.findings.append(say.orphan_lock_without_expiry(lock, release))
            elif self.stale(lock, None):
                self.findings.append(say.stale_lock(lock, None, self.now, release, aid))
        for lock in sorted(self.no_expiry, key=lambda lock: (lock.key, lock.token)):
            self.findings.append(say.lock_without_expiry(lock))

    def stale(self, lock: LockEntry, status: int | None) -> bool:
        return is_stale(lock.ttl_ms, lock.first_seen, self.now, status, self.stale_lock_s)

    def withhold_unreadable_repairs(self) -> None:
        if not self.unreadable_keys:
            return
        self.findings = [
            say.withheld(f, f.repair.key) if f.repair is not None and f.repair.key in self.unreadable_keys else f
            for f in self.findings
        ]

    # ----------------------------------------------------------------------------- the report

    def report(self, started: float, duration_s: float) -> CheckReport:
        counts = {k: 0 for k in KINDS}
        for f in self.findings:
            counts[f.kind] = counts.get(f.kind, 0) + 1
        order = {k: i for i, k in enumerate(KINDS)}
        self.findings.sort(key=lambda f: (order.get(f.kind, len(KINDS)), f.keys))
        return dataclasses.replace(
            self.totals, findings=self.findings, counts=counts, duration_s=duration_s, started_at=started
        )


def run_check(persistence, *, page_size: int = PAGE_SIZE, stale_lock_s: float = DEFAULT_STALE_LOCK_S) -> CheckReport:
    """Walk locks, then workers, then actors, page by page, and return the findings."""
    return Checker(persistence, page_size, stale_lock_s=stale_lock_s).run()


def check_records(
    persistence,
    *,
    locks=(),
    workers=(),
    actors=(),
    corrupt=(),
    stale_lock_s: float = DEFAULT_STALE_LOCK_S,
    read_at: float | None = None,
) -> CheckReport:
    """The check's rules on the given records only (read by the caller, as the scans would give them:
    Actor/Worker, UnreadableRecord, CorruptEntry): every actor a given worker claims must be among
    ``actors`` or ``corrupt``, else it is taken as missing. Records it was not given count as absent.
    ``read_at``: when the locks were read (their TTLs are of then); now if not given."""
    started, t0 = time.time(), time.perf_counter()
    c = Checker(persistence, stale_lock_s=stale_lock_s, now=read_at)
    c.take_locks(locks)
    c.note_sightings(prune=False)
    c.take_workers(list(workers))
    c.take_actors(list(actors), list(corrupt))
    return c.conclude(started, t0)
