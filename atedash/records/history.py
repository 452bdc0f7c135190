"""A record's history as its page shows it, from the audit entries of its changes (storage keeps them per
record beside the audit stream), and what "revert this change" puts into the edit form."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django import forms

from atedash.accounts.audit import bounded, is_digest, shown
from atedash.records.forms import RecordEditForm, short_status

if TYPE_CHECKING:
    from atedash.records.kinds import RecordPages


def form_value(form: type[RecordEditForm], name: str, value: Any) -> str:
    """A value as an audit entry holds it (an enum by its full name, None for absent) as the form holds it."""
    if value is None:
        return ""
    if isinstance(form.base_fields.get(name), forms.ChoiceField):  # an enum: "STATUS_RUNNING" -> "RUNNING"
        return short_status(str(value))
    return str(value)


def too_big(form: type[RecordEditForm], entry: dict) -> list[str]:
    """The editable fields a change changed whose values were too big to keep in the audit (only their
    digests are there): such a change cannot be reverted from its entry."""
    changed = entry.get("changed_fields")
    if not isinstance(changed, dict):
        return []
    return sorted(
        name
        for name, pair in changed.items()
        if name in form.EDITABLE and isinstance(pair, list) and any(is_digest(v) for v in pair)
    )


def revertible(form: type[RecordEditForm], entry: dict) -> dict[str, tuple[str, str]]:
    """The editable fields a change changed: field -> (before, after), as the form holds them; {} when the
    entry is not an edit of an existing record (a create or a delete cannot be reverted by an edit), or
    when a value it changed was too big to keep in the audit (``too_big``)."""
    entry = bounded(entry)  # an entry written before entries were bounded counts as bounded now
    if too_big(form, entry):
        return {}
    if not isinstance(entry.get("version_before"), int) or not isinstance(entry.get("version_after"), int):
        return {}
    changed = entry.get("changed_fields")
    if not isinstance(changed, dict):
        return {}
    out = {}
    for name, pair in changed.items():
        if name in form.EDITABLE and isinstance(pair, list) and len(pair) == 2:
            out[name] = (form_value(form, name, pair[0]), form_value(form, name, pair[1]))
    return out


def _cell(form: type[RecordEditForm], name: str, value: Any) -> Any:
    if is_digest(value):
        return shown(value)
    return form_value(form, name, value) if name in form.base_fields else value


def history_rows(
    pages: type[RecordPages], entries: list[tuple[str, dict]], urls: dict[str, str]
) -> list[dict[str, Any]]:
    """One row per change, newest first: who, when, action, versions, the field diff, and the revert link."""
    form = pages.edit_form
    rows = []
    for entry_id, entry in entries:
        entry = bounded(entry)
        changed = entry.get("changed_fields")
        if not isinstance(changed, dict):
            changed = {}
        labels = {name: (form.base_fields[name].label if name in form.base_fields else name) for name in changed}
        rows.append(
            {
                "id": entry_id,
                "when": entry.get("when") or entry.get("ts"),
                "who": entry.get("who") or entry.get("operator"),
                "action": entry.get("action"),
                "version_before": entry.get("version_before"),
                "version_after": entry.get("version_after"),
                "changes": [
                    (
                        labels[n],
                        [_cell(form, n, v) for v in pair],
                    )
                    for n, pair in sorted(changed.items())
                    if isinstance(pair, list) and len(pair) == 2
                ],
                "revert_url": f"{urls['edit']}?revert={entry_id}" if revertible(form, entry) else "",
            }
        )
    return rows
