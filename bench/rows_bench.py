"""ms per page of 50 list rows: atedash/records/listing.py's Python rows against the same markup from a
template, Django's engine with the cached loader (what production uses) and Jinja2. No Redis needed.

    .venv/bin/python bench/rows_bench.py [--rows 50] [--renders 2000] [--repeat 5]

Rows like the demo data's (ids, namespaces, pods, IPs, snapshot paths), plus a few that need escaping.
Each way renders the same page of rows --renders times; best of --repeat, reported per page as CPU
time of the process (time.process_time), so that other jobs on the machine count little. Before
timing, each template's output is checked against the Python rows (byte for byte for Django's loop,
which is the markup listing.py replaced; the same after whitespace for Jinja2's).
The issue's rule (issue 9, item 5): keep hand-built HTML only where templates cost over 1 ms a page.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "atedash.settings")
os.environ.setdefault("ATEDASH_SECRET_KEY", secrets.token_urlsafe(50))

import django  # noqa: E402

django.setup()

from django.template import Context, Engine  # noqa: E402

from atedash.core.links import actor_url, worker_url  # noqa: E402
from atedash.records import listing  # noqa: E402
from atedash.records.kinds import status_name  # noqa: E402
from atedash.templatetags.atedash import clip, or_dash, status_class  # noqa: E402
from storage.ateapi_pb2 import Actor, Worker  # noqa: E402

# The row markup listing.py builds (its ACTOR_ROW / WORKER_ROW fragments), as template loops: what
# the fragments are timed against, checked byte for byte before timing.
ACTOR_DJANGO = """{% for row in rows %}
      <tr data-actor-id="{{ row.actor.actor_id }}">
        <td data-label="Template namespace">{{ row.actor.actor_template_namespace|clip }}</td>
        <td data-label="Template">{{ row.actor.actor_template_name|clip }}</td>
        <td data-label="Id">{% with url=row.actor.actor_id|actor_url %}{% if url %}<a href="{{ url }}">{{ row.actor.actor_id }}</a>{% else %}{{ row.actor.actor_id }}{% endif %}{% endwith %}</td>
        <td data-label="Status"><span class="status {{ row.status|status_class }}">{{ row.status }}</span></td>
        <td data-label="Ateom pod">{{ row.pod|or_dash|clip }}</td>
        <td data-label="Ateom IP">{{ row.actor.ateom_pod_ip|or_dash|clip }}</td>
        <td class="num" data-label="Version">{{ row.actor.version }}</td>
        <td data-label="Last snapshot">{{ row.actor.last_snapshot|or_dash|clip }}</td>
      </tr>
    {% endfor %}"""

WORKER_DJANGO = """{% for w in rows %}
      <tr data-worker="{{ w.worker_namespace }}/{{ w.worker_pool }}/{{ w.worker_pod }}">
        <td data-label="Namespace">{{ w.worker_namespace }}</td>
        <td data-label="Pool">{{ w.worker_pool }}</td>
        <td data-label="Pod">{% with url=w|worker_url %}{% if url %}<a href="{{ url }}">{{ w.worker_pod }}</a>{% else %}{{ w.worker_pod }}{% endif %}{% endwith %}</td>
        <td data-label="IP">{{ w.ip|or_dash|clip }}</td>
        <td data-label="Assigned actor">{% if w.actor_id %}{% with url=w.actor_id|actor_url %}{% if url %}<a href="{{ url }}">{{ w.actor_id }}</a>{% else %}{{ w.actor_id }}{% endif %}{% endwith %}{% else %}<span class="muted">free</span>{% endif %}</td>
        <td data-label="Actor template">{% if w.actor_template %}{{ w.actor_namespace|clip }}/{{ w.actor_template|clip }}{% else %}—{% endif %}</td>
        <td class="num" data-label="Version">{{ w.version }}</td>
      </tr>
    {% endfor %}"""

ACTOR_JINJA = """{% for row in rows %}{% set a = row.actor %}{% set url = a.actor_id|actor_url %}
      <tr data-actor-id="{{ a.actor_id }}">
        <td data-label="Template namespace">{{ a.actor_template_namespace|clip }}</td>
        <td data-label="Template">{{ a.actor_template_name|clip }}</td>
        <td data-label="Id">{% if url %}<a href="{{ url }}">{{ a.actor_id }}</a>{% else %}{{ a.actor_id }}{% endif %}</td>
        <td data-label="Status"><span class="status {{ row.status|status_class }}">{{ row.status }}</span></td>
        <td data-label="Ateom pod">{{ row.pod|or_dash|clip }}</td>
        <td data-label="Ateom IP">{{ a.ateom_pod_ip|or_dash|clip }}</td>
        <td class="num" data-label="Version">{{ a.version }}</td>
        <td data-label="Last snapshot">{{ a.last_snapshot|or_dash|clip }}</td>
      </tr>
    {% endfor %}"""

WORKER_JINJA = """{% for w in rows %}{% set url = w|worker_url %}
      <tr data-worker="{{ w.worker_namespace }}/{{ w.worker_pool }}/{{ w.worker_pod }}">
        <td data-label="Namespace">{{ w.worker_namespace }}</td>
        <td data-label="Pool">{{ w.worker_pool }}</td>
        <td data-label="Pod">{% if url %}<a href="{{ url }}">{{ w.worker_pod }}</a>{% else %}{{ w.worker_pod }}{% endif %}</td>
        <td data-label="IP">{{ w.ip|or_dash|clip }}</td>
        <td data-label="Assigned actor">{% if w.actor_id %}{% set aurl = w.actor_id|actor_url %}{% if aurl %}<a href="{{ aurl }}">{{ w.actor_id }}</a>{% else %}{{ w.actor_id }}{% endif %}{% else %}<span class="muted">free</span>{% endif %}</td>
        <td data-label="Actor template">{% if w.actor_template %}{{ w.actor_namespace|clip }}/{{ w.actor_template|clip }}{% else %}—{% endif %}</td>
        <td class="num" data-label="Version">{{ w.version }}</td>
      </tr>
    {% endfor %}"""

NAMESPACES = ["team-a", "team-b", "ml-serving"]


def actor_rows(n):
    rows = []
    for i in range(n):
        ns = NAMESPACES[i % 3]
        actor = Actor(
            actor_id=f"inference-{i:04d}" if i % 10 else f'odd<&>"id-{i}',
            version=i + 3,
            actor_template_namespace=ns,
            actor_template_name="inference",
            status=(i % 5) + 1 if i % 7 else 0,
            ateom_pod_namespace=ns if i % 4 else "",
            ateom_pod_name=f"cpu-worker-{i:04d}" if i % 4 else "",
            ateom_pod_ip=f"10.20.{i % 250}.{(i * 7) % 250}" if i % 4 else "",
            last_snapshot=f"gs://ate-snapshots/{ns}/inference-{i:04d}/{i % 60:04d}" if i % 3 else "",
        )
        pod = f"{actor.ateom_pod_namespace}/{actor.ateom_pod_name}" if actor.ateom_pod_name else ""
        rows.append({"actor": actor, "status": status_name(actor), "pod": pod})
    return rows


def workers(n):
    out = []
    for i in range(n):
        ns = NAMESPACES[i % 3]
        out.append(
            Worker(
                worker_namespace=ns,
                worker_pool=["small", "large", "gpu"][i % 3],
                worker_pod=f"cpu-worker-{i:04d}" if i % 10 else f"pod<{i}>",
                ip=f"10.20.{i % 250}.{(i * 7) % 250}",
                version=i + 1,
                actor_id=f"inference-{i:04d}" if i % 5 else "",
                actor_namespace=ns if i % 5 else "",
                actor_template="inference" if i % 5 else "",
            )
        )
    return out


def django_engine(templates):
    # DEBUG off: what production runs (the cached loader compiles each template once).
    loaders = [("django.template.loaders.cached.Loader", [("django.template.loaders.locmem.Loader", templates)])]
    return Engine(loaders=loaders, builtins=["atedash.templatetags.atedash"])


def jinja_env(templates):
    import jinja2

    env = jinja2.Environment(loader=jinja2.DictLoader(templates), autoescape=True, auto_reload=False)
    env.filters.update(
        actor_url=actor_url, worker_url=worker_url, clip=clip, or_dash=or_dash, status_class=status_class
    )
    return env


def best_ms_per_page(render, renders, repeat):
    """CPU time of this process per render (time.process_time: a machine that other jobs keep busy
    slows the wall clock, much less the CPU time a render needs), best of `repeat`."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.process_time()
        for _ in range(renders):
            render()
        best = min(best, (time.process_time() - t0) / renders)
    return best * 1000


