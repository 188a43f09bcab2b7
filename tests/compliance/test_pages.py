"""The compliance pages: progress on the use-case page, the requirements page (filter, evidence, confirm, attach),
the catalogue page, uploads, and 404 for other organisations."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from apps.accounts.models import Membership, Role
from apps.compliance.models import Confirmation, EvidenceLink, Framework
from apps.compliance.selectors import requirement_status
from apps.core.demo import _seed_compliance
from tests.conftest import make_user

pytestmark = pytest.mark.django_db


def requirements_url(usecase, key="gdpr"):
    return reverse("compliance:requirements", args=[usecase.id, key])


def test_the_use_case_page_shows_a_progress_bar_per_framework(client, owner, usecase):
    client.force_login(owner)
    html = client.get(reverse("usecases:detail", args=[usecase.id])).content.decode()
    for name in ("EU AI Act", "GDPR", "ISO/IEC 42001"):
        assert name in html
    assert requirements_url(usecase, "eu-ai-act") in html
    assert 'role="progressbar"' in html


def test_the_requirements_page_filters_by_status(client, auditor, usecase):
    client.force_login(auditor)
    everything = client.get(requirements_url(usecase)).content.decode()
    assert 'id="req-GDPR-35"' in everything and 'id="req-GDPR-9"' in everything
    not_applicable = client.get(requirements_url(usecase), {"status": "not_applicable"}).content.decode()
    assert 'id="req-GDPR-9"' in not_applicable  # no special-category data
    assert 'id="req-GDPR-35"' not in not_applicable
    # Auditors read; they get no confirm or attach forms.
    assert "Confirm GDPR-35" not in everything


def test_evidence_links_lead_to_what_attest_holds(client, owner, usecase):
    client.force_login(owner)
    html = client.get(requirements_url(usecase)).content.decode()
    assert reverse("usecases:detail", args=[usecase.id]) + "#dpia-heading" in html


def test_an_owner_confirms_and_attaches_from_the_page(client, owner, usecase):
    client.force_login(owner)
    response = client.post(reverse("compliance:confirm", args=[usecase.id, "gdpr", "GDPR-35"]))
    assert response.status_code == 302
    assert requirement_status(usecase, "gdpr", "GDPR-35").status == "met"
    client.post(
        reverse("compliance:attach", args=[usecase.id, "gdpr", "GDPR-16"]),
        {"label": "Procedure", "file": SimpleUploadedFile("p.pdf", b"%PDF-1.7 procedure")},
    )
    assert EvidenceLink.objects.get(requirement_code="GDPR-16").filename == "p.pdf"
    assert requirement_status(usecase, "gdpr", "GDPR-16").status == "partly"


def test_a_steward_may_not_confirm(client, steward, usecase):
    client.force_login(steward)
    client.post(reverse("compliance:confirm", args=[usecase.id, "gdpr", "GDPR-35"]))
    assert not Confirmation.objects.exists()


def test_another_organisations_use_case_answers_404(client, outsider, usecase):
    client.force_login(outsider)
    assert client.get(requirements_url(usecase)).status_code == 404
    assert client.post(reverse("compliance:confirm", args=[usecase.id, "gdpr", "GDPR-35"])).status_code == 404
    assert client.post(reverse("compliance:statement", args=[usecase.id, "gdpr"])).status_code == 404
    assert not Confirmation.objects.exists()


def test_the_catalogue_page_lists_requirements_with_their_rule(client, owner):
    client.force_login(owner)
    html = client.get(reverse("compliance:framework", args=["eu-ai-act"])).content.decode()
    assert 'id="req-AIA-27"' in html and "eur-lex.europa.eu" in html


def test_an_admin_uploads_a_policy_from_the_frameworks_page(client, admin_user, org):
    client.force_login(admin_user)
    response = client.post(
        reverse("compliance:framework_upload"),
        {
            "file": SimpleUploadedFile("p.csv", b"id,title,evidence\nPOL-1,Human review,board_decision\n"),
            "key": "our-policy",
            "name": "Our policy",
            "kind": "policy",
        },
    )
    assert response.status_code == 302
    assert Framework.objects.get(organisation=org, key="our-policy").kind == "policy"


def test_the_review_page_lists_open_requirements(client, board_member, usecase):
    from apps.usecases.services import usecase_transition
    from tests.ethics.factories import open_review

    usecase = usecase_transition(actor=usecase.owner, usecase=usecase, action="submit")
    review = open_review(usecase)
    client.force_login(board_member)
    html = client.get(reverse("ethics:review", args=[review.id])).content.decode()
    assert "Open compliance requirements" in html
    assert "GDPR-16" in html  # nothing links a rectification procedure yet


def test_the_demo_confirms_what_attest_holds_and_signs_the_statement(org, usecase, settings, tmp_path):
    settings.STORAGE_ROOT = tmp_path
    admin = make_user("admin", organisation=org, roles=(Role.ADMIN,))
    assert Membership.objects.filter(user=admin).exists()
    type(usecase).objects.filter(pk=usecase.pk).update(status="approved")
    confirmed = _seed_compliance(org)
    assert confirmed > 0
    assert requirement_status(usecase, "gdpr", "GDPR-35").status == "met"
    from apps.reports.models import Report

    assert Report.objects.get(kind="compliance").status == "ready"
