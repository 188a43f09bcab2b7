"""The subject data layer (apps/datasets/subjects.py) on real versions: indexes built at preparation and derivation,
traces against an independent pandas scan, erasure all-or-nothing, destruction, rectification lineage."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from django.core.management import call_command

from apps.audit.models import AuditEvent
from apps.consent.services import consent_import_create, consent_import_run, pseudonym_secret
from apps.core.errors import AttestError, NotFound, PermissionDenied, ValidationFailed
from apps.datasets import subjects
from apps.datasets.models import DatasetVersion
from apps.datasets.services import (
    dataset_create,
    dataset_version_confirm_roles,
    dataset_version_prepare,
    dataset_version_profile,
    dataset_version_upload,
    read_version_table,
    store_derived_version,
)
from apps.datasets.storage import EncryptedIncomingFile, storage_root
from apps.datasets.subjects import (
    index_path,
    subject_rows,
    version_rectified,
    versions_destroy,
    versions_holding,
    versions_without_subjects,
)
from tests.conftest import make_user
from workers.engine.consent import pseudonymise

pytestmark = pytest.mark.django_db

ROWS = 1500
PEOPLE = 400
WITHOUT_CONSENT = {"A-00003", "A-00011"}


def applicant(i: int) -> str:
    return f"A-{(i * 7) % PEOPLE:05d}"  # each person has several rows, spread over the file


@pytest.fixture
def frame() -> pd.DataFrame:
    data = pd.read_csv("data/adult.csv", nrows=ROWS)
    data.insert(0, "applicant_id", [applicant(i) for i in range(ROWS)])
    return data


@pytest.fixture
def versions(org, steward, owner, frame):
    """A raw upload (CSV), its preparation and a derived copy of the prepared version: three versions."""
    from apps.usecases.services import usecase_create
    from tests.usecases.factories import usecase_data

    usecase = usecase_create(actor=owner, organisation=org, data=usecase_data(purpose="Service improvement"))
    dataset = dataset_create(actor=steward, usecase=usecase, name="Applicants")
    incoming = EncryptedIncomingFile()
    incoming.write(frame.to_csv(index=False).encode())
    sha = incoming.close()
    raw, _ = dataset_version_upload(actor=steward, dataset=dataset, incoming=incoming, sha256=sha, file_name="a.csv")
    dataset_version_profile(version_id=raw.id)
    roles = {c.name: c.suggested_role for c in raw.columns.all()}
    roles.update({"applicant_id": "subject_key", "class": "label"})
    dataset_version_confirm_roles(actor=steward, version=raw, roles=roles)
    people = sorted(set(frame["applicant_id"]))
    consent = "subject_id,purpose,status,timestamp\n" + "".join(
        f"{p},Service improvement,{'refused' if p in WITHOUT_CONSENT else 'granted'},2026-01-01T00:00:00Z\n"
        for p in people
    )
    imported = consent_import_create(
        actor=steward, organisation=org, file_name="c.csv", chunks=iter([consent.encode()])
    )
    consent_import_run(consent_import_id=imported.id)
    prepared = DatasetVersion.objects.get(id=dataset_version_prepare(version_id=raw.id)["version_id"])
    dataset_version_profile(version_id=prepared.id)
    table = read_version_table(prepared)
    derived, _ = store_derived_version(
        source=prepared,
        table=table.slice(0, 1000),
        kind=DatasetVersion.Kind.ANONYMISED,
        transform={"transform": "test_slice"},
        suffix="slice",
        actor=steward,
        action="dataset.anonymise",
    )
    raw.refresh_from_db()
    prepared.refresh_from_db()
    return raw, prepared, derived


@pytest.fixture
def privacy_officer(org):
    return make_user("pia_privacy", organisation=org, roles=("privacy",))


def pseudonym(org, person: str) -> str:
    return pseudonymise(person, pseudonym_secret(org))


def rows_of(table: pd.DataFrame, key: str) -> list[int]:
    return [int(i) for i in table.index[table["applicant_id"] == key]]


def files_in_storage() -> set[Path]:
    return {path for path in storage_root().rglob("*") if path.is_file()}


def test_preparation_and_derivation_build_encrypted_indexes(versions, org):
    raw, prepared, derived = versions
    for version in versions:
        assert version.subject_index_sha256 and version.subject_index_column == "applicant_id"
        data = index_path(version).read_bytes()
        assert data.startswith(b"ATTEST")  # the streaming cipher's header, not the index plaintext
        assert b"ATTESTSUBJIDX" not in data
        assert bytes.fromhex(pseudonym(org, "A-00007")) not in data
    assert raw.subject_index_rows == ROWS
    assert derived.subject_index_rows == 1000


def test_trace_matches_an_independent_scan_of_every_version(versions, org, frame):
    raw, prepared, derived = versions
    prepared_frame = read_version_table(prepared).to_pandas()
    derived_frame = read_version_table(derived).to_pandas()
    people = ["A-00007", "A-00014", "A-00003", "A-00399"]
    found = versions_holding(org, [pseudonym(org, p) for p in people] + [pseudonym(org, "never-seen")])
    assert pseudonym(org, "never-seen") not in found
    for person in people:
        key = pseudonym(org, person)
        expected = {
            raw.id: rows_of(frame, person),
            prepared.id: rows_of(prepared_frame, key),
            derived.id: rows_of(derived_frame, key),
        }
        expected = {version_id: rows for version_id, rows in expected.items() if rows}
        assert {h.version.id: h.positions for h in found.get(key, [])} == expected
    # a person without consent is in the raw upload only
    assert [h.version.id for h in found[pseudonym(org, "A-00003")]] == [raw.id]
    one = subjects.positions_in_version(prepared, [pseudonym(org, "A-00007"), pseudonym(org, "A-00003")])
    assert one == {pseudonym(org, "A-00007"): rows_of(prepared_frame, pseudonym(org, "A-00007"))}


def test_index_is_built_on_first_use_and_by_the_backfill_command(versions, org, frame):
    raw, prepared, _derived = versions
    DatasetVersion.objects.filter(pk=raw.pk).update(subject_index_sha256="", subject_index_column="")
    index_path(raw).unlink()
    key = pseudonym(org, "A-00021")
    holdings = versions_holding(org, [key])[key]
    assert {h.version.id: h.positions for h in holdings}[raw.id] == rows_of(frame, "A-00021")
    DatasetVersion.objects.filter(pk=prepared.pk).update(subject_index_sha256="")
    call_command("build_subject_indexes", stdout=io.StringIO())
    prepared.refresh_from_db()
    assert prepared.subject_index_sha256


def test_a_changed_index_is_refused(versions, org):
    raw = versions[0]
    DatasetVersion.objects.filter(pk=raw.pk).update(subject_index_sha256="0" * 64)
    with pytest.raises(AttestError) as failure:
        versions_holding(org, [pseudonym(org, "A-00007")])
    assert failure.value.code == "tampered"


def test_subject_rows_are_the_persons_rows_as_stored(versions, org, frame):
    raw, prepared, _derived = versions
    key = pseudonym(org, "A-00014")
    table = subject_rows(raw, [key])
    assert table.num_rows == len(rows_of(frame, "A-00014"))
    assert set(table.column("applicant_id").to_pylist()) == {"A-00014"}
    assert table.column("age").to_pylist() == frame.loc[rows_of(frame, "A-00014"), "age"].tolist()
    personal = subjects.personal_columns(raw)
    assert "applicant_id" in personal and "class" not in personal
    import json

    assert json.loads(table.schema.metadata[b"attest.personal_columns"]) == personal
    prepared_rows = subject_rows(prepared, [key])
    assert set(prepared_rows.column("applicant_id").to_pylist()) == {key}
    assert subject_rows(prepared, [pseudonym(org, "nobody")]).num_rows == 0


def test_erasure_removes_exactly_the_persons_rows_then_destroys_the_old_versions(versions, org, privacy_officer):
    raw, prepared, derived = versions
    people = ["A-00007", "A-00003"]
    keys = [pseudonym(org, p) for p in people]
    before = {v.id: read_version_table(v) for v in versions}
    events = AuditEvent.objects.count()
    replacements = versions_without_subjects(
        actor=privacy_officer, organisation=org, pseudonyms=keys, reason={"request": "DSR-2026-0001"}
    )
    assert AuditEvent.objects.count() == events + 1
    assert {r.old.id for r in replacements} == {raw.id, prepared.id, derived.id}
    for replacement in replacements:
        old_table = before[replacement.old.id].to_pandas()
        column = old_table["applicant_id"]
        gone = column.isin(people if replacement.old.kind == "raw" else keys)
        expected = old_table[~gone].reset_index(drop=True)
        new_table = read_version_table(replacement.new).to_pandas()
        pd.testing.assert_frame_equal(new_table, expected, check_dtype=False)
        assert replacement.rows_removed == int(gone.sum()) > 0
        assert replacement.new.parent_id == replacement.old.id and replacement.new.kind == replacement.old.kind
        assert replacement.new.transform["request"] == "DSR-2026-0001"
        assert replacement.new.transform["rows_removed"] == replacement.rows_removed
        old = DatasetVersion.objects.get(pk=replacement.old.pk)
        assert old.status == "replaced" and old.replaced_by_id == replacement.new.id
    assert versions_holding(org, keys) == {}
    for replacement in replacements:  # the index derived from the old one equals one built from the new file
        derived = replacement.new.subject_index_sha256
        assert subjects.subject_index_build(replacement.new).subject_index_sha256 == derived
    event = AuditEvent.objects.order_by("-id").first()
    text = str(event.after)
    assert event.action == "dataset.erase_subjects"
    assert not any(k in text or p in text for k, p in zip(keys, people, strict=True))

    destroyed = versions_destroy(replacements, actor=privacy_officer)
    assert destroyed == 3
    for replacement in replacements:
        old = DatasetVersion.objects.get(pk=replacement.old.pk)
        assert old.wrapped_key == "" and old.erased_at is not None and old.sha256 == replacement.old_sha256
        assert not (storage_root() / old.storage_path).exists() and not index_path(old).exists()
        with pytest.raises(AttestError):
            read_version_table(old)
    assert AuditEvent.objects.order_by("-id").first().action == "dataset.destroy_replaced"
    # the other people are still found, now in the new versions only
    other = pseudonym(org, "A-00014")
    assert {h.version.id for h in versions_holding(org, [other])[other]} <= {r.new.id for r in replacements}


@pytest.mark.parametrize("where", ["writing the second file", "inside the transaction"])
def test_erasure_is_all_or_nothing(versions, org, privacy_officer, monkeypatch, where):
    before = {v.id: (v.status, v.sha256, v.wrapped_key) for v in DatasetVersion.objects.all()}
    files = files_in_storage()
    events = AuditEvent.objects.count()
    calls = {"n": 0}
    target = "_write_without" if where == "writing the second file" else "_mark_replaced"
    real = getattr(subjects, target)

    def fail_second(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError("disk full (injected)")
        return real(*args, **kwargs)

    monkeypatch.setattr(subjects, target, fail_second)
    with pytest.raises(OSError, match="injected"):
        versions_without_subjects(
            actor=privacy_officer, organisation=org, pseudonyms=[pseudonym(org, "A-00007")], reason={"request": "X"}
        )
    assert {v.id: (v.status, v.sha256, v.wrapped_key) for v in DatasetVersion.objects.all()} == before
    assert files_in_storage() == files
    assert AuditEvent.objects.count() == events


def test_erasure_needs_a_role_of_the_organisation(versions, org, owner):
    stranger = make_user("someone_else")
    with pytest.raises(NotFound):
        versions_without_subjects(actor=stranger, organisation=org, pseudonyms=["a" * 64], reason={})
    with pytest.raises(PermissionDenied):
        versions_without_subjects(actor=owner, organisation=org, pseudonyms=["a" * 64], reason={})


def test_rectification_makes_a_new_version_with_lineage(
    versions, org, privacy_officer, django_capture_on_commit_callbacks
):
    raw = versions[0]
    before = read_version_table(raw).to_pandas()
    files_before = files_in_storage()
    with django_capture_on_commit_callbacks(execute=True):
        new = version_rectified(
            actor=privacy_officer,
            version=raw,
            pseudonym=pseudonym(org, "A-00014"),
            corrections={"age": "41"},
            reason={"request": "DSR-2026-0002"},
        )
    after = read_version_table(new).to_pandas()
    changed = before["applicant_id"] == "A-00014"
    assert (after.loc[changed, "age"] == 41).all()
    pd.testing.assert_frame_equal(after[~changed], before[~changed], check_dtype=False)
    pd.testing.assert_frame_equal(after.drop(columns="age"), before.drop(columns="age"), check_dtype=False)
    assert new.parent_id == raw.id and new.kind == "raw"
    assert new.transform["transform"] == "rectification" and new.transform["columns"] == ["age"]
    assert new.transform["rows_changed"] == int(changed.sum())
    assert new.subject_index_sha256 == raw.subject_index_sha256  # same rows, same subjects
    assert subjects.subject_index_build(new).subject_index_sha256 == raw.subject_index_sha256
    assert raw.status == "replaced" and raw.replaced_by_id == new.id and raw.wrapped_key == ""
    assert not (storage_root() / raw.storage_path).exists()
    # The corrected value is nowhere in the event (hashes may contain "41" as hex digits: compare whole values).
    assert not {"41", 41} & leaf_values(AuditEvent.objects.order_by("-id").first().after)
    with pytest.raises(ValidationFailed):
        version_rectified(
            actor=privacy_officer,
            version=new,
            pseudonym=pseudonym(org, "A-00014"),
            corrections={"age": "old"},
            reason={},
        )
    with pytest.raises(ValidationFailed):
        version_rectified(
            actor=privacy_officer, version=new, pseudonym=pseudonym(org, "nobody"), corrections={"age": 1}, reason={}
        )
    new_files = files_in_storage() - files_before
    assert {path.name for path in new_files} == {f"{new.id}.enc", f"{new.id}.subjects.enc"}
    assert storage_root() / raw.storage_path in files_before - files_in_storage()


def test_a_new_preparation_of_the_erased_raw_version_no_longer_contains_the_person(versions, org, privacy_officer):
    key = pseudonym(org, "A-00007")
    replacements = versions_without_subjects(actor=privacy_officer, organisation=org, pseudonyms=[key], reason={})
    versions_destroy(replacements)
    new_raw = next(r.new for r in replacements if r.old.kind == "raw")
    dataset_version_profile(version_id=new_raw.id)
    new_raw.refresh_from_db()
    assert {c.name: c.role for c in new_raw.columns.all()}["applicant_id"] == "subject_key"
    result = dataset_version_prepare(version_id=new_raw.id)
    prepared = DatasetVersion.objects.get(id=result["version_id"])
    column = read_version_table(prepared).column("applicant_id")
    assert key not in set(column.to_pylist()) and len(column) > 0
    assert pa.compute.count_distinct(column).as_py() == PEOPLE - 1 - len(WITHOUT_CONSENT)


def test_dataset_pages_show_the_replaced_version_with_its_hashes(versions, org, steward, client):
    raw = versions[0]
    replacements = versions_without_subjects(
        actor=steward, organisation=org, pseudonyms=[pseudonym(org, "A-00007")], reason={"request": "DSR-2026-0009"}
    )
    versions_destroy(replacements)
    new_raw = next(r.new for r in replacements if r.old.id == raw.id)
    client.force_login(steward)
    page = client.get(f"/datasets/versions/{raw.id}/").content.decode()
    assert "Replaced (data-subject request)" in page and raw.sha256 in page
    assert f'href="/datasets/versions/{new_raw.id}/"' in page
    new_page = client.get(f"/datasets/versions/{new_raw.id}/").content.decode()
    assert "Erasure for request DSR-2026-0009" in new_page
    rows_removed = next(r.rows_removed for r in replacements if r.old.id == raw.id)
    assert f"{rows_removed} rows of the data subject(s) removed from v{raw.number}" in new_page
    listing = client.get(f"/datasets/{raw.dataset_id}/").content.decode()
    assert listing.count("Replaced (data-subject request)") == 3
    # a profile job that runs after its version was replaced leaves it replaced
    assert dataset_version_profile(version_id=raw.id)["no_longer_held"] == "replaced"
    raw.refresh_from_db()
    assert raw.status == "replaced"


def leaf_values(value):
    """Every scalar inside a JSON structure (keys excluded)."""
    if isinstance(value, dict):
        return set().union(*(leaf_values(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(leaf_values(v) for v in value)) if value else set()
    return {value}
