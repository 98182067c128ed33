"""report.md and report.html: the numbers parsed back from report.md equal those of the raw rows,
the HTML is self-contained, the build is deterministic, and the CLI hooks report errors clearly."""

from __future__ import annotations

import base64
import os
import re
from collections import Counter, defaultdict

import numpy as np
import pytest

from testbed.analysis import ResultsError
from testbed.cli import main
from testbed.errors import TestbedError
from testbed.experiment.expand import expand
from testbed.experiment.load import load_experiment
from testbed.experiment.records import make_row
from testbed.plan.build import plan_cluster
from testbed.report import build_report
from testbed.spec.topology import load_topology
from testbed.spec.workloads import load_manifests

from .synthetic_runs import md_tables, synthetic_rows, table, write_run

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """Built once for the module (drawing the figures is the slow part)."""
    rows = synthetic_rows(throughput=True)
    path = write_run(str(tmp_path_factory.mktemp("report") / "run-a"), rows)
    md, html = build_report(path)
    with open(md, encoding="utf-8") as handle:
        md_text = handle.read()
    with open(html, encoding="utf-8") as handle:
        html_text = handle.read()
    return path, rows, md_text, html_text


def test_paths_and_figures(run):
    path, _, md, _ = run
    referenced = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    on_disk = sorted(f for f in os.listdir(path) if f.endswith(".png"))
    assert sorted(referenced) == on_disk and all(f.startswith("report-") for f in on_disk)
    assert "report-reachability-baseline-tcp.png" in on_disk and "report-latency.png" in on_disk
    assert "report-spread-service-web.png" in on_disk and "report-difference-policy-tcp.png" in on_disk
    for name in on_disk:
        with open(os.path.join(path, name), "rb") as handle:
            assert handle.read(8) == b"\x89PNG\r\n\x1a\n"


def test_verdict_and_metadata(run):
    _, _, md, _ = run
    assert "**Verdict: FAIL** — 614/617 probes as expected; 1 NAT violation(s) in 614 checked; 4 mismatch(es)." in md
    meta = {r["field"]: r["value"] for r in table(md, "Run metadata")}
    assert meta["seed"] == "7" and meta["started"] == "2026-11-22 04:13:44 UTC" and meta["probes"] == "617"
    assert meta["reproduce"] == "`testbed run experiments/synthetic.yaml`"
    inputs = {r[0]: r[1] for _, h, rows in md_tables(md) if h == ["input file", "sha256"] for r in rows}
    assert inputs == {"experiments/synthetic.yaml": "0" * 64, "manifests/app.yaml": "1" * 64}
    assert {r["phase"]: r["seconds"] for r in table(md, "Timings")} == {
        "build": "0.500",
        "teardown": "0.250",
        "step:baseline": "0.100",
    }


def test_summary_equals_raw_rows(run):
    _, rows, md, _ = run
    raw: dict[tuple, Counter] = defaultdict(Counter)
    for r in rows:
        c = raw[(r["step"], r["communication"], r["protocol"])]
        c["probes"] += 1
        c["connected"] += r["outcome"] == "connected"
        c["timeout"] += r["outcome"] == "timeout"
        c["as expected"] += bool(r["outcome_ok"])
        c["NAT checked"] += r["nat_free"] is not None
        c["source as expected"] += r["nat_free"] is True
    got = table(md, "Summary per communication and protocol")
    assert len(got) == len(raw)
    for g in got:
        want = raw[(g["step"], g["communication"], g["protocol"])]
        for col in ("probes", "connected", "timeout", "as expected", "NAT checked", "source as expected"):
            assert int(g[col]) == want[col], (g, col)


def test_nat_table_equals_raw_rows(run):
    _, rows, md, _ = run
    got = {r["communication"]: r for r in table(md, "NAT-free addressing")}
    assert set(got) == {r["communication"] for r in rows}
    for comm, g in got.items():
        mine = [r for r in rows if r["communication"] == comm]
        checked = [r for r in mine if r["outcome"] == "connected" and r["seen_src_ip"]]
        bad = [r for r in checked if r["seen_src_ip"] not in r["expected_src_ips"].split()]
        assert int(g["probes"]) == len(mine) and int(g["checked"]) == len(checked)
        assert int(g["violations"]) == len(bad) and int(g["as expected"]) == len(checked) - len(bad)
        assert g["source as expected?"] == ("no" if bad else "yes")
    assert got["pod-to-pod (across nodes)"]["unexpected sources seen"] == "192.168.1.3 ×1"


