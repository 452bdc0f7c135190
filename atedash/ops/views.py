"""Operations pages: the consistency check and its repairs, the backup download, the audit trail, /metrics."""

from __future__ import annotations

import hmac
import json
import re
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.contrib import messages
from django.core import signing
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_GET, require_http_methods
from prometheus_client.exposition import choose_encoder

from atedash.accounts.audit import CORE_FIELDS, audit, bounded, is_digest, recent, shown
from atedash.accounts.auth import login_exempt, role_required
from atedash.core.error_pages import BadParameter
from atedash.core.pages import dashboard, persistence, render_page
from atedash.core.request import AuthedHttpRequest, HtmxHttpRequest

if TYPE_CHECKING:
    from django.http.response import HttpResponseBase

    from atedash.accounts.operators import Operator
    from storage.check import Finding, Repair

REPAIR_SALT = "atedash.ops.repair"
AUDIT_PAGE_SIZE = 100
MAX_ROWS = 500  # findings listed on the page (per kind filter); the counts table has them all


def sign_repair(repair: Repair) -> str:
    return signing.dumps(repair.to_dict(), salt=REPAIR_SALT, compress=True)


def load_repair(token: str) -> Repair | None:
    """The Repair a confirmation form carries; None when the token is not one we signed."""
    from storage.check import Repair

    try:
        return Repair.from_dict(signing.loads(token, salt=REPAIR_SALT))
    except (signing.BadSignature, ValueError, TypeError, KeyError):
        return None


def required_role(repair: Repair) -> str:
    """Repairs are record edits (editor); releasing a lock stays an admin's, as on the Locks page."""
    return "admin" if repair.action == "release_lock" else "editor"


def _finding_rows(findings: Iterable[Finding], operator: Operator | None) -> list[dict[str, Any]]:
    rows = []
    for finding in findings:
        repair = finding.repair
        allowed = repair is not None and operator is not None and operator.has_role(required_role(repair))
        rows.append(
            {
                "finding": finding,
                "repair_token": sign_repair(repair) if repair is not None and allowed else None,
                "repair_role": required_role(repair) if repair is not None else None,
            }
        )
    return rows


finding_rows = _finding_rows  # a record's page lists its findings the same way (atedash/records/kinds.py)


# --- consistency check -----------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
def check_page(request: AuthedHttpRequest) -> HttpResponseBase:
    """The last check's findings; "Run the check now" (a POST, editors) starts a new one."""
    htmx = getattr(request, "htmx", False)
    checks = request.app.checks
    if request.method == "POST":
        return _run_check(request)
    if not htmx:
        # An editor opening the page checks the store as it is now, at most once per
        # ATEDASH_REFRESH_INTERVAL for the whole fleet; anyone else (and an editor meanwhile) gets the
        # kept report, rechecked only when a change was made through atedash or it is older than
        # ATEDASH_CHECK_MAX_AGE: a viewer cannot keep a full check running. A small store checks in
        # well under a second: shown at once.
        can_force = request.operator is not None and request.operator.can_edit
        if can_force and request.app.claim_refresh("check"):
            checks.refresh()
        else:
            checks.ensure_fresh()
        wait = settings.ATEDASH_MAX_WAIT if request.GET.get("wait") else settings.ATEDASH_CHECK_WAIT
        checks.wait(timeout=min(wait, settings.ATEDASH_MAX_WAIT))
    report, envelope, error, running = checks.state(start_if_due=True)
    kind = request.GET.get("kind") or ""
    can_repair = request.operator is not None and request.operator.can_edit
    findings = [f for f in report.findings if not kind or f.kind == kind] if report is not None else []
    shown = findings[:MAX_ROWS]
    rows = _finding_rows(shown, request.operator)
    from storage.check import KIND_TITLES, KINDS

    context = {
        "report": report,
        "error": error,
        "running": running,
        "rows": rows,
        "hidden": len(findings) - len(shown),
        "kind": kind,
        "kinds": [(k, KIND_TITLES[k], report.counts.get(k, 0) if report else 0) for k in KINDS],
        "age": checks.age(envelope),
        "finished_at": checks.finished_at_of(envelope),
        "maker": str(envelope.get("maker", ""))[:200],
        "interrupted": checks.interrupted(),
        "can_repair": can_repair,
    }
    return render_page(request, "ops/check.html", "ops/_check_results.html", context)


