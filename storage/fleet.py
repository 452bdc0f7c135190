"""Fleet-wide work: leases with expiry and fencing, and the results they guard, in the store.

Every process of the dashboard (gunicorn workers x replicas) reads the same keys, so whichever one
answers a request renders the same counts, report or walk. A job ("stats", "check", "walks") has:

- ``atedash:fleet:{job}:lease``: "<token> <holder> <note>", SET with PX (``LEASE_TTL_S``); the
  holder renews it every ``BEAT_S`` while it works, so a holder that died loses it within seconds.
- ``atedash:fleet:{job}:fence``: a counter (INCR) giving each lease a larger token than the last.
- results: written only by a script that first checks the lease still holds the writer's exact
  value (token included): a holder whose lease expired (a long pause, a lost network) cannot
  overwrite what a newer holder wrote.

All of a job's keys share the hash tag ``{job}``: one slot, so one script reads the lease and writes
the result atomically. Sizes and TTLs: docs/fleet.md.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import threading
from dataclasses import dataclass
from typing import Any

import redis
from redis.cluster import RedisCluster

from storage.keys import fleet_key

Client = redis.Redis | RedisCluster

LEASE_TTL_S = 6.0  # a dead holder's lease lapses this long after its last beat
BEAT_S = 1.0  # how often a holder renews (and publishes progress)
FENCE_TTL_S = 30 * 86400

# KEYS: lease, fence[, extra]; ARGV: holder note, lease ttl ms, fence ttl ms[, extra value, extra ttl ms]
# Reply: {token, ""} when taken (extra written at once), {0, current lease value} when held.
_ACQUIRE = """
local held = redis.call('GET', KEYS[1])
if held then return {0, held} end
local token = redis.call('INCR', KEYS[2])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
redis.call('SET', KEYS[1], token .. ' ' .. ARGV[1], 'PX', ARGV[2])
if KEYS[3] then redis.call('SET', KEYS[3], ARGV[4], 'PX', ARGV[5]) end
return {token, ''}
"""

# The lease is ours when it holds our value, or when it lapsed (this process paused longer than its
# TTL: a long GC on a loaded machine) and nobody took one since (the fence is still our token): then
# it is set again. A lease taken since has a larger token; its holder's results are never overwritten.
_OURS = """
local function ours(lease, fence, value, ttl)
  local held = redis.call('GET', lease)
  if held == value then return 1 end
  if held or redis.call('GET', fence) ~= string.match(value, '^%d+') then return false end
  redis.call('SET', lease, value, 'PX', ttl)
  return 2
end
"""

# KEYS: lease, fence[, state[, flag]]; ARGV: expected lease value, lease ttl ms[, state value, state
# ttl ms]. Renews the lease and writes the state while the lease is ours. Reply: {ours (2: taken
# back after it lapsed), flag is set}.
_BEAT = (
    _OURS
    + """
local mine = ours(KEYS[1], KEYS[2], ARGV[1], ARGV[2])
if not mine then return {0, 0} end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
if KEYS[3] and ARGV[3] then redis.call('SET', KEYS[3], ARGV[3], 'PX', ARGV[4]) end
local flag = 0
if KEYS[4] then flag = redis.call('EXISTS', KEYS[4]) end
return {mine, flag}
"""
)

# KEYS: lease, fence, target[, second target]; ARGV: expected lease value, lease ttl ms, ttl ms,
# release ("1"/"0"), mode ("set"/"rpush"/"set2"), values... Fenced: nothing is written unless the
# lease is ours. "set2" sets the target to ARGV[6] and the second target to ARGV[7] (a result and
# its index).
_PUT = (
    _OURS
    + """
