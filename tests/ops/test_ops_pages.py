"""Operations pages through the Django test client: check and repairs, backup download, audit, metrics."""

import json
import re
from html import unescape

import pytest
from django.test import Client
from ops_helpers import SUSPENDED, actor, crafted_store, worker

from storage import check as cc

pytestmark = pytest.mark.usefixtures("ops_settings")


def page(response):
    return response.content.decode()


def repair_links(html):
    return [unescape(m) for m in re.findall(r'href="(/ops/repair/\?r=[^"]+)"', html)]


# --- login and roles ---------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["/ops/check/", "/ops/repair/?r=x", "/ops/export.jsonl", "/ops/backup/", "/audit/"])
def test_pages_need_a_login(url):
    response = Client().get(url)
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_repair_needs_the_editor_role(viewer, store, cluster_client):
    crafted_store(store, cluster_client)
    html = page(viewer.get("/ops/check/?wait=1"))
    assert "needs the editor role" in html and repair_links(html) == []
    finding = cc.run_check(store).by_kind(cc.ORPHAN_WORKER)[0]
    from atedash.ops.views import sign_repair

    response = viewer.post("/ops/repair/", {"repair": sign_repair(finding.repair)})
    assert response.status_code == 403
    assert store.get_worker("ns9", "pool-a", "w-orphan").actor_id == "ghost"


# --- consistency check -------------------------------------------------------------------------


def test_check_page_clean_store(viewer, store):
    actor(store, "a1")
    response = viewer.get("/ops/check/?wait=1")
    assert response.status_code == 200
    html = page(response)
    assert 'id="check-ok"' in html and "Checked 1 actors" in html


def test_check_page_lists_findings_with_links(editor, store, cluster_client):
    crafted_store(store, cluster_client)
    html = page(editor.get("/ops/check/?wait=1"))
    for kind in (
        cc.ORPHAN_WORKER,
        cc.LEAKED_WORKER,
        cc.ACTOR_WITHOUT_WORKER,
        cc.ACTOR_WORKER_FREE,
        cc.ACTOR_WORKER_ELSEWHERE,
        cc.DUPLICATE_CLAIM,
        cc.SUSPENDED_WITH_POD,
        cc.ORPHAN_LOCK,
        cc.LOCK_WITHOUT_EXPIRY,
    ):
        assert f'data-kind="{kind}"' in html, kind
    assert 'href="/actors/S1/"' in html
    assert 'href="/workers/ns9/pool-a/w-orphan/"' in html
    # Every repair the editor may make has its link (lock releases are an admin's).
    assert len(repair_links(html)) == sum(
        1 for f in cc.run_check(store).findings if f.repair and f.repair.action != "release_lock"
    )
    # Filter by kind.
    html = page(editor.get(f"/ops/check/?kind={cc.SUSPENDED_WITH_POD}"))
    assert f'data-kind="{cc.SUSPENDED_WITH_POD}"' in html and f'data-kind="{cc.ORPHAN_WORKER}"' not in html


def test_check_page_runs_in_the_background(viewer, editor, store):
    from atedash.core.app import current_app

    actor(store, "a1")
    assert viewer.post("/ops/check/").status_code == 403  # running a check is an editor's call
    response = editor.post("/ops/check/")
    assert response.status_code == 302 and response["Location"] == "/ops/check/"
    current_app().checks.wait(timeout=60)
    assert current_app().checks.report is not None and current_app().checks.report.actors == 1


