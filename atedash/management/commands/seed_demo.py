"""manage.py seed_demo: demo records for `make run`, written only when the store holds no ate records.

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

import random

from django.core.management.base import BaseCommand, CommandError
from redis.exceptions import RedisError

from atedash.app import current_app

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


class Command(BaseCommand):
    help = "Seed demo actors, workers and locks when the store is empty (use --force to seed anyway)."

    def add_arguments(self, parser):
        parser.add_argument("--actors", type=int, default=300)
        parser.add_argument("--workers", type=int, default=200)
        parser.add_argument("--seed", type=int, default=7, help="random seed (the demo is reproducible)")
        parser.add_argument("--force", action="store_true", help="seed even when the store holds keys")

    def handle(self, *args, actors, workers, seed, force, **options):
        try:
            p = current_app().store.persistence()
            existing = sum(c.actors + c.workers + c.locks for c in p.shard_counts())
            if existing and not force:
                self.stdout.write(f"store {current_app().store.address} holds {existing} ate records: not seeding")
                return
            counts = seed_store(p, actors=actors, workers=workers, rng=random.Random(seed))
        except RedisError as exc:
            raise CommandError(f"store {current_app().store.address} unreachable: {exc}") from exc
        self.stdout.write(
            "seeded {actors} actors, {workers} workers, {locks} locks into {store}".format(
                store=current_app().store.address, **counts
            )
        )


def seed_store(p, *, actors, workers, rng):
    import storage
    from storage.ateapi_pb2 import Actor, Worker

    actor_codec = storage.RecordCodec(Actor)
    worker_codec = storage.RecordCodec(Worker)
    S = Actor.Status

    # Workers: spread over the pools, each with a pod IP.
    pools = [(ns, pool) for ns, ps in NAMESPACES.items() for pool in ps]
    worker_list = []
    for i in range(workers):
        ns, pool = pools[i % len(pools)]
        w = Worker(
            worker_namespace=ns,
            worker_pool=pool,
            worker_pod=f"{pool}-worker-{i:04d}",
            ip=f"10.{20 + i // 250}.{i % 250}.{rng.randint(2, 250)}",
            version=1,
        )
        worker_list.append(w)
    free = list(worker_list)
    rng.shuffle(free)

    statuses = (
        [S.STATUS_RUNNING] * 40
        + [S.STATUS_SUSPENDED] * 40
        + [S.STATUS_RESUMING] * 8
        + [S.STATUS_SUSPENDING] * 8
        + [S.STATUS_UNSPECIFIED] * 1
    )
    actor_list = []
    for i in range(actors):
        ns = list(TEMPLATES)[i % len(TEMPLATES)]
        template = TEMPLATES[ns][(i // len(TEMPLATES)) % len(TEMPLATES[ns])]
        status = rng.choice(statuses)
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
        actor_list.append(a)

    by_id = {a.actor_id: a for a in actor_list}
    assigned = [w for w in worker_list if w.actor_id]
    running = [a for a in actor_list if a.status == S.STATUS_RUNNING and a.ateom_pod_name]
    suspended = [a for a in actor_list if a.status == S.STATUS_SUSPENDED]
    disagreements = []

    # A worker pointing at an actor that points elsewhere.
    if len(assigned) >= 2:
        w1, w2 = assigned[0], assigned[1]
        w1.actor_id, w1.actor_namespace, w1.actor_template = (
            w2.actor_id,
            by_id[w2.actor_id].actor_template_namespace,
            by_id[w2.actor_id].actor_template_name,
        )
        disagreements.append(f"worker {w1.worker_pod} points at {w2.actor_id}, which runs on {w2.worker_pod}")
    # A RUNNING actor whose worker does not exist.
    if running:
        a = running[-1]
        a.ateom_pod_name = "vanished-worker-9999"
        a.ateom_pod_ip = "10.99.0.99"
        disagreements.append(f"actor {a.actor_id} is RUNNING on a worker that does not exist")
    # A SUSPENDED actor still naming a pod.
    if suspended and free:
        a, w = suspended[0], free[0]
        a.ateom_pod_namespace, a.ateom_pod_name, a.ateom_pod_ip = w.worker_namespace, w.worker_pod, w.ip
        disagreements.append(f"actor {a.actor_id} is SUSPENDED but still names pod {w.worker_pod}")
    # A worker pointing at an actor that does not exist.
    if len(free) >= 2:
        w = free[1]
        w.actor_namespace, w.actor_template, w.actor_id = w.worker_namespace, "ghost", "ghost-actor-0000"
        disagreements.append(f"worker {w.worker_pod} points at ghost-actor-0000, which does not exist")

    pipe = p.client.pipeline(transaction=False)
    for a in actor_list:
        pipe.set(storage.actor_key(a.actor_id), actor_codec.encode_json(a), nx=True)
    for w in worker_list:
        pipe.set(
            storage.worker_key(w.worker_namespace, w.worker_pool, w.worker_pod), worker_codec.encode_json(w), nx=True
        )
    # Locks: a few held by live holders, and one stale lock on a suspended actor.
    locks = 0
    for a in running[:5]:
        pipe.set(storage.actor_lock_key(a.actor_id), f"ate-api-{rng.randrange(16**8):08x}", nx=True, ex=3600)
        locks += 1
    if len(suspended) > 1:
        a = suspended[1]
        pipe.set(storage.actor_lock_key(a.actor_id), "ate-api-dead-holder-0001", nx=True, ex=86400)
        locks += 1
        disagreements.append(f"lock:actor:{a.actor_id} is held by a holder that is gone (stale lock)")
    # One corrupt record.
    pipe.set("actor:corrupt-demo-0001", b'{"actorId": "corrupt-demo-0001", "version": \x00\xff truncated', nx=True)
    pipe.execute()
    return {"actors": len(actor_list) + 1, "workers": len(worker_list), "locks": locks, "disagreements": disagreements}
