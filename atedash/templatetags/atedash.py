"""Small formatting helpers for the templates (loaded as a builtin)."""

from collections.abc import Iterable
from typing import Any, TypeVar

from django import template

from atedash.core import links, vocabulary

register = template.Library()

_T = TypeVar("_T")


@register.filter
def ttl(ms: int | str | None) -> str:
    """Remaining time to live from milliseconds: "no expiry", "850 ms", "42 s", "3 min 5 s", "2 h 10 min"."""
    if ms is None:
        return "no expiry"
    ms = int(ms)
    if ms < 0:
        return "no expiry"
    if ms < 1000:
        return f"{ms} ms"
    seconds = ms // 1000
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min"
    return f"{hours // 24} d {hours % 24} h"


@register.filter
def bytes_h(n: float | str | None) -> str:
    if n is None:
        return "?"
    n = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


@register.filter
def status_class(name: object) -> str:
    return "status-" + str(name).lower().removeprefix("status_")


@register.filter
def slot_ranges(slots: Iterable[tuple[int, int]] | None) -> str:
    return ", ".join(f"{a}-{b}" if a != b else str(a) for a, b in slots or [])


@register.filter
def slot_count(slots: Iterable[tuple[int, int]] | None) -> int:
    return sum(b - a + 1 for a, b in slots or [])


@register.filter
def or_dash(value: _T) -> _T | str:
    return value if value not in (None, "") else "—"


# A record may carry a field of megabytes (the store accepts anything): pages show the start of a
# long value and say how much was left out, so one record cannot make a page of tens of megabytes.
CELL_LIMIT = 256
FIELD_LIMIT = 4096
STORED_VALUE_LIMIT = 256 * 1024


@register.filter
def clip(value: object, limit: int | str = CELL_LIMIT) -> str:
    text = str(value)
    limit = int(limit)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text) - limit:,} more characters not shown)"


# Links to records: atedash/core/links.py (by the kind's URL where it can carry the id, else by key).
register.filter("actor_url", links.actor_url)
register.filter("worker_url", links.worker_url)


@register.filter
@register.filter
def raw_url(key: str | bytes) -> str:
    """The raw editor of an actor or worker key ("" for any other key)."""
    key = str(key)
    if not key.startswith(("actor:", "worker:")) or "\x00" in key:
        return ""
    from urllib.parse import urlencode

    from django.urls import reverse

    return reverse("raw_edit") + "?" + urlencode({"key": key})


@register.filter
def record_key_url(key: str | bytes) -> str:
    """Detail URL of an actor or worker key ("" for another key)."""
    return links.record_url(key)


@register.filter
def thousands(n: Any) -> Any:
    """1000000 -> "1,000,000" (the scan line: "scanned 120,000 of about 1,000,000 keys"); a value
    int() refuses as it is ("" for a missing variable)."""
    try:
        return f"{int(n):,}"
    except (TypeError, ValueError):
        return n


@register.filter
def seconds(value: Any) -> str:
    """A duration in seconds, as ``ttl`` shows milliseconds ("42 s", "3 min 5 s", "24 h 0 min")."""
    try:
        return ttl(int(float(value) * 1000))
    except (TypeError, ValueError):
        return ""


@register.filter
def status_label(status: Any) -> str:
    """An actor status number as its name ("SUSPENDED")."""
    from storage.check import status_name

    try:
        return status_name(int(status)).removeprefix("STATUS_")
    except (TypeError, ValueError):
        return str(status)


@register.simple_tag
def badge(kind: str, why: object = "") -> str:
    """{% badge "unreadable" why %} or {% badge "corrupt" %}: the words of atedash/core/vocabulary.py."""
    return vocabulary.badge(kind, str(why or ""))


@register.simple_tag
def term(kind: str) -> str:
    return vocabulary.UNREADABLE if kind == "unreadable" else vocabulary.CORRUPT
