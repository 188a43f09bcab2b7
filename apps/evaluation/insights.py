"""Explanations, the counterfactual probe and robustness of one evaluation, as the evaluation page, the board's review
page and the reports show them: the same rows, words and charts (apps.core.charts) in the browser and the PDF.

Reads ``Evaluation.results`` only. Groups the engine marked too small carry their size and nothing else; they are
shown as "too few rows", never with a figure.
"""

from __future__ import annotations

from itertools import groupby
from typing import Any

from apps.core import charts
from apps.core.forms import chart_html
from apps.usecases.vocab import metric_label
from workers.engine.robustness.gates import KIND_LABELS, KINDS

TOO_FEW = "too few rows"
# Features drawn in the per-group comparison: the most important ones (every feature stays in the table).
GROUP_CHART_FEATURES = 10

METHODS = {
    "exact_linear_shapley": (
        "Exact Shapley values (linear model)",
        "For a linear model a feature's Shapley value is exact: its weight times how far the row's value is from the "
        "average held-out row, in log-odds; the bars average the size of these contributions over the held-out rows.",
    ),
    "integrated_gradients": (
        "Integrated Gradients",
        "Each feature's contribution is the model's gradient accumulated along a straight line from the average "
        "held-out row to the row, so a row's contributions add up to its log-odds minus the average row's; the bars "
        "average their size over the held-out rows.",
    ),
}

LEVEL_UNITS = {
    "gaussian_noise": "noise scale (standard deviations of each numeric feature)",
    "category_flip": "share of categorical cells flipped",
    "missing": "share of cells made missing",
    "fgsm": "radius (standard deviations of each continuous feature)",
    "pgd": "radius (standard deviations of each continuous feature)",
}


def kind_label(kind: str) -> str:
    label = KIND_LABELS.get(kind, kind.replace("_", " "))
    return label[:1].upper() + label[1:]


def _gap_words(feature: str, ratio: float) -> str:
    more_or_less = "more" if ratio >= 1 else "less"
    return f"{feature} weighs {more_or_less} here: {ratio:.2f} times its mean |attribution| over all rows"


def explanation_section(results: dict[str, Any]) -> dict[str, Any] | None:
    """The global explanation: features with both measures, their chart, and the per-group comparison."""
    explanations = results.get("explanations")
    if not explanations or not explanations.get("features"):
        return None
    method_label, method_sentence = METHODS.get(
        explanations.get("method", ""), (str(explanations.get("method", "")).replace("_", " "), "")
    )
    features = []
    for entry in explanations["features"]:
        importance = entry.get("permutation_importance") or {}
        low, high = (importance.get("interval") or [None, None])[:2]
        features.append(
            {
                "feature": entry["feature"],
                "mean_abs_attribution": entry["mean_abs_attribution"],
                "mean_attribution": entry.get("mean_attribution"),
                "importance": importance.get("mean"),
                "interval": [low, high],
            }
        )
    chart = charts.importance_chart(
        [charts.Importance(f["feature"], f["mean_abs_attribution"], f["importance"], *f["interval"]) for f in features],
        title=f"What the model weighs: {method_label} and permutation importance",
    )
    overall = {f["feature"]: f["mean_abs_attribution"] for f in features}
    drawn = [f["feature"] for f in features[:GROUP_CHART_FEATURES]]
    attributes = []
    for attribute, entries in groupby(explanations.get("by_group") or [], key=lambda e: e["attribute"]):
        groups = []
        for entry in entries:
            values = {f["feature"]: f["mean_abs_attribution"] for f in entry.get("features") or []}
            gap = entry.get("largest_gap") or None
            groups.append(
                {
                    "group": entry["group"],
                    "rows": entry["rows"],
                    "too_small": bool(entry.get("too_small")),
                    "values": values,
                    "gap_feature": gap["feature"] if gap else None,
                    "gap_ratio": gap["ratio_to_overall"] if gap else None,
                    "gap_words": _gap_words(gap["feature"], gap["ratio_to_overall"]) if gap else "",
                }
            )
        group_chart = charts.group_comparison_chart(
            drawn,
            [
                charts.GroupValues(
                    str(g["group"]),
                    None if g["too_small"] else tuple(g["values"].get(name, 0.0) for name in drawn),
                    g["rows"],
                )
                for g in groups
            ],
            overall=tuple(overall[name] for name in drawn),
            title=f"Mean |attribution| by {attribute}: does a feature weigh more for one group?",
            hidden_label=TOO_FEW,
        )
        attributes.append({"attribute": attribute, "groups": groups, "chart": chart_html(group_chart)})
    return {
        "method": explanations.get("method"),
        "method_label": method_label,
        "method_sentence": method_sentence,
        "rows": explanations.get("rows"),
        "positive_class": explanations.get("positive_class"),
        "repeats": (explanations["features"][0].get("permutation_importance") or {}).get("repeats"),
        "features": features,
        "chart": chart_html(chart),
        "attributes": attributes,
        "notes": explanations.get("notes") or [],
        "min_group_size": results.get("min_group_size"),
    }


