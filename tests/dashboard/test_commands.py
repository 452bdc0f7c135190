"""seed_demo, the WSGI entry point's refusal to run without a key, and scripts/run-local."""

import io
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command

from storage.ateapi_pb2 import Actor

REPO = Path(__file__).resolve().parents[2]
S = Actor.Status


def test_seed_demo_seeds_an_empty_store_once(store):
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    assert "seeded" in out.getvalue()
    page = store.scan_actors(limit=1000)
    actors = {a.actor_id: a for a in page.records}
    workers = store.scan_workers(limit=1000).records
    assert 200 <= len(actors) <= 1000 and 100 <= len(workers) <= 1000
    assert {a.status for a in actors.values()} >= {
        S.STATUS_RUNNING,
        S.STATUS_SUSPENDED,
        S.STATUS_RESUMING,
        S.STATUS_SUSPENDING,
    }
    assert len({(w.worker_namespace, w.worker_pool) for w in workers}) >= 3
    assert len(page.corrupt) == 1  # one corrupt record, shown as a flagged row
    by_pod = {(w.worker_namespace, w.worker_pod): w for w in workers}
    # Records that disagree, as a crash leaves them:
    running_without_worker = [
        a
        for a in actors.values()
        if a.status == S.STATUS_RUNNING and (a.ateom_pod_namespace, a.ateom_pod_name) not in by_pod
    ]
    suspended_naming_a_pod = [a for a in actors.values() if a.status == S.STATUS_SUSPENDED and a.ateom_pod_name]
    worker_pointing_elsewhere = [
        w for w in workers if w.actor_id in actors and actors[w.actor_id].ateom_pod_name != w.worker_pod
    ]
    worker_pointing_nowhere = [w for w in workers if w.actor_id and w.actor_id not in actors]
    assert running_without_worker and suspended_naming_a_pod and worker_pointing_elsewhere and worker_pointing_nowhere
    locks = store.scan_locks(limit=100).records
    stale = [lock for lock in locks if actors[lock.key.removeprefix("lock:actor:")].status == S.STATUS_SUSPENDED]
    assert stale and all(lock.ttl_ms for lock in locks)

    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    assert "not seeding" in out.getvalue()
    assert len(store.scan_actors(limit=1000).records) == len(actors)


def _env_without_secrets():
    env = {k: v for k, v in os.environ.items() if not k.startswith("ATEDASH_") and k != "PYTEST_VERSION"}
    env["PYTHONPATH"] = str(REPO)
    return env


@pytest.mark.process
def test_wsgi_refuses_to_start_without_a_secret_key():
    result = subprocess.run(
        [sys.executable, "-c", "import atedash.wsgi"],
        cwd=REPO,
        env=_env_without_secrets(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr
    env = _env_without_secrets() | {"ATEDASH_SECRET_KEY": secrets.token_urlsafe(50)}
    result = subprocess.run(
        [sys.executable, "-c", "import atedash.wsgi"], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.process
def test_production_defaults():
    code = (
        "from django.conf import settings as s; import django; django.setup(); "
        "print(s.DEBUG, s.ATEDASH_ALLOW_FLUSH, s.ATEDASH_ENVIRONMENT, s.ALLOWED_HOSTS, "
        "s.SESSION_COOKIE_HTTPONLY, s.ATEDASH_TRUSTED_HEADER == '', s.DATABASES)"
    )
    env = _env_without_secrets() | {"DJANGO_SETTINGS_MODULE": "atedash.settings"}
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False False unnamed ['127.0.0.1', 'localhost'] True True {}"


def test_run_local_script_is_valid_bash():
    script = REPO / "scripts" / "run-local"
    assert os.access(script, os.X_OK)
    assert subprocess.run(["bash", "-n", str(script)], capture_output=True).returncode == 0
    text = script.read_text()
    for needed in (
        "seed_demo",
        "operators add admin --role admin",
        "collectstatic",
        "gunicorn atedash.wsgi",
        "var/secret_key",
        "ATEDASH_ALLOW_FLUSH",
        "ATEDASH_ENVIRONMENT",
    ):
        assert needed in text
