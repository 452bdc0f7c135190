"""The overview's count on the nodes (storage/counting.py): the same figures as the client-side
count (storage.cluster.store_stats, which decodes every record) on any store, hostile ones included.

The Lua step tallies only the records it can prove both atedash and the Go server read; everything
else goes to the client's judgment. Each planted value is counted alone (per record, so that two
mistakes cannot cancel out) and all of them together among 10k ordinary records, on the cluster's
primaries and on its replicas.
"""

from __future__ import annotations

import random
from dataclasses import asdict

import pytest
from redis.cluster import RedisCluster

from storage import Persistence, cluster, counting
from storage.ateapi_pb2 import Actor, Worker
from storage.codec import ACTOR_CODEC, WORKER_CODEC
from tests.conftest import flush_primaries

S = Actor.Status


def figures(stats) -> dict:
    out = asdict(stats)
    del out["computed_at"], out["duration_s"]
    return out


def actor_json(actor_id: str, **fields) -> bytes:
    return ACTOR_CODEC.encode_json(Actor(actor_id=actor_id, version=7, **fields))


def worker_json(ns: str, pool: str, pod: str, **fields) -> bytes:
    return WORKER_CODEC.encode_json(Worker(worker_namespace=ns, worker_pool=pool, worker_pod=pod, version=3, **fields))


GOOD_ACTOR = b'{"actorId":"p1","version":"5","actorTemplateNamespace":"ns","status":"STATUS_RUNNING"}'
HUGE = "s" * (counting.MAX_VALUE_BYTES + 10)

