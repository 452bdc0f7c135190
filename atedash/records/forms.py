"""Input parsing for the record pages: GET filter forms (state in the URL) and POST record forms;
the login form is in atedash/accounts/forms.py, flush and reset in atedash/ops/forms.py."""

from __future__ import annotations

import base64
import binascii
import hashlib
import ipaddress
import re
from typing import Any, TypeVar

from django import forms
from django.core.exceptions import ValidationError

from storage.ateapi_pb2 import Actor
from storage.records import ACTORS, WORKERS, Record

# --- Kubernetes-style names ------------------------------------------------------------------

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")

_Field = TypeVar("_Field", bound=forms.Field)


def validate_dns1123_label(value: str) -> None:
    if len(value) > 63:
        raise ValidationError("At most 63 characters.", code="too_long")
    if not DNS1123_LABEL.match(value):
        raise ValidationError(
            "Must be a DNS-1123 label: lowercase letters, digits and '-', starting and ending with a letter or digit.",
            code="dns1123_label",
        )


def validate_k8s_name(value: str) -> None:
    """A Kubernetes object name (DNS-1123 subdomain: at most 253 chars, dot-separated labels)."""
    if len(value) > 253:
        raise ValidationError("At most 253 characters.", code="too_long")
    if not DNS1123_SUBDOMAIN.match(value) or any(len(part) > 63 for part in value.split(".")):
        raise ValidationError(
            "Must be a Kubernetes name: lowercase letters, digits, '-' and '.', starting and "
            "ending with a letter or digit.",
            code="k8s_name",
        )


def validate_ip(value: str) -> None:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise ValidationError("Must be an IPv4 or IPv6 address, or empty.", code="ip") from None


def name_field(label: str, *, label_only: bool = False, required: bool = True, help_text: str = "") -> forms.CharField:
    validator = validate_dns1123_label if label_only else validate_k8s_name
    return forms.CharField(
        label=label,
        required=required,
        max_length=63 if label_only else 253,
        validators=[validator],
        help_text=help_text,
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )


def readonly(field: _Field) -> _Field:
    """Shown and posted, but not editable: the server compares it with the stored record."""
    field.widget.attrs.update({"readonly": True, "aria-readonly": "true", "class": "readonly"})
    field.help_text = "Cannot change after creation."
    return field


# --- statuses --------------------------------------------------------------------------------

STATUS_NAMES = [name for name in Actor.Status.keys()]  # STATUS_UNSPECIFIED ... STATUS_SUSPENDED


def short_status(name: str) -> str:
    return name.removeprefix("STATUS_")


STATUS_CHOICES = [(short_status(name), short_status(name)) for name in STATUS_NAMES]


def status_value(short: str) -> int:
    return Actor.Status.Value("STATUS_" + short)


PAGE_SIZES = (25, 50, 100, 200)
PAGE_SIZE_CHOICES = [(str(n), str(n)) for n in PAGE_SIZES]
REFRESH_CHOICES = [("", "off"), ("5", "every 5 s")]


class ListForm(forms.Form):
    """Shared by the list pages: page size, cursor, opt-in auto-refresh."""

    size = forms.TypedChoiceField(
        label="Page size",
        choices=PAGE_SIZE_CHOICES,
        coerce=int,
        required=False,
        empty_value=50,  # type: ignore[arg-type]  # Django takes any value; the stub says str
    )
    # Checked by atedash.records.cursors, not here: a cursor that is not valid is the 400 page, not the first page.
    cursor = forms.CharField(required=False, widget=forms.HiddenInput)
    refresh = forms.ChoiceField(label="Auto-refresh", choices=REFRESH_CHOICES, required=False)

    def values(self) -> dict[str, Any]:
        """Valid values, with defaults for any invalid field (a bad URL never breaks the page)."""
        self.is_valid()
        values: dict[str, Any] = {}
        for name, field in self.fields.items():
            default = getattr(field, "empty_value", "")
            values[name] = self.cleaned_data.get(name, default)
        if "cursor" in self.fields:
            # As sent (a cursor with a NUL or spaces is not silently dropped): atedash.records.cursors decides.
            values["cursor"] = self.data.get("cursor") or ""
        return values

    def filter_fields(self, values: dict) -> list[dict]:
        """The filters a list page shows before the shared controls: name, label, choices (a select) or
        None (a search box), and the value in use."""
        return [
            {
                "name": name,
                "label": field.label,
                "choices": getattr(field, "choices", None),
                "value": values[name],
                "help": field.help_text,
                "attrs": sorted(field.widget.attrs.items()),
            }
            for name, field in self.fields.items()
            if name not in ListForm.base_fields
        ]


