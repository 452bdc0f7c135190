"""Filters of the operations pages: links to the records a finding names."""

from typing import Any

from django import template

from atedash.core.links import record_url

register = template.Library()


@register.filter
def key_url(key: str | bytes) -> str:
    """Page of a record or lock key ("" when there is none)."""
    key = key if isinstance(key, bytes) else str(key)
    url = record_url(key)
    if url:
        return url
    if isinstance(key, str) and key.startswith("lock:"):
        from django.urls import reverse

        return reverse("lock_list")
    return ""


@register.filter
def quoted(value: Any) -> str:
    """A field value as the confirmation shows it: '' for empty, repr-like otherwise."""
    return "''" if value in (None, "") else f"'{value}'"
