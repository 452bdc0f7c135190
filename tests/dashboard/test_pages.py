"""Overview, banner, security headers, and failures shown as pages (store down, 404, 503)."""

import re
import time

import pytest
from django.core import signing
from django.test import Client

from atedash.core.app import current_app
from atedash.ops.overview import SINCE_SALT


def test_overview_cluster_and_stats(viewer, make_actor, make_worker, store, page_html):
    make_actor("a-1", status="STATUS_RUNNING")
    make_actor("a-2")
    make_worker("team-a", "small", "w-1", actor_id="a-1")
    make_worker("team-a", "small", "w-2")
    store.acquire_lock("lock:actor:a-1", "t", 60)
    store.client.set("actor:broken", b"\x00")
    body = page_html(viewer.get("/"))
    assert 'id="nodes-table"' in body
    assert body.count(">primary<") + body.count(">primary ") >= 3
    assert "replica" in body
    assert 'id="cluster-state" class="ok">ok<' in body
    assert 'id="slots-covered">16384<' in body
    current_app().stats.wait(timeout=30)
    body = page_html(viewer.get("/"))
    table = re.search(r'id="actors-by-status">(.*?)</table>', body, re.S).group(1)
    assert "RUNNING" in table and "SUSPENDED" in table and "corrupt" in table
    pools = re.search(r'id="workers-by-pool">(.*?)</table>', body, re.S).group(1)
    free_and_assigned = (
        r'small</a></td>\s*<td class="num" data-label="Free"><a[^>]*>1</a></td>'
        r'\s*<td class="num" data-label="Assigned"><a[^>]*>1</a>'
    )
    assert re.search(free_and_assigned, pools)
    assert 'id="locks-count">1<' in body
    assert re.search(r'id="stats-age">\s*Counted \d+ s ago', body)


def test_overview_stats_partial_for_htmx(viewer, page_html):
    current_app().stats.wait(timeout=30)
    body = page_html(viewer.get("/overview/counts/", headers={"HX-Request": "true"}))
    assert "<html" not in body and 'id="stats"' in body
    body = page_html(viewer.get("/overview/counts/?wait=1"))
    assert "<html" in body and 'id="actors-by-status"' in body


def test_recount_poll_landing_on_a_process_with_older_counts_recounts_there(viewer, make_actor, page_html):
    # "Recount now" and its follow-up poll may reach different gunicorn workers: the poll carries
    # the time of the request, and a process whose counts predate it counts again and keeps polling.
    current_app().stats.refresh()
    current_app().stats.wait(timeout=30)
    before = current_app().stats.result
    make_actor("a-new", status="STATUS_RUNNING")
    since = before.computed_at + 0.001
    token = signing.dumps(since, salt=SINCE_SALT)  # what the recount's own response carries
    body = page_html(viewer.get(f"/overview/counts/?since={token}", headers={"HX-Request": "true"}))
    assert "since=" in body  # still polling with the request's time
    current_app().stats.wait(timeout=30)
    assert current_app().stats.result is not before and current_app().stats.result.computed_at >= since
    body = page_html(viewer.get(f"/overview/counts/?since={token}", headers={"HX-Request": "true"}))
    assert "since=" not in body and "hx-trigger" not in body  # fresh enough: polling stops
    table = re.search(r'id="actors-by-status">(.*?)</table>', body, re.S).group(1)
    assert "RUNNING" in table


def test_stats_poll_ignores_a_since_that_is_not_a_signed_time(viewer, page_html):
    current_app().stats.refresh().join(30)
    before = current_app().stats.result
    for since in ("nan", "-1", "abc", "1e400", f"{time.time():f}", signing.dumps(time.time(), salt="other")):
        response = viewer.get(f"/overview/counts/?since={since}", headers={"HX-Request": "true"})
        assert response.status_code == 200, since
        assert "since=" not in page_html(response), since  # not taken as a recount's time
    current_app().stats.wait(timeout=30)
    assert current_app().stats.result is before  # nothing recounted


