"""The operator's flows in Chromium with JavaScript on (HTMX swaps): every assertion on what the
page shows is paired with what the store holds."""

import re
import time

import pytest
from playwright.sync_api import expect

import storage

from .browser_helpers import ENVIRONMENT, PASSWORDS, put_actor, put_worker, save, shown_ids, status_name

pytestmark = pytest.mark.browser


# --- login -----------------------------------------------------------------------------------


def test_login_wrong_password_then_back_to_the_page_asked_for(contexts):
    page = contexts.page()
    page.goto("/actors/?status=RUNNING")
    expect(page).to_have_url(re.compile(r"/login/\?next="))
    # Nothing to navigate to before signing in, and nothing said about the environment or the store.
    expect(page.locator("#banner-environment")).to_have_count(0)
    expect(page.locator("#banner-store")).to_have_count(0)
    expect(page.locator("nav.nav")).to_have_count(0)

    page.fill("#id_username", "editor")
    page.fill("#id_password", "not-the-password")
    page.click("#login-button")
    expect(page.locator("#form-errors")).to_contain_text("Wrong name or password")
    expect(page.locator("#banner-operator")).to_have_count(0)

    page.fill("#id_password", PASSWORDS["editor"])
    page.click("#login-button")
    expect(page).to_have_url(re.compile(r"/actors/\?status=RUNNING$"))
    expect(page.locator("#banner-operator")).to_have_text("editor")
    expect(page.locator("#banner-environment")).to_have_text(ENVIRONMENT)
    expect(page.locator("#id_status")).to_have_value("RUNNING")

    page.click("#logout-button")
    expect(page).to_have_url(re.compile(r"/login/$"))
    expect(page.locator("#messages")).to_contain_text("Logged out")
    page.goto("/workers/")
    expect(page).to_have_url(re.compile(r"/login/\?next=%2Fworkers%2F"))
    contexts.watch.assert_clean()


# --- overview --------------------------------------------------------------------------------


def test_overview_counts_and_cluster(contexts, store):
    for i in range(3):
        put_actor(store, f"run-{i}", status="RUNNING")
    put_actor(store, "sus-0")
    store.client.set("actor:broken", b"\x00not a record")
    put_worker(store, "team-a", "small", "w-0")
    put_worker(store, "team-a", "small", "w-1", actor_id="run-0", actor_namespace="team-a", actor_template="web")
    store.acquire_lock("lock:actor:run-0", "holder-1", 60)

    page = contexts.page("viewer")
    page.goto("/")
    expect(page.locator("h1")).to_have_text("Overview")
    expect(page.locator("#cluster-state")).to_have_text("ok")
    expect(page.locator("#slots-covered")).to_have_text("16384")
    # 3 primaries and 3 replicas, all up.
    expect(page.locator("#nodes-table tbody tr")).to_have_count(6)
    expect(page.locator("#nodes-table tbody tr.row-bad")).to_have_count(0)

    # Counted afresh: the counts are cached per server process for ATEDASH_STATS_MAX_AGE (30 s), and an
    # earlier test may have had the overview counted just before this one's records were written, so
    # reload until a count that includes them is there (a stale one is recounted once it is too old).
    by_status = page.locator("#actors-by-status")
    deadline = time.monotonic() + 120
    while True:
        page.goto("/overview/counts/?wait=1")
        if "Actors by status (5)" in by_status.inner_text():
            break
        assert time.monotonic() < deadline, by_status.inner_text()
        page.wait_for_timeout(1000)
    expect(by_status).to_contain_text("Actors by status (5)")
    expect(by_status.locator("tr", has_text="RUNNING")).to_contain_text("3")
    expect(by_status.locator("tr", has_text="SUSPENDED")).to_contain_text("1")
    expect(by_status.locator("tr", has_text="corrupt")).to_contain_text("1")
    expect(page.locator("#workers-by-pool")).to_contain_text("1 free, 1 assigned")
    expect(page.locator("#locks-count")).to_have_text("1")

    # The status links lead to the filtered actors list.
    by_status.get_by_role("link", name="RUNNING").click()
    expect(page).to_have_url(re.compile(r"/actors/\?status=RUNNING$"))
    expect(page.locator("#actors-table tbody tr[data-actor-id]")).to_have_count(3)
    contexts.watch.assert_clean()


