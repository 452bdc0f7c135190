"""storage.connect: cluster detection, forced modes, ACL users, TLS (rediss://), timeouts."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time

import pytest
import redis
from redis.cluster import RedisCluster

from storage import Persistence, connect
from storage.ateapi_pb2 import Actor


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(condition, what: str, timeout: float = 20):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            if condition():
                return
        except (redis.exceptions.RedisError, OSError):
            pass
        time.sleep(0.02)  # polling interval
    raise AssertionError(f"timed out waiting for {what}")


def test_cluster_is_detected(redis_url):
    client = connect(redis_url)
    assert isinstance(client, RedisCluster)
    assert client.get_connection_kwargs()["socket_timeout"] == 5.0
    assert client.get_connection_kwargs()["socket_connect_timeout"] == 2.0
    assert Persistence(client).ping()


def test_cluster_mode_can_be_forced_off_and_on(redis_url, cluster_client):
    single = connect(redis_url, cluster=False)
    assert type(single) is redis.Redis and single.ping()
    assert isinstance(connect(redis_url, cluster=True), RedisCluster)


def test_forcing_cluster_mode_on_a_standalone_server_fails(standalone_client):
    with pytest.raises(redis.exceptions.RedisClusterException, match="Cluster mode is not enabled"):
        connect("redis://127.0.0.1:6379", cluster=True)


def test_unsupported_scheme():
    with pytest.raises(ValueError):
        connect("http://127.0.0.1:6379")


def test_unreachable_server_fails_fast_with_redis_pys_error():
    port = free_port()  # nothing listens there
    t0 = time.monotonic()
    with pytest.raises(redis.exceptions.ConnectionError):
        connect(f"redis://127.0.0.1:{port}")
    assert time.monotonic() - t0 < 5


@pytest.fixture
def acl_user_on_cluster(cluster_port):
    # ACL users are per node and not persisted: set the user on every node the cluster has now,
    # read from CLUSTER NODES (a client's node cache can lag behind a node restarted by a fault test).
    addresses = redis.Redis(port=cluster_port).cluster("NODES")  # {"host:port": {...}}
    nodes = [redis.Redis(host=a.rsplit(":", 1)[0], port=int(a.rsplit(":", 1)[1])) for a in addresses]
    for node in nodes:
        node.execute_command("ACL", "SETUSER", "ate-dash", "on", ">s3cret", "~*", "&*", "+@all")
    yield "ate-dash", "s3cret"
    for node in nodes:
        node.execute_command("ACL", "DELUSER", "ate-dash")


def test_acl_user_and_password_from_the_url(cluster_port, acl_user_on_cluster, store):
    user, password = acl_user_on_cluster
    client = connect(f"redis://{user}:{password}@127.0.0.1:{cluster_port}")
    assert isinstance(client, RedisCluster)
    assert client.acl_whoami() == user
    p = Persistence(client)
    p.create_actor(Actor(actor_id="acl"))
    assert p.get_actor("acl").version == 1
    assert "s3cret" not in p.address and "ate-dash" not in p.address
    with pytest.raises(redis.exceptions.AuthenticationError):
        connect(f"redis://{user}:wrong@127.0.0.1:{cluster_port}")


@pytest.fixture
def tls_server(tmp_path):
    """A standalone redis-server speaking only TLS, with a self-signed certificate and an ACL user."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    port = free_port()
    pidfile = tmp_path / "redis.pid"
    subprocess.run(
        [
            "redis-server",
            "--port",
            "0",
            "--tls-port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--tls-cert-file",
            str(cert),
            "--tls-key-file",
            str(key),
            "--tls-ca-cert-file",
            str(cert),
            "--tls-auth-clients",
            "no",
            "--user",
            "tls-user",
            "on",
            ">pw",
            "~*",
            "&*",
            "+@all",
            "--user",
            "default",
            "off",
            "--daemonize",
            "yes",
            "--pidfile",
            str(pidfile),
            "--logfile",
            str(tmp_path / "redis.log"),
            "--dir",
            str(tmp_path),
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        check=True,
    )
    url = f"rediss://tls-user:pw@127.0.0.1:{port}?ssl_ca_certs={cert}"
    wait_for(lambda: redis.Redis.from_url(url).ping(), "the TLS server")
    yield url
    os.kill(int(pidfile.read_text()), signal.SIGTERM)


def test_rediss_url_with_acl_user(tls_server):
    client = connect(tls_server)
    assert type(client) is redis.Redis
    p = Persistence(client)
    p.create_actor(Actor(actor_id="tls"))
    assert p.get_actor("tls").version == 1
    assert p.address.startswith("rediss://127.0.0.1:")
