"""The repairs the consistency check proposes: one frozen dataclass of plain values per kind of write.

A repair can be serialised (``to_dict``/``Repair.from_dict``) into a confirmation form and rebuilt to
apply it. ``describe()`` gives the exact field changes; ``apply(persistence)`` re-reads the record,
re-checks that the finding still holds (otherwise :class:`RepairNotApplicable`, "no longer applies";
``UnreadableStored`` when the ate server cannot read it now, as its update would fail),
then writes with the version that the check saw (``VersionConflict`` propagates when the record changed
between the re-read and the write). Locks have no version: a lock is released only when its holder
token is still the one the check saw (``release_lock`` is atomic on the token).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass

from storage.ateapi_pb2 import Actor, Worker
from storage.check.kinds import ACTIVE, CLAIM_FIELDS, POD_FIELDS, status_name
from storage.check.lockage import STABLE
from storage.errors import CorruptRecord, NotFound, VersionConflict
from storage.keys import ACTOR_LOCK_PREFIX, WORKER_PREFIX, actor_key, glob_escape, worker_key
from storage.records import ACTORS, WORKERS


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


# ---------------------------------------------------------------------------------------------------
# Re-reads
# ---------------------------------------------------------------------------------------------------


def _actor_exists(p, actor_id: str) -> Actor | None | bool:
    """The actor, None when missing, True when present but corrupt."""
    try:
        return p.get_actor(actor_id)
    except NotFound:
        return None
    except CorruptRecord:
        return True


def _read_worker(p, ns, pool, pod, writable: bool = False) -> Worker:
    """The worker; ``writable``: the one to write, refused (UnreadableStored) when the Go server
    cannot read it, as its UpdateWorker would fail (storage.gorules)."""
    key = worker_key(ns, pool, pod)
    try:
        return p.get_writable(WORKERS, key) if writable else p.get_worker(ns, pool, pod)
    except NotFound:
        raise RepairNotApplicable(key, f"{key} no longer exists") from None


def _read_actor(p, actor_id, writable: bool = False) -> Actor:
    """The actor; ``writable``: as for _read_worker (Go's UpdateActor)."""
    key = actor_key(actor_id)
    try:
        return p.get_writable(ACTORS, key) if writable else p.get_actor(actor_id)
    except NotFound:
        raise RepairNotApplicable(key, f"{key} no longer exists") from None


def _same_version(key: str, seen: int, stored: int) -> None:
    if stored != seen:
        raise RepairNotApplicable(
            key, f"{key} changed since the check (version {seen} seen, {stored} stored)", seen, stored
        )


def _cleared(key: str, fields: tuple[str, ...], befores: tuple[str, ...]) -> list[FieldChange]:
    """The changes that empty ``fields`` (those that were set) on the record at ``key``."""
    return [FieldChange(key, f, before, "") for f, before in zip(fields, befores) if before]


def _clear(record, fields: tuple[str, ...]) -> None:
    for f in fields:
        setattr(record, f, "")


def _runs_on(actor, ns: str, pod: str) -> bool:
    """Whether ``actor`` (as ``_actor_exists`` returns it) is a decoded, not SUSPENDED actor whose pod
    fields name ``ns/pod``."""
    return (
        isinstance(actor, Actor)
        and actor.status != Actor.STATUS_SUSPENDED
        and (actor.ateom_pod_namespace, actor.ateom_pod_name) == (ns, pod)
    )


@dataclass(frozen=True)
class _RecordRepair(Repair):
    """A repair that rewrites one versioned record (a worker or an actor): ``verify`` re-reads it,
    ``_change`` sets its fields, ``_store`` writes it with the version the check saw."""

    def _read(self, persistence):
        """The record as stored now, when its version is still the one the check saw."""
        raise NotImplementedError

    def _change(self, record) -> None:
        raise NotImplementedError

    def _store(self, persistence, record) -> None:
        raise NotImplementedError

    def apply(self, persistence) -> dict:
        record = self.verify(persistence)
        before = record.version
        self._change(record)
        self._store(persistence, record)
        return self._audit(before, record.version)


@dataclass(frozen=True)
class _WorkerRepair(_RecordRepair):
    """A repair of the worker at (namespace, pool, pod), seen at ``version`` with the claim
    (actor_namespace, actor_template, actor_id); a subclass's own fields come after these."""

    namespace: str
    pool: str
    pod: str
    version: int
    actor_namespace: str  # the claim seen (empty when free)
    actor_template: str
    actor_id: str

    @property
    def key(self) -> str:
        return worker_key(self.namespace, self.pool, self.pod)

    @property
    def _claim(self) -> tuple[str, str, str]:
        return (self.actor_namespace, self.actor_template, self.actor_id)

    def _read(self, persistence) -> Worker:
        w = _read_worker(persistence, self.namespace, self.pool, self.pod, writable=True)
        _same_version(self.key, self.version, w.version)
        return w

    def _read_claiming(self, persistence, refusal: str) -> Worker:
        """The worker as stored now, at the version and with the claim the check saw (else
        RepairNotApplicable with ``refusal``)."""
        w = self._read(persistence)
        if (w.actor_namespace, w.actor_template, w.actor_id) != self._claim:
            raise RepairNotApplicable(self.key, refusal)
        return w

    def _refuse_if_claim_holds(self, actor) -> None:
        """Refuses when the claimed actor (as ``_actor_exists`` returns it) does not decode, or
        points at this worker's pod now: the claim is then right, or not ours to judge."""
        if actor is True:
            raise RepairNotApplicable(self.key, f"actor {self.actor_id!r} does not decode; repair it first")
        if _runs_on(actor, self.namespace, self.pod):
            raise RepairNotApplicable(self.key, f"actor {self.actor_id!r} points at this worker's pod now")

    def _store(self, persistence, record: Worker) -> None:
        persistence.update_worker(record, self.version)


@dataclass(frozen=True)
class _ActorRepair(_RecordRepair):
    """A repair of the actor ``actor_id`` seen at ``version`` naming the pod seen; a subclass's own
    fields come after these."""

    actor_id: str
    version: int
    ateom_pod_namespace: str
    ateom_pod_name: str
    ateom_pod_ip: str

    @property
    def key(self) -> str:
        return actor_key(self.actor_id)

    @property
    def _pod_seen(self) -> tuple[str, str, str]:
        return (self.ateom_pod_namespace, self.ateom_pod_name, self.ateom_pod_ip)

    def _read(self, persistence) -> Actor:
        a = _read_actor(persistence, self.actor_id, writable=True)
        _same_version(self.key, self.version, a.version)
        return a

    def _store(self, persistence, record: Actor) -> None:
        persistence.update_actor(record, self.version)


@dataclass(frozen=True)
class FreeWorker(_WorkerRepair):
    """Clear the worker's claim (actor_namespace, actor_template, actor_id).

    ``reason``: "orphan" (the claimed actor does not exist), "leaked" (it exists but points at another
    pod, at none, or is SUSPENDED), "duplicate" (another pool's worker with the same pod name and the
    actor's IP also claims it)."""

    reason: str

    action = "free_worker"
    title = "Free the worker"

    def changes(self) -> list[FieldChange]:
        return _cleared(self.key, CLAIM_FIELDS, self._claim)

    def verify(self, persistence) -> Worker:
        p = persistence
        w = self._read_claiming(p, f"{self.key} no longer claims actor {self.actor_id!r}")
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
            # A missing actor is still wrong (now an orphan claim): freeing is still the right repair.
            self._refuse_if_claim_holds(actor)
        return w

    def _change(self, record: Worker) -> None:
        _clear(record, CLAIM_FIELDS)


@dataclass(frozen=True)
class AssignWorker(_WorkerRepair):
    """Make the worker at a RUNNING/RESUMING actor's pod claim that actor (the worker was free, or
    claimed an actor that does not exist or does not point back at it)."""

    to_actor_namespace: str
    to_actor_template: str
    to_actor_id: str

    action = "assign_worker"
    title = "Assign the worker to the actor at its pod"

    @property
    def _to_claim(self) -> tuple[str, str, str]:
        return (self.to_actor_namespace, self.to_actor_template, self.to_actor_id)

    def changes(self) -> list[FieldChange]:
        return [
            FieldChange(self.key, f, before, after)
            for f, before, after in zip(CLAIM_FIELDS, self._claim, self._to_claim)
            if before != after
        ]

    def verify(self, persistence) -> Worker:
        p = persistence
        w = self._read_claiming(p, f"{self.key} no longer has the claim the check saw")
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
            self._refuse_if_claim_holds(_actor_exists(p, self.actor_id))
        return w

    def _change(self, record: Worker) -> None:
        for f, value in zip(CLAIM_FIELDS, self._to_claim):
            setattr(record, f, value)


@dataclass(frozen=True)
class ClearActorPod(_ActorRepair):
    """Clear the ateom pod fields of a SUSPENDED actor."""

    action = "clear_actor_pod"
    title = "Clear the stale pod fields"

    def changes(self) -> list[FieldChange]:
        return _cleared(self.key, POD_FIELDS, self._pod_seen)

    def verify(self, persistence) -> Actor:
        a = self._read(persistence)
        if a.status != Actor.STATUS_SUSPENDED:
            raise RepairNotApplicable(self.key, f"{self.key} is {status_name(a.status)} now")
        if not (a.ateom_pod_namespace or a.ateom_pod_name or a.ateom_pod_ip):
            raise RepairNotApplicable(self.key, f"{self.key} names no pod any more")
        return a

    def _change(self, record: Actor) -> None:
        _clear(record, POD_FIELDS)


@dataclass(frozen=True)
class SuspendActor(_ActorRepair):
    """Mark a RUNNING/RESUMING actor whose worker is gone (or belongs to another actor) SUSPENDED and
    clear its pod fields, so that the ate API resumes it from its last snapshot.

    ``reason``: "no_worker" (no worker record at its pod, or it names none) or "worker_elsewhere"
    (the worker at its pod claims another actor that points back at it)."""

    status: int
    reason: str
    other_actor_id: str = ""

    action = "suspend_actor"
    title = "Mark the actor SUSPENDED and clear its pod fields"

    def changes(self) -> list[FieldChange]:
        out = [FieldChange(self.key, "status", status_name(self.status), "STATUS_SUSPENDED")]
        return out + _cleared(self.key, POD_FIELDS, self._pod_seen)

    def verify(self, persistence) -> Actor:
        p = persistence
        a = self._read(p)
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
                    if not _runs_on(other, ns, pod):
                        raise RepairNotApplicable(self.key, f"{wkey} no longer belongs to an actor running on that pod")
        return a

    def _change(self, record: Actor) -> None:
        record.status = Actor.STATUS_SUSPENDED
        _clear(record, POD_FIELDS)


@dataclass(frozen=True)
class ReleaseLock(Repair):
    """Release a stale lock, only while its holder token is the one the check saw.

    ``reason``: "orphan" (its actor does not exist), "no_expiry", or "stale" (held too long on an
    actor in a stable status: storage/check/lockage.py)."""

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
        elif self.reason == "stale":
            actor = _actor_exists(p, self.lock_key[len(ACTOR_LOCK_PREFIX) :])
            if isinstance(actor, Actor) and actor.status not in STABLE:
                why = f"its actor is {status_name(actor.status)} now: a workflow may hold it"
                raise RepairNotApplicable(self.lock_key, why)
        elif info.ttl_ms is not None:
            raise RepairNotApplicable(self.lock_key, f"{self.lock_key} has an expiry now")
        return info

    def apply(self, persistence) -> dict:
        self.verify(persistence)
        persistence.release_lock(self.lock_key, self.token)
        return self._audit(None, None)


_REPAIRS = {cls.action: cls for cls in (FreeWorker, AssignWorker, ClearActorPod, SuspendActor, ReleaseLock)}


def _workers_at_pod(p, ns: str, pod: str) -> Iterator[tuple[str, Worker]]:
    """Every worker whose (namespace, pod) is (ns, pod), whatever its pool: one SCAN MATCH per
    primary (server-side filter) and a GET per match. Used by a repair's re-check only."""
    client = p.client
    pattern = f"{WORKER_PREFIX}{glob_escape(ns)}:*:{glob_escape(pod)}"
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
