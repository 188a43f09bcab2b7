"""Demo content beyond users: a realistic use case, consent records and (as they arrive) data, models, reviews.

Each step goes through the same services as the portal (so the demo's audit trail is real) and is skipped when its
content already exists, so ``seed_demo`` can run on every ``make demo``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from apps.accounts.models import Organisation, User


def _user(username: str) -> User:
    return User.objects.get(username=username)


def seed_demo_content(organisation: Organisation, out: Any) -> None:
    from apps.usecases.models import UseCase

    if not UseCase.objects.filter(organisation=organisation).exists():
        _seed_usecases(organisation)
        out.write("Seeded use cases.")
    from apps.consent.models import ConsentRecord

    if not ConsentRecord.objects.filter(organisation=organisation).exists():
        _seed_consent(organisation)
        out.write("Seeded consent records.")
    from apps.datasets.models import Dataset

    if not Dataset.objects.filter(organisation=organisation).exists():
        _seed_dataset(organisation)
        out.write("Seeded the Adult dataset: raw and prepared versions.")
    from apps.training.models import TrainingRun

    if not TrainingRun.objects.filter(organisation=organisation).exists():
        _seed_training(organisation)
        out.write("Seeded a finished DP training run and a non-private baseline.")
    from apps.training.models import ModelVersion

    if not ModelVersion.objects.filter(organisation=organisation, parent__isnull=False).exists():
        _seed_mitigation(organisation)
        out.write("Mitigated the private model with group thresholds (demographic parity by sex), evaluated.")
    from apps.datasets.models import Anonymisation

    if not Anonymisation.objects.filter(version__dataset__organisation=organisation).exists():
        _seed_anonymisation(organisation)
        out.write("Anonymised the prepared Adult version to 5-anonymity (a new version in its lineage).")
    from apps.ethics.models import ReviewRequest

    if not ReviewRequest.objects.filter(organisation=organisation, kind="deployment").exists():
        _request_deployment_review(organisation)
        out.write("Opened the board's deployment review of the private model.")
    from apps.deployments.models import Deployment

    if not Deployment.objects.filter(organisation=organisation).exists():
        _seed_deployments(organisation)
        out.write(
            "Approved and deployed the private model; replayed eight weeks of production traffic (hours per week "
            "drifting and women's false-positive rate rising from week 6): alerts, a contestation, a retraining "
            "request; scored this week's first 25 applicants through the deployment's endpoint."
        )
    from apps.reports.models import Report

    if not Report.objects.filter(organisation=organisation).exists():
        _seed_reports(organisation)
        out.write("Issued signed reports: model card, Annex IV, datasheet, DPIA, Art. 30, decision record, audit.")
    from apps.portfolio.models import Risk

    if not Risk.objects.filter(organisation=organisation).exists():
        _seed_risks(organisation)
        out.write("Recorded two risks directly in the risk register (beside the DPIA's), one past its review date.")
    from apps.thirdparty.models import ThirdPartyModel

    if not ThirdPartyModel.objects.filter(organisation=organisation).exists():
        _seed_third_party(organisation)
        out.write("Recorded a hosted language model that drafts decision letters, with its documentation's sha256.")
    from apps.compliance.models import Confirmation

    if not Confirmation.objects.filter(organisation=organisation).exists():
        confirmed = _seed_compliance(organisation)
        out.write(
            f"Confirmed {confirmed} AI Act, GDPR and ISO 42001 requirements on the evidence Attest holds, linked a "
            "procedure by hand, and issued the signed AI Act compliance statement."
        )
    from apps.rights.models import SubjectRequest

    if not SubjectRequest.objects.filter(organisation=organisation).exists():
        _seed_rights(organisation)
        out.write(
            "The privacy officer completed an erasure for an applicant who had refused consent (the raw upload "
            "replaced by a version without their row, its file and key destroyed, a signed certificate) and has an "
            "open, traced access request for A-00101."
        )


DEMO_VENDOR_DOCUMENTATION = (
    b"Quill 2026-09 system card (supplier's documentation as received): intended uses, evaluation summary, "
    b"known limitations, data handling under the data-processing agreement.\n"
)


def _seed_third_party(organisation: Organisation) -> None:
    """A second, limited-risk use case that relies on a supplier's hosted language model (Attest deploys, not
    provides, that system): the model, its terms and the sha256 of the documentation received."""
    from datetime import timedelta

    from django.utils import timezone

    from apps.thirdparty.services import thirdparty_record_documentation, thirdparty_register
    from apps.usecases.models import UseCase
    from apps.usecases.services import usecase_create

    owner = _user("owner")
    main = UseCase.objects.filter(organisation=organisation).order_by("created_at").first()
    usecase = usecase_create(
        actor=owner,
        organisation=organisation,
        data={
            "title": "Decision letter drafting",
            "purpose": main.purpose if main else (organisation.processing_purposes or ["Benefit decisions"])[0],
            "description": "A hosted language model drafts the letter that explains a benefit decision; the "
            "caseworker edits, checks and signs every letter.",
            "lawful_basis": main.lawful_basis if main else "public_task",
            "data_subject_categories": ["Applicants"],
            "personal_data_categories": ["Name", "Decision and its reasons"],
            "recipients": ["Caseworkers", "The language model's supplier (processor)"],
            "retention": "Drafts deleted after 30 days; the signed letter stays in the case file.",
            "security_measures": "Pseudonymised prompts; EU-hosted endpoint; no training on inputs (contract).",
            "risk_tier": "limited",
            "risk_justification": "Generates text people read (Art. 50); no decision is taken by the model.",
            "affected_groups": ["Applicants"],
            "automated_decisions": False,
            "ai_act_role": "deployer",
        },
    )
    model = thirdparty_register(
        actor=owner,
        usecase=usecase,
        data={
            "supplier": "Northwind Language Systems",
            "name": "Quill hosted language model",
            "version": "2026-09",
            "kind": "foundation",
            "intended_use": "Drafting decision letters in plain language from the decision's reasons. Not used to "
            "decide, score or rank applicants.",
            "licence": "Commercial API terms of service",
            "data_location": "EU (Frankfurt region)",
            "contractual_terms": "Data-processing agreement signed; inputs and outputs not used for training; "
            "deleted after 30 days; sub-processors listed in annex 3.",
            "review_due_on": timezone.localdate() + timedelta(days=180),
        },
    )
    thirdparty_record_documentation(
        actor=owner, model=model, content=DEMO_VENDOR_DOCUMENTATION, file_name="quill-2026-09-system-card.pdf"
    )


def _seed_risks(organisation: Organisation) -> None:
    """Two risks the DPIAs do not hold: an organisational one and one of the deployed system, whose review is late so
    the register and the dashboard show an overdue review."""
    from datetime import timedelta

    from django.utils import timezone

    from apps.portfolio.services import risk_create
    from apps.usecases.models import UseCase

    admin, owner = _user("admin"), _user("owner")
    today = timezone.localdate()
    risk_create(
        actor=admin,
        organisation=organisation,
        data={
            "title": "Too few people can explain the models to affected applicants",
            "description": "Only two caseworkers are trained to read the model's explanations and counterfactuals.",
            "likelihood": 3,
            "severity": 3,
            "treatment": "mitigate",
            "treatment_plan": "Train the appeals team on the explanation pages before the next quarter.",
            "review_on": today + timedelta(days=60),
        },
    )
    deployed = UseCase.objects.filter(organisation=organisation).order_by("reference").first()
    risk_create(
        actor=owner,
        organisation=organisation,
        data={
            "title": "Upstream form change shifts the hours-per-week distribution",
            "description": "The case system's intake form may change without notice to the model's owners.",
            "likelihood": 4,
            "severity": 3,
            "owner": owner,
            "treatment": "mitigate",
            "treatment_plan": "Drift monitoring on hours per week; change notices from the case-system team.",
            "review_on": today - timedelta(days=3),
            "usecase": deployed,
        },
    )


def _seed_usecases(organisation: Organisation) -> None:
    from apps.usecases.services import usecase_create, usecase_transition

    owner = _user("owner")
    dpia = {
        "need": {
            "aims": "Prioritise benefit applications whose eligibility needs a caseworker's review, using "
            "census-style household data.",
            "why_dpia": "Profiling that affects access to public benefits (Art. 35(3)(a)); high-risk AI under "
            "Annex III point 5.",
        },
        "processing": {
            "nature": "Application data from the case system; pseudonymised before training; models "
            "trained with differential privacy.",
            "scope": "About 32,000 applicants a year; age, sex, race, marital status, occupation, income "
            "band. Race is special-category data.",
            "context": "Applicants depend on the outcome and may be vulnerable; they expect fair, "
            "explainable treatment.",
            "purposes": "Faster decisions for clear cases; caseworker time for difficult ones.",
        },
        "consultation": {"consultation": "Applicant panel (12 sessions), DPO, caseworker union, security team."},
        "necessity": {
            "lawful_basis_rationale": "Public task (Art. 6(1)(e)) under the Social Security "
            "Administration Act; Art. 9(2)(g) for race monitoring.",
            "alternatives": "Manual triage is slower and less consistent across offices.",
            "minimisation": "Only the columns the model needs; identifiers dropped; consent filtered.",
            "information_and_rights": "Privacy notice at application; human review on request.",
            "processors_and_transfers": "No processors; no transfers outside the UK.",
        },
        "risks": [
            {
                "description": "Model disadvantages applicants by sex or race",
                "likelihood": "possible",
                "severity": "severe",
            },
            {
                "description": "Membership of the training data inferred from the model",
                "likelihood": "possible",
                "severity": "significant",
            },
            {
                "description": "Automation bias: caseworkers defer to the score",
                "likelihood": "probable",
                "severity": "significant",
            },
        ],
        "measures": [
            {
                "risk": "R1",
                "measure": "Fairness gates per sex and race with board review",
                "effect": "reduced",
                "residual_risk": "medium",
                "approved": True,
            },
            {
                "risk": "R2",
                "measure": "DP-SGD with epsilon cap 3 and an empirical membership audit",
                "effect": "reduced",
                "residual_risk": "low",
                "approved": True,
            },
            {
                "risk": "R3",
                "measure": "Score shown with its uncertainty; caseworker must record a reason",
                "effect": "reduced",
                "residual_risk": "medium",
                "approved": True,
            },
        ],
        "sign_off": {
            "measures_approved_by": "Director of Benefits",
            "residual_risks_approved_by": "Deputy Director",
            "dpo_advice": "Proceed with the fairness gates and privacy budget in place.",
            "dpo_advice_accepted": "Accepted",
            "kept_under_review_by": "DPO, every six months",
        },
    }
    data = {
        "title": "Benefit eligibility triage",
        "purpose": "Benefit eligibility triage",
        "description": "Predicts whether an application's household income is above the threshold, so clear "
        "cases are decided faster and caseworkers review the uncertain ones.",
        "lawful_basis": "public_task",
        "special_category": True,
        "art9_condition": "g",
        "data_subject_categories": ["Benefit applicants", "Household members"],
        "personal_data_categories": ["Age", "Sex", "Race", "Marital status", "Occupation", "Income band"],
        "recipients": ["Benefits caseworkers", "Internal audit"],
        "third_country_transfers": [],
        "retention": "Training data 24 months after model retirement; scores 6 years",
        "security_measures": "Encryption at rest (AES-GCM per file), role-based access, hash-chained audit log.",
        "risk_tier": "high",
        "annex_iii_area": "5",
        "risk_justification": "Evaluates eligibility for public assistance benefits (Annex III point 5(a)).",
        "affected_groups": ["Applicants by sex", "Applicants by race", "Older applicants"],
        # Caseworkers decide; the model only sorts the queue, so no decision is solely automated (GDPR Art. 22). The
        # organisation builds the model and uses it itself: provider and deployer under the AI Act.
        "automated_decisions": False,
        "ai_act_role": "both",
        "dpia": dpia,
        "fairness_policy": {
            "sensitive_attributes": ["sex", "race"],
            "intersections": True,
            "min_group_size": 30,
            "gates": [
                {"metric": "demographic_parity_difference", "threshold": 0.2},
                {"metric": "equalized_odds_difference", "threshold": 0.15},
            ],
            # Marital status and relationship stand in for sex in this data: the counterfactual probe flips them too.
            "proxies": ["marital-status", "relationship"],
            "robustness_gates": [
                {"kind": "gaussian_noise", "level": 0.25, "metric": "accuracy_drop", "max": 0.05},
                {"kind": "missing", "level": 0.1, "metric": "accuracy_drop", "max": 0.05},
                {"kind": "fgsm", "level": 0.1, "metric": "demographic_parity_difference", "max": 0.15},
            ],
        },
        "privacy_policy": {"epsilon_cap": 3.0, "delta": None, "accountant": "pld", "max_consent_age_days": 30},
    }
    usecase = usecase_create(actor=owner, organisation=organisation, data=data)
    from apps.deployments.services import usecase_set_monitoring_plan

    usecase = usecase_set_monitoring_plan(actor=owner, usecase=usecase, plan=DEMO_MONITORING_PLAN)
    _seed_board(organisation)
    usecase = usecase_transition(actor=owner, usecase=usecase, action="submit")
    _approve_for_development(usecase)
    draft = dict(
        data,
        title="Fraud and error signals",
        purpose="Fraud and error detection",
        risk_tier="high",
        special_category=False,
        art9_condition="",
        dpia={},
        fairness_policy={},
    )
    usecase_create(actor=owner, organisation=organisation, data=draft)


def _seed_board(organisation: Organisation) -> None:
    from apps.ethics.services import board_update

    board_update(
        actor=_user("admin"),
        organisation=organisation,
        data={"quorum": 2, "approval_threshold": 0.66, "chair": str(_user("board1").id), "vote_days": 10},
    )


def _approve_for_development(usecase: Any) -> None:
    """The board's development review of the triage use case: approved with one tracked condition."""
    from datetime import timedelta

    from django.utils import timezone

    from apps.ethics.models import ReviewRequest
    from apps.ethics.services import comment_add, review_answer_checklist, vote_cast

    review = ReviewRequest.objects.get(usecase=usecase, status=ReviewRequest.Status.OPEN)
    review_answer_checklist(
        actor=usecase.owner,
        review=review,
        answers={
            "purpose": {"answer": "yes", "note": "Triage only; caseworkers decide."},
            "necessity": {"answer": "yes", "note": "Manual triage backlog is 11 weeks."},
            "consent": {"answer": "yes", "note": "Consent records are checked at preparation."},
            "oversight": {"answer": "yes", "note": "Every flag is read by a caseworker."},
        },
    )
    comment_add(
        actor=_user("board2"),
        review=review,
        section="usecase",
        body="How do applicants learn that a model helped prioritise their case?",
    )
    vote_cast(
        actor=_user("board1"),
        review=review,
        choice="approve_with_conditions",
        reason="Sound basis and DPIA; applicants must be able to contest.",
        conditions=[
            {
                "text": "Publish how applicants can contest a prioritisation, and link it from the decision letter.",
                "owner": str(usecase.owner_id),
                "due": (timezone.localdate() + timedelta(days=45)).isoformat(),
            }
        ],
    )
    vote_cast(
        actor=_user("board2"),
        review=review,
        choice="approve",
        reason="Proportionate; gates and privacy budget are adequate.",
    )
    # The demo board waits for every member (the default), so the third member's vote is what decides.
    vote_cast(
        actor=_user("board3"),
        review=review,
        choice="approve",
        reason="Agree, subject to the contest route board1 asked for.",
    )