@role_required("editor")
@require_http_methods(["GET", "POST"])
def repair(request: AuthedHttpRequest) -> HttpResponseBase:
    """GET: the exact change, and whether it still applies; POST: re-check and apply it."""
    from storage.check import RepairNotApplicable
    from storage.errors import UnreadableStored, VersionConflict

    token = request.POST.get("repair") if request.method == "POST" else request.GET.get("r")
    repair_obj = load_repair(token or "")
    if repair_obj is None:
        return render(request, "ops/repair.html", {"invalid": True}, status=400)
    role = required_role(repair_obj)
    if not request.operator.has_role(role):
        raise PermissionDenied(f"This repair needs the {role} role.")
    p = persistence(request.app)
    context: dict[str, Any] = {"repair": repair_obj, "token": token, "changes": repair_obj.changes(), "error": None}
    if request.method == "GET":
        try:
            repair_obj.verify(p)
            context["applies"] = True
        except RepairNotApplicable as exc:
            context["applies"] = False
            context["error"] = exc.message
        return render(request, "ops/repair.html", context, status=200 if context["applies"] else 409)
    try:
        result = repair_obj.apply(p)
    except RepairNotApplicable as exc:
        context.update(applies=False, error=exc.message)
        audit(request, f"repair.{repair_obj.action}.refused", key=repair_obj.key, reason=exc.message)
        return render(request, "ops/repair.html", context, status=409)
    except VersionConflict as exc:
        context.update(applies=False, error=f"{exc.message}. Nothing was written; run the check again.")
        audit(request, f"repair.{repair_obj.action}.refused", key=repair_obj.key, reason=exc.message)
        return render(request, "ops/repair.html", context, status=409)
    except UnreadableStored as exc:  # the error page (atedash/core/error_pages.py): Go's reason, the raw editor
        audit(request, f"repair.{repair_obj.action}.refused", key=repair_obj.key, reason=exc.message)
        raise
    audit(
        request,
        f"repair.{repair_obj.action}",
        key=result["key"],
        version_before=result["version_before"],
        version_after=result["version_after"],
        changed_fields=result["changed_fields"],
    )
    request.app.records_changed(recount=True)
    messages.success(request, f"Repaired {result['key']}: {repair_obj.title.lower()}.")
    return redirect(reverse("ops_check"))


@role_required("editor")
def _run_check(request: AuthedHttpRequest) -> HttpResponseBase:
    if request.app.claim_refresh("check"):
        request.app.checks.refresh()
    else:
        messages.info(
            request,
            f"A check started less than {settings.ATEDASH_REFRESH_INTERVAL} s ago; "
            "its findings are shown as soon as it is done.",
        )
    return redirect(reverse("ops_check"))  # the GET shows it (post/redirect/get)


# --- backup ----------------------------------------------------------------------------------


@require_GET
def export_download(request: AuthedHttpRequest) -> HttpResponseBase:
    """Every actor and worker as JSON lines, streamed (constant memory), bounded (atedash/core/exports.py)."""
    from atedash.core.error_pages import too_many
    from atedash.core.exports import ExportRefused, attachment, take_lease
    from storage.backup import iter_export

    p = persistence(request.app)
    if not p.ping():  # fail here (503 page) rather than in the middle of a download
        from storage import StoreUnreachable

        raise StoreUnreachable(f"{p.address} does not answer PING")
    try:
        lease = take_lease(request, dashboard(request.app), request.app.export_slots)
    except ExportRefused as exc:
        return too_many(request, exc.message)
    response = attachment(request, p, iter_export(p), lease)
    # A read: logged (stdout), never in the change stream, which it would push changes out of.
    audit(request, "export", stream=False)
    return response


