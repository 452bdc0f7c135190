"""Export and import of the ate records, on the real cluster."""

from __future__ import annotations

import base64
import io
import json

import pytest
from google.protobuf import json_format
from ops_helpers import actor, all_values, running_pair, worker

from storage import backup
from storage.ateapi_pb2 import Actor, Worker
from storage.backup import ImportFileError, export
from storage.backup import import_records as import_checked


def import_records(*args, **kwargs):
    """import_records restoring byte for byte: the seed holds records the ate server cannot read
    (binary, unknown fields), which plain imports refuse (test_import_refuses_unreadable_records)."""
    kwargs.setdefault("allow_unreadable", True)
    return import_checked(*args, **kwargs)


# As the Go server writes a record, plus whitespace and fields this schema does not know.
GO_STYLE = (
    b'{ "actorId": "go-1", "version": "7", "actorTemplateNamespace": "t-ns",\n'
    b'  "actorTemplateName": "t", "status": "STATUS_RUNNING", "futureField": {"a": [1, 2.50, null]},'
    b' "ateomPodNamespace": "ns", "ateomPodName": "p\\u00e9", "note": "caf\xc3\xa9 \xe2\x9c\x93" }'
)


def binary_actor() -> bytes:
    a = Actor(
        actor_id="bin-1",
        version=3,
        actor_template_namespace="t-ns",
        actor_template_name="t",
        status=Actor.STATUS_SUSPENDED,
        last_snapshot="snap-1",
    )
    # An unknown field number 99 (length-delimited) after the known ones.
    return a.SerializeToString() + bytes([0x9A, 0x06, 0x03]) + b"xyz"


def binary_worker() -> bytes:
    w = Worker(worker_namespace="ns", worker_pool="bp", worker_pod="bpod", ip="10.0.0.7", version=2)
    return w.SerializeToString() + bytes([0xA0, 0x06, 0x2A])  # unknown varint field 100


def seed(store, cluster_client):
    running_pair(store, "a1", "ns", "pool", "pod-1")
    actor(store, "a2")
    worker(store, "ns", "pool", "pod-free")
    cluster_client.set("actor:go-1", GO_STYLE)
    cluster_client.set("actor:bin-1", binary_actor())
    cluster_client.set("worker:ns:bp:bpod", binary_worker())
    assert store.acquire_lock("lock:actor:a1", "tok", 60)  # locks are not exported
    cluster_client.set("unrelated", "x")


def export_text(store) -> str:
    out = io.StringIO()
    export(store, out)
    return out.getvalue()


def records_only(values):
    return {k: v for k, v in values.items() if k.startswith((b"actor:", b"worker:"))}


def test_export_lines(store, cluster_client):
    seed(store, cluster_client)
    lines = [json.loads(line) for line in export_text(store).splitlines()]
    by_key = {line["key"]: line for line in lines}
    assert sorted(by_key) == sorted(
        [
            "actor:a1",
            "actor:a2",
            "actor:go-1",
            "actor:bin-1",
            "worker:ns:pool:pod-1",
            "worker:ns:pool:pod-free",
            "worker:ns:bp:bpod",
        ]
    )
    go = by_key["actor:go-1"]
    assert go["encoding"] == "json" and go["value"].encode("utf-8") == GO_STYLE and "value_base64" not in go
    assert go["record"] == {
        "actorId": "go-1",
        "version": "7",
        "actorTemplateNamespace": "t-ns",
        "actorTemplateName": "t",
        "status": "STATUS_RUNNING",
        "ateomPodNamespace": "ns",
        "ateomPodName": "pé",
    }
    b = by_key["actor:bin-1"]
    assert b["encoding"] == "binary" and base64.b64decode(b["value_base64"]) == binary_actor() and "value" not in b
    assert b["record"]["lastSnapshot"] == "snap-1" and b["record"]["status"] == "STATUS_SUSPENDED"
    # The record is what `kubectl ate get -o json` prints: protobuf JSON of the decoded message.
    a1 = by_key["actor:a1"]
    assert a1["record"] == json_format.MessageToDict(store.get_actor("a1"))
    assert by_key["worker:ns:pool:pod-1"]["record"]["actorId"] == "a1"


