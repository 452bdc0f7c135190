"""Persistence: the Python port of the Go package ateredis (the dashboard's own keys: dashboard.py).

Every check-then-write is atomic per key through compare-and-set Lua scripts: a write or delete
only happens if the key still holds exactly the bytes that were read and checked. When it does not,
the script hands back what is there now, and the operation re-checks against that (a real version
change is a VersionConflict; an unchanged version is retried). Two editors can therefore never both
succeed from the same version, and a delete never removes a record it did not see suspended.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from decimal import Decimal
from typing import Unpack, cast

import redis
from google.protobuf import json_format
from redis.cluster import RedisCluster

from storage import cluster as cluster_info
from storage import counting, matches, scanning, sparse
from storage.ateapi_pb2 import Actor, Worker
from storage.codec import JSON, RecordDecodeError, preview
from storage.errors import (
    AlreadyExists,
    CorruptRecord,
    FailedPrecondition,
    ImmutableField,
    NotFound,
    UnreadableByServer,
    VersionConflict,
)
from storage.gorules import DELETE, UPDATE, refuse_unreadable_stored
from storage.keys import ACTOR_PREFIX, WORKER_PREFIX, actor_key, key_bytes, key_slot, worker_key
from storage.raw import LockInfo, RawRecord, describe_unknown_fields, detect_encoding, reindent_json
from storage.records import ACTORS, WORKERS, Record, RecordKind, copy_record, kind_of_key
from storage.replication import ReplicaAck
from storage.server_readable import go_decode, server_read_error
from storage.topology import ReplicaTopology, Topology


def _key_name(key: str | bytes) -> str:
    """A key as errors name it (one that is not UTF-8 escaped, as decode_stored names it)."""
    return key if isinstance(key, str) else key.decode("utf-8", "backslashreplace")


def _wrong_type(key: str | bytes, error: Exception) -> CorruptRecord | None:
    """A key of another Redis type (a hash under actor:, say) is a corrupt record, as scans report it."""
    if isinstance(error, redis.exceptions.ResponseError) and str(error).startswith("WRONGTYPE"):
        return CorruptRecord(_key_name(key), f"not a string value: {error}", "")
    return None


def _get_string(client, key: str | bytes) -> bytes | None:
    """GET that reports a value of another Redis type as CorruptRecord (not a store failure)."""
    try:
        return client.get(key)
    except redis.exceptions.ResponseError as e:
        corrupt = _wrong_type(key, e)
        if corrupt is None:
            raise
        raise corrupt from None


# Replaces the value only if it still is ARGV[1]. Returns 1 when written, 0 when the key is gone,
# else the current value so the caller can re-check without another round trip. A plain SET, as the
# Go server's UpdateActor/UpdateWorker write: a TTL on the record does not survive a write.
_COMPARE_AND_SET = """
local current = redis.call('GET', KEYS[1])
if not current then return 0 end
if current == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2])
  return 1
