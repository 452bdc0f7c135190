"""Screenshots of the main pages for the README (docs/screenshots/*.png), taken on the demo data
that `make run` seeds, after checking that each page shows what it should."""

import pytest
from playwright.sync_api import expect

from tests.cluster_faults import LocalCluster, cluster_view, poll

from .browser_helpers import ENVIRONMENT, open_demo_actor_with_lock, screenshot

pytestmark = pytest.mark.browser


def test_screenshots_of_the_main_pages(contexts, store, app):
    app.manage("seed_demo")  # the store is empty: seeds the demo records of `make run`
    page = contexts.page("admin")

    page.goto("/overview/counts/?wait=1")
    expect(page.locator("#actors-by-status")).to_contain_text("RUNNING")
    expect(page.locator("#nodes-table tbody tr")).to_have_count(6)
    screenshot(page, "overview")

    page.goto("/actors/")
    expect(page.locator("#actors-table tbody tr[data-actor-id]")).to_have_count(50)
    screenshot(page, "actors", full_page=False)

    # An actor that runs on a worker pointing back, with its lock held.
    open_demo_actor_with_lock(page, store)
    screenshot(page, "actor-detail")

    # The merge view and a record's history: tests/browser/test_browser_merge.py.

    page.goto("/workers/?assigned=assigned")
    expect(page.locator("#workers-table tbody tr[data-worker]").first).to_be_visible()
    screenshot(page, "workers", full_page=False)

    page.goto("/locks/")
    expect(page.locator("#locks-table tbody tr[data-key]")).to_have_count(6)
    screenshot(page, "locks")

    page.goto("/flush/")
    page.fill("#id_confirm", "staging")
    page.click("#confirm-flush")
    expect(page.locator("#field-confirm .field-error")).to_be_visible()
    expect(page.locator("h1")).to_contain_text(ENVIRONMENT)
    screenshot(page, "flush")
    contexts.watch.assert_clean()


def test_screenshots_of_the_stuck_actors_pages(contexts, store, app):
    """The demo's stuck actors (issue 20's closing note): each page says what is wrong with it."""
    app.manage("seed_demo")
    page = contexts.page("admin")
    stale = next(i for i in store.scan_locks(limit=100).records if i.token == "ate-api-dead-holder-0001")
    for actor_id, name, kinds in [
        ("inference-0074", "stuck-inference-0074", ("duplicate_claim", "leaked_worker")),
        ("fine-tune-0299", "stuck-fine-tune-0299", ("actor_without_worker", "leaked_worker")),
        (stale.key.removeprefix("lock:actor:"), "stuck-stale-lock", ("stale_lock",)),
    ]:
        page.goto(f"/actors/{actor_id}/")
        for kind in kinds:
            expect(page.locator(f'#record-findings li.finding[data-kind="{kind}"]').first).to_be_visible()
        expect(page.locator("#record-ok")).to_have_count(0)
        screenshot(page, name)
    contexts.watch.assert_clean()


def test_screenshots_of_the_overview_with_a_node_down_and_a_reset_preview(
    contexts, store, app, cluster_port, cluster_dir
):
    """The attention strip with a replica down (its shard left without a replica), then the scoped
    reset's blast radius on the demo data."""
    app.manage("seed_demo")
    page = contexts.page("admin")
    page.goto("/overview/counts/?wait=1")
    # The demo's planted faults are listed (its corrupt record), but no node is down.
    expect(page.locator('#attention [data-attention="unreadable"]')).to_be_visible()
    expect(page.locator('#attention [data-attention="node-down"]')).to_have_count(0)

    cluster = LocalCluster(cluster_port, cluster_dir)
    view = cluster_view(cluster_port)
    replica = next(int(a.rsplit(":", 1)[1]) for a, n in view.items() if "slave" in n["flags"])
    cluster.kill(replica)
    try:
        # Until the other nodes flag it failing (cluster-node-timeout).
        poll(lambda: "fail" in cluster.view_of(replica)["flags"], "the killed replica to be flagged down")
        page.goto("/overview/counts/?wait=1")
        expect(page.locator('#attention [data-attention="node-down"]')).to_be_visible()
        expect(page.locator('#attention [data-attention="no-replica"]')).to_be_visible()
        expect(page.locator("#attention-heading")).to_contain_text("Needs attention")
        screenshot(page, "overview-node-down")
    finally:
        cluster.start(replica)
        cluster.wait_whole()

    page.goto("/reset/?kind=actors-namespace&value=team-a")
    expect(page.locator("#breakdown-status")).to_be_visible()
    expect(page.locator("#breakdown-pool")).to_be_visible()
    expect(page.locator("#confirm-reset")).to_be_visible()
    screenshot(page, "reset-preview")
    page.goto("/reset/?kind=actors-namespace&value=team-aa")
    expect(page.locator("#reset-nothing")).to_contain_text("Nothing to reset")
    expect(page.locator("#confirm-reset")).to_have_count(0)
    contexts.watch.assert_clean()
