"""Actors: list with filters and paging, detail, create, version-checked edit with conflicts, delete."""

import html
import re

import pytest

from storage.ateapi_pb2 import Actor

RUNNING = "STATUS_RUNNING"


def ids_in(body):
    return re.findall(r'data-actor-id="([^"]+)"', body)


def test_list_shows_kubectl_columns(viewer, make_actor, page_html):
    make_actor(
        "a-1",
        ns="team-a",
        template="web",
        status=RUNNING,
        ateom_pod_namespace="team-a",
        ateom_pod_name="w-1",
        ateom_pod_ip="10.0.0.7",
        last_snapshot="gs://snap/1",
    )
    response = viewer.get("/actors/")
    assert response.status_code == 200
    body = page_html(response)
    for column in (
        "Template namespace",
        "Template",
        "Id",
        "Status",
        "Ateom pod",
        "Ateom IP",
        "Version",
        "Last snapshot",
    ):
        assert f">{column}</th>" in body
    row = re.search(r'<tr data-actor-id="a-1">(.*?)</tr>', body, re.S).group(1)
    for value in ("team-a", "web", "RUNNING", "team-a/w-1", "10.0.0.7", ">2<", "gs://snap/1", 'href="/actors/a-1/"'):
        assert value in row


def test_list_empty_store(viewer, page_html):
    body = page_html(viewer.get("/actors/"))
    assert "No actors" in body and "End of list" in body


def test_filters(viewer, make_actor, page_html):
    make_actor("alpha-1", ns="team-a", template="web", status=RUNNING)
    make_actor("alpha-2", ns="team-b", template="web")
    make_actor("beta-1", ns="team-a", template="batch")
    assert sorted(ids_in(page_html(viewer.get("/actors/?status=RUNNING")))) == ["alpha-1"]
    assert sorted(ids_in(page_html(viewer.get("/actors/?status=SUSPENDED")))) == ["alpha-2", "beta-1"]
    assert sorted(ids_in(page_html(viewer.get("/actors/?ns=team-a")))) == ["alpha-1", "beta-1"]
    assert sorted(ids_in(page_html(viewer.get("/actors/?template=web")))) == ["alpha-1", "alpha-2"]
    assert sorted(ids_in(page_html(viewer.get("/actors/?q=pha")))) == ["alpha-1", "alpha-2"]
    assert sorted(ids_in(page_html(viewer.get("/actors/?q=alpha&ns=team-b")))) == ["alpha-2"]
    # The filter form shows what is applied.
    body = page_html(viewer.get("/actors/?status=RUNNING&q=pha"))
    assert '<option value="RUNNING" selected>' in body and 'value="pha"' in body


def test_bad_filter_values_fall_back_to_defaults(viewer, make_actor, page_html):
    make_actor("a-1")
    response = viewer.get("/actors/?status=BOGUS&size=7&refresh=9")
    assert response.status_code == 200
    assert ids_in(page_html(response)) == ["a-1"]


def test_paging_through_the_cursor_visits_every_actor_once(viewer, make_actor, page_html):
    for i in range(60):
        make_actor(f"p-{i:03d}")
    seen = []
    url = "/actors/?size=25"
    pages = 0
    while url:
        body = page_html(viewer.get(url))
        seen += ids_in(body)
        pages += 1
        assert len(ids_in(body)) <= 25
        match = re.search(r'id="next-page"[^>]*href="([^"]+)"|href="([^"]+)"[^>]*id="next-page"', body)
        url = None
        if match:
            url = "/actors/" + (match.group(1) or match.group(2)).replace("&amp;", "&")
            assert "size=25" in url and "cursor=" in url
            assert 'id="first-page"' in page_html(viewer.get(url))
    assert sorted(seen) == [f"p-{i:03d}" for i in range(60)]
    assert pages >= 3


def test_page_size_choice(viewer, make_actor, page_html):
    for i in range(30):
        make_actor(f"s-{i:03d}")
    assert len(ids_in(page_html(viewer.get("/actors/?size=25")))) == 25
    assert len(ids_in(page_html(viewer.get("/actors/?size=50")))) == 30
    assert '<option value="100" selected>' in page_html(viewer.get("/actors/?size=100"))


