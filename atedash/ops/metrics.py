"""The metrics behind /metrics (Prometheus text format): a registry of our own per application.

Gauges come from the fleet's stored results, never from a scan per scrape: the store statistics the
overview uses (atedash.background.counts, one count for the fleet at most every ATEDASH_STATS_MAX_AGE seconds)
and the last consistency check (atedash.background.check, at most every ATEDASH_CHECK_MAX_AGE seconds), so
every process answers the same; plus `atedash_store_up`, this scrape's PING of the store.
Request latency is a histogram filled by atedash.core.middleware.RequestLatencyMiddleware,
labelled by the route's name (a bounded set), method and status class.

Several gunicorn worker processes: set PROMETHEUS_MULTIPROC_DIR (the deploy manifests do) and the
request histogram is aggregated over all workers through prometheus_client's multiprocess mode
(gunicorn.conf.py empties the directory at start and marks dead workers); the store gauges are the
same in every process (read from the store).

Access: a logged-in operator (any role), or `Authorization: Bearer <ATEDASH_METRICS_TOKEN>` when that
token is configured (for Prometheus). Without either, the login redirect of every page; a wrong token
gets 401.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from django.core.exceptions import ImproperlyConfigured
from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import GaugeMetricFamily

if TYPE_CHECKING:
    from atedash.background.check import CheckCache
    from atedash.background.counts import StatsCache
    from atedash.core.store import StoreConnection


class StoreCollector:
    """Gauges from the fleet's stored statistics and consistency check, and the store's state."""

    def __init__(self, stats: StatsCache, checks: CheckCache, store: StoreConnection | None = None) -> None:
        self.stats = stats
        self.checks = checks
        self.store = store

    def describe(self) -> list[GaugeMetricFamily]:
        return []  # computed on collect; no scan at registration

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield self._store_up()
        yield from self._store_gauges()
        yield from self._check_gauges()

    def _store_up(self) -> GaugeMetricFamily:
        up = GaugeMetricFamily(
            "atedash_store_up", "1 when the store answered this scrape's PING, 0 during an outage (/readyz stays up)."
        )
        answered = False
        if self.store is not None:
            try:
                answered = self.store.persistence().ping()
            except Exception:  # noqa: BLE001 - unreachable (StoreUnreachable during a known outage)
                answered = False
            if not answered:
                self.store.connection_lost("no answer to the metrics scrape's PING")
        up.add_metric([], 1 if answered else 0)
        return up

    def _store_gauges(self) -> Iterator[GaugeMetricFamily]:
        actors = GaugeMetricFamily(
            "atedash_actors", "Actors in the store by status (last statistics run).", labels=["status"]
        )
        workers = GaugeMetricFamily(
            "atedash_workers",
            "Workers in the store by namespace, pool and state.",
            labels=["namespace", "pool", "state"],
        )
        locks = GaugeMetricFamily("atedash_locks_held", "lock:* keys held (last statistics run).")
        stats_age = GaugeMetricFamily(
            "atedash_store_stats_age_seconds", "Age of the store statistics behind these gauges."
        )
        stats_up = GaugeMetricFamily(
            "atedash_store_stats_available", "1 when store statistics are available, 0 while none were computed."
        )
        unreadable = GaugeMetricFamily(
            "atedash_unreadable_records",
            "Records unreadable by ate: the ate server cannot read them (its ListActors / ListWorkers fail "
            "while one exists; corrupt ones included), by kind (last statistics run).",
            labels=["kind"],
        )
        corrupt = GaugeMetricFamily(
            "atedash_corrupt_records",
            "Records atedash cannot decode either ('corrupt'; counted in atedash_unreadable_records too when "
            "the ate server cannot read them), by kind (last statistics run).",
            labels=["kind"],
        )
        result, error, _running = self.stats.snapshot()
        if result is not None:
            unreadable.add_metric(["actor"], result.unreadable_actors)
            unreadable.add_metric(["worker"], result.unreadable_workers)
            corrupt.add_metric(["actor"], result.corrupt_actors)
            corrupt.add_metric(["worker"], result.corrupt_workers)
            for status, n in sorted(result.actors_by_status.items()):
                actors.add_metric([status], n)
            for (ns, pool), states in sorted(result.workers_by_pool.items()):
                for state in ("free", "assigned"):
                    workers.add_metric([ns, pool, state], states.get(state, 0))
            locks.add_metric([], result.locks)
            stats_age.add_metric([], max(0.0, time.time() - result.computed_at))
        stats_up.add_metric([], 1 if result is not None else 0)
        yield actors
        yield workers
        yield locks
        yield unreadable
        yield corrupt
        yield stats_age
        yield stats_up

    def _check_gauges(self) -> Iterator[GaugeMetricFamily]:
        from storage.check import KINDS

        findings = GaugeMetricFamily(
            "atedash_consistency_findings", "Findings of the last consistency check, by kind.", labels=["kind"]
        )
        check_age = GaugeMetricFamily("atedash_consistency_check_age_seconds", "Age of the last consistency check.")
        check_duration = GaugeMetricFamily(
            "atedash_consistency_check_duration_seconds", "Duration of the last consistency check."
        )
        unreadable = GaugeMetricFamily(
            "atedash_records_unreadable_by_server",
            "Records the ate server cannot read (last consistency check; corrupt ones included): while one "
            "exists, its ListActors or ListWorkers fails.",
        )
        report, _error, _running = self.checks.snapshot()
        if report is not None:
            for kind in KINDS:
                findings.add_metric([kind], report.counts.get(kind, 0))
            unreadable.add_metric([], report.unreadable_by_server)
            check_age.add_metric([], self.checks.age() or 0.0)
            check_duration.add_metric([], report.duration_s)
        yield findings
        yield unreadable
        yield check_age
        yield check_duration


class Metrics:
    """The process's metrics registry: the request histogram and the store gauges.

    In multiprocess mode (PROMETHEUS_MULTIPROC_DIR) a scrape aggregates every worker's samples
    through a registry of its own, plus this process's gauges."""

    def __init__(self, stats: StatsCache, checks: CheckCache, store: StoreConnection | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.request_latency = Histogram(
            "atedash_request_duration_seconds",
            "Time to answer an HTTP request, by route name, method and status class.",
            ["view", "method", "status"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
        )
        self.store_collector = StoreCollector(stats, checks, store)
        self.registry.register(self.store_collector)
        self.scrape_registry = self.registry
        directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        if directory:
            from prometheus_client import multiprocess

            _ensure_directory(directory)
            self.scrape_registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(self.scrape_registry)
            self.scrape_registry.register(self.store_collector)


def _ensure_directory(directory: str) -> None:
    # gunicorn.conf.py creates (and empties) it when the server starts; a management command run in a
    # fresh container (`manage.py ate check` as a Job, with the deploy manifests' environment) comes
    # first, and must not stop on a directory nobody has made yet.
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as e:
        raise ImproperlyConfigured(f"PROMETHEUS_MULTIPROC_DIR={directory!r} cannot be created: {e}") from None
