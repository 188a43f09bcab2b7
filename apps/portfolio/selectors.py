"""Reads of the portfolio: the inventory of AI systems and the organisation's risk register.

Both are gathered in a fixed number of queries whatever the number of rows (subqueries for the per-row counts, one
query per related kind for the page's rows), so the pages and the CSV export stay as fast with 500 use cases as
with 5.

The register has two sources. Risks added directly are ``Risk`` rows. Risks of a DPIA are read live from each use
case's DPIA (``UseCase.dpia["risks"]``), which stays their single source of truth: an edit of the DPIA shows in the
register at once, and nothing has to be kept in step. The DPIA rates on the ICO's three-level scales; the register's
are five levels, so remote/possible/probable and minimal/significant/severe sit at 1, 3 and 5 (the ends and the
middle), which keeps the DPIA's own low/medium/high boundaries on the heat map's diagonal bands.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from django.db.models import (
    Case,
    Count,
    Exists,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Coalesce
from django.urls import reverse
from django.utils import timezone

from apps.accounts.models import Organisation, User
from apps.deployments.models import Alert, Deployment
from apps.ethics.models import Condition, Waiver
from apps.portfolio.models import Risk
from apps.portfolio.permissions import visible_to as risks_visible_to
from apps.usecases.models import UseCase
from apps.usecases.permissions import visible_to as usecases_visible_to

# ------------------------------------------------------------------------------------------------------- inventory

UNRESOLVED_ALERTS = (Alert.Status.OPEN, Alert.Status.ACKNOWLEDGED)
WAIVER_NOTICE_DAYS = 30
PAGE_SIZE = 25
TIER_ORDER = ["prohibited", "high", "limited", "minimal"]
INVENTORY_KINDS = {"usecase": "Trained in Attest only", "thirdparty": "Uses a third-party model"}
ALERT_STATES = {"open": "Any open alert", "none": "No open alert"}

INVENTORY_SORTS: dict[str, tuple[str, ...]] = {
    "reference": ("reference",),
    "title": ("title", "reference"),
    "tier": ("tier_rank", "reference"),
    "stage": ("status", "reference"),
    "alerts": ("open_alerts", "reference"),
    "conditions": ("open_conditions", "reference"),
    "waivers": ("expiring_waivers", "reference"),
}


def _count(queryset: QuerySet, key: str) -> Coalesce:
    counted = queryset.order_by().values(key).annotate(n=Count("id")).values("n")
    return Coalesce(Subquery(counted, output_field=IntegerField()), Value(0))


def _with_inventory_counts(usecases: QuerySet[UseCase], today: date) -> QuerySet[UseCase]:
    from apps.thirdparty.models import ThirdPartyModel

    return usecases.annotate(
        open_alerts=_count(
            Alert.objects.filter(deployment__usecase=OuterRef("pk"), status__in=UNRESOLVED_ALERTS),
            "deployment__usecase",
        ),
        open_conditions=_count(
            Condition.objects.filter(decision__review__usecase=OuterRef("pk"), status=Condition.Status.OPEN),
            "decision__review__usecase",
        ),
        # Granted waivers whose end falls within the notice period, or has passed while the use case still relies on
        # them: both need the board's attention before the model's approval lapses.
        expiring_waivers=_count(
            Waiver.objects.filter(
                review__usecase=OuterRef("pk"),
                status=Waiver.Status.GRANTED,
                expires_on__lte=today + timedelta(days=WAIVER_NOTICE_DAYS),
            ),
            "review__usecase",
        ),
        tier_rank=Case(
            *(When(risk_tier=tier, then=Value(rank)) for rank, tier in enumerate(TIER_ORDER)),
            default=Value(len(TIER_ORDER)),
            output_field=IntegerField(),
        ),
        uses_third_party=Exists(
            ThirdPartyModel.objects.filter(usecase=OuterRef("pk")).exclude(status=ThirdPartyModel.Status.RETIRED)
        ),
    )


@dataclass
class InventoryFilters:
    tier: str = ""
    stage: str = ""
    kind: str = ""
    alerts: str = ""
    q: str = ""
    sort: str = "reference"

    @classmethod
    def from_params(cls, params: Any) -> InventoryFilters:
        """Unknown values are dropped rather than refused: a stale bookmark still opens the inventory."""
        tier = params.get("tier", "")
        stage = params.get("stage", "")
        kind = params.get("kind", "")
        alerts = params.get("alerts", "")
        sort = params.get("sort", "") or "reference"
        return cls(
            tier=tier if tier in TIER_ORDER else "",
            stage=stage if stage in UseCase.Status.values else "",
            kind=kind if kind in INVENTORY_KINDS else "",
            alerts=alerts if alerts in ALERT_STATES else "",
            q=(params.get("q", "") or "").strip()[:100],
            sort=sort if sort.lstrip("-") in INVENTORY_SORTS else "reference",
        )

    def as_query(self) -> dict[str, str]:
        return {key: value for key, value in vars(self).items() if value}


def inventory(
    user: User, organisation: Organisation | None, filters: InventoryFilters, today: date | None = None
) -> QuerySet[UseCase]:
    """The use cases the user may see (of ``organisation``, or of every organisation the user may see when None),
    with the inventory's counts, filtered and sorted."""
    today = today or timezone.localdate()
    usecases = usecases_visible_to(user).select_related("owner")
    if organisation is not None:
        usecases = usecases.filter(organisation=organisation)
    usecases = _with_inventory_counts(usecases, today)
    if filters.tier:
        usecases = usecases.filter(risk_tier=filters.tier)
    if filters.stage:
        usecases = usecases.filter(status=filters.stage)
    if filters.kind == "thirdparty":
        usecases = usecases.filter(uses_third_party=True)
    elif filters.kind == "usecase":
        usecases = usecases.filter(uses_third_party=False)
    if filters.alerts == "open":
        usecases = usecases.filter(open_alerts__gt=0)
    elif filters.alerts == "none":
        usecases = usecases.filter(open_alerts=0)
    if filters.q:
        usecases = usecases.filter(Q(reference__icontains=filters.q) | Q(title__icontains=filters.q))
    fields = INVENTORY_SORTS[filters.sort.lstrip("-")]
    if filters.sort.startswith("-"):
        return usecases.order_by(*(f"-{name}" for name in fields))
    return usecases.order_by(*fields)


