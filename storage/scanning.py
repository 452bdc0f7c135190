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
import hashlib
import json
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from functools import partial
from operator import attrgetter
from typing import Any, TypedDict, cast

from redis.exceptions import NoScriptError, ResponseError

from storage.errors import CorruptRecord, InvalidCursor
from storage.keys import ACTOR_PREFIX, LOCK_PREFIX, WORKER_PREFIX, glob_escape, key_slot
from storage.node_reads import fetch_values
from storage.raw import LockInfo
from storage.records import ACTORS, WORKERS, RecordKind
from storage.server_readable import ACTOR_SCHEMA, WORKER_SCHEMA, Unreadable
from storage.topology import FAILOVER_ERRORS, Shard, Topology

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
    raw_key: bytes = b""  # the key as stored (``key`` shows bytes that are not UTF-8 escaped)


@dataclass(frozen=True)
class Page:
    records: list  # Actor / Worker messages (or LockInfo for locks)
    corrupt: list[CorruptEntry]
    next_cursor: str | None  # opaque, URL-safe; None when the walk is complete
    scanned: int  # keys examined by this call
    total_keys: int  # DBSIZE summed over primaries (estimate of the walk's length)
    budget_exhausted: bool  # True when the call stopped on its scan budget before filling `limit`
    # Records of `records` the ate server cannot read (storage.server_readable), by key.
    unreadable: dict[str, Unreadable] = field(default_factory=dict)
    # Keys the store's SCANs examined, where a walk matches few of them (the locks among the records):
    # what "scanned N of about M keys" tells the operator. None: the same as `scanned`.
    examined: int | None = None


class _Unreadable:
    """A decoded record the ate server cannot read, as a loader hands it to the walk."""

    __slots__ = ("key", "record", "why")

    def __init__(self, key: str, record, why: Unreadable):
        self.key, self.record, self.why = key, record, why


# ===================================================================== what is scanned


# A loader takes (node client, keys, reroute, keep) and returns, per key and in one round trip, the
# record, None when the key is gone or ``keep`` (the record filter) refuses it, or a CorruptEntry.


# Values longer than this are not judged on list pages (storage.server_readable costs ~30 ms a MB).
JUDGE_MAX_BYTES = 1 << 20


def record_loader(kind: RecordKind, corrupt, judged, canonical=None, canonical_values=None):
    """A loader of ``kind``'s records, which hands back per key: None when the key is gone,
    ``corrupt(error, key, raw)`` when atedash cannot decode it (``error`` the CorruptRecord),
    else ``judged(key, raw, record)`` (the record, or what says the ate server cannot read it).

    ``canonical(key, text)``: True when the value's text alone shows the ate server reads it (the
    schema's canonical_readable). Such a value is decoded from that text by the codec's fast path
    and not judged again: what atedash and the server write costs one parse, not three.
    ``canonical_values(key, text)``: the schema's canonical_values, the fields of such a text read
    off the same match (decode and verdict in ~2 µs instead of ~4); None leaves it to the above."""
    decode_stored = kind.decode_stored
    fast = kind.codec.decode_json_fast
    make = kind.codec.message_class

    def load(node, keys, reroute=None, keep=None, values=None):
        # ``keep``: a record filter. A record it refuses is handed back as None (as a key gone), and
        # is not judged: a filtered page decodes hundreds of records to show fifty. ``values``: the
        # keys' values as fetch_values gives them, already read (a script step's).
        out: list = []
        for key, raw in zip(keys, fetch_values(node, keys, reroute) if values is None else values):
            if raw is None:
                out.append(None)
                continue
            if canonical is not None and raw.__class__ is bytes and raw[:1] == b"{" and len(raw) <= JUDGE_MAX_BYTES:
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError:
                    text = None
                # The key checks of decode_stored hold too: the record names this very key.
                record = None
                if text is not None:
                    fields = None if canonical_values is None else canonical_values(key, text)
                    if fields is not None:
                        try:
                            record = make(**fields)  # what fast(text) gives, without a second parse
                        except Exception:  # noqa: BLE001 - a value protobuf refuses: the paths below say why
                            record = None
                    if record is None and canonical(key, text):
                        record = fast(text)
                if record is not None:
                    out.append(None if keep is not None and not keep(record) else record)
                    continue
            try:
                record = decode_stored(key, raw)[0]
            except CorruptRecord as e:
                out.append(corrupt(e, key, raw))
                continue
            out.append(None if keep is not None and not keep(record) else judged(key, raw, record))
        return out

    return RecordLoader(load)


class RecordLoader:
    """A loader made by record_loader: it also takes the values of its keys when a walk's SCAN step
    read them in the same round trip (``values``, as fetch_values gives them)."""

    __slots__ = ("load",)

    def __init__(self, load: Callable[..., list]) -> None:
        self.load = load

    def __call__(self, node, keys, reroute=None, keep=None, values=None) -> list:
        return self.load(node, keys, reroute, keep, values)


