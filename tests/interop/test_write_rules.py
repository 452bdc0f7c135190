"""Go's write rules on a record it cannot read (issue 22, item 3), next to the seed's Go store.

For each kind of record the ate server cannot read, Go's UpdateActor / DeleteActor / UpdateWorker
fail reading it, and storage's update_actor / delete_actor / update_worker (and the bulk actions,
resets and repairs built on the same rule) refuse with the very error Go returns; Go's DeleteWorker
reads nothing and deletes it, as storage's delete_worker does. Neither side changes the record
where it refuses.
"""

from __future__ import annotations

import pytest
from test_roundtrip import protojson

from storage import UnreadableStored
from storage.ateapi_pb2 import Actor, Worker
from storage.bulk import bulk_apply
from storage.reset import Scope, reset_scope

S = Actor.Status

# Actors atedash decodes but the Go server cannot read.
UNREADABLE_ACTORS = {
    "unknown-field": b'{"actorId":"x","version":"1","status":"STATUS_SUSPENDED","futureField":1}',
    "binary": Actor(actor_id="x", version=1, status=S.STATUS_SUSPENDED).SerializeToString(),
    "enum-as-true": b'{"actorId":"x","version":"1","status":true}',
    "int64-leading-zero": b'{"actorId":"x","version":"01","status":"STATUS_SUSPENDED"}',
    "both-names": b'{"actorId":"x","actor_id":"x","version":"1","status":"STATUS_SUSPENDED"}',
    "running-and-unknown": b'{"actorId":"x","version":"1","status":"STATUS_RUNNING","z":[]}',
}
UNREADABLE_WORKERS = {
    "unknown-field": b'{"workerNamespace":"n","workerPool":"p","workerPod":"x","version":"1","actorId":"a","q":0}',
    "binary": Worker(
        worker_namespace="n", worker_pool="p", worker_pod="x", version=1, actor_id="a"
    ).SerializeToString(),
    "both-names": b'{"workerNamespace":"n","workerPool":"p","workerPod":"x","worker_pod":"x","version":"1"}',
}


def _err(line: str) -> str:
    assert line.startswith("ERR "), line
    return line[4:]


@pytest.mark.parametrize("value", UNREADABLE_ACTORS.values(), ids=UNREADABLE_ACTORS.keys())
def test_update_and_delete_of_an_actor_go_cannot_read_fail_alike(store, ateref, value):
    store.client.set("actor:x", value)
    assert store.get_actor("x").actor_id == "x"  # atedash reads it (else: a CorruptRecord)
    wanted = Actor(actor_id="x", last_snapshot="s", status=S.STATUS_SUSPENDED)
    go_update = _err(ateref.one("update-actor", protojson(wanted), "1"))
    with pytest.raises(UnreadableStored) as e:
        store.update_actor(wanted, 1)
    assert e.value.go_error == go_update and e.value.call == "UpdateActor"
    go_delete = _err(ateref.one("delete-actor", "x"))
    with pytest.raises(UnreadableStored) as e:
        store.delete_actor("x")
    assert e.value.go_error == go_delete and e.value.call == "DeleteActor"
    report = bulk_apply(store, "delete-suspended", [("actor:x", None)])
    assert report.done == [] and report.skipped[0]["unreadable"] == e.value.reason
    assert store.client.get("actor:x") == value


@pytest.mark.parametrize("value", UNREADABLE_WORKERS.values(), ids=UNREADABLE_WORKERS.keys())
def test_a_worker_go_cannot_read_is_not_updated_nor_freed_but_deleted_alike(store, ateref, value):
    store.client.set("worker:n:p:x", value)
    freed = Worker(worker_namespace="n", worker_pool="p", worker_pod="x")
    go_update = _err(ateref.one("update-worker", protojson(freed), "1"))
    with pytest.raises(UnreadableStored) as e:
        store.update_worker(freed, 1)
    assert e.value.go_error == go_update and e.value.call == "UpdateWorker"
    report = bulk_apply(store, "free-workers", [("worker:n:p:x", None)])
    assert report.done == [] and report.skipped[0]["unreadable"] == e.value.reason
    assert store.client.get("worker:n:p:x") == value
    # DeleteWorker: a plain DEL on both sides.
    assert ateref.one("delete-worker", "n", "p", "x") == "OK"
    assert not store.client.exists("worker:n:p:x")
    store.client.set("worker:n:p:x", value)
    store.delete_worker("n", "p", "x")
    assert not store.client.exists("worker:n:p:x")


def test_a_reset_leaves_what_go_would_not_delete_and_go_lists_the_rest(store, ateref):
    store.client.set(
        "actor:x", UNREADABLE_ACTORS["unknown-field"].replace(b'"version"', b'"actorTemplateNamespace":"t","version"')
    )
    store.create_actor(Actor(actor_id="y", actor_template_namespace="t", status=S.STATUS_SUSPENDED))
    go_delete = _err(ateref.one("delete-actor", "x"))
    report = reset_scope(store, Scope.parse("actors-namespace", "t"))
    assert report.actors_deleted == ["actor:y"]
    assert [s["key"] for s in report.skipped] == ["actor:x"]
    assert go_delete.endswith(report.skipped[0]["unreadable"])
    assert store.client.exists("actor:x") and not store.client.exists("actor:y")


def test_readable_records_are_written_alike(store, ateref):
    """The control: what Go reads, both sides update and delete."""
    store.create_actor(Actor(actor_id="x", status=S.STATUS_SUSPENDED))
    go = Actor(actor_id="x", last_snapshot="go", status=S.STATUS_SUSPENDED)
    assert ateref.one("update-actor", protojson(go), "1") == "OK"
    actor = store.get_actor("x")
    actor.last_snapshot = "py"
    store.update_actor(actor, 2)
    assert ateref.one("delete-actor", "x") == "OK"
    store.create_actor(Actor(actor_id="x", status=S.STATUS_SUSPENDED))
    store.delete_actor("x")
    assert not store.client.exists("actor:x")
