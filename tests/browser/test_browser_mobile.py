"""atedash on a phone (390 px wide, Chromium): no page scrolls sideways without JavaScript (nor at
1360 px, the desktop width, with history and audit entries holding 300-character values; with
JavaScript in test_browser_a11y.py, on the same tour as axe-core), list tables are one card per
record (id and status first), the filters fold behind "Filters (n active)", the navigation wraps
inside the screen, and the copy buttons on detail pages copy (and are absent without JavaScript).
Writes docs/screenshots/mobile-*.png for the README."""

import pytest
from playwright.sync_api import expect

from .browser_helpers import open_demo_actor_with_lock, put_actor, put_worker, screenshot
from .tour import LONG_ID, too_wide, tour_of, visit

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1360, "height": 900}


def _pages(contexts, *, js=True, viewport=PHONE):
    return {role: contexts.page(role, js=js, viewport=viewport) for role in ("admin", "viewer", None)}


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["390px", "1360px"])
def test_no_page_scrolls_sideways_without_javascript(tour_contexts, viewport):
    contexts = tour_contexts
    pages = _pages(contexts, js=False, viewport=viewport)
    tour = tour_of(contexts, pages["admin"])
    # The history and the audit list hold 300-character values (prepare's edit): both are on the tour.
    assert {"actor-detail", "audit"} <= {stop.name for stop in tour}
    problems = []
    for stop in tour:
        visit(pages[stop.role], stop)
        problems += filter(None, [too_wide(pages[stop.role], stop)])
    assert not problems, "pages wider than the window:\n" + "\n".join(problems)
    contexts.watch.assert_clean()


def test_phone_layout_cards_navigation_and_screenshots(contexts, store, app):
    app.manage("seed_demo")
    page = contexts.page("admin", viewport=PHONE)

    page.goto("/overview/counts/?wait=1")
    expect(page.locator("#actors-by-status")).to_contain_text("RUNNING")
    # The navigation wraps: every link is inside the screen, none hidden.
    links = page.locator("nav.nav a")
    assert links.count() >= 7
    for i in range(links.count()):
        box = links.nth(i).bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], links.nth(i).inner_text()
    # The header's "open" box fits too.
    box = page.locator("#open-record-q").bounding_box()
    assert box and box["x"] + box["width"] <= PHONE["width"]
    screenshot(page, "mobile-overview")

    page.goto("/actors/?ns=team-a")
    # The filters fold behind their summary: the first card is on the first screen.
    expect(page.locator("#filters-summary")).to_have_text("Filters (1 active)")
    expect(page.locator("#id_status")).to_be_hidden()
    rows = page.locator("#actors-table tbody tr[data-actor-id]")
    expect(rows.first).to_be_visible()
    first = rows.first.bounding_box()
    assert first["y"] + first["height"] <= PHONE["height"], first
    page.click("#filters-summary")
    expect(page.locator("#id_status")).to_be_visible()
    page.click("#filters-summary")
    page.goto("/actors/")
    expect(rows).to_have_count(50)
    # One card per record: the column headers are not shown, each cell is labelled, and the id
    # and the status come first, on one line, then the pod, IP and version below them.
    assert page.locator("#actors-table thead").bounding_box()["height"] <= 1
    card = rows.nth(0)
    boxes = {
        label: card.locator(f'td[data-label="{label}"]').bounding_box()
        for label in ("Id", "Status", "Ateom pod", "Ateom IP", "Version", "Template namespace")
    }
    assert abs(boxes["Id"]["y"] - boxes["Status"]["y"]) < boxes["Id"]["height"], boxes
    for later in ("Ateom pod", "Ateom IP", "Version", "Template namespace"):
        assert boxes[later]["y"] > boxes["Id"]["y"], (later, boxes)
    assert (
        boxes["Ateom pod"]["y"] <= boxes["Ateom IP"]["y"] <= boxes["Version"]["y"] <= boxes["Template namespace"]["y"]
    )
    label = card.locator('td[data-label="Ateom IP"]').evaluate("td => getComputedStyle(td, '::before').content")
    assert label == '"Ateom IP: "'
    card_box = card.bounding_box()
    assert card_box["x"] >= 0 and card_box["x"] + card_box["width"] <= PHONE["width"]
    screenshot(page, "mobile-actors", full_page=False)

    # A demo actor that runs on a worker pointing back, with its lock held (as the desktop screenshot).
    actor_id = open_demo_actor_with_lock(page, store)
    screenshot(page, "mobile-actor-detail")

    page.goto(f"/actors/{actor_id}/edit/")
    expect(page.locator("#actor-edit-form")).to_be_visible()
    field = page.locator("#id_last_snapshot").bounding_box()
    assert field["x"] >= 0 and field["x"] + field["width"] <= PHONE["width"]
    # The lock override's checkbox sits on its label's line, right before it.
    box = page.locator("#id_edit_while_locked").bounding_box()
    label = page.locator('label[for="id_edit_while_locked"]').bounding_box()
    assert box["x"] + box["width"] <= label["x"] <= box["x"] + box["width"] + 16, (box, label)
    assert label["y"] <= box["y"] + box["height"] / 2 <= label["y"] + label["height"], (box, label)
    screenshot(page, "mobile-actor-edit")

    page.goto("/workers/?assigned=assigned")
    card = page.locator("#workers-table tbody tr[data-worker]").first
    pod, ip = card.locator('td[data-label="Pod"]').bounding_box(), card.locator('td[data-label="IP"]').bounding_box()
    assert pod["y"] < ip["y"]
    contexts.watch.assert_clean()


