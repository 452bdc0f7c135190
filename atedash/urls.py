from django.urls import path, register_converter

from atedash.accounts import views as session
from atedash.core import error_pages
from atedash.core.pages import moved_to
from atedash.ops import flush, health, overview, reset
from atedash.ops import views as ops
from atedash.records import bulk, locks, lookup, matches, raw
from atedash.records import edit as record_edit
from atedash.records import views as records
from atedash.records.converters import RecordKeyConverter
from atedash.records.kinds import KINDS, ActorPages, RecordPages, WorkerPages

register_converter(RecordKeyConverter, "recordkey")


def record_urls(pages: type[RecordPages], base: str, ident: str) -> list:
    """The list, create, detail, edit and delete pages of one record kind (URL names <kind>_<page>)."""
    kind = {"pages": pages}
    return [
        path(base, records.record_list, kind, name=pages.url_name("list")),
        path(f"{base}new/", records.record_create, kind, name=pages.url_name("create")),
        path(f"{base}{ident}", records.record_detail, kind, name=pages.url_name("detail")),
        path(f"{base}{ident}edit/", record_edit.record_edit, kind, name=pages.url_name("edit")),
        path(f"{base}{ident}delete/", records.record_delete, kind, name=pages.url_name("delete")),
    ] + [
        path(
            f"{base}{ident}{intent}/",
            record_edit.record_intent,
            {**kind, "intent": intent},
            name=pages.url_name(intent),
        )
        for intent in pages.intents
    ]


# The pages of one view each, by feature (one table: route, view, URL name).
urlpatterns = [
    path("", overview.overview, name="overview"),
    path("overview/counts/", overview.counts, name="overview_counts"),
    path("login/", session.login, name="login"),
    path("logout/", session.logout, name="logout"),
    path("open/", lookup.open_record, name="open_record"),  # "open by key or id" (header, list pages)
    path("matches/<str:job_id>/cancel/", matches.cancel, name="matches_cancel"),
    path("bulk/", bulk.bulk, name="bulk"),
    # Before the records' own keys below: "raw" is not a key.
    path("records/raw/", raw.raw_edit, name="raw_edit"),
    path("records/raw/repair/", raw.raw_repair, name="raw_repair"),
    path("records/raw/delete/", raw.raw_delete, name="raw_delete"),
    path("locks/", locks.lock_list, name="lock_list"),
    path("locks/release/", locks.lock_release, name="lock_release"),
    path("flush/", flush.flush, name="flush"),
    path("reset/", reset.reset, name="reset"),
    path("reset/backup/", reset.reset_backup, name="reset_backup"),
    path("ops/check/", ops.check_page, name="ops_check"),
    path("ops/repair/", ops.repair, name="ops_repair"),
    path("ops/backup/", ops.backup_page, name="ops_backup"),
    path("ops/export.jsonl", ops.export_download, name="ops_export"),
    path("audit/", ops.audit_page, name="ops_audit"),
    path("metrics", ops.metrics, name="metrics"),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
]
# Old paths of renamed features: 308 keeps the method and body (a POST stays a POST).
urlpatterns += [
    path("overview/stats/", moved_to("overview_counts"), name="overview_counts_old"),
    path("walks/<str:job_id>/cancel/", moved_to("matches_cancel"), name="matches_cancel_old"),
]
# Every match of a kind's filters, before the record routes: "all" and "new" are not record ids.
urlpatterns += [
    path(f"{pages.plural}/all/{sub}", view, {"pages": pages}, name=pages.url_name(page))
    for pages in KINDS.values()
    for sub, view, page in (
        ("", matches.record_matches, "matches"),
        ("export/", matches.matches_export, "matches_export"),
    )
]
urlpatterns += record_urls(ActorPages, "actors/", "<str:actor_id>/")
urlpatterns += record_urls(WorkerPages, "workers/", "<str:namespace>/<str:pool>/<str:pod>/")
# Any actor or worker by its key, whatever the key holds ("/", "%", control characters, bytes
# that are not UTF-8): the kind's own URL above where one can carry the identity, else these.
urlpatterns += [
    path("records/<recordkey:key>/", records.record_detail, name="record_detail"),
    path("records/<recordkey:key>/edit/", record_edit.record_edit, name="record_edit"),
    path("records/<recordkey:key>/delete/", records.record_delete, name="record_delete"),
    path("records/<recordkey:key>/suspend/", record_edit.record_intent, {"intent": "suspend"}, name="record_suspend"),
    path("records/<recordkey:key>/run/", record_edit.record_intent, {"intent": "run"}, name="record_run"),
]

handler400 = error_pages.bad_request
handler403 = error_pages.permission_denied
handler404 = error_pages.page_not_found
handler500 = error_pages.server_error