# (key, value): every way a stored value can stray from the canonical form, and a few that do not.
PLANTED: list[tuple[bytes, bytes]] = [
    (b"actor:p1", GOOD_ACTOR),
    (b"actor:p2", b'{"actorId":"p2", "version":"5", "status":"STATUS_SUSPENDED"}'),  # Go's ", "
    (b"actor:p3", b'{"actor_id":"p3","version":5,"status":"STATUS_RESUMING"}'),  # proto names, a number
    (b"actor:p4", b"{}"),  # names another key: corrupt, unreadable
    (b"actor:", b"{}"),  # the empty id, at its key
    (b"actor:p5", b'{"actorId":"p5","status":2}'),  # an enum as a number: readable by both
    (b"actor:p6", b'{"actorId":"p6","status":99}'),  # a number no status has
    (b"actor:p7", b'{"actorId":"p7","status":"STATUS_BOGUS"}'),
    (b"actor:p8", b'{"actorId":"p8","version":"abc"}'),
    (b"actor:p9", b'{"actorId":"p9","version":"1234567890123456789"}'),  # 19 digits
    (b"actor:p10", b'{"actorId":"p10","version":"007"}'),
    (b"actor:p11", b'{"actorId":"p11","version":"-0"}'),
    (b"actor:p12", b'{"actorId":"p12","version":123456789012345678}'),
    (b"actor:p13", b'{"actorId":"p13","version":1234567890123456789}'),
    (b"actor:p14", b'{"actorId":"p14","foo":"bar"}'),  # unknown field: atedash reads it, Go does not
    (b"actor:p15", b'{"actorId":"p15","foo":{"a":[1,2]}}'),
    (b"actor:p16", b'{ "actorId": "p16" }'),
    (b"actor:p17", b'{"actorId":"p17","status":null}'),
    (b"actor:p18", b'{"actorId":"p18","actorId":"p18"}'),  # duplicate
    (b"actor:p19", b'{"actorId":"p19","actor_id":"p19"}'),  # the same field twice, two spellings
    (b"actor:p20", b'{"status":"STATUS_RUNNING","actorId":"p20"}'),  # another order: both read it
    (b"actor:p21", b'{"actorId":"p\\u0032\\u0031"}'),  # escapes: names its key
    (b"actor:p22", b'{"actorId":"p22"}x'),
    (b"actor:p23", b'{"actorId":"p23",}'),
    (b"actor:p24", b'{"actorId":"p24","actorTemplateName":"caf\xc3\xa9"}'),  # UTF-8
    (b"actor:p25", b'{"actorId":"p25","actorTemplateName":"bad\xff"}'),  # not UTF-8
    (b"actor:p26", b'{"actorId":"p26","actorTemplateName":"tab\there"}'),  # a control character
    (b"actor:p27", b'{"actorId":"p27","actorTemplateName":"one\x01"}'),  # the skeleton's marker byte
    (b"actor:p28", b'{"actorId":"p28","actorTemplateName":' + b"\x01" + b"}"),
    (b"actor:p29", b'{"actorId":"p29","version":"5"'),  # cut short
    (b"actor:p30", b'{"actorId":"other"}'),  # names another actor
    (b"actor:p31", ACTOR_CODEC.encode_json(Actor(actor_id="p31", status=S.STATUS_RUNNING)).replace(b"{", b"{ ", 1)),
    (b"actor:p32", Actor(actor_id="p32", status=S.STATUS_SUSPENDING).SerializeToString()),  # binary
    (b"actor:p33", b"\x08\x96\x01garbage"),
    (b"actor:p34", b""),
    (b"actor:p35", actor_json("p35", last_snapshot=HUGE)),  # longer than the script reads
    (b"actor:p36", b"{" + b"x" * 3_000_000),  # huge and corrupt
    (b"actor:p37", b'{"actorId":"p37","lastSnapshot":"a,b}c:d\\"e"}'),
    (b"actor:p38", b'{"actorId":"p38","lastSnapshot":"a,b}c:\\":\\"d"}'),
    (b"actor:p39", b'{"actorId":"p39","version":"","status":"STATUS_RUNNING"}'),
    (b"actor:p40", b'{"actorId":"p40","version":"-","status":"STATUS_RUNNING"}'),
    (b"actor:p41", b'{"actorId":"p41","status":"STATUS_RUNNING","status":"STATUS_RUNNING"}'),
    (b"actor:p42", b'{"actorId":"p42","actorTemplateName":5}'),  # a number for a string
    (b"actor:p43", b'{"actorId":"p43","version":"5","":"x"}'),
    (b"actor:p44", b'{"actorId":"p44","version":"5",,"status":"STATUS_RUNNING"}'),
    (b"actor:p45", b'{"actorId":"p45"},{"actorId":"p45"}'),
    (b"actor:a:b", b'{"actorId":"a:b"}'),  # a colon in the id: atedash reads it, Go's list does not
    (b"actor:\xffid", b'{"actorId":"\\u00ffid"}'),  # a key that is not UTF-8
    (b"actor:p46", b'{"actorId":"p46","status":"STATUS_RUNNING"}\n'),
    (b"actor:p47", b'{"actorId":"p47","status":"STATUS_RUNNING" }'),
    (b"actor:p48", b'{"actorId":"p48","status":"STATUS_RUNNING",  "version":"1"}'),
    (b"actor:p49", b'{"actorId":"p49","lastSnapshot":"\\u0000"}'),
    (b"actor:p50", b'{"actorId":"p50","lastSnapshot":"\\ud800"}'),
    (b"actor:p51", b'{"actorId":"p51","version":"5","version":"6"}'),
    (b"actor:p52", b'{"actorId":"p52","status":"STATUS_RUNNING","version":"5"}'),  # out of field order
    (b"actor:p53", b'{"actorId":"p53","status":"status_running"}'),
    (b"actor:p54", b'{"actorId":"p54","version":"9999999999999999999"}'),  # past int64
    (b"actor:p55", b'{"actorId":"p55","version":"-999999999999999999"}'),  # 18 digits, negative
    (b"worker:n1:pool-a:w1", worker_json("n1", "pool-a", "w1", actor_id="p1", ip="10.0.0.1")),
    (b"worker:n1:pool-a:w2", worker_json("n1", "pool-a", "w2")),
    (b"worker:n1:pool-a:w3", b'{"workerNamespace":"n1","workerPool":"pool-a","workerPod":"w3","actorId":""}'),
    (b"worker:n1:pool-b:w4", worker_json("n1", "pool-a", "w4")),  # names another pool
    (b"worker:n1:pool-a:w5:x", worker_json("n1", "pool-a", "w5:x", actor_id="p2")),  # a colon too many
    (b"worker:n1:pool-a", b'{"workerNamespace":"n1","workerPool":"pool-a"}'),  # a colon too few
    (b"worker:n2::w6", b'{"workerNamespace":"n2","workerPod":"w6"}'),  # the empty pool
    (b"worker:n2:p:w7", b'{"workerNamespace":"n2","workerPool":"p","workerPod":"w7","bogus":1}'),
    (b"worker:n2:p:w8", b'{"worker_namespace":"n2","worker_pool":"p","worker_pod":"w8","actor_id":"x"}'),
    (b"worker:n2:p:w9", b'{"workerNamespace":"n2","workerPool":"p","workerPod":"w9","version":"x"}'),
    (b"worker:n2:p:w10", b"not json at all"),
    (b"worker:n2:p:w11", Worker(worker_namespace="n2", worker_pool="p", worker_pod="w11").SerializeToString()),
    (b"worker:n2:p:w12", b'{"workerNamespace":"n2","workerPool":"p","workerPod":"w12","actorId":"a\\u0062"}'),
    (b"worker:n2:p:w13", worker_json("n2", "p", "w13", actor_id="q", actor_template=HUGE)),
    (b"worker:n1:pool-a:w15", worker_json("n1", "pool-a", "w-other")),  # names another pod
    (b"worker:n9:pool-a:w16", worker_json("n1", "pool-a", "w16")),  # names another namespace
    (b"worker:n\xc3\xa9:p:w14", '{"workerNamespace":"né","workerPool":"p","workerPod":"w14"}'.encode()),
]


