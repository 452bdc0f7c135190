"""The finding kinds of the consistency check: their names (as the page, the JSON report and the
/metrics labels spell them), their titles and their order in a report."""

from __future__ import annotations

from storage.ateapi_pb2 import Actor

ORPHAN_WORKER = "orphan_worker"
LEAKED_WORKER = "leaked_worker"
ACTOR_WITHOUT_WORKER = "actor_without_worker"
ACTOR_WORKER_FREE = "actor_worker_free"
ACTOR_WORKER_ELSEWHERE = "actor_worker_elsewhere"
DUPLICATE_CLAIM = "duplicate_claim"
SUSPENDED_WITH_POD = "suspended_with_pod"
ORPHAN_LOCK = "orphan_lock"
LOCK_WITHOUT_EXPIRY = "lock_without_expiry"
STALE_LOCK = "stale_lock"
SERVER_UNREADABLE = "server_unreadable"
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
    STALE_LOCK,
    SERVER_UNREADABLE,
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
    STALE_LOCK: "Stale lock (held too long on an actor no workflow is moving)",
    SERVER_UNREADABLE: "Unreadable by ate: the ate server cannot read it (atedash decodes it)",
    CORRUPT_RECORD: "Corrupt: atedash cannot decode it either",
}

ACTIVE = (Actor.STATUS_RUNNING, Actor.STATUS_RESUMING)
POD_FIELDS = ("ateom_pod_namespace", "ateom_pod_name", "ateom_pod_ip")
CLAIM_FIELDS = ("actor_namespace", "actor_template", "actor_id")


def status_name(status: int) -> str:
    try:
        return Actor.Status.Name(status)
    except ValueError:
        return str(status)


def duration_text(seconds: float) -> str:
    """A duration as findings and the overview's notices word it: "90 s", "45 min", "2.5 h"."""
    seconds = int(seconds)
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds / 3600:.1f} h"
