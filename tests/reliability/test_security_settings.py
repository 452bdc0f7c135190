"""Security headers on every kind of response, cookies under HTTPS, and `manage.py check --deploy`
passing with the production settings (a production-like environment, as deploy/ sets it).
"""

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client

from tests.dashboard.conftest import login

REPO = Path(__file__).resolve().parents[2]


def assert_headers(response, where):
    csp = response["Content-Security-Policy"]
    directives = dict((d.strip().split(" ", 1) + [""])[:2] for d in csp.split(";") if d.strip())
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp, where
    assert directives["default-src"] == "'self'", where
    assert directives["script-src"] == "'self'" and directives["style-src"] == "'self'", where
    assert directives["object-src"] == "'none'" and directives["frame-ancestors"] == "'none'", where
    assert response["X-Frame-Options"] == "DENY", where
    assert response["X-Content-Type-Options"] == "nosniff", where
    assert response["Referrer-Policy"] == "same-origin", where


def test_headers_on_every_kind_of_response(admin, settings, make_actor):
    settings.ATEDASH_ALLOW_FLUSH = True
    make_actor("a-1")
    responses = {
        "page": admin.get("/actors/"),
        "htmx fragment": admin.get("/actors/", headers={"HX-Request": "true"}),
        "detail": admin.get("/actors/a-1/"),
        "form": admin.get("/actors/a-1/edit/"),
        "404": admin.get("/actors/missing/"),
        "405": admin.get("/logout/"),
        "redirect": admin.post("/logout/"),
        "login": Client().get("/login/"),
        "anonymous redirect": Client().get("/actors/"),
        "healthz": Client().get("/healthz"),
        "readyz": Client().get("/readyz"),
        "static": Client().get("/static/vendor/htmx/htmx.min.js"),
    }
    viewer = login(Client(), "viewer")
    responses["403"] = viewer.get("/actors/new/")
    settings.ATEDASH_REDIS_URL = "redis://127.0.0.1:1"
    responses["503"] = viewer.get("/actors/")
    static = responses.pop("static")
    for where, response in responses.items():
        assert response.status_code != 500, where
        assert_headers(response, where)
    # Our own script, served by whitenoise ahead of the page middleware: never sniffed as something else.
    assert static.status_code == 200
    assert static["X-Content-Type-Options"] == "nosniff" and static["Referrer-Policy"] == "same-origin"
    responses["static"] = static
    # htmx comes from static/, not from a CDN.
    assert b"htmx" in b"".join(static.streaming_content)[:5000]


HTTPS = {"HTTP_X_FORWARDED_PROTO": "https"}


@pytest.fixture
def behind_https_proxy(settings):
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    return settings


def cookies_of(response):
    return {name: morsel for name, morsel in response.cookies.items() if morsel.value}


def test_cookies_are_secure_and_http_only_under_https(behind_https_proxy):
    client = Client(**HTTPS)
    response = client.get("/login/")
    csrf = response.cookies["atedash_csrftoken"]
    assert csrf["secure"] and csrf["httponly"] and csrf["samesite"] == "Lax"
    response = client.post("/login/", {"username": "editor", "password": "editor-pass-1"})
    assert response.status_code == 302
    cookies = cookies_of(response)
    assert {"atedash_session", "atedash_csrftoken"} <= set(cookies)
    for name, morsel in cookies.items():
        assert morsel["secure"], name
        assert morsel["httponly"], name
    # A message cookie (set after a save) is Secure and HttpOnly too.
    response = client.post(
        "/actors/new/", {"actor_id": "c-1", "actor_template_namespace": "a", "actor_template_name": "b"}
    )
    assert response.status_code == 302
    messages = response.cookies["messages"]
    assert messages["secure"] and messages["httponly"]


def test_plain_http_cookies_follow_the_setting(settings):
    settings.SESSION_COOKIE_SECURE = settings.CSRF_COOKIE_SECURE = False
    response = Client().get("/login/")
    assert not response.cookies["atedash_csrftoken"]["secure"]  # local http://127.0.0.1 keeps working
    assert response.cookies["atedash_csrftoken"]["httponly"]


