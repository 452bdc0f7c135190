"""A single Redis node (redis.Redis) works the same as the cluster."""

from __future__ import annotations

import pytest

from storage import FailedPrecondition, NotFound, Persistence, VersionConflict, connect
from storage.ateapi_pb2 import Actor, Worker
from tests.conftest import STANDALONE_URL


def test_standalone_single_node_supports_the_whole_api(standalone_client):
    p = Persistence(standalone_client)
    p.create_actor(Actor(actor_id="a1", status=Actor.STATUS_RUNNING))
    p.create_worker(Worker(worker_namespace="n", worker_pool="p", worker_pod="w"))
    assert sorted(standalone_client.keys("*")) == [b"actor:a1", b"worker:n:p:w"]
    actor = p.get_actor("a1")
    with pytest.raises(FailedPrecondition):
        p.delete_actor("a1")
    actor.status = Actor.STATUS_SUSPENDED
    p.update_actor(actor, 1)
    with pytest.raises(VersionConflict):
        p.update_actor(actor, 1)
    assert [a.version for a in p.list_actors()] == [2]
    assert [w.worker_pod for w in p.list_workers()] == ["w"]
    page = p.scan_actors(limit=10)
    assert [a.actor_id for a in page.records] == ["a1"] and page.next_cursor is None
    assert p.acquire_lock("lock:actor:a1", "t", 5) and not p.acquire_lock("lock:actor:a1", "u", 5)
    p.release_lock("lock:actor:a1", "t")
    p.delete_actor("a1")
    with pytest.raises(NotFound):
        p.get_actor("a1")
    counts = p.debug_clear_all()
    assert [c.workers for c in counts] == [1]
    assert standalone_client.dbsize() == 0
    assert p.cluster_overview().mode == "standalone"
    assert p.cluster_state() == "ok" and p.ping()


def test_connect_detects_a_standalone_server(standalone_client):
    client = connect(STANDALONE_URL)
    assert type(client).__name__ == "Redis"
    assert client.ping()
