"""What the dashboard's raw editor and its "rewrite canonically" repair need from storage.

``canonical_rewrite(key, stored)`` is the record as atedash reads it, written back the way atedash and
the Go server write records (protojson: lowerCamelCase names in field-number order, defaults
omitted), with the list of everything that rewrite would lose or read differently from what is
stored: unknown fields (JSON keys or binary field numbers), values atedash reads leniently (an enum
given as ``true`` or as a name it does not know, an int64 written ``"01"`` ...), members given twice.
An empty list means the rewrite keeps everything the stored value says; otherwise the operator must
confirm the list first. The write itself is ``Persistence.write_raw`` (compare-and-set on the bytes
shown).

Plain library: no Django.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from storage.codec import BINARY, preview
from storage.errors import CorruptRecord, FailedPrecondition
from storage.raw import describe_unknown_fields
from storage.records import kind_of_key
from storage.server_readable import server_read_error

_DECIMAL = re.compile(r"-?(?:0|[1-9][0-9]*)\Z")
_SHOWN = 120  # characters of a stored value quoted in a loss


@dataclass(frozen=True)
class CanonicalRewrite:
    key: str
    value: bytes  # the canonical JSON the repair would write
    losses: list[str]  # what the rewrite drops or reads differently; [] when it keeps everything
    unreadable_before: str | None  # why the ate server cannot read the stored value (None: it can)


def _shown(value) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 1] + "…"


def _same(spec, stored, decoded) -> bool:
    """True when the stored JSON value says exactly what atedash decoded (no lenient reading)."""
    if stored is None:
        return not decoded
    if spec.kind == "string":
        return type(stored) is str and stored == decoded
    if spec.kind == "int64":
        if type(stored) is int:
            return stored == decoded
        return type(stored) is str and bool(_DECIMAL.match(stored)) and int(stored) == decoded
    if type(stored) is str:  # enum by name
        return spec.enum_names.get(stored) == decoded
    return type(stored) is int and stored == decoded


def _json_value(spec, decoded):
    if spec.kind == "int64":
        return str(decoded)
    if spec.kind == "enum":
        return spec.enum_numbers.get(decoded, decoded)
    return decoded


def _losses_json(codec, stored: bytes, message) -> list[str]:
    try:
        pairs = json.loads(stored, object_pairs_hook=lambda p: p, parse_constant=lambda c: c)
    except (ValueError, RecursionError) as e:
        return [f"the stored text is not plain JSON ({e}); it cannot be compared member by member"]
    if not isinstance(pairs, list):
        return ["the stored value is not a JSON object"]
    losses = []
    seen = set()
    for name, value in pairs:
        spec = codec._by_json_key.get(name)
        if spec is None:
            losses.append(f"unknown field {_shown(name)} is dropped (stored value {_shown(value)})")
            continue
        decoded = getattr(message, spec.name)
        if spec.name in seen:
            losses.append(
                f"{_shown(name)} names field {spec.json_name} a second time: only one value is kept "
                f"({_shown(_json_value(spec, decoded))})"
            )
            continue
        seen.add(spec.name)
        if not _same(spec, value, decoded):
            after = _shown(_json_value(spec, decoded)) if decoded else "omitted (the default)"
            losses.append(f"{spec.json_name}: stored {_shown(value)} is read by atedash as {after}")
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
