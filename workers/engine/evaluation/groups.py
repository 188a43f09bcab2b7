"""Integer group codes for sensitive attributes and their intersections."""

from __future__ import annotations

from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd


def group_codes(
    frame: pd.DataFrame,
    attributes: list[str],
    intersections: bool = True,
) -> list[tuple[str, np.ndarray, list[str]]]:
    """For each grouping (each attribute, then each combination of two or more): (name, codes per row, labels)."""
    groupings: list[list[str]] = [[a] for a in attributes]
    if intersections:
        for size in range(2, len(attributes) + 1):
            groupings += [list(combo) for combo in combinations(attributes, size)]
    out = []
    for columns in groupings:
        keys = frame[columns].astype(str).agg(" & ".join, axis=1) if len(columns) > 1 else frame[columns[0]].astype(str)
        codes, labels = pd.factorize(keys, sort=True)
        out.append((" x ".join(columns), codes.astype(np.int64), [str(label) for label in labels]))
    return out


def describe(values: Any) -> str:
    return ", ".join(map(str, values))