if not ours(KEYS[1], KEYS[2], ARGV[1], ARGV[2]) then return 0 end
if ARGV[5] == 'rpush' then
  for i = 6, #ARGV, 500 do
    redis.call('RPUSH', KEYS[3], unpack(ARGV, i, math.min(i + 499, #ARGV)))
  end
  redis.call('PEXPIRE', KEYS[3], ARGV[3])
else
  redis.call('SET', KEYS[3], ARGV[6], 'PX', ARGV[3])
  if ARGV[5] == 'set2' then redis.call('SET', KEYS[4], ARGV[7], 'PX', ARGV[3]) end
end
if ARGV[4] == '1' then redis.call('DEL', KEYS[1]) end
return 1
"""
)

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def holder_name() -> str:
    """Who makes a result: host:pid (the pod's name in Kubernetes)."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))


def _text(value: bytes | str | None) -> str:
    if value is None:
        return ""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


@dataclass(frozen=True)
class LeaseInfo:
    """A lease as read from the store (hostile: parsed leniently)."""

    token: int
    holder: str
    note: str

    @classmethod
    def parse(cls, raw: bytes | str | None) -> LeaseInfo | None:
        if raw is None:
            return None
        token, _, rest = _text(raw).partition(" ")
        holder, _, note = rest.partition(" ")
        return cls(int(token) if token.isdigit() else 0, holder, note)


class Lease:
    """A lease this process holds (until it expires, is lost, or released)."""

    def __init__(self, fleet: Fleet, job: str, token: int, value: str, ttl_s: float) -> None:
        self.fleet, self.job, self.token, self.value, self.ttl_s = fleet, job, token, value, ttl_s
        self.lost = False
        self.released = False  # ended on purpose (its result written)
        self.lapses = 0  # times it lapsed (a pause of this process) and was taken back
        # A heartbeat thread renews while the working thread writes: one call at a time, or a beat
        # reaching the store after the result's write would take the ended lease back (it looks
        # lapsed) and write its older state over the result.
        self._lock = threading.Lock()

    def beat(self, state: tuple[str, str, float] | None = None, flag: str | None = None) -> tuple[bool, bool]:
        """Renew; with state = (key, value, ttl s) also write it, with flag = a key, say if it is set.
        (still ours, flag set); once lost, always lost."""
        with self._lock:
            return self._renew(state, flag)

    def _renew(self, state: tuple[str, str, float] | None, flag: str | None) -> tuple[bool, bool]:
        if self.lost:
            return False, False
        keys = [fleet_key(self.job, "lease"), fleet_key(self.job, "fence")]
        args: list[Any] = [self.value, _ms(self.ttl_s)]
        if state is not None or flag is not None:
            key, value, ttl = state if state is not None else (fleet_key(self.job, "none"), None, 0)
            keys.append(key)
            if value is not None:
                args += [value, _ms(ttl)]
        if flag is not None:
            keys.append(flag)
        ours, flagged = self.fleet._beat(keys=keys, args=args)
        self.lost = not int(ours)
        self.lapses += int(ours) == 2
        return not self.lost, bool(int(flagged))

    def put(self, key: str, value: str | bytes, ttl_s: float, *, release: bool = False) -> bool:
        """SET key value PX ttl, only while the lease is ours (fenced); ``release`` ends the lease too."""
        return self._put([key], ttl_s, release, "set", [value])

    def put_two(self, first: tuple[str, str], second: tuple[str, str], ttl_s: float, *, release: bool) -> bool:
        return self._put([first[0], second[0]], ttl_s, release, "set2", [first[1], second[1]])

    def push(self, key: str, values: list[str], ttl_s: float) -> bool:
        """RPUSH values onto key (a list), only while the lease is ours."""
        return not values or self._put([key], ttl_s, False, "rpush", list(values))

    def _put(self, keys: list[str], ttl_s: float, release: bool, mode: str, values: list) -> bool:
        with self._lock:
            if self.lost:
                return False
            args = [self.value, _ms(self.ttl_s), _ms(ttl_s), "1" if release else "0", mode, *values]
            lease_keys = [fleet_key(self.job, "lease"), fleet_key(self.job, "fence")]
            ok = bool(int(self.fleet._put(keys=[*lease_keys, *keys], args=args)))
            self.lost = not ok or release
            self.released = ok and release
            return ok

    def release(self) -> None:
        with self._lock:
            if not self.lost:
                self.fleet._release(keys=[fleet_key(self.job, "lease")], args=[self.value])
                self.lost = self.released = True


class Fleet:
    """The fleet's keys through one client (scripts registered once per DashboardState)."""

    def __init__(self, client: Client, *, lease_ttl_s: float = LEASE_TTL_S) -> None:
        self.client = client
        self.lease_ttl_s = lease_ttl_s
        self.holder = holder_name()
        self._acquire = client.register_script(_ACQUIRE)
        self._beat = client.register_script(_BEAT)
        self._put = client.register_script(_PUT)
        self._release = client.register_script(_RELEASE)

    def acquire(
        self, job: str, note: str = "", extra: tuple[str, str, float] | None = None, *, ttl_s: float | None = None
    ) -> Lease | None:
        """The job's lease when nobody holds it (None otherwise). ``extra`` = (key, value, ttl s) is
        written in the same step (a walk's first state, so that no reader sees a lease without it)."""
        keys = [fleet_key(job, "lease"), fleet_key(job, "fence")]
        ttl_s = self.lease_ttl_s if ttl_s is None else ttl_s  # the Fleet's, unless the job says
        args: list[Any] = [f"{self.holder} {note}".rstrip(), _ms(ttl_s), _ms(FENCE_TTL_S)]
        if extra is not None:
            keys.append(extra[0])
            args += [extra[1], _ms(extra[2])]
        token, _held = self._acquire(keys=keys, args=args)
        token = int(token)
        if not token:
            return None
        return Lease(self, job, token, f"{token} {args[0]}", ttl_s)

    def lease(self, job: str) -> LeaseInfo | None:
        return LeaseInfo.parse(self.client.get(fleet_key(job, "lease")))

    def read(self, job: str, *parts: str) -> list[Any]:
        """The values (bytes or None) of some of a job's keys, one round trip (one slot)."""
        return list(self.client.mget([fleet_key(job, part) for part in parts]))

    def set(self, job: str, part: str, value: str, ttl_s: float) -> None:
        """An unfenced write (markers any process may set: "stale", "cancel", an error)."""
        self.client.set(fleet_key(job, part), value, px=_ms(ttl_s))

    def delete(self, job: str, *parts: str) -> None:
        self.client.delete(*[fleet_key(job, part) for part in parts])

    def push_capped(self, job: str, part: str, value: str, keep: int, ttl_s: float) -> list[str]:
        """LPUSH value onto a list kept to its ``keep`` newest values; returns those that fell off."""
        key = fleet_key(job, part)
        pipe = self.client.pipeline(transaction=False)
        pipe.lrange(key, keep - 1, -1)  # beyond the cap once the new value is in front
        pipe.lpush(key, value)
        pipe.ltrim(key, 0, keep - 1)
        pipe.pexpire(key, _ms(ttl_s))
        return [_text(v) for v in pipe.execute()[0]]

    def list_range(self, job: str, part: str, start: int, stop: int) -> list[str]:
        return [_text(v) for v in self.client.lrange(fleet_key(job, part), start, stop)]

    def list_length(self, job: str, part: str) -> int:
        return int(self.client.llen(fleet_key(job, part)))


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def loads_object(raw: bytes | str | None) -> dict | None:
    """A JSON object we wrote, or None (absent, or not ours: a stored value is hostile)."""
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except (ValueError, TypeError, UnicodeDecodeError):
        return None
    return value if isinstance(value, dict) else None


# ===================================================================== "show all matches" walks

WALKS = "walks"  # the job: one walk runs at a time in the fleet, under its lease


def walk_state_part(walk_id: str) -> str:
    return f"walk:{walk_id}"  # JSON: filters, who, progress, then the result's summary


def walk_keys_part(walk_id: str) -> str:
    return f"keys:{walk_id}"  # list: the matching keys, sorted (at most max_results)


def walk_cancel_part(walk_id: str) -> str:
    return f"cancel:{walk_id}"  # set by any process; the walking one stops at its next beat


def walk_index_part(kind: str, description: tuple) -> str:
    """The walk of these filters: one per identity, so that the same filters share one walk."""
    digest = hashlib.sha256(dumps([kind, [list(pair) for pair in description]]).encode()).hexdigest()[:40]
    return f"index:{digest}"


WALK_RECENT_PART = "recent"  # list: the last walks' ids, newest first (older ones are deleted)
