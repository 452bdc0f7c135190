"""Signed page cursors: a list page's links carry storage's cursor signed for that list.

storage/ knows nothing of Django: its cursors are opaque strings that it bounds and validates itself
(storage/scanning.py). Here they are signed with the secret key (django.core.signing, one salt per
list), so a cursor in a URL is one this site produced for this very list: a forged, edited or
truncated cursor, or one of another list (a locks-page cursor on the actors page), is refused before
storage sees it. A refused cursor raises storage.InvalidCursor, which atedash/core/error_pages.py turns into
the 400 page ("this page link is not valid", with a link to the first page).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, overload

from django.core import signing

import storage

# The lists whose pages carry cursors; each signs with its own salt.
LISTS = ("actors", "workers", "locks", "matches")
_SALT = "atedash.cursor."
# A signed cursor is storage's cursor, the separator and the signature: anything longer is not ours.
MAX_CHARS = 16384 + 128


def _signer(kind: str, key: str | None = None) -> signing.Signer:
    if kind not in LISTS:
        raise ValueError(f"unknown list {kind!r}")
    if key is not None:  # outside the site (a benchmark signing for a server it started)
        return signing.Signer(key=key, salt=_SALT + kind, fallback_keys=[])
    return signing.Signer(salt=_SALT + kind)


@overload
def sign(kind: str, cursor: str, *, key: str | None = None) -> str: ...
@overload
def sign(kind: str, cursor: None, *, key: str | None = None) -> None: ...
@overload
def sign(kind: str, cursor: str | None, *, key: str | None = None) -> str | None: ...


def sign(kind: str, cursor: str | None, *, key: str | None = None) -> str | None:
    """The URL form of storage's `cursor` (None stays None: the walk is complete). `key`: another
    secret key than this site's."""
    if cursor is None:
        return None
    return _signer(kind, key).sign(cursor)


def unsign(kind: str, signed: str | None) -> str | None:
    """Storage's cursor from a URL's; None for the first page. InvalidCursor when it is not ours."""
    signer = _signer(kind)
    if not signed:
        return None
    if len(signed) > MAX_CHARS:
        raise storage.InvalidCursor(signed[:64] + "…", "too long")
    try:
        return signer.unsign(signed)
    except signing.BadSignature:
        raise storage.InvalidCursor(signed[:64], f"not signed for the {kind} list") from None


def scan(kind: str, scan_method: Callable[..., storage.Page], signed_cursor: str | None, **kwargs: Any) -> storage.Page:
    """One page of `scan_method` (a Persistence.scan_* call) from a URL's cursor, its next_cursor
    signed for the same list."""
    page = scan_method(cursor=unsign(kind, signed_cursor), **kwargs)
    return dataclasses.replace(page, next_cursor=sign(kind, page.next_cursor))
