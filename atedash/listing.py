"""The rows of the actor, worker and pool tables, rendered in Python: the hot path of the list pages.

Django's template engine costs 5-10 µs per variable node; a page of 50 records x 8 columns with a
URL per row spent most of its time there. These functions produce exactly what the row markup in
templates/actors/_table.html, templates/workers/_table.html and templates/overview/_stats.html
used to (same escaping as Django's autoescape: html.escape; same URLs as {% url %} / reverse()), at
about a tenth of the cost. tests/dashboard/test_fast_paths.py checks them against the template
loops they replace.
"""

import re
from html import escape
from urllib.parse import quote

from django.urls import reverse
from django.utils.safestring import SafeString, mark_safe

from atedash.templatetags.atedash import actor_url, clip, or_dash, status_class, worker_url
from storage.keys import worker_key

# URL path segments that reverse() emits unchanged (no percent-encoding); anything else, and ids
# that cannot be part of a URL (empty, or with a "/"), goes through reverse() itself.
_PLAIN = re.compile(r"[A-Za-z0-9._~-]+\Z")
_P = "zzatedashzz"  # placeholder, plain characters only


def unreadable_flag(unreadable) -> str:
    """The flag of a record the ate server cannot read (storage.server_readable.Unreadable): its
    reason, in Go's words, and what it breaks, on hover and for screen readers."""
    why = escape(f"{unreadable.reason} ({unreadable.fails})")
    label = f"the ate server cannot read it: {why}"
    return f' <span class="flag-unreadable" title="{why}" aria-label="{label}">unreadable</span>'


def _url_format(name, count):
    """reverse(name, args=[placeholders]) turned into a str.format template ("/actors/{0}/")."""
    url = reverse(name, args=[f"{_P}{i}" for i in range(count)])
    url = url.replace("{", "{{").replace("}", "}}")
    for i in range(count):
        url = url.replace(f"{_P}{i}", f"{{{i}}}", 1)
    return url


def actor_rows_html(rows) -> SafeString:
    """rows: dicts with "actor" (Actor), "status" (short name), "pod", and "unreadable" (why the ate
    server cannot read the record, or None / absent), as actors.actor_list makes."""
    detail = _url_format("actor_detail", 1)
    plain = _PLAIN.match
    out = []
    append = out.append
    for row in rows:
        actor = row["actor"]
        actor_id = actor.actor_id
        status = row["status"]
        if plain(actor_id):
            link = f'<a href="{escape(detail.format(actor_id))}">{actor_id}</a>'
        else:
            url = actor_url(actor_id)
            link = f'<a href="{escape(url)}">{escape(actor_id)}</a>' if url else escape(actor_id)
        unreadable = row.get("unreadable")
        row_class = ""
        if unreadable is not None:
            link += unreadable_flag(unreadable)
            row_class = ' class="row-unreadable"'
        append(
            f'\n      <tr data-actor-id="{escape(actor_id)}"{row_class}>\n'
            f'        <td data-label="Template namespace">{escape(clip(actor.actor_template_namespace))}</td>\n'
            f'        <td data-label="Template">{escape(clip(actor.actor_template_name))}</td>\n'
            f'        <td data-label="Id">{link}</td>\n'
            f'        <td data-label="Status"><span class="status {escape(status_class(status))}">'
            f"{escape(status)}</span></td>\n"
            f'        <td data-label="Ateom pod">{escape(clip(or_dash(row["pod"])))}</td>\n'
            f'        <td data-label="Ateom IP">{escape(clip(or_dash(actor.ateom_pod_ip)))}</td>\n'
            f'        <td class="num" data-label="Version">{actor.version}</td>\n'
            f'        <td data-label="Last snapshot">{escape(clip(or_dash(actor.last_snapshot)))}</td>\n'
            "      </tr>\n    "
        )
    return mark_safe("".join(out))


def worker_rows_html(workers, unreadable=None) -> SafeString:
    """workers: Worker messages; unreadable: {key: why the ate server cannot read it} (Page.unreadable)."""
    detail = _url_format("worker_detail", 3)
    actor_detail = _url_format("actor_detail", 1)
    plain = _PLAIN.match
    out = []
    append = out.append
    for w in workers:
        ns, pool, pod = w.worker_namespace, w.worker_pool, w.worker_pod
        if plain(ns) and plain(pool) and plain(pod):
            pod_cell = f'<a href="{escape(detail.format(ns, pool, pod))}">{pod}</a>'
        else:
            url = worker_url(w)
            pod_cell = f'<a href="{escape(url)}">{escape(pod)}</a>' if url else escape(pod)
        why = unreadable.get(worker_key(ns, pool, pod)) if unreadable else None
        row_class = ""
        if why is not None:
            pod_cell += unreadable_flag(why)
            row_class = ' class="row-unreadable"'
        actor_id = w.actor_id
        if not actor_id:
            actor_cell = '<span class="muted">free</span>'
        elif plain(actor_id):
            actor_cell = f'<a href="{escape(actor_detail.format(actor_id))}">{actor_id}</a>'
        else:
            url = actor_url(actor_id)
            actor_cell = f'<a href="{escape(url)}">{escape(actor_id)}</a>' if url else escape(actor_id)
        template = f"{escape(clip(w.actor_namespace))}/{escape(clip(w.actor_template))}" if w.actor_template else "—"
        append(
            f'\n      <tr data-worker="{escape(ns)}/{escape(pool)}/{escape(pod)}"{row_class}>\n'
            f'        <td data-label="Namespace">{escape(ns)}</td>\n'
            f'        <td data-label="Pool">{escape(pool)}</td>\n'
            f'        <td data-label="Pod">{pod_cell}</td>\n'
            f'        <td data-label="IP">{escape(clip(or_dash(w.ip)))}</td>\n'
            f'        <td data-label="Assigned actor">{actor_cell}</td>\n'
            f'        <td data-label="Actor template">{template}</td>\n'
            f'        <td class="num" data-label="Version">{w.version}</td>\n'
            "      </tr>\n    "
        )
    return mark_safe("".join(out))


def pool_rows_html(pools) -> SafeString:
    """The overview's workers-by-pool rows (pools: dicts with namespace, pool, free, assigned)."""
    base = escape(reverse("worker_list"))
    out = []
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
