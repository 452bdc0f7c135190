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
                    "snapshotId": padding,
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
    assert browser.request("GET", "/actors/")[0] == 302


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
    status, body = admin.request("GET", "/ops/check/?wait=1")  # the check walks it too
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
    assert matched(viewer, "ns=team-m5") == 2
    for i in range(4):  # the first server's walk counts too: 6 in all
        assert viewer.post("/actors/all/", {"ns": f"team-m5-{i}"})[0] == 302
        assert matched(viewer, f"ns=team-m5-{i}") == 0
    assert viewer.post("/actors/all/", {"ns": "team-a"})[0] == 302
    status, body = viewer.request("GET", "/actors/all/?ns=team-a")
    assert 'id="walk-none"' in body and "You started 6 walks of the whole store within a minute" in body
    # An editor may walk again, once per interval for the fleet.
    editor = signed_in(other, "editor")
    assert editor.post("/actors/all/", {"ns": "team-m5"})[0] == 302
    assert matched(editor, "ns=team-m5") == 2  # the kept walk
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
