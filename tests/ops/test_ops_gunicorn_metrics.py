"""/metrics under gunicorn with two worker processes: the request histogram covers both (multiprocess mode)."""

import http.client
import os
import re
import secrets
import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.process
REPO = Path(__file__).resolve().parents[2]
TOKEN = secrets.token_urlsafe(32)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(port, path, headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", path, headers={"Host": "localhost", **(headers or {})})
    response = conn.getresponse()
    body = response.read().decode()
    conn.close()
    return response.status, body


def test_metrics_aggregate_over_gunicorn_workers(store, redis_url, tmp_path):
    port = free_port()
    env = dict(
        os.environ,
        ATEDASH_REDIS_URL=redis_url,
        ATEDASH_SECRET_KEY=secrets.token_urlsafe(50),
        ATEDASH_ENVIRONMENT="gunicorn-test",
        ATEDASH_METRICS_TOKEN=TOKEN,
        ATEDASH_USERS_FILE=str(tmp_path / "operators.json"),
        ATEDASH_STATIC_ROOT=str(tmp_path / "static"),
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "prom"),
        GUNICORN_WORKERS="2",
        GUNICORN_THREADS="2",
    )
    env.pop("PYTEST_VERSION", None)
    gunicorn = Path(sys.executable).parent / "gunicorn"
    proc = subprocess.Popen(
        [str(gunicorn), "atedash.wsgi", "-c", "atedash/gunicorn.conf.py", "--bind", f"127.0.0.1:{port}"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        booted = 0
        for line in proc.stderr:  # wait for both workers to announce themselves
            if "Booting worker" in line:
                booted += 1
                if booted == 2:
                    break
        assert booted == 2, "gunicorn did not boot two workers"
        # Many requests: with two processes answering, both see some of them.
        for _ in range(40):
            assert get(port, "/healthz")[0] == 200
        status, body = get(port, "/metrics", {"Authorization": f"Bearer {TOKEN}"})
        assert status == 200, body
        counts = re.findall(r'atedash_request_duration_seconds_count\{[^}]*view="healthz"[^}]*\} (\S+)', body)
        assert counts and sum(float(c) for c in counts) == 40.0, body[:3000]
        assert "atedash_actors" in body and "atedash_consistency_findings" in body
        assert get(port, "/metrics")[0] == 302
        assert get(port, "/metrics", {"Authorization": "Bearer wrong"})[0] == 401
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        proc.stderr.close()


def test_a_management_command_runs_before_gunicorn_made_the_metrics_directory(redis_url, tmp_path):
    # As a Job in a fresh container with the deploy manifests' environment: nobody made it yet.
    directory = tmp_path / "not" / "made" / "yet"
    env = dict(
        os.environ,
        ATEDASH_REDIS_URL=redis_url,
        ATEDASH_SECRET_KEY=secrets.token_urlsafe(50),
        ATEDASH_ENVIRONMENT="job-test",
        ATEDASH_USERS_FILE=str(tmp_path / "operators.json"),
        PROMETHEUS_MULTIPROC_DIR=str(directory),
        DJANGO_SETTINGS_MODULE="atedash.settings",
    )
    env.pop("ATEDASH_DEBUG", None)
    done = subprocess.run(
        [sys.executable, "manage.py", "operators", "list"], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert directory.is_dir()
