"""The Go API port on the real cluster: every method and every error path."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from storage import (
    AlreadyExists,
    CorruptRecord,
    FailedPrecondition,
    ImmutableField,
    NotFound,
    Persistence,
    StorageError,
    UnreadableByServer,
    UnreadableStored,
    VersionConflict,
    actor_key,
    key_slot,
    worker_key,
)
from storage.ateapi_pb2 import Actor, Worker
from tests.hypothesis_profiles import examples

S = Actor.Status


def make_actor(actor_id="a1", status=S.STATUS_SUSPENDED, **fields) -> Actor:
    return Actor(actor_id=actor_id, actor_template_namespace="ns", actor_template_name="tmpl", status=status, **fields)


def make_worker(pod="w1", **fields) -> Worker:
    return Worker(worker_namespace="ns", worker_pool="pool", worker_pod=pod, ip="10.0.0.1", **fields)


def raw_set(store: Persistence, key: str, value: bytes) -> None:
    store.client.set(key, value)


def all_keys(store: Persistence) -> list[bytes]:
    keys = []
    for shard in store.topology.shards():
        keys.extend(shard.client.keys("*"))
    return sorted(keys)


def test_every_error_subclasses_storage_error():
    for error in (NotFound, AlreadyExists, VersionConflict, FailedPrecondition, ImmutableField, CorruptRecord):
        assert issubclass(error, StorageError)


# ------------------------------------------------------------------ actors


def test_create_stores_version_1_as_go_json_and_leaves_the_callers_message_alone(store):
    actor = make_actor(version=7)
    store.create_actor(actor)
    assert actor.version == 7
    assert store.client.get("actor:a1") == (
        b'{"actorId":"a1","version":"1","actorTemplateNamespace":"ns","actorTemplateName":"tmpl",'
        b'"status":"STATUS_SUSPENDED"}'
    )
    got = store.get_actor("a1")
    assert got.version == 1 and got.status == S.STATUS_SUSPENDED


def test_create_twice_is_already_exists(store):
    store.create_actor(make_actor())
    with pytest.raises(AlreadyExists) as e:
        store.create_actor(make_actor(status=S.STATUS_RUNNING))
    assert e.value.key == "actor:a1"
    assert store.get_actor("a1").status == S.STATUS_SUSPENDED


def test_get_missing_actor_is_not_found(store):
    with pytest.raises(NotFound) as e:
        store.get_actor("nope")
    assert e.value.key == "actor:nope"


def test_one_actor_and_one_worker_leave_exactly_two_keys(store):
    store.create_actor(make_actor())
    store.create_worker(make_worker())
    assert all_keys(store) == [b"actor:a1", b"worker:ns:pool:w1"]


def test_update_bumps_version_on_store_and_callers_message(store):
    store.create_actor(make_actor())
    actor = store.get_actor("a1")
    actor.status = S.STATUS_RUNNING
    actor.ateom_pod_ip = "10.1.1.1"
    store.update_actor(actor, 1)
    assert actor.version == 2
    stored = store.get_actor("a1")
    assert (stored.version, stored.status, stored.ateom_pod_ip) == (2, S.STATUS_RUNNING, "10.1.1.1")


def test_update_missing_actor_is_not_found(store):
    with pytest.raises(NotFound):
        store.update_actor(make_actor("ghost"), 1)


def test_update_from_a_stale_version_is_version_conflict(store):
    store.create_actor(make_actor())
    actor = store.get_actor("a1")
    store.update_actor(actor, 1)
    stale = store.get_actor("a1")
    with pytest.raises(VersionConflict) as e:
        store.update_actor(stale, 1)
    assert (e.value.key, e.value.expected, e.value.actual) == ("actor:a1", 1, 2)
    assert stale.version == 2  # untouched by the failed update
    assert store.get_actor("a1").version == 2


@pytest.mark.parametrize("field", ["actor_template_namespace", "actor_template_name"])
def test_update_changing_an_immutable_field_is_refused(store, field):
    store.create_actor(make_actor())
    actor = store.get_actor("a1")
    setattr(actor, field, "other")
    with pytest.raises(ImmutableField) as e:
        store.update_actor(actor, 1)
    assert e.value.field == field and e.value.key == "actor:a1"
    assert getattr(store.get_actor("a1"), field) != "other"


def test_update_of_a_record_whose_id_differs_from_its_key_is_corrupt(store):
    raw_set(store, "actor:a1", b'{"actorId":"a2","version":"1"}')
    with pytest.raises(CorruptRecord):
        store.update_actor(make_actor("a1"), 1)


def test_delete_suspended_actor(store):
    store.create_actor(make_actor())
    store.delete_actor("a1")
    with pytest.raises(NotFound):
        store.get_actor("a1")
    assert all_keys(store) == []


def test_delete_missing_actor_is_not_found(store):
    with pytest.raises(NotFound):
        store.delete_actor("ghost")


@pytest.mark.parametrize("status", [S.STATUS_UNSPECIFIED, S.STATUS_RESUMING, S.STATUS_RUNNING, S.STATUS_SUSPENDING])
def test_delete_unless_suspended_is_failed_precondition(store, status):
    store.create_actor(make_actor(status=status))
    with pytest.raises(FailedPrecondition) as e:
        store.delete_actor("a1")
    assert e.value.key == "actor:a1" and "SUSPENDED" in e.value.reason
    assert store.get_actor("a1").status == status


def test_delete_when_the_record_changes_during_the_delete_is_version_conflict(store, monkeypatch):
    store.create_actor(make_actor())
    real_script = store._compare_and_delete

    def change_then_delete(keys, args):
        # Another writer resumes the actor between our read and our delete.
        actor = store.get_actor("a1")
        actor.status = S.STATUS_RESUMING
        store.update_actor(actor, 1)
        return real_script(keys=keys, args=args)

    monkeypatch.setattr(store, "_compare_and_delete", change_then_delete)
    with pytest.raises(VersionConflict) as e:
        store.delete_actor("a1")
    assert (e.value.expected, e.value.actual) == (1, 2)
    assert store.get_actor("a1").status == S.STATUS_RESUMING


def test_list_actors_empty_is_empty_list(store):
    assert store.list_actors() == []


def test_keys_land_on_all_three_primaries_and_each_is_listed_once(store):
    ids = [f"actor-{i}" for i in range(300)]
    for actor_id in ids:
        store.create_actor(make_actor(actor_id))
    primaries = store.topology.shards()
    assert len(primaries) == 3
    per_primary = [shard.client.dbsize() for shard in primaries]
    assert all(n > 0 for n in per_primary) and sum(per_primary) == 300
    listed = [a.actor_id for a in store.list_actors()]
    assert sorted(listed) == sorted(ids) and len(set(listed)) == len(listed)


def test_list_actors_names_the_corrupt_key(store):
    store.create_actor(make_actor("good"))
    raw_set(store, "actor:bad", b"\xff\x00 not a record")
    with pytest.raises(CorruptRecord) as e:
        store.list_actors()
    assert e.value.key == "actor:bad"
    assert e.value.preview.startswith("\\xff\\x00")


def test_get_corrupt_actor(store):
    raw_set(store, "actor:bad", b'{"actorId": "bad", "version": "x"}')
    with pytest.raises(CorruptRecord) as e:
        store.get_actor("bad")
    assert e.value.key == "actor:bad" and e.value.preview and len(e.value.preview) <= 200


def test_get_actor_whose_id_is_not_its_keys_is_corrupt(store):
    raw_set(store, "actor:a1", b'{"actorId":"a2","version":"1"}')
    with pytest.raises(CorruptRecord) as e:
        store.get_actor("a1")
    assert "a2" in e.value.reason


# ------------------------------------------------------------------ records as Go and others write them


def test_records_written_as_go_writes_them_are_read_and_updated_in_the_same_form(store):
    raw_set(
        store,
        "actor:a1",
        b'{"actorId":"a1","version":"3","actorTemplateNamespace":"ns",'
        b'"actorTemplateName":"t","status":"STATUS_RUNNING"}',
    )
    actor = store.get_actor("a1")
    assert (actor.version, actor.actor_template_name, actor.status) == (3, "t", S.STATUS_RUNNING)
    actor.status = S.STATUS_SUSPENDING
    store.update_actor(actor, 3)
    assert store.client.get("actor:a1") == (
        b'{"actorId":"a1","version":"4","actorTemplateNamespace":"ns","actorTemplateName":"t",'
        b'"status":"STATUS_SUSPENDING"}'
    )


def test_other_valid_json_spellings_are_read(store):
    raw_set(store, "actor:a1", b'{ "actor_id": "a1", "version": 3, "status": 4,\n "actor_template_name": "t" }')
    actor = store.get_actor("a1")
    assert (actor.version, actor.status, actor.actor_template_name) == (3, S.STATUS_SUSPENDED, "t")
    store.delete_actor("a1")


def test_binary_records_are_read_but_not_updated_as_go_refuses_them(store):
    """Issue 22: Go's UpdateActor reads the stored record with protojson first and fails on a
    binary one; an update here keeping it binary at version + 1 left it unreadable."""
    record = Actor(
        actor_id="a1", version=5, actor_template_namespace="ns", actor_template_name="t", status=S.STATUS_RUNNING
    )
    raw_set(store, "actor:a1", record.SerializeToString())
    actor = store.get_actor("a1")
    assert actor == record
    actor.status = S.STATUS_SUSPENDED
    with pytest.raises(UnreadableStored) as e:
        store.update_actor(actor, 5)
    assert e.value.call == "UpdateActor" and e.value.key == "actor:a1"
    assert e.value.go_error == "while executing update actor transaction: in protojson.Unmarshal: " + e.value.reason
    assert store.client.get("actor:a1") == record.SerializeToString() and actor.version == 5


UNKNOWN_JSON = (
    b'{"actorId":"a1","version":"1","actorTemplateNamespace":"ns",'
    b'"actorTemplateName":"t","newThing":{"deep":[1,2.50]},"flag":true}'
)


def test_unknown_json_keys_refuse_an_update_with_gos_reason(store):
    raw_set(store, "actor:a1", UNKNOWN_JSON)
    fresh = Actor(actor_id="a1", actor_template_namespace="ns", actor_template_name="t", status=S.STATUS_RUNNING)
    with pytest.raises(UnreadableStored) as e:
        store.update_actor(fresh, 1)
    assert e.value.reason == 'proto: (line 1:85): unknown field "newThing"'
    assert "nothing was written" in e.value.message and e.value.reason in e.value.message
    assert isinstance(e.value, UnreadableByServer)
    with pytest.raises(UnreadableStored):
        store.update_actor(fresh, 7)  # Go reads before it compares versions
    assert store.client.get("actor:a1") == UNKNOWN_JSON and fresh.version == 0


def test_unknown_binary_fields_refuse_a_worker_update(store):
    unknown = b"\x98\x06\x2a" + b"\xa2\x06\x05hello"
    record = Worker(worker_namespace="ns", worker_pool="pool", worker_pod="w1", ip="10.0.0.1", version=2)
    raw_set(store, "worker:ns:pool:w1", record.SerializeToString() + unknown)
    fresh = make_worker(actor_id="a9", actor_namespace="ns", actor_template="t")
    with pytest.raises(UnreadableStored) as e:
        store.update_worker(fresh, 2)
    assert e.value.call == "UpdateWorker"
    assert store.client.get("worker:ns:pool:w1") == record.SerializeToString() + unknown and fresh.version == 0


def test_delete_refuses_a_suspended_actor_go_cannot_read(store):
    value = b'{"actorId":"a1","version":"3","status":"STATUS_SUSPENDED","extra":1}'
    raw_set(store, "actor:a1", value)
    with pytest.raises(UnreadableStored) as e:
        store.delete_actor("a1")
    assert e.value.call == "DeleteActor" and e.value.go_error == "in protojson.Unmarshal: " + e.value.reason
    assert 'unknown field "extra"' in e.value.reason
    # Not SUSPENDED and unreadable: Go's read fails first.
    raw_set(store, "actor:a2", b'{"actorId":"a2","status":"STATUS_RUNNING","extra":1}')
    with pytest.raises(UnreadableStored):
        store.delete_actor("a2")
    assert store.client.get("actor:a1") == value and store.client.exists("actor:a2")


def test_a_worker_go_cannot_read_is_deleted_as_go_deletes_it(store):
    """Go's DeleteWorker is a plain DEL: it reads nothing, so nothing refuses it."""
    raw_set(store, "worker:ns:pool:w1", b'{"workerNamespace":"ns","workerPool":"pool","workerPod":"w1","x":1}')
    store.delete_worker("ns", "pool", "w1")
    assert not store.client.exists("worker:ns:pool:w1")