def test_repair_confirmation_shows_the_exact_change_then_applies(editor, store, cluster_client, audit_log):
    crafted_store(store, cluster_client)
    html = page(editor.get(f"/ops/check/?wait=1&kind={cc.SUSPENDED_WITH_POD}"))
    [link] = repair_links(html)
    confirm = editor.get(link)
    assert confirm.status_code == 200
    body = page(confirm)
    assert "actor:S1" in body and "pod-old" in body and "10.1.0.4" in body and 'id="confirm-repair"' in body
    assert "ateom_pod_name" in body
    # Nothing written by looking.
    assert store.get_actor("S1").ateom_pod_name == "pod-old"
    token = re.search(r'name="repair" value="([^"]+)"', body).group(1)
    response = editor.post("/ops/repair/", {"repair": token})
    assert response.status_code == 302 and response["Location"] == "/ops/check/"
    s1 = store.get_actor("S1")
    assert (s1.ateom_pod_name, s1.ateom_pod_ip, s1.version, s1.status) == ("", "", 2, SUSPENDED)
    entry = [e for e in audit_log.entries if e["action"] == "repair.clear_actor_pod"][-1]
    assert entry["key"] == "actor:S1" and entry["who"] == "editor"
    assert entry["version_before"] == 1 and entry["version_after"] == 2
    assert entry["changed_fields"]["ateom_pod_name"] == ["pod-old", ""]
    # The check that followed no longer reports it.
    html = page(editor.get("/ops/check/?wait=1"))
    assert f'data-kind="{cc.SUSPENDED_WITH_POD}"' not in html


def test_repair_refused_when_the_record_changed(editor, store, cluster_client, audit_log):
    crafted_store(store, cluster_client)
    html = page(editor.get(f"/ops/check/?wait=1&kind={cc.ORPHAN_WORKER}"))
    [link] = repair_links(html)
    token = re.search(r'name="repair" value="([^"]+)"', page(editor.get(link))).group(1)
    w = store.get_worker("ns9", "pool-a", "w-orphan")
    w.actor_id = "another"
    store.update_worker(w, w.version)
    # The confirmation says so before anything is tried...
    again = editor.get(link)
    assert again.status_code == 409 and "no longer applies" in page(again)
    # ... and the POST re-checks and writes nothing.
    response = editor.post("/ops/repair/", {"repair": token})
    assert response.status_code == 409 and "no longer applies" in page(response)
    assert store.get_worker("ns9", "pool-a", "w-orphan").actor_id == "another"
    assert audit_log.entries[-1]["action"] == "repair.free_worker.refused"


def test_tampered_repair_token_is_refused(editor, store, cluster_client):
    crafted_store(store, cluster_client)
    response = editor.post("/ops/repair/", {"repair": "not-a-signed-token"})
    assert response.status_code == 400 and "not valid" in page(response)


# --- backup --------------------------------------------------------------------------------------


def test_export_download_streams_json_lines(viewer, store, cluster_client, audit_log):
    actor(store, "a1")
    worker(store, "ns", "pool", "pod")
    cluster_client.set("actor:go", b'{"actorId":"go","version":"3","extra":true}')
    response = viewer.get("/ops/export.jsonl")
    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"].startswith("application/x-ndjson")
    assert re.match(r'attachment; filename="atedash-ops-test-\d{8}T\d{6}Z\.jsonl"', response["Content-Disposition"])
    lines = [json.loads(line) for line in b"".join(response.streaming_content).decode().splitlines()]
    by_key = {line["key"]: line for line in lines}
    assert set(by_key) == {"actor:a1", "worker:ns:pool:pod", "actor:go"}
    assert by_key["actor:go"]["value"] == '{"actorId":"go","version":"3","extra":true}'
    assert by_key["actor:go"]["record"] == {"actorId": "go", "version": "3"}
    assert audit_log.entries[-1]["action"] == "export"


def test_flush_page_offers_the_backup_first(admin, ops_settings):
    ops_settings.ATEDASH_ALLOW_FLUSH = True
    html = page(admin.get("/flush/"))
    assert 'id="download-backup"' in html and 'action="/ops/export.jsonl"' in html
    assert html.index('id="download-backup"') < html.index('id="flush-form"')


# --- audit ---------------------------------------------------------------------------------------


