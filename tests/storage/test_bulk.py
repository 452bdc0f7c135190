"""Bulk actions (storage/bulk.py): every record checked again when written, a result per record."""

import pytest

from storage.ateapi_pb2 import Actor, Worker
from storage.bulk import BulkError, bulk_apply
from storage.codec import ACTOR_CODEC, WORKER_CODEC
from storage.keys import actor_lock_key

S = Actor.Status


@pytest.fixture
def records(store):
    pipe = store.client.pipeline(transaction=False)
    for i in range(200):
        status = S.STATUS_SUSPENDED if i % 2 else S.STATUS_RUNNING
        pipe.set(f"actor:b{i:03d}", ACTOR_CODEC.encode_json(Actor(actor_id=f"b{i:03d}", version=2, status=status)))
        worker = Worker(worker_namespace="n", worker_pool="p", worker_pod=f"w{i:03d}", version=5)
        if i % 3:
            worker.actor_id, worker.actor_namespace, worker.actor_template = f"b{i:03d}", "n", "t"
        pipe.set(f"worker:n:p:w{i:03d}", WORKER_CODEC.encode_json(worker))
        if i % 4 == 0:
            pipe.set(actor_lock_key(f"b{i:03d}"), f"tok-{i}")
    pipe.execute()
    return store


def test_delete_suspended_skips_the_others_and_the_changed(records):
    changes = []
    targets = [(f"actor:b{i:03d}", 2) for i in range(10)] + [("actor:b011", 1), ("actor:missing", None)]
    report = bulk_apply(records, "delete-suspended", targets, on_change=lambda *a: changes.append(a))
    assert [d["key"] for d in report.done] == ["actor:b001", "actor:b003", "actor:b005", "actor:b007", "actor:b009"]
    why = {s["key"]: s["why"] for s in report.skipped}
    assert why["actor:b000"] == "is STATUS_RUNNING, not STATUS_SUSPENDED"
    assert why["actor:b011"] == "changed since you saw it: version 1, now 2"
    assert why["actor:missing"] == "gone"
    assert len(changes) == 5 and not records.client.exists("actor:b001") and records.client.exists("actor:b011")


def test_free_workers_and_release_locks(records):
    report = bulk_apply(records, "free-workers", [(f"worker:n:p:w{i:03d}", None) for i in range(6)])
    assert [d["key"] for d in report.done] == [
        "worker:n:p:w001",
        "worker:n:p:w002",
        "worker:n:p:w004",
        "worker:n:p:w005",
    ]
    assert {s["why"] for s in report.skipped} == {"already free"}
    freed = WORKER_CODEC.decode(records.client.get("worker:n:p:w001"))[0]
    assert not freed.actor_id and freed.version == 6 and freed.worker_pod == "w001"
    report = bulk_apply(records, "release-locks", [(f"actor:b{i:03d}", None) for i in range(8)])
    assert [d["key"] for d in report.done] == ["lock:actor:b000", "lock:actor:b004"]
    assert len(report.skipped) == 6 and not records.client.exists("lock:actor:b000")


def test_hostile_targets_are_refused_whole(records):
    with pytest.raises(BulkError):
        bulk_apply(records, "delete-suspended", [("worker:n:p:w001", None)])
    with pytest.raises(BulkError):
        bulk_apply(records, "free-workers", [("actor:b001", None)])
    with pytest.raises(BulkError):
        bulk_apply(records, "flushall", [("actor:b001", None)])
    assert records.client.exists("actor:b001", "worker:n:p:w001") == 2


# --- Go's write rules (issue 22): a record the ate server cannot read is skipped with Go's reason ----

ODD_ACTOR = b'{"actorId":"odd","version":"2","status":"STATUS_SUSPENDED","futureField":1}'
ODD_WORKER = b'{"workerNamespace":"n","workerPool":"p","workerPod":"odd","version":"5","actorId":"b001","x":true}'


def test_delete_suspended_skips_an_actor_go_cannot_read(records):
    binary = Actor(actor_id="bin", version=2, status=S.STATUS_SUSPENDED).SerializeToString()
    records.client.set("actor:odd", ODD_ACTOR)
    records.client.set("actor:bin", binary)
    changes = []
    targets = [("actor:odd", 2), ("actor:bin", None), ("actor:b001", 2)]
    report = bulk_apply(records, "delete-suspended", targets, on_change=lambda *a: changes.append(a))
    assert [d["key"] for d in report.done] == ["actor:b001"] and len(changes) == 1
    skipped = {s["key"]: s for s in report.skipped}
    assert skipped["actor:odd"]["unreadable"] == 'proto: (line 1:60): unknown field "futureField"'
    assert skipped["actor:odd"]["why"] == (
        'the ate server cannot read it (its DeleteActor fails): proto: (line 1:60): unknown field "futureField"'
    )
    assert skipped["actor:bin"]["unreadable"].startswith("proto: ")
    assert records.client.get("actor:odd") == ODD_ACTOR and records.client.get("actor:bin") == binary
    assert report.to_dict()["skipped"] == report.skipped


def test_free_workers_skips_a_worker_go_cannot_read(records):
    records.client.set("worker:n:p:odd", ODD_WORKER)
    report = bulk_apply(records, "free-workers", [("worker:n:p:odd", 5), ("worker:n:p:w001", 5)])
    assert [d["key"] for d in report.done] == ["worker:n:p:w001"]
    assert report.skipped == [
        {
            "key": "worker:n:p:odd",
            "why": 'the ate server cannot read it (its UpdateWorker fails): proto: (line 1:90): unknown field "x"',
            "unreadable": 'proto: (line 1:90): unknown field "x"',
        }
    ]
    assert records.client.get("worker:n:p:odd") == ODD_WORKER
