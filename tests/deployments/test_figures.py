"""The monitoring charts (apps/core/charts.time_series, shared by the deployment page and the monitoring report) and
the figures built from window results: a window with too little data is a gap said in words, never a zero; alerts
are marked in the window where they opened, not where they last failed."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from apps.core import charts
from apps.deployments.figures import cell, monitoring_figures, opened_in, worst_status


def test_a_missing_value_is_a_gap_in_the_line_and_a_shaded_column_never_a_point_at_zero():
    svg = charts.time_series(
        ["05 Oct", "12 Oct", "19 Oct", "26 Oct"],
        [charts.Series("PSI age", (0.05, None, 0.3, 0.28))],
        title="Drift",
        rules=[charts.Rule("alert", 0.25)],
        gaps={1},
        markers={2: "alert opened: drift"},
    )
    assert len(re.findall(r"<circle ", svg)) == 3
    paths = re.findall(r'<path d="(M[^"]+)" fill="none"', svg)
    assert len(paths) == 2 and paths[0].count("L") == 0 and paths[1].count("L") == 1  # broken at the gap
    assert svg.count("12 Oct: insufficient data") == 1 and "insufficient data (no value drawn)" in svg
    desc = re.search(r"<desc[^>]*>(.*?)</desc>", svg).group(1)
    assert "12 Oct insufficient data" in desc and "12 Oct 0" not in desc
    assert "alert opened: 19 Oct" in desc and svg.count('class="threshold"') == 1


def test_interval_bands_follow_their_runs_of_known_values():
    svg = charts.time_series(
        ["a", "b", "c", "d"],
        [charts.Series("FPR", (0.1, 0.2, None, 0.3), (0.05, 0.15, None, 0.25), (0.15, 0.25, None, 0.35))],
        title="Rates",
    )
    assert svg.count("<polygon") == 1  # a and b; d alone is a whisker
    assert svg.count('stroke-opacity="0.25"') == 1


@dataclass
class Window:
    starts_at: datetime
    results: list[dict[str, Any]]
    rows: int = 600
    id: uuid.UUID = field(default_factory=uuid.uuid4)

    @property
    def ends_at(self) -> datetime:
        return self.starts_at + timedelta(weeks=1)


@dataclass
class AlertRow:
    monitor: str
    window_id: uuid.UUID
    title: str
    detail: dict[str, Any]


def result(monitor: str, status: str, value: float | None, **extra: Any) -> dict[str, Any]:
    return {"monitor": monitor, "status": status, "value": value, "threshold": 0.13, "interval": None, **extra}


def test_alerts_are_marked_where_they_opened_and_groups_of_a_grouping_share_a_chart():
    start = datetime(2026, 10, 5, tzinfo=UTC)
    windows = [
        Window(
            start + timedelta(weeks=i),
            [
                result("fairness:false_positive_rate:sex=Female", "fail" if i >= 1 else "pass", 0.1 + i / 10),
                result("fairness:false_positive_rate:sex=Male", "pass", 0.1),
                result("fairness:false_positive_rate:race=White", "pass", 0.1),
                result("data_drift:psi:age", "insufficient" if i == 2 else "pass", None if i == 2 else 0.01),
            ],
        )
        for i in range(3)
    ]
    # The alert opened in the second window and failed again in the third: alert.window is the third.
    history = [{"window": {"id": str(windows[1].id)}}, {"window": {"id": str(windows[2].id)}}]
    alert = AlertRow("fairness:false_positive_rate:sex=Female", windows[2].id, "FPR women", {"history": history})
    assert opened_in(alert) == windows[1].id
    figures = {f.key: f for f in monitoring_figures(plan={}, windows=windows, alerts=[alert])}
    assert set(figures) == {"drift-age", "fairness-false_positive_rate-sex", "fairness-false_positive_rate-race"}
    by_sex = figures["fairness-false_positive_rate-sex"]
    assert by_sex.columns == ["Window", "Rows", "sex=Female", "sex=Male"]
    assert "12 Oct: alert opened: FPR women" in by_sex.svg and "19 Oct: alert opened" not in by_sex.svg
    assert "alert opened" not in figures["fairness-false_positive_rate-race"].svg
    assert figures["drift-age"].rows[2][2] == "insufficient data"
    assert cell(windows[1].results[0], with_limit=True) == "0.200 (alert, limit 0.130)"
    assert worst_status(windows[2].results) == "fail" and worst_status([]) == ""
