"""``{% withdrawn_flag model_version %}``: "Trained on data since withdrawn: n people", on the model page, the board's
review page and the deployment page (one count: ``apps.rights.flags.flag_for``)."""

from __future__ import annotations

import logging
from typing import Any

from django import template

from apps.core.errors import AttestError

register = template.Library()
logger = logging.getLogger(__name__)


@register.inclusion_tag("rights/_withdrawn_flag.html")
def withdrawn_flag(model_version: Any) -> dict[str, Any]:
    from apps.rights.flags import flag_for

    if model_version is None:
        return {"flag": None}
    try:
        return {"flag": flag_for(model_version), "model": model_version}
    except AttestError as exc:
        # A tampered or unreadable index must not take the page down; say the count could not be made.
        logger.warning("withdrawn flag of %s: %s", model_version.pk, exc.code)
        return {"flag": None, "model": model_version, "unavailable": exc.message}
