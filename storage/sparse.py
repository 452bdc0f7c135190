"""Paged scans of keys that are few among many (the locks): every primary at once, SCAN on the node.

A lock page at 1M records examines its whole budget to find a handful of locks, or none. SCAN
costs the node about 0.7 µs a key, so such a page is the nodes' time: issued as SCAN COUNT 1000
from the client, one primary after the other, a 50,000-key budget took 50 round trips (~60 ms). Here
the budget is shared by the primaries, read at once (storage.topology's executor), and on each a
read-only script (``_SCAN_STEP``) loops SCAN on the node, up to ``STEP_KEYS`` keys per call (about
1.4 ms of the node's time), until it has found what the page needs: a round trip per step and shard.

Locks are live state, so the SCANs run on the primaries of the topology given (the page's), like the
GET and PTTL of every lock shown. A server that refuses the script (scripting disabled, an ACL) is
scanned the same way from the client.

The cursor (version 2) holds a position per primary started and not finished (the SCAN cursor, or a
SCAN batch to repeat and the last key taken from it, as version 1's fallback form), the slot ranges
finished, and the keys found but not shown yet. Version 1 cursors (storage.scanning) are read too.
Within a primary, keys come in SCAN order (each batch sorted); across primaries, in slot order.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from dataclasses import dataclass, replace
from functools import partial
from typing import cast

import redis

from storage.errors import InvalidCursor
from storage.keys import key_slot
from storage.scanning import (
    _CURSOR_VERSION,
    _MAX_ADDRESS_CHARS,
    _MAX_COUNT,
    _MAX_CURSOR_CHARS,
    _MAX_KEY_CHARS,
    _MAX_SCAN_CURSOR,
    _MAX_SLOT,
    CorruptEntry,
    Page,
    ScanFilter,
    _bounded_int,
    _check_keys_in_walk,
    _covers,
    _fits_in_cursor,
    _in_ranges,
    _key_bytes,
    _key_text,
    _merge_ranges,
    _overlaps,
    _Position,
    _TotalKeys,
    check_paging,
    decode_cursor,
    decode_leftover,
    decode_visited,
)
from storage.topology import Shard, Topology

SPARSE_CURSOR_VERSION = 2
# Keys one script call examines: SCAN costs the node ~0.7 µs a key, so ~1.4 ms that the node answers
# nobody else (issue 19 item 9: a primary's PING waits at most ~2 ms more; storage.matches likewise).
STEP_KEYS = 2000
_SCAN_COUNT = 1000  # COUNT of each SCAN inside a step (larger batches cost the node more per key)
_MAX_POSITIONS = 256

# One step on one node: SCAN from ARGV[1] (the first call with COUNT ARGV[4] unless it is "0": a
# batch a cursor repeats; else COUNT ARGV[3]), MATCH ARGV[2], until ARGV[5] keys are examined, ARGV[6] keys match, or
# the node's walk is done. Reply: the next cursor, the keys examined (COUNT per SCAN, or the keys
# it gave when more), then per SCAN that matched any key its cursor, its COUNT and the keys.
# Read-only: it runs wherever it is sent and never writes.
_SCAN_STEP = """#!lua flags=no-writes,allow-cross-slot-keys
local cursor, match = ARGV[1], ARGV[2]
local count, first = tonumber(ARGV[3]), tonumber(ARGV[4])
if first == 0 then first = nil end
local budget, wanted = tonumber(ARGV[5]), tonumber(ARGV[6])
local out = {'0', 0}
local examined, found = 0, 0
repeat
  -- A repeated batch keeps its COUNT (it must list the same keys); the others stay in budget.
  local c = first or math.max(1, math.min(count, budget - examined))
  first = nil
  local reply = redis.call('SCAN', cursor, 'MATCH', match, 'COUNT', c)
  local keys = reply[2]
  if #keys > 0 then
    out[#out + 1] = cursor
    out[#out + 1] = c
    out[#out + 1] = keys
    found = found + #keys
  end
  examined = examined + math.max(c, #keys)
  cursor = reply[1]
until cursor == '0' or examined >= budget or found >= wanted
out[1] = cursor
out[2] = examined
return out
"""


@dataclass(frozen=True)
class _At:
    """Where the walk stands on one primary: its SCAN cursor; with ``last_key``, the cursor of a
    batch to repeat (COUNT ``count``), taking only its keys after ``last_key``."""

    slot_start: int
    address: str
    cursor: int
    count: int = 0
    last_key: bytes | None = None


@dataclass(frozen=True)
class _State:
    positions: tuple[_At, ...] = ()
    visited: tuple[tuple[int, int], ...] = ()
    leftover: tuple[bytes, ...] = ()


@dataclass(frozen=True)
class _Batch:
    cursor: int  # the SCAN cursor that gave these keys
    count: int
    keys: list[bytes]  # sorted
    after: bytes | None  # the keys are those after this one (a repeated batch)


# ===================================================================== cursor


def encode_state(state: _State) -> str:
    out: dict = {"v": SPARSE_CURSOR_VERSION}
    if state.positions:
        out["p"] = [
            [at.slot_start, at.address, at.cursor]
            + ([at.count, _key_text(at.last_key)] if at.last_key is not None else [])
            for at in state.positions
        ]
    if state.visited:
        out["d"] = [list(r) for r in state.visited]
    if state.leftover:
        out["r"] = [_key_text(k) for k in state.leftover]
    text = json.dumps(out, separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_state(cursor: str) -> _State | _Position:
    """A version 2 cursor's state, or a version 1 cursor's position; InvalidCursor for anything
    else. Every number and list is bounded as version 1's are (storage trusts no cursor)."""
    try:
        if not isinstance(cursor, str) or len(cursor) > _MAX_CURSOR_CHARS:
            raise ValueError("too long")
        padded = cursor + "=" * (-len(cursor) % 4)
        state = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        if isinstance(state, dict) and state.get("v") == _CURSOR_VERSION:
            return decode_cursor(cursor)
        if not isinstance(state, dict) or state.get("v") != SPARSE_CURSOR_VERSION:
            raise ValueError("unknown cursor version")
        positions, visited, leftover = state.get("p", []), state.get("d", []), state.get("r", [])
        if not isinstance(positions, list) or len(positions) > _MAX_POSITIONS:
            raise ValueError("bad positions")
        ats = tuple(_decode_at(p) for p in positions)
        return _State(ats, decode_visited(visited), decode_leftover(leftover))
    except (ValueError, KeyError, TypeError, UnicodeError, binascii.Error, RecursionError) as e:
        raise InvalidCursor(cursor if isinstance(cursor, str) else repr(cursor), str(e)) from None


def _decode_at(p) -> _At:
    if not isinstance(p, list) or len(p) not in (3, 5):
        raise ValueError("bad position")
    slot_start, address, cursor = p[0], p[1], p[2]
    if not _bounded_int(slot_start, 0, _MAX_SLOT):
        raise ValueError("slot out of range")
    if not isinstance(address, str) or len(address) > _MAX_ADDRESS_CHARS:
        raise ValueError("bad address")
    if not _bounded_int(cursor, 0, _MAX_SCAN_CURSOR):
        raise ValueError("SCAN cursor out of range")
    if len(p) == 3:
        return _At(slot_start, address, cursor)
    count, last_key = p[3], p[4]
    if not _bounded_int(count, 1, _MAX_COUNT):
        raise ValueError("SCAN count out of range")
    if not isinstance(last_key, str) or len(last_key) > _MAX_KEY_CHARS:
        raise ValueError("bad batch position")
    return _At(slot_start, address, cursor, count, _key_bytes(last_key))


def _from_v1(pos: _Position, topology: Topology) -> _State:
    """A version 1 position as a state: one primary under way, the ones before it finished."""
    visited = pos.finished()
    if pos.last_key is not None:
        at = _At(pos.slot_start, pos.address, pos.scan_cursor, pos.batch_count, pos.last_key)
        return _State((at,), visited)
    if pos.leftover and pos.scan_cursor == 0:
        # SCAN cursor 0 with leftover keys: that primary's walk is done but for those keys.
        shard = next((s for s in topology.shards() if s.address == pos.address), None)
        shard = shard or topology.shard_serving(pos.slot_start)
        if shard is not None:
            visited = _merge_ranges(visited + shard.slot_ranges)
        return _State((), visited, pos.leftover)
    ats = (_At(pos.slot_start, pos.address, pos.scan_cursor),) if pos.scan_cursor else ()
    return _State(ats, visited, pos.leftover)


def _check_state_keys(state: _State, wanted: ScanFilter, cursor: str) -> None:
    """InvalidCursor when the cursor names a key the walk's SCAN could not have listed (checked
    before any command: a crafted cursor must not read ``billing:api-key`` through the locks page)."""
    named = list(state.leftover) + [at.last_key for at in state.positions if at.last_key is not None]
    for key in named:
        _check_keys_in_walk(_Position(0, "", 0, (key,)), wanted, cursor)


# ===================================================================== paging


def sparse_page(
    topology: Topology, wanted: ScanFilter, load, cursor: str | None, limit: int, *, max_scan: int, max_seconds=None
) -> Page:
    """One page of the keys ``wanted`` matches, as storage.scanning.scan_page gives it, with at
    most about ``max_scan`` keys examined in all (shared by the primaries)."""
    check_paging(limit, max_scan, max_seconds)
    started = time.monotonic()
    state = decode_state(cursor) if cursor else _State()
    if isinstance(state, _Position):
        _check_keys_in_walk(state, wanted, cursor)
        state = _from_v1(state, topology)
    elif cursor:
        _check_state_keys(state, wanted, cursor)
    deadline = None if max_seconds is None else started + max_seconds
    total_keys = _TotalKeys(topology)
    try:
        total_keys.send()  # answered while the page is read
        page = _SparseWalk(topology, load, wanted, limit, max_scan, deadline).run(state)
    except BaseException:
        total_keys.abandon()
        raise
    return replace(page, total_keys=total_keys.read())


@dataclass
class _Entry:
    key: bytes
    shard: Shard | None  # None: a leftover key, read on the primary serving its slot
    batch: _Batch | None = None


class _SparseWalk:
    def __init__(self, topology: Topology, load, wanted: ScanFilter, limit: int, max_scan: int, deadline=None):
        self.topology, self.load, self.wanted = topology, load, wanted
        self.limit, self.max_scan, self.deadline = limit, max_scan, deadline
        self.records: list = []
        self.corrupt: list[CorruptEntry] = []
        self.taken: set[bytes] = set()
        self.scanned = 0  # keys consumed (looked at), as storage.scanning counts them
        self.spent = 0  # keys the SCANs examined

    def _late(self) -> bool:
        return self.deadline is not None and time.monotonic() >= self.deadline

    def run(self, state: _State) -> Page:
        visited = state.visited
        entries = [_Entry(k, None) for k in state.leftover]
        done = self._consume(entries)
        if done < len(entries):  # the page is full of keys the cursor carried
            return self._page(_State(state.positions, visited, tuple(e.key for e in entries[done:])), False)
        positions = state.positions
        while True:
            active = [s for s in self.topology.shards() if not _covers(visited, s.slot_ranges)]
            if not active:
                return self._page(None, False)
            before = [_attach(s, positions) for s in active]
            if self.spent >= self.max_scan or (self.spent and self._late()):
                return self._page(_state([(s, at, False) for s, at in zip(active, before)], visited, ()), True)
            share = max(1, (self.max_scan - self.spent) // len(active))
            need = self.limit - len(self.records)
            by_start = {s.slot_start: at for s, at in zip(active, before)}
            stepped = self.topology.map_shards(partial(self._steps, by_start, share, need, visited), active)
            entries, after = [], []
            for used, next_cursor, examined, batches in stepped:
                self.spent += examined
                after.append(_At(used.slot_start, used.address, next_cursor))
                entries.extend(_Entry(k, used, b) for b in batches for k in b.keys)
            done = self._consume(entries)
            if done < len(entries):
                return self._page(_stopped(active, before, after, entries, done, visited), False)
            final = [(s, at, at.cursor == 0) for s, at in zip(active, after)]
            state = _state(final, visited, ())
            positions, visited = state.positions, state.visited

    def _steps(self, at_of: dict, share: int, need: int, visited, shard: Shard) -> tuple[Shard, int, int, list[_Batch]]:
        """Script steps on one primary until ``share`` keys are examined, ``need`` match, its walk is
        done or the page is late: (the primary, next SCAN cursor, keys examined, batches with keys).
        ``at_of``: positions by first slot. A failover makes map_shards run it again on the new primary."""
        at = at_of.get(shard.slot_start) or _At(shard.slot_start, shard.address, 0)
        cursor, count, after = at.cursor, at.count, at.last_key
        examined, found, batches = 0, 0, []
        filter_slots = bool(visited) and _overlaps(visited, shard.slot_ranges)
        while True:
            budget = min(STEP_KEYS, share - examined)
            replay = count if after is not None else 0
            args = [cursor, self.wanted.match, _SCAN_COUNT, replay, budget, need - found]
            next_cursor, n, got = _run_step(shard, args)
            examined += n
            for batch_cursor, batch_count, keys in got:
                if filter_slots:
                    # Slots this walk has finished moved here meanwhile: their keys were listed already.
                    keys = [k for k in keys if not _in_ranges(visited, key_slot(k))]
                keys.sort()  # so that a repeated batch is taken in the same order
                first = after if after is not None and batch_cursor == cursor else None
                if first is not None:
                    keys = [k for k in keys if k > first]
                if keys:
                    batches.append(_Batch(batch_cursor, batch_count, keys, first))
                    found += len(keys)
            after, cursor = None, next_cursor
            if cursor == 0 or examined >= share or found >= need or self._late():
                return shard, cursor, examined, batches

    def _consume(self, entries: list[_Entry]) -> int:
        """Reads entries in order until the page is full; how many were consumed."""
        i = 0
        while i < len(entries) and len(self.records) < self.limit:
            chunk = entries[i : i + self.limit - len(self.records)]
            groups: dict[str, tuple[Shard, list[bytes]]] = {}
            for e in chunk:
                shard = e.shard or self._serving(e.key)
                groups.setdefault(shard.address, (shard, []))[1].append(e.key)
            loaded: dict[bytes, object] = {}
            for shard, keys in groups.values():
                items = self.topology.call_on_shard(shard, partial(self._load, keys))
                loaded.update(zip(keys, items))
            for e in chunk:
                i += 1
                self.scanned += 1
                if e.key in self.taken:
                    continue  # met twice in one call (slots migrating)
                self.taken.add(e.key)
                item = loaded[e.key]
                if item is None:
                    continue  # gone between SCAN and GET
                if isinstance(item, CorruptEntry):
                    self.corrupt.append(item)
                    continue
                self.records.append(item)
                if len(self.records) == self.limit:
                    return i
        return i

    def _load(self, keys: list[bytes], shard: Shard) -> list:
        return self.load(shard.client, keys, None, None)

    def _serving(self, key: bytes) -> Shard:
        slot = key_slot(key)
        shards = self.topology.shards()
        return next((s for s in shards if _in_ranges(s.slot_ranges, slot)), shards[0])

    def _page(self, state: _State | None, budget_exhausted: bool) -> Page:
        return Page(
            records=self.records,
            corrupt=self.corrupt,
            next_cursor=None if state is None else encode_state(state),
            scanned=self.scanned,
            total_keys=0,
            budget_exhausted=budget_exhausted,
            examined=self.spent,
        )


def _attach(shard: Shard, positions: tuple[_At, ...]) -> _At:
    """The position of ``shard``: by its address, else one whose first slot it now serves (after a
    failover its SCAN cursor goes on on the new primary, as storage.scanning's does)."""
    for at in positions:
        if at.address == shard.address:
            return at
    for at in positions:
        if _in_ranges(shard.slot_ranges, at.slot_start):
            return replace(at, slot_start=shard.slot_start, address=shard.address)
    return _At(shard.slot_start, shard.address, 0)


def _state(final: list[tuple[Shard, _At, bool]], visited, leftover: tuple[bytes, ...]) -> _State:
    """(primary, position, done) of every primary under way as a state: the done ones' slots join
    the finished ones; a position at SCAN cursor 0 (never started) is left out."""
    positions = []
    for shard, at, done in final:
        if done:
            visited = _merge_ranges(visited + shard.slot_ranges)
        elif at.cursor or at.last_key is not None:
            positions.append(at)
    return _State(tuple(positions), visited, leftover)


def _stopped(active, before, after, entries: list[_Entry], done: int, visited) -> _State:
    """The state when the page filled up in the middle of what this round's steps found."""
    rest = entries[done:]
    keys = tuple(e.key for e in rest)
    if _fits_in_cursor(keys):
        return _state([(s, at, at.cursor == 0) for s, at in zip(active, after)], visited, keys)
    stop = rest[0].shard
    i = next(n for n, at in enumerate(after) if stop is not None and at.address == stop.address)
    # The primaries after the one the page stopped on start again where they stood: what their steps
    # found does not fit in a URL (the same SCANs find it again).
    final = [(s, at, at.cursor == 0) for s, at in zip(active[: i + 1], after[: i + 1])]
    final += [(s, at, False) for s, at in zip(active[i + 1 :], before[i + 1 :])]
    mine = tuple(e.key for e in rest if e.shard is stop)
    if _fits_in_cursor(mine):
        return _state(final, visited, mine)
    # Nor do that primary's: repeat the SCAN batch the page stopped in, after the last key taken.
    batch = rest[0].batch
    assert batch is not None and stop is not None  # this round's entries name their batch
    taken = [e.key for e in entries[:done] if e.batch is batch]
    last = taken[-1] if taken else batch.after
    at = _At(stop.slot_start, stop.address, batch.cursor, batch.count if last is not None else 0, last)
    final[i] = (active[i], at, False)
    return _state(final, visited, ())


def _run_step(shard: Shard, args: list) -> tuple[int, int, list[tuple[int, int, list[bytes]]]]:
    try:
        reply = shard.client.register_script(_SCAN_STEP)(keys=[], args=args, client=shard.client)
    except redis.exceptions.ResponseError as e:
        if "BUSY" in str(e) or "LOADING" in str(e):
            raise
        return _client_step(shard, args)  # the script refused: the same loop from here
    got = [(int(reply[i]), int(reply[i + 1]), list(reply[i + 2])) for i in range(2, len(reply), 3)]
    return int(reply[0]), int(reply[1]), got


def _client_step(shard: Shard, args: list) -> tuple[int, int, list[tuple[int, int, list[bytes]]]]:
    """_SCAN_STEP's loop from the client, one SCAN per round trip."""
    cursor, match, count, first, budget, wanted = args
    examined, found = 0, 0
    got: list[tuple[int, int, list[bytes]]] = []
    while True:
        c = first or max(1, min(count, budget - examined))
        first = None
        next_cursor, keys = shard.client.scan(cursor, match=match, count=c)
        if keys:
            got.append((cursor, c, cast("list[bytes]", keys)))  # the store's clients never decode
            found += len(keys)
        examined += max(c, len(keys))
        cursor = next_cursor
        if cursor == 0 or examined >= budget or found >= wanted:
            return cursor, examined, got
