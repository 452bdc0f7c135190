"""Encoding and decoding of stored records, byte-compatible with the Go server.

Written records are protobuf canonical JSON as Go's protojson writes them: lowerCamelCase names in
field-number order, int64 as a decimal string, enums by name, default values omitted. Read records
may be any JSON that protobuf's JSON mapping accepts, or binary protobuf.

The exact reading is the Go server's own (storage.server_readable's port of protojson, unknown
keys skipped) wherever the server reads the value, so that atedash shows what Go reads to the last
digit (``1234567890123456789e0``, ``1e``); elsewhere ``json_format.Parse``'s lenient reading, its
numbers in fraction or exponent form re-read by Go's rules (never through a float). Both cost tens
of µs per record, far too slow for listing a million actors, so JSON is decoded by a fast path
(``json.loads`` plus direct field assignment) that only accepts input it can convert exactly as the
exact reading would; anything unusual (duplicates, numbers in odd forms, nested unknown values...)
takes the exact reading. A property test holds the two to the same result on every input.

Nothing is ever dropped: on update, keys (JSON) or field numbers (binary) that the schema does not
know are carried over from the stored record verbatim.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import DecodeError as ProtobufDecodeError
from google.protobuf.message import Message

from storage.ateapi_pb2 import Actor, Worker
from storage.server_readable import go_decode, go_int, int_from_string, json_members

JSON = "json"
BINARY = "binary"

M = TypeVar("M", bound=Message)

# JSON's insignificant whitespace (RFC 8259); str.strip() would also eat other characters.
_JSON_WHITESPACE = b" \t\r\n"
# Decimal integers as protojson writes them; other spellings json_format accepts go the slow way.
_DECIMAL_INT = re.compile(r"-?(?:0|[1-9][0-9]*)\Z")
_JSON_DECODER = json.JSONDecoder()

_STRING, _INT64, _ENUM = "string", "int64", "enum"
# What int() reads exactly (json_format tries float() on the rest): no fraction, no exponent.
_PYTHON_INT = re.compile(r"[^.eEnN]*\Z")


class _NumberText(str):
    """parse_float's result: the number's JSON text, kept (a float would round it)."""

    __slots__ = ()


class RecordDecodeError(ValueError):
    """A stored value is neither valid protobuf JSON nor valid binary protobuf for its type."""


def preview(raw: bytes, limit: int = 200) -> str:
    """Printable, escaped rendering of the first bytes of a value, at most ``limit`` characters."""
    text = repr(bytes(raw[:limit]))[2:-1]
    return text[:limit]


def _keep_pairs(pairs):
    # object_pairs_hook: keeps duplicate keys visible to the fast path (json_format rejects them).
    return pairs


# Built once: json.loads(..., object_pairs_hook=...) would construct a decoder on every call.
_PAIRS_DECODER = json.JSONDecoder(object_pairs_hook=_keep_pairs)
# Its scanner, called as (text, 0) -> (value, end): decode() without its two Python frames and
# whitespace matches (~0.5 µs a record on list pages); StopIteration when no value starts at 0.
# (An attribute every JSONDecoder has, which typeshed's stub does not declare.)
_PAIRS_SCAN: Callable[[str, int], tuple[Any, int]] = _PAIRS_DECODER.scan_once  # type: ignore[attr-defined]


@dataclass(frozen=True)
class _FieldSpec:
    name: str  # proto field name, the keyword for the message constructor
    json_name: str
    kind: str
    enum_names: dict[str, int]  # enum name -> number (empty for other kinds)
    enum_numbers: dict[int, str]  # enum number -> name


class RecordCodec(Generic[M]):
    """Decoder/encoder for one message type (Actor or Worker)."""

    def __init__(self, message_class: type[M]):
        self.message_class = message_class
        # The C (upb) and Python descriptor classes, one interface: the stubs type them apart.
        descriptor = cast(Descriptor, message_class.DESCRIPTOR)
        self._kind = descriptor.name.lower()  # storage.server_readable's "actor" / "worker"
        self.fields: list[_FieldSpec] = []
        for field in sorted(descriptor.fields, key=lambda f: f.number):
            if field.is_repeated or field.type not in (
                FieldDescriptor.TYPE_STRING,
                FieldDescriptor.TYPE_INT64,
                FieldDescriptor.TYPE_ENUM,
            ):
                raise TypeError(f"codec supports string/int64/enum scalars only, not {field.full_name}")
            if field.type == FieldDescriptor.TYPE_ENUM:
                assert field.enum_type is not None  # an enum field's
                names = {v.name: v.number for v in field.enum_type.values}
                spec = _FieldSpec(field.name, field.json_name, _ENUM, names, {n: k for k, n in names.items()})
            else:
                kind = _STRING if field.type == FieldDescriptor.TYPE_STRING else _INT64
                spec = _FieldSpec(field.name, field.json_name, kind, {}, {})
            self.fields.append(spec)
        # Both spellings are valid protobuf JSON input.
        self._by_json_key = {}
        for spec in self.fields:
            self._by_json_key[spec.json_name] = spec
            self._by_json_key[spec.name] = spec

    # ----------------------------------------------------------------- decoding

    def decode(self, raw: bytes) -> tuple[M, str]:
        """Returns (message, encoding); RecordDecodeError when the value is neither form."""
        if raw[:1] == b"{":
            return self.decode_json(raw), JSON
        if raw.lstrip(_JSON_WHITESPACE)[:1] == b"{":
            # Whitespace then '{' is JSON, or binary whose first field happens to be 123 bytes long
            # (tag 0x0A is '\n'): try both, report the JSON error.
            try:
                return self.decode_json(raw), JSON
            except RecordDecodeError as json_error:
                try:
                    return self.decode_binary(raw), BINARY
                except RecordDecodeError:
                    raise json_error from None
        return self.decode_binary(raw), BINARY

    def decode_binary(self, raw: bytes) -> M:
        try:
            return self.message_class.FromString(raw)
        except (ProtobufDecodeError, ValueError) as e:
            raise RecordDecodeError(f"not valid protobuf JSON or binary: {e}") from None

    def decode_json(self, raw: bytes | str) -> M:
        message = self.decode_json_fast(raw)
        if message is None:
            message = self.decode_json_exact(raw)
        return message

    def decode_json_exact(self, raw: bytes | str) -> M:
        """The reference the fast path must agree with: the Go server's own reading where it reads
        the value (unknown keys skipped), else protobuf's JSON parser, whose lenient readings
        (``"01"``, an enum given as ``true``) are kept but never its float reading of numbers."""
        data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else bytes(raw)
        error, values = go_decode(self._kind, data, discard_unknown=True)
        if error is None:
            return self.message_class(**values)
        try:
            message = json_format.Parse(raw, self.message_class(), ignore_unknown_fields=True)
        except (json_format.ParseError, UnicodeDecodeError) as e:
            raise RecordDecodeError(f"invalid JSON record: {e}") from None
        self._exact_numbers(data, message)
        return message

    def _exact_numbers(self, data: bytes, message: M) -> None:
        """json_format reads an int64 given as ``1e18`` or ``"1e18"`` through a float: such members
        are re-read from their text as Go reads them, or RecordDecodeError where Go reads no
        integer (``2.0000000000000001``)."""
        pairs = json.loads(data, object_pairs_hook=_keep_pairs, parse_float=_NumberText)
        for key, value in pairs:
            spec = self._by_json_key.get(key)
            if spec is None or spec.kind is _STRING:
                continue
            bits = 64 if spec.kind is _INT64 else 32
            if type(value) is _NumberText:
                exact = go_int(value.encode(), bits)
            elif type(value) is str and spec.kind is _INT64 and not _PYTHON_INT.match(value):
                exact = int_from_string(value, bits)  # json_format tried float() on it
            else:
                continue
            if exact is None:
                raise RecordDecodeError(f"invalid JSON record: {spec.json_name}: {value} is not an integer Go reads")
            setattr(message, spec.name, exact)

    def decode_json_fast(self, raw: bytes | str) -> M | None:
        """The common case without json_format; None when the input needs the exact parser.

        Accepts only what it can convert exactly like the exact path: known keys each naming a
        distinct field, strings for string fields, decimal integers (number or string) for int64,
        known enum names or numbers; unknown keys with scalar values are skipped. Errors are never
        raised here so that the exact parser words them.
        """
        try:
            text = raw.decode("utf-8") if isinstance(raw, (bytes, bytearray)) else raw
            pairs, end = _PAIRS_SCAN(text, 0)
        except Exception:  # noqa: BLE001 - any failure sends the value to the exact parser, which says why
            return None
        # Whitespace around the object (or anything after it) is the exact parser's to read.
        if type(pairs) is not list or end != len(text):
            return None
        by_key = self._by_json_key
        kwargs: dict[str, Any] = {}
        unknown = None
        nulls = False
        for key, value in pairs:
            spec = by_key.get(key)
            if spec is None:
                # An unknown key with a scalar value is skipped, as both exact readers skip it;
                # nested values, "[name]" keys and keys given twice are theirs to judge.
                if type(value) is list or key[:1] == "[":
                    return None
                if unknown is None:
                    unknown = set()
                elif key in unknown:
                    return None
                unknown.add(key)
                continue
            if spec.name in kwargs:
                return None
            if value is None:  # null: the field stays unset, yet counts as given
                kwargs[spec.name] = None
                nulls = True
                continue
            kind = spec.kind
            if kind is _STRING:
                if type(value) is not str:
                    return None
            elif kind is _INT64:
                if type(value) is str:
                    if not _DECIMAL_INT.match(value):
                        return None
                    value = int(value)
                elif type(value) is not int:
                    return None
            else:
                if type(value) is str:
                    value = spec.enum_names.get(value)
                    if value is None:
                        return None
                elif type(value) is not int or value not in spec.enum_numbers:
                    return None
            kwargs[spec.name] = value
        if nulls:
            kwargs = {name: value for name, value in kwargs.items() if value is not None}
        try:
            # Out-of-range integers and unpaired surrogates raise here; the exact parser reports them.
            return self.message_class(**kwargs)
        except Exception:  # noqa: BLE001 - any failure sends the value to the exact parser, which says why
            return None

    # ----------------------------------------------------------------- encoding

    def encode_json(self, message: M, extra_members: Sequence[str] = ()) -> bytes:
        """Go protojson form; ``extra_members`` are raw `"key":value` texts appended verbatim."""
        out = {}
        for spec in self.fields:
            value = getattr(message, spec.name)
            if not value:
                continue  # proto3 defaults are omitted
            if spec.kind is _INT64:
                value = str(value)
            elif spec.kind is _ENUM:
                # An enum number the schema does not know is written as a number, as Go does.
                value = spec.enum_numbers.get(value, value)
            out[spec.json_name] = value
        text = json.dumps(out, ensure_ascii=False, separators=(",", ":"))
        if extra_members:
            text = text[:-1] + ("," if out else "") + ",".join(extra_members) + "}"
        return text.encode("utf-8")

    def encode_update(self, message: M, stored_raw: bytes, stored_encoding: str) -> bytes:
        """New value for ``message`` replacing ``stored_raw``: same encoding, unknown parts kept."""
        if stored_encoding == BINARY:
            return self._encode_binary_keeping_unknown(message, stored_raw)
        return self.encode_json(message, self.unknown_json_members(stored_raw))

    def _encode_binary_keeping_unknown(self, message: M, stored_raw: bytes) -> bytes:
        # Start from the stored record (which holds its unknown fields), clear every known field and
        # merge the caller's known fields in; the caller's own unknown fields are not the store's.
        merged = self.message_class.FromString(stored_raw)
        for spec in self.fields:
            merged.ClearField(spec.name)
        known = self.message_class()
        known.CopyFrom(message)
        known.DiscardUnknownFields()
        merged.MergeFrom(known)
        return merged.SerializeToString()

    def unknown_json_members(self, raw: bytes) -> list[str]:
        """Raw `"key":value` texts of the top-level members whose key the schema does not know."""
        found = json_members(raw)  # Go's tokenizer first: it takes `1e}`, Python's does not
        if found is not None:
            return [
                key_text.decode("utf-8") + ":" + value_text.decode("utf-8")
                for key, key_text, value_text in found
                if key not in self._by_json_key
            ]
        text = raw.decode("utf-8")
        members = []
        for key, key_text, value_text in _top_level_members(text):
            if key not in self._by_json_key:
                members.append(key_text + ":" + value_text)
        return members


def _skip_ws(text: str, i: int) -> int:
    while i < len(text) and text[i] in " \t\r\n":
        i += 1
    return i


def _top_level_members(text: str):
    """Yields (key, raw key text, raw value text) of a JSON object, preserving the exact source."""
    i = _skip_ws(text, 0)
    if text[i : i + 1] != "{":
        raise RecordDecodeError("not a JSON object")
    i = _skip_ws(text, i + 1)
    if text[i : i + 1] == "}":
        return
    while True:
        if text[i : i + 1] != '"':
            raise RecordDecodeError("malformed JSON object")
        key, end = _JSON_DECODER.raw_decode(text, i)  # the key, a JSON string
        key_text = text[i:end]
        i = _skip_ws(text, end)
        if text[i : i + 1] != ":":
            raise RecordDecodeError("malformed JSON object")
        i = _skip_ws(text, i + 1)
        _, end = _JSON_DECODER.raw_decode(text, i)
        yield key, key_text, text[i:end]
        i = _skip_ws(text, end)
        if text[i : i + 1] == ",":
            i = _skip_ws(text, i + 1)
            continue
        if text[i : i + 1] == "}":
            return
        raise RecordDecodeError("malformed JSON object")


ACTOR_CODEC: RecordCodec[Actor] = RecordCodec(Actor)
WORKER_CODEC: RecordCodec[Worker] = RecordCodec(Worker)
