"""Scoring a trained model on rows, and the membership audit's inputs: the torch side of an evaluation, so the
portal's job module hands over frames and gets numpy arrays back."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from workers.engine.evaluation.privacy_audit import membership_audit
from workers.engine.evaluation.reference_models import reference_losses
from workers.engine.training.data import DataError, encode_labels, transform
from workers.engine.training.models import loss_per_sample
from workers.engine.training.trainer import TrainingConfig


def predict(model: Any, prep: Any, rows: Any) -> tuple[np.ndarray, np.ndarray]:
    """(encoded labels, logits) of ``rows``; raises DataError when the rows do not fit the model's preprocessing."""
    inputs = torch.from_numpy(transform(rows, prep))
    labels = encode_labels(rows, prep)
    with torch.no_grad():
        logits = model(inputs).numpy()
    return labels, logits


def sigmoid(logits: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-logits))


def audit_membership(
    *,
    model: Any,
    prep: Any,
    spec: dict[str, Any],
    validation_rows: Any,
    member_rows: Any,
    test_rows: Any,
    proven_epsilon: float | None,
    delta: float,
    seed: int,
) -> dict[str, Any]:
    """Members (training rows) against non-members (held-out test rows), balanced; reference models trained on the
    run's validation rows (audited by neither side) calibrate the stronger attack when there are enough of them."""
    rng = np.random.default_rng(seed)
    size = min(len(member_rows), len(test_rows), 5000)
    members = member_rows.iloc[rng.permutation(len(member_rows))[:size]]
    nonmembers = test_rows.iloc[rng.permutation(len(test_rows))[:size]]

    def target_loss(rows: Any) -> np.ndarray:
        with torch.no_grad():
            return loss_per_sample(
                model(torch.from_numpy(transform(rows, prep))), torch.from_numpy(encode_labels(rows, prep))
            ).numpy()

    config = TrainingConfig(**{k: v for k, v in spec.items() if k in TrainingConfig.__dataclass_fields__})
    try:
        references = reference_losses(validation_rows, config, [members, nonmembers], seed=seed)
    except DataError:  # a reference sample without one of the classes: the loss attack alone is reported
        references = None
    return membership_audit(
        target_loss(members),
        target_loss(nonmembers),
        proven_epsilon=proven_epsilon,
        delta=delta,
        reference_member_losses=references[0] if references else None,
        reference_nonmember_losses=references[1] if references else None,
        seed=seed,
    )
