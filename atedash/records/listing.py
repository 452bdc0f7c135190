"""The rows of the actor, worker and pool tables, rendered in Python: the hot path of the list pages.

Django's template engine costs 5-10 µs per variable node; a page of 50 records x 8 columns with a
URL per row spent most of its time there. Each kind's row markup is one str.format fragment
(ACTOR_ROW, WORKER_ROW) fed prepared cells, escaped as Django's autoescape does (html.escape), with
URLs as reverse() makes them. The list pages and "Show all matches" (with a checkbox) use it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from html import escape
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from django.urls import reverse
from django.utils.safestring import SafeString, mark_safe

from atedash.core import vocabulary
from atedash.core.links import RESERVED, actor_url, worker_url
from atedash.templatetags.atedash import clip, or_dash, status_class
from storage.keys import actor_key, worker_key

if TYPE_CHECKING:
    from storage.ateapi_pb2 import Worker
    from storage.server_readable import Unreadable

# URL path segments that reverse() emits unchanged (no percent-encoding); anything else, and ids
# that cannot be part of a URL (empty, or with a "/"), goes through reverse() itself.
_PLAIN = re.compile(r"[A-Za-z0-9._~-]+\Z")
_P = "zzatedashzz"  # placeholder, plain characters only


def unreadable_flag(unreadable: Unreadable) -> str:
    """The flag of a record the ate server cannot read (storage.server_readable.Unreadable): its
    reason, in Go's words, and what it breaks, on hover and for screen readers."""
    return " " + vocabulary.unreadable_badge(f"{unreadable.reason} ({unreadable.fails})")


def _url_format(name: str, count: int) -> str:
    """reverse(name, args=[placeholders]) turned into a str.format template ("/actors/{0}/")."""
    url = reverse(name, args=[f"{_P}{i}" for i in range(count)])
    url = url.replace("{", "{{").replace("}", "}}")
    for i in range(count):
        url = url.replace(f"{_P}{i}", f"{{{i}}}", 1)
    return url


def _link(url_format: str, args: tuple[str, ...], text: str, url_of: Callable[[Any], str], target: Any) -> str:
    """<a> to a detail page: formatted from the URL template for plain ids (fast), else url_of(target)
    (reverse(), which percent-encodes); just the text when no URL can name the record."""
    if all(map(_PLAIN.match, args)) and RESERVED.isdisjoint(args):
        return f'<a href="{escape(url_format.format(*args))}">{text}</a>'
    url = url_of(target)
    return f'<a href="{escape(url)}">{escape(text)}</a>' if url else escape(text)


# The list tables' columns (templates/records/_table.html heads them; each cell carries its column's
# name as data-label, which the narrow-screen layout shows beside the value: static/css/mobile.css).
ACTOR_COLUMNS = ("Template namespace", "Template", "Id", "Status", "Ateom pod", "Ateom IP", "Version", "Last snapshot")
WORKER_COLUMNS = ("Namespace", "Pool", "Pod", "IP", "Assigned actor", "Actor template", "Version")


def _row_format(attributes: str, columns: tuple[str, ...], fields: tuple[str, ...], number_at: int) -> str:
    """A row fragment for str.format: ``{select}`` (the checkbox cell, or "") then one cell per
    column, each named by its field; the cell at ``number_at`` is right-aligned (class num)."""
    num = ' class="num"'
    tds = "".join(
        f'        <td{num if i == number_at else ""} data-label="{label}">{{{field}}}</td>\n'
        for i, (label, field) in enumerate(zip(columns, fields, strict=True))
    )
    return f"\n      <tr {attributes}{{row_class}}>\n{{select}}{tds}      </tr>\n    "


# The one source of each kind's row markup: list pages, "Show all matches" (with a checkbox).
ACTOR_ROW = _row_format(
    'data-actor-id="{id}"',
    ACTOR_COLUMNS,
    ("template_namespace", "template", "link", "status", "pod", "ip", "version", "snapshot"),
    6,
)
WORKER_ROW = _row_format(
    'data-worker="{name}"',
    WORKER_COLUMNS,
    ("namespace", "pool", "link", "ip", "actor", "template", "version"),
    6,
)
# The bulk actions' checkbox: its value is the record's key and the version shown (storage/bulk.py
# checks both).
SELECT_CELL = (
    '        <td class="select"><input type="checkbox" name="target" value="{value}" form="bulk-form" '
    'aria-label="select {key}"></td>\n'
)
_UNREADABLE_ROW = ' class="row-unreadable"'


