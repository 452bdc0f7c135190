"""The one Redis client of this process, wrapped in storage.Persistence (the ate records) and
storage.DashboardState (the dashboard's own keys), and its outage probe.

`StoreConnection` belongs to the application object (atedash/core/app.py): the client is built lazily on
first use from the store's URL (thread-safe), and closed with the application.

When the store was found unreachable, the connection remembers the outage: until a node answers
again, a request does not wait on the dead (or frozen) store for socket timeouts and retries; a quick
probe (PING, short timeouts, at most one at a time and once a second) decides, and the request fails
at once with a 503 while nothing answers. A cluster client is kept across an outage: redis-py follows
failovers and restarts by itself, and knows every node (a client rebuilt from the URL alone would
need the seed node, which may be the one that died). A standalone client is rebuilt.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import storage
from atedash.core.timing import TimedPersistence
from storage import StoreUnreachable  # no node answered the last probe (shown as the 503 page)

PROBE_TIMEOUT_S = 0.5  # per node: connect and PING
PROBE_INTERVAL_S = 1.0  # during an outage, at most one probe per interval; others fail at once
SLOT_MAP_REFRESH_INTERVAL_S = 1.0


@dataclass
class Outage:
    since: float  # monotonic
    probed: float  # monotonic time of the last probe
    addresses: list[tuple[str, int]]  # the nodes to probe
    error: str | None


def cluster_flag(value: str) -> bool | None:
    """ATEDASH_REDIS_CLUSTER (auto | yes | no, as settings.py reads it) as connect() takes it: True,
    False, or None to auto-detect."""
    return {"yes": True, "no": False}.get(value)


def public_address(url: str) -> str:
    """The store's address for banners: redis://host:port without user or password."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        netloc = f"{host}:{parts.port}" if parts.port else host
        return urlunsplit((parts.scheme, netloc, parts.path if parts.path not in ("", "/") else "", "", ""))
    except ValueError:
        return "(invalid ATEDASH_REDIS_URL)"


