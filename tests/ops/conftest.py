"""Fixtures of the operations tests that drive Django: settings on the test cluster, operators of
every role, logged-in clients, audit capture. Built on tests/conftest.py (`redis_url`, `store`)."""

import pytest
from django.test import Client

from tests.dashboard.conftest import audit_log  # noqa: F401 - the shared fixture, registered by import

PASSWORDS = {"viewer": "viewer-pass-1", "editor": "editor-pass-1", "admin": "admin-pass-1"}
ENVIRONMENT = "ops-test"


@pytest.fixture
def ops_settings(settings, redis_url, store, tmp_path):
    from atedash.app import current_app

    settings.ATEDASH_REDIS_URL = redis_url
    settings.ATEDASH_REDIS_CLUSTER = "auto"
    settings.ATEDASH_ENVIRONMENT = ENVIRONMENT
    settings.ATEDASH_ALLOW_FLUSH = False
    settings.ATEDASH_USERS_FILE = tmp_path / "operators.json"
    settings.ATEDASH_TRUSTED_HEADER = ""
    settings.ATEDASH_METRICS_TOKEN = ""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    users = current_app().users
    for role, password in PASSWORDS.items():
        users.add(role, role, password)
    return settings


def login(role):
    client = Client()
    response = client.post("/login/", {"username": role, "password": PASSWORDS[role]})
    assert response.status_code == 302, response.content[:500]
    return client


@pytest.fixture
def viewer(ops_settings):
    return login("viewer")


@pytest.fixture
def editor(ops_settings):
    return login("editor")


@pytest.fixture
def admin(ops_settings):
    return login("admin")
