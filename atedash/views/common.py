"""Helpers shared by the views: full page or HTMX partial, and a few lookups."""

from django.shortcuts import render

from atedash.app import current_app


def wants_partial(request):
    """True for an HTMX request that swaps part of a page (not a boost, not a history restore)."""
    htmx = getattr(request, "htmx", None)
    return bool(htmx) and not htmx.boosted and not htmx.history_restore_request


def render_page(request, template, partial, context, status=200):
    """The full page, or only `partial` (which lives next to the page template) for HTMX swaps."""
    return render(request, partial if wants_partial(request) else template, context, status=status)


def persistence():
    """The process's Persistence, its calls timed for the Server-Timing header (atedash/timing.py)."""
    return current_app().store.timed()


def scan_budget():
    """How far one list page scans: ATEDASH_SCAN_BUDGET keys, ATEDASH_SCAN_SECONDS of wall time."""
    from django.conf import settings

    return {"max_scan": settings.ATEDASH_SCAN_BUDGET, "max_seconds": settings.ATEDASH_SCAN_SECONDS}
