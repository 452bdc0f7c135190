"""Bulk actions on many records at once: delete SUSPENDED actors, free workers, release actors' locks.

Each record is read, checked and written on its own: written only if it still holds the very bytes
that were checked (compare-and-set / compare-and-delete, as every write of storage), and, when the
caller says which version the operator saw, only if it is still at that version. A record the ate
server cannot read is skipped as Go's DeleteActor / UpdateWorker fail on it (storage.gorules; its
entry carries "unreadable": Go's reason). Every record gets a result: done, or skipped with the
reason. Nothing is retried. ``dry_run`` reads and checks the same way and writes nothing: the
preview's "would be done" and its breakdown.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from storage.ateapi_pb2 import Actor, Worker
from storage.errors import CorruptRecord
from storage.gorules import DELETE, UPDATE, skipped, unreadable_stored
from storage.keys import ACTOR_PREFIX, WORKER_PREFIX, actor_lock_key, key_bytes, parse_actor_key, shown_key
from storage.records import ACTORS, WORKERS, RecordKind

ACTIONS = {
    "delete-suspended": "delete the SUSPENDED actors",
    "release-locks": "release the actors' locks",
    "free-workers": "free the workers",
}
MAX_KEYS = 100_000
_BATCH = 500


class BulkError(ValueError):
    pass


@dataclass
class BulkReport:
    action: str
    done: list[dict] = field(default_factory=list)  # {"key", ...details}
    skipped: list[dict] = field(default_factory=list)  # {"key", "why"}
    dry_run: bool = False
    # What is (or would be) done, counted: actors by status and template namespace, workers by
    # "ns/pool" and by the namespace of the actor they are freed from.
    by_status: Counter = field(default_factory=Counter)
    by_namespace: Counter = field(default_factory=Counter)
    by_pool: Counter = field(default_factory=Counter)
    by_actor_namespace: Counter = field(default_factory=Counter)

    def breakdown(self) -> dict:
        counted = {
            "by_status": self.by_status,
            "by_namespace": self.by_namespace,
            "by_pool": self.by_pool,
            "by_actor_namespace": self.by_actor_namespace,
        }
        return {name: dict(sorted(c.items())) for name, c in counted.items() if c}

    def to_dict(self) -> dict:
        return {"action": self.action, "done": self.done, "skipped": self.skipped, "breakdown": self.breakdown()}


def _status(status: int) -> str:
    return Actor.Status.Name(status) if status in Actor.Status.values() else str(status)


def bulk_apply(
    p,
    action: str,
    targets: list[tuple[str, int | None]],
    on_change: Callable[[str, str, dict], None] | None = None,
    *,
    dry_run: bool = False,
) -> BulkReport:
    """`targets`: (key, version the operator saw or None). `on_change(action, key, details)` once per
    record written, for the audit."""
    if action not in ACTIONS:
        raise BulkError(f"unknown action {action!r}")
    if len(targets) > MAX_KEYS:
        raise BulkError(f"at most {MAX_KEYS:,} records at once")
    prefix = WORKER_PREFIX if action == "free-workers" else ACTOR_PREFIX
    for key, _ in targets:
        if not key.startswith(prefix):
            raise BulkError(f"{key!r} is not {'a worker' if prefix == WORKER_PREFIX else 'an actor'} key")
    on_change = on_change or (lambda a, k, d: None)
    report = BulkReport(action, dry_run=dry_run)
    read = getattr(p.client, "mget_nonatomic", None) or p.client.mget
    seen_targets = set()
    unique = []
    for key, version in targets:
        if key not in seen_targets:
            seen_targets.add(key)
            unique.append((key, version))
    for start in range(0, len(unique), _BATCH):
        batch = unique[start : start + _BATCH]
        if action == "release-locks":
            _release(p, batch, report, on_change, dry_run)
            continue
        values = read([key_bytes(k) for k, _ in batch])  # keys of a walk may not be UTF-8
        for (key, version), raw in zip(batch, values):
            if raw is None:
                report.skipped.append({"key": key, "why": "gone"})
                continue
            kind: RecordKind[Any] = WORKERS if action == "free-workers" else ACTORS
            try:
                record = kind.decode_stored(key, raw)[0]
            except CorruptRecord as exc:
                report.skipped.append({"key": key, "why": f"corrupt: {exc.reason}"})
                continue
            # Go's DeleteActor and UpdateWorker (a free) read the record first and fail on one
            # they cannot read: skipped with Go's reason (the raw editor mends it).
            write = DELETE if action == "delete-suspended" else UPDATE
            refused = unreadable_stored(kind, key, raw, write)
            if refused is not None:
                report.skipped.append(skipped(refused))
                continue
            if version is not None and record.version != version:
                report.skipped.append(
                    {"key": key, "why": f"changed since you saw it: version {version}, now {record.version}"}
                )
                continue
            if action == "delete-suspended":
                _delete(p, key, raw, record, report, on_change, dry_run)
            else:
                _free(p, key, raw, record, report, on_change, dry_run)
    for entry in report.done + report.skipped:  # printable, for the page and JSON
        entry["key"] = shown_key(entry["key"])
    return report


def _changed(kind, key, record, now) -> str:
    try:
        return f"changed meanwhile: version {record.version}, now {kind.decode_stored(key, now)[0].version}"
    except CorruptRecord:
        return "changed meanwhile: it is now corrupt"


def _delete(p, key, raw, actor: Actor, report, on_change, dry_run=False) -> None:
    if actor.status != Actor.STATUS_SUSPENDED:
        report.skipped.append({"key": key, "why": f"is {_status(actor.status)}, not STATUS_SUSPENDED"})
        return
    outcome, now = ("deleted", None) if dry_run else p.compare_and_delete(key, raw)
    if outcome == "deleted":
        report.done.append({"key": key, "version": actor.version})
        report.by_status[_status(actor.status)] += 1
        report.by_namespace[actor.actor_template_namespace] += 1
        if dry_run:
            return
        on_change("actor.delete", key, {"version": actor.version, "status": _status(actor.status)})
    elif outcome == "gone":
        report.skipped.append({"key": key, "why": "gone meanwhile"})
    else:
        report.skipped.append({"key": key, "why": _changed(ACTORS, key, actor, now)})


def _free(p, key, raw, worker: Worker, report, on_change, dry_run=False) -> None:
    if not worker.actor_id:
        report.skipped.append({"key": key, "why": "already free"})
        return
    if dry_run:
        report.done.append({"key": key, "from_version": worker.version, "to_version": worker.version + 1})
        _count_worker(report, worker)
        return
    freed = Worker()
    freed.CopyFrom(worker)
    freed.actor_id = freed.actor_namespace = freed.actor_template = ""
    freed.version = worker.version + 1
    new_raw = WORKERS.codec.encode_update(freed, raw, WORKERS.codec.decode(raw)[1])
    outcome, now = p.compare_and_set(key, raw, new_raw)
    if outcome == "written":
        report.done.append({"key": key, "from_version": worker.version, "to_version": freed.version})
        _count_worker(report, worker)
        on_change(
            "worker.free",
            key,
            {
                "from_version": worker.version,
                "to_version": freed.version,
                "changed_fields": {"actor_id": [worker.actor_id, ""]},
            },
        )
    elif outcome == "gone":
        report.skipped.append({"key": key, "why": "gone meanwhile"})
    else:
        report.skipped.append({"key": key, "why": _changed(WORKERS, key, worker, now)})


def _count_worker(report: BulkReport, worker: Worker) -> None:
    report.by_pool[f"{worker.worker_namespace}/{worker.worker_pool}"] += 1
    report.by_actor_namespace[worker.actor_namespace] += 1


def _release(p, batch, report, on_change, dry_run=False) -> None:
    lock_keys = [actor_lock_key(parse_actor_key(key)) for key, _ in batch]
    pipe = p.client.pipeline(transaction=False)
    for lock_key in lock_keys:
        pipe.get(key_bytes(lock_key))
    tokens = pipe.execute(raise_on_error=False)
    for lock_key, token in zip(lock_keys, tokens):
        if token is None:
            report.skipped.append({"key": lock_key, "why": "not held"})
            continue
        if isinstance(token, Exception):
            report.skipped.append({"key": lock_key, "why": f"not a lock: {token}"})
            continue
        outcome, _ = ("deleted", None) if dry_run else p.compare_and_delete(lock_key, token)
        if outcome == "deleted":
            shown = token.decode("utf-8", "backslashreplace")
            report.done.append({"key": lock_key, "token": shown})
            if not dry_run:
                on_change("lock.release", shown_key(lock_key), {"token": shown})
        elif outcome == "gone":
            report.skipped.append({"key": lock_key, "why": "expired or released meanwhile"})
        else:
            report.skipped.append({"key": lock_key, "why": "taken by another holder meanwhile"})
