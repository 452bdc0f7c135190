"""One fleet, one truth (issue 19): what the fleet's whole-store work costs the store.

Part 1, the primaries stay quiet: a PING to every primary and every replica every 5 ms, idle, then
beside a count (storage's store_stats) on the primaries, the same count on the replicas
(Persistence.on_replicas()), and a 1-in-1,000 filtered walk on the replicas; p50/p99/max per role
and phase, the count's wall time and each node's CPU (INFO cpu, user + sys) during it.

Part 2, once per fleet: 2 gunicorn servers x 2 workers as shipped on the store, /metrics scraped
on both every 0.2 s for --seconds (each scrape makes the answering process start a count and a
check when due), then how many counts and checks the fleet ran (the leases' fence counters): the
goal is one per interval, not one per process.

It FLUSHES the cluster it is pointed at unless --no-seed:

    ATEDASH_CLUSTER_PORT=7900 .venv/bin/python bench/fleet_bench.py --actors 100000 --workers 20000
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from http_bench import Client, Server, seed  # noqa: E402
from storage_bench import default_url  # noqa: E402

from storage import Persistence, connect  # noqa: E402
from storage.matches import FullWalk, actor_walk  # noqa: E402


def nodes(store: Persistence):
    client = store.client
    primaries = [(n.name, client.get_redis_connection(n)) for n in client.get_primaries()]
    replicas = [(n.name, client.get_redis_connection(n)) for n in client.get_replicas()]
    return primaries, replicas


def cpu(conn) -> float:
    info = conn.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


class Probe:
    """PING every node every 5 ms from a thread of its own; latencies (ms) per role."""

    def __init__(self, store: Persistence):
        self.primaries, self.replicas = nodes(store)
        self.samples: dict[str, list[float]] = {"primary": [], "replica": []}
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, args=(role, conn), daemon=True)
            for role, group in (("primary", self.primaries), ("replica", self.replicas))
            for _name, conn in group
        ]

    def _run(self, role: str, conn) -> None:
        while not self._stop.wait(0.005):
            t0 = time.perf_counter()
            conn.ping()
            self.samples[role].append((time.perf_counter() - t0) * 1000)

    def __enter__(self):
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        for t in self._threads:
            t.join()


def figures(values: list[float]) -> str:
    if not values:
        return "-"
    values = sorted(values)
    p99 = values[min(len(values) - 1, int(len(values) * 0.99))]
    return f"{statistics.median(values):.2f} / {p99:.2f} / {values[-1]:.2f}"


def phase(store: Persistence, name: str, work) -> None:
    primaries, replicas = nodes(store)
    before = {n: cpu(c) for n, c in primaries + replicas}
    with Probe(store) as probe:
        t0 = time.perf_counter()
        outcome = work()
        wall = time.perf_counter() - t0
    after = {n: cpu(c) for n, c in primaries + replicas}
    busiest = max(after[n] - before[n] for n, _ in primaries)
    busiest_replica = max((after[n] - before[n] for n, _ in replicas), default=0.0)
    print(
        f"| {name} | {wall:.2f} s | {figures(probe.samples['primary'])} | {figures(probe.samples['replica'])} "
        f"| {busiest:.2f} s / {busiest_replica:.2f} s | {outcome} |",
        flush=True,
    )


def part1(store: Persistence) -> None:
    print(
        "\n| phase | wall | primaries' PING p50 / p99 / max (ms) | replicas' | CPU: busiest primary / replica | result |"
    )
    print("|---|---|---|---|---|---|")
    phase(store, "idle (3 s)", lambda: time.sleep(3) or "")
    for node in store.client.get_primaries():
        store.client.get_redis_connection(node).execute_command("WAIT", 1, 10_000)
    phase(store, "count on the primaries", lambda: sum(store.store_stats().actors_by_status.values()))
    replicas = store.on_replicas()
    phase(store, "count on the replicas", lambda: sum(replicas.store_stats().actors_by_status.values()))
    rare = actor_walk(template_name="rare-template")
    phase(store, "walk 1 in 1,000 on the replicas", lambda: FullWalk(replicas.topology, rare).run().matched)


def part2(url: str, seconds: float, stats_max_age: int, check_max_age: int) -> None:
    store = Persistence(connect(url))
    fences = ("atedash:fleet:{stats}:fence", "atedash:fleet:{check}:fence")
    before = [int(store.client.get(k) or 0) for k in fences]
    token = "bench-metrics-token-" + "t" * 32
    tmp = Path(tempfile.mkdtemp(prefix="atedash-fleet-bench-"))
    servers = []
    key = "fleet-bench-" + "k" * 50
    for i, port in enumerate((8791, 8792)):
        (tmp / f"s{i}").mkdir()
        server = Server(url, port, tmp / f"s{i}")
        server.env.update(
            ATEDASH_SECRET_KEY=key,
            ATEDASH_METRICS_TOKEN=token,
            ATEDASH_STATS_MAX_AGE=str(stats_max_age),
            ATEDASH_CHECK_MAX_AGE=str(check_max_age),
            GUNICORN_WORKERS="2",
            GUNICORN_THREADS="4",
        )
        server.prepare()
        server.start()
        servers.append(server)
    scrapes = 0
    try:
        clients = [Client(s.port) for s in servers for _ in range(2)]
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            for c in clients:
                status, _, _ = c.get("/metrics", {"Authorization": f"Bearer {token}"})
                assert status == 200, status
                scrapes += 1
            time.sleep(0.2)
    finally:
        for s in servers:
            s.stop()
    after = [int(store.client.get(k) or 0) for k in fences]
    counts, checks = (a - b for a, b in zip(after, before))
    stored = json.loads(store.client.get("atedash:fleet:{stats}:result") or b"{}")
    took = float(stored.get("stats", {}).get("duration_s", 0))
    # A count is due after max(max age, 10 x its duration) (atedash/background/counts.py's RECOUNT_FACTOR).
    interval = max(stats_max_age, 10 * took)
    print(
        f"\n{seconds:.0f} s, 2 servers x 2 workers, {scrapes} scrapes of /metrics: {counts} counts "
        f"(last took {took:.1f} s, so due every {interval:.0f} s: about {1 + seconds // interval:.0f} expected "
        f"for the fleet, 4x that if each process counted), {checks} checks (max age {check_max_age} s: "
        f"about {1 + seconds // check_max_age:.0f} expected)",
        flush=True,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", default=default_url())
    ap.add_argument("--actors", type=int, default=100_000)
    ap.add_argument("--workers", type=int, default=20_000)
    ap.add_argument("--no-seed", action="store_true")
    ap.add_argument("--seconds", type=float, default=120)
    ap.add_argument("--stats-max-age", type=int, default=15)
    ap.add_argument("--check-max-age", type=int, default=30)
    ap.add_argument("--skip-probe", action="store_true")
    ap.add_argument("--skip-fleet", action="store_true")
    args = ap.parse_args()
    store = Persistence(connect(args.url))
    if not args.no_seed:
        took = seed(store, args.actors, args.workers)
        print(f"seeded {args.actors:,} actors + {args.workers:,} workers in {took:.1f} s", flush=True)
    if not args.skip_probe:
        part1(store)
    if not args.skip_fleet:
        part2(args.url, args.seconds, args.stats_max_age, args.check_max_age)


if __name__ == "__main__":
    main()
