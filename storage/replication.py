"""Waiting until a write has reached a replica, so that a failover right after cannot lose it.

Redis replicates asynchronously: a primary acknowledges a write before its replica has it, and when the
primary dies in that moment the promoted replica never saw the write. An operator who was told
"saved" must not lose the edit that way. After a write, ``ReplicaAck.wait`` reads the primary's
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
from redis.backoff import NoBackoff
from redis.cluster import RedisCluster
from redis.retry import Retry

log = logging.getLogger(__name__)

_POLL_S = 0.001


_PROBE_TIMEOUT_S = 0.5


class ReplicaAck:
    """Waits for replicas of one client's primaries; keeps one short-timeout connection per replica."""

    def __init__(self, client):
        self.client = client
        self._probes: dict[tuple[str, float], redis.Redis] = {}

    def wait(self, key: str | bytes, timeout: float) -> bool | None:
        """True once a replica of the key's primary has every write the primary acknowledged so far.

        False when none has within ``timeout`` seconds, or when no replica answers at all (a replica
        that is down or frozen costs at most one short probe); logged, and the write stands. None when
        there is nothing to wait for (not a cluster, no replica known, or waiting turned off).
        """
        client = self.client
        if not timeout or not isinstance(client, RedisCluster):
            return None
        try:
            nodes = client.nodes_manager.slots_cache.get(client.keyslot(key)) or []
            if len(nodes) < 2:
                return None
            primary, replicas = nodes[0], list(nodes[1:])
            target = int(client.get_redis_connection(primary).info("replication").get("master_repl_offset", 0))
        except (redis.exceptions.RedisError, redis.exceptions.RedisClusterException, OSError):
            return None  # the primary answered the write a moment ago; a failover is already under way
        deadline = time.monotonic() + timeout
        while replicas:
            for replica in list(replicas):
                try:
                    info = self._probe(replica, min(_PROBE_TIMEOUT_S, timeout)).info("replication")
                except (redis.exceptions.RedisError, OSError):
                    replicas.remove(replica)  # down or frozen: it will not confirm anything in time
                    continue
                if int(info.get("slave_repl_offset", -1)) >= target:
                    return True
            if time.monotonic() >= deadline:
                break
            time.sleep(_POLL_S)
        log.warning("%s: no replica of %s confirmed the write within %.1f s", key, primary.name, timeout)
        return False

    def _probe(self, node, socket_timeout: float) -> redis.Redis:
        """A connection to `node` like redis-py's own (credentials, TLS), with a short socket timeout."""
        cache_key = (node.name, socket_timeout)
        probe = self._probes.get(cache_key)
        if probe is None:
            pool = self.client.get_redis_connection(node).connection_pool
            kwargs = dict(pool.connection_kwargs, socket_timeout=socket_timeout, socket_connect_timeout=socket_timeout)
            kwargs["retry"] = Retry(NoBackoff(), 0)  # a probe: the answer now, or none
            probe = redis.Redis(connection_pool=redis.ConnectionPool(connection_class=pool.connection_class, **kwargs))
            if len(self._probes) > 256:  # nodes come and go over failovers: keep it bounded
                self._probes.clear()
            self._probes[cache_key] = probe
        return probe