def test_an_id_with_a_colon_is_updated_as_go_updates_it(store):
    """Go's UpdateActor reads actor:a:b fine (only its list fails on the key): so does storage."""
    raw_set(store, "actor:a:b", b'{"actorId":"a:b","version":"1"}')
    store.update_actor(Actor(actor_id="a:b", last_snapshot="s"), 1)
    assert store.get_actor("a:b").version == 2


@settings(
    max_examples=examples(60, dev=20),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    actor_id=st.text(alphabet=st.characters(blacklist_categories=["Cs"]), min_size=1, max_size=30),
    pod_ip=st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=20),
    status=st.sampled_from(list(S.values())),
    snapshot=st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=40),
)
def test_property_create_get_update_round_trip(store, actor_id, pod_ip, status, snapshot):
    store.client.delete(actor_key(actor_id))
    actor = Actor(
        actor_id=actor_id,
        actor_template_namespace="ns",
        actor_template_name="t",
        ateom_pod_ip=pod_ip,
        status=status,
        last_snapshot=snapshot,
    )
    if ":" in actor_id:  # a key the ate server cannot list ("bad key format"): refused, nothing written
        with pytest.raises(UnreadableByServer, match="bad key format"):
            store.create_actor(actor)
        assert store.client.get(actor_key(actor_id)) is None
        return
    store.create_actor(actor)
    got = store.get_actor(actor_id)
    expected = Actor()
    expected.CopyFrom(actor)
    expected.version = 1
    assert got == expected
    got.in_progress_snapshot = snapshot + "-next"
    store.update_actor(got, 1)
    again = store.get_actor(actor_id)
    assert again == got and again.version == 2
    store.client.delete(actor_key(actor_id))