# --- actors list: filters and paging ----------------------------------------------------------


def seed_actors(store):
    """60 actors: templates web/batch in team-a/team-b, statuses cycling, ids with a findable part."""
    statuses = ["RUNNING", "SUSPENDED", "RESUMING", "SUSPENDING"]
    made = {}
    for i in range(60):
        ns, template = ("team-a", "web") if i % 2 == 0 else ("team-b", "batch")
        status = statuses[i % 4]
        fields = {}
        if status in ("RUNNING", "SUSPENDING"):
            fields = {"ateom_pod_namespace": ns, "ateom_pod_name": f"pod-{i}", "ateom_pod_ip": f"10.1.0.{i}"}
        actor_id = f"{'alpha' if i < 10 else 'actor'}-{i:03d}"
        made[actor_id] = put_actor(store, actor_id, ns=ns, template=template, status=status, **fields)
    return made


def test_actor_list_filters_update_the_table_and_the_url(contexts, store):
    made = seed_actors(store)
    page = contexts.page("viewer")
    page.goto("/actors/")
    expect(page.locator("#actors-table tbody tr[data-actor-id]")).to_have_count(50)
    expect(page.locator("#next-page")).to_be_visible()

    # Status: the table is swapped (HTMX), the URL follows.
    page.select_option("#id_status", "RUNNING")
    expect(page).to_have_url(re.compile(r"status=RUNNING"))
    running = sorted(a for a, actor in made.items() if status_name(actor) == "RUNNING")
    expect(page.locator("#actors-table tbody tr[data-actor-id]")).to_have_count(len(running))
    assert sorted(shown_ids(page)) == running
    expect(page.locator("#actors-table tbody .status")).to_have_text(["RUNNING"] * len(running))

    # Template namespace + name, typed (the table follows the typing).
    page.select_option("#id_status", "")
    page.fill("#id_ns", "team-b")
    page.fill("#id_template", "batch")
    expect(page).to_have_url(re.compile(r"ns=team-b.*template=batch"))
    team_b = sorted(a for a, actor in made.items() if actor.actor_template_namespace == "team-b")
    expect(page.locator("#actors-table tbody tr[data-actor-id]")).to_have_count(len(team_b))
    assert sorted(shown_ids(page)) == team_b

    # Id substring, combined with the template filter; then a filter that matches nothing.
    page.fill("#id_q", "no-such-actor")
    expect(page.locator("#actors-table .empty")).to_contain_text("No actors")
    page.fill("#id_q", "alpha")
    expect(page).to_have_url(re.compile(r"q=alpha"))
    alpha_b = sorted(a for a in team_b if "alpha" in a)
    expect(page.locator("#actors-table tbody tr[data-actor-id]")).to_have_count(len(alpha_b))
    assert sorted(shown_ids(page)) == alpha_b

    # The filtered URL is shareable: a fresh page opened on it shows the same filters and rows.
    other = contexts.page("viewer")
    other.goto(page.url)
    expect(other.locator("#id_ns")).to_have_value("team-b")
    expect(other.locator("#id_q")).to_have_value("alpha")
    assert sorted(shown_ids(other)) == alpha_b

    # The actor id links to its detail page.
    other.locator("#actors-table tbody a", has_text=alpha_b[0]).click()
    expect(other.locator("#actor-id")).to_have_text(alpha_b[0])
    contexts.watch.assert_clean()


