import logging

from django.http import HttpResponse, JsonResponse
from django.views.decorators.http import require_GET

from atedash.app import current_app
from atedash.auth import login_exempt
from atedash.request import HtmxHttpRequest

log = logging.getLogger(__name__)


@login_exempt
@require_GET
def healthz(request: HtmxHttpRequest) -> HttpResponse:
    """The process is up (says nothing about the store)."""
    return HttpResponse("ok", content_type="text/plain")


@login_exempt
@require_GET
def readyz(request: HtmxHttpRequest) -> JsonResponse:
    """200 when the store answers PING and the cluster state is ok, 503 otherwise.

    Anyone may ask (probes do not log in), so the answer says ready or not and nothing about the
    store; the reason goes to the log."""
    connection = current_app().store
    ready = False
    try:
        persistence = connection.persistence()
        state = persistence.cluster_state() if persistence.ping() else None
        ready = state == "ok"
        if not ready:
            log.warning("not ready: the store %s says cluster_state=%s", connection.address, state)
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready"; the reason is logged
        connection.connection_lost()
        log.warning("not ready: the store %s failed: %s: %s", connection.address, type(exc).__name__, exc)
    return JsonResponse({"ready": ready}, status=200 if ready else 503)
