"""Raw records (detail pages, export/import) and the cluster/statistics views, on the real cluster."""

from __future__ import annotations

import json

import pytest

from storage import (
    ClusterOverview,
    CorruptRecord,
    NotFound,
    RawRecord,
    ShardCounts,
    UnreadableByServer,
    key_slot,
)
from storage.ateapi_pb2 import Actor, Worker

S = Actor.Status


# ------------------------------------------------------------------ raw records


def test_get_raw_describes_the_stored_value(store):
    store.create_actor(Actor(actor_id="a1", status=S.STATUS_SUSPENDED))
    raw = store.get_raw("actor:a1")
    assert raw == RawRecord(
        key="actor:a1",
        value=b'{"actorId":"a1","version":"1","status":"STATUS_SUSPENDED"}',
        encoding="json",
        ttl_ms=None,
        slot=key_slot("actor:a1"),
        node=store.client.get_node_from_key("actor:a1").name,
    )
    store.acquire_lock("lock:actor:a1", "tok", 100)
    lock = store.get_raw("lock:actor:a1")
    assert lock.value == b"tok" and 0 < lock.ttl_ms <= 100_000 and lock.encoding == "binary"
    with pytest.raises(NotFound):
        store.get_raw("actor:none")


def test_pretty_json_of_json_keeps_unknown_keys(store):
    store.client.set("actor:a1", b'{"actorId":"a1","version":"2","future":[1,2]}')
    text = store.pretty_json(store.get_raw("actor:a1"))
    assert json.loads(text) == {"actorId": "a1", "version": "2", "future": [1, 2]}
    assert "\n  " in text


def test_pretty_json_shows_numbers_as_stored(store):
    # Through a float, 1234567890123456789e0 would show as 1.2345678901234568e+18 (issue 22).
    store.client.set("actor:a1", b'{"actorId":"a1","version":1234567890123456789e0,"x":[-0,1.50,1E400]}')
    text = store.pretty_json(store.get_raw("actor:a1"))
    assert '"version": 1234567890123456789e0' in text and "-0,\n" in text and "1.50" in text and "1E400" in text
    # Go reads `1e` before a delimiter (version 1); Python's JSON does not: the text as stored.
    store.client.set("actor:a2", b'{"actorId":"a2","version":1e}')
    assert store.pretty_json(store.get_raw("actor:a2")) == '{"actorId":"a2","version":1e}'
    assert store.get_actor("a2").version == 1


def test_pretty_json_of_binary_lists_unknown_fields(store):
    value = Worker(worker_namespace="n", worker_pool="p", worker_pod="w", version=3).SerializeToString()
    store.client.set("worker:n:p:w", value + b"\x98\x06\x07")
    raw = store.get_raw("worker:n:p:w")
    assert raw.encoding == "binary"
    shown = json.loads(store.pretty_json(raw))
    assert shown["workerPod"] == "w" and shown["version"] == "3"
    assert shown["(unknown fields)"] == [{"number": 99, "wireType": "varint", "value": 7}]


def test_pretty_json_of_a_corrupt_record(store):
    store.client.set("actor:bad", b"\xff\xff\xff")
    with pytest.raises(CorruptRecord) as e:
        store.pretty_json(store.get_raw("actor:bad"))
    assert e.value.key == "actor:bad"


def test_iter_raw_streams_every_record_of_the_prefixes_once(store):
    for i in range(250):
        store.create_actor(Actor(actor_id=f"a{i}"))
    for i in range(40):
        store.create_worker(Worker(worker_namespace="n", worker_pool="p", worker_pod=f"w{i}"))
    store.acquire_lock("lock:actor:a1", "t", 60)
    store.client.set("unrelated", "x")
    pairs = list(store.iter_raw(batch=50))
    keys = [k for k, _ in pairs]
    assert len(keys) == 290 and len(set(keys)) == 290
    assert dict(pairs)["actor:a7"] == store.client.get("actor:a7")
    assert sorted(k for k, _ in store.iter_raw(prefixes=("lock:",))) == ["lock:actor:a1"]
    assert len(list(store.iter_raw(prefixes=("worker:",)))) == 40


def test_export_then_restore_gives_back_every_byte(store):
    store.create_actor(Actor(actor_id="a1", status=S.STATUS_RUNNING))
    store.client.set("actor:bin", Actor(actor_id="bin", version=4).SerializeToString() + b"\xa2\x06\x01z")
    store.create_worker(Worker(worker_namespace="n", worker_pool="p", worker_pod="w"))
    exported = dict(store.iter_raw())
    store.debug_clear_all()
    # The binary record is one the ate server cannot read: refused unless allowed, as import does.
    with pytest.raises(UnreadableByServer, match="actor:bin: the ate server cannot read"):
        store.restore_raw("actor:bin", exported["actor:bin"])
    assert store.client.get("actor:bin") is None
    assert {store.restore_raw(k, v, allow_unreadable=True) for k, v in exported.items()} == {"created"}
    assert dict(store.iter_raw()) == exported


