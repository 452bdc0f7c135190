"""Lists say how many (issue 20 item 6): "about N actors (counted T ago)" from the overview's counts,
per status and per worker pool where the counts know the filter; nothing where they do not."""

from __future__ import annotations

import re

from atedash.core.app import current_app


def counted():
    stats = current_app().stats
    stats.refresh()
    stats.wait(timeout=30)
    assert stats.snapshot()[0] is not None


def count_line(body: str) -> str | None:
    m = re.search(r'<span class="list-count" id="list-count">(.*?)</span>', body, re.S)
    return m and " ".join(m.group(1).split())


def test_lists_say_about_how_many(viewer, make_actor, make_worker, page_html):
    make_actor("c-1")
    make_actor("c-2")
    make_actor("c-3", status="STATUS_RUNNING", ateom_pod_namespace="ns", ateom_pod_name="p")
    make_worker("ns", "pool", "w-1")
    make_worker("ns", "pool", "w-2", actor_id="c-3")
    make_worker("other", "gpu", "w-3")
    counted()
    line = count_line(page_html(viewer.get("/actors/")))
    assert line.startswith("about 3 actors (counted ") and line.endswith("ago) ·")
    assert count_line(page_html(viewer.get("/actors/?status=RUNNING"))).startswith("about 1 RUNNING actors")
    assert count_line(page_html(viewer.get("/actors/?status=RESUMING"))).startswith("about 0 RESUMING actors")
    # A filter the counts do not know: no number rather than a wrong one.
    assert count_line(page_html(viewer.get("/actors/?q=c-"))) is None
    assert count_line(page_html(viewer.get("/workers/"))).startswith("about 3 workers")
    assert count_line(page_html(viewer.get("/workers/?namespace=ns&assigned=free"))).startswith(
        "about 1 free workers in ns"
    )
    assert count_line(page_html(viewer.get("/workers/?ip=10.0.0.1"))) is None
