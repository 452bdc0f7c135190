"""Hostile records in the store: whatever is stored, the dashboard shows it (flagged, escaped), never a 500.

Records that are not JSON, JSON of the wrong shape, a key that disagrees with the id inside, binary
garbage, bytes that are not UTF-8, 5 MB values, keys and values with spaces, quotes, `<script>`,
unicode and non-UTF-8 bytes, keys of the wrong Redis type. Every list page walks them all and flags
the corrupt ones, every detail page shows an escaped preview, the edit and delete pages refuse
corrupt records with an error page, and no page ever carries the raw markup of a record.
(The browser test that no script in a record ever runs is in tests/browser/.)
"""

import html
import json
import re
from urllib.parse import quote

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

from storage import Persistence
from tests.conftest import flush_primaries, know_every_node

SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(2)>'
FIVE_MB = 5 * 1024 * 1024


def actor_json(actor_id, **fields):
    record = {
        "actorId": actor_id,
        "version": "1",
        "actorTemplateNamespace": "team-a",
        "actorTemplateName": "web",
        "status": "STATUS_SUSPENDED",
        **fields,
    }
    return json.dumps(record).encode()


# key -> value; the keys are bytes so that non-UTF-8 keys can be stored too.
CORRUPT_ACTORS = {
    b"actor:not-json": b"this is not JSON {",
    b"actor:json-array": b"[1, 2, 3]",
    b"actor:json-string": b'"just a string"',
    b"actor:json-null": b"null",
    b"actor:wrong-types": b'{"actorId": 5, "status": [], "version": {"a": 1}}',
    b"actor:mismatch": actor_json("someone-else"),
    b"actor:binary-garbage": bytes(range(256)) * 4,
    b"actor:not-utf8": b'{"actorId": "not-utf8", "actorTemplateName": "\xff\xfe\xfd"}',
    b"actor:script-value": ('{"actorId": "' + SCRIPT + '"').encode(),
    b"actor:" + SCRIPT.encode() + b"-corrupt": b"<html>" + SCRIPT.encode() + b"</html>",
    b"actor:" + IMG.encode(): b"\x08\x96\x01" + IMG.encode(),
    b"actor:\xff\xfe-bad-key": actor_json("\ufffd\ufffd-bad-key"),
    b"actor:big-garbage": b"\x00" + b"\xfe" * FIVE_MB,
    b"actor:empty": b"",
}
# Valid records whose ids or fields are hostile: listed as records, escaped everywhere.
HOSTILE_ACTORS = {
    "with space": {},
    "quo\"te's": {},
    SCRIPT: {"lastSnapshot": SCRIPT},
    "ünïcødé-🚀": {"ateomPodName": IMG, "ateomPodNamespace": "x"},
    "<img src=x onerror=alert(3)>": {"lastSnapshot": IMG},
    "fields": {"lastSnapshot": SCRIPT, "ateomPodName": IMG, "ateomPodIp": SCRIPT, "inProgressSnapshot": IMG},
    "big-valid": {"lastSnapshot": "s" * FIVE_MB},
}
CORRUPT_WORKERS = {
    b"worker:ns:pool:not-json": b"\x00\x01garbage",
    b"worker:ns:pool:mismatch": b'{"workerNamespace": "ns", "workerPool": "pool", "workerPod": "other"}',
    b"worker:" + SCRIPT.encode() + b":p:q": b"{" + IMG.encode(),
    b"worker:too:many:colons:here": b"{}",
}
HOSTILE_WORKERS = [("ns", "pool", SCRIPT), ("ns", "pool", IMG), ("ns", "p o o l", 'quo"te'), ("ünï", "🚀", "pod")]


