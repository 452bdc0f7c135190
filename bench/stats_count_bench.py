"""The overview count (storage.cluster.store_stats) with and without its count of records the ate
server cannot read: what that count adds per record.

    ATEDASH_CLUSTER_PORT=7100 .venv/bin/python bench/stats_count_bench.py [--actors 50000] [--repeat 5]

Seeds the store as bench/check_bench.py does (it FLUSHES the cluster first: never point it at a store
you care about), then times store_stats alternately with the count (as shipped) and without it (the
server's verdict replaced by "readable"), best of --repeat each, in µs per key walked. The count
asks, per decoded record, the server's key rule and protojson's verdict by the canonical-form regex
(storage.server_readable value_error); only records atedash cannot decode get the full judgment.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import check_bench  # noqa: E402

from storage import Persistence, connect  # noqa: E402
from storage import cluster as cluster_info  # noqa: E402


class _Readable:
    """A stand-in schema that finds every record readable (the count switched off)."""

    @staticmethod
    def judge(key, value):
        return None

    @staticmethod
    def value_error(value):
        return None


def timed(store):
    """(wall s, CPU s of this process, stats): the CPU time is what the count costs the dashboard's
    process, and swings far less than the wall time with a shared machine's load."""
    t0, c0 = time.perf_counter(), time.process_time()
    stats = store.store_stats()
    return time.perf_counter() - t0, time.process_time() - c0, stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--actors", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    port = os.environ.get("ATEDASH_CLUSTER_PORT", "7100")
    client = connect(f"redis://127.0.0.1:{port}")
    store = Persistence(client)
    store.debug_clear_all()
    check_bench.seed(client, args.actors)
    shipped = (cluster_info.ACTOR_SCHEMA, cluster_info.WORKER_SCHEMA)
    best = {"without": [float("inf"), float("inf")], "with": [float("inf"), float("inf")]}
    for _ in range(args.repeat):  # alternate, so that machine load hits both alike
        for name, schemas in (("without", (_Readable, _Readable)), ("with", shipped)):
            cluster_info.ACTOR_SCHEMA, cluster_info.WORKER_SCHEMA = schemas
            wall, cpu, stats = timed(store)
            best[name] = [min(best[name][0], wall), min(best[name][1], cpu)]
    cluster_info.ACTOR_SCHEMA, cluster_info.WORKER_SCHEMA = shipped
    keys = stats.keys_scanned
    print(f"store_stats over {keys} keys ({args.actors} actors), best of {args.repeat}, µs per key:")
    for name, label in (("without", "without the unreadable count"), ("with", "with it (as shipped)        ")):
        wall, cpu = best[name]
        print(f"  {label}: wall {wall / keys * 1e6:7.2f}, CPU {cpu / keys * 1e6:7.2f}")
    (w0, c0), (w1, c1) = best["without"], best["with"]
    print(
        f"  added: wall {(w1 - w0) / keys * 1e6:+.2f} ({(w1 / w0 - 1) * 100:+.1f}%), "
        f"CPU {(c1 - c0) / keys * 1e6:+.2f} ({(c1 / c0 - 1) * 100:+.1f}%)"
    )
    print(f"  unreadable counted: {stats.unreadable_actors} actors, {stats.unreadable_workers} workers")


if __name__ == "__main__":
    main()
