"""Filters of the operations pages: links to the records a finding names."""

from django import template

from atedash.templatetags.atedash import actor_key_url, worker_key_url

register = template.Library()


@register.filter
def key_url(key):
    """Page of a record or lock key ("" when there is none)."""
    key = str(key)
    if key.startswith("actor:"):
        return actor_key_url(key)
    if key.startswith("worker:"):
        return worker_key_url(key)
    if key.startswith("lock:"):
        from django.urls import reverse

        return reverse("lock_list")
    return ""


@register.filter
def quoted(value):
    """A field value as the confirmation shows it: '' for empty, repr-like otherwise."""
    return "''" if value in (None, "") else f"'{value}'"
