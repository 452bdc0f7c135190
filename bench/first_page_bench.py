"""The first page of 50 actors against the redis-py floor's first page, checkouts side by side (issue 19 item 6).

    .venv/bin/python bench/first_page_bench.py --url redis://127.0.0.1:8000 --before /work/wt/base --rounds 3
    ATEDASH_CLUSTER_PORT=7300 .venv/bin/python bench/first_page_bench.py --seed 100000   # FLUSHES first

Each round runs a child process per checkout (this one, and --before when given; which goes first
alternates), with that checkout's virtualenv and storage/. A child times, sample by sample in turn:
Persistence.scan_actors(limit=50) and the floor: SCAN MATCH actor:* on the first primary with COUNT
50 or 75 until 50 keys, then one redis-py pipeline of their GETs + json.loads (bench/pages_bench.py
uses the same child); then, apart, the page filtered by status=RUNNING (a third as many samples).
The cheaper of the two floors is the reference. Printed per round and checkout: the page's p50
(best), the floors' p50, the ratio of the p50s (and of the bests), CPU of this process per page
and per COUNT-75 floor; then per checkout the median ratio over the rounds and each round's.
Reads only, unless --seed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Run with `python -c` in a checkout (cwd): argv = url, samples. Prints one JSON line.
FIRST_PAGE = r"""
import json, statistics, sys, time
sys.path.insert(0, ".")
import redis
from storage import Persistence, connect
from storage.ateapi_pb2 import Actor
store = Persistence(connect(sys.argv[1]))
host, port = store.topology.shards()[0].address.rsplit(":", 1)
node = redis.Redis(host=host, port=int(port))

def floor(count):
    cursor, keys = 0, []
    while len(keys) < 50:
        cursor, got = node.scan(cursor, match="actor:*", count=count)
        keys += got
        if cursor == 0:
            break
    pipe = node.pipeline(transaction=False)
    for k in keys[:50]:
        pipe.get(k)
    return [json.loads(v) for v in pipe.execute()]

def page():
    assert len(store.scan_actors(limit=50).records) == 50

def running():
    assert len(store.scan_actors(limit=50, status=Actor.STATUS_RUNNING).records) == 50

calls = {"floor50": lambda: floor(50), "floor75": lambda: floor(75), "page": page, "running": running}
times = {k: [] for k in calls}
cpu = {k: 0.0 for k in calls}

def sample(name):
    c0, t0 = time.process_time(), time.perf_counter()
    calls[name]()
    times[name].append((time.perf_counter() - t0) * 1000)
    cpu[name] += time.process_time() - c0

for f in calls.values():
    f()
for i in range(int(sys.argv[2])):
    for name in ("floor50", "floor75", "page"):
        sample(name)
for i in range(max(1, int(sys.argv[2]) // 3)):  # after: its SCANs of 1,000 keys would weigh on the others
    sample("running")
print(json.dumps({
    k: {"p50": statistics.median(v), "best": min(v), "cpu": cpu[k] * 1000 / len(v)} for k, v in times.items()
}))
"""


def first_page(checkout: Path, url: str, samples: int) -> dict:
    """FIRST_PAGE's figures for ``checkout``, in a child process of its own virtualenv."""
    python = str(checkout / ".venv" / "bin" / "python")
    done = subprocess.run(
        [python, "-c", FIRST_PAGE, url, str(samples)], cwd=checkout, capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout)


def ratios(run: dict) -> tuple[float, float]:
    """(page p50 / the cheaper floor's p50, page best / the floors' best)."""
    floor = min(run["floor50"]["p50"], run["floor75"]["p50"])
    best = min(run["floor50"]["best"], run["floor75"]["best"])
    return run["page"]["p50"] / floor, run["page"]["best"] / best


def load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default=f"redis://127.0.0.1:{os.environ.get('ATEDASH_CLUSTER_PORT', '7100')}")
    parser.add_argument("--before", type=Path, help="a checkout to compare with (e.g. a worktree of main)")
    parser.add_argument("--seed", type=int, default=0, help="FLUSH the cluster and seed this many actors first")
    parser.add_argument("--samples", type=int, default=600, help="samples of each call per round and checkout")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if args.seed:
        sys.path.insert(0, str(ROOT / "bench"))
        from storage_bench import Persistence, connect, seed

        store = Persistence(connect(args.url))
        store.debug_clear_all()
        print(f"seeded {args.seed:,} actors in {seed(store, args.seed):.1f} s")
    checkouts = {"now": ROOT} if args.before is None else {"before": args.before.resolve(), "now": ROOT}
    print(f"first page bench on {args.url}, {os.cpu_count()} cores, load average {load()}", flush=True)
    print(
        "\n| round | checkout | page p50 (best) ms | floor COUNT 50 / 75 p50 | ratio p50 (best) "
        "| CPU ms: page / floor 75 | RUNNING p50 |"
    )
    print("|---:|---|---:|---:|---:|---:|---:|")
    got: dict[str, list[float]] = {label: [] for label in checkouts}
    order = list(checkouts)
    for r in range(args.rounds):
        for label in order if r % 2 == 0 else order[::-1]:
            run = first_page(checkouts[label], args.url, args.samples)
            ratio, best = ratios(run)
            got[label].append(ratio)
            page, running = run["page"], run["running"]
            print(
                f"| {r + 1} | {label} | {page['p50']:.3f} ({page['best']:.3f}) | {run['floor50']['p50']:.3f} / "
                f"{run['floor75']['p50']:.3f} | **{ratio:.2f}x** ({best:.2f}x) | {page['cpu']:.3f} / "
                f"{run['floor75']['cpu']:.3f} | {running['p50']:.3f} |",
                flush=True,
            )
    print(f"\nload average at the end: {load()}")
    for label, values in got.items():
        print(
            f"{label}: page / floor p50 ratio, median of {len(values)} rounds {statistics.median(values):.2f}x "
            f"(rounds: {', '.join(f'{v:.2f}' for v in values)})"
        )


if __name__ == "__main__":
    main()
