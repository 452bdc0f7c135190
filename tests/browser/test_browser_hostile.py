"""Hostile records in the store, looked at in a real browser: no script from a record ever runs.

Records whose keys and values carry `<script>`, event-handler attributes, quotes, unicode, bytes
that are not UTF-8, binary garbage and a 5 MB value are written straight into the cluster (as a
buggy writer or an attacker with store access could). Every page that shows them is loaded with
a dialog handler and a window flag that any injected script would set; the pages are loaded both
with the Content-Security-Policy enforced and with Chromium told to ignore it, so escaping alone is
proven to hold, not only the CSP. Corrupt records show as flagged rows, and nothing answers 500.
"""

import random
import re
import time
from urllib.parse import quote, urlencode

import pytest
from playwright.sync_api import expect

from .browser_helpers import put_actor, put_worker, save

pytestmark = pytest.mark.browser


def js(tag):
    """A payload that, if it ever ran, would set window.__pwned and open a dialog."""
    return f"window.__pwned=(window.__pwned||[]).concat('{tag}');alert('{tag}')"


SCRIPT = f"<script>{js('script')}</script>"
IMG = f'<img src=x onerror="{js("img")}">'
SVG = f"'\"><svg onload={js('svg')}>"
QUOTES = '"\' onmouseover="' + js("attr") + "\" x='"
UNICODE = "ünïcødé ☃ 🚀 \u202eevil\u202c"
FIVE_MB = 5 * 1024 * 1024

HOSTILE_ID = f"id-{IMG}"  # no "/": it has a detail URL
QUOTED_ID = f"has space \"dq\" 'sq' {UNICODE}"