class StoreConnection:
    def __init__(
        self,
        url: str,
        *,
        cluster: bool | None = None,
        timeout: float | None = None,
        replica_ack_seconds: float | None = 1.0,
        executor: ThreadPoolExecutor | None = None,
    ) -> None:
        self.url = url
        self.address = public_address(url)
        self._cluster = cluster
        self._timeout = timeout
        self._replica_ack_seconds = replica_ack_seconds or None
        self._executor = executor
        self._lock = threading.Lock()
        self._persistence: storage.Persistence | None = None
        self._dashboard: storage.DashboardState | None = None  # on the Persistence's client
        self._timed: dict[str, TimedPersistence] = {}  # "persistence", "dashboard": one per client
        self._outage: Outage | None = None
        self._probe_lock = threading.Lock()
        self._probe_pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="atedash-probe")
        self._last_slot_map_refresh = 0.0

    # --- the client ----------------------------------------------------------------------------

    def persistence(self) -> storage.Persistence:
        """The process-wide storage.Persistence (raises redis errors when the store is unreachable)."""
        return self._open()[0]

    def dashboard(self) -> storage.DashboardState:
        """The process-wide storage.DashboardState, on the same client as persistence()."""
        return self._open()[1]

    def _open(self) -> tuple[storage.Persistence, storage.DashboardState]:
        if self._outage is not None:
            self._probe_outage()  # raises StoreUnreachable while no node of the store answers
        persistence, dashboard = self._persistence, self._dashboard
        if persistence is not None and dashboard is not None:
            return persistence, dashboard
        with self._lock:
            if self._persistence is None or self._dashboard is None:
                options = {"socket_timeout": self._timeout} if self._timeout else {}
                client = storage.connect(self.url, cluster=self._cluster, **options)
                self._persistence = storage.Persistence(
                    client, replica_ack_timeout=self._replica_ack_seconds, executor=self._executor
                )
                self._dashboard = storage.DashboardState(client)
            return self._persistence, self._dashboard

    def timed(self) -> TimedPersistence:
        """persistence(), its calls timed for the Server-Timing header (one wrapper per client)."""
        return self._timed_of("persistence", self.persistence())

    def timed_dashboard(self) -> TimedPersistence:
        """dashboard(), its calls timed as timed()'s are."""
        return self._timed_of("dashboard", self.dashboard())

    def _timed_of(self, name: str, target: storage.Persistence | storage.DashboardState) -> TimedPersistence:
        wrapper = self._timed.get(name)
        if wrapper is None or wrapper.target is not target:
            wrapper = self._timed[name] = TimedPersistence(target)
        return wrapper

    def close(self) -> None:
        """Forget the client and any outage, and close the client."""
        with self._lock:
            persistence, self._persistence, self._dashboard = self._persistence, None, None
            self._outage = None
        self._probe_pool.shutdown(wait=False, cancel_futures=True)
        if persistence is not None:
            try:
                persistence.close()
            except Exception:  # noqa: BLE001 - closing a broken client must never fail a request
                pass

    # --- outages -------------------------------------------------------------------------------

    def connection_lost(self, error: str | None = None) -> None:
        """Called when the store was unreachable: remembers the outage (see the module's docstring).

        A standalone client is dropped, and the next request after the outage reconnects from scratch;
        it is not closed here: other threads may still be using it (they fail or succeed on their own).
        """
        now = time.monotonic()
        with self._lock:
            persistence = self._persistence
            clustered = persistence is not None and persistence.topology.is_cluster
            if persistence is not None and not clustered:
                self._persistence = self._dashboard = None
            if persistence is not None and clustered:
                self._refresh_slot_map_soon(persistence, now)
            if self._outage is None:
                # The next request probes first: when only part of a cluster failed (a primary died),
                # the other nodes answer at once and pages on the healthy shards carry on.
                self._outage = Outage(since=now, probed=0.0, addresses=self._addresses(persistence), error=error)

    def _refresh_slot_map_soon(self, persistence: storage.Persistence, now: float) -> None:
        """Re-read the cluster's slot map in the background (at most once a second; caller holds _lock).

        redis-py refreshes it after most failed commands, but not after every kind (pipelines, scripts
        whose reload hit the dead primary): a request that failed on a dead primary makes sure the next
        ones are routed to the replica promoted in its place.
        """
        if now - self._last_slot_map_refresh < SLOT_MAP_REFRESH_INTERVAL_S:
            return
        self._last_slot_map_refresh = now
        self._submit(persistence.topology.refresh)

    def _submit(self, fn: Callable[..., Any], *args: Any) -> Future[Any] | None:
        try:
            return self._probe_pool.submit(fn, *args)
        except RuntimeError:  # closed meanwhile (the application was replaced)
            return None

    def _addresses(self, persistence: storage.Persistence | None) -> list[tuple[str, int]]:
        """The URL's own host, then every other node the client knows (the addresses to probe)."""
        found = persistence.topology.known_addresses() if persistence is not None else []
        parts = urlsplit(self.url)
        seed = (parts.hostname or "127.0.0.1", parts.port or 6379)
        return [seed] + [a for a in found if a != seed]

    def _answers(self, host: str, port: int) -> bool:
        """True when the node at host:port answers a PING (any reply, even NOAUTH, means it is up)."""
        parts = urlsplit(self.url)
        userinfo = parts.netloc.rpartition("@")[0]
        shown_host = f"[{host}]" if ":" in host else host
        netloc = (userinfo + "@" if userinfo else "") + f"{shown_host}:{port}"
        url = urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))
        return storage.answers_ping(url, PROBE_TIMEOUT_S)

    def _probe_outage(self) -> None:
        """During an outage: returns when a node answers (the outage is over), else raises StoreUnreachable."""
        with self._probe_lock:
            outage = self._outage
            if outage is None:
                return
            since = time.monotonic() - outage.since
            first = f"; first error: {outage.error}" if outage.error else ""
            if time.monotonic() - outage.probed < PROBE_INTERVAL_S:
                raise StoreUnreachable(f"no node of the store answered (unreachable for {since:.0f} s{first})")
            outage.probed = time.monotonic()
            # Every known node at once: a frozen node costs the probe timeout, not one per node.
            futures = [f for f in (self._submit(self._answers, h, p) for h, p in outage.addresses) if f]
            for future in as_completed(futures):
                if future.result():
                    with self._lock:
                        if self._outage is outage:
                            self._outage = None
                    return
            raise StoreUnreachable(
                f"no node of the store answered a PING within {PROBE_TIMEOUT_S} s "
                f"(unreachable for {since:.0f} s{first})"
            )
