import logging

from django.http import HttpResponse, JsonResponse
from django.template.loader import get_template
from django.views.decorators.http import require_GET

from atedash.accounts.auth import login_exempt
from atedash.core.request import HtmxHttpRequest

log = logging.getLogger(__name__)


@login_exempt
@require_GET
def healthz(request: HtmxHttpRequest) -> HttpResponse:
    """The process is up (says nothing about the store)."""
    return HttpResponse("ok", content_type="text/plain")


@login_exempt
@require_GET
def readyz(request: HtmxHttpRequest) -> JsonResponse:
    """200 when this process can serve pages, the store-outage page included; 503 otherwise.

    Not whether the store answers: during a store outage the pods stay in the Service, so that
    operators get atedash's 503 page naming the outage rather than the ingress's anonymous one (the
    store's state is `atedash_store_up` in /metrics). Anyone may ask (probes do not log in), so the
    answer says ready or not; the reason goes to the log."""
    ready = False
    try:
        request.app.store  # noqa: B018 - the application object was built
        get_template("errors/503.html")  # what a request shows when the store is away
        ready = True
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready"; the reason is logged
        log.warning("not ready: %s: %s", type(exc).__name__, exc)
    return JsonResponse({"ready": ready}, status=200 if ready else 503)
