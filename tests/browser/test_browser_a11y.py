"""Accessibility: axe-core (vendored, tests/browser/vendor/axe-core) finds no violation of WCAG 2 A and
AA or of its best practices on any page of atedash (tests/browser/tour.py), in a desktop window
(1360 px) and on a phone (390 px), in real Chromium. The same tour checks that no page scrolls
sideways with JavaScript (test_browser_mobile.py without it): a tour of every page costs seconds."""

from pathlib import Path

import pytest
from playwright.sync_api import expect

from .tour import too_wide, tour_of, visit

pytestmark = pytest.mark.browser

AXE = Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js"
TAGS = ["wcag2a", "wcag2aa", "best-practice"]
WIDTHS = {"desktop": {"width": 1360, "height": 900}, "phone": {"width": 390, "height": 844}}


def axe_violations(page) -> list[str]:
    """Runs axe-core on the page as it is; one line per violation with the elements it names.

    The script goes in through Playwright's evaluate (the DevTools protocol), not a <script> tag:
    the page's CSP allows no inline or foreign script and stays as served."""
    # Results dimmed while an htmx request is out (atedash.css) are not what an operator reads.
    page.wait_for_function(
        "() => !document.querySelector('.htmx-request')"
        " && [...document.querySelectorAll('.results')].every(e => getComputedStyle(e).opacity === '1')"
    )
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text(encoding="utf-8"))
    results = page.evaluate(
        "tags => axe.run(document, {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']})"
        ".then(r => r.violations.map(v => v.id + ' (' + v.impact + '): ' + v.help + ' -> ' +"
        " v.nodes.slice(0, 4).map(n => n.target.join(' ')).join(' | ')))",
        TAGS,
    )
    return results


@pytest.mark.parametrize("width", list(WIDTHS), ids=list(WIDTHS))
def test_no_axe_violations_and_no_sideways_scroll_on_any_page(tour_contexts, width):
    contexts = tour_contexts
    viewport = WIDTHS[width]
    pages = {role: contexts.page(role, viewport=viewport) for role in ("admin", "viewer", None)}
    tour = tour_of(contexts, pages["admin"])
    # The history and the audit list hold 300-character values (prepare's edit): both are on the tour.
    assert {"actor-detail", "audit"} <= {stop.name for stop in tour}
    found, wide = [], []
    for stop in tour:
        page = pages[stop.role]
        visit(page, stop)
        wide += filter(None, [too_wide(page, stop)])  # measured before axe-core is injected
        found += [f"{stop.name} {stop.url[:80]}: {v}" for v in axe_violations(page)]
    assert not found, f"axe-core {AXE.parent.name} at {viewport['width']} px:\n" + "\n".join(found)
    assert not wide, "pages wider than the window:\n" + "\n".join(wide)
    assert len(tour) >= 29
    # The detail pages carry their copy buttons and still fit.
    visit(pages["admin"], next(s for s in tour if s.name == "actor-detail"))
    expect(pages["admin"].locator("#copy-record-key")).to_be_visible()
    contexts.watch.assert_clean()