def counterfactual_section(results: dict[str, Any], policy: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Per probed attribute: the share of decisions that change when only it changes, overall and per group."""
    proxies = set((policy or {}).get("proxies") or [])
    out = []
    for entry in results.get("counterfactual") or []:
        role = "declared proxy" if entry["attribute"] in proxies else "sensitive attribute"
        if entry.get("not_a_feature"):
            out.append({"attribute": entry["attribute"], "role": role, "used": False, **entry})
            continue
        groups = entry.get("by_group") or []
        bars = [
            charts.Bar("all rows", entry.get("changed_share"), *(entry.get("interval") or [None, None]), absent=TOO_FEW)
        ] + [
            charts.Bar(
                str(g["group"]),
                None if g.get("too_small") else g.get("changed_share"),
                *((g.get("interval") or [None, None]) if not g.get("too_small") else [None, None]),
                absent=TOO_FEW,
            )
            for g in groups
        ]
        chart = charts.bar_chart(
            bars, title=f"Decisions that change when only {entry['attribute']} changes (95% intervals)"
        )
        out.append(
            {
                "attribute": entry["attribute"],
                "role": role,
                "used": True,
                "rows": entry.get("rows"),
                "changed_share": entry.get("changed_share"),
                "interval": entry.get("interval"),
                "too_small": bool(entry.get("too_small")),
                "values_tried": entry.get("values_tried"),
                "groups": groups,
                "chart": chart_html(chart),
            }
        )
    return out


def robustness_gate_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            **gate,
            "label": f"{metric_label(gate['metric'])} under {KIND_LABELS.get(gate['kind'], gate['kind'])} at "
            f"{float(gate['level']):g}",
            "max_text": f"{float(gate['max']):g}",
        }
        for gate in results.get("robustness_gates") or []
    ]


def robustness_section(results: dict[str, Any]) -> dict[str, Any] | None:
    """Per perturbation kind: accuracy and each gated fairness metric against the level (level 0 = unperturbed)."""
    suite = results.get("robustness")
    if not suite or "baseline" not in suite:
        return None
    baseline = suite["baseline"]
    metrics = list((baseline.get("fairness") or {}).keys())
    order = {kind: index for index, kind in enumerate(KINDS)}
    entries = sorted(suite.get("perturbations") or [], key=lambda e: (order.get(e["kind"], 99), e["level"]))
    kinds = []
    for kind, group in groupby(entries, key=lambda e: e["kind"]):
        levels = list(group)
        curves = [
            charts.Curve(
                "Accuracy",
                ((0.0, baseline.get("accuracy")), *((float(e["level"]), e.get("accuracy")) for e in levels)),
            )
        ] + [
            charts.Curve(
                metric_label(metric),
                (
                    (0.0, (baseline.get("fairness") or {}).get(metric)),
                    *((float(e["level"]), (e.get("fairness") or {}).get(metric)) for e in levels),
                ),
                dashed=True,
            )
            for metric in metrics
        ]
        chart = charts.level_chart(
            curves,
            title=f"{kind_label(kind)}: accuracy and fairness by level",
            x_label=LEVEL_UNITS.get(kind, "level"),
            max_value=1.0,
        )
        kinds.append(
            {
                "kind": kind,
                "label": kind_label(kind),
                "unit": LEVEL_UNITS.get(kind, "level"),
                "chart": chart_html(chart),
                "rows": [
                    {
                        "level": e["level"],
                        "level_text": f"{float(e['level']):g}",
                        "accuracy": e.get("accuracy"),
                        "accuracy_drop": e.get("accuracy_drop"),
                        "fairness": [(e.get("fairness") or {}).get(m) for m in metrics],
                    }
                    for e in levels
                ],
            }
        )
    return {
        "baseline": baseline,
        "metrics": [(m, metric_label(m)) for m in metrics],
        "baseline_fairness": [(metric_label(m), (baseline.get("fairness") or {}).get(m)) for m in metrics],
        "kinds": kinds,
        "skipped": [{**s, "label": kind_label(s["kind"])} for s in suite.get("skipped") or []],
        "notes": suite.get("notes") or [],
        "rows": suite.get("rows"),
        "gates": robustness_gate_rows(results),
    }


def comparison_label(row: dict[str, Any]) -> str:
    """A model in the comparison of an original with its candidates: "v3 (original)", "v4 (thresholds)"."""
    return f"v{row['model'].number} ({row['method'] or 'original'})"


def comparison_chart(compared: dict[str, Any]) -> str:
    """Accuracy against the policy's main disparity metric for the original and each candidate
    (``selectors.comparison``), as the model page, the evaluation page, the review page and the reports draw it."""
    metric = metric_label(compared["metric"])
    points = []
    for row in compared["rows"]:
        disparity = row["disparity"] or {}
        if row["accuracy"] is None or disparity.get("value") is None:
            continue
        low, high = (disparity.get("ci") or [None, None])[:2]
        points.append(
            charts.Point(
                comparison_label(row), disparity["value"], row["accuracy"], low, high, highlight=row["current"]
            )
        )
    return charts.scatter_chart(
        points,
        title=f"Accuracy against {metric.lower()}: the original and its mitigated candidates",
        x_label=metric,
        y_label="Accuracy",
        x_better="right" if compared["direction"] == "min" else "left",
    )


def insights(evaluation: Any) -> dict[str, Any]:
    """Everything the three sections show for one evaluation (empty parts are None or [])."""
    results = evaluation.results or {}
    return {
        "explanations": explanation_section(results),
        "counterfactual": counterfactual_section(results, evaluation.policy),
        "robustness": robustness_section(results),
        "notes": results.get("notes") or [],
        "verdicts": {"fairness": results.get("fairness_verdict"), "robustness": results.get("robustness_verdict")},
    }
