"""/metrics in the Prometheus text format, from prometheus_client with a registry of our own.

Gauges come from what is cached already, never from a scan per scrape: the store statistics the
overview uses (atedash.stats, refreshed in the background at most every ATEDASH_STATS_MAX_AGE seconds)
and the last consistency check (atedash.ops.checks, at most every ATEDASH_CHECK_MAX_AGE seconds).
Request latency is a histogram filled by RequestLatencyMiddleware, labelled by the route's name (a
bounded set), method and status class.

Several gunicorn worker processes: set PROMETHEUS_MULTIPROC_DIR (the deploy manifests do) and the
request histogram is aggregated over all workers through prometheus_client's multiprocess mode
(gunicorn.conf.py empties the directory at start and marks dead workers); the store gauges are the
same in every process, computed by whichever one answers the scrape.

Access: a logged-in operator (any role), or `Authorization: Bearer <ATEDASH_METRICS_TOKEN>` when that
token is configured (for Prometheus). Without either, the login redirect of every page; a wrong token
gets 401.
"""

import hmac
import os
import time

from django.conf import settings
from django.http import HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_GET
from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.exposition import choose_encoder
from prometheus_client.core import GaugeMetricFamily

from atedash.auth import login_exempt

REGISTRY = CollectorRegistry(auto_describe=True)

REQUEST_LATENCY = Histogram(
    "atedash_request_duration_seconds",
    "Time to answer an HTTP request, by route name, method and status class.",
    ["view", "method", "status"],
    registry=REGISTRY,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)

_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}


class RequestLatencyMiddleware:
    """Observes every request's duration into REQUEST_LATENCY (first in MIDDLEWARE: the whole stack)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        start = time.perf_counter()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        if match is not None:
            view = match.view_name or "unnamed"
        elif request.path.startswith(settings.STATIC_URL):
            view = "static"
        else:
            view = "unmatched"
        method = request.method if request.method in _METHODS else "other"
        status = f"{response.status_code // 100}xx"
        REQUEST_LATENCY.labels(view, method, status).observe(time.perf_counter() - start)
        return response


class StoreCollector:
    """Gauges from the cached store statistics and the cached consistency check."""

    def describe(self):
        return []  # computed on collect; no scan at registration

    def collect(self):
        from storage.consistency import KINDS

        from atedash import stats
        from atedash.ops import checks

        actors = GaugeMetricFamily("atedash_actors", "Actors in the store by status (last statistics run).",
                                   labels=["status"])
        workers = GaugeMetricFamily("atedash_workers", "Workers in the store by namespace, pool and state.",
                                    labels=["namespace", "pool", "state"])
        locks = GaugeMetricFamily("atedash_locks_held", "lock:* keys held (last statistics run).")
        stats_age = GaugeMetricFamily("atedash_store_stats_age_seconds",
                                      "Age of the store statistics behind these gauges.")
        stats_up = GaugeMetricFamily("atedash_store_stats_available",
                                     "1 when store statistics are available, 0 while none were computed.")
        result, error, _running = stats.cache.snapshot()
        if result is not None:
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
        yield stats_age
        yield stats_up

        findings = GaugeMetricFamily("atedash_consistency_findings",
                                     "Findings of the last consistency check, by kind.", labels=["kind"])
        check_age = GaugeMetricFamily("atedash_consistency_check_age_seconds",
                                      "Age of the last consistency check.")
        check_duration = GaugeMetricFamily("atedash_consistency_check_duration_seconds",
                                           "Duration of the last consistency check.")
        report, _error, _running = checks.cache.snapshot()
        if report is not None:
            for kind in KINDS:
                findings.add_metric([kind], report.counts.get(kind, 0))
            check_age.add_metric([], checks.cache.age() or 0.0)
            check_duration.add_metric([], report.duration_s)
        yield findings
        yield check_age
        yield check_duration


REGISTRY.register(StoreCollector())

_scrape_registry = None


def scrape_registry():
    """REGISTRY, or in multiprocess mode a registry aggregating every worker's samples + the gauges."""
    global _scrape_registry
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return REGISTRY
    if _scrape_registry is None:
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        registry.register(StoreCollector())
        _scrape_registry = registry
    return _scrape_registry


def _bearer_ok(request):
    token = settings.ATEDASH_METRICS_TOKEN
    header = request.headers.get("Authorization", "")
    if not token or not header.startswith("Bearer "):
        return None  # no token configured or none presented
    return hmac.compare_digest(header[len("Bearer "):].strip().encode(), token.encode())


@login_exempt
@require_GET
def metrics(request):
    bearer = _bearer_ok(request)
    if bearer is False:
        response = HttpResponse("invalid metrics token\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="atedash metrics"'
        return response
    if bearer is None and getattr(request, "operator", None) is None:
        # Like every other page: to the login page.
        return redirect(reverse("login") + "?" + urlencode({"next": request.get_full_path()}))
    # Prometheus text format 0.0.4 by default; OpenMetrics when the scraper asks for it.
    encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
    return HttpResponse(encoder(scrape_registry()), content_type=content_type)
