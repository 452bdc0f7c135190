"""How long a lock has been held, as far as the store can tell, and when a lock is stale.

The ate server takes a lock as ``SET lock:actor:<id> <token> NX PX <ttl>`` (ateredis AcquireLock)
and releases it only if it still holds its token: the value is the holder's token and nothing else,
and the key's TTL is the time left. Neither says when the lock was taken. So atedash records, per
(lock key, token), when it first saw that holder on that key: the hash ``atedash:lock-seen``
(storage.keys.LOCK_SEEN_KEY; field ``<key>\\0<token>``, value unix seconds). The check writes it for
every ``lock:actor:*`` lock it scans and prunes the locks no longer held; a record page writes it for
the lock it shows. It keeps at most MAX_SIGHTINGS fields and expires a day after its last write.

For a lock with a TTL:

- ``seen_for`` = now - first seen (0 when first seen now): a lower bound of how long it has been held;
- ``hold`` = ``seen_for`` + the TTL left: a lower bound of how long its holder will have held it when
  it expires (the Go server never extends a lock), provided ``seen_for`` is counted to when the TTL
  was read: counted to later, a lock first seen meanwhile (by another thread) gains that delay.

A lock is **stale** when its actor is in a stable status (SUSPENDED or RUNNING: no workflow is
moving it) or does not exist, and ``hold`` exceeds the threshold (ATEDASH_STALE_LOCK_SECONDS,
default 600 s). The ate server's workflows take their locks for less than that, so a lock taken
for longer, or seen held for longer, on an actor no workflow is moving was left by a holder that is
gone (the demo's lock taken for 24 h by ``ate-api-dead-holder-0001``). A lock with no TTL is the
``lock_without_expiry`` finding instead.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

from storage.ateapi_pb2 import Actor
from storage.keys import ACTOR_LOCK_PREFIX, ACTOR_PREFIX, LOCK_SEEN_KEY, actor_key
from storage.records import ACTORS

DEFAULT_STALE_LOCK_S = 600
STABLE = (Actor.STATUS_SUSPENDED, Actor.STATUS_RUNNING)
MAX_SIGHTINGS = 100_000
SIGHTINGS_TTL_S = 86_400
_CHUNK = 1000


def _field(key: str, token: str) -> str:
    return f"{key}\0{token}"


def observe(client, locks: Iterable[tuple[str, str]], *, now: float | None = None, prune: bool = False) -> dict:
    """{(key, token): first seen (unix seconds)} for ``locks``, recording now for those never seen.
    ``prune`` (a full check): forget the locks not in ``locks``. Errors of the store propagate."""
    now = time.time() if now is None else now
    locks = list(dict.fromkeys(locks))
    fields = [_field(k, t) for k, t in locks]
    seen: dict[tuple[str, str], float] = {}
    missing: list[tuple[tuple[str, str], str]] = []
    for i in range(0, len(fields), _CHUNK):
        chunk = fields[i : i + _CHUNK]
        for lock, field, value in zip(locks[i : i + _CHUNK], chunk, client.hmget(LOCK_SEEN_KEY, chunk), strict=True):
            try:
                seen[lock] = min(float(value), now)  # a value from the future is not trusted
            except (TypeError, ValueError):
                missing.append((lock, field))
    if prune:
        wanted = set(fields)
        gone = [f for f in client.hkeys(LOCK_SEEN_KEY) if f.decode("utf-8", "surrogateescape") not in wanted]
        for i in range(0, len(gone), _CHUNK):
            client.hdel(LOCK_SEEN_KEY, *gone[i : i + _CHUNK])
    room = MAX_SIGHTINGS - (client.hlen(LOCK_SEEN_KEY) if missing else 0)
    for i in range(0, min(len(missing), max(room, 0)), _CHUNK):
        todo = missing[i : min(i + _CHUNK, room)]
        pipe = client.pipeline(transaction=False)
        for _, field in todo:
            pipe.hsetnx(LOCK_SEEN_KEY, field, repr(now))
        pipe.execute()
    for lock, _ in missing:
        seen[lock] = now  # beyond the bound: not kept, counted from now
    if missing or prune:
        client.expire(LOCK_SEEN_KEY, SIGHTINGS_TTL_S)
    return seen


def seen_for(first_seen: float | None, now: float) -> float:
    return 0.0 if first_seen is None else max(0.0, now - first_seen)


def hold_s(ttl_ms: int | None, first_seen: float | None, now: float) -> float | None:
    """The least time the holder will have held the lock when it expires; None: no expiry."""
    if ttl_ms is None:
        return None
    return seen_for(first_seen, now) + ttl_ms / 1000


def is_stale(ttl_ms: int | None, first_seen: float | None, now: float, status: int | None, threshold_s: float) -> bool:
    """``status``: the actor's, None when it does not exist."""
    if status is not None and status not in STABLE:
        return False
    hold = hold_s(ttl_ms, first_seen, now)
    return hold is not None and hold > threshold_s


@dataclass(frozen=True)
class LockState:
    """One lock as the stale rule sees it now (a lock page's row, a record page's lock)."""

    key: str
    token: str
    ttl_ms: int | None
    seen_for_s: float  # how long atedash has seen this holder on it (a lower bound of its age)
    hold_s: float | None  # seen_for + TTL left: the least it will have been held; None: no expiry
    actor_status: int | None  # None: not an actor lock, or its actor does not exist / does not decode
    actor_exists: bool
    stale: bool
    threshold_s: float


def lock_states(
    persistence, infos, threshold_s: float = DEFAULT_STALE_LOCK_S, *, read_at: float | None = None
) -> dict[str, LockState]:
    """{key: LockState} of ``infos`` (LockInfo), with the same rule as the check (``is_stale``): one
    batched read of their actors, one of the sightings (recording the ones first seen now).
    ``read_at``: when ``infos`` were read (their TTLs are of then); now if not given."""
    infos = list(infos)
    now = time.time() if read_at is None else read_at
    ids = {i.key: i.key[len(ACTOR_LOCK_PREFIX) :] for i in infos if i.key.startswith(ACTOR_LOCK_PREFIX)}
    actor_keys = [actor_key(aid) for aid in ids.values()]
    records, _gone, corrupt = persistence.read_records(ACTORS, actor_keys)
    status = {a.actor_id: a.status for a in records}
    corrupt_ids = {c.key[len(ACTOR_PREFIX) :] for c in corrupt}
    seen = observe(persistence.client, [(i.key, i.token) for i in infos if i.key in ids], now=now)
    out = {}
    for i in infos:
        aid = ids.get(i.key)
        first = seen.get((i.key, i.token))
        st = status.get(aid) if aid is not None else None
        exists = aid is not None and (aid in status or aid in corrupt_ids)
        stale = aid is not None and aid not in corrupt_ids and is_stale(i.ttl_ms, first, now, st, threshold_s)
        out[i.key] = LockState(
            i.key, i.token, i.ttl_ms, seen_for(first, now), hold_s(i.ttl_ms, first, now), st, exists, stale, threshold_s
        )
    return out