# ------------------------------------------------------------------ workers


def test_worker_lifecycle(store):
    worker = make_worker()
    store.create_worker(worker)
    assert worker.version == 0
    got = store.get_worker("ns", "pool", "w1")
    assert got.version == 1 and got.ip == "10.0.0.1"
    assert store.client.get("worker:ns:pool:w1") == (
        b'{"workerNamespace":"ns","workerPool":"pool","workerPod":"w1","ip":"10.0.0.1","version":"1"}'
    )
    got.actor_id = "a1"
    store.update_worker(got, 1)
    assert got.version == 2
    assert store.get_worker("ns", "pool", "w1").actor_id == "a1"
    assert [w.worker_pod for w in store.list_workers()] == ["w1"]
    store.delete_worker("ns", "pool", "w1")
    store.delete_worker("ns", "pool", "w1")  # idempotent
    with pytest.raises(NotFound) as e:
        store.get_worker("ns", "pool", "w1")
    assert e.value.key == worker_key("ns", "pool", "w1")
    assert store.list_workers() == []


def test_worker_errors(store):
    store.create_worker(make_worker())
    with pytest.raises(AlreadyExists):
        store.create_worker(make_worker())
    with pytest.raises(NotFound):
        store.update_worker(make_worker("ghost"), 1)
    with pytest.raises(VersionConflict) as e:
        store.update_worker(make_worker(), 4)
    assert (e.value.expected, e.value.actual) == (4, 1)
    moved = make_worker()
    moved.ip = "10.9.9.9"
    with pytest.raises(ImmutableField) as e:
        store.update_worker(moved, 1)
    assert e.value.field == "ip"


