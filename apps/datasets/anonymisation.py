"""Anonymising a version: the steward's request (validated, queued), the search job (optimal generalisation, risk and
utility before and after, a sample, all checked independently), and applying it as a new version with lineage.

The numerical work is ``workers/engine/anonymisation``; this module reads and writes the portal's records. Each
service writes one audit event; a failed search or apply leaves no version and no file.

Memory: the version is read in record batches. The search reads only the quasi-identifiers and the sensitive column
and keeps their distinct combinations with counts (``Combinations``); the apply releases and encrypts batch by batch,
counting the released combinations as it writes them for the independent check, which runs before the version is
recorded. A worker holds a batch, a row group and the per-combination counts, never the table.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from django.db import transaction

from apps.accounts.models import User
from apps.audit.services import audit_record
from apps.core.errors import AttestError, InvalidState, ValidationFailed
from apps.datasets.models import Anonymisation, DatasetVersion
from apps.datasets.services import _require_writer, store_derived_version
from apps.datasets.tables import version_batches

HIERARCHY_KINDS = ("propose", "intervals", "dates", "prefix", "suppression", "table")
MAX_HIERARCHY_BYTES = 1_000_000


def parse_hierarchy_csv(column: str, content: bytes) -> dict[str, Any]:
    """A steward's hierarchy file: one row per value, one column per level. Returned as a spec the engine builds."""
    if len(content) > MAX_HIERARCHY_BYTES:
        raise ValidationFailed(f"The hierarchy for '{column}' is larger than 1 MB.", {column: ["too large"]})
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValidationFailed(f"The hierarchy for '{column}' is not UTF-8 text.", {column: ["not UTF-8"]}) from None
    dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t") if text.strip() else csv.excel
    rows = [row for row in csv.reader(io.StringIO(text), dialect) if row]
    if not rows:
        raise ValidationFailed(f"The hierarchy for '{column}' is empty.", {column: ["empty"]})
    return {"kind": "table", "rows": rows}


def parse_population_csv(content: bytes) -> dict[str, Any]:
    """A population table for journalist risk: the quasi-identifier columns and a ``count`` column (how many people
    of the population share those values). Kept in the settings as columns and rows."""
    import pandas as pd

    if len(content) > 5 * MAX_HIERARCHY_BYTES:
        raise ValidationFailed("The population table is larger than 5 MB.", {"population": ["too large"]})
    try:
        frame = pd.read_csv(io.BytesIO(content), dtype=str, keep_default_na=False)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValidationFailed(
            "The population table is not a readable CSV.", {"population": [str(exc)[:200]]}
        ) from None
    if "count" not in frame.columns:
        raise ValidationFailed("The population table needs a 'count' column.", {"population": ["no count column"]})
    counts = pd.to_numeric(frame["count"], errors="coerce")
    if counts.isna().any() or (counts < 0).any():
        bad = frame.loc[counts.isna() | (counts < 0), "count"].iloc[0]
        raise ValidationFailed(f"Population count '{bad}' is not a non-negative number.", {"population": ["count"]})
    return {"columns": list(frame.columns), "rows": frame.to_numpy().tolist()}


def _roles(version: DatasetVersion) -> dict[str, str]:
    return {c.name: c.role for c in version.columns.all()}


def default_config(version: DatasetVersion) -> dict[str, Any]:
    """What the form starts from: the quasi-identifiers and sensitive attribute the steward confirmed on the data."""
    roles = _roles(version)
    return {
        "quasi_identifiers": [name for name, role in roles.items() if role == "quasi_identifier"],
        "sensitive": next((name for name, role in roles.items() if role == "sensitive"), ""),
        "k": 5,
        "suppression_limit": 0.05,
        "l_diversity": None,
        "l_kind": "distinct",
        "t_closeness": None,
        "t_distance": "equal",
        "measure": "loss",
        "hierarchies": {},
    }


