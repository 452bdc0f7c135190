"""Helpers shared by the views: full page or HTMX partial, and a few lookups."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from django.shortcuts import render

from atedash.app import current_app
from atedash.request import AuthedHttpRequest

if TYPE_CHECKING:
    from django.http import HttpResponse

    from storage import DashboardState, Persistence


def wants_partial(request: AuthedHttpRequest) -> bool:
    """True for an HTMX request that swaps part of a page (not a boost, not a history restore)."""
    htmx = getattr(request, "htmx", None)
    return htmx is not None and bool(htmx) and not htmx.boosted and not htmx.history_restore_request


def render_page(
    request: AuthedHttpRequest, template: str, partial: str, context: dict[str, Any], status: int = 200
) -> HttpResponse:
    """The full page, or only `partial` (which lives next to the page template) for HTMX swaps."""
    return render(request, partial if wants_partial(request) else template, context, status=status)


def persistence() -> Persistence:
    """The process's Persistence, its calls timed for the Server-Timing header (atedash/timing.py):
    a TimedPersistence, which answers as the Persistence it wraps."""
    return cast("Persistence", current_app().store.timed())


def dashboard() -> DashboardState:
    """The process's DashboardState (audit, histories...), its calls timed as persistence()'s are."""
    return cast("DashboardState", current_app().store.timed_dashboard())


def scan_budget() -> dict[str, int | float | None]:
    """How far one list page scans: ATEDASH_SCAN_BUDGET keys, ATEDASH_SCAN_SECONDS of wall time."""
    from django.conf import settings

    return {"max_scan": settings.ATEDASH_SCAN_BUDGET, "max_seconds": settings.ATEDASH_SCAN_SECONDS}
