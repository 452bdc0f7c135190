"""The request as atedash's middleware leaves it, for views' signatures (as django-htmx's example app
types `request.htmx`): mypy then checks what views read from it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.http import HttpRequest
from django_htmx.middleware import HtmxDetails

if TYPE_CHECKING:
    from atedash.accounts.operators import Operator
    from atedash.core.app import Application


class HtmxHttpRequest(HttpRequest):
    """Any request: AppMiddleware sets ``app`` (the application object), django-htmx's middleware
    ``htmx``, OperatorMiddleware ``operator`` (None when nobody is signed in, as on the login page)."""

    app: Application
    htmx: HtmxDetails
    operator: Operator | None


class AuthedHttpRequest(HtmxHttpRequest):
    """A request OperatorMiddleware let through to a view that is not login-exempt: the operator
    is known."""

    operator: Operator
