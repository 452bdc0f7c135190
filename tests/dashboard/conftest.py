"""Dashboard fixtures: settings pointed at the test cluster, operators of every role, logged-in clients.

Built on tests/conftest.py: `redis_url` (the test cluster) and `store` (a Persistence over it,
emptied before each test).

Each test gets a users file of its own, with the same bytes every time (hashed once), so that the
role fixtures (viewer, editor, admin, as_role) can reuse a session cookie signed in by an earlier
test instead of signing in again: a login is a POST, a password check and store round trips, and
was a third of a dashboard test's time. A test that counts logins (the audit stream holds one per
sign-in) or tests the login itself is marked `fresh_login` and signs in anew.
"""

import copy
import json
import logging
import os
import time
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.test import Client

from atedash.core.app import current_app
from tests.conftest import restore_sessions_epoch, sessions_epoch

PASSWORDS = {"viewer": "viewer-pass-1", "editor": "editor-pass-1", "admin": "admin-pass-1"}
ENVIRONMENT = "dash-test"


def configure(settings, redis_url, tmp_path, environment):
    """Django ``settings`` on the test cluster, named ``environment``, flush not allowed, a fresh
    users file (in ``tmp_path``) holding an operator of every role (PASSWORDS)."""
    settings.ATEDASH_REDIS_URL = redis_url
    settings.ATEDASH_REDIS_CLUSTER = "auto"
    settings.ATEDASH_ENVIRONMENT = environment
    settings.ATEDASH_ALLOW_FLUSH = False
    settings.ATEDASH_USERS_FILE = tmp_path / "operators.json"
    settings.ATEDASH_TRUSTED_HEADER = ""
    # A list page stops after ATEDASH_SCAN_SECONDS (0.5 s in production) and offers the rest on the next
    # page; on a loaded machine a page of three workers can take that long. Tests that assert what one
    # page holds get a budget they never reach; the tests of the budget set their own (test_fast_paths).
    settings.ATEDASH_SCAN_SECONDS = 60
    # An actor's page waits up to this for the first count of an empty store (0.5 s in production);
    # a loaded machine took longer and the page said "not counted yet" (test_fast_paths sets 0).
    settings.ATEDASH_FIRST_COUNT_WAIT = 30
    # Fast hashing for tests; the hash format stays Django's.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    if not _USERS_FILE_TEXT:
        users = current_app().users
        for role, password in PASSWORDS.items():
            users.add(role, role, password)
        _USERS_FILE_TEXT.append(users.path.read_text())
    else:  # the same operators and hashes as the first time (see the module's docstring)
        path = Path(settings.ATEDASH_USERS_FILE)
        path.write_text(_USERS_FILE_TEXT[0])
        os.chmod(path, 0o600)
    return settings


# The users file's text as configure() first wrote it (one per process).
_USERS_FILE_TEXT: list[str] = []


@pytest.fixture(autouse=True)
def dash_settings(settings, redis_url, store, tmp_path):
    """Every dashboard test: the test cluster (emptied), a fresh users file, no throttle state."""
    return configure(settings, redis_url, tmp_path, ENVIRONMENT)


def login(client, role):
    response = client.post("/login/", {"username": role, "password": PASSWORDS[role]})
    assert response.status_code == 302, response.content[:500]
    return client


# Session cookies by what they depend on: role, signing key, users file, session generation.
_SIGNED_IN: dict[tuple, tuple[object, float, bytes | None]] = {}


def signed_in(role, request):
    """A client signed in as ``role``: a session cookie of an earlier test when it is still valid
    (nothing it depends on changed, well within its age limits), else a real login."""
    name = django_settings.SESSION_COOKIE_NAME
    try:
        key = (
            role,
            django_settings.SECRET_KEY,
            name,
            Path(django_settings.ATEDASH_USERS_FILE).read_bytes(),
            current_app().store.dashboard().session_generation(role),
        )
    except Exception:  # noqa: BLE001 - no users file, no store: sign in as a browser would
        return login(Client(), role)
    max_age = min(django_settings.SESSION_COOKIE_AGE, django_settings.ATEDASH_SESSION_IDLE) / 2
    cached = None if request.node.get_closest_marker("fresh_login") else _SIGNED_IN.get(key)
    client = Client()
    store = current_app().store.persistence().client
    if cached is not None and time.time() - cached[1] < max_age and restore_sessions_epoch(store, cached[2]):
        client.cookies[name] = copy.copy(cached[0])
        return client
    login(client, role)
    _SIGNED_IN[key] = (copy.copy(client.cookies[name]), time.time(), sessions_epoch(store))
    return client


@pytest.fixture
def viewer(request):
    return signed_in("viewer", request)


@pytest.fixture
def editor(request):
    return signed_in("editor", request)


@pytest.fixture
def admin(request):
    return signed_in("admin", request)


@pytest.fixture
def as_role(request):
    """A logged-in client for a role name (for tests parametrized over roles)."""
    return lambda role: signed_in(role, request)


class AuditCapture(logging.Handler):
    def __init__(self):
        super().__init__(logging.INFO)
        self.lines = []

    def emit(self, record):
        self.lines.append(record.getMessage())

    @property
    def entries(self):
        return [json.loads(line) for line in self.lines]


@pytest.fixture
def audit_log():
    handler = AuditCapture()
    logger = logging.getLogger("atedash.accounts.audit")
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


def wait_done(client, url, deadline_s=60, **get_kwargs):
    """The walk page at ``url`` once its walk has ended (polled; a failure after ``deadline_s``)."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        response = client.get(url, **get_kwargs)
        assert response.status_code == 200
        # A walk whose process paused past its lease (a loaded machine) reads as interrupted until
        # its next beat takes the lease back: that is not the end of it.
        if b'id="walk-progress"' not in response.content and b'id="walk-interrupted"' not in response.content:
            return response
        time.sleep(0.05)  # a poll interval
    raise AssertionError("the walk did not finish")


def html(response):
    return response.content.decode()


@pytest.fixture
def make_actor(store):
    """Creates an actor (version 1, SUSPENDED unless told) and applies extra fields with an update."""
    from storage.ateapi_pb2 import Actor

    def make(actor_id, ns="team-a", template="web", status="STATUS_SUSPENDED", **fields):
        actor = Actor(
            actor_id=actor_id,
            actor_template_namespace=ns,
            actor_template_name=template,
            status=Actor.Status.Value("STATUS_SUSPENDED"),
        )
        store.create_actor(actor)
        actor = store.get_actor(actor_id)
        if status != "STATUS_SUSPENDED" or fields:
            actor.status = Actor.Status.Value(status)
            for name, value in fields.items():
                setattr(actor, name, value)
            store.update_actor(actor, actor.version)
        return store.get_actor(actor_id)

    return make


@pytest.fixture
def make_worker(store):
    from storage.ateapi_pb2 import Worker

    def make(namespace="team-a", pool="small", pod="w-0", ip="10.0.0.1", **fields):
        store.create_worker(Worker(worker_namespace=namespace, worker_pool=pool, worker_pod=pod, ip=ip, **fields))
        return store.get_worker(namespace, pool, pod)

    return make


@pytest.fixture
def page_html():
    return html