def test_audit_page_lists_changes_newest_first(editor, store, cluster_client):
    response = editor.post(
        "/actors/new/", {"actor_id": "aud-1", "actor_template_namespace": "ns", "actor_template_name": "t"}
    )
    assert response.status_code == 302
    stored = store.get_actor("aud-1")
    response = editor.post(
        "/actors/aud-1/edit/",
        {
            "version": stored.version,
            "actor_id": "aud-1",
            "actor_template_namespace": "ns",
            "actor_template_name": "t",
            "status": "SUSPENDED",
            "ateom_pod_namespace": "",
            "ateom_pod_name": "",
            "ateom_pod_ip": "",
            "last_snapshot": "snap-9",
            "in_progress_snapshot": "",
        },
    )
    assert response.status_code == 302, page(response)[:2000]
    html = page(editor.get("/audit/"))
    assert html.index('data-action="actor.update"') < html.index('data-action="actor.create"')
    assert "actor:aud-1" in html
    raw = cluster_client.xrevrange("atedash:audit", count=10)
    entries = [json.loads(fields[b"entry"]) for _, fields in raw]
    update = next(e for e in entries if e["action"] == "actor.update")
    assert update["version_before"] == 1 and update["version_after"] == 2 and update["who"] == "editor"
    assert update["changed_fields"] == {"last_snapshot": ["", "snap-9"]}
    create = next(e for e in entries if e["action"] == "actor.create")
    assert create["version_before"] is None and create["version_after"] == 1
    assert create["changed_fields"]["actor_id"] == [None, "aud-1"]
    assert "snap-9" in html  # the changed fields are on the page


def test_audit_stream_is_capped(ops_settings, cluster_client):
    from atedash.accounts.audit import STREAM_KEY, audit
    from atedash.core.app import current_app

    ops_settings.ATEDASH_AUDIT_MAXLEN = 50
    for i in range(300):
        audit("cli:test", "test.entry", key=f"k{i}", app=current_app())
    # MAXLEN ~ trims whole macro nodes: the stream stays near the cap, never grows without bound.
    assert 50 <= cluster_client.xlen(STREAM_KEY) < 300


def test_audit_line_on_stdout(ops_settings, capsys):
    from atedash.accounts.audit import audit
    from atedash.core.app import current_app

    audit(
        "cli:someone",
        "actor.update",
        "actor:x",
        3,
        4,
        {"status": ["STATUS_SUSPENDED", "STATUS_RUNNING"]},
        app=current_app(),
    )
    out = capsys.readouterr().out.strip().splitlines()[-1]
    entry = json.loads(out)
    assert entry["who"] == "cli:someone" and entry["action"] == "actor.update" and entry["key"] == "actor:x"
    assert (entry["version_before"], entry["version_after"]) == (3, 4)
    assert entry["changed_fields"] == {"status": ["STATUS_SUSPENDED", "STATUS_RUNNING"]}
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", entry["when"])


def test_audit_survives_a_store_outage(ops_settings, capsys):
    from atedash.accounts.audit import audit
    from atedash.core.app import current_app

    ops_settings.ATEDASH_REDIS_URL = "redis://127.0.0.1:1"
    audit("cli:x", "test.down", key="k", app=current_app())
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["action"] == "test.down"


def test_flush_everything_keeps_its_own_audit_entry(admin, ops_settings, store, cluster_client):
    ops_settings.ATEDASH_ALLOW_FLUSH = True
    actor(store, "f1")
    response = admin.post("/flush/", {"scope": "all", "confirm": "ops-test"})
    assert response.status_code == 200, page(response)[:1500]
    entries = [json.loads(f[b"entry"]) for _, f in cluster_client.xrevrange("atedash:audit", count=5)]
    assert entries and entries[0]["action"] == "flush"


# --- metrics -------------------------------------------------------------------------------------


def test_metrics_need_login_or_token(ops_settings):
    response = Client().get("/metrics")
    assert response.status_code == 302 and response["Location"].startswith("/login/?next=")
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer anything").status_code == 302  # no token set
    ops_settings.ATEDASH_METRICS_TOKEN = "s3cret"
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret").status_code == 200


