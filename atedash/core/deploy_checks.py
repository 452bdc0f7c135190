"""`manage.py check --deploy`: settings that leave the dashboard open to whoever reaches it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.core.checks import CheckMessage, Tags, Warning, register


@register(Tags.security, deploy=True)
def trusted_proxy_headers(app_configs: Sequence[AppConfig] | None, **kwargs: Any) -> list[CheckMessage]:
    problems: list[CheckMessage] = []
    if settings.ATEDASH_TRUSTED_HEADER and not settings.ATEDASH_TRUSTED_PROXIES:
        problems.append(
            Warning(
                f"ATEDASH_TRUSTED_HEADER ({settings.ATEDASH_TRUSTED_HEADER}) is set but ATEDASH_TRUSTED_PROXIES is "
                "empty: the header trusts nobody, so nobody can sign in through the proxy.",
                hint="Set ATEDASH_TRUSTED_PROXIES to the auth proxy's addresses (CIDRs); the proxy must strip "
                "the user and role headers that clients send.",
                id="atedash.W001",
            )
        )
    if settings.ATEDASH_CLIENT_IP_HEADER and not settings.ATEDASH_TRUSTED_PROXIES:
        problems.append(
            Warning(
                f"ATEDASH_CLIENT_IP_HEADER ({settings.ATEDASH_CLIENT_IP_HEADER}) is set but ATEDASH_TRUSTED_PROXIES "
                "is empty: the header is ignored and every client counts as the proxy's address.",
                hint="Set ATEDASH_TRUSTED_PROXIES to the proxy's addresses.",
                id="atedash.W002",
            )
        )
    return problems