def test_recount_is_a_post_by_an_editor_at_most_once_per_interval(viewer, editor, settings):
    current_app().stats.refresh().join(30)
    before = current_app().stats.result
    assert viewer.post("/overview/counts/").status_code == 403
    assert viewer.get("/overview/counts/?refresh=1&wait=1").status_code == 200
    assert current_app().stats.result is before  # a GET recounts nothing
    assert editor.post("/overview/counts/").status_code == 302
    current_app().stats.wait(timeout=30)
    first = current_app().stats.result
    assert first is not before
    editor.post("/overview/counts/")  # within the interval: no second count
    current_app().stats.wait(timeout=30)
    assert current_app().stats.result is first


def test_stats_computation_runs_once_at_a_time(viewer):
    first = current_app().stats.refresh()
    second = current_app().stats.refresh()
    assert first is second or not first.is_alive()
    current_app().stats.wait(timeout=30)


def test_banner_names_environment_and_store(viewer, redis_url, page_html):
    for url in ("/", "/actors/", "/workers/", "/locks/", "/actors/missing/"):
        body = page_html(viewer.get(url))
        assert 'id="banner-environment">dash-test<' in body, url
        assert f'id="banner-store">{redis_url}<' in body, url
    # Anonymous visitors see neither (the environment's name is the word that confirms a flush).
    for url in ("/login/", "/no-such-page/"):
        body = page_html(Client().get(url))
        assert "dash-test" not in body and redis_url not in body and "7200" not in body, url


def test_store_address_hides_credentials(settings):
    settings.ATEDASH_REDIS_URL = "rediss://user:s3cret@redis.internal:6380/0"
    assert current_app().store.address == "rediss://redis.internal:6380/0"
    assert "s3cret" not in current_app().store.address


def test_security_headers(viewer):
    response = viewer.get("/actors/")
    csp = response["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert "frame-ancestors 'none'" in csp
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert "no-store" in response["Cache-Control"]


INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I)
STYLE_ATTR = re.compile(r"<[^>]+\sstyle=", re.I)
EVENT_ATTR = re.compile(r"<[^>]+\son[a-z]+=", re.I)
STYLE_TAG = re.compile(r"<style", re.I)


def test_no_inline_scripts_or_styles(admin, settings, make_actor, make_worker, store, page_html):
    settings.ATEDASH_ALLOW_FLUSH = True
    make_actor("a-1", status="STATUS_RUNNING", ateom_pod_namespace="team-a", ateom_pod_name="w-0")
    make_worker()
    store.acquire_lock("lock:actor:a-1", "t", 60)
    urls = [
        "/",
        "/actors/",
        "/actors/a-1/",
        "/actors/a-1/edit/",
        "/actors/a-1/delete/",
        "/actors/new/",
        "/workers/",
        "/workers/team-a/small/w-0/",
        "/workers/team-a/small/w-0/edit/",
        "/workers/new/",
        "/locks/",
        "/locks/release/?key=lock:actor:a-1&token=t",
        "/flush/",
        "/actors/nope/",
    ]
    for url in urls:
        body = page_html(admin.get(url))
        assert not INLINE_SCRIPT.search(body), url
        assert not STYLE_ATTR.search(body), url
        assert not EVENT_ATTR.search(body), url
        assert not STYLE_TAG.search(body), url
    body = page_html(Client().get("/login/"))
    assert not INLINE_SCRIPT.search(body) and not STYLE_ATTR.search(body)
    assert "includeIndicatorStyles&quot;:false" in body or '"includeIndicatorStyles":false' in body


def test_static_files_are_served(viewer):
    body = viewer.get("/").content.decode()
    for path in re.findall(r'(?:src|href)="(/static/[^"]+)"', body):
        response = viewer.get(path)
        assert response.status_code == 200, path


# --- failures --------------------------------------------------------------------------------

UNUSED_URL = "redis://127.0.0.1:1"


@pytest.fixture
def store_down(settings):
    settings.ATEDASH_REDIS_URL = UNUSED_URL
    return settings


