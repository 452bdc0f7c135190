"""Batched per-node reads: SCAN one primary, fetch the values of a batch of keys in one round trip.

The Go package reads records with one GET per key (~150 µs each); here a batch of keys found by a
SCAN on one node is fetched with a single pipelined round trip to that same node. Keys returned by
a node's SCAN live on that node, so no routing is involved.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import cast

import redis
from redis.exceptions import AskError, ClusterDownError, MovedError, ResponseError, TryAgainError


def fetch_values(
    node: redis.Redis, keys: list[bytes], reroute: Callable[[bytes], bytes | str | None] | None = None
) -> list:
    """GET of every key in one round trip to ``node``: bytes, None (deleted meanwhile), or the
    ResponseError the server answered for that key (e.g. WRONGTYPE), for the caller to report.

    A key whose slot moved to another node while a batch was in flight (resharding) answers
    MOVED/ASK; ``reroute`` (the cluster client's own GET, which follows redirections) reads those.

    The commands are packed and sent in one write and the replies read straight off the
    connection: redis-py's Pipeline object costs ~4 µs per command in bookkeeping, more than the
    GET itself (~1.3 µs per key this way), and listings do a million of them.
    """
    if not keys:
        return []
    pool = node.connection_pool
    conn = pool.get_connection()
    try:
        conn.send_packed_command([b"".join([b"*2\r\n$3\r\nGET\r\n$%d\r\n%s\r\n" % (len(k), k) for k in keys])])
        values = []
        for _ in keys:
            try:
                values.append(conn.read_response())
            except ResponseError as e:  # the whole error reply was read: the stream stays in step
                values.append(e)
    except BaseException:
        # A half-read reply stream cannot be reused.
        conn.disconnect()
        raise
    finally:
        pool.release(conn)
    for i, value in enumerate(values):
        if isinstance(value, (ClusterDownError, TryAgainError)):
            # The node, not the key, is in trouble (a failover under way): raised so that the
            # caller retries the batch, never reported as a corrupt record.
            raise value
        if isinstance(value, (MovedError, AskError)):
            if reroute is None:
                raise value
            values[i] = reroute(keys[i])
    return values


def scan_batches(
    node: redis.Redis, match: str | None, count: int = 1000, cursor: int = 0
) -> Iterator[tuple[int, list[bytes]]]:
    """(next cursor, keys) per SCAN call on one node until the walk of that node is complete."""
    while True:
        cursor, keys = node.scan(cursor, match=match, count=count)
        yield cursor, cast("list[bytes]", keys)  # the store's clients never decode replies
        if cursor == 0:
            return


# ===================================================================== a script step's keys

# Most keys of one slot a script step takes; a bigger slot (hash tags) is listed by the client and
# handed to the script in parts (``big_slot_keys``).
SLOT_KEYS_IN_STEP = 1000

# Most bytes of one value a script step reads: a longer one (hostile, or no record) stays out of
# the script's memory, and the client reads it itself.
MAX_VALUE_BYTES = 16_384

# The keys of one step of a read-only script and their values, in Lua. Set before it: MODE, CURSOR,
# WANT (keys to examine), MOST (the most keys of a slot taken whole), MAXLEN (MAX_VALUE_BYTES: the
# longest value read), KEY_PATTERN (an anchored Lua pattern the keys must match, or false),
# SCAN_MATCH (the SCAN's MATCH) and GIVEN_FROM (in "keys" mode, the ARGV index of the first key). It
# sets ``nb`` batches of keys ``batch_keys[b]`` and their values ``batch_vals[b]`` (false or nil:
# not a string, longer than MAXLEN, or not served here: the client reads it), ``next_cursor`` (0:
# done) and ``big`` (a slot left to the client, -1: none).
#  - "slots" (a cluster): whole slots from slot CURSOR on, every one of the 16384 (a node yields
#    every key it holds, as a SCAN does; a cursor means the same on any node); a slot's keys come
#    from CLUSTER GETKEYSINSLOT and their values in one MGET. A slot of more than MOST keys ends
#    the step, unread: the client lists it.
#  - "scan" (one server, no slots): a SCAN batch, one MGET.
#  - "keys": the keys given (a part of a big slot).
# Per key, a read in an MGET costs the node about a third less than a GET call of its own, and a
# slot's keys less than a SCAN's (bench/count_bench.py --walks). An MGET copies whole values, so a
# STRLEN of each key comes first (~0.5 µs a key) and the MGET takes only values of at most MAXLEN
# bytes: a step holds at most ~MAXLEN bytes per key it reads. An MGET refused (a slot this node does
# not serve: migrating, importing) leaves its keys to the client, which follows MOVED/ASK.
STEP_KEYS_LUA = r"""
local batch_keys, batch_vals, nb, nk = {}, {}, 0, 0
local next_cursor, big = 0, -1
local function fetch(ks)
  if KEY_PATTERN then
    local kept, n = {}, 0
    for i = 1, #ks do
      if string.find(ks[i], KEY_PATTERN) then
        n = n + 1
        kept[n] = ks[i]
      end
    end
    ks = kept
  end
  if #ks > 1000 then  -- unpack's limit
    for i = 1, #ks, 1000 do fetch({unpack(ks, i, math.min(i + 999, #ks))}) end
  elseif #ks > 0 then
    local n, short, long = #ks, ks, false
    for i = 1, n do
      local len = redis.pcall('STRLEN', ks[i])
      if type(len) ~= 'number' or len > MAXLEN then  -- too long, not a string, not served here
        long = long or {}
        long[i] = true
      end
    end
    if long then
      short = {}
      for i = 1, n do
        if not long[i] then short[#short + 1] = ks[i] end
      end
    end
    local vs = {}
    if #short > 0 then
      vs = redis.pcall('MGET', unpack(short))
      if vs.err then vs = {} end
    end
    if long then
      local all, j = {}, 0
      for i = 1, n do
        if long[i] then
          all[i] = false
        else
          j = j + 1
          all[i] = vs[j]
        end
      end
      vs = all
    end
    nb = nb + 1
    batch_keys[nb] = ks
    batch_vals[nb] = vs
    nk = nk + n
  end
end
if MODE == 'slots' then
  local slot, examined = tonumber(CURSOR), 0
  while slot < 16384 and examined < WANT do
    local n = redis.call('CLUSTER', 'COUNTKEYSINSLOT', slot)
    if n > MOST then
      if examined == 0 then
        big = slot
        slot = slot + 1
      end
      break
    end
    if n > 0 then fetch(redis.call('CLUSTER', 'GETKEYSINSLOT', slot, n)) end
    examined = examined + n
    slot = slot + 1
  end
  if slot < 16384 then next_cursor = slot end
elseif MODE == 'scan' then
  local reply
  if SCAN_MATCH then
    reply = redis.call('SCAN', CURSOR, 'MATCH', SCAN_MATCH, 'COUNT', WANT)
  else
    reply = redis.call('SCAN', CURSOR, 'COUNT', WANT)
  end
  next_cursor = tonumber(reply[1])
  KEY_PATTERN = false
  fetch(reply[2])
else
  local ks = {}
  for i = GIVEN_FROM, #ARGV do ks[i - GIVEN_FROM + 1] = ARGV[i] end
  fetch(ks)
end
"""


def big_slot_keys(node: redis.Redis, slot: int) -> list[bytes]:
    """Every key ``node`` holds in ``slot`` (a slot a script step left to the client)."""
    n = int(node.execute_command("CLUSTER", "COUNTKEYSINSLOT", slot))
    return list(node.execute_command("CLUSTER", "GETKEYSINSLOT", slot, n)) if n else []


def lua_key_pattern(match: str) -> bytes | None:
    """A SCAN MATCH glob (``*``, ``?``, ``\\x``) as an anchored Lua pattern over key bytes; None for
    a glob with a class (``[...]``), which storage builds none of (keys.glob_escape escapes them)."""
    out, raw, i = [b"^"], match.encode("utf-8", "surrogateescape"), 0
    while i < len(raw):
        c = raw[i]
        if c == 0x2A:  # *
            out.append(b".*")
        elif c == 0x3F:  # ?
            out.append(b".")
        elif c == 0x5B:  # [
            return None
        else:
            if c == 0x5C and i + 1 < len(raw):  # \x: a literal x
                i += 1
                c = raw[i]
            out.append(b"%z" if c == 0 else bytes((c,)) if chr(c).isalnum() and c < 128 else b"%" + bytes((c,)))
        i += 1
    return b"".join(out) + b"$"
