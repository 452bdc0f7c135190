"""The primaries behind a client, and running per-primary work in parallel across failovers.

Whole-store reads (listing, scanning, statistics, flushing) go to each primary directly: SCAN is a
per-node command, and batching GETs per node avoids a round trip per record. redis-py's cluster
client keeps the slot map; this module only reads it, and asks it to refresh when a node fails.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

import redis
from redis.cluster import RedisCluster
from redis.exceptions import ClusterDownError, ConnectionError, TimeoutError

T = TypeVar("T")

SLOTS = 16384
# Errors after which the slot map may be stale (a primary died, a replica took over).
FAILOVER_ERRORS = (ConnectionError, TimeoutError, ClusterDownError)
# Backoff between attempts while a failover completes (cluster-node-timeout is seconds).
_RETRY_DELAYS = (0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 3.2)
# ...but no longer than this in all: when every node hangs (frozen, partitioned), each attempt costs a
# socket timeout and each slot-map refresh one per node, and a page must fail in bounded time.
_RETRY_BUDGET_S = 10.0
# How often whole-store reads re-read the slot map while a shard shows no replica (one is syncing,
# or the cluster has none): one CLUSTER SLOTS, so that new replicas take the reads over.
REPLICA_LOOK_EVERY_S = 30.0


@dataclass(frozen=True)
class Shard:
    """A primary: the lowest slot it serves orders shards and identifies them across failovers."""

    slot_start: int
    address: str  # "host:port"
    client: redis.Redis  # connection to this node only
    slot_ranges: tuple[tuple[int, int], ...] = ((0, SLOTS - 1),)


class Topology:
    def __init__(self, client: redis.Redis | RedisCluster, executor: ThreadPoolExecutor | None = None):
        self.client = client
        # Shard tasks never submit further tasks, so one executor can serve many Topology objects
        # (the dashboard passes its application's); without one, a pool of its own, made on first use.
        self._executor = executor
        self._executor_lock = threading.Lock()
        self.is_cluster = isinstance(client, RedisCluster)
        self._cache_lock = threading.Lock()
        self._refresh_lock = threading.Lock()
        self._cached_for: tuple[int, tuple[str, ...]] | None = None
        self._cached: list[Shard] = []
        # Reads a key wherever the cluster now serves it (following MOVED/ASK), for batch reads
        # that met a slot migration.
        self.reroute = client.get if self.is_cluster else None

    def known_addresses(self) -> list[tuple[str, int]]:
        """(host, port) of every node the cluster client knows, without asking the store (none for a
        standalone client)."""
        manager = getattr(self.client, "nodes_manager", None)
        if manager is None:
            return []
        return [(node.host, int(node.port)) for node in list(manager.nodes_cache.values())]

    # ----------------------------------------------------------------- shards

    def shards(self) -> list[Shard]:
        """Primaries sorted by their first slot (one shard for a standalone server)."""
        if not isinstance(self.client, RedisCluster):
            kwargs = self.client.connection_pool.connection_kwargs
            address = f"{kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}"
            return [Shard(0, address, self.client)]
        manager = self.client.nodes_manager
        slots_cache = manager.slots_cache
        # The slot map is replaced wholesale on every refresh; recomputing 16384 entries per page
        # would cost about a millisecond, so the result is kept until the map changes.
        marker = (id(slots_cache), tuple(sorted(n.name for n in self.client.get_primaries())))
        with self._cache_lock:
            # A MOVED reply patches the map in place, so also check each shard's first slot.
            if marker == self._cached_for and all(
                (owners := slots_cache.get(s.slot_start)) and owners[0] is not None and owners[0].name == s.address
                for s in self._cached
            ):
                return self._cached
        ranges: dict[str, list[list[int]]] = {}
        nodes = {}
        for slot in range(SLOTS):
            owners = slots_cache.get(slot)
            if not owners:
                continue
            node = owners[0]
            nodes[node.name] = node
            node_ranges = ranges.setdefault(node.name, [])
            if node_ranges and node_ranges[-1][1] == slot - 1:
                node_ranges[-1][1] = slot
            else:
                node_ranges.append([slot, slot])
        shards = [
            Shard(
                slot_start=node_ranges[0][0],
                address=name,
                client=self.client.get_redis_connection(nodes[name]),
                slot_ranges=tuple((a, b) for a, b in node_ranges),
            )
            for name, node_ranges in ranges.items()
        ]
        shards.sort(key=lambda s: s.slot_start)
        with self._cache_lock:
            self._cached_for, self._cached = marker, shards
        return shards

    def shard_serving(self, slot_start: int) -> Shard | None:
        """The primary now serving ``slot_start``, or the first one after it."""
        for shard in self.shards():
            if any(a <= slot_start <= b for a, b in shard.slot_ranges) or shard.slot_start >= slot_start:
                return shard
        return None

    def refresh(self) -> None:
        """Re-reads the slot map, e.g. after a primary failed and a replica took over."""
        if isinstance(self.client, RedisCluster):
            # One refresh at a time: when no node answers, a refresh costs a socket timeout per node,
            # and threads queueing behind each other for redis-py's lock would multiply that.
            if not self._refresh_lock.acquire(blocking=False):
                return
            try:
                self.client.nodes_manager.initialize()
            except Exception:  # noqa: BLE001 - the cluster may still be electing; the next attempt refreshes again
                pass
            finally:
                self._refresh_lock.release()

    # ----------------------------------------------------------------- running work

    def call_on_shard(self, shard: Shard, fn: Callable[[Shard], T]) -> T:
        """fn(shard), retried on the primary that serves the shard's slots after a failover."""
        deadline = time.monotonic() + _RETRY_BUDGET_S
        for delay in _RETRY_DELAYS + (None,):
            try:
                return fn(shard)
            except FAILOVER_ERRORS:
                if delay is None or time.monotonic() + delay > deadline:
                    raise
                time.sleep(delay)
                self.refresh()
                shard = self.shard_serving(shard.slot_start) or shard
        raise AssertionError("unreachable: the last attempt returns or raises")

    def map_shards(self, fn: Callable[[Shard], T], shards: list[Shard] | None = None) -> list[T]:
        """fn on every primary in parallel (in shard order); no round trip per record, ever."""
        shards = self.shards() if shards is None else shards
        if len(shards) == 1:
            return [self.call_on_shard(shards[0], fn)]
        futures = [self._pool().submit(self.call_on_shard, shard, fn) for shard in shards]
        return [f.result() for f in futures]

    def _pool(self) -> ThreadPoolExecutor:
        with self._executor_lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(max_workers=32, thread_name_prefix="storage-shard")
            return self._executor


