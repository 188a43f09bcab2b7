"""Model artifacts: safetensors weights (no pickle), the preprocessing spec and the manifest, each hashed.

A mitigated candidate is an artifact like any other, with ``mitigation`` in its manifest (so its sha256 differs from
its parent's even when the weights are the same), and loading it applies the mitigation:
- ``thresholds`` (post-processing, as fairlearn's ThresholdOptimizer): the parent's network scores, and each group of
  the fitted sensitive attribute has its own threshold, randomised between two operating points as fitted. Deciding
  needs that attribute's column in the rows, and a random generator per call.
- ``reductions`` (exponentiated gradient): a mixture of networks with weights. Its decision is fairlearn's randomised
  classifier (member j's decision with probability w_j, so positive with probability sum_j w_j [p_j >= 0.5]); its
  score is the mixture's probability sum_j w_j p_j, a smooth function explanations and ROC AUC can use.
Models without ``mitigation`` load and decide exactly as before (the most probable class).
"""

from __future__ import annotations

import hashlib
import json
import platform
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from safetensors.torch import load_file, save_file

from workers.engine.training.data import DataError, PreprocessSpec, transform
from workers.engine.training.models import build_model, predict_proba

ENGINE_VERSION = "attest-dp-1"
WEIGHTS, SPEC, MANIFEST = "model.safetensors", "preprocess.json", "manifest.json"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def library_versions() -> dict[str, str]:
    import opacus

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "opacus": opacus.__version__,
        "numpy": np.__version__,
        "pandas": pd.__version__,
    }


def save_model(
    folder: Path,
    *,
    model: torch.nn.Module,
    spec: PreprocessSpec,
    model_kind: str,
    hidden: list[int],
    manifest: dict[str, Any],
) -> dict[str, Any]:
    """Write the three files; returns the manifest with the weights' and spec's sha256 and the model sha256."""
    folder.mkdir(parents=True, exist_ok=True)
    save_file(
        {name: tensor.detach().contiguous().cpu() for name, tensor in model.state_dict().items()}, folder / WEIGHTS
    )
    (folder / SPEC).write_text(json.dumps(spec.to_dict(), sort_keys=True, indent=1))
    full = {
        **manifest,
        "engine_version": ENGINE_VERSION,
        "libraries": library_versions(),
        "model_kind": model_kind,
        "hidden": hidden,
        "weights_sha256": file_sha256(folder / WEIGHTS),
        "preprocess_sha256": file_sha256(folder / SPEC),
    }
    (folder / MANIFEST).write_text(json.dumps(full, sort_keys=True, indent=1, default=str))
    # The model's identity: one hash over the three files, in a fixed order.
    digest = hashlib.sha256()
    for name in (WEIGHTS, SPEC, MANIFEST):
        digest.update(name.encode() + b"\0" + file_sha256(folder / name).encode())
    full["model_sha256"] = digest.hexdigest()
    return full


class MixtureModel(torch.nn.Module):
    """A weighted mixture of binary networks (a reductions candidate); its output is the logit of the mixture's
    positive-class probability sum_j w_j sigmoid(f_j(x)), computed in log space so it stays finite."""

    def __init__(self, members: list[torch.nn.Module], weights: list[float]) -> None:
        super().__init__()
        if not members or len(members) != len(weights):
            raise ValueError("A mixture needs one weight per member, and at least one member.")
        self.members = torch.nn.ModuleList(members)
        # Not in the state dict: the weights are in the manifest (the weights file holds the members only).
        self.register_buffer("log_weights", torch.log(torch.tensor(weights, dtype=torch.float32)), persistent=False)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        logits = torch.cat([member(inputs) for member in self.members], dim=1)
        log_weights = self.log_weights.to(logits.dtype)
        log_positive = torch.logsumexp(log_weights + torch.nn.functional.logsigmoid(logits), dim=1, keepdim=True)
        log_negative = torch.logsumexp(log_weights + torch.nn.functional.logsigmoid(-logits), dim=1, keepdim=True)
        return log_positive - log_negative

    def member_decisions(self, inputs: torch.Tensor) -> torch.Tensor:
        """Each member's decision (rows x members, 0/1): positive where its probability is at least 0.5."""
        with torch.no_grad():
            return (torch.cat([member(inputs) for member in self.members], dim=1) >= 0).to(torch.int64)

    @property
    def weights(self) -> np.ndarray:
        return torch.exp(self.log_weights).double().numpy()


CONSTANT_LOGIT = 30.0  # sigmoid(30) = 1 - 1e-13: a member that answers one class whatever the row


