"""The monitoring-plan form of a use case's policies: which monitors run, their thresholds, the window, the minimum
rows, and whether raw production rows are kept (and for how long). Saving makes a use-case revision
(``services.usecase_set_monitoring_plan``); the engine validates the plan (``workers.engine.monitoring.monitors``)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render

from apps.core.errors import AttestError
from apps.core.forms import add_service_errors
from apps.deployments.selectors import plan_in_force
from apps.deployments.services import usecase_set_monitoring_plan
from apps.usecases.permissions import can as usecase_can
from apps.usecases.permissions import visible_to as usecases_visible_to

FAMILY_LABELS = {
    "data_drift": "Data drift (each feature against the training data)",
    "prediction_drift": "Prediction drift (the scores against training)",
    "data_quality": "Data quality (schema, missing values, ranges, new categories)",
    "performance": "Performance (once labels arrive)",
    "fairness": "Fairness drift (each gated metric per group, against the evaluation)",
    "privacy": "Privacy compliance (consent withdrawn, retention, budget)",
}
SETTING_LABELS = {
    "psi_warn": ("PSI warning level", "Population stability index from which a feature's drift warns."),
    "psi_alert": ("PSI alert level", "Population stability index from which drift fails (opens a critical alert)."),
    "ks_pvalue": ("Significance level", "p-value below which the Kolmogorov-Smirnov or chi-square test warns."),
    "missing_increase": ("Missing values: tolerated increase", "Share above the training's missing share (0 to 1)."),
    "out_of_range": ("Out of range: tolerated share", "Share of values outside the training's range (0 to 1)."),
    "new_categories": ("New categories: tolerated share", "Share of values training never saw (0 to 1)."),
    "metric": ("Metric", "The performance metric watched."),
    "max_drop": ("Largest drop allowed", "Against the evaluation's value (0 to 1)."),
    "max_increase": ("Largest worsening allowed", "Of each fairness metric and group rate, against the evaluation."),
    "withdrawn_share": (
        "Consent withdrawn: largest share",
        "Share of the people in the training data who withdrew consent since training (0 to 1).",
    ),
    "budget_remaining_below": (
        "Privacy budget: warn below",
        "Share of the dataset's epsilon cap left (0 to 1).",
    ),
}


class MonitoringPlanForm(forms.Form):
    """One field per setting of the engine's plan; monitors are enabled by a checkbox each."""

    window = forms.ChoiceField(
        label="Window",
        choices=[("week", "ISO week (Monday 00:00 UTC)"), ("day", "Day (UTC)")],
        help_text="Production rows are counted per window; each window is evaluated once it ends.",
    )
    min_rows = forms.IntegerField(
        label="Minimum rows per window",
        min_value=1,
        help_text="Fewer rows give 'insufficient data', never a pass or a fail.",
    )
    min_labelled = forms.IntegerField(
        label="Minimum labelled rows", min_value=1, help_text="For performance and fairness, which need ground truth."
    )
    keep_raw_rows = forms.BooleanField(
        label="Keep raw production rows (encrypted) until their retention date",
        required=False,
        help_text="Otherwise only each window's aggregates are kept.",
    )
    raw_retention_days = forms.IntegerField(
        label="Retention of raw rows and of predictions awaiting labels (days)", min_value=1, max_value=3650
    )

    def __init__(self, *args: Any, plan: dict[str, Any], **kwargs: Any) -> None:
        from workers.engine.monitoring.monitors import MONITOR_FIELDS

        initial = {
            key: plan[key] for key in ("window", "min_rows", "min_labelled", "keep_raw_rows", "raw_retention_days")
        }
        self.families: list[tuple[str, str, list[str]]] = []
        super().__init__(*args, initial=initial, **kwargs)
        for family, rules in MONITOR_FIELDS.items():
            names = []
            for key, rule in rules.items():
                name = f"{family}__{key}"
                value = plan["monitors"][family][key]
                if key == "enabled":
                    self.fields[name] = forms.BooleanField(label="Enabled", required=False, initial=value)
                else:
                    label, help_text = SETTING_LABELS.get(key, (key.replace("_", " ").capitalize(), ""))
                    if rule[0] == "choice":
                        field: forms.Field = forms.ChoiceField(
                            label=label, choices=[(c, c.replace("_", " ")) for c in rule[1]], help_text=help_text
                        )
                    else:
                        field = forms.FloatField(label=label, min_value=rule[1], max_value=rule[2], help_text=help_text)
                    field.initial = value
                    self.fields[name] = field
                names.append(name)
            self.families.append((family, FAMILY_LABELS.get(family, family), names))

    def fieldsets(self) -> list[tuple[str, list[Any]]]:
        return [(label, [self[name] for name in names]) for _family, label, names in self.families]

    def to_plan(self) -> dict[str, Any]:
        data = self.cleaned_data
        plan: dict[str, Any] = {
            key: data[key] for key in ("window", "min_rows", "min_labelled", "keep_raw_rows", "raw_retention_days")
        }
        plan["monitors"] = {}
        for family, _label, names in self.families:
            plan["monitors"][family] = {name.split("__", 1)[1]: data[name] for name in names}
        return plan


@login_required
def monitoring_plan(request: HttpRequest, usecase_id: Any) -> HttpResponse:
    organisation = getattr(request, "organisation", None)
    if organisation is None:
        raise Http404
    usecase = get_object_or_404(usecases_visible_to(request.user).filter(organisation=organisation), id=usecase_id)
    may_change = usecase_can(request.user, "tighten_gate", usecase) and usecase.status != "retired"
    form = MonitoringPlanForm(request.POST or None, plan=plan_in_force(usecase))
    if request.method == "POST":
        if not may_change:
            messages.error(request, "Only the use case's owner or an org admin changes its monitoring plan.")
            return redirect("deployments:plan", usecase_id=usecase.id)
        if form.is_valid():
            try:
                usecase_set_monitoring_plan(actor=request.user, usecase=usecase, plan=form.to_plan())
            except AttestError as exc:
                add_service_errors(request, form, exc)
            else:
                messages.success(request, "Monitoring plan saved as a new revision of the use case.")
                return redirect("usecases:detail", usecase_id=usecase.id)
    return render(
        request,
        "deployments/plan.html",
        {"usecase": usecase, "form": form, "may_change": may_change, "is_default": not usecase.monitoring_plan},
    )
