"""Show all matches: the walk of a list's filters in the background, its progress, its pages."""

import re

from atedash.core.app import current_app
from storage.ateapi_pb2 import Actor, Worker
from storage.codec import ACTOR_CODEC, WORKER_CODEC
from storage.matches import actor_walk
from tests.dashboard.conftest import wait_done

S = Actor.Status


def seed(store, actors=10_000, workers=1_000):
    pipe = store.client.pipeline(transaction=False)
    for i in range(actors):
        actor = Actor(
            actor_id=f"a{i:05d}",
            version=1,
            actor_template_namespace=f"ns-{i % 10}",
            actor_template_name=f"t-{i % 7}",
            status=[S.STATUS_RUNNING, S.STATUS_SUSPENDED, S.STATUS_RESUMING][i % 3],
        )
        pipe.set(f"actor:{actor.actor_id}", ACTOR_CODEC.encode_json(actor))
    for i in range(workers):
        worker = Worker(worker_namespace=f"ns-{i % 10}", worker_pool=f"p{i % 3}", worker_pod=f"w{i:05d}", version=1)
        if i % 4:
            worker.actor_id = f"a{i:05d}"
        pipe.set(
            f"worker:{worker.worker_namespace}:{worker.worker_pool}:{worker.worker_pod}",
            WORKER_CODEC.encode_json(worker),
        )
    pipe.execute()


def ids_on(response):
    return re.findall(r'data-actor-id="([^"]+)"', response.content.decode())


def test_list_page_offers_show_all_with_its_filters(viewer, store):
    response = viewer.get("/actors/?ns=ns-1&status=RUNNING")
    html = response.content.decode()
    assert 'id="show-all-matches"' in html
    form = html[html.index('id="show-all-form"') : html.index("</form>", html.index('id="show-all-form"'))]
    assert 'name="ns" value="ns-1"' in form and 'name="status" value="RUNNING"' in form
    assert 'id="show-all-matches"' in viewer.get("/workers/?pool=p1").content.decode()


def test_show_all_walks_every_match_and_pages_them(viewer, store):
    seed(store)
    response = viewer.get("/actors/all/?ns=ns-3&template=t-2")
    assert b'id="walk-none"' in response.content  # GET never starts a walk
    response = viewer.post("/actors/all/", {"ns": "ns-3", "template": "t-2"})
    assert response.status_code == 302 and response["Location"].startswith("/actors/all/?")
    page = wait_done(viewer, response["Location"])
    expected = sorted(f"a{i:05d}" for i in range(10_000) if i % 10 == 3 and i % 7 == 2)
    assert len(expected) == 143
    html = page.content.decode()
    assert "143 matches" in html, html[html.find('id="walk"') :][:2000]
    seen = ids_on(page)
    next_url = re.search(r'id="walk-next"', page.content.decode()) and re.search(
        r'href="([^"]+)"[^>]*id="walk-next"', page.content.decode()
    ).group(1)
    assert next_url
    second = viewer.get(next_url.replace("&amp;", "&"))
    seen += ids_on(second)
    assert seen == expected
    assert b'id="walk-next"' not in second.content


def test_the_same_filters_reuse_the_walk_and_others_wait(viewer, editor, store):
    seed(store, actors=3000, workers=0)
    viewer.post("/actors/all/", {"status": "RUNNING"})
    job = current_app().walks.find("actors", actor_walk(status=S.STATUS_RUNNING))
    assert job is not None
    editor.post("/actors/all/", {"status": "RUNNING"})
    assert current_app().walks.find("actors", actor_walk(status=S.STATUS_RUNNING)).id == job.id
    wait_done(viewer, "/actors/all/?status=RUNNING")
    # One walk in the fleet's store: the second operator joined the first one's.
    assert store.client.lrange("atedash:fleet:{walks}:recent", 0, -1) == [job.id.encode()]


