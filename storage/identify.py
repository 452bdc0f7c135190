"""Any identifier an operator has at 3 a.m., to the records it names: the header box's search.

``plan(query)`` says which searches a query calls for, by its shape:

=========================  ====================================================================
query                      searched
=========================  ====================================================================
an IP (``10.1.2.3``)        actors whose ateom pod IP is it; workers with that IP
an IP prefix (``10.1.``)    actors whose ateom pod IP starts with it; workers likewise
``ns/name``                 actors on ateom pod ns/name; workers of namespace ns with pod name
``ns/pool/pod``             actors on ateom pod ns/pod (the worker itself is an exact key)
a path (``gs://…``, ``/``)  actors whose last or in-progress snapshot contains it
a word                      actors on ateom pod of that name; workers with that pod name;
                            actors whose id contains it; locks held by that token
=========================  ====================================================================

``identify`` runs them at once, each a walk of the store filtered on the nodes (storage/matches.py: the
replicas when the cluster has them) or, for lock tokens, the lock scan; each stops after ``seconds``
and says how far it got.
"""

from __future__ import annotations

import ipaddress
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from storage.check.related import Search, bounded_walk
from storage.keys import ACTOR_LOCK_PREFIX, actor_key, worker_key
from storage.matches import ByteClause, WalkFilter, actor_walk, worker_walk
from storage.records import ACTORS, WORKERS

MAX_MATCHES = 200
_ACTOR_IP = ("ateomPodIp", "ateom_pod_ip")
_IP_PREFIX = re.compile(r"^(\d{1,3}\.){1,3}\d{0,3}$|^[0-9a-fA-F:]*::?[0-9a-fA-F:]*$")


@dataclass(frozen=True)
class Match:
    kind: str  # "actor" or "worker"
    key: str
    why: str  # what matched ("ateom pod IP 10.1.2.3")


@dataclass
class Found:
    matches: list[Match] = field(default_factory=list)
    searches: list[Search] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return all(s.complete for s in self.searches)


def _ip(query: str) -> bool:
    try:
        ipaddress.ip_address(query)
    except ValueError:
        return False
    return True


def _prefix_filter(kind, json_names: tuple[str, ...], attr: str, prefix: str, what: str) -> WalkFilter:
    """Records whose string field ``attr`` starts with ``prefix`` (in plain JSON: ``"<prefix>`` stands
    as the value of one of ``json_names``, the field's spellings)."""
    needle = b'"' + prefix.encode("utf-8", "surrogatepass")
    match = "actor:*" if kind is ACTORS else "worker:*"
    clause = ByteClause(((True, needle),), json_names)
    return WalkFilter(kind, match, (clause,), lambda r: getattr(r, attr).startswith(prefix), (("q", what),))


def _pod_filter(namespace: str | None, pod: str) -> WalkFilter:
    """Workers whose pod name is ``pod`` (in ``namespace`` when given)."""
    base = worker_walk(namespace=namespace)
    quoted = b'"' + pod.encode("utf-8", "surrogatepass") + b'"'

    def ok(w: Any) -> bool:
        return base.matches(w) and w.worker_pod == pod

    clause = ByteClause(((True, quoted),), ("workerPod", "worker_pod"))
    return WalkFilter(WORKERS, base.match, (*base.clauses, clause), ok, (*base.description, ("pod", pod)))


def _snapshot_filter(text: str) -> WalkFilter:
    needle = text.encode("utf-8", "surrogatepass")

    def ok(a) -> bool:
        return text in a.last_snapshot or text in a.in_progress_snapshot

    names = ("lastSnapshot", "last_snapshot", "inProgressSnapshot", "in_progress_snapshot")
    clause = ByteClause(((True, needle),), names, within=True)
    return WalkFilter(ACTORS, "actor:*", (clause,), ok, (("snapshot", text),))


