"""The outside review's attacks (issue 10, items 1, 4, 5, 8, 9, 10), replayed against gunicorn as
shipped where the attack needs a real server, else through Django's test client. Cursors (items 2,
3, 7) are in test_cursors.py."""

import ipaddress
import json
import os
import secrets
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from django.test import Client

from tests.dashboard.conftest import PASSWORDS, login

REPO = Path(__file__).resolve().parents[2]
MALLORY = {"X-Forwarded-User": "mallory", "X-Forwarded-Role": "admin"}
HEADERS = dict(
    ATEDASH_TRUSTED_HEADER="X-Forwarded-User",
    ATEDASH_TRUSTED_HEADER_ROLE_HEADER="X-Forwarded-Role",
    ATEDASH_ALLOW_FLUSH="1",
)


# --- 1. the trusted header, from anyone ------------------------------------------------------


def test_trusted_header_from_a_client_that_is_not_a_trusted_proxy_counts_for_nothing(serve, make_actor, store):
    make_actor("keep-me")
    server = serve(**HEADERS)  # no ATEDASH_TRUSTED_PROXIES: the header trusts nobody
    mallory = server.browser(**MALLORY)
    status, _ = mallory.request("GET", "/flush/")
    assert status == 302  # to the login page: nobody is signed in
    # Over a signed-in viewer's session the headers change nothing either.
    assert mallory.login("viewer") == 302
    status, body = mallory.request("GET", "/flush/")
    assert status == 403 and "mallory" not in body
    assert mallory.post("/flush/", {"scope": "ate", "confirm": "security-test"})[0] == 403
    assert store.get_actor("keep-me").actor_id == "keep-me"
    assert not server.tracebacks()


def test_trusted_header_from_a_trusted_proxy_signs_in(serve):
    server = serve(**HEADERS, ATEDASH_TRUSTED_PROXIES="127.0.0.1/32")
    status, body = server.browser(**MALLORY).request("GET", "/flush/")
    assert status == 200 and 'id="banner-operator">mallory<' in body


@pytest.mark.process
def test_check_deploy_says_the_header_trusts_nobody():
    env = {k: v for k, v in os.environ.items() if not k.startswith("ATEDASH_") and k != "PYTEST_VERSION"}
    env.update(
        ATEDASH_SECRET_KEY=secrets.token_urlsafe(60), ATEDASH_HTTPS="1", ATEDASH_TRUSTED_HEADER="X-Forwarded-User"
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "atedash.W001" in result.stderr + result.stdout and "trusts nobody" in result.stderr + result.stdout


# --- 4. sessions that could not be ended -----------------------------------------------------


def copy_of(client):
    """Another browser holding a copy of `client`'s cookies."""
    copy = Client()
    for key, morsel in client.cookies.items():
        copy.cookies[key] = morsel.value
    return copy


def test_a_copied_cookie_stops_working_after_logout(serve):
    server = serve()
    browser = server.browser()
    assert browser.login("viewer") == 302
    stolen = server.browser()
    stolen.cookies = dict(browser.cookies)
    assert stolen.request("GET", "/actors/")[0] == 200
    assert browser.post("/logout/")[0] == 302
    assert stolen.request("GET", "/actors/")[0] == 302  # to the login page


def test_a_copied_cookie_stops_working_after_a_password_change_or_remove_and_add(viewer):
    from atedash.core.app import current_app

    stolen = copy_of(viewer)
    assert stolen.get("/actors/").status_code == 200
    current_app().users.add("viewer", "viewer", "a-new-password", replace=True)
    assert stolen.get("/actors/").status_code == 302
    fresh = Client()
    assert fresh.post("/login/", {"username": "viewer", "password": "a-new-password"}).status_code == 302
    stolen = copy_of(fresh)
    current_app().users.remove("viewer")
    current_app().users.add("viewer", "viewer", "a-new-password")  # the same password, added again
    assert stolen.get("/actors/").status_code == 302


def test_sessions_end_when_idle_and_at_their_lifetime(settings, viewer):
    assert viewer.get("/actors/").status_code == 200
    settings.ATEDASH_SESSION_IDLE = 0  # every session has now been idle too long
    assert viewer.get("/actors/").status_code == 302
    settings.ATEDASH_SESSION_IDLE = 3600
    again = login(Client(), "viewer")
    settings.SESSION_COOKIE_AGE = 0
    assert again.get("/actors/").status_code == 302


def test_sign_out_of_one_browser_ends_the_others(settings):
    first, second = login(Client(), "editor"), login(Client(), "editor")
    assert second.get("/actors/").status_code == 200
    first.post("/logout/")
    assert second.get("/actors/").status_code == 302


# --- 5. login throttling -----------------------------------------------------------------------


def test_throttling_is_shared_by_every_process(serve):
    one, other = serve(), serve()
    for _ in range(5):
        assert one.browser().login("admin", "wrong") == 200
    status = other.browser().login("admin")  # the right password, on another process
    assert status == 429


def test_a_spray_of_names_from_one_address_is_throttled(serve):
    server = serve(ATEDASH_LOGIN_MAX_FAILURES_PER_IP="4")
    statuses = [server.browser().login(f"nobody-{i}", "wrong") for i in range(6)]
    assert statuses[:4] == [200] * 4 and statuses[4:] == [429, 429]


def test_the_client_address_comes_from_the_proxy_header_only_from_a_trusted_proxy(settings, cluster_client):
    settings.ATEDASH_CLIENT_IP_HEADER = "X-Forwarded-For"
    spoofer = Client(REMOTE_ADDR="10.0.0.9", headers={"X-Forwarded-For": "203.0.113.50"})
    for _ in range(settings.ATEDASH_LOGIN_MAX_FAILURES):
        spoofer.post("/login/", {"username": "admin", "password": "wrong"})
    # The spoofed header did not move the count to 203.0.113.50: the address 10.0.0.9 is locked out.
    assert spoofer.post("/login/", {"username": "admin", "password": PASSWORDS["admin"]}).status_code == 429
    behind_proxy = Client(REMOTE_ADDR="10.0.0.9", headers={"X-Forwarded-For": "203.0.113.51"})
    assert behind_proxy.post("/login/", {"username": "admin", "password": PASSWORDS["admin"]}).status_code == 429
    settings.ATEDASH_TRUSTED_PROXIES = (ipaddress.ip_network("10.0.0.0/24"),)
    assert behind_proxy.post("/login/", {"username": "admin", "password": PASSWORDS["admin"]}).status_code == 302


def test_password_checks_beyond_the_cap_are_refused_at_once(serve):
    server = serve(ATEDASH_LOGIN_CONCURRENCY="1", GUNICORN_THREADS="8", ATEDASH_LOGIN_MAX_FAILURES_PER_IP="100")
    browsers = [server.browser() for _ in range(8)]
    for browser in browsers:
        browser.csrf()

    def attempt(browser):
        token = browser.cookies["atedash_csrftoken"]
        return browser.request(
            "POST", "/login/", {"username": "admin", "password": "wrong", "csrfmiddlewaretoken": token}
        )[0]

    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(attempt, browsers))
    assert 429 in statuses and set(statuses) <= {200, 429}, statuses
    assert server.browser().request("GET", "/healthz")[0] == 200
    assert not server.tracebacks()


