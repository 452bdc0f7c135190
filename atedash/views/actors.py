"""Actors: list (paged scan with filters), detail, create, version-checked edit, delete."""

from django.conf import settings
from django.contrib import messages
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods

import storage
from atedash import cursors, errors, listing, timing
from atedash.app import current_app
from atedash.audit import audit, changed_fields
from atedash.auth import role_required
from atedash.forms import ActorCreateForm, ActorEditForm, ActorFilterForm, short_status, status_value
from atedash.views import raw as raw_views
from atedash.views.common import persistence, render_page, scan_budget
from storage import keys
from storage.ateapi_pb2 import Actor
from storage.records import ACTORS, WORKERS

SUSPENDED = Actor.Status.Value("STATUS_SUSPENDED")

FIELD_LABELS = [
    ("actor_id", "Actor id"),
    ("version", "Version"),
    ("actor_template_namespace", "Template namespace"),
    ("actor_template_name", "Template name"),
    ("status", "Status"),
    ("ateom_pod_namespace", "Ateom pod namespace"),
    ("ateom_pod_name", "Ateom pod name"),
    ("ateom_pod_ip", "Ateom pod IP"),
    ("last_snapshot", "Last snapshot"),
    ("in_progress_snapshot", "In-progress snapshot"),
]


# Fields whose value an operator pastes elsewhere: a copy button beside them (static/js/copy.js).
COPYABLE = {
    "actor_id",
    "ateom_pod_namespace",
    "ateom_pod_name",
    "ateom_pod_ip",
    "last_snapshot",
    "in_progress_snapshot",
}


def status_name(actor):
    return short_status(Actor.Status.Name(actor.status)) if actor.status in Actor.Status.values() else str(actor.status)


def actor_fields(actor):
    rows = []
    for name, label in FIELD_LABELS:
        value = status_name(actor) if name == "status" else getattr(actor, name)
        rows.append(
            {"name": name, "label": label, "value": value, "copy": name in COPYABLE and len(str(value)) <= 4096}
        )
    return rows


# --- list ------------------------------------------------------------------------------------


@require_GET
def actor_list(request):
    form = ActorFilterForm(request.GET)
    values = form.values()
    pod_namespace, pod_name = form.pod_filter(values["pod"])
    filters = {
        "status": status_value(values["status"]) if values["status"] else None,
        "template_namespace": values["ns"] or None,
        "template_name": values["template"] or None,
        "id_contains": values["q"] or None,
        "pod_namespace": pod_namespace,
        "pod_name": pod_name,
        "pod_ip": values["ip"] or None,
        "snapshot_contains": values["snapshot"] or None,
    }
    # A cursor that is not valid raises storage.InvalidCursor: the 400 page (atedash/errors.py).
    page = cursors.scan(
        "actors", persistence().scan_actors, values["cursor"], limit=values["size"], **scan_budget(), **filters
    )
    unreadable = page.unreadable
    rows = [
        {
            "actor": actor,
            "unreadable": unreadable.get(keys.actor_key(actor.actor_id)) if unreadable else None,
            "status": status_name(actor),
            "pod": f"{actor.ateom_pod_namespace}/{actor.ateom_pod_name}"
            if actor.ateom_pod_namespace and actor.ateom_pod_name
            else actor.ateom_pod_name,
        }
        for actor in page.records
    ]
    context = {
        "form": form,
        "values": values,
        "page": page,
        "rows": rows,
        "rows_html": listing.actor_rows_html(rows),
        "refresh": values["refresh"] == "5",
        "on_first_page": not values["cursor"],
    }
    return render_page(request, "actors/list.html", "actors/_table.html", context)


# --- detail ----------------------------------------------------------------------------------


