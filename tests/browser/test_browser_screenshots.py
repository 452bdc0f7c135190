"""Screenshots of the main pages for the README (docs/screenshots/*.png), taken on the demo data
that `make run` seeds, after checking that each page shows what it should."""

import pytest
from playwright.sync_api import expect

from .browser_helpers import ENVIRONMENT, open_demo_actor_with_lock, screenshot

pytestmark = pytest.mark.browser


def test_screenshots_of_the_main_pages(contexts, store, app):
    app.manage("seed_demo")  # the store is empty: seeds the demo records of `make run`
    page = contexts.page("admin")

    page.goto("/overview/stats/?wait=1")
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
