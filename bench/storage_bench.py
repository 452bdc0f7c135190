"""Times storage's listing and paging against a floor, at 10k, 100k and 1M actors.

    ATEDASH_CLUSTER_PORT=7100 .venv/bin/python bench/storage_bench.py [--sizes 10000,100000,1000000]

For each size N it FLUSHES the local cluster it is pointed at (never point it at a store you care
about), seeds N actors (pipelined, one batch stream per primary), then prints in one run:

- floor: what a minimal listing costs on the same data: per primary, SCAN COUNT 1000 + pipelined
  GETs through redis-py + json.loads into plain dicts, primaries in parallel threads (as list_actors
  does), and the same sequentially;
- list_actors: Persistence.list_actors(), all N records as Actor messages, and its ratio to the floor;
- first page: Persistence.scan_actors(limit=50), unfiltered and filtered by status;
- paged walk: RSS of a fresh process before, and its peak while, walking all N actors page by page
  (--walk-limit per page), to show that the memory of a walk does not depend on N.

Times are the best of --repeat runs (median printed too).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from storage import Persistence, connect  # noqa: E402
from storage.ateapi_pb2 import Actor  # noqa: E402
from storage.codec import ACTOR_CODEC  # noqa: E402
from storage.keys import key_slot  # noqa: E402

STATUSES = [Actor.STATUS_SUSPENDED, Actor.STATUS_RUNNING, Actor.STATUS_RESUMING, Actor.STATUS_SUSPENDING]


def default_url() -> str:
    return f"redis://127.0.0.1:{os.environ.get('ATEDASH_CLUSTER_PORT', '7100')}"


def actor_record(i: int) -> tuple[str, bytes]:
    status = STATUSES[i % 4] if i % 3 else Actor.STATUS_SUSPENDED
    actor = Actor(
        actor_id=f"actor-{i:07d}",
        version=1 + i % 7,
        actor_template_namespace=f"team-{i % 20}",
        actor_template_name=f"template-{i % 50}",
        status=status,
    )
    if status == Actor.STATUS_RUNNING:
        actor.ateom_pod_namespace = actor.actor_template_namespace
        actor.ateom_pod_name = f"ateom-{i % 5000:05d}"
        actor.ateom_pod_ip = f"10.{i % 250}.{(i // 250) % 250}.{i % 7 + 1}"
        actor.last_snapshot = f"gs://snapshots/{actor.actor_id}/{actor.version - 1}"
    return f"actor:{actor.actor_id}", ACTOR_CODEC.encode_json(actor)


def write_per_shard(store: Persistence, items) -> None:
    """SET every (key, value), one pipelined stream per primary, primaries in parallel."""
    shards = store.topology.shards()
    owner = {}
    for shard in shards:
        for a, b in shard.slot_ranges:
            for slot in range(a, b + 1):
                owner[slot] = shard.address
    per_shard: dict[str, list] = {s.address: [] for s in shards}
    for key, value in items:
        per_shard[owner[key_slot(key)]].append((key, value))

    def write(shard):
        batch = per_shard[shard.address]
        for start in range(0, len(batch), 10_000):
            pipe = shard.client.pipeline(transaction=False)
            for key, value in batch[start : start + 10_000]:
                pipe.execute_command("SET", key, value)
            pipe.execute()

    threads = [threading.Thread(target=write, args=(s,)) for s in shards]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def seed(store: Persistence, n: int) -> float:
    """Writes n actors, one pipelined stream per primary, primaries in parallel; returns seconds."""
    t0 = time.perf_counter()
    write_per_shard(store, (actor_record(i) for i in range(n)))
    return time.perf_counter() - t0


def floor_shard(shard) -> list[dict]:
    """SCAN COUNT 1000 + pipelined GETs through redis-py + json.loads into plain dicts."""
    out = []
    cursor = 0
    while True:
        cursor, keys = shard.client.scan(cursor, match="actor:*", count=1000)
        if keys:
            pipe = shard.client.pipeline(transaction=False)
            for key in keys:
                pipe.get(key)
            out.extend(json.loads(v) for v in pipe.execute() if v is not None)
        if cursor == 0:
            return out


def floor_parallel(store: Persistence) -> int:
    parts = store.topology.map_shards(floor_shard)
    return sum(len(p) for p in parts)


def floor_sequential(store: Persistence) -> int:
    return sum(len(floor_shard(s)) for s in store.topology.shards())


def timed(fn, repeat: int) -> tuple[float, float, object]:
    times, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return min(times), statistics.median(times), result


def walk_rss(url: str, limit: int) -> dict:
    """Peak RSS of a fresh interpreter walking every actor page by page."""
    # VmHWM/VmRSS from /proc: unlike ru_maxrss they are not inherited from the parent process.
    code = f"""
