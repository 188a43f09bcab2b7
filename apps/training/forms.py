from __future__ import annotations

from typing import Any

from django import forms

from apps.training.services import MODEL_LABELS


class TrainingForm(forms.Form):
    label = forms.ChoiceField(help_text="The column to predict.")
    features = forms.MultipleChoiceField(widget=forms.CheckboxSelectMultiple)
    model = forms.ChoiceField(choices=list(MODEL_LABELS.items()))
    target_epsilon = forms.FloatField(min_value=0.01, max_value=100, initial=1.0, label="Target epsilon")
    epochs = forms.IntegerField(min_value=1, max_value=200, initial=3)
    batch_size = forms.IntegerField(min_value=1, max_value=100000, initial=256, label="Expected batch size")
    max_grad_norm = forms.FloatField(min_value=0.001, max_value=100, initial=1.0, label="Clipping norm")
    learning_rate = forms.FloatField(min_value=1e-6, max_value=10, initial=0.05)
    seed = forms.IntegerField(min_value=0, initial=0)
    non_private = forms.BooleanField(
        required=False, label="Non-private baseline, for comparison only (never deployable)"
    )

    def __init__(self, *args: Any, columns: list[Any], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        label_default = next((c.name for c in columns if c.role == "label"), "")
        self.fields["label"].choices = [(c.name, c.name) for c in columns]
        self.fields["label"].initial = label_default
        usable = [c for c in columns if c.role not in ("subject_key", "direct_identifier", "label")]
        self.fields["features"].choices = [(c.name, f"{c.name} ({c.get_role_display() or c.kind})") for c in usable]
        # Sensitive attributes are offered (a steward may justify one) but never ticked by default: the fairness audit
        # needs them, the model usually should not learn from them.
        self.fields["features"].initial = [c.name for c in usable if c.role in ("feature", "quasi_identifier")]
