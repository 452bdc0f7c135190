"""Batched per-node reads: SCAN one primary, fetch the values of a batch of keys in one round trip.

The Go package reads records with one GET per key (~150 µs each); here a batch of keys found by a
SCAN on one node is fetched with a single pipelined round trip to that same node. Keys returned by
a node's SCAN live on that node, so no routing is involved.
"""

from __future__ import annotations

from typing import Callable, Iterator

import redis
from redis.exceptions import AskError, MovedError


def fetch_values(
    node: redis.Redis, keys: list[bytes], reroute: Callable[[bytes], bytes | None] | None = None
) -> list[bytes | None]:
    """GET of every key in one round trip to ``node`` (None for keys deleted meanwhile).

    A key whose slot moved to another node while a batch was in flight (resharding) answers
    MOVED/ASK; ``reroute`` (the cluster client's own GET, which follows redirections) reads those.
    """
    if not keys:
        return []
    pipe = node.pipeline(transaction=False)
    for key in keys:
        pipe.execute_command("GET", key)
    values = pipe.execute(raise_on_error=False)
    for i, value in enumerate(values):
        if isinstance(value, Exception):
            if reroute is None or not isinstance(value, (MovedError, AskError)):
                raise value
            values[i] = reroute(keys[i])
    return values


def scan_batches(
    node: redis.Redis, match: str | None, count: int = 1000, cursor: int = 0
) -> Iterator[tuple[int, list[bytes]]]:
    """(next cursor, keys) per SCAN call on one node until the walk of that node is complete."""
    while True:
        cursor, keys = node.scan(cursor, match=match, count=count)
        yield cursor, keys
        if cursor == 0:
            return
