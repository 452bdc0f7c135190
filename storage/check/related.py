"""One record's findings: the record and its relations read by key or found by a bounded walk, then
the check's own rules run on them (checker.check_records), keeping the findings that name the record.

An actor's relations: its lock, every worker claiming it and every worker at its ateom pod (one
walk of the workers, filtered on the primaries: storage/matches.py), and the actors those workers claim
(one batched read). A worker's: the actor it claims (and that actor's lock and pod), the workers
claiming that actor or at either pod, and the actors whose pod is this worker's (a walk of the actors).

The walks stop after ``search_s`` seconds (the page says so, and how far they got: ``Search``); a
record page never waits for a whole-store walk. What a stopped walk did not reach is absent to the
rules, so a finding may be missing then (never invented: the workers at the actor's pod are also read
by key in the known pools). Not run here: the server-readability rule (the record page shows that
notice from the stored bytes) and the rules about other records of the relations.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from storage.ateapi_pb2 import Actor, Worker
from storage.check.checker import check_records
from storage.check.lockage import DEFAULT_STALE_LOCK_S, LockState, lock_states
from storage.check.report import Finding
from storage.errors import CorruptRecord, NotFound
from storage.keys import actor_key, actor_lock_key, worker_key
from storage.matches import ByteClause, WalkFilter, actor_walk
from storage.raw import LockInfo
from storage.records import ACTORS, WORKERS
from storage.scanning import CorruptEntry

DEFAULT_SEARCH_S = 2.0
_MAX_MATCHES = 1000


@dataclass(frozen=True)
class Search:
    """How a record's relations were found: a walk of ``scanned`` keys of about ``total_keys``."""

    what: str
    complete: bool
    scanned: int
    total_keys: int
    seconds: float
    truncated: bool = False


@dataclass
class RecordFindings:
    findings: list[Finding]
    searches: list[Search]
    lock: LockInfo | None = None
    lock_state: LockState | None = None
    claimants: list[Worker] = field(default_factory=list)  # workers claiming the actor (of a worker: its actor)
    at_pod: list[Actor] = field(default_factory=list)  # a worker's page: actors whose pod is this worker

    @property
    def complete(self) -> bool:
        return all(s.complete for s in self.searches)


def _quoted(text: str) -> bytes:
    return b'"' + text.encode("utf-8", "surrogatepass") + b'"'


def _workers_filter(actor_ids: set[str], pods: set[tuple[str, str]]) -> WalkFilter:
    """Workers claiming one of ``actor_ids`` or at one of ``pods`` ((namespace, pod))."""
    needles = [_quoted(a) for a in sorted(actor_ids)] + [_quoted(p) for _, p in sorted(pods)]

    def ok(w: Any) -> bool:
        return w.actor_id in actor_ids or (w.worker_namespace, w.worker_pod) in pods

    clauses = (ByteClause(tuple((True, n) for n in needles)),)
    return WalkFilter(WORKERS, "worker:*", clauses, ok, (("related", ",".join(sorted(actor_ids))),))


def bounded_walk(
    persistence, wanted: WalkFilter, seconds: float, what: str, *, max_results: int = _MAX_MATCHES
) -> tuple[list, Search]:
    """The matches of ``wanted`` found within ``seconds`` (then the walk is cancelled)."""
    t0 = time.monotonic()
    walk = persistence.full_walk(wanted, max_results=max_results)
    timer = threading.Timer(seconds, walk.cancel)
    timer.daemon = True
    timer.start()
    try:
        result = walk.run()
    finally:
        timer.cancel()
    records = []
    for key in result.keys:
        try:
            records.append(persistence.get_record(wanted.kind, key))
        except (NotFound, CorruptRecord):
            continue  # gone or changed since the walk
    search = Search(
        what,
        not result.cancelled and not result.truncated,
        result.scanned,
        result.total_keys,
        time.monotonic() - t0,
        result.truncated,
    )
    return [r for r in records if wanted.matches(r)], search


def _read_actors(p, ids) -> tuple[list[Actor], list[CorruptEntry]]:
    records, _gone, corrupt = p.read_records(ACTORS, [actor_key(i) for i in sorted(ids)])
    return records, corrupt


def _lock(p, actor_id: str) -> LockInfo | None:
    try:
        return p.get_lock(actor_lock_key(actor_id))
    except CorruptRecord:
        return None  # something that is not a lock: the page says so on its own


def _dedupe(workers) -> list[Worker]:
    out = {}
    for w in workers:
        if w is not None:
            out[worker_key(w.worker_namespace, w.worker_pool, w.worker_pod)] = w
    return [out[k] for k in sorted(out)]


