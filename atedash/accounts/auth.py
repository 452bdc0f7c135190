"""Who is asking: the operator of a request (session or trusted proxy header), and view decorators.

There is no user database: `request.operator` is a small `Operator` built per request by
OperatorMiddleware, from the signed session (checked against the users file) or, opt-in, from a
header set by a trusted auth proxy.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.http.response import HttpResponseBase

from atedash.accounts import sessions
from atedash.accounts.operators import ROLE_RANK, ROLES, Operator, UsersFileError
from atedash.accounts.sessions import SESSION_KEY
from atedash.core.request import HtmxHttpRequest

__all__ = ["ROLES", "ROLE_RANK", "Operator", "UsersFileError", "SESSION_KEY"]

# A view function (decorated views keep their own signature); its response may stream (a download).
View = Callable[..., HttpResponseBase]
_V = TypeVar("_V", bound=Callable[..., HttpResponseBase])


# --- who is asking ---------------------------------------------------------------------------


def header_operator(request: HttpRequest) -> Operator | None:
    """The operator named by the trusted proxy header, when that is configured and present, on a
    request that came from a trusted proxy (from anyone else the header counts for nothing)."""
    header = settings.ATEDASH_TRUSTED_HEADER
    if not header or not from_trusted_proxy(request):
        return None
    name = request.headers.get(header, "").strip()
    if not name:
        return None
    role = settings.ATEDASH_TRUSTED_HEADER_DEFAULT_ROLE
    role_header = settings.ATEDASH_TRUSTED_HEADER_ROLE_HEADER
    if role_header:
        asked = request.headers.get(role_header, "").strip().lower()
        if asked:
            role = asked
    if role not in ROLE_RANK:
        role = "viewer"
    return Operator(name=name, role=role, source="header")


def session_operator(request: HtmxHttpRequest) -> Operator | None:
    """The operator of the signed session while it is valid (atedash/accounts/sessions.py), with the role the
    users file gives them now."""
    return sessions.operator_of(request, request.app)


def current_operator(request: HtmxHttpRequest) -> Operator | None:
    return header_operator(request) or session_operator(request)


# --- view decorators -------------------------------------------------------------------------


def login_exempt(view: _V) -> _V:
    """Marks a view as reachable without login (only /healthz, /readyz, the login page, static)."""
    view.login_exempt = True  # type: ignore[attr-defined]  # read back by OperatorMiddleware
    return view


def role_required(role: str) -> Callable[[View], View]:
    """The view needs at least `role`; others get the 403 page naming the role needed."""
    if role not in ROLE_RANK:
        raise ValueError(role)

    def decorator(view: View) -> View:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            operator = getattr(request, "operator", None)
            if operator is None or not operator.has_role(role):
                raise PermissionDenied(f"This needs the {role} role.")
            return view(request, *args, **kwargs)

        wrapped.required_role = role  # type: ignore[attr-defined]  # read back by tests of the URL conf
        return wrapped

    return decorator


# --- where the request comes from ------------------------------------------------------------


def from_trusted_proxy(request: HttpRequest) -> bool:
    """True when the request's peer is one of ATEDASH_TRUSTED_PROXIES (none by default): only then do
    the proxy's headers (user, role, client address) count."""
    try:
        peer = ipaddress.ip_address(request.META.get("REMOTE_ADDR", "").split("%")[0])
    except ValueError:
        return False
    return any(peer in network for network in settings.ATEDASH_TRUSTED_PROXIES)


def client_ip(request: HttpRequest) -> str:
    """The client's address (throttling, audit): REMOTE_ADDR, or, on a request from a trusted proxy
    that appends the client's address to a header (ATEDASH_CLIENT_IP_HEADER, e.g. X-Forwarded-For),
    the last address in that header (the one the proxy itself added; earlier ones come from the
    client). A value that is not an address is ignored."""
    remote = request.META.get("REMOTE_ADDR", "")
    header = settings.ATEDASH_CLIENT_IP_HEADER
    if header and from_trusted_proxy(request):
        last = request.headers.get(header, "").split(",")[-1].strip()
        try:
            return str(ipaddress.ip_address(last))
        except ValueError:
            return remote
    return remote
