from django.urls import include, path

from atedash.views import (
    actors,
    bulk,
    errors,
    flush,
    health,
    locks,
    lookup,
    matches,
    overview,
    raw,
    reset,
    session,
    workers,
)

urlpatterns = [
    path("", overview.overview, name="overview"),
    path("overview/stats/", overview.stats, name="overview_stats"),
    path("login/", session.login, name="login"),
    path("logout/", session.logout, name="logout"),
    path("actors/", actors.actor_list, name="actor_list"),
    path("actors/all/", matches.actor_matches, name="actor_matches"),
    path("actors/new/", actors.actor_create, name="actor_create"),
    path("actors/<str:actor_id>/", actors.actor_detail, name="actor_detail"),
    path("actors/<str:actor_id>/edit/", actors.actor_edit, name="actor_edit"),
    path("actors/<str:actor_id>/delete/", actors.actor_delete, name="actor_delete"),
    path("workers/", workers.worker_list, name="worker_list"),
    path("workers/all/", matches.worker_matches, name="worker_matches"),
    path("walks/<str:job_id>/cancel/", matches.cancel_walk, name="walk_cancel"),
    path("workers/new/", workers.worker_create, name="worker_create"),
    path("workers/<str:namespace>/<str:pool>/<str:pod>/", workers.worker_detail, name="worker_detail"),
    path("workers/<str:namespace>/<str:pool>/<str:pod>/edit/", workers.worker_edit, name="worker_edit"),
    path("workers/<str:namespace>/<str:pool>/<str:pod>/delete/", workers.worker_delete, name="worker_delete"),
    path("open/", lookup.open_record, name="open_record"),
    path("records/raw/", raw.raw_edit, name="raw_edit"),
    path("records/raw/repair/", raw.raw_repair, name="raw_repair"),
    path("records/raw/delete/", raw.raw_delete, name="raw_delete"),
    path("locks/", locks.lock_list, name="lock_list"),
    path("locks/release/", locks.lock_release, name="lock_release"),
    path("flush/", flush.flush, name="flush"),
    path("reset/", reset.reset, name="reset"),
    path("bulk/", bulk.bulk, name="bulk"),
    path("reset/backup/", reset.reset_backup, name="reset_backup"),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("", include("atedash.ops.urls")),  # consistency check, repairs, backup, audit, /metrics
]

handler400 = errors.bad_request
handler403 = errors.permission_denied
handler404 = errors.page_not_found
handler500 = errors.server_error
