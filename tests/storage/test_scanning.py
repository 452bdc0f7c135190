"""Paged scans: every record exactly once across all primaries, filters, budget, corrupt entries."""

from __future__ import annotations

import hashlib

import pytest

from storage import CorruptEntry, InvalidCursor, LockInfo, Page
from storage.ateapi_pb2 import Actor, Worker
from storage.node_reads import fetch_values

S = Actor.Status


def seed_actors(store, n, prefix="a", **fields):
    """Many actors in few round trips: one pipelined batch per primary."""
    from storage.codec import ACTOR_CODEC

    pipe = store.client.pipeline(transaction=False)
    for i in range(n):
        actor = Actor(
            actor_id=f"{prefix}{i:05d}",
            version=1,
            actor_template_namespace="ns",
            actor_template_name=f"t{i % 3}",
            status=[S.STATUS_RUNNING, S.STATUS_SUSPENDED][i % 2],
            **fields,
        )
        pipe.set(f"actor:{actor.actor_id}", ACTOR_CODEC.encode_json(actor))
    pipe.execute()


def walk(scan, **kwargs) -> tuple[list, list[Page]]:
    records, pages, cursor = [], [], None
    while True:
        page = scan(cursor=cursor, **kwargs)
        pages.append(page)
        records.extend(page.records)
        cursor = page.next_cursor
        if cursor is None:
            return records, pages
        assert len(pages) < 10_000


@pytest.mark.parametrize("limit", [1, 7, 50, 1000])
def test_paged_walk_returns_every_actor_exactly_once(store, limit):
    seed_actors(store, 600)
    records, pages = walk(store.scan_actors, limit=limit)
    ids = [a.actor_id for a in records]
    assert len(ids) == 600 and len(set(ids)) == 600
    assert all(len(p.records) <= limit for p in pages)
    # Every page but the last is full: SCAN batches larger than the page are split, not dropped.
    assert all(len(p.records) == limit for p in pages[:-1])
    assert all(p.total_keys == 600 for p in pages)


def test_scan_batches_bigger_than_the_page_resume_mid_batch(store):
    seed_actors(store, 200)
    first = store.scan_actors(limit=1)
    assert len(first.records) == 1 and first.next_cursor
    # SCAN handed back more than one key, so the cursor points inside that batch.
    assert first.scanned == 1
    records, _ = walk(store.scan_actors, limit=3)
    assert len({a.actor_id for a in records}) == 200


def test_walk_visits_all_three_primaries_in_slot_order(store):
    seed_actors(store, 90)
    shards = store.topology.shards()
    assert [s.slot_start for s in shards] == sorted(s.slot_start for s in shards) and len(shards) == 3
    records, _ = walk(store.scan_actors, limit=10)
    owners = [store.client.get_node_from_key(f"actor:{a.actor_id}").name for a in records]
    order = [s.address for s in shards]
    # Records come shard by shard, never going back to an earlier shard.
    positions = [order.index(o) for o in owners]
    assert positions == sorted(positions) and set(positions) == {0, 1, 2}


def test_empty_store_gives_one_empty_final_page(store):
    page = store.scan_actors()
    assert page == Page(records=[], corrupt=[], next_cursor=None, scanned=0, total_keys=0, budget_exhausted=False)


def test_actor_filters_apply_while_scanning(store):
    seed_actors(store, 300)
    running, _ = walk(store.scan_actors, limit=20, status=S.STATUS_RUNNING)
    assert len(running) == 150 and all(a.status == S.STATUS_RUNNING for a in running)
    t1, _ = walk(store.scan_actors, limit=20, template_namespace="ns", template_name="t1")
    assert len(t1) == 100 and all(a.actor_template_name == "t1" for a in t1)
    none, _ = walk(store.scan_actors, limit=20, template_namespace="other")
    assert none == []
    found, _ = walk(store.scan_actors, limit=20, id_contains="0012")
    assert sorted(a.actor_id for a in found) == ["a00012"] + [f"a0012{i}" for i in range(10)]
    both, _ = walk(store.scan_actors, limit=5, status=S.STATUS_SUSPENDED, template_name="t0")
    assert len(both) == 50


