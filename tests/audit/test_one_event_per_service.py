"""The audit rule: every service writes exactly one audit event per call (a batch service one per object it changes);
what is not audited says why; the few services whose call is followed by another service's events say so by name.

Every public function of every ``apps/*/services.py`` (and ``apps/datasets/anonymisation.py``) is classified below,
so a new service that is in neither list fails ``test_every_public_service_is_classified``: nobody adds one silently.
One parametrised test calls each audited service once, on state built with the real services, and counts the events
that one call wrote. Engine outputs (a trained model, its evaluation's figures) are given as numbers, as the worker
hands them to the services, so no case needs torch.
"""

from __future__ import annotations

import importlib
import inspect
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from django.utils import timezone

from apps.accounts.models import ApiToken, AuditorGrant, Invitation, Membership, Role
from apps.audit.models import AuditEvent
from apps.jobs.models import Job
from tests.conftest import PASSWORD, make_user
from tests.ethics.conftest import board2, board3  # noqa: F401 - shared fixtures
from tests.ethics.factories import open_review, set_board_rules
from tests.training.conftest import approved_usecase, prepared_version, private_storage, run_spec  # noqa: F401
from tests.usecases.factories import usecase_data

pytestmark = pytest.mark.django_db

REPO = Path(__file__).resolve().parents[2]
MODULES = sorted(f"apps.{path.parent.name}.services" for path in (REPO / "apps").glob("*/services.py")) + [
    "apps.datasets.anonymisation",
    "apps.evaluation.mitigation",
    "apps.deployments.alerts",
    "apps.deployments.feedback",
    "apps.deployments.retraining",
    "apps.datasets.subjects",
    "apps.rights.exports",
    "apps.rights.flags",
]

# ------------------------------------------------------------------------------------------------ classification

# Each audited service and the actions its events may have. One event per call, except where BATCH says otherwise.
AUDITED: dict[str, tuple[str, ...]] = {
    "accounts.organisation_update": ("organisation.update",),
    "accounts.security_event_record": ("login.locked", "api_token.", "user.password_"),
    "accounts.login_lockout_record": ("login.locked",),
    "accounts.password_changed_record": ("user.password_change", "user.password_reset"),
    "accounts.membership_add": ("membership.add",),
    "accounts.membership_remove": ("membership.remove",),
    "accounts.auditor_grant_create": ("auditor_grant.create",),
    "accounts.auditor_grant_revoke": ("auditor_grant.revoke",),
    "accounts.api_token_create": ("api_token.create",),
    "accounts.api_token_revoke": ("api_token.revoke",),
    "accounts.user_session_revoke": ("session.revoke",),
    "accounts.user_sessions_revoke_others": ("session.revoke_others",),
    "accounts.member_sessions_revoke": ("session.revoke_member",),
    "accounts.user_create": ("user.create",),
    "accounts.invitation_create": ("invitation.create",),
    "accounts.invitation_revoke": ("invitation.revoke",),
    "accounts.invitation_accept": ("invitation.accept",),
    "audit.audit_record": ("",),  # the writer itself: one event of whatever action it is given
    "consent.consent_event_record": ("consent.record",),
    "consent.consent_import_create": ("consent.import_create",),
    "consent.consent_import_run": ("consent.import",),
    "datasets.dataset_create": ("dataset.create",),
    "datasets.dataset_version_upload": ("dataset.upload",),
    "datasets.dataset_version_profile": ("dataset.profile",),
    "datasets.dataset_version_confirm_roles": ("dataset.confirm_roles",),
    "datasets.dataset_version_prepare_start": ("dataset.prepare_request",),
    "datasets.dataset_version_prepare": ("dataset.prepare",),
    "datasets.store_derived_version": ("dataset.",),  # its caller's action: dataset.prepare, dataset.anonymise
    "datasets.datasheet_save": ("datasheet.save",),
    "datasets.dataset_version_erase_expired": ("dataset.erase",),
    "datasets.master_key_rotate": ("keys.rotate_master",),
    "subjects.versions_without_subjects": ("dataset.erase_subjects",),
    "subjects.versions_destroy": ("dataset.destroy_replaced",),
    "subjects.version_rectified": ("dataset.rectify",),
    "anonymisation.anonymisation_request": ("anonymisation.request",),
    "anonymisation.anonymisation_run": ("anonymisation.record",),
    "anonymisation.anonymisation_record": ("anonymisation.record",),
    "anonymisation.anonymisation_apply_start": ("anonymisation.apply",),
    "anonymisation.anonymisation_apply": ("dataset.anonymise",),
    "ethics.notices_mark_read": ("notice.read",),
    "ethics.board_update": ("board.update",),
    "ethics.review_request_deployment": ("review.open",),
    "ethics.review_answer_checklist": ("review.answer",),
    "ethics.vote_cast": ("review.vote",),
    "ethics.review_recuse": ("review.recuse",),
    "ethics.review_close": ("review.close",),
    "ethics.reviews_supersede_stale": ("review.supersede",),
    "ethics.waiver_request": ("waiver.request",),
    "ethics.waiver_vote": ("waiver.vote",),
    "ethics.condition_mark_met": ("condition.met",),
    "ethics.checklist_take_stance": ("review.checklist_stance",),
    "ethics.comment_add": ("review.comment",),
    "ethics.reviews_decide_due": ("review.decide_due", "waiver.decide_due"),
    "ethics.reviews_remind_due": ("review.remind",),
    "evaluation.evaluation_request": ("evaluation.request",),
    "evaluation.evaluation_record": ("evaluation.record",),
    "mitigation.mitigation_request": ("mitigation.request",),
    "mitigation.mitigation_succeed": ("mitigation.succeed",),
    "mitigation.mitigation_stop": ("mitigation.stop",),
    "mitigation.row_explanation_request": ("model.explain_row",),
    "jobs.job_succeed": ("job.succeed",),
    "jobs.job_fail": ("job.fail",),
    "jobs.job_mark_cancelled": ("job.cancelled",),
    "jobs.job_diagnostics_start": ("job.diagnostics",),
    "jobs.job_cancel": ("job.cancel",),
    "jobs.job_reap_expired": ("job.failed", "job.cancelled"),
    "modelcards.modelcard_save": ("modelcard.save",),
    "thirdparty.thirdparty_register": ("thirdparty.register",),
    "thirdparty.thirdparty_update": ("thirdparty.update",),
    "thirdparty.thirdparty_record_documentation": ("thirdparty.documentation",),
    "thirdparty.thirdparty_set_status": ("thirdparty.status",),
    "reports.signing_identity_import": ("signing_identity.create",),
    "reports.report_request": ("report.request",),
    "reports.report_render": ("report.issue",),
    "compliance.framework_upload": ("framework.upload",),
    "compliance.evidence_link_add": ("compliance_evidence.add",),
    "compliance.evidence_link_remove": ("compliance_evidence.remove",),
    "compliance.requirement_confirm": ("compliance_requirement.confirm",),
    "compliance.compliance_statement_request": ("report.request",),
    "training.training_run_request": ("training.request",),
    "training.training_run_succeed": ("training.succeed",),
    "training.training_run_stop": ("training.stop",),
    "deployments.deployment_register": ("deployment.register", "deployment.promote"),
    "deployments.deployment_rollback": ("deployment.rollback",),
    "deployments.deployment_withdraw": ("deployment.withdraw",),
    "deployments.scoring_token_create": ("scoring_token.create",),
    "deployments.scoring_token_revoke": ("scoring_token.revoke",),
    "deployments.usecase_set_monitoring_plan": ("usecase.monitoring_plan",),
    "deployments.monitoring_reference_record": ("monitoring.reference",),
    "deployments.production_batch_post": ("production_batch.receive",),
    "deployments.production_batch_upload": ("production_batch.receive",),
    "deployments.production_batch_process": ("production_batch.accept",),
    "deployments.labels_record": ("production_batch.labels",),
    "deployments.deployment_score_request": ("deployment.score_request",),
    "deployments.scored_batch_record": ("production_batch.accept",),
    "deployments.monitoring_window_record": ("monitoring.window_evaluate",),
    "deployments.monitoring_windows_close_due": ("monitoring.window_close",),
    "deployments.production_data_sweep": ("monitoring.retention_sweep",),
    "ethics.approval_revoke": ("review.approval_revoke",),
    "alerts.alerts_sync": ("alert.sync",),
    "alerts.alerts_check_governance": ("alert.governance",),
    "alerts.alert_acknowledge": ("alert.acknowledge",),
    "alerts.alert_assign": ("alert.assign",),
    "alerts.alert_comment": ("alert.comment",),
    "alerts.alert_resolve": ("alert.resolve",),
    "alerts.alert_webhook_set": ("alert_webhook.set",),
    "alerts.alert_webhook_remove": ("alert_webhook.remove",),
    "feedback.feedback_submit": ("feedback.submit",),
    "feedback.feedback_submit_public": ("feedback.submit_public",),
    "feedback.feedback_triage": ("feedback.triage",),
    "feedback.feedback_close": ("feedback.close",),
    "feedback.feedback_erase_expired": ("feedback.erase",),
    "retraining.retraining_request_open": ("retraining.open",),
    "retraining.retraining_request_launch": ("retraining.launch", "training.request"),
    "retraining.retraining_request_close": ("retraining.close",),
    "retraining.retraining_requests_follow": ("retraining.follow",),
    "rights.subject_request_register": ("rights.register",),
    "rights.subject_request_assign": ("rights.assign",),
    "rights.subject_request_extend": ("rights.extend",),
    "rights.subject_request_decide": ("rights.decide",),
    "rights.subject_request_execute": ("rights.execute",),
    "rights.subject_request_trace_again": ("rights.trace",),
    "rights.subject_requests_resume_waiting": ("rights.resume",),
    "exports.access_export_create": ("rights.export_create",),
    "exports.export_packages_erase_expired": ("rights.export_erase",),
    "flags.reports_supersede_for": ("rights.reports_supersede",),
    "usecases.usecase_create": ("usecase.create",),
    "usecases.usecase_update": ("usecase.update",),
    "usecases.usecase_transition": ("usecase.",),
    "usecases.usecase_tighten_gate": ("usecase.tighten_gate",),
    "portfolio.risk_create": ("risk.create",),
    "portfolio.risk_update": ("risk.update",),
    "portfolio.risk_close": ("risk.close",),
}

