"""What a check returns: its findings (each with the repair that mends it, if any) and their counts."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

from storage.check.kinds import KIND_TITLES
from storage.check.repairs import Repair
from storage.documents import plain_fields

# The stored report's findings (atedash:fleet:{check}:result): the bound of one value in the store.
MAX_STORED_BYTES = 2_000_000
MAX_FINDING_BYTES = 8_192
_CUT_NOTE = " [cut: too long to keep]"


def _bounded(data: dict) -> dict | None:
    """A finding's dict within MAX_FINDING_BYTES: its message cut when over, None when its keys are
    (a hostile key of megabytes); its repair is kept only while the whole fits."""
    if len(json.dumps(data, separators=(",", ":"))) <= MAX_FINDING_BYTES:
        return data
    if sum(len(k) for k in data["keys"]) > MAX_FINDING_BYTES // 2:
        return None
    data = {**data, "message": data["message"][:1000] + _CUT_NOTE, "note": data["note"][:1000]}
    if len(json.dumps(data, separators=(",", ":"))) > MAX_FINDING_BYTES:
        data["repair"] = None
        data["note"] = "no repair kept: the finding was too long to store"
    return data if len(json.dumps(data, separators=(",", ":"))) <= MAX_FINDING_BYTES else None


@dataclass(frozen=True)
class Finding:
    kind: str
    keys: tuple[str, ...]
    message: str
    repair: Repair | None = None
    note: str = ""  # why there is no repair, when there is none

    @property
    def title(self) -> str:
        return KIND_TITLES.get(self.kind, self.kind)

    def to_dict(self) -> dict:
        return {
            "kind": self.kind,
            "keys": list(self.keys),
            "message": self.message,
            "repair": ({"description": self.repair.describe(), **self.repair.to_dict()} if self.repair else None),
            "note": self.note,
        }

    @classmethod
    def from_dict(cls, data: dict) -> Finding:
        """The inverse of to_dict (ValueError, TypeError or KeyError for anything else); a repair
        that does not rebuild is dropped (it is re-checked before it is applied anyway)."""
        repair = None
        if data.get("repair") is not None:
            stored = {k: v for k, v in dict(data["repair"]).items() if k != "description"}
            try:
                repair = Repair.from_dict(stored)
            except (ValueError, TypeError, KeyError):
                repair = None
        keys = tuple(str(k) for k in data["keys"])
        return cls(str(data["kind"]), keys, str(data["message"]), repair, str(data.get("note", "")))


@dataclass
class CheckReport:
    findings: list[Finding]
    counts: dict[str, int]
    duration_s: float
    keys_scanned: int = 0
    actors: int = 0
    workers: int = 0
    locks: int = 0
    started_at: float = field(default_factory=time.time)
    # Records the ate server cannot read: the server_unreadable findings plus the corrupt records it
    # cannot read either (those are reported once, as corrupt_record).
    unreadable_by_server: int = 0
    # Findings left out when the report was stored for the fleet (only the first ones are kept).
    findings_cut: int = 0

    @property
    def ok(self) -> bool:
        return not self.findings and not self.findings_cut

    @property
    def total_findings(self) -> int:
        """Findings found, those cut from a stored report included."""
        return len(self.findings) + self.findings_cut

    def to_dict(self) -> dict:
        return {
            "ok": self.ok,
            "started_at": self.started_at,
            "duration_s": round(self.duration_s, 4),
            "keys_scanned": self.keys_scanned,
            "actors": self.actors,
            "workers": self.workers,
            "locks": self.locks,
            "unreadable_by_server": self.unreadable_by_server,
            "counts": dict(self.counts),
            "findings": [f.to_dict() for f in self.findings],
        }

    def to_stored(self, max_findings: int, max_bytes: int = MAX_STORED_BYTES) -> dict:
        """to_dict with at most ``max_findings`` findings and about ``max_bytes`` of them as JSON
        (``findings_cut`` says how many more): records are hostile, and a finding quotes their keys
        and fields. A finding over MAX_FINDING_BYTES is kept with its message cut, or cut whole
        when its keys alone are over."""
        kept, size = [], 0
        for finding in self.findings[:max_findings]:
            data = _bounded(finding.to_dict())
            if data is None:
                continue
            grown = len(json.dumps(data, separators=(",", ":")))
            if size + grown > max_bytes:
                break
            kept.append(data)
            size += grown
        data = self.to_dict()
        data["findings"] = kept
        data["findings_cut"] = self.findings_cut + len(self.findings) - len(kept)
        return data

    @classmethod
    def from_stored(cls, data: dict) -> CheckReport:
        return cls(
            findings=[Finding.from_dict(f) for f in data["findings"]],
            counts={str(k): int(v) for k, v in dict(data["counts"]).items()},
            **plain_fields(cls, data),
        )

    def by_kind(self, kind: str) -> list[Finding]:
        return [f for f in self.findings if f.kind == kind]


def repairs(report: CheckReport) -> list[Repair]:
    """The distinct repairs of a report, in finding order (findings about the same record share one)."""
    seen, out = set(), []
    for f in report.findings:
        if f.repair is not None and f.repair not in seen:
            seen.add(f.repair)
            out.append(f.repair)
    return out


def apply_all(persistence, report: CheckReport) -> list[dict]:
    """Apply every distinct repair of a report (in order); returns their audit dicts."""
    return [repair.apply(persistence) for repair in repairs(report)]
