"""Round trips between atedash's storage.Persistence and the seed's Go store on one cluster.

What atedash writes (create, update) the Go store reads equal; what the Go store writes atedash
reads equal; after each, the Go store's ListActors/ListWorkers succeed and return exactly the
store's records. And where the Go store cannot read a record, storage.server_readable says so in
the Go store's own words.
"""

from __future__ import annotations

import json

import pytest
from google.protobuf import json_format

from storage import Persistence, judge_actor, judge_worker, server_read_error
from storage.ateapi_pb2 import Actor, Worker

S = Actor.Status

ACTORS = [
    Actor(actor_id="a-plain", actor_template_namespace="ns", actor_template_name="tpl", status=S.STATUS_SUSPENDED),
    Actor(
        actor_id="a-full",
        actor_template_namespace="team-7",
        actor_template_name="tpl-3",
        status=S.STATUS_RUNNING,
        ateom_pod_namespace="workers",
        ateom_pod_name="pod-1",
        ateom_pod_ip="10.0.0.7",
        last_snapshot="snap/2024-01-01T00:00:00Z",
        in_progress_snapshot="snap/next",
    ),
    Actor(
        actor_id="a-unicode-é日😀",
        actor_template_namespace='ns "quoted" \\ back',
        actor_template_name="t\u2028\x00\x7f",
        status=S.STATUS_RESUMING,
        last_snapshot="<&>",
    ),
    Actor(actor_id="a-empty"),  # every other field at its default: omitted from the JSON
    Actor(actor_id="a-unknown-enum", actor_template_namespace="ns", actor_template_name="tpl", status=7),
]

WORKERS = [
    Worker(
        worker_namespace="workers",
        worker_pool="pool-0",
        worker_pod="pod-1",
        ip="10.0.0.7",
        actor_namespace="team-7",
        actor_template="tpl-3",
        actor_id="a-full",
    ),
    Worker(worker_namespace="workers", worker_pool="pool-0", worker_pod="free-é", ip="10.0.0.8"),
    Worker(worker_namespace="", worker_pool="", worker_pod=""),  # "worker:::" is a key Go lists
]


def go_actor(line: str) -> Actor:
    assert line.startswith("OK "), line
    return json_format.Parse(line[3:], Actor())


def go_worker(line: str) -> Worker:
    assert line.startswith("OK "), line
    return json_format.Parse(line[3:], Worker())


def go_list(lines: list[str], message_class) -> list:
    assert lines and lines[0].startswith("LIST "), lines
    n = int(lines[0].split()[1])
    records = [json_format.Parse(line, message_class()) for line in lines[1:]]
    assert len(records) == n, lines
    return records


def by_id(actors):
    return sorted(actors, key=lambda a: a.actor_id)


def by_key(workers):
    return sorted(workers, key=lambda w: (w.worker_namespace, w.worker_pool, w.worker_pod))


def protojson(message) -> str:
    """protojson as the Go side reads it (json_format writes the same names and forms)."""
    return json.dumps(json_format.MessageToDict(message), ensure_ascii=False)


def assert_go_lists_the_store(ateref, store: Persistence) -> None:
    assert by_id(go_list(ateref("list-actors"), Actor)) == by_id(store.list_actors())
    assert by_key(go_list(ateref("list-workers"), Worker)) == by_key(store.list_workers())


def assert_all_readable(store: Persistence) -> None:
    for key, value in store.iter_raw():
        assert server_read_error(key, value) is None, (key, value)


