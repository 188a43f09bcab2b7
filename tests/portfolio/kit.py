"""Objects the portfolio reads, made directly with the fields it reads (the inventory is about counting them, not
about how deployments, reviews or waivers come to be: their own tests cover that)."""

from __future__ import annotations

import itertools
import uuid
from datetime import date, timedelta
from typing import Any

from django.utils import timezone

from apps.accounts.models import Organisation, User
from apps.datasets.models import Dataset, DatasetVersion
from apps.deployments.models import Alert, Deployment
from apps.ethics.models import Condition, Decision, ReviewRequest, Waiver
from apps.training.models import ModelVersion, TrainingRun
from apps.usecases.models import UseCase
from apps.usecases.services import usecase_create
from tests.usecases.factories import usecase_data

_numbers = itertools.count(1)


def new_usecase(org: Organisation, owner: User, *, status: str = "", **overrides: Any) -> UseCase:
    usecase = usecase_create(actor=owner, organisation=org, data=usecase_data(**overrides))
    if status:
        UseCase.objects.filter(pk=usecase.pk).update(status=status)
        usecase.refresh_from_db()
    return usecase


def _model(usecase: UseCase, owner: User) -> ModelVersion:
    dataset = Dataset.objects.create(
        organisation=usecase.organisation, usecase=usecase, name=f"Data {next(_numbers)}", created_by=owner
    )
    version = DatasetVersion.objects.create(
        dataset=dataset,
        number=1,
        kind="prepared",
        status="ready",
        file_name="p.parquet",
        file_format="parquet",
        sha256=uuid.uuid4().hex * 2,
        size_bytes=1,
        row_count=2,
        column_names=["a"],
        storage_path="x",
        wrapped_key="k",
        created_by=owner,
    )
    run = TrainingRun.objects.create(
        organisation=usecase.organisation, usecase=usecase, dataset_version=version, created_by=owner, spec={}
    )
    return ModelVersion.objects.create(
        organisation=usecase.organisation,
        usecase=usecase,
        training_run=run,
        number=next(_numbers),
        sha256=uuid.uuid4().hex * 2,
        storage_path="models/x",
        manifest={},
    )


def deploy(usecase: UseCase, owner: User, environment: str, *, status: str = "active") -> Deployment:
    model = _model(usecase, owner)
    review = ReviewRequest.objects.create(
        organisation=usecase.organisation,
        reference=f"RV-{next(_numbers):04d}",
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
    return Deployment.objects.create(
        organisation=usecase.organisation,
        usecase=usecase,
        model_version=model,
        review=review,
        environment=environment,
        system="Case system",
        owner=owner,
        deployed_on=timezone.localdate(),
        status=status,
        plan={},
        public_slug=f"p-{uuid.uuid4().hex[:12]}",
        created_by=owner,
    )


def alert(deployment: Deployment, status: str = "open") -> Alert:
    return Alert.objects.create(
        organisation=deployment.organisation,
        deployment=deployment,
        monitor=f"data_drift:psi:{uuid.uuid4().hex[:6]}",
        family="data_drift",
        severity="warning",
        title="Drift",
        status=status,
        detail={},
    )


def decided_review(usecase: UseCase, owner: User) -> Decision:
    review = ReviewRequest.objects.create(
        organisation=usecase.organisation,
        reference=f"RV-{next(_numbers):04d}",
        kind="development",
        status="decided",
        usecase=usecase,
        requested_by=owner,
        bindings={},
        bindings_sha256="0" * 64,
        due_at=timezone.now(),
    )
    return Decision.objects.create(
        review=review,
        outcome="approved_with_conditions",
        tally={},
        quorum=1,
        approval_threshold=0.5,
        bindings_sha256="0" * 64,
    )


def condition(usecase: UseCase, owner: User, status: str = "open") -> Condition:
    return Condition.objects.create(
        decision=decided_review(usecase, owner),
        organisation=usecase.organisation,
        text="Publish a notice",
        owner=owner,
        due_on=timezone.localdate(),
        proposed_by=owner,
        status=status,
    )


def waiver(usecase: UseCase, owner: User, *, expires_in_days: int, status: str = "granted") -> Waiver:
    return Waiver.objects.create(
        review=decided_review(usecase, owner).review,
        waived=[{"key": "gate:x", "label": "x"}],
        justification="j" * 30,
        expires_on=timezone.localdate() + timedelta(days=expires_in_days),
        requested_by=owner,
        status=status,
    )


def third_party(usecase: UseCase, owner: User, *, name: str = "Letter drafter", status: str = "active") -> Any:
    from apps.thirdparty.models import ThirdPartyModel

    return ThirdPartyModel.objects.create(
        organisation=usecase.organisation,
        usecase=usecase,
        supplier="Example AI Ltd",
        name=name,
        version="2025-06",
        intended_use="Drafting letters.",
        created_by=owner,
        status=status,
    )


def days_from_today(days: int) -> date:
    return timezone.localdate() + timedelta(days=days)
