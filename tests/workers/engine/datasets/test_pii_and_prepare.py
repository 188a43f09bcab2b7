import pyarrow as pa
import pytest

from workers.engine.consent import pseudonymise
from workers.engine.datasets.pii import (
    bsn_valid,
    codice_fiscale_valid,
    detect_column,
    dni_valid,
    iban_valid,
    idnr_valid,
    luhn_valid,
    national_id_valid,
    nir_valid,
    ssn_valid,
    suggest_role,
)
from workers.engine.datasets.prepare import PrepareError, prepare_table


def luhn_complete(body: str) -> str:
    """Append a Luhn check digit, computed here independently of the detector."""
    for check in "0123456789":
        digits = [int(c) for c in body + check][::-1]
        total = sum(d if i % 2 == 0 else (d * 2 - 9 if d * 2 > 9 else d * 2) for i, d in enumerate(digits))
        if total % 10 == 0:
            return body + check
    raise AssertionError


def iban_complete(country: str, bban: str) -> str:
    numeric = "".join(str(int(c, 36)) for c in bban + country + "00")
    return f"{country}{98 - int(numeric) % 97:02d}{bban}"


def test_check_digit_validators_accept_valid_and_refuse_altered_numbers():
    card = luhn_complete("453201511283036")
    assert luhn_valid(card) and not luhn_valid(card[:-1] + str((int(card[-1]) + 1) % 10))
    iban = iban_complete("GB", "WEST12345698765432")
    assert iban == "GB82WEST12345698765432"  # the textbook example, from the standard's own documentation
    assert iban_valid(iban) and not iban_valid(iban.replace("82", "83", 1))
    assert bsn_valid("111222333") and not bsn_valid("111222334")  # 9*1+8*1+7*1+6*2+5*2+4*2+3*3+2*3-1*3 = 66
    nir_body = "1850578006084"
    nir = nir_body + f"{97 - int(nir_body) % 97:02d}"
    assert nir_valid(nir) and not nir_valid(nir_body + "00")
    assert dni_valid("12345678Z") and not dni_valid("12345678A")


def test_an_iban_needs_its_countrys_length_and_structure_not_only_the_checksum():
    for valid in ("GB82WEST12345698765432", "DE89370400440532013000", "NL91ABNA0417164300", "BE71096123456769"):
        assert iban_valid(valid), valid
    assert iban_valid("GB82 WEST 1234 5698 7654 32")
    # Right mod-97 check digits, wrong shape for the country: a GB IBAN is 22 characters, a German BBAN all digits,
    # a Belgian IBAN 16 characters.
    too_long = iban_complete("GB", "WEST123456987654321")
    letters_in_german = iban_complete("DE", "37040044053201300A")
    belgian_too_short = iban_complete("BE", "09612345676")
    for wrong in (too_long, letters_in_german, belgian_too_short):
        assert int("".join(str(int(c, 36)) for c in wrong[4:] + wrong[:4])) % 97 == 1  # the checksum alone passes
        assert not iban_valid(wrong), wrong
    assert not iban_valid("XX82WEST12345698765432")  # no such country
    column = detect_column("reference", [too_long] * 10)
    assert not any(f["kind"] == "iban" and f["source"] == "values" for f in column["findings"])


@pytest.mark.parametrize(
    ("check", "valid", "invalid"),
    [
        (bsn_valid, "111222333", "111222334"),
        (bsn_valid, "1112.22.333", "000000000"),
        (ssn_valid, "536-90-4399", "078-05-1120"),  # the second is the Woolworth wallet card number, never issued
        (ssn_valid, "536-90-4399", "666-12-3456"),
        (dni_valid, "54362315-K", "54362315Z"),
        (idnr_valid, "36574261809", "36574261890"),
        (idnr_valid, "36 574 261 809", "36554266806"),  # a digit repeated more than three times
        (codice_fiscale_valid, "RCCMNL83S18D969H", "RCCMNL83S18D969A"),
        (nir_valid, "295109912611193", "295109912611199"),
        (nir_valid, "253072B07300470", "253072C07300443"),
    ],
)
def test_national_identifiers_use_their_schemes_check_digits(check, valid, invalid):
    assert check(valid) and national_id_valid(valid)
    assert not check(invalid)