def write_hostile_records(store, *, huge_valid=True):
    """Writes the hostile records; returns the keys each list must flag as corrupt.

    huge_valid: also a valid actor with a 5 MB field (it makes the list and detail pages 13 and 26 MB,
    several seconds of layout in Chromium; tests that load many list pages leave it out)."""
    c = store.client
    rng = random.Random(5)
    # Valid records whose ids and fields are hostile text (they decode: shown as normal rows).
    put_actor(
        store,
        HOSTILE_ID,
        ns="team-a",
        template="web",
        status="RUNNING",
        ateom_pod_namespace=SVG,
        ateom_pod_name=SCRIPT,
        ateom_pod_ip=QUOTES,
        last_snapshot=IMG,
        in_progress_snapshot=f"javascript:{js('href')}",
    )
    put_actor(store, QUOTED_ID, ns="team-a", template=SCRIPT)
    if huge_valid:
        put_actor(store, "huge-valid", last_snapshot="gs://" + "<b>x</b>" * (FIVE_MB // 8))
    put_worker(store, "team-a", "pool", "pod-1", "10.0.0.1", actor_id=SCRIPT, actor_namespace=IMG, actor_template=SVG)
    put_worker(store, "team-a", "pool", QUOTED_ID, "10.0.0.2")
    # Corrupt actors.
    corrupt_actors = {
        f"actor:{SCRIPT}": b"not json at all",
        "actor:value-script": SCRIPT.encode(),
        "actor:wrong-shape": ('{"actorId": ["' + SCRIPT.replace('"', '\\"') + '"], "status": {"x": 1}}').encode(),
        "actor:mismatch": b'{"actorId": "someone-else", "actorTemplateNamespace": "'
        + IMG.replace('"', "'").encode()
        + b'"}',
        f"actor:{QUOTED_ID}-corrupt": b"\xff\xfe\xfd" + IMG.encode() + b"\x00\x01",
        "actor:binary-garbage": rng.randbytes(4096),
        "actor:five-mb": (SCRIPT.encode() * (FIVE_MB // len(SCRIPT) + 1))[:FIVE_MB],
    }
    for key, value in corrupt_actors.items():
        c.set(key, value)
    # A key that is not UTF-8 (with markup in it), and a key of the wrong Redis type.
    c.set(b"actor:not-utf8-\xff\xfe" + SCRIPT.encode(), b"\xc3\x28" + SVG.encode())
    c.hset("actor:a-hash", mapping={"f": SCRIPT})
    # Corrupt workers.
    c.set(f"worker:{IMG}:pool:pod", SCRIPT.encode())
    c.set(b"worker:ns:pool:\xff\xfe", rng.randbytes(256))
    # Locks with hostile keys and holder tokens.
    c.set(f"lock:{SCRIPT}", IMG.encode(), ex=600)
    c.set(f"lock:actor:{HOSTILE_ID}", b"\xff\xfe" + SVG.encode(), ex=600)
    c.set(b"lock:not-utf8-\xff" + IMG.encode(), QUOTES.encode(), ex=600)
    c.hset("lock:a-hash", mapping={"f": SCRIPT})
    return corrupt_actors


DOM_CHECK = """() => {
  const bad = [];
  for (const el of document.querySelectorAll('*')) {
    for (const a of el.attributes) {
      if (a.name.startsWith('on')) bad.push('handler ' + a.name + ' on ' + el.tagName);
      if ((a.name === 'href' || a.name === 'src' || a.name === 'action') && /^\\s*javascript:/i.test(a.value))
        bad.push('javascript: URL in ' + el.tagName);
    }
    if (el.tagName === 'SCRIPT' && !el.src) bad.push('inline script: ' + el.textContent.slice(0, 80));
    if (el.tagName === 'IMG' || el.tagName.toLowerCase() === 'svg') bad.push('element ' + el.tagName);
  }
  return {bad, pwned: window.__pwned || null};
}"""


@pytest.fixture
def hostile(contexts, store):
    corrupt_actors = write_hostile_records(store)
    return corrupt_actors


def visit(page, url, *, status=200):
    response = page.goto(url)
    assert response is not None and response.status == status, f"{url}: {response and response.status}"
    # A script that ran would have set the flag or opened a dialog (recorded by the watch).
    result = page.evaluate(DOM_CHECK)
    assert result == {"bad": [], "pwned": None}, (url, result)
    return response


def pages_to_visit(store):
    """Every page that shows a hostile record: lists (filtered too), details, forms, confirmations."""
    urls = [
        "/",
        "/overview/counts/?wait=1",
        "/actors/",
        "/actors/?" + urlencode({"q": SCRIPT}),
        "/actors/?" + urlencode({"ns": IMG, "template": SCRIPT, "size": "200"}),
        ("/actors/?" + urlencode({"q": QUOTES, "status": SVG, "cursor": SCRIPT}), 400),  # not a valid cursor
        "/actors/" + quote(HOSTILE_ID, safe="") + "/",
        ("/actors/" + quote(f"missing-{IMG}", safe="") + "/", 404),  # the 404 page names the key
        ("/actors/" + quote(SCRIPT, safe="") + "/", 404),  # "%2F" in an id: no such page
        "/actors/" + quote(HOSTILE_ID, safe="") + "/edit/",
        "/actors/" + quote(QUOTED_ID, safe="") + "/",
        "/actors/" + quote(QUOTED_ID, safe="") + "/edit/",
        "/actors/" + quote(QUOTED_ID, safe="") + "/delete/",
        "/actors/" + quote(QUOTED_ID + "-corrupt", safe="") + "/",
        "/actors/value-script/",
        "/actors/wrong-shape/",
        "/actors/mismatch/",
        "/actors/binary-garbage/",
        "/actors/five-mb/",
        "/actors/huge-valid/",
        ("/actors/a-hash/", 422),  # a hash, not a string: the "stored record is corrupt" page
        "/workers/",
        "/workers/?" + urlencode({"q": SCRIPT, "namespace": IMG}),
        "/workers/team-a/pool/pod-1/",
        "/workers/team-a/pool/pod-1/edit/",
        "/workers/team-a/pool/" + quote(QUOTED_ID, safe="") + "/",
        "/workers/" + quote(IMG, safe="") + "/pool/pod/",
        "/locks/",
        "/locks/release/?" + urlencode({"key": f"lock:{SCRIPT}", "token": IMG}),
        "/locks/release/?" + urlencode({"key": f"lock:actor:{HOSTILE_ID}", "token": SVG}),
        "/flush/",
        "/ops/check/",
        "/audit/",
    ]
    return urls


@pytest.mark.parametrize("csp", ["enforced", "ignored"])
def test_no_script_from_a_record_runs(contexts, hostile, store, csp):
    # "ignored": Chromium told to disregard the CSP, so only the escaping stands between a record
    # and the page.
    page = contexts.page("admin", bypass_csp=csp == "ignored")
    failures, timings = [], []
    for url in pages_to_visit(store):
        url, status = url if isinstance(url, tuple) else (url, 200)
        try:
            started = time.monotonic()
            visit(page, url, status=status)
            timings.append((time.monotonic() - started, url))
        except AssertionError as e:
            failures.append(str(e).splitlines()[0])
    assert not failures, "\n".join(failures)
    print("slowest:", sorted(timings, reverse=True)[:5])

    # The hostile text is shown, as text.
    visit(page, "/actors/" + quote(HOSTILE_ID, safe="") + "/")
    expect(page.locator("#actor-id")).to_have_text(HOSTILE_ID)
    expect(page.locator("#field-ateom_pod_name")).to_have_text(SCRIPT)
    expect(page.locator("#field-last_snapshot")).to_have_text(IMG)
    contexts.watch.assert_clean()


ACTOR_ROWS_JS = """() => Array.from(document.querySelectorAll('#actors-table tbody tr')).map(r => ({
    key: r.dataset.key || null, id: r.dataset.actorId || null, corrupt: r.classList.contains('row-corrupt'),
    flag: (r.querySelector('.flag-corrupt') || {}).textContent || null,
    preview: (r.querySelector('.preview') || {}).textContent || null}))"""


def actor_rows_over_pages(page, url):
    """Every row of the actors list, following "Next page": a page may end early on its time budget
    (the 5 MB values take a while to read on a loaded machine) and the rest is on the next."""
    rows = []
    visit(page, url)
    while True:
        rows += page.evaluate(ACTOR_ROWS_JS)
        following = page.locator("#next-page")
        if following.count() == 0:
            return rows
        visit(page, "/actors/" + following.get_attribute("href"))


def test_corrupt_records_are_flagged_rows(contexts, hostile, store):
    page = contexts.page("viewer")
    rows = actor_rows_over_pages(page, "/actors/?size=200")
    corrupt = [row for row in rows if row["corrupt"]]
    flagged = {row["key"] for row in corrupt}
    assert len(flagged) == len(corrupt), "a corrupt record listed twice"
    expected = set(hostile) | {"actor:a-hash"}
    assert expected <= flagged, expected - flagged
    # Plus the key that is not UTF-8, shown with its bytes escaped.
    assert len(flagged - expected) == 1, flagged - expected
    (odd,) = flagged - expected
    assert odd.startswith("actor:not-utf8-") and "\\xff" in odd
    assert all(row["flag"] == "corrupt" for row in corrupt), corrupt
    # The valid hostile records are normal rows.
    assert {row["id"] for row in rows if row["id"]} == {HOSTILE_ID, QUOTED_ID, "huge-valid"}
    # The corrupt 5 MB value shows as a short preview, not 5 MB of text.
    (five,) = [row for row in corrupt if row["key"] == "actor:five-mb"]
    assert len(five["preview"]) <= 200

    visit(page, "/workers/")
    flagged = page.locator("#workers-table tr.row-corrupt").evaluate_all("rows => rows.map(r => r.dataset.key)")
    assert len(flagged) == 2 and f"worker:{IMG}:pool:pod" in flagged
    visit(page, "/locks/")
    expect(page.locator("#locks-table")).to_contain_text(f"lock:{SCRIPT}")

    # A corrupt record's detail page explains and previews, escaped.
    visit(page, "/actors/value-script/")
    expect(page.locator("#corrupt-record")).to_contain_text("<script>")
    contexts.watch.assert_clean()


def test_editing_a_record_with_hostile_fields_keeps_them_inert(contexts, hostile, store):
    """The edit form, the merge view and the audit page carry the hostile values through."""
    alice = contexts.page("editor")
    bob = contexts.page("editor")
    url = "/actors/" + quote(QUOTED_ID, safe="") + "/edit/"
    visit(alice, url)
    visit(bob, url)
    alice.fill("#id_last_snapshot", "gs://alice")
    save(alice)
    expect(alice.locator("#messages")).to_contain_text("saved")
    bob.fill("#id_last_snapshot", IMG)
    save(bob)
    cells = bob.locator("#conflict-table tr[data-field=last_snapshot] td")
    expect(cells.nth(1)).to_have_text("gs://alice")
    expect(cells.nth(2)).to_have_text(IMG)
    expect(bob.locator("h1")).to_have_text("The record changed while you were editing")
    expect(bob.locator("#conflict-summary")).to_contain_text(QUOTED_ID)
    assert bob.evaluate(DOM_CHECK) == {"bad": [], "pwned": None}
    bob.check("#mine-last_snapshot")
    save(bob, "#merge-button")
    expect(bob.locator("#field-last_snapshot")).to_have_text(IMG)
    assert store.get_actor(QUOTED_ID).last_snapshot == IMG
    visit(bob, "/audit/")
    contexts.watch.assert_clean()


def test_hostile_login_next(contexts, store):
    """A crafted ?next= is shown inert on the login page and never followed off the site."""
    from .browser_helpers import PASSWORDS

    for target in (f'"><svg onload={js("next")}>', f"javascript:{js('next-url')}", "https://evil.example/"):
        page = contexts.page()
        visit(page, "/login/?" + urlencode({"next": target}))
        page.fill("#id_username", "viewer")
        page.fill("#id_password", PASSWORDS["viewer"])
        page.click("#login-button")
        expect(page.locator("#banner-operator")).to_have_text("viewer")
        if target.startswith('"'):
            # A relative path on this site: followed (to a 404 page), harmless.
            assert page.url.startswith(contexts.app.url + "/login/"), page.url
        else:
            # Another scheme or host: refused, the overview instead.
            assert page.url == contexts.app.url + "/", page.url
        assert page.evaluate(DOM_CHECK) == {"bad": [], "pwned": None}
    contexts.watch.assert_clean()


@pytest.mark.parametrize("csp", ["enforced", "ignored"])
def test_hostile_rows_swapped_in_by_htmx(contexts, store, csp):
    """The list fragments HTMX swaps in (filters, Next) carry the same records: still inert."""
    hostile = write_hostile_records(store, huge_valid=False)
    page = contexts.page("viewer", bypass_csp=csp == "ignored")
    visit(page, "/actors/?size=25")
    page.fill("#id_q", "id-")
    expect(page).to_have_url(re.compile(r"q=id-"))
    expect(page.locator("#actors-table tbody tr[data-actor-id]")).to_have_count(1)
    expect(page.locator("#actors-table tbody tr[data-actor-id] td").nth(2)).to_have_text(HOSTILE_ID)
    assert page.evaluate(DOM_CHECK) == {"bad": [], "pwned": None}

    page.fill("#id_q", "")
    expect(page).not_to_have_url(re.compile(r"q=id-"))
    corrupt_seen = 0
    while True:
        corrupt_seen += page.locator("#actors-table tr.row-corrupt").count()
        assert page.evaluate(DOM_CHECK) == {"bad": [], "pwned": None}, page.url
        if not page.locator("#next-page").count():
            break
        before = page.url
        page.click("#next-page")
        expect(page).not_to_have_url(before)
    assert corrupt_seen == len(hostile) + 2  # the listed ones, the key that is not UTF-8, the hash

    visit(page, "/workers/")
    page.fill("#id_pool", "pool")
    expect(page).to_have_url(re.compile(r"pool=pool"))
    expect(page.locator("#workers-table tbody tr[data-worker]")).to_have_count(2)
    assert page.evaluate(DOM_CHECK) == {"bad": [], "pwned": None}
    contexts.watch.assert_clean()
