"""The consistency check and its repairs, on the real cluster."""

from __future__ import annotations

import pytest
from ops_helpers import RUNNING, SUSPENDED, actor, consistent_store, crafted_store, worker

from storage import check as cc
from storage.check import Repair, RepairNotApplicable, run_check
from storage.errors import StorageError, UnreadableStored, VersionConflict


def kinds(report):
    return sorted(f.kind for f in report.findings)


def test_consistent_store_has_no_findings(store, cluster_client):
    consistent_store(store, cluster_client)
    report = run_check(store)
    assert report.findings == [], [f.message for f in report.findings]
    assert report.ok
    assert report.actors == 5 and report.workers == 6 and report.locks == 2
    assert report.keys_scanned >= 13
    assert all(n == 0 for n in report.counts.values())
    assert report.duration_s >= 0


def test_empty_store(store):
    report = run_check(store)
    assert report.ok and report.actors == report.workers == report.locks == 0


def test_every_kind_is_detected(store, cluster_client):
    crafted_store(store, cluster_client)
    report = run_check(store)
    by = {k: report.by_kind(k) for k in cc.KINDS}
    assert [f.keys[0] for f in by[cc.ORPHAN_WORKER]] == ["worker:ns9:pool-a:w-orphan"]
    assert sorted(f.keys[0] for f in by[cc.LEAKED_WORKER]) == ["worker:ns1:pool-a:pod-l2", "worker:ns1:pool-c:pod-s2"]
    assert [f.keys for f in by[cc.ACTOR_WITHOUT_WORKER]] == [("actor:R1",)]
    assert [f.keys for f in by[cc.ACTOR_WORKER_FREE]] == [("actor:R2", "worker:ns1:pool-a:pod-free")]
    assert [f.keys[:2] for f in by[cc.ACTOR_WORKER_ELSEWHERE]] == [("actor:R3", "worker:ns1:pool-a:pod-shared")]
    assert len(by[cc.DUPLICATE_CLAIM]) == 1
    assert set(by[cc.DUPLICATE_CLAIM][0].keys) == {"actor:L", "worker:ns1:pool-a:pod-l1", "worker:ns1:pool-a:pod-l2"}
    assert [f.keys for f in by[cc.SUSPENDED_WITH_POD]] == [("actor:S1",)]
    assert [f.keys[0] for f in by[cc.ORPHAN_LOCK]] == ["lock:actor:ghost2"]
    assert [f.keys for f in by[cc.LOCK_WITHOUT_EXPIRY]] == [("lock:actor:a-sus",)]
    assert by[cc.CORRUPT_RECORD] == []
    assert report.counts[cc.LEAKED_WORKER] == 2 and sum(report.counts.values()) == len(report.findings)
    # Messages name what is wrong.
    assert "ghost" in by[cc.ORPHAN_WORKER][0].message and "does not exist" in by[cc.ORPHAN_WORKER][0].message
    assert "pod-l1" in next(f for f in by[cc.LEAKED_WORKER] if "pod-l2" in f.keys[0]).message
    assert "SUSPENDED" in next(f for f in by[cc.LEAKED_WORKER] if "pod-s2" in f.keys[0]).message
    # JSON form.
    d = report.to_dict()
    assert d["ok"] is False and len(d["findings"]) == len(report.findings)
    assert d["findings"][0]["kind"] in cc.KINDS


def test_no_round_trip_per_record(store, cluster_client):
    crafted_store(store, cluster_client)
    calls = []

    class Spy:
        def __getattr__(self, name):
            if name.startswith(("get_", "list_")):
                calls.append(name)
            return getattr(store, name)

    run_check(Spy(), page_size=3)
    assert calls == []


def test_small_pages_give_the_same_findings(store, cluster_client):
    crafted_store(store, cluster_client)
    big = run_check(store)
    small = run_check(store, page_size=1)
    assert [(f.kind, f.keys) for f in big.findings] == [(f.kind, f.keys) for f in small.findings]


