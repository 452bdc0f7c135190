"""One fleet-wide count on the replicas (storage.counting, the read-only Lua step), as the overview
runs it: wall time, this process's CPU, and the busiest primary's and replica's CPU (INFO cpu).

    .venv/bin/python bench/count_bench.py --url redis://127.0.0.1:8000 [--rounds 3]

Reads the store as it is and writes nothing (seed one with bench/incident_bench.py or walk_bench.py).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from storage_bench import default_url  # noqa: E402

from storage import Persistence, connect  # noqa: E402


def node_cpu(store: Persistence) -> dict[str, tuple[str, float]]:
    """Every node's role and CPU seconds so far (user + sys)."""
    out = {}
    for node in store.client.get_nodes():
        conn = node.redis_connection
        cpu = conn.info("cpu")
        out[node.name] = (node.server_type, cpu["used_cpu_user"] + cpu["used_cpu_sys"])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default=default_url())
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    store = Persistence(connect(args.url))
    print(f"count bench on {store.address}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}")
    replicas = store.on_replicas()
    for n in range(args.rounds):
        before = node_cpu(store)
        t0, c0 = time.perf_counter(), time.process_time()
        stats = replicas.store_stats()
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        after = node_cpu(store)
        spent = {name: (role, after[name][1] - before[name][1]) for name, (role, _) in before.items()}
        primary = max((s for role, s in spent.values() if role == "primary"), default=0.0)
        replica = max((s for role, s in spent.values() if role == "replica"), default=0.0)
        print(
            f"round {n + 1}: {stats.keys_scanned:,} keys in {wall:.2f} s wall, this process {cpu:.2f} s CPU, "
            f"busiest primary {primary:.2f} s, busiest replica {replica:.2f} s CPU "
            f"(load {os.getloadavg()[0]:.1f})",
            flush=True,
        )


if __name__ == "__main__":
    main()
