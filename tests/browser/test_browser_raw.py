"""The raw editor in a real browser on gunicorn (JavaScript off: plain forms): a record the ate server
cannot read is flagged in the list, explained on its page, refused by the edit form, checked and
saved as JSON text in the raw editor; a held lock needs its checkbox."""

import re

import pytest
from playwright.sync_api import expect

from storage.ateapi_pb2 import Actor

from .browser_helpers import put_actor

pytestmark = pytest.mark.browser

ODD = b'{"actorId":"odd","actorTemplateNamespace":"team-a","status":"STATUS_PAUSED"}'


def test_nojs_unreadable_record_mended_in_the_raw_editor(contexts, store):
    put_actor(store, "fine")
    store.client.set("actor:odd", ODD)
    page = contexts.page("editor", js=False)
    page.goto("/actors/")
    expect(page.locator('#actors-table tr.row-unreadable[data-actor-id="odd"] .flag-unreadable')).to_have_count(1)
    expect(page.locator("#actors-table tr.row-unreadable")).to_have_count(1)
    page.goto("/actors/odd/")
    expect(page.locator("#unreadable-reason")).to_contain_text('invalid value for enum field status: "STATUS_PAUSED"')
    expect(page.locator("#unreadable-fails")).to_contain_text("ListActors fails while this record exists")
    page.goto("/actors/odd/edit/")
    expect(page.locator("#unreadable-record")).to_be_visible()
    page.click("#raw-edit-link")
    expect(page).to_have_url(re.compile(r"/records/raw/\?key=actor%3Aodd$"))
    expect(page.locator("#stored-bytes")).to_have_text(ODD.decode())
    page.fill("#id_value", '{"actorId":"odd","status":"STATUS_PAUSING"}')
    page.click("#check-button")
    expect(page.locator("#check-result")).to_contain_text("could not read it")
    assert store.client.get("actor:odd") == ODD
    page.fill("#id_value", '{"actorId":"odd","actorTemplateNamespace":"team-a","status":"STATUS_SUSPENDED"}')
    page.click("#check-button")
    expect(page.locator("#check-result")).to_have_text("The ate server reads it.")
    page.click("#save-button")
    expect(page).to_have_url(re.compile(r"/actors/odd/$"))
    expect(page.locator("#unreadable-record")).to_have_count(0)
    assert store.get_actor("odd").status == Actor.STATUS_SUSPENDED
    contexts.watch.assert_clean()


def test_nojs_held_lock_needs_the_checkbox(contexts, store):
    put_actor(store, "a1", status="RUNNING")
    assert store.acquire_lock("lock:actor:a1", "workflow-9", 600)
    page = contexts.page("editor", js=False)
    page.goto("/actors/a1/edit/")
    expect(page.locator("#held-lock-token")).to_have_text("workflow-9")
    page.fill("#id_last_snapshot", "edited")
    page.click("#save-button")
    expect(page.locator("#field-edit_while_locked .field-error")).to_contain_text("A workflow holds lock:actor:a1")
    assert store.get_actor("a1").last_snapshot == ""
    page.check("#id_edit_while_locked")
    page.click("#save-button")
    expect(page).to_have_url(re.compile(r"/actors/a1/$"))
    assert store.get_actor("a1").last_snapshot == "edited"
    contexts.watch.assert_clean()