def test_id_filter_with_glob_characters_is_literal(store):
    store.create_actor(Actor(actor_id="we*ird[1]?"))
    store.create_actor(Actor(actor_id="weXirdX1X"))
    found, _ = walk(store.scan_actors, id_contains="*ird[1]")
    assert [a.actor_id for a in found] == ["we*ird[1]?"]


def test_worker_filters(store):
    for i in range(40):
        store.create_worker(
            Worker(
                worker_namespace=f"ns{i % 2}",
                worker_pool=f"p{i % 4}",
                worker_pod=f"pod-{i}",
                actor_id=f"actor-{i}" if i % 5 == 0 else "",
            )
        )
    all_workers, _ = walk(store.scan_workers, limit=6)
    assert len(all_workers) == 40
    ns0, _ = walk(store.scan_workers, namespace="ns0")
    assert len(ns0) == 20 and {w.worker_namespace for w in ns0} == {"ns0"}
    pool, _ = walk(store.scan_workers, namespace="ns1", pool="p1")
    assert len(pool) == 10 and {(w.worker_namespace, w.worker_pool) for w in pool} == {("ns1", "p1")}
    just_pool, _ = walk(store.scan_workers, pool="p2")
    assert len(just_pool) == 10
    assigned, _ = walk(store.scan_workers, assigned=True)
    assert sorted(w.worker_pod for w in assigned) == sorted(f"pod-{i}" for i in range(0, 40, 5))
    free, _ = walk(store.scan_workers, assigned=False)
    assert len(free) == 32
    by_id, _ = walk(store.scan_workers, id_contains="pod-3")
    assert sorted(w.worker_pod for w in by_id) == sorted(["pod-3"] + [f"pod-3{i}" for i in range(10)])


def test_scan_budget_bounds_a_call_and_the_walk_continues(store):
    seed_actors(store, 500)
    page = store.scan_actors(limit=10, template_name="nothing-matches", max_scan=40)
    assert page.records == [] and page.budget_exhausted and page.next_cursor
    assert page.scanned <= 40
    records, pages = walk(store.scan_actors, limit=10, template_name="nothing-matches", max_scan=40)
    assert records == []
    assert sum(p.scanned for p in pages) == 500  # the whole store, each key examined once
    assert all(p.scanned <= 40 for p in pages)


def test_time_budget_stops_a_call_after_progress_and_the_walk_still_covers_everything(store):
    seed_actors(store, 400)
    # max_seconds=0: every call stops as soon as it has examined something, like on its key budget.
    page = store.scan_actors(limit=10, template_name="nothing-matches", max_seconds=0)
    assert page.records == [] and page.budget_exhausted and page.next_cursor and page.scanned >= 1
    records, pages = walk(store.scan_actors, limit=10, template_name="nothing-matches", max_seconds=0)
    assert records == [] and sum(p.scanned for p in pages) == 400 and len(pages) > 1
    found, pages = walk(store.scan_actors, limit=7, template_name="t1", max_seconds=0)
    assert sorted(a.actor_id for a in found) == [f"a{i:05d}" for i in range(400) if i % 3 == 1]
    # A generous time budget changes nothing.
    page = store.scan_actors(limit=10, template_name="nothing-matches", max_seconds=60)
    assert page.scanned == 400 and page.next_cursor is None and not page.budget_exhausted
    with pytest.raises(ValueError):
        store.scan_actors(max_seconds=-1)


def test_first_page_cost_does_not_depend_on_store_size(store):
    seed_actors(store, 3000)
    page = store.scan_actors(limit=50)
    assert len(page.records) == 50 and page.scanned <= 100


