"""The model card's and Annex IV's explanation, robustness and mitigation sections: the same rows and charts as the
evaluation page (apps.evaluation.insights), laid out as report blocks."""

from __future__ import annotations

from typing import Any

from apps.evaluation.insights import TOO_FEW, comparison_chart, comparison_label, insights
from apps.evaluation.selectors import comparison
from apps.reports.content import chart, fmt, note, sub, table, text
from apps.usecases.vocab import metric_label


def explanation_blocks(evaluation: Any) -> list[dict[str, Any]]:
    """Global explanations and the counterfactual probe of the evaluation a report is bound to."""
    if evaluation is None:
        return [text("No finished evaluation.")]
    shown = insights(evaluation)
    blocks: list[dict[str, Any]] = [note(line) for line in shown["notes"]]
    section = shown["explanations"]
    if section is None:
        blocks.append(text("No global explanation was computed for this evaluation."))
    else:
        blocks.append(
            text(
                f"Method: {section['method_label']}. {section['method_sentence']} Contributions are in log-odds of "
                f"'{section['positive_class']}', on {section['rows']} held-out rows. Beside them, permutation "
                "importance: how much accuracy drops when one feature's values are shuffled across the rows, with its "
                f"interval over {section['repeats']} shuffles. Only averages over many rows are kept."
            )
        )
        blocks.append(chart(section["chart"]))
        blocks.append(
            table(
                [
                    "Feature",
                    ("Mean |attribution|", True),
                    ("Permutation importance", True),
                    "Interval",
                ],
                [
                    [
                        f["feature"],
                        f["mean_abs_attribution"],
                        f["importance"],
                        f"[{fmt(f['interval'][0])}, {fmt(f['interval'][1])}]",
                    ]
                    for f in section["features"]
                ],
            )
        )
        for attribute in section["attributes"]:
            blocks.append(sub(f"Explanations by {attribute['attribute']}"))
            blocks.append(chart(attribute["chart"]))
            blocks.append(
                table(
                    ["Group", ("Rows", True), "Largest difference from all rows"],
                    [
                        [
                            g["group"],
                            g["rows"],
                            f"{TOO_FEW} (not shown)"
                            if g["too_small"]
                            else g["gap_words"]
                            if g["gap_feature"]
                            else "no feature stands out",
                        ]
                        for g in attribute["groups"]
                    ],
                )
            )
    if shown["counterfactual"]:
        blocks.append(sub("Counterfactual probe"))
        blocks.append(
            text(
                "For each held-out row the attribute is set to each other value seen, everything else unchanged; a "
                "row counts when its decision changes at any of them (95% Wilson intervals)."
            )
        )
    for probe in shown["counterfactual"]:
        if not probe["used"]:
            blocks.append(text(f"{probe['attribute']} ({probe['role']}): not one of the model's features."))
            continue
        blocks.append(chart(probe["chart"]))
        rows = [
            ["All rows", probe["rows"], TOO_FEW if probe["too_small"] else probe["changed_share"], probe["interval"]]
        ]
        rows += [
            [g["group"], g["rows"], TOO_FEW if g.get("too_small") else g.get("changed_share"), g.get("interval")]
            for g in probe["groups"]
        ]
        blocks.append(
            table(
                [
                    f"{probe['attribute']} ({probe['role']})",
                    ("Rows", True),
                    ("Decisions that change", True),
                    "95% interval",
                ],
                [[*row[:3], f"[{fmt(row[3][0])}, {fmt(row[3][1])}]" if row[3] else "–"] for row in rows],
            )
        )
    return blocks


def robustness_blocks(evaluation: Any) -> list[dict[str, Any]]:
    """The robustness gates and accuracy and fairness against each perturbation's level."""
    if evaluation is None:
        return [text("No finished evaluation.")]
    section = insights(evaluation)["robustness"]
    if section is None:
        return [text("No robustness suite was run for this evaluation.")]
    blocks: list[dict[str, Any]] = []
    if section["gates"]:
        blocks.append(
            table(
                ["Robustness gate", ("Worsening", True), "Largest allowed", "Result"],
                [
                    [
                        gate["label"],
                        "undefined" if gate.get("value") is None else gate["value"],
                        f"at most {gate['max_text']}",
                        gate["status"] if gate["status"] in ("pass", "fail") else gate.get("reason") or "unknown",
                    ]
                    for gate in section["gates"]
                ],
            )
        )
    else:
        blocks.append(text("The policy has no robustness gates; the figures are shown for information."))
    blocks.append(
        text(
            f"Unperturbed, on {section['rows']} held-out rows: accuracy {fmt(section['baseline'].get('accuracy'))}"
            + "".join(f", {label.lower()} {fmt(value)}" for label, value in section["baseline_fairness"])
            + "."
        )
    )
    for kind in section["kinds"]:
        blocks.append(sub(f"Robustness: {kind['label']}"))
        blocks.append(chart(kind["chart"]))
        blocks.append(
            table(
                [("Level", True), ("Accuracy", True), ("Accuracy drop", True)]
                + [(label, True) for _m, label in section["metrics"]],
                [[row["level_text"], row["accuracy"], row["accuracy_drop"], *row["fairness"]] for row in kind["rows"]],
            )
        )
        blocks.append(note(f"Level: the {kind['unit']}."))
    for skipped in section["skipped"]:
        blocks.append(note(f"{skipped['label']} not run: {skipped['reason']}."))
    blocks.extend(note(line) for line in section["notes"])
    return blocks


def mitigation_blocks(model_version: Any) -> list[dict[str, Any]]:
    """The model beside its mitigated candidates (or its original, for a candidate): accuracy against disparity."""
    compared = comparison(model_version)
    if compared is None:
        return [text("No bias mitigation has been run on this model.")]
    metric = metric_label(compared["metric"])
    blocks: list[dict[str, Any]] = []
    if model_version.parent_id:
        method = (model_version.mitigation or {}).get("method", "")
        blocks.append(
            text(
                f"This model is a mitigated candidate of v{model_version.parent.number} ({method}); each candidate is "
                "its own model version with its own evaluation."
            )
        )
    rows = []
    for row in compared["rows"]:
        disparity = row["disparity"] or {}
        low, high = (disparity.get("ci") or [None, None])[:2]
        rows.append(
            [
                comparison_label(row),
                row["constraint"] or "-",
                row["epsilon_spent"] if row["epsilon_spent"] else "-",
                row["accuracy"],
                disparity.get("value"),
                f"[{fmt(low)}, {fmt(high)}]" if low is not None else "–",
                row["verdict"] or "not evaluated",
            ]
        )
    blocks.append(chart(comparison_chart(compared)))
    blocks.append(
        table(
            [
                "Model",
                "Constraint",
                ("Extra epsilon spent", True),
                ("Accuracy", True),
                (metric, True),
                "95% interval",
                "Verdict",
            ],
            rows,
        )
    )
    return blocks
