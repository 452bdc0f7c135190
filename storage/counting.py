"""The overview's counts on the store's nodes: a read-only Lua step over slots, tallies back.

``storage.cluster.store_stats`` (the client-side count) brings every actor and worker to the
client and decodes it: ~1 s of client CPU per 100k records, and every value crosses the network.
Here each step is one script call on a node (``COUNT_STEP``: whole slots, their keys by CLUSTER
GETKEYSINSLOT, their lengths by STRLEN and their values by one MGET per slot,
storage.node_reads.STEP_KEYS_LUA; a SCAN batch
on one server; then a strict match of the canonical form): the node sends back tallies (actors per
status, free/assigned workers per pool, locks) and only the keys it could not classify, with their
values. Per record, the common case costs one anchored ``string.match`` against a shape met
earlier in the step, with no table or string built: ~4 µs of the node's CPU per key, against ~6.5
for a SCAN, a GETRANGE call per key and a table per record (bench/count_bench.py). The client
judges the keys sent back as the client-side count does (decode, then the Go server's judgment,
storage.server_readable), so both counts give the same figures on any store.

What the script tallies itself is a record it can prove both atedash and the Go server read, with
the key it is stored at: printable ASCII, no backslash, no more than ``MAX_VALUE_BYTES`` bytes;
members in field-number order, each at most once, under either name; strings, decimal int64 of at
most 18 digits, enums by a known name; ", " or "," between members; its identity fields equal to
the key's parts; the key with the colons the server splits on. That is a subset of the Go form
storage.server_readable's first tier accepts (whatever it matches the server reads) and of what
storage.codec's fast path decodes. Anything else (binary protobuf, escapes, unknown fields,
numbers as enums, nulls, a mismatched identity, other key shapes, a value of another type, one
too long) goes to the client, which also GETs the too-long ones and those of another type itself.
A step examines a bounded number of keys (whole slots until ``step_count``, a slot of at most
``max(step_count, SLOT_KEYS_IN_STEP)`` keys), and reads no value longer than ``MAX_VALUE_BYTES``
into the script (its length first: a hostile value of megabytes never enters the node's Lua).

Runs where the topology sends it: on the replicas for ``Persistence.on_replicas()`` (a
``no-writes`` script over READONLY connections), on the primaries for a cluster without replicas.
A node that refuses scripts (scripting disabled, an ACL) is counted from the client instead.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any, TypeVar

import redis
from google.protobuf.descriptor import FieldDescriptor

from storage import cluster
from storage.ateapi_pb2 import Actor, Worker
from storage.errors import CorruptRecord
from storage.keys import ACTOR_PREFIX, LOCK_PREFIX, WORKER_PREFIX
from storage.node_reads import MAX_VALUE_BYTES, SLOT_KEYS_IN_STEP, STEP_KEYS_LUA, big_slot_keys, fetch_values
from storage.records import ACTORS, WORKERS
from storage.server_readable import ACTOR_SCHEMA, WORKER_SCHEMA
from storage.topology import FAILOVER_ERRORS, Shard, Topology

# Keys a step examines (whole slots: a few more). A step costs its node ~4 µs per key
# (bench/count_bench.py): 500 keys hold it 2-3 ms; more keys per step save only round trips.
STEP_KEYS = 500
# A value longer than MAX_VALUE_BYTES is not read into the script (hostile or not a record): the
# client GETs it (storage.node_reads: the step checks each value's length before it reads it).

T = TypeVar("T")

_READ_IT = 1  # reply marker: the client reads this key itself (too long, empty, not a string...)


def _lua_fields(message_class) -> str:
    """A Lua table: member name (JSON and proto spelling) -> {field number, kind}."""
    entries = []
    for f in message_class.DESCRIPTOR.fields:
        kind = _KINDS.get(f.type)
        if kind is None:  # storage.codec supports no other kind either
            raise TypeError(f"the count step knows string/int64/enum fields only, not {f.full_name}")
        for name in sorted({f.name, f.json_name}):
            entries.append(f"{name}={{{f.number},'{kind}'}}")
    return "{" + ",".join(entries) + "}"


_KINDS = {FieldDescriptor.TYPE_STRING: "s", FieldDescriptor.TYPE_INT64: "i", FieldDescriptor.TYPE_ENUM: "e"}


def _captures(message_class, wanted: tuple[str, ...], prefix: str) -> dict[str, str]:
    """What a kind's shape patterns capture and how a capture is checked, as Lua text.

    Every shape of a kind captures the same fields in the same order (field numbers: the ints, the
    enums, the ``wanted`` strings), so that one ``match`` hands them to locals with no table; a
    field a record lacks is captured empty, as proto3 reads it (a present int or enum never is)."""
    fields = sorted(message_class.DESCRIPTOR.fields, key=lambda f: f.number)
    caught = [f for f in fields if f.type != FieldDescriptor.TYPE_STRING or f.name in wanted]
    names = {f.name: f"{prefix}{i}" for i, f in enumerate(caught, 1)}
    checks, enums = [], []
    for f in caught:
        x = names[f.name]
        if f.type == FieldDescriptor.TYPE_INT64:
            # At most 18 digits, no leading zero: an int64 both readers take.
            checks.append(f"({x} == '' or {x} == '0' or (#{x} <= 18 and byte({x}, 1) ~= 48))")
        elif f.type == FieldDescriptor.TYPE_ENUM:
            table = f"E{prefix}{f.number}"
            enums.append(f"local {table} = {{{','.join(f'{v.name}=true' for v in f.enum_type.values)}}}")
            checks.append(f"({x} == '' or {table}[{x}])")
    out = {
        "CAPS": "{" + ",".join(str(f.number) for f in caught) + "}",
        "VARS": ", ".join(names.values()),
        "VALID": " and ".join(checks) or "true",
        "ENUMS": "\n".join(enums),
    }
    out.update({name.upper(): var for name, var in names.items()})
    return out


# One step of a count on one node. ARGV: mode, cursor, keys to examine, MAX_VALUE_BYTES, most keys
# of a slot in a step, then in "keys" mode the keys (storage.node_reads.STEP_KEYS_LUA). Reply: next
# cursor, a slot left to the client (-1: none), ate keys seen, locks, the number of statuses then
# (name, count) pairs, the number of pools then (namespace, pool, free, assigned), then (key, value)
# pairs the client judges; the value is 1 for a key the client reads itself. Read-only: runs on
# replicas. Per key it costs a share of one MGET and, for a record of a shape met earlier in the
# step, one anchored match: no table, no string built (bench/count_bench.py).
_COUNT_STEP_TEMPLATE = r"""#!lua flags=no-writes,allow-cross-slot-keys
local AF = __ACTOR_FIELDS__
local WF = __WORKER_FIELDS__
__A_ENUMS__
__W_ENUMS__
local byte, find, match, gsub, pcall = string.byte, string.find, string.match, string.gsub, redis.pcall