class ActorFilterForm(ListForm):
    status = forms.ChoiceField(label="Status", choices=[("", "any")] + STATUS_CHOICES, required=False)
    ns = forms.CharField(label="Template namespace", required=False, max_length=253)
    template = forms.CharField(label="Template", required=False, max_length=253)
    q = forms.CharField(label="Id contains", required=False, max_length=253)
    # The searches an incident starts with: a pod, an address, a snapshot path someone pasted.
    pod = forms.CharField(  # namespace/name, or name
        label="Ateom pod",
        required=False,
        max_length=507,
        help_text="namespace/name, or the name alone",
        widget=forms.TextInput(attrs={"spellcheck": "false", "placeholder": "namespace/name"}),
    )
    ip = forms.CharField(
        label="Ateom IP",
        required=False,
        max_length=64,
        widget=forms.TextInput(attrs={"spellcheck": "false", "inputmode": "decimal"}),
    )
    snapshot = forms.CharField(
        label="Last snapshot contains",
        required=False,
        max_length=1024,
        widget=forms.TextInput(attrs={"spellcheck": "false"}),
    )

    field_order = ["status", "ns", "template", "q", "pod", "ip", "snapshot", "size", "refresh", "cursor"]

    @staticmethod
    def pod_filter(pod: str) -> tuple[str | None, str | None]:
        """ "ns/name" -> (ns, name); "name" -> (None, name); "ns/" -> (ns, None); "" -> (None, None)."""
        namespace, sep, name = (pod or "").partition("/")
        if not sep:
            namespace, name = "", namespace
        return namespace or None, name or None


ASSIGNED_CHOICES = [("", "any"), ("free", "free"), ("assigned", "assigned")]


class WorkerFilterForm(ListForm):
    namespace = forms.CharField(label="Namespace", required=False, max_length=253)
    pool = forms.CharField(label="Pool", required=False, max_length=253)
    assigned = forms.ChoiceField(label="Assignment", choices=ASSIGNED_CHOICES, required=False)
    q = forms.CharField(label="Pod or actor contains", required=False, max_length=253)
    ip = forms.CharField(
        label="IP",
        required=False,
        max_length=64,
        widget=forms.TextInput(attrs={"spellcheck": "false", "inputmode": "decimal"}),
    )

    field_order = ["namespace", "pool", "assigned", "q", "ip", "size", "refresh", "cursor"]


class LockFilterForm(ListForm):
    pass


# --- records ---------------------------------------------------------------------------------


def message_value(message: Record, name: str) -> str:
    """A field of a record as forms and pages show it: an enum by its short name ("RUNNING")."""
    value = getattr(message, name)
    enum = message.DESCRIPTOR.fields_by_name[name].enum_type
    if enum is None:
        return value
    number = enum.values_by_number.get(value)
    return short_status(number.name) if number is not None else str(value)


class FieldsetForm(forms.Form):
    """A form shown as fieldsets: FIELDSETS is ((legend, (field name, ...)), ...)."""

    FIELDSETS: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def fieldsets(self) -> list[tuple[str, list]]:
        return [(legend, [self[name] for name in names]) for legend, names in self.FIELDSETS]


SAVE_DESPITE_FINDINGS = "Save anyway: the consistency check will report this"


