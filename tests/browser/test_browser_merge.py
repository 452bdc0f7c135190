"""Issue 12 in real Chromium, with and without JavaScript: two editors of one actor are merged, not
reverted; a real conflict is decided field by field before anything is written; any record (an id
with "/", "%", spaces) is reachable, editable and deletable by its key; a record's page lists its
history and reverts a change through the same merge rules."""

import re

import pytest
from playwright.sync_api import expect

from .browser_helpers import SCREENSHOTS, put_actor, screenshot, status_name

pytestmark = pytest.mark.browser

JS = pytest.mark.parametrize("js", [True, False], ids=["js", "nojs"])


def open_edit(contexts, actor_id, js, role="editor"):
    page = contexts.page(role, js=js)
    page.goto(f"/actors/{actor_id}/edit/")
    expect(page.locator("#actor-edit-form")).to_be_visible()
    return page


@JS
def test_changes_to_different_fields_are_both_kept_and_b_is_not_asked(contexts, store, js):
    put_actor(store, "shared", status="RUNNING", ateom_pod_ip="10.0.0.5", last_snapshot="gs://s/1")  # version 2
    alice = open_edit(contexts, "shared", js)
    bob = open_edit(contexts, "shared", js, role="admin")

    alice.fill("#id_ateom_pod_ip", "10.0.0.77")
    alice.click("#save-button")
    expect(alice.locator("#messages")).to_contain_text("saved (version 3)")

    bob.fill("#id_last_snapshot", "gs://s/2")
    bob.click("#save-button")
    expect(bob).to_have_url(re.compile(r"/actors/shared/$"))
    expect(bob.locator("#messages")).to_contain_text("saved (version 4), merged with version 3")
    expect(bob.locator("#messages")).to_contain_text("kept Ateom pod IP")
    expect(bob.locator("#field-ateom_pod_ip")).to_have_text("10.0.0.77")
    expect(bob.locator("#field-last_snapshot")).to_have_text("gs://s/2")
    stored = store.get_actor("shared")
    assert (stored.version, stored.ateom_pod_ip, stored.last_snapshot) == (4, "10.0.0.77", "gs://s/2")
    contexts.watch.assert_clean()


@JS
def test_both_change_the_ip_b_is_asked_and_nothing_is_written_until_b_decides(contexts, store, js):
    put_actor(store, "contested", status="RUNNING", ateom_pod_ip="10.0.0.5")  # version 2
    alice = open_edit(contexts, "contested", js)
    bob = open_edit(contexts, "contested", js)

    alice.fill("#id_ateom_pod_ip", "10.0.0.77")
    alice.click("#save-button")
    expect(alice.locator("#messages")).to_contain_text("saved (version 3)")

    bob.fill("#id_ateom_pod_ip", "10.0.0.9")
    bob.fill("#id_last_snapshot", "gs://bob/1")
    bob.click("#save-button")
    expect(bob.locator("h1")).to_have_text("The record changed while you were editing")
    expect(bob.locator("#stored-version")).to_have_text("3")
    row = bob.locator("#conflict-table tr[data-field=ateom_pod_ip]")
    expect(row).to_have_class("row-conflict")
    expect(row.locator("td").nth(0)).to_have_text("10.0.0.5")
    expect(row.locator("td").nth(1)).to_have_text("10.0.0.77")
    expect(row.locator("td").nth(2)).to_have_text("10.0.0.9")
    expect(bob.locator("#conflict-table tr[data-field=last_snapshot]")).to_have_class("row-applied")
    assert store.get_actor("contested").version == 3  # nothing written

    # The choice is required: the browser does not send the form without it (and the server asks again).
    bob.click("#merge-button")
    expect(bob.locator("#conflict-table")).to_be_visible()
    assert store.get_actor("contested").version == 3

    bob.check("#mine-ateom_pod_ip")
    bob.click("#merge-button")
    expect(bob.locator("#messages")).to_contain_text("saved (version 4)")
    stored = store.get_actor("contested")
    assert (stored.version, stored.ateom_pod_ip, stored.last_snapshot) == (4, "10.0.0.9", "gs://bob/1")
    assert status_name(stored) == "RUNNING"
    contexts.watch.assert_clean()


@JS
def test_a_record_whose_id_has_a_slash_is_opened_edited_and_deleted_by_key(contexts, store, js):
    awkward = "team/a b%c"
    put_actor(store, awkward)
    page = contexts.page("editor", js=js)
    page.goto("/actors/")
    row = page.locator("#actors-table tr[data-actor-id]").filter(has_text="team/a b%c")
    row.locator("a").click()
    expect(page).to_have_url(re.compile(r"/records/[A-Za-z0-9_-]+/$"))
    expect(page.locator("#actor-id")).to_have_text(awkward)
    expect(page.locator("#record-key")).to_have_text(f"actor:{awkward}")

    page.click("#edit-actor")
    page.fill("#id_last_snapshot", "gs://by-key/1")
    page.click("#save-button")
    expect(page.locator("#messages")).to_contain_text("saved (version 2)")
    assert store.get_actor(awkward).last_snapshot == "gs://by-key/1"

    # The "open by key" box finds it too.
    page.goto("/actors/")
    page.fill("#id_open_key", f"actor:{awkward}")
    page.click("#open-key-button")
    expect(page.locator("#actor-id")).to_have_text(awkward)
    page.click("#delete-actor")
    page.click("#confirm-delete")
    expect(page.locator("#messages")).to_contain_text("deleted")
    assert store.scan_actors(id_contains="team/").records == []
    contexts.watch.assert_clean()