# --- 8. the placeholder secret ---------------------------------------------------------------


@pytest.mark.process
@pytest.mark.parametrize(
    "name, value",
    [
        ("ATEDASH_SECRET_KEY", "replace-me-with-50-random-characters"),
        ("ATEDASH_SECRET_KEY", "short-key"),
        ("ATEDASH_METRICS_TOKEN", "replace-me-too"),
        ("ATEDASH_METRICS_TOKEN", "tok"),
    ],
)
def test_a_placeholder_or_short_secret_refuses_to_start(name, value):
    env = {k: v for k, v in os.environ.items() if not k.startswith("ATEDASH_") and k != "PYTEST_VERSION"}
    env.update(ATEDASH_SECRET_KEY=secrets.token_urlsafe(60))
    env[name] = value
    result = subprocess.run(
        [sys.executable, "-c", "import atedash.wsgi"], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode != 0 and "ImproperlyConfigured" in result.stderr and name in result.stderr


def test_the_shipped_secret_manifest_holds_only_placeholders_that_are_refused():
    from atedash.settings import PLACEHOLDER_SECRETS

    text = (REPO / "deploy" / "kubernetes" / "secret.yaml").read_text()
    for line in text.splitlines():
        if line.strip().startswith(("ATEDASH_SECRET_KEY:", "ATEDASH_METRICS_TOKEN:")):
            value = line.split(":", 1)[1].strip().strip('"')
            assert value in PLACEHOLDER_SECRETS or "replace-me" in value, line


# --- 9. what anonymous visitors see ----------------------------------------------------------


def test_anonymous_visitors_see_no_environment_or_store(serve, redis_url):
    server = serve()
    anonymous = server.browser()
    for path in ("/login/", "/no-such-page/", "/readyz", "/healthz"):
        status, body = anonymous.request("GET", path)
        assert "security-test" not in body and redis_url not in body and "127.0.0.1:" not in body, (path, body[:300])
    assert json.loads(anonymous.request("GET", "/readyz")[1]) == {"ready": True}


# --- 10. the audit names the client, not the proxy ---------------------------------------------


def test_the_audit_records_the_client_address_behind_a_trusted_proxy(settings, audit_log):
    settings.ATEDASH_CLIENT_IP_HEADER = "X-Forwarded-For"
    settings.ATEDASH_TRUSTED_PROXIES = (ipaddress.ip_network("10.0.0.0/24"),)
    client = Client(REMOTE_ADDR="10.0.0.9", headers={"X-Forwarded-For": "198.51.100.23"})
    assert client.post("/login/", {"username": "viewer", "password": PASSWORDS["viewer"]}).status_code == 302
    assert audit_log.entries[-1]["remote_addr"] == "198.51.100.23"