def _normalise(version: DatasetVersion, raw: dict[str, Any]) -> dict[str, Any]:
    errors: dict[str, list[str]] = {}
    columns = set(version.column_names)
    quasi = [str(c) for c in raw.get("quasi_identifiers") or []]
    if not quasi:
        errors["quasi_identifiers"] = ["Choose at least one quasi-identifier."]
    for name in quasi:
        if name not in columns:
            errors.setdefault("quasi_identifiers", []).append(f"'{name}' is not a column of this version.")
    sensitive = str(raw.get("sensitive") or "")
    if sensitive and sensitive not in columns:
        errors["sensitive"] = [f"'{sensitive}' is not a column of this version."]
    if sensitive and sensitive in quasi:
        errors["sensitive"] = ["The sensitive attribute cannot also be a quasi-identifier."]

    def number(name: str, kind: type, low: float, high: float, optional: bool = False) -> Any:
        value = raw.get(name)
        if optional and value in (None, ""):
            return None
        try:
            value = kind(value)
        except (TypeError, ValueError):
            errors[name] = [f"A number between {low} and {high}."]
            return None
        if not low <= value <= high:
            errors[name] = [f"Between {low} and {high}."]
        return value

    k = number("k", int, 2, 1000)
    limit = number("suppression_limit", float, 0.0, 0.5)
    l_value = number("l_diversity", int, 2, 100, optional=True)
    t_value = number("t_closeness", float, 0.0, 1.0, optional=True)
    if (l_value or t_value is not None) and not sensitive:
        errors["sensitive"] = ["l-diversity and t-closeness need a sensitive attribute."]
    l_kind = raw.get("l_kind") or "distinct"
    t_distance = raw.get("t_distance") or "equal"
    measure = raw.get("measure") or "loss"
    if l_kind not in ("distinct", "entropy"):
        errors["l_kind"] = ["distinct or entropy"]
    if t_distance not in ("equal", "hierarchical"):
        errors["t_distance"] = ["equal or hierarchical"]
    if measure not in ("loss", "entropy"):
        errors["measure"] = ["loss or entropy"]
    hierarchies = {}
    for name, spec in (raw.get("hierarchies") or {}).items():
        if not isinstance(spec, dict) or spec.get("kind", "propose") not in HIERARCHY_KINDS:
            errors[f"hierarchies.{name}"] = [f"kind one of {', '.join(HIERARCHY_KINDS)}"]
            continue
        if name in quasi or name == sensitive:
            hierarchies[name] = spec
    population = raw.get("population") or None
    if population is not None:
        missing = [name for name in quasi if name not in population.get("columns", [])]
        if missing:
            errors["population"] = [f"The population table has no column '{name}'." for name in missing]
    if t_distance == "hierarchical" and t_value is not None and sensitive not in hierarchies:
        errors["t_distance"] = [f"Hierarchical distance needs a hierarchy for '{sensitive}'."]
    if errors:
        raise ValidationFailed("The anonymisation settings are not valid.", errors)
    return {
        "quasi_identifiers": quasi,
        "sensitive": sensitive,
        "k": k,
        "suppression_limit": limit,
        "l_diversity": l_value,
        "l_kind": l_kind,
        "t_closeness": t_value,
        "t_distance": t_distance,
        "measure": measure,
        "hierarchies": hierarchies,
        "population": population,
    }


def anonymisation_request(*, actor: User, version: DatasetVersion, config: dict[str, Any]) -> Anonymisation:
    """Queue the search for the optimal generalisation of a prepared (or anonymised) version."""
    from apps.jobs.services import job_create

    organisation = version.dataset.organisation
    _require_writer(actor, organisation)
    if version.kind == DatasetVersion.Kind.RAW:
        raise InvalidState(
            "Anonymise a prepared version: raw data still holds direct identifiers and rows without consent."
        )
    if version.status != DatasetVersion.Status.READY:
        raise InvalidState("The version is not ready (it is being profiled, failed, or was erased).")
    normalised = _normalise(version, config)
    with transaction.atomic():
        item = Anonymisation.objects.create(version=version, created_by=actor, config=normalised)
        item.job = job_create(
            actor=actor,
            organisation=organisation,
            kind="anonymise",
            spec={"anonymisation_id": str(item.id)},
            target=item,
        )
        item.save(update_fields=["job"])
        audit_record(
            actor=actor,
            organisation=organisation,
            action="anonymisation.request",
            target=item,
            after={"version": str(version.id), "config": _config_summary(normalised), "job": str(item.job.id)},
        )
    return item


def _config_summary(config: dict[str, Any]) -> dict[str, Any]:
    """The config without uploaded hierarchy rows (the transform of an applied version records them in full)."""
    summary = {**config, "hierarchies": {k: v.get("kind") for k, v in config["hierarchies"].items()}}
    if config.get("population"):
        summary["population"] = f"{len(config['population']['rows'])} rows"
    return summary


