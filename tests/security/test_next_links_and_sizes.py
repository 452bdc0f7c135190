"""Issue 22's findings L3 and two info items, replayed: `next` is only ever a local path (a bare
word was read as a URL name: 500 NoReverseMatch), no `javascript:` link anywhere (the CSP blocks
them), and one size limit for the raw editor's show and save (a 300 kB record could be seen but
neither saved nor deleted)."""

import base64
import json
import re
from pathlib import Path
from urllib.parse import urlencode

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

from atedash.records.forms import RAW_MAX_VALUE

REPO = Path(__file__).resolve().parents[2]
# (next as sent, where the login goes): only local paths are followed.
NEXTS = [
    ("foo", "/"),
    ("overview", "/"),
    ("actor_list", "/"),
    ("//evil.example/", "/"),
    ("/\\evil.example/", "/"),
    ("https://evil.example/", "/"),
    ("javascript:alert(1)", "/"),
    ("\x01/actors/", "/"),
    ("/actors/\r\nSet-Cookie: x=1", "/"),
    ("/actors/?status=RUNNING", "/actors/?status=RUNNING"),
    ("/workers/", "/workers/"),
]
# Relative references other than a bare word resolve against the login page, on this site.
RELATIVE = [
    ("../actors/", "/actors/"),
    ("./x.y", "/login/x.y"),
    ("../../../evil", "/"),
    ("..//evil.example", "/evil.example"),
]


# --- L3: next --------------------------------------------------------------------------------------


@pytest.mark.parametrize("target, location", NEXTS + RELATIVE)
def test_login_follows_only_local_paths(target, location):
    client = Client()
    response = client.post("/login/", {"username": "viewer", "password": "viewer-pass-1", "next": target})
    assert response.status_code == 302 and response["Location"] == location
    # Signed in, the login page sends on the same way (it was a 500 for "foo").
    response = client.get("/login/?" + urlencode({"next": target}))
    assert response.status_code == 302 and response["Location"] == location


def test_the_login_form_carries_only_a_local_next():
    page = Client().get("/login/?" + urlencode({"next": "javascript:alert(1)"})).content.decode()
    assert "javascript:" not in page
    page = Client().get("/login/?" + urlencode({"next": "/workers/"})).content.decode()
    assert 'name="next" value="/workers/"' in page


def test_next_as_a_url_name_against_gunicorn(serve):
    """The finding as reported, against gunicorn as shipped: signed in, GET /login/?next=foo."""
    server = serve()
    browser = server.browser()
    status, _ = browser.request("GET", "/login/?next=foo")
    assert status == 200
    form = {"username": "viewer", "password": "viewer-pass-1", "next": "foo", "csrfmiddlewaretoken": browser.csrf()}
    status, _ = browser.request("POST", "/login/", form)
    assert status == 302 and browser.headers_of_last["Location"] == "/"
    for target, location in NEXTS:
        status, _ = browser.request("GET", "/login/?" + urlencode({"next": target}))
        assert status == 302 and browser.headers_of_last["Location"] == location, target
    assert browser.request("GET", "/")[0] == 200
    assert not server.tracebacks()


def test_cancel_walk_goes_only_to_local_paths(editor):
    url = reverse("matches_cancel", args=["0" * 16])
    for target, location in NEXTS + [(t, "/") for t, _ in RELATIVE]:
        response = editor.post(url, {"next": target})
        assert response.status_code == 302, (target, response.status_code)
        assert response["Location"] == location, target


# --- no javascript: links ----------------------------------------------------------------------------


def test_no_template_holds_a_javascript_link():
    found = []
    for path in sorted((REPO / "templates").rglob("*.html")):
        if re.search(r"javascript\s*:", path.read_text(), re.I):
            found.append(str(path.relative_to(REPO)))
    assert not found


def test_no_rendered_page_holds_a_javascript_link(admin, make_actor, make_worker):
    make_actor("a1")
    make_worker(pod="w1")
    pages = ["/", "/actors/", "/workers/", "/locks/", "/actors/a1/", "/actors/a1/edit/", "/ops/check/", "/audit/"]
    for path in pages:
        response = admin.get(path)
        assert response.status_code in (200, 302), (path, response.status_code)
        assert b"javascript:" not in response.content.lower(), path
    # The bulk confirmation, whose Cancel was `javascript:history.back()`.
    form = {"kind": "actors", "action": "delete-suspended", "scope": "selected", "target": "actor:a1@1"}
    response = admin.post("/bulk/", form | {"next": "/actors/all/?status=SUSPENDED"})
    body = response.content.decode()
    assert response.status_code == 200 and "javascript:" not in body.lower()
    assert 'href="/actors/all/?status=SUSPENDED" id="bulk-cancel"' in body
    body = admin.post("/bulk/", form | {"next": "javascript:alert(1)"}).content.decode()
    assert 'href="/actors/" id="bulk-cancel"' in body and "javascript:" not in body.lower()


