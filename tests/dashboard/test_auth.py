"""Login, logout, throttling, roles, the trusted header, CSRF, and login required on every URL."""

import io
import ipaddress
import re
import time

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from atedash.accounts import auth
from atedash.core.app import current_app

pytestmark = pytest.mark.fresh_login  # the login and sessions themselves
PUBLIC = {"healthz", "readyz", "login"}
# Reachable without a session but guarded by its own bearer token (ATEDASH_METRICS_TOKEN, tests/ops).
TOKEN_PROTECTED = {"metrics"}


def walk(patterns, prefix=""):
    for entry in patterns:
        if isinstance(entry, URLResolver):
            yield from walk(entry.url_patterns, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            yield entry


def sample_url(pattern):
    args = ["sample"] * len(pattern.pattern.converters)
    return reverse(pattern.name, args=args)


def url_patterns():
    return list(walk(get_resolver().url_patterns))


def test_every_url_needs_a_login_except_health_and_login():
    patterns = url_patterns()
    assert {p.name for p in patterns} >= {"overview", "actor_list", "worker_list", "lock_list", "flush"}
    client = Client()
    for pattern in patterns:
        url = sample_url(pattern)
        exempt = getattr(pattern.callback, "login_exempt", False)
        if pattern.name in PUBLIC | TOKEN_PROTECTED:
            assert exempt, pattern.name
            continue
        assert not exempt, f"{pattern.name} is reachable without login"
        for method in ("get", "post"):
            response = getattr(client, method)(url)
            assert response.status_code == 302, (pattern.name, method, response.status_code)
            assert response["Location"].startswith("/login/?next="), pattern.name


def test_htmx_request_without_login_gets_a_client_redirect():
    response = Client().get("/actors/", headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert response["HX-Redirect"].startswith("/login/?next=")


def test_health_endpoints_need_no_login():
    client = Client()
    response = client.get("/healthz")
    assert response.status_code == 200 and response.content == b"ok"
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["ready"] is True


def test_login_page_and_successful_login(page_html):
    client = Client()
    response = client.get("/login/")
    assert response.status_code == 200
    body = page_html(response)
    assert 'for="id_username"' in body and 'for="id_password"' in body
    response = client.post("/login/", {"username": "viewer", "password": "viewer-pass-1", "next": "/actors/"})
    assert response.status_code == 302 and response["Location"] == "/actors/"
    response = client.get("/actors/")
    assert response.status_code == 200
    assert "viewer" in page_html(response)


def test_login_refuses_wrong_password_and_unknown_name(page_html):
    client = Client()
    response = client.post("/login/", {"username": "viewer", "password": "nope"})
    assert response.status_code == 200
    assert "Wrong name or password" in page_html(response)
    response = client.post("/login/", {"username": "nobody", "password": "nope"})
    assert response.status_code == 200 and "Wrong name or password" in page_html(response)
    assert "atedash_session" not in response.cookies or not response.cookies["atedash_session"].value
    assert client.get("/").status_code == 302


def test_login_next_must_be_local():
    client = Client()
    response = client.post(
        "/login/", {"username": "viewer", "password": "viewer-pass-1", "next": "https://evil.example/"}
    )
    assert response["Location"] == "/"


def forget_login_failures(cluster_client):
    """What the window's end does: the store's failure counters lapse."""
    for node in cluster_client.get_primaries():
        connection = cluster_client.get_redis_connection(node)
        for key in connection.scan_iter(match="atedash:login-failures:*", count=1000):
            connection.delete(key)


def test_throttle_locks_name_and_address_after_failures(settings, page_html, cluster_client):
    client = Client()
    for _ in range(settings.ATEDASH_LOGIN_MAX_FAILURES):
        assert "Wrong name or password" in page_html(
            client.post("/login/", {"username": "editor", "password": "wrong"})
        )
    response = client.post("/login/", {"username": "editor", "password": "editor-pass-1"})
    assert response.status_code == 429
    assert "Too many failed attempts" in page_html(response)
    # Another address, or another name, is not locked out.
    other = Client(REMOTE_ADDR="10.1.2.3")
    assert other.post("/login/", {"username": "editor", "password": "editor-pass-1"}).status_code == 302
    assert Client().post("/login/", {"username": "viewer", "password": "viewer-pass-1"}).status_code == 302
    # When the lockout is over, the right password works again.
    forget_login_failures(cluster_client)
    assert client.post("/login/", {"username": "editor", "password": "editor-pass-1"}).status_code == 302


def test_logout_is_a_post(viewer):
    assert viewer.get("/logout/").status_code == 405
    response = viewer.post("/logout/")
    assert response.status_code == 302 and response["Location"] == "/login/"
    assert viewer.get("/").status_code == 302


def test_removed_operator_is_logged_out(viewer):
    assert viewer.get("/actors/").status_code == 200
    current_app().users.remove("viewer")
    assert viewer.get("/actors/").status_code == 302


def test_session_cookie_is_signed_and_http_only(viewer):
    cookie = viewer.cookies["atedash_session"]
    assert cookie["httponly"]
    assert cookie["samesite"] == "Lax"
    forged = Client()
    forged.cookies["atedash_session"] = cookie.value[:-2] + "xx"
    assert forged.get("/").status_code == 302


def test_csrf_is_enforced_on_posts():
    client = Client(enforce_csrf_checks=True)
    response = client.post("/login/", {"username": "viewer", "password": "viewer-pass-1"})
    assert response.status_code == 403
    page = client.get("/login/").content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    response = client.post("/login/", {"username": "viewer", "password": "viewer-pass-1", "csrfmiddlewaretoken": token})
    assert response.status_code == 302
    # Logged in, a POST without the token is still refused.
    assert client.post("/logout/").status_code == 403


@pytest.mark.parametrize(
    ("role", "allowed"),
    [("viewer", False), ("editor", True), ("admin", True)],
)
def test_editor_pages_by_role(as_role, role, allowed):
    client = as_role(role)
    for url in ("/actors/new/", "/workers/new/"):
        assert client.get(url).status_code == (200 if allowed else 403)


@pytest.mark.parametrize(("role", "allowed"), [("viewer", False), ("editor", False), ("admin", True)])
def test_admin_pages_by_role(as_role, settings, role, allowed):
    settings.ATEDASH_ALLOW_FLUSH = True
    client = as_role(role)
    assert client.get("/flush/").status_code == (200 if allowed else 403)
    assert client.get("/locks/release/?key=lock:actor:a&token=t").status_code == (200 if allowed else 403)


def test_trusted_header_is_off_unless_configured():
    client = Client(headers={"X-Forwarded-User": "mallory"})
    assert client.get("/").status_code == 302


def test_trusted_header_login_with_role_header(settings, page_html):
    settings.ATEDASH_TRUSTED_HEADER = "X-Forwarded-User"
    settings.ATEDASH_TRUSTED_HEADER_ROLE_HEADER = "X-Forwarded-Role"
    settings.ATEDASH_TRUSTED_HEADER_DEFAULT_ROLE = "viewer"
    settings.ATEDASH_TRUSTED_PROXIES = (ipaddress.ip_network("127.0.0.1/32"),)
    # From an address that is not a trusted proxy, the headers count for nothing.
    direct = Client(REMOTE_ADDR="10.9.9.9", headers={"X-Forwarded-User": "mallory", "X-Forwarded-Role": "admin"})
    assert direct.get("/actors/").status_code == 302
    client = Client(headers={"X-Forwarded-User": "carol"})
    response = client.get("/actors/")
    assert response.status_code == 200
    assert "carol" in page_html(response)
    assert client.get("/actors/new/").status_code == 403
    editor = Client(headers={"X-Forwarded-User": "dave", "X-Forwarded-Role": "editor"})
    assert editor.get("/actors/new/").status_code == 200
    bogus = Client(headers={"X-Forwarded-User": "erin", "X-Forwarded-Role": "root"})
    assert bogus.get("/actors/new/").status_code == 403


def test_operators_command(settings):
    out = io.StringIO()
    call_command("operators", "add", "frank", "--role", "editor", stdout=out)
    password = re.search(r"password: (\S+)", out.getvalue()).group(1)
    assert Client().post("/login/", {"username": "frank", "password": password}).status_code == 302
    with pytest.raises(CommandError):
        call_command("operators", "add", "frank", "--role", "viewer", stdout=io.StringIO())
    out = io.StringIO()
    call_command("operators", "list", stdout=out)
    assert "frank\teditor" in out.getvalue()
    assert "admin\tadmin" in out.getvalue()
    call_command("operators", "remove", "frank", stdout=io.StringIO())
    out = io.StringIO()
    call_command("operators", "list", stdout=out)
    assert "frank" not in out.getvalue()
    with pytest.raises(CommandError):
        call_command("operators", "remove", "frank", stdout=io.StringIO())
    stored = settings.ATEDASH_USERS_FILE.read_text()
    assert "viewer-pass-1" not in stored and "md5$" in stored


def test_operators_command_password_from_stdin(monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO("a-long-password\n"))
    call_command("operators", "add", "gina", "--role", "admin", "--password-stdin", stdout=io.StringIO())
    assert Client().post("/login/", {"username": "gina", "password": "a-long-password"}).status_code == 302


def test_throttle_counts_the_proxied_client_address(settings):
    settings.ATEDASH_CLIENT_IP_HEADER = "X-Forwarded-For"
    settings.ATEDASH_TRUSTED_PROXIES = (ipaddress.ip_network("127.0.0.0/8"),)
    attacker = Client(headers={"X-Forwarded-For": "203.0.113.9"})
    for _ in range(settings.ATEDASH_LOGIN_MAX_FAILURES):
        attacker.post("/login/", {"username": "editor", "password": "wrong"})
    assert attacker.post("/login/", {"username": "editor", "password": "editor-pass-1"}).status_code == 429
    # Same proxy (same REMOTE_ADDR), another client: not locked out. A spoofed first entry does not help.
    other = Client(headers={"X-Forwarded-For": "203.0.113.9, 198.51.100.7"})
    assert other.post("/login/", {"username": "editor", "password": "editor-pass-1"}).status_code == 302


READ_PAGES = [
    "/",
    "/overview/counts/",
    "/actors/",
    "/actors/m-1/",
    "/workers/",
    "/workers/team-a/small/w-0/",
    "/locks/",
]
EDIT_PAGES = [
    "/actors/new/",
    "/actors/m-1/edit/",
    "/actors/m-1/delete/",
    "/workers/new/",
    "/workers/team-a/small/w-0/edit/",
    "/workers/team-a/small/w-0/delete/",
]
ADMIN_PAGES = ["/flush/", "/locks/release/?key=lock:actor:m-1&token=t"]


@pytest.mark.parametrize("role", ["viewer", "editor", "admin"])
def test_every_page_for_every_role(as_role, role, settings, make_actor, make_worker, store):
    settings.ATEDASH_ALLOW_FLUSH = True
    make_actor("m-1")
    make_worker()
    store.acquire_lock("lock:actor:m-1", "t", 60)
    client = as_role(role)
    rank = auth.ROLE_RANK[role]
    for url in READ_PAGES:
        assert client.get(url).status_code == 200, (role, url)
    for url in EDIT_PAGES:
        assert client.get(url).status_code == (200 if rank >= 1 else 403), (role, url)
    for url in ADMIN_PAGES:
        assert client.get(url).status_code == (200 if rank >= 2 else 403), (role, url)
    # Navigation offers only what the role may do.
    body = client.get("/actors/m-1/").content.decode()
    assert ('id="edit-actor"' in body) == (rank >= 1)
    assert ('href="/flush/"' in body) == (rank >= 2)


def test_login_page_says_when_there_is_no_operator(page_html):
    assert 'id="no-operators"' not in page_html(Client().get("/login/"))
    for name in ("viewer", "editor", "admin"):
        current_app().users.remove(name)
    assert "manage.py operators add" in page_html(Client().get("/login/"))


# --- the session check's reads of the store (atedash/accounts/stored_sessions.py) ---------------


def _counting_generation_reads(monkeypatch):
    """Counts the session check's reads of the store (the generation; the epoch goes with it)."""
    p = current_app().store.dashboard()
    calls = []
    read = p.session_generation
    monkeypatch.setattr(p, "session_generation", lambda name: calls.append(name) or read(name))
    return calls


def test_the_session_check_reads_the_store_once_per_recheck_interval(settings, monkeypatch):
    from tests.dashboard.conftest import login

    settings.ATEDASH_SESSION_RECHECK_SECONDS = 600
    client = login(Client(), "viewer")
    reads = _counting_generation_reads(monkeypatch)
    for _ in range(10):
        assert client.get("/actors/").status_code == 200
    assert reads == []  # the login read it: no round trip per request
    settings.ATEDASH_SESSION_RECHECK_SECONDS = 0  # a fresh application: every request reads
    client = login(Client(), "viewer")
    reads = _counting_generation_reads(monkeypatch)
    for _ in range(10):
        assert client.get("/actors/").status_code == 200
    assert reads == ["viewer"] * 10


def test_a_logout_elsewhere_counts_here_after_the_recheck_interval(settings):
    from tests.dashboard.conftest import login

    settings.ATEDASH_SESSION_RECHECK_SECONDS = 0.5
    client = login(Client(), "viewer")
    assert client.get("/actors/").status_code == 200
    # Another process's logout: the generation bumped in the store, not through this application.
    current_app().store.dashboard().end_sessions("viewer")
    bumped = time.monotonic()
    while client.get("/actors/").status_code == 200:
        assert time.monotonic() - bumped < 0.5 + 10, "the logout elsewhere never counted here"
        time.sleep(0.05)  # a poll interval, not a synchronisation


def test_a_stale_recheck_never_ends_a_session_the_store_accepts(settings):
    """A cookie signed elsewhere after this process read the generation (a login on another process
    after a logout): this process reads the store again instead of refusing it."""
    from tests.dashboard.conftest import login

    settings.ATEDASH_SESSION_RECHECK_SECONDS = 600
    old = login(Client(), "viewer")
    assert old.get("/actors/").status_code == 200
    app = current_app()
    app.store.dashboard().end_sessions("viewer")  # logout on another process
    fresh = login(Client(), "viewer")  # signs the new generation (and this process re-reads it)
    cached = app.sessions._entries["viewer"]
    app.sessions._entries["viewer"] = (cached[0], cached[1], cached[2] - 1)  # as read before the logout
    assert fresh.get("/actors/").status_code == 200
    assert app.sessions._entries["viewer"][2] == cached[2]
    assert old.get("/actors/").status_code == 302