def _request_deployment_review(organisation: Organisation) -> None:
    """Ask the board to approve the private model for deployment: the review the demo's board members vote on."""
    from apps.ethics.services import review_request_deployment
    from apps.modelcards.services import card_prefill, modelcard_save
    from apps.training.models import ModelVersion

    model = ModelVersion.objects.get(organisation=organisation, non_private=False, parent__isnull=True)
    narrative = card_prefill(model)
    narrative["intended_use"] = (
        "Prioritise benefit applications for caseworker review. Caseworkers make every "
        "decision; the score only orders the queue."
    )
    modelcard_save(actor=model.usecase.owner, model_version=model, narrative=narrative)
    from apps.ethics.bindings import bound_evaluation

    evaluation = bound_evaluation(model)
    gates = (evaluation.results or {}).get("gates", [])
    failing = [g["metric"].replace("_", " ") for g in gates if g.get("passed") is False]
    unknown = [g["metric"].replace("_", " ") for g in gates if g.get("passed") is None]
    for gate in (evaluation.results or {}).get("robustness_gates", []):
        where = f"{gate['metric'].replace('_', ' ')} under {gate['kind'].replace('_', ' ')} at {gate['level']:g}"
        {"fail": failing, "unknown": unknown}.get(gate["status"], []).append(where)
    notes = ([f"Fails on {', '.join(failing)}"] if failing else []) + (
        [f"cannot be evaluated on {', '.join(unknown)}"] if unknown else []
    )
    fairness = (
        {"answer": "no", "note": f"{'; '.join(notes)}; a time-boxed waiver is requested."}
        if notes
        else {"answer": "yes", "note": "Every gate passes on held-out rows."}
    )
    review = review_request_deployment(
        actor=model.usecase.owner,
        model_version=model,
        answers={
            "purpose": {"answer": "yes", "note": "Unchanged since development approval."},
            "necessity": {"answer": "yes", "note": "Backlog of 11 weeks; the model only orders the queue."},
            "consent": {
                "answer": "yes",
                "note": "Prepared version filtered on consent; snapshot hash in the manifest.",
            },
            "minimisation": {"answer": "yes", "note": "Applicant ids pseudonymised; 10 features."},
            "privacy": {
                "answer": "yes",
                "note": f"epsilon {model.training_run.privacy.get('epsilon', 0):.2f} of a 3.0 cap",
            },
            "fairness": fairness,
            "oversight": {"answer": "yes", "note": "Caseworkers decide every application."},
            "transparency": {"answer": "yes", "note": "Notice updated; model card published."},
            "risks": {"answer": "yes", "note": "Residual risks medium, accepted by the Deputy Director."},
            "dpo": {"answer": "yes", "note": "DPO advice followed."},
        },
    )
    if failing:
        from datetime import timedelta

        from django.utils import timezone

        from apps.ethics.services import waiver_request

        waiver_request(
            actor=model.usecase.owner,
            review=review,
            justification="The gaps are on small intersectional groups with wide intervals; every flagged case is "
            "read by a caseworker, and the gates are re-checked monthly on fresh data.",
            expires_on=timezone.localdate() + timedelta(days=90),
        )