def test_progress_partial_polls_and_full_page_refreshes_without_js(viewer, store, settings):
    settings.ATEDASH_STORE_STEP_KEYS = 1  # a slow walk: one key per step
    seed(store, actors=2_000, workers=0)
    app = current_app()
    viewer.post("/actors/all/", {"status": "SUSPENDED"})
    response = viewer.get("/actors/all/?status=SUSPENDED")
    if b'id="walk-progress"' in response.content:  # still running: both ways to follow it are there
        assert b'http-equiv="refresh"' in response.content
    partial = viewer.get("/actors/all/?status=SUSPENDED", HTTP_HX_REQUEST="true")
    assert b"<html" not in partial.content
    # The walk may end between the two reads: a fragment that still shows progress polls.
    if b'id="walk-progress"' in partial.content:
        assert b'hx-trigger="every 250ms"' in partial.content
    wait_done(viewer, "/actors/all/?status=SUSPENDED")
    assert app.walks.running() is None


def test_cancel_needs_an_editor_and_stops_the_walk(viewer, editor, store):
    seed(store, actors=10_000, workers=0)
    editor.post("/actors/all/", {})
    job = current_app().walks.running()
    assert job is not None
    assert viewer.post(f"/matches/{job.id}/cancel/", {"next": "/actors/all/"}).status_code == 403
    response = editor.post(f"/matches/{job.id}/cancel/", {"next": "https://evil.example/"})
    assert response.status_code == 302 and response["Location"] == "/"
    job.thread.join(30)
    result = current_app().walks.get(job.id).result
    assert result is not None and (result.cancelled or result.matched == 10_000)


def test_the_cap_is_said(viewer, store, monkeypatch):
    seed(store, actors=500, workers=0)
    monkeypatch.setattr(current_app().walks, "max_results", 100)
    viewer.post("/actors/all/", {})
    page = wait_done(viewer, "/actors/all/")
    assert b'id="walk-truncated"' in page.content and b"100 matches" in page.content


def test_a_forged_or_foreign_offset_is_the_400_page(viewer, store):
    seed(store, actors=300, workers=0)
    viewer.post("/actors/all/", {})
    page = wait_done(viewer, "/actors/all/")
    assert viewer.get("/actors/all/?at=123").status_code == 400
    link = re.search(r'href="([^"]+)"[^>]*id="walk-next"', page.content.decode()).group(1).replace("&amp;", "&")
    assert viewer.get(link.replace("/actors/all/?", "/actors/all/?status=RUNNING&")).status_code == 200
    viewer.post("/actors/all/", {"status": "RUNNING"})
    wait_done(viewer, "/actors/all/?status=RUNNING")
    # the first walk's link on the second walk's page
    assert viewer.get(link.replace("/actors/all/?", "/actors/all/?status=RUNNING&")).status_code == 400


def test_worker_matches(viewer, store):
    seed(store, actors=0, workers=1000)
    viewer.post("/workers/all/", {"assigned": "free", "pool": "p1"})
    page = wait_done(viewer, "/workers/all/?pool=p1&assigned=free")
    expected = sum(1 for i in range(1000) if i % 3 == 1 and i % 4 == 0)
    assert f"{expected} matches".encode() in page.content


def test_bulk_delete_of_selected_and_of_all_matches(admin, viewer, store, audit_log):
    seed(store, actors=600, workers=0)
    admin.post("/actors/all/", {"ns": "ns-1"})
    page = wait_done(admin, "/actors/all/?ns=ns-1")
    html = page.content.decode()
    assert 'id="bulk-form"' in html and html.count('name="target"') == 60
    assert 'id="bulk-form"' not in wait_done(viewer, "/actors/all/?ns=ns-1").content.decode()
    job_id = re.search(r'name="walk" value="([0-9a-f]+)"', html).group(1)
    # a selection: one SUSPENDED (a00001 is ns-1, i % 3 == 1), one RUNNING (a00021? i=21: 21 % 3 == 0)
    selected = {"kind": "actors", "action": "delete-suspended", "scope": "selected", "walk": job_id}
    confirm = admin.post("/bulk/", {**selected, "target": ["actor:a00001@1", "actor:a00021@1", "actor:a00031@7"]})
    assert (
        confirm.status_code == 200 and b'id="bulk-confirm"' in confirm.content and store.client.exists("actor:a00001")
    )
    done = admin.post(
        "/bulk/", {**selected, "target": ["actor:a00001@1", "actor:a00021@1", "actor:a00031@7"], "confirm": "1"}
    )
    body = done.content.decode()
    assert "1 done, 2 skipped" in body and "is STATUS_RUNNING, not STATUS_SUSPENDED" in body
    assert "changed since you saw it: version 7, now 1" in body
    assert not store.client.exists("actor:a00001") and store.client.exists("actor:a00021", "actor:a00031") == 2
    # all matches: the other SUSPENDED actors of ns-1 go, one audit line each
    done = admin.post(
        "/bulk/", {"kind": "actors", "action": "delete-suspended", "scope": "all", "walk": job_id, "confirm": "1"}
    )
    suspended = [i for i in range(600) if i % 10 == 1 and i % 3 == 1]
    assert f"{len(suspended) - 1} done".encode() in done.content
    assert not any(store.client.exists(f"actor:a{i:05d}") for i in suspended)
    deletes = [e for e in audit_log.entries if e.get("via") == "bulk"]
    assert len(deletes) == len(suspended)
    assert admin.post("/bulk/", {**selected, "target": ["actor:a00001"]}).status_code == 400
    assert admin.post("/bulk/", {**selected, "scope": "all", "walk": "nope"}).status_code == 400
    assert viewer.post("/bulk/", {**selected, "target": ["actor:a00011@1"], "confirm": "1"}).status_code == 403


