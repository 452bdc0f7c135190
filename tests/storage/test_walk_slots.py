"""The walk's step over hash slots (storage/matches.py, storage.node_reads.STEP_KEYS_LUA): the keys
a node holds in any slot, big slots from hash tags, a slot half migrated, keys that are not UTF-8,
and the walk's MATCH said as a Lua pattern; each against the walk from the client (SCAN + GET)."""

from __future__ import annotations

import pytest

from storage.ateapi_pb2 import Actor, Worker
from storage.codec import ACTOR_CODEC, WORKER_CODEC
from storage.matches import FullWalk, actor_walk, worker_walk
from storage.node_reads import SLOT_KEYS_IN_STEP, lua_key_pattern
from storage.scanning import actor_filter, worker_filter
from tests.conftest import flush_primaries

S = Actor.Status
TAGGED = SLOT_KEYS_IN_STEP * 2 + 300  # records sharing one slot: more than a step takes


def running(actor_id: str, pod: str, ip: str = "10.9.0.1") -> bytes:
    actor = Actor(
        actor_id=actor_id,
        version=1,
        status=S.STATUS_RUNNING,
        ateom_pod_namespace="team-t",
        ateom_pod_name=pod,
        ateom_pod_ip=ip,
    )
    return ACTOR_CODEC.encode_json(actor)


def seed(client) -> None:
    pipe = client.pipeline(transaction=False)
    for i in range(3000):
        pipe.set(f"actor:s{i}", running(f"s{i}", f"pod-{i % 50}"))
    for i in range(TAGGED):
        pipe.set(f"actor:{{tag}}{i}", running(f"{{tag}}{i}", f"pod-{i % 50}"))
    for i in range(500):
        worker = Worker(worker_namespace="{tag}", worker_pool="p", worker_pod=f"w{i}", ip="10.8.0.1", version=1)
        pipe.set(f"worker:{{tag}}:p:w{i}", WORKER_CODEC.encode_json(worker))
    pipe.execute()
    # Not UTF-8, naming itself with its key's bytes escaped (tests/storage/test_non_utf8_keys.py).
    client.set(b"actor:\xffrz", b'{"actorId":"\\\\xffrz","ateomPodNamespace":"team-t","ateomPodName":"pod-7"}')
    client.set(b"actor:\xfe", b'{"ateomPodNamespace":"team-t","ateomPodName":"pod-7"}')  # corrupt
    client.hset("actor:{tag}hash", "a", "b")  # not a string


def both(topology, wanted, step_count: int):
    scripted = FullWalk(topology, wanted, step_count=step_count).run()
    from_client = FullWalk(topology, wanted, use_script=False, step_count=step_count).run()
    return scripted, from_client


FILTERS = [
    actor_walk(pod_namespace="team-t", pod_name="pod-7"),
    actor_walk(pod_ip="10.9.0.1", id_contains="{tag}1"),
    actor_walk(pod_name="pod-7"),
    worker_walk(namespace="{tag}", pool="p", ip="10.8.0.1"),
    worker_walk(pool="p", ip="10.8.0.1"),
]


@pytest.mark.parametrize("wanted", FILTERS, ids=lambda w: w.match)
@pytest.mark.parametrize("step_count", [50, 10_000])
def test_the_slot_walk_finds_what_the_client_walk_finds(store, wanted, step_count):
    seed(store.client)
    scripted, from_client = both(store.topology, wanted, step_count)
    assert scripted.server_side and not from_client.server_side
    assert scripted.keys == from_client.keys and scripted.keys
    assert sorted(c.key for c in scripted.corrupt) == sorted(c.key for c in from_client.corrupt)
    assert scripted.scanned == from_client.scanned


def test_the_slot_walk_on_the_replicas(store):
    seed(store.client)
    for node in store.client.get_primaries():
        assert store.client.get_redis_connection(node).execute_command("WAIT", 1, 10_000) >= 1
    wanted = FILTERS[0]
    expected = FullWalk(store.topology, wanted, use_script=False).run().keys
    assert len(expected) > 100
    for step_count in (50, 2000):
        assert FullWalk(store.on_replicas().topology, wanted, step_count=step_count).run().keys == expected


