"""Every page of atedash, for the tests that look at all of them (tests/browser/test_browser_a11y.py:
axe-core finds nothing and nothing scrolls sideways, with JavaScript; tests/browser/test_browser_mobile.py:
nothing scrolls sideways without it; each at 390 px and 1360 px).

`prepare(store, app, page)` seeds the demo data of `make run` plus records with the longest values a
page must fit (a 63-character actor id, a 253-character pod name, a 200-character lock token, a
snapshot path of 300 characters without a break), makes an edit through the form (so the audit page
has an entry) and returns the tour: one Stop per page, in an order that needs no other set-up.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from urllib.parse import quote

from playwright.sync_api import Page, expect

from storage import keys

from .browser_helpers import put_actor, put_worker, save

LONG_ID = "incident-" + "x" * 50 + "-0194"  # 63 characters: the longest DNS-1123 label
LONG_POD = ".".join(["cpu-worker-" + "p" * 52] * 4)[:253].rstrip(".-")  # a 253-character Kubernetes name
LONG_TOKEN = "holder-" + "t" * 193
LONG_SNAPSHOT = "gs://ate-snapshots/" + "s" * 300
EDITED_SNAPSHOT = LONG_SNAPSHOT + "-next"  # what prepare's edit through the form writes
LONG_IP = "fd00:1234:5678:9abc:def0:1234:5678:9abc"
POOL = "cpu"
NAMESPACE = "ml-serving"


@dataclass(frozen=True)
class Stop:
    name: str
    url: str
    role: str | None = "admin"
    status: int = 200
    ready: str = "main h1"  # a selector that is there once the page shows what it should


def prepare(store, app, page: Page) -> list[Stop]:
    app.manage("seed_demo")
    put_actor(
        store,
        LONG_ID,
        ns=NAMESPACE,
        template="inference",
        status="RUNNING",
        ateom_pod_namespace=NAMESPACE,
        ateom_pod_name=LONG_POD,
        ateom_pod_ip=LONG_IP,
        last_snapshot=LONG_SNAPSHOT,
    )
    put_worker(
        store,
        NAMESPACE,
        POOL,
        LONG_POD,
        ip=LONG_IP,
        actor_id=LONG_ID,
        actor_namespace=NAMESPACE,
        actor_template="inference",
    )
    lock_key = keys.actor_lock_key(LONG_ID)
    assert store.acquire_lock(lock_key, LONG_TOKEN, 3600)
    # An edit through the form: the audit page then lists it (with its long changed values).
    page.goto(f"/actors/{LONG_ID}/edit/")
    page.fill("#id_in_progress_snapshot", EDITED_SNAPSHOT)
    page.check("#id_edit_while_locked")  # the lock above is held: saving needs the explicit override
    save(page)
    expect(page.locator("#messages")).to_contain_text("saved")
    # A repair link from the consistency check of the demo data (it has findings).
    page.goto("/ops/check/?wait=1")
    expect(page.locator("#check-summary")).to_be_visible()
    repair_href = page.locator("#findings .repair-link").first.get_attribute("href")
    assert repair_href and re.match(r"^/ops/repair/\?r=", repair_href)

    actor = f"/actors/{LONG_ID}/"
    worker = f"/workers/{NAMESPACE}/{POOL}/{LONG_POD}/"
    return [
        Stop("login", "/login/", role=None),
        Stop("overview", "/overview/counts/?wait=1", ready="#actors-by-status"),
        Stop("actors", "/actors/", ready="#actors-table tbody tr[data-actor-id]"),
        Stop("actors-search", f"/actors/?pod={NAMESPACE}/{LONG_POD}&ip={LONG_IP}", ready="#actors-table tbody tr"),
        Stop("actor-detail", actor, ready="#lock-token"),
        Stop("actor-edit", actor + "edit/", ready="#actor-edit-form"),
        Stop("actor-create", "/actors/new/", ready="#actor-create-form"),
        Stop("actor-delete", actor + "delete/"),
        Stop("actor-matches", "/actors/all/?status=RUNNING&ns=ml-serving", ready="#walk"),
        Stop("workers", "/workers/", ready="#workers-table tbody tr[data-worker]"),
        Stop("workers-search", f"/workers/?ip={LONG_IP}", ready="#workers-table tbody tr[data-worker]"),
        Stop("worker-matches", f"/workers/all/?ip={LONG_IP}", ready="#walk"),
        Stop("worker-detail", worker, ready="#worker-fields"),
        Stop("worker-edit", worker + "edit/", ready="#worker-edit-form"),
        Stop("worker-create", "/workers/new/"),
        Stop("worker-delete", worker + "delete/"),
        Stop("locks", "/locks/", ready="#locks-table tbody tr[data-key]"),
        Stop(
            "lock-release",
            f"/locks/release/?key={quote(lock_key)}&token={quote(LONG_TOKEN)}",
            ready="#lock-release-form",
        ),
        Stop("audit", "/audit/", ready="#audit-table tbody tr[data-action]"),
        Stop("check", "/ops/check/?wait=1", ready="#findings"),
        Stop("repair", repair_href),
        Stop("backup", "/ops/backup/"),
        Stop("flush", "/flush/", ready="#flush-form"),
        Stop("reset", "/reset/", ready="#reset-scope-form"),
        Stop(
            "reset-preview", f"/reset/?kind=actors-template&value={NAMESPACE}/inference", ready="#reset-preview-result"
        ),
        Stop("open-not-found", "/open/?q=ml-serving/no-such-pod-0000", status=404, ready="#open-not-found"),
        Stop("error-404", "/actors/no-such-actor/", status=404),
        Stop("error-400", "/actors/?cursor=forged", status=400),
        Stop("error-403", "/actors/new/", role="viewer", status=403),
    ]


def tour_of(contexts, page: Page) -> list[Stop]:
    """The tour's stops over the store of `tour_contexts` (conftest.py), prepared with `page` (an
    admin's) unless an earlier test's tour is still there."""
    if not contexts.tour:
        contexts.tour.extend(prepare(contexts.store, contexts.app, page))
    return list(contexts.tour)


def visit(page: Page, stop: Stop, deadline_s: float = 90) -> None:
    """Opens the stop's page and waits until it shows `ready`. The overview's counts come from a
    background count: without JavaScript (nothing polls) on a loaded machine `?wait=1` may answer
    before it is done, so the page is loaded again until they are there (up to `deadline_s`)."""
    deadline = time.monotonic() + deadline_s
    while True:
        response = page.goto(stop.url)
        assert response is not None and response.status == stop.status, f"{stop.name}: {response and response.status}"
        if page.locator(stop.ready).count() or page.locator("#stats-pending").count() == 0:
            break
        assert time.monotonic() < deadline, f"{stop.name}: the counts never came"
    expect(page.locator(stop.ready).first).to_be_visible()
    # A walk still running polls every 250 ms (and dims its results while a poll is out): the page
    # is looked at once the walk is done and it holds still (a loaded machine walks for seconds).
    expect(page.locator("#walk-progress")).to_have_count(0, timeout=deadline_s * 1000)


def too_wide(page: Page, stop: Stop) -> str | None:
    """A line naming the page and what sticks out when the page is wider than the window, else None."""
    measured = overflow(page)
    if measured["scrollWidth"] != measured["innerWidth"]:
        return f"{stop.name} {stop.url}: {measured}"
    return None


def overflow(page: Page) -> dict:
    """The page's width against the window's, and the elements that stick out past its right edge."""
    return page.evaluate(
        """() => {
          const width = window.innerWidth;
          const wide = [];
          for (const el of document.querySelectorAll('body *')) {
            const r = el.getBoundingClientRect();
            if (r.width && r.right > width + 0.5) {
              wide.push(el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') +
                (el.className && typeof el.className === 'string' ? '.' + el.className.split(' ').join('.') : '') +
                ' right=' + Math.round(r.right));
            }
            if (wide.length > 8) break;
          }
          return {scrollWidth: document.documentElement.scrollWidth, innerWidth: width, wide: wide};
        }"""
    )
