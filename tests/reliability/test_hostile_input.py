"""Hostile input: every form fuzzed, oversized requests, every role against every mutating action, CSRF.

Forms are fuzzed with hypothesis through the Django test client: whatever is posted, the answer is
never a 500, and input the dashboard refuses (400 with field errors, 409, 403, 404) leaves the ate
records in the store exactly as they were. List URLs (filters, page sizes, cursors) are fuzzed too.
"""

import base64
import ipaddress
import json
import re
from urllib.parse import quote, urlencode

import pytest
from django.test import Client
from hypothesis import HealthCheck, assume, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from storage.ateapi_pb2 import Actor, Worker
from tests.dashboard.conftest import ENVIRONMENT, login
from tests.hypothesis_profiles import examples

FUZZ = hsettings(
    max_examples=examples(100, dev=20), deadline=None, suppress_health_check=list(HealthCheck), derandomize=True
)

# Text as browsers and attackers send it: any unicode (surrogates cannot be sent), control
# characters, markup, very long values, and values close to the valid ones.
NEAR_VALID = st.sampled_from(
    [
        "",
        " ",
        "a",
        "team-a",
        "web",
        "w-0",
        "small",
        "10.0.0.1",
        "::1",
        "RUNNING",
        "SUSPENDED",
        "UNSPECIFIED",
        "STATUS_RUNNING",
        "-a",
        "a-",
        "A",
        "a.b",
        "a..b",
        "1",
        "0",
        "-1",
        "99999999999999999999",
        "9223372036854775807",
        "<script>alert(1)</script>",
        "' OR 1=1 --",
        "../../etc/passwd",
        "a" * 63,
        "a" * 64,
        "a" * 254,
        "x\x00y",
        "lock:actor:a-0",
        "lock:",
        "actor:a-0",
        ENVIRONMENT,
        ENVIRONMENT + " ",
        "ünï",
        "🚀",
        "\r\n",
        "%00",
        "a*",
        "[",
    ]
)
VALUE = st.one_of(NEAR_VALID, st.text(max_size=300), st.text(max_size=3000))
NUMBER = st.one_of(st.integers(min_value=-(2**80), max_value=2**80).map(str), NEAR_VALID)


def form_data(fields, numeric=()):
    """A dict of some of `fields` (and maybe unknown ones), each a value or a list of values."""

    def value_for(name):
        base = NUMBER if name in numeric else VALUE
        return st.one_of(base, st.lists(base, min_size=2, max_size=3))

    known = st.fixed_dictionaries({}, optional={name: value_for(name) for name in fields})
    extra = st.dictionaries(
        st.sampled_from(["csrfmiddlewaretoken", "next", "id", "actor_id", "__proto__", "version"]), VALUE, max_size=2
    )
    return st.tuples(known, extra).map(lambda t: {**t[1], **t[0]})


def records(client_):
    """Every ate record (actor:*, worker:*, lock:*) and its value: what an operator could damage."""
    snapshot = {}
    for node in client_.get_primaries():
        # One SCAN and one pipeline of DUMPs a node (twice per example: round trips add up).
        conn = client_.get_redis_connection(node)
        found = [key for key in conn.scan_iter(count=1000) if key.startswith((b"actor:", b"worker:", b"lock:"))]
        pipe = conn.pipeline(transaction=False)
        for key in found:
            pipe.dump(key)
        snapshot.update(zip(found, pipe.execute(), strict=True))
    return snapshot


@pytest.fixture
def seeded(store, make_actor, make_worker, settings):
    settings.ATEDASH_ALLOW_FLUSH = True
    make_actor("a-0")
    make_actor("a-1", status="STATUS_RUNNING", ateom_pod_namespace="team-a", ateom_pod_name="w-0")
    make_worker("team-a", "small", "w-0", actor_id="a-1")
    store.acquire_lock("lock:actor:a-0", "holder-token", 600)
    return store


def check(response, before, after, where):
    """Never a 500; a refused request changed nothing."""
    assert response.status_code < 500, (where, response.status_code, response.content[:800])
    if response.status_code in (400, 403, 404, 405, 409, 422, 429):
        assert before == after, (where, response.status_code, "the store changed on refused input")
    return response


