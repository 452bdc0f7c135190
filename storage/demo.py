"""Demo records for `make run` (manage.py seed_demo): written only where no key exists yet.

A few hundred actors and workers across namespaces, pools and every status, plus records that
disagree with each other the way a crash leaves them:
  * a worker pointing at an actor that points at another worker,
  * a RUNNING actor whose worker does not exist,
  * a SUSPENDED actor still naming a pod,
  * a worker pointing at an actor that does not exist,
  * a stale lock on a suspended actor (the holder died; the lock lives for a day),
  * one corrupt actor record (bytes that are not a record), shown as a flagged row.
Records are encoded the way the ate API server writes them and sent in pipelined batches.
"""

from __future__ import annotations

import random

from storage.ateapi_pb2 import Actor, Worker
from storage.keys import actor_key, actor_lock_key, worker_key
from storage.persistence import Persistence
from storage.records import ACTORS, WORKERS

NAMESPACES = {
    "team-a": ["small", "large"],
    "team-b": ["general"],
    "ml-serving": ["gpu", "cpu"],
}
TEMPLATES = {
    "team-a": ["web-agent", "crawler"],
    "team-b": ["batch-runner", "notebook"],
    "ml-serving": ["inference", "fine-tune"],
}
S = Actor.Status
STATUS_WEIGHTS = (
    [S.STATUS_RUNNING] * 40
    + [S.STATUS_SUSPENDED] * 40
    + [S.STATUS_RESUMING] * 8
    + [S.STATUS_SUSPENDING] * 8
    + [S.STATUS_UNSPECIFIED] * 1
)
CORRUPT_KEY = "actor:corrupt-demo-0001"
CORRUPT_VALUE = b'{"actorId": "corrupt-demo-0001", "version": \x00\xff truncated'


def seed_store(p: Persistence, *, actors: int, workers: int, rng: random.Random) -> dict:
    """Writes the demo records into ``p``; counts of what was made, and the disagreements planted."""
    worker_list = _workers(workers, rng)
    free = list(worker_list)
    rng.shuffle(free)
    actor_list = [_actor(i, rng, free) for i in range(actors)]
    running = [a for a in actor_list if a.status == S.STATUS_RUNNING and a.ateom_pod_name]
    suspended = [a for a in actor_list if a.status == S.STATUS_SUSPENDED]
    disagreements = _disagree(actor_list, worker_list, free, running, suspended)
    entries = [(actor_key(a.actor_id), ACTORS.codec.encode_json(a), None) for a in actor_list]
    entries += [
        (worker_key(w.worker_namespace, w.worker_pool, w.worker_pod), WORKERS.codec.encode_json(w), None)
        for w in worker_list
    ]
    # Locks: a few held by live holders (workflows moving an actor: RESUMING/SUSPENDING, for less
    # than the stale threshold), and one stale lock on a suspended actor.
    moving = [a for a in actor_list if a.status in (S.STATUS_RESUMING, S.STATUS_SUSPENDING) and a.ateom_pod_name]
    locks = [(actor_lock_key(a.actor_id), f"ate-api-{rng.randrange(16**8):08x}".encode(), 3600) for a in moving[:5]]
    if len(suspended) > 1:
        a = suspended[1]
        locks.append((actor_lock_key(a.actor_id), b"ate-api-dead-holder-0001", 86400))
        disagreements.append(f"lock:actor:{a.actor_id} is held by a holder that is gone (stale lock)")
    p.write_new_raw(entries + locks + [(CORRUPT_KEY, CORRUPT_VALUE, None)])
    return {
        "actors": len(actor_list) + 1,
        "workers": len(worker_list),
        "locks": len(locks),
        "disagreements": disagreements,
    }


def _workers(count: int, rng: random.Random) -> list[Worker]:
    """Workers spread over the pools, each with a pod IP."""
    pools = [(ns, pool) for ns, ps in NAMESPACES.items() for pool in ps]
    out = []
    for i in range(count):
        ns, pool = pools[i % len(pools)]
        ip = f"10.{20 + i // 250}.{i % 250}.{rng.randint(2, 250)}"
        out.append(Worker(worker_namespace=ns, worker_pool=pool, worker_pod=f"{pool}-worker-{i:04d}", ip=ip, version=1))
    return out


def _actor(i: int, rng: random.Random, free: list[Worker]) -> Actor:
    """Actor number ``i``; a running one takes a free worker of its namespace (which then points back)."""
    ns = list(TEMPLATES)[i % len(TEMPLATES)]
    template = TEMPLATES[ns][(i // len(TEMPLATES)) % len(TEMPLATES[ns])]
    status = rng.choice(STATUS_WEIGHTS)
    a = Actor(
        actor_id=f"{template}-{i:04d}",
        actor_template_namespace=ns,
        actor_template_name=template,
        status=status,
        version=rng.randint(1, 40),
    )
    if status != S.STATUS_UNSPECIFIED and rng.random() < 0.8:
        a.last_snapshot = f"gs://ate-snapshots/{ns}/{a.actor_id}/{rng.randint(1, 60):04d}"
    if status in (S.STATUS_RUNNING, S.STATUS_RESUMING, S.STATUS_SUSPENDING):
        candidates = [w for w in free if w.worker_namespace == ns] or free
        if candidates:
            w = candidates[0]
            free.remove(w)
            a.ateom_pod_namespace, a.ateom_pod_name = w.worker_namespace, w.worker_pod
            if status != S.STATUS_RESUMING:
                a.ateom_pod_ip = w.ip
            w.actor_namespace, w.actor_template, w.actor_id = ns, template, a.actor_id
            w.version = rng.randint(2, 30)
    if status == S.STATUS_SUSPENDING:
        a.in_progress_snapshot = f"gs://ate-snapshots/{ns}/{a.actor_id}/pending"
    return a


def _disagree(
    actor_list: list[Actor], worker_list: list[Worker], free: list[Worker], running: list[Actor], suspended: list[Actor]
) -> list[str]:
    """Plants the records that disagree with each other; what was planted, in words."""
    by_id = {a.actor_id: a for a in actor_list}
    assigned = [w for w in worker_list if w.actor_id]
    out = []
    if len(assigned) >= 2:  # a worker pointing at an actor that points elsewhere
        w1, w2 = assigned[0], assigned[1]
        other = by_id[w2.actor_id]
        w1.actor_id, w1.actor_namespace, w1.actor_template = (
            w2.actor_id,
            other.actor_template_namespace,
            other.actor_template_name,
        )
        out.append(f"worker {w1.worker_pod} points at {w2.actor_id}, which runs on {w2.worker_pod}")
    if running:  # a RUNNING actor whose worker does not exist
        a = running[-1]
        a.ateom_pod_name, a.ateom_pod_ip = "vanished-worker-9999", "10.99.0.99"
        out.append(f"actor {a.actor_id} is RUNNING on a worker that does not exist")
    if suspended and free:  # a SUSPENDED actor still naming a pod
        a, w = suspended[0], free[0]
        a.ateom_pod_namespace, a.ateom_pod_name, a.ateom_pod_ip = w.worker_namespace, w.worker_pod, w.ip
        out.append(f"actor {a.actor_id} is SUSPENDED but still names pod {w.worker_pod}")
    if len(free) >= 2:  # a worker pointing at an actor that does not exist
        w = free[1]
        w.actor_namespace, w.actor_template, w.actor_id = w.worker_namespace, "ghost", "ghost-actor-0000"
        out.append(f"worker {w.worker_pod} points at ghost-actor-0000, which does not exist")
    return out