# Batch services: one event per object changed, not per call.
BATCH = {
    "accounts.security_event_record": "one per organisation that answers for the person (each chain its own copy)",
    "accounts.login_lockout_record": "through security_event_record: one per organisation of the person",
    "accounts.password_changed_record": "through security_event_record: one per organisation of the person",
    "accounts.api_token_create": "through security_event_record: one per organisation of the person",
    "accounts.api_token_revoke": "through security_event_record: one per organisation of the person",
    "accounts.user_session_revoke": "through security_event_record: one per organisation of the person",
    "accounts.user_sessions_revoke_others": "through security_event_record: one per organisation of the person",
    "accounts.member_sessions_revoke": "through security_event_record: one per organisation of the member",
    "datasets.dataset_version_erase_expired": "one per version erased",
    "exports.export_packages_erase_expired": "one per access export erased",
    "ethics.reviews_supersede_stale": "one per open review whose bindings changed",
    "ethics.reviews_decide_due": "one per waiver and per review the due date decides",
    "ethics.reviews_remind_due": "one per review whose members are reminded",
    "jobs.job_reap_expired": "one per job failed or cancelled (a requeued job is telemetry)",
    "deployments.monitoring_windows_close_due": "one per window whose evaluation it queues",
    "deployments.production_data_sweep": "one per organisation whose expired production data it removed",
    "alerts.alerts_check_governance": "one per deployment whose governance alerts opened, escalated or cleared",
    "feedback.feedback_erase_expired": "one per organisation whose expired feedback it erased",
    "retraining.retraining_requests_follow": "one per request whose status or review moved",
    "rights.subject_requests_resume_waiting": "one per waiting request it sends on (its training runs ended)",
    "retraining.retraining_request_launch": "two aggregates: the training run it requests (training.request, with "
    "its budget reservation, by the training service) and the request it links (retraining.launch)",
}

NOT_AUDITED: dict[str, str] = {
    "accounts.email_digest": "pure function: the digest events keep of an address",
    "accounts.keyed_digest": "pure function: the keyed digest events keep of an identifier",
    "audit.audit_head_publish": "records a head leaving the database (a PublishedHead row); an event would move it",
    "consent.consent_import_discard_file": "file housekeeping inside the import job's failure hook",
    "consent.import_file_path": "a path",
    "consent.pseudonym_secret": "a read that creates the key lazily, an internal step like a chain head",
    "datasets.read_version_table": "a read of the decrypted table",
    "deployments.open_batch_rows": "a read of a batch's kept rows (decrypted as a stream)",
    "deployments.production_batch_discard": "file housekeeping inside the production-batch job's failure hook",
    "deployments.monitoring_tick": "the hourly round: windows_close_due, production_data_sweep, "
    "alerts_check_governance and retraining_requests_follow each record their own events",
    "ethics.review_open_development": "a step of usecase_transition('submit'), whose event names the review",
    "alerts.alert_url": "a path",
    "alerts.deployment_url": "a path",
    "alerts.approvers_of": "a read: the board members who approved a model",
    "alerts.alerts_visible_to": "a read",
    "alerts.alerts_on_models_approved_by": "a read (the board member's dashboard card)",
    "alerts.alert_may": "a permission check",
    "alerts.recipients_of": "a read: who is told about an alert",
    "feedback.feedback_reference": "pure function: the reference a person is given",
    "feedback.feedback_visible_to": "a read",
    "feedback.feedback_may": "a permission check",
    "retraining.retraining_visible_to": "a read",
    "retraining.retraining_may": "a permission check",
    "retraining.newest_prepared_version": "a read",
    "retraining.retraining_prefill": "a read: what the launch starts from",
    "retraining.retraining_progress": "a read: where the request stands, live",
    "retraining.retraining_comparison": "a read: the review page's evidence and side-by-side comparison",
    "evaluation.evaluation_queue": "a step of its caller, whose event names the evaluation (and so its job)",
    "mitigation.mitigation_plan": "a read: what a mitigation would use and spend (its epsilon), before launch",
    "jobs.job_create": "a step of its caller, whose one event names the job",
    "jobs.job_claim": "telemetry: a worker takes a job (the job row records it)",
    "jobs.job_renew_lease": "telemetry: lease renewal",
    "jobs.job_report_progress": "telemetry: progress",
    "jobs.job_release_for_retry": "telemetry: a transient error returns the job to the queue",
    "jobs.payload_digest": "pure function: what events keep of a spec or result",
    "modelcards.card_digest": "pure function",
    "modelcards.card_prefill": "pure function: the prefilled narrative",
    "modelcards.current_card": "a read",
    "modelcards.modelcard_prefill_first": "a step of review_request_deployment, whose event binds the revision",
    "reports.report_file": "a read of the stored PDF",
    "reports.report_html": "pure rendering",
    "reports.report_relative_path": "a path",
    "reports.report_storage_root": "a path",
    "reports.report_verify": "a read: is this file one we issued",
    "reports.signing_identity": "a read that makes a self-signed identity lazily; report.issue names the signer",
    "reports.subject_object": "a read",
    "reports.subject_organisation": "a read",
    "training.budget_for": "a read that creates the budget row lazily from the policy (training.request books it)",
    "training.committed_mechanisms": "a read",
    "training.people_count": "a read",
    "training.training_run_started": "telemetry: the noise the worker calibrated",
    "training.training_run_progress": "telemetry: steps and curve",
    "training.run_budget_settle": "a step of the service ending a mitigation run, whose event records the spend",
    "usecases.submission_blockers": "a read",
    "usecases.usecase_apply_decision": "a step of the board's decision, whose event (review.vote/close/...) records it",
    "anonymisation.default_config": "a read: the form's starting settings",
    "anonymisation.parse_hierarchy_csv": "pure parsing of an upload",
    "anonymisation.parse_population_csv": "pure parsing of an upload",
    "subjects.live_versions": "a read",
    "subjects.version_files_discard": "removes files of versions whose creation rolled back: nothing happened",
    "subjects.index_path": "a path",
    "subjects.holds_identifiers": "pure function of the version's kind",
    "subjects.index_builder": "pure: an empty in-memory index builder",
    "subjects.subject_index_store": "a derived lookup file of content whose upload or derivation is audited",
    "subjects.subject_index_current": "a read",
    "subjects.subject_index_build": "a derived lookup file of content whose upload or derivation is audited",
    "subjects.subject_index_ensure": "a derived lookup file of content whose upload or derivation is audited",
    "subjects.versions_holding": "a read of the indexes (the rights trace job records the trace)",
    "subjects.positions_in_version": "a read of one version's index",
    "subjects.personal_columns": "a read",
    "subjects.subject_rows": "a read of a person's rows (the access export records it)",
    "exports.access_facts": "a read (what the access summary prints)",
    "exports.logic_information": "a read of the model's evaluation",
    "exports.export_package_bytes": "a read: the officer's download of a package whose creation is audited",
    "flags.changed_by_requests": "a read",
    "flags.withdrawn_in_training_rows": "a read of the consent records and the training version's index",
    "flags.withdrawn_pseudonyms": "a read",
    "flags.withdrawn_since_training": "a read",
    "flags.flag_for": "a read",
    "flags.supersession_of": "a read",
}

# A call whose own event is followed, in the same call, by another service's events: another aggregate's change, made
# by the named service (docs/architecture.md, "Audit chain"). Everything else folds its steps into its one event.
CASCADES: dict[str, str] = {
    "datasets.datasheet_save": "ethics.reviews_supersede_stale",
    "modelcards.modelcard_save": "ethics.reviews_supersede_stale",
    # A third-party model's identity, version, documentation hash and status are bound by its use case's reviews.
    "thirdparty.thirdparty_register": "ethics.reviews_supersede_stale",
    "thirdparty.thirdparty_update": "ethics.reviews_supersede_stale",
    "thirdparty.thirdparty_record_documentation": "ethics.reviews_supersede_stale",
    "thirdparty.thirdparty_set_status": "ethics.reviews_supersede_stale",
    "usecases.usecase_tighten_gate": "ethics.reviews_supersede_stale",
    "evaluation.evaluation_record": "ethics.reviews_supersede_stale",
    # On a review whose bindings changed: the supersession is recorded, then the act is refused (no event of its own).
    "ethics.vote_cast": "ethics.reviews_supersede_stale",
    "ethics.review_close": "ethics.reviews_supersede_stale",
    "ethics.waiver_request": "ethics.reviews_supersede_stale",
    # The board's hourly round decides what the due date decides, then reminds.
    "ethics.reviews_remind_due": "ethics.reviews_decide_due",
    # A job that ends without a worker (lost, or cancelled while queued) settles its domain side through its kind's
    # failure hook: a training run's budget (training.stop). job_cancel does it after commit.
    "jobs.job_reap_expired": "training.training_run_stop",
    "jobs.job_cancel": "training.training_run_stop",
    # A new plan changes the policies open deployment reviews are bound to.
    "deployments.usecase_set_monitoring_plan": "ethics.reviews_supersede_stale",
    # Launching a retraining requests the run through the training service, which books the budget in its own event.
    "retraining.retraining_request_launch": "training.training_run_request",
}


SIDE_MODULES = {"anonymisation": "apps.datasets.anonymisation", "mitigation": "apps.evaluation.mitigation"}
SIDE_MODULES.update(
    {
        "exports": "apps.rights.exports",
        "flags": "apps.rights.flags",
        "subjects": "apps.datasets.subjects",
        "alerts": "apps.deployments.alerts",
        "feedback": "apps.deployments.feedback",
        "retraining": "apps.deployments.retraining",
    }
)


def _label(module: str) -> str:
    side = module.rpartition(".")[2]
    return side if side in SIDE_MODULES else module.split(".")[1]


def public_services() -> set[str]:
    names = set()
    for module_name in MODULES:
        module = importlib.import_module(module_name)
        for name, function in inspect.getmembers(module, inspect.isfunction):
            if function.__module__ == module_name and not name.startswith("_"):
                names.add(f"{_label(module_name)}.{name}")
    return names


def service(name: str) -> Callable[..., Any]:
    label, function = name.split(".")
    module = SIDE_MODULES.get(label, f"apps.{label}.services")
    return getattr(importlib.import_module(module), function)


def test_every_public_service_is_classified():
    found = public_services()
    unclassified = sorted(found - set(AUDITED) - set(NOT_AUDITED))
    assert not unclassified, (
        f"Classify these in {__name__}: AUDITED (with a case below) or NOT_AUDITED with a reason: {unclassified}"
    )
    assert not set(AUDITED) & set(NOT_AUDITED)
    assert not (set(AUDITED) | set(NOT_AUDITED)) - found, "classified names that are no longer services"
    assert set(BATCH) <= set(AUDITED) and all(NOT_AUDITED.values())
    assert set(CASCADES) <= set(AUDITED) and set(CASCADES.values()) <= set(AUDITED)