def test_actor_list_pages_with_next_and_the_cursor_url_is_shareable(contexts, store):
    made = seed_actors(store)
    page = contexts.page("viewer")
    page.goto("/actors/")
    page.select_option("#id_size", "25")
    expect(page).to_have_url(re.compile(r"size=25"))
    rows = page.locator("#actors-table tbody tr[data-actor-id]")
    expect(rows).to_have_count(25)
    expect(page.locator("#first-page")).to_have_count(0)

    ids = shown_ids(page)
    seen = list(ids)
    pages = []
    while page.locator("#next-page").count():
        before = page.url
        page.click("#next-page")
        expect(page).not_to_have_url(before)
        expect(rows.first).not_to_have_attribute("data-actor-id", ids[0])
        expect(page).to_have_url(re.compile(r"cursor="))
        expect(page.locator("#first-page")).to_be_visible()
        ids = shown_ids(page)
        assert ids, "a page in the middle of the walk is empty"
        pages.append((page.url, ids))
        seen += ids
    expect(page.locator("#end-of-list")).to_be_visible()
    # Every actor once, none twice.
    assert sorted(seen) == sorted(made)

    # A cursor URL opened in a fresh page (another session) shows exactly that page.
    url, ids = pages[0]
    fresh = contexts.page("editor")
    fresh.goto(url)
    expect(fresh.locator("#actors-table tbody tr[data-actor-id]")).to_have_count(len(ids))
    assert shown_ids(fresh) == ids
    expect(fresh.locator("#id_size")).to_have_value("25")

    # "First page" goes back to the start.
    fresh.click("#first-page")
    expect(fresh).not_to_have_url(re.compile(r"cursor="))
    expect(fresh.locator("#actors-table tbody tr[data-actor-id]")).to_have_count(25)

    # The browser's Back button returns to the previous page of the walk.
    page.go_back()
    expect(page).to_have_url(pages[-2][0])
    expect(page.locator("#actors-table tbody tr[data-actor-id]")).to_have_count(len(pages[-2][1]))
    assert shown_ids(page) == pages[-2][1]

    # A mangled cursor is the 400 page saying so, with a link to the first page.
    response = page.goto("/actors/?size=25&cursor=not-a-cursor")
    assert response.status == 400
    expect(page.locator("#error-message")).to_contain_text("This page link is not valid")
    page.click("#first-page")
    expect(page.locator("#actors-table tbody tr[data-actor-id]")).to_have_count(25)
    contexts.watch.assert_clean()


# --- actor detail and edit --------------------------------------------------------------------


def test_actor_detail_shows_fields_storage_worker_and_lock(contexts, store):
    put_worker(
        store, "team-a", "small", "pod-7", "10.2.0.7", actor_id="a-1", actor_namespace="team-a", actor_template="web"
    )
    put_actor(
        store,
        "a-1",
        status="RUNNING",
        ateom_pod_namespace="team-a",
        ateom_pod_name="pod-7",
        ateom_pod_ip="10.2.0.7",
        last_snapshot="gs://snaps/a-1/0003",
    )
    store.acquire_lock("lock:actor:a-1", "holder-42", 90)
    raw = store.get_raw("actor:a-1")

    page = contexts.page("viewer")
    page.goto("/actors/a-1/")
    expect(page.locator("#field-status")).to_have_text("RUNNING")
    expect(page.locator("#field-version")).to_have_text("2")
    expect(page.locator("#field-ateom_pod_ip")).to_have_text("10.2.0.7")
    expect(page.locator("#record-key")).to_have_text("actor:a-1")
    expect(page.locator("#record-slot")).to_have_text(str(raw.slot))
    expect(page.locator("#record-node")).to_have_text(raw.node)
    expect(page.locator("#worker-points-back")).to_contain_text("points back")
    expect(page.locator("#lock-token")).to_have_text("holder-42")
    expect(page.locator("#stored-json")).to_contain_text('"gs://snaps/a-1/0003"')
    # A viewer reads; no edit or delete offered.
    expect(page.locator("#edit-actor")).to_have_count(0)
    page.click("#worker-link")
    expect(page.locator("#worker-name")).to_have_text("team-a/small/pod-7")
    contexts.watch.assert_clean()


