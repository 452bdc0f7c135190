"""The first page of 50 actors, timed by hundreds of samples: wall and CPU time of this process per page.

    ATEDASH_CLUSTER_PORT=7300 .venv/bin/python bench/first_page_bench.py --seed 100000
    ATEDASH_CLUSTER_PORT=7300 .venv/bin/python bench/first_page_bench.py   # on what is there

storage_bench.py times the first page nine times beside much larger reads; this takes --samples per
round, unfiltered and filtered by status=RUNNING, so that two checkouts run one after the other (same
store, same virtualenv) can be compared to a few percent. --seed FLUSHES the cluster first.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from storage_bench import Actor, Persistence, connect, default_url, seed  # noqa: E402


def first_pages(store: Persistence, samples: int, **filters) -> tuple[float, float, float]:
    """Best and median wall time and mean CPU time per page, in ms."""
    times = []
    cpu = time.process_time()
    for _ in range(samples):
        t0 = time.perf_counter()
        page = store.scan_actors(limit=50, **filters)
        times.append(time.perf_counter() - t0)
        assert len(page.records) == 50, len(page.records)
    cpu = (time.process_time() - cpu) / samples
    return min(times) * 1e3, statistics.median(times) * 1e3, cpu * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=default_url())
    parser.add_argument("--seed", type=int, default=0, help="flush and seed this many actors first")
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    store = Persistence(connect(args.url))
    if args.seed:
        store.debug_clear_all()
        print(f"seeded {args.seed:,} actors in {seed(store, args.seed):.1f} s")
    for _ in range(args.rounds):
        plain = first_pages(store, args.samples)
        running = first_pages(store, max(1, args.samples // 3), status=Actor.STATUS_RUNNING)
        print(
            f"first page of 50: best {plain[0]:.2f} median {plain[1]:.2f} ms, CPU {plain[2]:.2f} ms; "
            f"status=RUNNING: best {running[0]:.2f} median {running[1]:.2f} ms, CPU {running[2]:.2f} ms",
            flush=True,
        )


if __name__ == "__main__":
    main()
