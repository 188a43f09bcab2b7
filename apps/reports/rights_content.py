"""The two reports of a data-subject request (reads only): the signed access summary (GDPR Art. 15) and the
certificate of completion.

Both name the person by the organisation's pseudonym only: never the external identifier, never a row value. The
access summary says what is held where (versions with row counts and hashes), the consent history, the purposes, the
models that used the data (split membership), the logic involved where a use case makes automated decisions and the
export package's sha256; the rows themselves are only in the encrypted export. The certificate says what was found,
what was erased, exported or rectified, where, when, the hashes before and after, and what remains and why (a
differentially private model kept under its (epsilon, delta) guarantee), or that no data was held.
"""

from __future__ import annotations

from typing import Any

from apps.reports.content import Content, facts, fmt, note, sub, table, text

NO_DATA_HELD = (
    "No data held: no consent record, no live dataset version, no model and no report of the organisation holds or "
    "used data under this pseudonym."
)


def _request_facts(request: Any) -> dict[str, Any]:
    return facts(
        [
            ("Request", request.reference),
            ("Kind", request.get_kind_display()),
            ("Person (pseudonym)", request.pseudonym),
            ("Received", request.received_on.isoformat()),
            (
                "Statutory deadline",
                request.due_on.isoformat()
                + (" (extended once by two months: " + request.extension_reason + ")" if request.extended_at else ""),
            ),
            ("Completed", request.completed_at.isoformat(timespec="seconds") if request.completed_at else "not yet"),
            ("Identity", "verified before registration (the note is kept with the request, not in this report)"),
        ]
    )


def _request_evidence(request: Any) -> dict[str, Any]:
    return {
        "id": str(request.id),
        "reference": request.reference,
        "kind": request.kind,
        "pseudonym": request.pseudonym,
        "received_on": request.received_on.isoformat(),
        "due_on": request.due_on.isoformat(),
        "extended": bool(request.extended_at),
        "status": request.status,
        "completed_at": request.completed_at.isoformat() if request.completed_at else None,
    }


def _held_table(held: list[dict[str, Any]]) -> dict[str, Any]:
    return table(
        ["Dataset", "Version", "Kind", ("Rows held", True), "Content sha256"],
        [[h["dataset"], f"v{h['number']}", h["kind"], h["rows"], h["sha256"]] for h in held],
    )


def _models_table(models: list[dict[str, Any]]) -> dict[str, Any]:
    return table(
        [
            "Model",
            "Use case",
            ("Training rows", True),
            ("Validation rows", True),
            ("Test rows", True),
            "Privacy",
        ],
        [
            [
                m["model"],
                m["usecase"],
                m["split"]["train"],
                m["split"]["validation"],
                m["split"]["test"],
                "non-private baseline"
                if m["non_private"] or m["epsilon"] is None
                else f"DP: epsilon {fmt(m['epsilon'])}, delta {m['delta']}",
            ]
            for m in models
        ],
    )


def _logic_blocks(logic: list[dict[str, Any]]) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    for item in logic:
        blocks.append(sub(f"{item['model']} ({item['usecase']})"))
        blocks.append(
            facts(
                [
                    ("Predicts", item["predicts"]),
                    ("Kind of model", item["model_kind"]),
                    ("Information used", ", ".join(item["features_used"])),
                    ("Explanation method", item["explanation_method"] or "no evaluation with explanations yet"),
                    ("Human oversight", item["human_oversight"]),
                ]
            )
        )
        if item["features_by_weight"]:
            blocks.append(
                table(
                    ["Feature", ("Mean |attribution|", True), ("Permutation importance", True)],
                    [
                        [f["feature"], f["mean_abs_attribution"], f["permutation_importance"]]
                        for f in item["features_by_weight"]
                    ],
                )
            )
    return blocks


