"""What distinguishes the two record kinds: key layout, codec, identity and immutable fields."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from google.protobuf.message import Message

from storage.codec import ACTOR_CODEC, WORKER_CODEC, RecordCodec, RecordDecodeError, preview
from storage.errors import CorruptRecord
from storage.keys import ACTOR_PREFIX, WORKER_PREFIX, actor_key, worker_key


@dataclass(frozen=True)
class RecordKind:
    name: str
    prefix: str
    codec: RecordCodec
    key_of: Callable[[Message], str]
    # Fields an update may not change (proto field names, as ImmutableField reports them).
    immutable_fields: tuple[str, ...]

    def decode_stored(self, key: str | bytes, raw: bytes) -> tuple[Message, str]:
        """(message, encoding) of a stored value; CorruptRecord when undecodable or misplaced."""
        key_text = key.decode("utf-8", "backslashreplace") if isinstance(key, bytes) else key
        if isinstance(raw, Exception):  # the server refused to GET it, e.g. WRONGTYPE
            raise CorruptRecord(key_text, f"not a string value: {raw}", "")
        try:
            message, encoding = self.codec.decode(raw)
        except RecordDecodeError as e:
            raise CorruptRecord(key_text, str(e), preview(raw)) from None
        if self.key_of(message) != key_text:
            # A record whose identity does not match its key would be updated or deleted under
            # the wrong name; the Go server treats it as corrupt too.
            raise CorruptRecord(
                key_text,
                f"record identifies itself as {self.key_of(message)!r}, not {key_text!r}",
                preview(raw),
            )
        return message, encoding


ACTORS = RecordKind(
    name="actor",
    prefix=ACTOR_PREFIX,
    codec=ACTOR_CODEC,
    key_of=lambda actor: actor_key(actor.actor_id),
    immutable_fields=("actor_id", "actor_template_namespace", "actor_template_name"),
)

WORKERS = RecordKind(
    name="worker",
    prefix=WORKER_PREFIX,
    codec=WORKER_CODEC,
    key_of=lambda worker: worker_key(worker.worker_namespace, worker.worker_pool, worker.worker_pod),
    immutable_fields=("worker_namespace", "worker_pool", "worker_pod", "ip"),
)


def kind_of_key(key: str) -> RecordKind | None:
    if key.startswith(ACTOR_PREFIX):
        return ACTORS
    if key.startswith(WORKER_PREFIX):
        return WORKERS
    return None
