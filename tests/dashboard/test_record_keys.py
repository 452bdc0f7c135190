"""Every record reachable (issue 12): a route by key for any actor or worker key, used by the lists,
the "open by key" box; a record's history and "revert this change"; the audit page's filters and reach."""

import re
from html import unescape

import pytest

from atedash.records.converters import key_from_token, key_token
from storage.ateapi_pb2 import Actor, Worker

AWKWARD = ["a/b", "sp ace", "per%cent", "tab\tnew\nline", "<b>x</b>", "ünï/cødé", "..", "%2F", "new", "all"]


def _actor(store, actor_id, **fields):
    fields.setdefault("status", Actor.STATUS_SUSPENDED)  # as the ate API creates them (deletable)
    store.create_actor(Actor(actor_id=actor_id, actor_template_namespace="t", actor_template_name="t", **fields))
    return store.get_actor(actor_id)


def test_tokens_name_every_key_once():
    for key in ["actor:a/b", "actor:\x00\x7f", b"actor:\xff\xfe", "worker:a:b:c/d", "actor:" + "x" * 4000]:
        token = key_token(key)
        assert re.fullmatch(r"[A-Za-z0-9_-]+", token) and key_from_token(token) == key
    for bad in ["", "a", "YQ=", "YWN0b3I6YQ==", "YWN0b3I6YR", "!!", "x" * 6000]:
        with pytest.raises(ValueError):
            key_from_token(bad)


@pytest.mark.parametrize("actor_id", AWKWARD)
def test_an_awkward_actor_id_is_listed_opened_edited_and_deleted(editor, store, page_html, actor_id):
    _actor(store, actor_id)
    listing = page_html(editor.get("/actors/"))
    url = unescape(re.search(r'<tr data-actor-id="[^"]*">.*?<a href="([^"]+)">', listing, re.S).group(1))
    detail = editor.get(url)
    assert detail.status_code == 200, url
    body = page_html(detail)
    assert unescape(re.search(r'id="record-key">([^<]*)<', body).group(1)) == f"actor:{actor_id}"
    edit_url = unescape(re.search(r'href="([^"]+)" id="edit-actor"', body).group(1))
    form = page_html(editor.get(edit_url))
    data = {unescape(n): unescape(v) for n, v in re.findall(r'name="([^"]+)" value="([^"]*)"', form)}
    data.update(status="SUSPENDED", last_snapshot="gs://k/1", actor_id=actor_id)
    assert editor.post(edit_url, data).status_code == 302
    assert store.get_actor(actor_id).last_snapshot == "gs://k/1"
    delete_url = unescape(re.search(r'href="([^"]+)" id="delete-actor"', body).group(1))
    assert editor.post(delete_url).status_code == 302
    assert store.scan_actors().records == []


def test_a_worker_whose_pool_has_a_slash_is_reachable(viewer, store, page_html):
    store.create_worker(Worker(worker_namespace="ns", worker_pool="p/q", worker_pod="w-1"))
    listing = page_html(viewer.get("/workers/"))
    url = unescape(re.search(r'<a href="(/records/[^"]+)">w-1</a>', listing).group(1))
    body = page_html(viewer.get(url))
    assert 'id="worker-name">ns/p/q/w-1<' in body


def test_a_key_that_is_not_utf8_is_shown_escaped_and_never_breaks(editor, store, page_html):
    store.client.set(b"actor:\xff\xfeid", b'{"actorId": "x"}')
    listing = page_html(editor.get("/actors/"))
    url = unescape(re.search(r'<a href="(/records/[^"]+)"><code>actor:\\xff\\xfeid</code>', listing).group(1))
    assert url == "/records/" + key_token(b"actor:\xff\xfeid") + "/"
    body = page_html(editor.get(url))
    assert 'id="record-key">actor:\\xff\\xfeid<' in body and 'id="corrupt-record"' in body
    assert editor.get(url + "edit/").status_code == 422
    assert editor.post(url + "delete/").status_code == 422
    assert store.client.get(b"actor:\xff\xfeid") is not None


@pytest.mark.parametrize(
    "path", ["/records/!!/", "/records/YQ/", "/records/" + key_token("lock:actor:a") + "/", "/records/YWN0b3I6YR/"]
)
def test_bad_key_urls_are_404(viewer, path):
    assert viewer.get(path).status_code == 404


