"""Key names of the ate store (the same as the Go package ateredis writes) and hash slots."""

from __future__ import annotations

import hashlib

from redis.crc import key_slot as _crc_key_slot

ACTOR_PREFIX = "actor:"
WORKER_PREFIX = "worker:"
LOCK_PREFIX = "lock:"
ACTOR_LOCK_PREFIX = LOCK_PREFIX + ACTOR_PREFIX
# The dashboard's own keys, beside the ate records (never read or written by the ate server).
DASHBOARD_PREFIX = "atedash:"
AUDIT_STREAM_KEY = DASHBOARD_PREFIX + "audit"
CHECK_EPOCH_KEY = DASHBOARD_PREFIX + "check-epoch"
# When atedash first saw each lock holder (storage/check/lockage.py): a bounded hash.
LOCK_SEEN_KEY = DASHBOARD_PREFIX + "lock-seen"
SESSION_GENERATION_PREFIX = DASHBOARD_PREFIX + "session-generation:"
# A random value a session cookie must carry: a flush of the store removes it (a new one is drawn),
# so that every cookie signed before a flush stops counting (none is revived).
SESSIONS_EPOCH_KEY = DASHBOARD_PREFIX + "sessions:epoch"
LOGIN_FAILURES_PREFIX = DASHBOARD_PREFIX + "login-failures:"
REFRESH_PREFIX = DASHBOARD_PREFIX + "refresh:"
# The downloads running in the whole fleet: a sorted set of leases (member "<operator digest>:<token>",
# score the lease's expiry in the store's clock, ms), so that exports are bounded fleet-wide.
EXPORT_LEASES_KEY = DASHBOARD_PREFIX + "exports"
# Per record: the audit entries of its changes (atedash:history:<record key>), a short capped stream.
HISTORY_PREFIX = DASHBOARD_PREFIX + "history:"
# Fleet-wide work (storage/fleet.py): atedash:fleet:{<job>}:<part>. The hash tag keeps a job's lease,
# fence and results in one slot, so that one script checks the lease and writes the result.
FLEET_PREFIX = DASHBOARD_PREFIX + "fleet:"


def _digest(text: str) -> str:
    # Names and addresses come from clients: a fixed-length, character-safe key whatever they hold.
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()[:40]


def session_generation_key(operator: str) -> str:
    return SESSION_GENERATION_PREFIX + _digest(operator)


def export_lease_member(operator: str, token: str) -> str:
    return f"{_digest(operator)}:{token}"


def login_failures_key(kind: str, value: str) -> str:
    """Failed logins counted per `kind` ("name" or "ip") and value."""
    return f"{LOGIN_FAILURES_PREFIX}{kind}:{_digest(value)}"


def refresh_key(what: str) -> str:
    return REFRESH_PREFIX + what


def fleet_key(job: str, part: str) -> str:
    """A key of the fleet job ``job`` ("stats", "check", "walks"): its lease, fence, result..."""
    return f"{FLEET_PREFIX}{{{job}}}:{part}"


def history_key(record_key: str) -> str:
    return HISTORY_PREFIX + record_key


def actor_key(actor_id: str) -> str:
    return ACTOR_PREFIX + actor_id


def worker_key(namespace: str, pool: str, pod: str) -> str:
    return f"{WORKER_PREFIX}{namespace}:{pool}:{pod}"


def actor_lock_key(actor_id: str) -> str:
    return LOCK_PREFIX + actor_key(actor_id)


def glob_escape(text: str) -> str:
    """``text`` as a literal inside a SCAN MATCH pattern (``*?[]\\`` escaped)."""
    return "".join("\\" + ch if ch in "*?[]\\" else ch for ch in text)


def key_bytes(key: str | bytes) -> bytes:
    """A key as stored: str keys may carry bytes that are not UTF-8 as surrogate escapes (that is how
    walks and scans hand them out), and go back to the very bytes."""
    if isinstance(key, (bytes, bytearray)):
        return bytes(key)
    try:
        return key.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a surrogate no decoding made (e.g. from a form): kept, never an error
        return key.encode("utf-8", "surrogatepass")


def shown_key(key: str | bytes) -> str:
    """A key for pages, logs and reports: bytes that are not UTF-8 as \\xNN (printable, encodable)."""
    return key_bytes(key).decode("utf-8", "backslashreplace")


def is_utf8_key(key: str | bytes) -> bool:
    try:
        key_bytes(key).decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _text(key: str | bytes) -> str:
    return key.decode("utf-8", "surrogateescape") if isinstance(key, (bytes, bytearray)) else key


def parse_actor_key(key: str | bytes) -> str:
    """`actor:<id>` -> id; ValueError for any other key."""
    key = _text(key)
    if not key.startswith(ACTOR_PREFIX):
        raise ValueError(f"not an actor key: {key!r}")
    return key[len(ACTOR_PREFIX) :]


def parse_worker_key(key: str | bytes) -> tuple[str, str, str]:
    """`worker:<ns>:<pool>:<pod>` -> (ns, pool, pod); ValueError for any other key.

    Kubernetes names cannot contain ':', so the first two separators are unambiguous; anything
    after them belongs to the pod name.
    """
    key = _text(key)
    if not key.startswith(WORKER_PREFIX):
        raise ValueError(f"not a worker key: {key!r}")
    parts = key[len(WORKER_PREFIX) :].split(":", 2)
    if len(parts) != 3:
        raise ValueError(f"worker key needs namespace, pool and pod: {key!r}")
    return parts[0], parts[1], parts[2]


def record_of_key(key: str) -> tuple[str, tuple[str, ...]] | None:
    """What record a typed key names: ("actor", (id,)) for `actor:<id>` and its lock `lock:actor:<id>`,
    ("worker", (ns, pool, pod)) for `worker:<ns>:<pool>:<pod>`; None for anything else."""
    if key.startswith(ACTOR_LOCK_PREFIX):
        key = key[len(LOCK_PREFIX) :]
    if key.startswith(ACTOR_PREFIX):
        actor_id = parse_actor_key(key)
        return ("actor", (actor_id,)) if actor_id else None
    if key.startswith(WORKER_PREFIX):
        try:
            parts = parse_worker_key(key)
        except ValueError:
            return None
        return ("worker", parts) if all(parts) else None
    return None


def key_slot(key: str | bytes) -> int:
    """Redis Cluster hash slot of a key (CRC16 of the hash tag, if any, modulo 16384)."""
    if isinstance(key, str):
        key = key.encode("utf-8", "surrogateescape")
    return _crc_key_slot(key)