def test_describe_shows_the_exact_change(store, cluster_client):
    crafted_store(store, cluster_client)
    report = run_check(store)
    orphan = report.by_kind(cc.ORPHAN_WORKER)[0].repair
    text = orphan.describe()
    assert "worker:ns9:pool-a:w-orphan" in text and "version 1 → 2" in text
    assert "actor_id: 'ghost' → ''" in text and "actor_namespace: 'tpl-ns' → ''" in text
    sus = report.by_kind(cc.SUSPENDED_WITH_POD)[0].repair
    assert [(c.field, c.before, c.after) for c in sus.changes()] == [
        ("ateom_pod_namespace", "ns1", ""),
        ("ateom_pod_name", "pod-old", ""),
        ("ateom_pod_ip", "10.1.0.4", ""),
    ]
    free = report.by_kind(cc.ACTOR_WORKER_FREE)[0].repair
    assert "actor_id: '' → 'R2'" in free.describe()
    lock = report.by_kind(cc.ORPHAN_LOCK)[0].repair
    assert "tok-ghost" in lock.describe()


def test_every_repair_then_recheck_is_clean(store, cluster_client):
    crafted_store(store, cluster_client)
    report = run_check(store)
    # Every finding offers a repair here; findings about the same record share it.
    assert all(f.repair is not None for f in report.findings)
    audits = cc.apply_all(store, report)
    assert len(audits) == len(cc.repairs(report)) == len({f.repair.key for f in report.findings})
    again = run_check(store)
    assert again.findings == [], [f.message for f in again.findings]
    # What the repairs did.
    assert store.get_worker("ns9", "pool-a", "w-orphan").actor_id == ""
    assert store.get_worker("ns1", "pool-a", "pod-l2").actor_id == ""
    assert store.get_worker("ns1", "pool-a", "pod-l1").actor_id == "L"
    assert store.get_actor("R1").status == SUSPENDED and store.get_actor("R1").ateom_pod_name == ""
    w = store.get_worker("ns1", "pool-a", "pod-free")
    assert (w.actor_id, w.actor_namespace, w.actor_template) == ("R2", "tpl-ns", "tpl")
    assert store.get_actor("R3").status == SUSPENDED
    assert store.get_actor("R4").status == RUNNING
    s1 = store.get_actor("S1")
    assert (s1.ateom_pod_namespace, s1.ateom_pod_name, s1.ateom_pod_ip, s1.version) == ("", "", "", 2)
    assert store.get_lock("lock:actor:ghost2") is None
    assert store.get_lock("lock:actor:a-sus") is None
    assert store.get_lock("lock:actor:a-run") is not None
    audit = next(a for a in audits if a["key"] == "actor:S1")
    assert audit["version_before"] == 1 and audit["version_after"] == 2
    assert audit["changed_fields"]["ateom_pod_name"] == ["pod-old", ""]


@pytest.mark.parametrize(
    "kind",
    [
        cc.ORPHAN_WORKER,
        cc.LEAKED_WORKER,
        cc.ACTOR_WITHOUT_WORKER,
        cc.ACTOR_WORKER_FREE,
        cc.ACTOR_WORKER_ELSEWHERE,
        cc.SUSPENDED_WITH_POD,
        cc.ORPHAN_LOCK,
        cc.LOCK_WITHOUT_EXPIRY,
        cc.DUPLICATE_CLAIM,
    ],
)
def test_each_repair_alone_clears_its_finding(store, cluster_client, kind):
    crafted_store(store, cluster_client)
    before = run_check(store)
    applied = set()
    for finding in before.by_kind(kind):
        # A repair survives a round trip through the confirmation form.
        repair = Repair.from_dict(finding.repair.to_dict())
        assert repair == finding.repair
        repair.apply(store)
        applied.add(repair)
    after = run_check(store)
    assert after.by_kind(kind) == []

    # Nothing else was disturbed: the findings other repairs mend are all still there.
    def others(report):
        return sorted((f.kind, f.keys) for f in report.findings if f.kind != kind and f.repair not in applied)

    assert others(after) == others(before)


def test_orphan_worker_reassigned_to_the_actor_on_its_pod(store, cluster_client):
    actor(store, "R5", RUNNING, "ns1", "pod-5", "10.5.0.1")
    worker(store, "ns1", "pool-a", "pod-5", "gone")
    report = run_check(store)
    assert kinds(report) == sorted([cc.ORPHAN_WORKER, cc.ACTOR_WORKER_ELSEWHERE])
    orphan = report.by_kind(cc.ORPHAN_WORKER)[0]
    # One repair mends both findings: the worker is reassigned to the actor running on its pod.
    assert orphan.repair == report.by_kind(cc.ACTOR_WORKER_ELSEWHERE)[0].repair and "R5" in orphan.note
    assert orphan.repair.changes()[-1].after == "R5"
    cc.apply_all(store, report)
    assert store.get_worker("ns1", "pool-a", "pod-5").actor_id == "R5"
    assert run_check(store).ok


