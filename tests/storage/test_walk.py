"""Full-store filtered walks (storage/matches.py): every match, no false negative of the byte test
whatever form a record is stored in, the cap, cancel, progress, and the client-side fallback."""

from __future__ import annotations

import threading

import pytest
from redis.cluster import RedisCluster

from storage import Persistence
from storage.ateapi_pb2 import Actor, Worker
from storage.codec import ACTOR_CODEC, WORKER_CODEC
from storage.matches import FullWalk, actor_walk, worker_walk
from storage.records import ACTORS, WORKERS

S = Actor.Status
STATUSES = [S.STATUS_RUNNING, S.STATUS_SUSPENDED, S.STATUS_RESUMING, S.STATUS_SUSPENDING]


def seed(store, actors=10_000, workers=2_000):
    """Pipelined: one batch per primary (the cluster pipeline groups commands by node)."""
    pipe = store.client.pipeline(transaction=False)
    for i in range(actors):
        actor = Actor(
            actor_id=f"a{i:05d}",
            version=1 + i % 3,
            actor_template_namespace=f"ns-{i % 10}",
            actor_template_name=f"t-{i % 7}",
            status=STATUSES[i % 4],
        )
        if actor.status == S.STATUS_RUNNING:
            actor.ateom_pod_namespace, actor.ateom_pod_name = f"ns-{i % 10}", f"pod-{i % 13}"
            actor.ateom_pod_ip, actor.last_snapshot = f"10.0.{i % 5}.1", f"gs://snap/{i}/x"
        pipe.set(f"actor:{actor.actor_id}", ACTOR_CODEC.encode_json(actor))
    for i in range(workers):
        worker = Worker(
            worker_namespace=f"ns-{i % 10}",
            worker_pool=f"p{i % 3}",
            worker_pod=f"w{i:05d}",
            version=1,
            ip=f"10.1.{i % 9}.2",
        )
        if i % 5:
            worker.actor_id = f"a{i:05d}"
        pipe.set(
            f"worker:{worker.worker_namespace}:{worker.worker_pool}:{worker.worker_pod}",
            WORKER_CODEC.encode_json(worker),
        )
    pipe.execute()


