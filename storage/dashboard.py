"""The dashboard's own records beside the ate records: the audit stream and the check epoch.

They live under storage.keys.DASHBOARD_PREFIX (the ate server never reads them), so that every
process and replica of the dashboard shares them through the store.
"""

from __future__ import annotations

import json
import uuid

import redis
from redis.cluster import RedisCluster

from storage.keys import AUDIT_STREAM_KEY, CHECK_EPOCH_KEY

Client = redis.Redis | RedisCluster


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