def test_corrupt_records_are_reported_not_raised(store):
    seed_actors(store, 20)
    store.client.set("actor:bad", b"\x00\x01garbage")
    store.client.set("actor:liar", b'{"actorId":"someone-else"}')
    records, pages = walk(store.scan_actors, limit=4)
    corrupt = [c for p in pages for c in p.corrupt]
    assert len(records) == 20
    assert sorted(c.key for c in corrupt) == ["actor:bad", "actor:liar"]
    bad = next(c for c in corrupt if c.key == "actor:bad")
    assert isinstance(bad, CorruptEntry) and bad.preview.startswith("\\x00\\x01garbage") and bad.error


def test_scan_locks(store):
    store.acquire_lock("lock:actor:a1", "holder-1", 60)
    store.client.set("lock:actor:a2", b"\xffraw")
    store.create_actor(Actor(actor_id="a1"))
    records, _ = walk(store.scan_locks, limit=1)
    by_key = {lock.key: lock for lock in records}
    assert set(by_key) == {"lock:actor:a1", "lock:actor:a2"}
    assert by_key["lock:actor:a1"].token == "holder-1" and 0 < by_key["lock:actor:a1"].ttl_ms <= 60_000
    assert by_key["lock:actor:a2"] == LockInfo("lock:actor:a2", "\\xffraw", None)


def _scan_calls(store) -> int:
    return sum(s.client.info("commandstats").get("cmdstat_scan", {}).get("calls", 0) for s in store.topology.shards())


def test_a_lock_page_reads_a_thousand_keys_per_scan(store):
    """Locks are few among the records: a page of them must not cost a round trip per 50 keys
    (issue 19: the locks page took 500+ SCAN calls over 200k keys)."""
    seed_actors(store, 6000)
    store.acquire_lock("lock:actor:a1", "holder-1", 60)
    before = _scan_calls(store)
    page = store.scan_locks(limit=50, max_scan=100_000)
    calls = _scan_calls(store) - before
    assert [lock.key for lock in page.records] == ["lock:actor:a1"] and page.next_cursor is None
    assert calls <= 3 * 4, f"{calls} SCAN calls for 6,001 keys on 3 primaries"  # COUNT 50: ~120


def command_names(data: bytes) -> tuple[bytes, ...]:
    """The names of the commands in one write (RESP arrays of bulk strings, one after the other)."""
    names, i = [], 0
    while i < len(data):
        end = data.index(b"\r\n", i)
        parts, i = int(data[i + 1 : end]), end + 2
        for j in range(parts):
            end = data.index(b"\r\n", i)
            length, i = int(data[i + 1 : end]), end + 2
            if j == 0:
                names.append(data[i : i + length])
            i += length + 2
    return tuple(names)


def commands_sent_from_now(monkeypatch) -> list[tuple[bytes, ...]]:
    """The commands redis-py sends from now on, by name, one tuple per write (its connections' sends
    patched): a pipelined write is one round trip."""
    import redis.connection

    sent: list[tuple[bytes, ...]] = []
    original = redis.connection.AbstractConnection.send_packed_command

    def counting(self, command, check_health=True):
        data = command if isinstance(command, (bytes, bytearray)) else b"".join(command)
        sent.append(command_names(bytes(data)))
        return original(self, command, check_health)

    monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", counting)
    return sent


def test_the_first_page_of_actors_is_one_round_trip_to_its_primary(store, monkeypatch):
    """Issue 19 item 6: a first page among other kinds' keys is one write to the primary it starts
    on (its DBSIZE, then a script step: the SCAN and the values of the keys it lists), and a DBSIZE
    to each other primary, sent while the step runs and read after it: no round trip for the total."""
    seed_actors(store, 3000)
    pipe = store.client.pipeline(transaction=False)
    for i in range(600):  # a sixth of the keys are workers, as in the 1M bench store
        pipe.set(f"worker:ns:p:w{i:05d}", b"{}")
    pipe.execute()
    store.scan_actors(limit=50)  # connections made, the script loaded
    sent = commands_sent_from_now(monkeypatch)
    shards = len(store.topology.shards())
    for _ in range(20):
        sent.clear()
        page = store.scan_actors(limit=50)
        assert len(page.records) == 50 and page.total_keys == 3600
        assert sent[:shards] == [(b"DBSIZE", b"EVALSHA")] + [(b"DBSIZE",)] * (shards - 1), sent
        assert len(sent) <= shards + 1, sent  # a second step, rarely: COUNT is a hint
        names = [name for write in sent for name in write]
        assert names.count(b"DBSIZE") == shards and b"GET" not in names and b"SCAN" not in names, sent