def _seed_compliance(organisation: Organisation) -> int:
    """The compliance officer's first pass over the seeded system: every applicable requirement for which Attest
    already holds evidence is confirmed, one procedure is linked by hand, and the AI Act statement is signed."""
    from apps.compliance.selectors import requirement_statuses
    from apps.compliance.services import compliance_statement_request, evidence_link_add, requirement_confirm
    from apps.jobs.runner import job_run_inline
    from apps.usecases.models import UseCase

    admin = _user("admin")
    usecase = UseCase.objects.filter(organisation=organisation, status__in=("approved", "in_production")).first()
    if usecase is None:
        return 0
    evidence_link_add(
        actor=admin,
        usecase=usecase,
        framework_key="gdpr",
        requirement_code="GDPR-16",
        label="Rectification procedure for benefit applicants (intranet)",
        url="https://intranet.example.org/procedures/rectification",
    )
    confirmed = 0
    for key in ("eu-ai-act", "gdpr", "iso-42001"):
        for status in requirement_statuses(usecase, key):
            if status.status == "partly" and status.evidence:
                requirement_confirm(actor=admin, usecase=usecase, framework_key=key, requirement_code=status.code)
                confirmed += 1
    report = compliance_statement_request(actor=admin, usecase=usecase, framework_key="eu-ai-act")
    _run(job_run_inline, report.job)
    return confirmed


