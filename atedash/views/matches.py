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
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.http import HttpResponseRedirect, StreamingHttpResponse
from django.urls import reverse
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_GET, require_http_methods, require_POST

import storage
from atedash import cursors, listing
from atedash.app import current_app
from atedash.audit import audit
from atedash.auth import role_required
from atedash.errors import not_found
from atedash.forms import ActorFilterForm, WorkerFilterForm, status_value
from atedash.links import local_path
from atedash.records import status_name
from atedash.request import AuthedHttpRequest
from atedash.views.bulk import KIND_ACTIONS
from atedash.views.common import persistence, render_page, wants_partial
from storage import keys
from storage.ateapi_pb2 import Actor, Worker
from storage.backup import iter_keys_export
from storage.bulk import ACTIONS
from storage.records import ACTORS, WORKERS
from storage.walk import actor_walk, worker_walk

if TYPE_CHECKING:
    from django.http import HttpResponse, QueryDict
    from django.utils.safestring import SafeString

    from atedash.walks import WalkJob
    from storage.walk import WalkFilter

PAGE_SIZE = 100
RUNNING_ROWS = 50  # matches shown while a walk runs (each poll reads them again)
# New walks a viewer may start in a minute (a walk of filters already kept or running is joined,
# never counted); each one is a pass over every key of the store.
VIEWER_WALKS_PER_MINUTE = 6
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
    job_id, _, offset = (cursors.unsign("matches", signed) or "").partition(":")
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


def _rows_html(kind: str, records: list[Actor | Worker], selectable: bool, values: list[str]) -> SafeString:
    """The list's own rows (atedash/listing.py); for admins each with a checkbox for bulk actions,
    whose value is the record's key and the version shown (storage/bulk.py checks it), also added
    to `values` (the page's records, for "on this page")."""
    if not selectable:  # (records of the walk's kind, as _read gives them)
        if kind == "actors":
            return listing.actor_rows_html(_actor_rows(cast("list[Actor]", records)))
        return listing.worker_rows_html(cast("list[Worker]", records))
    out: list[str] = []
    for record in records:
        if isinstance(record, Actor):
            html = listing.actor_rows_html(_actor_rows([record]))
            key = keys.actor_key(record.actor_id)
        else:
            html = listing.worker_rows_html([record])
            key = keys.worker_key(record.worker_namespace, record.worker_pool, record.worker_pod)
        values.append(f"{key}@{record.version}")
        value = escape(values[-1])
        cell = (
            f'        <td class="select"><input type="checkbox" name="target" value="{value}" form="bulk-form" '
            f'aria-label="select {escape(key)}"></td>\n'
        )
        cut = html.index(">\n", html.index("<tr")) + 2
        out.append(html[:cut] + cell + html[cut:])
    return mark_safe("".join(out))


def _page(request: AuthedHttpRequest, kind: str, data: QueryDict | None = None) -> HttpResponse:
    wanted, query = _wanted(kind, request.GET if data is None else data)
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
        "export_url": reverse(f"{kind[:-1]}_matches_export") + ("?" + urlencode(query) if query else ""),
        "max_results": walks.max_results,
    }
    state, result, error = job.state() if job is not None else ("none", None, None)
    context["state"], context["walk_error"] = state, error
    if state in ("running", "interrupted") and job is not None:
        context["progress"] = job.walk.progress()
        if wants_partial(request):  # the poll: the matches found so far fill in as the walk goes on
            records, _gone, _corrupt = _read(kind, job.walk.found(RUNNING_ROWS))
            context["rows_html"] = _rows_html(kind, records, False, [])
            context["rows"] = records
    elif state == "done" and job is not None and result is not None:
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
        page_targets: list[str] = []
        context["rows_html"] = _rows_html(kind, records, selectable, page_targets)
        context["page_targets"] = page_targets
        context["rows"] = records
        context["selectable"] = selectable
        context["bulk_actions"] = [(a, ACTIONS[a]) for a in KIND_ACTIONS[kind]]
    return render_page(request, "matches/page.html", "matches/_walk.html", context)


