"""Show all matches: the actor or worker list's filters walked over the whole store in the background.

GET shows the walk of the URL's filters: a button to start it when there is none, its progress while
it runs (an HTMX poll, and a meta refresh without JavaScript), then its matches page by page (signed
offsets into the walk's sorted keys). POST starts it (or joins the walk of the same filters already
running); POST .../cancel/ stops it. The walks live in the store, so that any process shows them
(atedash/walks.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from html import escape
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_http_methods, require_POST

import storage
from atedash import cursors, listing
from atedash.app import current_app
from atedash.auth import role_required
from atedash.forms import ActorFilterForm, WorkerFilterForm, status_value
from atedash.records import status_name
from atedash.views.bulk import KIND_ACTIONS
from atedash.views.common import persistence, render_page
from storage import keys
from storage.bulk import ACTIONS
from storage.records import ACTORS, WORKERS
from storage.walk import actor_walk, worker_walk

if TYPE_CHECKING:
    from django.http import HttpRequest, HttpResponse, QueryDict
    from django.utils.safestring import SafeString

    from atedash.walks import WalkJob
    from storage.ateapi_pb2 import Actor, Worker
    from storage.walk import WalkFilter

PAGE_SIZE = 100
# The list filters each walk keeps in its URL (the list pages' own parameters).
FILTER_PARAMS = {
    "actors": ("status", "ns", "template", "q", "pod", "ip", "snapshot"),
    "workers": ("namespace", "pool", "assigned", "q", "ip"),
}


def actor_walk_of(values: dict[str, Any]) -> WalkFilter:
    pod_namespace, pod_name = ActorFilterForm.pod_filter(values["pod"])
    return actor_walk(
        status=status_value(values["status"]) if values["status"] else None,
        template_namespace=values["ns"] or None,
        template_name=values["template"] or None,
        id_contains=values["q"] or None,
        pod_namespace=pod_namespace,
        pod_name=pod_name,
        pod_ip=values["ip"] or None,
        snapshot_contains=values["snapshot"] or None,
    )


def worker_walk_of(values: dict[str, Any]) -> WalkFilter:
    return worker_walk(
        namespace=values["namespace"] or None,
        pool=values["pool"] or None,
        assigned={"free": False, "assigned": True}.get(values["assigned"]),
        id_contains=values["q"] or None,
        ip=values["ip"] or None,
    )


def _wanted(kind: str, data: QueryDict) -> tuple[WalkFilter, dict[str, str]]:
    form = (ActorFilterForm if kind == "actors" else WorkerFilterForm)(data)
    values = form.values()
    wanted = actor_walk_of(values) if kind == "actors" else worker_walk_of(values)
    query = {name: values[name] for name in FILTER_PARAMS[kind] if values[name]}
    return wanted, query


def _url(kind: str, query: dict[str, str], **extra: str) -> str:
    return reverse(f"{kind[:-1]}_matches") + ("?" + urlencode({**query, **extra}) if query or extra else "")


def _offset(job: WalkJob, signed: str) -> int:
    """The page's offset from its signed `at` parameter (0 without one); InvalidCursor when it was not
    signed for this very walk (another walk's link, an edited number): the 400 page."""
    if not signed:
        return 0
    job_id, _, offset = cursors.unsign("matches", signed).partition(":")
    if job_id != job.id or not offset.isdigit():
        raise storage.InvalidCursor(signed[:64], "this link belongs to another walk; start from its first page")
    return int(offset)


def _read(kind: str, keys: list[str]) -> tuple[list[Actor | Worker], list[str], list[storage.CorruptEntry]]:
    """The records of a page of keys, one read per node; gone and corrupt ones said so."""
    return persistence().read_records(ACTORS if kind == "actors" else WORKERS, keys)


def _actor_rows(actors: Iterable[Actor]) -> list[dict[str, Any]]:
    return [
        {
            "actor": actor,
            "status": status_name(actor),
            "pod": f"{actor.ateom_pod_namespace}/{actor.ateom_pod_name}"
            if actor.ateom_pod_namespace and actor.ateom_pod_name
            else actor.ateom_pod_name,
        }
        for actor in actors
    ]


def _rows_html(kind: str, records: list[Actor | Worker], selectable: bool) -> SafeString:
    """The list's own rows (atedash/listing.py); for admins each with a checkbox for bulk actions,
    whose value is the record's key and the version shown (storage/bulk.py checks it)."""
    if not selectable:
        return listing.actor_rows_html(_actor_rows(records)) if kind == "actors" else listing.worker_rows_html(records)
    out: list[str] = []
    for record in records:
        if kind == "actors":
            html = listing.actor_rows_html(_actor_rows([record]))
            key = keys.actor_key(record.actor_id)
        else:
            html = listing.worker_rows_html([record])
            key = keys.worker_key(record.worker_namespace, record.worker_pool, record.worker_pod)
        value = escape(f"{key}@{record.version}")
        cell = (
            f'        <td class="select"><input type="checkbox" name="target" value="{value}" form="bulk-form" '
            f'aria-label="select {escape(key)}"></td>\n'
        )
        cut = html.index(">\n", html.index("<tr")) + 2
        out.append(html[:cut] + cell + html[cut:])
    return mark_safe("".join(out))


def _page(request: HttpRequest, kind: str) -> HttpResponse:
    wanted, query = _wanted(kind, request.GET)
    walks = current_app().walks
    job = walks.find(kind, wanted)
    busy = walks.running()
    context: dict[str, Any] = {
        "kind": kind,
        "query": query,
        "filters": [(k, v) for k, v in query.items()],
        "job": job,
        "busy": busy if busy is not None and (job is None or busy.id != job.id) else None,
        "list_url": reverse(f"{kind[:-1]}_list") + ("?" + urlencode(query) if query else ""),
        "self_url": _url(kind, query),
        "max_results": walks.max_results,
    }
    state, result, error = job.state() if job is not None else ("none", None, None)
    context["state"], context["walk_error"] = state, error
    if state in ("running", "interrupted"):
        context["progress"] = job.walk.progress()
    elif state == "done":
        offset = min(_offset(job, request.GET.get("at", "")), max(0, len(result.keys) - 1))
        keys = result.keys[offset : offset + PAGE_SIZE]
        records, gone, corrupt = _read(kind, keys)
        following = offset + PAGE_SIZE
        context.update(
            {
                "result": result,
                "offset": offset,
                "first": offset + 1 if keys else 0,
                "last": offset + len(keys),
                "gone": gone,
                "corrupt": corrupt,
                "next_url": _url(kind, query, at=cursors.sign("matches", f"{job.id}:{following}"))
                if following < len(result.keys)
                else None,
                "prev_url": _url(kind, query, at=cursors.sign("matches", f"{job.id}:{max(0, offset - PAGE_SIZE)}"))
                if offset > 0
                else None,
            }
        )
        selectable = request.operator is not None and request.operator.is_admin
        context["rows_html"] = _rows_html(kind, records, selectable)
        context["rows"] = records
        context["selectable"] = selectable
        context["bulk_actions"] = [(a, ACTIONS[a]) for a in KIND_ACTIONS[kind]]
    return render_page(request, "matches/page.html", "matches/_walk.html", context)


def _start(request: HttpRequest, kind: str) -> HttpResponseRedirect:
    wanted, query = _wanted(kind, request.POST)
    current_app().walks.start(kind, wanted, request.operator.name, fresh=request.POST.get("fresh") == "1")
    return HttpResponseRedirect(_url(kind, query))


@require_http_methods(["GET", "POST"])
def actor_matches(request: HttpRequest) -> HttpResponse:
    return _start(request, "actors") if request.method == "POST" else _page(request, "actors")


@require_http_methods(["GET", "POST"])
def worker_matches(request: HttpRequest) -> HttpResponse:
    return _start(request, "workers") if request.method == "POST" else _page(request, "workers")


@role_required("editor")
@require_POST
def cancel_walk(request: HttpRequest, job_id: str) -> HttpResponseRedirect:
    walks = current_app().walks
    walks.cancel(job_id)
    back = request.POST.get("next", "")
    if not back.startswith("/") or not url_has_allowed_host_and_scheme(back, allowed_hosts=None):
        back = reverse("overview")
    return HttpResponseRedirect(back)
