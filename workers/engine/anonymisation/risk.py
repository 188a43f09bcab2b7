"""Re-identification risk of a table under its quasi-identifiers.

Prosecutor risk (the attacker knows the person is in the data): a record's risk is 1 / the size of its equivalence
class. Journalist risk (the attacker does not): 1 / the size of the matching class in a population table.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd


def prosecutor_risk(frame: pd.DataFrame, quasi_identifiers: list[str], threshold: float = 0.2) -> dict[str, Any]:
    if frame.empty:
        return {"records": 0, "classes": 0, "highest": 0.0, "average": 0.0, "share_above_threshold": 0.0,
                "threshold": threshold, "smallest_class": 0}
    sizes = frame.groupby(quasi_identifiers, dropna=False, observed=True).size().to_numpy()
    record_risk = np.repeat(1.0 / sizes, sizes)
    return {
        "records": int(sizes.sum()),
        "classes": int(len(sizes)),
        "highest": float(record_risk.max()),
        "average": float(record_risk.mean()),
        "share_above_threshold": float((record_risk > threshold).mean()),
        "threshold": threshold,
        "smallest_class": int(sizes.min()),
    }


def journalist_risk(frame: pd.DataFrame, population: pd.DataFrame, quasi_identifiers: list[str],
                    count_column: str = "count") -> dict[str, Any]:
    """``population`` has the same quasi-identifier columns (already generalised like ``frame``) and a count column:
    how many people of the population share those values."""
    population_sizes = population.groupby(quasi_identifiers, dropna=False, observed=True)[count_column].sum()
    sample = frame.groupby(quasi_identifiers, dropna=False, observed=True).size().rename("sample")
    joined = sample.to_frame().join(population_sizes.rename("population"), how="left")
    # A class missing from the population table is at least as large as it is in the sample.
    joined["population"] = joined["population"].fillna(0).clip(lower=joined["sample"])
    record_risk = np.repeat(1.0 / joined["population"].to_numpy(), joined["sample"].to_numpy())
    return {"highest": float(record_risk.max()) if len(record_risk) else 0.0,
            "average": float(record_risk.mean()) if len(record_risk) else 0.0}