class Summary:
    """What the search reads of a version: the distinct combinations of its quasi-identifiers and sensitive value with
    their counts (``frame``, column ``COUNT``), and its first rows as read (``head``, for the samples)."""

    def __init__(self, frame: Any, head: Any) -> None:
        self.frame = frame
        self.head = head


def _columns(config: dict[str, Any]) -> list[str]:
    return config["quasi_identifiers"] + ([config["sensitive"]] if config["sensitive"] else [])


def _engine_inputs(item: Anonymisation) -> tuple[Summary, Any, Any, Any]:
    import pyarrow as pa

    from workers.engine.anonymisation.hierarchy import AnonymisationError, for_frame
    from workers.engine.anonymisation.search import COUNT, Combinations, Criteria, Problem

    config = item.config
    columns = _columns(config)
    for column in columns:
        if column not in item.version.column_names:
            raise AnonymisationError(f"Column '{column}' is not in this version.", column=column)
    combinations = Combinations(columns)
    with version_batches(item.version, columns=columns) as reader:
        numeric = {}
        for field in reader.schema:
            kind = field.type.value_type if pa.types.is_dictionary(field.type) else field.type
            numeric[field.name] = (
                pa.types.is_integer(kind)
                or pa.types.is_floating(kind)
                or pa.types.is_decimal(kind)
                or pa.types.is_boolean(kind)
            )
        for batch in reader:
            combinations.add(batch.to_pandas())
    frame = combinations.frame()
    hierarchies = for_frame(frame, config["quasi_identifiers"], config["hierarchies"], numeric)
    sensitive_hierarchy = None
    if config["sensitive"] and config["sensitive"] in config["hierarchies"]:
        sensitive_hierarchy = for_frame(frame, [config["sensitive"]], config["hierarchies"], numeric)[0]
    criteria = Criteria(
        k=config["k"],
        suppression_limit=config["suppression_limit"],
        l_diversity=config["l_diversity"],
        l_kind=config["l_kind"],
        t_closeness=config["t_closeness"],
        t_distance=config["t_distance"],
        sensitive=config["sensitive"] or None,
    )
    problem = Problem(frame, hierarchies, criteria, sensitive_hierarchy, counts=frame[COUNT].to_numpy())
    return Summary(frame, combinations.head()), problem, criteria, sensitive_hierarchy


def anonymisation_run(*, anonymisation_id: Any, progress: Any = None) -> dict[str, Any]:
    """The search job's body: find the optimum, check it independently, measure risk and utility before and after."""
    from workers.engine.anonymisation.hierarchy import AnonymisationError
    from workers.engine.anonymisation.risk import prosecutor_risk
    from workers.engine.anonymisation.search import COUNT, apply, describe_levels, search

    item = Anonymisation.objects.select_related("version__dataset__organisation").get(id=anonymisation_id)
    config = item.config
    try:
        if progress:
            progress(0.1, "Counting the combinations of quasi-identifiers, batch by batch")
        summary, problem, criteria, sensitive_hierarchy = _engine_inputs(item)
        if progress:
            progress(0.3, f"Searching {problem.n:,} rows for the optimal generalisation")
        found = search(problem, config["measure"])
        frame = summary.frame
        # The release as combinations with counts: the same ``apply`` the job writes batches with.
        released = apply(frame, problem, found.best.levels, found.best)
        _independent_check(frame, released, problem, criteria)
        journalist = _journalist(config, frame, released, problem, found.best.levels)
        sample_after = apply(summary.head, problem, found.best.levels, found.best)
    except AnonymisationError as exc:
        # The job fails with this message; the value that broke a hierarchy stays on the job row, not in the log.
        raise ValidationFailed(exc.message, {"column": exc.column, "value": exc.value}) from None
    quasi = config["quasi_identifiers"]
    threshold = 1 / criteria.k
    before = prosecutor_risk(frame, quasi, threshold, count=COUNT)
    after = prosecutor_risk(released, quasi, threshold, count=COUNT)
    sizes = found.best.sizes
    result = {
        "levels": describe_levels(problem, found.best.levels),
        "level_tuple": list(found.best.levels),
        "hierarchies": {
            h.column: {
                "kind": h.kind,
                "spec": h.spec,
                "height": h.height,
                "labels_at_level": sorted(set(h.labels[lv]))[:12],
            }
            for h, lv in zip(problem.hierarchies, found.best.levels, strict=True)
        },
        "rows_before": problem.n,
        "rows_after": int(released[COUNT].sum()),
        "suppressed": found.best.suppressed,
        "utility": {
            "loss": found.best.loss,
            "non_uniform_entropy": found.best.entropy,
            "discernibility": found.best.discernibility,
            "classes": found.best.classes,
            "average_class_size": float(sizes.mean()) if len(sizes) else 0.0,
        },
        "risk_before": before,
        "risk_after": after,
        "journalist_before": journalist[0] if journalist else None,
        "journalist_after": journalist[1] if journalist else None,
        "search": {"checked": found.checked, "lattice": found.lattice_size, "seconds": round(found.seconds, 3)},
        "class_sizes": _size_histogram(sizes),
        "sample_before": _sample(summary.head, quasi, config["sensitive"]),
        "sample_after": _sample(sample_after, quasi, config["sensitive"]),
        "independent_check": "passed",
    }
    anonymisation_record(anonymisation=item, result=result)
    return {"anonymisation_id": str(item.id), "levels": result["level_tuple"], "loss": found.best.loss}


