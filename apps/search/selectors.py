"""Global search: one query across the kinds of record a member may see, grouped by kind.

Every kind starts from its own app's ``visible_to`` (so auditor grants and organisation boundaries are exactly the
app's), narrowed to one organisation when the caller acts in one. On PostgreSQL each kind is matched with full-text
search (weighted ``SearchVector``, a prefix ``SearchQuery`` of the words typed, ``SearchRank``); elsewhere (the demo
on SQLite) every word must appear in one of the same fields (``icontains``) and the same weights rank the rows in
Python. Identifiers (references, sha256 prefixes) also match as typed on both paths, and an exact identifier ranks
first. Requirements and risks come from their apps' own search selectors (compliance, portfolio).

No GIN index: every query is first narrowed by organisation (an indexed foreign key), so the vectors are computed
over one organisation's few hundred rows of a kind; a GIN index over every organisation's rows would not be chosen
in front of that filter, and would cost on every write.
"""

from __future__ import annotations

import importlib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import reduce
from operator import add, and_, or_
from typing import Any

from django.contrib.postgres.search import SearchQuery, SearchRank, SearchVector
from django.db import connection
from django.db.models import Case, F, FloatField, Q, QuerySet, Value, When
from django.urls import reverse

from apps.accounts.models import Organisation, User

logger = logging.getLogger(__name__)

MIN_QUERY = 2
MAX_QUERY = 200
MAX_TERMS = 8
DEFAULT_LIMIT = 10
# Ranks of the simple path: a word found in a field of weight A counts most. PostgreSQL's SearchRank uses its own
# default weights for A-D (1.0, 0.4, 0.2, 0.1); the simple path uses the same, so both order alike.
WEIGHTS = {"A": 1.0, "B": 0.4, "C": 0.2, "D": 0.1}
EXACT_IDENTIFIER_BONUS = 10.0
PREFIX_IDENTIFIER_BONUS = 1.0


@dataclass(frozen=True)
class Source:
    """One searchable model: how to find what the user may see, which fields to match and how to show a row."""

    kind: str
    queryset: Callable[[User], QuerySet]
    fields: tuple[tuple[str, str], ...]  # (field path, weight A-D)
    identifiers: tuple[str, ...]
    show: Callable[[Any], dict[str, str]]


@dataclass(frozen=True)
class Kind:
    key: str
    label: str


KINDS = (
    Kind("usecases", "Use cases"),
    Kind("datasets", "Datasets"),
    Kind("models", "Models"),
    Kind("reviews", "Reviews"),
    Kind("reports", "Reports"),
    Kind("requirements", "Requirements"),
    Kind("risks", "Risks"),
)
KIND_KEYS = tuple(kind.key for kind in KINDS)
KIND_CHOICES = [(kind.key, kind.label) for kind in KINDS]


def terms_of(query: str) -> list[str]:
    """The words of a query (letters, digits, underscore), at most ``MAX_TERMS``: nothing else reaches SQL."""
    return re.findall(r"\w+", query or "", flags=re.UNICODE)[:MAX_TERMS]


def _usecases(user: User) -> QuerySet:
    from apps.usecases.permissions import visible_to

    return visible_to(user)


def _datasets(user: User) -> QuerySet:
    from apps.datasets.permissions import visible_to

    return visible_to(user).select_related("usecase")


def _model_versions(user: User) -> QuerySet:
    from apps.training.permissions import models_visible_to

    return models_visible_to(user).select_related("usecase")


def _third_party(user: User) -> QuerySet:
    from apps.thirdparty.permissions import visible_to

    return visible_to(user)


def _reviews(user: User) -> QuerySet:
    from apps.ethics.permissions import visible_to

    return visible_to(user)


def _reports(user: User) -> QuerySet:
    from apps.reports.permissions import visible_to

    return visible_to(user)


def _show_usecase(item: Any) -> dict[str, str]:
    return {
        "title": f"{item.reference} {item.title}",
        "subtitle": f"{item.get_status_display()} · {item.get_risk_tier_display()} risk · {item.purpose}",
        "url": reverse("usecases:detail", args=[item.id]),
    }


def _show_dataset(item: Any) -> dict[str, str]:
    return {
        "title": item.name,
        "subtitle": f"Dataset of {item.usecase.reference} {item.usecase.title}",
        "url": reverse("datasets:detail", args=[item.id]),
    }


def _show_model_version(item: Any) -> dict[str, str]:
    return {
        "title": f"{item.usecase.reference} model v{item.number}",
        "subtitle": f"Trained in Attest for {item.usecase.title} · sha256 {item.sha256[:12]}…",
        "url": reverse("evaluation:model", args=[item.id]),
    }


