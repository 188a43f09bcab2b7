"""Root URLs: the HTML portal, the REST API under /api/v1/, and the OpenAPI schema and docs."""

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerSplitView

from apps.core import health
from apps.core import views as core_views

api_v1 = [
    path("", include("apps.accounts.api.urls")),
    path("", include("apps.audit.api.urls")),
    path("", include("apps.jobs.api.urls")),
    path("", include("apps.usecases.api.urls")),
    path("", include("apps.consent.api.urls")),
    path("", include("apps.datasets.api.urls")),
    path("", include("apps.training.api.urls")),
    path("", include("apps.evaluation.api.urls")),
    path("", include("apps.ethics.api.urls")),
    path("", include("apps.reports.api.urls")),
    path("", include("apps.deployments.api.urls")),
    path("", include("apps.rights.api.urls")),
    path("", include("apps.portfolio.api.urls")),
    path("", include("apps.thirdparty.api.urls")),
    path("", include("apps.search.api.urls")),
    path("", include("apps.compliance.api.urls")),
]

urlpatterns = [
    path("", core_views.dashboard, name="dashboard"),
    path("livez", health.livez, name="livez"),
    path("readyz", health.readyz, name="readyz"),
    path("healthz", health.readyz, name="healthz"),  # the older name of the readiness check
    path("metrics", health.metrics, name="metrics"),
    path("accounts/", include("apps.accounts.urls")),
    path("audit/", include("apps.audit.urls")),
    path("jobs/", include("apps.jobs.urls")),
    path("usecases/", include("apps.usecases.urls")),
    path("consent/", include("apps.consent.urls")),
    path("datasets/", include("apps.datasets.urls")),
    path("training/", include("apps.training.urls")),
    path("evaluation/", include("apps.evaluation.urls")),
    path("reviews/", include("apps.ethics.urls")),
    path("modelcards/", include("apps.modelcards.urls")),
    path("reports/", include("apps.reports.urls")),
    path("deployments/", include("apps.deployments.urls")),
    path("portfolio/", include("apps.portfolio.urls")),
    path("compliance/", include("apps.compliance.urls")),
    path("public/", include("apps.deployments.public_urls")),
    path("rights/", include("apps.rights.urls")),
    path("third-party/", include("apps.thirdparty.urls")),
    path("search/", include("apps.search.urls")),
    path("api/v1/", include((api_v1, "api"), namespace="api")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="api-docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="schema"), name="api-redoc"),
]

handler404 = "apps.core.views.not_found"
handler403 = "apps.core.views.forbidden"
handler500 = "apps.core.views.server_error"