@JS
def test_history_lists_changes_and_reverts_one_through_the_merge_rules(contexts, store, js):
    put_actor(store, "hist", status="RUNNING", ateom_pod_ip="10.0.0.5", last_snapshot="gs://h/1")
    page = open_edit(contexts, "hist", js)
    page.fill("#id_ateom_pod_ip", "10.0.0.66")
    page.click("#save-button")
    expect(page.locator("#messages")).to_contain_text("saved (version 3)")
    page.click("#edit-actor")
    page.fill("#id_last_snapshot", "gs://h/2")
    page.click("#save-button")
    expect(page.locator("#messages")).to_contain_text("saved (version 4)")

    rows = page.locator("#history-table tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text("3 → 4")
    expect(rows.nth(0)).to_contain_text("gs://h/2")
    expect(rows.nth(1)).to_contain_text("editor")
    expect(rows.nth(1)).to_contain_text("10.0.0.5")
    expect(rows.nth(1)).to_contain_text("10.0.0.66")

    # Revert the IP change (the older one): the snapshot changed since is kept.
    rows.nth(1).locator(".revert-link").click()
    expect(page.locator("#reverting")).to_contain_text("ateom_pod_ip")
    expect(page.locator("#id_ateom_pod_ip")).to_have_value("10.0.0.5")
    expect(page.locator("#id_last_snapshot")).to_have_value("gs://h/2")
    page.click("#save-button")
    expect(page.locator("#messages")).to_contain_text("saved (version 5)")
    stored = store.get_actor("hist")
    assert (stored.ateom_pod_ip, stored.last_snapshot) == ("10.0.0.5", "gs://h/2")
    expect(page.locator("#history-table tbody tr")).to_have_count(3)
    contexts.watch.assert_clean()


LONG_RESTORE = "gs://ate-snapshots/manual/restored-0001-from-incident-4711-" + "0123456789abcdef" * 8


def assert_merge_view_readable(page, width):
    """Nothing scrolls sideways; the choices' words never break mid-word; at 1360 px one row per
    field in five columns, on a phone each field's values stacked in one card."""
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    for word in page.locator("#conflict-table .merge-word").all():
        assert word.evaluate("el => el.getClientRects().length") == 1, word.inner_text()
    row = page.locator("#conflict-table tr[data-field=last_snapshot]")
    cells = [row.locator("td").nth(i).bounding_box() for i in range(4)]
    if width > 640:
        assert len({round(c["y"]) for c in cells}) == 1, cells  # side by side
    else:
        assert all(a["y"] + a["height"] <= b["y"] + 1 for a, b in zip(cells, cells[1:])), cells  # stacked
        assert all(c["x"] >= 0 and c["x"] + c["width"] <= width for c in cells), cells


def test_screenshots_of_the_merge_view_and_a_history(contexts, store):
    put_actor(store, "web-agent-0042", status="RUNNING", ateom_pod_namespace="team-a", ateom_pod_name="small-w-7")
    current = store.get_actor("web-agent-0042")
    current.ateom_pod_ip, current.last_snapshot = "10.20.7.41", "gs://ate-snapshots/team-a/web-agent-0042/0007"
    store.update_actor(current, current.version)
    alice = open_edit(contexts, "web-agent-0042", True)
    bob = open_edit(contexts, "web-agent-0042", True, role="admin")
    alice.fill("#id_last_snapshot", "gs://ate-snapshots/team-a/web-agent-0042/0008")
    alice.fill("#id_ateom_pod_ip", "10.20.7.99")
    alice.click("#save-button")
    expect(alice.locator("#messages")).to_contain_text("saved")
    bob.select_option("#id_status", "SUSPENDING")
    bob.fill("#id_in_progress_snapshot", "gs://ate-snapshots/team-a/web-agent-0042/pending")
    bob.fill("#id_last_snapshot", LONG_RESTORE)
    bob.click("#save-button")
    expect(bob.locator("#conflict-table tr.row-conflict")).to_have_count(1)
    # Who saved the other version, and when (from the record's history).
    expect(bob.locator("#conflict-other")).to_contain_text("was saved by editor at")
    for width, name in ((1360, "edit-merge"), (390, "mobile-edit-merge")):
        bob.set_viewport_size({"width": width, "height": 900 if width > 400 else 844})
        assert_merge_view_readable(bob, width)
        screenshot(bob, name)
    bob.set_viewport_size({"width": 1360, "height": 900})
    bob.check("#keep-last_snapshot")
    bob.click("#merge-button")
    expect(bob.locator("#messages")).to_contain_text("saved")
    expect(bob.locator("#history-table tbody tr")).to_have_count(2)
    bob.locator("#record-history").scroll_into_view_if_needed()
    bob.locator("#record-history").screenshot(path=str(SCREENSHOTS / "record-history.png"), animations="disabled")
    contexts.watch.assert_clean()
