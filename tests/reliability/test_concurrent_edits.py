"""Many operators edit the same actor at once, over real HTTP, against gunicorn (2 processes x 8 threads).

24 clients, each with its own cookies and CSRF token, make 14 edit attempts each (336 in all) on one
actor: open the edit form (its version), change a field, save; on the merge view (the field changed on
both sides), half of them decide for their own value as the view asks. Every save the dashboard
confirmed (302 to the detail page) is counted in the final version, each confirmed exactly one version,
and every other attempt got the merge view (409) naming the version stored now. Nothing else: no 500,
no 503, no silent overwrite.
"""

import html
import os
import re
import secrets
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.cluster_faults import poll
from tests.http_client import Browser

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
CLIENTS = 24
ATTEMPTS = 14
VERSION_INPUT = re.compile(r'name="version" value="(\d+)"')
CSRF_INPUT = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
MERGE_FORM = re.compile(r'<form[^>]*id="merge-form"[^>]*>(.*?)</form>', re.S)
HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)"')


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def gunicorn(redis_url, store, tmp_path):
    """atedash under gunicorn; operators come from a trusted proxy header (as behind an auth proxy)."""
    port = free_port()
    (tmp_path / "prom").mkdir()
    env = dict(
        os.environ,
        ATEDASH_REDIS_URL=redis_url,
        ATEDASH_SECRET_KEY=secrets.token_urlsafe(50),
        ATEDASH_ENVIRONMENT="concurrency-test",
        ATEDASH_USERS_FILE=str(tmp_path / "operators.json"),
        ATEDASH_TRUSTED_HEADER="X-Forwarded-User",
        ATEDASH_TRUSTED_HEADER_ROLE_HEADER="X-Forwarded-Role",
        ATEDASH_TRUSTED_PROXIES="127.0.0.1",
        ATEDASH_AUDIT_STREAM="0",
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "prom"),
        GUNICORN_WORKERS="2",
        GUNICORN_THREADS="8",
        GUNICORN_LOG_LEVEL="warning",
    )
    proc = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "gunicorn"),
            "atedash.wsgi",
            "-c",
            "atedash/gunicorn.conf.py",
            "--bind",
            f"127.0.0.1:{port}",
            "--access-logfile",
            "/dev/null",
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        poll(lambda: operator_browser(port, "probe").request("GET", "/readyz")[0] == 200, "gunicorn to serve", 60)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def operator_browser(port, name, role="editor"):
    """One operator's browser behind the auth proxy (its user and role headers)."""
    return Browser(port, {"X-Forwarded-User": name, "X-Forwarded-Role": role})


def test_many_operators_edit_one_actor(gunicorn, make_actor, store, capsys):
    make_actor("hot")
    url = "/actors/hot/edit/"
    lock = threading.Lock()
    saved = []  # (client, version confirmed, snapshot)
    conflicts = []  # (client, stored version named by the conflict view)
    other = []

    def operator(n):
        session = operator_browser(gunicorn, f"op-{n}")
        for attempt in range(ATTEMPTS):
            status, page = session.request("GET", url)
            if status != 200:
                with lock:
                    other.append((n, "GET", status, page[:300]))
                continue
            version = int(VERSION_INPUT.search(page).group(1))
            snapshot = f"op-{n}-{attempt}"
            form = {
                "csrfmiddlewaretoken": CSRF_INPUT.search(page).group(1),
                "version": version,
                "actor_id": "hot",
                "actor_template_namespace": "team-a",
                "actor_template_name": "web",
                "status": "SUSPENDED",
                "last_snapshot": snapshot,
            }
            status, page = session.request("POST", url, form)
            # On the merge view, every other client decides for its own snapshot, on the version it shows.
            reapplied = 0
            while status == 409 and n % 2 == 0 and "merge-form" in page and reapplied < 5:
                reapplied += 1
                stored = int(re.search(r'id="stored-version">(\d+)<', page).group(1))
                with lock:
                    conflicts.append((n, stored))
                fields = dict(HIDDEN.findall(MERGE_FORM.search(page).group(1)))
                fields = {k: html.unescape(v) for k, v in fields.items()}
                fields["last_snapshot"] = snapshot  # the decision: mine
                version = int(fields["version"])
                status, page = session.request("POST", url, fields)
            with lock:
                if status == 302:
                    saved.append((n, version + 1, snapshot))
                elif (
                    status == 409
                    and "The record changed while you were editing" in page
                    and 'id="conflict-table"' in page
                ):
                    conflicts.append((n, int(re.search(r'id="stored-version">(\d+)<', page).group(1))))
                else:
                    other.append((n, "POST", status, page[:300]))

    started = time.monotonic()
    threads = [threading.Thread(target=operator, args=(n,)) for n in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=240)
    elapsed = time.monotonic() - started

    assert not other, other[:5]
    final = store.get_actor("hot")
    versions = sorted(v for _, v, _ in saved)
    with capsys.disabled():
        print(
            f"\n[concurrency] {CLIENTS} HTTP clients, {CLIENTS * ATTEMPTS} edit attempts on one actor in "
            f"{elapsed:.1f} s: {len(saved)} saved, {len(conflicts)} conflict views "
            f"(decided on the merge view where asked); final version {final.version}"
        )
    assert len(saved) >= CLIENTS  # contention, but progress
    # Every confirmed save is one version of the record, and every version is a confirmed save.
    assert versions == list(range(2, final.version + 1)), versions
    # The stored record is the edit confirmed last.
    last = [s for _, v, s in saved if v == final.version]
    assert final.last_snapshot == last[0]