def test_every_audited_service_has_a_case():
    assert sorted(set(AUDITED) - {case.split("[")[0] for case in CASES}) == []


# ------------------------------------------------------------------------------------------------------ the world

PRIVACY = {
    "epsilon": 1.0,
    "delta": 1e-5,
    "noise_source": "csprng-chacha20",
    "steps": 40,
    "noise_multiplier": 1.1,
    "sample_rate": 0.06,
    "accountant": "pld",
}
PASSING = {
    "verdict": "pass",
    "groupings": [],
    "gates": [
        {
            "metric": "demographic_parity_difference",
            "passed": True,
            "value": 0.05,
            "threshold": 0.9,
            "direction": "max",
            "grouping": "sex",
        }
    ],
}
FAILING = {
    "verdict": "fail",
    "groupings": [],
    "gates": [
        {
            "metric": "demographic_parity_difference",
            "passed": False,
            "value": 0.3,
            "threshold": 0.1,
            "direction": "max",
            "grouping": "sex",
        }
    ],
}
CONSENT_ROWS = 300


class World:
    """The fixtures a case asks for by name, and the states cases share, each built once per test on demand."""

    def __init__(self, request: pytest.FixtureRequest) -> None:
        self._request = request

    def __getattr__(self, name: str) -> Any:
        return self._request.getfixturevalue(name)

    @cached_property
    def draft(self):
        from apps.usecases.services import usecase_create

        return usecase_create(actor=self.owner, organisation=self.org, data=usecase_data())

    @cached_property
    def development_review(self):
        """A submitted use case's open review, before a board that waits for every member (three of them)."""
        from apps.usecases.services import usecase_transition

        self.board_member, self.board2, self.board3  # noqa: B018 - the board exists before the review opens
        usecase = usecase_transition(actor=self.owner, usecase=self.draft, action="submit")
        return open_review(usecase)

    @cached_property
    def raw_version(self):
        """An uploaded, profiled raw version with confirmed roles and consent for every row (ready to prepare)."""
        from apps.consent.services import consent_import_create, consent_import_run
        from apps.datasets.services import dataset_create, dataset_version_confirm_roles, dataset_version_profile

        dataset = dataset_create(actor=self.steward, usecase=self.approved_usecase, name="Adult sample")
        raw = self.upload(dataset)
        dataset_version_profile(version_id=raw.id)
        roles = {c.name: c.suggested_role for c in raw.columns.all()}
        roles["class"] = "label"
        dataset_version_confirm_roles(actor=self.steward, version=raw, roles=roles)
        consent = "subject_id,purpose,status,timestamp\n" + "".join(
            f"A-{i:05d},Service improvement,granted,2026-01-01T00:00:00Z\n" for i in range(1, CONSENT_ROWS + 1)
        )
        consent_import = consent_import_create(
            actor=self.steward, organisation=self.org, file_name="c.csv", chunks=iter([consent.encode()])
        )
        consent_import_run(consent_import_id=consent_import.id)
        raw.refresh_from_db()
        return raw

    def upload(self, dataset, rows: int = CONSENT_ROWS):
        from apps.datasets.services import dataset_version_upload
        from apps.datasets.storage import EncryptedIncomingFile

        frame = pd.read_csv(REPO / "data" / "adult.csv", nrows=rows)
        frame.insert(0, "applicant_id", [f"A-{i:05d}" for i in range(1, rows + 1)])
        incoming = EncryptedIncomingFile()
        incoming.write(frame.to_csv(index=False).encode())
        sha = incoming.close()
        version, _ = dataset_version_upload(
            actor=self.steward, dataset=dataset, incoming=incoming, sha256=sha, file_name="adult.csv"
        )
        return version

    @cached_property
    def pending_run(self):
        from apps.training.services import training_run_request

        return training_run_request(actor=self.owner, version=self.prepared_version, spec=run_spec())

    @cached_property
    def model(self):
        """A private model version as the worker reports it (figures given, no torch), evaluated as passing."""
        from apps.evaluation.models import Evaluation

        model = self.succeed(self.pending_run)
        self.record(Evaluation.objects.get(model_version=model), PASSING)
        return model

    def succeed(self, run):
        from apps.training.services import training_run_succeed

        return training_run_succeed(
            run=run,
            privacy=dict(PRIVACY),
            metrics={"validation_accuracy": 0.8},
            split={"train": [], "validation": [], "test": [], "sha256": "0" * 64},
            curve=[],
            manifest={"model_sha256": "ab" * 32, "privacy": dict(PRIVACY)},
            storage_path="models/none",
            composed=PRIVACY["epsilon"],
        )

    def record(self, evaluation, results):
        from apps.evaluation.services import evaluation_record

        return evaluation_record(evaluation=evaluation, results=results, audit={}, privacy_cost=[])

    @cached_property
    def deployment_review(self):
        from apps.ethics.services import review_request_deployment

        return review_request_deployment(actor=self.owner, model_version=self.model)

    @cached_property
    def failing_review(self):
        """A deployment review of a model whose bound evaluation fails a gate (waivers apply)."""
        from apps.evaluation.services import evaluation_request

        model = self.model  # the use case was approved by board_member alone; then the board grows to three
        self.board2, self.board3  # noqa: B018
        self.record(evaluation_request(actor=self.owner, model_version=model), FAILING)
        return self.deployment_review

    @cached_property
    def anonymisation(self):
        from apps.datasets.anonymisation import anonymisation_request

        return anonymisation_request(
            actor=self.steward,
            version=self.prepared_version,
            config={"quasi_identifiers": ["age", "sex"], "k": 5, "suppression_limit": 0.05},
        )

    def diagnostics_job(self, *, running: bool = False, max_attempts: int | None = None):
        from apps.jobs.services import job_claim, job_diagnostics_start

        job = job_diagnostics_start(actor=self.admin_user, organisation=self.org)
        if max_attempts is not None:
            Job.objects.filter(pk=job.pk).update(max_attempts=max_attempts)
        return job_claim(job_id=job.id, worker="test-worker") if running else job


@dataclass
class Call:
    """The one call a case makes, how many events it must write (a number, or a function of its result), and whether
    it must create jobs (each named by the event)."""

    run: Callable[[], Any]
    expect: int | Callable[[Any], int] = 1
    check: Callable[[Any, list[AuditEvent]], None] | None = None


CASES: dict[str, Callable[[World], Call]] = {}


def case(name: str):
    def register(build: Callable[[World], Call]) -> Callable[[World], Call]:
        assert name not in CASES
        CASES[name] = build
        return build

    return register


# -------------------------------------------------------------------------------------------------------- accounts


@case("accounts.organisation_update")
def _(w):
    from apps.accounts.services import organisation_update

    return Call(lambda: organisation_update(actor=w.admin_user, organisation=w.org, data={"min_cell_size": 12}))


@case("accounts.security_event_record")
def _(w):
    from apps.accounts.services import security_event_record

    Membership.objects.create(user=w.owner, organisation=w.other_org, role=Role.OWNER)

    def check(_result, events):
        assert {e.organisation_id for e in events} == {w.org.id, w.other_org.id}  # one copy in each chain

    return Call(
        lambda: security_event_record(
            actor=None, subject=w.owner, action="login.locked", target=w.owner, after={"limit": "account"}
        ),
        expect=2,
        check=check,
    )


@case("accounts.login_lockout_record")
def _(w):
    from apps.accounts.services import login_lockout_record

    return Call(lambda: login_lockout_record(username=w.owner.username, ip_address="192.0.2.7", limit="pair"))


@case("accounts.password_changed_record")
def _(w):
    from apps.accounts.services import password_changed_record

    return Call(lambda: password_changed_record(user=w.owner, how="change"))


@case("accounts.membership_add")
def _(w):
    from apps.accounts.services import membership_add

    return Call(lambda: membership_add(actor=w.admin_user, organisation=w.org, user=w.owner, role=Role.STEWARD))


@case("accounts.membership_remove")
def _(w):
    from apps.accounts.services import membership_remove

    membership = Membership.objects.get(user=w.steward, organisation=w.org)
    return Call(lambda: membership_remove(actor=w.admin_user, membership=membership))


@case("accounts.auditor_grant_create")
def _(w):
    from apps.accounts.services import auditor_grant_create

    person = make_user("gina_granted")
    return Call(lambda: auditor_grant_create(actor=None, organisation=w.org, user=person, reason="Regulator"))


@case("accounts.auditor_grant_revoke")
def _(w):
    from apps.accounts.services import auditor_grant_revoke

    grant = AuditorGrant.objects.get(user=w.external_auditor)
    return Call(lambda: auditor_grant_revoke(actor=w.admin_user, grant=grant))


@case("accounts.api_token_create")
def _(w):
    from apps.accounts.services import api_token_create

    return Call(lambda: api_token_create(actor=w.owner, name="CI pipeline"))


@case("accounts.api_token_revoke")
def _(w):
    from apps.accounts.services import api_token_create, api_token_revoke

    token, _raw = api_token_create(actor=w.owner, name="CI pipeline")
    return Call(lambda: api_token_revoke(actor=w.owner, token=ApiToken.objects.get(pk=token.pk)))


def _tracked_session(user):
    """A real database session of ``user`` and its tracking row (apps/accounts/sessions.py)."""
    from django.contrib.sessions.backends.db import SessionStore

    from apps.accounts.models import UserSession
    from apps.accounts.sessions import session_key_hash

    store = SessionStore()
    store.create()
    now = timezone.now()
    return UserSession.objects.create(
        user=user, key_hash=session_key_hash(store.session_key), signed_in_at=now, last_seen_at=now
    )


@case("accounts.user_session_revoke")
def _(w):
    from apps.accounts.services import user_session_revoke

    row = _tracked_session(w.owner)
    return Call(lambda: user_session_revoke(actor=w.owner, user_session=row))


@case("accounts.user_sessions_revoke_others")
def _(w):
    from apps.accounts.services import user_sessions_revoke_others

    keep, _other = _tracked_session(w.owner), _tracked_session(w.owner)
    return Call(lambda: user_sessions_revoke_others(actor=w.owner, current_key_hash=keep.key_hash))


@case("accounts.member_sessions_revoke")
def _(w):
    from apps.accounts.services import member_sessions_revoke

    _tracked_session(w.owner)
    return Call(lambda: member_sessions_revoke(actor=w.admin_user, organisation=w.org, member=w.owner))


