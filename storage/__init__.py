"""The ate store in Python: the twin of the Go package ateredis, on Redis Cluster or one node
(Persistence), and the dashboard's own state beside it (DashboardState).

Plain library (redis-py + protobuf); never imports Django.
"""

from storage.cluster import ClusterOverview, NodeInfo, ShardCounts, StoreStats
from storage.codec import BINARY, JSON, RecordCodec, RecordDecodeError
from storage.connection import answers_ping, connect
from storage.dashboard import DashboardState
from storage.errors import (
    STORE_ERRORS,
    UNREACHABLE_ERRORS,
    AlreadyExists,
    CorruptRecord,
    FailedPrecondition,
    ImmutableField,
    InvalidCursor,
    NotFound,
    StorageError,
    StoreUnreachable,
    UnreadableByServer,
    UnreadableStored,
    VersionConflict,
    is_store_unavailable,
    is_store_unreachable,
)
from storage.keys import (
    ACTOR_PREFIX,
    LOCK_PREFIX,
    WORKER_PREFIX,
    actor_key,
    actor_lock_key,
    key_slot,
    parse_actor_key,
    parse_worker_key,
    worker_key,
)
from storage.persistence import KEEP_TTL, Persistence
from storage.raw import LockInfo, RawRecord
from storage.scanning import CorruptEntry, Page
from storage.server_readable import Unreadable, judge_actor, judge_worker, server_read_error

__all__ = [
    "ACTOR_PREFIX",
    "AlreadyExists",
    "BINARY",
    "ClusterOverview",
    "CorruptEntry",
    "CorruptRecord",
    "DashboardState",
    "FailedPrecondition",
    "ImmutableField",
    "InvalidCursor",
    "JSON",
    "KEEP_TTL",
    "LOCK_PREFIX",
    "LockInfo",
    "NodeInfo",
    "NotFound",
    "Page",
    "Persistence",
    "RawRecord",
    "RecordCodec",
    "RecordDecodeError",
    "ShardCounts",
    "StorageError",
    "StoreStats",
    "UnreadableByServer",
    "UnreadableStored",
    "VersionConflict",
    "WORKER_PREFIX",
    "actor_key",
    "actor_lock_key",
    "connect",
    "key_slot",
    "parse_actor_key",
    "parse_worker_key",
    "worker_key",
]
__all__ += ["Unreadable", "judge_actor", "judge_worker", "server_read_error"]
# What a caller needs to tell the store's own errors apart, and to probe it, without importing redis-py.
__all__ += [
    "STORE_ERRORS",
    "StoreUnreachable",
    "UNREACHABLE_ERRORS",
    "answers_ping",
    "is_store_unavailable",
    "is_store_unreachable",
]
