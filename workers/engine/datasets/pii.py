"""Likely personal data: column-name hints and value patterns with check digits, on a sample of values.

Suggestions only: the data steward confirms or changes every role.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable
from typing import Any

SAMPLE = 1000

NAME_HINTS: dict[str, tuple[str, ...]] = {
    "email": ("email", "e_mail", "e-mail", "mail", "courriel"),
    "phone": ("phone", "tel", "mobile", "telefon", "telephone", "gsm"),
    "iban": ("iban", "bank_account", "account_number"),
    "name": ("name", "surname", "firstname", "first_name", "last_name", "nom", "prenom", "vorname", "nachname"),
    "date_of_birth": ("dob", "birth", "birthday", "geburt", "naissance", "date_of_birth"),
    "address": ("address", "street", "adresse", "strasse"),
    "postcode": ("postcode", "postal", "zip", "plz", "code_postal"),
    "national_id": (
        "ssn",
        "nino",
        "national_id",
        "bsn",
        "nir",
        "passport",
        "tax_id",
        "steuer",
        "dni",
        "codice_fiscale",
    ),
    "ip_address": ("ip", "ip_address", "ipaddr"),
    "subject_key": ("subject_id", "person_id", "customer_id", "applicant_id", "patient_id", "user_id", "client_id"),
}
SENSITIVE_HINTS = (
    "sex",
    "gender",
    "race",
    "ethnic",
    "religion",
    "health",
    "disability",
    "sexual",
    "political",
    "union",
    "pregnan",
    "biometric",
    "genetic",
)
QUASI_HINTS = (
    "age",
    "zip",
    "postcode",
    "occupation",
    "marital",
    "education",
    "country",
    "city",
    "region",
    "workclass",
    "relationship",
    "native",
    "birth",
    "nationality",
)
LABEL_HINTS = ("class", "label", "target", "outcome", "income", "y")

EMAIL = re.compile(r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$")
PHONE = re.compile(r"^\+?[0-9][0-9 ().-]{6,18}[0-9]$")
UK_POSTCODE = re.compile(r"^[A-Z]{1,2}[0-9][A-Z0-9]? ?[0-9][A-Z]{2}$", re.I)
US_ZIP = re.compile(r"^[0-9]{5}(-[0-9]{4})?$")
UK_NINO = re.compile(
    r"^(?!BG|GB|NK|KN|TN|NT|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?[0-9]{2} ?[0-9]{2} ?[0-9]{2} ?[A-D]$", re.I
)
US_SSN = re.compile(r"^(?!000|666|9[0-9]{2})[0-9]{3}-(?!00)[0-9]{2}-(?!0000)[0-9]{4}$")
ISO_DATE = re.compile(r"^(19|20)[0-9]{2}-[01][0-9]-[0-3][0-9]")


def luhn_valid(number: str) -> bool:
    digits = [int(c) for c in number if c.isdigit()]
    if not 12 <= len(digits) <= 19 or len(digits) != len(re.sub(r"[ -]", "", number)):
        return False
    total = 0
    for index, digit in enumerate(reversed(digits)):
        if index % 2:
            digit *= 2
            digit -= 9 if digit > 9 else 0
        total += digit
    return total % 10 == 0


def iban_valid(value: str) -> bool:
    text = value.replace(" ", "").upper()
    if not re.fullmatch(r"[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}", text):
        return False
    rearranged = text[4:] + text[:4]
    return int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1


def bsn_valid(value: str) -> bool:
    """Dutch citizen service number: the 11-proof."""
    if not re.fullmatch(r"[0-9]{9}", value):
        return False
    weights = [9, 8, 7, 6, 5, 4, 3, 2, -1]
    return sum(int(d) * w for d, w in zip(value, weights, strict=True)) % 11 == 0 and value != "000000000"


def nir_valid(value: str) -> bool:
    """French social security number (NIR): 13 digits and a key of 97 - (number mod 97)."""
    text = value.replace(" ", "").upper()
    if not re.fullmatch(r"[12][0-9]{4}(2A|2B|[0-9]{2})[0-9]{6}[0-9]{2}", text):
        return False
    body = text[:13].replace("2A", "19").replace("2B", "18")
    return 97 - int(body) % 97 == int(text[13:])


def dni_valid(value: str) -> bool:
    """Spanish DNI: 8 digits and the control letter."""
    text = value.upper().replace("-", "")
    return bool(re.fullmatch(r"[0-9]{8}[A-Z]", text)) and "TRWAGMYFPDXBNJZSQVHLCKE"[int(text[:8]) % 23] == text[8]


def _ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
        return True
    except ValueError:
        return False


VALUE_DETECTORS: dict[str, Callable[[str], bool]] = {
    "email": lambda v: bool(EMAIL.match(v)),
    "payment_card": luhn_valid,
    "iban": iban_valid,
    "national_id": lambda v: bool(UK_NINO.match(v) or US_SSN.match(v)) or bsn_valid(v) or nir_valid(v) or dni_valid(v),
    "ip_address": _ip,
    "phone": lambda v: bool(PHONE.match(v)) and sum(c.isdigit() for c in v) >= 8 and not luhn_valid(v),
    "postcode": lambda v: bool(UK_POSTCODE.match(v)),
}


def _tokens(name: str) -> set[str]:
    lowered = name.lower()
    return set(re.split(r"[^a-z0-9]+", lowered)) | {lowered.replace("-", "_").replace(" ", "_")}


def detect_column(name: str, values: Iterable[Any], profile: dict[str, Any] | None = None) -> dict[str, Any]:
    """Kinds of personal data found in one column, with the share of sampled values that match."""
    sample = [str(v).strip() for v in values if v is not None and str(v).strip() != ""][:SAMPLE]
    findings: list[dict[str, Any]] = []
    tokens = _tokens(name)
    for kind, hints in NAME_HINTS.items():
        if tokens & set(hints) or any(h in name.lower() for h in hints if len(h) > 3):
            findings.append({"kind": kind, "source": "name", "share": None, "confidence": "medium"})
    for kind, detector in VALUE_DETECTORS.items():
        if not sample:
            break
        matches = sum(1 for v in sample if detector(v))
        share = matches / len(sample)
        if share >= 0.5:
            findings.append(
                {
                    "kind": kind,
                    "source": "values",
                    "share": round(share, 4),
                    "confidence": "high" if share >= 0.9 else "medium",
                }
            )
    if (
        sample
        and sum(1 for v in sample if ISO_DATE.match(v)) / len(sample) > 0.9
        and ({"birth", "dob", "born"} & tokens or "birth" in name.lower())
    ):
        findings.append({"kind": "date_of_birth", "source": "values", "share": 1.0, "confidence": "high"})
    if sample and US_ZIP.match(sample[0]) and ("zip" in tokens or "postcode" in tokens):
        findings.append({"kind": "postcode", "source": "values", "share": None, "confidence": "medium"})
    return {"column": name, "findings": findings}


def suggest_role(name: str, pii: dict[str, Any], profile: dict[str, Any] | None = None) -> tuple[str, str]:
    """A suggested column role and the reason, for the steward to confirm."""
    kinds = {finding["kind"] for finding in pii.get("findings", [])}
    lowered = name.lower()
    tokens = _tokens(name)
    unique_share = (profile or {}).get("unique_share", 0.0)
    if "subject_key" in kinds:
        return "subject_key", "its name says it identifies the data subject"
    if kinds & {"email", "phone", "iban", "payment_card", "national_id", "name", "address", "ip_address"}:
        return "direct_identifier", "it holds " + ", ".join(
            sorted(kinds & {"email", "phone", "iban", "payment_card", "national_id", "name", "address", "ip_address"})
        )
    # Only text: near-unique numbers are often measurements (weights, amounts), not identifiers.
    if unique_share > 0.95 and (profile or {}).get("kind") == "text" and (profile or {}).get("rows", 0) > 50:
        return "direct_identifier", "almost every value is unique (an identifier?)"
    if any(hint in lowered for hint in SENSITIVE_HINTS):
        return "sensitive", "special-category or protected attribute: audit fairness on it"
    if kinds & {"date_of_birth", "postcode"} or any(hint in tokens or hint in lowered for hint in QUASI_HINTS):
        return "quasi_identifier", "could re-identify people in combination with other columns"
    if tokens & set(LABEL_HINTS):
        return "label", "looks like the outcome to predict"
    return "feature", "no personal-data signal found"