# --- fuzzing every form ----------------------------------------------------------------------

ACTOR_CREATE = ("actor_id", "actor_template_namespace", "actor_template_name")
# Every field of the record, as the edit form posts it (the version first: it guards the edit).
ACTOR_EDIT = ("version", *(f.name for f in Actor.DESCRIPTOR.fields if f.name != "version"))
WORKER_CREATE = ("worker_namespace", "worker_pool", "worker_pod", "ip", "actor_namespace", "actor_template", "actor_id")
WORKER_EDIT = ("version", *(f.name for f in Worker.DESCRIPTOR.fields if f.name != "version"))


@pytest.mark.parametrize(
    ("role", "url", "fields", "numeric"),
    [
        ("editor", "/actors/new/", ACTOR_CREATE, ()),
        ("editor", "/actors/a-0/edit/", ACTOR_EDIT, ("version",)),
        ("editor", "/actors/a-1/delete/", ("confirm",), ()),
        ("editor", "/workers/new/", WORKER_CREATE, ()),
        ("editor", "/workers/team-a/small/w-0/edit/", WORKER_EDIT, ("version",)),
        ("admin", "/locks/release/", ("key", "token"), ()),
        ("admin", "/flush/", ("scope", "confirm"), ()),
        ("editor", "/ops/repair/", ("repair",), ()),
        ("viewer", "/ops/check/", ("run",), ()),
    ],
    ids=lambda v: v if isinstance(v, str) and v.startswith("/") else None,
)
def test_fuzz_form(seeded, cluster_client, role, url, fields, numeric):
    client = login(Client(), role)

    @FUZZ
    @given(data=form_data(fields, numeric))
    def fuzz(data):
        if url == "/flush/":
            assume(data.get("confirm") != ENVIRONMENT)  # the one right answer empties the store
        before = records(cluster_client)
        response = client.post(url, data)
        after = records(cluster_client)
        check(response, before, after, (url, data))
        if response.status_code == 400 and url != "/ops/repair/":
            # Refused input is shown on the form, next to the field (or above it).
            assert b"field-error" in response.content or b"form-errors" in response.content, (url, data)

    fuzz()


def test_fuzz_login(seeded, cluster_client):
    @FUZZ
    @given(data=form_data(("username", "password", "next")))
    def fuzz(data):
        response = Client().post("/login/", data)
        # A refused login re-renders the form (200) with its errors; 429 when throttled.
        assert response.status_code in (200, 302, 429), (data, response.status_code)
        if response.status_code == 200:
            assert b"field-error" in response.content or b"form-errors" in response.content, data
        if response.status_code == 302:
            location = response["Location"]
            assert location.startswith("/") and not location.startswith("//"), location

    fuzz()


def cursors():
    """Cursors an attacker could craft: base64 of JSON with odd numbers, types and keys, or junk."""
    state = st.fixed_dictionaries(
        {},
        optional={
            "v": st.one_of(st.just(1), st.integers(), st.text(max_size=3)),
            "s": st.one_of(st.integers(min_value=-5, max_value=20000), st.integers(), st.none(), st.text(max_size=5)),
            "a": st.one_of(st.text(max_size=30), st.integers(), st.just("127.0.0.1:1")),
            "c": st.one_of(st.integers(min_value=0, max_value=2**70), st.integers(), st.floats(allow_nan=False)),
            "r": st.one_of(
                st.lists(st.text(max_size=40), max_size=5), st.text(max_size=5), st.lists(st.integers(), max_size=2)
            ),
            "n": st.one_of(st.integers(min_value=-1, max_value=2**40), st.text(max_size=3)),
            "l": st.one_of(st.text(max_size=40), st.none(), st.integers()),
            "d": st.one_of(
                st.lists(st.lists(st.integers(min_value=-2, max_value=16400), min_size=0, max_size=3), max_size=4),
                st.integers(),
                st.text(max_size=5),
            ),
        },
    )
    encoded = state.map(lambda d: base64.urlsafe_b64encode(json.dumps(d).encode()).decode().rstrip("="))
    return st.one_of(
        encoded, st.text(max_size=200), st.binary(max_size=100).map(lambda b: base64.b64encode(b).decode())
    )


