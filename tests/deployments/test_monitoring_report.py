"""The post-market monitoring report (EU AI Act Art. 72) of a deployment over a period: the window results, charts,
alerts and their handling, feedback counted by category (never its text), signed and verifiable like every report;
and Annex IV section 9 filled from the monitoring plan and the deployments' results."""

from __future__ import annotations

import json
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from apps.core.errors import ValidationFailed
from apps.deployments.models import Alert, Feedback, RetrainingRequest
from apps.deployments.services import usecase_set_monitoring_plan
from apps.reports.models import Report
from apps.reports.pdf import embedded_evidence
from apps.reports.services import report_request, report_verify
from apps.training.models import ModelVersion
from tests.conftest import run_inline
from tests.deployments.pagekit import PLAN, make_alert, make_deployment, make_windows

pytestmark = pytest.mark.django_db


def pdftotext(data: bytes) -> str:
    return subprocess.run(
        ["pdftotext", "-layout", "-", "-"], input=data, capture_output=True, check=True
    ).stdout.decode()


def issue(actor, subject, period=None, kind=Report.Kind.MONITORING):
    report = report_request(actor=actor, kind=kind, subject=subject, period=period)
    run_inline(report.job_id)
    report.refresh_from_db()
    return report


@pytest.fixture
def monitored(approved_model, owner):
    deployment = make_deployment(approved_model, owner=owner)
    windows = make_windows(deployment, 8, insufficient=(2,))
    drift = make_alert(deployment, windows[5], "data_drift:psi:hours-per-week")
    Alert.objects.filter(pk=drift.pk).update(
        status="acknowledged", acknowledged_by=owner, acknowledged_at=windows[5].ends_at + timedelta(hours=3)
    )
    make_alert(deployment, windows[6], "fairness:false_positive_rate:sex=Female", severity="warning")
    for category in ("unfair", "unfair", "wrong_decision"):
        Feedback.objects.create(
            organisation=deployment.organisation,
            deployment=deployment,
            source="public",
            kind="contestation",
            body="My name is Jane Example and I was refused.",
            contact="jane@example.org",
            category=category,
            status="triaged",
        )
    RetrainingRequest.objects.create(
        organisation=deployment.organisation,
        deployment=deployment,
        usecase=deployment.usecase,
        reason="Hours per week drifted.",
        alert=drift,
        opened_by=owner,
    )
    return deployment, windows


def test_the_monitoring_report_holds_the_periods_windows_alerts_and_counts_and_verifies(
    monitored, owner, settings, tmp_path
):
    deployment, windows = monitored
    period = (windows[2].starts_at.date(), timezone.localdate())  # weeks 3 to 8
    report = issue(owner, deployment, period)
    assert report.status == Report.Status.READY and report.pages >= 3
    data = (Path(settings.STORAGE_ROOT) / report.storage_path).read_bytes()

    # Signed and verifiable like every report: this portal issued it, unchanged, valid signature (pdfsig agrees).
    verdict = report_verify(data)
    assert verdict["authentic"] is True and verdict["report"].pk == report.pk
    path = tmp_path / "monitoring.pdf"
    path.write_bytes(data)
    assert "Signature is Valid" in subprocess.run(["pdfsig", str(path)], capture_output=True, text=True).stdout
    changed = bytearray(data)
    changed[len(changed) // 2] ^= 1
    assert report_verify(bytes(changed))["authentic"] is False

    # The evidence embedded in the file: the period's windows (weeks 3 to 8) with every result, the alerts.
    evidence = embedded_evidence(data)
    assert evidence["report"]["period"] == {"from": period[0].isoformat(), "to": period[1].isoformat()}
    assert [w["starts_at"] for w in evidence["windows"]] == [w.starts_at.isoformat() for w in windows[2:]]
    week6 = evidence["windows"][3]
    assert {r["monitor"]: r["status"] for r in week6["results"]}["data_drift:psi:hours-per-week"] == "fail"
    assert {a["monitor"] for a in evidence["alerts"]} == {
        "data_drift:psi:hours-per-week",
        "fairness:false_positive_rate:sex=Female",
    }
    assert evidence["plan"] == {"sha256": deployment.plan_sha256, "spec": deployment.plan}
    assert sorted((f["category"], f["count"]) for f in evidence["feedback"]) == [("unfair", 2), ("wrong_decision", 1)]

    text = pdftotext(data)
    assert "Post-market monitoring report" in text
    for window in windows[2:]:
        assert f"{window.starts_at:%d %b %Y}" in text
    assert f"{windows[1].starts_at:%d %b %Y} to" not in text  # week 2 is before the period
    assert "insufficient data" in text  # week 3's drift monitors
    assert "Unfair treatment" in text and "Decision believed wrong" in text
    # Counted by category: nothing a person typed on the public page, nor their contact, is in the document.
    assert "Jane Example" not in text and "jane@example.org" not in text
    assert "Jane Example" not in json.dumps(evidence) and "jane@example.org" not in json.dumps(evidence)
    assert f"by {owner.display_name}" in text  # the drift alert's handling: acknowledged, by whom


def test_reports_of_one_period_supersede_each_other_and_other_periods_stand_apart(monitored, owner):
    deployment, windows = monitored
    today = timezone.localdate()
    march = issue(owner, deployment, (windows[0].starts_at.date(), today))
    again = issue(owner, deployment, (windows[0].starts_at.date(), today))
    other = issue(owner, deployment, (windows[4].starts_at.date(), today))
    march.refresh_from_db()
    assert march.superseded_by_id == again.id and again.version == 2
    assert other.version == 1 and other.superseded_by_id is None
    with pytest.raises(ValidationFailed):
        report_request(actor=owner, kind=Report.Kind.MONITORING, subject=deployment)  # no period
    with pytest.raises(ValidationFailed):
        report_request(
            actor=owner, kind=Report.Kind.MONITORING, subject=deployment, period=(today, today - timedelta(days=1))
        )
    with pytest.raises(ValidationFailed):
        report_request(
            actor=owner, kind=Report.Kind.MODEL_CARD, subject=deployment.model_version, period=(today, today)
        )


def test_annex_iv_section_nine_shows_the_plan_and_each_deployments_monitoring(monitored, owner, settings):
    from pathlib import Path

    from apps.reports.content import annex_iv

    deployment, windows = monitored
    usecase_set_monitoring_plan(actor=owner, usecase=deployment.usecase, plan=PLAN)
    model = ModelVersion.objects.get(pk=deployment.model_version_id)  # its use case as saved, with the plan
    section = next(s for s in annex_iv(model).sections if s["heading"] == "Post-market monitoring plan")
    tables = [b for b in section["blocks"] if b["type"] == "table"]
    plan_table = next(t for t in tables if t["columns"][0]["label"] == "Monitor")
    drift = next(row for row in plan_table["rows"] if row[0]["value"] == "Data drift")
    assert drift[1]["value"] == "yes" and drift[2]["value"] == "ks pvalue 0.001, psi alert 0.25, psi warn 0.1"
    deployments = next(t for t in tables if t["columns"][0]["label"] == "Environment")
    (row,) = deployments["rows"]
    cells = [cell["value"] for cell in row]
    assert cells[0] == "production" and cells[5] == "8"  # eight windows evaluated
    assert cells[6] == f"{windows[-1].starts_at:%d %b %Y}: alert" and cells[7] == "2"  # last window failed; 2 open

    report = issue(owner, deployment.model_version, kind=Report.Kind.ANNEX_IV)
    text = pdftotext((Path(settings.STORAGE_ROOT) / report.storage_path).read_bytes())
    assert "Deployments and their monitoring results" in text
