"""The header's box for any identifier: straight to the record, else a search, else a page that says
nothing was found.

An actor id, a worker as namespace/pool/pod, or a full key (`actor:<id>`, `worker:<ns>:<pool>:<pod>`,
`lock:actor:<id>`) that exists opens at once (one EXISTS). Anything else (a pod name, `ns/pod`, an IP
or its prefix, a lock token, a snapshot path, part of an id) runs the searches storage/identify.py
plans for it, each a walk filtered on the primaries bounded by ATEDASH_LOOKUP_SECONDS: exactly one
match opens it; several are listed; none gives the 404 page with the list searches to try.
"""

import ipaddress
from urllib.parse import urlencode

from django.conf import settings
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET

from atedash.core.links import record_url
from atedash.core.pages import persistence
from atedash.core.request import AuthedHttpRequest
from atedash.records.forms import OpenRecordForm
from storage import keys
from storage.identify import identify


def _target(query: str) -> tuple[str, tuple[str, ...]] | None:
    """(kind, args) of the one record the query names, or None."""
    named = keys.record_of_key(query)
    if named is not None:
        return named
    parts = query.split("/")
    if len(parts) == 3 and all(parts):
        return "worker", tuple(parts)
    if len(parts) == 1 and ":" not in query:
        return "actor", (query,)
    return None


def _searches(query: str) -> list[tuple[str, str]]:
    """Links to the bounded list searches that may find what the query means: (label, url)."""
    actors, workers = reverse("actor_list"), reverse("worker_list")
    out = []
    try:
        ipaddress.ip_address(query)
    except ValueError:
        pass
    else:
        out.append((f"Actors whose ateom IP is {query}", f"{actors}?{urlencode({'ip': query})}"))
        out.append((f"Workers with IP {query}", f"{workers}?{urlencode({'ip': query})}"))
        return out
    parts = query.split("/")
    if len(parts) == 2 and all(parts):
        out.append((f"Actors on ateom pod {query}", f"{actors}?{urlencode({'pod': query})}"))
        out.append(
            (
                f"Workers in namespace {parts[0]} whose pod contains {parts[1]}",
                f"{workers}?{urlencode({'namespace': parts[0], 'q': parts[1]})}",
            )
        )
    elif len(parts) == 1 and ":" not in query:
        out.append((f"Actors whose id contains {query}", f"{actors}?{urlencode({'q': query})}"))
        out.append((f"Actors on ateom pod {query}", f"{actors}?{urlencode({'pod': query})}"))
        out.append((f"Workers whose pod or actor contains {query}", f"{workers}?{urlencode({'q': query})}"))
    return out


@require_GET
def open_record(request: AuthedHttpRequest) -> HttpResponse:
    form = OpenRecordForm(request.GET)
    context = {"form": form, "query": "", "key": None, "searches": []}
    if not form.is_valid():
        return render(request, "lookup/open.html", context, status=400)
    query = form.cleaned_data["q"]
    context["query"] = query
    if not query:
        return render(request, "lookup/open.html", context)
    target = _target(query)
    if target is not None:
        kind, args = target
        key = keys.actor_key(*args) if kind == "actor" else keys.worker_key(*args)
        context["key"] = key
        url = record_url(key)  # by key when no URL of the kind can carry the id (e.g. a "/" in it)
        if url and persistence(request.app).exists(key):
            return redirect(url)
    found = identify(persistence(request.app), query, seconds=settings.ATEDASH_LOOKUP_SECONDS or 2.5)
    if len(found.matches) == 1 and found.complete:
        return redirect(record_url(found.matches[0].key))
    context.update(found=found, matches=[(m, record_url(m.key)) for m in found.matches])
    context["searches"] = _searches(query)
    return render(request, "lookup/open.html", context, status=200 if found.matches else 404)