def _start(request: AuthedHttpRequest, kind: str) -> HttpResponse:
    """Starts the walk of the filters, or joins the one running or kept. A full walk costs the store
    a pass over every key, so: walking again ("fresh") is an editor's call, at most once per
    ATEDASH_REFRESH_INTERVAL for the fleet; a viewer gets the kept result, and starts a walk of new
    filters at most VIEWER_WALKS_PER_MINUTE times a minute (counted in the store, for the fleet)."""
    wanted, query = _wanted(kind, request.POST)
    app = current_app()
    operator = request.operator
    interval = settings.ATEDASH_REFRESH_INTERVAL
    fresh = request.POST.get("fresh") == "1"
    if fresh and not operator.can_edit:
        fresh = False
        messages.info(request, "Walking the store again is an editor's call: these are the kept matches.")
    elif fresh and not app.claim_refresh("walk-fresh"):
        fresh = False
        messages.info(request, f"A walk was started again less than {interval} s ago: these are the kept matches.")
    may_start = None
    if not operator.can_edit:

        def may_start() -> bool:
            walks = app.store.persistence().count_in_window(f"walk-start:{operator.name}", 60)
            return walks <= VIEWER_WALKS_PER_MINUTE

    job, _ = app.walks.start(kind, wanted, operator.name, fresh=fresh, may_start=may_start)
    if job is None:
        messages.info(
            request,
            f"You started {VIEWER_WALKS_PER_MINUTE} walks of the whole store within a minute: "
            "start this one in a moment.",
        )
    if getattr(request, "htmx", False):  # a list page's incident search: the walk's block in place
        return _page(request, kind, request.POST)
    return HttpResponseRedirect(_url(kind, query))


@require_http_methods(["GET", "POST"])
def actor_matches(request: AuthedHttpRequest) -> HttpResponse:
    return _start(request, "actors") if request.method == "POST" else _page(request, "actors")


@require_http_methods(["GET", "POST"])
def worker_matches(request: AuthedHttpRequest) -> HttpResponse:
    return _start(request, "workers") if request.method == "POST" else _page(request, "workers")


@require_GET
def matches_export(request: AuthedHttpRequest, kind: str) -> HttpResponse | StreamingHttpResponse:
    """The matches of the URL's filters as the backup's JSON lines (manage.py ate import reads them):
    the walk's keys (at most its max_results), read again now. Without a finished walk: the 404."""
    wanted, query = _wanted(kind, request.GET)
    job = current_app().walks.find(kind, wanted)
    state, result, _ = job.state() if job is not None else ("none", None, None)
    if state != "done" or result is None:
        return not_found(request, "No finished walk of these filters (results are kept 10 minutes): walk again.")
    from atedash.errors import too_many
    from atedash.exports import ExportRefused, attachment, take_lease

    p = persistence()
    # Bounded like the store's backup (atedash/exports.py): a cap per fleet and per operator.
    try:
        lease = take_lease(request, p, current_app().export_slots)
    except ExportRefused as exc:
        return too_many(request, exc.message)
    response = attachment(request, p, iter_keys_export(p, list(result.keys)), lease, kind, "matches")
    # A read: logged (stdout), never in the change stream, which it would push changes out of.
    scope = f"{kind} matching {urlencode(query) or 'everything'}"
    audit(request, "export", scope=scope, records=len(result.keys), stream=False)
    return response


def actor_matches_export(request: AuthedHttpRequest) -> HttpResponse | StreamingHttpResponse:
    return matches_export(request, "actors")


def worker_matches_export(request: AuthedHttpRequest) -> HttpResponse | StreamingHttpResponse:
    return matches_export(request, "workers")


@role_required("editor")
@require_POST
def cancel_walk(request: AuthedHttpRequest, job_id: str) -> HttpResponseRedirect:
    walks = current_app().walks
    walks.cancel(job_id)
    return HttpResponseRedirect(local_path(request.POST.get("next", "")))
