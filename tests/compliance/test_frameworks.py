"""Loading catalogues (versioned, idempotent) and an organisation's own frameworks (validated, all or nothing)."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from apps.audit.models import AuditEvent
from apps.compliance.loader import load_frameworks
from apps.compliance.models import Framework, FrameworkVersion, Requirement
from apps.compliance.selectors import progress_for, requirement_status, search_requirements
from apps.compliance.services import framework_upload
from apps.core.errors import NotFound, PermissionDenied, ValidationFailed

pytestmark = pytest.mark.django_db

CATALOGUE = """
framework:
  id: test-framework
  name: Test framework
  version: "1"
  source: {title: Our own text, date: "2025-01-01", url: "https://example.org"}
requirements:
  - id: T-1
    title: Keep a register
    applies: {risk_tier: [high]}
    evidence: [dpia]
  - id: T-2
    title: Tell people
    evidence: [manual]
"""


def test_the_shipped_catalogues_are_loaded_at_migrate():
    keys = set(Framework.objects.filter(organisation__isnull=True).values_list("key", flat=True))
    assert {"eu-ai-act", "gdpr", "iso-42001", "nist-ai-rmf"} <= keys
    from apps.compliance.loader import CROSSWALK_DIR
    from apps.compliance.models import CrosswalkLink

    loaded = set(CrosswalkLink.objects.values_list("crosswalk", flat=True))
    assert loaded == {path.stem for path in CROSSWALK_DIR.glob("*.yaml")}  # a crosswalk that failed would be missing


def test_loading_again_changes_nothing_and_a_changed_file_is_a_new_version(tmp_path):
    (tmp_path / "crosswalks").mkdir()
    path = tmp_path / "test-framework.yaml"
    path.write_text(CATALOGUE)
    first = load_frameworks(tmp_path)
    assert first["frameworks"]["test-framework"] == {"version": "1", "new": True}
    assert load_frameworks(tmp_path)["frameworks"]["test-framework"]["new"] is False
    assert FrameworkVersion.objects.filter(framework__key="test-framework").count() == 1

    path.write_text(CATALOGUE.replace('version: "1"', 'version: "2"').replace("Tell people", "Inform people"))
    load_frameworks(tmp_path)
    framework = Framework.objects.get(key="test-framework")
    assert framework.current.version == "2"
    old = framework.versions.get(version="1")
    # The old version stays readable with its own requirements (statements cite it).
    assert old.requirements.get(code="T-2").title == "Tell people"
    assert framework.current.requirements.get(code="T-2").title == "Inform people"


def test_the_command_reports_each_framework():
    from io import StringIO

    out = StringIO()
    call_command("load_frameworks", stdout=out)
    assert "eu-ai-act" in out.getvalue() and "unchanged" in out.getvalue()


def test_an_admin_uploads_an_own_framework_as_yaml(org, admin_user, usecase):
    events = AuditEvent.objects.count()
    version = framework_upload(actor=admin_user, organisation=org, data=CATALOGUE.encode(), filename="ours.yaml")
    assert AuditEvent.objects.count() == events + 1
    assert version.framework.organisation == org
    assert version.requirements.count() == 2
    assert "test-framework" in [p["framework"] for p in progress_for(usecase)]
    assert requirement_status(usecase, "test-framework", "T-1").status == "partly"  # the DPIA counts


def test_an_internal_policy_from_csv(org, admin_user, usecase):
    csv = (
        b"id,title,text,applies,evidence\n"
        b'POL-1,Human review of refusals,Every refusal is reviewed,"{risk_tier: [high]}",board_decision manual\n'
        b"POL-2,Annual bias review,,,evaluation_gates\n"
    )
    version = framework_upload(
        actor=admin_user,
        organisation=org,
        data=csv,
        filename="policy.csv",
        key="our-ai-policy",
        name="Our AI policy",
        version="2025",
        kind="policy",
    )
    assert version.framework.kind == "policy"
    first = version.requirements.get(code="POL-1")
    assert first.applies == {"risk_tier": ["high"]}
    assert first.evidence_kinds == ["board_decision", "manual"]


@pytest.mark.parametrize(
    ("content", "filename", "field_fragment"),
    [
        (CATALOGUE.replace("[dpia]", "[horoscope]"), "bad.yaml", "horoscope"),
        (CATALOGUE.replace("risk_tier: [high]", "risk_tier: [severe]"), "bad.yaml", "severe"),
        (CATALOGUE.replace("id: T-2", "id: T-1"), "bad.yaml", "duplicate"),
        (CATALOGUE.replace("title: Tell people", "titel: Tell people"), "bad.yaml", "titel"),
        ("framework: [unclosed", "bad.yaml", "YAML"),
        ("id,title\nX-1,No evidence column\n", "bad.csv", "columns"),
        ("id,title,evidence\nX-1,Fine,manual\nX 2,Bad id,manual\n", "bad.csv", "id"),
        ("a,b", "bad.txt", "yaml or csv"),
    ],
)
def test_a_bad_file_loads_nothing_and_says_why(org, admin_user, content, filename, field_fragment):
    frameworks, requirements, events = (
        Framework.objects.count(),
        Requirement.objects.count(),
        AuditEvent.objects.count(),
    )
    with pytest.raises(ValidationFailed) as failure:
        framework_upload(
            actor=admin_user, organisation=org, data=content.encode(), filename=filename, key="ours", name="Ours"
        )
    assert field_fragment.lower() in (failure.value.message + str(failure.value.details)).lower()
    assert (Framework.objects.count(), Requirement.objects.count(), AuditEvent.objects.count()) == (
        frameworks,
        requirements,
        events,
    )


def test_an_own_framework_may_not_take_a_published_id(org, admin_user):
    with pytest.raises(ValidationFailed):
        framework_upload(
            actor=admin_user,
            organisation=org,
            data=CATALOGUE.replace("test-framework", "gdpr").encode(),
            filename="x.yaml",
        )


def test_only_admins_upload_and_outsiders_see_nothing(org, owner, outsider, other_org, admin_user, usecase):
    with pytest.raises(PermissionDenied):
        framework_upload(actor=owner, organisation=org, data=CATALOGUE.encode(), filename="x.yaml")
    with pytest.raises(NotFound):
        framework_upload(actor=outsider, organisation=org, data=CATALOGUE.encode(), filename="x.yaml")
    framework_upload(actor=admin_user, organisation=org, data=CATALOGUE.encode(), filename="x.yaml")
    # Another organisation's own framework is neither searchable nor part of its progress.
    assert search_requirements(outsider, "Keep a register") == []
    assert [r["id"] for r in search_requirements(owner, "Keep a register")] == ["T-1"]


def test_search_finds_catalogue_requirements(owner):
    results = search_requirements(owner, "impact assessment", limit=50)
    assert "GDPR-35" in {r["id"] for r in results}
    assert all(r["url"].startswith("/compliance/frameworks/") for r in results)
    assert search_requirements(owner, "") == []
