"""Celery task names: the only thing the web side knows about workers (no imports, so the web stays light).

Names carry their queue (``attest.default.*`` / ``attest.gpu.*``) so routing is visible where tasks are sent. Job
kinds (``apps/<app>/jobs.py``) name their task from here; ``JOB_TASKS`` lists every task that runs a job row.
"""

DIAGNOSTICS = "attest.default.diagnostics"
REAP_EXPIRED_JOBS = "attest.default.reap_expired_jobs"
CONSENT_IMPORT = "attest.default.consent_import"
DATASET_PROFILE = "attest.default.dataset_profile"
DATASET_PREPARE = "attest.default.dataset_prepare"
DATASET_RETENTION = "attest.default.dataset_retention"
INCOMING_SWEEP = "attest.default.incoming_sweep"
DATASET_ANONYMISE = "attest.default.dataset_anonymise"
DATASET_ANONYMISE_APPLY = "attest.default.dataset_anonymise_apply"
REVIEW_REMINDERS = "attest.default.review_reminders"
REPORT_RENDER = "attest.default.report_render"
TRAINING = "attest.gpu.training"
DEPLOYMENT_SCORING = "attest.gpu.deployment_scoring"
EVALUATION = "attest.gpu.evaluation"
MONITORING_REFERENCE = "attest.default.monitoring_reference"
PRODUCTION_BATCH = "attest.default.production_batch"
MONITORING_WINDOW = "attest.default.monitoring_window"
MONITORING_TICK = "attest.default.monitoring_tick"
MITIGATION = "attest.gpu.mitigation"
ROW_EXPLANATION = "attest.gpu.row_explanation"
ALERT_WEBHOOK = "attest.default.alert_webhook"
FEEDBACK_RETENTION = "attest.default.feedback_retention"
RIGHTS_TRACE = "attest.default.rights_trace"
RIGHTS_EXECUTE = "attest.default.rights_execute"
RIGHTS_RESUME = "attest.default.rights_resume"

JOB_TASKS = (
    DIAGNOSTICS,
    CONSENT_IMPORT,
    DATASET_PROFILE,
    DATASET_PREPARE,
    DATASET_ANONYMISE,
    DATASET_ANONYMISE_APPLY,
    REPORT_RENDER,
    TRAINING,
    DEPLOYMENT_SCORING,
    EVALUATION,
    MONITORING_REFERENCE,
    PRODUCTION_BATCH,
    MONITORING_WINDOW,
    MITIGATION,
    ROW_EXPLANATION,
    ALERT_WEBHOOK,
    RIGHTS_TRACE,
    RIGHTS_EXECUTE,
)