# --- one size limit for the raw editor ---------------------------------------------------------------


def raw(path, key):
    return f"/records/raw/{path}?{urlencode({'key': key})}"


def corrupt_value(size, actor_id="big"):
    """A record the ate server cannot read (an unknown field) of about `size` bytes."""
    return json.dumps({"actorId": actor_id, "version": "3", "junk": "j" * size}).encode()


def test_a_300_kb_record_is_shown_saved_and_deleted(editor, admin, store):
    store.client.set("actor:big", corrupt_value(300_000))
    page = editor.get(raw("", "actor:big")).content.decode()
    assert 'id="raw-edit-form"' in page and 'id="too-big"' not in page
    assert 'enctype="multipart/form-data"' in page
    shown = re.search(r'name="shown" value="([^"]+)"', page).group(1)
    fixed = json.dumps({"actorId": "big", "version": "4", "lastSnapshot": "s" * 300_000}).encode()
    response = editor.post(raw("", "actor:big"), {"shown": shown, "value": fixed.decode(), "save": "1"})
    assert response.status_code == 302, response.content[-2000:]
    assert store.client.get("actor:big") == fixed

    store.client.set("actor:big", corrupt_value(300_000))
    page = admin.get(raw("delete/", "actor:big")).content.decode()
    shown = re.search(r'name="shown" value="([^"]+)"', page).group(1)
    response = admin.post(raw("delete/", "actor:big"), {"shown": shown})
    assert response.status_code == 302 and store.client.get("actor:big") is None


def test_a_record_of_the_editors_limit_saves_as_the_page_posts_it(editor, store):
    """The biggest save the editor offers fits under DATA_UPLOAD_MAX_MEMORY_SIZE, and one byte more
    is shown too big to edit (not offered, then refused)."""
    body = corrupt_value(0)
    value = corrupt_value(RAW_MAX_VALUE - len(body))
    assert len(value) == RAW_MAX_VALUE
    store.client.set("actor:big", value)
    page = editor.get(raw("", "actor:big")).content.decode()
    assert 'id="too-big"' not in page
    fixed = json.dumps({"actorId": "big", "version": "4", "lastSnapshot": ""}).encode()
    fixed = fixed.replace(b'""', b'"' + b"s" * (RAW_MAX_VALUE - len(fixed)) + b'"')
    assert len(fixed) == RAW_MAX_VALUE
    shown = base64.b64encode(value).decode()
    assert len(shown) + len(fixed) + 4096 < settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    response = editor.post(raw("", "actor:big"), {"shown": shown, "value": fixed.decode(), "save": "1"})
    assert response.status_code == 302 and store.client.get("actor:big") == fixed

    store.client.set("actor:big", corrupt_value(RAW_MAX_VALUE + 1 - len(body)))
    page = editor.get(raw("", "actor:big")).content.decode()
    assert 'id="too-big"' in page and 'id="raw-edit-form"' not in page


def test_a_record_bigger_than_the_editor_is_repaired_or_deleted_by_its_digest(admin, store):
    store.client.set("actor:huge", corrupt_value(900_000, "huge"))
    page = admin.get(raw("delete/", "actor:huge")).content.decode()
    shown = re.search(r'name="shown" value="([^"]+)"', page).group(1)
    assert shown.startswith("sha256:")
    # The digest of other bytes is a conflict: nothing is deleted.
    response = admin.post(raw("delete/", "actor:huge"), {"shown": "sha256:" + "0" * 64})
    assert response.status_code == 409 and store.client.get("actor:huge") is not None
    response = admin.post(raw("delete/", "actor:huge"), {"shown": shown})
    assert response.status_code == 302 and store.client.get("actor:huge") is None

    store.client.set("actor:huge", corrupt_value(900_000, "huge"))
    page = admin.get(raw("repair/", "actor:huge")).content.decode()
    shown = re.search(r'name="shown" value="([^"]+)"', page).group(1)
    response = admin.post(raw("repair/", "actor:huge"), {"shown": shown, "accept_losses": "on"})
    assert response.status_code == 302
    assert json.loads(store.client.get("actor:huge")) == {"actorId": "huge", "version": "3"}
