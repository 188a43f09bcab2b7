import pytest

from apps.core.errors import ValidationFailed
from apps.usecases.dpia import dpia_missing, normalise_dpia, overall_risk, residual_risk
from apps.usecases.policies import epsilon_tier, normalise_fairness_policy, normalise_privacy_policy
from tests.usecases.factories import complete_dpia


@pytest.mark.parametrize(
    ("likelihood", "severity", "expected"),
    [
        # The ICO matrix, read off its template: remote/minimal is low, probable/severe high, the middle medium.
        ("remote", "minimal", "low"),
        ("remote", "significant", "low"),
        ("possible", "minimal", "low"),
        ("possible", "significant", "medium"),
        ("remote", "severe", "medium"),
        ("probable", "minimal", "medium"),
        ("possible", "severe", "high"),
        ("probable", "significant", "high"),
        ("probable", "severe", "high"),
    ],
)
def test_overall_risk_follows_the_ico_matrix(likelihood, severity, expected):
    assert overall_risk(likelihood, severity) == expected


def test_a_complete_dpia_has_nothing_missing_and_ratings_are_derived():
    dpia = normalise_dpia(complete_dpia())
    assert dpia_missing(dpia) == []
    assert [risk["overall"] for risk in dpia["risks"]] == ["high", "low"]
    assert residual_risk(dpia) == "medium"


def test_a_high_risk_without_a_measure_blocks_submission():
    raw = complete_dpia()
    raw["measures"] = []
    missing = dpia_missing(normalise_dpia(raw))
    assert any("R1 (high) has no measure" in item for item in missing)
    assert not any("R2" in item for item in missing)  # low risks may stand without a measure


def test_invalid_risk_rows_are_named():
    raw = complete_dpia()
    raw["risks"][1]["likelihood"] = "certain"
    with pytest.raises(ValidationFailed) as caught:
        normalise_dpia(raw)
    assert "risks[2]" in caught.value.details["dpia"]


def test_measures_must_point_at_a_registered_risk():
    raw = complete_dpia()
    raw["measures"][0]["risk"] = "R9"
    with pytest.raises(ValidationFailed) as caught:
        normalise_dpia(raw)
    assert "measures[1]" in caught.value.details["dpia"]


def test_fairness_policy_rejects_unknown_metrics_and_bad_ratio_thresholds():
    with pytest.raises(ValidationFailed) as caught:
        normalise_fairness_policy(
            {
                "gates": [
                    {"metric": "accuracy_gap", "threshold": 0.1},
                    {"metric": "demographic_parity_ratio", "threshold": 1.5},
                ]
            }
        )
    errors = caught.value.details["fairness_policy"]
    assert set(errors) == {"gates[1]", "gates[2]"}


def test_fairness_gates_carry_their_direction():
    policy = normalise_fairness_policy(
        {
            "sensitive_attributes": "sex, race, sex",
            "gates": [{"metric": "demographic_parity_ratio", "threshold": "0.8"}],
        }
    )
    assert policy["sensitive_attributes"] == ["sex", "race"]
    assert policy["gates"] == [{"metric": "demographic_parity_ratio", "threshold": 0.8, "direction": "min"}]


@pytest.mark.parametrize(
    "bad",
    [{"epsilon_cap": 0}, {"epsilon_cap": "lots"}, {"delta": 0.5}, {"accountant": "gdp"}, {"max_consent_age_days": -1}],
)
def test_privacy_policy_refuses_unsafe_values(bad):
    with pytest.raises(ValidationFailed):
        normalise_privacy_policy(bad)


def test_gdp_is_not_an_allowed_accountant_because_it_can_underestimate():
    with pytest.raises(ValidationFailed) as caught:
        normalise_privacy_policy({"accountant": "gdp"})
    assert "accountant" in caught.value.details["privacy_policy"]


@pytest.mark.parametrize(
    ("epsilon", "tier"), [(0.5, "strong"), (1.0, "strong"), (3, "reasonable"), (10, "reasonable"), (10.01, "weak")]
)
def test_epsilon_tiers(epsilon, tier):
    assert epsilon_tier(epsilon) == tier