def test_running_actor_naming_no_pod(store):
    actor(store, "R6", RUNNING)
    report = run_check(store)
    assert kinds(report) == [cc.ACTOR_WITHOUT_WORKER]
    assert "names no ateom pod" in report.findings[0].message
    cc.apply_all(store, report)
    assert store.get_actor("R6").status == SUSPENDED and run_check(store).ok


def test_duplicate_claim_in_two_pools_told_apart_by_ip(store):
    actor(store, "D", RUNNING, "ns1", "pod-d", "10.9.0.2")
    worker(store, "ns1", "pool-x", "pod-d", "D", ip="10.9.0.1")
    worker(store, "ns1", "pool-y", "pod-d", "D", ip="10.9.0.2")
    report = run_check(store)
    assert kinds(report) == [cc.DUPLICATE_CLAIM]
    repair = report.findings[0].repair
    assert repair.key == "worker:ns1:pool-x:pod-d"
    repair.apply(store)
    assert run_check(store).ok


def test_corrupt_records_are_reported_not_repaired(store, cluster_client):
    cluster_client.set("actor:bad", b"{not json")
    cluster_client.set("worker:ns:p:bad", b"\xff\xff\xff")
    report = run_check(store)
    assert kinds(report) == [cc.CORRUPT_RECORD, cc.CORRUPT_RECORD]
    assert all(f.repair is None for f in report.findings)


def test_lock_for_a_corrupt_actor_is_not_an_orphan(store, cluster_client):
    cluster_client.set("actor:bad", b"{not json")
    assert store.acquire_lock("lock:actor:bad", "t", 60)
    assert kinds(run_check(store)) == [cc.CORRUPT_RECORD]


# ------------------------------------------------------------------ refused repairs


def test_repair_refused_when_worker_changed(store, cluster_client):
    crafted_store(store, cluster_client)
    finding = run_check(store).by_kind(cc.ORPHAN_WORKER)[0]
    w = store.get_worker("ns9", "pool-a", "w-orphan")
    w.actor_id = "ghost-2"
    store.update_worker(w, w.version)
    with pytest.raises(RepairNotApplicable, match="no longer applies") as e:
        finding.repair.apply(store)
    assert isinstance(e.value, VersionConflict) and isinstance(e.value, StorageError)
    assert store.get_worker("ns9", "pool-a", "w-orphan").actor_id == "ghost-2"


def test_repair_refused_when_the_finding_no_longer_holds(store, cluster_client):
    crafted_store(store, cluster_client)
    report = run_check(store)
    # The orphan's actor appears: the worker is no longer an orphan.
    actor(store, "ghost")
    with pytest.raises(RepairNotApplicable, match="exists now"):
        report.by_kind(cc.ORPHAN_WORKER)[0].repair.apply(store)
    # The suspended actor resumes: its pod fields are not stale any more.
    s1 = store.get_actor("S1")
    s1.status = RUNNING
    store.update_actor(s1, s1.version)
    with pytest.raises(RepairNotApplicable, match="no longer applies"):
        report.by_kind(cc.SUSPENDED_WITH_POD)[0].repair.apply(store)
    assert store.get_actor("S1").ateom_pod_name == "pod-old"
    # The missing worker is created: the running actor is not suspended.
    worker(store, "ns1", "pool-z", "pod-none", "R1")
    with pytest.raises(RepairNotApplicable, match="a worker exists"):
        report.by_kind(cc.ACTOR_WITHOUT_WORKER)[0].repair.apply(store)
    assert store.get_actor("R1").status == RUNNING
    # The orphan lock is released and taken again by someone else.
    store.release_lock("lock:actor:ghost2", "tok-ghost")
    assert store.acquire_lock("lock:actor:ghost2", "tok-new", 60)
    with pytest.raises(RepairNotApplicable, match="another token"):
        report.by_kind(cc.ORPHAN_LOCK)[0].repair.apply(store)
    assert store.get_lock("lock:actor:ghost2").token == "tok-new"
    # The worker is deleted.
    store.delete_worker("ns1", "pool-a", "pod-l2")
    with pytest.raises(RepairNotApplicable, match="no longer exists"):
        next(f for f in report.by_kind(cc.LEAKED_WORKER) if "pod-l2" in f.keys[0]).repair.apply(store)


