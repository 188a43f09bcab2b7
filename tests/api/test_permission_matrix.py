"""Every API route in the OpenAPI schema, for every persona: who gets in, who is refused, and who sees nothing.

Adding a route without adding it to EXPECTED fails ``test_every_route_in_the_schema_is_in_the_matrix``.
"""

from __future__ import annotations

import functools
import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as settings_module
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.utils import timezone
from rest_framework.test import APIClient

from apps.accounts.models import Invitation, Membership, Organisation, Role, UserSession
from apps.accounts.selectors import invitation_token_hash
from apps.accounts.services import api_token_create, auditor_grant_create
from apps.audit.models import AuditEvent
from apps.consent.models import ConsentImport
from apps.datasets.models import Anonymisation, Dataset, DatasetColumn, DatasetVersion
from apps.datasets.services import (
    dataset_create,
    dataset_version_confirm_roles,
    dataset_version_profile,
    dataset_version_upload,
    datasheet_save,
)
from apps.datasets.storage import EncryptedIncomingFile
from apps.ethics.models import Condition, Decision, ReviewRequest, Waiver
from apps.ethics.services import review_request_deployment
from apps.evaluation.models import Evaluation
from apps.jobs.models import Job
from apps.reports.models import Report
from apps.training.models import ModelVersion, PrivacyBudget, TrainingRun
from apps.usecases.models import UseCase
from apps.usecases.services import usecase_create
from tests.conftest import make_user
from tests.usecases.factories import usecase_data

PERSONAS = ["admin", "owner", "steward", "board", "auditor", "external_auditor", "outsider", "anonymous"]
IN_ORG = ["admin", "owner", "steward", "board", "auditor", "external_auditor"]


def only(allowed: dict[str, int], others: int, outsider: int = 404) -> dict[str, int]:
    """Expected statuses: ``allowed`` personas as given, other org personas ``others``, outsider, anonymous 401."""
    expected = {persona: allowed.get(persona, others) for persona in IN_ORG}
    expected["outsider"] = allowed.get("outsider", outsider)
    expected["anonymous"] = 401
    return expected


def everyone(status: int) -> dict[str, int]:
    return {**{persona: status for persona in PERSONAS if persona != "anonymous"}, "anonymous": 401}


ADMIN_ONLY = {"admin": 200}

