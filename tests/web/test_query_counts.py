"""Every HTML list page runs the same number of queries whatever the number of rows it lists.

Each case renders its page with one row, adds four more of the same kind, and renders it again: the counts must be
equal (a query per row is an N+1, which a page of two hundred reviews turns into hundreds of round trips). Rows are
made with the services where that is cheap, and otherwise written directly with the fields the pages read.
"""

from __future__ import annotations

import hashlib
import itertools
import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from apps.accounts.models import Membership, Role
from apps.accounts.services import api_token_create
from apps.audit.services import audit_record
from apps.consent.services import consent_import_create
from apps.datasets.models import DatasetVersion
from apps.datasets.services import dataset_create
from apps.ethics.models import ReviewRequest
from apps.jobs.models import Job
from apps.reports.models import Report
from apps.training.models import ModelVersion, TrainingRun
from apps.usecases.services import usecase_create, usecase_transition
from tests.conftest import make_user
from tests.usecases.factories import usecase_data

pytestmark = pytest.mark.django_db

_counter = itertools.count(1)


def _n() -> int:
    return next(_counter)


def _sha() -> str:
    return hashlib.sha256(uuid.uuid4().bytes).hexdigest()


def count_queries(client, url: str) -> tuple[int, str]:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    return len(captured.captured_queries), response.content.decode()


def assert_constant(client, url: str, add_row, marker=None) -> None:
    """Render ``url`` with one row and with five; the query counts must be equal."""
    first = add_row(0)
    client.get(url)  # warm per-process caches (content types, sessions) so both counts measure the same work
    one, html = count_queries(client, url)
    if marker:
        assert marker(first) in html, "the row under test is not on the page"
    for index in range(1, 5):
        add_row(index)
    five, html = count_queries(client, url)
    assert five == one, f"{url}: {one} queries with one row, {five} with five"


# ------------------------------------------------------------------------------------------------ building blocks


def new_usecase(org, owner, *, submit: bool = False):
    data = usecase_data(title=f"Use case {_n()}")
    usecase = usecase_create(actor=owner, organisation=org, data=data)
    if submit:
        usecase = usecase_transition(actor=owner, usecase=usecase, action="submit")
    return usecase


def new_version(dataset, steward, *, kind: str = DatasetVersion.Kind.PREPARED, parent=None) -> DatasetVersion:
    return DatasetVersion.objects.create(
        dataset=dataset,
        number=dataset.versions.count() + 1,
        kind=kind,
        status=DatasetVersion.Status.READY,
        parent=parent,
        file_name="rows.csv",
        file_format="csv",
        sha256=_sha(),
        size_bytes=100,
        row_count=10,
        column_names=["a", "b"],
        storage_path="nowhere",
        created_by=steward,
    )


def new_job(org, user, *, kind: str = "diagnostics", status: str = Job.Status.SUCCEEDED, target=None) -> Job:
    target_type = f"{target._meta.app_label}.{target._meta.model_name}" if target is not None else ""
    return Job.objects.create(
        organisation=org,
        kind=kind,
        task_name=f"attest.{kind}",
        status=status,
        created_by=user,
        target_type=target_type,
        target_id=str(target.id) if target is not None else "",
    )


def new_run(org, usecase, version, owner, *, status=TrainingRun.Status.SUCCEEDED) -> TrainingRun:
    run = TrainingRun.objects.create(
        organisation=org,
        usecase=usecase,
        dataset_version=version,
        created_by=owner,
        status=status,
        spec={"model": "logistic_regression", "target_epsilon": 1.0, "label": "b", "features": ["a"]},
        privacy={"epsilon": 0.9, "delta": 1e-5},
        metrics={"validation_accuracy": 0.8},
    )
    run.job = new_job(org, owner, kind="training", target=run)
    run.save(update_fields=["job"])
    return run


def new_model(org, usecase, version, owner) -> ModelVersion:
    run = new_run(org, usecase, version, owner)
    return ModelVersion.objects.create(
        organisation=org,
        usecase=usecase,
        training_run=run,
        number=usecase.model_versions.count() + 1,
        sha256=_sha(),
        storage_path="nowhere",
        manifest={"privacy": {"epsilon": 0.9}},
    )


@pytest.fixture
def world(org, owner, steward):
    usecase = new_usecase(org, owner)
    dataset = dataset_create(actor=steward, usecase=usecase, name="Applicants")
    return {"usecase": usecase, "dataset": dataset, "version": new_version(dataset, steward)}


# ------------------------------------------------------------------------------------------------------ the pages


def test_use_case_list(client, org, owner):
    client.force_login(owner)
    assert_constant(client, reverse("usecases:list"), lambda i: new_usecase(org, owner), lambda u: u.reference)


def test_dataset_list(client, org, owner, steward):
    client.force_login(steward)
    usecase = new_usecase(org, owner)
    assert_constant(
        client,
        reverse("datasets:list"),
        lambda i: dataset_create(actor=steward, usecase=usecase, name=f"Dataset {i}"),
        lambda d: d.name,
    )


def test_dataset_versions(client, world, steward):
    client.force_login(steward)
    dataset = world["dataset"]
    assert_constant(
        client,
        reverse("datasets:detail", args=[dataset.id]),
        lambda i: new_version(dataset, steward, parent=world["version"]),
    )


def test_consent_imports(client, org, steward):
    client.force_login(steward)

    def add(i):
        return consent_import_create(
            actor=steward,
            organisation=org,
            file_name=f"consent-{i}.csv",
            chunks=iter([b"subject_id,purpose,status,timestamp\n"]),
        )

    assert_constant(client, reverse("consent:home"), add, lambda c: c.file_name)