def subject_access(request: Any) -> Content:
    """The signed access summary: what is held where, consent, purposes, models, logic and the export's hash."""
    from apps.rights.exports import access_facts

    known = access_facts(request)
    content = Content(f"Access summary for request {request.reference}", str(request))
    content.section("The request").append(_request_facts(request))
    held = content.section("What is held, and where")
    if known["held"]:
        held.append(
            text(
                f"{known['rows_held']:,} rows in {len(known['held'])} live dataset versions hold data about this "
                "person. Their values are in the encrypted export package, not in this summary."
            )
        )
        held.append(_held_table(known["held"]))
    else:
        held.append(text("No live dataset version holds rows about this person."))
    content.section("Consent history").append(
        table(
            ["Purpose", "Status", "When", "Recorded through"],
            [[c["purpose"], c["status"], c["occurred_at"], c["source"]] for c in known["consent"]],
        )
    )
    content.section("Purposes of the processing").append(
        table(
            ["Use case", "Purpose", "Lawful basis", "Recipients", "Retention", "Automated decisions"],
            [
                [
                    f"{p['usecase']} {p['title']}",
                    p["purpose"],
                    p["lawful_basis"],
                    ", ".join(p["recipients"]) or "none",
                    p["retention"],
                    p["automated_decisions"],
                ]
                for p in known["purposes"]
            ],
        )
    )
    content.section("Models that used the data").append(_models_table(known["models"]))
    logic = content.section("The logic involved in automated decisions")
    if known["logic"]:
        logic.extend(_logic_blocks(known["logic"]))
    else:
        logic.append(text("No use case that holds or used this person's data makes automated decisions."))
    export = known["export"]
    content.section("Export package").append(
        facts(
            [
                ("sha256 of the ZIP", export["sha256"]),
                ("Rows", export["rows"]),
                ("From versions", export["versions"]),
                ("Size (bytes)", export["size_bytes"]),
                ("Available until", export["expires_at"]),
            ]
        )
        if export
        else note("No export package has been made for this request yet.")
    )
    content.evidence = {"subject_request": _request_evidence(request), "access": known}
    return content


def _decisions(request: Any) -> list[dict[str, Any]]:
    return [
        {
            "model_version_id": str(d.model_version_id),
            "model": str(d.model_version),
            "decision": d.decision,
            "decision_label": d.get_decision_display(),
            "epsilon": d.epsilon,
            "delta": d.delta,
            "justification": d.justification,
            "decided_at": d.created_at.isoformat(timespec="seconds"),
            "retraining_task": str(d.retraining_task_id) if d.retraining_task_id else None,
        }
        for d in request.decisions.select_related("model_version__usecase").order_by("created_at")
    ]


def _remains(request: Any, outcome: dict[str, Any], decisions: list[dict[str, Any]]) -> list[str]:
    remains = list(outcome.get("remains") or [])
    for d in decisions:
        if d["decision"] == "keep_dp":
            remains.append(
                f"{d['model']} is kept: it was trained with differential privacy, so no single person's rows change "
                f"it by more than the guarantee (epsilon {fmt(d['epsilon'])}, delta {d['delta']}). "
                f"Justification: {d['justification']}"
            )
        elif d["decision"] == "retrain":
            remains.append(
                f"{d['model']} remains in use until it is retrained without this person's data (a retraining task "
                "is open for its owner)."
            )
    if outcome.get("versions"):
        remains.append(
            "The sha256 of each replaced version remains, so earlier reports and decisions can still be verified; "
            "the versions' files and keys were destroyed."
        )
    return remains


