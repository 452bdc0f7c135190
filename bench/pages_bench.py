"""The fast pages under gunicorn as shipped, two checkouts side by side on one store (issue 19, item 6).

    .venv/bin/python bench/pages_bench.py --url redis://127.0.0.1:8000 --before /work/wt/base \\
        [--requests 100 --rounds 4]

Reads only: it never seeds or flushes (point it at a store seeded by bench/incident_bench.py, e.g. the
1M one). Per checkout (--before, then this one as "after") it starts gunicorn with that checkout's
atedash/gunicorn.conf.py (2 workers, production settings, PROMETHEUS_MULTIPROC_DIR set as deploy/
does), makes an operator with its `manage.py operators add` in a temporary users file, signs in
through the login form (so the session check runs on every request) and warms every page. Then, in
rounds that alternate which checkout goes first, each page is requested --requests times in a row
on one keep-alive connection per checkout; the Server-Timing header gives the server time (`app`:
the whole Django stack) and the time in storage calls (`store`).

Printed per page and checkout: p50 / p95 of the server time and of the response time seen by the
client, over every round. Then the storage-level first page: Persistence.scan_actors(limit=50) of
each checkout against the cheapest plain redis-py read of 50 actors (SCAN MATCH actor:* on the first
primary, COUNT 50 or 75, whichever is cheaper, then one pipeline of GETs + json.loads), samples
alternated, in a process per checkout (bench/first_page_bench.py's child). The load average is printed at the start and at the end.

A login writes one audit entry per checkout (atedash:audit); nothing else is written but the
dashboard's own keys any page view writes (the sessions epoch's TTL).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from first_page_bench import first_page  # noqa: E402
from http_bench import Client, Server, login, percentile, server_timing  # noqa: E402

PAGES = [
    ("overview", "/", b'id="stats-age"'),
    ("actors list", "/actors/", b'id="actors-table"'),
    ("workers list", "/workers/", b'id="workers-table"'),
    ("actor detail", "/actors/actor-0000001/", b'id="actor-fields"'),
    ("worker detail", "/workers/team-1/pool-1/w-0000001/", b'id="worker-fields"'),
    ("locks", "/locks/", b'id="locks-table"'),
]


def warm(port: int, cookie: str, timeout: float = 900) -> None:
    """Until the fleet's counts are on the overview (both workers), then every page a few times."""
    deadline = time.time() + timeout
    streak = 0
    while streak < 6:
        if time.time() > deadline:
            raise RuntimeError("the overview never showed the fleet's counts")
        _, _, body = Client(port, cookie).get("/")  # a fresh connection: either worker
        streak = streak + 1 if b'id="stats-age"' in body else 0
        if not streak:
            time.sleep(1)
    for _, path, expect in PAGES:
        for _ in range(10):
            status, _, body = Client(port, cookie).get(path)
            if status != 200 or expect not in body:
                raise RuntimeError(f"{path}: HTTP {status}, expected {expect!r}")


def run_page(port: int, cookie: str, path: str, n: int, seconds: float) -> tuple[list[float], list[float], list[float]]:
    """n requests in a row, or fewer (at least 5) when they take longer than ``seconds`` in all."""
    client = Client(port, cookie)
    client.get(path)
    app, store, wall = [], [], []
    end = time.monotonic() + seconds
    for i in range(n):
        if i >= 5 and time.monotonic() > end:
            break
        t0 = time.perf_counter()
        status, headers, _ = client.get(path)
        wall.append((time.perf_counter() - t0) * 1000)
        if status != 200:
            raise RuntimeError(f"{path}: HTTP {status}")
        a, s = server_timing(headers)
        app.append(a)
        store.append(s)
    return app, store, wall


