"""Tabular preprocessing and the train / validation / test split, both recorded so they can be replayed."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

MAX_CATEGORIES = 50
UNKNOWN = "__unknown__"


class DataError(Exception):
    """The data cannot be used as asked (missing column, one class only, ...)."""


@dataclass
class PreprocessSpec:
    """How raw columns become model inputs; JSON-serialisable, re-applied for scoring."""

    label: str
    classes: list[str]
    numeric: dict[str, dict[str, float]] = field(default_factory=dict)  # name -> {mean, std, low, high}
    categorical: dict[str, list[str]] = field(default_factory=dict)  # name -> categories (plus unknown)
    feature_order: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PreprocessSpec:
        return cls(**data)

    @property
    def input_width(self) -> int:
        return len(self.numeric) + sum(len(c) + 1 for c in self.categorical.values())


def stratified_split(
    labels: np.ndarray,
    *,
    seed: int,
    fractions: tuple[float, float, float] = (0.7, 0.15, 0.15),
) -> dict[str, np.ndarray]:
    """Seeded, stratified row indices for train / validation / test."""
    rng = np.random.default_rng(seed)
    parts: dict[str, list[np.ndarray]] = {"train": [], "validation": [], "test": []}
    for value in np.unique(labels):
        members = np.flatnonzero(labels == value)
        rng.shuffle(members)
        n_train = int(round(fractions[0] * len(members)))
        n_val = int(round(fractions[1] * len(members)))
        parts["train"].append(members[:n_train])
        parts["validation"].append(members[n_train : n_train + n_val])
        parts["test"].append(members[n_train + n_val :])
    return {name: np.sort(np.concatenate(chunks)) for name, chunks in parts.items()}


def split_digest(split: dict[str, np.ndarray]) -> str:
    digest = hashlib.sha256()
    for name in ("train", "validation", "test"):
        digest.update(name.encode() + b":" + np.asarray(split[name], dtype=np.int64).tobytes())
    return digest.hexdigest()


def fit_preprocess(frame: pd.DataFrame, *, label: str, features: list[str]) -> PreprocessSpec:
    """Learn the encoding from the TRAIN rows only.

    Note: means, standard deviations and category lists are computed from private rows and are not covered by the
    DP guarantee; numeric inputs are also clipped to the 1st..99th percentile range so one person cannot move them
    far. Declaring public bounds instead would close that gap (recorded as a caveat in the model card).
    """
    missing = [name for name in [label, *features] if name not in frame.columns]
    if missing:
        raise DataError(f"Column(s) not in the data: {', '.join(missing)}")
    classes = sorted(frame[label].dropna().astype(str).unique().tolist())
    if len(classes) < 2:
        raise DataError(f"The label {label!r} has fewer than two classes in the training rows.")
    spec = PreprocessSpec(label=label, classes=classes, feature_order=list(features))
    for name in features:
        column = frame[name]
        if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
            values = column.astype(float).dropna()
            low, high = (float(values.quantile(0.01)), float(values.quantile(0.99))) if len(values) else (0.0, 0.0)
            clipped = values.clip(low, high)
            std = float(clipped.std()) if len(values) > 1 else 1.0
            spec.numeric[name] = {
                "mean": float(clipped.mean()) if len(values) else 0.0,
                "std": std if std > 0 else 1.0,
                "low": low,
                "high": high,
            }
        else:
            counts = column.astype(str).value_counts()
            spec.categorical[name] = counts.index[:MAX_CATEGORIES].tolist()
    return spec


def transform(frame: pd.DataFrame, spec: PreprocessSpec) -> np.ndarray:
    """Model inputs (float32) in the recorded column order."""
    blocks = []
    for name in spec.feature_order:
        if name not in frame.columns:
            raise DataError(f"Column {name!r} is missing from the data to score.")
        if name in spec.numeric:
            stats = spec.numeric[name]
            values = frame[name].astype(float).fillna(stats["mean"]).clip(stats["low"], stats["high"])
            blocks.append(((values - stats["mean"]) / stats["std"]).to_numpy(np.float32)[:, None])
        else:
            categories = spec.categorical[name]
            index = {value: i for i, value in enumerate(categories)}
            codes = frame[name].astype(str).map(index).fillna(len(categories)).astype(int).to_numpy()
            onehot = np.zeros((len(frame), len(categories) + 1), dtype=np.float32)
            onehot[np.arange(len(frame)), codes] = 1.0
            blocks.append(onehot)
    return np.hstack(blocks) if blocks else np.zeros((len(frame), 0), np.float32)


def encode_labels(frame: pd.DataFrame, spec: PreprocessSpec) -> np.ndarray:
    index = {value: i for i, value in enumerate(spec.classes)}
    values = frame[spec.label].astype(str).map(index)
    if values.isna().any():
        raise DataError(
            f"Label values outside the training classes: {sorted(set(frame[spec.label].astype(str)) - set(index))[:5]}"
        )
    return values.to_numpy(np.int64)
