"""The hot paths: list rows rendered in Python (atedash.records.listing), read back cell by cell as a browser
would (escaping, clipping, links, the bulk checkbox) for awkward ids; the actor detail reads the worker by key from the counted pools
and falls back to the scan; every response carries Server-Timing."""

from html.parser import HTMLParser
from urllib.parse import quote

import pytest
from django.urls import reverse, set_script_prefix

from atedash.core.app import current_app
from atedash.core.links import actor_url, worker_url
from atedash.records import listing
from atedash.records.kinds import status_name
from atedash.templatetags.atedash import clip, or_dash
from storage.ateapi_pb2 import Actor, Worker
from storage.keys import actor_key, worker_key


class _Rows(HTMLParser):
    """Table rows as a browser reads them: each row's attributes and cells, each cell's attributes,
    text, links and inputs (entities decoded)."""

    def __init__(self, html):
        super().__init__(convert_charrefs=True)
        self.rows = []
        self.in_cell = False
        self.feed(html)
        self.close()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "tr":
            self.rows.append({"attrs": attrs, "cells": []})
        elif tag == "td":
            self.rows[-1]["cells"].append({"attrs": attrs, "text": "", "links": [], "inputs": []})
            self.in_cell = True
        elif tag == "a":
            self.rows[-1]["cells"][-1]["links"].append(attrs["href"])
        elif tag == "input":
            self.rows[-1]["cells"][-1]["inputs"].append(attrs)

    def handle_endtag(self, tag):
        if tag == "td":
            self.in_cell = False

    def handle_data(self, data):
        if self.in_cell:
            self.rows[-1]["cells"][-1]["text"] += data


def _cells(row, columns):
    cells = [c for c in row["cells"] if c["attrs"].get("class") != "select"]
    assert [c["attrs"]["data-label"] for c in cells] == list(columns)
    return cells


AWKWARD = [
    "plain-id-1",
    "a.b_c~d",
    "UPPER",
    "",
    "with/slash",
    "sp ace",
    'quote"s',
    "<script>",
    "amp&er",
    "per%cent",
    "q?uery",
    "ha#sh",
    "co:lon@at",
    "ünïcødé",
    "tab\tnew\nline",
    "'single'",
    "{braces}",
    "zzatedashzz0",
    "-",
    ".",
    "long<" * 300,  # clipped in the cells, as the |clip filter does
]


def _actor_rows():
    rows = []
    for i, text in enumerate(AWKWARD):
        actor = Actor(
            actor_id=text,
            actor_template_namespace=text or "ns",
            actor_template_name=f"t<{i}>",
            status=i % 6,
            ateom_pod_namespace=text if i % 3 else "",
            ateom_pod_name=text if i % 2 else "",
            ateom_pod_ip=f"10.0.0.{i}" if i % 2 else "",
            version=i * 1_000_003,
            last_snapshot=text if i % 4 else "",
        )
        pod = (
            f"{actor.ateom_pod_namespace}/{actor.ateom_pod_name}"
            if actor.ateom_pod_namespace and actor.ateom_pod_name
            else actor.ateom_pod_name
        )
        rows.append({"actor": actor, "status": status_name(actor), "pod": pod})
    return rows


def _workers():
    out = []
    for i, text in enumerate(AWKWARD):
        w = Worker(
            worker_namespace=text if i % 2 else "ns-1",
            worker_pool=text if i % 3 else "pool",
            worker_pod=text or "pod",
            ip=text if i % 5 else "",
            actor_id=AWKWARD[-i] if i % 4 else "",
            actor_namespace=text,
            actor_template=text if i % 3 else "",
            version=i,
        )
        out.append(w)
    return out


def _link_of(url, text, cell):
    """A detail link where a URL can name the record, else the text alone."""
    assert cell["text"] == text
    assert cell["links"] == ([url] if url else [])


def _checkbox(row, key, version, selectable):
    boxes = [c for c in row["cells"] if c["attrs"].get("class") == "select"]
    if not selectable:
        assert boxes == []
        return
    assert row["cells"][0] is boxes[0] and len(boxes) == 1
    (box,) = boxes[0]["inputs"]
    assert box["type"] == "checkbox" and box["name"] == "target" and box["form"] == "bulk-form"
    assert box["value"] == f"{key}@{version}" and box["aria-label"] == f"select {key}"


