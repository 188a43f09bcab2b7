"""The signed compliance statement: a PDF that verifies and carries each requirement's status and evidence hashes."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess

import pytest

from apps.compliance.models import FrameworkAssessment
from apps.compliance.services import compliance_statement_request, requirement_confirm
from apps.core.errors import PermissionDenied
from apps.reports.pdf import embedded_evidence
from apps.reports.services import report_verify
from tests.conftest import run_inline

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def storage(settings, tmp_path):
    settings.STORAGE_ROOT = tmp_path


def issue_statement(actor, usecase, framework_key):
    report = compliance_statement_request(actor=actor, usecase=usecase, framework_key=framework_key)
    run_inline(report.job_id)
    report.refresh_from_db()
    return report


def test_the_statement_verifies_and_lists_evidence_hashes(usecase, owner, settings):
    requirement_confirm(actor=owner, usecase=usecase, framework_key="gdpr", requirement_code="GDPR-35")
    report = issue_statement(owner, usecase, "gdpr")
    assert report.status == "ready"
    assert report.usecase_id == usecase.id
    data = (settings.STORAGE_ROOT / report.storage_path).read_bytes()
    assert report_verify(data)["authentic"] is True

    evidence = embedded_evidence(data)
    rows = {row["id"]: row for row in evidence["requirements"]}
    dpia_hash = hashlib.sha256(json.dumps(usecase.dpia, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    assert rows["GDPR-35"]["status"] == "met"
    assert rows["GDPR-35"]["evidence"][0]["sha256"] == dpia_hash
    assert rows["GDPR-35"]["confirmation"]["by"] == owner.display_name
    assert rows["GDPR-9"]["status"] == "not_applicable"  # no special-category data in this use case
    assert evidence["framework"]["key"] == "gdpr"
    assert evidence["framework"]["sha256"] == FrameworkAssessment.objects.get().framework.current.sha256

    if shutil.which("pdftotext"):
        text = subprocess.run(["pdftotext", "-layout", "-", "-"], input=data, capture_output=True).stdout.decode()
        assert "GDPR-35" in text and "Compliance statement" in text


def test_a_second_statement_supersedes_the_first_for_the_same_framework(usecase, owner):
    first = issue_statement(owner, usecase, "gdpr")
    second = issue_statement(owner, usecase, "gdpr")
    other = issue_statement(owner, usecase, "eu-ai-act")
    first.refresh_from_db()
    assert (first.version, second.version, other.version) == (1, 2, 1)
    assert first.superseded_by_id == second.id
    assert FrameworkAssessment.objects.filter(usecase=usecase).count() == 2


def test_auditors_read_but_do_not_issue(usecase, auditor):
    with pytest.raises(PermissionDenied):
        compliance_statement_request(actor=auditor, usecase=usecase, framework_key="gdpr")
