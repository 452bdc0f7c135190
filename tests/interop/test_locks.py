"""Locks as the Go server takes them (issue 22, item 5): storage's acquire_lock sends exactly the
command the seed's AcquireLock (go-redis SetNX) sends for the same TTL, seen on the wire with
MONITOR on the key's node, and leaves the same PTTL: 0 = no expiry (SETNX), KeepTTL
(SET ... KEEPTTL NX), whole seconds as EX, else PX truncated to whole milliseconds (2.9 ms -> PX 2).
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
import redis

from storage import KEEP_TTL

# (Go duration as ateref parses it, the same TTL for storage, the command's options, PTTL bounds)
CASES = [
    ("0s", 0, [], None),
    ("0", 0.0, [], None),
    ("-1ns", KEEP_TTL, ["KEEPTTL", "NX"], None),
    ("2.9ms", 0.0029, ["PX", "2", "NX"], (-2, 2)),
    ("2900us", timedelta(microseconds=2900), ["PX", "2", "NX"], (-2, 2)),
    ("500ns", 5e-7, ["PX", "1", "NX"], (-2, 1)),
    ("1.5s", 1.5, ["PX", "1500", "NX"], (1, 1500)),
    ("2000.9ms", 2.0009, ["PX", "2000", "NX"], (1, 2000)),
    ("1.0000005s", Decimal("1.0000005"), ["PX", "1000", "NX"], (1, 1000)),
    ("90s", 90, ["EX", "90", "NX"], (60_000, 90_000)),
    ("1h", 3600.0, ["EX", "3600", "NX"], (3_500_000, 3_600_000)),
]


def _node(store, key: str) -> redis.Redis:
    node = store.client.get_node_from_key(key)
    return redis.Redis(host=node.host, port=node.port, socket_timeout=20)


def _seen(monitor, key: str) -> list[str]:
    """The next command MONITOR shows on ``key`` (other traffic skipped)."""
    while True:
        command = monitor.next_command()["command"]
        parts = command.split(" ")
        if len(parts) > 1 and parts[1] == key:
            return parts


def _acquired(store, ateref, key: str, go_ttl: str, ttl) -> tuple[list[str], int, list[str], int]:
    """(Go's command, PTTL after it, storage's command, PTTL after it), on two keys of one node."""
    go_key, py_key = f"lock:{{{key}}}:go", f"lock:{{{key}}}:py"
    node = _node(store, go_key)
    try:
        with node.monitor() as monitor:
            assert ateref.one("acquire-lock", go_key, "tok", go_ttl) == "OK true"
            go_command = _seen(monitor, go_key)
            go_pttl = node.pttl(go_key)
            assert store.acquire_lock(py_key, "tok", ttl) is True
            py_command = _seen(monitor, py_key)
            py_pttl = node.pttl(py_key)
    finally:
        node.close()
    return go_command, go_pttl, py_command, py_pttl


@pytest.mark.parametrize(("go_ttl", "ttl", "options", "pttl"), CASES, ids=[c[0] for c in CASES])
def test_acquire_lock_sends_what_go_sends(store, ateref, go_ttl, ttl, options, pttl):
    go_command, go_pttl, py_command, py_pttl = _acquired(store, ateref, go_ttl.replace(".", "_"), go_ttl, ttl)
    # MONITOR quotes every argument: '"SET"' '"lock:..."' '"tok"' '"PX"' '"2"' '"NX"'
    go_args = [a.strip('"').upper() for a in go_command]
    py_args = [a.strip('"').upper() for a in py_command]
    assert go_args[0] == py_args[0] == ("SETNX" if not options else "SET")
    assert go_args[3:] == py_args[3:] == options
    if pttl is None:
        assert go_pttl == py_pttl == -1  # no expiry
    else:
        low, high = pttl
        assert low <= go_pttl <= high and low <= py_pttl <= high, (go_pttl, py_pttl)
        assert go_pttl != -1 and py_pttl != -1


def test_a_held_lock_is_not_taken_whatever_the_ttl(store, ateref):
    for go_ttl, ttl in (("0s", 0), ("-1ns", KEEP_TTL), ("2.9ms", 0.0029), ("5s", 5)):
        assert store.acquire_lock("lock:actor:held", "first", 60)
        assert ateref.one("acquire-lock", "lock:actor:held", "go", go_ttl) == "OK false"
        assert store.acquire_lock("lock:actor:held", "py", ttl) is False
        assert store.client.get("lock:actor:held") == b"first"
        assert 0 < store.client.pttl("lock:actor:held") <= 60_000  # the holder's TTL is untouched
        store.release_lock("lock:actor:held", "first")


@pytest.mark.parametrize("ttl", [-1, -0.0005, -2.9e-3, float("nan"), float("inf"), True, "5"])
def test_a_ttl_go_cannot_set_is_refused_and_nothing_is_set(store, ateref, ttl):
    if isinstance(ttl, (int, float)) and not isinstance(ttl, bool) and ttl < 0:
        # Go sends PX <= 0 and Redis refuses it: nothing set there either.
        go = ateref.one("acquire-lock", "lock:actor:neg", "go", f"{ttl}s")
        assert go.startswith("ERR ") and "invalid expire time" in go, go
        assert store.client.exists("lock:actor:neg") == 0
    with pytest.raises(ValueError):
        store.acquire_lock("lock:actor:neg", "py", ttl)
    assert store.client.exists("lock:actor:neg") == 0


def test_a_lock_without_expiry_is_released_by_its_token(store):
    assert store.acquire_lock("lock:actor:forever", "me", 0)
    assert store.get_lock("lock:actor:forever").ttl_ms is None
    store.release_lock("lock:actor:forever", "me")
    assert store.get_lock("lock:actor:forever") is None
