"""The Go server's rules for writing over a stored record, which every storage write of one follows.

The seed's ateredis reads the stored record first, with ``protojson.Unmarshal``, and fails when it
cannot read it, in UpdateActor and UpdateWorker (a worker is freed by an UpdateWorker) and in
DeleteActor (inside the WATCH, before its SUSPENDED check). Its DeleteWorker is a plain DEL that
reads nothing. So storage's update, delete, bulk delete-suspended / free-workers, scoped reset and
the consistency repairs refuse (``UnreadableStored``, in Go's words) where Go's call fails, and
delete a worker as Go does; a corrupt record (atedash cannot decode it) stays a CorruptRecord. The
raw editor (``Persistence.write_raw`` / ``delete_raw``) is the way to mend or remove such a record.

Plain library: no Django.
"""

from __future__ import annotations

from storage.errors import UnreadableStored
from storage.keys import shown_key
from storage.records import RecordKind
from storage.server_readable import value_error

UPDATE, DELETE = "update", "delete"

# (kind, write) -> (Go's call, the error it returns when protojson.Unmarshal fails)
_CALLS = {
    ("actor", UPDATE): ("UpdateActor", "while executing update actor transaction: in protojson.Unmarshal: "),
    ("worker", UPDATE): ("UpdateWorker", "while executing update worker transaction: in protojson.Unmarshal: "),
    ("actor", DELETE): ("DeleteActor", "in protojson.Unmarshal: "),
}
_LIST = {"actor": "ListActors", "worker": "ListWorkers"}


def unreadable_stored(kind: RecordKind, key: str | bytes, raw: bytes, write: str) -> UnreadableStored | None:
    """The error of Go's ``write`` (UPDATE or DELETE) of the record ``raw`` stored at ``key`` when
    it cannot read it; None when Go's call reads it, or reads nothing (DeleteWorker)."""
    call = _CALLS.get((kind.name, write))
    if call is None:
        return None
    reason = value_error(kind.name, raw)
    if reason is None:
        return None
    name, prefix = call
    fails = f"the ate server's {_LIST[kind.name]} fails while this record exists, and its {name} of it"
    return UnreadableStored(shown_key(key), reason, name, prefix + reason, fails)


def refuse_unreadable_stored(kind: RecordKind, key: str | bytes, raw: bytes, write: str) -> None:
    """Raises ``unreadable_stored``'s error, if any."""
    refused = unreadable_stored(kind, key, raw, write)
    if refused is not None:
        raise refused


def skipped(refused: UnreadableStored) -> dict:
    """A bulk or reset report's skipped entry for a record refused as Go refuses it."""
    return {
        "key": refused.key,
        "why": f"the ate server cannot read it (its {refused.call} fails): {refused.reason}",
        "unreadable": refused.reason,
    }
