"""Audit trail: one JSON line per change made through the dashboard, on logger "atedash.audit"."""

import json
import logging
import time

from django.conf import settings

from atedash import store

log = logging.getLogger("atedash.audit")


def audit(request, action, **fields):
    operator = getattr(request, "operator", None)
    entry = {
        "ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "action": action,
        "operator": operator.name if operator else None,
        "role": operator.role if operator else None,
        "auth": operator.source if operator else None,
        "remote_addr": request.META.get("REMOTE_ADDR", ""),
        "environment": settings.ATEDASH_ENVIRONMENT,
        "store": store.store_address(),
    }
    entry.update(fields)
    log.info(json.dumps(entry, sort_keys=True, default=str))
    return entry
