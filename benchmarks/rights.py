"""Data-subject rights on a 1,000,000-row dataset with three versions (raw CSV upload, its preparation, and a derived
version of that): trace and erase one person, then 1,000 people in one batch (trace through the encrypted subject
indexes, a new version of every version without their rows, the old versions' keys and files destroyed).

Targets (issue #15): one person <= 10 s, 1,000 people <= 60 s, memory bounded by the chunk size, not the file.
Reference, measured in the same run: `sha256sum` over the three encrypted version files (reading every byte once),
and pyarrow reading the three tables' plaintext and writing them again as Parquet (the rewrite without encryption,
indexes, lineage or the database). Each measurement runs in a fresh process, whose peak RSS is reported beside the
RSS of the same process right after Django is set up (the interpreter, Django and pyarrow loaded; the modules a
worker has loaded are imported before the clock starts).
Usage: python benchmarks/rights.py [--rows 1000000] [--people 250000]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT

WORKCLASS = ["Private", "Self-emp", "State-gov", "Local-gov", "Federal-gov"]


def make_csv(path: Path, rows: int, people: int) -> None:
    """Rows spread over ``people`` applicants (each on about rows/people rows, scattered through the file)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pacsv

    rng = np.random.default_rng(15)
    ids = (np.arange(rows, dtype=np.int64) * 7919) % people
    table = pa.table(
        {
            "applicant_id": pa.array([f"A-{i:07d}" for i in ids]),
            "age": pa.array(rng.integers(17, 90, rows)),
            "workclass": pa.array(np.array(WORKCLASS)[rng.integers(0, len(WORKCLASS), rows)]),
            "education_num": pa.array(rng.integers(1, 17, rows)),
            "hours_per_week": pa.array(rng.integers(1, 99, rows)),
            "capital_gain": pa.array(rng.integers(0, 10000, rows)),
            "score": pa.array(rng.random(rows).round(4)),
            "sex": pa.array(np.array(["Female", "Male"])[rng.integers(0, 2, rows)]),
            "class": pa.array(np.array(["<=50K", ">50K"])[rng.integers(0, 2, rows)]),
        }
    )
    pacsv.write_csv(table, path)


def environment(folder: Path) -> dict[str, str]:
    return {
        **os.environ,
        "ATTEST_DEMO": "1",
        "DATABASE_URL": f"sqlite:///{folder}/db.sqlite3",
        "ATTEST_STORAGE_ROOT": f"{folder}/storage",
        "DJANGO_SETTINGS_MODULE": "portal.settings",
        "LOG_LEVEL": "WARNING",
    }


SETUP = """
import django, io, time
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from apps.accounts.models import Organisation, Role, Membership, User
from apps.consent.services import consent_import_create, consent_import_run
from apps.datasets.models import DatasetVersion
from apps.datasets.services import (dataset_create, dataset_version_confirm_roles, dataset_version_prepare,
    dataset_version_profile, dataset_version_upload, store_derived_version)
from apps.datasets.storage import EncryptedIncomingFile
from apps.usecases.services import usecase_create
from tests.usecases.factories import usecase_data

org = Organisation.objects.create(name="Bench", slug="bench", country="GB", processing_purposes=["Service improvement"])
users = {}
for name, role in [("owner", Role.OWNER), ("steward", Role.STEWARD), ("privacy", Role.PRIVACY)]:
    users[name] = User.objects.create_user(username=name, email=f"{name}@example.org", password="x" * 20, full_name=name)
    Membership.objects.create(user=users[name], organisation=org, role=role)
usecase = usecase_create(actor=users["owner"], organisation=org, data=usecase_data(purpose="Service improvement"))
dataset = dataset_create(actor=users["steward"], usecase=usecase, name="Applicants")
incoming = EncryptedIncomingFile()
with open(CSV, "rb") as source:
    while block := source.read(1 << 20):
        incoming.write(block)
sha = incoming.close()
raw, _ = dataset_version_upload(actor=users["steward"], dataset=dataset, incoming=incoming, sha256=sha, file_name="a.csv")
dataset_version_profile(version_id=raw.id)
roles = {c.name: (c.suggested_role or "feature") for c in raw.columns.all()}
roles.update({"applicant_id": "subject_key", "class": "label"})
dataset_version_confirm_roles(actor=users["steward"], version=raw, roles=roles)
lines = ["subject_id,purpose,status,timestamp"] + [
    f"A-{i:07d},Service improvement,{'refused' if i % 50 == 0 else 'granted'},2026-01-01T00:00:00Z" for i in range(PEOPLE)]
imported = consent_import_create(actor=users["steward"], organisation=org, file_name="c.csv",
    chunks=iter([("\\n".join(lines) + "\\n").encode()]))
consent_import_run(consent_import_id=imported.id)
prepared = DatasetVersion.objects.get(id=dataset_version_prepare(version_id=raw.id)["version_id"])
from apps.datasets.tables import version_batches
with version_batches(prepared) as reader:
    kept = [name for name in reader.schema.names if name != "score"]  # a derived version: one column dropped
    derived, _ = store_derived_version(source=prepared, batches=(b.select(kept) for b in reader),
        schema=reader.schema.remove(reader.schema.get_field_index("score")),
        kind=DatasetVersion.Kind.ANONYMISED, transform={"transform": "drop_score"}, suffix="derived",
        actor=users["steward"], action="dataset.anonymise")
out = {"versions": [[str(v.storage_path), v.row_count, v.size_bytes, v.kind] for v in (raw, prepared, derived)]}
"""

