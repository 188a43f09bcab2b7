"""Builders for the tests of alerts, feedback, webhooks and the retraining loop (engineer B).

A deployment is made with the real services end to end -- training request, the worker's report of the run (its
figures given, as the worker hands them over, so no torch), an evaluation computed by the real evaluation engine on
synthetic scores, the board's approval, ``deployment_register`` -- so the alerts and the loop see what production
would give them. Monitoring windows are rows; their results are shaped like ``evaluate_window``'s.
"""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest
from django.utils import timezone

from apps.deployments.models import Deployment, MonitoringWindow
from apps.deployments.services import deployment_register
from apps.ethics.services import review_request_deployment, vote_cast
from apps.evaluation.models import Evaluation
from apps.evaluation.services import evaluation_record
from apps.training.models import ModelVersion, TrainingRun
from apps.training.services import training_run_request, training_run_succeed
from tests.ethics.factories import set_board_rules
from tests.training.conftest import run_spec
from workers.engine.evaluation.evaluate import Policy, evaluate

_SHA = itertools.count(1)


def privacy(epsilon: float) -> dict[str, Any]:
    return {
        "epsilon": epsilon,
        "delta": 1e-5,
        "noise_source": "csprng-chacha20",
        "steps": 40,
        "noise_multiplier": 1.1,
        "sample_rate": 0.06,
        "accountant": "pld",
    }


def engine_results(*, seed: int, female_false_positives: float, threshold: float = 0.9) -> dict[str, Any]:
    """Evaluation results from the real engine on synthetic scores: the female group's false-positive rate is about
    ``female_false_positives``, the male group's about 0.1."""
    rng = np.random.default_rng(seed)
    n = 800
    sex = np.where(rng.random(n) < 0.5, "Female", "Male")
    y_true = (rng.random(n) < 0.3).astype(int)
    false_positive = np.where(sex == "Female", female_false_positives, 0.1)
    y_pred = np.where(y_true == 1, rng.random(n) < 0.75, rng.random(n) < false_positive).astype(int)
    scores = np.clip(y_pred * 0.6 + rng.random(n) * 0.35, 0, 1)
    return evaluate(
        y_true=y_true,
        y_score=scores,
        sensitive=pd.DataFrame({"sex": sex}),
        policy=Policy(
            sensitive_attributes=["sex"],
            gates=[{"metric": "demographic_parity_difference", "threshold": threshold}],
            min_group_size=30,
            intersections=False,
        ),
        seed=seed,
        resamples=50,
        y_pred=y_pred,
    )


def report_trained(
    run: TrainingRun, *, epsilon: float = 1.0, seed: int = 1, female_fpr: float = 0.1, threshold: float = 0.9
) -> ModelVersion:
    """The worker's report of a finished run, then its held-out evaluation's, as the services receive them."""
    model = training_run_succeed(
        run=run,
        privacy=privacy(epsilon),
        metrics={"validation_accuracy": 0.8},
        split={"train": [], "validation": [], "test": [], "sha256": "0" * 64},
        curve=[],
        manifest={"model_sha256": f"{next(_SHA):064x}", "privacy": privacy(epsilon)},
        storage_path="models/none",
        composed=epsilon,
    )
    evaluation = Evaluation.objects.get(model_version=model)
    evaluation_record(
        evaluation=evaluation,
        results=engine_results(seed=seed, female_false_positives=female_fpr, threshold=threshold),
        audit={},
        privacy_cost=[],
    )
    return model


def approve(model: ModelVersion, *, owner, member) -> None:
    """The board (a quorum of one, settling at once) approves the model for deployment on ``member``'s vote."""
    set_board_rules(model.organisation, quorum=1, decides="settled")
    review = review_request_deployment(actor=owner, model_version=model)
    vote_cast(actor=member, review=review, choice="approve", reason="Sound evidence; monitor it.")


def deploy(model: ModelVersion, *, owner, environment: str = "production") -> Deployment:
    return deployment_register(
        actor=owner,
        model_version=model,
        environment=environment,
        system="Benefits case management",
        owner=owner,
        deployed_on=timezone.localdate(),
    )


@pytest.fixture
def deployed(org, owner, board_member, prepared_version) -> Deployment:
    """An active production deployment of a private model the board approved on ``board_member``'s vote."""
    run = training_run_request(actor=owner, version=prepared_version, spec=run_spec(target_epsilon=1.0))
    model = report_trained(run)
    approve(model, owner=owner, member=board_member)
    return deploy(model, owner=owner)


def window(deployment: Deployment, week: int, *, rows: int = 400) -> MonitoringWindow:
    starts = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(weeks=10 - week)
    return MonitoringWindow.objects.create(
        organisation=deployment.organisation,
        deployment=deployment,
        starts_at=starts,
        ends_at=starts + timedelta(weeks=1),
        rows=rows,
    )


def result(monitor: str, status: str, value: float | None = 0.41, threshold: float = 0.25) -> dict[str, Any]:
    family, _, subject = monitor.partition(":")
    return {
        "monitor": monitor,
        "family": family,
        "subject": subject,
        "status": status,
        "severity": {"fail": "critical", "warn": "warning"}.get(status, "info"),
        "value": value,
        "threshold": threshold,
        "interval": None,
        "rows": 400,
        "message": f"{monitor} {status}",
    }
