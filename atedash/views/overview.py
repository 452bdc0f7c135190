"""Overview: actors by status, workers by pool, locks held, and the cluster's nodes."""

import time

from django.urls import get_script_prefix
from django.views.decorators.http import require_GET

from atedash import listing
from atedash.app import current_app
from atedash.views.common import persistence, render_page


def _stats_context(since=None):
    result, error, running = current_app().stats.snapshot()
    # A recount asked for at `since` is still pending here while this process's counts predate it.
    pending_since = since if since is not None and error is None and (result is None or result.computed_at < since) else None
    context = {"stats": result, "stats_error": error, "stats_running": running or pending_since is not None,
               "stats_age": None, "stats_since": pending_since}
    if result is not None:
        context["stats_age"] = max(0, int(time.time() - result.computed_at))
        context["actor_total"] = sum(result.actors_by_status.values())
        pools = []
        for (namespace, pool), counts in sorted(result.workers_by_pool.items()):
            free, assigned = counts.get("free", 0), counts.get("assigned", 0)
            pools.append({"namespace": namespace, "pool": pool, "free": free, "assigned": assigned, "total": free + assigned})
        context["pools"] = pools
        context["pool_rows_html"] = _pool_rows_html(result, pools)
        context["workers_free"] = sum(p["free"] for p in pools)
        context["workers_assigned"] = sum(p["assigned"] for p in pools)
        statuses = sorted(result.actors_by_status.items(), key=lambda kv: (kv[0] == "CORRUPT", kv[0]))
        context["statuses"] = [(name.removeprefix("STATUS_"), count) for name, count in statuses]
    return context


def _pool_rows_html(result, pools):
    """The rows change only with the counts (and the script prefix the links start with)."""
    name = ("pool_rows_html", get_script_prefix())
    return current_app().stats.derived(result, name, lambda _result: listing.pool_rows_html(pools))


@require_GET
def overview(request):
    cluster = persistence().cluster_overview()
    primaries = [n for n in cluster.nodes if n.role == "primary"]
    context = {
        "cluster": cluster,
        "nodes": sorted(cluster.nodes, key=lambda n: (n.primary_id or n.node_id, n.role != "primary", n.address)),
        "primaries": primaries,
        "keys_total": sum(n.keys or 0 for n in primaries),
    }
    context.update(_stats_context())
    return render_page(request, "overview/page.html", "overview/_stats.html", context)


@require_GET
def stats(request):
    """The statistics block alone (polled by HTMX while a computation runs; a full page without JS)."""
    since = _parse_since(request.GET.get("since"))
    if request.GET.get("refresh") == "1":
        since = time.time()
        current_app().stats.refresh()
    elif since is not None:
        current_app().stats.ensure_started_after(since)
    if request.GET.get("wait") == "1":
        current_app().stats.wait(timeout=30)
    if not getattr(request, "htmx", False):
        return overview(request)
    return render_page(request, "overview/page.html", "overview/_stats.html", _stats_context(since))


def _parse_since(value):
    """The time a recount was asked for, from the poll's URL; None when absent or not a time."""
    try:
        since = float(value)
    except (TypeError, ValueError):
        return None
    # Never later than now: a crafted future time would make every poll start a new count.
    return min(since, time.time()) if since == since and since > 0 else None
