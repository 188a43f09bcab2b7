"""Applicability of the shipped catalogues for a matrix of use-case answers.

Each expectation comes from the text of the regulation (cited per case), not from the catalogue files: if a rule in a
catalogue drifts from the law, this fails.
"""

from __future__ import annotations

import pytest

from apps.compliance.models import Framework
from apps.compliance.rules import Answers, evaluate, rule_errors


def answers(tier="high", area="5", personal=True, special=False, automated=False, roles=("provider",)):
    return Answers(tier, area, personal, special, automated, frozenset(roles))


HIGH_PROVIDER = answers()
HIGH_DEPLOYER = answers(roles=("deployer",))
HIGH_BOTH = answers(roles=("provider", "deployer"))
CRITICAL_INFRA_DEPLOYER = answers(area="2", roles=("deployer",))
EMPLOYMENT_DEPLOYER = answers(area="4", roles=("deployer",))
MINIMAL = answers(tier="minimal", area="", roles=("provider", "deployer"))
LIMITED_DEPLOYER = answers(tier="limited", area="", roles=("deployer",))
NO_PERSONAL_DATA = answers(tier="minimal", area="", personal=False, roles=("provider", "deployer"))
AUTOMATED = answers(automated=True)
SPECIAL = answers(special=True)

CASES = [
    # AI Act Art. 9: providers of high-risk systems run a risk management system (Art. 16(a) puts Section 2 on them).
    ("eu-ai-act", "AIA-9", HIGH_PROVIDER, True),
    ("eu-ai-act", "AIA-9", HIGH_DEPLOYER, False),
    ("eu-ai-act", "AIA-9", MINIMAL, False),
    # Art. 11 technical documentation (Annex IV) is the provider's, for high-risk systems only.
    ("eu-ai-act", "AIA-11", HIGH_PROVIDER, True),
    ("eu-ai-act", "AIA-11", HIGH_DEPLOYER, False),
    # Art. 17 quality management system: providers.
    ("eu-ai-act", "AIA-17", HIGH_BOTH, True),
    ("eu-ai-act", "AIA-17", MINIMAL, False),
    # Art. 26: obligations of deployers of high-risk systems; an organisation that is both carries them too.
    ("eu-ai-act", "AIA-26", HIGH_DEPLOYER, True),
    ("eu-ai-act", "AIA-26", HIGH_BOTH, True),
    ("eu-ai-act", "AIA-26", HIGH_PROVIDER, False),
    ("eu-ai-act", "AIA-26", MINIMAL, False),
    # Art. 26(7): deployers who are employers inform workers: Annex III point 4 (employment) systems.
    ("eu-ai-act", "AIA-26.7", EMPLOYMENT_DEPLOYER, True),
    ("eu-ai-act", "AIA-26.7", HIGH_DEPLOYER, False),
    # Art. 27(1): fundamental rights impact assessment by deployers of Annex III systems, except point 2.
    ("eu-ai-act", "AIA-27", HIGH_DEPLOYER, True),
    ("eu-ai-act", "AIA-27", CRITICAL_INFRA_DEPLOYER, False),
    ("eu-ai-act", "AIA-27", HIGH_PROVIDER, False),
    # Art. 72 post-market monitoring: providers of high-risk systems.
    ("eu-ai-act", "AIA-72", HIGH_PROVIDER, True),
    ("eu-ai-act", "AIA-72", HIGH_DEPLOYER, False),
    # Art. 50: transparency obligations for systems that interact with people or generate content (limited risk).
    ("eu-ai-act", "AIA-50", LIMITED_DEPLOYER, True),
    ("eu-ai-act", "AIA-50", MINIMAL, False),
    # GDPR Art. 35: a DPIA wherever personal data is processed in a likely high-risk way; nothing without personal data.
    ("gdpr", "GDPR-35", HIGH_PROVIDER, True),
    ("gdpr", "GDPR-35", NO_PERSONAL_DATA, False),
    ("gdpr", "GDPR-30", NO_PERSONAL_DATA, False),
    # Art. 22: solely automated decisions with legal or similarly significant effects.
    ("gdpr", "GDPR-22", AUTOMATED, True),
    ("gdpr", "GDPR-22", HIGH_PROVIDER, False),
    # Art. 9: special categories of personal data.
    ("gdpr", "GDPR-9", SPECIAL, True),
    ("gdpr", "GDPR-9", HIGH_PROVIDER, False),
    # Art. 5 principles hold for any processing of personal data, whatever the AI Act tier.
    ("gdpr", "GDPR-5.1a", MINIMAL, True),
    ("gdpr", "GDPR-5.1a", NO_PERSONAL_DATA, False),
]


def current_requirement(framework_key, code):
    framework = Framework.objects.get(organisation__isnull=True, key=framework_key)
    return framework.current.requirements.get(code=code)


@pytest.mark.django_db
@pytest.mark.parametrize(("framework_key", "code", "given", "applies"), CASES)
def test_applicability_follows_the_regulation(framework_key, code, given, applies):
    requirement = current_requirement(framework_key, code)
    holds, reason = evaluate(requirement.applies, given)
    assert holds is applies, reason
    if not applies:
        assert reason  # a not-applicable requirement always says why


@pytest.mark.django_db
def test_a_third_party_model_makes_the_organisation_its_deployer(usecase):
    usecase.ai_act_role = "provider"
    art26 = current_requirement("eu-ai-act", "AIA-26")
    assert evaluate(art26.applies, Answers.of(usecase))[0] is False
    assert evaluate(art26.applies, Answers.of(usecase, uses_third_party_model=True))[0] is True


def test_the_reason_names_the_failing_clause():
    holds, reason = evaluate({"risk_tier": ["high"], "ai_act_role": ["deployer"]}, answers(roles=("provider",)))
    assert not holds
    assert "deployer" in reason and "provider" in reason


def test_combinators():
    rule = {"any": [{"risk_tier": ["limited"]}, {"annex_iii_area": ["1"]}], "not": {"automated_decisions": True}}
    assert evaluate(rule, answers(tier="limited", area=""))[0]
    assert evaluate(rule, answers(area="1"))[0]
    assert not evaluate(rule, answers(area="5"))[0]
    assert not evaluate(rule, answers(tier="limited", area="", automated=True))[0]
    assert evaluate({}, MINIMAL) == (True, "")


@pytest.mark.parametrize(
    ("rule", "fragment"),
    [
        ({"risk_tier": ["severe"]}, "severe"),
        ({"annex_iii_area": ["9"]}, "9"),
        ({"personal_data": "yes"}, "true or false"),
        ({"tier": ["high"]}, "unknown clause"),
        ({"any": []}, "non-empty"),
        ({"ai_act_role": ["importer"]}, "importer"),
    ],
)
def test_malformed_rules_are_named(rule, fragment):
    errors = rule_errors(rule)
    assert errors and fragment in " ".join(errors)