def _show_third_party(item: Any) -> dict[str, str]:
    return {
        "title": f"{item.supplier} {item.name} {item.version}",
        "subtitle": f"Third-party model ({item.get_status_display().lower()}) in {item.usecase.reference}",
        "url": reverse("thirdparty:detail", args=[item.id]),
    }


def _show_review(item: Any) -> dict[str, str]:
    return {
        "title": f"{item.reference} {item.get_kind_display().lower()} review",
        "subtitle": f"{item.get_status_display()} · {item.usecase.reference} {item.usecase.title}",
        "url": reverse("ethics:review", args=[item.id]),
    }


def _show_report(item: Any) -> dict[str, str]:
    state = "superseded" if item.superseded_by_id else item.get_status_display().lower()
    return {
        "title": f"{item.get_kind_display()}: {item.subject_label}",
        "subtitle": f"{item.reference} · version {item.version} · {state}",
        "url": reverse("reports:detail", args=[item.id]),
    }


SOURCES: dict[str, tuple[Source, ...]] = {
    "usecases": (
        Source(
            "usecases",
            _usecases,
            (("reference", "A"), ("title", "A"), ("purpose", "B"), ("description", "C"), ("risk_justification", "D")),
            ("reference",),
            _show_usecase,
        ),
    ),
    "datasets": (Source("datasets", _datasets, (("name", "A"), ("description", "C")), (), _show_dataset),),
    "models": (
        Source(
            "models",
            _model_versions,
            (("usecase__reference", "B"), ("usecase__title", "B")),
            ("sha256",),
            _show_model_version,
        ),
        Source(
            "models",
            _third_party,
            (("name", "A"), ("supplier", "A"), ("version", "B"), ("intended_use", "C")),
            ("documentation_sha256",),
            _show_third_party,
        ),
    ),
    "reviews": (
        Source(
            "reviews",
            _reviews,
            (("reference", "A"), ("usecase__reference", "B"), ("usecase__title", "B")),
            ("reference",),
            _show_review,
        ),
    ),
    "reports": (
        Source(
            "reports",
            _reports,
            (("reference", "A"), ("subject_label", "A"), ("kind", "C")),
            ("reference", "sha256"),
            _show_report,
        ),
    ),
}


def uses_full_text() -> bool:
    return connection.vendor == "postgresql"


def _identifier_q(source: Source, query: str) -> Q | None:
    text = query.strip()
    if not source.identifiers or len(text) < MIN_QUERY:
        return None
    return reduce(or_, (Q(**{f"{name}__istartswith": text}) for name in source.identifiers))


def _identifier_bonus(source: Source, query: str) -> Any:
    text = query.strip()
    whens = []
    for name in source.identifiers:
        whens.append(When(**{f"{name}__iexact": text}, then=Value(EXACT_IDENTIFIER_BONUS)))
        whens.append(When(**{f"{name}__istartswith": text}, then=Value(PREFIX_IDENTIFIER_BONUS)))
    return Case(*whens, default=Value(0.0), output_field=FloatField())


def _full_text(source: Source, queryset: QuerySet, query: str, limit: int) -> list[tuple[float, Any]]:
    terms = terms_of(query)
    if not terms:
        return []
    vector = reduce(add, (SearchVector(name, weight=weight, config="english") for name, weight in source.fields))
    # A raw tsquery of prefixes ("lett:* & draft:*"), so words being typed match; terms_of lets only \w through.
    tsquery = SearchQuery(" & ".join(f"{term}:*" for term in terms), search_type="raw", config="english")
    matches = Q(search_document=tsquery)
    identifier = _identifier_q(source, query)
    if identifier is not None:
        matches |= identifier
    annotated = queryset.annotate(search_document=vector).filter(matches)
    rank = SearchRank(vector, tsquery)
    if source.identifiers:
        annotated = annotated.annotate(search_rank=rank + _identifier_bonus(source, query))
    else:
        annotated = annotated.annotate(search_rank=rank)
    rows = annotated.order_by(F("search_rank").desc(), "-created_at")[:limit]
    return [(float(row.search_rank), row) for row in rows]


def _value(item: Any, path: str) -> str:
    for part in path.split("__"):
        item = getattr(item, part, None)
        if item is None:
            return ""
    return str(item)


# The simple path reads at most this many candidates per source before ranking them in Python.
SIMPLE_CANDIDATES = 500