end
return current
"""

# Deletes the key only if it still holds ARGV[1]; same replies as above.
_COMPARE_AND_DELETE = """
local current = redis.call('GET', KEYS[1])
if not current then return 0 end
if current == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return current
"""

# Concurrent writers that leave the version unchanged (restores, repairs) make a compare-and-set
# fail without a version conflict; after this many such rounds the update gives up.
_MAX_CAS_ROUNDS = 64


def _refuse_unreadable(key: str, value: bytes) -> None:
    """UnreadableByServer when the ate server could not list or read ``value`` at ``key``."""
    unreadable = server_read_error(key, value)
    if unreadable is not None:
        raise UnreadableByServer(key, unreadable.reason, unreadable.fails)


class _KeepTTL:
    def __repr__(self) -> str:
        return "KEEP_TTL"


# go-redis's KeepTTL (-1 ns): SET ... KEEPTTL NX.
KEEP_TTL = _KeepTTL()
_NS_PER_MS, _NS_PER_S = 1_000_000, 1_000_000_000


def go_duration_ns(ttl) -> int:
    """``ttl`` in seconds as a Go time.Duration: whole nanoseconds, the fraction truncated; exact
    for what a float prints (2.9e-3 is 2,900,000 ns, not 2,899,999). KEEP_TTL is -1."""
    if ttl is KEEP_TTL:
        return -1
    if isinstance(ttl, timedelta):
        return (ttl.days * 86_400 + ttl.seconds) * _NS_PER_S + ttl.microseconds * 1000
    if isinstance(ttl, bool) or not isinstance(ttl, (int, float, Decimal)):
        raise ValueError(f"a lock TTL is a number of seconds, not {type(ttl).__name__}")
    exact = Decimal(ttl) if isinstance(ttl, int) else Decimal(repr(ttl)) if isinstance(ttl, float) else ttl
    if not exact.is_finite():
        raise ValueError(f"a lock TTL must be finite, not {ttl!r}")
    ns = int(exact * _NS_PER_S)  # int() truncates toward zero, as Go's conversions
    if not -(2**63) <= ns < 2**63:
        raise ValueError(f"a lock TTL of {ttl!r} s does not fit a Go Duration")
    return ns


def lock_command(key: str, value: str | bytes, ttl) -> tuple:
    """The command go-redis's SetNX(key, value, ttl) sends (cmdable.SetNX, usePrecise, formatMs)."""
    ns = go_duration_ns(ttl)
    if ns == 0:
        return ("SETNX", key, value)
    if ns == -1:
        return ("SET", key, value, "KEEPTTL", "NX")
    if ns < 0:
        # go-redis sends PX <= 0 and Redis refuses it ("invalid expire time"): refused here.
        raise ValueError(f"a lock TTL cannot be negative ({ttl!r}): 0 = no expiry, KEEP_TTL")
    if ns < _NS_PER_S or ns % _NS_PER_S:
        return ("SET", key, value, "PX", max(1, ns // _NS_PER_MS), "NX")
    return ("SET", key, value, "EX", ns // _NS_PER_S, "NX")


def _refuse_misread(kind, key: str, value: bytes) -> None:
    """UnreadableByServer when atedash would show ``value`` otherwise than the ate server reads it
    (both read it: never expected, the codec reads numbers by Go's rules; a guard on the write)."""
    error, fields = go_decode(kind.name, value)
    try:
        ours = kind.codec.decode(value)[0]
    except RecordDecodeError as e:
        ours, error = None, error or str(e)
    if error is None and ours != kind.codec.message_class(**fields):
        error = "atedash would read this value otherwise than the ate server"
    if error is not None:
        raise UnreadableByServer(key, error, "atedash and the ate server would disagree on this record")


def _status_name(status: int) -> str:
    return Actor.Status.Name(status) if status in Actor.Status.values() else str(status)


class Persistence:
    def __init__(
        self,
        client: redis.Redis | RedisCluster,
        *,
        replica_ack_timeout: float | None = None,
        executor: ThreadPoolExecutor | None = None,
    ):
        self.client = client
        # When set (seconds): a create, update or delete returns once a replica has it too (or the
        # time is up), so that a failover right after cannot lose it (storage/replication.py).
        self.replica_ack_timeout = replica_ack_timeout
        self.topology = Topology(client, executor)
        self._replica_ack = ReplicaAck(client)
        self._compare_and_set = client.register_script(_COMPARE_AND_SET)
        self._compare_and_delete = client.register_script(_COMPARE_AND_DELETE)
        self._on_replicas: Persistence | None = None

    def on_replicas(self) -> Persistence:
        """This Persistence with its whole-store reads (shards, walks, counts, checks) sent to the
        replicas when the cluster has them (storage.topology.ReplicaTopology); writes and keyed reads
        still go to the primaries. One per Persistence, made on first use."""
        view = self._on_replicas
        if view is None:
            view = copy.copy(self)
            view.topology = ReplicaTopology(self.topology)
            view._on_replicas = view
            self._on_replicas = view
        return view

    # ================================================================ any record kind

    def get_record(self, kind: RecordKind, key: str | bytes) -> Record:
        """The record at ``key`` (NotFound, CorruptRecord), as get_actor / get_worker give it."""
        return self._get(kind, key)

    def read_records(
        self, kind: RecordKind, keys: list[str]
    ) -> tuple[list[Record], list[str], list[scanning.CorruptEntry]]:
        """(records, keys gone, corrupt entries) of ``keys``, one batched read per node, in ``keys``' order."""
        records: list[Record] = []
        gone: list[str] = []
        corrupt: list[scanning.CorruptEntry] = []
        if not keys:
            return records, gone, corrupt
        read = getattr(self.client, "mget_nonatomic", None) or self.client.mget
        for key, raw in zip(keys, read([key_bytes(k) for k in keys])):
            if raw is None:
                gone.append(key)
                continue
            try:
                records.append(kind.decode_stored(key, raw)[0])
            except CorruptRecord as exc:
                corrupt.append(scanning.CorruptEntry(exc.key, exc.reason, exc.preview))
        return records, gone, corrupt

    def lock_states(self, infos, stale_lock_s: float) -> dict:
        """{key: LockState} of these locks: age as far as the store tells, and whether each is stale by
        the check's rule (storage/check/lockage.py)."""
        from storage.check.lockage import lock_states

        return lock_states(self, infos, stale_lock_s)

    def close(self) -> None:
        """Closes the client's connections (the Persistence is not used after)."""
        view = self._on_replicas
        if view is not None and view is not self and isinstance(view.topology, ReplicaTopology):
            view.topology.close()
        self.client.close()

    def create_record(self, kind: RecordKind, message: Record) -> None:
        self._create(kind, message)

    def update_record(self, kind: RecordKind, message: Record, expected_version: int) -> None:
        self._update(kind, message, expected_version)

    def write_new_raw(self, entries: Iterable[tuple[str, bytes, int | None]]) -> int:
        """SET key value NX [EX ttl] for each (key, value, ttl seconds or None), pipelined; how many were new.

        For bulk loads of records that are made elsewhere (the demo data): nothing is overwritten.
        """
        pipe = self.client.pipeline(transaction=False)
        for key, value, ttl in entries:
            pipe.set(key, value, nx=True, ex=ttl)
        return sum(1 for written in pipe.execute() if written)

    # ================================================================ actors

    def create_actor(self, actor: Actor) -> None:
        self._create(ACTORS, actor)

    def get_actor(self, actor_id: str) -> Actor:
        return self._get(ACTORS, actor_key(actor_id))

    def update_actor(self, actor: Actor, expected_version: int) -> None:
        self._update(ACTORS, actor, expected_version)

    def delete_actor(self, actor_id: str) -> None:
        key = actor_key(actor_id)
        raw = _get_string(self.client, key)
        if raw is None:
            raise NotFound(key)
        stored, _ = ACTORS.decode_stored(key, raw)
        # Go's DeleteActor reads the record first: one it cannot read is not deleted.
        refuse_unreadable_stored(ACTORS, key, raw, DELETE)
        if stored.status != Actor.STATUS_SUSPENDED:
            raise FailedPrecondition(
                key, f"actor must be STATUS_SUSPENDED to be deleted, it is {_status_name(stored.status)}"
            )
        # Deleted only if it still holds the very bytes checked above: a status flip in between
        # makes this a VersionConflict, never the deletion of a running actor.
        result = self._compare_and_delete(keys=[key], args=[raw])
        if result == 1:
            self._replicated(key)
            return
        if result == 0:
            raise NotFound(key)
        raise VersionConflict(key, stored.version, self._version_of(ACTORS, key, result))

    def list_actors(self) -> list[Actor]:
        return self._list(ACTORS)

    # ================================================================ workers

    def create_worker(self, worker: Worker) -> None:
        self._create(WORKERS, worker)

    def get_worker(self, namespace: str, pool: str, pod: str) -> Worker:
        return self._get(WORKERS, worker_key(namespace, pool, pod))

    def update_worker(self, worker: Worker, expected_version: int) -> None:
        self._update(WORKERS, worker, expected_version)

    def delete_worker(self, namespace: str, pool: str, pod: str) -> None:
        # Idempotent, as in the Go server: deleting a missing worker is not an error.
        key = worker_key(namespace, pool, pod)
        if self.client.delete(key):
            self._replicated(key)

    def list_workers(self) -> list[Worker]:
        return self._list(WORKERS)

    def find_worker_by_pod(
        self, namespace: str, pod: str, pools: list[tuple[str, str]], *, budget: int
    ) -> tuple[Worker | None, bool]:
        """The worker whose pod is ``pod`` (in ``namespace``; any namespace when empty): an actor's worker.

        A worker's key names its pool, which an actor does not know: the worker is first read by
        key in each of ``pools`` (the (namespace, pool) pairs the caller knows of, one round trip per
        node), then looked for with a scan of at most ``budget`` keys. Returns (worker | None,
        complete), complete saying the whole namespace was looked at.
        """
        if not pod:
            return None, True
        worker = self._worker_in_pools(pod, pools)
        if worker is not None:
            return worker, True
        scanned, cursor = 0, None
        while True:
            page = self.scan_workers(
                cursor=cursor, limit=200, namespace=namespace or None, max_scan=max(1, budget - scanned)
            )
            scanned += page.scanned
            for worker in page.records:
                if worker.worker_pod == pod and (not namespace or worker.worker_namespace == namespace):
                    return worker, True
            cursor = page.next_cursor
            if cursor is None:
                return None, True
            if scanned >= budget:
                return None, False

    def worker_in_pools(self, pod: str, pools: list[tuple[str, str]]) -> Worker | None:
        """The worker of ``pod`` read by key in each of ``pools`` (one round trip per node), never a
        scan; None when absent from them or corrupt."""
        return self._worker_in_pools(pod, pools) if pod else None

    def _worker_in_pools(self, pod: str, pools: list[tuple[str, str]]) -> Worker | None:
        """The first worker ``pod`` found by key in ``pools``; None when absent or corrupt (the scan decides)."""
        if not pools:
            return None
        worker_keys = [worker_key(ns, pool, pod) for ns, pool in pools]
        read = getattr(self.client, "mget_nonatomic", None) or self.client.mget
        for key, raw in zip(worker_keys, read(worker_keys)):
            if raw is not None:
                try:
                    return WORKERS.decode_stored(key, raw)[0]
                except CorruptRecord:
                    return None
        return None

    # ================================================================ locks

    def acquire_lock(self, key: str, value: str | bytes, ttl_seconds) -> bool:
        """SET NX of a lock, as the Go server's AcquireLock (go-redis SetNX): True when taken.

        ``ttl_seconds`` (int, float, Decimal or timedelta; or ``KEEP_TTL``) is made a Go Duration
        (whole nanoseconds, the rest truncated) and sent as go-redis sends it (``lock_command``):
        0 = no expiry, ``KEEP_TTL`` = ``KEEPTTL``, whole seconds as EX, else PX truncated to whole
        milliseconds (2.9 ms -> PX 2; under 1 ms -> PX 1). A negative TTL is a ValueError (Go's
        goes to Redis, which refuses it: nothing is set either way)."""
        return bool(self.client.execute_command(*lock_command(key, value, ttl_seconds)))

    def release_lock(self, key: str, value: str | bytes) -> None:
        # Compare-and-delete: a holder whose lock expired and was taken by someone else must not
        # delete the new holder's lock.
        self._compare_and_delete(keys=[key], args=[value])

    def get_lock(self, key: str) -> LockInfo | None:
        pipe = self.client.pipeline(transaction=False)
        pipe.get(key)
        pipe.pttl(key)
        value, ttl = pipe.execute(raise_on_error=False)
        if isinstance(value, redis.exceptions.ResponseError):  # e.g. WRONGTYPE: a hash under lock:*
            raise CorruptRecord(key, f"not a string value: {value}", "")
        for reply in (value, ttl):
            if isinstance(reply, Exception):  # the node failed (a failover under way): the caller's 503
                raise reply
        if value is None:
            return None
        return LockInfo(key=key, token=value.decode("utf-8", "backslashreplace"), ttl_ms=ttl if ttl >= 0 else None)

    # ================================================================ whole store

    def debug_clear_all(self) -> list[cluster_info.ShardCounts]:
        """FLUSHALL on every primary, as the ate API's DebugClear; returns what was there."""
        return cluster_info.flush_all(self.topology)

    def clear_ate_records(self) -> list[cluster_info.ShardCounts]:
        return cluster_info.clear_ate_records(self.topology)

    def shard_counts(self) -> list[cluster_info.ShardCounts]:
        return cluster_info.shard_counts(self.topology)

    def key_count(self) -> int:
        """Keys in the whole store (DBSIZE of every primary, all kinds): what a walk would read."""
        return sum(self.topology.map_shards(lambda shard: int(shard.client.dbsize())))

    def store_stats(
        self, step_count: int = counting.STEP_KEYS, parallel: int = counting.PARALLEL_STEPS
    ) -> cluster_info.StoreStats:
        """The overview's counts (storage.counting), on at most ``parallel`` shards at once (0: all)."""
        return counting.store_stats(self.topology, step_count, pace=counting.Pace(parallel=parallel))

    def cluster_overview(self) -> cluster_info.ClusterOverview:
        return cluster_info.cluster_overview(self.topology)

    def ping(self) -> bool:
        try:
            return bool(self.client.ping())
        except redis.exceptions.RedisError:
            return False

    def cluster_state(self) -> str:
        return cluster_info.cluster_state(self.topology)

    @property
    def address(self) -> str:
        return cluster_info.address(self.topology)

    # ================================================================ paged scanning

    def scan_actors(
        self, cursor: str | None = None, limit: int = 50, **options: Unpack[scanning.ActorScan]
    ) -> scanning.Page:
        """One page of actors (storage.scanning.ActorScan: the filters, and how far a page may look)."""
        return self._scan_page(scanning.ACTOR_SCAN, scanning.actor_filter, cursor, limit, dict(options))

    def scan_workers(
        self, cursor: str | None = None, limit: int = 50, **options: Unpack[scanning.WorkerScan]
    ) -> scanning.Page:
        """One page of workers (storage.scanning.WorkerScan: the filters, and how far a page may look)."""
        return self._scan_page(scanning.WORKER_SCAN, scanning.worker_filter, cursor, limit, dict(options))

    def _scan_page(self, scan, make_filter, cursor: str | None, limit: int, options: dict) -> scanning.Page:
        max_scan, max_seconds = options.pop("max_scan", 100_000), options.pop("max_seconds", None)
        return scanning.scan_page(self.topology, scan, cursor, limit, make_filter(**options), max_scan, max_seconds)

    def scan_locks(
        self, cursor: str | None = None, limit: int = 50, *, max_scan: int = 100_000, max_seconds: float | None = None
    ) -> scanning.Page:
        """One page of locks (LockInfo): every primary at once, at most about ``max_scan`` keys
        examined in all (storage/sparse.py)."""
        return sparse.sparse_page(
            self.topology,
            scanning.lock_filter(),
            scanning.LOCK_SCAN,
            cursor,
            limit,
            max_scan=max_scan,
            max_seconds=max_seconds,
        )

    # ================================================================ byte-checked writes

    def compare_and_delete(self, key: str | bytes, raw: bytes) -> tuple[str, bytes | None]:
        """Deletes `key` only if it still holds exactly `raw`: ("deleted", None), ("gone", None), or
        ("changed", the value now)."""
        key = key_bytes(key)  # a walk's key may hold bytes that are not UTF-8 (surrogate escapes)
        result = self._compare_and_delete(keys=[key], args=[raw])
        if result == 1:
            self._replicated(key)
            return "deleted", None
        return ("gone", None) if result == 0 else ("changed", result)

    def compare_and_set(self, key: str | bytes, raw: bytes, new_raw: bytes) -> tuple[str, bytes | None]:
        """Writes `new_raw` only if `key` still holds exactly `raw` (a plain SET: a TTL does not survive, as
        after the Go server's writes): ("written",
        None), ("gone", None), or ("changed", the value now)."""
        key = key_bytes(key)
        result = self._compare_and_set(keys=[key], args=[raw, new_raw])
        if result == 1:
            self._replicated(key)
            return "written", None
        return ("gone", None) if result == 0 else ("changed", result)

    # ================================================================ full walks

    def full_walk(self, wanted: matches.WalkFilter, **kwargs) -> matches.FullWalk:
        """Every match of ``wanted`` (storage.matches.actor_walk / worker_walk), all primaries in
        parallel; not started: call run() (blocking), progress() and cancel() (storage/matches.py)."""
        return matches.FullWalk(self.topology, wanted, **kwargs)

    # ================================================================ raw records

    def exists(self, key: str) -> bool:
        """Whether `key` holds anything (one EXISTS; the value is not read)."""
        return bool(self.client.exists(key))

    def get_raw(self, key: str | bytes) -> RawRecord:
        pipe = self.client.pipeline(transaction=False)
        pipe.get(key)
        pipe.pttl(key)
        value, ttl = pipe.execute(raise_on_error=False)
        if isinstance(value, Exception):
            raise _wrong_type(key, value) or value
        if value is None:
            raise NotFound(_key_name(key))
        return RawRecord(
            key=key,
            value=value,
            encoding=detect_encoding(value),
            ttl_ms=ttl if ttl >= 0 else None,
            slot=key_slot(key),
            node=self._node_of(key),
        )

    def pretty_json(self, raw: RawRecord) -> str:
        kind = kind_of_key(raw.key)
        if kind is None:
            try:
                return reindent_json(raw.value)
            except (ValueError, UnicodeDecodeError, RecursionError) as e:
                raise CorruptRecord(_key_name(raw.key), f"not JSON: {e}", preview(raw.value)) from None
        try:
            message, encoding = kind.codec.decode(raw.value)
        except RecordDecodeError as e:
            raise CorruptRecord(_key_name(raw.key), str(e), preview(raw.value)) from None
        if encoding == JSON:
            # Re-indent what is stored, unknown keys included, rather than what the schema knows.
            try:
                return reindent_json(raw.value)
            except (ValueError, RecursionError):
                return raw.value.decode("utf-8", "replace")  # Go's `1e}`: shown as stored
        shown = json_format.MessageToDict(message)
        unknown = describe_unknown_fields(message)
        if unknown:
            shown["(unknown fields)"] = unknown
        return json.dumps(shown, indent=2, ensure_ascii=False)

    def iter_raw(self, prefixes=(ACTOR_PREFIX, WORKER_PREFIX), batch: int = 1000) -> Iterator[tuple[str, bytes]]:
        """Every (key, value) whose key starts with one of ``prefixes``, primary by primary."""
        prefixes = tuple(prefixes)
        byte_prefixes = tuple(p.encode() for p in prefixes)
        # One prefix: let the server filter. Several: one pass over the keyspace, filtered here.
        match = prefixes[0] + "*" if len(prefixes) == 1 else None
        for shard in self.topology.shards():
            for keys, values in scanning.walk_shard(self.topology, shard, match, batch):
                for key, value in zip(keys, values):
                    # Values that are not strings (wrong type) are not ate records; nothing to export.
                    if type(value) is bytes and key.startswith(byte_prefixes):
                        yield key.decode("utf-8", "backslashreplace"), value

    def restore_raw(
        self, key: str, value: bytes, *, overwrite_version: int | None = None, allow_unreadable: bool = False
    ) -> str:
        """Writes an exported record back: "created", "overwritten" or "skipped".

        An existing record is only overwritten when ``overwrite_version`` is given and the stored
        record is still at that version (the one the operator reviewed); otherwise it is skipped.
        A record the ate server could not read is refused (UnreadableByServer) unless
        ``allow_unreadable`` (restoring a damaged store byte for byte).
        """
        kind = kind_of_key(key)
        if kind is not None:
            kind.decode_stored(key, value)  # refuse to import what would be a corrupt record
            if not allow_unreadable:
                _refuse_unreadable(key, value)
        if self.client.set(key, value, nx=True):
            return "created"
        if overwrite_version is None:
            return "skipped"
        current = cast("bytes | None", self.client.get(key))  # the store's clients never decode
        while current is not None:
            if kind is not None:
                try:
                    stored, _ = kind.decode_stored(key, current)
                except CorruptRecord:
                    return "skipped"
                if stored.version != overwrite_version:
                    return "skipped"
            result = self._compare_and_set(keys=[key], args=[current, value])
            if result == 1:
                return "overwritten"
            current = None if result == 0 else result
        return "created" if self.client.set(key, value, nx=True) else "skipped"

    def write_raw(self, key: str, shown: bytes, value: bytes) -> None:
        """Replaces the record at ``key`` by ``value`` if it still holds exactly ``shown`` (the bytes
        an operator edited): the raw editor's and the canonical repair's write.

        Refuses (UnreadableByServer) a value the ate server could not read at that key, and a key it
        cannot list; VersionConflict when the stored bytes are no longer ``shown``; NotFound when the
        key is gone. A plain SET, as the server's updates: a TTL does not survive.
        """
        if kind_of_key(key) is None:
            raise FailedPrecondition(key, "only actor:* and worker:* records are edited raw")
        _refuse_unreadable(key, value)
        _refuse_misread(kind_of_key(key), key, value)
        self._as_shown(key, self._compare_and_set(keys=[key], args=[shown, value]), "written")

    def delete_raw(self, key: str, shown: bytes) -> None:
        """Deletes a record the ate server cannot read (or atedash cannot decode) if it still holds
        exactly ``shown``. A record both read is deleted the ordinary way (FailedPrecondition:
        an actor is deleted once SUSPENDED). VersionConflict when the bytes changed, NotFound when gone.
        """
        kind = kind_of_key(key)
        if kind is None:
            raise FailedPrecondition(key, "only actor:* and worker:* records are deleted here")
        if server_read_error(key, shown) is None:
            try:
                kind.decode_stored(key, shown)
            except CorruptRecord:
                pass  # atedash cannot decode it: corrupt for the dashboard, deleted here
            else:
                raise FailedPrecondition(key, "the ate server reads this record: delete it the ordinary way")
        self._as_shown(key, self._compare_and_delete(keys=[key], args=[shown]), "deleted")

    def _as_shown(self, key: str, result, done: str) -> None:
        """The outcome of a compare-and-set or -delete of the bytes an operator was shown: NotFound
        when the key is gone, VersionConflict when the bytes changed (nothing was ``done``)."""
        if result == 1:
            self._replicated(key)
            return
        if result == 0:
            raise NotFound(key)
        raise VersionConflict(key, None, None, f"{key} changed since it was shown; nothing was {done}")

    # ================================================================ shared machinery

    def _create(self, kind: RecordKind, message: Record) -> None:
        record = copy_record(message)  # the caller's message is not modified
        record.version = 1
        key = kind.key_of(record)
        value = kind.codec.encode_json(record)
        _refuse_unreadable(key, value)  # e.g. an id with ':' (the server's list fails on its key)
        if not self.client.set(key, value, nx=True):
            raise AlreadyExists(key)
        self._replicated(key)

    def get_writable(self, kind: RecordKind, key: str | bytes, write: str = UPDATE) -> Record:
        """The record at ``key`` as get_record gives it, refused (UnreadableStored) when the Go
        server's ``write`` of it ("update", "delete") would fail reading it (storage.gorules)."""
        raw = _get_string(self.client, key)
        if raw is None:
            raise NotFound(_key_name(key))
        record = kind.decode_stored(key, raw)[0]
        refuse_unreadable_stored(kind, key, raw, write)
        return record

    def _get(self, kind: RecordKind, key: str | bytes):
        raw = _get_string(self.client, key)
        if raw is None:
            raise NotFound(_key_name(key))
        return kind.decode_stored(key, raw)[0]

    def _update(self, kind: RecordKind, message: Record, expected_version: int) -> None:
        key = kind.key_of(message)
        raw = _get_string(self.client, key)
        for _ in range(_MAX_CAS_ROUNDS):
            if raw is None:
                raise NotFound(key)
            stored, encoding = kind.decode_stored(key, raw)
            # Go's UpdateActor/UpdateWorker read the record first and fail on one they cannot
            # read: writing anyway would keep its unknown field or binary form at version + 1.
            refuse_unreadable_stored(kind, key, raw, UPDATE)
            if stored.version != expected_version:
                raise VersionConflict(key, expected_version, stored.version)
            for field in kind.immutable_fields:
                if getattr(stored, field) != getattr(message, field):
                    raise ImmutableField(key, field)
            record = copy_record(message)
            record.version = expected_version + 1
            new_raw = kind.codec.encode_update(record, raw, encoding)
            result = self._compare_and_set(keys=[key], args=[raw, new_raw])
            if result == 1:
                message.version = expected_version + 1
                self._replicated(key)
                return
            raw = None if result == 0 else result
        raise VersionConflict(key, expected_version, None, f"{key} keeps changing; update abandoned")

    def _replicated(self, key: str | bytes) -> None:
        if self.replica_ack_timeout:
            self._replica_ack.wait(key, self.replica_ack_timeout)

    def _version_of(self, kind: RecordKind, key: str, raw: bytes) -> int | None:
        try:
            return kind.decode_stored(key, raw)[0].version
        except CorruptRecord:
            return None

    def _list(self, kind: RecordKind) -> list:
        decode = kind.decode_stored

        def collect(shard):
            records = []
            # A failover restarts this shard's collection from scratch (map_shards retries it), so
            # no record is listed twice.
            walk = scanning.walk_shard(self.topology, shard, kind.prefix + "*", 1000, resume_on_failover=False)
            for keys, values in walk:
                for key, raw in zip(keys, values):
                    if raw is not None:  # deleted between SCAN and GET
                        records.append(decode(key, raw)[0])
            return records

        parts = self.topology.map_shards(collect)
        return [record for part in parts for record in part]

    def _node_of(self, key: str | bytes) -> str:
        if isinstance(self.client, RedisCluster):
            return self.client.get_node_from_key(key).name
        return self.topology.shards()[0].address
