"""Workers: list with namespace/pool/assignment filters, detail, create, edit (immutables), delete."""

import re

import pytest

import storage


def workers_in(body):
    return re.findall(r'data-worker="([^"]+)"', body)


def test_list_and_filters(viewer, make_worker, page_html):
    make_worker("team-a", "small", "w-1", actor_id="act-1", actor_namespace="team-a", actor_template="web")
    make_worker("team-a", "large", "w-2")
    make_worker("team-b", "small", "w-3")
    body = page_html(viewer.get("/workers/"))
    assert sorted(workers_in(body)) == ["team-a/large/w-2", "team-a/small/w-1", "team-b/small/w-3"]
    assert 'href="/actors/act-1/"' in body  # the assigned actor is linked
    assert sorted(workers_in(page_html(viewer.get("/workers/?namespace=team-a")))) == [
        "team-a/large/w-2",
        "team-a/small/w-1",
    ]
    assert workers_in(page_html(viewer.get("/workers/?namespace=team-a&pool=small"))) == ["team-a/small/w-1"]
    assert sorted(workers_in(page_html(viewer.get("/workers/?pool=small")))) == ["team-a/small/w-1", "team-b/small/w-3"]
    assert workers_in(page_html(viewer.get("/workers/?assigned=assigned"))) == ["team-a/small/w-1"]
    assert sorted(workers_in(page_html(viewer.get("/workers/?assigned=free")))) == [
        "team-a/large/w-2",
        "team-b/small/w-3",
    ]
    assert workers_in(page_html(viewer.get("/workers/?q=w-3"))) == ["team-b/small/w-3"]


def test_paging(viewer, make_worker, page_html):
    for i in range(30):
        make_worker("team-a", "p", f"w-{i:02d}")
    seen, url = [], "/workers/?size=25"
    while url:
        body = page_html(viewer.get(url))
        seen += workers_in(body)
        match = re.search(r'href="([^"]+)"[^>]*id="next-page"', body)
        url = "/workers/" + match.group(1).replace("&amp;", "&") if match else None
    assert sorted(seen) == [f"team-a/p/w-{i:02d}" for i in range(30)]


def test_htmx_partial(viewer, make_worker, page_html):
    make_worker()
    body = page_html(viewer.get("/workers/?pool=small", headers={"HX-Request": "true"}))
    assert "<html" not in body and 'id="workers-results"' in body


def test_corrupt_worker_row(viewer, store, page_html):
    store.client.set("worker:ns:pool:bad", b"\x00not a worker")
    body = page_html(viewer.get("/workers/"))
    assert 'class="row-corrupt" data-key="worker:ns:pool:bad"' in body


def test_detail_actor_points_back_or_not(viewer, make_worker, make_actor, store, page_html):
    make_actor("act-1", status="STATUS_RUNNING", ateom_pod_namespace="team-a", ateom_pod_name="w-1")
    make_worker("team-a", "small", "w-1", actor_id="act-1")
    make_worker("team-a", "small", "w-2", actor_id="act-1")
    make_worker("team-a", "small", "w-3", actor_id="ghost")
    make_worker("team-a", "small", "w-4")
    body = page_html(viewer.get("/workers/team-a/small/w-1/"))
    assert "The actor points back" in body and 'href="/actors/act-1/"' in body
    assert 'id="record-key">worker:team-a:small:w-1<' in body
    assert f'id="record-slot">{storage.key_slot("worker:team-a:small:w-1")}<' in body
    assert "&quot;workerPod&quot;: &quot;w-1&quot;" in body
    assert "does not point back" in page_html(viewer.get("/workers/team-a/small/w-2/"))
    assert "no such actor" in page_html(viewer.get("/workers/team-a/small/w-3/"))
    assert 'id="worker-free"' in page_html(viewer.get("/workers/team-a/small/w-4/"))


def test_missing_worker_is_404(viewer, editor):
    assert viewer.get("/workers/a/b/c/").status_code == 404
    assert editor.get("/workers/a/b/c/edit/").status_code == 404
    assert editor.post("/workers/a/b/c/delete/").status_code == 404


