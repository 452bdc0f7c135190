"""Fixtures of the operations tests that drive Django: settings on the test cluster, operators of
every role, logged-in clients, audit capture. Built on tests/conftest.py (`redis_url`, `store`)."""

import pytest
from django.test import Client

from tests.dashboard.conftest import (
    audit_log,  # noqa: F401 - the shared fixture, registered by import
    configure,
    signed_in,
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


# Signed in as in tests/dashboard (a session cookie of an earlier test when still valid).
@pytest.fixture
def viewer(ops_settings, request):
    return signed_in("viewer", request)


@pytest.fixture
def editor(ops_settings, request):
    return signed_in("editor", request)


@pytest.fixture
def admin(ops_settings, request):
    return signed_in("admin", request)
