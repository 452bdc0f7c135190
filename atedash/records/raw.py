"""The raw editor: any actor or worker record as its stored bytes, mended in the dashboard.

- ``raw_edit`` (editor): the stored bytes shown, edited as JSON text, checked by the ate server's
  judgment (storage.server_readable) before saving, written by compare-and-set on exactly the bytes the
  page showed (``Persistence.write_raw``). A record the server cannot read is edited here only: the
  ordinary edit forms send the operator here (``refuse_unreadable``).
- ``raw_repair`` (editor): "rewrite canonically": the record as atedash reads it, written as protojson
  writes it; what that would lose (unknown fields, values atedash reads leniently) is listed and must
  be accepted with a checkbox first.
- ``raw_delete`` (admin): delete a record the server cannot read or atedash cannot decode; its bytes
  go to the audit line (``restore_line``, an export line ``manage.py ate import --allow-unreadable``
  restores) so the delete can be undone, for a record of up to about 1 kB: the line of a bigger one
  is too big to keep in the audit (atedash/accounts/audit.py keeps its digest; export the store first).

A held ``lock:actor:<id>`` (a server workflow between two steps) must be overridden explicitly
(``edit_while_locked``) to save an actor; the audit line says so. The key is in the URL (``?key=``).
"""

from __future__ import annotations

import base64
import hashlib
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from django.contrib import messages
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

import storage
from atedash.accounts.audit import audit
from atedash.accounts.auth import role_required
from atedash.core import error_pages
from atedash.core.links import record_url
from atedash.core.pages import persistence
from atedash.core.request import AuthedHttpRequest
from atedash.records.forms import (
    EDIT_WHILE_LOCKED,
    RAW_MAX_VALUE,
    RawDeleteForm,
    RawEditForm,
    RawKeyForm,
    RawRepairForm,
    shown_token,
)
from atedash.templatetags.atedash import raw_url, ttl
from storage import keys
from storage.backup import export_line
from storage.codec import preview
from storage.raw import canonical_rewrite
from storage.records import kind_of_key
from storage.server_readable import server_read_error

if TYPE_CHECKING:
    from collections.abc import Callable

    from django import forms
    from django.http import HttpResponse

    from atedash.core.timing import TimedPersistence
    from storage import LockInfo, Persistence, RawRecord
    from storage.records import Record

    Store = Persistence | TimedPersistence

# --- shared with the detail and edit pages ----------------------------------------------------


def held_lock(p: Store, key: str) -> LockInfo | None:
    """The LockInfo of ``lock:actor:<id>`` while a workflow holds it (actor keys only), else None."""
    if not key.startswith(keys.ACTOR_PREFIX):
        return None
    try:
        return p.get_lock(keys.actor_lock_key(keys.parse_actor_key(key)))
    except storage.CorruptRecord:  # not a lock at the lock's key: the detail page says so
        return None


def lock_refused(form: forms.Form, lock: LockInfo | None) -> bool:
    """True (with a form error) when ``lock`` is held and the operator did not tick the override."""
    if lock is None or form.cleaned_data.get("edit_while_locked"):
        return False
    form.add_error(
        "edit_while_locked",
        f"A workflow holds {lock.key} (token {lock.token}, expires in {ttl(lock.ttl_ms)}): an edit between "
        f"two of its steps makes its next step fail. Tick “{EDIT_WHILE_LOCKED}” to save anyway.",
    )
    return True


def lock_audit(lock: LockInfo | None) -> dict[str, Any]:
    """Audit fields of a save made while ``lock`` was held (empty when it was not)."""
    if lock is None:
        return {}
    return {"edited_while_locked": True, "lock_held": {"key": lock.key, "token": lock.token, "ttl_ms": lock.ttl_ms}}


_READ_THE_LOCK = object()  # record_notices' default: no caller has read the lock yet


def record_notices(p: Store, key: str, value: bytes, lock: LockInfo | None | object = _READ_THE_LOCK) -> dict[str, Any]:
    """Context of templates/raw/_notices.html for a detail or edit page: why the server cannot read
    the record (None when it can), the held lock (``lock`` when the caller has read it: one round
    trip less), the raw editor's URL."""
    return {
        "unreadable": server_read_error(key, value) if isinstance(value, bytes) else None,
        "held_lock": held_lock(p, key) if lock is _READ_THE_LOCK else lock,
        "raw_edit_url": raw_url(key),
        "notice_key": key,
    }


