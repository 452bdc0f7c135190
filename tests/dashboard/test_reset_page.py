"""Scoped reset: the page (admin, ATEDASH_ALLOW_FLUSH, environment typed), manage.py ate reset, and the
acceptance check on the demo store."""

import io
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from storage.check import run_check
from storage.keys import ACTOR_PREFIX, actor_lock_key
from storage.records import ACTORS, WORKERS
from tests.dashboard.conftest import ENVIRONMENT


@pytest.fixture
def flush_on(settings):
    settings.ATEDASH_ALLOW_FLUSH = True
    return settings


@pytest.fixture
def demo(store):
    call_command("seed_demo", stdout=io.StringIO())
    return store


def snapshot(store):
    return dict(store.iter_raw(prefixes=("actor:", "worker:", "lock:")))


def finding_set(report):
    return {(f.kind, f.keys) for f in report.findings}


def test_reset_of_one_namespace_leaves_every_other_byte_for_byte_and_the_check_finds_nothing_new(
    flush_on, demo, admin, audit_log
):
    """The issue's acceptance check, through the page."""
    before = snapshot(demo)
    findings_before = finding_set(run_check(demo))
    actors_before = {}
    for key, raw in before.items():
        if key.startswith(ACTOR_PREFIX):
            try:
                actors_before[key] = ACTORS.decode_stored(key, raw)[0]
            except Exception:  # noqa: BLE001 - the demo's corrupt record
                pass
    in_ns = {k for k, a in actors_before.items() if a.actor_template_namespace == "team-a"}
    ids = {actors_before[k].actor_id for k in in_ns}
    assert len(in_ns) > 20

    preview = admin.get("/reset/", {"kind": "actors-namespace", "value": "team-a"})
    assert preview.status_code == 200 and b'id="reset-preview-result"' in preview.content
    assert f"{len(in_ns)} actors to delete".encode() in preview.content
    assert snapshot(demo) == before  # a preview changes nothing

    response = admin.post("/reset/", {"kind": "actors-namespace", "value": "team-a", "confirm": ENVIRONMENT})
    assert response.status_code == 200, response.content[:2000]
    after = snapshot(demo)

    changed = {k for k in set(before) | set(after) if before.get(k) != after.get(k)}
    for key in changed:
        if key.startswith(ACTOR_PREFIX):
            assert key in in_ns and key not in after
        elif key.startswith("lock:"):
            assert key.removeprefix("lock:") in in_ns and key not in after
        else:
            worker_before = WORKERS.decode_stored(key, before[key])[0]
            worker_after = WORKERS.decode_stored(key, after[key])[0]
            assert worker_before.actor_id in ids and not worker_after.actor_id
            assert worker_after.version == worker_before.version + 1
    assert in_ns <= changed
    # every other namespace byte for byte: nothing else changed
    findings_after = finding_set(run_check(demo))
    gone = set(before) - set(after)
    new = {f for f in findings_after - findings_before if not set(f[1]) & gone}
    assert new == set(), new
    # one audit line per record, and one for the reset
    per_record = [e for e in audit_log.entries if e.get("via") == "reset"]
    assert sorted(e["key"] for e in per_record) == sorted(changed)
    assert any(e["action"] == "reset" for e in audit_log.entries)


def test_the_page_needs_an_admin_the_switch_and_the_name(settings, demo, admin, editor):
    settings.ATEDASH_ALLOW_FLUSH = False
    assert admin.get("/reset/").status_code == 403
    settings.ATEDASH_ALLOW_FLUSH = True
    assert editor.get("/reset/").status_code == 403
    before = snapshot(demo)
    response = admin.post("/reset/", {"kind": "actors-namespace", "value": "team-a", "confirm": "prod"})
    assert response.status_code == 400 and b"not this environment" in response.content
    response = admin.post("/reset/", {"kind": "actors-template", "value": "team-a", "confirm": ENVIRONMENT})
    assert response.status_code == 400
    response = admin.get("/reset/", {"kind": "bogus", "value": "x"})
    assert response.status_code == 400
    assert snapshot(demo) == before