def test_edit_actor_saves_a_new_version_and_refuses_bad_input(contexts, store):
    put_actor(store, "edit-me")
    page = contexts.page("editor")
    page.goto("/actors/edit-me/")
    page.click("#edit-actor")
    expect(page.locator("#editing-version")).to_have_text("1")
    # Immutable fields are shown read-only.
    for name in ("actor_id", "actor_template_namespace", "actor_template_name"):
        expect(page.locator(f"#id_{name}")).to_have_attribute("readonly", "")

    # Invalid input comes back with field errors; the store is unchanged.
    page.select_option("#id_status", "RUNNING")
    page.fill("#id_ateom_pod_ip", "10.0.0.300")
    page.fill("#id_ateom_pod_name", "Not_A_Name")
    save(page)
    expect(page.locator("#field-ateom_pod_ip .field-error")).to_contain_text("IPv4 or IPv6")
    expect(page.locator("#field-ateom_pod_name .field-error")).to_contain_text("Kubernetes name")
    assert store.get_actor("edit-me").version == 1
    # The operator's input is kept for correction.
    expect(page.locator("#id_status")).to_have_value("RUNNING")

    page.fill("#id_ateom_pod_ip", "fd00::17")
    page.fill("#id_ateom_pod_namespace", "team-a")
    page.fill("#id_ateom_pod_name", "pod-17")
    page.fill("#id_last_snapshot", "gs://snaps/edit-me/0001")
    save(page)
    expect(page).to_have_url(re.compile(r"/actors/edit-me/$"))
    expect(page.locator("#messages")).to_contain_text("saved (version 2)")
    expect(page.locator("#field-status")).to_have_text("RUNNING")
    expect(page.locator("#field-ateom_pod_ip")).to_have_text("fd00::17")

    stored = store.get_actor("edit-me")
    assert (stored.version, status_name(stored), stored.ateom_pod_ip, stored.ateom_pod_name, stored.last_snapshot) == (
        2,
        "RUNNING",
        "fd00::17",
        "pod-17",
        "gs://snaps/edit-me/0001",
    )
    contexts.watch.assert_clean()


def test_edit_of_an_immutable_field_forced_in_the_dom_is_refused(contexts, store):
    put_actor(store, "fixed-id", template="web")
    page = contexts.page("editor")
    page.goto("/actors/fixed-id/edit/")
    # An operator (or a script) removes readonly and changes the template: the server checks again.
    page.locator("#id_actor_template_name").evaluate("el => { el.readOnly = false; el.value = 'other'; }")
    save(page)
    expect(page.locator("#field-actor_template_name .field-error")).to_contain_text("cannot change")
    stored = store.get_actor("fixed-id")
    assert (stored.version, stored.actor_template_name) == (1, "web")
    contexts.watch.assert_clean()


# --- the version conflict between two browser sessions -----------------------------------------


def open_edit(contexts, role, actor_id):
    page = contexts.page(role)
    page.goto(f"/actors/{actor_id}/edit/")
    expect(page.locator("#actor-edit-form")).to_be_visible()
    return page


def test_two_sessions_changing_different_fields_are_merged(contexts, store):
    put_actor(store, "shared", last_snapshot="gs://snaps/shared/0001")
    alice = open_edit(contexts, "editor", "shared")
    bob = open_edit(contexts, "admin", "shared")
    # Version 2: created, then given a snapshot.
    expect(alice.locator("#editing-version")).to_have_text("2")
    expect(bob.locator("#editing-version")).to_have_text("2")

    # Alice saves first.
    alice.select_option("#id_status", "RESUMING")
    alice.fill("#id_ateom_pod_namespace", "team-a")
    alice.fill("#id_ateom_pod_name", "pod-a")
    save(alice)
    expect(alice.locator("#messages")).to_contain_text("saved (version 3)")

    # Bob edited version 2 too, another field: his change goes onto version 3, Alice's stays.
    bob.fill("#id_last_snapshot", "gs://snaps/shared/0002")
    save(bob)
    expect(bob).to_have_url(re.compile(r"/actors/shared/$"))
    expect(bob.locator("#messages")).to_contain_text("saved (version 4), merged with version 3")
    expect(bob.locator("#messages")).to_contain_text("applied your Last snapshot")
    expect(bob.locator("#field-status")).to_have_text("RESUMING")
    expect(bob.locator("#field-last_snapshot")).to_have_text("gs://snaps/shared/0002")
    expect(bob.locator("#field-ateom_pod_name")).to_have_text("pod-a")
    stored = store.get_actor("shared")
    assert (stored.version, status_name(stored), stored.last_snapshot, stored.ateom_pod_name) == (
        4,
        "RESUMING",
        "gs://snaps/shared/0002",
        "pod-a",
    )
    contexts.watch.assert_clean()


