"""Leases and fencing of the fleet's whole-store work (storage/fleet.py), on the real cluster.

A lease "expires" here by deleting its key: what the store does when its TTL runs out, without
waiting for it (one test waits for a real expiry, by polling).
"""

import threading
import time

from storage.fleet import Fleet
from storage.keys import fleet_key

LEASE, FENCE, RESULT = (fleet_key("stats", part) for part in ("lease", "fence", "result"))
STATE = fleet_key("stats", "state")


def test_one_holder_at_a_time_each_with_a_larger_token(store):
    a, b = Fleet(store.client), Fleet(store.client)
    first = a.acquire("stats")
    assert first is not None and b.acquire("stats") is None
    assert first.put(RESULT, "a", 60, release=True)
    second = b.acquire("stats")
    assert second is not None and second.token == first.token + 1
    assert store.client.get(LEASE).decode().startswith(f"{second.token} ")


def test_a_holder_that_lost_its_lease_cannot_overwrite_a_newer_result(store):
    a, b = Fleet(store.client), Fleet(store.client)
    old = a.acquire("stats")
    store.client.delete(LEASE)  # it lapsed while its holder was paused
    new = b.acquire("stats")
    assert new.put(RESULT, "new", 60, release=False)
    assert old.put(RESULT, "old", 60, release=True) is False
    assert old.beat() == (False, False) and old.lost
    assert store.client.get(RESULT) == b"new"
    # The newer holder ends it, and the old one still may not write: the fence moved on.
    assert new.put(RESULT, "newer", 60, release=True)
    assert store.client.get(LEASE) is None
    assert old.push(fleet_key("stats", "list"), ["x"], 60) is False
    assert store.client.get(RESULT) == b"newer"


def test_a_lapsed_lease_nobody_took_since_is_its_holders_again(store):
    """A long pause of the holder (a GC on a loaded machine) lets its lease lapse: when nobody took
    one since, its next beat or write takes it back, and its work is not lost."""
    holder = Fleet(store.client).acquire("stats")
    value = store.client.get(LEASE)
    store.client.delete(LEASE)
    assert holder.beat() == (True, False) and holder.lapses == 1
    assert store.client.get(LEASE) == value and 0 < store.client.pttl(LEASE) <= 6000
    assert holder.beat() == (True, False) and holder.lapses == 1
    store.client.delete(LEASE)
    assert holder.put(RESULT, "mine", 60, release=True)
    assert store.client.get(RESULT) == b"mine" and store.client.get(LEASE) is None


def test_a_lapsed_lease_taken_and_ended_by_another_is_lost(store):
    a, b = Fleet(store.client), Fleet(store.client)
    old = a.acquire("stats")
    store.client.delete(LEASE)
    b.acquire("stats").put(RESULT, "new", 60, release=True)  # lease gone again, fence moved on
    assert old.beat() == (False, False)
    assert not old.put(RESULT, "old", 60, release=True) and store.client.get(RESULT) == b"new"
    assert store.client.get(LEASE) is None


def test_a_lease_nobody_renews_expires(store):
    holder = Fleet(store.client, lease_ttl_s=0.3).acquire("stats")
    assert holder is not None
    deadline = time.monotonic() + 30
    while store.client.exists(LEASE):
        assert time.monotonic() < deadline, "the lease never expired"
        time.sleep(0.05)  # a poll interval
    assert Fleet(store.client).acquire("stats").token == holder.token + 1


def test_a_job_may_hold_a_longer_lease(store):
    """Counts and checks take a longer lease than walks (atedash.background.LEASE_TTL_S)."""
    lease = Fleet(store.client).acquire("check", ttl_s=60)
    key = fleet_key("check", "lease")
    assert 6000 < store.client.pttl(key) <= 60000
    store.client.pexpire(key, 1000)
    assert lease.beat() == (True, False) and 6000 < store.client.pttl(key) <= 60000
    store.client.delete(key)
    assert lease.push(fleet_key("check", "list"), ["x"], 60) and 6000 < store.client.pttl(key) <= 60000


def test_a_beat_in_flight_as_the_result_is_written_neither_revives_the_lease_nor_the_old_state(store):
    """The heartbeat thread renews while the working thread writes the result and ends the lease: a
    beat that reached the store after the write would take the ended lease back (it looks lapsed)
    and write its older state over the result's. One at a time: the write waits for the beat."""
    fleet = Fleet(store.client)
    lease = fleet.acquire("stats")
    beat_script = fleet._beat
    writer = threading.Thread(target=lambda: lease.put(STATE, "done", 60, release=True))

    def beat_racing_the_write(**kwargs):
        writer.start()
        writer.join(0.2)  # the write goes first if it may
        return beat_script(**kwargs)

    fleet._beat = beat_racing_the_write
    lease.beat((STATE, "running", 60))
    writer.join(10)
    assert store.client.get(STATE) == b"done" and store.client.get(LEASE) is None
    assert lease.released and lease.lapses == 0
