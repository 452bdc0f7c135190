"""Editing a record, for every kind: the edit form carries the values it was read at (the base, signed);
a save is a three-way merge (atedash/records/merge.py) onto the newest version with one compare-and-set.

* Nothing changed meanwhile, or only fields the operator left alone: saved; the page says what was merged.
* A field changed on both sides to different values: the merge view shows base / stored now / yours for
  each field and asks for a decision on each conflicting one; nothing is written until every one is
  decided (a form sent without a decision is asked again).
* "Revert this change" (from a record's history) opens this form holding the values from before the
  change, with the values after it as the base: the same rules then keep whatever changed since.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib import messages
from django.http import Http404, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

import storage
from atedash.accounts.audit import bounded, changed_fields
from atedash.accounts.auth import role_required
from atedash.core import error_pages
from atedash.core.pages import dashboard, persistence
from atedash.core.request import AuthedHttpRequest
from atedash.records import raw as raw_views
from atedash.records.forms import SAVE_DESPITE_FINDINGS, RecordEditForm
from atedash.records.history import revertible, too_big
from atedash.records.kinds import key_text, related_settings
from atedash.records.merge import BadBase, Base, Merge, merge, read_base, sign_base
from atedash.records.views import Pages, record_changed, record_context, record_view
from storage.check import related
from storage.raw import LockInfo
from storage.records import Record, copy_record

if TYPE_CHECKING:
    from storage import DashboardState

MERGE_ROUNDS = 8  # the record keeps changing under the merge: give up after this many compare-and-sets
BAD_BASE = "This form was changed on its way or made for another record: nothing was saved. Open the edit page again."


@role_required("editor")
@require_http_methods(["GET", "POST"])
@record_view
def record_edit(request: AuthedHttpRequest, pages: Pages, key: str | bytes) -> HttpResponse:
    p = persistence(request.app)
    if isinstance(key, str):  # a record the ate server cannot read is edited raw only: the form would guess
        refused = raw_views.refuse_unreadable(request, p, key)
        if refused is not None:
            return refused
    stored = pages.read(p, key)  # NotFound -> 404, CorruptRecord -> the error page
    lock = raw_views.held_lock(p, key) if isinstance(key, str) else None  # lock:actor:<id> held by a workflow
    context = record_context(pages, key, record=stored, held_lock=lock)
    if request.method == "GET":
        return _edit_page(request, pages, key, stored, context)
    return _edit_post(request, pages, key, request.POST, stored, lock, context)


def _edit_post(
    request: AuthedHttpRequest,
    pages: Pages,
    key: str | bytes,
    post: QueryDict,
    stored: Record,
    lock: LockInfo | None,
    context: dict[str, Any],
) -> HttpResponse:
    try:
        data, base = _posted(post, key)
    except BadBase:
        form = context["form"] = pages.edit_form(request.POST, stored=stored)
        form.is_valid()
        form.add_error(None, BAD_BASE)
        return render(request, "records/edit.html", context, status=400)
    form = context["form"] = pages.edit_form(data, stored=stored)
    if not form.is_valid():
        return render(request, "records/edit.html", context, status=400)
    if raw_views.lock_refused(form, lock):  # held: saved only with the explicit override
        return render(request, "records/edit.html", context, status=409)
    if base is None:  # a form without a base (made before merges): only its version is known
        version = form.cleaned_data["version"]
        base = Base(key_text(key), version, form.values_of(stored) if version == stored.version else {}, {})
    return _save(request, pages, key, form, stored, base, lock)


# Actions that set an actor's fields consistently: the edit form, holding the result, saved through
# the same merge, version check, lock guard and findings warning as any edit.
INTENTS = {
    "suspend": ("Suspend", "status SUSPENDED, ateom pod fields cleared"),
    "run": ("Mark running on pod", "status RUNNING on the ateom pod you give (namespace, name, IP)"),
}


def _intent_values(intent: str, values: dict[str, str], post: QueryDict | None = None) -> dict[str, str]:
    """The editable fields of an actor after ``intent``, from ``values`` (and the pod the operator gave)."""
    out = dict(values)
    if intent == "suspend":
        out.update(status="SUSPENDED", ateom_pod_namespace="", ateom_pod_name="", ateom_pod_ip="")
    else:
        out["status"] = "RUNNING"
        for name in ("ateom_pod_namespace", "ateom_pod_name", "ateom_pod_ip"):
            if post is not None:
                out[name] = post.get(name, "")
    return out


@role_required("editor")
@require_http_methods(["GET", "POST"])
def record_intent(request: AuthedHttpRequest, intent: str, **route: Any) -> HttpResponse:
    """GET: the edit form holding the action's result, to review; POST (``version``, and for "run" the
    pod fields; other fields are the stored ones): saved as that edit, at that version."""
    return record_view(lambda request, pages, key: _intent(request, pages, key, intent))(request, **route)


def _intent(request: AuthedHttpRequest, pages: Pages, key: str | bytes, intent: str) -> HttpResponse:
    if intent not in pages.intents:
        raise Http404(f"A {pages.name} has no {intent!r} action.")
    p = persistence(request.app)
    if isinstance(key, str):
        refused = raw_views.refuse_unreadable(request, p, key)
        if refused is not None:
            return refused
    stored = pages.read(p, key)
    lock = raw_views.held_lock(p, key) if isinstance(key, str) else None
    title, says = INTENTS[intent]
    context = record_context(
        pages, key, record=stored, held_lock=lock, intent={"name": intent, "title": title, "says": says}
    )
    form = pages.edit_form
    if request.method == "GET":
        return _edit_page(request, pages, key, stored, context, _intent_values(intent, form.values_of(stored)))
    post = request.POST.copy()
    values = form.initial_from(stored)
    values.update(_intent_values(intent, form.values_of(stored), post))
    for name, value in values.items():
        if name != "version" and (name not in post or name in form.EDITABLE):
            post[name] = value
    return _edit_post(request, pages, key, post, stored, lock, context)


def _edit_page(
    request: AuthedHttpRequest,
    pages: Pages,
    key: str | bytes,
    stored: Record,
    context: dict[str, Any],
    wanted: dict[str, str] | None = None,
) -> HttpResponse:
    """The form, holding the stored values (or, to revert a change, the values from before it; for an
    action, ``wanted``)."""
    form = pages.edit_form
    initial = form.initial_from(stored)
    initial.update(wanted or {})
    base_values = form.values_of(stored)
    base_version = stored.version
    revert_id = request.GET.get("revert")
    if revert_id:
        entry = dashboard(request.app).history_entry(key_text(key), revert_id) if _stream_id(revert_id) else None
        changes = revertible(form, entry) if entry else {}
        big = too_big(form, bounded(entry)) if entry else []
        if big:
            raise error_pages.BadParameter(
                "revert",
                f"That change cannot be reverted from the audit: the values of {', '.join(big)} were too big "
                "to keep in it (only their digests are). Edit the record by hand.",
            )
        if not changes or entry is None:
            raise error_pages.BadParameter("revert", "That change is not in this record's history, or is not an edit.")
        for name, (before, after) in changes.items():
            initial[name], base_values[name] = before, after
        base_version = entry["version_after"]
        context["reverting"] = {"entry": entry, "fields": sorted(changes)}
    initial["base"] = sign_base(key_text(key), base_version, base_values)
    context["form"] = form(initial=initial)
    return render(request, "records/edit.html", context)


def _stream_id(value: str) -> bool:
    left, _, right = value.partition("-")
    return 0 < len(value) <= 41 and left.isdigit() and (not right or right.isdigit()) and value.isascii()


def _posted(post: QueryDict, key: str | bytes) -> tuple[QueryDict, Base | None]:
    """The form data and its base. A conflicting field sent without a decision gets the operator's value
    and the base value of before the conflict back, so that the merge shows it as a conflict again."""
    token = post.get("base", "")
    if not token:
        return post, None
    base = read_base(token, key_text(key))
    data = post.copy()
    values = dict(base.values)
    undecided = frozenset(name for name in base.decide if name not in post)
    for name in undecided:
        data[name], values[name] = base.decide[name][1], base.decide[name][0]
    return data, Base(base.key, base.version, values, {}, undecided)


def _save(
    request: AuthedHttpRequest,
    pages: Pages,
    key: str | bytes,
    form: RecordEditForm,
    stored: Record,
    base: Base,
    lock: LockInfo | None,
) -> HttpResponse:
    """Merges the operator's values onto the newest version and writes it with one compare-and-set."""
    p = persistence(request.app)
    mine = form.wanted()
    current = stored
    warned = form.cleaned_data.get("save_despite_findings") or not isinstance(key, str)
    for _ in range(MERGE_ROUNDS):
        result = merge(base.values or None, form.values_of(current), mine, base.undecided)
        if result.conflicts:
            return _merge_page(request, pages, key, form, current, base, result)
        edited = copy_record(current)
        form.set_values(edited, result.values)
        if not warned:  # the check's rules on the result: one extra confirmation, not a block
            warned = True
            found = related.edit_findings(p, current, edited, **related_settings())
            if found:
                form.add_error(
                    "save_despite_findings", f"Nothing was saved yet. Tick “{SAVE_DESPITE_FINDINGS}” to save."
                )
                context = record_context(pages, key, record=current, form=form, held_lock=lock, edit_findings=found)
                return render(request, "records/edit.html", context, status=409)
        try:
            p.update_record(pages.kind, edited, current.version)
        except storage.VersionConflict:
            current = pages.read(p, key)  # changed again: merge onto that
            continue
        except storage.UnreadableStored:
            raise  # unreadable meanwhile: the error page, with Go's reason and the raw editor's link
        except storage.StorageError as exc:
            error_pages.add_form_error(form, exc)
            return render(
                request,
                "records/edit.html",
                record_context(pages, key, record=current, form=form, held_lock=lock),
                status=409,
            )
        entry = {"from_version": current.version, "to_version": edited.version, **raw_views.lock_audit(lock)}
        if current.version != base.version:
            entry["merged_from_version"] = base.version
        record_changed(request, pages, "update", key, changed_fields=changed_fields(current, edited), **entry)
        messages.success(request, _saved_message(pages, key, form, edited, current, base, result))
        return redirect(pages.urls(key)["detail"])
    form.add_error(None, f"{key_text(key)} keeps changing; nothing was saved. Try again.")
    return render(
        request, "records/edit.html", record_context(pages, key, record=current, form=form, held_lock=lock), status=409
    )