def _seed_reports(organisation: Organisation) -> None:
    """One report of each kind, rendered and signed inline as the worker would (the library is not empty)."""
    from apps.datasets.models import DatasetVersion
    from apps.ethics.models import ReviewRequest
    from apps.jobs.runner import job_run_inline
    from apps.reports.services import report_request
    from apps.training.models import ModelVersion
    from apps.usecases.models import UseCase

    owner, steward, admin = _user("owner"), _user("steward"), _user("admin")
    model = ModelVersion.objects.get(organisation=organisation, non_private=False, parent__isnull=True)
    requests = [
        (owner, "model_card", model),
        (owner, "annex_iv", model),
        (steward, "datasheet", model.training_run.dataset_version),
        (owner, "dpia", UseCase.objects.get(organisation=organisation, status__in=("approved", "in_production"))),
        (admin, "art30", organisation),
        (admin, "decision", ReviewRequest.objects.filter(organisation=organisation, status="decided").first()),
        (admin, "audit_extract", organisation),
    ]
    for actor, kind, subject in requests:
        if subject is None or (isinstance(subject, DatasetVersion) and subject.status == "erased"):
            continue
        report = report_request(actor=actor, kind=kind, subject=subject)
        _run(job_run_inline, report.job)
    from apps.deployments.models import Deployment

    deployment = Deployment.objects.filter(organisation=organisation, environment="production").first()
    if deployment is not None:
        # The post-market monitoring report of the replayed weeks (EU AI Act Art. 72).
        first = deployment.windows.order_by("starts_at").first()
        start = first.starts_at.date() if first else deployment.deployed_on
        from datetime import timedelta

        from django.utils import timezone

        end = timezone.localdate() - timedelta(days=timezone.localdate().weekday() + 1)  # last Sunday
        report = report_request(actor=owner, kind="monitoring", subject=deployment, period=(start, max(start, end)))
        _run(job_run_inline, report.job)


