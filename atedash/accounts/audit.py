"""Audit trail: one JSON line per change made through atedash, on logger "atedash.accounts.audit" (stdout),
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

Entries are bounded (``bounded``): a string value longer than MAX_VALUE_CHARS (a big field, the bytes
of a big record) is kept as its digest ({"too_big": true, "sha256", "length", "head"}), so that an
entry stays under about MAX_ENTRY_BYTES however big the record: the capped stream then bounds the
audit's memory. Raw edits keep a bounded diff of the bytes instead (atedash/records/raw.py).

The stream entry is written after the change (a flush of everything removes the stream, and the flush's
own entry then starts it again); a store that cannot take it never fails the change: the stdout line
is the record of last resort.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeAlias, cast

from django.conf import settings

from atedash.accounts.auth import client_ip
from storage.keys import AUDIT_STREAM_KEY as STREAM_KEY
from storage.keys import is_utf8_key, shown_key
from storage.records import kind_of_key

if TYPE_CHECKING:
    from django.http import HttpRequest

    from atedash.accounts.operators import Operator
    from atedash.core.app import Application
    from storage.records import Record

    # Who makes a change: a page's request, an operator, or a name (``cli:<os user>``).
    Who: TypeAlias = HttpRequest | Operator | str | None

log = logging.getLogger("atedash.accounts.audit")
_log = logging.getLogger("atedash")

# An entry's size: any string longer than this is kept as its digest; an entry still longer than
# MAX_ENTRY_BYTES (many fields) is bounded again with SMALL_VALUE_CHARS.
MAX_VALUE_CHARS = 3000
SMALL_VALUE_CHARS = 128
MAX_ENTRY_BYTES = 8192
_MAX_ITEMS = 100  # items of a list or object kept (the rest counted)
TOO_BIG = "too big to keep in the audit"


def digest(text: str) -> dict[str, Any]:
    """What an entry keeps of a value too big for it: its SHA-256, length and first characters."""
    data = text.encode("utf-8", "surrogatepass")
    return {"too_big": True, "sha256": hashlib.sha256(data).hexdigest(), "length": len(data), "head": text[:64]}


def is_digest(value: Any) -> bool:
    return isinstance(value, dict) and value.get("too_big") is True


def shown(value: Any) -> Any:
    """A value of an entry as a page shows it (a digest as a sentence)."""
    if is_digest(value):
        sha = str(value.get("sha256", ""))[:12]
        return f"({TOO_BIG}: {value.get('length')} bytes, sha256 {sha}…)"
    return value


def _bound(value: Any, limit: int, depth: int = 0) -> Any:
    if isinstance(value, (bytes, bytearray)):
        value = bytes(value).decode("utf-8", "backslashreplace")
    if isinstance(value, str):
        return value if len(value) <= limit else digest(value)
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if depth > 8:
        return digest(json.dumps(value, default=str))
    if isinstance(value, dict):
        if is_digest(value):
            return value
        items = list(value.items())
        out = {str(k)[:limit]: _bound(v, limit, depth + 1) for k, v in items[:_MAX_ITEMS]}
        if len(items) > _MAX_ITEMS:
            out["(more)"] = len(items) - _MAX_ITEMS
        return out
    if isinstance(value, (list, tuple)):
        bounded_items = [_bound(v, limit, depth + 1) for v in value[:_MAX_ITEMS]]
        if len(value) > _MAX_ITEMS:
            bounded_items.append(f"({len(value) - _MAX_ITEMS} more)")
        return bounded_items
    return _bound(str(value), limit, depth)


def bounded(entry: dict[str, Any]) -> dict[str, Any]:
    """`entry` with every value too big for the audit replaced by its digest (see the module's doc);
    entries written before the bound are shown through it too."""
    out = _bound(entry, MAX_VALUE_CHARS)
    if len(json.dumps(out, sort_keys=True, default=str)) > MAX_ENTRY_BYTES:
        out = _bound(entry, SMALL_VALUE_CHARS)
    if len(json.dumps(out, sort_keys=True, default=str)) > MAX_ENTRY_BYTES:  # a great many fields
        out = {name: out[name] for name in CORE_FIELDS if name in out}
        out["details"] = digest(json.dumps(entry, sort_keys=True, default=str))
    return out


# Who did what to which record, where: what an entry cut to its digest keeps, and what the audit
# page gives columns of (atedash/ops/views.py).
CORE_FIELDS = (
    "when",
    "ts",
    "who",
    "operator",
    "role",
    "auth",
    "remote_addr",
    "action",
    "key",
    "version_before",
    "version_after",
    "environment",
    "store",
)


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
    app: Application | None = None,
    stream: bool = True,
    **extra: Any,
) -> dict[str, Any]:
    """Logs (and with ``stream``, stores) one audit entry. ``app``: the application object, by
    default the request's (a management command, which has none, passes its own)."""
    app = app if app is not None else getattr(request_or_operator, "app", None)
    if app is None:
        raise TypeError("audit() needs the application object: app=, or a request")
    who, role, source, remote = _who(request_or_operator)
    if isinstance(key, str) and not is_utf8_key(key):
        key = shown_key(key)  # bytes that are not UTF-8 as \xNN: printable, and no record's key
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
        "store": app.store.address,
    }
    entry.update(extra)
    entry = bounded(entry)
    line = json.dumps(entry, sort_keys=True, default=str)
    log.info(line)
    if stream:
        _append_to_stream(app, line, key if isinstance(key, str) and kind_of_key(key) is not None else None)
    return entry


# A record's own history (its page lists it, "revert this change" reads it): the audit entries of its
# changes, also kept per record, capped at about this many and for this long after its last change.
RECORD_HISTORY = (100, 90 * 24 * 3600)


def _append_to_stream(app: Application, line: str, record_key: str | None = None) -> bool:
    """XADD to the capped stream (and the record's history); False when the store could not be reached
    (no second try then)."""
    if not settings.ATEDASH_AUDIT_STREAM:
        return True
    try:
        app.store.dashboard().append_audit(
            line, maxlen=settings.ATEDASH_AUDIT_MAXLEN, record_key=record_key, history=RECORD_HISTORY
        )
    except Exception as exc:  # noqa: BLE001 - the stdout line stands; the change is never undone
        _log.warning("audit entry not added to the %s stream: %s", STREAM_KEY, exc)
        return False
    return True


def recent(app: Application, count: int = 100, before: str | None = None) -> list[tuple[str, dict]]:
    """The last ``count`` entries of the stream, newest first: [(stream id, entry dict)].

    ``before``: a stream id ("ms-seq" or "ms", checked by the caller); only older entries are
    returned (for paging)."""
    if before and "-" in before and all(int(part) == 0 for part in before.split("-")):
        return []  # nothing is older than 0-0 (and XREVRANGE refuses "(0-0")
    return app.store.dashboard().recent_audit(count, before)