def test_atedash_writes_go_reads_equal(store, ateref):
    for actor in ACTORS:
        store.create_actor(actor)
    for worker in WORKERS:
        store.create_worker(worker)
    for actor in ACTORS:
        got = go_actor(ateref.one("get-actor", actor.actor_id))
        expected = Actor()
        expected.CopyFrom(actor)
        expected.version = 1
        assert got == expected == store.get_actor(actor.actor_id)
    for worker in WORKERS:
        got = go_worker(ateref.one("get-worker", worker.worker_namespace, worker.worker_pool, worker.worker_pod))
        assert got == store.get_worker(worker.worker_namespace, worker.worker_pool, worker.worker_pod)
        assert got.version == 1 and got.ip == worker.ip
    assert_all_readable(store)
    assert_go_lists_the_store(ateref, store)

    # Updates, twice each: the Go store reads every field and the version atedash wrote.
    for actor in ACTORS:
        for step in range(2):
            current = store.get_actor(actor.actor_id)
            current.status = S.STATUS_SUSPENDED if step else S.STATUS_SUSPENDING
            current.last_snapshot = f"snap-{step}-{actor.actor_id}"
            current.ateom_pod_ip = "" if step else "10.9.9.9"
            store.update_actor(current, current.version)
        got = go_actor(ateref.one("get-actor", actor.actor_id))
        assert got == store.get_actor(actor.actor_id)
        assert got.version == 3 and got.last_snapshot == f"snap-1-{actor.actor_id}" and got.ateom_pod_ip == ""
    for worker in WORKERS:
        current = store.get_worker(worker.worker_namespace, worker.worker_pool, worker.worker_pod)
        current.actor_id = "someone-else"
        store.update_worker(current, current.version)
        got = go_worker(ateref.one("get-worker", worker.worker_namespace, worker.worker_pool, worker.worker_pod))
        assert got == store.get_worker(worker.worker_namespace, worker.worker_pool, worker.worker_pod)
        assert (got.version, got.actor_id) == (2, "someone-else")
    assert_all_readable(store)
    assert_go_lists_the_store(ateref, store)

    # A deletion by atedash: the Go store no longer finds it, and still lists the rest.
    store.delete_actor("a-plain")
    assert ateref.one("get-actor", "a-plain").startswith("ERR ")
    assert_go_lists_the_store(ateref, store)


def test_go_writes_atedash_reads_equal(store, ateref):
    for actor in ACTORS:
        assert ateref.one("create-actor", protojson(actor)) == "OK"
    for worker in WORKERS:
        assert ateref.one("create-worker", protojson(worker)) == "OK"
    for actor in ACTORS:
        expected = Actor()
        expected.CopyFrom(actor)
        expected.version = 1
        assert store.get_actor(actor.actor_id) == expected == go_actor(ateref.one("get-actor", actor.actor_id))
    for worker in WORKERS:
        expected = Worker()
        expected.CopyFrom(worker)
        expected.version = 1
        assert store.get_worker(worker.worker_namespace, worker.worker_pool, worker.worker_pod) == expected
    # Everything the Go store writes the server (of course) reads, and our judgment agrees.
    assert_all_readable(store)

    for actor in ACTORS:
        changed = Actor()
        changed.CopyFrom(actor)
        changed.status = S.STATUS_SUSPENDED
        changed.in_progress_snapshot = "next-é"
        assert ateref.one("update-actor", protojson(changed), "1") == "OK"
        changed.version = 2
        assert store.get_actor(actor.actor_id) == changed
    for worker in WORKERS:
        changed = Worker()
        changed.CopyFrom(worker)
        changed.actor_id = "a-full"
        assert ateref.one("update-worker", protojson(changed), "1") == "OK"
        changed.version = 2
        assert store.get_worker(worker.worker_namespace, worker.worker_pool, worker.worker_pod) == changed
    assert_all_readable(store)
    assert_go_lists_the_store(ateref, store)

    # And atedash updates what the Go store wrote; the Go store reads the result.
    current = store.get_actor("a-full")
    current.status = S.STATUS_RUNNING
    store.update_actor(current, current.version)
    assert go_actor(ateref.one("get-actor", "a-full")) == store.get_actor("a-full")
    assert_go_lists_the_store(ateref, store)