@case("accounts.user_create")
def _(w):
    from apps.accounts.services import user_create

    return Call(
        lambda: user_create(
            actor=None,
            organisation=w.org,
            username="nina_new",
            email="nina@example.org",
            full_name="Nina New",
            password=PASSWORD,
            roles=[Role.OWNER],
        )
    )


@case("accounts.invitation_create")
def _(w):
    from apps.accounts.services import invitation_create

    return Call(lambda: invitation_create(actor=w.admin_user, organisation=w.org, email="ivy@example.org"))


@case("accounts.invitation_revoke")
def _(w):
    from apps.accounts.services import invitation_create, invitation_revoke

    invitation = invitation_create(actor=w.admin_user, organisation=w.org, email="ivy@example.org")
    return Call(lambda: invitation_revoke(actor=w.admin_user, invitation=invitation))


@case("accounts.invitation_accept")
def _(w):
    from apps.accounts.services import invitation_accept, invitation_create

    invitation = invitation_create(actor=w.admin_user, organisation=w.org, email="ivy@example.org")
    account = {"username": "ivy_invited", "full_name": "Ivy Invited", "password": PASSWORD}
    return Call(
        lambda: invitation_accept(actor=None, invitation=Invitation.objects.get(pk=invitation.pk), new_account=account)
    )


@case("audit.audit_record")
def _(w):
    from apps.audit.services import audit_record

    return Call(lambda: audit_record(actor=w.admin_user, organisation=w.org, action="probe.write", target=w.org))


# --------------------------------------------------------------------------------------------------------- consent


@case("consent.consent_event_record")
def _(w):
    from apps.consent.services import consent_event_record

    # The organisation's first consent event: it also creates the pseudonym key, which is no second event.
    data = {
        "subject_id": "A-00001",
        "purpose": "Service improvement",
        "status": "withdrawn",
        "timestamp": "2026-02-01T00:00:00Z",
    }
    return Call(lambda: consent_event_record(actor=w.steward, organisation=w.org, data=data))


@case("consent.consent_import_create")
def _(w):
    from apps.consent.services import consent_import_create

    content = b"subject_id,purpose,status,timestamp\nA-00001,Service improvement,granted,2026-01-01T00:00:00Z\n"
    return Call(
        lambda: consent_import_create(
            actor=w.steward, organisation=w.org, file_name="consent.csv", chunks=iter([content])
        )
    )


@case("consent.consent_import_run")
def _(w):
    from apps.consent.services import consent_import_create, consent_import_run

    content = b"subject_id,purpose,status,timestamp\nA-00001,Service improvement,granted,2026-01-01T00:00:00Z\n"
    item = consent_import_create(actor=w.steward, organisation=w.org, file_name="consent.csv", chunks=iter([content]))
    return Call(lambda: consent_import_run(consent_import_id=item.id))


# -------------------------------------------------------------------------------------------------------- datasets


@case("datasets.dataset_create")
def _(w):
    from apps.datasets.services import dataset_create

    usecase = w.draft
    return Call(lambda: dataset_create(actor=w.steward, usecase=usecase, name="Applicants"))


@case("datasets.dataset_version_upload")
def _(w):
    from apps.datasets.services import dataset_create

    dataset = dataset_create(actor=w.steward, usecase=w.draft, name="Applicants")
    return Call(lambda: w.upload(dataset, rows=50))


@case("datasets.dataset_version_profile")
def _(w):
    from apps.datasets.services import dataset_create, dataset_version_profile

    version = w.upload(dataset_create(actor=w.steward, usecase=w.draft, name="Applicants"), rows=50)
    return Call(lambda: dataset_version_profile(version_id=version.id))


@case("datasets.dataset_version_confirm_roles")
def _(w):
    from apps.datasets.services import dataset_create, dataset_version_confirm_roles, dataset_version_profile

    version = w.upload(dataset_create(actor=w.steward, usecase=w.draft, name="Applicants"), rows=50)
    dataset_version_profile(version_id=version.id)
    roles = {c.name: c.suggested_role for c in version.columns.all()}
    return Call(lambda: dataset_version_confirm_roles(actor=w.steward, version=version, roles=roles))


@case("datasets.dataset_version_prepare_start")
def _(w):
    from apps.datasets.services import dataset_version_prepare_start

    version = w.raw_version
    return Call(lambda: dataset_version_prepare_start(actor=w.steward, version=version))


@case("datasets.dataset_version_prepare")
def _(w):
    from apps.datasets.services import dataset_version_prepare

    version = w.raw_version
    return Call(lambda: dataset_version_prepare(version_id=version.id, actor_id=w.steward.id))


@case("datasets.store_derived_version")
def _(w):
    from apps.datasets.models import DatasetVersion
    from apps.datasets.services import read_version_table, store_derived_version

    source = w.prepared_version
    table = read_version_table(source).slice(0, 100)
    return Call(
        lambda: store_derived_version(
            source=source,
            table=table,
            kind=DatasetVersion.Kind.ANONYMISED,
            transform={"kind": "sample", "rows": 100},
            suffix="sample",
            actor=w.steward,
            action="dataset.anonymise",
        )
    )


@case("datasets.datasheet_save")
def _(w):
    from apps.datasets.services import datasheet_save

    version = w.prepared_version
    return Call(lambda: datasheet_save(actor=w.steward, version=version))


@case("datasets.dataset_version_erase_expired")
def _(w):
    from apps.datasets.models import DatasetVersion
    from apps.datasets.services import dataset_version_erase_expired

    versions = DatasetVersion.objects.filter(pk__in=[w.prepared_version.pk, w.prepared_version.parent_id])
    versions.update(retention_until=timezone.localdate() - timedelta(days=1))
    return Call(lambda: dataset_version_erase_expired(), expect=len)  # two versions, two events


@case("datasets.master_key_rotate")
def _(w):
    from apps.datasets.services import master_key_rotate

    w.prepared_version  # noqa: B018 - keys to re-wrap
    return Call(master_key_rotate)


def _pseudonym_of(w, person: str) -> str:
    from apps.consent.services import pseudonym_secret
    from workers.engine.consent import pseudonymise

    return pseudonymise(person, pseudonym_secret(w.org))


@case("subjects.versions_without_subjects")
def _(w):
    from apps.datasets.subjects import versions_without_subjects

    w.prepared_version  # noqa: B018 - the raw and prepared versions hold the person
    key = _pseudonym_of(w, "A-00002")
    return Call(
        lambda: versions_without_subjects(actor=w.steward, organisation=w.org, pseudonyms=[key], reason={"r": "x"})
    )


@case("subjects.versions_destroy")
def _(w):
    from apps.datasets.subjects import versions_destroy, versions_without_subjects

    w.prepared_version  # noqa: B018 - the raw and prepared versions hold the person
    key = _pseudonym_of(w, "A-00002")
    replacements = versions_without_subjects(actor=w.steward, organisation=w.org, pseudonyms=[key], reason={})
    return Call(lambda: versions_destroy(replacements, actor=w.steward))


@case("subjects.version_rectified")
def _(w):
    from apps.datasets.subjects import version_rectified

    version = w.prepared_version
    key = _pseudonym_of(w, "A-00002")
    return Call(
        lambda: version_rectified(actor=w.steward, version=version, pseudonym=key, corrections={"age": 40}, reason={})
    )


# --------------------------------------------------------------------------------------------------- anonymisation


@case("anonymisation.anonymisation_request")
def _(w):
    w.prepared_version  # noqa: B018 - built before the call
    return Call(lambda: w.anonymisation)


@case("anonymisation.anonymisation_run")
def _(w):
    from apps.datasets.anonymisation import anonymisation_run

    item = w.anonymisation
    return Call(lambda: anonymisation_run(anonymisation_id=item.id))


@case("anonymisation.anonymisation_record")
def _(w):
    from apps.datasets.anonymisation import anonymisation_record

    result = {
        "level_tuple": [1, 0],
        "utility": {"loss": 0.2},
        "risk_before": {"highest": 1.0},
        "risk_after": {"highest": 0.2},
        "suppressed": 3,
    }
    item = w.anonymisation
    return Call(lambda: anonymisation_record(anonymisation=item, result=result))


@case("anonymisation.anonymisation_apply_start")
def _(w):
    from apps.datasets.anonymisation import anonymisation_apply_start, anonymisation_run

    item = w.anonymisation
    anonymisation_run(anonymisation_id=item.id)
    item.refresh_from_db()
    return Call(lambda: anonymisation_apply_start(actor=w.steward, anonymisation=item))


@case("anonymisation.anonymisation_apply")
def _(w):
    from apps.datasets.anonymisation import anonymisation_apply, anonymisation_apply_start, anonymisation_run

    item = w.anonymisation
    anonymisation_run(anonymisation_id=item.id)
    item.refresh_from_db()
    anonymisation_apply_start(actor=w.steward, anonymisation=item)
    return Call(lambda: anonymisation_apply(anonymisation_id=item.id, actor_id=w.steward.id))


# ---------------------------------------------------------------------------------------------------------- ethics


@case("ethics.notices_mark_read")
def _(w):
    from apps.ethics.services import notices_mark_read

    w.development_review  # noqa: B018 - its opening told the board
    return Call(lambda: notices_mark_read(actor=w.board_member))


@case("ethics.board_update")
def _(w):
    from apps.ethics.services import board_update

    w.board_member  # noqa: B018 - a board to change
    return Call(lambda: board_update(actor=w.admin_user, organisation=w.org, data={"quorum": 1, "vote_days": 10}))


@case("ethics.review_request_deployment")
def _(w):
    from apps.ethics.services import review_request_deployment

    model = w.model  # no model card yet: the prefilled card is revision 1, bound by this one event

    def check(review, events):
        card = model.card_revisions.get()
        assert events[0].after["bindings"]["model_card"]["sha256"] == card.sha256

    return Call(lambda: review_request_deployment(actor=w.owner, model_version=model), check=check)


@case("ethics.review_answer_checklist")
def _(w):
    from apps.ethics.services import review_answer_checklist

    review = w.development_review
    answers = {review.checklist[0]["key"]: {"answer": "yes"}}
    return Call(lambda: review_answer_checklist(actor=w.owner, review=review, answers=answers))


@case("ethics.vote_cast[settles]")
def _(w):
    from apps.ethics.models import Decision
    from apps.ethics.services import vote_cast

    review = w.development_review
    set_board_rules(w.org, quorum=1)  # the board waits for every member: the last vote decides
    vote_cast(actor=w.board2, review=review, choice="approve", reason="Sound purpose.")
    vote_cast(actor=w.board3, review=review, choice="approve", reason="Sound purpose.")

    def check(_vote, events):
        # The vote that decides the review records the Decision and moves the use case: one fact, one event.
        decision = Decision.objects.get(review=review)
        assert events[0].after["decision"]["id"] == str(decision.id)

    return Call(lambda: vote_cast(actor=w.board_member, review=review, choice="approve", reason="Sound."), check=check)


