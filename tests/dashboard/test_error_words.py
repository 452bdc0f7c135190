"""Every error page says what happened and what to do next, with no empty placeholder.

Each page is rendered signed in and signed out, through real requests (the store down is a port
nothing listens on). A template variable that rendered empty leaves a trace in the text an operator
reads: "at :", an empty <code></code>, "", a space before a comma, two spaces where a value was, or
the word None. The test reads the visible text (tags removed) and fails on any of them.
"""

import re
from html.parser import HTMLParser

import pytest
from django.test import Client

from tests.dashboard.conftest import PASSWORDS, login

UNUSED_URL = "redis://127.0.0.1:1"

EMPTY_ELEMENT = re.compile(r"<(code|strong|em|pre|kbd|samp|p|li|td|h1|h2)\b[^>]*>\s*</\1>")
EMPTY_TEXT = [
    (re.compile(r"\bat\s*:"), "an address missing before a colon ('at :')"),
    (re.compile(r'""|“”'), "empty quotes"),
    (re.compile(r"\s,"), "a space before a comma"),
    (re.compile(r"\(\s*\)"), "empty parentheses"),
    (re.compile(r"\bNone\b"), "None"),
    (re.compile(r"\S {2,}\S"), "two spaces where a value was"),
    (re.compile(r"\s[.:;]"), "a space before punctuation"),
]


class VisibleText(HTMLParser):
    """The page's text as a browser shows it: no tags, no <head>, whitespace runs in the source
    (indentation, newlines) collapsed as HTML does, spaces written as values kept as they are."""

    SKIP = {"head", "script", "style", "title"}

    def __init__(self):
        super().__init__()
        self.parts, self.skipping = [], 0

    def handle_starttag(self, tag, attrs):
        if tag in self.SKIP:
            self.skipping += 1
        elif tag in {"p", "div", "h1", "h2", "li", "pre", "br", "tr", "td", "header", "nav", "main"}:
            self.parts.append("\n")

    def handle_endtag(self, tag):
        if tag in self.SKIP:
            self.skipping -= 1
        elif tag in {"p", "div", "h1", "h2", "li", "pre", "tr", "td"}:
            self.parts.append("\n")

    def handle_data(self, data):
        if not self.skipping:
            # A line break in the source (with its indentation) is one space, marked to merge
            # with its neighbours; spaces on one line are the template's and stay as they are.
            self.parts.append(re.sub(r"[ \t]*\n[ \t\n]*", "\0", data))

    def lines(self):
        text = re.sub(r" *\0[\0 ]*", " ", "".join(self.parts))
        return [line.strip() for line in text.split("\n") if line.strip()]


def assert_complete(response, *, status, says):
    assert response.status_code == status, response.content[:300]
    body = response.content.decode()
    assert "Traceback" not in body
    empty = EMPTY_ELEMENT.search(body)
    assert empty is None, f"an empty element where a value belongs: {empty.group(0)!r}"
    parser = VisibleText()
    parser.feed(body)
    lines = parser.lines()
    text = "\n".join(lines)
    for line in lines:
        for pattern, what in EMPTY_TEXT:
            assert not pattern.search(line), f"{what} in {line!r}"
    assert says in text, text
    # What happened, then what to do next.
    assert 'id="error-message"' in body and 'id="error-next"' in body
    return text


@pytest.fixture
def store_down(settings):
    settings.ATEDASH_REDIS_URL = UNUSED_URL
    return settings


@pytest.fixture(params=["signed-in", "signed-out"])
def who(request):
    return request.param


def client_for(who, role="viewer", **kwargs):
    client = Client(**kwargs)
    return login(client, role) if who == "signed-in" else client


def test_400(who):
    if who == "signed-in":
        response = client_for(who).get("/actors/?cursor=garbage")
        text = assert_complete(response, status=400, says="This page link is not valid")
        assert "Go to the first page" in text
    else:
        # A host name outside ATEDASH_ALLOWED_HOSTS: Django's 400, before any view runs.
        response = Client().get("/login/", HTTP_HOST="evil.example")
        assert_complete(response, status=400, says="could not be understood")


def test_403(who):
    if who == "signed-in":
        response = client_for(who).get("/actors/new/")
        text = assert_complete(response, status=403, says="signed in as viewer with the viewer role")
        assert "ask an administrator" in text
    else:
        # A signed-out visitor meets a 403 only as a form that failed its CSRF check.
        response = Client(enforce_csrf_checks=True).post("/login/", {"username": "viewer", "password": "x"})
        assert_complete(response, status=403, says="CSRF check failed")


def test_csrf_failure_signed_in():
    client = Client(enforce_csrf_checks=True)
    page = client.get("/login/").content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    form = {"username": "editor", "password": PASSWORDS["editor"], "csrfmiddlewaretoken": token}
    assert client.post("/login/", form).status_code == 302
    response = client.post("/actors/new/", {"actor_id": "x"})  # a form without its token
    text = assert_complete(response, status=403, says="CSRF check failed")
    assert "signed in as editor" in text


def test_404(who):
    response = client_for(who).get("/no/such/page/")
    assert_complete(response, status=404, says="No such page.")


def test_404_of_a_record():
    response = client_for("signed-in").get("/actors/no-such-actor/")
    assert_complete(response, status=404, says="no-such-actor")


def test_500(who, monkeypatch):
    from atedash.accounts import views as session
    from atedash.records import views as records

    def broken(*args, **kwargs):
        raise RuntimeError("secret internals")

    client = client_for(who, raise_request_exception=False)
    if who == "signed-in":
        monkeypatch.setattr(records, "persistence", broken)
        response = client.get("/actors/")
    else:
        monkeypatch.setattr(session, "LoginForm", broken)
        response = client.get("/login/")
    text = assert_complete(response, status=500, says="Something went wrong")
    assert "secret internals" not in text and "in atedash's log" in text


def test_503_store_down(who, settings):
    client = client_for(who)
    settings.ATEDASH_REDIS_URL = UNUSED_URL  # once signed in
    if who == "signed-in":
        response = client.get("/actors/")
        text = assert_complete(response, status=503, says=f"cannot reach the store at {UNUSED_URL}")
        assert "ConnectionError" in text
    else:
        # Signing in needs the store (the login throttle lives there).
        response = client.post("/login/", {"username": "viewer", "password": PASSWORDS["viewer"]})
        text = assert_complete(response, status=503, says="atedash cannot reach its store right now")
        assert "127.0.0.1:1" not in text  # the address is for signed-in operators only
    assert "reloads every 5 seconds" in text


def test_503_fragment_signed_out_names_no_empty_address(store_down):
    # Reached only by an HTMX request of a signed-out visitor: the login form posted through HTMX.
    response = Client().post(
        "/login/", {"username": "viewer", "password": "x"}, headers={"HX-Request": "true", "HX-Target": "main"}
    )
    assert response.status_code == 503
    body = response.content.decode()
    assert not EMPTY_ELEMENT.search(body) and "The store is unreachable" in body