def test_conformance_and_mismatches_equal_raw_rows(run):
    _, rows, md, _ = run
    conf = {r["expectation"]: (int(r["connected"]), int(r["not connected"])) for r in table(md, "all steps")}
    allowed = [r for r in rows if r["expected_outcome"] == "connected"]
    blocked = [r for r in rows if r["expected_outcome"] not in ("", "connected")]
    conn = lambda rs: sum(r["outcome"] == "connected" for r in rs)  # noqa: E731
    assert conf["expected allowed"] == (conn(allowed), len(allowed) - conn(allowed))
    assert conf["expected blocked"] == (conn(blocked), len(blocked) - conn(blocked))
    raw_bad = [r for r in rows if not r["outcome_ok"] or r["nat_free"] is False]
    got = table(md, f"Mismatches ({len(raw_bad)})")
    assert [(g["step"], g["from"].split()[0], g["to"].split()[0], g["protocol"], g["outcome"]) for g in got] == [
        (r["step"], r["src_name"], r["dst_name"], r["protocol"], r["outcome"]) for r in raw_bad
    ]


def test_reachability_tables_equal_raw_rows(run):
    _, rows, md, _ = run
    for step, proto in (("baseline", "TCP"), ("baseline", "UDP"), ("policy", "TCP")):
        got = table(md, f"Connected / probes, {step} — {proto}")
        for g in got:
            src = g.pop("source \\ destination").removesuffix(" (node)")
            for dst, cell in g.items():
                name, port = dst.rsplit(":", 1)
                mine = [
                    r
                    for r in rows
                    if r["step"] == step
                    and r["protocol"] == proto
                    and r["src_name"] == src
                    and r["dst_name"] == name
                    and r["port"] == int(port)
                ]
                want = f"{sum(r['outcome'] == 'connected' for r in mine)}/{len(mine)}" if mine else "—"
                assert cell == want, (step, proto, src, dst)


def test_spread_equals_raw_rows(run):
    _, rows, md, _ = run
    tests = {r["service"]: r for r in table(md, "Service load spread") if "uniform?" in r}
    assert tests["web"]["uniform?"] == "yes" and float(tests["web"]["p-value"]) == 1.0
    assert tests["skewed"]["uniform?"] == "no" and float(tests["skewed"]["chi2"]) == 600.0
    per_ep = [
        r
        for t, h, rs in md_tables(md)
        if h[:3] == ["step", "service", "endpoint"]
        for r in [dict(zip(h, x)) for x in rs]
    ]
    for g in per_ep:
        n = sum(r["service"] == g["service"] and r["answered_by"] == g["endpoint"] for r in rows)
        assert int(g["requests"]) == n
    assert {(g["service"], g["endpoint"]) for g in per_ep if g["requests"] == "0"} == {
        ("skewed", "default/b"),
        ("skewed", "default/c"),
    }  # from plan.json's endpoints


def test_latency_and_throughput_equal_raw_rows(run):
    _, rows, md, _ = run
    for g in table(md, "Latency"):
        raw = [
            r["latency_ms"]
            for r in rows
            if r["communication"] == g["communication"]
            and r["protocol"] == g["protocol"]
            and r["outcome"] == "connected"
        ]
        assert int(g["samples"]) == len(raw)
        for q in (50, 90, 99):  # the same number, written with 3 decimals
            assert g[f"p{q} (ms)"] == f"{np.percentile(raw, q):.3f}"
        assert g["max (ms)"] == f"{max(raw):.3f}"
    got = table(md, "Throughput")
    assert {g["communication"] for g in got} == {r["communication"] for r in rows if r.get("throughput_mbps")}
    assert all(g["mean (Mbit/s)"] == "900.00" for g in got)


