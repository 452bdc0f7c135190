"""Times the consistency check (storage.check.run_check) on a seeded store.

    ATEDASH_CLUSTER_PORT=7100 .venv/bin/python bench/check_bench.py [--actors 100000] [--repeat 3]

Seeds N actors (70% SUSPENDED without a pod, 30% RUNNING on a worker), their workers plus 10% free
ones, and a few hundred planted inconsistencies, into the local cluster (which it FLUSHES first: never
point it at a store you care about), then times run_check and, for comparison, a floor measured on the
same data: SCAN COUNT 1000 + pipelined GETs of every key through redis-py, without decoding. The peak
Python memory of one check (tracemalloc, a separate run since tracing slows it) shows the bound: it
follows the number of workers and findings, not of actors.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from storage import Persistence, connect  # noqa: E402
from storage.ateapi_pb2 import Actor, Worker  # noqa: E402
from storage.check import run_check  # noqa: E402
from storage.codec import ACTOR_CODEC, WORKER_CODEC  # noqa: E402

PLANTED = 100  # of each: orphan workers, leaked workers, running actors without worker, stale pods


def seed(client, n_actors: int) -> dict:
    pipe = client.pipeline(transaction=False)
    pending = 0
    counts = {"actors": 0, "workers": 0}

    def put(key, value):
        nonlocal pending, pipe
        pipe.set(key, value)
        pending += 1
        if pending >= 5000:
            pipe.execute()
            pipe = client.pipeline(transaction=False)
            pending = 0

    for i in range(n_actors):
        aid = f"actor-{i:07d}"
        running = i % 10 < 3
        a = Actor(
            actor_id=aid,
            version=1 + i % 5,
            actor_template_namespace=f"team-{i % 20}",
            actor_template_name=f"tpl-{i % 7}",
            last_snapshot=f"snap-{i}",
        )
        pod = f"pod-{i:07d}"
        if running:
            a.status = Actor.STATUS_RUNNING
            a.ateom_pod_namespace, a.ateom_pod_name, a.ateom_pod_ip = (
                "workers",
                pod,
                f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}",
            )
        else:
            a.status = Actor.STATUS_SUSPENDED
        planted_no_worker = running and i % 1000 == 2 and i // 1000 < PLANTED
        if i % 1000 == 7 and i // 1000 < PLANTED:  # suspended, still naming a pod
            a.status = Actor.STATUS_SUSPENDED
            a.ateom_pod_namespace, a.ateom_pod_name = "workers", pod
        put(f"actor:{aid}", ACTOR_CODEC.encode_json(a))
        counts["actors"] += 1
        if running and not planted_no_worker:
            w = Worker(
                worker_namespace="workers",
                worker_pool=f"pool-{i % 4}",
                worker_pod=pod,
                ip=a.ateom_pod_ip,
                actor_namespace=a.actor_template_namespace,
                actor_template=a.actor_template_name,
                actor_id=aid,
                version=1,
            )
            put(f"worker:workers:pool-{i % 4}:{pod}", WORKER_CODEC.encode_json(w))
            counts["workers"] += 1
    for j in range(n_actors // 10):  # free workers
        w = Worker(
            worker_namespace="workers",
            worker_pool=f"pool-{j % 4}",
            worker_pod=f"free-{j:07d}",
            ip="10.200.0.1",
            version=1,
        )
        put(f"worker:workers:pool-{j % 4}:free-{j:07d}", WORKER_CODEC.encode_json(w))
        counts["workers"] += 1
    for j in range(PLANTED):  # orphan workers, and leaked ones (claiming suspended actors)
        for kind, target in (("orphan", f"ghost-{j}"), ("leaked", f"actor-{j * 10 + 5:07d}")):
            w = Worker(
                worker_namespace="workers",
                worker_pool="pool-x",
                worker_pod=f"{kind}-{j}",
                ip="10.201.0.1",
                actor_namespace="team-0",
                actor_template="tpl-0",
                actor_id=target,
                version=1,
            )
            put(f"worker:workers:pool-x:{kind}-{j}", WORKER_CODEC.encode_json(w))
            counts["workers"] += 1
    pipe.execute()
    return counts


def floor(client) -> float:
    t0 = time.perf_counter()
    n = 0
    for node in client.get_primaries():
        r = client.get_redis_connection(node)
        cursor = 0
        while True:
            cursor, keys = r.scan(cursor, count=1000)
            if keys:
                pipe = r.pipeline(transaction=False)
                for k in keys:
                    pipe.get(k)
                n += len(pipe.execute())
            if cursor == 0:
                break
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--actors", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--url", default=f"redis://127.0.0.1:{os.environ.get('ATEDASH_CLUSTER_PORT', '7100')}")
    args = ap.parse_args()

    client = connect(args.url)
    store = Persistence(client)
    store.debug_clear_all()
    t0 = time.perf_counter()
    counts = seed(client, args.actors)
    print(f"seeded {counts['actors']} actors and {counts['workers']} workers in {time.perf_counter() - t0:.1f} s")

    times, cpu, floors = [], [], []
    report = None
    for _ in range(args.repeat):
        floors.append(floor(client))
        c0, t0 = time.process_time(), time.perf_counter()
        report = run_check(store)
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    tracemalloc.start()
    run_check(store)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    med, fl = statistics.median(times), statistics.median(floors)
    print(
        f"run_check: median {med:.2f} s over {args.repeat} runs ({', '.join(f'{t:.2f}' for t in times)}); "
        f"{report.keys_scanned} keys scanned, {len(report.findings)} findings"
    )
    print(f"floor (SCAN + pipelined GET, no decoding): median {fl:.2f} s; check/floor = {med / fl:.1f}x")
    records = max(1, report.actors + report.workers)
    print(
        f"per record: {med / records * 1e6:.1f} µs (best run {min(times) / records * 1e6:.1f} µs); CPU time of this "
        f"process (not Redis's; steadier than wall time on a shared machine): best "
        f"{min(cpu) / records * 1e6:.1f} µs, median {statistics.median(cpu) / records * 1e6:.1f} µs; "
        f"peak Python memory of one check (tracemalloc): {peak / 2**20:.1f} MiB"
    )
    print("findings by kind: " + ", ".join(f"{k}={v}" for k, v in report.counts.items() if v))
    store.debug_clear_all()


if __name__ == "__main__":
    main()