-- The value class of a string member: printable ASCII but '"' and '\', most used ranges first.
local CLASS = '[]-~#-[ -!]*'
-- An empty capture: a class of no byte.
local NONE = '([^%z\1-\255]*)'

-- A record's shape, from its skeleton (every string value of that class replaced by \1): one
-- anchored pattern that matches exactly the records of that shape (fields in number order, each
-- once, under one name, the same separators), capturing the fields `caps` lists (by number; NONE,
-- the empty string, for one the shape lacks); false when not the form.
local function shape_of(sk, fields, caps)
  local n = #sk
  if byte(sk, n) ~= 125 then return false end
  local parts, ci = {'^{'}, 1
  if n > 2 then
    local pos, last = 2, 0
    while true do
      local name, e = match(sk, '^"([%w_]+)":()', pos)
      if not name then return false end
      local f = fields[name]
      if not f or f[1] <= last then return false end
      last = f[1]
      while caps[ci] and caps[ci] < last do
        parts[#parts + 1] = NONE
        ci = ci + 1
      end
      local cap = caps[ci] == last
      if cap then ci = ci + 1 end
      local kind = f[2]
      parts[#parts + 1] = '"' .. name .. '":'
      if byte(sk, e) == 1 then
        e = e + 1
        if kind == 'i' then
          parts[#parts + 1] = '"%-?(%d+)"'
        elseif kind == 'e' then
          parts[#parts + 1] = '"([^"]+)"'
        elseif cap then
          parts[#parts + 1] = '"(' .. CLASS .. ')"'
        else
          parts[#parts + 1] = '"' .. CLASS .. '"'
        end
      else
        if kind ~= 'i' then return false end  -- a number for a string, or for an enum: the client's
        local p = match(sk, '^%-?%d+()', e)
        if not p then return false end
        parts[#parts + 1] = '%-?(%d+)'
        e = p
      end
      local b = byte(sk, e)
      if b == 44 then
        if byte(sk, e + 1) == 32 then
          parts[#parts + 1] = ', '
          pos = e + 2
        else
          parts[#parts + 1] = ','
          pos = e + 1
        end
      elseif b == 125 and e == n then
        break
      else
        return false
      end
    end
  end
  while caps[ci] do
    parts[#parts + 1] = NONE
    ci = ci + 1
  end
  parts[#parts + 1] = '}$'
  return table.concat(parts)
end

-- The pattern of a value's shape: those met in this step first (one match each), else shaped anew.
local function pattern_of(v, fields, caps, cache)
  if byte(v, 1) ~= 123 or find(v, '\1', 1, true) then return nil end
  local sk = gsub(v, '":"' .. CLASS .. '"', '":\1')
  local p = cache.shapes[sk]
  if p == nil then
    p = shape_of(sk, fields, caps)
    cache.shapes[sk] = p
    if p and #cache.list < 8 and not cache.patterns[p] then
      cache.list[#cache.list + 1] = p
      cache.patterns[p] = true
    end
  end
  return p or nil
end

local acache = {list = {}, shapes = {}, patterns = {}}
local wcache = {list = {}, shapes = {}, patterns = {}}
local alist, wlist = acache.list, wcache.list

-- The captured fields of an actor (a worker) in the form both readers take; nil otherwise.
__CAPS_FUNCTIONS__

__ENUMERATE__
local seen, locks = 0, 0
local status, pools, pool_list = {}, {}, {}
local doubt, nd = {}, 0
for bi = 1, nb do
  local keys, vals = batch_keys[bi], batch_vals[bi]
  for k = 1, #keys do
    local key = keys[k]
    local kind, ns, pool, pod = 0
    local id = match(key, '^actor:([^:]*)$')
    if id then
      kind = 1
    else
      ns, pool, pod = match(key, '^worker:([^:]*):([^:]*):([^:]*)$')
      if ns then
        kind = 2
      else
        local b = byte(key, 1)
        if b == 97 and find(key, 'actor:', 1, true) == 1 then
          kind = 1
        elseif b == 119 and find(key, 'worker:', 1, true) == 1 then
          kind = 2
        elseif b == 108 and find(key, 'lock:', 1, true) == 1 then
          seen = seen + 1
          locks = locks + 1
        end
      end
    end
    if kind > 0 then
      seen = seen + 1
      local v = vals[k]
      local sure = false
      if not v or #v == 0 then
        nd = nd + 1
        doubt[nd] = key
        nd = nd + 1
        doubt[nd] = 1  -- gone, not a string, unreadable here, empty or too long: the client reads it
        sure = nil
      elseif kind == 1 then
        if id then
          local __A_VARS__ = actor_caps(v)
          if __A_FIRST__ and __A_VALID__ and __A_ACTOR_ID__ == id then
            local s = __A_STATUS__
            if s == '' then s = '__STATUS_ZERO__' end
            status[s] = (status[s] or 0) + 1
            sure = true
          end
        end
      elseif ns then
        local __W_VARS__ = worker_caps(v)
        if __W_FIRST__ and __W_VALID__
          and __W_WORKER_NAMESPACE__ == ns and __W_WORKER_POOL__ == pool and __W_WORKER_POD__ == pod then
          local by_ns = pools[ns]
          if not by_ns then
            by_ns = {}
            pools[ns] = by_ns
          end
          local t = by_ns[pool]
          if not t then
            t = {ns, pool, 0, 0}
            by_ns[pool] = t
            pool_list[#pool_list + 1] = t
          end
          local claim = __W_ACTOR_ID__
          if claim ~= '' then t[4] = t[4] + 1 else t[3] = t[3] + 1 end
          sure = true
        end
      end
      if sure == false then
        doubt[nd + 1], doubt[nd + 2] = key, v
        nd = nd + 2
      end
    end
  end
end
local out = {next_cursor, big, seen, locks, 0}
local nstatus = 0
for name, count in pairs(status) do
  out[#out + 1] = name
  out[#out + 1] = count
  nstatus = nstatus + 1
end
out[5] = nstatus
out[#out + 1] = #pool_list
for _, t in ipairs(pool_list) do
  out[#out + 1] = t[1]
  out[#out + 1] = t[2]
  out[#out + 1] = t[3]
  out[#out + 1] = t[4]
end
for i = 1, nd do out[#out + 1] = doubt[i] end
return out
"""


# The step's keys (storage.node_reads.STEP_KEYS_LUA) from its ARGV: mode, cursor, keys to examine,
# MAX_VALUE_BYTES, most keys of a slot in a step, then in "keys" mode the keys.
_ENUMERATE = """local MODE, CURSOR, WANT, MOST = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[5])
local MAXLEN = tonumber(ARGV[4])
local KEY_PATTERN, SCAN_MATCH, GIVEN_FROM = false, false, 6
"""


# actor_caps(v) and worker_caps(v): a record's captures by the patterns seen before, else its own.
_CAPS_FUNCTION = """local function @name(v)
  for i = 1, #@list do
    local __K_VARS__ = match(v, @list[i])
    if __K_FIRST__ then return __K_VARS__ end
  end
  local p = pattern_of(v, @fields, __K_CAPS__, @cache)
  if p then return match(v, p) end
end
"""


def _caps_function(prefix: str, name: str, names: str, fields: str, cache: str) -> str:
    text = _CAPS_FUNCTION.replace("__K_", prefix).replace("@name", name).replace("@list", names)
    return text.replace("@fields", fields).replace("@cache", cache)


def _count_step() -> str:
    actor = _captures(Actor, ("actor_id",), "a")
    worker = _captures(Worker, ("worker_namespace", "worker_pool", "worker_pod", "actor_id"), "w")
    subs = {
        "__ACTOR_FIELDS__": _lua_fields(Actor),
        "__WORKER_FIELDS__": _lua_fields(Worker),
        "__STATUS_ZERO__": Actor.Status.Name(0),
        "__A_FIRST__": "a1",
        "__W_FIRST__": "w1",
        "__ENUMERATE__": _ENUMERATE + STEP_KEYS_LUA.strip(),
    }
    for prefix, caps in (("__A_", actor), ("__W_", worker)):
        for name, text in caps.items():
            subs[f"{prefix}{name}__"] = text
    step = _COUNT_STEP_TEMPLATE.replace(
        "__CAPS_FUNCTIONS__",
        _caps_function("__A_", "actor_caps", "alist", "AF", "acache")
        + _caps_function("__W_", "worker_caps", "wlist", "WF", "wcache"),
    )
    for name, text in subs.items():
        step = step.replace(name, text)
    if "__" in step.replace("__STATUS", ""):
        raise AssertionError("a placeholder of the count step is left")
    return step


COUNT_STEP = _count_step()


@dataclass
class _Tally(cluster.ShardTally):
    judged: int = 0  # records the client decoded and judged (the script could not)
    steps: int = 0
    big_slots: int = 0  # slots listed by the client (more keys than a step takes)
    client_side: bool = False  # the node refused the script: counted from the client

    def pool(self, ns: str, name: str) -> Counter:
        counts = self.by_pool.get((ns, name))
        if counts is None:
            counts = self.by_pool[(ns, name)] = Counter()
        return counts


@dataclass
class CountDetails:
    """How a count went: for benches and tests (the count itself is a cluster.StoreStats)."""

    shard_seconds: dict[str, float] = field(default_factory=dict)
    steps: int = 0
    judged: int = 0
    big_slots: int = 0
    client_side_shards: int = 0


# Most shards whose nodes a count steps on at once (0: every shard). Where the nodes share a few cores
# with the primaries, fewer busy replicas leave the primaries a core (bench/RESULTS.md, "PING"); with
# hosts of their own a count of N keys takes about N x 3.5 µs / PARALLEL_STEPS.
PARALLEL_STEPS = 2


@dataclass(frozen=True)
class Pace:
    """How hard a count presses the nodes: at most ``parallel`` steps at once in the fleet (0: every
    shard's), and after each step its shard rests ``rest`` times the step's time (a duty cycle;
    measured, not shipped: bench/fleet_bench.py --paces)."""

    parallel: int = PARALLEL_STEPS
    rest: float = 0.0


class _Gate:
    """The count's steps through one Pace: a step waits for a place, its shard rests after it."""

    def __init__(self, pace: Pace) -> None:
        self.rest_factor = max(0.0, pace.rest)
        self.places = threading.BoundedSemaphore(pace.parallel) if pace.parallel > 0 else None

    def step(self, run: Callable[[], T]) -> tuple[T, float]:
        """run()'s result and how long it took once it had its place."""
        with self.places or nullcontext():
            t0 = time.perf_counter()
            return run(), time.perf_counter() - t0

    def rest(self, took: float) -> None:
        if self.rest_factor:
            time.sleep(self.rest_factor * took)


def store_stats(
    topology: Topology,
    step_count: int = STEP_KEYS,
    details: CountDetails | None = None,
    pace: Pace = Pace(),
) -> cluster.StoreStats:
    """The same figures as ``storage.cluster.store_stats``, counted on the nodes (the shards' steps
    at the given ``pace``, ``step_count`` keys per script call)."""
    started = time.time()
    t0 = time.perf_counter()
    step_count = max(1, min(int(step_count), 10_000))
    gate = _Gate(pace)
    tallies = topology.map_shards(lambda shard: _count_shard(topology, shard, step_count, details, gate))
    return _merged(tallies, started, time.perf_counter() - t0, details)


def _merged(
    tallies: list[_Tally], started: float, duration_s: float, details: CountDetails | None
) -> cluster.StoreStats:
    actors_by_status = {name: 0 for name in Actor.Status.keys()}
    actors_by_status["CORRUPT"] = 0
    workers_by_pool: dict[tuple[str, str], dict[str, int]] = {}
    stats = cluster.StoreStats(actors_by_status, workers_by_pool, 0, started, duration_s, 0)
    for tally in tallies:
        for name, n in tally.by_status.items():
            actors_by_status[name] = actors_by_status.get(name, 0) + n
        for pool, counts in tally.by_pool.items():
            merged = workers_by_pool.setdefault(pool, {"free": 0, "assigned": 0})
            merged["free"] += counts["free"]
            merged["assigned"] += counts["assigned"]
        stats.locks += tally.locks
        stats.keys_scanned += tally.scanned
        stats.unreadable_actors += tally.unreadable_actors
        stats.unreadable_workers += tally.unreadable_workers
        stats.corrupt_workers += tally.corrupt_workers
        if details is not None:
            details.steps += tally.steps
            details.judged += tally.judged
            details.big_slots += tally.big_slots
            details.client_side_shards += tally.client_side
    return stats


def _count_shard(
    topology: Topology, shard: Shard, step_count: int, details: CountDetails | None, gate: _Gate
) -> _Tally:
    t0 = time.perf_counter()
    tally = _Tally()
    cursor = 0
    current = [shard]
    script = [shard.client.register_script(COUNT_STEP)]
    mode = "slots" if topology.is_cluster else "scan"
    most = max(step_count, SLOT_KEYS_IN_STEP)

    def step(s: Shard) -> tuple[Shard, list[list]]:
        if current[0] is not s:  # the step moved (a replica failed it, a failover)
            current[0], script[0] = s, s.client.register_script(COUNT_STEP)
        run = script[0]
        replies = [run(keys=[], args=[mode, cursor, step_count, MAX_VALUE_BYTES, most], client=s.client)]
        big = int(replies[0][1])
        if big >= 0:
            # A slot too big for one step: its keys listed here, then classified in parts.
            keys = big_slot_keys(s.client, big)
            for i in range(0, len(keys), step_count):
                part = keys[i : i + step_count]
                replies.append(run(keys=[], args=["keys", 0, 0, MAX_VALUE_BYTES, most, *part], client=s.client))
        return s, replies

    while True:
        try:
            (used, replies), took = gate.step(lambda: topology.call_on_shard(current[0], step))
        except redis.exceptions.ResponseError as e:
            if _is_node_trouble(e):
                raise
            # Scripting refused: this shard is counted from the client, from scratch.
            tally = _client_side(topology, current[0], step_count)
            break
        for reply in replies:
            _take_reply(reply, tally, used, topology)
        tally.steps += len(replies)
        tally.big_slots += len(replies) > 1
        cursor = int(replies[0][0])
        if cursor == 0:
            break
        gate.rest(took)
    if details is not None:
        details.shard_seconds[shard.address] = time.perf_counter() - t0
    return tally


def _take_reply(reply: list, tally: _Tally, shard: Shard, topology: Topology) -> None:
    tally.scanned += int(reply[2])
    tally.locks += int(reply[3])
    i = 5
    for _ in range(int(reply[4])):
        tally.by_status[reply[i].decode()] += int(reply[i + 1])
        i += 2
    npools = int(reply[i])
    i += 1
    for _ in range(npools):
        counts = tally.pool(reply[i].decode(), reply[i + 1].decode())
        counts["free"] += int(reply[i + 2])
        counts["assigned"] += int(reply[i + 3])
        i += 4
    pairs: list[tuple[bytes, Any]] = []
    read_here: list[bytes] = []
    for j in range(i, len(reply), 2):
        key, value = reply[j], reply[j + 1]
        if value == _READ_IT:
            read_here.append(key)
        else:
            pairs.append((key, value))
    if read_here:
        pairs.extend(zip(read_here, fetch_values(shard.client, read_here, topology.reroute)))
    _judge(pairs, tally)


def _judge(pairs: Iterable[tuple[bytes, Any]], tally: _Tally) -> None:
    """What storage.cluster's client-side count makes of each (key, value): decoded by atedash (or
    corrupt), and whether the Go server reads it."""
    for key, raw in pairs:
        if raw is None:
            continue  # deleted since the SCAN
        tally.judged += 1
        if key.startswith(_ACTOR):
            try:
                actor = ACTORS.decode_stored(key, raw)[0]
            except CorruptRecord:
                tally.by_status["CORRUPT"] += 1
                tally.unreadable_actors += ACTOR_SCHEMA.judge(key, raw) is not None
                continue
            tally.by_status[cluster._status_name(actor.status)] += 1
            tally.unreadable_actors += key.count(b":") != 1 or ACTOR_SCHEMA.value_error(raw) is not None
        else:
            try:
                worker = WORKERS.decode_stored(key, raw)[0]
            except CorruptRecord:
                tally.corrupt_workers += 1
                tally.unreadable_workers += WORKER_SCHEMA.judge(key, raw) is not None
                continue
            tally.unreadable_workers += key.count(b":") != 3 or WORKER_SCHEMA.value_error(raw) is not None
            tally.pool(worker.worker_namespace, worker.worker_pool)["assigned" if worker.actor_id else "free"] += 1


_ACTOR, _WORKER, _LOCK = ACTOR_PREFIX.encode(), WORKER_PREFIX.encode(), LOCK_PREFIX.encode()


def _client_side(topology: Topology, shard: Shard, step_count: int) -> _Tally:
    shard_stats = cluster._shard_stats(topology, shard, step_count)
    tally = _Tally(
        by_status=shard_stats.by_status,
        locks=shard_stats.locks,
        scanned=shard_stats.scanned,
        unreadable_actors=shard_stats.unreadable_actors,
        unreadable_workers=shard_stats.unreadable_workers,
        corrupt_workers=shard_stats.corrupt_workers,
        client_side=True,
    )
    tally.by_pool = shard_stats.by_pool
    return tally


def _is_node_trouble(error: redis.exceptions.ResponseError) -> bool:
    text = str(error)
    return text.startswith(("BUSY", "LOADING", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN")) or isinstance(
        error, FAILOVER_ERRORS
    )