def _refuse_the_scan_step(monkeypatch):
    """The server refuses the SCAN step, as one with scripting disabled or an ACL without EVALSHA."""
    import storage.scanning

    refused = '#!lua flags=no-writes\nreturn redis.error_reply("NOPERM this user has no permissions")\n'
    monkeypatch.setattr(storage.scanning, "_SCAN_STEP", refused)
    monkeypatch.setattr(storage.scanning, "SCAN_STEP_SHA", hashlib.sha1(refused.encode()).hexdigest())


def test_a_server_that_refuses_the_scan_step_is_paged_from_the_client_with_the_same_total(store, monkeypatch):
    seed_actors(store, 300)
    expected, _ = walk(store.scan_actors, limit=7)
    _refuse_the_scan_step(monkeypatch)
    sent = commands_sent_from_now(monkeypatch)
    records, pages = walk(store.scan_actors, limit=7)
    assert sorted(a.actor_id for a in records) == sorted(a.actor_id for a in expected)
    assert all(p.total_keys == 300 for p in pages)
    names = {name for write in sent for name in write}
    assert {b"EVALSHA", b"SCAN", b"GET"} <= names  # tried, refused, then SCAN and GET


def test_keys_a_step_could_not_read_are_read_again_by_the_plain_path(store, monkeypatch):
    """A value the step read as an error (a key of another type, a slot on the move) is read again by
    fetch_values, which reports a WRONGTYPE as today and follows MOVED/ASK."""
    import storage.scanning

    seed_actors(store, 30)
    store.client.hset("actor:hash", "a", "b")
    reread: list[list[bytes]] = []
    original = storage.scanning.fetch_values

    def recording(node, keys, reroute=None):
        reread.append(list(keys))
        return original(node, keys, reroute)

    monkeypatch.setattr(storage.scanning, "fetch_values", recording)
    records, pages = walk(store.scan_actors, limit=50)
    assert len(records) == 30 and [c.key for p in pages for c in p.corrupt] == ["actor:hash"]
    assert "WRONGTYPE" in [c.error for p in pages for c in p.corrupt][0]
    assert reread == [[b"actor:hash"]]  # the only key not taken from a step


def test_the_total_is_exact_whichever_round_trip_brings_each_primary_s_part(store):
    """The first primary's DBSIZE comes in the write of the page's first SCAN there (a step, or a
    plain SCAN for a filtered page), or on its own when the page fills from the cursor's keys (no
    SCAN there) or starts on a primary whose SCAN is done."""
    seed_actors(store, 400)
    for limit in (1, 3, 50, 399):
        _, pages = walk(store.scan_actors, limit=limit)
        assert {p.total_keys for p in pages} == {400}, limit
    _, pages = walk(store.scan_actors, limit=10, status=S.STATUS_RUNNING)  # filtered: no values
    assert {p.total_keys for p in pages} == {400}


def test_a_first_page_of_the_sparser_kind_takes_two_scans_not_five(store, monkeypatch):
    """Workers are a sixth of the keys: the second SCAN reads enough for the rest of the page."""
    seed_actors(store, 3000)
    pipe = store.client.pipeline(transaction=False)
    from storage.codec import WORKER_CODEC

    for i in range(600):
        worker = Worker(worker_namespace="ns", worker_pool="p", worker_pod=f"w{i:05d}", version=1)
        pipe.set(f"worker:ns:p:w{i:05d}", WORKER_CODEC.encode_json(worker))
    pipe.execute()
    store.scan_workers(limit=50)
    sent = commands_sent_from_now(monkeypatch)
    page = store.scan_workers(limit=50)
    assert len(page.records) == 50
    scans = sum(write.count(b"SCAN") + write.count(b"EVALSHA") for write in sent)  # plain, or a step
    assert scans <= 3, sent  # COUNT 75 finds ~12 workers; 5 SCANs before