def plant_wrong_types(client) -> None:
    client.hset("actor:hash", "a", "b")  # not a string: both counts call it corrupt
    client.rpush("worker:n3:p:list", "x")
    client.sadd("lock:actor:set", "x")  # a lock is counted by its key alone


def plant_outside(client) -> None:
    """Keys that are no ate record: never counted."""
    for key in (b"atedash:actor:x", b"actors:1", b"Actor:1", b"xactor:1", b"other", b"workers:a:b:c"):
        client.set(key, GOOD_ACTOR)
    client.set("lock:actor:p1", "token")
    client.set("lock:other", "token")


def mutation_bases(actor_id: str) -> list[bytes]:
    return [
        actor_json(actor_id, status=S.STATUS_RUNNING, actor_template_namespace="ns", ateom_pod_ip="10.1.2.3"),
        actor_json(actor_id, status=S.STATUS_SUSPENDED, last_snapshot="snap-1"),
        b'{"actorId":"%s","version":"12","status":"STATUS_RESUMING"}' % actor_id.encode(),
        b'{"actor_id":"%s","version":12,"status":"STATUS_SUSPENDING"}' % actor_id.encode(),
    ]


def mutations(seed: int, n: int) -> list[bytes]:
    """Canonical records with bytes flipped, dropped, doubled or swapped: near misses of the form."""
    rng = random.Random(seed)
    bases = mutation_bases("m")
    alphabet = b'{}[]":,\\ 0123456789-aeSTmu_\x01\x00\xff'
    out = []
    for _ in range(n):
        value = bytearray(rng.choice(bases))
        for _ in range(rng.randint(1, 3)):
            i = rng.randrange(len(value))
            op = rng.randrange(4)
            if op == 0:
                value[i] = rng.choice(alphabet)
            elif op == 1:
                del value[i]
            elif op == 2:
                value.insert(i, rng.choice(alphabet))
            else:
                j = rng.randrange(len(value))
                value[i], value[j] = value[j], value[i]
        out.append(bytes(value))
    return out


def both_counts(store: Persistence) -> tuple[dict, dict, counting.CountDetails]:
    details = counting.CountDetails()
    on_nodes = counting.store_stats(store.topology, 7, details)
    in_client = cluster.store_stats(store.topology)
    return figures(on_nodes), figures(in_client), details


