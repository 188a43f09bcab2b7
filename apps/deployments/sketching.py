"""Folding production rows into a window's sketch: the one place that turns a batch's columns into what the engine's
``WindowSketch`` takes (the features, 0/1 decisions and labels with the positive class as 1, positive-class scores,
the sensitive attributes as groups).

Pure functions of frames and the model's schema (``selectors.model_schema``): no database, no torch. The services
and jobs call them; what a window keeps is ``WindowSketch.to_dict()``: counts, never rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from apps.core.errors import ValidationFailed
from workers.engine.monitoring.columns import category_text
from workers.engine.monitoring.quality import check_schema
from workers.engine.monitoring.sketch import WindowSketch

PREDICTION, PREDICTION_ID, LABEL = "prediction", "prediction_id", "label"
MAX_SHOWN = 5


def schema_problems(
    reference: dict[str, Any],
    frame: pd.DataFrame,
    *,
    sensitive: list[str],
    needs_prediction: bool,
) -> list[str]:
    """Every problem with a batch's columns, each naming the columns at fault: the engine's check of the features
    against the training reference (missing, unexpected, numbers where numbers belong), and the columns a production
    batch carries beside the features."""
    extra = [PREDICTION_ID, LABEL, *sensitive] + ([PREDICTION] if needs_prediction else [])
    columns = {str(name): str(dtype) for name, dtype in frame.dtypes.items()}
    problems = list(check_schema(reference, columns, allowed_extra=extra))
    if needs_prediction:
        absent = [name for name in (PREDICTION, PREDICTION_ID) if name not in columns]
        if absent:
            problems.append(f"Missing column(s): {', '.join(absent)}.")
    return problems


def encode_classes(values: pd.Series, classes: list[str], column: str) -> np.ndarray:
    """Class names (as the model names them) to class indices (for a binary model, 1 is the positive class); a value
    outside the model's classes refuses the batch, naming the column and a few of the values."""
    index = {name: i for i, name in enumerate(classes)}
    text = values.map(category_text)  # 1.0 from a spreadsheet is the class "1", as the engine reads categories
    codes = text.map(index)
    unknown = sorted({str(v) for v in text[codes.isna()]})
    if unknown:
        shown = ", ".join(repr(v) for v in unknown[:MAX_SHOWN])
        raise ValidationFailed(
            f"Column {column!r} has values that are not classes of the model ({', '.join(classes)}): {shown}"
            + (" ..." if len(unknown) > MAX_SHOWN else "")
            + ". Nothing was kept.",
            {column: [f"not a class: {v}" for v in unknown[:MAX_SHOWN]]},
        )
    return codes.to_numpy(dtype=np.int64)


@dataclass
class Fold:
    """What one batch adds to its window: the sketch of its rows, and the predictions still waiting for labels."""

    sketch: WindowSketch
    rows: int = 0
    labelled: int = 0
    pending: list[tuple[str, int, dict[str, str | None]]] = field(default_factory=list)

    def take_pending(self) -> list[tuple[str, int, dict[str, str | None]]]:
        pending, self.pending = self.pending, []
        return pending


def empty_fold(reference: dict[str, Any]) -> Fold:
    return Fold(sketch=WindowSketch.empty(reference))


def group_frame(rows: list[dict[str, str | None]]) -> pd.DataFrame | None:
    """Groups of waiting predictions (as stored) back into the frame the sketch takes (None: no attributes)."""
    if not rows or not any(rows):
        return None
    return pd.DataFrame.from_records(rows).astype(object)


def fold_frame(
    fold: Fold,
    frame: pd.DataFrame,
    *,
    schema: dict[str, Any],
    sensitive: list[str],
    digest: Any,
    scores: np.ndarray | None = None,
) -> None:
    """Add one chunk of a batch to ``fold``: every row to the drift and quality counts; labelled rows to the
    performance and fairness counts; unlabelled rows with a prediction id to ``fold.pending`` (keyed by ``digest``
    of the id, never the id). Performance and fairness are counted for binary models (the engine's 0/1 decisions)."""
    binary = len(schema["classes"]) == 2
    features = frame[[name for name in schema["features"] if name in frame.columns]]
    predictions = encode_classes(frame[PREDICTION], schema["classes"], PREDICTION)
    present = [name for name in sensitive if name in frame.columns]
    groups = frame[present].reset_index(drop=True).astype(object) if present else None
    fold.sketch.add(
        features.reset_index(drop=True),
        scores=scores if binary else None,
        predictions=predictions if binary else None,
        groups=groups,
    )
    fold.rows += len(frame)
    if LABEL in frame.columns:
        labelled = frame[LABEL].map(category_text).notna().to_numpy()
    else:
        labelled = np.zeros(len(frame), dtype=bool)
    if labelled.any() and binary:
        labels = encode_classes(frame[LABEL][labelled], schema["classes"], LABEL)
        chosen = groups[labelled].reset_index(drop=True) if groups is not None else None
        fold.sketch.add_labels(predictions[labelled], labels, chosen)
        fold.labelled += int(labelled.sum())
    if PREDICTION_ID in frame.columns and binary:
        ids = frame[PREDICTION_ID].map(category_text).to_numpy(dtype=object)
        waiting = ~labelled & pd.notna(ids)
        stored = (
            [{k: category_text(v) for k, v in row.items()} for row in groups[waiting].to_dict("records")]
            if groups is not None
            else [{}] * int(waiting.sum())
        )
        for prediction_id, predicted, group in zip(ids[waiting], predictions[waiting], stored, strict=True):
            fold.pending.append((digest(prediction_id), int(predicted), group))


def sketch_of(reference: dict[str, Any], data: dict[str, Any] | None) -> WindowSketch:
    return WindowSketch.from_dict(reference, data) if data else WindowSketch.empty(reference)
