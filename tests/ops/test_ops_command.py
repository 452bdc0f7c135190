"""manage.py ate: exit statuses and output formats, through call_command and a real process."""

import io
import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from django.core.management import call_command
from django.core.management.base import CommandError
from google.protobuf import json_format
from ops_helpers import RUNNING, actor, all_values, crafted_store, running_pair, worker

pytestmark = pytest.mark.usefixtures("ops_settings")
REPO = Path(__file__).resolve().parents[2]


def run(*args, stdin=None):
    out, err = io.StringIO(), io.StringIO()
    kwargs = {"stdout": out, "stderr": err}
    if stdin is not None:
        kwargs["stdin"] = stdin
    code = 0
    try:
        call_command("ate", *args, **kwargs)
    except SystemExit as exc:
        code = exc.code
    return code, out.getvalue(), err.getvalue()


# --- check ---------------------------------------------------------------------------------------


def test_check_clean_exits_0(store):
    running_pair(store, "a1", "ns", "pool", "pod")
    code, out, _ = run("check")
    assert code == 0 and "no findings" in out and "checked 1 actors, 1 workers" in out


def test_check_with_findings_exits_1_text_and_json(store, cluster_client):
    crafted_store(store, cluster_client)
    code, out, _ = run("check")
    assert code == 1
    assert "orphan_worker\tworker:ns9:pool-a:w-orphan actor:ghost\t" in out
    assert "repair: Free the worker: worker:ns9:pool-a:w-orphan (version 1 → 2)" in out
    code, out, _ = run("check", "--format", "json")
    assert code == 1
    doc = json.loads(out)
    assert doc["ok"] is False and doc["actors"] == 12
    kinds = {f["kind"] for f in doc["findings"]}
    assert {
        "orphan_worker",
        "leaked_worker",
        "actor_without_worker",
        "actor_worker_free",
        "actor_worker_elsewhere",
        "duplicate_claim",
        "suspended_with_pod",
        "orphan_lock",
        "lock_without_expiry",
    } <= kinds
    orphan = next(f for f in doc["findings"] if f["kind"] == "orphan_worker")
    assert orphan["keys"] == ["worker:ns9:pool-a:w-orphan", "actor:ghost"]
    assert orphan["repair"]["action"] == "free_worker" and "actor_id: 'ghost' → ''" in orphan["repair"]["description"]


def test_check_names_records_the_server_cannot_read(store, cluster_client):
    cluster_client.set("actor:odd", b'{"actorId":"odd","version":"01"}')  # an int64 with a leading zero
    code, out, _ = run("check")
    assert code == 1 and "1 finding(s); 1 record(s) the ate server cannot read" in out
    assert "server_unreadable\tactor:odd\tthe ate server cannot read actor:odd: proto: " in out
    assert "\tno automatic repair: no automatic repair: edit its raw JSON" not in out
    code, out, _ = run("check", "--format", "json")
    doc = json.loads(out)
    assert doc["unreadable_by_server"] == 1 and doc["counts"]["server_unreadable"] == 1


@pytest.mark.process
def test_check_exit_status_from_a_real_process(store, cluster_client, redis_url, tmp_path):
    env = dict(
        os.environ,
        ATEDASH_REDIS_URL=redis_url,
        ATEDASH_ENVIRONMENT="ops-test",
        ATEDASH_SECRET_KEY=secrets.token_urlsafe(50),
        ATEDASH_USERS_FILE=str(tmp_path / "u.json"),
    )
    env.pop("PYTEST_VERSION", None)
    cmd = [sys.executable, str(REPO / "manage.py"), "ate", "check", "--format", "json"]
    clean = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert clean.returncode == 0, clean.stderr
    assert json.loads(clean.stdout)["ok"] is True
    worker(store, "ns", "pool", "pod", "ghost")
    dirty = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert dirty.returncode == 1, dirty.stderr
    assert json.loads(dirty.stdout)["counts"]["orphan_worker"] == 1


# --- export / import -----------------------------------------------------------------------------