@dataclass
class InventoryRow:
    usecase: UseCase
    environments: list[str]
    third_party: list[Any]
    compliance: list[dict[str, Any]]

    @property
    def open_alerts(self) -> int:
        return self.usecase.open_alerts  # type: ignore[attr-defined]

    @property
    def open_conditions(self) -> int:
        return self.usecase.open_conditions  # type: ignore[attr-defined]

    @property
    def expiring_waivers(self) -> int:
        return self.usecase.expiring_waivers  # type: ignore[attr-defined]


def compliance_progress(usecases: list[UseCase]) -> dict[Any, list[dict[str, Any]]]:
    """Per-framework progress of each use case, from the compliance app (absent while it is not installed)."""
    try:
        from apps.compliance.selectors import progress_for_many
    except ImportError:
        return {}
    return progress_for_many(usecases)


def inventory_rows(usecases: list[UseCase]) -> list[InventoryRow]:
    """The inventory's rows for one page of (annotated) use cases: a fixed number of queries for any page size."""
    from apps.thirdparty.selectors import third_party_models_for_usecases

    ids = [usecase.id for usecase in usecases]
    environments: dict[Any, list[str]] = {}
    for usecase_id, environment in (
        Deployment.objects.filter(usecase_id__in=ids, status=Deployment.Status.ACTIVE)
        .order_by("environment")
        .values_list("usecase_id", "environment")
    ):
        environments.setdefault(usecase_id, []).append(environment)
    third_party = third_party_models_for_usecases(ids) if ids else {}
    progress = compliance_progress(usecases) if ids else {}
    return [
        InventoryRow(
            usecase=usecase,
            environments=environments.get(usecase.id, []),
            third_party=third_party.get(usecase.id, []),
            compliance=progress.get(usecase.id, []),
        )
        for usecase in usecases
    ]