def _simple(source: Source, queryset: QuerySet, query: str, limit: int) -> list[tuple[float, Any]]:
    terms = terms_of(query)
    if not terms:
        return []
    every_term = reduce(
        and_, (reduce(or_, (Q(**{f"{name}__icontains": term}) for name, _ in source.fields)) for term in terms)
    )
    identifier = _identifier_q(source, query)
    matches = every_term | identifier if identifier is not None else every_term
    text = query.strip().lower()
    ranked = []
    for item in queryset.filter(matches).order_by("-created_at")[:SIMPLE_CANDIDATES]:
        score = 0.0
        for term in terms:
            lowered = term.lower()
            score += max(
                (WEIGHTS[weight] for name, weight in source.fields if lowered in _value(item, name).lower()),
                default=0.0,
            )
        for name in source.identifiers:
            value = _value(item, name).lower()
            if value and value == text:
                score += EXACT_IDENTIFIER_BONUS
            elif value and value.startswith(text):
                score += PREFIX_IDENTIFIER_BONUS
        ranked.append((score, item))
    ranked.sort(key=lambda pair: -pair[0])  # stable: equal scores stay newest first
    return ranked[:limit]


def _call_adapter(module: str, function: str, user: User, query: str, limit: int, organisation: Any) -> list[dict]:
    """Results of another app's search selector (imported late: those apps import this one's neighbours)."""
    search = getattr(importlib.import_module(module), function)
    return list(search(user, query, limit=limit, organisation=organisation))[:limit]


def _requirements(user: User, query: str, limit: int, organisation: Any) -> list[dict[str, Any]]:
    rows = _call_adapter("apps.compliance.selectors", "search_requirements", user, query, limit, organisation)
    return [
        {
            "kind": "requirements",
            "id": str(row.get("id", "")),
            "title": f"{row.get('id', '')} {row.get('title', '')}".strip(),
            "subtitle": " · ".join(str(part) for part in (row.get("framework_name"), row.get("text")) if part),
            "url": str(row.get("url", "")),
            "rank": float(len(rows) - index),
        }
        for index, row in enumerate(rows)
    ]


def _risks(user: User, query: str, limit: int, organisation: Any) -> list[dict[str, Any]]:
    rows = _call_adapter("apps.portfolio.selectors", "search_risks", user, query, limit, organisation)
    results = []
    for index, row in enumerate(rows):
        where = row.get("usecase_reference") or ""
        source = "from a DPIA" if row.get("source") == "dpia" else "added directly"
        results.append(
            {
                "kind": "risks",
                "id": str(row.get("id") or row.get("reference") or ""),
                "title": " ".join(str(part) for part in (row.get("reference"), row.get("title")) if part),
                "subtitle": " · ".join(
                    part for part in (f"score {row['score']}" if row.get("score") else "", source, where) if part
                ),
                "url": str(row.get("url", "")),
                "rank": float(len(rows) - index),
            }
        )
    return results


ADAPTERS: dict[str, Callable[[User, str, int, Any], list[dict[str, Any]]]] = {
    "requirements": _requirements,
    "risks": _risks,
}


def search(
    user: User,
    query: str,
    *,
    organisation: Organisation | None = None,
    kinds: tuple[str, ...] | None = None,
    limit: int = DEFAULT_LIMIT,
    full_text: bool | None = None,
) -> list[dict[str, Any]]:
    """Groups of results, one per kind (in ``KINDS`` order, empty groups left out), best match first.

    ``organisation`` narrows to one organisation (it must be one the user may see: otherwise nothing is found, since
    every source starts from what the user may see). ``full_text`` forces a path (tests); by default PostgreSQL uses
    full-text search and other databases the simple match. Each group: {"kind", "label", "results", "more"}, each
    result {"kind", "id", "title", "subtitle", "url", "rank"}.
    """
    query = (query or "").strip()[:MAX_QUERY]
    if len(query) < MIN_QUERY or not terms_of(query):
        return []
    use_full_text = uses_full_text() if full_text is None else full_text
    match = _full_text if use_full_text else _simple
    groups = []
    for kind in KINDS:
        if kinds is not None and kind.key not in kinds:
            continue
        if kind.key in ADAPTERS:
            results = ADAPTERS[kind.key](user, query, limit + 1, organisation)
        else:
            ranked: list[tuple[float, Any, Source]] = []
            for source in SOURCES[kind.key]:
                queryset = source.queryset(user)
                if organisation is not None:
                    queryset = queryset.filter(organisation_id=organisation.id)
                ranked.extend((rank, item, source) for rank, item in match(source, queryset, query, limit + 1))
            ranked.sort(key=lambda triple: -triple[0])
            results = [
                {"kind": kind.key, "id": str(item.id), **source.show(item), "rank": round(rank, 6)}
                for rank, item, source in ranked
            ]
        if results:
            groups.append(
                {"kind": kind.key, "label": kind.label, "results": results[:limit], "more": len(results) > limit}
            )
    return groups
