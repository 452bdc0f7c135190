"""The main flows again with JavaScript disabled: every page is a plain HTML page, every action a
form or a link, and the results are the same (checked in the store)."""

import re

import pytest
from playwright.sync_api import expect

import storage

from .browser_helpers import ENVIRONMENT, PASSWORDS, put_actor, put_worker, save, shown_ids, status_name

pytestmark = pytest.mark.browser


def test_nojs_login(contexts):
    page = contexts.page(js=False)
    page.goto("/actors/")
    expect(page).to_have_url(re.compile(r"/login/\?next=%2Factors%2F"))
    page.fill("#id_username", "viewer")
    page.fill("#id_password", "wrong-password")
    page.click("#login-button")
    expect(page.locator("#form-errors")).to_contain_text("Wrong name or password")
    page.fill("#id_password", PASSWORDS["viewer"])
    page.click("#login-button")
    expect(page).to_have_url(re.compile(r"/actors/$"))
    expect(page.locator("#banner-operator")).to_have_text("viewer")
    page.click("#logout-button")
    expect(page.locator("#messages")).to_contain_text("Logged out")
    contexts.watch.assert_clean()


def test_nojs_filter_and_page(contexts, store):
    for i in range(40):
        status = "RUNNING" if i % 2 else "SUSPENDED"
        put_actor(store, f"nojs-{i:03d}", ns="team-a" if i < 30 else "team-b", status=status)
    page = contexts.page("viewer", js=False)
    page.goto("/actors/")
    rows = page.locator("#actors-table tbody tr[data-actor-id]")
    expect(rows).to_have_count(40)

    # Filters apply with the form's button (a GET: the filters are in the URL).
    page.select_option("#id_status", "RUNNING")
    page.fill("#id_ns", "team-a")
    page.select_option("#id_size", "25")
    page.click("#apply-filters")
    expect(page).to_have_url(re.compile(r"status=RUNNING.*ns=team-a.*size=25"))
    expect(rows).to_have_count(15)
    expect(page.locator("#actors-table tbody .status")).to_have_text(["RUNNING"] * 15)
    page.fill("#id_q", "-02")
    page.click("#apply-filters")
    expect(rows).to_have_count(5)  # nojs-021 .. nojs-029, odd ones
    assert sorted(shown_ids(page)) == [f"nojs-{i:03d}" for i in range(21, 30, 2)]

    # Paging through plain links; each page's URL opens the same page in a new session.
    page.fill("#id_q", "")
    page.select_option("#id_status", "")
    page.fill("#id_ns", "")
    page.click("#apply-filters")
    expect(rows).to_have_count(25)
    first = shown_ids(page)
    page.click("#next-page")
    expect(page).to_have_url(re.compile(r"cursor="))
    expect(rows).to_have_count(15)
    second = shown_ids(page)
    expect(page.locator("#end-of-list")).to_be_visible()
    assert sorted(first + second) == [f"nojs-{i:03d}" for i in range(40)]

    fresh = contexts.page("editor", js=False)
    fresh.goto(page.url)
    expect(fresh.locator("#actors-table tbody tr[data-actor-id]")).to_have_count(15)
    assert shown_ids(fresh) == second
    fresh.click("#first-page")
    expect(fresh.locator("#actors-table tbody tr[data-actor-id]")).to_have_count(25)
    assert shown_ids(fresh) == first
    contexts.watch.assert_clean()


def test_nojs_edit_and_conflict(contexts, store):
    put_actor(store, "plain")
    alice = contexts.page("editor", js=False)
    bob = contexts.page("editor", js=False)
    for page in (alice, bob):
        page.goto("/actors/plain/")
        page.click("#edit-actor")
        expect(page.locator("#editing-version")).to_have_text("1")

    alice.select_option("#id_status", "RESUMING")
    alice.fill("#id_ateom_pod_namespace", "team-a")
    alice.fill("#id_ateom_pod_name", "pod-1")
    save(alice)
    expect(alice.locator("#messages")).to_contain_text("saved (version 2)")
    expect(alice.locator("#field-status")).to_have_text("RESUMING")

    # Bob changed another field: merged onto version 2, Alice's change kept, Bob not asked.
    bob.fill("#id_in_progress_snapshot", "gs://bob/pending")
    save(bob)
    expect(bob.locator("#messages")).to_contain_text("saved (version 3), merged with version 2")
    expect(bob.locator("#field-in_progress_snapshot")).to_have_text("gs://bob/pending")
    expect(bob.locator("#field-status")).to_have_text("RESUMING")
    stored = store.get_actor("plain")
    assert (stored.version, status_name(stored), stored.in_progress_snapshot) == (3, "RESUMING", "gs://bob/pending")

    # And the discard path.
    alice.click("#edit-actor")
    expect(alice.locator("#editing-version")).to_have_text("3")
    current = store.get_actor("plain")
    current.last_snapshot = "gs://elsewhere/9"
    store.update_actor(current, current.version)
    alice.fill("#id_last_snapshot", "gs://alice/1")
    save(alice)
    expect(alice.locator("#stored-version")).to_have_text("4")
    alice.click("#discard-button")
    expect(alice.locator("#field-last_snapshot")).to_have_text("gs://elsewhere/9")
    assert store.get_actor("plain").last_snapshot == "gs://elsewhere/9"
    contexts.watch.assert_clean()


