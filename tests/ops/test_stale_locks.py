"""Stale locks (issue 20 item 4): a lock held longer than the threshold on a SUSPENDED/RUNNING actor,
or on a missing one, is a finding of the check, released by a token-checked repair."""

from __future__ import annotations

import random
import time

import pytest
from ops_helpers import RESUMING, RUNNING, SUSPENDED, actor

from storage import check as cc
from storage.check import RepairNotApplicable, lockage, run_check
from storage.demo import seed_store
from storage.keys import LOCK_SEEN_KEY, actor_lock_key


def stale(report):
    return {f.keys[0]: f for f in report.by_kind(cc.STALE_LOCK)}


def test_the_demo_stores_dead_holder_lock_is_reported(store):
    seed_store(store, actors=120, workers=80, rng=random.Random(7))
    report = run_check(store)
    found = stale(report)
    dead = [f for f in found.values() if "ate-api-dead-holder-0001" in f.message]
    assert len(dead) == 1, [f.message for f in report.findings]
    assert "SUSPENDED" in dead[0].message and dead[0].repair.token == "ate-api-dead-holder-0001"
    # The live holders' locks (on actors a workflow is moving) are not stale.
    assert len(found) == 1


def test_lock_held_longer_than_the_threshold_on_a_stable_actor(store):
    actor(store, "sus", SUSPENDED)
    actor(store, "run", RUNNING, ns="ns1", pod="p1", ip="10.0.0.1")
    actor(store, "moving", RESUMING, ns="ns1", pod="p2")
    actor(store, "short", SUSPENDED)
    store.acquire_lock(actor_lock_key("sus"), "tok-sus", 3600)
    store.acquire_lock(actor_lock_key("run"), "tok-run", 3600)
    store.acquire_lock(actor_lock_key("moving"), "tok-moving", 3600)
    store.acquire_lock(actor_lock_key("short"), "tok-short", 60)
    store.acquire_lock(actor_lock_key("gone"), "tok-gone", 3600)
    report = run_check(store)
    found = stale(report)
    assert set(found) == {"lock:actor:sus", "lock:actor:run", "lock:actor:gone"}
    assert "does not exist" in found["lock:actor:gone"].message
    # The missing actor's lock: one repair shared with the orphan_lock finding.
    orphan = report.by_kind(cc.ORPHAN_LOCK)[0]
    assert orphan.repair is found["lock:actor:gone"].repair
    # A lower threshold makes the 60 s lock stale too; a higher one none.
    assert "lock:actor:short" in stale(run_check(store, stale_lock_s=30))
    assert stale(run_check(store, stale_lock_s=7200)) == {}


def test_a_lock_seen_long_ago_is_stale_whatever_its_ttl_left(store, cluster_client):
    actor(store, "sus", SUSPENDED)
    store.acquire_lock(actor_lock_key("sus"), "tok", 60)
    assert stale(run_check(store)) == {}
    field = "lock:actor:sus\0tok"
    cluster_client.hset(LOCK_SEEN_KEY, field, repr(time.time() - 900))  # first seen 15 min ago
    found = stale(run_check(store))
    assert "at least 16 min" in found["lock:actor:sus"].message or "at least 15 min" in found["lock:actor:sus"].message
    # A new holder on the same key starts from now.
    store.release_lock(actor_lock_key("sus"), "tok")
    store.acquire_lock(actor_lock_key("sus"), "tok2", 60)
    assert stale(run_check(store)) == {}
    # The check forgot the released holder (the hash stays bounded).
    assert cluster_client.hget(LOCK_SEEN_KEY, field) is None
    assert cluster_client.ttl(LOCK_SEEN_KEY) > 0


def test_the_release_is_token_checked(store):
    actor(store, "sus", SUSPENDED)
    store.acquire_lock(actor_lock_key("sus"), "tok", 3600)
    repair = stale(run_check(store))["lock:actor:sus"].repair
    assert cc.Repair.from_dict(repair.to_dict()) == repair
    # Another holder took it meanwhile: nothing is released.
    store.release_lock(actor_lock_key("sus"), "tok")
    store.acquire_lock(actor_lock_key("sus"), "other", 3600)
    with pytest.raises(RepairNotApplicable):
        repair.apply(store)
    assert store.get_lock(actor_lock_key("sus")).token == "other"
    # Its actor is being moved now: not released either.
    repair = stale(run_check(store))["lock:actor:sus"].repair
    a = store.get_actor("sus")
    a.status = RESUMING
    store.update_actor(a, a.version)
    with pytest.raises(RepairNotApplicable):
        repair.apply(store)
    a = store.get_actor("sus")
    a.status = SUSPENDED
    store.update_actor(a, a.version)
    repair.apply(store)
    assert store.get_lock(actor_lock_key("sus")) is None
    assert run_check(store).ok


def test_hostile_sightings_are_ignored(store, cluster_client):
    actor(store, "sus", SUSPENDED)
    store.acquire_lock(actor_lock_key("sus"), "tok", 60)
    cluster_client.hset(LOCK_SEEN_KEY, "lock:actor:sus\0tok", "not a number")
    assert stale(run_check(store)) == {}
    cluster_client.hset(LOCK_SEEN_KEY, "lock:actor:sus\0tok", repr(time.time() + 10**6))  # the future
    assert stale(run_check(store)) == {}
    assert lockage.is_stale(None, None, time.time(), SUSPENDED, 1) is False  # no expiry: another finding


def test_a_fresh_lock_of_the_thresholds_length_is_not_stale_on_its_record_page(store, monkeypatch):
    """A record's findings read its lock, then walk for its relations; the same record checked again
    meanwhile (an edit checks before and after at once) finds the lock already seen. Its hold counts
    to when its TTL was read: a walk that took a while must not make a lock of 600 s look older."""
    from storage.check import related

    actor(store, "fresh", SUSPENDED)
    assert store.acquire_lock(actor_lock_key("fresh"), "wf", 600)  # the threshold's length, taken now
    first = related.actor_findings(store, store.get_actor("fresh"), stale_lock_s=600)  # sees it first
    walk = related.bounded_walk

    def slow_walk(*args, **kwargs):
        time.sleep(0.3)  # the walk of a loaded machine, between the lock's read and the rules
        return walk(*args, **kwargs)

    monkeypatch.setattr(related, "bounded_walk", slow_walk)
    again = related.actor_findings(store, store.get_actor("fresh"), stale_lock_s=600)
    for found in (first, again):
        assert not [f for f in found.findings if f.kind == cc.STALE_LOCK], [f.message for f in found.findings]
        assert found.lock_state is not None and not found.lock_state.stale
