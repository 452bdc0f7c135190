"""Fleet tests: two gunicorn servers as shipped (2 workers each) on one store, sharing a secret key
as the replicas of one Deployment do. The fixtures are the security suite's (`serve`)."""

import secrets

import pytest

from tests.security.conftest import (  # noqa: F401 - fixtures, registered by being imported
    dash_settings,
    operators_file_text,
    static_root,
)
from tests.security.conftest import serve as serve  # noqa: F401 - the fixture `fleet` uses


@pytest.fixture
def fleet(serve):
    """fleet(**env) -> (server A, server B): 2 servers x 2 workers, one store, one secret key."""

    def start(**env):
        shared = {"GUNICORN_WORKERS": "2", "ATEDASH_SECRET_KEY": secrets.token_urlsafe(60), **env}
        return serve(**shared), serve(**shared)

    return start
