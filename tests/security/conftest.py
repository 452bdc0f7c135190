"""Security tests: the dashboard's fixtures (settings on the test cluster, operators of every role,
logged-in clients), reused from tests/dashboard/conftest.py rather than copied."""

from tests.dashboard.conftest import (  # noqa: F401 - fixtures, registered by being imported
    admin,
    dash_settings,
    editor,
    make_actor,
    make_worker,
    viewer,
)