@case("ethics.vote_cast")
def _(w):
    from apps.ethics.services import vote_cast

    review = w.development_review
    return Call(lambda: vote_cast(actor=w.board_member, review=review, choice="approve", reason="Sound."))


@case("ethics.review_recuse")
def _(w):
    from apps.ethics.services import review_recuse

    review = w.development_review
    return Call(lambda: review_recuse(actor=w.board3, review=review, reason="My sister runs the programme."))


@case("ethics.review_close")
def _(w):
    from apps.ethics.services import review_close, vote_cast

    review = w.development_review
    set_board_rules(w.org, quorum=1, chair=w.board3)
    vote_cast(actor=w.board_member, review=review, choice="approve", reason="Sound.")
    return Call(lambda: review_close(actor=w.board3, review=review))


@case("ethics.reviews_supersede_stale")
def _(w):
    from apps.ethics.services import reviews_supersede_stale
    from apps.usecases.models import UseCase

    review = w.development_review
    UseCase.objects.filter(pk=review.usecase_id).update(privacy_policy={"epsilon_cap": 1.0})  # bound hash changes
    return Call(
        lambda: reviews_supersede_stale(usecase=UseCase.objects.get(pk=review.usecase_id), actor=w.owner), expect=len
    )


@case("ethics.waiver_request")
def _(w):
    from apps.ethics.services import waiver_request

    review = w.failing_review
    return Call(
        lambda: waiver_request(
            actor=w.owner,
            review=review,
            justification="Within noise; monitored monthly.",
            expires_on=timezone.localdate() + timedelta(days=30),
        )
    )


@case("ethics.waiver_vote")
def _(w):
    from apps.ethics.services import waiver_request, waiver_vote

    review = w.failing_review
    set_board_rules(w.org, quorum=1, decides="settled")
    waiver = waiver_request(
        actor=w.owner,
        review=review,
        justification="Within noise; monitored monthly.",
        expires_on=timezone.localdate() + timedelta(days=30),
    )
    waiver_vote(actor=w.board_member, waiver=waiver, choice="approve", reason="Acceptable.")

    def check(_vote, events):
        waiver.refresh_from_db()
        assert waiver.status == "granted" and events[0].after["status"] == "granted"  # settled inside the vote

    # Two grants of three eligible settle it (a refusal from the last could not bring the share under 0.66).
    return Call(lambda: waiver_vote(actor=w.board2, waiver=waiver, choice="approve", reason="Agree."), check=check)


@case("ethics.condition_mark_met")
def _(w):
    from apps.ethics.models import Condition
    from apps.ethics.services import condition_mark_met, vote_cast

    review = w.development_review
    set_board_rules(w.org, quorum=1, decides="settled")
    Membership.objects.filter(user__in=[w.board2, w.board3], role=Role.BOARD).delete()
    conditions = [
        {
            "text": "Train caseworkers",
            "owner": str(w.owner.id),
            "due": (timezone.localdate() + timedelta(days=30)).isoformat(),
        }
    ]
    vote_cast(
        actor=w.board_member,
        review=review,
        choice="approve_with_conditions",
        reason="With training.",
        conditions=conditions,
    )
    condition = Condition.objects.get()
    return Call(lambda: condition_mark_met(actor=w.owner, condition=condition, note="Trained on 1 March."))


@case("ethics.checklist_take_stance")
def _(w):
    from apps.ethics.services import checklist_take_stance

    review = w.development_review
    return Call(
        lambda: checklist_take_stance(
            actor=w.board_member, review=review, item_key=review.checklist[0]["key"], stance="confirm"
        )
    )


@case("ethics.comment_add")
def _(w):
    from apps.ethics.services import comment_add

    review = w.development_review
    return Call(lambda: comment_add(actor=w.board_member, review=review, section="usecase", body="Why 24 months?"))


@case("ethics.reviews_decide_due")
def _(w):
    from apps.ethics.models import ReviewRequest
    from apps.ethics.services import reviews_decide_due, vote_cast

    review = w.development_review
    set_board_rules(w.org, quorum=1)  # the board waits for everyone, or the due date
    vote_cast(actor=w.board_member, review=review, choice="approve", reason="Sound.")
    ReviewRequest.objects.filter(pk=review.pk).update(due_at=timezone.now() - timedelta(hours=1))
    return Call(lambda: reviews_decide_due(), expect=len)


@case("ethics.reviews_remind_due")
def _(w):
    from apps.ethics.models import ReviewRequest
    from apps.ethics.services import reviews_remind_due

    review = w.development_review
    ReviewRequest.objects.filter(pk=review.pk).update(due_at=timezone.now() + timedelta(hours=12))
    return Call(lambda: reviews_remind_due(), expect=lambda sent: 1 if sent else 0)


# ------------------------------------------------------------------------------------------------------ evaluation


@case("evaluation.evaluation_request")
def _(w):
    from apps.evaluation.services import evaluation_request

    model = w.model
    return Call(lambda: evaluation_request(actor=w.owner, model_version=model))


@case("evaluation.evaluation_record")
def _(w):
    from apps.evaluation.models import Evaluation

    run = w.pending_run
    model = w.succeed(run)
    evaluation = Evaluation.objects.get(model_version=model)
    return Call(lambda: w.record(evaluation, PASSING))


# ------------------------------------------------------------------------------------------------------ mitigation


def mitigable(w):
    """The world's private model with the rows a split records (the figures given, as the worker reports them)."""
    from apps.training.models import ModelVersion, TrainingRun

    model = w.model
    split = {"train": [0, 1, 2], "validation": [3, 4, 5], "test": [6, 7], "sha256": "0" * 64}
    TrainingRun.objects.filter(pk=model.training_run_id).update(split=split)
    return ModelVersion.objects.get(pk=model.pk)


def thresholds_run(w, model):
    from apps.evaluation.mitigation import mitigation_request

    return mitigation_request(actor=w.steward, model_version=model, method="thresholds", attribute="sex")


@case("mitigation.mitigation_request")
def _(w):
    model = mitigable(w)
    return Call(lambda: thresholds_run(w, model))


@case("mitigation.mitigation_succeed")
def _(w):
    from apps.evaluation.mitigation import mitigation_succeed

    run = thresholds_run(w, mitigable(w))

    def check(candidate, events):
        # The held-out evaluation it queues (and its job) is named by this event, beside the parent.
        assert events[0].after["evaluation"] == str(candidate.evaluations.get().id)
        assert events[0].after["parent"] == str(candidate.parent_id)

    return Call(
        lambda: mitigation_succeed(
            run=run,
            mitigation={"method": "thresholds", "constraint": "demographic_parity", "attribute": "sex"},
            privacy=dict(PRIVACY),
            metrics={},
            manifest={"model_sha256": "cd" * 32, "privacy": dict(PRIVACY)},
            storage_path="models/candidate",
            spent=None,
            composed=None,
        ),
        check=check,
    )


@case("mitigation.mitigation_stop")
def _(w):
    from apps.evaluation.mitigation import mitigation_stop
    from apps.jobs.services import job_claim, job_fail

    run = thresholds_run(w, mitigable(w))
    job = job_claim(job_id=run.job_id, worker="test-worker")
    job_fail(job=job, code="invalid", message="A group has one label only.")
    job.refresh_from_db()
    return Call(lambda: mitigation_stop(run=run, job=job, spent=None, composed=None))


@case("mitigation.row_explanation_request")
def _(w):
    from apps.evaluation.mitigation import row_explanation_request

    model = mitigable(w)

    def check(_job, events):
        assert set(events[0].after) == {"job", "model_sha256", "position", "held_out_rows", "at_random"}

    return Call(lambda: row_explanation_request(actor=w.owner, model_version=model, position=2), check=check)


# ------------------------------------------------------------------------------------------------------------ jobs


@case("jobs.job_succeed")
def _(w):
    from apps.jobs.services import job_succeed

    job = w.diagnostics_job(running=True)
    return Call(lambda: job_succeed(job=job, result={"ok": True}))


@case("jobs.job_fail")
def _(w):
    from apps.jobs.services import job_fail

    job = w.diagnostics_job(running=True)

    def check(_result, events):
        assert "forty" not in json.dumps(events[0].after)  # the message may quote data: the event keeps a digest

    return Call(
        lambda: job_fail(job=job, code="invalid", message="Column 'age' holds 'forty' (not a number)."), check=check
    )


@case("jobs.job_mark_cancelled")
def _(w):
    from apps.jobs.services import job_mark_cancelled

    job = w.diagnostics_job(running=True)
    return Call(lambda: job_mark_cancelled(job=job))


@case("jobs.job_diagnostics_start")
def _(w):
    w.admin_user  # noqa: B018 - built before the call
    return Call(lambda: w.diagnostics_job())


@case("jobs.job_cancel")
def _(w):
    from apps.jobs.services import job_cancel

    job = w.diagnostics_job()
    return Call(lambda: job_cancel(actor=w.admin_user, job=job))


@case("jobs.job_reap_expired")
def _(w):
    from apps.jobs.services import job_reap_expired

    for _ in range(2):  # two lost jobs with no attempt left: two events
        job = w.diagnostics_job(running=True, max_attempts=1)
        Job.objects.filter(pk=job.pk).update(lease_expires_at=timezone.now() - timedelta(minutes=1))
    return Call(job_reap_expired, expect=lambda result: result["failed"])


# ------------------------------------------------------------------------------------------------------ modelcards


# ----------------------------------------------------------------------------------------------------- thirdparty

THIRD_PARTY = {"supplier": "Northwind", "name": "Quill", "version": "1", "intended_use": "Drafting letters."}


@case("thirdparty.thirdparty_register")
def _(w):
    from apps.thirdparty.services import thirdparty_register

    usecase = w.draft
    return Call(lambda: thirdparty_register(actor=w.owner, usecase=usecase, data=dict(THIRD_PARTY)))


def _third_party(w):
    from apps.thirdparty.services import thirdparty_register

    return thirdparty_register(actor=w.owner, usecase=w.draft, data=dict(THIRD_PARTY))


@case("thirdparty.thirdparty_update")
def _(w):
    from apps.thirdparty.services import thirdparty_update

    model = _third_party(w)
    return Call(lambda: thirdparty_update(actor=w.owner, model=model, data={"version": "2"}))


