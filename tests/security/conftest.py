"""Security tests: gunicorn as shipped, with operators of every role (`serve`).

The dashboard's fixtures (settings on the test cluster, operators of every role, logged-in clients)
are reused from tests/dashboard/conftest.py rather than copied."""

import json
import os
import secrets
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests import http_client
from tests.dashboard.conftest import (  # noqa: F401 - fixtures, registered by being imported
    PASSWORDS,
    admin,
    audit_log,
    dash_settings,
    editor,
    make_actor,
    make_worker,
    viewer,
)

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def operators_file_text():
    """The users file every server starts with: operators of every role, real PBKDF2 hashes. Hashed
    once per session (a million iterations each: seconds per server otherwise)."""
    from django.contrib.auth.hashers import PBKDF2PasswordHasher, make_password

    operators = {
        role: {"role": role, "password": make_password(password, hasher=PBKDF2PasswordHasher())}
        for role, password in PASSWORDS.items()
    }
    return json.dumps({"operators": operators})


@pytest.fixture(scope="session")
def static_root(tmp_path_factory):
    """The static files as the image collects them (manage.py collectstatic), once per session: the
    pages need their manifest, and it is the same for every server."""
    root = tmp_path_factory.mktemp("static")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ATEDASH_")}
    env.pop("PYTEST_VERSION", None)
    env.update(ATEDASH_SECRET_KEY=secrets.token_urlsafe(60), ATEDASH_STATIC_ROOT=str(root))
    collect = [sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"]
    subprocess.run(collect, cwd=REPO, env=env, check=True)
    return root


@pytest.fixture
def serve(redis_url, store, tmp_path, operators_file_text, static_root):
    """serve(**env) -> Server: atedash under gunicorn as shipped (atedash/gunicorn.conf.py) on a free
    port, operators of every role in its users file (real PBKDF2 hashes), stopped after the test."""
    servers = []

    def start(**env):
        directory = tmp_path / f"server-{len(servers)}"
        server = Server(redis_url, directory, {"ATEDASH_STATIC_ROOT": str(static_root), **env}, operators_file_text)
        servers.append(server)
        server.start()
        return server

    yield start
    for server in servers:  # all at once: each takes about half a second to stop
        server.terminate()
    for server in servers:
        server.stop()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, redis_url, directory, env, operators_file_text):
        directory.mkdir()
        (directory / "prom").mkdir()
        self.users = directory / "operators.json"
        self.users.write_text(operators_file_text)
        self.key = secrets.token_urlsafe(60)
        self.port = free_port()
        self.log: list[str] = []
        self.env = dict(
            os.environ,
            ATEDASH_REDIS_URL=redis_url,
            ATEDASH_SECRET_KEY=self.key,
            ATEDASH_ENVIRONMENT="security-test",
            ATEDASH_USERS_FILE=str(self.users),
            PROMETHEUS_MULTIPROC_DIR=str(directory / "prom"),
        )
        self.env.update({"GUNICORN_WORKERS": "1", "GUNICORN_THREADS": "4", **env})
        self.env.pop("PYTEST_VERSION", None)
        self.proc = self._drain = None
        self._terminated = False
        self._browsers: list[Browser] = []

    def start(self):
        self.proc = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "gunicorn"),
                "atedash.wsgi",
                "-c",
                "atedash/gunicorn.conf.py",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--access-logfile",
                "/dev/null",
            ],
            cwd=REPO,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for line in self.proc.stderr:  # the socket is bound before the worker boots
            self.log.append(line)
            if "Booting worker" in line:
                break
        assert any("Booting worker" in line for line in self.log), "".join(self.log)[-3000:]
        self._drain = threading.Thread(target=lambda: self.log.extend(self.proc.stderr), daemon=True)
        self._drain.start()

    def terminate(self):
        """Asks the server to stop (SIGTERM, a graceful stop), once. Its clients' keep-alive
        connections are closed first: a worker waits for an open one (2 s instead of 0.4 s)."""
        if self.proc is not None and not self._terminated:
            for browser in self._browsers:
                browser.close()
            self.proc.terminate()
            self._terminated = True

    def stop(self):
        if self.proc is None:
            return
        self.terminate()
        self.proc.wait(timeout=30)
        if self._drain is not None:
            self._drain.join(timeout=10)
        self.proc.stderr.close()

    def browser(self, **headers):
        browser = Browser(self.port, headers)
        self._browsers.append(browser)
        return browser

    def tracebacks(self):
        return [line for line in self.log if "Traceback" in line]


class Browser(http_client.Browser):
    """A browser that knows the test operators' passwords."""

    def login(self, name, password=None):
        return super().login(name, password or PASSWORDS[name])
