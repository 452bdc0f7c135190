"""The dashboard's own records beside the ate records: the audit stream, the check epoch, operators'
session generations, failed-login counters and fleet-wide refresh claims.

They live under storage.keys.DASHBOARD_PREFIX (the ate server never reads them), so that every
process and replica of the dashboard shares them through the store.
"""

from __future__ import annotations

import json
import uuid

import redis
from redis.cluster import RedisCluster

from storage.keys import (
    AUDIT_STREAM_KEY,
    CHECK_EPOCH_KEY,
    login_failures_key,
    refresh_key,
    session_generation_key,
)

Client = redis.Redis | RedisCluster

# KEYS[1]: a counter; ARGV[1]: its lifetime (ms) from the first count on. One script, so that a
# counter never outlives its window (INCR then EXPIRE as two commands could leave one without TTL).
COUNT_IN_WINDOW = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return {n, redis.call('PTTL', KEYS[1])}
"""


def append_audit(client: Client, line: str, *, maxlen: int) -> None:
    """One JSON line onto the audit stream, trimmed to about ``maxlen`` entries."""
    client.xadd(AUDIT_STREAM_KEY, {"entry": line}, maxlen=maxlen, approximate=True)


def recent_audit(client: Client, count: int = 100, before: str | None = None) -> list[tuple[str, dict]]:
    """The last ``count`` audit entries, newest first: [(stream id, entry dict)].

    ``before``: a stream id; only older entries are returned (for paging)."""
    maximum = f"({before}" if before else "+"
    rows = client.xrevrange(AUDIT_STREAM_KEY, max=maximum, min="-", count=count)
    out = []
    for stream_id, fields in rows:
        sid = stream_id.decode() if isinstance(stream_id, bytes) else stream_id
        raw = fields.get(b"entry", fields.get("entry", b"{}"))
        try:
            entry = json.loads(raw)
        except (ValueError, TypeError):
            entry = {"action": "(unreadable entry)", "raw": repr(raw)[:200]}
        if not isinstance(entry, dict):
            entry = {"action": "(unreadable entry)", "raw": repr(raw)[:200]}
        out.append((sid, entry))
    return out


def check_epoch(client: Client) -> bytes:
    """The store's change marker (b"" when none was set, e.g. after a flush)."""
    return client.get(CHECK_EPOCH_KEY) or b""


def bump_check_epoch(client: Client) -> None:
    """A fresh random marker rather than a counter: a counter would start again after a flush and
    could match the marker of a report computed before it."""
    client.set(CHECK_EPOCH_KEY, uuid.uuid4().hex)


def session_generation(client: Client, operator: str) -> int:
    value = client.get(session_generation_key(operator))
    try:
        return int(value or 0)
    except ValueError:
        return -1  # not a number we wrote: matches no session


def end_sessions(client: Client, operator: str) -> int:
    return client.incr(session_generation_key(operator))


def login_failures(client: Client, kind: str, value: str) -> tuple[int, float]:
    """(failed logins counted for this name or address, seconds until the count lapses)."""
    key = login_failures_key(kind, value)
    pipe = client.pipeline(transaction=False)
    pipe.get(key)
    pipe.pttl(key)
    count, ttl_ms = pipe.execute()
    return int(count or 0), max(ttl_ms, 0) / 1000


def count_login_failure(script, kind: str, value: str, window_s: float) -> tuple[int, float]:
    count, ttl_ms = script(keys=[login_failures_key(kind, value)], args=[max(1, int(window_s * 1000))])
    return int(count), max(int(ttl_ms), 0) / 1000


def clear_login_failures(client: Client, kind: str, value: str) -> None:
    client.delete(login_failures_key(kind, value))


def claim_refresh(client: Client, what: str, interval_s: int) -> bool:
    """True for the first caller in the fleet within `interval_s` seconds, False for the others."""
    return bool(client.set(refresh_key(what), "1", nx=True, ex=max(1, int(interval_s))))
