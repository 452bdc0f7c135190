"""The record pages, written once for every kind (atedash/records/kinds.py): list (paged scan with filters),
detail with the record's history, create, delete, and the way to any record by its key. The edit page
and its three-way merge are in atedash/records/edit.py.

A record page is reached two ways: by the kind's own URL (/actors/<id>/: the URL passes `pages` and
the identity), or by key (/records/<key>/, any key whatever it holds: atedash/records/converters.py). Both
end in the same view, which gets (pages, key) from `record_view`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import wraps
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_GET, require_http_methods

import storage
from atedash.accounts.audit import audit, changed_fields
from atedash.accounts.auth import role_required
from atedash.core import error_pages, timing
from atedash.core.pages import dashboard, persistence, render_page, scan_budget, wants_partial
from atedash.core.request import AuthedHttpRequest
from atedash.records import cursors
from atedash.records import raw as raw_views
from atedash.records.history import history_rows
from atedash.records.kinds import RecordPages, key_text, pages_for_key
from storage.gorules import DELETE

if TYPE_CHECKING:
    from atedash.core.app import Application

Pages = type[RecordPages]
RecordView = Callable[[AuthedHttpRequest, Pages, "str | bytes"], HttpResponse]


def record_view(view: RecordView) -> Callable[..., HttpResponse]:
    """A view of one record, from either route: the kind's (pages + identity) or the key route (key)."""

    @wraps(view)
    def wrapped(
        request: AuthedHttpRequest, pages: Pages | None = None, key: str | bytes | None = None, **ident: str
    ) -> HttpResponse:
        if key is None:
            assert pages is not None  # the kind's own routes name it
            key = pages.key(pages.args(ident))
        else:
            pages = pages_for_key(key)
            if pages is None:
                raise Http404(f"{key_text(key)!r} is not the key of an actor or a worker.")
        return view(request, pages, key)

    return wrapped


def record_context(pages: Pages, key: str | bytes, **extra: Any) -> dict[str, Any]:
    """What every page of one record knows: the kind, the key (and how it is shown), its name, its URLs."""
    return {
        "pages": pages,
        "key": key,
        "key_text": key_text(key),
        "label": pages.label(key),
        "urls": pages.urls(key),
        **extra,
    }


def record_changed(request: AuthedHttpRequest, pages: Pages, action: str, key: str | bytes, **entry: Any) -> None:
    """Audits a change of a record (also into its history) and tells the caches that records changed."""
    audit(request, f"{pages.name}.{action}", key=key, **entry)
    request.app.records_changed()


INCIDENT_SCAN_KEYS = 5000  # an incident search's list page: its own stretch, before the walk


@require_GET
def record_list(request: AuthedHttpRequest, pages: Pages) -> HttpResponse:
    form = pages.filter_form(request.GET)
    values = form.values()
    incident = pages.incident(values) and not values["cursor"]
    budget = scan_budget()
    if incident and budget["max_scan"]:
        # The walk below searches the whole store; this page's own stretch must not delay it (a
        # bound in keys, not seconds: on a loaded machine a small store is still read whole).
        budget["max_scan"] = min(budget["max_scan"], INCIDENT_SCAN_KEYS)
    # A cursor that is not valid raises storage.InvalidCursor: the 400 page (atedash/core/error_pages.py).
    scan = pages.scan(persistence(request.app))
    page = cursors.scan(pages.plural, scan, values["cursor"], limit=values["size"], **budget, **pages.filters(values))
    filters = form.filter_fields(values)
    context = {
        "pages": pages,
        "urls": pages.urls(),
        "form": form,
        "values": values,
        "filters": filters,
        "active_filters": sum(1 for f in filters if f["value"]),
        "page": page,
        "rows": page.records,
        "rows_html": pages.rows_html(page.records, page.unreadable),
        "refresh": values["refresh"] == "5",
        "on_first_page": not values["cursor"],
        "count": _count(request.app, pages, values),
        # A rare filter (a pod, an IP...): the whole store is walked at once, filling in as found.
        "incident": reverse(f"{pages.name}_matches") if incident else None,
    }
    return render_page(request, "records/list.html", "records/_table.html", context)


def _count(app: Application, pages: Pages, values: dict[str, Any]) -> dict[str, Any] | None:
    """About how many records the list holds, from the overview's last counts (never a scan here: a
    count is started in the background when due); None when the counts do not know this filter."""
    stats, _error, _running = app.stats.snapshot()
    if stats is None:
        return None
    counted = pages.count_of(stats, values)
    if counted is None:
        return None
    n, what = counted
    return {"n": n, "what": what, "age_s": max(0.0, time.time() - stats.computed_at)}


