"""Full-store filtered walks: every match of a filter, all primaries in parallel, bounded in memory.

A paged scan (storage/scanning.py) stops after a page; this walks the whole keyspace of a kind in one
go, for "show all matches", scoped resets and bulk actions. Per node, each step is whole hash slots
(a SCAN batch on one server) whose values are read and tested on the node itself by a read-only Lua
script (``_FILTER_STEP``): only candidates travel to the client, where they are decoded and the
filter is confirmed. A server that refuses the script (scripting disabled, an ACL, Redis older than
7) is walked the same way from the client: SCAN, one pipelined GET per batch, the same byte test in
Python, then decoding.

The byte test (``ByteClause``) is a necessary condition, never a sufficient one: it only rejects a
value that is plain JSON (first byte ``{``, no backslash, so every string stands in it literally and
every key is spelled out) and that cannot decode to a match. Anything else (binary protobuf, JSON
with escapes or whitespace before the ``{``) is decoded, and every candidate is decoded and checked
against the filter before it counts. A stored value that is not a string, or does not decode, is
reported as corrupt only when it passed the byte test (a walk for status RUNNING does not report a
corrupt SUSPENDED actor).

Memory: the walk keeps the matching keys up to ``max_results`` (then it stops and says it cut), or
hands each confirmed batch to ``on_batch`` and keeps nothing. Progress: keys examined, the store's
size (DBSIZE summed over primaries) and a fraction read off the SCAN cursors. ``cancel()`` stops it
between two batches.
"""

from __future__ import annotations

import heapq
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Unpack, cast

import redis

from storage.ateapi_pb2 import Actor
from storage.errors import CorruptRecord
from storage.node_reads import (
    MAX_VALUE_BYTES,
    SLOT_KEYS_IN_STEP,
    STEP_KEYS_LUA,
    big_slot_keys,
    fetch_values,
    lua_key_pattern,
)
from storage.records import ACTORS, WORKERS, RecordKind
from storage.scanning import ActorFilters, CorruptEntry, WorkerFilters, _total_keys, actor_filter, worker_filter
from storage.topology import FAILOVER_ERRORS, Shard, Topology

# Keys a walk step examines. A step holds its node about 2 µs per key in the script, so 2000 keys
# keep every other client's wait to a few milliseconds.
STEP_COUNT = 2000
DEFAULT_MAX_RESULTS = 100_000

# One step of a walk on one node: the step's keys (storage.node_reads.STEP_KEYS_LUA: whole slots
# on a cluster, a SCAN batch on one server, or the keys given), those of the walk's pattern read in
# one MGET per slot (none longer than storage.node_reads.MAX_VALUE_BYTES: the client reads those
# itself), the byte test, the candidates returned.
# ARGV: mode, cursor, MATCH pattern, keys to examine, most keys of a slot in a step, the MATCH as an
# anchored Lua pattern, number of clauses, then per clause its number of alternatives and per
# alternative "+" (the value contains the needle) or "-" (it does not), the needle, and the number
# of Lua patterns then the patterns: with any, a "+" needle must also stand where one of them finds
# it (as the value of one of the clause's fields: ByteClause.fields); then, in "keys" mode, the keys.
# Reply: next cursor, a slot left to the client (-1: none), keys of the pattern examined, then key,
# value pairs of the candidates; the value is 1 for a key the script could not read (not a string,
# a slot migrating): the client reads that one itself. Read-only: it runs on replicas.
_FILTER_STEP = (
    """#!lua flags=no-writes,allow-cross-slot-keys
local find, byte = string.find, string.byte
local nclauses = tonumber(ARGV[7])
local clauses = {}
local i = 8
for c = 1, nclauses do
  local nalts = tonumber(ARGV[i])
  i = i + 1
  local alts = {}
  for a = 1, nalts do
    local present, needle, npats = ARGV[i] == '+', ARGV[i + 1], tonumber(ARGV[i + 2])
    local pats = {}
    for p = 1, npats do
      pats[p] = ARGV[i + 2 + p]
    end
    alts[a] = {present, needle, pats}
    i = i + 3 + npats
  end
  clauses[c] = alts
end
local MODE, CURSOR, SCAN_MATCH, WANT, MOST = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
local KEY_PATTERN, GIVEN_FROM = ARGV[6], i
local MAXLEN = """
    + str(MAX_VALUE_BYTES)
    + """
"""
    + STEP_KEYS_LUA
    + r"""
local out = {next_cursor, big, nk}
local n = 3
for b = 1, nb do
  local keys, vals = batch_keys[b], batch_vals[b]
  for k = 1, #keys do
    local key, v = keys[k], vals[k]
    if not v then
      n = n + 1
      out[n] = key
      n = n + 1
      out[n] = 1
    else
      local keep = true
      if byte(v, 1) == 123 and not find(v, '\\', 1, true) then
        for c = 1, nclauses do
          local ok = false
          local alts = clauses[c]
          for a = 1, #alts do
            local alt = alts[a]
            local hit = find(v, alt[2], 1, true) ~= nil
            if hit and #alt[3] > 0 then
              -- The needle stands as the value of one of the clause's fields.
              hit = false
              for _, pat in ipairs(alt[3]) do
                if find(v, pat) then
                  hit = true
                  break
                end
              end
            end
            if alt[1] == hit then
              ok = true
              break
            end
          end
          if not ok then
            keep = false
            break
          end
        end
      end
      if keep then
        n = n + 1
        out[n] = key
        n = n + 1
        out[n] = v
      end
    end
  end
end
return out
"""
)