EXPECTED: dict[tuple[str, str], dict[str, int]] = {
    ("GET", "/api/v1/me/"): everyone(200),
    ("GET", "/api/v1/organisations/"): everyone(200),
    ("GET", "/api/v1/organisations/{id}/"): only({p: 200 for p in IN_ORG}, 200),
    ("PATCH", "/api/v1/organisations/{id}/"): only(ADMIN_ONLY, 403),
    ("GET", "/api/v1/memberships/"): everyone(200),
    ("POST", "/api/v1/memberships/"): only({"admin": 201}, 403),
    ("DELETE", "/api/v1/memberships/{id}/"): only({"admin": 204}, 403),
    ("GET", "/api/v1/auditor-grants/"): everyone(200),
    ("POST", "/api/v1/auditor-grants/{id}/revoke/"): only(ADMIN_ONLY, 404),
    ("GET", "/api/v1/invitations/"): everyone(200),  # each sees those of organisations they administer
    ("POST", "/api/v1/invitations/"): only({"admin": 201}, 403),
    ("POST", "/api/v1/invitations/{id}/revoke/"): only(ADMIN_ONLY, 404),
    ("POST", "/api/v1/invitations/accept/"): everyone(200),  # whoever holds the e-mailed token, signed in
    ("GET", "/api/v1/tokens/"): everyone(200),
    ("POST", "/api/v1/tokens/"): everyone(201),
    ("POST", "/api/v1/tokens/{id}/revoke/"): only(ADMIN_ONLY, 404),
    ("GET", "/api/v1/sessions/"): everyone(200),  # each person's own
    ("POST", "/api/v1/sessions/{id}/revoke/"): only(ADMIN_ONLY, 404),  # the world's session is the admin's
    ("GET", "/api/v1/audit/events/"): everyone(200),
    ("GET", "/api/v1/audit/events/{hash}/"): only({"admin": 200, "auditor": 200, "external_auditor": 200}, 404),
    ("GET", "/api/v1/audit/events/export/"): everyone(200),
    ("GET", "/api/v1/audit/head/"): everyone(200),
    ("POST", "/api/v1/audit/verify/"): only(
        {"admin": 200, "auditor": 200, "external_auditor": 200, "outsider": 200}, 403
    ),  # outsider: admin of its own organisation
    ("GET", "/api/v1/jobs/"): everyone(200),
    ("GET", "/api/v1/jobs/{id}/"): only({p: 200 for p in IN_ORG}, 200),
    ("POST", "/api/v1/jobs/{id}/cancel/"): only(ADMIN_ONLY, 403),
    ("POST", "/api/v1/jobs/diagnostics/"): only({"admin": 202}, 403),
    ("GET", "/api/v1/usecases/"): everyone(200),
    ("POST", "/api/v1/usecases/"): only({"admin": 201, "owner": 201}, 403),
    ("GET", "/api/v1/usecases/{id}/"): only({p: 200 for p in IN_ORG}, 200),
    ("PATCH", "/api/v1/usecases/{id}/"): only({"admin": 200, "owner": 200}, 403),
    ("GET", "/api/v1/usecases/{id}/revisions/"): only({p: 200 for p in IN_ORG}, 200),
    ("POST", "/api/v1/usecases/{id}/transition/"): only({"admin": 200, "owner": 200}, 403),
    ("GET", "/api/v1/consent/records/"): everyone(200),
    ("POST", "/api/v1/consent/records/"): only({"admin": 201, "steward": 201}, 403),
    ("GET", "/api/v1/consent/imports/"): everyone(200),
    ("POST", "/api/v1/consent/imports/"): only({"admin": 202, "steward": 202}, 403),
    ("GET", "/api/v1/consent/imports/{id}/"): only(
        {"admin": 200, "steward": 200, "auditor": 200, "external_auditor": 200}, 404
    ),
    ("GET", "/api/v1/consent/imports/{id}/errors/"): only(
        {"admin": 200, "steward": 200, "auditor": 200, "external_auditor": 200}, 404
    ),
    ("GET", "/api/v1/datasets/"): everyone(200),
    ("POST", "/api/v1/datasets/"): only({"admin": 201, "steward": 201}, 403),
    ("GET", "/api/v1/datasets/{id}/"): only({p: 200 for p in IN_ORG}, 200),
    ("GET", "/api/v1/datasets/{id}/versions/"): only({p: 200 for p in IN_ORG}, 200),
    ("POST", "/api/v1/datasets/{id}/versions/"): only({"admin": 201, "steward": 201}, 403),
    ("GET", "/api/v1/dataset-versions/{id}/"): only({p: 200 for p in IN_ORG}, 200),
    ("GET", "/api/v1/dataset-versions/{id}/coverage/"): only({p: 200 for p in IN_ORG}, 200),
    ("GET", "/api/v1/dataset-versions/{id}/datasheet/"): only({p: 200 for p in IN_ORG}, 200),
    ("PUT", "/api/v1/dataset-versions/{id}/datasheet/"): only({"admin": 200, "steward": 200}, 403),
    # The world has no consent records: writers pass the permission check and meet "no row has valid consent".
    ("POST", "/api/v1/dataset-versions/{id}/prepare/"): only({"admin": 409, "steward": 409}, 403),
    ("POST", "/api/v1/dataset-versions/{id}/roles/"): only({"admin": 200, "steward": 200}, 403),
    ("GET", "/api/v1/training-runs/"): everyone(200),
    ("POST", "/api/v1/training-runs/"): only({"admin": 202, "owner": 202}, 403),
    ("GET", "/api/v1/training-runs/{id}/"): only({p: 200 for p in IN_ORG}, 200),
    ("POST", "/api/v1/training-runs/{id}/cancel/"): only({"admin": 200, "owner": 200}, 403),
    ("GET", "/api/v1/model-versions/"): everyone(200),
    ("GET", "/api/v1/model-versions/{id}/"): only({p: 200 for p in IN_ORG}, 200),
    ("GET", "/api/v1/privacy-budgets/{dataset}/"): only({p: 200 for p in IN_ORG}, 200),
    ("GET", "/api/v1/evaluations/"): everyone(200),
    ("POST", "/api/v1/evaluations/"): only({"admin": 202, "owner": 202}, 403),
    ("GET", "/api/v1/evaluations/{id}/"): only({p: 200 for p in IN_ORG}, 200),
    # Mitigation and explanations of held-out rows: stewards, owners and admins act; an explanation shows one
    # person's values, so only they read it (others of the organisation get 404, as for another's object).
    ("POST", "/api/v1/mitigations/"): only({"admin": 202, "owner": 202, "steward": 202}, 403),
    ("POST", "/api/v1/mitigations/preview/"): only({"admin": 200, "owner": 200, "steward": 200}, 403),
    ("POST", "/api/v1/row-explanations/"): only({"admin": 202, "owner": 202, "steward": 202}, 403),
    ("GET", "/api/v1/row-explanations/{id}/"): only({"admin": 200, "owner": 200, "steward": 200}, 404),
    # Deployments and monitoring: every role reads; owners and admins act.
    ("GET", "/api/v1/deployments/"): everyone(200),
    ("POST", "/api/v1/deployments/"): only({"admin": 201, "owner": 201}, 403),
    ("GET", "/api/v1/deployments/{id}/"): only({p: 200 for p in IN_ORG}, 200),
    ("POST", "/api/v1/deployments/{id}/rollback/"): only({"admin": 200, "owner": 200}, 403),
    ("POST", "/api/v1/deployments/{id}/withdraw/"): only({"admin": 200, "owner": 200}, 403),
    ("GET", "/api/v1/deployments/{id}/batches/"): only({p: 200 for p in IN_ORG}, 200),
    ("POST", "/api/v1/deployments/{id}/batches/"): only({"admin": 202, "owner": 202}, 403),
    ("POST", "/api/v1/deployments/{id}/labels/"): only({"admin": 200, "owner": 200}, 403),
    # Scoring answers to the deployment's scoring tokens only: no user, signed in or by API token, gets in.
    ("POST", "/api/v1/deployments/{id}/score/"): everyone(401),
    ("GET", "/api/v1/deployments/{id}/score/{job}/"): everyone(401),
    ("GET", "/api/v1/scoring-tokens/"): everyone(200),
    ("POST", "/api/v1/scoring-tokens/"): only({"admin": 201, "owner": 201}, 403),
    ("POST", "/api/v1/scoring-tokens/{id}/revoke/"): only({"admin": 200, "owner": 200}, 403),
    ("GET", "/api/v1/monitoring-windows/"): everyone(200),
    ("GET", "/api/v1/monitoring-windows/{id}/"): only({p: 200 for p in IN_ORG}, 200),
    # Alerts, feedback and retraining: every role reads; owners, admins and stewards work alerts and triage;
    # board members who approved the model comment (the world's board member voted on none); auditors only read.
    ("GET", "/api/v1/alerts/"): everyone(200),
    ("GET", "/api/v1/alerts/{id}/"): only({p: 200 for p in IN_ORG}, 200),
    ("POST", "/api/v1/alerts/{id}/acknowledge/"): only({"admin": 200, "owner": 200, "steward": 200}, 403),
    ("POST", "/api/v1/alerts/{id}/assign/"): only({"admin": 200, "owner": 200, "steward": 200}, 403),
    ("GET", "/api/v1/alerts/{id}/comments/"): only({p: 200 for p in IN_ORG}, 200),
    ("POST", "/api/v1/alerts/{id}/comments/"): only({"admin": 201, "owner": 201, "steward": 201}, 403),
    ("POST", "/api/v1/alerts/{id}/resolve/"): only({"admin": 200, "owner": 200, "steward": 200}, 403),
    ("GET", "/api/v1/alert-webhooks/{organisation}/"): only(ADMIN_ONLY, 403),
    ("PUT", "/api/v1/alert-webhooks/{organisation}/"): only(ADMIN_ONLY, 403),
    ("DELETE", "/api/v1/alert-webhooks/{organisation}/"): only({"admin": 204}, 403),
    ("GET", "/api/v1/feedback/"): everyone(200),
    ("POST", "/api/v1/feedback/"): only({"admin": 201, "owner": 201, "steward": 201, "board": 201}, 403),
    ("GET", "/api/v1/feedback/{id}/"): only({p: 200 for p in IN_ORG}, 200),
    ("POST", "/api/v1/feedback/{id}/triage/"): only({"admin": 200, "owner": 200, "steward": 200}, 403),
    ("POST", "/api/v1/feedback/{id}/close/"): only({"admin": 200, "owner": 200, "steward": 200}, 403),
    ("GET", "/api/v1/retraining-requests/"): everyone(200),
    ("POST", "/api/v1/retraining-requests/"): only({"admin": 201, "owner": 201}, 403),
    ("GET", "/api/v1/retraining-requests/{id}/"): only({p: 200 for p in IN_ORG}, 200),
    ("POST", "/api/v1/retraining-requests/{id}/launch/"): only({"admin": 202, "owner": 202}, 403),
    ("POST", "/api/v1/retraining-requests/{id}/close/"): only({"admin": 200, "owner": 200}, 403),
    ("GET", "/api/v1/reviews/"): everyone(200),
    ("POST", "/api/v1/reviews/"): only({"admin": 201, "owner": 201}, 403),
    ("GET", "/api/v1/reviews/{id}/"): only({p: 200 for p in IN_ORG}, 200),
    ("POST", "/api/v1/reviews/{id}/votes/"): only({"board": 201}, 403),
    ("POST", "/api/v1/reviews/{id}/recusal/"): only({"board": 201}, 403),
    ("POST", "/api/v1/reviews/{id}/close/"): only({}, 403),  # only the chair, and the world's board has none
    ("POST", "/api/v1/reviews/{id}/answers/"): only({"admin": 200, "owner": 200}, 403),
    ("POST", "/api/v1/reviews/{id}/stances/"): only({"board": 201}, 403),
    ("GET", "/api/v1/reviews/{id}/comments/"): only({p: 200 for p in IN_ORG}, 200),
    ("POST", "/api/v1/reviews/{id}/comments/"): only({"admin": 201, "owner": 201, "steward": 201, "board": 201}, 403),
    # Allowed personas pass the permission check and meet the domain's refusal: nothing fails, and a waiver is open.
    ("POST", "/api/v1/reviews/{id}/waivers/"): only({"admin": 409, "owner": 409, "board": 409}, 403),
    ("GET", "/api/v1/waivers/"): everyone(200),
    ("GET", "/api/v1/waivers/{id}/"): only({p: 200 for p in IN_ORG}, 200),
    ("POST", "/api/v1/waivers/{id}/votes/"): only({"board": 201}, 403),
    ("GET", "/api/v1/conditions/"): everyone(200),
    ("GET", "/api/v1/conditions/{id}/"): only({p: 200 for p in IN_ORG}, 200),
    ("POST", "/api/v1/conditions/{id}/met/"): only({"admin": 200, "owner": 200}, 403),
    ("GET", "/api/v1/boards/{organisation}/"): only({p: 200 for p in IN_ORG}, 200),
    ("PATCH", "/api/v1/boards/{organisation}/"): only(ADMIN_ONLY, 403),
    ("GET", "/api/v1/notices/"): everyone(200),
    ("POST", "/api/v1/notices/read/"): everyone(200),
    ("GET", "/api/v1/model-cards/"): everyone(200),
    ("POST", "/api/v1/model-cards/"): only({"admin": 201, "owner": 201}, 403),
    ("GET", "/api/v1/model-cards/{id}/"): only({p: 200 for p in IN_ORG}, 200),
    # The world's detail version is raw: writers pass the permission check and meet "anonymise a prepared version".
    ("POST", "/api/v1/dataset-versions/{id}/anonymisations/"): only({"admin": 409, "steward": 409}, 403),
    ("GET", "/api/v1/anonymisations/"): everyone(200),
    ("GET", "/api/v1/anonymisations/{id}/"): only({p: 200 for p in IN_ORG}, 200),
    ("POST", "/api/v1/anonymisations/{id}/apply/"): only({"admin": 202, "steward": 202}, 403),
    ("GET", "/api/v1/reports/"): everyone(200),
    # Compliance (issue 20): every role reads; admins, owners (and privacy officers) link evidence and confirm;
    # report issuers request the statement; admins load their own frameworks.
    ("GET", "/api/v1/compliance/frameworks/"): everyone(200),
    ("POST", "/api/v1/compliance/frameworks/"): only({"admin": 201}, 403),
    ("GET", "/api/v1/compliance/usecases/{id}/"): only({p: 200 for p in IN_ORG}, 200),
    ("GET", "/api/v1/compliance/usecases/{id}/requirements/"): only({p: 200 for p in IN_ORG}, 200),
    ("POST", "/api/v1/compliance/usecases/{id}/evidence/"): only({"admin": 201, "owner": 201}, 403),
    ("POST", "/api/v1/compliance/usecases/{id}/confirm/"): only({"admin": 201, "owner": 201}, 403),
    ("POST", "/api/v1/compliance/usecases/{id}/statement/"): only(
        {"admin": 202, "owner": 202, "steward": 202, "board": 202}, 403
    ),
    ("POST", "/api/v1/reports/"): only({"admin": 202, "owner": 202, "steward": 202, "board": 202}, 403),
    ("GET", "/api/v1/reports/{id}/"): only({p: 200 for p in IN_ORG}, 200),
    ("GET", "/api/v1/reports/{id}/download/"): only({p: 200 for p in IN_ORG}, 200),
    ("POST", "/api/v1/reports/verify/"): everyone(200),  # says only what the uploaded file already holds
    ("GET", "/api/v1/signing-identities/"): everyone(200),
    ("POST", "/api/v1/signing-identities/"): only({"admin": 201}, 403),
    # Third-party models: every role reads; the use case's owner and org admins record and change them.
    ("GET", "/api/v1/third-party-models/"): everyone(200),
    ("POST", "/api/v1/third-party-models/"): only({"admin": 201, "owner": 201}, 403),
    ("GET", "/api/v1/third-party-models/{id}/"): only({p: 200 for p in IN_ORG}, 200),
    ("PATCH", "/api/v1/third-party-models/{id}/"): only({"admin": 200, "owner": 200}, 403),
    ("POST", "/api/v1/third-party-models/{id}/documentation/"): only({"admin": 200, "owner": 200}, 403),
    ("POST", "/api/v1/third-party-models/{id}/status/"): only({"admin": 200, "owner": 200}, 403),
    # Global search: everyone searches what they may see (tests/search proves the scoping per kind).
    ("GET", "/api/v1/search/"): everyone(200),
    # Portfolio (issue 20): everyone of the organisation reads the inventory and the register; org admins and
    # use-case owners (and privacy officers) record and work risks.
    # Data-subject requests (issue 15): the privacy officer handles them; the world's organisation has none, so its
    # org admins and data stewards do. Auditors read; owners and board members do not see requests at all (404).
    # The world's request is untraced: deciding meets "not in the trace" (400), executing "trace not finished" (409).
    ("GET", "/api/v1/rights/requests/"): everyone(200),
    ("POST", "/api/v1/rights/requests/"): only({"admin": 201, "steward": 201}, 403),
    ("GET", "/api/v1/rights/requests/{id}/"): only(
        {"admin": 200, "steward": 200, "auditor": 200, "external_auditor": 200}, 404
    ),
    ("POST", "/api/v1/rights/requests/{id}/assign/"): only(
        {"admin": 200, "steward": 200, "auditor": 403, "external_auditor": 403}, 404
    ),
    ("POST", "/api/v1/rights/requests/{id}/extend/"): only(
        {"admin": 200, "steward": 200, "auditor": 403, "external_auditor": 403}, 404
    ),
    ("POST", "/api/v1/rights/requests/{id}/decide/"): only(
        {"admin": 400, "steward": 400, "auditor": 403, "external_auditor": 403}, 404
    ),
    ("POST", "/api/v1/rights/requests/{id}/execute/"): only(
        {"admin": 409, "steward": 409, "auditor": 403, "external_auditor": 403}, 404
    ),
    ("GET", "/api/v1/portfolio/inventory/"): everyone(200),
    ("GET", "/api/v1/risk-register/"): everyone(200),
    ("GET", "/api/v1/risks/"): everyone(200),
    ("POST", "/api/v1/risks/"): only({"admin": 201, "owner": 201}, 403),
    ("GET", "/api/v1/risks/{id}/"): only({p: 200 for p in IN_ORG}, 200),
    ("PATCH", "/api/v1/risks/{id}/"): only({"admin": 200, "owner": 200}, 403),
    ("POST", "/api/v1/risks/{id}/close/"): only({"admin": 200, "owner": 200}, 403),
}

