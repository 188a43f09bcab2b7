"""Loading requirement catalogues and crosswalks from files, and organisations' own frameworks from uploads.

Everything is validated before anything is written, and written in one transaction: a bad file changes nothing and
answers with every problem found (one ``ValidationFailed``). A file is identified by the sha256 of its bytes: loading
the same file again is a no-op, a changed file becomes a new ``FrameworkVersion`` and the framework's current one,
and older versions (with their requirements) stay as they were for the statements that cite them.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import sys
from pathlib import Path
from typing import Any

import yaml
from django.db import transaction

from apps.compliance.evidence_kinds import EVIDENCE_KINDS
from apps.compliance.models import CrosswalkLink, Framework, FrameworkVersion, Requirement
from apps.compliance.rules import rule_errors
from apps.core.errors import ValidationFailed

CATALOGUE_DIR = Path(__file__).resolve().parent / "catalogues"
CROSSWALK_DIR = CATALOGUE_DIR / "crosswalks"
# Shipped catalogues first, in this order, on every page.
CATALOGUE_ORDER = ("eu-ai-act", "gdpr", "iso-42001", "nist-ai-rmf")
KEY_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,59}$")
CODE_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,59}$")
FRAMEWORK_KEYS = {"id", "name", "version", "source", "licence"}
SOURCE_KEYS = {"title", "date", "url"}
REQUIREMENT_KEYS = {"id", "title", "text", "group", "applies", "evidence"}
MAX_REQUIREMENTS = 2000


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _yaml(data: bytes) -> Any:
    try:
        return yaml.load(data, Loader=yaml.CSafeLoader)  # safe: plain data only, no object construction
    except yaml.YAMLError as exc:
        raise ValidationFailed("The file is not valid YAML.", {"file": [str(exc)[:300]]}) from None


# ------------------------------------------------------------------------------------------------ validation


def validate_catalogue(document: Any) -> dict[str, Any]:
    """The catalogue, normalised; raises ``ValidationFailed`` listing every problem."""
    errors: dict[str, list[str]] = {}
    if not isinstance(document, dict) or set(document) != {"framework", "requirements"}:
        raise ValidationFailed(
            "A catalogue has exactly two sections: framework and requirements.", {"file": ["framework, requirements"]}
        )
    header = document["framework"]
    if not isinstance(header, dict):
        raise ValidationFailed("The framework section must be a mapping.", {"framework": ["mapping"]})
    unknown = set(header) - FRAMEWORK_KEYS
    if unknown:
        errors["framework"] = [f"unknown key(s): {', '.join(sorted(unknown))}"]
    key = str(header.get("id") or "")
    if not KEY_PATTERN.match(key):
        errors.setdefault("framework", []).append("id: lower-case letters, digits and hyphens")
    for field in ("name", "version"):
        if not str(header.get(field) or "").strip():
            errors.setdefault("framework", []).append(f"{field}: required")
    source = header.get("source") or {}
    if not isinstance(source, dict) or set(source) - SOURCE_KEYS:
        errors.setdefault("framework", []).append("source: a mapping of title, date, url")
        source = {}
    requirements = document["requirements"]
    if not isinstance(requirements, list) or not requirements:
        errors["requirements"] = ["must be a non-empty list"]
        requirements = []
    if len(requirements) > MAX_REQUIREMENTS:
        errors["requirements"] = [f"at most {MAX_REQUIREMENTS} requirements"]
        requirements = []
    seen: set[str] = set()
    normalised = []
    for index, item in enumerate(requirements):
        problems = _requirement_errors(item)
        code = str(item.get("id", "")) if isinstance(item, dict) else ""
        if code in seen:
            problems.append(f"duplicate id {code}")
        seen.add(code)
        if problems:
            errors[f"requirements[{index}]" + (f" {code}" if code else "")] = problems
            continue
        normalised.append(
            {
                "id": code,
                "title": str(item["title"]).strip(),
                "text": str(item.get("text") or "").strip(),
                "group": str(item.get("group") or "").strip(),
                "applies": item.get("applies") or {},
                "evidence": list(item["evidence"]),
            }
        )
    if errors:
        raise ValidationFailed("The catalogue has errors; nothing was loaded.", errors)
    return {
        "framework": {
            "id": key,
            "name": str(header["name"]).strip(),
            "version": str(header["version"]).strip(),
            "source": {k: str(v) for k, v in source.items()},
            "licence": str(header.get("licence") or ""),
        },
        "requirements": normalised,
    }


def _requirement_errors(item: Any) -> list[str]:
    if not isinstance(item, dict):
        return ["must be a mapping"]
    problems = []
    unknown = set(item) - REQUIREMENT_KEYS
    if unknown:
        problems.append(f"unknown key(s): {', '.join(sorted(unknown))}")
    if not CODE_PATTERN.match(str(item.get("id") or "")):
        problems.append("id: letters, digits, dots, hyphens (e.g. AIA-9.2)")
    if not str(item.get("title") or "").strip():
        problems.append("title: required")
    if len(str(item.get("title") or "")) > 300:
        problems.append("title: at most 300 characters")
    evidence = item.get("evidence")
    if not isinstance(evidence, list) or not evidence:
        problems.append("evidence: a non-empty list of evidence kinds")
    else:
        wrong = [str(kind) for kind in evidence if kind not in EVIDENCE_KINDS]
        if wrong:
            problems.append(f"evidence: unknown kind(s) {', '.join(wrong)}")
    problems += rule_errors(item.get("applies"))
    return problems


def validate_crosswalk(document: Any) -> dict[str, Any]:
    if not isinstance(document, dict) or set(document) != {"crosswalk", "mappings"}:
        raise ValidationFailed(
            "A crosswalk has two sections: crosswalk and mappings.", {"file": ["crosswalk, mappings"]}
        )
    header = document["crosswalk"]
    errors: dict[str, list[str]] = {}
    if not isinstance(header, dict) or set(header) - {"from", "to", "source"}:
        raise ValidationFailed("The crosswalk section has from, to and source.", {"crosswalk": ["from, to, source"]})
    for field in ("from", "to", "source"):
        if not str(header.get(field) or "").strip():
            errors.setdefault("crosswalk", []).append(f"{field}: required")
    links = []
    for index, item in enumerate(document["mappings"] or []):
        if not isinstance(item, dict) or set(item) - {"from", "to", "note"} or not item.get("from"):
            errors[f"mappings[{index}]"] = ["a mapping of from, to (a list) and an optional note"]
            continue
        targets = item.get("to")
        targets = [targets] if isinstance(targets, str) else targets
        if not isinstance(targets, list) or not targets:
            errors[f"mappings[{index}]"] = ["to: one id or a list of ids"]
            continue
        for target in targets:
            links.append((str(item["from"]), str(target), str(item.get("note") or "")[:300]))
    if errors:
        raise ValidationFailed("The crosswalk has errors; nothing was loaded.", errors)
    return {"from": str(header["from"]), "to": str(header["to"]), "source": str(header["source"]), "links": links}


# ----------------------------------------------------------------------------------------------------- storing


def store_catalogue(
    parsed: dict[str, Any],
    sha256: str,
    *,
    organisation: Any = None,
    kind: str = Framework.Kind.CATALOGUE,
    actor: Any = None,
) -> tuple[FrameworkVersion, bool]:
    """Make ``parsed`` the framework's current version; (version, True) when it is new, (existing, False) if the same
    content was loaded before (which becomes current again)."""
    header = parsed["framework"]
    with transaction.atomic():
        framework, _created = Framework.objects.select_for_update().get_or_create(
            organisation=organisation,
            key=header["id"],
            defaults={
                "name": header["name"],
                "kind": kind,
                "position": CATALOGUE_ORDER.index(header["id"])
                if organisation is None and header["id"] in CATALOGUE_ORDER
                else 100,
            },
        )
        existing = framework.versions.filter(sha256=sha256).first()
        if existing is not None:
            if framework.current_id != existing.id:
                framework.current = existing
                framework.save(update_fields=["current", "updated_at"])
            return existing, False
        version = FrameworkVersion.objects.create(
            framework=framework,
            version=header["version"],
            sha256=sha256,
            source=header["source"],
            licence=header["licence"],
            loaded_by=actor,
        )
        Requirement.objects.bulk_create(
            Requirement(
                framework_version=version,
                code=item["id"],
                title=item["title"],
                text=item["text"],
                group=item["group"],
                applies=item["applies"],
                evidence_kinds=item["evidence"],
                position=position,
            )
            for position, item in enumerate(parsed["requirements"])
        )
        framework.name, framework.current = header["name"], version
        framework.save(update_fields=["name", "current", "updated_at"])
    return version, True


def load_catalogue(path: Path) -> tuple[FrameworkVersion, bool]:
    data = path.read_bytes()
    return store_catalogue(validate_catalogue(_yaml(data)), _sha256(data))


def load_crosswalk(path: Path) -> int:
    """Replace the links of this crosswalk file with its content; every id must exist in the current catalogues."""
    parsed = validate_crosswalk(_yaml(path.read_bytes()))
    known = {
        key: set(
            Requirement.objects.filter(
                framework_version__framework__organisation__isnull=True, framework_version__framework__key=key
            ).values_list("code", flat=True)
        )
        for key in (parsed["from"], parsed["to"])
    }
    missing = [f"{parsed['from']}:{a}" for a, _b, _n in parsed["links"] if a not in known[parsed["from"]]]
    missing += [f"{parsed['to']}:{b}" for _a, b, _n in parsed["links"] if b not in known[parsed["to"]]]
    if missing:
        raise ValidationFailed(
            f"The crosswalk {path.name} names unknown requirements.", {"mappings": sorted(set(missing))[:50]}
        )
    name = path.stem
    with transaction.atomic():
        CrosswalkLink.objects.filter(crosswalk=name).delete()
        CrosswalkLink.objects.bulk_create(
            [
                CrosswalkLink(
                    crosswalk=name,
                    from_framework=parsed["from"],
                    from_code=a,
                    to_framework=parsed["to"],
                    to_code=b,
                    note=note,
                    source=parsed["source"],
                )
                for a, b, note in dict.fromkeys(parsed["links"])
            ],
            ignore_conflicts=True,
        )
    return len(parsed["links"])


def load_frameworks(directory: Path = CATALOGUE_DIR) -> dict[str, Any]:
    """Load every catalogue (``*.yaml``) then every crosswalk (``crosswalks/*.yaml``). Idempotent."""
    summary: dict[str, Any] = {"frameworks": {}, "crosswalks": {}}
    for path in sorted(directory.glob("*.yaml")):
        version, created = load_catalogue(path)
        summary["frameworks"][version.framework.key] = {"version": version.version, "new": created}
    for path in sorted((directory / "crosswalks").glob("*.yaml")):
        summary["crosswalks"][path.stem] = load_crosswalk(path)
    return summary


def load_after_migrate(**kwargs: Any) -> None:
    """post_migrate: bring the catalogues up to date. A broken catalogue file must not stop migrate for the whole
    portal; it is reported, and ``manage.py load_frameworks`` (strict) shows every error."""
    from django.db import connections

    connection = connections[kwargs.get("using") or "default"]
    if not {Framework._meta.db_table, CrosswalkLink._meta.db_table} <= set(connection.introspection.table_names()):
        return  # migrated to a state without the compliance tables
    try:
        load_frameworks()
    except ValidationFailed as exc:
        print(f"compliance catalogues not loaded: {exc.message} {exc.details}", file=sys.stderr)


# ------------------------------------------------------------------------------------ an organisation's own files


def parse_upload(data: bytes, filename: str, *, key: str = "", name: str = "", version: str = "") -> dict[str, Any]:
    """An uploaded framework: a catalogue YAML (same schema as the shipped ones), or a CSV with the columns
    id, title, text, group, applies (a YAML/JSON rule or empty), evidence (kinds separated by spaces or semicolons);
    for a CSV the framework's id, name and version come from the form."""
    if filename.lower().endswith((".yaml", ".yml")):
        return validate_catalogue(_yaml(data))
    if not filename.lower().endswith(".csv"):
        raise ValidationFailed("Upload a .yaml, .yml or .csv file.", {"file": ["yaml or csv"]})
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValidationFailed("The CSV is not UTF-8 text.", {"file": ["encoding"]}) from None
    reader = csv.DictReader(io.StringIO(text))
    columns = set(reader.fieldnames or [])
    if not {"id", "title", "evidence"} <= columns or columns - {"id", "title", "text", "group", "applies", "evidence"}:
        raise ValidationFailed(
            "The CSV needs the columns id, title, evidence (and optionally text, group, applies).",
            {"file": [f"columns found: {', '.join(sorted(columns)) or 'none'}"]},
        )
    requirements: list[dict[str, Any]] = []
    rule_problems: dict[str, list[str]] = {}
    for line, row in enumerate(reader, start=2):
        applies_text = (row.get("applies") or "").strip()
        try:
            applies = yaml.load(applies_text, Loader=yaml.CSafeLoader) if applies_text else None
        except yaml.YAMLError:
            rule_problems[f"line {line}"] = ["applies: not a valid rule"]
            continue
        requirement = {
            "id": (row.get("id") or "").strip(),
            "title": (row.get("title") or "").strip(),
            "evidence": [kind for kind in re.split(r"[;\s,]+", row.get("evidence") or "") if kind],
        }
        for optional in ("text", "group"):
            if (row.get(optional) or "").strip():
                requirement[optional] = row[optional].strip()
        if applies is not None:
            requirement["applies"] = applies
        requirements.append(requirement)
    if rule_problems:
        raise ValidationFailed("The CSV has errors; nothing was loaded.", rule_problems)
    return validate_catalogue(
        {"framework": {"id": key, "name": name, "version": version or "1"}, "requirements": requirements}
    )
