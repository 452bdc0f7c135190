"""Backup and restore of the ate records as JSON lines.

Export writes one line per actor and worker, streamed in constant memory (``Persistence.iter_raw``)::

    {"key": "actor:a1", "encoding": "json", "value": "<the stored JSON text, exactly>",
     "record": {...decoded fields, protobuf JSON as `kubectl ate get -o json` prints them...}}
    {"key": "worker:ns:pool:pod", "encoding": "binary", "value_base64": "<the stored bytes>",
     "record": {...}}

``value`` carries a JSON record's stored text as a string (a JSON string round-trips any UTF-8 text
exactly, whitespace and unknown fields included); ``value_base64`` carries a binary record, or a JSON one
whose bytes are not valid UTF-8. ``record`` is informational (``json_format.MessageToDict``: lowerCamelCase
names, int64 as strings, enums by name, defaults omitted); import ignores it and restores the stored
bytes, so export → flush → import gives back every key byte for byte. A record that does not decode is
exported with ``"record": null`` and ``"error": "..."`` so that nothing is lost from the file; the store
never writes such a record (``restore_raw`` refuses it), so import counts it as ``corrupt`` and moves on,
unless asked (``include_corrupt`` with ``allow_unreadable``: the ate server cannot read it either) to put
it back where its key is free, for a byte-for-byte restore.
A record atedash decodes but the ate server cannot read (``storage.server_readable``: unknown fields,
binary protobuf, an id with ':' ...) is refused the same way and counted as ``unreadable``, unless
``allow_unreadable``: then it is written and counted in ``unreadable_written``, so that the store can be
flagged and mended afterwards (the dashboard shows such records and edits them raw).

Import validates the whole file before writing anything (errors name their line numbers), then writes
each record with ``Persistence.restore_raw`` under a policy for keys that exist already:

- ``skip``: an existing key is left alone;
- ``overwrite-if-version``: an existing key is overwritten only when its stored version equals the
  version of the record in the file (the state the export saw), so changes made since are kept.

``dry_run`` reads the store and reports what would happen, writing nothing.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO

from google.protobuf import json_format
from redis.cluster import RedisCluster

from storage.errors import CorruptRecord, NotFound, StorageError
from storage.keys import ACTOR_PREFIX, WORKER_PREFIX
from storage.node_reads import fetch_values
from storage.raw import detect_encoding
from storage.records import kind_of_key
from storage.server_readable import server_read_error

POLICIES = ("skip", "overwrite-if-version")
MAX_REPORTED_ERRORS = 50


class ImportFileError(StorageError):
    """The import file is malformed; nothing was written. ``errors``: [(line number, message)]."""

    def __init__(self, errors: list[tuple[int, str]], total: int | None = None):
        self.errors = errors
        self.total = total if total is not None else len(errors)
        shown = "\n".join(f"line {n}: {msg}" for n, msg in errors)
        more = f"\n... and {self.total - len(errors)} more" if self.total > len(errors) else ""
        self.message = f"{self.total} bad line(s), nothing was written:\n{shown}{more}"
        Exception.__init__(self, self.message)

    def __str__(self) -> str:
        return self.message


def decode_record(key: str, value: bytes):
    """(message, encoding) of a stored value, exactly as the store decodes it; ValueError (with the
    store's wording) when it does not decode or its identity does not match the key."""
    kind = kind_of_key(key)
    if kind is None:
        raise ValueError(f"not an actor or worker key: {key!r}")
    try:
        return kind.decode_stored(key, value)
    except CorruptRecord as e:
        raise ValueError(e.reason) from None


def record_dict(msg) -> dict:
    """Protobuf JSON shape, as `kubectl ate get -o json` prints a record."""
    return json_format.MessageToDict(msg)


# ---------------------------------------------------------------------------------------------------
# Export
# ---------------------------------------------------------------------------------------------------


def export_line(key: str, value: bytes) -> str:
    try:
        msg, encoding = decode_record(key, value)
        error = None
    except ValueError as e:
        msg, encoding, error = None, detect_encoding(value), str(e)
    line: dict = {"key": key, "encoding": encoding}
    text = None
    if encoding == "json":
        try:
            text = value.decode("utf-8")
        except UnicodeDecodeError:
            text = None
    if text is not None:
        line["value"] = text
    else:
        line["value_base64"] = base64.b64encode(value).decode("ascii")
    if msg is not None:
        line["record"] = record_dict(msg)
    else:
        line["record"] = None
        line["error"] = error
    return json.dumps(line, separators=(",", ":")) + "\n"


@dataclass
class ExportResult:
    """What an export wrote: lines in all, of each kind, and bytes (for the page and the audit)."""

    records: int = 0
    actors: int = 0
    workers: int = 0
    corrupt: int = 0
    bytes: int = 0


def iter_export(persistence, *, batch: int = 1000, result: ExportResult | None = None) -> Iterator[str]:
    """Yields one JSON line (with its newline) per actor and worker; constant memory."""
    # One walk per prefix: the server filters with SCAN MATCH, so keys of other types (the audit
    # stream, anything else sharing the store) are never fetched.
    for key, value in _iter_records(persistence, batch):
        if isinstance(key, bytes):
            key = key.decode("utf-8", "backslashreplace")
        line = export_line(key, value)
        if result is not None:
            result.records += 1
            if key.startswith(ACTOR_PREFIX):
                result.actors += 1
            else:
                result.workers += 1
            if '"error":' in line and line.rstrip().endswith("}") and '"record":null' in line:
                result.corrupt += 1
            result.bytes += len(line.encode("utf-8"))
        yield line


def _iter_records(persistence, batch):
    for prefix in (ACTOR_PREFIX, WORKER_PREFIX):
        yield from persistence.iter_raw(prefixes=(prefix,), batch=batch)


def export(persistence, out: IO[str], *, batch: int = 1000) -> ExportResult:
    """Writes every actor and worker to ``out`` (a text stream)."""
    result = ExportResult()
    for line in iter_export(persistence, batch=batch, result=result):
        out.write(line)
    return result


# ---------------------------------------------------------------------------------------------------
# Import
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImportEntry:
    line: int
    key: str
    value: bytes
    version: int | None  # None for a record that does not decode (exported as corrupt)
    unreadable: str | None = None  # why the ate server could not read it (Go's words), None when it can

    @property
    def corrupt(self) -> bool:
        return self.version is None


def parse_line(lineno: int, text: str) -> ImportEntry:
    """One entry of an import file; ValueError with an operator-readable message when malformed."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"not JSON: {e.msg} at column {e.colno}") from None
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    key = data.get("key")
    if not isinstance(key, str) or not key:
        raise ValueError('missing "key" (a string)')
    if not (key.startswith(ACTOR_PREFIX) or key.startswith(WORKER_PREFIX)):
        raise ValueError(f"key {key!r} is neither actor:* nor worker:*")
    encoding = data.get("encoding")
    if encoding not in ("json", "binary"):
        raise ValueError(f'"encoding" must be "json" or "binary", not {encoding!r}')
    has_value, has_b64 = "value" in data, "value_base64" in data
    if has_value == has_b64:
        raise ValueError('exactly one of "value" and "value_base64" is required')
    if has_value:
        if not isinstance(data["value"], str):
            raise ValueError('"value" must be a string (the stored JSON text)')
        if encoding != "json":
            raise ValueError('"value" is for JSON records; binary ones use "value_base64"')
        value = data["value"].encode("utf-8", "surrogatepass")
    else:
        if not isinstance(data["value_base64"], str):
            raise ValueError('"value_base64" must be a string')
        try:
            value = base64.b64decode(data["value_base64"], validate=True)
        except (binascii.Error, ValueError) as e:
            raise ValueError(f'"value_base64" is not valid base64: {e}') from None
    if not value:
        raise ValueError("empty value")
    try:
        msg, actual = decode_record(key, value)
    except ValueError as e:
        if "error" in data and data.get("record") is None:
            # Exported as corrupt: the store refuses to write it back; import reports it.
            return ImportEntry(lineno, key, value, None, _unreadable(key, value) or "undecodable")
        raise ValueError(f"value does not decode as stored records do: {e}") from None
    if actual != encoding:
        raise ValueError(f'"encoding" says {encoding} but the value is {actual}')
    return ImportEntry(lineno, key, value, msg.version, _unreadable(key, value))


def _unreadable(key: str, value: bytes) -> str | None:
    unreadable = server_read_error(key, value)
    return None if unreadable is None else unreadable.reason


def iter_entries(lines: Iterable[str]) -> Iterator[ImportEntry | tuple[int, str]]:
    """Parsed entries, or (line number, error) for bad lines. Blank lines are ignored."""
    for lineno, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        try:
            yield parse_line(lineno, text)
        except ValueError as e:
            yield (lineno, str(e))


def validate(lines: Iterable[str]) -> int:
    """Reads every line; raises ImportFileError listing bad lines. Returns the number of records."""
    errors: list[tuple[int, str]] = []
    total_errors = 0
    count = 0
    for item in iter_entries(lines):
        if isinstance(item, tuple):
            total_errors += 1
            if len(errors) < MAX_REPORTED_ERRORS:
                errors.append(item)
        else:
            count += 1
    if total_errors:
        raise ImportFileError(errors, total_errors)
    return count


@dataclass
class ImportResult:
    policy: str
    dry_run: bool
    records: int = 0
    created: int = 0
    overwritten: int = 0
    skipped: int = 0
    corrupt: int = 0  # lines exported as undecodable records: reported, not written (see include_corrupt)
    unreadable: int = 0  # records the ate server cannot read: refused, not written (see allow_unreadable)
    unreadable_written: int = 0  # records the ate server cannot read that were written (allow_unreadable)
    # Up to max_details (line, key, outcome, version in the store before, version after) rows.
    details: list[tuple[int, str, str, int | None, int | None]] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "policy": self.policy,
            "dry_run": self.dry_run,
            "records": self.records,
            "created": self.created,
            "overwritten": self.overwritten,
            "skipped": self.skipped,
            "corrupt": self.corrupt,
            "unreadable": self.unreadable,
            "unreadable_written": self.unreadable_written,
        }


# Replaces the value only if it still is ARGV[1] (the bytes whose version was checked); a plain SET
# as Persistence's own compare-and-set (and the Go server's writes). 1 when written, else 0.
_CAS = """
local current = redis.call('GET', KEYS[1])
if current and current == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2])
  return 1
