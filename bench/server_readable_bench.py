"""µs per record of the server's judgment (storage.server_readable), no Redis needed.

    .venv/bin/python bench/server_readable_bench.py [--records 20000] [--repeat 5]

Records like the consistency check's bench (bench/check_bench.py) seeds, written by atedash's codec:
70% suspended actors, 30% running ones, and their workers. Times, best of --repeat:
- judge_actor / judge_worker (key rules, value, identity against the key) on valid records,
- actor_value_error / worker_value_error (protojson's verdict alone: what the consistency check,
  which already checks keys and identities, needs),
- the same on Go-style output (a space after some commas): still the regex path,
- the same records with members in reverse order (the json.loads path),
- the exact decoder alone (what a record Go rejects costs),
- and, for scale, the codec's decode (what the consistency check already pays per record).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from storage.ateapi_pb2 import Actor, Worker
from storage.codec import ACTOR_CODEC, WORKER_CODEC
from storage.server_readable import (
    ACTOR_SCHEMA,
    WORKER_SCHEMA,
    actor_value_error,
    judge_actor,
    judge_worker,
    worker_value_error,
)


def records(n: int):
    actors, workers = [], []
    for i in range(n):
        aid = f"actor-{i:07d}"
        a = Actor(
            actor_id=aid,
            version=1 + i % 5,
            actor_template_namespace=f"team-{i % 20}",
            actor_template_name=f"tpl-{i % 7}",
            last_snapshot=f"snap-{i}",
        )
        if i % 10 < 3:
            pod = f"pod-{i:07d}"
            a.status = Actor.STATUS_RUNNING
            a.ateom_pod_namespace, a.ateom_pod_name, a.ateom_pod_ip = "workers", pod, f"10.0.{i >> 8 & 255}.{i & 255}"
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
            workers.append((f"worker:workers:pool-{i % 4}:{pod}".encode(), WORKER_CODEC.encode_json(w)))
        else:
            a.status = Actor.STATUS_SUSPENDED
        actors.append((f"actor:{aid}".encode(), ACTOR_CODEC.encode_json(a)))
    return actors, workers


def best_us(fn, items, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        for key, value in items:
            fn(key, value)
        best = min(best, time.perf_counter() - t0)
    return best / len(items) * 1e6


def go_spaced(items):
    return [(k, v.replace(b',"', b', "')) for k, v in items]


def reversed_members(items, codec):
    import json

    out = []
    for k, v in items:
        obj = json.loads(v)
        out.append((k, json.dumps(dict(reversed(list(obj.items()))), separators=(",", ":")).encode()))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=20000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    actors, workers = records(args.records)
    for kind, items, judge, value_error, schema, codec in (
        ("actor", actors, judge_actor, actor_value_error, ACTOR_SCHEMA, ACTOR_CODEC),
        ("worker", workers, judge_worker, worker_value_error, WORKER_SCHEMA, WORKER_CODEC),
    ):
        assert all(judge(k, v) is None for k, v in items)
        spaced = go_spaced(items)
        assert all(judge(k, v) is None for k, v in spaced)
        rev = reversed_members(items, codec)
        assert all(judge(k, v) is None for k, v in rev)
        print(f"{kind}s ({len(items)} records, {sum(len(v) for _, v in items) // len(items)} bytes on average):")
        print(f"  judge, as atedash writes them:      {best_us(judge, items, args.repeat):6.2f} µs/record")
        print(
            f"  value only (*_value_error):         {best_us(lambda k, v, f=value_error: f(v), items, args.repeat):6.2f} µs/record"
        )
        print(f"  judge, as Go writes them (spaces):  {best_us(judge, spaced, args.repeat):6.2f} µs/record")
        print(f"  judge, members reversed (json):     {best_us(judge, rev, args.repeat):6.2f} µs/record")
        print(
            f"  exact decoder alone:                {best_us(lambda k, v, s=schema: s.exact(v), items, 1):6.2f} µs/record"
        )
        print(
            f"  codec.decode (for scale):           {best_us(lambda k, v, c=codec: c.decode(v), items, args.repeat):6.2f} µs/record"
        )


if __name__ == "__main__":
    main()
