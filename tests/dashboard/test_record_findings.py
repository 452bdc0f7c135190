"""A record's page says what is wrong with it (issue 20 items 3 and 4): the consistency check's own
rules run on the record and its relations, every planted fault of the demo store named on its
record's page with its repair, green only when nothing is wrong."""

from __future__ import annotations

import random
import re

import pytest

from atedash.core.links import record_url
from storage.check import run_check
from storage.demo import seed_store


@pytest.fixture
def demo(store):
    # The demo `make run` seeds (manage.py seed_demo's defaults).
    return seed_store(store, actors=300, workers=200, rng=random.Random(7))


# The page checks the record again, later: on a loaded machine a lock's "seen for" has moved on.
SEEN_FOR = re.compile(r"seen for [0-9.]+ (?:s|min|h)")


def same_but_seen_for(text: str) -> str:
    return SEEN_FOR.sub("seen for (some time)", text)


def findings_of(body: str) -> list[str]:
    return re.findall(r'<li class="finding" data-kind="([a-z_]+)"', body)


def section(body: str, element_id: str) -> str:
    start = body.index(f'id="{element_id}"')
    return body[start : body.index("</section>", start)]


def test_every_planted_fault_is_named_on_its_records_page(demo, store, admin, page_html):
    report = run_check(store)
    assert report.findings
    # Each fault the demo plants is a finding of the check (which the loop below finds on its page).
    assert len(demo["disagreements"]) == 5
    named = {key for finding in report.findings for key in finding.keys}
    for planted in demo["disagreements"]:
        first = planted.split()[1] if planted.startswith(("worker ", "actor ")) else planted.split()[0]
        assert any(key in (first, f"actor:{first}") or key.endswith(f":{first}") for key in named), planted
    assert "actor:corrupt-demo-0001" in named
    for finding in report.findings:
        if finding.kind == "corrupt_record":
            continue  # the page of a record that does not decode says so on its own
        key = finding.keys[0]
        if key.startswith("lock:"):
            key = finding.keys[1]  # a lock's finding, on its actor's page
        url = record_url(key) + "?relations=1"  # the page loads them with this second request
        body = page_html(admin.get(url))
        assert finding.kind in findings_of(body), (url, finding.message)
        assert same_but_seen_for(finding.message) in same_but_seen_for(body.replace("&#x27;", "'"))
        if finding.repair is not None:
            assert "repair-link" in section(body, "record-findings")


def test_inference_0074_lists_both_claiming_workers(demo, viewer, page_html):
    body = page_html(viewer.get("/actors/inference-0074/?relations=1"))
    claimants = section(body, "record-findings")
    assert "cpu-worker-0004" in claimants and "general-worker-0002" in claimants
    assert 'id="claimed-twice"' in claimants
    assert {"duplicate_claim", "leaked_worker"} <= set(findings_of(body))
    # Not green while something is wrong.
    assert 'class="ok" id="worker-points-back"' not in body
    assert 'id="record-ok"' not in body


def test_fine_tune_0299_names_the_worker_claiming_it(demo, viewer, page_html):
    body = page_html(viewer.get("/actors/fine-tune-0299/?relations=1"))
    assert "gpu-worker-0038" in section(body, "claimants")
    assert {"leaked_worker", "actor_without_worker"} <= set(findings_of(body))
    worker = page_html(viewer.get("/workers/ml-serving/gpu/gpu-worker-0038/?relations=1"))
    assert "leaked_worker" in findings_of(worker)
    assert 'id="actor-points-back"' in worker and "does not point back" in worker


def test_the_stale_lock_on_its_actors_page_and_the_locks_page(demo, store, viewer, admin, page_html):
    lock = next(i for i in store.scan_locks(limit=100).records if i.token == "ate-api-dead-holder-0001")
    actor_id = lock.key.removeprefix("lock:actor:")
    fast = page_html(admin.get(f"/actors/{actor_id}/"))  # without the walk: the lock's state all the same
    assert 'id="lock-stale"' in fast and 'id="lock-age"' in fast
    body = page_html(admin.get(f"/actors/{actor_id}/?relations=1"))
    assert "stale_lock" in findings_of(body)
    assert 'id="lock-stale"' in body and 'id="lock-age"' in body and "ate-api-dead-holder-0001" in body
    assert "Release the lock" in section(body, "record-findings")
    locks = page_html(viewer.get("/locks/"))
    rows = re.findall(r'<tr data-key="([^"]+)" class="row-stale">', locks)
    assert rows == [lock.key]


