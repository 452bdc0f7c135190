"""The consistency report once per fleet (issue 19, item 3): one check at a time for every process,
read on the replicas, its findings kept in the store within a bound whatever the records hold."""

from __future__ import annotations

import json

import pytest

from storage.ateapi_pb2 import Actor, Worker
from storage.check import CheckReport, Finding
from storage.check.report import MAX_FINDING_BYTES, MAX_STORED_BYTES
from storage.codec import ACTOR_CODEC, WORKER_CODEC


def report_of(findings: list[Finding]) -> CheckReport:
    return CheckReport(findings, {}, 0.1, 10, 1, 1, 0)


def test_the_stored_report_stays_within_its_bound_whatever_the_findings_quote():
    small = [Finding("orphan_worker", (f"worker:ns:p:w{i}",), f"worker w{i} claims a missing actor") for i in range(10)]
    long_message = Finding("orphan_worker", ("worker:ns:p:long",), "pod " + "x" * 5_000_000)
    long_key = Finding("orphan_worker", ("worker:ns:p:" + "k" * 3_000_000,), "a key of megabytes")
    many = [Finding("orphan_lock", (f"lock:actor:{i}" + "y" * 3000,), "z" * 3000) for i in range(2000)]
    report = report_of(small + [long_message, long_key] + many)

    stored = report.to_stored(2000)
    size = len(json.dumps(stored))
    assert size <= MAX_STORED_BYTES + 10_000
    kept = stored["findings"]
    assert all(len(json.dumps(f)) <= MAX_FINDING_BYTES for f in kept)
    assert [f["keys"] for f in kept[:10]] == [list(f.keys) for f in small]
    assert kept[10]["keys"] == ["worker:ns:p:long"] and kept[10]["message"].endswith("[cut: too long to keep]")
    assert all("k" * 1000 not in f["keys"][0] for f in kept)  # the key of megabytes is not kept
    assert stored["findings_cut"] == len(report.findings) - len(kept) > 0
    back = CheckReport.from_stored(json.loads(json.dumps(stored)))
    assert back.total_findings == len(report.findings)
    assert not back.ok


def test_a_small_report_is_stored_whole():
    findings = [Finding("orphan_worker", (f"worker:ns:p:w{i}",), "m") for i in range(5)]
    stored = report_of(findings).to_stored(2000)
    assert len(stored["findings"]) == 5 and stored["findings_cut"] == 0


def seed(store, actors: int, orphans: int) -> None:
    pipe = store.client.pipeline(transaction=False)
    for i in range(actors):
        actor = Actor(actor_id=f"c{i:05d}", version=1, status=Actor.STATUS_SUSPENDED)
        pipe.set(f"actor:{actor.actor_id}", ACTOR_CODEC.encode_json(actor))
    for i in range(orphans):
        worker = Worker(worker_namespace="ns", worker_pool="p", worker_pod=f"w{i}", actor_id=f"gone{i}", version=1)
        pipe.set(f"worker:ns:p:w{i}", WORKER_CODEC.encode_json(worker))
    pipe.execute()
    for node in store.client.get_primaries():
        assert store.client.get_redis_connection(node).execute_command("WAIT", 1, 10_000) >= 1


def command_calls(client, nodes, command: str) -> int:
    return sum(
        client.get_redis_connection(n).info("commandstats").get(f"cmdstat_{command}", {}).get("calls", 0) for n in nodes
    )


def test_two_processes_run_one_check_read_on_the_replicas_and_show_the_same_report(store, redis_url):
    from atedash.background.check import CheckCache
    from atedash.core.store import StoreConnection

    seed(store, 5000, 7)
    client = store.client
    for node in client.get_primaries() + client.get_replicas():
        client.get_redis_connection(node).config_resetstat()
    fence = "atedash:fleet:{check}:fence"
    before = int(client.get(fence) or 0)
    one, two = StoreConnection(redis_url), StoreConnection(redis_url)
    try:
        first, second = CheckCache(one, max_age=600), CheckCache(two, max_age=600)
        threads = [first.refresh(), second.refresh()]  # the second finds the first's lease
        for thread in threads:
            assert thread is not None
            thread.join(120)
        assert int(client.get(fence) or 0) == before + 1  # one check for both
        a, b = first.report, second.report
        assert a is not None and b is not None
        assert [f.to_dict() for f in a.findings] == [f.to_dict() for f in b.findings]
        assert a.counts.get("orphan_worker") == 7 and a.actors == 5000
        assert first.maker() == second.maker() != ""
        # Read on the replicas: no SCAN reached a primary, and the records' GETs went to the replicas.
        assert command_calls(client, client.get_primaries(), "scan") == 0
        assert command_calls(client, client.get_replicas(), "scan") > 0
        assert command_calls(client, client.get_replicas(), "get") >= 5000
        assert command_calls(client, client.get_primaries(), "get") < 100
    finally:
        one.close()
        two.close()


@pytest.mark.parametrize("setting, walk_s, compute_s", [(None, 6.0, 15.0), (3.0, 3.0, 3.0)], ids=["unset", "3s"])
def test_the_fleet_lease_setting_sets_the_lease_of_walks_counts_and_checks(
    ops_settings, editor, monkeypatch, setting, walk_s, compute_s
):
    """ATEDASH_FLEET_LEASE_SECONDS (the fleet tests' few seconds) is the lease of every fleet job;
    unset, a walk's is 6 s and a count's or a check's 15 s (docs/fleet.md)."""
    from storage.fleet import Fleet

    ops_settings.ATEDASH_FLEET_LEASE_SECONDS = setting
    taken = {}
    acquire = Fleet.acquire

    def spy(self, job, *args, **kwargs):
        lease = acquire(self, job, *args, **kwargs)
        if lease is not None:
            taken[job] = lease.ttl_s
        return lease

    monkeypatch.setattr(Fleet, "acquire", spy)
    assert editor.post("/actors/all/", {"status": "RUNNING"}).status_code == 302
    assert editor.post("/overview/counts/").status_code == 302
    assert editor.post("/ops/check/").status_code == 302
    assert taken == {"walks": walk_s, "stats": compute_s, "check": compute_s}
