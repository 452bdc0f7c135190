"""Keys that are not UTF-8 (issue 22, M4): walks, reads, resets and bulk actions handle them, on the
real cluster. The attack's record: `actor:\\xffrz` (byte 0xFF) naming itself with its key's bytes
escaped (`\\xffrz`, a backslash and four letters), so that an escaped key text equals its identity."""

from __future__ import annotations

import json

from storage.ateapi_pb2 import Actor, Worker
from storage.bulk import bulk_apply
from storage.codec import ACTOR_CODEC, WORKER_CODEC
from storage.keys import actor_lock_key, key_bytes, shown_key
from storage.matches import FullWalk, actor_walk
from storage.records import ACTORS
from storage.reset import Scope, reset_scope

BAD_KEY = b"actor:\xffrz"
BAD_VALUE = json.dumps(
    {"actorId": "\\xffrz", "actorTemplateNamespace": "team-x", "actorTemplateName": "web", "version": "1"}
).encode()


def seed_m4(store, actors=300):
    """`actors` RUNNING actors of team-x, each on its worker, every 3rd locked; plus the bad key, with a
    worker assigned to the id it names and a lock under that id."""
    pipe = store.client.pipeline(transaction=False)
    for i in range(actors):
        actor = Actor(
            actor_id=f"x{i:04d}",
            version=1,
            actor_template_namespace="team-x",
            actor_template_name="web",
            status=Actor.STATUS_RUNNING,
            ateom_pod_namespace="team-x",
            ateom_pod_name=f"w{i:04d}",
        )
        worker = Worker(
            worker_namespace="team-x", worker_pool="p", worker_pod=f"w{i:04d}", version=2, actor_id=actor.actor_id
        )
        pipe.set(f"actor:{actor.actor_id}", ACTOR_CODEC.encode_json(actor))
        pipe.set(f"worker:team-x:p:w{i:04d}", WORKER_CODEC.encode_json(worker))
        if i % 3 == 0:
            pipe.set(actor_lock_key(actor.actor_id), f"holder-{i}", ex=3600)
    pipe.set(BAD_KEY, BAD_VALUE)
    bad_worker = Worker(worker_namespace="team-x", worker_pool="p", worker_pod="bad", version=1, actor_id="\\xffrz")
    pipe.set("worker:team-x:p:bad", WORKER_CODEC.encode_json(bad_worker))
    pipe.set(actor_lock_key("\\xffrz"), "holder-bad", ex=3600)
    pipe.execute()


def test_a_key_that_is_not_utf8_is_never_a_record_whatever_it_names_itself(store):
    error = None
    try:
        ACTORS.decode_stored(BAD_KEY, BAD_VALUE)
    except Exception as exc:  # noqa: BLE001
        error = exc
    assert error is not None and "not UTF-8" in error.reason and error.key == "actor:\\xffrz"
    store.client.set(BAD_KEY, BAD_VALUE)
    records, gone, corrupt = store.read_records(ACTORS, [BAD_KEY.decode("utf-8", "surrogateescape")])
    assert records == [] and gone == [] and [c.key for c in corrupt] == ["actor:\\xffrz"]


def test_a_walk_reports_it_as_corrupt_with_a_printable_key(store):
    seed_m4(store, actors=50)
    result = FullWalk(store.topology, actor_walk(template_namespace="team-x")).run()
    assert len(result.keys) == 50 and all(k.isascii() for k in result.keys)
    assert [(c.key, "not UTF-8" in c.error) for c in result.corrupt] == [("actor:\\xffrz", True)]
    assert shown_key(result.corrupt[0].key).encode("utf-8")  # renders into a page


def test_the_reset_of_the_m4_store_finishes_and_frees_every_worker_of_the_actors_it_deleted(store):
    seed_m4(store)
    report = reset_scope(store, Scope.parse("actors-namespace", "team-x"))
    counts = report.counts()
    assert counts["actors_deleted"] == 300 and counts["workers_freed"] == 300 and counts["locks_released"] == 100
    assert [c["key"] for c in report.corrupt] == ["actor:\\xffrz"]  # reported, not deleted
    json.dumps(report.to_dict()).encode("utf-8")  # printable, for the page and `--format json`
    assert store.client.get(BAD_KEY) == BAD_VALUE
    # Nothing of the deleted actors is left assigned or locked; the bad record's worker and lock are
    # not its: the id it names is not its key's.
    for i in range(300):
        assert not store.client.exists(f"actor:x{i:04d}")
        assert not store.client.exists(actor_lock_key(f"x{i:04d}"))
        assert store.get_worker("team-x", "p", f"w{i:04d}").actor_id == ""
    assert store.get_worker("team-x", "p", "bad").actor_id == "\\xffrz"
    assert store.client.get(actor_lock_key("\\xffrz")) == b"holder-bad"


def test_a_bulk_action_on_a_key_that_is_not_utf8_is_skipped_with_the_reason(store):
    seed_m4(store, actors=3)
    surrogate = BAD_KEY.decode("utf-8", "surrogateescape")  # as walks hand keys out
    assert key_bytes(surrogate) == BAD_KEY
    report = bulk_apply(store, "delete-suspended", [(surrogate, None), ("actor:x0000", None)])
    assert [s["key"] for s in report.skipped] == ["actor:\\xffrz", "actor:x0000"]
    assert "not UTF-8" in report.skipped[0]["why"]
    json.dumps(report.to_dict()).encode("utf-8")
    assert store.client.get(BAD_KEY) == BAD_VALUE
    assert bulk_apply(store, "release-locks", [(surrogate, None)]).skipped[0]["key"].isascii()
    assert bulk_apply(store, "free-workers", [("worker:team-x:p:w0000", None)]).done