def primers(tag: str) -> list[tuple[bytes, bytes]]:
    """Canonical records of the shapes the planted values stray from (the script matches a value
    against the shapes met earlier in its step first, then shapes it anew)."""
    aid = f"primer-{tag}"
    actors = [
        b'{"actorId":"%s"}',
        b'{"actorId":"%s","version":"5","status":"STATUS_RUNNING"}',
        b'{"actorId":"%s","version":"5","actorTemplateNamespace":"ns","status":"STATUS_RUNNING"}',
        b'{"actor_id":"%s","version":12,"status":"STATUS_SUSPENDING"}',
    ]
    out = [(f"actor:{aid}-{i}".encode(), v % f"{aid}-{i}".encode()) for i, v in enumerate(actors)]
    out.append((f"actor:{aid}-4".encode(), mutation_bases(f"{aid}-4")[0]))
    out.append((f"actor:{aid}-5".encode(), mutation_bases(f"{aid}-5")[1]))
    out.append((f"worker:n1:pool-a:{aid}".encode(), worker_json("n1", "pool-a", aid, actor_id="p1", ip="10.0.0.1")))
    out.append(
        (f"worker:n2:p:{aid}".encode(), b'{"workerNamespace":"n2","workerPool":"p","workerPod":"%s"}' % aid.encode())
    )
    return out


def ordered_count(store: Persistence, keys: list[bytes]) -> dict:
    """The count's step over a key list in a given order ("keys" mode) instead of a SCAN batch: the
    script matches a value against the shapes met earlier in its step first, so the order matters."""
    args = ["keys", 0, 0, counting.MAX_VALUE_BYTES, 1000, *keys]
    reply = store.client.eval(counting.COUNT_STEP, 0, *args)
    tally = counting._Tally()
    counting._take_reply(reply, tally, store.topology.shards()[0], store.topology)
    return figures(counting._merged([tally], 0.0, 0.0, None)), tally.judged


def test_each_planted_value_counts_as_the_client_counts_it(standalone_client):
    """One record at a time (standalone Redis), alone and after records of the shapes it strays
    from: the script's verdict is the client's, per record."""
    store = Persistence(standalone_client)
    cases = PLANTED + [(b"actor:m", v) for v in mutations(19, 250)]
    mismatches = []
    judged_by_client = 0
    for key, value in cases:
        standalone_client.flushdb()
        standalone_client.set(key, value)
        on_nodes, in_client, details = both_counts(store)
        judged_by_client += details.judged
        if on_nodes != in_client:
            mismatches.append(("alone", key, value[:120], on_nodes, in_client))
        primed = primers("x")
        for k, v in primed:
            standalone_client.set(k, v)
        after, _judged = ordered_count(store, [k for k, _ in primed] + [key])
        expected = figures(cluster.store_stats(store.topology))
        if after != expected:
            mismatches.append(("after primers", key, value[:120], after, expected))
    assert mismatches == []
    # The script tallied the canonical ones itself; the client judged the rest.
    assert 0 < judged_by_client < len(cases)


def test_the_script_tallies_the_canonical_form_itself(standalone_client):
    store = Persistence(standalone_client)
    canonical = [
        (b"actor:p1", GOOD_ACTOR),
        (b"actor:p2", PLANTED[1][1]),
        (b"actor:p3", PLANTED[2][1]),
        (b"actor:", b"{}"),
        (b"actor:p11", b'{"actorId":"p11","version":"-0"}'),
        (b"actor:p12", b'{"actorId":"p12","version":123456789012345678}'),
        (b"worker:n1:pool-a:w1", worker_json("n1", "pool-a", "w1", actor_id="p1", ip="10.0.0.1")),
        (b"worker:n2::w6", b'{"workerNamespace":"n2","workerPod":"w6"}'),
        (b"worker:n2:p:w8", b'{"worker_namespace":"n2","worker_pool":"p","worker_pod":"w8","actor_id":"x"}'),
    ]
    for key, value in canonical:
        standalone_client.flushdb()
        standalone_client.set(key, value)
        details = counting.CountDetails()
        stats = counting.store_stats(store.topology, 100, details)
        assert details.judged == 0, key
        assert stats.unreadable == 0 and stats.corrupt == 0, key
    stats = counting.store_stats(store.topology, 100)
    assert stats.workers_by_pool == {("n2", "p"): {"free": 0, "assigned": 1}}


