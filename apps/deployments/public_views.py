"""The public page of a deployment: an affected person contests a decision or gives feedback, without signing in.

Reachable only while the deployment is active (any other slug answers 404). Submissions are throttled per client
address and per deployment with the sign-in machinery's keyed counters (``apps.accounts.throttling``), so the
database holds HMACs of the keys, never an address. No session is opened and no message is flashed: the thank-you
page is reached by a redirect that names only the submission. A field hidden from people (the honeypot) catches
form-filling robots, who are thanked and stored nowhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django import forms
from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from apps.accounts.throttling import ThrottleKey, attempt_begin, client_address
from apps.core.errors import AttestError
from apps.deployments.feedback import (
    BODY_MAX,
    CONTACT_MAX,
    REFERENCE_MAX,
    feedback_reference,
    feedback_submit_public,
)
from apps.deployments.models import Deployment, Feedback

SCOPE = "public_feedback"


@dataclass(frozen=True)
class PublicFeedbackKey(ThrottleKey):
    """A counter of public submissions: per client address (``address``) or per deployment (``deployment``)."""

    @property
    def limit(self) -> int:
        return {
            "address": settings.PUBLIC_FEEDBACK_ADDRESS_LIMIT,
            "deployment": settings.PUBLIC_FEEDBACK_DEPLOYMENT_LIMIT,
        }[self.kind]


def throttle_keys(deployment: Deployment, address: str | None) -> list[ThrottleKey]:
    return [
        PublicFeedbackKey(SCOPE, "address", address or "unknown"),
        PublicFeedbackKey(SCOPE, "deployment", str(deployment.id)),
    ]


class PublicFeedbackForm(forms.Form):
    kind = forms.ChoiceField(
        label="What would you like to do?",
        choices=[
            (Feedback.Kind.CONTESTATION, "Contest a decision: ask for it to be reviewed by a person"),
            (Feedback.Kind.FEEDBACK, "Give feedback about this system"),
        ],
        widget=forms.RadioSelect,
        initial=Feedback.Kind.CONTESTATION,
    )
    decision_reference = forms.CharField(
        label="Decision reference (if you have one)",
        max_length=REFERENCE_MAX,
        required=False,
        help_text="The reference on the letter or message that told you about the decision.",
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
    body = forms.CharField(
        label="Your message",
        max_length=BODY_MAX,
        help_text=f"Tell us what happened and why you think the decision is wrong. At most {BODY_MAX} characters.",
        widget=forms.Textarea(attrs={"rows": 8}),
    )
    contact = forms.CharField(
        label="How can we reach you? (optional)",
        max_length=CONTACT_MAX,
        required=False,
        help_text="An e-mail address or telephone number, only if you want a reply. Leave it empty to stay anonymous.",
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
    # The honeypot: hidden from people and from assistive technology; robots fill every field they find.
    website = forms.CharField(
        label="Leave this field empty",
        required=False,
        widget=forms.TextInput(attrs={"autocomplete": "off", "tabindex": "-1"}),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in ("decision_reference", "body", "contact"):
            # The help text (partials/form_field.html gives it this id) is read with the field.
            self.fields[name].widget.attrs["aria-describedby"] = f"{self[name].auto_id}_help"


def _active(slug: str) -> Deployment:
    return get_object_or_404(
        Deployment.objects.select_related("organisation", "usecase", "model_version"),
        public_slug=slug,
        status=Deployment.Status.ACTIVE,
    )


def _explanation_url(deployment: Deployment) -> str | None:
    """The page explaining how the system decides and the reasons each person receives, linked from the form when the
    use case makes decisions based solely on automated processing (GDPR Art. 22)."""
    if not deployment.usecase.automated_decisions:
        return None
    return reverse("public:explanation", kwargs={"slug": deployment.public_slug})


def _context(deployment: Deployment, **extra: Any) -> dict[str, Any]:
    return {
        "deployment": deployment,
        "organisation": deployment.organisation,
        "usecase": deployment.usecase,
        "retention_days": settings.FEEDBACK_RETENTION_DAYS,
        "explanation_url": _explanation_url(deployment),
        "limits": {"body": BODY_MAX, "reference": REFERENCE_MAX, "contact": CONTACT_MAX},
        **extra,
    }


@never_cache
@require_http_methods(["GET", "POST"])
def public_feedback(request: HttpRequest, slug: str) -> HttpResponse:
    deployment = _active(slug)
    if request.method == "GET":
        return render(request, "deployments/public/feedback.html", _context(deployment, form=PublicFeedbackForm()))
    wait = attempt_begin(throttle_keys(deployment, client_address(request)))
    if wait:
        minutes = max(1, round(wait / 60))
        return render(
            request,
            "deployments/public/feedback.html",
            _context(deployment, form=PublicFeedbackForm(request.POST), throttled_minutes=minutes),
            status=429,
        )
    form = PublicFeedbackForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        if data.get("website"):
            return render(request, "deployments/public/thanks.html", _context(deployment, reference=None))
        try:
            feedback = feedback_submit_public(
                deployment=deployment,
                kind=data["kind"],
                body=data["body"],
                decision_reference=data["decision_reference"],
                contact=data["contact"],
            )
        except AttestError as error:
            details = error.details if isinstance(error.details, dict) else {}
            for field, problems in details.items():
                target = field if field in form.fields else None
                for problem in problems if isinstance(problems, list) else [problems]:
                    form.add_error(target, str(problem))
            if not details:
                form.add_error(None, error.message)
        else:
            return redirect("public:thanks", slug=slug, feedback_id=feedback.id)
    return render(request, "deployments/public/feedback.html", _context(deployment, form=form), status=400)


@never_cache
@require_http_methods(["GET"])
def public_thanks(request: HttpRequest, slug: str, feedback_id: Any) -> HttpResponse:
    deployment = _active(slug)
    feedback = Feedback.objects.filter(id=feedback_id, deployment=deployment, source=Feedback.Source.PUBLIC).first()
    if feedback is None:
        raise Http404
    return render(
        request,
        "deployments/public/thanks.html",
        _context(deployment, reference=feedback_reference(feedback), kind=feedback.kind),
    )


@never_cache
@require_http_methods(["GET"])
def public_explanation(request: HttpRequest, slug: str) -> HttpResponse:
    """How the deployed model decides, in plain words: what it is for, what information about a person it reads, and
    how to read the reasons that come with each decision (``templates/evaluation/_person_explanation.html``)."""
    deployment = _active(slug)
    features = list((deployment.model_version.training_run.spec or {}).get("features") or [])
    return render(request, "deployments/public/explanation.html", _context(deployment, features=features))
