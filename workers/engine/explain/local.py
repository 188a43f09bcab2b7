"""Local explanations: reason codes for scored rows and the full explanation of one row.

This is what an affected person is shown, so a value is the person's own value as plain text (not its encoding)
and a contribution is in log-odds of the positive class, relative to the stored baseline.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from torch import nn

from workers.engine.explain._model import ExplanationError, sigmoid
from workers.engine.explain.attributions import attributions
from workers.engine.training.data import PreprocessSpec

MISSING_VALUE = "(missing)"


def plain_value(value: Any) -> str:
    """A raw cell as text a person recognises: 39.0 -> "39", NaN -> "(missing)"."""
    if value is None or (pd.api.types.is_scalar(value) and pd.isna(value)):
        return MISSING_VALUE
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    text = str(value).strip()
    return text if text else MISSING_VALUE


def reason_codes(
    model: nn.Module,
    prep: PreprocessSpec,
    rows: pd.DataFrame,
    *,
    baseline: np.ndarray | list[float],
    top_k: int = 3,
) -> list[list[dict[str, Any]]]:
    """Per row, the ``top_k`` features with the largest |contribution| (largest first), each with the person's value,
    the contribution in log-odds and whether it raises or lowers the odds of the positive class. A feature that
    contributes exactly nothing is no reason and is left out."""
    if top_k < 1:
        raise ExplanationError("top_k must be at least 1.")
    result = attributions(model, prep, rows, baseline=baseline)
    out = []
    for i in range(len(rows)):
        contributions = result.values[i]
        order = np.argsort(-np.abs(contributions), kind="stable")[:top_k]
        codes = []
        for j in order:
            if contributions[j] == 0:
                continue
            name = result.features[j]
            codes.append(
                {
                    "feature": name,
                    "value": plain_value(rows[name].iloc[i]),
                    "contribution": float(contributions[j]),
                    "direction": "raises" if contributions[j] > 0 else "lowers",
                }
            )
        out.append(codes)
    return out


def explain_row(
    model: nn.Module, prep: PreprocessSpec, row: pd.DataFrame, *, baseline: np.ndarray | list[float]
) -> dict[str, Any]:
    """One row: its probability, the baseline's, every feature's contribution (largest |contribution| first) and the
    completeness gap (|sum of contributions + baseline log-odds - the row's log-odds|)."""
    if len(row) != 1:
        raise ExplanationError(f"explain_row takes exactly one row, not {len(row)}.")
    result = attributions(model, prep, row, baseline=baseline)
    contributions = result.values[0]
    logit = float(result.logits[0])
    order = np.argsort(-np.abs(contributions), kind="stable")
    return {
        "prediction": sigmoid(logit),
        "baseline_probability": sigmoid(result.baseline_logit),
        "logit": logit,
        "baseline_logit": result.baseline_logit,
        "positive_class": prep.classes[1],
        "method": result.method,
        "contributions": [
            {
                "feature": result.features[j],
                "value": plain_value(row[result.features[j]].iloc[0]),
                "contribution": float(contributions[j]),
            }
            for j in order
        ],
        "completeness_gap": float(abs(contributions.sum() + result.baseline_logit - logit)),
    }