def test_columns_of_german_and_italian_identifiers_are_flagged():
    assert any(f["kind"] == "national_id" for f in detect_column("x", ["36574261809"] * 10)["findings"])
    assert any(f["kind"] == "national_id" for f in detect_column("x", ["RCCMNL83S18D969H"] * 10)["findings"])
    assert not any(f["kind"] == "national_id" for f in detect_column("x", ["12345678"] * 10)["findings"])


def test_columns_are_flagged_by_values_and_by_names():
    emails = detect_column("contact", [f"user{i}@example.org" for i in range(20)])
    assert {"kind": "email", "source": "values", "share": 1.0, "confidence": "high"} in emails["findings"]
    cards = detect_column("x", [luhn_complete(f"4532015112830{i:02d}") for i in range(20)])
    assert any(f["kind"] == "payment_card" for f in cards["findings"])
    broken = [luhn_complete(f"4532015112830{i:02d}") for i in range(20)]
    broken = [number[:-1] + str((int(number[-1]) + 1) % 10) for number in broken]  # every check digit wrong
    assert not any(f["kind"] == "payment_card" for f in detect_column("x", broken)["findings"])
    assert any(f["kind"] == "subject_key" for f in detect_column("applicant_id", ["A-1"])["findings"])


@pytest.mark.parametrize(
    ("name", "values", "profile", "role"),
    [
        ("applicant_id", ["A-1", "A-2"], {}, "subject_key"),
        ("email", ["a@b.org"] * 3, {}, "direct_identifier"),
        ("sex", ["Male", "Female"], {"kind": "categorical"}, "sensitive"),
        ("race", ["White"], {"kind": "categorical"}, "sensitive"),
        ("age", [39, 50], {"kind": "integer", "unique_share": 0.01, "rows": 1000}, "quasi_identifier"),
        ("occupation", ["Sales"], {"kind": "categorical"}, "quasi_identifier"),
        ("class", ["<=50K"], {"kind": "categorical"}, "label"),
        ("hours-per-week", [40], {"kind": "integer", "unique_share": 0.01, "rows": 1000}, "feature"),
    ],
)
def test_role_suggestions_for_adult_like_columns(name, values, profile, role):
    assert suggest_role(name, detect_column(name, values), profile)[0] == role


def test_prepare_keeps_consented_rows_drops_identifiers_and_pseudonymises_the_key():
    secret = b"s" * 32
    table = pa.table(
        {"applicant_id": ["A-1", "A-2", "A-3", "A-1"], "email": ["a@x", "b@x", "c@x", "a@x"], "age": [30, 40, 50, 31]}
    )
    consented = {pseudonymise("A-1", secret), pseudonymise("A-3", secret)}
    roles = {"applicant_id": "subject_key", "email": "direct_identifier", "age": "quasi_identifier"}
    prepared, spec = prepare_table(
        table, roles=roles, subject_column="applicant_id", secret=secret, consented=consented
    )
    assert prepared.column_names == ["applicant_id", "age"]
    assert prepared.column("age").to_pylist() == [30, 50, 31]
    assert set(prepared.column("applicant_id").to_pylist()) == consented
    assert spec["rows_removed_without_consent"] == 1 and spec["columns_dropped"] == ["email"]


def test_prepare_refuses_a_vanished_column_and_an_empty_result():
    table = pa.table({"id": ["A-1"], "age": [1]})
    with pytest.raises(PrepareError) as caught:
        prepare_table(table, roles={"gone": "feature"}, subject_column="id", secret=b"k", consented=set())
    assert caught.value.column == "gone"
    with pytest.raises(PrepareError):
        prepare_table(table, roles={"id": "subject_key"}, subject_column="id", secret=b"k", consented=set())