def test_nojs_delete(contexts, store):
    put_actor(store, "going")
    put_actor(store, "staying", status="RUNNING")
    page = contexts.page("editor", js=False)
    page.goto("/actors/staying/delete/")
    expect(page.locator("#confirm-delete")).to_be_disabled()
    page.goto("/actors/going/")
    page.click("#delete-actor")
    page.click("#confirm-delete")
    expect(page).to_have_url(re.compile(r"/actors/$"))
    expect(page.locator("#messages")).to_contain_text("Actor going deleted")
    expect(page.locator("#actors-table tbody tr[data-actor-id]")).to_have_count(1)
    with pytest.raises(storage.NotFound):
        store.get_actor("going")
    assert status_name(store.get_actor("staying")) == "RUNNING"
    contexts.watch.assert_clean()


def test_nojs_workers_filter_locks_and_flush(contexts, store):
    put_worker(store, "team-a", "small", "w-1", "10.0.0.1")
    put_worker(
        store, "team-a", "large", "w-2", "10.0.0.2", actor_id="x", actor_namespace="team-a", actor_template="web"
    )
    store.acquire_lock("lock:actor:x", "tok-1", 300)
    page = contexts.page("admin", js=False)
    page.goto("/workers/")
    page.select_option("#id_assigned", "free")
    page.click("#apply-filters")
    expect(page.locator("#workers-table tbody tr[data-worker]")).to_have_count(1)
    expect(page.locator("#workers-table tbody tr[data-worker]")).to_have_attribute("data-worker", "team-a/small/w-1")

    page.goto("/locks/")
    page.locator('#locks-table tr[data-key="lock:actor:x"]').get_by_role("link", name="Force-release…").click()
    page.click("#confirm-release")
    expect(page.locator("#messages")).to_contain_text("released")
    assert store.get_lock("lock:actor:x") is None

    page.goto("/flush/")
    page.check("#id_scope_1")
    page.fill("#id_confirm", ENVIRONMENT.upper())
    page.click("#confirm-flush")
    expect(page.locator("#field-confirm .field-error")).to_be_visible()
    assert store.client.exists("worker:team-a:small:w-1") == 1
    page.check("#id_scope_1")
    page.fill("#id_confirm", ENVIRONMENT)
    page.click("#confirm-flush")
    expect(page.locator("h1")).to_contain_text("Flushed: everything")
    # Every key is gone; only atedash's own bookkeeping written after the flush (the audit stream
    # recording it, say) may be there.
    left = {
        key
        for node in store.client.get_primaries()
        for key in store.client.get_redis_connection(node).scan_iter(count=1000)
    }
    assert all(key.startswith(b"atedash:") for key in left), left
    contexts.watch.assert_clean()


def test_nojs_overview_counts_and_recount(contexts, store):
    for i in range(3):
        put_actor(store, f"o-{i}", status="RUNNING")
    page = contexts.page("editor", js=False)  # "Recount now" is an editor's (a POST)
    page.goto("/")
    expect(page.locator("#cluster-state")).to_have_text("ok")
    # Without JavaScript nothing polls: the page offers a link that waits for the count.
    if page.locator("#stats-pending").count():
        page.locator("#stats-pending a").click()
    expect(page.locator("#stats-age")).to_be_visible()
    # The store changes; "Recount now" shows the new count (no polling needed).
    put_actor(store, "o-new")
    page.locator("#recount").click()
    expect(page.locator("#actors-by-status")).to_contain_text("Actors by status (4)")
    expect(page.locator("#stats-age")).not_to_contain_text("recounting")
    contexts.watch.assert_clean()