def test_corrupt_worker(store):
    raw_set(store, "worker:ns:pool:w1", b'{"workerNamespace":"ns","workerPool":"pool","workerPod":"other"}')
    with pytest.raises(CorruptRecord):
        store.get_worker("ns", "pool", "w1")
    with pytest.raises(CorruptRecord) as e:
        store.list_workers()
    assert e.value.key == "worker:ns:pool:w1"


# ------------------------------------------------------------------ locks


def test_lock_acquire_is_exclusive_and_release_needs_the_token(store):
    assert store.acquire_lock("lock:actor:a1", "me", 30) is True
    assert store.acquire_lock("lock:actor:a1", "you", 30) is False
    store.release_lock("lock:actor:a1", "you")  # wrong token: no error, nothing released
    assert store.client.get("lock:actor:a1") == b"me"
    info = store.get_lock("lock:actor:a1")
    assert info.token == "me" and 0 < info.ttl_ms <= 30_000
    store.release_lock("lock:actor:a1", "me")
    assert store.client.get("lock:actor:a1") is None
    store.release_lock("lock:actor:a1", "me")  # not held: no error
    assert store.get_lock("lock:actor:a1") is None


def test_lock_expires(store):
    assert store.acquire_lock("lock:actor:a1", "me", 0.2)
    ttl = store.client.pttl("lock:actor:a1")
    assert 0 < ttl <= 200 or ttl == -2  # -2: already expired on a very busy machine
    # Poll for the expiry rather than sleeping a guessed amount.
    while store.client.exists("lock:actor:a1"):
        pass
    assert store.acquire_lock("lock:actor:a1", "you", 1)
    assert store.client.get("lock:actor:a1") == b"you"


def test_lock_with_whole_seconds_uses_a_seconds_ttl(store):
    assert store.acquire_lock("lock:x", "t", 2)
    assert 1000 < store.client.pttl("lock:x") <= 2000


# ------------------------------------------------------------------ whole store


def test_debug_clear_all_flushes_every_primary_and_counts(store):
    for i in range(30):
        store.create_actor(make_actor(f"a{i}"))
    store.create_worker(make_worker())
    store.acquire_lock("lock:actor:a1", "t", 30)
    store.client.set("something-else", "x")
    counts = store.debug_clear_all()
    assert len(counts) == 3
    assert sum(c.actors for c in counts) == 30
    assert (sum(c.workers for c in counts), sum(c.locks for c in counts), sum(c.other for c in counts)) == (1, 1, 1)
    assert all_keys(store) == []


def test_key_slot_matches_the_server(store):
    for key in ["actor:a1", "worker:ns:pool:w1", "{tag}x", "lock:actor:é"]:
        assert key_slot(key) == store.client.execute_command("CLUSTER KEYSLOT", key)
