"""The operations pages in Chromium: consistency check and a repair (JavaScript on and off), the backup
download, the audit trail. Writes docs/screenshots/consistency.png and repair.png for the README."""

import json
import re

import pytest
from playwright.sync_api import expect

from .browser_helpers import put_actor, put_worker, screenshot

pytestmark = pytest.mark.browser


def crafted(store):
    """A consistent running pair, a worker claiming a missing actor, a suspended actor naming a pod."""
    put_actor(
        store, "web-1", status="RUNNING", ateom_pod_namespace="team-a", ateom_pod_name="w-1", ateom_pod_ip="10.0.0.11"
    )
    put_worker(
        store,
        "team-a",
        "small",
        "w-1",
        ip="10.0.0.11",
        actor_id="web-1",
        actor_namespace="team-a",
        actor_template="web",
    )
    put_worker(
        store,
        "team-a",
        "small",
        "w-2",
        ip="10.0.0.12",
        actor_id="gone-7",
        actor_namespace="team-a",
        actor_template="web",
    )
    put_actor(
        store,
        "idle-3",
        status="SUSPENDED",
        ateom_pod_namespace="team-a",
        ateom_pod_name="w-9",
        ateom_pod_ip="10.0.0.19",
    )


@pytest.mark.parametrize("js", [True, False], ids=["js", "nojs"])
def test_check_then_repair_a_finding(contexts, store, js):
    crafted(store)
    page = contexts.page("editor", js=js)
    # run=1: a check of this store now, not a report an earlier test left in this server process
    # (checks are cached per process; a FLUSHALL made outside atedash does not mark them stale).
    page.goto("/ops/check/?run=1")
    expect(page.locator("h1")).to_have_text("Consistency check")
    expect(page.locator("#check-count")).to_have_text("2 findings.")
    expect(page.locator('#findings tr[data-kind="orphan_worker"]')).to_contain_text("gone-7")
    row = page.locator('#findings tr[data-kind="suspended_with_pod"]')
    expect(row).to_contain_text("idle-3")
    expect(row.locator('a[href="/actors/idle-3/"]')).to_have_count(1)
    if js:
        screenshot(page, "consistency", full_page=False)

    row.locator("a.repair-link").click()
    expect(page.locator("h1")).to_have_text("Clear the stale pod fields")
    changes = page.locator("#repair-changes")
    expect(changes).to_contain_text("ateom_pod_name")
    expect(changes).to_contain_text("'w-9'")
    expect(changes).to_contain_text("'10.0.0.19'")
    if js:
        screenshot(page, "repair", full_page=False)
    seen = store.get_actor("idle-3")
    assert seen.ateom_pod_name == "w-9"  # looking writes nothing

    page.click("#confirm-repair")
    expect(page).to_have_url(re.compile(r"/ops/check/$"))
    expect(page.locator("#messages")).to_contain_text("Repaired actor:idle-3")
    expect(page.locator("#check-count")).to_have_text("1 finding.")
    expect(page.locator('#findings tr[data-kind="suspended_with_pod"]')).to_have_count(0)
    stored = store.get_actor("idle-3")
    assert (stored.ateom_pod_namespace, stored.ateom_pod_name, stored.ateom_pod_ip) == ("", "", "")
    assert stored.version == seen.version + 1

    page.click("nav >> text=Audit")
    first = page.locator("#audit-table tbody tr").first
    expect(first).to_have_attribute("data-action", "repair.clear_actor_pod")
    expect(first).to_contain_text("actor:idle-3")
    expect(first).to_contain_text("editor")
    contexts.watch.assert_clean()


def test_repair_refused_when_the_record_changed_meanwhile(contexts, store):
    crafted(store)
    page = contexts.page("editor")
    page.goto("/ops/check/?kind=orphan_worker&run=1")
    page.locator('#findings tr[data-kind="orphan_worker"] a.repair-link').click()
    expect(page.locator("#repair-applies")).to_be_visible()
    worker = store.get_worker("team-a", "small", "w-2")
    worker.actor_id = "someone-else"
    store.update_worker(worker, worker.version)
    page.click("#confirm-repair")
    expect(page.locator("#repair-error")).to_contain_text("no longer applies")
    assert store.get_worker("team-a", "small", "w-2").actor_id == "someone-else"
    contexts.watch.assert_clean()


def test_backup_download_from_the_flush_page(contexts, store):
    crafted(store)
    page = contexts.page("admin")
    page.goto("/flush/")
    with page.expect_download() as download:
        page.click("#download-backup")
    path = download.value.path()
    assert re.match(r"atedash-test-\d{8}T\d{6}Z\.jsonl$", download.value.suggested_filename)
    lines = [json.loads(line) for line in open(path, encoding="utf-8")]
    assert sorted(line["key"] for line in lines) == [
        "actor:idle-3",
        "actor:web-1",
        "worker:team-a:small:w-1",
        "worker:team-a:small:w-2",
    ]
    web = next(line for line in lines if line["key"] == "actor:web-1")
    assert web["encoding"] == "json" and web["value"].encode() == store.client.get("actor:web-1")
    assert web["record"]["status"] == "STATUS_RUNNING"
    contexts.watch.assert_clean()
