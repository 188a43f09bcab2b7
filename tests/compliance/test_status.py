"""Requirement statuses: evidence Attest holds, confirmation bound to the evidence, reopening when it changes or
expires, crosswalk reuse, and progress in constant queries."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.compliance import selectors
from apps.compliance.loader import load_crosswalk
from apps.compliance.models import Confirmation
from apps.compliance.selectors import progress_for, progress_for_many, requirement_status
from apps.compliance.services import evidence_link_add, requirement_confirm
from apps.core.errors import InvalidState, NotFound, PermissionDenied
from apps.usecases.services import usecase_update

pytestmark = pytest.mark.django_db


def canonical_sha256(value):
    return hashlib.sha256(json.dumps(value, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def test_the_dpia_attest_holds_is_linked_with_its_hash(usecase):
    status = requirement_status(usecase, "gdpr", "GDPR-35")
    assert status.status == "partly"  # evidence present, nobody has confirmed it yet
    assert [item.kind for item in status.evidence] == ["dpia"]
    assert status.evidence[0].sha256 == canonical_sha256(usecase.dpia)


def test_a_requirement_without_evidence_is_not_met(usecase):
    status = requirement_status(usecase, "gdpr", "GDPR-16")  # rectification: only a linked document satisfies it
    assert status.status == "not_met"
    assert status.evidence == []


def test_a_confirmed_requirement_is_met_and_says_by_whom(usecase, owner):
    events = AuditEvent.objects.count()
    requirement_confirm(actor=owner, usecase=usecase, framework_key="gdpr", requirement_code="GDPR-35")
    assert AuditEvent.objects.count() == events + 1
    status = requirement_status(usecase, "gdpr", "GDPR-35")
    assert status.status == "met"
    assert owner.display_name in status.reason


def test_changed_evidence_reopens_the_requirement(usecase, owner):
    requirement_confirm(actor=owner, usecase=usecase, framework_key="gdpr", requirement_code="GDPR-35")
    dpia = dict(usecase.dpia)
    dpia["consultation"] = {"consultation": "Claimant panel, DPO, security team, and the ombudsman."}
    usecase = usecase_update(actor=owner, usecase=usecase, data={"dpia": dpia})

    status = requirement_status(usecase, "gdpr", "GDPR-35")
    assert status.status == "partly"
    assert status.reopened
    assert "changed" in status.reason
    # Confirming again binds the new evidence.
    requirement_confirm(actor=owner, usecase=usecase, framework_key="gdpr", requirement_code="GDPR-35")
    assert requirement_status(usecase, "gdpr", "GDPR-35").status == "met"


def test_evidence_added_after_confirmation_does_not_reopen_it(usecase, owner):
    requirement_confirm(actor=owner, usecase=usecase, framework_key="gdpr", requirement_code="GDPR-35")
    evidence_link_add(
        actor=owner,
        usecase=usecase,
        framework_key="gdpr",
        requirement_code="GDPR-35",
        label="DPO's opinion on the DPIA",
        url="https://intranet.example.org/dpo/opinion-17",
    )
    status = requirement_status(usecase, "gdpr", "GDPR-35")
    assert status.status == "met"
    assert len(status.evidence) == 2
    # The person may confirm again to bind the larger set; once is enough otherwise.
    requirement_confirm(actor=owner, usecase=usecase, framework_key="gdpr", requirement_code="GDPR-35")
    with pytest.raises(InvalidState):
        requirement_confirm(actor=owner, usecase=usecase, framework_key="gdpr", requirement_code="GDPR-35")


def test_a_new_signed_version_of_the_evidence_reopens_the_requirement(usecase, owner, settings, tmp_path):
    from apps.reports.services import report_request
    from tests.conftest import run_inline

    settings.STORAGE_ROOT = tmp_path
    first = report_request(actor=owner, kind="dpia", subject=usecase)
    run_inline(first.job_id)
    requirement_confirm(actor=owner, usecase=usecase, framework_key="gdpr", requirement_code="GDPR-35")
    assert requirement_status(usecase, "gdpr", "GDPR-35").status == "met"
    second = report_request(actor=owner, kind="dpia", subject=usecase)
    run_inline(second.job_id)  # supersedes the first: the confirmed PDF is no longer the current evidence
    status = requirement_status(usecase, "gdpr", "GDPR-35")
    assert status.status == "partly" and status.reopened


def test_expired_evidence_reopens_the_requirement(usecase, owner, monkeypatch):
    today = timezone.localdate()
    evidence_link_add(
        actor=owner,
        usecase=usecase,
        framework_key="gdpr",
        requirement_code="GDPR-16",
        label="Rectification procedure",
        url="https://intranet.example.org/procedures/rectification",
        expires_on=today + timedelta(days=30),
    )
    requirement_confirm(actor=owner, usecase=usecase, framework_key="gdpr", requirement_code="GDPR-16")
    assert requirement_status(usecase, "gdpr", "GDPR-16").status == "met"

    monkeypatch.setattr(selectors.timezone, "localdate", lambda: today + timedelta(days=31))
    status = requirement_status(usecase, "gdpr", "GDPR-16")
    assert status.status == "not_met"  # its only evidence lapsed
    assert status.reopened
    assert "expired" in status.reason
    assert [item.label for item in status.expired] == ["Rectification procedure"]


def test_an_uploaded_file_is_kept_as_its_sha256(usecase, owner):
    content = b"%PDF-1.7 rectification procedure v3"
    evidence_link_add(
        actor=owner,
        usecase=usecase,
        framework_key="gdpr",
        requirement_code="GDPR-16",
        label="Procedure",
        file_name="procedure.pdf",
        file_bytes=content,
    )
    status = requirement_status(usecase, "gdpr", "GDPR-16")
    assert [item.sha256 for item in status.evidence] == [hashlib.sha256(content).hexdigest()]
    assert status.evidence[0].source == "upload"


def test_one_piece_of_evidence_satisfies_requirements_in_several_frameworks(usecase, owner, tmp_path):
    crosswalk = tmp_path / "gdpr--eu-ai-act.yaml"
    crosswalk.write_text(
        "crosswalk:\n  from: eu-ai-act\n  to: gdpr\n  source: test mapping\n"
        "mappings:\n  - from: AIA-73.2\n    to: [GDPR-16]\n"
    )
    assert load_crosswalk(crosswalk) == 1
    evidence_link_add(
        actor=owner,
        usecase=usecase,
        framework_key="eu-ai-act",
        requirement_code="AIA-73.2",
        label="Incident and correction procedure",
        url="https://intranet.example.org/procedures/incidents",
    )
    requirement_confirm(actor=owner, usecase=usecase, framework_key="eu-ai-act", requirement_code="AIA-73.2")

    mapped = requirement_status(usecase, "gdpr", "GDPR-16")
    assert mapped.status == "met"
    assert mapped.via == "eu-ai-act AIA-73.2"
    assert [item.label for item in mapped.evidence] == ["Incident and correction procedure"]
    assert not Confirmation.objects.filter(framework_key="gdpr").exists()  # nobody confirmed it twice


def test_crosswalk_reuse_ends_when_the_partner_reopens(usecase, owner, tmp_path, monkeypatch):
    crosswalk = tmp_path / "x.yaml"
    crosswalk.write_text(
        "crosswalk:\n  from: eu-ai-act\n  to: gdpr\n  source: test\nmappings:\n  - from: AIA-73.2\n    to: GDPR-16\n"
    )
    load_crosswalk(crosswalk)
    today = timezone.localdate()
    evidence_link_add(
        actor=owner,
        usecase=usecase,
        framework_key="eu-ai-act",
        requirement_code="AIA-73.2",
        label="Procedure",
        url="https://intranet.example.org/p",
        expires_on=today + timedelta(days=5),
    )
    requirement_confirm(actor=owner, usecase=usecase, framework_key="eu-ai-act", requirement_code="AIA-73.2")
    monkeypatch.setattr(selectors.timezone, "localdate", lambda: today + timedelta(days=6))
    assert requirement_status(usecase, "gdpr", "GDPR-16").status == "not_met"


def test_not_applicable_requirements_cannot_be_confirmed(make_usecase, owner):
    minimal = make_usecase(risk_tier="minimal", annex_iii_area="")
    status = requirement_status(minimal, "eu-ai-act", "AIA-9")
    assert status.status == "not_applicable"
    assert "high" in status.reason
    with pytest.raises(InvalidState):
        requirement_confirm(actor=owner, usecase=minimal, framework_key="eu-ai-act", requirement_code="AIA-9")


def test_confirming_needs_evidence_and_the_right_role(usecase, owner, auditor, steward, outsider):
    with pytest.raises(InvalidState):
        requirement_confirm(actor=owner, usecase=usecase, framework_key="gdpr", requirement_code="GDPR-16")
    with pytest.raises(PermissionDenied):
        requirement_confirm(actor=auditor, usecase=usecase, framework_key="gdpr", requirement_code="GDPR-35")
    with pytest.raises(PermissionDenied):
        requirement_confirm(actor=steward, usecase=usecase, framework_key="gdpr", requirement_code="GDPR-35")
    with pytest.raises(NotFound):
        requirement_confirm(actor=outsider, usecase=usecase, framework_key="gdpr", requirement_code="GDPR-35")


def test_progress_counts_match_the_statuses(usecase, owner):
    requirement_confirm(actor=owner, usecase=usecase, framework_key="gdpr", requirement_code="GDPR-35")
    gdpr = next(p for p in progress_for(usecase) if p["framework"] == "gdpr")
    statuses = selectors.requirement_statuses(usecase, "gdpr")
    assert gdpr["total"] == len(statuses) == gdpr["met"] + gdpr["partly"] + gdpr["not_met"] + gdpr["not_applicable"]
    assert gdpr["met"] == 1
    # Personal data, no special category, no automated decisions: Art. 9 and Art. 22 do not apply.
    not_applicable = {s.code for s in statuses if s.status == "not_applicable"}
    assert {"GDPR-9", "GDPR-22"} <= not_applicable
    assert gdpr["percent"] == round(100 / (gdpr["total"] - gdpr["not_applicable"]))
    assert [p["framework"] for p in progress_for(usecase)][:3] == ["eu-ai-act", "gdpr", "iso-42001"]


def test_progress_for_many_takes_constant_queries(make_usecase):
    few = [make_usecase(title=f"System {n}") for n in range(2)]
    with CaptureQueriesContext(connection) as small:
        progress_for_many(few)
    many = few + [make_usecase(title=f"System {n}") for n in range(2, 8)]
    with CaptureQueriesContext(connection) as large:
        result = progress_for_many(many)
    assert len(large.captured_queries) == len(small.captured_queries)
    assert set(result) == {u.id for u in many}