def test_bulk_has_no_preselected_action_and_refuses_none(admin, store):
    seed(store, actors=60, workers=0)
    admin.post("/actors/all/", {"ns": "ns-1"})
    html = wait_done(admin, "/actors/all/?ns=ns-1").content.decode()
    select = html[html.index('id="bulk-action"') : html.index("</select>", html.index('id="bulk-action"'))]
    assert "required" in select and '<option value="" selected>choose an action' in select
    assert select.count("selected") == 1  # only the placeholder
    job_id = re.search(r'name="walk" value="([0-9a-f]+)"', html).group(1)
    response = admin.post("/bulk/", {"kind": "actors", "action": "", "scope": "all", "walk": job_id, "confirm": "1"})
    assert response.status_code == 400 and b"No action was chosen" in response.content
    assert store.client.exists(*[f"actor:a{i:05d}" for i in range(60)]) == 60


def test_bulk_preview_counts_what_would_be_done_by_status_and_namespace(admin, store):
    seed(store, actors=300, workers=0)
    admin.post("/actors/all/", {"template": "t-1"})
    html = wait_done(admin, "/actors/all/?template=t-1").content.decode()
    job_id = re.search(r'name="walk" value="([0-9a-f]+)"', html).group(1)
    matched = [i for i in range(300) if i % 7 == 1]
    suspended = [i for i in matched if i % 3 == 1]
    form = {"kind": "actors", "action": "delete-suspended", "scope": "all", "walk": job_id}
    body = admin.post("/bulk/", form).content.decode()
    assert f"{len(suspended)} would be deleted" in body and f"{len(matched) - len(suspended)} skipped" in body
    assert 'id="bulk-by-status"' in body and 'id="bulk-by-namespace"' in body
    by_ns = {}
    for i in suspended:
        by_ns[f"ns-{i % 10}"] = by_ns.get(f"ns-{i % 10}", 0) + 1
    table = body[body.index('id="bulk-by-namespace"') :]
    for ns, n in by_ns.items():
        assert f'<td>{ns}</td><td class="num">{n}</td>' in table
    assert store.client.exists(*[f"actor:a{i:05d}" for i in matched]) == len(matched)  # a preview writes nothing


def test_bulk_with_nothing_to_do_offers_no_button(admin, store):
    seed(store, actors=30, workers=0)
    admin.post("/actors/all/", {"status": "RUNNING"})
    html = wait_done(admin, "/actors/all/?status=RUNNING").content.decode()
    job_id = re.search(r'name="walk" value="([0-9a-f]+)"', html).group(1)
    body = admin.post(
        "/bulk/", {"kind": "actors", "action": "delete-suspended", "scope": "all", "walk": job_id}
    ).content.decode()
    assert 'id="bulk-nothing"' in body and 'id="bulk-confirm"' not in body


