"""Fixtures and builders for the deployment pages' tests (engineer C): an approved model, deployments (through the
service), windows whose results look like the monitoring engine's, and alerts on them.

Windows and alerts are written with the ORM here because these tests are about what pages and reports show for any
number of them (forty windows through the batch jobs would take minutes); the services that produce them are tested
with the services, and the Chromium journey runs the whole path."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.deployments.models import Alert, Deployment, MonitoringWindow
from apps.ethics.services import review_request_deployment, vote_cast
from tests.ethics.factories import set_board_rules

FEATURES = ("age", "hours-per-week")
PLAN = {
    "window": "week",
    "min_rows": 50,
    "min_labelled": 30,
    "keep_raw_rows": False,
    "raw_retention_days": 30,
    "monitors": {
        "data_drift": {"enabled": True, "psi_warn": 0.1, "psi_alert": 0.25, "ks_pvalue": 0.001},
        "prediction_drift": {"enabled": True, "psi_alert": 0.25},
        "performance": {"enabled": True, "metric": "accuracy", "max_drop": 0.05},
        "fairness": {"enabled": True, "max_increase": 0.05},
        "data_quality": {"enabled": False},
        "privacy": {"enabled": False},
    },
}


@pytest.fixture
def approved_model(org, owner, board_member, trained_model):
    """The trained model, approved for deployment by the board (one vote decides under a quorum of one)."""
    set_board_rules(org, quorum=1, decides="settled")
    review = review_request_deployment(actor=owner, model_version=trained_model)
    vote_cast(actor=board_member, review=review, choice="approve", reason="Sound evidence; monitor it.")
    review.refresh_from_db()
    assert review.status == "decided" and review.decision.approved
    return trained_model


def make_deployment(model, *, owner, environment="production", system="Case system") -> Deployment:
    """Deploy through the service (its monitoring reference job is queued, not run: pages need none)."""
    from apps.deployments.services import deployment_register

    return deployment_register(
        actor=owner,
        model_version=model,
        environment=environment,
        system=system,
        owner=owner,
        deployed_on=timezone.localdate() - timedelta(days=70),
    )


def results_for(week: int, *, drift_from: int = 6, insufficient: tuple[int, ...] = ()) -> list[dict]:
    """Results shaped like ``evaluate_window``'s: hours-per-week drifts from ``drift_from``; the female group's FPR
    rises with it; weeks in ``insufficient`` had too few rows."""
    if week in insufficient:
        return [
            {
                "monitor": f"data_drift:psi:{f}",
                "family": "data_drift",
                "subject": f,
                "status": "insufficient",
                "severity": "info",
                "value": None,
                "threshold": 0.25,
                "interval": None,
                "rows": 12,
                "message": "12 rows",
            }
            for f in FEATURES
        ] + [
            {
                "monitor": f"fairness:false_positive_rate:sex={g}",
                "family": "fairness",
                "subject": f"sex={g}",
                "status": "insufficient",
                "severity": "info",
                "value": None,
                "threshold": 0.05,
                "interval": None,
                "rows": 6,
                "message": "too few labelled rows",
            }
            for g in ("Female", "Male")
        ]
    drifted = week >= drift_from
    psi = {"age": 0.02 + 0.001 * week, "hours-per-week": 0.41 if drifted else 0.03}
    fpr_female = 0.31 if drifted else 0.08
    return [
        {
            "monitor": f"data_drift:psi:{f}",
            "family": "data_drift",
            "subject": f,
            "status": "fail" if psi[f] > 0.25 else "pass",
            "severity": "critical" if psi[f] > 0.25 else "info",
            "value": psi[f],
            "threshold": 0.25,
            "interval": None,
            "rows": 400,
            "message": "",
        }
        for f in FEATURES
    ] + [
        {
            "monitor": "prediction_drift:psi",
            "family": "prediction_drift",
            "subject": "score",
            "status": "pass",
            "severity": "info",
            "value": 0.04,
            "threshold": 0.25,
            "interval": None,
            "rows": 400,
            "message": "",
        },
        {
            "monitor": "performance:accuracy",
            "family": "performance",
            "subject": "overall",
            "status": "pass",
            "severity": "info",
            "value": 0.81,
            "threshold": 0.76,
            "interval": [0.77, 0.85],
            "rows": 380,
            "message": "",
        },
        {
            "monitor": "fairness:false_positive_rate:sex=Female",
            "family": "fairness",
            "subject": "sex=Female",
            "status": "fail" if drifted else "pass",
            "severity": "critical" if drifted else "info",
            "value": fpr_female,
            "threshold": 0.13,
            "interval": [fpr_female - 0.04, fpr_female + 0.05],
            "rows": 150,
            "message": "",
        },
        {
            "monitor": "fairness:false_positive_rate:sex=Male",
            "family": "fairness",
            "subject": "sex=Male",
            "status": "pass",
            "severity": "info",
            "value": 0.09,
            "threshold": 0.13,
            "interval": [0.06, 0.12],
            "rows": 230,
            "message": "",
        },
    ]


def make_windows(deployment, weeks: int, *, drift_from: int = 6, insufficient=()) -> list[MonitoringWindow]:
    """``weeks`` evaluated weekly windows ending last Monday, oldest first, numbered from 1."""
    today = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
    last_monday = today - timedelta(days=today.weekday())
    windows = []
    for week in range(1, weeks + 1):
        starts = last_monday - timedelta(weeks=weeks - week + 1)
        windows.append(
            MonitoringWindow.objects.create(
                organisation=deployment.organisation,
                deployment=deployment,
                starts_at=starts,
                ends_at=starts + timedelta(weeks=1),
                status=MonitoringWindow.Status.EVALUATED,
                rows=12 if week in insufficient else 400,
                labelled_rows=6 if week in insufficient else 380,
                results=results_for(week, drift_from=drift_from, insufficient=insufficient),
                evaluated_at=starts + timedelta(weeks=1, hours=1),
            )
        )
    return windows


def make_alert(deployment, window, monitor, *, severity="critical", status="open") -> Alert:
    family = monitor.split(":")[0]
    return Alert.objects.create(
        organisation=deployment.organisation,
        deployment=deployment,
        monitor=monitor,
        family=family,
        severity=severity,
        status=status,
        title=f"{family.replace('_', ' ').capitalize()}: {monitor.split(':', 1)[1]} ({deployment.environment})",
        detail={"status": "fail", "value": 0.41, "threshold": 0.25, "rows": 400},
        window=window,
    )
