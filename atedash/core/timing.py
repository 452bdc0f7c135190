"""Server-Timing: how long a request took in Django, and how much of it was spent in storage calls.

ServerTimingMiddleware (first in MIDDLEWARE) adds to every response

    Server-Timing: app;dur=<ms>, store;dur=<ms>

where ``app`` is the whole Django stack (middleware, view, template) and ``store`` the time spent
inside storage.Persistence and storage.DashboardState methods called by the views (Redis round
trips plus decoding), summed per request. ``app - store`` is Django's own share.
bench/http_bench.py reads the header; a browser's developer tools show it too. The cost is two
clock reads per request and per storage call.

Views get the Persistence through the application's ``store.timed()``
(atedash.core.pages.persistence) and the DashboardState through ``store.timed_dashboard()``
(atedash.core.pages.dashboard); other code (background statistics, health checks) uses them
untimed.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from time import perf_counter
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from django.http import HttpRequest
    from django.http.response import HttpResponseBase

    import storage

# A one-element list per request: the store time in seconds accumulated so far.
_store_time: contextvars.ContextVar[list[float] | None] = contextvars.ContextVar("atedash_store_time", default=None)


class TimedPersistence:
    """Wraps a storage.Persistence or DashboardState: public method calls add their duration to the
    current request."""

    __slots__ = ("_target", "__weakref__")

    def __init__(self, target: storage.Persistence | storage.DashboardState) -> None:
        self._target = target

    @property
    def target(self) -> storage.Persistence | storage.DashboardState:
        return self._target

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._target, name)
        if name[0] == "_" or not callable(value):
            return value

        def timed_call(*args: Any, **kwargs: Any) -> Any:
            acc = _store_time.get()
            if acc is None:
                return value(*args, **kwargs)
            t0 = perf_counter()
            try:
                return value(*args, **kwargs)
            finally:
                acc[0] += perf_counter() - t0

        return timed_call


class store_call:
    """``with store_call():`` counts a block as store time (for storage reads made outside Persistence)."""

    __slots__ = ("acc", "t0")

    def __enter__(self) -> None:
        self.acc = _store_time.get()
        self.t0 = perf_counter()

    def __exit__(self, *exc: object) -> Literal[False]:
        if self.acc is not None:
            self.acc[0] += perf_counter() - self.t0
        return False


class ServerTimingMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        acc = [0.0]
        token = _store_time.set(acc)
        t0 = perf_counter()
        try:
            response = self.get_response(request)
        finally:
            _store_time.reset(token)
        app = perf_counter() - t0
        # Streaming responses (backup download) are timed until their headers are ready.
        response["Server-Timing"] = f"app;dur={app * 1000:.2f}, store;dur={acc[0] * 1000:.2f}"
        return response