def _independent_check(frame: Any, released: Any, problem: Any, criteria: Any) -> None:
    """Refuse a release the independent check does not confirm (never expected: it exists so that a search bug
    cannot reach a released version)."""
    from workers.engine.anonymisation.hierarchy import AnonymisationError
    from workers.engine.anonymisation.search import COUNT
    from workers.engine.anonymisation.verify import verify

    problems = verify(
        frame,
        released,
        problem.columns,
        k=criteria.k,
        suppression_limit=criteria.suppression_limit,
        sensitive=criteria.sensitive,
        l_diversity=criteria.l_diversity,
        l_kind=criteria.l_kind,
        t_closeness=criteria.t_closeness,
        t_distance_of=_t_distance(problem) if criteria.t_distance == "hierarchical" else None,
        count=COUNT,
    )
    if problems:
        raise AnonymisationError("The independent check refused the result: " + "; ".join(problems))


def _journalist(
    config: dict[str, Any], frame: Any, released: Any, problem: Any, levels: tuple[int, ...]
) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """Journalist risk before and after, when the steward gave a population table: its rows are generalised with the
    same hierarchies and levels as the data."""
    import pandas as pd

    from workers.engine.anonymisation.hierarchy import AnonymisationError
    from workers.engine.anonymisation.risk import journalist_risk
    from workers.engine.anonymisation.search import COUNT

    population = config.get("population")
    if not population:
        return None
    quasi = config["quasi_identifiers"]
    table = pd.DataFrame(population["rows"], columns=population["columns"])
    table["count"] = pd.to_numeric(table["count"])
    before = journalist_risk(frame, table, quasi, count=COUNT)  # the combinations' values are already text
    generalised = table.copy()
    for hierarchy, level in zip(problem.hierarchies, levels, strict=True):
        values = generalised[hierarchy.column].astype(str)
        unknown = sorted(set(values) - set(hierarchy.index))
        if unknown:
            raise AnonymisationError(
                f"Population table, column '{hierarchy.column}': value '{unknown[0]}' is not in its hierarchy.",
                column=hierarchy.column,
                value=unknown[0],
            )
        generalised[hierarchy.column] = [hierarchy.labels[level][hierarchy.index[v]] for v in values]
    after = journalist_risk(released, generalised, quasi, count=COUNT)
    return before, after


def _t_distance(problem: Any) -> Any:
    from workers.engine.anonymisation.search import hierarchical_emd

    def distance(local: Any, overall: Any) -> float:
        values = list(overall.index)
        return float(
            hierarchical_emd(local.to_numpy()[None, :], overall.to_numpy(), problem.sensitive_hierarchy, values)[0]
        )

    return distance


def _sample(frame: Any, quasi: list[str], sensitive: str) -> dict[str, Any]:
    columns = quasi + ([sensitive] if sensitive else [])
    head = frame[columns].head(8).astype(str)
    return {"columns": columns, "rows": head.to_numpy().tolist()}


def _size_histogram(sizes: Any) -> list[dict[str, Any]]:
    edges = [(1, 1), (2, 4), (5, 9), (10, 19), (20, 49), (50, 99), (100, 10**12)]
    result = []
    for low, high in edges:
        selected = sizes[(sizes >= low) & (sizes <= high)]
        label = f"{low}" if low == high else (f"{low}+" if high >= 10**12 else f"{low}-{high}")
        result.append({"label": label, "classes": int(len(selected)), "records": int(selected.sum())})
    return result