MEASURE = """
import django, resource, time
django.setup()
from apps.accounts.models import Organisation, User
from apps.consent.services import pseudonym_secret
from apps.datasets.subjects import versions_destroy, versions_holding, versions_without_subjects
from workers.engine.consent import pseudonymise
org = Organisation.objects.get(slug="bench")
officer = User.objects.get(username="privacy")
secret = pseudonym_secret(org)
keys = [pseudonymise(f"A-{i:07d}", secret) for i in PERSONS]
# A worker has these loaded already: import them before the clock starts (about 2 s in a fresh process).
import pyarrow.csv, pyarrow.parquet
from apps.jobs.registry import autodiscover
autodiscover()
baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
start = time.perf_counter()
held = versions_holding(org, keys)
traced = time.perf_counter() - start
replacements = versions_without_subjects(actor=officer, organisation=org, pseudonyms=keys, reason={"request": "BENCH"})
erased = time.perf_counter() - start
versions_destroy(replacements, actor=officer)
total = time.perf_counter() - start
out = {"trace_s": traced, "erase_s": erased - traced, "destroy_s": total - erased, "total_s": total,
       "people_found": len(held), "versions": len(replacements), "rows_removed": sum(r.rows_removed for r in replacements),
       "baseline_rss_mb": baseline, "new_sizes": [r.new.size_bytes for r in replacements],
       "new_paths": [r.new.storage_path for r in replacements]}
"""


def run(code: str, env: dict[str, str], **values: object) -> dict:
    header = "".join(f"{name} = {value!r}\n" for name, value in values.items())
    wrapper = (
        f"import json, resource, sys; sys.path.insert(0, {str(ROOT)!r})\n{header}{code}\n"
        "out['peak_rss_mb'] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024\n"
        "print(json.dumps(out))"
    )
    done = subprocess.run([sys.executable, "-c", wrapper], capture_output=True, text=True, env=env, cwd=ROOT)
    if done.returncode:
        sys.stderr.write(done.stderr[-4000:])
        raise SystemExit(done.returncode)
    return json.loads(done.stdout.strip().splitlines()[-1])


def reference(folder: Path, csv_path: Path, encrypted: list[Path]) -> tuple[float, float]:
    """sha256sum over the encrypted files; pyarrow reading the plaintext (the CSV, then the tables written as
    Parquet by the first pass) and writing Parquet again, three tables."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    for path in encrypted:
        subprocess.run(["cat", str(path)], stdout=subprocess.DEVNULL, check=True)  # warm the page cache
    started = time.perf_counter()
    subprocess.run(["sha256sum", *map(str, encrypted)], stdout=subprocess.DEVNULL, check=True)
    sha_s = time.perf_counter() - started
    plain = folder / "plain.parquet"
    pq.write_table(pacsv.read_csv(csv_path), plain)
    started = time.perf_counter()
    table = pacsv.read_csv(csv_path)
    pq.write_table(table, io.BytesIO())
    for _ in range(2):
        pq.write_table(pq.read_table(plain), io.BytesIO())
    arrow_s = time.perf_counter() - started
    plain.unlink()
    return sha_s, arrow_s


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--people", type=int, default=250_000)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="attest-bench-rights-"))
    env = environment(folder)
    try:
        csv_path = folder / "applicants.csv"
        make_csv(csv_path, args.rows, args.people)
        print(f"{args.rows:,} rows of {args.people:,} people ({csv_path.stat().st_size / 2**20:.0f} MB CSV)")
        started = time.perf_counter()
        setup = run(SETUP, env, CSV=str(csv_path), PEOPLE=args.people)
        print(
            f"setup (upload, profile, consent, prepare, derive; indexes built on the way): "
            f"{time.perf_counter() - started:.0f} s"
        )
        for _path, rows, size, kind in setup["versions"]:
            print(f"  {kind:10} {rows:>10,} rows  {size / 2**20:6.1f} MB")
        encrypted = [folder / "storage" / path for path, *_ in setup["versions"]]
        sha_s, arrow_s = reference(folder, csv_path, encrypted)
        print(
            f"reference: sha256sum of the 3 encrypted files {sha_s:.2f} s; "
            f"pyarrow read + write Parquet of the 3 plaintext tables {arrow_s:.2f} s"
        )
        # one person, then 1,000 others (every 97th applicant: spread through the file), one batch each
        for label, persons, target in (
            ("1 person", [12345 % args.people], 10.0),
            ("1,000 people", [(i * 97 + 1) % args.people for i in range(1000)], 60.0),
        ):
            result = run(MEASURE, env, PERSONS=persons)
            total = result["total_s"]
            print(
                f"{label}: found {result['people_found']:,}, {result['versions']} versions replaced, "
                f"{result['rows_removed']:,} rows removed"
            )
            print(
                f"  trace {result['trace_s']:.2f} s + erase {result['erase_s']:.2f} s + destroy "
                f"{result['destroy_s']:.2f} s = {total:.2f} s (target <= {target:.0f} s: "
                f"{'met' if total <= target else 'NOT met'})"
            )
            print(f"  ratio to sha256sum {total / sha_s:.1f}x, to the pyarrow rewrite {total / arrow_s:.2f}x")
            print(
                f"  peak RSS {result['peak_rss_mb']:.0f} MB (the process after Django setup: "
                f"{result['baseline_rss_mb']:.0f} MB)"
            )
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