end
return 0
"""


def _restore(persistence, entry, policy) -> str:
    """One record through the cluster client (after a MOVED, or a lost race)."""
    if entry.corrupt:
        # restore_raw refuses undecodable values; only a free key takes one.
        return "created" if persistence.client.set(entry.key, entry.value, nx=True) else "skipped"
    return persistence.restore_raw(
        entry.key,
        entry.value,
        overwrite_version=entry.version if policy != "skip" else None,
        allow_unreadable=entry.unreadable is not None,  # import_records let it through: it was allowed
    )


def _by_node(client, keys: list[str]) -> list[tuple[object, list[int]]]:
    """[(node client, indices of the keys it serves)]: one round trip per node, no cluster pipeline."""
    if not isinstance(client, RedisCluster):
        return [(client, list(range(len(keys))))]
    groups: dict[str, tuple[object, list[int]]] = {}
    for i, key in enumerate(keys):
        node = client.get_node_from_key(key)
        group = groups.get(node.name)
        if group is None:
            group = groups[node.name] = (client.get_redis_connection(node), [])
        group[1].append(i)
    return list(groups.values())


def _import_batch(persistence, batch, policy, dry_run, result, max_details, on_write) -> None:
    """One batch: one pipelined read of the stored values per node, the plans, one pipelined round of
    writes per node (unless ``dry_run``), then the tally."""
    client = persistence.client
    keys = [entry.key for entry in batch]
    groups = _by_node(client, keys)
    stored = _read_stored(client, groups, batch, keys)
    plans = [_plan(entry, exists, version, policy) for entry, (exists, _value, version) in zip(batch, stored)]
    if dry_run:
        outcomes = [_DRY_OUTCOMES[plan] for plan in plans]
    else:
        replies = _write_planned(groups, batch, keys, plans, stored)
        outcomes = [
            _outcome(persistence, entry, plan, reply, policy) for entry, plan, reply in zip(batch, plans, replies)
        ]
    for entry, outcome, (exists, _value, version) in zip(batch, outcomes, stored):
        setattr(result, outcome, getattr(result, outcome) + 1)
        if entry.unreadable is not None and outcome in ("created", "overwritten"):
            result.unreadable_written += 1
        if not dry_run and on_write is not None and outcome in ("created", "overwritten"):
            on_write(entry, outcome, version if outcome == "overwritten" else None)
        _report(result, max_details, (entry.line, entry.key, outcome, version if exists else None, entry.version))


_DRY_OUTCOMES = {"create": "created", "overwrite": "overwritten", "skip": "skipped"}


def _read_stored(client, groups, batch, keys) -> list[tuple[bool, bytes | None, int | None]]:
    """Per entry: (exists, stored bytes, stored version; None when the stored record does not decode)."""
    reroute = client.get if isinstance(client, RedisCluster) else None
    stored_values: list = [None] * len(batch)
    for node, indices in groups:
        values = fetch_values(node, [keys[i].encode("utf-8", "surrogateescape") for i in indices], reroute)
        for i, value in zip(indices, values):
            if isinstance(value, Exception):
                raise value
            stored_values[i] = value
    stored: list[tuple[bool, bytes | None, int | None]] = []
    for entry, value in zip(batch, stored_values):
        if value is None:
            stored.append((False, None, None))
            continue
        try:
            version = decode_record(entry.key, value)[0].version
        except ValueError:
            version = None  # a corrupt record in the store is never overwritten
        stored.append((True, value, version))
    return stored


def _plan(entry, exists: bool, version: int | None, policy: str) -> str:
    """ "create" | "overwrite" | "skip"."""
    if not exists:
        return "create"
    if policy == "overwrite-if-version" and version is not None and version == entry.version:
        return "overwrite"
    return "skip"


def _write_planned(groups, batch, keys, plans, stored) -> list:
    """The planned writes, one pipeline per node: SET NX for a create, compare-and-set against the bytes
    read for an overwrite. Per entry: the reply (an exception when refused), None when skipped."""
    replies: list = [None] * len(batch)
    for node, indices in groups:
        pipe = node.pipeline(transaction=False)
        sent = []
        for i in indices:
            if plans[i] == "create":
                pipe.set(keys[i], batch[i].value, nx=True)
            elif plans[i] == "overwrite":
                pipe.execute_command("EVAL", _CAS, 1, keys[i], stored[i][1], batch[i].value)
            else:
                continue
            sent.append(i)
        if sent:
            for i, reply in zip(sent, pipe.execute(raise_on_error=False)):
                replies[i] = reply
    return replies


def _outcome(persistence, entry, plan: str, reply, policy: str) -> str:
    if plan == "skip":
        return "skipped"
    if isinstance(reply, Exception):
        # MOVED/ASK (a slot migrating), or any other refusal: the cluster client decides.
        return _restore(persistence, entry, policy)
    if plan == "create" and reply:
        return "created"
    if plan == "overwrite" and reply == 1:
        return "overwritten"
    if policy == "skip":
        return "skipped"  # created by someone else meanwhile: left alone
    # Lost a race: restore_raw re-reads, re-checks the version and decides.
    return _restore(persistence, entry, policy)


def _stored_version(persistence, key: str) -> tuple[bool, int | None]:
    """(exists, version) of the stored record; version None when it does not decode."""
    try:
        raw = persistence.get_raw(key)
    except NotFound:
        return False, None
    try:
        return True, decode_record(key, raw.value)[0].version
    except ValueError:
        return True, None


def _seekable_text(source) -> tuple[IO[str], bool]:
    """A text stream that can be read twice, and whether we opened it."""
    if isinstance(source, (str, os.PathLike)):
        return open(source, encoding="utf-8", newline="\n"), True
    if isinstance(source, (bytes, bytearray)):
        return io.StringIO(bytes(source).decode("utf-8"), newline="\n"), True
    stream = source
    if isinstance(stream, io.TextIOBase) or hasattr(stream, "encoding"):
        try:
            if stream.seekable():
                return stream, False
        except (AttributeError, ValueError):
            pass
    # Not seekable (stdin, an upload stream): spool to a temporary file (disk past 16 MiB).
    spool = tempfile.SpooledTemporaryFile(max_size=16 << 20, mode="w+", encoding="utf-8", newline="\n")
    for chunk in stream:
        if isinstance(chunk, bytes):
            chunk = chunk.decode("utf-8")
        spool.write(chunk)
    spool.seek(0)
    return spool, True


def import_records(
    persistence,
    source,
    *,
    policy: str = "skip",
    dry_run: bool = False,
    max_details: int = 1000,
    on_write: Callable[[ImportEntry, str, int | None], None] | None = None,
    batch_size: int = 500,
    include_corrupt: bool = False,
    allow_unreadable: bool = False,
) -> ImportResult:
    """Imports a JSON-lines export. ``source``: a path, bytes, or a text/binary stream.

    The whole file is validated first (ImportFileError, nothing written); then each record is
    restored under ``policy``. ``on_write(entry, outcome, version_before)`` is called after each
    write that changed the store (outcome "created" or "overwritten"), for the audit trail.

    Records go in batches: one pipelined read of the batch's stored values, then one pipelined
    round of writes, each atomic per key exactly as ``Persistence.restore_raw`` makes it (SET NX for
    a key that is free; compare-and-set against the bytes whose version was checked for an
    overwrite). A write that loses a race with another writer is retried through ``restore_raw``.

    ``include_corrupt``: also write back the records that were exported as undecodable (for a restore
    that is byte for byte even of a damaged store), only where the key is free: never over a record;
    and only with ``allow_unreadable`` (the ate server cannot read them either): without it they are
    counted in ``unreadable``, not written.

    ``allow_unreadable``: also write the records the ate server cannot read (``storage.server_readable``);
    without it they are counted in ``unreadable`` and not written. Written ones are counted in
    ``unreadable_written`` (undecodable ones written by ``include_corrupt`` too)."""
    if policy not in POLICIES:
        raise ValueError(f"policy must be one of {', '.join(POLICIES)}, not {policy!r}")
    stream, opened = _seekable_text(source)
    try:
        start = stream.tell()
        validate(stream)
        stream.seek(start)
        result = ImportResult(policy=policy, dry_run=dry_run)
        entries = _to_write(iter_entries(stream), result, include_corrupt, allow_unreadable, max_details)
        for batch in _batches(entries, batch_size):
            _import_batch(persistence, batch, policy, dry_run, result, max_details, on_write)
        return result
    finally:
        if opened:
            stream.close()


def _to_write(entries, result: ImportResult, include_corrupt: bool, allow_unreadable: bool, max_details: int):
    """The entries of a validated file that are to be written, each counted in ``result.records``; the
    ones held back (exported as undecodable, unless ``include_corrupt``; unreadable by the ate server,
    unless ``allow_unreadable``) are counted and reported in ``result`` instead."""
    for entry in entries:
        assert not isinstance(entry, tuple)  # validated above
        result.records += 1
        if entry.corrupt and not include_corrupt:
            # The store never writes a record that does not decode (restore_raw refuses it).
            result.corrupt += 1
            _report(result, max_details, (entry.line, entry.key, "corrupt", None, None))
        elif (entry.unreadable is not None or entry.corrupt) and not allow_unreadable:
            # A corrupt record is one the ate server cannot read either (a truncated value makes
            # its ListActors fail with "unexpected EOF"): include_corrupt alone never writes it.
            result.unreadable += 1
            _report(result, max_details, (entry.line, entry.key, "unreadable", None, entry.version))
        else:
            yield entry


def _batches(entries: Iterable[ImportEntry], size: int) -> Iterator[list[ImportEntry]]:
    """``entries`` in lists of ``size`` (the last one shorter), each handed over as soon as it is full."""
    batch: list[ImportEntry] = []
    for entry in entries:
        batch.append(entry)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _report(result: ImportResult, max_details: int, row: tuple[int, str, str, int | None, int | None]) -> None:
    """One row of ``result.details`` (line, key, outcome, version before, after), up to ``max_details``."""
    if len(result.details) < max_details:
        result.details.append(row)


def iter_keys_export(persistence, keys: list[str], *, batch: int = 500) -> Iterator[str]:
    """The backup's JSON lines of the records at `keys` (a walk's matches), read `batch` at a time;
    keys gone meanwhile are left out. Memory: one batch."""
    client = persistence.client
    read = getattr(client, "mget_nonatomic", None) or client.mget
    for start in range(0, len(keys), batch):
        chunk = keys[start : start + batch]
        for key, value in zip(chunk, read(chunk)):
            if value is not None:
                yield export_line(key, value)