SMALL_CSV = b"applicant_id,email,age,sex\nA-1,a@example.org,30,Male\nA-2,b@example.org,40,Female\n"


@dataclass
class World:
    """One object of each kind in an organisation, for the path parameters of detail routes."""

    organisation: Organisation
    ids: dict[str, str]


def build_world(organisation: Organisation, admin, owner, steward, grantee) -> World:  # type: ignore[no-untyped-def]
    usecase = usecase_create(
        actor=owner,
        organisation=organisation,
        data=usecase_data(purpose=(organisation.processing_purposes or ["Benefit fraud triage"])[0]),
    )
    job = Job.objects.create(
        organisation=organisation, kind="diagnostics", task_name="attest.default.diagnostics", created_by=admin
    )
    consent_import = ConsentImport.objects.create(
        organisation=organisation,
        created_by=steward,
        file_name="c.csv",
        sha256="0" * 64,
        size_bytes=1,
        status="succeeded",
    )
    membership = Membership.objects.filter(organisation=organisation, user=steward).first()
    grant = auditor_grant_create(actor=None, organisation=organisation, user=grantee, reason="matrix")
    token, _secret = api_token_create(actor=admin, name="matrix")
    signed_in = UserSession.objects.create(
        user=admin,
        key_hash=hashlib.sha256(f"matrix-{organisation.id}".encode()).hexdigest(),
        device="Firefox on Linux",
        signed_in_at=timezone.now(),
        last_seen_at=timezone.now(),
    )
    invitation_token = f"matrix-invitation-{organisation.slug}"
    invitation = Invitation.objects.create(
        organisation=organisation,
        role=Role.BOARD,
        email=f"invitee@{organisation.slug}.example.org",
        email_sha256="0" * 64,
        token_hash=invitation_token_hash(invitation_token),
        invited_by=admin,
        expires_at=timezone.now() + timedelta(days=1),
    )
    dataset = dataset_create(actor=steward, usecase=usecase, name="Matrix data")
    incoming = EncryptedIncomingFile()
    incoming.write(SMALL_CSV)
    sha256 = incoming.close()
    version, _created = dataset_version_upload(
        actor=steward, dataset=dataset, incoming=incoming, sha256=sha256, file_name="m.csv"
    )
    dataset_version_profile(version_id=version.id)
    dataset_version_confirm_roles(
        actor=steward,
        version=version,
        roles={
            "applicant_id": "subject_key",
            "email": "direct_identifier",
            "age": "quasi_identifier",
            "sex": "sensitive",
        },
    )
    datasheet_save(actor=steward, version=version)
    # Training objects are made directly: the matrix is about who may act, not about training itself.
    approved = usecase_create(
        actor=owner,
        organisation=organisation,
        data=usecase_data(purpose=(organisation.processing_purposes or ["Benefit fraud triage"])[0], title="Approved"),
    )
    UseCase.objects.filter(pk=approved.pk).update(status="approved")
    trained_data = Dataset.objects.create(
        organisation=organisation, usecase=approved, name="Trained", created_by=steward
    )
    prepared = DatasetVersion.objects.create(
        dataset=trained_data,
        number=1,
        kind="prepared",
        status="ready",
        parent=version,
        file_name="p.parquet",
        file_format="parquet",
        sha256="1" * 64,
        size_bytes=1,
        row_count=2,
        column_names=version.column_names,
        storage_path=version.storage_path,
        wrapped_key=version.wrapped_key,
        created_by=steward,
        subject_key_column="applicant_id",
        consent_as_of=timezone.now(),
        roles_confirmed_at=timezone.now(),
    )
    for column in version.columns.all():
        DatasetColumn.objects.create(
            version=prepared, position=column.position, name=column.name, kind=column.kind, role=column.role
        )
    run_job = Job.objects.create(
        organisation=organisation, kind="training", task_name="attest.gpu.training", queue="gpu", created_by=owner
    )
    run = TrainingRun.objects.create(
        organisation=organisation,
        usecase=approved,
        dataset_version=prepared,
        created_by=owner,
        spec={"model": "logistic_regression"},
        job=run_job,
        # Row positions of the two rows, so a mitigation can be fitted and a held-out row explained.
        split={"train": [0], "validation": [0, 1], "test": [1], "sha256": "0" * 64},
    )
    model = ModelVersion.objects.create(
        organisation=organisation,
        usecase=approved,
        training_run=run,
        number=1,
        sha256=uuid.uuid4().hex * 2,
        storage_path="models/x",
        manifest={},
    )
    evaluation = Evaluation.objects.create(
        organisation=organisation,
        model_version=model,
        dataset_version=prepared,
        policy={},
        status="succeeded",
        verdict="pass",
    )
    PrivacyBudget.objects.create(dataset=trained_data, epsilon_cap=3.0, delta=1e-5, people=2)
    row_explanation = Job.objects.create(
        organisation=organisation,
        kind="row_explanation",
        task_name="attest.gpu.row_explanation",
        queue="gpu",
        created_by=owner,
        target_type="training.modelversion",
        target_id=str(model.id),
        spec={"model_version_id": str(model.id), "position": 1},
    )
    # A second model with an open deployment review (the first stays free for POST /reviews/), a waiver on it,
    # and a decided development review with a condition.
    approved.refresh_from_db()
    run2 = TrainingRun.objects.create(
        organisation=organisation,
        usecase=approved,
        dataset_version=prepared,
        created_by=owner,
        spec={"model": "logistic_regression"},
    )
    model2 = ModelVersion.objects.create(
        organisation=organisation,
        usecase=approved,
        training_run=run2,
        number=2,
        sha256=uuid.uuid4().hex * 2,
        storage_path="models/y",
        manifest={},
    )
    Evaluation.objects.create(
        organisation=organisation,
        model_version=model2,
        dataset_version=prepared,
        policy={},
        status="succeeded",
        verdict="pass",
    )
    review = review_request_deployment(actor=owner, model_version=model2)
    waiver = Waiver.objects.create(
        review=review,
        waived=[{"key": "gate:x", "label": "x"}],
        justification="j" * 30,
        expires_on=timezone.localdate() + timedelta(days=30),
        requested_by=owner,
    )
    decided = ReviewRequest.objects.create(
        organisation=organisation,
        reference="RV-9999",
        kind="development",
        status="decided",
        usecase=usecase,
        requested_by=owner,
        bindings={},
        bindings_sha256="0" * 64,
        due_at=timezone.now(),
    )
    decision = Decision.objects.create(
        review=decided,
        outcome="approved_with_conditions",
        tally={},
        quorum=1,
        approval_threshold=0.5,
        bindings_sha256="0" * 64,
    )
    anonymisation = Anonymisation.objects.create(
        version=prepared,
        created_by=steward,
        status="ready",
        config={"quasi_identifiers": ["age"], "k": 2},
        result={"level_tuple": [1]},
    )
    report_file = Path(settings_module.STORAGE_ROOT) / "reports" / f"{organisation.slug}.pdf"
    report_file.parent.mkdir(parents=True, exist_ok=True)
    report_file.write_bytes(b"%PDF-1.7 matrix")
    report = Report.objects.create(
        organisation=organisation,
        kind="art30",
        subject_type="accounts.organisation",
        subject_id=str(organisation.id),
        subject_label=organisation.name,
        version=1,
        reference=f"{organisation.slug.upper()}-R00001",
        status="ready",
        storage_path=str(report_file.relative_to(settings_module.STORAGE_ROOT)),
        sha256="2" * 64,
    )
    condition = Condition.objects.create(
        decision=decision,
        organisation=organisation,
        text="Publish a notice",
        owner=owner,
        due_on=timezone.localdate(),
        proposed_by=owner,
    )
    monitored = build_monitoring(organisation, approved, prepared, owner)
    monitored.update(build_loop(monitored["deployments"], prepared, owner))
    from apps.thirdparty.models import ThirdPartyModel

    third_party = ThirdPartyModel.objects.create(
        organisation=organisation,
        usecase=usecase,
        supplier="Matrix vendor",
        name="Matrix language model",
        version="1",
        intended_use="Drafting letters.",
        created_by=owner,
    )
    from apps.rights.services import subject_request_register

    rights_request = subject_request_register(
        actor=admin, organisation=organisation, kind="erasure", identifier="A-1", identity_verification="ID card"
    )
    event = AuditEvent.objects.filter(organisation=organisation).order_by("-sequence").first()
    return World(
        organisation,
        {
            "organisations": str(organisation.id),
            "usecases": str(usecase.id),
            "jobs": str(job.id),
            "imports": str(consent_import.id),
            "memberships": str(membership.id),
            "auditor-grants": str(grant.id),
            "tokens": str(token.id),
            "sessions": str(signed_in.id),
            "invitations": str(invitation.id),
            "invitation-token": invitation_token,
            "events": event.hash,
            "datasets": str(dataset.id),
            "dataset-versions": str(version.id),
            "training-runs": str(run.id),
            "model-versions": str(model.id),
            "privacy-budgets": str(trained_data.id),
            "prepared": str(prepared.id),
            "evaluations": str(evaluation.id),
            "row-explanations": str(row_explanation.id),
            "reviews": str(review.id),
            "waivers": str(waiver.id),
            "conditions": str(condition.id),
            "boards": str(organisation.id),
            "model-cards": str(model2.card_revisions.get().id),
            "anonymisations": str(anonymisation.id),
            "reports": str(report.id),
            "third-party-models": str(third_party.id),
            "risks": str(build_risk(organisation, owner, usecase).id),
            "requests": str(rights_request.id),
            **monitored,
        },
    )


