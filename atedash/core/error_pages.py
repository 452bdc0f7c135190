"""The one place that turns storage and store errors into what an operator sees.

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
from typing import TYPE_CHECKING, NoReturn
from urllib.parse import urlencode

from django.http import Http404
from django.shortcuts import render

from atedash.core.app import current_app
from storage.errors import is_store_unavailable, is_store_unreachable

if TYPE_CHECKING:
    from django import forms
    from django.http import HttpRequest, HttpResponse

    from storage import StorageError

log = logging.getLogger(__name__)


def _storage() -> ModuleType:
    import storage

    return storage


def storage_message(exc: BaseException) -> str:
    """An operator-readable sentence for a StorageError."""
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return message


def store_unavailable(request: HttpRequest, exc: BaseException) -> HttpResponse:
    """The 503 response for a store that is unreachable or refused a command (full page, or a
    fragment for HTMX requests)."""
    unreachable = is_store_unreachable(exc)
    error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    connection = current_app().store
    if unreachable:
        connection.connection_lost(error)
    log.warning("store %s failed on %s: %s", connection.address, request.path, error)
    if getattr(request, "operator", None) is None:
        error = "the store is not available"  # the details name hosts and ports: operators only
    context = {"store_error": error, "status_code": 503, "unreachable": unreachable}
    htmx = getattr(request, "htmx", None)
    if htmx:
        context["htmx_target"] = htmx.target
    template = "errors/_store_unavailable.html" if _is_htmx_fragment(request) else "errors/503.html"
    response = render(request, template, context, status=503)
    response["Retry-After"] = "5"
    return response


class BadParameter(Exception):
    """A query parameter a view refuses: the 400 page, with a link to the page without it."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(message)
        self.param = param
        self.message = message


INVALID_LINK = "This page link is not valid: it was changed, cut short, or made for another list."


def bad_request(request: HttpRequest, message: str, param: str, detail: str | None = None) -> HttpResponse:
    """The 400 page (a fragment for HTMX swaps) saying what is wrong, linking to the first page:
    the same URL without `param`. `detail` goes to the log only."""
    log.info("bad %s on %s: %s", param, request.path, detail or message)
    kept = [(k, v) for k, values in request.GET.lists() if k != param for v in values]
    first_page_url = request.path + ("?" + urlencode(kept) if kept else "")
    context = {"message": message, "first_page_url": first_page_url, "status_code": 400}
    htmx = getattr(request, "htmx", None)
    if htmx:
        context["htmx_target"] = htmx.target
    template = "errors/_bad_request.html" if _is_htmx_fragment(request) else "errors/400.html"
    return render(request, template, context, status=400)


def not_found(request: HttpRequest, message: str = "No such record.") -> HttpResponse:
    return render(request, "errors/404.html", {"message": message, "status_code": 404}, status=404)


def forbidden(request: HttpRequest, message: str = "You may not do this.") -> HttpResponse:
    return render(request, "errors/403.html", {"message": message, "status_code": 403}, status=403)


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


def handle_exception(request: HttpRequest, exc: BaseException) -> HttpResponse | None:
    """Response for an exception a view let through, or None to let Django handle it."""
    if is_store_unavailable(exc):
        return store_unavailable(request, exc)
    if isinstance(exc, BadParameter):
        return bad_request(request, exc.message, exc.param)
    storage = _storage()
    if isinstance(exc, storage.InvalidCursor):
        return bad_request(request, INVALID_LINK, "cursor", detail=exc.reason)
    if isinstance(exc, storage.NotFound):
        return not_found(request, storage_message(exc))
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


def raise_404(exc: BaseException) -> NoReturn:
    raise Http404(storage_message(exc)) from exc


def _is_htmx_fragment(request: HttpRequest) -> bool:
    htmx = getattr(request, "htmx", None)
    return htmx is not None and bool(htmx) and not htmx.boosted and not htmx.history_restore_request


# Django's handlers (handler400/403/404/500 in atedash/urls.py, CSRF_FAILURE_VIEW).


def bad_request_page(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return render(request, "errors/400.html", {"status_code": 400}, status=400)


def permission_denied_page(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    message = str(exception) if exception and str(exception) else "You may not do this."
    return render(request, "errors/403.html", {"message": message, "status_code": 403}, status=403)


def page_not_found_page(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    message = "No such page."
    if exception is not None and exception.args and isinstance(exception.args[0], str):
        message = exception.args[0]
    return render(request, "errors/404.html", {"message": message, "status_code": 404}, status=404)


def server_error_page(request: HttpRequest) -> HttpResponse:
    # Rendered without a request context on purpose: it must work even when a context processor fails.
    return render(request, "errors/500.html", {"status_code": 500}, status=500)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
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
