"""Error pages: always the site's layout, never a traceback."""

from __future__ import annotations

from django.http import HttpResponse
from django.shortcuts import render

from atedash.request import HtmxHttpRequest


def bad_request(request: HtmxHttpRequest, exception: Exception | None = None) -> HttpResponse:
    return render(request, "errors/400.html", {"status_code": 400}, status=400)


def permission_denied(request: HtmxHttpRequest, exception: Exception | None = None) -> HttpResponse:
    message = str(exception) if exception and str(exception) else "You may not do this."
    return render(request, "errors/403.html", {"message": message, "status_code": 403}, status=403)


def page_not_found(request: HtmxHttpRequest, exception: Exception | None = None) -> HttpResponse:
    message = "No such page."
    if exception is not None and exception.args and isinstance(exception.args[0], str):
        message = exception.args[0]
    return render(request, "errors/404.html", {"message": message, "status_code": 404}, status=404)


def server_error(request: HtmxHttpRequest) -> HttpResponse:
    # Rendered without a request context on purpose: it must work even when a context processor fails.
    return render(request, "errors/500.html", {"status_code": 500}, status=500)


def csrf_failure(request: HtmxHttpRequest, reason: str = "") -> HttpResponse:
    return render(
        request,
        "errors/403.html",
        {
            "message": "The form expired or was not sent from this site (CSRF check failed). "
            "Go back, reload the page and try again.",
            "status_code": 403,
        },
        status=403,
    )
