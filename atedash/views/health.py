from django.http import HttpResponse, JsonResponse
from django.views.decorators.http import require_GET

from atedash.app import current_app
from atedash.auth import login_exempt


@login_exempt
@require_GET
def healthz(request):
    """The process is up (says nothing about the store)."""
    return HttpResponse("ok", content_type="text/plain")


@login_exempt
@require_GET
def readyz(request):
    """200 when the store answers PING and the cluster state is ok, 503 (with the reason) otherwise."""
    connection = current_app().store
    body = {"store": connection.address, "ping": False, "cluster_state": None, "ready": False}
    try:
        persistence = connection.persistence()
        body["ping"] = bool(persistence.ping())
        body["cluster_state"] = persistence.cluster_state()
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready", with the reason
        connection.connection_lost()
        body["error"] = f"{type(exc).__name__}: {exc}"
    body["ready"] = body["ping"] and body["cluster_state"] == "ok"
    return JsonResponse(body, status=200 if body["ready"] else 503)