def build_risk(organisation: Organisation, owner, usecase: UseCase):  # type: ignore[no-untyped-def]
    """An open risk of the organisation's register, linked to a use case. Made directly."""
    from apps.portfolio.models import Risk

    return Risk.objects.create(
        organisation=organisation,
        reference="RK-0001",
        title="Supplier outage",
        likelihood=2,
        severity=4,
        owner=owner,
        treatment="accept",
        review_on=timezone.localdate() + timedelta(days=30),
        usecase=usecase,
        created_by=owner,
    )


def build_monitoring(organisation: Organisation, usecase: UseCase, prepared: DatasetVersion, owner) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """Two approved models of ``usecase``; the second was promoted over the first in production (so rollback has
    somewhere to go), with a batch, a window, a scoring token and a scoring job. Made directly, as above."""
    from apps.accounts.authentication import hash_token
    from apps.deployments.models import Deployment, MonitoringWindow, ProductionBatch, ScoringToken
    from tests.deployments.kit import adult, install_reported_model

    deployments = []
    for number in (3, 4):
        run = TrainingRun.objects.create(
            organisation=organisation, usecase=usecase, dataset_version=prepared, created_by=owner, spec={}
        )
        model = ModelVersion.objects.create(
            organisation=organisation,
            usecase=usecase,
            training_run=run,
            number=number,
            sha256=uuid.uuid4().hex * 2,
            storage_path=f"models/{organisation.slug}-{number}",
            manifest={},
        )
        review = ReviewRequest.objects.create(
            organisation=organisation,
            reference=f"RV-{9000 + number}",
            kind="deployment",
            status="decided",
            usecase=usecase,
            model_version=model,
            requested_by=owner,
            bindings={},
            bindings_sha256="0" * 64,
            due_at=timezone.now(),
        )
        Decision.objects.create(
            review=review, outcome="approved", tally={}, quorum=1, approval_threshold=0.5, bindings_sha256="0" * 64
        )
        install_reported_model(model, adult(0, 300))
        deployments.append(
            Deployment.objects.create(
                organisation=organisation,
                usecase=usecase,
                model_version=model,
                environment="production",
                system="Case system",
                owner=owner,
                deployed_on=timezone.localdate(),
                review=review,
                status="replaced" if number == 3 else "active",
                previous=deployments[-1] if deployments else None,
                plan={"window": "week", "keep_raw_rows": False, "raw_retention_days": 30},
                public_slug=f"{organisation.slug}-{number}",
                created_by=owner,
            )
        )
    current = deployments[-1]
    window = MonitoringWindow.objects.create(
        organisation=organisation,
        deployment=current,
        starts_at=timezone.now() - timedelta(days=14),
        ends_at=timezone.now() - timedelta(days=7),
        status="evaluated",
        evaluated_at=timezone.now(),
        results=[
            {
                "monitor": "data_drift:psi:age",
                "family": "data_drift",
                "subject": "age",
                "status": "insufficient",
                "severity": "info",
                "value": None,
                "threshold": 0.25,
                "interval": None,
                "rows": 0,
                "message": "Not judged: only 0 rows of age have a value in this window; 500 are needed.",
                "details": {},
            }
        ],
    )
    job = Job.objects.create(
        organisation=organisation, kind="deployment_scoring", task_name="attest.gpu.deployment_scoring", queue="gpu"
    )
    ProductionBatch.objects.create(
        organisation=organisation,
        deployment=current,
        source="scoring",
        received_at=timezone.now(),
        sha256="3" * 64,
        job=job,
    )
    secret = f"ask_matrix-{organisation.slug}"
    token = ScoringToken.objects.create(
        deployment=current,
        name="case system",
        prefix=secret[:12],
        key_hash=hash_token(secret),
        created_by=owner,
    )
    return {
        "deployments": str(current.id),
        "deployable": str(deployments[0].model_version_id),
        "monitoring-windows": str(window.id),
        "scoring-tokens": str(token.id),
        "scoring-secret": secret,
        "score": str(job.id),
    }