@pytest.fixture
def hostile_store(store) -> Persistence:
    """10k actors and 2k workers as the ate server writes them, and every planted value among them."""
    client = store.client
    pipe = client.pipeline(transaction=False)
    statuses = list(S.values())
    for i in range(10_000):
        actor = Actor(actor_id=f"a{i:05d}", version=i + 1, status=statuses[i % len(statuses)])
        if i % 3 == 0:
            actor.ateom_pod_namespace, actor.ateom_pod_name = f"ns-{i % 4}", f"pod-{i}"
        pipe.set(f"actor:{actor.actor_id}", ACTOR_CODEC.encode_json(actor))
    for i in range(2_000):
        worker = Worker(
            worker_namespace=f"ns-{i % 4}",
            worker_pool=f"pool-{i % 9}",
            worker_pod=f"w{i}",
            ip=f"10.0.{i // 250}.{i % 250}",
        )
        if i % 2:
            worker.actor_id = f"a{i:05d}"
        pipe.set(
            f"worker:{worker.worker_namespace}:{worker.worker_pool}:{worker.worker_pod}",
            WORKER_CODEC.encode_json(worker),
        )
    for key, value in PLANTED:
        pipe.set(key, value)
    for i, value in enumerate(mutations(23, 300)):
        pipe.set(f"actor:mut{i}", value.replace(b'"m"', f'"mut{i}"'.encode()))
    pipe.execute()
    plant_wrong_types(client)
    plant_outside(client)
    return store


def test_the_same_figures_as_the_client_side_count_on_a_hostile_store(hostile_store):
    on_nodes, in_client, details = both_counts(hostile_store)
    assert on_nodes == in_client
    # Of the 12k+ records, the client judged only the planted ones: the ordinary ones never left the nodes.
    assert 0 < details.judged <= len(PLANTED) + 300 + 2
    assert on_nodes["keys_scanned"] == 10_000 + 2_000 + len(PLANTED) + 300 + 2 + 3
    assert on_nodes["locks"] == 3
    assert on_nodes["unreadable_actors"] > 0 and on_nodes["unreadable_workers"] > 0
    assert on_nodes["actors_by_status"]["CORRUPT"] > 0 and on_nodes["corrupt_workers"] > 0


def test_on_the_replicas_with_the_primaries_left_alone(hostile_store):
    client = hostile_store.client
    assert isinstance(client, RedisCluster)
    for node in client.get_primaries():
        assert client.get_redis_connection(node).execute_command("WAIT", 1, 10_000) >= 1
    expected = figures(cluster.store_stats(hostile_store.topology))
    nodes = client.get_primaries() + client.get_replicas()
    for node in nodes:
        client.get_redis_connection(node).config_resetstat()
    replicas = hostile_store.on_replicas()
    assert figures(replicas.store_stats()) == expected

    def calls(node) -> int:
        stats = client.get_redis_connection(node).info("commandstats")
        return sum(stats.get(f"cmdstat_{c}", {}).get("calls", 0) for c in ("scan", "evalsha", "eval", "get"))

    assert sum(calls(n) for n in client.get_primaries()) == 0
    assert (
        sum(
            client.get_redis_connection(n).info("commandstats").get("cmdstat_evalsha", {}).get("calls", 0)
            for n in client.get_replicas()
        )
        > 0
    )


def test_steps_of_any_size_give_the_same_figures(hostile_store):
    expected = figures(cluster.store_stats(hostile_store.topology))
    for step in (1, 50, 10_000):
        details = counting.CountDetails()
        assert figures(counting.store_stats(hostile_store.topology, step, details)) == expected
    assert details.steps >= 3  # one per primary at least


def test_a_server_that_refuses_scripts_is_counted_from_the_client(hostile_store, cluster_client, redis_url):
    password = "count-no-script-pw"
    nodes = cluster_client.get_primaries() + cluster_client.get_replicas()
    for node in nodes:
        cluster_client.get_redis_connection(node).execute_command(
            "ACL", "SETUSER", "count-noscript", "on", f">{password}", "~*", "&*", "+@all", "-@scripting"
        )
    host_port = redis_url.split("://", 1)[1]
    client = RedisCluster.from_url(f"redis://count-noscript:{password}@{host_port}")
    try:
        details = counting.CountDetails()
        stats = counting.store_stats(Persistence(client).topology, counting.STEP_KEYS, details)
        assert details.client_side_shards == len(cluster_client.get_primaries())
        assert figures(stats) == figures(cluster.store_stats(hostile_store.topology))
    finally:
        client.close()
        for node in nodes:
            cluster_client.get_redis_connection(node).execute_command("ACL", "DELUSER", "count-noscript")


