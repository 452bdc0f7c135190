"""Security issue 10, items 2, 3 and 7: page cursors and malformed list parameters.

The attacks of the review, replayed with Django's test client and against gunicorn as shipped:

* a cursor whose fallback batch count `n` is 10^9 (it became SCAN COUNT 10^9: one SCAN took 1.3 s);
* a cursor whose leftover keys `r` name `billing:api-key` (read through the locks page);
* a cursor of 1,500 `[` (RecursionError, 500), a SCAN cursor `c` of 2^70 (503), `/audit/?before=---` (503);
* a valid cursor of one list used on another.

Each is now the 400 page saying the link is not valid, with a link to the first page. Cursors in URLs
are signed per list (atedash/records/cursors.py); below that, storage bounds every number of a cursor and never
reads a key outside the walk's MATCH pattern, even for a cursor carrying a valid signature. What reached
Redis is read back from the primaries' SLOWLOG (threshold 0: every command is logged with its arguments).
"""

import base64
import hashlib
import json
import re
from pathlib import Path
from urllib.parse import unquote, urlencode

import pytest
from django.test import override_settings

from atedash.records import cursors
from storage import InvalidCursor
from storage.scanning import (
    _MAX_COUNT,
    ACTOR_SCAN,
    SCAN_STEP_SHA,
    _Position,
    _Walk,
    actor_filter,
    decode_cursor,
    encode_cursor,
)
from storage.sparse import _SCAN_STEP as SPARSE_STEP
from tests.security.conftest import Browser

REPO = Path(__file__).resolve().parents[2]
SECRET_VALUE = "sk-live-" + "S3CRET" * 4
INVALID = "This page link is not valid"


def raw_cursor(**state):
    """A cursor as the review crafted them: URL-safe base64 of the JSON state, no signature."""
    state = {"v": 1, "s": 0, "a": "", "c": 0, **state}
    return base64.urlsafe_b64encode(json.dumps(state).encode()).decode().rstrip("=")


NESTED = base64.urlsafe_b64encode(b"[" * 1500).decode().rstrip("=")
HUGE_COUNT = raw_cursor(n=10**9, l="actor:")  # the fallback form: repeat a SCAN of COUNT n
HUGE_SCAN_CURSOR = raw_cursor(c=2**70)
OTHER_KEY = raw_cursor(r=["billing:api-key"])