@pytest.mark.parametrize("selectable", [False, True])
@pytest.mark.parametrize("prefix", ["/", "/sub path&x/"])
def test_rows_read_back_as_the_records(prefix, selectable):
    set_script_prefix(prefix)
    try:
        rows = _actor_rows()
        parsed = _Rows(listing.actor_rows_html(rows, selectable=selectable)).rows
        assert len(parsed) == len(rows)
        for row, got in zip(rows, parsed):
            a = row["actor"]
            assert got["attrs"] == {"data-actor-id": a.actor_id}
            _checkbox(got, actor_key(a.actor_id), a.version, selectable)
            cells = _cells(got, listing.ACTOR_COLUMNS)
            assert [c["text"] for c in cells[:2]] == [clip(a.actor_template_namespace), clip(a.actor_template_name)]
            _link_of(actor_url(a.actor_id), a.actor_id, cells[2])
            assert cells[3]["text"] == row["status"]
            texts = [c["text"] for c in cells[4:]]
            assert texts == [clip(or_dash(row["pod"])), clip(or_dash(a.ateom_pod_ip)), str(a.version)] + [
                clip(or_dash(a.last_snapshot))
            ]
            assert cells[6]["attrs"]["class"] == "num"
        workers = _workers()
        parsed = _Rows(listing.worker_rows_html(workers, selectable=selectable)).rows
        assert len(parsed) == len(workers)
        for w, got in zip(workers, parsed):
            assert got["attrs"] == {"data-worker": f"{w.worker_namespace}/{w.worker_pool}/{w.worker_pod}"}
            key = worker_key(w.worker_namespace, w.worker_pool, w.worker_pod)
            _checkbox(got, key, w.version, selectable)
            cells = _cells(got, listing.WORKER_COLUMNS)
            assert [c["text"] for c in cells[:2]] == [w.worker_namespace, w.worker_pool]
            _link_of(worker_url(w), w.worker_pod, cells[2])
            assert cells[3]["text"] == clip(or_dash(w.ip))
            if w.actor_id:
                _link_of(actor_url(w.actor_id), w.actor_id, cells[4])
            else:
                assert cells[4]["text"] == "free" and cells[4]["links"] == []
            template = f"{clip(w.actor_namespace)}/{clip(w.actor_template)}" if w.actor_template else "—"
            assert cells[5]["text"] == template and cells[6]["text"] == str(w.version)
        pools = [
            {"namespace": text, "pool": AWKWARD[-i], "free": i, "assigned": 10 * i} for i, text in enumerate(AWKWARD)
        ]
        parsed = _Rows(listing.pool_rows_html(pools)).rows
        for p, got in zip(pools, parsed, strict=True):
            query = f"{reverse('worker_list')}?namespace={quote(p['namespace'])}&pool={quote(p['pool'])}"
            cells = got["cells"]
            assert [c["text"] for c in cells] == [p["namespace"], p["pool"], str(p["free"]), str(p["assigned"])]
            assert [c["links"] for c in cells] == [
                [],
                [query],
                [f"{query}&assigned=free"],
                [f"{query}&assigned=assigned"],
            ]
    finally:
        set_script_prefix("/")


def test_an_unreadable_record_is_flagged_on_its_row():
    from storage.server_readable import Unreadable

    why = Unreadable(reason="proto: bad <value>", breaks_list=True, fails="ListActors")
    actor = Actor(actor_id="a-1", actor_template_namespace="t", actor_template_name="t")
    row = {"actor": actor, "status": status_name(actor), "pod": "", "unreadable": why}
    (got,) = _Rows(listing.actor_rows_html([row])).rows
    assert got["attrs"] == {"data-actor-id": "a-1", "class": "row-unreadable"}
    assert "unreadable by ate" in _cells(got, listing.ACTOR_COLUMNS)[2]["text"]


def test_list_pages_show_the_rows(viewer, store):
    store.create_actor(Actor(actor_id="row-a", actor_template_namespace="ns<1>", actor_template_name="tpl"))
    store.create_worker(Worker(worker_namespace="ns", worker_pool="pool", worker_pod="pod-1", actor_id="row-a"))
    body = viewer.get("/actors/").content.decode()
    assert '<tr data-actor-id="row-a">' in body and '<td data-label="Template namespace">ns&lt;1&gt;</td>' in body
    assert '<a href="/actors/row-a/">row-a</a>' in body
    body = viewer.get("/workers/").content.decode()
    assert '<a href="/workers/ns/pool/pod-1/">pod-1</a>' in body and '<a href="/actors/row-a/">row-a</a>' in body


def test_empty_lists_say_so(viewer):
    assert "No actors" in viewer.get("/actors/").content.decode()
    assert "No workers" in viewer.get("/workers/").content.decode()


def _running(actor_id, pod, ns="team"):
    return Actor(
        actor_id=actor_id,
        actor_template_namespace="t",
        actor_template_name="t",
        status=Actor.STATUS_RUNNING,
        ateom_pod_namespace=ns,
        ateom_pod_name=pod,
    )


