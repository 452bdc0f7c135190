"""Raw views of stored values for detail pages and export/import, lock descriptions, and what
the raw editor and its "rewrite canonically" repair need.

``canonical_rewrite(key, stored)`` is the record as atedash reads it, written back the way atedash and
the Go server write records (protojson: lowerCamelCase names in field-number order, defaults
omitted), with the list of everything that rewrite would lose or read differently from what is
stored: unknown fields (JSON keys or binary field numbers), values atedash reads leniently (an enum
given as ``true`` or as a name it does not know, an int64 written ``"01"`` ...), members given twice.
An empty list means the rewrite keeps everything the stored value says; otherwise the operator must
confirm the list first. The write itself is ``Persistence.write_raw`` (compare-and-set on the bytes
shown).
"""

from __future__ import annotations

import json
import re
import secrets
import time
from dataclasses import dataclass, field

from google.protobuf import unknown_fields
from google.protobuf.message import Message

from storage.codec import BINARY, JSON, _top_level_members, preview
from storage.errors import CorruptRecord, FailedPrecondition
from storage.records import kind_of_key
from storage.server_readable import go_int, int_from_string, json_members, server_read_error

_JSON_WHITESPACE = b" \t\r\n"


def reindent_json(value: bytes) -> str:
    """Stored JSON re-indented for display, every number as stored: Python would re-spell
    ``1234567890123456789e0`` as ``1.2345678901234568e+18`` through a float. ValueError when
    Python's JSON cannot read it (Go reads ``1e}``; the caller shows the text as it is)."""
    numbers: list[str] = []
    mark = secrets.token_hex(6)

    def keep(text: str) -> str:
        numbers.append(text)
        return f"\x00{mark}:{len(numbers) - 1}\x00"

    data = json.loads(value, parse_float=keep, parse_int=keep, parse_constant=keep)
    text = json.dumps(data, indent=2, ensure_ascii=False)
    if not numbers:
        return text
    return re.sub(rf'"\\u0000{mark}:([0-9]+)\\u0000"', lambda m: numbers[int(m.group(1))], text)


@dataclass(frozen=True)
class RawRecord:
    key: str | bytes  # bytes: a key that is not UTF-8 (the key route names any key)
    value: bytes
    encoding: str  # "json" | "binary"
    ttl_ms: int | None  # None when no expiry
    slot: int
    node: str  # "host:port" of the primary serving the slot


@dataclass(frozen=True)
class LockInfo:
    key: str
    token: str  # holder token (bytes decoded with errors="backslashreplace")
    ttl_ms: int | None  # None when the key has no expiry
    # When the TTL was read (unix seconds): the stale rule measures the hold at that instant, not
    # later (a lock read before a slow walk would look held for the walk's length longer).
    read_at: float = field(default_factory=time.time, compare=False)


def detect_encoding(value: bytes) -> str:
    """The rule the codec applies: JSON when the first non-whitespace byte is '{'."""
    return JSON if value.lstrip(_JSON_WHITESPACE)[:1] == b"{" else BINARY


_WIRE_TYPES = {0: "varint", 1: "fixed64", 2: "length-delimited", 3: "group", 5: "fixed32"}


def describe_unknown_fields(message: Message) -> list[dict]:
    """Field numbers the schema does not know, with their wire type and value, for display."""
    described = []
    fields = unknown_fields.UnknownFieldSet(message)
    for index in range(len(fields)):  # (its stub declares no __iter__)
        field = fields[index]
        data = field.data
        shown: str | int | float
        if isinstance(data, bytes):
            try:
                shown = data.decode("utf-8")
            except UnicodeDecodeError:
                shown = data.hex()
        elif isinstance(data, (int, float)):
            shown = data
        else:
            shown = repr(data)
        described.append(
            {
                "number": field.field_number,
                "wireType": _WIRE_TYPES.get(field.wire_type, field.wire_type),
                "value": shown,
            }
        )
    return described


_SHOWN = 120  # characters of a stored value quoted in a loss


@dataclass(frozen=True)
class CanonicalRewrite:
    key: str
    value: bytes  # the canonical JSON the repair would write
    losses: list[str]  # what the rewrite drops or reads differently; [] when it keeps everything
    unreadable_before: str | None  # why the ate server cannot read the stored value (None: it can)


def _shown(value) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return _cut(text)


def _cut(text: str) -> str:
    return text if len(text) <= _SHOWN else text[: _SHOWN - 1] + "…"


