"""Batched per-node reads: SCAN one primary, fetch the values of a batch of keys in one round trip.

The Go package reads records with one GET per key (~150 µs each); here a batch of keys found by a
SCAN on one node is fetched with a single pipelined round trip to that same node. Keys returned by
a node's SCAN live on that node, so no routing is involved.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import cast

import redis
from redis.exceptions import AskError, ClusterDownError, MovedError, ResponseError, TryAgainError


def fetch_values(
    node: redis.Redis, keys: list[bytes], reroute: Callable[[bytes], bytes | str | None] | None = None
) -> list:
    """GET of every key in one round trip to ``node``: bytes, None (deleted meanwhile), or the
    ResponseError the server answered for that key (e.g. WRONGTYPE), for the caller to report.

    A key whose slot moved to another node while a batch was in flight (resharding) answers
    MOVED/ASK; ``reroute`` (the cluster client's own GET, which follows redirections) reads those.

    The commands are packed and sent in one write and the replies read straight off the
    connection: redis-py's Pipeline object costs ~4 µs per command in bookkeeping, more than the
    GET itself (~1.3 µs per key this way), and listings do a million of them.
    """
    if not keys:
        return []
    pool = node.connection_pool
    conn = pool.get_connection()
    try:
        conn.send_packed_command([b"".join([b"*2\r\n$3\r\nGET\r\n$%d\r\n%s\r\n" % (len(k), k) for k in keys])])
        values = []
        for _ in keys:
            try:
                values.append(conn.read_response())
            except ResponseError as e:  # the whole error reply was read: the stream stays in step
                values.append(e)
    except BaseException:
        # A half-read reply stream cannot be reused.
        conn.disconnect()
        raise
    finally:
        pool.release(conn)
    for i, value in enumerate(values):
        if isinstance(value, (ClusterDownError, TryAgainError)):
            # The node, not the key, is in trouble (a failover under way): raised so that the
            # caller retries the batch, never reported as a corrupt record.
            raise value
        if isinstance(value, (MovedError, AskError)):
            if reroute is None:
                raise value
            values[i] = reroute(keys[i])
    return values


def scan_batches(
    node: redis.Redis, match: str | None, count: int = 1000, cursor: int = 0
) -> Iterator[tuple[int, list[bytes]]]:
    """(next cursor, keys) per SCAN call on one node until the walk of that node is complete."""
    while True:
        cursor, keys = node.scan(cursor, match=match, count=count)
        yield cursor, cast("list[bytes]", keys)  # the store's clients never decode replies
        if cursor == 0:
            return
