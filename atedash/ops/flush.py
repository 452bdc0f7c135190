"""Flush (the ate API's DebugClear): admins only, only when ATEDASH_ALLOW_FLUSH is on, typed confirmation."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_http_methods

import storage
from atedash.accounts.audit import audit
from atedash.accounts.auth import role_required
from atedash.core.pages import persistence
from atedash.core.request import AuthedHttpRequest
from atedash.ops.forms import FLUSH_SCOPES, FlushForm


def shard_rows(counts: Iterable[storage.ShardCounts]) -> tuple[list[dict[str, Any]], dict[str, int]]:
    rows: list[dict[str, Any]] = [
        {
            "node": c.node,
            "actors": c.actors,
            "workers": c.workers,
            "locks": c.locks,
            "other": c.other,
            "total": c.actors + c.workers + c.locks + c.other,
        }
        for c in counts
    ]
    totals = {k: sum(r[k] for r in rows) for k in ("actors", "workers", "locks", "other", "total")}
    return rows, totals


@role_required("admin")
@require_http_methods(["GET", "POST"])
def flush(request: AuthedHttpRequest) -> HttpResponse:
    if not settings.ATEDASH_ALLOW_FLUSH:
        raise PermissionDenied("Flush is turned off for this environment (ATEDASH_ALLOW_FLUSH).")
    p = persistence(request.app)
    form = FlushForm(request.POST if request.method == "POST" else None)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            scope = form.cleaned_data["scope"]
            removed = p.clear_ate_records() if scope == "ate" else p.debug_clear_all()
            rows, totals = shard_rows(removed)
            audit(request, "flush", scope=scope, removed=rows, removed_total=totals)
            request.app.records_changed(recount=True)
            context = {"rows": rows, "totals": totals, "scope": dict(FLUSH_SCOPES)[scope]}
            return render(request, "flush/done.html", context)
        audit(request, "flush.refused", reason="; ".join(str(e) for errs in form.errors.values() for e in errs))
    rows, totals = shard_rows(p.shard_counts())
    return render(request, "flush/page.html", {"form": form, "rows": rows, "totals": totals}, status=status)