def test_version_conflict_between_recheck_and_write_propagates(store, cluster_client, redis_url):
    crafted_store(store, cluster_client)
    finding = run_check(store).by_kind(cc.LEAKED_WORKER)[0]
    ns, pool, pod = finding.repair.namespace, finding.repair.pool, finding.repair.pod

    class Racing:
        """Another editor writes the worker right after the repair re-read it."""

        def __getattr__(self, name):
            return getattr(store, name)

        def get_writable(self, kind, key):
            seen = store.get_writable(kind, key)
            other = store.get_record(kind, key)
            other.actor_id = "someone-else"
            store.update_worker(other, other.version)
            return seen

    with pytest.raises(VersionConflict) as e:
        finding.repair.apply(Racing())
    assert not isinstance(e.value, RepairNotApplicable)
    assert store.get_worker(ns, pool, pod).actor_id == "someone-else"


def test_from_dict_rejects_unknown_actions():
    with pytest.raises(ValueError):
        Repair.from_dict({"action": "drop_everything"})
    with pytest.raises(ValueError):
        Repair.from_dict({"action": "release_lock", "lock_key": "k", "token": "t", "reason": "x", "evil": 1})


def test_findings_about_one_record_share_its_repair(store, cluster_client):
    worker(store, "ns", "pool", "w1", "gone")
    worker(store, "ns", "pool", "w2", "gone")
    cluster_client.set("lock:actor:gone", "tok")  # no actor, no expiry
    report = run_check(store)
    assert kinds(report) == sorted(
        [cc.ORPHAN_WORKER, cc.ORPHAN_WORKER, cc.DUPLICATE_CLAIM, cc.ORPHAN_LOCK, cc.LOCK_WITHOUT_EXPIRY]
    )
    dup = report.by_kind(cc.DUPLICATE_CLAIM)[0]
    assert dup.repair in [f.repair for f in report.by_kind(cc.ORPHAN_WORKER)]
    assert report.by_kind(cc.ORPHAN_LOCK)[0].repair == report.by_kind(cc.LOCK_WITHOUT_EXPIRY)[0].repair
    assert len(cc.repairs(report)) == 3
    cc.apply_all(store, report)
    assert run_check(store).ok


# ------------------------------------------------------------------ records the ate server cannot read


def unreadable_findings(report, key):
    return [f for f in report.findings if f.keys[0] == key and f.kind in (cc.SERVER_UNREADABLE, cc.CORRUPT_RECORD)]


@pytest.mark.parametrize(
    "key, value, says",
    [
        ("actor:u1", b'{"actorId":"u1","status":"STATUS_SUSPENDED","foo":1}', 'unknown field "foo"'),
        ("actor:u2", b'{"actorId":"u2","status":"STATUS_PAUSED"}', "invalid value for enum field status"),
        ("actor:u3", b'{"actorId":"u3","actor_id":"u3"}', "duplicate field"),
        ("actor:u4", b'{"actorId":"u4","version":"01"}', "invalid value for int64 field version"),
        ("actor:u:5", b'{"actorId":"u:5"}', 'bad key format "actor:u:5"'),
        ("worker:ns:p:w1", b'{"workerNamespace":"ns","workerPool":"p","workerPod":"w1","x":"y"}', "unknown field"),
    ],
)
def test_a_record_the_server_cannot_read_is_reported_once(store, cluster_client, key, value, says):
    cluster_client.set(key, value)
    report = run_check(store)
    assert kinds(report) == [cc.SERVER_UNREADABLE]
    [finding] = report.findings
    assert finding.keys == (key,) and says in finding.message and finding.repair is None
    assert ("ListActors" if key.startswith("actor:") else "ListWorkers") in finding.message
    assert "raw JSON" in finding.note
    assert report.counts[cc.SERVER_UNREADABLE] == 1 and report.unreadable_by_server == 1
    assert report.to_dict()["unreadable_by_server"] == 1


