from __future__ import annotations

from typing import Any

from django.conf import settings

from atedash.core.request import HtmxHttpRequest


def banner(request: HtmxHttpRequest) -> dict[str, Any]:
    """The banner on every page: environment, store address, and who is logged in.

    The environment's name (the word that confirms a flush) and the store's address are shown to
    signed-in operators only: an anonymous visitor sees the login page and nothing about the store."""
    operator = getattr(request, "operator", None)
    if operator is None:
        return {"operator": None, "environment": "", "store_address": "", "flush_allowed": False}
    return {
        "environment": settings.ATEDASH_ENVIRONMENT,
        "store_address": request.app.store.address,
        "operator": operator,
        "flush_allowed": settings.ATEDASH_ALLOW_FLUSH,
    }
