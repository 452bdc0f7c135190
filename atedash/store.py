"""The one Redis client of this process, wrapped in storage.Persistence.

Built lazily on first use from settings.ATEDASH_REDIS_URL (thread-safe) and reset when a test
changes the URL.

When the store was found unreachable, the process remembers the outage: until a node answers again,
a request does not wait on the dead (or frozen) store for socket timeouts and retries; a quick probe
(PING, short timeouts, at most one at a time and once a second) decides, and the request fails at
once with a 503 while nothing answers. A cluster client is kept across an outage: redis-py follows
failovers and restarts by itself, and knows every node (a client rebuilt from the URL alone would
need the seed node, which may be the one that died). A standalone client is rebuilt.
"""

import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from urllib.parse import urlsplit, urlunsplit

import redis

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

_lock = threading.Lock()
_persistence = None


def _cluster_flag():
    value = settings.ATEDASH_REDIS_CLUSTER
    if value in {"yes", "true", "1", "on"}:
        return True
    if value in {"no", "false", "0", "off"}:
        return False
    return None  # auto-detect


def get_persistence():
    """The process-wide storage.Persistence (raises redis errors when the store is unreachable)."""
    global _persistence
    if _outage is not None:
        _probe_outage()  # raises StoreUnreachable while no node of the store answers
    persistence = _persistence
    if persistence is not None:
        return persistence
    with _lock:
        if _persistence is None:
            import storage

            timeout = getattr(settings, "ATEDASH_REDIS_TIMEOUT", None)
            client = storage.connect(
                settings.ATEDASH_REDIS_URL, cluster=_cluster_flag(), **({"socket_timeout": timeout} if timeout else {})
            )
            _persistence = storage.Persistence(
                client, replica_ack_timeout=getattr(settings, "ATEDASH_REPLICA_ACK_SECONDS", 1.0) or None
            )
        return _persistence


def reset(*, close=True):
    """Forget the client and any outage (the next call builds a new client)."""
    global _persistence, _outage
    with _lock:
        persistence, _persistence = _persistence, None
        _outage = None
    if persistence is not None and close:
        client = getattr(persistence, "client", None) or getattr(persistence, "_client", None)
        try:
            if client is not None:
                client.close()
        except Exception:  # noqa: BLE001 - closing a broken client must never fail a request
            pass


def connection_lost(error=None):
    """Called when the store was unreachable: remembers the outage (see the module's docstring).

    A standalone client is dropped, and the next request after the outage reconnects from scratch;
    it is not closed here: other threads may still be using it (they fail or succeed on their own).
    """
    global _outage, _persistence
    now = time.monotonic()
    with _lock:
        persistence = _persistence
        if persistence is not None and not _is_cluster(persistence):
            _persistence = None
        if persistence is not None and _is_cluster(persistence):
            _refresh_slot_map_soon(persistence, now)
        if _outage is None:
            # The next request probes first: when only part of a cluster failed (a primary died),
            # the other nodes answer at once and pages on the healthy shards carry on.
            _outage = {"since": now, "probed": 0.0, "addresses": _addresses(persistence), "error": error}


_last_slot_map_refresh = 0.0
SLOT_MAP_REFRESH_INTERVAL_S = 1.0


def _refresh_slot_map_soon(persistence, now):
    """Re-read the cluster's slot map in the background (at most once a second; caller holds _lock).

    redis-py refreshes it after most failed commands, but not after every kind (pipelines, scripts
    whose reload hit the dead primary): a request that failed on a dead primary makes sure the next
    ones are routed to the replica promoted in its place.
    """
    global _last_slot_map_refresh
    if now - _last_slot_map_refresh < SLOT_MAP_REFRESH_INTERVAL_S:
        return
    _last_slot_map_refresh = now
    topology = getattr(persistence, "topology", None)
    if topology is not None:
        _probe_pool.submit(topology.refresh)


