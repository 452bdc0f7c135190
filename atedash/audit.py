"""Audit trail: one JSON line per change made through atedash, on logger "atedash.audit" (stdout),
also appended to the capped Redis stream ``atedash:audit`` that the Audit page lists.

    audit(request_or_operator, action, key=None, version_before=None, version_after=None,
          changed_fields=None, **extra)

``request_or_operator``: the request of a page (its operator is who), an ``auth.Operator``, or a plain
string naming who (``manage.py ate`` passes ``cli:<os user>``). Every line has: ``who``, ``when``
(UTC ISO 8601), ``action``, ``key``, ``version_before``, ``version_after``, ``changed_fields``
({field: [before, after]}), plus the operator's role and how they signed in, the environment and the
store, and any extra fields. ``from_version``/``to_version``/``version`` are accepted as the older
spellings of the versions.

``stream=False`` keeps a line out of the stream (stdout only): an import logs one line per record
written on stdout, and one summary entry in the stream, so that a large import does not push every
other entry out of the capped stream.

The stream entry is written after the change (a flush of everything removes the stream, and the flush's
own entry then starts it again); a store that cannot take it never fails the change: the stdout line
is the record of last resort.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeAlias, cast

from django.conf import settings

from atedash.app import current_app
from atedash.auth import client_ip
from storage.keys import AUDIT_STREAM_KEY as STREAM_KEY
from storage.records import kind_of_key

if TYPE_CHECKING:
    from django.http import HttpRequest

    from atedash.operators import Operator
    from storage.records import Record

    # Who makes a change: a page's request, an operator, or a name (``cli:<os user>``).
    Who: TypeAlias = HttpRequest | Operator | str | None

log = logging.getLogger("atedash.audit")
_log = logging.getLogger("atedash")


def _who(request_or_operator: Who) -> tuple[str | None, str | None, str | None, str]:
    """(who, role, auth source, remote address) of the one making the change."""
    if request_or_operator is None:
        return None, None, None, ""
    if isinstance(request_or_operator, str):
        return request_or_operator, None, "cli", ""
    operator = getattr(request_or_operator, "operator", request_or_operator)
    meta = getattr(request_or_operator, "META", None)
    # Whatever has META is a request (an operator has none).
    remote = client_ip(cast("HttpRequest", request_or_operator)) if meta is not None else ""
    if operator is None or not hasattr(operator, "name"):
        return None, None, None, remote
    return operator.name, getattr(operator, "role", None), getattr(operator, "source", None), remote


def cli_operator() -> str:
    """Who runs a management command: cli:<os user> (ATEDASH_OPERATOR overrides)."""
    name = os.environ.get("ATEDASH_OPERATOR", "").strip()
    if name:
        return name
    try:
        user = os.getlogin()
    except OSError:
        import getpass

        try:
            user = getpass.getuser()
        except Exception:  # noqa: BLE001 - no user name: still audited
            user = str(os.getuid())
    return f"cli:{user}"


def changed_fields(
    before: Record | None, after: Record | None, fields: Iterable[str] | None = None
) -> dict[str, list[Any]]:
    """{field: [before, after]} for the fields that differ between two messages (None: absent)."""
    sample = after if after is not None else before
    if sample is None:
        return {}
    names = fields or [f.name for f in sample.DESCRIPTOR.fields if f.name != "version"]
    out: dict[str, list[Any]] = {}
    for name in names:
        old = _value(before, name)
        new = _value(after, name)
        if old != new:
            out[name] = [old, new]
    return out


def _value(message: Record | None, name: str) -> Any:
    if message is None:
        return None
    value = getattr(message, name)
    field = message.DESCRIPTOR.fields_by_name[name]
    if field.enum_type is not None:
        try:
            return field.enum_type.values_by_number[value].name
        except KeyError:
            return value
    return value


def audit(
    request_or_operator: Who,
    action: str,
    key: str | bytes | None = None,
    version_before: int | None = None,
    version_after: int | None = None,
    changed_fields: dict[str, Any] | None = None,  # noqa: F811 - the parameter shadows the helper on purpose (same meaning)
    *,
    stream: bool = True,
    **extra: Any,
) -> dict[str, Any]:
    who, role, source, remote = _who(request_or_operator)
    # The older spellings stay in the line as given (readers of either find theirs).
    if version_before is None:
        version_before = extra.get("from_version")
    if version_after is None:
        version_after = extra.get("to_version")
    if version_before is None and version_after is None and "version" in extra:
        version_before = extra["version"]  # a delete names the version it removed
    now = datetime.now(UTC)
    entry = {
        "when": now.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", now.timetuple()),
        "who": who,
        "operator": who,
        "role": role,
        "auth": source,
        "remote_addr": remote,
        "action": action,
        "key": key,
        "version_before": version_before,
        "version_after": version_after,
        "changed_fields": changed_fields or {},
        "environment": settings.ATEDASH_ENVIRONMENT,
        "store": current_app().store.address,
    }
    entry.update(extra)
    line = json.dumps(entry, sort_keys=True, default=str)
    log.info(line)
    if stream:
        _append_to_stream(line, key if isinstance(key, str) and kind_of_key(key) is not None else None)
    return entry


# A record's own history (its page lists it, "revert this change" reads it): the audit entries of its
# changes, also kept per record, capped at about this many and for this long after its last change.
RECORD_HISTORY = (100, 90 * 24 * 3600)


def _append_to_stream(line: str, record_key: str | None = None) -> bool:
    """XADD to the capped stream (and the record's history); False when the store could not be reached
    (no second try then)."""
    if not settings.ATEDASH_AUDIT_STREAM:
        return True
    try:
        current_app().store.persistence().append_audit(
            line, maxlen=settings.ATEDASH_AUDIT_MAXLEN, record_key=record_key, history=RECORD_HISTORY
        )
    except Exception as exc:  # noqa: BLE001 - the stdout line stands; the change is never undone
        _log.warning("audit entry not added to the %s stream: %s", STREAM_KEY, exc)
        return False
    return True


def recent(count: int = 100, before: str | None = None) -> list[tuple[str, dict]]:
    """The last ``count`` entries of the stream, newest first: [(stream id, entry dict)].

    ``before``: a stream id ("ms-seq" or "ms", checked by the caller); only older entries are
    returned (for paging)."""
    if before and "-" in before and all(int(part) == 0 for part in before.split("-")):
        return []  # nothing is older than 0-0 (and XREVRANGE refuses "(0-0")
    return current_app().store.persistence().recent_audit(count, before)