def seed(store, cluster_client):
    running_pair(store, "a1", "ns", "pool", "pod-1")
    actor(store, "a2")
    cluster_client.set("actor:go", b'{ "actorId": "go", "version": "4", "unknownThing": [1, {"x": null}] }')
    cluster_client.set("worker:ns:bin:pod", bytes.fromhex("0a026e73120362696e1a03706f64") + bytes([0xA0, 0x06, 0x01]))


def records(client):
    return {k: v for k, v in all_values(client).items() if k.startswith((b"actor:", b"worker:"))}


def test_export_to_stdout_and_file_then_import(store, cluster_client, tmp_path, audit_log):
    seed(store, cluster_client)
    before = records(cluster_client)
    code, out, err = run("export")
    assert code == 0 and "exported 5 records" in err
    assert len(out.splitlines()) == 5 and all(json.loads(line)["key"] for line in out.splitlines())
    path = tmp_path / "backup.jsonl"
    code, _, err = run("export", "-o", str(path))
    assert code == 0 and path.read_text().count("\n") == 5
    store.debug_clear_all()
    code, out, _ = run("import", str(path), "--dry-run")
    assert code == 0 and "3 would be created" in out and "nothing was written" in out
    assert "2 the ate server cannot read (not written; --allow-unreadable writes them)" in out
    assert records(cluster_client) == {}
    code, out, _ = run("import", str(path), "--dry-run", "--allow-unreadable")
    assert code == 0 and "5 would be created" in out and "2 the ate server cannot read would be written" in out
    code, out, _ = run("import", str(path), "--allow-unreadable")
    assert code == 0 and "5 were created" in out and "2 the ate server cannot read were written" in out
    assert records(cluster_client) == before
    created = [e for e in audit_log.entries if e["action"] == "import.created"]
    assert sorted(e["key"] for e in created) == sorted(k.decode() for k in before)
    assert all(e["who"].startswith("cli:") and e["version_before"] is None for e in created)
    assert audit_log.entries[-1]["action"] == "import" and audit_log.entries[-1]["created"] == 5
    assert audit_log.entries[-1]["unreadable_written"] == 2
    # The stream keeps the summary, not one entry per record.
    streamed = [json.loads(f[b"entry"])["action"] for _, f in cluster_client.xrevrange("atedash:audit", count=10)]
    assert streamed[0] == "import" and "import.created" not in streamed


def test_import_policies_from_stdin(store, cluster_client):
    seed(store, cluster_client)
    _, text, _ = run("export")
    a1 = store.get_actor("a1")
    a1.last_snapshot = "kept"
    store.update_actor(a1, a1.version)
    code, out, _ = run("import", "-", "--policy", "overwrite-if-version", "--allow-unreadable", stdin=io.StringIO(text))
    assert code == 0 and "4 were overwritten, 1 were skipped" in out
    assert store.get_actor("a1").last_snapshot == "kept"
    code, out, _ = run("import", "-", "--allow-unreadable", stdin=io.StringIO(text))
    assert "0 were created, 0 were overwritten, 5 were skipped" in out


def test_import_malformed_file_fails_with_line_numbers(store, cluster_client, tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"key": "actor:x", "encoding": "json", "value": "{\\"actorId\\":\\"x\\"}"}\nnot json\n')
    with pytest.raises(CommandError, match="line 2: not JSON"):
        call_command("ate", "import", str(path), stdout=io.StringIO())
    assert records(cluster_client) == {}
    with pytest.raises(CommandError, match="no such file"):
        call_command("ate", "import", str(tmp_path / "missing.jsonl"), stdout=io.StringIO())


# --- get -----------------------------------------------------------------------------------------