def _wait_for_replicas(client) -> None:
    for node in client.get_primaries():
        assert client.get_redis_connection(node).execute_command("WAIT", 1, 10_000) >= 1


def test_a_slot_too_big_for_a_step_is_listed_by_the_client(hostile_store):
    """Keys with one hash tag share a slot: past SLOT_KEYS_IN_STEP (and the step's size) the client
    lists the slot and hands it to the script in parts; the figures stay the client-side count's."""
    client = hostile_store.client
    pipe = client.pipeline(transaction=False)
    n = counting.SLOT_KEYS_IN_STEP * 2 + 500
    for i in range(n):
        actor = Actor(actor_id=f"{{big}}{i}", version=i + 1, status=S.STATUS_RUNNING if i % 2 else S.STATUS_SUSPENDED)
        pipe.set(f"actor:{actor.actor_id}", ACTOR_CODEC.encode_json(actor))
    pipe.set("actor:{big}corrupt", b"not json")
    pipe.set("worker:{big}:p:w1", worker_json("{big}", "p", "w1", actor_id="x"))
    pipe.execute()
    expected = figures(cluster.store_stats(hostile_store.topology))
    assert expected["actors_by_status"]["CORRUPT"] > 0
    for step, big in ((1, True), (50, True), (counting.SLOT_KEYS_IN_STEP * 10, False)):
        details = counting.CountDetails()
        assert figures(counting.store_stats(hostile_store.topology, step, details)) == expected, step
        assert (details.big_slots > 0) is big, step
    _wait_for_replicas(client)
    details = counting.CountDetails()
    assert figures(counting.store_stats(hostile_store.on_replicas().topology, 50, details)) == expected
    assert details.big_slots == 1


def test_a_slot_half_migrated_is_counted_once(hostile_store):
    """A slot moving to another primary (MIGRATING on one, IMPORTING on the other, half its keys
    moved): each node enumerates every slot it holds keys of, as a SCAN would, and the keys of a slot
    a node does not serve go to the client, which reads them where the cluster serves them."""
    client = hostile_store.client
    keys = [f"actor:{{mig}}{i}".encode() for i in range(200)]
    for key in keys:
        client.set(key, ACTOR_CODEC.encode_json(Actor(actor_id=key[6:].decode(), status=S.STATUS_RUNNING)))
    slot = client.keyslot(keys[0])
    source = client.nodes_manager.get_node_from_slot(slot)
    target = next(n for n in client.get_primaries() if n.name != source.name)
    src, dst = client.get_redis_connection(source), client.get_redis_connection(target)
    src_id, dst_id = src.execute_command("CLUSTER", "MYID"), dst.execute_command("CLUSTER", "MYID")
    before = figures(cluster.store_stats(hostile_store.topology))
    try:
        dst.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", src_id)
        src.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", dst_id)
        src.execute_command("MIGRATE", target.host, target.port, "", 0, 5000, "KEYS", *keys[:100])
        assert dst.execute_command("CLUSTER", "COUNTKEYSINSLOT", slot) == 100
        assert src.execute_command("CLUSTER", "COUNTKEYSINSLOT", slot) >= 100  # and the store's own
        for step in (50, counting.STEP_KEYS):
            assert figures(counting.store_stats(hostile_store.topology, step)) == before, step
        _wait_for_replicas(client)
        assert figures(hostile_store.on_replicas().store_stats()) == before
    finally:
        for conn in (src, dst):
            conn.execute_command("CLUSTER", "SETSLOT", slot, "STABLE")
        flush_primaries(client)