def test_html_is_self_contained(run):
    path, _, _, html = run
    assert "http://" not in html and "https://" not in html
    assert "<script" not in html.lower() and "<link" not in html.lower() and "@import" not in html
    srcs = re.findall(r'<img src="([^"]+)"', html)
    pngs = sorted(f for f in os.listdir(path) if f.endswith(".png"))
    assert len(srcs) == len(pngs) and all(s.startswith("data:image/png;base64,") for s in srcs)
    embedded = sorted(base64.b64decode(s.split(",", 1)[1]) for s in srcs)
    on_disk = []
    for name in pngs:
        with open(os.path.join(path, name), "rb") as handle:
            on_disk.append(handle.read())
    assert embedded == sorted(on_disk)
    assert "<strong>Verdict: FAIL</strong>" in html and 'class="fail"' in html


def test_rebuild_is_byte_identical_and_drops_stale_figures(run):
    path, _, md, html = run
    with open(os.path.join(path, "report-stale-old.png"), "wb") as handle:
        handle.write(b"old")
    before = {f: open(os.path.join(path, f), "rb").read() for f in os.listdir(path) if f.startswith("report")}
    before.pop("report-stale-old.png")
    build_report(path)
    after = {f: open(os.path.join(path, f), "rb").read() for f in os.listdir(path) if f.startswith("report")}
    assert after == before


def test_csv_only_run_gives_the_same_report(run, tmp_path):
    path, rows, _, _ = run
    other = write_run(str(tmp_path / "csv"), rows, csv_only=True)
    md_a, _ = build_report(path)
    md_b, _ = build_report(other)
    assert open(md_a, encoding="utf-8").read() == open(md_b, encoding="utf-8").read()


def test_run_without_services_or_throughput_omits_those_sections(tmp_path):
    path = write_run(str(tmp_path / "r"), synthetic_rows(with_services=False), services=False)
    md, html = build_report(path)
    text = open(md, encoding="utf-8").read()
    assert "## Service load spread" not in text and "## Throughput" not in text and "## Latency" in text
    assert not any(f.startswith("report-spread") for f in os.listdir(path))


def test_empty_run_and_run_without_metadata(tmp_path):
    path = write_run(str(tmp_path / "e"), [])
    md, html = build_report(path)
    text = open(md, encoding="utf-8").read()
    assert "**Verdict: FAIL** — the dataset has no probe." in text and os.path.exists(html)
    os.remove(os.path.join(path, "run.json"))
    text = open(build_report(path)[0], encoding="utf-8").read()
    assert text.startswith("# experiment — run e\n") and "No run.json" in text


def test_report_of_quickstart_rows(tmp_path):
    """Rows made by the experiment code itself (records.make_row over the quickstart plan)."""
    exp = load_experiment(os.path.join(ROOT, "experiments", "quickstart.yaml"))
    plan = plan_cluster(load_topology(exp.topology), load_manifests(exp.manifests), seed=exp.seed)
    rows = []
    for group in exp.steps[0].probes:
        for p in expand(plan, group):
            seen = p.expect_sources[0] if p.expect_sources else p.src.ip
            rows.append(
                make_row(
                    "q",
                    exp.steps[0].name,
                    0.0,
                    p,
                    "connected",
                    1.5,
                    {
                        "pod": p.dst.name,
                        "namespace": p.dst.namespace,
                        "container": p.container,
                        "peer_ip": seen,
                        "peer_port": 40000,
                    },
                    None,
                )
            )
    path = write_run(str(tmp_path / "q"), rows)
    text = open(build_report(path)[0], encoding="utf-8").read()
    assert f"**Verdict: PASS** — {len(rows)}/{len(rows)} probes as expected" in text
    nat = {r["communication"]: r["source as expected?"] for r in table(text, "NAT-free addressing")}
    assert set(nat.values()) == {"yes"} and "container-to-container" in nat


def test_missing_folder_is_a_testbed_error(tmp_path):
    with pytest.raises(ResultsError, match="no such results folder"):
        build_report(str(tmp_path / "missing"))
    assert issubclass(ResultsError, TestbedError)


def test_cli_report(tmp_path, capsys):
    path = write_run(str(tmp_path / "r"), synthetic_rows(with_services=False))
    assert main(["report", path]) == 0
    out = capsys.readouterr().out
    assert f"report: {os.path.join(path, 'report.md')}" in out and os.path.exists(os.path.join(path, "report.html"))
    assert main(["report", str(tmp_path / "missing")]) == 2
    assert "testbed: error:" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["report", str(tmp_path / "empty")]) == 2
    assert "no probes.parquet or probes.csv" in capsys.readouterr().err
