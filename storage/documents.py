"""The dashboard's own JSON documents (counts, reports, walks) read back into their dataclasses.

Whatever another process (or version) stored is hostile input: each plain field is coerced to its
declared type, and a missing field without a default is a KeyError, so a reader fails cleanly.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

# Field annotations are strings under `from __future__ import annotations`.
_PLAIN_TYPES: dict[Any, type] = {t: t for t in (int, float, bool, str)} | {
    t.__name__: t for t in (int, float, bool, str)
}


def plain_fields(cls: type, data: Mapping[str, Any]) -> dict[str, Any]:
    """The int, float, bool and str fields of dataclass ``cls`` from ``data``, each coerced to its
    type (ValueError or TypeError when it cannot be); fields with a default may be absent."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        plain = _PLAIN_TYPES.get(f.type)
        if plain is None:
            continue
        if f.name in data:
            out[f.name] = plain(data[f.name])
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise KeyError(f.name)
    return out
