"""Lock pages (storage/sparse.py): every primary at once, each lock exactly once, a bounded budget."""

from __future__ import annotations

import base64
import json

import pytest

from storage import InvalidCursor
from storage.sparse import STEP_KEYS, _client_step, _run_step, decode_state
from tests.storage.test_scanning import seed_actors, walk


def seed_locks(store, n, prefix="l"):
    pipe = store.client.pipeline(transaction=False)
    for i in range(n):
        pipe.set(f"lock:actor:{prefix}{i:05d}", f"holder-{i}")
    pipe.execute()


def _v2(**state) -> str:
    text = json.dumps({"v": 2, **state}, separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _calls(store, name: str) -> int:
    stats = [s.client.info("commandstats").get(f"cmdstat_{name}", {}) for s in store.topology.shards()]
    return sum(s.get("calls", 0) for s in stats)


@pytest.mark.parametrize("limit", [1, 7, 50, 1000])
def test_every_lock_once_whatever_the_page_size(store, limit):
    # Dense locks: a SCAN batch holds hundreds, more than a cursor carries (the batch is repeated).
    seed_actors(store, 900)
    seed_locks(store, 700)
    records, pages = walk(store.scan_locks, limit=limit)
    keys = [lock.key for lock in records]
    assert len(keys) == 700 and len(set(keys)) == 700
    assert all(len(p.records) == limit for p in pages[:-1]) and len(pages[-1].records) <= limit
    assert all(p.total_keys == 1600 for p in pages)
    assert {lock.token for lock in records} == {f"holder-{i}" for i in range(700)}


def test_sparse_locks_take_one_script_step_per_primary(store):
    """Issue 19 item 6: the SCAN loop runs on the nodes, every primary at once: a page over a few
    thousand keys is one script call per primary, not a SCAN round trip per 1,000 keys."""
    seed_actors(store, STEP_KEYS)  # about a third of a step a primary
    seed_locks(store, 3)
    store.scan_locks(limit=50)  # scripts loaded
    shards = len(store.topology.shards())
    evals, scans = _calls(store, "evalsha"), _calls(store, "scan")
    page = store.scan_locks(limit=50)
    assert sorted(lock.key for lock in page.records) == [f"lock:actor:l{i:05d}" for i in range(3)]
    assert page.next_cursor is None and not page.budget_exhausted
    assert _calls(store, "evalsha") - evals == shards
    # The SCANs ran inside the scripts (Redis counts them too), COUNT 1000 each.
    assert _calls(store, "scan") - scans <= shards * 2


def test_a_page_examines_no_more_keys_than_its_budget(store):
    """The per-request bound: with max_scan keys a page, a walk of N keys without locks takes at
    least N / max_scan pages (a page that examined more would finish sooner), each one cut by its
    budget, and about that many (no page stops far short of it)."""
    seed_actors(store, 12_000)
    seed_locks(store, 1)
    budget = 1200
    records, pages = walk(store.scan_locks, limit=50, max_scan=budget)
    assert [lock.key for lock in records] == ["lock:actor:l00000"]
    # SCAN COUNT is a hint: a call may list a few keys more than asked.
    assert len(pages) >= 12_001 // int(budget * 1.1)
    assert len(pages) <= 12_001 // (budget // 2) + 1
    assert all(p.budget_exhausted for p in pages[:-1]) and not pages[-1].budget_exhausted


def test_a_big_budget_is_shared_by_the_primaries_in_steps(store):
    seed_actors(store, 6 * STEP_KEYS)  # about two steps a primary
    store.scan_locks(limit=50)
    shards = len(store.topology.shards())
    evals = _calls(store, "evalsha")
    page = store.scan_locks(limit=50, max_scan=100_000)
    assert page.next_cursor is None and page.records == []
    # Each call examines at most STEP_KEYS keys: two or three steps a primary, never one.
    assert 2 * shards <= _calls(store, "evalsha") - evals <= 4 * shards


@pytest.mark.parametrize(
    "state",
    [
        {"p": "x"},
        {"p": [[0, "a"]]},
        {"p": [[16384, "a", 0]]},
        {"p": [[0, "a", -1]]},
        {"p": [[0, "a", 2**64]]},
        {"p": [[0, "a", 5, 1001, "lock:a"]]},
        {"p": [[0, "a", 5, 0, "lock:a"]]},
        {"p": [[0, "a" * 301, 5]]},
        {"p": [[0, "a", 5]] * 257},
        {"r": ["lock:" + "a" * 3000]},
        {"d": [[5, 2]]},
        {"v": 3},
    ],
)
def test_out_of_bounds_cursors_are_invalid(state):
    with pytest.raises(InvalidCursor):
        decode_state(_v2(**state))


def test_a_version_one_cursor_goes_on_where_it_stood(store):
    """Links written before version 2 still page: a version 1 cursor's primary and SCAN cursor."""
    seed_actors(store, 300)
    seed_locks(store, 30)
    shards = store.topology.shards()
    second = shards[1]
    v1 = json.dumps({"v": 1, "s": second.slot_start, "a": second.address, "c": 0}).encode()
    page, seen = store.scan_locks(cursor=base64.urlsafe_b64encode(v1).decode().rstrip("="), limit=7), []
    while True:
        seen += [lock.key for lock in page.records]
        if page.next_cursor is None:
            break
        page = store.scan_locks(cursor=page.next_cursor, limit=7)
    # The first primary counts as finished (version 1 walks slot order): the others' locks, once each.
    on_first = {
        k
        for k in (f"lock:actor:l{i:05d}" for i in range(30))
        if store.client.get_node_from_key(k).name == shards[0].address
    }
    assert sorted(seen) == sorted(set(f"lock:actor:l{i:05d}" for i in range(30)) - on_first)


def test_the_client_loop_answers_as_the_script_does(store):
    seed_actors(store, 2000)
    seed_locks(store, 300)
    for shard in store.topology.shards():
        for args in (
            [0, "lock:*", 1000, 0, 5000, 50],
            [0, "lock:*", 100, 0, 350, 10_000],
            [0, "lock:*", 1000, 7, 9, 1],
        ):
            assert _run_step(shard, args) == _client_step(shard, args)


def test_a_version_one_batch_cursor_repeats_its_batch(store):
    """A version 1 cursor in its fallback form (a SCAN batch to repeat, the last key taken) goes
    on right after that key: the keys after it in the batch, then the rest, each once."""
    seed_locks(store, 200)
    first = store.topology.shards()[0]
    _, keys = first.client.scan(0, match="lock:*", count=1000)
    batch = sorted(keys)
    assert len(batch) > 3
    v1 = {"v": 1, "s": first.slot_start, "a": first.address, "c": 0, "n": 1000, "l": batch[2].decode()}
    cursor = base64.urlsafe_b64encode(json.dumps(v1).encode()).decode().rstrip("=")
    seen = []
    while cursor is not None:
        page = store.scan_locks(cursor=cursor, limit=9)
        seen += [lock.key.encode() for lock in page.records]
        cursor = page.next_cursor
    everything = {f"lock:actor:l{i:05d}".encode() for i in range(200)}
    assert len(seen) == len(set(seen)) and set(seen) == everything - set(batch[:3])