def test_metrics_text(viewer, store, cluster_client):
    from atedash.core.app import current_app

    crafted_store(store, cluster_client)
    current_app().stats.refresh().join(60)
    current_app().checks.refresh().join(60)
    viewer.get("/actors/")
    response = viewer.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    text = page(response)
    assert 'atedash_actors{status="STATUS_RUNNING"}' in text
    assert re.search(r'atedash_workers\{namespace="ns1",pool="pool-a",state="assigned"\} \d', text)
    assert re.search(r'atedash_workers\{namespace="ns1",pool="pool-a",state="free"\} \d', text)
    assert re.search(r"atedash_locks_held 4\.0", text)
    assert 'atedash_consistency_findings{kind="orphan_worker"} 1.0' in text
    assert 'atedash_consistency_findings{kind="corrupt_record"} 0.0' in text
    assert re.search(
        r'atedash_request_duration_seconds_bucket\{le="0\.5",method="GET",status="2xx",view="actor_list"\} \d', text
    ) or re.search(r'atedash_request_duration_seconds_bucket\{.*view="actor_list".*\} \d', text)
    assert "atedash_request_duration_seconds_count" in text


def test_metrics_scrape_does_not_scan(viewer, store, monkeypatch):
    from atedash.core.app import current_app

    actor(store, "m1")
    current_app().stats.refresh().join(60)
    current_app().checks.refresh().join(60)
    calls = []
    monkeypatch.setattr("storage.persistence.Persistence.store_stats", lambda self: calls.append(1))
    monkeypatch.setattr("storage.check.run_check", lambda p, **kw: calls.append(2))
    for _ in range(5):
        assert viewer.get("/metrics").status_code == 200
    assert calls == []


def test_worker_delete_audit_names_what_was_removed(editor, store, audit_log):
    worker(store, "ns", "pool", "pod-x", "act-1", ip="10.2.0.1")
    response = editor.post("/workers/ns/pool/pod-x/delete/")
    assert response.status_code == 302
    entry = audit_log.entries[-1]
    assert entry["action"] == "worker.delete" and entry["key"] == "worker:ns:pool:pod-x"
    assert entry["version_before"] == 1 and entry["version_after"] is None
    assert entry["changed_fields"]["actor_id"] == ["act-1", None]
    assert entry["changed_fields"]["ip"] == ["10.2.0.1", None]


def test_check_page_shows_a_small_store_at_once(viewer, store, cluster_client):
    worker(store, "ns", "pool", "pod", "ghost")
    html = page(viewer.get("/ops/check/"))
    assert f'data-kind="{cc.ORPHAN_WORKER}"' in html and "check-running" not in html


def test_backup_page(viewer):
    html = page(viewer.get("/ops/backup/"))
    assert 'id="download-backup"' in html and 'action="/ops/export.jsonl"' in html


def test_a_change_through_another_process_makes_the_report_stale(editor, store, cluster_client):
    """Each gunicorn worker has its own report; a change anywhere marks them all stale."""
    from django.conf import settings

    from atedash.core.app import Application

    worker(store, "ns", "pool", "pod", "ghost")
    other_process = Application(settings).checks
    other_process.refresh().join(60)
    assert other_process.report.counts[cc.ORPHAN_WORKER] == 1
    html = page(editor.get(f"/ops/check/?wait=1&kind={cc.ORPHAN_WORKER}"))
    [link] = repair_links(html)
    token = re.search(r'name="repair" value="([^"]+)"', page(editor.get(link))).group(1)
    assert editor.post("/ops/repair/", {"repair": token}).status_code == 302
    report, _, running = other_process.snapshot()
    assert running  # stale: a new check started at once
    other_process.wait(60)
    assert other_process.snapshot(start_if_stale=False)[0].counts[cc.ORPHAN_WORKER] == 0


def test_pages_when_the_store_is_down(viewer, ops_settings):
    ops_settings.ATEDASH_REDIS_URL = "redis://127.0.0.1:1"
    ops_settings.ATEDASH_REDIS_CLUSTER = "no"
    for url in ("/ops/export.jsonl", "/audit/"):
        response = viewer.get(url)
        assert response.status_code == 503, url
        assert "redis://127.0.0.1:1" in page(response)


