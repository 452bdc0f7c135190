"""Times the full-store filtered walk (storage/matches.py) against its floor, at 1M actors + 200k workers.

    ATEDASH_CLUSTER_PORT=7750 .venv/bin/python bench/walk_bench.py [--actors 1000000 --workers 200000]

It FLUSHES the local cluster it is pointed at (never point it at a store you care about), seeds the
actors with bench/storage_bench.py's helpers (every 1000th actor, i % 1000 == 3, is of the template
team-3/template-canary) and the workers (every 1000th one free, the others assigned), then prints in
one run, each the best of --repeat (median too):

- floor: per primary, SCAN COUNT 1000 + pipelined GET + decode of every actor (the fast decoder,
  checked against its key), primaries in parallel: what any walk that decodes every record costs;
- walk, template team-3/template-canary (1 in 1,000): every match found, server-side byte test;
- the same walk with the byte test in the client (a server that refuses scripts);
- walk, status RESUMING (1 in 6: a filter the byte test can only narrow, not decide);
- walk, free workers (1 in 1,000 of the workers).

Each line also gives the CPU time the walk cost the busiest primary (INFO cpu, user + sys) and this
process (client): on a shared machine wall times follow the load, CPU times do not; with every primary
on a core of its own, a walk takes about the larger of the two.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from storage_bench import actor_record, write_per_shard  # noqa: E402

from storage import Persistence, connect  # noqa: E402
from storage.ateapi_pb2 import Actor, Worker  # noqa: E402
from storage.codec import ACTOR_CODEC, WORKER_CODEC  # noqa: E402
from storage.matches import FullWalk, actor_walk, worker_walk  # noqa: E402
from storage.node_reads import fetch_values  # noqa: E402
from storage.records import ACTORS  # noqa: E402

CANARY_NS, CANARY_TEMPLATE = "team-3", "template-canary"


def default_url() -> str:
    return f"redis://127.0.0.1:{os.environ.get('ATEDASH_CLUSTER_PORT', '7750')}"


def actors(n: int):
    for i in range(n):
        key, value = actor_record(i)
        if i % 1000 == 3:
            actor = ACTOR_CODEC.decode(value)[0]
            actor.actor_template_name = CANARY_TEMPLATE
            value = ACTOR_CODEC.encode_json(actor)
        yield key, value


def workers(n: int):
    for i in range(n):
        worker = Worker(
            worker_namespace=f"team-{i % 20}",
            worker_pool=f"pool-{i % 10}",
            worker_pod=f"w-{i:07d}",
            ip=f"10.{i % 250}.{(i // 250) % 250}.{i % 7 + 1}",
            version=1 + i % 5,
        )
        if i % 1000 != 0:
            worker.actor_id = f"actor-{i:07d}"
            worker.actor_namespace = worker.worker_namespace
            worker.actor_template = f"template-{i % 50}"
        key = f"worker:{worker.worker_namespace}:{worker.worker_pool}:{worker.worker_pod}"
        yield key, WORKER_CODEC.encode_json(worker)


def floor_shard(shard) -> int:
    """SCAN COUNT 1000 + pipelined GET + decode of every actor of one primary."""
    n, cursor = 0, 0
    while True:
        cursor, keys = shard.client.scan(cursor, match="actor:*", count=1000)
        if keys:
            for key, raw in zip(keys, fetch_values(shard.client, keys)):
                if raw is not None:
                    ACTORS.decode_stored(key, raw)
                    n += 1
        if cursor == 0:
            return n


def server_cpu(topology) -> list[float]:
    """CPU seconds (user + sys) each primary's process has used: unlike wall time, what a walk costs a
    primary does not depend on what else the machine runs."""
    out = []
    for shard in topology.shards():
        info = shard.client.info("cpu")
        out.append(float(info["used_cpu_user"]) + float(info["used_cpu_sys"]))
    return out


def timed(fn, repeat, topology=None):
    times, cpu, result = [], [], None
    for _ in range(repeat):
        before = server_cpu(topology) if topology is not None else None
        c0 = time.process_time()
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
        if before is not None:
            after = server_cpu(topology)
            cpu.append((max(a - b for a, b in zip(after, before)), time.process_time() - c0))
    return min(times), statistics.median(times), result, min(cpu) if cpu else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default=default_url())
    parser.add_argument("--actors", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-seed", action="store_true", help="walk what is there (seeded by an earlier run)")
    args = parser.parse_args()
    store = Persistence(connect(args.url))
    topology = store.topology
    print(
        f"walk bench on {store.address} ({len(topology.shards())} primaries), "
        f"Python {sys.version.split()[0]}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}"
    )
    if not args.no_seed:
        store.debug_clear_all()
        t0 = time.perf_counter()
        write_per_shard(store, actors(args.actors))
        write_per_shard(store, workers(args.workers))
        print(f"seeded {args.actors:,} actors + {args.workers:,} workers in {time.perf_counter() - t0:.1f} s")
    want_canary = sum(1 for i in range(args.actors) if i % 1000 == 3)
    want_resuming = sum(1 for i in range(args.actors) if i % 3 and i % 4 == 2)
    want_free = sum(1 for i in range(args.workers) if i % 1000 == 0)

    rows = []

    def row(label, fn, expected=None):
        best, median, result, cpu = timed(fn, args.repeat, topology)
        found = result if isinstance(result, int) else result.matched
        if expected is not None:
            assert found == expected, (label, found, expected)
            if not isinstance(result, int):
                assert not result.truncated and not result.cancelled, label
        extra = ""
        if not isinstance(result, int):
            extra = (
                f"  scanned {result.scanned:,}, decoded {result.candidates:,}, "
                f"{'script' if result.server_side else 'client'}"
            )
        if cpu is not None:
            extra += f"  CPU: busiest primary {cpu[0]:.2f} s, client {cpu[1]:.2f} s"
        print(f"{label:48s} best {best:7.3f} s  median {median:7.3f} s  matches {found:,}{extra}", flush=True)
        rows.append((label, best, median, found))

    row("floor: SCAN 1000 + GET + decode, every actor", lambda: sum(topology.map_shards(floor_shard)), args.actors)
    canary = actor_walk(template_namespace=CANARY_NS, template_name=CANARY_TEMPLATE)
    row("walk team-3/template-canary (1 in 1000)", lambda: FullWalk(topology, canary).run(), want_canary)
    row(
        "  same, byte test in the client",
        lambda: FullWalk(topology, canary, use_script=False).run(),
        want_canary,
    )
    resuming = actor_walk(status=Actor.STATUS_RESUMING)
    row(
        "walk status RESUMING (1 in 6, cap 1M)",
        lambda: FullWalk(topology, resuming, max_results=10**6).run(),
        want_resuming,
    )
    free = worker_walk(assigned=False)
    row("walk free workers (1 in 1000 of workers)", lambda: FullWalk(topology, free).run(), want_free)
    print(f"\npeak RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
