"""Django settings for Attest, read from the environment.

Three shapes: demo (``ATTEST_DEMO=1``: SQLite, filesystem broker, generated keys), development and tests (DEBUG may be
on, services from the environment), production (everything explicit; ``manage.py check --deploy`` must pass).
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from portal.env import env_bool, env_int, env_list, env_path, env_str

BASE_DIR = Path(__file__).resolve().parent.parent

DEMO_MODE = env_bool("ATTEST_DEMO", False)
DEBUG = env_bool("DEBUG", False)

# A missing SECRET_KEY outside demo mode stops the start: a guessable default would sign every session.
SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if DEMO_MODE or env_bool("ATTEST_TESTING", False):
        SECRET_KEY = "attest-demo-only-" + hashlib.sha256(str(BASE_DIR).encode()).hexdigest()
    else:
        raise ImproperlyConfigured("SECRET_KEY (or SECRET_KEY_FILE) must be set outside demo mode (ATTEST_DEMO=1).")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost"] if (DEMO_MODE or DEBUG) else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "apps.core",
    "apps.accounts",
    "apps.audit",
    "apps.jobs",
    "apps.usecases",
    "apps.consent",
    "apps.datasets",
    "apps.training",
    "apps.evaluation",
    "apps.modelcards",
    "apps.ethics",
    "apps.reports",
    "apps.deployments",
    "apps.rights",
    "apps.portfolio",
    "apps.compliance",
    "apps.thirdparty",
    "apps.search",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "apps.audit.middleware.RequestIdMiddleware",
    # Counts and times every response (route name, method, status) for /metrics: per process (apps/core/metrics.py).
    "apps.core.metrics.RequestMetricsMiddleware",
    "apps.core.middleware.ContentSecurityPolicyMiddleware",
    # Before anything reads a body: declared size, bounded handlers, upload gate, cleanup (apps/core/uploads.py).
    "apps.core.uploads.UploadLimitMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Idle and absolute session limits enforced on the server, and the tracking rows of "your sessions".
    "apps.accounts.sessions.SessionActivityMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "apps.accounts.middleware.CurrentOrganisationMiddleware",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"
ASGI_APPLICATION = "portal.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "apps.accounts.context_processors.organisation",
                "apps.ethics.context_processors.notices",
            ],
        },
    },
]

DATA_DIR = env_path("ATTEST_DATA_DIR", BASE_DIR / "var")
DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL") or f"sqlite:///{DATA_DIR / 'attest.sqlite3'}",
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 0),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several processes (web, worker) share the demo database: wait for locks instead of failing at once.
    DATABASES["default"].setdefault("OPTIONS", {}).update({"timeout": 30, "transaction_mode": "IMMEDIATE"})
# The role that owns the tables, for migrations only (`manage.py migrate` and `flush` switch to it; apps/audit/dbroles.py
# then grants DATABASE_URL's role only what the portal needs: no TRUNCATE, ALTER or triggers, no UPDATE or DELETE on the
# audit log and other immutable tables). Unset: one role does everything (the demo, SQLite, has no roles).
DATABASE_OWNER = dj_database_url.parse(env_str("DATABASE_MIGRATE_URL")) if env_str("DATABASE_MIGRATE_URL") else None
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = ["django.contrib.auth.backends.ModelBackend"]
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "accounts:login"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Password guesses allowed within the window (apps/accounts/throttling.py): per (client address, account), per account
# from any address, and per address alone (0: off; only where the client address is real, never one shared proxy).
LOGIN_FAILURE_LIMIT = env_int("ATTEST_LOGIN_FAILURE_LIMIT", 5)
LOGIN_ACCOUNT_FAILURE_LIMIT = env_int("ATTEST_LOGIN_ACCOUNT_FAILURE_LIMIT", 2 * LOGIN_FAILURE_LIMIT)
LOGIN_ADDRESS_FAILURE_LIMIT = env_int("ATTEST_LOGIN_ADDRESS_FAILURE_LIMIT", 0)
LOGIN_FAILURE_WINDOW_SECONDS = env_int("ATTEST_LOGIN_FAILURE_WINDOW_SECONDS", 900)
# Reverse proxies (addresses or networks) whose X-Forwarded-For is believed; none by default, so REMOTE_ADDR is used.
TRUSTED_PROXIES = env_list("ATTEST_TRUSTED_PROXIES", [])
# The public contestation page (apps/deployments/public_views.py): submissions per client address and per deployment
# within LOGIN_FAILURE_WINDOW_SECONDS, counted with the same keyed counters as sign-in (no address is stored).
PUBLIC_FEEDBACK_ADDRESS_LIMIT = env_int("ATTEST_PUBLIC_FEEDBACK_ADDRESS_LIMIT", 5)
PUBLIC_FEEDBACK_DEPLOYMENT_LIMIT = env_int("ATTEST_PUBLIC_FEEDBACK_DEPLOYMENT_LIMIT", 200)
# Days what a person typed (message, decision reference, contact) is kept after its feedback is closed.
FEEDBACK_RETENTION_DAYS = env_int("ATTEST_FEEDBACK_RETENTION_DAYS", 365)
# A data-subject access package (the person's rows, decrypted for them) is kept this long, then its key and file go.
RIGHTS_EXPORT_RETENTION_DAYS = env_int("ATTEST_RIGHTS_EXPORT_RETENTION_DAYS", 30)
INVITATION_DAYS = env_int("ATTEST_INVITATION_DAYS", 7)
PASSWORD_RESET_TIMEOUT = env_int("ATTEST_PASSWORD_RESET_SECONDS", 3600)

LANGUAGE_CODE = "en-gb"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
# One date format on every page ("30 Nov 2026", "30 Nov 2026, 14:05"): the locale's own formats would win over
# DATE_FORMAT here, so they are set in a format module (portal/formats/en_GB/formats.py).
FORMAT_MODULE_PATH = ["portal.formats"]

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = env_path("STATIC_ROOT", DATA_DIR / "staticfiles")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = DEBUG or DEMO_MODE or env_bool("ATTEST_TESTING", False)

# Where encrypted dataset files, model artifacts and reports live (outside STATIC_ROOT, never served directly).
STORAGE_ROOT = env_path("ATTEST_STORAGE_ROOT", DATA_DIR / "storage")
# Largest accepted upload; enforced while streaming, not only from headers.
UPLOAD_MAX_BYTES = env_int("ATTEST_UPLOAD_MAX_BYTES", 2 * 1024**3)
# What an uploaded table may expand to, checked at upload before any worker reads it (a Parquet file's footer gives its
# rows and decoded size: a small file can hold hundreds of millions of repeated values). Workers read in batches.
MAX_ROWS = env_int("ATTEST_MAX_ROWS", 20_000_000)
MAX_DECOMPRESSED_BYTES = env_int("ATTEST_MAX_DECOMPRESSED_BYTES", 4 * 1024**3)
# Production batches posted or uploaded for monitoring (apps/deployments): largest file, encrypted as it streams.
BATCH_MAX_BYTES = env_int("ATTEST_BATCH_MAX_BYTES", 256 * 1024**2)
# How long the rows and predictions of a finished scoring job stay on its job row before the sweep removes them.
SCORING_RESULT_RETENTION_HOURS = env_int("ATTEST_SCORING_RESULT_HOURS", 72)
# The longest an upload request may last (at least 1 MB/s for the largest file, plus ten minutes to check it); the
# incoming sweeper deletes files untouched for longer (apps/core/uploads.incoming_sweep).
UPLOAD_MAX_SECONDS = env_int("ATTEST_UPLOAD_MAX_SECONDS", 600 + UPLOAD_MAX_BYTES // 2**20)
# Bodies of routes that declare no upload policy; their files stay in memory, never on disk (apps/core/uploads.py).
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
DATA_UPLOAD_MAX_NUMBER_FILES = 100  # file parts, empty ones included (the anonymise form has one per column)
FILE_UPLOAD_HANDLERS = ["apps.core.uploads.BoundedMemoryUploadHandler"]


def _master_keys() -> list[str]:
    """Master keys (Fernet, urlsafe base64 of 32 bytes) wrapping per-file data keys; the first one wraps new keys."""
    configured = env_list("ATTEST_MASTER_KEYS", [])
    single = env_str("ATTEST_MASTER_KEY")
    if single:
        configured = [single, *configured]
    if configured:
        return configured
    if DEMO_MODE or DEBUG or env_bool("ATTEST_TESTING", False):
        # Derived from SECRET_KEY so the demo works with no set-up; production must configure its own.
        return [base64.urlsafe_b64encode(hashlib.sha256(("master:" + SECRET_KEY).encode()).digest()).decode()]
    raise ImproperlyConfigured("ATTEST_MASTER_KEY (or ATTEST_MASTER_KEY_FILE) must be set outside demo mode.")


MASTER_KEYS = _master_keys()

# --- Security headers (manage.py check --deploy passes when ATTEST_SECURE=1 behind TLS) ---
SECURE = env_bool("ATTEST_SECURE", not (DEMO_MODE or DEBUG or env_bool("ATTEST_TESTING", False)))
SECURE_SSL_REDIRECT = SECURE and env_bool("ATTEST_SSL_REDIRECT", True)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Health checks and metrics are fetched over plain http inside the container network, never through the proxy.
SECURE_REDIRECT_EXEMPT = [r"^(livez|readyz|healthz|metrics)$"]
SECURE_HSTS_SECONDS = env_int("ATTEST_HSTS_SECONDS", 31536000) if SECURE else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE
SECURE_HSTS_PRELOAD = SECURE
SESSION_COOKIE_SECURE = SECURE
CSRF_COOKIE_SECURE = SECURE
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
# The absolute limit: enforced from the time of sign-in on the server too (apps/accounts/sessions.py), not only by the
# cookie's max-age. A session with no request for SESSION_IDLE_SECONDS ends as well.
SESSION_COOKIE_AGE = env_int("ATTEST_SESSION_SECONDS", 8 * 3600)
SESSION_IDLE_SECONDS = env_int("ATTEST_SESSION_IDLE_SECONDS", 30 * 60)
# API tokens: every new token expires; the default and the longest lifetime in days.
API_TOKEN_DEFAULT_DAYS = env_int("ATTEST_API_TOKEN_DEFAULT_DAYS", 90)
API_TOKEN_MAX_DAYS = env_int("ATTEST_API_TOKEN_MAX_DAYS", 365)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Everything is vendored under /static/, so the policy can forbid every other origin.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'; "
    "font-src 'self'; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'self'; "
    "object-src 'none'"
)

# --- REST API ---
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "apps.accounts.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "apps.core.api.pagination.StandardPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "apps.core.api.errors.api_exception_handler",
    "DEFAULT_THROTTLE_CLASSES": ["rest_framework.throttling.UserRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "user": env_str("ATTEST_API_RATE", "6000/hour"),
        # Per deployment, whichever of its scoring tokens calls (apps/deployments/authentication.py).
        "scoring": env_str("ATTEST_SCORING_RATE", "120/minute"),
    },
    # ?format= is ours (exports choose csv or json); DRF's own use of it would pick a renderer instead.
    "URL_FORMAT_OVERRIDE": None,
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Attest API",
    "DESCRIPTION": "Governance and compliance for privacy-preserving AI. Errors share one shape: "
    '{"error": {"code", "message", "details"}}.',
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "JobStatusEnum": "apps.jobs.models.Job.Status",
        "AlertSeverityEnum": "apps.deployments.models.Alert.Severity",
        "MonitoringWindowStatusEnum": "apps.deployments.models.MonitoringWindow.Status",
        "UseCaseStatusEnum": "apps.usecases.models.UseCase.Status",
        "ConsentStatusEnum": "apps.consent.models.ConsentRecord.Status",
        "ConsentImportStatusEnum": "apps.consent.models.ConsentImport.Status",
        "MembershipRoleEnum": "apps.accounts.models.Role",
        "InvitationKindEnum": "apps.accounts.models.Invitation.Kind",
        "ApiTokenScopeEnum": "apps.accounts.models.ApiToken.Scope",
        "ColumnRoleEnum": "apps.datasets.models.ColumnRole",
        "DatasetVersionStatusEnum": "apps.datasets.models.DatasetVersion.Status",
        "DatasetVersionKindEnum": "apps.datasets.models.DatasetVersion.Kind",
        "BudgetEntryKindEnum": "apps.training.models.BudgetEntry.Kind",
        "EvaluationKindEnum": "apps.evaluation.models.Evaluation.Kind",
        "ReviewKindEnum": "apps.ethics.models.ReviewRequest.Kind",
        "ReviewStatusEnum": "apps.ethics.models.ReviewRequest.Status",
        "WaiverStatusEnum": "apps.ethics.models.Waiver.Status",
        "ConditionStatusEnum": "apps.ethics.models.Condition.Status",
        "AnonymisationStatusEnum": "apps.datasets.models.Anonymisation.Status",
        "ReportKindEnum": "apps.reports.models.Report.Kind",
        "ReportStatusEnum": "apps.reports.models.Report.Status",
        "SubjectRequestKindEnum": "apps.rights.models.SubjectRequest.Kind",
        "SubjectRequestStatusEnum": "apps.rights.models.SubjectRequest.Status",
        "ModelDecisionEnum": "apps.rights.models.ModelDecision.Decision",
        "ThirdPartyModelKindEnum": "apps.thirdparty.models.ThirdPartyModel.Kind",
        "ThirdPartyModelStatusEnum": "apps.thirdparty.models.ThirdPartyModel.Status",
        "SearchKindEnum": "apps.search.selectors.KIND_CHOICES",
    },
}

# --- Celery (JSON only; enqueue by name after commit; job rows make redelivery harmless) ---
_broker_default = "filesystem://" if DEMO_MODE else "redis://127.0.0.1:6379/0"
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", _broker_default)
CELERY_BROKER_FOLDER = env_path("ATTEST_BROKER_FOLDER", DATA_DIR / "broker")
# The longest job's hard limit; the broker's visibility timeout must exceed it or a second worker gets the message.
JOB_HARD_TIME_LIMIT_SECONDS = env_int("ATTEST_JOB_HARD_TIME_LIMIT", 6 * 3600)
JOB_SOFT_TIME_LIMIT_SECONDS = JOB_HARD_TIME_LIMIT_SECONDS - 300
JOB_LEASE_SECONDS = env_int("ATTEST_JOB_LEASE_SECONDS", 120)
JOB_MAX_ATTEMPTS = env_int("ATTEST_JOB_MAX_ATTEMPTS", 3)

# --- E-mail ---
EMAIL_BACKEND = env_str(
    "EMAIL_BACKEND",
    "django.core.mail.backends.console.EmailBackend"
    if (DEMO_MODE or DEBUG)
    else "django.core.mail.backends.smtp.EmailBackend",
)
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "attest@localhost")
# Where links in e-mails point (the portal's public address).
SITE_URL = env_str("SITE_URL", "http://127.0.0.1:8000")
# Alert webhooks (apps/deployments/webhooks.py): https to public addresses only. Loopback http exists for the tests'
# receiver alone and has no environment variable on purpose.
ALERT_WEBHOOK_ALLOW_LOOPBACK_HTTP = False
ALERT_WEBHOOK_TIMEOUT_SECONDS = env_int("ATTEST_ALERT_WEBHOOK_TIMEOUT_SECONDS", 5)

# --- Operations (apps/core/health.py, apps/core/metrics.py) ---
# /metrics answers a bearer token equal to ATTEST_METRICS_TOKEN, or a client inside ATTEST_METRICS_ALLOWED_NETWORKS
# (addresses or networks; the client address is read as for sign-in throttling). Neither is set by default outside
# the demo, so production exposes no metrics until an operator chooses how.
METRICS_TOKEN = env_str("ATTEST_METRICS_TOKEN", "") or ""
METRICS_ALLOWED_NETWORKS = env_list(
    "ATTEST_METRICS_ALLOWED_NETWORKS", ["127.0.0.1/32", "::1/128"] if (DEMO_MODE or DEBUG) else []
)
# "json": one JSON object per line with the request id (for log collectors); "text": for people reading a terminal.
LOG_FORMAT = env_str(
    "ATTEST_LOG_FORMAT", "text" if (DEMO_MODE or DEBUG or env_bool("ATTEST_TESTING", False)) else "json"
)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "apps.audit.middleware.RequestIdLogFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
        "json": {"()": "apps.core.logs.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if LOG_FORMAT == "json" else "plain",
            "filters": ["request_id"],
        }
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    # WeasyPrint logs each layout step at INFO, and pyHanko the chain search it tries first for self-signed
    # certificates: keep the problems only.
    "loggers": {
        "weasyprint.progress": {"level": "WARNING"},
        "pyhanko.sign.validation": {"level": "ERROR"},
        "pyhanko_certvalidator": {"level": "ERROR"},
    },
}