def test_the_backup_of_a_scope_restores_it(flush_on, demo, admin):
    before = snapshot(demo)
    response = admin.get("/reset/backup/", {"kind": "actors-template", "value": "team-b/notebook"})
    assert response.status_code == 200 and "attachment" in response["Content-Disposition"]
    body = b"".join(response.streaming_content)
    lines = [json.loads(line) for line in body.splitlines()]
    assert lines and all(
        x["record"]["actorTemplateName"] == "notebook" for x in lines if x["key"].startswith(ACTOR_PREFIX)
    )
    admin.post("/reset/", {"kind": "actors-template", "value": "team-b/notebook", "confirm": ENVIRONMENT})
    assert snapshot(demo) != before
    # restore: actors come back byte for byte; freed workers are overwritten at the version the reset left
    call_command("ate", "import", "-", "--policy", "overwrite-if-version", stdin=io.StringIO(body.decode()))
    restored = snapshot(demo)
    for x in lines:
        if x["key"].startswith(ACTOR_PREFIX):
            assert restored[x["key"]] == before[x["key"]]


def test_cli_reset_json_lists_what_changed(flush_on, store):
    from tests.storage.test_scoped_reset import seed

    seed(store, actors=2000)
    out = io.StringIO()
    call_command(
        "ate",
        "reset",
        "--environment",
        ENVIRONMENT,
        "--actors-namespace",
        "ns-3",
        "--dry-run",
        "--format",
        "json",
        stdout=out,
    )
    dry = json.loads(out.getvalue())
    assert dry["dry_run"] and len(dry["deleted"]) == 200 and store.client.exists("actor:a00003")
    out = io.StringIO()
    call_command(
        "ate", "reset", "--environment", ENVIRONMENT, "--actors-namespace", "ns-3", "--format", "json", stdout=out
    )
    done = json.loads(out.getvalue())
    assert done["deleted"] == dry["deleted"] and done["freed"] == dry["freed"] and done["released"] == dry["released"]
    assert done["freed"] and done["released"] and done["skipped"] == []
    assert not store.client.exists("actor:a00003") and not store.client.exists(actor_lock_key("a00003"))
    with pytest.raises(CommandError, match="does not match"):
        call_command("ate", "reset", "--environment", "prod", "--actors-status", "RUNNING")
    with pytest.raises(CommandError, match="NS/POOL"):
        call_command("ate", "reset", "--environment", ENVIRONMENT, "--workers-pool", "nopool")


def test_cli_reset_needs_the_switch(settings, store):
    settings.ATEDASH_ALLOW_FLUSH = False
    with pytest.raises(CommandError, match="turned off"):
        call_command("ate", "reset", "--environment", ENVIRONMENT, "--actors-namespace", "x")


def test_the_preview_states_the_blast_radius(flush_on, demo, admin):
    """By status and namespace what is deleted, by pool what is freed, and the pools outside the scope."""
    from storage.reset import Scope, reset_scope

    report = reset_scope(demo, Scope.parse("actors-namespace", "team-a"), dry_run=True)
    breakdown = report.breakdown()
    assert sum(breakdown["actors_by_status"].values()) == len(report.actors_deleted)
    assert breakdown["actors_by_namespace"] == {"team-a": len(report.actors_deleted)}
    assert sum(breakdown["workers_by_pool"].values()) == len(report.workers_freed)
    outside = breakdown["workers_outside_scope"]
    assert all(not pool.startswith("team-a/") for pool in outside)
    assert all(pool.startswith("team-a/") for pool in set(breakdown["workers_by_pool"]) - set(outside))

    body = admin.get("/reset/", {"kind": "actors-namespace", "value": "team-a"}).content.decode()
    assert 'id="breakdown-status"' in body and 'id="breakdown-namespace"' in body and 'id="breakdown-pool"' in body
    for status, n in breakdown["actors_by_status"].items():
        assert status in body and f">{n}<" in body
    if outside:  # the demo's actors of team-a hold workers of team-b's pool
        assert 'id="reset-outside"' in body and "outside the scope" in body
    assert 'id="confirm-reset"' in body


def test_a_scope_with_nothing_in_it_offers_no_button(flush_on, demo, admin):
    body = admin.get("/reset/", {"kind": "actors-namespace", "value": "team-aa"}).content.decode()
    assert 'id="reset-nothing"' in body and "Nothing to reset" in body
    assert 'id="confirm-reset"' not in body and 'id="reset-backup"' not in body


def test_cli_dry_run_prints_the_breakdown(flush_on, demo):
    out = io.StringIO()
    call_command("ate", "reset", "--environment", ENVIRONMENT, "--actors-namespace", "team-a", "--dry-run", stdout=out)
    text = out.getvalue()
    assert "actors by status: STATUS_" in text and "actors by template namespace: team-a " in text
    assert "workers by pool: team-a/" in text