@pytest.mark.parametrize("url", ["/", "/actors/", "/actors/a-1/", "/workers/", "/workers/a/b/c/", "/locks/"])
def test_store_down_is_a_503_page(viewer, store_down, url, page_html):
    response = viewer.get(url)
    assert response.status_code == 503
    body = page_html(response)
    assert "redis://127.0.0.1:1" in body and 'id="store-error"' in body or "unreachable" in body
    assert "Traceback" not in body
    assert "ConnectionError" in body or "Error" in body
    assert response["Retry-After"] == "5"


def test_store_down_htmx_gets_a_fragment(viewer, store_down, page_html):
    response = viewer.get("/actors/", headers={"HX-Request": "true"})
    assert response.status_code == 503
    body = page_html(response)
    assert "<html" not in body and 'id="store-error"' in body


def test_store_down_editing_pages_and_posts(editor, store_down, page_html):
    assert editor.get("/actors/a-1/edit/").status_code == 503
    response = editor.post(
        "/actors/new/", {"actor_id": "x", "actor_template_namespace": "a", "actor_template_name": "b"}
    )
    assert response.status_code == 503


def test_readyz_and_healthz_when_store_down(store_down):
    client = Client()
    assert client.get("/healthz").status_code == 200
    # Ready: this process serves pages, the outage page included (it stays in the Service, and
    # operators see atedash's 503 naming the outage, not the ingress's anonymous one).
    response = client.get("/readyz")
    assert response.status_code == 200 and response.json() == {"ready": True}


def test_pages_recover_when_the_store_comes_back(viewer, settings, redis_url):
    settings.ATEDASH_REDIS_URL = UNUSED_URL
    assert viewer.get("/actors/").status_code == 503
    settings.ATEDASH_REDIS_URL = redis_url
    assert viewer.get("/actors/").status_code == 200


def test_unknown_page_is_404_page(viewer, page_html):
    response = viewer.get("/no/such/page/")
    assert response.status_code == 404
    assert 'id="banner-environment"' in page_html(response)


def test_unexpected_error_is_a_plain_500_page(monkeypatch, page_html):
    from atedash.records import views as records

    def broken(*args, **kwargs):
        raise RuntimeError("secret internals")

    client = Client(raise_request_exception=False)
    client.post("/login/", {"username": "viewer", "password": "viewer-pass-1"})
    monkeypatch.setattr(records, "persistence", broken)
    response = client.get("/actors/")
    assert response.status_code == 500
    body = page_html(response)
    assert "Something went wrong" in body and "secret internals" not in body and "Traceback" not in body


def test_list_filters_fold_behind_a_summary_counting_the_active_ones(viewer, page_html):
    body = page_html(viewer.get("/actors/?ns=team-a&status=RUNNING"))
    form = body[body.index('id="actor-filters"') : body.index("</form>", body.index('id="actor-filters"'))]
    assert '<details class="filters-toggle"' in form and "<summary" in form
    assert "Filters (2 active)</summary>" in form and 'id="id_ns"' in form
    assert "Filters (0 active)" in page_html(viewer.get("/workers/"))


def test_a_checkbox_sits_beside_its_label(editor, store, make_actor, page_html):
    make_actor("locked-one")
    assert store.acquire_lock("lock:actor:locked-one", "tok", 600)
    body = page_html(editor.get("/actors/locked-one/edit/"))
    field = re.search(r'<div class="field field-check[^"]*" id="field-edit_while_locked">(.*?)</div>', body, re.S)
    assert field and re.match(
        r'\s*<input type="checkbox"[^>]*id="id_edit_while_locked"[^>]*>\s*<label for="id_edit_while_locked">',
        field.group(1),
    )


def test_renamed_paths_redirect_to_their_new_names(viewer):
    # 308, not 301: a POST stays a POST (the overview's recount, a walk's cancel button).
    response = viewer.get("/overview/stats/?wait=1")
    assert response.status_code == 308 and response["Location"] == "/overview/counts/?wait=1"
    response = viewer.post("/walks/0123456789abcdef/cancel/", {"next": "/actors/all/"})
    assert response.status_code == 308 and response["Location"] == "/matches/0123456789abcdef/cancel/"
