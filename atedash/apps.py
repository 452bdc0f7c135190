from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.apps import AppConfig
from django.conf import settings
from django.core.signals import setting_changed

if TYPE_CHECKING:
    from atedash.core.app import Application


class AtedashConfig(AppConfig):
    name = "atedash"
    verbose_name = "atedash"

    def ready(self) -> None:
        import atedash.core.deploy_checks  # noqa: F401 - registers the deploy checks
        from atedash.core.app import Application

        self.application = Application(settings)
        setting_changed.connect(self._setting_changed, dispatch_uid="atedash.core.app")

    def replace_application(self) -> Application:
        """A fresh application object from the current settings (the old one is closed)."""
        from atedash.core.app import Application

        old, self.application = self.application, Application(settings)
        old.close()
        return self.application

    def _setting_changed(self, setting: str, **kwargs: Any) -> None:
        from atedash.core.app import SETTINGS

        if setting in SETTINGS:
            self.replace_application()
