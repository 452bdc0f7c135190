"""What the check keeps between its phases: small slotted dataclasses and the compact worker index.

Actors are streamed and never kept. What is kept is O(W + L + F): an entry per worker (W), per
``lock:actor:*`` lock (L), and per suspicious claim or case that becomes a finding (F).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from storage.ateapi_pb2 import Actor, Worker
from storage.keys import worker_key

# (namespace, pool, pod): a worker's identity.
WorkerRef = tuple[str, str, str]

_intern = sys.intern


@dataclass(slots=True)
class WorkerEntry:
    """One worker, as small as the check can keep it: its (namespace, pod) live in ``pod_key``
    ("ns\\0pod", the index's key, shared), namespaces, pools and templates are interned (they repeat)."""

    pod_key: str
    pool: str
    actor_namespace: str
    actor_template: str
    actor_id: str
    version: int
    ip: str

    @classmethod
    def of(cls, w: Worker) -> WorkerEntry:
        return cls(
            _intern(w.worker_namespace) + "\0" + w.worker_pod,
            _intern(w.worker_pool),
            _intern(w.actor_namespace),
            _intern(w.actor_template),
            w.actor_id,
            w.version,
            w.ip,
        )

    @property
    def ref(self) -> WorkerRef:
        ns, pod = self.pod_key.split("\0", 1)
        return ns, self.pool, pod

    @property
    def key(self) -> str:
        return worker_key(*self.ref)

    def order(self) -> tuple:
        """The order among workers sharing a pod name, when nothing else tells them apart."""
        return self.pool, self.actor_namespace, self.actor_template, self.actor_id, self.version, self.ip


@dataclass(slots=True)
class LockEntry:
    key: str
    token: str
    ttl_ms: int | None  # None: no expiry
    read_at: float  # when its TTL was read (unix seconds; LockInfo.read_at)
    first_seen: float | None = None  # when atedash first saw this holder (lockage.observe)


@dataclass(slots=True)
class LeakedClaim:
    """A worker claiming an actor that exists but does not run on it (other pod, none, or SUSPENDED)."""

    worker: WorkerEntry
    actor: Actor


@dataclass(slots=True)
class DuplicateGroup:
    """Two or more workers claiming one actor; ``actor`` is None when that actor does not exist."""

    actor_id: str
    workers: list[WorkerEntry]
    actor: Actor | None


@dataclass(slots=True)
class Elsewhere:
    """A running actor whose pod's worker claims another actor: decided once every actor is seen."""

    actor: Actor
    worker: WorkerEntry
    ref: WorkerRef


class WorkerIndex:
    """Every worker, by (namespace, pod) and by the actor it claims, in little memory: one string key
    per pod ("ns\\0pod"), a bare entry (a list only when several pools share the pod name), and
    claims pointing at the pod key."""

    __slots__ = ("_by_pod", "_claims")

    def __init__(self):
        self._by_pod: dict[str, WorkerEntry | list[WorkerEntry]] = {}
        self._claims: dict[str, str | list[str]] = {}

    def add(self, w: Worker) -> None:
        entry = WorkerEntry.of(w)
        pod_key = entry.pod_key
        present = self._by_pod.get(pod_key)
        if present is None:
            self._by_pod[pod_key] = entry
        elif isinstance(present, list):
            present.append(entry)
        else:
            self._by_pod[pod_key] = [present, entry]
        if w.actor_id:
            self._add_claim(w.actor_id, pod_key)

    def _add_claim(self, actor_id: str, pod_key: str) -> None:
        claimed = self._claims.get(actor_id)
        if claimed is None:
            self._claims[actor_id] = pod_key
        elif isinstance(claimed, list):
            if pod_key not in claimed:
                claimed.append(pod_key)
        elif claimed != pod_key:
            self._claims[actor_id] = [claimed, pod_key]

    def at_pod(self, ns: str, pod: str) -> list[WorkerEntry]:
        present = self._by_pod.get(ns + "\0" + pod)
        if present is None:
            return []
        return present if isinstance(present, list) else [present]

    def is_claimed(self, actor_id: str) -> bool:
        return actor_id in self._claims

    def claimed_ids(self):
        return self._claims.keys()

    def claimants(self, actor_id: str) -> list[WorkerEntry]:
        """Every worker claiming the actor."""
        claimed = self._claims.get(actor_id)
        if claimed is None:
            return []
        out = []
        for pod_key in claimed if isinstance(claimed, list) else (claimed,):
            present = self._by_pod[pod_key]
            for e in present if isinstance(present, list) else (present,):
                if e.actor_id == actor_id:
                    out.append(e)
        return out


def pick(candidates: list[WorkerEntry], ip: str) -> WorkerEntry:
    """The worker an actor runs on among those at its pod name: the only one, else the one with the
    actor's IP, else the first in a fixed order."""
    if len(candidates) == 1:
        return candidates[0]
    by_ip = [e for e in candidates if ip and e.ip == ip]
    if len(by_ip) == 1:
        return by_ip[0]
    return min(candidates, key=WorkerEntry.order)
