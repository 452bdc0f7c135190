"""connect(url): a redis-py client for a standalone server or a Redis Cluster, detected or forced;
answers_ping(url): whether a node answers at all (an outage probe)."""

from __future__ import annotations

from urllib.parse import urlparse

import redis
from redis.backoff import ExponentialWithJitterBackoff
from redis.cluster import RedisCluster
from redis.retry import Retry

# A dead node must not hang a request for long; failover takes ~node-timeout (seconds) anyway.
SOCKET_TIMEOUT_S = 5.0
SOCKET_CONNECT_TIMEOUT_S = 2.0
HEALTH_CHECK_INTERVAL_S = 30
# Attempts (with backoff up to 1 s) while a replica is promoted after a primary fails; the cluster
# client refreshes its slot map after each connection error.
CLUSTER_RETRY_ATTEMPTS = 8


def connect(url: str, cluster: bool | None = None, **overrides) -> redis.Redis | RedisCluster:
    """Client for ``redis://`` or ``rediss://`` URLs (ACL user and password in the URL).

    ``cluster=None`` asks the server (INFO cluster: cluster_enabled); True/False force the mode.
    Responses stay bytes, as redis-py makes them by default. ``overrides`` go to redis-py.
    """
    scheme = urlparse(url).scheme
    if scheme not in ("redis", "rediss"):
        raise ValueError(f"unsupported URL scheme {scheme!r}: use redis:// or rediss://")
    options = dict(
        socket_timeout=SOCKET_TIMEOUT_S,
        socket_connect_timeout=SOCKET_CONNECT_TIMEOUT_S,
        health_check_interval=HEALTH_CHECK_INTERVAL_S,
        socket_keepalive=True,
        # A key handed out as text with surrogate escapes (bytes that are not UTF-8, storage.keys)
        # goes back as its very bytes, never a UnicodeEncodeError in the middle of a reset.
        encoding_errors="surrogateescape",
    )
    options.update(overrides)
    if cluster is None:
        cluster = _cluster_enabled(url, options)
    if not cluster:
        return redis.Redis.from_url(url, retry=Retry(ExponentialWithJitterBackoff(base=0.05, cap=1.0), 3), **options)
    return RedisCluster.from_url(
        url,
        retry=Retry(ExponentialWithJitterBackoff(base=0.05, cap=1.0), CLUSTER_RETRY_ATTEMPTS),
        **options,
    )


def _cluster_enabled(url: str, options: dict) -> bool:
    probe = redis.Redis.from_url(url, **options)
    try:
        return str(probe.info("cluster").get("cluster_enabled", 0)) == "1"
    finally:
        probe.close()


def answers_ping(url: str, timeout: float) -> bool:
    """True when the server at ``url`` answers a PING within ``timeout`` seconds (connect and reply);
    any reply, even NOAUTH or WRONGPASS, means it is up."""
    probe = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
    try:
        probe.ping()
        return True
    except redis.exceptions.ResponseError:
        return True  # e.g. NOAUTH / WRONGPASS: the server is there and answering
    except (redis.exceptions.RedisError, OSError):
        return False
    finally:
        probe.close()