def stream_id(text):
    match = re.fullmatch(r"([0-9]{1,20})(?:-([0-9]{1,20}))?", text)
    return match is not None and all(int(part) < 2**64 for part in match.groups() if part is not None)


def test_fuzz_list_urls(seeded, cluster_client):
    client = login(Client(), "viewer")

    @FUZZ
    @given(
        path=st.sampled_from(["/actors/", "/workers/", "/locks/", "/audit/", "/ops/check/"]),
        query=st.dictionaries(
            st.sampled_from(
                [
                    "size",
                    "status",
                    "ns",
                    "template",
                    "q",
                    "cursor",
                    "refresh",
                    "namespace",
                    "pool",
                    "assigned",
                    "kind",
                    "before",
                ]
            ),
            st.one_of(VALUE, cursors()),
            max_size=5,
        ),
    )
    def fuzz(path, query):
        before = records(cluster_client)
        response = client.get(path + "?" + urlencode(query))
        # No cursor made here is signed by the site: on a list page, any cursor is a link that is not
        # valid (400, saying so); so is an audit `before` that is not a stream id. The rest: 200.
        refused = (path in ("/actors/", "/workers/", "/locks/") and query.get("cursor")) or (
            path == "/audit/" and query.get("before") and not stream_id(query["before"])
        )
        expected = 400 if refused else 200
        assert response.status_code == expected, (path, query, response.status_code, response.content[:500])
        if refused:
            assert b'id="error-message"' in response.content and b"is not valid" in response.content
        assert before == records(cluster_client)

    fuzz()


def test_fuzz_record_paths(seeded):
    client = login(Client(), "admin")

    @FUZZ
    @given(segment=st.text(min_size=1, max_size=80))
    def fuzz(segment):
        q = quote(segment, safe="")
        for url in (
            f"/actors/{q}/",
            f"/actors/{q}/edit/",
            f"/workers/{q}/{q}/{q}/",
            f"/workers/team-a/small/{q}/delete/",
        ):
            response = client.get(url)
            assert response.status_code in (200, 301, 404, 422), (url, response.status_code)

    fuzz()


# --- oversized requests ----------------------------------------------------------------------


def test_oversized_post_is_refused(seeded, cluster_client):
    client = login(Client(), "editor")
    before = records(cluster_client)
    # Bigger than any form of the dashboard (DATA_UPLOAD_MAX_MEMORY_SIZE is 1,000 KiB: the raw
    # editor's save of a 384 KiB record with its shown bytes).
    big = {"actor_id": "big", "actor_template_namespace": "team-a", "actor_template_name": "x" * (1100 * 1024)}
    response = client.post("/actors/new/", big)
    assert response.status_code == 400, response.status_code
    assert b"Traceback" not in response.content and b"Bad request" in response.content
    many = {f"f{i}": "x" for i in range(300)} | {
        "actor_id": "many",
        "actor_template_namespace": "a",
        "actor_template_name": "b",
    }
    response = client.post("/actors/new/", many)
    assert response.status_code == 400, response.status_code
    # A raw body of 1 MB with a lying content type is refused as well.
    response = client.post(
        "/actors/a-0/edit/", data=b"x" * (1024 * 1024), content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 400
    assert records(cluster_client) == before


def test_large_but_ordinary_form_still_works(seeded, store):
    client = login(Client(), "editor")
    stored = store.get_actor("a-0")
    response = client.post(
        "/actors/a-0/edit/",
        {
            "version": stored.version,
            "actor_id": "a-0",
            "actor_template_namespace": "team-a",
            "actor_template_name": "web",
            "status": "SUSPENDED",
            "last_snapshot": "s" * 1024,
            "edit_while_locked": "on",  # a-0's lock is held (seeded)
        },
    )
    assert response.status_code == 302
    assert store.get_actor("a-0").last_snapshot == "s" * 1024


# --- every role against every mutating action -------------------------------------------------


def csrf_client(role):
    """A client that enforces CSRF like a browser would, logged in through the real login form."""
    client = Client(enforce_csrf_checks=True)
    page = client.get("/login/").content.decode()
    response = client.post(
        "/login/", {"username": role, "password": f"{role}-pass-1", "csrfmiddlewaretoken": token(page)}
    )
    assert response.status_code == 302
    return client


def token(page):
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)