def test_invalid_cursor_is_a_400_page_linking_to_the_first_page(viewer, make_actor, page_html):
    make_actor("c-1")
    response = viewer.get("/actors/?size=25&status=RUNNING&cursor=not-a-cursor")
    assert response.status_code == 400
    body = response.content.decode()
    assert "This page link is not valid" in body and ids_in(body) == []
    # The first page of the same list, filters kept, cursor dropped.
    assert 'href="/actors/?size=25&amp;status=RUNNING" id="first-page"' in body
    assert ids_in(page_html(viewer.get("/actors/?size=25"))) == ["c-1"]


def test_budget_exhausted_offers_continue(viewer, make_actor, settings, page_html, store):
    for i in range(30):
        store.client.set(f"other:{i}", b"x")
    make_actor("needle-1")
    settings.ATEDASH_SCAN_BUDGET = 5
    body = page_html(viewer.get("/actors/?q=needle"))
    found = ids_in(body)
    steps = 0
    while not found:
        match = re.search(r'href="([^"]+)"[^>]*id="continue-scan"', body)
        assert match, "a walk stopped on its budget must offer to continue"
        assert re.search(r"scanned \d+ of about \d+ keys", body)
        body = page_html(viewer.get("/actors/" + match.group(1).replace("&amp;", "&")))
        found = ids_in(body)
        steps += 1
        assert steps < 100
    assert found == ["needle-1"]


def test_htmx_request_gets_the_table_only(viewer, make_actor, page_html):
    make_actor("h-1")
    response = viewer.get("/actors/?q=h-", headers={"HX-Request": "true"})
    body = page_html(response)
    assert response.status_code == 200
    assert "<html" not in body and 'id="actors-results"' in body and ids_in(body) == ["h-1"]
    assert "HX-Request" in response["Vary"]
    # Without HTMX (JavaScript off) the same URL is the full page.
    full = page_html(viewer.get("/actors/?q=h-"))
    assert "<html" in full and 'id="actor-filters"' in full


def test_auto_refresh_is_opt_in(viewer, page_html):
    assert 'hx-trigger="every 5s"' not in page_html(viewer.get("/actors/"))
    body = page_html(viewer.get("/actors/?refresh=5"))
    assert 'hx-trigger="every 5s"' in body
    assert 'id="id_refresh" checked' in body


def test_corrupt_record_is_a_flagged_row(viewer, make_actor, store, page_html):
    make_actor("good-1")
    store.client.set("actor:bad-1", b"<script>alert(1)</script>\x00\xff")
    response = viewer.get("/actors/")
    assert response.status_code == 200
    body = page_html(response)
    assert 'class="row-corrupt" data-key="actor:bad-1"' in body
    assert "<script>alert(1)</script>" not in body
    assert "&lt;script&gt;" in body
    assert ids_in(body) == ["good-1"]


def test_detail_shows_fields_json_key_slot_node(viewer, make_actor, store, page_html):
    import storage

    make_actor("d-1", ns="team-a", template="web", status=RUNNING, last_snapshot="gs://s/1")
    response = viewer.get("/actors/d-1/")
    assert response.status_code == 200
    body = page_html(response)
    raw = store.get_raw("actor:d-1")
    assert 'id="record-key">actor:d-1<' in body
    assert f'id="record-slot">{storage.key_slot("actor:d-1")}<' in body
    assert f'id="record-node">{raw.node}<' in body
    assert "&quot;actorId&quot;: &quot;d-1&quot;" in body  # pretty JSON, escaped
    assert 'id="field-status"' in body and "RUNNING" in body
    assert 'id="lock-free"' in body


def test_detail_of_binary_record_is_decoded(viewer, store, page_html):
    actor = Actor(
        actor_id="bin-1",
        version=3,
        actor_template_namespace="ns",
        actor_template_name="t",
        status=Actor.Status.Value("STATUS_SUSPENDED"),
    )
    store.client.set("actor:bin-1", actor.SerializeToString())
    body = page_html(viewer.get("/actors/bin-1/"))
    assert "binary" in body and "&quot;actorId&quot;: &quot;bin-1&quot;" in body