def test_conflict_discard_keeps_the_stored_record_and_a_decision_on_an_old_version_is_asked_again(contexts, store):
    put_actor(store, "contested")
    alice = open_edit(contexts, "editor", "contested")
    bob = open_edit(contexts, "editor", "contested")

    alice.fill("#id_last_snapshot", "gs://alice/1")
    save(alice)
    expect(alice.locator("#messages")).to_contain_text("saved (version 2)")

    bob.fill("#id_last_snapshot", "gs://bob/1")
    save(bob)
    expect(bob.locator("#stored-version")).to_have_text("2")
    cells = bob.locator("#conflict-table tr[data-field=last_snapshot] td")
    expect(cells.nth(0)).to_have_text("—")
    expect(cells.nth(1)).to_have_text("gs://alice/1")
    expect(cells.nth(2)).to_have_text("gs://bob/1")

    # While Bob looks at the comparison, the record changes again (version 3): his decision, made
    # against version 2, is itself a conflict, shown again rather than overwriting version 3.
    current = store.get_actor("contested")
    current.last_snapshot = "gs://someone-else/3"
    store.update_actor(current, current.version)
    bob.check("#mine-last_snapshot")
    save(bob, "#merge-button")
    expect(bob.locator("#stored-version")).to_have_text("3")
    expect(cells.nth(0)).to_have_text("gs://alice/1")
    expect(cells.nth(1)).to_have_text("gs://someone-else/3")
    expect(cells.nth(2)).to_have_text("gs://bob/1")
    assert store.get_actor("contested").last_snapshot == "gs://someone-else/3"

    # Discard: back to the detail page, which shows what is stored; the store is untouched.
    bob.click("#discard-button")
    expect(bob).to_have_url(re.compile(r"/actors/contested/$"))
    expect(bob.locator("#field-last_snapshot")).to_have_text("gs://someone-else/3")
    expect(bob.locator("#field-version")).to_have_text("3")
    stored = store.get_actor("contested")
    assert (stored.version, stored.last_snapshot) == (3, "gs://someone-else/3")
    contexts.watch.assert_clean()


# --- create and delete -----------------------------------------------------------------------


def test_create_actor_and_already_exists(contexts, store):
    put_actor(store, "taken")
    page = contexts.page("editor")
    page.goto("/actors/")
    page.click("#create-actor")
    page.fill("#id_actor_id", "taken")
    page.fill("#id_actor_template_namespace", "team-a")
    page.fill("#id_actor_template_name", "web")
    page.click("#create-button")
    expect(page.locator("#field-actor_id .field-error")).to_be_visible()
    page.fill("#id_actor_id", "fresh-one")
    page.click("#create-button")
    expect(page.locator("#actor-id")).to_have_text("fresh-one")
    expect(page.locator("#field-status")).to_have_text("SUSPENDED")
    stored = store.get_actor("fresh-one")
    assert (stored.version, status_name(stored), stored.actor_template_name) == (1, "SUSPENDED", "web")
    contexts.watch.assert_clean()