@pytest.fixture(scope="module")
def hostile_store(cluster_client):
    """The test cluster emptied, then the hostile records written, once for the module (10 MB): its
    tests only read them (every write they try is refused, and asserted to be)."""
    know_every_node(cluster_client)
    flush_primaries(cluster_client)
    c = cluster_client.pipeline(transaction=False)  # one batch a node, not a round trip a key
    for key, value in CORRUPT_ACTORS.items():
        c.set(key, value)
    for actor_id, fields in HOSTILE_ACTORS.items():
        c.set(f"actor:{actor_id}", actor_json(actor_id, **fields))
    for key, value in CORRUPT_WORKERS.items():
        c.set(key, value)
    for ns, pool, pod in HOSTILE_WORKERS:
        c.set(
            f"worker:{ns}:{pool}:{pod}",
            json.dumps(
                {"workerNamespace": ns, "workerPool": pool, "workerPod": pod, "actorId": SCRIPT, "version": "1"}
            ),
        )
    # Keys of the wrong Redis type, and hostile locks.
    c.hset("actor:a-hash", "field", SCRIPT)
    c.rpush("worker:ns:pool:a-list", SCRIPT)
    c.hset("lock:actor:a-hash", "x", "y")
    c.set(f"lock:{SCRIPT}", IMG, ex=600)
    c.set(b"lock:actor:\xff-bin", b"\xff\xfe token", ex=600)
    c.set("lock:actor:with space", SCRIPT)
    c.set("actor:odd-lock", actor_json("odd-lock"))
    c.rpush("lock:actor:odd-lock", "not a token")
    c.execute()
    return Persistence(cluster_client)


@pytest.fixture
def store(hostile_store):
    """The module's tests share the hostile store (tests/conftest.py's `store` empties it for each)."""
    return hostile_store


def assert_safe(response, where):
    """Never a 500, and no markup from a record made it into the page unescaped."""
    content = b"".join(response.streaming_content) if response.streaming else response.content
    assert response.status_code < 500, (where, response.status_code, content[:500])
    body = content.decode("utf-8")  # a page is always valid UTF-8
    if not response["Content-Type"].startswith("text/html"):
        # A download (JSON lines export...): the browser is told not to guess it is a page.
        assert response["X-Content-Type-Options"] == "nosniff", where
        return body
    assert SCRIPT not in body, where
    assert "<img src=x" not in body, where
    return body


def walk(client, path, size=200):
    """Every page of a list: (bodies, flagged corrupt keys, row ids)."""
    url = f"{path}?size={size}"
    bodies = []
    while url:
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code)
        body = assert_safe(response, url)
        bodies.append(body)
        link = re.search(r'<a href="([^"]+)"[^>]*id="next-page"', body)
        url = path + html.unescape(link.group(1)) if link else None
    text = "".join(bodies)
    flagged = [html.unescape(k) for k in re.findall(r'class="row-corrupt" data-key="([^"]*)"', text)]
    return text, flagged


def test_lists_flag_corrupt_records_and_escape_hostile_ones(admin, hostile_store):
    text, flagged = walk(admin, "/actors/")
    expected = {k.decode("utf-8", "backslashreplace") for k in CORRUPT_ACTORS} | {"actor:a-hash"}
    assert set(flagged) == expected, set(flagged) ^ expected
    rows = {html.unescape(i) for i in re.findall(r'<tr data-actor-id="([^"]*)"', text)}
    assert rows == set(HOSTILE_ACTORS) | {"odd-lock"}, rows ^ set(HOSTILE_ACTORS)
    assert html.escape(SCRIPT) in text or "&lt;script&gt;" in text
    # The previews of corrupt records are short and escaped, even for 5 MB of garbage.
    assert len(text) < 2 * FIVE_MB  # the 5 MB valid record's snapshot is shown once

    text, flagged = walk(admin, "/workers/")
    expected = {k.decode() for k in CORRUPT_WORKERS} | {"worker:ns:pool:a-list"}
    assert set(flagged) == expected, set(flagged) ^ expected
    assert len(re.findall(r'<tr data-worker="', text)) == len(HOSTILE_WORKERS)

    text, _ = walk(admin, "/locks/")
    assert "&lt;script&gt;" in text


def actor_urls(actor_id):
    q = quote(actor_id, safe="")
    return [f"/actors/{q}/", f"/actors/{q}/edit/", f"/actors/{q}/delete/"]


