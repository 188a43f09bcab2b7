"""The model card and Annex IV carry the evaluation's explanation, counterfactual, robustness and mitigation sections,
read back from the signed PDF by poppler (what a regulator reads) and from its embedded evidence."""

import io
import json
import re
import subprocess

import pikepdf
import pytest

from apps.evaluation.mitigation import mitigation_request
from apps.evaluation.models import Evaluation
from tests.conftest import run_inline
from tests.evaluation.test_explanations_in_evaluation import (  # noqa: F401 - fixtures used by name
    LOUD_NOISE,
    approved_usecase,
    robustness_gates,
    train_and_evaluate,
)
from tests.reports.conftest import issue

pytestmark = pytest.mark.django_db

FAILING_GATE = [{"kind": "gaussian_noise", "level": LOUD_NOISE, "metric": "accuracy_drop", "max": 0.0}]


def pdftotext(data):
    """poppler's reading in layout order: a table row stays one line, as a person reads it."""
    return subprocess.run(
        ["pdftotext", "-layout", "-", "-"], input=data, capture_output=True, check=True
    ).stdout.decode()


def flat(text):
    """pdftotext's words with every run of white space as one space and without hyphens: table cells wrap across
    lines, and a name wrapped at its hyphen ("Amer-Indian-Eskimo") comes back without it."""
    return re.sub(r"\s+", " ", text).replace("-", "")


def has(text, phrase):
    return flat(phrase) in text


@pytest.fixture
def evaluated(owner, prepared_version):
    run, item = train_and_evaluate(owner, prepared_version)
    return run.model_version, item


@pytest.mark.parametrize("robustness_gates", [FAILING_GATE])
def test_the_model_card_explains_probes_perturbs_and_compares_the_mitigated_candidate(
    owner, steward, evaluated, read_report
):
    model, item = evaluated
    candidate_run = mitigation_request(
        actor=steward, model_version=model, method="thresholds", constraint="demographic_parity", attribute="sex"
    )
    run_inline(candidate_run.job_id)
    candidate_run.refresh_from_db()
    run_inline(Evaluation.objects.get(model_version=candidate_run.model_version).job_id)

    data = read_report(issue(owner, "model_card", model))
    text = flat(pdftotext(data))
    with pikepdf.open(io.BytesIO(data)) as pdf:
        evidence = json.loads(pdf.attachments["evidence.json"].get_file().read_bytes())
    results = item.results
    assert evidence["evaluation"]["results"]["robustness_gates"] == results["robustness_gates"]
    assert evidence["evaluation"]["results"]["explanations"] == results["explanations"]

    for heading in ("Explanations", "Robustness", "Bias mitigation"):
        assert re.search(rf"\d+\. {heading}", text), heading  # in the contents and as a numbered chapter
    assert has(text, "Exact Shapley values (linear model)")
    # The numbers a person reads are the evidence's: the top feature and its mean |attribution|.
    top = results["explanations"]["features"][0]
    assert has(text, f"{top['feature']} {top['mean_abs_attribution']:.3f}")
    small = [g for g in results["explanations"]["by_group"] if g["too_small"]]
    # Each small group's row says "too few rows" and nothing else (its name may wrap, so the rows are counted).
    assert small and text.count("too few rows (not shown)") == len(small)
    sex = next(p for p in results["counterfactual"] if p["attribute"] == "sex")
    assert has(text, f"All rows {sex['rows']} {sex['changed_share']:.3f}")
    gate = results["robustness_gates"][0]
    assert has(text, f"Accuracy drop under Gaussian noise at {LOUD_NOISE:g} {gate['value']:.3f} at most 0 fail")
    # The mitigation chapter: the original and its candidate, each with its own evaluation's accuracy.
    candidate = candidate_run.model_version
    candidate_accuracy = Evaluation.objects.get(model_version=candidate).results["overall"]["accuracy"]
    assert has(text, f"v{model.number} (original)") and has(text, f"v{candidate.number} (thresholds)")
    assert has(text, f"{candidate_accuracy:.3f}")


@pytest.mark.parametrize("robustness_gates", [FAILING_GATE])
def test_annex_iv_documents_explanations_and_robustness_testing_under_validation(admin_user, evaluated, read_report):
    model, item = evaluated
    text = flat(pdftotext(read_report(issue(admin_user, "annex_iv", model))))
    validation = text[text.index("Validation and testing") :]
    for heading in ("Explanations of the model's decisions", "Robustness testing", "Bias mitigation"):
        assert has(validation, heading)
    assert has(validation, "Counterfactual probe")
    assert has(validation, "Robustness: Gaussian noise") and has(validation, "Robustness: PGD")
    assert has(validation, "No bias mitigation has been run on this model.")
    gate = item.results["robustness_gates"][0]
    assert has(validation, f"{gate['value']:.3f} at most 0 fail")
