from __future__ import annotations

import pytest

from storage import keys


def test_key_layout_is_the_go_servers():
    assert (keys.ACTOR_PREFIX, keys.WORKER_PREFIX, keys.LOCK_PREFIX) == ("actor:", "worker:", "lock:")
    assert keys.actor_key("a1") == "actor:a1"
    assert keys.worker_key("ns", "pool", "pod-1") == "worker:ns:pool:pod-1"
    assert keys.actor_lock_key("a1") == "lock:actor:a1"


def test_keys_parse_back():
    assert keys.parse_worker_key("worker:ns:pool:pod-1") == ("ns", "pool", "pod-1")
    assert keys.parse_worker_key(b"worker:ns:pool:pod:x") == ("ns", "pool", "pod:x")
    assert keys.parse_actor_key(b"actor:a:b") == "a:b"
    for bad in ["actor:x", "worker:ns:pool", "worker:"]:
        with pytest.raises(ValueError):
            keys.parse_worker_key(bad)
    with pytest.raises(ValueError):
        keys.parse_actor_key("worker:a")


def test_key_slot_uses_hash_tags():
    assert keys.key_slot("{user1000}.following") == keys.key_slot("{user1000}.followers")
    assert keys.key_slot("actor:a1") == keys.key_slot(b"actor:a1")
    assert 0 <= keys.key_slot("anything") < 16384


def test_record_of_key_names_the_record_a_typed_key_means():
    assert keys.record_of_key("actor:a1") == ("actor", ("a1",))
    assert keys.record_of_key("lock:actor:a:1") == ("actor", ("a:1",))
    assert keys.record_of_key("worker:ns:pool:pod:x") == ("worker", ("ns", "pool", "pod:x"))
    for other in ["actor:", "worker:ns:pool", "worker:ns::pod", "lock:other", "atedash:audit", "a1", ""]:
        assert keys.record_of_key(other) is None
