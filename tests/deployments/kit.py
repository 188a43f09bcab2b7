"""Builders for the tests of deployments, scoring, production data and windows (engineer A).

Two kinds of model: a real one (``approved_model``: trained with DP-SGD on the prepared Adult sample and approved by
the board) for scoring and references, and a model "as the worker reports it" (no torch: its figures given, its
preprocessing spec written where the real one would be) for the services that never load the model.
"""

from __future__ import annotations

import io
import json
import uuid
from pathlib import Path
from typing import Any

import pandas as pd
from django.conf import settings
from django.utils import timezone

from apps.accounts.models import User
from apps.deployments.models import Deployment, MonitoringReference
from apps.deployments.services import deployment_register, monitoring_reference_record
from apps.ethics.services import review_request_deployment, vote_cast
from apps.evaluation.services import evaluation_record
from apps.jobs.models import Job
from apps.training.models import ModelVersion
from apps.training.services import training_run_request, training_run_succeed
from tests.conftest import run_inline
from tests.ethics.factories import set_board_rules
from tests.training.conftest import run_spec
from workers.engine.monitoring.reference import build_reference

ADULT = Path(settings.BASE_DIR) / "data" / "adult.csv"
FEATURES = ["age", "education-num", "sex", "hours-per-week", "marital-status"]  # tests/training/conftest.run_spec
NUMERIC = {"age", "education-num", "hours-per-week"}
CLASSES = ["<=50K", ">50K"]


def adult(start: int, rows: int) -> pd.DataFrame:
    """Rows of the Adult data the models never trained on (the prepared sample is its first 2,000 rows)."""
    frame = pd.read_csv(ADULT, skiprows=range(1, start + 1), nrows=rows, na_values="?")
    return frame.reset_index(drop=True)


def production(start: int, rows: int, *, prefix: str = "P", labelled: bool = False) -> pd.DataFrame:
    """A production batch as a deployment's caller sends it: the features, the decision, its id, the sensitive
    attributes, and the label when ``labelled`` (the decision here is the true class flipped for a third of rows)."""
    source = adult(start, rows)
    frame = source[FEATURES].copy()
    frame["race"] = source["race"]
    truth = source["class"].astype(str).str.strip().str.rstrip(".")
    flipped = truth.map({CLASSES[0]: CLASSES[1], CLASSES[1]: CLASSES[0]})
    frame["prediction"] = truth.where(frame.index % 3 != 0, flipped)
    frame["prediction_id"] = [f"{prefix}-{start + i:06d}" for i in range(rows)]
    if labelled:
        frame["label"] = truth
    return frame


def csv_bytes(frame: pd.DataFrame) -> bytes:
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False)
    return buffer.getvalue().encode()


def approve(model: ModelVersion, *, owner: User, member: User) -> None:
    """The board (a quorum of one, settling at once) approves the model for deployment on ``member``'s vote."""
    set_board_rules(model.organisation, quorum=1, decides="settled")
    review = review_request_deployment(actor=owner, model_version=model)
    vote_cast(actor=member, review=review, choice="approve", reason="Sound evidence; monitor it.")


def register(model: ModelVersion, owner: User, environment: str = "production") -> Deployment:
    return deployment_register(
        actor=owner,
        model_version=model,
        environment=environment,
        system="Benefits case management",
        owner=owner,
        deployed_on=timezone.localdate(),
    )


def build_reference_now(model: ModelVersion) -> MonitoringReference:
    """Run the reference job the registration queued (through the real lifecycle)."""
    job = Job.objects.filter(kind="monitoring_reference", target_id=str(model.id)).order_by("-created_at").first()
    if job is not None and job.status == "queued":
        run_inline(job)
    return MonitoringReference.objects.get(model_version=model)


def install_reported_model(model: ModelVersion, frame: pd.DataFrame) -> MonitoringReference:
    """For a model reported without files (no torch): its preprocessing spec where the real one would be, and a
    reference built by the engine from ``frame`` (its training rows)."""
    folder = Path(settings.STORAGE_ROOT) / model.storage_path
    folder.mkdir(parents=True, exist_ok=True)
    spec = {
        "label": "class",
        "classes": CLASSES,
        "numeric": {name: {"mean": 0.0, "std": 1.0, "low": 0.0, "high": 1.0} for name in FEATURES if name in NUMERIC},
        "categorical": {name: [] for name in FEATURES if name not in NUMERIC},
        "feature_order": FEATURES,
    }
    (folder / "preprocess.json").write_text(json.dumps(spec))
    features = {name: "numeric" if name in NUMERIC else "categorical" for name in FEATURES}
    reference = build_reference(frame[FEATURES], features=features, min_cell=10)
    return monitoring_reference_record(model_version=model, reference=reference, rows=len(frame))


PRIVACY = {
    "epsilon": 1.0,
    "delta": 1e-5,
    "noise_source": "csprng-chacha20",
    "steps": 40,
    "noise_multiplier": 1.1,
    "sample_rate": 0.06,
    "accountant": "pld",
}
PASSING = {
    "verdict": "pass",
    "groupings": [],
    "gates": [
        {
            "metric": "demographic_parity_difference",
            "passed": True,
            "value": 0.05,
            "threshold": 0.9,
            "direction": "max",
            "grouping": "sex",
        }
    ],
}
FAILING = {
    "verdict": "fail",
    "groupings": [],
    "gates": [
        {
            "metric": "demographic_parity_difference",
            "passed": False,
            "value": 0.3,
            "threshold": 0.1,
            "direction": "max",
            "grouping": "sex",
        }
    ],
}
TRAIN_ROWS = 1400


def reported_model(
    owner: User,
    version: Any,
    *,
    results: dict[str, Any] | None = None,
    seeded: bool = False,
    non_private: bool = False,
) -> ModelVersion:
    """A model as the worker reports it (figures given, no torch): trained on the first ``TRAIN_ROWS`` rows of
    ``version``, evaluated with ``results`` (passing gates by default), its preprocessing spec and a monitoring
    reference from the same Adult rows in place. ``seeded``: noise drawn from the published seed (no CSPRNG)."""
    run = training_run_request(actor=owner, version=version, spec=run_spec(), non_private=non_private)
    privacy = {key: value for key, value in PRIVACY.items() if not (seeded and key == "noise_source")}
    if non_private:
        privacy = {"private": False}
    model = training_run_succeed(
        run=run,
        privacy=privacy,
        metrics={"validation_accuracy": 0.8},
        split={
            "train": list(range(TRAIN_ROWS)),
            "validation": list(range(TRAIN_ROWS, 1700)),
            "test": list(range(1700, 2000)),
            "sha256": "0" * 64,
        },
        curve=[],
        manifest={"model_sha256": uuid.uuid4().hex * 2, "privacy": privacy},
        storage_path=f"models/reported-{uuid.uuid4().hex}",
        composed=None if non_private else PRIVACY["epsilon"],
    )
    evaluation_record(evaluation=model.evaluations.get(), results=results or PASSING, audit={}, privacy_cost=[])
    install_reported_model(model, adult(0, TRAIN_ROWS))
    return model
