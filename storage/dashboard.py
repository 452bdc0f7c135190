"""The dashboard's own state beside the ate records: the audit stream and record histories, the
check epoch, export leases, operators' session generations, failed-login counters, fleet-wide
counts and refresh claims; and the fleet's leases and results (storage/fleet.py).

They live under storage.keys.DASHBOARD_PREFIX (the ate server never reads them), so that every
process and replica of the dashboard shares them through the store. `DashboardState` owns them;
storage.Persistence, the Go store's twin, never touches them.
"""

from __future__ import annotations

import hashlib
import json
import uuid

import redis
from redis.cluster import RedisCluster

from storage.fleet import Fleet
from storage.keys import (
    AUDIT_STREAM_KEY,
    CHECK_EPOCH_KEY,
    EXPORT_LEASES_KEY,
    SESSIONS_EPOCH_KEY,
    export_lease_member,
    history_key,
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

# KEYS[1]: the sessions epoch; ARGV[1]: a new random value, ARGV[2]: its lifetime (ms). The epoch as
# stored (drawn now when there is none: first use, or after a flush), its lifetime renewed.
SESSIONS_EPOCH = """
local v = redis.call('GET', KEYS[1])
if not v then
  v = ARGV[1]
  redis.call('SET', KEYS[1], v, 'PX', ARGV[2])
else
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return v
"""

# KEYS[1]: the export leases; ARGV: member, lease ms, fleet cap, per-operator cap, member prefix of
# the operator. Expired leases are dropped first (a process that died leaves its lease to expire).
# Reply: 0 taken, 1 the operator is at its cap, 2 the fleet is. The store's clock: one for the fleet.
EXPORT_TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local held = redis.call('ZRANGE', KEYS[1], 0, -1)
local mine = 0
for _, m in ipairs(held) do
  if string.sub(m, 1, #ARGV[5]) == ARGV[5] then mine = mine + 1 end
end
if mine >= tonumber(ARGV[4]) then return 1 end
if #held >= tonumber(ARGV[3]) then return 2 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
return 0
"""

# KEYS[1]: the export leases; ARGV: member, lease ms. Extends a lease still held (1), else 0.
EXPORT_RENEW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local n = redis.call('ZADD', KEYS[1], 'XX', 'CH', now + tonumber(ARGV[2]), ARGV[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2])) end
return n
"""


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _entries(rows: list | None) -> list[tuple[str, dict]]:
    """[(stream id, entry dict)] of XRANGE rows; an entry that is not a JSON object is shown as unreadable."""
    out = []
    for stream_id, fields in rows or ():
        raw = fields.get(b"entry", fields.get("entry", b"{}"))
        try:
            entry = json.loads(raw)
        except (ValueError, TypeError):
            entry = None
        if not isinstance(entry, dict):
            entry = {"action": "(unreadable entry)", "raw": repr(raw)[:200]}
        out.append((_text(stream_id), entry))
    return out


class DashboardState:
    """The dashboard's own keys through one client (the Persistence's: scripts registered once)."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self._count_in_window = client.register_script(COUNT_IN_WINDOW)
        self._sessions_epoch = client.register_script(SESSIONS_EPOCH)
        self._export_take = client.register_script(EXPORT_TAKE)
        self._export_renew = client.register_script(EXPORT_RENEW)
        self._fleet: Fleet | None = None

    @property
    def fleet(self) -> Fleet:
        """The fleet's leases and shared results (storage/fleet.py)."""
        if self._fleet is None:
            self._fleet = Fleet(self.client)
        return self._fleet

    # ============================================================ the audit stream, record histories

    def append_audit(
        self, line: str, *, maxlen: int, record_key: str | None = None, history: tuple[int, int] | None = None
    ) -> None:
        """One JSON line onto the audit stream, trimmed to about ``maxlen`` entries.

        With ``record_key`` and ``history`` = (entries, seconds): also onto that record's history stream,
        capped at about ``entries`` and kept ``seconds`` after its last change (a deleted record's history
        goes away by itself)."""
        if record_key is None or history is None:
            self.client.xadd(AUDIT_STREAM_KEY, {"entry": line}, maxlen=maxlen, approximate=True)
            return
        entries, seconds = history
        pipe = self.client.pipeline(transaction=False)
        pipe.xadd(AUDIT_STREAM_KEY, {"entry": line}, maxlen=maxlen, approximate=True)
        pipe.xadd(history_key(record_key), {"entry": line}, maxlen=entries, approximate=True)
        pipe.expire(history_key(record_key), seconds)
        pipe.execute()

    def audit_reach(self) -> tuple[int, str | None]:
        """(entries in the audit stream, id of its oldest entry or None): how far back the audit reaches."""
        pipe = self.client.pipeline(transaction=False)
        pipe.xlen(AUDIT_STREAM_KEY)
        pipe.xrange(AUDIT_STREAM_KEY, min="-", max="+", count=1)
        length, first = pipe.execute()
        return length, (_text(first[0][0]) if first else None)

    def record_history(self, record_key: str, count: int, before: str | None = None) -> list[tuple[str, dict]]:
        """The last ``count`` audit entries of one record, newest first (see recent_audit)."""
        maximum = f"({before}" if before else "+"
        return _entries(self.client.xrevrange(history_key(record_key), max=maximum, min="-", count=count))

    def history_entry(self, record_key: str, entry_id: str) -> dict | None:
        """One entry of a record's history by its stream id (None when it is gone)."""
        rows = _entries(self.client.xrange(history_key(record_key), min=entry_id, max=entry_id, count=1))
        return rows[0][1] if rows else None

    def recent_audit(self, count: int = 100, before: str | None = None) -> list[tuple[str, dict]]:
        """The last ``count`` audit entries, newest first: [(stream id, entry dict)].

        ``before``: a stream id; only older entries are returned (for paging)."""
        maximum = f"({before}" if before else "+"
        return _entries(self.client.xrevrange(AUDIT_STREAM_KEY, max=maximum, min="-", count=count))

    def search_audit(
        self, wanted, count: int, before: str | None = None, *, budget: int = 10_000, chunk: int = 500
    ) -> tuple[list[tuple[str, dict]], str | None, int]:
        """Audit entries for which ``wanted(entry)`` is true, newest first, looking at no more than ``budget``
        entries: (up to ``count`` entries, the id to continue before or None at the start of the stream,
        how many entries were looked at)."""
        found: list[tuple[str, dict]] = []
        examined = 0
        cursor = before
        while examined < budget:
            asked = min(chunk, budget - examined)
            rows = self.recent_audit(asked, cursor)
            for sid, entry in rows:
                examined += 1
                cursor = sid
                if wanted(entry):
                    found.append((sid, entry))
                    if len(found) == count:
                        return found, sid, examined
            if len(rows) < asked:
                return found, None, examined  # the start of the stream
        return found, cursor, examined

    # ============================================================ the check epoch

    def check_epoch(self) -> bytes:
        """The store's change marker (b"" when none was set, e.g. after a flush)."""
        epoch = self.client.get(CHECK_EPOCH_KEY)
        return epoch if isinstance(epoch, bytes) else b""  # the store's clients never decode

    def bump_check_epoch(self) -> None:
        """A fresh random marker rather than a counter: a counter would start again after a flush and
        could match the marker of a report computed before it."""
        self.client.set(CHECK_EPOCH_KEY, uuid.uuid4().hex)

    # ============================================================ export leases

    def take_export_lease(self, operator: str, token: str, *, lease_s: float, fleet_max: int, operator_max: int) -> str:
        """ "taken", "operator" (the operator runs ``operator_max`` downloads already) or "fleet" (the fleet
        runs ``fleet_max``)."""
        member = export_lease_member(operator, token)
        prefix = member.partition(":")[0] + ":"
        args: list[str | int] = [member, max(1000, int(lease_s * 1000)), fleet_max, operator_max, prefix]
        return {0: "taken", 1: "operator", 2: "fleet"}[int(self._export_take(keys=[EXPORT_LEASES_KEY], args=args))]

    def renew_export_lease(self, operator: str, token: str, *, lease_s: float) -> bool:
        member = export_lease_member(operator, token)
        return bool(self._export_renew(keys=[EXPORT_LEASES_KEY], args=[member, max(1000, int(lease_s * 1000))]))

    def release_export_lease(self, operator: str, token: str) -> None:
        self.client.zrem(EXPORT_LEASES_KEY, export_lease_member(operator, token))

    # ============================================================ sessions

    def sessions_epoch(self, ttl_s: float) -> str:
        """The store's sessions epoch (see storage.keys.SESSIONS_EPOCH_KEY), kept ``ttl_s`` after its last use."""
        value = self._sessions_epoch(keys=[SESSIONS_EPOCH_KEY], args=[uuid.uuid4().hex, max(1000, int(ttl_s * 1000))])
        return _text(value)

    def session_generation(self, operator: str) -> int:
        value = self.client.get(session_generation_key(operator))
        try:
            return int(value or 0)
        except ValueError:
            return -1  # not a number we wrote: matches no session

    def end_sessions(self, operator: str) -> int:
        return self.client.incr(session_generation_key(operator))

    # ============================================================ failed logins, fleet-wide counts

    def login_failures(self, kind: str, value: str) -> tuple[int, float]:
        """(failed logins counted for this name or address, seconds until the count lapses)."""
        key = login_failures_key(kind, value)
        pipe = self.client.pipeline(transaction=False)
        pipe.get(key)
        pipe.pttl(key)
        count, ttl_ms = pipe.execute()
        return int(count or 0), max(ttl_ms, 0) / 1000

    def count_login_failure(self, kind: str, value: str, window_s: float) -> tuple[int, float]:
        key = login_failures_key(kind, value)
        count, ttl_ms = self._count_in_window(keys=[key], args=[max(1, int(window_s * 1000))])
        return int(count), max(int(ttl_ms), 0) / 1000

    def clear_login_failures(self, kind: str, value: str) -> None:
        self.client.delete(login_failures_key(kind, value))

    def count_in_window(self, what: str, window_s: float) -> int:
        """Counts one more `what` (any text: it is hashed into the key) within a window of `window_s`
        seconds from the first count; the count so far, this one included (a fleet-wide rate limit)."""
        key = refresh_key("count:" + hashlib.sha256(what.encode("utf-8", "surrogatepass")).hexdigest()[:40])
        count, _ = self._count_in_window(keys=[key], args=[max(1, int(window_s * 1000))])
        return int(count)

    # ============================================================ refresh claims

    def claim_refresh(self, what: str, interval_s: int) -> bool:
        """True for the first caller in the fleet within `interval_s` seconds, False for the others."""
        return bool(self.client.set(refresh_key(what), "1", nx=True, ex=max(1, int(interval_s))))
