"""The shipped requirement catalogues and crosswalks: they load through the loader, their ids are unique and complete
against the texts they follow, every crosswalk id exists, and their applicability rules select what the texts say.

The expected numbering below is written from the source texts (Regulation (EU) 2024/1689, Regulation (EU) 2016/679,
ISO/IEC 42001:2023 Annex A, NIST AI 100-1), not read back from the catalogue files.
"""

from __future__ import annotations

import datetime
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from apps.compliance.evidence_kinds import EVIDENCE_KINDS
from apps.compliance.loader import (
    CATALOGUE_DIR,
    CATALOGUE_ORDER,
    CROSSWALK_DIR,
    load_frameworks,
    validate_catalogue,
    validate_crosswalk,
)
from apps.compliance.models import CrosswalkLink, Framework, FrameworkVersion, Requirement
from apps.compliance.rules import Answers, evaluate

CATALOGUE_FILES = sorted(CATALOGUE_DIR.glob("*.yaml"))
CROSSWALK_FILES = sorted(CROSSWALK_DIR.glob("*.yaml"))
ID_PREFIX = {"eu-ai-act": "AIA-", "gdpr": "GDPR-", "iso-42001": "ISO42001-A.", "nist-ai-rmf": "NIST-"}

# ISO/IEC 42001:2023 Annex A: the 38 reference controls of clauses A.2 to A.10.
ISO_42001_CONTROLS = {
    "A.2.2", "A.2.3", "A.2.4",
    "A.3.2", "A.3.3",
    "A.4.2", "A.4.3", "A.4.4", "A.4.5", "A.4.6",
    "A.5.2", "A.5.3", "A.5.4", "A.5.5",
    "A.6.1.2", "A.6.1.3", "A.6.2.2", "A.6.2.3", "A.6.2.4", "A.6.2.5", "A.6.2.6", "A.6.2.7", "A.6.2.8",
    "A.7.2", "A.7.3", "A.7.4", "A.7.5", "A.7.6",
    "A.8.2", "A.8.3", "A.8.4", "A.8.5",
    "A.9.2", "A.9.3", "A.9.4",
    "A.10.2", "A.10.3", "A.10.4",
}  # fmt: skip

# NIST AI RMF 1.0: subcategories per category of each function (Tables 1-4 of NIST AI 100-1).
NIST_SUBCATEGORIES = {
    "GOVERN": {1: 7, 2: 3, 3: 2, 4: 3, 5: 2, 6: 2},
    "MAP": {1: 6, 2: 3, 3: 5, 4: 2, 5: 2},
    "MEASURE": {1: 3, 2: 13, 3: 3, 4: 3},
    "MANAGE": {1: 4, 2: 4, 3: 2, 4: 3},
}

# The articles issue #20 asks for.
AI_ACT_ARTICLES = {"9", "10", "11", "12", "13", "14", "15", "17", "26", "27", "50", "72", "73"}
GDPR_ARTICLES = {"5", "6", "9", "25", "30", "32", "35"} | {str(n) for n in range(12, 23)}


def _document(path: Path) -> dict:
    return yaml.safe_load(path.read_bytes())


def _catalogues() -> dict[str, dict]:
    return {doc["framework"]["id"]: doc for doc in map(_document, CATALOGUE_FILES)}


def _codes(framework: str) -> list[str]:
    return [item["id"] for item in _catalogues()[framework]["requirements"]]


def test_the_four_catalogues_and_four_crosswalks_are_shipped():
    assert sorted(_catalogues()) == sorted(CATALOGUE_ORDER)
    assert {path.stem for path in CROSSWALK_FILES} == {
        "eu-ai-act--iso-42001",
        "eu-ai-act--nist-ai-rmf",
        "iso-42001--nist-ai-rmf",
        "gdpr--eu-ai-act",
    }


@pytest.mark.parametrize("path", CATALOGUE_FILES, ids=lambda p: p.stem)
def test_every_catalogue_passes_the_loaders_validation(path):
    parsed = validate_catalogue(_document(path))  # raises ValidationFailed listing every problem
    assert parsed["framework"]["id"] == path.stem