def build_loop(deployment_id: str, prepared: DatasetVersion, owner) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """An open alert and public feedback on the active deployment, the organisation's webhook, and an open retraining
    request on the deployment it replaced (so the active one is free for POST /retraining-requests/). Made directly."""
    from apps.core.keys import wrap_secret
    from apps.deployments.models import Alert, AlertComment, AlertWebhook, Deployment, Feedback, RetrainingRequest

    deployment = Deployment.objects.get(pk=deployment_id)
    alert = Alert.objects.create(
        organisation=deployment.organisation,
        deployment=deployment,
        monitor="data_drift:psi:age",
        family="data_drift",
        severity="critical",
        title="Data drift: psi · age (production)",
        detail={"result": {"status": "fail", "value": 0.4, "threshold": 0.25}},
    )
    AlertComment.objects.create(alert=alert, author=owner, body="Looking at the upstream form.")
    feedback = Feedback.objects.create(
        organisation=deployment.organisation,
        deployment=deployment,
        source="public",
        kind="contestation",
        body="My claim was refused wrongly.",
        contact="someone@example.net",
    )
    AlertWebhook.objects.create(
        organisation=deployment.organisation,
        url="https://hooks.example.org/attest",
        wrapped_secret=wrap_secret(b"matrix-secret").encode("ascii"),
    )
    request = RetrainingRequest.objects.create(
        organisation=deployment.organisation,
        deployment=deployment.previous,
        usecase=deployment.usecase,
        reason="Drift on age.",
        opened_by=owner,
        dataset_version=prepared,
    )
    return {
        "alerts": str(alert.id),
        "feedback": str(feedback.id),
        "alert-webhooks": str(deployment.organisation_id),
        "retraining-requests": str(request.id),
    }


