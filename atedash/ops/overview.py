"""Overview: actors by status, workers by pool, locks held, and the cluster's nodes."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core import signing
from django.shortcuts import redirect
from django.urls import get_script_prefix, reverse
from django.views.decorators.http import require_GET, require_http_methods

from atedash.accounts.auth import role_required
from atedash.core.pages import persistence, render_page
from atedash.core.request import AuthedHttpRequest
from atedash.ops import attention
from atedash.records import listing

if TYPE_CHECKING:
    from django.http import HttpResponse
    from django.http.response import HttpResponseBase
    from django.utils.safestring import SafeString

    from atedash.core.app import Application
    from storage import StoreStats
    from storage.cluster import ClusterOverview

SINCE_SALT = "atedash.overview.since"


def _stats_context(app: Application, since: float | None = None) -> dict[str, Any]:
    result, envelope, error, running = app.stats.state(start_if_due=True)
    # A recount asked for at `since` is still pending here while this process's counts predate it.
    pending_since = (
        since if since is not None and error is None and (result is None or result.computed_at < since) else None
    )
    context: dict[str, Any] = {
        "stats": result,
        "stats_error": error,
        "stats_running": running or pending_since is not None,
        "stats_age": None,
        "stats_since": signing.dumps(pending_since, salt=SINCE_SALT) if pending_since is not None else None,
        # A count whose process died before it wrote anything (its lease lapsed): said, with its maker.
        "stats_interrupted": app.stats.interrupted(),
    }
    if result is not None:
        context["stats_age"] = max(0, int(time.time() - result.computed_at))
        # The same in every process: the fleet's one count, when and by whom (host:pid).
        context["stats_counted_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(result.computed_at))
        context["stats_maker"] = str(envelope.get("maker", ""))[:200]
        context["stats_interval"] = int(app.stats.interval(result))
        context["stats_stale"] = context["stats_age"] > context["stats_interval"]
        context["actor_total"] = sum(result.actors_by_status.values())
        pools = []
        for (namespace, pool), counts in sorted(result.workers_by_pool.items()):
            free, assigned = counts.get("free", 0), counts.get("assigned", 0)
            pools.append(
                {"namespace": namespace, "pool": pool, "free": free, "assigned": assigned, "total": free + assigned}
            )
        context["pools"] = pools
        if len(pools) > POOLS_FLAT:
            context["pool_groups"] = app.stats.derived(
                result, ("pool_groups", get_script_prefix()), lambda _result: _pool_groups(pools)
            )
        else:
            context["pool_rows_html"] = _pool_rows_html(app, result, pools)
        context["workers_free"] = sum(p["free"] for p in pools)
        context["workers_assigned"] = sum(p["assigned"] for p in pools)
        statuses = sorted(result.actors_by_status.items(), key=lambda kv: (kv[0] == "CORRUPT", kv[0]))
        context["statuses"] = [(name.removeprefix("STATUS_"), count) for name, count in statuses]
    return context


def _attention_context(app: Application, cluster: ClusterOverview, stats: dict[str, Any]) -> dict[str, Any]:
    """The strip at the top of the overview (atedash/ops/attention.py)."""
    checks = app.checks
    report, _error, _running = checks.snapshot(start_if_stale=False)
    result = stats["stats"]
    items = attention.cluster_items(cluster)
    if result is not None:
        keys_now = sum(n.keys or 0 for n in cluster.nodes if n.role == "primary" and n.healthy)
        items += attention.stats_items(
            result, stats["stats_age"], stats["stats_interval"], stats["stats_running"], keys_now
        )
    items += attention.check_items(report, checks.age())
    return {"attention": items, "attention_counting": result is None}


POOLS_FLAT = 10  # more pools than this: grouped by namespace, each group collapsed with its totals


def _pool_groups(pools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The pools by namespace (pools come sorted by namespace), each with its totals and rows."""
    groups: list[dict[str, Any]] = []
    for pool in pools:
        if not groups or groups[-1]["namespace"] != pool["namespace"]:
            groups.append({"namespace": pool["namespace"], "pools": [], "free": 0, "assigned": 0})
        group = groups[-1]
        group["pools"].append(pool)
        group["free"] += pool["free"]
        group["assigned"] += pool["assigned"]
    for group in groups:
        group["rows_html"] = listing.pool_rows_html(group["pools"])
    return groups


def _pool_rows_html(app: Application, result: StoreStats, pools: list[dict[str, Any]]) -> SafeString:
    """The rows change only with the counts (and the script prefix the links start with)."""
    name = ("pool_rows_html", get_script_prefix())
    return app.stats.derived(result, name, lambda _result: listing.pool_rows_html(pools))


@require_GET
def overview(request: AuthedHttpRequest) -> HttpResponse:
    cluster = persistence(request.app).cluster_overview()
    primaries = [n for n in cluster.nodes if n.role == "primary"]
    context = {
        "cluster": cluster,
        "nodes": sorted(cluster.nodes, key=lambda n: (n.primary_id or n.node_id, n.role != "primary", n.address)),
        "primaries": primaries,
        "keys_total": sum(n.keys or 0 for n in primaries),
    }
    context.update(_stats_context(request.app))
    context.update(_attention_context(request.app, cluster, context))
    return render_page(request, "overview/page.html", "overview/_counts.html", context)


def _stats_fragment(request: AuthedHttpRequest, since: float | None) -> HttpResponse:
    """The statistics block, with the attention strip swapped out of band (its items change with
    the counts)."""
    context = _stats_context(request.app, since)
    context.update(_attention_context(request.app, persistence(request.app).cluster_overview(), context))
    context["attention_oob"] = True
    return render_page(request, "overview/page.html", "overview/_counts.html", context)


@require_http_methods(["GET", "POST"])
def counts(request: AuthedHttpRequest) -> HttpResponseBase:
    """The statistics block alone (polled by HTMX while a computation runs; a full page without JS).

    "Recount now" is a POST by an editor, at most one per ATEDASH_REFRESH_INTERVAL for the fleet;
    the poll that follows carries the recount's time, signed, so that the process answering it
    (maybe another gunicorn worker) counts at least as recently, and nobody else can ask that."""
    if request.method == "POST":
        return _recount(request)
    since = _parse_since(request.GET.get("since"))
    if since is not None:
        request.app.stats.ensure_started_after(since)
    if request.GET.get("wait") == "1":
        request.app.stats.wait(timeout=settings.ATEDASH_MAX_WAIT)
    if not getattr(request, "htmx", False):
        return overview(request)
    return _stats_fragment(request, since)


@role_required("editor")
def _recount(request: AuthedHttpRequest) -> HttpResponseBase:
    since = None
    if request.app.claim_refresh("stats"):
        since = time.time()
        request.app.stats.refresh()
    if not getattr(request, "htmx", False):
        return redirect(reverse("overview_counts") + "?wait=1")
    return _stats_fragment(request, since)


def _parse_since(token: str | None) -> float | None:
    """The time a recount was asked for, from the poll's URL (signed by _stats_context); None when
    absent, forged or older than a minute."""
    if not token:
        return None
    try:
        return float(signing.loads(token, salt=SINCE_SALT, max_age=60))
    except (signing.BadSignature, TypeError, ValueError):
        return None
