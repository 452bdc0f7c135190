"""Cursor-paged, filtered scans over all primaries, and whole-shard walks.

A page walks the primaries in slot order with SCAN on each node and fetches the values of a batch of
keys in one pipelined round trip. Its cost depends on ``limit`` and ``max_scan``, never on the size
of the store.

SCAN may hand back more keys than a page needs. The cursor then records the SCAN cursor that
produced the batch, the COUNT used, how many of the batch's keys were consumed, and the last
consumed key: the next call repeats that SCAN call (deterministic while the node's table does not
resize) and continues right after that key, so no record is skipped or repeated.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Callable, Iterator

from storage.batch import fetch_values
from storage.codec import preview
from storage.errors import CorruptRecord, InvalidCursor
from storage.keys import ACTOR_PREFIX, LOCK_PREFIX, WORKER_PREFIX
from storage.raw import LockInfo
from storage.records import ACTORS, WORKERS, RecordKind
from storage.topology import Shard, Topology

_CURSOR_VERSION = 1
# COUNT for SCAN calls: small unfiltered pages need only about `limit` keys; filtered pages read
# more per round trip because most keys may not match.
_MIN_COUNT = 10
_MAX_COUNT = 1000


@dataclass(frozen=True)
class CorruptEntry:
    key: str
    error: str
    preview: str  # printable, escaped repr of the first 200 bytes


@dataclass(frozen=True)
class Page:
    records: list  # Actor / Worker messages (or LockInfo for locks)
    corrupt: list[CorruptEntry]
    next_cursor: str | None  # opaque, URL-safe; None when the walk is complete
    scanned: int  # keys examined by this call
    total_keys: int  # DBSIZE summed over primaries (estimate of the walk's length)
    budget_exhausted: bool  # True when the call stopped on its scan budget before filling `limit`


# ===================================================================== what is scanned


@dataclass(frozen=True)
class ScanKind:
    prefix: str
    # (node, keys) -> list of (record | None for gone | CorruptEntry), fetched in one round trip
    load: Callable
    # Filter that only needs the key (applied before fetching values) and the SCAN MATCH pattern.
    key_filter_for: Callable


def _load_records(kind: RecordKind):
    def load(node, keys):
        out = []
        for key, raw in zip(keys, fetch_values(node, keys)):
            if raw is None:
                out.append(None)
                continue
            try:
                out.append(kind.decode_stored(key, raw)[0])
            except CorruptRecord as e:
                out.append(CorruptEntry(e.key, e.reason, preview(raw)))
        return out

    return load


def _load_locks(node, keys):
    if not keys:
        return []
    pipe = node.pipeline(transaction=False)
    for key in keys:
        pipe.execute_command("GET", key)
        pipe.execute_command("PTTL", key)
    replies = pipe.execute(raise_on_error=False)
    out = []
    for i, key in enumerate(keys):
        value, ttl = replies[2 * i], replies[2 * i + 1]
        if value is None:
            out.append(None)
        elif isinstance(value, Exception):  # e.g. WRONGTYPE: a non-string key under lock:
            out.append(CorruptEntry(_key_text(key), str(value), ""))
        else:
            out.append(
                LockInfo(
                    key=_key_text(key),
                    token=value.decode("utf-8", "backslashreplace"),
                    ttl_ms=ttl if isinstance(ttl, int) and ttl >= 0 else None,
                )
            )
    return out


def _glob_escape(text: str) -> str:
    return "".join("\\" + ch if ch in "*?[]\\" else ch for ch in text)


@dataclass(frozen=True)
class ScanFilter:
    match: str  # SCAN MATCH pattern
    record_ok: Callable[[object], bool] | None  # None: every decoded record matches

    @property
    def selective(self) -> bool:
        return self.record_ok is not None or self.match.count("*") > 1 or not self.match.endswith(":*")


def actor_filter(status, template_namespace, template_name, id_contains) -> ScanFilter:
    match = ACTOR_PREFIX + ("*" + _glob_escape(id_contains) + "*" if id_contains else "*")
    checks = []
    if status is not None:
        checks.append(lambda a: a.status == status)
    if template_namespace is not None:
        checks.append(lambda a: a.actor_template_namespace == template_namespace)
    if template_name is not None:
        checks.append(lambda a: a.actor_template_name == template_name)
    if id_contains:
        # MATCH also looks at the key; the record's own id is what the user searched.
        checks.append(lambda a: id_contains in a.actor_id)
    return ScanFilter(match, _all(checks))


def worker_filter(namespace, pool, assigned, id_contains) -> ScanFilter:
    # Worker keys are worker:<ns>:<pool>:<pod>, so namespace and pool narrow the SCAN itself.
    if namespace is not None and pool is not None:
        match = f"{WORKER_PREFIX}{_glob_escape(namespace)}:{_glob_escape(pool)}:*"
    elif namespace is not None:
        match = f"{WORKER_PREFIX}{_glob_escape(namespace)}:*"
    else:
        match = WORKER_PREFIX + "*"
    checks = []
    if namespace is not None:
        checks.append(lambda w: w.worker_namespace == namespace)
    if pool is not None:
        checks.append(lambda w: w.worker_pool == pool)
    if assigned is not None:
        checks.append(lambda w: bool(w.actor_id) == assigned)
    if id_contains:
        # A worker is identified by its pod; the actor it serves is searched too.
        checks.append(lambda w: id_contains in w.worker_pod or id_contains in w.actor_id)
    return ScanFilter(match, _all(checks))


def _all(checks):
    if not checks:
        return None
    return lambda record: all(check(record) for check in checks)


ACTOR_SCAN = _load_records(ACTORS)
WORKER_SCAN = _load_records(WORKERS)
LOCK_SCAN = _load_locks


def lock_filter() -> ScanFilter:
    return ScanFilter(LOCK_PREFIX + "*", None)


# ===================================================================== cursor


@dataclass(frozen=True)
class _Position:
    slot_start: int  # identifies the shard (its primary's first slot)
    address: str  # the primary that produced scan_cursor (informational across failovers)
    scan_cursor: int  # SCAN cursor that produced the batch being consumed
    count: int  # COUNT of that SCAN call (0: no batch in progress)
    consumed: int  # keys of that batch already consumed
    last_key: str | None  # the last consumed key of that batch


def encode_cursor(pos: _Position) -> str:
    state = {"v": _CURSOR_VERSION, "s": pos.slot_start, "a": pos.address, "c": pos.scan_cursor}
    if pos.consumed:
        state.update(n=pos.count, k=pos.consumed, l=pos.last_key)
    text = json.dumps(state, separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> _Position:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        state = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        if not isinstance(state, dict) or state.get("v") != _CURSOR_VERSION:
            raise ValueError("unknown cursor version")
        pos = _Position(
            slot_start=state["s"],
            address=state["a"],
            scan_cursor=state["c"],
            count=state.get("n", 0),
            consumed=state.get("k", 0),
            last_key=state.get("l"),
        )
        ints = (pos.slot_start, pos.scan_cursor, pos.count, pos.consumed)
        if not all(type(v) is int and v >= 0 for v in ints) or pos.slot_start >= 16384:
            raise ValueError("bad numbers")
        if not isinstance(pos.address, str) or not (pos.last_key is None or isinstance(pos.last_key, str)):
            raise ValueError("bad fields")
        if pos.consumed and not pos.count:
            raise ValueError("batch offset without its COUNT")
        return pos
    except (ValueError, KeyError, TypeError, UnicodeError, binascii.Error) as e:
        raise InvalidCursor(cursor, str(e)) from None


def _key_text(key: bytes) -> str:
    return key.decode("utf-8", "surrogateescape")


def _key_bytes(key: str) -> bytes:
    return key.encode("utf-8", "surrogateescape")


# ===================================================================== paging


def scan_page(topology: Topology, load, cursor: str | None, limit: int, wanted: ScanFilter, max_scan: int) -> Page:
    if limit < 1:
        raise ValueError("limit must be at least 1")
    if max_scan < 1:
        raise ValueError("max_scan must be at least 1")
    pos = decode_cursor(cursor) if cursor else None
    total_keys = sum(topology.map_shards(lambda s: s.client.dbsize()))

    shard = topology.shard_serving(pos.slot_start if pos else 0)
    scan_cursor = pos.scan_cursor if pos else 0
    resume = pos if pos and pos.consumed else None
    records, corrupt = [], []
    scanned = 0
    spent = 0  # budget: keys examined, at least COUNT per SCAN call (matches may be sparse)
    preferred = _MAX_COUNT if wanted.selective else max(_MIN_COUNT, min(_MAX_COUNT, limit))

    while shard is not None:
        if spent >= max_scan:
            return _page(records, corrupt, _Position(shard.slot_start, shard.address, scan_cursor, 0, 0, None),
                         scanned, total_keys, budget_exhausted=True)
        count = resume.count if resume else max(_MIN_COUNT, min(preferred, max_scan - spent))
        step_shard = [shard]

        def scan_step(s: Shard):
            step_shard[0] = s
            return s.client.scan(scan_cursor, match=wanted.match, count=count)

        next_cursor, keys = topology.call_on_shard(shard, scan_step)
        shard = step_shard[0]
        start = 0
        if resume:
            start = min(resume.consumed, len(keys))
            if resume.last_key is not None:
                last = _key_bytes(resume.last_key)
                if last in keys:
                    start = keys.index(last) + 1
            resume = None
        spent += max(len(keys) - start, count)

        # Consume the batch in chunks, fetching values only for keys that may be needed.
        i = start
        while i < len(keys):
            budget_left = max_scan - scanned
            if budget_left <= 0:
                stop = (_Position(shard.slot_start, shard.address, scan_cursor, count, i, _key_text(keys[i - 1])) if i
                        else _Position(shard.slot_start, shard.address, scan_cursor, 0, 0, None))
                return _page(records, corrupt, stop, scanned, total_keys, budget_exhausted=True)
            need = limit - len(records)
            chunk_size = need if wanted.record_ok is None else max(2 * need, 100)
            chunk = keys[i : i + min(chunk_size, budget_left)]
            loaded = topology.call_on_shard(shard, lambda s: load(s.client, chunk))
            for key, item in zip(chunk, loaded):
                i += 1
                scanned += 1
                if item is None:
                    continue
                if isinstance(item, CorruptEntry):
                    corrupt.append(item)
                    continue
                if wanted.record_ok is not None and not wanted.record_ok(item):
                    continue
                records.append(item)
                if len(records) == limit:
                    nxt = _position_after(topology, shard, scan_cursor, next_cursor, count, keys, i)
                    return _page(records, corrupt, nxt, scanned, total_keys, budget_exhausted=False)

        scan_cursor = next_cursor
        if scan_cursor == 0:
            shard = _next_shard(topology, shard)
    return _page(records, corrupt, None, scanned, total_keys, budget_exhausted=False)


def _position_after(topology, shard, scan_cursor, next_cursor, count, keys, consumed) -> _Position | None:
    if consumed < len(keys):
        return _Position(shard.slot_start, shard.address, scan_cursor, count, consumed, _key_text(keys[consumed - 1]))
    if next_cursor != 0:
        return _Position(shard.slot_start, shard.address, next_cursor, 0, 0, None)
    following = _next_shard(topology, shard)
    if following is None:
        return None
    return _Position(following.slot_start, following.address, 0, 0, 0, None)


def _next_shard(topology: Topology, shard: Shard) -> Shard | None:
    for candidate in topology.shards():
        if candidate.slot_start > shard.slot_start:
            return candidate
    return None


def _page(records, corrupt, position, scanned, total_keys, budget_exhausted) -> Page:
    return Page(
        records=records,
        corrupt=corrupt,
        next_cursor=encode_cursor(position) if position is not None else None,
        scanned=scanned,
        total_keys=total_keys,
        budget_exhausted=budget_exhausted,
    )


# ===================================================================== whole-shard walks


def walk_shard(
    topology: Topology, shard: Shard, match: str | None, count: int = 1000, *, resume_on_failover: bool = True
) -> Iterator[tuple[list[bytes], list[bytes | None]]]:
    """(keys, values) batches of one primary, each batch one SCAN and one pipelined GET.

    With ``resume_on_failover`` the walk continues at its SCAN cursor on the replica that took over
    (a few keys may then repeat or be missed, as SCAN allows); without it, failover errors propagate
    so that the caller can restart the shard from scratch.
    """
    cursor = 0
    current = [shard]

    def step(s: Shard):
        current[0] = s
        next_cursor, keys = s.client.scan(cursor, match=match, count=count)
        return next_cursor, keys, fetch_values(s.client, keys)

    while True:
        if resume_on_failover:
            next_cursor, keys, values = topology.call_on_shard(current[0], step)
        else:
            next_cursor, keys, values = step(current[0])
        if keys:
            yield keys, values
        cursor = next_cursor
        if cursor == 0:
            return


def walk_keys(topology: Topology, shard: Shard, match: str | None, count: int = 1000) -> Iterator[list[bytes]]:
    """Key batches of one primary (SCAN only, no values)."""
    cursor = 0
    current = [shard]

    def step(s: Shard):
        current[0] = s
        return s.client.scan(cursor, match=match, count=count)

    while True:
        cursor, keys = topology.call_on_shard(current[0], step)
        if keys:
            yield keys
        if cursor == 0:
            return