def test_get_actors_table_json_yaml(store):
    actor(store, "b-2", RUNNING, "ateom", "pod-b", "10.0.0.2", tns="team", tname="web")
    actor(store, "a-1", tns="team", tname="web")
    code, out, _ = run("get", "actors")
    lines = out.splitlines()
    assert lines[0].split() == ["NAMESPACE", "TEMPLATE", "ID", "STATUS", "ATEOM", "POD", "ATEOM", "IP", "VERSION"]
    assert lines[0].index("ATEOM POD") > lines[0].index("STATUS")
    assert lines[1].split() == ["team", "web", "a-1", "SUSPENDED", "<none>", "<none>", "1"]
    assert lines[2].split() == ["team", "web", "b-2", "RUNNING", "ateom/pod-b", "10.0.0.2", "1"]
    # Columns line up.
    assert lines[1].index("a-1") == lines[0].index("ID") == lines[2].index("b-2")
    code, out, _ = run("get", "actors", "-o", "json")
    doc = json.loads(out)
    assert doc == {
        "items": [json_format.MessageToDict(store.get_actor("a-1")), json_format.MessageToDict(store.get_actor("b-2"))]
    }
    assert doc["items"][1]["status"] == "STATUS_RUNNING" and doc["items"][1]["version"] == "1"
    code, out, _ = run("get", "actors", "-o", "yaml")
    assert yaml.safe_load(out) == doc


def test_get_workers(store):
    worker(store, "ns", "pool-b", "w-2", "act-1", ip="10.1.1.2")
    worker(store, "ns", "pool-a", "w-1", ip="10.1.1.1")
    code, out, _ = run("get", "workers")
    lines = out.splitlines()
    assert lines[0].split() == ["NAMESPACE", "POOL", "POD", "IP", "ACTOR", "VERSION"]
    assert lines[1].split() == ["ns", "pool-a", "w-1", "10.1.1.1", "<none>", "1"]
    assert lines[2].split() == ["ns", "pool-b", "w-2", "10.1.1.2", "act-1", "1"]
    doc = json.loads(run("get", "workers", "-o", "json")[1])
    assert [i["workerPod"] for i in doc["items"]] == ["w-1", "w-2"] and doc["items"][1]["actorId"] == "act-1"


def test_get_empty(store):
    code, out, err = run("get", "actors")
    assert code == 0 and out == "" and "No actors found." in err
    assert json.loads(run("get", "workers", "-o", "json")[1]) == {"items": []}


# --- flush ---------------------------------------------------------------------------------------


def test_flush_guard(store, cluster_client, ops_settings, audit_log):
    actor(store, "f1")
    cluster_client.set("other-key", "x")
    with pytest.raises(CommandError, match="turned off"):
        call_command("ate", "flush", "--environment", "ops-test", stdout=io.StringIO())
    ops_settings.ATEDASH_ALLOW_FLUSH = True
    with pytest.raises(CommandError, match="does not match"):
        call_command("ate", "flush", "--environment", "production", stdout=io.StringIO())
    assert cluster_client.get("actor:f1") is not None
    code, out, _ = run("flush", "--environment", "ops-test")
    assert code == 0 and "1 keys removed" in out
    assert cluster_client.get("actor:f1") is None and cluster_client.get("other-key") == b"x"
    entry = audit_log.entries[-1]
    assert entry["action"] == "flush" and entry["removed_total"]["actors"] == 1 and entry["who"].startswith("cli:")
    code, out, _ = run("flush", "--environment", "ops-test", "--scope", "all")
    assert code == 0 and cluster_client.get("other-key") is None
    # The flush's own audit entry is written after FLUSHALL, so the stream keeps it.
    entries = [json.loads(f[b"entry"]) for _, f in cluster_client.xrevrange("atedash:audit", count=3)]
    assert entries[0]["action"] == "flush" and entries[0]["scope"] == "all"


def test_store_unreachable_exits_2(ops_settings, monkeypatch):
    import redis

    from atedash.core.app import current_app

    def down():
        raise redis.exceptions.ConnectionError("Error 111 connecting to 127.0.0.1:1. Connection refused.")

    monkeypatch.setattr(current_app().store, "persistence", down)
    for args in (["check"], ["export"], ["get", "actors"]):
        with pytest.raises(CommandError, match="unreachable") as e:
            call_command("ate", *args, stdout=io.StringIO(), stderr=io.StringIO())
        assert e.value.returncode == 2
