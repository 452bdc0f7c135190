"""Shared helpers of the operations tests: crafting records as the ate API (or a crash) leaves them."""

from __future__ import annotations

from storage.ateapi_pb2 import Actor, Worker

RUNNING = Actor.STATUS_RUNNING
RESUMING = Actor.STATUS_RESUMING
SUSPENDING = Actor.STATUS_SUSPENDING
SUSPENDED = Actor.STATUS_SUSPENDED


def actor(store, actor_id, status=SUSPENDED, ns="", pod="", ip="", tns="tpl-ns", tname="tpl"):
    a = Actor(actor_id=actor_id, status=status, actor_template_namespace=tns, actor_template_name=tname)
    a.ateom_pod_namespace, a.ateom_pod_name, a.ateom_pod_ip = ns, pod, ip
    store.create_actor(a)
    return store.get_actor(actor_id)


def worker(store, ns, pool, pod, actor_id="", ip="10.0.0.1", tns="tpl-ns", tname="tpl"):
    w = Worker(
        worker_namespace=ns,
        worker_pool=pool,
        worker_pod=pod,
        ip=ip,
        actor_id=actor_id,
        actor_namespace=tns if actor_id else "",
        actor_template=tname if actor_id else "",
    )
    store.create_worker(w)
    return store.get_worker(ns, pool, pod)


def running_pair(store, actor_id, ns, pool, pod, ip="10.0.0.9", status=RUNNING):
    """A consistent running actor and the worker that runs it."""
    a = actor(store, actor_id, status, ns, pod, ip)
    w = worker(store, ns, pool, pod, actor_id, ip)
    return a, w


def all_values(client) -> dict[bytes, bytes]:
    """Every string key and its value, from every primary."""
    out = {}
    for key in client.scan_iter(count=1000, _type="string"):  # not the audit stream
        value = client.get(key)
        if value is not None:
            out[key] = value
    return out


def consistent_store(store, cluster_client):
    running_pair(store, "a-run", "ns1", "pool-a", "pod-1")
    running_pair(store, "a-resume", "ns1", "pool-b", "pod-3", status=RESUMING)
    running_pair(store, "a-suspending", "ns2", "pool-a", "pod-4", status=SUSPENDING)
    actor(store, "a-sus")
    worker(store, "ns1", "pool-a", "pod-2")  # free
    # The same pod name in two pools: the actor's IP says which one it runs on.
    actor(store, "a-twin", RUNNING, "ns3", "pod-t", "10.3.0.2")
    worker(store, "ns3", "pool-x", "pod-t", ip="10.3.0.1")
    worker(store, "ns3", "pool-y", "pod-t", "a-twin", ip="10.3.0.2")
    assert store.acquire_lock("lock:actor:a-run", "holder-1", 60)
    assert store.acquire_lock("lock:other", "holder-2", 60)


def crafted_store(store, cluster_client):
    """One of each finding kind, each on its own records."""
    consistent_store(store, cluster_client)
    # orphan_worker
    worker(store, "ns9", "pool-a", "w-orphan", "ghost")
    # leaked_worker + duplicate_claim: L runs on pod-l1, whose worker claims it; pod-l2's worker too.
    running_pair(store, "L", "ns1", "pool-a", "pod-l1")
    worker(store, "ns1", "pool-a", "pod-l2", "L")
    # leaked_worker: a worker still claiming a suspended actor.
    actor(store, "S2")
    worker(store, "ns1", "pool-c", "pod-s2", "S2")
    # actor_without_worker
    actor(store, "R1", RUNNING, "ns1", "pod-none", "10.1.0.1")
    # actor_worker_free
    actor(store, "R2", RUNNING, "ns1", "pod-free", "10.1.0.2")
    worker(store, "ns1", "pool-a", "pod-free", ip="10.1.0.2")
    # actor_worker_elsewhere: R3 and R4 both name pod-shared, whose worker claims R4.
    actor(store, "R3", RESUMING, "ns1", "pod-shared", "10.1.0.3")
    running_pair(store, "R4", "ns1", "pool-a", "pod-shared", ip="10.1.0.3")
    # suspended_with_pod
    actor(store, "S1", SUSPENDED, "ns1", "pod-old", "10.1.0.4")
    # orphan_lock (with expiry) and lock_without_expiry (its actor exists)
    assert store.acquire_lock("lock:actor:ghost2", "tok-ghost", 60)
    cluster_client.set("lock:actor:a-sus", "tok-forever")