# Records stored in every form a reader accepts; the byte test must never turn one of them away.
ODD_ACTORS = {
    # escapes: strings spelled with \u, keys too
    "actor:x-escaped": b'{"actorId":"x-escaped","actorTemplateNamespace":"ns-\\u0031","actorTemplateName":"t-1",'
    b'"status":"STATUS_RUNNING"}',
    "actor:x-escaped-key": b'{"actorId":"x-escaped-key","\\u0073tatus":"STATUS_RESUMING",'
    b'"actorTemplateNamespace":"ns-1"}',
    # status as a number, as a numeric string, spaced, snake_case keys
    "actor:x-number": b'{"actorId":"x-number","status":2,"actorTemplateNamespace":"ns-1","actorTemplateName":"t-1"}',
    "actor:x-numstring": b'{"actorId":"x-numstring","status":"2","actorTemplateNamespace":"ns-1"}',
    "actor:x-spaced": b'{ "actorId" : "x-spaced" , "status" : "STATUS_RUNNING" , "actorTemplateNamespace" : "ns-1" }',
    "actor:x-snake": b'{"actor_id":"x-snake","actor_template_namespace":"ns-1","actor_template_name":"t-1",'
    b'"status":"STATUS_RUNNING"}',
    "actor:x-leading-ws": b' \n{"actorId":"x-leading-ws","status":"STATUS_RUNNING","actorTemplateNamespace":"ns-1"}',
    "actor:x-unknown": b'{"actorId":"x-unknown","status":"STATUS_RUNNING",'
    b'"actorTemplateNamespace":"ns-1","newField":{"a":[1]}}',
    # binary protobuf (a string field may hold what looks like the canonical JSON of another status)
    "actor:x-binary": Actor(
        actor_id="x-binary",
        actor_template_namespace="ns-1",
        actor_template_name='"status":"STATUS_SUSPENDED"',
        status=2,
    ).SerializeToString(),
    # unspecified status: the field absent
    "actor:x-nostatus": b'{"actorId":"x-nostatus","actorTemplateNamespace":"ns-1"}',
    # incident searches (issue 20): the pod and IP in every spelling a reader accepts
    "actor:x-ip-spaced": b'{"actorId":"x-ip-spaced","status":"STATUS_RUNNING","ateomPodNamespace"\t:\n"ns-odd",'
    b'"ateomPodName" :  "pod.odd","ateomPodIp"\r\n:\t"10.9.9.9","lastSnapshot" : "gs://odd/77/x"}',
    "actor:x-ip-snake": b'{"actor_id":"x-ip-snake","ateom_pod_namespace":"ns-odd","ateom_pod_name":"pod.odd",'
    b'"ateom_pod_ip":"10.9.9.9","last_snapshot":"gs://odd/77/y"}',
    "actor:x-ip-escaped": b'{"actorId":"x-ip-escaped","ateomPodNamespace":"ns\\u002dodd",'
    b'"ateomPodName":"pod\\u002eodd","ateomPodIp":"10\\u002e9.9.9","lastSnapshot":"gs:\\/\\/odd/77/z"}',
    "actor:x-ip-escaped-key": b'{"actorId":"x-ip-escaped-key","\\u0061teomPodIp":"10.9.9.9",'
    b'"ateomPodNamespace":"ns-odd","\\u0061teomPodName":"pod.odd"}',
    "actor:x-ip-binary": Actor(
        actor_id="x-ip-binary", ateom_pod_namespace="ns-odd", ateom_pod_name="pod.odd", ateom_pod_ip="10.9.9.9"
    ).SerializeToString(),
    "actor:x-pod-magic": b'{"actorId":"x-pod-magic","ateomPodNamespace":"ns-odd",'
    b'"ateomPodName":"p(1)[x]%^$*+?.-","ateomPodIp":"10.9.9.90"}',
    # decoys: the searched values in other fields, nested, or near misses (no match)
    "actor:x-decoy-other-field": b'{"actorId":"x-decoy-other-field","actorTemplateNamespace":"ns-odd",'
    b'"actorTemplateName":"10.9.9.9","ateomPodName":"ns-odd","inProgressSnapshot":"pod.odd"}',
    "actor:x-decoy-nested": b'{"actorId":"x-decoy-nested","ateomPodIp":"10.9.9.8",'
    b'"newField":{"ateomPodIp":"10.9.9.9"}}',
    "actor:x-decoy-near": b'{"actorId":"x-decoy-near","ateomPodNamespace":"ns-odd","ateomPodName":"podXodd",'
    b'"ateomPodIp":"10.9.9.99"}',
}


def odd_workers():
    binary = Worker(worker_namespace="ns-1", worker_pool="p1", worker_pod="x-bin", actor_id="a1").SerializeToString()
    return {
        "worker:ns-1:p1:x-empty": b'{"workerNamespace":"ns-1","workerPool":"p1","workerPod":"x-empty","actorId":""}',
        "worker:ns-1:p1:x-snake": b'{"worker_namespace":"ns-1","worker_pool":"p1",'
        b'"worker_pod":"x-snake","actor_id":"a9"}',
        "worker:ns-1:p1:x-spaced": b'{"workerNamespace":"ns-1","workerPool":"p1",'
        b'"workerPod":"x-spaced","actorId" : "a8"}',
        "worker:ns-1:p1:x-spaced-empty": b'{"workerNamespace":"ns-1","workerPool":"p1","workerPod":"x-spaced-empty",'
        b'"actorId" : ""}',
        "worker:ns-1:p1:x-escaped": b'{"workerNamespace":"ns-1","workerPool":"p1",'
        b'"workerPod":"x-escaped","\\u0061ctorId":"a7"}',
        "worker:ns-1:p1:x-bin": binary,
        "worker:ns-1:p1:x-pod-odd": b'{"workerNamespace":"ns-1","workerPool":"p1",'
        b'"workerPod":"x-pod\\u002dodd","ip":"10.9.9.9"}',
        "worker:ns-1:p1:x-ip-spaced": b'{"workerNamespace":"ns-1","workerPool":"p1",'
        b'"workerPod":"x-ip-spaced","ip" :\n"10.9.9.9","actorId":"pod-odd-served"}',
        "worker:ns-1:p1:x-ip-decoy": b'{"workerNamespace":"ns-1","workerPool":"p1",'
        b'"workerPod":"x-ip-decoy","actorTemplate":"10.9.9.9","actorNamespace":"pod-odd","ip":"10.9.9.8"}',
    }