def test_lock_repairs_need_the_admin_role(editor, admin, store, cluster_client):
    crafted_store(store, cluster_client)
    html = page(editor.get(f"/ops/check/?wait=1&kind={cc.ORPHAN_LOCK}"))
    assert repair_links(html) == [] and "needs the admin role" in html
    from atedash.ops.views import sign_repair

    token = sign_repair(cc.run_check(store).by_kind(cc.ORPHAN_LOCK)[0].repair)
    assert editor.post("/ops/repair/", {"repair": token}).status_code == 403
    assert store.get_lock("lock:actor:ghost2") is not None
    html = page(admin.get(f"/ops/check/?kind={cc.ORPHAN_LOCK}"))
    [link] = repair_links(html)
    assert admin.get(link).status_code == 200
    assert admin.post("/ops/repair/", {"repair": token}).status_code == 302
    assert store.get_lock("lock:actor:ghost2") is None


def test_long_reports_are_capped_on_the_page(viewer, store, cluster_client, monkeypatch):
    monkeypatch.setattr("atedash.ops.views.MAX_ROWS", 3)
    crafted_store(store, cluster_client)
    html = page(viewer.get("/ops/check/?wait=1"))
    assert html.count('class="finding"') == 3 and 'id="findings-hidden"' in html
    html = page(viewer.get(f"/ops/check/?kind={cc.LEAKED_WORKER}"))
    assert html.count('class="finding"') == 2 and 'id="findings-hidden"' not in html


def test_a_long_check_shows_running_then_the_partial_polls_for_the_result(viewer, store, ops_settings, monkeypatch):
    import threading

    import storage.check
    from atedash.core.app import current_app

    worker(store, "ns", "pool", "pod", "ghost")
    release = threading.Event()
    real_run_check = storage.check.run_check

    def slow_run_check(p, **kw):
        release.wait(60)  # the check "takes long" until the test lets it finish
        return real_run_check(p, **kw)

    monkeypatch.setattr(storage.check, "run_check", slow_run_check)
    ops_settings.ATEDASH_CHECK_WAIT = 0
    html = page(viewer.get("/ops/check/"))
    assert 'id="check-running"' in html and 'hx-trigger="every 2s"' in html
    assert '<meta http-equiv="refresh" content="2">' in html  # inside <noscript>: JavaScript off
    # The HTMX poll gets only the results fragment, without waiting.
    partial = page(viewer.get("/ops/check/", HTTP_HX_REQUEST="true"))
    assert partial.lstrip().startswith('<div id="check-results"') and 'id="check-running"' in partial
    release.set()
    current_app().checks.wait(60)
    partial = page(viewer.get("/ops/check/", HTTP_HX_REQUEST="true"))
    assert 'id="check-running"' not in partial and "hx-trigger" not in partial
    assert f'data-kind="{cc.ORPHAN_WORKER}"' in partial


def test_lock_release_is_audited_with_the_holder(admin, store, audit_log, cluster_client):
    assert store.acquire_lock("lock:actor:x", "tok-1", 60)
    response = admin.post("/locks/release/", {"key": "lock:actor:x", "token": "tok-1"})
    assert response.status_code == 302
    entry = audit_log.entries[-1]
    assert entry["action"] == "lock.release" and entry["key"] == "lock:actor:x"
    assert entry["changed_fields"] == {"holder": ["tok-1", None]}
    streamed = json.loads(cluster_client.xrevrange("atedash:audit", count=1)[0][1][b"entry"])
    assert streamed["action"] == "lock.release"