def _sparse_cursor(**state) -> str:
    """A version 2 cursor (the locks' walk, storage/sparse.py) as anyone could write one."""
    text = json.dumps({"v": 2, **state}, separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.fixture
def commands(cluster_client, store):
    """Every command the primaries run from now on, read back from their SLOWLOG (threshold 0)."""
    nodes = [cluster_client.get_redis_connection(n) for n in cluster_client.get_primaries()]
    saved = [n.config_get("slowlog-*") for n in nodes]
    for node in nodes:
        node.config_set("slowlog-max-len", 100000)
        node.config_set("slowlog-log-slower-than", 0)
        node.slowlog_reset()

    def logged():
        out = []
        for node in nodes:
            out += [entry["command"].decode("utf-8", "replace") for entry in node.slowlog_get(100000)]
        return out

    def reset():
        for node in nodes:
            node.slowlog_reset()

    logged.reset = reset
    yield logged
    for node, config in zip(nodes, saved):
        node.config_set("slowlog-log-slower-than", config["slowlog-log-slower-than"])
        node.config_set("slowlog-max-len", config["slowlog-max-len"])
        node.slowlog_reset()


# The read-only script steps that SCAN on a node: (sha, the indexes of their COUNT arguments after
# "EVALSHA sha numkeys"). storage.scanning's step takes cursor, match, COUNT; storage.sparse's
# cursor, match, COUNT and the COUNT of a repeated batch.
SCAN_STEPS = {SCAN_STEP_SHA: (2,), hashlib.sha1(SPARSE_STEP.encode()).hexdigest(): (2, 3)}


def scans(commands):
    """The commands that SCAN: SCAN itself and the script steps of SCAN_STEPS."""
    return [c for c in commands if c.startswith("SCAN ") or (c.startswith("EVALSHA ") and c.split()[1] in SCAN_STEPS)]


def scan_counts(commands):
    counts = []
    for c in scans(commands):
        if c.startswith("SCAN "):
            counts.append(int(re.search(r" COUNT (\d+)", c).group(1)))
        else:
            args = c.split()
            counts += [int(args[3 + i]) for i in SCAN_STEPS[args[1]]]
    return counts


def next_page_cursor(body):
    """The cursor of a list page's "Next page" link, as the site signed it."""
    link = re.search(r'<a href="([^"]*)"[^>]*id="next-page"', body)
    assert link, "no next page link"
    return unquote(re.search(r"[?&;]cursor=([^&]+)", link.group(1)).group(1))


def assert_invalid_link(response, first_page):
    body = response.content.decode()
    assert response.status_code == 400, (response.status_code, body[:500])
    assert INVALID in body
    assert f'href="{first_page}" id="first-page"' in body
    assert "Traceback" not in body


# --- storage: every number bounded, nothing outside the walk read ------------------------------


@pytest.mark.parametrize(
    "state",
    [
        {"s": 16384},
        {"s": -1},
        {"c": 2**64},
        {"c": 2**70},
        {"c": -1},
        {"c": 1.5},
        {"n": 10**9, "l": "actor:a"},
        {"n": _MAX_COUNT + 1, "l": "actor:a"},
        {"n": True, "l": "actor:a"},
        {"a": "x" * 301},
        {"r": ["actor:a"] * 1001},
        {"r": ["actor:" + "x" * 3000]},
        {"l": "actor:" + "x" * 9000, "n": 10},
        {"d": [[0, 16384]]},
        {"d": [[5, 4]]},
        {"d": [[i, i] for i in range(0, 600, 2)]},
    ],
)
def test_decode_refuses_numbers_and_lists_out_of_bounds(state):
    with pytest.raises(InvalidCursor):
        decode_cursor(raw_cursor(**state))


def test_decode_accepts_the_bounds_themselves():
    pos = decode_cursor(raw_cursor(s=16383, c=2**64 - 1, n=_MAX_COUNT, l="actor:a", d=[[0, 16382]]))
    assert (pos.slot_start, pos.scan_cursor, pos.batch_count, pos.last_key) == (16383, 2**64 - 1, 1000, b"actor:a")


@pytest.mark.parametrize("cursor", [NESTED, "[" * 1500, "A" * 20000, base64.b64encode(b"\xff\xfe").decode()])
def test_garbled_cursors_are_invalid_not_a_crash(cursor):
    with pytest.raises(InvalidCursor):  # not RecursionError, not UnicodeError
        decode_cursor(cursor)


def test_a_walk_never_reads_a_key_outside_its_pattern(store, commands):
    store.client.set("billing:api-key", SECRET_VALUE)
    for cursor in (OTHER_KEY, raw_cursor(n=10, l="billing:api-key"), raw_cursor(r=["lock:a", "billing:api-key"])):
        with pytest.raises(InvalidCursor, match="outside the walk"):
            store.scan_locks(cursor=cursor)
    # Refused before any command: the key was not even read.
    assert not [c for c in commands() if "billing" in c and not c.startswith("SET ")]


def test_a_lock_cursor_naming_a_key_outside_the_walk_is_refused(store, commands):
    store.client.set("billing:api-key", "secret")
    for cursor in (
        _sparse_cursor(r=["billing:api-key"]),
        _sparse_cursor(p=[[0, "x:1", 5, 10, "billing:api-key"]]),
        _sparse_cursor(p=[[0, "x:1", 5, 10, "lock:a"]], r=["lock:b", "actor:a"]),
    ):
        with pytest.raises(InvalidCursor, match="outside the walk"):
            store.scan_locks(cursor=cursor)
    assert not [c for c in commands() if "billing" in c and not c.startswith("SET ")]


def test_a_filtered_walk_refuses_leftover_keys_of_another_filter(store):
    store.client.set("actor:zzz", b"{}")
    with pytest.raises(InvalidCursor):
        store.scan_actors(cursor=raw_cursor(r=["actor:zzz"]), id_contains="abc")
    with pytest.raises(InvalidCursor):
        store.scan_workers(cursor=raw_cursor(r=["worker:ns-b:pool:pod"]), namespace="ns-a")


def test_leftover_keys_inside_the_pattern_are_still_read(store):
    store.acquire_lock("lock:actor:a-1", "holder-1", 60)
    page = store.scan_locks(cursor=raw_cursor(r=["lock:actor:a-1"]))
    assert [lock.token for lock in page.records] == ["holder-1"]


@pytest.mark.parametrize("needle", ["x[y\\z*?", "plain"])
def test_walks_whose_cursors_carry_odd_keys_still_pass_the_check(store, needle):
    # Keys that are not UTF-8 and ids with glob characters: every cursor the walk writes names keys
    # its own pattern matches, so paging one record at a time still covers everything.
    from storage.ateapi_pb2 import Actor
    from storage.codec import ACTOR_CODEC

    pipe = store.client.pipeline(transaction=False)
    for i in range(40):
        actor_id = f"{i:02d}-{needle}"
        pipe.set(f"actor:{actor_id}", ACTOR_CODEC.encode_json(Actor(actor_id=actor_id)))
        pipe.set(b"actor:\xff\xfe-" + needle.encode() + b"%d" % i, b"\x00not json")
    pipe.execute()
    seen, corrupt, cursor, pages = [], [], None, 0
    while True:
        page = store.scan_actors(cursor=cursor, limit=1, id_contains=needle)
        seen += [a.actor_id for a in page.records]
        corrupt += [c.key for c in page.corrupt]
        pages += 1
        cursor = page.next_cursor
        if cursor is None:
            break
        assert pages < 500
    assert sorted(seen) == sorted(f"{i:02d}-{needle}" for i in range(40))
    assert len(set(corrupt)) == 40 and all("\\xff" in key for key in corrupt)


def test_scan_count_stays_bounded_even_for_a_position_that_skips_decoding(store, commands):
    # Defence in depth: a _Position that did not come from decode_cursor (which refuses it) still
    # never sends SCAN a COUNT above 1000.
    store.client.set("actor:a", b"{}")
    pos = _Position(0, "", 0, batch_count=10**9, last_key=b"actor:")
    walk = _Walk(store.topology, ACTOR_SCAN, actor_filter(None, None, None, None), 5, 100)
    walk.run(pos, walk.first_shard(pos))
    counts = scan_counts(commands())
    assert counts and max(counts) <= _MAX_COUNT, counts


def test_leftover_keys_that_would_not_fit_a_url_switch_to_the_compact_cursor_by_their_written_length(store):
    # A non-ASCII key byte takes 6 characters in the cursor's JSON (\u00e9): 6 keys of 200 bytes fit
    # in 2048 bytes, not in 2048 characters of cursor (which gunicorn would refuse as a URL).
    keys = [("actor:" + "é" * 100 + str(i)).encode() for i in range(7)]
    shard = store.topology.shard_serving(0)
    walk = _Walk(store.topology, ACTOR_SCAN, actor_filter(None, None, None, None), 5, 100)
    walk.visited = ()
    pos = walk._position(shard, 5, False, keys, 1, 0, 20)
    assert pos.leftover == () and pos.last_key == keys[0]  # the compact form: repeat the SCAN
    assert len(encode_cursor(pos)) < 1500
    assert decode_cursor(encode_cursor(pos)).last_key == keys[0]


# --- Django: signed cursors, the 400 page ----------------------------------------------------


def test_forged_cursor_with_a_huge_scan_count_is_400_and_no_big_scan_reaches_redis(viewer, make_actor, commands):
    make_actor("a-1")
    assert_invalid_link(viewer.get("/actors/?" + urlencode({"size": 25, "cursor": HUGE_COUNT})), "/actors/?size=25")
    # Even signed with the site's key (a leaked key, or a bug producing it): storage refuses it.
    signed = cursors.sign("actors", HUGE_COUNT)
    assert_invalid_link(viewer.get("/actors/?" + urlencode({"cursor": signed})), "/actors/")
    assert not scans(commands())
    # The pages themselves still scan, with COUNT never above 1000.
    assert viewer.get("/actors/?q=a").status_code == 200
    counts = scan_counts(commands())
    assert counts and max(counts) <= _MAX_COUNT


def test_cursor_naming_another_key_is_400_and_the_value_never_shown(viewer, store, commands):
    store.client.set("billing:api-key", SECRET_VALUE)
    store.acquire_lock("lock:actor:a-1", "holder-1", 60)
    for cursor in (OTHER_KEY, cursors.sign("locks", OTHER_KEY)):
        response = viewer.get("/locks/?" + urlencode({"cursor": cursor}))
        assert_invalid_link(response, "/locks/")
        assert SECRET_VALUE.encode() not in response.content and b"billing" not in response.content
    assert not [c for c in commands() if "billing" in c and not c.startswith("SET ")]


@pytest.mark.parametrize("path", ["/actors/", "/workers/", "/locks/"])
@pytest.mark.parametrize(
    "cursor",
    [NESTED, "[" * 1500, HUGE_SCAN_CURSOR, HUGE_COUNT, OTHER_KEY, "not-a-cursor", "x\x00y", " ", "A" * 20000],
    ids=["nested-b64", "nested", "c-2^70", "n-10^9", "other-key", "junk", "nul", "space", "long"],
)
def test_malformed_cursors_are_400_never_500_or_503(viewer, path, cursor):
    assert_invalid_link(viewer.get(path + "?" + urlencode({"cursor": cursor, "size": 50})), path + "?size=50")


def test_signed_malformed_cursors_are_400_too(viewer):
    for raw in (NESTED, HUGE_SCAN_CURSOR, raw_cursor(s=99999), raw_cursor(d=[[0, 99999]])):
        assert_invalid_link(viewer.get("/actors/?" + urlencode({"cursor": cursors.sign("actors", raw)})), "/actors/")


def test_a_cursor_of_one_list_is_400_on_another(viewer, make_actor, store):
    for i in range(30):
        make_actor(f"p-{i:02d}")
    store.acquire_lock("lock:actor:p-00", "holder", 60)
    actors_cursor = next_page_cursor(viewer.get("/actors/?size=25").content.decode())
    assert viewer.get("/actors/?" + urlencode({"size": 25, "cursor": actors_cursor})).status_code == 200
    for path in ("/locks/", "/workers/"):
        assert_invalid_link(
            viewer.get(path + "?" + urlencode({"size": 25, "cursor": actors_cursor})), path + "?size=25"
        )
    # The unsigned storage cursor inside it is refused too, and so is a tampered signature.
    storage_cursor = actors_cursor.rsplit(":", 1)[0]
    assert_invalid_link(viewer.get("/actors/?" + urlencode({"cursor": storage_cursor})), "/actors/")
    flipped = actors_cursor[:-1] + ("A" if actors_cursor[-1] != "A" else "B")
    assert_invalid_link(viewer.get("/actors/?" + urlencode({"cursor": flipped})), "/actors/")


def test_htmx_request_with_a_bad_cursor_gets_a_400_fragment(viewer):
    response = viewer.get(
        "/actors/?" + urlencode({"size": 25, "cursor": HUGE_COUNT}),
        headers={"HX-Request": "true", "HX-Target": "actors-results"},
    )
    body = response.content.decode()
    assert response.status_code == 400 and INVALID in body
    assert body.lstrip().startswith("<div")
    assert 'id="actors-results"' in body and "<html" not in body
    assert 'href="/actors/?size=25" id="first-page"' in body


@pytest.mark.parametrize(
    "before",
    [
        "---",
        "-",
        "1-",
        "-1",
        "1-2-3",
        "abc",
        "1 2",
        "١٢٣-0",
        "1" * 21,
        "18446744073709551616",
        "0-18446744073709551616",
        "x" * 5000,
        "1-0\x00",
    ],
)
def test_malformed_audit_before_is_400(viewer, before):
    response = viewer.get("/audit/?" + urlencode({"before": before}))
    assert response.status_code == 400, (before, response.status_code)
    body = response.content.decode()
    assert "must be an entry id" in body and 'href="/audit/" id="first-page"' in body


@pytest.mark.parametrize(
    "before", ["", "0", "0-0", "00-00", "1700000000000-0", "18446744073709551615-18446744073709551615"]
)
def test_well_formed_audit_before_pages(viewer, before):
    assert viewer.get("/audit/?" + urlencode({"before": before})).status_code == 200


def test_audit_paging_with_before_still_works(viewer):
    from atedash.accounts.audit import audit
    from atedash.core.app import current_app

    for i in range(105):
        audit("tester", f"test.{i}", stream=True, app=current_app())
    body = viewer.get("/audit/").content.decode()
    older = re.search(r'href="\?before=([^"]+)" id="audit-older"', body).group(1)
    body = viewer.get(f"/audit/?before={older}").content.decode()
    assert "test.4" in body and "test.104" not in body


@pytest.mark.parametrize(
    "query",
    [
        {"size": "10000000"},
        {"size": "-1"},
        {"size": "abc"},
        {"refresh": "9"},
        {"status": "BOGUS"},
        {"q": "*" * 253},
        {"q": "[a-"},
        {"ns": "\\"},
        {"template": "x" * 5000},
    ],
)
def test_other_malformed_list_parameters_are_clamped_not_errors(viewer, query):
    # Page size, refresh and filters: an invalid value falls back to its default (a sensible clamp).
    for path in ("/actors/", "/workers/", "/locks/"):
        response = viewer.get(path + "?" + urlencode(query))
        assert response.status_code == 200, (path, query, response.status_code)


# --- the same attacks against gunicorn as shipped --------------------------------------------


@pytest.fixture
def gunicorn(serve):
    """atedash under gunicorn (atedash/gunicorn.conf.py), an operators file with a viewer."""
    server = serve(ATEDASH_ENVIRONMENT="cursor-attacks")
    return server.port, server.key, server.log


def test_the_attacks_against_gunicorn(gunicorn, store, make_actor, commands):
    port, key, log = gunicorn
    browser = Browser(port)
    assert browser.login("viewer") == 302, "".join(log)[-2000:]
    store.client.set("billing:api-key", SECRET_VALUE)
    for i in range(30):
        make_actor(f"g-{i:02d}")
    store.acquire_lock("lock:actor:g-00", "holder-1", 60)

    def get(path, query, **headers):
        return browser.request("GET", path + "?" + urlencode(query), headers=headers)

    # A real actors cursor, from the page's own "Next page" link.
    status, page = get("/actors/", {"size": 25})
    assert status == 200
    actors_cursor = next_page_cursor(page)
    assert get("/actors/", {"size": 25, "cursor": actors_cursor})[0] == 200
    with override_settings(SECRET_KEY=key):  # what an attacker holding the key could sign
        signed_huge_count = cursors.sign("actors", HUGE_COUNT)
        signed_other_key = cursors.sign("locks", OTHER_KEY)

    attacks = [
        ("/actors/", {"cursor": HUGE_COUNT}),
        ("/actors/", {"cursor": signed_huge_count}),
        ("/locks/", {"cursor": OTHER_KEY}),
        ("/locks/", {"cursor": signed_other_key}),
        ("/actors/", {"cursor": NESTED}),  # (1,500 "[" as they are: a URL gunicorn refuses itself, 414)
        ("/workers/", {"cursor": HUGE_SCAN_CURSOR}),
        ("/locks/", {"cursor": actors_cursor}),
        ("/audit/", {"before": "---"}),
    ]
    commands.reset()  # (what logging in and seeding sent)
    for path, query in attacks:
        status, body = get(path, query)
        assert status == 400, (path, query, status, body[:300])
        assert "is not valid" in body and 'id="first-page"' in body, body[:500]
        assert SECRET_VALUE not in body
    status, body = get("/actors/", {"cursor": HUGE_COUNT}, **{"HX-Request": "true", "HX-Target": "actors-results"})
    assert status == 400 and 'id="actors-results"' in body and INVALID in body and "<html" not in body
    seen = commands()
    assert not scans(seen), seen  # no attack reached a SCAN
    assert not [c for c in seen if "billing" in c], seen
    assert not [line for line in log if "Traceback" in line or "RecursionError" in line], "".join(log)[-3000:]