def test_a_consistent_actor_and_worker_are_green(store, viewer, page_html):
    from storage.ateapi_pb2 import Actor, Worker

    store.create_worker(Worker(worker_namespace="ns", worker_pool="p", worker_pod="pod-1", ip="10.0.0.1"))
    store.create_actor(Actor(actor_id="ok-1", actor_template_namespace="ns", actor_template_name="t"))
    a = store.get_actor("ok-1")
    a.status = Actor.STATUS_RUNNING
    a.ateom_pod_namespace, a.ateom_pod_name, a.ateom_pod_ip = "ns", "pod-1", "10.0.0.1"
    store.update_actor(a, a.version)
    w = store.get_worker("ns", "p", "pod-1")
    w.actor_namespace, w.actor_template, w.actor_id = "ns", "t", "ok-1"
    store.update_worker(w, w.version)
    body = page_html(viewer.get("/actors/ok-1/?relations=1"))
    assert 'id="record-ok"' in body and findings_of(body) == []
    assert 'class="ok" id="worker-points-back"' in body
    worker = page_html(viewer.get("/workers/ns/p/pod-1/?relations=1"))
    assert 'id="record-ok"' in worker and 'class="ok" id="actor-points-back"' in worker
    assert "ok-1" in section(worker, "actors-at-pod")


def test_the_search_says_how_far_it_got(demo, settings, viewer, page_html):
    settings.ATEDASH_RELATED_SEARCH_SECONDS = 0.000001
    body = page_html(viewer.get("/actors/inference-0074/?relations=1"))
    assert body.count('id="record-findings-how"') == 1  # the page answers, and says how it knows


def test_the_detail_pages_never_walk_a_large_store_and_load_the_findings_after(
    demo, settings, viewer, page_html, monkeypatch
):
    """Issue 19 item 5: on a large store the page is reads by key; the walk for its relations is a
    second request (HTMX on load; a link without JS), whose answer is the findings panel alone."""
    from storage.check import related

    settings.ATEDASH_RELATIONS_INLINE_KEYS = 10  # the demo store counts as large

    def no_walk(*args, **kwargs):
        raise AssertionError("the detail page walked the store")

    for url in ("/actors/inference-0074/", "/workers/ml-serving/gpu/gpu-worker-0038/"):
        with monkeypatch.context() as m:
            m.setattr(related, "bounded_walk", no_walk)
            body = page_html(viewer.get(url))
        pending = section(body, "record-findings")
        assert f'hx-get="{url}?relations=1"' in pending and f'href="{url}?relations=1"' in pending
        assert 'id="record-findings-list"' not in body and 'id="record-ok"' not in body
        fragment = viewer.get(url + "?relations=1", headers={"HX-Request": "true"}).content.decode()
        assert fragment.lstrip().startswith("<section") and "<html" not in fragment
        assert 'id="record-findings-list"' in fragment and 'id="record-findings-how"' in fragment
        full = page_html(viewer.get(url + "?relations=1"))  # without JS: the whole page, findings in it
        assert "<html" in full and 'id="record-findings-list"' in full
        assert "hx-get" not in section(full, "record-findings")


# --- edits that make sense (item 5) ------------------------------------------------------------


def _edit_form(body: str) -> dict[str, str]:
    import html as html_mod

    form = re.search(r'<form[^>]*-edit-form"[^>]*>(.*?)</form>', body, re.S).group(1)
    data = {}
    for tag in re.findall(r"<input [^>]*>", form):
        name, kind = re.search(r'name="([^"]+)"', tag), re.search(r'type="([^"]+)"', tag)
        value = re.search(r'value="([^"]*)"', tag)
        if name and kind and kind.group(1) in ("hidden", "text"):
            data[name.group(1)] = value.group(1) if value else ""
    for name, value in re.findall(r'<select name="([^"]+)".*?<option value="([^"]*)"[^>]*selected', form, re.S):
        data[name] = value
    return {k: html_mod.unescape(v) for k, v in data.items()}


def _running_actor(store, actor_id="r-1", pod="pod-1"):
    from storage.ateapi_pb2 import Actor, Worker

    store.create_worker(Worker(worker_namespace="ns", worker_pool="p", worker_pod=pod, ip="10.0.0.1"))
    store.create_actor(Actor(actor_id=actor_id, actor_template_namespace="ns", actor_template_name="t"))
    a = store.get_actor(actor_id)
    a.status = Actor.STATUS_RUNNING
    a.ateom_pod_namespace, a.ateom_pod_name, a.ateom_pod_ip = "ns", pod, "10.0.0.1"
    store.update_actor(a, a.version)
    w = store.get_worker("ns", "p", pod)
    w.actor_namespace, w.actor_template, w.actor_id = "ns", "t", actor_id
    store.update_worker(w, w.version)
    return store.get_actor(actor_id)


def test_an_edit_that_makes_a_finding_asks_once_more(store, editor, page_html, audit_log):
    actor = _running_actor(store)
    form = _edit_form(page_html(editor.get("/actors/r-1/edit/")))
    assert form["status"] == "RUNNING" and form["ateom_pod_name"] == "pod-1"
    # SUSPENDED, keeping the pod fields: the check would report it; nothing is saved yet.
    response = editor.post("/actors/r-1/edit/", {**form, "status": "SUSPENDED"})
    assert response.status_code == 409
    body = page_html(response)
    kinds = set(re.findall(r'class="edit-finding" data-kind="([a-z_]+)"', body))
    assert "suspended_with_pod" in kinds and "leaked_worker" in kinds
    assert 'id="id_save_despite_findings"' in body
    assert store.get_actor("r-1").version == actor.version
    # The same form, confirmed: saved.
    again = _edit_form(body)
    assert again["status"] == "SUSPENDED"
    response = editor.post("/actors/r-1/edit/", {**again, "save_despite_findings": "on"})
    assert response.status_code == 302
    stored = store.get_actor("r-1")
    assert stored.version == actor.version + 1 and stored.status == 4  # SUSPENDED


