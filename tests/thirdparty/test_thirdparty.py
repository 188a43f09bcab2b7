"""Third-party models: who records them, what is kept of their documentation, and how they enter the review path."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from apps.audit.models import AuditEvent
from apps.core.errors import InvalidState, NotFound, PermissionDenied, ValidationFailed
from apps.ethics.bindings import bindings_for
from apps.ethics.models import ReviewRequest
from apps.thirdparty.models import ThirdPartyModel
from apps.thirdparty.selectors import review_overdue, third_party_models_for_usecases
from apps.thirdparty.services import (
    thirdparty_record_documentation,
    thirdparty_register,
    thirdparty_set_status,
    thirdparty_update,
)
from apps.usecases.services import usecase_create, usecase_transition
from tests.ethics.factories import open_review
from tests.usecases.factories import usecase_data

pytestmark = pytest.mark.django_db

SUPPLIER = "Northwind Language Systems"
DATA = {
    "supplier": SUPPLIER,
    "name": "Quill hosted language model",
    "version": "2026-09",
    "kind": "foundation",
    "intended_use": "Drafts decision letters a caseworker edits and signs; never decides.",
    "licence": "Commercial API terms",
    "data_location": "EU (Frankfurt)",
    "contractual_terms": "DPA signed; inputs not used for training; 30-day retention.",
}
DOCUMENT = b"%PDF-1.7 Quill model card and system documentation, release 2026-09"


@pytest.fixture
def usecase(org, owner):
    return usecase_create(actor=owner, organisation=org, data=usecase_data())


@pytest.fixture
def vendor_model(usecase, owner):
    return thirdparty_register(actor=owner, usecase=usecase, data=dict(DATA))


def test_the_use_cases_owner_records_a_model_with_one_event_that_holds_no_typed_text(usecase, owner):
    before = AuditEvent.objects.count()
    model = thirdparty_register(actor=owner, usecase=usecase, data=dict(DATA))
    assert (model.supplier, model.version, model.kind, model.status) == (SUPPLIER, "2026-09", "foundation", "active")
    events = list(AuditEvent.objects.order_by("id")[before:])
    assert [e.action for e in events] == ["thirdparty.register"]
    stored = json.dumps([events[0].before, events[0].after])
    assert SUPPLIER not in stored and "Frankfurt" not in stored and "DPA signed" not in stored


@pytest.mark.parametrize("persona", ["steward", "board_member", "auditor"])
def test_other_roles_of_the_organisation_may_not_record_one(persona, usecase, request):
    with pytest.raises(PermissionDenied):
        thirdparty_register(actor=request.getfixturevalue(persona), usecase=usecase, data=dict(DATA))


def test_another_organisations_admin_is_told_the_use_case_does_not_exist(usecase, outsider):
    with pytest.raises(NotFound):
        thirdparty_register(actor=outsider, usecase=usecase, data=dict(DATA))


def test_an_admin_records_for_a_use_case_someone_else_owns(usecase, admin_user):
    assert thirdparty_register(actor=admin_user, usecase=usecase, data=dict(DATA)).usecase_id == usecase.id


def test_missing_and_unknown_fields_are_refused_with_each_field_named(usecase, owner):
    with pytest.raises(ValidationFailed) as refused:
        thirdparty_register(actor=owner, usecase=usecase, data={"supplier": "X", "colour": "red"})
    assert "colour" in refused.value.details
    with pytest.raises(ValidationFailed) as refused:
        thirdparty_register(actor=owner, usecase=usecase, data={"supplier": "X"})
    assert set(refused.value.details) == {"name", "version", "intended_use"}
    assert not ThirdPartyModel.objects.exists()


def test_an_uploaded_document_is_kept_as_its_sha256(vendor_model, owner):
    model = thirdparty_record_documentation(actor=owner, model=vendor_model, content=DOCUMENT, file_name="quill.pdf")
    assert model.documentation_sha256 == hashlib.sha256(DOCUMENT).hexdigest()
    assert model.documentation_name == "quill.pdf"
    assert model.documentation_url == ""
    assert model.documentation_received_on == timezone.localdate()
    event = AuditEvent.objects.order_by("-id").filter(action="thirdparty.documentation").get()
    assert event.after["documentation_sha256"] == hashlib.sha256(DOCUMENT).hexdigest()


def test_a_link_needs_https_and_the_sha256_of_the_document_behind_it(vendor_model, owner):
    with pytest.raises(ValidationFailed) as refused:
        thirdparty_record_documentation(actor=owner, model=vendor_model, url="https://vendor.example/card.pdf")
    assert "sha256" in refused.value.details
    with pytest.raises(ValidationFailed):
        thirdparty_record_documentation(actor=owner, model=vendor_model, url="http://vendor.example/c", sha256="a" * 64)
    with pytest.raises(ValidationFailed):
        thirdparty_record_documentation(actor=owner, model=vendor_model, url="https://vendor.example/c", sha256="xyz")
    digest = hashlib.sha256(b"elsewhere").hexdigest()
    model = thirdparty_record_documentation(
        actor=owner, model=vendor_model, url="https://vendor.example/docs/card.pdf", sha256=digest.upper()
    )
    assert (model.documentation_sha256, model.documentation_name) == (digest, "card.pdf")


def test_an_upload_whose_declared_sha256_differs_is_refused(vendor_model, owner):
    with pytest.raises(ValidationFailed):
        thirdparty_record_documentation(actor=owner, model=vendor_model, content=DOCUMENT, sha256="0" * 64)
    vendor_model.refresh_from_db()
    assert vendor_model.documentation_sha256 == ""


def test_a_retired_model_stays_as_it_was(vendor_model, owner):
    thirdparty_set_status(actor=owner, model=vendor_model, status="retired", reason="Replaced by an in-house model.")
    vendor_model.refresh_from_db()
    with pytest.raises(InvalidState):
        thirdparty_update(actor=owner, model=vendor_model, data={"version": "2027-01"})
    with pytest.raises(InvalidState):
        thirdparty_set_status(actor=owner, model=vendor_model, status="active", reason="Back.")
    with pytest.raises(InvalidState):
        thirdparty_record_documentation(actor=owner, model=vendor_model, content=DOCUMENT)
    assert third_party_models_for_usecases([vendor_model.usecase_id]) == {}


def test_a_status_change_needs_a_reason(vendor_model, owner):
    with pytest.raises(ValidationFailed):
        thirdparty_set_status(actor=owner, model=vendor_model, status="suspended", reason="  ")


def test_a_use_case_without_third_party_models_keeps_the_digest_it_had(usecase, owner):
    bound, digest = bindings_for(usecase, None)
    assert "third_party_models" not in bound
    other = usecase_create(actor=owner, organisation=usecase.organisation, data=usecase_data(title="Other"))
    thirdparty_register(actor=owner, usecase=other, data=dict(DATA))
    assert bindings_for(usecase, None)[1] == digest


def test_new_documentation_supersedes_the_open_review_and_the_successor_binds_its_hash(usecase, owner, board_member):
    model = thirdparty_register(actor=owner, usecase=usecase, data=dict(DATA))
    submitted = usecase_transition(actor=owner, usecase=usecase, action="submit")
    first = open_review(submitted)
    assert first.bindings["third_party_models"][0]["documentation_sha256"] == ""

    thirdparty_record_documentation(actor=owner, model=model, content=DOCUMENT, file_name="quill.pdf")

    first.refresh_from_db()
    assert first.status == ReviewRequest.Status.SUPERSEDED
    successor = open_review(submitted)
    bound = successor.bindings["third_party_models"]
    assert [(b["name"], b["version"], b["documentation_sha256"]) for b in bound] == [
        ("Quill hosted language model", "2026-09", hashlib.sha256(DOCUMENT).hexdigest())
    ]


def test_the_review_page_shows_the_model_and_its_documentation_hash(usecase, owner, board_member, client):
    model = thirdparty_register(actor=owner, usecase=usecase, data=dict(DATA))
    thirdparty_record_documentation(actor=owner, model=model, content=DOCUMENT, file_name="quill.pdf")
    review = open_review(usecase_transition(actor=owner, usecase=usecase, action="submit"))
    client.force_login(board_member)
    page = client.get(reverse("ethics:review", args=[review.id])).content.decode()
    assert 'id="section-third-party"' in page
    assert page.count(hashlib.sha256(DOCUMENT).hexdigest()) >= 2  # the section and the bindings table


def test_a_passed_reassessment_date_is_overdue_until_the_model_is_retired(vendor_model, owner):
    today = timezone.localdate()
    vendor_model.review_due_on = today - timedelta(days=1)
    assert review_overdue(vendor_model, today)
    vendor_model.review_due_on = today
    assert not review_overdue(vendor_model, today)
    vendor_model.review_due_on = today - timedelta(days=1)
    vendor_model.status = ThirdPartyModel.Status.RETIRED
    assert not review_overdue(vendor_model, today)


# ----------------------------------------------------------------------------------------------------- pages and API


def test_the_pages_show_the_model_to_an_auditor_without_forms(vendor_model, auditor, client):
    client.force_login(auditor)
    listing = client.get(reverse("thirdparty:list")).content.decode()
    assert "Quill hosted language model" in listing
    detail = client.get(reverse("thirdparty:detail", args=[vendor_model.id])).content.decode()
    assert "EU (Frankfurt)" in detail
    assert reverse("thirdparty:documentation", args=[vendor_model.id]) not in detail


def test_the_owner_uploads_documentation_from_the_page(vendor_model, owner, client):
    client.force_login(owner)
    response = client.post(
        reverse("thirdparty:documentation", args=[vendor_model.id]),
        {"file": SimpleUploadedFile("quill.pdf", DOCUMENT, "application/pdf")},
    )
    assert response.status_code == 302
    vendor_model.refresh_from_db()
    assert vendor_model.documentation_sha256 == hashlib.sha256(DOCUMENT).hexdigest()


def test_the_owner_records_one_through_the_form(usecase, owner, client):
    client.force_login(owner)
    response = client.post(reverse("thirdparty:create"), {**DATA, "usecase": str(usecase.id)})
    model = ThirdPartyModel.objects.get()
    assert response["Location"] == reverse("thirdparty:detail", args=[model.id])
    assert model.usecase_id == usecase.id


def test_another_organisations_model_answers_404_on_page_and_api(vendor_model, outsider, client):
    client.force_login(outsider)
    assert client.get(reverse("thirdparty:detail", args=[vendor_model.id])).status_code == 404
    assert "Quill" not in client.get(reverse("thirdparty:list")).content.decode()
    api = APIClient()
    api.force_authenticate(outsider)
    assert api.get(f"/api/v1/third-party-models/{vendor_model.id}/").status_code == 404
    assert api.get("/api/v1/third-party-models/").json()["results"] == []


def test_the_api_records_a_model_and_its_documentation(usecase, owner):
    api = APIClient()
    api.force_authenticate(owner)
    created = api.post("/api/v1/third-party-models/", {**DATA, "usecase": str(usecase.id)}, format="json")
    assert created.status_code == 201, created.json()
    model_id = created.json()["id"]
    uploaded = api.post(
        f"/api/v1/third-party-models/{model_id}/documentation/",
        {"file": SimpleUploadedFile("quill.pdf", DOCUMENT, "application/pdf")},
        format="multipart",
    )
    assert uploaded.status_code == 200, uploaded.json()
    assert uploaded.json()["documentation_sha256"] == hashlib.sha256(DOCUMENT).hexdigest()
    refused = api.post(f"/api/v1/third-party-models/{model_id}/status/", {"status": "retired"}, format="json")
    assert refused.status_code == 400 and set(refused.json()) == {"error"}


def test_the_demo_records_a_hosted_language_model_for_letter_drafting(org):
    from apps.accounts.models import Role
    from apps.core.demo import DEMO_VENDOR_DOCUMENTATION, _seed_third_party
    from tests.conftest import make_user

    make_user("owner", organisation=org, roles=(Role.OWNER,))
    _seed_third_party(org)
    model = ThirdPartyModel.objects.select_related("usecase").get(organisation=org)
    assert model.documentation_sha256 == hashlib.sha256(DEMO_VENDOR_DOCUMENTATION).hexdigest()
    assert (model.usecase.risk_tier, model.usecase.ai_act_role) == ("limited", "deployer")
    assert model.review_due_on > timezone.localdate()


def test_the_use_case_page_lists_its_models_and_offers_recording_only_to_who_may(vendor_model, owner, steward, client):
    url = reverse("usecases:detail", args=[vendor_model.usecase_id])
    record = f"{reverse('thirdparty:create')}?usecase={vendor_model.usecase_id}"
    client.force_login(owner)
    page = client.get(url).content.decode()
    assert reverse("thirdparty:detail", args=[vendor_model.id]) in page and record in page
    client.force_login(steward)
    page = client.get(url).content.decode()
    assert reverse("thirdparty:detail", args=[vendor_model.id]) in page and record not in page


def test_the_dashboard_and_the_filtered_list_show_models_to_check(usecase, owner, steward, client):
    today = timezone.localdate()
    overdue = thirdparty_register(
        actor=owner, usecase=usecase, data={**DATA, "name": "Overdue", "review_due_on": today - timedelta(days=1)}
    )
    thirdparty_record_documentation(actor=owner, model=overdue, content=DOCUMENT)
    undocumented = thirdparty_register(
        actor=owner, usecase=usecase, data={**DATA, "name": "Undocumented", "review_due_on": today + timedelta(days=90)}
    )
    settled = thirdparty_register(
        actor=owner, usecase=usecase, data={**DATA, "name": "Settled", "review_due_on": today + timedelta(days=90)}
    )
    thirdparty_record_documentation(actor=owner, model=settled, content=DOCUMENT)
    client.force_login(owner)
    dashboard = client.get(reverse("dashboard")).content.decode()
    assert "Third-party models to check" in dashboard
    assert "1 re-assessment overdue; 1 without recorded documentation." in dashboard
    listing = client.get(reverse("thirdparty:list"), {"attention": "1"}).content.decode()
    assert reverse("thirdparty:detail", args=[overdue.id]) in listing
    assert reverse("thirdparty:detail", args=[undocumented.id]) in listing
    assert reverse("thirdparty:detail", args=[settled.id]) not in listing
    client.force_login(steward)  # not a card of the data steward's
    assert "Third-party models to check" not in client.get(reverse("dashboard")).content.decode()
