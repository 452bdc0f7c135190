"""Incident searches (issue 20): a 1-in-N pod or IP, today's paged filter beside the walk that fills
the list as it finds, in one run.

    ATEDASH_CLUSTER_PORT=7750 .venv/bin/python bench/incident_bench.py [--actors 1000000 --workers 200000]

It FLUSHES the local cluster it is pointed at (never point it at a store you care about), seeds the
actors and workers of bench/walk_bench.py, plus one needle actor on a pod and an IP no other record
has, then prints for a search by ateom pod (ns/name) and by IP:

- paged filter: the list page's scan (Persistence.scan_actors, 50 rows, ATEDASH_SCAN_SECONDS = 0.5 s
  per page): the first page's time and matches, and the pages ("continue" clicks) until the needle;
- walk: storage/matches.py filtered on the primaries, as the list page now starts it: time to the first
  match on screen (polled every 10 ms from FullWalk.found, as the page's poll reads it) and to every
  match (the walk's end);
- the header box (storage/identify.py): every search its query plans, at once.

Storage-level times (no HTTP): what the list page's poll and the box add is one request each.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from storage_bench import write_per_shard  # noqa: E402
from walk_bench import actors, default_url, workers  # noqa: E402

from storage import Persistence, connect  # noqa: E402
from storage.ateapi_pb2 import Actor  # noqa: E402
from storage.codec import ACTOR_CODEC  # noqa: E402
from storage.identify import identify  # noqa: E402
from storage.matches import FullWalk, actor_walk  # noqa: E402

NEEDLE = Actor(
    actor_id="needle-0001",
    actor_template_namespace="team-needle",
    actor_template_name="t",
    status=Actor.STATUS_RUNNING,
    ateom_pod_namespace="team-needle",
    ateom_pod_name="ateom-needle-0001",
    ateom_pod_ip="10.251.7.7",
    version=1,
)


def paged(store: Persistence, **filters) -> tuple[float, int, int, float]:
    """(first page's seconds, its matches, pages until the needle, seconds until the needle)."""
    t0 = time.perf_counter()
    cursor, pages, first = None, 0, None
    while True:
        page = store.scan_actors(cursor=cursor, limit=50, max_seconds=0.5, **filters)
        pages += 1
        if first is None:
            first = (time.perf_counter() - t0, len(page.records))
        if page.records or page.next_cursor is None:
            return first[0], first[1], pages, time.perf_counter() - t0
        cursor = page.next_cursor


def walked(store: Persistence, wanted) -> tuple[float | None, float, int]:
    """(seconds to the first match seen by a 10 ms poll, seconds to the walk's end, matches)."""
    walk = FullWalk(store.topology, wanted)
    out = {}
    t0 = time.perf_counter()
    thread = threading.Thread(target=lambda: out.setdefault("result", walk.run()))
    thread.start()
    first = None
    while thread.is_alive():
        if first is None and walk.found(1):
            first = time.perf_counter() - t0
        time.sleep(0.01)  # the page polls; a bench may wait
    thread.join()
    total = time.perf_counter() - t0
    if first is None and walk.found(1):
        first = total
    return first, total, out["result"].matched


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default=default_url())
    parser.add_argument("--actors", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=200_000)
    parser.add_argument("--no-seed", action="store_true", help="search what is there (seeded by an earlier run)")
    args = parser.parse_args()
    store = Persistence(connect(args.url))
    print(
        f"incident bench on {store.address} ({len(store.topology.shards())} primaries), "
        f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}"
    )
    if not args.no_seed:
        store.debug_clear_all()
        t0 = time.perf_counter()
        write_per_shard(store, actors(args.actors))
        write_per_shard(store, workers(args.workers))
        store.write_new_raw([("actor:needle-0001", ACTOR_CODEC.encode_json(NEEDLE), None)])
        print(
            f"seeded {args.actors:,} actors + {args.workers:,} workers + 1 needle in {time.perf_counter() - t0:.1f} s"
        )
    for label, filters, query in (
        ("pod team-needle/ateom-needle-0001", {"pod_namespace": "team-needle", "pod_name": "ateom-needle-0001"}, None),
        ("IP 10.251.7.7", {"pod_ip": "10.251.7.7"}, "10.251.7.7"),
    ):
        first_s, first_n, pages, until = paged(store, **filters)
        print(
            f"{label:36s} paged filter: first page {first_s:6.2f} s, {first_n} shown; "
            f"the needle on page {pages} after {until:6.2f} s"
        )
        first, total, matched = walked(store, actor_walk(**filters))
        print(f"{'':36s} walk: first match {first or 0:6.2f} s, every match {total:6.2f} s ({matched} match)")
        t0 = time.perf_counter()
        found = identify(store, query or "team-needle/ateom-needle-0001", seconds=60)
        print(
            f"{'':36s} header box: {len(found.matches)} match in {time.perf_counter() - t0:6.2f} s "
            f"({len(found.searches)} searches at once)"
        )


if __name__ == "__main__":
    main()