@case("thirdparty.thirdparty_record_documentation")
def _(w):
    from apps.thirdparty.services import thirdparty_record_documentation

    model = _third_party(w)
    return Call(lambda: thirdparty_record_documentation(actor=w.owner, model=model, content=b"model card"))


@case("thirdparty.thirdparty_set_status")
def _(w):
    from apps.thirdparty.services import thirdparty_set_status

    model = _third_party(w)
    return Call(lambda: thirdparty_set_status(actor=w.owner, model=model, status="suspended", reason="Outage."))


@case("modelcards.modelcard_save")
def _(w):
    from apps.modelcards.services import modelcard_save

    model = w.model
    return Call(lambda: modelcard_save(actor=w.owner, model_version=model))


# --------------------------------------------------------------------------------------------------------- reports


@case("reports.signing_identity_import")
def _(w):
    from apps.reports.pdf import new_self_signed
    from apps.reports.services import signing_identity_import

    cert_pem, key_pem, _ = new_self_signed("Ministry reports", "Ministry of Examples")
    return Call(
        lambda: signing_identity_import(actor=w.admin_user, organisation=w.org, cert_pem=cert_pem, key_pem=key_pem)
    )


@case("reports.report_request")
def _(w):
    from apps.reports.services import report_request

    return Call(lambda: report_request(actor=w.admin_user, kind="art30", subject=w.org))


# ------------------------------------------------------------------------------------------------------ compliance

COMPLIANCE_CSV = b"id,title,evidence\nPOL-1,Human review of refusals,board_decision manual\n"


@case("compliance.framework_upload")
def _(w):
    from apps.compliance.services import framework_upload

    return Call(
        lambda: framework_upload(
            actor=w.admin_user, organisation=w.org, data=COMPLIANCE_CSV, filename="p.csv", key="policy", name="P"
        )
    )


def _compliance_link(w):
    from apps.compliance.services import evidence_link_add

    return evidence_link_add(
        actor=w.owner,
        usecase=w.draft,
        framework_key="gdpr",
        requirement_code="GDPR-16",
        label="Procedure",
        url="https://intranet.example.org/rectification",
    )


@case("compliance.evidence_link_add")
def _(w):
    w.draft  # noqa: B018 - the use case exists before the call
    return Call(lambda: _compliance_link(w))


@case("compliance.evidence_link_remove")
def _(w):
    from apps.compliance.services import evidence_link_remove

    link = _compliance_link(w)
    return Call(lambda: evidence_link_remove(actor=w.owner, link=link))


@case("compliance.requirement_confirm")
def _(w):
    from apps.compliance.services import requirement_confirm

    usecase = w.draft
    return Call(
        lambda: requirement_confirm(actor=w.owner, usecase=usecase, framework_key="gdpr", requirement_code="GDPR-35")
    )


@case("compliance.compliance_statement_request")
def _(w):
    from apps.compliance.services import compliance_statement_request

    usecase = w.draft
    return Call(lambda: compliance_statement_request(actor=w.owner, usecase=usecase, framework_key="gdpr"))


@case("reports.report_render")
def _(w):
    from apps.reports.services import report_render, report_request

    report = report_request(actor=w.admin_user, kind="art30", subject=w.org)

    def check(_result, events):
        # The organisation's first report also makes its self-signed identity: named by this event, not a second one.
        assert events[0].after["signer_self_signed"] is True and events[0].after["signer"]

    return Call(lambda: report_render(report_id=report.id), check=check)


# -------------------------------------------------------------------------------------------------------- training


@case("training.training_run_request")
def _(w):
    w.prepared_version  # noqa: B018 - built before the call
    return Call(lambda: w.pending_run)


@case("training.training_run_succeed")
def _(w):
    run = w.pending_run

    def check(model, events):
        # The held-out evaluation it queues (and its job) is named by this event.
        assert events[0].after["evaluation"] == str(model.evaluations.get().id)

    return Call(lambda: w.succeed(run), check=check)


@case("training.training_run_stop")
def _(w):
    from apps.jobs.services import job_claim, job_fail
    from apps.training.services import training_run_stop

    run = w.pending_run
    job = job_claim(job_id=run.job_id, worker="test-worker")
    job_fail(job=job, code="invalid", message="The data changed.")
    job.refresh_from_db()
    return Call(lambda: training_run_stop(run=run, job=job, spent=None, composed=None))


# ------------------------------------------------------------------------------------------------------- portfolio


def _risk_data(w, **overrides):
    data = {
        "title": "Supplier outage",
        "likelihood": 2,
        "severity": 4,
        "treatment": "accept",
        "review_on": timezone.localdate() + timedelta(days=30),
    }
    return {**data, **overrides}


def _no_risk_text(result, events):
    logged = json.dumps([event.before for event in events] + [event.after for event in events])
    assert "Supplier outage" not in logged and "Contract renegotiated" not in logged


@case("portfolio.risk_create")
def _(w):
    from apps.portfolio.services import risk_create

    return Call(lambda: risk_create(actor=w.owner, organisation=w.org, data=_risk_data(w)), check=_no_risk_text)


@case("portfolio.risk_update")
def _(w):
    from apps.portfolio.services import risk_create, risk_update

    risk = risk_create(actor=w.owner, organisation=w.org, data=_risk_data(w))
    return Call(lambda: risk_update(actor=w.owner, risk=risk, data={"severity": 5}), check=_no_risk_text)


@case("portfolio.risk_close")
def _(w):
    from apps.portfolio.services import risk_close, risk_create

    risk = risk_create(actor=w.owner, organisation=w.org, data=_risk_data(w))
    return Call(lambda: risk_close(actor=w.owner, risk=risk, note="Contract renegotiated."), check=_no_risk_text)


# -------------------------------------------------------------------------------------------------------- usecases


@case("usecases.usecase_create")
def _(w):
    from apps.usecases.services import usecase_create

    return Call(lambda: usecase_create(actor=w.owner, organisation=w.org, data=usecase_data()))


@case("usecases.usecase_update")
def _(w):
    from apps.usecases.services import usecase_update

    usecase = w.draft
    return Call(lambda: usecase_update(actor=w.owner, usecase=usecase, data={"title": "Claim triage v2"}))


@case("usecases.usecase_transition[submit]")
def _(w):
    from apps.usecases.services import usecase_transition

    usecase = w.draft
    w.board_member  # noqa: B018 - a board to review it

    def check(result, events):
        # Submitting opens the development review: one fact, so the submission's event names the review.
        review = open_review(result)
        assert events[0].after["review"] == str(review.id)
        assert events[0].after["bindings_sha256"] == review.bindings_sha256

    return Call(lambda: usecase_transition(actor=w.owner, usecase=usecase, action="submit"), check=check)


@case("usecases.usecase_transition")
def _(w):
    from apps.usecases.services import usecase_transition

    usecase = w.approved_usecase
    return Call(lambda: usecase_transition(actor=w.owner, usecase=usecase, action="retire", reason="Replaced."))


@case("usecases.usecase_tighten_gate")
def _(w):
    from apps.usecases.services import usecase_tighten_gate

    usecase = w.approved_usecase
    return Call(
        lambda: usecase_tighten_gate(
            actor=w.owner, usecase=usecase, metric="demographic_parity_difference", threshold=0.5
        )
    )


# ----------------------------------------------------------------------------------------------------- deployments


def approved(w):
    """The world's model (figures given, no torch), approved for deployment, with its preprocessing spec and a
    monitoring reference from Adult rows (tests/deployments/kit.py)."""
    from tests.deployments.kit import adult, approve, install_reported_model

    model = w.model
    approve(model, owner=w.owner, member=w.board_member)
    install_reported_model(model, adult(0, 300))
    return model


def deployed(w):
    from tests.deployments.kit import register

    return register(approved(w), w.owner)


def posted_batch(w, deployment, *, labelled=False, start=2000):
    from apps.datasets.storage import EncryptedIncomingFile
    from apps.deployments.services import production_batch_post
    from tests.deployments.kit import csv_bytes, production

    incoming = EncryptedIncomingFile()
    incoming.write(csv_bytes(production(start, 40, labelled=labelled)))
    return production_batch_post(actor=w.owner, deployment=deployment, incoming=incoming, sha256=incoming.close())


@case("deployments.deployment_register")
def _(w):
    from apps.deployments.models import MonitoringReference
    from tests.deployments.kit import approve, register

    model = w.model
    approve(model, owner=w.owner, member=w.board_member)
    assert not MonitoringReference.objects.filter(model_version=model).exists()  # so the event names its job

    def check(deployment, events):
        assert events[0].after["plan_sha256"] == deployment.plan_sha256 and events[0].after["reference_job"]

    return Call(lambda: register(model, w.owner), check=check)


@case("deployments.deployment_register[promotion]")
def _(w):
    from tests.deployments.kit import register

    first = deployed(w)
    second = second_model(w)

    def check(deployment, events):
        assert events[0].action == "deployment.promote" and events[0].after["replaced"] == str(first.id)

    return Call(lambda: register(second, w.owner), check=check)


def second_model(w):
    """Another private model of the use case, evaluated as passing and approved (a promotion's candidate)."""
    from apps.training.services import training_run_request, training_run_succeed
    from tests.deployments.kit import approve

    run = training_run_request(actor=w.owner, version=w.prepared_version, spec=run_spec())
    model = training_run_succeed(
        run=run,
        privacy=dict(PRIVACY),
        metrics={"validation_accuracy": 0.8},
        split={"train": [], "validation": [], "test": [], "sha256": "0" * 64},
        curve=[],
        manifest={"model_sha256": "cd" * 32, "privacy": dict(PRIVACY)},
        storage_path="models/none",
        composed=PRIVACY["epsilon"],
    )
    w.record(model.evaluations.get(), PASSING)
    approve(model, owner=w.owner, member=w.board_member)
    return model


@case("deployments.deployment_rollback")
def _(w):
    from apps.deployments.services import deployment_rollback
    from tests.deployments.kit import register

    deployed(w)
    current = register(second_model(w), w.owner)
    return Call(
        lambda: deployment_rollback(actor=w.owner, deployment=current, reason="Scores drifted after the promotion.")
    )


@case("deployments.deployment_withdraw")
def _(w):
    from apps.deployments.services import deployment_withdraw

    deployment = deployed(w)
    return Call(lambda: deployment_withdraw(actor=w.admin_user, deployment=deployment, reason="The system is retired."))


@case("deployments.scoring_token_create")
def _(w):
    from apps.deployments.services import scoring_token_create

    deployment = deployed(w)

    def check(result, events):
        _token, secret = result
        assert secret not in json.dumps(events[0].after)

    return Call(lambda: scoring_token_create(actor=w.owner, deployment=deployment, name="case system"), check=check)


