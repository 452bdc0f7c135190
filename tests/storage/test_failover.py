"""A primary dies (SIGKILL), its replica takes over, and the same Persistence keeps working.

The killed node is then restarted exactly as scripts/cluster starts it, so that it rejoins as a
replica and the cluster is whole again for the tests that follow. Everything waits by polling the
cluster's own state, never by sleeping a guessed amount.
"""

from __future__ import annotations

import os
import signal

import pytest
import redis

from storage import Persistence
from storage.ateapi_pb2 import Actor, Worker
from tests.cluster_faults import (  # shared with tests/reliability
    cluster_info,
    cluster_view,
    cluster_whole,
    node_client,
    poll,
    start_node_like_the_script,
)

pytestmark = pytest.mark.slow


def test_primary_killed_replica_promoted_and_operations_continue(store, cluster_client, cluster_dir, cluster_port):
    for i in range(60):
        store.create_actor(Actor(actor_id=f"a{i}", status=Actor.STATUS_SUSPENDED))
    store.create_worker(Worker(worker_namespace="ns", worker_pool="p", worker_pod="w1"))

    victim = cluster_client.get_node_from_key("actor:a0")
    victim_port = victim.port
    primary = node_client(victim_port)
    # Replication is asynchronous: make sure the replica has everything before pulling the plug.
    assert primary.execute_command("WAIT", 1, 5000) >= 1
    victim_id = primary.execute_command("CLUSTER MYID").decode()
    witness_port = next(
        s.client.connection_pool.connection_kwargs["port"] for s in store.topology.shards() if s.address != victim.name
    )
    pid = int((cluster_dir / str(victim_port) / "redis.pid").read_text())

    os.kill(pid, signal.SIGKILL)
    try:
        slot = cluster_client.keyslot("actor:a0")

        def promoted():
            info = cluster_info(witness_port)
            if info["cluster_state"] != "ok":
                return False
            for node in cluster_view(witness_port).values():
                serves = any(int(r[0]) <= slot <= int(r[-1]) for r in node["slots"])
                if serves and node["node_id"] != victim_id and "fail" not in node["flags"]:
                    return True
            return False

        poll(promoted, "the replica of the killed primary to take over")

        # Same Persistence, no restart: the client finds the new primary on its own.
        actor = store.get_actor("a0")
        assert actor.version == 1
        actor.status = Actor.STATUS_RUNNING
        store.update_actor(actor, 1)  # compare-and-set script on the promoted node
        assert store.get_actor("a0").status == Actor.STATUS_RUNNING
        listed = [a.actor_id for a in store.list_actors()]
        assert sorted(listed) == sorted(f"a{i}" for i in range(60))
        page_ids, cursor = [], None
        while True:
            page = store.scan_actors(cursor=cursor, limit=7)
            page_ids.extend(a.actor_id for a in page.records)
            cursor = page.next_cursor
            if cursor is None:
                break
        assert sorted(page_ids) == sorted(listed)
        store.create_actor(Actor(actor_id="after-failover"))
        assert store.get_actor("after-failover").version == 1
        assert store.cluster_state() == "ok"
    finally:
        # Bring the node back as a replica of the new primary and wait until the cluster is whole.
        start_node_like_the_script(cluster_dir, victim_port)
        poll(lambda: cluster_whole(witness_port), "the restarted node to rejoin as a replica")

    assert "slave" in cluster_view(victim_port)[f"127.0.0.1:{victim_port}"]["flags"] or any(
        n["node_id"] == victim_id and "slave" in n["flags"] for n in cluster_view(witness_port).values()
    )
    overview = store.cluster_overview()
    assert overview.slots_covered == 16384 and len([n for n in overview.nodes if n.role == "primary"]) == 3


def test_persistence_after_failover_used_by_a_fresh_client(store, redis_url):
    # The store is whole again: a brand-new Persistence sees all three primaries.
    fresh = Persistence(redis.cluster.RedisCluster.from_url(redis_url))
    assert len(fresh.topology.shards()) == 3
    fresh.create_actor(Actor(actor_id="x"))
    assert fresh.get_actor("x").version == 1
