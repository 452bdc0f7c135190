"""The two words for a record that something cannot read, defined once and used on every page
(overview, lists, detail, check, raw editor) and in /metrics' help texts.

* "unreadable by ate": the ate server cannot read the record (storage/server_readable.py);
  while it exists the server's ListActors or ListWorkers fails. Counts of it include the
  corrupt records.
* "corrupt": atedash cannot decode the record either (storage.CorruptRecord); a corrupt
  record is also unreadable by ate, so it is counted under both words and flagged with this one.
"""

from __future__ import annotations

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

UNREADABLE = "unreadable by ate"
CORRUPT = "corrupt"
UNREADABLE_MEANS = "the ate server cannot read this record: its ListActors or ListWorkers fails while it exists"
CORRUPT_MEANS = "atedash cannot decode this record either (and the ate server cannot read it)"


def unreadable_badge(why: str = "") -> str:
    """The badge of a record the ate server cannot read; `why` (Go's error) on hover."""
    title = escape(f"{UNREADABLE}: {why}" if why else f"{UNREADABLE}: {UNREADABLE_MEANS}")
    return f'<span class="flag-unreadable" title="{title}" aria-label="{title}">{UNREADABLE}</span>'


def corrupt_badge(why: str = "") -> str:
    title = escape(f"{CORRUPT}: {CORRUPT_MEANS}" + (f": {why}" if why else ""))
    return f'<span class="flag-corrupt" title="{title}">{CORRUPT}</span>'


def badge(kind: str, why: str = "") -> SafeString:
    return mark_safe(unreadable_badge(why) if kind == "unreadable" else corrupt_badge(why))