# ===================================================================== filters


# JSON's whitespace is " \t\n\r"; Lua's %s also takes \v and \f: more candidates, never fewer.
_LUA_SPACE = rb"[ \t\n\v\f\r]*"
_LUA_MAGIC = frozenset(b"^$()%.[]*+-?")


def _lua_escape(text: bytes) -> bytes:
    return b"".join(b"%" + bytes((c,)) if c in _LUA_MAGIC else bytes((c,)) for c in text)


@dataclass(frozen=True)
class ByteClause:
    """One condition of the byte test: a plain-JSON value passes it when one alternative holds; an
    alternative is (True, needle): the value contains the needle, or (False, needle): it does not.

    With ``fields`` (JSON names, every spelling), a needle found must also stand as the value of one
    of them: ``"name"``, whitespace, ``:``, whitespace, then the needle (which starts with the
    value's opening quote), or anywhere inside that string value when ``within``. In plain JSON (no
    backslash) a quote always opens or closes a string, so a record whose field holds the value has
    it spelled there; the test stays a necessary condition, and an equal value in another field no
    longer makes a candidate."""

    alternatives: tuple[tuple[bool, bytes], ...]
    fields: tuple[str, ...] = ()
    within: bool = False

    def patterns(self, needle: bytes) -> tuple[tuple[bytes, re.Pattern[bytes]], ...]:
        """(Lua pattern, Python regex) per field for a present needle; none when it cannot be
        anchored (Lua patterns hold no NUL): the plain find alone decides then."""
        if not self.fields or b"\0" in needle:
            return ()
        out = []
        for name in self.fields:
            key = b'"' + _utf8(name) + b'"'
            lua = _lua_escape(key) + b"%s*:%s*" + (b'"[^"]*' if self.within else b"") + _lua_escape(needle)
            py = re.escape(key) + _LUA_SPACE + b":" + _LUA_SPACE + (b'"[^"]*' if self.within else b"")
            out.append((lua, re.compile(py + re.escape(needle))))
        return tuple(out)

    def passes(self, raw: bytes | bytearray) -> bool:
        for present, needle in self.alternatives:
            hit = needle in raw
            if hit and present and self.fields:
                anchored = self.patterns(needle)
                hit = not anchored or any(regex.search(raw) for _, regex in anchored)
            if hit == present:
                return True
        return False


@dataclass(frozen=True)
class WalkFilter:
    kind: RecordKind
    match: str  # SCAN MATCH pattern (narrows by key: id, worker namespace and pool)
    clauses: tuple[ByteClause, ...]  # byte test, every clause must pass
    record_ok: Callable[[object], bool] | None  # confirmed on the decoded record; None: all match
    description: tuple[tuple[str, str], ...] = ()  # the filter as given, for identity and display

    def plain_json_passes(self, raw: bytes | bytearray) -> bool:
        """The byte test in Python (the client-side path; the script applies the same test)."""
        if raw[:1] != b"{" or b"\\" in raw:
            return True
        return all(clause.passes(raw) for clause in self.clauses)

    def matches(self, record) -> bool:
        return self.record_ok is None or self.record_ok(record)


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def _string_equals(value: str, *json_names: str) -> ByteClause:
    """A string field (``json_names``: its spellings) equal to a non-empty `value`: in plain JSON
    that value stands quoted after the field's name."""
    return ByteClause(((True, b'"' + _utf8(value) + b'"'),), tuple(dict.fromkeys(json_names)))