@require_GET
@record_view
def record_detail(request: AuthedHttpRequest, pages: Pages, key: str | bytes) -> HttpResponse:
    p = persistence(request.app)
    raw = p.get_raw(key)  # NotFound -> 404 page
    corrupt = pretty = record = None
    try:
        pretty = p.pretty_json(raw)
        with timing.store_call():
            record = pages.kind.decode_stored(key, raw.value)[0]  # what a get gives, without a 2nd read
    except storage.CorruptRecord as exc:
        corrupt = exc
    # The check's rules on the record's relations walk the store (up to seconds at 1M): on a large
    # store not part of the page, which loads them with a second request (?relations=1; a link
    # without JS). A small store's walk takes milliseconds: the page carries the findings itself.
    walk = request.GET.get("relations") == "1" or _small_store(p)
    context = record_context(pages, key, raw=raw, pretty=pretty, corrupt=corrupt, record=record, walk=walk)
    context[pages.name] = record
    context.update(pages.related(request.app, p, key, record, walk=walk))
    if "record_findings" in context:  # the findings' repairs, as the Consistency page links them
        from atedash.ops.views import finding_rows

        context["finding_rows"] = finding_rows(context["record_findings"].findings, request.operator)
    if isinstance(key, str) and record is not None and not walk:
        context["relations_url"] = context["urls"]["detail"] + "?relations=1"
    if walk and wants_partial(request):
        return render(request, "records/_relations.html", context)
    if isinstance(key, str):
        # Unreadable by the server, held lock (an actor's related() has read it), raw editor.
        read = {"lock": context["lock"]} if "lock" in context else {}
        context.update(raw_views.record_notices(p, key, raw.value, **read))
    if record is not None:
        context["fields"] = pages.field_rows(record)
        context["delete_blocked"] = pages.delete_blocked(record)
        context["history"] = history_rows(
            pages, dashboard(request.app).record_history(key_text(key), HISTORY_SHOWN), context["urls"]
        )
        context["history_more_url"] = reverse("ops_audit") + "?" + urlencode({"key": key_text(key)})
    return render(request, "records/detail.html", context)


def _small_store(p: storage.Persistence) -> bool:
    return p.key_count() <= settings.ATEDASH_RELATIONS_INLINE_KEYS


HISTORY_SHOWN = 20  # the newest changes on a record's page; the audit page, filtered by key, has the rest


@role_required("editor")
@require_http_methods(["GET", "POST"])
def record_create(request: AuthedHttpRequest, pages: Pages) -> HttpResponse:
    form = pages.create_form(request.POST if request.method == "POST" else None)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            record = pages.new_record(form.cleaned_data)
            try:
                persistence(request.app).create_record(pages.kind, record)
            except storage.StorageError as exc:
                error_pages.add_form_error(form, exc, id_field=pages.id_field)
                status = 409
            else:
                key = pages.kind.key_of(record)
                record_changed(
                    request, pages, "create", key, version_after=1, changed_fields=changed_fields(None, record)
                )
                messages.success(request, f"{pages.title} {pages.label(key)} created ({pages.create_note}version 1).")
                return redirect(pages.urls(key)["detail"])
    return render(request, "records/create.html", {"pages": pages, "urls": pages.urls(), "form": form}, status=status)


@role_required("editor")
@require_http_methods(["GET", "POST"])
@record_view
def record_delete(request: AuthedHttpRequest, pages: Pages, key: str | bytes) -> HttpResponse:
    p = persistence(request.app)
    # NotFound -> 404; CorruptRecord, and UnreadableStored for an actor the Go server cannot read
    # (its DeleteActor would fail: storage.gorules) -> the error page, with the raw editor's link.
    record = p.get_writable(pages.kind, key, DELETE)
    context = record_context(pages, key, record=record, error=None)
    status = 200
    if request.method == "POST":
        try:
            assert isinstance(key, str)  # read() refused a key that is not UTF-8 (CorruptRecord)
            pages.delete(p, key)
        except (storage.FailedPrecondition, storage.VersionConflict) as exc:
            context["error"] = error_pages.storage_message(exc)
            status = 409
            record = context["record"] = pages.read(p, key)
        else:
            entry = {"version": record.version, "changed_fields": changed_fields(record, None)}
            record_changed(request, pages, "delete", key, **entry)
            messages.success(request, f"{pages.title} {context['label']} deleted.")
            return redirect(pages.url_name("list"))
    context[pages.name] = record
    context["values"] = {row["name"]: row["value"] for row in pages.field_rows(record)}
    context["delete_blocked"] = pages.delete_blocked(record)
    return render(request, "records/delete.html", context, status=status)