def test_running_without_a_pod_is_warned_and_a_harmless_edit_is_not(store, editor, page_html):
    _running_actor(store)
    form = _edit_form(page_html(editor.get("/actors/r-1/edit/")))
    response = editor.post("/actors/r-1/edit/", {**form, "ateom_pod_namespace": "", "ateom_pod_name": ""})
    assert response.status_code == 409
    assert "actor_without_worker" in page_html(response)
    # A snapshot change adds no finding: saved at once.
    response = editor.post("/actors/r-1/edit/", {**form, "last_snapshot": "gs://x/1"})
    assert response.status_code == 302


def test_suspend_sets_the_fields_consistently(store, editor, viewer, page_html, audit_log):
    from storage.ateapi_pb2 import Actor

    _running_actor(store)
    detail = page_html(editor.get("/actors/r-1/"))
    assert 'id="suspend-actor"' in detail and 'id="run-actor"' in detail
    page = page_html(editor.get("/actors/r-1/suspend/"))
    assert 'id="intent"' in page
    form = _edit_form(page)
    assert form["status"] == "SUSPENDED" and form["ateom_pod_name"] == "" and form["ateom_pod_ip"] == ""
    # Saved through the edit (merge, version check); the worker still claiming it is a finding: confirm.
    response = editor.post("/actors/r-1/edit/", form)
    assert response.status_code == 409 and "leaked_worker" in page_html(response)
    response = editor.post("/actors/r-1/edit/", {**form, "save_despite_findings": "on"})
    assert response.status_code == 302
    a = store.get_actor("r-1")
    assert a.status == Actor.STATUS_SUSPENDED and not (a.ateom_pod_namespace or a.ateom_pod_name or a.ateom_pod_ip)
    # Viewers cannot; a worker has no such action.
    assert viewer.get("/actors/r-1/suspend/").status_code == 403
    assert editor.get("/records/worker:ns:p:pod-1/suspend/").status_code == 404


def test_suspend_by_post_is_version_checked(store, editor, page_html):
    from storage.ateapi_pb2 import Actor, Worker

    store.create_actor(Actor(actor_id="s-1", actor_template_namespace="ns", actor_template_name="t"))
    a = store.get_actor("s-1")
    a.status = Actor.STATUS_RUNNING
    a.ateom_pod_namespace, a.ateom_pod_name = "ns", "gone-pod"
    store.update_actor(a, a.version)
    stale_version = a.version
    a = store.get_actor("s-1")
    a.ateom_pod_ip = "10.1.1.1"
    store.update_actor(a, a.version)  # changed since the operator looked
    response = editor.post("/actors/s-1/suspend/", {"version": stale_version})
    assert response.status_code == 409 and 'id="merge-form"' in page_html(response)
    assert store.get_actor("s-1").status == Actor.STATUS_RUNNING
    response = editor.post("/actors/s-1/suspend/", {"version": store.get_actor("s-1").version})
    assert response.status_code == 302
    assert store.get_actor("s-1").status == Actor.STATUS_SUSPENDED
    # Mark running on pod: the pod given, consistent with a worker there that claims it.
    store.create_worker(
        Worker(worker_namespace="ns", worker_pool="p", worker_pod="pod-9", ip="10.0.0.9", actor_id="s-1")
    )
    v = store.get_actor("s-1").version
    data = {"version": v, "ateom_pod_namespace": "ns", "ateom_pod_name": "pod-9", "ateom_pod_ip": "10.0.0.9"}
    response = editor.post("/actors/s-1/run/", data)
    assert response.status_code == 302, page_html(response)[:3000]
    a = store.get_actor("s-1")
    assert (a.status, a.ateom_pod_name, a.version) == (Actor.STATUS_RUNNING, "pod-9", v + 1)
    # Running on no pod: warned.
    response = editor.post("/actors/s-1/run/", {"version": a.version})
    assert response.status_code == 409 and "actor_without_worker" in page_html(response)


def test_a_small_stores_detail_pages_carry_their_findings_at_once(demo, viewer, page_html):
    """Below ATEDASH_RELATIONS_INLINE_KEYS the walk costs milliseconds: the page itself names what
    is wrong (no second request needed, with or without JS)."""
    body = page_html(viewer.get("/actors/inference-0074/"))
    assert {"duplicate_claim", "leaked_worker"} <= set(findings_of(body))
    assert "general-worker-0002" in section(body, "record-findings")
    assert "hx-get" not in section(body, "record-findings")
    worker = page_html(viewer.get("/workers/ml-serving/gpu/gpu-worker-0038/"))
    assert "leaked_worker" in findings_of(worker)