# Records the server cannot read: each alone in the store, Go's ListActors/ListWorkers fails with
# the very reason server_read_error gives (or, for a mismatch, only the Get does).
UNREADABLE = [
    ("actor:a-unknown", b'{"actorId":"a-unknown","foo":1}'),
    ("actor:a-both", b'{"actorId":"a-both","actor_id":"a-both"}'),
    ("actor:a-paused", b'{"actorId":"a-paused","status":"STATUS_PAUSED"}'),
    ("actor:a-enum-string", b'{"actorId":"a-enum-string","status":"2"}'),
    ("actor:a-bool", b'{"actorId":"a-bool","status":true}'),
    ("actor:a-01", b'{"actorId":"a-01","version":"01"}'),
    ("actor:a-underscore", b'{"actorId":"a-underscore","version":"1_000"}'),
    ("actor:a-tiny", b'{"actorId":"a-tiny","version":1e-400}'),
    ("actor:a-binary", Actor(actor_id="a-binary", version=1).SerializeToString()),
    ("actor:a-surrogate", b'{"actorId":"a-surrogate\\ud800"}'),
    ("actor:a-bad-utf8", b'{"actorId":"a-bad-utf8\xff"}'),
    ("actor:a:colon", b'{"actorId":"a:colon"}'),
    # Issue 22: Go's words for a "[name]" of its registry, and Unicode 15-17 quoted as Go quotes it.
    ("actor:a-bracket", b'{"actorId":"a-bracket","[ateapi.Actor]":1}'),
    ("actor:a-bracket-enum", b'{"actorId":"a-bracket-enum",\n "[ateapi.Actor.Status]":null}'),
    ("actor:a:\U0001fae8\U0001fae9", '{"actorId":"a:\U0001fae8\U0001fae9"}'.encode()),
    ("actor:a-escape", '{"actorId":"a-escape\\u\U0001fae9\u0378"}'.encode()),
    ("worker:ns:pool:\u1c89", '{"workerNamespace":"ns","workerPool":"pool","workerPod":"\\ud83d\u1c89x"}'.encode()),
    ("worker:ns:pool", b'{"workerNamespace":"ns","workerPool":"pool"}'),
    ("worker:ns:pool:pod:extra", b'{"workerNamespace":"ns","workerPool":"pool","workerPod":"pod:extra"}'),
    ("worker:ns:pool:pod", b'{"workerNamespace":"ns","workerPool":"pool","workerPod":"pod","ip":1}'),
]


@pytest.mark.parametrize("key,value", UNREADABLE, ids=[k for k, _ in UNREADABLE])
def test_an_unreadable_record_breaks_go_list_for_the_reason_we_give(store, ateref, key, value):
    store.create_actor(Actor(actor_id="healthy", actor_template_namespace="ns", actor_template_name="t"))
    store.create_worker(Worker(worker_namespace="ns", worker_pool="pool", worker_pod="healthy", ip="10.0.0.1"))
    assert_go_lists_the_store(ateref, store)
    store.client.set(key, value)
    verdict = server_read_error(key, value)
    assert verdict is not None and verdict.breaks_list
    op = "list-actors" if key.startswith("actor:") else "list-workers"
    out = ateref.one(op)
    assert out.startswith("ERR "), out
    assert verdict.reason in out, (verdict.reason, out)
    # The other kind's list is not affected.
    other = "list-workers" if op == "list-actors" else "list-actors"
    assert ateref(other)[0].startswith("LIST ")


def test_a_value_of_the_wrong_type_breaks_go_list_as_we_say(store, ateref):
    store.client.hset("actor:a-hash", "f", "v")
    try:
        store.client.get("actor:a-hash")
    except Exception as e:  # noqa: BLE001 - the error the GET gives, as the scanners pass it on
        error = e
    verdict = judge_actor(b"actor:a-hash", error)
    out = ateref.one("list-actors")
    assert verdict is not None and verdict.breaks_list
    assert out == f"ERR while iterating all redis master: {verdict.reason}", (out, verdict.reason)


