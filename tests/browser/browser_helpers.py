"""Constants and helpers of the browser tests (imported by conftest.py and the test modules)."""

from __future__ import annotations

import os
from pathlib import Path

from playwright.sync_api import Page, expect

from storage.ateapi_pb2 import Actor, Worker

REPO = Path(__file__).resolve().parent.parent.parent
SCREENSHOTS = REPO / "docs" / "screenshots"
CHROMIUM = os.environ.get("ATEDASH_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ENVIRONMENT = "test"
PASSWORDS = {"viewer": "viewer-pass-browser", "editor": "editor-pass-browser", "admin": "admin-pass-browser"}
VIEWPORT = {"width": 1360, "height": 900}
# Playwright's auto-waiting gives up after this long (the app answers in milliseconds; the
# margin is for a loaded CI machine).
expect.set_options(timeout=15_000)


def login(page: Page, role: str, password: str | None = None) -> None:
    """Signs in through the login form and waits for the page it leads to."""
    page.goto("/login/")
    page.fill("#id_username", role)
    page.fill("#id_password", password or PASSWORDS[role])
    page.click("#login-button")
    expect(page.locator("#banner-operator")).to_have_text(role)


def screenshot(page: Page, name: str, *, full_page: bool = True) -> Path:
    """Writes docs/screenshots/<name>.png for the README: the whole page, or the first screenful."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page, animations="disabled", caret="hide")
    return path


# --- records ---------------------------------------------------------------------------------

S = Actor.Status


def open_demo_actor_with_lock(page: Page, store) -> str:
    """Opens the page of a demo actor (``manage.py seed_demo``) that runs on a worker pointing back,
    with its lock held (the README's actor-detail screenshots), and returns its id."""
    for lock in store.scan_locks(limit=50).records:
        actor_id = lock.key.removeprefix("lock:actor:")
        page.goto(f"/actors/{actor_id}/")
        if page.locator("#worker-points-back.ok").count():
            expect(page.locator("#lock-token")).to_be_visible()
            return actor_id
    raise AssertionError("the demo data has no running actor with a lock and a worker pointing back")


def put_actor(store, actor_id, *, ns="team-a", template="web", status="SUSPENDED", **fields) -> Actor:
    """Creates an actor as the ate API does (SUSPENDED, version 1), then applies status and fields."""
    store.create_actor(
        Actor(
            actor_id=actor_id,
            actor_template_namespace=ns,
            actor_template_name=template,
            status=S.Value("STATUS_SUSPENDED"),
        )
    )
    actor = store.get_actor(actor_id)
    if status != "SUSPENDED" or fields:
        actor.status = S.Value("STATUS_" + status)
        for name, value in fields.items():
            setattr(actor, name, value)
        store.update_actor(actor, actor.version)
    return store.get_actor(actor_id)


def put_worker(store, namespace="team-a", pool="small", pod="w-0", ip="10.0.0.1", **fields) -> Worker:
    store.create_worker(Worker(worker_namespace=namespace, worker_pool=pool, worker_pod=pod, ip=ip, **fields))
    return store.get_worker(namespace, pool, pod)


def status_name(actor: Actor) -> str:
    return S.Name(actor.status).removeprefix("STATUS_")


def shown_ids(page: Page, table="#actors-table") -> list[str]:
    """The record ids of the rows in a list table, in order."""
    return page.locator(f"{table} tbody tr[data-actor-id]").evaluate_all("rows => rows.map(r => r.dataset.actorId)")


def save(page: Page, button: str = "#save-button") -> None:
    """Submits an edit (or a merge's decisions); when the page warns that the consistency check would
    report the result (issue 20: one extra confirmation), confirms it and submits again."""
    with page.expect_navigation():
        page.click(button)
    if page.locator("#edit-findings").count():
        page.check("#id_save_despite_findings")
        with page.expect_navigation():
            page.click("#save-button")
