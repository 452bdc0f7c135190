"""atedash's dashboard next to the Go store (the seed's ateredis behind `ateref`) on the test cluster.

Every dashboard action (create, edit, raw edit, canonical repair, raw delete, import) leaves records the
Go store reads equal, and after each the Go store's ListActors and ListWorkers succeed; what the Go store
writes the dashboard shows equal, unflagged; an update drops a TTL on both sides alike.
"""

from __future__ import annotations

import base64
import io
from urllib.parse import urlencode

import pytest
from django.core.management import call_command
from django.test import Client
from google.protobuf import json_format
from test_roundtrip import assert_go_lists_the_store, go_actor, go_worker, protojson

from atedash.core.app import current_app
from storage import server_read_error
from storage.ateapi_pb2 import Actor, Worker

PASSWORD = "interop-pass-1"


@pytest.fixture
def dash(settings, redis_url, store, tmp_path):
    """Django clients (editor, admin) on the test cluster, as tests/dashboard sets them up."""
    settings.ATEDASH_REDIS_URL = redis_url
    settings.ATEDASH_REDIS_CLUSTER = "auto"
    settings.ATEDASH_ENVIRONMENT = "interop"
    settings.ATEDASH_USERS_FILE = tmp_path / "operators.json"
    settings.ATEDASH_TRUSTED_HEADER = ""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    clients = {}
    for role in ("editor", "admin"):
        current_app().users.add(role, role, PASSWORD)
        client = Client()
        assert client.post("/login/", {"username": role, "password": PASSWORD}).status_code == 302
        clients[role] = client
    return clients


def raw(path, key):
    return f"/records/raw/{path}?{urlencode({'key': key})}"


def b64(value: bytes) -> str:
    return base64.b64encode(value).decode()


def lists_ok(ateref, store):
    assert_go_lists_the_store(ateref, store)
    for key, value in store.iter_raw():
        assert server_read_error(key, value) is None, (key, value)


def test_dashboard_create_and_edit_the_go_store_reads_equal(dash, store, ateref):
    editor = dash["editor"]
    response = editor.post(
        "/actors/new/", {"actor_id": "a1", "actor_template_namespace": "team-a", "actor_template_name": "web"}
    )
    assert response.status_code == 302
    response = editor.post(
        "/workers/new/",
        {"worker_namespace": "team-a", "worker_pool": "small", "worker_pod": "w-1", "ip": "10.0.0.1"},
    )
    assert response.status_code == 302
    assert go_actor(ateref.one("get-actor", "a1")) == store.get_actor("a1")
    assert go_worker(ateref.one("get-worker", "team-a", "small", "w-1")) == store.get_worker("team-a", "small", "w-1")
    lists_ok(ateref, store)

    edit = {
        "version": 1,
        "actor_id": "a1",
        "actor_template_namespace": "team-a",
        "actor_template_name": "web",
        "status": "RUNNING",
        "ateom_pod_namespace": "team-a",
        "ateom_pod_name": "w-1",
        "ateom_pod_ip": "10.0.0.1",
        "last_snapshot": "snap-1",
        "in_progress_snapshot": "",
        "save_despite_findings": "on",  # running on w-1 before w-1 claims it: confirmed (issue 20)
    }
    assert editor.post("/actors/a1/edit/", edit).status_code == 302
    worker_edit = {
        "version": 1,
        "worker_namespace": "team-a",
        "worker_pool": "small",
        "worker_pod": "w-1",
        "ip": "10.0.0.1",
        "actor_namespace": "team-a",
        "actor_template": "web",
        "actor_id": "a1",
    }
    assert editor.post("/workers/team-a/small/w-1/edit/", worker_edit).status_code == 302
    got = go_actor(ateref.one("get-actor", "a1"))
    assert got == store.get_actor("a1") and got.version == 2 and got.status == Actor.STATUS_RUNNING
    got = go_worker(ateref.one("get-worker", "team-a", "small", "w-1"))
    assert got == store.get_worker("team-a", "small", "w-1") and got.actor_id == "a1"
    lists_ok(ateref, store)


