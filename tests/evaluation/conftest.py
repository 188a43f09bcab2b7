import pytest

from tests.training.conftest import approved_usecase, prepared_version, private_storage  # noqa: F401 - shared fixtures


@pytest.fixture
def original(prepared_version, owner):  # noqa: F811 - the shared fixture above
    """A private model whose held-out evaluation has run (it spent epsilon 2 of the use case's cap of 5): the model
    the mitigation and explanation tests start from."""
    from apps.evaluation.models import Evaluation
    from apps.training.services import training_run_request
    from tests.conftest import run_inline
    from tests.training.conftest import run_spec

    run = training_run_request(actor=owner, version=prepared_version, spec=run_spec(target_epsilon=2.0))
    run_inline(run.job_id)
    run.refresh_from_db()
    model = run.model_version
    run_inline(Evaluation.objects.get(model_version=model).job_id)
    return model