def mutations(store):
    """(name, least role, url, data, whether it happened): every action that changes the store."""
    a0 = store.get_actor("a-0")
    w0 = store.get_worker("team-a", "small", "w-0")
    return [
        (
            "create actor",
            "editor",
            "/actors/new/",
            {"actor_id": "new-one", "actor_template_namespace": "team-a", "actor_template_name": "web"},
            lambda: store.client.exists("actor:new-one"),
        ),
        (
            "edit actor",
            "editor",
            "/actors/a-0/edit/",
            {
                "version": a0.version,
                "actor_id": "a-0",
                "actor_template_namespace": "team-a",
                "actor_template_name": "web",
                "status": "RUNNING",
                "edit_while_locked": "on",  # a-0's lock is held (seeded)
                "save_despite_findings": "on",  # RUNNING on no pod: the check would report it
            },
            lambda: store.get_actor("a-0").status == Actor.STATUS_RUNNING,
        ),
        ("delete actor", "editor", "/actors/a-0/delete/", {}, lambda: not store.client.exists("actor:a-0")),
        (
            "create worker",
            "editor",
            "/workers/new/",
            {"worker_namespace": "team-a", "worker_pool": "small", "worker_pod": "w-9", "ip": "10.0.0.9"},
            lambda: store.client.exists("worker:team-a:small:w-9"),
        ),
        (
            "edit worker",
            "editor",
            "/workers/team-a/small/w-0/edit/",
            {
                "version": w0.version,
                "worker_namespace": "team-a",
                "worker_pool": "small",
                "worker_pod": "w-0",
                "ip": "10.0.0.1",
                "actor_id": "",
                "save_despite_findings": "on",  # its actor's worker freed: the check would report it
            },
            lambda: store.get_worker("team-a", "small", "w-0").actor_id == "",
        ),
        (
            "delete worker",
            "editor",
            "/workers/team-a/small/w-0/delete/",
            {},
            lambda: not store.client.exists("worker:team-a:small:w-0"),
        ),
        (
            "release lock",
            "admin",
            "/locks/release/",
            {"key": "lock:actor:a-0", "token": "holder-token"},
            lambda: not store.client.exists("lock:actor:a-0"),
        ),
        (
            "flush ate records",
            "admin",
            "/flush/",
            {"scope": "ate", "confirm": ENVIRONMENT},
            lambda: not store.client.exists("actor:a-1"),
        ),
        (
            "flush everything",
            "admin",
            "/flush/",
            {"scope": "all", "confirm": ENVIRONMENT},
            lambda: not store.client.exists("actor:a-1"),
        ),
    ]


RANK = {"viewer": 0, "editor": 1, "admin": 2}
ACTIONS = [
    "create actor",
    "edit actor",
    "delete actor",
    "create worker",
    "edit worker",
    "delete worker",
    "release lock",
    "flush ate records",
    "flush everything",
]


@pytest.mark.parametrize("role", ["viewer", "editor", "admin"])
@pytest.mark.parametrize("action", ACTIONS)
def test_role_against_mutating_action(seeded, cluster_client, role, action):
    name, needed, url, data, happened = next(m for m in mutations(seeded) if m[0] == action)
    client = csrf_client(role)
    # The form page itself, when the role may see it, gives the CSRF token a browser would send.
    page = client.get(url if url != "/locks/release/" else url + "?" + urlencode(data))
    csrf = client.cookies["atedash_csrftoken"].value
    before = records(cluster_client)
    response = client.post(url, {**data, "csrfmiddlewaretoken": csrf})
    if RANK[role] >= RANK[needed]:
        assert response.status_code in (200, 302), (role, action, response.status_code, response.content[:500])
        assert happened(), (role, action)
    else:
        # A crafted POST (right CSRF token, right form) by a role that may not do it.
        assert page.status_code == 403 and response.status_code == 403, (role, action, response.status_code)
        assert records(cluster_client) == before, (role, action)
        assert not happened()


