"""Login and logout (sessions: atedash/accounts/sessions.py; throttling: atedash/accounts/throttle.py)."""

from __future__ import annotations

import logging

from django.contrib import messages
from django.http import HttpResponse, HttpResponseRedirect
from django.middleware.csrf import rotate_token
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods, require_POST

from atedash.accounts import auth, sessions
from atedash.accounts.audit import audit
from atedash.accounts.forms import LoginForm
from atedash.accounts.operators import Operator
from atedash.core.links import local_path
from atedash.core.request import AuthedHttpRequest, HtmxHttpRequest

log = logging.getLogger(__name__)


def _next(request: HtmxHttpRequest, target: str) -> HttpResponseRedirect:
    """Where a login goes: ``next`` when it is a local path, else the overview (issue 22, L3)."""
    return HttpResponseRedirect(local_path(target, base=request.path))


@auth.login_exempt
@sensitive_post_parameters("password")
@csrf_protect
@never_cache
@require_http_methods(["GET", "POST"])
def login(request: HtmxHttpRequest) -> HttpResponse:
    next_url = request.POST.get("next") or request.GET.get("next") or ""
    if request.operator is not None and request.method == "GET":
        return _next(request, next_url)
    form = LoginForm(request.POST if request.method == "POST" else None)
    status = 200  # a refused login re-renders the form (200), as Django's LoginView does
    if request.method == "POST" and form.is_valid():
        operator, status = _authenticate(request, form)
        if operator is not None:
            sessions.start(request, operator, request.app)
            rotate_token(request)
            request.operator = operator
            audit(request, "login")
            return _next(request, next_url)
    try:
        no_operators = not request.app.users.load()
    except auth.UsersFileError:
        no_operators = False
    # The form carries ``next`` on only when it is a local path.
    context = {
        "form": form,
        "next": local_path(next_url, base=request.path) if next_url else "",
        "no_operators": no_operators,
    }
    return render(request, "login.html", context, status=status)


def _authenticate(request: HtmxHttpRequest, form: LoginForm) -> tuple[Operator | None, int]:
    """(the operator, 200) when name and password match; else (None, status) with the form's error.

    A locked name or address, or a process already busy checking passwords, is refused (429)
    before any password is hashed."""
    app = request.app
    name, ip = form.cleaned_data["username"], auth.client_ip(request)
    wait = app.throttle.locked_for(name, ip)
    if wait:
        form.add_error(None, f"Too many failed attempts. Try again in {wait} s.")
        return None, 429
    with app.throttle.password_check() as allowed:
        if not allowed:
            form.add_error(None, "Too many logins at once. Try again in a few seconds.")
            return None, 429
        try:
            operator = app.users.authenticate(name, form.cleaned_data["password"])
        except auth.UsersFileError as exc:
            log.error("%s", exc)
            form.add_error(None, "The operators file cannot be read; ask an administrator.")
            return None, 200
    if operator is None:
        app.throttle.failure(name, ip)
        log.info("failed login for %r from %s", name, ip)
        form.add_error(None, "Wrong name or password.")
        return None, 200
    app.throttle.success(name, ip)
    return operator, 200


@require_POST
def logout(request: AuthedHttpRequest) -> HttpResponse:
    """Ends the operator's sessions everywhere (a copy of the cookie stops working too)."""
    audit(request, "logout")
    if request.operator is not None and request.operator.source == "session":
        sessions.end_everywhere(request.operator.name, request.app)
    request.session.flush()
    messages.info(request, "Logged out (in every browser).")
    return redirect("login")