def test_copy_buttons_copy_the_value_and_need_javascript(contexts, store):
    put_actor(
        store, "copy-me", status="RUNNING", ateom_pod_namespace="team-a", ateom_pod_name="w-1", ateom_pod_ip="10.9.8.7"
    )
    put_worker(store, "team-a", "small", "w-1", ip="10.9.8.7", actor_id="copy-me")
    assert store.acquire_lock("lock:actor:copy-me", "holder-token-42", 600)
    page = contexts.page("viewer", permissions=["clipboard-read", "clipboard-write"])
    page.goto("/actors/copy-me/")
    # Beside the id, the key, the lock's key and token, the pod and its IP.
    for label in ("actor id", "key", "lock key", "lock token", "Ateom pod IP", "Ateom pod name"):
        expect(page.get_by_role("button", name=f"Copy {label}", exact=True)).to_be_visible()
    # The value's own text is unchanged (the button's label is CSS, its name aria-label).
    expect(page.locator("#field-ateom_pod_ip")).to_have_text("10.9.8.7")
    expect(page.locator("#record-key")).to_have_text("actor:copy-me")
    cases = [("Copy key", "actor:copy-me"), ("Copy lock token", "holder-token-42"), ("Copy Ateom pod IP", "10.9.8.7")]
    for name, value in cases:
        page.get_by_role("button", name=name, exact=True).click()
        expect(page.locator("#copy-status")).to_have_text(f"Copied {name.removeprefix('Copy ')}")
        assert page.evaluate("navigator.clipboard.readText()") == value

    page.goto("/workers/team-a/small/w-1/")
    page.get_by_role("button", name="Copy IP", exact=True).click()
    expect(page.locator("#copy-status")).to_have_text("Copied IP")
    assert page.evaluate("navigator.clipboard.readText()") == "10.9.8.7"
    expect(page.get_by_role("button", name="Copy worker namespace/pool/pod", exact=True)).to_be_visible()

    # Without JavaScript: no button at all (no dead control), the values are plain selectable text.
    nojs = contexts.page("viewer", js=False)
    nojs.goto("/actors/copy-me/")
    expect(nojs.locator("#record-key")).to_have_text("actor:copy-me")
    expect(nojs.locator(".copy-button")).to_have_count(0)
    expect(nojs.locator("button", has_text="Copy")).to_have_count(0)
    assert nojs.locator("#record-key").evaluate("el => getComputedStyle(el).userSelect") != "none"
    contexts.watch.assert_clean()


def test_long_values_wrap_inside_the_window(tour_contexts):
    """The longest id, pod name and token a record can hold stay within 390 px on their detail page."""
    pages = _pages(tour_contexts)
    tour = tour_of(tour_contexts, pages["admin"])
    page = pages["admin"]
    visit(page, next(s for s in tour if s.name == "actor-detail"))
    for selector in ("#actor-id", "#record-key", "#lock-token", "#field-ateom_pod_name", "#field-last_snapshot"):
        box = page.locator(selector).bounding_box()
        assert box and box["x"] + box["width"] <= PHONE["width"], (selector, box)
    expect(page.locator("#actor-id")).to_have_text(LONG_ID)
    # The stored JSON scrolls inside its own box rather than widening the page.
    json_box = page.locator("#stored-json")
    assert json_box.evaluate("el => getComputedStyle(el).overflowX") == "auto"
    assert json_box.bounding_box()["x"] + json_box.bounding_box()["width"] <= PHONE["width"]
