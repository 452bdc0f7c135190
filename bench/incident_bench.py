"""Incident searches (issue 20): a 1-in-N pod or IP, today's paged filter beside the walk that fills
the list as it finds, in one run.

    ATEDASH_CLUSTER_PORT=7750 .venv/bin/python bench/incident_bench.py [--actors 1000000 --workers 200000]
    ATEDASH_CLUSTER_PORT=8000 .venv/bin/python bench/incident_bench.py --no-seed --http [--base /work/wt/base]

It FLUSHES the local cluster it is pointed at (never point it at a store you care about), seeds the
actors and workers of bench/walk_bench.py, plus one needle actor on a pod and an IP no other record
has, then prints for a search by ateom pod (ns/name) and by IP:

- paged filter: the list page's scan (Persistence.scan_actors, 50 rows, ATEDASH_SCAN_SECONDS = 0.5 s
  per page): the first page's time and matches, and the pages ("continue" clicks) until the needle;
- walk: storage/matches.py filtered on the primaries, as the list page now starts it: time to the first
  match on screen (polled every 10 ms from FullWalk.found, as the page's poll reads it) and to every
  match (the walk's end);
- the header box (storage/identify.py): every search its query plans, at once.

With --http, the same searches as an operator's browser makes them, through gunicorn as shipped
(atedash/gunicorn.conf.py, 2 workers) on the store given (read-only: --no-seed), signed in as an
editor: the list page GET /actors/?pod=... (or ?ip=...), the walk it starts on load (the HTMX POST
of its form), then the walk block's polls at the interval the block asks for (hx-trigger "every
..."), until the walk's summary; first match on screen = the first response that shows the needle's
row, every match = the summary. Before each search the kept walk of those filters is forgotten (its
index key, under atedash:) so that the search walks the store as a first search does. With --base,
the same code before (another checkout, e.g. /work/wt/base) is served on the next port and measured
in the same run, alternating; today's paged filter (the list page's pages, "continue" until the
needle) is measured on it. The header box too: GET /open/?q=... until it opens the record.
"""

from __future__ import annotations

import argparse
import html
import os
import re
import sys
import threading
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
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


# ============================================================================ through gunicorn


def _walk_index_key(filters: dict) -> str:
    from storage.fleet import WALKS, walk_index_part
    from storage.keys import fleet_key

    return fleet_key(WALKS, walk_index_part("actors", actor_walk(**filters).description))


def _poll_seconds(block: bytes) -> float | None:
    found = re.search(rb'hx-trigger="every (\d+)(ms|s)"', block)
    if found is None:
        return None
    return int(found.group(1)) / (1000 if found.group(2) == b"ms" else 1)


def http_search(port: int, cookie: str, query: str, needle: bytes) -> dict:
    """As the browser does: the list page, its walk's POST on load, the block's polls."""
    from http_bench import Client

    client = Client(port, cookie)
    t0 = time.perf_counter()
    status, headers, page = client.get("/actors/?" + query)
    if status != 200:
        raise RuntimeError(f"the list page: HTTP {status} {headers.get('Location', '')}")
    t_page = time.perf_counter() - t0
    form = re.search(rb'<form method="post" action="([^"]+)"[^>]*id="incident-search"(.*?)</form>', page, re.S)
    if form is None:
        raise RuntimeError("the list page started no walk for " + query)
    inputs = dict(re.findall(rb'<input type="hidden" name="([^"]+)" value="([^"]*)"', form.group(2)))
    data = {html.unescape(k.decode()): html.unescape(v.decode()) for k, v in inputs.items()}
    headers = {"Cookie": cookie, "HX-Request": "true", "Referer": f"http://127.0.0.1:{port}/actors/?{query}"}
    status, _, block = client.post(html.unescape(form.group(1).decode()), data, headers)
    assert status == 200, status
    first = every = None
    polls = 0
    while True:
        now = time.perf_counter() - t0
        if b'id="walk-busy"' in block:
            raise RuntimeError("another walk is running in the fleet")
        if first is None and needle in block:
            first = now
        if b'id="walk-summary"' in block:
            every = now
            break
        wait = _poll_seconds(block)
        if wait is None:
            raise RuntimeError("the walk block neither polls nor ends: " + block[:300].decode(errors="replace"))
        time.sleep(wait)  # the browser's timer (hx-trigger "every ...")
        url = re.search(rb'hx-get="([^"]+)"', block).group(1).decode()
        status, _, block = client.get(html.unescape(url), {"HX-Request": "true"})
        polls += 1
    summary = re.search(rb"examined [^<]*? in ([0-9.]+) s", block)
    return {
        "page": t_page,
        "first": first,
        "every": every,
        "polls": polls,
        "walk_s": float(summary.group(1)) if summary else None,
        "matches": block.count(b"data-actor-id="),
    }


def http_paged(
    port: int, cookie: str, query: str, needle: bytes, max_pages: int = 200
) -> tuple[float, int, int, float]:
    """Today's paged filter: (first page's seconds, its rows, pages until the needle, seconds)."""
    from http_bench import Client

    client = Client(port, cookie)
    t0 = time.perf_counter()
    path, pages, first = "/actors/?" + query, 0, None
    while pages < max_pages:
        status, _, body = client.get(path)
        pages += 1
        table = body[body.find(b'id="actors-table"') :]
        rows = table.count(b"data-actor-id=")
        if first is None:
            first = (time.perf_counter() - t0, rows)
        if needle in table:
            return first[0], first[1], pages, time.perf_counter() - t0
        link = re.search(rb'href="(\?[^"]*cursor=[^"]+)"', body)
        if link is None:
            break
        path = "/actors/" + html.unescape(link.group(1).decode())
    return first[0], first[1], -1, time.perf_counter() - t0