@require_GET
def backup_page(request: AuthedHttpRequest) -> HttpResponse:
    return render(request, "ops/backup.html", {})


# --- audit trail -----------------------------------------------------------------------------


_STREAM_ID = re.compile(r"([0-9]{1,20})(?:-([0-9]{1,20}))?")


def parse_stream_id(value: str | None) -> str | None:
    """`value` as a stream id ("ms-seq" or "ms"), None when empty; BadParameter (the 400 page) when it
    is not one: the store would refuse it (a 503 page) or read it as something else."""
    if not value:
        return None
    match = _STREAM_ID.fullmatch(value)
    if match is None or any(int(part) >= 2**64 for part in match.groups() if part is not None):
        raise BadParameter(
            "before", "The audit page link is not valid: 'before' must be an entry id such as 1700000000000-0."
        )
    return value


AUDIT_FILTERS = ("operator", "key", "action")
AUDIT_SEARCH_BUDGET = 10_000  # entries one filtered audit page looks at, at most ("look further" goes on)


def audit_filter(values: dict[str, str]) -> Callable[[dict], bool] | None:
    """The entry test of the audit page's filters (None: no filter): operator and key as typed, action
    as typed or as a prefix ("actor" matches actor.update)."""
    operator, key, action = (values[name] for name in AUDIT_FILTERS)
    if not (operator or key or action):
        return None

    def wanted(entry: dict) -> bool:
        who = entry.get("who") or entry.get("operator")
        did = str(entry.get("action") or "")
        return (
            (not operator or who == operator)
            and (not key or entry.get("key") == key)
            and (not action or did == action or did.startswith(action + "."))
        )

    return wanted


@require_GET
def audit_page(request: AuthedHttpRequest) -> HttpResponse:
    before = parse_stream_id(request.GET.get("before"))
    values = {name: request.GET.get(name, "")[:4096] for name in AUDIT_FILTERS}
    wanted = audit_filter(values)
    state = dashboard(request.app)
    examined = None
    if wanted is None:
        entries = recent(request.app, AUDIT_PAGE_SIZE + 1, before=before)
        more = len(entries) > AUDIT_PAGE_SIZE
        entries = entries[:AUDIT_PAGE_SIZE]
        next_before = entries[-1][0] if more and entries else None
    else:
        entries, next_before, examined = state.search_audit(wanted, AUDIT_PAGE_SIZE, before, budget=AUDIT_SEARCH_BUDGET)
    rows = [{"id": sid, **_entry_row(entry)} for sid, entry in entries]
    length, oldest = state.audit_reach()
    context = {
        "rows": rows,
        "next_before": next_before,
        "before": before,
        "values": values,
        "filtered": wanted is not None,
        "examined": examined,
        "reach": {"entries": length, "oldest": _stream_time(oldest), "maxlen": settings.ATEDASH_AUDIT_MAXLEN},
    }
    return render_page(request, "ops/audit.html", "ops/_audit_table.html", context)


def _stream_time(stream_id: str | None) -> str | None:
    """The UTC time a stream id was made at ("2026-11-30 17:05:01")."""
    if not stream_id:
        return None
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(int(stream_id.partition("-")[0]) / 1000))


_SHOWN = {*CORE_FIELDS, "changed_fields"}


_LINES = ("restore_line", "written_line")  # a raw write's bytes before and after, as export lines
_NO_RECORD_CHANGE = {
    "login": "signing in changes no record",
    "logout": "signing out changes no record",
    "export": "an export reads records and changes none",
    "bulk": "a summary: each record changed has an entry of its own",
    "reset": "a summary: each record changed has an entry of its own",
    "flush": "a flush removes whole keys; the counts are in the details",
    "import": "a summary: the counts are in the details",
}


