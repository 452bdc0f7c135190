"""Whole-store reads on the replicas: counts and filtered walks read the replicas (READONLY
connections, the read-only filter script) and leave the primaries alone; the same figures as on
the primaries."""

import time

from storage.ateapi_pb2 import Actor
from storage.codec import ACTOR_CODEC
from storage.matches import FullWalk, actor_walk

S = Actor.Status


def seed(store, n):
    pipe = store.client.pipeline(transaction=False)
    for i in range(n):
        actor = Actor(actor_id=f"r{i:05d}", version=1, status=[S.STATUS_RUNNING, S.STATUS_SUSPENDED][i % 2])
        pipe.set(f"actor:{actor.actor_id}", ACTOR_CODEC.encode_json(actor))
    pipe.execute()
    for node in store.client.get_primaries():  # every replica has the records before we read
        assert store.client.get_redis_connection(node).execute_command("WAIT", 1, 10_000) >= 1


def scans(store, role):
    nodes = store.client.get_primaries() if role == "primary" else store.client.get_replicas()
    total = 0
    for node in nodes:
        stats = store.client.get_redis_connection(node).info("commandstats")
        total += sum(stats.get(k, {}).get("calls", 0) for k in ("cmdstat_scan", "cmdstat_evalsha", "cmdstat_eval"))
    return total


def reset_stats(store):
    for node in store.client.get_primaries() + store.client.get_replicas():
        store.client.get_redis_connection(node).config_resetstat()


def every_shard_has_a_known_replica(store) -> None:
    """A cluster just started may not yet announce its replicas in CLUSTER SLOTS (gossip): until
    it does, the client knows none for a shard and its whole-store reads rightly go to the primary."""
    deadline = time.monotonic() + 30
    while len(store.client.get_replicas()) < len(store.client.get_primaries()):
        assert time.monotonic() < deadline, "the cluster never announced a replica for every shard"
        time.sleep(0.1)  # a poll interval
        store.client.nodes_manager.initialize()


def test_counts_and_walks_read_the_replicas_not_the_primaries(store):
    every_shard_has_a_known_replica(store)
    seed(store, 3000)
    on_primaries = store.store_stats()
    reset_stats(store)
    replicas = store.on_replicas()
    counted = replicas.store_stats()
    assert counted.actors_by_status == on_primaries.actors_by_status
    assert counted.actors_by_status["STATUS_RUNNING"] == 1500
    result = FullWalk(replicas.topology, actor_walk(status=S.STATUS_SUSPENDED)).run()
    assert result.matched == 1500 and result.server_side
    assert scans(store, "primary") == 0 and scans(store, "replica") > 0


def test_without_replicas_the_primaries_are_read(standalone_client):
    from storage import Persistence

    store = Persistence(standalone_client)
    standalone_client.set("actor:s1", ACTOR_CODEC.encode_json(Actor(actor_id="s1", version=1)))
    assert store.on_replicas().store_stats().actors_by_status["STATUS_UNSPECIFIED"] == 1


def test_a_slot_map_read_before_the_replicas_synced_is_read_again(store, redis_url):
    """Redis leaves a replica out of CLUSTER SLOTS until it has synced: a client that read the map
    then (a cluster just started) would send whole-store reads to the primaries for ever."""
    from storage import Persistence, connect

    every_shard_has_a_known_replica(store)
    fresh = Persistence(connect(redis_url))
    try:
        slots_cache = fresh.client.nodes_manager.slots_cache
        for slot, owners in list(slots_cache.items()):
            slots_cache[slot] = owners[:1]  # the map as it was before the replicas synced
        replicas = {n.name for n in fresh.client.get_replicas()}
        shards = fresh.on_replicas().topology.shards()
        assert {s.address for s in shards} <= replicas and len(shards) == len(fresh.client.get_primaries())
    finally:
        fresh.close()