def test_delete_needs_confirmation_and_a_suspended_actor(contexts, store):
    put_actor(store, "busy", status="RUNNING", ateom_pod_namespace="team-a", ateom_pod_name="p-1")
    put_actor(store, "idle")
    page = contexts.page("editor")

    # Not SUSPENDED: the button is disabled and says why, on the detail page and the delete page.
    page.goto("/actors/busy/")
    expect(page.locator("#delete-actor")).to_be_disabled()
    expect(page.locator("#delete-reason")).to_contain_text("this one is RUNNING")
    page.goto("/actors/busy/delete/")
    expect(page.locator("#confirm-delete")).to_be_disabled()
    expect(page.locator("#delete-reason")).to_contain_text("Suspend it first")

    # SUSPENDED when the confirmation was shown, RUNNING by the time it is confirmed: the server refuses.
    page.goto("/actors/idle/")
    page.click("#delete-actor")
    expect(page.locator("h1")).to_contain_text("Delete actor idle?")
    idle = store.get_actor("idle")
    idle.status = storage_status("RUNNING")
    store.update_actor(idle, idle.version)
    page.click("#confirm-delete")
    expect(page.locator("#form-errors")).to_contain_text("STATUS_SUSPENDED")
    expect(page.locator("#confirm-delete")).to_be_disabled()
    assert status_name(store.get_actor("idle")) == "RUNNING"

    # Suspended again: cancel first (nothing happens), then confirm.
    idle = store.get_actor("idle")
    idle.status = storage_status("SUSPENDED")
    store.update_actor(idle, idle.version)
    page.goto("/actors/idle/delete/")
    page.click("#cancel-delete")
    expect(page).to_have_url(re.compile(r"/actors/idle/$"))
    assert status_name(store.get_actor("idle")) == "SUSPENDED"  # still there
    page.click("#delete-actor")
    page.click("#confirm-delete")
    expect(page).to_have_url(re.compile(r"/actors/$"))
    expect(page.locator("#messages")).to_contain_text("Actor idle deleted")
    with pytest.raises(storage.NotFound):
        store.get_actor("idle")
    assert status_name(store.get_actor("busy")) == "RUNNING"
    # The deleted actor's page is a 404 page, not an error.
    response = page.goto("/actors/idle/")
    assert response.status == 404
    expect(page.locator("h1")).to_have_text("Not found")
    contexts.watch.assert_clean()


def storage_status(short):
    from storage.ateapi_pb2 import Actor

    return Actor.Status.Value("STATUS_" + short)


# --- workers ---------------------------------------------------------------------------------


def test_workers_list_filters(contexts, store):
    put_actor(store, "runs-here", status="RUNNING", ateom_pod_namespace="team-a", ateom_pod_name="big-1")
    for i in range(4):
        put_worker(store, "team-a", "small", f"small-{i}", f"10.3.0.{i}")
    put_worker(
        store,
        "team-a",
        "large",
        "big-1",
        "10.3.1.1",
        actor_id="runs-here",
        actor_namespace="team-a",
        actor_template="web",
    )
    put_worker(store, "team-a", "large", "big-2", "10.3.1.2")
    put_worker(store, "team-b", "general", "gen-1", "10.3.2.1")

    page = contexts.page("viewer")
    page.goto("/workers/")
    rows = page.locator("#workers-table tbody tr[data-worker]")
    expect(rows).to_have_count(7)

    page.fill("#id_pool", "large")
    expect(page).to_have_url(re.compile(r"pool=large"))
    expect(rows).to_have_count(2)
    page.select_option("#id_assigned", "assigned")
    expect(page).to_have_url(re.compile(r"assigned=assigned"))
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-worker", "team-a/large/big-1")
    page.select_option("#id_assigned", "free")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-worker", "team-a/large/big-2")

    page.fill("#id_pool", "")
    page.select_option("#id_assigned", "")
    page.fill("#id_namespace", "team-b")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-worker", "team-b/general/gen-1")

    # Shareable, and the assigned actor is a link.
    page.goto("/workers/?assigned=assigned")
    expect(rows).to_have_count(1)
    page.locator("#workers-table").get_by_role("link", name="runs-here").click()
    expect(page.locator("#actor-id")).to_have_text("runs-here")
    contexts.watch.assert_clean()


# --- locks -----------------------------------------------------------------------------------