def _load_records(kind: RecordKind, schema, one_parse: bool = True):
    """The list pages' loader of ``kind`` (``one_parse``: with record_loader's canonical path)."""
    judge = schema.judge

    def corrupt(e: CorruptRecord, key: bytes, raw: bytes) -> CorruptEntry:
        return CorruptEntry(e.key, e.reason, e.preview, key)

    def judged(key: bytes, raw: bytes, record):
        # ~1 µs for what atedash and the server write; a huge value (~30 ms a MB) is left to its
        # detail page and the overview's count, so that a page's time stays bounded.
        why = judge(key, raw) if len(raw) <= JUDGE_MAX_BYTES else None
        return record if why is None else _Unreadable(_key_text(key), record, why)

    if not one_parse:
        return record_loader(kind, corrupt, judged)
    return record_loader(kind, corrupt, judged, schema.canonical_readable, schema.canonical_values)


def _load_locks(node, keys, reroute=None, keep=None):
    # Lock scans have no record filter (lock_filter's record_ok is None): ``keep`` is always None.
    if not keys:
        return []
    pipe = node.pipeline(transaction=False)
    for key in keys:
        pipe.execute_command("GET", key)
        pipe.execute_command("PTTL", key)
    replies = pipe.execute(raise_on_error=False)
    out: list[LockInfo | CorruptEntry | None] = []
    for i, key in enumerate(keys):
        value, ttl = replies[2 * i], replies[2 * i + 1]
        if value is None:
            out.append(None)
        elif isinstance(value, Exception):  # e.g. WRONGTYPE: a non-string key under lock:
            out.append(CorruptEntry(key.decode("utf-8", "backslashreplace"), str(value), "", key))
        else:
            out.append(
                LockInfo(
                    # For display: bytes that are not UTF-8 escaped, as in CorruptEntry keys
                    # (a surrogate-escaped str cannot be rendered into a page or a URL).
                    key=key.decode("utf-8", "backslashreplace"),
                    token=value.decode("utf-8", "backslashreplace"),
                    ttl_ms=ttl if isinstance(ttl, int) and ttl >= 0 else None,
                )
            )
    return out


@dataclass(frozen=True)
class ScanFilter:
    match: str  # SCAN MATCH pattern
    record_ok: Callable[[object], bool] | None  # None: every decoded record matches
    # Few keys match (locks: one per actor being moved): SCAN reads 1,000 keys per round trip.
    sparse: bool = False

    @property
    def selective(self) -> bool:
        return self.sparse or self.record_ok is not None or self.match.count("*") > 1 or not self.match.endswith(":*")


class ActorFilters(TypedDict, total=False):
    """The filters of an actors page, by keyword (None or absent: any): exact status, template
    namespace and name, ateom pod namespace, name and IP; ``id_contains`` and ``snapshot_contains``
    (last snapshot) are substrings."""

    status: int | None
    template_namespace: str | None
    template_name: str | None
    id_contains: str | None
    pod_namespace: str | None
    pod_name: str | None
    pod_ip: str | None
    snapshot_contains: str | None


class WorkerFilters(TypedDict, total=False):
    """The filters of a workers page, by keyword (None or absent: any): exact namespace, pool and IP,
    free or assigned; ``id_contains`` is a substring of the pod or the assigned actor's id."""

    namespace: str | None
    pool: str | None
    assigned: bool | None
    id_contains: str | None
    ip: str | None


class Paging(TypedDict, total=False):
    """How far one page may look: at most ``max_scan`` keys examined (default 100,000) and, when given,
    ``max_seconds``; then the page ends early with a cursor to go on."""

    max_scan: int
    max_seconds: float | None


class ActorScan(ActorFilters, Paging, total=False):
    """Persistence.scan_actors' keywords."""


class WorkerScan(WorkerFilters, Paging, total=False):
    """Persistence.scan_workers' keywords."""


def actor_filter(
    status=None,
    template_namespace=None,
    template_name=None,
    id_contains=None,
    pod_namespace=None,
    pod_name=None,
    pod_ip=None,
    snapshot_contains=None,
) -> ScanFilter:
    """What an actor page keeps. The incident searches (ateom pod, its IP, a piece of the last
    snapshot) are record checks like the template's: the walk stays bounded by the page's budget."""
    match = ACTOR_PREFIX + ("*" + glob_escape(id_contains) + "*" if id_contains else "*")
    checks = _equal(status=status, actor_template_namespace=template_namespace, actor_template_name=template_name)
    if id_contains:
        # MATCH also looks at the key; the record's own id is what the user searched.
        checks.append(lambda a: id_contains in a.actor_id)
    if pod_namespace is not None:
        checks.append(lambda a: a.ateom_pod_namespace == pod_namespace)
    if pod_name is not None:
        checks.append(lambda a: a.ateom_pod_name == pod_name)
    if pod_ip is not None:
        checks.append(lambda a: a.ateom_pod_ip == pod_ip)
    if snapshot_contains:
        checks.append(lambda a: snapshot_contains in a.last_snapshot)
    return ScanFilter(match, _all(checks))