def _naming(findings, keys) -> list[Finding]:
    return [f for f in findings if any(k in f.keys for k in keys)]


def actor_findings(
    p,
    actor: Actor,
    *,
    pod_worker: Worker | None = None,
    stale_lock_s: float = DEFAULT_STALE_LOCK_S,
    search_s: float = DEFAULT_SEARCH_S,
) -> RecordFindings:
    """``actor`` (as stored now) against its lock and workers, by the check's rules.
    ``pod_worker``: the worker at its pod the caller already read (by key in the known pools)."""
    aid = actor.actor_id
    read_at = time.time()  # a lock's hold counts to when its TTL was read (storage/check/lockage.py)
    lock = _lock(p, aid)
    pods = {(actor.ateom_pod_namespace, actor.ateom_pod_name)} if actor.ateom_pod_name else set()
    found, search = bounded_walk(
        p, _workers_filter({aid}, pods), search_s, "workers claiming this actor or at its ateom pod"
    )
    workers = _dedupe([*found, pod_worker])
    others = {w.actor_id for w in workers if w.actor_id and w.actor_id != aid}
    actors, corrupt = _read_actors(p, others)
    report = check_records(
        p,
        locks=[lock] if lock else [],
        workers=workers,
        actors=[actor, *actors],
        corrupt=corrupt,
        stale_lock_s=stale_lock_s,
        read_at=read_at,
    )
    state = lock_states(p, [lock], stale_lock_s, read_at=read_at).get(lock.key) if lock else None
    return RecordFindings(
        findings=_naming(report.findings, (actor_key(aid), actor_lock_key(aid))),
        searches=[search],
        lock=lock,
        lock_state=state,
        claimants=[w for w in workers if w.actor_id == aid],
    )


def worker_findings(
    p,
    worker: Worker,
    *,
    stale_lock_s: float = DEFAULT_STALE_LOCK_S,
    search_s: float = DEFAULT_SEARCH_S,
) -> RecordFindings:
    """``worker`` (as stored now) against the actor it claims, that actor's other workers and the
    actors whose pod it is, by the check's rules."""
    ns, pod = worker.worker_namespace, worker.worker_pod
    wkey = worker_key(ns, worker.worker_pool, pod)
    aid = worker.actor_id
    claimed = None
    if aid:
        try:
            claimed = p.get_actor(aid)
        except (NotFound, CorruptRecord):
            claimed = None
    pods = {(ns, pod)}
    if claimed is not None and claimed.ateom_pod_name:
        pods.add((claimed.ateom_pod_namespace, claimed.ateom_pod_name))
    ids = {aid} if aid else set()
    with ThreadPoolExecutor(2) as pool:
        wf = pool.submit(bounded_walk, p, _workers_filter(ids, pods), search_s, "workers of its actor or its pod")
        af = pool.submit(bounded_walk, p, actor_walk(pod_namespace=ns, pod_name=pod), search_s, "actors naming its pod")
        (found, wsearch), (at_pod, asearch) = wf.result(), af.result()
    workers = _dedupe([*found, worker])
    others = {w.actor_id for w in workers if w.actor_id} | {a.actor_id for a in at_pod}
    actors, corrupt = _read_actors(p, others)
    read_at = time.time()
    lock = _lock(p, aid) if aid else None
    report = check_records(
        p,
        locks=[lock] if lock else [],
        workers=workers,
        actors=actors,
        corrupt=corrupt,
        stale_lock_s=stale_lock_s,
        read_at=read_at,
    )
    return RecordFindings(
        findings=_naming(report.findings, (wkey,)),
        searches=[wsearch, asearch],
        lock=lock,
        claimants=[w for w in workers if aid and w.actor_id == aid],
        at_pod=sorted(at_pod, key=lambda a: a.actor_id),
    )


def introduced(before: list[Finding], after: list[Finding]) -> list[Finding]:
    """The findings of ``after`` that ``before`` did not have (by kind and records)."""
    had = {(f.kind, f.keys) for f in before}
    return [f for f in after if (f.kind, f.keys) not in had]


def edit_findings(p, stored, edited, **kwargs) -> list[Finding]:
    """What saving ``edited`` over ``stored`` (an Actor or a Worker) would add to the check's findings
    on the record: the same rules on both, with the relations as they are stored now."""
    check: Callable[..., RecordFindings] = actor_findings if isinstance(stored, Actor) else worker_findings
    with ThreadPoolExecutor(2) as pool:  # both at once: the walks are bounded in time, not summed
        before, after = (pool.submit(check, p, record, **kwargs) for record in (stored, edited))
        return introduced(before.result().findings, after.result().findings)