def test_detail_worker_points_back_or_not(viewer, make_actor, make_worker, page_html):
    make_worker(
        namespace="team-a", pool="small", pod="w-1", actor_id="d-1", actor_namespace="team-a", actor_template="web"
    )
    make_worker(namespace="team-a", pool="small", pod="w-2", actor_id="someone-else")
    make_actor("d-1", status=RUNNING, ateom_pod_namespace="team-a", ateom_pod_name="w-1")
    make_actor("d-2", status=RUNNING, ateom_pod_namespace="team-a", ateom_pod_name="w-2")
    make_actor("d-3", status=RUNNING, ateom_pod_namespace="team-a", ateom_pod_name="w-gone")
    body = page_html(viewer.get("/actors/d-1/"))
    assert 'href="/workers/team-a/small/w-1/"' in body and "points back at this actor" in body
    body = page_html(viewer.get("/actors/d-2/"))
    assert 'href="/workers/team-a/small/w-2/"' in body and "points at another actor" in body
    body = page_html(viewer.get("/actors/d-3/"))
    assert 'id="worker-missing"' in body


def test_detail_shows_lock_with_token_and_ttl(viewer, admin, make_actor, store, page_html):
    make_actor("l-1")
    store.acquire_lock("lock:actor:l-1", "holder-42", 300)
    body = page_html(viewer.get("/actors/l-1/"))
    assert 'id="lock-token">holder-42<' in body
    assert re.search(r'id="lock-ttl">(4 min \d+ s|5 min 0 s)<', body)
    assert 'id="release-lock"' not in body
    assert 'id="release-lock"' in page_html(admin.get("/actors/l-1/"))


def test_detail_of_corrupt_record(viewer, store, page_html):
    store.client.set("actor:bad-2", b"garbage{")
    response = viewer.get("/actors/bad-2/")
    assert response.status_code == 200
    body = page_html(response)
    assert 'id="corrupt-record"' in body and "garbage{" in body


def test_missing_actor_is_404(viewer, editor):
    assert viewer.get("/actors/nope/").status_code == 404
    for url in ("/actors/nope/edit/", "/actors/nope/delete/"):
        assert editor.get(url).status_code == 404
    assert editor.post("/actors/nope/delete/").status_code == 404


# --- create ----------------------------------------------------------------------------------


def test_create_actor(editor, store, audit_log, page_html):
    response = editor.post(
        "/actors/new/", {"actor_id": "new-1", "actor_template_namespace": "team-a", "actor_template_name": "web.v2"}
    )
    assert response.status_code == 302 and response["Location"] == "/actors/new-1/"
    actor = store.get_actor("new-1")
    assert actor.status == Actor.Status.Value("STATUS_SUSPENDED") and actor.version == 1
    assert actor.actor_template_name == "web.v2"
    assert audit_log.entries[-1]["action"] == "actor.create"
    assert "created" in page_html(editor.get("/actors/new-1/"))


def test_create_existing_id_errors_on_the_id_field(editor, make_actor, page_html):
    make_actor("dup-1")
    response = editor.post(
        "/actors/new/", {"actor_id": "dup-1", "actor_template_namespace": "team-a", "actor_template_name": "web"}
    )
    assert response.status_code == 409
    body = page_html(response)
    field = re.search(r'id="field-actor_id">(.*?)</div>', body, re.S).group(1)
    assert "already exists" in field


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("actor_id", "Upper"),
        ("actor_id", "a" * 64),
        ("actor_id", "-x"),
        ("actor_id", "a.b"),
        ("actor_template_namespace", "bad_ns"),
        ("actor_template_name", "Web"),
        ("actor_id", ""),
    ],
)
def test_create_validation(editor, store, field, value):
    data = {"actor_id": "ok-1", "actor_template_namespace": "team-a", "actor_template_name": "web"}
    data[field] = value
    response = editor.post("/actors/new/", data)
    assert response.status_code == 400
    assert store.scan_actors().records == []


def test_viewer_cannot_create(viewer, store):
    response = viewer.post(
        "/actors/new/", {"actor_id": "v-1", "actor_template_namespace": "a", "actor_template_name": "b"}
    )
    assert response.status_code == 403
    assert store.scan_actors().records == []


# --- edit ------------------------------------------------------------------------------------


def edit_data(actor, **changes):
    data = {
        "version": actor.version,
        "actor_id": actor.actor_id,
        "actor_template_namespace": actor.actor_template_namespace,
        "actor_template_name": actor.actor_template_name,
        "status": Actor.Status.Name(actor.status).removeprefix("STATUS_"),
        "ateom_pod_namespace": actor.ateom_pod_namespace,
        "ateom_pod_name": actor.ateom_pod_name,
        "ateom_pod_ip": actor.ateom_pod_ip,
        "last_snapshot": actor.last_snapshot,
        "in_progress_snapshot": actor.in_progress_snapshot,
    }
    data.update(changes)
    return data