def decoded(store, kind):
    """Brute force: every record of the kind decoded (corrupt ones left out: they are no match)."""
    out = []
    for key, raw in store.iter_raw(prefixes=(kind.prefix,)):
        try:
            out.append((key, kind.decode_stored(key, raw)[0]))
        except Exception:  # noqa: BLE001 - corrupt records are no match
            continue
    return out


def expected(store, kind, wanted):
    return sorted(key for key, record in store.decoded[kind.name] if wanted.matches(record))


ACTOR_FILTERS = [
    {"status": S.STATUS_RUNNING},
    {"status": S.STATUS_RESUMING, "template_namespace": "ns-1"},
    {"status": S.STATUS_UNSPECIFIED},
    {"status": 42},
    {"template_namespace": "ns-1", "template_name": "t-1"},
    {"template_namespace": "ns-1"},
    {"template_name": '"status":"STATUS_SUSPENDED"'},
    {"id_contains": "x-"},
    {"id_contains": "0042", "status": S.STATUS_SUSPENDED},
    {"pod_namespace": "ns-1", "pod_name": "pod-3"},
    {"pod_ip": "10.0.2.1", "snapshot_contains": "/12"},
    {"pod_name": ""},
    {},
]


@pytest.fixture(scope="module")
def seeded(cluster_client):
    from tests.conftest import flush_primaries

    flush_primaries(cluster_client)
    store = Persistence(cluster_client)
    seed(store)
    for key, value in {**ODD_ACTORS, **odd_workers()}.items():
        cluster_client.set(key, value)
    cluster_client.hset("actor:x-hash", "status", "STATUS_RUNNING")  # not a string: corrupt
    cluster_client.set("actor:x-garbage", b'{"actorId":"x-garbage","status":"STATUS_RUNNING",')
    store.decoded = {kind.name: decoded(store, kind) for kind in (ACTORS, WORKERS)}
    store.not_plain = {kind.name: not_plain(store, kind) for kind in (ACTORS, WORKERS)}
    # Every odd form is a readable record (so a walk that missed one would fail a comparison).
    readable = {key for kind in store.decoded.values() for key, _ in kind}
    assert set(ODD_ACTORS) | set(odd_workers()) <= readable
    return store


@pytest.mark.parametrize("use_script", [True, False], ids=["script", "client"])
@pytest.mark.parametrize("filters", ACTOR_FILTERS, ids=lambda f: ",".join(f"{k}={v}" for k, v in f.items()) or "all")
def test_actor_walk_finds_exactly_the_matches(seeded, filters, use_script):
    wanted = actor_walk(**filters)
    result = FullWalk(seeded.topology, wanted, use_script=use_script).run()
    assert result.keys == expected(seeded, ACTORS, wanted)
    assert result.matched == len(result.keys)
    assert not result.truncated and not result.cancelled
    assert result.server_side == (use_script and bool(wanted.clauses))


@pytest.mark.parametrize("use_script", [True, False], ids=["script", "client"])
@pytest.mark.parametrize(
    "filters",
    [
        {"assigned": True},
        {"assigned": False},
        {"namespace": "ns-1", "pool": "p1", "assigned": False},
        {"pool": "p2"},
        {"ip": "10.1.3.2"},
    ],
    ids=str,
)
def test_worker_walk_finds_exactly_the_matches(seeded, filters, use_script):
    wanted = worker_walk(**filters)
    result = FullWalk(seeded.topology, wanted, use_script=use_script).run()
    assert result.keys == expected(seeded, WORKERS, wanted)
    assert result.keys


def test_the_byte_test_decides_most_records_on_the_server(seeded):
    result = FullWalk(seeded.topology, actor_walk(template_namespace="ns-1", template_name="t-1")).run()
    # 10k plain actors, 1 in 70 match; only they and the odd records are decoded.
    assert len(result.keys) >= 10_000 // 70
    assert result.candidates < len(result.keys) + 20
    assert result.scanned == 10_000 + len(ODD_ACTORS) + 2