def _record_of(line: Any) -> dict[str, Any] | None:
    """The decoded fields of an export line (None when it is absent or did not decode)."""
    if not isinstance(line, str):
        return None
    try:
        record = json.loads(line).get("record")
    except (ValueError, AttributeError):
        return None
    return record if isinstance(record, dict) else None


def _diff_or_why(entry: dict[str, Any], changed: dict[str, Any]) -> tuple[list[Any], str]:
    """(field changes, "") or ([], why there are none): a raw write's changes come from its bytes
    before and after (their decoded fields), when both decode."""
    if changed:
        return sorted(changed.items()), ""
    action = str(entry.get("action") or "")
    if isinstance(entry.get("restore_line"), str):
        before, after = _record_of(entry.get("restore_line")), _record_of(entry.get("written_line"))
        if entry.get("written_line") is None:
            return [], "the whole record was deleted: its bytes are in restore_line"
        if before is None or after is None:
            which = "before" if before is None else "after"
            return [], f"no field diff: the record did not decode {which}; its bytes are in the details"
        names = sorted(set(before) | set(after))
        diff = [(n, [before.get(n), after.get(n)]) for n in names if before.get(n) != after.get(n)]
        return diff, "" if diff else "no field changed: only the stored bytes' form did (see the details)"
    if is_digest(entry.get("restore_line")) or is_digest(entry.get("written_line")):
        return [], "no field diff: the values were too big to keep in the audit (their digests are in the details)"
    for prefix, why in _NO_RECORD_CHANGE.items():
        if action == prefix or action.startswith(prefix + "."):
            return [], why
    if action.endswith(".refused"):
        return [], "refused: nothing changed"
    if action.startswith("lock."):
        return [], "a lock has no fields: its holder is in the details"
    return [], "no field changes were recorded for this action"


def _entry_row(entry: dict[str, Any]) -> dict[str, Any]:
    entry = bounded(entry)  # entries written before entries were bounded, too
    # Lines kept whole are shown apart; a line too big for the audit is a digest among the details.
    extra = {k: shown(v) for k, v in entry.items() if k not in _SHOWN and not (k in _LINES and isinstance(v, str))}
    changed = entry.get("changed_fields")
    if not isinstance(changed, dict):
        changed = {}
    changed = {
        name: [shown(v) for v in pair] if isinstance(pair, list) else shown(pair) if is_digest(pair) else pair
        for name, pair in changed.items()
    }
    diff, why = _diff_or_why(entry, changed)
    return {
        "when": entry.get("when") or entry.get("ts"),
        "who": entry.get("who") or entry.get("operator"),
        "role": entry.get("role"),
        "action": entry.get("action"),
        "key": entry.get("key"),
        "version_before": entry.get("version_before"),
        "version_after": entry.get("version_after"),
        "changed": diff,
        "no_diff": why,
        "extra": sorted(extra.items()),
        "lines": [(name, entry[name]) for name in _LINES if isinstance(entry.get(name), str)],
    }


def _bearer_ok(request: HtmxHttpRequest) -> bool | None:
    token = settings.ATEDASH_METRICS_TOKEN
    header = request.headers.get("Authorization", "")
    if not token or not header.startswith("Bearer "):
        return None  # no token configured or none presented
    return hmac.compare_digest(header[len("Bearer ") :].strip().encode(), token.encode())


@login_exempt
@require_GET
def metrics(request: HtmxHttpRequest) -> HttpResponseBase:
    bearer = _bearer_ok(request)
    if bearer is False:
        response = HttpResponse("invalid metrics token\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="atedash metrics"'
        return response
    if bearer is None and getattr(request, "operator", None) is None:
        # Like every other page: to the login page.
        return redirect(reverse("login") + "?" + urlencode({"next": request.get_full_path()}))
    # Prometheus text format 0.0.4 by default; OpenMetrics when the scraper asks for it.
    encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
    return HttpResponse(encoder(request.app.metrics.scrape_registry), content_type=content_type)