def fill_path(path: str, world: World) -> str:
    parts = path.strip("/").split("/")
    for index, part in enumerate(parts):
        if part.startswith("{"):
            parts[index] = world.ids[parts[index - 1]]
    return "/" + "/".join(parts) + "/"


@functools.cache
def signing_pair() -> tuple[str, str]:
    from apps.reports.pdf import new_self_signed

    cert_pem, key_pem, _not_after = new_self_signed("Matrix signing", "Matrix")
    return cert_pem, key_pem


def request_body(method: str, path: str, world: World) -> tuple[Any, str]:
    org_id = str(world.organisation.id)
    purpose = (world.organisation.processing_purposes or ["Benefit fraud triage"])[0]
    bodies: dict[tuple[str, str], Any] = {
        ("PATCH", "/api/v1/organisations/{id}/"): {"dpo_name": "New DPO"},
        ("POST", "/api/v1/memberships/"): {"organisation": org_id, "user": "stella_steward", "role": Role.BOARD},
        ("POST", "/api/v1/invitations/"): {"organisation": org_id, "email": "newcomer@example.org", "role": Role.BOARD},
        ("POST", "/api/v1/invitations/accept/"): {"token": world.ids["invitation-token"]},
        ("POST", "/api/v1/tokens/"): {"name": "ci"},
        ("POST", "/api/v1/jobs/diagnostics/"): {"organisation": org_id},
        ("POST", "/api/v1/usecases/"): {
            **usecase_data(purpose=purpose),
            "organisation": org_id,
            "owner": "oscar_owner",
        },
        ("PATCH", "/api/v1/usecases/{id}/"): {"title": "Renamed"},
        ("POST", "/api/v1/risks/"): {
            "organisation": org_id,
            "title": "Vendor lock-in",
            "likelihood": 3,
            "severity": 3,
            "treatment": "accept",
            "review_on": (timezone.localdate() + timedelta(days=30)).isoformat(),
        },
        ("PATCH", "/api/v1/risks/{id}/"): {"severity": 5},
        ("POST", "/api/v1/risks/{id}/close/"): {"note": "Contract renegotiated."},
        ("POST", "/api/v1/usecases/{id}/transition/"): {"action": "submit"},
        ("POST", "/api/v1/consent/records/"): {
            "organisation": org_id,
            "subject_id": "S-1",
            "purpose": purpose,
            "status": "granted",
            "timestamp": "2025-01-01T00:00:00Z",
        },
    }
    if (method, path) == ("POST", "/api/v1/datasets/{id}/versions/"):
        return {
            "file": SimpleUploadedFile("new.csv", SMALL_CSV + b"A-3,c@example.org,50,Male\n", "text/csv")
        }, "multipart"
    if path.startswith("/api/v1/dataset-versions/{id}/roles/"):
        return {
            "roles": {"applicant_id": "subject_key", "email": "direct_identifier", "age": "feature", "sex": "sensitive"}
        }, "json"
    if path.startswith("/api/v1/dataset-versions/{id}/datasheet/") and method == "PUT":
        return {"content": {"uses": {"intended": "Matrix"}}}, "json"
    if (method, path) == ("POST", "/api/v1/training-runs/"):
        return {
            "dataset_version": world.ids["prepared"],
            "label": "sex",
            "features": ["age"],
            "model": "logistic_regression",
            "target_epsilon": 0.5,
        }, "json"
    if path.startswith("/api/v1/deployments/") or path.startswith("/api/v1/scoring-tokens/"):
        from tests.deployments.kit import production

        monitoring_bodies: dict[tuple[str, str], Any] = {
            ("POST", "/api/v1/deployments/"): {
                "model_version": world.ids["deployable"],
                "environment": "pilot",
                "system": "Case system",
            },
            ("POST", "/api/v1/deployments/{id}/rollback/"): {"reason": "The promotion made things worse."},
            ("POST", "/api/v1/deployments/{id}/withdraw/"): {"reason": "The case system is retired."},
            ("POST", "/api/v1/deployments/{id}/batches/"): {
                "rows": json.loads(production(2000, 3).to_json(orient="records"))
            },
            ("POST", "/api/v1/deployments/{id}/labels/"): {"labels": [{"prediction_id": "P-1", "label": ">50K"}]},
            ("POST", "/api/v1/deployments/{id}/score/"): {"rows": [{"age": 30}]},
            ("POST", "/api/v1/scoring-tokens/"): {"deployment": world.ids["deployments"], "name": "ci"},
        }
        if (method, path) in monitoring_bodies:
            return monitoring_bodies[(method, path)], "json"
    if path.startswith(("/api/v1/alerts/", "/api/v1/alert-webhooks/", "/api/v1/feedback/", "/api/v1/retraining-")):
        loop_bodies: dict[tuple[str, str], Any] = {
            ("POST", "/api/v1/alerts/{id}/assign/"): {"assignee": "stella_steward"},
            ("POST", "/api/v1/alerts/{id}/comments/"): {"body": "Is the upstream form new?"},
            ("POST", "/api/v1/alerts/{id}/resolve/"): {"resolution": "Upstream extract fixed."},
            ("PUT", "/api/v1/alert-webhooks/{organisation}/"): {"url": "http://127.0.0.1:9/hook"},
            ("POST", "/api/v1/feedback/"): {"deployment": world.ids["deployments"], "kind": "feedback", "body": "Hm."},
            ("POST", "/api/v1/feedback/{id}/triage/"): {"category": "other", "severity": "info"},
            ("POST", "/api/v1/retraining-requests/"): {"deployment": world.ids["deployments"], "reason": "Drift."},
            # The world's deployed runs have no spec: the launch names every setting.
            ("POST", "/api/v1/retraining-requests/{id}/launch/"): {
                "spec_overrides": {
                    "label": "sex",
                    "features": ["age"],
                    "model": "logistic_regression",
                    "epochs": 1,
                    "batch_size": 2,
                    "learning_rate": 0.05,
                    "max_grad_norm": 1.0,
                    "target_epsilon": 0.5,
                    "seed": 0,
                }
            },
            ("POST", "/api/v1/retraining-requests/{id}/close/"): {"reason": "A data-entry fault."},
        }
        if (method, path) in loop_bodies:
            return loop_bodies[(method, path)], "json"
    if (method, path) == ("POST", "/api/v1/evaluations/"):
        return {"model_version": world.ids["model-versions"]}, "json"
    if path.startswith(("/api/v1/mitigations/", "/api/v1/row-explanations/")) and method == "POST":
        extra = {"method": "thresholds", "attribute": "sex"} if "mitigations" in path else {"position": 1}
        return {"model_version": world.ids["model-versions"], **extra}, "json"
    ethics_bodies: dict[tuple[str, str], Any] = {
        ("POST", "/api/v1/reviews/"): {"model_version": world.ids["model-versions"]},
        ("POST", "/api/v1/reviews/{id}/votes/"): {"choice": "approve", "reason": "Sound."},
        ("POST", "/api/v1/reviews/{id}/recusal/"): {"reason": "I advised the vendor."},
        ("POST", "/api/v1/reviews/{id}/answers/"): {"answers": {"purpose": {"answer": "yes"}}},
        ("POST", "/api/v1/reviews/{id}/stances/"): {"item_key": "purpose", "stance": "confirm"},
        ("POST", "/api/v1/reviews/{id}/comments/"): {"section": "usecase", "body": "Why this retention?"},
        ("POST", "/api/v1/reviews/{id}/waivers/"): {
            "justification": "j" * 30,
            "expires_on": (timezone.localdate() + timedelta(days=9)).isoformat(),
        },
        ("POST", "/api/v1/waivers/{id}/votes/"): {"choice": "approve", "reason": "Acceptable."},
        ("POST", "/api/v1/conditions/{id}/met/"): {"note": "Published."},
        ("PATCH", "/api/v1/boards/{organisation}/"): {"quorum": 1},
        ("POST", "/api/v1/model-cards/"): {
            "model_version": world.ids["model-versions"],
            "narrative": {"intended_use": "Triage"},
        },
    }
    ethics_bodies[("POST", "/api/v1/dataset-versions/{id}/anonymisations/")] = {"quasi_identifiers": ["age"], "k": 2}
    ethics_bodies[("POST", "/api/v1/reports/")] = {"kind": "art30", "subject": org_id}
    ethics_bodies[("POST", "/api/v1/compliance/usecases/{id}/evidence/")] = {
        "framework": "gdpr",
        "requirement": "GDPR-16",
        "label": "Rectification procedure",
        "url": "https://intranet.example.org/rectification",
    }
    ethics_bodies[("POST", "/api/v1/compliance/usecases/{id}/confirm/")] = {
        "framework": "gdpr",
        "requirement": "GDPR-5.1a",  # the world's use case holds a DPIA, one of its evidence kinds
    }
    ethics_bodies[("POST", "/api/v1/compliance/usecases/{id}/statement/")] = {"framework": "gdpr"}
    if (method, path) == ("POST", "/api/v1/compliance/frameworks/"):
        csv = b"id,title,evidence\nPOL-1,Human review of refusals,board_decision manual\n"
        return {
            "organisation": org_id,
            "file": SimpleUploadedFile("policy.csv", csv, "text/csv"),
            "kind": "policy",
            "key": "our-policy",
            "name": "Our policy",
        }, "multipart"
    if path.startswith("/api/v1/third-party-models/"):
        third_party_bodies: dict[tuple[str, str], Any] = {
            ("POST", "/api/v1/third-party-models/"): {
                "usecase": world.ids["usecases"],
                "supplier": "Northwind",
                "name": "Quill",
                "version": "2026-09",
                "intended_use": "Drafting letters a caseworker signs.",
            },
            ("PATCH", "/api/v1/third-party-models/{id}/"): {"version": "2026-10"},
            ("POST", "/api/v1/third-party-models/{id}/documentation/"): {
                "url": "https://vendor.example/card.pdf",
                "sha256": "a" * 64,
            },
            ("POST", "/api/v1/third-party-models/{id}/status/"): {"status": "suspended", "reason": "Vendor outage."},
        }
        if (method, path) in third_party_bodies:
            return third_party_bodies[(method, path)], "json"
    if path.startswith("/api/v1/rights/"):
        rights_bodies: dict[tuple[str, str], Any] = {
            ("POST", "/api/v1/rights/requests/"): {
                "organisation": org_id,
                "kind": "access",
                "identifier": "A-2",
                "identity_verification": "Passport",
            },
            ("POST", "/api/v1/rights/requests/{id}/assign/"): {"assignee": None},
            ("POST", "/api/v1/rights/requests/{id}/extend/"): {"reason": "Many requests this month."},
            ("POST", "/api/v1/rights/requests/{id}/decide/"): {
                "model_version": world.ids["model-versions"],
                "decision": "retrain",
            },
            ("POST", "/api/v1/rights/requests/{id}/execute/"): {},
        }
        if (method, path) in rights_bodies:
            return rights_bodies[(method, path)], "json"
    if (method, path) == ("POST", "/api/v1/signing-identities/"):
        cert_pem, key_pem = signing_pair()
        return {"organisation": org_id, "certificate_pem": cert_pem, "key_pem": key_pem}, "json"
    if (method, path) == ("POST", "/api/v1/reports/verify/"):
        return {"file": SimpleUploadedFile("r.pdf", b"%PDF-1.7 not ours", "application/pdf")}, "multipart"
    if (method, path) in ethics_bodies:
        return ethics_bodies[(method, path)], "json"
    if (method, path) == ("POST", "/api/v1/datasets/"):
        return {"usecase": world.ids["usecases"], "name": "Another"}, "json"
    if (method, path) == ("POST", "/api/v1/consent/imports/"):
        content = f"subject_id,purpose,status,timestamp\nS-1,{purpose},granted,2025-01-01T00:00:00Z\n".encode()
        return {"organisation": org_id, "file": SimpleUploadedFile("c.csv", content, "text/csv")}, "multipart"
    return bodies.get((method, path)), "json"


