"""Times export, dry-run import and import of the ate records, and the export's peak memory.

    ATEDASH_CLUSTER_PORT=7100 .venv/bin/python bench/backup_bench.py [--actors 100000]

Seeds the store as bench/check_bench.py does (it FLUSHES the cluster first: never point it at a store
you care about), exports to a temporary file, flushes, imports with --dry-run, imports, and checks
that every key came back byte for byte.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.check_bench import seed  # noqa: E402
from storage import Persistence, connect  # noqa: E402
from storage.backup import export, import_records  # noqa: E402


def snapshot(client) -> dict:
    out = {}
    for prefix in ("actor:*", "worker:*"):
        for key in client.scan_iter(match=prefix, count=1000):
            out[key] = None
    keys = list(out)
    for i in range(0, len(keys), 1000):
        chunk = keys[i : i + 1000]
        for k, v in zip(chunk, client.mget_nonatomic(chunk)):
            out[k] = v
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--actors", type=int, default=100_000)
    ap.add_argument("--url", default=f"redis://127.0.0.1:{os.environ.get('ATEDASH_CLUSTER_PORT', '7100')}")
    args = ap.parse_args()
    client = connect(args.url)
    store = Persistence(client)
    store.debug_clear_all()
    counts = seed(client, args.actors)
    print(f"seeded {counts['actors']} actors and {counts['workers']} workers")
    before = snapshot(client)

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "backup.jsonl"
        t0 = time.perf_counter()
        with open(path, "w", encoding="utf-8") as out:
            result = export(store, out)
        t_export = time.perf_counter() - t0
        size = path.stat().st_size
        tracemalloc.start()
        with open(os.devnull, "w") as out:
            export(store, out)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        store.debug_clear_all()
        t0 = time.perf_counter()
        dry = import_records(store, path, dry_run=True)
        t_dry = time.perf_counter() - t0
        t0 = time.perf_counter()
        real = import_records(store, path)
        t_import = time.perf_counter() - t0
    after = snapshot(client)
    n = result.records
    print(
        f"export: {n} records, {size / 2**20:.0f} MiB, {t_export:.2f} s ({t_export / n * 1e6:.0f} µs/record); "
        f"peak Python memory {peak / 2**20:.1f} MiB"
    )
    print(f"import --dry-run: {t_dry:.2f} s ({dry.created} would be created)")
    print(f"import: {t_import:.2f} s ({t_import / n * 1e6:.0f} µs/record, {real.created} created)")
    print(f"byte for byte: {'yes' if after == before else 'NO'} ({len(after)} keys)")
    store.debug_clear_all()


if __name__ == "__main__":
    main()