def constant_network(kind: str, spec: PreprocessSpec, hidden: list[int], positive: bool) -> torch.nn.Module:
    """A network of the model's shape that decides one class for every row (a reduction's constant best response):
    every weight zero, the output bias +-CONSTANT_LOGIT. Stored like any member, so the mixture stays one file."""
    network = build_model(kind, spec.input_width, len(spec.classes), tuple(hidden))
    with torch.no_grad():
        for parameter in network.parameters():
            parameter.zero_()
        last = [m for m in network.modules() if isinstance(m, torch.nn.Linear)][-1]
        last.bias.fill_(CONSTANT_LOGIT if positive else -CONSTANT_LOGIT)
    return network.eval()


def mitigation_of(manifest: dict[str, Any]) -> dict[str, Any]:
    """The manifest's mitigation record (empty for a trained model)."""
    return manifest.get("mitigation") or {}


def load_model(folder: Path) -> tuple[torch.nn.Module, PreprocessSpec, dict[str, Any]]:
    manifest = json.loads((folder / MANIFEST).read_text())
    if file_sha256(folder / WEIGHTS) != manifest["weights_sha256"]:
        raise ValueError("The model weights do not match the manifest's sha256.")
    spec = PreprocessSpec.from_dict(json.loads((folder / SPEC).read_text()))

    def network() -> torch.nn.Module:
        return build_model(manifest["model_kind"], spec.input_width, len(spec.classes), tuple(manifest["hidden"]))

    mitigation = mitigation_of(manifest)
    if mitigation.get("method") == "reductions":
        weights = [float(w) for w in mitigation["weights"]]
        model: torch.nn.Module = MixtureModel([network() for _ in weights], weights)
    else:
        model = network()
    model.load_state_dict(load_file(folder / WEIGHTS))
    model.eval()
    return model, spec, manifest


MISSING_GROUP = "(missing)"


def group_values(frame: pd.DataFrame, attribute: str) -> np.ndarray:
    """The group of each row for group thresholds: the attribute's value as text, every missing value one group. The
    same function keys the groups when thresholds are fitted and when they are applied."""
    if attribute not in frame.columns:
        raise DataError(f"Column {attribute!r} is needed: this model applies a threshold per {attribute} group.")
    column = frame[attribute]
    text = column.astype(str).str.strip()
    missing = column.isna().to_numpy() | (text == "").to_numpy()
    return np.where(missing, MISSING_GROUP, text.to_numpy()).astype(object)


def decide(
    model: torch.nn.Module,
    spec: PreprocessSpec,
    manifest: dict[str, Any],
    frame: pd.DataFrame,
    probabilities: np.ndarray,
    *,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """The class index decided for each row: the most probable class, or the candidate's mitigated decision.

    ``probabilities`` are the model's (rows x classes) for ``frame``. A randomised decision draws from ``rng``; without
    one, a fresh generator seeded by the operating system is used (each scoring call draws anew, as fitted).
    """
    mitigation = mitigation_of(manifest)
    method = mitigation.get("method")
    if not method:
        return probabilities.argmax(axis=1)
    rng = rng if rng is not None else np.random.default_rng()
    if method == "thresholds":
        from workers.engine.mitigation.thresholds import apply_group_thresholds

        groups = group_values(frame, mitigation["attribute"])
        return np.asarray(
            apply_group_thresholds(probabilities[:, 1], groups, mitigation["fitted"], rng), dtype=np.int64
        )
    if method == "reductions":
        if not isinstance(model, MixtureModel):
            raise ValueError("A reductions candidate must load as a mixture of its members.")
        decisions = model.member_decisions(torch.from_numpy(transform(frame, spec)))
        positive = decisions.double().numpy() @ model.weights
        return (rng.random(len(positive)) < positive).astype(np.int64)
    raise ValueError(f"Unknown mitigation {method!r}.")


def mitigated_decisions(
    model: torch.nn.Module,
    spec: PreprocessSpec,
    manifest: dict[str, Any],
    frame: pd.DataFrame,
    scores: np.ndarray,
    *,
    seed: int,
) -> np.ndarray | None:
    """A binary candidate's 0/1 decisions on ``frame`` given its positive-class ``scores``, drawn from a generator
    seeded with ``seed`` (so an evaluation with the same seed reproduces them); None for a model without mitigation,
    which decides at 0.5."""
    if not mitigation_of(manifest):
        return None
    probabilities = np.stack([1.0 - scores, scores], axis=1)
    return decide(model, spec, manifest, frame, probabilities, rng=np.random.default_rng(seed))


def score(frame: pd.DataFrame, folder: Path, *, rng: np.random.Generator | None = None) -> pd.DataFrame:
    """Probabilities per class and the decided class for each row (a candidate's mitigated decision)."""
    model, spec, manifest = load_model(folder)
    probabilities = predict_proba(model, torch.from_numpy(transform(frame, spec))).numpy()
    out = pd.DataFrame(probabilities, columns=[f"p_{c}" for c in spec.classes])
    decided = decide(model, spec, manifest, frame, probabilities, rng=rng)
    out["prediction"] = [spec.classes[i] for i in decided]
    return out