def _string_empty(json_name: str) -> tuple[ByteClause, ...]:
    # `"name":"` followed by anything but `"` is a non-empty value; one clause per spelling.
    needle = b'"' + _utf8(json_name) + b'":"'
    return (ByteClause(((False, needle), (True, needle + b'"'))),)


def _string_set(json_names: tuple[str, ...]) -> ByteClause:
    # A non-empty string field is a key of the object, under one of its spellings.
    return ByteClause(tuple((True, b'"' + _utf8(name) + b'"') for name in json_names))


def _status_is(status: int) -> ByteClause:
    """status == `status`: its name quoted, or the field not written as `"status":"STATUS_...` (a
    number, a numeric string, absent, spaced...). A canonical name is decisive: enum names are looked
    up exactly, and a JSON object names a field once."""
    try:
        name = Actor.Status.Name(status)
    except ValueError:
        return ByteClause(((False, b'"status":"STATUS_'),))
    return ByteClause(((True, b'"' + _utf8(name) + b'"'), (False, b'"status":"STATUS_')))


def _description(filters: Mapping[str, object], names: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """The filters as given, every name in a fixed order ("" for any), for a walk's identity and display."""

    def text(value: object) -> str:
        if value is None:
            return ""
        if isinstance(value, bool):
            return "yes" if value else "no"
        return str(value)

    return tuple((name, text(filters.get(name))) for name in names)


# Actor fields a filter asks equal to a value, by filter name: (JSON name, proto name).
_ACTOR_STRING_FIELDS = {
    "template_namespace": ("actorTemplateNamespace", "actor_template_namespace"),
    "template_name": ("actorTemplateName", "actor_template_name"),
    "pod_namespace": ("ateomPodNamespace", "ateom_pod_namespace"),
    "pod_name": ("ateomPodName", "ateom_pod_name"),
    "pod_ip": ("ateomPodIp", "ateom_pod_ip"),
}


def actor_walk(**filters: Unpack[ActorFilters]) -> WalkFilter:
    """The actors list's filters (storage.scanning.actor_filter) as a full walk."""
    base = actor_filter(**filters)
    clauses = []
    status = filters.get("status")
    if status is not None:
        clauses.append(_status_is(status))
    for name, (camel, snake) in _ACTOR_STRING_FIELDS.items():
        value = cast("str | None", filters.get(name))  # the string filters, by name
        if value:
            clauses.append(_string_equals(value, camel, snake))
        elif value == "":
            clauses.extend(_string_empty(camel) + _string_empty(snake))
    snapshot_contains = filters.get("snapshot_contains")
    if snapshot_contains:
        clauses.append(ByteClause(((True, _utf8(snapshot_contains)),), ("lastSnapshot", "last_snapshot"), True))
    description = _description(filters, tuple(ActorFilters.__annotations__))
    return WalkFilter(ACTORS, base.match, tuple(clauses), base.record_ok, description)


def worker_walk(**filters: Unpack[WorkerFilters]) -> WalkFilter:
    """The workers list's filters (storage.scanning.worker_filter) as a full walk; namespace and pool
    narrow the SCAN itself (they are part of the key)."""
    base = worker_filter(**filters)
    clauses = []
    ip = filters.get("ip")
    if ip:
        clauses.append(_string_equals(ip, "ip"))
    id_contains = filters.get("id_contains")
    if id_contains:
        # In the pod's name or the served actor's id (worker_filter): spelled inside either string.
        names = ("workerPod", "worker_pod", "actorId", "actor_id")
        clauses.append(ByteClause(((True, _utf8(id_contains)),), names, True))
    if filters.get("assigned") is True:
        clauses.append(_string_set(("actorId", "actor_id")))
    elif filters.get("assigned") is False:
        clauses.extend(_string_empty("actorId") + _string_empty("actor_id"))
    description = _description(filters, tuple(WorkerFilters.__annotations__))
    return WalkFilter(WORKERS, base.match, tuple(clauses), base.record_ok, description)


# ===================================================================== results and progress


@dataclass(frozen=True)
class Match:
    key: str
    raw: bytes  # the stored bytes the filter was confirmed on (for version-checked writes)
    record: Any  # the decoded Actor / Worker (as the walk's kind)


@dataclass(frozen=True)
class WalkProgress:
    scanned: int  # keys of the walk's pattern examined so far
    total_keys: int  # DBSIZE summed over primaries when the walk started (every kind of key)
    fraction: float  # 0..1, estimated from the primaries' SCAN cursors
    matched: int
    shards_done: int
    shards: int
    elapsed_s: float
    finished: bool
    cancelled: bool


@dataclass
class WalkResult:
    keys: list[str]  # matching keys, sorted (empty when an on_batch callback took them)
    matched: int  # matches found (also those handed to on_batch)
    corrupt: list[CorruptEntry]
    scanned: int
    total_keys: int
    truncated: bool  # stopped at max_results: there may be more matches
    cancelled: bool
    duration_s: float
    server_side: bool  # every primary ran the byte test in the script (False: some in the client)
    candidates: int = 0  # values that passed the byte test and were decoded
    shard_seconds: dict = field(default_factory=dict)


def _reverse64(n: int) -> int:
    return int(f"{n:064b}"[::-1], 2)


def _cursor_fraction(cursor: int) -> float:
    """How far a SCAN has come: Redis advances the reversed cursor, so reversed it grows from 0 to
    2^64 over the walk of a node's table (an estimate while the table grows or shrinks)."""
    return _reverse64(cursor) / 2**64 if cursor else 0.0


def _slot_fraction(shard: Shard, slot: int) -> float:
    """How far a walk of a node by slots has come: the part of its shard's own slots before ``slot``
    (the node holds keys of those only, but while a slot migrates)."""
    done = sum(max(0, min(slot, b + 1) - a) for a, b in shard.slot_ranges)
    return done / max(1, sum(b + 1 - a for a, b in shard.slot_ranges))


MAX_CORRUPT_REPORTED = 1000


class FullWalk:
    """One walk; run() blocks (call it from a background thread), progress() and cancel() from any."""

    def __init__(
        self,
        topology: Topology,
        wanted: WalkFilter,
        *,
        max_results: int = DEFAULT_MAX_RESULTS,
        on_batch: Callable[[list[Match]], None] | None = None,
        use_script: bool = True,
        step_count: int = STEP_COUNT,
        on_found: Callable[[int], None] | None = None,
    ):
        if max_results < 1:
            raise ValueError("max_results must be at least 1")
        self.topology, self.wanted = topology, wanted
        self.max_results = max_results
        self.on_batch = on_batch
        self.on_found = on_found  # called with the matches so far when a batch brings new ones
        self.use_script = use_script
        self.step_count = max(1, min(step_count, 10_000))
        self._lock = threading.Lock()
        self._cancel = threading.Event()
        self._keys: set[str] = set()
        self._corrupt: list[CorruptEntry] = []
        self._matched = 0
        self._candidates = 0
        self._scanned = 0
        self._truncated = False
        self._fractions: dict[int, float] = {}
        self._weights: dict[int, int] = {}
        self._done: set[int] = set()
        self._shard_count = 0
        self._total_keys = 0
        self._client_side = False
        self._started: float | None = None
        self._finished = False
        self._shard_seconds: dict[str, float] = {}
        self._clause_args: list | None = None  # the byte test as the script's arguments, built once
        # A cluster's nodes are walked slot by slot (storage.node_reads.STEP_KEYS_LUA), the keys of
        # the walk's pattern kept by a Lua pattern; a glob it cannot say is walked from the client.
        self._mode = "slots" if topology.is_cluster else "scan"
        self._key_pattern = lua_key_pattern(wanted.match)

    # ----------------------------------------------------------------- control

    def cancel(self) -> None:
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set() and not self._truncated

    def found(self, limit: int) -> list[str]:
        """The first ``limit`` matching keys found so far, sorted (while the walk runs: a list page
        fills with matches as they are found)."""
        with self._lock:
            keys = list(self._keys)
        return heapq.nsmallest(limit, keys)

    def progress(self) -> WalkProgress:
        with self._lock:
            total_weight = sum(self._weights.values()) or 1
            if self._weights and sum(self._weights.values()):
                fraction = sum(self._fractions.get(s, 0.0) * w for s, w in self._weights.items()) / total_weight
            else:
                fraction = len(self._done) / max(1, self._shard_count)
            return WalkProgress(
                scanned=self._scanned,
                total_keys=self._total_keys,
                fraction=1.0 if self._finished and not self._cancel.is_set() else min(1.0, fraction),
                matched=self._matched,
                shards_done=len(self._done),
                shards=self._shard_count,
                elapsed_s=0.0 if self._started is None else time.monotonic() - self._started,
                finished=self._finished,
                cancelled=self._cancel.is_set() and not self._truncated,
            )

    # ----------------------------------------------------------------- the walk

    def run(self) -> WalkResult:
        self._started = started = time.monotonic()
        shards = self.topology.shards()
        self._total_keys = _total_keys(self.topology)
        with self._lock:
            self._shard_count = len(shards)

        def sizes(shard: Shard) -> int:
            return int(shard.client.dbsize())

        try:
            for shard, size in zip(shards, self.topology.map_shards(sizes, shards)):
                self._weights[shard.slot_start] = size
        except redis.exceptions.RedisError:
            pass  # progress falls back to shards done
        self.topology.map_shards(self._walk_shard, shards)
        with self._lock:
            self._finished = True
            keys = sorted(self._keys)
            return WalkResult(
                keys=keys,
                matched=self._matched,
                corrupt=list(self._corrupt),
                scanned=self._scanned,
                total_keys=self._total_keys,
                truncated=self._truncated,
                cancelled=self._cancel.is_set() and not self._truncated,
                duration_s=time.monotonic() - started,
                server_side=self.use_script and bool(self.wanted.clauses) and not self._client_side,
                candidates=self._candidates,
                shard_seconds=dict(self._shard_seconds),
            )

    def _walk_shard(self, shard: Shard) -> None:
        t0 = time.perf_counter()
        ident = shard.slot_start
        cursor = 0
        scripted = self.use_script and bool(self.wanted.clauses) and self._key_pattern is not None
        script = [self._script_for(shard) if scripted else None]
        current = [shard]
        # Whether the cursor is a SCAN's (the client's step, one server) or a slot (a cluster's step).
        scan_cursor = [self._mode == "scan" or script[0] is None]
        if self.use_script and self.wanted.clauses and not scripted:
            with self._lock:
                self._client_side = True

        def step(s: Shard):
            if current[0] is not s:
                current[0] = s
                if script[0] is not None:
                    script[0] = self._script_for(s)
            if script[0] is not None:
                try:
                    return self._script_step(s, script[0], cursor)
                except redis.exceptions.ResponseError as e:
                    if _is_node_trouble(e):
                        raise
                    # Scripting refused here: the rest from the client, from the same cursor (a
                    # slot's means nothing to a SCAN: from the start then; found keys are kept once).
                    script[0] = None
                    with self._lock:
                        self._client_side = True
                    if not scan_cursor[0]:
                        scan_cursor[0] = True
                        return self._client_step(s, 0)
            return self._client_step(s, cursor)

        while not self._cancel.is_set():
            cursor, scanned, candidates = self.topology.call_on_shard(current[0], step)
            matches = self._confirm(current[0], candidates)
            with self._lock:
                self._scanned += scanned
                if cursor == 0:
                    self._fractions[ident] = 1.0
                elif scan_cursor[0]:
                    self._fractions[ident] = _cursor_fraction(cursor)
                else:
                    self._fractions[ident] = _slot_fraction(shard, cursor)
            if matches:
                self._take(matches)
            if cursor == 0:
                with self._lock:
                    self._done.add(ident)
                break
        self._shard_seconds[shard.address] = time.perf_counter() - t0

    def _script_for(self, shard: Shard):
        return shard.client.register_script(_FILTER_STEP)

    def _args(self, cursor: int, mode: str) -> list:
        if self._clause_args is None:
            args: list = [len(self.wanted.clauses)]
            for clause in self.wanted.clauses:
                args.append(len(clause.alternatives))
                for present, needle in clause.alternatives:
                    lua = [lua for lua, _ in clause.patterns(needle)] if present else []
                    args.extend(("+" if present else "-", needle, len(lua), *lua))
            self._clause_args = args
        most = max(self.step_count, SLOT_KEYS_IN_STEP)
        match = self.wanted.match.encode("utf-8", "surrogateescape")  # a key's bytes, as keys.key_bytes
        return [mode, cursor, match, self.step_count, most, self._key_pattern, *self._clause_args]

    def _script_step(self, shard: Shard, script, cursor: int):
        replies = [script(keys=[], args=self._args(cursor, self._mode), client=shard.client)]
        big = int(replies[0][1])
        if big >= 0:
            # A slot too big for one step: its keys listed here, then tested in parts.
            keys = big_slot_keys(shard.client, big)
            for i in range(0, len(keys), self.step_count):
                args = self._args(0, "keys") + keys[i : i + self.step_count]
                replies.append(script(keys=[], args=args, client=shard.client))
        next_cursor, scanned = int(replies[0][0]), sum(int(reply[2]) for reply in replies)
        pairs = []
        reread = []
        for reply in replies:
            for i in range(3, len(reply), 2):
                key, value = reply[i], reply[i + 1]
                if value == 1:
                    reread.append(key)
                else:
                    pairs.append((key, value))
        if reread and len(reread) == scanned and _demoted(shard):
            # The node stopped being a primary (a failover): the walk resumes on the new one.
            raise redis.exceptions.ConnectionError(f"{shard.address} is no longer a primary")
        if reread:
            for key, value in zip(reread, fetch_values(shard.client, reread, self.topology.reroute)):
                if value is not None and not (
                    isinstance(value, (bytes, bytearray)) and not self.wanted.plain_json_passes(value)
                ):
                    pairs.append((key, value))
        return next_cursor, scanned, pairs

    def _client_step(self, shard: Shard, cursor: int):
        next_cursor, found = shard.client.scan(
            cursor, match=self.wanted.match.encode("utf-8", "surrogateescape"), count=self.step_count
        )
        keys = cast("list[bytes]", found)  # the store's clients never decode replies
        pairs = []
        if keys:
            for key, value in zip(keys, fetch_values(shard.client, keys, self.topology.reroute)):
                if value is None:
                    continue
                if isinstance(value, (bytes, bytearray)) and not self.wanted.plain_json_passes(value):
                    continue
                pairs.append((key, value))
        return int(next_cursor), len(keys), pairs

    def _confirm(self, shard: Shard, pairs) -> list[Match]:
        matches = []
        corrupt = []
        kind = self.wanted.kind
        for key, raw in pairs:
            key_text = key.decode("utf-8", "surrogateescape")
            try:
                record = kind.decode_stored(key, raw)[0]
            except CorruptRecord as e:
                corrupt.append(CorruptEntry(e.key, e.reason, e.preview if not isinstance(raw, Exception) else ""))
                continue
            if self.wanted.matches(record):
                matches.append(Match(key_text, raw, record))
        with self._lock:
            self._candidates += len(pairs)
            room = MAX_CORRUPT_REPORTED - len(self._corrupt)
            if room > 0:
                self._corrupt.extend(corrupt[:room])
        return matches

    def _take(self, matches: list[Match]) -> None:
        if self.on_batch is not None:
            with self._lock:
                self._matched += len(matches)
                matched = self._matched
            self.on_batch(matches)
        else:
            with self._lock:
                for m in matches:
                    if m.key in self._keys:
                        continue  # met again after a failover resumed a SCAN
                    if len(self._keys) >= self.max_results:
                        self._truncated = True
                        self._cancel.set()
                        break
                    self._keys.add(m.key)
                self._matched = matched = len(self._keys)
        if self.on_found is not None:
            self.on_found(matched)


def _demoted(shard: Shard) -> bool:
    role = shard.client.execute_command("ROLE")
    return bool(role) and role[0] not in (b"master", "master")


def _is_node_trouble(error: redis.exceptions.ResponseError) -> bool:
    text = str(error)
    return text.startswith(("BUSY", "LOADING", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN")) or isinstance(
        error, FAILOVER_ERRORS
    )
