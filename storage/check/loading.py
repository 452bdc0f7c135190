"""The check's reads: pages of actors and workers as atedash decodes them, each also judged as the ate
server would read it (storage.server_readable), from the same bytes in the same round trip.

A record comes back as one of:

- the decoded message (``Actor``/``Worker``): both atedash and the server read it (the common case);
- an :class:`UnreadableRecord`: atedash reads it, the server does not (its key or its value);
- a :class:`JudgedCorrupt` (a ``CorruptEntry``, so the scan reports it among ``page.corrupt``):
  atedash cannot decode it; ``server`` says whether the server can.

The server's judgment takes its cheap value-only path first (the key's colons, then the value's
``value_error``, whose first tier is one regular expression) and asks for the full verdict, in the
server's words, only for a record that path refuses.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from google.protobuf.message import Message

from storage import scanning, server_readable
from storage.errors import CorruptRecord
from storage.records import ACTORS, WORKERS, RecordKind
from storage.scanning import CorruptEntry, Page


@dataclass(frozen=True, slots=True)
class UnreadableRecord:
    key: str
    record: Message  # as atedash reads it
    why: server_readable.Unreadable


@dataclass(frozen=True)
class JudgedCorrupt(CorruptEntry):
    server: server_readable.Unreadable | None = None  # None: the ate server reads it


def judged_loader(kind: RecordKind, schema):
    """A scanning loader (node client, keys, reroute) -> records, for ``kind`` judged by ``schema``
    (server_readable.ACTOR_SCHEMA or WORKER_SCHEMA)."""
    colons, value_error, judge = schema.colons, schema.value_error, schema.judge

    def corrupt(e: CorruptRecord, key: bytes, raw: bytes) -> JudgedCorrupt:
        return JudgedCorrupt(e.key, e.reason, e.preview, raw_key=key, server=judge(key, raw))

    def judged(key: bytes, raw: bytes, record: Message):
        if key.count(b":") == colons and value_error(raw) is None:
            return record
        why = judge(key, raw)
        return record if why is None else UnreadableRecord(kind.key_of(record), record, why)

    return scanning.record_loader(kind, corrupt, judged)


ACTOR_LOAD = judged_loader(ACTORS, server_readable.ACTOR_SCHEMA)
WORKER_LOAD = judged_loader(WORKERS, server_readable.WORKER_SCHEMA)
_EVERY_ACTOR = scanning.actor_filter()
_EVERY_WORKER = scanning.worker_filter()
# Keys examined per call at most; a page stops at its ``limit`` records long before that.
_MAX_SCAN = 100_000


def pages(scan, page_size: int) -> Iterator[Page]:
    """Every page of a walk: ``scan(cursor=..., limit=...)`` until the walk is complete."""
    cursor = None
    while True:
        page = scan(cursor=cursor, limit=page_size)
        yield page
        cursor = page.next_cursor
        if cursor is None:
            return


def actor_pages(persistence, page_size: int) -> Iterator[Page]:
    return pages(_judged_scan(persistence, ACTOR_LOAD, _EVERY_ACTOR), page_size)


def worker_pages(persistence, page_size: int) -> Iterator[Page]:
    return pages(_judged_scan(persistence, WORKER_LOAD, _EVERY_WORKER), page_size)


def _judged_scan(persistence, load, wanted):
    def scan(cursor, limit):
        return scanning.scan_page(persistence.topology, load, cursor, limit, wanted, _MAX_SCAN)

    return scan