class RecordEditForm(FieldsetForm):
    """The edit form of any record kind: the stored version, the identity (IMMUTABLE, shown read-only
    and checked here against the stored record) and the fields an operator may change (EDITABLE)."""

    IMMUTABLE: tuple[str, ...] = ()
    EDITABLE: tuple[str, ...] = ()
    EDITABLE_LEGEND = "State"

    version = forms.IntegerField(widget=forms.HiddenInput, min_value=0)
    # The values the form was read at, signed (atedash/records/merge.py): what a three-way merge starts from.
    base = forms.CharField(widget=forms.HiddenInput, required=False, max_length=65536, strip=False)
    # Needed to save a result the consistency check would report (atedash/records/edit.py).
    save_despite_findings = forms.BooleanField(label=SAVE_DESPITE_FINDINGS, required=False)

    def __init__(self, *args: Any, stored: Record | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.stored = stored  # the record as stored now, for the server-side immutability check

    def clean(self) -> dict:
        super().clean()
        data = self.cleaned_data
        if self.stored is not None:
            for name in self.IMMUTABLE:
                stored = getattr(self.stored, name)
                if name in data and (data[name] or "") != stored:
                    self.add_error(name, f"{self.fields[name].label} cannot change (stored: {stored!r}).")
        return data

    @classmethod
    def initial_from(cls, record: Record) -> dict:
        initial: dict[str, Any] = {name: message_value(record, name) for name in cls.IMMUTABLE + cls.EDITABLE}
        for name in cls.EDITABLE:
            field = record.DESCRIPTOR.fields_by_name[name]
            if field.enum_type is not None and getattr(record, name) not in field.enum_type.values_by_number:
                initial[name] = ""  # a value this schema does not know: the operator picks one
        initial["version"] = record.version
        return initial

    @classmethod
    def values_of(cls, record: Record) -> dict[str, str]:
        """The editable fields of a record as the form holds them (what a merge compares)."""
        return {name: message_value(record, name) for name in cls.EDITABLE}

    def wanted(self) -> dict[str, str]:
        """The editable fields as the operator sent them (a valid form)."""
        return {name: self.cleaned_data[name] or "" for name in self.EDITABLE}

    @classmethod
    def set_values(cls, record: Record, values: dict[str, str]) -> Record:
        """Sets the editable fields of ``record`` (a fresh copy of the stored record) from form values."""
        for name in cls.EDITABLE:
            value: str | int = values[name]
            if record.DESCRIPTOR.fields_by_name[name].enum_type is not None:
                # A short name, or the number of a value this schema does not know (kept as stored).
                text = values[name]
                value = int(text) if text.lstrip("-").isdigit() else status_value(text)
            setattr(record, name, value)
        return record

    def fieldsets(self) -> list[tuple[str, list]]:
        return [("Identity (cannot change)", [self[n] for n in self.IMMUTABLE])] + [
            (self.EDITABLE_LEGEND, [self[n] for n in self.EDITABLE])
        ]


class ActorCreateForm(FieldsetForm):
    FIELDSETS = (("Identity", ("actor_id", "actor_template_namespace", "actor_template_name")),)

    actor_id = name_field("Actor id", label_only=True, help_text="A DNS-1123 label, at most 63 characters.")
    actor_template_namespace = name_field("Template namespace", label_only=True)
    actor_template_name = name_field("Template name")


EDIT_WHILE_LOCKED = "Edit while a workflow holds this actor"


class ActorEditForm(RecordEditForm):
    IMMUTABLE = ACTORS.immutable_fields
    EDITABLE = (
        "status",
        "ateom_pod_namespace",
        "ateom_pod_name",
        "ateom_pod_ip",
        "last_snapshot",
        "in_progress_snapshot",
    )

    actor_id = readonly(forms.CharField(label="Actor id", max_length=253))
    actor_template_namespace = readonly(forms.CharField(label="Template namespace", max_length=253))
    actor_template_name = readonly(forms.CharField(label="Template name", max_length=253))
    status = forms.ChoiceField(label="Status", choices=STATUS_CHOICES)
    ateom_pod_namespace = name_field("Ateom pod namespace", label_only=True, required=False)
    ateom_pod_name = name_field("Ateom pod name", required=False)
    ateom_pod_ip = forms.CharField(label="Ateom pod IP", required=False, max_length=45, validators=[validate_ip])
    last_snapshot = forms.CharField(label="Last snapshot", required=False, max_length=1024)
    in_progress_snapshot = forms.CharField(label="In-progress snapshot", required=False, max_length=1024)
    # Needed to save while lock:actor:<id> is held (atedash/records/raw.py, held_lock_error).
    edit_while_locked = forms.BooleanField(label=EDIT_WHILE_LOCKED, required=False)


class WorkerCreateForm(FieldsetForm):
    FIELDSETS = (
        ("Identity", ("worker_namespace", "worker_pool", "worker_pod", "ip")),
        ("Assignment", ("actor_namespace", "actor_template", "actor_id")),
    )

    worker_namespace = name_field("Worker namespace", label_only=True)
    worker_pool = name_field("Worker pool")
    worker_pod = name_field("Worker pod")
    ip = forms.CharField(label="IP", required=False, max_length=45, validators=[validate_ip])
    actor_namespace = name_field("Actor namespace", label_only=True, required=False)
    actor_template = name_field("Actor template", required=False)
    actor_id = name_field("Actor id", label_only=True, required=False, help_text="Empty for a free worker.")


class WorkerEditForm(RecordEditForm):
    IMMUTABLE = WORKERS.immutable_fields
    EDITABLE = ("actor_namespace", "actor_template", "actor_id")
    EDITABLE_LEGEND = "Assignment"

    worker_namespace = readonly(forms.CharField(label="Worker namespace", max_length=253))
    worker_pool = readonly(forms.CharField(label="Worker pool", max_length=253))
    worker_pod = readonly(forms.CharField(label="Worker pod", max_length=253))
    ip = readonly(forms.CharField(label="IP", required=False, max_length=45))
    actor_namespace = WorkerCreateForm.base_fields["actor_namespace"]
    actor_template = WorkerCreateForm.base_fields["actor_template"]
    actor_id = WorkerCreateForm.base_fields["actor_id"]


# --- locks and flush -------------------------------------------------------------------------


class LockReleaseForm(forms.Form):
    key = forms.CharField(max_length=4096, strip=False)
    token = forms.CharField(max_length=4096, strip=False, required=False)

    def clean_key(self) -> str:
        key = self.cleaned_data["key"]
        if not key.startswith("lock:"):
            raise ValidationError("Only lock:* keys can be released here.")
        return key


# --- the header's "open by key or id" box ------------------------------------------------------


class OpenRecordForm(forms.Form):
    # A worker key is worker:<ns>:<pool>:<pod> (253 + 63 + 253 characters and the separators).
    q = forms.CharField(label="Open by key or id", required=False, max_length=600)


# --- raw records (atedash/records/raw.py) --------------------------------------------------------

RAW_MAX_KEY = 1024  # characters of a key given in a URL
# Bytes of a record the raw editor shows for editing and saves: one limit for both. A save posts the
# value and the shown bytes (base64) as multipart (raw/edit.html): 384 KiB + 512 KiB, under
# DATA_UPLOAD_MAX_MEMORY_SIZE (1,000 KiB, settings). A bigger record is shown too big to edit and can
# still be repaired or deleted: its pages post a digest of the bytes instead of the bytes.
RAW_MAX_VALUE = 384 << 10
SHOWN_DIGEST = "sha256:"


def shown_token(value: bytes) -> str:
    """What a raw page posts back to say which stored bytes it showed: their SHA-256."""
    return SHOWN_DIGEST + hashlib.sha256(value).hexdigest()


class RawKeyForm(forms.Form):
    """The record of a raw page, in the URL: actor:* or worker:*."""

    key = forms.CharField(max_length=RAW_MAX_KEY, strip=False)

    def clean_key(self) -> str:
        key = self.cleaned_data["key"]
        if not key.startswith(("actor:", "worker:")):
            raise ValidationError("Only actor:* and worker:* records are edited here.", code="kind")
        if "\x00" in key:
            raise ValidationError("A key with a NUL cannot be named in a URL.", code="nul")
        return key


class _ShownForm(forms.Form):
    """Which stored bytes the page showed (``shown_token``: their digest): the record is written
    over only if it still holds exactly those. The base64 of the bytes themselves (what pages sent
    before) is taken too, and reduced to its digest."""

    shown = forms.CharField(widget=forms.HiddenInput, max_length=4 * (RAW_MAX_VALUE // 3 + 1), strip=False)
    edit_while_locked = forms.BooleanField(label=EDIT_WHILE_LOCKED, required=False)

    def clean_shown(self) -> str:
        shown = self.cleaned_data["shown"]
        garbled = "The page's copy of the stored bytes is garbled; reload the page."
        if shown.startswith(SHOWN_DIGEST):
            if re.fullmatch("[0-9a-f]{64}", shown.removeprefix(SHOWN_DIGEST)):
                return shown
            raise ValidationError(garbled)
        try:
            return shown_token(base64.b64decode(shown, validate=True))
        except (binascii.Error, ValueError):
            raise ValidationError(garbled) from None


class RawEditForm(_ShownForm):
    value = forms.CharField(
        label="Value (JSON)",
        widget=forms.Textarea(attrs={"rows": 16, "spellcheck": "false", "class": "mono"}),
        max_length=RAW_MAX_VALUE,
        strip=False,
    )

    def clean_value(self) -> bytes:
        value = self.cleaned_data["value"]
        try:
            encoded = value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValidationError("The value is not valid UTF-8 text.") from None
        if len(encoded) > RAW_MAX_VALUE:
            raise ValidationError(f"At most {RAW_MAX_VALUE} bytes.")
        return encoded


class RawRepairForm(_ShownForm):
    accept_losses = forms.BooleanField(label="I accept losing what is listed above", required=False)


class RawDeleteForm(_ShownForm):
    pass
