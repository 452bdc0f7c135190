"""Errors raised by the store. Connection problems stay redis-py's own exceptions: callers tell them
apart with ``is_store_unreachable`` / ``is_store_unavailable`` (or catch ``STORE_ERRORS``), without
importing redis-py themselves."""

from __future__ import annotations

import redis.exceptions

# Errors that mean "the store (or part of the cluster) cannot be reached right now"; the client
# recovers by itself once the store answers again.
UNREACHABLE_ERRORS = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.ClusterError,  # ClusterDownError, SlotNotCoveredError, MasterDownError...
    redis.exceptions.TryAgainError,
    redis.exceptions.BusyLoadingError,
    # Not a RedisError: raised when no node answers while the cluster client rebuilds its slot map
    # (every node down or frozen), and for a slot no node serves (SlotNotCoveredError).
    redis.exceptions.RedisClusterException,
)

# Every error of the store's client: the store unreachable, or a command it refused.
STORE_ERRORS = (redis.exceptions.RedisError, redis.exceptions.RedisClusterException)


class StoreUnreachable(redis.exceptions.ConnectionError):
    """No node of the store answered (raised by a caller's outage probe; one of UNREACHABLE_ERRORS)."""


def is_store_unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` says the store (or part of the cluster) cannot be reached right now."""
    return isinstance(exc, UNREACHABLE_ERRORS)


def is_store_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` is an error of the store's client (unreachable, or a command refused), as
    opposed to a StorageError about a record."""
    return isinstance(exc, STORE_ERRORS)


class StorageError(Exception):
    """Base of every storage error; ``message`` is meant for an operator to read."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class NotFound(StorageError):
    def __init__(self, key: str, message: str | None = None):
        super().__init__(message or f"{key} not found")
        self.key = key


class AlreadyExists(StorageError):
    def __init__(self, key: str, message: str | None = None):
        super().__init__(message or f"{key} already exists")
        self.key = key


class VersionConflict(StorageError):
    def __init__(self, key: str, expected: int | None, actual: int | None, message: str | None = None):
        if message is None:
            now = "it is gone" if actual is None else f"it is at version {actual}"
            message = f"{key} changed: expected version {expected}, {now}"
        super().__init__(message)
        self.key = key
        self.expected = expected
        self.actual = actual


class _RecordError(StorageError):
    """About the record at ``key``, for ``reason`` (words an operator reads)."""

    def __init__(self, message: str, key: str, reason: str):
        super().__init__(message)
        self.key = key
        self.reason = reason


class FailedPrecondition(_RecordError):
    def __init__(self, key: str, reason: str):
        super().__init__(f"{key}: {reason}", key, reason)


class ImmutableField(StorageError):
    def __init__(self, key: str, field: str):
        super().__init__(f"{key}: field {field} cannot be changed")
        self.key = key
        self.field = field


class CorruptRecord(_RecordError):
    def __init__(self, key: str, reason: str, preview: str = ""):
        super().__init__(f"{key} is corrupt: {reason}", key, reason)
        self.preview = preview


class InvalidCursor(StorageError):
    def __init__(self, cursor: str, reason: str = "does not decode"):
        super().__init__(f"invalid scan cursor: {reason}")
        self.cursor = cursor
        self.reason = reason


class UnreadableByServer(_RecordError):
    """The ate server could not read what would be written (or what is stored): ``reason`` in Go's
    words (``proto: (line 1:2): unknown field "foo"``, ``bad key format "actor:a:b"``); ``fails``:
    what that breaks ("the ate server's ListActors fails while this record exists")."""

    def __init__(self, key: str, reason: str, fails: str = ""):
        super().__init__(f"{key}: the ate server cannot read this record: {reason}", key, reason)
        self.fails = fails


class UnreadableStored(UnreadableByServer):
    """A write refused because the ate server cannot read the record stored at ``key``: the Go
    server's same call (``call``: UpdateActor, UpdateWorker, DeleteActor) reads the record first and
    fails, with ``go_error``. ``reason``: protojson's words, as the raw editor and the check quote
    them. Nothing was written; the raw editor (write_raw, delete_raw) mends or removes the record."""

    def __init__(self, key: str, reason: str, call: str, go_error: str, fails: str = ""):
        _RecordError.__init__(
            self,
            f"{key}: nothing was written: the ate server cannot read the stored record, "
            f"and its {call} fails on it: {reason}",
            key,
            reason,
        )
        self.fails = fails
        self.call = call
        self.go_error = go_error
