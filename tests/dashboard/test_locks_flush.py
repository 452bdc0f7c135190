"""Locks (list, force-release of the token shown) and the guarded flush."""

import re

import pytest

ATE_PREFIXES = (b"actor:", b"worker:", b"lock:")


def all_keys(cluster_client):
    keys = []
    for node in cluster_client.get_primaries():
        keys += cluster_client.get_redis_connection(node).keys("*")
    return sorted(keys)


def ate_keys(cluster_client):
    return [k for k in all_keys(cluster_client) if k.startswith(ATE_PREFIXES)]


# --- locks -----------------------------------------------------------------------------------


def test_lock_list(viewer, admin, store, page_html):
    store.acquire_lock("lock:actor:a-1", "tok-1", 120)
    store.client.set("lock:other", "tok-2")
    body = page_html(viewer.get("/locks/"))
    assert 'data-key="lock:actor:a-1"' in body and "tok-1" in body and re.search(r"(1 min \d+ s|2 min 0 s)", body)
    assert 'data-key="lock:other"' in body and "no expiry" in body
    assert "Force-release" not in body
    assert "Force-release" in page_html(admin.get("/locks/"))
    assert "<html" not in page_html(viewer.get("/locks/", headers={"HX-Request": "true"}))


def test_force_release_after_confirmation(admin, store, audit_log, page_html):
    store.acquire_lock("lock:actor:a-1", "tok-1", 120)
    body = page_html(admin.get("/locks/release/?key=lock:actor:a-1&token=tok-1"))
    assert 'id="lock-key">lock:actor:a-1<' in body and 'id="lock-token">tok-1<' in body
    assert store.get_lock("lock:actor:a-1") is not None  # the GET changes nothing
    response = admin.post("/locks/release/", {"key": "lock:actor:a-1", "token": "tok-1"})
    assert response.status_code == 302
    assert store.get_lock("lock:actor:a-1") is None
    assert audit_log.entries[-1]["action"] == "lock.release"


def test_force_release_keeps_a_lock_taken_again(admin, store, page_html):
    store.acquire_lock("lock:actor:a-1", "tok-old", 120)
    admin.get("/locks/release/?key=lock:actor:a-1&token=tok-old")
    # Meanwhile the lock expires and another holder takes it.
    store.release_lock("lock:actor:a-1", "tok-old")
    store.acquire_lock("lock:actor:a-1", "tok-new", 120)
    response = admin.post("/locks/release/", {"key": "lock:actor:a-1", "token": "tok-old"}, follow=True)
    assert store.get_lock("lock:actor:a-1").token == "tok-new"
    assert "left in place" in page_html(response)


def test_release_refuses_other_keys_and_roles(admin, editor, viewer, store):
    store.client.set("actor:x", b"{}")
    assert admin.post("/locks/release/", {"key": "actor:x", "token": "{}"}).status_code == 400
    assert store.client.get("actor:x") == b"{}"
    store.acquire_lock("lock:actor:a-1", "tok-1", 120)
    for client in (viewer, editor):
        assert client.post("/locks/release/", {"key": "lock:actor:a-1", "token": "tok-1"}).status_code == 403
    assert store.get_lock("lock:actor:a-1") is not None


# --- flush -----------------------------------------------------------------------------------


@pytest.fixture
def filled(store, make_actor, make_worker):
    for i in range(5):
        make_actor(f"a-{i}")
    make_worker()
    store.acquire_lock("lock:actor:a-1", "t", 60)
    store.client.set("unrelated:key", "v")
    return store


@pytest.fixture
def flush_on(settings):
    settings.ATEDASH_ALLOW_FLUSH = True
    return settings


def test_flush_refused_for_viewer_and_editor(viewer, editor, filled, flush_on, cluster_client):
    before = ate_keys(cluster_client)
    for client in (viewer, editor):
        assert client.get("/flush/").status_code == 403
        assert client.post("/flush/", {"scope": "all", "confirm": "dash-test"}).status_code == 403
    assert ate_keys(cluster_client) == before


def test_flush_refused_when_turned_off(admin, filled, cluster_client, page_html):
    before = ate_keys(cluster_client)
    response = admin.post("/flush/", {"scope": "all", "confirm": "dash-test"})
    assert response.status_code == 403
    assert "ATEDASH_ALLOW_FLUSH" in page_html(response)
    assert ate_keys(cluster_client) == before
    assert 'href="/flush/"' not in page_html(admin.get("/"))