def test_https_redirect_and_hsts(behind_https_proxy):
    behind_https_proxy.SECURE_SSL_REDIRECT = True
    behind_https_proxy.SECURE_HSTS_SECONDS = 31536000
    behind_https_proxy.SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    response = Client().get("/actors/")
    assert response.status_code == 301 and response["Location"].startswith("https://")
    # Probes and scrapers call these over plain HTTP.
    assert Client().get("/healthz").status_code == 200
    assert Client().get("/readyz").status_code == 200
    response = Client(**HTTPS).get("/login/")
    assert response.status_code == 200
    assert response["Strict-Transport-Security"].startswith("max-age=31536000")


def production_env(**extra):
    """The environment of a deployment (deploy/kubernetes/configmap.yaml) with a real signing key."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ATEDASH_", "DJANGO_"))}
    env.pop("PYTEST_VERSION", None)  # production settings, not the test ones
    env.update(
        DJANGO_SETTINGS_MODULE="atedash.settings",
        ATEDASH_SECRET_KEY=secrets.token_urlsafe(64),
        ATEDASH_ENVIRONMENT="staging",
        ATEDASH_ALLOWED_HOSTS="atedash.example.internal,localhost",
        ATEDASH_CSRF_TRUSTED_ORIGINS="https://atedash.example.internal",
        ATEDASH_HTTPS="1",
        ATEDASH_PROXY_SSL_HEADER="X-Forwarded-Proto",
        **extra,
    )
    return env


@pytest.mark.process
def test_check_deploy_passes_with_production_settings():
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=REPO,
        env=production_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in (result.stdout + result.stderr)


@pytest.mark.process
def test_check_deploy_passes_with_the_https_settings_spelled_out():
    env = production_env(ATEDASH_SECURE_COOKIES="1", ATEDASH_SSL_REDIRECT="1", ATEDASH_HSTS_SECONDS="31536000")
    del env["ATEDASH_HTTPS"]
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.process
@pytest.mark.parametrize("switch", [{"ATEDASH_SECURE_COOKIES": "1"}, {"ATEDASH_PROXY_SSL_HEADER": "X-Forwarded-Proto"}])
def test_check_deploy_passes_when_https_is_implied(switch):
    # Asking for Secure cookies or naming the TLS proxy's header says the site is served over HTTPS.
    env = production_env()
    del env["ATEDASH_HTTPS"], env["ATEDASH_PROXY_SSL_HEADER"]
    env.update(switch)
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.process
def test_check_deploy_flags_a_plain_http_deployment():
    env = production_env()
    del env["ATEDASH_HTTPS"], env["ATEDASH_PROXY_SSL_HEADER"]
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "SESSION_COOKIE_SECURE" in result.stderr and "SECURE_SSL_REDIRECT" in result.stderr


@pytest.mark.process
def test_production_settings_values():
    code = (
        "import json, django; django.setup(); from django.conf import settings as s; print(json.dumps({"
        "'debug': s.DEBUG, 'session_secure': s.SESSION_COOKIE_SECURE, 'csrf_secure': s.CSRF_COOKIE_SECURE,"
        "'session_httponly': s.SESSION_COOKIE_HTTPONLY, 'csrf_httponly': s.CSRF_COOKIE_HTTPONLY,"
        "'redirect': s.SECURE_SSL_REDIRECT, 'hsts': s.SECURE_HSTS_SECONDS, 'xfo': s.X_FRAME_OPTIONS,"
        "'proxy': list(s.SECURE_PROXY_SSL_HEADER), 'exempt': s.SECURE_REDIRECT_EXEMPT,"
        "'upload': s.DATA_UPLOAD_MAX_MEMORY_SIZE}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=production_env(), capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    values = json.loads(result.stdout.strip().splitlines()[-1])
    assert values["debug"] is False
    assert values["session_secure"] and values["csrf_secure"] and values["session_httponly"] and values["csrf_httponly"]
    assert values["redirect"] and values["hsts"] >= 31536000 and values["xfo"] == "DENY"
    assert values["proxy"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert values["upload"] <= 1024 * 1024
