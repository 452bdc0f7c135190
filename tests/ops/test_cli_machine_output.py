"""manage.py ate: machine output is machine-readable (issue 22, item 6 and L4).

Every JSON-format command prints exactly one JSON document on stdout (export: one per line), its logs
and audit lines on stderr; text output (tables, yaml, reports) never carries a control character of a
key to the terminal raw."""

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from django.core.management import call_command
from ops_helpers import actor, running_pair, worker

pytestmark = pytest.mark.usefixtures("ops_settings")
REPO = Path(__file__).resolve().parents[2]
ENVIRONMENT = "ops-test"
# What a terminal acts on: C0 controls but newline and tab, DEL, C1 controls.
RAW_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
EVIL_ID = "evil\x1b[31m\r\x07\x9b2J\u202etxt.exe"


def manage(env, *args, stdin=None):
    result = subprocess.run(
        [sys.executable, str(REPO / "manage.py"), "ate", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return result


@pytest.fixture
def cli_env(redis_url, tmp_path):
    import secrets

    env = {k: v for k, v in os.environ.items() if not k.startswith("ATEDASH_") and k != "PYTEST_VERSION"}
    env.update(
        ATEDASH_REDIS_URL=redis_url,
        ATEDASH_ENVIRONMENT=ENVIRONMENT,
        ATEDASH_ALLOW_FLUSH="1",
        ATEDASH_SECRET_KEY=secrets.token_urlsafe(50),
        ATEDASH_USERS_FILE=str(tmp_path / "u.json"),
        ATEDASH_OPERATOR="cli:json-test",
        PYTHONPATH=str(REPO),
    )
    return env


def one_document(result, codes=(0,)):
    assert result.returncode in codes, (result.returncode, result.stdout[-2000:], result.stderr[-2000:])
    return json.loads(result.stdout)  # the whole of stdout: one document, nothing before or after


def audit_lines(stderr):
    out = []
    for line in stderr.splitlines():
        if line.startswith("{"):
            entry = json.loads(line)
            if "action" in entry and "who" in entry:
                out.append(entry)
    return out


@pytest.mark.process
def test_every_json_format_command_prints_one_json_document(store, cluster_client, cli_env, tmp_path):
    running_pair(store, "a1", "ns", "pool", "pod-1")
    actor(store, "a2")
    worker(store, "team", "pool", "w-orphan", "ghost")

    check = one_document(manage(cli_env, "check", "--format", "json"), codes=(1,))
    assert check["counts"]["orphan_worker"] == 1
    actors = one_document(manage(cli_env, "get", "actors", "-o", "json"))
    assert {a["actorId"] for a in actors["items"]} == {"a1", "a2"}
    workers = one_document(manage(cli_env, "get", "workers", "-o", "json"))
    assert len(workers["items"]) == 2

    exported = manage(cli_env, "export")
    assert exported.returncode == 0, exported.stderr
    lines = exported.stdout.splitlines()
    assert len(lines) == 4 and all(json.loads(line)["key"] for line in lines)
    backup = tmp_path / "backup.jsonl"
    backup.write_text(exported.stdout)

    dry = one_document(
        manage(
            cli_env,
            "reset",
            "--environment",
            ENVIRONMENT,
            "--actors-namespace",
            "tpl-ns",
            "--dry-run",
            "--format",
            "json",
        )
    )
    assert dry["counts"]["actors_deleted"] == 2
    # The real reset audits every change: the lines go to stderr, stdout stays one document (the
    # issue's `| jq` failure: "Extra data: line 2").
    reset = manage(cli_env, "reset", "--environment", ENVIRONMENT, "--actors-namespace", "tpl-ns", "--format", "json")
    doc = one_document(reset)
    assert doc["counts"]["actors_deleted"] == 2
    assert {e["action"] for e in audit_lines(reset.stderr)} >= {"reset"}

    imported = manage(cli_env, "import", str(backup), "--format", "json")
    doc = one_document(imported)
    assert doc["records"] == 4 and doc["created"] == 2 and doc["skipped"] == 2
    assert {e["action"] for e in audit_lines(imported.stderr)} >= {"import.created", "import"}
    dry_import = one_document(manage(cli_env, "import", "-", "--dry-run", "--format", "json", stdin=exported.stdout))
    assert dry_import["dry_run"] is True and len(dry_import["details"]) == 4

    flushed = manage(cli_env, "flush", "--environment", ENVIRONMENT, "--format", "json")
    doc = one_document(flushed)
    assert doc["removed_total"]["actors"] == 2 and doc["scope"] == "ate"
    assert [e["action"] for e in audit_lines(flushed.stderr)] == ["flush"]


def test_in_process_the_audit_lines_go_to_stderr_too(ops_settings, store, capsys):
    """call_command without its own streams writes to sys.stdout: still one document there."""
    ops_settings.ATEDASH_ALLOW_FLUSH = True
    actor(store, "a1", tns="ns-x")
    call_command("ate", "reset", "--environment", ENVIRONMENT, "--actors-namespace", "ns-x", "--format", "json")
    captured = capsys.readouterr()
    assert json.loads(captured.out)["counts"]["actors_deleted"] == 1
    assert "reset" in {e["action"] for e in audit_lines(captured.err)}


def test_the_web_process_still_logs_the_audit_on_stdout(capsys):
    from atedash.accounts.audit import audit
    from atedash.core.app import current_app

    audit("someone", "test.web", key=None, app=current_app())
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["action"] == "test.web"


# --- L4: control characters in keys ----------------------------------------------------------------


def evil_records(cluster_client):
    """An actor and an orphan worker whose ids hold ESC, CR, BEL and CSI, as a hostile writer stores them."""
    body = {
        "actorId": EVIL_ID,
        "actorTemplateNamespace": "ns\x1b]0;title\x07",
        "actorTemplateName": "t",
        "status": "STATUS_SUSPENDED",
        "version": "1",
    }
    cluster_client.set(f"actor:{EVIL_ID}".encode(), json.dumps(body).encode())
    w = {"workerNamespace": "ns", "workerPool": "p", "workerPod": "pod\r", "actorId": "ghost\x1b[2J", "version": "1"}
    cluster_client.set(b"worker:ns:p:pod\r", json.dumps(w).encode())


def run(*args):
    out, err = io.StringIO(), io.StringIO()
    code = 0
    try:
        call_command("ate", *args, stdout=out, stderr=err)
    except SystemExit as exc:
        code = exc.code
    return code, out.getvalue(), err.getvalue()


def test_control_characters_never_reach_the_terminal_raw(store, cluster_client):
    evil_records(cluster_client)
    for args in (
        ("get", "actors"),
        ("get", "workers"),
        ("get", "actors", "-o", "yaml"),
        ("check",),
        ("get", "actors", "-o", "json"),
        ("check", "--format", "json"),
    ):
        code, out, err = run(*args)
        assert not RAW_CONTROL.search(out), (args, out)
        assert not RAW_CONTROL.search(err), (args, err)
    _, table, _ = run("get", "actors")
    assert "evil\\x1b[31m\\r\\x07\\x9b2J\\u202etxt.exe" in table
    _, text, _ = run("check")
    assert "ghost\\x1b[2J" in text and "worker:ns:p:pod\\r" in text
    # Machine formats keep the values exactly (their own escapes).
    _, out, _ = run("get", "actors", "-o", "json")
    assert json.loads(out)["items"][0]["actorId"] == EVIL_ID
    _, out, _ = run("get", "actors", "-o", "yaml")
    assert yaml.safe_load(out)["items"][0]["actorId"] == EVIL_ID
    _, out, _ = run("check", "--format", "json")
    keys = {k for f in json.loads(out)["findings"] for k in f["keys"]}
    assert "actor:ghost\x1b[2J" in keys


def test_reset_text_report_escapes_keys(ops_settings, store, cluster_client):
    ops_settings.ATEDASH_ALLOW_FLUSH = True
    evil_records(cluster_client)
    code, out, err = run("reset", "--environment", ENVIRONMENT, "--actors-status", "SUSPENDED", "--dry-run")
    assert code == 0, err
    assert not RAW_CONTROL.search(out) and not RAW_CONTROL.search(err)
    assert "would delete 1 actors" in out
