"""Writing what the ate server writes (issue 11, item 4) and the storage side of the raw editor.

Creates refuse keys the server cannot list and values it cannot read; updates drop a TTL as the
server's plain SET does; write_raw / delete_raw compare-and-set on exactly the bytes shown;
canonical_rewrite lists what a rewrite would lose; scans and the statistics flag unreadable records.
"""

from __future__ import annotations

import pytest

from storage import FailedPrecondition, NotFound, UnreadableByServer, VersionConflict
from storage.ateapi_pb2 import Actor, Worker
from storage.raw import canonical_rewrite

S = Actor.Status


@pytest.mark.parametrize(
    "make",
    [
        lambda p: p.create_actor(Actor(actor_id="a:b")),
        lambda p: p.create_worker(Worker(worker_namespace="n:s", worker_pool="p", worker_pod="w")),
        lambda p: p.create_worker(Worker(worker_namespace="ns", worker_pool="p:1", worker_pod="w")),
        lambda p: p.create_worker(Worker(worker_namespace="ns", worker_pool="p", worker_pod="w:0")),
    ],
)
def test_create_refuses_keys_the_server_cannot_list(store, make):
    with pytest.raises(UnreadableByServer) as info:
        make(store)
    assert info.value.reason.startswith('bad key format "')
    assert "ListActors" in info.value.fails or "ListWorkers" in info.value.fails
    assert store.client.dbsize() == 0 or not any(store.iter_raw())


def test_update_drops_a_ttl_as_the_server_does(store):
    store.create_actor(Actor(actor_id="a1"))
    store.client.pexpire("actor:a1", 600_000)
    assert store.client.pttl("actor:a1") > 0
    a = store.get_actor("a1")
    a.status = S.STATUS_RUNNING
    store.update_actor(a, 1)
    assert store.client.pttl("actor:a1") == -1  # no expiry any more, as after the Go server's SET
    store.create_worker(Worker(worker_namespace="ns", worker_pool="p", worker_pod="w"))
    store.client.pexpire("worker:ns:p:w", 600_000)
    w = store.get_worker("ns", "p", "w")
    w.actor_id = "a1"
    store.update_worker(w, 1)
    assert store.client.pttl("worker:ns:p:w") == -1


def test_write_raw_is_a_compare_and_set_on_the_bytes_shown(store):
    shown = b'{"actorId":"a1","status":"STATUS_PAUSED"}'
    store.client.set("actor:a1", shown, px=600_000)
    new = b'{"actorId":"a1","version":"2","status":"STATUS_SUSPENDED"}'
    # Not what is stored: nothing is written.
    with pytest.raises(VersionConflict, match="changed since it was shown"):
        store.write_raw("actor:a1", b'{"actorId":"a1"}', new)
    assert store.client.get("actor:a1") == shown
    # A value the server cannot read is refused, in Go's words.
    with pytest.raises(UnreadableByServer, match='unknown field "extra"'):
        store.write_raw("actor:a1", shown, b'{"actorId":"a1","extra":1}')
    with pytest.raises(UnreadableByServer, match="mismatch"):
        store.write_raw("actor:a1", shown, b'{"actorId":"someone-else"}')
    assert store.client.get("actor:a1") == shown
    store.write_raw("actor:a1", shown, new)
    assert store.client.get("actor:a1") == new and store.client.pttl("actor:a1") == -1
    with pytest.raises(NotFound):
        store.write_raw("actor:gone", shown, b'{"actorId":"gone"}')
    with pytest.raises(FailedPrecondition):
        store.write_raw("lock:actor:a1", b"x", b"y")


def test_delete_raw_only_for_records_the_server_cannot_read(store):
    store.create_actor(Actor(actor_id="ok", status=S.STATUS_RUNNING))
    ok = store.client.get("actor:ok")
    with pytest.raises(FailedPrecondition, match="ordinary way"):
        store.delete_raw("actor:ok", ok)
    bad = b'{"actorId":"bad","foo":1}'
    store.client.set("actor:bad", bad)
    with pytest.raises(VersionConflict):
        store.delete_raw("actor:bad", bad + b" ")
    store.delete_raw("actor:bad", bad)
    assert store.client.get("actor:bad") is None
    store.client.set("worker:ns:p:w", b"\xff\xfe")  # corrupt: atedash cannot decode it either
    store.delete_raw("worker:ns:p:w", b"\xff\xfe")
    assert store.client.get("worker:ns:p:w") is None


