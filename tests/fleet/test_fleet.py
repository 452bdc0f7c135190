"""One fleet, one truth: two gunicorn servers (2 workers each) on one store answer the same.

Walks, counts and their failures are read from the store, so whichever process answers shows the
same state; a process killed mid-walk or mid-count shows as interrupted on the others, and a new one
starts. Everything polls (generous deadlines), nothing sleeps to synchronise.
"""

import os
import re
import signal
import time

import pytest

from storage.ateapi_pb2 import Actor
from storage.codec import ACTOR_CODEC

# Each test starts two gunicorn servers: not in `make check`'s fast loop.
pytestmark = pytest.mark.process

S = Actor.Status
WALK_LEASE = "atedash:fleet:{walks}:lease"
STATS_LEASE = "atedash:fleet:{stats}:lease"


def seed(store, actors):
    pipe = store.client.pipeline(transaction=False)
    for i in range(actors):
        actor = Actor(
            actor_id=f"f{i:06d}",
            version=1,
            actor_template_namespace="team",
            actor_template_name="t",
            status=[S.STATUS_RUNNING, S.STATUS_SUSPENDED, S.STATUS_RESUMING][i % 3],
        )
        pipe.set(f"actor:{actor.actor_id}", ACTOR_CODEC.encode_json(actor))
        if i % 5000 == 4999:
            pipe.execute()
    pipe.execute()


def poll(what, check, timeout=120, every=0.05):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = check()
        if value:
            return value
        time.sleep(every)  # a poll interval, not a synchronisation
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def logged_in(server, role):
    browser = server.browser()
    assert browser.login(role) == 302
    return browser


def section(html, ident):
    """The element with this id, up to its closing tag's line (enough to compare states)."""
    match = re.search(rf'id="{ident}".*?</(p|table|nav)>', html, re.S)
    return match.group(0) if match else None


def walk_state(html):
    """What a walk page says, without the per-request CSRF tokens."""
    parts = [section(html, i) for i in ("walk-summary", "matches-table", "walk-pager", "walk-truncated")]
    return tuple(parts)


def holder_pid(store, key):
    """The pid of the process holding a lease ("<token> <host:pid> <note>")."""
    raw = store.client.get(key)
    if raw is None:
        return None
    holder = raw.decode().split(" ")[1]
    return int(holder.rpartition(":")[2])


def report(capsys, line):
    with capsys.disabled():
        print(f"\n[fleet] {line}")


def test_a_walk_started_on_one_server_reads_the_same_on_the_other(fleet, store, capsys):
    seed(store, 3000)
    a, b = fleet()
    on_a, on_b = logged_in(a, "viewer"), logged_in(b, "viewer")
    assert on_a.post("/actors/all/", {"status": "RUNNING"})[0] == 302
    # Every read from the other server (either of its workers) knows the walk at once.
    for _ in range(20):
        status, html = on_b.request("GET", "/actors/all/?status=RUNNING")
        assert status == 200 and 'id="walk-none"' not in html, html[-2000:]
    poll("the walk to finish", lambda: 'id="walk-summary"' in on_b.request("GET", "/actors/all/?status=RUNNING")[1])
    states = []
    for _ in range(20):
        status, html = on_b.request("GET", "/actors/all/?status=RUNNING")
        assert status == 200
        states.append(walk_state(html))
    assert states[0][0] is not None and "1,000 matches" in states[0][0], states[0]
    assert all(state == states[0] for state in states), "the 20 reads differ"
    assert walk_state(on_a.request("GET", "/actors/all/?status=RUNNING")[1]) == states[0]
    # The same filters asked on the other server: the same walk, not a second one.
    assert on_b.post("/actors/all/", {"status": "RUNNING"})[0] == 302
    assert store.client.llen("atedash:fleet:{walks}:recent") == 1
    assert not a.tracebacks() and not b.tracebacks()
    summary = re.sub(r"<[^>]+>|\s+", " ", states[0][0]).strip()
    report(capsys, f"walk started on server A; 20 reads from server B, all identical: {summary}")