def worker_filter(namespace=None, pool=None, assigned=None, id_contains=None, ip=None) -> ScanFilter:
    # Worker keys are worker:<ns>:<pool>:<pod>, so namespace and pool narrow the SCAN itself.
    if namespace is not None and pool is not None:
        match = f"{WORKER_PREFIX}{glob_escape(namespace)}:{glob_escape(pool)}:*"
    elif namespace is not None:
        match = f"{WORKER_PREFIX}{glob_escape(namespace)}:*"
    elif pool is not None:
        match = f"{WORKER_PREFIX}*:{glob_escape(pool)}:*"
    else:
        match = WORKER_PREFIX + "*"
    checks = _equal(worker_namespace=namespace, worker_pool=pool)
    if assigned is not None:
        checks.append(lambda w: bool(w.actor_id) == assigned)
    if id_contains:
        # A worker is identified by its pod; the actor it serves is searched too.
        checks.append(lambda w: id_contains in w.worker_pod or id_contains in w.actor_id)
    if ip is not None:
        checks.append(lambda w: w.ip == ip)
    return ScanFilter(match, _all(checks))


def _equal(**wanted: object) -> list[Callable[[Any], bool]]:
    """One check per field given a value (None: any value): the record's field equals it."""
    return [_field_equals(field, value) for field, value in wanted.items() if value is not None]


def _field_equals(field: str, value: object) -> Callable[[Any], bool]:
    get = attrgetter(field)
    return lambda record: get(record) == value


def _all(checks):
    if not checks:
        return None
    return lambda record: all(check(record) for check in checks)


ACTOR_SCAN = _load_records(ACTORS, ACTOR_SCHEMA)
WORKER_SCAN = _load_records(WORKERS, WORKER_SCHEMA)
LOCK_SCAN = _load_locks


def lock_filter() -> ScanFilter:
    return ScanFilter(LOCK_PREFIX + "*", None, sparse=True)


# ===================================================================== cursor


@dataclass(frozen=True)
class _Position:
    """Where a walk stands; the cursor is this, as URL-safe base64 of compact JSON.

    Normal form: the shard (its primary's first slot, plus the primary's address for information),
    the SCAN cursor to continue from, and the keys of the last batch not consumed yet (sorted).
    When those leftover keys would make the cursor too long for a URL, the fallback form records
    instead the SCAN cursor and COUNT that produced the batch and the last consumed key: the next
    call repeats that SCAN (sorted, so its order does not matter) and continues after that key.
    """

    slot_start: int
    address: str
    scan_cursor: int
    leftover: tuple[bytes, ...] = ()
    # fallback form
    batch_count: int = 0
    last_key: bytes | None = None
    # Slot ranges of the shards this walk has finished, as they were then. None (cursors written
    # before this was recorded): every slot below slot_start. See _next_shard.
    visited: tuple[tuple[int, int], ...] | None = None

    def finished(self) -> tuple[tuple[int, int], ...]:
        if self.visited is not None:
            return self.visited
        return ((0, self.slot_start - 1),) if self.slot_start > 0 else ()


# Leftover keys beyond this many characters (as written in the cursor's JSON) switch the cursor to
# its compact fallback form.
_MAX_LEFTOVER_CHARS = 2048

# Bounds decode_cursor enforces on every number and list a cursor carries, whoever wrote it: a cursor
# is input from a URL (atedash signs them, but storage trusts none). Nothing in a cursor can make a
# SCAN COUNT above _MAX_COUNT, a SCAN cursor Redis refuses, or a read of a key outside the walk.
_MAX_CURSOR_CHARS = 16384  # the whole cursor string, before anything is decoded
_MAX_SLOT = 16383
_MAX_SCAN_CURSOR = 2**64 - 1  # SCAN cursors are unsigned 64-bit integers
_MAX_ADDRESS_CHARS = 300
_MAX_LEFTOVER_KEYS = 1000
_MAX_KEY_CHARS = 8192  # the fallback form's last key (a key may be long; the cursor length bounds it too)
_MAX_VISITED_RANGES = 256


def _key_json_chars(key: bytes) -> int:
    """Characters `key` takes in the cursor's JSON (non-ASCII and undecodable bytes are escaped)."""
    return len(json.dumps(_key_text(key)))


# Keys of printable ASCII but '"' and '\\' take their length plus the quotes in the cursor's JSON.
_PLAIN_KEY_BYTES = re.compile(rb"[ !#-\[\]-~]*\Z")


def _fits_in_cursor(leftover: tuple[bytes, ...]) -> bool:
    """Whether ``leftover`` fits the cursor's _MAX_LEFTOVER_CHARS (stops counting once it does not:
    a filtered page may leave most of a SCAN batch of 1000 keys)."""
    if len(leftover) <= _MAX_LEFTOVER_CHARS // 3:
        joined = b"".join(leftover)
        if _PLAIN_KEY_BYTES.match(joined):  # the common case, without a json.dumps per key
            return len(joined) + 3 * len(leftover) <= _MAX_LEFTOVER_CHARS
    chars = 0
    for key in leftover:
        chars += _key_json_chars(key) + 1
        if chars > _MAX_LEFTOVER_CHARS:
            return False
    return True


