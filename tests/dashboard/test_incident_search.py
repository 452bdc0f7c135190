"""Incident searches: actors by ateom pod, IP and snapshot, workers by IP, and the header's
"open by key or id" box (straight to the record, or a page that says nothing was found)."""

import re
import time

import pytest

import storage
from tests.dashboard.conftest import wait_done

RUNNING = "STATUS_RUNNING"


def actor_ids(body):
    return sorted(re.findall(r'data-actor-id="([^"]+)"', body))


def worker_names(body):
    return sorted(re.findall(r'data-worker="([^"]+)"', body))


@pytest.fixture
def incident(make_actor, make_worker):
    make_actor(
        "a-pod",
        status=RUNNING,
        ateom_pod_namespace="ml-serving",
        ateom_pod_name="cpu-worker-0194",
        ateom_pod_ip="10.20.66.146",
        last_snapshot="gs://ate-snapshots/ml/2026-11-30/run-7",
    )
    make_actor("a-other-ns", status=RUNNING, ateom_pod_namespace="batch", ateom_pod_name="cpu-worker-0194")
    make_actor("a-near-ip", status=RUNNING, ateom_pod_ip="10.20.66.14", last_snapshot="gs://ate-snapshots/ml/old")
    make_actor("a-idle")
    make_worker("ml-serving", "cpu", "cpu-worker-0194", ip="10.20.66.146", actor_id="a-pod")
    make_worker("ml-serving", "cpu", "cpu-worker-0195", ip="10.20.66.147")


def test_actors_by_ateom_pod_ip_and_snapshot(viewer, incident, page_html):
    get = lambda query: actor_ids(page_html(viewer.get("/actors/" + query)))  # noqa: E731
    assert get("?pod=ml-serving/cpu-worker-0194") == ["a-pod"]
    assert get("?pod=cpu-worker-0194") == ["a-other-ns", "a-pod"]
    assert get("?pod=batch/") == ["a-other-ns"]
    assert get("?ip=10.20.66.146") == ["a-pod"]
    assert get("?ip=+10.20.66.14+") == ["a-near-ip"]  # trimmed, then exact
    assert get("?snapshot=2026-11-30") == ["a-pod"]
    assert get("?snapshot=ate-snapshots/ml/") == ["a-near-ip", "a-pod"]
    assert get("?snapshot=ate-snapshots/ml/&status=RUNNING&pod=ml-serving/cpu-worker-0194") == ["a-pod"]
    assert get("?pod=nobody/nothing") == []


def test_actor_search_form_has_labelled_fields_and_keeps_values_in_the_url(viewer, incident, page_html):
    body = page_html(viewer.get("/actors/?pod=ml-serving/cpu-worker-0194&ip=10.20.66.146&snapshot=run-7"))
    for name, label, value in [
        ("pod", "Ateom pod", "ml-serving/cpu-worker-0194"),
        ("ip", "Ateom IP", "10.20.66.146"),
        ("snapshot", "Last snapshot contains", "run-7"),
    ]:
        assert f'<label for="id_{name}">{label}</label>' in body
        assert re.search(rf'name="{name}" id="id_{name}" value="{re.escape(value)}"', body)
    assert actor_ids(body) == ["a-pod"]


def test_workers_by_ip(viewer, incident, page_html):
    body = page_html(viewer.get("/workers/?ip=10.20.66.147"))
    assert worker_names(body) == ["ml-serving/cpu/cpu-worker-0195"]
    assert '<label for="id_ip">IP</label>' in body
    assert worker_names(page_html(viewer.get("/workers/?ip=10.20.66.1"))) == []


def test_hostile_search_values_are_bounded_and_never_fail(viewer, incident, page_html):
    for query in ["?pod=" + "x" * 5000, "?ip=%00", "?snapshot=*", "?pod=/", "?pod=a/b/c", "?snapshot=" + "é" * 2000]:
        response = viewer.get("/actors/" + query)
        assert response.status_code == 200, query
    assert actor_ids(page_html(viewer.get("/actors/?snapshot=*"))) == []
    # A value too long for the form is ignored (the default: no filter), like any invalid filter.
    assert len(actor_ids(page_html(viewer.get("/actors/?pod=" + "x" * 5000)))) == 4


def test_search_pages_are_bounded_by_the_scan_budget(viewer, incident, settings, page_html):
    settings.ATEDASH_SCAN_BUDGET = 2
    body = page_html(viewer.get("/actors/?ip=10.20.66.146"))
    # One page examines at most the budget and links onwards with a signed cursor.
    assert re.search(r"scanned [12] of about", body)
    found = actor_ids(body)
    next_link = re.search(r'href="(\?[^"]*cursor=[^"]+)"', body)
    pages = 1
    while next_link:
        body = page_html(viewer.get("/actors/" + next_link.group(1).replace("&amp;", "&")))
        found += actor_ids(body)
        next_link = re.search(r'id="(?:continue-scan|next-page)"', body) and re.search(
            r'href="(\?[^"]*cursor=[^"]+)"', body
        )
        pages += 1
        assert pages < 50
    assert found == ["a-pod"] and pages >= 2