INVENTORY_CSV_HEADER = [
    "kind",
    "reference",
    "title",
    "supplier",
    "version",
    "risk_tier",
    "annex_iii_area",
    "stage",
    "owner",
    "environments",
    "open_alerts",
    "open_conditions",
    "expiring_waivers",
    "compliance",
]


def inventory_csv_rows(rows: Iterable[InventoryRow]) -> Iterable[list[Any]]:
    """One line per use case, then one per third-party model it uses (with the use case's reference)."""
    for row in rows:
        usecase = row.usecase
        compliance = "; ".join(f"{item['name']} {item['percent']}%" for item in row.compliance)
        common = [
            usecase.get_risk_tier_display(),
            usecase.annex_iii_area,
            usecase.get_status_display(),
            usecase.owner.display_name,
            " ".join(row.environments),
            row.open_alerts,
            row.open_conditions,
            row.expiring_waivers,
            compliance,
        ]
        yield ["use case", usecase.reference, usecase.title, "", "", *common]
        for model in row.third_party:
            yield ["third-party model", usecase.reference, model.name, model.supplier, model.version, *common]


# --------------------------------------------------------------------------------------------------- risk register

DPIA_LIKELIHOOD = {"remote": 1, "possible": 3, "probable": 5}
DPIA_SEVERITY = {"minimal": 1, "significant": 3, "severe": 5}
# The strongest effect of the DPIA's measures for a risk decides the treatment it shows as.
DPIA_TREATMENT = [("eliminated", Risk.Treatment.AVOID), ("reduced", Risk.Treatment.MITIGATE), ("accepted", "accept")]
# A DPIA's risks stop being tracked once its use case will not go ahead or has been retired.
INACTIVE_USECASE = (UseCase.Status.REJECTED, UseCase.Status.RETIRED)

LIKELIHOOD_LABELS = {1: "Rare", 2: "Unlikely", 3: "Possible", 4: "Likely", 5: "Almost certain"}
SEVERITY_LABELS = {1: "Negligible", 2: "Minor", 3: "Moderate", 4: "Major", 5: "Critical"}
REGISTER_SORTS = ("score", "review", "reference")


@dataclass
class RegisterEntry:
    """One risk of the register, whichever its source."""

    source: str  # "direct" | "dpia"
    reference: str
    title: str
    description: str
    likelihood: int
    severity: int
    owner_name: str
    treatment: str
    treatment_plan: str
    review_on: date | None
    status: str
    url: str
    usecase: UseCase | None = None
    risk: Risk | None = None
    overdue: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def score(self) -> int:
        return self.likelihood * self.severity

    @property
    def treatment_label(self) -> str:
        return Risk.Treatment(self.treatment).label if self.treatment else "Not treated yet"


def _direct_entry(risk: Risk, today: date) -> RegisterEntry:
    return RegisterEntry(
        source="direct",
        reference=risk.reference,
        title=risk.title,
        description=risk.description,
        likelihood=risk.likelihood,
        severity=risk.severity,
        owner_name=risk.owner.display_name,
        treatment=risk.treatment,
        treatment_plan=risk.treatment_plan,
        review_on=risk.review_on,
        status=risk.status,
        url=reverse("portfolio:risk_detail", args=[risk.id]),
        usecase=risk.usecase,
        risk=risk,
        overdue=risk.status == Risk.Status.OPEN and risk.review_on < today,
    )


def register_entry(risk: Risk, today: date | None = None) -> RegisterEntry:
    return _direct_entry(risk, today or timezone.localdate())


