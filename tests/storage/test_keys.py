from __future__ import annotations

import pytest

from storage.keys import (
    ACTOR_PREFIX,
    LOCK_PREFIX,
    WORKER_PREFIX,
    actor_key,
    actor_lock_key,
    key_slot,
    parse_actor_key,
    parse_worker_key,
    worker_key,
)


def test_key_layout_is_the_go_servers():
    assert (ACTOR_PREFIX, WORKER_PREFIX, LOCK_PREFIX) == ("actor:", "worker:", "lock:")
    assert actor_key("a1") == "actor:a1"
    assert worker_key("ns", "pool", "pod-1") == "worker:ns:pool:pod-1"
    assert actor_lock_key("a1") == "lock:actor:a1"


def test_keys_parse_back():
    assert parse_worker_key("worker:ns:pool:pod-1") == ("ns", "pool", "pod-1")
    assert parse_worker_key(b"worker:ns:pool:pod:x") == ("ns", "pool", "pod:x")
    assert parse_actor_key(b"actor:a:b") == "a:b"
    for bad in ["actor:x", "worker:ns:pool", "worker:"]:
        with pytest.raises(ValueError):
            parse_worker_key(bad)
    with pytest.raises(ValueError):
        parse_actor_key("worker:a")


def test_key_slot_uses_hash_tags():
    assert key_slot("{user1000}.following") == key_slot("{user1000}.followers")
    assert key_slot("actor:a1") == key_slot(b"actor:a1")
    assert 0 <= key_slot("anything") < 16384


def test_record_of_key_names_the_record_a_typed_key_means():
    from storage.keys import record_of_key

    assert record_of_key("actor:a1") == ("actor", ("a1",))
    assert record_of_key("lock:actor:a:1") == ("actor", ("a:1",))
    assert record_of_key("worker:ns:pool:pod:x") == ("worker", ("ns", "pool", "pod:x"))
    for other in ["actor:", "worker:ns:pool", "worker:ns::pod", "lock:other", "atedash:audit", "a1", ""]:
        assert record_of_key(other) is None
