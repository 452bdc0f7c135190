"""Input of the flush and scoped reset pages: the scope, and the environment's name typed."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError

# --- flush -----------------------------------------------------------------------------------

FLUSH_SCOPES = [
    ("ate", "ate records only (actor:*, worker:*, lock:*)"),
    ("all", "everything (FLUSHALL on every primary)"),
]


class FlushForm(forms.Form):
    scope = forms.ChoiceField(label="What to remove", choices=FLUSH_SCOPES, widget=forms.RadioSelect, initial="ate")
    confirm = forms.CharField(
        label="Type the environment's name to confirm",
        max_length=253,
        strip=False,
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )

    def clean_confirm(self) -> str:
        typed = self.cleaned_data["confirm"]
        if typed != settings.ATEDASH_ENVIRONMENT:
            raise ValidationError("That is not this environment's name: nothing was removed.", code="wrong_environment")
        return typed


# --- scoped reset ----------------------------------------------------------------------------

RESET_SCOPES = [
    ("actors-namespace", "the actors of a template namespace (NS)"),
    ("actors-template", "the actors of a template (NS/NAME)"),
    ("actors-status", "the actors in a status (e.g. RESUMING)"),
    ("workers-pool", "the workers of a pool (NS/POOL)"),
]


class ResetScopeForm(forms.Form):
    """What a reset covers (GET: the preview's URL)."""

    kind = forms.ChoiceField(label="Scope", choices=RESET_SCOPES, widget=forms.RadioSelect)
    value = forms.CharField(
        label="Namespace, template, status or pool",
        max_length=507,
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )

    def clean(self) -> dict[str, Any]:
        from storage.reset import Scope, ScopeError

        super().clean()
        cleaned = self.cleaned_data
        if "kind" in cleaned and "value" in cleaned:
            try:
                cleaned["scope"] = Scope.parse(cleaned["kind"], cleaned["value"])
            except ScopeError as exc:
                self.add_error("value", exc.message)
        return cleaned


class ResetForm(ResetScopeForm):
    """Applying a reset: the scope and the environment's name typed (the flush page's guard)."""

    confirm = FlushForm.base_fields["confirm"]
    clean_confirm = FlushForm.clean_confirm
