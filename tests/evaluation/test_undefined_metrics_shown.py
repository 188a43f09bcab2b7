"""An undefined fairness ratio (0/0) reaches people as "undefined", and its gate as "cannot be evaluated" with the
reason, on the evaluation page, in the model card report and in the board's list of what blocks approval; the
verdict is not a pass (issue 12, point 4)."""

import json

import numpy as np
import pandas as pd
import pytest
from django.urls import reverse

from apps.ethics.models import ReviewRequest
from apps.ethics.selectors import failing_items
from apps.evaluation.models import Evaluation
from apps.reports.content import model_card
from apps.training.services import training_run_request
from tests.conftest import run_inline
from tests.training.conftest import run_spec
from workers.engine.evaluation.evaluate import Policy, evaluate

pytestmark = pytest.mark.django_db


@pytest.fixture
def evaluated(prepared_version, owner):
    run = training_run_request(actor=owner, version=prepared_version, spec=run_spec(target_epsilon=2.0))
    run_inline(run.job_id)
    run.refresh_from_db()
    item = Evaluation.objects.get(model_version=run.model_version)
    run_inline(item.job_id)
    item.refresh_from_db()
    return item


def test_an_undefined_ratio_is_shown_as_undefined_and_its_gate_cannot_be_evaluated(evaluated, owner, client):
    # The engine's results for a model that predicts nobody positive: the selection-rate ratio is 0/0.
    rng = np.random.default_rng(1)
    n = 300
    results = evaluate(
        y_true=rng.integers(0, 2, n),
        y_score=np.full(n, 0.2),
        sensitive=pd.DataFrame({"sex": rng.choice(["Female", "Male"], n)}),
        resamples=30,
        policy=Policy(
            ["sex"],
            [
                {"metric": "demographic_parity_ratio", "threshold": 0.8},
                {"metric": "demographic_parity_difference", "threshold": 0.2},
            ],
        ),
    )
    Evaluation.objects.filter(pk=evaluated.pk).update(results=results, verdict=results["verdict"])
    evaluated.refresh_from_db()
    assert evaluated.verdict == "unknown"
    assert evaluated.results["groupings"][0]["fairness"]["demographic_parity_ratio"]["value"] is None  # JSON null

    client.force_login(owner)
    page = client.get(reverse("evaluation:detail", args=[evaluated.id])).content.decode()
    assert "Some gates cannot be evaluated" in page
    assert "Cannot be evaluated" in page and "no judged group has a positive prediction" in page
    assert "undefined" in page and "All gates pass" not in page
    # The gate's chart rendered under its label, its undefined bar included.
    assert "Demographic parity ratio</text>" in page

    review = ReviewRequest(
        kind=ReviewRequest.Kind.DEPLOYMENT,
        model_version=evaluated.model_version,
        usecase=evaluated.model_version.usecase,
    )
    blocking = [item["label"] for item in failing_items(review)]
    assert any("demographic parity ratio cannot be evaluated" in label for label in blocking)

    card = json.dumps(model_card(evaluated.model_version).sections, default=str)
    assert "undefined" in card and "cannot be evaluated" in card and "not a pass" in card