def find_worker(p, actor):
    """The worker the actor points at (by ateom pod namespace + name), with a bounded scan.

    Returns (worker | None, complete) where complete says the whole namespace was scanned.
    """
    if not actor.ateom_pod_name:
        return None, True
    worker = _worker_in_known_pools(p, actor)
    if worker is not None:
        return worker, True
    budget = settings.ATEDASH_WORKER_LOOKUP_BUDGET
    scanned = 0
    cursor = None
    while True:
        page = p.scan_workers(
            cursor=cursor,
            limit=200,
            namespace=actor.ateom_pod_namespace or None,
            max_scan=max(1, budget - scanned),
        )
        scanned += page.scanned
        for worker in page.records:
            if worker.worker_pod == actor.ateom_pod_name and (
                not actor.ateom_pod_namespace or worker.worker_namespace == actor.ateom_pod_namespace
            ):
                return worker, True
        cursor = page.next_cursor
        if cursor is None:
            return None, True
        if scanned >= budget:
            return None, False


def _worker_in_known_pools(p, actor):
    """The worker, read directly from the pools the overview counts know (one round trip per node).

    A worker's key names its pool, which the actor does not know: without this, every detail page
    would scan the workers. Pools created since the last count, a missing worker or a corrupt record
    give None, and find_worker scans as before.
    """
    candidates = current_app().stats.known_pools(actor.ateom_pod_namespace or None)
    if not candidates:
        return None
    worker_keys = [keys.worker_key(ns, pool, actor.ateom_pod_name) for ns, pool in candidates]
    client = p.client
    read = getattr(client, "mget_nonatomic", None) or client.mget
    with timing.store_call():
        values = read(worker_keys)
        for key, raw in zip(worker_keys, values):
            if raw is not None:
                try:
                    return WORKERS.decode_stored(key, raw)[0]
                except storage.CorruptRecord:
                    return None
    return None


@require_GET
def actor_detail(request, actor_id):
    p = persistence()
    key = keys.actor_key(actor_id)
    raw = p.get_raw(key)  # NotFound -> 404 page
    corrupt = None
    pretty = None
    actor = None
    try:
        pretty = p.pretty_json(raw)
        with timing.store_call():
            actor = ACTORS.decode_stored(key, raw.value)[0]  # what get_actor(actor_id) gives, without a 2nd read
    except storage.CorruptRecord as exc:
        corrupt = exc
    context = {
        "actor_id": actor_id,
        "key": key,
        "raw": raw,
        "pretty": pretty,
        "corrupt": corrupt,
        "actor": actor,
        "lock": None,
        "lock_corrupt": None,
        "lock_key": keys.actor_lock_key(actor_id),
        **raw_views.record_notices(p, key, raw.value),  # unreadable by the server, held lock, raw editor
    }
    try:
        context["lock"] = p.get_lock(keys.actor_lock_key(actor_id))
    except storage.CorruptRecord as exc:  # something that is not a lock sits at the lock's key
        context["lock_corrupt"] = exc
    if actor is not None:
        worker, complete = find_worker(p, actor)
        context.update(
            {
                "fields": actor_fields(actor),
                "status": status_name(actor),
                "suspended": actor.status == SUSPENDED,
                "worker": worker,
                "worker_search_complete": complete,
                "worker_points_back": worker is not None and worker.actor_id == actor.actor_id,
            }
        )
    return render(request, "actors/detail.html", context)


# --- create ----------------------------------------------------------------------------------


@role_required("editor")
@require_http_methods(["GET", "POST"])
def actor_create(request):
    form = ActorCreateForm(request.POST if request.method == "POST" else None)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            actor = Actor(
                actor_id=form.cleaned_data["actor_id"],
                actor_template_namespace=form.cleaned_data["actor_template_namespace"],
                actor_template_name=form.cleaned_data["actor_template_name"],
                status=SUSPENDED,
            )
            try:
                persistence().create_actor(actor)
            except storage.StorageError as exc:
                errors.add_form_error(form, exc, id_field="actor_id")
                status = 409
            else:
                audit(
                    request,
                    "actor.create",
                    key=keys.actor_key(actor.actor_id),
                    version_after=1,
                    changed_fields=changed_fields(None, actor),
                )
                current_app().records_changed()
                messages.success(request, f"Actor {actor.actor_id} created (SUSPENDED, version 1).")
                return redirect("actor_detail", actor_id=actor.actor_id)
    return render(request, "actors/create.html", {"form": form}, status=status)