# --- open by key or id ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query, location",
    [
        ("a-pod", "/actors/a-pod/"),
        ("actor:a-pod", "/actors/a-pod/"),
        ("lock:actor:a-pod", "/actors/a-pod/"),
        ("  a-idle  ", "/actors/a-idle/"),
        ("ml-serving/cpu/cpu-worker-0194", "/workers/ml-serving/cpu/cpu-worker-0194/"),
        ("worker:ml-serving:cpu:cpu-worker-0195", "/workers/ml-serving/cpu/cpu-worker-0195/"),
    ],
)
def test_open_goes_straight_to_the_record(viewer, incident, query, location):
    response = viewer.get("/open/", {"q": query})
    assert response.status_code == 302 and response["Location"] == location


def test_open_box_is_in_every_pages_header(viewer, page_html):
    body = page_html(viewer.get("/locks/"))
    assert re.search(r'<form method="get" action="/open/"[^>]*id="open-record"', body)
    assert '<label for="open-record-q"' in body and 'name="q" id="open-record-q"' in body


@pytest.mark.parametrize(
    "query, says, links",
    [
        ("nobody", "no record at key <code", ["/actors/?q=nobody", "/actors/?pod=nobody", "/workers/?q=nobody"]),
        ("actor:nobody", "no record at key <code", []),
        ("ml-serving/cpu/nobody", "worker:ml-serving:cpu:nobody", []),
        ("10.20.66.99", "no record at key", ["/actors/?ip=10.20.66.99", "/workers/?ip=10.20.66.99"]),
        ("ml-serving/cpu-worker-0999", "it is not an actor id", ["/actors/?pod=ml-serving%2Fcpu-worker-0999"]),
        ("worker:only:two", "it is not an actor id", []),
        ("atedash:audit", "it is not an actor id", []),
    ],
)
def test_open_says_clearly_when_it_found_nothing(viewer, incident, page_html, query, says, links):
    response = viewer.get("/open/", {"q": query})
    assert response.status_code == 404
    body = page_html(response)
    assert 'id="open-not-found"' in body and "Nothing found for" in body and says in body
    for link in links:
        assert f'href="{link}' in body.replace("&amp;", "&")
    assert 'id="id_open_q"' in body  # the box again, to try another


def test_open_hostile_input(viewer, incident, page_html):
    assert viewer.get("/open/").status_code == 200
    assert viewer.get("/open/", {"q": ""}).status_code == 200
    too_long = viewer.get("/open/", {"q": "a" * 601})
    assert too_long.status_code == 400 and 'id="open-error"' in page_html(too_long)
    assert viewer.get("/open/", {"q": "a\x00b"}).status_code == 400
    for query in ["<script>alert(1)</script>", "actor:a/b", "../../etc", "worker:a:b:c/d", "%2F", "*", "[a]"]:
        response = viewer.get("/open/", {"q": query})
        assert response.status_code == 404, query
        assert "<script>alert" not in response.content.decode()
    assert viewer.post("/open/", {"q": "a-pod"}).status_code == 405


def test_open_needs_login(client):
    response = client.get("/open/", {"q": "a-pod"})
    assert response.status_code == 302 and "/login/" in response["Location"]


# --- any identifier: the search behind the box (issue 20 item 2) --------------------------------


@pytest.mark.parametrize(
    "query, location",
    [
        ("cpu-worker-0195", "/workers/ml-serving/cpu/cpu-worker-0195/"),  # a pod name alone
        ("10.20.66.14", "/actors/a-near-ip/"),  # an IP, exact
        ("gs://ate-snapshots/ml/2026-11-30", "/actors/a-pod/"),  # a snapshot path
        ("batch/cpu-worker-0194", "/actors/a-other-ns/"),  # ns/pod
        ("tok-incident-1", "/actors/a-idle/"),  # a lock token
        ("near-i", "/actors/a-near-ip/"),  # part of an id
    ],
)
def test_open_searches_and_opens_the_one_match(viewer, incident, store, query, location):
    store.acquire_lock("lock:actor:a-idle", "tok-incident-1", 600)
    response = viewer.get("/open/", {"q": query})
    assert response.status_code == 302 and response["Location"] == location, response.content[:2000]


