"""One fleet-wide count on the replicas (storage.counting, the read-only Lua step), as the overview
runs it: wall time, the counting process's CPU, and the busiest primary's and replica's CPU (INFO cpu).

    .venv/bin/python bench/count_bench.py --url redis://127.0.0.1:8000 [--rounds 3] [--base /work/main]
        [--walks]

With --walks, each round also walks the replicas for a 1-in-1M pod and IP (storage.matches, as the
incident search does; bench/incident_bench.py's needle): first match, every match, replicas' CPU.

With --base, the count of another checkout (e.g. the code before a change) runs too, alternating
with this one round by round; each count runs in a child process of its checkout, so the two
never share a module. Reads the store as it is and writes nothing (seed one with
bench/incident_bench.py or walk_bench.py).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from storage_bench import default_url  # noqa: E402

from storage import Persistence, connect  # noqa: E402

# Run in the child, inside the checkout measured: one count on the replicas, its figures as JSON.
_CHILD = """
import json, sys, time
from storage import Persistence, connect
store = Persistence(connect(sys.argv[1]))
replicas = store.on_replicas()
replicas.topology.shards()
t0, c0 = time.perf_counter(), time.process_time()
stats = replicas.store_stats()
wall, cpu = time.perf_counter() - t0, time.process_time() - c0
print(json.dumps({"wall": wall, "cpu": cpu, "keys": stats.keys_scanned, "locks": stats.locks,
                  "actors": stats.actors_by_status, "unreadable": stats.unreadable,
                  "pools": len(stats.workers_by_pool)}))
"""

# One walk on the replicas (argv: url, filters as JSON), polled every 10 ms for its first match.
_WALK_CHILD = """
import json, sys, threading, time
from storage import Persistence, connect
from storage.matches import FullWalk, actor_walk
store = Persistence(connect(sys.argv[1]))
replicas = store.on_replicas()
replicas.topology.shards()
walk = FullWalk(replicas.topology, actor_walk(**json.loads(sys.argv[2])))
out = {}
t0, c0 = time.perf_counter(), time.process_time()
thread = threading.Thread(target=lambda: out.setdefault("result", walk.run()))
thread.start()
first = None
while thread.is_alive():
    if first is None and walk.found(1):
        first = time.perf_counter() - t0
    time.sleep(0.01)
thread.join()
wall, cpu = time.perf_counter() - t0, time.process_time() - c0
print(json.dumps({"wall": wall, "cpu": cpu, "first": first if first is not None else wall,
                  "keys": out["result"].keys, "scanned": out["result"].scanned}))
"""
WALKS = (
    ("pod", {"pod_namespace": "team-needle", "pod_name": "ateom-needle-0001"}),
    ("IP", {"pod_ip": "10.251.7.7"}),
)


def node_cpu(store: Persistence) -> dict[str, tuple[str, float]]:
    """Every node's role and CPU seconds so far (user + sys)."""
    out = {}
    for node in store.client.get_nodes():
        conn = node.redis_connection
        cpu = conn.info("cpu")
        out[node.name] = (node.server_type, cpu["used_cpu_user"] + cpu["used_cpu_sys"])
    return out


def count_in(checkout: Path, url: str, child: str = _CHILD, *more: str) -> dict:
    python = checkout / ".venv" / "bin" / "python"
    out = subprocess.run(
        [str(python if python.exists() else sys.executable), "-c", child, url, *more],
        cwd=checkout,
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default=default_url())
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--base", type=Path, help="another checkout whose count runs too, alternating")
    parser.add_argument("--walks", action="store_true", help="also the incident search's walks")
    args = parser.parse_args()
    store = Persistence(connect(args.url))
    print(f"count bench on {store.address}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}")
    checkouts = [("this", ROOT)] + ([("base", args.base.resolve())] if args.base else [])
    figures: dict[str, dict] = {}
    for n in range(args.rounds):
        for name, checkout in checkouts if n % 2 == 0 else checkouts[::-1]:
            before = node_cpu(store)
            t0 = time.perf_counter()
            got = count_in(checkout, args.url)
            wall = time.perf_counter() - t0
            after = node_cpu(store)
            spent = {node: (role, after[node][1] - before[node][1]) for node, (role, _) in before.items()}
            primary = max((s for role, s in spent.values() if role == "primary"), default=0.0)
            replicas = sorted((s for role, s in spent.values() if role == "replica"), reverse=True)
            print(
                f"round {n + 1} {name}: {got['keys']:,} keys, count {got['wall']:.2f} s wall "
                f"({wall:.2f} s with the child's start), its CPU {got['cpu']:.2f} s, busiest primary "
                f"{primary:.2f} s, replicas {' '.join(f'{s:.2f}' for s in replicas)} s CPU "
                f"(load {os.getloadavg()[0]:.1f})",
                flush=True,
            )
            same = {k: v for k, v in got.items() if k not in ("wall", "cpu")}
            if figures.setdefault(name, same) != same:
                print(f"  {name}: the figures changed between rounds (the store is being written?)")
            for label, filters in WALKS if args.walks else ():
                before = node_cpu(store)
                got = count_in(checkout, args.url, _WALK_CHILD, json.dumps(filters))
                after = node_cpu(store)
                replicas = sorted(
                    (after[node][1] - before[node][1] for node, (role, _) in before.items() if role == "replica"),
                    reverse=True,
                )
                print(
                    f"  {name} walk {label}: first match {got['first']:.2f} s, every match {got['wall']:.2f} s, "
                    f"{got['scanned']:,} keys, matches {got['keys']}, its CPU {got['cpu']:.2f} s, replicas "
                    f"{' '.join(f'{s:.2f}' for s in replicas)} s CPU (load {os.getloadavg()[0]:.1f})",
                    flush=True,
                )
    if len(figures) == 2 and figures["this"] != figures["base"]:
        print("FIGURES DIFFER:", json.dumps(figures, sort_keys=True))
    elif len(figures) == 2:
        print("both checkouts counted the same figures")


if __name__ == "__main__":
    main()
