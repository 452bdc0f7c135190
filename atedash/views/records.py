"""The record pages, written once for every kind (atedash/records.py): list (paged scan with filters),
detail, create, version-checked edit with its conflict page, delete.

The URLs pass the kind as `pages` (atedash/urls.py) and the record's identity as the path parameters.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods
from google.protobuf.message import Message

import storage
from atedash import cursors, errors, timing
from atedash.app import current_app
from atedash.audit import audit, changed_fields
from atedash.auth import role_required
from atedash.forms import RecordEditForm, message_value
from atedash.records import RecordPages
from atedash.views import raw as raw_views
from atedash.views.common import persistence, render_page, scan_budget

Pages = type[RecordPages]


@require_GET
def record_list(request: HttpRequest, pages: Pages) -> HttpResponse:
    form = pages.filter_form(request.GET)
    values = form.values()
    # A cursor that is not valid raises storage.InvalidCursor: the 400 page (atedash/errors.py).
    scan = pages.scan(persistence())
    page = cursors.scan(
        pages.plural, scan, values["cursor"], limit=values["size"], **scan_budget(), **pages.filters(values)
    )
    context = {
        "pages": pages,
        "urls": pages.urls(),
        "form": form,
        "values": values,
        "filters": form.filter_fields(values),
        "page": page,
        "rows": page.records,
        "rows_html": pages.rows_html(page.records, page.unreadable),
        "refresh": values["refresh"] == "5",
        "on_first_page": not values["cursor"],
    }
    return render_page(request, "records/list.html", "records/_table.html", context)


def _context(pages: Pages, args: list[str], **extra: Any) -> dict[str, Any]:
    """What every record page knows: the kind, the URL parameters, the record's name and key."""
    label, key, urls = pages.label(args), pages.key(args), pages.urls(args)
    return {"pages": pages, "args": args, "label": label, "key": key, "urls": urls, **extra}


@require_GET
def record_detail(request: HttpRequest, pages: Pages, **ident: str) -> HttpResponse:
    args = pages.args(ident)
    p = persistence()
    key = pages.key(args)
    raw = p.get_raw(key)  # NotFound -> 404 page
    corrupt = pretty = record = None
    try:
        pretty = p.pretty_json(raw)
        with timing.store_call():
            record = pages.kind.decode_stored(key, raw.value)[0]  # what a get gives, without a 2nd read
    except storage.CorruptRecord as exc:
        corrupt = exc
    context = _context(pages, args, raw=raw, pretty=pretty, corrupt=corrupt, record=record)
    context[pages.name] = record
    context.update(pages.related(p, args, record))
    context.update(raw_views.record_notices(p, key, raw.value))  # unreadable by the server, held lock, raw editor
    if record is not None:
        context["fields"] = pages.field_rows(record)
        context["delete_blocked"] = pages.delete_blocked(record)
    return render(request, "records/detail.html", context)


def _changed(request: HttpRequest, pages: Pages, action: str, key: str, **entry: Any) -> None:
    """Audits a change of a record and tells the caches that records changed."""
    audit(request, f"{pages.name}.{action}", key=key, **entry)
    current_app().records_changed()


@role_required("editor")
@require_http_methods(["GET", "POST"])
def record_create(request: HttpRequest, pages: Pages) -> HttpResponse:
    form = pages.create_form(request.POST if request.method == "POST" else None)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            record = pages.new_record(form.cleaned_data)
            try:
                persistence().create_record(pages.kind, record)
            except storage.StorageError as exc:
                errors.add_form_error(form, exc, id_field=pages.id_field)
                status = 409
            else:
                args = pages.args_of(record)
                _changed(
                    request,
                    pages,
                    "create",
                    pages.key(args),
                    version_after=1,
                    changed_fields=changed_fields(None, record),
                )
                label = pages.label(args)
                messages.success(request, f"{pages.title} {label} created ({pages.create_note}version 1).")
                return redirect(pages.url_name("detail"), *args)
    return render(request, "records/create.html", {"pages": pages, "urls": pages.urls(), "form": form}, status=status)


@role_required("editor")
@require_http_methods(["GET", "POST"])
def record_edit(request: HttpRequest, pages: Pages, **ident: str) -> HttpResponse:
    args = pages.args(ident)
    p = persistence()
    stored = pages.read(p, args)
    context = _context(pages, args, record=stored)
    if request.method == "GET":
        context["form"] = pages.edit_form(initial=pages.edit_form.initial_from(stored))
        return render(request, "records/edit.html", context)
    form = context["form"] = pages.edit_form(request.POST, stored=stored)
    status = 400
    if form.is_valid():
        expected = form.cleaned_data["version"]
        edited = type(stored)()
        edited.CopyFrom(stored)
        form.apply_to(edited)
        edited.version = expected
        try:
            p.update_record(pages.kind, edited, expected)
        except storage.VersionConflict:
            return _conflict(request, pages, args, form, pages.read(p, args))
        except storage.StorageError as exc:
            errors.add_form_error(form, exc)
            status = 409
        else:
            entry = {"from_version": expected, "to_version": edited.version}
            _changed(request, pages, "update", context["key"], changed_fields=changed_fields(stored, edited), **entry)
            messages.success(request, f"{pages.title} {context['label']} saved (version {edited.version}).")
            return redirect(pages.url_name("detail"), *args)
    return render(request, "records/edit.html", context, status=status)


def _conflict(
    request: HttpRequest, pages: Pages, args: list[str], form: RecordEditForm, current: Message
) -> HttpResponse:
    """The record changed since the form was read: both side by side, nothing saved."""
    names = form.IMMUTABLE + form.EDITABLE
    rows = []
    for name in names:
        now, mine = message_value(current, name), form.cleaned_data.get(name) or ""
        rows.append(
            {
                "name": name,
                "label": form.fields[name].label,
                "stored": now,
                "mine": mine,
                "differs": str(now) != str(mine),
            }
        )
    context = _context(
        pages,
        args,
        current=current,
        rows=rows,
        your_version=form.cleaned_data["version"],
        reapply=[("version", current.version)] + [(name, form.cleaned_data.get(name) or "") for name in names],
        edit_url=reverse(pages.url_name("edit"), args=args),
        discard_url=reverse(pages.url_name("detail"), args=args),
    )
    return render(request, "records/conflict.html", context, status=409)


@role_required("editor")
@require_http_methods(["GET", "POST"])
def record_delete(request: HttpRequest, pages: Pages, **ident: str) -> HttpResponse:
    args = pages.args(ident)
    p = persistence()
    record = pages.read(p, args)  # NotFound -> 404
    context = _context(pages, args, record=record, error=None)
    status = 200
    if request.method == "POST":
        try:
            pages.delete(p, args)
        except (storage.FailedPrecondition, storage.VersionConflict) as exc:
            context["error"] = errors.storage_message(exc)
            status = 409
            record = context["record"] = pages.read(p, args)
        else:
            _changed(
                request,
                pages,
                "delete",
                context["key"],
                version=record.version,
                changed_fields=changed_fields(record, None),
            )
            messages.success(request, f"{pages.title} {context['label']} deleted.")
            return redirect(pages.url_name("list"))
    context[pages.name] = record
    context["values"] = {row["name"]: row["value"] for row in pages.field_rows(record)}
    context["delete_blocked"] = pages.delete_blocked(record)
    return render(request, "records/delete.html", context, status=status)
