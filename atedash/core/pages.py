"""Helpers shared by the views: full page or HTMX partial, and a few lookups."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from django.http import HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse

from atedash.core.request import AuthedHttpRequest, HtmxHttpRequest

if TYPE_CHECKING:
    from django.http import HttpRequest, HttpResponse

    from atedash.core.app import Application
    from storage import DashboardState, Persistence


def wants_partial(request: HtmxHttpRequest) -> bool:
    """True for an HTMX request that swaps part of a page (not a boost, not a history restore)."""
    htmx = getattr(request, "htmx", None)
    return htmx is not None and bool(htmx) and not htmx.boosted and not htmx.history_restore_request


def render_page(
    request: AuthedHttpRequest, template: str, partial: str, context: dict[str, Any], status: int = 200
) -> HttpResponse:
    """The full page, or only `partial` (which lives next to the page template) for HTMX swaps."""
    return render(request, partial if wants_partial(request) else template, context, status=status)


def persistence(app: Application) -> Persistence:
    """The application's Persistence, its calls timed for the Server-Timing header (atedash/core/timing.py):
    a TimedPersistence, which answers as the Persistence it wraps."""
    return cast("Persistence", app.store.timed())


def dashboard(app: Application) -> DashboardState:
    """The application's DashboardState (audit, histories...), its calls timed as persistence()'s are."""
    return cast("DashboardState", app.store.timed_dashboard())


def scan_budget() -> dict[str, int | float | None]:
    """How far one list page scans: ATEDASH_SCAN_BUDGET keys, ATEDASH_SCAN_SECONDS of wall time."""
    from django.conf import settings

    return {"max_scan": settings.ATEDASH_SCAN_BUDGET, "max_seconds": settings.ATEDASH_SCAN_SECONDS}


class PermanentRedirect(HttpResponseRedirect):
    """308: like 301, but the browser repeats the method and body (a POST stays a POST)."""

    status_code = 308


def moved_to(url_name: str) -> Callable[..., HttpResponseRedirect]:
    """A view for a feature's old path: to its `url_name`, with the same arguments and query."""

    def moved(request: HttpRequest, **kwargs: str) -> HttpResponseRedirect:
        query = request.META.get("QUERY_STRING", "")
        return PermanentRedirect(reverse(url_name, kwargs=kwargs) + (f"?{query}" if query else ""))

    return moved
