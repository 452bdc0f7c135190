"""One function per finding kind: the finding's records, its message, and its repair (or why none).

The checker (storage/check/checker.py) decides which case holds; these say it.
"""

from __future__ import annotations

from collections.abc import Set

from storage.ateapi_pb2 import Actor
from storage.check.entries import DuplicateGroup, LeakedClaim, LockEntry, WorkerEntry
from storage.check.kinds import (
    ACTOR_WITHOUT_WORKER,
    ACTOR_WORKER_ELSEWHERE,
    ACTOR_WORKER_FREE,
    CORRUPT_RECORD,
    DUPLICATE_CLAIM,
    LEAKED_WORKER,
    LOCK_WITHOUT_EXPIRY,
    ORPHAN_LOCK,
    ORPHAN_WORKER,
    SERVER_UNREADABLE,
    STALE_LOCK,
    SUSPENDED_WITH_POD,
    duration_text,
    status_name,
)
from storage.check.loading import JudgedCorrupt
from storage.check.lockage import hold_s, seen_for
from storage.check.repairs import (
    AssignWorker,
    ClearActorPod,
    FreeWorker,
    ReleaseLock,
    Repair,
    SuspendActor,
)
from storage.check.report import Finding
from storage.keys import actor_key
from storage.server_readable import Unreadable

# ----------------------------------------------------------------------------- repairs


def free_worker(w: WorkerEntry, reason: str) -> FreeWorker:
    return FreeWorker(*w.ref, w.version, w.actor_namespace, w.actor_template, w.actor_id, reason)


def assign_worker(w: WorkerEntry, to: Actor) -> AssignWorker:
    return AssignWorker(
        *w.ref,
        w.version,
        w.actor_namespace,
        w.actor_template,
        w.actor_id,
        to.actor_template_namespace,
        to.actor_template_name,
        to.actor_id,
    )


def suspend_actor(a: Actor, reason: str, other_actor_id: str = "") -> SuspendActor:
    pod = (a.ateom_pod_namespace, a.ateom_pod_name, a.ateom_pod_ip)
    return SuspendActor(a.actor_id, a.version, *pod, a.status, reason, other_actor_id)


# ----------------------------------------------------------------------------- actors


def suspended_with_pod(a: Actor) -> Finding:
    return Finding(
        SUSPENDED_WITH_POD,
        (actor_key(a.actor_id),),
        f"actor {a.actor_id} is SUSPENDED but still names ateom pod "
        f"{a.ateom_pod_namespace}/{a.ateom_pod_name} ({a.ateom_pod_ip or 'no IP'})",
        ClearActorPod(a.actor_id, a.version, a.ateom_pod_namespace, a.ateom_pod_name, a.ateom_pod_ip),
    )


def actor_names_no_pod(a: Actor) -> Finding:
    return _running_actor(ACTOR_WITHOUT_WORKER, a, "but names no ateom pod", suspend_actor(a, "no_worker"))


def actor_without_worker(a: Actor) -> Finding:
    return _running_actor(
        ACTOR_WITHOUT_WORKER,
        a,
        f"on ateom pod {a.ateom_pod_namespace}/{a.ateom_pod_name}, which has no worker record",
        suspend_actor(a, "no_worker"),
    )


def actor_worker_free(a: Actor, w: WorkerEntry) -> Finding:
    return _running_actor(
        ACTOR_WORKER_FREE, a, f"on {w.key}, but that worker is free", assign_worker(w, a), others=(w.key,)
    )


def actor_worker_free_twice(a: Actor, w: WorkerEntry) -> Finding:
    """A second running actor pointing at a free worker already promised to another one."""
    return _running_actor(
        ACTOR_WORKER_FREE,
        a,
        f"on {w.key}, which is free; another running actor also points at that pod",
        None,
        "another actor points at the same worker: decide by hand which one runs there",
        others=(w.key,),
    )


def actor_worker_reassigned(a: Actor, w: WorkerEntry, repair: AssignWorker, claim_missing: bool) -> Finding:
    """The worker at the actor's pod claims an actor that is missing or runs elsewhere: reassign it."""
    return _running_actor(
        ACTOR_WORKER_ELSEWHERE,
        a,
        f"on {w.key}, which claims actor {w.actor_id} ({'missing' if claim_missing else 'not running on that pod'})",
        repair,
        others=(w.key, actor_key(w.actor_id)),
    )