@pytest.mark.parametrize(
    "query, keys",
    [
        ("10.20.66.146", ["actor:a-pod", "worker:ml-serving:cpu:cpu-worker-0194"]),
        ("ml-serving/cpu-worker-0194", ["actor:a-pod", "worker:ml-serving:cpu:cpu-worker-0194"]),
        (
            "10.20.66.",
            [
                "actor:a-near-ip",
                "actor:a-pod",
                "worker:ml-serving:cpu:cpu-worker-0194",
                "worker:ml-serving:cpu:cpu-worker-0195",
            ],
        ),
        ("cpu-worker-0194", ["actor:a-other-ns", "actor:a-pod", "worker:ml-serving:cpu:cpu-worker-0194"]),
    ],
)
def test_open_lists_several_matches(viewer, incident, page_html, query, keys):
    response = viewer.get("/open/", {"q": query})
    assert response.status_code == 200
    body = page_html(response)
    assert 'id="open-matches"' in body
    assert sorted(re.findall(r'<li data-key="([^"]+)"', body)) == keys
    assert 'id="open-searched"' in body and "keys" in body


# --- the list page walks the store for a rare filter (issue 20 item 1) ------------------------


def test_a_rare_filter_walks_the_whole_store_from_the_list_page(viewer, incident, page_html):
    body = page_html(viewer.get("/actors/?ip=10.20.66.146"))
    form = re.search(r'<form method="post" action="/actors/all/"[^>]*id="incident-search"(.*?)</form>', body, re.S)
    assert form and 'hx-trigger="load"' in body and 'name="ip" value="10.20.66.146"' in form.group(1)
    # Without a rare filter (or past the first page) no walk is offered in place.
    assert 'id="incident-search"' not in page_html(viewer.get("/actors/?status=RUNNING"))
    # HTMX posts it on load: the walk's block comes back in place, and polls until done.
    csrf = viewer.cookies["atedash_csrftoken"].value
    response = viewer.post(
        "/actors/all/", {"ip": "10.20.66.146", "csrfmiddlewaretoken": csrf}, headers={"HX-Request": "true"}
    )
    assert response.status_code == 200
    block = page_html(response)
    assert block.lstrip().startswith('<div id="walk"') and "<html" not in block
    if 'id="walk-summary"' not in block:
        assert 'id="walk-searched"' in block  # running: "searched N of ~M keys", the matches so far
    block = page_html(wait_done(viewer, "/actors/all/?ip=10.20.66.146", headers={"HX-Request": "true"}))
    assert 'id="walk-summary"' in block and actor_ids(block) == ["a-pod"]
    workers = page_html(viewer.get("/workers/?q=cpu-worker"))
    assert 'id="incident-search"' in workers and 'action="/workers/all/"' in workers


# --- the list page's incident search: the whole store walked, the page filling in -----------------


def test_a_filter_typed_in_starts_the_walk_and_its_block_polls_quickly(viewer, incident, page_html):
    """The filter form swaps the results block only (HTMX): the walk's form is in it. While the walk
    runs its block polls every 250 ms (its first seconds): a match found shows within a poll."""
    partial = page_html(viewer.get("/actors/?ip=10.20.66.146", headers={"HX-Request": "true"}))
    assert "<html" not in partial and 'id="incident-search"' in partial and 'hx-trigger="load"' in partial
    csrf = viewer.cookies["atedash_csrftoken"].value
    data = {"ip": "10.20.66.146", "csrfmiddlewaretoken": csrf}
    block = page_html(viewer.post("/actors/all/", data, headers={"HX-Request": "true"}))
    deadline = time.monotonic() + 60
    # As wait_done (tests/dashboard/conftest.py): a walk whose process paused past its lease (a
    # loaded machine) reads as interrupted until its next beat takes the lease back.
    while 'id="walk-progress"' in block or 'id="walk-interrupted"' in block:
        if 'id="walk-progress"' in block:
            assert 'hx-trigger="every 250ms"' in block
        assert time.monotonic() < deadline, "the walk did not finish"
        block = page_html(viewer.get("/actors/all/?ip=10.20.66.146", headers={"HX-Request": "true"}))
    assert 'id="walk-summary"' in block and actor_ids(block) == ["a-pod"]


def test_a_woken_heartbeat_beats_at_once(store, monkeypatch):
    """A walk's first matches are stored when found, not at the next beat (issue 20: on screen in
    1.5 s at 1M): the wake event beats at once, at most every MIN_BEAT_GAP_S."""
    import threading

    from atedash.background import lease as background

    monkeypatch.setattr(background, "BEAT_S", 60.0)
    lease = storage.DashboardState(store.client).fleet.acquire("walks", note="test-wake")
    assert lease is not None
    beats, wake, done = [], threading.Event(), threading.Event()

    def beat():
        beats.append(time.monotonic())
        return None, None

    def work():
        wake.set()
        deadline = time.monotonic() + 30
        while not beats and time.monotonic() < deadline:
            done.wait(0.01)
        return len(beats)

    try:
        assert background.run_with_heartbeat(lease, work, beat=beat, wake=wake) == 1
    finally:
        lease.release()