def refuse_unreadable(request: AuthedHttpRequest, p: Store, key: str) -> HttpResponse | None:
    """The response of an ordinary edit form for a record the server cannot read (or atedash cannot
    decode), linking to the raw editor; None when the form may go on."""
    raw = p.get_raw(key)  # NotFound -> 404
    unreadable = server_read_error(key, raw.value)
    if unreadable is None:
        return None
    corrupt = _decoded(key, raw.value) is None  # atedash cannot decode it either: 422, as before
    context = {
        "key": key,
        "unreadable": unreadable,
        "corrupt": corrupt,
        "raw_edit_url": raw_url(key),
        "detail_url": _detail_url(key),
    }
    return render(request, "raw/refused.html", context, status=422 if corrupt else 409)


# --- helpers ------------------------------------------------------------------------------------


def _key(request: AuthedHttpRequest) -> str:
    form = RawKeyForm(request.GET)
    if not form.is_valid():
        message = " ".join(str(e) for e in form.errors.get("key") or ["A record key is needed (?key=actor:<id>)."])
        raise error_pages.BadParameter("key", message)
    return form.cleaned_data["key"]


def _detail_url(key: str) -> str:
    return record_url(key)  # by key when no URL of the kind can carry the id


def _shown(value: bytes) -> str:
    """What the page posts back to name the bytes it showed: the bytes (base64) up to the editor's
    limit, their digest beyond (so that a repair or delete of any size fits in a request)."""
    if len(value) > RAW_MAX_VALUE:
        return shown_token(value)
    return base64.b64encode(value).decode("ascii")


def _as_text(value: bytes) -> str | None:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _decoded(key: str, value: bytes) -> Record | None:
    """The record as atedash decodes it, or None."""
    try:
        kind = kind_of_key(key)
        return None if kind is None else kind.decode_stored(key, value)[0]
    except storage.CorruptRecord:
        return None


def _version(key: str, value: bytes) -> int | None:
    record = _decoded(key, value)
    return None if record is None else record.version


def _context(p: Store, key: str, raw: RawRecord, lock: LockInfo | None = None) -> dict[str, Any]:
    value = raw.value
    text = _as_text(value) if raw.encoding == "json" else None
    rewrite = rewrite_error = None
    try:
        rewrite = canonical_rewrite(key, value)
    except (storage.CorruptRecord, storage.FailedPrecondition) as exc:
        rewrite_error = exc.reason
    if text is not None:
        initial = text
    elif rewrite is not None:
        initial = rewrite.value.decode("utf-8")  # binary: its JSON form, to save as JSON
    else:
        initial = ""
    return {
        "key": key,
        "raw": raw,
        "text": text,
        "stored_preview": preview(value, 4096),
        "size": len(value),
        "too_big": len(value) > RAW_MAX_VALUE,
        "initial_value": initial,
        "shown": _shown(value),
        "unreadable": server_read_error(key, value),
        "rewrite": rewrite,
        "rewrite_text": rewrite.value.decode("utf-8") if rewrite is not None else "",
        "rewrite_error": rewrite_error,
        "held_lock": lock if lock is not None else held_lock(p, key),
        "detail_url": _detail_url(key),
        "edit_url": _url("raw_edit", key),
        "repair_url": _url("raw_repair", key),
        "delete_url": _url("raw_delete", key),
    }


def _url(name: str, key: str) -> str:
    return reverse(name) + "?" + urlencode({"key": key})


# Raw writes of values longer than this also log where the bytes changed (a bounded window).
DIFF_FROM = 1024
DIFF_WINDOW = 256


