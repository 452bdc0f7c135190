"""Shared fixtures: the real Redis Cluster started by `make test`, and a standalone Redis.

The cluster is the one `scripts/cluster start` runs on ATEDASH_TEST_CLUSTER_PORT (default 7200) with
its files in ATEDASH_TEST_CLUSTER_DIR (default <repo>/.cluster-test). Tests never skip: when the
cluster is not there they fail and say how to get one.

Under pytest-xdist (`make test` runs `pytest -n 2 --dist worksteal`) every worker has a cluster and a
standalone database of its own, since tests empty them: worker N uses the cluster WORKER_PORT_STRIDE * N
ports above the base, in the directory <base dir>-N, and database 15 - N of the standalone Redis.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import redis
from redis.cluster import RedisCluster

from storage import Persistence, connect
from storage.keys import SESSIONS_EPOCH_KEY
from tests import hypothesis_profiles  # noqa: F401  (loads the profile HYPOTHESIS_PROFILE names)

REPO = Path(__file__).resolve().parent.parent
WORKER_PORT_STRIDE = 20
_worker = os.environ.get("PYTEST_XDIST_WORKER", "")
WORKER_INDEX = int(_worker[2:]) if _worker.startswith("gw") and _worker[2:].isdigit() else 0
# ATEDASH_TEST_STANDALONE_DB moves the databases down, so that two checkouts can test at once.
STANDALONE_DB = int(os.environ.get("ATEDASH_TEST_STANDALONE_DB", "15")) - WORKER_INDEX
STANDALONE_URL = f"redis://127.0.0.1:6379/{STANDALONE_DB}"


# Tests using these fixtures start another process: marked `process` (left out of `make check`).
PROCESS_FIXTURES = frozenset({"serve", "static_root", "ateref_bin", "gunicorn", "tls_server"})


# The long tests first (fault injection, then browser, then other processes), each group in file
# order: xdist hands each worker a run of the list and a worker that runs dry steals the other's
# last tests, so the run ends on short tests instead of one worker waiting out a failover alone.
LONG_FIRST = ("slow", "browser", "process")


@pytest.hookimpl(tryfirst=True)  # before -m deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if PROCESS_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.process)

    def rank(item: pytest.Item) -> int:
        marks = {mark.name for mark in item.iter_markers()}
        return next((i for i, name in enumerate(LONG_FIRST) if name in marks), len(LONG_FIRST))

    items.sort(key=rank)  # stable: file order within each group


def _fail_no_cluster(port: int, error: Exception) -> None:
    pytest.fail(
        f"no Redis Cluster on 127.0.0.1:{port} ({error}). Run the tests with `make test`, which starts "
        f"one, or start it yourself: ATEDASH_CLUSTER_PORT={port} ATEDASH_CLUSTER_DIR=<dir> scripts/cluster start",
        pytrace=False,
    )


@pytest.fixture(scope="session", autouse=True)
def commands_table_once():
    """A new cluster client asks its first node for COMMAND (every command's key positions) and
    parses the reply: 7 of the 11 ms it costs, and each test's fresh application makes one. The
    table depends only on the server: read once per node address and process, then shared (read
    only). A client that meets a command missing from it still asks the node again."""
    from redis._parsers.commands import CommandsParser

    tables: dict[tuple, dict] = {}
    read = CommandsParser.__init__

    def read_once(self, redis_connection):
        pool = getattr(redis_connection, "connection_pool", None)  # a node's client, or the cluster's
        if pool is not None:
            address = (pool.connection_kwargs.get("host"), pool.connection_kwargs.get("port"))
        else:
            address = tuple(sorted(redis_connection.nodes_manager.startup_nodes))
        if address not in tables:
            read(self, redis_connection)
            tables[address] = self.commands
        self.redis_connection, self.commands = redis_connection, tables[address]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(CommandsParser, "__init__", read_once)
        yield


@pytest.fixture(autouse=True)
def fresh_app():
    """Every test starts with a fresh application object (atedash/core/app.py: store connection, caches,
    throttle, users file, metrics), and the one it leaves is closed after it. A test that changes a
    setting the application is built from gets another fresh one (atedash/apps.py)."""
    from django.apps import apps

    config = apps.get_app_config("atedash")
    yield config.replace_application()
    config.replace_application()


@pytest.fixture
def app(fresh_app):
    """The application object as it is now (after the test's settings fixtures changed what they change)."""
    from atedash.core.app import current_app

    return current_app()


@pytest.fixture(scope="session")
def cluster_port() -> int:
    return int(os.environ.get("ATEDASH_TEST_CLUSTER_PORT", "7200")) + WORKER_PORT_STRIDE * WORKER_INDEX


@pytest.fixture(scope="session")
def cluster_dir() -> Path:
    base = Path(os.environ.get("ATEDASH_TEST_CLUSTER_DIR", str(REPO / ".cluster-test")))
    return base.with_name(f"{base.name}-{WORKER_INDEX}") if WORKER_INDEX else base


@pytest.fixture(scope="session")
def redis_url(cluster_port) -> str:
    return f"redis://127.0.0.1:{cluster_port}"


@pytest.fixture(scope="session")
def cluster_client(redis_url, cluster_port) -> RedisCluster:
    try:
        client = connect(redis_url)
        info = client.cluster_info()
    except redis.exceptions.RedisError as e:
        _fail_no_cluster(cluster_port, e)
    if not isinstance(client, RedisCluster):
        _fail_no_cluster(cluster_port, RuntimeError("the server there is not in cluster mode"))
    if info.get("cluster_state") != "ok":
        _fail_no_cluster(cluster_port, RuntimeError(f"cluster_state is {info.get('cluster_state')}"))
    yield client
    client.close()


def flush_primaries(client: RedisCluster) -> None:
    for node in client.get_primaries():
        client.get_redis_connection(node).flushall()


CLUSTER_SHARDS = 3  # primaries, each with one replica (scripts/cluster)


def know_every_node(client: RedisCluster) -> None:
    """The session's client re-reads the topology until it knows every primary and replica: a
    failover test can leave it with the view read while a node was down (a shard without replica)."""
    deadline = time.monotonic() + 60
    while (len(client.get_primaries()), len(client.get_replicas())) != (CLUSTER_SHARDS, CLUSTER_SHARDS):
        if time.monotonic() > deadline:
            pytest.fail(f"the test cluster's nodes are not {CLUSTER_SHARDS} primaries + replicas", pytrace=False)
        time.sleep(0.05)  # poll interval: gossip clears a restarted node's failed flag
        try:
            client.nodes_manager.initialize()
        except redis.exceptions.RedisError:
            continue


@pytest.fixture
def store(cluster_client) -> Persistence:
    """A Persistence over the test cluster, emptied (FLUSHALL on every primary) before the test."""
    know_every_node(cluster_client)
    flush_primaries(cluster_client)
    return Persistence(cluster_client)


def sessions_epoch(client) -> bytes | None:
    """The store's sessions epoch now (atedash/accounts/sessions.py): every session cookie carries it."""
    return client.get(SESSIONS_EPOCH_KEY)


def restore_sessions_epoch(client, epoch: bytes | None) -> bool:
    """Whether a cookie signed under ``epoch`` by an earlier test is still good: each test's flush
    removes the epoch, so it is put back; False when another epoch is in force (sign in anew)."""
    if epoch is None:
        return False
    client.set(SESSIONS_EPOCH_KEY, epoch, nx=True, ex=24 * 3600)
    return client.get(SESSIONS_EPOCH_KEY) == epoch


@pytest.fixture
def standalone_client() -> redis.Redis:
    """The machine's standalone Redis, database 15, emptied before the test."""
    client = redis.Redis.from_url(STANDALONE_URL, socket_timeout=5, socket_connect_timeout=2)
    try:
        client.flushdb()
    except redis.exceptions.RedisError as e:
        pytest.fail(
            f"no standalone Redis on 127.0.0.1:6379 ({e}); `make test` installs redis-server, "
            "whose service listens there (start it with `redis-server --daemonize yes`)",
            pytrace=False,
        )
    yield client
    client.close()