@pytest.mark.parametrize("cursor", ["garbage!", "e30", "eyJ2IjoxfQ", "eyJ2IjoyLCJzIjowLCJhIjoieCIsImMiOjB9"])
def test_invalid_cursor(store, cursor):
    with pytest.raises(InvalidCursor):
        store.scan_actors(cursor=cursor)


def test_cursor_is_url_safe(store):
    seed_actors(store, 50)
    page = store.scan_actors(limit=3)
    assert page.next_cursor and all(c.isalnum() or c in "-_" for c in page.next_cursor)


def test_batch_reads_skip_deleted_keys_and_follow_moved_slots(store):
    store.create_actor(Actor(actor_id="a"))
    owner = store.client.get_node_from_key("actor:a").name
    home = next(s for s in store.topology.shards() if s.address == owner)
    away = next(s for s in store.topology.shards() if s.address != owner)
    # A missing key on the same node, whatever the slot layout (an earlier test may have resharded).
    gone = next(k for k in (f"actor:gone{i}" for i in range(10_000)) if store.client.get_node_from_key(k).name == owner)
    assert fetch_values(home.client, [b"actor:a", gone.encode()])[1] is None
    # Asked on the wrong node (as after a slot migration), the value is read where it lives.
    assert fetch_values(away.client, [b"actor:a"], store.client.get) == [store.client.get("actor:a")]


def test_walk_while_records_are_added_and_removed_never_repeats(store):
    seed_actors(store, 300)
    seen, cursor = [], None
    i = 0
    while True:
        page = store.scan_actors(cursor=cursor, limit=13)
        seen.extend(a.actor_id for a in page.records)
        # Churn between pages: new records appear, unrelated ones go away.
        store.create_actor(Actor(actor_id=f"new{i}"))
        store.client.delete(f"actor:a{299 - i:05d}")
        i += 1
        cursor = page.next_cursor
        if cursor is None:
            break
    assert len(seen) == len(set(seen))
    # Every original record that stayed the whole walk is seen.
    stayed = {f"a{j:05d}" for j in range(300 - i)}
    assert stayed <= set(seen)


def test_a_key_of_the_wrong_type_is_reported_as_corrupt(store):
    store.create_actor(Actor(actor_id="ok"))
    store.client.hset("actor:hash", "a", "b")
    page = store.scan_actors()
    assert [a.actor_id for a in page.records] == ["ok"]
    assert [c.key for c in page.corrupt] == ["actor:hash"] and "WRONGTYPE" in page.corrupt[0].error
    import pytest as _pytest

    from storage import CorruptRecord

    with _pytest.raises(CorruptRecord) as e:
        store.list_actors()
    assert e.value.key == "actor:hash"
    assert [k for k, _ in store.iter_raw()] == ["actor:ok"]


def test_long_leftovers_use_the_compact_cursor_and_still_cover_everything(store):
    # Long ids and a filter (SCAN COUNT 1000): a page fills long before its batch is consumed, and the
    # leftover keys would not fit in a URL, so the cursor repeats the SCAN call instead.
    pipe = store.client.pipeline(transaction=False)
    from storage.codec import ACTOR_CODEC

    for i in range(600):
        actor = Actor(actor_id=f"{i:04d}-" + "x" * 60, status=S.STATUS_RUNNING if i % 2 else S.STATUS_SUSPENDED)
        pipe.set(f"actor:{actor.actor_id}", ACTOR_CODEC.encode_json(actor))
    pipe.execute()
    store.list_actors()  # reads every key, which also lets the nodes finish resizing their tables
    first = store.scan_actors(limit=5, status=S.STATUS_RUNNING)
    assert len(first.next_cursor) < 400
    records, pages = walk(store.scan_actors, limit=5, status=S.STATUS_RUNNING)
    ids = [a.actor_id for a in records]
    assert len(ids) == 300 and len(set(ids)) == 300
    assert all(len(p.records) == 5 for p in pages[:-1])


