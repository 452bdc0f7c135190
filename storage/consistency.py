"""Cross-checks of actors, workers and locks, and the repairs that mend what they find.

The ate store cannot update an actor and its worker in one atomic step (they live in different hash
slots), so a crash between the two writes leaves them disagreeing. ``run_check`` walks the whole store
page by page through the storage API (``scan_locks``, ``scan_workers``, ``scan_actors``: batched reads
per node, no round trip per record) and reports:

========================  ===========================================================================
kind                      meaning
========================  ===========================================================================
``orphan_worker``         a worker assigned to an actor that does not exist
``leaked_worker``         a worker assigned to an actor that points at a different pod (or at none,
                          or that is SUSPENDED)
``actor_without_worker``  a RUNNING/RESUMING actor whose ateom pod has no worker record (or that
                          names no pod at all)
``actor_worker_free``     a RUNNING/RESUMING actor whose worker is free
``actor_worker_elsewhere`` a RUNNING/RESUMING actor whose worker is assigned to another actor
``duplicate_claim``       two or more workers claiming the same actor
``suspended_with_pod``    a SUSPENDED actor that still names an ateom pod
``orphan_lock``           a ``lock:actor:<id>`` lock for an actor that does not exist
``lock_without_expiry``   a lock key with no TTL
``corrupt_record``        a record that does not decode (reported, never repaired here)
========================  ===========================================================================

Matching an actor to its worker: the actor names ``ateom_pod_namespace``/``ateom_pod_name``; workers
are keyed ``worker:<namespace>:<pool>:<pod>``. The pool is not known from the actor, so the worker is
the one whose (namespace, pod) equals the actor's; when several pools hold that pod name, the worker
whose ``ip`` equals the actor's ``ateom_pod_ip`` wins, and if that is still ambiguous, the one that
claims the actor.

Repairs. Every finding carries a :class:`Repair` except corrupt records and the few cases a person must
decide (two running actors naming one pod; two pools' workers with the actor's pod name and no IP to tell
them apart: ``note`` says why). Findings about the same record share one repair object, and different
repairs never touch the same record, so applying each distinct repair of a report once
(``repairs``/``apply_all``) leaves a store that checks clean (unless it changed meanwhile).
``describe()`` gives the exact field changes; ``apply(persistence)`` re-reads the record, re-checks that
the finding still holds (otherwise :class:`RepairNotApplicable`, "no longer applies"), then writes with
the version that the check saw (``VersionConflict`` propagates when the record changed between the
re-read and the write). Locks have no version: a lock is released only when its holder token is still the
one the check saw (``release_lock`` is atomic on the token).

Memory bound. Actors are streamed and never kept: only the page in hand is in memory. What is kept is
O(W + L + F): a compact index of the W workers (by (namespace, pod), and by claimed actor id for
assigned workers), the L ``lock:actor:*`` locks, and the F findings. Per-record state is a short tuple
of strings, about 400 bytes per worker (peak 18 MiB with 40k workers, 166 MiB with 400k). W and L
are bounded by the cluster's pods and in-flight operations, not by the number of actors, which is the
large dimension (100k-1M).

Records that change while the check runs may yield findings that no longer hold by the time they are
read; the repairs re-check before writing, so such a finding can never cause a wrong write.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from storage.ateapi_pb2 import Actor, Worker
from storage.errors import CorruptRecord, NotFound, VersionConflict
from storage.keys import ACTOR_LOCK_PREFIX, ACTOR_PREFIX, WORKER_PREFIX

PAGE_SIZE = 1000

ORPHAN_WORKER = "orphan_worker"
LEAKED_WORKER = "leaked_worker"
ACTOR_WITHOUT_WORKER = "actor_without_worker"
ACTOR_WORKER_FREE = "actor_worker_free"
ACTOR_WORKER_ELSEWHERE = "actor_worker_elsewhere"
DUPLICATE_CLAIM = "duplicate_claim"
SUSPENDED_WITH_POD = "suspended_with_pod"
ORPHAN_LOCK = "orphan_lock"
LOCK_WITHOUT_EXPIRY = "lock_without_expiry"
CORRUPT_RECORD = "corrupt_record"

KINDS = (
    ORPHAN_WORKER,
    LEAKED_WORKER,
    ACTOR_WITHOUT_WORKER,
    ACTOR_WORKER_FREE,
    ACTOR_WORKER_ELSEWHERE,
    DUPLICATE_CLAIM,
    SUSPENDED_WITH_POD,
    ORPHAN_LOCK,
    LOCK_WITHOUT_EXPIRY,
    CORRUPT_RECORD,
)

KIND_TITLES = {
    ORPHAN_WORKER: "Worker assigned to an actor that does not exist",
    LEAKED_WORKER: "Leaked worker (its actor points at a different pod)",
    ACTOR_WITHOUT_WORKER: "Running actor whose ateom pod has no worker record",
    ACTOR_WORKER_FREE: "Running actor whose worker is free",
    ACTOR_WORKER_ELSEWHERE: "Running actor whose worker is assigned elsewhere",
    DUPLICATE_CLAIM: "Two or more workers claiming the same actor",
    SUSPENDED_WITH_POD: "Suspended actor still naming an ateom pod",
    ORPHAN_LOCK: "Lock for an actor that does not exist",
    LOCK_WITHOUT_EXPIRY: "Lock without expiry",
    CORRUPT_RECORD: "Record that does not decode",
}

ACTIVE = (Actor.STATUS_RUNNING, Actor.STATUS_RESUMING)
POD_FIELDS = ("ateom_pod_namespace", "ateom_pod_name", "ateom_pod_ip")
CLAIM_FIELDS = ("actor_namespace", "actor_template", "actor_id")


def status_name(status: int) -> str:
    try:
        return Actor.Status.Name(status)
    except ValueError:
        return str(status)


def _actor_key(actor_id: str) -> str:
    return ACTOR_PREFIX + actor_id


def _worker_key(ns: str, pool: str, pod: str) -> str:
    return f"{WORKER_PREFIX}{ns}:{pool}:{pod}"


class RepairNotApplicable(VersionConflict):
    """The record changed since the check, so the repair no longer applies; nothing was written.

    A subclass of ``VersionConflict`` (the record is not the one the check saw) and so of
    ``StorageError``."""

    def __init__(self, key: str, message: str, expected: int | None = None, actual: int | None = None):
        super().__init__(key, expected, actual, f"no longer applies: {message}")


@dataclass(frozen=True)
class FieldChange:
    key: str
    field: str
    before: str
    after: str

    def __str__(self) -> str:
        return f"{self.key}: {self.field} {self.before!r} → {self.after!r}"


# ---------------------------------------------------------------------------------------------------
# Repairs
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Repair:
    """Base of the repairs. Subclasses are frozen dataclasses of plain values, so a repair can be
    serialised (``to_dict``/``Repair.from_dict``) into a confirmation form and rebuilt to apply it."""

    action = "repair"
    title = "Repair"

    @property
    def key(self) -> str:  # the record written
        raise NotImplementedError

    def changes(self) -> list[FieldChange]:
        raise NotImplementedError

    def describe(self) -> str:
        head = f"{self.title}: {self.key}"
        version = getattr(self, "version", None)
        if version is not None:
            head += f" (version {version} → {version + 1})"
        return head + "\n" + "\n".join(f"  {c.field}: {c.before!r} → {c.after!r}" for c in self.changes())

    def verify(self, persistence):
        """Re-read the record and re-check that the finding still holds, without writing: returns the
        record as stored now, or raises RepairNotApplicable ("no longer applies")."""
        raise NotImplementedError

    def apply(self, persistence) -> dict:
        """Re-read, re-check (``verify``), write. Returns an audit dict: key, version_before, version_after,
        changed_fields ({field: [before, after]})."""
        raise NotImplementedError

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["action"] = self.action
        return d

    @staticmethod
    def from_dict(data: dict) -> Repair:
        data = dict(data)
        action = data.pop("action", None)
        cls = _REPAIRS.get(action)
        if cls is None:
            raise ValueError(f"unknown repair action {action!r}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"unknown repair fields {sorted(unknown)}")
        kwargs = {}
        for f in dataclasses.fields(cls):
            value = data[f.name]
            if isinstance(value, list):
                value = tuple(tuple(v) if isinstance(v, list) else v for v in value)
            kwargs[f.name] = value
        return cls(**kwargs)

    def _audit(self, version_before, version_after) -> dict:
        return {
            "action": self.action,
            "key": self.key,
            "version_before": version_before,
            "version_after": version_after,
            "changed_fields": {c.field: [c.before, c.after] for c in self.changes()},
        }


def _actor_exists(p, actor_id: str) -> Actor | None | bool:
    """The actor, None when missing, True when present but corrupt."""
    try:
        return p.get_actor(actor_id)
    except NotFound:
        return None
    except CorruptRecord:
        return True


def _read_worker(p, ns, pool, pod) -> Worker:
    key = _worker_key(ns, pool, pod)
    try:
        return p.get_worker(ns, pool, pod)
    except NotFound:
        raise RepairNotApplicable(key, f"{key} no longer exists") from None


def _read_actor(p, actor_id) -> Actor:
    key = _actor_key(actor_id)
    try:
        return p.get_actor(actor_id)
    except NotFound:
        raise RepairNotApplicable(key, f"{key} no longer exists") from None


def _same_version(key: str, seen: int, stored: int) -> None:
    if stored != seen:
        raise RepairNotApplicable(
            key, f"{key} changed since the check (version {seen} seen, {stored} stored)", seen, stored
        )


@dataclass(frozen=True)
class FreeWorker(Repair):
    """Clear the worker's claim (actor_namespace, actor_template, actor_id).

    ``reason``: "orphan" (the claimed actor does not exist), "leaked" (it exists but points at another
    pod, at none, or is SUSPENDED), "duplicate" (another pool's worker with the same pod name and the
    actor's IP also claims it)."""

    namespace: str
    pool: str
    pod: str
    version: int
    actor_namespace: str
    actor_template: str
    actor_id: str
    reason: str

    action = "free_worker"
    title = "Free the worker"

    @property
    def key(self) -> str:
        return _worker_key(self.namespace, self.pool, self.pod)

    def changes(self) -> list[FieldChange]:
        return [
            FieldChange(self.key, f, before, "")
            for f, before in zip(CLAIM_FIELDS, (self.actor_namespace, self.actor_template, self.actor_id))
            if before
        ]

    def verify(self, persistence) -> Worker:
        p = persistence
        w = _read_worker(p, self.namespace, self.pool, self.pod)
        _same_version(self.key, self.version, w.version)
        if (w.actor_namespace, w.actor_template, w.actor_id) != (
            self.actor_namespace,
            self.actor_template,
            self.actor_id,
        ):
            raise RepairNotApplicable(self.key, f"{self.key} no longer claims actor {self.actor_id!r}")
        actor = _actor_exists(p, self.actor_id)
        if self.reason == "orphan":
            if actor is not None:
                raise RepairNotApplicable(self.key, f"actor {self.actor_id!r} exists now")
        elif self.reason == "duplicate":
            # Several pools hold the actor's pod name; it runs on the one whose IP matches.
            if not isinstance(actor, Actor):
                raise RepairNotApplicable(self.key, f"actor {self.actor_id!r} no longer exists as the check saw it")
            if actor.ateom_pod_ip and w.ip == actor.ateom_pod_ip:
                raise RepairNotApplicable(self.key, f"actor {self.actor_id!r} runs on this worker's IP now")
        else:
            if actor is None:
                # Still wrong (now an orphan claim): freeing is still the right repair.
                pass
            elif actor is True:
                raise RepairNotApplicable(self.key, f"actor {self.actor_id!r} does not decode; repair it first")
            elif actor.status != Actor.STATUS_SUSPENDED and (
                actor.ateom_pod_namespace,
                actor.ateom_pod_name,
            ) == (self.namespace, self.pod):
                raise RepairNotApplicable(self.key, f"actor {self.actor_id!r} points at this worker's pod now")
        return w

    def apply(self, persistence) -> dict:
        w = self.verify(persistence)
        p = persistence
        before = w.version
        for f in CLAIM_FIELDS:
            setattr(w, f, "")
        p.update_worker(w, self.version)
        return self._audit(before, w.version)


@dataclass(frozen=True)
class AssignWorker(Repair):
    """Make the worker at a RUNNING/RESUMING actor's pod claim that actor (the worker was free, or
    claimed an actor that does not exist or does not point back at it)."""

    namespace: str
    pool: str
    pod: str
    version: int
    actor_namespace: str  # the claim seen (empty when free)
    actor_template: str
    actor_id: str
    to_actor_namespace: str
    to_actor_template: str
    to_actor_id: str

    action = "assign_worker"
    title = "Assign the worker to the actor at its pod"

    @property
    def key(self) -> str:
        return _worker_key(self.namespace, self.pool, self.pod)

    def changes(self) -> list[FieldChange]:
        return [
            FieldChange(self.key, f, before, after)
            for f, before, after in zip(
                CLAIM_FIELDS,
                (self.actor_namespace, self.actor_template, self.actor_id),
                (self.to_actor_namespace, self.to_actor_template, self.to_actor_id),
            )
            if before != after
        ]

    def verify(self, persistence) -> Worker:
        p = persistence
        w = _read_worker(p, self.namespace, self.pool, self.pod)
        _same_version(self.key, self.version, w.version)
        if (w.actor_namespace, w.actor_template, w.actor_id) != (
            self.actor_namespace,
            self.actor_template,
            self.actor_id,
        ):
            raise RepairNotApplicable(self.key, f"{self.key} no longer has the claim the check saw")
        target = _read_actor(p, self.to_actor_id)
        if target.status not in ACTIVE or (target.ateom_pod_namespace, target.ateom_pod_name) != (
            self.namespace,
            self.pod,
        ):
            raise RepairNotApplicable(self.key, f"actor {self.to_actor_id!r} is no longer running on this worker's pod")
        if (target.actor_template_namespace, target.actor_template_name) != (
            self.to_actor_namespace,
            self.to_actor_template,
        ):
            raise RepairNotApplicable(self.key, f"actor {self.to_actor_id!r} changed template")
        if self.actor_id:
            previous = _actor_exists(p, self.actor_id)
            if previous is True:
                raise RepairNotApplicable(self.key, f"actor {self.actor_id!r} does not decode; repair it first")
            if (
                previous is not None
                and previous.status != Actor.STATUS_SUSPENDED
                and (previous.ateom_pod_namespace, previous.ateom_pod_name) == (self.namespace, self.pod)
            ):
                raise RepairNotApplicable(self.key, f"actor {self.actor_id!r} points at this worker's pod now")
        return w

    def apply(self, persistence) -> dict:
        w = self.verify(persistence)
        p = persistence
        before = w.version
        w.actor_namespace = self.to_actor_namespace
        w.actor_template = self.to_actor_template
        w.actor_id = self.to_actor_id
        p.update_worker(w, self.version)
        return self._audit(before, w.version)


@dataclass(frozen=True)
class ClearActorPod(Repair):
    """Clear the ateom pod fields of a SUSPENDED actor."""

    actor_id: str
    version: int
    ateom_pod_namespace: str
    ateom_pod_name: str
    ateom_pod_ip: str

    action = "clear_actor_pod"
    title = "Clear the stale pod fields"

    @property
    def key(self) -> str:
        return _actor_key(self.actor_id)

    def changes(self) -> list[FieldChange]:
        return [
            FieldChange(self.key, f, before, "")
            for f, before in zip(POD_FIELDS, (self.ateom_pod_namespace, self.ateom_pod_name, self.ateom_pod_ip))
            if before
        ]

    def verify(self, persistence) -> Actor:
        p = persistence
        a = _read_actor(p, self.actor_id)
        _same_version(self.key, self.version, a.version)
        if a.status != Actor.STATUS_SUSPENDED:
            raise RepairNotApplicable(self.key, f"{self.key} is {status_name(a.status)} now")
        if not (a.ateom_pod_namespace or a.ateom_pod_name or a.ateom_pod_ip):
            raise RepairNotApplicable(self.key, f"{self.key} names no pod any more")
        return a

    def apply(self, persistence) -> dict:
        a = self.verify(persistence)
        p = persistence
        before = a.version
        for f in POD_FIELDS:
            setattr(a, f, "")
        p.update_actor(a, self.version)
        return self._audit(before, a.version)


@dataclass(frozen=True)
class SuspendActor(Repair):
    """Mark a RUNNING/RESUMING actor whose worker is gone (or belongs to another actor) SUSPENDED and
    clear its pod fields, so that the ate API resumes it from its last snapshot.

    ``reason``: "no_worker" (no worker record at its pod, or it names none) or "worker_elsewhere"
    (the worker at its pod claims another actor that points back at it)."""

    actor_id: str
    version: int
    status: int
    ateom_pod_namespace: str
    ateom_pod_name: str
    ateom_pod_ip: str
    reason: str
    other_actor_id: str = ""

    action = "suspend_actor"
    title = "Mark the actor SUSPENDED and clear its pod fields"

    @property
    def key(self) -> str:
        return _actor_key(self.actor_id)

    def changes(self) -> list[FieldChange]:
        out = [FieldChange(self.key, "status", status_name(self.status), "STATUS_SUSPENDED")]
        out += [
            FieldChange(self.key, f, before, "")
            for f, before in zip(POD_FIELDS, (self.ateom_pod_namespace, self.ateom_pod_name, self.ateom_pod_ip))
            if before
        ]
        return out

    def verify(self, persistence) -> Actor:
        p = persistence
        a = _read_actor(p, self.actor_id)
        _same_version(self.key, self.version, a.version)
        if a.status not in ACTIVE:
            raise RepairNotApplicable(self.key, f"{self.key} is {status_name(a.status)} now")
        ns, pod = a.ateom_pod_namespace, a.ateom_pod_name
        if ns or pod:
            workers = list(_workers_at_pod(p, ns, pod))
            if self.reason == "no_worker":
                if workers:
                    raise RepairNotApplicable(self.key, f"a worker exists at {ns}/{pod} now: {workers[0][0]}")
            else:
                if not workers:
                    raise RepairNotApplicable(self.key, f"no worker exists at {ns}/{pod} any more")
                for wkey, w in workers:
                    if w.actor_id == self.actor_id:
                        raise RepairNotApplicable(self.key, f"{wkey} claims this actor now")
                    other = _actor_exists(p, w.actor_id) if w.actor_id else None
                    if not (
                        isinstance(other, Actor)
                        and other.status != Actor.STATUS_SUSPENDED
                        and (other.ateom_pod_namespace, other.ateom_pod_name) == (ns, pod)
                    ):
                        raise RepairNotApplicable(self.key, f"{wkey} no longer belongs to an actor running on that pod")
        return a

    def apply(self, persistence) -> dict:
        a = self.verify(persistence)
        p = persistence
        before = a.version
        a.status = Actor.STATUS_SUSPENDED
        for f in POD_FIELDS:
            setattr(a, f, "")
        p.update_actor(a, self.version)
        return self._audit(before, a.version)


@dataclass(frozen=True)
class ReleaseLock(Repair):
    """Release a stale lock, only while its holder token is the one the check saw.

    ``reason``: "orphan" (its actor does not exist) or "no_expiry"."""

    lock_key: str
    token: str
    reason: str

    action = "release_lock"
    title = "Release the lock"

    @property
    def key(self) -> str:
        return self.lock_key

    def describe(self) -> str:
        return f"{self.title}: {self.lock_key}\n  deleted while its holder token is {self.token!r}"

    def changes(self) -> list[FieldChange]:
        return [FieldChange(self.lock_key, "holder", self.token, "(released)")]

    def verify(self, persistence):
        p = persistence
        info = p.get_lock(self.lock_key)
        if info is None:
            raise RepairNotApplicable(self.lock_key, f"{self.lock_key} is not held any more")
        if info.token != self.token:
            raise RepairNotApplicable(self.lock_key, f"{self.lock_key} is held by another token now")
        if self.reason == "orphan":
            actor_id = self.lock_key[len(ACTOR_LOCK_PREFIX) :]
            if _actor_exists(p, actor_id) is not None:
                raise RepairNotApplicable(self.lock_key, f"actor {actor_id!r} exists now")
        elif info.ttl_ms is not None:
            raise RepairNotApplicable(self.lock_key, f"{self.lock_key} has an expiry now")
        return info

    def apply(self, persistence) -> dict:
        self.verify(persistence)
        persistence.release_lock(self.lock_key, self.token)
        return self._audit(None, None)


_REPAIRS = {cls.action: cls for cls in (FreeWorker, AssignWorker, ClearActorPod, SuspendActor, ReleaseLock)}


def _glob_escape(s: str) -> str:
    out = []
    for ch in s:
        if ch in "*?[]\\":
            out.append("\\")
        out.append(ch)
    return "".join(out)


def _workers_at_pod(p, ns: str, pod: str) -> Iterator[tuple[str, Worker]]:
    """Every worker whose (namespace, pod) is (ns, pod), whatever its pool: one SCAN MATCH per
    primary (server-side filter) and a GET per match. Used by a repair's re-check only."""
    client = _client_of(p)
    pattern = f"{WORKER_PREFIX}{_glob_escape(ns)}:*:{_glob_escape(pod)}"
    seen = set()
    for raw_key in client.scan_iter(match=pattern, count=1000):
        key = raw_key.decode() if isinstance(raw_key, bytes) else raw_key
        if key in seen:
            continue
        seen.add(key)
        parts = key[len(WORKER_PREFIX) :].split(":")
        if len(parts) != 3 or parts[0] != ns or parts[2] != pod:
            continue
        try:
            yield key, p.get_worker(parts[0], parts[1], parts[2])
        except NotFound:
            continue


def _client_of(p):
    return p.client


# ---------------------------------------------------------------------------------------------------
# Findings and the check
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    kind: str
    keys: tuple[str, ...]
    message: str
    repair: Repair | None = None
    note: str = ""  # why there is no repair, when there is none

    @property
    def title(self) -> str:
        return KIND_TITLES.get(self.kind, self.kind)

    def to_dict(self) -> dict:
        return {
            "kind": self.kind,
            "keys": list(self.keys),
            "message": self.message,
            "repair": ({"description": self.repair.describe(), **self.repair.to_dict()} if self.repair else None),
            "note": self.note,
        }


@dataclass
class CheckReport:
    findings: list[Finding]
    counts: dict[str, int]
    duration_s: float
    keys_scanned: int
    actors: int
    workers: int
    locks: int
    started_at: float = field(default_factory=time.time)

    @property
    def ok(self) -> bool:
        return not self.findings

    def to_dict(self) -> dict:
        return {
            "ok": self.ok,
            "started_at": self.started_at,
            "duration_s": round(self.duration_s, 4),
            "keys_scanned": self.keys_scanned,
            "actors": self.actors,
            "workers": self.workers,
            "locks": self.locks,
            "counts": dict(self.counts),
            "findings": [f.to_dict() for f in self.findings],
        }

    def by_kind(self, kind: str) -> list[Finding]:
        return [f for f in self.findings if f.kind == kind]


def _pages(scan, page_size: int) -> Iterator[Any]:
    cursor = None
    while True:
        page = scan(cursor=cursor, limit=page_size)
        yield page
        cursor = page.next_cursor
        if cursor is None:
            return


# Compact worker entry: (pool, actor_namespace, actor_template, actor_id, version, ip)
_W_POOL, _W_ANS, _W_ATPL, _W_AID, _W_VER, _W_IP = range(6)
_intern = sys.intern


class _WorkerIndex:
    """Every worker, by (namespace, pod) and by the actor it claims, in little memory: one string key
    per pod ("ns\0pod"), a bare entry tuple (a list only when several pools share the pod name),
    namespaces, pools and templates interned (they repeat), and claims pointing at the pod key."""

    __slots__ = ("_by_pod", "_claims")

    def __init__(self):
        self._by_pod: dict[str, tuple | list] = {}
        self._claims: dict[str, str | list] = {}

    def add(self, w: Worker) -> None:
        pod_key = _intern(w.worker_namespace) + "\0" + w.worker_pod
        entry = (
            _intern(w.worker_pool),
            _intern(w.actor_namespace),
            _intern(w.actor_template),
            w.actor_id,
            w.version,
            w.ip,
        )
        present = self._by_pod.get(pod_key)
        if present is None:
            self._by_pod[pod_key] = entry
        elif isinstance(present, list):
            present.append(entry)
        else:
            self._by_pod[pod_key] = [present, entry]
        if w.actor_id:
            claimed = self._claims.get(w.actor_id)
            if claimed is None:
                self._claims[w.actor_id] = pod_key
            elif isinstance(claimed, list):
                if pod_key not in claimed:
                    claimed.append(pod_key)
            elif claimed != pod_key:
                self._claims[w.actor_id] = [claimed, pod_key]

    def at_pod(self, ns: str, pod: str) -> list[tuple]:
        present = self._by_pod.get(ns + "\0" + pod)
        if present is None:
            return []
        return present if isinstance(present, list) else [present]

    def is_claimed(self, actor_id: str) -> bool:
        return actor_id in self._claims

    def claimed_ids(self):
        return self._claims.keys()

    def claimants(self, actor_id: str) -> list[tuple[str, str, str, tuple]]:
        """(ns, pool, pod, entry) of every worker claiming the actor."""
        claimed = self._claims.get(actor_id)
        if claimed is None:
            return []
        out = []
        for pod_key in claimed if isinstance(claimed, list) else (claimed,):
            ns, pod = pod_key.split("\0", 1)
            for e in self.at_pod(ns, pod):
                if e[_W_AID] == actor_id:
                    out.append((ns, e[_W_POOL], pod, e))
        return out


def run_check(persistence, *, page_size: int = PAGE_SIZE) -> CheckReport:
    """Walk locks, then workers, then actors, page by page, and return the findings."""
    p = persistence
    started = time.time()
    t0 = time.perf_counter()
    findings: list[Finding] = []
    keys_scanned = 0

    # -- locks: keep lock:actor:* (actor id -> (key, token, ttl)); report missing expiry now.
    actor_locks: dict[str, tuple[str, str, int | None]] = {}
    n_locks = 0
    no_expiry: list[tuple[str, str]] = []
    for page in _pages(p.scan_locks, page_size):
        keys_scanned += page.scanned
        for info in page.records:
            n_locks += 1
            if info.key.startswith(ACTOR_LOCK_PREFIX):
                actor_locks[info.key[len(ACTOR_LOCK_PREFIX) :]] = (info.key, info.token, info.ttl_ms)
            elif info.ttl_ms is None:
                no_expiry.append((info.key, info.token))
        for c in page.corrupt:
            findings.append(_corrupt(c))

    # -- workers: a compact index by (ns, pod) and by claimed actor id.
    index = _WorkerIndex()
    corrupt_workers = 0
    n_workers = 0
    for page in _pages(p.scan_workers, page_size):
        keys_scanned += page.scanned
        for w in page.records:
            n_workers += 1
            index.add(w)
        for c in page.corrupt:
            corrupt_workers += 1
            findings.append(_corrupt(c))
    claimants = index.claimants

    # -- actors: streamed, never kept.
    seen_claimed: set[str] = set()  # actor ids that are claimed by some worker and exist
    # worker key -> verdict for claimed workers whose actor exists: "ok" | "leaked"
    leaked: dict[tuple[str, str, str], tuple] = {}  # worker (ns,pool,pod) -> (entry, actor summary)
    # Actors running on a pod whose worker claims another actor: decided once all actors are seen.
    pending_elsewhere: list[tuple] = []
    # Free workers already promised to an actor by an AssignWorker repair.
    promised: set[tuple[str, str, str]] = set()
    duplicate_groups: list[tuple[str, list, Any]] = []
    n_actors = 0
    corrupt_actor_ids: set[str] = set()

    for page in _pages(p.scan_actors, page_size):
        keys_scanned += page.scanned
        for c in page.corrupt:
            findings.append(_corrupt(c))
            if c.key.startswith(ACTOR_PREFIX):
                corrupt_actor_ids.add(c.key[len(ACTOR_PREFIX) :])
        for a in page.records:
            n_actors += 1
            aid = a.actor_id
            akey = _actor_key(aid)
            lock = actor_locks.pop(aid, None)
            if lock is not None and lock[2] is None:
                no_expiry.append((lock[0], lock[1]))
            pod_ref = (a.ateom_pod_namespace, a.ateom_pod_name)
            names_pod = bool(a.ateom_pod_namespace or a.ateom_pod_name or a.ateom_pod_ip)
            suspended = a.status == Actor.STATUS_SUSPENDED
            active = a.status in ACTIVE

            # Workers that claim this actor.
            mine = claimants(aid) if index.is_claimed(aid) else []
            if mine:
                seen_claimed.add(aid)
                for ns, pool, pod, e in mine:
                    if suspended or (ns, pod) != pod_ref:
                        leaked[(ns, pool, pod)] = (e, aid, a.status, pod_ref)
                if len(mine) > 1:
                    duplicate_groups.append((aid, mine, (a.status, pod_ref, a.ateom_pod_ip)))

            if suspended and names_pod:
                findings.append(
                    Finding(
                        SUSPENDED_WITH_POD,
                        (akey,),
                        f"actor {aid} is SUSPENDED but still names ateom pod "
                        f"{a.ateom_pod_namespace}/{a.ateom_pod_name} ({a.ateom_pod_ip or 'no IP'})",
                        ClearActorPod(aid, a.version, a.ateom_pod_namespace, a.ateom_pod_name, a.ateom_pod_ip),
                    )
                )

            if not active:
                continue
            if not (a.ateom_pod_namespace and a.ateom_pod_name):
                findings.append(
                    Finding(
                        ACTOR_WITHOUT_WORKER,
                        (akey,),
                        f"actor {aid} is {status_name(a.status)} but names no ateom pod",
                        SuspendActor(
                            aid,
                            a.version,
                            a.status,
                            a.ateom_pod_namespace,
                            a.ateom_pod_name,
                            a.ateom_pod_ip,
                            "no_worker",
                        ),
                    )
                )
                continue
            candidates = index.at_pod(*pod_ref)
            if not candidates:
                findings.append(
                    Finding(
                        ACTOR_WITHOUT_WORKER,
                        (akey,),
                        f"actor {aid} is {status_name(a.status)} on ateom pod {pod_ref[0]}/{pod_ref[1]}, "
                        f"which has no worker record",
                        SuspendActor(
                            aid,
                            a.version,
                            a.status,
                            a.ateom_pod_namespace,
                            a.ateom_pod_name,
                            a.ateom_pod_ip,
                            "no_worker",
                        ),
                    )
                )
                continue
            if any(e[_W_AID] == aid for e in candidates):
                continue  # its worker points back: consistent (duplicates handled above)
            w = _pick(candidates, a.ateom_pod_ip)
            wref = (pod_ref[0], w[_W_POOL], pod_ref[1])
            wkey = _worker_key(*wref)
            if not w[_W_AID]:
                if wref in promised:
                    findings.append(
                        Finding(
                            ACTOR_WORKER_FREE,
                            (akey, wkey),
                            f"actor {aid} is {status_name(a.status)} on {wkey}, which is free; "
                            f"another running actor also points at that pod",
                            None,
                            "another actor points at the same worker: decide by hand which one runs there",
                        )
                    )
                    continue
                promised.add(wref)
                findings.append(
                    Finding(
                        ACTOR_WORKER_FREE,
                        (akey, wkey),
                        f"actor {aid} is {status_name(a.status)} on {wkey}, but that worker is free",
                        AssignWorker(
                            wref[0],
                            wref[1],
                            wref[2],
                            w[_W_VER],
                            w[_W_ANS],
                            w[_W_ATPL],
                            w[_W_AID],
                            a.actor_template_namespace,
                            a.actor_template_name,
                            aid,
                        ),
                    )
                )
                continue
            pending_elsewhere.append(
                (
                    aid,
                    a.version,
                    a.status,
                    a.ateom_pod_namespace,
                    a.ateom_pod_name,
                    a.ateom_pod_ip,
                    a.actor_template_namespace,
                    a.actor_template_name,
                    wref,
                    w,
                )
            )

    # -- workers that claim actors which were never seen.
    orphans: dict[tuple[str, str, str], tuple] = {}
    for aid in index.claimed_ids():
        if aid in seen_claimed or aid in corrupt_actor_ids:
            continue
        group = claimants(aid)
        for ns, pool, pod, e in group:
            orphans[(ns, pool, pod)] = (e, aid)
        if len(group) > 1:
            duplicate_groups.append((aid, group, None))

    # -- actors whose worker claims another actor.
    assigned_by_elsewhere: dict[tuple[str, str, str], str] = {}
    # The one repair of each worker that some finding mends; findings about the same worker share it.
    worker_repairs: dict[tuple[str, str, str], Repair] = {}
    for aid, version, status, pns, pname, pip, tns, tname, wref, w in pending_elsewhere:
        akey = _actor_key(aid)
        wkey = _worker_key(*wref)
        other = w[_W_AID]
        if wref in leaked or wref in orphans:
            # The worker's claim is wrong too: one repair mends both, reassigning it to this actor.
            if wref in assigned_by_elsewhere:
                findings.append(
                    Finding(
                        ACTOR_WORKER_ELSEWHERE,
                        (akey, wkey),
                        f"actor {aid} is {status_name(status)} on {wkey}, which claims actor {other}",
                        None,
                        f"actor {assigned_by_elsewhere[wref]} also runs on that pod: decide by hand",
                    )
                )
                continue
            assigned_by_elsewhere[wref] = aid
            worker_repairs[wref] = AssignWorker(
                wref[0], wref[1], wref[2], w[_W_VER], w[_W_ANS], w[_W_ATPL], w[_W_AID], tns, tname, aid
            )
            findings.append(
                Finding(
                    ACTOR_WORKER_ELSEWHERE,
                    (akey, wkey, _actor_key(other)),
                    f"actor {aid} is {status_name(status)} on {wkey}, which claims actor {other} "
                    f"({'missing' if wref in orphans else 'not running on that pod'})",
                    worker_repairs[wref],
                )
            )
        else:
            findings.append(
                Finding(
                    ACTOR_WORKER_ELSEWHERE,
                    (akey, wkey, _actor_key(other)),
                    f"actor {aid} is {status_name(status)} on {wkey}, but that worker belongs to actor "
                    f"{other}, which runs on it",
                    SuspendActor(aid, version, status, pns, pname, pip, "worker_elsewhere", other),
                )
            )

    # -- orphan and leaked workers (unless an AssignWorker repair already mends them).
    for wref, (e, aid) in sorted(orphans.items()):
        wkey = _worker_key(*wref)
        note = ""
        if wref in assigned_by_elsewhere:
            note = f"the repair assigns it to actor {assigned_by_elsewhere[wref]}, which runs on its pod"
        else:
            worker_repairs[wref] = FreeWorker(*wref, e[_W_VER], e[_W_ANS], e[_W_ATPL], aid, "orphan")
        repair = worker_repairs[wref]
        findings.append(
            Finding(
                ORPHAN_WORKER,
                (wkey, _actor_key(aid)),
                f"worker {wkey} is assigned to actor {aid}, which does not exist",
                repair,
                note,
            )
        )
    for wref, (e, aid, status, pod_ref) in sorted(leaked.items()):
        wkey = _worker_key(*wref)
        if status == Actor.STATUS_SUSPENDED:
            why = f"actor {aid} is SUSPENDED"
        elif pod_ref[0] or pod_ref[1]:
            why = f"actor {aid} points at pod {pod_ref[0]}/{pod_ref[1]}"
        else:
            why = f"actor {aid} names no pod"
        note = ""
        if wref in assigned_by_elsewhere:
            note = f"the repair assigns it to actor {assigned_by_elsewhere[wref]}, which runs on its pod"
        else:
            worker_repairs[wref] = FreeWorker(*wref, e[_W_VER], e[_W_ANS], e[_W_ATPL], aid, "leaked")
        repair = worker_repairs[wref]
        findings.append(
            Finding(
                LEAKED_WORKER,
                (wkey, _actor_key(aid)),
                f"worker {wkey} ({wref[0]}/{wref[2]}) is assigned to actor {aid}, but {why}",
                repair,
                note,
            )
        )

    # -- duplicate claims.
    for aid, group, actor_info in duplicate_groups:
        keys = tuple(_worker_key(ns, pool, pod) for ns, pool, pod, _ in group)
        names = ", ".join(keys)
        # The repair of the first claimant that should not claim the actor (an orphan or leaked
        # worker: the same repair as that worker's own finding); the next check shows any others.
        shared = next((worker_repairs[(g[0], g[1], g[2])] for g in group if (g[0], g[1], g[2]) in worker_repairs), None)
        if actor_info is None:
            findings.append(
                Finding(
                    DUPLICATE_CLAIM,
                    (_actor_key(aid),) + keys,
                    f"{len(group)} workers claim actor {aid}, which does not exist: {names}",
                    shared,
                    "" if shared else "each is an orphan worker",
                )
            )
            continue
        status, pod_ref, ip = actor_info
        matching = [g for g in group if (g[0], g[1], g[2]) not in leaked]
        if len(matching) <= 1:
            findings.append(
                Finding(
                    DUPLICATE_CLAIM,
                    (_actor_key(aid),) + keys,
                    f"{len(group)} workers claim actor {aid}"
                    + (f", which runs on {_worker_key(*matching[0][:3])}" if matching else "")
                    + f": {names}",
                    shared,
                    "" if shared else "the workers the actor does not point at are leaked workers",
                )
            )
            continue
        # Several pools hold the actor's pod name and all claim it: tell them apart by IP.
        by_ip = [g for g in matching if g[3][_W_IP] == ip and ip]
        if len(by_ip) == 1:
            keep = by_ip[0]
            extra = [g for g in matching if g is not keep]
            # One repair per record: free the first extra; the next check reports the rest.
            ns, pool, pod, e = extra[0]
            findings.append(
                Finding(
                    DUPLICATE_CLAIM,
                    (_actor_key(aid),) + keys,
                    f"{len(group)} workers claim actor {aid}: {names}; it runs on "
                    f"{_worker_key(keep[0], keep[1], keep[2])} (IP {ip})",
                    FreeWorker(ns, pool, pod, e[_W_VER], e[_W_ANS], e[_W_ATPL], aid, "duplicate"),
                    "",
                )
            )
        else:
            findings.append(
                Finding(
                    DUPLICATE_CLAIM,
                    (_actor_key(aid),) + keys,
                    f"{len(group)} workers claim actor {aid} on pod {pod_ref[0]}/{pod_ref[1]} in different "
                    f"pools: {names}",
                    None,
                    "the actor's IP does not tell which pool it runs in: free the others by hand",
                )
            )

    # -- locks.
    for aid, (key, token, ttl) in sorted(actor_locks.items()):
        if aid in corrupt_actor_ids:
            if ttl is None:
                no_expiry.append((key, token))
            continue
        msg = f"lock {key} (holder {token!r}) is for actor {aid}, which does not exist"
        note = ""
        if ttl is None:
            msg += "; it has no expiry either"
        release = ReleaseLock(key, token, "orphan")
        findings.append(Finding(ORPHAN_LOCK, (key, _actor_key(aid)), msg, release, note))
        if ttl is None:
            findings.append(
                Finding(
                    LOCK_WITHOUT_EXPIRY,
                    (key,),
                    f"lock {key} (holder {token!r}) has no expiry",
                    release,
                )
            )
    for key, token in sorted(no_expiry):
        findings.append(
            Finding(
                LOCK_WITHOUT_EXPIRY,
                (key,),
                f"lock {key} (holder {token!r}) has no expiry: it stays held forever if its holder crashed",
                ReleaseLock(key, token, "no_expiry"),
            )
        )

    counts = {k: 0 for k in KINDS}
    for f in findings:
        counts[f.kind] = counts.get(f.kind, 0) + 1
    findings.sort(key=lambda f: (KINDS.index(f.kind) if f.kind in KINDS else len(KINDS), f.keys))
    return CheckReport(
        findings=findings,
        counts=counts,
        duration_s=time.perf_counter() - t0,
        keys_scanned=keys_scanned,
        actors=n_actors,
        workers=n_workers,
        locks=n_locks,
        started_at=started,
    )


def _pick(candidates: list[tuple], ip: str) -> tuple:
    if len(candidates) == 1:
        return candidates[0]
    by_ip = [e for e in candidates if ip and e[_W_IP] == ip]
    if len(by_ip) == 1:
        return by_ip[0]
    return sorted(candidates)[0]


def _corrupt(entry) -> Finding:
    return Finding(
        CORRUPT_RECORD,
        (entry.key,),
        f"{entry.key} does not decode: {entry.error} (starts {entry.preview})",
        None,
        "fix or delete the record by hand (its raw value is shown on its detail page)",
    )


def repairs(report: CheckReport) -> list[Repair]:
    """The distinct repairs of a report, in finding order (findings about the same record share one)."""
    seen, out = set(), []
    for f in report.findings:
        if f.repair is not None and f.repair not in seen:
            seen.add(f.repair)
            out.append(f.repair)
    return out


def apply_all(persistence, report: CheckReport) -> list[dict]:
    """Apply every distinct repair of a report (in order); returns their audit dicts."""
    return [repair.apply(persistence) for repair in repairs(report)]