def value_diff(before: bytes, after: bytes | None) -> dict[str, Any]:
    """Where `before` and `after` differ: the common prefix and suffix lengths and, between them, up
    to DIFF_WINDOW bytes of each side (escaped), with their full lengths and SHA-256."""
    after = after if after is not None else b""
    prefix = 0
    limit = min(len(before), len(after))
    while prefix < limit and before[prefix] == after[prefix]:
        prefix += 1
    suffix = 0
    while suffix < limit - prefix and before[-1 - suffix] == after[-1 - suffix]:
        suffix += 1
    middle_before, middle_after = before[prefix : len(before) - suffix], after[prefix : len(after) - suffix]
    return {
        "at": prefix,
        "same_after": suffix,
        "before": {
            "length": len(before),
            "sha256": hashlib.sha256(before).hexdigest(),
            "changed": len(middle_before),
            "shown": middle_before[:DIFF_WINDOW].decode("utf-8", "backslashreplace"),
        },
        "after": {
            "length": len(after),
            "sha256": hashlib.sha256(after).hexdigest(),
            "changed": len(middle_after),
            "shown": middle_after[:DIFF_WINDOW].decode("utf-8", "backslashreplace"),
        },
    }


def _changed(
    request: AuthedHttpRequest,
    key: str,
    before: bytes,
    after: bytes | None,
    action: str,
    lock: LockInfo | None,
    **extra: Any,
) -> None:
    """The audit line of a raw write or delete: the bytes before and after as export lines
    (``manage.py ate import --allow-unreadable`` of ``restore_line`` puts the old record back)."""
    big = max(len(before), len(after or b"")) > DIFF_FROM
    diff: dict[str, Any] = {"value_diff": value_diff(before, after)} if big else {}
    audit(
        request,
        action,
        key=key,
        version_before=_version(key, before),
        version_after=_version(key, after) if after is not None else None,
        changed_fields={},
        # A big record's lines are kept as digests (atedash/accounts/audit.py): the diff says what changed.
        restore_line=export_line(key, before),
        written_line=export_line(key, after) if after is not None else None,
        **diff,
        **lock_audit(lock),
        **extra,
    )
    request.app.records_changed(recount=True)  # the overview's count of unreadable records


def _opened(request: AuthedHttpRequest) -> tuple[str, Store, dict[str, Any]]:
    """The key of ``?key=``, the store, and the context of a raw page over the record as stored now."""
    key = _key(request)
    p = persistence(request.app)
    raw = p.get_raw(key)  # NotFound -> 404; another Redis type -> the corrupt-record page
    return key, p, _context(p, key, raw)


def _write(
    request: AuthedHttpRequest,
    p: Store,
    key: str,
    context: dict[str, Any],
    form: forms.Form,
    template: str,
    *,
    after: bytes | None,
    action: str,
    done: str,
    to: str | None = None,
    refill: Callable[[dict[str, Any]], None],
    **extra: Any,
) -> HttpResponseBase:
    """The end of a raw POST whose own checks passed: refuse while a workflow holds the lock (unless
    overridden), write ``after`` (None: delete) by compare-and-set on the bytes the page showed, then
    audit, say ``done`` and redirect (to ``to``, else the record's page). When the record changed since
    it was shown, the page again with what is stored now (``refill`` puts the form in that context)."""
    shown = context["raw"].value  # read by this request; the page showed bytes of this digest
    if form.cleaned_data["shown"] != shown_token(shown):
        return _stale(request, p, key, template, refill, context)
    lock = context["held_lock"]
    if lock_refused(form, lock):
        return render(request, template, context, status=409)
    try:
        if after is None:
            p.delete_raw(key, shown)
        else:
            p.write_raw(key, shown, after)
    except storage.VersionConflict:
        return _stale(request, p, key, template, refill, _context(p, key, p.get_raw(key)))
    except storage.StorageError as exc:
        form.add_error(None, error_pages.storage_message(exc))
        return render(request, template, context, status=409)
    _changed(request, key, shown, after, action, lock, **extra)
    messages.success(request, done)
    return redirect(to or context["detail_url"] or context["edit_url"])


def _stale(
    request: AuthedHttpRequest,
    p: Store,
    key: str,
    template: str,
    refill: Callable[[dict[str, Any]], None],
    fresh: dict[str, Any],
) -> HttpResponseBase:
    """The record no longer holds the bytes the page showed: the page again, with what is stored now."""
    refill(fresh)
    fresh["conflict"] = True
    return render(request, template, fresh, status=409)