@pytest.mark.parametrize("path", CATALOGUE_FILES, ids=lambda p: p.stem)
def test_every_catalogue_names_its_source_and_licence(path):
    header = _document(path)["framework"]
    source = header["source"]
    assert len(source["title"]) > 20
    datetime.date.fromisoformat(source["date"])
    assert source["url"].startswith("https://")
    assert "our own" in header["licence"].lower()


@pytest.mark.parametrize("path", CATALOGUE_FILES, ids=lambda p: p.stem)
def test_ids_are_unique_and_carry_their_frameworks_prefix(path):
    document = _document(path)
    codes = [item["id"] for item in document["requirements"]]
    assert len(codes) == len(set(codes))
    prefix = ID_PREFIX[document["framework"]["id"]]
    assert [code for code in codes if not code.startswith(prefix)] == []


@pytest.mark.parametrize("path", CATALOGUE_FILES, ids=lambda p: p.stem)
def test_every_evidence_kind_is_known_and_every_requirement_has_text(path):
    for item in _document(path)["requirements"]:
        assert item["evidence"], item["id"]
        assert set(item["evidence"]) <= set(EVIDENCE_KINDS), item["id"]
        assert item["title"].strip() and len(item["text"].strip()) > 20, item["id"]


def test_iso_42001_has_exactly_the_38_annex_a_controls():
    codes = [code.removeprefix("ISO42001-") for code in _codes("iso-42001")]
    assert len(codes) == 38
    assert set(codes) == ISO_42001_CONTROLS


def test_nist_ai_rmf_has_every_subcategory_of_every_function():
    found: dict[str, dict[int, set[int]]] = {}
    for code in _codes("nist-ai-rmf"):
        function, category, subcategory = re.fullmatch(r"NIST-([A-Z]+)-(\d+)\.(\d+)", code).groups()
        found.setdefault(function, {}).setdefault(int(category), set()).add(int(subcategory))
    expected = {
        function: {category: set(range(1, count + 1)) for category, count in categories.items()}
        for function, categories in NIST_SUBCATEGORIES.items()
    }
    assert found == expected


def test_the_ai_act_catalogue_covers_the_articles_asked_for_and_annex_iv():
    codes = _codes("eu-ai-act")
    articles = {re.match(r"AIA-(\d+)", code).group(1) for code in codes if re.match(r"AIA-\d", code)}
    assert articles == AI_ACT_ARTICLES
    # Annex IV has nine points; each is covered by a requirement (some group two or three adjacent points).
    annex_points = set()
    for code in codes:
        if code.startswith("AIA-ANNEX-IV."):
            annex_points.add(int(re.match(r"AIA-ANNEX-IV\.(\d+)", code).group(1)))
    titles = " ".join(item["title"] for item in _catalogues()["eu-ai-act"]["requirements"])
    for first, last in re.findall(r"Annex IV\((\d)-(\d)\)", titles):
        annex_points |= set(range(int(first), int(last) + 1))
    assert annex_points == set(range(1, 10))
    assert 40 <= len(codes) <= 70


def test_the_gdpr_catalogue_covers_the_articles_asked_for():
    articles = {re.match(r"GDPR-(\d+)", code).group(1) for code in _codes("gdpr")}
    assert articles == GDPR_ARTICLES


@pytest.mark.parametrize("path", CROSSWALK_FILES, ids=lambda p: p.stem)
def test_every_crosswalk_id_exists_in_its_catalogues(path):
    document = _document(path)
    parsed = validate_crosswalk(document)
    assert path.stem == f"{parsed['from']}--{parsed['to']}"
    assert "https://" in parsed["source"]
    catalogues = _catalogues()
    known_from = {item["id"] for item in catalogues[parsed["from"]]["requirements"]}
    known_to = {item["id"] for item in catalogues[parsed["to"]]["requirements"]}
    assert [a for a, _b, _n in parsed["links"] if a not in known_from] == []
    assert [b for _a, b, _n in parsed["links"] if b not in known_to] == []
    assert len(parsed["links"]) == len(set((a, b) for a, b, _n in parsed["links"]))


