from django.urls import path

from atedash.ops import views

urlpatterns = [
    path("ops/check/", views.check_page, name="ops_check"),
    path("ops/repair/", views.repair, name="ops_repair"),
    path("ops/backup/", views.backup_page, name="ops_backup"),
    path("ops/export.jsonl", views.export_download, name="ops_export"),
    path("audit/", views.audit_page, name="ops_audit"),
    path("metrics", views.metrics, name="metrics"),
]