def call(client: APIClient, method: str, url: str, body: Any, fmt: str):  # type: ignore[no-untyped-def]
    handler = getattr(client, method.lower())
    if body is None:
        return handler(url)
    return handler(url, body, format=fmt)


@pytest.fixture
def world(
    org, other_org, admin_user, owner, steward, board_member, auditor, external_auditor, outsider, settings, tmp_path
):
    settings.STORAGE_ROOT = tmp_path
    settings.ALERT_WEBHOOK_ALLOW_LOOPBACK_HTTP = True  # PUT /alert-webhooks/ names the tests' loopback receiver
    make_user("newcomer")
    other_owner = make_user("olaf_other_owner", organisation=other_org, roles=(Role.STEWARD,))
    other_org.processing_purposes = ["Benefit fraud triage"]
    other_org.save()
    mine = build_world(org, admin_user, owner, steward, make_user("gina_grantee"))
    theirs = build_world(other_org, outsider, outsider, other_owner, make_user("gus_grantee"))
    personas = {
        "admin": admin_user,
        "owner": owner,
        "steward": steward,
        "board": board_member,
        "auditor": auditor,
        "external_auditor": external_auditor,
        "outsider": outsider,
        "anonymous": None,
    }
    return mine, theirs, personas


def schema_routes() -> set[tuple[str, str]]:
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    return {
        (method.upper(), path)
        for path, operations in schema["paths"].items()
        for method in operations
        if method in {"get", "post", "put", "patch", "delete"} and path.startswith("/api/v1/")
    }