def _readonly_on_connect(connection) -> None:
    """A replica's connection: READONLY, so that it answers reads of its own slots."""
    connection.on_connect()
    connection.send_command("READONLY")
    if connection.read_response() not in (b"OK", "OK"):
        raise redis.exceptions.ResponseError("READONLY refused")


class ReplicaTopology(Topology):
    """The same shards, each read on one of its replicas (a READONLY connection) when the cluster
    has one, on its primary otherwise: whole-store reads (counts, checks, walks) leave the primaries,
    which the ate server needs, alone. A replica that fails a step hands it to its primary."""

    def __init__(self, base: Topology) -> None:
        super().__init__(base.client, base._executor)
        self.base = base
        self._replicas: dict[str, redis.Redis] = {}
        self._replicas_lock = threading.Lock()
        self._looked_for_replicas_at = -REPLICA_LOOK_EVERY_S

    def shards(self) -> list[Shard]:
        primaries = self.base.shards()
        client = self.client
        if not isinstance(client, RedisCluster):
            return primaries
        slots_cache = client.nodes_manager.slots_cache
        if not all(self._replicas_of(slots_cache, shard) for shard in primaries):
            # The store leaves a replica out of its slot map until it has synced once: a map read
            # before then (a cluster just started) would keep whole-store reads on the primaries.
            now = time.monotonic()
            if now - self._looked_for_replicas_at >= REPLICA_LOOK_EVERY_S:
                self._looked_for_replicas_at = now
                self.base.refresh()
                primaries = self.base.shards()
                slots_cache = client.nodes_manager.slots_cache
        out = []
        for shard in primaries:
            replicas = self._replicas_of(slots_cache, shard)
            if not replicas:
                out.append(shard)
                continue
            node = replicas[shard.slot_start % len(replicas)]
            out.append(Shard(shard.slot_start, node.name, self._replica_client(node), shard.slot_ranges))
        return out

    @staticmethod
    def _replicas_of(slots_cache, shard: Shard) -> list:
        owners = slots_cache.get(shard.slot_start) or []
        return [n for n in owners[1:] if getattr(n, "server_type", None) == "replica"]

    def _replica_client(self, node) -> redis.Redis:
        with self._replicas_lock:
            client = self._replicas.get(node.name)
            if client is None:
                assert isinstance(self.client, RedisCluster)  # shards() names replicas only then
                kwargs = dict(self.client.nodes_manager.connection_kwargs)
                kwargs.pop("oss_cluster_maint_notifications_handler", None)
                kwargs["redis_connect_func"] = _readonly_on_connect
                client = self._replicas[node.name] = redis.Redis(host=node.host, port=int(node.port), **kwargs)
            return client

    def is_replica(self, shard: Shard) -> bool:
        return any(shard.address == name for name in self._replicas)

    def call_on_shard(self, shard: Shard, fn: Callable[[Shard], T]) -> T:
        if not self.is_replica(shard):
            return self.base.call_on_shard(shard, fn)
        try:
            return fn(shard)
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, *FAILOVER_ERRORS):
            primary = self.base.shard_serving(shard.slot_start) or shard
            return self.base.call_on_shard(primary, fn)

    def refresh(self) -> None:
        self.base.refresh()

    def close(self) -> None:
        with self._replicas_lock:
            clients, self._replicas = list(self._replicas.values()), {}
        for client in clients:
            client.close()