def test_training_runs_and_models(client, org, owner, world):
    client.force_login(owner)

    def add(i):
        return new_model(org, world["usecase"], world["version"], owner)

    assert_constant(client, reverse("training:home"), add, lambda m: m.sha256[:16])


def test_review_list(client, org, owner, steward, board_member, world):
    # The reviews list, and the "awaiting your vote" box above it, with a development and a deployment review per
    # row: each open and awaiting this member (the issue measured 27 queries growing to 54 with four reviews).
    make_user("boris_board", organisation=org, roles=(Role.BOARD,))
    client.force_login(board_member)
    derived = new_version(world["dataset"], steward, parent=world["version"])

    def add(i):
        development = new_usecase(org, owner, submit=True).reviews.get()
        model = new_model(org, world["usecase"], derived, owner)
        number = _n()
        ReviewRequest.objects.create(
            organisation=org,
            reference=f"DR-{number:04d}",
            kind=ReviewRequest.Kind.DEPLOYMENT,
            usecase=world["usecase"],
            model_version=model,
            requested_by=owner,
            bindings={},
            bindings_sha256=_sha(),
            due_at=timezone.now() + timedelta(days=14),
        )
        return development

    assert_constant(client, reverse("ethics:list"), add, lambda r: r.reference)
    html = client.get(reverse("ethics:list")).content.decode()
    awaiting = html.split('id="awaiting-heading"')[1].split("</section>")[0]
    assert awaiting.count("<li>") == 10  # every open review awaits this member: the batch keeps the rule


def test_board_members(client, org, admin_user):
    client.force_login(admin_user)
    assert_constant(
        client,
        reverse("ethics:board"),
        lambda i: make_user(f"board_{_n()}", organisation=org, roles=(Role.BOARD,)),
        lambda u: u.display_name,
    )


def test_report_library(client, org, owner, world):
    client.force_login(owner)
    usecase = world["usecase"]

    def add(i):
        number = _n()
        report = Report.objects.create(
            organisation=org,
            kind=Report.Kind.DPIA,
            subject_type="usecases.usecase",
            subject_id=str(usecase.id),
            subject_label=str(usecase),
            usecase=usecase,
            version=number,
            reference=f"RP-{number:05d}",
            status=Report.Status.READY,
            created_by=owner,
            sha256=_sha(),
            pages=3,
        )
        report.job = new_job(org, owner, kind="report", target=report)
        report.save(update_fields=["job"])
        return report

    assert_constant(client, reverse("reports:library"), add, lambda r: r.reference)


def test_job_list(client, org, owner, world):
    client.force_login(owner)

    def add(i):
        run = new_run(org, world["usecase"], world["version"], owner)
        return run.job

    assert_constant(client, reverse("jobs:list"), add)


def test_audit_trail(client, org, admin_user, auditor):
    client.force_login(auditor)

    def add(i):
        audit_record(actor=admin_user, organisation=org, action="test.write", target=org, after={"i": i})

    assert_constant(client, reverse("audit:trail"), add)


def test_members(client, org, admin_user):
    client.force_login(admin_user)

    def add(i):
        user = make_user(f"member_{_n()}")
        return Membership.objects.create(user=user, organisation=org, role=Role.STEWARD)

    assert_constant(client, reverse("accounts:members"), add, lambda m: m.user.username)


def test_tokens(client, owner):
    client.force_login(owner)
    assert_constant(
        client,
        reverse("accounts:tokens"),
        lambda i: api_token_create(actor=owner, name=f"token {i}", expires_at=timezone.now() + timedelta(days=30))[0],
        lambda t: t.name,
    )


def test_notices(client, org, owner, board_member):
    client.force_login(board_member)
    assert_constant(client, reverse("ethics:notices"), lambda i: new_usecase(org, owner, submit=True))


def test_dashboard(client, org, owner, board_member):
    client.force_login(board_member)
    assert_constant(client, reverse("dashboard"), lambda i: new_usecase(org, owner, submit=True))


def test_the_batched_awaiting_list_agrees_with_each_reviews_own_state(org, owner, steward, board_member, world):
    from apps.ethics.selectors import review_state, reviews_awaiting
    from apps.ethics.services import review_recuse, vote_cast

    data_steward_on_board = make_user("bea_board_steward", organisation=org, roles=(Role.BOARD, Role.STEWARD))
    voter = make_user("vic_board", organisation=org, roles=(Role.BOARD,))
    recused = make_user("rita_board", organisation=org, roles=(Role.BOARD,))
    made_by_member = new_version(world["dataset"], data_steward_on_board, parent=world["version"])
    development = new_usecase(org, owner, submit=True).reviews.get()
    deployment = ReviewRequest.objects.create(
        organisation=org,
        reference="DR-9001",
        kind=ReviewRequest.Kind.DEPLOYMENT,
        usecase=world["usecase"],
        model_version=new_model(org, world["usecase"], made_by_member, owner),
        requested_by=owner,
        bindings={},
        bindings_sha256=_sha(),
        due_at=timezone.now() + timedelta(days=14),
    )
    vote_cast(actor=voter, review=development, choice="approve", reason="Sound.")
    review_recuse(actor=recused, review=deployment, reason="I advised the vendor.")
    for user in (board_member, data_steward_on_board, voter, recused, owner, steward):
        expected = {
            review.id
            for review in ReviewRequest.objects.filter(organisation=org, status="open")
            if any(member.id == user.id for member in review_state(review).pending)
        }
        assert {review.id for review in reviews_awaiting(user, org)} == expected, user.username
    assert {r.id for r in reviews_awaiting(data_steward_on_board, org)} == {development.id}
