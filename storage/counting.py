"""The overview's counts on the store's nodes: a read-only Lua step over SCAN, tallies back.

``storage.cluster.store_stats`` (the client-side count) brings every actor and worker to the
client and decodes it: ~1 s of client CPU per 100k records, and every value crosses the network.
Here each step is one script call on a node (``COUNT_STEP``: SCAN, a bounded GETRANGE of each
record key, a strict parse of the canonical form): the node sends back tallies (actors per
status, free/assigned workers per pool, locks) and only the keys it could not classify, with their
values. The client judges those as the client-side count does (decode, then the Go server's
judgment, storage.server_readable), so both counts give the same figures on any store.

What the script tallies itself is a record it can prove both atedash and the Go server read, with
the key it is stored at: printable ASCII, no backslash, no more than ``MAX_VALUE_BYTES`` bytes;
members in field-number order, each at most once, under either name; strings, decimal int64 of at
most 18 digits, enums by a known name; ", " or "," between members; its identity fields equal to
the key's parts; the key with the colons the server splits on. That is a subset of the Go form
storage.server_readable's first tier accepts (whatever it matches the server reads) and of what
storage.codec's fast path decodes. Anything else (binary protobuf, escapes, unknown fields,
numbers as enums, nulls, a mismatched identity, other key shapes, a value of another type, one
too long) goes to the client, which also GETs the too-long ones itself.

Runs where the topology sends it: on the replicas for ``Persistence.on_replicas()`` (a
``no-writes`` script over READONLY connections), on the primaries for a cluster without replicas.
A node that refuses scripts (scripting disabled, an ACL) is counted from the client instead.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import redis
from google.protobuf.descriptor import FieldDescriptor

from storage import cluster
from storage.ateapi_pb2 import Actor, Worker
from storage.errors import CorruptRecord
from storage.keys import ACTOR_PREFIX, LOCK_PREFIX, WORKER_PREFIX
from storage.node_reads import fetch_values
from storage.records import ACTORS, WORKERS
from storage.server_readable import ACTOR_SCHEMA, WORKER_SCHEMA
from storage.topology import FAILOVER_ERRORS, Shard, Topology

# Keys per step (SCAN COUNT). A step costs its node ~6-12 µs per key (bench/RESULTS.md, "fleet"):
# 500 keys hold it a few ms; more keys per step save only round trips.
STEP_KEYS = 500
# A value longer than this is not read into the script (hostile or not a record): the client GETs it.
MAX_VALUE_BYTES = 16_384

_READ_IT = 1  # reply marker: the client reads this key itself (too long, empty, unreadable here)
_WRONG_TYPE = 0  # reply marker: the key holds no string (GET answers WRONGTYPE)


def _lua_fields(message_class, wanted: tuple[str, ...]) -> str:
    """A Lua table: member name (JSON and proto spelling) -> {field number, kind, enum names or
    whether the count reads the field (the ``wanted`` strings)}."""
    entries = []
    for f in message_class.DESCRIPTOR.fields:
        if f.type == FieldDescriptor.TYPE_STRING:
            spec = f"{f.number},'s',{'true' if f.name in wanted else 'false'}"
        elif f.type == FieldDescriptor.TYPE_INT64:
            spec = f"{f.number},'i'"
        elif f.type == FieldDescriptor.TYPE_ENUM:
            names = ",".join(f"{v.name}=true" for v in f.enum_type.values)
            spec = f"{f.number},'e',{{{names}}}"
        else:  # storage.codec supports no other kind either
            raise TypeError(f"the count step knows string/int64/enum fields only, not {f.full_name}")
        for name in sorted({f.name, f.json_name}):
            entries.append(f"{name}={{{spec}}}")
    return "{" + ",".join(entries) + "}"


def _number(message_class, name: str) -> str:
    return str(message_class.DESCRIPTOR.fields_by_name[name].number)


# One step of a count on one node. ARGV: cursor, COUNT, MAX_VALUE_BYTES. Reply: next cursor, ate
# keys seen, locks, the number of statuses then (name, count) pairs, the number of pools then
# (namespace, pool, free, assigned), then (key, value) pairs the client judges; the value is 0 for a
# key that is not a string and 1 for one the client reads itself. Read-only: runs on replicas.
_COUNT_STEP_TEMPLATE = r"""#!lua flags=no-writes,allow-cross-slot-keys
local AF = __ACTOR_FIELDS__
local WF = __WORKER_FIELDS__
local maxlen = tonumber(ARGV[3])

-- The value class of a string member: printable ASCII but '"' and '\', most used ranges first.
local CLASS = '[]-~#-[ -!]*'

