from django.conf import settings

from atedash import store


def banner(request):
    """The banner on every page: environment, store address, and who is logged in."""
    return {
        "environment": settings.ATEDASH_ENVIRONMENT,
        "store_address": store.store_address(),
        "operator": getattr(request, "operator", None),
        "flush_allowed": settings.ATEDASH_ALLOW_FLUSH,
    }