def test_flush_preview_per_shard(admin, filled, flush_on, page_html):
    body = page_html(admin.get("/flush/"))
    assert body.count("<tr><td><code>127.0.0.1:") == 3  # one row per primary
    totals = re.search(r"<tfoot>(.*?)</tfoot>", body, re.S).group(1)
    assert re.findall(r'class="num">(\d+)<', totals)[:3] == ["5", "1", "1"]
    assert 'name="confirm"' in body and 'for="id_confirm"' in body


def test_flush_wrong_name_removes_nothing(admin, filled, flush_on, cluster_client, page_html):
    before = all_keys(cluster_client)
    response = admin.post("/flush/", {"scope": "all", "confirm": "production"})
    assert response.status_code == 400
    assert "nothing was removed" in page_html(response)
    assert [k for k in all_keys(cluster_client) if not k.startswith(b"atedash:")] == [
        k for k in before if not k.startswith(b"atedash:")
    ]


def test_flush_ate_records_only(admin, filled, flush_on, cluster_client, audit_log, page_html):
    response = admin.post("/flush/", {"scope": "ate", "confirm": "dash-test"})
    assert response.status_code == 200
    body = page_html(response)
    assert "5 actors, 1 workers, 1 locks" in body
    assert ate_keys(cluster_client) == []
    assert b"unrelated:key" in all_keys(cluster_client)
    entry = [e for e in audit_log.entries if e["action"] == "flush"][-1]
    assert entry["scope"] == "ate" and entry["removed_total"]["actors"] == 5
    assert entry["operator"] == "admin"


def test_flush_everything(admin, filled, flush_on, cluster_client, page_html):
    response = admin.post("/flush/", {"scope": "all", "confirm": "dash-test"})
    assert response.status_code == 200
    assert "other keys" in page_html(response)
    assert [k for k in all_keys(cluster_client) if not k.startswith(b"atedash:")] == []


def test_flush_needs_csrf(filled, flush_on, cluster_client):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    page = client.get("/login/").content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    client.post("/login/", {"username": "admin", "password": "admin-pass-1", "csrfmiddlewaretoken": token})
    before = ate_keys(cluster_client)
    assert client.post("/flush/", {"scope": "all", "confirm": "dash-test"}).status_code == 403
    assert ate_keys(cluster_client) == before


def test_non_string_lock_key_is_a_flagged_row(viewer, store, page_html):
    store.client.hset("lock:weird", "a", "b")
    store.acquire_lock("lock:actor:a-1", "tok-1", 60)
    response = viewer.get("/locks/")
    assert response.status_code == 200
    body = page_html(response)
    assert 'class="row-corrupt" data-key="lock:weird"' in body and 'data-key="lock:actor:a-1"' in body


def test_a_locks_page_examines_at_most_its_own_budget(viewer, store, settings, page_html):
    """ATEDASH_LOCK_SCAN_BUDGET bounds a request, not ATEDASH_SCAN_BUDGET: over 6,000 keys with a
    budget of 600, following "continue" takes about ten pages (fewer would mean a page examined
    more than its budget), and the one lock is shown once."""
    pipe = store.client.pipeline(transaction=False)
    for i in range(6000):
        pipe.set(f"other:{i:05d}", b"x")
    pipe.execute()
    store.acquire_lock("lock:actor:a-1", "tok-1", 120)
    settings.ATEDASH_SCAN_BUDGET = 10**9
    settings.ATEDASH_LOCK_SCAN_BUDGET = 600
    body, pages, shown = page_html(viewer.get("/locks/")), 1, 0
    while True:
        shown += body.count('data-key="lock:actor:a-1"')
        match = re.search(r'href="([^"]+)"[^>]*id="next-page"', body)
        if not match:
            break
        assert 'id="continue-scan"' in body
        # What the page's SCANs examined, not the locks among them (one at most).
        examined = re.search(r"scanned ([\d,]+) of about 6,0\d\d keys", body)
        assert examined and 50 <= int(examined.group(1).replace(",", "")) <= 1200, examined
        body = page_html(viewer.get("/locks/" + match.group(1).replace("&amp;", "&")))
        pages += 1
        assert pages < 100
    assert shown == 1 and 6001 // 660 <= pages <= 6001 // 300 + 1