def test_a_slot_half_migrated_is_walked_once(store):
    client = store.client
    seed(client)
    keys = [f"actor:{{tag}}{i}".encode() for i in range(TAGGED)]
    slot = client.keyslot(keys[0])
    source = client.nodes_manager.get_node_from_slot(slot)
    target = next(n for n in client.get_primaries() if n.name != source.name)
    src, dst = client.get_redis_connection(source), client.get_redis_connection(target)
    wanted = FILTERS[0]
    expected = FullWalk(store.topology, wanted, use_script=False).run().keys
    try:
        dst.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", src.execute_command("CLUSTER", "MYID"))
        src.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", dst.execute_command("CLUSTER", "MYID"))
        src.execute_command("MIGRATE", target.host, target.port, "", 0, 5000, "KEYS", *keys[: TAGGED // 2])
        for step_count in (50, 10_000):
            assert FullWalk(store.topology, wanted, step_count=step_count).run().keys == expected
    finally:
        for conn in (src, dst):
            conn.execute_command("CLUSTER", "SETSLOT", slot, "STABLE")
        flush_primaries(client)


GLOB_KEYS = [
    b"actor:a",
    b"actor:",
    b"actor:a*b",
    b"actor:a?b",
    b"actor:a[b]",
    b"actor:a%b",
    b"actor:a.b",
    b"actor:a-b",
    b"actor:a\\b",
    b"actor:\xff\xfe",
    b"actor:a\nb",
    b"actors:a",
    b"xactor:a",
    b"worker:n:p:w",
    b"worker:n*:p:w",
    b"worker:n:p",
    b"worker:n.:p%:w",
    b"worker:\xc3\xa9:p:w",
]
GLOBS = [
    actor_filter().match,
    actor_filter(id_contains="a*b").match,
    actor_filter(id_contains="a?b").match,
    actor_filter(id_contains="[b]").match,
    actor_filter(id_contains="%").match,
    actor_filter(id_contains=".").match,
    actor_filter(id_contains="\\").match,
    actor_filter(id_contains="\udcff\udcfe").match,
    worker_filter(namespace="n", pool="p").match,
    worker_filter(namespace="n*").match,
    worker_filter(pool="p%").match,
    worker_filter(namespace="é").match,
    "actor:a?b",
    "actor:*",
]


def test_the_match_as_a_lua_pattern_keeps_what_redis_matches(standalone_client):
    for key in GLOB_KEYS:
        standalone_client.set(key, b"x")
    for glob in GLOBS:
        pattern = lua_key_pattern(glob)
        assert pattern is not None, glob
        match = glob.encode("utf-8", "surrogateescape")
        by_redis = set(standalone_client.scan_iter(match=match, count=1000))
        by_lua = {
            k for k in GLOB_KEYS if standalone_client.eval("return string.find(ARGV[1], ARGV[2]) ~= nil", 0, k, pattern)
        }
        assert by_lua == by_redis, glob
    assert lua_key_pattern("actor:[ab]") is None


def test_a_multi_megabyte_value_stays_out_of_the_step(store):
    """A matching record of 8 MB beside ordinary ones in its slot: the step reads its length, not
    it (the script's memory stays within a fraction of it), and the client reads and confirms it."""
    from storage import matches
    from tests.storage.test_counting import BIG, lua_growth

    client = store.client
    big = Actor(actor_id="{hostile}big", status=S.STATUS_RUNNING, actor_template_namespace="team-big")
    big.last_snapshot = "s" * BIG
    client.set("actor:{hostile}big", ACTOR_CODEC.encode_json(big))
    for i in range(20):
        client.set(f"actor:{{hostile}}{i}", running(f"{{hostile}}{i}", f"pod-{i}"))
    wanted = actor_walk(template_namespace="team-big")
    slot = client.keyslot("actor:{hostile}big")
    conn = client.get_redis_connection(client.nodes_manager.get_node_from_slot(slot))
    walk = FullWalk(store.topology, wanted, step_count=1)
    replies = []
    grew = lua_growth(conn, lambda: replies.append(conn.eval(matches._FILTER_STEP, 0, *walk._args(slot, "slots"))))
    assert grew < BIG // 4
    # Keys examined, then (key, 1): the one key the client reads itself.
    assert replies[0][2:] == [21, b"actor:{hostile}big", 1]
    scripted, from_client = both(store.topology, wanted, 50)
    assert scripted.keys == from_client.keys == ["actor:{hostile}big"]
    assert scripted.server_side and scripted.corrupt == []