def test_open_by_key(viewer, store):
    _actor(store, "a/b")
    _actor(store, "plain")
    assert viewer.get("/open/", {"q": "actor:a/b"})["Location"] == f"/records/{key_token('actor:a/b')}/"
    assert viewer.get("/open/", {"q": "actor:plain"})["Location"] == "/actors/plain/"
    for missing in ["actor:missing", "lock:actor:nope", "worker:x"]:
        assert viewer.get("/open/", {"q": missing}).status_code == 404
    assert viewer.get("/open/", {"q": "actor:" + "x" * 5000}).status_code == 400
    body = viewer.get("/actors/").content.decode()
    assert 'id="open-by-key"' in body and 'action="/open/"' in body


def _edit(client, url, page_html, **changes):
    form = page_html(client.get(url))
    data = {unescape(n): unescape(v) for n, v in re.findall(r'name="([^"]+)" value="([^"]*)"', form)}
    chosen = re.search(r'<select name="status"[^>]*>.*?<option value="([^"]*)" selected', form, re.S)
    data["status"] = chosen.group(1) if chosen else data.get("status", "")
    data.update(changes)
    return client.post(url, data)


def test_history_lists_the_changes_and_reverts_one(editor, viewer, store, page_html):
    _actor(store, "h-1", ateom_pod_ip="10.0.0.5")
    assert _edit(editor, "/actors/h-1/edit/", page_html, ateom_pod_ip="10.0.0.6").status_code == 302
    assert _edit(editor, "/actors/h-1/edit/", page_html, last_snapshot="gs://h/2").status_code == 302
    body = page_html(viewer.get("/actors/h-1/"))
    rows = re.findall(r'<tr data-id="([^"]+)" data-action="actor.update">(.*?)</tr>', body, re.S)
    assert len(rows) == 2 and "2 → 3" in rows[0][1] and "1 → 2" in rows[1][1]
    assert "10.0.0.6" in rows[1][1] and "revert-link" not in body  # viewers cannot revert
    body = page_html(editor.get("/actors/h-1/"))
    revert = unescape(re.findall(r'href="([^"]+)" class="revert-link"', body)[1])
    assert revert == f"/actors/h-1/edit/?revert={rows[1][0]}"
    response = _edit(editor, revert, page_html)
    assert response.status_code == 302
    stored = store.get_actor("h-1")
    assert (stored.ateom_pod_ip, stored.last_snapshot, stored.version) == ("10.0.0.5", "gs://h/2", 4)


@pytest.mark.parametrize("revert", ["1-0", "x", "99999999999999-0", "1" * 60])
def test_reverting_a_change_that_is_not_in_the_history_is_400(editor, store, revert):
    _actor(store, "h-2")
    assert editor.get(f"/actors/h-2/edit/?revert={revert}").status_code == 400


@pytest.mark.fresh_login  # counts the editor's login in the stream
def test_audit_page_filters_and_says_how_far_back_it_reaches(editor, store, page_html):
    from atedash.accounts.audit import audit
    from atedash.core.app import current_app

    for i in range(5):
        audit("cli:alice", "actor.update", key=f"actor:a-{i}", app=current_app())
    audit("cli:bob", "worker.delete", key="worker:n:p:w", app=current_app())
    audit("cli:bob", "login", app=current_app())
    from atedash.accounts.audit import STREAM_KEY

    body = page_html(editor.get("/audit/"))
    length = store.client.xlen(STREAM_KEY)  # these 7, and the editor's login
    assert length == 8
    assert re.search(
        rf'id="audit-reach">The stream holds <strong>{length}</strong> entries,\s+back to <strong>20', body
    )

    def actions(**params):
        return re.findall(r'<tr data-action="([^"]+)"', page_html(editor.get("/audit/", params)))

    assert actions(operator="cli:bob") == ["login", "worker.delete"]
    assert actions(action="actor") == ["actor.update"] * 5
    assert actions(action="actor.update", key="actor:a-3") == ["actor.update"]
    assert actions(action="act") == []
    assert 'id="audit-examined">Looked at 8 entries' in page_html(editor.get("/audit/", {"operator": "nobody"}))
