"""Request plumbing: latency metrics, security headers, and store failures shown as pages (who the
operator is: atedash/accounts/middleware.py)."""

from __future__ import annotations

import time
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.http.request import split_domain_port, validate_host
from django.http.response import HttpResponseBase
from django.utils.cache import add_never_cache_headers, patch_vary_headers

from atedash.core import error_pages
from atedash.core.app import current_app
from atedash.core.request import HtmxHttpRequest

# The next layer of the stack: the rest of the middleware, then the view (its response may stream).
GetResponse = Callable[[HttpRequest], HttpResponseBase]

_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}

# No inline scripts or styles anywhere: every script and stylesheet is a static file.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


class SecurityHeadersMiddleware:
    """CSP (Django 5.2 has none built in) and a Permissions-Policy; the rest comes from Django settings."""

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.get_response(request)
        response.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        response.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()")
        response.setdefault("X-Content-Type-Options", "nosniff")
        response.setdefault("Referrer-Policy", settings.SECURE_REFERRER_POLICY)
        if request.is_secure():
            # A request that came over HTTPS gets Secure cookies (session, CSRF, messages), even
            # where ATEDASH_SECURE_COOKIES / ATEDASH_HTTPS were forgotten.
            for morsel in response.cookies.values():
                morsel["secure"] = True
        if not request.path.startswith(settings.STATIC_URL):
            # Pages show live store state and operator data: never cached, and vary on HTMX.
            add_never_cache_headers(response)
            patch_vary_headers(response, ("HX-Request",))
        return response


class AppMiddleware:
    """Sets request.app: views and helpers get the application object from the request, the one
    place a request reaches for it (a test that changes a setting gets the fresh one)."""

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response

    def __call__(self, request: HtmxHttpRequest) -> HttpResponseBase:
        request.app = current_app()
        return self.get_response(request)


class StoreErrorMiddleware:
    """Store unreachable -> 503 page; NotFound -> 404; other storage errors -> an error page."""

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        return self.get_response(request)

    def process_exception(self, request: HtmxHttpRequest, exception: Exception) -> HttpResponse | None:
        return error_pages.handle_exception(request, exception)


class RequestLatencyMiddleware:
    """Observes every request's duration into the application's request histogram.

    First in MIDDLEWARE, so it times the whole stack.
    """

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response

    def __call__(self, request: HtmxHttpRequest) -> HttpResponseBase:
        start = time.perf_counter()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        if match is not None:
            view = match.view_name or "unnamed"
        elif request.path.startswith(settings.STATIC_URL):
            view = "static"
        else:
            view = "unmatched"
        method = request.method if request.method in _METHODS else "other"
        status = f"{response.status_code // 100}xx"
        request.app.metrics.request_latency.labels(view, method, status).observe(time.perf_counter() - start)
        return response


# Probes and scrapers reach a pod by its IP (Prometheus sends Host: <pod IP>:<port>), which no
# ATEDASH_ALLOWED_HOSTS can list. These paths build no URL from the Host header, so a host that is
# not allowed is replaced there by the first literal allowed host instead of a 400.
PROBE_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


class ProbeHostMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response
        literal = [h for h in settings.ALLOWED_HOSTS if h != "*" and not h.startswith(".")]
        self.host = literal[0] if literal else None

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        if request.path_info in PROBE_PATHS and self.host is not None:
            host = request.META.get("HTTP_HOST", "")
            if not validate_host(split_domain_port(host)[0], settings.ALLOWED_HOSTS):
                request.META["HTTP_HOST"] = self.host
        return self.get_response(request)