def test_bulk_above_the_threshold_needs_the_number_typed(admin, store, settings, audit_log):
    settings.ATEDASH_CONFIRM_THRESHOLD = 10
    seed(store, actors=120, workers=0)
    admin.post("/actors/all/", {"status": "SUSPENDED"})
    html = wait_done(admin, "/actors/all/?status=SUSPENDED").content.decode()
    job_id = re.search(r'name="walk" value="([0-9a-f]+)"', html).group(1)
    form = {"kind": "actors", "action": "delete-suspended", "scope": "all", "walk": job_id}
    response = admin.post("/bulk/", form)
    preview = response.content.decode()
    assert response.status_code == 200 and 'id="bulk-typed"' in preview
    assert "type their number, <strong>40</strong>" in preview
    # the replay of the confirmation without the number, or with another, changes nothing
    for typed in (None, "39", "forty", ""):
        data = {**form, "confirm": "1", **({"typed": typed} if typed is not None else {})}
        response = admin.post("/bulk/", data)
        assert response.status_code == 400 and b"Type 40, the number of records" in response.content
        assert store.client.exists(*[f"actor:a{i:05d}" for i in range(1, 120, 3)]) == 40
    done = admin.post("/bulk/", {**form, "confirm": "1", "typed": "40"})
    assert b"40 done, 0 skipped" in done.content
    assert store.client.exists(*[f"actor:a{i:05d}" for i in range(1, 120, 3)]) == 0


def test_bulk_on_this_page(admin, store):
    seed(store, actors=30, workers=0)
    admin.post("/actors/all/", {"status": "SUSPENDED"})
    html = wait_done(admin, "/actors/all/?status=SUSPENDED").content.decode()
    assert html.count('name="page_target"') == 10 and 'id="bulk-page"' in html
    targets = re.findall(r'name="page_target" value="([^"]+)"', html)
    job_id = re.search(r'name="walk" value="([0-9a-f]+)"', html).group(1)
    form = {"kind": "actors", "action": "delete-suspended", "scope": "page", "walk": job_id, "page_target": targets}
    # a key of another kind is refused before anything is read or written
    refused = admin.post("/bulk/", {**form, "page_target": ["worker:a:b:c@1"]})
    assert refused.status_code == 400 and b"is not an actor key" in refused.content
    assert b"10 would be deleted" in admin.post("/bulk/", form).content
    assert b"10 done" in admin.post("/bulk/", {**form, "confirm": "1"}).content


def test_export_of_the_matches_is_the_backup_format(viewer, store, audit_log):
    import json

    seed(store, actors=50, workers=0)
    assert viewer.get("/actors/all/export/?ns=ns-3").status_code == 404  # no walk yet
    viewer.post("/actors/all/", {"ns": "ns-3"})
    html = wait_done(viewer, "/actors/all/?ns=ns-3").content.decode()
    assert 'href="/actors/all/export/?ns=ns-3"' in html
    response = viewer.get("/actors/all/export/?ns=ns-3")
    assert response.status_code == 200 and "attachment" in response["Content-Disposition"]
    lines = [json.loads(line) for line in b"".join(response.streaming_content).splitlines()]
    assert sorted(x["key"] for x in lines) == [f"actor:a{i:05d}" for i in range(3, 50, 10)]
    assert all(x["record"]["actorTemplateNamespace"] == "ns-3" and x["encoding"] == "json" for x in lines)
    assert any(e["action"] == "export" and e.get("records") == 5 for e in audit_log.entries)
    assert not any(
        e["action"] == "export" for _, e in current_app().store.dashboard().recent_audit()
    )  # a read: not in the stream


def test_export_of_the_matches_is_bounded_like_the_backup(viewer, store):
    seed(store, actors=20, workers=0)
    viewer.post("/actors/all/", {"ns": "ns-3"})
    wait_done(viewer, "/actors/all/?ns=ns-3")
    held = viewer.get("/actors/all/export/?ns=ns-3")  # not read yet: it holds its lease
    assert held.status_code == 200
    refused = viewer.get("/actors/all/export/?ns=ns-3")
    assert refused.status_code == 429, refused.content[:300]
    held.close()  # the lease goes with the response
    again = viewer.get("/actors/all/export/?ns=ns-3")
    assert again.status_code == 200
    b"".join(again.streaming_content)