MUTATING_URLS = [
    "/actors/new/",
    "/actors/a-0/edit/",
    "/actors/a-0/delete/",
    "/workers/new/",
    "/workers/team-a/small/w-0/edit/",
    "/workers/team-a/small/w-0/delete/",
    "/locks/release/",
    "/flush/",
    "/ops/repair/",
    "/ops/check/",
    "/logout/",
    "/login/",
]


@pytest.mark.parametrize("url", MUTATING_URLS)
def test_csrf_is_enforced_on_every_post(seeded, cluster_client, url):
    client = csrf_client("admin")
    valid = {m[2]: m[3] for m in mutations(seeded)}.get(url, {})
    before = records(cluster_client)
    for data in (valid, {**valid, "csrfmiddlewaretoken": "forged" * 10}):
        response = client.post(url, data)
        assert response.status_code == 403, (url, response.status_code)
        assert b"CSRF" in response.content
    # A token from another session is refused too.
    other = csrf_client("admin").cookies["atedash_csrftoken"].value
    response = client.post(url, {**valid, "csrfmiddlewaretoken": other})
    assert response.status_code == 403, url
    assert records(cluster_client) == before
    assert client.get("/actors/").status_code == 200  # still logged in


def test_viewer_cannot_flush_by_crafting_a_post(seeded, cluster_client, settings):
    settings.ATEDASH_ALLOW_FLUSH = True
    client = csrf_client("viewer")
    csrf = client.get("/actors/") and client.cookies["atedash_csrftoken"].value
    before = records(cluster_client)
    for scope in ("ate", "all"):
        for headers in ({}, {"HX-Request": "true"}, {"X-Forwarded-Role": "admin", "X-Forwarded-User": "admin"}):
            response = client.post(
                "/flush/", {"scope": scope, "confirm": ENVIRONMENT, "csrfmiddlewaretoken": csrf}, headers=headers
            )
            assert response.status_code == 403, (scope, headers, response.status_code)
    assert records(cluster_client) == before
    # Even with flush turned off, an admin's crafted POST removes nothing.
    settings.ATEDASH_ALLOW_FLUSH = False
    admin = csrf_client("admin")
    response = admin.post(
        "/flush/",
        {"scope": "all", "confirm": ENVIRONMENT, "csrfmiddlewaretoken": admin.cookies["atedash_csrftoken"].value},
    )
    assert response.status_code == 403
    assert records(cluster_client) == before


def test_hostile_htmx_headers_are_escaped(seeded, settings):
    client = login(Client(), "viewer")
    hostile = '"><script>alert(1)</script>'
    headers = {"HX-Request": "true", "HX-Target": hostile, "HX-Trigger": hostile, "HX-Current-URL": hostile}
    for url in ("/actors/", "/workers/", "/locks/", "/actors/missing/"):
        response = client.get(url, headers=headers)
        assert response.status_code in (200, 404), (url, response.status_code)
        assert b"<script>alert" not in response.content, url
    settings.ATEDASH_REDIS_URL = "redis://127.0.0.1:1"  # the 503 fragment names its target
    response = client.get("/actors/", headers=headers)
    assert response.status_code == 503
    assert b"<script>alert" not in response.content and b"&lt;script&gt;" in response.content


def test_hostile_operator_name_from_the_trusted_header(seeded, settings):
    settings.ATEDASH_TRUSTED_HEADER = "X-Forwarded-User"
    settings.ATEDASH_TRUSTED_HEADER_ROLE_HEADER = "X-Forwarded-Role"
    settings.ATEDASH_TRUSTED_PROXIES = (ipaddress.ip_network("127.0.0.1/32"),)
    for name, role in (("<script>alert(1)</script>", "admin"), ("x" * 5000, "editor"), ("ünï 🚀", "<b>admin</b>")):
        client = Client(headers={"X-Forwarded-User": name, "X-Forwarded-Role": role})
        response = client.get("/actors/")
        assert response.status_code == 200
        assert b"<script>alert" not in response.content and b"<b>admin" not in response.content
    # An unknown role is a viewer: it cannot edit.
    client = Client(headers={"X-Forwarded-User": "eve", "X-Forwarded-Role": "<b>admin</b>"})
    assert client.get("/actors/new/").status_code == 403
