"""An independent check of an anonymised table, written apart from the search on purpose: pandas group-bys over the
released strings, not the search's integer codes. Every result the portal applies passes it first.

A missing sensitive value (None, NaN, pd.NA, NaT) is one value of its own, as in the search and in pycanon (which
counts NaN once): a class holding "flu", "cold" and missing values has three distinct values, and the missing share
takes part in entropy and in the t-closeness distance. An empty string is a value too, distinct from missing."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from workers.engine.anonymisation.hierarchy import MISSING


def sensitive_values(series: pd.Series) -> pd.Series:
    """The sensitive column as text (the hierarchies' spelling: 39.0 read from a CSV with gaps is "39"), with every
    kind of missing value as the one value ``MISSING``."""
    missing = series.isna().to_numpy(dtype=bool)
    if pd.api.types.is_float_dtype(series):
        text = series.map(lambda v: v if pd.isna(v) else f"{int(v)}" if float(v).is_integer() else f"{v:g}")
    else:
        text = series.astype("string")
    return text.astype(object).mask(missing, MISSING)


def verify(
    original: pd.DataFrame,
    released: pd.DataFrame,
    quasi_identifiers: list[str],
    *,
    k: int,
    suppression_limit: float,
    sensitive: str | None = None,
    l_diversity: int | None = None,
    l_kind: str = "distinct",
    t_closeness: float | None = None,
    t_distance_of: Any = None,
    count: str | None = None,
) -> list[str]:
    """Problems found (empty when the release meets every criterion). ``t_distance_of(class_distribution,
    overall_distribution)`` computes the t-closeness distance for a pandas Series pair. ``count``: the column saying
    how many records each row stands for, in both frames (distinct combinations counted batch by batch, so a table
    of any length is checked in memory bounded by its combinations); without it each row is one record."""
    problems = []
    original_records = int(original[count].sum()) if count else len(original)
    released_records = int(released[count].sum()) if count else len(released)
    suppressed = original_records - released_records
    if suppressed > math.floor(suppression_limit * original_records + 1e-9):
        problems.append(f"{suppressed} records suppressed, more than {suppression_limit:.0%} of {original_records}")
    if released.empty or released_records == 0:
        return problems
    released = released.assign(**{WEIGHT: released[count].to_numpy() if count else 1})
    if sensitive:
        released = released.assign(**{sensitive: sensitive_values(released[sensitive]).to_numpy()})
    groups = released.groupby(quasi_identifiers, dropna=False, observed=True)
    sizes = groups[WEIGHT].sum()
    if (sizes < k).any():
        problems.append(f"{int((sizes < k).sum())} classes have fewer than {k} records (smallest {sizes.min()})")
    if sensitive and l_diversity:
        if l_kind == "distinct":
            distinct = groups[sensitive].nunique(dropna=False)
            if (distinct < l_diversity).any():
                problems.append(
                    f"{int((distinct < l_diversity).sum())} classes have fewer than {l_diversity} "
                    f"distinct values of {sensitive}"
                )
        else:

            def entropy(group: pd.DataFrame) -> float:
                weights = group.groupby(sensitive, dropna=False)[WEIGHT].sum().to_numpy(dtype=float)
                p = weights / weights.sum()
                return float(-(p * np.log(p)).sum())

            low = groups[[sensitive, WEIGHT]].apply(entropy) < math.log(l_diversity) - 1e-9
            if low.any():
                problems.append(f"{int(low.sum())} classes have entropy below log({l_diversity}) for {sensitive}")
    if sensitive and t_closeness is not None:
        values = sensitive_values(original[sensitive])
        weights = original[count].to_numpy() if count else np.ones(len(original))
        overall = pd.Series(weights, index=values.to_numpy()).groupby(level=0).sum()
        overall = (overall / overall.sum()).sort_values(ascending=False, kind="stable")
        far = 0
        for _key, group in groups:
            local = group.groupby(sensitive, dropna=False)[WEIGHT].sum()
            local = (local / local.sum()).reindex(overall.index, fill_value=0.0)
            distance = t_distance_of(local, overall) if t_distance_of else 0.5 * (local - overall).abs().sum()
            if distance > t_closeness + 1e-9:
                far += 1
        if far:
            problems.append(f"{far} classes are further than t={t_closeness} from the overall distribution")
    return problems


WEIGHT = "__records__"