def test_corrupt_candidates_are_reported(seeded):
    result = FullWalk(seeded.topology, actor_walk(status=S.STATUS_RUNNING)).run()
    corrupt = {c.key for c in result.corrupt}
    assert {"actor:x-hash", "actor:x-garbage"} <= corrupt


def test_the_cap_stops_the_walk_and_says_so(seeded):
    result = FullWalk(seeded.topology, actor_walk(status=S.STATUS_RUNNING), max_results=100).run()
    assert len(result.keys) == 100 and result.truncated and not result.cancelled


def test_cancel_stops_between_batches_and_progress_says_where(seeded):
    seen = []
    walk = None

    def on_batch(matches):
        seen.extend(matches)
        walk.cancel()

    walk = FullWalk(seeded.topology, actor_walk(), on_batch=on_batch, step_count=100)
    result = walk.run()
    assert result.cancelled and not result.truncated
    assert 0 < len(seen) < 10_000
    progress = walk.progress()
    assert progress.cancelled and progress.finished and progress.fraction < 1.0
    assert progress.scanned == result.scanned < 10_000


def test_progress_runs_to_one(seeded):
    walk = FullWalk(seeded.topology, actor_walk(status=S.STATUS_RUNNING), step_count=200)
    fractions = []
    done = threading.Event()

    def watch():
        while not done.is_set():
            fractions.append(walk.progress().fraction)
            done.wait(0.001)

    watcher = threading.Thread(target=watch)
    watcher.start()
    walk.run()
    done.set()
    watcher.join()
    progress = walk.progress()
    assert progress.finished and progress.fraction == 1.0 and progress.shards_done == progress.shards == 3
    assert progress.total_keys >= 12_000
    assert all(0.0 <= f <= 1.0 for f in fractions)


def test_on_batch_gets_the_stored_bytes_and_records(seeded):
    got = []
    lock = threading.Lock()

    def on_batch(matches):
        with lock:
            got.extend(matches)

    wanted = actor_walk(template_namespace="ns-3", status=S.STATUS_RUNNING)
    result = FullWalk(seeded.topology, wanted, on_batch=on_batch).run()
    assert result.keys == [] and result.matched == len(got)
    assert sorted(m.key for m in got) == expected(seeded, ACTORS, wanted)
    for m in got[:20]:
        assert seeded.client.get(m.key) == m.raw and m.record.actor_template_namespace == "ns-3"


def test_a_server_that_refuses_scripts_is_walked_from_the_client(seeded, cluster_client, redis_url):
    """An ACL user without scripting: the walk falls back to SCAN + GET + the byte test in Python."""
    password = "walk-no-script-pw"
    for node in cluster_client.get_primaries() + cluster_client.get_replicas():
        cluster_client.get_redis_connection(node).execute_command(
            "ACL", "SETUSER", "walk-noscript", "on", f">{password}", "~*", "&*", "+@all", "-@scripting"
        )
    host_port = redis_url.split("://", 1)[1]
    client = RedisCluster.from_url(f"redis://walk-noscript:{password}@{host_port}")
    try:
        wanted = actor_walk(status=S.STATUS_RESUMING, template_namespace="ns-1")
        result = FullWalk(Persistence(client).topology, wanted).run()
        assert not result.server_side
        assert result.keys == expected(seeded, ACTORS, wanted)
    finally:
        client.close()
        for node in cluster_client.get_primaries() + cluster_client.get_replicas():
            cluster_client.get_redis_connection(node).execute_command("ACL", "DELUSER", "walk-noscript")


def test_filters_of_hostile_values_stay_literal(seeded):
    for value in ("*", "ns-[1]", "\\", '"', "ns-1\x00", "\ud800"):
        wanted = actor_walk(template_namespace=value)
        result = FullWalk(seeded.topology, wanted).run()
        assert result.keys == []


def test_found_gives_the_first_matches_so_far_sorted(seeded):
    walk = FullWalk(seeded.topology, actor_walk())
    assert walk.found(5) == []
    result = walk.run()
    assert walk.found(3) == sorted(result.keys)[:3] and len(walk.found(10**6)) == result.matched


