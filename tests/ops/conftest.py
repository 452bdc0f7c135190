"""Fixtures of the operations tests that drive Django: settings on the test cluster, operators of
every role, logged-in clients, audit capture. Built on tests/conftest.py (`redis_url`, `store`)."""

import pytest
from django.test import Client

from tests.dashboard.conftest import (
    audit_log,  # noqa: F401 - the shared fixture, registered by import
    configure,
)
from tests.dashboard.conftest import login as login_with

ENVIRONMENT = "ops-test"


@pytest.fixture
def ops_settings(settings, redis_url, store, tmp_path):
    configure(settings, redis_url, tmp_path, ENVIRONMENT)
    settings.ATEDASH_METRICS_TOKEN = ""
    return settings


def login(role):
    return login_with(Client(), role)


@pytest.fixture
def viewer(ops_settings):
    return login("viewer")


@pytest.fixture
def editor(ops_settings):
    return login("editor")


@pytest.fixture
def admin(ops_settings):
    return login("admin")
