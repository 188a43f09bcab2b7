"""Small template helpers shared by pages (and, later, reports)."""

from __future__ import annotations

from typing import Any

from django import template

register = template.Library()


@register.filter
def get_item(mapping: Any, key: Any) -> Any:
    """``{{ row|get_item:name }}``: dictionary lookup by a variable key."""
    if isinstance(mapping, dict):
        return mapping.get(key)
    return None


@register.filter
def number(value: Any, digits: int = 3) -> str:
    """A figure as the board and reports show it: fixed decimals, an en dash for missing."""
    if value is None:
        return "–"
    try:
        return f"{float(value):.{int(digits)}f}"
    except (TypeError, ValueError):
        return str(value)


@register.filter
def interval(pair: Any, digits: int = 3) -> str:
    if not pair or pair[0] is None:
        return "–"
    return f"[{float(pair[0]):.{int(digits)}f}, {float(pair[1]):.{int(digits)}f}]"


@register.filter
def metric_label(key: Any) -> str:
    """``{{ gate.metric|metric_label }}``: "Demographic parity difference", never the internal key."""
    from apps.usecases.vocab import metric_label as label

    return label(str(key))


@register.filter
def verdict_words(verdict: Any) -> str:
    """``{{ results.robustness_verdict|verdict_words }}``: a gate verdict in words ("unknown" is never a pass)."""
    return {"pass": "all pass", "fail": "some fail", "unknown": "some cannot be evaluated"}.get(
        str(verdict), "no verdict"
    )


@register.filter
def perturbation_label(kind: Any) -> str:
    """``{{ gate.kind|perturbation_label }}``: "Gaussian noise", "FGSM": the robustness engine's own names."""
    from workers.engine.robustness.gates import KIND_LABELS

    return KIND_LABELS.get(str(kind), str(kind).replace("_", " "))


@register.filter
def words(key: Any) -> str:
    """``{{ key|words }}``: an internal key (``queue_to_finish_seconds``) as words ("Queue to finish seconds")."""
    return str(key).replace("_", " ").replace(".", " ").strip().capitalize()


@register.filter
def model_label(label: Any) -> str:
    """``{{ event.object_type|model_label }}``: "ethics.reviewrequest" as "Review request"."""
    from django.apps import apps

    try:
        return str(apps.get_model(str(label))._meta.verbose_name).capitalize()
    except (LookupError, ValueError):
        return words(str(label).rpartition(".")[2])


@register.filter
def model_kind(key: Any) -> str:
    """``{{ run.spec.model|model_kind }}``: "Logistic regression", never ``logistic_regression``."""
    from apps.training.services import MODEL_LABELS

    return MODEL_LABELS.get(str(key), words(key))