def test_go_writes_the_dashboard_shows_equal_and_unflagged(dash, store, ateref):
    actor = Actor(actor_id="g1", actor_template_namespace="ns", actor_template_name="t", status=Actor.STATUS_RUNNING)
    assert ateref.one("create-actor", protojson(actor)) == "OK"
    worker = Worker(worker_namespace="ns", worker_pool="p", worker_pod="w", ip="10.0.0.9", actor_id="g1")
    assert ateref.one("create-worker", protojson(worker)) == "OK"
    page = dash["editor"].get("/actors/g1/").content.decode()
    assert 'id="unreadable-record"' not in page and 'id="field-status"><span class="status' in page
    assert store.get_actor("g1") == go_actor(ateref.one("get-actor", "g1"))
    listing = dash["editor"].get("/actors/").content.decode()
    assert 'data-actor-id="g1">' in listing and "row-unreadable" not in listing
    assert "row-unreadable" not in dash["editor"].get("/workers/").content.decode()


def test_raw_edit_repair_and_delete_leave_a_store_the_go_server_lists(dash, store, ateref):
    editor, admin = dash["editor"], dash["admin"]
    store.create_actor(Actor(actor_id="ok", actor_template_namespace="ns", actor_template_name="t"))
    lists_ok(ateref, store)

    # Raw edit: a record the server cannot read (its list fails), mended as JSON text.
    broken = b'{"actorId":"r1","status":"STATUS_PAUSED","futureField":[1]}'
    store.client.set("actor:r1", broken)
    assert ateref.one("list-actors").startswith("ERR ")
    fixed = '{"actorId":"r1","version":"5","status":"STATUS_SUSPENDED","lastSnapshot":"s"}'
    response = editor.post(raw("", "actor:r1"), {"shown": b64(broken), "value": fixed, "save": "1"})
    assert response.status_code == 302
    assert go_actor(ateref.one("get-actor", "r1")) == store.get_actor("r1")
    assert store.get_actor("r1").version == 5
    lists_ok(ateref, store)

    # Canonical repair: binary with an unknown field, then proto names and numbers.
    binary = Actor(actor_id="r2", version=3, status=Actor.STATUS_RUNNING).SerializeToString() + b"\xa2\x06\x01z"
    store.client.set("actor:r2", binary)
    assert ateref.one("list-actors").startswith("ERR ")
    response = editor.post(raw("repair/", "actor:r2"), {"shown": b64(binary), "accept_losses": "on"})
    assert response.status_code == 302
    assert go_actor(ateref.one("get-actor", "r2")) == store.get_actor("r2")
    assert store.get_actor("r2").version == 3
    lists_ok(ateref, store)
    odd_worker = b'{ "worker_namespace": "ns", "worker_pool": "p", "worker_pod": "w", "version": 2 }'
    store.client.set("worker:ns:p:w", odd_worker)  # the server reads it; the rewrite loses nothing
    response = editor.post(raw("repair/", "worker:ns:p:w"), {"shown": b64(odd_worker)})
    assert response.status_code == 302
    assert (
        store.client.get("worker:ns:p:w") == b'{"workerNamespace":"ns","workerPool":"p","workerPod":"w","version":"2"}'
    )
    assert go_worker(ateref.one("get-worker", "ns", "p", "w")) == store.get_worker("ns", "p", "w")
    lists_ok(ateref, store)

    # Delete: keys the server cannot list, and a value it cannot read.
    store.client.set("actor:x:y", b'{"actorId":"x:y"}')
    store.client.set("worker:ns:p:bad", b"\x08\x96")
    assert ateref.one("list-actors").startswith("ERR ") and ateref.one("list-workers").startswith("ERR ")
    assert admin.post(raw("delete/", "actor:x:y"), {"shown": b64(b'{"actorId":"x:y"}')}).status_code == 302
    assert admin.post(raw("delete/", "worker:ns:p:bad"), {"shown": b64(b"\x08\x96")}).status_code == 302
    lists_ok(ateref, store)