def test_edit_form_carries_the_version_and_read_only_identity(editor, make_actor, page_html):
    actor = make_actor("e-1", status=RUNNING)
    body = page_html(editor.get("/actors/e-1/edit/"))
    assert f'name="version" value="{actor.version}"' in body
    assert re.search(r'name="actor_id"[^>]*readonly|readonly[^>]*name="actor_id"', body)


def test_edit_saves_with_the_version(editor, make_actor, store, audit_log):
    actor = make_actor("e-1")
    response = editor.post(
        "/actors/e-1/edit/",
        edit_data(actor, status="RUNNING", ateom_pod_namespace="team-a", ateom_pod_name="w-1", ateom_pod_ip="fd00::1"),
    )
    assert response.status_code == 302
    stored = store.get_actor("e-1")
    assert stored.version == actor.version + 1
    assert stored.status == Actor.Status.Value(RUNNING) and stored.ateom_pod_ip == "fd00::1"
    entry = audit_log.entries[-1]
    assert entry["action"] == "actor.update" and entry["to_version"] == actor.version + 1


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("status", "RUNNINGISH"),
        ("ateom_pod_ip", "10.0.0.300"),
        ("ateom_pod_ip", "not-ip"),
        ("ateom_pod_name", "Pod_1"),
        ("ateom_pod_namespace", "x" * 64),
        ("version", "abc"),
    ],
)
def test_edit_validation(editor, make_actor, store, field, value):
    actor = make_actor("e-1")
    response = editor.post("/actors/e-1/edit/", edit_data(actor, **{field: value}))
    assert response.status_code == 400
    assert store.get_actor("e-1").version == actor.version


@pytest.mark.parametrize(
    ("field", "value"),
    [("actor_id", "other"), ("actor_template_namespace", "team-z"), ("actor_template_name", "other")],
)
def test_edit_rechecks_immutable_fields_on_the_server(editor, make_actor, store, field, value, page_html):
    actor = make_actor("e-1")
    response = editor.post("/actors/e-1/edit/", edit_data(actor, **{field: value}, status="RUNNING"))
    assert response.status_code == 400
    assert "cannot change" in page_html(response)
    stored = store.get_actor("e-1")
    assert stored.version == actor.version and stored.status == actor.status


def test_edit_conflict_shows_base_stored_and_mine_and_writes_only_what_was_decided(
    editor, make_actor, store, page_html
):
    actor = make_actor("c-1")
    form = edit_data(actor, status="RUNNING", last_snapshot="mine")  # a form without a base: only its version
    # Someone else saves first.
    other = store.get_actor("c-1")
    other.last_snapshot = "theirs"
    store.update_actor(other, other.version)
    response = editor.post("/actors/c-1/edit/", form)
    assert response.status_code == 409
    body = page_html(response)
    assert f'id="stored-version">{other.version}<' in body
    row = re.search(r'<tr class="row-conflict" data-field="last_snapshot">(.*?)</tr>', body, re.S).group(1)
    assert "theirs" in row and "mine" in row
    assert store.get_actor("c-1").last_snapshot == "theirs"  # nothing overwritten
    # The merge form carries the new version and the values to decide between.
    merge_form = re.search(r'<form[^>]*id="merge-form">(.*?)</form>', body, re.S).group(1)
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', merge_form))
    assert fields["version"] == str(other.version) and "last_snapshot" not in fields
    assert 'id="mine-last_snapshot"' in merge_form and 'id="keep-last_snapshot"' in merge_form
    assert 'id="discard-button"' in body and 'href="/actors/c-1/"' in body
    fields = {k: html.unescape(v) for k, v in fields.items()}
    undecided = editor.post("/actors/c-1/edit/", fields)
    assert undecided.status_code == 409 and store.get_actor("c-1").version == other.version
    response = editor.post("/actors/c-1/edit/", {**fields, "last_snapshot": "mine", "status": "RUNNING"})
    assert response.status_code == 302
    stored = store.get_actor("c-1")
    assert stored.last_snapshot == "mine" and stored.version == other.version + 1