def dpia_entries(usecase: UseCase) -> list[RegisterEntry]:
    """The risks of one use case's DPIA as register entries (entries that do not parse are left out)."""
    dpia = usecase.dpia or {}
    measures: dict[str, list[dict[str, Any]]] = {}
    for measure in dpia.get("measures") or []:
        if isinstance(measure, dict):
            measures.setdefault(str(measure.get("risk")), []).append(measure)
    status = str(Risk.Status.CLOSED if usecase.status in INACTIVE_USECASE else Risk.Status.OPEN)
    entries = []
    for risk in dpia.get("risks") or []:
        if not isinstance(risk, dict):
            continue
        likelihood = DPIA_LIKELIHOOD.get(risk.get("likelihood"))  # type: ignore[arg-type]
        severity = DPIA_SEVERITY.get(risk.get("severity"))  # type: ignore[arg-type]
        if likelihood is None or severity is None or not risk.get("id"):
            continue
        own = measures.get(str(risk["id"]), [])
        effects = {measure.get("effect") for measure in own}
        treatment = next((value for effect, value in DPIA_TREATMENT if effect in effects), "")
        description = str(risk.get("description") or "")
        entries.append(
            RegisterEntry(
                source="dpia",
                reference=f"{usecase.reference} {risk['id']}",
                title=description[:200],
                description=description,
                likelihood=likelihood,
                severity=severity,
                owner_name=usecase.owner.display_name,
                treatment=str(treatment),
                treatment_plan="; ".join(str(measure.get("measure") or "") for measure in own),
                review_on=None,
                status=status,
                url=reverse("usecases:dpia", args=[usecase.id]),
                usecase=usecase,
                extra={"dpia_overall": risk.get("overall", ""), "residual": [m.get("residual_risk") for m in own]},
            )
        )
    return entries


@dataclass
class RegisterFilters:
    status: str = "open"
    source: str = ""
    usecase: str = ""
    overdue: bool = False
    sort: str = "score"

    @classmethod
    def from_params(cls, params: Any) -> RegisterFilters:
        status = params.get("status", "open")
        source = params.get("source", "")
        sort = params.get("sort", "") or "score"
        return cls(
            status=status if status in ("open", "closed", "all") else "open",
            source=source if source in ("direct", "dpia") else "",
            usecase=(params.get("usecase", "") or "").strip()[:20],
            overdue=params.get("overdue") in ("1", "true", "on"),
            sort=sort if sort in REGISTER_SORTS else "score",
        )


def register_entries(
    user: User, organisation: Organisation, filters: RegisterFilters | None = None, today: date | None = None
) -> list[RegisterEntry]:
    """The organisation's register as the user may see it: two queries whatever the number of risks."""
    filters = filters or RegisterFilters()
    today = today or timezone.localdate()
    entries: list[RegisterEntry] = []
    if filters.source in ("", "direct"):
        direct = risks_visible_to(user).filter(organisation=organisation).select_related("owner", "usecase")
        entries += [_direct_entry(risk, today) for risk in direct]
    if filters.source in ("", "dpia"):
        usecases = (
            usecases_visible_to(user)
            .filter(organisation=organisation)
            .exclude(dpia={})
            .select_related("owner")
            .order_by("reference")
        )
        for usecase in usecases:
            entries += dpia_entries(usecase)
    if filters.status != "all":
        entries = [entry for entry in entries if entry.status == filters.status]
    if filters.usecase:
        entries = [entry for entry in entries if entry.usecase and entry.usecase.reference == filters.usecase]
    if filters.overdue:
        entries = [entry for entry in entries if entry.overdue]
    if filters.sort == "review":
        entries.sort(key=lambda e: (e.review_on is None, e.review_on or date.max, e.reference))
    elif filters.sort == "reference":
        entries.sort(key=lambda e: e.reference)
    else:
        entries.sort(key=lambda e: (-e.score, -e.severity, e.reference))
    return entries