def actor_worker_contested(a: Actor, w: WorkerEntry, first: str) -> Finding:
    """A second running actor on a worker whose claim is wrong, already reassigned to ``first``."""
    return _running_actor(
        ACTOR_WORKER_ELSEWHERE,
        a,
        f"on {w.key}, which claims actor {w.actor_id}",
        None,
        f"actor {first} also runs on that pod: decide by hand",
        others=(w.key,),
    )


def actor_worker_taken(a: Actor, w: WorkerEntry) -> Finding:
    """The worker at the actor's pod belongs to another actor that runs on it: suspend this one."""
    return _running_actor(
        ACTOR_WORKER_ELSEWHERE,
        a,
        f"on {w.key}, but that worker belongs to actor {w.actor_id}, which runs on it",
        suspend_actor(a, "worker_elsewhere", w.actor_id),
        others=(w.key, actor_key(w.actor_id)),
    )


def _running_actor(
    kind: str, a: Actor, situation: str, repair: Repair | None, note: str = "", *, others: tuple[str, ...] = ()
) -> Finding:
    """A finding about the running actor ``a``: its key first (then ``others``), and a message that
    names the actor and its status, then ``situation``."""
    return Finding(
        kind,
        (actor_key(a.actor_id), *others),
        f"actor {a.actor_id} is {status_name(a.status)} {situation}",
        repair,
        note,
    )


# ----------------------------------------------------------------------------- workers


def orphan_worker(w: WorkerEntry, repair: Repair, assigned_to: str | None) -> Finding:
    message = f"worker {w.key} is assigned to actor {w.actor_id}, which does not exist"
    return _claiming_worker(ORPHAN_WORKER, w, w.actor_id, message, repair, assigned_to)


def leaked_worker(claim: LeakedClaim, repair: Repair, assigned_to: str | None) -> Finding:
    w, a = claim.worker, claim.actor
    if a.status == Actor.STATUS_SUSPENDED:
        why = f"actor {a.actor_id} is SUSPENDED"
    elif a.ateom_pod_namespace or a.ateom_pod_name:
        why = f"actor {a.actor_id} points at pod {a.ateom_pod_namespace}/{a.ateom_pod_name}"
    else:
        why = f"actor {a.actor_id} names no pod"
    ns, _, pod = w.ref
    message = f"worker {w.key} ({ns}/{pod}) is assigned to actor {a.actor_id}, but {why}"
    return _claiming_worker(LEAKED_WORKER, w, a.actor_id, message, repair, assigned_to)


def _claiming_worker(
    kind: str, w: WorkerEntry, actor_id: str, message: str, repair: Repair, assigned_to: str | None
) -> Finding:
    """A finding about the worker ``w`` and the actor ``actor_id`` it claims (their keys), noting the
    actor the repair assigns the worker to, if it does."""
    note = "" if assigned_to is None else f"the repair assigns it to actor {assigned_to}, which runs on its pod"
    return Finding(kind, (w.key, actor_key(actor_id)), message, repair, note)


def duplicate_claim(group: DuplicateGroup, shared: Repair | None, leaked: Set) -> Finding:
    """``shared``: the repair of a claimant's own finding, if one has any; ``leaked``: the refs of
    the workers found leaked."""
    keys = (actor_key(group.actor_id),) + tuple(w.key for w in group.workers)
    names = ", ".join(keys[1:])
    n, aid = len(group.workers), group.actor_id
    if group.actor is None:
        return Finding(
            DUPLICATE_CLAIM,
            keys,
            f"{n} workers claim actor {aid}, which does not exist: {names}",
            shared,
            "" if shared else "each is an orphan worker",
        )
    matching = [w for w in group.workers if w.ref not in leaked]
    if len(matching) <= 1:
        runs_on = f", which runs on {matching[0].key}" if matching else ""
        return Finding(
            DUPLICATE_CLAIM,
            keys,
            f"{n} workers claim actor {aid}{runs_on}: {names}",
            shared,
            "" if shared else "the workers the actor does not point at are leaked workers",
        )
    return _duplicate_in_pools(group, matching, keys, names)


