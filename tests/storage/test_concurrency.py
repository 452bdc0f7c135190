"""Atomicity per key under real concurrency: no lost update, no delete of a non-suspended actor."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from storage import FailedPrecondition, NotFound, VersionConflict
from storage.ateapi_pb2 import Actor, Worker

S = Actor.Status


def test_read_modify_write_storm_on_one_actor_loses_no_update(store):
    store.create_actor(Actor(actor_id="hot", actor_template_namespace="ns", actor_template_name="t"))
    threads, increments = 8, 25
    conflicts = []
    start = threading.Barrier(threads)

    def editor(n):
        start.wait()
        done = 0
        while done < increments:
            actor = store.get_actor("hot")
            # Each editor appends its mark; a lost update would lose marks.
            actor.last_snapshot = actor.last_snapshot + f"{n}."
            try:
                store.update_actor(actor, actor.version)
            except VersionConflict:
                conflicts.append(n)
                continue
            done += 1

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(editor, range(threads)))
    final = store.get_actor("hot")
    assert final.version == 1 + threads * increments
    marks = final.last_snapshot.split(".")[:-1]
    assert sorted(marks) == sorted(str(n) for n in range(threads) for _ in range(increments))
    assert conflicts, "the storm should have produced some conflicts"


def test_two_editors_from_the_same_version_never_both_succeed(store):
    for round_ in range(40):
        store.create_actor(Actor(actor_id=f"a{round_}"))
        barrier = threading.Barrier(2)
        outcomes = []

        def edit(snapshot):
            actor = store.get_actor(f"a{round_}")
            actor.last_snapshot = snapshot
            barrier.wait()
            try:
                store.update_actor(actor, 1)
                outcomes.append("ok")
            except VersionConflict:
                outcomes.append("conflict")

        pair = [threading.Thread(target=edit, args=(s,)) for s in ("x", "y")]
        for t in pair:
            t.start()
        for t in pair:
            t.join()
        assert sorted(outcomes) == ["conflict", "ok"]
        assert store.get_actor(f"a{round_}").version == 2


def test_delete_racing_a_status_flip_never_deletes_a_non_suspended_actor(store):
    for round_ in range(60):
        actor_id = f"race{round_}"
        store.create_actor(Actor(actor_id=actor_id, status=S.STATUS_SUSPENDED))
        barrier = threading.Barrier(2)
        result = {}

        def flip():
            actor = store.get_actor(actor_id)
            actor.status = S.STATUS_RESUMING
            barrier.wait()
            try:
                store.update_actor(actor, 1)
                result["flip"] = "ok"
            except (NotFound, VersionConflict) as e:
                result["flip"] = type(e).__name__

        def delete():
            barrier.wait()
            try:
                store.delete_actor(actor_id)
                result["delete"] = "ok"
            except (VersionConflict, FailedPrecondition, NotFound) as e:
                result["delete"] = type(e).__name__

        pair = [threading.Thread(target=flip), threading.Thread(target=delete)]
        for t in pair:
            t.start()
        for t in pair:
            t.join()
        # Exactly one wins: either the actor was deleted while suspended (and the flip found it
        # gone) or the flip landed and the delete refused.
        if result["delete"] == "ok":
            assert result["flip"] == "NotFound"
            assert store.client.get(f"actor:{actor_id}") is None
        else:
            assert result["flip"] == "ok"
            assert store.get_actor(actor_id).status == S.STATUS_RESUMING


def test_concurrent_lock_acquire_has_one_winner(store):
    barrier = threading.Barrier(10)

    def take(n):
        barrier.wait()
        return store.acquire_lock("lock:actor:x", f"holder-{n}", 30)

    with ThreadPoolExecutor(10) as pool:
        wins = list(pool.map(take, range(10)))
    assert wins.count(True) == 1
    winner = f"holder-{wins.index(True)}"
    assert store.get_lock("lock:actor:x").token == winner


def test_concurrent_worker_updates_lose_nothing(store):
    store.create_worker(Worker(worker_namespace="ns", worker_pool="p", worker_pod="w", ip="1.1.1.1"))

    def bump(_):
        while True:
            worker = store.get_worker("ns", "p", "w")
            worker.actor_template = worker.actor_template + "x"
            try:
                store.update_worker(worker, worker.version)
                return
            except VersionConflict:
                continue

    with ThreadPoolExecutor(6) as pool:
        list(pool.map(bump, range(30)))
    final = store.get_worker("ns", "p", "w")
    assert final.version == 31 and final.actor_template == "x" * 30
