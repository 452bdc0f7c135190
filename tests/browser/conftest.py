"""Browser tests: atedash served for real (gunicorn, production settings) and driven by Chromium.

* `app`: a gunicorn subprocess on a free port, configured only through the environment like a
  deployment: the test cluster (`redis_url` from tests/conftest.py), a throwaway signing key,
  environment "test", flush allowed, an operators file in a temporary directory filled through
  `manage.py operators add`, static files collected and served by whitenoise. It is ready once
  /healthz answers (polled). Started once for the browser tests and stopped after the last one.
* `browser`: Debian's Chromium (never a downloaded one) through Playwright.
* `contexts`: opens browser contexts (logged in as a role, or not, with or without JavaScript) and
  watches every page in them: dialogs, responses >= 500, console errors and CSP violations are
  recorded so a test can assert that nothing of that kind happened.

Every test gets an empty store (the `store` fixture flushes the cluster's primaries), but for
the tests that only read the tour of every page (`tour_contexts`): they share its seeded store.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from storage import Persistence
from storage.keys import actor_lock_key
from tests.conftest import flush_primaries, know_every_node, restore_sessions_epoch, sessions_epoch

from .browser_helpers import (
    CHROMIUM,
    CHROMIUM_ARGS,
    ENVIRONMENT,
    PASSWORDS,
    REPO,
    VIEWPORT,
    login,
)
from .tour import EDITED_SNAPSHOT, LONG_ID


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class App:
    url: str
    env: dict
    log_path: Path
    process: subprocess.Popen

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def manage(self, *args: str, input: str | None = None) -> str:
        """Runs `manage.py ARGS` with the server's environment; returns its stdout."""
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=REPO,
            env=self.env,
            input=input,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if result.returncode != 0:
            raise AssertionError(f"manage.py {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
        return result.stdout


def _wait_healthy(app: App, deadline_s: float = 60) -> None:
    """Polls /healthz until it answers 200; fails with the server log if the server dies or never answers."""
    deadline = time.monotonic() + deadline_s
    last_error = None
    while time.monotonic() < deadline:
        if app.process.poll() is not None:
            pytest.fail(f"gunicorn exited with {app.process.returncode}:\n{app.log_tail()}", pytrace=False)
        try:
            with urllib.request.urlopen(app.url + "/healthz", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError) as e:
            last_error = e
        time.sleep(0.05)  # poll interval, not synchronisation: the loop exits on the first 200
    pytest.fail(
        f"atedash did not answer /healthz within {deadline_s} s ({last_error}):\n{app.log_tail()}", pytrace=False
    )


@pytest.fixture(scope="package")
def app(redis_url, cluster_client, tmp_path_factory) -> App:
    """atedash under gunicorn, configured like a deployment, on the test cluster."""
    base = tmp_path_factory.mktemp("atedash-browser")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ATEDASH_", "GUNICORN_"))}
    # Production settings, not the test ones atedash.settings picks when it sees pytest.
    env.pop("PYTEST_VERSION", None)
    env.update(
        DJANGO_SETTINGS_MODULE="atedash.settings",
        ATEDASH_REDIS_URL=redis_url,
        ATEDASH_SECRET_KEY=secrets.token_urlsafe(50),
        ATEDASH_ENVIRONMENT=ENVIRONMENT,
        ATEDASH_ALLOW_FLUSH="1",
        ATEDASH_USERS_FILE=str(base / "operators.json"),
        ATEDASH_ALLOWED_HOSTS="127.0.0.1,localhost",
        ATEDASH_STATIC_ROOT=str(base / "static"),
        # A list page stops after ATEDASH_SCAN_SECONDS (0.5 s by default) and offers the rest on the next
        # page: on a loaded machine that made pages the tests read whole end early.
        ATEDASH_SCAN_SECONDS="60",
        GUNICORN_WORKERS="2",
        GUNICORN_THREADS="4",
        GUNICORN_LOG_LEVEL="warning",
        PYTHONUNBUFFERED="1",
    )
    port = _free_port()
    app = App(url=f"http://127.0.0.1:{port}", env=env, log_path=base / "gunicorn.log", process=None)  # type: ignore[arg-type]
    for role, password in PASSWORDS.items():
        app.manage("operators", "add", role, "--role", role, "--password-stdin", input=password + "\n")
    app.manage("collectstatic", "--noinput", "-v", "0")
    log = open(app.log_path, "wb")
    app.process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "atedash.wsgi",
            "-c",
            "atedash/gunicorn.conf.py",
            "--bind",
            f"127.0.0.1:{port}",
            "--access-logfile",
            "-",
        ],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_healthy(app)
        yield app
    finally:
        app.process.terminate()
        try:
            app.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            app.process.kill()
            app.process.wait(timeout=10)
        log.close()