@pytest.mark.django_db
def test_load_frameworks_stores_every_requirement_and_link_and_is_idempotent():
    load_frameworks()
    catalogues = _catalogues()
    for key, document in catalogues.items():
        framework = Framework.objects.get(organisation__isnull=True, key=key)
        stored = set(Requirement.objects.filter(framework_version=framework.current).values_list("code", flat=True))
        assert stored == {item["id"] for item in document["requirements"]}
        assert framework.current.source["url"] == document["framework"]["source"]["url"]
    pairs = sum(
        len(item["to"]) if isinstance(item["to"], list) else 1
        for path in CROSSWALK_FILES
        for item in _document(path)["mappings"]
    )
    assert CrosswalkLink.objects.count() == pairs
    versions = FrameworkVersion.objects.count()

    summary = load_frameworks()

    assert FrameworkVersion.objects.count() == versions
    assert not any(facts["new"] for facts in summary["frameworks"].values())
    assert CrosswalkLink.objects.count() == pairs


# ----------------------------------------------------------------------------------- applicability from the texts


def _answers(
    *,
    tier: str,
    area: str = "",
    role: str = "both",
    personal: bool = True,
    special: bool = False,
    automated: bool = False,
) -> Answers:
    usecase = SimpleNamespace(
        risk_tier=tier,
        annex_iii_area=area,
        ai_act_role=role,
        personal_data_categories=["contact details"] if personal else [],
        special_category=special,
        automated_decisions=automated,
    )
    return Answers.of(usecase)


def _applicable(framework: str, answers: Answers) -> set[str]:
    return {
        item["id"] for item in _catalogues()[framework]["requirements"] if evaluate(item.get("applies"), answers)[0]
    }


PROFILES = {
    # A credit-scoring model built and run in house: Annex III point 5(b), provider and deployer.
    "credit_scoring_in_house": _answers(tier="high", area="5", role="both", automated=True),
    # The same kind of system bought from a vendor: deployer only.
    "credit_scoring_bought": _answers(tier="high", area="5", role="deployer"),
    # A recruitment screening system the organisation sells: provider only, Annex III point 4.
    "recruitment_vendor": _answers(tier="high", area="4", role="provider"),
    # Recruitment screening used on its own staff: deployer, workplace.
    "recruitment_employer": _answers(tier="high", area="4", role="deployer"),
    # A grid load forecaster: Annex III point 2, deployer, no personal data.
    "critical_infrastructure": _answers(tier="high", area="2", role="deployer", personal=False),
    # A chatbot answering citizens' questions: limited risk, provider and deployer.
    "chatbot": _answers(tier="limited", role="both"),
    # Spam filtering of staff e-mail: minimal risk, personal data.
    "minimal_with_personal_data": _answers(tier="minimal", role="both"),
    # Demand forecasting from aggregate sales: minimal risk, no personal data.
    "minimal_no_personal_data": _answers(tier="minimal", role="both", personal=False),
    # Triage of patients on health data with solely automated decisions.
    "health_triage": _answers(tier="high", area="5", role="both", special=True, automated=True),
}