def test_create_worker(editor, store, page_html):
    response = editor.post(
        "/workers/new/",
        {
            "worker_namespace": "team-a",
            "worker_pool": "small",
            "worker_pod": "w-9",
            "ip": "10.1.1.1",
            "actor_namespace": "",
            "actor_template": "",
            "actor_id": "",
        },
    )
    assert response.status_code == 302 and response["Location"] == "/workers/team-a/small/w-9/"
    worker = store.get_worker("team-a", "small", "w-9")
    assert worker.version == 1 and worker.ip == "10.1.1.1"
    response = editor.post(
        "/workers/new/", {"worker_namespace": "team-a", "worker_pool": "small", "worker_pod": "w-9", "ip": ""}
    )
    assert response.status_code == 409
    assert "already exists" in page_html(response)


@pytest.mark.parametrize(
    ("field", "value"), [("worker_namespace", "Bad"), ("worker_pod", "a_b"), ("ip", "1.2.3"), ("actor_id", "X")]
)
def test_create_worker_validation(editor, store, field, value):
    data = {"worker_namespace": "team-a", "worker_pool": "small", "worker_pod": "w-1", "ip": "10.0.0.1"}
    data[field] = value
    assert editor.post("/workers/new/", data).status_code == 400
    assert store.scan_workers().records == []


def edit_data(worker, **changes):
    data = {
        name: getattr(worker, name)
        for name in (
            "version",
            "worker_namespace",
            "worker_pool",
            "worker_pod",
            "ip",
            "actor_namespace",
            "actor_template",
            "actor_id",
        )
    }
    data.update(changes)
    return data


def test_edit_worker(editor, make_worker, store, audit_log):
    worker = make_worker()
    response = editor.post(
        "/workers/team-a/small/w-0/edit/",
        # act-1 does not exist: the save is confirmed (tests/dashboard/test_record_findings.py)
        edit_data(worker, actor_id="act-1", actor_namespace="team-a", actor_template="web", save_despite_findings="on"),
    )
    assert response.status_code == 302
    stored = store.get_worker("team-a", "small", "w-0")
    assert stored.actor_id == "act-1" and stored.version == 2
    assert audit_log.entries[-1]["action"] == "worker.update"


@pytest.mark.parametrize(
    ("field", "value"),
    [("worker_namespace", "other"), ("worker_pool", "other"), ("worker_pod", "other"), ("ip", "10.9.9.9")],
)
def test_edit_worker_immutables(editor, make_worker, store, field, value, page_html):
    worker = make_worker()
    response = editor.post("/workers/team-a/small/w-0/edit/", edit_data(worker, **{field: value}, actor_id="x"))
    assert response.status_code == 400
    assert "cannot change" in page_html(response)
    assert store.get_worker("team-a", "small", "w-0").version == 1


def test_edit_worker_conflict(editor, make_worker, store, page_html):
    worker = make_worker()
    form = edit_data(worker, actor_id="mine")
    other = store.get_worker("team-a", "small", "w-0")
    other.actor_id = "theirs"
    store.update_worker(other, other.version)
    response = editor.post("/workers/team-a/small/w-0/edit/", form)
    assert response.status_code == 409
    body = page_html(response)
    assert "theirs" in body and "mine" in body and 'id="merge-form"' in body
    assert store.get_worker("team-a", "small", "w-0").actor_id == "theirs"
    merge_form = re.search(r'<form[^>]*id="merge-form">(.*?)</form>', body, re.S).group(1)
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', merge_form))
    fields["actor_id"] = "mine"  # the decision
    fields["save_despite_findings"] = "on"  # actor "mine" does not exist: confirmed
    assert editor.post("/workers/team-a/small/w-0/edit/", fields).status_code == 302
    assert store.get_worker("team-a", "small", "w-0").actor_id == "mine"


def test_delete_worker(editor, viewer, make_worker, store, page_html):
    make_worker()
    assert viewer.post("/workers/team-a/small/w-0/delete/").status_code == 403
    assert 'id="confirm-delete"' in page_html(editor.get("/workers/team-a/small/w-0/delete/"))
    response = editor.post("/workers/team-a/small/w-0/delete/")
    assert response.status_code == 302
    with pytest.raises(storage.NotFound):
        store.get_worker("team-a", "small", "w-0")


def test_viewer_sees_no_edit_buttons(viewer, editor, make_worker, page_html):
    make_worker()
    assert 'id="edit-worker"' not in page_html(viewer.get("/workers/team-a/small/w-0/"))
    assert 'id="edit-worker"' in page_html(editor.get("/workers/team-a/small/w-0/"))
    assert viewer.get("/workers/team-a/small/w-0/edit/").status_code == 403