import json, sys, time
sys.path.insert(0, {str(Path(__file__).resolve().parent.parent)!r})
from storage import Persistence, connect
def status(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
store = Persistence(connect({url!r}))
store.scan_actors(limit=1)
base = status("VmRSS")
t0 = time.perf_counter(); cursor = None; n = 0; pages = 0
while True:
    page = store.scan_actors(cursor=cursor, limit={limit})
    n += len(page.records); pages += 1
    cursor = page.next_cursor
    if cursor is None:
        break
print(json.dumps({{"records": n, "pages": pages, "seconds": time.perf_counter() - t0,
    "base_rss_mib": base, "peak_rss_mib": status("VmHWM")}}))
"""
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def bench_size(store: Persistence, url: str, n: int, repeat: int, walk_limit: int) -> dict:
    store.debug_clear_all()
    seconds = seed(store, n)
    print(f"\n== N = {n:,} actors (seeded in {seconds:.1f} s)", flush=True)

    # Interleaved, so that load from other processes on the machine hits both sides alike.
    fp, fs, la = [], [], []
    for _ in range(repeat):
        best, _, count = timed(lambda: floor_parallel(store), 1)
        assert count == n, count
        fp.append(best)
        la_time, _, actors = timed(lambda: store.list_actors(), 1)
        assert len(actors) == n
        del actors
        la.append(la_time)
        fs.append(timed(lambda: floor_sequential(store), 1)[0])
    fp_best, fp_med = min(fp), statistics.median(fp)
    fs_best, fs_med = min(fs), statistics.median(fs)
    la_best, la_med = min(la), statistics.median(la)
    print(
        f"floor (parallel primaries)   best {fp_best:8.3f} s  median {fp_med:8.3f} s  {fp_best / n * 1e6:6.1f} µs/record"
    )
    print(
        f"floor (sequential)           best {fs_best:8.3f} s  median {fs_med:8.3f} s  {fs_best / n * 1e6:6.1f} µs/record"
    )
    print(
        f"list_actors                  best {la_best:8.3f} s  median {la_med:8.3f} s  {la_best / n * 1e6:6.1f} µs/record"
        f"  = {la_best / fp_best:.2f}x the parallel floor (medians: {la_med / fp_med:.2f}x)"
    )

    def first_page(**filters):
        times = []
        for _ in range(max(5, repeat * 3)):
            t0 = time.perf_counter()
            page = store.scan_actors(limit=50, **filters)
            times.append(time.perf_counter() - t0)
            assert len(page.records) == 50
        return min(times), statistics.median(times)

    p_best, p_med = first_page()
    pf_best, pf_med = first_page(status=Actor.STATUS_RUNNING)
    print(f"first page of 50             best {p_best * 1e3:8.2f} ms median {p_med * 1e3:8.2f} ms")
    print(f"first page of 50, status=RUNNING best {pf_best * 1e3:6.2f} ms median {pf_med * 1e3:8.2f} ms")

    walk = walk_rss(url, walk_limit)
    assert walk["records"] == n, walk
    print(
        f"paged walk (limit {walk_limit}) {walk['pages']} pages in {walk['seconds']:.1f} s; RSS "
        f"{walk['base_rss_mib']:.1f} MiB after connecting, peak {walk['peak_rss_mib']:.1f} MiB",
        flush=True,
    )
    return {
        "n": n,
        "seed_s": seconds,
        "floor_parallel_s": fp_best,
        "floor_sequential_s": fs_best,
        "list_actors_s": la_best,
        "ratio": la_best / fp_best,
        "first_page_ms": p_best * 1e3,
        "first_page_median_ms": p_med * 1e3,
        "first_page_filtered_ms": pf_best * 1e3,
        "walk": walk,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default=default_url(), help="cluster URL (default from ATEDASH_CLUSTER_PORT)")
    parser.add_argument("--sizes", default="10000,100000,1000000", help="comma-separated actor counts")
    parser.add_argument("--repeat", type=int, default=3, help="runs per timing (best and median shown)")
    parser.add_argument("--walk-limit", type=int, default=500, help="page size of the paged walk")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    store = Persistence(connect(args.url))
    print(
        f"storage bench on {store.address} ({len(store.topology.shards())} primaries), "
        f"Python {sys.version.split()[0]}, {os.cpu_count()} cores"
    )
    results = [bench_size(store, args.url, int(n), args.repeat, args.walk_limit) for n in args.sizes.split(",")]
    store.debug_clear_all()
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    print(f"\npeak RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