def test_export_flush_import_gives_back_every_byte(store, cluster_client):
    seed(store, cluster_client)
    before = records_only(all_values(cluster_client))
    text = export_text(store)
    store.debug_clear_all()
    assert all_values(cluster_client) == {}
    result = import_records(store, io.StringIO(text))
    assert (result.records, result.created, result.overwritten, result.skipped) == (7, 7, 0, 0)
    assert records_only(all_values(cluster_client)) == before
    # And the restored records are readable as the store reads them.
    assert store.get_actor("go-1").ateom_pod_name == "pé"
    assert store.get_worker("ns", "bp", "bpod").ip == "10.0.0.7"


def test_import_from_a_path_and_bytes(store, cluster_client, tmp_path):
    seed(store, cluster_client)
    text = export_text(store)
    path = tmp_path / "backup.jsonl"
    path.write_text(text, encoding="utf-8")
    store.debug_clear_all()
    assert import_records(store, str(path)).created == 7
    store.debug_clear_all()
    assert import_records(store, text.encode("utf-8")).created == 7


def test_dry_run_writes_nothing(store, cluster_client):
    seed(store, cluster_client)
    text = export_text(store)
    a2 = store.get_actor("a2")
    a2.last_snapshot = "changed"
    store.update_actor(a2, a2.version)  # now at version 2, the file has 1
    cluster_client.delete("worker:ns:pool:pod-free")
    snapshot = all_values(cluster_client)
    r = import_records(store, io.StringIO(text), dry_run=True, policy="overwrite-if-version")
    assert all_values(cluster_client) == snapshot
    assert r.dry_run and (r.created, r.overwritten, r.skipped) == (1, 5, 1)
    outcome = {key: out for _, key, out, _, _ in r.details}
    assert outcome["worker:ns:pool:pod-free"] == "created" and outcome["actor:a2"] == "skipped"
    r = import_records(store, io.StringIO(text), dry_run=True, policy="skip")
    assert (r.created, r.overwritten, r.skipped) == (1, 0, 6)
    assert all_values(cluster_client) == snapshot


def test_policy_skip_leaves_existing_records(store, cluster_client):
    seed(store, cluster_client)
    text = export_text(store)
    a1 = store.get_actor("a1")
    a1.last_snapshot = "newer"
    store.update_actor(a1, a1.version)
    cluster_client.delete("actor:go-1")
    r = import_records(store, io.StringIO(text), policy="skip")
    assert (r.created, r.overwritten, r.skipped) == (1, 0, 6)
    assert store.get_actor("a1").last_snapshot == "newer"
    assert cluster_client.get("actor:go-1") == GO_STYLE


def test_policy_overwrite_if_version(store, cluster_client):
    seed(store, cluster_client)
    text = export_text(store)
    # a1 changed since the export (version 2 stored, 1 in the file): kept.
    a1 = store.get_actor("a1")
    a1.last_snapshot = "newer"
    store.update_actor(a1, a1.version)
    # a2 damaged by hand at the same version: restored from the file.
    original_a2 = cluster_client.get("actor:a2")
    cluster_client.set("actor:a2", b'{"actorId":"a2","version":"1","status":"STATUS_RUNNING"}')
    r = import_records(store, io.StringIO(text), policy="overwrite-if-version")
    assert (r.created, r.overwritten, r.skipped) == (0, 6, 1)
    assert store.get_actor("a1").last_snapshot == "newer"
    assert cluster_client.get("actor:a2") == original_a2


