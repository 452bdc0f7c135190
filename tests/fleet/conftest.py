"""Fleet tests: two gunicorn servers as shipped (2 workers each) on one store, sharing a secret key
as the replicas of one Deployment do. The fixtures are the security suite's (`serve`)."""

import json
import secrets

import pytest

from tests.dashboard.conftest import PASSWORDS
from tests.security.conftest import (  # noqa: F401 - fixtures, registered by being imported
    dash_settings,
    static_root,
)
from tests.security.conftest import serve as serve  # noqa: F401 - the fixture `fleet` uses


@pytest.fixture(scope="session")
def operators_file_text():
    """The users file of the fleet's servers: PBKDF2 hashes as shipped, of 1,000 iterations instead of
    Django's million. The fleet tests sign in some twenty times and test no password check (the
    security tests do, on real hashes): a quarter of a second of a server's CPU each."""
    from django.contrib.auth.hashers import PBKDF2PasswordHasher, make_password

    hasher = type("FewIterations", (PBKDF2PasswordHasher,), {"iterations": 1000})()
    operators = {role: {"role": role, "password": make_password(pw, hasher=hasher)} for role, pw in PASSWORDS.items()}
    return json.dumps({"operators": operators})


@pytest.fixture
def fleet(serve):
    """fleet(**env) -> (server A, server B): 2 servers x 2 workers, one store, one secret key."""

    def start(**env):
        shared = {"GUNICORN_WORKERS": "2", "ATEDASH_SECRET_KEY": secrets.token_urlsafe(60), **env}
        return serve(**shared), serve(**shared)

    return start