class _Number(str):
    """A JSON number's text as stored: read by Go's rules, never through a float."""

    __slots__ = ()


def _typed(text: bytes):
    """A member's stored value: str, bool or None as JSON says, _Number for a number (its text),
    the text itself (a str) for anything else: only strings, numbers and null are compared."""
    if text[:1] in b"-0123456789":
        return _Number(text.decode("ascii", "replace"))
    if text[:1] in b'"tfn':
        try:
            return json.loads(text)
        except ValueError:
            pass
    return _Other(text.decode("utf-8", "replace"))


class _Other(str):
    __slots__ = ()


def _same(spec, stored, decoded) -> bool:
    """True when the stored JSON value says exactly what atedash decoded, as the Go server reads
    it (``1e5`` is 100000 for both; ``"01"`` is a lenient reading)."""
    if stored is None:
        return not decoded
    kind = type(stored)
    if spec.kind == "string":
        return kind is str and stored == decoded
    if spec.kind == "int64":
        if kind is _Number:
            return go_int(stored.encode(), 64) == decoded
        return kind is str and int_from_string(stored, 64) == decoded
    if kind is str:  # enum by name
        return spec.enum_names.get(stored) == decoded
    return kind is _Number and go_int(stored.encode(), 32) == decoded


def _json_value(spec, decoded):
    if spec.kind == "int64":
        return str(decoded)
    if spec.kind == "enum":
        return spec.enum_numbers.get(decoded, decoded)
    return decoded


def _stored_members(stored: bytes) -> list[tuple[str, bytes]] | str:
    """(key, value text verbatim) of each top-level member, or why they cannot be listed."""
    members = json_members(stored)
    if members is not None:
        return [(key, value) for key, _, value in members]
    try:  # what Go's tokenizer refuses (NaN, a lone surrogate escape...) Python's may read
        text = stored.decode("utf-8")
        return [(key, value.encode("utf-8")) for key, _, value in _top_level_members(text)]
    except (ValueError, RecursionError) as e:
        return f"the stored text is not plain JSON ({e}); it cannot be compared member by member"


def _losses_json(codec, stored: bytes, message) -> list[str]:
    members = _stored_members(stored)
    if isinstance(members, str):
        return [members]
    losses = []
    seen = set()
    for name, value_text in members:
        # Stored values are quoted as stored, never as Python re-spells them (1e18, not 1e+18).
        shown = _cut(value_text.decode("utf-8", "replace"))
        spec = codec._by_json_key.get(name)
        if spec is None:
            losses.append(f"unknown field {_shown(name)} is dropped (stored value {shown})")
            continue
        decoded = getattr(message, spec.name)
        if spec.name in seen:
            losses.append(
                f"{_shown(name)} names field {spec.json_name} a second time: only one value is kept "
                f"({_shown(_json_value(spec, decoded))})"
            )
            continue
        seen.add(spec.name)
        if not _same(spec, _typed(value_text), decoded):
            after = _shown(_json_value(spec, decoded)) if decoded else "omitted (the default)"
            losses.append(f"{spec.json_name}: stored {shown} is read by atedash as {after}")
    return losses


def canonical_rewrite(key: str, stored: bytes) -> CanonicalRewrite:
    """The canonical rewrite of ``stored`` at ``key``; CorruptRecord when atedash cannot decode it
    (or it names another key), FailedPrecondition when the key itself is one the ate server cannot
    list (no value makes it readable: delete it, or create the record under a key it can list)."""
    kind = kind_of_key(key)
    if kind is None:
        raise FailedPrecondition(key, "only actor:* and worker:* records are rewritten")
    message, encoding = kind.decode_stored(key, stored)
    value = kind.codec.encode_json(message)
    after = server_read_error(key, value)
    if after is not None:
        raise FailedPrecondition(key, f"even rewritten, the ate server could not read it: {after.reason}")
    if encoding == BINARY:
        losses = [
            f"unknown field number {u['number']} ({u['wireType']}) is dropped (stored value {_shown(u['value'])})"
            for u in describe_unknown_fields(message)
        ]
    else:
        losses = _losses_json(kind.codec, stored, message)
    before = server_read_error(key, stored)
    return CanonicalRewrite(key, value, losses, None if before is None else before.reason)


__all__ = ["CanonicalRewrite", "CorruptRecord", "canonical_rewrite", "preview"]