def test_restore_raw_skips_or_overwrites_existing_records(store):
    store.create_actor(Actor(actor_id="a1"))
    newer = b'{"actorId":"a1","version":"5","status":"STATUS_RUNNING"}'
    assert store.restore_raw("actor:a1", newer) == "skipped"
    assert store.restore_raw("actor:a1", newer, overwrite_version=3) == "skipped"  # stored is v1
    assert store.get_actor("a1").version == 1
    assert store.restore_raw("actor:a1", newer, overwrite_version=1) == "overwritten"
    assert store.client.get("actor:a1") == newer


def test_restore_raw_refuses_corrupt_records(store):
    with pytest.raises(CorruptRecord):
        store.restore_raw("actor:a1", b'{"actorId":"someone-else"}')
    with pytest.raises(CorruptRecord):
        store.restore_raw("worker:n:p:w", b"\xff\xff")
    assert store.client.get("actor:a1") is None
    assert store.restore_raw("lock:actor:a1", b"any token") == "created"


# ------------------------------------------------------------------ cluster and statistics


def test_cluster_overview(store):
    store.create_actor(Actor(actor_id="a1"))
    overview = store.cluster_overview()
    assert isinstance(overview, ClusterOverview)
    assert (overview.mode, overview.state, overview.slots_covered) == ("cluster", "ok", 16384)
    primaries = [n for n in overview.nodes if n.role == "primary"]
    replicas = [n for n in overview.nodes if n.role == "replica"]
    assert len(primaries) == 3 and len(replicas) == 3
    assert all(n.healthy for n in overview.nodes)
    assert {r.primary_id for r in replicas} == {p.node_id for p in primaries}
    assert sum(b - a + 1 for p in primaries for a, b in p.slots) == 16384
    assert sum(p.keys for p in primaries) == 1
    assert all(n.used_memory > 0 for n in overview.nodes)


def test_shard_counts_and_clear_ate_records(store):
    for i in range(20):
        store.create_actor(Actor(actor_id=f"a{i}"))
    store.create_worker(Worker(worker_namespace="n", worker_pool="p", worker_pod="w"))
    store.acquire_lock("lock:actor:a1", "t", 60)
    store.client.set("keep-me", "x")
    counts = store.shard_counts()
    assert [c.node for c in counts] == [s.address for s in store.topology.shards()]
    assert all(isinstance(c, ShardCounts) for c in counts)
    totals = [sum(getattr(c, f) for c in counts) for f in ("actors", "workers", "locks", "other")]
    assert totals == [20, 1, 1, 1]
    removed = store.clear_ate_records()
    assert [sum(getattr(c, f) for c in removed) for f in ("actors", "workers", "locks")] == [20, 1, 1]
    assert store.client.get("keep-me") == b"x"
    assert [sum(getattr(c, f) for c in store.shard_counts()) for f in ("actors", "workers", "locks", "other")] == [
        0,
        0,
        0,
        1,
    ]


def test_store_stats(store):
    for i in range(30):
        store.create_actor(
            Actor(actor_id=f"a{i}", status=[S.STATUS_RUNNING, S.STATUS_SUSPENDED, S.STATUS_RESUMING][i % 3])
        )
    store.client.set("actor:broken", b"\x00")
    for i in range(10):
        store.create_worker(
            Worker(worker_namespace="n", worker_pool=f"p{i % 2}", worker_pod=f"w{i}", actor_id="a1" if i < 3 else "")
        )
    store.acquire_lock("lock:actor:a1", "t", 60)
    stats = store.store_stats()
    assert stats.actors_by_status["STATUS_RUNNING"] == 10
    assert stats.actors_by_status["STATUS_SUSPENDED"] == 10
    assert stats.actors_by_status["STATUS_RESUMING"] == 10
    assert stats.actors_by_status["STATUS_UNSPECIFIED"] == 0
    assert stats.actors_by_status["CORRUPT"] == 1
    assert stats.workers_by_pool == {("n", "p0"): {"free": 3, "assigned": 2}, ("n", "p1"): {"free": 4, "assigned": 1}}
    assert stats.locks == 1 and stats.keys_scanned == 42
    assert stats.duration_s >= 0 and stats.computed_at > 0


def test_readiness_and_address(store, redis_url):
    assert store.ping() is True
    assert store.cluster_state() == "ok"
    assert store.address.startswith("redis://127.0.0.1:")


def test_get_lock_without_expiry(store):
    store.client.set("lock:manual", "holder")
    lock = store.get_lock("lock:manual")
    assert (lock.key, lock.token, lock.ttl_ms) == ("lock:manual", "holder", None)
