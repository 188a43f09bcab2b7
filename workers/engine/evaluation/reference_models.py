"""Reference (shadow) models for the calibrated membership attack: the target's model family trained on rows the
target never saw and that are not audited (its validation rows), so every audited example is 'out' for them.

They are trained without differential privacy on purpose: they estimate how hard each example is for this kind of
model, and never leave the worker. Only the attack's counts, and no reference model, reach the evaluation record.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import torch

from workers.engine.training.data import encode_labels, transform
from workers.engine.training.models import loss_per_sample
from workers.engine.training.trainer import TrainingConfig, train

MIN_REFERENCE_ROWS = 250  # each reference model then trains on ~140 rows: enough for these model sizes
REFERENCE_MODELS = 4


def reference_losses(
    reference_rows: pd.DataFrame,
    config: TrainingConfig,
    audited: list[pd.DataFrame],
    *,
    models: int = REFERENCE_MODELS,
    seed: int = 0,
) -> list[np.ndarray] | None:
    """For each frame in ``audited``, an array (models x rows) of reference-model losses; None when there are too few
    reference rows to train on."""
    if len(reference_rows) < MIN_REFERENCE_ROWS:
        return None
    rng = np.random.default_rng(seed)
    results: list[list[np.ndarray]] = [[] for _ in audited]
    for index in range(models):
        # Each reference model sees a different random 80% of the reference rows.
        rows = reference_rows.iloc[rng.permutation(len(reference_rows))[: int(0.8 * len(reference_rows))]]
        trained = train(rows, replace(config, private=False, seed=seed * 1000 + index + 1))
        model = trained.model.cpu().eval()
        for position, frame in enumerate(audited):
            with torch.no_grad():
                logits = model(torch.from_numpy(transform(frame, trained.spec)))
                losses = loss_per_sample(logits, torch.from_numpy(encode_labels(frame, trained.spec)))
            results[position].append(losses.numpy())
    return [np.vstack(per_model) for per_model in results]