def test_batch_read_on_a_node_whose_cluster_is_down_raises_instead_of_reporting_corrupt_records(tmp_path):
    # A node answers CLUSTERDOWN while a failover is under way: that is the node's state, not the
    # record's, so the batch must fail (and be retried by the caller), never yield error values.
    import subprocess
    import time

    import redis
    from redis.exceptions import ClusterDownError

    from tests.storage.test_connect import free_port

    port = free_port()
    while port + 10000 > 65535:  # a cluster node also listens on port + 10000 (its bus)
        port = free_port()
    server = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            str(tmp_path / "nodes.conf"),
            "--dir",
            str(tmp_path),
        ],
        stdout=subprocess.DEVNULL,
    )
    try:
        node = redis.Redis(host="127.0.0.1", port=port)
        deadline = time.monotonic() + 30
        while True:  # until the server accepts connections
            try:
                node.ping()
                break
            except redis.exceptions.ConnectionError:
                assert time.monotonic() < deadline, "throwaway redis-server did not start"
        with pytest.raises(ClusterDownError):
            fetch_values(node, [b"actor:a", b"actor:b"])
        assert node.ping()  # the reply stream stayed in step: the connection is still usable
    finally:
        server.terminate()
        server.wait(10)


def test_incident_filters_find_actors_by_pod_ip_and_snapshot(store):
    seed_actors(store, 120)
    pipe_actors = [
        ("on-pod", {"ateom_pod_namespace": "ml-serving", "ateom_pod_name": "cpu-worker-0194"}),
        ("same-name-other-ns", {"ateom_pod_namespace": "batch", "ateom_pod_name": "cpu-worker-0194"}),
        ("on-ip", {"ateom_pod_ip": "10.20.66.146"}),
        ("near-ip", {"ateom_pod_ip": "10.20.66.14"}),
        ("snap", {"last_snapshot": "gs://ate-snapshots/ml/2026-11-30/run-7"}),
    ]
    for actor_id, fields in pipe_actors:
        store.create_actor(Actor(actor_id=actor_id))
        actor = store.get_actor(actor_id)
        for name, value in fields.items():
            setattr(actor, name, value)
        store.update_actor(actor, actor.version)
    ids = lambda records: sorted(a.actor_id for a in records)  # noqa: E731
    found, _ = walk(store.scan_actors, limit=7, pod_namespace="ml-serving", pod_name="cpu-worker-0194")
    assert ids(found) == ["on-pod"]
    found, _ = walk(store.scan_actors, limit=7, pod_name="cpu-worker-0194")
    assert ids(found) == ["on-pod", "same-name-other-ns"]
    found, _ = walk(store.scan_actors, limit=7, pod_ip="10.20.66.146")
    assert ids(found) == ["on-ip"]  # exact: 10.20.66.14 is another pod
    found, _ = walk(store.scan_actors, limit=7, snapshot_contains="2026-11-30/run")
    assert ids(found) == ["snap"]
    found, _ = walk(store.scan_actors, limit=7, snapshot_contains="*")  # literal, not a glob
    assert found == []
    # Bounded like every filter: a call examines at most max_scan keys and the walk goes on.
    found, pages = walk(store.scan_actors, limit=10, pod_ip="10.20.66.146", max_scan=30)
    assert ids(found) == ["on-ip"] and all(p.scanned <= 30 for p in pages) and len(pages) > 3
    assert sum(p.scanned for p in pages) == 125


def test_worker_ip_filter(store):
    for i in range(30):
        store.create_worker(Worker(worker_namespace="ns", worker_pool="p", worker_pod=f"pod-{i}", ip=f"10.0.0.{i}"))
    found, _ = walk(store.scan_workers, limit=4, ip="10.0.0.3")
    assert [w.worker_pod for w in found] == ["pod-3"]
    found, _ = walk(store.scan_workers, limit=4, namespace="other", ip="10.0.0.3")
    assert found == []
