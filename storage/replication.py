"""Waiting until a write has reached a replica, so that a failover right after cannot lose it.

Redis replicates asynchronously: a primary acknowledges a write before its replica has it, and when the
primary dies in that moment the promoted replica never saw the write. An operator who was told
"saved" must not lose the edit that way. After a write, ``await_replica`` reads the primary's
replication offset (which covers the write, acknowledged before) and polls the replicas of that
primary until one of them has applied that much of the stream.

WAIT would do the same, but only for writes sent on the same connection, which a pooled cluster
client does not promise; the offsets need no such thing. The replicas are the ones redis-py's slot
map lists for the key's slot, reached through its own connections (credentials, TLS).
"""

from __future__ import annotations

import logging
import time

import redis
from redis.cluster import RedisCluster

log = logging.getLogger(__name__)

_POLL_S = 0.001


def await_replica(client, key: str, timeout: float) -> bool | None:
    """True once a replica of the key's primary has every write the primary acknowledged so far.

    False when none has within ``timeout`` seconds (logged; the write stands), None when there is
    nothing to wait for (not a cluster, no replica known, or waiting turned off).
    """
    if not timeout or not isinstance(client, RedisCluster):
        return None
    try:
        nodes = client.nodes_manager.slots_cache.get(client.keyslot(key)) or []
        if len(nodes) < 2:
            return None
        primary, replicas = nodes[0], nodes[1:]
        target = int(client.get_redis_connection(primary).info("replication").get("master_repl_offset", 0))
    except (redis.exceptions.RedisError, redis.exceptions.RedisClusterException, OSError):
        return None  # the primary answered the write a moment ago; a failover is already under way
    deadline = time.monotonic() + timeout
    while True:
        for replica in replicas:
            try:
                info = client.get_redis_connection(replica).info("replication")
            except (redis.exceptions.RedisError, OSError):
                continue
            if int(info.get("slave_repl_offset", -1)) >= target:
                return True
        if time.monotonic() >= deadline:
            log.warning("%s: no replica of %s confirmed the write within %.1f s", key, primary.name, timeout)
            return False
        time.sleep(_POLL_S)
