"""Re-identification risk of a table under its quasi-identifiers.

Prosecutor risk (the attacker knows the person is in the data): a record's risk is 1 / the size of its equivalence
class. Journalist risk (the attacker does not): 1 / the size of the matching class in a population table.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd


def _class_sizes(frame: pd.DataFrame, quasi_identifiers: list[str], count: str | None) -> pd.Series:
    groups = frame.groupby(quasi_identifiers, dropna=False, observed=True)
    return groups[count].sum() if count else groups.size()


def prosecutor_risk(
    frame: pd.DataFrame, quasi_identifiers: list[str], threshold: float = 0.2, count: str | None = None
) -> dict[str, Any]:
    """``count``: the column saying how many records each row stands for (distinct combinations); else one each."""
    sizes = _class_sizes(frame, quasi_identifiers, count).to_numpy(dtype=np.int64) if not frame.empty else []
    sizes = np.asarray(sizes, dtype=np.int64)
    sizes = sizes[sizes > 0]
    if not len(sizes):
        return {
            "records": 0,
            "classes": 0,
            "highest": 0.0,
            "average": 0.0,
            "share_above_threshold": 0.0,
            "threshold": threshold,
            "smallest_class": 0,
        }
    records = int(sizes.sum())
    # Every record of a class of size s has risk 1/s: the average over records is (classes / records).
    return {
        "records": records,
        "classes": int(len(sizes)),
        "highest": float(1.0 / sizes.min()),
        "average": float(len(sizes) / records),
        "share_above_threshold": float(sizes[1.0 / sizes > threshold].sum() / records),
        "threshold": threshold,
        "smallest_class": int(sizes.min()),
    }


def journalist_risk(
    frame: pd.DataFrame,
    population: pd.DataFrame,
    quasi_identifiers: list[str],
    count_column: str = "count",
    count: str | None = None,
) -> dict[str, Any]:
    """``population`` has the same quasi-identifier columns (already generalised like ``frame``) and a count column:
    how many people of the population share those values. ``count``: records per row of ``frame``, as above."""
    population_sizes = population.groupby(quasi_identifiers, dropna=False, observed=True)[count_column].sum()
    sample = _class_sizes(frame, quasi_identifiers, count).rename("sample")
    joined = sample.to_frame().join(population_sizes.rename("population"), how="left")
    joined = joined[joined["sample"] > 0]
    # A class missing from the population table is at least as large as it is in the sample.
    joined["population"] = joined["population"].fillna(0).clip(lower=joined["sample"])
    if joined.empty:
        return {"highest": 0.0, "average": 0.0}
    risk = 1.0 / joined["population"].to_numpy(dtype=float)
    records = joined["sample"].to_numpy(dtype=float)
    return {"highest": float(risk.max()), "average": float((risk * records).sum() / records.sum())}