def squash(html):
    """Whitespace collapsed, and MarkupSafe's &#34; / &#39; spelled as html.escape does (same HTML)."""
    html = str(html).replace("&#34;", "&quot;").replace("&#39;", "&#x27;")
    return re.sub(r"\s+", " ", html).strip()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50)
    parser.add_argument("--renders", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    dj = django_engine({"actors.html": ACTOR_DJANGO, "workers.html": WORKER_DJANGO})
    jj = jinja_env({"actors.html": ACTOR_JINJA, "workers.html": WORKER_JINJA})
    cases = [
        ("actors", actor_rows(args.rows), listing.actor_rows_html),
        ("workers", workers(args.rows), listing.worker_rows_html),
    ]
    print(f"{args.rows} rows a page, {args.renders} renders, best of {args.repeat}; Python {sys.version.split()[0]}")
    print(f"{'list':8} {'python rows':>12} {'django cached':>14} {'jinja2':>9}   (CPU ms per page)")
    for name, rows, python_rows in cases:
        django_template = dj.get_template(f"{name}.html")
        jinja_template = jj.get_template(f"{name}.html")

        def with_django(t=django_template, rows=rows):
            return t.render(Context({"rows": rows}))

        def with_jinja(t=jinja_template, rows=rows):
            return t.render(rows=rows)

        expected = python_rows(rows)
        assert with_django() == expected, f"{name}: the Django loop differs from listing.py"
        assert squash(with_jinja()) == squash(expected), f"{name}: the Jinja2 loop differs from listing.py"

        def with_python(f=python_rows, rows=rows):
            return f(rows)

        timings = [best_ms_per_page(f, args.renders, args.repeat) for f in (with_python, with_django, with_jinja)]
        print(f"{name:8} {timings[0]:12.3f} {timings[1]:14.3f} {timings[2]:9.3f}", flush=True)


if __name__ == "__main__":
    main()