def test_lock_force_release_only_the_token_shown(contexts, store):
    put_actor(store, "locked")
    store.acquire_lock("lock:actor:locked", "token-old", 300)
    store.acquire_lock("lock:other", "token-x", 300)

    viewer = contexts.page("viewer")
    viewer.goto("/locks/")
    expect(viewer.locator("#locks-table tbody tr[data-key]")).to_have_count(2)
    expect(viewer.locator("#locks-table").get_by_text("Force-release…")).to_have_count(0)

    page = contexts.page("admin")
    page.goto("/locks/")
    row = page.locator('#locks-table tr[data-key="lock:actor:locked"]')
    expect(row).to_contain_text("token-old")
    row.get_by_role("link", name="Force-release…").click()
    expect(page.locator("#lock-key")).to_have_text("lock:actor:locked")
    expect(page.locator("#lock-now")).to_contain_text("Still held by this token")

    # Cancel keeps it.
    page.click("#cancel-release")
    expect(page).to_have_url(re.compile(r"/locks/$"))
    assert store.get_lock("lock:actor:locked").token == "token-old"

    # The holder's lock expires and another holder takes it while the confirmation is open:
    # releasing leaves the new holder's lock in place.
    row.get_by_role("link", name="Force-release…").click()
    store.release_lock("lock:actor:locked", "token-old")
    store.acquire_lock("lock:actor:locked", "token-new", 300)
    page.click("#confirm-release")
    expect(page.locator("#messages")).to_contain_text("now held by another token (token-new)")
    assert store.get_lock("lock:actor:locked").token == "token-new"

    # Released for real from the actor's page.
    page.goto("/actors/locked/")
    expect(page.locator("#lock-token")).to_have_text("token-new")
    page.click("#release-lock")
    page.click("#confirm-release")
    expect(page.locator("#messages")).to_contain_text("Lock lock:actor:locked released")
    expect(page.locator('#locks-table tr[data-key="lock:actor:locked"]')).to_have_count(0)
    assert store.get_lock("lock:actor:locked") is None
    assert store.get_lock("lock:other").token == "token-x"
    contexts.watch.assert_clean()


# --- flush -----------------------------------------------------------------------------------


def test_flush_with_typed_confirmation(contexts, store):
    for i in range(5):
        put_actor(store, f"f-{i}")
    put_worker(store, "team-a", "small", "w-0")
    store.acquire_lock("lock:actor:f-0", "t", 300)
    store.client.set("unrelated:key", b"kept")

    # Editors do not see it.
    editor = contexts.page("editor")
    editor.goto("/")
    expect(editor.locator("nav.nav")).not_to_contain_text("Flush")

    page = contexts.page("admin")
    page.goto("/")
    page.locator("nav.nav").get_by_role("link", name="Flush").click()
    expect(page.locator("h1")).to_contain_text(f"Flush the store of {ENVIRONMENT}")
    # Other keys: "unrelated:key" and the audit stream atedash may keep in the store.
    other = sum(c.other for c in store.shard_counts())
    totals = page.locator("#flush-preview tfoot td")
    expect(totals).to_have_text(["5", "1", "1", str(other), str(7 + other)])

    # The wrong name is refused; nothing removed.
    page.check("#id_scope_0")
    page.fill("#id_confirm", "production")
    page.click("#confirm-flush")
    expect(page.locator("#field-confirm .field-error")).to_contain_text("not this environment's name")
    assert store.client.exists("actor:f-0", "worker:team-a:small:w-0", "lock:actor:f-0", "unrelated:key") == 4

    # The right name clears the ate records and keeps the rest (scope "ate records only").
    page.check("#id_scope_0")
    page.fill("#id_confirm", ENVIRONMENT)
    page.click("#confirm-flush")
    expect(page.locator("#flush-result")).to_contain_text("Removed 7 keys")
    expect(page.locator("#flush-result")).to_contain_text("5 actors, 1 workers, 1 locks")
    assert store.client.exists("actor:f-0", "worker:team-a:small:w-0", "lock:actor:f-0") == 0
    assert store.client.get("unrelated:key") == b"kept"
    page.goto("/actors/")
    expect(page.locator("#actors-table .empty")).to_contain_text("No actors")
    contexts.watch.assert_clean()
