"""The report draws only informative figures: a run whose every probe connected as expected,
through a Service with a single endpoint, and with few latency samples, gets no figure at all
(each section says in one line what the figure would have shown); adding a blocked pair, a
second endpoint and enough samples brings back the heatmaps, the spread chart and the box plot."""

from __future__ import annotations

import json
import os

from testbed.report import build_report
from testbed.report.build import MIN_BOX_SAMPLES

from .synthetic_runs import pairs, row, synthetic_rows, write_run


def _service_rows(endpoints: list[str], requests: int) -> list[dict]:
    """`requests` requests of pod a to Service "one", answered in turn by `endpoints`."""
    web = [r for r in synthetic_rows() if r["service"] == "web"][:requests]
    return [dict(r, service="one", answered_by=endpoints[i % len(endpoints)]) for i, r in enumerate(web)]


def _build(path: str, rows: list[dict], endpoints: list[str]) -> tuple[list[str], str]:
    write_run(path, rows, services=False)
    with open(os.path.join(path, "plan.json"), encoding="utf-8") as handle:
        plan = json.load(handle)
    plan["services"] = [{"name": "one", "namespace": "default", "endpoints": endpoints}]
    with open(os.path.join(path, "plan.json"), "w", encoding="utf-8") as handle:
        json.dump(plan, handle)
    md, _ = build_report(path)
    with open(md, encoding="utf-8") as handle:
        return sorted(f for f in os.listdir(path) if f.endswith(".png")), handle.read()


def test_a_uniform_run_through_one_endpoint_draws_no_figure(tmp_path):
    rows = [row(step="baseline", group="pods", src_name=s, dst_name=d) for s, d in pairs()]
    rows += _service_rows(["default/a"], MIN_BOX_SAMPLES - 1)
    pngs, md = _build(str(tmp_path / "run"), rows, ["default/a"])
    assert pngs == []
    assert "Every probed pair connected (6 pairs, 6 probes; 3 not probed, — below): no heatmap" in md
    assert "Every probe as expected (the difference heatmap would be all white)." in md
    assert "Service load spread" in md and "![Load spread" not in md  # the table stays, the chart goes
    assert f"No box plot: no group has {MIN_BOX_SAMPLES} samples" in md


def test_informative_figures_are_drawn(tmp_path):
    rows = [
        row(
            step="baseline",
            group="pods",
            src_name=s,
            dst_name=d,
            expected_outcome="blocked" if d == "c" else "connected",
            outcome="timeout" if (s, d) == ("a", "c") else "connected",
        )
        for s, d in pairs()
    ]
    rows += _service_rows(["default/a", "default/b"], MIN_BOX_SAMPLES)
    pngs, md = _build(str(tmp_path / "run"), rows, ["default/a", "default/b"])
    # b -> c connected although expected blocked: a mismatch, so the difference heatmap is drawn
    assert pngs == [
        "report-difference-baseline-tcp.png",
        "report-latency.png",
        "report-reachability-baseline-tcp.png",
        "report-spread-service-one.png",
    ], pngs
    assert md.count("no heatmap") == 1  # only the service step's matrix: a -> the Service, connected
    assert "No box plot" not in md