def _seed_consent(organisation: Organisation) -> None:
    """Consent for the demo's Adult rows: most granted, some withdrawn, some refused, a few never asked."""
    import random

    from apps.consent.services import consent_import_create
    from apps.jobs.runner import job_run_inline

    steward = _user("steward")
    rng = random.Random(2026)  # noqa: S311 - demo data
    lines = ["subject_id,purpose,status,timestamp,notice_version,channel,evidence_ref"]
    for row in range(1, 32562):
        roll = rng.random()
        if roll < 0.03:
            continue  # never asked: "unknown" in coverage
        subject = f"A-{row:05d}"
        lines.append(
            f"{subject},Benefit eligibility triage,{'refused' if roll < 0.05 else 'granted'},"
            f"2026-01-{1 + row % 28:02d}T09:00:00Z,notice-v2,online-form,form-{row}"
        )
        if 0.05 <= roll < 0.08:
            lines.append(
                f"{subject},Benefit eligibility triage,withdrawn,2026-06-{1 + row % 28:02d}T12:00:00Z,"
                f"notice-v2,email,mail-{row}"
            )
    content = ("\n".join(lines) + "\n").encode()
    consent_import = consent_import_create(
        actor=steward, organisation=organisation, file_name="demo-consent.csv", chunks=iter([content])
    )
    # The demo runs the import inline, through the same job lifecycle, so the data is there before the worker starts.
    _run(job_run_inline, consent_import.job)


ADULT_PATH = Path(__file__).resolve().parents[2] / "data" / "adult.csv"


def adult_with_applicant_ids() -> bytes:
    """The shipped Adult extract with a synthetic applicant_id (A-00001...) that the demo consent records use."""
    lines = ADULT_PATH.read_bytes().splitlines()
    out = [b"applicant_id," + lines[0]]
    out += [f"A-{number:05d},".encode() + line for number, line in enumerate(lines[1:], start=1) if line.strip()]
    return b"\n".join(out) + b"\n"


def _seed_dataset(organisation: Organisation) -> None:
    from apps.datasets.services import (
        dataset_create,
        dataset_version_confirm_roles,
        dataset_version_prepare_start,
        dataset_version_upload,
        datasheet_save,
    )
    from apps.datasets.storage import EncryptedIncomingFile
    from apps.jobs.runner import job_run_inline
    from apps.usecases.models import UseCase

    steward = _user("steward")
    usecase = UseCase.objects.get(organisation=organisation, reference="UC-0001")
    dataset = dataset_create(
        actor=steward,
        usecase=usecase,
        name="Benefit applicants (UCI Adult extract)",
        description="Census-style records of 32,561 applicants (UCI Adult, CC BY 4.0) with a "
        "synthetic applicant id linking them to consent records.",
    )
    incoming = EncryptedIncomingFile()
    incoming.write(adult_with_applicant_ids())
    sha256 = incoming.close()
    version, _created = dataset_version_upload(
        actor=steward, dataset=dataset, incoming=incoming, sha256=sha256, file_name="adult-applicants.csv"
    )
    # The demo runs its jobs inline, through the same job lifecycle, so the data is ready before the worker starts.
    _run(job_run_inline, version.profile_job)
    version.refresh_from_db()
    roles = {column.name: column.suggested_role for column in version.columns.all()}
    roles.update({"class": "label", "fnlwgt": "ignore"})
    dataset_version_confirm_roles(actor=steward, version=version, roles=roles)
    datasheet_save(actor=steward, version=version)
    prepare = _run(job_run_inline, dataset_version_prepare_start(actor=steward, version=version))
    from apps.datasets.models import DatasetVersion

    prepared = DatasetVersion.objects.get(id=prepare.result["version_id"])
    _run(job_run_inline, prepared.profile_job)
    prepared.refresh_from_db()
    datasheet_save(actor=steward, version=prepared)


