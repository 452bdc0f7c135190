"""Who is asking: OperatorMiddleware sets request.operator and sends anyone not signed in to login."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.http import HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import urlencode
from django_htmx.http import HttpResponseClientRedirect

from atedash.accounts import auth
from atedash.core.middleware import GetResponse
from atedash.core.request import HtmxHttpRequest


class OperatorMiddleware:
    """Sets request.operator and sends anyone not logged in to the login page.

    Login is required for every view unless it is marked with @auth.login_exempt; a test walks
    the URL conf to keep it that way.
    """

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response

    def __call__(self, request: HtmxHttpRequest) -> HttpResponseBase:
        request.operator = auth.current_operator(request)
        return self.get_response(request)

    def process_view(
        self,
        request: HtmxHttpRequest,
        view_func: Callable[..., HttpResponseBase],
        view_args: tuple[Any, ...],
        view_kwargs: dict[str, Any],
    ) -> HttpResponse | None:
        if getattr(view_func, "login_exempt", False) or request.operator is not None:
            return None
        login_url = reverse("login") + "?" + urlencode({"next": request.get_full_path()})
        if getattr(request, "htmx", False):
            return HttpResponseClientRedirect(login_url)
        return redirect(login_url)