def test_on_write_reports_each_change(store, cluster_client):
    seed(store, cluster_client)
    text = export_text(store)
    cluster_client.delete("actor:a2")
    seen = []
    import_records(
        store, io.StringIO(text), on_write=lambda e, outcome, before: seen.append((e.key, outcome, before, e.version))
    )
    assert seen == [("actor:a2", "created", None, 1)]


def good_line(key="actor:x1"):
    return json.dumps(
        {"key": key, "encoding": "json", "value": json.dumps({"actorId": key.split(":", 1)[1], "version": "1"})}
    )


@pytest.mark.parametrize(
    "bad, message",
    [
        ("{not json", "not JSON"),
        ("[1, 2]", "not a JSON object"),
        ('{"encoding": "json", "value": "{}"}', '"key"'),
        ('{"key": "lock:actor:a", "encoding": "json", "value": "{}"}', "neither actor"),
        ('{"key": "actor:a", "encoding": "text", "value": "{}"}', '"encoding"'),
        ('{"key": "actor:a", "encoding": "json"}', "exactly one"),
        ('{"key": "actor:a", "encoding": "binary", "value_base64": "!!!"}', "base64"),
        ('{"key": "actor:a", "encoding": "json", "value": "{\\"actorId\\": \\"b\\"}"}', "not 'actor:a'"),
        ('{"key": "actor:a", "encoding": "json", "value": "{\\"actorId\\": 5}"}', "does not decode"),
        ('{"key": "actor:a", "encoding": "binary", "value_base64": "eyJhY3RvcklkIjoiYSJ9"}', "the value is json"),
    ],
)
def test_malformed_file_names_the_line_and_writes_nothing(store, cluster_client, bad, message):
    text = "\n".join([good_line("actor:x1"), "", good_line("actor:x2"), bad, good_line("actor:x3")]) + "\n"
    for dry_run in (False, True):
        with pytest.raises(ImportFileError) as e:
            import_records(store, io.StringIO(text), dry_run=dry_run)
        assert e.value.errors[0][0] == 4, e.value.errors
        assert message in e.value.errors[0][1]
        assert "line 4:" in str(e.value) and "nothing was written" in str(e.value)
        assert all_values(cluster_client) == {}


def test_bad_policy(store):
    with pytest.raises(ValueError, match="policy"):
        import_records(store, io.StringIO(""), policy="clobber")


def test_corrupt_record_exported_and_reported_on_import(store, cluster_client):
    cluster_client.set("actor:bad", b"{broken")
    actor(store, "ok")
    text = export_text(store)
    lines = {json.loads(line)["key"]: json.loads(line) for line in text.splitlines()}
    assert lines["actor:bad"]["record"] is None and lines["actor:bad"]["value"] == "{broken"
    assert lines["actor:bad"]["error"]
    store.debug_clear_all()
    r = import_records(store, io.StringIO(text))
    assert (r.created, r.corrupt) == (1, 1)
    assert cluster_client.get("actor:bad") is None


def test_export_streams_in_constant_memory(store, cluster_client):
    # iter_export is a generator over iter_raw: nothing is collected before the first line.
    for i in range(30):
        actor(store, f"m{i}")
    gen = backup.iter_export(store, batch=5)
    first = next(gen)
    assert json.loads(first)["key"].startswith("actor:m")
    assert len(list(gen)) == 29


def test_import_loses_races_safely(store, cluster_client, monkeypatch):
    """A record changed or created between the batch read and the batch write is never clobbered."""
    import storage.backup as backup_module

    seed(store, cluster_client)
    text = export_text(store)
    cluster_client.delete("worker:ns:pool:pod-free")
    real_fetch = backup_module.fetch_values

    def racing_fetch(node, keys, reroute=None):
        values = real_fetch(node, keys, reroute)
        if b"actor:a2" in keys:  # another editor bumps a2 right after the read
            a2 = store.get_actor("a2")
            a2.last_snapshot = "raced"
            store.update_actor(a2, a2.version)
        if b"worker:ns:pool:pod-free" in keys:  # and someone recreates the free worker
            worker(store, "ns", "pool", "pod-free", ip="10.9.9.9")
        return values

    monkeypatch.setattr(backup_module, "fetch_values", racing_fetch)
    r = import_records(store, io.StringIO(text), policy="overwrite-if-version")
    assert store.get_actor("a2").last_snapshot == "raced"  # the compare-and-set saw other bytes
    # The recreated worker is at version 1 like the file's: overwrite-if-version may replace it.
    assert store.get_worker("ns", "pool", "pod-free").ip == "10.0.0.1"
    assert (r.created, r.overwritten, r.skipped) == (0, 6, 1)


