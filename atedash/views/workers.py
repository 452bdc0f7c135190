"""Workers: list (paged scan with filters), detail, create, version-checked edit, delete."""

from django.contrib import messages
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods

import storage
from atedash import cursors, errors, listing
from atedash.app import current_app
from atedash.audit import audit, changed_fields
from atedash.auth import role_required
from atedash.forms import WorkerCreateForm, WorkerEditForm, WorkerFilterForm
from atedash.views import raw as raw_views
from atedash.views.actors import status_name
from atedash.views.common import persistence, render_page, scan_budget
from storage import keys
from storage.ateapi_pb2 import Worker

FIELD_LABELS = [
    ("worker_namespace", "Worker namespace"),
    ("worker_pool", "Worker pool"),
    ("worker_pod", "Worker pod"),
    ("ip", "IP"),
    ("version", "Version"),
    ("actor_namespace", "Actor namespace"),
    ("actor_template", "Actor template"),
    ("actor_id", "Actor id"),
]


# Fields whose value an operator pastes elsewhere: a copy button beside them (static/js/copy.js).
COPYABLE = {"worker_pod", "ip", "actor_id"}


def worker_args(worker):
    return [worker.worker_namespace, worker.worker_pool, worker.worker_pod]


@require_GET
def worker_list(request):
    form = WorkerFilterForm(request.GET)
    values = form.values()
    filters = {
        "namespace": values["namespace"] or None,
        "pool": values["pool"] or None,
        "assigned": {"free": False, "assigned": True}.get(values["assigned"]),
        "id_contains": values["q"] or None,
        "ip": values["ip"] or None,
    }
    # A cursor that is not valid raises storage.InvalidCursor: the 400 page (atedash/errors.py).
    page = cursors.scan(
        "workers", persistence().scan_workers, values["cursor"], limit=values["size"], **scan_budget(), **filters
    )
    context = {
        "form": form,
        "values": values,
        "page": page,
        "rows": page.records,
        "rows_html": listing.worker_rows_html(page.records, page.unreadable),
        "refresh": values["refresh"] == "5",
        "on_first_page": not values["cursor"],
    }
    return render_page(request, "workers/list.html", "workers/_table.html", context)


@require_GET
def worker_detail(request, namespace, pool, pod):
    p = persistence()
    key = keys.worker_key(namespace, pool, pod)
    raw = p.get_raw(key)  # NotFound -> 404
    corrupt = pretty = worker = None
    try:
        pretty = p.pretty_json(raw)
        worker = p.get_worker(namespace, pool, pod)
    except storage.CorruptRecord as exc:
        corrupt = exc
    context = {
        **raw_views.record_notices(p, key, raw.value),  # unreadable by the server, raw editor
        "key": key,
        "raw": raw,
        "pretty": pretty,
        "corrupt": corrupt,
        "worker": worker,
        "namespace": namespace,
        "pool": pool,
        "pod": pod,
    }
    if worker is not None:
        context["fields"] = [
            {"name": n, "label": label, "value": getattr(worker, n), "copy": n in COPYABLE} for n, label in FIELD_LABELS
        ]
        actor = actor_error = None
        if worker.actor_id:
            try:
                actor = p.get_actor(worker.actor_id)
            except storage.NotFound:
                actor_error = "no such actor in the store"
            except storage.CorruptRecord as exc:
                actor_error = errors.storage_message(exc)
        context.update(
            {
                "actor": actor,
                "actor_status": status_name(actor) if actor is not None else None,
                "actor_error": actor_error,
                "actor_points_back": actor is not None
                and actor.ateom_pod_name == worker.worker_pod
                and actor.ateom_pod_namespace == worker.worker_namespace,
            }
        )
    return render(request, "workers/detail.html", context)


@role_required("editor")
@require_http_methods(["GET", "POST"])
def worker_create(request):
    form = WorkerCreateForm(request.POST if request.method == "POST" else None)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            worker = Worker(**form.cleaned_data)
            try:
                persistence().create_worker(worker)
            except storage.StorageError as exc:
                errors.add_form_error(form, exc, id_field="worker_pod")
                status = 409
            else:
                audit(
                    request,
                    "worker.create",
                    key=keys.worker_key(*worker_args(worker)),
                    version_after=1,
                    changed_fields=changed_fields(None, worker),
                )
                current_app().records_changed()
                messages.success(request, f"Worker {'/'.join(worker_args(worker))} created.")
                return redirect("worker_detail", *worker_args(worker))
    return render(request, "workers/create.html", {"form": form}, status=status)


@role_required("editor")
@require_http_methods(["GET", "POST"])
def worker_edit(request, namespace, pool, pod):
    p = persistence()
    refused = raw_views.refuse_unreadable(request, p, keys.worker_key(namespace, pool, pod))  # edited raw only
    if refused is not None:
        return refused
    stored = p.get_worker(namespace, pool, pod)
    args = [namespace, pool, pod]
    context = {"worker": stored, "args": args}
    if request.method == "GET":
        context["form"] = WorkerEditForm(initial=WorkerEditForm.initial_from(stored))
        return render(request, "workers/edit.html", context)
    form = WorkerEditForm(request.POST, stored=stored)
    context["form"] = form
    status = 400
    if form.is_valid():
        expected = form.cleaned_data["version"]
        edited = Worker()
        edited.CopyFrom(stored)
        form.apply_to(edited)
        edited.version = expected
        try:
            p.update_worker(edited, expected)
        except storage.VersionConflict:
            current = p.get_worker(namespace, pool, pod)
            rows = []
            for name in form.IMMUTABLE + form.EDITABLE:
                now, mine = getattr(current, name), form.cleaned_data.get(name) or ""
                rows.append(
                    {
                        "name": name,
                        "label": form.fields[name].label,
                        "stored": now,
                        "mine": mine,
                        "differs": str(now) != str(mine),
                    }
                )
            reapply = [("version", current.version)] + [
                (name, form.cleaned_data.get(name) or "") for name in form.IMMUTABLE + form.EDITABLE
            ]
            conflict = {
                "title": f"Worker {'/'.join(args)}",
                "current": current,
                "rows": rows,
                "your_version": expected,
                "reapply": reapply,
                "edit_url": reverse("worker_edit", args=args),
                "discard_url": reverse("worker_detail", args=args),
                "kind": "worker",
            }
            return render(request, "conflict.html", conflict, status=409)
        except storage.StorageError as exc:
            errors.add_form_error(form, exc)
            status = 409
        else:
            audit(
                request,
                "worker.update",
                key=keys.worker_key(*args),
                from_version=expected,
                to_version=edited.version,
                changed_fields=changed_fields(stored, edited),
            )
            current_app().records_changed()
            messages.success(request, f"Worker {'/'.join(args)} saved (version {edited.version}).")
            return redirect("worker_detail", *args)
    return render(request, "workers/edit.html", context, status=status)


@role_required("editor")
@require_http_methods(["GET", "POST"])
def worker_delete(request, namespace, pool, pod):
    p = persistence()
    worker = p.get_worker(namespace, pool, pod)  # NotFound -> 404 (delete itself is idempotent)
    args = [namespace, pool, pod]
    if request.method == "POST":
        p.delete_worker(namespace, pool, pod)
        audit(
            request,
            "worker.delete",
            key=keys.worker_key(*args),
            version=worker.version,
            changed_fields=changed_fields(worker, None),
        )
        current_app().records_changed()
        messages.success(request, f"Worker {'/'.join(args)} deleted.")
        return redirect("worker_list")
    return render(request, "workers/delete.html", {"worker": worker, "args": args})