def band(score: int) -> str:
    """The usual 5 x 5 bands: 1-4 low, 5-9 medium, 10-15 high, 16-25 very high."""
    if score <= 4:
        return "low"
    if score <= 9:
        return "medium"
    if score <= 15:
        return "high"
    return "very_high"


BAND_LABELS = {"low": "Low", "medium": "Medium", "high": "High", "very_high": "Very high"}


@dataclass
class HeatMap:
    """Counts of entries by severity (rows, 5 first) and likelihood (columns, 1 first)."""

    cells: dict[tuple[int, int], int]

    def count(self, likelihood: int, severity: int) -> int:
        return self.cells.get((likelihood, severity), 0)

    @property
    def total(self) -> int:
        return sum(self.cells.values())

    def rows(self) -> list[dict[str, Any]]:
        return [
            {
                "severity": severity,
                "label": SEVERITY_LABELS[severity],
                "cells": [
                    {
                        "likelihood": likelihood,
                        "count": self.count(likelihood, severity),
                        "band": band(likelihood * severity),
                        "band_label": BAND_LABELS[band(likelihood * severity)].lower(),
                    }
                    for likelihood in range(1, 6)
                ],
            }
            for severity in range(5, 0, -1)
        ]

    def svg(self, title: str) -> str:
        from apps.core.charts import heat_map as draw

        rows = self.rows()
        return draw(
            [[cell["count"] for cell in row["cells"]] for row in rows],
            bands=[[cell["band"] for cell in row["cells"]] for row in rows],
            title=title,
            row_labels=[f"{row['severity']} {row['label']}" for row in rows],
            column_labels=[f"{n} {LIKELIHOOD_LABELS[n]}" for n in range(1, 6)],
            row_axis="Severity",
            column_axis="Likelihood",
        )


def heat_map(entries: Iterable[RegisterEntry]) -> HeatMap:
    cells: dict[tuple[int, int], int] = {}
    for entry in entries:
        key = (entry.likelihood, entry.severity)
        cells[key] = cells.get(key, 0) + 1
    return HeatMap(cells)


def overdue_reviews(organisation: Organisation, today: date | None = None) -> QuerySet[Risk]:
    """Open direct risks whose review date has passed (DPIA risks are reviewed with their DPIA)."""
    today = today or timezone.localdate()
    return Risk.objects.filter(organisation=organisation, status=Risk.Status.OPEN, review_on__lt=today)


def search_risks(
    user: User, query: str, limit: int = 20, organisation: Organisation | None = None
) -> list[dict[str, Any]]:
    """Risks of the register (direct and DPIA) whose title or description contains ``query``, for global search;
    scoped to the organisations the user may see (and to ``organisation`` when given). Two queries."""
    query = (query or "").strip()
    if not query:
        return []
    found: list[RegisterEntry] = []
    risks = risks_visible_to(user)
    usecases = usecases_visible_to(user)
    if organisation is not None:
        risks, usecases = risks.filter(organisation=organisation), usecases.filter(organisation=organisation)
    direct = (
        risks.filter(Q(title__icontains=query) | Q(description__icontains=query) | Q(reference__iexact=query))
        .select_related("owner", "usecase")
        .order_by("-likelihood", "reference")[:limit]
    )
    today = timezone.localdate()
    found += [_direct_entry(risk, today) for risk in direct]
    needle = query.lower()
    usecases = (
        usecases.filter(dpia__icontains=query)  # narrows in the database; the exact match is made on each risk below
        .select_related("owner")
        .order_by("reference")
    )
    for usecase in usecases:
        found += [entry for entry in dpia_entries(usecase) if needle in entry.description.lower()]
        if len(found) >= limit:
            break
    return [
        {
            "title": entry.title,
            "description": entry.description,
            "source": entry.source,
            "reference": entry.reference,
            "usecase_reference": entry.usecase.reference if entry.usecase else "",
            "score": entry.score,
            "status": entry.status,
            "url": entry.url,
        }
        for entry in found[:limit]
    ]
