"""Dashboard fixtures: settings pointed at the test cluster, operators of every role, logged-in clients.

Built on tests/conftest.py: `redis_url` (the test cluster) and `store` (a Persistence over it,
emptied before each test).
"""

import json
import logging

import pytest
from django.test import Client

from atedash.app import current_app

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
    # Fast hashing for tests; the hash format stays Django's.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    users = current_app().users
    for role, password in PASSWORDS.items():
        users.add(role, role, password)
    return settings


@pytest.fixture(autouse=True)
def dash_settings(settings, redis_url, store, tmp_path):
    """Every dashboard test: the test cluster (emptied), a fresh users file, no throttle state."""
    return configure(settings, redis_url, tmp_path, ENVIRONMENT)


def login(client, role):
    response = client.post("/login/", {"username": role, "password": PASSWORDS[role]})
    assert response.status_code == 302, response.content[:500]
    return client


@pytest.fixture
def viewer():
    return login(Client(), "viewer")


@pytest.fixture
def editor():
    return login(Client(), "editor")


@pytest.fixture
def admin():
    return login(Client(), "admin")


@pytest.fixture
def as_role():
    """A logged-in client for a role name (for tests parametrized over roles)."""
    return lambda role: login(Client(), role)


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
    logger = logging.getLogger("atedash.audit")
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


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
