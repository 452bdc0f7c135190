"""Raw views of stored values for detail pages and export/import, and lock descriptions."""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass

from google.protobuf import unknown_fields
from google.protobuf.message import Message

from storage.codec import BINARY, JSON

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
