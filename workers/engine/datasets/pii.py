"""Likely personal data: column-name hints and value patterns with check digits, on a sample of values.

Suggestions only: the data steward confirms or changes every role.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable
from typing import Any

from stdnum import iban as stdnum_iban
from stdnum import luhn as stdnum_luhn
from stdnum.de import idnr as stdnum_idnr
from stdnum.es import dni as stdnum_dni
from stdnum.fr import nir as stdnum_nir
from stdnum.it import codicefiscale as stdnum_codice_fiscale
from stdnum.nl import bsn as stdnum_bsn
from stdnum.us import ssn as stdnum_ssn

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
SSN_FORM = re.compile(r"^[0-9]{3}-[0-9]{2}-[0-9]{4}$")
ISO_DATE = re.compile(r"^(19|20)[0-9]{2}-[01][0-9]-[0-3][0-9]")


# Check digits come from python-stdnum, which tracks each scheme's rules (IBAN structure and length per country, the
# BSN 11-proof, the NIR key with Corsican departments, ...). The patterns in front of it only say which written forms
# count as a candidate in a data column, so that a plain 8-digit amount is not zero-padded into a "BSN".
CARD_FORM = re.compile(r"^[0-9]{4}(?:[ -]?[0-9]){8,15}$")
BSN_FORM = re.compile(r"^[0-9]{4}\.?[0-9]{2}\.?[0-9]{3}$")
NIR_FORM = re.compile(r"^[12] ?[0-9]{2} ?[0-9]{2} ?(?:2A|2B|[0-9]{2}) ?[0-9]{3} ?[0-9]{3} ?[0-9]{2}$", re.I)
DNI_FORM = re.compile(r"^[0-9]{8}-?[A-Z]$", re.I)
IDNR_FORM = re.compile(r"^[0-9]{2} ?[0-9]{3} ?[0-9]{3} ?[0-9]{3}$")
CODICE_FISCALE_FORM = re.compile(
    r"^[A-Z]{6}[0-9LMNPQRSTUV]{2}[A-EHLMPRST][0-9LMNPQRSTUV]{2}[A-Z][0-9LMNPQRSTUV]{3}[A-Z]$", re.I
)


def luhn_valid(number: str) -> bool:
    """A payment card number: 12 to 19 digits (spaces or dashes between) with a valid Luhn digit."""
    return bool(CARD_FORM.match(number)) and stdnum_luhn.is_valid(re.sub(r"[ -]", "", number))


def iban_valid(value: str) -> bool:
    """An IBAN: mod-97 check digits, and the country's registered length and BBAN structure."""
    return stdnum_iban.is_valid(value)


def bsn_valid(value: str) -> bool:
    """Dutch citizen service number (BSN): nine digits passing the 11-proof."""
    return bool(BSN_FORM.match(value)) and stdnum_bsn.is_valid(value)


def nir_valid(value: str) -> bool:
    """French social security number (NIR): 13 characters and a key of 97 - (number mod 97)."""
    return bool(NIR_FORM.match(value)) and stdnum_nir.is_valid(value.upper())


def dni_valid(value: str) -> bool:
    """Spanish DNI: 8 digits and the control letter."""
    return bool(DNI_FORM.match(value)) and stdnum_dni.is_valid(value.upper())


def idnr_valid(value: str) -> bool:
    """German tax identification number (Steuer-IdNr): 11 digits, the digit-repetition rule and the ISO 7064 check."""
    return bool(IDNR_FORM.match(value)) and stdnum_idnr.is_valid(value)


def codice_fiscale_valid(value: str) -> bool:
    """Italian personal fiscal code (codice fiscale): 16 characters with the check letter."""
    return bool(CODICE_FISCALE_FORM.match(value)) and stdnum_codice_fiscale.is_valid(value.upper())


def ssn_valid(value: str) -> bool:
    """US social security number, written with dashes (a bare 9-digit number is too common to call an SSN)."""
    return bool(SSN_FORM.match(value)) and stdnum_ssn.is_valid(value)


def national_id_valid(value: str) -> bool:
    """Any national identifier this module knows. The UK NINO has no check digit: its pattern is all there is."""
    return bool(UK_NINO.match(value)) or any(
        check(value) for check in (ssn_valid, bsn_valid, nir_valid, dni_valid, idnr_valid, codice_fiscale_valid)
    )


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
    "national_id": national_id_valid,
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