def test_actor_detail_reads_the_worker_from_the_counted_pools(viewer, store):
    store.create_actor(_running("act-1", "pod-1"))
    for pool in ("p1", "p2", "p3"):
        store.create_worker(Worker(worker_namespace="team", worker_pool=pool, worker_pod=f"other-{pool}"))
    store.create_worker(Worker(worker_namespace="team", worker_pool="p2", worker_pod="pod-1", actor_id="act-1"))
    current_app().stats.refresh().join(30)
    assert current_app().stats.known_pools("team") == [("team", "p1"), ("team", "p2"), ("team", "p3")]
    body = viewer.get("/actors/act-1/").content.decode()
    assert 'id="worker-link">team/p2/pod-1</a>' in body and 'class="ok" id="worker-points-back"' in body
    # A pool created after the count: not scanned for; the page says so and links to a search.
    store.create_actor(_running("act-2", "pod-2"))
    store.create_worker(Worker(worker_namespace="team", worker_pool="new-pool", worker_pod="pod-2", actor_id="act-2"))
    body = viewer.get("/actors/act-2/").content.decode()
    assert 'id="worker-missing"' in body and 'id="worker-search"' in body
    assert "/workers/?namespace=team&amp;q=pod-2" in body
    # No worker at all: the same.
    store.create_actor(_running("act-3", "pod-3"))
    assert 'id="worker-missing"' in viewer.get("/actors/act-3/").content.decode()


def test_actor_detail_never_scans_before_the_first_count(viewer, store, settings):
    settings.ATEDASH_FIRST_COUNT_WAIT = 0
    store.create_actor(_running("act-1", "pod-1"))
    store.create_worker(Worker(worker_namespace="team", worker_pool="p1", worker_pod="pod-1", actor_id="act-1"))
    # Another process holds the count's lease (and never finishes): the pools stay unknown.
    store.client.set("atedash:fleet:{stats}:lease", "99 elsewhere:1", px=30_000)
    body = viewer.get("/actors/act-1/").content.decode()
    assert 'id="worker-unknown"' in body and 'id="worker-search"' in body and 'id="worker-link"' not in body


def test_actor_detail_with_a_corrupt_worker_in_a_counted_pool_falls_back_to_the_scan(viewer, store):
    store.create_actor(_running("act-1", "pod-1"))
    store.create_worker(Worker(worker_namespace="team", worker_pool="p1", worker_pod="pod-1", actor_id="act-1"))
    current_app().stats.refresh().join(30)
    store.client.set("worker:team:p1:pod-1", b"{not json")
    response = viewer.get("/actors/act-1/")
    assert response.status_code == 200 and 'id="worker-missing"' in response.content.decode()


def test_server_timing_header(viewer, store):
    store.create_actor(Actor(actor_id="a", actor_template_namespace="t", actor_template_name="t"))
    header = viewer.get("/actors/")["Server-Timing"]
    app, store_ms = (float(part.split("dur=")[1]) for part in header.split(", "))
    assert header.startswith("app;dur=") and ", store;dur=" in header and 0 < store_ms <= app
    assert viewer.get("/healthz")["Server-Timing"].endswith("store;dur=0.00")


def test_scan_time_budget_stops_a_filtered_page_and_offers_to_continue(viewer, store, settings):
    pipe = store.client.pipeline(transaction=False)
    for i in range(1500):
        pipe.set(f"actor:bulk-{i:04d}", f'{{"actorId":"bulk-{i:04d}","actorTemplateName":"t"}}'.encode())
    pipe.execute()
    settings.ATEDASH_SCAN_SECONDS = 0  # stop as soon as something was examined
    body = viewer.get("/actors/?template=never").content.decode()
    info = body[body.index('id="scan-info"') :][:400]
    assert 'id="continue-scan"' in body and "of about 1,50" in body, info
    settings.ATEDASH_SCAN_SECONDS = 60
    body = viewer.get("/actors/?template=never").content.decode()
    info = body[body.index('id="scan-info"') :][:400]
    assert 'id="continue-scan"' not in body and "scanned 1,500 of about 1,50" in body, info


def test_a_long_count_is_reused_for_ten_times_its_duration(settings, store):
    from dataclasses import replace

    from storage.cluster import StoreStats

    settings.ATEDASH_STATS_MAX_AGE = 30
    now = __import__("time").time()
    slow = StoreStats(
        actors_by_status={}, workers_by_pool={}, locks=0, computed_at=now - 60, duration_s=20.0, keys_scanned=0
    )
    _store_counts(slow)
    current_app().stats.ensure_fresh()  # 60 s old, but a 20 s count is reused for 200 s
    assert current_app().stats._thread is None or not current_app().stats._thread.is_alive()
    _store_counts(replace(slow, computed_at=now - 201))
    current_app().stats.ensure_fresh()
    current_app().stats.wait(30)
    assert current_app().stats.result.computed_at > now - 5  # counted again


def _store_counts(result):
    """The fleet's stored counts, as a process that counted would have written them."""
    import json

    value = json.dumps({"stats": result.to_dict(), "fence": 1, "maker": "test:1"})
    current_app().store.persistence().client.set("atedash:fleet:{stats}:result", value)
