"""Scoped reset: the actors of a template namespace, a template or a status, or the workers of a pool.

Admins only, only when ATEDASH_ALLOW_FLUSH is on, the environment's name typed (the flush page's
guard). GET with a scope in the URL previews it (a dry run: counts, the first keys, the backup of
exactly that scope); POST applies it (storage/reset.py) and shows what changed and what was skipped
because it changed meanwhile, with one audit line per record.
"""

from __future__ import annotations

import itertools
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_http_methods

from atedash.accounts.audit import audit
from atedash.accounts.auth import role_required
from atedash.core.pages import dashboard, persistence
from atedash.core.request import AuthedHttpRequest
from atedash.ops.forms import ResetForm, ResetScopeForm
from storage.reset import FIRST_KEYS, ResetReport, ScopeTooLarge, iter_scope_export, reset_scope

SHOWN = 500  # keys listed per kind on the result page (the counts are exact)


def _guard(request: AuthedHttpRequest) -> HttpResponse | None:
    if not settings.ATEDASH_ALLOW_FLUSH:
        raise PermissionDenied("Reset is turned off for this environment (ATEDASH_ALLOW_FLUSH).")
    return None


def _lists(report: ResetReport, limit: int) -> dict[str, dict[str, Any]]:
    d = report.to_dict()
    return {
        name: {"keys": d[name][:limit], "more": max(0, len(d[name]) - limit)}
        for name in ("actors_deleted", "workers_deleted", "freed", "released", "skipped", "corrupt")
    }


@role_required("admin")
@require_http_methods(["GET", "POST"])
def reset(request: AuthedHttpRequest) -> HttpResponse:
    refused = _guard(request)
    if refused is not None:
        return refused
    p = persistence(request.app)
    form: ResetForm | ResetScopeForm
    if request.method == "POST":
        form = ResetForm(request.POST)
        if form.is_valid():
            scope = form.cleaned_data["scope"]
            label = f"{scope.kind} {scope.value}"

            def on_change(action: str, key: str, details: dict[str, Any]) -> None:
                audit(request, action, key=key, via="reset", scope=label, **details)

            report = reset_scope(p, scope, on_change=on_change)
            audit(request, "reset", scope=label, counts=report.counts())
            request.app.records_changed(recount=True)
            context = {"scope": scope, "report": report, "counts": report.counts(), "lists": _lists(report, SHOWN)}
            return render(request, "reset/done.html", context)
        audit(request, "reset.refused", reason="; ".join(str(e) for errs in form.errors.values() for e in errs))
        return render(request, "reset/page.html", {"form": form, "preview": None}, status=400)
    scope_form = ResetScopeForm(request.GET if "kind" in request.GET else None)
    preview = None
    form = ResetForm(initial=request.GET.dict() if "kind" in request.GET else None)
    status = 200
    if scope_form.is_bound:
        if scope_form.is_valid():
            scope = scope_form.cleaned_data["scope"]
            report = reset_scope(p, scope, dry_run=True)
            preview = {
                "scope": scope,
                "counts": report.counts(),
                "lists": _lists(report, FIRST_KEYS),
                "breakdown": report.breakdown(),
                "nothing": report.nothing_to_do,
            }
            form = ResetForm(initial={"kind": scope.kind, "value": scope.value})
        else:
            form = scope_form
            status = 400
    return render(request, "reset/page.html", {"form": form, "preview": preview}, status=status)


@role_required("admin")
@require_GET
def reset_backup(request: AuthedHttpRequest) -> HttpResponse | StreamingHttpResponse:
    """The backup of exactly a scope (JSON lines, as manage.py ate import reads them)."""
    refused = _guard(request)
    if refused is not None:
        return refused
    form = ResetScopeForm(request.GET)
    if not form.is_valid():
        return render(request, "reset/page.html", {"form": form, "preview": None}, status=400)
    scope = form.cleaned_data["scope"]
    from atedash.core.error_pages import too_many
    from atedash.core.exports import ExportRefused, attachment, take_lease

    p = persistence(request.app)
    # Bounded like the store's backup (atedash/core/exports.py).
    try:
        lease = take_lease(request, dashboard(request.app), request.app.export_slots)
    except ExportRefused as exc:
        return too_many(request, exc.message)
    lines = iter_scope_export(p, scope)
    try:
        first = next(lines, "")  # the scope is walked here, before the download starts
    except ScopeTooLarge as exc:
        lease.release()
        form.add_error(None, exc.message)
        return render(request, "reset/page.html", {"form": form, "preview": None}, status=400)
    except BaseException:
        lease.release()
        raise
    response = attachment(request, p, itertools.chain([first], lines), lease, scope.kind, scope.value)
    # A read: logged (stdout), never in the change stream, which it would push changes out of.
    audit(request, "export", scope=f"{scope.kind} {scope.value}", stream=False)
    return response
