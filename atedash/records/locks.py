"""Locks: every lock:* key with its holder token and TTL; force-release for admins."""

from django.conf import settings
from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from atedash.accounts.audit import audit
from atedash.accounts.auth import role_required
from atedash.core.pages import persistence, render_page, scan_budget
from atedash.core.request import AuthedHttpRequest
from atedash.records import cursors
from atedash.records.forms import LockFilterForm, LockReleaseForm


@require_GET
def lock_list(request: AuthedHttpRequest) -> HttpResponse:
    form = LockFilterForm(request.GET)
    values = form.values()
    # A cursor that is not valid raises storage.InvalidCursor: the 400 page (atedash/core/error_pages.py).
    p = persistence(request.app)
    # Its own key budget: a page without locks examines all of it (storage/sparse.py).
    budget = {**scan_budget(), "max_scan": settings.ATEDASH_LOCK_SCAN_BUDGET}
    page = cursors.scan("locks", p.scan_locks, values["cursor"], limit=values["size"], **budget)
    # The check's stale rule on this page's locks (their actors read in one batch).
    states = p.lock_states(page.records, settings.ATEDASH_STALE_LOCK_SECONDS)
    context = {
        "form": form,
        "values": values,
        "page": page,
        "rows": [(lock, states.get(lock.key)) for lock in page.records],
        "stale_after": settings.ATEDASH_STALE_LOCK_SECONDS,
        "refresh": values["refresh"] == "5",
        "on_first_page": not values["cursor"],
    }
    return render_page(request, "locks/list.html", "locks/_table.html", context)


@role_required("admin")
@require_http_methods(["GET", "POST"])
def lock_release(request: AuthedHttpRequest) -> HttpResponse:
    """GET: confirmation naming the key and the token shown; POST: release only that token."""
    form = LockReleaseForm(request.POST if request.method == "POST" else request.GET)
    if not form.is_valid():
        return render(request, "locks/release.html", {"form": form, "lock": None}, status=400)
    key, token = form.cleaned_data["key"], form.cleaned_data["token"]
    p = persistence(request.app)
    if request.method == "GET":
        lock = p.get_lock(key)
        return render(request, "locks/release.html", {"form": form, "key": key, "token": token, "lock": lock})
    p.get_lock(key)  # CorruptRecord (the 422 page) when the key is not a lock at all
    p.release_lock(key, token)
    after = p.get_lock(key)
    if after is None:
        outcome = "released"
        messages.success(request, f"Lock {key} released (token {token}).")
    elif after.token != token:
        outcome = "kept: taken again by another holder"
        messages.warning(request, f"Lock {key} is now held by another token ({after.token}); it was left in place.")
    else:
        outcome = "still held"
        messages.error(request, f"Lock {key} is still held by {token}.")
    audit(
        request,
        "lock.release",
        key=key,
        token=token,
        outcome=outcome,
        changed_fields={"holder": [token, None]} if outcome == "released" else {},
    )
    if outcome == "released":
        request.app.records_changed()
    return redirect("lock_list")