def anonymisation_record(*, anonymisation: Anonymisation, result: dict[str, Any]) -> Anonymisation:
    with transaction.atomic():
        anonymisation.result = result
        anonymisation.status = Anonymisation.Status.READY
        anonymisation.save(update_fields=["result", "status", "updated_at"])
        audit_record(
            actor=None,
            organisation=anonymisation.version.dataset.organisation,
            action="anonymisation.record",
            target=anonymisation,
            after={
                "levels": result["level_tuple"],
                "utility": result["utility"],
                "risk_before": result["risk_before"],
                "risk_after": result["risk_after"],
                "suppressed": result["suppressed"],
            },
        )
    return anonymisation


def anonymisation_apply_start(*, actor: User, anonymisation: Anonymisation) -> Anonymisation:
    """Queue writing the anonymised table as a new version (the steward saw risk and utility and accepts them)."""
    from apps.jobs.services import job_create

    organisation = anonymisation.version.dataset.organisation
    _require_writer(actor, organisation)
    with transaction.atomic():
        locked = Anonymisation.objects.select_for_update().get(pk=anonymisation.pk)
        if locked.state not in ("ready", "apply_failed"):
            raise InvalidState(f"Only a finished search can be applied; this one is {locked.state_label.lower()}.")
        locked.job = job_create(
            actor=actor,
            organisation=organisation,
            kind="anonymise_apply",
            spec={"anonymisation_id": str(locked.id)},
            target=locked,
        )
        locked.save(update_fields=["job", "updated_at"])
        audit_record(
            actor=actor,
            organisation=organisation,
            action="anonymisation.apply",
            target=locked,
            after={"levels": locked.result.get("level_tuple"), "job": str(locked.job.id)},
        )
    return locked


def anonymisation_apply(*, anonymisation_id: Any, actor_id: Any = None, progress: Any = None) -> dict[str, Any]:
    """The apply job's body: re-derive the release deterministically, batch by batch, check what was written, and
    store it as a new version (the check runs before the version is recorded; a refusal leaves no file)."""
    from workers.engine.anonymisation.hierarchy import AnonymisationError
    from workers.engine.anonymisation.search import COUNT, Combinations, release_batch, released_schema

    item = Anonymisation.objects.select_related("version__dataset__organisation").get(id=anonymisation_id)
    actor = User.objects.filter(id=actor_id).first() if actor_id else None
    config = item.config
    columns = _columns(config)
    try:
        summary, problem, criteria, _ = _engine_inputs(item)
        levels = tuple(item.result["level_tuple"])
        chosen = problem.evaluate(levels)
    except (AnonymisationError, KeyError) as exc:
        message = getattr(exc, "message", None) or f"The version changed since the search: {exc}"
        raise AttestError("invalid", message) from None
    if progress:
        progress(0.4, f"Releasing and encrypting {problem.n - chosen.suppressed:,} anonymised rows, batch by batch")
    written = Combinations(columns, head_rows=0)

    def transform() -> dict[str, Any]:
        # Everything is written: the independent check on the released strings, then the lineage record.
        _independent_check(summary.frame, written.frame(), problem, criteria)
        return {
            "kind": "anonymise",
            "criteria": _config_summary(config) | {"hierarchies": config["hierarchies"]},
            "levels": item.result["levels"],
            "hierarchies": {h.column: h.spec for h in problem.hierarchies},
            "suppressed": problem.n - int(written.frame()[COUNT].sum()),
            "risk_before": item.result["risk_before"],
            "risk_after": item.result["risk_after"],
            "utility": item.result["utility"],
            "anonymisation": str(item.id),
            "parent_sha256": item.version.sha256,
        }

    try:
        with version_batches(item.version) as reader:

            def released() -> Any:
                for batch in reader:
                    out = release_batch(batch, problem, levels, chosen)
                    written.add(out.select(columns).to_pandas())
                    yield out

            child, _created = store_derived_version(
                source=item.version,
                batches=released(),
                schema=released_schema(reader.schema, problem.columns),
                kind=DatasetVersion.Kind.ANONYMISED,
                transform=transform,
                suffix=f"k{criteria.k}-anonymised",
                actor=actor,
                action="dataset.anonymise",
            )
    except AnonymisationError as exc:
        raise AttestError("invalid", exc.message) from None
    Anonymisation.objects.filter(pk=item.pk).update(status=Anonymisation.Status.APPLIED, output=child)
    return {"version_id": str(child.id), "rows_out": child.row_count}
