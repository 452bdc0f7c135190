"""Scoped resets (storage/reset.py) on 10k actors: exactly the scope changes, version-checked, reported."""

from __future__ import annotations

import json
import threading

import pytest

from storage.ateapi_pb2 import Actor, Worker
from storage.codec import ACTOR_CODEC, WORKER_CODEC
from storage.keys import actor_lock_key
from storage.reset import Scope, ScopeError, iter_scope_export, reset_scope

S = Actor.Status
STATUSES = [S.STATUS_RUNNING, S.STATUS_SUSPENDED, S.STATUS_RESUMING, S.STATUS_SUSPENDING]


def seed(store, actors=10_000):
    """Actors in 10 namespaces; every RUNNING one on its own worker (same namespace), locked every 7th."""
    pipe = store.client.pipeline(transaction=False)
    for i in range(actors):
        ns = f"ns-{i % 10}"
        actor = Actor(
            actor_id=f"a{i:05d}",
            version=1,
            actor_template_namespace=ns,
            actor_template_name=f"t-{i % 3}",
            status=STATUSES[(i // 10) % 4],
        )
        if actor.status == S.STATUS_RUNNING:
            actor.ateom_pod_namespace, actor.ateom_pod_name = ns, f"w{i:05d}"
            worker = Worker(
                worker_namespace=ns,
                worker_pool="p",
                worker_pod=f"w{i:05d}",
                version=3,
                actor_id=actor.actor_id,
                actor_namespace=ns,
                actor_template=actor.actor_template_name,
            )
            pipe.set(f"worker:{ns}:p:w{i:05d}", WORKER_CODEC.encode_json(worker))
        if i % 7 == 0:
            pipe.set(actor_lock_key(actor.actor_id), f"holder-{i}", ex=3600)
        pipe.set(f"actor:{actor.actor_id}", ACTOR_CODEC.encode_json(actor))
    for i in range(100):  # free workers of a pool of their own
        worker = Worker(worker_namespace="ns-1", worker_pool="spare", worker_pod=f"s{i:03d}", version=1)
        pipe.set(f"worker:ns-1:spare:s{i:03d}", WORKER_CODEC.encode_json(worker))
    pipe.execute()


def snapshot(store):
    return dict(store.iter_raw(prefixes=("actor:", "worker:", "lock:")))


@pytest.fixture
def seeded(store):
    seed(store)
    return store


def test_scope_parsing_refuses_what_is_not_a_scope():
    assert Scope.parse("actors-status", "resuming").status == S.STATUS_RESUMING
    assert Scope.parse("actors-template", "ns-1/t-2") == Scope("actors-template", namespace="ns-1", name="t-2")
    for kind, value in [
        ("actors-namespace", ""),
        ("actors-namespace", "a/b"),
        ("actors-template", "ns-1"),
        ("actors-template", "ns-1/"),
        ("actors-template", "a/b/c"),
        ("actors-status", "sleeping"),
        ("workers-pool", "/p"),
        ("actors-namespace", "ns\n1"),
        ("everything", "x"),
    ]:
        with pytest.raises(ScopeError):
            Scope.parse(kind, value)


def test_namespace_reset_changes_exactly_its_actors_workers_and_locks(seeded):
    before = snapshot(seeded)
    audit = []
    lock = threading.Lock()

    def on_change(action, key, details):
        with lock:
            audit.append((action, key))

    report = reset_scope(seeded, Scope.parse("actors-namespace", "ns-3"), on_change=on_change)
    after = snapshot(seeded)
    ns3 = [i for i in range(10_000) if i % 10 == 3]
    assert sorted(report.actors_deleted) == [f"actor:a{i:05d}" for i in ns3]
    assert len(report.workers_freed) == 250
    assert sorted(report.workers_freed) == [f"worker:ns-3:p:w{i:05d}" for i in ns3 if (i // 10) % 4 == 0]
    assert sorted(report.locks_released) == [f"lock:actor:a{i:05d}" for i in ns3 if i % 7 == 0]
    assert report.skipped == [] and report.workers_deleted == []
    changed = set(report.actors_deleted) | set(report.workers_freed) | set(report.locks_released)
    # one audit line per record
    assert sorted(k for _, k in audit) == sorted(changed)
    for key, value in before.items():
        if key not in changed:
            assert after[key] == value, key  # everything else byte for byte
    for key in report.actors_deleted + report.locks_released:
        assert key not in after
    for key in report.workers_freed:
        worker = WORKER_CODEC.decode(after[key])[0]
        assert not worker.actor_id and not worker.actor_namespace and not worker.actor_template
        assert worker.version == 4 and worker.worker_namespace == "ns-3"


def test_dry_run_reports_the_same_and_changes_nothing(seeded):
    before = snapshot(seeded)
    scope = Scope.parse("actors-template", "ns-2/t-1")
    dry = reset_scope(seeded, scope, dry_run=True)
    assert snapshot(seeded) == before
    applied = reset_scope(seeded, scope)
    assert dry.to_dict()["deleted"] == applied.to_dict()["deleted"]
    assert dry.to_dict()["freed"] == applied.to_dict()["freed"]
    assert dry.to_dict()["released"] == applied.to_dict()["released"]
    assert dry.actors_deleted and dry.workers_freed


def test_status_reset(seeded):
    report = reset_scope(seeded, Scope.parse("actors-status", "STATUS_RESUMING"))
    assert len(report.actors_deleted) == 2500 and report.workers_freed == []
    assert seeded.scan_actors(limit=10, status=S.STATUS_RESUMING, max_scan=20_000).records == []


def test_pool_reset_deletes_free_workers_and_skips_those_of_live_actors(seeded):
    # a worker of the pool serving a live actor, and one whose actor is gone
    seeded.client.set(
        "worker:ns-1:spare:busy",
        WORKER_CODEC.encode_json(
            Worker(worker_namespace="ns-1", worker_pool="spare", worker_pod="busy", actor_id="a00001")
        ),
    )
    seeded.client.set(
        "worker:ns-1:spare:orphan",
        WORKER_CODEC.encode_json(
            Worker(worker_namespace="ns-1", worker_pool="spare", worker_pod="orphan", actor_id="no-such-actor")
        ),
    )
    report = reset_scope(seeded, Scope.parse("workers-pool", "ns-1/spare"))
    assert len(report.workers_deleted) == 101 and "worker:ns-1:spare:orphan" in report.workers_deleted
    assert report.skipped == [
        {"key": "worker:ns-1:spare:busy", "why": "assigned to actor:a00001, which exists: reset its actors first"}
    ]
    assert seeded.client.exists("worker:ns-1:spare:busy", "worker:ns-2:p:w00002") == 2  # the rest stays


def test_records_that_change_meanwhile_are_skipped_with_the_reason(seeded):
    """A writer bumps some actors and workers of the scope while the reset walks: each is skipped."""
    from storage import matches as walk_module

    bumped = {"actor:a00013": None, "worker:ns-3:p:w00003": None}
    original = walk_module.FullWalk._confirm

    def confirm_then_bump(self, shard, pairs):
        matches = original(self, shard, pairs)
        for m in matches:
            if m.key in bumped and bumped[m.key] is None:
                record = type(m.record)()
                record.CopyFrom(m.record)
                record.version += 5
                codec = ACTOR_CODEC if m.key.startswith("actor:") else WORKER_CODEC
                seeded.client.set(m.key, codec.encode_json(record))
                bumped[m.key] = record.version
        return matches

    walk_module.FullWalk._confirm = confirm_then_bump
    try:
        report = reset_scope(seeded, Scope.parse("actors-namespace", "ns-3"))
    finally:
        walk_module.FullWalk._confirm = original
    skipped = {s["key"]: s["why"] for s in report.skipped}
    assert skipped["actor:a00013"] == "changed meanwhile: version 1, now 6"
    assert skipped["worker:ns-3:p:w00003"] == "changed meanwhile: version 3, now 8"
    assert seeded.client.exists("actor:a00013") and "actor:a00013" not in report.actors_deleted
    assert "worker:ns-3:p:w00003" not in report.workers_freed


def test_scope_backup_holds_exactly_the_scope(seeded):
    lines = [json.loads(line) for line in iter_scope_export(seeded, Scope.parse("actors-template", "ns-4/t-0"))]
    actors = [x["key"] for x in lines if x["key"].startswith("actor:")]
    workers = [x["key"] for x in lines if x["key"].startswith("worker:")]
    expected = [i for i in range(10_000) if i % 10 == 4 and i % 3 == 0]
    assert actors == [f"actor:a{i:05d}" for i in expected]
    assert workers == sorted(f"worker:ns-4:p:w{i:05d}" for i in expected if (i // 10) % 4 == 0)
    assert all(x["record"] is not None for x in lines)


# --- Go's write rules (issue 22) -------------------------------------------------------------------

ODD = b'{"actorId":"odd","version":"1","actorTemplateNamespace":"ns-odd","status":"STATUS_SUSPENDED","extra":1}'
ODD_WORKER = (
    b'{"workerNamespace":"ns-odd","workerPool":"p","workerPod":"w-odd","version":"3","actorId":"fine",'
    b'"actorNamespace":"ns-odd","extra":1}'
)


def odd_namespace(store):
    """ns-odd: an actor Go cannot read (its lock held), a readable one whose worker Go cannot read."""
    store.client.set("actor:odd", ODD)
    store.client.set(actor_lock_key("odd"), "holder-odd")
    fine = Actor(actor_id="fine", version=1, actor_template_namespace="ns-odd", status=S.STATUS_RUNNING)
    store.client.set("actor:fine", ACTOR_CODEC.encode_json(fine))
    store.client.set("worker:ns-odd:p:w-odd", ODD_WORKER)


@pytest.mark.parametrize("dry_run", [False, True])
def test_reset_skips_records_go_cannot_read_and_leaves_them(store, dry_run):
    odd_namespace(store)
    before = snapshot(store)
    report = reset_scope(store, Scope.parse("actors-namespace", "ns-odd"), dry_run=dry_run)
    assert report.actors_deleted == ["actor:fine"] and report.workers_freed == []
    assert report.locks_released == []  # the skipped actor's lock stays
    assert sorted(report.skipped, key=lambda s: s["key"]) == [
        {
            "key": "actor:odd",
            "why": 'the ate server cannot read it (its DeleteActor fails): proto: (line 1:94): unknown field "extra"',
            "unreadable": 'proto: (line 1:94): unknown field "extra"',
        },
        {
            "key": "worker:ns-odd:p:w-odd",
            "why": 'the ate server cannot read it (its UpdateWorker fails): proto: (line 1:123): unknown field "extra"',
            "unreadable": 'proto: (line 1:123): unknown field "extra"',
        },
    ]
    assert report.to_dict()["counts"]["skipped"] == 2
    after = snapshot(store)
    if dry_run:
        assert after == before
    else:
        assert after == {k: v for k, v in before.items() if k != "actor:fine"}


def test_a_pool_reset_deletes_a_worker_go_cannot_read_as_go_deletes_it(store):
    """Go's DeleteWorker is a plain DEL (it reads nothing): the pool reset deletes it the same way."""
    store.client.set("worker:ns-odd:p:w-odd", ODD_WORKER.replace(b'"actorId":"fine",', b""))
    report = reset_scope(store, Scope.parse("workers-pool", "ns-odd/p"))
    assert report.workers_deleted == ["worker:ns-odd:p:w-odd"] and report.skipped == []
    assert not store.client.exists("worker:ns-odd:p:w-odd")
