"""The URL of a record's pages from its key: by the kind's own URL where one can carry the identity
(/actors/<id>/), else by key (/records/<key>/, which every key has: atedash/records/converters.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urljoin

from django.urls import NoReverseMatch, reverse
from django.utils.http import url_has_allowed_host_and_scheme

from storage.keys import actor_key, worker_key
from storage.records import kind_of_key

if TYPE_CHECKING:
    from storage.ateapi_pb2 import Worker

# Path segments an id may not be linked by in the kind's own URL: pages of their own (/actors/new/,
# /actors/all/) and the dot segments browsers resolve away (/actors/../). Such ids go by key.
RESERVED = frozenset({"new", "all", ".", ".."})


def record_url(key: str | bytes, page: str = "detail") -> str:
    """The URL of ``page`` (detail, edit, delete) of the record at ``key``; "" for a key of no record kind."""
    if isinstance(key, bytes):
        try:
            key = key.decode("utf-8")
        except UnicodeDecodeError:
            pass  # named by the key route only
    kind = kind_of_key(key)
    if kind is None:
        return ""
    parts = kind.parts(key)
    if parts is not None and RESERVED.isdisjoint(parts):
        try:
            return reverse(f"{kind.name}_{page}", args=parts)
        except NoReverseMatch:  # e.g. an id with "/": no segment of the kind's URL can hold it
            pass
    return reverse(f"record_{page}", args=[key])


def actor_url(actor_id: str) -> str:
    """Detail URL of an actor id ("" for no id)."""
    return record_url(actor_key(actor_id)) if actor_id else ""


def worker_url(worker: Worker | None) -> str:
    if not worker:
        return ""
    return record_url(worker_key(worker.worker_namespace, worker.worker_pool, worker.worker_pod))


def local_path(target: str | None, default: str = "overview", base: str | None = None) -> str:
    """``target`` when it is a path of this site ("/actors/?status=x"), else the URL of ``default``.

    For "next" and "back" parameters: never another host ("//evil", "https://evil", "/\\evil"), a
    scheme ("javascript:") or a control character. A relative reference is resolved against ``base``
    (the page it came from; refused without one), except a bare word ("foo": no "/" nor "."), which
    redirect() used to read as a URL name (NoReverseMatch, a 500): it names no page, so ``default``.
    The result is for HttpResponseRedirect, never redirect()."""
    if not target or not target.isprintable() or not url_has_allowed_host_and_scheme(target, allowed_hosts=None):
        return reverse(default)
    if not target.startswith("/"):
        if base is None or ("/" not in target and "." not in target):
            return reverse(default)
        target = urljoin(base, target)
    if not target.startswith("/") or target.startswith(("//", "/\\")):
        return reverse(default)
    return target
