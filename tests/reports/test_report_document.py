"""The signed PDF as a reader meets it: the cover is page 1 (no blank page before it), the file is tagged for screen
readers after signing, and the decision record names who voted on each waiver and why."""

import subprocess
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.ethics.services import review_request_deployment, vote_cast, waiver_request, waiver_vote
from apps.usecases.services import usecase_tighten_gate
from tests.ethics.conftest import reevaluate
from tests.ethics.factories import set_board_rules
from tests.reports.conftest import issue

pytestmark = pytest.mark.django_db


def page_text(data, page):
    return subprocess.run(
        ["pdftotext", "-f", str(page), "-l", str(page), "-", "-"], input=data, capture_output=True, check=True
    ).stdout.decode()


def pdfinfo(data, tmp_path):
    path = tmp_path / "report.pdf"
    path.write_bytes(data)
    lines = subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True, check=True).stdout.splitlines()
    return {key.strip(): value.strip() for key, _, value in (line.partition(":") for line in lines)}


def test_the_cover_is_the_first_page_and_the_signed_file_is_tagged(admin_user, org, read_report, tmp_path):
    report = issue(admin_user, "art30", org)
    data = read_report(report)
    first = page_text(data, 1)
    assert "Record of processing activities" in first and report.reference in first  # the cover, not a blank
    info = pdfinfo(data, tmp_path)
    assert info["Tagged"] == "yes"
    assert int(info["Pages"]) == report.pages
    # cover, contents, then the chapters: no page is empty
    for number in range(1, report.pages + 1):
        assert page_text(data, number).strip(), f"page {number} is blank"


def test_the_decision_record_lists_who_voted_on_each_waiver_and_why(
    org, owner, admin_user, approved_usecase, trained_model, board_member, board2, board3, read_report
):
    set_board_rules(org, quorum=2, threshold=0.66)
    usecase_tighten_gate(
        actor=owner, usecase=approved_usecase, metric="demographic_parity_difference", threshold=0.0001
    )
    reevaluate(trained_model, actor=owner)
    review = review_request_deployment(actor=owner, model_version=trained_model)
    waiver = waiver_request(
        actor=owner,
        review=review,
        justification="Within sampling noise; monitored monthly.",
        expires_on=timezone.localdate() + timedelta(days=60),
    )
    reasons = {
        board_member: "Monthly monitoring makes the gap acceptable.",
        board2: "Caseworkers read every flag, so the risk is contained.",
        board3: "The gap is not justified by the evidence shown.",
    }
    for member, reason in reasons.items():
        waiver_vote(actor=member, waiver=waiver, choice="reject" if member == board3 else "approve", reason=reason)
    for member in (board_member, board2, board3):
        vote_cast(actor=member, review=review, choice="approve", reason="Approved under the waiver.")
    review.refresh_from_db()
    assert review.status == "decided"

    report = issue(admin_user, "decision", review)
    data = read_report(report)
    text = " ".join(
        subprocess.run(["pdftotext", "-", "-"], input=data, capture_output=True, check=True).stdout.decode().split()
    )
    for member, reason in reasons.items():
        assert member.display_name in text and reason in text
    assert "Refuse" in text and "Grant" in text
    votes = {v["member"]: (v["choice"], v["reason"]) for v in report.evidence["waivers"][0]["votes"]}
    assert votes[board3.username] == ("reject", reasons[board3])