def _select(selectable: bool, key: str, version: int) -> str:
    if not selectable:
        return ""
    return SELECT_CELL.format(value=escape(f"{key}@{version}"), key=escape(key))


def actor_rows_html(rows: list[dict[str, Any]], *, selectable: bool = False) -> SafeString:
    """rows: dicts with "actor" (Actor), "status" (short name), "pod", and "unreadable" (why the ate
    server cannot read the record, or None / absent), as ActorPages.rows_html makes; ``selectable``:
    each row with its bulk checkbox."""
    detail = _url_format("actor_detail", 1)
    row_format = ACTOR_ROW.format
    out: list[str] = []
    append = out.append
    for row in rows:
        actor = row["actor"]
        actor_id = actor.actor_id
        status = row["status"]
        link = _link(detail, (actor_id,), actor_id, actor_url, actor_id)
        unreadable = row.get("unreadable")
        row_class = ""
        if unreadable is not None:
            link += unreadable_flag(unreadable)
            row_class = _UNREADABLE_ROW
        append(
            row_format(
                id=escape(actor_id),
                row_class=row_class,
                select=_select(selectable, actor_key(actor_id), actor.version),
                template_namespace=escape(clip(actor.actor_template_namespace)),
                template=escape(clip(actor.actor_template_name)),
                link=link,
                status=f'<span class="status {escape(status_class(status))}">{escape(status)}</span>',
                pod=escape(clip(or_dash(row["pod"]))),
                ip=escape(clip(or_dash(actor.ateom_pod_ip))),
                version=actor.version,
                snapshot=escape(clip(or_dash(actor.last_snapshot))),
            )
        )
    return mark_safe("".join(out))


def worker_rows_html(
    workers: list[Worker], unreadable: dict[str, Unreadable] | None = None, *, selectable: bool = False
) -> SafeString:
    """workers: Worker messages; unreadable: {key: why the ate server cannot read it} (Page.unreadable);
    ``selectable``: each row with its bulk checkbox."""
    detail = _url_format("worker_detail", 3)
    actor_detail = _url_format("actor_detail", 1)
    row_format = WORKER_ROW.format
    out: list[str] = []
    append = out.append
    for w in workers:
        ns, pool, pod = w.worker_namespace, w.worker_pool, w.worker_pod
        key = worker_key(ns, pool, pod)
        pod_cell = _link(detail, (ns, pool, pod), pod, worker_url, w)
        why = unreadable.get(key) if unreadable else None
        row_class = ""
        if why is not None:
            pod_cell += unreadable_flag(why)
            row_class = _UNREADABLE_ROW
        actor_id = w.actor_id
        if actor_id:
            actor_cell = _link(actor_detail, (actor_id,), actor_id, actor_url, actor_id)
        else:
            actor_cell = '<span class="muted">free</span>'
        template = f"{escape(clip(w.actor_namespace))}/{escape(clip(w.actor_template))}" if w.actor_template else "—"
        append(
            row_format(
                name=f"{escape(ns)}/{escape(pool)}/{escape(pod)}",
                row_class=row_class,
                select=_select(selectable, key, w.version),
                namespace=escape(ns),
                pool=escape(pool),
                link=pod_cell,
                ip=escape(clip(or_dash(w.ip))),
                actor=actor_cell,
                template=template,
                version=w.version,
            )
        )
    return mark_safe("".join(out))


def pool_rows_html(pools: list[dict[str, Any]]) -> SafeString:
    """The overview's workers-by-pool rows (pools: dicts with namespace, pool, free, assigned)."""
    base = escape(reverse("worker_list"))
    out: list[str] = []
    append = out.append
    for p in pools:
        ns = escape(p["namespace"])
        query = f"{base}?namespace={escape(quote(p['namespace']))}&amp;pool={escape(quote(p['pool']))}"
        append(
            "\n          <tr>\n"
            f'            <td data-label="Namespace">{ns}</td>\n'
            f'            <td data-label="Pool"><a href="{query}">{escape(p["pool"])}</a></td>\n'
            f'            <td class="num" data-label="Free"><a href="{query}&amp;assigned=free">{p["free"]}</a></td>\n'
            f'            <td class="num" data-label="Assigned"><a href="{query}&amp;assigned=assigned">'
            f"{p['assigned']}</a></td>\n"
            "          </tr>\n        "
        )
    return mark_safe("".join(out))
