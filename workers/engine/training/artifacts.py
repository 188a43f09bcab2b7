"""Model artifacts: safetensors weights (no pickle), the preprocessing spec and the manifest, each hashed."""

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

from workers.engine.training.data import PreprocessSpec, transform
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


def load_model(folder: Path) -> tuple[torch.nn.Module, PreprocessSpec, dict[str, Any]]:
    manifest = json.loads((folder / MANIFEST).read_text())
    if file_sha256(folder / WEIGHTS) != manifest["weights_sha256"]:
        raise ValueError("The model weights do not match the manifest's sha256.")
    spec = PreprocessSpec.from_dict(json.loads((folder / SPEC).read_text()))
    model = build_model(manifest["model_kind"], spec.input_width, len(spec.classes), tuple(manifest["hidden"]))
    model.load_state_dict(load_file(folder / WEIGHTS))
    model.eval()
    return model, spec, manifest


def score(frame: pd.DataFrame, folder: Path) -> pd.DataFrame:
    """Probabilities per class and the predicted class for each row."""
    model, spec, _manifest = load_model(folder)
    probabilities = predict_proba(model, torch.from_numpy(transform(frame, spec))).numpy()
    out = pd.DataFrame(probabilities, columns=[f"p_{c}" for c in spec.classes])
    out["prediction"] = [spec.classes[i] for i in probabilities.argmax(axis=1)]
    return out