def test_import_policy_skip_never_overwrites_a_record_created_meanwhile(store, cluster_client, monkeypatch):
    import storage.backup as backup_module

    actor(store, "a1")
    text = export_text(store)
    store.debug_clear_all()
    real_fetch = backup_module.fetch_values

    def racing_fetch(node, keys, reroute=None):
        values = real_fetch(node, keys, reroute)
        cluster_client.set("actor:a1", b'{"actorId":"a1","version":"9"}')
        return values

    monkeypatch.setattr(backup_module, "fetch_values", racing_fetch)
    r = import_records(store, io.StringIO(text), policy="skip")
    assert (r.created, r.skipped) == (0, 1)
    assert cluster_client.get("actor:a1") == b'{"actorId":"a1","version":"9"}'


def test_check_and_backup_on_a_standalone_server(standalone_client):
    from storage import Persistence
    from storage.check import run_check

    p = Persistence(standalone_client)
    running_pair(p, "s1", "ns", "pool", "pod")
    worker(p, "ns", "pool", "orphan", "ghost")
    standalone_client.set("actor:bin-1", binary_actor())
    report = run_check(p)
    # The binary record is one the ate server cannot read (it reads JSON only): reported, never repaired.
    assert [f.kind for f in report.findings] == ["orphan_worker", "server_unreadable"]
    report.findings[0].repair.apply(p)
    assert [(f.kind, f.keys) for f in run_check(p).findings] == [("server_unreadable", ("actor:bin-1",))]
    before = {k: standalone_client.get(k) for k in standalone_client.keys("*") if k.startswith((b"actor:", b"worker:"))}
    text = export_text(p)
    standalone_client.flushdb()
    assert import_records(p, io.StringIO(text)).created == len(before) == 4
    after = {k: standalone_client.get(k) for k in standalone_client.keys("*")}
    assert after == before


def test_include_corrupt_gives_back_even_a_damaged_store(store, cluster_client):
    seed(store, cluster_client)
    cluster_client.set("actor:bad", b"{broken \xff")
    cluster_client.set("worker:ns:p:bad", b"\x08\x96")  # truncated varint
    before = records_only(all_values(cluster_client))
    text = export_text(store)
    store.debug_clear_all()
    dry = import_records(store, io.StringIO(text), dry_run=True, include_corrupt=True)
    assert (dry.created, dry.corrupt) == (9, 0) and all_values(cluster_client) == {}
    r = import_records(store, io.StringIO(text), include_corrupt=True)
    assert r.created == 9
    assert records_only(all_values(cluster_client)) == before
    # Never over a record: a second import leaves everything alone.
    cluster_client.set("actor:bad", b'{"actorId":"bad","version":"1"}')
    r = import_records(store, io.StringIO(text), include_corrupt=True, policy="overwrite-if-version")
    assert cluster_client.get("actor:bad") == b'{"actorId":"bad","version":"1"}'


