"""Three-way merge of a record edit: what the operator read (the base), what is stored now, what they want.

Values are the form's strings (an enum by its short name). For each field:
  * only the operator changed it (stored == base): their value is applied;
  * only the store changed (mine == base): the stored value is kept;
  * both changed it to the same value: nothing to decide;
  * both changed it to different values: a conflict, decided explicitly by the operator.
Without a base (a form from before merges, or one whose base was lost), every field where the stored
and the wanted value differ is a conflict: nothing is assumed.

The base travels through the client inside the edit form, signed (`sign_base` / `read_base`), so that
what the merge starts from is what the server handed out, for this record.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.core import signing

SALT = "atedash.records.merge.base"


@dataclass(slots=True)
class Merge:
    values: dict[str, str]  # the merged value of every field (conflicting ones: the stored value)
    applied: list[str] = field(default_factory=list)  # fields where the operator's change goes in
    kept: list[str] = field(default_factory=list)  # fields where a change saved meanwhile is kept
    conflicts: list[str] = field(default_factory=list)  # changed on both sides, differently


def merge(
    base: dict[str, str] | None, stored: dict[str, str], mine: dict[str, str], undecided: frozenset[str] = frozenset()
) -> Merge:
    """Merges ``mine`` onto ``stored`` relative to ``base`` (all: field -> value, the same fields).

    ``undecided``: fields of a conflict the operator was asked about and sent no decision for: still
    conflicts, whatever the base says, while their value differs from the stored one."""
    out = Merge(values=dict(stored))
    for name, wanted in mine.items():
        now = stored[name]
        if wanted == now:
            continue
        was = base.get(name) if base is not None else None
        if name in undecided:
            out.conflicts.append(name)
        elif base is not None and name in base and wanted == was:
            out.kept.append(name)
        elif base is not None and name in base and now == was:
            out.applied.append(name)
            out.values[name] = wanted
        else:
            out.conflicts.append(name)
    return out


@dataclass(frozen=True, slots=True)
class Base:
    key: str
    version: int
    values: dict[str, str]
    # Fields the operator must decide (a conflict shown to them): field -> (base value, their value).
    decide: dict[str, tuple[str, str]]
    undecided: frozenset[str] = frozenset()  # of those, the ones a form came back without a decision for


def sign_base(key: str, version: int, values: dict[str, str], decide: dict[str, tuple[str, str]] | None = None) -> str:
    payload = {"k": key, "v": version, "f": values, "d": {n: list(pair) for n, pair in (decide or {}).items()}}
    return signing.dumps(payload, salt=SALT, compress=True)


class BadBase(ValueError):
    """The base the form carried was not made by this dashboard for this record."""


def read_base(token: str, key: str) -> Base:
    """The base of a form (BadBase when the token was changed, cut or made for another record)."""
    try:
        payload = signing.loads(token, salt=SALT)
        values, decide = payload["f"], payload["d"]
        ok = (
            payload["k"] == key
            and isinstance(payload["v"], int)
            and all(isinstance(n, str) and isinstance(v, str) for n, v in values.items())
            and all(isinstance(p, list) and len(p) == 2 and all(isinstance(v, str) for v in p) for p in decide.values())
        )
    except (signing.BadSignature, KeyError, TypeError, AttributeError, ValueError) as exc:
        raise BadBase(str(exc)) from None
    if not ok:
        raise BadBase("the base names another record or is malformed")
    return Base(key=key, version=payload["v"], values=values, decide={n: (p[0], p[1]) for n, p in decide.items()})
