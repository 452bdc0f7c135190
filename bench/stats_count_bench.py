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


def timed(store, repeat):
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        stats = store.store_stats()
        best = min(best, time.perf_counter() - t0)
    return best, stats


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
    with_count = without = float("inf")
    for _ in range(args.repeat):  # alternate, so that machine load hits both alike
        cluster_info.ACTOR_SCHEMA = cluster_info.WORKER_SCHEMA = _Readable
        t, _stats = timed(store, 1)
        without = min(without, t)
        cluster_info.ACTOR_SCHEMA, cluster_info.WORKER_SCHEMA = shipped
        t, stats = timed(store, 1)
        with_count = min(with_count, t)
    keys = stats.keys_scanned
    print(f"store_stats over {keys} keys ({args.actors} actors), best of {args.repeat}:")
    print(f"  without the unreadable count: {without:.3f} s = {without / keys * 1e6:.2f} µs/key")
    print(f"  with it (as shipped):         {with_count:.3f} s = {with_count / keys * 1e6:.2f} µs/key")
    print(f"  added: {(with_count - without) / keys * 1e6:+.2f} µs/key ({(with_count / without - 1) * 100:+.1f}%)")
    print(f"  unreadable counted: {stats.unreadable_actors} actors, {stats.unreadable_workers} workers")


if __name__ == "__main__":
    main()