ADULT_QUASI_IDENTIFIERS = [
    "age",
    "workclass",
    "education",
    "marital-status",
    "occupation",
    "race",
    "sex",
    "native-country",
]


def adult_hierarchy_specs() -> dict[str, dict[str, Any]]:
    """The Adult hierarchies shipped in data/hierarchies (one CSV per categorical quasi-identifier)."""
    import csv

    from django.conf import settings

    specs = {}
    for column in ADULT_QUASI_IDENTIFIERS:
        path = settings.BASE_DIR / "data" / "hierarchies" / f"adult-{column}.csv"
        if path.exists():
            with open(path, newline="") as handle:
                specs[column] = {"kind": "table", "rows": list(csv.reader(handle))}
    specs["age"] = {"kind": "intervals", "widths": [5, 10, 20, 40, 80]}
    return specs


def _seed_anonymisation(organisation: Organisation) -> None:
    """The steward anonymises the prepared Adult version (ARX's classic task: eight quasi-identifiers, k = 5, at most
    5% suppressed), run inline as the worker would, and applies it."""
    from apps.datasets.anonymisation import anonymisation_apply_start, anonymisation_request
    from apps.datasets.models import Anonymisation, DatasetVersion
    from apps.jobs.runner import job_run_inline

    steward = _user("steward")
    prepared = DatasetVersion.objects.get(dataset__organisation=organisation, kind="prepared")
    item = anonymisation_request(
        actor=steward,
        version=prepared,
        config={
            "quasi_identifiers": ADULT_QUASI_IDENTIFIERS,
            "k": 5,
            "suppression_limit": 0.05,
            "hierarchies": adult_hierarchy_specs(),
        },
    )
    _run(job_run_inline, item.job)
    applying = anonymisation_apply_start(actor=steward, anonymisation=Anonymisation.objects.get(pk=item.pk))
    _run(job_run_inline, applying.job)
    child = Anonymisation.objects.get(pk=item.pk).output
    _run(job_run_inline, child.profile_job)


DEMO_WEEKS = 8
DRIFT_FROM_WEEK = 6
QUIET_WEEK = 3  # a holiday week with too few applications to judge drift: the charts show it as a gap
WEEK_ROWS, QUIET_WEEK_ROWS = 4000, 300
HOURS_DRIFT = 8
# The triage use case's post-market monitoring plan: weekly windows; a group's rate may move by 0.08 from the
# evaluation before it alerts (weekly samples of a few hundred people per group move by about half that by chance).
DEMO_MONITORING_PLAN = {
    "window": "week",
    "min_rows": 500,
    "min_labelled": 200,
    "keep_raw_rows": False,
    "raw_retention_days": 90,
    "monitors": {
        "data_drift": {"enabled": True, "psi_warn": 0.1, "psi_alert": 0.25, "ks_pvalue": 0.001},
        "prediction_drift": {"enabled": True, "psi_alert": 0.25},
        "data_quality": {"enabled": True, "missing_increase": 0.05, "out_of_range": 0.05, "new_categories": 0.02},
        "performance": {"enabled": True, "metric": "accuracy", "max_drop": 0.05},
        "fairness": {"enabled": True, "max_increase": 0.08},
        "privacy": {"enabled": True, "withdrawn_share": 0.01, "budget_remaining_below": 0.1},
    },
}


def _approve_for_deployment(model: Any) -> Any:
    """The board grants the owner's waiver (if the review asked for one) and approves the private model: every
    member votes, as the demo board waits for all of them."""
    from apps.ethics.models import ReviewRequest, Waiver
    from apps.ethics.services import vote_cast, waiver_vote

    review = ReviewRequest.objects.get(model_version=model, kind="deployment", status=ReviewRequest.Status.OPEN)
    members = [_user(name) for name in ("board1", "board2", "board3")]
    for waiver in review.waivers.filter(status=Waiver.Status.OPEN):
        for member in members:
            waiver_vote(
                actor=member,
                waiver=waiver,
                choice="approve",
                reason="Acceptable for 90 days: the gaps sit in small groups and post-market monitoring watches them.",
            )
    for member, reason in zip(
        members,
        (
            "Approved under the waiver; the contestation route is published with the deployment.",
            "Approved: caseworkers decide, and drift and fairness are monitored weekly.",
            "Approved; I expect the post-market monitoring report before the waiver expires.",
        ),
        strict=True,
    ):
        vote_cast(actor=member, review=review, choice="approve", reason=reason)
    review.refresh_from_db()
    return review


