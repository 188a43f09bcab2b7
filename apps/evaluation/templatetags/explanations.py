"""Template helpers for explanations and mitigation: feature names in words, and the comparison of a model with its
mitigated candidates wherever the model is shown (its evaluation, the board's review)."""

from __future__ import annotations

from typing import Any

from django import template

register = template.Library()


@register.filter
def feature_words(name: Any) -> str:
    """``{{ reason.feature|feature_words }}``: a column name as words a person reads ("hours-per-week": "hours per
    week", "education-num": "education num")."""
    return " ".join(str(name).replace("-", " ").replace("_", " ").split())


@register.inclusion_tag("evaluation/_comparison.html")
def mitigation_comparison(model_version: Any, level: int = 2) -> dict[str, Any]:
    """``{% mitigation_comparison model %}``: the accuracy-versus-disparity chart and table of the model's original
    and its candidates (nothing when there is no candidate); ``level`` is its heading's (3 inside a section)."""
    from apps.evaluation.model_page import comparison_context

    return {
        "comparison": comparison_context(model_version) if model_version is not None else None,
        "level": level,
    }
