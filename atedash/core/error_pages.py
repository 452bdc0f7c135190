"""The one place that turns errors into what an operator sees: one renderer per status.

Views raise Django's exceptions (BadRequest, or BadParameter for a query parameter;
PermissionDenied; Http404) and Django calls the handlers of atedash/urls.py, which are here;
StoreErrorMiddleware hands what else a view lets through to `handle_exception`:

* the store's client errors (the store unreachable, the cluster down, a timeout) -> the 503 page
  (or an HTMX fragment) naming the store address and the error; the page reloads itself.
* NotFound -> the 404 page.
* InvalidCursor (a page link whose cursor is forged, garbled or of another list) and BadParameter (a
  query parameter a view refuses) -> the 400 page (or an HTMX fragment) with a link to the first page.
* the other StorageErrors -> a form error on the right field when a form is involved
  (`add_form_error`), else an error page with the operator-readable message.
* UnreadableStored (a write refused, as the Go server's fails, on a record it cannot read) -> the
  409 error page with Go's reason and a link to the record's raw editor.
Nothing here ever shows a traceback.
"""

from __future__ import annotations

import logging
from types import ModuleType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from django.core.exceptions import BadRequest, PermissionDenied
from django.http import Http404
from django.shortcuts import render

from atedash.core.pages import wants_partial
from storage.errors import is_store_unavailable, is_store_unreachable

if TYPE_CHECKING:
    from django import forms
    from django.http import HttpRequest, HttpResponse

    from atedash.core.request import HtmxHttpRequest
    from storage import StorageError

log = logging.getLogger(__name__)


def _storage() -> ModuleType:
    import storage

    return storage


def storage_message(exc: BaseException) -> str:
    """An operator-readable sentence for a StorageError."""
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return message


def store_unavailable(request: HtmxHttpRequest, exc: BaseException) -> HttpResponse:
    """The 503 response for a store that is unreachable or refused a command (full page, or a
    fragment for HTMX requests)."""
    unreachable = is_store_unreachable(exc)
    error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    connection = request.app.store
    if unreachable:
        connection.connection_lost(error)
    log.warning("store %s failed on %s: %s", connection.address, request.path, error)
    if getattr(request, "operator", None) is None:
        error = "the store is not available"  # the details name hosts and ports: operators only
    context = {"store_error": error, "status_code": 503, "unreachable": unreachable}
    htmx = getattr(request, "htmx", None)
    if htmx:
        context["htmx_target"] = htmx.target
    template = "errors/_store_unavailable.html" if wants_partial(request) else "errors/503.html"
    response = render(request, template, context, status=503)
    response["Retry-After"] = "5"
    return response


class BadParameter(BadRequest):
    """A query parameter a view refuses: the 400 page, with a link to the page without it.
    ``detail`` goes to the log only."""

    def __init__(self, param: str, message: str, detail: str | None = None) -> None:
        super().__init__(message)
        self.param = param
        self.message = message
        self.detail = detail


INVALID_LINK = "This page link is not valid: it was changed, cut short, or made for another list."


def bad_request(request: HtmxHttpRequest, exception: Exception | None = None) -> HttpResponse:
    """handler400: the 400 page. A BadRequest says what is wrong; a BadParameter also links to
    the first page (the same URL without the parameter), as a fragment for HTMX swaps. Django's
    other 400s (SuspiciousOperation) say nothing of what they found."""
    context: dict[str, Any] = {"status_code": 400}
    template = "errors/400.html"
    if isinstance(exception, BadParameter):
        param = exception.param
        log.info("bad %s on %s: %s", param, request.path, exception.detail or exception.message)
        kept = [(k, v) for k, values in request.GET.lists() if k != param for v in values]
        context["first_page_url"] = request.path + ("?" + urlencode(kept) if kept else "")
        if wants_partial(request):
            context["htmx_target"] = request.htmx.target
            template = "errors/_bad_request.html"
    if isinstance(exception, BadRequest) and exception.args and isinstance(exception.args[0], str):
        context["message"] = exception.args[0]
    return render(request, template, context, status=400)


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """handler403 (and the CSRF failure view): the 403 page with the exception's message."""
    message = str(exception) if exception and str(exception) else "You may not do this."
    return render(request, "errors/403.html", {"message": message, "status_code": 403}, status=403)


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """handler404: the 404 page with the message an Http404 was raised with (a URL that matches
    nothing raises one with the patterns tried: not shown)."""
    message = "No such page."
    if exception is not None and exception.args and isinstance(exception.args[0], str):
        message = exception.args[0]
    return render(request, "errors/404.html", {"message": message, "status_code": 404}, status=404)


