"""Three-way merge on edit (issue 12): the form carries the values it was read at, signed; a change saved
meanwhile to other fields is kept, not reverted; real conflicts are decided field by field, and nothing is
written until they are."""

import re
from html import unescape

import pytest

from atedash.records.merge import BadBase, merge, read_base, sign_base
from storage.ateapi_pb2 import Actor, Worker

MERGE_FORM = re.compile(r'<form[^>]*id="merge-form"[^>]*>(.*?)</form>', re.S)
EDIT_FORM = re.compile(r'<form[^>]*id="(?:actor|worker)-edit-form"[^>]*>(.*?)</form>', re.S)


def test_merge_rules():
    base = {"ip": "1", "snap": "a", "status": "RUNNING", "ns": "x"}
    stored = {"ip": "2", "snap": "a", "status": "SUSPENDED", "ns": "x"}
    mine = {"ip": "1", "snap": "b", "status": "RESUMING", "ns": "x"}
    result = merge(base, stored, mine)
    assert result.values == {"ip": "2", "snap": "b", "status": "SUSPENDED", "ns": "x"}
    assert (result.kept, result.applied, result.conflicts) == (["ip"], ["snap"], ["status"])
    # The same change on both sides is no conflict; without a base every difference is one.
    assert merge(base, {**stored, "status": "RESUMING"}, mine).conflicts == []
    assert merge(None, stored, mine).conflicts == ["ip", "snap", "status"]


def test_signed_base_refuses_tampering_and_other_records():
    token = sign_base("actor:a", 3, {"f": "v"}, {"g": ("old", "mine")})
    base = read_base(token, "actor:a")
    assert (base.version, base.values, base.decide) == (3, {"f": "v"}, {"g": ("old", "mine")})
    with pytest.raises(BadBase):
        read_base(token, "actor:b")
    for bad in ("", "x", token[:-2] + "AA", token.replace(":", "!", 1)):
        with pytest.raises(BadBase):
            read_base(bad, "actor:a")


def _form(html, form_re=EDIT_FORM):
    body = form_re.search(html).group(1)
    fields = {}
    for tag in re.findall(r"<(?:input|select|textarea)[^>]*>", body):
        name = re.search(r'name="([^"]*)"', tag)
        if not name or 'type="radio"' in tag:
            continue
        value = re.search(r'value="([^"]*)"', tag)
        fields[unescape(name.group(1))] = unescape(value.group(1)) if value else ""
    for name, options in re.findall(r'<select name="([^"]*)"[^>]*>(.*?)</select>', body, re.S):
        chosen = re.search(r'<option value="([^"]*)" selected', options)
        fields[name] = chosen.group(1) if chosen else ""
    return fields


@pytest.fixture
def actor(store):
    store.create_actor(
        Actor(actor_id="m-1", actor_template_namespace="team-a", actor_template_name="web", ateom_pod_ip="10.0.0.5")
    )
    return store.get_actor("m-1")


def _someone_else(store, **changes):
    current = store.get_actor("m-1")
    for name, value in changes.items():
        setattr(current, name, value)
    store.update_actor(current, current.version)
    return current


def test_changes_to_other_fields_are_merged_not_reverted(editor, actor, store, page_html, audit_log):
    form = _form(page_html(editor.get("/actors/m-1/edit/")))
    assert form["version"] == "1" and form["base"]
    _someone_else(store, ateom_pod_ip="10.0.0.77")  # version 2
    response = editor.post("/actors/m-1/edit/", {**form, "last_snapshot": "gs://b/1"})
    assert response.status_code == 302
    stored = store.get_actor("m-1")
    assert (stored.version, stored.ateom_pod_ip, stored.last_snapshot) == (3, "10.0.0.77", "gs://b/1")
    said = page_html(editor.get(response["Location"]))
    assert "saved (version 3)" in said and "merged with version 2" in said
    assert "kept Ateom pod IP" in said and "applied your Last snapshot" in said
    entry = audit_log.entries[-1]
    assert (entry["version_before"], entry["version_after"]) == (2, 3)
    assert entry["changed_fields"] == {"last_snapshot": ["", "gs://b/1"]}


