import pytest

from apps.accounts.models import Role
from apps.evaluation.models import Evaluation
from apps.evaluation.services import evaluation_request
from apps.jobs.services import job_claim, job_succeed
from apps.training.services import training_run_request
from tests.conftest import make_user
from tests.training.conftest import approved_usecase, prepared_version, private_storage, run_spec  # noqa: F401
from workers.runtime import JobContext
from workers.tasks import evaluation, training


def run_inline(task, job_id):
    """Run a job's body exactly as the worker would, in this process."""
    job = job_claim(job_id=job_id, worker="test")
    job_succeed(job=job, result=task.job_body(JobContext(job=job), job.spec))


@pytest.fixture
def board2(org):
    return make_user("boris_board", organisation=org, roles=(Role.BOARD,))


@pytest.fixture
def board3(org):
    return make_user("bianca_board", organisation=org, roles=(Role.BOARD,))


@pytest.fixture
def trained_model(owner, prepared_version):  # noqa: F811 - the shared fixture, requested by name
    """A DP model trained on the prepared sample and evaluated on its held-out rows (gates pass at 0.9)."""
    run = training_run_request(actor=owner, version=prepared_version, spec=run_spec(target_epsilon=2.0))
    run_inline(training, run.job_id)
    run.refresh_from_db()
    model = run.model_version
    run_inline(evaluation, Evaluation.objects.get(model_version=model).job_id)
    return model


def reevaluate(model, actor=None):
    item = evaluation_request(actor=actor, model_version=model)
    run_inline(evaluation, item.job_id)
    item.refresh_from_db()
    return item
