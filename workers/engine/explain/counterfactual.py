"""Counterfactual probe: would the decision change if only a sensitive attribute (or a declared proxy) were
different?

For each row and each other value of the attribute observed in the rows, the attribute is set to that value with
every other input unchanged; a row counts as changed when the decision (probability >= threshold) differs at any
of the alternatives. Shares come with Wilson 95% intervals, overall and per group of the attribute's own values,
and a group smaller than ``min_group_size`` is listed with its size only (small-cell rule).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from torch import nn

from workers.engine.evaluation.groups import groupings
from workers.engine.explain._model import ExplanationError, explainable_copy, logit_threshold, logits, require_binary
from workers.engine.explain.attributions import feature_columns
from workers.engine.monitoring.performance import wilson_interval
from workers.engine.training.data import PreprocessSpec, transform

# A numeric attribute with more distinct values than this is probed at this many of its quantiles (observed values).
MAX_ALTERNATIVES = 50


def _alternatives(column: pd.Series, name: str, prep: PreprocessSpec) -> pd.Series:
    observed = column.dropna().drop_duplicates()
    if name in prep.numeric and len(observed) > MAX_ALTERNATIVES:
        quantiles = np.quantile(
            observed.astype(float).to_numpy(), np.linspace(0, 1, MAX_ALTERNATIVES), method="closest_observation"
        )
        observed = pd.Series(np.unique(quantiles))
    return observed.reset_index(drop=True)


def _encoded_blocks(values: pd.Series, name: str, prep: PreprocessSpec) -> np.ndarray:
    """The encoded columns of ``name`` for each value, exactly as ``transform`` writes them; values that encode
    alike (two unknown categories) are probed once."""
    single = PreprocessSpec(
        label=prep.label,
        classes=prep.classes,
        numeric={name: prep.numeric[name]} if name in prep.numeric else {},
        categorical={name: prep.categorical[name]} if name in prep.categorical else {},
        feature_order=[name],
    )
    return np.unique(transform(pd.DataFrame({name: values}), single).astype(np.float64), axis=0)


def _share(changed: np.ndarray, min_group_size: int) -> dict[str, Any]:
    size = int(len(changed))
    if size < min_group_size:
        return {"rows": size, "changed_share": None, "interval": None, "too_small": True}
    count = int(changed.sum())
    return {"rows": size, "changed_share": count / size, "interval": wilson_interval(count, size), "too_small": False}


def counterfactual_probe(
    model: nn.Module,
    prep: PreprocessSpec,
    rows: pd.DataFrame,
    *,
    attributes: list[str],
    threshold: float = 0.5,
    min_group_size: int = 30,
) -> list[dict[str, Any]]:
    """One entry per attribute: ``{"attribute", "not_a_feature": True}`` when the model does not use it, else
    ``{"attribute", "rows", "changed_share", "interval", "too_small", "values_tried", "by_group": [{"group", "rows",
    "changed_share", "interval", "too_small"}]}``."""
    require_binary(model, prep)
    rows = rows.reset_index(drop=True)
    missing = [name for name in attributes if name not in rows.columns]
    if missing:
        raise ExplanationError(f"Attribute(s) not in the rows: {', '.join(missing)}")
    double = explainable_copy(model)
    cut = logit_threshold(threshold)
    inputs = transform(rows, prep).astype(np.float64)
    decisions = logits(double, inputs) >= cut
    columns = dict(feature_columns(prep))
    out: list[dict[str, Any]] = []
    for name in attributes:
        if name not in columns:
            out.append({"attribute": name, "not_a_feature": True})
            continue
        cols = columns[name]
        alternatives = _alternatives(rows[name], name, prep)
        changed = np.zeros(len(rows), dtype=bool)
        probe = inputs.copy()
        for block in _encoded_blocks(alternatives, name, prep):
            probe[:, cols] = block
            # A row already at this value gets its own decision back, so "another value" needs no special case.
            changed |= (logits(double, probe) >= cut) != decisions
        grouping = groupings(rows, [name], intersections=False)[0]
        by_group = [
            {"group": label, **_share(changed[grouping.codes == code], min_group_size)}
            for code, label in enumerate(grouping.labels)
        ]
        out.append(
            {
                "attribute": name,
                **_share(changed, min_group_size),
                "values_tried": len(alternatives),
                "threshold": threshold,
                "by_group": by_group,
            }
        )
    return out