def rights_certificate(request: Any) -> Content:
    """The certificate of completion: found, done, where, when, hashes before and after, what remains and why."""
    from apps.rights.models import SubjectRequest

    trace = request.trace or {}
    outcome = request.outcome or {}
    found = bool(outcome.get("found", trace.get("found")))
    content = Content(f"Certificate of completion for request {request.reference}", str(request))
    content.section("The request").append(_request_facts(request))
    what_found = content.section("What was found")
    versions_found = trace.get("versions") or []
    models_found = trace.get("models") or []
    if not found:
        what_found.append(text(NO_DATA_HELD))
    else:
        what_found.append(
            facts(
                [
                    ("Consent records", len(trace.get("consent") or [])),
                    ("Dataset versions holding rows", len(versions_found)),
                    ("Rows", sum(int(v.get("rows") or 0) for v in versions_found)),
                    ("Models trained on them", len(models_found)),
                    ("Evaluations", len(trace.get("evaluations") or [])),
                    ("Reports built from them", len(trace.get("reports") or [])),
                    ("Deployments", len(trace.get("deployments") or [])),
                    ("Traced", trace.get("traced_at")),
                ]
            )
        )
        what_found.append(
            _held_table(
                [
                    {
                        "dataset": v.get("dataset"),
                        "number": v.get("number"),
                        "kind": v.get("kind"),
                        "rows": int(v.get("rows") or 0),
                        "sha256": v.get("sha256"),
                    }
                    for v in versions_found
                ]
            )
        )
    done = content.section("What was done")
    replaced = outcome.get("versions") or []
    if request.kind in (SubjectRequest.Kind.ERASURE, SubjectRequest.Kind.RECTIFICATION) and replaced:
        verb = "erased" if request.kind == SubjectRequest.Kind.ERASURE else "rectified"
        done.append(
            text(
                f"Rows {verb} in {len(replaced)} dataset versions: each was replaced by a new version (its lineage "
                f"names this request){' and its file and key destroyed' if verb == 'erased' else ''}."
            )
        )
        done.append(
            table(
                ["Dataset", ("Rows changed", True), "sha256 before", "sha256 after"],
                [[v.get("dataset"), v.get("rows_removed"), v.get("old_sha256"), v.get("new_sha256")] for v in replaced],
            )
        )
    withdrawn = outcome.get("consent_withdrawn") or []
    if withdrawn:
        done.append(text("Consent recorded as withdrawn for: " + ", ".join(withdrawn) + "."))
    if outcome.get("export_sha256"):
        done.append(facts([("Access export sent (sha256 of the ZIP)", outcome["export_sha256"])]))
    if request.access_report_id:
        summary = request.access_report
        # Both reports are rendered by jobs queued together: the summary may not be signed yet.
        digest = f" (sha256 {summary.sha256})" if summary.sha256 else ", issued with this certificate"
        done.append(facts([("Access summary", f"{summary.reference}{digest}")]))
    supersessions = list(request.supersessions.select_related("report").order_by("report__reference"))
    if supersessions:
        done.append(
            table(
                ["Report superseded", "Kind", "Why"],
                [[s.report.reference, s.report.get_kind_display(), s.reason] for s in supersessions],
            )
        )
    if not done:
        done.append(text("Nothing needed to change: " + NO_DATA_HELD if not found else "No data was changed."))
    decisions = _decisions(request)
    if decisions:
        content.section("Models trained on the person's data").append(
            table(
                ["Model", "Decision", "Guarantee", "Justification"],
                [
                    [
                        d["model"],
                        d["decision_label"],
                        "-" if d["epsilon"] is None else f"epsilon {fmt(d['epsilon'])}, delta {d['delta']}",
                        d["justification"],
                    ]
                    for d in decisions
                ],
            )
        )
    remains = _remains(request, outcome, decisions)
    content.section("What remains, and why").extend(
        [text(sentence) for sentence in remains] or [text("Nothing about this person remains.")]
    )
    content.evidence = {
        "subject_request": _request_evidence(request),
        "found": found,
        "trace": {
            "versions": [
                {"version_id": v.get("version_id"), "sha256": v.get("sha256"), "rows": v.get("rows")}
                for v in versions_found
            ],
            "models": [{"model_version_id": m.get("model_version_id"), "split": m.get("split")} for m in models_found],
            "consent_records": len(trace.get("consent") or []),
        },
        "outcome": {
            "versions": replaced,
            "consent_withdrawn": withdrawn,
            "export_sha256": outcome.get("export_sha256"),
            "reports_superseded": [s.report.reference for s in supersessions],
        },
        "decisions": decisions,
        "remains": remains,
    }
    return content