def test_a_real_conflict_is_decided_field_by_field_and_nothing_is_written_before(editor, actor, store, page_html):
    form = _form(page_html(editor.get("/actors/m-1/edit/")))
    _someone_else(store, ateom_pod_ip="10.0.0.77")
    response = editor.post("/actors/m-1/edit/", {**form, "ateom_pod_ip": "10.0.0.9", "last_snapshot": "gs://b/1"})
    assert response.status_code == 409
    body = page_html(response)
    row = re.search(r'<tr[^>]*data-field="ateom_pod_ip"[^>]*>(.*?)</tr>', body, re.S)
    assert 'class="row-conflict"' in row.group(0)
    assert [c.strip() for c in re.findall(r"<td[^>]*>(?:<code>)?([^<]*)", row.group(1))[:3]] == [
        "10.0.0.5",
        "10.0.0.77",
        "10.0.0.9",
    ]
    assert store.get_actor("m-1").version == 2  # nothing written
    resolve = _form(body, MERGE_FORM)
    # Sent without a decision: asked again, still nothing written.
    again = editor.post("/actors/m-1/edit/", resolve)
    assert again.status_code == 409 and 'data-field="ateom_pod_ip"' in page_html(again)
    assert store.get_actor("m-1").version == 2
    # Decided for mine: both the decision and the unconflicting change are saved.
    response = editor.post("/actors/m-1/edit/", {**resolve, "ateom_pod_ip": "10.0.0.9"})
    assert response.status_code == 302
    stored = store.get_actor("m-1")
    assert (stored.version, stored.ateom_pod_ip, stored.last_snapshot) == (3, "10.0.0.9", "gs://b/1")


def test_deciding_for_the_stored_value_keeps_it(editor, actor, store, page_html):
    form = _form(page_html(editor.get("/actors/m-1/edit/")))
    _someone_else(store, ateom_pod_ip="10.0.0.77")
    body = page_html(editor.post("/actors/m-1/edit/", {**form, "ateom_pod_ip": "10.0.0.9"}))
    resolve = _form(body, MERGE_FORM)
    assert editor.post("/actors/m-1/edit/", {**resolve, "ateom_pod_ip": "10.0.0.77"}).status_code == 302
    assert store.get_actor("m-1").ateom_pod_ip == "10.0.0.77"


def test_a_tampered_or_borrowed_base_writes_nothing(editor, actor, store, page_html):
    store.create_actor(Actor(actor_id="m-2", actor_template_namespace="team-a", actor_template_name="web"))
    form = _form(page_html(editor.get("/actors/m-1/edit/")))
    other = _form(page_html(editor.get("/actors/m-2/edit/")))
    for base in (form["base"][:-3] + "xyz", other["base"], "garbage\x00"):
        response = editor.post("/actors/m-1/edit/", {**form, "base": base, "last_snapshot": "x"})
        assert response.status_code == 400
        assert "form was changed" in page_html(response)
    assert store.get_actor("m-1").version == 1


def test_worker_edits_merge_too(editor, store, page_html):
    store.create_worker(Worker(worker_namespace="ns", worker_pool="pool", worker_pod="w-1"))
    form = _form(page_html(editor.get("/workers/ns/pool/w-1/edit/")))
    current = store.get_worker("ns", "pool", "w-1")
    current.actor_template = "tpl"
    store.update_worker(current, current.version)
    confirmed = {**form, "actor_id": "a-1", "save_despite_findings": "on"}  # a-1 does not exist
    assert editor.post("/workers/ns/pool/w-1/edit/", confirmed).status_code == 302
    stored = store.get_worker("ns", "pool", "w-1")
    assert (stored.version, stored.actor_template, stored.actor_id) == (3, "tpl", "a-1")