def _week_rows(frame: Any, week: int) -> Any:
    """The applications of replayed week ``week`` (1 to ``DEMO_WEEKS``): most of the held-out rows (the run's test
    split, never trained on: about 4,500 rows), a different sample each week, so the weeks differ by a little
    sampling noise and small groups are not judged on a handful of people. From
    ``DRIFT_FROM_WEEK`` the case system's new intake form counts overtime in hours per week (a numeric drift for
    everyone) and pre-fills "married" for women (so more women are flagged who should not be: their false-positive
    rate rises)."""
    import numpy as np

    size = QUIET_WEEK_ROWS if week == QUIET_WEEK else WEEK_ROWS
    rows = frame.sample(n=min(size, len(frame)), random_state=week).reset_index(drop=True)
    if week >= DRIFT_FROM_WEEK:
        rng = np.random.default_rng(week)
        rows["hours-per-week"] = (rows["hours-per-week"] + HOURS_DRIFT).clip(upper=99)
        women = (rows["sex"] == "Female") & (rng.random(len(rows)) < 0.45)
        rows.loc[women, "marital-status"] = "Married-civ-spouse"
    return rows


def _seed_deployments(organisation: Organisation) -> None:
    """Journey 7 on the demo: the board approves the private model, the owner deploys it to production, and eight
    past weeks of applications are replayed through the real path (each week scored by the deployment's endpoint
    and dated in its week, then its outcomes sent as late labels; every window evaluated by its job), so drift and
    fairness alerts, charts, a contestation and a retraining request are there at first login."""
    from datetime import datetime, time, timedelta

    from django.utils import timezone

    from apps.datasets.services import read_version_table
    from apps.deployments.alerts import alert_acknowledge
    from apps.deployments.feedback import feedback_submit_public
    from apps.deployments.models import Alert, ProductionBatch
    from apps.deployments.retraining import retraining_request_open
    from apps.deployments.services import (
        deployment_register,
        deployment_score_request,
        labels_record,
        monitoring_windows_close_due,
        scoring_token_create,
    )
    from apps.jobs.models import Job
    from apps.jobs.runner import job_run_inline
    from apps.training.models import ModelVersion

    owner = _user("owner")
    model = ModelVersion.objects.get(organisation=organisation, non_private=False, parent__isnull=True)
    _approve_for_deployment(model)
    this_monday = timezone.localdate() - timedelta(days=timezone.localdate().weekday())
    first_monday = this_monday - timedelta(weeks=DEMO_WEEKS)
    deployment = deployment_register(
        actor=owner,
        model_version=model,
        environment="production",
        system="Benefits case management",
        owner=owner,
        deployed_on=first_monday - timedelta(days=3),
    )
    _run(job_run_inline, Job.objects.get(kind="monitoring_reference", target_id=str(model.id), status="queued"))
    token, _secret = scoring_token_create(actor=owner, deployment=deployment, name="Case management system")

    run = model.training_run
    features = run.spec["features"]
    held_out = read_version_table(run.dataset_version).to_pandas().iloc[run.split["test"]]
    for week in range(1, DEMO_WEEKS + 1):
        rows = _week_rows(held_out, week)
        batch = rows[features].copy()
        batch["prediction_id"] = [f"APP-W{week}-{index:04d}" for index in range(len(rows))]
        scored = deployment_score_request(token=token, deployment=deployment, csv_text=batch.to_csv(index=False))
        # The replay: the batch arrives now and is dated on the Wednesday of its week before its job folds it in, so
        # it lands in that week's window.
        received = datetime.combine(first_monday + timedelta(weeks=week - 1, days=2), time(10, 0))
        ProductionBatch.objects.filter(pk=scored.pk).update(received_at=timezone.make_aware(received))
        _run(job_run_inline, scored.job)
        # The outcomes come back later, keyed by prediction id, as the case system sends them.
        outcomes = rows["class"].astype(str).str.strip().str.rstrip(".")
        labels = [
            {"prediction_id": prediction_id, "label": label}
            for prediction_id, label in zip(batch["prediction_id"], outcomes, strict=True)
        ]
        labels_record(actor=owner, deployment=deployment, labels=labels)
    # The hourly round would do this on Monday morning: each past window is evaluated by its job, oldest first.
    for window in sorted(monitoring_windows_close_due(), key=lambda w: w.starts_at):
        _run(job_run_inline, window.job)

    drift = Alert.objects.filter(deployment=deployment, monitor="data_drift:psi:hours-per-week").first()
    if drift is not None:
        alert_acknowledge(actor=owner, alert=drift)
        retraining_request_open(
            actor=owner,
            deployment=deployment,
            alert=drift,
            reason="Hours per week drifted from week 6 after the intake form started counting overtime; retrain on "
            "the newest prepared version once the form is fixed, and re-check women's false-positive rate.",
        )
    feedback_submit_public(
        deployment=deployment,
        kind="contestation",
        body="My application was flagged for review although my household income has not changed. The form "
        "recorded me as married, which I am not.",
        decision_reference="BEN-2026-00417",
    )
    # This week's first applications, scored with the same token as the case system sends them (through
    # ``POST /api/v1/deployments/{id}/score/``); their predictions stay on the job row.
    import pandas as pd

    batch = pd.read_csv(ADULT_PATH, nrows=25, na_values="?")[features]
    scored = deployment_score_request(token=token, deployment=deployment, csv_text=batch.to_csv(index=False))
    _run(job_run_inline, scored.job)


