"""The overview, problems first: the attention strip (atedash/ops/attention.py) lists a node down, a shard
without replica, slots not covered, records unreadable by ate, check findings and stale counts, or
says "Nothing needs attention"; pools grouped by namespace past ten rows."""

import re
import time

from atedash.core.app import current_app
from atedash.ops import attention
from storage.check.kinds import duration_text
from storage.cluster import ClusterOverview, NodeInfo, StoreStats


def node(node_id, role, port, *, primary=None, healthy=True, slots=(), flags=None):
    return NodeInfo(
        node_id=node_id,
        address=f"10.0.0.1:{port}",
        role=role,
        primary_id=primary,
        healthy=healthy,
        flags=flags if flags is not None else (["master"] if role == "primary" else ["slave"]),
        slots=list(slots),
        keys=None,
        used_memory=None,
    )


def healthy_cluster():
    return [
        node("p1", "primary", 1, slots=[(0, 5460)]),
        node("p2", "primary", 2, slots=[(5461, 10922)]),
        node("p3", "primary", 3, slots=[(10923, 16383)]),
        node("r1", "replica", 4, primary="p1"),
        node("r2", "replica", 5, primary="p2"),
        node("r3", "replica", 6, primary="p3"),
    ]


def test_a_healthy_cluster_needs_nothing():
    assert attention.cluster_items(ClusterOverview("cluster", "ok", 16384, healthy_cluster())) == []


def test_a_failed_primary_and_the_shard_left_without_replica():
    nodes = healthy_cluster()
    # p1 failed, r1 took over its slots and has no replica now
    nodes[0] = node("p1", "primary", 1, healthy=False, flags=["master", "fail"])
    nodes[3] = node("r1", "primary", 4, slots=[(0, 5460)])
    items = attention.cluster_items(ClusterOverview("cluster", "ok", 16384, nodes))
    assert [i.id for i in items] == ["node-down", "no-replica"]
    assert "10.0.0.1:1 (primary) is down: master, fail" in items[0].what
    assert "10.0.0.1:4 (5,461 slots) has no replica" in items[1].what
    assert all(i.then for i in items)


def test_slots_not_covered():
    nodes = healthy_cluster()
    nodes[0] = node("p1", "primary", 1, healthy=False, flags=["master", "fail"], slots=[(0, 5460)])
    items = attention.cluster_items(ClusterOverview("cluster", "fail", 16384 - 5461, nodes))
    assert [i.id for i in items] == ["node-down", "slots-uncovered"]
    assert "5,461 of 16,384 slots are not covered" in items[1].what


def stats(**kw):
    base = dict(
        actors_by_status={"STATUS_RUNNING": 1, "CORRUPT": 1},
        workers_by_pool={},
        locks=0,
        computed_at=time.time(),
        duration_s=0.1,
        keys_scanned=10,
        unreadable_actors=2,
        unreadable_workers=1,
    )
    return StoreStats(**{**base, **kw})


def test_unreadable_records_and_stale_counts():
    items = attention.stats_items(stats(), age=95, interval=30, running=True)
    assert [i.id for i in items] == ["unreadable", "stale-counts"]
    assert items[0].what.startswith("3 records unreadable by ate, 1 of them corrupt")
    assert "counted 95 s ago, longer than their 30 s interval (a recount is running)" in items[1].what
    readable = stats(unreadable_actors=0, unreadable_workers=0)
    assert attention.stats_items(readable, age=5, interval=30, running=False) == []


def test_ages_read_as_the_check_s_findings_word_durations():
    """One wording of a duration for the overview's notices and the lock findings (past 2 h, in tenths)."""
    readable = stats(unreadable_actors=0, unreadable_workers=0)
    [item] = attention.stats_items(readable, age=9000, interval=3600, running=False)
    assert "counted 2.5 h ago, longer than their 60 min interval" in item.what
    words = ["119 s", "2 min", "119 min", "2.0 h", "24.0 h"]
    assert [duration_text(s) for s in (119, 120, 7199, 7200, 86_400)] == words


def strip(body):
    return re.search(r'<section class="attention[^"]*" id="attention".*?</section>', body, re.S).group(0)


def test_the_page_says_nothing_needs_attention_then_lists_problems(viewer, store, make_actor):
    make_actor("fine")
    current_app().stats.refresh().join(60)
    body = viewer.get("/").content.decode()
    assert body.index('id="attention"') < body.index('id="stats"') < body.index('id="cluster"')
    assert "Nothing needs attention." in strip(body)

    store.client.set("actor:odd", b'{"actorId":"odd","status":"STATUS_PAUSED"}')
    current_app().stats.refresh().join(60)
    current_app().checks.refresh().join(60)
    section = strip(viewer.get("/").content.decode())
    assert "Nothing needs attention" not in section and "Needs attention (2)" in section
    assert 'data-attention="unreadable"' in section and "1 record unreadable by ate" in section
    assert 'data-attention="check-findings"' in section and "has 1 finding" in section


def test_the_counts_fragment_brings_the_strip_along(viewer, store):
    store.client.set("actor:odd", b'{"actorId":"odd","status":"STATUS_PAUSED"}')
    current_app().stats.refresh().join(60)
    body = viewer.get("/overview/counts/", headers={"HX-Request": "true"}).content.decode()
    assert '<section class="attention attention-bad" id="attention"' in body and 'hx-swap-oob="true"' in body


def seed_pools(store, pools):
    from storage.ateapi_pb2 import Worker
    from storage.codec import WORKER_CODEC

    pipe = store.client.pipeline(transaction=False)
    for ns, pool, n in pools:
        for i in range(n):
            w = Worker(worker_namespace=ns, worker_pool=pool, worker_pod=f"w{i}", version=1)
            if i % 2:
                w.actor_id = f"a-{ns}-{pool}-{i}"
            pipe.set(f"worker:{ns}:{pool}:w{i}", WORKER_CODEC.encode_json(w))
    pipe.execute()


def test_pools_grouped_by_namespace_past_ten(viewer, store):
    seed_pools(store, [("team-a", f"p{i:02d}", 2) for i in range(8)] + [("team-b", f"q{i}", 3) for i in range(4)])
    current_app().stats.refresh().join(60)
    body = viewer.get("/").content.decode()
    groups = re.findall(r'<details class="pool-group" data-namespace="([^"]+)">\s*<summary>(.*?)</summary>', body, re.S)
    assert [ns for ns, _ in groups] == ["team-a", "team-b"]
    assert "8 pools, 8 free, 8 assigned" in groups[0][1] and "4 pools, 8 free, 4 assigned" in groups[1][1]
    assert "12 pools in 2 namespaces" in body


def test_few_pools_stay_one_table(viewer, store):
    seed_pools(store, [("team-a", "small", 2), ("team-b", "big", 2)])
    current_app().stats.refresh().join(60)
    body = viewer.get("/").content.decode()
    assert '<table class="table table-cards" id="workers-by-pool">' in body and "pool-group" not in body


def test_counts_far_from_the_store_s_key_count_are_said_to_predate_a_change():
    counted = stats(unreadable_actors=0, unreadable_workers=0, keys_scanned=203)
    [item] = attention.stats_items(counted, age=5, interval=30, running=True, keys_now=240_564)
    assert item.id == "stale-counts" and "holds 240,564 keys now, they counted 203" in item.what
    # atedash's own keys (audit stream, sessions) are no reason
    assert attention.stats_items(counted, age=5, interval=30, running=False, keys_now=210) == []