def http_open(port: int, cookie: str, query: str) -> tuple[float, int, str]:
    from http_bench import Client

    client = Client(port, cookie)
    t0 = time.perf_counter()
    status, headers, _ = client.get("/open/?" + urllib.parse.urlencode({"q": query}))
    return time.perf_counter() - t0, status, headers.get("Location", "")


def bench_http(args, store: Persistence) -> None:
    import tempfile

    from http_bench import Server, login

    trees = [("this", ROOT)] + ([("base", Path(args.base))] if args.base else [])
    servers = {}
    tmp = Path(tempfile.mkdtemp(prefix="incident-http-"))
    try:
        for i, (name, root) in enumerate(trees):
            server = Server(args.url, args.port + i, tmp / name, root=root, role="editor")
            (tmp / name).mkdir()
            server.prepare()
            server.start()
            servers[name] = (server, login(server.port, server.password))
        print(f"gunicorn (2 workers, as shipped): {', '.join(f'{n} on :{s.port}' for n, (s, _) in servers.items())}")
        searches = [
            (
                "pod",
                "pod=team-needle%2Fateom-needle-0001",
                {"pod_namespace": "team-needle", "pod_name": "ateom-needle-0001"},
            ),
            ("IP", "ip=10.251.7.7", {"pod_ip": "10.251.7.7"}),
        ]
        needle = b'data-actor-id="needle-0001"'
        for rnd in range(args.rounds):
            order = list(servers) if rnd % 2 == 0 else list(servers)[::-1]
            for label, query, filters in searches:
                for name in order:
                    server, _ = servers[name]
                    # Both servers sign in "bench" (sessions live in the store): sign in again.
                    cookie = login(server.port, server.password)
                    store.client.delete(_walk_index_key(filters))  # a first search: no kept walk
                    load = os.getloadavg()[0]
                    for _attempt in range(30):
                        try:
                            r = http_search(server.port, cookie, query, needle)
                            break
                        except RuntimeError as e:
                            if "another walk" not in str(e):
                                raise
                            time.sleep(2)  # someone else's walk on the shared store: after it
                    else:
                        raise RuntimeError("the fleet's walk lease stayed busy")
                    kept = store.client.exists(_walk_index_key(filters))
                    print(
                        f"round {rnd + 1} {label:3s} {name:4s}: list page {r['page']:5.2f} s, first match on screen "
                        f"{(r['first'] or float('nan')):5.2f} s, every match {r['every']:5.2f} s "
                        f"({r['polls']} polls, walk {r['walk_s']} s, {r['matches']} row)"
                        f"{'' if kept else ' [index key not found: fresh walk unsure]'}  load {load:.1f}",
                        flush=True,
                    )
            for name in order:
                server, _ = servers[name]
                cookie = login(server.port, server.password)
                for label, query in (("pod", "team-needle/ateom-needle-0001"), ("IP", "10.251.7.7")):
                    seconds, status, location = http_open(server.port, cookie, query)
                    print(
                        f"round {rnd + 1} header box {label:3s} {name:4s}: HTTP {status} {location} in {seconds:5.2f} s"
                    )
        if "base" in servers:
            server, _ = servers["base"]
            cookie = login(server.port, server.password)
            for label, query, _filters in searches:
                first_s, first_n, pages, until = http_paged(server.port, cookie, query, needle)
                print(
                    f"today's paged filter (base) {label:3s}: first page {first_s:5.2f} s, {first_n} shown; "
                    f"the needle on page {pages} after {until:5.2f} s  load {os.getloadavg()[0]:.1f}",
                    flush=True,
                )
    finally:
        for server, _ in servers.values():
            server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default=default_url())
    parser.add_argument("--actors", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=200_000)
    parser.add_argument("--no-seed", action="store_true", help="search what is there (seeded by an earlier run)")
    parser.add_argument("--http", action="store_true", help="also through gunicorn (read-only; use --no-seed)")
    parser.add_argument("--base", help="another checkout (today's code) served beside this one, alternating")
    parser.add_argument("--port", type=int, default=7760, help="gunicorn's port (--base: the next one)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--replicas", action="store_true", help="storage-level walks on the replicas, as the page")
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
    if args.http:
        bench_http(args, store)
    for label, filters, query in (
        ("pod team-needle/ateom-needle-0001", {"pod_namespace": "team-needle", "pod_name": "ateom-needle-0001"}, None),
        ("IP 10.251.7.7", {"pod_ip": "10.251.7.7"}, "10.251.7.7"),
    ):
        first_s, first_n, pages, until = paged(store, **filters)
        print(
            f"{label:36s} paged filter: first page {first_s:6.2f} s, {first_n} shown; "
            f"the needle on page {pages} after {until:6.2f} s"
        )
        walker = store.on_replicas() if args.replicas and hasattr(store, "on_replicas") else store
        first, total, matched = walked(walker, actor_walk(**filters))
        print(f"{'':36s} walk: first match {first or 0:6.2f} s, every match {total:6.2f} s ({matched} match)")
        t0 = time.perf_counter()
        found = identify(store, query or "team-needle/ateom-needle-0001", seconds=60)
        print(
            f"{'':36s} header box: {len(found.matches)} match in {time.perf_counter() - t0:6.2f} s "
            f"({len(found.searches)} searches at once)"
        )


if __name__ == "__main__":
    main()