def _duplicate_in_pools(group: DuplicateGroup, matching: list[WorkerEntry], keys: tuple, names: str) -> Finding:
    """Several pools hold the actor's pod name and all claim it: tell them apart by IP."""
    a, n = group.actor, len(group.workers)
    assert a is not None  # duplicate_claim told a missing actor's group apart
    ip = a.ateom_pod_ip
    by_ip = [w for w in matching if w.ip == ip and ip]
    if len(by_ip) != 1:
        return Finding(
            DUPLICATE_CLAIM,
            keys,
            f"{n} workers claim actor {a.actor_id} on pod {a.ateom_pod_namespace}/{a.ateom_pod_name} in different "
            f"pools: {names}",
            None,
            "the actor's IP does not tell which pool it runs in: free the others by hand",
        )
    keep = by_ip[0]
    # One repair per record: free the first extra; the next check reports the rest.
    extra = next(w for w in matching if w is not keep)
    return Finding(
        DUPLICATE_CLAIM,
        keys,
        f"{n} workers claim actor {a.actor_id}: {names}; it runs on {keep.key} (IP {ip})",
        free_worker(extra, "duplicate"),
        "",
    )


# ----------------------------------------------------------------------------- locks


def orphan_lock(lock: LockEntry, actor_id: str, release: ReleaseLock) -> Finding:
    msg = f"lock {lock.key} (holder {lock.token!r}) is for actor {actor_id}, which does not exist"
    if lock.ttl_ms is None:
        msg += "; it has no expiry either"
    return Finding(ORPHAN_LOCK, (lock.key, actor_key(actor_id)), msg, release, "")


def orphan_lock_without_expiry(lock: LockEntry, release: ReleaseLock) -> Finding:
    return Finding(LOCK_WITHOUT_EXPIRY, (lock.key,), f"lock {lock.key} (holder {lock.token!r}) has no expiry", release)


def stale_lock(lock: LockEntry, a: Actor | None, now: float, release: ReleaseLock, actor_id: str = "") -> Finding:
    """A lock held too long (lockage.is_stale) on a SUSPENDED/RUNNING actor, or on a missing one
    (``a`` None; the orphan_lock finding shares ``release``)."""
    seen, hold = seen_for(lock.first_seen, now), hold_s(lock.ttl_ms, lock.first_seen, lock.read_at)
    aid = actor_id if a is None else a.actor_id
    on = f"actor {aid}, which " + ("does not exist" if a is None else f"is {status_name(a.status)}")
    return Finding(
        STALE_LOCK,
        (lock.key, actor_key(aid)),
        f"lock {lock.key} (holder {lock.token!r}) on {on}: held for at least {duration_text(hold or 0)} "
        f"(seen for {duration_text(seen)}, {duration_text((lock.ttl_ms or 0) / 1000)} left); "
        "no workflow holds a lock that long",
        release,
    )


def lock_without_expiry(lock: LockEntry) -> Finding:
    return Finding(
        LOCK_WITHOUT_EXPIRY,
        (lock.key,),
        f"lock {lock.key} (holder {lock.token!r}) has no expiry: it stays held forever if its holder crashed",
        ReleaseLock(lock.key, lock.token, "no_expiry"),
    )


# ----------------------------------------------------------------------------- unreadable records

FIX_BY_HAND = "fix or delete the record by hand (its raw value is shown on its detail page)"
FIX_AS_RAW_JSON = "edit its raw JSON (from its record's page) into a form the ate server reads"


def corrupt_record(entry) -> Finding:
    """A record atedash cannot decode (``entry``: a CorruptEntry; a JudgedCorrupt says whether the ate
    server reads it). Reported once, as this kind, whatever the server says."""
    message = f"{entry.key} does not decode: {entry.error} (starts {entry.preview})"
    if isinstance(entry, JudgedCorrupt):
        server = entry.server
        message += "; the ate server reads it" if server is None else f"; the ate server cannot either: {server}"
    return Finding(CORRUPT_RECORD, (entry.key,), message, None, FIX_BY_HAND)


def server_unreadable(key: str, why: Unreadable) -> Finding:
    """A record atedash reads but the ate server does not (storage.server_readable)."""
    return Finding(
        SERVER_UNREADABLE,
        (key,),
        f"the ate server cannot read {key}: {why.reason} ({why.fails})",
        None,
        FIX_AS_RAW_JSON,
    )


def withheld(finding: Finding, key: str) -> Finding:
    """``finding`` without its repair, which would rewrite ``key``, a record the ate server cannot read
    (nothing rewrites such a record but an operator's raw edit)."""
    return Finding(
        finding.kind,
        finding.keys,
        finding.message,
        None,
        f"the ate server cannot read {key}: fix that record as raw JSON first, then run the check again",
    )