def plan(query: str) -> list[tuple[str, str, WalkFilter | None]]:
    """(kind, why, filter) per search the query calls for; filter None: the lock tokens."""
    q = query.strip()
    if not q:
        return []
    if _ip(q):
        return [
            ("actor", f"ateom pod IP {q}", actor_walk(pod_ip=q)),
            ("worker", f"IP {q}", worker_walk(ip=q)),
        ]
    if _IP_PREFIX.match(q) and any(c in q for c in ".:"):
        return [
            ("actor", f"ateom pod IP starting {q}", _prefix_filter(ACTORS, _ACTOR_IP, "ateom_pod_ip", q, q)),
            ("worker", f"IP starting {q}", _prefix_filter(WORKERS, ("ip",), "ip", q, q)),
        ]
    if "://" in q or q.startswith("/"):
        return [("actor", f"snapshot containing {q}", _snapshot_filter(q))]
    parts = q.split("/")
    if len(parts) == 2 and all(parts):
        ns, pod = parts
        return [
            ("actor", f"ateom pod {ns}/{pod}", actor_walk(pod_namespace=ns, pod_name=pod)),
            ("worker", f"pod {ns}/{pod}", _pod_filter(ns, pod)),
        ]
    if len(parts) == 3 and all(parts):
        ns, _pool, pod = parts
        return [("actor", f"ateom pod {ns}/{pod}", actor_walk(pod_namespace=ns, pod_name=pod))]
    if len(parts) == 1 and ":" not in q:
        return [
            ("actor", f"ateom pod {q}", actor_walk(pod_name=q)),
            ("worker", f"pod {q}", _pod_filter(None, q)),
            ("actor", f"id containing {q}", actor_walk(id_contains=q)),
            ("lock", f"lock token {q}", None),
        ]
    return [("lock", f"lock token {q}", None)]


def _lock_tokens(persistence, token: str, seconds: float) -> tuple[list[Match], Search]:
    """Locks held by ``token``: the lock scan, page by page, until done or ``seconds``."""
    t0 = time.monotonic()
    found, cursor, scanned, total = [], None, 0, 0
    while True:
        left = seconds - (time.monotonic() - t0)
        page = persistence.scan_locks(cursor=cursor, limit=1000, max_seconds=max(0.05, left))
        scanned += page.scanned
        total = page.total_keys
        for info in page.records:
            if info.token == token:
                if info.key.startswith(ACTOR_LOCK_PREFIX):
                    aid = info.key[len(ACTOR_LOCK_PREFIX) :]
                    found.append(Match("actor", actor_key(aid), f"holds lock {info.key} (token {token})"))
        cursor = page.next_cursor
        if cursor is None or time.monotonic() - t0 >= seconds:
            break
    return found, Search(f"locks held by token {token}", cursor is None, scanned, total, time.monotonic() - t0)


def _key_of(record) -> str:
    if hasattr(record, "actor_id") and hasattr(record, "status"):
        return actor_key(record.actor_id)
    return worker_key(record.worker_namespace, record.worker_pool, record.worker_pod)


def identify(persistence, query: str, *, seconds: float = 2.0, max_matches: int = MAX_MATCHES) -> Found:
    """Every record ``query`` may name, by the searches ``plan`` gives, run at once."""
    searches = plan(query)
    out = Found()
    if not searches:
        return out
    # Whole-store reads: on the replicas when the cluster has them (records are then read by key
    # from the primaries, so what opens is what is stored now).
    persistence = persistence.on_replicas()

    def run(search):
        kind, why, wanted = search
        if wanted is None:
            return _lock_tokens(persistence, query.strip(), seconds)
        records, s = bounded_walk(persistence, wanted, seconds, why, max_results=max_matches)
        return [Match(kind, _key_of(r), why) for r in records], s

    with ThreadPoolExecutor(len(searches)) as pool:
        results = list(pool.map(run, searches))
    seen = set()
    for matches, search in results:
        out.searches.append(search)
        for m in matches:
            if m.key not in seen:
                seen.add(m.key)
                out.matches.append(m)
    out.matches = out.matches[:max_matches]
    return out