def test_check_page_counts_and_links_records_the_server_cannot_read(viewer, store, cluster_client):
    actor(store, "fine")
    cluster_client.set("actor:odd", b'{"actorId":"odd","status":"STATUS_PAUSED"}')  # atedash reads it, Go does not
    cluster_client.set("actor:bad", b"{not json")  # neither does
    html = page(viewer.get("/ops/check/?wait=1"))
    banner = re.search(r'<p class="message message-error" role="alert" id="check-unreadable">(.*?)</p>', html, re.S)
    assert banner and "2 records the ate server cannot read" in banner.group(1)
    assert "1 that atedash reads" in banner.group(1)
    counts = re.search(r'<table class="table" id="check-counts">.*?</table>', html, re.S).group(0)
    row = re.search(r"<tr[^>]*>(?:(?!</tr>).)*server_unreadable(?:(?!</tr>).)*</tr>", counts, re.S).group(0)
    assert '<td class="num">1</td>' in row
    html = page(viewer.get(f"/ops/check/?kind={cc.SERVER_UNREADABLE}"))
    [finding] = re.findall(r'<tr class="finding" data-kind="server_unreadable">.*?</tr>', html, re.S)
    assert "invalid value for enum field status" in unescape(finding) and "ListActors" in finding
    assert 'href="/actors/odd/" class="record-link"' in finding and repair_links(finding) == []
    response = viewer.get("/actors/odd/")
    assert response.status_code == 200


def test_metrics_count_records_the_server_cannot_read(viewer, store, cluster_client):
    from atedash.core.app import current_app

    cluster_client.set("actor:odd", b'{"actorId":"odd","foo":1}')  # atedash reads it, Go does not
    cluster_client.set("worker:ns:p:bad", b"\xff\xff")  # neither does
    current_app().checks.refresh().join(60)
    text = page(viewer.get("/metrics"))
    assert 'atedash_consistency_findings{kind="server_unreadable"} 1.0' in text
    assert 'atedash_consistency_findings{kind="corrupt_record"} 1.0' in text
    assert "atedash_records_unreadable_by_server 2.0" in text


def test_repair_of_a_record_go_cannot_read_is_refused_with_its_reason_and_the_raw_editor(
    editor, store, cluster_client, audit_log
):
    """Issue 22: a record the Go server cannot read since the check is not rewritten by a repair
    (Go's UpdateActor fails reading it): the page quotes Go and links the raw editor."""
    crafted_store(store, cluster_client)
    html = page(editor.get(f"/ops/check/?wait=1&kind={cc.SUSPENDED_WITH_POD}"))
    [link] = repair_links(html)
    token = re.search(r'name="repair" value="([^"]+)"', page(editor.get(link))).group(1)
    odd = cluster_client.get("actor:S1")[:-1] + b',"zz":0}'
    cluster_client.set("actor:S1", odd)
    for response in (editor.get(link), editor.post("/ops/repair/", {"repair": token})):
        body = page(response)
        assert response.status_code == 409 and 'id="unreadable-reason"' in body
        assert "unknown field &quot;zz&quot;" in body and "Its UpdateActor fails on this record" in body
        assert 'href="/records/raw/?key=actor%3AS1"' in body
    assert cluster_client.get("actor:S1") == odd
    assert not [e for e in audit_log.entries if e["action"] == "repair.clear_actor_pod"]
    assert audit_log.entries[-1]["action"] == "repair.clear_actor_pod.refused"


def test_an_interrupted_check_tells_a_viewer_who_can_start_another(viewer, store, cluster_client):
    """A check whose process died (its attempt stored, no lease, no result after it) while a kept
    report is not yet due: a viewer's visit starts no check, and the page says so."""
    from atedash.core.app import current_app

    current_app().checks.refresh().join(60)
    fence = int(cluster_client.get("atedash:fleet:{check}:fence"))
    attempt = {"token": fence + 1, "maker": "gone-pod:42", "started_at": 1.0}  # what a dead holder leaves
    cluster_client.set("atedash:fleet:{check}:attempt", json.dumps(attempt))
    html = page(viewer.get("/ops/check/"))
    assert 'id="check-interrupted"' in html and "gone-pod:42" in html and "check-running" not in html
    assert "starts when this report is due, or when an editor opens this page" in html
    assert "Opening this page again starts another" not in html
