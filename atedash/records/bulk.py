"""Bulk actions (admin): delete SUSPENDED actors, free workers, release actors' locks, on the records
selected on a page of "all matches" (each with the version the operator saw), on the whole page, or on
all the matches of that walk. A first POST previews it (a dry run: what would be done, by status,
namespace and pool, and what would be skipped); the confirmed POST does it (storage/bulk.py), every
record version-checked, and lists the result per record, skipped ones with the reason. More records
than ATEDASH_CONFIRM_THRESHOLD need their number typed to confirm.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_POST

from atedash.accounts.audit import audit
from atedash.accounts.auth import role_required
from atedash.core.links import local_path
from atedash.core.pages import persistence
from atedash.core.request import AuthedHttpRequest
from atedash.records.kinds import BY_PLURAL
from storage.bulk import ACTIONS, BulkError, bulk_apply

MAX_SELECTED = 1000
SHOWN = 1000


def _refuse(request: AuthedHttpRequest, message: str) -> HttpResponse:
    return render(request, "bulk/refused.html", {"message": message}, status=400)


def _targets(request: AuthedHttpRequest, kind: str) -> tuple[list[tuple[str, int | None]] | None, str | None]:
    """[(key, version seen | None)], or a message saying why there are none."""
    if request.POST.get("scope") == "all":
        job = request.app.walks.get(request.POST.get("walk", ""))
        state, result, _ = job.state() if job is not None else ("none", None, None)
        if job is None or result is None or state != "done" or job.kind != kind:
            return None, "That walk is no longer kept (results are kept 10 minutes): walk again."
        return [(key, None) for key in result.keys], None
    values = request.POST.getlist("page_target" if request.POST.get("scope") == "page" else "target")
    if len(values) > MAX_SELECTED:
        return None, f"At most {MAX_SELECTED} selected records at once; use 'all matches' for more."
    targets: list[tuple[str, int | None]] = []
    for value in values:
        key, sep, version = value.rpartition("@")
        if not sep or not key or not version.isdigit() or len(version) > 19:
            return None, "A selected record is not of the form key@version."
        targets.append((key, int(version)))
    if not targets:
        return None, "Nothing selected."
    return targets, None


@role_required("admin")
@require_POST
def bulk(request: AuthedHttpRequest) -> HttpResponse:
    kind = request.POST.get("kind", "")
    action = request.POST.get("action", "")
    pages = BY_PLURAL.get(kind)  # the kind declares its bulk actions
    if pages is not None and not action:
        return _refuse(request, "No action was chosen: go back, choose one in the list, then preview it.")
    if pages is None or action not in pages.bulk_actions:
        return _refuse(request, "Unknown action for this list.")
    targets, problem = _targets(request, kind)
    if problem or targets is None:
        return _refuse(request, problem or "Nothing selected.")
    scope = request.POST.get("scope", "selected")
    threshold = settings.ATEDASH_CONFIRM_THRESHOLD
    context = {
        "kind": kind,
        "action": action,
        "what": ACTIONS[action],
        "scope": scope,
        "walk": request.POST.get("walk", ""),
        "targets": targets,
        "count": len(targets),
        "first": targets[:20],
        "selected": [f"{k}@{v}" for k, v in targets] if scope != "all" else [],
        "must_type": len(targets) > threshold,
        "threshold": threshold,
        # Cancel goes back to the matches page it came from (a plain link: the CSP allows no
        # javascript: URL), else to the list.
        "back": local_path(request.POST.get("next", ""), default=pages.url_name("list")),
        "list_url": reverse(pages.url_name("list")),
    }
    confirmed = request.POST.get("confirm") == "1"
    typed = request.POST.get("typed", "").replace(",", "").replace(" ", "").strip()
    wrong = confirmed and context["must_type"] and typed != str(len(targets))
    if not confirmed or wrong:
        if wrong:
            audit(request, "bulk.refused", bulk_action=action, reason="the number typed is not the count")
            context["typed_error"] = f"Type {len(targets)}, the number of records, to confirm; nothing was done."
        try:
            preview = bulk_apply(persistence(request.app), action, targets, dry_run=True)
        except BulkError as exc:
            return _refuse(request, str(exc))
        context.update(
            {
                "preview": preview,
                "would": len(preview.done),
                "breakdown": preview.breakdown(),
                "would_skip": preview.skipped[:SHOWN],
            }
        )
        return render(request, "bulk/confirm.html", context, status=400 if wrong else 200)

    def on_change(change: str, key: str, details: dict[str, Any]) -> None:
        audit(request, change, key=key, via="bulk", bulk_action=action, **details)

    try:
        report = bulk_apply(persistence(request.app), action, targets, on_change=on_change)
    except BulkError as exc:
        return _refuse(request, str(exc))
    audit(request, "bulk", bulk_action=action, done=len(report.done), skipped=len(report.skipped))
    request.app.records_changed()
    context.update({"report": report, "done": report.done[:SHOWN], "skipped": report.skipped[:SHOWN]})
    return render(request, "bulk/done.html", context)
