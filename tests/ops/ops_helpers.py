"""Shared helpers of the operations tests: crafting records as the ate API (or a crash) leaves them."""

from __future__ import annotations

from storage.ateapi_pb2 import Actor, Worker

RUNNING = Actor.STATUS_RUNNING
RESUMING = Actor.STATUS_RESUMING
SUSPENDING = Actor.STATUS_SUSPENDING
SUSPENDED = Actor.STATUS_SUSPENDED


def actor(store, actor_id, status=SUSPENDED, ns="", pod="", ip="", tns="tpl-ns", tname="tpl"):
    a = Actor(
        actor_id=actor_id,
        actor_template_namespace=tns,
        actor_template_name=tname,
        status=status,
        ateom_pod_namespace=ns,
        ateom_pod_name=pod,
        ateom_pod_ip=ip,
    )
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
    """Every key and value of the store, from every primary."""
    out = {}
    for key in client.scan_iter(count=1000):
        value = client.get(key)
        if value is not None:
            out[key] = value
    return out
