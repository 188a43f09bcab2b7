import pytest

from apps.accounts.models import Role
from apps.evaluation.models import Evaluation
from apps.evaluation.services import evaluation_request
from apps.training.services import training_run_request
from tests.conftest import make_user, run_inline  # noqa: F401 - run_inline is shared with other tests
from tests.training.conftest import approved_usecase, prepared_version, private_storage, run_spec  # noqa: F401


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
    run_inline(run.job_id)
    run.refresh_from_db()
    model = run.model_version
    run_inline(Evaluation.objects.get(model_version=model).job_id)
    return model


def reevaluate(model, actor=None):
    item = evaluation_request(actor=actor, model_version=model)
    run_inline(item.job_id)
    item.refresh_from_db()
    return item