def test_a_record_naming_another_key_fails_go_get_but_not_list(store, ateref):
    store.client.set("actor:a-here", b'{"actorId":"a-elsewhere"}')
    store.client.set("worker:ns:pool:here", b'{"workerNamespace":"ns","workerPool":"pool","workerPod":"there"}')
    actor_verdict = judge_actor("actor:a-here", b'{"actorId":"a-elsewhere"}')
    worker_verdict = judge_worker(
        "worker:ns:pool:here", b'{"workerNamespace":"ns","workerPool":"pool","workerPod":"there"}'
    )
    assert actor_verdict is not None and not actor_verdict.breaks_list
    assert worker_verdict is not None and not worker_verdict.breaks_list
    assert ateref.one("get-actor", "a-here") == f"ERR {actor_verdict.reason}"
    assert ateref.one("get-worker", "ns", "pool", "here") == f"ERR {worker_verdict.reason}"
    assert ateref("list-actors")[0] == "LIST 1"
    assert ateref("list-workers")[0] == "LIST 1"


def test_records_go_reads_that_atedash_might_doubt(store, ateref):
    """Spellings the server reads: our judgment says readable, and Go's list agrees."""
    values = {
        "actor:r1": b'{"actorId":"r1","version":9.223372036854775807e18}',
        "actor:r2": b'{"actor_id":"r2","status":99,"version":"1e5"}',
        "actor:r3": b' {"actorId" : "r3", "status" : null, "version":1e} ',
        "actor:r4": b'{"actorId":"r\\u0034","lastSnapshot":"\\ud83d\\ude00"}',
    }
    for key, value in values.items():
        store.client.set(key, value)
        assert server_read_error(key, value) is None, key
    listed = ateref("list-actors")
    assert listed[0] == "LIST 4"
    # ... and atedash reads each as Go does, to the last digit (issue 22).
    go = {json_format.Parse(line, Actor()).actor_id: json_format.Parse(line, Actor()) for line in listed[1:]}
    for key in values:
        ours = store.get_actor(key.split(":", 1)[1])
        assert ours == go[ours.actor_id], key
    assert go["r1"].version == 2**63 - 1 and go["r3"].version == 1


def test_the_consistency_check_reports_every_record_go_cannot_read_once(store, ateref):
    """All the unreadable records above in one store: the check reports each exactly once (corrupt_record
    when atedash cannot decode it either, else server_unreadable), Go's lists fail until the last one is
    gone, and the records Go reads are not reported as unreadable."""
    from storage import check as cc

    for key, value in UNREADABLE:
        store.client.set(key, value)
    store.client.set("actor:r1", b'{"actorId":"r1","version":9.223372036854775807e18}')  # Go reads it
    store.client.set("actor:r2", b'{"actor_id":"r2","status":99,"version":"1e5"}')  # Go reads it
    report = cc.run_check(store)
    flagged = {}
    for f in report.findings:
        if f.kind == cc.SERVER_UNREADABLE or (f.kind == cc.CORRUPT_RECORD and "the ate server cannot" in f.message):
            flagged.setdefault(f.keys[0], []).append(f.kind)
    assert sorted(flagged) == sorted(key for key, _ in UNREADABLE)
    assert all(len(kinds) == 1 for kinds in flagged.values()), flagged
    assert report.unreadable_by_server == len(UNREADABLE)
    # atedash reads numbers as Go does (issue 22): neither is reported.
    assert not any("actor:r1" in f.keys or "actor:r2" in f.keys for f in report.findings)
    assert ateref.one("list-actors").startswith("ERR ") and ateref.one("list-workers").startswith("ERR ")
    for key, _ in UNREADABLE:
        store.client.delete(key)
    assert ateref("list-actors")[0] == "LIST 2" and ateref("list-workers")[0] == "LIST 0"
    assert cc.run_check(store).unreadable_by_server == 0