def encode_cursor(pos: _Position) -> str:
    state = {"v": _CURSOR_VERSION, "s": pos.slot_start, "a": pos.address, "c": pos.scan_cursor}
    if pos.leftover:
        state["r"] = [_key_text(k) for k in pos.leftover]
    if pos.last_key is not None:
        state.update(n=pos.batch_count, l=_key_text(pos.last_key))
    if pos.visited:
        state["d"] = [list(r) for r in pos.visited]
    text = json.dumps(state, separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _bounded_int(value, low: int, high: int) -> bool:
    return type(value) is int and low <= value <= high


def decode_cursor(cursor: str) -> _Position:
    """The position a cursor names; InvalidCursor for anything else (garbled, forged, out of bounds)."""
    try:
        if not isinstance(cursor, str) or len(cursor) > _MAX_CURSOR_CHARS:
            raise ValueError("too long")
        padded = cursor + "=" * (-len(cursor) % 4)
        state = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        if not isinstance(state, dict) or state.get("v") != _CURSOR_VERSION:
            raise ValueError("unknown cursor version")
        slot_start, address, scan_cursor = state["s"], state["a"], state["c"]
        leftover = state.get("r", [])
        count, last_key = state.get("n", 0), state.get("l")
        if not _bounded_int(slot_start, 0, _MAX_SLOT):
            raise ValueError("slot out of range")
        if not _bounded_int(scan_cursor, 0, _MAX_SCAN_CURSOR):
            raise ValueError("SCAN cursor out of range")
        if not _bounded_int(count, 0, _MAX_COUNT):
            raise ValueError("SCAN count out of range")
        if not isinstance(address, str) or len(address) > _MAX_ADDRESS_CHARS:
            raise ValueError("bad address")
        leftover = decode_leftover(leftover)
        if last_key is not None and (
            not isinstance(last_key, str) or len(last_key) > _MAX_KEY_CHARS or count < 1 or leftover
        ):
            raise ValueError("bad batch position")
        visited = state.get("d")
        if visited is not None:
            visited = decode_visited(visited)
        return _Position(
            slot_start=slot_start,
            address=address,
            scan_cursor=scan_cursor,
            leftover=leftover,
            batch_count=count,
            last_key=None if last_key is None else _key_bytes(last_key),
            visited=visited,
        )
    except (ValueError, KeyError, TypeError, UnicodeError, binascii.Error, RecursionError) as e:
        raise InvalidCursor(cursor if isinstance(cursor, str) else repr(cursor), str(e)) from None


def decode_visited(visited) -> tuple[tuple[int, int], ...]:
    """A cursor's finished slot ranges, merged; ValueError when they are not bounded ranges."""
    if (
        not isinstance(visited, list)
        or len(visited) > _MAX_VISITED_RANGES
        or not all(
            isinstance(r, list) and len(r) == 2 and all(type(v) is int for v in r) and 0 <= r[0] <= r[1] <= _MAX_SLOT
            for r in visited
        )
    ):
        raise ValueError("bad visited slots")
    return _merge_ranges(tuple(tuple(r) for r in visited))


def decode_leftover(leftover) -> tuple[bytes, ...]:
    """A cursor's leftover keys; ValueError when they are not a bounded list of strings."""
    if (
        not isinstance(leftover, list)
        or len(leftover) > _MAX_LEFTOVER_KEYS
        or not all(isinstance(k, str) for k in leftover)
        or sum(len(k) + 3 for k in leftover) > _MAX_LEFTOVER_CHARS
    ):
        raise ValueError("bad leftover keys")
    return tuple(_key_bytes(k) for k in leftover)


def _merge_ranges(ranges) -> tuple[tuple[int, int], ...]:
    merged: list[list[int]] = []
    for a, b in sorted(tuple(r) for r in ranges):
        if merged and a <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    return tuple((a, b) for a, b in merged)


def _overlaps(ranges, slot_ranges) -> bool:
    return any(a <= hi and lo <= b for a, b in ranges for lo, hi in slot_ranges)


def _in_ranges(ranges, slot: int) -> bool:
    return any(a <= slot <= b for a, b in ranges)


def _covers(ranges, slot_ranges) -> bool:
    """True when every slot of `slot_ranges` lies within the merged `ranges`."""
    return all(any(a <= lo and hi <= b for a, b in ranges) for lo, hi in slot_ranges)


def _key_text(key: bytes) -> str:
    return key.decode("utf-8", "surrogateescape")


def _key_bytes(key: str) -> bytes:
    return key.encode("utf-8", "surrogateescape")


# ===================================================================== keys a cursor may name


def _match_regex(match: str) -> re.Pattern[bytes]:
    """A regular expression over key bytes for a SCAN MATCH pattern.

    Redis glob syntax: ``*``, ``?``, ``\\x`` (a literal x) and ``[...]`` classes. The patterns this
    module builds use only the first three; a class is matched as "anything" (the literal prefix
    before it still applies), so that a key Redis matched is never refused here.
    """
    out, i, raw = [], 0, match.encode("utf-8", "surrogateescape")
    while i < len(raw):
        ch = raw[i : i + 1]
        if ch == b"*":
            out.append(b".*")
        elif ch == b"?":
            out.append(b".")
        elif ch == b"\\" and i + 1 < len(raw):
            i += 1
            out.append(re.escape(raw[i : i + 1]))
        elif ch == b"[":
            out.append(b".*")
            break  # what follows a class is not checked (see above)
        else:
            out.append(re.escape(ch))
        i += 1
    else:
        out.append(b"\\Z")
    return re.compile(b"".join(out), re.DOTALL)


def _check_keys_in_walk(pos: _Position, wanted: ScanFilter, cursor: str | None) -> None:
    """InvalidCursor when the cursor names a key the walk's SCAN could not have listed.

    The leftover keys of a cursor are read as they stand: without this, a crafted cursor would read
    any key of the store (``billing:api-key`` through the locks page). Checked before any command.
    """
    named = pos.leftover + ((pos.last_key,) if pos.last_key is not None else ())
    if not named:
        return
    pattern = _match_regex(wanted.match)
    for key in named:
        if not pattern.match(key):
            raise InvalidCursor(cursor or "", f"names a key outside the walk ({wanted.match})")


# ===================================================================== paging


def scan_page(
    topology: Topology,
    load,
    cursor: str | None,
    limit: int,
    wanted: ScanFilter,
    max_scan: int,
    max_seconds: float | None = None,
) -> Page:
    check_paging(limit, max_scan, max_seconds)
    started = time.monotonic()
    pos = decode_cursor(cursor) if cursor else _Position(0, "", 0)
    _check_keys_in_walk(pos, wanted, cursor)
    walk = _Walk(topology, load, wanted, limit, max_scan, None if max_seconds is None else started + max_seconds)
    shard = walk.first_shard(pos)
    # The DBSIZEs are answered while the page is read: their round trip costs no wait of its own.
    # The primary the page starts on answers its own within the page's first SCAN step (issue 19
    # item 6: no round trip of its own), unless the walk may not SCAN there (the cursor's keys may
    # fill the page, or are that primary's last); the others' are sent while that step runs.
    scans_first = shard is not None and len(pos.leftover) < limit and not (pos.leftover and pos.scan_cursor == 0)
    walk.total = _TotalKeys(topology, shard if scans_first else None)
    try:
        if pos.leftover or not scans_first:
            walk.total.send()  # now: the page's first round trip is not a SCAN step
        page = walk.run(pos, shard)
    except BaseException:
        walk.total.abandon()
        raise
    return replace(page, total_keys=walk.total.read())


def check_paging(limit: int, max_scan: int, max_seconds: float | None) -> None:
    if limit < 1:
        raise ValueError("limit must be at least 1")
    if max_scan < 1:
        raise ValueError("max_scan must be at least 1")
    if max_seconds is not None and max_seconds < 0:
        raise ValueError("max_seconds must not be negative")


class _TotalKeys:
    """DBSIZE summed over the primaries: one DBSIZE sent to each now, the replies read by read() (no
    thread hand-offs: map_shards' futures cost more than the command itself).

    ``later``: a primary whose DBSIZE the walk's first SCAN there brings (``deliver``); read() asks
    it on its own only when the walk never sent that SCAN (the script refused, a page cut short)."""

    def __init__(self, topology: Topology, later: Shard | None = None) -> None:
        self.topology = topology
        self.taken: list = []
        self.failed = False
        self.sent = False
        self.later = later
        self.later_keys: int | None = None

    def send(self) -> None:
        """Sends the DBSIZEs (once): the walk calls it right after its first command is sent."""
        if self.sent:
            return
        self.sent = True
        later = self.later
        try:
            for shard in self.topology.shards():
                if later is not None and shard.address == later.address:
                    continue
                pool = shard.client.connection_pool
                conn = pool.get_connection()
                self.taken.append((pool, conn))
                conn.send_command("DBSIZE")
        except FAILOVER_ERRORS:
            self.failed = True
        except BaseException:
            self.abandon()
            raise

    def awaits(self, shard: Shard) -> bool:
        """Whether a SCAN on ``shard`` should bring its DBSIZE (the first one on ``later``)."""
        later = self.later
        return later is not None and self.later_keys is None and shard.address == later.address

    def deliver(self, keys: int) -> None:
        self.later_keys = keys

    def read(self) -> int:
        self.send()
        try:
            if not self.failed:
                try:
                    total = sum(int(conn.read_response()) for _, conn in self.taken)
                    later = self.later
                    if later is not None:
                        if self.later_keys is None:
                            self.later_keys = int(self.topology.call_on_shard(later, lambda s: s.client.dbsize()))
                        total += self.later_keys
                    return total
                except FAILOVER_ERRORS:
                    pass
            for _, conn in self.taken:
                conn.disconnect()
            # A primary is failing over: the per-shard path retries on the node that takes over.
            return sum(self.topology.map_shards(lambda s: s.client.dbsize()))
        except BaseException:
            for _, conn in self.taken:
                conn.disconnect()  # a reply may be unread: the connection cannot be reused
            raise
        finally:
            self._release()

    def abandon(self) -> None:
        for _, conn in self.taken:
            conn.disconnect()  # its reply is not read: the connection cannot be reused
        self._release()

    def _release(self) -> None:
        taken, self.taken = self.taken, []
        for pool, conn in taken:
            pool.release(conn)


def _total_keys(topology: Topology) -> int:
    """DBSIZE summed over the primaries (one round trip in all)."""
    return _TotalKeys(topology).read()


class _Walk:
    """One call of scan_page: consumes sorted SCAN batches until `limit` or the budget is reached."""

    def __init__(self, topology: Topology, load, wanted: ScanFilter, limit: int, max_scan: int, deadline=None):
        self.topology, self.load, self.wanted = topology, load, wanted
        self.limit, self.max_scan = limit, max_scan
        # time.monotonic() after which the call stops like on an exhausted budget, once it has made
        # progress (at least one SCAN, at least one key examined), so a walk always moves on.
        self.deadline = deadline
        self.records: list = []
        self.corrupt: list[CorruptEntry] = []
        self.unreadable: dict[str, Unreadable] = {}
        self.taken: set[bytes] = set()  # keys consumed by this call (a page never shows one twice)
        self.scanned = 0  # keys consumed (examined) by this call
        self.spent = 0  # budget: keys examined, counting at least COUNT per SCAN (matches may be sparse)
        # Unfiltered pages need about `limit` keys (half as many again: other kinds' keys take part
        # of a batch, and a second SCAN and GET cost more than a few keys left in the cursor);
        # filtered ones read more per round trip.
        self.count = _MAX_COUNT if wanted.selective else max(_MIN_COUNT, min(_MAX_COUNT, limit + limit // 2))
        # Values fetched per round trip when a record filter decides: starts small (a filter that
        # matches often fills the page from the first keys) and doubles while the page is not full,
        # so that a filter that rarely matches reads a whole SCAN batch per round trip.
        self.chunk = 100
        # Unfiltered records: a SCAN step reads the values of the keys it lists in the same round
        # trip (_SCAN_STEP), as the page takes nearly all of them. Filtered pages read theirs in
        # chunks (most keys of a batch of 1,000 are never read when the filter matches often).
        self.prefetch = isinstance(load, RecordLoader) and not wanted.selective
        self.values: dict[bytes, Any] = {}  # the last SCAN step's values, by key
        self.total: _TotalKeys | None = None  # the page's key total, when a SCAN may bring a part

    def first_shard(self, pos: _Position) -> Shard | None:
        """The primary the walk was on, as long as it is one: its SCAN cursor means nothing on
        another node (slots may have moved since). After a failover, the node serving its first slot."""
        shard = next((s for s in self.topology.shards() if s.address == pos.address), None) if pos.address else None
        return shard if shard is not None else self.topology.shard_serving(pos.slot_start)

    def run(self, pos: _Position, shard: Shard | None) -> Page:
        self.visited = pos.finished()
        scan_cursor = pos.scan_cursor
        pending: list[bytes] = list(pos.leftover)
        # SCAN cursor 0 means "not started" without leftover keys, "finished after them" with some.
        shard_done = bool(pending) and scan_cursor == 0
        batch_cursor, batch_count = scan_cursor, 0
        if shard is not None and pos.last_key is not None:
            # Fallback cursor: repeat the SCAN call that produced the batch, continue after last_key.
            batch_cursor, batch_count = pos.scan_cursor, pos.batch_count
            shard, scan_cursor, keys = self._scan(shard, pos.scan_cursor, pos.batch_count)
            shard_done = scan_cursor == 0
            pending = [k for k in keys if k > pos.last_key]

        while shard is not None:
            if not pending:
                if shard_done:
                    self.visited = _merge_ranges(self.visited + shard.slot_ranges)
                    shard, scan_cursor, shard_done = _next_shard(self.topology, self.visited), 0, False
                    continue
                if self.spent >= self.max_scan or (self.spent and self._late()):
                    stop = _Position(shard.slot_start, shard.address, scan_cursor, visited=self.visited)
                    return self._page(stop, True)
                count = max(_MIN_COUNT, min(self.count, self.max_scan - self.spent))
                batch_cursor, batch_count = scan_cursor, count
                shard, scan_cursor, pending = self._scan(shard, scan_cursor, count)
                shard_done = scan_cursor == 0
                self._fit_count(count, len(pending))
            i = 0
            while i < len(pending):
                if self.scanned >= self.max_scan or (self.scanned and self._late()):
                    stop = self._position(shard, scan_cursor, shard_done, pending, i, batch_cursor, batch_count)
                    return self._page(stop, True)
                need = self.limit - len(self.records)
                if self.wanted.record_ok is None:
                    size = need
                else:
                    size = max(2 * need, self.chunk)
                    self.chunk = min(2 * self.chunk, _MAX_COUNT)
                chunk = pending[i : i + min(size, self.max_scan - self.scanned)]
                keep = self.wanted.record_ok
                loaded = self.topology.call_on_shard(shard, partial(self._load, chunk, keep))
                for key, item in zip(chunk, loaded):
                    i += 1
                    self.scanned += 1
                    if key in self.taken:
                        # Met twice in one call: while slots migrate, a key read from one primary
                        # (following MOVED) may show up again in the SCAN of the primary it moved to.
                        continue
                    self.taken.add(key)
                    if self._take(item) and len(self.records) == self.limit:
                        stop = self._position(shard, scan_cursor, shard_done, pending, i, batch_cursor, batch_count)
                        return self._page(stop, False)
            pending = []
        return self._page(None, False)

    def _fit_count(self, count: int, matched: int) -> None:
        """Unfiltered: when other kinds' keys took most of a SCAN (workers are a sixth of the keys
        at 1M), the next one reads enough keys for the rest of the page at the density just seen."""
        if self.wanted.selective:
            return
        rest = self.limit - len(self.records) - matched
        if rest > 0:
            wanted = rest * count // matched * 5 // 4 + 1 if matched else 2 * count
            self.count = min(_MAX_COUNT, max(self.count, wanted))

    def _load(self, chunk: list[bytes], keep: Callable | None, shard: Shard) -> list:
        values = self.values
        if not values:
            return self.load(shard.client, chunk, self.topology.reroute, keep)
        got = [values.get(key, _UNREAD) for key in chunk]
        # Keys the step did not read (a cursor's leftovers), or read as an error (a key of another
        # type; a slot on the move): plain GETs, which follow MOVED/ASK and report the rest as today.
        again = [key for key, value in zip(chunk, got) if value is _UNREAD or isinstance(value, Exception)]
        if again:
            reread = dict(zip(again, fetch_values(shard.client, again, self.topology.reroute)))
            got = [reread[key] if key in reread else value for key, value in zip(chunk, got)]
        return self.load(shard.client, chunk, self.topology.reroute, keep, got)

    def _late(self) -> bool:
        return self.deadline is not None and time.monotonic() >= self.deadline

    def _scan(self, shard: Shard, cursor: int, count: int) -> tuple[Shard, int, list[bytes]]:
        count = max(1, min(count, _MAX_COUNT))  # whatever a cursor said (decode_cursor bounds it too)
        used = [shard]
        total = self.total
        with_size = total is not None and total.awaits(shard)
        # The values come along when the page takes most of the batch (COUNT is sized for that), all
        # of them or none (the node's order is not the page's): at most twice what the page still
        # needs. A page that needs more (a check's walk) SCANs plainly: through the script a batch of
        # 1,000 keys costs the node ~45% more, for values it would not send.
        values_up_to = 2 * (self.limit - len(self.records)) if self.prefetch else 0
        if values_up_to > _STEP_VALUES:
            values_up_to = 0

        def scan(s: Shard):
            used[0] = s
            if with_size or values_up_to:
                meanwhile = total.send if total is not None else _nothing
                return _scan_round_trip(s, cursor, self.wanted.match, count, values_up_to, with_size, meanwhile)
            next_cursor, keys = s.client.scan(cursor, match=self.wanted.match, count=count)
            return next_cursor, keys, None, None

        next_cursor, keys, values, size = self.topology.call_on_shard(shard, scan)
        if size is not None and total is not None:
            total.deliver(size)
        self.values = dict(zip(keys, values)) if values else {}
        self.spent += max(len(keys), count)
        if self.visited and _overlaps(self.visited, used[0].slot_ranges):
            # Slots this walk has finished moved here meanwhile: their keys were listed already.
            keys = [k for k in keys if not _in_ranges(self.visited, key_slot(k))]
        # Sorted, so that a repeated SCAN (fallback cursor) is consumed in the same order.
        return used[0], next_cursor, sorted(keys)

    def _take(self, item) -> bool:
        if item is None:  # deleted between SCAN and GET
            return False
        if isinstance(item, CorruptEntry):
            self.corrupt.append(item)
            return False
        flagged = None
        if item.__class__ is _Unreadable:
            flagged, item = item, item.record
        self.records.append(item)  # the loader applied the record filter
        if flagged is not None:
            self.unreadable[flagged.key] = flagged.why
        return True

    def _position(self, shard, scan_cursor, shard_done, pending, consumed, batch_cursor, batch_count):
        leftover = tuple(pending[consumed:])
        visited = self.visited
        if leftover:
            if _fits_in_cursor(leftover):
                return _Position(shard.slot_start, shard.address, scan_cursor, leftover, visited=visited)
            if consumed == 0:
                return _Position(shard.slot_start, shard.address, batch_cursor, visited=visited)
            return _Position(
                shard.slot_start, shard.address, batch_cursor, (), batch_count, pending[consumed - 1], visited=visited
            )
        if not shard_done:
            return _Position(shard.slot_start, shard.address, scan_cursor, visited=visited)
        visited = _merge_ranges(visited + shard.slot_ranges)
        following = _next_shard(self.topology, visited)
        if following is None:
            return None
        return _Position(following.slot_start, following.address, 0, visited=visited)

    def _page(self, position: _Position | None, budget_exhausted: bool) -> Page:
        return Page(
            records=self.records,
            corrupt=self.corrupt,
            next_cursor=encode_cursor(position) if position is not None else None,
            scanned=self.scanned,
            total_keys=0,  # scan_page adds it
            budget_exhausted=budget_exhausted,
            unreadable=self.unreadable,
        )


_UNREAD = object()  # a key whose value a SCAN step did not read


def _nothing() -> None:
    return None


# Values a SCAN step reads at most: a GET inside a script costs the node ~1.3 µs, so a step stays
# under ~0.5 ms that the node answers nobody else (issue 19 item 9). Pages of up to 200 fit.
_STEP_VALUES = 400

# One SCAN on a node with the values of the keys it lists, all of them when at most ARGV[4] (else
# none: the walk reads those it takes). Read-only: it runs wherever it is sent. Reply: the next
# cursor, the keys, their values (nil: gone; an error: the client reads that key again). One GET
# per key: inside a script Redis 7.0 refuses an MGET of keys of several slots ("non local key"),
# and a SCAN batch spans many.
_SCAN_STEP = """#!lua flags=no-writes,allow-cross-slot-keys
local reply = redis.call('SCAN', ARGV[1], 'MATCH', ARGV[2], 'COUNT', ARGV[3])
local keys, values = reply[2], {}
if #keys <= tonumber(ARGV[4]) then
  for i = 1, #keys do values[i] = redis.pcall('GET', keys[i]) end
end
return {reply[1], keys, values}
"""
SCAN_STEP_SHA = hashlib.sha1(_SCAN_STEP.encode()).hexdigest()


def _scan_round_trip(shard: Shard, cursor: int, match: str, count: int, values_up_to: int, with_size: bool, meanwhile):
    """One SCAN on ``shard``'s node and, in the same write, what the page needs besides: the node's
    DBSIZE first (``with_size``), the values as _SCAN_STEP reads them (``values_up_to``). Returns
    (next cursor, keys, values or None, DBSIZE or None). ``meanwhile()`` runs while the node works."""
    scan = ("SCAN", cursor, "MATCH", match, "COUNT", count)
    step = ("EVALSHA", SCAN_STEP_SHA, 0, cursor, match, count, values_up_to)
    pool = shard.client.connection_pool
    conn = pool.get_connection()
    try:
        first = [("DBSIZE",)] if with_size else []
        conn.send_packed_command(conn.pack_commands([*first, step if values_up_to else scan]))
        meanwhile()
        size = int(conn.read_response()) if with_size else None
        reply = _step_reply(conn, step, scan) if values_up_to else conn.read_response()
    except BaseException:
        conn.disconnect()  # a reply may be unread: the connection cannot be reused
        pool.release(conn)
        raise
    pool.release(conn)
    if len(reply) == 2:  # the plain SCAN's
        return int(reply[0]), reply[1], None, size
    next_cursor, keys, values = reply
    return int(next_cursor), keys, values or None, size


def _step_reply(conn, step: tuple, scan: tuple) -> list:
    """The reply of ``step``, just sent on ``conn``: loaded first when the node does not have the
    script; the plain SCAN's when the server refuses scripts (scripting disabled, an ACL, a server
    before 7.0), so that the walk reads the values it takes with GETs. Each error reply is read
    whole: the connection stays in step."""
    for again in (False, True):
        try:
            if again:
                conn.send_command("SCRIPT", "LOAD", _SCAN_STEP)
                conn.read_response()
                conn.send_command(*step)
            return conn.read_response()
        except NoScriptError:
            continue
        except FAILOVER_ERRORS:
            raise  # CLUSTERDOWN is a ResponseError too: the caller retries after the failover
        except ResponseError as e:
            if str(e).startswith("BUSY"):
                raise  # the node's trouble, not the script's: the walk fails as a SCAN would
            break
    conn.send_command(*scan)
    return conn.read_response()


def _next_shard(topology: Topology, visited: tuple[tuple[int, int], ...]) -> Shard | None:
    """The first primary (in slot order) that serves a slot the walk has not finished yet.

    With a steady topology this is simply the next primary in slot order. While slots move, a walk
    neither skips a primary that gained unvisited slots nor walks again one whose slots it has all
    seen (also after a failover, when the same slots have a new address): only keys that moved
    between finished and unfinished slots during the walk can repeat or be missed.
    """
    for candidate in topology.shards():
        if not _covers(visited, candidate.slot_ranges):
            return candidate
    return None


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
        next_cursor, found = s.client.scan(cursor, match=match, count=count)
        keys = cast("list[bytes]", found)  # the store's clients never decode replies
        return next_cursor, keys, fetch_values(s.client, keys, topology.reroute)

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