# --- outages ---------------------------------------------------------------------------------

PROBE_TIMEOUT_S = 0.5  # per node: connect and PING
PROBE_INTERVAL_S = 1.0  # during an outage, at most one probe per interval; others fail at once

_outage = None  # None, or {"since", "probed" (monotonic), "addresses" (host, port) to try}
_probe_lock = threading.Lock()
_probe_pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="atedash-probe")


class StoreUnreachable(redis.exceptions.ConnectionError):
    """No node of the store answered the last probe (shown as the 503 page)."""


def _is_cluster(persistence):
    from redis.cluster import RedisCluster

    return isinstance(getattr(persistence, "client", None), RedisCluster)


def _addresses(persistence):
    """The URL's own host, then every other node the client knows (the addresses to probe)."""
    found = []
    client = getattr(persistence, "client", None)
    manager = getattr(client, "nodes_manager", None)
    if manager is not None:
        found = [(node.host, int(node.port)) for node in list(manager.nodes_cache.values())]
    parts = urlsplit(settings.ATEDASH_REDIS_URL)
    seed = (parts.hostname or "127.0.0.1", parts.port or 6379)
    return [seed] + [a for a in found if a != seed]


def _answers(host, port):
    """True when the node at host:port answers a PING (any reply, even NOAUTH, means it is up)."""
    parts = urlsplit(settings.ATEDASH_REDIS_URL)
    userinfo = parts.netloc.rpartition("@")[0]
    shown_host = f"[{host}]" if ":" in host else host
    netloc = (userinfo + "@" if userinfo else "") + f"{shown_host}:{port}"
    url = urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))
    probe = redis.Redis.from_url(url, socket_timeout=PROBE_TIMEOUT_S, socket_connect_timeout=PROBE_TIMEOUT_S)
    try:
        probe.ping()
        return True
    except redis.exceptions.ResponseError:
        return True  # e.g. NOAUTH / WRONGPASS: the server is there and answering
    except (redis.exceptions.RedisError, OSError):
        return False
    finally:
        probe.close()


def _probe_outage():
    """During an outage: returns when a node answers (the outage is over), else raises StoreUnreachable."""
    global _outage
    with _probe_lock:
        outage = _outage
        if outage is None:
            return
        since = time.monotonic() - outage["since"]
        first = f"; first error: {outage['error']}" if outage.get("error") else ""
        if time.monotonic() - outage["probed"] < PROBE_INTERVAL_S:
            raise StoreUnreachable(f"no node of the store answered (unreachable for {since:.0f} s{first})")
        outage["probed"] = time.monotonic()
        # Every known node at once: a frozen node costs the probe timeout, not one per node.
        futures = [_probe_pool.submit(_answers, host, port) for host, port in outage["addresses"]]
        for future in as_completed(futures):
            if future.result():
                with _lock:
                    if _outage is outage:
                        _outage = None
                return
        raise StoreUnreachable(
            f"no node of the store answered a PING within {PROBE_TIMEOUT_S} s (unreachable for {since:.0f} s{first})"
        )


def store_address():
    """The store's address for banners: redis://host:port without user or password."""
    url = settings.ATEDASH_REDIS_URL
    try:
        parts = urlsplit(url)
        host = parts.hostname or "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        netloc = f"{host}:{parts.port}" if parts.port else host
        return urlunsplit((parts.scheme, netloc, parts.path if parts.path not in ("", "/") else "", "", ""))
    except ValueError:
        return "(invalid ATEDASH_REDIS_URL)"


@receiver(setting_changed)
def _on_setting_changed(setting, **kwargs):
    if setting in {"ATEDASH_REDIS_URL", "ATEDASH_REDIS_CLUSTER", "ATEDASH_REDIS_TIMEOUT",
                   "ATEDASH_REPLICA_ACK_SECONDS"}:
        reset()
        from atedash import stats

        stats.reset()