def test_the_first_and_the_last_slot_are_counted(store):
    """The step walks slots 0 to 16383: a record in each end slot counts, on primaries and replicas."""
    client = store.client
    for slot in (0, 16383):
        i = next(i for i in range(1_000_000) if client.keyslot(f"actor:edge-{i}") == slot)
        client.set(f"actor:edge-{i}", actor_json(f"edge-{i}", status=S.STATUS_RUNNING))
    expected = figures(cluster.store_stats(store.topology))
    assert expected["actors_by_status"]["STATUS_RUNNING"] == 2
    for step in (1, counting.STEP_KEYS):
        assert figures(counting.store_stats(store.topology, step)) == expected
    _wait_for_replicas(client)
    assert figures(store.on_replicas().store_stats()) == expected


BIG = 8_000_000  # a hostile value: far more than a step may hold (storage.node_reads.MAX_VALUE_BYTES)


def lua_growth(conn, run) -> int:
    """How much the node's Lua heap (INFO used_memory_lua) grows while ``run()`` runs: a value a
    script reads stays there, garbage, until a collection (Redis steps one every 50 scripts). SCRIPT
    FLUSH first: a fresh heap, with no garbage of earlier scripts that a collection could free."""
    conn.script_flush()
    before = conn.info("memory")["used_memory_lua"]
    run()
    return conn.info("memory")["used_memory_lua"] - before


def test_a_multi_megabyte_value_stays_out_of_the_step(store):
    """A record of 8 MB (and a corrupt value as big) in a slot of ordinary records: the step reads
    their lengths, not them, so the script's memory stays within a fraction of one; the client reads
    them itself, and the count gives the client-side count's figures, the big record counted."""
    client = store.client
    tag = "{hostile}"
    client.set(f"actor:{tag}big", actor_json(f"{tag}big", status=S.STATUS_RUNNING, last_snapshot="s" * BIG))
    client.set(f"actor:{tag}junk", b"{" + b"x" * BIG)
    for i in range(20):
        client.set(f"actor:{tag}{i}", actor_json(f"{tag}{i}", status=S.STATUS_SUSPENDED))
    slot = client.keyslot(f"actor:{tag}big")
    conn = client.get_redis_connection(client.nodes_manager.get_node_from_slot(slot))
    replies = []
    args = ["slots", slot, 1, counting.MAX_VALUE_BYTES, 1000]
    grew = lua_growth(conn, lambda: replies.append(conn.eval(counting.COUNT_STEP, 0, *args)))
    assert grew < BIG // 4
    tally = counting._Tally()
    counting._take_reply(replies[0], tally, store.topology.shards()[0], store.topology)
    assert tally.scanned == 22 and tally.judged == 2  # the big two, read by the client
    assert (tally.by_status["STATUS_RUNNING"], tally.by_status["STATUS_SUSPENDED"], tally.by_status["CORRUPT"]) == (
        1,
        20,
        1,
    )
    expected = figures(cluster.store_stats(store.topology))
    assert expected["actors_by_status"]["STATUS_RUNNING"] == 1
    for step in (1, counting.STEP_KEYS):
        assert figures(counting.store_stats(store.topology, step)) == expected, step


def test_at_most_parallel_steps_run_at_once(hostile_store, monkeypatch):
    """Pace(parallel=n): however the shards' threads interleave, no more than n step scripts are
    called at once, and the figures are the client-side count's at any pace."""
    import threading

    import redis

    topology = hostile_store.topology
    expected = figures(cluster.store_stats(topology))
    lock = threading.Lock()
    inside, most = [0], [0]
    evalsha = redis.Redis.evalsha

    def counted(client, *args, **kwargs):
        with lock:
            inside[0] += 1
            most[0] = max(most[0], inside[0])
        try:
            return evalsha(client, *args, **kwargs)
        finally:
            with lock:
                inside[0] -= 1

    monkeypatch.setattr(redis.Redis, "evalsha", counted)
    for parallel in (1, 2):
        most[0] = 0
        details = counting.CountDetails()
        pace = counting.Pace(parallel=parallel)
        assert figures(counting.store_stats(topology, 50, details, pace=pace)) == expected, parallel
        assert details.steps > 100 and 1 <= most[0] <= parallel, parallel
    for pace in (counting.Pace(parallel=0), counting.Pace(parallel=2, rest=0.5)):
        assert figures(counting.store_stats(topology, 500, pace=pace)) == expected, pace