# --- incident searches (issue 20): the byte test anchored to the field, and never a lost match ---

INCIDENT_ACTOR_FILTERS = [
    {"pod_ip": "10.9.9.9"},
    {"pod_ip": "10.9.9.90"},
    {"pod_namespace": "ns-odd", "pod_name": "pod.odd"},
    {"pod_name": "pod.odd"},
    {"pod_name": "p(1)[x]%^$*+?.-"},
    {"pod_namespace": "ns-odd"},
    {"snapshot_contains": "odd/77"},
    {"pod_namespace": "ns-2", "pod_name": "pod-3"},
    {"pod_ip": "10.0.2.1"},
]
INCIDENT_WORKER_FILTERS = [{"ip": "10.9.9.9"}, {"id_contains": "pod-odd"}, {"id_contains": "x-pod-odd"}]


def not_plain(store, kind):
    """How many of the kind's keys the byte test cannot judge (not a string, or not plain JSON):
    counted once per module (`seeded`), in one pipeline, not by a round trip per key per test."""
    keys = list(store.client.scan_iter(match=kind.prefix + "*", count=1000))
    pipe = store.client.pipeline(transaction=False)
    for key in keys:
        pipe.type(key)
    types = pipe.execute()
    strings = [key for key, kind_of in zip(keys, types, strict=True) if kind_of == b"string"]
    raws = store.client.mget_nonatomic(strings) if strings else []
    return len(keys) - len(strings) + sum(raw is None or raw[:1] != b"{" or b"\\" in raw for raw in raws)


@pytest.mark.parametrize("use_script", [True, False], ids=["script", "client"])
@pytest.mark.parametrize("filters", INCIDENT_ACTOR_FILTERS, ids=str)
def test_incident_actor_walks_are_exact_and_decode_almost_nothing(seeded, filters, use_script):
    wanted = actor_walk(**filters)
    result = FullWalk(seeded.topology, wanted, use_script=use_script).run()
    assert result.keys == expected(seeded, ACTORS, wanted)
    assert result.keys  # every filter here has matches: a lost one fails the comparison above
    # Decoded: the matches, what the byte test cannot judge, and the one decoy nested in an unknown
    # field; never a record holding the value in another field (pod namespace = template namespace).
    plain_matches = sum(1 for k in result.keys if k not in ODD_ACTORS or b"\\" not in ODD_ACTORS[k])
    assert result.candidates <= plain_matches + seeded.not_plain[ACTORS.name] + 1


@pytest.mark.parametrize("use_script", [True, False], ids=["script", "client"])
@pytest.mark.parametrize("filters", INCIDENT_WORKER_FILTERS, ids=str)
def test_incident_worker_walks_are_exact_and_decode_almost_nothing(seeded, filters, use_script):
    wanted = worker_walk(**filters)
    result = FullWalk(seeded.topology, wanted, use_script=use_script).run()
    assert result.keys == expected(seeded, WORKERS, wanted)
    assert result.keys
    assert result.candidates <= len(result.keys) + seeded.not_plain[WORKERS.name]


def test_the_pod_namespace_alone_is_not_enough(seeded):
    """Pod namespace = template namespace on every running seeded actor: the namespace's quoted
    value is in 1 actor of 10, the pod namespace field in 1 of 20; only those are decoded."""
    result = FullWalk(seeded.topology, actor_walk(pod_namespace="ns-2")).run()
    assert len(result.keys) == 500
    assert result.candidates <= len(result.keys) + seeded.not_plain[ACTORS.name]


def test_a_corrupt_value_holding_the_needle_is_reported(seeded, cluster_client):
    cluster_client.set("actor:x-corrupt-ip", b'{"actorId":"x-corrupt-ip","ateomPodIp":"10.9.9.9",')
    try:
        result = FullWalk(seeded.topology, actor_walk(pod_ip="10.9.9.9")).run()
        assert "actor:x-corrupt-ip" in {c.key for c in result.corrupt}
        result = FullWalk(seeded.topology, actor_walk(pod_ip="10.9.9.8")).run()
        assert "actor:x-corrupt-ip" not in {c.key for c in result.corrupt}
    finally:
        cluster_client.delete("actor:x-corrupt-ip")
