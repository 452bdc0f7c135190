"""Show all matches: the actor or worker list's filters walked over the whole store in the background.

GET shows the walk of the URL's filters: a button to start it when there is none, its progress while
it runs (an HTMX poll, and a meta refresh without JavaScript), then its matches page by page (signed
offsets into the walk's sorted keys). POST starts it (or joins the walk of the same filters already
running); POST .../cancel/ stops it. The walks live in the store, so that any process shows them
(atedash/background/matches.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpResponseRedirect, StreamingHttpResponse
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

import storage
from atedash.accounts.audit import audit
from atedash.accounts.auth import role_required
from atedash.core.links import local_path
from atedash.core.pages import dashboard, persistence, render_page, wants_partial
from atedash.core.request import AuthedHttpRequest
from atedash.records import cursors
from atedash.records.kinds import RecordPages
from storage.backup import iter_keys_export
from storage.bulk import ACTIONS
from storage.records import Record

if TYPE_CHECKING:
    from django.http import HttpResponse, QueryDict
    from django.utils.safestring import SafeString

    from atedash.background.matches import WalkJob
    from atedash.core.app import Application
    from storage.matches import WalkFilter

Pages = type[RecordPages]  # a record kind, as its pages see it
PAGE_SIZE = 100
RUNNING_ROWS = 50  # matches shown while a walk runs (each poll reads them again)
# New walks a viewer may start in a minute (a walk of filters already kept or running is joined,
# never counted); each one is a pass over every key of the store.
VIEWER_WALKS_PER_MINUTE = 6
FAST_POLL_S = 5.0  # a running walk's page polls every 250 ms until then, every second after


def _wanted(pages: Pages, data: QueryDict) -> tuple[WalkFilter, dict[str, str]]:
    values = pages.filter_form(data).values()
    query = {name: values[name] for name in pages.filter_params() if values[name]}
    return pages.walk_of(values), query


def _url(pages: Pages, query: dict[str, str], **extra: str) -> str:
    return reverse(pages.url_name("matches")) + ("?" + urlencode({**query, **extra}) if query or extra else "")


def _offset(job: WalkJob, signed: str) -> int:
    """The page's offset from its signed `at` parameter (0 without one); InvalidCursor when it was not
    signed for this very walk (another walk's link, an edited number): the 400 page."""
    if not signed:
        return 0
    job_id, _, offset = (cursors.unsign("matches", signed) or "").partition(":")
    if job_id != job.id or not offset.isdigit():
        raise storage.InvalidCursor(signed[:64], "this link belongs to another walk; start from its first page")
    return int(offset)


def _read(
    app: Application, pages: Pages, keys: list[str]
) -> tuple[list[Record], list[str], list[storage.CorruptEntry]]:
    """The records of a page of keys, one read per node; gone and corrupt ones said so."""
    return persistence(app).read_records(pages.kind, keys)


def _rows_html(pages: Pages, records: list[Record], selectable: bool, values: list[str]) -> SafeString:
    """The list's own rows (one source: listing.py's row of the kind); for admins each with a
    checkbox for bulk actions, its value the record's key and the version shown, also added to
    `values` (the page's records, for "on this page")."""
    if selectable:
        values.extend(f"{pages.kind.key_of(record)}@{record.version}" for record in records)
    return pages.rows_html(records, None, selectable=selectable)


def _page(request: AuthedHttpRequest, pages: Pages, data: QueryDict | None = None) -> HttpResponse:
    wanted, query = _wanted(pages, request.GET if data is None else data)
    walks = request.app.walks
    job = walks.find(pages.plural, wanted)
    busy = walks.running()
    context: dict[str, Any] = {
        "kind": pages.plural,
        "pages": pages,
        "query": query,
        "filters": [(k, v) for k, v in query.items()],
        "job": job,
        "busy": busy if busy is not None and (job is None or busy.id != job.id) else None,
        "list_url": reverse(pages.url_name("list")) + ("?" + urlencode(query) if query else ""),
        "self_url": _url(pages, query),
        "export_url": reverse(pages.url_name("matches_export")) + ("?" + urlencode(query) if query else ""),
        "max_results": walks.max_results,
    }
    state, result, error = job.state() if job is not None else ("none", None, None)
    context["state"], context["walk_error"] = state, error
    if state in ("running", "interrupted") and job is not None:
        context["progress"] = progress = job.walk.progress()
        # Quick polls in a walk's first seconds, when an incident search's match shows up.
        context["poll"] = "250ms" if progress.elapsed_s < FAST_POLL_S else "1s"
        if wants_partial(request):  # the poll: the matches found so far fill in as the walk goes on
            records, _gone, _corrupt = _read(request.app, pages, job.walk.found(RUNNING_ROWS))
            context["rows_html"] = _rows_html(pages, records, False, [])
            context["rows"] = records
    elif state == "done" and job is not None and result is not None:
        offset = min(_offset(job, request.GET.get("at", "")), max(0, len(result.keys) - 1))
        keys = result.keys[offset : offset + PAGE_SIZE]
        records, gone, corrupt = _read(request.app, pages, keys)
        following = offset + PAGE_SIZE
        context.update(
            {
                "result": result,
                "offset": offset,
                "first": offset + 1 if keys else 0,
                "last": offset + len(keys),
                "gone": gone,
                "corrupt": corrupt,
                "next_url": _url(pages, query, at=cursors.sign("matches", f"{job.id}:{following}"))
                if following < len(result.keys)
                else None,
                "prev_url": _url(pages, query, at=cursors.sign("matches", f"{job.id}:{max(0, offset - PAGE_SIZE)}"))
                if offset > 0
                else None,
            }
        )
        selectable = request.operator is not None and request.operator.is_admin
        page_targets: list[str] = []
        context["rows_html"] = _rows_html(pages, records, selectable, page_targets)
        context["page_targets"] = page_targets
        context["rows"] = records
        context["selectable"] = selectable
        context["bulk_actions"] = [(a, ACTIONS[a]) for a in pages.bulk_actions]
    return render_page(request, "matches/page.html", "matches/_progress.html", context)


def _start(request: AuthedHttpRequest, pages: Pages) -> HttpResponse:
    """Starts the walk of the filters, or joins the one running or kept. A full walk costs the store
    a pass over every key, so: walking again ("fresh") is an editor's call, at most once per
    ATEDASH_REFRESH_INTERVAL for the fleet; a viewer gets the kept result, and starts a walk of new
    filters at most VIEWER_WALKS_PER_MINUTE times a minute (counted in the store, for the fleet)."""
    wanted, query = _wanted(pages, request.POST)
    app = request.app
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
            walks = app.store.dashboard().count_in_window(f"walk-start:{operator.name}", 60)
            return walks <= VIEWER_WALKS_PER_MINUTE

    job, _ = app.walks.start(pages.plural, wanted, operator.name, fresh=fresh, may_start=may_start)
    if job is None:
        messages.info(
            request,
            f"You started {VIEWER_WALKS_PER_MINUTE} walks of the whole store within a minute: "
            "start this one in a moment.",
        )
    if getattr(request, "htmx", False):  # a list page's incident search: the walk's block in place
        return _page(request, pages, request.POST)
    return HttpResponseRedirect(_url(pages, query))


@require_http_methods(["GET", "POST"])
def record_matches(request: AuthedHttpRequest, pages: Pages) -> HttpResponse:
    """A kind's "all matches" page (the URL conf passes the kind, as for its other pages)."""
    return _start(request, pages) if request.method == "POST" else _page(request, pages)


@require_GET
def matches_export(request: AuthedHttpRequest, pages: Pages) -> HttpResponse | StreamingHttpResponse:
    """The matches of the URL's filters as the backup's JSON lines (manage.py ate import reads them):
    the walk's keys (at most its max_results), read again now. Without a finished walk: the 404."""
    kind = pages.plural
    wanted, query = _wanted(pages, request.GET)
    job = request.app.walks.find(kind, wanted)
    state, result, _ = job.state() if job is not None else ("none", None, None)
    if state != "done" or result is None:
        raise Http404("No finished walk of these filters (results are kept 10 minutes): walk again.")
    from atedash.core.error_pages import too_many
    from atedash.core.exports import ExportRefused, attachment, take_lease

    p = persistence(request.app)
    # Bounded like the store's backup (atedash/core/exports.py): a cap per fleet and per operator.
    try:
        lease = take_lease(request, dashboard(request.app), request.app.export_slots)
    except ExportRefused as exc:
        return too_many(request, exc.message)
    response = attachment(request, p, iter_keys_export(p, list(result.keys)), lease, kind, "matches")
    # A read: logged (stdout), never in the change stream, which it would push changes out of.
    scope = f"{kind} matching {urlencode(query) or 'everything'}"
    audit(request, "export", scope=scope, records=len(result.keys), stream=False)
    return response


@role_required("editor")
@require_POST
def cancel(request: AuthedHttpRequest, job_id: str) -> HttpResponseRedirect:
    walks = request.app.walks
    walks.cancel(job_id)
    return HttpResponseRedirect(local_path(request.POST.get("next", "")))
