"""Reliability and security tests: the dashboard's fixtures (settings on the test cluster, operators of
every role, logged-in clients), plus the cluster's processes for fault injection.

Built on tests/conftest.py (`redis_url`, `store`, `cluster_port`, `cluster_dir`) and
tests/dashboard/conftest.py, whose fixtures are reused here rather than copied.
"""

import re

import pytest

from tests.cluster_faults import LocalCluster, poll
from tests.dashboard.conftest import (  # noqa: F401 - fixtures, registered by being imported
    PASSWORDS,
    admin,
    as_role,
    audit_log,
    dash_settings,
    editor,
    html,
    login,
    make_actor,
    make_worker,
    page_html,
    viewer,
)

CSRF_INPUT = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


@pytest.fixture
def local_cluster(cluster_port, cluster_dir, cluster_client):
    """The test cluster's processes; whatever a test did to them, the cluster is whole afterwards,
    and the session's cluster client knows every node again (tests after this one use it to reach
    each node, e.g. to create an ACL user everywhere)."""
    cluster = LocalCluster(cluster_port, cluster_dir)
    cluster.wait_whole()
    yield cluster
    cluster.thaw_all()  # a test that failed while the store was frozen must not leave it so
    for port in cluster.ports:
        if not cluster.alive(port):
            cluster.start(port)
    cluster.wait_whole()

    # A restarted node can still be flagged failed in the view of the node the client asks
    # (CLUSTER SLOTS leaves failed nodes out) until gossip clears the flag: ask until it is not.
    def client_knows_every_node():
        cluster_client.nodes_manager.initialize()
        return len(cluster_client.get_nodes()) == len(cluster.ports)

    poll(client_knows_every_node, "the session's cluster client to know every node again")


def csrf_token(body: str) -> str:
    match = CSRF_INPUT.search(body)
    assert match, "no CSRF token in the page"
    return match.group(1)