@case("deployments.scoring_token_revoke")
def _(w):
    from apps.deployments.services import scoring_token_create, scoring_token_revoke

    token, _secret = scoring_token_create(actor=w.owner, deployment=deployed(w), name="case system")
    return Call(lambda: scoring_token_revoke(actor=w.owner, token=token))


@case("deployments.usecase_set_monitoring_plan")
def _(w):
    from apps.deployments.services import usecase_set_monitoring_plan
    from workers.engine.monitoring.monitors import default_plan

    usecase = w.approved_usecase
    plan = {**default_plan(), "window": "day"}
    return Call(lambda: usecase_set_monitoring_plan(actor=w.owner, usecase=usecase, plan=plan))


@case("deployments.monitoring_reference_record")
def _(w):
    from tests.deployments.kit import adult, install_reported_model

    model = w.model
    return Call(lambda: install_reported_model(model, adult(0, 300)))


@case("deployments.production_batch_post")
def _(w):
    deployment = deployed(w)
    return Call(lambda: posted_batch(w, deployment))


@case("deployments.production_batch_upload")
def _(w):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from apps.deployments.services import production_batch_upload
    from tests.deployments.kit import csv_bytes, production

    deployment = deployed(w)
    upload = SimpleUploadedFile("batch.csv", csv_bytes(production(2000, 40)), "text/csv")
    return Call(lambda: production_batch_upload(actor=w.owner, deployment=deployment, uploaded_file=upload))


@case("deployments.production_batch_process")
def _(w):
    from apps.deployments.services import production_batch_process

    batch = posted_batch(w, deployed(w))
    return Call(lambda: production_batch_process(batch=batch))


@case("deployments.labels_record")
def _(w):
    from apps.deployments.services import labels_record, production_batch_process

    deployment = deployed(w)
    production_batch_process(batch=posted_batch(w, deployment))
    labels = [{"prediction_id": "P-002000", "label": ">50K"}, {"prediction_id": "unknown", "label": "<=50K"}]

    def check(_batch, events):
        assert events[0].after["matched"] == 1 and events[0].after["unknown"] == 1
        assert "P-002000" not in json.dumps(events[0].after)  # prediction ids never enter the log

    return Call(lambda: labels_record(actor=w.owner, deployment=deployment, labels=labels), check=check)


def scoring_request(w, deployment):
    from apps.deployments.services import deployment_score_request, scoring_token_create
    from tests.deployments.kit import FEATURES, adult

    token, _secret = scoring_token_create(actor=w.owner, deployment=deployment, name="case system")
    text = adult(2000, 5)[FEATURES].to_csv(index=False)
    return lambda: deployment_score_request(token=token, deployment=deployment, csv_text=text)


@case("deployments.deployment_score_request")
def _(w):
    return Call(scoring_request(w, deployed(w)))


@case("deployments.scored_batch_record")
def _(w):
    import numpy as np

    from apps.deployments.services import scored_batch_record
    from tests.deployments.kit import FEATURES, adult

    batch = scoring_request(w, deployed(w))()
    frame = adult(2000, 5)[FEATURES]
    frame["prediction"] = ["<=50K", ">50K", "<=50K", "<=50K", ">50K"]
    frame["prediction_id"] = [f"S-{i}" for i in range(5)]
    scores = np.array([0.1, 0.8, 0.3, 0.2, 0.9])
    return Call(lambda: scored_batch_record(batch=batch, frame=frame, scores=scores))


def ended_window(deployment, days_ago=3):
    from apps.deployments.models import MonitoringWindow

    starts = timezone.now().replace(microsecond=0) - timedelta(days=days_ago)
    return MonitoringWindow.objects.create(
        organisation=deployment.organisation,
        deployment=deployment,
        starts_at=starts,
        ends_at=starts + timedelta(days=1),
    )


@case("deployments.monitoring_window_record")
def _(w):
    from apps.deployments.services import monitoring_window_record

    window = ended_window(deployed(w))
    results = [
        {
            "monitor": "data_drift:psi:age",
            "family": "data_drift",
            "subject": "age",
            "status": "insufficient",
            "severity": "info",
            "value": None,
            "threshold": 0.25,
            "interval": None,
            "rows": 0,
            "message": "Too few rows.",
        }
    ]
    return Call(lambda: monitoring_window_record(window=window, results=results))


@case("deployments.monitoring_windows_close_due")
def _(w):
    from apps.deployments.services import monitoring_windows_close_due

    deployment = deployed(w)
    ended_window(deployment, days_ago=3), ended_window(deployment, days_ago=5)
    return Call(monitoring_windows_close_due, expect=lambda queued: len(queued))


@case("deployments.production_data_sweep")
def _(w):
    from apps.deployments.models import PendingOutcome, ProductionBatch
    from apps.deployments.services import production_batch_process, production_data_sweep

    deployment = deployed(w)
    production_batch_process(batch=posted_batch(w, deployment))
    PendingOutcome.objects.update(expires_on=timezone.localdate() - timedelta(days=1))

    def check(counts, events):
        assert counts["pending_outcomes_expired"] == 40 and not PendingOutcome.objects.exists()
        assert events[0].after["pending_outcomes_expired"] == 40
        assert ProductionBatch.objects.count() == 1

    return Call(production_data_sweep, expect=1, check=check)


@case("ethics.approval_revoke")
def _(w):
    from apps.ethics.services import approval_revoke
    from tests.deployments.kit import approve

    model = w.model
    approve(model, owner=w.owner, member=w.board_member)
    review = model.reviews.get(status="decided")
    return Call(
        lambda: approval_revoke(actor=w.admin_user, review=review, reason="The vendor's licence was withdrawn.")
    )


# ------------------------------------------------------------------------------- alerts, feedback, retraining (B)


def alerting(w):
    """The world's deployment with one evaluated window whose drift monitor failed, and its alert."""
    from apps.deployments.alerts import alerts_sync
    from apps.deployments.models import Alert
    from tests.deployments.loop import result, window

    deployment = deployed(w)
    alerts_sync(deployment=deployment, window=window(deployment, 1), results=[result("data_drift:psi:age", "fail")])
    return deployment, Alert.objects.get(deployment=deployment)


@case("alerts.alerts_sync")
def _(w):
    from apps.deployments.alerts import alerts_sync
    from tests.deployments.loop import result, window

    deployment = deployed(w)
    target = window(deployment, 1)
    results = [result("data_drift:psi:age", "fail"), result("fairness:fpr:sex=Female", "warn", 0.07)]
    return Call(lambda: alerts_sync(deployment=deployment, window=target, results=results))


@case("alerts.alerts_sync[webhook]")
def _(w):
    from apps.deployments.alerts import alert_webhook_set, alerts_sync
    from tests.deployments.loop import result, window

    deployment = deployed(w)
    target = window(deployment, 1)
    w.settings.ALERT_WEBHOOK_ALLOW_LOOPBACK_HTTP = True
    alert_webhook_set(actor=w.admin_user, organisation=w.org, url="http://127.0.0.1:9/hook")
    # The delivery job it queues is named by its one event.
    return Call(lambda: alerts_sync(deployment=deployment, window=target, results=[result("data_drift:psi:a", "fail")]))


@case("alerts.alerts_check_governance")
def _(w):
    from apps.deployments.alerts import alerts_check_governance
    from apps.ethics.services import approval_revoke

    deployment = deployed(w)
    approval_revoke(actor=w.admin_user, review=deployment.review, reason="New evidence of unfair refusals.")
    return Call(alerts_check_governance, expect=len)


@case("alerts.alert_acknowledge")
def _(w):
    from apps.deployments.alerts import alert_acknowledge

    _, alert = alerting(w)
    return Call(lambda: alert_acknowledge(actor=w.steward, alert=alert))


@case("alerts.alert_assign")
def _(w):
    from apps.deployments.alerts import alert_assign

    _, alert = alerting(w)
    return Call(lambda: alert_assign(actor=w.owner, alert=alert, assignee=w.steward))


@case("alerts.alert_comment")
def _(w):
    from apps.deployments.alerts import alert_comment

    _, alert = alerting(w)
    return Call(lambda: alert_comment(actor=w.board_member, alert=alert, body="Is the upstream form new?"))


@case("alerts.alert_resolve")
def _(w):
    from apps.deployments.alerts import alert_resolve

    _, alert = alerting(w)
    return Call(lambda: alert_resolve(actor=w.owner, alert=alert, resolution="Upstream extract fixed."))


@case("alerts.alert_webhook_set")
def _(w):
    from apps.deployments.alerts import alert_webhook_set

    w.settings.ALERT_WEBHOOK_ALLOW_LOOPBACK_HTTP = True
    return Call(lambda: alert_webhook_set(actor=w.admin_user, organisation=w.org, url="http://127.0.0.1:9/hook"))


@case("alerts.alert_webhook_remove")
def _(w):
    from apps.deployments.alerts import alert_webhook_remove, alert_webhook_set

    w.settings.ALERT_WEBHOOK_ALLOW_LOOPBACK_HTTP = True
    alert_webhook_set(actor=w.admin_user, organisation=w.org, url="http://127.0.0.1:9/hook")
    return Call(lambda: alert_webhook_remove(actor=w.admin_user, organisation=w.org))


@case("feedback.feedback_submit")
def _(w):
    from apps.deployments.feedback import feedback_submit

    deployment = deployed(w)
    return Call(lambda: feedback_submit(actor=w.board_member, deployment=deployment, kind="feedback", body="Unclear."))


@case("feedback.feedback_submit_public")
def _(w):
    from apps.deployments.feedback import feedback_submit_public

    deployment = deployed(w)
    typed = "My claim was refused although my income fell."

    def check(_item, events):
        assert "income" not in json.dumps(events[0].after)  # digests and counts, never the words

    return Call(
        lambda: feedback_submit_public(deployment=deployment, kind="contestation", body=typed, contact="me@x.org"),
        check=check,
    )


@case("feedback.feedback_triage")
def _(w):
    from apps.deployments.feedback import feedback_submit_public, feedback_triage

    deployment, alert = alerting(w)
    item = feedback_submit_public(deployment=deployment, kind="contestation", body="Refused wrongly.")
    return Call(
        lambda: feedback_triage(actor=w.steward, feedback=item, category="unfair", severity="warning", alert=alert)
    )


@case("feedback.feedback_close")
def _(w):
    from apps.deployments.feedback import feedback_close, feedback_submit_public

    item = feedback_submit_public(deployment=deployed(w), kind="feedback", body="Thanks.")
    return Call(lambda: feedback_close(actor=w.steward, feedback=item, response="Noted."))