-- A record's shape, from its skeleton (every string value of that class replaced by \1): one
-- anchored pattern that matches exactly the records of that shape (fields in number order, each
-- once, under one name, the same separators), capturing what the count reads or must judge per
-- record: {pattern, {{field number, kind[, enum names]}, ...}}; false when not the form.
local function shape_of(sk, fields)
  local n = #sk
  if string.byte(sk, n) ~= 125 then return false end
  local parts, caps = {'^{'}, {}
  if n > 2 then
    local pos, last = 2, 0
    while true do
      local name, e = string.match(sk, '^"([%w_]+)":()', pos)
      if not name then return false end
      local f = fields[name]
      if not f or f[1] <= last then return false end
      last = f[1]
      local kind = f[2]
      parts[#parts + 1] = '"' .. name .. '":'
      if string.byte(sk, e) == 1 then
        e = e + 1
        if kind == 'i' then
          parts[#parts + 1] = '"%-?(%d+)"'
          caps[#caps + 1] = {last, 'i'}
        elseif kind == 'e' then
          parts[#parts + 1] = '"([^"]*)"'
          caps[#caps + 1] = {last, 'e', f[3]}
        elseif f[3] then
          parts[#parts + 1] = '"(' .. CLASS .. ')"'
          caps[#caps + 1] = {last, 's'}
        else
          parts[#parts + 1] = '"' .. CLASS .. '"'
        end
      else
        if kind ~= 'i' then return false end  -- a number for a string, or for an enum: the client's
        local p = string.match(sk, '^%-?%d+()', e)
        if not p then return false end
        parts[#parts + 1] = '%-?(%d+)'
        caps[#caps + 1] = {last, 'i'}
        e = p
      end
      local b = string.byte(sk, e)
      if b == 44 then
        if string.byte(sk, e + 1) == 32 then
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
  if #caps > 5 then return false end
  parts[#parts + 1] = '}$'
  return {table.concat(parts), caps}
end

-- The fields the count reads of a record in the form both readers take, by number; nil otherwise.
-- The shapes met in this step are tried first (one match each); a record of none is shaped anew.
local function fields_of(v, fields, cache)
  if string.byte(v, 1) ~= 123 then return nil end
  local list, sh, a, b, c, d, e = cache.list, nil
  for i = 1, #list do
    a, b, c, d, e = string.match(v, list[i][1])
    if a then
      sh = list[i]
      break
    end
  end
  if not sh then
    if string.find(v, '\1', 1, true) then return nil end
    local sk = string.gsub(v, '":"' .. CLASS .. '"', '":\1')
    sh = cache.shapes[sk]
    if sh == nil then
      sh = shape_of(sk, fields)
      cache.shapes[sk] = sh
      if sh and #list < 8 and not cache.patterns[sh[1]] then
        list[#list + 1] = sh
        cache.patterns[sh[1]] = true
      end
    end
    if not sh then return nil end
    a, b, c, d, e = string.match(v, sh[1])
    if not a then return nil end
  end
  local got, m = {a, b, c, d, e}, {}
  for i, cap in ipairs(sh[2]) do
    local x = got[i]
    if cap[2] == 'i' then
      if not (x == '0' or (#x <= 18 and string.byte(x, 1) ~= 48)) then return nil end
    elseif cap[2] == 'e' and not cap[3][x] then
      return nil
    else
      m[cap[1]] = x
    end
  end
  return m
end

local reply = redis.call('SCAN', ARGV[1], 'COUNT', ARGV[2])
local seen, locks = 0, 0
local status, pools, pool_list = {}, {}, {}
local actor_shapes = {list = {}, shapes = {}, patterns = {}}
local worker_shapes = {list = {}, shapes = {}, patterns = {}}
local doubt, nd = {}, 0
for _, key in ipairs(reply[2]) do
  local is_actor = string.sub(key, 1, 6) == 'actor:'
  local is_worker = not is_actor and string.sub(key, 1, 7) == 'worker:'
  if is_actor or is_worker then
    seen = seen + 1
    local v = redis.pcall('GETRANGE', key, 0, maxlen)
    local sure = false
    if type(v) == 'table' then
      nd = nd + 1
      doubt[nd] = key
      nd = nd + 1
      if v.err and string.sub(v.err, 1, 9) == 'WRONGTYPE' then doubt[nd] = 0 else doubt[nd] = 1 end
      sure = nil
    elseif #v == 0 or #v > maxlen then
      nd = nd + 1
      doubt[nd] = key
      nd = nd + 1
      doubt[nd] = 1  -- gone since the SCAN, empty, or too long: the client reads it
      sure = nil
    elseif is_actor then
      local id = string.match(key, '^actor:([^:]*)$')
      local m = id and fields_of(v, AF, actor_shapes)
      if m and (m[__ACTOR_ID__] or '') == id then
        local s = m[__STATUS__] or '__STATUS_ZERO__'
        status[s] = (status[s] or 0) + 1
        sure = true
      end
    else
      local ns, pool, pod = string.match(key, '^worker:([^:]*):([^:]*):([^:]*)$')
      local m = ns and fields_of(v, WF, worker_shapes)
      if m and (m[__NS__] or '') == ns and (m[__POOL__] or '') == pool and (m[__POD__] or '') == pod then
        local id = ns .. ':' .. pool
        local t = pools[id]
        if not t then
          t = {ns, pool, 0, 0}
          pools[id] = t
          pool_list[#pool_list + 1] = t
        end
        if m[__CLAIM__] and m[__CLAIM__] ~= '' then t[4] = t[4] + 1 else t[3] = t[3] + 1 end
        sure = true
      end
    end
    if sure == false then
      nd = nd + 1
      doubt[nd] = key
      nd = nd + 1
      doubt[nd] = v
    end
  elseif string.sub(key, 1, 5) == 'lock:' then
    seen = seen + 1
    locks = locks + 1
  end
end
local out = {reply[1], seen, locks, 0}
local nstatus = 0
for name, count in pairs(status) do
  out[#out + 1] = name
  out[#out + 1] = count
  nstatus = nstatus + 1
end
out[4] = nstatus
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

_SUBSTITUTIONS = {
    "__ACTOR_FIELDS__": _lua_fields(Actor, ("actor_id",)),
    "__WORKER_FIELDS__": _lua_fields(Worker, ("worker_namespace", "worker_pool", "worker_pod", "actor_id")),
    "__ACTOR_ID__": _number(Actor, "actor_id"),
    "__STATUS__": _number(Actor, "status"),
    "__STATUS_ZERO__": Actor.Status.Name(0),
    "__NS__": _number(Worker, "worker_namespace"),
    "__POOL__": _number(Worker, "worker_pool"),
    "__POD__": _number(Worker, "worker_pod"),
    "__CLAIM__": _number(Worker, "actor_id"),
}
COUNT_STEP = _COUNT_STEP_TEMPLATE
for _name, _value in _SUBSTITUTIONS.items():
    COUNT_STEP = COUNT_STEP.replace(_name, _value)


@dataclass
class _Tally(cluster.ShardTally):
    judged: int = 0  # records the client decoded and judged (the script could not)
    steps: int = 0
    client_side: bool = False  # the node refused the script: counted from the client

    def pool(self, ns: str, name: str) -> Counter:
        counts = self.by_pool.get((ns, name))
        if counts is None:
            counts = self.by_pool[(ns, name)] = Counter()
        return counts


@dataclass
class CountDetails:
    """How a count went: for benches and tests (the count itself is a cluster.StoreStats)."""

    steps: int = 0
    judged: int = 0
    client_side_shards: int = 0
    shard_seconds: dict[str, float] = field(default_factory=dict)


def store_stats(
    topology: Topology, step_count: int = STEP_KEYS, details: CountDetails | None = None
) -> cluster.StoreStats:
    """The same figures as ``storage.cluster.store_stats``, counted on the nodes (every shard in
    parallel, ``step_count`` keys per script call)."""
    started = time.time()
    t0 = time.perf_counter()
    step_count = max(1, min(int(step_count), 10_000))
    tallies = topology.map_shards(lambda shard: _count_shard(topology, shard, step_count, details))
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
            details.client_side_shards += tally.client_side
    return stats


def _count_shard(topology: Topology, shard: Shard, step_count: int, details: CountDetails | None) -> _Tally:
    t0 = time.perf_counter()
    tally = _Tally()
    cursor = 0
    current = [shard]
    script = [shard.client.register_script(COUNT_STEP)]

    def step(s: Shard) -> tuple[Shard, list]:
        if current[0] is not s:  # the step moved (a replica failed it, a failover)
            current[0], script[0] = s, s.client.register_script(COUNT_STEP)
        return s, script[0](keys=[], args=[cursor, step_count, MAX_VALUE_BYTES], client=s.client)

    while True:
        try:
            used, reply = topology.call_on_shard(current[0], step)
        except redis.exceptions.ResponseError as e:
            if _is_node_trouble(e):
                raise
            # Scripting refused: this shard is counted from the client, from scratch.
            tally = _client_side(topology, current[0], step_count)
            break
        cursor = _take_reply(reply, tally, used, topology)
        tally.steps += 1
        if cursor == 0:
            break
    if details is not None:
        details.shard_seconds[shard.address] = time.perf_counter() - t0
    return tally


def _take_reply(reply: list, tally: _Tally, shard: Shard, topology: Topology) -> int:
    cursor = int(reply[0])
    tally.scanned += int(reply[1])
    tally.locks += int(reply[2])
    i = 4
    for _ in range(int(reply[3])):
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
        if value == _WRONG_TYPE:
            pairs.append(
                (
                    key,
                    redis.exceptions.ResponseError("WRONGTYPE Operation against a key holding the wrong kind of value"),
                )
            )
        elif value == _READ_IT:
            read_here.append(key)
        else:
            pairs.append((key, value))
    if read_here:
        pairs.extend(zip(read_here, fetch_values(shard.client, read_here, topology.reroute)))
    _judge(pairs, tally)
    return cursor


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
