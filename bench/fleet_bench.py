"""One fleet, one truth (issue 19): what the fleet's whole-store work costs the store.

Part 1, the primaries stay quiet: a PING to every primary and every replica every 5 ms (from a
process of its own: the client-side count holds this one's GIL), through --rounds rounds of
alternated windows: idle, the count as it was (storage.cluster.store_stats: every record decoded in
the client, on the replicas), the count on the nodes (storage.counting: the read-only Lua step, on
the replicas), the same on the primaries (a cluster without replicas) at --step-keys and at 250 keys
per step, a filtered walk on the replicas, and (first round) the consistency check on the replicas.
Per window: wall time, this process's CPU, the busiest primary's and replica's CPU (INFO cpu, user
+ sys: unlike latency it does not follow the machine's load), PING p50/p99/max per role and the
primaries' p99 against the idle window before it; the Lua step's calls and time per call
(INFO commandstats, others' scripts included on a shared store). With --no-seed it reads the store
as it is (e.g. the shared 1M cluster) and writes nothing to it but the script cache.

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
import multiprocessing
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
from storage.walk import FullWalk, actor_walk  # noqa: E402


def nodes(store: Persistence):
    client = store.client
    primaries = [(n.name, client.get_redis_connection(n)) for n in client.get_primaries()]
    replicas = [(n.name, client.get_redis_connection(n)) for n in client.get_replicas()]
    return primaries, replicas


def cpu(conn) -> float:
    info = conn.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def _probe(addresses: list[tuple[str, str]], stop, conn) -> None:
    """A process of its own (the counts' decoding holds this one's GIL): a PING to every node every
    5 ms, (monotonic time, role, ms) sent back when told to stop."""
    import redis

    samples: list[tuple[float, str, float]] = []
    lock = threading.Lock()

    def run(role: str, address: str) -> None:
        host, port = address.rsplit(":", 1)
        client = redis.Redis(host=host, port=int(port))
        client.ping()
        mine = []
        while not stop.wait(0.005):
            t0 = time.perf_counter()
            client.ping()
            mine.append((time.monotonic(), role, (time.perf_counter() - t0) * 1000))
        with lock:
            samples.extend(mine)

    threads = [threading.Thread(target=run, args=pair, daemon=True) for pair in addresses]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    conn.send(samples)


class Probe:
    """The PING probe in its own process, for the whole of part 1; samples picked by time window."""

    def __init__(self, store: Persistence):
        primaries, replicas = nodes(store)
        addresses = [("primary", n) for n, _ in primaries] + [("replica", n) for n, _ in replicas]
        self._stop = multiprocessing.Event()
        self._recv, send = multiprocessing.Pipe(duplex=False)
        self._process = multiprocessing.Process(target=_probe, args=(addresses, self._stop, send), daemon=True)
        self.samples: list[tuple[float, str, float]] = []

    def __enter__(self):
        self._process.start()
        time.sleep(0.5)  # connected before the first window
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self.samples = self._recv.recv()
        self._process.join()

    def window(self, start: float, end: float, role: str) -> list[float]:
        return [ms for t, r, ms in self.samples if r == role and start <= t <= end]


def figures(values: list[float]) -> str:
    if not values:
        return "-"
    values = sorted(values)
    return f"{statistics.median(values):.2f} / {p99(values):.2f} / {values[-1]:.2f}"


def p99(values: list[float]) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * 0.99))] if values else float("nan")


def commandstat(conns, command: str) -> tuple[int, int]:
    """(calls, µs) of a command summed over nodes (others' calls included: the store is shared)."""
    calls = usec = 0
    for c in conns:
        stat = c.info("commandstats").get(f"cmdstat_{command}", {})
        calls += int(stat.get("calls", 0))
        usec += int(stat.get("usec", 0))
    return calls, usec


class Phases:
    """Each phase: its wall time, this process's CPU, every node's CPU (INFO cpu), its time window."""

    def __init__(self, store: Persistence):
        self.store = store
        self.primaries, self.replicas = nodes(store)
        self.rows: list[dict] = []

    def run(self, name: str, work) -> None:
        conns = self.primaries + self.replicas
        before = {n: cpu(c) for n, c in conns}
        steps0 = commandstat([c for _, c in conns], "evalsha")
        c0, start = time.process_time(), time.monotonic()
        outcome = work()
        end, client_cpu = time.monotonic(), time.process_time() - c0
        steps1 = commandstat([c for _, c in conns], "evalsha")
        after = {n: cpu(c) for n, c in conns}
        row = {
            "phase": name,
            "wall": end - start,
            "start": start,
            "end": end,
            "client_cpu": client_cpu,
            "primary_cpu": max(after[n] - before[n] for n, _ in self.primaries),
            "replica_cpu": max((after[n] - before[n] for n, _ in self.replicas), default=0.0),
            "evalsha": (steps1[0] - steps0[0], steps1[1] - steps0[1]),
            "outcome": outcome,
        }
        self.rows.append(row)
        print(f"  {name}: {row['wall']:.2f} s, {outcome}", flush=True)

    def table(self, probe: Probe) -> None:
        print(
            "\n| phase | wall | client CPU | busiest primary CPU / replica CPU | primaries' PING p50 / p99 / max (ms) "
            "| p99 above the idle window before | replicas' PING p50 / p99 / max | result |"
        )
        print("|---|---|---|---|---|---|---|---|")
        idle_p99 = float("nan")
        for row in self.rows:
            prim = probe.window(row["start"], row["end"], "primary")
            repl = probe.window(row["start"], row["end"], "replica")
            if row["phase"].startswith("idle"):
                idle_p99 = p99(prim)
                above = "-"
            else:
                above = f"{p99(prim) - idle_p99:+.2f}"
            print(
                f"| {row['phase']} | {row['wall']:.2f} s | {row['client_cpu']:.2f} s | {row['primary_cpu']:.2f} / "
                f"{row['replica_cpu']:.2f} s ({100 * row['primary_cpu'] / row['wall']:.0f}% / "
                f"{100 * row['replica_cpu'] / row['wall']:.0f}% of a core) | {figures(prim)} | {above} | {figures(repl)} | {row['outcome']} |",
                flush=True,
            )
        steps = [r for r in self.rows if r["evalsha"][0] and "Lua" in r["phase"]]
        for r in steps:
            calls, usec = r["evalsha"]
            print(f"{r['phase']}: {calls} script calls on the nodes, {usec / max(1, calls) / 1000:.2f} ms per call")


def part1(store: Persistence, rounds: int, check: bool, idle_s: float, step_keys: int) -> None:
    from storage import cluster, counting
    from storage.consistency import run_check

    for node in store.client.get_primaries():
        store.client.get_redis_connection(node).execute_command("WAIT", 1, 10_000)
    replicas = store.on_replicas()
    rare = actor_walk(template_namespace="team-needle")
    phases = Phases(store)

    def idle():
        time.sleep(idle_s)
        return ""

    def counted(stats) -> str:
        return f"{sum(stats.actors_by_status.values()):,} actors, {stats.keys_scanned:,} keys"

    with Probe(store) as probe:
        for r in range(rounds):
            print(f"round {r + 1}", flush=True)
            phases.run("idle", idle)
            phases.run(
                "count, client-side decode, replicas (today)", lambda: counted(cluster.store_stats(replicas.topology))
            )
            phases.run("idle", idle)
            phases.run(
                f"count, Lua step {step_keys}, replicas (now)",
                lambda: counted(counting.store_stats(replicas.topology, step_keys)),
            )
            phases.run("idle", idle)
            for step in (step_keys, 250):
                phases.run(
                    f"count, Lua step {step}, primaries (no replica)",
                    lambda step=step: counted(counting.store_stats(store.topology, step)),
                )
                phases.run("idle", idle)
            phases.run("walk 1 in 1M, replicas", lambda: f"{FullWalk(replicas.topology, rare).run().matched} match")
            if check and r == 0:
                phases.run("idle", idle)
                phases.run(
                    "consistency check, replicas",
                    lambda: f"{len(run_check(replicas).findings)} findings",
                )
    phases.table(probe)


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
    # A count is due after max(max age, 10 x its duration) (atedash/stats.py's RECOUNT_FACTOR).
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
    ap.add_argument("--skip-check", action="store_true")
    ap.add_argument("--rounds", type=int, default=3, help="idle / count / walk windows, alternated")
    ap.add_argument("--idle-seconds", type=float, default=3)
    ap.add_argument("--step-keys", type=int, default=1000, help="as ATEDASH_STORE_STEP_KEYS ships")
    ap.add_argument("--skip-fleet", action="store_true")
    args = ap.parse_args()
    store = Persistence(connect(args.url))
    if not args.no_seed:
        took = seed(store, args.actors, args.workers)
        print(f"seeded {args.actors:,} actors + {args.workers:,} workers in {took:.1f} s", flush=True)
    if not args.skip_probe:
        part1(store, args.rounds, not args.skip_check, args.idle_seconds, args.step_keys)
    if not args.skip_fleet:
        part2(args.url, args.seconds, args.stats_max_age, args.check_max_age)


if __name__ == "__main__":
    main()