def _saved_message(
    pages: Pages, key: str | bytes, form: RecordEditForm, edited: Record, current: Record, base: Base, result: Merge
) -> str:
    said = f"{pages.title} {pages.label(key)} saved (version {edited.version})"
    if current.version == base.version:
        return said + "."
    label = {name: form.fields[name].label for name in form.EDITABLE}
    parts = []
    if result.kept:
        parts.append("kept " + ", ".join(str(label[n]) for n in result.kept) + " as changed there")
    if result.applied:
        parts.append("applied your " + ", ".join(str(label[n]) for n in result.applied))
    merged = "; ".join(parts) or "no field you changed was changed there"
    return f"{said}, merged with version {current.version} saved meanwhile: {merged}."


def _merge_page(
    request: AuthedHttpRequest,
    pages: Pages,
    key: str | bytes,
    form: RecordEditForm,
    current: Record,
    base: Base,
    result: Merge,
) -> HttpResponse:
    """Base / stored now / yours for every field, a decision for each conflict; nothing written."""
    mine = form.wanted()
    stored_values = form.values_of(current)
    rows = []
    for name in form.EDITABLE:
        state = (
            "conflict"
            if name in result.conflicts
            else "applied"
            if name in result.applied
            else "kept"
            if name in result.kept
            else "same"
        )
        rows.append(
            {
                "name": name,
                "label": form.fields[name].label,
                "base": base.values.get(name),  # None: not known (a form from before merges)
                "stored": stored_values[name],
                "mine": mine[name],
                "merged": result.values[name],
                "state": state,
            }
        )
    decide = {name: (base.values.get(name, ""), mine[name]) for name in result.conflicts}
    hidden = [("version", current.version), ("base", sign_base(key_text(key), current.version, stored_values, decide))]
    hidden += [(name, getattr(current, name)) for name in form.IMMUTABLE]
    hidden += [(str(row["name"]), row["merged"]) for row in rows if row["state"] != "conflict"]
    if form.cleaned_data.get("edit_while_locked"):  # the override given stands for the decisions too
        hidden.append(("edit_while_locked", "on"))
    if form.cleaned_data.get("save_despite_findings"):  # so does the findings confirmation
        hidden.append(("save_despite_findings", "on"))
    context = record_context(
        pages,
        key,
        current=current,
        rows=rows,
        your_version=base.version,
        hidden=hidden,
        conflicts=len(result.conflicts),
        other_change=_who_saved(dashboard(request.app), key, current.version),
    )
    return render(request, "records/conflict.html", context, status=409)


OTHER_CHANGE_LOOKBACK = 20  # history entries searched for the change that made the stored version


def _who_saved(state: DashboardState, key: str | bytes, version: int) -> dict[str, Any] | None:
    """Who saved `version` of the record and when, from its history (the audit); None when no
    entry says so (the ate server wrote it, or its entry is older than the history kept)."""
    for _entry_id, entry in state.record_history(key_text(key), OTHER_CHANGE_LOOKBACK):
        if entry.get("version_after") == version:
            return {
                "who": entry.get("who") or entry.get("operator") or "someone",
                "when": entry.get("when") or entry.get("ts") or "",
                "action": entry.get("action") or "",
            }
    return None