def _seed_training(organisation: Organisation) -> None:
    """Train on the prepared Adult version inline (a few seconds on a CPU), exactly as the worker would."""
    from apps.datasets.models import DatasetVersion
    from apps.jobs.runner import job_run_inline
    from apps.training.services import training_run_request

    owner = _user("owner")
    version = DatasetVersion.objects.get(dataset__organisation=organisation, kind="prepared")
    spec = {
        "label": "class",
        "features": [
            "age",
            "workclass",
            "education-num",
            "marital-status",
            "occupation",
            "race",
            "sex",
            "hours-per-week",
            "capital-gain",
            "capital-loss",
        ],
        "model": "logistic_regression",
        "epochs": 3,
        "batch_size": 256,
        "learning_rate": 0.05,
        "max_grad_norm": 1.0,
        "target_epsilon": 1.0,
        "seed": 7,
    }
    for non_private in (False, True):
        run = training_run_request(actor=owner, version=version, spec=spec, non_private=non_private)
        _run(job_run_inline, run.job)
    from apps.evaluation.models import Evaluation

    # The baseline first, so the private model's evaluation can show the cost of privacy per group.
    for item in sorted(
        Evaluation.objects.filter(organisation=organisation), key=lambda e: not e.model_version.non_private
    ):
        _run(job_run_inline, item.job)


def _seed_mitigation(organisation: Organisation) -> None:
    """The steward fits group thresholds on the private model's validation rows (demographic parity by sex, the
    policy's main metric; no privacy budget spent), run inline as the worker would, and the candidate is evaluated
    on the same held-out rows, so the model page and the evaluation show it against the original."""
    from apps.evaluation.mitigation import mitigation_request
    from apps.evaluation.models import Evaluation
    from apps.jobs.runner import job_run_inline
    from apps.training.models import ModelVersion

    model = ModelVersion.objects.get(organisation=organisation, non_private=False, parent__isnull=True)
    run = mitigation_request(
        actor=_user("steward"),
        model_version=model,
        method="thresholds",
        constraint="demographic_parity",
        attribute="sex",
    )
    _run(job_run_inline, run.job)
    candidate = ModelVersion.objects.get(training_run=run)
    _run(job_run_inline, Evaluation.objects.get(model_version=candidate).job)


def _demo_refuser(organisation: Organisation) -> str:
    """The first applicant who refused consent. Their rows are in the raw upload only (preparation dropped them), so
    erasing them replaces the raw version and leaves the prepared version the demo's models were trained and are
    evaluated on intact; erasing someone in the training rows would destroy that version's file, and the models could
    no longer be re-evaluated or explained in the demo (which is what erasure means, but not what a demo is for)."""
    from apps.consent.models import ConsentRecord
    from apps.consent.services import pseudonym_secret
    from workers.engine.consent import pseudonymise

    refused = set(
        ConsentRecord.objects.filter(organisation=organisation, status="refused").values_list(
            "subject__pseudonym", flat=True
        )
    )
    secret = pseudonym_secret(organisation)
    return next(
        identifier
        for identifier in (f"A-{row:05d}" for row in range(1, 32562))
        if pseudonymise(identifier, secret) in refused
    )


def _seed_rights(organisation: Organisation) -> None:
    """Last, because the erasure replaces the raw version the steps above started from: one erasure completed through
    the officer's services and jobs, with its certificate, and one open access request, traced."""
    from apps.jobs.runner import job_run_inline
    from apps.rights.services import subject_request_decide, subject_request_execute, subject_request_register
    from apps.rights.trace import is_private
    from apps.training.models import ModelVersion

    officer = _user("privacy")
    erasure = subject_request_register(
        actor=officer,
        organisation=organisation,
        kind="erasure",
        identifier=_demo_refuser(organisation),
        identity_verification="Signed letter checked against the application file on record.",
        assignee=officer,
    )
    _run(job_run_inline, erasure.trace_job)
    erasure.refresh_from_db()
    for entry in erasure.trace["models"]:
        model = ModelVersion.objects.get(pk=entry["model_version_id"])
        subject_request_decide(
            actor=officer,
            request=erasure,
            model_version=model,
            decision="keep_dp" if is_private(model) else "retrain",
        )
    _run(job_run_inline, subject_request_execute(actor=officer, request=erasure))
    erasure.refresh_from_db()
    if erasure.status != "completed":
        raise RuntimeError(f"demo seed: the erasure did not complete: {erasure.waiting_reason or erasure.failure}")
    for report in (erasure.certificate, erasure.access_report):
        if report is not None:
            _run(job_run_inline, report.job)
    access = subject_request_register(
        actor=officer,
        organisation=organisation,
        kind="access",
        identifier="A-00101",
        identity_verification="Passport seen at the service counter.",
    )
    _run(job_run_inline, access.trace_job)


def _run(run_inline: Any, job: Any) -> Any:
    """Run a demo job inline through the job lifecycle; a seed that cannot finish stops with the job's reason."""
    ended = run_inline(job)
    if ended.status != "succeeded":
        raise RuntimeError(f"demo seed: the {ended.kind} job {ended.status}: {(ended.error or {}).get('message')}")
    return ended