def test_import_refuses_unreadable_records_unless_allowed(store, cluster_client):
    seed(store, cluster_client)
    cluster_client.set("actor:with:colon", b'{"actorId":"with:colon"}')  # the server's list: bad key format
    before = records_only(all_values(cluster_client))
    text = export_text(store)
    store.debug_clear_all()
    dry = import_checked(store, io.StringIO(text), dry_run=True)
    assert (dry.created, dry.unreadable, dry.unreadable_written) == (4, 4, 0) and all_values(cluster_client) == {}
    r = import_checked(store, io.StringIO(text))
    assert (r.records, r.created, r.unreadable, r.unreadable_written) == (8, 4, 4, 0)
    refused = {key for _, key, outcome, _, _ in r.details if outcome == "unreadable"}
    assert refused == {"actor:go-1", "actor:bin-1", "worker:ns:bp:bpod", "actor:with:colon"}
    assert not any(k.decode() in refused for k in all_values(cluster_client))
    # --allow-unreadable restores the rest byte for byte, and says how many unreadable records it wrote.
    r = import_checked(store, io.StringIO(text), allow_unreadable=True)
    assert (r.created, r.skipped, r.unreadable, r.unreadable_written) == (4, 4, 0, 4)
    assert records_only(all_values(cluster_client)) == before
    assert r.to_dict()["unreadable_written"] == 4


def _damaged_export(store, cluster_client) -> str:
    """An export holding readable records, records the ate server cannot read (unknown field, binary,
    an id with ':') and corrupt ones (truncated JSON, a truncated varint, invalid UTF-8)."""
    seed(store, cluster_client)
    cluster_client.set("actor:with:colon", b'{"actorId":"with:colon"}')
    cluster_client.set("actor:trunc", b'{"actorId":"trunc","status":"STATUS_SUSP')
    cluster_client.set("actor:bad", b"{broken \xff")
    cluster_client.set("worker:ns:p:bad", b"\x08\x96")
    return export_text(store)


READABLE, UNREADABLE, CORRUPT = 4, 4, 3


@pytest.mark.parametrize("policy", ["skip", "overwrite-if-version"])
@pytest.mark.parametrize("dry_run", [False, True])
@pytest.mark.parametrize("allow_unreadable", [False, True])
@pytest.mark.parametrize("include_corrupt", [False, True])
def test_no_import_option_writes_what_the_server_cannot_read_unless_allowed(
    store, cluster_client, include_corrupt, allow_unreadable, dry_run, policy
):
    """Issue 22 item 4: a corrupt record is unreadable too; --include-corrupt alone never writes it."""
    from storage.server_readable import server_read_error

    text = _damaged_export(store, cluster_client)
    store.debug_clear_all()
    r = import_checked(
        store,
        io.StringIO(text),
        policy=policy,
        dry_run=dry_run,
        include_corrupt=include_corrupt,
        allow_unreadable=allow_unreadable,
    )
    written = (
        READABLE + (UNREADABLE if allow_unreadable else 0) + (CORRUPT if include_corrupt and allow_unreadable else 0)
    )
    held_corrupt = 0 if include_corrupt else CORRUPT
    held_unreadable = (UNREADABLE + (CORRUPT if include_corrupt else 0)) if not allow_unreadable else 0
    assert r.records == READABLE + UNREADABLE + CORRUPT
    assert (r.created, r.corrupt, r.unreadable) == (written, held_corrupt, held_unreadable)
    assert r.unreadable_written == written - READABLE
    stored = records_only(all_values(cluster_client))
    if dry_run:
        assert stored == {}
        return
    assert len(stored) == written
    unreadable = {k for k, v in stored.items() if server_read_error(k, v) is not None}
    assert len(unreadable) == written - READABLE
    if not allow_unreadable:
        assert unreadable == set()
        assert cluster_client.get("actor:trunc") is None and cluster_client.get("actor:bad") is None


def test_include_corrupt_without_allow_unreadable_says_what_it_held_back(store, cluster_client):
    text = _damaged_export(store, cluster_client)
    store.debug_clear_all()
    r = import_checked(store, io.StringIO(text), include_corrupt=True)
    held = {key for _, key, outcome, _, _ in r.details if outcome == "unreadable"}
    assert {"actor:trunc", "actor:bad", "worker:ns:p:bad"} <= held
    assert cluster_client.get("actor:trunc") is None