def test_the_merge_view_names_who_saved_the_other_version_and_when(editor, admin, make_actor, store, page_html):
    actor = make_actor("c-2")
    # The other version saved through atedash, by admin: its audit entry names them.
    saved = admin.post("/actors/c-2/edit/", edit_data(actor, last_snapshot="admin-was-here"))
    assert saved.status_code == 302
    body = page_html(editor.post("/actors/c-2/edit/", edit_data(actor, last_snapshot="mine")))
    other = re.search(r'<p id="conflict-other">(.*?)</p>', body, re.S).group(1)
    assert f"Version {actor.version + 1} was saved by" in other and 'id="other-who">admin<' in other
    assert re.search(r'id="other-when" datetime="\d{4}-\d\d-\d\dT[^"]+">', other)
    # Saved by the ate server (no audit entry): said so.
    current = store.get_actor("c-2")
    current.last_snapshot = "server"
    store.update_actor(current, current.version)
    body = page_html(editor.post("/actors/c-2/edit/", edit_data(actor, last_snapshot="mine")))
    other = re.search(r'<p id="conflict-other">(.*?)</p>', body, re.S).group(1)
    assert "has no entry in atedash's audit" in html.unescape(other) and "ate server" in other


def test_edit_of_corrupt_record_is_an_error_page(editor, store):
    store.client.set("actor:bad-3", b"\xff\xfe")
    response = editor.get("/actors/bad-3/edit/")
    assert response.status_code == 422
    assert b"corrupt" in response.content


def test_viewer_cannot_edit(viewer, make_actor, store):
    actor = make_actor("v-1")
    assert viewer.get("/actors/v-1/edit/").status_code == 403
    assert viewer.post("/actors/v-1/edit/", edit_data(actor, status="RUNNING")).status_code == 403
    assert store.get_actor("v-1").version == actor.version


# --- delete ----------------------------------------------------------------------------------


def test_delete_suspended_actor_after_confirmation(editor, make_actor, store, audit_log, page_html):
    import storage

    make_actor("x-1")
    body = page_html(editor.get("/actors/x-1/delete/"))
    assert 'id="confirm-delete"' in body and "disabled" not in re.search(
        r"<button[^>]*confirm-delete[^>]*>", body
    ).group(0)
    response = editor.post("/actors/x-1/delete/")
    assert response.status_code == 302 and response["Location"] == "/actors/"
    with pytest.raises(storage.NotFound):
        store.get_actor("x-1")
    assert audit_log.entries[-1]["action"] == "actor.delete"


def test_delete_is_refused_unless_suspended(editor, make_actor, store, page_html):
    make_actor("x-2", status=RUNNING)
    detail = page_html(editor.get("/actors/x-2/"))
    assert re.search(r'<button[^>]*disabled[^>]*id="delete-actor"', detail)
    assert "Only a SUSPENDED actor can be deleted" in detail
    page = page_html(editor.get("/actors/x-2/delete/"))
    assert re.search(r"<button[^>]*disabled[^>]*id=\"confirm-delete\"", page)
    response = editor.post("/actors/x-2/delete/")  # the server enforces it too
    assert response.status_code == 409
    assert "SUSPENDED" in page_html(response) or "suspended" in page_html(response)
    assert store.get_actor("x-2").status == Actor.Status.Value(RUNNING)


def test_viewer_cannot_delete(viewer, make_actor, store):
    make_actor("x-3")
    assert viewer.post("/actors/x-3/delete/").status_code == 403
    assert store.get_actor("x-3")


def test_actor_with_a_status_number_unknown_to_the_schema(editor, store, page_html):
    store.client.set("actor:future-1", b'{"actorId":"future-1","version":"4","status":9}')
    assert editor.get("/actors/").status_code == 200
    body = page_html(editor.get("/actors/future-1/"))
    assert 'id="field-status"' in body and "9" in body
    assert editor.get("/actors/future-1/edit/").status_code == 200


def test_a_huge_field_is_clipped_on_the_list_and_detail_pages(viewer, make_actor, page_html):
    huge = "s" * 5_000_000
    make_actor("huge", last_snapshot=huge)
    listing = viewer.get("/actors/")
    assert listing.status_code == 200 and len(listing.content) < 200_000
    assert "more characters not shown" in page_html(listing)
    detail = viewer.get("/actors/huge/")
    assert detail.status_code == 200 and len(detail.content) < 600_000
    assert "4,995,904 more characters not shown" in page_html(detail)