def test_canonical_and_other_readable_forms_are_not_flagged(store, cluster_client):
    consistent_store(store, cluster_client)
    # Other member order, whitespace, proto names, nulls: the server reads them all.
    cluster_client.set("actor:r1", b'{ "status": "STATUS_SUSPENDED", "actor_id": "r1", "version": null }')
    cluster_client.set("actor:r2", b'{"version":"3","actorId":"r2","status":4}')
    report = run_check(store)
    assert report.ok, [f.message for f in report.findings]
    assert report.unreadable_by_server == 0


def test_corrupt_records_are_reported_once_saying_whether_the_server_reads_them(store, cluster_client):
    cluster_client.set("actor:bad", b"{not json")
    # Go reads this int64 (an exact integer in exponent form), and so does atedash (issue 22): it
    # is neither corrupt nor unreadable.
    cluster_client.set("actor:big", b'{"actorId":"big","version":9.223372036854775807e18}')
    report = run_check(store)
    assert kinds(report) == [cc.CORRUPT_RECORD]
    bad, big = (unreadable_findings(report, k) for k in ("actor:bad", "actor:big"))
    assert len(bad) == 1 and "the ate server cannot either" in bad[0].message
    assert big == [] and store.get_actor("big").version == 2**63 - 1
    assert report.counts[cc.SERVER_UNREADABLE] == 0 and report.unreadable_by_server == 1


def test_no_repair_rewrites_a_record_the_server_cannot_read(store, cluster_client):
    # A worker claiming a suspended actor (leaked), whose value the server cannot read; the actor's
    # lock is not an orphan: the actor exists as atedash reads it, though the server cannot read it.
    actor(store, "S9")
    cluster_client.set(
        "worker:ns1:pool-a:pod-9",
        b'{"workerNamespace":"ns1","workerPool":"pool-a","workerPod":"pod-9","actorId":"S9","version":"1",'
        b'"extra":true}',
    )
    cluster_client.set("actor:U9", b'{"actorId":"U9","status":"STATUS_SUSPENDED","ateomPodName":"p","zz":0}')
    assert store.acquire_lock("lock:actor:U9", "t", 60)
    report = run_check(store)
    assert kinds(report) == sorted(
        [cc.LEAKED_WORKER, cc.SERVER_UNREADABLE, cc.SERVER_UNREADABLE, cc.SUSPENDED_WITH_POD]
    )
    leaked = report.by_kind(cc.LEAKED_WORKER)[0]
    stale_pod = report.by_kind(cc.SUSPENDED_WITH_POD)[0]
    for finding, key in ((leaked, "worker:ns1:pool-a:pod-9"), (stale_pod, "actor:U9")):
        assert finding.repair is None and f"the ate server cannot read {key}" in finding.note
    assert cc.repairs(report) == []
    assert sorted(f.keys[0] for f in report.by_kind(cc.SERVER_UNREADABLE)) == ["actor:U9", "worker:ns1:pool-a:pod-9"]
    assert report.unreadable_by_server == 2


@pytest.mark.parametrize("kind", [cc.LEAKED_WORKER, cc.SUSPENDED_WITH_POD, cc.ACTOR_WITHOUT_WORKER])
def test_a_repair_refuses_a_record_that_became_unreadable_since_the_check(store, cluster_client, kind):
    """Issue 22: Go's UpdateActor/UpdateWorker fail on a record they cannot read; so does a repair,
    with Go's reason, even when the repair was proposed while the record was readable."""
    crafted_store(store, cluster_client)
    finding = run_check(store).by_kind(kind)[0]
    key = finding.repair.key
    stored = cluster_client.get(key)
    odd = stored[:-1] + b',"zz":0}'  # the same record, plus a field the server does not know
    cluster_client.set(key, odd)
    with pytest.raises(UnreadableStored) as e:
        finding.repair.verify(store)
    assert e.value.key == key and e.value.reason.endswith('unknown field "zz"')
    with pytest.raises(UnreadableStored) as e:
        finding.repair.apply(store)
    assert e.value.call == ("UpdateWorker" if key.startswith("worker:") else "UpdateActor")
    assert cluster_client.get(key) == odd
