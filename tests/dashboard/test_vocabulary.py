"""One vocabulary for records something cannot read (atedash/core/vocabulary.py), and the same counts on
every page: "unreadable by ate" (the ate server cannot read it; corrupt ones included) and "corrupt"
(atedash cannot decode it either). On the demo store plus a fault of each kind, the overview, the
actor and worker lists, the consistency check and /metrics agree."""

import io
import re
from html import unescape

import pytest
from django.core.management import call_command

from atedash.core import vocabulary
from atedash.core.app import current_app

FAULTS = {
    # atedash reads these, the ate server does not
    "actor:odd-status": b'{"actorId":"odd-status","actorTemplateNamespace":"team-a","status":"STATUS_PAUSED"}',
    "worker:team-a:small:odd-field": b'{"workerNamespace":"team-a","workerPool":"small","workerPod":"odd-field","x":1}',
    # neither does
    "worker:team-b:general:broken": b"\xff\xfe not a record",
}


@pytest.fixture
def demo(store):
    call_command("seed_demo", stdout=io.StringIO())
    for key, value in FAULTS.items():
        store.client.set(key, value)
    current_app().stats.refresh().join(60)
    current_app().checks.refresh().join(60)
    return store


def flags(body):
    return body.count('class="flag-unreadable"'), body.count('class="flag-corrupt"')


def walk_list(client, path):
    """(unreadable badges, corrupt badges) over every page of a list."""
    unreadable = corrupt = 0
    url = f"{path}?size=200"
    for _ in range(100):
        body = client.get(url).content.decode()
        start = body.index("-table")
        results = body[start : body.index("</table>", start)]
        u, c = flags(results)
        unreadable, corrupt = unreadable + u, corrupt + c
        following = re.search(r'href="([^"]+)"[^>]*id="next-page"', body)
        if following is None:
            return unreadable, corrupt
        url = unescape(following.group(1))
    raise AssertionError("the list did not end")


def metric(text, name, **labels):
    label = ",".join(f'{k}="{v}"' for k, v in labels.items())
    pattern = re.escape(name + (f"{{{label}}}" if label else "")) + r" ([0-9.e+]+)"
    return int(float(re.search(pattern, text).group(1)))


def test_the_counts_agree_on_every_page(demo, viewer):
    # The lists: one badge per record, corrupt ones flagged "corrupt".
    actors_u, actors_c = walk_list(viewer, "/actors/")
    workers_u, workers_c = walk_list(viewer, "/workers/")
    listed_unreadable = actors_u + actors_c + workers_u + workers_c
    listed_corrupt = actors_c + workers_c
    assert (listed_unreadable, listed_corrupt) == (4, 2)  # the demo's corrupt actor and FAULTS

    overview = viewer.get("/").content.decode()
    panel = re.search(r'id="unreadable-count"[^>]*>(.*?)</p>', overview, re.S).group(1)
    assert f"<strong>{listed_unreadable}</strong> records the ate server cannot read" in panel
    assert f"{listed_corrupt} of them" in panel and "flag-corrupt" in panel
    corrupt_row = re.search(r"<tr>\s*<td>(<span class=\"flag-corrupt\".*?)</tr>", overview, re.S).group(1)
    assert f'<td class="num">{actors_c}</td>' in corrupt_row

    check = viewer.get("/ops/check/?wait=1").content.decode()
    banner = re.search(r'id="check-unreadable">(.*?)</p>', check, re.S).group(1)
    assert f"{listed_unreadable} records the ate server cannot read" in banner
    assert f"{listed_unreadable - listed_corrupt} that atedash reads" in banner
    assert re.search(rf">{listed_corrupt} <span class=\"flag-corrupt\"", banner)

    text = viewer.get("/metrics").content.decode()
    assert metric(text, "atedash_unreadable_records", kind="actor") == actors_u + actors_c
    assert metric(text, "atedash_unreadable_records", kind="worker") == workers_u + workers_c
    assert metric(text, "atedash_corrupt_records", kind="actor") == actors_c
    assert metric(text, "atedash_corrupt_records", kind="worker") == workers_c
    assert metric(text, "atedash_actors", status="CORRUPT") == actors_c
    assert metric(text, "atedash_records_unreadable_by_server") == listed_unreadable
    assert metric(text, "atedash_consistency_findings", kind="corrupt_record") == listed_corrupt
    assert metric(text, "atedash_consistency_findings", kind="server_unreadable") == listed_unreadable - listed_corrupt


def test_one_word_and_one_badge_each(demo, viewer):
    pages = {
        "overview": "/",
        "actors": "/actors/?size=200",
        "workers": "/workers/?size=200",
        "odd actor": "/actors/odd-status/",
        "corrupt actor": "/actors/corrupt-demo-0001/",
        "check": "/ops/check/",
    }
    for name, url in pages.items():
        body = viewer.get(url).content.decode()
        for badge in re.findall(r'<span class="flag-unreadable"[^>]*>([^<]*)</span>', body):
            assert badge == vocabulary.UNREADABLE, name
        for badge in re.findall(r'<span class="flag-corrupt"[^>]*>([^<]*)</span>', body):
            assert badge == vocabulary.CORRUPT, name
        assert ">unreadable<" not in body and ">CORRUPT<" not in body, name
    # A corrupt record's page: one panel, one badge (not "unreadable" and "corrupt" side by side).
    body = viewer.get("/actors/corrupt-demo-0001/").content.decode()
    assert flags(body) == (0, 1) and 'id="corrupt-record"' in body and "the ate server cannot read it" in body
    body = viewer.get("/actors/odd-status/").content.decode()
    assert flags(body) == (1, 0) and 'id="unreadable-record"' in body
