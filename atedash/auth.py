"""Who is asking: the operator of a request (session or trusted proxy header), and view decorators.

There is no user database: `request.operator` is a small `Operator` built per request by
OperatorMiddleware, from the signed session (checked against the users file) or, opt-in, from a
header set by a trusted auth proxy.
"""

from functools import wraps

from django.conf import settings

from atedash.app import current_app
from atedash.operators import ROLE_RANK, ROLES, Operator, UsersFileError

__all__ = ["ROLES", "ROLE_RANK", "Operator", "UsersFileError", "SESSION_KEY"]

SESSION_KEY = "operator"


# --- who is asking ---------------------------------------------------------------------------


def header_operator(request):
    """The operator named by the trusted proxy header, when that is configured and present."""
    header = settings.ATEDASH_TRUSTED_HEADER
    if not header:
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


def session_operator(request):
    """The operator of the signed session, with the role the users file gives them now."""
    name = request.session.get(SESSION_KEY)
    if not name:
        return None
    try:
        role = current_app().users.role_of(name)
    except UsersFileError:
        return None
    if role is None:  # removed from the file since logging in
        return None
    return Operator(name=name, role=role)


def current_operator(request):
    return header_operator(request) or session_operator(request)


# --- view decorators -------------------------------------------------------------------------


def login_exempt(view):
    """Marks a view as reachable without login (only /healthz, /readyz, the login page, static)."""
    view.login_exempt = True
    return view


def role_required(role):
    """The view needs at least `role`; others get the 403 page naming the role needed."""
    if role not in ROLE_RANK:
        raise ValueError(role)

    def decorator(view):
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            operator = getattr(request, "operator", None)
            if operator is None or not operator.has_role(role):
                from atedash.errors import forbidden

                return forbidden(request, f"This needs the {role} role.")
            return view(request, *args, **kwargs)

        wrapped.required_role = role
        return wrapped

    return decorator





def client_ip(request):
    """The address login throttling counts by: REMOTE_ADDR, or, behind a proxy that appends the
    client's address to a header (ATEDASH_CLIENT_IP_HEADER, e.g. X-Forwarded-For), the last address
    in that header (the one the proxy itself added; earlier ones come from the client)."""
    header = getattr(settings, "ATEDASH_CLIENT_IP_HEADER", "")
    if header:
        value = request.headers.get(header, "")
        last = value.split(",")[-1].strip() if value else ""
        if last:
            return last
    return request.META.get("REMOTE_ADDR", "")