def _confirmed(
    request: AuthedHttpRequest, context: dict[str, Any], form_class: type[forms.Form], template: str, can: bool
) -> forms.Form | HttpResponseBase:
    """The valid posted form of a page that confirms the bytes it showed (repair, delete), else the
    response: the page (409 when it ``can`` not be done) or the form's errors (400)."""
    if request.method == "GET":
        context["form"] = form_class(initial={"shown": context["shown"]})
        return render(request, template, context, status=200 if can else 409)
    form = context["form"] = form_class(request.POST)
    if not form.is_valid():
        return render(request, template, context, status=400)
    return form


# --- the raw editor ------------------------------------------------------------------------------


@role_required("editor")
@require_http_methods(["GET", "POST"])
def raw_edit(request: AuthedHttpRequest) -> HttpResponseBase:
    key, p, context = _opened(request)
    if request.method == "GET":
        context["form"] = RawEditForm(initial={"shown": context["shown"], "value": context["initial_value"]})
        return render(request, "raw/edit.html", context)

    form = RawEditForm(request.POST)
    context["form"] = form
    if not form.is_valid():
        return render(request, "raw/edit.html", context, status=400)
    value = form.cleaned_data["value"]
    verdict = server_read_error(key, value)
    context["verdict"] = verdict
    context["checked"] = True
    if "check" in request.POST:
        return render(request, "raw/edit.html", context, status=200)
    if verdict is not None:
        form.add_error("value", f"The ate server could not read this: {verdict.reason} ({verdict.fails}).")
        return render(request, "raw/edit.html", context, status=422)

    def refill(fresh: dict[str, Any]) -> None:  # what is stored now, with the operator's text kept
        fresh["form"] = RawEditForm(initial={"shown": fresh["shown"], "value": value.decode("utf-8")})

    return _write(
        request,
        p,
        key,
        context,
        form,
        "raw/edit.html",
        after=value,
        action="raw.edit",
        done=f"{key} written as edited.",
        refill=refill,
    )


@role_required("editor")
@require_http_methods(["GET", "POST"])
def raw_repair(request: AuthedHttpRequest) -> HttpResponseBase:
    key, p, context = _opened(request)
    form = _confirmed(request, context, RawRepairForm, "raw/repair.html", can=bool(context["rewrite"]))
    if isinstance(form, HttpResponseBase):
        return form

    def refill(fresh: dict[str, Any]) -> None:
        fresh["form"] = RawRepairForm(initial={"shown": fresh["shown"]})

    # The rewrite of the bytes the page showed (never a value sent by the client); the
    # compare-and-set makes sure they are still what is stored.
    if form.cleaned_data["shown"] != shown_token(context["raw"].value):
        return _stale(request, p, key, "raw/repair.html", refill, context)
    try:
        rewrite = canonical_rewrite(key, context["raw"].value)
    except (storage.CorruptRecord, storage.FailedPrecondition) as exc:
        form.add_error(None, f"No canonical rewrite: {exc.reason}")
        return render(request, "raw/repair.html", context, status=409)
    if rewrite.losses and not form.cleaned_data["accept_losses"]:
        form.add_error("accept_losses", "The rewrite loses what is listed: tick the box to accept that.")
        return render(request, "raw/repair.html", context, status=409)

    return _write(
        request,
        p,
        key,
        context,
        form,
        "raw/repair.html",
        after=rewrite.value,
        action="raw.repair",
        done=f"{key} rewritten canonically.",
        refill=refill,
        accepted_losses=rewrite.losses,
    )


@role_required("admin")
@require_http_methods(["GET", "POST"])
def raw_delete(request: AuthedHttpRequest) -> HttpResponseBase:
    key, p, context = _opened(request)
    context["decodable"] = _decoded(key, context["raw"].value) is not None
    deletable = context["unreadable"] is not None or not context["decodable"]
    context["deletable"] = deletable
    form = _confirmed(request, context, RawDeleteForm, "raw/delete.html", can=deletable)
    if isinstance(form, HttpResponseBase):
        return form

    def refill(fresh: dict[str, Any]) -> None:
        fresh["form"] = RawDeleteForm(initial={"shown": fresh["shown"]})
        fresh["deletable"] = True

    return _write(
        request,
        p,
        key,
        context,
        form,
        "raw/delete.html",
        after=None,
        action="raw.delete",
        done=f"{key} deleted; the audit entry holds its bytes (restore_line) to undo it.",
        to="overview",
        refill=refill,
    )
