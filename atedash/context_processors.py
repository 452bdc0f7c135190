from django.conf import settings

from atedash.app import current_app


def banner(request):
    """The banner on every page: environment, store address, and who is logged in."""
    return {
        "environment": settings.ATEDASH_ENVIRONMENT,
        "store_address": current_app().store.address,
        "operator": getattr(request, "operator", None),
        "flush_allowed": settings.ATEDASH_ALLOW_FLUSH,
    }