@pytest.mark.parametrize(
    "stored, written, losses",
    [
        (b'{ "actorId": "a", "version": 3 }', b'{"actorId":"a","version":"3"}', []),
        (b'{"actor_id":"a","status":"STATUS_RUNNING"}', b'{"actorId":"a","status":"STATUS_RUNNING"}', []),
        (
            b'{"actorId":"a","status":true}',
            b'{"actorId":"a","status":"STATUS_RESUMING"}',
            ['status: stored true is read by atedash as "STATUS_RESUMING"'],
        ),
        (
            b'{"actorId":"a","status":"STATUS_PAUSED","future":[1]}',
            b'{"actorId":"a"}',
            [
                'status: stored "STATUS_PAUSED" is read by atedash as omitted (the default)',
                'unknown field "future" is dropped (stored value [1])',
            ],
        ),
        (
            b'{"actorId":"a","version":"01"}',
            b'{"actorId":"a","version":"1"}',
            ['version: stored "01" is read by atedash as "1"'],
        ),
        # Issue 22: numbers Go reads exactly are no loss; stored values are quoted as stored.
        (b'{"actorId":"a","version":1234567890123456789e0}', b'{"actorId":"a","version":"1234567890123456789"}', []),
        (b'{"actorId":"a","version":1e,"status":2e}', b'{"actorId":"a","version":"1","status":"STATUS_RUNNING"}', []),
        (
            b'{"actorId":"a","version":"9.223372036854775807e18"}',
            b'{"actorId":"a","version":"9223372036854775807"}',
            [],
        ),
        (
            b'{"actorId":"a","status":true,"version":1.2345678901234567890e18,"x":1.2345678901234567890e18}',
            b'{"actorId":"a","version":"1234567890123456789","status":"STATUS_RESUMING"}',
            [
                'status: stored true is read by atedash as "STATUS_RESUMING"',
                'unknown field "x" is dropped (stored value 1.2345678901234567890e18)',
            ],
        ),
        (
            b'{"actorId":"a","version":"\\u0030\\u0031"}',
            b'{"actorId":"a","version":"1"}',
            ['version: stored "\\u0030\\u0031" is read by atedash as "1"'],
        ),
        (
            Actor(actor_id="a", version=2).SerializeToString() + b"\xa2\x06\x01z",
            b'{"actorId":"a","version":"2"}',
            ['unknown field number 100 (length-delimited) is dropped (stored value "z")'],
        ),
    ],
)
def test_canonical_rewrite_lists_what_it_loses(stored, written, losses):
    rewrite = canonical_rewrite("actor:a", stored)
    assert rewrite.value == written and rewrite.losses == losses


def test_write_raw_takes_numbers_as_the_server_reads_them(store):
    store.create_actor(Actor(actor_id="n1"))
    shown = store.client.get("actor:n1")
    value = b'{"actorId":"n1","version":1234567890123456789e0,"status":2e}'
    store.write_raw("actor:n1", shown, value)
    actor = store.get_actor("n1")
    assert (actor.version, actor.status) == (1234567890123456789, Actor.STATUS_RUNNING)
    # An update then counts from the version Go reads, not from a float's neighbour.
    actor.ateom_pod_ip = "10.0.0.9"
    store.update_actor(actor, expected_version=1234567890123456789)
    assert store.get_actor("n1").version == 1234567890123456790
    with pytest.raises(UnreadableByServer):  # Go reads no integer there: refused, nothing written
        store.write_raw("actor:n1", store.client.get("actor:n1"), b'{"actorId":"n1","version":2.0000000000000001}')
    assert store.get_actor("n1").version == 1234567890123456790


def test_canonical_rewrite_refuses_what_it_cannot_mend():
    with pytest.raises(FailedPrecondition, match="bad key format"):
        canonical_rewrite("actor:a:b", b'{"actorId":"a:b"}')
    from storage import CorruptRecord

    with pytest.raises(CorruptRecord):
        canonical_rewrite("actor:a", b'{"actorId":"b"}')
    with pytest.raises(CorruptRecord):
        canonical_rewrite("actor:a", b"{broken")


def test_scans_and_stats_flag_unreadable_records(store):
    store.create_actor(Actor(actor_id="fine"))
    store.client.set("actor:odd", b'{"actorId":"odd","status":"STATUS_PAUSED"}')
    store.client.set("actor:x:y", b'{"actorId":"x:y"}')
    store.client.set("worker:ns:p:w", b'{"workerNamespace":"ns","workerPool":"p","workerPod":"w","x":1}')
    store.create_worker(Worker(worker_namespace="ns", worker_pool="p", worker_pod="fine"))
    page = store.scan_actors(limit=10)
    assert sorted(a.actor_id for a in page.records) == ["fine", "odd", "x:y"]
    assert sorted(page.unreadable) == ["actor:odd", "actor:x:y"]
    assert page.unreadable["actor:x:y"].reason == 'bad key format "actor:x:y"'
    assert "enum field status" in page.unreadable["actor:odd"].reason
    workers = store.scan_workers(limit=10)
    assert list(workers.unreadable) == ["worker:ns:p:w"]
    stats = store.store_stats()
    assert (stats.unreadable_actors, stats.unreadable_workers, stats.unreadable) == (2, 1, 3)


def test_a_filtered_scan_flags_the_unreadable_records_it_shows_and_no_other(store):
    store.create_actor(Actor(actor_id="fine", status=S.STATUS_RUNNING))
    store.client.set("actor:r", b'{"actorId":"r","status":"STATUS_RUNNING","x":1}')
    store.client.set("actor:x:y", b'{"actorId":"x:y"}')  # unreadable, and not RUNNING
    page = store.scan_actors(limit=10, status=S.STATUS_RUNNING)
    assert sorted(a.actor_id for a in page.records) == ["fine", "r"]
    assert list(page.unreadable) == ["actor:r"]
    assert 'unknown field "x"' in page.unreadable["actor:r"].reason
