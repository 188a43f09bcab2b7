from __future__ import annotations

from typing import Any

from django import forms

from apps.datasets.datasheet import SECTIONS
from apps.datasets.models import ColumnRole


class DatasetForm(forms.Form):
    usecase = forms.ChoiceField(label="Use case the data is collected for")
    name = forms.CharField(max_length=200)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)

    def __init__(self, *args: Any, usecases: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["usecase"].choices = [("", "Choose...")] + [
            (str(u.id), f"{u.reference} {u.title}") for u in usecases
        ]


class RolesForm(forms.Form):
    """One select per column, prefilled with the confirmed or suggested role."""

    def __init__(self, *args: Any, columns: list[Any], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for column in columns:
            self.fields[f"role__{column.name}"] = forms.ChoiceField(
                choices=ColumnRole.choices,
                initial=column.role or column.suggested_role,
                label=f"Role of {column.name}",
            )

    def roles(self) -> dict[str, str]:
        return {name.removeprefix("role__"): value for name, value in self.cleaned_data.items()}


class DatasheetForm(forms.Form):
    def __init__(self, *args: Any, content: dict[str, dict[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for key, _title, questions in SECTIONS:
            for question, label in questions:
                self.fields[f"{key}__{question}"] = forms.CharField(
                    label=label,
                    required=False,
                    initial=content.get(key, {}).get(question, ""),
                    widget=forms.Textarea(attrs={"rows": 2}),
                )

    def sections(self) -> list[dict[str, Any]]:
        return [
            {"title": title, "fields": [self[f"{key}__{q}"] for q, _l in questions]}
            for key, title, questions in SECTIONS
        ]

    def content(self) -> dict[str, dict[str, str]]:
        sheet: dict[str, dict[str, str]] = {}
        for name, value in self.cleaned_data.items():
            key, question = name.split("__", 1)
            sheet.setdefault(key, {})[question] = value
        return sheet
