"""The third-party models of a use case, as a section other pages (the ethics review page) include."""

from __future__ import annotations

from typing import Any

from django import template

from apps.usecases.models import UseCase

register = template.Library()


@register.inclusion_tag("thirdparty/_review_section.html")
def third_party_section(usecase: UseCase) -> dict[str, Any]:
    return {"models": list(usecase.third_party_models.all())}


@register.inclusion_tag("thirdparty/_usecase_section.html", takes_context=True)
def usecase_third_party_section(context: dict[str, Any], usecase: UseCase) -> dict[str, Any]:
    from apps.thirdparty.permissions import may_record_for

    user = context["request"].user
    return {
        "usecase": usecase,
        "models": list(usecase.third_party_models.all()),
        "may_record": usecase.status != UseCase.Status.RETIRED and may_record_for(user, usecase),
    }