# --- edit ------------------------------------------------------------------------------------


def conflict_rows(form, stored):
    rows = []
    for name in ActorEditForm.IMMUTABLE + ActorEditForm.EDITABLE:
        label = form.fields[name].label
        mine = form.cleaned_data.get(name, "")
        now = status_name(stored) if name == "status" else getattr(stored, name)
        rows.append({"name": name, "label": label, "stored": now, "mine": mine, "differs": str(now) != str(mine)})
    return rows


@role_required("editor")
@require_http_methods(["GET", "POST"])
def actor_edit(request, actor_id):
    p = persistence()
    key = keys.actor_key(actor_id)
    refused = raw_views.refuse_unreadable(request, p, key)  # edited raw only: the form would guess
    if refused is not None:
        return refused
    stored = p.get_actor(actor_id)  # NotFound -> 404, CorruptRecord -> error page
    lock = raw_views.held_lock(p, key)
    page = {"actor": stored, "actor_id": actor_id, "held_lock": lock}
    if request.method == "GET":
        form = ActorEditForm(initial=ActorEditForm.initial_from(stored))
        return render(request, "actors/edit.html", {"form": form, **page})

    form = ActorEditForm(request.POST, stored=stored)
    status = 400
    if form.is_valid() and raw_views.lock_refused(form, lock):
        status = 409
    elif form.is_valid():
        expected = form.cleaned_data["version"]
        edited = Actor()
        edited.CopyFrom(stored)
        form.apply_to(edited)
        edited.version = expected
        try:
            p.update_actor(edited, expected)
        except storage.VersionConflict:
            current = p.get_actor(actor_id)
            context = {
                "actor_id": actor_id,
                "form": form,
                "current": current,
                "rows": conflict_rows(form, current),
                "your_version": expected,
                "reapply": reapply_values(form, current.version),
                "edit_url": reverse("actor_edit", args=[actor_id]),
                "discard_url": reverse("actor_detail", args=[actor_id]),
                "kind": "actor",
            }
            return render(request, "conflict.html", context, status=409)
        except storage.StorageError as exc:
            errors.add_form_error(form, exc)
            status = 409
        else:
            audit(
                request,
                "actor.update",
                key=keys.actor_key(actor_id),
                from_version=expected,
                to_version=edited.version,
                changed_fields=changed_fields(stored, edited),
                **raw_views.lock_audit(lock),
            )
            current_app().records_changed()
            messages.success(request, f"Actor {actor_id} saved (version {edited.version}).")
            return redirect("actor_detail", actor_id=actor_id)
    return render(request, "actors/edit.html", {"form": form, **page}, status=status)


def reapply_values(form, version):
    """The hidden fields of the "re-apply my edit on version N" form."""
    values = [("version", version)]
    for name in form.IMMUTABLE + form.EDITABLE:
        values.append((name, form.cleaned_data.get(name, "")))
    return values


# --- delete ----------------------------------------------------------------------------------


@role_required("editor")
@require_http_methods(["GET", "POST"])
def actor_delete(request, actor_id):
    p = persistence()
    actor = p.get_actor(actor_id)
    error = None
    status = 200
    if request.method == "POST":
        try:
            p.delete_actor(actor_id)
        except (storage.FailedPrecondition, storage.VersionConflict) as exc:
            error = errors.storage_message(exc)
            status = 409
            actor = p.get_actor(actor_id)
        else:
            audit(
                request,
                "actor.delete",
                key=keys.actor_key(actor_id),
                version=actor.version,
                changed_fields=changed_fields(actor, None),
            )
            current_app().records_changed()
            messages.success(request, f"Actor {actor_id} deleted.")
            return redirect("actor_list")
    context = {
        "actor": actor,
        "actor_id": actor_id,
        "status": status_name(actor),
        "suspended": actor.status == SUSPENDED,
        "error": error,
    }
    return render(request, "actors/delete.html", context, status=status)