def test_a_recount_on_one_server_shows_on_the_other_once_for_the_fleet(fleet, store, capsys):
    seed(store, 300)
    a, b = fleet(ATEDASH_REFRESH_INTERVAL="1")
    on_a, on_b = logged_in(a, "editor"), logged_in(b, "viewer")

    def counted(browser):
        html = browser.request("GET", "/")[1]
        at = re.search(r'id="stats-counted-at" datetime="([^"]+)"', html)
        total = re.search(r"Actors by status \((\d+)\)", html)
        maker = re.search(r"by <code>([^<]+)</code>\)", html)
        return at and total and (at.group(1), int(total.group(1)), maker.group(1) if maker else None)

    poll("the first count", lambda: counted(on_a))
    fence = int(store.client.get("atedash:fleet:{stats}:fence"))
    seed_more = Actor(actor_id="late", actor_template_namespace="team", actor_template_name="t")
    store.client.set("actor:late", ACTOR_CODEC.encode_json(seed_more))
    assert on_a.post("/overview/counts/")[0] == 302
    shown_b = poll("the recount on the other server", lambda: (c := counted(on_b)) and c[1] == 301 and c)
    for _ in range(10):
        assert counted(on_a) == shown_b and counted(on_b) == shown_b
    # One count for the recount, whichever processes answered the 20 pages above.
    assert int(store.client.get("atedash:fleet:{stats}:fence")) == fence + 1
    assert not a.tracebacks() and not b.tracebacks()
    report(capsys, f"recount on A; A and B show {shown_b[1]} actors counted at {shown_b[0]} by {shown_b[2]}; 1 count")


def test_a_walk_whose_process_is_killed_shows_interrupted_and_starts_again(fleet, store, capsys):
    seed(store, 30_000)
    a, b = fleet(ATEDASH_STORE_STEP_KEYS="1")  # a slow walk: one key per step
    on_a, on_b = logged_in(a, "viewer"), logged_in(b, "viewer")
    assert on_a.post("/actors/all/", {"status": "SUSPENDED"})[0] == 302
    pid = poll("the walk's lease", lambda: holder_pid(store, WALK_LEASE))
    os.kill(pid, signal.SIGKILL)
    killed = time.monotonic()
    url = "/actors/all/?status=SUSPENDED"
    html = poll(
        "the walk shown as interrupted",
        lambda: (h := on_b.request("GET", url)[1]) and 'id="walk-interrupted"' in h and h,
        60,
    )
    assert 'id="walk-restart"' in html
    report(capsys, f"walk's process {pid} SIGKILLed; B shows it interrupted {time.monotonic() - killed:.1f} s later")
    assert 'id="walk-interrupted"' in on_a.request("GET", url)[1]
    # Started again from the other server: a new walk runs to its end.
    assert on_b.post("/actors/all/", {"status": "SUSPENDED", "fresh": "1"})[0] == 302
    assert holder_pid(store, WALK_LEASE) != pid
    done = poll("the new walk", lambda: (h := on_a.request("GET", url)[1]) and 'id="walk-summary"' in h and h, 300, 0.5)
    assert "10,000 matches" in done


def test_a_count_whose_process_is_killed_shows_interrupted_and_starts_again(fleet, store, capsys):
    seed(store, 20_000)
    a, b = fleet(ATEDASH_STORE_STEP_KEYS="1", ATEDASH_REFRESH_INTERVAL="1")
    on_a, on_b = logged_in(a, "editor"), logged_in(b, "editor")
    on_a.request("GET", "/")  # starts the fleet's first count
    pid = poll("the count's lease", lambda: holder_pid(store, STATS_LEASE))
    os.kill(pid, signal.SIGKILL)
    killed = time.monotonic()
    poll("the count shown as interrupted", lambda: 'id="stats-interrupted"' in on_b.request("GET", "/")[1], 60)
    report(capsys, f"count's process {pid} SIGKILLed; B shows it interrupted {time.monotonic() - killed:.1f} s later")
    # The next page that finds the counts due starts a new count in a live process.
    poll(
        "a new count",
        lambda: (
            (p := holder_pid(store, STATS_LEASE)) and p != pid or store.client.exists("atedash:fleet:{stats}:result")
        ),
        60,
    )
    html = poll(
        "the new count's result",
        lambda: (h := on_b.request("GET", "/")[1]) and 'id="stats-counted-at"' in h and h,
        300,
        0.5,
    )
    assert "Actors by status (20000)" in html and 'id="stats-interrupted"' not in html


def test_a_walk_is_cancelled_from_the_other_server(fleet, store):
    seed(store, 15_000)
    a, b = fleet(ATEDASH_STORE_STEP_KEYS="1")  # a slow walk: one key per step
    on_a, on_b = logged_in(a, "viewer"), logged_in(b, "editor")
    assert on_a.post("/actors/all/", {})[0] == 302
    html = poll(
        "the walk's progress on the other server",
        lambda: (h := on_b.request("GET", "/actors/all/")[1]) and 'id="walk-cancel"' in h and h,
    )
    job_id = re.search(r'action="/matches/([0-9a-f]{16})/cancel/"', html).group(1)
    assert on_b.post(f"/matches/{job_id}/cancel/", {"next": "/actors/all/"})[0] == 302
    done = poll(
        "the cancelled walk",
        lambda: (h := on_a.request("GET", "/actors/all/")[1]) and 'id="walk-summary"' in h and h,
        60,
    )
    assert 'id="walk-cancelled"' in done
    assert store.client.get(WALK_LEASE) is None  # the walking process let go of the fleet's walk
