"""Scoped resets: the actors of a template namespace, of a template or in a status, or the workers of a
pool, removed without touching anything else, and without leaving workers assigned to actors that no
longer exist.

An actor scope deletes the actors (each only if it still holds the very bytes the walk matched),
frees the workers assigned to them (each written only if it still holds the bytes read: actor id,
namespace and template cleared, version + 1, unknown fields kept) and releases their locks (deleted
only if they still hold the token read). A pool scope deletes the pool's workers the same way, except
those assigned to an actor that exists: resetting a pool under a live actor would leave the actor
without its worker, so they are skipped and said so. Whatever changed between the walk and the write
is skipped with the reason; nothing is retried. ``dry_run`` walks the same way and writes nothing.

Records the ate server cannot read follow Go's write rules (storage.gorules): an actor is not
deleted (Go's DeleteActor reads it first and fails), nor a worker freed (UpdateWorker); both are
skipped with Go's reason (their entry carries "unreadable"), and a skipped actor's workers and lock
are left alone. A pool's worker is deleted as Go's DeleteWorker deletes it: a plain DEL.

Memory: the ids of the actors in scope (to find their workers and locks); the backup of a scope
(``iter_scope_export``) holds its records, at most ``MAX_EXPORT`` (a larger one is refused: export
the whole store instead).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from storage.ateapi_pb2 import Actor, Worker
from storage.backup import export_line
from storage.errors import CorruptRecord, StorageError
from storage.gorules import DELETE, UPDATE, skipped, unreadable_stored
from storage.keys import actor_key, actor_lock_key
from storage.matches import FullWalk, Match, actor_walk, worker_walk
from storage.records import ACTORS, WORKERS

MAX_EXPORT = 200_000
FIRST_KEYS = 20
SCOPE_KINDS = ("actors-namespace", "actors-template", "actors-status", "workers-pool")


class ScopeError(StorageError):
    """A scope that does not parse, or one too large to reset."""


class ScopeTooLarge(ScopeError):
    pass


@dataclass(frozen=True)
class Scope:
    kind: str  # one of SCOPE_KINDS
    namespace: str | None = None
    name: str | None = None  # template name (actors-template) or pool (workers-pool)
    status: int | None = None

    @classmethod
    def parse(cls, kind: str, value: str) -> Scope:
        value = value or ""
        if kind not in SCOPE_KINDS:
            raise ScopeError(f"unknown scope {kind!r}: one of {', '.join(SCOPE_KINDS)}")
        if any(ch in value for ch in "\x00\r\n") or len(value) > 507:
            raise ScopeError("the scope's value holds a control character or is too long")
        if kind == "actors-namespace":
            if not value or "/" in value:
                raise ScopeError("a template namespace, e.g. team-a")
            return cls(kind, namespace=value)
        if kind == "actors-status":
            name = value.upper()
            name = name if name.startswith("STATUS_") else "STATUS_" + name
            if name not in Actor.Status.keys():
                raise ScopeError(f"unknown status {value!r}: one of {', '.join(Actor.Status.keys())}")
            return cls(kind, status=Actor.Status.Value(name))
        namespace, sep, name = value.partition("/")
        if not sep or not namespace or not name or "/" in name:
            what = "NS/NAME (template namespace and name)" if kind == "actors-template" else "NS/POOL"
            raise ScopeError(f"the scope is {what}, e.g. team-a/{'worker' if kind == 'actors-template' else 'pool-1'}")
        return cls(kind, namespace=namespace, name=name)

    @property
    def value(self) -> str:
        if self.kind == "actors-namespace":
            assert self.namespace is not None  # parse() sets what its kind needs
            return self.namespace
        if self.kind == "actors-status":
            assert self.status is not None
            return Actor.Status.Name(self.status)
        return f"{self.namespace}/{self.name}"

    def describe(self) -> str:
        return {
            "actors-namespace": "the actors of template namespace {}",
            "actors-template": "the actors of template {}",
            "actors-status": "the actors in status {}",
            "workers-pool": "the workers of pool {}",
        }[self.kind].format(self.value)

    @property
    def of_actors(self) -> bool:
        return self.kind != "workers-pool"

    def walk_filter(self):
        if self.kind == "actors-namespace":
            return actor_walk(template_namespace=self.namespace)
        if self.kind == "actors-template":
            return actor_walk(template_namespace=self.namespace, template_name=self.name)
        if self.kind == "actors-status":
            return actor_walk(status=self.status)
        return worker_walk(namespace=self.namespace, pool=self.name)


@dataclass
class ResetReport:
    scope: str
    dry_run: bool
    actors_deleted: list[str] = field(default_factory=list)  # (dry run: would be)
    workers_freed: list[str] = field(default_factory=list)
    workers_deleted: list[str] = field(default_factory=list)
    locks_released: list[str] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)  # {"key", "why"}
    corrupt: list[dict] = field(default_factory=list)  # {"key", "error"}: in scope by their bytes, undecodable
    duration_s: float = 0.0
    # The blast radius, counted as records are (or, dry run, would be) written: actors by status
    # and template namespace, workers (freed or deleted) by "ns/pool", and of those the pools
    # outside the scope's namespace (an actor of team-b may hold a worker of ml-serving).
    actors_by_status: Counter = field(default_factory=Counter)
    actors_by_namespace: Counter = field(default_factory=Counter)
    workers_by_pool: Counter = field(default_factory=Counter)
    workers_outside: Counter = field(default_factory=Counter)

    def breakdown(self) -> dict:
        return {
            "actors_by_status": dict(sorted(self.actors_by_status.items())),
            "actors_by_namespace": dict(sorted(self.actors_by_namespace.items())),
            "workers_by_pool": dict(sorted(self.workers_by_pool.items())),
            "workers_outside_scope": dict(sorted(self.workers_outside.items())),
        }

    @property
    def nothing_to_do(self) -> bool:
        return not (self.actors_deleted or self.workers_deleted or self.workers_freed or self.locks_released)

    def to_dict(self) -> dict:
        return {
            "scope": self.scope,
            "dry_run": self.dry_run,
            "deleted": sorted(self.actors_deleted + self.workers_deleted),
            "actors_deleted": sorted(self.actors_deleted),
            "workers_deleted": sorted(self.workers_deleted),
            "freed": sorted(self.workers_freed),
            "released": sorted(self.locks_released),
            "skipped": sorted(self.skipped, key=lambda s: s["key"]),
            "corrupt": sorted(self.corrupt, key=lambda s: s["key"]),
            "counts": self.counts(),
            "breakdown": self.breakdown(),
            "duration_s": round(self.duration_s, 3),
        }

    def counts(self) -> dict:
        return {
            "actors_deleted": len(self.actors_deleted),
            "workers_deleted": len(self.workers_deleted),
            "workers_freed": len(self.workers_freed),
            "locks_released": len(self.locks_released),
            "skipped": len(self.skipped),
            "corrupt": len(self.corrupt),
        }


# on_change(action, key, details): one call per record written ("actor.delete", "worker.free",
# "worker.delete", "lock.release"), for the audit.
OnChange = Callable[[str, str, dict], None]


class _Reset:
    def __init__(self, p, scope: Scope, dry_run: bool, on_change: OnChange | None):
        self.p, self.scope, self.dry_run = p, scope, dry_run
        self.on_change = on_change or (lambda action, key, details: None)
        self.report = ResetReport(scope=f"{scope.kind} {scope.value}", dry_run=dry_run)
        self.lock = threading.Lock()
        self.actor_ids: set[str] = set()  # actors deleted (dry run: in scope)

    def _skip(self, key: str, why: str) -> None:
        with self.lock:
            self.report.skipped.append({"key": key, "why": why})

    def _changed(self, kind, key: str, expected: int, now: bytes) -> str:
        try:
            return f"changed meanwhile: version {expected}, now {kind.decode_stored(key, now)[0].version}"
        except CorruptRecord:
            return "changed meanwhile: it is now corrupt"

    def _refused(self, kind, m: Match, write: str) -> bool:
        """Skips (with Go's reason) a record the Go server's same write would fail to read."""
        refused = unreadable_stored(kind, m.key, m.raw, write)
        if refused is None:
            return False
        with self.lock:
            self.report.skipped.append(skipped(refused))
        return True

    # ----------------------------------------------------------------- actors

    def _count_actor(self, actor: Actor) -> None:
        status = Actor.Status.Name(actor.status) if actor.status in Actor.Status.values() else str(actor.status)
        self.report.actors_by_status[status] += 1
        self.report.actors_by_namespace[actor.actor_template_namespace] += 1

    def _count_worker(self, worker: Worker) -> None:
        pool = f"{worker.worker_namespace}/{worker.worker_pool}"
        self.report.workers_by_pool[pool] += 1
        if self.scope.namespace is not None and worker.worker_namespace != self.scope.namespace:
            self.report.workers_outside[pool] += 1

    def _delete(self, kind, m: Match, counted: Callable[[], None], action: str, details: dict) -> None:
        """Deletes ``m`` if it still holds the bytes the walk read; ``counted`` (called under the
        lock) puts it in the report, as a dry run does without deleting."""
        if self.dry_run:
            with self.lock:
                counted()
            return
        outcome, now = self.p.compare_and_delete(m.key, m.raw)
        if outcome == "deleted":
            with self.lock:
                counted()
            self.on_change(action, m.key, details)
        elif outcome == "gone":
            self._skip(m.key, "gone meanwhile")
        else:
            self._skip(m.key, self._changed(kind, m.key, m.record.version, now))

    def delete_actors(self, matches: list[Match]) -> None:
        for m in matches:
            actor = m.record
            if self._refused(ACTORS, m, DELETE):
                continue

            def counted(actor: Actor = actor, key: str = m.key) -> None:
                self.actor_ids.add(actor.actor_id)
                self.report.actors_deleted.append(key)
                self._count_actor(actor)

            status = Actor.Status.Name(actor.status) if actor.status in Actor.Status.values() else str(actor.status)
            self._delete(ACTORS, m, counted, "actor.delete", {"version": actor.version, "status": status})

    def free_workers(self, matches: list[Match]) -> None:
        for m in matches:
            worker: Worker = m.record
            with self.lock:
                ours = worker.actor_id in self.actor_ids
            if not ours or self._refused(WORKERS, m, UPDATE):
                continue
            if self.dry_run:
                with self.lock:
                    self.report.workers_freed.append(m.key)
                    self._count_worker(worker)
                continue
            freed = Worker()
            freed.CopyFrom(worker)
            freed.actor_id = freed.actor_namespace = freed.actor_template = ""
            freed.version = worker.version + 1
            encoding = WORKERS.codec.decode(m.raw)[1]
            new_raw = WORKERS.codec.encode_update(freed, m.raw, encoding)
            outcome, now = self.p.compare_and_set(m.key, m.raw, new_raw)
            if outcome == "written":
                with self.lock:
                    self.report.workers_freed.append(m.key)
                    self._count_worker(worker)
                self.on_change(
                    "worker.free",
                    m.key,
                    {
                        "from_version": worker.version,
                        "to_version": freed.version,
                        "changed_fields": {"actor_id": [worker.actor_id, ""]},
                    },
                )
            elif outcome == "gone":
                self._skip(m.key, "gone meanwhile")
            else:
                self._skip(m.key, self._changed(WORKERS, m.key, worker.version, now))

    def release_locks(self) -> None:
        ids = sorted(self.actor_ids)
        client = self.p.client
        for start in range(0, len(ids), 1000):
            lock_keys = [actor_lock_key(i) for i in ids[start : start + 1000]]
            pipe = client.pipeline(transaction=False)
            for key in lock_keys:
                pipe.get(key)
            tokens = pipe.execute(raise_on_error=False)
            for key, token in zip(lock_keys, tokens):
                if token is None:
                    continue
                if isinstance(token, Exception):
                    self._skip(key, f"not a lock: {token}")
                    continue
                if self.dry_run:
                    self.report.locks_released.append(key)
                    continue
                outcome, _ = self.p.compare_and_delete(key, token)
                if outcome == "deleted":
                    self.report.locks_released.append(key)
                    self.on_change("lock.release", key, {"token": token.decode("utf-8", "backslashreplace")})
                elif outcome == "changed":
                    self._skip(key, "taken by another holder meanwhile")

    # ----------------------------------------------------------------- pools

    def delete_workers(self, matches: list[Match]) -> None:
        for m in matches:
            worker: Worker = m.record
            if worker.actor_id:
                raw = self.p.client.get(actor_key(worker.actor_id))
                if raw is not None:
                    self._skip(m.key, f"assigned to {actor_key(worker.actor_id)}, which exists: reset its actors first")
                    continue

            def counted(worker: Worker = worker, key: str = m.key) -> None:
                self.report.workers_deleted.append(key)
                self._count_worker(worker)

            details = {"version": worker.version, "actor_id": worker.actor_id or None}
            self._delete(WORKERS, m, counted, "worker.delete", details)

    # ----------------------------------------------------------------- the whole reset

    def _walk(self, wanted, handle) -> None:
        result = FullWalk(self.p.topology, wanted, on_batch=handle).run()
        with self.lock:
            self.report.corrupt.extend({"key": c.key, "error": c.error} for c in result.corrupt)

    def run(self) -> ResetReport:
        t0 = time.monotonic()
        if self.scope.of_actors:
            self._walk(self.scope.walk_filter(), self.delete_actors)
            if self.actor_ids:
                self._walk(worker_walk(assigned=True), self.free_workers)
                self.release_locks()
        else:
            self._walk(self.scope.walk_filter(), self.delete_workers)
        self.report.duration_s = time.monotonic() - t0
        return self.report


def reset_scope(p, scope: Scope, *, dry_run: bool = False, on_change: OnChange | None = None) -> ResetReport:
    """Applies (or, with dry_run, previews) the reset of `scope`; see the module's docstring."""
    return _Reset(p, scope, dry_run, on_change).run()


def iter_scope_export(p, scope: Scope, *, max_records: int = MAX_EXPORT) -> Iterator[str]:
    """The backup of exactly what resetting `scope` would change, as storage.backup's JSON lines: the
    records in scope and, for an actor scope, the workers assigned to them (locks are not backed up:
    they expire). Walked first, then written: memory follows the scope."""
    records: list[tuple[str, bytes]] = []
    lock = threading.Lock()

    def keep(matches):
        with lock:
            if len(records) + len(matches) > max_records:
                raise ScopeTooLarge(f"{scope.describe()} holds more than {max_records:,} records: export the store")
            records.extend((m.key, m.raw) for m in matches)

    FullWalk(p.topology, scope.walk_filter(), on_batch=keep).run()
    if scope.of_actors and records:
        ids = {ACTORS.decode_stored(key, raw)[0].actor_id for key, raw in records}
        FullWalk(
            p.topology,
            worker_walk(assigned=True),
            on_batch=lambda ms: keep([m for m in ms if m.record.actor_id in ids]),
        ).run()
    for key, raw in sorted(records):
        yield export_line(key, raw)