@pytest.mark.parametrize("key", sorted(CORRUPT_ACTORS) + [b"actor:a-hash"], ids=lambda k: repr(k)[2:30])
def test_detail_edit_delete_of_corrupt_actor(admin, hostile_store, key):
    actor_id = key.decode("utf-8", "replace").removeprefix("actor:")
    detail, edit, delete = (admin.get(url) for url in actor_urls(actor_id))
    body = assert_safe(detail, key)
    if b"\xff" in key or b"/" in key:
        # A key that is not UTF-8, or whose id has a "/", cannot be named in a URL: the path names
        # another (missing) key, or no page at all. The list shows it, flagged, with its preview.
        assert detail.status_code == 404
        return
    if key == b"actor:a-hash":
        # Not a string at all: nothing to preview; the error page says what is stored there.
        assert detail.status_code == 422 and "not a string" in body, body[-3000:]
    else:
        assert detail.status_code == 200, (key, detail.status_code)
        assert 'id="corrupt-record"' in body and "flag-corrupt" in body
    assert len(body) < 100_000  # an escaped preview, not the 5 MB value
    for response in (edit, delete):
        page = assert_safe(response, key)
        assert response.status_code == 422, (key, response.status_code)
        assert "corrupt" in page
    # A POST cannot change or delete it either.
    for response in (admin.post(actor_urls(actor_id)[1], {"version": 1}), admin.post(actor_urls(actor_id)[2])):
        assert_safe(response, key)
        assert response.status_code == 422, (key, response.status_code)
    assert hostile_store.client.exists(key)


@pytest.mark.parametrize("actor_id", sorted(HOSTILE_ACTORS), ids=lambda i: repr(i)[:20])
def test_detail_edit_delete_of_hostile_actor(admin, hostile_store, actor_id):
    for url in actor_urls(actor_id):
        response = admin.get(url)
        body = assert_safe(response, url)
        if "/" in actor_id:
            assert response.status_code == 404  # no URL can name it; the list shows it
            continue
        assert response.status_code == 200, (url, response.status_code)
        assert html.escape(actor_id) in body or actor_id in body


def test_actor_whose_lock_key_has_the_wrong_type(admin, hostile_store):
    response = admin.get("/actors/odd-lock/")
    body = assert_safe(response, "odd-lock")
    assert response.status_code == 200 and 'id="actor-fields"' in body
    assert 'id="lock-corrupt"' in body


def test_worker_and_lock_pages(admin, settings, hostile_store):
    settings.ATEDASH_ALLOW_FLUSH = True
    for ns, pool, pod in HOSTILE_WORKERS:
        base = "/workers/" + "/".join(quote(p, safe="") for p in (ns, pool, pod)) + "/"
        for url in (base, base + "edit/", base + "delete/"):
            response = admin.get(url)
            assert_safe(response, url)
            assert response.status_code == (404 if "/" in pod else 200), (url, response.status_code)
    for url in ("/workers/ns/pool/not-json/", "/workers/ns/pool/mismatch/", "/workers/ns/pool/a-list/"):
        assert_safe(admin.get(url), url)
        assert_safe(admin.get(url + "edit/"), url)
    release = admin.get("/locks/release/?" + f"key={quote('lock:' + SCRIPT)}&token={quote(IMG)}")
    assert release.status_code == 200 and "&lt;script&gt;" in assert_safe(release, "release")
    response = admin.get("/locks/release/?key=lock:actor:a-hash&token=x")
    assert response.status_code == 422 and "not a string" in assert_safe(response, "release wrong type")
    response = admin.post("/locks/release/", {"key": "lock:actor:a-hash", "token": "x"})
    assert response.status_code == 422 and hostile_store.client.exists("lock:actor:a-hash")


def get_urls():
    """Every URL pattern without arguments (lists, overview, ops pages...)."""

    def patterns(entries, prefix=""):
        for entry in entries:
            if isinstance(entry, URLResolver):
                yield from patterns(entry.url_patterns, prefix + str(entry.pattern))
            elif isinstance(entry, URLPattern) and not entry.pattern.converters:
                yield entry

    from django.urls import reverse

    return sorted({reverse(p.name) for p in patterns(get_resolver().url_patterns) if p.name})


def test_every_page_survives_the_hostile_store(admin, settings, hostile_store):
    from atedash.core.app import current_app

    settings.ATEDASH_ALLOW_FLUSH = True
    current_app().stats.wait(timeout=30)
    for url in get_urls():
        if url in ("/logout/",):
            continue
        assert_safe(admin.get(url), url)
        assert_safe(admin.get(url, headers={"HX-Request": "true"}), url)
    current_app().stats.refresh()
    current_app().stats.wait(timeout=60)
    body = assert_safe(admin.get("/"), "overview")
    assert "corrupt" in body.lower()
    assert_safe(admin.get("/overview/counts/?wait=1"), "stats")