# (profile, requirement, applies?) read from the articles: provider duties are Art. 9-15, 17, 72, 73 and Annex IV;
# deployer duties Art. 26-27; Art. 27(1) exempts Annex III point 2; Art. 26(7) concerns workplaces; Art. 50 is the
# transparency tier; GDPR needs personal data, Art. 9 special categories, Art. 22 solely automated decisions.
AI_ACT_EXPECTATIONS = [
    ("credit_scoring_in_house", "AIA-9", True),
    ("credit_scoring_in_house", "AIA-11", True),
    ("credit_scoring_in_house", "AIA-26", True),
    ("credit_scoring_in_house", "AIA-27", True),
    ("credit_scoring_in_house", "AIA-50.1", False),
    ("credit_scoring_bought", "AIA-9", False),
    ("credit_scoring_bought", "AIA-ANNEX-IV.2g", False),
    ("credit_scoring_bought", "AIA-26.6", True),
    ("credit_scoring_bought", "AIA-26.9", True),
    ("credit_scoring_bought", "AIA-27.1", True),
    ("recruitment_vendor", "AIA-10.2f", True),
    ("recruitment_vendor", "AIA-17", True),
    ("recruitment_vendor", "AIA-72", True),
    ("recruitment_vendor", "AIA-73.2", True),
    ("recruitment_vendor", "AIA-26", False),
    ("recruitment_vendor", "AIA-26.7", False),
    ("recruitment_employer", "AIA-26.7", True),
    ("recruitment_employer", "AIA-26.11", True),
    ("recruitment_employer", "AIA-12", False),
    ("critical_infrastructure", "AIA-26", True),
    ("critical_infrastructure", "AIA-27", False),
    ("critical_infrastructure", "AIA-26.9", False),
    ("critical_infrastructure", "AIA-14.5", False),
    ("chatbot", "AIA-50.1", True),
    ("chatbot", "AIA-50.4", True),
    ("chatbot", "AIA-9", False),
    ("chatbot", "AIA-26", False),
    ("health_triage", "AIA-10.5", True),
    ("credit_scoring_in_house", "AIA-10.5", False),
]


@pytest.mark.parametrize(("profile", "code", "applies"), AI_ACT_EXPECTATIONS)
def test_ai_act_applicability_follows_the_regulation(profile, code, applies):
    assert (code in _applicable("eu-ai-act", PROFILES[profile])) is applies


def test_minimal_risk_systems_carry_no_ai_act_obligations():
    assert _applicable("eu-ai-act", PROFILES["minimal_with_personal_data"]) == set()


def test_a_provider_only_system_has_no_deployer_duties_and_vice_versa():
    provider = _applicable("eu-ai-act", PROFILES["recruitment_vendor"])
    deployer = _applicable("eu-ai-act", PROFILES["recruitment_employer"])
    assert not any(code.startswith(("AIA-26", "AIA-27")) for code in provider)
    assert not any(code.startswith(("AIA-9", "AIA-11", "AIA-ANNEX", "AIA-17", "AIA-72")) for code in deployer)


GDPR_EXPECTATIONS = [
    ("minimal_with_personal_data", "GDPR-5.1c", True),
    ("minimal_with_personal_data", "GDPR-30", True),
    ("minimal_with_personal_data", "GDPR-9", False),
    ("minimal_with_personal_data", "GDPR-22", False),
    ("credit_scoring_in_house", "GDPR-22", True),
    ("credit_scoring_in_house", "GDPR-22.3", True),
    ("credit_scoring_in_house", "GDPR-35.3a", True),
    ("credit_scoring_in_house", "GDPR-22.4", False),
    ("health_triage", "GDPR-9", True),
    ("health_triage", "GDPR-22.4", True),
    ("health_triage", "GDPR-35.3b", True),
]


@pytest.mark.parametrize(("profile", "code", "applies"), GDPR_EXPECTATIONS)
def test_gdpr_applicability_follows_the_regulation(profile, code, applies):
    assert (code in _applicable("gdpr", PROFILES[profile])) is applies


def test_no_gdpr_requirement_applies_without_personal_data():
    assert _applicable("gdpr", PROFILES["minimal_no_personal_data"]) == set()
    assert _applicable("gdpr", PROFILES["critical_infrastructure"]) == set()


def test_iso_development_controls_need_the_provider_role_and_the_rest_always_apply():
    all_controls = {f"ISO42001-{code}" for code in ISO_42001_CONTROLS}
    development = {"ISO42001-A.6.1.2", "ISO42001-A.6.1.3", "ISO42001-A.6.2.3", "ISO42001-A.7.2"}
    assert _applicable("iso-42001", PROFILES["recruitment_vendor"]) == all_controls
    assert _applicable("iso-42001", PROFILES["credit_scoring_bought"]) == all_controls - development


def test_every_nist_subcategory_applies_to_every_profile():
    every = set(_codes("nist-ai-rmf"))
    for answers in PROFILES.values():
        assert _applicable("nist-ai-rmf", answers) == every
