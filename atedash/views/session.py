"""Login and logout: a signed-cookie session holding the operator's name."""

import logging

from django.contrib import messages
from django.middleware.csrf import rotate_token
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods, require_POST

from atedash import auth
from atedash.app import current_app
from atedash.audit import audit
from atedash.forms import LoginForm

log = logging.getLogger(__name__)


def _safe_next(request, target):
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return reverse("overview")


@auth.login_exempt
@sensitive_post_parameters("password")
@csrf_protect
@never_cache
@require_http_methods(["GET", "POST"])
def login(request):
    next_url = request.POST.get("next") or request.GET.get("next") or ""
    if request.operator is not None and request.method == "GET":
        return redirect(_safe_next(request, next_url))
    form = LoginForm(request.POST if request.method == "POST" else None)
    status = 200  # a refused login re-renders the form (200), as Django's LoginView does
    if request.method == "POST":
        if form.is_valid():
            name = form.cleaned_data["username"]
            ip = auth.client_ip(request)
            wait = current_app().throttle.locked_for(name, ip)
            if wait:
                form.add_error(None, f"Too many failed attempts. Try again in {wait} s.")
                status = 429
            else:
                try:
                    operator = current_app().users.authenticate(name, form.cleaned_data["password"])
                except auth.UsersFileError as exc:
                    log.error("%s", exc)
                    operator = None
                    form.add_error(None, "The operators file cannot be read; ask an administrator.")
                if operator is not None:
                    current_app().throttle.success(name, ip)
                    request.session.cycle_key()
                    request.session[auth.SESSION_KEY] = operator.name
                    rotate_token(request)
                    request.operator = operator
                    audit(request, "login")
                    return redirect(_safe_next(request, next_url))
                if not form.errors:
                    current_app().throttle.failure(name, ip)
                    log.info("failed login for %r from %s", name, ip)
                    form.add_error(None, "Wrong name or password.")
    try:
        no_operators = not current_app().users.load()
    except auth.UsersFileError:
        no_operators = False
    context = {"form": form, "next": next_url, "no_operators": no_operators}
    return render(request, "login.html", context, status=status)


@require_POST
def logout(request):
    audit(request, "logout")
    request.session.flush()
    messages.info(request, "Logged out.")
    return redirect("login")