def test_import_writes_only_what_the_go_server_reads(dash, store, ateref, tmp_path):
    store.create_actor(Actor(actor_id="a1", actor_template_namespace="ns", actor_template_name="t"))
    assert (
        ateref.one("create-worker", protojson(Worker(worker_namespace="ns", worker_pool="p", worker_pod="w"))) == "OK"
    )
    store.client.set("actor:bad", b'{"actorId":"bad","extra":true}')
    path = tmp_path / "export.jsonl"
    call_command("ate", "export", "-o", str(path), stdout=io.StringIO(), stderr=io.StringIO())
    store.debug_clear_all()
    out = io.StringIO()
    call_command("ate", "import", str(path), stdout=out)
    assert "2 were created" in out.getvalue() and "1 the ate server cannot read (not written" in out.getvalue()
    assert go_actor(ateref.one("get-actor", "a1")) == store.get_actor("a1")
    assert go_worker(ateref.one("get-worker", "ns", "p", "w")) == store.get_worker("ns", "p", "w")
    lists_ok(ateref, store)
    # --allow-unreadable restores the damaged store byte for byte: the server's list fails again.
    out = io.StringIO()
    call_command("ate", "import", str(path), "--allow-unreadable", stdout=out)
    assert "1 the ate server cannot read were written" in out.getvalue()
    assert ateref.one("list-actors").startswith("ERR ")


def test_an_update_drops_a_ttl_as_the_go_store_does(dash, store, ateref):
    for actor_id in ("by-go", "by-atedash"):
        store.create_actor(Actor(actor_id=actor_id, actor_template_namespace="ns", actor_template_name="t"))
        store.client.pexpire(f"actor:{actor_id}", 600_000)
    changed = Actor(actor_id="by-go", actor_template_namespace="ns", actor_template_name="t", last_snapshot="s")
    assert ateref.one("update-actor", json_format.MessageToJson(changed, indent=None), "1") == "OK"
    edit = {
        "version": 1,
        "actor_id": "by-atedash",
        "actor_template_namespace": "ns",
        "actor_template_name": "t",
        "status": "SUSPENDED",
        "last_snapshot": "s",
    }
    assert dash["editor"].post("/actors/by-atedash/edit/", edit).status_code == 302
    assert store.client.pttl("actor:by-go") == store.client.pttl("actor:by-atedash") == -1
    lists_ok(ateref, store)


@pytest.mark.parametrize(
    "options",
    [[], ["--include-corrupt"], ["--policy", "overwrite-if-version", "--include-corrupt"], ["--dry-run"]]
    + [["--include-corrupt", "--dry-run"], ["--allow-unreadable"], ["--include-corrupt", "--allow-unreadable"]],
    ids=lambda o: " ".join(o) or "plain",
)
def test_no_import_option_breaks_the_go_list_unless_allow_unreadable(dash, store, ateref, tmp_path, options):
    """Issue 22 item 4: --include-corrupt alone wrote a truncated value; Go's ListActors then failed
    with "unexpected EOF"."""
    store.create_actor(Actor(actor_id="a1", actor_template_namespace="ns", actor_template_name="t"))
    store.client.set("actor:trunc", b'{"actorId":"trunc","status":"STATUS_SUSP')
    store.client.set("worker:ns:p:cut", b'{"workerNamespace":"ns","workerPool":"p","workerPod":"cut"')
    store.client.set("actor:odd", b'{"actorId":"odd","extra":true}')
    assert "unexpected EOF" in ateref.one("get-actor", "trunc")
    path = tmp_path / "export.jsonl"
    call_command("ate", "export", "-o", str(path), stdout=io.StringIO(), stderr=io.StringIO())
    store.debug_clear_all()
    out = io.StringIO()
    call_command("ate", "import", str(path), *options, stdout=out, stderr=io.StringIO())
    if "--allow-unreadable" not in options:
        lists_ok(ateref, store)
        assert ateref.one("list-workers").startswith("LIST ")
        if "--dry-run" not in options:
            assert go_actor(ateref.one("get-actor", "a1")) == store.get_actor("a1")
        assert store.client.get("actor:trunc") is None and store.client.get("worker:ns:p:cut") is None
        assert "the ate server cannot read (not written; --allow-unreadable writes them)" in out.getvalue()
    else:
        assert ateref.one("list-actors").startswith("ERR ")
        assert (store.client.get("actor:trunc") is not None) == ("--include-corrupt" in options)