def server_error(request: HttpRequest) -> HttpResponse:
    # Rendered without a request context on purpose: it must work even when a context processor fails.
    return render(request, "errors/500.html", {"status_code": 500}, status=500)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    return permission_denied(
        request,
        PermissionDenied(
            "The form expired or was not sent from this site (CSRF check failed). "
            "Go back, reload the page and try again."
        ),
    )


def too_many(request: HttpRequest, message: str, retry_after: int = 60) -> HttpResponse:
    response = render(request, "errors/429.html", {"message": message, "status_code": 429}, status=429)
    response["Retry-After"] = str(retry_after)
    return response


def storage_error_page(request: HttpRequest, exc: StorageError, status: int = 409) -> HttpResponse:
    storage = _storage()
    title = {
        storage.VersionConflict: "The record changed meanwhile",
        storage.FailedPrecondition: "Not allowed in the record's current state",
        storage.ImmutableField: "That field cannot change",
        storage.CorruptRecord: "The stored record is corrupt",
        storage.AlreadyExists: "The record exists already",
        storage.UnreadableByServer: "The ate server could not read that",
        storage.UnreadableStored: "The ate server cannot read this record",
    }.get(type(exc), "The store refused this")
    context = {
        "title": title,
        "message": storage_message(exc),
        "key": getattr(exc, "key", None),
        "preview": getattr(exc, "preview", None),
        "status_code": status,
    }
    if isinstance(exc, storage.UnreadableStored):
        # Go's same call fails on it too: say so in its words; the raw editor mends it.
        context["unreadable"] = {"reason": exc.reason, "call": exc.call, "go_error": exc.go_error}
    return render(request, "errors/storage_error.html", context, status=status)


def handle_exception(request: HtmxHttpRequest, exc: BaseException) -> HttpResponse | None:
    """Response for an exception a view let through, or None to let Django handle it."""
    if is_store_unavailable(exc):
        return store_unavailable(request, exc)
    # Django's own handling of these logs a traceback; the page is all an operator needs.
    if isinstance(exc, BadRequest):
        return bad_request(request, exc)
    if isinstance(exc, PermissionDenied):
        return permission_denied(request, exc)
    if isinstance(exc, Http404):
        return page_not_found(request, exc)
    storage = _storage()
    if isinstance(exc, storage.InvalidCursor):
        return bad_request(request, BadParameter("cursor", INVALID_LINK, detail=exc.reason))
    if isinstance(exc, storage.NotFound):
        return page_not_found(request, Http404(storage_message(exc)))
    if isinstance(exc, storage.CorruptRecord):
        return storage_error_page(request, exc, status=422)
    if isinstance(exc, storage.StorageError):
        return storage_error_page(request, exc, status=409)
    return None


def add_form_error(form: forms.BaseForm, exc: StorageError, *, id_field: str | None = None) -> None:
    """Puts a StorageError on the form where the operator will look for it."""
    storage = _storage()
    message = storage_message(exc)
    if isinstance(exc, (storage.AlreadyExists, storage.UnreadableByServer)) and id_field:
        form.add_error(id_field, message)
    elif isinstance(exc, storage.ImmutableField):
        field = getattr(exc, "field", None)
        form.add_error(field if field in form.fields else None, message)
    else:
        form.add_error(None, message)