def load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="redis://127.0.0.1:8000", help="the store (read only)")
    parser.add_argument("--before", type=Path, help="a checkout to compare with (e.g. /work/wt/base)")
    parser.add_argument("--port", type=int, default=7690, help="first gunicorn port (one per checkout)")
    parser.add_argument("--requests", type=int, default=100, help="requests per page per round")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--page-seconds", type=float, default=20, help="at most this long per page per round")
    parser.add_argument("--storage-samples", type=int, default=600, help="samples of the first page (0: skip)")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    checkouts = {"after": ROOT}
    if args.before:
        checkouts = {"before": args.before.resolve(), "after": ROOT}
    print(f"pages bench on {args.url}, {os.cpu_count()} cores, load average {load()}", flush=True)
    samples: dict = {(label, name): ([], [], []) for label in checkouts for name, _, _ in PAGES}
    with tempfile.TemporaryDirectory(prefix="atedash-pages-bench-") as tmpdir:
        servers = {
            label: Server(args.url, args.port + i, Path(tmpdir) / label, root=path, name=f"pages-bench-{label}")
            for i, (label, path) in enumerate(checkouts.items())
        }
        try:
            cookies = {}
            for label, server in servers.items():
                server.prepare()
                server.start()
                cookies[label] = login(server.port, server.password, server.name)
                warm(server.port, cookies[label])
                print(f"{label}: {server.root} on port {server.port}, signed in, warm", flush=True)
            order = list(checkouts)
            for r in range(args.rounds):
                for label in order if r % 2 == 0 else order[::-1]:
                    for name, path, _ in PAGES:
                        got = run_page(servers[label].port, cookies[label], path, args.requests, args.page_seconds)
                        for into, values in zip(samples[(label, name)], got):
                            into.extend(values)
                print(f"round {r + 1}/{args.rounds} done, load average {load()}", flush=True)
        finally:
            for server in servers.values():
                server.stop()
    storage = {}
    if args.storage_samples:
        for r in range(2):  # alternated: before, after, after, before
            for label in order if r % 2 == 0 else order[::-1]:
                storage.setdefault(label, []).append(first_page(checkouts[label], args.url, args.storage_samples // 2))
    print(f"\nload average at the end: {load()}\n")
    print("| page | checkout | server p50 / p95 (ms) | store p50 (ms) | client p50 / p95 (ms) | requests |")
    print("|---|---|---:|---:|---:|---:|")
    rows = []
    for name, path, _ in PAGES:
        for label in checkouts:
            app, store, wall = samples[(label, name)]
            row = {
                "page": name,
                "path": path,
                "checkout": label,
                "app_p50": statistics.median(app),
                "app_p95": percentile(app, 0.95),
                "store_p50": statistics.median(store),
                "wall_p50": statistics.median(wall),
                "wall_p95": percentile(wall, 0.95),
                "n": len(app),
            }
            rows.append(row)
            print(
                f"| {name} `{path}` | {label} | {row['app_p50']:.1f} / {row['app_p95']:.1f} | {row['store_p50']:.1f} "
                f"| {row['wall_p50']:.1f} / {row['wall_p95']:.1f} | {row['n']} |"
            )
    if storage:
        print(
            "\n| checkout | first page p50 (best) ms | floor COUNT 50 | floor COUNT 75 | ratio to the cheaper floor, p50 (best) |"
        )
        print("|---|---:|---:|---:|---:|")
        for label, runs in storage.items():
            page = statistics.median(r["page"]["p50"] for r in runs)
            best = min(r["page"]["best"] for r in runs)
            f50 = statistics.median(r["floor50"]["p50"] for r in runs)
            f75 = statistics.median(r["floor75"]["p50"] for r in runs)
            fbest = min(min(r["floor50"]["best"], r["floor75"]["best"]) for r in runs)
            floor = min(f50, f75)
            print(
                f"| {label} | {page:.2f} ({best:.2f}) | {f50:.2f} | {f75:.2f} | {page / floor:.2f}x ({best / fbest:.2f}x) |"
            )
    if args.json:
        Path(args.json).write_text(json.dumps({"pages": rows, "storage": storage}, indent=2))


if __name__ == "__main__":
    main()
