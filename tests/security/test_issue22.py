"""The outside attack of issue 22 (M1-M5, L1), replayed against gunicorn as shipped."""

import json
import re
import socket
import time

import pytest

from tests.security.conftest import PASSWORDS

# --- M1: downloads that are never read ---------------------------------------------------------


def seed_big_store(store, count=15_000):
    """Enough records that one export (~10 MB) outgrows every socket buffer between server and client."""
    padding = "p" * 300
    entries = (
        (
            f"actor:m1-{i:05d}",
            json.dumps(
                {
                    "actorId": f"m1-{i:05d}",
                    "actorTemplateNamespace": "team-m1",
                    "actorTemplateName": "web",
                    "lastSnapshot": padding,
                    "status": "STATUS_SUSPENDED",
                    "version": "1",
                }
            ).encode(),
            None,
        )
        for i in range(count)
    )
    store.write_new_raw(entries)


def stalled_export(server, browser):
    """GET /ops/export.jsonl with `browser`'s cookies, on a socket that never reads (a tiny receive
    buffer); returns (socket, status)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", server.port))
    cookie = "; ".join(f"{k}={v}" for k, v in browser.cookies.items())
    sock.sendall(f"GET /ops/export.jsonl HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: {cookie}\r\n\r\n".encode())
    sock.settimeout(30)
    head = b""
    while b"\r\n" not in head:
        chunk = sock.recv(64)
        assert chunk, "the server closed the connection before answering"
        head += chunk
    return sock, int(head.split()[1])


def signed_in(server, name):
    browser = server.browser()
    assert browser.login(name) == 302
    return browser


def healthz_seconds(server):
    t0 = time.monotonic()
    status, _ = server.browser().request("GET", "/healthz")
    assert status == 200
    return time.monotonic() - t0


def test_a_viewer_cannot_take_every_thread_with_downloads_it_never_reads(serve, store):
    seed_big_store(store)
    server = serve(GUNICORN_THREADS="4")  # the Kubernetes configmap's value
    viewer = signed_in(server, "viewer")
    opened = [stalled_export(server, viewer) for _ in range(8)]
    statuses = sorted(status for _, status in opened)
    assert statuses == [200] + [429] * 7, statuses
    for _ in range(5):
        assert healthz_seconds(server) < 1.0
    editor = signed_in(server, "editor")
    assert editor.request("GET", "/actors/")[0] == 200
    # The refusal says why.
    status, body = viewer.request("GET", "/ops/export.jsonl")
    assert status == 429 and "per operator" in body
    for sock, _ in opened:
        sock.close()


def test_downloads_are_bounded_for_the_whole_fleet(serve, store):
    seed_big_store(store)
    one, other = serve(GUNICORN_THREADS="4"), serve(GUNICORN_THREADS="4")
    opened = [
        stalled_export(one, signed_in(one, "viewer")),
        stalled_export(other, signed_in(other, "editor")),
    ]
    assert [status for _, status in opened] == [200, 200]
    admin = signed_in(one, "admin")
    status, body = admin.request("GET", "/ops/export.jsonl")
    assert status == 429 and "for every operator together" in body
    for server in (one, other):  # the cap's worth of stalled downloads open: probes still answer
        for _ in range(3):
            assert healthz_seconds(server) < 1.0
    for sock, _ in opened:
        sock.close()
    # Closed: their leases are released, and a download works again.
    deadline = time.monotonic() + 60
    while True:
        sock, status = stalled_export(one, admin)
        sock.close()
        if status == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert status == 200


def test_two_threads_of_a_process_stay_free_whatever_the_caps(serve, store):
    seed_big_store(store)
    server = serve(GUNICORN_THREADS="4", ATEDASH_EXPORT_MAX="50", ATEDASH_EXPORT_MAX_PER_OPERATOR="50")
    viewer = signed_in(server, "viewer")
    opened = [stalled_export(server, viewer) for _ in range(4)]
    assert sorted(status for _, status in opened) == [200, 200, 429, 429]
    for _ in range(3):
        assert healthz_seconds(server) < 1.0
    for sock, _ in opened:
        sock.close()


def test_a_reader_that_stops_reading_is_cut_off_and_frees_its_place(serve, store):
    seed_big_store(store)
    server = serve(GUNICORN_THREADS="4", ATEDASH_EXPORT_SEND_TIMEOUT="2")
    viewer = signed_in(server, "viewer")
    stalled, status = stalled_export(server, viewer)
    assert status == 200
    # Without reading a byte more, the stalled download ends (cut off), and the viewer may download again.
    deadline = time.monotonic() + 60
    while True:
        status = viewer.request("GET", "/ops/export.jsonl")[0]
        if status == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert status == 200
    stalled.close()
    assert not server.tracebacks()


# --- M2: downloads that push changes out of the audit -----------------------------------------


def test_downloads_never_push_changes_out_of_the_audit(serve, cluster_client):
    server = serve(ATEDASH_AUDIT_MAXLEN="100")
    editor = signed_in(server, "editor")
    created = {"actor_id": "m2-kept", "actor_template_namespace": "team-a", "actor_template_name": "web"}
    assert editor.post("/actors/new/", created)[0] == 302
    viewer = signed_in(server, "viewer")
    for _ in range(300):
        assert viewer.request("GET", "/ops/export.jsonl")[0] == 200
    entries = [json.loads(fields[b"entry"]) for _, fields in cluster_client.xrange("atedash:audit")]
    assert any(e["action"] == "actor.create" and e["key"] == "actor:m2-kept" and e["who"] == "editor" for e in entries)
    assert not any(e["action"] == "export" for e in entries)


# --- L1: a flush must not revive a revoked cookie ---------------------------------------------


def test_a_flush_does_not_revive_a_cookie_revoked_by_logout(serve, cluster_client):
    from tests.conftest import flush_primaries

    server = serve()
    browser = signed_in(server, "viewer")
    copied = dict(browser.cookies)
    stolen = server.browser()
    stolen.cookies = dict(copied)
    assert stolen.request("GET", "/actors/")[0] == 200
    assert browser.post("/logout/")[0] == 302
    stolen.cookies = dict(copied)
    assert stolen.request("GET", "/actors/")[0] == 302
    flush_primaries(cluster_client)  # every atedash: key is gone, the session generations with them
    stolen.cookies = dict(copied)  # the copy as it was before logout
    status, _ = stolen.request("GET", "/actors/")
    assert status == 302  # to the login page
    # Signing in again works, on the flushed store.
    again = server.browser()
    assert again.login("viewer", PASSWORDS["viewer"]) == 302
    assert again.request("GET", "/actors/")[0] == 200


@pytest.mark.parametrize("role", ["viewer"])
def test_a_flush_ends_every_session_signed_before_it(serve, cluster_client, role):
    from tests.conftest import flush_primaries

    server = serve()
    browser = signed_in(server, role)
    assert browser.request("GET", "/actors/")[0] == 200
    flush_primaries(cluster_client)
    # Within ATEDASH_SESSION_RECHECK_SECONDS (2 s): the process re-reads the epoch that often.
    flushed, copied = time.monotonic(), dict(browser.cookies)
    while True:
        browser.cookies = dict(copied)
        if browser.request("GET", "/actors/")[0] == 302:
            break
        assert time.monotonic() - flushed < 2 + 4, "a cookie signed before the flush still works"
        time.sleep(0.05)  # a poll interval, not a synchronisation


# --- M4: a key that is not UTF-8 ---------------------------------------------------------------


def test_the_reset_and_the_matches_of_a_store_with_a_key_that_is_not_utf8(serve, store):
    from tests.storage.test_non_utf8_keys import BAD_KEY, BAD_VALUE, seed_m4

    seed_m4(store, actors=2_050)
    server = serve(ATEDASH_ALLOW_FLUSH="1")
    admin = signed_in(server, "admin")
    # All matches: the walk finishes, its pages render, the bad key shown escaped among the corrupt.
    assert admin.post("/actors/all/", {"ns": "team-x"})[0] == 302
    deadline = time.monotonic() + 60
    while True:
        status, body = admin.request("GET", "/actors/all/?ns=team-x")
        assert status == 200
        if 'id="walk-corrupt"' in body or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert "actor:\\xffrz" in body and "2,050" in body
    deadline = time.monotonic() + 60  # the check walks it too (it may outlast the page's wait)
    while True:
        status, body = admin.request("GET", "/ops/check/?wait=1")
        assert status == 200
        if re.search(r"Checked [\d,]+ actors", body) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    # Among the findings of its kind (the seed's 684 locks an hour long are stale locks, listed first).
    status, body = admin.request("GET", "/ops/check/?kind=corrupt_record")
    assert status == 200 and "actor:\\xffrz" in body
    # The reset: 200, every actor deleted has its worker freed, the bad record reported.
    status, body = admin.post("/reset/", {"kind": "actors-namespace", "value": "team-x", "confirm": "security-test"})
    assert status == 200, body[:2000]
    assert "Deleted 2,050 actors, freed 2,050 workers, released 684 locks" in " ".join(body.split())
    assert "actor:\\xffrz" in body
    assert store.client.get(BAD_KEY) == BAD_VALUE
    assert not server.tracebacks()


# --- M5: forced walks and checks ---------------------------------------------------------------


def matched(browser, query):
    """The match count of the walk of `query` once it is done."""
    deadline = time.monotonic() + 60
    while True:
        status, body = browser.request("GET", f"/actors/all/?{query}")
        assert status == 200
        found = re.search(r'id="walk-summary">\s*([\d,]+) match', body)
        if found or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert found, body[-3000:]
    return int(found.group(1).replace(",", ""))


def test_a_viewer_cannot_force_fresh_walks(serve, store, make_actor):
    make_actor("m5-0", ns="team-m5")
    server = serve(ATEDASH_REFRESH_INTERVAL="1")
    viewer = signed_in(server, "viewer")
    assert viewer.post("/actors/all/", {"ns": "team-m5"})[0] == 302
    assert matched(viewer, "ns=team-m5") == 1
    make_actor("m5-1", ns="team-m5")  # a fresh walk would find it; the kept result does not
    deadline = time.monotonic() + 3  # three intervals: the attack's loop
    while time.monotonic() < deadline:
        assert viewer.post("/actors/all/", {"ns": "team-m5", "fresh": "1"})[0] == 302
        assert matched(viewer, "ns=team-m5") == 1
    status, body = viewer.request("GET", "/actors/all/?ns=team-m5")
    assert 'id="walk-again"' not in body
    # A viewer starts walks of new filters at most 6 times a minute (for the whole fleet).
    other = serve(ATEDASH_REFRESH_INTERVAL="600")
    viewer = signed_in(other, "viewer")
    assert viewer.post("/actors/all/", {"ns": "team-m5"})[0] == 302
    assert matched(viewer, "ns=team-m5") == 1  # the fleet's kept walk, not a second one
    for i in range(5):  # the first server's walk counts too: 6 in all
        assert viewer.post("/actors/all/", {"ns": f"team-m5-{i}"})[0] == 302
        assert matched(viewer, f"ns=team-m5-{i}") == 0
    assert viewer.post("/actors/all/", {"ns": "team-a"})[0] == 302
    status, body = viewer.request("GET", "/actors/all/?ns=team-a")
    assert 'id="walk-none"' in body and "You started 6 walks of the whole store within a minute" in body
    # An editor may walk again, once per interval for the fleet.
    editor = signed_in(other, "editor")
    assert editor.post("/actors/all/", {"ns": "team-m5"})[0] == 302
    # The fleet keeps its last 4 walks: the viewer's five newer ones pushed this one out.
    assert matched(editor, "ns=team-m5") == 2
    make_actor("m5-2", ns="team-m5")
    assert editor.post("/actors/all/", {"ns": "team-m5", "fresh": "1"})[0] == 302
    assert matched(editor, "ns=team-m5") == 3
    make_actor("m5-3", ns="team-m5")
    assert editor.post("/actors/all/", {"ns": "team-m5", "fresh": "1"})[0] == 302
    assert matched(editor, "ns=team-m5") == 3  # within the interval: the kept result
    assert not server.tracebacks() and not other.tracebacks()


def checked(browser):
    status, body = browser.request("GET", "/ops/check/?wait=1")
    assert status == 200
    return int(re.search(r"Checked ([\d,]+) actors", body).group(1).replace(",", ""))


def test_a_viewer_cannot_keep_a_full_check_running(serve, store, make_actor):
    make_actor("m5-0")
    server = serve(ATEDASH_REFRESH_INTERVAL="1")
    viewer = signed_in(server, "viewer")
    assert checked(viewer) == 1
    make_actor("m5-1")  # written behind atedash's back: only a new check finds it
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        assert checked(viewer) == 1  # the kept report: no check started
    editor = signed_in(server, "editor")
    assert checked(editor) == 2  # an editor opening the page checks the store as it is now
    assert not server.tracebacks()


# --- M3: audit entries as big as the records ----------------------------------------------------


def test_raw_edits_of_a_big_record_make_small_audit_entries_and_bounded_pages(serve, store, cluster_client):
    import base64

    def value(version, letter):
        record = {"actorId": "m3-big", "actorTemplateNamespace": "team-a", "version": str(version)}
        record["lastSnapshot"] = letter * (105_000 - len(json.dumps(record)) - 16)
        return json.dumps(record, separators=(",", ":")).encode()

    stored = value(1, "a")
    cluster_client.set("actor:m3-big", stored)
    assert len(stored) > 104_000
    server = serve()
    editor = signed_in(server, "editor")
    edits = 12
    for i in range(edits):
        new = value(i + 2, "ab"[(i + 1) % 2])
        form = {"shown": base64.b64encode(stored).decode(), "value": new.decode(), "save": "1"}
        status, body = editor.post("/records/raw/?key=actor%3Am3-big", form)
        assert status == 302, (status, body[-3000:])
        stored = new
    assert cluster_client.get("actor:m3-big") == stored
    streamed = [f[b"entry"] for _, f in cluster_client.xrange("atedash:audit") if b'"raw.edit"' in f[b"entry"]]
    history = [fields[b"entry"] for _, fields in cluster_client.xrange("atedash:history:actor:m3-big")]
    assert len(streamed) == edits and len(history) == edits
    assert max(len(e) for e in streamed + history) < 8192
    entry = json.loads(streamed[-1])
    assert entry["action"] == "raw.edit" and entry["version_before"] == edits and entry["version_after"] == edits + 1
    # Digests of what is too big to keep, and where the bytes changed.
    assert entry["restore_line"]["too_big"] and entry["restore_line"]["sha256"]
    diff = entry["value_diff"]
    assert diff["before"]["length"] == diff["after"]["length"] == len(stored) and diff["before"]["changed"] > 0
    # The pages that list them stay small.
    status, body = editor.request("GET", "/audit/")
    assert status == 200 and "too big to keep in the audit" in body and len(body) < 200_000
    status, body = editor.request("GET", "/actors/m3-big/")
    assert status == 200 and len(body) < 400_000  # the record's own 105 kB shown once, not its history's
    assert not server.tracebacks()


def test_entries_written_before_the_bound_are_shown_bounded(editor, cluster_client):
    huge = json.dumps({"action": "raw.edit", "who": "old", "key": "actor:x", "restore_line": "r" * 400_000})
    cluster_client.xadd("atedash:audit", {"entry": huge})
    response = editor.get("/audit/")
    assert response.status_code == 200 and len(response.content) < 100_000
    assert b"too big to keep in the audit" in response.content


def test_a_change_of_a_value_too_big_for_the_audit_cannot_be_reverted_from_it(editor, store, make_actor):
    from tests.dashboard.test_merge import _form

    make_actor("m3-rev", last_snapshot="s" * 5000)  # written behind the form's back (its limit is 1024)
    form = _form(editor.get("/actors/m3-rev/edit/").content.decode())
    response = editor.post("/actors/m3-rev/edit/", {**form, "last_snapshot": "gs://b/1"})
    assert response.status_code == 302, response.content[:2000]
    entry_id, fields = store.client.xrevrange("atedash:history:actor:m3-rev", count=1)[0]
    assert len(fields[b"entry"]) < 8192
    response = editor.get(f"/actors/m3-rev/edit/?revert={entry_id.decode()}")
    assert response.status_code == 400 and b"too big" in response.content
    # A change of normal size still reverts.
    form = _form(editor.get("/actors/m3-rev/edit/").content.decode())
    assert editor.post("/actors/m3-rev/edit/", {**form, "last_snapshot": "gs://b/2"}).status_code == 302
    entry_id = store.client.xrevrange("atedash:history:actor:m3-rev", count=1)[0][0].decode()
    response = editor.get(f"/actors/m3-rev/edit/?revert={entry_id}")
    assert response.status_code == 200 and b"gs://b/1" in response.content