@pytest.fixture(scope="package")
def browser() -> Browser:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(
            f"no Chromium at {CHROMIUM}: `scripts/ensure-system browser` installs it (make test runs it)", pytrace=False
        )
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@dataclass
class Watch:
    """What the pages of a test did that they must not: dialogs, 5xx answers, console errors."""

    dialogs: list = field(default_factory=list)
    server_errors: list = field(default_factory=list)
    console_errors: list = field(default_factory=list)

    def attach(self, page: Page) -> None:
        def on_dialog(dialog):
            self.dialogs.append(f"{dialog.type}: {dialog.message} on {page.url}")
            dialog.dismiss()

        page.on("dialog", on_dialog)
        page.on("response", self._on_response)
        page.on("console", lambda m: self._on_console(m, page))
        page.on("pageerror", lambda e: self.console_errors.append(f"uncaught {e} on {page.url}"))

    def _on_console(self, message, page) -> None:
        # "Failed to load resource" repeats a 4xx/5xx already recorded with its URL by _on_response.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            self.console_errors.append(f"{message.text} on {page.url}")

    def _on_response(self, response) -> None:
        if response.status >= 500:
            self.server_errors.append(f"{response.status} {response.url}")
        elif response.status >= 400 and response.request.resource_type != "document":
            # A stylesheet, script or icon that does not load (pages answering 4xx are tested by status).
            self.console_errors.append(f"{response.status} for {response.request.resource_type} {response.url}")

    def assert_clean(self, *, allow_console=()) -> None:
        assert not self.dialogs, f"a dialog was opened: {self.dialogs}"
        assert not self.server_errors, f"server errors: {self.server_errors}"
        console = [m for m in self.console_errors if not any(a in m for a in allow_console)]
        assert not console, f"console errors: {console}"


class Contexts:
    """Opens browser contexts for a test; every page in them is watched. Closed after the test."""

    def __init__(self, browser: Browser, app: App, sessions: dict, store, tour: list | None = None):
        self.browser, self.app, self.sessions, self.store = browser, app, sessions, store
        self.tour = tour if tour is not None else []  # the tour's stops, once prepared (tour_contexts)
        self.watch = Watch()
        self.opened: list[BrowserContext] = []

    def new(self, role: str | None = None, *, js: bool = True, **options) -> BrowserContext:
        """A fresh context (own cookies), logged in as `role` (a stored session) or anonymous;
        `options` go to Browser.new_context (viewport: VIEWPORT unless given)."""
        state = self._session(role) if role else None
        context = self.browser.new_context(
            base_url=self.app.url,
            java_script_enabled=js,
            storage_state=state,
            **{"viewport": VIEWPORT, **options},
        )
        # Pages of 10+ MB (the hostile 5 MB record) take seconds of layout on a loaded machine.
        context.set_default_navigation_timeout(60_000)
        context.on("page", self.watch.attach)
        self.opened.append(context)
        return context

    def page(self, role: str | None = None, *, js: bool = True, **options) -> Page:
        return self.new(role, js=js, **options).new_page()

    def _session(self, role: str) -> dict:
        # Logging in hashes a password (PBKDF2, deliberately slow): once per role, then the signed
        # session cookie is reused. The login flow itself is tested through the form separately.
        cached = self.sessions.get(role)
        if cached is None or not restore_sessions_epoch(self.store.client, cached[1]):
            context = self.browser.new_context(base_url=self.app.url, viewport=VIEWPORT)
            try:
                page = context.new_page()
                login(page, role)
                cached = self.sessions[role] = (context.storage_state(), sessions_epoch(self.store.client))
            finally:
                context.close()
        return cached[0]

    def close(self) -> None:
        for context in self.opened:
            context.close()


@pytest.fixture(scope="package")
def _sessions() -> dict:
    return {}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item.browser_test_failed = report.failed


@pytest.fixture
def contexts(request, browser, app, store, _sessions, tmp_path) -> Contexts:
    """Browser contexts over an empty store (`store` flushes the cluster first).

    When the test fails, every open page is saved as a PNG in the test's tmp_path and the tail of
    the server log is printed (both in the test's report)."""
    yield from _watched(request, Contexts(browser, app, _sessions, store), app, tmp_path)


@pytest.fixture(scope="package")
def _tour() -> list:
    return []


@pytest.fixture
def tour_contexts(request, browser, app, cluster_client, _sessions, _tour, tmp_path) -> Contexts:
    """`contexts` for the tests that only look at the pages of the tour (tests/browser/tour.py):
    the store keeps the tour an earlier test prepared while it is still there (no other test
    emptied it), and tour.tour_of(contexts, page) gives its stops; else it is emptied as `store` does.
    Seeding the tour costs seconds and six tests read it."""
    know_every_node(cluster_client)
    store = Persistence(cluster_client)
    if not _tour or not _tour_still_there(store):
        _tour.clear()
        flush_primaries(cluster_client)
    yield from _watched(request, Contexts(browser, app, _sessions, store, _tour), app, tmp_path)


def _tour_still_there(store) -> bool:
    try:
        actor = store.get_actor(LONG_ID)
    except Exception:  # noqa: BLE001 - absent or unreadable: the store was emptied since
        return False
    return actor.in_progress_snapshot == EDITED_SNAPSHOT and store.get_lock(actor_lock_key(LONG_ID)) is not None


def _watched(request, opened: Contexts, app: App, tmp_path: Path):
    yield opened
    if getattr(request.node, "browser_test_failed", False):
        for i, page in enumerate(p for c in opened.opened for p in c.pages):
            path = tmp_path / f"failure-{i}.png"
            try:
                page.screenshot(path=str(path), full_page=True)
                print(f"page {page.url} -> {path}")
            except Exception as e:  # noqa: BLE001 - a closed page must not hide the failure
                print(f"page {page.url}: no screenshot ({e})")
        print("server log:\n" + app.log_tail())
    opened.close()
