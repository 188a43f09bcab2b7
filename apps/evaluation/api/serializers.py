from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.evaluation.models import Evaluation
from apps.jobs.api.serializers import JobStateSerializerMixin

NUMBER_OR_NULL = {"type": "number", "nullable": True}
INTERVAL = {"type": "array", "items": NUMBER_OR_NULL, "nullable": True, "description": "95% interval [low, high]"}

# The sections' documented keys; the engine may add diagnostics beside them (additionalProperties).
EXPLANATIONS_SCHEMA = {
    "type": "object",
    "nullable": True,
    "description": "Global explanations on the held-out rows (null for multiclass models or before they existed): "
    "aggregates only, never one person's attributions. Groups under the policy's minimum size carry their size only.",
    "properties": {
        "method": {"type": "string", "enum": ["exact_linear_shapley", "integrated_gradients"]},
        "rows": {"type": "integer"},
        "baseline_logit": {"type": "number"},
        "baseline": {
            "type": "array",
            "items": {"type": "number"},
            "description": "The mean encoded held-out input that attributions and reason codes are measured from.",
        },
        "features": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "feature": {"type": "string"},
                    "mean_abs_attribution": {"type": "number"},
                    "mean_attribution": {"type": "number"},
                    "permutation_importance": {
                        "type": "object",
                        "properties": {
                            "metric": {"type": "string"},
                            "mean": {"type": "number"},
                            "interval": INTERVAL,
                            "repeats": {"type": "integer"},
                        },
                    },
                },
            },
        },
        "by_group": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "attribute": {"type": "string"},
                    "group": {"type": "string"},
                    "rows": {"type": "integer"},
                    "too_small": {"type": "boolean"},
                    "features": {
                        "type": "array",
                        "nullable": True,
                        "items": {
                            "type": "object",
                            "properties": {"feature": {"type": "string"}, "mean_abs_attribution": {"type": "number"}},
                        },
                    },
                    "largest_gap": {
                        "type": "object",
                        "nullable": True,
                        "properties": {"feature": {"type": "string"}, "ratio_to_overall": {"type": "number"}},
                    },
                },
                "additionalProperties": True,
            },
        },
        "notes": {"type": "array", "items": {"type": "string"}},
    },
    "additionalProperties": True,
}
SHARE = {
    "rows": {"type": "integer"},
    "changed_share": NUMBER_OR_NULL,
    "interval": INTERVAL,
    "too_small": {"type": "boolean"},
}
COUNTERFACTUAL_SCHEMA = {
    "type": "array",
    "description": "Per sensitive attribute and declared proxy: the share of held-out decisions that change when only "
    "it changes, overall and per group (Wilson 95% intervals); not_a_feature when the model does not use it.",
    "items": {
        "type": "object",
        "properties": {
            "attribute": {"type": "string"},
            "not_a_feature": {"type": "boolean"},
            "not_in_data": {"type": "boolean"},
            **SHARE,
            "values_tried": {"type": "integer"},
            "threshold": {"type": "number"},
            "by_group": {
                "type": "array",
                "items": {"type": "object", "properties": {"group": {"type": "string"}, **SHARE}},
            },
        },
        "required": ["attribute"],
    },
}
METRICS_BY_NAME = {"type": "object", "additionalProperties": NUMBER_OR_NULL}
ROBUSTNESS_SCHEMA = {
    "type": "object",
    "nullable": True,
    "description": "Accuracy and the policy's fairness metrics (worst grouping) on the held-out rows, unperturbed and "
    "under each perturbation and level.",
    "properties": {
        "rows": {"type": "integer"},
        "seed": {"type": "integer"},
        "baseline": {
            "type": "object",
            "properties": {"accuracy": NUMBER_OR_NULL, "fairness": METRICS_BY_NAME},
        },
        "perturbations": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "kind": {"type": "string", "enum": ["gaussian_noise", "category_flip", "missing", "fgsm", "pgd"]},
                    "level": {"type": "number"},
                    "accuracy": NUMBER_OR_NULL,
                    "accuracy_drop": NUMBER_OR_NULL,
                    "fairness": METRICS_BY_NAME,
                    "fairness_change": METRICS_BY_NAME,
                },
                "additionalProperties": True,
            },
        },
        "skipped": {
            "type": "array",
            "items": {"type": "object", "properties": {"kind": {"type": "string"}, "reason": {"type": "string"}}},
        },
        "notes": {"type": "array", "items": {"type": "string"}},
    },
    "additionalProperties": True,
}
ROBUSTNESS_GATES_SCHEMA = {
    "type": "array",
    "description": "The policy's robustness gates judged: value is the worsening bounded (accuracy drop, rise of a "
    "difference, fall of a ratio); unknown (cannot be evaluated) is never a pass.",
    "items": {
        "type": "object",
        "properties": {
            "kind": {"type": "string"},
            "level": {"type": "number"},
            "metric": {"type": "string"},
            "max": {"type": "number"},
            "value": NUMBER_OR_NULL,
            "status": {"type": "string", "enum": ["pass", "fail", "unknown"]},
            "reason": {"type": "string"},
        },
    },
}


class EvaluationSerializer(JobStateSerializerMixin, serializers.ModelSerializer):
    model_version = serializers.UUIDField(source="model_version_id", read_only=True)
    dataset_version = serializers.UUIDField(source="dataset_version_id", read_only=True)
    job = serializers.UUIDField(source="job_id", read_only=True, allow_null=True)
    explanations = serializers.SerializerMethodField()
    counterfactual = serializers.SerializerMethodField()
    robustness = serializers.SerializerMethodField()
    robustness_gates = serializers.SerializerMethodField()

    @extend_schema_field(EXPLANATIONS_SCHEMA)
    def get_explanations(self, item: Evaluation) -> dict[str, Any] | None:
        return (item.results or {}).get("explanations")

    @extend_schema_field(COUNTERFACTUAL_SCHEMA)
    def get_counterfactual(self, item: Evaluation) -> list[dict[str, Any]]:
        return (item.results or {}).get("counterfactual") or []

    @extend_schema_field(ROBUSTNESS_SCHEMA)
    def get_robustness(self, item: Evaluation) -> dict[str, Any] | None:
        return (item.results or {}).get("robustness")

    @extend_schema_field(ROBUSTNESS_GATES_SCHEMA)
    def get_robustness_gates(self, item: Evaluation) -> list[dict[str, Any]]:
        return (item.results or {}).get("robustness_gates") or []

    class Meta:
        model = Evaluation
        fields = [
            "id",
            "model_version",
            "dataset_version",
            "kind",
            "status",
            "seed",
            "policy",
            "policy_revision",
            "verdict",
            "results",
            "audit",
            "privacy_cost",
            "explanations",
            "counterfactual",
            "robustness",
            "robustness_gates",
            "job",
            "error",
            "created_at",
        ]


class EvaluationRequestSerializer(serializers.Serializer):
    model_version = serializers.UUIDField()
    dataset_version = serializers.UUIDField(
        required=False,
        allow_null=True,
        default=None,
        help_text="An external test set; default: the run's held-out rows.",
    )
    seed = serializers.IntegerField(min_value=0, default=0)
