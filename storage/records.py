"""What distinguishes the two record kinds: key layout, codec, identity and immutable fields."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic

from storage.ateapi_pb2 import Actor, Worker
from storage.codec import ACTOR_CODEC, WORKER_CODEC, M, RecordCodec, RecordDecodeError, preview
from storage.errors import CorruptRecord
from storage.keys import (
    ACTOR_PREFIX,
    WORKER_PREFIX,
    actor_key,
    is_utf8_key,
    parse_actor_key,
    parse_worker_key,
    shown_key,
    worker_key,
)

# A record of either kind, where the kind is chosen at run time.
Record = Actor | Worker


@dataclass(frozen=True)
class RecordKind(Generic[M]):
    name: str
    prefix: str
    codec: RecordCodec[M]
    key_of: Callable[[M], str]
    # Fields an update may not change (proto field names, as ImmutableField reports them).
    immutable_fields: tuple[str, ...]
    # The parts of a key (actor: (id,); worker: (ns, pool, pod)) and back: ValueError for a key of another shape.
    parse_key: Callable[[str], tuple[str, ...]]
    key_of_parts: Callable[..., str]

    def parts(self, key: str | bytes) -> tuple[str, ...] | None:
        """The parts of ``key`` when it is one this kind writes (None: not UTF-8, another shape)."""
        if not isinstance(key, str):
            return None
        try:
            parts = self.parse_key(key)
        except ValueError:
            return None
        return parts if self.key_of_parts(*parts) == key else None

    def decode_stored(self, key: str | bytes, raw: bytes) -> tuple[M, str]:
        """(message, encoding) of a stored value; CorruptRecord when undecodable or misplaced."""
        key_text = shown_key(key)
        if isinstance(raw, Exception):  # the server refused to GET it, e.g. WRONGTYPE
            raise CorruptRecord(key_text, f"not a string value: {raw}", "")
        try:
            message, encoding = self.codec.decode(raw)
        except RecordDecodeError as e:
            raise CorruptRecord(key_text, str(e), preview(raw)) from None
        if not is_utf8_key(key):
            # A record's key is its id in UTF-8 (protobuf strings are): no record lives at a key that is
            # not, whatever it names itself (e.g. its key's bytes escaped, which shown_key would equal).
            raise CorruptRecord(
                key_text,
                f"the key is not UTF-8: no record of the ate server is stored there (it names itself "
                f"{self.key_of(message)!r})",
                preview(raw),
            )
        if self.key_of(message) != key_text:
            # A record whose identity does not match its key would be updated or deleted under
            # the wrong name; the Go server treats it as corrupt too.
            raise CorruptRecord(
                key_text,
                f"record identifies itself as {self.key_of(message)!r}, not {key_text!r}",
                preview(raw),
            )
        return message, encoding


ACTORS: RecordKind[Actor] = RecordKind(
    name="actor",
    prefix=ACTOR_PREFIX,
    codec=ACTOR_CODEC,
    key_of=lambda actor: actor_key(actor.actor_id),
    immutable_fields=("actor_id", "actor_template_namespace", "actor_template_name"),
    parse_key=lambda key: (parse_actor_key(key),),
    key_of_parts=actor_key,
)

WORKERS: RecordKind[Worker] = RecordKind(
    name="worker",
    prefix=WORKER_PREFIX,
    codec=WORKER_CODEC,
    key_of=lambda worker: worker_key(worker.worker_namespace, worker.worker_pool, worker.worker_pod),
    immutable_fields=("worker_namespace", "worker_pool", "worker_pod", "ip"),
    parse_key=parse_worker_key,
    key_of_parts=worker_key,
)


def kind_of_key(key: str | bytes) -> RecordKind[Any] | None:
    if isinstance(key, bytes):
        key = key.decode("utf-8", "surrogateescape")
    if key.startswith(ACTOR_PREFIX):
        return ACTORS
    if key.startswith(WORKER_PREFIX):
        return WORKERS
    return None


def copy_record(record: M) -> M:
    """A copy of ``record``, to change without changing the caller's."""
    copy = type(record)()
    copy.CopyFrom(record)
    return copy