def test_every_route_in_the_schema_is_in_the_matrix():
    routes = schema_routes()
    assert routes - set(EXPECTED) == set(), "add the new routes to EXPECTED"
    assert set(EXPECTED) - routes == set(), "remove routes that no longer exist"


@pytest.mark.django_db
@pytest.mark.parametrize(("method", "path"), sorted(EXPECTED))
def test_each_persona_gets_exactly_what_the_matrix_says(method, path, world):
    mine, theirs, personas = world
    failures = []
    for persona in PERSONAS:
        client = APIClient()
        if personas[persona] is not None:
            client.force_authenticate(personas[persona])
        body, fmt = request_body(method, path, mine)
        # Each persona starts from the same world: what one persona changed is rolled back before the next.
        with transaction.atomic():
            response = call(client, method, fill_path(path, mine), body, fmt)
            transaction.set_rollback(True)
        expected = EXPECTED[(method, path)][persona]
        if response.status_code != expected:
            failures.append(f"{persona}: {response.status_code} != {expected} {getattr(response, 'data', '')}")
        if response.status_code >= 400 and "application/json" in response.get("Content-Type", ""):
            assert set(response.json()) == {"error"}, response.json()
        if persona == "outsider" and response.status_code == 200 and method == "GET":
            content = b"".join(response.streaming_content) if response.streaming else response.content
            leaked = [key for key, value in mine.ids.items() if key != "events" and value.encode() in content]
            if leaked:
                failures.append(f"outsider saw {leaked} of another organisation")
    assert not failures, "\n".join(failures)


# Routes that answer to a deployment's scoring token only: any user, of any organisation, gets 401 there first.
TOKEN_ONLY = {("POST", "/api/v1/deployments/{id}/score/"), ("GET", "/api/v1/deployments/{id}/score/{job}/")}
DETAIL_ROUTES = sorted(route for route in EXPECTED if "{" in route[1] and route not in TOKEN_ONLY)


@pytest.mark.django_db
@pytest.mark.parametrize(("method", "path"), DETAIL_ROUTES)
def test_another_organisations_object_answers_404_even_to_an_admin(method, path, world):
    mine, theirs, personas = world
    client = APIClient()
    client.force_authenticate(personas["admin"])
    body, fmt = request_body(method, path, theirs)
    response = call(client, method, fill_path(path, theirs), body, fmt)
    assert response.status_code == 404, (response.status_code, getattr(response, "data", None))
    assert response.json()["error"]["code"] == "not_found"