@case("feedback.feedback_erase_expired")
def _(w):
    from apps.deployments.feedback import feedback_close, feedback_erase_expired, feedback_submit_public
    from apps.deployments.models import Feedback

    deployment = deployed(w)
    for body in ("One.", "Two."):  # two items of one organisation: one event
        feedback_close(
            actor=w.steward, feedback=feedback_submit_public(deployment=deployment, kind="feedback", body=body)
        )
    Feedback.objects.update(updated_at=timezone.now() - timedelta(days=3650))
    return Call(feedback_erase_expired, expect=lambda erased: 1 if erased == 2 else 0)


@case("retraining.retraining_request_open")
def _(w):
    from apps.deployments.retraining import retraining_request_open

    deployment, alert = alerting(w)
    return Call(
        lambda: retraining_request_open(actor=w.owner, deployment=deployment, reason="Drift on age.", alert=alert)
    )


@case("retraining.retraining_request_launch")
def _(w):
    from apps.deployments.retraining import retraining_request_launch, retraining_request_open

    deployment, alert = alerting(w)
    request = retraining_request_open(actor=w.owner, deployment=deployment, reason="Drift on age.", alert=alert)

    def check(launched, events):
        assert [e.action for e in events] == ["training.request", "retraining.launch"]
        assert events[1].after["training_run"] == str(launched.training_run_id)

    return Call(lambda: retraining_request_launch(actor=w.owner, request=request), expect=2, check=check)


@case("retraining.retraining_request_close")
def _(w):
    from apps.deployments.retraining import retraining_request_close, retraining_request_open

    deployment, alert = alerting(w)
    request = retraining_request_open(actor=w.owner, deployment=deployment, reason="Drift on age.", alert=alert)
    return Call(lambda: retraining_request_close(actor=w.owner, request=request, reason="A data-entry fault."))


@case("retraining.retraining_requests_follow")
def _(w):
    from apps.deployments.retraining import (
        retraining_request_launch,
        retraining_request_open,
        retraining_requests_follow,
    )
    from apps.ethics.services import review_request_deployment
    from tests.deployments.loop import report_trained

    deployment, alert = alerting(w)
    request = retraining_request_open(actor=w.owner, deployment=deployment, reason="Drift on age.", alert=alert)
    request = retraining_request_launch(actor=w.owner, request=request)
    candidate = report_trained(request.training_run, seed=2)  # the worker's report, then its evaluation's
    review_request_deployment(actor=w.owner, model_version=candidate)
    return Call(retraining_requests_follow, expect=len)


# ---------------------------------------------------------------------------------------------------------- rights


def rights_request(w, kind="erasure", traced=True):
    """A privacy officer's request for applicant A-00007 (in the world's 300 rows), traced through the real job."""
    from apps.rights.services import subject_request_register
    from tests.conftest import run_inline

    officer = make_user("rights_officer", organisation=w.org, roles=(Role.PRIVACY,))
    request = subject_request_register(
        actor=officer, organisation=w.org, kind=kind, identifier="A-00007", identity_verification="ID card"
    )
    if traced:
        run_inline(request.trace_job)
        request.refresh_from_db()
    return officer, request


def _names_job(request, events):
    assert events[0].after["job"] and "A-00007" not in json.dumps([e.after for e in events])


@case("rights.subject_request_register")
def _(w):
    from apps.rights.services import subject_request_register

    officer = make_user("rights_officer", organisation=w.org, roles=(Role.PRIVACY,))
    return Call(
        lambda: subject_request_register(
            actor=officer, organisation=w.org, kind="access", identifier="A-00007", identity_verification="Letter"
        ),
        check=_names_job,
    )


@case("rights.subject_request_assign")
def _(w):
    from apps.rights.services import subject_request_assign

    officer, request = rights_request(w, traced=False)
    return Call(lambda: subject_request_assign(actor=officer, request=request, assignee=officer))


@case("rights.subject_request_extend")
def _(w):
    from apps.rights.services import subject_request_extend

    officer, request = rights_request(w, traced=False)
    return Call(lambda: subject_request_extend(actor=officer, request=request, reason="Complex request"))


@case("rights.subject_request_decide")
def _(w):
    from apps.rights.services import subject_request_decide

    model = w.model  # trained on the prepared version that holds A-00007
    officer, request = rights_request(w)
    return Call(lambda: subject_request_decide(actor=officer, request=request, model_version=model, decision="keep_dp"))


@case("rights.subject_request_execute")
def _(w):
    from apps.rights.services import subject_request_execute

    officer, request = rights_request(w, kind="objection")
    return Call(lambda: subject_request_execute(actor=officer, request=request))


@case("rights.subject_request_trace_again")
def _(w):
    from apps.rights.services import subject_request_trace_again

    officer, request = rights_request(w, kind="access")
    return Call(lambda: subject_request_trace_again(actor=officer, request=request))


@case("rights.subject_requests_resume_waiting")
def _(w):
    from apps.rights.models import SubjectRequest
    from apps.rights.services import subject_requests_resume_waiting

    _officer, request = rights_request(w, kind="objection")
    SubjectRequest.objects.filter(pk=request.pk).update(status=SubjectRequest.Status.WAITING)
    return Call(subject_requests_resume_waiting, expect=1)


def _no_identifier(request, events):
    assert "A-00007" not in json.dumps([e.after for e in events])


@case("exports.access_export_create")
def _(w):
    from apps.rights.exports import access_export_create

    w.prepared_version  # noqa: B018 - the raw and prepared versions hold A-00007's rows
    officer, request = rights_request(w, kind="access")
    return Call(lambda: access_export_create(actor=officer, request=request), check=_no_identifier)


@case("exports.export_packages_erase_expired")
def _(w):
    from apps.rights.exports import access_export_create, export_packages_erase_expired

    officer, request = rights_request(w, kind="access")
    package = access_export_create(actor=officer, request=request)
    return Call(lambda: export_packages_erase_expired(now=package.expires_at + timedelta(seconds=1)), expect=1)


@case("flags.reports_supersede_for")
def _(w):
    from apps.rights.flags import reports_supersede_for

    version = w.prepared_version
    officer, request = rights_request(w, kind="erasure")
    return Call(lambda: reports_supersede_for(actor=officer, request=request, versions=[version]))


# ------------------------------------------------------------------------------------------------------- the rule


def _mentions(event: AuditEvent, job: Job) -> bool:
    """The event names the job: by id, or by the object the job works on (an evaluation queued with its job)."""
    text = json.dumps([event.object_id, event.after], default=str)
    return str(job.id) in text or (bool(job.target_id) and job.target_id in text)


def _belongs(action: str, allowed: tuple[str, ...]) -> bool:
    return any(action == a or (a.endswith((".", "_")) and action.startswith(a)) or a == "" for a in allowed)


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_audited_service_writes_exactly_one_event(name, request):
    service_name = name.split("[")[0]
    world = World(request)
    call = CASES[name](world)
    events_before = AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0
    jobs_before = set(Job.objects.values_list("id", flat=True))

    result = call.run()

    events = list(AuditEvent.objects.filter(id__gt=events_before).order_by("id"))
    expected = call.expect(result) if callable(call.expect) else call.expect
    actions = [e.action for e in events]
    assert expected >= 1, f"{name}: the case must make the service write (expected {expected})"
    assert len(events) == expected, f"{name} wrote {actions}, expected {expected} event(s)"
    if service_name not in BATCH:
        assert expected == 1
    assert all(_belongs(a, AUDITED[service_name]) for a in actions), f"{name} wrote {actions}"
    new_jobs = Job.objects.exclude(id__in=jobs_before)
    for job in new_jobs:
        assert any(_mentions(e, job) for e in events), f"{name}: no event names the {job.kind} job it created"
    if new_jobs.exists():
        stray = [a for a in actions if a.startswith("job.") and not _belongs(a, AUDITED[service_name])]
        assert not stray, f"{name}: job creation wrote its own event {stray}"
    if call.check is not None:
        call.check(result, events)


# ------------------------------------------------------------------------------------------------ named cascades


def _split(events: list[AuditEvent], service_name: str) -> tuple[list[str], list[str]]:
    own = [e.action for e in events if _belongs(e.action, AUDITED[service_name])]
    return own, [e.action for e in events if not _belongs(e.action, AUDITED[service_name])]


def _new_events(before: int) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(id__gt=before).order_by("id"))


def _last_id() -> int:
    return AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0


def test_changing_a_bound_artifact_is_followed_by_the_supersession_it_causes(request):
    from apps.datasets.services import datasheet_save

    world = World(request)
    review = world.deployment_review
    before = _last_id()
    datasheet_save(actor=world.steward, version=world.prepared_version)  # the first revision changes the bindings
    own, cascaded = _split(_new_events(before), "datasets.datasheet_save")
    assert own == ["datasheet.save"]
    assert CASCADES["datasets.datasheet_save"] == "ethics.reviews_supersede_stale"
    assert cascaded == ["review.supersede"]
    review.refresh_from_db()
    assert review.status == "superseded"


def test_the_hourly_round_decides_then_reminds(request):
    from apps.ethics.models import ReviewRequest
    from apps.ethics.services import reviews_remind_due, vote_cast

    world = World(request)
    review = world.development_review
    set_board_rules(world.org, quorum=1)
    vote_cast(actor=world.board_member, review=review, choice="approve", reason="Sound.")
    ReviewRequest.objects.filter(pk=review.pk).update(due_at=timezone.now() - timedelta(hours=1))
    before = _last_id()
    reviews_remind_due()
    own, cascaded = _split(_new_events(before), "ethics.reviews_remind_due")
    assert CASCADES["ethics.reviews_remind_due"] == "ethics.reviews_decide_due"
    assert own == [] and cascaded == ["review.decide_due"]  # decided, so nobody is left to remind


def test_a_lost_training_job_is_failed_and_its_budget_settled_by_its_hook(request):
    from apps.jobs.services import job_claim, job_reap_expired

    world = World(request)
    run = world.pending_run
    job_claim(job_id=run.job_id, worker="test-worker")
    Job.objects.filter(pk=run.job_id).update(lease_expires_at=timezone.now() - timedelta(minutes=1))
    before = _last_id()
    job_reap_expired()
    own, cascaded = _split(_new_events(before), "jobs.job_reap_expired")
    assert CASCADES["jobs.job_reap_expired"] == "training.training_run_stop"
    assert own == ["job.failed"] and cascaded == ["training.stop"]
